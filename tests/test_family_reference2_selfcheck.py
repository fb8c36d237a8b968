"""Self-checks of the contour method of tests/family_reference.py and of the provenance of
tests/data/family_points_2.json (fast, ~10 s). Nothing from jaxmi is imported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import family_reference as fr  # noqa: E402
import make_family_reference2 as mk2  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "family_points_2.json"


def _table() -> dict:
    return json.loads(DATA.read_text())


def _rho(p: dict) -> np.ndarray:
    return np.array([[complex(re, im) for re, im in row] for row in p["rho"]])


# --------------------------------------------------------------------------------------------
# The Fourier split the rays rely on: c_ab c_ba^T = sum_k a_k exp(i k theta), k = 0, +-2, +-4,
# exactly (a trigonometric polynomial). Tolerance 1e-14 absolute (entries O(|J|^2) <= ~3).
# --------------------------------------------------------------------------------------------
def test_fourier_pair_products_exact():
    rng = np.random.default_rng(5)
    for _ in range(3):
        J = rng.uniform(-0.6, 0.6, (3, 3))
        coef = fr.fourier_pair_products(J)
        for theta in rng.uniform(-50, 50, 5):
            got = sum(a * np.exp(1j * k * theta) for k, a in coef.items())
            assert np.allclose(got, fr.pair_products(J, float(theta)), rtol=0, atol=1e-14)


# --------------------------------------------------------------------------------------------
# Contour against real axis at a point where both are cheap (S = 1, full J, the kinked
# PowerLaw(0.8, 3), mu0 != 0, V ~ 3T), and two contour geometries against each other (ray start
# 3T / 5T beyond the edges, angle pi/2p / 0.3 pi/p): the tails must not depend on the path.
# Tolerance 1e-12 relative on I and G, 1e-13 absolute on rho (measured ~5e-15 / ~5e-16).
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_contour_equals_real_axis():
    J = np.random.default_rng(8).uniform(-0.6, 0.6, (3, 3))
    args = (1.0, J, 0.1, 0.3, -0.4, fr.PowerLaw(0.8, 3.0))
    a = fr.point(*args)
    b = fr.point(*args, method="contour")
    other = dict(fr.CONTOUR_SETTINGS, ray_start_T=5.0, ray_angle=0.3)
    c = fr.point(*args, settings=other, method="contour")
    for r in (b, c):
        assert r["current"] == pytest.approx(a["current"], rel=1e-12)
        assert r["conductance"] == pytest.approx(a["conductance"], rel=1e-12)
        assert np.allclose(r["rho"], a["rho"], rtol=0, atol=1e-13)
    assert b["panels"] < a["panels"] / 10  # the rays replace the oscillating tails


def test_contour_needs_power_law():
    with pytest.raises(TypeError, match="PowerLaw"):
        fr.integrate_kernels_contour(np.eye(3), 0.1, 0.1, 0.0, fr.Polynomial((0.0, 0.3, 0.8)))


# --------------------------------------------------------------------------------------------
# Stored table: provenance and self-accuracy. Every point names its method, the method follows
# the generator's rule, the selfcheck (tight rerun of the same method) and the crosscheck (the
# other method) deviations are below 1e-12 relative (the acceptance compares at 1e-10); the
# stored states are physical (Hermitian, unit trace, PSD: round-off tolerances 1e-14).
# --------------------------------------------------------------------------------------------
def test_stored_provenance():
    data = _table()
    pts = data["points"]
    assert len(pts) == len(mk2.SPECS)
    for p in pts:
        if p["texture"]["kind"] == "polynomial":
            assert p["method"] == "real_axis"
        else:
            n = p["real_axis_panels"]
            assert p["method"] == (
                "real_axis" if n is not None and n <= mk2.REAL_AXIS_MAX_PANELS else "contour"
            )
        c = p["selfcheck"]
        assert c["current_abs_over_scale"] < 1e-13 and c["rho_abs"] < 1e-13
        assert c["conductance_rel_tight"] < 1e-12 and c["conductance_rel_analytic"] < 1e-12
        for x in p["crosscheck"].values():
            assert x["current_abs_over_scale"] < 1e-13 and x["conductance_rel_tight"] < 1e-12
    assert sum(1 for p in pts if "real_axis" in p["crosscheck"]) >= 5
    head = data["header"]
    assert head["selfcheck"]["conductance_rel_tight"] < 1e-12
    assert head["crosscheck"]["real_axis"]["conductance_rel_tight"] < 1e-12


def test_stored_states_physical():
    for p in _table()["points"]:
        rho = _rho(p)
        assert np.allclose(rho, rho.conj().T, rtol=0, atol=1e-15)
        assert abs(np.trace(rho) - 1) < 1e-14
        assert np.linalg.eigvalsh(rho).min() > -1e-14
        assert np.allclose(fr.spin(p["S"], rho), p["spin"], rtol=0, atol=1e-14)


# The inputs are the generator's seeded draws, and the cheapest contour point recomputed live
# matches the JSON to 1e-10 relative (deterministic; only BLAS/libm/scipy differences remain).
def test_stored_point_reproduced():
    pts = _table()["points"]
    for p, q in zip(pts, mk2.make_points(), strict=True):
        assert (p["S"], p["J"], p["T"], p["V"], p["mu0"]) == (
            q["S"],
            q["J"],
            q["T"],
            q["V"],
            q["mu0"],
        )
        assert p["texture"] == q["texture"]
    p = min((p for p in pts if p["method"] == "contour"), key=lambda q: q["timings"]["point_s"])
    args = (p["S"], p["J"], p["T"], p["V"], p["mu0"], fr.as_texture(p["texture"]))
    r = fr.point(*args, method="contour")
    scale = fr.noise_scale(p["S"], p["J"], p["T"], p["V"])
    assert r["current"] == pytest.approx(p["current"], rel=1e-10, abs=1e-14 * scale)
    assert r["conductance"] == pytest.approx(p["conductance"], rel=1e-10)
    assert np.allclose(r["rho"], _rho(p), rtol=1e-10, atol=1e-14)
