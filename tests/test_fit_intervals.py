"""Intervals beyond the linearised standard errors: the posterior (NUTS through blackjax:
jaxmi.fit(..., posterior=True), jaxmi fit --posterior) and the profile likelihood
(jaxmi.fit(..., profile=...), jaxmi fit --profile).

* Reference data: the paper's closed form for an isotropic impurity in linear response, Eq. 16
  (dG = -J^2 (1 - Ic^2 - Is^2) at scriptT = 8 (kB T / E0)^2, jaxmi.analytic: the Ic, Is
  integrals, not the master equation), J = 0.3, E0 = 10 meV, 30 temperatures 2-60 K (kB T / E0
  0.017-0.52: through the crossover, where J and E0 are separately determined, correlation
  0.94), Gaussian noise 1e-3 e^2/h. Near-Gaussian: the posterior's 68% half-width and the
  least-squares standard error differ by 1-3% (measured, 4 chains x 1000 draws: ESS ~3000, so a
  quantile's own noise is ~2%); asserted within 10%, and the median within 0.15 stderr of the
  optimum (measured 0.02-0.04). The truth inside the 95% interval, R-hat < 1.01, ESS >= 400,
  no divergence: the acceptance of the CLI on these data.
* The density's pieces: the log-Jacobian of the bound transform against log |dp/dz| by
  autodiff (to 1e-12, hypothesis over z including |z| up to 700), the chi^2 term's own
  derivative (forward-mode J^T r) against reverse-mode autodiff through the engine (an
  independent path through the same model, to 1e-9 relative).
* Profiles: on the near-Gaussian data the 68% profile interval is the +-1 stderr interval to
  within 5% of a stderr (measured 0.1-1.6%: chi^2 is near-quadratic there); each profile point
  is the minimum over the other parameters, checked against an independent fit with the held
  value fixed (a different compiled program, 1e-6 relative in chi^2); in the T^4 regime (data
  to kB T / E0 = 0.1) the 95% interval is open above, with its note, where the linearised
  interval is closed.
* Bad options: one-line errors.

Coverage over many noise seeds (68% and 95% intervals) is a benchmark:
benchmarks/fit_posterior.py, figures in docs/fitting.md.
"""

from __future__ import annotations

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("blackjax")

from sweep_helpers import jaxmi_command  # noqa: E402, F401

import jaxmi  # noqa: E402
from jaxmi import analytic, outputs, units  # noqa: E402
from jaxmi.errors import FitError  # noqa: E402
from jaxmi.fitting import parameters as FPAR  # noqa: E402
from jaxmi.fitting import posterior as FPOST  # noqa: E402
from jaxmi.fitting import problem as FPRO  # noqa: E402

TRUTH = {"J": 0.3, "E0_meV": 10.0}
T = np.linspace(2.0, 60.0, 30)
SIGMA = 1e-3


def _closed_form(J, E0_meV, T_K):
    """G / G0 of Eq. 16 (isotropic, linear response), exact."""
    t = jnp.asarray(units.temperature(np.asarray(T_K), E0_meV))
    return 1.0 + np.asarray(analytic.eq16_isotropic_exact(J, t))


def _data(seed=1):
    G = _closed_form(TRUTH["J"], TRUTH["E0_meV"], T)
    return G + SIGMA * np.random.default_rng(seed).normal(size=T.shape)


@given(
    st.lists(st.floats(-700.0, 700.0), min_size=4, max_size=4),
    st.sampled_from([(0.0, 10.0), (-3.0, 2.0), (0.5, 0.5000001)]),
    st.floats(1e-6, 1e3),
)
def test_log_jacobian_of_the_bound_transform(z, bounds, scale):
    # One of each kind (none, lower, upper, both); reference: log |jvp| of the transform.
    lo, hi = bounds
    tr = FPAR._Transform(
        jnp.array([0, 1, 2, 3]),
        jnp.array([-jnp.inf, lo, -jnp.inf, lo]),
        jnp.array([jnp.inf, jnp.inf, hi, hi]),
        jnp.full(4, scale),
    )
    z = jnp.asarray(z)
    got = np.asarray(FPAR._log_dphysical_dz(z, tr))
    assert np.isfinite(got).all()
    ref = np.log(np.abs(np.asarray(FPAR._dphysical_dz(jnp.clip(z, -30.0, 30.0), tr))))
    inside = np.abs(np.asarray(z)) < 30.0  # beyond, the reference's exp/sigmoid underflow
    np.testing.assert_allclose(got[inside], ref[inside], rtol=1e-12, atol=1e-12)


def test_chi2_gradient_is_the_forward_mode_jacobian():
    # The sampler's gradient (J^T r from the fit's forward-mode Jacobian) against reverse-mode
    # autodiff of the residuals through the engine: measured agreement 1e-14 relative.
    from jaxmi.fitting.data import Data

    G = _data()
    data = Data(T, np.zeros_like(T), G, np.full_like(T, SIGMA))
    prob = FPAR._problem("J,E0_meV", {"J": 0.25, "E0_meV": 9.0}, None, None, 1.0, None)
    args, _ = FPRO._make_args(prob, data)
    cfg = jaxmi.Config()
    p = jnp.array([0.27, 9.5])
    mine = jax.grad(lambda q: FPOST._half_chi2(q, args, cfg, None))(p)
    ref = jax.grad(lambda q: 0.5 * jnp.sum(FPRO._weighted_residuals(q, args, cfg) ** 2))(p)
    np.testing.assert_allclose(np.asarray(mine), np.asarray(ref), rtol=1e-9)
    assert float(FPOST._half_chi2(p, args, cfg, None)) == pytest.approx(
        0.5 * float(jnp.sum(FPRO._weighted_residuals(p, args, cfg) ** 2)), rel=1e-14
    )


def test_bad_posterior_options_are_one_line():
    G = _data()
    for kwargs, message in [
        ({"prior": {"Jx": (0.3, 0.1)}}, r"prior on 'Jx': not a free parameter"),
        ({"prior": {"J": (0.3, -1.0)}}, r"prior on J: mean finite and sd > 0"),
        ({"prior": {"J": 0.3}}, r"prior on J: expected \(mean, sd\)"),
        ({"chains": 1}, r"posterior chains must be an integer >= 2"),
    ]:
        with pytest.raises(FitError, match=message):
            jaxmi.fit(
                T, None, G, SIGMA, free="J,E0_meV", start={"E0_meV": 8.0}, posterior=True, **kwargs
            )


@pytest.mark.slow
def test_cli_posterior_on_closed_form_data(tmp_path):
    G = _data()
    rows = "".join(f"{t:.6f},{g:.9f},{SIGMA}\n" for t, g in zip(T, G, strict=True))
    (tmp_path / "data.csv").write_text("T,G,G_err\n" + rows)
    import subprocess

    proc = subprocess.run(
        [
            *jaxmi_command(),
            "fit",
            "data.csv",
            "--free",
            "J,E0_meV",
            "--start",
            "J=0.2,E0_meV=8",
            "--posterior",
            "--profile",
            "E0_meV",
            "-o",
            "out.json",
            "--plot",
            "fit.png",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    assert "68% interval" in proc.stdout and "95% interval" in proc.stdout
    assert "NUTS" in proc.stderr  # the progress bar
    doc = json.loads((tmp_path / "out.json").read_text())
    assert set(doc["posterior"]) == {"J", "E0_meV"} and set(doc["profile"]) == {"E0_meV"}
    for name, truth in TRUTH.items():
        q = doc["posterior"][name]
        assert set(q) == {"median", "q2.5", "q16", "q84", "q97.5"}
        assert q["q2.5"] < q["q16"] < q["median"] < q["q84"] < q["q97.5"]
        assert q["q2.5"] < truth < q["q97.5"], (name, q)
        half = 0.5 * (q["q84"] - q["q16"])
        err = doc["stderr"][name]
        assert abs(half / err - 1.0) < 0.10, (name, half, err)
        assert abs(q["median"] - doc["params"][name]) < 0.15 * err, (name, q, doc["params"])
        assert doc["diagnostics"]["rhat"][name] < 1.01
        assert doc["diagnostics"]["ess"][name] >= 400
    assert doc["diagnostics"]["divergences"] == 0
    assert doc["diagnostics"]["chains"] == 4 and doc["diagnostics"]["draws"] == 1000
    # The profile's 68% interval against the posterior's (two independent routes to the same
    # interval on near-Gaussian data; the posterior quantiles carry ~2-4% of a stderr of noise).
    lo, hi = doc["profile"]["E0_meV"]["intervals"]["68"]
    q, err = doc["posterior"]["E0_meV"], doc["stderr"]["E0_meV"]
    assert abs(lo - q["q16"]) < 0.1 * err and abs(hi - q["q84"]) < 0.1 * err, (lo, hi, q)
    assert (tmp_path / "fit_profile.png").stat().st_size > 10_000
    corner = tmp_path / "fit_corner.png"
    assert f"wrote {corner.name}" in proc.stdout.replace(str(tmp_path) + "/", "")
    assert corner.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and corner.stat().st_size > 20_000
    assert outputs.written_by_jaxmi(corner, outputs.PICTURE)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prior", "E0_meV=10", "--posterior"], r"--prior: expected NAME=MEAN\+-SD"),
        (["--prior", "E0_meV=10+-2"], r"--prior needs --posterior"),
    ],
)
def test_cli_bad_prior_exit_2_one_line(tmp_path, args, message):
    import subprocess

    (tmp_path / "data.csv").write_text("T,G\n5,0.98\n6,0.97\n7,0.96\n")
    proc = subprocess.run(
        [*jaxmi_command(), "fit", "data.csv", "--free", "J,E0_meV", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("jaxmi: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert re.search(message, proc.stderr), proc.stderr


def test_profile_matches_stderr_and_a_fixed_refit():
    G = _data()
    r = jaxmi.fit(
        T, None, G, SIGMA, free="J,E0_meV", start={"J": 0.2, "E0_meV": 8.0}, profile="J,E0_meV"
    )
    assert set(r.profiles) == {"J", "E0_meV"}
    for name, prof in r.profiles.items():
        lo, hi = prof.intervals["68"]
        err = r.stderr[name]
        assert abs(lo - (r.params[name] - err)) < 0.05 * err, (name, lo, err)
        assert abs(hi - (r.params[name] + err)) < 0.05 * err, (name, hi, err)
        lo95, hi95 = prof.intervals["95"]
        assert lo95 < lo and hi < hi95 and prof.converged
        assert prof.delta_chi2.min() == 0.0 and np.all(np.diff(prof.values) > 0)
    # One profile point against a fit with E0 fixed there.
    prof = r.profiles["E0_meV"]
    j = int(np.argmax(prof.values > r.params["E0_meV"] + 1.5 * r.stderr["E0_meV"]))
    fixed = jaxmi.fit(
        T, None, G, SIGMA, free="J", start={"J": 0.25}, fix={"E0_meV": float(prof.values[j])}
    )
    assert fixed.chi2 - r.chi2 == pytest.approx(prof.delta_chi2[j], rel=1e-6, abs=1e-8)
    doc = r.to_json()["profile"]["J"]
    assert set(doc) == {"values", "delta_chi2", "intervals", "converged"}
    assert set(doc["intervals"]) == {"68", "95"}
    assert "profile E0_meV: 68% [" in r.summary()


@pytest.mark.slow
def test_profile_open_in_the_t4_regime():
    T4 = np.linspace(1.0, 12.0, 30)
    G = _closed_form(0.3, 10.0, T4) + 1e-4 * np.random.default_rng(1).normal(size=T4.shape)
    with pytest.warns(jaxmi.errors.FitWarning) as caught:
        r = jaxmi.fit(
            T4, None, G, 1e-4, free="J,E0_meV", start={"J": 0.2, "E0_meV": 8.0}, profile="E0_meV"
        )
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("near-degenerate: J and E0_meV") for m in messages), messages
    assert any(m.startswith("profile of E0_meV: the 95% interval is") for m in messages)
    lo, hi = r.profiles["E0_meV"].intervals["95"]
    assert hi is None and lo is not None and lo < r.params["E0_meV"]
    assert "open on the upper side" in " ".join(r.notes)


def test_profile_of_a_fixed_parameter_is_refused():
    with pytest.raises(FitError, match=r"profile: 'Jx' is not a free parameter"):
        jaxmi.fit(T, None, _data(), SIGMA, free="J,E0_meV", start={"E0_meV": 8.0}, profile="Jx")
