"""The result of a fit (:class:`FitResult`: table, JSON document, figure) and its notes
(degeneracies, bounds, domain, weighting)."""

from __future__ import annotations

import dataclasses
import fractions
import math
from collections.abc import Mapping

import numpy as np

from jaxmi import config as _config
from jaxmi import outputs, units
from jaxmi.config import Config
from jaxmi.fitting.data import Data
from jaxmi.fitting.parameters import COUPLINGS, MU0, _Problem, _t_max
from jaxmi.fitting.posterior import NOISE, Posterior
from jaxmi.fitting.problem import model
from jaxmi.model import Model

#: |correlation| above which a pair of parameters is reported as near-degenerate.
CORRELATION_WARN = 0.999


def describe_model(description: Mapping) -> str:
    """One line for a ``jaxmi.Model.describe()`` dict, e.g. ``spin 1, diagonal exchange, mu0 =
    0.5 E0, texture power_law (scale 1 E0, exponent 2)``."""
    spin = description.get("spin")
    spin_text = "?" if spin is None else str(fractions.Fraction(spin).limit_denominator(2))
    tex = dict(description.get("texture", {}))
    kind = tex.pop("kind", "?")

    def num(x):
        return "?" if x is None else f"{x:.6g}"

    if kind == "power_law":
        tex_text = (
            f"power_law (scale {num(tex.get('scale'))} E0, exponent {num(tex.get('exponent'))})"
        )
    elif kind == "polynomial":
        cs = tex.get("coefficients", [])
        tex_text = "polynomial (" + ", ".join(f"c{k} {num(c)}" for k, c in enumerate(cs)) + ")"
    else:
        tex_text = f"{kind} {tex}"
    mu0 = description.get("mu0")
    return (
        f"spin {spin_text}, {description.get('exchange')} exchange, mu0 = {num(mu0)} E0, "
        f"texture {tex_text}"
    )


def _json_float(x: float):
    return float(x) if math.isfinite(x) else None


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit`.

    Attributes:
        params: every model parameter by name (free and fixed), in physical units.
        free: names of the free parameters.
        stderr: one standard error per free parameter (from ``(J^T J)^-1`` at the optimum,
            scaled by ``chi2_reduced`` when no ``G_err`` was given).
        correlation: ``correlation[a][b]`` for free parameters a, b.
        chi2: sum of squared weighted residuals; ``dof = n_points - len(free)``.
        chi2_reduced: ``chi2 / dof``; without ``G_err`` this is the residual variance in
            (e^2/h)^2, not a goodness of fit.
        converged: the best start's solve reached its tolerance.
        n_points: number of data points.
        n_steps: Levenberg-Marquardt steps of the best start.
        starts: starts tried; ``starts_converged`` of them converged.
        weighted: whether ``G_err`` weighted the residuals.
        notes: human-readable caveats (near-degenerate pairs, bounds, domain, weighting).
        data: the data fitted; ``G_fit`` the model at the data points.
        model_description: ``jaxmi.Model.describe()`` of the fitted model (spin, exchange,
            mu0 in units of E0, texture with the fitted values), or None for the paper's model
            with none of mu0_meV and the texture parameters named (then the output is exactly
            that of a fit without the model family).
        template: the ``model`` given to :func:`fit` (spin and texture kind), or None.
        posterior: the NUTS draws (:class:`jaxmi.fitting.posterior.Posterior`) of a fit with
            ``posterior=True``, else None.
        profiles: ``{name: jaxmi.fitting.profile.Profile}`` for the parameters named in
            ``profile=``.
    """

    params: dict
    free: tuple
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
    data: Data
    G_fit: np.ndarray
    config: Config = Config()
    model_description: dict | None = None
    template: Model | None = None
    posterior: Posterior | None = None
    profiles: dict = dataclasses.field(default_factory=dict)

    def model(self, T_K, V_mV=0.0) -> np.ndarray:
        """The fitted model ``G / G0`` (e^2/h) at temperatures T_K (kelvin), biases V_mV (mV)."""
        T_K, V_mV = np.broadcast_arrays(np.asarray(T_K, float), np.asarray(V_mV, float))
        return np.asarray(model(self.params, T_K, V_mV, config=self.config, model=self.template))

    def plot(self, path, **kwargs) -> None:
        """Write a figure of the fit to ``path`` (PNG): :func:`jaxmi.plot.fit_figure`."""
        from jaxmi.plot import fit_figure

        fit_figure(self, path, **kwargs)

    def to_json(self) -> dict:
        """The JSON document written by ``jaxmi fit -o``: keys ``jaxmi_format``
        (``"jaxmi-fit/1"``: how jaxmi recognises its own result before replacing a file),
        ``params``, ``stderr``, ``correlation``, ``chi2_reduced``, ``converged``, ``n_points``,
        plus ``free``, ``chi2``, ``dof``, ``weighted``, ``n_steps``, ``starts``, ``notes``,
        ``units`` and ``model``. Non-finite numbers are written as null. Beyond the paper's
        model (or with mu0_meV or a texture parameter named) also ``model_family``:
        :attr:`model_description`. With a posterior also ``posterior`` (``{name: {"median",
        "q2.5", "q16", "q84", "q97.5"}}``) and ``diagnostics`` (``rhat``, ``ess`` per name,
        ``divergences``, ``chains``, ``warmup``, ``draws``, ``sampler``, ``prior``). With
        profiles ``profile``: ``{name: {"values", "delta_chi2", "intervals": {"68": [lo, hi],
        "95": [lo, hi]}, "converged"}}`` (an open side is null)."""
        out = {
            "jaxmi_format": outputs.FIT_FORMAT,
            "params": {k: _json_float(v) for k, v in self.params.items()},
            "stderr": {k: _json_float(v) for k, v in self.stderr.items()},
            "correlation": {
                a: {b: _json_float(v) for b, v in row.items()}
                for a, row in self.correlation.items()
            },
            "chi2_reduced": _json_float(self.chi2_reduced),
            "converged": bool(self.converged),
            "n_points": int(self.n_points),
            "free": list(self.free),
            "chi2": _json_float(self.chi2),
            "dof": int(self.dof),
            "weighted": bool(self.weighted),
            "n_steps": int(self.n_steps),
            "starts": int(self.starts),
            "starts_converged": int(self.starts_converged),
            "notes": list(self.notes),
            "units": {
                "T": "K",
                "V": "mV",
                "G": "e^2/h",
                "E0_meV": "meV (E0 = vF k0)",
                "J": "dimensionless (J / vF)",
                "offset": "e^2/h",
            },
            "model": "G = 1 + n * dG(J; kB T / E0, e V / E0) + offset  [e^2/h]",
        }
        if self.model_description is not None:
            out["units"][MU0] = (
                "meV (Fermi level from the Dirac point; model_family.mu0 = mu0_meV / E0)"
            )
            if self.model_description["texture"]["kind"] == "power_law":
                out["units"]["texture_scale"] = "E0 (theta = (|eps| / (scale E0))^exponent)"
                out["units"]["texture_exponent"] = "dimensionless"
            else:
                out["units"]["texture_ck"] = "rad (theta = sum_k c_k (eps / E0)^k)"
            out["model"] = (
                "G = 1 + n * dG(J; kB T / E0, e V / E0; S, mu0_meV / E0, theta) + offset  [e^2/h]"
            )
            out["model_family"] = self.model_description
        if self.profiles:
            out["profile"] = {k: v.to_json() for k, v in self.profiles.items()}
        if self.posterior is not None:
            out["posterior"], out["diagnostics"] = self.posterior.to_json()
            if NOISE in self.posterior.names:
                out["units"][NOISE] = "e^2/h (noise scale sampled without G_err)"
        return out

    def summary(self) -> str:
        """A printable table of the fit."""
        w = max(10, *(len(k) for k in self.params))
        lines = [
            f"fit of {self.n_points} points, {len(self.free)} free parameter(s), "
            + ("weighted by G_err" if self.weighted else "unweighted (no G_err)"),
        ]
        if self.model_description is not None:
            lines.append(f"  model: {describe_model(self.model_description)}")
        post = self.posterior
        head = f"  {'parameter':<{w}} {'value':>14} {'stderr':>12}"
        if post is not None:
            head += f"  {'median':>12} {'68% interval':>27} {'95% interval':>27}"
        lines.append(head)
        for name, value in self.params.items():
            if name in self.stderr:
                line = f"  {name:<{w}} {value:>14.6g} {self.stderr[name]:>12.3g}"
                lines.append(line + ("  " + post.intervals(name) if post is not None else ""))
            else:
                lines.append(f"  {name:<{w}} {value:>14.6g} {'fixed':>12}")
        if post is not None and NOISE in post.names:
            sigma = math.sqrt(self.chi2_reduced)
            lines.append(f"  {NOISE:<{w}} {sigma:>14.6g} {'':>12}" + "  " + post.intervals(NOISE))
        what = "chi2_reduced" if self.weighted else "residual variance (e^2/h)^2"
        lines.append(
            f"  {what} = {self.chi2_reduced:.4g} (dof {self.dof}); converged: "
            f"{'yes' if self.converged else 'NO'} ({self.n_steps} steps; "
            f"{self.starts_converged}/{self.starts} starts converged)"
        )
        if len(self.free) > 1:
            lines.append("  correlation:")
            c = max(9, *(len(b) for b in self.free))
            lines.append("  " + " " * w + "".join(f" {b:>{c}}" for b in self.free))
            for a in self.free:
                lines.append(
                    f"  {a:<{w}}" + "".join(f" {self.correlation[a][b]:>{c}.4f}" for b in self.free)
                )
        for prof in self.profiles.values():
            lines.append("  " + prof.line())
        if post is not None:
            lines.append("  " + post.line())
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


def _degeneracy_hint(a: str, b: str, prob: _Problem) -> str:
    """Why a pair of parameters may be near-degenerate, and what separates them ("" if no
    known reason)."""
    pair = {a, b}
    couplings = pair & set(COUPLINGS)
    gate = prob.family is not None and prob.value(MU0) != 0.0 or MU0 in prob.free
    if couplings and "E0_meV" in pair:
        if gate:
            return (
                " (for kB T, eV, mu0 << E0 dG depends on J^2 / E0^4 times a function of "
                "kB T, eV and mu0 only: extend the data toward kB T, eV or mu0 ~ E0, or fix "
                "E0_meV)"
            )
        return (
            " (in the T^4 / (eV)^4 regime dG depends on J^2 / E0^4 only: extend the data toward "
            "kB T, eV ~ E0, or fix E0_meV)"
        )
    if MU0 in pair and (couplings or "E0_meV" in pair):
        return (
            " (for kB T << mu0 << E0 at V = 0 dG ~ J^2 mu0^2 T^2 / E0^4: mu0 is separated "
            "only by the T dependence beyond T^2 or by finite-bias data; extend the data "
            "toward kB T, eV ~ mu0, or fix mu0_meV)"
        )
    if "texture_exponent" in pair and "E0_meV" in pair:
        return (
            " (theta = (eps / E0)^p is probed near the Fermi level only: a change of p is "
            "close to a change of E0 over a narrow energy range; widen the range of kB T, eV "
            "and mu0)"
        )
    return ""


def _notes(
    prob, p, err, corr, ok, weighted, data, params, starts, n_conv, config=Config()
) -> list[str]:
    notes = []
    if not ok:
        notes.append(
            "not converged: the best start did not reach the tolerance (try --starts, other "
            "start values or bounds); the standard errors are those at the last iterate"
        )
    for i, name in enumerate(prob.free):
        lo, hi = prob.lower[i], prob.upper[i]
        span = hi - lo if math.isfinite(hi - lo) else max(abs(p[i]), 1.0)
        if (math.isfinite(lo) and p[i] - lo < 1e-6 * span) or (
            math.isfinite(hi) and hi - p[i] < 1e-6 * span
        ):
            notes.append(
                f"at a bound: {name} = {p[i]:.6g} sits on its bound ({lo:g}, {hi:g}); its "
                "standard error assumes an interior optimum"
            )
        if not math.isfinite(err[i]):
            notes.append(
                f"not identifiable: {name} is undetermined at the optimum (singular Jacobian)"
            )
    for i, a in enumerate(prob.free):
        for j in range(i + 1, len(prob.free)):
            if abs(corr[i, j]) > CORRELATION_WARN:
                b = prob.free[j]
                hint = _degeneracy_hint(a, b, prob)
                notes.append(
                    f"near-degenerate: {a} and {b} have correlation {corr[i, j]:+.5f}{hint}"
                )
    E0 = params["E0_meV"]
    t = units.temperature(data.T_K, E0)
    v = np.abs(units.bias(data.V_mV, E0))
    t_max = _t_max(prob.family, config)
    outside = bool(_config.outside_domain(t, v, t_max=t_max).any())
    if prob.family is None:
        if outside:
            notes.append(
                f"outside the validated domain at the optimum: max kB T/E0 = {t.max():.3g}, max "
                f"|eV|/E0 = {v.max():.3g} (validated: <= {_config.T_MAX}, <= {_config.V_MAX}); "
                "check with a higher quadrature order (docs/accuracy.md)"
            )
    else:
        mu0 = abs(params.get(MU0, 0.0)) / E0
        if outside or mu0 > _config.FAMILY_MU0_MAX:
            notes.append(
                f"outside the validated domain at the optimum: max kB T/E0 = {t.max():.3g}, max "
                f"|eV|/E0 = {v.max():.3g}, |mu0|/E0 = {mu0:.3g} (validated on the general path: "
                f"<= {t_max:g}, <= {_config.V_MAX}, <= {_config.FAMILY_MU0_MAX}); check with a "
                "higher quadrature order, Config(order=...) (docs/accuracy.md)"
            )
    if not weighted:
        notes.append(
            "no G_err: residuals unweighted; standard errors scaled by the residual variance "
            "(chi2_reduced is that variance in (e^2/h)^2)"
        )
    if starts > 1 and n_conv < starts:
        notes.append(f"{starts - n_conv} of {starts} starts did not converge")
    return notes
