"""Self-checks of the independent reference implementation tests/reference.py (fast, < 60 s).

These tests validate the oracle itself (closed forms, the paper's Eq. 14, structural properties,
and that tests/data/reference_points.json was produced by this code). They import nothing from
jaxmi.
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
import reference as ref  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "reference_points.json"


# --------------------------------------------------------------------------------------------
# (a) normalisation: no texture, Jy = 0, Jz = Jx  ->  I = -Jx^2 V / 2, G = -Jx^2 / 2 at any T.
# Reference: exact closed form (task statement / paper Fig. 2 green curve at T -> 0).
# Regime: texture=False, low and moderate T, V = 0 and V ~ T. Tolerance rtol 1e-9: the
# reference's FD conductance is accurate to ~1e-12 here (no cancellation), so 1e-9 is safe.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("jx", "T", "V"),
    [(0.3, 0.05, 0.1), pytest.param(-0.7, 0.2, 0.0, marks=pytest.mark.slow), (1.0, 0.02, -0.05)],
)
def test_normalisation_no_texture(jx, T, V):
    r = ref.point((jx, 0.0, jx), T, V, texture=False)
    assert r["conductance"] == pytest.approx(-(jx**2) / 2, rel=1e-9)
    if V != 0:
        assert r["current"] == pytest.approx(-(jx**2) * V / 2, rel=1e-9)
    else:
        assert abs(r["current"]) < 1e-15


# --------------------------------------------------------------------------------------------
# (b) texture-free general J: I = -V (Jx^2 - Jy^2)^2 / (2 (Jx^2 + Jy^2)), G = I / V.
# Reference: exact closed form (task statement; first term of the paper's Eq. 14).
# Regime: texture=False, generic anisotropic couplings incl. negative components, |V| ~ T and
# V = 6 T. Tolerance rtol 1e-9 (measured deviations ~1e-13).
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("J", "T", "V"),
    [
        ((0.3, -0.5, 0.7), 0.1, 0.15),
        pytest.param((0.9, 0.2, -0.1), 0.05, -0.3, marks=pytest.mark.slow),
        pytest.param((0.0, 0.6, 0.4), 0.03, 0.02, marks=pytest.mark.slow),
    ],
)
def test_general_coupling_no_texture(J, T, V):
    r = ref.point(J, T, V, texture=False)
    expected = ref.current_no_texture(J, V)
    assert r["current"] == pytest.approx(expected, rel=1e-9)
    assert r["conductance"] == pytest.approx(expected / V, rel=1e-9)


# --------------------------------------------------------------------------------------------
# (c) structure: rho Hermitian, unit trace, positive semidefinite; current odd in V; the cheap
# bilinear integrand equals the literal Eq. 10 / Eq. 12 integrand; L is trace preserving.
# Reference: exact identities (the V -> -V map is a pi rotation about y of the impurity spin).
# Tolerances: round-off level (1e-13 .. 1e-14 relative / absolute on O(1) objects).
# --------------------------------------------------------------------------------------------
def test_rho_physical_and_current_odd():
    J, T, V = (0.3, -0.5, 0.7), 0.1, 0.3
    ip, rho, _ = ref.current_and_state(J, T, V)
    im, rho_m, _ = ref.current_and_state(J, T, -V)
    for r in (rho, rho_m):
        assert np.allclose(r, r.conj().T, rtol=0, atol=1e-15)
        assert abs(np.trace(r) - 1) < 1e-14
        assert np.linalg.eigvalsh(r).min() > -1e-14
    assert im == pytest.approx(-ip, rel=1e-12)
    assert np.allclose(ref.spin(rho), ref.spin(rho) * [1, 0, 1], atol=1e-15)  # <S^y> = 0


def test_integrand_forms_agree_and_trace_preserving():
    rng = np.random.default_rng(1)
    for _ in range(5):
        J = rng.uniform(-1, 1, 3)
        eps, T, V = rng.uniform(-3, 3), rng.uniform(0.02, 0.5), rng.uniform(-1, 1)
        W = ref.windows(eps, T, V)
        sup, cur = ref.dissipator_and_current(ref.coupling_operators(J, eps), W)
        sup2, cur2 = ref.assemble(*ref.bilinear_kernels(ref._pair_coefficients(J, eps, True), W))
        assert np.allclose(sup, sup2, rtol=0, atol=1e-15)
        assert np.allclose(cur, cur2, rtol=0, atol=1e-15)
        assert np.allclose(ref.TRACE_ROW @ sup, 0, atol=1e-15)  # d Tr(rho)/dt = 0
    th = 0.7**2  # closed forms of the rotated Pauli matrices
    r = ref.chiral_matrices(0.7)
    assert np.allclose(r[0], math.cos(2 * th) * ref.SX - math.sin(2 * th) * ref.SZ)
    assert np.allclose(r[1], ref.SY)
    assert np.allclose(r[2], math.cos(2 * th) * ref.SZ + math.sin(2 * th) * ref.SX)


def test_degenerate_coupling_rejected():
    # Single non-zero component: every G_ab is proportional to S^x, 2-d null space.
    with pytest.raises(ValueError, match="not unique"):
        ref.current((0.5, 0.0, 0.0), 0.05, 0.02)


# --------------------------------------------------------------------------------------------
# (d) the stored table comes from this code: recompute two stored points (the cheapest ones
# with V != 0 and generic couplings) and compare to 1e-10 relative.
# Reference: tests/data/reference_points.json. Tolerance 1e-10 relative (absolute floor
# 1e-14 * J^2 max(T, |V|) for the current, 1e-14 for spins which may vanish by symmetry):
# the recomputation is deterministic, only BLAS/libm differences between machines remain.
# --------------------------------------------------------------------------------------------
def _stored_points():
    return json.loads(DATA.read_text())["points"]


@pytest.mark.parametrize("which", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_stored_points_reproduced(which):
    pts = [p for p in _stored_points() if p["V"] != 0 and p["coupling_class"] == "random"]
    p = sorted(pts, key=lambda q: q["T"])[which]
    r = ref.point(p["J"], p["T"], p["V"])
    scale = ref.noise_scale(p["J"], p["T"], p["V"])
    assert r["current"] == pytest.approx(p["current"], rel=1e-10, abs=1e-14 * scale)
    assert r["conductance"] == pytest.approx(p["conductance"], rel=1e-10)
    assert np.allclose(r["spin"], p["spin"], rtol=1e-10, atol=1e-14)


# --------------------------------------------------------------------------------------------
# (e) the paper's Eq. 14 (linear conductance at V = 0) with TT = 2 (2T)^2,
# Ic(x) = int_0^inf cos(x e^2)/cosh^2 e de, Is(x) = int_0^inf sin(x e^2)/cosh^2 e de (mpmath).
# Regime: V = 0, T in {0.05, 0.2}; isotropic (T^4-small effect), paper Fig. 2 anisotropic,
# generic couplings. Tolerance 1e-8 relative (measured agreement 1e-12 .. 1e-15).
# --------------------------------------------------------------------------------------------
def _ic_is(x: float) -> tuple[float, float]:
    with mp.workdps(30):
        nodes = mp.linspace(0, 40, 41)
        ic = mp.quad(lambda e: mp.cos(x * e**2) / mp.cosh(e) ** 2, nodes)
        is_ = mp.quad(lambda e: mp.sin(x * e**2) / mp.cosh(e) ** 2, nodes)
        return float(ic), float(is_)


def eq14(J, T: float) -> float:
    jx2, jy2, jz2 = (j * j for j in J)
    tt = 2 * (2 * T) ** 2
    ic1, is1 = _ic_is(tt)
    ic2, _ = _ic_is(2 * tt)
    return (
        -0.5 * (jx2 - jy2) ** 2 / (jx2 + jy2)
        + (jx2 - jz2) / 4 * (1 - ic2)
        + 2 * jy2 * (jx2 / (jx2 + jy2) * (ic1**2 - 1) + jz2 / (jz2 + jy2) * is1**2)
    )


@pytest.mark.parametrize("T", [0.05, pytest.param(0.2, marks=pytest.mark.slow)])
@pytest.mark.parametrize(
    "J",
    [
        (0.25, 0.25, 0.25),
        pytest.param((0.25, 0.0, 0.35), marks=pytest.mark.slow),
        pytest.param((0.3, -0.5, 0.7), marks=pytest.mark.slow),
    ],
)
def test_eq14_linear_conductance(J, T):
    r = ref.point(J, T, 0.0)
    assert r["conductance"] == pytest.approx(eq14(J, T), rel=1e-8)
    assert r["conductance_err"] < 1e-9 * abs(r["conductance"])
