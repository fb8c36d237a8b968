"""Composite Gauss-Legendre quadrature along a deformed contour, with static shapes.

The energy integrands are even in eps, so the engine integrates over the half line and
doubles. The path from 0 is

* the bias window ``[0, a]``, ``a = |V|/2``, on the real axis, in panels graded geometrically
  toward the Fermi edge at ``a`` (for ``T << eV`` the integrand has an edge of width T there);
* a ray ``a + t exp(i pi/4)``, ``t in [0, L]``, in panels doubling in length from the edge,
  with ``Re(eps) - a`` reaching ``tail_cutoff * T`` at its end. Below T = T_TURN the ray stays
  on the real axis (no oscillation problem there, and no cancellation of the real part).

Why this path is exact: the integrands are analytic except at the Fermi poles
``+-V/2 + i pi T (2m + 1)``, all on the lines ``Re(eps) = +-a``. The region swept between the
real half line ``[a, inf)`` and the ray has ``Re(eps) > a``, so it holds no pole, for any T and V.
On the ray ``Im(eps^2) >= 0``, so every kernel ``exp(i n eps^2)`` (n > 0) decays like a Gaussian
instead of oscillating: a fixed order serves every T (on the real axis the order would have to
grow like T^2).

The pieces are assembled by jaxmi.integrals.coefficients (the window in real arithmetic, the
tail with table Fermi factors). All node positions depend on (T, V) only through ``a``, the
grading ratio and the ray length.
The value of a contour integral does not depend on where the contour runs, so these enter
under ``stop_gradient``: the nodes carry no tangent, and derivatives w.r.t. T and V only flow
through the Fermi functions. At T = 0 the window end is a true step of the integrand; its
motion (the Leibniz term of d/dV) is added by jaxmi.integrals.coefficients.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

#: Direction of the tail ray.
RAY = np.exp(1j * np.pi / 4)
#: Below this T the tail stays on the real axis: its oscillation is mild there (phase
#: <= 4 (cutoff T)^2), and on the real axis Re and Im of exp(i n eps^2) - 1 are computed apart,
#: while on the ray the O(theta^2) real part of an integral is a cancellation of O(theta)
#: complex terms (1e-9 relative lost at T = 1e-3 for an isotropic impurity).
T_TURN = 0.05
#: The geometric grading ratio of the window panels stays in [Q_MIN, Q_MAX].
Q_MIN, Q_MAX = 0.05, 0.5


@functools.cache
def gauss_legendre(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1], shape (order,) each (numpy, float64)."""
    x, w = np.polynomial.legendre.leggauss(order)
    return 0.5 * (x + 1.0), 0.5 * w


def composite(breaks: Array, order: int) -> tuple[Array, Array]:
    """Nodes and weights of Gauss-Legendre on each panel [breaks[k], breaks[k+1]].

    Args:
        breaks: panel ends, shape (P + 1,), increasing (equal ends give an empty panel).
        order: nodes per panel.

    Returns:
        (nodes, weights), each of shape (P * order,).
    """
    x, w = gauss_legendre(order)
    lo, width = breaks[:-1, None], (breaks[1:] - breaks[:-1])[:, None]
    return (lo + width * x[None, :]).ravel(), (width * w[None, :]).ravel()


def window_breaks(a: Array, T: Array, panels: int) -> Array:
    """Panel ends on [0, a], graded toward a: ``a (1 - q^k)``, k < panels, then a.

    The ratio q is chosen so the last panel is about T wide (clipped to [Q_MIN, Q_MAX]).
    Shape (panels + 1,).
    """
    a_safe = jnp.where(a > 0, a, 1.0)
    ratio = jnp.clip(jnp.where((a > 0) & (T > 0), T / a_safe, 1.0), 1e-300, 1.0)
    q = jax.lax.stop_gradient(jnp.clip(ratio ** (1.0 / (panels - 1)), Q_MIN, Q_MAX))
    k = jnp.arange(panels, dtype=float)
    return jnp.concatenate([a * (1.0 - q**k), a[None]])


def _ray_unit_breaks(panels: int) -> np.ndarray:
    k = np.arange(1, panels + 1, dtype=float)
    return np.concatenate([[0.0], 2.0 ** (k - panels)])


def ray_breaks(T: Array, panels: int, cutoff: float) -> Array:
    """Panel ends t on the ray: 0, then L 2^(k - panels), k = 1..panels. Shape (panels + 1,)."""
    length = jax.lax.stop_gradient(cutoff * np.sqrt(2.0) * T)  # Re(eps) - a reaches cutoff T
    return length * jnp.asarray(_ray_unit_breaks(panels))


def ray_fractions(order: int, panels: int, cutoff: float) -> np.ndarray:
    """t / T at the tail nodes of :func:`ray_breaks`, shape (panels * order,) (numpy; no T)."""
    x, _ = gauss_legendre(order)
    br = cutoff * np.sqrt(2.0) * _ray_unit_breaks(panels)
    return (br[:-1, None] + np.diff(br)[:, None] * x[None, :]).ravel()
