"""Closed forms of the paper (Eqs. 13-19), as JAX functions, each marked exact or asymptotic.

Units as everywhere in jaxmi: T and V (= eV) in units of vF*k0, J dimensionless (J/vF),
conductance in e^2/h, spin as <S^j> = Tr(S^j rho). ``scriptT = 2 (2T)^2`` is the paper's
calligraphic T (below Eq. 14).

Exact within the model (test to ~1e-10): :func:`ic`, :func:`is_`, :func:`eq13_spin_slope`,
:func:`eq14_linear_conductance`, :func:`eq16_isotropic_exact`.
Asymptotic (test with the error law they imply): :func:`eq15_spin_slope` (relative O(T^4) on
<Sz>, O(T^2) on <Sx>), :func:`eq16_isotropic_asymptotic` (relative O(T^4)),
:func:`eq17_large_bias` (relative O(V^4) at T = 0), :func:`eq18_crossover` and
:func:`eq19_polarization_ratio` (relative O(T^4) at fixed u), :func:`eq19_sx0`.

Misprint: the text under Eq. 19 gives S_x^(0) = -(2u/3)(pi T/vF k0)^2 and calls it the linear
value of Sx = Tr(S^x rho). Eq. 15 (and Eq. 13) give rho = 1/2 + (V/2T)(... - (2/3)(pi T)^2 S^x),
hence Tr(S^x rho) = -(u/3)(pi T)^2: the printed value is the coefficient of S^x in rho, twice
<S^x>. The engine agrees with Eq. 15 (tests/test_asymptotics.py: test_eq15_state_t_law,
test_eq19_misprint); the ratio Eq. 19 is unaffected because both of its sides use the same
normalisation.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxmi.quadrature import gauss_legendre
from jaxmi.texture import phase_minus_one

# Ic + i Is = int_0^inf exp(i x e^2) sech^2(e) de. For x >= X_RAY along e = t exp(i pi/4): the
# poles of sech^2 lie on the imaginary axis, so the rotation is exact for x >= 0, and
# exp(i x e^2) = exp(-x t^2) decays instead of oscillating. For small x on the real axis: there
# Re and Im of exp(i x e^2) - 1 are computed apart, while on the ray the O(x^2) real part would
# be a cancellation of O(x) complex terms (relative error ~1e-16 / x).
_PANEL, _NPANEL, _ORDER = 0.5, 80, 24
X_RAY = 0.1


@functools.cache
def _rule(angle: float) -> tuple[np.ndarray, np.ndarray]:
    x, w = gauss_legendre(_ORDER)
    lo = _PANEL * np.arange(_NPANEL)[:, None]
    t = (lo + _PANEL * x[None, :]).ravel()
    rot = np.exp(1j * angle)
    return rot * t, rot * np.tile(_PANEL * w, _NPANEL)


def _deviation_on(angle: float, x: Array) -> Array:
    z, w = _rule(angle)
    e = np.exp(-2.0 * z)
    sech2 = 4.0 * e / (1.0 + e) ** 2
    z2 = jnp.reshape(z**2, (1,) * x.ndim + (-1,))
    return phase_minus_one(1, x[..., None] * z2) @ (w * sech2)


def _deviation(x: Array) -> Array:
    """(Ic(x) - 1) + i Is(x) = int_0^inf (exp(i x e^2) - 1) sech^2(e) de, without cancellation."""
    x = jnp.asarray(x, dtype=float)
    small = x < X_RAY
    return jnp.where(
        small,
        _deviation_on(0.0, jnp.where(small, x, 0.0)),
        _deviation_on(np.pi / 4, jnp.where(small, X_RAY, x)),
    )


def one_minus_ic(x: Array) -> Array:
    """1 - Ic(x), accurate also where it is O(x^2) small."""
    return -jnp.real(_deviation(x))


def ic(x: Array) -> Array:
    """Ic(x) = int_0^inf cos(x e^2) / cosh^2(e) de, x >= 0 (below Eq. 14). Exact to ~1e-15."""
    return 1.0 - one_minus_ic(x)


def is_(x: Array) -> Array:
    """Is(x) = int_0^inf sin(x e^2) / cosh^2(e) de, x >= 0 (below Eq. 14). Exact to ~1e-15."""
    return jnp.imag(_deviation(x))


def script_t(T: Array) -> Array:
    """The paper's scriptT = 2 (2 T / vF k0)^2."""
    return 8.0 * jnp.asarray(T) ** 2


def eq13_spin_slope(J: Array, T: Array) -> Array:
    """d<S>/dV at V = 0 from Eq. 13 (exact in linear response), shape (..., 3).

    rho = 1/2 + (V/T) Jy (Jx Ic/(Jx^2+Jy^2) S^z - Jz Is/(Jz^2+Jy^2) S^x), Ic, Is at scriptT;
    <S^j> is half the coefficient of S^j. Needs Jy != 0 or the ratios are 0/0.
    """
    J = jnp.asarray(J)
    jx, jy, jz = J[..., 0], J[..., 1], J[..., 2]
    x = script_t(T)
    sz = jy * jx * ic(x) / (jx**2 + jy**2) / (2.0 * T)
    sx = -jy * jz * is_(x) / (jz**2 + jy**2) / (2.0 * T)
    return jnp.stack([sx, jnp.zeros_like(sx), sz], -1)


def eq14_linear_conductance(J: Array, T: Array) -> Array:
    """Linear conductance dG_L/G0 of Eq. 14 (exact in linear response, any diagonal J, any T).

    Needs Jx^2 + Jy^2 > 0; the last term's ratio Jz^2/(Jz^2+Jy^2) is multiplied by Jy^2, and is
    taken as 0 when Jy = Jz = 0 (its limit).
    """
    J = jnp.asarray(J)
    jx2, jy2, jz2 = J[..., 0] ** 2, J[..., 1] ** 2, J[..., 2] ** 2
    x = script_t(T)
    m1, s1, m2 = one_minus_ic(x), is_(x), one_minus_ic(2.0 * x)
    den = jnp.where(jz2 + jy2 > 0, jz2 + jy2, 1.0)
    # Ic^2 - 1 = -(1 - Ic)(2 - (1 - Ic)): no cancellation when Ic ~ 1.
    return (
        -0.5 * (jx2 - jy2) ** 2 / (jx2 + jy2)
        + 0.25 * (jx2 - jz2) * m2
        + 2.0 * jy2 * (-jx2 / (jx2 + jy2) * m1 * (2.0 - m1) + jz2 / den * s1**2)
    )


def eq16_isotropic_exact(J: Array, T: Array) -> Array:
    """Isotropic linear conductance -J^2 (1 - Ic^2 - Is^2), Eq. 16 first form (exact)."""
    x = script_t(T)
    m = one_minus_ic(x)
    return -(jnp.asarray(J) ** 2) * (m * (2.0 - m) - is_(x) ** 2)


def eq16_isotropic_asymptotic(J: Array, T: Array) -> Array:
    """-(4 J^2 / 45) (2 pi T)^4, Eq. 16 second form (asymptotic: relative error O(T^4))."""
    return -4.0 * jnp.asarray(J) ** 2 / 45.0 * (2.0 * np.pi * jnp.asarray(T)) ** 4


def eq15_spin_slope(T: Array) -> Array:
    """d<S>/dV at V = 0 for an isotropic impurity, Eq. 15 second form (asymptotic), shape (..., 3).

    <Sz> slope 1/(4T) (1 - 14/15 (pi T)^4), <Sx> slope -(1/(4T)) (2/3) (pi T)^2.
    """
    T = jnp.asarray(T)
    p2 = (np.pi * T) ** 2
    sz = (1.0 - 14.0 / 15.0 * p2**2) / (4.0 * T)
    sx = -(2.0 / 3.0) * p2 / (4.0 * T)
    return jnp.stack([sx, jnp.zeros_like(sx), sz], -1)


def eq17_large_bias(J: Array, V: Array) -> Array:
    """-(J^2/18) V^4, Eq. 17 (T << eV << vF k0; relative error O(V^4) at T = 0)."""
    return -(jnp.asarray(J) ** 2) / 18.0 * jnp.asarray(V) ** 4


def _crossover_terms(u: Array) -> tuple[Array, Array, Array, Array, Array]:
    """(u, tanh u, (u/pi)^2, u coth u, tanh(u)/u) with the u = 0 limits (1) of the last two."""
    u = jnp.asarray(u, dtype=float)
    th = jnp.tanh(u)
    zero = u == 0
    ucoth = jnp.where(zero, 1.0, u / jnp.where(zero, 1.0, th))
    thu = jnp.where(zero, 1.0, th / jnp.where(zero, 1.0, u))
    return u, th, (u / np.pi) ** 2, ucoth, thu


def eq18_crossover(u: Array) -> Array:
    """dG_iso(T, V) / dG_L_iso(T) as a function of u = eV/2T, Eq. 18 (asymptotic in T)."""
    u, th, p2, ucoth, thu = _crossover_terms(u)
    return (
        1.0
        - 0.5 * th**2
        + 3.75 * p2 * (1.0 + thu - 0.5 * th**2)
        + 1.25 * p2**2 * (1.0 + (4.0 + 2.0 * ucoth - u**2) / (2.0 * (1.0 + ucoth) ** 2))
    )


def eq19_polarization_ratio(u: Array) -> Array:
    """Sx(T, V) / Sx^(0)(T, V) as a function of u = eV/2T, Eq. 19 (asymptotic in T)."""
    u, _, p2, ucoth, thu = _crossover_terms(u)
    return (1.0 + p2 + (1.0 + 3.0 * p2) * thu) / (1.0 + ucoth)


def eq19_sx0(T: Array, V: Array) -> Array:
    """Linear-regime <Sx> = Tr(S^x rho) = -(u/3)(pi T)^2 of an isotropic impurity, u = V/2T.

    Corrected from the printed -(2u/3)(pi T)^2 (module docstring: misprint by a factor 2).
    """
    T = jnp.asarray(T)
    return -(jnp.asarray(V) / (2.0 * T)) / 3.0 * (np.pi * T) ** 2


# --- Beyond the paper: the gated Fermi level (docs/physics.md, "The model family") -----------
# For an isotropic impurity of spin S at V = 0 and Fermi level mu0 the general path gives
#     dG = -(4/3) S (S + 1) J^2 (1 - |A|^2),   A = int (-f'(eps - mu0)) exp(2 i theta(eps)) d eps,
# i.e. 1 - |A|^2 is the variance of the electron spin direction (cos 2theta, sin 2theta) over the
# thermal window. At mu0 = 0, S = 1/2 and theta = eps^2 it is Eq. 16 (A = Ic + i Is). Exact
# within the model; evaluated here in numpy by an independent 1D rule.


def gate_variance(T: float, mu0: float) -> float:
    """1 - |A|^2 for theta = eps^2 (T > 0, units vF*k0), without cancellation.

    With eps = mu0 + 2 T y the window is sech^2(y)/2 dy and 2 theta(eps) - 2 theta(mu0) =
    2 Delta(y), Delta = 4 T y (mu0 + T y). With beta = int w (exp(2 i Delta) - 1) dy,
    1 - |A|^2 = -2 Re beta - |beta|^2, and Re beta = -2 int w sin^2 Delta: no digits lost to
    1 - |A| ~ T^2. Composite Gauss-Legendre on |y| <= 40 with panels of at most 1 rad of phase.
    """
    T, mu0 = float(T), float(mu0)
    if T <= 0:
        raise ValueError(f"gate_variance needs T > 0, got {T}")
    span = 40.0
    fastest = 8.0 * T * (abs(mu0) + 2.0 * T * span)  # |d(2 Delta)/dy| on the range
    n_panels = int(np.ceil(2 * span / min(0.5, 1.0 / fastest)))
    x, w = gauss_legendre(16)
    edges = np.linspace(-span, span, n_panels + 1)
    y = (edges[:-1, None] + np.diff(edges)[:, None] * x[None, :]).ravel()
    wy = (np.diff(edges)[:, None] * w[None, :]).ravel()
    e = np.exp(-2.0 * np.abs(y))
    weight = wy * 2.0 * e / (1.0 + e) ** 2  # sech^2(y) / 2, overflow-free
    delta = 4.0 * T * y * (mu0 + T * y)
    re_beta = -2.0 * np.sum(weight * np.sin(delta) ** 2)
    im_beta = np.sum(weight * np.sin(2.0 * delta))
    return -2.0 * re_beta - (re_beta**2 + im_beta**2)


def gate_isotropic_exact(J: float, T: float, mu0: float, spin: float = 0.5) -> float:
    """Linear conductance of an isotropic impurity (Jx = Jy = Jz = J) of spin S at Fermi level
    mu0, theta = eps^2: -(4/3) S (S+1) J^2 (1 - |A|^2). Exact within the model; units e^2/h."""
    return -(4.0 / 3.0) * spin * (spin + 1.0) * J * J * gate_variance(T, mu0)


def gate_isotropic_low_t(J: float, T: float, mu0: float, spin: float = 0.5) -> float:
    """Low-T law of :func:`gate_isotropic_exact`: 1 - |A|^2 = (16 pi^2/3) mu0^2 T^2
    + (64/45 - 256 mu0^4/15) pi^4 T^4 + O(T^6) (cumulants of the sech^2 window; at mu0 = 0 the
    T^4 term is Eq. 16). So dG ~ -(64 pi^2/9) S(S+1) J^2 mu0^2 T^2: a gate turns the T^4 law
    into T^2. Asymptotic: relative error O(T^2) at mu0 != 0 (O(T^2) at mu0 = 0 as well)."""
    c2 = 16.0 * np.pi**2 / 3.0 * mu0**2
    c4 = (64.0 / 45.0 - 256.0 * mu0**4 / 15.0) * np.pi**4
    return -(4.0 / 3.0) * spin * (spin + 1.0) * J * J * (c2 * T**2 + c4 * T**4)
