"""The general path for the model family (jaxmi.model): gate mu0, exchange tensor, any texture,
impurity spin S. The paper's model keeps its own, faster path (jaxmi.observables); this one
reproduces it (tests/test_family.py) and goes beyond it.

How Eqs. 10 and 12 generalise (docs/physics.md, "The model family"):

* The impurity operators are G_ab(eps) = sum_ij J_ij S^i (R_j)_ab with R_j = B^dagger sigma_j B
  the texture rotation at theta(eps). So the rate matrix of Eq. 10 is A = J K J^T and the
  current matrix of Eq. 12 is C = J D J^T, where K and D are the 3x3 Hermitian matrices of the
  paper path (jaxmi.generator.coupling_matrices) built from the same 15 numbers per (T, V):
  the closed-form window integrals and E_n = int W (exp(i n theta) - 1) d eps, n = 2, 4.
  Everything stays quadratic in J: the factorized path carries over.
* mu0 moves both Fermi functions, f_R,L(eps) = f(eps - mu0 -+ V/2), while theta stays a function
  of the energy from the Dirac point: the windows are no longer even in eps, and E_n is
  integrated over the whole line along the path jaxmi.strategy.choose picks: for a power law
  (:func:`power_law_path`) the real window [mu0 - |V|/2, mu0 + |V|/2], then from the outer Fermi
  edges rays into the sectors where exp(i n theta) decays (a real link to the Dirac point first
  where it lies in a tail); for a polynomial or a user texture (whose sector is unknown or which
  need not be analytic) the real axis (:func:`real_line_pieces`): the window graded toward both
  Fermi edges, two tails of tail_cutoff * T in uniform panels, and a panel break at the Dirac
  point in each piece (a texture |eps|^p has a kink there). The window integrals int W d eps
  do not depend on mu0. At mu0 = 0 with theta = eps^2 (any S) the paper path's half-line
  integrals serve (jaxmi.integrals.coefficients).
* Spin S: rho = 1/d + sum_k r_k L_k in an orthonormal basis of traceless Hermitian matrices
  (jaxmi.impurity); dr/dt = M r + b with M, b linear in A; the stationary state is the state
  reached from rho = 1/d, solved with the regularised resolvent as on the paper path, in a frame
  that keeps it finite and positive at degenerate and nearly degenerate rates (see solve).

Not on this path: the texture-free-plus-deviation split of the paper path (it relies on the
closed-form texture-free state of a diagonal spin-1/2 impurity), so an isotropic impurity at
mu0 = 0 and very low T loses ~1e-16/T^4 relative here; the paper path does not.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxmi import estimate, integrals, observables, texture
from jaxmi.config import Config
from jaxmi.generator import coupling_matrices
from jaxmi.impurity import bloch_maps, frame_maps
from jaxmi.integrals import (
    Coefficients,
    closed_form_windows,
    flat_errors,
    occupations,
    pair_from_exp,
    polarization_factor,
    tangent_pieces,
    weighted_values,
)
from jaxmi.model import Model, Polynomial, exchange_tensor
from jaxmi.observables import Observables, combine, pair_products
from jaxmi.quadrature import composite, gauss_legendre, ray_unit_breaks, touching, window_breaks
from jaxmi.strategy import Strategy, choose


def _with_break(breaks: Array, at: Array) -> Array:
    """Panel ends with one more end at ``at`` (static shape: outside the piece it doubles the
    nearer end). Tangents stay with their ends when the piece collapses to a point (T = V = 0,
    where every end has the same value): a plain sort could hand an end's tangent to another."""
    lo, hi = breaks[:1], breaks[-1:]
    inside = jnp.sort(jnp.concatenate([breaks, jnp.clip(at, lo, hi)]))
    return jnp.where(
        at <= lo,
        jnp.concatenate([lo, breaks]),
        jnp.where(at >= hi, jnp.concatenate([breaks, hi]), inside),
    )


def tail_breaks(T: Array, config: Config) -> Array:
    """Distances from a Fermi edge: L k / P, k = 0..P, L = tail_cutoff * T. Shape (P + 1,).

    Uniform panels: the texture oscillates faster away from the edge while the Fermi tail
    decays; measured against the paper path, uniform beats quadratic grading at every T
    (32 panels: 1e-14 up to T = 0.3, 4e-11 at T = 0.5; docs/accuracy.md).
    """
    k = np.arange(config.family_tail_panels + 1) / config.family_tail_panels
    return config.tail_cutoff * T * jnp.asarray(k)


#: Ratio of the window's panels toward the Dirac point (:func:`dirac_breaks`): each a quarter
#: of the next, as the rays' extra panels.
DIRAC_RATIO = 0.25


def dirac_breaks(u: Array, c: Array, lo: Array, hi: Array, extra: int) -> Array:
    """The window [lo, hi]'s ends at fractions ``u`` (sorted, in [0, 1], held out of the
    gradient, shape (m,)) with ``extra`` more on each side of d, the window's point nearest the
    Dirac point (at fraction ``c``, held), in a geometric grid toward it: d + (lo - d) r^k and
    d + (hi - d) r^k, k = 1..extra, r = DIRAC_RATIO (on a side of zero length they double d).
    Shape (m + 2 extra,), in the order of the fractions.

    |eps|^p with p not an integer is not analytic at eps = 0: Gauss-Legendre converges only
    algebraically on a panel that ends there, and slowly on one that ends near it. The grid is
    fixed by the window's ends, not by its other panels: a panel next to d is at most
    (hi - lo) r^extra long, and any other ends at least a third of its length away from d,
    wherever the Fermi-graded and phase ends fall (one of those just beside the Dirac point
    used to leave a long panel ending there: 1.6e-10).

    The grid's ends carry d's tangent (0 where the window holds the Dirac point) plus r^k of
    the edge's: the panels at the fixed kink stand still. Mapped as fractions of the moving
    window instead, the innermost panel was stretched at O(1) speed, which multiplied the
    kink's share of the T = 0 slope d E_n / dV by 1 / (its length) and the error estimate
    with it (5e-10 for PowerLaw(exponent=1.5) at mu0 = 0.2, V = 0.5, a true error ~1e-14).
    """
    if extra == 0:
        return lo + (hi - lo) * u
    r = DIRAC_RATIO ** np.arange(1, extra + 1)
    d = jnp.clip(0.0, lo, hi)
    ends = jnp.concatenate([lo + (hi - lo) * u, d + (lo - d) * r, d + (hi - d) * r])
    order = jnp.argsort(jnp.concatenate([u, c - c * r, c + (1.0 - c) * r]), stable=True)
    return ends[order]


def window_ends(seg: Array, lo: Array, hi: Array, panels: int, phase, dirac_extra: int):
    """The window's Fermi-graded ends ``seg`` (from lo to hi, shape (2 panels + 1,)) merged
    with ``phase`` = (scale, exponent, count) ends (:func:`phase_fractions`) and the Dirac
    grid (:func:`dirac_breaks`). Merged as fractions u of the window, held out of the gradient,
    and mapped back as lo + (hi - lo) u (the Dirac grid by its own map): the ends keep their
    order in the tangents too (at V = 0 every end has the same value, and a sort of the values
    put an end with lo's tangent last: at T = 0 the slope d E_n / dV lost the window). Shape
    (2 panels + 1 + count + 2 dirac_extra,)."""
    held = jax.lax.stop_gradient
    width = held(hi - lo)
    ok = width > 0
    safe = jnp.where(ok, width, 1.0)
    unit = window_breaks(jnp.ones(()), jnp.zeros(()), panels)  # the collapsed window's grading
    collapsed = jnp.concatenate([0.5 * (1.0 - unit[::-1]), 0.5 * (1.0 + unit[1:])])
    u = jnp.where(ok, jnp.clip(held(seg - lo) / safe, 0.0, 1.0), collapsed)
    if phase is not None and phase[2] > 0:
        u = jnp.sort(jnp.concatenate([u, phase_fractions(lo, hi, *phase)]))
    c = jnp.where(ok, jnp.clip(-held(lo) / safe, 0.0, 1.0), 0.0)
    return dirac_breaks(u, c, lo, hi, dirac_extra)


def phase_fractions(lo: Array, hi: Array, scale: Array, exponent: Array, count: int) -> Array:
    """Fractions of the window [lo, hi] at which tau(eps) = sign(eps) (|eps|/s)^p (the texture
    with the sign of eps: monotone, its change is theta's total variation) takes ``count``
    evenly spaced interior values, shape (count,) (held out of the gradient: the window's
    nodes still move with lo and hi only). So count + 1 panels share the texture's phase
    equally: each spans |Delta theta| <= (theta's variation over the window) / (count + 1)."""

    def tau(e):
        return jnp.sign(e) * jnp.abs(e / scale) ** exponent

    held = jax.lax.stop_gradient
    lo, hi, s, p = held(lo), held(hi), held(scale), held(exponent)
    k = jnp.arange(1, count + 1) / (count + 1)
    t = tau(lo) + (tau(hi) - tau(lo)) * k
    eps = jnp.sign(t) * s * jnp.abs(t) ** (1.0 / p)
    width = hi - lo
    return jnp.clip(jnp.where(width > 0, (eps - lo) / jnp.where(width > 0, width, 1.0), 0.0), 0, 1)


def real_line_pieces(
    T: Array,
    V: Array,
    mu0: Array,
    config: Config,
    tails: bool = True,
    phase: tuple | None = None,
    dirac_extra: int = 0,
):
    """Nodes and weights of the three pieces of the real line, each with a break at eps = 0.

    Returns:
        ((eps, w) of the left tail, of the window segment, of the right tail); real arrays.
        Without ``tails``: ((eps, w) of the window segment,).
        The window segment is [mu0 - h, mu0 + h] with h = |V|/2. ``phase`` = (scale, exponent,
        count) adds ``count`` window ends evenly spaced in a power law's phase
        (:func:`phase_fractions`), ``dirac_extra`` ends on each side of the Dirac point
        (:func:`dirac_breaks`; both merged by :func:`window_ends`); the window's panels are then
        2 family_window_panels + 1 + count + 2 dirac_extra. At T = 0 the nodes move with
        V and mu0 (the Fermi edges are steps: the Leibniz terms of d/dV and d/dmu0 come from
        the moving nodes), at T > 0 they are held out of the gradient (the integral does not
        depend on where the panels are).
    """
    sign = jnp.where(V >= 0, 1.0, -1.0)  # V = 0 counts as positive: right derivative there
    h = 0.5 * V * sign
    half = window_breaks(h, T, config.family_window_panels)  # [0, h], graded toward h
    seg = jnp.concatenate([mu0 - half[::-1], mu0 + half[1:]])
    t = tail_breaks(T, config)
    left = (mu0 - h) - t[::-1]
    right = (mu0 + h) + t
    if (phase is not None and phase[2] > 0) or dirac_extra:
        seg = window_ends(seg, mu0 - h, mu0 + h, config.family_window_panels, phase, dirac_extra)
    pieces = []
    for breaks in (left, seg, right) if tails else (seg,):
        breaks = _with_break(breaks, jnp.zeros(()))
        x, w = composite(breaks, config.order)
        held = T > 0
        x = jnp.where(held, jax.lax.stop_gradient(x), x)
        w = jnp.where(held, jax.lax.stop_gradient(w), w)
        pieces.append((x, w))
    return tuple(pieces)


def _fermi_windows(eps: Array, T: Array, V: Array, mu0: Array) -> Array:
    fr, hr = occupations(eps - mu0 - 0.5 * V, T)
    fl, hl = occupations(eps - mu0 + 0.5 * V, T)
    return jnp.stack([fr * hr + fl * hl, fr * hl, fl * hr])


class Piece(NamedTuple):
    """One piece of an integration path: E_n += sum_k weights_k W(eps_k) u_n(eps_k).

    Attributes:
        name: "window", "left tail", "right tail", "link", "left ray" or "right ray".
        eps: nodes, shape (panels * order,), real on the real axis, complex on a ray.
        weights: quadrature weights times d eps / dt, same shape (complex on a ray).
        panels: the number of Gauss-Legendre panels (quadrature.composite) of the piece.
        side: +1 where theta continues as (eps/s)^p (right of the Dirac point), -1 where it
            continues as (-eps/s)^p, 0 on the real axis (theta = the texture itself).
        start: a ray's start c (real; None on the real axis).
        decay: on a ray, exp(-side (eps - c) / T) at the nodes: it depends on neither T nor V
            (t / T is a fixed table), so the Fermi factors need no exponential per node.
    """

    name: str
    eps: Array
    weights: Array
    panels: int
    side: int
    start: Array | None = None
    decay: Array | None = None


def real_axis_path(T: Array, V: Array, mu0: Array, config: Config) -> list[Piece]:
    """:func:`real_line_pieces` as a list of :class:`Piece` (the "real-axis" strategy)."""
    names = ("left tail", "window", "right tail")
    panels = (config.family_tail_panels, 2 * config.family_window_panels, config.family_tail_panels)
    pieces = real_line_pieces(T, V, mu0, config)
    return [Piece(n, x, w, p + 1, 0) for n, (x, w), p in zip(names, pieces, panels, strict=True)]


#: Extra link panels at the Dirac end, halving toward it (|eps|^p has a kink there: Gauss-Legendre
#: converges only algebraically at a panel end with |eps|^p, so the last panels are made short).
LINK_EXTRA = 3


def link_fractions(config: Config, extra: int = 0) -> np.ndarray:
    """Panel ends of the link as fractions of its length from the Fermi edge: uniform
    (contour_link_panels + ``extra``), the last uniform panel split in halves toward the Dirac
    end. Shape (contour_link_panels + extra + 4,)."""
    n = config.contour_link_panels + extra
    last = (n - 1 + 1.0 - 2.0 ** -np.arange(1, LINK_EXTRA + 1)) / n
    return np.concatenate([np.arange(n) / n, last, [1.0]])


#: Extra ray panels at the start, each a quarter of the next: a ray that starts at the Dirac
#: point sees theta ~ t^p there (algebraic convergence at a panel end, as on the link).
RAY_EXTRA = 3


def ray_fractions(panels: int) -> np.ndarray:
    """Panel ends of a ray as fractions of its length: 0, then RAY_EXTRA panels shrinking by 4
    toward the start below the first of ``panels`` doubling ones, 2^(k - panels), k = 1..panels.
    Shape (panels + RAY_EXTRA + 1,)."""
    first = 2.0 ** (1 - panels)
    extra = first * 4.0 ** -np.arange(RAY_EXTRA, 0, -1)
    return np.concatenate([[0.0], extra, 2.0 ** (np.arange(1, panels + 1) - panels)])


def ray_angle(exponent: Array) -> Array:
    """The rays' angle to the real axis, pi / (2 max(p, 2)) (held out of the gradient).

    For theta = (z/s)^p, |exp(i n theta)| decays where 0 < arg z < pi/p. On a ray
    z = c + t e^(i phi) (c >= 0) arg z stays in [0, phi), and
    d Im(theta)/dt = |theta'| sin((p - 1) arg z + phi) >= 0 since (p - 1) arg z + phi lies in
    [min(phi, p phi), max(phi, p phi)], inside (0, pi/2]: the kernel never grows along the ray.
    Capped at 45 degrees (p < 2), where the Fermi tails' decay,
    Re(eps) - mu ~ t cos(phi), would slow down.
    """
    p = jax.lax.stop_gradient(jnp.asarray(exponent, dtype=float))
    return np.pi / (2.0 * jnp.maximum(p, 2.0))


def power_law_path(
    T: Array,
    V: Array,
    mu0: Array,
    exponent: Array,
    config: Config,
    phase: tuple | None = None,
    dirac_extra: int = 0,
    ray_extra: int = 0,
    link_extra: int = 0,
) -> list[Piece]:
    """The pole-free path of the "power-law-contour" strategy (theta = (|eps|/s)^p, any mu0).

    With lo, hi = mu0 -+ |V|/2 the outer Fermi edges (the Fermi poles lie on Re eps = lo, hi,
    at pi T (2m + 1) off the axis):

    * window [lo, hi] on the real axis (:func:`real_line_pieces`'s, graded toward both edges,
      with a break at the Dirac point; ``phase`` adds ends evenly spaced in theta's phase,
      ``dirac_extra`` ends graded toward the Dirac point, jaxmi.strategy decides both);
    * link: where the Dirac point lies in a tail (lo > 0: [max(0, lo - cutoff T), lo];
      hi < 0: [hi, min(0, hi + cutoff T)]), that stretch on the real axis, in
      ``contour_link_panels`` + ``link_extra`` uniform panels (empty otherwise; the Dirac point
      is a branch point of theta's continuation, so no ray can start on the wrong side of it);
    * right ray c + t e^(i phi), c = max(hi, 0), where theta continues as (eps/s)^p, and left ray
      c' - t e^(i phi), c' = min(lo, 0), where it continues as (-eps/s)^p (lower half plane),
      t in [0, L], L = cutoff T / cos(phi): Re(eps) moves cutoff T away from the start. Panels
      double in length from the start (``contour_ray_panels`` + ``ray_extra``: a fast texture's
      kernel decays within a short stretch of the start). A ray whose link was cut
      before the Dirac point (the tail ends first) has zero weight.

    The regions swept between the real tails and the rays have Re(eps) >= hi (<= lo): no pole;
    there exp(i n theta) and the Fermi windows are analytic and bounded, and both decay along
    the rays (:func:`ray_angle`), so the integral equals the real-axis one up to the truncation
    exp(-cutoff). Nodes are held out of the gradient at T > 0 (the value does not depend on the
    path); at T = 0 the links and rays have zero length and the window's nodes move with V and
    mu0 (the Leibniz terms of the steps).
    """
    cutoff = config.tail_cutoff
    pieces = real_line_pieces(T, V, mu0, config, False, phase, dirac_extra)
    count = 0 if phase is None else phase[2]
    panels = 2 * config.family_window_panels + 1 + count + 2 * dirac_extra
    window = Piece("window", *pieces[0], panels, 0)
    held = jax.lax.stop_gradient
    h = held(0.5 * jnp.abs(V))
    lo, hi, Tc = held(mu0) - h, held(mu0) + h, held(T) * cutoff
    # The link: at most one tail holds the Dirac point.
    left_in, right_in = lo > 0, hi < 0
    reach = jnp.clip(jnp.where(left_in, lo, jnp.where(right_in, -hi, 0.0)), 0.0, Tc)
    edge = jnp.where(left_in, lo, hi)
    toward = jnp.where(left_in, -1.0, 1.0)
    frac = jnp.asarray(link_fractions(config, link_extra))
    x, w = composite(edge + toward * reach * frac, config.order)
    link = Piece("link", x, jnp.abs(w), config.contour_link_panels + link_extra + LINK_EXTRA, 0)
    # The rays.
    phi = ray_angle(exponent)
    direction = jnp.exp(1j * phi)
    n = config.contour_ray_panels + ray_extra
    length = Tc / jnp.cos(phi)
    unit = ray_fractions(n)
    t, wt = composite(length * jnp.asarray(unit), config.order)
    # (eps - c) / T = side * cutoff * u e^(i phi) / cos(phi) at the unit-ray nodes u.
    u = (unit[:-1, None] + np.diff(unit)[:, None] * gauss_legendre(config.order)[0]).ravel()
    decay = jnp.exp(-cutoff * u * (1.0 + 1j * jnp.tan(phi)))
    right_ok = (hi >= 0) | (-hi <= Tc)
    left_ok = (lo <= 0) | (lo <= Tc)
    right = Piece(
        "right ray",
        jnp.maximum(hi, 0.0) + direction * t,
        jnp.where(right_ok, direction * wt, 0.0),
        n + RAY_EXTRA,
        1,
        jnp.maximum(hi, 0.0),
        decay,
    )
    left = Piece(
        "left ray",
        jnp.minimum(lo, 0.0) - direction * t,
        jnp.where(left_ok, direction * wt, 0.0),
        n + RAY_EXTRA,
        -1,
        jnp.minimum(lo, 0.0),
        decay,
    )
    return [left, window, link, right]


def _kinked(piece: Piece) -> Array:
    """The panels of a power-law piece that touch the Dirac point, where |eps|^p has a kink
    (a branch point of its continuation): (panels,), bool (jaxmi.quadrature.touching)."""
    return touching(piece.eps, piece.eps.shape[-1] // piece.panels)


def _continued_power(eps: Array, side: int, scale: Array, exponent: Array) -> Array:
    """theta continued off the real axis: (side * eps / scale)^p, principal branch."""
    return jnp.exp(exponent * jnp.log(side * eps / scale))


def _ray_moments(piece: Piece, T: Array, V: Array, mu0: Array, texture):
    """E_2, E_4 of the windows [d, RL, LR] along a ray (complex nodes and weights), and the
    node value factors of the error estimate (jaxmi.integrals.weighted_values).

    Both Fermi edges lie behind the ray's start c (Re(side (eps - mu)) >= 0), so with
    y = side (eps - mu) / T the pair (f, 1 - f) comes from exp(-y) = exp(-side (c - mu) / T) times
    the ray's T- and V-free table (:func:`jaxmi.integrals.pair_from_exp`; the left ray swaps
    the pair, f(-y) = 1 - f(y)); y carries the tangents.
    """
    t_safe = jnp.where(T > 0, T, 1.0)
    side = piece.side
    pairs = []
    for mu in (mu0 + 0.5 * V, mu0 - 0.5 * V):  # R, L
        y = side * (piece.eps - mu) / t_safe
        scale = jnp.exp(-jnp.maximum(side * (piece.start - mu), 0.0) / t_safe)
        f, h = pair_from_exp(y, scale * piece.decay)
        pairs.append((f, h) if side > 0 else (h, f))
    (fr, hr), (fl, hl) = pairs
    win = jnp.stack([fr * hr + fl * hl, fr * hl, fl * hr]) * piece.weights[None, :]
    win = jnp.where(T > 0, win, 0.0)  # T = 0: the rays have zero length
    eps = jnp.where(T > 0, piece.eps, side * 1.0)  # finite tangents where the weight is 0
    u2 = jnp.expm1(2j * _continued_power(eps, side, texture.scale, texture.exponent))
    u4 = u2 * (u2 + 2.0)
    values = (*weighted_values(win, u2, u4), _kinked(piece))
    return _complex_matvec(win, u2), _complex_matvec(win, u4), values


def _complex_matvec(a: Array, x: Array) -> Array:
    """a @ x for complex a (m, n) and x (n,) as four real matrix-vector products: a complex
    product's summation order on XLA:CPU depends on the batch size (a point's last bits would
    depend on its batch; tests/test_devices.py), these do not (as texture.real_moments)."""
    ar, ai, xr, xi = jnp.real(a), jnp.imag(a), jnp.real(x), jnp.imag(x)
    return (ar @ xr - ai @ xi) + 1j * (ar @ xi + ai @ xr)


def _real_moments(piece: Piece, T, V, mu0, theta, window: bool, kink: bool = False):
    """E_2, E_4 of the windows along a real piece, and the node value factors of the error
    estimate (jaxmi.integrals.weighted_values); at T = 0 the windows are steps (1 for RL at
    V >= 0, else LR, inside the bias window; 0 outside)."""
    eps = piece.eps
    if window:
        pos = (V >= 0).astype(float)
        step = jnp.stack([jnp.zeros_like(eps), pos + 0 * eps, (1.0 - pos) + 0 * eps])
    else:
        step = jnp.zeros((3, *eps.shape))
    win = jnp.where(T > 0, _fermi_windows(eps, T, V, mu0), step) * piece.weights[None, :]
    th = theta(eps)
    re2, im2, re4, im4 = texture.real_kernel_parts(th)
    values = weighted_values(win, re2 + 1j * im2, re4 + 1j * im4)
    if kink:
        values = (*values, _kinked(piece))
    return (*texture.real_moments(win, th), values)


# --- The "even-contour" strategy: theta = (eps/s)^p, p = 2 or 4, any mu0 -----------------------


def even_breaks(T: Array, V: Array, mu0: Array, config: Config) -> Array:
    """Panel ends of the folded window [0, b], b = |mu0| + |V|/2, shape (3 P + 1,),
    P = ``even_window_panels``: [0, c] graded toward c = ||mu0| - |V|/2| (the inner Fermi edge
    of the folded window), then [c, b] graded toward both c and b (window_breaks on each half).

    At mu0 = 0, c = b = |V|/2: the first piece is the paper's window [0, |V|/2] (at its panel
    count), the other two are empty (zero-width panels, zero weight).
    """
    n = config.even_window_panels
    h = 0.5 * jnp.abs(V)
    m = jnp.abs(mu0)
    c = jnp.abs(m - h)
    half = 0.5 * ((m + h) - c)  # = min(|mu0|, |V|/2)
    mid = c + half
    inner = window_breaks(c, T, n)  # [0, c], graded toward c
    outer = window_breaks(half, T, n)  # [0, half], graded toward half
    return jnp.concatenate([inner, mid - outer[::-1][1:], mid + outer[1:]])


def _even_step(V: Array, mu0: Array, n_inner: int, n_total: int) -> Array:
    """The folded T = 0 windows [d, RL, LR] at the window nodes, shape (3, n_total): on [c, b]
    the bias window's step (1 for RL at V >= 0, else LR); on [0, c] twice that where the bias
    window holds the Dirac point (|mu0| < |V|/2: both eps and -eps lie in it), else 0."""
    pos = (V >= 0).astype(float)
    inside = (jnp.abs(mu0) < 0.5 * jnp.abs(V)).astype(float)
    level = jnp.where(jnp.arange(n_total) < n_inner, 2.0 * inside, 1.0)
    return jnp.stack([jnp.zeros(n_total), pos * level, (1.0 - pos) * level])


def _folded_windows(pairs) -> Array:
    """[d, RL, LR] of W(eps) + W(-eps) from the (f, 1 - f) pairs at eps - mu for
    mu = (mu_R, mu_L, -mu_R, -mu_L): f(-eps - mu) = 1 - f(eps + mu), so W_RL(-eps) =
    f(eps + mu_L) (1 - f(eps + mu_R)) and W_LR(-eps) = f(eps + mu_R) (1 - f(eps + mu_L))."""
    (fr, hr), (fl, hl), (gr, kr), (gl, kl) = pairs
    return jnp.stack([fr * hr + fl * hl + gr * kr + gl * kl, fr * hl + gl * kr, fl * hr + gr * kl])


@jax.custom_jvp
def _pair_values(y: Array, f: Array, h: Array) -> tuple[Array, Array]:
    """(f, h) = (f(y), 1 - f(y)) given by the caller; the tangent comes from y alone
    (d f = -f h dy), as in :func:`jaxmi.integrals.pair_from_exp`."""
    return f, h


@_pair_values.defjvp
def _pair_values_jvp(primals, tangents):
    y, f, h = primals
    d = f * h * tangents[0]
    return (f, h), (-d, d)


def _window_pairs(x: Array, n_inner: int, T: Array, V: Array, mu0: Array):
    """The (f, 1 - f) pairs at x - mu for mu = (mu_R, mu_L, -mu_R, -mu_L) on the folded window's
    nodes x (the first ``n_inner`` in [0, c], the rest in [c, b]), with two exponentials per
    node instead of four.

    The four potentials are +-c and +-b (|mu_R|, |mu_L| = c, b in some order), and on each
    piece the sign of x - mu is known, so e = exp(-|x - mu|/T) of all four follows from two
    per node times constants: on [0, c] from exp(-(c - x)/T) and exp(-(x + c)/T), on [c, b]
    from exp(-(x - c)/T) and exp(-(b - x)/T) (x + c = (x - c) + 2c, x + b = (x - c) + b + c,
    b - x = (c - x) + (b - c)); every factor is <= 1 (no overflow). The tangents come from
    y = (x - mu)/T with the actual mu (:func:`_pair_values`).
    """
    t = jnp.where(T > 0, T, 1.0)
    c, b = _fold_edges(V, mu0)
    xi, xo = x[:n_inner], x[n_inner:]
    a_in, d_in = jnp.exp(-(c - xi) / t), jnp.exp(-(xi + c) / t)
    a_out, k_out = jnp.exp(-(xo - c) / t), jnp.exp(-(b - xo) / t)
    gap = jnp.exp(-(b - c) / t)
    # e and whether x - mu >= 0, per abstract potential (c, b, -c, -b), over all nodes.
    e = {
        "c": jnp.concatenate([a_in, a_out]),
        "b": jnp.concatenate([a_in * gap, k_out]),
        "-c": jnp.concatenate([d_in, a_out * jnp.exp(-2.0 * c / t)]),
        "-b": jnp.concatenate([d_in * gap, a_out * jnp.exp(-(b + c) / t)]),
    }
    above = {"c": jnp.arange(x.shape[0]) >= n_inner, "b": False, "-c": True, "-b": True}

    def pair(key):
        big, small = 1.0 / (1.0 + e[key]), e[key] / (1.0 + e[key])
        return jnp.where(above[key], small, big), jnp.where(above[key], big, small)

    pairs = {k: pair(k) for k in e}
    mr, ml = mu0 + 0.5 * V, mu0 - 0.5 * V
    r_is_b = mu0 * V >= 0  # |mu_R| = |mu0 + V/2| is the larger edge b
    out = []
    for mu, is_b in ((mr, r_is_b), (ml, ~r_is_b), (-mr, r_is_b), (-ml, ~r_is_b)):
        above_0 = mu >= 0
        plus = [jnp.where(is_b, u, v) for u, v in zip(pairs["b"], pairs["c"], strict=True)]
        minus = [jnp.where(is_b, u, v) for u, v in zip(pairs["-b"], pairs["-c"], strict=True)]
        f, hh = (jnp.where(above_0, u, v) for u, v in zip(plus, minus, strict=True))
        out.append(_pair_values((x - mu) / t, f, hh))
    return out


@jax.custom_jvp
def _kernel_parts(theta: Array) -> tuple[Array, Array, Array, Array]:
    """texture.real_kernel_parts (Re, Im of exp(2 i theta) - 1 and exp(4 i theta) - 1, no
    cancellation), with the tangent from the values: d u_n = i n (1 + u_n) d theta. Autodiff
    of sin and cos would add cosines and sines that XLA recomputes in every fusion using them
    (the window's nodes move with V at T = 0, so theta has a tangent): 2x the transcendental
    count of the whole even contour. The barrier makes sin and cos one array each: XLA:CPU
    otherwise recomputes them in each of the four parts' fusions."""
    s, c = jax.lax.optimization_barrier((jnp.sin(theta), jnp.cos(theta)))
    re2, im2 = -2.0 * s * s, 2.0 * s * c  # as texture.real_kernel_parts
    re4, im4 = -2.0 * im2 * im2, 2.0 * im2 * (1.0 + re2)
    return re2, im2, re4, im4


@_kernel_parts.defjvp
def _kernel_parts_jvp(primals, tangents):
    re2, im2, re4, im4 = _kernel_parts(primals[0])
    dt = tangents[0]
    d = (-2.0 * im2 * dt, 2.0 * (1.0 + re2) * dt, -4.0 * im4 * dt, 4.0 * (1.0 + re4) * dt)
    return (re2, im2, re4, im4), d


def _fold_edges(V: Array, mu0: Array) -> tuple[Array, Array]:
    """(c, b) = (||mu0| - |V|/2|, |mu0| + |V|/2): the inner and outer Fermi edges of the folded
    window on the half line (the |mu| of mu_R, mu_L = mu0 +- V/2 in increasing order). |V| as
    sign(V) V with V = 0 counted positive: the tangent at V = 0 is the right derivative (the
    T = 0 edges of :func:`_even_edges`), where d|V| would give 0."""
    h = 0.5 * V * jnp.where(V >= 0, 1.0, -1.0)
    m = jnp.abs(mu0)
    return jnp.abs(m - h), m + h


def _chemical_potentials(V: Array, mu0: Array) -> tuple[Array, Array, Array, Array]:
    """(mu_R, mu_L, -mu_R, -mu_L), mu_R,L = mu0 +- V/2: the four Fermi edges of the fold."""
    mr, ml = mu0 + 0.5 * V, mu0 - 0.5 * V
    return mr, ml, -mr, -ml


def even_theta(z: Array, power: int) -> Array:
    """theta = z^p for p = 2 or 4 (z = eps / s), by multiplication (no log or exp)."""
    z2 = z * z
    return z2 if power == 2 else z2 * z2


@functools.cache
def even_ray_table(order: int, panels: int, cutoff: float, power: int):
    """(unit breaks (panels + 1,), exp(-(eps - b)/T) at the ray's nodes (panels * order,)) for
    the ray b + t e^(i phi), phi = pi/(2p), t in [0, L], L = cutoff T / cos(phi), panels
    doubling from b: (eps - b)/T = cutoff u (1 + i tan phi) at the unit nodes u (no T, V)."""
    phi = np.pi / (2.0 * power)
    unit = ray_unit_breaks(panels)
    u = (unit[:-1, None] + np.diff(unit)[:, None] * gauss_legendre(order)[0]).ravel()
    return unit, np.exp(-cutoff * u * (1.0 + 1j * np.tan(phi)))


def even_coefficients(
    T: Array, V: Array, mu0: Array, scale: Array, power: int, config: Config
) -> tuple[Array, Array, tuple]:
    """(E_2, E_4), shape (3,) each, of the windows [d, RL, LR] for theta = (eps/s)^p with an
    even integer p (2 or 4): the "even-contour" strategy (jaxmi.strategy); and the node value
    factors of its two pieces for the error estimate (jaxmi.integrals.weighted_values).

    Folding: theta is even and entire, so the full-line integral is the half-line integral of
    the folded window W(eps) + W(-eps) (:func:`_folded_windows`), whose Fermi factors sit at the
    four chemical potentials +-mu_R, +-mu_L, all with |mu| <= b = |mu0| + |V|/2; its poles
    lie on Re(eps) = +-mu_R, +-mu_L, at pi T (2m + 1) off the axis. The path:

    * the real segment [0, b] (:func:`even_breaks`), graded toward the two Fermi edges of the
      half line, c = ||mu0| - |V|/2| and b, in real arithmetic (sin, cos of a real theta);
    * one ray b + t e^(i phi), phi = pi/(2p) (:func:`jaxmi.family.ray_angle`), in
      ``even_ray_panels`` panels doubling from b, to Re(eps) = b + cutoff T.

    Pole-free: the region between the real half line [b, inf) and the ray has Re(eps) >= b >=
    every |mu|, so it holds no pole, for any T, V, mu0. No growth: on a ray from b >= 0 at
    angle pi/(2p) the argument of eps stays in [0, pi/(2p)), where Im(theta) is non-decreasing
    along the ray (ray_angle's proof, p >= 2), so |exp(i n theta)| <= 1; and every Fermi factor
    has Re(eps - mu) >= 0 there, so exp(-(eps - mu)/T) = exp(-(b - mu)/T) times the ray's fixed
    table (:func:`even_ray_table`) serves it (:func:`jaxmi.integrals.pair_from_exp`): no
    exponential per node. The arc closing the two at Re(eps) = b + cutoff T contributes
    ~exp(-cutoff). No link and no Dirac break: theta = (eps/s)^p is a polynomial.

    Nodes are held out of the gradient (the value does not depend on the path); at T = 0 the
    ray has zero length and the motion of the step windows' edges is added explicitly
    (:func:`_even_edges`). At mu0 = 0, s = 1, p = 2 this is the paper's contour (window [0, |V|/2],
    a 45-degree ray from |V|/2), without its T < T_TURN real-axis tail.
    """
    held = jax.lax.stop_gradient
    mus = _chemical_potentials(V, mu0)
    # The real segment [0, b].
    x, w = composite(held(even_breaks(T, V, mu0, config)), config.order)
    n = config.even_window_panels * config.order
    step = _even_step(V, mu0, n, x.shape[0])
    live = _folded_windows(_window_pairs(x, n, T, V, mu0))
    win = jnp.where(T > 0, live, step) * w[None, :]
    kernel = _kernel_parts(even_theta(x / scale, power))
    re2, im2, re4, im4 = (win @ k for k in kernel)
    e2, e4 = re2 + 1j * im2, re4 + 1j * im4
    values = [weighted_values(win, kernel[0] + 1j * kernel[1], kernel[2] + 1j * kernel[3])]
    # The ray from b.
    b = held(jnp.abs(mu0) + 0.5 * jnp.abs(V))
    unit, table = even_ray_table(config.order, config.even_ray_panels, config.tail_cutoff, power)
    phi = np.pi / (2.0 * power)
    direction = np.exp(1j * phi)
    t, wt = composite(held(config.tail_cutoff * T / np.cos(phi)) * jnp.asarray(unit), config.order)
    eps = b + direction * t
    t_safe = jnp.where(T > 0, T, 1.0)
    pairs = []
    for mu in mus:
        near = jnp.exp(-(b - mu) / t_safe) * jnp.asarray(table)
        pairs.append(pair_from_exp((eps - mu) / t_safe, near))
    win = jnp.where(T > 0, _folded_windows(pairs) * (direction * wt)[None, :], 0.0)
    u2 = jnp.expm1(2j * even_theta(eps / scale, power))
    u4 = u2 * (u2 + 2.0)
    e2, e4 = e2 + _complex_matvec(win, u2), e4 + _complex_matvec(win, u4)
    values.append(weighted_values(win, u2, u4))
    l2, l4 = _even_edges(T, V, mu0, scale, power)
    return e2 + l2, e4 + l4, tuple(values)


def _even_edges(T: Array, V: Array, mu0: Array, scale: Array, power: int):
    """The Leibniz terms of d/dV and d/dmu0 at T = 0 (0 in value; 0 at T > 0).

    The window's nodes are held (a node with a tangent costs ~1.4x the whole point), so at
    T = 0, where the folded windows are steps on [0, c] (weight 2 where the bias window holds
    the Dirac point, else 0) and [c, b] (weight 1), the motion of the edges is added as the
    value-free Taylor terms k_e [de u_n(e) + de^2/2 u_n'(e)], de = e - stop_gradient(e), with
    k_b = 1 and k_c = 2 [|mu0| < |V|/2] - 1 (d/dx of 2 int_0^c + int_c^b): first derivatives
    k_e u_n(e) e', second k_e u_n'(e) e' e'' (the edges are piecewise linear: e'' = 0), as
    jaxmi.integrals.coefficients does for the paper's window.
    """
    c, b = _fold_edges(V, mu0)
    inside = (jnp.abs(mu0) < 0.5 * V * jnp.where(V >= 0, 1.0, -1.0)).astype(float)
    pos = (V >= 0).astype(float)
    shape = jnp.stack([jnp.zeros_like(V), pos, 1.0 - pos])
    l2 = l4 = jnp.zeros(3, complex)
    for e, k in ((b, 1.0), (c, 2.0 * inside - 1.0)):
        e0 = jax.lax.stop_gradient(e)
        de = jnp.where(T > 0, 0.0, e - e0)
        z = e0 / scale
        u2 = jnp.expm1(2j * even_theta(z, power))
        u4 = u2 * (u2 + 2.0)
        dtheta = (2.0 * z if power == 2 else 4.0 * z**3) / scale
        du2, du4 = 2j * dtheta * (u2 + 1.0), 4j * dtheta * (u4 + 1.0)
        l2 = l2 + k * shape * (de * u2 + 0.5 * de * de * du2)
        l4 = l4 + k * shape * (de * u4 + 0.5 * de * de * du4)
    return l2, l4


def path(T: Array, V: Array, model: Model, config: Config, strategy: Strategy) -> list[Piece]:
    """The pieces of the strategy's path (not for "paper-contour": jaxmi.integrals has its own)."""
    mu0 = jnp.asarray(model.mu0, dtype=float)
    if strategy.integration == "power-law-contour":
        tex = model.texture
        count = strategy.phase_breaks
        phase = (tex.scale, tex.exponent, count) if count else None
        extras = (strategy.dirac_extra, strategy.ray_extra, strategy.link_extra)
        return power_law_path(T, V, mu0, tex.exponent, config, phase, *extras)
    return real_axis_path(T, V, mu0, config)


def coefficients(
    T: Array, V: Array, model: Model, config: Config = Config(), strategy: Strategy | None = None
) -> Coefficients:
    """The 15 numbers of one (T, V) pair for a model (scalars T, V in vF*k0; T >= 0), along
    the path of ``strategy`` (default: :func:`jaxmi.strategy.choose`)."""
    return coefficients_and_values(T, V, model, config, strategy)[0]


def coefficients_and_values(
    T: Array, V: Array, model: Model, config: Config = Config(), strategy: Strategy | None = None
):
    """(:func:`coefficients`, the node value factors of each piece of the path): the factors
    give the quadrature error bounds (jaxmi.integrals.flat_errors); unused, they cost nothing
    under ``jit``."""
    strategy = choose(model) if strategy is None else strategy
    V = jnp.asarray(V, dtype=float)
    T = integrals.effective_temperature(jnp.asarray(T, dtype=float), V)
    if strategy.integration == "paper-contour":
        return integrals.coefficients_and_values(T, V, config=config)
    mu0 = jnp.asarray(model.mu0, dtype=float)
    values = []
    if strategy.integration == "even-contour":
        scale = jnp.asarray(model.texture.scale, dtype=float)
        e2, e4, values = even_coefficients(T, V, mu0, scale, strategy.power, config)
        pieces = []
    else:
        e2 = jnp.zeros(3, complex)
        e4 = jnp.zeros(3, complex)
        pieces = path(T, V, model, config, strategy)
    # a power law |eps|^p (and possibly a user texture) has a kink at the Dirac point, a
    # polynomial has none (the estimate treats the panels touching it apart)
    kink = not isinstance(model.texture, Polynomial)
    for piece in pieces:
        if piece.side:
            m2, m4, vals = _ray_moments(piece, T, V, mu0, model.texture)
        else:
            m2, m4, vals = _real_moments(
                piece, T, V, mu0, model.texture, piece.name == "window", kink
            )
        e2 = e2 + m2
        e4 = e4 + m4
        values.append(vals)
    pos = (V >= 0).astype(float)
    w_step = jnp.stack([jnp.zeros_like(V), V * pos, -V * (1.0 - pos)])
    w = jnp.where(T > 0, closed_form_windows(T, V), w_step)
    c = Coefficients(V=V, w=w, E2=e2, E4=e4, pol=polarization_factor(V, T))
    return c, tuple(values)


def _matrices(c: Coefficients) -> tuple[Array, Array]:
    """(K, D) from one pair's coefficients: texture-free part plus deviation."""
    k0, dk, d0, dd = coupling_matrices(c)
    return k0 + dk, d0 + dd


def rate_matrices(
    T: Array, V: Array, model: Model, config: Config = Config(), strategy: Strategy | None = None
):
    """(K, D): the 3x3 complex Hermitian matrices of Eqs. 10 and 12 for unit exchange.

    The rate matrix of a coupling tensor J is J K J^T, the current matrix J D J^T.
    """
    return _matrices(coefficients(T, V, model, config, strategy))


#: Relative size below which the part of the rate matrix transverse to its dominant real axis is
#: roundoff (see :func:`solve`): ~45 ulps, above the ~10 ulps the frame rotation and J K J^T leave.
TRANSVERSE_TOL = 1e-14


def _dominant_axis(a: Array) -> Array:
    """Unit vector along the top eigenvector of the real symmetric PSD 3x3 ``a`` (e_z if a = 0).

    Three power steps from the column of the largest diagonal entry: exact at once for a rank-1
    ``a`` (the case that matters, where the column is the axis), and where ``a`` has no dominant
    axis any axis will do (see :func:`solve`).
    """
    ez = jnp.array([0.0, 0.0, 1.0])
    # to O(1) first: v @ v squares the entries, and a ~1e-288 (a 1e-144 coupling meeting the
    # rates' kernel) underflowed to a zero norm, hence the axis e_z of a = 0
    top = jnp.max(jnp.abs(a))
    a = a / jnp.where(top > 0, top, 1.0)
    v = a[:, jnp.argmax(jnp.diag(a))]
    for _ in range(3):
        norm = jnp.sqrt(v @ v)
        v = a @ jnp.where(norm > 0, v / jnp.where(norm > 0, norm, 1.0), ez)
    norm = jnp.sqrt(v @ v)
    return jnp.where(norm > 0, v / jnp.where(norm > 0, norm, 1.0), ez)


def _frame(v: Array, spin: float) -> tuple[Array, Array]:
    """(R, U): the rotation R = R_y(-beta) R_z(-phi) taking the unit vector v to z, (3, 3), and
    its action U = exp(i beta S^y) exp(i phi S^z) on the spin, (d, d), U S^k U^dagger =
    sum_i R_ik S^i (jaxmi.impurity.frame_maps). beta by atan2: exact to roundoff near the poles,
    where arccos(v_z) is not."""
    fm = frame_maps(spin)
    beta = jnp.arctan2(jnp.hypot(v[0], v[1]), v[2])
    phi = jnp.arctan2(v[1], v[0])
    cb, sb, cp, sp = jnp.cos(beta), jnp.sin(beta), jnp.cos(phi), jnp.sin(phi)
    ry = jnp.array([[cb, 0.0, -sb], [0.0, 1.0, 0.0], [sb, 0.0, cb]])
    rz = jnp.array([[cp, sp, 0.0], [-sp, cp, 0.0], [0.0, 0.0, 1.0]])
    y = jnp.asarray(fm.y_vectors)
    uy = (y * jnp.exp(1j * beta * fm.m_y)[None, :]) @ jnp.conj(y).T
    return ry @ rz, uy * jnp.exp(1j * phi * fm.m_z)[None, :]


def _bloch_terms(A: Array, maps) -> tuple[Array, Array]:
    """(M, b) of dr/dt = M r + b for the 3x3 rate matrix A (jaxmi.impurity.BlochMaps)."""
    # Re(sum A x map) as one real contraction over (Re, Im) parts: half the work of a complex
    # product whose imaginary part is thrown away. The drive map is purely imaginary.
    parts = jnp.stack([jnp.real(A), -jnp.imag(A)])
    M = jnp.einsum("cil,cilkq->kq", parts, np.stack([maps.matrix.real, maps.matrix.imag]))
    b = -jnp.einsum("il,ilk->k", jnp.imag(A - A.T), maps.drive.imag)
    return M, b


def solve(Jt: Array, K: Array, D: Array, spin: float, regularization: float):
    """Current and Bloch vector of one point: Jt (3, 3), K and D (3, 3) complex.

    The state is the one reached from rho = 1/d, r = lim (delta s - M)^{-1} b (the Laplace
    transform of the trajectory, as on the paper path; delta = ``regularization``, s the largest
    rate). Solved so that it stays finite and continuous where M is (nearly) singular:

    1. Scale: J -> J / c, c = max |J_ij|, and (K, D) -> (K, D) / k, k = max |K_ij| (both held
       out of the gradient). r is homogeneous of degree 0 in J and in K, the current of degree
       2 in J and 1 in (K, D), so this is exact (also for the gradient: a derivative of a
       homogeneous function is homogeneous, one degree lower), and J K J^T can neither under-
       nor overflow (J ~ 1e-160, or rates ~ |V| = 1e-300 at T = 0, used to give a subnormal or
       zero A: NaN, or the state of J = 0).
    2. Frame: M is singular only where A is real and rank 1 (up to a phase), A = lam v v^T: one
       Hermitian jump operator v.S, pure dephasing, whose stationary states are all those
       diagonal in the eigenbasis of v.S. Near it (tiny couplings next to O(1) ones; T = 0,
       where the texture-free A = |V| w w^dagger is rank 1, and real when J's first two columns
       are parallel) the block of M on that kernel is, in the original frame, a cancellation of
       O(lam) terms: LU met a zero or a roundoff pivot and returned NaN or states far from
       positive. So the impurity frame is rotated (J -> R J, an exact symmetry: rho -> U rho
       U^dagger) to take v, the dominant axis of Re A, to z. There the dephasing part of M is
       diagonal in the basis and exactly 0 on the kernel (the diagonal L_k), the kernel block
       is built from the small entries of A alone, and the LU, pivoting on the large entries
       first, keeps their relative precision.
    3. Degenerate branch: where the part of A transverse to z is below TRANSVERSE_TOL of A_zz
       it is roundoff of the rotation and of J K J^T (exactly 0 in exact arithmetic, e.g. for a
       rank-1 J or J = 0), b is roundoff too, and the reached state is r = 0 exactly (b = 0:
       the dephasing leaves 1/d where it is). This replaces the old test b == 0, which roundoff
       in Im(A - A^T) defeated. A transverse part that small (a coupling ratio below ~1e-14
       linearly or ~1e-7 quadratically) is below what the rates resolve: its effect on the
       state was roundoff.

    Limit: between that and ~1e-8 (coupling ratios ~1e-7 to 1e-4 in a quadratic role) the
    kernel block is resolved to ~1e-16 / (its relative size) only, the condition of the
    problem itself (K and A carry 1e-16 |A| roundoff), so rho can miss positivity by that much.

    R, U, c, k and the branch are held out of the gradient (the result does not depend on
    them), so jax.grad and jax.jvp see only the LU solve of a well-scaled system.

    Returns:
        (current, r): scalar (units e vF k0 / h) and (d^2 - 1,), rho = 1/d + sum_k r_k L_k.
    """
    maps = bloch_maps(spin)
    c = jax.lax.stop_gradient(jnp.max(jnp.abs(Jt)))
    c = jnp.where(c > 0, c, 1.0)
    Js = Jt / c
    k = jax.lax.stop_gradient(jnp.max(jnp.abs(K)))
    k = jnp.where(k > 0, k, 1.0)
    K, D = K / k, D / k
    axis = _dominant_axis(jax.lax.stop_gradient(jnp.real(Js @ K @ Js.T)))
    R, U = jax.lax.stop_gradient(_frame(axis, spin))
    Jr = R @ Js
    A = Jr @ K @ Jr.T
    C = Jr @ D @ Jr.T
    M, b = _bloch_terms(A, maps)
    transverse = jnp.max(jnp.abs(A.at[2, 2].set(0.0)))
    degenerate = jax.lax.stop_gradient(transverse <= TRANSVERSE_TOL * jnp.abs(A[2, 2]))
    s = jax.lax.stop_gradient(jnp.max(jnp.abs(M)))
    s = jnp.where(s > 0, s, 1.0)
    n = M.shape[0]
    system = jnp.where(degenerate, -jnp.eye(n), M / s - regularization * jnp.eye(n))
    rr = -jnp.linalg.solve(system, jnp.where(degenerate, 0.0, b / s))
    const = jnp.real(jnp.sum(C * maps.trace_const))
    lin = jnp.real(jnp.einsum("il,ilk->k", C, maps.trace_r))
    # Back to the original frame: rho - 1/d = U^dagger (sum_k rr_k L_k) U.
    lam = jnp.asarray(maps.basis)
    x = jnp.conj(U).T @ jnp.einsum("k,kab->ab", rr, lam) @ U
    r = jnp.real(jnp.einsum("kab,ba->k", lam, x))
    return 2.0 * c * c * k * (const + lin @ rr), r


def current_and_slope(Jt: Array, rates, tangents, T: Array, V: Array, spin: float, reg: float):
    """(current, d current / dV, r) from the rate matrices (K, D) and their V-derivatives.

    At T = V = 0 every rate vanishes and the state is the one reached from rho = 1/d (r = 0);
    the conductance there is the limit V -> 0+ at T = 0, whose state is that of the rates' slope
    (K ~ V dK/dV): since the current is linear in D and D = 0 there, it is the tangent of the
    current at (K, D) = (dK/dV, 0) along (0, dD/dV), so one solve serves both cases. (At
    mu0 != 0 this need not equal the limit T -> 0 at V = 0: the drive is sign(V) at T = 0 but
    tanh(V/2T) -> 0 in linear response.)
    """
    zero = (T == 0) & (V == 0)
    (K, D), (dK, dD) = rates, tangents
    rates = (jnp.where(zero, dK, K), jnp.where(zero, 0.0, D))
    tangents = (jnp.where(zero, 0.0, dK), dD)
    # The jvp is linear in the tangents: run it on tangents scaled to the size of the rates and
    # divide after. At T = 0 the rates are ~|V| and their V-slope O(1), so at V ~ 1e-300 the
    # unscaled tangent of the state (rates / |V| in size) overflowed inside the solve (NaN).
    big = jax.lax.stop_gradient(jnp.maximum(jnp.max(jnp.abs(tangents[0])), jnp.max(jnp.abs(dD))))
    tau = jax.lax.stop_gradient(jnp.max(jnp.abs(rates[0])))
    tau = jnp.where((big > 0) & (tau > 0), tau / jnp.where(big > 0, big, 1.0), 1.0)
    tangents = (tangents[0] * tau, tangents[1] * tau)
    (cur, r), (dcur, _) = jax.jvp(lambda k, d: solve(Jt, k, d, spin, reg), rates, tangents)
    return cur, dcur / tau, jnp.where(zero, 0.0, r)


def _observables(current, conductance, r, spin: float, error=None) -> Observables:
    maps = bloch_maps(spin)
    d = maps.basis.shape[-1]
    sp = r @ maps.spin_r.T
    eye = jnp.eye(d).reshape((1,) * (r.ndim - 1) + (d, d))
    rho = eye / d + jnp.einsum("...k,kab->...ab", r, maps.basis)
    return Observables(current, conductance, sp, rho, error)


def pair_and_errors(T: Array, V: Array, model: Model, config: Config, strategy: Strategy):
    """(c, dc, e, de) of one (T, V) pair: the coefficients, their V-derivatives and the error
    bounds of [E2, E4] of the three windows, (6,) each (jaxmi.integrals.flat_errors). The
    window's nodes move with V at T = 0 (the Leibniz terms), so the tangents of the kernels
    count too (jaxmi.integrals.tangent_pieces)."""
    (c, values), (dc, dvalues) = jax.jvp(
        lambda v: coefficients_and_values(T, v, model, config, strategy), (V,), (jnp.ones_like(V),)
    )
    e = flat_errors(values, config.order)
    de = flat_errors(tangent_pieces(values, dvalues, moving=True), config.order)
    return c, dc, e, de


def _binary_scale(matrices) -> Array:
    """The power of two nearest the largest entry of (K, D) (1 where they vanish), out of the
    gradient: dividing by it is exact."""
    m = jax.lax.stop_gradient(jnp.maximum(*(jnp.max(jnp.abs(x)) for x in matrices)))
    return jnp.where((m > 0) & jnp.isfinite(m), jnp.exp2(jnp.round(jnp.log2(m))), 1.0)


def _scaled(c: Coefficients, a: Array) -> Coefficients:
    """The coefficients of (K, D) / a (they are linear in w, E2, E4)."""
    return c._replace(w=c.w / a, E2=c.E2 / a, E4=c.E4 / a)


def slope_and_error(Jt, c, dc, e, de, T, V, model: Model, config: Config):
    """(current, conductance, r, error) of one J tensor (3, 3) against one pair's coefficients.

    The error: first-order bounds through the solve, sum |d obs / d E| e + |d obs / d E'| e'
    over the real and imaginary parts of the six integrals and of their V-derivatives (one
    reverse pass per output: current, conductance, each r_k), made relative by
    jaxmi.estimate.relative. The spin's and rho's bounds follow from those of r with the
    absolute values of the (linear) maps from r.
    """
    spin, reg = model.spin, config.regularization
    maps = bloch_maps(spin)
    # The reverse pass runs on integrals scaled to O(1): at T = 0 and V ~ 1e-300 the rates are
    # ~|V| and their V-slope O(1), and the unscaled Jacobian (~1/|V|^2) overflowed (inf times a
    # zero bound: NaN). The state is homogeneous of degree 0 in the rates, the current of degree
    # 1 in (K, D) and its slope of degree 1 in the tangents, so powers of two a (rates) and s
    # (tangents) scale out exactly: the values keep their bits.
    a, s = (_binary_scale(_matrices(z)) for z in (c, dc))
    c, dc = _scaled(c, a), _scaled(dc, s)

    def obs(x):
        ce = c._replace(E2=x[0] + 1j * x[1], E4=x[2] + 1j * x[3])
        de_ = dc._replace(E2=x[4] + 1j * x[5], E4=x[6] + 1j * x[7])
        cur, dcur, r = current_and_slope(Jt, _matrices(ce), _matrices(de_), T, V, spin, reg)
        return jnp.concatenate([jnp.stack([cur, dcur]), r]), (cur, dcur, r)

    x = jnp.stack([f(z) for z in (c.E2, c.E4, dc.E2, dc.E4) for f in (jnp.real, jnp.imag)])
    jac, (cur, dcur, r) = jax.jacrev(obs, has_aux=True)(x)  # (2 + d^2 - 1, 8, 3)
    e, de = e / a, de / s
    bound = jnp.stack([e[:3], e[:3], e[3:], e[3:], de[:3], de[:3], de[3:], de[3:]])
    b = jnp.sum(jnp.abs(jac) * bound[None], axis=(1, 2))
    # back to the unscaled current and slope; at T = V = 0 both are those of the slope's rates
    zero = (T == 0) & (V == 0)
    unit = jnp.where(zero, s, a)
    cur, dcur = cur * unit, dcur * s
    b = b.at[0].multiply(unit).at[1].multiply(s)
    b_r = b[2:]
    b_spin = jnp.abs(jnp.asarray(maps.spin_r)) @ b_r
    b_rho = jnp.max(jnp.einsum("k,kab->ab", b_r, jnp.abs(jnp.asarray(maps.basis))))
    s = estimate.coupling_scale(jnp.sum(Jt * Jt), spin)
    err = estimate.relative(jnp.concatenate([b[:2], b_spin / spin, b_rho[None]]), s, T, V)
    return cur, dcur, r, err


def half_point(
    J: Array, T: Array, V: Array, model: Model, config: Config, strategy: Strategy
) -> Observables:
    """The "spin-half-2x2" solve of one point (spin 1/2, diagonal J (3,)): the paper path's
    (jaxmi.observables.point) on this model's integrals. Its y-decoupling and closed-form
    texture-free state need only the texture to rotate in the x-z plane and J to be diagonal,
    not mu0 = 0 or theta = eps^2: the 15 numbers (jaxmi.integrals.Coefficients) carry the
    rest. It equals :func:`solve` to ~1e-14 (tests/test_family.py) and keeps the paper path's
    texture-free-plus-deviation split.

    T = V = 0 as in :func:`current_and_slope`: the limit V -> 0+ at T = 0. The reached state is
    homogeneous of degree 0 in the forms q and the current linear in (q, V) at a fixed state,
    so the conductance there is the current of the forms' V-slope at V = 1, drive pol = 1 (at
    mu0 != 0 the jvp at V = 0 itself would take the unpolarized drive, tanh's T -> 0 limit of
    linear response, not the V -> 0+ one); the state is r = 0 (the rates vanish).
    """
    gen, dgen, eq, deq = observables.generator_and_errors(
        T,
        V,
        config,
        lambda v: coefficients_and_values(T, v, model, config, strategy),
        moving=True,
    )
    jj6 = pair_products(J)
    q, dq, pol, dpol = jj6 @ gen.forms, jj6 @ dgen.forms, gen.pol, dgen.pol
    zero = (T == 0) & (V == 0)
    one = jnp.ones_like(V)
    # At T = V = 0 the one combine below evaluates the slope's current (its value is then the
    # conductance; its tangent is unused).
    (cur, r), (dcur, _) = jax.jvp(
        lambda q_, v_, p_: combine(J, q_, v_, p_, config),
        (jnp.where(zero, dq, q), jnp.where(zero, one, V), jnp.where(zero, one, pol)),
        (dq, one, dpol),
    )
    dcur = jnp.where(zero, cur, dcur)
    # the error estimate as on the paper path (jaxmi.estimate.paper_bounds)
    err = observables.slope_and_error(J, jj6, q, dq, gen, dgen, eq, deq, T, config)[3]
    return observables.from_bloch(jnp.where(zero, 0.0, cur), dcur, jnp.where(zero, 0.0, r), err)


def point(
    J: Array,
    T: Array,
    V: Array,
    model: Model,
    config: Config = Config(),
    strategy: Strategy | None = None,
) -> Observables:
    """General path for one point: J (3,) or (3, 3) as model.exchange says; T, V scalars.
    ``strategy``: the integration path and the solver (default :func:`jaxmi.strategy.choose`).
    With the per-point error estimate (``error``; XLA drops it where it is not used)."""
    strategy = _strategy(model, strategy)
    if strategy.solver == "spin-half-2x2":
        return half_point(J, T, V, model, config, strategy)
    Jt = exchange_tensor(J, model.exchange)
    c, dc, e, de = pair_and_errors(T, V, model, config, strategy)
    cur, dcur, r, err = slope_and_error(Jt, c, dc, e, de, T, V, model, config)
    return _observables(cur, dcur, r, model.spin, err)


#: Points per vmapped batch of :func:`points`' loop.
BLOCK = 64


def _strategy(model: Model, strategy: Strategy | None) -> Strategy:
    """The strategy to compile for: ``strategy``, else chosen from the model outside the jit
    (its concrete values count; under a caller's transformation they are tracers)."""
    return choose(model) if strategy is None else strategy


@functools.partial(jax.jit, static_argnames=("config", "strategy"))
def _points(J, T, V, model, config, strategy):
    return jax.lax.map(lambda a: point(*a, model, config, strategy), (J, T, V), batch_size=BLOCK)


def points(
    J: Array,
    T: Array,
    V: Array,
    model: Model,
    config: Config = Config(),
    strategy: Strategy | None = None,
) -> Observables:
    """General path over a flat batch: J (n, 3) or (n, 3, 3), T (n,), V (n,)."""
    return _points(J, T, V, model, config, _strategy(model, strategy))


def _grid_r(J: Array, T: Array, V: Array, model: Model, config: Config, strategy: Strategy):
    """(current, conductance, r) of every J (nJ, ...) against every (T, V) pair (nP,)."""

    def pair(t, v):
        return jax.jvp(
            lambda vv: rate_matrices(t, vv, model, config, strategy), (v,), (jnp.ones_like(v),)
        )

    (K, D), (dK, dD) = jax.vmap(pair)(T, V)

    def one(j, k, d, dk, dd, t, v):
        Jt = exchange_tensor(j, model.exchange)
        return current_and_slope(Jt, (k, d), (dk, dd), t, v, model.spin, config.regularization)

    per_pair = jax.vmap(one, in_axes=(None, 0, 0, 0, 0, 0, 0))
    batch = max(1, 4096 // T.shape[0])
    return jax.lax.map(lambda j: per_pair(j, K, D, dK, dD, T, V), J, batch_size=batch)


@functools.partial(jax.jit, static_argnames=("config", "strategy", "with_error"))
def _grid_arrays(J, T, V, model, config, strategy, with_error):
    spin_r = bloch_maps(model.spin).spin_r.T
    if not with_error:
        cur, dcur, r = _grid_r(J, T, V, model, config, strategy)
        return cur, dcur, r @ spin_r
    cur, dcur, r, err = _grid_error(J, T, V, model, config, strategy)
    return cur, dcur, r @ spin_r, err


def grid_arrays(
    J: Array,
    T: Array,
    V: Array,
    model: Model,
    config: Config = Config(),
    strategy: Strategy | None = None,
    with_error: bool = False,
):
    """Factorized general path without rho (what a sweep stores): J (nJ, 3[, 3]) against (T, V)
    pairs (nP,) -> (current (nJ, nP), conductance (nJ, nP), spin (nJ, nP, 3)), and with
    ``with_error`` the per-point error estimate (nJ, nP) after them (a reverse pass per
    observable through the solve: ~4x the cost). The energy integrals are computed once per
    pair; per J it is a 3x3 product and a (d^2-1) solve."""
    return _grid_arrays(J, T, V, model, config, _strategy(model, strategy), with_error)


def _grid_error(J: Array, T: Array, V: Array, model: Model, config: Config, strategy: Strategy):
    """(current, conductance, r, error) of every J (nJ, ...) against every pair (nP,)."""
    c, dc, e, de = jax.vmap(lambda t, v: pair_and_errors(t, v, model, config, strategy))(T, V)

    def one(j, c_, dc_, e_, de_, t, v):
        Jt = exchange_tensor(j, model.exchange)
        return slope_and_error(Jt, c_, dc_, e_, de_, t, v, model, config)

    per_pair = jax.vmap(one, in_axes=(None, 0, 0, 0, 0, 0, 0))
    batch = max(1, 4096 // T.shape[0])
    return jax.lax.map(lambda j: per_pair(j, c, dc, e, de, T, V), J, batch_size=batch)


@functools.partial(jax.jit, static_argnames=("config", "strategy"))
def _grid(J, T, V, model, config, strategy):
    cur, dcur, r, err = _grid_error(J, T, V, model, config, strategy)
    return _observables(cur, dcur, r, model.spin, err)


def grid(
    J: Array,
    T: Array,
    V: Array,
    model: Model,
    config: Config = Config(),
    strategy: Strategy | None = None,
) -> Observables:
    """Factorized general path with all observables, leading shape (nJ, nP)."""
    return _grid(J, T, V, model, config, _strategy(model, strategy))
