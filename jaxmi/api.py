"""Public functions: convert the inputs, check them while they are concrete, then call a jitted
batch over the per-point core (jaxmi.observables).

Units (DESIGN.md section 2): T and V (= eV) in units of vF*k0; J = (Jx, Jy, Jz) dimensionless
(J / vF); current in e vF k0 / h; conductance in e^2 / h.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jaxmi import config as _config
from jaxmi.config import Config
from jaxmi.errors import AccuracyWarning, DomainError, PrecisionError
from jaxmi.observables import Observables, grid, points


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _as_real(name: str, x: ArrayLike) -> Array:
    if not isinstance(x, jax.Array):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise DomainError(f"{name} must be a real number or array, got {x!r}") from err
    if np.dtype(x.dtype).kind not in "biuf":
        raise DomainError(f"{name} must be real, got dtype {x.dtype}")
    return jnp.asarray(x, dtype=float)


def _check_precision() -> None:
    if not jax.config.jax_enable_x64:
        raise PrecisionError(
            "jaxmi needs float64 (JAX_ENABLE_X64 is off): the T^4 effect of an isotropic "
            "impurity is a cancellation that float32 cannot hold; unset JAX_ENABLE_X64 or set it "
            "to 1"
        )


def _check_values(J: Array, T: Array, V: Array) -> None:
    for name, x in (("J", J), ("T", T), ("V", V)):
        if _is_concrete(x):
            bad = ~np.isfinite(np.asarray(x))
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                raise DomainError(f"{name} must be finite, got {np.asarray(x)[idx]} at index {idx}")
    if _is_concrete(T):
        t = np.asarray(T)
        if (t < 0).any():
            idx = tuple(int(i) for i in np.argwhere(t < 0)[0])
            raise DomainError(f"T must be >= 0 (units of vF*k0), got {t[idx]} at index {idx}")
    if _is_concrete(T) and _is_concrete(V):
        t, v = np.broadcast_arrays(np.asarray(T), np.asarray(V))
        u = np.where(t > 0, np.abs(v) / (2 * np.where(t > 0, t, 1.0)), 0.0)
        outside = (t > _config.T_MAX) | (np.abs(v) > _config.V_MAX) | (u > _config.U_MAX)
        if outside.any():
            warnings.warn(
                f"{int(outside.sum())} point(s) outside the validated domain T <= {_config.T_MAX},"
                f" |V| <= {_config.V_MAX}, |V|/2T <= {_config.U_MAX} (or T = 0): the default "
                "quadrature is not checked there; raise Config(order=...) and compare "
                "(docs/accuracy.md)",
                AccuracyWarning,
                stacklevel=4,
            )


def _prepare(J: ArrayLike, T: ArrayLike, V: ArrayLike) -> tuple[Array, Array, Array, tuple]:
    _check_precision()
    J, T, V = _as_real("J", J), _as_real("T", T), _as_real("V", V)
    if J.ndim == 0 or J.shape[-1] != 3:
        raise DomainError(f"J must have shape (..., 3) for (Jx, Jy, Jz), got shape {J.shape}")
    try:
        shape = np.broadcast_shapes(J.shape[:-1], T.shape, V.shape)
    except ValueError as err:
        raise DomainError(
            f"J (..., 3), T and V must broadcast: got J{J.shape}, T{T.shape}, V{V.shape}"
        ) from err
    _check_values(J, T, V)
    n = int(np.prod(shape))
    J = jnp.broadcast_to(J, (*shape, 3)).reshape(n, 3)
    T = jnp.broadcast_to(T, shape).reshape(n)
    V = jnp.broadcast_to(V, shape).reshape(n)
    return J, T, V, shape


def evaluate(J: ArrayLike, T: ArrayLike, V: ArrayLike, *, config: Config = Config()) -> Observables:
    """All observables at once (direct path), broadcast over leading axes.

    Args:
        J: couplings (Jx, Jy, Jz), shape (..., 3), dimensionless (J / vF).
        T: temperature, shape (...), units vF*k0, T >= 0 (T = 0 is the exact limit).
        V: bias eV, shape (...), units vF*k0.
        config: quadrature options.

    Returns:
        :class:`jaxmi.observables.Observables`; with J of shape (4, 1, 3), T of shape (5,) and
        V scalar, ``current`` has shape (4, 5), ``spin`` (4, 5, 3), ``density_matrix`` (4, 5, 2, 2).
    """
    J, T, V, shape = _prepare(J, T, V)
    out = points(J, T, V, config)
    return Observables(
        current=out.current.reshape(shape),
        conductance=out.conductance.reshape(shape),
        spin=out.spin.reshape(*shape, 3),
        density_matrix=out.density_matrix.reshape(*shape, 2, 2),
    )


def conductance(J: ArrayLike, T: ArrayLike, V: ArrayLike, *, config: Config = Config()) -> Array:
    """Differential conductance correction dG/G0 = d current / dV (Eq. 1), units e^2/h.

    Shapes as :func:`evaluate`: J (..., 3), T (...), V (...) broadcast to the result's shape.

    Example:
        >>> import jaxmi
        >>> float(jaxmi.conductance([0.25, 0.0, 0.25], 0.1, 0.0))  # Eq. 14: -Jx^2/2
        -0.03125
    """
    return evaluate(J, T, V, config=config).conductance


def current(J: ArrayLike, T: ArrayLike, V: ArrayLike, *, config: Config = Config()) -> Array:
    """Backscattering current (Eq. 12), units e vF k0 / h; odd in V. Shapes as :func:`evaluate`."""
    return evaluate(J, T, V, config=config).current


def spin(J: ArrayLike, T: ArrayLike, V: ArrayLike, *, config: Config = Config()) -> Array:
    """Impurity spin (<Sx>, <Sy>, <Sz>) = Tr(S rho), shape (..., 3); S^x is along the edge."""
    return evaluate(J, T, V, config=config).spin


def density_matrix(J: ArrayLike, T: ArrayLike, V: ArrayLike, *, config: Config = Config()) -> Array:
    """Stationary impurity density matrix (Eq. 10 = 0), shape (..., 2, 2), complex.

    Where the stationary state is not unique (a single non-zero coupling, J = 0, or T = V = 0)
    this is the state reached from rho = 1/2.
    """
    return evaluate(J, T, V, config=config).density_matrix


def evaluate_grid(
    J: ArrayLike, T: ArrayLike, V: ArrayLike, *, config: Config = Config()
) -> Observables:
    """Factorized path: every J against every (T, V) pair.

    Args:
        J: couplings, shape (nJ, 3).
        T, V: the (T, V) pairs, shape (nP,) each (units vF*k0).

    Returns:
        Observables with leading shape (nJ, nP). The energy integrals are computed once per pair
        and combined with all J; agrees with :func:`evaluate` to ~1e-15.
    """
    _check_precision()
    J, T, V = _as_real("J", J), _as_real("T", T), _as_real("V", V)
    if J.ndim != 2 or J.shape[-1] != 3:
        raise DomainError(f"J must have shape (nJ, 3), got shape {J.shape}")
    if T.ndim != 1 or T.shape != V.shape:
        raise DomainError(f"T and V must both have shape (nP,), got T{T.shape}, V{V.shape}")
    _check_values(J, T, V)
    return grid(J, T, V, config)
