"""Profile-likelihood intervals of one parameter (:func:`profile`, :class:`Profile`): the
parameter held at a sequence of values, the others refitted at each, the interval where the
minimum chi^2 rises by less than 1 (68%) and 3.84 (95%) above the optimum's.

The profile needs no Gaussian approximation: it follows a curved or one-sided chi^2 valley (J
and E0 in the T^4 regime, a parameter near a bound) and says where the data stop bounding the
parameter. Each refit is the fit's own solver (:func:`jaxmi.fitting.solve._solve`) on the
fit's compiled residuals and Jacobian, with the profiled parameter's Jacobian column zeroed so
that the solver cannot move it: no new compilation, and each value starts from its neighbour's
solution.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from jaxmi.errors import FitError
from jaxmi.fitting.solve import _solve, _stationary

#: chi^2 rises of the 68% and 95% intervals (one parameter: the chi^2 quantiles, 1 dof).
DELTA_CHI2 = {"68": 1.0, "95": 3.841458820694124}
#: The walk stops on each side past this rise, or after MAX_POINTS values.
STOP = 6.0
MAX_POINTS = 24
#: Step of the walk, in linearised standard deviations (unconstrained coordinate).
STEP = 0.5


@dataclasses.dataclass(frozen=True)
class Profile:
    """The profile of one parameter.

    Attributes:
        name: the parameter.
        values: its held values, increasing, physical units, shape (M,) (the optimum among
            them).
        delta_chi2: the minimum chi^2 over the other free parameters at each value minus the
            optimum's (for an unweighted fit in units of the residual variance), shape (M,).
        intervals: ``{"68": (lo, hi), "95": (lo, hi)}`` where delta_chi2 < 1 and < 3.84,
            interpolated between values; a side is None where the profile does not rise that
            far within the walk or the parameter's bound (the data do not bound it there).
        converged: whether every refit converged.
    """

    name: str
    values: np.ndarray
    delta_chi2: np.ndarray
    intervals: dict
    converged: bool

    def to_json(self) -> dict:
        def num(x):
            return float(x) if x is not None and math.isfinite(x) else None

        return {
            "values": [num(v) for v in self.values],
            "delta_chi2": [num(v) for v in self.delta_chi2],
            "intervals": {k: [num(lo), num(hi)] for k, (lo, hi) in self.intervals.items()},
            "converged": bool(self.converged),
        }

    def line(self) -> str:
        """The table's line: ``profile NAME: 68% [lo, hi], 95% [lo, hi] (...)``."""

        def side(x):
            return "open" if x is None else f"{x:.6g}"

        (lo68, hi68), (lo95, hi95) = self.intervals["68"], self.intervals["95"]
        return (
            f"profile {self.name}: 68% [{side(lo68)}, {side(hi68)}], 95% [{side(lo95)}, "
            f"{side(hi95)}] (chi^2 + 1, + 3.84; {len(self.values)} refits)"
        )

    def problems(self) -> list[str]:
        """Notes: open sides and failed refits."""
        out = []
        for key, (lo, hi) in self.intervals.items():
            open_sides = [s for s, v in (("lower", lo), ("upper", hi)) if v is None]
            if open_sides:
                out.append(
                    f"profile of {self.name}: the {key}% interval is open on the "
                    f"{' and '.join(open_sides)} side (chi^2 does not rise by "
                    f"{DELTA_CHI2[key]:.3g} within {self.values[0]:.6g} .. "
                    f"{self.values[-1]:.6g}): the data do not bound {self.name} there"
                )
                break  # the 95% side is open too
        if not self.converged:
            out.append(f"profile of {self.name}: some refits did not converge")
        return out


def _crossing(x0, d0, x1, d1, level):
    """Where the linear interpolation between (x0, d0) and (x1, d1) reaches ``level``."""
    if d1 == d0:
        return x1
    return x0 + (level - d0) * (x1 - x0) / (d1 - d0)


def profile(
    index: int,
    name: str,
    z_hat: np.ndarray,
    sd_z: float,
    chi2_min: float,
    scale: float,
    transform,
    evaluate,
    physical,
    real: np.ndarray,
    rtol: float,
    atol: float,
    max_steps: int,
) -> Profile:
    """The profile of free parameter ``index`` (``name``).

    Args:
        index: position of the parameter among the free ones.
        name: its name.
        z_hat: the optimum in the solver's unconstrained coordinates, shape (k,).
        sd_z: the parameter's linearised standard deviation in that coordinate (sets the step).
        chi2_min: chi^2 at the optimum.
        scale: chi^2 is divided by this (1 when weighted by G_err; the residual variance
            chi2_min / dof otherwise).
        transform: the fit's bound transform.
        evaluate: ``evaluate(p) -> (residuals, jacobian)``, the fit's compiled program.
        physical: z -> physical values (numpy).
        real: indices of the real points among the residuals (the others are padding).
        rtol, atol, max_steps: the solver's settings.

    Returns:
        :class:`Profile`.
    """
    if not np.isfinite(z_hat).all():
        raise FitError(
            f"profile of {name}: the optimum sits exactly on a bound (no interior point to "
            "walk from); widen the bounds or fix the parameter there"
        )
    mask = jnp.ones(len(z_hat)).at[index].set(0.0)

    def held(p):
        r, jac = evaluate(p)
        return r, jac * mask[None, :]

    step = STEP * (sd_z if math.isfinite(sd_z) and sd_z > 0 else 1.0)
    points = {0.0: (float(physical(z_hat)[index]), 0.0, True)}
    for side in (-1.0, 1.0):
        z = np.array(z_hat, float)
        for m in range(1, MAX_POINTS + 1):
            z = z.copy()
            z[index] = z_hat[index] + side * m * step
            if len(z) > 1:
                z, ok, _ = _solve(z, transform, held, rtol, atol, max_steps)
            p = physical(z)
            r, jac = (np.asarray(a)[real] for a in evaluate(jnp.asarray(p)))
            if len(z) > 1:
                ok = ok or _stationary(r, np.delete(jac, index, axis=1))
            else:
                ok = True
            d = (float(r @ r) - chi2_min) / scale
            points[side * m] = (float(p[index]), max(d, 0.0), bool(ok))
            # beyond a bound the transform saturates: the value stops moving
            prev = points[side * (m - 1)][0]
            if d > STOP or not math.isfinite(d) or abs(p[index] - prev) <= 1e-12 * abs(prev):
                break
    keys = sorted(points)
    values = np.array([points[k][0] for k in keys])
    delta = np.array([points[k][1] for k in keys])
    converged = all(points[k][2] for k in keys)
    i0 = keys.index(0.0)
    intervals = {}
    for key, level in DELTA_CHI2.items():
        lo = hi = None
        for j in range(i0, 0, -1):
            if delta[j - 1] >= level:
                lo = _crossing(values[j], delta[j], values[j - 1], delta[j - 1], level)
                break
        for j in range(i0, len(values) - 1):
            if delta[j + 1] >= level:
                hi = _crossing(values[j], delta[j], values[j + 1], delta[j + 1], level)
                break
        intervals[key] = (lo, hi)
    order = np.argsort(values)
    return Profile(name, values[order], delta[order], intervals, converged)
