"""Pictures: the data of the paper's figures against the closed forms, and `jaxmi plot`/`figures`
as users run them (subprocess, exit status, stderr).

The sweeps of the shipped specs fig2, fig3 and phase run once per session (in process,
through the sweep driver); the figures' data (what is drawn, from jaxmi.plot.fig2_data and
fig3_data) are compared with Eq. 14 (exact) and Eqs. 18, 19 (asymptotic, O(T^4) at fixed u).
The pictures themselves are checked only for being non-trivial PNGs: they were looked at.
"""

import dataclasses
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sweep_helpers import jaxmi_command

from jaxmi import analytic

plot = pytest.importorskip("jaxmi.plot")
pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def sweep_files(tmp_path_factory):
    """fig2.h5, fig3.h5 and phase.h5 of the shipped specs, in one directory."""
    from jaxmi.sweep import spec as spec_mod
    from jaxmi.sweep.run import run_sweep

    d = tmp_path_factory.mktemp("figdata")
    files = {}
    for name in ("fig2", "fig3", "phase"):
        files[name] = d / f"{name}.h5"
        run_sweep(spec_mod.load(spec_mod.shipped(name)), output=str(files[name]))
    return files


@pytest.mark.slow
def test_fig2_data_is_eq14(sweep_files):
    # Fig. 2 draws the engine's dG_L/G0 at V = 0 for the four cases; Eq. 14 is exact in linear
    # response for any diagonal J and T: rtol 1e-10 (measured 4e-12, the isotropic T^4
    # cancellation at T = 0.01). The dashed overlay is Eq. 14 itself.
    sw = plot.read_sweep(sweep_files["fig2"])
    d = plot.fig2_data(sw)
    assert d["names"] == ["isotropic", "Jz>Jx", "Jz=Jx", "Jx only"]
    assert d["T"].min() == pytest.approx(0.01) and d["T"].max() == pytest.approx(0.3)
    want = np.asarray(analytic.eq14_linear_conductance(d["J"][:, None, :], d["T"][None, :]))
    np.testing.assert_allclose(d["G"], want, rtol=1e-10, atol=0)
    fine = np.asarray(analytic.eq14_linear_conductance(d["J"][:, None, :], d["T_fine"][None, :]))
    np.testing.assert_array_equal(d["eq14"], fine)
    # The paper's shapes: green flat at -Jx^2/2, red rising above it, blue below, black -> 0.
    iso, blue, green, red = d["G"]
    np.testing.assert_allclose(green, -(0.25**2) / 2, rtol=1e-13)
    assert np.all(red[1:] > -(0.25**2) / 2) and np.all(np.diff(red) > 0)
    assert np.all(blue[1:] < -(0.25**2) / 2) and np.all(np.diff(blue) < 0)
    assert abs(iso[0]) < 1e-6 and np.all(np.diff(iso) < 0) and -0.03 < iso[-1] < -0.015


@pytest.mark.slow
def test_fig3_data_within_the_t4_bounds(sweep_files):
    # Fig. 3 draws dG(T, V)/dG_L(T) (dG_L from Eq. 14, exact) and <Sx>/Sx^(0) with the corrected
    # Sx^(0) = -(u/3)(pi T)^2 against u = eV/2T, T in {0.005, 0.01, 0.02}. Eqs. 18 and 19 are
    # asymptotic with relative errors O(T^4) at fixed u; measured |err| <= 3.02 T^4 (1 + u)^4
    # (Eq. 18) and <= 238 T^4 (1 + u)^2 (Eq. 19) at all three T and 61 u in [0.1, 20], i.e. the
    # same constant at every T (a T^4 law). Asserted with margin: 5 and 300.
    sw = plot.read_sweep(sweep_files["fig3"])
    d = plot.fig3_data(sw)
    T, u = d["T"][:, None], d["u"][None, :]
    e18 = d["ratio"] / np.asarray(analytic.eq18_crossover(d["u"])) - 1
    e19 = d["sx_ratio"] / np.asarray(analytic.eq19_polarization_ratio(d["u"])) - 1
    assert np.all(np.abs(e18) <= 5 * T**4 * (1 + u) ** 4)
    assert np.all(np.abs(e19) <= 300 * T**4 * (1 + u) ** 2)
    # And not trivially: the error really is T^4, ~16x per doubling of T (median over u).
    assert np.median(e19[1] / e19[0]) == pytest.approx(16, rel=0.01)
    # The limiting laws drawn beside Eq. 18.
    np.testing.assert_array_equal(d["small_u"], 1.0)
    np.testing.assert_allclose(d["large_u"], 5 / 8 * (d["u_fine"] / np.pi) ** 4)
    # Eq. 18 at large u is (5/8)(u/pi)^4 (1 + 4/u + O(1/u^2)): at u = 20, 1.2 +- 40/u^2.
    assert d["eq18"][-1] / d["large_u"][-1] == pytest.approx(1 + 4 / 20, abs=40 / 20**2)


def _is_png(path, min_size=10_000):
    assert path.is_file(), path
    data = path.read_bytes()
    assert data[:8] == PNG
    assert min_size < len(data) < 300_000, len(data)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, extra",
    [("fig2", []), ("fig3", []), ("phase", []), ("phase", ["--x", "T"])],
    ids=["lines", "u-ratio", "map", "lines-of-map-file"],
)
def test_plot_cli_writes_a_png(sweep_files, tmp_path, name, extra):
    # Default views: lines against T per coupling case (fig2), the crossover ratio against u on
    # log axes (fig3), a dG/dT map over (Jz/Jx, T) with a diverging scale (phase).
    out = tmp_path / f"{name}.png"
    proc = subprocess.run(
        [*jaxmi_command(), "plot", str(sweep_files[name]), "-o", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote {out}\n"
    _is_png(out)


def test_default_views():
    # Which picture a file gets, by its axes (no drawing).
    def sweep(J, T, third_name, third, kind="product", names=None):
        J = np.asarray(J, float)
        return plot.Sweep(
            "f.h5",
            J,
            names,
            kind,
            (len(J),),
            np.asarray(T, float),
            third_name,
            np.asarray(third, float),
            np.zeros((len(T), len(third))),
            {"conductance": None},
            True,
            "",
        )

    cases = sweep([[0.25, 0, 0.25], [0.25, 0, 0]], [0.1, 0.2], "V", [0.0], "cases", ["a", "b"])
    assert plot.default_view(cases) == ("T", None, "conductance")
    assert plot.default_view(sweep([[0.25] * 3], [0.1], "u", [1.0, 2.0])) == ("u", None, "ratio")
    phase = sweep([[0.25, 0, z] for z in (0.1, 0.2, 0.3)], [0.1, 0.2, 0.3], "V", [0.0])
    assert plot.default_view(phase) == ("J", "T", "dGdT")
    bias = sweep([[0.3, -0.5, 0.7]], [0.1], "V", [0.0, 0.5])
    assert plot.default_view(bias) == ("V", None, "conductance")


@pytest.mark.slow
def test_figures_cli(sweep_files, tmp_path):
    # `jaxmi figures` from a directory that is not a checkout, into a directory that does not
    # exist yet (created, like mkdir), with --data-dir holding complete files of the same specs:
    # reuses them (the sweep driver resumes with nothing left to compute), draws both PNGs.
    out = tmp_path / "figs"
    data = sweep_files["fig2"].parent
    proc = subprocess.run(
        [*jaxmi_command(), "figures", "-o", "figs", "--data-dir", str(data), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "wrote figs/fig2.png\nwrote figs/fig3.png\n"
    assert sorted(p.name for p in out.iterdir()) == ["fig2.png", "fig3.png"]
    for name in ("fig2.png", "fig3.png"):
        _is_png(out / name, min_size=30_000)


# Run the CLI in a fresh interpreter in which `import matplotlib` fails.
BLOCKED = textwrap.dedent(
    """
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name == "matplotlib" or name.startswith("matplotlib."):
                raise ImportError("No module named 'matplotlib'")
    sys.meta_path.insert(0, Block())
    from jaxmi.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("command", [["plot", "FILE"], ["figures", "-o", "."]])
def test_missing_matplotlib_is_one_line(sweep_files, tmp_path, command):
    args = [str(sweep_files["fig2"]) if a == "FILE" else a for a in command]
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "jaxmi: error: plotting needs matplotlib, which is not installed: pip install matplotlib\n"
    )
    assert not list(tmp_path.iterdir())  # nothing computed or written


def test_plot_rejects_a_file_that_is_not_a_sweep(tmp_path):
    bad = tmp_path / "notes.h5"
    bad.write_text("not hdf5\n")
    proc = subprocess.run(
        [*jaxmi_command(), "plot", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"jaxmi: error: {bad}: ")
    assert "HDF5" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "notes.png").exists()


def test_help_imports_neither_jax_nor_matplotlib():
    code = (
        "import sys, contextlib, io\n"
        "from jaxmi.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "bad = [m for m in ('jax', 'matplotlib') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- what the pictures say (matplotlib objects of the figures, not pixels) ----------------------


def _texts(fig):
    """Titles, axis labels and the caption of a figure's main axes (the first)."""
    ax = fig.axes[0]
    return ax.get_title(), ax.get_ylabel(), fig.get_supxlabel()


@pytest.mark.parametrize("q", ["Sx", "Sy", "Sz", "current", "dGdT", "ratio", "conductance"])
def test_title_and_ylabel_follow_the_quantity(sweep_files, q):
    # fig2's description says "dG/G0 vs T": it is the caption under the picture, and the title
    # and the y label say what is drawn.
    sw = plot.read_sweep(sweep_files["fig2"])
    title, ylabel, caption = _texts(plot.sweep_figure(sw, quantity_name=q))
    assert title == f"{plot.QUANTITY_NAMES[q]} vs $T$"
    assert ylabel == plot.LABELS[q]
    assert caption == "fig2.h5: " + sw.description
    if q != "conductance":
        assert "dG/G0" not in title and "G0" not in ylabel


def _sweep(nT, nV, J=((0.25, 0.25, 0.25),), names=None, kind="isotropic"):
    """A synthetic paper-model sweep file in memory (no engine): dG = -T^2 (1 + V) (1 + j)."""
    J = np.asarray(J, float)
    T = np.geomspace(0.02, 0.3, nT)
    V = np.linspace(0.0, 0.5, nV)
    G = -(T[None, :, None] ** 2) * (1 + V[None, None, :]) * (1 + np.arange(len(J)))[:, None, None]
    return plot.Sweep(
        "/x/tv.h5",
        J,
        names,
        kind,
        (len(J),),
        T,
        "V",
        V,
        np.broadcast_to(V, (nT, nV)),
        {"conductance": G},
        True,
        "a synthetic sweep",
    )


def _colour_bars(fig):
    """The colour bars of a figure (their axes carry a ``_colorbar``)."""
    return [a._colorbar for a in fig.axes if hasattr(a, "_colorbar")]


def test_many_lines_get_a_colour_bar_few_a_legend():
    # 1 J, 8 T, 20 V against V: 8 lines > LEGEND_MAX_LINES, keyed by a colour bar of T labelled
    # with T's long_name, ticks at the 8 temperatures; no legend.
    fig = plot.lines_figure(_sweep(8, 20), x="V", q="conductance")
    ax = fig.axes[0]
    (cbar,) = _colour_bars(fig)
    assert cbar.ax.get_ylabel() == plot.AXIS_LABELS["T"] == r"$T\ /\ v_F k_0$"
    assert ax.get_legend() is None and len(ax.lines) == 8
    np.testing.assert_allclose(cbar.get_ticks(), np.geomspace(0.02, 0.3, 8))
    # The lines' colours run along the bar: the first and the last T at its two ends.
    colours = [line.get_color() for line in ax.lines]
    np.testing.assert_allclose(colours[0], cbar.cmap(0.0))
    np.testing.assert_allclose(colours[-1], cbar.cmap(1.0))
    # Against T: 12 of the 20 biases, and the label says so.
    fig = plot.lines_figure(_sweep(8, 20), x="T", q="conductance")
    (cbar,) = _colour_bars(fig)
    assert cbar.ax.get_ylabel() == plot.AXIS_LABELS["V"] + "  (12 of 20 lines)"
    # 3 T: a legend of 3 entries, no colour bar.
    fig = plot.lines_figure(_sweep(3, 20), x="V", q="conductance")
    assert not _colour_bars(fig)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == ["$T$ = 0.02", "$T$ = 0.07746", "$T$ = 0.3"]


def test_map_colour_scales():
    # A map whose every point has the same value (the spin is 0 at Jy = 0) is one flat colour:
    # a note in the axes says what the value is; a varying map has none.
    sw = _sweep(5, 6)
    zero = dataclasses.replace(sw, data={"conductance": np.zeros_like(sw.data["conductance"])})
    fig = plot.map_figure(zero, x="V", y="T", q="conductance")
    assert [t.get_text() for t in fig.axes[0].texts] == [
        plot.LABELS["conductance"] + " = 0 at every point"
    ]
    fig = plot.map_figure(sw, x="V", y="T", q="conductance")
    assert not fig.axes[0].texts
    # dG < 0 everywhere: a sequential scale over the data's range, not one centred at 0
    (cbar,) = _colour_bars(fig)
    g = sw.data["conductance"][0]
    assert cbar.cmap.name == "viridis" and fig.axes[0].get_yscale() == "log"  # T log-spaced
    assert (cbar.vmin, cbar.vmax) == pytest.approx((g.min(), g.max()), rel=1e-12)
    both = dataclasses.replace(sw, data={"conductance": sw.data["conductance"] + 0.05})
    (cbar,) = _colour_bars(plot.map_figure(both, x="V", y="T", q="conductance"))
    assert cbar.cmap.name == "RdBu_r" and cbar.vmin == -cbar.vmax


def test_two_line_parameters_colour_and_line_style():
    # 4 named couplings x 10 T against V: colour by T (colour bar), line style by coupling (a
    # legend of the 4 styles).
    cases = [(0.25, 0.25, 0.25), (0.25, 0, 0.35), (0.25, 0, 0.25), (0.25, 0, 0)]
    sw = _sweep(10, 20, J=cases, names=["a", "b", "c", "d"], kind="cases")
    fig = plot.lines_figure(sw, x="V", q="conductance")
    (cbar,) = _colour_bars(fig)
    assert cbar.ax.get_ylabel() == plot.AXIS_LABELS["T"]
    (legend,) = fig.legends
    assert [t.get_text().split(":")[0] for t in legend.get_texts()] == ["a", "b", "c", "d"]
    assert [h.get_linestyle() for h in legend.legend_handles] == ["-", "--", ":", "-."]
    assert len(fig.axes[0].lines) == 40


def test_fig3_plot_tells_its_three_temperatures_apart(sweep_files):
    # `jaxmi plot fig3.h5`: the ratio against u at T = 0.005, 0.01, 0.02. The labels were
    # always distinct; the lines lie on top of each other (the ratio is a function of u alone up
    # to O(T^4): 4e-4 relative at T = 0.02), so only the last drawn one showed. Now the legend
    # says they coincide and each is drawn narrower than the one before, with its own markers.
    fig = plot.sweep_figure(plot.read_sweep(sweep_files["fig3"]))
    ax = fig.axes[0]
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["$T$ = 0.005", "$T$ = 0.01", "$T$ = 0.02"]
    assert legend.get_title().get_text() == "the 3 lines coincide (to 0.0004 relative)"
    widths = [line.get_linewidth() for line in ax.lines]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    assert len({line.get_marker() for line in ax.lines}) == 3
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")


def test_lines_that_differ_are_not_said_to_coincide():
    fig = plot.lines_figure(_sweep(3, 20), x="V", q="conductance")
    assert fig.axes[0].get_legend().get_title().get_text() == ""
    assert {line.get_linewidth() for line in fig.axes[0].lines} == {1.5}


def _ratio_sweep(eps):
    """A synthetic sweep whose crossover ratio is 1 + eps V (4 T, 3 V)."""
    sw = _sweep(4, 3)
    G_L = plot.linear_conductance(sw.J, sw.T)[:, :, None]
    data = {"conductance": G_L * (1 + eps * sw.third[None, None, :])}
    return plot.Sweep(**{**vars(sw), "data": data})


@pytest.mark.parametrize("eps", [4e-6, 1e-13])
def test_ratio_axis_reads_without_an_offset(eps):
    # The ratio against T at 3 biases is 1 + eps V: matplotlib wrote "1e-6 + 1" above the axis
    # and ticks 0.5 ... 2.0 (eps 4e-6), or zoomed into rounding (eps 1e-13: "1e-12 + 1"). Now
    # the ticks are the numbers themselves (1.0000005, ...), and flat lines are shown at
    # 1 +- 1e-3.
    fig = plot.lines_figure(_ratio_sweep(eps), x="T", q="ratio")
    fig.draw_without_rendering()
    ax = fig.axes[0]
    assert ax.yaxis.get_offset_text().get_text() == ""
    ticks = [t.get_text() for t in ax.get_yticklabels()]  # "$\\mathdefault{1.000001}$"
    values = [float(re.sub(r"[^0-9.]", "", t)) for t in ticks if t]
    assert values and all(0.998 < v < 1.002 for v in values), ticks
    if eps < 1e-9:
        assert ax.get_ylim() == pytest.approx((1 - 1e-3, 1 + 1e-3), abs=1e-9)
        assert "coincide" in ax.get_legend().get_title().get_text()


# --- the fit figure: legend swatches, a one-line title, captions inside the figure -------------


def _fit_result(T, V, G_err=0.001, free=("Jx", "Jz"), chi2_reduced=0.39, **params):
    """A jaxmi.fitting.FitResult of synthetic data G = 1 - 1e-4 T (1 + V) whose model is that
    line (no engine): for drawing only."""
    from jaxmi import fitting

    T, V = np.asarray(T, float), np.asarray(V, float)

    class Result(fitting.FitResult):
        def model(self, T_K, V_mV=0.0):
            return 1 - 1e-4 * np.asarray(T_K) * (1 + np.asarray(V_mV))

    G = 1 - 1e-4 * T * (1 + V)
    err = None if G_err is None else np.full(len(T), G_err)
    values = {"Jx": 0.3, "Jy": 0.0, "Jz": 0.6, "E0_meV": 10.0, "n": 1.0, "offset": 0.0, **params}
    return Result(
        params=values,
        free=tuple(free),
        stderr={k: 0.01 for k in free},
        correlation={},
        chi2=chi2_reduced * (len(T) - len(free)),
        dof=len(T) - len(free),
        chi2_reduced=chi2_reduced,
        converged=True,
        n_points=len(T),
        n_steps=5,
        starts=1,
        starts_converged=1,
        weighted=G_err is not None,
        notes=(),
        data=fitting.Data(T, V, G + 2e-4 * np.sin(np.arange(len(T))), err),
        G_fit=G,
    )


def _inside(fig, *texts):
    """Draw ``fig`` (Agg) and assert each Text artist lies inside the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for text in texts:
        bb = text.get_window_extent(renderer)
        assert fig.bbox.x0 <= bb.x0 and bb.x1 <= fig.bbox.x1, (text.get_text(), bb, fig.bbox)
        assert fig.bbox.y0 <= bb.y0 and bb.y1 <= fig.bbox.y1, (text.get_text(), bb, fig.bbox)


def _curves(ax):
    """The model curves of a fit figure's panel (solid lines; the data are markers)."""
    return [line for line in ax.lines if line.get_linestyle() == "-"]


def test_fit_legend_swatches_have_the_curves_colours():
    from matplotlib.colors import to_rgba

    # Linear response (one curve): "data" and "fit" in the curve's colour (the "fit" swatch was
    # a black line beside a blue curve).
    fig = plot.fit_result_figure(_fit_result(np.linspace(2, 30, 8), np.zeros(8)))
    ax = fig.axes[0]
    (curve,) = _curves(ax)
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["data", "fit"]
    bars, fit = legend.legend_handles
    assert to_rgba(fit.get_color()) == to_rgba(curve.get_color()) != to_rgba("k")
    np.testing.assert_array_equal(bars.get_color(), [to_rgba(curve.get_color())])  # error bars
    # Three temperatures (three curves against V): one entry per temperature, its swatch a
    # marker on a line in that curve's colour.
    T, V = np.repeat([4.0, 10.0, 20.0], 5), np.tile(np.linspace(0, 20, 5), 3)
    fig = plot.fit_result_figure(_fit_result(T, V))
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [f"$T$ = {t:g} K" for t in (4, 10, 20)]
    assert legend.get_title().get_text() == "data (points), fit (lines)"
    curves = [to_rgba(line.get_color()) for line in _curves(ax)]
    assert len(set(curves)) == 3
    assert [to_rgba(h.get_color()) for h in legend.legend_handles] == curves
    assert {h.get_marker() for h in legend.legend_handles} == {"o"}
    # Scattered (T, V): no curves, so no "fit" entry; the model at the data is black crosses.
    fig = plot.fit_result_figure(_fit_result(np.arange(1.0, 13.0), np.arange(12.0)))
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["data", "model at the data"]
    assert to_rgba(legend.legend_handles[1].get_color()) == to_rgba("k")


@pytest.mark.slow
def test_fit_title_is_one_line_and_captions_wrap_inside_the_figure():
    # The title was textwrap.fill(..., 80): "chi2_red =" / "0.39" on two lines. Now one line
    # with chi^2_red in mathtext, centred on the figure; the parameters are the caption.
    result = _fit_result(np.linspace(2, 30, 8), np.zeros(8))
    fig = plot.fit_result_figure(result)
    title = fig._suptitle
    assert title.get_text() == r"Fit of 8 points: $\chi^2_{\mathrm{red}} = 0.390$, 6 dof"
    caption = fig.get_supxlabel()
    assert caption == r"$J_x$ = 0.3 ± 0.01, $J_z$ = 0.6 ± 0.01; fixed $E_0$ = 10 meV"
    _inside(fig, title, fig._supxlabel)
    # Seven free parameters without G_err: the caption wraps between parameters, each line in
    # the figure; the title says what the number is.
    free = ("Jx", "Jz", "E0_meV", "n", "offset", "mu0_meV", "texture_exponent")
    many = _fit_result(
        np.linspace(2, 30, 12), np.zeros(12), None, free, 1.3e-6, mu0_meV=1.5, texture_exponent=2
    )
    fig = plot.fit_result_figure(many)
    assert "\n" not in fig._suptitle.get_text()
    assert "residual variance 1.3e-06 $(e^2/h)^2$ (unweighted)" in fig._suptitle.get_text()
    lines = fig.get_supxlabel().split("\n")
    assert len(lines) == 2 and all(line.endswith(",") for line in lines[:-1])
    pieces = " ".join(lines).split(", ")  # seven parameters, none cut between lines
    assert len(pieces) == 7 and all(" = " in p and " ± 0.01" in p for p in pieces)
    assert r"$\mu_0$ = 1.5 ± 0.01 meV" in pieces
    _inside(fig, fig._suptitle, fig._supxlabel)
    # A title given that is wider than the figure wraps at its words, mathtext kept whole.
    words = r"a long title with $x^2_{\mathrm{a b}}$ in it," * 6
    fig = plot.fit_result_figure(result, title=words)
    lines = fig._suptitle.get_text().split("\n")
    assert len(lines) == 2 and "".join(lines).replace(" ", "") == words.replace(" ", "")
    assert all(line.count("$") % 2 == 0 for line in lines)
    _inside(fig, fig._suptitle)


def test_a_long_description_wraps_inside_the_figure():
    # The caption under a sweep picture is the file name and the spec's description, which may
    # be long: wrapped at words to the figure's width (it ran off both edges).
    sw = plot.Sweep(**{**vars(_sweep(3, 20)), "description": "a sweep that says a lot " * 12})
    fig = plot.lines_figure(sw, x="V", q="conductance")
    assert fig.get_supxlabel().count("\n") >= 2
    _inside(fig, fig._supxlabel, fig.axes[0].title)


@pytest.mark.slow  # importing xarray's plotting: ~2 s
def test_xarray_labels_of_every_variable_fit_the_figure():
    # jaxmi.open(path)[name].plot(): xarray labels an axis "long_name [units]" and wraps it at
    # 30 characters. Every variable's and coordinate's long_name is short (what the number is
    # measured in; the explanation is its `comment`), so each label is one line, no longer than
    # its axis in a default-size figure (measured as drawn); the longest is drawn inside it.
    xr = pytest.importorskip("xarray")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from jaxmi.sweep import store

    def labelled(name):
        long_name, comment = store.VARIABLES[name]
        assert len(long_name) < len(comment)
        attrs = {"units": "1", "long_name": long_name, "comment": comment}
        x = xr.DataArray([0.1, 0.2, 0.3], dims="x", attrs=attrs)
        return xr.DataArray([1.0, 2.0, 4.0], dims="x", coords={"x": x}, attrs=attrs)

    fig = Figure()
    ax = fig.add_subplot()
    renderer = FigureCanvasAgg(fig).get_renderer()
    for name, (long_name, _) in store.VARIABLES.items():
        ax.cla()
        labelled(name).plot(ax=ax)
        assert ax.get_xlabel() == ax.get_ylabel() == f"{long_name} [1]"
        assert ax.xaxis.label.get_window_extent(renderer).width < 0.6 * ax.bbox.width
        assert ax.yaxis.label.get_window_extent(renderer).height < 0.6 * ax.bbox.height
    longest = max(store.VARIABLES, key=lambda k: len(store.VARIABLES[k][0]))
    fig = Figure()
    ax = fig.add_subplot()
    labelled(longest).plot(ax=ax)
    _inside(fig, ax.xaxis.label, ax.yaxis.label)


@pytest.mark.slow
def test_fig3_shows_each_temperature(sweep_files):
    # Fig. 3's three temperatures lie on one curve (Eq. 18): their markers were all at the same
    # u (every second point), so the T = 0.005 circles hid inside the T = 0.01 squares. Now
    # each temperature has every third u, starting at its own: disjoint, together the grid.
    # The inset's two-line title stays inside the main panel (it overlapped its top frame).
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    sw = plot.read_sweep(sweep_files["fig3"])
    fig = plot.fig3_figure(sw)
    ax = fig.axes[0]
    us = [set(line.get_xdata()) for line in ax.lines[:3]]
    assert all(not (a & b) for a, b in [(us[0], us[1]), (us[0], us[2]), (us[1], us[2])])
    assert set.union(*us) == set(sw.third)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    (inset,) = ax.child_axes
    title = inset.title.get_window_extent(canvas.get_renderer())
    assert title.y1 < ax.bbox.y1
