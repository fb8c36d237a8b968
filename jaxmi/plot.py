"""Figures: sweep files (``jaxmi plot``), the paper's Fig. 2 and Fig. 3 (``jaxmi figures``), fits.

The module that draws with matplotlib (a dependency of jaxmi); it is imported inside the
functions that draw, so ``import jaxmi`` stays light, and a broken install without it is a
one-line :class:`jaxmi.errors.JaxmiError` with the install command. Sweep pictures are drawn on
``matplotlib.figure.Figure`` objects (no pyplot state, no display needed). Every picture is
written by :func:`jaxmi.outputs.save_figure`: stamped ``jaxmi <version>`` in its metadata, and
never over a file jaxmi did not write unless ``overwrite=True``
(:func:`jaxmi.outputs.check_output`, also called before the work starts).

* :func:`plot_file` draws a sweep file with a default view chosen by its axes
  (:func:`default_view`); :func:`read_sweep` reads one.
* :func:`fig2_data`, :func:`fig3_data` hold what the paper's figures draw (tested against the
  closed forms); :func:`draw_fig2`, :func:`draw_fig3` draw them; :func:`make_figures` runs
  the shipped specs fig2 and fig3 (jaxmi/sweeps/) and writes both PNGs.
* :func:`fit_figure` draws a :class:`jaxmi.fitting.FitResult`: the data with error bars, the fitted
  model as curves, and the residuals underneath; chi^2_red in the title, the fitted parameters
  in the caption.

Units on every sweep axis (the README's Units table): T and eV in vF*k0, u = eV/2T,
conductance dG in G0 = e^2/h, current in e vF k0 / h, spin as <S_j> = Tr(S_j rho).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jaxmi import outputs
from jaxmi.errors import JaxmiError
from jaxmi.outputs import MISSING_MATPLOTLIB
from jaxmi.sweep import store

#: The files' ``long_name`` attributes (jaxmi.sweep.store.VARIABLES: what the number is measured
#: in) typeset with matplotlib's mathtext; a long_name missing here is drawn as it is.
MATHTEXT = {
    "dG / (e^2/h)": r"$dG\ /\ (e^2/h)$",
    "I / (e vF k0 / h)": r"$I\ /\ (e v_F k_0 / h)$",
    "T / vF k0": r"$T\ /\ v_F k_0$",
    "eV / vF k0": r"$eV\ /\ v_F k_0$",
    "eV / 2T": r"$u = eV/2T$",
    "Jx / vF": r"$J_x\ /\ v_F$",
    "Jy / vF": r"$J_y\ /\ v_F$",
    "Jz / vF": r"$J_z\ /\ v_F$",
    "mu0 / vF k0": r"$\mu_0\ /\ v_F k_0$",
    "texture scale / vF k0": r"texture scale $/\ v_F k_0$",
    "texture exponent": "texture exponent",
}


def _long_name(name: str) -> str:
    """The long_name of file variable ``name`` in mathtext (:data:`MATHTEXT`)."""
    long_name = store.VARIABLES[name][0]
    return MATHTEXT.get(long_name, long_name)


def _plain(text: str) -> str:
    """User text (a spec's description, a case name) safe from mathtext: dollars escaped."""
    return text.replace("$", r"\$")


#: What each quantity of a sweep is called on an axis (with its unit), in mathtext.
LABELS = {
    "conductance": _long_name("conductance"),
    "current": _long_name("current"),
    "Sx": r"$\langle S_x \rangle$",
    "Sy": r"$\langle S_y \rangle$",
    "Sz": r"$\langle S_z \rangle$",
    "dGdT": r"$\partial\,dG / \partial T\ \ /\ \ (e^2/h) / v_F k_0$",
    "ratio": r"$dG(T, V)\ /\ dG_L(T)$",
}
QUANTITIES = tuple(LABELS)
#: What each quantity is called in a title.
QUANTITY_NAMES = {
    "conductance": "$dG$",
    "current": "$I$",
    "Sx": LABELS["Sx"],
    "Sy": LABELS["Sy"],
    "Sz": LABELS["Sz"],
    "dGdT": r"$\partial\,dG / \partial T$",
    "ratio": r"$dG(T, V) / dG_L(T)$",
}
AXIS_LABELS = {
    "T": _long_name("T"),
    "V": _long_name("V"),
    "u": _long_name("u"),
    "mu0": _long_name("mu0") + " (Fermi level from the Dirac point)",
    "scale": _long_name("scale"),
    "exponent": _long_name("exponent") + r" $p$ ($\theta = |\varepsilon/\mathrm{scale}|^p$)",
}
#: The symbol of an axis in a legend entry ("T = 0.01").
SYMBOLS = {
    "T": "$T$",
    "V": "$eV$",
    "u": "$u$",
    "mu0": r"$\mu_0$",
    "scale": "scale",
    "exponent": "$p$",
}
#: Most coupling panels drawn for a file with swept model parameters (spread over J).
MAX_PANELS = 6
#: Colours of the paper's Fig. 2 by case name (the shipped spec jaxmi/sweeps/fig2.toml).
FIG2_COLOURS = {"isotropic": "black", "Jz>Jx": "tab:blue", "Jz=Jx": "tab:green", "Jx only": "red"}
_DPI = 110


def _matplotlib():
    """Import matplotlib (Agg canvas, no display) or fail with an install hint."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise JaxmiError(MISSING_MATPLOTLIB) from None
    return matplotlib, Figure


# --- reading ------------------------------------------------------------------------------------

# The file reader lives with the writer (jaxmi.sweep.store, the one module that imports h5py).
Sweep = store.Sweep
read_sweep = store.read_sweep


# --- quantities and axes ------------------------------------------------------------------------


def linear_conductance(J: np.ndarray, T: np.ndarray) -> np.ndarray:
    """dG_L(T)/G0 of Eq. 14 (exact in linear response), J (nJ, 3), T (nT,) -> (nJ, nT)."""
    from jaxmi import analytic

    return np.asarray(analytic.eq14_linear_conductance(J[:, None, :], T[None, :]))


def quantity(sw: Sweep, name: str) -> np.ndarray:
    """A quantity of the file on the full (nJ, nT, n3) grid.

    ``conductance``, ``current``, ``Sx``/``Sy``/``Sz`` as stored; ``dGdT`` the T-derivative of
    the conductance (second-order finite differences on the file's T grid); ``ratio`` the
    conductance over the linear conductance dG_L(T) of Eq. 14 (exact), the crossover ratio of
    Fig. 3.
    """
    if name not in QUANTITIES:
        raise JaxmiError(f"--quantity must be one of {', '.join(QUANTITIES)}, got {name!r}")
    stored = {"Sx": ("spin", 0), "Sy": ("spin", 1), "Sz": ("spin", 2)}
    key, comp = stored.get(name, ("conductance" if name in ("dGdT", "ratio") else name, None))
    if key not in sw.data:
        raise JaxmiError(
            f"{sw.path}: has no {key!r} dataset (it holds {', '.join(sw.data)}), needed for "
            f"--quantity {name}"
        )
    arr = sw.data[key] if comp is None else sw.data[key][..., comp]
    if name == "dGdT":
        if len(sw.T) < 3:
            raise JaxmiError(f"{sw.path}: dGdT needs at least 3 temperatures, got {len(sw.T)}")
        return np.gradient(arr, sw.T, axis=-2)
    if name == "ratio":
        if not sw.paper:
            raise JaxmiError(
                f"{sw.path}: ratio divides by Eq. 14, the paper's model; this file's model is "
                "another one (its [model] table)"
            )
        return arr / linear_conductance(sw.J, sw.T)[:, :, None]
    return arr


def _j_coordinate(sw: Sweep) -> tuple[np.ndarray, str] | None:
    """A numeric coordinate along J (for a map or an x axis), or None (named cases)."""
    if sw.J_kind == "cases" or len(sw.J) < 2:
        return None
    iso = r"$J\ /\ v_F$ (isotropic)"
    if sw.J.ndim == 3:  # exchange tensors: only the isotropic kind (J times 1) has one
        return (sw.J[:, 0, 0], iso) if sw.J_kind == "isotropic" else None
    J = sw.J
    varying = [k for k in range(3) if np.ptp(J[:, k]) > 0]
    if sw.J_kind == "isotropic" or (len(varying) == 3 and np.allclose(J, J[:, :1])):
        return J[:, 0], iso
    if len(varying) == 1:
        k = varying[0]
        name = "xyz"[k]
        if k != 0 and J[0, 0] != 0:
            return J[:, k] / J[0, 0], f"$J_{name}/J_x$  ($J_x$ = {J[0, 0]:g})"
        return J[:, k], _long_name(f"J{name}")
    return None


def _j_symbol(label: str) -> str:
    """The symbol of a J coordinate label of :func:`_j_coordinate`: "$J_z/J_x$", "$J_z$" or
    "$J$" (isotropic)."""
    if "/J_x$" in label:
        return label.split()[0]
    return label[:4] + "$" if label.startswith("$J_") else "$J$"


def _case_label(sw: Sweep, j: int) -> str:
    if sw.J.ndim == 3:
        Jt = sw.J[j]
        if np.count_nonzero(Jt - np.diag(np.diag(Jt))) == 0:
            vec = "$J_{{ij}}$ = diag({:g}, {:g}, {:g})".format(*np.diag(Jt))
        else:
            vec = "$J_{ij}$ = [" + "; ".join(" ".join(f"{x:g}" for x in row) for row in Jt) + "]"
    else:
        jx, jy, jz = sw.J[j]
        vec = f"$(J_x, J_y, J_z)$ = ({jx:g}, {jy:g}, {jz:g})"
    return f"{_plain(sw.J_names[j])}: {vec}" if sw.J_names else vec


def _axis_values(sw: Sweep, axis: str):
    """(values (n,), label) of a file axis: "J", "T", "V" or "u"."""
    if axis == "J":
        coord = _j_coordinate(sw)
        if coord is None:
            raise JaxmiError(
                f"{sw.path}: the J axis ({sw.J_kind}, {len(sw.J)} values) has no single numeric "
                "coordinate; plot against T or the bias, one line per coupling"
            )
        return coord
    if axis == "T":
        return sw.T, AXIS_LABELS["T"]
    if axis == sw.third_name:
        return sw.third, AXIS_LABELS[axis]
    if axis == "V":  # a u-file: V(T, u) is 2-D; handled by the caller
        return None, AXIS_LABELS["V"]
    raise JaxmiError(f"{sw.path}: no axis {axis!r}; this file's axes are J, T and {sw.third_name}")


def default_view(sw: Sweep) -> tuple[str, str | None, str]:
    """(x, y, quantity) a file is drawn with by default: y is None for lines.

    A u file: the crossover ratio against u. Two swept numeric axes (e.g. Jz/Jx and T): a map,
    of dG/dT when T is one of them (the sign map of jaxmi/sweeps/phase.toml), else of dG. Otherwise
    lines of dG against T (or the bias), one per coupling case.
    """
    q = "conductance" if "conductance" in sw.data else next(iter(sw.data))
    q = {"spin": "Sx"}.get(q, q)
    if sw.model_axes:
        return _model_view(sw, q)
    if sw.third_name == "u":
        return "u", None, "ratio" if ("conductance" in sw.data and sw.paper) else q
    nj, nt, n3 = sw.shape
    swept = [a for a, n in (("J", nj), ("T", nt), ("V", n3)) if n > 1]
    if "J" in swept and _j_coordinate(sw) is None:
        swept.remove("J")
    if len(swept) >= 2:
        x = [a for a in swept if a != "T"][0]
        y = "T" if "T" in swept else swept[1]
        return x, y, "dGdT" if (y == "T" and q == "conductance") else q
    return ("T" if nt > 1 else sw.third_name), None, q


# --- drawing sweep files ------------------------------------------------------------------------


def _save(fig, output: str, overwrite: bool) -> str:
    return outputs.save_figure(fig, output, dpi=_DPI, overwrite=overwrite)


def _symbol(sw: Sweep, axis: str) -> str:
    """What an axis is called in a title or legend entry ("$T$", "$J_z/J_x$")."""
    if axis == "J":
        coord = _j_coordinate(sw)
        return _j_symbol(coord[1]) if coord is not None else "$J$"
    return SYMBOLS.get(axis, axis)


def _headline(sw: Sweep, q: str, x: str, y: str | None = None, fixed: str = "") -> str:
    """The title of a sweep picture: what is drawn, by the quantity ``q`` ("$\\langle S_z
    \\rangle$ vs $T$", "map of $dG$ over $J_z/J_x$ and $T$"), where ``fixed`` is held."""
    name = QUANTITY_NAMES[q]
    if y is None:
        what = f"{name} vs {_symbol(sw, x)}"
    else:
        what = f"map of {name} over {_symbol(sw, x)} and {_symbol(sw, y)}"
    if fixed:
        what += f" at {fixed}"
    if not sw.complete:
        what += " (INCOMPLETE: missing chunks left blank)"
    return what


def _caption(fig, sw: Sweep) -> None:
    """The file and its spec's description, small under the picture (the description says what
    the sweep was for, not what this picture draws: not the title)."""
    name = os.path.basename(sw.path)
    text = _plain(f"{name}: {sw.description}" if sw.description else name)
    text = _wrap(fig, text, "small", _TEXT_WIDTH * fig.bbox.width)
    fig.supxlabel(text, fontsize="small", color="0.35")


#: The fraction of a figure's width a caption or a title may take (constrained layout pads
#: each side by 3/72 inch, 1.3% of a 6.4-inch figure).
_TEXT_WIDTH = 0.95


def _text_width(fig, text: str, fontsize) -> float:
    """The width in pixels of ``text`` (mathtext allowed) at ``fontsize`` on ``fig``, as its
    renderer draws it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    root = fig.figure  # a SubFigure draws on its parent Figure's canvas
    canvas = root.canvas if hasattr(root.canvas, "get_renderer") else FigureCanvasAgg(root)
    t = fig.text(0, 0, text, fontsize=fontsize)
    try:
        return t.get_window_extent(canvas.get_renderer()).width
    finally:
        t.remove()


def _words(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside mathtext (between unescaped dollars)."""
    pieces, start, math_mode, i = [], 0, False, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "$":
            math_mode = not math_mode
        elif not math_mode and text.startswith(sep, i):
            pieces.append(text[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    return [*pieces, text[start:]]


def _wrap(fig, text: str, fontsize, width: float, sep: str = " ") -> str:
    """``text`` broken into lines of at most ``width`` pixels (measured, mathtext as drawn) at
    ``sep`` outside mathtext, the separator kept at the end of each line but the last (a piece
    wider than ``width`` stays whole, on its own line)."""
    pieces = _words(text, sep)
    lines = [pieces[0]]
    for piece in pieces[1:]:
        joined = lines[-1] + sep + piece
        if _text_width(fig, joined, fontsize) <= width:
            lines[-1] = joined
        else:
            lines[-1] += sep.rstrip()
            lines.append(piece)
    return "\n".join(lines)


_MAX_LINES = 12
#: Most lines told apart by a legend; more are coloured by the value of their parameter and
#: keyed by a colour bar labelled with its long_name.
LEGEND_MAX_LINES = 6
#: Line styles of a second line parameter beside the colour bar (at most this many of its
#: values are drawn), told apart in a legend.
LINESTYLES = ("-", "--", ":", "-.")


def _pick(n: int, most: int = _MAX_LINES) -> np.ndarray:
    """At most ``most`` indices spread over range(n)."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))


@dataclasses.dataclass
class _LineParam:
    """A dimension drawn as one line per value: how many values, the legend entry of index k,
    and for a numeric one its values and the colour bar's label (its long_name)."""

    n: int
    entry: Callable[[int], str]
    values: np.ndarray | None = None
    label: str = ""


def _line_param(sw: Sweep, dim: str) -> _LineParam:
    """The :class:`_LineParam` of dimension ``dim`` of a sweep ("J", "T", "V", "u", "mu0", ...);
    J without a numeric coordinate (named cases) has no values: a legend only."""
    if dim == "J":
        coord = _j_coordinate(sw)
        if coord is None:
            return _LineParam(len(sw.J), lambda k: _case_label(sw, k))
        jv, label = coord
        sym = _j_symbol(label)
        return _LineParam(len(jv), lambda k: f"{sym} = {jv[k]:.4g}", np.asarray(jv), label)
    values = np.asarray({**sw.model_axes, "T": sw.T, sw.third_name: sw.third}[dim])
    sym = SYMBOLS.get(dim, dim)
    return _LineParam(len(values), lambda k: f"{sym} = {values[k]:.4g}", values, AXIS_LABELS[dim])


def _line_colours():
    """viridis without its palest yellows (lines on white)."""
    matplotlib, _ = _matplotlib()
    from matplotlib.colors import ListedColormap

    return ListedColormap(matplotlib.colormaps["viridis"](np.linspace(0.0, 0.88, 256)))


@dataclasses.dataclass
class _Keys:
    """How the lines of :func:`_draw_lines` are told apart: a legend (``legend`` True: of the
    lines' own labels; or of ``handles`` and ``labels``, line styles) and, for many lines, a
    colour bar (``mappable``, ``label``, ``ticks``: the drawn values)."""

    legend: bool = False
    title: str | None = None
    handles: list | None = None
    labels: list | None = None
    mappable: object = None
    label: str = ""
    ticks: np.ndarray | None = None
    all_drawn: bool = False
    note: str | None = None


_MARKERS = ("o", "s", "^", "v", "D", "<", ">", "p", "h", "*")
#: Lines whose values all agree to this fraction of their magnitude are flat (e.g. the ratio
#: dG/dG_L at V = 0: 1 to 4e-12, the engine's agreement with Eq. 14): a linear axis shows them
#: at +-FLAT_VIEW of it, not zoomed into their rounding errors. Real variations of 1e-6 (the
#: ratio at u = 0.001) stay resolved.
FLAT = 1e-9
FLAT_VIEW = 1e-3


def _shown_span(y: np.ndarray) -> float:
    """The span of values a linear axis shows for the finite values ``y``: their range, or
    for flat ones (:data:`FLAT`) 2 FLAT_VIEW of their magnitude."""
    y = np.asarray(y, float)
    y = y[np.isfinite(y)]
    if not y.size:
        return 0.0
    top, span = float(np.max(np.abs(y))), float(np.ptp(y))
    return 2 * FLAT_VIEW * top if span <= FLAT * top else span


def _readable(ax) -> None:
    """Tick labels that read as they are: no offset ("1e-12 + 1"), a power of ten written as such
    (x 10^-7), and flat lines (:data:`FLAT`) at +-FLAT_VIEW of their value on a linear axis."""
    from matplotlib.ticker import ScalarFormatter

    ys = [np.asarray(line.get_ydata(), float).ravel() for line in ax.lines]
    y = np.concatenate(ys) if ys else np.empty(0)
    y = y[np.isfinite(y)]
    if ax.get_yscale() == "linear" and y.size:
        top, span = float(np.max(np.abs(y))), float(np.ptp(y))
        if 0 < top and span <= FLAT * top:
            mid = 0.5 * (float(y.max()) + float(y.min()))
            ax.set_ylim(mid - FLAT_VIEW * top, mid + FLAT_VIEW * top)
    for axis in (ax.xaxis, ax.yaxis):
        fmt = axis.get_major_formatter()
        if isinstance(fmt, ScalarFormatter):
            fmt.set_useOffset(False)
            fmt.set_useMathText(True)


#: Lines closer than this fraction of the data's span (and, relatively, than this factor) are
#: drawn on top of each other on a linear axis or a log one: they are told apart and said to
#: coincide.
COINCIDE = 2e-3


def _coincide(ys: list[np.ndarray]) -> str | None:
    """A legend title saying the lines ``ys`` coincide (as the crossover ratio of a u file
    does: a function of u alone up to O(T^4), Eq. 18), with their largest difference; None if
    they do not."""
    if len({y.shape for y in ys}) != 1:
        return None
    y = np.asarray(ys, float)
    ok = np.all(np.isfinite(y), axis=0)
    if not ok.any():
        return None
    y = y[:, ok]
    diff = float(np.max(np.abs(y - y[0])))
    if diff > COINCIDE * _shown_span(y):
        return None
    if diff == 0.0:
        return f"the {len(ys)} lines are identical"
    nonzero = y[0] != 0
    if np.all(nonzero):
        rel = float(np.max(np.abs(y / y[0] - 1)))
        if rel > COINCIDE:
            return None
        return f"the {len(ys)} lines coincide (to {rel:.1g} relative)"
    return f"the {len(ys)} lines coincide (to {diff:.1g})"


def _stacked(n: int, n_lines: int, n_points: int) -> dict:
    """Line n of n_lines that coincide: each narrower than the one before (so every colour shows
    at the edges), with its own hollow markers, staggered along the line."""
    period = max(n_lines, n_points // 8)
    return {
        "lw": 1.2 + min(1.6, 5.0 / (n_lines - 1)) * (n_lines - 1 - n),
        "marker": _MARKERS[n % len(_MARKERS)],
        "ms": 4.5,
        "mfc": "none",
        "markevery": (n * period // n_lines, period),
    }


def _draw_lines(ax, params: list[_LineParam], curve) -> _Keys:
    """One line ``curve(indices) -> (x, y)`` per combination of the picked values of
    ``params`` (none, one or two :class:`_LineParam`, at most 12 values of each) on ``ax``.

    Up to :data:`LEGEND_MAX_LINES` lines get the colours C0, C1, ... and a legend (so do lines
    of named coupling cases, which have no numeric value). More are coloured by the value of
    the numeric parameter with the most values, keyed by a colour bar; the other parameter, if
    any, is drawn at up to len(:data:`LINESTYLES`) values told apart by line style in a legend.
    Lines that coincide (:func:`_coincide`) are drawn stacked (:func:`_stacked`), and the
    legend's title says so. Returns what :func:`_draw_keys` draws.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.lines import Line2D

    picks = [_pick(p.n) for p in params]
    numeric = [k for k, p in enumerate(params) if p.values is not None]
    few = math.prod(len(k) for k in picks) <= LEGEND_MAX_LINES or not numeric
    keys = _Keys(legend=few and bool(params))
    if not few:
        c = max(numeric, key=lambda k: params[k].n)
        styled = [k for k in range(len(params)) if k != c]
        if styled:
            picks[styled[0]] = _pick(params[styled[0]].n, len(LINESTYLES))
        values = params[c].values
        lo, hi = float(np.min(values)), float(np.max(values))
        norm = LogNorm(lo, hi) if _log_spaced(np.sort(values)) else Normalize(lo, hi)
        cmap = _line_colours()
        keys.mappable = ScalarMappable(norm=norm, cmap=cmap)
        keys.label = params[c].label
        keys.ticks = np.asarray(values)[picks[c]]
        keys.all_drawn = len(picks[c]) == params[c].n
        if not keys.all_drawn:
            keys.label += f"  ({len(picks[c])} of {params[c].n} lines)"
    combos = list(itertools.product(*picks))
    curves = [curve(combo) for combo in combos]
    n_lines = len(combos)
    same = _coincide([yv for _, yv in curves]) if n_lines > 1 else None
    for n, (combo, (xv, yv)) in enumerate(zip(combos, curves, strict=True)):
        style = {"marker": "." if len(xv) < 30 else None}
        if few:
            style["label"] = ", ".join(p.entry(k) for p, k in zip(params, combo, strict=True))
            style["label"] = style["label"] or "_nolegend_"
            style["color"] = f"C{n % 10}"
            style["ls"] = LINESTYLES[n // 10 % len(LINESTYLES)]
        else:
            style["ms"] = 4
            style["color"] = cmap(norm(values[combo[c]]))
            if styled:
                style["ls"] = LINESTYLES[list(picks[styled[0]]).index(combo[styled[0]])]
        if same is not None:
            style.update(_stacked(n, n_lines, len(xv)))
        ax.plot(xv, yv, **style)
    if few:
        total = math.prod(p.n for p in params)
        keys.title = None if n_lines == total else f"{n_lines} of {total}"
    elif styled:
        p = params[styled[0]]
        keys.labels = [p.entry(k) for k in picks[styled[0]]]
        keys.handles = [
            Line2D([], [], color="0.25", ls=ls) for ls in LINESTYLES[: len(keys.labels)]
        ]
        keys.title = None if len(keys.labels) == p.n else f"{len(keys.labels)} of {p.n}"
    if same is not None:
        keys.title = f"{keys.title}; {same}" if keys.title else same
        keys.note = same
    return keys


def _plain_number(v: float, _pos=None) -> str:
    """A tick label: 3 significant digits, no exponent below 1e-4, a true minus sign."""
    return f"{v:.3g}".replace("-", "\N{MINUS SIGN}")


def _draw_keys(fig, ax, keys: _Keys, colour_axes=None) -> None:
    """Draw the legend and the colour bar of :func:`_draw_lines` (the colour bar beside
    ``colour_axes``, default ``ax``). A legend of line styles beside a colour bar goes under
    the picture: every part of the panel has lines in it."""
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    if keys.legend:
        ax.legend(fontsize="small", title=keys.title, title_fontsize="small")
    if keys.mappable is None:
        return
    if keys.note and not keys.handles:  # lines keyed by colour that coincide: say so
        ax.legend(handles=[], title=keys.note, title_fontsize="small")
    cbar = fig.colorbar(keys.mappable, ax=colour_axes or ax, label=keys.label)
    # Plain numbers (no 2 x 10^-1 on a log scale): at the lines' values when every value has
    # its line (which lines there are), else where matplotlib puts them (nice round numbers).
    if keys.all_drawn:
        cbar.ax.yaxis.set_minor_locator(NullLocator())
        cbar.set_ticks(keys.ticks)
    elif isinstance(keys.mappable.norm, LogNorm):
        cbar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        cbar.ax.yaxis.set_minor_locator(NullLocator())
    cbar.ax.yaxis.set_major_formatter(FuncFormatter(_plain_number))
    if keys.handles:
        fig.legend(
            keys.handles,
            keys.labels,
            fontsize="small",
            title=keys.title,
            title_fontsize="small",
            loc="outside upper center",
            ncols=2,
            frameon=False,
        )


def plot_lines(
    sw: Sweep, output: str, *, x: str, q: str, log: str | None = None, overwrite: bool = False
) -> str:
    """Draw :func:`lines_figure` to ``output``; returns its path."""
    return _save(lines_figure(sw, x=x, q=q, log=log), output, overwrite)


def lines_figure(sw: Sweep, *, x: str, q: str, log: str | None = None):
    """Lines of quantity ``q`` against axis ``x``, one per value of the other swept axes (at
    most 12, spread evenly): a legend for a few lines, a colour bar for many
    (:func:`_draw_lines`); returns the Figure."""
    _, Figure = _matplotlib()
    z = quantity(sw, q)
    order = {"J": 0, "T": 1, sw.third_name: 2, "V": 2}
    if x not in order:
        _axis_values(sw, x)  # raises the one-line error
    ax_i = order[x]
    xs, xlabel = _axis_values(sw, x)
    others = [i for i in range(3) if i != ax_i]
    zz = np.moveaxis(z, ax_i, -1)  # (other0, other1, nx)
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    names = {0: "J", 1: "T", 2: sw.third_name}
    swept = [i for i in others if z.shape[i] > 1]

    def curve(combo):
        idx = {i: 0 for i in others} | dict(zip(swept, combo, strict=True))
        a, b = idx[others[0]], idx[others[1]]
        xv = sw.V[b] if (x == "V" and sw.third_name == "u") else xs
        return xv, zz[a, b]

    _draw_keys(fig, ax, _draw_lines(ax, [_line_param(sw, names[i]) for i in swept], curve))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(LABELS[q])
    finite = np.asarray(z)[np.isfinite(z)]
    positive = finite.size > 0 and bool(np.all(finite > 0))
    if log is None:  # u: log axes where the values span decades (the crossover of Fig. 3)
        wide = positive and finite.max() > LOG_COLOUR_SPAN * finite.min()
        log = ("x" if x == "u" and xs.max() >= 10 * xs.min() > 0 else "") + (
            "y" if (x == "u" and wide) else ""
        )
    if "x" in log:
        ax.set_xscale("log")
    if "y" in log:
        ax.set_yscale("log" if positive else "symlog")
    ax.grid(alpha=0.3)
    _readable(ax)
    ax.set_title(_headline(sw, q, x), fontsize="medium")
    _caption(fig, sw)
    return fig


#: A one-signed map whose magnitudes span more than this factor gets a log colour scale (with
#: ``log_colour``): the gate map's isotropic panel runs from ~1e-7 (T^4 at the Dirac point) to
#: ~1e-2.
LOG_COLOUR_SPAN = 100.0


def _map_scale(z2: np.ndarray, q: str, log_colour: bool):
    """(values, cmap, norm, colour-bar label) of the map of z2: a diverging scale centred at 0
    where z2 takes both signs (or one value); a sequential one over its range where it has one
    sign (a scale centred at 0 would spend its colours on values that do not occur, e.g. a
    ratio near 1); with ``log_colour``, |z2| on a log scale where one sign spans more than
    LOG_COLOUR_SPAN (Blues for negative, Reds for positive values)."""
    from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm

    finite = z2[np.isfinite(z2)]
    one_sign = finite.size and (np.all(finite < 0) or np.all(finite > 0))
    if one_sign and log_colour:
        mag = np.abs(finite)
        if mag.max() > LOG_COLOUR_SPAN * mag.min():
            negative = bool(finite[0] < 0)
            label = ("$-$" if negative else "") + LABELS[q] + "  (log scale)"
            norm = LogNorm(vmin=mag.min(), vmax=mag.max())
            return np.abs(z2), "Blues" if negative else "Reds", norm, label
    if one_sign and finite.min() < finite.max():
        return z2, "viridis", Normalize(vmin=finite.min(), vmax=finite.max()), LABELS[q]
    vmax = float(np.max(np.abs(finite))) if finite.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)
    return z2, "RdBu_r", norm, LABELS[q] + "  (red > 0 > blue)"


def _draw_map(
    fig, ax, xs, ys, z2, q: str, *, log_y: bool = False, log_colour: bool = False
) -> None:
    """Colour map of z2 (y, x) on ``ax`` on the scale of :func:`_map_scale`, with a labelled
    colour bar, the zero contour where z2 takes both signs and a note where it is one value;
    ``log_y`` puts the y axis on a log scale."""
    values, cmap, norm, label = _map_scale(z2, q, log_colour)
    mesh = ax.pcolormesh(xs, ys, values, cmap=cmap, norm=norm, shading="nearest")
    finite = z2[np.isfinite(z2)]
    if finite.size and finite.min() < 0 < finite.max():
        ax.contour(xs, ys, z2, levels=[0.0], colors="black", linewidths=1.0)
    if log_y:
        ax.set_yscale("log")
    fig.colorbar(mesh, ax=ax).set_label(label)
    if finite.size and finite.min() == finite.max():  # e.g. <Sx>, <Sz> = 0 exactly at Jy = 0
        ax.text(
            0.5,
            0.5,
            f"{LABELS[q]} = {finite[0]:.4g} at every point",
            transform=ax.transAxes,
            ha="center",
            va="center",
            bbox={"facecolor": "white", "edgecolor": "0.6"},
        )


def plot_map(sw: Sweep, output: str, *, x: str, y: str, q: str, overwrite: bool = False) -> str:
    """Draw :func:`map_figure` to ``output``; returns its path."""
    return _save(map_figure(sw, x=x, y=y, q=q), output, overwrite)


def map_figure(sw: Sweep, *, x: str, y: str, q: str):
    """A map of quantity ``q`` over axes ``x`` and ``y`` (the third at its first value), with
    the colour scale of :func:`_draw_map` and a labelled colour bar; returns the Figure."""
    _matplotlib()
    from matplotlib.figure import Figure

    if x == y:
        raise JaxmiError(f"--x and --y must differ, got {x!r} twice")
    order = {"J": 0, "T": 1, sw.third_name: 2}
    for a in (x, y):
        if a not in order:
            _axis_values(sw, a)
            raise JaxmiError(f"{sw.path}: cannot map over {a!r} in a u file; use u")
    xs, xlabel = _axis_values(sw, x)
    ys, ylabel = _axis_values(sw, y)
    z = quantity(sw, q)
    rest = ({0, 1, 2} - {order[x], order[y]}).pop()
    fixed = ""
    if z.shape[rest] > 1:
        fixed = {0: _case_label(sw, 0), 1: f"$T$ = {sw.T[0]:g}"}.get(
            rest, f"{SYMBOLS[sw.third_name]} = {sw.third[0]:g}"
        )
    z2 = np.take(z, 0, axis=rest)
    # z2 axes are the two kept ones in file order; make it (y, x).
    if order[x] < order[y]:
        z2 = z2.T
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.add_subplot()
    _draw_map(fig, ax, xs, ys, z2, q, log_y=_log_spaced(np.asarray(ys)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(_headline(sw, q, x, y, fixed), fontsize="medium")
    _caption(fig, sw)
    return fig


def plot_file(
    path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    x: str | None = None,
    y: str | None = None,
    quantity_name: str | None = None,
    log: str | None = None,
    overwrite: bool = False,
) -> str:
    """Draw a sweep file to a PNG (or any format matplotlib writes, by the output's extension);
    returns the picture's path.

    Args:
        path: the HDF5 file of a sweep.
        output: the picture (default: ``path`` with ``.png``).
        x, y: axes ("J", "T", "V", "u", or a swept model parameter "mu0", "scale",
            "exponent"); with ``y`` a map, else lines against ``x``. Default by the file's axes
            (:func:`default_view`). A file with swept model parameters is drawn with one panel
            per coupling (:func:`plot_panels`).
        quantity_name: one of :data:`QUANTITIES` (default by the file's axes).
        log: "x", "y", "xy" or "" to force log axes of a line plot (default: against u, a log
            u axis for u spanning a decade or more, and a log y axis for positive values
            spanning more than :data:`LOG_COLOUR_SPAN`).
        overwrite: replace an existing ``output`` that jaxmi did not write (by default only a
            picture carrying jaxmi's stamp is replaced: :func:`jaxmi.outputs.check_output`).

    Raises:
        JaxmiError: matplotlib is missing, the file is not a jaxmi file, or an axis or quantity
            does not exist in it (one line each).
        StoreError: ``output`` cannot or may not be written (checked before drawing).
    """
    _matplotlib()
    sw = read_sweep(path)
    output = os.fspath(output) if output is not None else str(Path(path).with_suffix(".png"))
    outputs.check_output(output, outputs.PICTURE, overwrite=overwrite)
    fig = sweep_figure(sw, x=x, y=y, quantity_name=quantity_name, log=log)
    return _save(fig, output, overwrite)


def sweep_figure(
    sw: Sweep,
    *,
    x: str | None = None,
    y: str | None = None,
    quantity_name: str | None = None,
    log: str | None = None,
):
    """The Figure :func:`plot_file` draws for the sweep ``sw`` (arguments as there)."""
    dx, dy, dq = default_view(sw)
    if x is None and y is None:
        x, y = dx, dy
    elif x is None:
        x = dx if dx != y else "T"
    q = quantity_name or (dq if (x, y) == (dx, dy) else "conductance")
    if sw.model_axes:
        return panels_figure(sw, x=x, y=y, q=q, log=log)
    if y is None:
        return lines_figure(sw, x=x, q=q, log=log)
    return map_figure(sw, x=x, y=y, q=q)


# --- files with swept model parameters ---------------------------------------------------------

#: A swept model parameter with at least this many values is drawn as a map against T by
#: default (the gate map of jaxmi/sweeps/gate.toml); fewer values are lines (textures.toml there).
MAP_MIN_VALUES = 9


def _model_view(sw: Sweep, q: str) -> tuple[str, str | None, str]:
    """Default (x, y, quantity) of a file with swept model parameters (panels per coupling): a
    map over (parameter, T) for a parameter with many values, else lines against T (or the
    bias, or the parameter) with one line per parameter value."""
    sizes = dict(zip(sw.dims, sw.shape, strict=True))
    swept = [d for d in sw.model_axes if sizes[d] > 1]
    others = [d for d in ("T", sw.third_name) if sizes[d] > 1]
    many = [d for d in swept if sizes[d] >= MAP_MIN_VALUES]
    if many and others:
        return many[0], others[0], q
    if others:
        return others[0], None, q
    return (swept[0] if swept else "T"), None, q


def _log_spaced(v: np.ndarray) -> bool:
    """Values that are (close to) a geometric progression: drawn on a log axis."""
    if len(v) < 3 or np.any(v <= 0):
        return False
    steps = np.diff(np.log(v))
    return bool(np.ptp(steps) < 1e-6 * np.abs(steps).max() and abs(v[-1] / v[0]) > 10)


def plot_panels(
    sw: Sweep,
    output: str,
    *,
    x: str,
    y: str | None,
    q: str,
    log: str | None = None,
    overwrite: bool = False,
) -> str:
    """Draw :func:`panels_figure` to ``output``; returns its path."""
    return _save(panels_figure(sw, x=x, y=y, q=q, log=log), output, overwrite)


def panels_figure(sw: Sweep, *, x: str, y: str | None, q: str, log: str | None = None):
    """A file with swept model parameters: one panel per coupling (at most :data:`MAX_PANELS`,
    spread over J), each a map of ``q`` over (``x``, ``y``) or, without ``y``, lines of ``q``
    against ``x``, one per value of the next swept dimension (at most 12). Every other dimension
    is held at its first value (the title says which). Returns the Figure."""
    _, Figure = _matplotlib()
    dims = sw.dims
    sizes = dict(zip(dims, sw.shape, strict=True))
    for a in (x, y):
        if a is not None and a not in dims[1:]:
            raise JaxmiError(
                f"{sw.path}: no axis {a!r} to draw against; this file has one panel per "
                f"coupling J and the axes {', '.join(dims[1:])}"
            )
    if x == y:
        raise JaxmiError(f"--x and --y must differ, got {x!r} twice")
    z = quantity(sw, q)
    values = {**sw.model_axes, "T": sw.T, sw.third_name: sw.third}
    line = None
    if y is None:  # lines: one per value of the first other swept dimension
        line = next((d for d in dims[1:] if d != x and sizes[d] > 1), None)
    shown = {x, y, line} - {None}
    held = [d for d in dims[1:] if d not in shown]
    fixed = ", ".join(f"{SYMBOLS[d]} = {values[d][0]:g}" for d in held if sizes[d] > 1)
    # (J, a, b, ...) -> (J, [y or line], x) with the held dimensions at index 0
    index = tuple(0 if d in held else slice(None) for d in dims[1:])
    zz = z[(slice(None), *index)]
    kept = [d for d in dims[1:] if d not in held]
    order = [kept.index(d) for d in (y, line) if d is not None] + [kept.index(x)]
    zz = np.transpose(zz, (0, *(k + 1 for k in order)))
    if zz.ndim == 2:
        zz = zz[:, None, :]
    js = np.unique(np.linspace(0, len(sw.J) - 1, min(len(sw.J), MAX_PANELS)).round().astype(int))
    ncols = 1 if len(js) == 1 else 2
    nrows = -(-len(js) // ncols)
    fig = Figure(figsize=(6.4 * ncols, 4.4 * nrows + 0.6), layout="constrained")
    xs = values[x]
    picks = _pick(zz.shape[1])
    params = [_line_param(sw, line)] if line is not None else []
    keys, line_axes = None, []
    for n, j in enumerate(js):
        ax = fig.add_subplot(nrows, ncols, n + 1)
        if y is not None:
            _draw_map(
                fig, ax, xs, values[y], zz[j], q, log_y=_log_spaced(values[y]), log_colour=True
            )
            ax.set_ylabel(AXIS_LABELS[y])
        else:
            panel = zz[j, picks]
            finite = panel[np.isfinite(panel)]
            positive = finite.size > 0 and bool(np.all(finite > 0))
            negative = finite.size > 0 and bool(np.all(finite < 0))
            mag = np.abs(finite)
            if log is None:  # automatic: one sign spanning decades -> |q| on a log axis
                log_y = (positive or negative) and mag.max() > LOG_COLOUR_SPAN * mag.min()
            else:
                log_y = "y" in log
            sign = -1.0 if (log_y and negative) else 1.0

            def curve(combo, j=j, sign=sign):
                return xs, sign * zz[j, combo[0] if combo else 0]

            keys = _draw_lines(ax, params, curve)
            line_axes.append(ax)
            if keys.legend:
                _draw_keys(fig, ax, keys)
            ax.set_ylabel(("$-$" if sign < 0 else "") + LABELS[q])
            if log_y:
                ax.set_yscale("log" if (positive or negative) else "symlog")
            ax.grid(alpha=0.3, which="both" if log_y else "major", lw=0.5)
        if (log is not None and "x" in log) or (log is None and _log_spaced(xs)):
            ax.set_xscale("log")
        if y is None:
            _readable(ax)
        ax.set_xlabel(AXIS_LABELS[x])
        ax.set_title(_case_label(sw, j), fontsize="medium")
    if keys is not None and not keys.legend:  # the same lines in every panel: one colour bar
        _draw_keys(fig, line_axes[-1], keys, colour_axes=line_axes)
    title = _headline(sw, q, x, y, fixed)
    if len(js) < len(sw.J):
        title += f" ({len(js)} of {len(sw.J)} couplings)"
    fig.suptitle(title, fontsize="medium")
    _caption(fig, sw)
    return fig


# --- the paper's figures ------------------------------------------------------------------------


def fig2_data(sw: Sweep, n_fine: int = 200) -> dict:
    """What Fig. 2 draws: dG_L/G0 against T per coupling case, and Eq. 14 on a fine T grid.

    Returns:
        dict with ``T`` (nT,), ``G`` (nJ, nT) from the engine at V = 0, ``names`` (nJ,),
        ``J`` (nJ, 3), ``T_fine`` (n_fine,) and ``eq14`` (nJ, n_fine), dG/G0 of Eq. 14 (exact).
    """
    if sw.third_name != "V" or len(sw.third) != 1 or sw.third[0] != 0:
        raise JaxmiError(f"{sw.path}: Fig. 2 needs a sweep at V = 0 only (as `jaxmi run fig2`)")
    T_fine = np.linspace(0.0, float(sw.T.max()), n_fine)
    T_fine[0] = 1e-4  # Eq. 14 is continuous at T = 0; keep the grid at T > 0
    return {
        "T": sw.T,
        "G": quantity(sw, "conductance")[:, :, 0],
        "names": sw.J_names or [f"J{j}" for j in range(len(sw.J))],
        "J": sw.J,
        "T_fine": T_fine,
        "eq14": linear_conductance(sw.J, T_fine),
    }


def fig3_data(sw: Sweep, n_fine: int = 300) -> dict:
    """What Fig. 3 draws: the crossover ratio and the MI polarization against u = eV/2T.

    Returns:
        dict with ``u`` (nu,), ``T`` (nT,), ``ratio`` (nT, nu) = dG(T, V)/dG_L(T) (engine over
        Eq. 14, exact), ``sx_ratio`` (nT, nu) = <Sx>/Sx^(0) with the corrected
        Sx^(0) = -(u/3)(pi T)^2 (the paper prints twice that: docs/physics.md), and on a fine u
        grid ``u_fine``, ``eq18``, ``eq19``, ``small_u`` (= 1) and ``large_u`` = (5/8)(u/pi)^4.
    """
    from jaxmi import analytic

    if sw.third_name != "u" or len(sw.J) != 1 or "spin" not in sw.data:
        raise JaxmiError(
            f"{sw.path}: Fig. 3 needs one coupling on a u axis with the spin (as `jaxmi run fig3`)"
        )
    u = sw.third
    sx = sw.data["spin"][0, :, :, 0]
    sx0 = np.asarray(analytic.eq19_sx0(sw.T[:, None], sw.V))
    u_fine = np.geomspace(u.min(), u.max(), n_fine)
    return {
        "u": u,
        "T": sw.T,
        "ratio": quantity(sw, "ratio")[0],
        "sx_ratio": sx / sx0,
        "u_fine": u_fine,
        "eq18": np.asarray(analytic.eq18_crossover(u_fine)),
        "eq19": np.asarray(analytic.eq19_polarization_ratio(u_fine)),
        "small_u": np.ones_like(u_fine),
        "large_u": 5.0 / 8.0 * (u_fine / np.pi) ** 4,
    }


def draw_fig2(sw: Sweep, output: str, *, overwrite: bool = False) -> str:
    """Draw :func:`fig2_figure` to ``output``; returns its path."""
    return _save(fig2_figure(sw), output, overwrite)


def fig2_figure(sw: Sweep):
    """The paper's Fig. 2: dG_L/G0 against T/vFk0 for four couplings (engine: circles), with
    Eq. 14 (exact) dashed in the same colours; returns the Figure."""
    _, Figure = _matplotlib()
    d = fig2_data(sw)
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    ax.axhline(0.0, color="0.7", lw=0.8)
    for j, name in enumerate(d["names"]):
        colour = FIG2_COLOURS.get(name, f"C{j}")
        ax.plot(
            d["T"][::2],
            d["G"][j, ::2],
            "o",
            ms=4,
            mfc="none",
            color=colour,
            label=_case_label(sw, j),
            zorder=3,
        )
        ax.plot(d["T_fine"], d["eq14"][j], "--", color=colour, lw=1.3, zorder=2)
    ax.plot([], [], "--", color="0.3", label="Eq. 14 (closed form)")
    ax.set_xlim(0.0, float(d["T"].max()) * 1.02)
    ax.set_xlabel(AXIS_LABELS["T"])
    ax.set_ylabel(r"$dG_L\ /\ (e^2/h)$")
    ax.set_title(
        "Linear conductance correction (paper's Fig. 2): engine (circles), Eq. 14 (dashed)",
        fontsize="medium",
    )
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(0.0, 0.45))
    ax.grid(alpha=0.3)
    return fig


def draw_fig3(sw: Sweep, output: str, *, overwrite: bool = False) -> str:
    """Draw :func:`fig3_figure` to ``output``; returns its path."""
    return _save(fig3_figure(sw), output, overwrite)


def fig3_figure(sw: Sweep):
    """The paper's Fig. 3: the crossover dG(T, V)/dG_L(T) against u = eV/2T (log-log) with
    Eq. 18 and its two limiting laws, 1 (u << 1, Eq. 16) and (5/8)(u/pi)^4 (u >> 1, Eq. 17);
    inset: the MI polarization <Sx>/Sx^(0) with Eq. 19, where Sx^(0) = -(u/3)(pi T)^2 is
    corrected from the paper's printed -(2u/3)(pi T)^2 (docs/physics.md). Eq. 19 dips to ~0.78
    near u = 3 before rising (the engine agrees). Returns the Figure."""
    _, Figure = _matplotlib()
    d = fig3_data(sw)
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.add_subplot()
    marks = ["o", "s", "^", "v", "D"]
    # The temperatures collapse onto one curve (Eq. 18): each one's markers at its own u, every
    # n-th from the i-th, so none hides under another's (they were all at the same u).
    n = len(d["T"])
    for i, t in enumerate(d["T"]):
        ax.plot(
            d["u"][i::n],
            d["ratio"][i, i::n],
            marks[i % 5],
            ms=3.5,
            mfc="none",
            color=f"C{i}",
            label=f"engine, $T$ = {t:g} $v_F k_0$",
        )
    ax.plot(d["u_fine"], d["eq18"], "--", color="black", lw=1.3, label="Eq. 18")
    ax.plot(d["u_fine"], d["small_u"], ":", color="tab:gray", lw=1.3, label="1 ($T^4$ law, Eq. 16)")
    ax.plot(
        d["u_fine"],
        d["large_u"],
        ":",
        color="tab:red",
        lw=1.3,
        label=r"$(5/8)(u/\pi)^4$ ($(eV)^4$ law, Eq. 17)",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(0.5, 2.0 * float(np.max(d["eq18"])))
    ax.set_xlabel(AXIS_LABELS["u"])
    ax.set_ylabel(LABELS["ratio"])
    ax.set_title(
        f"Crossover of an isotropic impurity, $J$ = {sw.J[0, 0]:g} (paper's Fig. 3)",
        fontsize="medium",
    )
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(0.0, 0.53))
    ax.grid(alpha=0.3, which="both", lw=0.4)
    # Inset as in the paper: linear u axis.
    ins = ax.inset_axes([0.1, 0.6, 0.34, 0.27])  # its two-line title clear of the frame
    for i in range(len(d["T"])):
        ins.plot(
            d["u"][i::n], d["sx_ratio"][i, i::n], marks[i % 5], ms=2.5, mfc="none", color=f"C{i}"
        )
    ins.plot(d["u_fine"], d["eq19"], "--", color="black", lw=1.1)
    ins.set_xlim(0.0, float(d["u"].max()) * 1.03)
    ins.set_xlabel(AXIS_LABELS["u"], fontsize="x-small", labelpad=1)
    ins.set_title(
        r"$\langle S_x \rangle / S_x^{(0)}$, Eq. 19 dashed;"
        "\n"
        r"$S_x^{(0)} = -(u/3)(\pi T)^2$ (corrected)",
        fontsize="x-small",
    )
    ins.tick_params(labelsize="x-small")
    return fig


def _output_dir(outdir: Path) -> None:
    """Create the figures' output directory if it is missing, like ``mkdir`` (the last
    component only: a missing parent is an error, most likely a typo)."""
    if outdir.is_dir():
        return
    if outdir.exists():
        raise JaxmiError(f"{outdir}: the output directory is not a directory")
    parent = outdir.parent
    if not parent.is_dir():
        problem = "is not a directory" if parent.exists() else "does not exist"
        raise JaxmiError(
            f"{outdir}: cannot create the output directory: its parent {parent} {problem} "
            "(only the last component is created)"
        )
    try:
        outdir.mkdir()
    except FileExistsError:  # created meanwhile by someone else: fine if it is a directory
        if not outdir.is_dir():
            raise JaxmiError(f"{outdir}: the output directory is not a directory") from None
    except OSError as err:
        raise JaxmiError(
            f"{outdir}: cannot create the output directory: {err.strerror or err}"
        ) from None


def make_figures(
    outdir: str | os.PathLike = ".",
    *,
    data_dir: str | os.PathLike | None = None,
    progress=None,
    overwrite: bool = False,
) -> list[str]:
    """Run the shipped specs fig2 and fig3 (jaxmi/sweeps/) and draw fig2.png and fig3.png in
    ``outdir``.

    Args:
        outdir: where the PNGs go; created if missing (its parent must exist).
        data_dir: where the HDF5 files go (kept; an existing complete file of the same spec is
            reused, not recomputed); default a temporary directory, removed afterwards.
        progress: a :class:`jaxmi.sweep.run.Progress` for the sweeps (default silent).
        overwrite: replace existing PNGs that jaxmi did not write (by default only pictures
            carrying jaxmi's stamp are replaced).

    Returns:
        the paths of the two PNGs.

    Raises:
        JaxmiError: matplotlib is missing, the data directory does not exist, or the output
            directory cannot be created.
        StoreError: a PNG cannot or may not be written (checked before any sweep runs).
    """
    _matplotlib()
    from jaxmi.sweep import spec as spec_mod

    outdir = Path(outdir)
    if data_dir is not None and not Path(data_dir).is_dir():
        problem = "is not a directory" if Path(data_dir).exists() else "does not exist"
        raise JaxmiError(f"{data_dir}: the data directory {problem}")
    specs = {name: spec_mod.load(spec_mod.shipped(name)) for name in ("fig2", "fig3")}
    _output_dir(outdir)
    pictures = {name: str(outdir / f"{name}.png") for name in ("fig2", "fig3")}
    for picture in pictures.values():
        outputs.check_output(picture, outputs.PICTURE, overwrite=overwrite)
    from jaxmi.sweep.run import run_sweep

    with tempfile.TemporaryDirectory(prefix="jaxmi-figures-") as tmp:
        ddir = Path(data_dir) if data_dir is not None else Path(tmp)
        out = []
        for name, draw in (("fig2", draw_fig2), ("fig3", draw_fig3)):
            h5 = ddir / f"{name}.h5"
            run_sweep(specs[name], output=str(h5), progress=progress)
            out.append(draw(read_sweep(h5), pictures[name], overwrite=overwrite))
    return out


# --- fits ---------------------------------------------------------------------------------------

#: Most curves drawn in one panel before the data are shown without grouping.
MAX_CURVES = 8


def _groups(result):
    """How to draw the data: (x name, x values, group name, group values) where each group is
    drawn as one curve over x. Linear response -> G vs T; a few temperatures -> G vs V per T;
    a few biases -> G vs T per V; otherwise G vs T without curves (group None)."""
    d = result.data
    uT, uV = np.unique(d.T_K), np.unique(d.V_mV)
    if len(uV) == 1:
        return "T", d.T_K, "V", d.V_mV
    if len(uT) <= MAX_CURVES:
        return "V", d.V_mV, "T", d.T_K
    if len(uV) <= MAX_CURVES:
        return "T", d.T_K, "V", d.V_mV
    return "T", d.T_K, None, None


def fit_figure(
    result, path, *, title: str | None = None, points: int = 200, overwrite: bool = False
) -> None:
    """Write a PNG (or any format matplotlib writes, by the extension of ``path``) of a fit:
    :func:`fit_result_figure`.

    Args:
        result: a :class:`jaxmi.fitting.FitResult`.
        path: output file.
        title: figure title, wrapped at its words to the figure's width (default: one line,
            the points and chi^2_red: :func:`fit_title`).
        points: points per model curve.
        overwrite: replace an existing ``path`` that jaxmi did not write (by default only a
            picture carrying jaxmi's stamp is replaced).

    Raises:
        JaxmiError: matplotlib is not installed (with the install command).
        StoreError: ``path`` cannot or may not be written (checked before drawing).
    """
    _matplotlib()
    outputs.check_output(path, outputs.PICTURE, overwrite=overwrite, option="--plot")
    fig = fit_result_figure(result, title=title, points=points)
    outputs.save_figure(fig, path, dpi=120, overwrite=overwrite, option="--plot")


def fit_result_figure(result, *, title: str | None = None, points: int = 200, fig=None):
    """The Figure of a fit (:func:`fit_figure`).

    Top panel: measured G (e^2/h) with one-sigma error bars (when ``G_err`` was given) and the
    fitted model as lines in the colour of their data, each legend entry showing that colour;
    bottom panel: residuals, normalised ``(G - model) / G_err`` when errors were given, else
    ``G - model`` in e^2/h. The title is one line (:func:`fit_title`: chi^2_red and the dof;
    a ``title`` given wraps at its words to the figure's width); the fitted parameters are the
    caption under the picture (:func:`fit_caption`), wrapped between parameters. With ``fig``
    (a Figure or SubFigure) it draws there instead of a new Figure.
    """
    matplotlib, Figure = _matplotlib()
    from matplotlib.lines import Line2D

    d = result.data
    xname, x, gname, g = _groups(result)
    units = {"T": "K", "V": "mV"}
    if fig is None:
        fig = Figure(figsize=(6.4, 6.0), layout="constrained")
    ax, axr = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    resid = d.G - result.G_fit
    if result.weighted:
        resid = resid / d.G_err
    levels = np.unique(g) if gname is not None else [None]
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    handles, labels = [], []
    for i, level in enumerate(levels):
        sel = np.ones(len(x), bool) if level is None else g == level
        c = colors[i % len(colors)]
        bars = ax.errorbar(
            x[sel],
            d.G[sel],
            yerr=None if d.G_err is None else d.G_err[sel],
            fmt="o",
            ms=4,
            color=c,
            capsize=2,
        )
        axr.plot(x[sel], resid[sel], "o", ms=4, color=c)
        if gname is None:  # scattered (T, V): no single curve; mark the model at the data
            ax.plot(x, result.G_fit, "x", color="k")
            handles += [bars, Line2D([], [], ls="none", marker="x", color="k")]
            labels += ["data", "model at the data"]
            continue
        xs = np.linspace(x[sel].min(), x[sel].max(), points)
        curve = None
        if xs[0] != xs[-1]:
            T = xs if xname == "T" else np.full(points, level)
            V = xs if xname == "V" else np.full(points, level)
            (curve,) = ax.plot(xs, result.model(T, V), "-", color=c, lw=1.2)
        if len(levels) == 1:
            handles.append(bars)
            labels.append("data")
            if curve is not None:
                handles.append(curve)
                labels.append("fit")
        else:  # one entry per group: its points and its curve, in its colour
            handles.append(Line2D([], [], color=c, lw=1.2 if curve else 0, marker="o", ms=4))
            labels.append(f"{_symbol_of(gname)} = {level:g} {units[gname]}")
    ax.legend(
        handles,
        labels,
        fontsize=8,
        title="data (points), fit (lines)" if len(levels) > 1 else None,
        title_fontsize=8,
    )
    ax.set_ylabel(r"$G\ /\ (e^2/h)$")
    axr.axhline(0.0, color="k", lw=0.8)
    axr.set_ylabel(
        r"$(G - G_\mathrm{fit})\ /\ G_\mathrm{err}$"
        if result.weighted
        else r"$(G - G_\mathrm{fit})\ /\ (e^2/h)$"
    )
    axr.set_xlabel(f"{_symbol_of(xname)} / {units[xname]}")
    width = _TEXT_WIDTH * fig.bbox.width  # a SubFigure's own width
    # Centred on the figure (an axes title is centred on the axes, off the figure's middle).
    fig.suptitle(fit_title(result) if title is None else _wrap(fig, title, 9, width), fontsize=9)
    caption = fit_caption(result)
    if caption:
        text = _wrap(fig, caption, "small", width, sep=", ")
        fig.supxlabel(text, fontsize="small", color="0.35")
    return fig


def _symbol_of(column: str) -> str:
    """A data column (T, V) in mathtext."""
    return f"${column}$"


#: How a fit parameter is written in a figure: its symbol (mathtext) and the unit after it.
FIT_SYMBOLS = {
    "Jx": ("$J_x$", ""),
    "Jy": ("$J_y$", ""),
    "Jz": ("$J_z$", ""),
    "J": ("$J$", ""),
    "E0_meV": ("$E_0$", " meV"),
    "n": ("$n$", ""),
    "offset": ("offset", r" $e^2/h$"),
    "mu0_meV": (r"$\mu_0$", " meV"),
    "texture_scale": ("texture scale", r" $E_0$"),
    "texture_exponent": ("texture exponent", ""),
}


def _fit_parameter(result, name: str) -> str:
    """``$J_x$ = 0.3018 ± 0.0015`` (free, with its standard error) or ``$E_0$ = 10 meV``."""
    if name in FIT_SYMBOLS:
        symbol, unit = FIT_SYMBOLS[name]
    elif name.startswith("texture_c") and name[9:].isdigit():
        symbol, unit = f"$c_{{{name[9:]}}}$", " rad"
    else:
        symbol, unit = _plain(name), ""
    err = result.stderr.get(name)
    value = f"{result.params[name]:.4g}" + ("" if err is None else f" ± {err:.2g}")
    return f"{symbol} = {value}{unit}"


def fit_title(result) -> str:
    """The one-line title of a fit figure: the points, the goodness of fit in mathtext
    (``$\\chi^2_{\\mathrm{red}} = 0.39$``; without ``G_err`` the residual variance in
    (e^2/h)^2, which is no goodness of fit) and the dof; "NOT converged" when it did not."""
    if result.weighted:
        fit = rf"$\chi^2_{{\mathrm{{red}}}} = {result.chi2_reduced:#.3g}$"
    else:
        fit = f"residual variance {result.chi2_reduced:.3g} $(e^2/h)^2$ (unweighted)"
    title = f"Fit of {result.n_points} points: {fit}, {result.dof} dof"
    return title if result.converged else title + ", NOT converged"


def fit_caption(result) -> str:
    """The fitted parameters with their standard errors, then E0 when it was held fixed."""
    text = ", ".join(_fit_parameter(result, k) for k in result.free)
    if "E0_meV" not in result.free and "E0_meV" in result.params:
        text += f"; fixed {_fit_parameter(result, 'E0_meV')}"
    return text


# --- posterior corner plot ----------------------------------------------------------------------

#: Central mass inside the corner plot's contours and linearised ellipses.
CORNER_LEVELS = (0.68, 0.95)


def corner_figure(result, path, *, overwrite: bool = False) -> None:
    """Write the corner plot of a fit's posterior draws (:func:`corner_result_figure`) to
    ``path`` (PNG or any format matplotlib writes).

    Raises:
        JaxmiError: matplotlib is not installed, or the fit has no posterior.
        StoreError: ``path`` cannot or may not be written (checked before drawing).
    """
    _matplotlib()
    outputs.check_output(path, outputs.PICTURE, overwrite=overwrite, option="--plot")
    fig = corner_result_figure(result)
    outputs.save_figure(fig, path, dpi=120, overwrite=overwrite, option="--plot")


def _corner_label(name: str) -> str:
    if name == "sigma_G":
        return r"$\sigma_G$ / $(e^2/h)$"
    if name in FIT_SYMBOLS:
        symbol, unit = FIT_SYMBOLS[name]
        return symbol + (f" / {unit.strip()}" if unit.strip() else "")
    if name.startswith("texture_c") and name[9:].isdigit():
        return f"$c_{{{name[9:]}}}$ / rad"
    return _plain(name)


def _mass_levels(h: np.ndarray, masses) -> list[float]:
    """Density thresholds of a 2D histogram ``h`` enclosing each of ``masses`` (highest-density
    cells first), increasing."""
    flat = np.sort(h.ravel())[::-1]
    cum = np.cumsum(flat) / max(flat.sum(), 1e-300)
    levels = [flat[min(int(np.searchsorted(cum, m)), len(flat) - 1)] for m in masses]
    return sorted(set(levels))


def _smooth(h: np.ndarray) -> np.ndarray:
    """A 2D histogram smoothed by the [1, 2, 1] / 4 kernel along each axis (contours of a few
    thousand draws without the cell-by-cell noise)."""
    for axis in (0, 1):
        p = np.pad(h, [(1, 1) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        a, b, c = (np.take(p, range(k, k + h.shape[axis]), axis=axis) for k in (0, 1, 2))
        h = 0.25 * a + 0.5 * b + 0.25 * c
    return h


def corner_result_figure(result):
    """The Figure of a posterior: for each sampled parameter (the free ones; ``sigma_G`` for an
    unweighted fit) its marginal histogram on the diagonal, with the median (solid) and the 68%
    interval (dashed); below it the pairs, the draws thinned to <= 2000 as dots with the 68% and
    95% highest-density contours of their histogram; the least-squares optimum (cross) and its
    linearised 68%/95% region (a Gaussian of the standard errors and correlation: dotted curve
    on the diagonal, dotted ellipses below), so that a non-Gaussian posterior stands out."""
    matplotlib, Figure = _matplotlib()
    from matplotlib.lines import Line2D

    post = result.posterior
    if post is None:
        raise JaxmiError("this fit has no posterior (jaxmi fit --posterior, fit(posterior=True))")
    names = list(post.names)
    d = len(names)
    x = post.samples.reshape(-1, d)
    rng = np.random.default_rng(0)
    thin = x[rng.choice(len(x), size=min(2000, len(x)), replace=False)]
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    c_post, c_lin = colors[0], colors[3]
    size = max(4.8, 2.3 * d)
    fig = Figure(figsize=(size, size), layout="constrained")
    axes = np.atleast_2d(fig.subplots(d, d, squeeze=False))
    best = np.array(
        [result.params[n] if n in result.params else math.sqrt(result.chi2_reduced) for n in names]
    )
    err = np.array([result.stderr.get(n, np.nan) for n in names])
    corr = np.eye(d)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if a in result.correlation and b in result.correlation.get(a, {}):
                corr[i, j] = result.correlation[a][b]
    lo = np.quantile(x, 0.001, axis=0)
    hi = np.quantile(x, 0.999, axis=0)
    span = np.where(hi > lo, hi - lo, np.abs(lo) * 1e-3 + 1e-12)
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                ax.hist(
                    x[:, i],
                    bins=40,
                    range=(lo[i], hi[i]),
                    density=True,
                    histtype="step",
                    color=c_post,
                )
                q = post.quantiles[names[i]]
                ax.axvline(q["median"], color=c_post, lw=1.2)
                for key in ("q16", "q84"):
                    ax.axvline(q[key], color=c_post, lw=1.0, ls="--")
                if np.isfinite(err[i]) and err[i] > 0:
                    g = np.linspace(lo[i], hi[i], 200)
                    pdf = np.exp(-0.5 * ((g - best[i]) / err[i]) ** 2) / (
                        err[i] * math.sqrt(2 * math.pi)
                    )
                    ax.plot(g, pdf, ":", color=c_lin, lw=1.2)
                ax.set_yticks([])
                ax.set_title(
                    f"{_corner_label(names[i]).split(' / ')[0]} = {q['median']:.4g}\n"
                    f"68%: [{q['q16']:.4g}, {q['q84']:.4g}]",
                    fontsize=8,
                )
            else:
                ax.plot(thin[:, j], thin[:, i], ".", ms=1.5, color=c_post, alpha=0.25)
                h, xe, ye = np.histogram2d(
                    x[:, j], x[:, i], bins=30, range=[[lo[j], hi[j]], [lo[i], hi[i]]]
                )
                h = _smooth(h)
                levels = _mass_levels(h, CORNER_LEVELS[::-1])
                if len(levels) >= 1 and h.max() > 0:
                    xc, yc = 0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1])
                    ax.contour(
                        xc,
                        yc,
                        h.T,
                        levels=levels + [h.max() * 1.0001],
                        colors=[c_post],
                        linewidths=1.0,
                    )
                if np.isfinite(err[[i, j]]).all() and (err[[i, j]] > 0).all():
                    cov = np.array(
                        [
                            [err[j] ** 2, corr[j, i] * err[j] * err[i]],
                            [corr[j, i] * err[j] * err[i], err[i] ** 2],
                        ]
                    )
                    w, v = np.linalg.eigh(cov)
                    t = np.linspace(0, 2 * math.pi, 200)
                    for mass in CORNER_LEVELS:
                        r = math.sqrt(-2.0 * math.log(1.0 - mass))  # chi^2, 2 dof
                        e = v @ (
                            np.sqrt(np.maximum(w, 0))[:, None] * np.stack([np.cos(t), np.sin(t)])
                        )
                        ax.plot(best[j] + r * e[0], best[i] + r * e[1], ":", color=c_lin, lw=1.0)
                    ax.plot(best[j], best[i], "x", color=c_lin, ms=6)
                ax.set_xlim(lo[j], hi[j])
                ax.set_ylim(lo[i], hi[i])
            ax.set_xlim(lo[j], hi[j])
            ax.tick_params(labelsize=7)
            if i == d - 1:
                ax.set_xlabel(_corner_label(names[j]), fontsize=8)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(_corner_label(names[i]), fontsize=8)
            elif j > 0:
                ax.set_yticklabels([])
    handles = [
        Line2D([], [], color=c_post, lw=1.2),
        Line2D([], [], color=c_lin, lw=1.2, ls=":", marker="x"),
    ]
    labels = [
        "posterior: median, 68% (dashed); contours 68%, 95%",
        "least squares: optimum, linearised 68%, 95%",
    ]
    fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncols=1)
    fig.suptitle(
        f"Posterior (NUTS, {post.chains} chains x {post.draws} draws)\nmax R-hat "
        f"{max(post.rhat.values()):.4f}, min ESS {min(post.ess.values()):.0f}, "
        f"{post.divergences} divergent",
        fontsize=9,
    )
    return fig


# --- profile likelihood -------------------------------------------------------------------------


def profile_figure(result, path, *, overwrite: bool = False) -> None:
    """Write the profiles of a fit (:func:`profile_result_figure`) to ``path``.

    Raises:
        JaxmiError: matplotlib is not installed, or the fit has no profile.
        StoreError: ``path`` cannot or may not be written (checked before drawing).
    """
    _matplotlib()
    outputs.check_output(path, outputs.PICTURE, overwrite=overwrite, option="--plot")
    fig = profile_result_figure(result)
    outputs.save_figure(fig, path, dpi=120, overwrite=overwrite, option="--plot")


def profile_result_figure(result):
    """The Figure of a fit's profiles: one panel per profiled parameter, the rise of the minimum
    chi^2 over the others (points: the refits) against the held value, the 68% and 95% levels
    (1 and 3.84, dashed) with the intervals they cut, and the linearised parabola
    ((p - p_hat) / stderr)^2 (dotted) for comparison."""
    from jaxmi.fitting.profile import DELTA_CHI2

    matplotlib, Figure = _matplotlib()
    profiles = result.profiles
    if not profiles:
        raise JaxmiError("this fit has no profile (jaxmi fit --profile NAME, fit(profile=...))")
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    n = len(profiles)
    fig = Figure(figsize=(4.2 * n, 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)[0])
    for ax, (name, prof) in zip(axes, profiles.items(), strict=True):
        ax.plot(
            prof.values,
            prof.delta_chi2,
            "o-",
            ms=3,
            lw=1.0,
            color=colors[0],
            label="profile (refits)",
        )
        best, err = result.params[name], result.stderr.get(name, math.nan)
        log = prof.values.min() > 0 and prof.values.max() / prof.values.min() > 20
        if math.isfinite(err) and err > 0:
            space = np.geomspace if log else np.linspace
            x = space(prof.values.min(), prof.values.max(), 300)
            ax.plot(
                x,
                ((x - best) / err) ** 2,
                ":",
                color=colors[3],
                lw=1.2,
                label="linearised (stderr)",
            )
        top = max(6.0, 1.05 * min(float(prof.delta_chi2.max()), 12.0))
        for key, level in DELTA_CHI2.items():
            ax.axhline(level, color="0.5", lw=0.8, ls="--")
            lo, hi = prof.intervals[key]
            text = f"{key}%: [{'open' if lo is None else f'{lo:.4g}'}, " + (
                f"{'open' if hi is None else f'{hi:.4g}'}]"
            )
            ax.text(
                0.02,
                level / top + 0.01,
                text,
                transform=ax.transAxes,
                fontsize=7,
                color="0.3",
                va="bottom",
            )
        ax.set_ylim(0.0, top)
        ax.set_xlabel(_corner_label(name), fontsize=9)
        ax.set_ylabel(r"$\Delta\chi^2$" + ("" if result.weighted else r" / $\hat\sigma^2$"))
        ax.legend(fontsize=7, loc="upper center")
        if log:
            ax.set_xscale("log")
    fig.suptitle(f"Profile likelihood: {fit_title(result)}", fontsize=9)
    return fig


# --- global fits --------------------------------------------------------------------------------


def global_fit_figure(result, path, *, points: int = 200, overwrite: bool = False) -> None:
    """Write the figure of a global fit (:func:`global_fit_result_figure`) to ``path``.

    Raises:
        JaxmiError: matplotlib is not installed.
        StoreError: ``path`` cannot or may not be written (checked before drawing).
    """
    _matplotlib()
    outputs.check_output(path, outputs.PICTURE, overwrite=overwrite, option="--plot")
    fig = global_fit_result_figure(result, points=points)
    outputs.save_figure(fig, path, dpi=110, overwrite=overwrite, option="--plot")


def global_fit_result_figure(result, *, points: int = 200):
    """One panel pair per data set (:func:`fit_result_figure` of its view: data, its model
    curve, residuals), up to three a row, each titled with its name, points and chi^2 and
    captioned with its parameters; the figure's title gives the stacked fit's chi^2_red and the
    shared parameters."""
    _, Figure = _matplotlib()
    n = len(result.per_dataset)
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(4.8 * ncols, 5.0 * nrows + 0.4), layout="constrained")
    subs = np.atleast_1d(fig.subfigures(nrows, ncols, squeeze=False)).ravel()
    for sub, view, name in zip(subs, result.per_dataset, result.datasets, strict=False):
        fit_result_figure(
            view,
            title=rf"{name}: {view.n_points} points, $\chi^2$ = {view.chi2:.3g}",
            points=points,
            fig=sub,
        )
    for sub in subs[n:]:
        sub.set_visible(False)
    shared = ", ".join(_fit_parameter(result.per_dataset[0], k) for k in result.shared)
    fit = (
        rf"$\chi^2_{{\mathrm{{red}}}} = {result.chi2_reduced:#.3g}$"
        if result.weighted
        else f"residual variance {result.chi2_reduced:.3g} $(e^2/h)^2$"
    )
    fig.suptitle(
        f"Global fit of {n} data sets, {result.n_points} points: {fit}, {result.dof} dof; "
        f"shared {shared}" + ("" if result.converged else ", NOT converged"),
        fontsize=10,
    )
    return fig
