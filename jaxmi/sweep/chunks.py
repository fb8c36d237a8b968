"""Cut the output grid into fixed-shape chunks, and compute one chunk on one device.

A chunk is a block of the output grid: cJ couplings against the (T, V) pairs of a T block times
a V block (and, for a ``[model]`` that sweeps some of its parameters, against the model points
of a block of those dimensions). Every chunk has the same shape, so one compiled function serves
the whole sweep; the last block along an axis is padded by repeating its last valid index, and
the padding's results are dropped. Within a chunk the energy integrals are computed once per
(T, V) pair (and model point) and combined with all cJ couplings (the factorized path:
:func:`jaxmi.observables.grid_arrays` for the paper's model, :func:`jaxmi.family.grid_arrays`
for any other member of the family), so a J-heavy grid spends its time in the cheap combination.

On the general path a chunk's model points run one after the other (``lax.map``), each with the
model rebuilt from the chunk's parameter values (``Model(..., mu0=value)``: the Fermi level and
the texture's parameters are pytree leaves, so a new value does not recompile).

Chunks go to the local JAX devices round-robin; each device runs the same single-device program
on whole chunks, so the results do not depend on the number of devices (bit for bit).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmi import family, observables
from jaxmi.config import Config
from jaxmi.domain import DEFAULT_SWEEP_QUANTITIES, FAMILY_FINE_TAIL_PANELS, FAMILY_T_MAX
from jaxmi.strategy import Strategy, choose, choose_for
from jaxmi.sweep.grid import FAMILY_PAIRS, Grid, Layout, plan, plan_grid  # noqa: F401
from jaxmi.sweep.spec import Spec


def config_for(spec: Spec) -> Config:
    """The quadrature options of a sweep: the spec's order; on the real axis (a polynomial
    texture, jaxmi.strategy) 48 tail panels when T goes above 0.3 (validated to T = 0.5,
    docs/accuracy.md). A power law runs on its contour, which has no real-axis tails."""
    real_axis = not spec.paper_path and spec.model.texture == "polynomial"
    if not real_axis or max(spec.T.ends) <= FAMILY_T_MAX:
        return Config(order=spec.order)
    return Config(order=spec.order, family_tail_panels=FAMILY_FINE_TAIL_PANELS)


def _indices(layout: Layout, i: int) -> list:
    """Per dimension, chunk i's grid indices: a slice for a full block, else an index array
    padded by repeating the last valid index."""
    idx = []
    for s, c, n in zip(layout.region(i), layout.block, layout.shape, strict=True):
        if s.start + c <= n:
            idx.append(slice(s.start, s.start + c))  # a full block: a view, no gather
        else:
            idx.append(np.minimum(np.arange(s.start, s.start + c), n - 1))
    return idx


def inputs(grid: Grid, layout: Layout, i: int) -> tuple[np.ndarray, ...]:
    """Chunk i's inputs: J (cJ, 3) (or (cJ, 3, 3)) and the (T, V) pairs T (cT*cV,), V (cT*cV,),
    padded by repeating the last valid index along each axis. Pairs are in C order over (T, V).

    With swept model parameters: (J, M, T, V), where M (cM, k) holds the values of the k swept
    parameters at the chunk's cM model points (C order over their blocks).
    """
    ij, *im, it, iv = _indices(layout, i)
    J = grid.J[ij]
    T = np.repeat(grid.T[it], layout.block[-1])
    V = grid.V[it][:, iv].reshape(-1)
    if not grid.model_axes:
        return J, T, V
    values = [v[ix] for (_, v), ix in zip(grid.model_axes, im, strict=True)]
    mesh = np.meshgrid(*values, indexing="ij")
    M = np.stack([m.ravel() for m in mesh], axis=-1)
    return J, M, T, V


def build_model(grid: Grid):
    """The :class:`jaxmi.model.Model` of a grid's ``[model]`` (swept parameters at their first
    value; :func:`with_values` sets them per model point). Leaves are float64 scalars."""
    from jaxmi.model import Model, Polynomial, PowerLaw

    m = grid.model
    first = {name: v[0] for name, v in grid.model_axes}

    def value(name):
        return np.float64(first[name] if name in first else getattr(m, name))

    if m.texture == "polynomial":
        texture = Polynomial(coefficients=np.asarray(m.coefficients, dtype=np.float64))
    else:
        texture = PowerLaw(scale=value("scale"), exponent=value("exponent"))
    return Model(spin=m.spin, exchange=m.exchange, mu0=value("mu0"), texture=texture)


def sweep_strategy(grid: Grid, model) -> Strategy:
    """How every point of a family sweep is evaluated (jaxmi.strategy): from the model's values
    where nothing is swept, else the general strategy of its texture kind (a swept mu0, scale
    or exponent can pass through the paper's values; one program serves them all)."""
    if not grid.model_axes:
        return choose(model)
    m = grid.model
    return choose_for(m.spin, m.exchange, m.texture)


def with_values(model, names: tuple[str, ...], values):
    """``model`` with the parameters ``names`` ("mu0", "scale", "exponent") set to ``values``."""
    fields, texture = {}, {}
    for k, name in enumerate(names):
        if name == "mu0":
            fields["mu0"] = values[k]
        else:
            texture[name] = values[k]
    if texture:
        fields["texture"] = dataclasses.replace(model.texture, **texture)
    return dataclasses.replace(model, **fields) if fields else model


def _named(current, conductance, spin, *error) -> dict:
    """The chunk's arrays by quantity name (jaxmi.domain.SWEEP_QUANTITIES)."""
    out = {"conductance": conductance, "current": current, "spin": spin}
    return {**out, "error": error[0]} if error else out


@functools.partial(jax.jit, static_argnames=("config", "block", "with_error"))
def _chunk(J, T, V, *, config: Config, block: tuple[int, int, int], with_error: bool):
    out = observables.grid_arrays(J, T, V, config, with_error=with_error)
    return {q: x.reshape(*block, *x.shape[2:]) for q, x in _named(*out).items()}


@functools.partial(jax.jit, static_argnames=("names", "config", "block", "strategy", "with_error"))
def _family_chunk(J, M, T, V, model, *, names, config: Config, block, strategy, with_error):
    """A chunk on the general path: for each model point (row of M) the model with those
    parameter values, against cJ couplings and the (T, V) pairs."""

    def one(values):
        m = with_values(model, names, values)
        return family.grid_arrays(J, T, V, m, config, strategy, with_error)

    out = jax.lax.map(one, M)  # (cM, cJ, cP[, 3]) each

    def shaped(x):
        return jnp.moveaxis(x, 0, 1).reshape(*block, *x.shape[3:])

    return {q: shaped(x) for q, x in _named(*out).items()}


class Computer:
    """Dispatches chunks to the local devices, round-robin, asynchronously.

    ``submit(i)`` starts chunk i on device ``i % n_devices`` and returns at once (JAX's async
    dispatch); ``result(handle)`` waits for it and returns the valid part of ``quantities`` as
    numpy arrays: "conductance", "current" and "error" (the per-point estimate, jaxmi.estimate;
    computed only when asked for) (nj, ..., nt, nv), "spin" (nj, ..., nt, nv, 3).
    """

    def __init__(
        self,
        grid: Grid,
        layout: Layout,
        config: Config,
        devices=None,
        quantities: tuple[str, ...] = DEFAULT_SWEEP_QUANTITIES,
    ) -> None:
        self.grid, self.layout, self.config = grid, layout, config
        self.quantities = quantities
        self.with_error = "error" in quantities
        self.devices = list(devices) if devices is not None else jax.local_devices()
        self.model = None if grid.paper_path else build_model(grid)
        self.names = tuple(name for name, _ in grid.model_axes)
        self.strategy = None if self.model is None else sweep_strategy(grid, self.model)

    def submit(self, i: int):
        device = self.devices[i % len(self.devices)]
        if self.model is None:
            J, T, V = jax.device_put(inputs(self.grid, self.layout, i), device)
            block = self.layout.block
            return i, _chunk(J, T, V, config=self.config, block=block, with_error=self.with_error)
        J, M, T, V = self._family_inputs(i)
        J, M, T, V, model = jax.device_put((J, M, T, V, self.model), device)
        out = _family_chunk(
            J,
            M,
            T,
            V,
            model,
            names=self.names,
            config=self.config,
            block=self.layout.block,
            strategy=self.strategy,
            with_error=self.with_error,
        )
        return i, out

    def _family_inputs(self, i: int):
        if self.names:
            return inputs(self.grid, self.layout, i)
        J, T, V = inputs(self.grid, self.layout, i)
        return J, np.zeros((1, 0)), T, V  # one model point, nothing to set

    def result(self, handle) -> dict[str, np.ndarray]:
        i, out = handle
        valid = tuple(slice(0, r.stop - r.start) for r in self.layout.region(i))
        return {q: np.asarray(out[q])[valid] for q in self.quantities}


def describe_devices(devices=None) -> str:
    """A short description of the devices, e.g. 'cpu x4 (cpu)'."""
    devices = list(devices) if devices is not None else jax.local_devices()
    kinds = sorted({d.device_kind for d in devices})
    return f"{devices[0].platform} x{len(devices)} ({', '.join(kinds)})"


__all__ = [
    "Computer",
    "Layout",
    "build_model",
    "config_for",
    "describe_devices",
    "inputs",
    "plan",
    "plan_grid",
    "with_values",
]
