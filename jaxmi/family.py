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
  integrated over the whole line, on the real axis (a user texture need not be analytic, so the
  contour of the paper path is not available): a window segment [mu0 - |V|/2, mu0 + |V|/2]
  graded toward both Fermi edges, two tails of tail_cutoff * T in uniform panels, and a panel
  break at the Dirac point in each piece (a texture |eps|^p has a kink
  there). The window integrals int W d eps do not depend on mu0.
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

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxmi import texture
from jaxmi.config import Config
from jaxmi.generator import coupling_matrices
from jaxmi.impurity import bloch_maps, frame_maps
from jaxmi.integrals import Coefficients, closed_form_windows, occupations
from jaxmi.model import Model, exchange_tensor
from jaxmi.observables import Observables
from jaxmi.quadrature import composite, window_breaks


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


def real_line_pieces(T: Array, V: Array, mu0: Array, config: Config):
    """Nodes and weights of the three pieces of the real line, each with a break at eps = 0.

    Returns:
        ((eps, w) of the left tail, of the window segment, of the right tail); real arrays.
        The window segment is [mu0 - h, mu0 + h] with h = |V|/2; at T = 0 the nodes move with
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
    pieces = []
    for breaks in (left, seg, right):
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


def coefficients(T: Array, V: Array, model: Model, config: Config = Config()) -> Coefficients:
    """The 15 numbers of one (T, V) pair for a model (scalars T, V in vF*k0; T >= 0)."""
    T = jnp.asarray(T, dtype=float)
    V = jnp.asarray(V, dtype=float)
    mu0 = jnp.asarray(model.mu0, dtype=float)
    pieces = real_line_pieces(T, V, mu0, config)
    e2 = jnp.zeros(3, complex)
    e4 = jnp.zeros(3, complex)
    for index, (eps, w) in enumerate(pieces):
        if index == 1:  # the window segment: at T = 0 the windows are 1 (RL for V >= 0, else LR)
            pos = (V >= 0).astype(float)
            step = jnp.stack([jnp.zeros_like(eps), pos + 0 * eps, (1.0 - pos) + 0 * eps])
        else:
            step = jnp.zeros((3, *eps.shape))
        win = jnp.where(T > 0, _fermi_windows(eps, T, V, mu0), step) * w[None, :]
        m2, m4 = texture.real_moments(win, model.texture(eps))
        e2 = e2 + m2
        e4 = e4 + m4
    pos = (V >= 0).astype(float)
    w_step = jnp.stack([jnp.zeros_like(V), V * pos, -V * (1.0 - pos)])
    w = jnp.where(T > 0, closed_form_windows(T, V), w_step)
    return Coefficients(V=V, w=w, E2=e2, E4=e4, pol=jnp.zeros_like(V))


def rate_matrices(T: Array, V: Array, model: Model, config: Config = Config()):
    """(K, D): the 3x3 complex Hermitian matrices of Eqs. 10 and 12 for unit exchange.

    The rate matrix of a coupling tensor J is J K J^T, the current matrix J D J^T.
    """
    k0, dk, d0, dd = coupling_matrices(coefficients(T, V, model, config))
    return k0 + dk, d0 + dd


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


def _observables(current, conductance, r, spin: float) -> Observables:
    maps = bloch_maps(spin)
    d = maps.basis.shape[-1]
    sp = r @ maps.spin_r.T
    eye = jnp.eye(d).reshape((1,) * (r.ndim - 1) + (d, d))
    rho = eye / d + jnp.einsum("...k,kab->...ab", r, maps.basis)
    return Observables(current, conductance, sp, rho)


def point(J: Array, T: Array, V: Array, model: Model, config: Config = Config()) -> Observables:
    """General path for one point: J (3,) or (3, 3) as model.exchange says; T, V scalars."""
    Jt = exchange_tensor(J, model.exchange)
    rates, tangents = jax.jvp(
        lambda v: rate_matrices(T, v, model, config), (V,), (jnp.ones_like(V),)
    )
    cur, dcur, r = current_and_slope(Jt, rates, tangents, T, V, model.spin, config.regularization)
    return _observables(cur, dcur, r, model.spin)


#: Points per vmapped batch of :func:`points`' loop.
BLOCK = 64


@functools.partial(jax.jit, static_argnames="config")
def points(J: Array, T: Array, V: Array, model: Model, config: Config = Config()) -> Observables:
    """General path over a flat batch: J (n, 3) or (n, 3, 3), T (n,), V (n,)."""
    return jax.lax.map(lambda a: point(*a, model, config), (J, T, V), batch_size=BLOCK)


def _grid_r(J: Array, T: Array, V: Array, model: Model, config: Config):
    """(current, conductance, r) of every J (nJ, ...) against every (T, V) pair (nP,)."""

    def pair(t, v):
        return jax.jvp(lambda vv: rate_matrices(t, vv, model, config), (v,), (jnp.ones_like(v),))

    (K, D), (dK, dD) = jax.vmap(pair)(T, V)

    def one(j, k, d, dk, dd, t, v):
        Jt = exchange_tensor(j, model.exchange)
        return current_and_slope(Jt, (k, d), (dk, dd), t, v, model.spin, config.regularization)

    per_pair = jax.vmap(one, in_axes=(None, 0, 0, 0, 0, 0, 0))
    batch = max(1, 4096 // T.shape[0])
    return jax.lax.map(lambda j: per_pair(j, K, D, dK, dD, T, V), J, batch_size=batch)


@functools.partial(jax.jit, static_argnames="config")
def grid_arrays(J: Array, T: Array, V: Array, model: Model, config: Config = Config()):
    """Factorized general path without rho (what a sweep stores): J (nJ, 3[, 3]) against (T, V)
    pairs (nP,) -> (current (nJ, nP), conductance (nJ, nP), spin (nJ, nP, 3)). The energy
    integrals are computed once per pair; per J it is a 3x3 product and a (d^2-1) solve."""
    cur, dcur, r = _grid_r(J, T, V, model, config)
    return cur, dcur, r @ bloch_maps(model.spin).spin_r.T


@functools.partial(jax.jit, static_argnames="config")
def grid(J: Array, T: Array, V: Array, model: Model, config: Config = Config()) -> Observables:
    """Factorized general path with all observables, leading shape (nJ, nP)."""
    cur, dcur, r = _grid_r(J, T, V, model, config)
    return _observables(cur, dcur, r, model.spin)
