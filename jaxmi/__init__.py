"""jaxmi: magnetic impurity + spin texture on the helical edge of a 2D topological insulator.

Public API (units: T, V = eV in vF*k0; J dimensionless; conductance in e^2/h):
:func:`conductance`, :func:`current`, :func:`spin`, :func:`density_matrix`, :func:`evaluate`,
:func:`evaluate_grid`, :func:`fit`, :class:`Config`, :class:`Model` (the model family: impurity
spin, exchange tensor, Fermi level mu0, texture :class:`PowerLaw` / :class:`Polynomial` /
:class:`CustomTexture`), :mod:`jaxmi.analytic`, :func:`set_host_device_count` (one CPU device
per core, for batches split over devices), and the errors.

The JAX-backed names are imported on first use (PEP 562), so that ``import jaxmi`` (and the
``jaxmi --help`` command line) does not import JAX.
"""

import importlib as _importlib
import os as _os
import sys as _sys
from typing import TYPE_CHECKING

# The one place jaxmi touches JAX's global configuration: float64 is the default, because the
# T^4 effect is a cancellation float32 cannot hold. An explicit JAX_ENABLE_X64 is respected
# (and a float32 session is then refused by the public functions with PrecisionError).
# If JAX is not imported yet, its default is set through the variable JAX reads on import
# (so that importing jaxmi does not import JAX); the variable is then also seen by child
# processes.
if "JAX_ENABLE_X64" not in _os.environ:
    if "jax" in _sys.modules:
        _sys.modules["jax"].config.update("jax_enable_x64", True)
    else:
        _os.environ["JAX_ENABLE_X64"] = "1"

from jaxmi.config import Config  # noqa: E402
from jaxmi.devices import set_host_device_count  # noqa: E402  (no JAX import)
from jaxmi.errors import (  # noqa: E402
    AccuracyWarning,
    ClusterError,
    ConfigError,
    DomainError,
    FitError,
    FitWarning,
    JaxmiError,
    PrecisionError,
    SpecError,
    StoreError,
    WriteError,
)

if TYPE_CHECKING:
    from jaxmi import analytic
    from jaxmi.api import (
        conductance,
        current,
        density_matrix,
        evaluate,
        evaluate_grid,
        spin,
    )
    from jaxmi.fitting import fit
    from jaxmi.model import CustomTexture, Model, Polynomial, PowerLaw
    from jaxmi.observables import Observables
    from jaxmi.sweep.dataset import open, run

__version__ = "0.1.0"

_LAZY = {
    "analytic": "jaxmi.analytic",
    "conductance": "jaxmi.api",
    "current": "jaxmi.api",
    "density_matrix": "jaxmi.api",
    "evaluate": "jaxmi.api",
    "evaluate_grid": "jaxmi.api",
    "fit": "jaxmi.fitting",
    "CustomTexture": "jaxmi.model",
    "Model": "jaxmi.model",
    "Polynomial": "jaxmi.model",
    "PowerLaw": "jaxmi.model",
    "spin": "jaxmi.api",
    "Observables": "jaxmi.observables",
    "open": "jaxmi.sweep.dataset",
    "run": "jaxmi.sweep.dataset",
}


def __getattr__(name: str):
    if name in _LAZY:
        module = _importlib.import_module(_LAZY[name])
        value = module if name == "analytic" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaxmi' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AccuracyWarning",
    "ClusterError",
    "Config",
    "ConfigError",
    "CustomTexture",
    "DomainError",
    "FitError",
    "FitWarning",
    "JaxmiError",
    "Model",
    "Observables",
    "Polynomial",
    "PowerLaw",
    "PrecisionError",
    "SpecError",
    "StoreError",
    "WriteError",
    "analytic",
    "conductance",
    "current",
    "density_matrix",
    "evaluate",
    "evaluate_grid",
    "fit",
    "open",
    "run",
    "set_host_device_count",
    "spin",
]
