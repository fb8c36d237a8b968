"""The least-squares problem: the model conductance as a function of the parameter vector
(:func:`model`), the weighted residuals and their Jacobian (:func:`_residuals_and_jacobian`, the
one compiled program of a fit that contains the model), and the padded traced inputs."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

# Imported at module level, not through ``jaxmi``'s lazy attributes: the engine's modules must
# be loaded before the first trace (a module-level constant created inside a trace would leak).
from jaxmi import api as _api
from jaxmi import config as _config
from jaxmi import family as _family  # noqa: F401  (loaded before the first trace)
from jaxmi import units
from jaxmi.config import Config
from jaxmi.errors import FitError
from jaxmi.fitting.data import Data
from jaxmi.fitting.parameters import (
    DEFAULT_FIXED,
    PARAMETERS,
    _Family,
    _family_of,
    _is_paper,
    _Problem,
    _Transform,
)
from jaxmi.model import Model


def model(
    params: Mapping[str, float],
    T_K,
    V_mV,
    *,
    config: Config = Config(),
    model: Model | None = None,
) -> Array:
    """Model conductance ``G / G0 = 1 + n dG(J; kB T/E0, eV/E0) + offset``, units e^2/h.

    Args:
        params: parameter values by name: ``Jx, Jy, Jz`` or ``J`` (dimensionless couplings,
            J / vF), ``E0_meV`` (vF k0 in meV), and optionally ``n`` (default 1) and ``offset``
            (e^2/h, default 0), ``mu0_meV`` (Fermi level from the Dirac point, meV; default 0)
            and the texture's parameters (default: those of ``model``'s texture). Missing
            coupling components are 0.
        T_K: temperatures in kelvin, shape (N,) (or anything broadcasting with ``V_mV``).
        V_mV: biases in millivolt, same shape.
        config: quadrature options of :func:`jaxmi.conductance`.
        model: spin S and texture kind (:class:`jaxmi.Model` with mu0 = 0; default: the
            paper's model).

    Returns:
        G / G0 at each point, the broadcast shape of ``T_K`` and ``V_mV``.

    Example:
        >>> import jaxmi.fitting
        >>> g = jaxmi.fitting.model({"Jx": 0.2, "Jz": 0.2, "E0_meV": 10.0}, [4.0, 8.0], [0.0, 0.0])
        >>> [round(float(x), 6) for x in g]  # Eq. 14 with Jy = 0, Jz = Jx: 1 - Jx^2/2
        [0.98, 0.98]
    """
    config = _config.check_config(config)
    fam, defaults = _family_of(model)
    allowed = PARAMETERS + fam.names
    unknown = [k for k in params if k not in allowed]
    if unknown:
        raise FitError(f"unknown parameter {unknown[0]!r} (allowed: {', '.join(allowed)})")
    iso = "J" in params
    if iso and any(k in params for k in ("Jx", "Jy", "Jz")):
        raise FitError("give either J (isotropic) or Jx, Jy, Jz, not both")
    if "E0_meV" not in params:
        raise FitError("E0_meV (vF k0 in meV) has no value")
    base = {**DEFAULT_FIXED, **defaults}
    values = np.array([float(params.get(k, base.get(k, 0.0))) for k in allowed])
    extra = dict(zip(fam.names, values[len(PARAMETERS) :], strict=True))
    if _is_paper(fam, {**defaults, **extra}, ()):
        values, fam = values[: len(PARAMETERS)], None
    return _model(
        jnp.asarray(values),
        jnp.asarray(iso),
        jnp.asarray(T_K, float),
        jnp.asarray(V_mV, float),
        config,
        fam,
    )


def _model(
    p: Array,
    isotropic: Array,
    T_K: Array,
    V_mV: Array,
    config: Config,
    family: _Family | None = None,
) -> Array:
    """``1 + n dG + offset`` for the vector ``p`` of all :data:`PARAMETERS` (in that order),
    followed by ``family.names`` unless ``family`` is None (the paper's model); ``isotropic``
    (a traced bool) selects J = (J, J, J) over (Jx, Jy, Jz)."""
    J = jnp.where(isotropic, p[3] * jnp.ones(3), p[:3])
    E0, n, offset = p[4], p[5], p[6]
    T, V = units.temperature(T_K, E0), units.bias(V_mV, E0)
    if family is None:
        dG = _api.conductance(J, T, V, config=config)
    else:
        m = family.build(p[len(PARAMETERS) :], E0)
        dG = _api.conductance(J, T, V, model=m, config=config)
    return 1.0 + n * dG + offset


#: Data are padded to a multiple of this many points (with zero weight), so that data sets of
#: similar size share a compiled solver.
PAD = 16


class _Data(NamedTuple):
    T_K: Array  # (N_pad,)
    V_mV: Array  # (N_pad,)
    G: Array  # (N_pad,)
    weight: Array  # (N_pad,): 1 / G_err (1 without G_err), 0 on padding


class _Args(NamedTuple):
    values: Array  # (7,) all PARAMETERS, then the family's names unless on the paper path
    # (fixed values; free entries are overwritten)
    isotropic: Array  # bool
    free_index: Array  # (k,) int
    transform: _Transform
    data: _Data


def _weighted_residuals(
    p_free: Array, a: _Args, config: Config, family: _Family | None = None
) -> Array:
    """(model - G) / G_err, shape (N_pad,), as a function of the free physical parameters."""
    p = a.values.at[a.free_index].set(p_free)
    d = a.data
    return (_model(p, a.isotropic, d.T_K, d.V_mV, config, family) - d.G) * d.weight


@functools.partial(jax.jit, static_argnames=("config", "family"))
def _residuals_and_jacobian(
    p_free: Array, args: _Args, *, config: Config, family: _Family | None = None
) -> tuple[Array, Array]:
    """Weighted residuals (N_pad,) and their Jacobian (N_pad, k) in the free physical
    parameters, by forward-mode autodiff: one tangent per free parameter, the residuals
    themselves traced once. The one compiled program of a fit that contains the model."""

    def r(pf):
        return _weighted_residuals(pf, args, config, family)

    basis = jnp.eye(p_free.shape[0], dtype=p_free.dtype)
    return jax.vmap(lambda t: jax.jvp(r, (p_free,), (t,)), out_axes=(None, 1))(basis)


def _make_args(prob: _Problem, data: Data) -> tuple[_Args, np.ndarray]:
    """The traced inputs of the solver: the problem's arrays and the data padded to a multiple
    of :data:`PAD` points with zero weight. Returns (args, weights of the real points)."""
    n_points = data.G.shape[0]
    pad = PAD * -(-n_points // PAD) - n_points

    def padded(x, fill):
        return jnp.asarray(np.concatenate([x, np.full(pad, fill)]))

    weight = 1.0 / data.G_err if data.G_err is not None else np.ones(n_points)
    args = _Args(
        values=jnp.asarray(prob.solver_values()),
        isotropic=jnp.asarray(prob.isotropic),
        free_index=jnp.asarray(prob.free_index),
        transform=_Transform(
            jnp.asarray(prob.kinds),
            jnp.asarray(prob.lower),
            jnp.asarray(prob.upper),
            jnp.asarray(prob.scale),
        ),
        data=_Data(
            padded(data.T_K, data.T_K[0]),
            padded(data.V_mV, data.V_mV[0]),
            padded(data.G, data.G[0]),
            padded(weight, 0.0),
        ),
    )
    return args, weight
