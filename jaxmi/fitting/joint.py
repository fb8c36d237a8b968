"""Global fits: several data sets of one sample, parameters shared between them or one per data
set, one stacked residual (:func:`fit_global`, :func:`read_spec`, :class:`GlobalFitResult`).

An experiment measures G(T) at several gate voltages, or G(V) at several temperatures, on one
sample: the couplings and E0 are the sample's, mu0 differs per gate, an offset per cooldown.
The fit vector is the shared free parameters, then each data set's own (named
``mu0_meV[gate A]``); the model of every data set is the same program evaluated on its row of a
parameter table (vmapped over the data sets, so the model is traced once whatever their
number); the residuals of all data sets are stacked and minimised by the same solver as a
single fit (:func:`jaxmi.fitting.solve._solve`).

Spec file (TOML; paths relative to it)::

    free = ["J", "E0_meV"]                 # shared by every data set
    start = { J = 0.2, E0_meV = 8.0 }
    # fix = {...}, bounds = { E0_meV = [2.0, 50.0] }, model = { spin = "1", texture = "power_law" }

    [[dataset]]
    name = "gate A"
    file = "gateA.csv"
    free = ["mu0_meV"]                     # this data set's own
    start = { mu0_meV = 2.0 }
    # fix = {...}, bounds = {...}
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxmi import config as _config
from jaxmi import outputs, units
from jaxmi.config import Config
from jaxmi.errors import FitError, FitWarning
from jaxmi.fitting import posterior as _post
from jaxmi.fitting.data import Data, _check_data, read_csv
from jaxmi.fitting.parameters import (
    PARAMETERS,
    _dphysical_dz_jit,
    _physical_jit,
    _problem,
    _to_unconstrained,
    _Transform,
)
from jaxmi.fitting.problem import PAD, _model
from jaxmi.fitting.result import CORRELATION_WARN, FitResult, _json_float, _notes
from jaxmi.fitting.solve import (
    _best_of_starts,
    _linearised_errors,
    _null_direction,
    _optimistix,
)
from jaxmi.model import Model


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One data set of a global fit.

    Attributes:
        name: its name (unique; names its own parameters, ``mu0_meV[name]``).
        data: the measurements (:class:`jaxmi.fitting.Data`).
        free: its own free parameters (one value for this data set only).
        start, fix, bounds: start values, fixed values and bounds of its own parameters (fixed
            values override the shared ones for this data set).
        file: where it was read from, or None.
    """

    name: str
    data: Data
    free: tuple = ()
    start: Mapping = dataclasses.field(default_factory=dict)
    fix: Mapping = dataclasses.field(default_factory=dict)
    bounds: Mapping = dataclasses.field(default_factory=dict)
    file: str | None = None


def local_name(name: str, dataset: str) -> str:
    """The fit vector's name of a data set's own parameter: ``mu0_meV[gate A]``."""
    return f"{name}[{dataset}]"


class _Stack(NamedTuple):
    T_K: Array  # (D, N_pad)
    V_mV: Array
    G: Array
    weight: Array  # 1 / G_err (1 without), 0 on padding


class _JointArgs(NamedTuple):
    values: Array  # (D, P): every parameter of each data set (free entries overwritten)
    isotropic: Array
    row: Array  # (E,) data set of each table entry set from the fit vector
    col: Array  # (E,) parameter column
    entry: Array  # (E,) index into the fit vector
    transform: _Transform
    data: _Stack


def _stacked_residuals(theta: Array, a: _JointArgs, config: Config, family) -> Array:
    """(model - G) / G_err of every data set, stacked: shape (D N_pad,)."""
    table = a.values.at[a.row, a.col].set(theta[a.entry])
    d = a.data

    def one(p, T, V):
        return _model(p, a.isotropic, T, V, config, family)

    return ((jax.vmap(one)(table, d.T_K, d.V_mV) - d.G) * d.weight).reshape(-1)


@functools.partial(jax.jit, static_argnames=("config", "family"))
def _stacked_residuals_and_jacobian(
    theta: Array, args: _JointArgs, *, config: Config, family=None
) -> tuple[Array, Array]:
    """Stacked residuals (D N_pad,) and their forward-mode Jacobian (D N_pad, k)."""

    def r(t):
        return _stacked_residuals(t, args, config, family)

    basis = jnp.eye(theta.shape[0], dtype=theta.dtype)
    return jax.vmap(lambda t: jax.jvp(r, (theta,), (t,)), out_axes=(None, 1))(basis)


@dataclasses.dataclass(frozen=True)
class _Layout:
    """The fit vector of a global fit: names, bounds, transforms (duck-typed like a single
    fit's problem for :func:`_to_unconstrained`)."""

    free: tuple
    kinds: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    scale: np.ndarray


@dataclasses.dataclass(frozen=True)
class GlobalFitResult:
    """Outcome of :func:`fit_global`.

    Attributes:
        datasets: the data sets' names.
        shared: the shared free parameters' names.
        free: the fit vector's names: the shared ones, then each data set's own as
            ``name[dataset]``.
        params: value of each entry of ``free``.
        stderr, correlation: standard errors and correlations over ``free`` (scaled by the
            residual variance without G_err).
        chi2, dof, chi2_reduced: of the stacked residuals (dof = points - len(free)).
        converged, n_steps, starts, starts_converged, weighted, notes: as a single fit's.
        n_points: points of all data sets.
        per_dataset: one :class:`FitResult` view per data set (its full parameters, the
            standard errors of the parameters it depends on, its data, ``G_fit``, and its own
            chi^2 and points), for tables and figures.
        profiles: profile-likelihood intervals of the entries named in ``profile=``.
        files: the data sets' files (None where given as arrays).
        own: per data set, the parameters it holds itself (its own free and fixed ones).
        posterior: the NUTS draws over the fit vector (``posterior=True``), else None.
    """

    datasets: tuple
    shared: tuple
    free: tuple
    params: dict
    stderr: dict
    correlation: dict
    chi2: float
    dof: int
    chi2_reduced: float
    converged: bool
    n_points: int
    n_steps: int
    starts: int
    starts_converged: int
    weighted: bool
    notes: tuple
    per_dataset: tuple
    profiles: dict = dataclasses.field(default_factory=dict)
    files: tuple = ()
    own: tuple = ()
    posterior: _post.Posterior | None = None

    def summary(self) -> str:
        """A printable table: the shared parameters, then one block per data set."""
        lines = [
            f"global fit of {len(self.datasets)} data sets, {self.n_points} points, "
            f"{len(self.free)} free parameter(s) ({len(self.shared)} shared), "
            + ("weighted by G_err" if self.weighted else "unweighted (no G_err)")
        ]
        w = max(12, *(len(k) + 2 for v in self.per_dataset for k in v.params))
        lines.append(f"  {'shared':<{w}} {'value':>14} {'stderr':>12}")
        for name in self.shared:
            lines.append(f"  {name:<{w}} {self.params[name]:>14.6g} {self.stderr[name]:>12.3g}")
        for view, ds, own in zip(self.per_dataset, self.datasets, self.own, strict=True):
            lines.append(f"  dataset {ds!r}: {view.n_points} points, chi2 {view.chi2:.4g}")
            for name, value in view.params.items():
                if name not in own:
                    continue
                if name in view.stderr:
                    lines.append(f"    {name:<{w - 2}} {value:>14.6g} {view.stderr[name]:>12.3g}")
                else:
                    lines.append(f"    {name:<{w - 2}} {value:>14.6g} {'fixed':>12}")
        what = "chi2_reduced" if self.weighted else "residual variance (e^2/h)^2"
        lines.append(
            f"  {what} = {self.chi2_reduced:.4g} (dof {self.dof}); converged: "
            f"{'yes' if self.converged else 'NO'} ({self.n_steps} steps; "
            f"{self.starts_converged}/{self.starts} starts converged)"
        )
        strong = [
            (a, b, self.correlation[a][b])
            for i, a in enumerate(self.free)
            for b in self.free[i + 1 :]
            if abs(self.correlation[a][b]) > 0.9
        ]
        if strong:
            lines.append(
                "  correlation > 0.9: " + ", ".join(f"{a} ~ {b} {c:+.4f}" for a, b, c in strong)
            )
        for prof in self.profiles.values():
            lines.append("  " + prof.line())
        post = self.posterior
        if post is not None:
            lines.append(
                f"  posterior {'':<{w - 8}} {'median':>12} {'68% interval':>27} "
                f"{'95% interval':>27}"
            )
            lines += [f"  {name:<{w}} {post.intervals(name)}" for name in post.names]
            lines.append("  " + post.line())
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """The JSON document of ``jaxmi fit SPEC.toml -o``: ``jaxmi_format``, ``kind``
        ("global"), ``free``, ``shared``, ``params``, ``stderr``, ``correlation`` over the fit
        vector; ``datasets``: per data set its ``name``, ``file``, ``n_points``, ``chi2``,
        ``params`` (every parameter) and ``stderr`` (of those it depends on); then ``chi2``,
        ``dof``, ``chi2_reduced``, ``converged``, ``n_points``, ``weighted``, ``n_steps``,
        ``starts``, ``starts_converged``, ``notes``, ``units``, ``model``."""
        single = self.per_dataset[0].to_json()
        out = {
            "jaxmi_format": outputs.FIT_FORMAT,
            "kind": "global",
            "free": list(self.free),
            "shared": list(self.shared),
            "params": {k: _json_float(v) for k, v in self.params.items()},
            "stderr": {k: _json_float(v) for k, v in self.stderr.items()},
            "correlation": {
                a: {b: _json_float(v) for b, v in row.items()}
                for a, row in self.correlation.items()
            },
            "datasets": [
                {
                    "name": ds,
                    "file": f,
                    "n_points": int(v.n_points),
                    "chi2": _json_float(v.chi2),
                    "params": {k: _json_float(x) for k, x in v.params.items()},
                    "stderr": {k: _json_float(x) for k, x in v.stderr.items()},
                }
                for ds, f, v in zip(self.datasets, self.files, self.per_dataset, strict=True)
            ],
            "chi2": _json_float(self.chi2),
            "dof": int(self.dof),
            "chi2_reduced": _json_float(self.chi2_reduced),
            "converged": bool(self.converged),
            "n_points": int(self.n_points),
            "weighted": bool(self.weighted),
            "n_steps": int(self.n_steps),
            "starts": int(self.starts),
            "starts_converged": int(self.starts_converged),
            "notes": list(self.notes),
            "units": single["units"],
            "model": single["model"],
        }
        if "model_family" in single:
            out["model_family"] = {
                ds: v.to_json().get("model_family")
                for ds, v in zip(self.datasets, self.per_dataset, strict=True)
            }
        if self.profiles:
            out["profile"] = {k: v.to_json() for k, v in self.profiles.items()}
        if self.posterior is not None:
            out["posterior"], out["diagnostics"] = self.posterior.to_json()
        return out

    def plot(self, path, **kwargs) -> None:
        """Write the figure of every data set (:func:`jaxmi.plot.global_fit_figure`)."""
        from jaxmi.plot import global_fit_figure

        global_fit_figure(self, path, **kwargs)


def read_spec(path) -> tuple[list[Dataset], dict]:
    """Read a global fit's TOML spec (module docstring): the data sets (their CSV files read,
    relative to the spec's folder) and the shared options ``free``, ``start``, ``fix``,
    ``bounds``, ``model`` (a :class:`jaxmi.Model` or None).

    Raises:
        FitError: one line naming the file and the key.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as err:
        raise FitError(f"{path}: cannot read: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise FitError(f"{path}: not a TOML file: {err}") from None
    top = {"free", "start", "fix", "bounds", "model", "dataset"}
    unknown = sorted(set(doc) - top)
    if unknown:
        raise FitError(
            f"{path}: unknown key {unknown[0]!r} (a global fit spec has {', '.join(sorted(top))})"
        )
    entries = doc.get("dataset")
    if not isinstance(entries, list) or not entries:
        raise FitError(f"{path}: no [[dataset]] tables (each with name and file)")
    folder = os.path.dirname(os.path.abspath(path))
    datasets = []
    for i, e in enumerate(entries):
        where = f"{path}: dataset {i + 1}"
        if not isinstance(e, dict):
            raise FitError(f"{where}: expected a [[dataset]] table")
        bad = sorted(set(e) - {"name", "file", "free", "start", "fix", "bounds"})
        if bad:
            raise FitError(
                f"{where}: unknown key {bad[0]!r} (a dataset has name, file, free, start, fix, "
                "bounds)"
            )
        if "file" not in e or not isinstance(e["file"], str):
            raise FitError(f'{where}: needs file = "DATA.csv"')
        name = e.get("name", os.path.splitext(os.path.basename(e["file"]))[0])
        if not isinstance(name, str):
            raise FitError(f"{where}: name must be a string, got {name!r}")
        file = os.path.join(folder, e["file"])
        datasets.append(
            Dataset(
                name=name,
                data=read_csv(file),
                free=_names(e.get("free", ()), f"{where}: free"),
                start=_table(e.get("start", {}), f"{where}: start"),
                fix=_table(e.get("fix", {}), f"{where}: fix"),
                bounds=_bounds(e.get("bounds", {}), f"{where}: bounds"),
                file=e["file"],
            )
        )
    model = None
    if "model" in doc:
        m = doc["model"]
        if not isinstance(m, dict) or set(m) - {"spin", "texture"}:
            raise FitError(f'{path}: model = {{ spin = "1/2", texture = "power_law" }}')
        from jaxmi.cli import model_from_options

        names = [*_names(doc.get("free", ()), "free")]
        for ds in datasets:
            names += [*ds.free, *ds.start, *ds.fix, *ds.bounds]
        model = model_from_options(m.get("spin"), m.get("texture"), names)
    options = {
        "free": _names(doc.get("free", ()), f"{path}: free"),
        "start": _table(doc.get("start", {}), f"{path}: start"),
        "fix": _table(doc.get("fix", {}), f"{path}: fix"),
        "bounds": _bounds(doc.get("bounds", {}), f"{path}: bounds"),
        "model": model,
    }
    return datasets, options


def _names(x, where: str) -> tuple:
    if isinstance(x, str):
        x = [s.strip() for s in x.split(",") if s.strip()]
    if not isinstance(x, list | tuple) or not all(isinstance(s, str) for s in x):
        raise FitError(f"{where}: expected a list of parameter names, got {x!r}")
    return tuple(x)


def _table(x, where: str) -> dict:
    if not isinstance(x, dict):
        raise FitError(f"{where}: expected a table {{ NAME = VALUE }}, got {x!r}")
    for k, v in x.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise FitError(f"{where}: {k} must be a number, got {v!r}")
    return {k: float(v) for k, v in x.items()}


def _bounds(x, where: str) -> dict:
    if not isinstance(x, dict):
        raise FitError(f"{where}: expected a table {{ NAME = [LOWER, UPPER] }}, got {x!r}")
    out = {}
    for k, v in x.items():
        ok = isinstance(v, list) and len(v) == 2
        ok = ok and all(isinstance(b, str) and b == "" or isinstance(b, int | float) for b in v)
        if not ok:
            raise FitError(f'{where}: {k} = [LOWER, UPPER] ("" for no bound), got {v!r}')
        out[k] = tuple(None if b == "" else float(b) for b in v)
    return out


def fit_global(
    datasets: Sequence[Dataset],
    *,
    free: Sequence[str] | str | None = None,
    start: Mapping[str, float] | None = None,
    fix: Mapping[str, float] | None = None,
    bounds: Mapping | None = None,
    model: Model | None = None,
    starts: int = 1,
    seed: int = 0,
    config: Config = Config(),
    rtol: float = 1e-7,
    atol: float = 1e-7,
    max_steps: int = 200,
    profile: Sequence[str] | str | None = None,
    posterior: bool = False,
    prior: Mapping[str, tuple[float, float]] | None = None,
    chains: int = _post.CHAINS,
    warmup: int = _post.WARMUP,
    draws: int = _post.DRAWS,
    progress=None,
) -> GlobalFitResult:
    """Fit several data sets at once: ``free`` (with ``start``, ``fix``, ``bounds``) are shared
    by all of them, each :class:`Dataset`'s ``free`` are its own; the model is that of
    :func:`jaxmi.fit` for each, with the same ``model``.

    Every data set gives G_err, or none does. Each data set's view (the shared and its own
    parameters) is checked as a single fit would be (names, identifiability refusals,
    bounds); E0's default lower bound is that of all the data together. ``profile``,
    ``posterior``, ``prior``, ``chains``, ``warmup``, ``draws`` and ``progress`` are
    :func:`jaxmi.fit`'s, over the fit vector's names (``mu0_meV[gate A]``).

    Returns:
        :class:`GlobalFitResult`.

    Raises:
        FitError: bad data sets or parameter choices, one line.
    """
    from jaxmi.fitting.api import _as_free_names, _beyond_stderr

    config = _config.check_config(config)
    if not datasets:
        raise FitError("a global fit needs at least one data set")
    names = [d.name for d in datasets]
    for n in names:
        if not n or any(c in n for c in "[],") or n != n.strip():
            raise FitError(f"dataset name {n!r}: non-empty, no brackets or commas")
    if len(set(names)) != len(names):
        raise FitError(f"dataset names must differ: {', '.join(names)}")
    datas = [_check_data(d.data.T_K, d.data.V_mV, d.data.G, d.data.G_err) for d in datasets]
    weighted = datas[0].G_err is not None
    if any((x.G_err is not None) != weighted for x in datas):
        raise FitError("either every data set gives G_err or none does (chi^2 mixes otherwise)")
    shared = _as_names_list(free)
    start, fix, bounds = dict(start or {}), dict(fix or {}), dict(bounds or {})
    T_all = np.concatenate([x.T_K for x in datas])
    V_all = np.concatenate([x.V_mV for x in datas])
    kT_max = units.KB_MEV_PER_K * float(T_all.max())
    eV_floor = float(np.abs(V_all).max()) / (2 * _config.V_MAX)
    e0_floor = max(kT_max / (2 * _config.T_MAX), eV_floor)
    e0_floor_family = max(kT_max / (2 * _config.family_t_max(config)), eV_floor)
    probs = []
    for d in datasets:
        own = _as_names_list(d.free)
        both = [k for k in own if k in shared]
        if both:
            raise FitError(f"dataset {d.name!r}: {both[0]} is shared (top-level free) and its own")
        for what, table in (("start", d.start), ("bounds", d.bounds)):
            misplaced = [k for k in table if k in shared]
            if misplaced:
                raise FitError(
                    f"dataset {d.name!r}: {what} of the shared parameter {misplaced[0]} belongs "
                    "at the top level (one value for all data sets)"
                )
        try:
            probs.append(
                _problem(
                    (*shared, *own),
                    {**start, **d.start},
                    {**{k: v for k, v in fix.items() if k not in own}, **d.fix},
                    {**bounds, **d.bounds},
                    e0_floor,
                    model,
                    e0_floor_family=e0_floor_family,
                    config=config,
                )
            )
        except FitError as err:
            raise FitError(f"dataset {d.name!r}: {err}") from None
    if len({p.isotropic for p in probs}) > 1:
        raise FitError("every data set must use J (isotropic) or Jx, Jy, Jz alike")
    family = next((p.family for p in probs if p.family is not None), None)
    n_cols = len(probs[0].all_names) if family is not None else len(PARAMETERS)

    # The fit vector: shared, then each data set's own.
    layout_names, kinds, lower, upper, scale, p0 = [], [], [], [], [], []
    rows, cols, entries = [], [], []
    for name in shared:
        i = probs[0].free.index(name)
        layout_names.append(name)
        for arr, src in ((kinds, "kinds"), (lower, "lower"), (upper, "upper"), (scale, "scale")):
            arr.append(getattr(probs[0], src)[i])
        p0.append(probs[0].values[probs[0].free_index[i]])
        for d, p in enumerate(probs):
            rows.append(d)
            cols.append(p.all_names.index(name))
            entries.append(len(layout_names) - 1)
    for d, (ds, p) in enumerate(zip(datasets, probs, strict=True)):
        for name in _as_names_list(ds.free):
            i = p.free.index(name)
            layout_names.append(local_name(name, ds.name))
            for arr, src in (
                (kinds, "kinds"),
                (lower, "lower"),
                (upper, "upper"),
                (scale, "scale"),
            ):
                arr.append(getattr(p, src)[i])
            p0.append(p.values[p.free_index[i]])
            rows.append(d)
            cols.append(p.all_names.index(name))
            entries.append(len(layout_names) - 1)
    layout = _Layout(
        tuple(layout_names), np.array(kinds), np.array(lower), np.array(upper), np.array(scale)
    )
    k = len(layout.free)
    n_total = sum(len(x.G) for x in datas)
    if n_total <= k:
        raise FitError(f"{n_total} data point(s) for {k} free parameter(s): need at least {k + 1}")
    profiled = _as_free_names(profile, layout.free, "profile")
    if posterior:
        _post.check_settings(layout.free, prior, chains, warmup, draws)
    elif prior:
        raise FitError("a prior is for the posterior: give posterior=True with prior=")
    _optimistix()
    n_pad = PAD * -(-max(len(x.G) for x in datas) // PAD)

    def padded(x, fill):
        return np.concatenate([x, np.full(n_pad - len(x), fill)])

    weights = [1.0 / x.G_err if weighted else np.ones(len(x.G)) for x in datas]
    args = _JointArgs(
        values=jnp.asarray(np.stack([p.values[:n_cols] for p in probs])),
        isotropic=jnp.asarray(probs[0].isotropic),
        row=jnp.asarray(rows),
        col=jnp.asarray(cols),
        entry=jnp.asarray(entries),
        transform=_Transform(
            jnp.asarray(layout.kinds),
            jnp.asarray(layout.lower),
            jnp.asarray(layout.upper),
            jnp.asarray(layout.scale),
        ),
        data=_Stack(
            jnp.asarray(np.stack([padded(x.T_K, x.T_K[0]) for x in datas])),
            jnp.asarray(np.stack([padded(x.V_mV, x.V_mV[0]) for x in datas])),
            jnp.asarray(np.stack([padded(x.G, x.G[0]) for x in datas])),
            jnp.asarray(np.stack([padded(w, 0.0) for w in weights])),
        ),
    )
    real = np.concatenate([d * n_pad + np.arange(len(x.G)) for d, x in enumerate(datas)])

    def evaluate(theta):
        return _stacked_residuals_and_jacobian(
            jnp.asarray(theta), args, config=config, family=family
        )

    def at(theta):
        r, jac = evaluate(theta)
        return np.asarray(r)[real], np.asarray(jac)[real]

    def physical(z):
        return np.asarray(_physical_jit(jnp.asarray(z), args.transform))

    p0 = np.array(p0)
    z0 = _to_unconstrained(p0, layout)
    dp0 = np.asarray(_dphysical_dz_jit(jnp.asarray(z0), args.transform))
    null = _null_direction(at(p0)[1], dp0)
    if null is not None:
        combo = " ".join(
            f"{c:+.3g} {n}" for c, n in zip(null, layout.free, strict=True) if abs(c) > 1e-3
        )
        raise FitError(
            f"free parameters {', '.join(layout.free)} are not separately identifiable from "
            f"these data sets: the model does not change along {combo}; fix one of them"
        )
    rng = np.random.default_rng(seed)
    theta, r, jac, ok, steps, n_conv = _best_of_starts(
        lambda i: z0 if i == 0 else z0 + rng.normal(0.0, 0.7, k),
        starts,
        args.transform,
        evaluate,
        at,
        physical,
        rtol,
        atol,
        max_steps,
    )
    chi2 = float(r @ r)
    dof = n_total - k
    chi2_red = chi2 / dof
    cov, err, corr = _linearised_errors(jac, 1.0 if weighted else chi2_red)

    # Per data set: its parameters, the errors of those it depends on, its chi^2.
    table = np.asarray(args.values).copy()
    table[np.array(rows), np.array(cols)] = theta[np.array(entries)]
    views, notes = [], []
    r_sets = np.split(r, np.cumsum([len(x.G) for x in datas])[:-1])
    for d, (ds, p, x) in enumerate(zip(datasets, probs, datas, strict=True)):
        full = p.values.copy()
        full[:n_cols] = table[d]
        params = {name: float(full[p.all_names.index(name)]) for name in p.names}
        mine = [j for j in range(len(entries)) if rows[j] == d]
        idx = [entries[j] for j in mine]
        plain = [p.all_names[cols[j]] for j in mine]
        view_err = {nm: float(err[t]) for nm, t in zip(plain, idx, strict=True)}
        view_corr = {
            a: {b: float(corr[ta, tb]) for b, tb in zip(plain, idx, strict=True)}
            for a, ta in zip(plain, idx, strict=True)
        }
        rd = r_sets[d]
        chi2_d = float(rd @ rd)
        w = weights[d]
        pd = np.array([params[nm] for nm in p.free])
        ed = np.array([view_err[nm] for nm in p.free])
        cd = np.array([[view_corr[a][b] for b in p.free] for a in p.free])
        for note in _notes(p, pd, ed, cd, True, True, x, params, 1, 1, config):
            if note.startswith("outside the validated domain"):
                notes.append(f"dataset {ds.name!r}: {note}")
        views.append(
            FitResult(
                params=params,
                free=p.free,
                stderr=view_err,
                correlation=view_corr,
                chi2=chi2_d,
                dof=max(len(x.G) - len(p.free), 1),
                chi2_reduced=chi2_d / max(len(x.G) - len(p.free), 1),
                converged=ok,
                n_points=len(x.G),
                n_steps=steps,
                starts=starts,
                starts_converged=n_conv,
                weighted=weighted,
                notes=(),
                data=x,
                G_fit=x.G + rd / w,
                config=config,
                model_description=(
                    p.fitted_model(pd).describe()
                    if p.family is not None and p.fitted_model(pd)
                    else None
                ),
                template=model,
            )
        )
    if not ok:
        notes.insert(0, "not converged: the best start did not reach the tolerance (--starts)")
    for i, a in enumerate(layout.free):
        lo, hi = layout.lower[i], layout.upper[i]
        span = hi - lo if math.isfinite(hi - lo) else max(abs(theta[i]), 1.0)
        if (math.isfinite(lo) and theta[i] - lo < 1e-6 * span) or (
            math.isfinite(hi) and hi - theta[i] < 1e-6 * span
        ):
            notes.append(f"at a bound: {a} = {theta[i]:.6g} sits on its bound ({lo:g}, {hi:g})")
        for j in range(i + 1, k):
            if abs(corr[i, j]) > CORRELATION_WARN:
                notes.append(
                    f"near-degenerate: {a} and {layout.free[j]} have correlation {corr[i, j]:+.5f}"
                )
    if not weighted:
        notes.append(
            "no G_err: residuals unweighted; standard errors scaled by the residual variance"
        )
    profiles, post = _beyond_stderr(
        args,
        layout,
        theta,
        err,
        cov,
        chi2,
        weighted,
        evaluate,
        physical,
        real,
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
    import warnings

    for note in notes:
        if note.startswith(
            ("not converged", "at a bound", "near-degenerate", "profile", "posterior")
        ):
            warnings.warn(note, FitWarning, stacklevel=2)
    return GlobalFitResult(
        datasets=tuple(names),
        shared=tuple(shared),
        free=layout.free,
        params={n: float(v) for n, v in zip(layout.free, theta, strict=True)},
        stderr={n: float(e) for n, e in zip(layout.free, err, strict=True)},
        correlation={
            a: {b: float(corr[i, j]) for j, b in enumerate(layout.free)}
            for i, a in enumerate(layout.free)
        },
        chi2=chi2,
        dof=dof,
        chi2_reduced=chi2_red,
        converged=ok,
        n_points=n_total,
        n_steps=steps,
        starts=starts,
        starts_converged=n_conv,
        weighted=weighted,
        notes=tuple(notes),
        per_dataset=tuple(views),
        profiles=profiles,
        files=tuple(d.file for d in datasets),
        own=tuple(tuple(_as_names_list(d.free)) + tuple(d.fix) for d in datasets),
        posterior=post,
    )


def _as_names_list(x) -> list:
    if x is None:
        return []
    if isinstance(x, str):
        return [s.strip() for s in x.split(",") if s.strip()]
    return [str(s).strip() for s in x]
