"""The generator's structure: the generic 3x3 Bloch system, its x-z reduction, the closed forms.

jaxmi.generator builds the Lindblad generator of Eq. 10 for any Hermitian rate matrix from
explicit Pauli matrices (bloch_map, current_map), then keeps only the x-z block for diagonal J.
These tests check that reduction and the closed-form texture-free parts against the generic
system, solved here with numpy.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxmi
from jaxmi.generator import bloch_map, coupling_matrices, current_map
from jaxmi.integrals import coefficients
from jaxmi.observables import free_current
from jaxmi.stationary import free_polarization

TV = [(0.1, 0.0), (0.3, 0.7), (0.01, 0.5), (0.0, 0.4), (1.0, -2.0)]


def _generic(J, T, V, texture=True):
    """Stationary r and current from the full 3x3 Bloch system (numpy lstsq)."""
    k0, dk, d0, dd = coupling_matrices(coefficients(T, V))
    k, d = (k0 + dk, d0 + dd) if texture else (k0, d0)
    jj = np.outer(J, J).reshape(9)
    mb = np.tensordot(jj, np.asarray(bloch_map(k)), axes=1)  # (3, 4): [b | M]
    r = np.linalg.lstsq(mb[:, 1:], -mb[:, 0], rcond=None)[0]
    c = np.tensordot(jj, np.asarray(current_map(d)), axes=1)  # (4,)
    return r, c[0] + c[1:] @ r, mb


@pytest.mark.parametrize("T, V", TV)
def test_y_component_decouples(T, V):
    # For diagonal J the y row and column of the Bloch system carry no x, z or drive entries
    # (exact zeros: the rotation O is real and about y), so r_y = 0 and the x-z block suffices.
    k0, dk, d0, dd = coupling_matrices(coefficients(T, V))
    m = np.asarray(bloch_map(k0 + dk)).reshape(3, 3, 3, 4)
    assert np.all(m[:, :, 1, [0, 1, 3]] == 0)
    assert np.all(m[:, :, [0, 2], 2] == 0)
    c = np.asarray(current_map(d0 + dd)).reshape(3, 3, 4)
    assert np.all(c[:, :, 2] == 0)


@given(
    st.tuples(*[st.floats(0.05, 1.0) | st.floats(-1.0, -0.05)] * 3),
    st.sampled_from(TV),
)
def test_reduced_solve_equals_generic(J, tv):
    # The engine's 2x2 Cramer solve with the deviation split vs a plain lstsq of the generic
    # 3x3 system: the same physics through different algebra. rtol 1e-9 (the generic solve has
    # no deviation split, so its conditioning costs digits; couplings kept >= 0.05 here).
    T, V = tv
    J = np.array(J)
    r, cur, _ = _generic(J, T, V)
    with warnings.catch_warnings():
        # T = 1: the error estimate's known pessimism there (docs/accuracy.md), not the subject
        warnings.simplefilter("ignore", jaxmi.AccuracyWarning)
        out = jaxmi.evaluate(J, T, V)
    np.testing.assert_allclose(2 * np.asarray(out.spin), r, rtol=1e-9, atol=1e-12)
    assert float(out.current) == pytest.approx(cur, rel=1e-9, abs=1e-13)


@pytest.mark.parametrize("T, V", TV)
def test_texture_free_closed_forms(T, V):
    # The closed forms used for the texture-free part are the exact stationary state and current
    # of the texture-free generic system (any T, V): rtol 1e-13.
    J = np.array([0.3, -0.5, 0.7])
    r, cur, mb = _generic(J, T, V, texture=False)
    from jaxmi.integrals import polarization_factor

    rz0 = float(free_polarization(J, polarization_factor(V, T)))
    np.testing.assert_allclose(r, [0.0, 0.0, rz0], atol=1e-13)
    assert float(free_current(J, V)) == pytest.approx(cur, rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("eps", [0.0, 0.3, 1.1, 0.4 + 0.4j])
def test_texture_rotation_conventions(eps):
    # Eq. 5 and 7: B = cos(theta) + i sigma_y sin(theta), theta = eps^2, and
    # B^dagger sigma_j B = sum_m O_jm sigma_m with O a rotation about y by 2 theta. The generator
    # hard-codes O = B_0 + (cos 2theta - 1) B_1 + sin 2theta B_2; check all three against each
    # other from the 2x2 matrices (exact algebra: atol 1e-15). Complex eps: the contour.
    from jaxmi import texture
    from jaxmi.generator import _B

    b = np.asarray(texture.rotation(eps))
    sig = np.array(texture.SIGMA)
    o = np.asarray(texture.rotation_matrix(eps))
    for j in range(3):
        # B^dagger of the analytic continuation: transpose with the conjugation of real
        # coefficients only (cos, sin of complex theta stay as they are).
        bdag = np.cos(eps**2) * np.eye(2) - 1j * np.sin(eps**2) * sig[1]
        np.testing.assert_allclose(bdag @ sig[j] @ b, np.einsum("m,mab->ab", o[j], sig), atol=1e-15)
    t = 2 * eps**2
    np.testing.assert_allclose(_B[0] + (np.cos(t) - 1) * _B[1] + np.sin(t) * _B[2], o, atol=1e-15)


@pytest.mark.parametrize("T, V", TV)
def test_linear_forms_map_equals_explicit_algebra(T, V):
    # generator() uses the precomputed linear map (15,) -> (6, 13); generator_explicit() runs
    # the Pauli-matrix algebra. Same numbers to roundoff (atol 1e-15 on entries of size <= ~1).
    from jaxmi.generator import generator, generator_explicit

    c = coefficients(T, V)
    np.testing.assert_allclose(
        np.asarray(generator(c).forms), np.asarray(generator_explicit(c).forms), atol=1e-15
    )
