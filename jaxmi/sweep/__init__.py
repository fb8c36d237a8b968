"""Sweeps: a TOML spec -> a grid of (J, T, V) -> fixed-shape chunks -> an HDF5 file.

A spec's optional ``[model]`` table picks a member of the model family (jaxmi.model) and may
sweep its Fermi level mu0 and texture parameters as further dimensions, (J, mu0, T, V).

Stages, one module each (data flows one way): :mod:`~jaxmi.sweep.spec` (TOML -> Spec),
:mod:`~jaxmi.sweep.grid` (Spec -> coordinate arrays), :mod:`~jaxmi.sweep.chunks` (the chunk
layout and the compiled chunk function), :mod:`~jaxmi.sweep.run` (the driver) and
:mod:`~jaxmi.sweep.store` (HDF5, the only module that imports h5py). The format is documented
in docs/sweeps.md.

Only the spec stage is imported here (pure Python); the driver is
:func:`jaxmi.sweep.run.run_sweep` (imports JAX and h5py).
"""

from jaxmi.sweep.spec import Spec, load, parse

__all__ = ["Spec", "load", "parse"]
