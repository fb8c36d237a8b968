"""Quadrature convergence: error against order, and the default order over the documented domain.

The reference is the engine itself at a much higher order and more panels (48 nodes x (16 + 12)
panels); the independent check against adaptive quadrature is tests/test_reference.py.
"""

import numpy as np
import pytest

from jaxmi import Config
from jaxmi.observables import grid

HIGH = Config(order=48, window_panels=16, tail_panels=12)
J = np.array([[0.3, -0.5, 0.7], [0.9, 0.1, -0.4], [0.25, 0.0, 0.35], [0.25, 0.25, 0.25]])


def _domain():
    T = [0.0, 1e-3, 1e-2, 0.05, 0.1, 0.3, 0.6, 1.0]
    V = [0.0, 1e-3, 0.01, 0.1, 0.5, 1.0, 2.0]
    pairs = [(t, v) for t in T for v in V if t == 0 or v / (2 * t) <= 2000]
    pairs += [(0.01, 40.0 * 0.01), (1e-3, 4.0), (5e-4, 2.0)]  # u = 20, u = 2000, u = 2000
    t, v = np.array(pairs).T
    return t, v


def _rel_err(config, t, v, j=J):
    ref = np.asarray(grid(j, t, v, HIGH).conductance)
    got = np.asarray(grid(j, t, v, config).conductance)
    # Relative error; where the exact value is 0 (isotropic at T = V = 0) the absolute error.
    return np.abs(got - ref) / np.where(ref == 0, 1.0, np.abs(ref))


def test_default_order_on_documented_domain():
    # docs/accuracy.md: the default order is converged to <= 1e-12 relative for T in [0, 1],
    # |V| <= 2, |V|/2T <= 2000, for every coupling, the isotropic one (O(T^4) at small T)
    # included. Measured worst 2e-14.
    t, v = _domain()
    err = _rel_err(Config(), t, v)
    assert err.max() <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("t, v", [(0.3, 0.0), (1.0, 1.0), (0.01, 0.4), (0.0, 2.0)])
def test_geometric_convergence_in_order(t, v):
    # Gauss-Legendre on panels clear of the integrand's singularities converges geometrically:
    # log(error) falls linearly with the order. Fit over the orders whose error is above the
    # roundoff level (1e-13; at least three of them): the slope must be below -0.5 decades per
    # node (measured -1 to -1.5) and every point within 1.5 decades of the line.
    orders = np.array([2, 3, 4, 6, 8, 10])
    j = J[:1]
    err = np.array(
        [_rel_err(Config(order=int(n)), np.array([t]), np.array([v]), j)[0, 0] for n in orders]
    )
    keep = err > 1e-13
    assert keep.sum() >= 3, err
    orders, err = orders[keep], err[keep]
    slope, icpt = np.polyfit(orders, np.log10(err), 1)
    assert slope < -0.5, err
    assert np.all(np.abs(np.log10(err) - (slope * orders + icpt)) < 1.5), err
