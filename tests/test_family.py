"""The model family (issue 9): reductions to the paper path, symmetries, invariants, the gated
isotropic closed form and its low-T law, gradients w.r.t. mu0 and texture parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

import jaxmi
from jaxmi import analytic, family
from jaxmi.config import Config
from jaxmi.model import CustomTexture, Model, Polynomial, PowerLaw
from jaxmi.strategy import Strategy

SPINS = (0.5, 1.0, 1.5)
#: The general path, forced (jaxmi.strategy.choose(Model()) is the paper path's).
GENERAL = Strategy("power-law-contour", "spin-s")
# Couplings and biases are 0 or at least 1e-100 in size: below that, products such as
# J_j J_l V underflow, and the two paths lose them differently (hypothesis found J = V = 1e-125:
# paper path 0, general path -J^2/2; and J ~ 1e-274, where J_j J_l is 0 on both).
coupling = st.one_of(st.just(0.0), st.floats(1e-100, 1.0), st.floats(1e-100, 1.0).map(lambda x: -x))
temperature = st.one_of(st.just(0.0), st.floats(0.005, 0.3))
bias = st.one_of(st.just(0.0), st.floats(1e-100, 2.0), st.floats(1e-100, 2.0).map(lambda x: -x))


def _scale(J) -> float:
    """The size of the O(J^2) terms that the conductance is built from."""
    return float(np.sum(np.square(J)))


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(st.lists(coupling, min_size=3, max_size=3), temperature, bias)
def test_reduces_to_the_paper_path(J, T, V):
    # Diagonal J, mu0 = 0, theta = eps^2, S = 1/2 on the general path (forced: the power-law
    # contour over the whole line, generic 3x3 Bloch solve, no closed-form texture-free part)
    # against the paper path (half-line contour, y-decoupled 2x2 solve on a closed-form free
    # state). Tolerance 1e-13 of max(|G|, 1e-2 J^2): relative where the conductance is not an
    # accidental cancellation of its O(J^2) terms; where it is (|Jx| ~ |Jy|, |G| << J^2) the
    # general path's floor is ~1e-16 J^2 (measured 7e-14 at worst over 400 random points).
    J = np.array(J)
    paper = jaxmi.evaluate(J, T, V)
    general = family.points(
        jnp.asarray(J)[None], jnp.array([T]), jnp.array([V]), Model(), Config(), GENERAL
    )
    floor = 1e-2 * _scale(J) + 1e-300
    for name in ("conductance", "current"):
        a, b = float(getattr(general, name)[0]), float(getattr(paper, name))
        assert abs(a - b) <= 1e-13 * max(abs(b), floor), (name, a, b)
    # The spin: both paths return the state reached from rho = 1/2 through a resolvent with a
    # relative shift 1e-24 (docs/physics.md, "Degenerate generators"), but the paper path has the
    # texture-free state in closed form and so stays exact when a coupling is tiny against the
    # others; the general path's spin then feels the shift (e.g. Jx = Jy = 4e-56, Jz = 1: rates
    # 1e-111 of the largest). Compared where every non-zero coupling is >= 1e-6 of the largest.
    nonzero = np.abs(J[J != 0])
    if nonzero.size == 0 or nonzero.min() >= 1e-6 * nonzero.max():
        np.testing.assert_allclose(np.asarray(general.spin[0]), np.asarray(paper.spin), atol=1e-14)


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(-0.6, 0.6, (3, 3)),
        float(10 ** rng.uniform(-1.7, -0.6)),
        float(rng.uniform(-1, 1)),
        float(rng.uniform(-0.8, 0.8)),
        Rotation.random(random_state=seed).as_matrix(),
    )


@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(st.sampled_from(SPINS), st.integers(0, 2**31 - 1))
def test_impurity_frame_rotation(spin, seed):
    # J -> R J rotates the impurity's spin frame: H_int -> U H_int U^dagger, so rho -> U rho U^+,
    # <S> -> R <S> and the conductance is unchanged. 1e-12: roundoff of the solve, relative to
    # the O(J^2) scale (conductance) and to |S| (spin).
    J, T, V, mu0, R = _random_case(seed)
    model = Model(spin=spin, exchange="tensor", mu0=mu0, texture=PowerLaw(0.9, 2.0))
    a = jaxmi.evaluate(J, T, V, model=model)
    b = jaxmi.evaluate(R @ J, T, V, model=model)
    assert float(b.conductance) == pytest.approx(float(a.conductance), abs=1e-12 * _scale(J))
    np.testing.assert_allclose(np.asarray(b.spin), R @ np.asarray(a.spin), atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("spin", SPINS)
def test_axial_exchange_without_texture_carries_no_current(spin):
    # theta = 0 and Jxx = Jyy, no off-diagonals: H_int conserves total S^z + sigma^z/2, so there is
    # no net backscattering for any S, T, V (the texture-free formula -V (Jx^2 - Jy^2)^2 / ...
    # for S = 1/2). Absolute floor 1e-15 of the O(J^2 (|V| + T)) terms.
    flat = Polynomial((0.0,))
    rng = np.random.default_rng(7)
    for _ in range(4):
        a, c = rng.uniform(-1, 1, 2)
        T, V, mu0 = float(rng.uniform(0, 0.3)), float(rng.uniform(-2, 2)), rng.uniform(-1, 1)
        out = jaxmi.evaluate([a, a, c], T, V, model=Model(spin=spin, mu0=mu0, texture=flat))
        scale = (2 * a * a + c * c) * (abs(V) + T)
        assert abs(float(out.current)) <= 1e-15 * scale
        assert abs(float(out.conductance)) <= 1e-14 * (2 * a * a + c * c)


@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(st.sampled_from(SPINS), st.integers(0, 2**31 - 1))
def test_current_odd_in_bias_at_zero_gate(spin, seed):
    # mu0 = 0 and an even texture: eps -> -eps maps the V window onto the -V one. 1e-13 of the
    # O(J^2 |V|) scale of the terms.
    J, T, V, _, _ = _random_case(seed)
    model = Model(spin=spin, exchange="tensor", texture=PowerLaw(1.2, 2.0))
    out = jaxmi.evaluate(J, T, [V, -V], model=model)
    assert float(out.current[1]) == pytest.approx(-float(out.current[0]), abs=1e-13 * _scale(J))
    assert float(out.conductance[1]) == pytest.approx(float(out.conductance[0]), abs=1e-12)


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(st.sampled_from((*SPINS, 2.0, 2.5)), st.integers(0, 2**31 - 1))
def test_density_matrix_is_a_state(spin, seed):
    # Hermitian, trace 1, positive semidefinite for every S (up to 5/2 here): 1e-14 (roundoff of
    # d x d sums).
    rng = np.random.default_rng(seed)
    J = rng.uniform(-1, 1, (16, 3, 3))
    T = rng.uniform(1e-3, 0.3, 16)  # |V|/2T <= 1000: inside the validated domain
    T[0] = 0.0
    V = rng.uniform(-2, 2, 16)
    rho = np.asarray(
        jaxmi.density_matrix(J, T, V, model=Model(spin=spin, exchange="tensor", mu0=0.3))
    )
    d = int(2 * spin + 1)
    assert rho.shape == (16, d, d)
    np.testing.assert_allclose(rho, np.conj(np.swapaxes(rho, -1, -2)), atol=1e-14)
    np.testing.assert_allclose(np.trace(rho, axis1=-2, axis2=-1), 1.0, atol=1e-14)
    assert np.linalg.eigvalsh(rho).min() >= -1e-14


@pytest.mark.slow
def test_grid_matches_direct_path():
    # The factorized family path is the same algebra in another order: 1e-13 of the J^2 scale.
    rng = np.random.default_rng(5)
    J = rng.uniform(-1, 1, (5, 3, 3))
    T, V = np.array([0.0, 0.05, 0.2]), np.array([0.4, 0.0, -1.0])
    model = Model(spin=1.0, exchange="tensor", mu0=-0.4, texture=Polynomial((0.0, 0.2, 0.9)))
    grid = jaxmi.evaluate_grid(J, T, V, model=model)
    direct = jaxmi.evaluate(J[:, None], T, V, model=model)
    scale = 1e-13 * np.sum(J**2, axis=(1, 2))[:, None]
    assert np.all(np.abs(grid.conductance - direct.conductance) <= scale)
    np.testing.assert_allclose(grid.density_matrix, direct.density_matrix, atol=1e-13)


# --- the gated isotropic closed form --------------------------------------------------------


@pytest.mark.parametrize(
    "spin", [0.5, *(pytest.param(s, marks=pytest.mark.slow) for s in SPINS[1:])]
)
@pytest.mark.parametrize(
    "T, mu0", [(0.005, 0.6), (0.02, 0.8), (0.05, -0.5), (0.1, 0.3), (0.3, 1.0)]
)
def test_gated_isotropic_closed_form(spin, T, mu0):
    # dG = -(4/3) S(S+1) J^2 (1 - |A|^2), exact within the model, against an independent numpy
    # rule (analytic.gate_variance). 1e-10 relative (issue 9); measured <= 1e-12.
    J = 0.3
    engine = float(jaxmi.conductance([J, J, J], T, 0.0, model=Model(spin=spin, mu0=mu0)))
    assert engine == pytest.approx(analytic.gate_isotropic_exact(J, T, mu0, spin), rel=1e-10)


def test_gated_closed_form_is_eq16_at_zero_gate():
    # At mu0 = 0 the variance is 1 - (Ic^2 + Is^2) of Eq. 16 (a different rule): 1e-13 relative.
    for T in (0.02, 0.1, 0.4):
        x = analytic.script_t(T)
        eq16 = 1.0 - float(analytic.ic(x)) ** 2 - float(analytic.is_(x)) ** 2
        assert analytic.gate_variance(T, 0.0) == pytest.approx(eq16, rel=1e-12)


@pytest.mark.parametrize("mu0", [0.2, 0.5, 1.0])
def test_gated_low_t_law(mu0):
    # The low-T law keeps the T^2 and T^4 terms, so its error is O(T^6): the engine's remainder
    # divided by T^6 must settle to a constant (the exponent from successive halvings is
    # 6 +- 0.2) and the T^2 law alone must err by a relative O(T^2) (exponent 2 +- 0.1).
    J = 0.3
    Ts = np.array([0.008, 0.004, 0.002])
    g = np.array([float(jaxmi.conductance([J] * 3, T, 0.0, model=Model(mu0=mu0))) for T in Ts])
    law = np.array([analytic.gate_isotropic_low_t(J, T, mu0) for T in Ts])
    rest = np.abs(g - law)
    slopes = np.log2(rest[:-1] / rest[1:])
    assert np.all(np.abs(slopes - 6.0) < 0.2), slopes  # 6.17, 6.04 at mu0 = 1 (T^8 terms)
    leading = -(64 * np.pi**2 / 9) * 0.75 * J**2 * mu0**2 * Ts**2
    rel = np.abs(g / leading - 1)
    assert np.all(np.abs(np.log2(rel[:-1] / rel[1:]) - 2.0) < 0.1)


# --- gradients -----------------------------------------------------------------------------


def _central(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, build, x0",
    [
        ("mu0", lambda x: Model(spin=1.0, mu0=x), 0.35),
        ("scale", lambda x: Model(mu0=0.2, texture=PowerLaw(x, 2.0)), 0.9),
        ("exponent", lambda x: Model(mu0=0.5, texture=PowerLaw(1.0, x)), 2.5),
        ("poly", lambda x: Model(spin=1.5, mu0=-0.3, texture=Polynomial((0.0, x, 1.0))), 0.2),
        (
            "custom",
            lambda x: Model(
                texture=CustomTexture(lambda e, p: p * jnp.tanh(e / 0.4) ** 2, x), mu0=0.1
            ),
            0.7,
        ),
    ],
)
def test_gradients_match_finite_differences(name, build, x0):
    # Forward-mode gradient of the conductance w.r.t. a model parameter against a central
    # difference (h = 1e-4: truncation ~h^2 G''' ~ 1e-9, roundoff ~1e-16/h ~ 1e-12 relative).
    # Issue 9 asks 1e-6 relative.
    J, T, V = jnp.array([0.3, -0.2, 0.4]), 0.07, 0.12

    def g(x):
        return family.point(J, jnp.asarray(T), jnp.asarray(V), build(x), Config()).conductance

    grad = float(jax.grad(g)(x0))
    fd = float(_central(g, x0, 1e-4))
    assert grad == pytest.approx(fd, rel=1e-6), name


@pytest.mark.slow
def test_zero_temperature_zero_bias_is_the_right_limit():
    # At T = V = 0 the rates vanish; the conductance is the T = 0 limit V -> 0 (a gate makes it
    # differ from the linear-response limit T -> 0 at V = 0, which the second check shows).
    # rtol 1e-6: the V = 1e-7 values differ from the limit by O(V) relative.
    model = Model(mu0=0.4)
    J = [0.3, 0.2, 0.25]
    g = np.asarray(jaxmi.conductance(J, 0.0, [0.0, 1e-7, -1e-7], model=model))
    np.testing.assert_allclose(g[1:], g[0], rtol=1e-6)
    lin = float(jaxmi.conductance(J, 1e-4, 0.0, model=model))
    assert abs(lin - g[0]) > 1e-3 * abs(g[0])


# --- the model object and bad input ---------------------------------------------------------


def test_paper_model_takes_the_paper_path():
    assert Model().is_paper()
    assert not Model(mu0=0.1).is_paper()
    assert not Model(spin=1).is_paper()
    assert not Model(texture=PowerLaw(1.0, 3.0)).is_paper()
    J = [0.2, 0.1, 0.3]
    assert float(jaxmi.conductance(J, 0.1, 0.2, model=Model())) == float(
        jaxmi.conductance(J, 0.1, 0.2)
    )


@pytest.mark.parametrize(
    "kwargs, J, message",
    [
        ({"spin": 0.7}, [0.1] * 3, "Model.spin must be 1/2, 1, 3/2"),
        ({"spin": 0}, [0.1] * 3, "Model.spin"),
        ({"exchange": "full"}, [0.1] * 3, "Model.exchange must be one of"),
        ({"mu0": float("nan")}, [0.1] * 3, "Model.mu0 must be a finite"),
        ({"texture": PowerLaw(-1.0, 2.0)}, [0.1] * 3, "PowerLaw.scale must be"),
        ({"exchange": "tensor"}, [0.1] * 3, "exchange tensor"),
        # a batch of three diagonal couplings: fine (compiles the spin-1 path for 3 points)
        pytest.param({"spin": 1.0}, np.eye(3) * 0.1, None, marks=pytest.mark.slow),
    ],
)
def test_bad_models_are_refused(kwargs, J, message):
    if message is None:
        assert jaxmi.conductance(J, 0.1, 0.1, model=Model(**kwargs)).shape == (3,)
        return
    with pytest.raises(jaxmi.DomainError, match=message):
        jaxmi.conductance(J, 0.1, 0.1, model=Model(**kwargs))


def test_outside_the_family_domain_warns():
    with pytest.warns(jaxmi.AccuracyWarning, match="mu0"):
        jaxmi.conductance([0.1] * 3, 0.5, 0.1, model=Model(mu0=0.2))
    with pytest.warns(jaxmi.AccuracyWarning):
        jaxmi.conductance([0.1] * 3, 0.1, 0.1, model=Model(mu0=1.5))


@pytest.mark.slow
@pytest.mark.parametrize(
    "model",
    [
        Model(mu0=-0.19999999999999996),
        Model(mu0=0.2, texture=PowerLaw(1.0, 4.0)),
        Model(spin=1.5, mu0=0.8, texture=PowerLaw(1.0, 3.5)),
    ],
)
def test_one_effective_coupling_direction_is_finite(model):
    # At T = V = 0 with Jy = 0 the rates' slope is a real rank-1 A (one rotated direction: pure
    # dephasing): the Bloch matrix is singular below its regularisation's roundoff. Found by the
    # sweep tests as NaN for some mu0. The state reached from 1/d is 1/d, and the conductance is
    # the V -> 0+ limit (V = 1e-9 agrees to 1e-8 relative: the O(V) drift).
    out = jaxmi.evaluate([0.25, 0.0, 0.35], 0.0, [0.0, 1e-9], model=model)
    g = np.asarray(out.conductance)
    assert np.all(np.isfinite(g)) and g[0] == pytest.approx(g[1], rel=1e-8)
    d = int(2 * model.spin + 1)
    np.testing.assert_allclose(np.asarray(out.density_matrix[0]), np.eye(d) / d, atol=1e-15)


@pytest.mark.slow
def test_rank_one_exchange_tensor_dephases():
    # J = u w^T couples only S.u: pure dephasing in the S.u basis, so rho = 1/2 stays, and values
    # and J-gradients are finite at T > 0.
    J = np.outer([0.3, 0.1, -0.2], [0.5, 0.2, 0.1])
    model = Model(exchange="tensor", mu0=0.3)
    out = jaxmi.evaluate(J, 0.1, 0.2, model=model)
    np.testing.assert_allclose(np.asarray(out.spin), 0.0, atol=1e-15)
    grad = jax.grad(lambda j: jaxmi.conductance(j, 0.1, 0.2, model=model))(jnp.asarray(J))
    assert np.all(np.isfinite(np.asarray(grad)))
