"""The solver: optimistix's Levenberg-Marquardt, driven one step at a time on the compiled
residuals and Jacobian (:func:`_solve`), for every model and integration strategy alike; the
start's amplitude prescale; identifiability and the covariance from the Jacobian."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxmi.errors import FitError
from jaxmi.fitting.data import Data
from jaxmi.fitting.parameters import COUPLINGS, _physical_jit, _Problem, _to_physical, _Transform

#: Relative singular value of the column-normalised Jacobian below which free parameters are
#: exactly degenerate (a structural null direction, e.g. Jx, Jz and offset in linear response
#: with Jy = 0; numerically ~1e-12 there).
RANK_TOL = 1e-7


def _optimistix():
    """The optimistix module (the least-squares solver; a dependency of jaxmi, so only a broken
    install lacks it).

    Raises:
        FitError: it cannot be imported; the message names ``pip install optimistix``.
    """
    try:
        import optimistix
    except ImportError as err:
        raise FitError(
            f"fitting needs optimistix, which cannot be imported ({err}); install it with: "
            "pip install optimistix"
        ) from None
    return optimistix


class _Linearised(NamedTuple):
    """The model's residuals and Jacobian at the point a solver step evaluates (traced)."""

    residuals: Array  # (N_pad,) at p_eval
    jacobian: Array  # (N_pad, k), in the physical parameters, at p_eval
    p_eval: Array  # (k,)
    transform: _Transform


def _linearised(z: Array, lin: _Linearised) -> tuple[Array, None]:
    """The residual function the solver's step is given: ``r + J (p(z) - p_eval)``. A
    Gauss-Newton-type step evaluates its function and Jacobian at one point only, the
    ``y_eval`` of its state (optimistix's ``AbstractGaussNewton.step``), and there this has
    exactly the model's value and derivative (``J dp/dz``). So the step's compiled program
    holds no model: it is the same small program for every model and strategy."""
    return lin.residuals + lin.jacobian @ (_to_physical(z, lin.transform) - lin.p_eval), None


#: The surrogate is cheap and its Jacobian (N_pad, k) is materialised for the damped solve.
_LM_OPTIONS = {"jac": "bwd"}


def _lm(rtol: float, atol: float):
    return _optimistix().LevenbergMarquardt(rtol=rtol, atol=atol)


@functools.partial(jax.jit, static_argnames=("rtol", "atol"))
def _lm_init(z0: Array, lin: _Linearised, *, rtol: float, atol: float):
    f_struct = jax.ShapeDtypeStruct(lin.residuals.shape, lin.residuals.dtype)
    return _lm(rtol, atol).init(_linearised, z0, lin, _LM_OPTIONS, f_struct, None, frozenset())


@functools.partial(jax.jit, static_argnames=("rtol", "atol"))
def _lm_step(z: Array, state, lin: _Linearised, *, rtol: float, atol: float):
    """One Levenberg-Marquardt step of optimistix at ``state.y_eval`` (where ``lin`` is).
    Returns (z, state, done, successful, p at the next evaluation point)."""
    solver = _lm(rtol, atol)
    z, state, _ = solver.step(_linearised, z, lin, _LM_OPTIONS, state, frozenset())
    done, result = solver.terminate(_linearised, z, lin, _LM_OPTIONS, state, frozenset())
    successful = result == _optimistix().RESULTS.successful
    return z, state, done, successful, _to_physical(state.y_eval, lin.transform)


def _solve(
    z0: np.ndarray,
    transform: _Transform,
    evaluate,
    rtol: float,
    atol: float,
    max_steps: int,
) -> tuple[np.ndarray, bool, int]:
    """optimistix's Levenberg-Marquardt from z0, one step at a time, every model alike.

    ``evaluate(p) -> (residuals, jacobian)`` is the compiled :func:`_residuals_and_jacobian`
    (padded arrays); each step gets it at the point the step evaluates (:func:`_linearised`),
    so the model is compiled once per fit shape and the solver's steps once for all models,
    and neither grows with the number of iterations. The algorithm (damping, acceptance, the
    Cauchy termination test on z and chi^2) is optimistix's own. Returns (z, successful,
    number of steps).
    """
    z = jnp.asarray(z0, dtype=float)
    p = _physical_jit(z, transform)
    lin = _Linearised(*evaluate(p), p, transform)
    state = _lm_init(z, lin, rtol=rtol, atol=atol)
    for step in range(1, max_steps + 1):
        z, state, done, successful, p = _lm_step(z, state, lin, rtol=rtol, atol=atol)
        if bool(done):
            return np.asarray(z), bool(successful), step
        lin = _Linearised(*evaluate(p), p, transform)
    return np.asarray(z), False, max_steps


def _best_of_starts(
    start_z, starts: int, transform, evaluate, at, physical, rtol, atol, max_steps
) -> tuple:
    """Solve from each start and keep the best: converged before not, then the lower chi^2.

    ``start_z(i)`` gives start i in the unconstrained coordinates, ``evaluate(p)`` the padded
    residuals and Jacobian (for the solver), ``at(p)`` those of the real points (numpy),
    ``physical(z)`` the parameters. A solve counts as converged when the solver says so or,
    where its step test stalls on roundoff at the optimum (~1e-15 noise in the residuals), by
    first-order optimality (MINPACK's gtol test: every Jacobian column orthogonal to the
    residual vector). Returns (p, r, jac, converged, steps, number of converged starts)."""
    best, n_conv = None, 0
    for i in range(starts):
        z, ok, steps = _solve(start_z(i), transform, evaluate, rtol, atol, max_steps)
        p = physical(z)
        r, jac = at(p)
        chi2 = float(r @ r)
        ok = (bool(ok) or _stationary(r, jac)) and math.isfinite(chi2)
        n_conv += ok
        key = (not ok, chi2 if math.isfinite(chi2) else math.inf)
        if best is None or key < best[0]:
            best = (key, p, r, jac, ok, int(steps))
    _, p, r, jac, ok, steps = best
    return p, r, jac, ok, steps, n_conv


def _linearised_errors(jac: np.ndarray, scale: float) -> tuple[np.ndarray, ...]:
    """Covariance ``scale (J^T J)^-1`` (scale: 1 with G_err, the residual variance without),
    standard errors and correlation matrix (1 on the diagonal, NaN where an error is
    infinite)."""
    cov = _covariance(jac) * scale
    with np.errstate(invalid="ignore"):
        err = np.sqrt(np.diag(cov))
        corr = cov / np.outer(err, err)
    np.fill_diagonal(corr, 1.0)
    return cov, err, corr


def _stationary(r: np.ndarray, jac: np.ndarray, gtol: float = 1e-6) -> bool:
    """max_k |J_k . r| / (|J_k| |r|) <= gtol: the residuals are orthogonal to every direction the
    parameters can move them in (a least-squares optimum, whatever the step history)."""
    norms = np.linalg.norm(jac, axis=0) * np.linalg.norm(r)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        return False
    return bool(np.max(np.abs(jac.T @ r) / norms) <= gtol)


def _covariance(jac: np.ndarray) -> np.ndarray:
    """(J^T J)^-1 through the SVD of the column-scaled Jacobian; directions with a relative
    singular value below RANK_TOL get infinite variance."""
    norms = np.linalg.norm(jac, axis=0)
    norms = np.where(norms > 0, norms, 1.0)
    _, s, vt = np.linalg.svd(jac / norms, full_matrices=False)
    with np.errstate(divide="ignore"):
        inv = np.where(s > RANK_TOL * s[0], 1.0 / s**2, np.inf)
    cov = (vt.T * inv) @ vt
    if np.isinf(inv).any():
        cov = np.where(np.abs(cov) > 0, cov, 0.0)  # inf * 0 in null directions
    return cov / np.outer(norms, norms)


def _null_direction(jac: np.ndarray, dp: np.ndarray | None = None) -> np.ndarray | None:
    """A null direction of the column-normalised Jacobian, or None if it has full rank.

    With ``dp`` (dp/dz of the bound transforms, i.e. the parameters' scales) a column whose
    sensitivity |J_k| |dp_k| is below RANK_TOL times the largest is a null direction too: a
    parameter the model does not depend on gives a column of roundoff (~1e-17, e.g. texture_c0
    with an isotropic impurity), which normalisation would blow up to a full-rank column."""
    norms = np.linalg.norm(jac, axis=0)
    sens = norms if dp is None else norms * np.abs(dp)
    if (norms == 0).any() or (sens <= RANK_TOL * sens.max()).any():
        e = np.zeros(jac.shape[1])
        e[int(np.argmin(sens))] = 1.0
        return e
    _, s, vt = np.linalg.svd(jac / norms, full_matrices=False)
    return vt[-1] if s[-1] < RANK_TOL * s[0] else None


def _prescale(
    prob: _Problem, p: np.ndarray, r: np.ndarray, weight: np.ndarray, data: Data
) -> np.ndarray:
    """Match the amplitude of the start to the data before Levenberg-Marquardt.

    dG is homogeneous of degree 2 in J (the rates are quadratic in J, the stationary state is
    of degree 0), so when every non-zero coupling is free, scaling them by s multiplies n dG by
    s^2 exactly. The best s^2 (and the offset, if free) is a linear weighted least-squares
    problem given the model at the start. A start whose shape is right but whose amplitude is
    off (a factor 2 in J and E0 can make it 64 times too small, dG ~ J^2 / E0^4 at low T and
    V) otherwise lets the solver trade E0 against J and stall at a bound. Returns ``p``
    unchanged where this does not apply (a fixed non-zero coupling, s^2 <= 0, or a scaled
    start outside the bounds).
    """
    free = prob.free
    couplings = [i for i, name in enumerate(free) if name in COUPLINGS]
    fixed_nonzero = any(
        name in COUPLINGS and name not in free and prob.value(name) != 0 for name in prob.names
    )
    if not couplings or fixed_nonzero:
        return p
    full = prob.values.copy()
    full[prob.free_index] = p
    off0 = full[prob.all_names.index("offset")]
    n_dG = r / weight + data.G - 1.0 - off0  # n dG at the start
    cols = [n_dG]
    y = data.G - 1.0
    if "offset" in free:
        cols.append(np.ones_like(n_dG))
    else:
        y = y - off0
    A = np.stack(cols, axis=1) * weight[:, None]
    coef, *_ = np.linalg.lstsq(A, y * weight, rcond=None)
    if not (np.isfinite(coef).all() and coef[0] > 0):
        return p
    out = p.copy()
    out[couplings] = p[couplings] * np.sqrt(coef[0])
    if "offset" in free:
        out[free.index("offset")] = coef[1]
    if not ((prob.lower < out) & (out < prob.upper)).all():
        return p
    return out
