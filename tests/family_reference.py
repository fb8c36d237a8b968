"""Slow, independent, high-accuracy reference for the *model family* (issue 9).

Self-contained (numpy, scipy, mpmath; no JAX, nothing from ``jaxmi``), separate from
``tests/reference.py`` (the paper's special case), which it reproduces for spin 1/2, diagonal J,
``mu0 = 0`` and ``theta = eps**2`` (checked in ``test_family_reference_selfcheck.py``).

Model
-----
Units: ``eps``, ``T``, ``V`` (= eV) and ``mu0`` in units of ``vF*k0``; couplings dimensionless.

* Impurity spin ``S`` (any positive half-integer; the family uses 1/2, 1, 3/2), ``d = 2S+1``.
  Basis ``|S, m>`` ordered ``m = S, S-1, ..., -S``; ``S^z = diag(m)``,
  ``S^+ |m> = sqrt(S(S+1) - m(m+1)) |m+1>``, ``S^x = (S^+ + S^-)/2``,
  ``S^y = (S^+ - S^-)/(2i)`` (``sigma/2`` for S = 1/2).
* Exchange tensor: real 3x3 ``J[i, j]``, ``H_int = sum_ij J_ij S^i sigma^j`` (i: impurity,
  j: electron spin).  A length-3 ``J`` is read as ``diag(J)`` (the paper's convention).
* Texture ``theta(eps)`` (eps measured from the Dirac point):
  ``B(eps) = cos(theta) 1 + i sin(theta) sigma_y`` (chiral index 0 = R, 1 = L),
  ``R_j(eps) = B^dagger sigma_j B``, ``G_ab(eps) = sum_ij J_ij S^i R_j(eps)[a, b]`` (d x d).
  Textures: :class:`PowerLaw` ``theta = (|eps|/s)**p`` (paper: s = 1, p = 2 = :data:`PAPER`),
  :class:`Polynomial` ``theta = sum_k c_k eps**k`` (:data:`NO_TEXTURE` is theta = 0) and
  :class:`CallableTexture` (any python callable, optional derivative / slope bound).
* ``f_R(eps) = f(eps - mu0 - V/2)``, ``f_L(eps) = f(eps - mu0 + V/2)``,
  ``f(x) = 1/(exp(x/T) + 1)``; windows ``W_ab = f_a (1 - f_b)``.
* Master equation (Eq. 10, positive prefactor dropped)::

      d rho/dt = L[rho] = -sum_ab int d eps W_ab [{G_ab G_ba, rho} - 2 G_ba rho G_ab]

* Current (Eq. 12), units ``e vF k0 / h``::

      I = 2 int d eps (W_LR Tr[G_LR G_RL rho] - W_RL Tr[G_RL G_LR rho]) = Tr[M rho]

  Normalisation: S = 1/2, theta = 0, ``J = diag(Jx, 0, Jx)`` gives ``I = -Jx**2 V / 2``.
* Conductance ``G = dI/dV`` (total derivative, rho depends on V): central differences
  ``D(h) = (I(V+h) - I(V-h)) / (2h)``, ``h = h0 / 2**k`` (``h0 = T``, k = 0..8), Richardson
  extrapolation in ``h**2``; the analytic derivative (quadrature of ``dW/dV`` plus a linear
  solve for ``d rho/dV``) is computed alongside as a cross-check (``conductance_analytic``).
* Spin ``<S^i> = Tr(S^i rho)``; rho itself (d x d) is returned too.

Vec convention: row-major, ``vec(rho)[d*m + n] = rho[m, n]``, so
``vec(A rho B) = kron(A, B.T) @ vec(rho)``; the trace functional is ``vec(identity)``.

Numerics
--------
Bilinear form (as in tests/reference.py): with ``c[a, b, i] = sum_j J_ij R_j(eps)[a, b]`` one
has ``G_ab = sum_i c[a, b, i] S^i``, so ``L = -sum_ik K_ik A_ik`` and ``M = sum_ik C_ik S^i S^k``
with fixed superoperators ``A_ik = {S^i S^k, .} - 2 S^k . S^i`` and 3x3 energy integrals
``K = int sum_ab W_ab c_ab c_ba^T``, ``C = 2 int (W_LR c_LR c_RL^T - W_RL c_RL c_LR^T)``.  The
kernels do not depend on S.  :func:`dissipator_and_current` builds the literal Eq. 10 / Eq. 12
integrand from the d x d matrices G_ab; the self-check tests verify equality to round-off.

One ``scipy.integrate.quad_vec`` call (Gauss-Kronrod 21, max norm, epsrel 2e-13) integrates,
as one real vector, the kernels of every window a point needs: W(V); for each step h the mean
``(W(V+h) + W(V-h))/2`` and the half-difference ``(W(V+h) - W(V-h))/2``, the latter evaluated
without cancellation (``f(x-h/2) - f(x+h/2) = sinh(h/2T) / (cosh(x/T) + cosh(h/2T))``); and
``dW/dV`` at V.  The kernels at V +- h are the mean +- the half-difference, added exactly in
mpmath.  The float64 round-off of the (large) mean part then enters I(V+h) and I(V-h) alike
and cancels in the central difference, so D(h) carries ~1e-16 relative noise at every h
instead of ~1e-16 * I / (h I') (measured: Richardson to 9 levels reaches ~1e-15 relative, in
agreement with the analytic derivative).  All parts share the nodes (smooth in V).  The range
is ``[mu0 - Vmax/2 - 45 T, mu0 + Vmax/2 + 45 T]`` (Vmax = |V| + h0; beyond, the windows are
``< exp(-45) ~ 3e-20``), pre-split into panels: breakpoints at 0 (the texture
may have a kink there, ``|eps|**p``) and at ``mu0 +- V/2`` (Fermi edges), panel width
``<= 2 T`` (the Fermi poles are ``pi T`` off the real axis) and ``<= pi / (8 max|theta'|)``
(a quarter of the local period ``2 pi / (4 |theta'|)`` of the fastest texture oscillation
``cos(4 theta)``; max over the panel, from the analytic theta' of the built-in textures or a
central finite difference of a callable).  quad_vec then refines adaptively.

Contour method (``point(..., method="contour")``, :class:`PowerLaw` only): at high T a fast
texture makes the real axis infeasible (PowerLaw(0.5, 4) at T = 0.3: ~2e6 quarter periods of
cos(4 theta) before the Fermi tail reaches exp(-45), more than ``max_panels``).  The real axis
is then integrated as above only on [A, B] = [min(0, lowest Fermi edge) - 3T, max(0, highest
edge) + 3T].  Beyond, the integrand is split into its Fourier components in theta,
``c_ab c_ba^T = sum_k a_k exp(i k theta)``, k = 0, +-2, +-4 (exact: a 16-point DFT in theta), and
each tail of each sign group is integrated along a straight ray from B (or A) tilted by
``+-alpha``, ``alpha = min(pi/(2p), pi/4)``, into the half plane where ``exp(i k theta)`` decays
(``theta = (u/s)**p`` with ``u = +-eps``, ``Re u > 0``: analytic on each side of the kink; no
Fermi pole ``mu0 +- V/2 + i pi T (2m+1)`` lies between the ray and the real axis, as
``Re(eps) > B`` there).  Along a ray the Fermi factor and ``exp(-k Im theta)`` both decay: a few
oscillations instead of millions.  The windows continue analytically (``f(x) = 1/(exp(x/T)+1)``,
the half-difference with ``exp(-|x|/T)`` continued from the ray's side).  Checked against the
real axis where both run (tests/test_family_reference2_selfcheck.py, header "crosscheck" of
tests/data/family_points_2.json) and against another contour (ray start 5T, angle 0.3 pi/p).

Stationary state: least squares ``[L; s * trace row] vec(rho) = [0; s]`` (``s = max|L|``), with
a one-dimensional null space of L asserted (``ValueError`` otherwise).  The small solve and
the cancelling trace ``I = Tr[M rho]`` are done in mpmath (40 digits) on the float64 integrals,
cross-checked against ``numpy.linalg.lstsq``.

Accuracy: measured by ``make_family_reference.py`` (tighter settings: panels half as wide,
cutoff 50 T, other finite-difference steps; and finite differences vs analytic derivative);
the numbers are in the header "selfcheck" of ``tests/data/family_points.json``.  For the 30
stored points (S = 1/2, 1, 3/2; T in [0.03, 0.4]; |V| <= 1; |mu0| <= 0.8; four textures):
current <= 4e-14 relative (<= 1.1e-15 of noise_scale), spin and rho <= 2e-15 absolute,
conductance <= 2.2e-14 relative (default vs tight finite differences) and <= 5e-14 (finite
differences vs analytic derivative); ``conductance_err`` <= 1.7e-12 relative (conservative).
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import mpmath as mp
import numpy as np
from scipy.integrate import quad_vec
from scipy.special import expit

SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
SZ = np.array([[1, 0], [0, -1]], dtype=complex)
ID2 = np.eye(2, dtype=complex)
PAULI = np.array([SX, SY, SZ])
R, L = 0, 1
PAIRS = ((R, R), (R, L), (L, R), (L, L))  # order of the window / kernel index "ab"
_PA, _PB = np.array(PAIRS).T
MP_DPS = 40  # digits for the post-processing (stationary state, traces)

# Default numerical settings (documented in the header of the generated JSON file).
SETTINGS = {
    "cutoff_T": 45.0,  # integrate over [mu0 - Vmax/2 - cutoff_T T, mu0 + Vmax/2 + cutoff_T T]
    "panel_T": 2.0,  # panel width <= panel_T * T
    "panel_period": 0.25,  # panel width <= panel_period * 2 pi / (4 max|theta'|)
    "panel_min_T": 1e-4,  # floor of the panel width (only hit if theta' diverges, p < 1)
    "max_panels": 400_000,  # refuse (ValueError) beyond this many initial panels
    "epsrel": 2e-13,  # quad_vec tolerance (max norm, relative to the largest entry)
    "limit": 400_000,  # quad_vec max number of subintervals (on top of the initial panels)
    "h0_T": 1.0,  # first finite-difference step h0 = h0_T * T
    "richardson_levels": 9,  # h = h0 / 2**k, k = 0 .. levels-1
}


# --------------------------------------------------------------------------------------------
# Textures
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PowerLaw:
    """theta(eps) = (|eps| / scale)**exponent; the paper is PowerLaw(1, 2)."""

    scale: float = 1.0
    exponent: float = 2.0

    def __post_init__(self):
        if not (self.scale > 0 and self.exponent > 0):
            raise ValueError("PowerLaw needs scale > 0 and exponent > 0")

    def __call__(self, eps: float) -> float:
        return (abs(eps) / self.scale) ** self.exponent

    def slope(self, eps: float) -> float:
        """|theta'(eps)| (infinite at 0 for exponent < 1)."""
        p, s = self.exponent, self.scale
        if eps == 0:
            return 0.0 if p > 1 else (1 / s if p == 1 else math.inf)
        return p / s * (abs(eps) / s) ** (p - 1)

    def to_json(self) -> dict:
        return {"kind": "power_law", "scale": self.scale, "exponent": self.exponent}


@dataclass(frozen=True)
class Polynomial:
    """theta(eps) = sum_k coefficients[k] * eps**k (empty or all zero: no texture)."""

    coefficients: tuple[float, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "coefficients", tuple(float(c) for c in self.coefficients))

    def __call__(self, eps: float) -> float:
        acc = 0.0
        for c in reversed(self.coefficients):  # Horner
            acc = acc * eps + c
        return acc

    def slope(self, eps: float) -> float:
        acc = 0.0
        for k in range(len(self.coefficients) - 1, 0, -1):
            acc = acc * eps + k * self.coefficients[k]
        return abs(acc)

    def to_json(self) -> dict:
        return {"kind": "polynomial", "coefficients": list(self.coefficients)}


@dataclass(frozen=True)
class CallableTexture:
    """Any python callable theta(eps) -> float.

    ``derivative`` (optional) is theta'(eps); ``max_slope`` (optional) a global bound on
    |theta'| (then used for every panel).  Without either, |theta'| is estimated by a central
    finite difference with step ``1e-6 (1 + |eps|)`` (the adaptive quadrature absorbs a rough
    estimate; the panel rule only has to be about right).
    """

    func: Callable[[float], float]
    derivative: Callable[[float], float] | None = None
    max_slope: float | None = None

    def __call__(self, eps: float) -> float:
        return float(self.func(eps))

    def slope(self, eps: float) -> float:
        if self.max_slope is not None:
            return float(self.max_slope)
        if self.derivative is not None:
            return abs(float(self.derivative(eps)))
        h = 1e-6 * (1 + abs(eps))
        return abs(float(self.func(eps + h)) - float(self.func(eps - h))) / (2 * h)

    def to_json(self) -> dict:
        raise TypeError("a callable texture cannot be stored in JSON")


PAPER = PowerLaw(1.0, 2.0)
NO_TEXTURE = Polynomial(())


def as_texture(texture) -> PowerLaw | Polynomial | CallableTexture:
    """Accept a texture object, a JSON dict, None (= no texture) or a bare callable."""
    if texture is None:
        return NO_TEXTURE
    if isinstance(texture, PowerLaw | Polynomial | CallableTexture):
        return texture
    if isinstance(texture, dict):
        kind = texture["kind"]
        if kind == "power_law":
            return PowerLaw(float(texture["scale"]), float(texture["exponent"]))
        if kind == "polynomial":
            return Polynomial(tuple(texture["coefficients"]))
        raise ValueError(f"unknown texture kind {kind!r}")
    if callable(texture):
        return CallableTexture(texture)
    raise TypeError(f"not a texture: {texture!r}")


# --------------------------------------------------------------------------------------------
# Model ingredients
# --------------------------------------------------------------------------------------------
def dimension(S) -> int:
    """d = 2S + 1 for a positive half-integer S."""
    d2 = 2 * float(S)
    if d2 <= 0 or abs(d2 - round(d2)) > 1e-12:
        raise ValueError(f"S must be a positive half-integer, got {S}")
    return int(round(d2)) + 1


@functools.cache
def _spin_operators(d: int) -> np.ndarray:
    s = (d - 1) / 2
    m = s - np.arange(d)  # m = S, S-1, ..., -S
    splus = np.zeros((d, d), dtype=complex)
    for k in range(1, d):  # S^+ |m_k> = sqrt(S(S+1) - m_k (m_k + 1)) |m_{k-1}>
        splus[k - 1, k] = math.sqrt(s * (s + 1) - m[k] * (m[k] + 1))
    sminus = splus.conj().T
    ops = np.array([(splus + sminus) / 2, (splus - sminus) / 2j, np.diag(m).astype(complex)])
    ops.setflags(write=False)
    return ops


def spin_operators(S) -> np.ndarray:
    """(S^x, S^y, S^z), shape (3, d, d), basis m = S, S-1, ..., -S."""
    return _spin_operators(dimension(S)).copy()


def coupling_tensor(J) -> np.ndarray:
    """Real 3x3 exchange tensor J[i, j] (impurity i, electron j); a 3-vector means diag(J)."""
    j = np.asarray(J, dtype=float)
    if j.shape == (3,):
        return np.diag(j)
    if j.shape != (3, 3):
        raise ValueError(f"J must be 3x3 (or a 3-vector for diag), got shape {j.shape}")
    return j


def rotation(theta: float) -> np.ndarray:
    """B = cos(theta) 1 + i sin(theta) sigma_y (chiral space, 0 = R, 1 = L)."""
    return math.cos(theta) * ID2 + 1j * math.sin(theta) * SY


def chiral_matrices(theta: float) -> np.ndarray:
    """R_j = B^dagger sigma_j B, shape (3, 2, 2)."""
    b = rotation(theta)
    return b.conj().T @ PAULI @ b


def coupling_operators(S, J, eps: float, texture=PAPER) -> np.ndarray:
    """Literal G_ab(eps) = sum_ij J_ij S^i R_j(eps)[a, b]; shape (2, 2, d, d)."""
    r = chiral_matrices(as_texture(texture)(eps))
    return np.einsum("ij,jab,ixy->abxy", coupling_tensor(J), r, spin_operators(S))


def fermi(x, T: float):
    """f(x) = 1/(exp(x/T) + 1) (vectorised, no overflow; 1 - f(x) = f(-x) exactly)."""
    return expit(-np.asarray(x, dtype=float) / T)


def windows(eps: float, T: float, V: float, mu0: float = 0.0) -> np.ndarray:
    """W[a, b] = f_a (1 - f_b), f_R = f(eps - mu0 - V/2), f_L = f(eps - mu0 + V/2)."""
    x = np.array([eps - mu0 - V / 2, eps - mu0 + V / 2])
    return np.outer(fermi(x, T), fermi(-x, T))


def windows_dV(eps: float, T: float, V: float, mu0: float = 0.0) -> np.ndarray:
    """dW[a, b]/dV at fixed eps: d f_R/dV = f_R (1-f_R)/(2T), d f_L/dV = -f_L (1-f_L)/(2T)."""
    x = np.array([eps - mu0 - V / 2, eps - mu0 + V / 2])
    f, fbar = fermi(x, T), fermi(-x, T)
    df = np.array([1.0, -1.0]) * f * fbar / (2 * T)
    return np.outer(df, fbar) - np.outer(f, df)


def dissipator_and_current(G: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Literal integrand at one energy: superoperator L(eps) (d^2 x d^2) and M(eps) (d x d).

    L(eps) = -sum_ab W_ab [ {G_ab G_ba, .} - 2 G_ba . G_ab ],
    M(eps) = 2 (W_LR G_LR G_RL - W_RL G_RL G_LR).
    """
    d = G.shape[-1]
    eye = np.eye(d)
    sup = np.zeros((d * d, d * d), dtype=complex)
    for a in (R, L):
        for b in (R, L):
            gg = G[a, b] @ G[b, a]
            term = np.kron(gg, eye) + np.kron(eye, gg.T) - 2 * np.kron(G[b, a], G[a, b].T)
            sup -= W[a, b] * term
    cur = 2 * (W[L, R] * G[L, R] @ G[R, L] - W[R, L] * G[R, L] @ G[L, R])
    return sup, cur


@functools.cache
def _superoperator_basis(d: int) -> np.ndarray:
    """A[i, k] = superoperator of rho -> {S^i S^k, rho} - 2 S^k rho S^i (row-major vec)."""
    sp = _spin_operators(d)
    eye = np.eye(d)
    basis = np.zeros((3, 3, d * d, d * d), dtype=complex)
    for i in range(3):
        for k in range(3):
            ss = sp[i] @ sp[k]
            basis[i, k] = np.kron(ss, eye) + np.kron(eye, ss.T) - 2 * np.kron(sp[k], sp[i].T)
    basis.setflags(write=False)
    return basis


def assemble(S, kern: np.ndarray, ckern: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integrated kernels (K, C) -> superoperator L = -sum K_ik A_ik, M = sum C_ik S^i S^k."""
    d = dimension(S)
    sp = _spin_operators(d)
    sup = -np.einsum("ik,ikpq->pq", kern, _superoperator_basis(d))
    cur = np.einsum("ik,ixy,kyz->xz", ckern, sp, sp)
    return sup, cur


def pair_products(Jt: np.ndarray, theta: float) -> np.ndarray:
    """P[ab, i, k] = c[a, b, i] c[b, a, k] with c[a, b, i] = sum_j J_ij R_j[a, b] (ab: PAIRS)."""
    c = np.einsum("ij,jab->abi", Jt, chiral_matrices(theta))
    first, second = c[_PA, _PB], c[_PB, _PA]  # (4, 3): c[a, b, :] and c[b, a, :]
    return first[:, :, None] * second[:, None, :]


def kernels_at(Jt: np.ndarray, theta: float, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3x3 kernels K, C at one energy for one window matrix W (2x2)."""
    p = pair_products(Jt, theta)
    w = np.array([W[a, b] for a, b in PAIRS])
    return np.einsum("n,nik->ik", w, p), 2 * (w[2] * p[2] - w[1] * p[1])


# --------------------------------------------------------------------------------------------
# Quadrature
# --------------------------------------------------------------------------------------------
def integration_range(T: float, vmax: float, mu0: float, settings: dict) -> tuple[float, float]:
    half = abs(vmax) / 2 + settings["cutoff_T"] * T
    return mu0 - half, mu0 + half


def _panel_width(x: float, direction: int, T: float, tex, s: dict) -> float:
    """Width of the next panel starting at x going in ``direction`` (+1 / -1)."""
    w = s["panel_T"] * T
    wmin = s["panel_min_T"] * T
    for _ in range(50):
        xs = x + direction * w * np.linspace(0.0, 1.0, 5)
        slope = max(tex.slope(float(xi)) for xi in xs)
        wosc = s["panel_period"] * 2 * math.pi / (4 * slope) if slope > 0 else math.inf
        if wosc >= w * (1 - 1e-12) or w <= wmin:
            return max(w, wmin)
        w = max(wosc, wmin)
    return w


def panel_points(
    T: float, V: float, mu0: float, texture, settings: dict | None = None, vmax=None, bounds=None
) -> tuple[float, float, np.ndarray]:
    """Integration range (lo, hi) and interior breakpoints.

    Panels are laid out walking outward from 0 (clipped into the range): width <= panel_T T
    and <= panel_period * (local period of cos(4 theta)).  Breakpoints 0 and mu0 +- V/2 are
    always kept; generic panel points closer than 1e-3 T to them are dropped (no slivers).
    ``bounds`` (lo, hi) replaces the range (the central piece of the contour method).
    """
    s = SETTINGS if settings is None else settings
    tex = as_texture(texture)
    if bounds is None:
        lo, hi = integration_range(T, abs(V) if vmax is None else vmax, mu0, s)
    else:
        lo, hi = bounds
    start = min(max(0.0, lo), hi)
    pts = [start]
    for direction, end in ((1, hi), (-1, lo)):
        x = start
        while True:
            x = x + direction * _panel_width(x, direction, T, tex, s)
            if (x - end) * direction >= 0:
                break
            pts.append(x)
            if len(pts) > s["max_panels"]:
                raise ValueError(f"more than {s['max_panels']} panels (T={T}, texture={tex})")
    special = [p for p in (0.0, mu0 + V / 2, mu0 - V / 2) if lo < p < hi]
    keep = [p for p in pts if all(abs(p - q) > 1e-3 * T for q in special)]
    return lo, hi, np.unique(np.array(keep + special))


def half_difference_fermi(x, delta: float, T: float):
    """(f(x - delta) - f(x + delta)) / 2 without cancellation (vectorised in x).

    Equals sinh(delta/T) / (2 (cosh(x/T) + cosh(delta/T))), written with exp(-|x|/T) so that
    it cannot overflow.  Used for the finite-difference windows W(V + h) - W(V - h).
    """
    e = np.exp(-np.abs(np.asarray(x, dtype=float)) / T)
    u = delta / T
    return math.sinh(u) * e / (1 + e * e + 2 * math.cosh(u) * e)


def integrate_kernels(
    J,
    T: float,
    V: float,
    mu0: float = 0.0,
    texture=PAPER,
    *,
    hs=(),
    derivative: bool = False,
    settings: dict | None = None,
    bounds=None,
) -> dict:
    """Energy integrals of the 3x3 kernels (K, C) at bias V and around it, in one quad_vec call.

    Returns dict with
      K, C        (3,3)       kernels at V;
      Kbar, Cbar  (nh,3,3)    kernels of the mean window (W(V+h) + W(V-h)) / 2, h in ``hs``;
      Kdel, Cdel  (nh,3,3)    kernels of the half-difference (W(V+h) - W(V-h)) / 2, computed
                              without cancellation (:func:`half_difference_fermi`);
      dK, dC      (3,3)       kernels of dW/dV at V (if ``derivative``);
      err, panels, evals      quad_vec error estimate, number of initial panels, evaluations.
    The kernels at V +- h are Kbar +- Kdel.  Keeping the difference part separate (and adding in
    mpmath) means the float64 round-off of the quadrature enters I(V+h) and I(V-h) almost
    identically and cancels in the central difference instead of being amplified by 1/h.
    All parts share the nodes; the panels are placed for V, the range covers |V| + max(hs)
    (or is ``bounds`` = (lo, hi): the real-axis piece of :func:`integrate_kernels_contour`).
    """
    s = SETTINGS if settings is None else settings
    if T <= 0:
        raise ValueError("T must be positive (T = 0 is out of scope)")
    tex = as_texture(texture)
    Jt = coupling_tensor(J)
    hs = [float(h) for h in hs]
    nh = len(hs)
    vmax = abs(V) + (max(hs) if hs else 0.0)
    lo, hi, pts = panel_points(T, V, mu0, tex, s, vmax=vmax, bounds=bounds)
    half = np.array(hs) / 2
    sign = np.array([1.0, -1.0])  # d mu_R / dV = +1/2, d mu_L / dV = -1/2
    # half_difference_fermi, vectorised over the steps: sinh(u) e / (1 + e^2 + 2 cosh(u) e)
    sh, ch = np.sinh(half / T)[:, None], np.cosh(half / T)[:, None]

    def func(eps):
        p = pair_products(Jt, tex(eps)).reshape(4, 9)
        x = np.array([eps - mu0 - V / 2, eps - mu0 + V / 2])  # x_R, x_L
        f, fb = fermi(x, T), fermi(-x, T)
        rows = [np.outer(f, fb).reshape(1, 4)]  # windows, columns RR RL LR LL
        if nh:
            # x_a(V +- h) = x_a -+ sign_a h/2
            xp = x[None, :] - sign[None, :] * half[:, None]  # (nh, 2) at V + h
            xm = x[None, :] + sign[None, :] * half[:, None]  # (nh, 2) at V - h
            fp, fbp, fm, fbm = fermi(xp, T), fermi(-xp, T), fermi(xm, T), fermi(-xm, T)
            wbar = (fp[:, :, None] * fbp[:, None, :] + fm[:, :, None] * fbm[:, None, :]) / 2
            # (f_a(V+h) - f_a(V-h)) / 2 = sign_a * half_difference_fermi(x_a, h/2)
            e = np.exp(-np.abs(x) / T)[None, :]
            df = sign[None, :] * sh * e / (1 + e * e + 2 * ch * e)
            # W+ - W- = (f+_a - f-_a) fbar+_b + f-_a (fbar+_b - fbar-_b), fbar+ - fbar- = -(f+ - f-)
            wdel = df[:, :, None] * fbp[:, None, :] - fm[:, :, None] * df[:, None, :]
            rows += [wbar.reshape(nh, 4), wdel.reshape(nh, 4)]
        if derivative:
            dfv = sign * f * fb / (2 * T)  # d f_a / dV
            rows.append((np.outer(dfv, fb) - np.outer(f, dfv)).reshape(1, 4))
        w = np.concatenate(rows)
        kern = w @ p
        ckern = 2 * (w[:, 2:3] * p[2] - w[:, 1:2] * p[1])
        return np.concatenate([kern.ravel(), ckern.ravel()]).view(float)

    res, err, info = quad_vec(
        func,
        lo,
        hi,
        epsabs=0.0,
        epsrel=s["epsrel"],
        norm="max",
        points=pts,
        limit=s["limit"] + len(pts),
        full_output=True,
    )
    # status 2 ("rounding error") only says the tolerance is at the integrand's round-off level
    # (expected and harmless); 1 (subdivision limit) is reported, 3 (non-finite) raises.
    if info.status == 3:
        raise FloatingPointError(f"quad_vec: {info.message} (T={T}, V={V})")
    if info.status == 1:
        warnings.warn(f"quad_vec: {info.message} (T={T}, V={V}, err={err})", stacklevel=2)
    z = res.view(complex).reshape(2, -1, 3, 3)  # (K or C, window row, 3, 3)
    out = {"err": float(err), "panels": len(pts) + 1, "evals": int(info.neval)}
    out["K"], out["C"] = z[0, 0], z[1, 0]
    if nh:
        out["Kbar"], out["Cbar"] = z[0, 1 : 1 + nh], z[1, 1 : 1 + nh]
        out["Kdel"], out["Cdel"] = z[0, 1 + nh : 1 + 2 * nh], z[1, 1 + nh : 1 + 2 * nh]
    if derivative:
        out["dK"], out["dC"] = z[0, -1], z[1, -1]
    return out


# --------------------------------------------------------------------------------------------
# Contour method (power laws): real axis between the Fermi edges, rays into the complex plane
# --------------------------------------------------------------------------------------------
#: Settings of :func:`integrate_kernels_contour` on top of SETTINGS (the real-axis piece).
CONTOUR_SETTINGS = dict(
    SETTINGS,
    ray_start_T=3.0,  # rays start ray_start_T * T beyond the outermost Fermi edge (and 0)
    ray_angle=0.5,  # ray angle alpha = ray_angle * pi / p (p the exponent), at most pi/4
    ray_cutoff_T=45.0,  # ray length: the Fermi factor decays by exp(-ray_cutoff_T) along it
)
FREQUENCIES = (-4, -2, 0, 2, 4)  # P(theta) = sum_k a_k exp(i k theta)


def fourier_pair_products(Jt: np.ndarray) -> dict[int, np.ndarray]:
    """a_k with pair_products(Jt, theta) = sum_k a_k exp(i k theta), k in FREQUENCIES.

    R_j(theta) holds cos(2 theta), sin(2 theta) and constants, so the products c_ab c_ba^T are
    trigonometric polynomials with frequencies 0, +-2, +-4 in theta. The a_k (shape (4, 3, 3))
    are a 16-point discrete Fourier transform (exact for degree < 8); the other frequencies
    must vanish to round-off (asserted).
    """
    n = 16
    th = 2 * np.pi * np.arange(n) / n
    prods = np.array([pair_products(Jt, float(t)) for t in th])
    coef = {k: np.einsum("m,m...->...", np.exp(-1j * k * th), prods) / n for k in range(-7, 9)}
    big = max(float(np.abs(c).max()) for c in coef.values())
    rest = max(float(np.abs(coef[k]).max()) for k in coef if k not in FREQUENCIES)
    if rest > 1e-14 * max(big, 1e-300):
        raise AssertionError(f"pair products not a degree-4 even trig polynomial ({rest})")
    return {k: coef[k] for k in FREQUENCIES}


def contour_bounds(T: float, V: float, mu0: float, vmax: float, settings: dict):
    """Ends (A, B) of the real-axis piece: ray_start_T * T beyond 0 and the outermost edges."""
    c = settings["ray_start_T"] * T
    lo = min(0.0, mu0 - abs(vmax) / 2) - c
    hi = max(0.0, mu0 + abs(vmax) / 2) + c
    return lo, hi


def ray_angle(tex: PowerLaw, settings: dict) -> float:
    """alpha = ray_angle * pi / p, capped at pi / 4 (so that cos(alpha) >= 0.7)."""
    return min(settings["ray_angle"] * math.pi / tex.exponent, math.pi / 4)


def _complex_rows(eps, T, V, mu0, half, sh, ch, side, derivative):
    """Window rows (as in integrate_kernels) at complex eps on a ray of side +1 / -1.

    f(x) = 1 / (exp(x/T) + 1) and 1 - f(x) = f(-x) continue analytically; on the right ray
    Re x >= ray_start_T * T > 0, on the left Re x <= -ray_start_T * T, so no Fermi pole lies
    on or between the ray and the real axis.  The half-difference uses exp(-side x / T), the
    analytic continuation of exp(-|x| / T) on that side.
    """
    sign = np.array([1.0, -1.0])
    x = np.array([eps - mu0 - V / 2, eps - mu0 + V / 2])

    def f(y):
        return 1 / (np.exp(y / T) + 1)

    fx, fbx = f(x), f(-x)
    rows = [np.outer(fx, fbx).reshape(1, 4)]
    if len(half):
        xp = x[None, :] - sign[None, :] * half[:, None]
        xm = x[None, :] + sign[None, :] * half[:, None]
        fp, fbp, fm, fbm = f(xp), f(-xp), f(xm), f(-xm)
        wbar = (fp[:, :, None] * fbp[:, None, :] + fm[:, :, None] * fbm[:, None, :]) / 2
        e = np.exp(-side * x / T)[None, :]
        df = sign[None, :] * sh * e / (1 + e * e + 2 * ch * e)
        wdel = df[:, :, None] * fbp[:, None, :] - fm[:, :, None] * df[:, None, :]
        rows += [wbar.reshape(len(half), 4), wdel.reshape(len(half), 4)]
    if derivative:
        dfv = sign * fx * fbx / (2 * T)
        rows.append((np.outer(dfv, fbx) - np.outer(fx, dfv)).reshape(1, 4))
    return np.concatenate(rows)


def integrate_ray(
    coef: dict, tex: PowerLaw, start: float, side: int, direction: int, T, V, mu0, hs, derivative, s
):
    """int over the tail beyond ``start`` (side +1: [start, inf), -1: (-inf, start]) of the
    components a_k exp(i k theta) with sign(k) = direction (k = 0 goes with direction +1).

    Ray eps = start + side t omega, omega = exp(i direction alpha), t in [0, t_max],
    t_max = ray_cutoff_T T / cos(alpha); u = side eps = |start| + t omega has 0 <= arg u <=
    alpha <= pi / (2 p), so Im theta(u) = |u/s|^p sin(p arg u) has the sign of ``direction`` and
    every exp(i k theta) decays (or stays bounded) on the ray and on the arc joining it to the
    real axis, where the Fermi factor vanishes; the integrand is analytic in between (theta on
    Re u > 0, the Fermi poles at Re eps = mu0 +- V/2 lie on the other side of ``start``).
    Returns (vector of the same layout as integrate_kernels' integrand, error, evaluations).
    """
    alpha = ray_angle(tex, s)
    omega = complex(math.cos(alpha), direction * math.sin(alpha))
    ks = [k for k in FREQUENCIES if (k >= 0) == (direction > 0)]
    amat = np.array([coef[k].reshape(4, 9) for k in ks])  # (nk, 4, 9)
    kvec = np.array(ks, dtype=float)
    half = np.array(hs, dtype=float) / 2
    sh, ch = np.sinh(half / T)[:, None], np.cosh(half / T)[:, None]
    p, scale = tex.exponent, tex.scale

    def func(t):  # integrand times d eps / dt = omega (orientation: see the docstring)
        u = abs(start) + t * omega
        theta = (u / scale) ** p
        prods = np.einsum("k,kpq->pq", np.exp(1j * kvec * theta), amat)
        w = _complex_rows(side * u, T, V, mu0, half, sh, ch, side, derivative)
        kern = w @ prods
        ckern = 2 * (w[:, 2:3] * prods[2] - w[:, 1:2] * prods[1])
        return (omega * np.concatenate([kern.ravel(), ckern.ravel()])).view(float)

    t_max = s["ray_cutoff_T"] * T / math.cos(alpha)
    pts = [T * 2.0**j for j in range(-6, 8) if T * 2.0**j < t_max]
    res, err, info = quad_vec(
        func,
        0.0,
        t_max,
        epsabs=0.0,
        epsrel=s["epsrel"],
        norm="max",
        points=pts,
        limit=s["limit"],
        full_output=True,
    )
    if info.status == 3:
        raise FloatingPointError(f"quad_vec on a ray: {info.message}")
    if info.status == 1:
        warnings.warn(f"quad_vec on a ray: {info.message} (err={err})", stacklevel=2)
    return res, float(err), int(info.neval)


def integrate_kernels_contour(
    J,
    T: float,
    V: float,
    mu0: float = 0.0,
    texture=PAPER,
    *,
    hs=(),
    derivative: bool = False,
    settings: dict | None = None,
) -> dict:
    """The kernels of :func:`integrate_kernels`, with the tails on rays in the complex plane.

    Only for :class:`PowerLaw` textures (analytic on each side of eps = 0).  The real axis is
    integrated as in :func:`integrate_kernels` on [A, B] = [min(0, lowest edge) - c T,
    max(0, highest edge) + c T] (c = ray_start_T, edges mu0 +- (|V| + max hs)/2).  Beyond B and
    below A the integrand W_ab(eps) P_ab(theta(eps)) is split into its Fourier components in
    theta, P = sum_k a_k exp(i k theta) (:func:`fourier_pair_products`), and each tail of each
    group (k >= 0, k < 0) is integrated along a straight ray from B (A) tilted by +-alpha into
    the half plane where exp(i k theta) decays (:func:`integrate_ray`): the oscillations of
    cos(4 theta), ~1e6 on the real tail of (|eps|/0.5)^4 at T = 0.3, become a few.  Returns
    the same dict as :func:`integrate_kernels` (``panels`` counts the real-axis piece).
    """
    s = CONTOUR_SETTINGS if settings is None else settings
    tex = as_texture(texture)
    if not isinstance(tex, PowerLaw):
        raise TypeError("the contour method needs a PowerLaw texture")
    if T <= 0:
        raise ValueError("T must be positive (T = 0 is out of scope)")
    hs = [float(h) for h in hs]
    nh = len(hs)
    vmax = abs(V) + (max(hs) if hs else 0.0)
    lo, hi = contour_bounds(T, V, mu0, vmax, s)
    central = integrate_kernels(
        J, T, V, mu0, tex, hs=hs, derivative=derivative, settings=s, bounds=(lo, hi)
    )
    coef = fourier_pair_products(coupling_tensor(J))
    nrow = 1 + 2 * nh + (1 if derivative else 0)
    total = np.zeros((2, nrow, 3, 3), dtype=complex)
    total[0, 0], total[1, 0] = central["K"], central["C"]
    if nh:
        total[0, 1 : 1 + nh], total[1, 1 : 1 + nh] = central["Kbar"], central["Cbar"]
        total[0, 1 + nh : 1 + 2 * nh] = central["Kdel"]
        total[1, 1 + nh : 1 + 2 * nh] = central["Cdel"]
    if derivative:
        total[0, -1], total[1, -1] = central["dK"], central["dC"]
    err, evals = central["err"], central["evals"]
    for start, side in ((hi, 1), (lo, -1)):
        for direction in (1, -1):
            res, e, n = integrate_ray(
                coef, tex, start, side, direction, T, V, mu0, hs, derivative, s
            )
            total += res.view(complex).reshape(2, nrow, 3, 3)
            err, evals = err + e, evals + n
    out = {"err": err, "panels": central["panels"], "evals": evals, "bounds": (lo, hi)}
    out["K"], out["C"] = total[0, 0], total[1, 0]
    if nh:
        out["Kbar"], out["Cbar"] = total[0, 1 : 1 + nh], total[1, 1 : 1 + nh]
        out["Kdel"], out["Cdel"] = total[0, 1 + nh : 1 + 2 * nh], total[1, 1 + nh : 1 + 2 * nh]
    if derivative:
        out["dK"], out["dC"] = total[0, -1], total[1, -1]
    return out


# --------------------------------------------------------------------------------------------
# Stationary state and observables
# --------------------------------------------------------------------------------------------
def _mp_matrix(a) -> mp.matrix:
    """numpy array -> mpmath matrix (exact: every float64 is representable)."""
    return mp.matrix([[mp.mpc(complex(x)) for x in row] for row in np.atleast_2d(a)])


def _augmented(sup, scale: float, d: int) -> tuple[mp.matrix, mp.matrix]:
    """[L; s * vec(1)^T] and [0; s] in mpmath (s balances the rows; solution unchanged)."""
    n = d * d
    a = mp.matrix(n + 1, n)
    for i in range(n):
        for j in range(n):
            a[i, j] = sup[i, j]
    for m in range(d):
        a[n, d * m + m] = scale
    b = mp.matrix(n + 1, 1)
    b[n] = scale
    return a, b


def check_unique(sup: np.ndarray, null_tol: float = 1e-9) -> None:
    """Raise ValueError unless L has a one-dimensional null space (relative threshold)."""
    sv = np.linalg.svd(sup, compute_uv=False)
    if sv[0] == 0 or sv[-2] <= null_tol * sv[0]:
        raise ValueError(f"stationary state not unique: singular values of L = {sv}")


def stationary_state_mp(sup: np.ndarray, sup_mp: mp.matrix | None = None) -> mp.matrix:
    """Stationary rho (d x d mpmath matrix): QR least squares of [L; trace] vec = [0; 1].

    ``sup`` is the float64 superoperator; ``sup_mp`` (optional) the same L held exactly in
    mpmath (e.g. an exact sum Lbar + Ldel of float64 parts), else ``sup`` itself.  The solve is
    done in mpmath (MP_DPS digits); numpy's float64 lstsq on ``sup`` must agree to 1e-11.
    """
    check_unique(sup)
    n = sup.shape[0]
    d = math.isqrt(n)
    scale = float(np.abs(sup).max())
    a64 = np.vstack([sup, scale * np.eye(d).ravel()])
    b64 = np.zeros(n + 1, dtype=complex)
    b64[-1] = scale
    vec64, *_ = np.linalg.lstsq(a64, b64, rcond=None)
    with mp.workdps(MP_DPS):
        a, b = _augmented(_mp_matrix(sup) if sup_mp is None else sup_mp, scale, d)
        x, _ = mp.qr_solve(a, b)
        rho = mp.matrix([[x[d * m + k] for k in range(d)] for m in range(d)])
        herm_dev = float(mp.mnorm(rho - rho.H, 1))
        if herm_dev > 1e-10:
            raise ValueError(f"stationary rho not Hermitian (deviation {herm_dev})")
        rho = (rho + rho.H) / 2  # drop the round-off anti-Hermitian part
        for m in range(d):
            rho[m, m] = mp.mpc(mp.re(rho[m, m]))  # exactly real diagonal
    dev = max(abs(complex(rho[m, k]) - vec64[d * m + k]) for m in range(d) for k in range(d))
    if dev > 1e-11:
        raise ValueError(f"mpmath and numpy least-squares disagree by {dev}")
    return rho


def _mp_trace_product(m, rho: mp.matrix) -> mp.mpf:
    """Re Tr[M rho] in mpmath (M numpy or mpmath)."""
    d = rho.rows
    with mp.workdps(MP_DPS):
        return mp.re(mp.fsum(mp.mpc(m[i, j]) * rho[j, i] for i in range(d) for j in range(d)))


def _to_numpy(rho: mp.matrix) -> np.ndarray:
    return np.array([[complex(rho[i, j]) for j in range(rho.cols)] for i in range(rho.rows)])


def spin(S, rho: np.ndarray) -> np.ndarray:
    """(<S^x>, <S^y>, <S^z>) = Tr(S^i rho)."""
    return np.array([np.trace(op @ rho).real for op in _spin_operators(dimension(S))])


def _observables(S, kern, ckern) -> tuple[float, mp.matrix]:
    sup, cur = assemble(S, kern, ckern)
    rho = stationary_state_mp(sup)
    return float(_mp_trace_product(cur, rho)), rho


def _shifted_currents(S, kbar, cbar, kdel, cdel) -> tuple[float, float, mp.mpf]:
    """I(V + h), I(V - h) and their mpmath difference from the mean and half-difference kernels."""
    supb, curb = assemble(S, kbar, cbar)
    supd, curd = assemble(S, kdel, cdel)
    out = []
    with mp.workdps(MP_DPS):
        lb, ld, mb, md = (_mp_matrix(x) for x in (supb, supd, curb, curd))
        for sg in (1, -1):
            rho = stationary_state_mp(supb + sg * supd, lb + sg * ld)
            out.append(_mp_trace_product(mb + sg * md, rho))
        return float(out[0]), float(out[1]), out[0] - out[1]


def current_and_state(
    S, J, T: float, V: float, mu0: float = 0.0, texture=PAPER, settings: dict | None = None
) -> tuple[float, np.ndarray]:
    """Current I (units e vF k0 / h) and the stationary rho (d x d numpy)."""
    k = integrate_kernels(J, T, V, mu0, texture, settings=settings)
    cur, rho = _observables(S, k["K"], k["C"])
    return cur, _to_numpy(rho)


def current(S, J, T: float, V: float, mu0: float = 0.0, texture=PAPER, settings=None) -> float:
    return current_and_state(S, J, T, V, mu0, texture, settings)[0]


def richardson(values, hs) -> tuple[float, float, int]:
    """Richardson extrapolation of D(h) = G + a1 h^2 + a2 h^4 + ... (h_k = h0 / 2^k).

    Best estimate: the diagonal entry T[k, k] with the smallest
    max(|T[k,k] - T[k,k-1]|, |T[k,k] - T[k-1,k-1]|); that difference is the error estimate.
    """
    n = len(values)
    tab = np.full((n, n), np.nan)
    tab[:, 0] = values
    for k in range(1, n):
        ratio = (hs[k - 1] / hs[k]) ** 2
        for m in range(1, k + 1):
            tab[k, m] = tab[k, m - 1] + (tab[k, m - 1] - tab[k - 1, m - 1]) / (ratio**m - 1)
    best, best_err, best_k = tab[0, 0], math.inf, 0
    for k in range(1, n):
        e = max(abs(tab[k, k] - tab[k, k - 1]), abs(tab[k, k] - tab[k - 1, k - 1]))
        if e < best_err:
            best, best_err, best_k = tab[k, k], e, k
    return float(best), float(best_err), best_k


def noise_scale(S, J, T: float, V: float) -> float:
    """Size of the cancelling terms in I: S(S+1) * sum_ij J_ij^2 * max(T, |V|)."""
    s = (dimension(S) - 1) / 2
    return s * (s + 1) * float(np.sum(np.square(coupling_tensor(J)))) * max(T, abs(V))


def conductance_analytic_from(S, k: dict, rho: mp.matrix) -> float:
    """dI/dV = Tr[M' rho] + Tr[M rho'] with L rho' = -L' rho, Tr rho' = 0 (kernels k)."""
    sup, cmat = assemble(S, k["K"], k["C"])
    dsup, dcmat = assemble(S, k["dK"], k["dC"])
    d = rho.rows
    with mp.workdps(MP_DPS):
        a, _ = _augmented(_mp_matrix(sup), float(np.abs(sup).max()), d)
        vec = mp.matrix([rho[m, n] for m in range(d) for n in range(d)])
        rhs = -(_mp_matrix(dsup) * vec)
        rhs = mp.matrix([rhs[i] for i in range(d * d)] + [0])
        x, _ = mp.qr_solve(a, rhs)
        drho = mp.matrix([[x[d * m + n] for n in range(d)] for m in range(d)])
        return float(_mp_trace_product(dcmat, rho) + _mp_trace_product(cmat, drho))


def point(
    S,
    J,
    T: float,
    V: float,
    mu0: float = 0.0,
    texture=PAPER,
    settings: dict | None = None,
    method: str = "real_axis",
) -> dict:
    """All reference observables at one parameter point.

    Returns dict(current, conductance (finite differences + Richardson), conductance_err,
    conductance_analytic (cross-check), spin (3,), rho (d, d) complex, panels, evals,
    quad_err).  One quadrature covers V, the windows at V +- h_k (mean and cancellation-free
    half-difference) and dW/dV at V.

    ``conductance_err`` is the larger of the Richardson error estimate and a round-off floor
    ``1e-14 * S(S+1) sum_ij J_ij^2`` (the natural conductance scale; with the differenced
    windows the float64 noise of D(h) no longer grows like 1/h).
    """
    if method not in ("real_axis", "contour"):
        raise ValueError(f"unknown method {method!r}")
    contour = method == "contour"
    s = (CONTOUR_SETTINGS if contour else SETTINGS) if settings is None else settings
    if T <= 0:
        raise ValueError("T must be positive (T = 0 is out of scope)")
    h0 = s["h0_T"] * T
    hs = [h0 / 2**k for k in range(s["richardson_levels"])]
    integrate = integrate_kernels_contour if contour else integrate_kernels
    k = integrate(J, T, V, mu0, texture, hs=hs, derivative=True, settings=s)
    cur, rho = _observables(S, k["K"], k["C"])
    diffs = []
    for n, h in enumerate(hs):
        *_, delta = _shifted_currents(S, k["Kbar"][n], k["Cbar"][n], k["Kdel"][n], k["Cdel"][n])
        diffs.append(float(delta / (2 * h)))
    g, gerr, kbest = richardson(diffs, hs)
    gerr = max(gerr, 1e-14 * noise_scale(S, J, T, V) / max(T, abs(V)))
    rho_np = _to_numpy(rho)
    return {
        "current": cur,
        "conductance": g,
        "conductance_err": gerr,
        "conductance_analytic": conductance_analytic_from(S, k, rho),
        "spin": spin(S, rho_np),
        "rho": rho_np,
        "panels": k["panels"],
        "evals": k["evals"],
        "quad_err": k["err"],
    }


def points_json(header: dict, points: list[dict], indent: int | None = None) -> str:
    """A reference table's text as the tests read it (tests/data/*.json): the header, then one
    point per line; json writes floats with repr(), which round-trips exactly."""
    text = (
        '{"header": '
        + json.dumps(header, indent=indent)
        + ',\n"points": [\n'
        + ",\n".join(json.dumps(q) for q in points)
        + "\n]}\n"
    )
    json.loads(text)  # valid JSON
    return text
