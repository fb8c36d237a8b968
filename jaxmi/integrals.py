"""Energy integrals of Fermi windows times texture kernels, per (T, V) pair.

Everything the master equation (Eq. 10) and the current (Eq. 12) need from the electrons is
a handful of numbers per (T, V), for three windows (R, L are the chiral branches):

* ``d``:  W_RR + W_LL = f_R (1 - f_R) + f_L (1 - f_L)  (forward scattering: dephasing),
* ``RL``: W_RL = f_R (1 - f_L)                          (backscattering R -> L),
* ``LR``: W_LR = f_L (1 - f_R)                          (backscattering L -> R),

with f_R(eps) = f(eps - V/2), f_L(eps) = f(eps + V/2) (Eq. 11). For each window w:

* ``w``: int W d eps, in closed form (the texture-free part), and
* ``E_n = int W (exp(i n theta) - 1) d eps`` for n = 2, 4, the texture deviations. Their real
  and imaginary parts are the integrals of W (cos n theta - 1) and W sin n theta, because W is
  real on the real axis; products such as cos^2 2 theta reduce to these by trigonometry.

Splitting each integral into a closed-form texture-free part plus a deviation computed with the
cancellation-free kernel of :func:`jaxmi.texture.phase_minus_one` keeps the O(T^4) result of an
isotropic impurity accurate to ~1e-14 relative at T = 1e-3 (DESIGN.md section 6).

All energies are in units of vF*k0; results are in the same units (integrals d eps).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from jaxmi import texture
from jaxmi.config import Config
from jaxmi.quadrature import contour


class Coefficients(NamedTuple):
    """Energy integrals of one (T, V) pair; a pytree, batched along leading axes.

    Attributes:
        V: bias eV, shape (...), units vF*k0.
        w: closed-form window integrals [d, RL, LR], shape (..., 3), units vF*k0.
        E2: int W (exp(2 i theta) - 1) d eps for the windows [d, RL, LR], shape (..., 3), complex.
        E4: the same with exp(4 i theta), shape (..., 3), complex.
        pol: tanh(V/2T) = (w_RL - w_LR)/(w_RL + w_LR), shape (...); sign(V) at T = 0.
    """

    V: Array
    w: Array
    E2: Array
    E4: Array
    pol: Array


def fermi(y: Array) -> Array:
    """Fermi function 1 / (exp(y) + 1) for complex y = (eps - mu)/T, overflow-free.

    The naive form overflows for Re(y) >> 1 (inf/inf = NaN, also in tangents); this one only
    ever exponentiates numbers with non-positive real part.
    """
    pos = jnp.real(y) >= 0
    e = jnp.exp(jnp.where(pos, -y, y))
    return jnp.where(pos, e / (1.0 + e), 1.0 / (1.0 + e))


def step(x: Array) -> Array:
    """T = 0 limit of the Fermi function of x = eps - mu (real part decides; 1/2 at 0)."""
    r = jnp.real(x)
    return jnp.where(r < 0, 1.0, jnp.where(r > 0, 0.0, 0.5))


def occupations(eps: Array, T: Array, V: Array) -> tuple[Array, Array]:
    """(f_R, f_L) at (complex) eps, Eq. 11, with the exact step limit at T = 0."""
    t_safe = jnp.where(T > 0, T, 1.0)
    xr, xl = eps - 0.5 * V, eps + 0.5 * V
    fr = jnp.where(T > 0, fermi(xr / t_safe), step(xr))
    fl = jnp.where(T > 0, fermi(xl / t_safe), step(xl))
    return fr, fl


def windows(eps: Array, T: Array, V: Array) -> Array:
    """Windows [W_RR + W_LL, W_RL, W_LR] at eps, shape (3, *eps.shape).

    1 - f(y) is written as f(-y) so that a window that is exponentially small is computed
    with full relative precision, not as a difference of numbers near 1.
    """
    t_safe = jnp.where(T > 0, T, 1.0)
    xr, xl = eps - 0.5 * V, eps + 0.5 * V
    fr, fl = occupations(eps, T, V)
    hr = jnp.where(T > 0, fermi(-xr / t_safe), 1.0 - step(xr))
    hl = jnp.where(T > 0, fermi(-xl / t_safe), 1.0 - step(xl))
    return jnp.stack([fr * hr + fl * hl, fr * hl, fl * hr])


def bose_window(V: Array, T: Array) -> Array:
    """(V/2) coth(V/2T), the T = 0 limit |V|/2 included; units of vF*k0.

    int f_R (1 - f_L) d eps = V/2 + (V/2) coth(V/2T). The naive V / (1 - exp(-V/T)) is 0/0 at
    V = 0 and overflows for V/T << 0; here z coth z is evaluated with z = 0 and T = 0 apart.
    """
    t_safe = jnp.where(T > 0, T, 1.0)
    z = 0.5 * V / t_safe
    # Below |z| = 1e-3 the series (error < 1e-20): z / tanh(z) has tangent 1/tanh z - z/sinh^2 z,
    # inf - inf once z^2 underflows.
    small = jnp.abs(z) < 1e-3
    z_safe = jnp.where(small, 1.0, z)
    zcoth = jnp.where(small, 1.0 + z * z / 3.0 - z**4 / 45.0, z_safe / jnp.tanh(z_safe))
    return jnp.where(T > 0, T * zcoth, 0.5 * jnp.abs(V))


def polarization_factor(V: Array, T: Array) -> Array:
    """tanh(V/2T), the texture-free drive of the impurity polarisation; sign(V) at T = 0.

    Written directly rather than as the ratio of window integrals, whose tangent is inf - inf
    when the windows are tiny (T = 0, V -> 0).
    """
    t_safe = jnp.where(T > 0, T, 1.0)
    return jnp.where(T > 0, jnp.tanh(0.5 * V / t_safe), jnp.sign(V))


def closed_form_windows(T: Array, V: Array) -> Array:
    """[int W_d, int W_RL, int W_LR] d eps = [2T, V/2 + b, -V/2 + b], b = (V/2) coth(V/2T)."""
    b = bose_window(V, T)
    return jnp.stack([2.0 * T, b + 0.5 * V, b - 0.5 * V])


def coefficients(T: Array, V: Array, *, config: Config = Config()) -> Coefficients:
    """Energy integrals of one (T, V) pair (scalars, units vF*k0, T >= 0).

    The integrands are even in eps, so each full-line integral is twice the half-line one
    computed along :func:`jaxmi.quadrature.contour`.
    """
    T = jnp.asarray(T, dtype=float)
    V = jnp.asarray(V, dtype=float)
    eps, wts = contour(T, V, config)
    win = windows(eps, T, V) * (2.0 * wts)[None, :]
    th = texture.theta(eps)
    e2 = win @ texture.phase_minus_one(2, th)
    e4 = win @ texture.phase_minus_one(4, th)
    return Coefficients(
        V=V, w=closed_form_windows(T, V), E2=e2, E4=e4, pol=polarization_factor(V, T)
    )
