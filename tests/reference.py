"""Slow, independent, high-accuracy reference for the magnetic-impurity / spin-texture model.

This module is deliberately self-contained (numpy, scipy, mpmath; no JAX, nothing from ``jaxmi``)
so that it can serve as an independent oracle for the production code.

Model (paper Eqs. 3-14)
-----------------------
Units: energies ``eps``, temperature ``T`` and bias ``V`` in units of ``vF*k0``; couplings
``J = (Jx, Jy, Jz)`` dimensionless (``J/vF``).

* Pauli matrices ``sx, sy, sz``; impurity spin-1/2 operators ``S^j = sigma_j / 2``.
* Spin texture ``theta(eps) = eps**2``; rotation ``B(eps) = cos(theta) 1 + i sin(theta) sy``
  in chiral space (index 0 = R, 1 = L).  ``texture=False`` sets ``theta = 0``.
* ``R_j(eps) = B^dagger sigma_j B`` and impurity operators
  ``G_ab(eps) = sum_j J_j S^j R_j(eps)[a, b]`` (Eq. 7, diagonal in energy).
* ``f_R(eps) = f(eps - V/2)``, ``f_L(eps) = f(eps + V/2)``, ``f(x) = 1/(exp(x/T) + 1)``;
  window ``W_ab = f_a (1 - f_b)``.
* Master equation (Eq. 10, positive constant prefactor dropped)::

      d rho/dt = L[rho] = -sum_ab int d eps W_ab [{G_ab G_ba, rho} - 2 G_ba rho G_ab]

* Current (Eq. 12), units ``e vF k0 / h``::

      I = 2 int d eps (W_LR Tr[G_LR G_RL rho] - W_RL Tr[G_RL G_LR rho])

  i.e. ``I = Tr[M rho]`` with the 2x2 matrix
  ``M = 2 int d eps (W_LR G_LR G_RL - W_RL G_RL G_LR)``.
  Normalisation: without texture, ``Jy = 0``, ``Jz = Jx`` gives ``I = -Jx**2 V / 2``.
* Conductance ``G = dI/dV`` (total derivative, rho depends on V) by central finite differences
  ``D(h) = (I(V+h) - I(V-h)) / (2h)`` at ``h = h0 / 2**k`` (``h0 = T``, k = 0..5), extrapolated
  in powers of ``h**2``.  An independent "analytic" derivative (quadrature of ``dW/dV`` and a
  linear solve for ``d rho/dV``) is provided by :func:`conductance_analytic` as a cross-check.
* Impurity spin ``<S^j> = Tr(S^j rho)``.

Vec convention
--------------
Row-major (C order): ``vec(rho)[2*i + j] = rho[i, j]``, hence
``vec(A rho B) = kron(A, B.T) @ vec(rho)``.  The trace functional is ``[1, 0, 0, 1]``.

Numerics
--------
The integrand is evaluated in bilinear form: with ``c[a, b, j] = J_j R_j(eps)[a, b]`` one has
``G_ab = sum_j c[a, b, j] S^j``, so ``L(eps) = -sum_jk K_jk(eps) A_jk`` and
``M(eps) = sum_jk C_jk(eps) S^j S^k`` with fixed 4x4 superoperators
``A_jk = {S^j S^k, .} - 2 S^k . S^j`` and 3x3 kernels ``K = sum_ab W_ab c_ab c_ba^T``,
``C = 2 (W_LR c_LR c_RL^T - W_RL c_RL c_LR^T)``.  This is exactly the Eq. 10 / Eq. 12 integrand
(``dissipator_and_current`` builds it literally; the tests check equality to round-off) but
~8x cheaper.  All 18 complex kernel entries (hence every matrix element of L and M) are
integrated as one real vector of length 36 with ``scipy.integrate.quad_vec`` (Gauss-Kronrod
21, max norm, epsrel 2e-13) over ``[-(|V|/2 + 45 T), |V|/2 + 45 T]`` (beyond, the integrand
is ``< exp(-45) ~ 3e-20`` relative).  The range is pre-split into panels: breakpoints at ``0``
and ``+-V/2`` (Fermi edges), panel width ``<= 2 T`` (Fermi scale; the Fermi poles are ``pi T``
off the real axis) and ``<= (pi/4)/(1+|eps|)`` (about a quarter period of the fastest texture
oscillation ``cos(4 eps**2)``), after which quad_vec refines adaptively where needed.

The stationary state solves the least-squares system ``[L; trace row] vec(rho) = [0; 1]``
(trace row scaled to ``max|L|``); a one-dimensional null space of ``L`` is asserted
(``ValueError`` otherwise, e.g. a single non-zero coupling component).  The 5x4 solve and the
trace ``I = Tr[M rho]`` are done in mpmath (40 digits) on the float64 integrals, cross-checked
against ``numpy.linalg.lstsq``: I is a strongly cancelling trace (terms ~ J^2 max(T,|V|)
cancel down to ~ J^2 V T^4 for isotropic coupling), and a float64 solve alone left noise of
~1e-16 J^2 T in I, which the finite differences then amplify by 1/h.

Finite differences for G = dI/dV use ``h = T / 2**k``, k = 0..5, all with the panel grid of the
central V (smooth round-off in V), Richardson extrapolation in ``h**2`` and automatic choice of
the diagonal entry with the smallest difference.  ``conductance_err`` is the larger of that
difference and a round-off floor ``1e-15 * sum(J^2) max(T,|V|) / h``.

Accuracy (measured; see make_reference.py and the JSON header "selfcheck")
----------------------------------------------------------------------------
Every stored point (29 points, T in [0.02, 0.5], |V| <= 1, |J_j| <= 1) was recomputed with
panels half as wide, cutoff 50 T and different FD steps (h0 = 0.7 T, 7 levels), and G was
compared with the independent analytic derivative ``conductance_analytic``:

* current: absolute deviation <= 6e-16 * s with s = sum(J^2) max(T,|V|) (``noise_scale``);
  relative deviation <= 1.5e-14 where |I| >= 1e-2 s, <= 2e-12 where |I| >= 1e-4 s, and 2.1e-11
  in the worst, strongly cancelling point (|Jx| = |Jy|, T = 0.021, |V| = 0.08 T, |I| ~ 8e-7 s).
  At V = 0 the current and spin vanish exactly; the stored values are round-off (< 1e-18).
* spin: absolute deviation <= 6e-16 (|<S>| <= 1/2).
* conductance: relative deviation <= 3e-10 (tight vs default FD) and <= 7e-11 (FD vs analytic
  derivative); <= 1e-12 away from the strongly cancelling low-T cases.  ``conductance_err`` is
  conservative (<= 3.4e-9 relative, typically 10-50x the measured deviation there).
* Paper Eq. 14 (V = 0) is reproduced to <= 1e-12 relative at the tested couplings and
  T = 0.05, 0.2; the texture-free closed forms to ~1e-15.
"""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
from scipy.integrate import quad_vec

SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
SZ = np.array([[1, 0], [0, -1]], dtype=complex)
ID2 = np.eye(2, dtype=complex)
PAULI = np.array([SX, SY, SZ])
SPIN = PAULI / 2
R, L = 0, 1
TRACE_ROW = np.array([1, 0, 0, 1], dtype=complex)
MP_DPS = 40  # digits for the 4x4 post-processing (stationary state, traces)

# Default numerical settings (documented in the header of the generated JSON file).
SETTINGS = {
    "cutoff_T": 45.0,  # integrate over |eps| <= |V|/2 + cutoff_T * T
    "panel_T": 2.0,  # panel width <= panel_T * T
    "panel_osc": math.pi / 4,  # panel width <= panel_osc / (1 + |eps|)
    "epsrel": 2e-13,  # quad_vec tolerance (max norm, relative to the largest entry)
    "limit": 200_000,  # quad_vec max number of subintervals
    "h0_T": 1.0,  # first finite-difference step h0 = h0_T * T
    "richardson_levels": 6,  # h = h0 / 2**k, k = 0 .. levels-1
}


# --------------------------------------------------------------------------------------------
# Model ingredients
# --------------------------------------------------------------------------------------------
def rotation(eps: float, texture: bool = True) -> np.ndarray:
    """B(eps) = cos(theta) 1 + i sin(theta) sy with theta = eps**2 (or 0 without texture)."""
    theta = eps * eps if texture else 0.0
    return math.cos(theta) * ID2 + 1j * math.sin(theta) * SY


def chiral_matrices(eps: float, texture: bool = True) -> np.ndarray:
    """R_j(eps) = B^dagger sigma_j B, shape (3, 2, 2), index j = x, y, z."""
    b = rotation(eps, texture)
    return b.conj().T @ PAULI @ b


def coupling_operators(J, eps: float, texture: bool = True) -> np.ndarray:
    """G[a, b] = sum_j J_j S^j R_j(eps)[a, b]; shape (2, 2, 2, 2) = (a, b, impurity, impurity)."""
    r = chiral_matrices(eps, texture)
    return np.einsum("j,jab,jxy->abxy", np.asarray(J, dtype=float), r, SPIN)


def fermi(x: float, T: float) -> float:
    """f(x) = 1 / (exp(x/T) + 1), overflow-safe and without cancellation for 1 - f = f(-x)."""
    y = x / T
    if y > 0:
        e = math.exp(-y)
        return e / (1 + e)
    return 1 / (1 + math.exp(y))


def windows(eps: float, T: float, V: float) -> np.ndarray:
    """W[a, b] = f_a (1 - f_b) with f_R = f(eps - V/2), f_L = f(eps + V/2)."""
    f = np.array([fermi(eps - V / 2, T), fermi(eps + V / 2, T)])
    fbar = np.array([fermi(-(eps - V / 2), T), fermi(-(eps + V / 2), T)])  # 1 - f, no cancel
    return np.outer(f, fbar)


def windows_dV(eps: float, T: float, V: float) -> np.ndarray:
    """dW[a, b]/dV at fixed eps (f' = -f (1 - f) / T)."""
    f = np.array([fermi(eps - V / 2, T), fermi(eps + V / 2, T)])
    fbar = np.array([fermi(-(eps - V / 2), T), fermi(-(eps + V / 2), T)])
    # d f_R / dV = -f'(eps - V/2) / 2 = +f_R (1 - f_R) / (2T); d f_L / dV = -f_L (1 - f_L) / (2T)
    df = np.array([1.0, -1.0]) * f * fbar / (2 * T)
    return np.outer(df, fbar) - np.outer(f, df)


def left_right(a: np.ndarray) -> np.ndarray:
    """Superoperator of rho -> A rho (row-major vec)."""
    return np.kron(a, ID2)


def sandwich(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Superoperator of rho -> A rho B (row-major vec)."""
    return np.kron(a, b.T)


def dissipator_and_current(G: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integrand at one energy: the 4x4 superoperator L(eps) and the 2x2 current matrix M(eps).

    L(eps) = -sum_ab W_ab [ {G_ab G_ba, .} - 2 G_ba . G_ab ]
    M(eps) = 2 (W_LR G_LR G_RL - W_RL G_RL G_LR)
    """
    sup = np.zeros((4, 4), dtype=complex)
    for a in (R, L):
        for b in (R, L):
            gg = G[a, b] @ G[b, a]
            term = left_right(gg) + sandwich(ID2, gg) - 2 * sandwich(G[b, a], G[a, b])
            sup -= W[a, b] * term
    cur = 2 * (W[L, R] * G[L, R] @ G[R, L] - W[R, L] * G[R, L] @ G[L, R])
    return sup, cur


# --------------------------------------------------------------------------------------------
# Quadrature
# --------------------------------------------------------------------------------------------
def panel_points(T: float, V: float, settings: dict | None = None) -> tuple[float, np.ndarray]:
    """Integration half-range and interior breakpoints (0, +-V/2 and shrinking panels)."""
    s = SETTINGS if settings is None else settings
    lam = abs(V) / 2 + s["cutoff_T"] * T
    pts = [0.0]
    x = 0.0
    while True:
        x += min(s["panel_T"] * T, s["panel_osc"] / (1 + x))
        if x >= lam:
            break
        pts.append(x)
    half = np.array(pts)
    allp = np.concatenate([-half[1:], half, [V / 2, -V / 2]])
    allp = np.unique(allp)
    # drop breakpoints that nearly coincide with +-V/2 (avoid slivers)
    keep = []
    for p in allp:
        if p in (V / 2, -V / 2) or min(abs(p - V / 2), abs(p + V / 2)) > 1e-3 * T:
            keep.append(p)
    return lam, np.array(keep)


def _integrate(
    func, T: float, V: float, settings: dict | None = None, grid_V: float | None = None
) -> tuple[np.ndarray, float]:
    """quad_vec of a real-vector valued integrand over the panelled energy range.

    ``grid_V`` (default ``V``) is the bias used to place the panels; finite differences pass
    the central bias so that all I(V +- h) share one panel grid (smooth round-off in V).
    """
    s = SETTINGS if settings is None else settings
    lam, pts = panel_points(T, V if grid_V is None else grid_V, s)
    res, err, info = quad_vec(
        func,
        -lam,
        lam,
        epsabs=0.0,
        epsrel=s["epsrel"],
        norm="max",
        points=pts,
        limit=s["limit"],
        full_output=True,
    )
    # status 2 ("rounding error") only means the requested tolerance is at the round-off level
    # of the integrand; that is expected here and harmless.  Anything else is reported.
    if info.status == 3:
        raise FloatingPointError(f"quad_vec: {info.message} (T={T}, V={V})")
    if info.status == 1:
        warnings.warn(f"quad_vec: {info.message} (T={T}, V={V}, err={err})", stacklevel=2)
    return res, err


def _pair_coefficients(J, eps: float, texture: bool) -> np.ndarray:
    """c[a, b, j] = J_j R_j(eps)[a, b], so that G_ab = sum_j c[a, b, j] S^j."""
    r = chiral_matrices(eps, texture)
    return np.einsum("j,jab->abj", np.asarray(J, dtype=float), r)


def _superoperator_basis() -> np.ndarray:
    """A[j, k] = superoperator of rho -> {S^j S^k, rho} - 2 S^k rho S^j (row-major vec)."""
    basis = np.zeros((3, 3, 4, 4), dtype=complex)
    for j in range(3):
        for k in range(3):
            ss = SPIN[j] @ SPIN[k]
            basis[j, k] = left_right(ss) + sandwich(ID2, ss) - 2 * sandwich(SPIN[k], SPIN[j])
    return basis


SUPEROPERATOR_BASIS = _superoperator_basis()
SPIN_PRODUCTS = np.einsum("jxy,kyz->jkxz", SPIN, SPIN)  # S^j S^k


def bilinear_kernels(c: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3x3 kernels K, C at one energy such that (exactly, by bilinearity in G)

    L(eps) = -sum_jk K_jk A_jk,  K_jk = sum_ab W_ab c[a, b, j] c[b, a, k]
    M(eps) = sum_jk C_jk S^j S^k, C_jk = 2 (W_LR c[L,R,j] c[R,L,k] - W_RL c[R,L,j] c[L,R,k])

    This is the same integrand as :func:`dissipator_and_current` (checked in the tests to
    round-off), only cheaper to evaluate: 18 complex numbers instead of 20 built from krons.
    """
    kern = np.einsum("ab,abj,bak->jk", W, c, c)
    ckern = 2 * (W[L, R] * np.outer(c[L, R], c[R, L]) - W[R, L] * np.outer(c[R, L], c[L, R]))
    return kern, ckern


def assemble(kern: np.ndarray, ckern: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map integrated kernels (K, C) to the 4x4 superoperator L and the 2x2 current matrix M."""
    sup = -np.einsum("jk,jkpq->pq", kern, SUPEROPERATOR_BASIS)
    cur = np.einsum("jk,jkxz->xz", ckern, SPIN_PRODUCTS)
    return sup, cur


def integrated_operators(
    J,
    T: float,
    V: float,
    *,
    texture: bool = True,
    derivative: bool = False,
    settings: dict | None = None,
    grid_V: float | None = None,
):
    """Integrated superoperator L (4x4), current matrix M (2x2) and the quad error estimate.

    The integrand vector holds the real and imaginary parts of all entries of the 3x3 kernels
    K(eps), C(eps) (see :func:`bilinear_kernels`); L and M are fixed linear images of them, so
    every matrix element of L and M is integrated adaptively.  With ``derivative=True`` the
    integrals of the same kernels with dW/dV are appended and dL/dV, dM/dV returned as well.
    """

    def func(eps):
        c = _pair_coefficients(J, eps, texture)
        parts = list(bilinear_kernels(c, windows(eps, T, V)))
        if derivative:
            parts += list(bilinear_kernels(c, windows_dV(eps, T, V)))
        return np.concatenate([p.ravel() for p in parts]).view(float)

    res, err = _integrate(func, T, V, settings, grid_V)
    z = res.view(complex).reshape(-1, 3, 3)
    sup, cur = assemble(z[0], z[1])
    if derivative:
        dsup, dcur = assemble(z[2], z[3])
        return sup, cur, dsup, dcur, err
    return sup, cur, err


# --------------------------------------------------------------------------------------------
# Stationary state and observables
# --------------------------------------------------------------------------------------------
def _mp_matrix(a: np.ndarray) -> mp.matrix:
    return mp.matrix([[mp.mpc(complex(x)) for x in row] for row in np.atleast_2d(a)])


def _augmented_system(sup: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[L; s * trace row] and [0; s] with s = max|L_ij|.

    The system is consistent, so the row scale s does not change the solution; it balances the
    rows (an unscaled row of ones against entries ~ J^2 T would cost a factor 1/||L|| in
    round-off).
    """
    scale = np.abs(sup).max()
    a = np.vstack([sup, scale * TRACE_ROW])
    b = np.array([0, 0, 0, 0, scale], dtype=complex)
    return a, b


def check_unique(sup: np.ndarray, null_tol: float = 1e-9) -> None:
    """Raise ValueError unless L has a one-dimensional null space (relative threshold)."""
    sv = np.linalg.svd(sup, compute_uv=False)
    if sv[0] == 0 or sv[2] <= null_tol * sv[0]:
        raise ValueError(f"stationary state not unique: singular values of L = {sv}")


def stationary_state_mp(sup: np.ndarray) -> mp.matrix:
    """Stationary rho (2x2 mpmath matrix) from the least-squares solve of [L; trace] vec = [0; 1].

    L is the float64 result of the quadrature; the tiny 5x4 least-squares problem is solved
    with mpmath (QR, ``MP_DPS`` digits) so that the post-processing adds no round-off: the
    current is a strongly cancelling trace (terms ~ J^2 T cancel down to ~ J^2 V T^4 for
    isotropic coupling), and float64 ``numpy.linalg.lstsq`` alone leaves ~1e-16 * J^2 T noise
    in I.  The float64 lstsq solution is computed too and must agree to 1e-12.
    """
    check_unique(sup)
    a, b = _augmented_system(sup)
    vec64, *_ = np.linalg.lstsq(a, b, rcond=None)
    with mp.workdps(MP_DPS):
        x, _ = mp.qr_solve(_mp_matrix(a), _mp_matrix(b[:, None]))
        rho = mp.matrix([[x[0], x[1]], [x[2], x[3]]])
        herm_dev = float(mp.mnorm(rho - rho.H, 1))
        if herm_dev > 1e-10:
            raise ValueError(f"stationary rho not Hermitian (deviation {herm_dev})")
        rho = (rho + rho.H) / 2  # drop the round-off anti-Hermitian part
        dev = max(abs(complex(rho[i, j]) - vec64[2 * i + j]) for i in range(2) for j in range(2))
    if dev > 1e-12:
        raise ValueError(f"mpmath and numpy least-squares disagree by {dev}")
    return rho


def _mp_trace_product(m: np.ndarray, rho: mp.matrix) -> mp.mpf:
    with mp.workdps(MP_DPS):
        return mp.re(sum(mp.mpc(complex(m[i, j])) * rho[j, i] for i in range(2) for j in range(2)))


def _to_numpy(rho: mp.matrix) -> np.ndarray:
    return np.array([[complex(rho[i, j]) for j in range(2)] for i in range(2)])


def stationary_state(sup: np.ndarray) -> np.ndarray:
    """Stationary density matrix (2x2 complex, Hermitian, unit trace) of the superoperator L."""
    return _to_numpy(stationary_state_mp(sup))


def current_and_state(
    J,
    T: float,
    V: float,
    *,
    texture: bool = True,
    settings: dict | None = None,
    grid_V: float | None = None,
):
    """Current I(V) = Tr[M rho], stationary rho (numpy) and the quad error estimate."""
    sup, cur, err = integrated_operators(J, T, V, texture=texture, settings=settings, grid_V=grid_V)
    rho = stationary_state_mp(sup)
    return float(_mp_trace_product(cur, rho)), _to_numpy(rho), err


def current(J, T: float, V: float, *, texture: bool = True, settings: dict | None = None):
    """Current I (units e vF k0 / h)."""
    return current_and_state(J, T, V, texture=texture, settings=settings)[0]


def spin(rho: np.ndarray) -> np.ndarray:
    """(<S^x>, <S^y>, <S^z>) = Tr(S^j rho)."""
    return np.array([np.trace(s @ rho).real for s in SPIN])


def richardson(values, hs) -> tuple[float, float, int, np.ndarray]:
    """Richardson extrapolation of D(h) = G + a1 h^2 + a2 h^4 + ... for h_k = h0 / 2^k.

    Returns the best estimate, its error estimate, the row it came from and the Neville
    tableau.  The best estimate is the diagonal entry T[k, k] with the smallest
    max(|T[k,k] - T[k,k-1]|, |T[k,k] - T[k-1,k-1]|); that difference is the error estimate.
    Choosing the row this way stops before round-off growth at the smallest steps dominates.
    """
    n = len(values)
    tab = np.full((n, n), np.nan)
    tab[:, 0] = values
    for k in range(1, n):
        ratio = (hs[k - 1] / hs[k]) ** 2
        for m in range(1, k + 1):
            fac = ratio**m
            tab[k, m] = tab[k, m - 1] + (tab[k, m - 1] - tab[k - 1, m - 1]) / (fac - 1)
    best, best_err, best_k = tab[0, 0], math.inf, 0
    for k in range(1, n):
        e = max(abs(tab[k, k] - tab[k, k - 1]), abs(tab[k, k] - tab[k - 1, k - 1]))
        if e < best_err:
            best, best_err, best_k = tab[k, k], e, k
    return float(best), float(best_err), best_k, tab


def noise_scale(J, T: float, V: float) -> float:
    """Size of the cancelling terms in I: sum_j J_j^2 * max(T, |V|).

    The float64 quadrature leaves relative noise ~1e-15 of this in I (measured), whatever the
    size of I itself (I can be ~1e-5 of it: isotropic coupling at low T, |Jx| = |Jy|, ...).
    """
    return float(np.sum(np.square(J))) * max(T, abs(V))


def conductance_fd(
    J, T: float, V: float, *, texture: bool = True, settings: dict | None = None
) -> tuple[float, float]:
    """dI/dV by central differences + Richardson; returns (G, error estimate).

    All I(V +- h) use the panel grid of the central V.  The error estimate is the larger of
    the Richardson estimate and the round-off floor 1e-15 * noise_scale / h at the chosen step.
    """
    s = SETTINGS if settings is None else settings
    h0 = s["h0_T"] * T
    hs = [h0 / 2**k for k in range(s["richardson_levels"])]
    vals = []
    for h in hs:
        ip, _, _ = current_and_state(J, T, V + h, texture=texture, settings=s, grid_V=V)
        im, _, _ = current_and_state(J, T, V - h, texture=texture, settings=s, grid_V=V)
        vals.append((ip - im) / (2 * h))
    best, err, k, _ = richardson(vals, hs)
    return best, max(err, 1e-15 * noise_scale(J, T, V) / hs[k])


def conductance_analytic(
    J, T: float, V: float, *, texture: bool = True, settings: dict | None = None
) -> float:
    """dI/dV = Tr[M' rho] + Tr[M rho'] with L rho' = -L' rho, Tr rho' = 0 (cross-check)."""
    sup, cur, dsup, dcur, _ = integrated_operators(
        J, T, V, texture=texture, derivative=True, settings=settings
    )
    rho = stationary_state_mp(sup)
    a, _ = _augmented_system(sup)
    with mp.workdps(MP_DPS):
        vec = mp.matrix([rho[0, 0], rho[0, 1], rho[1, 0], rho[1, 1]])
        rhs = -(_mp_matrix(dsup) * vec)
        rhs = mp.matrix([rhs[0], rhs[1], rhs[2], rhs[3], 0])
        x, _ = mp.qr_solve(_mp_matrix(a), rhs)
        drho = mp.matrix([[x[0], x[1]], [x[2], x[3]]])
        return float(_mp_trace_product(dcur, rho) + _mp_trace_product(cur, drho))


def point(J, T: float, V: float, *, texture: bool = True, settings: dict | None = None) -> dict:
    """All reference observables at one (J, T, V).

    Returns dict(current, conductance, conductance_err, spin (3,), rho (2, 2) complex).
    """
    if T <= 0:
        raise ValueError("T must be positive (T = 0 is out of scope)")
    cur, rho, _ = current_and_state(J, T, V, texture=texture, settings=settings)
    g, gerr = conductance_fd(J, T, V, texture=texture, settings=settings)
    return {
        "current": cur,
        "conductance": g,
        "conductance_err": gerr,
        "spin": spin(rho),
        "rho": rho,
    }


# --------------------------------------------------------------------------------------------
# Closed forms used by the self-checks
# --------------------------------------------------------------------------------------------
def current_no_texture(J, V: float) -> float:
    """Texture-free closed form I = -V (Jx^2 - Jy^2)^2 / (2 (Jx^2 + Jy^2))."""
    jx2, jy2 = J[0] ** 2, J[1] ** 2
    return -V * (jx2 - jy2) ** 2 / (2 * (jx2 + jy2))
