"""jaxmi.analytic's Ic and Is against mpmath's adaptive quadrature on the real axis.

jaxmi.analytic integrates along a rotated ray (exact for x >= 0, no poles crossed); mpmath
integrates the definition, so this also checks the contour argument.
"""

import mpmath as mp
import numpy as np
import pytest

from jaxmi import analytic


@pytest.mark.parametrize(
    "x",
    [0.0, 1e-6, 0.01, 0.3, 1.0]
    + [pytest.param(x, marks=pytest.mark.slow) for x in (3.0, 10.0)],  # mpmath: many panels
)
def test_ic_is_against_mpmath(x):
    # Definition below Eq. 14; mpmath at 20 digits on [0, ~20] split at every half period of
    # cos(x e^2) (the integrand is < 1e-17 beyond). rtol 1e-13 / atol 1e-15: the ray rule is
    # converged to roundoff (80 panels x 24 nodes).
    mp.mp.dps = 20
    n = int(130 * max(x, 0.1))
    pts = [0.0] + [float(np.sqrt(k * 400 / n)) for k in range(1, n + 1)]
    ic = mp.quad(lambda e: mp.cos(x * e * e) / mp.cosh(e) ** 2, pts)
    is_ = mp.quad(lambda e: mp.sin(x * e * e) / mp.cosh(e) ** 2, pts)
    assert float(analytic.ic(x)) == pytest.approx(float(ic), rel=1e-13, abs=1e-15)
    assert float(analytic.is_(x)) == pytest.approx(float(is_), rel=1e-13, abs=1e-15)


def test_one_minus_ic_keeps_digits_at_small_x():
    # 1 - Ic(x) = m4 x^2 / 2 + O(x^4) with m4 = 7 pi^4 / 240: at x = 1e-5 the naive 1 - Ic has no
    # correct digit left; the cancellation-free form must match the series to rtol 1e-10.
    x = 1e-5
    series = 7 * np.pi**4 / 240 * x**2 / 2
    assert float(analytic.one_minus_ic(x)) == pytest.approx(series, rel=1e-10)


def test_eq18_limits():
    # Eq. 18 -> 1 at u -> 0 and -> (5/8)(u/pi)^4 at u -> oo (Eq. 17 / Eq. 16). Exact limits of the
    # printed function: rtol 1e-12 at u = 0; relative 4/u at large u (the 1 + 4/u expansion).
    assert float(analytic.eq18_crossover(0.0)) == pytest.approx(1.0, rel=1e-12)
    u = 1e4
    ratio = float(analytic.eq18_crossover(u)) / (5 / 8 * (u / np.pi) ** 4)
    assert (ratio - 1) * u == pytest.approx(4.0, rel=1e-2)


def test_eq19_limits():
    # Eq. 19 -> 1 at u -> 0; at large u it grows like u / pi^2 (relative corrections O(1/u)).
    assert float(analytic.eq19_polarization_ratio(0.0)) == pytest.approx(1.0, rel=1e-12)
    u = 1e4
    assert float(analytic.eq19_polarization_ratio(u)) / (u / np.pi**2) == pytest.approx(
        1.0, rel=1e-3
    )
