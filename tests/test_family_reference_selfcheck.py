"""Self-checks of the independent model-family reference tests/family_reference.py (fast, < 60 s).

They validate the oracle itself: reduction to the paper's special case (tests/reference.py, an
independent implementation), spin algebra, exact symmetries and closed forms, the literal
Eq. 10 / 12 integrand, and that tests/data/family_points.json was produced by this code.
Nothing from jaxmi is imported.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import family_reference as fr  # noqa: E402
import reference as ref  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "family_points.json"
SPINS = (0.5, 1.0, 1.5)


def _stored() -> list[dict]:
    return json.loads(DATA.read_text())["points"]


def _rho(p: dict) -> np.ndarray:
    return np.array([[complex(re, im) for re, im in row] for row in p["rho"]])


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


# --------------------------------------------------------------------------------------------
# Spin operators: su(2) algebra and the Casimir.
# Reference: exact identities; S = 1/2 must be sigma / 2. Tolerance 1e-14 absolute: the matrix
# entries are O(S) and built from square roots, so only round-off remains.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("S", SPINS)
def test_spin_operators(S):
    sx, sy, sz = fr.spin_operators(S)
    d = fr.dimension(S)
    assert sx.shape == (d, d)
    for a, b, c in ((sx, sy, sz), (sy, sz, sx), (sz, sx, sy)):
        assert np.allclose(a @ b - b @ a, 1j * c, rtol=0, atol=1e-14)
    assert np.allclose(sx @ sx + sy @ sy + sz @ sz, S * (S + 1) * np.eye(d), rtol=0, atol=1e-14)
    for op in (sx, sy, sz):
        assert np.allclose(op, op.conj().T, rtol=0, atol=0)
    assert np.allclose(np.diag(sz).real, S - np.arange(d))  # basis m = S, S-1, ..., -S
    if S == 0.5:
        assert np.allclose(np.array([sx, sy, sz]), fr.PAULI / 2, rtol=0, atol=1e-15)


# --------------------------------------------------------------------------------------------
# Reduction to the paper's special case: S = 1/2, diagonal J, mu0 = 0, theta = eps^2 must agree
# with the independent tests/reference.py.
# Tolerances: current rtol 1e-10 (both are accurate to ~1e-14 relative at these non-cancelling
# points; the quadrature grids differ); rho 1e-13 absolute (|rho_mn| <= 1); conductance rtol
# 1e-9 (reference.py's finite differences are good to ~1e-12 here, the family's to ~1e-14).
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("J", "T", "V"), [((0.3, -0.5, 0.7), 0.1, 0.15), ((0.9, 0.2, -0.1), 0.05, -0.3)]
)
def test_reduction_to_paper_reference(J, T, V):
    cur, rho = fr.current_and_state(0.5, J, T, V, 0.0, fr.PowerLaw(1.0, 2.0))
    cur_ref, rho_ref, _ = ref.current_and_state(J, T, V)
    assert cur == pytest.approx(cur_ref, rel=1e-10)
    assert np.allclose(rho, rho_ref, rtol=0, atol=1e-13)
    # the diagonal-J shortcut (3-vector) and the explicit 3x3 tensor are the same model
    assert fr.current(0.5, np.diag(J), T, V) == cur


def test_reduction_conductance_to_paper_reference():
    J, T, V = (0.3, -0.5, 0.7), 0.1, 0.15
    r = fr.point(0.5, J, T, V)
    assert r["conductance"] == pytest.approx(ref.conductance_fd(J, T, V)[0], rel=1e-9)
    assert r["conductance"] == pytest.approx(ref.conductance_analytic(J, T, V), rel=1e-9)


# --------------------------------------------------------------------------------------------
# Normalisation (task statement): S = 1/2, no texture, J = diag(Jx, 0, Jx): I = -Jx^2 V / 2 and
# G = -Jx^2 / 2 at any T and mu0 (without texture G_ab does not depend on eps and
# int W_LR - W_RL = V whatever mu0). Tolerance rtol 1e-12 (no cancellation; measured ~1e-15).
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("jx", "T", "V", "mu0"), [(0.3, 0.05, 0.1, 0.0), (-0.6, 0.2, -0.7, 0.6)])
def test_normalisation(jx, T, V, mu0):
    r = fr.point(0.5, [[jx, 0, 0], [0, 0, 0], [0, 0, jx]], T, V, mu0, fr.NO_TEXTURE)
    assert r["current"] == pytest.approx(-(jx**2) * V / 2, rel=1e-12)
    assert r["conductance"] == pytest.approx(-(jx**2) / 2, rel=1e-12)
    assert r["conductance_analytic"] == pytest.approx(-(jx**2) / 2, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Axial symmetry: no texture and J = diag(a, a, c) conserve S^z + sigma^z/2, so the stationary
# populations carry no net spin flux and the current vanishes, for S = 1 at V != 0 and mu0 != 0.
# Tolerance 1e-14 * noise_scale (noise_scale = S(S+1) |J|^2 max(T,|V|), the size of the
# cancelling terms in I; the measured residue is ~1e-17 of it).
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "c", "T", "V", "mu0"), [(0.4, -0.3, 0.1, 0.35, 0.2), (0.25, 0.5, 0.05, -0.2, -0.5)]
)
def test_axial_no_texture_current_vanishes(a, c, T, V, mu0):
    J = np.diag([a, a, c])
    cur = fr.current(1.0, J, T, V, mu0, fr.NO_TEXTURE)
    assert abs(cur) < 1e-14 * fr.noise_scale(1.0, J, T, V)
    # with the paper's texture the same coupling does carry a current (the test is not vacuous)
    assert abs(fr.current(1.0, J, T, V, mu0, fr.PAPER)) > 1e-3 * fr.noise_scale(1.0, J, T, V)


# --------------------------------------------------------------------------------------------
# The cheap bilinear integrand (3x3 kernels) equals the literal Eq. 10 / Eq. 12 integrand built
# from the d x d matrices G_ab(eps), and L is trace preserving; for S = 1, 3/2, general J,
# mu0 != 0 and all texture kinds. Tolerance 1e-14 absolute (entries O(S^2 |J|^2) <= ~3).
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("S", SPINS)
def test_literal_integrand_equals_bilinear(S):
    rng = np.random.default_rng(int(2 * S))
    textures = [fr.PAPER, fr.PowerLaw(0.8, 3.0), fr.Polynomial((0.0, 0.3, 0.8)), lambda e: 0.4 * e]
    d = fr.dimension(S)
    for tex in textures:
        J = rng.uniform(-0.6, 0.6, (3, 3))
        eps, T, V, mu0 = rng.uniform(-2, 2), rng.uniform(0.03, 0.4), rng.uniform(-1, 1), 0.3
        W = fr.windows(eps, T, V, mu0)
        sup, cur = fr.dissipator_and_current(fr.coupling_operators(S, J, eps, tex), W)
        theta = fr.as_texture(tex)(eps)
        sup2, cur2 = fr.assemble(S, *fr.kernels_at(J, theta, W))
        assert np.allclose(sup, sup2, rtol=0, atol=1e-14)
        assert np.allclose(cur, cur2, rtol=0, atol=1e-14)
        assert np.allclose(np.eye(d).ravel() @ sup, 0, rtol=0, atol=1e-14)  # d Tr rho / dt = 0
        # the windows obey W_ab = f_a (1 - f_b) with f_R = f(eps - mu0 - V/2), f_L = f(.. + V/2)
        # (1 - f(x) written as f(-x) to avoid cancellation in the expected value)
        xr, xl = (eps - mu0 - V / 2) / T, (eps - mu0 + V / 2) / T
        f = lambda y: 1 / (math.exp(y) + 1)  # noqa: E731
        assert W[0, 1] == pytest.approx(f(xr) * f(-xl), rel=1e-13)
        assert W[1, 0] == pytest.approx(f(xl) * f(-xr), rel=1e-13)


# --------------------------------------------------------------------------------------------
# The cancellation-free half-difference of the Fermi function used by the finite differences.
# Reference: mpmath at 50 digits. Tolerance rtol 1e-14 (closed form, no cancellation).
# --------------------------------------------------------------------------------------------
def test_half_difference_fermi():
    T = 0.07
    for x in (-3.0, -0.2, 0.0, 0.01, 1.5, 4.0):
        for h in (T, T / 256):
            got = fr.half_difference_fermi(x, h / 2, T)
            with mp.workdps(50):
                f = lambda y: 1 / (mp.exp(mp.mpf(y) / T) + 1)  # noqa: E731
                exact = (f(mp.mpf(x) - mp.mpf(h) / 2) - f(mp.mpf(x) + mp.mpf(h) / 2)) / 2
            assert float(got) == pytest.approx(float(exact), rel=1e-14)


# --------------------------------------------------------------------------------------------
# Exact covariances of the exchange-tensor convention H = sum_ij J_ij S^i sigma^j:
# (a) impurity index i: rotating the impurity spin (J -> O^T J, O in SO(3)) leaves I unchanged
#     and maps <S> -> O^T <S> (tests the spin operators as a representation and the i index);
# (b) electron index j: a constant texture shift theta -> theta + c equals J -> J Q with
#     B(c)^dagger sigma_j B(c) = sum_k Q_jk sigma_k (tests the j index and the chiral rotation).
# Tolerance rtol 1e-12 on I, 1e-13 absolute on <S> (different quadrature sums only; measured
# ~1e-15).
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("S", [1.0, 1.5])
def test_impurity_rotation_covariance(S):
    rng = np.random.default_rng(7)
    J = rng.uniform(-0.6, 0.6, (3, 3))
    O = _random_rotation(rng)  # noqa: E741
    args = (0.08, 0.2, 0.4, fr.Polynomial((0.0, 0.3, 0.8)))
    c1, rho1 = fr.current_and_state(S, J, *args)
    c2, rho2 = fr.current_and_state(S, O.T @ J, *args)
    assert c2 == pytest.approx(c1, rel=1e-12)
    assert np.allclose(fr.spin(S, rho2), O.T @ fr.spin(S, rho1), rtol=0, atol=1e-13)


def test_texture_shift_equals_electron_rotation():
    rng = np.random.default_rng(11)
    J, c = rng.uniform(-0.6, 0.6, (3, 3)), 0.37
    b = fr.rotation(c)
    Q = np.array(
        [
            [np.trace(fr.PAULI[k] @ b.conj().T @ fr.PAULI[j] @ b).real / 2 for k in range(3)]
            for j in range(3)
        ]
    )
    args = (0.06, -0.15, -0.3)
    c1, rho1 = fr.current_and_state(1.0, J, *args, fr.Polynomial((c, 0.3, 0.8)))
    c2, rho2 = fr.current_and_state(1.0, J @ Q, *args, fr.Polynomial((0.0, 0.3, 0.8)))
    assert c2 == pytest.approx(c1, rel=1e-12)
    assert np.allclose(rho1, rho2, rtol=0, atol=1e-13)


# --------------------------------------------------------------------------------------------
# Texture kinds: PowerLaw(1, 2), Polynomial(0, 0, 1) and the callable eps -> eps^2 are the same
# theta. The first two give bit-identical panels; the callable's panel rule uses a finite-
# difference theta' (slightly different panels), so rtol 1e-12 (measured ~1e-15).
# --------------------------------------------------------------------------------------------
def test_texture_kinds_agree():
    J = np.random.default_rng(3).uniform(-0.6, 0.6, (3, 3))
    args = (1.5, J, 0.05, 0.12, -0.45)
    c1 = fr.current(*args, fr.PowerLaw(1.0, 2.0))
    assert fr.current(*args, fr.Polynomial((0.0, 0.0, 1.0))) == pytest.approx(c1, rel=1e-12)
    assert fr.current(*args, lambda e: e * e) == pytest.approx(c1, rel=1e-12)
    for tex in (fr.PowerLaw(0.8, 3.0), fr.Polynomial((0.0, 0.3, 0.8))):
        assert fr.as_texture(tex.to_json()) == tex


# --------------------------------------------------------------------------------------------
# Panels: breakpoints at 0 and mu0 +- V/2, width <= 2T and <= a quarter period of cos(4 theta)
# (checked at both ends of every panel), range mu0 +- (|V|/2 + 45 T). Exact (a layout rule).
# --------------------------------------------------------------------------------------------
def test_panel_rule():
    T, V, mu0, tex = 0.1, 0.3, -0.35, fr.PowerLaw(0.8, 3.0)
    lo, hi, pts = fr.panel_points(T, V, mu0, tex)
    assert (lo, hi) == pytest.approx((mu0 - V / 2 - 45 * T, mu0 + V / 2 + 45 * T))
    for p in (0.0, mu0 + V / 2, mu0 - V / 2):
        assert np.any(pts == p)
    edges = np.concatenate([[lo], pts, [hi]])
    w = np.diff(edges)
    assert np.all(w > 0) and np.all(w <= 2 * T * (1 + 1e-12))
    slope = np.maximum([tex.slope(x) for x in edges[:-1]], [tex.slope(x) for x in edges[1:]])
    assert np.all(w <= math.pi / (8 * slope) * (1 + 1e-9))


# --------------------------------------------------------------------------------------------
# A degenerate coupling (only J_xx != 0 and no texture: every G_ab is proportional to S^x, so
# every diagonal state in the S^x eigenbasis is stationary) must be rejected with ValueError.
# --------------------------------------------------------------------------------------------
def test_degenerate_coupling_rejected():
    J = np.zeros((3, 3))
    J[0, 0] = 0.5
    with pytest.raises(ValueError, match="not unique"):
        fr.current(1.0, J, 0.05, 0.02, 0.1, fr.NO_TEXTURE)


# --------------------------------------------------------------------------------------------
# Stored table. (a) One stored point (the cheapest non-trivial one: V != 0, S > 1/2) recomputed
# live matches the JSON to 1e-10 relative (absolute floors: 1e-14 * noise_scale for I, 1e-14
# for spin and rho): the computation is deterministic, only BLAS/libm/scipy differences remain.
# --------------------------------------------------------------------------------------------
def test_stored_point_reproduced():
    pts = [p for p in _stored() if p["V"] != 0 and p["S"] > 0.5]
    p = min(pts, key=lambda q: q["timings"]["point_s"])
    r = fr.point(p["S"], p["J"], p["T"], p["V"], p["mu0"], fr.as_texture(p["texture"]))
    scale = fr.noise_scale(p["S"], p["J"], p["T"], p["V"])
    assert r["current"] == pytest.approx(p["current"], rel=1e-10, abs=1e-14 * scale)
    assert r["conductance"] == pytest.approx(p["conductance"], rel=1e-10)
    assert np.allclose(r["spin"], p["spin"], rtol=1e-10, atol=1e-14)
    assert np.allclose(r["rho"], _rho(p), rtol=1e-10, atol=1e-14)


# (b) Stored S = 3/2 states are physical: rho Hermitian (1e-15: symmetrised in mpmath, then
# rounded), unit trace (1e-14), positive semidefinite (eigenvalues >= -1e-14), and the stored
# spin equals Tr(S^i rho) (1e-14). Round-off tolerances on O(1) quantities.
def test_stored_spin_three_halves_rho_physical():
    pts = [p for p in _stored() if p["S"] == 1.5]
    assert len(pts) >= 6
    for p in pts:
        rho = _rho(p)
        assert rho.shape == (4, 4)
        assert np.allclose(rho, rho.conj().T, rtol=0, atol=1e-15)
        assert abs(np.trace(rho) - 1) < 1e-14
        assert np.linalg.eigvalsh(rho).min() > -1e-14
        assert np.allclose(fr.spin(1.5, rho), p["spin"], rtol=0, atol=1e-14)


# (c) At V = 0 all four windows coincide, L[1] = 0 and the stationary state is 1/d: stored
# V = 0 points have rho = 1/d, <S> = 0 and I = 0 (exact up to round-off, 1e-14). Also the
# table's composition (as promised in make_family_reference.py).
def test_stored_table_equilibrium_and_composition():
    pts = _stored()
    assert len(pts) >= 24
    for p in pts:
        if p["V"] == 0:
            d = fr.dimension(p["S"])
            assert np.allclose(_rho(p), np.eye(d) / d, rtol=0, atol=1e-14)
            assert np.allclose(p["spin"], 0, atol=1e-14) and abs(p["current"]) < 1e-14
    count = lambda f: sum(1 for p in pts if f(p))  # noqa: E731
    assert count(lambda p: p["S"] == 1.0) >= 6 and count(lambda p: p["S"] == 1.5) >= 6
    assert (
        count(
            lambda p: (
                p["S"] == 0.5 and np.count_nonzero(np.array(p["J"]) - np.diag(np.diag(p["J"])))
            )
        )
        >= 4
    )
    assert count(lambda p: abs(p["mu0"]) >= 0.3) >= 8 and count(lambda p: p["mu0"] == 0) >= 3
    assert (
        count(lambda p: p["texture"] != {"kind": "power_law", "scale": 1.0, "exponent": 2.0}) >= 4
    )
    assert all(0.03 <= p["T"] <= 0.4 and abs(p["V"]) <= 1 and abs(p["mu0"]) <= 0.8 for p in pts)
