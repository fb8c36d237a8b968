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


def ray_unit_breaks(panels: int) -> np.ndarray:
    """Ray panel ends in units of its length: 0, then 2^(k - panels), k = 1..panels."""
    k = np.arange(1, panels + 1, dtype=float)
    return np.concatenate([[0.0], 2.0 ** (k - panels)])


def ray_breaks(T: Array, panels: int, cutoff: float) -> Array:
    """Panel ends t on the ray: 0, then L 2^(k - panels), k = 1..panels. Shape (panels + 1,)."""
    length = jax.lax.stop_gradient(cutoff * np.sqrt(2.0) * T)  # Re(eps) - a reaches cutoff T
    return length * jnp.asarray(ray_unit_breaks(panels))


def ray_fractions(order: int, panels: int, cutoff: float) -> np.ndarray:
    """t / T at the tail nodes of :func:`ray_breaks`, shape (panels * order,) (numpy; no T)."""
    x, _ = gauss_legendre(order)
    br = cutoff * np.sqrt(2.0) * ray_unit_breaks(panels)
    return (br[:-1, None] + np.diff(br)[:, None] * x[None, :]).ravel()


# --- error estimate ---------------------------------------------------------------------------
#: Legendre degrees probed per panel by :func:`error_bound`: the top TAIL of the order, as three
#: pairs (a pair, so that an integrand of one parity on the panel cannot hide).
TAIL = 6
#: Safety factor on the extrapolated tail (see :func:`tail_bound`).
KAPPA = 10.0
#: The measured acceleration of the decay is trusted to at most SIGMA_MAX.
SIGMA_MAX = 2.0
#: Roundoff floor of a weighted sum: ROUNDOFF * sum |w f| (float64; a few ulp per node value).
ROUNDOFF = 8.0 * float(np.finfo(float).eps)


@functools.cache
def legendre_tail(order: int) -> np.ndarray:
    """(order, TAIL): column i maps the weighted node values ``v_j = w_j f(x_j)`` of one panel to
    its discrete Legendre coefficient of degree ``m = order - 1 - i`` in units of the integral,
    ``b_m = (2m + 1) sum_j v_j P_m(2 x_j - 1)`` (numpy, float64; the columns of negative
    degrees, when order < TAIL, are zeros)."""
    x, _ = gauss_legendre(order)
    m = np.arange(order - 1, order - 1 - TAIL, -1)
    out = np.zeros((order, TAIL))
    keep = m >= 0
    basis = np.polynomial.legendre.legvander(2.0 * x - 1.0, order - 1)[:, m[keep]]
    out[:, keep] = basis * (2.0 * m[keep] + 1.0)[None, :]
    return out


def _abs1(x: Array) -> Array:
    """|Re x| + |Im x|: within sqrt(2) above |x|, no square root."""
    return jnp.abs(jnp.real(x)) + jnp.abs(jnp.imag(x)) if jnp.iscomplexobj(x) else jnp.abs(x)


def touching(eps: Array, order: int, point: float = 0.0) -> Array:
    """Which panels of a composite rule (:func:`composite`'s nodes ``eps``, (P * order,), real or
    complex, panel-major) have ``point`` at an end or inside: their ends are recovered from the
    first and last node. Shape (P,), bool. For a texture with a kink (a branch point) at the
    Dirac point, whose Legendre coefficients decay only algebraically there."""
    x, _ = gauss_legendre(order)
    nodes = eps.reshape(-1, order)
    width = (nodes[:, -1] - nodes[:, 0]) / (x[-1] - x[0])
    lo = nodes[:, 0] - width * x[0] - point
    hi = lo + width
    near = jnp.minimum(jnp.abs(lo), jnp.abs(hi)) <= 1e-9 * jnp.abs(width)
    inside = (jnp.real(lo) < 0) & (jnp.real(hi) > 0) & (jnp.imag(lo) == 0) & (jnp.imag(hi) == 0)
    return (near | inside) & (jnp.abs(width) > 0)


def tail_bound(tails: Array, order: int) -> Array:
    """Per-panel error bounds from the probed coefficients ``tails`` (..., TAIL) (degrees
    order-1, order-2, ... downward).

    The larger of each pair, t1, t2, t3 (centred on degrees k1 = order - 1.5, k1 - 2, k1 - 4),
    give the decay per two degrees at the top, ``r = t1 / t2``, and its acceleration: for an
    entire integrand (the Gaussian-damped kernels on the ray) the ratio falls like k^-sigma,
    ``sigma = log((t2 / t3) / r) / log(k1 / (k1 - 2))`` (0 where it does not fall: a pole near
    the panel, geometric decay). The Gauss error is about the coefficient of degree 2 order,
    which the rule cannot see: extrapolated from t1 step by step with the rate
    ``min(1, r (k1 / k)^sigma)`` (sigma capped at SIGMA_MAX), times the safety factor KAPPA,
    and at most t1: above the truth as long as the decay does not slow down with the degree,
    which it does not for an analytic integrand (poles: geometric; entire: faster and faster).
    An unresolved panel (no decay) gives t1 itself.
    """
    a = _abs1(tails)
    t1 = jnp.maximum(a[..., 0], a[..., 1])
    t2 = jnp.maximum(a[..., 2], a[..., 3])
    t3 = jnp.maximum(a[..., 4], a[..., 5])
    r = jnp.where(t2 > 0, t1 / jnp.where(t2 > 0, t2, 1.0), 1.0)
    r_below = jnp.where(t3 > 0, t2 / jnp.where(t3 > 0, t3, 1.0), r)
    k1 = order - 1.5
    steps = np.arange(k1 + 2.0, 2.0 * order + 2.0, 2.0)  # the degrees extrapolated to
    decaying = r < 1.0
    if k1 - 4.0 > 0.0:
        ratio = jnp.where(decaying, r_below / jnp.where(decaying, r, 1.0), 1.0)
        sigma = jnp.log(jnp.clip(ratio, 1.0, None)) / np.log(k1 / (k1 - 2.0))
        sigma = jnp.minimum(sigma, SIGMA_MAX)
    else:
        sigma = jnp.zeros_like(r)
    # The rate: where the top pair decays slower than the one below (r > r_below: a sequence
    # whose decay fluctuates, as for a product of an entire kernel and a function with poles
    # on a panel several pole distances long), the mean rate over the four top degrees,
    # sqrt(r r_below) = sqrt(t1 / t3); the last ratio alone would extrapolate a momentary
    # slowdown over the next ~2 order degrees.
    rate = jnp.where(decaying & (r_below < r), jnp.sqrt(r * r_below), r)
    # prod_k min(1, rate (k1 / k)^sigma) with rate < 1 (sigma = 0 otherwise): rate^m exp(sigma C)
    log_c = float(np.sum(np.log(k1 / steps)))
    factor = jax.lax.integer_pow(jnp.minimum(rate, 1.0), len(steps)) * jnp.exp(sigma * log_c)
    return t1 * jnp.minimum(1.0, KAPPA * factor)


def _panel_tails(v: Array, order: int) -> Array:
    """(..., P, TAIL) probed coefficients of v (..., P * order), real or complex (the Legendre
    columns stay real: a complex v is two real products)."""
    panels = v.reshape(*v.shape[:-1], -1, order)
    legendre = jnp.asarray(legendre_tail(order))
    if jnp.iscomplexobj(panels):
        return jnp.real(panels) @ legendre + 1j * (jnp.imag(panels) @ legendre)
    return panels @ legendre


def error_bound(v: Array, order: int) -> Array:
    """Bound on the quadrature error of ``sum(v, -1)`` for weighted node values of a composite rule.

    ``v`` (..., P * order), real or complex: ``w_j f(x_j)`` with (x, w) from :func:`composite`
    (panel-major, as it returns them). Any piece built from :func:`composite` can call it;
    :func:`product_error_bound` is the cheap form for a family of products.

    The sum over panels of :func:`tail_bound` of the panel's top discrete Legendre coefficients
    (:func:`legendre_tail`), plus the roundoff floor ``ROUNDOFF * sum |v|`` (float64: a sum of
    node values with relative errors of a few ulp each is never better).

    Returns:
        (...,) real, >= 0, in the units of the integral.
    """
    tails = _panel_tails(v, order)
    return jnp.sum(tail_bound(tails, order), axis=-1) + ROUNDOFF * jnp.sum(_abs1(v), axis=-1)


def product_error_bound(win: Array, kernels: Array, order: int, kinked=None) -> Array:
    """Error bounds of the integrals of ``win[i] * kernels[k]`` (weighted node values), (m, k),
    from one probed integrand: ``win`` (m, N) factors times weights, ``kernels`` (k, N).

    The factors ``win`` must share their singularities (the Fermi windows: the same poles) and
    the last kernel must be the least smooth (exp(4 i theta) - 1 after exp(2 i theta) - 1).
    Then the probe ``sum_i win[i] * kernels[-1]`` is resolved no better than any product, and
    each integral's bound is the probe's per panel (:func:`tail_bound`), relative to the
    probe's size bound ``sum_j |sum_i win[i]_j| max_j |kernels[-1]|``, times the product's size
    bound ``sum_j |win[i]_j| max_j |kernels[k]|``, plus the roundoff floor ROUNDOFF times the
    same size bound (>= the floor of :func:`error_bound`).
    One probed integrand instead of m k: the estimate costs a few percent of the integrals.
    """
    aw = jnp.sum(_abs1(win).reshape(win.shape[0], -1, order), axis=-1)  # (m, P)
    bk = jnp.max(_abs1(kernels).reshape(kernels.shape[0], -1, order), axis=-1)  # (k, P)
    probe = jnp.sum(win, axis=0) * kernels[-1]
    tails = _panel_tails(probe, order)
    tb = tail_bound(tails, order)  # (P,)
    if kinked is not None:
        # A kink at a panel end: algebraic decay, whose rate the top coefficients misjudge
        # (parity noise looks like acceleration); the top coefficient itself bounds the Gauss
        # error there, by a factor ~order (|eps|^p at an end: coefficients ~ k^-(2p+1), the
        # error ~ order^-(2p+2)).
        a = _abs1(tails)
        tb = jnp.where(kinked, jnp.maximum(a[..., 0], a[..., 1]), tb)
    size = jnp.sum(aw, axis=0) * bk[-1]  # >= sum |probe| per panel
    ok = size > 0
    rel = jnp.where(ok, tb / jnp.where(ok, size, 1.0), 0.0)
    return jnp.einsum("mp,kp->mk", aw, bk * (rel + ROUNDOFF)[None, :])
