"""Physical limits, degenerate generators, gradients, dtypes and input errors (issue 2, item 5)."""

import os
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from quick import first_quick

import jaxmi


def _fd(f, x, h):
    """Central difference with one Richardson step: error O(h^4)."""
    d1 = (f(x + h) - f(x - h)) / (2 * h)
    d2 = (f(x + h / 2) - f(x - h / 2)) / h
    return (4 * d2 - d1) / 3


def test_zero_temperature_is_the_limit_of_small_temperature():
    # T = 0 has its own exact code path (step windows, Leibniz term of the moving window edge).
    # The T -> 0 approach is linear in T/V (Eq. 18's 1 + 4/u at large u, test_asymptotics.py), so
    # compare the T = 0 value with a linear extrapolation from u = 1000 and 2000: rtol 1e-5.
    J, V = [0.3, -0.5, 0.7], 0.4
    g0 = float(jaxmi.conductance(J, 0.0, V))
    g1, g2 = (float(jaxmi.conductance(J, V / (2 * u), V)) for u in (1000.0, 2000.0))
    assert 2 * g2 - g1 == pytest.approx(g0, rel=1e-5)


def test_zero_temperature_zero_bias_is_the_texture_free_limit():
    # T = V = 0: no phase space, the texture drops out: dG = -(Jx^2-Jy^2)^2 / (2 (Jx^2+Jy^2))
    # (Eq. 14 at T -> 0) and rho = 1/2 (no rates at all: the state reached from rho = 1/2).
    J = np.array([0.3, -0.5, 0.7])
    out = jaxmi.evaluate(J, 0.0, 0.0)
    want = -((J[0] ** 2 - J[1] ** 2) ** 2) / (2 * (J[0] ** 2 + J[1] ** 2))
    assert float(out.conductance) == pytest.approx(want, rel=1e-14)
    assert float(out.current) == 0.0
    np.testing.assert_array_equal(np.asarray(out.density_matrix), 0.5 * np.eye(2))


@pytest.mark.parametrize(
    "J", [[0.3, 0.0, 0.0], [0.0, 0.3, 0.0], [0.0, 0.0, 0.3], [0.0, 0.0, 0.0], [0.3, 0.0, 1e-30]]
)
@pytest.mark.parametrize("TV", [(0.1, 0.0), (0.1, 0.3), (0.0, 0.3), (0.0, 0.0)])
def test_degenerate_generator_reached_from_half(J, TV):
    # A single non-zero coupling is pure dephasing: every rho diagonal in that spin axis is
    # stationary. DESIGN.md: return the state reached from rho = 1/2, i.e. rho = 1/2 exactly,
    # finite values and finite gradients (w.r.t. J, T, V).
    T, V = TV
    out = jaxmi.evaluate(J, T, V)
    np.testing.assert_allclose(np.asarray(out.density_matrix), 0.5 * np.eye(2), atol=1e-15)
    grads = jax.grad(lambda j, t, v: jaxmi.conductance(j, t, v), argnums=(0, 1, 2))(
        jnp.asarray(J), jnp.asarray(T), jnp.asarray(V)
    )
    for g in grads:
        assert np.all(np.isfinite(np.asarray(g)))


def test_rank_one_block_whose_determinant_rounds_to_zero():
    # Reference: exact arithmetic. M = -(1, 2)(1, 2)^T has det(M / s) = 0.25 - 0.25 = 0 exactly
    # in float64, and delta = 1e-24 is lost beside it; with a zero drive the reached state is 0
    # (it was 0 / 0 = NaN: the family's spin-1/2 solve at T = V = 0, J = (0.25, 0, 0.35),
    # mu0 = 0.2, PowerLaw(exponent=1.5) met it), with a finite gradient.
    from jaxmi.stationary import reached_state_solve

    m = tuple(jnp.asarray(x) for x in (-1.0, -2.0, -2.0, -4.0))
    assert float(m[0] / 4 * m[3] / 4 - m[1] / 4 * m[2] / 4) == 0.0
    x = reached_state_solve(m, (jnp.asarray(0.0), jnp.asarray(0.0)), 1e-24)
    assert [float(v) for v in x] == [0.0, 0.0]
    grads = jax.grad(lambda a: sum(reached_state_solve((a, *m[1:]), (0.0, 0.0), 1e-24)))(m[0])
    assert np.isfinite(float(grads))


def test_degenerate_state_against_least_squares():
    # The reached state from the regularized resolvent must equal the minimum-norm least-squares
    # solution of M r = -b when the null space is orthogonal to the drive (single coupling:
    # b = 0, M symmetric): both are r = 0. Near-degenerate J = (0.3, 1e-4, 1e-4) is unique and
    # continuous: compare with an lstsq solve of the same Bloch system (rtol 1e-8).
    from jaxmi.generator import bloch_map, coupling_matrices
    from jaxmi.integrals import coefficients

    J = jnp.array([0.3, 1e-4, 1e-4])
    k0, dk, _, _ = coupling_matrices(coefficients(0.1, 0.2))
    jj = (J[:, None] * J[None, :]).reshape(9)
    mb = np.asarray(jnp.tensordot(jj, bloch_map(k0 + dk), axes=1))  # full 3x3 Bloch system
    r_lstsq = np.linalg.lstsq(mb[:, 1:], -mb[:, 0], rcond=None)[0]
    r = 2 * np.asarray(jaxmi.spin(J, 0.1, 0.2))
    np.testing.assert_allclose(r, r_lstsq, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize(
    "J, T, V",
    [
        ([0.3, -0.5, 0.7], 0.1, 0.05),
        ([0.25, 0.25, 0.25], 0.05, 0.02),
        ([0.25, 0.0, 0.35], 0.2, 0.0),
        ([0.3, 0.0, 0.0], 0.1, 0.1),  # degenerate generator
        ([0.3, -0.5, 0.7], 0.0, 0.3),  # T = 0
    ],
)
def test_gradients_against_finite_differences(J, T, V):
    # Gradients w.r.t. J, T and V of conductance (what fitting uses) against Richardson central
    # differences, h = 1e-3 relative: truncation O(h^4) ~ 1e-12, roundoff ~1e-16/h ~ 1e-13.
    # rtol 1e-7 leaves room for both, atol 1e-10 for derivatives that vanish. At T = 0 only J, V
    # (the T-derivative at exactly T = 0 is one-sided and not defined here).
    J = np.asarray(J, float)
    gJ, gT, gV = jax.grad(jaxmi.conductance, argnums=(0, 1, 2))(J, T, V)
    for k in range(3):
        e = np.eye(3)[k]
        fd = _fd(lambda x, e=e: float(jaxmi.conductance(J + x * e, T, V)), 0.0, 1e-3)
        assert float(gJ[k]) == pytest.approx(fd, rel=1e-7, abs=1e-10)
    fd_v = _fd(lambda x: float(jaxmi.conductance(J, T, x)), V, 1e-3 * max(T, 0.1))
    assert float(gV) == pytest.approx(fd_v, rel=1e-6, abs=1e-10)
    if T > 0:
        fd_t = _fd(lambda x: float(jaxmi.conductance(J, x, V)), T, 1e-3 * T)
        assert float(gT) == pytest.approx(fd_t, rel=1e-6, abs=1e-10)


def test_conductance_is_d_current_dv():
    # Contract: conductance == d current / dV exactly (same units). Against finite differences of
    # the current: rtol 1e-8 (h = 1e-3, Richardson).
    J, T = np.array([0.3, -0.5, 0.7]), 0.15
    for V in [0.0, 0.1, 0.8]:
        fd = _fd(lambda v: float(jaxmi.current(J, T, v)), V, 1e-3)
        assert float(jaxmi.conductance(J, T, V)) == pytest.approx(fd, rel=1e-8, abs=1e-13)


def test_outputs_are_float64():
    out = jaxmi.evaluate([0.3, 0.2, 0.1], 0.1, 0.1)
    assert out.conductance.dtype == jnp.float64
    assert out.current.dtype == jnp.float64
    assert out.spin.dtype == jnp.float64
    assert out.density_matrix.dtype == jnp.complex128


@pytest.mark.slow
def test_broadcasting_shapes():
    J = np.full((4, 1, 3), 0.2)
    T = np.linspace(0.01, 0.3, 5)
    out = jaxmi.evaluate(J, T, 0.1)
    assert out.current.shape == (4, 5)
    assert out.conductance.shape == (4, 5)
    assert out.spin.shape == (4, 5, 3)
    assert out.density_matrix.shape == (4, 5, 2, 2)
    assert jaxmi.conductance([0.1, 0.2, 0.3], 0.1, np.zeros((2, 3))).shape == (2, 3)


@pytest.mark.slow
def test_jit_and_vmap_compatible():
    f = jax.jit(lambda j, t, v: jaxmi.conductance(j, t, v))
    a = f(jnp.array([0.3, 0.2, 0.1]), 0.1, 0.05)
    b = jax.vmap(lambda t: jaxmi.conductance(jnp.array([0.3, 0.2, 0.1]), t, 0.05))(
        jnp.array([0.1, 0.2])
    )
    assert float(a) == pytest.approx(float(b[0]), rel=1e-15)


@pytest.mark.parametrize(
    "args, message",
    [
        (([0.1, 0.2], 0.1, 0.0), "J must have shape (..., 3) for (Jx, Jy, Jz), got shape (2,)"),
        ((0.1, 0.1, 0.0), "J must have shape (..., 3) for (Jx, Jy, Jz), got shape ()"),
        (([0.1, 0.2, 0.3], -0.1, 0.0), "T must be >= 0 (units of vF*k0), got -0.1 at index ()"),
        (([0.1, 0.2, 0.3], np.nan, 0.0), "T must be finite, got nan at index ()"),
        (([0.1, np.inf, 0.3], 0.1, 0.0), "J must be finite, got inf at index (1,)"),
        (([0.1, 0.2, 0.3], 0.1, [0.0, np.nan]), "V must be finite, got nan at index (1,)"),
        (([0.1, 0.2, 0.3], [0.1, 0.2], [0.0, 0.1, 0.2]), "J (..., 3), T and V must broadcast"),
        (([0.1, 0.2, 0.3], 0.1, 1j), "V must be real, got dtype complex128"),
        ((["a", "b", "c"], 0.1, 0.0), "J must be real"),
    ],
)
def test_bad_input_clear_error(args, message):
    with pytest.raises(jaxmi.DomainError) as info:
        jaxmi.conductance(*args)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_outside_validated_domain_warns():
    with pytest.warns(jaxmi.AccuracyWarning, match="outside the validated domain"):
        jaxmi.conductance([0.1, 0.2, 0.3], 2.0, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jaxmi.conductance([0.1, 0.2, 0.3], 1.0, 2.0)  # edge of the domain: no warning


def test_bad_config_clear_error():
    with pytest.raises(jaxmi.ConfigError, match="Config.order must be an integer >= 2, got 1"):
        jaxmi.Config(order=1)


def test_config_must_be_a_config():
    # A dict (or anything else) as config= is one ConfigError saying what to write instead,
    # from every public function with config= (jax.jit would say "Non-hashable static
    # arguments"), before anything is computed.
    import jaxmi.fitting
    from jaxmi.validate import run_validation

    J, T, V = [0.25, 0.25, 0.25], 0.1, 0.0
    want = "config must be a jaxmi.Config, got dict; use jaxmi.Config(order=16)"
    calls = [
        lambda c: jaxmi.conductance(J, T, V, config=c),
        lambda c: jaxmi.current(J, T, V, config=c),
        lambda c: jaxmi.spin(J, T, V, config=c),
        lambda c: jaxmi.density_matrix(J, T, V, config=c),
        lambda c: jaxmi.evaluate(J, T, V, config=c),
        lambda c: jaxmi.evaluate_grid([J], [T], [V], config=c),
        lambda c: jaxmi.fit([1.0, 2.0], None, [1.0, 1.0], free="J", fix={"E0_meV": 1}, config=c),
        lambda c: jaxmi.fitting.model({"J": 0.2, "E0_meV": 10.0}, [4.0], [0.0], config=c),
        lambda c: run_validation(c),
    ]
    for call in calls:
        with pytest.raises(jaxmi.ConfigError) as info:
            call({"order": 16})
        assert str(info.value) == want
    with pytest.raises(
        jaxmi.ConfigError,
        match=r"got dict; use jaxmi.Config\(\.\.\.\) with "
        r"options order, .* \('nodes' is not one\)$",
    ):
        jaxmi.conductance(J, T, V, config={"nodes": 16})
    with pytest.raises(jaxmi.ConfigError, match=r"^config must be a jaxmi.Config, got int; use "):
        jaxmi.conductance(J, T, V, config=16)


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )


def test_float32_session_is_refused():
    # An explicit JAX_ENABLE_X64=0 is respected, and jaxmi then refuses to compute.
    r = _run("import jaxmi; jaxmi.conductance([0.1,0.2,0.3],0.1,0.0)", JAX_ENABLE_X64="0")
    assert r.returncode != 0
    assert "jaxmi.errors.PrecisionError: jaxmi needs float64" in r.stderr


def test_physics_core_does_not_import_io():
    # STYLE.md section 1: the physics never imports sweep/IO/CLI code.
    r = _run(
        "import sys, jaxmi, jaxmi.observables, jaxmi.analytic;"
        "bad = [m for m in sys.modules if m == 'h5py' or m.startswith('jaxmi.sweep')"
        " or m == 'jaxmi.cli' or m == 'tqdm'];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    "model",
    first_quick([None, jaxmi.Model(mu0=0.4), jaxmi.Model(spin=1.0, exchange="tensor", mu0=0.3)]),
    ids=("paper", "gate", "spin1-tensor"),
)
def test_vanishing_temperature_is_zero_temperature(model):
    # Reference: the T = 0 path itself. Beyond u = |V|/2T = 1e17 the point is T = 0 to float64
    # (the approach is 1 + 4/u) and the integrals take T = 0 (jaxmi.domain.U_STEP), so the
    # values are bitwise those of T = 0 (before: at T = 1e-300 the held nodes missed the
    # Fermi edges' d f / dV, half the conductance at S = 1, 0.3% at T = 1e-12 on the paper
    # path). Between 2000 and 1e17 the estimate cannot judge the edges: one AccuracyWarning.
    J = [0.3, -0.1, 0.5] if model is None or model.exchange == "diagonal" else np.diag([0.3, 0, 1])
    V = np.array([0.3, -0.043, 1e-12])
    zero = jaxmi.evaluate(J, 0.0, V, model=model)
    for t in (1e-300, 1e-100, 1e-30):
        with warnings.catch_warnings():
            warnings.simplefilter("error", jaxmi.AccuracyWarning)
            tiny = jaxmi.evaluate(J, t, V, model=model)
        for name in ("current", "conductance", "spin", "density_matrix"):
            np.testing.assert_array_equal(getattr(tiny, name), getattr(zero, name), err_msg=name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jaxmi.evaluate(J, 1e-9, 0.3, model=model)  # (its estimate may warn as well)
    assert any("2000 < |V|/2T <= 1e+17" in str(w.message) for w in caught), caught
