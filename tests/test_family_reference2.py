"""The general path at its default settings against the second family reference set.

tests/data/family_points_2.json (tests/make_family_reference2.py) holds 48 points over the
validated domain of the general path where it is hardest: S = 1/2, 1, 3/2; full random 3x3
exchange tensors (some diagonal); |mu0| <= 1 (0, +-1 and |mu0| in [0.9, 1] included);
T in [0.005, 0.3] with half the points in [0.15, 0.3]; |V| <= 2 (0, |V| << T, ~T, up to 2);
power laws (|eps|/s)^p with p in [1.5, 4], s in [0.5, 2], and polynomials of degree 2 and 4;
the issue's worst point PowerLaw(0.8, 3), T = 0.3, V = 2, mu0 = 0.8, S = 3/2 first.
Computed by tests/family_reference.py (numpy/scipy/mpmath, nothing from jaxmi): on the real
axis, or where that needs more than 6000 panels with the tails on rays in the complex plane
("method" per point; the two agree to <= 1.4e-13 on G and 1.2e-13 on I where both run, header
"crosscheck"); each point rerun with tighter settings of its method (header "selfcheck":
G <= 1.2e-14, I <= 7e-15 relative, spin and rho <= 3e-15 absolute).

Acceptance (the issue): each point agrees to <= 1e-10 relative, or the engine's per-point error
estimate (``Observables.error``, where the engine has one) flags it (> 1e-10) and bounds the
true error. "Relative" is the largest of
  |dG| / max(|G|, 1e-2 g),  g = S(S+1) sum_ij J_ij^2 (the size of G; the smallest stored |G|
                            is 1.9e-2 g, so this is relative to |G| at every point),
  |dI| / max(|I|, g max(T, |V|)) (I vanishes at V = 0 and cancels between O(g max(T, |V|))
                            terms: the natural current scale),
  max |d<S^i>| and max |d rho_mn| (both O(1): absolute).
A flag counts where the estimate exceeds the acceptance level (ACCEPT = 1e-10); without one
each point must agree to TOL = 1e-11, ~13x the largest error measured at default settings
(7.5e-13, point 4: V = 0, the link and rays; 2026-12-02, after the window's panels by phase and
toward the Dirac point, jaxmi.strategy; the window misses were up to 4.5e-2 before). Points the
engine misses are listed in KNOWN_FAIL (none now).
"""

import json
import pathlib
import warnings

import numpy as np
import pytest

import jaxmi
from jaxmi.model import Model, Polynomial, PowerLaw

DATA = json.loads((pathlib.Path(__file__).parent / "data" / "family_points_2.json").read_text())
POINTS = DATA["points"]
ACCEPT = 1e-10
TOL = 1e-11

# Indices of the points the engine misses by more than TOL at default settings (index: reason
# with the deviation). Empty since 2026-12-02: the six window misses (a fast texture across a
# wide window, PowerLaw(0.5, 3 or 4), 3e-7 to 4.5e-2; the kink of |eps|^1.5 at the Dirac point,
# 2.3e-9 and 5.4e-10) now agree to <= 7e-14; all 48 to <= 7.5e-13 (the 42 others:
# <= 9.3e-12 before).
KNOWN_FAIL: dict[int, str] = {}


def _texture(t: dict):
    if t["kind"] == "power_law":
        return PowerLaw(t["scale"], t["exponent"])
    return Polynomial(tuple(t["coefficients"]))


def _rho(p: dict) -> np.ndarray:
    rho = np.array(p["rho"])
    return rho[..., 0] + 1j * rho[..., 1]


def _offdiag(p: dict) -> bool:
    j = np.array(p["J"])
    return bool(np.abs(j - np.diag(np.diag(j))).max() > 0)


def test_table_covers_the_family():
    # The acceptance's domain: S up to 3/2, full J, |mu0| <= 1, T <= 0.3, |V| <= 2, power laws
    # with exponents 1.5 - 4 and scales 0.5 - 2, a polynomial; the worst point is in.
    count = lambda f: sum(1 for p in POINTS if f(p))  # noqa: E731
    assert len(POINTS) >= 40
    for s in (0.5, 1.0, 1.5):
        assert count(lambda p, s=s: p["S"] == s) >= 12
    assert count(_offdiag) >= 30 and count(lambda p: not _offdiag(p)) >= 3
    assert all(abs(p["mu0"]) <= 1 and p["T"] <= 0.3 and abs(p["V"]) <= 2 for p in POINTS)
    assert count(lambda p: abs(p["mu0"]) >= 0.9) >= 12 and count(lambda p: p["mu0"] == 0) >= 6
    assert count(lambda p: p["T"] >= 0.15) >= 20 and min(p["T"] for p in POINTS) < 0.01
    assert count(lambda p: p["V"] == 0) >= 3 and count(lambda p: abs(p["V"]) == 2) >= 4
    assert count(lambda p: 0 < abs(p["V"]) < 0.3 * p["T"]) >= 4
    pls = [p["texture"] for p in POINTS if p["texture"]["kind"] == "power_law"]
    assert {t["exponent"] for t in pls} >= {1.5, 2.0, 3.0, 4.0}
    assert {t["scale"] for t in pls} >= {0.5, 2.0}
    assert all(1.5 <= t["exponent"] <= 4 and 0.5 <= t["scale"] <= 2 for t in pls)
    degrees = {
        len(p["texture"]["coefficients"]) - 1 for p in POINTS if "coefficients" in p["texture"]
    }
    assert degrees >= {2, 4}
    worst = POINTS[0]
    assert worst["texture"] == {"kind": "power_law", "scale": 0.8, "exponent": 3.0}
    assert (worst["S"], worst["T"], worst["V"], worst["mu0"]) == (1.5, 0.3, 2.0, 0.8)
    assert _offdiag(worst)
    # provenance: the contour carries the points the real axis cannot, cross-checked elsewhere
    assert {p["method"] for p in POINTS} == {"real_axis", "contour"}
    assert DATA["header"]["crosscheck"]["real_axis"]["conductance_rel_tight"] < 1e-12


def relative_errors(p: dict, out) -> dict:
    """The deviations of the module docstring (engine output ``out`` against point ``p``)."""
    g = p["S"] * (p["S"] + 1) * float(np.sum(np.square(p["J"])))
    G, I = p["conductance"], p["current"]  # noqa: E741
    return {
        "conductance": abs(float(out.conductance) - G) / max(abs(G), 1e-2 * g),
        "current": abs(float(out.current) - I) / max(abs(I), g * max(p["T"], abs(p["V"]))),
        "spin": float(np.max(np.abs(np.asarray(out.spin) - p["spin"]))),
        "rho": float(np.max(np.abs(np.asarray(out.density_matrix) - _rho(p)))),
    }


def estimate_measure(p: dict, out) -> float:
    """The true error in the error estimate's own measure (jaxmi.estimate.relative): the
    current's over s max(|V|, T), the conductance's over s, s = (4/3) S (S + 1) sum J_ij^2, the
    spin's over S and rho's entries as they are."""
    S = p["S"]
    s = (4.0 / 3.0) * S * (S + 1) * float(np.sum(np.square(p["J"])))
    return max(
        abs(float(out.current) - p["current"]) / (s * max(p["T"], abs(p["V"]))),
        abs(float(out.conductance) - p["conductance"]) / s,
        float(np.max(np.abs(np.asarray(out.spin) - p["spin"]))) / S,
        float(np.max(np.abs(np.asarray(out.density_matrix) - _rho(p)))),
    )


def evaluate(p: dict, record: list | None = None):
    """The engine at the point (default Config); its AccuracyWarnings go to ``record``."""
    model = Model(spin=p["S"], exchange="tensor", mu0=p["mu0"], texture=_texture(p["texture"]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", jaxmi.AccuracyWarning)
        out = jaxmi.evaluate(np.array(p["J"]), p["T"], p["V"], model=model)
    if record is not None:
        record.extend(w for w in caught if issubclass(w.category, jaxmi.AccuracyWarning))
    return out


def _param(n: int, p: dict):
    marks = []
    if n in KNOWN_FAIL:
        marks.append(pytest.mark.xfail(strict=False, reason=KNOWN_FAIL[n]))
    return pytest.param(n, p, marks=marks)


@pytest.mark.parametrize(
    ("n", "p"),
    [_param(n, p) for n, p in enumerate(POINTS)],
    ids=lambda x: str(x) if isinstance(x, int) else f"S={x['S']},T={x['T']:.3g},V={x['V']:.3g}",
)
@pytest.mark.slow  # a program per point; the quick run has test_family_reference's
def test_engine_matches_family_reference2(n, p, release_compiled):
    caught: list = []
    out = evaluate(p, caught)
    err = relative_errors(p, out)
    estimate = float(np.max(out.error))
    # the warning is the estimate's verdict, nothing else
    assert bool(caught) == (estimate > ACCEPT), (estimate, [str(w.message) for w in caught])
    if estimate > ACCEPT:
        # flagged: accepted, but the estimate must bound the true error (in its own measure;
        # a flagged point's error is far above the table's own accuracy, ~1e-13)
        assert estimate_measure(p, out) <= estimate, (err, estimate)
    else:
        assert max(err.values()) <= TOL, (err, estimate)
