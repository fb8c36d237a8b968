"""The fit itself (:func:`fit`): data and parameters checked, identifiability at the start,
the starts solved, the best kept, its errors and notes."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from jaxmi import config as _config
from jaxmi import units
from jaxmi.config import Config
from jaxmi.errors import FitError, FitWarning
from jaxmi.fitting import posterior as _post
from jaxmi.fitting import profile as _profile
from jaxmi.fitting.data import _check_data
from jaxmi.fitting.parameters import (
    _ANISOTROPIC,
    _ISOTROPIC,
    _dphysical_dz_jit,
    _physical_jit,
    _problem,
    _to_unconstrained,
)
from jaxmi.fitting.problem import _make_args, _residuals_and_jacobian
from jaxmi.fitting.result import FitResult, _notes
from jaxmi.fitting.solve import (
    _best_of_starts,
    _linearised_errors,
    _null_direction,
    _optimistix,
    _prescale,
)
from jaxmi.model import Model, PowerLaw


def fit(
    T_K,
    V_mV,
    G,
    G_err=None,
    *,
    free: Sequence[str] | str | None = None,
    start: Mapping[str, float] | None = None,
    fix: Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
    starts: int = 1,
    seed: int = 0,
    config: Config = Config(),
    rtol: float = 1e-7,
    atol: float = 1e-7,
    max_steps: int = 200,
    model: Model | None = None,
    posterior: bool = False,
    prior: Mapping[str, tuple[float, float]] | None = None,
    chains: int = _post.CHAINS,
    warmup: int = _post.WARMUP,
    draws: int = _post.DRAWS,
    progress=None,
    profile: Sequence[str] | str | None = None,
) -> FitResult:
    """Fit couplings, E0, n, an offset, the Fermi level and the texture to a measured edge
    conductance.

    Model: ``G / G0 = 1 + n * dG(J; kB T / E0, e V / E0) + offset`` with G0 = e^2/h (one
    ballistic helical edge), ``dG`` = :func:`jaxmi.conductance` for ``model`` with
    ``mu0 = mu0_meV / E0`` and the texture's parameters.

    Args:
        T_K: temperatures, kelvin, shape (N,), > 0.
        V_mV: bias voltages, millivolt, shape (N,) or scalar; ``None`` means 0 (linear response).
        G: measured conductance in e^2/h, shape (N,).
        G_err: one standard deviation of G (e^2/h), shape (N,) or scalar, or None (then the
            standard errors are scaled by the residual variance).
        free: names of the free parameters (``Jx, Jy, Jz`` or ``J``; ``E0_meV``, ``n``,
            ``offset``; ``mu0_meV`` and the texture's: ``texture_scale``, ``texture_exponent``
            for a power law, ``texture_c0, texture_c1, ...`` for a polynomial), a sequence or a
            comma-separated string; default: the keys of ``start``.
        start: start values of free parameters (default 0.2 for couplings, n = 1, offset = 0,
            the model's values for the texture; ``E0_meV`` and ``mu0_meV`` have no default).
        fix: values of fixed parameters. Unmentioned couplings are fixed at 0, n at 1, offset
            at 0, mu0_meV at 0, the texture's parameters at the model's values. Naming ``J``
            anywhere selects the isotropic model.
        bounds: ``{name: (lower, upper)}`` for free parameters, ``None`` for no bound; default
            ``[0, inf)`` for couplings (dG is even in each component) and n, none for offset,
            and for E0_meV ``[max(kB T_max / 2, |eV|_max / 4), inf)``: at most twice beyond the
            engine's validated domain (kB T <= E0, |eV| <= 2 E0), so that the solver cannot
            wander to E0 -> 0 where the quadrature is unchecked (beyond the paper's model the
            validated kB T / E0 is 0.3, so the floor is kB T_max / 0.6); ``[0, inf)`` for
            mu0_meV (G is even in mu0 for an even texture; unbounded when a polynomial texture
            has a fixed non-zero odd coefficient), ``(0, inf)`` for texture_scale and
            texture_exponent, none for polynomial coefficients. Implemented as smooth
            transforms; a value at a bound is reported in notes.
        starts: number of Levenberg-Marquardt starts; the first is ``start``, the others are
            drawn around it (about a factor 2 either way, seeded by ``seed``); the best chi^2 is
            kept.
        seed: seed of the extra starts and of the posterior's chains.
        config: quadrature options of the engine.
        rtol, atol: Levenberg-Marquardt tolerances (on the unconstrained variables and chi^2).
        max_steps: step limit per start.
        model: the member of the model family to fit (:class:`jaxmi.Model`): its spin S and
            texture kind are fixed choices, its texture's values the defaults of the texture
            parameters; ``Model.mu0`` must be 0 (give the Fermi level as ``mu0_meV``). Diagonal
            exchange only; power-law and polynomial textures. Default: the paper's model
            (spin 1/2, theta = (eps / E0)^2, mu0 = 0). The paper's model with none of mu0_meV
            and the texture's parameters free runs the paper's fast path; any other the
            general path (:mod:`jaxmi.family`, ~10x slower per point, validated for
            kB T <= 0.3 E0, |mu0| <= E0).

        posterior: also draw the posterior of the free parameters with NUTS
            (:mod:`jaxmi.fitting.posterior`: Gaussian errors G_err, or a sampled noise scale
            ``sigma_G`` without them; flat priors within the bounds times ``prior``), started
            around the least-squares optimum; its quantiles and diagnostics are
            :attr:`FitResult.posterior`, failed diagnostics (R-hat > 1.01, ESS < 400,
            divergences) notes and FitWarnings.
        prior: normal priors ``{name: (mean, sd)}`` (physical units) on free parameters, for
            the posterior.
        chains, warmup, draws: NUTS chains (run side by side, vmapped), adaptation steps and
            kept draws per chain.
        progress: ``progress(done, total)`` after each block of NUTS transitions (per chain).
        profile: free parameters (a sequence or a comma-separated string) whose
            profile-likelihood intervals to compute (:mod:`jaxmi.fitting.profile`: the
            parameter held at a sequence of values, the others refitted; the 68% and 95%
            intervals where chi^2 rises by 1 and 3.84): :attr:`FitResult.profiles`.

    Returns:
        :class:`FitResult` (``.summary()`` for a table, ``.to_json()`` for the file format).

    Raises:
        FitError: bad data (naming the index), unknown or contradictory parameter choices,
            non-identifiable free parameters (``n`` with a coupling, E0_meV with the texture's
            energy scale, or a null direction of the Jacobian at the start), an unsupported
            model, or no more data points than free parameters; optimistix is not
            installed (every fit needs it).
        ConfigError: ``config`` is not a :class:`jaxmi.Config`.

    Example:
        >>> import numpy as np, jaxmi.fitting
        >>> T = np.linspace(2.0, 30.0, 15)
        >>> truth = {"Jx": 0.3, "Jz": 0.6, "E0_meV": 10.0}
        >>> G = jaxmi.fitting.model(truth, T, 0.0)
        >>> r = jaxmi.fitting.fit(T, None, G, 1e-3, free="Jx,Jz", start={"Jx": 0.2, "Jz": 0.4},
        ...                   fix={"E0_meV": 10.0})
        >>> [round(r.params[k], 6) for k in ("Jx", "Jz")], r.converged
        ([0.3, 0.6], True)
    """
    config = _config.check_config(config)
    data = _check_data(T_K, V_mV, G, G_err)
    kT_max = units.KB_MEV_PER_K * float(data.T_K.max())
    eV_floor = float(np.abs(data.V_mV).max()) / (2 * _config.V_MAX)
    e0_floor = max(kT_max / (2 * _config.T_MAX), eV_floor)
    e0_floor_family = max(kT_max / (2 * _config.family_t_max(config)), eV_floor)
    prob = _problem(
        free, start, fix, bounds, e0_floor, model, e0_floor_family=e0_floor_family, config=config
    )
    family = prob.family
    _optimistix()  # before anything is compiled
    n_points, k = data.G.shape[0], len(prob.free)
    if n_points <= k:
        raise FitError(
            f"{n_points} data point(s), but {k} free parameter(s) ({', '.join(prob.free)}) need "
            f"at least {k + 1}"
        )
    profiled = _as_free_names(profile, prob.free, "profile")
    if posterior:
        _post.check_settings(prob.free, prior, chains, warmup, draws)
    elif prior:
        raise FitError("a prior is for the posterior: give posterior=True with prior=")
    if not (isinstance(starts, int) and starts >= 1):
        raise FitError(f"starts must be a positive integer, got {starts!r}")
    weighted = data.G_err is not None
    args, weight = _make_args(prob, data)

    def evaluate(p_free):
        return _residuals_and_jacobian(jnp.asarray(p_free), args, config=config, family=family)

    def jacobian_at(p_free):
        r, jac = evaluate(p_free)
        return np.asarray(r)[:n_points], np.asarray(jac)[:n_points]

    def physical(z):
        return np.asarray(_physical_jit(jnp.asarray(z), args.transform))

    def dp_dz(z):
        return np.asarray(_dphysical_dz_jit(jnp.asarray(z), args.transform))

    # Identifiability at the start: a null direction of the Jacobian there that persists at a
    # second, perturbed point is structural (not a coincidence of the start values).
    rng = np.random.default_rng(seed)
    p0 = prob.values[prob.free_index]
    z0 = _to_unconstrained(p0, prob)
    null = _null_direction(jacobian_at(p0)[1], dp_dz(z0))
    if null is not None:
        z1 = z0 + rng.uniform(0.2, 0.4, k) * rng.choice([-1.0, 1.0], k)
        if _null_direction(jacobian_at(physical(z1))[1], dp_dz(z1)) is not None:
            combo = " ".join(
                f"{c:+.3g} {name}" for c, name in zip(null, prob.free, strict=True) if abs(c) > 1e-3
            )
            raise FitError(
                f"free parameters {', '.join(prob.free)} are not separately identifiable from "
                f"these data: the model does not change along the combination {combo} (null "
                "direction of the column-scaled Jacobian); fix one of them (docs/fitting.md, "
                "identifiability)"
            )

    def start_z(i):
        pi = p0 if i == 0 else physical(z0 + rng.normal(0.0, 0.7, k))
        pi = _prescale(prob, pi, jacobian_at(pi)[0], weight, data)
        return _to_unconstrained(pi, prob)

    p, r, jac, ok, steps, n_conv = _best_of_starts(
        start_z, starts, args.transform, evaluate, jacobian_at, physical, rtol, atol, max_steps
    )
    dof = n_points - k
    chi2 = float(r @ r)
    chi2_red = chi2 / dof
    cov, err, corr = _linearised_errors(jac, 1.0 if weighted else chi2_red)

    params_full = prob.values.copy()
    params_full[prob.free_index] = p
    params = {name: float(params_full[prob.all_names.index(name)]) for name in prob.names}
    notes = _notes(prob, p, err, corr, ok, weighted, data, params, starts, n_conv, config)
    description = None
    if len(prob.names) > len(_ISOTROPIC if prob.isotropic else _ANISOTROPIC):
        fitted = prob.fitted_model(p) or Model(
            texture=PowerLaw(params["texture_scale"], params["texture_exponent"])
        )
        description = fitted.describe()
    profiles, post = _beyond_stderr(
        args,
        prob,
        p,
        err,
        cov,
        chi2,
        weighted,
        evaluate,
        physical,
        np.arange(n_points),
        notes,
        profiled=profiled,
        config=config,
        family=family,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        posterior=posterior,
        prior=prior,
        chains=chains,
        warmup=warmup,
        draws=draws,
        seed=seed,
        progress=progress,
    )
    for note in notes:
        if note.startswith(
            (
                "near-degenerate",
                "at a bound",
                "not converged",
                "not identifiable",
                "posterior",
                "profile",
            )
        ):
            warnings.warn(note, FitWarning, stacklevel=2)
    G_fit = data.G + r / weight
    return FitResult(
        params=params,
        free=prob.free,
        stderr={name: float(e) for name, e in zip(prob.free, err, strict=True)},
        correlation={
            a: {b: float(corr[i, j]) for j, b in enumerate(prob.free)}
            for i, a in enumerate(prob.free)
        },
        chi2=chi2,
        dof=dof,
        chi2_reduced=chi2_red,
        converged=ok,
        n_points=n_points,
        n_steps=steps,
        starts=starts,
        starts_converged=n_conv,
        weighted=weighted,
        notes=tuple(notes),
        data=data,
        G_fit=G_fit,
        config=config,
        model_description=description,
        template=model,
        posterior=post,
        profiles=profiles,
    )


def _beyond_stderr(
    args,
    prob,
    p,
    err,
    cov,
    chi2,
    weighted,
    evaluate,
    physical,
    real,
    notes,
    *,
    profiled,
    config,
    family,
    rtol,
    atol,
    max_steps,
    posterior,
    prior,
    chains,
    warmup,
    draws,
    seed,
    progress,
):
    """The profiles of ``profiled`` and, with ``posterior``, the NUTS draws, at the optimum ``p``
    of a single or a global fit (``prob``: its free names and bound transform; ``real``: the
    indices of the real points among the residuals); their notes are appended to ``notes``.
    Returns (profiles, posterior or None)."""
    k = len(prob.free)
    dof = len(real) - k
    chi2_red = chi2 / dof
    z_opt = _to_unconstrained(p, prob)
    dpz = np.asarray(_dphysical_dz_jit(jnp.asarray(z_opt), args.transform))
    profiles = {}
    for name in profiled:
        i = prob.free.index(name)
        profiles[name] = _profile.profile(
            i,
            name,
            z_opt,
            float(err[i] / abs(dpz[i])),
            chi2,
            1.0 if weighted else chi2_red,
            args.transform,
            evaluate,
            physical,
            real,
            rtol,
            atol,
            max_steps,
        )
        notes.extend(profiles[name].problems())
    post = None
    if posterior:
        post = _post.sample_posterior(
            args,
            z_opt,
            cov / np.outer(dpz, dpz) if np.isfinite(err).all() else np.full((k, k), np.inf),
            free=prob.free,
            n_points=len(real),
            weighted=weighted,
            sigma_hat=math.sqrt(chi2_red),
            config=config,
            family=family,
            prior=prior,
            chains=chains,
            warmup=warmup,
            draws=draws,
            seed=seed,
            progress=progress,
        )
        notes.extend(post.problems())
    return profiles, post


def _as_free_names(names, free: tuple, what: str) -> tuple[str, ...]:
    """A sequence or comma-separated string of free parameter names, checked."""
    if names is None:
        return ()
    items = names.split(",") if isinstance(names, str) else list(names)
    out = []
    for item in items:
        name = str(item).strip()
        if not name:
            continue
        if name not in free:
            raise FitError(f"{what}: {name!r} is not a free parameter (free: {', '.join(free)})")
        if name not in out:
            out.append(name)
    return tuple(out)
