"""Least-squares fits of couplings and the spin-texture scale to a measured edge conductance.

Model (physical units; docs/fitting.md)::

    G / G0 = 1 + n * dG(J; kB T / E0, e V / E0) + offset

with G0 = e^2/h, so ``1`` is the conductance of one ballistic helical edge in units of e^2/h,
``dG`` the impurity correction of :func:`jaxmi.conductance` (the differential conductance dI/dV
at bias V), ``J`` the couplings (``Jx, Jy, Jz``, or ``J`` for an isotropic impurity), ``E0 = vF k0``
in meV, ``n`` the number of impurities and ``offset`` a constant, both fixed by default.
T is in kelvin and V in millivolt (:mod:`jaxmi.units`).

Beyond the paper's model (``model=`` a :class:`jaxmi.Model`: impurity spin S, texture kind), the
Fermi level ``mu0_meV`` (meV from the Dirac point; the engine's mu0 is ``mu0_meV / E0``) and the
texture's parameters (``texture_scale``, ``texture_exponent`` of a power law, in units of E0 and
dimensionless; ``texture_c0, texture_c1, ...`` of a polynomial in eps / E0) are parameters like the
others, free or fixed by name. The paper's model with none of them free runs exactly the paper
path (same compiled solver, same output); anything else runs the general path (:mod:`jaxmi.family`).

The residuals ``(model - G) / G_err`` are minimised with optimistix's Levenberg-Marquardt; its
Jacobian is forward-mode autodiff through :func:`jaxmi.conductance` (the master equation and its
V-derivative), never finite differences. Bounds are smooth reparametrisations (exp for one
bound, a logistic for two), so the solver itself is unconstrained. Standard errors come from the
Jacobian in the physical parameters at the optimum, ``cov = (J^T J)^-1``, scaled by the residual
variance when no ``G_err`` is given.

The solve is jitted on the number of free parameters, the number of points (padded to a multiple
of 16 with zero-weight points), the quadrature ``Config``, the model's static part (spin, texture
kind; None for the paper's model) and the tolerances only: which parameters are free, their
bounds, fixed values, starts and data are traced arrays, so a new data set of similar size or
another choice of free parameters reuses the compiled solver.
"""

from __future__ import annotations

import csv
import dataclasses
import fractions
import functools
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

# Imported at module level, not through ``jaxmi``'s lazy attributes: the engine's modules must
# be loaded before the first trace (a module-level constant created inside a trace would leak).
from jaxmi import api as _api
from jaxmi import config as _config
from jaxmi import family as _family  # noqa: F401  (loaded before the first trace)
from jaxmi import outputs, units
from jaxmi.config import Config
from jaxmi.domain import TEXTURES
from jaxmi.errors import FitError, FitWarning, JaxmiError, StoreError
from jaxmi.model import Model, Polynomial, PowerLaw
from jaxmi.strategy import PAPER, choose_for

#: Parameter names (``J`` is the isotropic alternative to ``Jx, Jy, Jz``).
PARAMETERS = ("Jx", "Jy", "Jz", "J", "E0_meV", "n", "offset")
COUPLINGS = ("Jx", "Jy", "Jz", "J")
_ANISOTROPIC = ("Jx", "Jy", "Jz", "E0_meV", "n", "offset")
_ISOTROPIC = ("J", "E0_meV", "n", "offset")

#: The model family's parameters (after :data:`PARAMETERS` in the parameter vector): the Fermi
#: level, then the texture's (``texture_scale, texture_exponent`` for a power law,
#: ``texture_c0, texture_c1, ...`` for a polynomial; see :func:`family_parameters`).
MU0 = "mu0_meV"
POWER_LAW_PARAMETERS = ("texture_scale", "texture_exponent")

#: Default bounds. The conductance is even in each coupling component separately (observed for
#: random J, T, V to the last bit, for every spin S, gate and texture; tests/test_fit.py and
#: tests/test_fit_model.py check it), so a fit determines magnitudes: couplings are >= 0 unless
#: other bounds are given. E0_meV's lower bound is data-dependent (see :func:`fit`, ``bounds``);
#: 0 here. mu0_meV >= 0: the conductance is even in mu0 for an even texture (docs/fitting.md);
#: unbounded when a polynomial texture has a fixed non-zero odd coefficient. Polynomial
#: coefficients are unbounded.
DEFAULT_BOUNDS = {
    "Jx": (0.0, math.inf),
    "Jy": (0.0, math.inf),
    "Jz": (0.0, math.inf),
    "J": (0.0, math.inf),
    "E0_meV": (0.0, math.inf),
    "n": (0.0, math.inf),
    "offset": (-math.inf, math.inf),
    MU0: (0.0, math.inf),
    "texture_scale": (0.0, math.inf),
    "texture_exponent": (0.0, math.inf),
}
#: Values of parameters that are neither free nor fixed explicitly (E0_meV has none: it must be
#: given). A coupling component not mentioned is 0 (e.g. Jy = 0 for an XXZ impurity). The
#: texture's parameters default to those of the model's texture, mu0_meV to 0.
DEFAULT_FIXED = {"Jx": 0.0, "Jy": 0.0, "Jz": 0.0, "n": 1.0, "offset": 0.0, MU0: 0.0}
#: Start values of free parameters given without one (E0_meV and mu0_meV have none; texture
#: parameters start at the model's values).
DEFAULT_START = {"Jx": 0.2, "Jy": 0.2, "Jz": 0.2, "J": 0.2, "n": 1.0, "offset": 0.0}

#: |correlation| above which a pair of parameters is reported as near-degenerate.
CORRELATION_WARN = 0.999
#: Relative singular value of the column-normalised Jacobian below which free parameters are
#: exactly degenerate (a structural null direction, e.g. Jx, Jz and offset in linear response
#: with Jy = 0; numerically ~1e-12 there).
RANK_TOL = 1e-7


def _coefficient_names(n: int) -> tuple[str, ...]:
    return tuple(f"texture_c{k}" for k in range(n))


@dataclasses.dataclass(frozen=True)
class _Family:
    """The static part of a fitted model beyond the paper's: impurity spin, texture kind and
    (polynomial) number of coefficients. Hashable: a static argument of the jitted solve."""

    spin: float = 0.5
    texture: str = "power_law"
    n_coefficients: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        """The parameters after :data:`PARAMETERS`: mu0_meV, then the texture's."""
        if self.texture == "power_law":
            return (MU0, *POWER_LAW_PARAMETERS)
        return (MU0, *_coefficient_names(self.n_coefficients))

    def build(self, extra: Array, E0: Array) -> Model:
        """The :class:`jaxmi.Model` for the values ``extra`` of :attr:`names` (mu0 in meV)."""
        if self.texture == "power_law":
            texture = PowerLaw(scale=extra[1], exponent=extra[2])
        else:
            texture = Polynomial(coefficients=extra[1:])
        return Model(spin=self.spin, mu0=extra[0] / E0, texture=texture)


def _family_of(model: Model | None) -> tuple[_Family, dict[str, float]]:
    """The static part of ``model`` and the default values of its parameters (mu0_meV = 0 and
    the texture's values). Raises FitError for what the fit does not support."""
    if model is None:
        model = Model()
    if not isinstance(model, Model):
        raise FitError(f"model must be a jaxmi.Model, got {type(model).__name__}")
    try:
        model.check()
    except JaxmiError as err:
        raise FitError(f"model: {err}") from None
    if model.exchange != "diagonal":
        raise FitError(
            "model: fits support the diagonal exchange only (couplings Jx, Jy, Jz or an isotropic "
            "J); a tensor exchange is not a fit parameter set (fit its principal values with "
            "exchange='diagonal', docs/fitting.md)"
        )
    tex = model.texture
    if isinstance(tex, PowerLaw):
        fam = _Family(model.spin, "power_law", 0)
        texture_values = [tex.scale, tex.exponent]
    elif isinstance(tex, Polynomial):
        coefficients = np.ravel(np.asarray(tex.coefficients, dtype=float))
        if coefficients.size < 2:
            raise FitError(
                "model: a polynomial texture needs at least 2 coefficients (c0 + c1 eps), got "
                f"{coefficients.size}"
            )
        fam = _Family(model.spin, "polynomial", int(coefficients.size))
        texture_values = list(coefficients)
    else:
        raise FitError(
            f"model: fits support the power_law and polynomial textures, not "
            f"{type(tex).__name__} (its parameters have no names to free or fix)"
        )
    mu0 = float(np.asarray(model.mu0))
    if mu0 != 0.0:
        raise FitError(
            f"model: give the Fermi level as the parameter mu0_meV (meV; fix= or start=), not as "
            f"Model.mu0 (units of E0, got {mu0:g})"
        )
    defaults = {MU0: 0.0}
    for name, value in zip(fam.names[1:], texture_values, strict=True):
        defaults[name] = float(np.asarray(value))
    return fam, defaults


def family_parameters(model: Model | None = None) -> tuple[str, ...]:
    """Names of the model family's parameters that a fit of ``model`` knows (after
    :data:`PARAMETERS`): ``mu0_meV`` and the texture's.

    Example:
        >>> family_parameters()
        ('mu0_meV', 'texture_scale', 'texture_exponent')
        >>> family_parameters(Model(spin=1, texture=Polynomial((0.0, 0.0, 1.0))))
        ('mu0_meV', 'texture_c0', 'texture_c1', 'texture_c2')
    """
    return _family_of(model)[0].names


def _is_paper(fam: _Family, values: Mapping[str, float], free: Sequence[str]) -> bool:
    """True when the fitted model is the paper's with none of its parameters free (the fast
    path, exactly as without the model family): jaxmi.strategy.choose_for decides."""
    if set(fam.names) & set(free):
        return False
    mu0, scale, exponent = (values.get(n) for n in (MU0, *POWER_LAW_PARAMETERS))
    return choose_for(fam.spin, "diagonal", fam.texture, mu0, scale, exponent) == PAPER


# ----------------------------------------------------------------------------------------------
# The model


def model(
    params: Mapping[str, float],
    T_K,
    V_mV,
    *,
    config: Config = Config(),
    model: Model | None = None,
) -> Array:
    """Model conductance ``G / G0 = 1 + n dG(J; kB T/E0, eV/E0) + offset``, units e^2/h.

    Args:
        params: parameter values by name: ``Jx, Jy, Jz`` or ``J`` (dimensionless couplings,
            J / vF), ``E0_meV`` (vF k0 in meV), and optionally ``n`` (default 1) and ``offset``
            (e^2/h, default 0), ``mu0_meV`` (Fermi level from the Dirac point, meV; default 0)
            and the texture's parameters (default: those of ``model``'s texture). Missing
            coupling components are 0.
        T_K: temperatures in kelvin, shape (N,) (or anything broadcasting with ``V_mV``).
        V_mV: biases in millivolt, same shape.
        config: quadrature options of :func:`jaxmi.conductance`.
        model: spin S and texture kind (:class:`jaxmi.Model` with mu0 = 0; default: the
            paper's model).

    Returns:
        G / G0 at each point, the broadcast shape of ``T_K`` and ``V_mV``.

    Example:
        >>> import jaxmi.fitting
        >>> g = jaxmi.fitting.model({"Jx": 0.2, "Jz": 0.2, "E0_meV": 10.0}, [4.0, 8.0], [0.0, 0.0])
        >>> [round(float(x), 6) for x in g]  # Eq. 14 with Jy = 0, Jz = Jx: 1 - Jx^2/2
        [0.98, 0.98]
    """
    config = _config.check_config(config)
    fam, defaults = _family_of(model)
    allowed = PARAMETERS + fam.names
    unknown = [k for k in params if k not in allowed]
    if unknown:
        raise FitError(f"unknown parameter {unknown[0]!r} (allowed: {', '.join(allowed)})")
    iso = "J" in params
    if iso and any(k in params for k in ("Jx", "Jy", "Jz")):
        raise FitError("give either J (isotropic) or Jx, Jy, Jz, not both")
    if "E0_meV" not in params:
        raise FitError("E0_meV (vF k0 in meV) has no value")
    base = {**DEFAULT_FIXED, **defaults}
    values = np.array([float(params.get(k, base.get(k, 0.0))) for k in allowed])
    extra = dict(zip(fam.names, values[len(PARAMETERS) :], strict=True))
    if _is_paper(fam, {**defaults, **extra}, ()):
        values, fam = values[: len(PARAMETERS)], None
    return _model(
        jnp.asarray(values),
        jnp.asarray(iso),
        jnp.asarray(T_K, float),
        jnp.asarray(V_mV, float),
        config,
        fam,
    )


def _model(
    p: Array,
    isotropic: Array,
    T_K: Array,
    V_mV: Array,
    config: Config,
    family: _Family | None = None,
) -> Array:
    """``1 + n dG + offset`` for the vector ``p`` of all :data:`PARAMETERS` (in that order),
    followed by ``family.names`` unless ``family`` is None (the paper's model); ``isotropic``
    (a traced bool) selects J = (J, J, J) over (Jx, Jy, Jz)."""
    J = jnp.where(isotropic, p[3] * jnp.ones(3), p[:3])
    E0, n, offset = p[4], p[5], p[6]
    T, V = units.temperature(T_K, E0), units.bias(V_mV, E0)
    if family is None:
        dG = _api.conductance(J, T, V, config=config)
    else:
        m = family.build(p[len(PARAMETERS) :], E0)
        dG = _api.conductance(J, T, V, model=m, config=config)
    return 1.0 + n * dG + offset


# ----------------------------------------------------------------------------------------------
# Problem set-up: names, values, bounds and transforms

_KINDS = ("none", "lower", "upper", "both")


@dataclasses.dataclass(frozen=True)
class _Problem:
    names: tuple[str, ...]  # the parameters listed in the result: _ISOTROPIC or _ANISOTROPIC,
    # then the family's when the model is not the paper's or one of them was named
    isotropic: bool
    values: np.ndarray  # all_names: fixed values, and starts of the free ones
    free: tuple[str, ...]
    free_index: np.ndarray  # indices of the free parameters in all_names
    kinds: np.ndarray  # index into _KINDS per free parameter
    lower: np.ndarray  # per free parameter
    upper: np.ndarray
    scale: np.ndarray
    all_names: tuple[str, ...] = PARAMETERS  # PARAMETERS + the family's names
    family: _Family | None = None  # None: the paper's model (its fast path)
    template: Model | None = None  # spin and texture kind of the fitted model, as given

    def value(self, name: str) -> float:
        return float(self.values[self.all_names.index(name)])

    def solver_values(self) -> np.ndarray:
        """The parameter vector the solver traces: PARAMETERS only on the paper path (so that
        it compiles exactly as without the model family)."""
        return self.values if self.family is not None else self.values[: len(PARAMETERS)]

    def fitted_model(self, p_free: np.ndarray) -> Model | None:
        """The :class:`jaxmi.Model` at the free values ``p_free`` (mu0 in units of E0), or
        None on the paper path."""
        if self.family is None:
            return None
        full = self.values.copy()
        full[self.free_index] = p_free
        return self.family.build(full[len(PARAMETERS) :], full[PARAMETERS.index("E0_meV")])


def _as_names(x, what: str, allowed: Sequence[str] = PARAMETERS) -> tuple[str, ...]:
    if x is None:
        return ()
    if isinstance(x, str):
        x = [s for s in x.split(",") if s.strip()]
    names = tuple(s.strip() for s in x)
    for name in names:
        if name not in allowed:
            hint = ""
            if name in POWER_LAW_PARAMETERS or name.startswith("texture_c"):
                hint = (
                    f"; {name} belongs to a "
                    f"{'power-law' if name in POWER_LAW_PARAMETERS else 'polynomial'} texture "
                    "(CLI: --texture power_law or polynomial; Python: "
                    "model=jaxmi.Model(texture=...))"
                )
            raise FitError(
                f"unknown parameter {name!r} in {what} (allowed: {', '.join(allowed)}){hint}"
            )
    return names


def _as_number(name: str, value, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise FitError(f"{what} value of {name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise FitError(f"{what} value of {name} must be finite, got {value!r}")
    return out


def _problem(
    free,
    start,
    fix,
    bounds,
    e0_floor: float = 0.0,
    model: Model | None = None,
    e0_floor_family: float | None = None,
    config: Config = Config(),
) -> _Problem:
    """Names, values, bounds and transforms of a fit. ``e0_floor`` is E0's default lower bound
    on the paper path, ``e0_floor_family`` on the general path (default: ``e0_floor``);
    ``config`` only words the message of a start below the floor."""
    fam, family_defaults = _family_of(model)
    all_names = PARAMETERS + fam.names
    start = dict(start or {})
    fix = dict(fix or {})
    bounds = dict(bounds or {})
    _as_names(start, "start", all_names)
    _as_names(fix, "fix", all_names)
    _as_names(bounds, "bounds", all_names)
    free = (
        _as_names(free, "free", all_names)
        if free is not None
        else tuple(k for k in start if k not in fix)
    )
    if not free:
        raise FitError("no free parameters: name them with free= (CLI: --free Jx,Jz,E0_meV)")
    if len(set(free)) != len(free):
        raise FitError(f"a parameter is listed twice in free: {', '.join(free)}")
    for name in free:
        if name in fix:
            raise FitError(f"{name} is both free and fixed")
    for name in start:
        if name not in free:
            raise FitError(f"start value given for {name}, which is not free (fix it instead)")
    for name in bounds:
        if name not in free:
            raise FitError(f"bounds given for {name}, which is not free")

    mentioned = set(free) | set(fix)
    iso = "J" in mentioned
    if iso and mentioned & {"Jx", "Jy", "Jz"}:
        raise FitError("give either J (isotropic impurity) or Jx, Jy, Jz, not both")
    names = _ISOTROPIC if iso else _ANISOTROPIC
    free_couplings = [k for k in free if k in COUPLINGS]
    if "n" in free and free_couplings:
        raise FitError(
            f"n and {', '.join(free_couplings)} cannot both be free: dG is quadratic in J, so "
            "n dG(J) = dG(sqrt(n) J) and only n J^2 is determined; fix n (e.g. n=1) or fix "
            "the couplings"
        )
    if "E0_meV" not in free and "E0_meV" not in fix:
        raise FitError("E0_meV (vF k0 in meV) needs a value: a start value if free, or fix it")
    if MU0 in free and MU0 not in start:
        raise FitError(
            "mu0_meV (Fermi level from the Dirac point, meV) needs a start value when free"
        )

    base = {**DEFAULT_FIXED, **family_defaults}
    values = np.zeros(len(all_names))
    for i, name in enumerate(all_names):
        if name in fix:
            values[i] = _as_number(name, fix[name], "fixed")
        elif name in free:
            default = DEFAULT_START.get(name, family_defaults.get(name))
            values[i] = _as_number(name, start.get(name, default), "start")
        else:
            values[i] = base.get(name, 0.0)
    e0 = values[all_names.index("E0_meV")]
    if "E0_meV" in fix and not e0 > 0:
        raise FitError(f"E0_meV must be > 0 (meV), got {e0:g}")
    for name in POWER_LAW_PARAMETERS:
        if name in fix and fam.texture == "power_law" and not values[all_names.index(name)] > 0:
            raise FitError(f"{name} must be > 0, got {values[all_names.index(name)]:g}")
    value_of = dict(zip(all_names, values, strict=True))
    _check_texture_scale(fam, free, fix, value_of)

    paper = _is_paper(fam, value_of, free)
    family = None if paper else fam
    if family is not None or mentioned & set(fam.names):
        names = (*names[:-2], *fam.names, *names[-2:])  # ..., E0_meV, mu0_meV, texture, n, offset
    if family is not None and e0_floor_family is not None:
        e0_floor = e0_floor_family

    lower, upper, scale, kinds = [], [], [], []
    for name in free:
        b = bounds.get(name, _default_bounds(name, fam, free, value_of))
        if name == "E0_meV" and name not in bounds:
            b = (e0_floor, math.inf)
        try:
            lo, hi = b
            lo = -math.inf if lo is None else float(lo)
            hi = math.inf if hi is None else float(hi)
        except (TypeError, ValueError):
            raise FitError(f"bounds of {name} must be a pair (lower, upper), got {b!r}") from None
        if math.isnan(lo) or math.isnan(hi) or not lo < hi:
            raise FitError(f"bounds of {name} must satisfy lower < upper, got ({lo:g}, {hi:g})")
        v = values[all_names.index(name)]
        if not lo < v < hi:
            why = ""
            if name == "E0_meV" and name not in bounds:
                t_lim = "2 E0" if family is None else f"{2 * _t_max(family, config):g} E0"
                why = (
                    f" (the default lower bound keeps kB T <= {t_lim} and |eV| <= 4 E0, twice the "
                    "engine's validated domain; pass bounds to override)"
                )
            if name == MU0 and name not in bounds:
                why = (
                    " (mu0_meV >= 0 by default: the conductance is even in mu0 for an even "
                    "texture; pass bounds to override)"
                )
            raise FitError(
                f"start value of {name} must lie strictly inside its bounds ({lo:g}, {hi:g}), "
                f"got {v:g}{why}"
            )
        if math.isinf(lo) and math.isinf(hi):
            kinds.append(0)
            scale.append(abs(v) if v != 0 else 1e-2)
        elif math.isinf(hi):
            kinds.append(1)
            scale.append(v - lo)
        elif math.isinf(lo):
            kinds.append(2)
            scale.append(hi - v)
        else:
            kinds.append(3)
            scale.append(hi - lo)
        lower.append(lo)
        upper.append(hi)
    return _Problem(
        names=names,
        isotropic=iso,
        values=values,
        free=free,
        free_index=np.array([all_names.index(k) for k in free]),
        kinds=np.array(kinds),
        lower=np.array(lower),
        upper=np.array(upper),
        scale=np.array(scale),
        all_names=all_names,
        family=family,
        template=model,
    )


def _t_max(family: _Family | None, config: Config = Config()) -> float:
    """Largest kB T / E0 of the validated domain on the model's path."""
    return _config.T_MAX if family is None else _config.family_t_max(config)


def _default_bounds(name: str, fam: _Family, free, value_of) -> tuple[float, float]:
    if name in DEFAULT_BOUNDS and name != MU0:
        return DEFAULT_BOUNDS[name]
    if name == MU0:
        # G is even in mu0 for an even texture (power law; polynomial without odd terms). With
        # free odd coefficients the mirror eps -> -eps maps (mu0, c_odd) to (-mu0, -c_odd): mu0
        # >= 0 still loses nothing. Only a fixed non-zero odd coefficient fixes mu0's sign.
        if fam.texture == "polynomial":
            odd = [f"texture_c{k}" for k in range(1, fam.n_coefficients, 2)]
            if any(k not in free and value_of[k] != 0.0 for k in odd):
                return (-math.inf, math.inf)
        return DEFAULT_BOUNDS[MU0]
    return (-math.inf, math.inf)  # polynomial coefficients


def _check_texture_scale(fam: _Family, free, fix, value_of) -> None:
    """Refuse E0 free together with the texture's energy scale: theta is a function of eps / E0
    and E0 enters the model only as the unit of T, V, mu0 and eps (the conductance is
    dimensionless), so E0 -> l E0 with texture_scale -> texture_scale / l (power law) or
    c_k -> l^k c_k (polynomial) leaves the model unchanged: only the texture as a function of
    the physical energy is determined."""
    if "E0_meV" not in free:
        return
    if fam.texture == "power_law":
        if "texture_scale" in free:
            raise FitError(
                "E0_meV and texture_scale cannot both be free: theta = (|eps| / (texture_scale "
                "E0))^exponent and E0 is otherwise only the unit of T, V and mu0, so only the "
                "product texture_scale * E0_meV is determined; fix texture_scale (e.g. 1: E0 is "
                "then the energy where theta = 1 rad)"
            )
        return
    slopes = [f"texture_c{k}" for k in range(1, fam.n_coefficients)]
    anchored = [k for k in slopes if k not in free and value_of[k] != 0.0]
    free_slopes = [k for k in slopes if k in free]
    if free_slopes and not anchored:
        raise FitError(
            f"E0_meV and the texture coefficients {', '.join(free_slopes)} cannot all be free: "
            "theta is a polynomial in eps / E0, so E0 -> l E0 with c_k -> l^k c_k leaves the "
            "model unchanged (only theta as a function of the energy in meV is determined); fix "
            "E0_meV or one non-zero coefficient c_k, k >= 1"
        )


class _Transform(NamedTuple):
    """Smooth map from the solver's unconstrained variables z to the free parameters (arrays of
    shape (k,), traced: problems with the same k share one compiled solver)."""

    kinds: Array  # int, index into _KINDS
    lower: Array
    upper: Array
    scale: Array


def _to_physical(z: Array, tr: _Transform) -> Array:
    """z -> physical values: ``s z`` (no bound), ``lo + s e^z`` / ``hi - s e^z`` (one bound),
    ``lo + (hi - lo) sigmoid(z)`` (two). Infinite bounds are zeroed in the branches not taken,
    so no inf or NaN enters a tangent."""
    lo = jnp.where(jnp.isfinite(tr.lower), tr.lower, 0.0)
    hi = jnp.where(jnp.isfinite(tr.upper), tr.upper, 0.0)
    e = tr.scale * jnp.exp(jnp.minimum(z, 700.0))
    branches = jnp.stack(
        [tr.scale * z, lo + e, hi - e, lo + (hi - lo) * jax.nn.sigmoid(z)]
    )  # (4, k)
    return jnp.take_along_axis(branches, tr.kinds[None, :], axis=0)[0]


def _to_unconstrained(p: np.ndarray, prob: _Problem) -> np.ndarray:
    """Inverse of :func:`_to_physical` (numpy; p strictly inside the bounds)."""
    z = np.empty(len(p))
    for i, kind in enumerate(prob.kinds):
        lo, hi, s = prob.lower[i], prob.upper[i], prob.scale[i]
        if kind == 0:
            z[i] = p[i] / s
        elif kind == 1:
            z[i] = np.log((p[i] - lo) / s)
        elif kind == 2:
            z[i] = np.log((hi - p[i]) / s)
        else:
            x = (p[i] - lo) / (hi - lo)
            z[i] = np.log(x / (1.0 - x))
    return z


# ----------------------------------------------------------------------------------------------
# Residuals, Jacobian and the jitted solve

#: Data are padded to a multiple of this many points (with zero weight), so that data sets of
#: similar size share a compiled solver.
PAD = 16


class _Data(NamedTuple):
    T_K: Array  # (N_pad,)
    V_mV: Array  # (N_pad,)
    G: Array  # (N_pad,)
    weight: Array  # (N_pad,): 1 / G_err (1 without G_err), 0 on padding


class _Args(NamedTuple):
    values: Array  # (7,) all PARAMETERS, then the family's names unless on the paper path
    # (fixed values; free entries are overwritten)
    isotropic: Array  # bool
    free_index: Array  # (k,) int
    transform: _Transform
    data: _Data


def _weighted_residuals(
    p_free: Array, a: _Args, config: Config, family: _Family | None = None
) -> Array:
    """(model - G) / G_err, shape (N_pad,), as a function of the free physical parameters."""
    p = a.values.at[a.free_index].set(p_free)
    d = a.data
    return (_model(p, a.isotropic, d.T_K, d.V_mV, config, family) - d.G) * d.weight


def _solver_residuals(z: Array, args: tuple) -> Array:
    """The function handed to optimistix: residuals of the unconstrained variables z;
    ``args = (a, config)`` or ``(a, config, family)``."""
    a, config, *family = args
    family = family[0] if family else None
    return _weighted_residuals(_to_physical(z, a.transform), a, config, family)


@functools.partial(jax.jit, static_argnames=("config", "family"))
def _residuals_and_jacobian(
    p_free: Array, args: _Args, *, config: Config, family: _Family | None = None
) -> tuple[Array, Array]:
    """Weighted residuals (N_pad,) and their Jacobian (N_pad, k) in the free physical
    parameters, by forward-mode autodiff (the Jacobian behind the standard errors)."""

    def r(pf):
        return _weighted_residuals(pf, args, config, family)

    return r(p_free), jax.jacfwd(r)(p_free)


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


@functools.partial(jax.jit, static_argnames=("config", "rtol", "atol", "max_steps", "family"))
def _solve(
    z0: Array,
    args: _Args,
    *,
    config: Config,
    rtol: float,
    atol: float,
    max_steps: int,
    family: _Family | None = None,
) -> tuple[Array, Array, Array]:
    """Levenberg-Marquardt from z0. Returns (z, successful, number of steps)."""
    optx = _optimistix()
    solver = optx.LevenbergMarquardt(rtol=rtol, atol=atol)
    sol = optx.least_squares(
        _solver_residuals,
        solver,
        z0,
        args=(args, config) if family is None else (args, config, family),
        options={"jac": "fwd"},
        max_steps=max_steps,
        throw=False,
    )
    return sol.value, sol.result == optx.RESULTS.successful, sol.stats["num_steps"]


def _physical_np(z: np.ndarray, prob: _Problem) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_to_physical` in numpy, and its derivative dp/dz (elementwise)."""
    lo = np.where(np.isfinite(prob.lower), prob.lower, 0.0)
    hi = np.where(np.isfinite(prob.upper), prob.upper, 0.0)
    e = prob.scale * np.exp(np.minimum(z, 700.0))
    sig = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic, without overflow
    p = np.choose(prob.kinds, [prob.scale * z, lo + e, hi - e, lo + (hi - lo) * sig])
    dp = np.choose(prob.kinds, [prob.scale, e, -e, (hi - lo) * sig * (1.0 - sig)])
    return p, dp


def _solve_host(
    z0: np.ndarray, prob: _Problem, jacobian_at, rtol: float, atol: float, max_steps: int
) -> tuple[np.ndarray, bool, int]:
    """Levenberg-Marquardt on the host around the jitted residuals and Jacobian (the general
    path's solver). Returns (z, successful, number of steps).

    Why not optimistix here: its solve compiles the model a second time inside its loop; on
    the general path that is 2-3 times the compile time of :func:`_residuals_and_jacobian`
    alone (measured 52 s against 18 s on 2 CPU cores for 3 free parameters), which the fit
    compiles anyway (identifiability check, standard errors). Each step here costs one call of
    the compiled function (the Jacobian with the residuals; forward mode makes both together
    about k + 1 model evaluations). The step is Marquardt's: (A + lam diag A) dz = -g with
    A = J^T J, g = J^T r in z; accepted when chi^2 does not increase (then lam / 10), else
    lam x 10.
    Converged, as optimistix's Cauchy test, when after an accepted step
    |dz| <= atol + rtol |z| componentwise and |d chi^2| <= atol + rtol chi^2.
    """
    z = np.asarray(z0, dtype=float).copy()

    def evaluate(z):
        p, dp = _physical_np(z, prob)
        r, jac = jacobian_at(p)
        return r, jac * dp[None, :]

    r, jz = evaluate(z)
    chi2 = float(r @ r)
    if not math.isfinite(chi2):
        return z, False, 0
    lam = 1e-3
    for step in range(1, max_steps + 1):
        g = jz.T @ r
        a = jz.T @ jz
        d = np.diag(a).copy()
        d = np.where(d > 0, d, 1.0)
        while True:
            try:
                dz = -np.linalg.solve(a + lam * np.diag(d), g)
            except np.linalg.LinAlgError:
                dz = None
            if dz is not None and np.all(np.isfinite(dz)):
                r_new, jz_new = evaluate(z + dz)
                chi2_new = float(r_new @ r_new)
                if math.isfinite(chi2_new) and chi2_new <= chi2:
                    break
            lam *= 10.0
            if lam > 1e16:  # no decrease along any damped step: a (local) optimum or stuck
                return z, False, step
        small_step = bool(np.all(np.abs(dz) <= atol + rtol * np.abs(z)))
        small_chi2 = abs(chi2 - chi2_new) <= atol + rtol * chi2
        z, r, jz, chi2 = z + dz, r_new, jz_new, chi2_new
        lam = max(lam / 10.0, 1e-12)
        if small_step and small_chi2:
            return z, True, step
    return z, False, max_steps


def _stationary(r: np.ndarray, jac: np.ndarray, gtol: float = 1e-6) -> bool:
    """max_k |J_k . r| / (|J_k| |r|) <= gtol: the residuals are orthogonal to every direction the
    parameters can move them in (a least-squares optimum, whatever the step history)."""
    norms = np.linalg.norm(jac, axis=0) * np.linalg.norm(r)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        return False
    return bool(np.max(np.abs(jac.T @ r) / norms) <= gtol)


# ----------------------------------------------------------------------------------------------
# Data


class Data(NamedTuple):
    """Measured conductance, 1-D arrays of equal length N (float64).

    Attributes:
        T_K: temperature, kelvin (> 0).
        V_mV: bias voltage, millivolt (0 in linear response).
        G: total edge conductance in units of e^2/h.
        G_err: one standard deviation of G (e^2/h, > 0), or None.
    """

    T_K: np.ndarray
    V_mV: np.ndarray
    G: np.ndarray
    G_err: np.ndarray | None


CSV_COLUMNS = ("T", "V", "G", "G_err")
#: The unit of each column: a header cell may name it in brackets, ``T [K]``, and no other.
CSV_UNITS = {"T": "K", "V": "mV", "G": "e^2/h", "G_err": "e^2/h"}
_ALLOWED_COLUMNS = "T [K], V [mV], G [e^2/h], G_err [e^2/h]"


def _delimiter(lines: Sequence[str]) -> str:
    """The separator of a table, sniffed from its header line (the first line that is not
    blank, not only separators and not a ``#`` comment): ``;`` if it has a semicolon and no
    comma (a spreadsheet in a locale whose decimal mark is the comma), else ``,``."""
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#") or not text.strip(",; \t"):
            continue
        return ";" if ";" in text and "," not in text else ","
    return ","


def _column(path: str, line: int, cell: str) -> str:
    """The column a header cell names: ``G`` or ``G [e^2/h]`` -> "G"; a unit in brackets must
    be the column's (:data:`CSV_UNITS`; spaces inside the brackets are ignored)."""
    name, bracket, rest = cell.partition("[")
    name = name.strip()
    if name not in CSV_COLUMNS or (bracket and not rest.rstrip().endswith("]")):
        raise FitError(
            f"{path}: line {line}: unknown column {cell!r} (allowed: {_ALLOWED_COLUMNS})"
        )
    if bracket:
        unit = "".join(rest.rstrip()[:-1].split())
        want = CSV_UNITS[name]
        if unit != want:
            raise FitError(
                f"{path}: line {line}: column {cell!r}: {name} is read in {want}, not "
                f"{repr(unit) if unit else 'an empty unit'}; convert the values and write "
                f"{name} [{want}] (or {name})"
            )
    return name


def read_csv(path) -> Data:
    """Read a conductance table: a header, then one row per measurement.

    Columns (by header name, any order): ``T`` (kelvin, > 0), ``V`` (millivolt; optional, 0
    when absent), ``G`` (e^2/h), ``G_err`` (optional, one standard deviation, > 0). A header
    cell may carry its unit in brackets, ``T [K]``, ``V [mV]``, ``G [e^2/h]``,
    ``G_err [e^2/h]``, and only that unit (``T [mK]`` is refused: the values are not
    converted). Cells are separated by commas or, when the header line has semicolons and no
    comma, by semicolons; numbers use a decimal point either way (a decimal comma is not read).
    Blank lines and lines starting with ``#`` are skipped. The file is UTF-8 text (a
    byte-order mark is allowed).

    Raises:
        FitError: one line naming the file, the line number and the column, e.g.
            ``data.csv: line 7, column G: not a number: 'n/a'``; or the file cannot be read or
            is not UTF-8.
    """
    path = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise FitError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark is not part of "T"
    except UnicodeDecodeError as err:
        raise FitError(
            f"{path}: is not UTF-8 text (byte {err.start}); save the table as UTF-8 CSV"
        ) from None
    lines = text.splitlines()
    delimiter = _delimiter(lines)
    rows = [
        (i, row)
        for i, row in enumerate(csv.reader(lines, delimiter=delimiter), start=1)
        if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")
    ]
    if not rows:
        raise FitError(f"{path}: empty file: expected a header with columns T, G (and V, G_err)")
    header_line, cells = rows[0]
    cells = [c.strip() for c in cells]
    header = [_column(path, header_line, c) for c in cells]
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise FitError(f"{path}: line {header_line}: column {dup!r} appears twice")
    for required in ("T", "G"):
        if required not in header:
            raise FitError(
                f"{path}: missing column {required!r} (header: {', '.join(cells)}; need T [K] "
                "and G [e^2/h], optional V [mV] and G_err [e^2/h])"
            )
    body = rows[1:]
    if not body:
        raise FitError(f"{path}: no data rows after the header")
    cols = {h: np.empty(len(body)) for h in header}
    for k, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise FitError(
                f"{path}: line {line}: expected {len(header)} cells ({', '.join(header)}), "
                f"got {len(row)}"
            )
        for h, cell in zip(header, row, strict=True):
            try:
                x = float(cell)
            except ValueError:
                hint = ""
                if delimiter == ";" and "," in cell:
                    hint = (
                        " (the file is separated by ';': a decimal comma is not read; write "
                        "numbers with a decimal point)"
                    )
                raise FitError(
                    f"{path}: line {line}, column {h}: not a number: {cell.strip()!r}{hint}"
                ) from None
            if not math.isfinite(x):
                raise FitError(
                    f"{path}: line {line}, column {h}: must be finite, got {cell.strip()!r}"
                )
            if h == "T" and not x > 0:
                raise FitError(
                    f"{path}: line {line}, column T: temperature must be > 0 K, got {x:g}"
                )
            if h == "G_err" and not x > 0:
                raise FitError(f"{path}: line {line}, column G_err: must be > 0, got {x:g}")
            cols[h][k] = x
    V = cols.get("V", np.zeros(len(body)))
    return Data(cols["T"], V, cols["G"], cols.get("G_err"))


def _check_data(T_K, V_mV, G, G_err) -> Data:
    arrays = {}
    for name, x in (("T_K", T_K), ("V_mV", V_mV), ("G", G), ("G_err", G_err)):
        if x is None:
            arrays[name] = None
            continue
        try:
            a = np.asarray(x, dtype=float)
        except (TypeError, ValueError):
            raise FitError(f"{name} must be an array of numbers") from None
        arrays[name] = a
    G = arrays["G"]
    if G.ndim != 1:
        raise FitError(f"G must be one-dimensional, got shape {G.shape}")
    n = G.shape[0]
    if arrays["V_mV"] is None:
        arrays["V_mV"] = np.zeros(n)
    for name in ("T_K", "V_mV", "G_err"):
        a = arrays[name]
        if a is None:
            continue
        if a.ndim == 0:
            a = arrays[name] = np.full(n, float(a))
        if a.shape != (n,):
            raise FitError(f"{name} must have the shape of G, ({n},), got {a.shape}")
    for name, a in arrays.items():
        if a is not None and not np.isfinite(a).all():
            i = int(np.argmin(np.isfinite(a)))
            raise FitError(f"{name}[{i}] must be finite, got {a[i]}")
    if not (arrays["T_K"] > 0).all():
        i = int(np.argmin(arrays["T_K"] > 0))
        raise FitError(f"T_K[{i}] must be > 0 (kelvin), got {arrays['T_K'][i]}")
    if arrays["G_err"] is not None and not (arrays["G_err"] > 0).all():
        i = int(np.argmin(arrays["G_err"] > 0))
        raise FitError(f"G_err[{i}] must be > 0, got {arrays['G_err'][i]}")
    return Data(arrays["T_K"], arrays["V_mV"], G, arrays["G_err"])


# ----------------------------------------------------------------------------------------------
# Result


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
        :attr:`model_description`."""
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
        lines.append(f"  {'parameter':<{w}} {'value':>14} {'stderr':>12}")
        for name, value in self.params.items():
            if name in self.stderr:
                lines.append(f"  {name:<{w}} {value:>14.6g} {self.stderr[name]:>12.3g}")
            else:
                lines.append(f"  {name:<{w}} {value:>14.6g} {'fixed':>12}")
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
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# The fit


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


def _make_args(prob: _Problem, data: Data) -> tuple[_Args, np.ndarray]:
    """The traced inputs of the solver: the problem's arrays and the data padded to a multiple
    of :data:`PAD` points with zero weight. Returns (args, weights of the real points)."""
    n_points = data.G.shape[0]
    pad = PAD * -(-n_points // PAD) - n_points

    def padded(x, fill):
        return jnp.asarray(np.concatenate([x, np.full(pad, fill)]))

    weight = 1.0 / data.G_err if data.G_err is not None else np.ones(n_points)
    args = _Args(
        values=jnp.asarray(prob.solver_values()),
        isotropic=jnp.asarray(prob.isotropic),
        free_index=jnp.asarray(prob.free_index),
        transform=_Transform(
            jnp.asarray(prob.kinds),
            jnp.asarray(prob.lower),
            jnp.asarray(prob.upper),
            jnp.asarray(prob.scale),
        ),
        data=_Data(
            padded(data.T_K, data.T_K[0]),
            padded(data.V_mV, data.V_mV[0]),
            padded(data.G, data.G[0]),
            padded(weight, 0.0),
        ),
    )
    return args, weight


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
        seed: seed of the extra starts.
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

    Returns:
        :class:`FitResult` (``.summary()`` for a table, ``.to_json()`` for the file format).

    Raises:
        FitError: bad data (naming the index), unknown or contradictory parameter choices,
            non-identifiable free parameters (``n`` with a coupling, E0_meV with the texture's
            energy scale, or a null direction of the Jacobian at the start), an unsupported
            model, or no more data points than free parameters; optimistix is not
            installed (the paper's model needs it).
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
    if family is None:
        _optimistix()  # before anything is compiled
    n_points, k = data.G.shape[0], len(prob.free)
    if n_points <= k:
        raise FitError(
            f"{n_points} data point(s), but {k} free parameter(s) ({', '.join(prob.free)}) need "
            f"at least {k + 1}"
        )
    if not (isinstance(starts, int) and starts >= 1):
        raise FitError(f"starts must be a positive integer, got {starts!r}")
    weighted = data.G_err is not None
    args, weight = _make_args(prob, data)

    def jacobian_at(p_free):
        r, jac = _residuals_and_jacobian(jnp.asarray(p_free), args, config=config, family=family)
        return np.asarray(r)[:n_points], np.asarray(jac)[:n_points]

    def physical(z):
        return np.asarray(_to_physical(jnp.asarray(z), args.transform))

    # Identifiability at the start: a null direction of the Jacobian there that persists at a
    # second, perturbed point is structural (not a coincidence of the start values).
    rng = np.random.default_rng(seed)
    p0 = prob.values[prob.free_index]
    z0 = _to_unconstrained(p0, prob)
    null = _null_direction(jacobian_at(p0)[1], _physical_np(z0, prob)[1])
    if null is not None:
        z1 = z0 + rng.uniform(0.2, 0.4, k) * rng.choice([-1.0, 1.0], k)
        if _null_direction(jacobian_at(physical(z1))[1], _physical_np(z1, prob)[1]) is not None:
            combo = " ".join(
                f"{c:+.3g} {name}" for c, name in zip(null, prob.free, strict=True) if abs(c) > 1e-3
            )
            raise FitError(
                f"free parameters {', '.join(prob.free)} are not separately identifiable from "
                f"these data: the model does not change along the combination {combo} (null "
                "direction of the column-scaled Jacobian); fix one of them (docs/fitting.md, "
                "identifiability)"
            )

    best = None
    n_conv = 0
    for i in range(starts):
        pi = p0 if i == 0 else physical(z0 + rng.normal(0.0, 0.7, k))
        pi = _prescale(prob, pi, jacobian_at(pi)[0], weight, data)
        zi = _to_unconstrained(pi, prob)
        if family is None:
            z, ok, steps = _solve(
                jnp.asarray(zi), args, config=config, rtol=rtol, atol=atol, max_steps=max_steps
            )
        else:
            z, ok, steps = _solve_host(zi, prob, jacobian_at, rtol, atol, max_steps)
        p = physical(z)
        r, jac = jacobian_at(p)
        chi2 = float(r @ r)
        # The solver's step test can stall on roundoff at the optimum (~1e-15 noise in the
        # residuals); first-order optimality (MINPACK's gtol test: every Jacobian column
        # orthogonal to the residual vector) is then the right verdict.
        ok = (bool(ok) or _stationary(r, jac)) and math.isfinite(chi2)
        n_conv += ok
        key = (not ok, chi2 if math.isfinite(chi2) else math.inf)
        if best is None or key < best[0]:
            best = (key, p, r, jac, ok, int(steps))
    _, p, r, jac, ok, steps = best

    dof = n_points - k
    chi2 = float(r @ r)
    chi2_red = chi2 / dof
    cov = _covariance(jac)
    if not weighted:
        cov = cov * chi2_red
    with np.errstate(invalid="ignore"):
        err = np.sqrt(np.diag(cov))
        corr = cov / np.outer(err, err)
    np.fill_diagonal(corr, 1.0)

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
    for note in notes:
        if note.startswith(("near-degenerate", "at a bound", "not converged", "not identifiable")):
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
    )


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


# ----------------------------------------------------------------------------------------------
# Files (the ``jaxmi fit`` command line)


def parse_values(text: str | None, option: str = "--start") -> dict[str, float]:
    """``"Jx=0.3,E0_meV=10"`` -> ``{"Jx": 0.3, "E0_meV": 10.0}`` (names checked by :func:`fit`)."""
    out: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise FitError(f"{option}: expected NAME=VALUE, got {item.strip()!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise FitError(f"{option}: {name.strip()} must be a number, got {value!r}") from None
    return out


def parse_bounds(text: str | None) -> dict[str, tuple[float | None, float | None]]:
    """``"Jx=0:1,E0_meV=2:"`` -> ``{"Jx": (0.0, 1.0), "E0_meV": (2.0, None)}``; an empty side
    is unbounded."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, rng = item.partition("=")
        lo, colon, hi = rng.partition(":")
        if not sep or not colon:
            raise FitError(f"--bounds: expected NAME=LOWER:UPPER, got {item.strip()!r}")
        try:
            out[name.strip()] = (
                float(lo) if lo.strip() else None,
                float(hi) if hi.strip() else None,
            )
        except ValueError:
            raise FitError(
                f"--bounds: {name.strip()} needs numbers LOWER:UPPER, got {rng!r}"
            ) from None
    return out


def model_from_options(
    spin: str | float | None, texture: str | None, names: Sequence[str] = ()
) -> Model | None:
    """The model of the command line's ``--spin`` and ``--texture``: ``spin`` 1/2 (default),
    1, 3/2, ... (``"3/2"`` or ``"1.5"``); ``texture`` ``power_law`` (default: theta =
    (|eps| / (texture_scale E0))^texture_exponent, 1 and 2 unless fixed or free) or
    ``polynomial`` (theta = sum_k texture_ck (eps / E0)^k with as many coefficients as the highest
    ``texture_ck`` among ``names`` needs, at least c0..c2; defaults c2 = 1, the others 0: the
    paper's texture). None for the paper's model (spin 1/2, power law).

    Raises:
        FitError: a bad spin or texture, one line naming the option.
    """
    if spin is None:
        S = 0.5
    else:
        try:
            S = float(fractions.Fraction(str(spin).strip()))
        except (ValueError, ZeroDivisionError):
            raise FitError(f"--spin: expected 1/2, 1, 3/2, ..., got {spin!r}") from None
    kind = "power_law" if texture is None else str(texture).strip()
    if kind not in TEXTURES:
        raise FitError(f"--texture: expected one of {', '.join(TEXTURES)}, got {texture!r}")
    if kind == "power_law":
        tex = PowerLaw()
    else:
        orders = [
            int(name[len("texture_c") :])
            for name in names
            if name.startswith("texture_c") and name[len("texture_c") :].isdigit()
        ]
        coefficients = [0.0] * max(3, 1 + max(orders, default=0))
        coefficients[2] = 1.0
        tex = Polynomial(tuple(coefficients))
    try:
        model = Model(spin=S, texture=tex)
    except JaxmiError as err:
        raise FitError(f"--spin: {err}") from None
    return None if model.is_paper() else model


def fit_file(
    path,
    *,
    free: str | Sequence[str] | None = None,
    start: str | Mapping[str, float] | None = None,
    fix: str | Mapping[str, float] | None = None,
    bounds: str | Mapping | None = None,
    starts: int = 1,
    seed: int = 0,
    output=None,
    plot=None,
    config: Config = Config(),
    model: Model | None = None,
    spin: str | float | None = None,
    texture: str | None = None,
    overwrite: bool = False,
) -> FitResult:
    """:func:`read_csv`, :func:`fit`, then write the JSON document (``output``) and the figure
    (``plot``). ``start``, ``fix`` and ``bounds`` may be given as the command line's strings
    (``"Jx=0.3,Jz=0.5"``, ``"Jx=0:1,E0_meV=2:"``); the model as ``model`` or as the command
    line's ``spin`` and ``texture`` (:func:`model_from_options`).

    Both outputs are checked before the fit starts (:func:`jaxmi.outputs.check_output`): an
    existing file is replaced only if it is a jaxmi fit result (``output``) or a picture jaxmi
    stamped (``plot``), or with ``overwrite``.

    Raises:
        FitError: as :func:`read_csv` and :func:`fit`; ``output`` and ``plot`` are one file.
        StoreError: an output cannot or may not be written.
    """
    data = read_csv(path)
    if isinstance(start, str) or start is None:
        start = parse_values(start, "--start")
    if isinstance(fix, str) or fix is None:
        fix = parse_values(fix, "--fix")
    if isinstance(bounds, str) or bounds is None:
        bounds = parse_bounds(bounds)
    if spin is not None or texture is not None:
        if model is not None:
            raise FitError("give the model either as model= or as spin= and texture=, not both")
        names = [*start, *fix, *bounds]
        if isinstance(free, str):
            names += [k.strip() for k in free.split(",")]
        elif free is not None:
            names += list(free)
        model = model_from_options(spin, texture, names)
    _check_outputs(output, plot, overwrite)
    result = fit(
        data.T_K,
        data.V_mV,
        data.G,
        data.G_err,
        free=free,
        start=start,
        fix=fix,
        bounds=bounds,
        starts=starts,
        seed=seed,
        config=config,
        model=model,
    )
    if output is not None:
        _write_json(result, output, overwrite)
    if plot is not None:
        from jaxmi.plot import fit_figure

        fit_figure(result, plot, overwrite=overwrite)
    return result


def _check_outputs(output, plot, overwrite: bool) -> None:
    """Fail before the fit if matplotlib is missing or an output may not be written."""
    if plot is not None:
        from jaxmi.plot import _matplotlib

        _matplotlib()
        outputs.check_output(plot, outputs.PICTURE, overwrite=overwrite, option="--plot")
    if output is not None:
        outputs.check_output(output, outputs.FIT, overwrite=overwrite)
    if plot is not None and output is not None:
        if os.path.realpath(output) == os.path.realpath(plot):
            raise FitError(f"{plot}: the JSON result (-o) and the figure (--plot) are one file")


def _write_json(result: FitResult, output, overwrite: bool) -> None:
    outputs.check_output(output, outputs.FIT, overwrite=overwrite)  # again: the fit took time
    try:
        with open(output, "w") as fh:
            json.dump(result.to_json(), fh, indent=2)
            fh.write("\n")
    except OSError as err:
        raise StoreError(f"{output}: cannot write: {err.strerror or err}") from None
