"""The general path against the independent slow reference for the model family.

tests/data/family_points.json holds 30 points (S = 1/2, 1, 3/2; full random 3x3 exchange
tensors; mu0 in [-0.8, 0.8]; the paper's texture and three others, one with a kink at the Dirac
point) computed by tests/family_reference.py: numpy/scipy/mpmath, the literal Eq. 10/12
matrices, adaptive quad_vec, a least-squares stationary state and Richardson finite differences
(self-accuracy ~5e-14 on the conductance, header "selfcheck"). It shares no code with jaxmi;
none of its points were used to tune the engine.
"""

import json
import pathlib
import warnings

import numpy as np
import pytest
from quick import first_quick

import jaxmi
from jaxmi.model import Model, Polynomial, PowerLaw

DATA = json.loads((pathlib.Path(__file__).parent / "data" / "family_points.json").read_text())
POINTS = DATA["points"]


def _texture(t: dict):
    if t["kind"] == "power_law":
        return PowerLaw(t["scale"], t["exponent"])
    return Polynomial(tuple(t["coefficients"]))


def test_table_covers_the_family():
    # Issue 9: >= 20 random points including S = 1 and 3/2, off-diagonal J, mu0 != 0 and a
    # non-default texture.
    assert len(POINTS) >= 20
    assert {p["S"] for p in POINTS} >= {0.5, 1.0, 1.5}
    off = [np.abs(np.array(p["J"]) - np.diag(np.diag(p["J"]))).max() > 0 for p in POINTS]
    assert sum(off) >= 10
    assert sum(abs(p["mu0"]) >= 0.3 for p in POINTS) >= 8
    paper = {"kind": "power_law", "scale": 1.0, "exponent": 2.0}
    assert sum(p["texture"] != paper for p in POINTS) >= 4


def _quick(p) -> bool:
    """The kind of point the quick run (-m "not slow") keeps one of: S = 1, a power law, the
    default panels (each point compiles its own program: its model is static)."""
    return p["S"] == 1.0 and p["texture"]["kind"] == "power_law" and p["T"] <= 0.3


@pytest.mark.parametrize(
    "p",
    first_quick(POINTS, _quick),
    ids=lambda p: f"S={p['S']},T={p['T']:.3g},V={p['V']:.3g},mu0={p['mu0']:.2g}",
)
def test_engine_matches_family_reference(p):
    # Issue 9 asks rtol 1e-8; measured (power laws on the power-law contour, the polynomial on
    # the real axis) 4.2e-14 on the conductance, 8.8e-15 on the current (relative, or of the
    # floor), 7.5e-16 on spin and rho: within the reference's own accuracy (<= 5e-14). Held at
    # ~10x: rtol 5e-13; absolute floors where the exact value is 0 (current at V = 0) or a
    # cancellation of O(S(S+1) J^2 max(T, |V|)) terms: 1e-14 of that scale; spin, rho 1e-14.
    model = Model(spin=p["S"], exchange="tensor", mu0=p["mu0"], texture=_texture(p["texture"]))
    # A power law runs on its contour (no real-axis tails: the default Config at every T); the
    # polynomial on the real axis, above T = 0.3 with the tail panels validated to 0.5.
    hot = p["texture"]["kind"] == "polynomial" and p["T"] > 0.3
    config = jaxmi.Config(family_tail_panels=48) if hot else jaxmi.Config()
    with warnings.catch_warnings():
        # T > 0.3 lies outside the documented domain (it warns); the contour is checked there.
        warnings.simplefilter("ignore", jaxmi.AccuracyWarning)
        out = jaxmi.evaluate(np.array(p["J"]), p["T"], p["V"], model=model, config=config)
    scale = p["S"] * (p["S"] + 1) * float(np.sum(np.square(p["J"]))) * max(p["T"], abs(p["V"]))
    assert float(out.conductance) == pytest.approx(p["conductance"], rel=5e-13)
    assert float(out.current) == pytest.approx(p["current"], rel=1e-13, abs=1e-14 * scale)
    np.testing.assert_allclose(np.asarray(out.spin), p["spin"], atol=1e-14)
    rho = np.array(p["rho"])
    rho = rho[..., 0] + 1j * rho[..., 1]
    np.testing.assert_allclose(np.asarray(out.density_matrix), rho, atol=1e-14)
