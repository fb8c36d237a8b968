"""Sweep specification: a TOML file -> a frozen :class:`Spec`, validated against a declared schema.

Pure Python (no JAX, no numpy): a spec is checked completely, at the boundary, before any
numerics. Every problem is a :class:`jaxmi.errors.SpecError` with one line that names the file,
the key path, the value given and what is allowed, e.g.

    scan.toml: [T].num must be a positive integer, got -3

The ready specs shipped with jaxmi (jaxmi/sweeps/*.toml, package data) are found by name:
:func:`resolve` decides what a SPEC argument means (a file as given, else a shipped name such
as ``fig2``). The format is documented in docs/sweeps.md. Units: T, V (= eV) and u = eV/2T as
in the core (vF*k0; u dimensionless); J dimensionless (J / vF); the Fermi level mu0 and the
texture scale of a ``[model]`` table in vF*k0.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import os
import tomllib
from collections.abc import Mapping
from typing import Any, NamedTuple

from jaxmi.domain import (
    DEFAULT_ORDER,
    DEFAULT_SWEEP_QUANTITIES,
    EXCHANGES,
    FAMILY_MU0_MAX,
    FAMILY_T_MAX_FINE,
    MAX_SPIN,
    SWEEP_QUANTITIES,
    TEXTURES,
    V_MAX,
)
from jaxmi.errors import SpecError
from jaxmi.strategy import PAPER, choose_for

SPACINGS = ("linear", "log")
J_KINDS = ("cases", "isotropic", "product", "sphere")
DEFAULT_CHUNK = 65536
MAX_ORDER = 1024

_TOP_KEYS = ("description", "output", "quantities", "model", "J", "T", "V", "u", "numerics")
_AXIS_KEYS = ("values", "start", "stop", "num", "spacing")
_NUMERICS_KEYS = ("order", "precision", "chunk")
_SPHERE_KEYS = ("n_theta", "n_phi", "magnitudes")
_CASE_KEYS = ("name", "J")
_MODEL_KEYS = ("spin", "exchange", "mu0", "texture")
_TEXTURE_KEYS = {"power_law": ("kind", "scale", "exponent"), "polynomial": ("kind", "coefficients")}
#: Model parameters that may be sweep axes, in the order of their dimensions in the output
#: (after J, before T): the Fermi level, then the power-law texture's scale and exponent.
MODEL_AXES = ("mu0", "scale", "exponent")
MAX_COEFFICIENTS = 16


@dataclasses.dataclass(frozen=True)
class Axis:
    """One 1-D coordinate axis, as given: explicit values, or start/stop/num with a spacing.

    The values themselves are built with numpy by :mod:`jaxmi.sweep.grid` (an axis may be long;
    the spec stays small).

    Attributes:
        spacing: "values" (explicit list), "linear" or "log" (geometric).
        values: the explicit values (spacing "values"), else ().
        start, stop, num: the range (spacing "linear" or "log"; end points included).
    """

    spacing: str
    values: tuple[float, ...] = ()
    start: float = 0.0
    stop: float = 0.0
    num: int = 0

    def __len__(self) -> int:
        return len(self.values) if self.spacing == "values" else self.num

    @property
    def ends(self) -> tuple[float, ...]:
        """The values that bound the axis: all explicit values, or (start, stop)."""
        return self.values if self.spacing == "values" else (self.start, self.stop)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The ``[model]`` table: a member of the model family (jaxmi.model.Model), possibly with
    some of its parameters swept.

    A parameter given as a number is fixed; given as an :class:`Axis` it is a dimension of the
    output, named after the parameter (:data:`MODEL_AXES`, in that order, between J and T).

    Attributes:
        spin: impurity spin S (1/2, 1, 3/2, ...).
        exchange: "diagonal" (J = (Jx, Jy, Jz)) or "tensor" (J = 3x3 J[i][j], i: impurity spin,
            j: electron spin).
        mu0: Fermi level at zero bias from the Dirac point (vF*k0): a number or an Axis.
        texture: "power_law" (theta = (|eps| / scale)^exponent) or "polynomial"
            (theta = sum_k coefficients[k] eps^k).
        scale, exponent: the power law's parameters (numbers or Axes; scale in vF*k0).
        coefficients: the polynomial's coefficients (c0, c1, ...), else ().
    """

    spin: float = 0.5
    exchange: str = "diagonal"
    mu0: float | Axis = 0.0
    texture: str = "power_law"
    scale: float | Axis = 1.0
    exponent: float | Axis = 2.0
    coefficients: tuple[float, ...] = ()

    @property
    def axes(self) -> tuple[tuple[str, Axis], ...]:
        """The swept parameters ((name, axis), ...) in output order."""
        names = MODEL_AXES if self.texture == "power_law" else ("mu0",)
        return tuple((n, getattr(self, n)) for n in names if isinstance(getattr(self, n), Axis))

    def is_paper(self) -> bool:
        """The paper's model with nothing swept: the fast path (decided by
        jaxmi.strategy.choose_for, as for a jaxmi.Model)."""
        if self.axes:
            return False
        values = (self.mu0, self.scale, self.exponent)
        return choose_for(self.spin, self.exchange, self.texture, *values) == PAPER


@dataclasses.dataclass(frozen=True)
class JAxis:
    """The coupling axis: nJ vectors (Jx, Jy, Jz), described compactly.

    Attributes:
        kind: "cases", "isotropic" (J (1, 1, 1) times each value, or the identity tensor times
            each value with exchange "tensor"), "product" (every Jx x Jy x Jz,
            Jx slowest) or "sphere" (magnitudes x directions on a (theta, phi) grid, magnitude
            slowest, then theta, phi fastest; theta_i = pi (i + 1/2) / n_theta,
            phi_k = 2 pi k / n_phi).
        cases: ((name, (Jx, Jy, Jz)), ...) for kind "cases"; with ``tensor`` each J is a 3x3
            tuple of rows ((Jxx, Jxy, Jxz), ...).
        axes: the axes of the kind: (values,) for isotropic, (Jx, Jy, Jz) for product,
            (magnitudes,) for sphere.
        n_theta, n_phi: the direction grid of kind "sphere".
        tensor: the couplings are 3x3 exchange tensors ([model].exchange = "tensor").
    """

    kind: str
    cases: tuple[tuple[str, tuple], ...] = ()
    axes: tuple[Axis, ...] = ()
    n_theta: int = 0
    n_phi: int = 0
    tensor: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        """The structured shape the flat J axis reshapes to (C order)."""
        if self.kind == "cases":
            return (len(self.cases),)
        if self.kind == "sphere":
            return (len(self.axes[0]), self.n_theta, self.n_phi)
        return tuple(len(a) for a in self.axes)

    def __len__(self) -> int:
        return math.prod(self.shape)

    @property
    def names(self) -> tuple[str, ...] | None:
        return tuple(n for n, _ in self.cases) if self.kind == "cases" else None


@dataclasses.dataclass(frozen=True)
class Spec:
    """A validated sweep specification.

    Attributes:
        path: the spec file as given (used in messages).
        text: the file's text, stored verbatim in the output; sha256: its hex digest.
        J, T: the coupling and temperature axes.
        third: the third axis, named by ``third_name``: "V" (bias eV) or "u" (= eV / 2T, then
            V = 2 u T is a 2-D coordinate over (T, u)).
        quantities: subset of jaxmi.domain.SWEEP_QUANTITIES ("conductance", "current",
            "spin", "error"), in that order.
        order: Gauss-Legendre nodes per panel (jaxmi.Config.order).
        precision: "float64" (the only one supported).
        chunk: target number of points per compute chunk.
        output: output path from the spec, relative to the current directory (None: not given).
        description: free text, stored in the output.
        model: the ``[model]`` table, or None when the spec has none (the paper's model).
    """

    path: str
    text: str
    sha256: str
    J: JAxis
    T: Axis
    third_name: str
    third: Axis
    quantities: tuple[str, ...]
    order: int
    precision: str
    chunk: int
    output: str | None
    description: str
    model: ModelSpec | None = None

    @property
    def model_axes(self) -> tuple[tuple[str, Axis], ...]:
        """The swept model parameters ((name, axis), ...), in output order."""
        return self.model.axes if self.model is not None else ()

    @property
    def dims(self) -> tuple[str, ...]:
        """Names of the output's dimensions: ("J", <swept model parameters>, "T", "V" or "u")."""
        return ("J", *(n for n, _ in self.model_axes), "T", self.third_name)

    @property
    def shape(self) -> tuple[int, ...]:
        """Output shape (nJ, nT, nV) (or (nJ, nT, nu)), with the lengths of the swept model
        parameters between J and T, e.g. (nJ, nmu0, nT, nV)."""
        # math.prod, not len(): a mistaken 1e20-point J product must reach the pre-flight's
        # message (jaxmi.sweep.budget), not len()'s OverflowError.
        n_j = math.prod(self.J.shape)
        return (n_j, *(len(a) for _, a in self.model_axes), len(self.T), len(self.third))

    @property
    def n_points(self) -> int:
        return math.prod(self.shape)

    @property
    def paper_path(self) -> bool:
        """Whether the sweep runs on the paper's fast path (no [model], or the paper's model with
        nothing swept); otherwise every point runs on the general path (jaxmi.family)."""
        return self.model is None or self.model.is_paper()

    def default_output(self) -> str:
        """The spec's ``output``, else the spec file's name with suffix .h5 (in the CWD)."""
        if self.output is not None:
            return self.output
        stem = os.path.splitext(os.path.basename(self.path))[0]
        return stem + ".h5"


# --- messages -----------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as the user wrote it (TOML-like), shortened to one line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


class _Ctx:
    """Builds messages '<file>: <key path> <problem>'."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> SpecError:
        where = f"{key} " if key else ""
        return SpecError(f"{self.path}: {where}{problem}")


def _key(parent: str, name: str) -> str:
    """Key path in messages: top-level tables in brackets, then dotted keys: [T].num."""
    if not parent:
        return f"[{name}]" if name in ("J", "T", "V", "u", "numerics", "model") else name
    return f"{parent}.{name}"


def unknown_key(table: Mapping, allowed: tuple[str, ...], where: str) -> str | None:
    """The message for the first key of ``table`` not in ``allowed`` (with a did-you-mean hint
    and the allowed keys), or None. Shared by the sweep spec and the cluster file."""
    for k in table:
        if k not in allowed:
            close = difflib.get_close_matches(k, allowed, n=1, cutoff=0.6)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            place = f"in {where}" if where else "at the top level"
            return f'unknown key "{k}" {place}{hint} (allowed: {", ".join(allowed)})'
    return None


def _check_keys(ctx: _Ctx, table: Mapping, allowed: tuple[str, ...], where: str) -> None:
    message = unknown_key(table, allowed, where)
    if message is not None:
        raise ctx.fail("", message)


def _table(ctx: _Ctx, value: Any, key: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ctx.fail(key, f"must be a table, got {_type_name(value)} {_show(value)}")
    return value


# --- scalars ------------------------------------------------------------------------------------


def _number(ctx: _Ctx, value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ctx.fail(key, f"must be a number, got {_type_name(value)} {_show(value)}")
    x = float(value)
    if not math.isfinite(x):
        raise ctx.fail(key, f"must be a finite number, got {_show(value)}")
    return x


def _positive_int(ctx: _Ctx, value: Any, key: str, *, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ctx.fail(key, f"must be a positive integer, got {_show(value)}")
    if maximum is not None and value > maximum:
        raise ctx.fail(key, f"must be an integer <= {maximum}, got {value}")
    return value


# --- axes ---------------------------------------------------------------------------------------


def _axis(ctx: _Ctx, value: Any, key: str, *, allow_scalar: bool = False) -> Axis:
    """An axis given as a list of numbers, a table {values} or {start, stop, num[, spacing]}."""
    if allow_scalar and not isinstance(value, bool) and isinstance(value, int | float):
        return Axis("values", (_number(ctx, value, key),))
    if isinstance(value, list):
        return Axis("values", _values(ctx, value, key))
    if not isinstance(value, Mapping):
        allowed = "a number, " if allow_scalar else ""
        raise ctx.fail(
            key,
            f"must be {allowed}a list of numbers or a table with values or start/stop/num, "
            f"got {_type_name(value)} {_show(value)}",
        )
    _check_keys(ctx, value, _AXIS_KEYS, key)
    if "values" in value:
        extra = [k for k in ("start", "stop", "num", "spacing") if k in value]
        if extra:
            raise ctx.fail(
                key, f"takes either values or start/stop/num, not both (also got {extra[0]})"
            )
        return Axis("values", _values(ctx, value["values"], _key(key, "values")))
    missing = [k for k in ("start", "stop", "num") if k not in value]
    if missing:
        raise ctx.fail(
            key, f"needs values = [...] or start, stop and num (missing {', '.join(missing)})"
        )
    start = _number(ctx, value["start"], _key(key, "start"))
    stop = _number(ctx, value["stop"], _key(key, "stop"))
    num = _positive_int(ctx, value["num"], _key(key, "num"), maximum=10**9)
    spacing = value.get("spacing", "linear")
    if spacing not in SPACINGS:
        raise ctx.fail(_key(key, "spacing"), f'must be "linear" or "log", got {_show(spacing)}')
    if spacing == "log":
        if start <= 0 or stop <= 0:
            bad, name = (start, "start") if start <= 0 else (stop, "stop")
            raise ctx.fail(_key(key, name), f'must be > 0 with spacing = "log", got {_show(bad)}')
    return Axis(spacing, (), start, stop, num)


def _where(axis: Axis, i: int, key: str) -> str:
    """Key path of value i of an axis: [T].values[2], or [T].start / [T].stop for a range."""
    if axis.spacing == "values":
        return f"{key}.values[{i}]"
    return _key(key, "start" if i == 0 else "stop")


def _values(ctx: _Ctx, value: Any, key: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ctx.fail(key, f"must be a list of numbers, got {_type_name(value)} {_show(value)}")
    if not value:
        raise ctx.fail(key, "must be a non-empty list of numbers, got []")
    return tuple(_number(ctx, v, f"{key}[{i}]") for i, v in enumerate(value))


# --- J ------------------------------------------------------------------------------------------


def _vector(ctx: _Ctx, value: Any, key: str) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise ctx.fail(key, f"must be 3 numbers [Jx, Jy, Jz], got {_show(value)}")
    if any(isinstance(v, list) for v in value):
        raise ctx.fail(
            key,
            f"must be 3 numbers [Jx, Jy, Jz], got {_show(value)} (a 3x3 exchange tensor needs "
            '[model] exchange = "tensor")',
        )
    x, y, z = (_number(ctx, v, f"{key}[{i}]") for i, v in enumerate(value))
    return (x, y, z)


_TENSOR_FORM = "a 3x3 tensor [[Jxx, Jxy, Jxz], [Jyx, Jyy, Jyz], [Jzx, Jzy, Jzz]] or 3 numbers"


def _tensor(ctx: _Ctx, value: Any, key: str) -> tuple:
    """An exchange tensor: 3 rows of 3 numbers (row i: impurity spin component), or 3 numbers
    for a diagonal tensor. Returns 3 tuples of 3 floats."""
    if isinstance(value, list) and len(value) == 3 and not any(isinstance(v, list) for v in value):
        d = _vector(ctx, value, key)
        return tuple(tuple(d[i] if i == j else 0.0 for j in range(3)) for i in range(3))
    if not (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(row, list) and len(row) == 3 for row in value)
    ):
        raise ctx.fail(key, f"must be {_TENSOR_FORM} (its diagonal), got {_show(value)}")
    return tuple(
        tuple(_number(ctx, v, f"{key}[{i}][{j}]") for j, v in enumerate(row))
        for i, row in enumerate(value)
    )


def _j_axis(ctx: _Ctx, table: Any, tensor: bool = False) -> JAxis:
    table = _table(ctx, table, "[J]")
    _check_keys(ctx, table, J_KINDS, "[J]")
    kinds = [k for k in J_KINDS if k in table]
    if len(kinds) != 1:
        got = ", ".join(kinds) if kinds else "none"
        raise ctx.fail("[J]", f"needs exactly one of {', '.join(J_KINDS)}, got {got}")
    kind = kinds[0]
    value = table[kind]
    key = _key("[J]", kind)
    if tensor and kind in ("product", "sphere"):
        raise ctx.fail(
            key,
            'gives diagonal couplings; with [model] exchange = "tensor" use cases (3x3 tensors) '
            'or isotropic (J times the identity), or exchange = "diagonal"',
        )
    if kind == "cases":
        if not isinstance(value, list) or not value:
            form = _TENSOR_FORM if tensor else "[Jx, Jy, Jz]"
            raise ctx.fail(
                key,
                f'must be a non-empty array of tables {{name = "...", J = {form}}}, '
                f"got {_show(value)}",
            )
        cases: list[tuple[str, tuple]] = []
        for i, case in enumerate(value):
            ck = f"{key}[{i}]"
            case = _table(ctx, case, ck)
            _check_keys(ctx, case, _CASE_KEYS, ck)
            if "J" not in case:
                raise ctx.fail(ck, "needs J = " + ("a 3x3 tensor" if tensor else "[Jx, Jy, Jz]"))
            name = case.get("name", f"case{i}")
            if not isinstance(name, str) or not name.strip():
                raise ctx.fail(_key(ck, "name"), f"must be a non-empty string, got {_show(name)}")
            if any(name == n for n, _ in cases):
                raise ctx.fail(_key(ck, "name"), f"repeats the case name {_show(name)}")
            read = _tensor if tensor else _vector
            cases.append((name, read(ctx, case["J"], _key(ck, "J"))))
        return JAxis("cases", cases=tuple(cases), tensor=tensor)
    if kind == "isotropic":
        return JAxis("isotropic", axes=(_axis(ctx, value, key),), tensor=tensor)
    if kind == "product":
        value = _table(ctx, value, key)
        _check_keys(ctx, value, ("Jx", "Jy", "Jz"), key)
        missing = [c for c in ("Jx", "Jy", "Jz") if c not in value]
        if missing:
            raise ctx.fail(key, f"needs Jx, Jy and Jz (missing {', '.join(missing)})")
        axes = tuple(
            _axis(ctx, value[c], _key(key, c), allow_scalar=True) for c in ("Jx", "Jy", "Jz")
        )
        return JAxis("product", axes=axes)
    # sphere: magnitudes times directions on a (theta, phi) grid
    value = _table(ctx, value, key)
    _check_keys(ctx, value, _SPHERE_KEYS, key)
    missing = [c for c in _SPHERE_KEYS if c not in value]
    if missing:
        raise ctx.fail(key, f"needs n_theta, n_phi and magnitudes (missing {', '.join(missing)})")
    n_theta = _positive_int(ctx, value["n_theta"], _key(key, "n_theta"), maximum=10**6)
    n_phi = _positive_int(ctx, value["n_phi"], _key(key, "n_phi"), maximum=10**6)
    mags = _axis(ctx, value["magnitudes"], _key(key, "magnitudes"), allow_scalar=True)
    return JAxis("sphere", axes=(mags,), n_theta=n_theta, n_phi=n_phi)


# --- model -------------------------------------------------------------------------------------


def _is_spin(x: float) -> bool:
    """A positive multiple of 1/2 up to MAX_SPIN (jaxmi.impurity.is_spin, without JAX)."""
    return 0 < x <= MAX_SPIN and float(2 * x).is_integer()


def _parameter(ctx: _Ctx, value: Any, key: str) -> float | Axis:
    """A model parameter: a number (fixed) or an axis (swept: a dimension of the output)."""
    if not isinstance(value, bool) and isinstance(value, int | float):
        return _number(ctx, value, key)
    return _axis(ctx, value, key, allow_scalar=True)


def _check_range(ctx: _Ctx, value: float | Axis, key: str, ok, what: str) -> None:
    """Fail unless ``ok(x)`` for the value, or for every end of the axis (ranges are monotonic:
    their ends bound them)."""
    if isinstance(value, Axis):
        for i, x in enumerate(value.ends):
            if not ok(x):
                raise ctx.fail(_where(value, i, key), f"must be {what}, got {_show(x)}")
    elif not ok(value):
        raise ctx.fail(key, f"must be {what}, got {_show(value)}")


def _model(ctx: _Ctx, table: Any) -> ModelSpec:
    table = _table(ctx, table, "[model]")
    _check_keys(ctx, table, _MODEL_KEYS, "[model]")
    spin = table.get("spin", 0.5)
    if isinstance(spin, bool) or not isinstance(spin, int | float) or not _is_spin(spin):
        raise ctx.fail(
            "[model].spin",
            f"must be 1/2, 1, 3/2, ... (a positive multiple of 1/2, at most {MAX_SPIN:g}), "
            f"got {_show(spin)}",
        )
    exchange = table.get("exchange", "diagonal")
    if exchange not in EXCHANGES:
        raise ctx.fail("[model].exchange", f'must be "diagonal" or "tensor", got {_show(exchange)}')
    mu0 = _parameter(ctx, table.get("mu0", 0.0), "[model].mu0")
    _check_range(
        ctx,
        mu0,
        "[model].mu0",
        lambda x: abs(x) <= FAMILY_MU0_MAX,
        f"in [-{FAMILY_MU0_MAX:g}, {FAMILY_MU0_MAX:g}] (vF*k0, the validated domain of the "
        "general path)",
    )
    tex = _table(ctx, table.get("texture", {}), "[model.texture]")
    kind = tex.get("kind", "power_law")
    if kind not in TEXTURES:
        close = difflib.get_close_matches(str(kind), TEXTURES, n=1, cutoff=0.6)
        hint = f'; did you mean "{close[0]}"?' if close else ""
        raise ctx.fail(
            "[model.texture].kind", f'must be "power_law" or "polynomial", got {_show(kind)}{hint}'
        )
    for k in tex:
        other = [t for t in TEXTURES if t != kind and k in _TEXTURE_KEYS[t]]
        if k not in _TEXTURE_KEYS[kind] and other:
            raise ctx.fail(
                f"[model.texture].{k}",
                f'belongs to kind = "{other[0]}", not "{kind}" (allowed: '
                f"{', '.join(_TEXTURE_KEYS[kind])})",
            )
    _check_keys(ctx, tex, _TEXTURE_KEYS[kind], "[model.texture]")
    if kind == "polynomial":
        if "coefficients" not in tex:
            raise ctx.fail("[model.texture]", "needs coefficients = [c0, c1, ...] (theta(eps))")
        c = tex["coefficients"]
        if not isinstance(c, list) or not 1 <= len(c) <= MAX_COEFFICIENTS:
            raise ctx.fail(
                "[model.texture].coefficients",
                f"must be a list of 1 to {MAX_COEFFICIENTS} numbers [c0, c1, ...], got {_show(c)}",
            )
        coefficients = tuple(
            _number(ctx, v, f"[model.texture].coefficients[{i}]") for i, v in enumerate(c)
        )
        return ModelSpec(float(spin), exchange, mu0, kind, coefficients=coefficients)
    params = {}
    for name, default in (("scale", 1.0), ("exponent", 2.0)):
        key = f"[model.texture].{name}"
        params[name] = _parameter(ctx, tex.get(name, default), key)
        _check_range(ctx, params[name], key, lambda x: x > 0, "> 0")
    return ModelSpec(float(spin), exchange, mu0, kind, params["scale"], params["exponent"])


def _check_family_domain(ctx: _Ctx, t_axis: Axis, third_name: str, third: Axis) -> None:
    """The general path's validated domain (docs/accuracy.md): T <= 0.5 (the driver uses
    Config(family_tail_panels=48) above T = 0.3), |V| <= 2."""
    why = "with a [model] other than the paper's (the validated domain of the general path)"
    for i, t in enumerate(t_axis.ends):
        if t > FAMILY_T_MAX_FINE:
            raise ctx.fail(
                _where(t_axis, i, "[T]"), f"must be <= {FAMILY_T_MAX_FINE:g} {why}, got {_show(t)}"
            )
    if third_name == "V":
        for i, v in enumerate(third.ends):
            if abs(v) > V_MAX:
                raise ctx.fail(
                    _where(third, i, "[V]"),
                    f"must be in [-{V_MAX:g}, {V_MAX:g}] {why}, got {_show(v)}",
                )
    else:
        v_max = 2.0 * max(abs(u) for u in third.ends) * max(t_axis.ends)
        if v_max > V_MAX:
            raise ctx.fail(
                "[u]",
                f"gives biases |V| = 2|u|T up to {v_max:g} with [T] up to {max(t_axis.ends):g}; "
                f"|V| must be <= {V_MAX:g} {why}",
            )


# --- the file -----------------------------------------------------------------------------------


def parse(text: str, path: str = "<spec>") -> Spec:
    """Validate the TOML text of a spec; ``path`` is used in messages only.

    Raises:
        SpecError: one line naming ``path``, the key, the value and what is allowed.
    """
    ctx = _Ctx(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ctx.fail("", f"is not valid TOML: {err}") from None
    _check_keys(ctx, data, _TOP_KEYS, "")

    description = data.get("description", "")
    if not isinstance(description, str):
        raise ctx.fail("description", f"must be a string, got {_show(description)}")

    output = data.get("output")
    if output is not None and (not isinstance(output, str) or not output.strip()):
        raise ctx.fail("output", f"must be a non-empty path string, got {_show(output)}")

    quantities = data.get("quantities", list(DEFAULT_SWEEP_QUANTITIES))
    if not isinstance(quantities, list) or not quantities:
        raise ctx.fail(
            "quantities",
            f"must be a non-empty list from {_show(list(SWEEP_QUANTITIES))}, "
            f"got {_show(quantities)}",
        )
    for i, q in enumerate(quantities):
        if q not in SWEEP_QUANTITIES:
            close = difflib.get_close_matches(str(q), SWEEP_QUANTITIES, n=1, cutoff=0.6)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            raise ctx.fail(
                f"quantities[{i}]",
                f"must be one of {', '.join(SWEEP_QUANTITIES)}, got {_show(q)}{hint}",
            )
    if len(set(quantities)) != len(quantities):
        raise ctx.fail("quantities", f"lists a quantity twice: {_show(quantities)}")
    quantities = tuple(q for q in SWEEP_QUANTITIES if q in quantities)

    model = _model(ctx, data["model"]) if "model" in data else None

    if "J" not in data:
        raise ctx.fail("", "needs a [J] table (the coupling axis)")
    j_axis = _j_axis(ctx, data["J"], tensor=model is not None and model.exchange == "tensor")

    if "T" not in data:
        raise ctx.fail("", "needs a [T] table (the temperature axis)")
    t_axis = _axis(ctx, _table(ctx, data["T"], "[T]"), "[T]")
    for i, t in enumerate(t_axis.ends):
        if t < 0:
            raise ctx.fail(
                _where(t_axis, i, "[T]"), f"must be >= 0 (units of vF*k0), got {_show(t)}"
            )

    has_v, has_u = "V" in data, "u" in data
    if has_v == has_u:
        raise ctx.fail(
            "",
            "needs exactly one of [V] (bias eV) and [u] (u = eV/2T), got "
            + ("both" if has_v else "neither"),
        )
    third_name = "V" if has_v else "u"
    third = _axis(ctx, _table(ctx, data[third_name], f"[{third_name}]"), f"[{third_name}]")
    if third_name == "u":
        for i, t in enumerate(t_axis.ends):
            if t == 0:
                raise ctx.fail(
                    _where(t_axis, i, "[T]"),
                    "must be > 0 when the bias is given as [u] (u = eV/2T is undefined at T = 0; "
                    "use [V] instead), got 0.0",
                )
    if model is not None and not model.is_paper():
        _check_family_domain(ctx, t_axis, third_name, third)

    numerics = _table(ctx, data.get("numerics", {}), "[numerics]")
    _check_keys(ctx, numerics, _NUMERICS_KEYS, "[numerics]")
    order = numerics.get("order", DEFAULT_ORDER)
    if isinstance(order, bool) or not isinstance(order, int) or not 2 <= order <= MAX_ORDER:
        raise ctx.fail(
            "[numerics].order", f"must be an integer in [2, {MAX_ORDER}], got {_show(order)}"
        )
    precision = numerics.get("precision", "float64")
    if precision == "float32":
        raise ctx.fail(
            "[numerics].precision",
            'must be "float64", got "float32": the T^4 effect of an isotropic impurity is a '
            "cancellation of O(J^2) terms that float32 cannot hold",
        )
    if precision != "float64":
        raise ctx.fail("[numerics].precision", f'must be "float64", got {_show(precision)}')
    chunk = _positive_int(
        ctx, numerics.get("chunk", DEFAULT_CHUNK), "[numerics].chunk", maximum=2**26
    )

    return Spec(
        path=path,
        text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        J=j_axis,
        T=t_axis,
        third_name=third_name,
        third=third,
        quantities=quantities,
        order=order,
        precision=precision,
        chunk=chunk,
        output=output,
        description=description,
        model=model,
    )


#: The ready specs shipped with jaxmi (package data): jaxmi/sweeps/NAME.toml.
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sweeps")
#: How a shipped spec is named in messages and in a sweep file's ``spec_path`` attribute: its
#: path inside the package (the same on every install, unlike the site-packages path).
SHIPPED_PREFIX = "jaxmi/sweeps/"


class Located(NamedTuple):
    """Where a spec is: ``file``, the file to read, and ``path``, how it is named in messages
    and stored as the sweep file's ``spec_path`` (the argument as given for a file, else
    ``jaxmi/sweeps/NAME.toml`` for a shipped spec)."""

    file: str
    path: str


def shipped_names() -> tuple[str, ...]:
    """The names of the specs shipped with jaxmi (``jaxmi run NAME``), sorted: fig2, fig3, ..."""
    try:
        entries = os.listdir(SHIPPED_DIR)
    except OSError:
        return ()
    return tuple(sorted(e[: -len(".toml")] for e in entries if e.endswith(".toml")))


def _shipped_name(text: str) -> str | None:
    """``text`` as the name of a shipped spec (``fig2`` or ``fig2.toml``), else None."""
    name = text[: -len(".toml")] if text.endswith(".toml") else text
    return name if name in shipped_names() else None


def shipped(name: str) -> Located:
    """The shipped spec ``name`` (``fig2`` or ``fig2.toml``), whatever the current directory
    holds (``jaxmi figures`` uses fig2 and fig3 this way).

    Raises:
        SpecError: no shipped spec has that name (the message lists the names).
    """
    found = _shipped_name(name)
    if found is None:
        raise SpecError(f"{name}: no spec shipped with jaxmi has that name ({_names_text()})")
    return Located(os.path.join(SHIPPED_DIR, found + ".toml"), f"{SHIPPED_PREFIX}{found}.toml")


def _names_text() -> str:
    names = shipped_names()
    return ", ".join(names) if names else "none is installed"


def resolve(name_or_path: str | os.PathLike) -> Located:
    """The spec that ``jaxmi run SPEC`` means; the one place this is decided (the CLI, the
    figures and :func:`load` ask here).

    An existing file as given wins; else a shipped spec by its name (``fig2`` or ``fig2.toml``,
    :func:`shipped_names`), so that ``jaxmi run fig2`` works from any directory.

    Raises:
        SpecError: neither: one line that says so and lists the shipped names.
    """
    given = os.fspath(name_or_path)
    if os.path.isfile(given):
        return Located(given, given)
    if _shipped_name(given) is not None:
        return shipped(given)
    problem = "Is a directory" if os.path.isdir(given) else "No such file or directory"
    raise SpecError(
        f"{given}: cannot read the spec file: {problem}, and no spec shipped with jaxmi has "
        f"that name ({_names_text()})"
    )


def load(name_or_path: str | os.PathLike | Located) -> Spec:
    """Read and validate a spec (UTF-8 TOML): a file, or a shipped spec by name (:func:`resolve`),
    or a :class:`Located` (e.g. ``load(shipped("fig2"))``).

    Raises:
        SpecError: no such file or shipped spec, the file cannot be read, is not TOML, or does
            not match the schema.
    """
    file, path = name_or_path if isinstance(name_or_path, Located) else resolve(name_or_path)
    try:
        with open(file, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise SpecError(f"{path}: cannot read the spec file: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{path}: is not UTF-8 text (byte {err.start})") from None
    return parse(text, path)
