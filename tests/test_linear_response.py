"""Linear response against the paper's exact closed forms, Eqs. 13 and 14.

Eq. 14 (dG_L) and Eq. 13 (rho to first order in V) are exact within the model for any diagonal
J and any T/vFk0; jaxmi.analytic evaluates them with Ic, Is to ~1e-15 (test_analytic.py).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmi
from jaxmi import analytic

# >= 20 coupling vectors: isotropic, easy-axis, easy-plane, generic, Jy = 0, Jy = Jz = 0 ...
COUPLINGS = np.array(
    [
        [0.25, 0.25, 0.25],  # isotropic (Fig. 2 black)
        [0.25, 0.0, 0.35],  # Fig. 2 blue
        [0.25, 0.0, 0.25],  # Fig. 2 green: T-independent
        [0.25, 0.0, 0.0],  # Fig. 2 red: Jy = Jz = 0 (pure dephasing generator)
        [0.7, 0.7, 0.7],
        [-0.4, -0.4, -0.4],
        [0.3, 0.3, 0.6],  # easy axis z
        [0.3, 0.3, 0.1],  # easy plane xy
        [0.5, 0.1, 0.1],  # easy axis x
        [0.1, 0.5, 0.1],  # easy axis y
        [0.3, -0.5, 0.7],  # generic
        [0.9, 0.1, -0.4],
        [-0.2, 0.8, 0.3],
        [0.6, 0.2, 0.0],  # Jz = 0
        [0.6, 0.0, 0.2],  # Jy = 0
        [0.2, 0.0, 0.6],  # Jy = 0, Jz > Jx
        [0.0, 0.5, 0.3],  # Jx = 0
        [0.0, 0.5, 0.0],  # Jy only
        [1.0, -1.0, 0.5],
        [0.05, 0.9, 0.9],
        [0.33, 0.31, 0.29],  # near-isotropic
        [0.8, 0.0, 0.8],
    ]
)
TEMPERATURES = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.5])


def test_eq14_linear_conductance():
    # Eq. 14, exact in linear response; rtol 1e-10 (issue 2). Measured worst ~1e-12 (the
    # isotropic T^4 cancellation at T = 0.02); the quadrature itself is converged to ~1e-15
    # (test_convergence.py).
    J = np.repeat(COUPLINGS[:, None, :], len(TEMPERATURES), axis=1)
    T = np.broadcast_to(TEMPERATURES, J.shape[:-1])
    got = np.asarray(jaxmi.conductance(J, T, 0.0))
    want = np.asarray(analytic.eq14_linear_conductance(J, T))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)


@pytest.mark.parametrize("T", [0.02, 0.1, 0.5])
def test_eq13_linear_response_state(T):
    # Eq. 13, exact to first order in V: d<S>/dV at V = 0 by forward-mode autodiff. Needs Jy != 0
    # (the printed ratios are 0/0 otherwise). atol 1e-12 on slopes of size ~1/T: quadrature and
    # roundoff are ~1e-15 relative.
    J = COUPLINGS[COUPLINGS[:, 1] != 0]
    slope = jax.jvp(lambda v: jaxmi.spin(J, T, v), (jnp.zeros(len(J)),), (jnp.ones(len(J)),))[1]
    want = analytic.eq13_spin_slope(J, T)
    np.testing.assert_allclose(np.asarray(slope), np.asarray(want), rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_eq13_spin_vanishes_at_zero_bias():
    # Eq. 13: rho = 1/2 + O(V); the zeroth order is the unpolarised state, exactly.
    s = jaxmi.spin(COUPLINGS, 0.1, 0.0)
    np.testing.assert_array_equal(np.asarray(s), 0.0)


def test_fig2_green_curve_is_temperature_independent():
    # DESIGN.md section 2: Jy = 0, Jz = Jx gives dG = -Jx^2/2 at every T, also at T = 0 and with
    # bias (the texture drops out identically): rtol 1e-13 (roundoff only).
    T, V = np.array(list(itertools.product([0.0, 1e-3, 0.1, 0.7], [0.0, 0.3, -1.2]))).T
    got = jaxmi.conductance([0.25, 0.0, 0.25], T, V)
    np.testing.assert_allclose(np.asarray(got), -(0.25**2) / 2, rtol=1e-13)


@pytest.mark.slow
def test_pure_dephasing_red_curve():
    # DESIGN.md section 2: Jy = Jz = 0 (singular generator) gives -Jx^2/4 (1 + Ic(2 scriptT)),
    # tending to -Jx^2/2 only as T -> 0. Exact; rtol 1e-12.
    T = np.array([1e-3, 0.05, 0.2, 0.5])
    got = jaxmi.conductance([0.25, 0.0, 0.0], T, 0.0)
    want = -(0.25**2) / 4 * (1 + analytic.ic(2 * analytic.script_t(T)))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12)
    assert float(got[0]) == pytest.approx(-(0.25**2) / 2, rel=1e-9)
