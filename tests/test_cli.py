"""The command line as users run it: the installed ``jaxmi`` script in a subprocess (exit
status, stdout, stderr), the paper's Fig. 2 sweep against Eq. 14, and a table of malformed
specs and arguments that must each fail with one line and touch nothing."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import xarray as xr
from sweep_helpers import cli_env, jaxmi_command, run_cli  # noqa: F401 (fixture)

import jaxmi
from jaxmi.sweep.run import COMPILING, LineProgress, TqdmProgress

# "2400/4800 points, 310 k points/s, ETA 12 s"; "? points/s, ETA ?" before a rate is known;
# "done" instead of the ETA on the last line ("10/10 points, done" where no rate was measured).
PROGRESS_LINE = re.compile(
    r"^\d+/\d+ points, (\? |\d+(\.\d)? ([kMGTPE] )?)points/s, "
    r"(ETA \?|ETA \d+ s|done)$|^\d+/\d+ points, done$"
)


@pytest.mark.slow
def test_fig2_matches_eq14(tmp_path, cli_env):  # noqa: F811
    # Acceptance: `jaxmi run fig2` (the shipped spec by name, from an empty directory: no
    # checkout needed) writes fig2.h5 there, whose V = 0 conductance matches Eq. 14 (exact in
    # linear response for any diagonal J and T) to 1e-10 relative at every point; the engine's
    # quadrature error is ~1e-12 here (4e-12 measured), so 1e-10 leaves margin without hiding an
    # O(J^2 T^4) mistake (~1e-6 relative at T = 0.01).
    out = tmp_path / "fig2.h5"
    proc = run_cli(["run", "fig2"], cli_env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wrote fig2.h5: 240 points (J x T x V = 4 x 60 x 1)")
    assert [p.name for p in tmp_path.iterdir()] == ["fig2.h5"]
    # stderr is not a TTY here: "compiling ..." then plain progress lines only
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == COMPILING, proc.stderr
    assert lines[1:] and all(PROGRESS_LINE.match(line) for line in lines[1:]), proc.stderr
    assert lines[-1].startswith("240/240 points")

    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.conductance.dims == ("J", "T", "V")
        assert {"T", "V", "Jx", "Jy", "Jz"} <= set(ds.coords)
        J = np.stack([ds.Jx.values, ds.Jy.values, ds.Jz.values], axis=-1)
        T = ds["T"].values
        g = ds.conductance.sel(V=0.0).values
    eq14 = np.asarray(jaxmi.analytic.eq14_linear_conductance(J[:, None, :], T[None, :]))
    assert np.all(np.abs(g / eq14 - 1) <= 1e-10)

    # Running it again is a no-op that leaves the file untouched (bytes and mtime); `jaxmi info`
    # summarises the file.
    before = (out.read_bytes(), out.stat().st_mtime_ns)
    again = run_cli(["run", "fig2.toml", "-o", out, "--quiet"], cli_env)  # the same spec
    assert again.returncode == 0 and again.stdout == again.stderr == ""
    assert (out.read_bytes(), out.stat().st_mtime_ns) == before
    info = run_cli(["info", out], cli_env)
    assert info.returncode == 0, info.stderr
    assert info.stdout.startswith(f"{out}: jaxmi sweep, complete\n  dims: J 4, T 60, V 1")
    assert "J cases: isotropic, Jz>Jx, Jz=Jx, Jx only" in info.stdout
    assert "quadrature_order: 16" in info.stdout and "runs: 1" in info.stdout
    # The spec's place in the package, the same on every install (not a site-packages path).
    assert "  spec_path: jaxmi/sweeps/fig2.toml\n" in info.stdout


def test_help_does_not_import_jax():
    # `jaxmi --help` must be instant: neither JAX nor h5py is imported for it.
    code = (
        "import sys\n"
        "from jaxmi.cli import main\n"
        "for argv in (['--help'], ['run', '--help'], ['info', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0\n"
        "bad = [m for m in ('jax', 'h5py', 'jaxmi.sweep.run') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "jaxmi run SPEC.toml" not in proc.stderr and "OUT.h5" in proc.stdout


def test_python_m_jaxmi():
    proc = subprocess.run(
        [sys.executable, "-m", "jaxmi", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout == f"jaxmi {jaxmi.__version__}\n"


def test_progress_objects():
    # Progress: "compiling ..." first; then plain lines at most every `interval` s plus a final
    # one, whose rate counts from the first chunk (compilation excluded), with SI prefixes; a
    # tqdm bar on a TTY, "compiling" until the first chunk, then a bar whose clock starts there.
    stream = io.StringIO()
    p = LineProgress(stream, interval=0.0)  # a line at every advance; close adds none
    p.start(4800, 1200)
    time.sleep(0.05)  # "compiling"
    p.advance(1200)  # the first chunk: no rate yet
    p.advance(1200)
    p.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == COMPILING and len(lines) == 3
    assert lines[1] == "2400/4800 points, ? points/s, ETA ?"
    assert PROGRESS_LINE.match(lines[2]) and lines[2].startswith("3600/4800 points, ")
    assert " M points/s" in lines[2] or " G points/s" in lines[2]  # not diluted by the sleep
    stream = io.StringIO()
    p = LineProgress(stream, interval=3600.0)  # no line before the end; close prints the last
    p.start(4800, 1200)
    p.advance(1200)
    p.advance(1200)
    p.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("3600/4800 points, ")
    stream = io.StringIO()
    p = LineProgress(stream)
    p.start(4800, 4800)  # nothing to do (a complete file): no "compiling"
    p.close()
    assert stream.getvalue() == ""
    stream = io.StringIO()
    bar = TqdmProgress(stream)
    bar.start(4800, 1200)
    assert "compiling" in stream.getvalue()
    bar.advance(1200)
    bar.advance(1200)
    bar.close()
    final = stream.getvalue().split("\r")[-1]
    assert "3.60k/4.80k" in final and "compiling" not in final
    stream = io.StringIO()
    p = LineProgress(stream, interval=0.0)
    p.start(10, 0)
    p.advance(10)  # one chunk, the whole sweep: no rate, and no ETA to wait for
    p.close()
    assert stream.getvalue().splitlines()[-1] == "10/10 points, done"


# --- malformed inputs ---------------------------------------------------------------------------

GOOD = """
[J]
isotropic = {values = [0.25]}
[T]
values = [0.1, 0.2]
[V]
values = [0.0]
"""
TV = "values = [0.1, 0.2]"

#: A valid fit input: 4 points of G(T) for 2 free couplings (E0 fixed).
FIT_CSV = "T,G\n5,0.98\n10,0.97\n20,0.96\n30,0.95\n"
FIT_ARGS = ["--free", "Jx,Jz", "--fix", "E0_meV=10"]

# (id, spec text or None (no spec file written), CLI arguments, text the one line must contain)
# {spec} is the spec path, {out} the pre-existing output file, {tmp} the test directory. A
# (name, text) pair instead of the spec text writes another input: ("bad.csv", ...) is {csv}.
TABLE = [
    ("missing spec", None, ["run", "{spec}"], "{spec}: cannot read the spec file"),
    (
        "unknown spec name",
        None,
        ["run", "fig9"],
        "fig9: cannot read the spec file: No such file or directory, and no spec shipped with "
        "jaxmi has that name (fig2, fig3, gate, large, phase, textures)",
    ),
    ("not TOML", "[T\nvalues = 1", ["run", "{spec}"], "{spec}: is not valid TOML"),
    ("not UTF-8", b"\xff\xfe[T]", ["run", "{spec}"], "{spec}: is not UTF-8 text"),
    (
        "typo key",
        GOOD.replace(TV, "vales = [0.1]"),
        ["run", "{spec}"],
        '{spec}: unknown key "vales" in [T]; did you mean "values"?',
    ),
    (
        "wrong type",
        GOOD.replace(TV, 'start = 0.1\nstop = 1\nnum = "10"'),
        ["run", "{spec}"],
        '{spec}: [T].num must be a positive integer, got "10"',
    ),
    (
        "negative T",
        GOOD.replace("[0.1,", "[-0.1,"),
        ["run", "{spec}"],
        "{spec}: [T].values[0] must be >= 0",
    ),
    (
        "NaN T",
        GOOD.replace("[0.1,", "[nan,"),
        ["run", "{spec}"],
        "{spec}: [T].values[0] must be a finite number, got nan",
    ),
    (
        "empty axis",
        GOOD.replace("values = [0.0]", "values = []"),
        ["run", "{spec}"],
        "{spec}: [V].values must be a non-empty list",
    ),
    (
        "unknown quantity",
        'quantities = ["spin", "heat"]\n' + GOOD,
        ["run", "{spec}"],
        '{spec}: quantities[1] must be one of conductance, current, spin, error, got "heat"',
    ),
    (
        "num = 0",
        GOOD.replace(TV, "start = 0.1\nstop = 1\nnum = 0"),
        ["run", "{spec}"],
        "{spec}: [T].num must be a positive integer, got 0",
    ),
    (
        "float32",
        GOOD + "[numerics]\nprecision = 'float32'\n",
        ["run", "{spec}"],
        '{spec}: [numerics].precision must be "float64", got "float32"',
    ),
    (
        "u with T = 0",
        GOOD.replace("[0.1,", "[0.0,").replace("[V]", "[u]"),
        ["run", "{spec}"],
        "{spec}: [T].values[0] must be > 0 when the bias is given as [u]",
    ),
    (
        "no J",
        GOOD.replace("[J]\nisotropic = {values = [0.25]}\n", ""),
        ["run", "{spec}"],
        "{spec}: needs a [J] table",
    ),
    (
        "bad J vector",
        GOOD.replace("isotropic = {values = [0.25]}", "cases = [{J = [0.1]}]"),
        ["run", "{spec}"],
        "{spec}: [J].cases[0].J must be 3 numbers",
    ),
    (
        "output dir missing",
        GOOD,
        ["run", "{spec}", "-o", "{tmp}/nodir/x.h5"],
        "{tmp}/nodir/x.h5: the output directory {tmp}/nodir does not exist",
    ),
    (
        "output under a file",
        GOOD,
        ["run", "{spec}", "-o", "{out}/x.h5"],
        "{out}/x.h5: {out} is not a directory",
    ),
    (
        "output is a directory",
        GOOD,
        ["run", "{spec}", "-o", "{tmp}"],
        "{tmp}: is a directory, not an output file",
    ),
    (
        "existing other spec",
        GOOD.replace("0.25", "0.3"),
        ["run", "{spec}", "-o", "{jaxmi_out}"],
        "{jaxmi_out}: exists and holds a sweep of another spec",
    ),
    (
        "other chunk",
        GOOD,
        ["run", "{spec}", "-o", "{jaxmi_out}", "--chunk", "1"],
        "{jaxmi_out}: was started with chunks of (1, 2, 1) (J, T, V) points",
    ),
    (
        "non-jaxmi file",
        GOOD,
        ["run", "{spec}", "-o", "{out}"],
        "{out}: exists and is not a jaxmi sweep file; refusing to overwrite it",
    ),
    (
        "chunk 0",
        GOOD,
        ["run", "{spec}", "--chunk", "0"],
        "argument --chunk: must be a positive integer, got '0'",
    ),
    (
        "chunk not int",
        GOOD,
        ["run", "{spec}", "--chunk", "many"],
        "argument --chunk: must be a positive integer, got 'many'",
    ),
    (
        "cluster scheme",
        GOOD,
        ["run", "{spec}", "--cluster", "bogus://x"],
        "--cluster 'bogus://x': the scheme 'bogus://' is not supported, only tcp:// (allowed: "
        "local, local:N, a scheduler address tcp://HOST:PORT (or HOST:PORT), or a cluster file "
        "FILE.toml)",
    ),
    ("unknown option", GOOD, ["run", "{spec}", "--fast"], "unrecognized arguments: --fast"),
    ("unknown command", None, ["fly"], "argument COMMAND: invalid choice: 'fly'"),
    ("info missing file", None, ["info", "{tmp}/none.h5"], "{tmp}/none.h5: no such file"),
    ("info non-jaxmi", None, ["info", "{out}"], "{out}: is not an HDF5 file"),
    (
        "fit CSV not UTF-8",
        ("bad.csv", b"\xff\xfeT,G\n"),
        ["fit", "{csv}", "--free", "Jx,Jz", "--fix", "E0_meV=10"],
        "{csv}: is not UTF-8 text (byte 0); save the table as UTF-8 CSV",
    ),
    (
        "fit plot dir missing",
        ("bad.csv", FIT_CSV),
        ["fit", "{csv}", *FIT_ARGS, "--plot", "{tmp}/nodir/x.png"],
        "{tmp}/nodir/x.png: the output directory {tmp}/nodir does not exist",
    ),
    (
        "fit output dir missing",
        ("bad.csv", FIT_CSV),
        ["fit", "{csv}", *FIT_ARGS, "-o", "{tmp}/nodir/x.json"],
        "{tmp}/nodir/x.json: the output directory {tmp}/nodir does not exist",
    ),
    (
        "fit output under a file",
        ("bad.csv", FIT_CSV),
        ["fit", "{csv}", *FIT_ARGS, "-o", "{out}/x.json"],
        "{out}/x.json: {out} is not a directory",
    ),
    (
        "fit output is a directory",
        ("bad.csv", FIT_CSV),
        ["fit", "{csv}", *FIT_ARGS, "-o", "{tmp}", "--overwrite"],
        "{tmp}: is a directory, not an output file",
    ),
    (
        "bench json over a user file",
        None,
        ["bench", "--quick", "--json", "{out}"],
        "{out}: exists and is not a jaxmi bench result; refusing to overwrite it (use --overwrite "
        "to replace it, or --json elsewhere)",
    ),
    (
        "fit output not a fit result",
        ("bad.csv", FIT_CSV),
        ["fit", "{csv}", *FIT_ARGS, "-o", "{out}"],
        "{out}: exists and is not a jaxmi fit result; refusing to overwrite it (use --overwrite "
        "to replace it, or -o elsewhere)",
    ),
    (
        "fit outputs one file",
        ("bad.csv", FIT_CSV),
        ["fit", "{csv}", *FIT_ARGS, "-o", "{tmp}/f.png", "--plot", "{tmp}/f.png"],
        "{tmp}/f.png: the JSON result (-o) and the figure (--plot) are one file",
    ),
    (
        "plot unknown format",
        None,
        ["plot", "{jaxmi_out}", "-o", "{tmp}/user.dat"],
        "{tmp}/user.dat: matplotlib cannot write .dat pictures (allowed: ",
    ),
    (
        "plot over a non-picture",
        None,
        ["plot", "{jaxmi_out}", "-o", "{out}", "--overwrite"],
        "{out}: matplotlib cannot write .h5 pictures (allowed: ",
    ),
    (
        "plot without extension",
        None,
        ["plot", "{jaxmi_out}", "-o", "{tmp}/fig"],
        "{tmp}/fig: has no extension to tell the picture's format (allowed: ",
    ),
    (
        "plot dir missing",
        None,
        ["plot", "{jaxmi_out}", "-o", "{tmp}/nodir/x.png"],
        "{tmp}/nodir/x.png: the output directory {tmp}/nodir does not exist",
    ),
    ("figures into a file", None, ["figures", "-o", "{out}"], "{out}: the output directory is not"),
    (
        "figures under a missing parent",
        None,
        ["figures", "-o", "{tmp}/nodir/figs"],
        "{tmp}/nodir/figs: cannot create the output directory: its parent {tmp}/nodir does not "
        "exist (only the last component is created)",
    ),
]


@pytest.fixture(scope="module")
def jaxmi_file(tmp_path_factory, cli_env):  # noqa: F811
    """A finished 2-point sweep of GOOD (chunk shape (1, 2, 1))."""
    d = tmp_path_factory.mktemp("existing")
    spec = d / "good.toml"
    spec.write_text(GOOD)  # the same text as the table's specs: the same spec sha256
    proc = run_cli(["run", spec, "-o", d / "good.h5", "-q"], cli_env)
    assert proc.returncode == 0, proc.stderr
    return d / "good.h5"


#: Cases whose refusal comes after JAX (or matplotlib) is imported in the child, ~1-2 s each; of
#: those, "other chunk" (a refused resume of the existing sweep) stays in the quick run.
SLOW_CASES = {
    "output dir missing",
    "output under a file",
    "output is a directory",
    "existing other spec",
    "non-jaxmi file",
    "fit CSV not UTF-8",
    "fit plot dir missing",
    "fit output dir missing",
    "fit output under a file",
    "fit output is a directory",
    "fit output not a fit result",
    "fit outputs one file",
    "plot unknown format",
    "plot over a non-picture",
    "plot without extension",
    "plot dir missing",
    "figures into a file",
}


@pytest.mark.parametrize(
    "case, text, args, expected",
    [pytest.param(*t, marks=pytest.mark.slow) if t[0] in SLOW_CASES else t for t in TABLE],
    ids=[t[0] for t in TABLE],
)
def test_bad_input(case, text, args, expected, tmp_path, cli_env, jaxmi_file):  # noqa: F811
    # Each malformed spec or argument: non-zero exit, exactly one line on stderr that names the
    # file/key/argument, no traceback, nothing on stdout, pre-existing files byte-identical.
    name, text = text if isinstance(text, tuple) else ("bad.toml", text)
    spec, csv = tmp_path / "bad.toml", tmp_path / "bad.csv"
    if isinstance(text, bytes):
        (tmp_path / name).write_bytes(text)
    elif text is not None:
        (tmp_path / name).write_text(text)
    out = tmp_path / "precious.h5"
    out.write_bytes(b"precious bytes, not HDF5\n")
    fields = {"spec": spec, "csv": csv, "out": out, "tmp": tmp_path, "jaxmi_out": jaxmi_file}
    before = {p: p.read_bytes() for p in (out, jaxmi_file)}

    proc = run_cli([a.format(**fields) for a in args], cli_env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("jaxmi: error: ") and "Traceback" not in proc.stderr
    assert expected.format(**fields) in lines[0], lines[0]
    for p, content in before.items():
        assert p.read_bytes() == content
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(
        ["precious.h5"] + ([name] if text is not None else [])
    )
    with h5py.File(jaxmi_file, "r") as f:
        assert int(f.attrs["complete"]) == 1


def test_closed_stdout_ends_quietly(jaxmi_file, tmp_path, cli_env):  # noqa: F811
    # `jaxmi info F.h5 | head -1`: the reader has gone before jaxmi writes (here a pipe whose
    # read end is closed before the command starts, so every write fails): exit status 141
    # (128 + SIGPIPE), nothing on stderr. main() handles it for every command.
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [*jaxmi_command(), "info", str(jaxmi_file)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=cli_env,
            cwd=tmp_path,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (141, "")


def test_unwritable_directory(tmp_path, cli_env):  # noqa: F811
    # A directory without write permission: one line, nothing created. (Root ignores file
    # permissions, so there the table's "output under a file" case stands in for this one.)
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: directory permissions are not enforced")
    spec = tmp_path / "good.toml"
    spec.write_text(GOOD)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        proc = run_cli(["run", spec, "-o", locked / "x.h5"], cli_env)
    finally:
        locked.chmod(0o700)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith(f"jaxmi: error: {locked / 'x.h5'}: cannot create the output")
    assert list(locked.iterdir()) == []


def test_core_does_not_import_sweep_or_h5py():
    # Imports point one way (STYLE.md section 1): the physics core never loads the sweep/IO code.
    code = (
        "import sys, jaxmi, jaxmi.observables, jaxmi.api\n"
        "bad = [m for m in ('h5py', 'jaxmi.sweep', 'jaxmi.cli', 'tqdm') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --- fit: mistakes found before the fit starts ---------------------------------------------------


@pytest.mark.slow
def test_fit_without_optimistix_is_one_line(tmp_path, cli_env):  # noqa: F811
    # optimistix missing (simulated: None in sys.modules makes its import fail): one FitError
    # naming the extra, exit 2, before anything is compiled or written.
    data = tmp_path / "data.csv"
    data.write_text(FIT_CSV)
    code = (
        "import sys; sys.modules['optimistix'] = None\n"
        "from jaxmi.cli import main\n"
        f"sys.exit(main({['fit', str(data), *FIT_ARGS, '-o', str(tmp_path / 'f.json')]!r}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=cli_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(
        "jaxmi: error: fitting needs optimistix, which cannot be imported"
    )
    assert proc.stderr.endswith("install it with: pip install optimistix\n")
    assert [p.name for p in tmp_path.iterdir()] == ["data.csv"]


# --- pictures: never over a file jaxmi did not write ---------------------------------------------


def test_plot_replaces_only_its_own_pictures(jaxmi_file, tmp_path, capsys):
    # An existing picture is replaced only if it carries jaxmi's stamp, or with --overwrite.
    pytest.importorskip("matplotlib")
    from jaxmi import outputs
    from jaxmi.cli import main

    picture = tmp_path / "p.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\nsomeone else's picture")
    assert main(["plot", str(jaxmi_file), "-o", str(picture)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        f"jaxmi: error: {picture}: exists and carries no jaxmi stamp; refusing to overwrite it "
        "(use --overwrite to replace it, or -o elsewhere)\n"
    )
    assert picture.read_bytes() == b"\x89PNG\r\n\x1a\nsomeone else's picture"

    assert main(["plot", str(jaxmi_file), "-o", str(picture), "--overwrite"]) == 0
    assert outputs.written_by_jaxmi(picture, outputs.PICTURE)
    assert main(["plot", str(jaxmi_file), "-o", str(picture)]) == 0  # jaxmi's own: replaced
    assert capsys.readouterr().out == f"wrote {picture}\nwrote {picture}\n"


@pytest.mark.slow
def test_figures_checks_its_pictures_before_the_sweeps(tmp_path, cli_env):  # noqa: F811
    # `jaxmi figures` refuses a fig3.png it did not write before running any sweep.
    pytest.importorskip("matplotlib")
    figs, data = tmp_path / "figs", tmp_path / "data"
    figs.mkdir()
    data.mkdir()
    (figs / "fig3.png").write_bytes(b"precious")
    proc = run_cli(["figures", "-o", figs, "--data-dir", data, "-q"], cli_env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        f"jaxmi: error: {figs / 'fig3.png'}: exists and carries no jaxmi stamp; refusing to "
        "overwrite it (use --overwrite to replace it, or -o elsewhere)\n"
    )
    assert (figs / "fig3.png").read_bytes() == b"precious"
    assert [p.name for p in figs.iterdir()] == ["fig3.png"] and not list(data.iterdir())
