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
isotropic impurity accurate to ~1e-14 relative at T = 1e-3, where the plain float64 sum loses
~1e-16/T^4 (1e-4) to the cancellation of O(J^2) terms (docs/physics.md, "Texture-free part plus
deviation").

All energies are in units of vF*k0; results are in the same units (integrals d eps).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxmi import texture
from jaxmi.config import Config
from jaxmi.domain import U_STEP
from jaxmi.quadrature import (
    RAY,
    T_TURN,
    composite,
    product_error_bound,
    ray_breaks,
    ray_fractions,
    window_breaks,
)


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


@jax.custom_jvp
def fermi_pair(y: Array) -> tuple[Array, Array]:
    """(f(y), 1 - f(y)) for complex y = (eps - mu)/T, f(y) = 1/(exp(y) + 1), overflow-free.

    The naive form overflows for Re(y) >> 1 (inf/inf = NaN, also in tangents), and 1 - f as a
    difference loses the relative precision of an exponentially small window. Here one
    exponential with non-positive real part serves both.
    """
    pos = jnp.real(y) >= 0
    e = jnp.exp(jnp.where(pos, -y, y))
    small, large = e / (1.0 + e), 1.0 / (1.0 + e)
    return jnp.where(pos, small, large), jnp.where(pos, large, small)


@fermi_pair.defjvp
def _fermi_pair_jvp(primals, tangents):
    """d f = -f (1 - f) dy, d(1 - f) = f (1 - f) dy: from the values, no new exponentials
    (autodiff would differentiate both branches of the overflow-free form)."""
    f, h = fermi_pair(primals[0])
    d = f * h * tangents[0]
    return (f, h), (-d, d)


@jax.custom_jvp
def pair_from_exp(y: Array, e: Array) -> tuple[Array, Array]:
    """(f(y), 1 - f(y)) = (e/(1+e), 1/(1+e)) from e = exp(-y) given by the caller (Re y >= 0).

    On the tail ray the exponentials come from a T- and V-independent table (see
    :func:`ray_exponentials`); y carries the tangents, as in :func:`fermi_pair`.
    """
    h = 1.0 / (1.0 + e)
    return e * h, h


@pair_from_exp.defjvp
def _pair_from_exp_jvp(primals, tangents):
    f, h = pair_from_exp(*primals)
    d = f * h * tangents[0]
    return (f, h), (-d, d)


@functools.cache
def ray_exponentials(order: int, panels: int, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """exp(-t/T) at the tail nodes, with the tail on the real axis and on the 45-degree ray.

    On the tail, eps = a + dir t with a = |V|/2 the nearer Fermi edge and t/T a fixed table
    (the tail's length is cutoff * sqrt(2) * T): so exp(-(eps - a)/T) does not depend on T or V,
    and the other edge's exponential is exp(-2a/T) times it. Two tables (complex, shape
    (panels * order,)): dir = 1 and dir = exp(i pi/4).
    """
    s = ray_fractions(order, panels, cutoff)
    return np.exp(-s).astype(complex), np.exp(-s * RAY)


def effective_temperature(T: Array, V: Array) -> Array:
    """T, or 0 where |V| / 2T > jaxmi.domain.U_STEP: there the point is T = 0 to float64
    (corrections ~4/u < 1e-16), and a T > 0 rule, whose nodes do not move with V, would have to
    resolve d f / dV, a spike of width T at each Fermi edge (at T = 1e-12, V = 0.3 it missed
    0.3% of the conductance; at T = 1e-300 half of it)."""
    return jnp.where(jnp.abs(V) > 2.0 * U_STEP * T, 0.0, T)


def step_pair(x: Array) -> tuple[Array, Array]:
    """T = 0 limit of (f, 1 - f) at x = eps - mu: the real part decides; 1/2 at 0."""
    r = jnp.real(x)
    f = jnp.where(r < 0, 1.0, jnp.where(r > 0, 0.0, 0.5))
    return f, 1.0 - f


def occupations(x: Array, T: Array) -> tuple[Array, Array]:
    """(f, 1 - f) at x = eps - mu (complex), Eq. 11, with the exact step limit at T = 0."""
    t_safe = jnp.where(T > 0, T, 1.0)
    f, h = fermi_pair(x / t_safe)
    f0, h0 = step_pair(x)
    return jnp.where(T > 0, f, f0), jnp.where(T > 0, h, h0)


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


def weighted_values(win: Array, u2: Array, u4: Array) -> tuple[Array, Array]:
    """The factors of the node values of the six integrals E_n of one piece: ``win`` (3, N)
    (window times quadrature weight) and the kernels u_n = exp(i n theta) - 1, stacked (2, N)
    (what :func:`jaxmi.quadrature.product_error_bound` takes)."""
    return win, jnp.stack([u2, u4])


def flat_errors(values, order: int) -> Array:
    """Error bounds of E2 and E4 of the three windows (each for its real and its imaginary part;
    the closed-form w is exact) from the node value factors of each piece, a sequence of
    (win, kernels) pairs (:func:`weighted_values`). Shape (6,) = [E2 of d, RL, LR; E4 ...],
    units vF*k0."""
    e = sum(
        product_error_bound(v[0], v[1], order, *v[2:]) for v in values
    )  # (3 windows, 2 kernels)
    return jnp.concatenate([e[:, 0], e[:, 1]])


def tangent_pieces(values, tangents, moving: bool = False):
    """The node value factors of the V-derivatives from those of the values and their tangents
    under ``jax.jvp``: d(win u) = dwin u + win du, as two pieces each (the second only where
    the nodes move with V, ``moving``; the paper path's nodes never do). A piece's optional
    third entry (the panels with a kink: jaxmi.quadrature.product_error_bound) carries over."""
    out = [(t[0], v[1], *v[2:]) for v, t in zip(values, tangents, strict=True)]
    if moving:
        out += [(v[0], t[1], *v[2:]) for v, t in zip(values, tangents, strict=True)]
    return out


def _window_segment(T: Array, V: Array, a: Array, config: Config):
    """E_2, E_4 over the real window [0, a] in real arithmetic (a = |V|/2), and the weighted node
    values (:func:`weighted_values`)."""
    x, w = composite(window_breaks(a, T, config.window_panels), config.order)
    fr, hr = occupations(x - 0.5 * V, T)
    fl, hl = occupations(x + 0.5 * V, T)
    win = jnp.stack([fr * hr + fl * hl, fr * hl, fl * hr]) * (2.0 * w)[None, :]
    th = texture.theta(x)
    re2, im2, re4, im4 = texture.real_kernel_parts(th)
    values = weighted_values(win, re2 + 1j * im2, re4 + 1j * im4)
    return (*texture.real_moments(win, th), values)


def _tail(T: Array, V: Array, a: Array, config: Config):
    """E_2, E_4 along the tail (ray, or the real axis below T_TURN), Fermi factors from tables,
    and the weighted node values (:func:`weighted_values`)."""
    t, w = composite(ray_breaks(T, config.tail_panels, config.tail_cutoff), config.order)
    turn = T < T_TURN
    ray = jnp.where(turn, 1.0 + 0.0j, RAY)
    eps = a + ray * t
    tables = ray_exponentials(config.order, config.tail_panels, config.tail_cutoff)
    near = jnp.where(turn, jnp.asarray(tables[0]), jnp.asarray(tables[1]))
    t_safe = jnp.where(T > 0, T, 1.0)
    far = jnp.exp(-2.0 * a / t_safe) * near
    pos = V >= 0  # the nearer edge is mu_R = V/2 for V >= 0, mu_L = -V/2 otherwise
    fr, hr = pair_from_exp((eps - 0.5 * V) / t_safe, jnp.where(pos, near, far))
    fl, hl = pair_from_exp((eps + 0.5 * V) / t_safe, jnp.where(pos, far, near))
    win = jnp.stack([fr * hr + fl * hl, fr * hl, fl * hr]) * (2.0 * ray * w)[None, :]
    win = jnp.where(T > 0, win, 0.0)  # T = 0: the tail has zero length
    u2 = texture.phase_minus_one(2, texture.theta(eps))
    u4 = u2 * (u2 + 2.0)  # exp(4 i theta) - 1, no cancellation
    return win @ u2, win @ u4, weighted_values(win, u2, u4)


def coefficients(T: Array, V: Array, *, config: Config = Config()) -> Coefficients:
    """Energy integrals of one (T, V) pair (scalars, units vF*k0, T >= 0).

    The integrands are even in eps, so each full-line integral is twice the half-line one along
    the path of :mod:`jaxmi.quadrature`: the real window [0, |V|/2] in real arithmetic (one real
    exponential per Fermi factor, sin and cos of theta), then the tail, where exp(-(eps - a)/T)
    is a fixed table (:func:`ray_exponentials`): no transcendental per node for the Fermi
    factors there. Node positions are held out of the gradient (a contour integral does not
    depend on its path); tangents flow through the Fermi arguments.
    """
    return coefficients_and_values(T, V, config=config)[0]


def coefficients_and_values(T: Array, V: Array, *, config: Config = Config()):
    """(:func:`coefficients`, the node value factors of its two pieces): the factors, a tuple of
    (win (3, N), kernels (2, N)) pairs (:func:`weighted_values`), give the quadrature error
    bounds (:func:`flat_errors`); under ``jax.jvp`` their tangents give those of the
    V-derivatives (:func:`tangent_pieces`). Unused, they cost nothing under ``jit``."""
    V = jnp.asarray(V, dtype=float)
    T = effective_temperature(jnp.asarray(T, dtype=float), V)
    a0 = jax.lax.stop_gradient(0.5 * jnp.abs(V))
    e2w, e4w, vw = _window_segment(T, V, a0, config)
    e2t, e4t, vt = _tail(T, V, a0, config)
    e2, e4 = e2w + e2t, e4w + e4t
    # T = 0: the windows are steps at eps = a = |V|/2 and the nodes do not move with V, so the
    # Leibniz term of d/dV is added explicitly, as the value-free Taylor terms
    # 2 W(a-) [da u_n(a) + da^2/2 u_n'(a)] with da = a - stop_gradient(a): first derivative
    # 2 W u_n(a) a', second 2 W u_n'(a) a'^2 (a'' = 0), as for int_0^a. W(a-) = 1 for W_RL
    # (V > 0) or W_LR (V < 0), 0 for W_d; the integrand's own V-dependence is through steps.
    a = 0.5 * jnp.abs(V)
    da = jnp.where(T > 0, 0.0, a - a0)
    edge = jnp.stack([jnp.zeros_like(V), (V > 0).astype(float), (V < 0).astype(float)])
    u2a = texture.phase_minus_one(2, texture.theta(a0))
    du2a = 4j * a0 * (u2a + 1.0)  # d/da exp(2 i a^2)
    e2 = e2 + 2.0 * edge * (da * u2a + 0.5 * da * da * du2a)
    e4 = e4 + 2.0 * edge * (da * u2a * (u2a + 2.0) + da * da * du2a * (u2a + 1.0))
    c = Coefficients(V=V, w=closed_form_windows(T, V), E2=e2, E4=e4, pol=polarization_factor(V, T))
    return c, (vw, vt)
