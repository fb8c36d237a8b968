"""Fits beyond the paper's model: the Fermi level mu0_meV, the texture and the impurity spin
(jaxmi.fit(model=...), `jaxmi fit --spin/--texture`).

* Recovery of (J, mu0, E0) from synthetic data of an isotropic impurity under a gate (dI/dV at
  three temperatures, 0 to 16 mV: eV up to 1.6 E0), with Gaussian noise, a few seeds, starts
  off by a factor 1.5: each free parameter within 3 standard errors of the truth. Three starts
  per fit: from (J x 1.5, mu0 / 1.5, E0 / 1.5) a single start ends in a secondary minimum near
  E0 = 6.7 meV (chi2_reduced 6, eV up to 2.4 E0; optimistix's solver ends there too).
* A spin-1 fit through `fit_file` (CSV in, JSON and PNG out, the model described in both).
* The Jacobian in mu0 (and J, E0) against central finite differences, 1e-6 relative; the
  host-side solver's chain rule through the bound transforms likewise.
* The symmetries behind the default bounds: G even in mu0 (even texture) and in each coupling
  component, for spin 1/2 and 1.
* Refusals before any compilation (E0 with the texture's energy scale, unsupported models, bad
  starts) and a bad model option through the command line (exit status 2, one line).

Compilation dominates the runtime: every fit here has 3 free parameters and 15 points (padded
to 16), so the spin-1/2 problems share one compiled function and the spin-1 ones another; the
synthetic data come from that same compiled function (:func:`_evaluate`).
"""

from __future__ import annotations

import importlib
import json
import math
import subprocess
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("optimistix")

from sweep_helpers import jaxmi_command  # noqa: E402

import jaxmi  # noqa: E402
from jaxmi import units  # noqa: E402
from jaxmi.cli import model_from_options  # noqa: E402
from jaxmi.errors import FitError  # noqa: E402
from jaxmi.model import CustomTexture, Model, Polynomial, PowerLaw  # noqa: E402

F = importlib.import_module("jaxmi.fitting")
from jaxmi.fitting import parameters as FPAR  # noqa: E402
from jaxmi.fitting import problem as FPRO  # noqa: E402

SIGMA = 1e-3  # e^2/h
# Isotropic impurity under a gate: J = 0.3, mu0 = 5 meV = 0.5 E0, E0 = 10 meV. dI/dV at 5, 15
# and 30 K (kB T / E0 up to 0.26, inside the general path's validated 0.3) and 0 to 16 mV.
TRUTH = {"J": 0.3, "mu0_meV": 5.0, "E0_meV": 10.0}
FREE = tuple(TRUTH)
T = np.repeat([5.0, 15.0, 30.0], 5)
V = np.tile(np.linspace(0.0, 16.0, 5), 3)


def _evaluate(values: dict, free=FREE, model=None, T=T, V=V):
    """(G / G0 at (T, V), its Jacobian in ``free``) through the fit's compiled residuals with
    G = 0 and unit weights; ``values`` holds every parameter that is not a default. Unbounded
    transforms, so any sign is allowed; the same compiled function as the fits of this shape."""
    data = F.Data(np.asarray(T, float), np.asarray(V, float), np.zeros(len(T)), None)
    prob = FPAR._problem(
        free,
        {k: values[k] for k in free},
        {k: v for k, v in values.items() if k not in free},
        {k: (None, None) for k in free},
        0.0,
        model,
    )
    args, _ = FPRO._make_args(prob, data)
    r, jac = FPRO._residuals_and_jacobian(
        jnp.asarray(prob.values[prob.free_index]), args, config=jaxmi.Config(), family=prob.family
    )
    return np.asarray(r)[: len(T)], np.asarray(jac)[: len(T)]


@pytest.mark.slow
def test_recovery_isotropic_gate():
    clean, _ = _evaluate(TRUTH)
    for seed in range(3):
        G = clean + SIGMA * np.random.default_rng(seed).normal(size=T.shape)
        start = {
            k: v * (1.5 if (seed >> i) & 1 else 1 / 1.5) for i, (k, v) in enumerate(TRUTH.items())
        }
        r = F.fit(T, V, G, SIGMA, free=FREE, start=start, starts=3, seed=seed)
        print(r.summary())
        assert r.converged, r.summary()
        for k, v in TRUTH.items():
            assert abs(r.params[k] - v) <= 3.0 * r.stderr[k], (seed, k, r.summary())
        assert r.chi2_reduced < 3.0
        assert r.model_description["spin"] == 0.5
        assert r.model_description["mu0"] == pytest.approx(r.params["mu0_meV"] / r.params["E0_meV"])
        assert r.model_description["texture"] == {
            "kind": "power_law",
            "scale": 1.0,
            "exponent": 2.0,
        }
        assert list(r.params) == ["J", "E0_meV", *F.family_parameters(), "n", "offset"]


@pytest.mark.slow
def test_jacobian_in_mu0_matches_finite_differences():
    # Physical parameters (what the standard errors use), then the host solver's chain rule
    # dp/dz of the bound transforms. Step 1e-5 relative: truncation ~1e-10, roundoff ~1e-11,
    # the quadrature's error ~1e-12 (its panels follow mu0 but are held out of the gradient at
    # T > 0, where the integral does not depend on them).
    p0 = np.array([TRUTH[k] for k in FREE])
    _, jac = _evaluate(TRUTH)
    fd = np.empty_like(jac)
    for i in range(3):
        h = 1e-5 * p0[i]
        up = dict(zip(FREE, p0 + h * np.eye(3)[i], strict=True))
        down = dict(zip(FREE, p0 - h * np.eye(3)[i], strict=True))
        fd[:, i] = (_evaluate(up)[0] - _evaluate(down)[0]) / (2 * h)
    assert np.all(np.abs(fd) > 1e-6)  # every entry carries signal (mu0 included)
    rel = np.abs(jac / fd - 1)
    print("Jacobian vs FD: max relative difference per parameter", rel.max(axis=0))
    assert rel.max() < 1e-6

    prob = FPAR._problem(
        ("J", "mu0_meV", "E0_meV"),
        TRUTH,
        None,
        {"mu0_meV": (0.0, 20.0), "J": (None, 1.0)},
        2.0,
    )
    assert list(prob.kinds) == [2, 3, 1]  # upper, both, lower
    args, _ = FPRO._make_args(prob, F.Data(T, np.zeros_like(T), np.zeros_like(T), None))
    tr = args.transform

    def physical(z):
        return np.asarray(FPAR._to_physical(jnp.asarray(z), tr))

    z = FPAR._to_unconstrained(p0, prob)
    p, dp = physical(z), np.asarray(FPAR._dphysical_dz(jnp.asarray(z), tr))
    np.testing.assert_allclose(p, p0, rtol=1e-14)
    fdz = np.array(
        [
            (physical(z + 1e-6 * e) - physical(z - 1e-6 * e))[i] / 2e-6
            for i, e in enumerate(np.eye(3))
        ]
    )
    np.testing.assert_allclose(dp, fdz, rtol=1e-8)


@pytest.mark.slow
def test_even_in_mu0_and_in_each_coupling():
    # The default bounds mu0_meV >= 0 and couplings >= 0 rest on these: G(mu0) = G(-mu0) for an
    # even texture (at any bias, also V != 0 and both signs), and G is unchanged when one
    # coupling component changes sign.
    Tm, Vm = np.tile([5.0, 25.0], 8)[:15], np.linspace(-14.0, 12.0, 15)
    base = {"Jx": 0.31, "Jy": -0.17, "Jz": 0.52, "mu0_meV": 4.0, "E0_meV": 10.0}
    free = ("Jx", "mu0_meV", "E0_meV")
    g = _evaluate(base, free, T=Tm, V=Vm)[0]
    variants = [
        {**base, "mu0_meV": -4.0},
        {**base, "Jx": -0.31},
        {**base, "Jy": 0.17},
        {**base, "Jz": -0.52, "mu0_meV": -4.0},
    ]
    for values in variants:
        np.testing.assert_allclose(_evaluate(values, free, T=Tm, V=Vm)[0], g, rtol=1e-12)
    # An odd texture term breaks the mu0 symmetry (so mu0's sign is then determined).
    odd = Model(texture=Polynomial((0.0, 0.3, 1.0)))
    names = ("Jx", "mu0_meV", "E0_meV")
    g_odd = _evaluate(base, names, odd, T=Tm, V=Vm)[0]
    g_odd_minus = _evaluate({**base, "mu0_meV": -4.0}, names, odd, T=Tm, V=Vm)[0]
    assert np.abs(g_odd_minus - g_odd).max() > 1e-3


@pytest.mark.slow
def test_texture_c0_with_an_isotropic_impurity_is_refused():
    # A constant theta rotates the electron spin frame, which an isotropic impurity does not
    # see: dG does not depend on texture_c0, its Jacobian column is roundoff (~1e-17), caught
    # by the null-direction check before the solve. Shares the polynomial compile above.
    odd = Model(texture=Polynomial((0.0, 0.3, 1.0)))
    with pytest.raises(
        FitError, match=r"not separately identifiable .* along the combination \+1 texture_c0 \("
    ):
        F.fit(
            T,
            V,
            np.ones(len(T)),
            SIGMA,
            free="J,texture_c0,texture_c1",
            start={"texture_c0": 0.2},
            fix={"E0_meV": 10.0, "mu0_meV": 4.0},
            model=odd,
        )


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.slow
def test_spin_one_fit_through_fit_file(tmp_path):
    # Spin S = 1 (d = 3), the same design; the fit through the command line's function: CSV in,
    # JSON and PNG out. The model is in the JSON (model_family) and the table.
    model = Model(spin=1)
    truth = {"J": 0.2, "mu0_meV": 5.0, "E0_meV": 10.0}
    clean, _ = _evaluate(truth, model=model)
    G = clean + SIGMA * np.random.default_rng(11).normal(size=T.shape)
    rows = "".join(f"{t},{v},{g:.9f},{SIGMA}\n" for t, v, g in zip(T, V, G, strict=True))
    data = _write(tmp_path / "data.csv", "T,V,G,G_err\n" + rows)
    out, fig = tmp_path / "fit.json", tmp_path / "fit.png"
    r = F.fit_file(
        data,
        free="J,mu0_meV,E0_meV",
        start={"J": 0.3, "mu0_meV": 3.5, "E0_meV": 13.0},
        model=model,
        output=out,
        plot=fig,
    )
    print(r.summary())
    assert r.converged
    assert "  model: spin 1, diagonal exchange, mu0 = " in r.summary()
    doc = json.loads(out.read_text())
    assert doc["model_family"]["spin"] == 1.0
    assert doc["model_family"]["texture"]["kind"] == "power_law"
    assert set(doc["params"]) == {"J", "E0_meV", "n", "offset", *F.family_parameters()}
    for k, v in truth.items():
        assert abs(doc["params"][k] - v) <= 3 * doc["stderr"][k], (k, r.summary())
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and fig.stat().st_size > 10_000
    # FitResult.model (the spin-1 model through jaxmi.conductance) reproduces the fit at the
    # data; 200 points, the shape of the figure's curves, so it reuses their compilation.
    np.testing.assert_allclose(
        r.model(np.resize(T, 200), np.resize(V, 200))[:15], r.G_fit, rtol=1e-12
    )


def test_paper_model_runs_the_paper_path():
    # The paper's model with none of the new parameters free: the same traced problem as
    # before the model family (7 parameters, no family), whatever way the model is given.
    for model in (None, Model(), model_from_options("1/2", "power_law")):
        prob = FPAR._problem("Jx,Jz,E0_meV", {"E0_meV": 10.0}, None, None, 1.0, model)
        assert prob.family is None and prob.names == FPAR._ANISOTROPIC
        assert prob.solver_values().shape == (7,)
    # Naming a new parameter at its paper value keeps the fast path but lists it.
    prob = FPAR._problem("J,E0_meV", {"E0_meV": 10.0}, {"mu0_meV": 0.0}, None, 1.0)
    assert prob.family is None
    assert prob.names == ("J", "E0_meV", *F.family_parameters(), "n", "offset")
    # Anything else is the general path, with the family's E0 floor (kB T <= 0.6 E0).
    prob = FPAR._problem("J,E0_meV", {"E0_meV": 10.0}, {"mu0_meV": 2.0}, None, 1.0, None, 3.0)
    assert prob.family == FPAR._Family(0.5, "power_law", 0) and prob.lower[1] == 3.0
    poly = model_from_options("3/2", "polynomial", ["texture_c3"])
    assert poly.spin == 1.5 and poly.texture.coefficients == (0.0, 0.0, 1.0, 0.0)
    assert F.family_parameters(poly) == ("mu0_meV", *(f"texture_c{k}" for k in range(4)))


REFUSED = [
    (
        dict(free="J,E0_meV,texture_scale", start={"E0_meV": 10.0}),
        r"^E0_meV and texture_scale cannot both be free: .* only the product texture_scale \* "
        r"E0_meV is determined",
    ),
    (
        dict(
            free="J,E0_meV,texture_c1,texture_c2",
            start={"E0_meV": 10.0},
            model=Model(texture=Polynomial((0.0, 0.1, 1.0))),
        ),
        r"^E0_meV and the texture coefficients texture_c1, texture_c2 cannot all be free",
    ),
    (
        dict(free="J,mu0_meV", start={"mu0_meV": -2.0}, fix={"E0_meV": 10.0}),
        r"start value of mu0_meV must lie strictly inside its bounds \(0, inf\), got -2 "
        r"\(mu0_meV >= 0 by default: the conductance is even in mu0",
    ),
    (
        dict(free="J,mu0_meV", fix={"E0_meV": 10.0}),
        r"^mu0_meV \(Fermi level from the Dirac point, meV\) needs a start value when free",
    ),
    (
        dict(free="J,texture_c1", fix={"E0_meV": 10.0}),
        r"^unknown parameter 'texture_c1' in free .*belongs to a polynomial texture",
    ),
    (
        dict(free="J", fix={"E0_meV": 10.0}, model=Model(mu0=0.3)),
        r"^model: give the Fermi level as the parameter mu0_meV",
    ),
    (
        dict(free="J", fix={"E0_meV": 10.0}, model=Model(exchange="tensor")),
        r"^model: fits support the diagonal exchange only",
    ),
    (
        dict(
            free="J",
            fix={"E0_meV": 10.0},
            model=Model(texture=CustomTexture(lambda e, p: p * e**2, 1.0)),
        ),
        r"^model: fits support the power_law and polynomial textures, not CustomTexture",
    ),
    (
        dict(free="J", fix={"E0_meV": 10.0}, model=Model(texture=PowerLaw(scale=-1.0))),
        r"^model: PowerLaw.scale must be a finite number > 0",
    ),
]


@pytest.mark.parametrize("kwargs, message", REFUSED)
def test_refused_before_compiling(kwargs, message):
    with pytest.raises(FitError, match=message) as e:
        F.fit(T, V, np.ones(len(T)), SIGMA, **kwargs)
    assert "\n" not in str(e.value)


def _cli(args, cwd) -> subprocess.CompletedProcess:
    # the environment (and so the session's compilation cache, tests/conftest.py) is inherited
    return subprocess.run(
        [*jaxmi_command(), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--spin", "0.7"], "jaxmi: error: --spin: Model.spin must be 1/2, 1, 3/2, ..."),
        (["--texture", "spline"], "jaxmi: error: argument --texture: invalid choice: 'spline'"),
    ],
)
def test_cli_bad_model_option_exit_2_one_line(tmp_path, args, message):
    data = _write(tmp_path / "data.csv", "T,G\n5,0.98\n6,0.97\n7,0.96\n")
    proc = _cli(["fit", data, "--free", "J", "--fix", "E0_meV=10", *args], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr


def test_describe_model_line():
    line = F.describe_model(
        Model(spin=1.5, mu0=0.25, texture=Polynomial((0.0, 0.1, 1.0))).describe()
    )
    assert line == (
        "spin 3/2, diagonal exchange, mu0 = 0.25 E0, texture polynomial (c0 0, c1 0.1, c2 1)"
    )
    assert math.isclose(units.KB_MEV_PER_K, 8.617333262e-2, rel_tol=1e-10)
