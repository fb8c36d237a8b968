"""The parameters of a fit: names, defaults and bounds, the model family's static part, the
checks of a fit's choices (:func:`_problem`), and the one bound transform between the solver's
unconstrained variables z and the physical values (:func:`_to_physical`, its inverse and its
derivative)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxmi import config as _config
from jaxmi.config import Config
from jaxmi.errors import FitError, JaxmiError
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


def _dphysical_dz(z: Array, tr: _Transform) -> Array:
    """dp/dz of :func:`_to_physical`, elementwise, shape (k,) (the map is diagonal)."""
    return jax.jvp(lambda x: _to_physical(x, tr), (z,), (jnp.ones_like(z),))[1]


def _log_dphysical_dz(z: Array, tr: _Transform) -> Array:
    """log |dp/dz| of :func:`_to_physical`, elementwise, shape (k,): ``log s`` (no bound),
    ``log s + z`` (one bound), ``log(hi - lo) + log sigmoid(z) + log sigmoid(-z)`` (two); the
    log-Jacobian that turns a density flat in p into one in z, finite for every z."""
    lo = jnp.where(jnp.isfinite(tr.lower), tr.lower, 0.0)
    hi = jnp.where(jnp.isfinite(tr.upper), tr.upper, 1.0)
    log_s = jnp.log(tr.scale)
    width = jnp.where(tr.kinds == 3, hi - lo, 1.0)
    branches = jnp.stack(
        [
            log_s + 0.0 * z,
            log_s + z,
            log_s + z,
            jnp.log(width) + jax.nn.log_sigmoid(z) + jax.nn.log_sigmoid(-z),
        ]
    )  # (4, k)
    return jnp.take_along_axis(branches, tr.kinds[None, :], axis=0)[0]


#: The transform and its derivative as single compiled programs (op by op they cost ~30 ms
#: of compilation per operation, ~1 s of a cold fit).
_physical_jit = jax.jit(_to_physical)


_dphysical_dz_jit = jax.jit(_dphysical_dz)
