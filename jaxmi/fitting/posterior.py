"""Posterior sampling of a fit's free parameters: NUTS (blackjax) on the same differentiable
likelihood as the least-squares fit, several chains vectorised, with rank-normalised split-R-hat
and bulk effective sample sizes (:func:`sample_posterior`, :class:`Posterior`).

Likelihood: Gaussian errors, ``log L = -chi^2 / 2`` with ``chi^2 = sum ((model - G) / G_err)^2``;
without ``G_err`` a noise scale ``sigma_G`` (e^2/h) is sampled too, ``log L = -N log sigma_G -
sum (model - G)^2 / (2 sigma_G^2)`` with a prior flat in ``log sigma_G``. Prior: flat in each
free parameter within its bounds (improper where a bound is infinite: the data must confine the
parameter there), times an optional normal prior per parameter.

Coordinates: the chains move in whitened unconstrained coordinates ``u``, ``z = z_hat + L u``
with ``z`` the least-squares solver's unconstrained variables (the bound transform of
:mod:`jaxmi.fitting.parameters`, its log-Jacobian added to the density), ``z_hat`` the optimum
and ``L L^T`` its linearised covariance; so a correlation of 0.999 between J and E0 is a round
target for the sampler, and the window adaptation (Stan's: step size and a dense mass matrix)
only has to correct what the linearisation misses.

Gradient: the chi^2 term carries its own derivative (:func:`_half_chi2`, ``J^T r`` from the
forward-mode residuals-and-Jacobian of the fit), so the engine is never differentiated in reverse
mode and the sampler sees the same derivative as the solver.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxmi.config import Config
from jaxmi.errors import FitError
from jaxmi.fitting.parameters import _log_dphysical_dz, _to_physical
from jaxmi.fitting.problem import _Args, _residuals_and_jacobian, _weighted_residuals

#: Name of the sampled noise scale (e^2/h) of an unweighted fit.
NOISE = "sigma_G"
#: Quantile keys of the JSON document and :attr:`Posterior.quantiles`, with their levels.
QUANTILES = {"q2.5": 0.025, "q16": 0.16, "median": 0.5, "q84": 0.84, "q97.5": 0.975}
#: A chain set is reported (note and FitWarning) above this R-hat or below this bulk ESS.
RHAT_WARN = 1.01
ESS_WARN = 400
#: Defaults: chains, warmup (adaptation) steps and draws per chain.
CHAINS, WARMUP, DRAWS = 4, 500, 1000
#: The chains are confined to this many linearised standard deviations from the optimum in
#: each whitened coordinate (a hard wall); draws near it mean that the data (with the bounds
#: and priors) do not confine the posterior, e.g. flat priors along the J ~ E0^2 ridge of the
#: T^4 regime, and are reported (:meth:`Posterior.problems`). Without the wall such a chain
#: walks off along the ridge with 2^10 leapfrog steps per transition.
WALL = 30.0
#: A draw this close to the wall (in the same units) counts as touching it.
WALL_NEAR = 0.8 * WALL
#: Transitions per compiled call between progress reports.
BLOCK = 100
#: Initial positions: standard normal in the whitened coordinates times this (overdispersed
#: relative to the linearised posterior, so that R-hat can see chains that do not mix).
INIT_SPREAD = 1.5


@dataclasses.dataclass(frozen=True)
class Posterior:
    """Posterior draws of a fit (:func:`jaxmi.fit` with ``posterior=True``).

    Attributes:
        names: the sampled parameters: the fit's free ones, then ``sigma_G`` (e^2/h) for an
            unweighted fit.
        samples: draws in physical units, shape (chains, draws, len(names)).
        quantiles: ``{name: {"median", "q2.5", "q16", "q84", "q97.5"}}`` over all chains.
        rhat: rank-normalised split-R-hat per name (Vehtari et al. 2021; < 1.01 is converged).
        ess: bulk effective sample size per name (all chains together).
        divergences: divergent transitions among the draws (NUTS; > 0 means the posterior has
            regions the step size cannot resolve and the draws may be biased).
        chains, warmup, draws: chain count, adaptation steps and kept draws per chain.
        prior: the normal priors given, ``{name: (mean, sd)}``; every other parameter is flat
            within its bounds.
        seconds: wall time of the sampling (compilation included).
        unconfined: whitened coordinates (named by the parameter they start from) whose
            draws reached the confining wall (:data:`WALL`): the data do not confine the
            posterior there, and its quantiles are those of the walled box.
    """

    names: tuple
    samples: np.ndarray
    quantiles: dict
    rhat: dict
    ess: dict
    divergences: int
    chains: int
    warmup: int
    draws: int
    prior: dict
    seconds: float
    unconfined: tuple = ()

    def interval(self, name: str, level: float = 0.68) -> tuple[float, float]:
        """The central interval of ``name`` holding ``level`` of the posterior (0.68: q16 to
        q84; 0.95: q2.5 to q97.5; other levels from the draws)."""
        for lo, hi, lev in (("q16", "q84", 0.68), ("q2.5", "q97.5", 0.95)):
            if math.isclose(level, lev):
                q = self.quantiles[name]
                return q[lo], q[hi]
        x = self.samples[..., self.names.index(name)].ravel()
        a = (1.0 - level) / 2.0
        return float(np.quantile(x, a)), float(np.quantile(x, 1.0 - a))

    def problems(self) -> list[str]:
        """One line per diagnostic that fails (R-hat, ESS, divergences); empty if none."""
        out = []
        bad_r = [f"{k} {v:.4f}" for k, v in self.rhat.items() if not v <= RHAT_WARN]
        if bad_r:
            out.append(
                f"posterior not converged: R-hat > {RHAT_WARN} for {', '.join(bad_r)} (the "
                "chains disagree: more warmup/draws, a bound or a prior on a parameter the data "
                "do not confine)"
            )
        bad_e = [f"{k} {v:.0f}" for k, v in self.ess.items() if not v >= ESS_WARN]
        if bad_e:
            out.append(
                f"posterior: effective sample size < {ESS_WARN} for {', '.join(bad_e)} (more "
                "draws: the quantiles are noisy)"
            )
        if self.unconfined:
            out.append(
                "posterior not confined by the data: draws reach the sampler's wall at "
                f"{WALL:g} linearised standard deviations from the optimum (directions of "
                f"{', '.join(self.unconfined)}); the intervals are those of the walled box, "
                "not of the data: give a bound or a prior (--bounds, --prior), or data that "
                "separate the parameters (docs/fitting.md, identifiability)"
            )
        if self.divergences:
            n = self.chains * self.draws
            out.append(
                f"posterior: {self.divergences} of {n} transitions divergent (the draws may "
                "miss part of the posterior)"
            )
        return out

    def intervals(self, name: str) -> str:
        """``median [q16, q84] [q2.5, q97.5]`` of ``name``, aligned for the table."""
        q = self.quantiles[name]
        return (
            f"{q['median']:>12.6g} [{q['q16']:>12.6g}, {q['q84']:>12.6g}]"
            f" [{q['q2.5']:>12.6g}, {q['q97.5']:>12.6g}]"
        )

    def line(self) -> str:
        """The table's line of the sampler, its diagnostics and the prior."""
        return (
            f"posterior: NUTS, {self.chains} chains x {self.draws} draws ({self.warmup} "
            f"warmup); max R-hat {max(self.rhat.values()):.4f}, min ESS "
            f"{min(self.ess.values()):.0f}, {self.divergences} divergent; prior flat within "
            "the bounds" + "".join(f", {k} ~ N({m:g}, {sd:g})" for k, (m, sd) in self.prior.items())
        )

    def to_json(self) -> tuple[dict, dict]:
        """The ``"posterior"`` and ``"diagnostics"`` entries of the fit's JSON document."""

        def num(x):
            return float(x) if math.isfinite(x) else None

        post = {k: {q: num(v) for q, v in qs.items()} for k, qs in self.quantiles.items()}
        diag = {
            "rhat": {k: num(v) for k, v in self.rhat.items()},
            "ess": {k: num(v) for k, v in self.ess.items()},
            "divergences": int(self.divergences),
            "chains": int(self.chains),
            "warmup": int(self.warmup),
            "draws": int(self.draws),
            "sampler": "NUTS (blackjax), window adaptation, dense mass matrix",
            "prior": {k: {"mean": m, "sd": s} for k, (m, s) in self.prior.items()},
        }
        return post, diag


def _problem_functions(args):
    """The residuals and the residuals-and-Jacobian of the fit ``args`` belong to: a single
    data set's (:mod:`jaxmi.fitting.problem`) or a global fit's stacked ones
    (:mod:`jaxmi.fitting.joint`), told apart by the type of ``args`` (static under jit)."""
    from jaxmi.fitting import joint

    if isinstance(args, joint._JointArgs):
        return joint._stacked_residuals, joint._stacked_residuals_and_jacobian
    return _weighted_residuals, _residuals_and_jacobian


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _half_chi2(p_free: Array, args: _Args, config: Config, family) -> Array:
    """chi^2 / 2 of the weighted residuals at the free physical parameters ``p_free`` (k,),
    differentiated by its own rule: ``d(chi^2/2) = (J^T r) . dp`` with ``r, J`` the fit's
    forward-mode residuals and Jacobian (no tangent for ``args``: the data are constants)."""
    residuals, _ = _problem_functions(args)
    r = residuals(p_free, args, config, family)
    return 0.5 * jnp.vdot(r, r)


@_half_chi2.defjvp
def _half_chi2_jvp(config, family, primals, tangents):
    p_free, args = primals
    dp = tangents[0]
    _, residuals_and_jacobian = _problem_functions(args)
    r, jac = residuals_and_jacobian(p_free, args, config=config, family=family)
    return 0.5 * jnp.vdot(r, r), jnp.vdot(jac.T @ r, dp)


class _Target(NamedTuple):
    """Traced inputs of the log density besides the data (shapes: k free parameters, d = k or
    k + 1 sampled coordinates)."""

    z_hat: Array  # (d,) optimum in unconstrained coordinates (log sigma_G last if unweighted)
    chol: Array  # (d, d) its linearised covariance's Cholesky factor
    n_points: Array  # number of real (unpadded) points
    prior_mean: Array  # (k,) physical units
    prior_inv_sd: Array  # (k,) 0 where no prior is given


def _log_density(
    u: Array, args: _Args, target: _Target, config: Config, family, weighted: bool
) -> Array:
    """log posterior (up to a constant) at whitened coordinates ``u`` (d,)."""
    z = target.z_hat + target.chol @ u
    k = args.transform.kinds.shape[0]
    zp = z[:k]
    p = _to_physical(zp, args.transform)
    half = _half_chi2(p, args, config, family)
    if weighted:
        log_like = -half
    else:
        s = z[k]  # log sigma_G
        log_like = -target.n_points * s - jnp.exp(-2.0 * s) * half
    log_prior = -0.5 * jnp.sum(((p - target.prior_mean) * target.prior_inv_sd) ** 2)
    log_jac = jnp.sum(_log_dphysical_dz(zp, args.transform))
    out = log_like + log_prior + log_jac
    inside = jnp.max(jnp.abs(u)) < WALL
    return jnp.where(jnp.isfinite(out) & inside, out, -jnp.inf)


def _nuts():
    try:
        import blackjax
    except ImportError:
        raise FitError(
            "the posterior needs blackjax, a dependency of jaxmi: pip install 'blackjax>=1.7'"
        ) from None
    return blackjax


@functools.partial(jax.jit, static_argnames=("config", "family", "weighted", "n_steps"))
def _warmup(keys, u0, args, target, *, config, family, weighted, n_steps):
    """Window adaptation of each chain (vmapped): its state and NUTS parameters."""
    blackjax = _nuts()
    from blackjax.adaptation.base import get_filter_adapt_info_fn

    def logdensity(u):
        return _log_density(u, args, target, config, family, weighted)

    adapt = blackjax.window_adaptation(
        blackjax.nuts,
        logdensity,
        is_mass_matrix_diagonal=False,
        adaptation_info_fn=get_filter_adapt_info_fn(),
    )
    (state, params), _ = jax.vmap(lambda k, x: adapt.run(k, x, num_steps=n_steps))(keys, u0)
    return state, params


@functools.partial(jax.jit, static_argnames=("config", "family", "weighted", "n_steps"))
def _draw(keys, state, params, args, target, *, config, family, weighted, n_steps):
    """``n_steps`` NUTS transitions of each chain (vmapped): the final state, the positions
    (chains, n_steps, d) and the divergence flags (chains, n_steps)."""
    blackjax = _nuts()

    def logdensity(u):
        return _log_density(u, args, target, config, family, weighted)

    def chain(key, st, par):
        kernel = blackjax.nuts(logdensity, **par)

        def body(s, k):
            s, info = kernel.step(k, s)
            return s, (s.position, info.is_divergent)

        return jax.lax.scan(body, st, jax.random.split(key, n_steps))

    return jax.vmap(chain)(keys, state, params)


def _diagnostics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-normalised split-R-hat and bulk ESS of draws (chains, draws, d), per coordinate."""
    from blackjax import diagnostics

    rhat = np.array([float(diagnostics.rhat(x[..., i])) for i in range(x.shape[-1])])
    ess = np.array([float(diagnostics.ess_bulk(x[..., i])) for i in range(x.shape[-1])])
    return rhat, ess


def check_settings(
    free: tuple, prior: Mapping | None, chains: int, warmup: int, draws: int
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Check the sampler's settings and the priors before anything is computed.

    Returns:
        The priors ``{name: (mean, sd)}`` as floats, and their means and inverse standard
        deviations per free parameter (0 where none is given), shapes (k,).

    Raises:
        FitError: a setting that is not an integer large enough, a prior on a name that is not
            free, or a prior that is not (finite mean, sd > 0).
    """
    for name, v, least in (("chains", chains, 2), ("warmup", warmup, 10), ("draws", draws, 10)):
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= least):
            raise FitError(f"posterior {name} must be an integer >= {least}, got {v!r}")
    prior = dict(prior or {})
    k = len(free)
    mean, inv_sd = np.zeros(k), np.zeros(k)
    for name, ms in prior.items():
        if name not in free:
            raise FitError(f"prior on {name!r}: not a free parameter (free: {', '.join(free)})")
        try:
            m, s = (float(x) for x in ms)
        except (TypeError, ValueError):
            raise FitError(f"prior on {name}: expected (mean, sd), got {ms!r}") from None
        if not (math.isfinite(m) and math.isfinite(s) and s > 0):
            raise FitError(f"prior on {name}: mean finite and sd > 0, got ({m}, {s})")
        i = free.index(name)
        mean[i], inv_sd[i] = m, 1.0 / s
        prior[name] = (m, s)
    return prior, mean, inv_sd


def sample_posterior(
    args: _Args,
    z_hat: np.ndarray,
    cov_z: np.ndarray,
    *,
    free: tuple,
    n_points: int,
    weighted: bool,
    sigma_hat: float,
    config: Config,
    family=None,
    prior: Mapping[str, tuple[float, float]] | None = None,
    chains: int = CHAINS,
    warmup: int = WARMUP,
    draws: int = DRAWS,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Posterior:
    """NUTS draws of the free parameters around a least-squares optimum.

    Args:
        args: the fit's traced inputs (:func:`jaxmi.fitting.problem._make_args`, or a global
            fit's :class:`jaxmi.fitting.joint._JointArgs`).
        z_hat: the optimum in the solver's unconstrained coordinates, shape (k,).
        cov_z: its linearised covariance in those coordinates, shape (k, k) (for an unweighted
            fit the one scaled by the residual variance).
        free: names of the k free parameters.
        n_points: real data points (the rest of ``args.data`` is padding).
        weighted: whether G_err weighted the residuals; if not, ``sigma_G`` is sampled, around
            ``sigma_hat`` (e^2/h, the residual standard deviation at the optimum).
        config, family: the engine's options and the model's static part, as in the fit.
        prior: normal priors ``{name: (mean, sd)}`` in physical units.
        chains, warmup, draws: chains run side by side (vmapped), adaptation steps, kept draws.
        seed: seed of the initial positions and of the chains.
        progress: called as ``progress(done, total)`` with transitions per chain.

    Returns:
        :class:`Posterior`.

    Raises:
        FitError: bad sampler settings or priors, or a linearised covariance that is not finite
            (a parameter the data do not determine cannot be sampled from a flat prior).
    """
    import time

    t0 = time.perf_counter()
    prior, mean, inv_sd = check_settings(free, prior, chains, warmup, draws)
    k = len(free)
    z_hat = np.asarray(z_hat, float)
    if not np.isfinite(z_hat).all():
        at = ", ".join(n for n, z in zip(free, z_hat, strict=True) if not np.isfinite(z))
        raise FitError(
            f"posterior: the optimum sits exactly on a bound of {at} (no interior start for "
            "the chains); widen the bounds or fix the parameter there"
        )
    cov = np.array(cov_z, float)
    if not np.isfinite(cov).all():
        raise FitError(
            "posterior: the linearised covariance at the optimum is not finite (a free "
            "parameter the data do not determine); fix it or give it a prior"
        )
    if not weighted:
        dof = max(n_points - k, 1)
        z_hat = np.append(z_hat, math.log(max(sigma_hat, 1e-300)))
        cov = np.block([[cov, np.zeros((k, 1))], [np.zeros((1, k)), np.full((1, 1), 0.5 / dof)]])
    d = len(z_hat)
    # A tiny ridge keeps the factor real where the linearised covariance is near-singular.
    w = np.sqrt(np.diag(cov))
    w = np.where(w > 0, w, 1.0)
    corr = cov / np.outer(w, w) + 1e-12 * np.eye(d)
    chol = np.linalg.cholesky(corr) * w[:, None]
    target = _Target(
        jnp.asarray(z_hat),
        jnp.asarray(chol),
        jnp.asarray(float(n_points)),
        jnp.asarray(mean),
        jnp.asarray(inv_sd),
    )
    static = {"config": config, "family": family, "weighted": weighted}
    key = jax.random.PRNGKey(seed)
    k_init, k_warm, k_draw = jax.random.split(key, 3)
    u0 = INIT_SPREAD * jax.random.normal(k_init, (chains, d))
    state, params = _warmup(
        jax.random.split(k_warm, chains), u0, args, target, n_steps=warmup, **static
    )
    total = warmup + draws
    if progress is not None:
        progress(warmup, total)
    # Blocks of one size (one compiled program whatever ``draws`` is); the last block's surplus
    # transitions are dropped.
    block = min(BLOCK, draws)
    positions, divergent = [], []
    for i in range(-(-draws // block)):
        state, (pos, div) = _draw(
            jax.random.split(jax.random.fold_in(k_draw, i), chains),
            state,
            params,
            args,
            target,
            n_steps=block,
            **static,
        )
        positions.append(np.asarray(pos))
        divergent.append(np.asarray(div))
        if progress is not None:
            progress(warmup + min(draws, (i + 1) * block), total)
    u = np.concatenate(positions, axis=1)[:, :draws]  # (chains, draws, d)
    z = z_hat + u @ chol.T
    phys = np.asarray(jax.vmap(jax.vmap(lambda x: _to_physical(x, args.transform)))(z[..., :k]))
    names = tuple(free) + (() if weighted else (NOISE,))
    if not weighted:
        phys = np.concatenate([phys, np.exp(z[..., k:])], axis=-1)
    near = np.abs(u).max(axis=(0, 1)) > WALL_NEAR  # (d,)
    walled = tuple(n for n, hit in zip(names, near, strict=True) if hit)
    rhat, ess = _diagnostics(phys)
    flat = phys.reshape(-1, d)
    quantiles = {
        name: {q: float(np.quantile(flat[:, i], lev)) for q, lev in QUANTILES.items()}
        for i, name in enumerate(names)
    }
    return Posterior(
        names=names,
        samples=phys,
        quantiles=quantiles,
        rhat=dict(zip(names, rhat.tolist(), strict=True)),
        ess=dict(zip(names, ess.tolist(), strict=True)),
        divergences=int(np.concatenate(divergent, axis=1)[:, :draws].sum()),
        chains=chains,
        warmup=warmup,
        draws=draws,
        prior=prior,
        seconds=time.perf_counter() - t0,
        unconfined=walled,
    )
