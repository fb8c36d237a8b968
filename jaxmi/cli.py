"""Command line: ``jaxmi run SPEC.toml [-o OUT.h5] [--overwrite] [--chunk N] [--quiet]`` and
``jaxmi info OUT.h5``; also validate, plot, figures, fit and bench. Also ``python -m jaxmi``.

Argument parsing and messages only; the work is :func:`jaxmi.sweep.run.run_sweep` and
:func:`jaxmi.sweep.store.summary`. JAX is imported inside the subcommands, so ``jaxmi --help``
stays fast. A :class:`jaxmi.errors.JaxmiError` is printed as one line ``jaxmi: error: ...`` on
stderr with exit status 2; any other exception is a bug and keeps its traceback. Ctrl-C (or
SIGTERM) stops a run after the chunk being written (exit status 130; run the same command again
to resume).
"""

from __future__ import annotations

import argparse
import contextlib
import fractions
import os
import shlex
import signal
import sys
import time
from collections.abc import Sequence

from jaxmi.domain import TEXTURES
from jaxmi.errors import FitError, JaxmiError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
#: stdout closed by its reader (``jaxmi info F.h5 | head -1``): 128 + SIGPIPE, the status a
#: shell reports for a program the signal ends, as 130 is 128 + SIGINT.
EXIT_BROKEN_PIPE = 141


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit status 2)."""

    def error(self, message: str):
        self.exit(EXIT_ERROR, f"jaxmi: error: {message} (see: {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    from jaxmi import __version__
    from jaxmi.sweep.spec import shipped_names  # pure Python, no JAX

    p = _Parser(
        prog="jaxmi",
        description="Sweeps of the magnetic-impurity conductance on the helical edge "
        "(units: T, V = eV in vF*k0; J in vF; conductance in e^2/h).",
    )
    p.add_argument("--version", action="version", version=f"jaxmi {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser(
        "run",
        help="run (or resume) a sweep described by a TOML spec",
        description="Run a sweep and write an HDF5 file. Re-running the same command after an "
        "interruption finishes only the missing chunks (docs/sweeps.md).",
    )
    r.add_argument(
        "spec",
        metavar="SPEC.toml",
        help="sweep specification (docs/sweeps.md): a TOML file, or the name of a spec shipped "
        f"with jaxmi ({', '.join(shipped_names())}), e.g. `jaxmi run fig2`; a file of that name "
        "in the current directory wins",
    )
    r.add_argument(
        "-o",
        "--output",
        metavar="OUT.h5",
        help="output file (default: the spec's `output`, else SPEC's name with .h5, in the "
        "current directory)",
    )
    r.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output file that holds another sweep or is not a jaxmi file",
    )
    r.add_argument(
        "--chunk",
        type=_positive_int,
        metavar="N",
        help="points per compute chunk (overrides [numerics].chunk; resume with the same N)",
    )
    r.add_argument(
        "--force",
        action="store_true",
        help="run even when the pre-flight estimates that the grid does not fit this machine's "
        "memory or the output its disk's free space",
    )
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="print the pre-flight estimate (points, chunks, disk, memory) and stop",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary")
    r.add_argument(
        "--cluster",
        metavar="TARGET",
        help="compute the chunks on dask.distributed: local[:N] (N worker processes here), a "
        "scheduler address tcp://HOST:PORT, or a cluster file FILE.toml ([slurm]/[pbs]); this "
        "process still writes the file, so a run can be resumed with or without a cluster "
        "(docs/cluster.md; needs pip install 'jaxmi[cluster]')",
    )

    i = sub.add_parser("info", help="summarise a sweep file", description="Summarise a file.")
    i.add_argument("file", metavar="OUT.h5")
    c = sub.add_parser(
        "cluster",
        help="cluster files: print the batch job script a [slurm]/[pbs] file submits",
        description="Cluster files for `jaxmi run --cluster FILE.toml` (docs/cluster.md).",
    )
    csub = c.add_subparsers(dest="cluster_command", metavar="SUBCOMMAND", required=True)
    js = csub.add_parser(
        "job-script",
        help="print the job script dask-jobqueue would submit (no batch system needed)",
        description="Print the job script dask-jobqueue would submit for FILE.toml; the "
        "scheduler's address, known only at run time, is shown as tcp://SCHEDULER-ADDRESS:8786.",
    )
    js.add_argument("file", metavar="FILE.toml")
    _add_view_commands(sub)
    _add_fit_command(sub)
    _add_bench_command(sub)
    return p


def _enable_compilation_cache() -> None:
    """JAX's persistent compilation cache under $XDG_CACHE_HOME/jaxmi (or ~/.cache/jaxmi): a
    rerun (e.g. a resume) does not compile the chunk function again. CLI only, never library
    code."""
    import jax

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    jax.config.update("jax_compilation_cache_dir", os.path.join(base, "jaxmi", "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _run(args) -> int:
    from jaxmi.errors import WriteError
    from jaxmi.sweep import spec as spec_mod

    spec = spec_mod.load(args.spec)  # validate before importing JAX
    from jaxmi.sweep import budget

    # Refuse a sweep that cannot fit before JAX starts (run_sweep checks again, as cheaply).
    output = args.output if args.output is not None else spec.default_output()
    force = args.force or args.dry_run  # a dry run reports the estimate, fitting or not
    est = budget.preflight(spec, args.chunk, output, n_devices=os.cpu_count() or 1, force=force)
    if args.dry_run:
        print(f"{spec.path}: {est.describe()}, {budget.count(est.chunks)} chunks; output {output}")
        return 0
    target = None
    if args.cluster is not None:
        from jaxmi.sweep import cluster

        target = cluster.parse_target(args.cluster)  # validate before starting anything
        cluster.require()
    _enable_compilation_cache()
    from jaxmi.sweep import run as run_mod

    if args.quiet:
        progress = run_mod.NoProgress()
    elif sys.stderr.isatty():
        progress = run_mod.TqdmProgress(sys.stderr)
    else:
        progress = run_mod.LineProgress(sys.stderr)

    stop_requested = []

    def on_signal(signum, frame):
        # First Ctrl-C (or SIGTERM): finish the chunk being written, then stop; a second one
        # stops at once (chunks already marked done stay valid either way).
        stop_requested.append(True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    # A file-size limit (ulimit -f) then fails the write with EFBIG, which the store reports
    # and survives, instead of killing the process in the middle of a chunk.
    previous[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        with contextlib.ExitStack() as stack:
            backend = None
            if target is not None:  # closed on the way out: the cluster started here, if any
                _, backend = stack.enter_context(
                    cluster.connect(target, stop=lambda: bool(stop_requested))
                )
                backend.cache = True
            result = run_mod.run_sweep(
                spec,
                output=args.output,
                overwrite=args.overwrite,
                chunk=args.chunk,
                progress=progress,
                stop=lambda: bool(stop_requested),
                backend=backend,
                force=args.force,
            )
    except WriteError as err:
        raise WriteError(f"{err}: {shlex.join(['jaxmi', *args.argv])}") from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if result.interrupted:
        print(
            f"jaxmi: interrupted: {result.points_done}/{result.points} points are in "
            f"{result.path}; run the same command again to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if not args.quiet:
        what = "resumed and completed" if result.points_computed < result.points else "wrote"
        if result.points_computed == 0:
            what = "already complete:"
        names = " x ".join(result.dims)
        sizes = " x ".join(str(n) for n in result.dims.values())
        print(
            f"{what} {result.path}: {result.points} points ({names} = {sizes}), "
            f"{result.points_computed} computed in {result.wall_time:.1f} s"
        )
    return 0


def _cluster(args) -> int:
    from jaxmi.sweep import cluster

    script = cluster.job_script(args.file)
    print(script if script.endswith("\n") else script + "\n", end="")
    print(
        f"# jaxmi: the script for {args.file}; tcp://SCHEDULER-ADDRESS:8786 is replaced by the "
        "address of the scheduler `jaxmi run --cluster` starts",
        file=sys.stderr,
    )
    return 0


def _info(args) -> int:
    from jaxmi.sweep import store

    s = store.summary(args.file)
    a = s["attrs"]
    lines = [f"{s['path']}: jaxmi sweep, {'complete' if s['complete'] else 'INCOMPLETE'}"]
    lines.append(
        "  dims: "
        + ", ".join(f"{k} {v}" for k, v in s["dims"].items())
        + f" ({s['J_kind']} J axis)"
    )
    for name, (lo, hi) in s["coords"].items():
        lines.append(f"  {name}: {lo:.6g} .. {hi:.6g}")
    if s["J_names"]:
        lines.append("  J cases: " + ", ".join(s["J_names"]))
    lines.append("  quantities: " + ", ".join(s["quantities"]))
    lines.append(f"  chunks: {s['chunks_done']}/{s['chunks']} done, chunk shape {s['chunk_shape']}")
    for k, v in a.items():
        lines.append(f"  {k}: {v}")
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaxmi`` script; returns the exit status.

    A stdout closed by its reader (``jaxmi info F.h5 | head -1``) ends any command quietly with
    :data:`EXIT_BROKEN_PIPE`: nothing on stderr, and stdout then points at /dev/null so that
    Python's final flush does not fail again (the recipe of the Python docs, "Note on SIGPIPE"
    in the signal module).
    """
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # a broken pipe surfaces here, not at interpreter exit
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _discard_stdout() -> None:
    """Point file descriptor 1 (if stdout has one) at /dev/null."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a test harness, or closed
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _main(argv: list[str] | None) -> int:
    from jaxmi.errors import JaxmiError

    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else map(str, argv))  # for resume hints
    import warnings

    # A warning is a message to the user: one line, without the library's source line.
    warnings.formatwarning = lambda message, category, *_a, **_k: (
        f"jaxmi: {category.__name__}: {message}\n"
    )
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    from jaxmi import devices

    # One CPU device per core (unless XLA_FLAGS says otherwise): sweep chunks and split batches
    # then keep every core busy; nothing changes on a GPU node (jaxmi.devices). Called in a
    # process where JAX already runs (main() from Python), it leaves JAX as it is.
    if not devices.backend_started():
        devices.set_host_device_count()
    try:
        if args.command in _VIEW_COMMANDS:
            return _VIEW_COMMANDS[args.command](args)
        if args.command == "cluster":
            return _cluster(args)
        return _run(args) if args.command == "run" else _info(args)
    except JaxmiError as err:
        print(f"jaxmi: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("jaxmi: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


# --- validate, plot, figures (jaxmi.validate, jaxmi.plot) ---------------------------------------

EXIT_FAILED = 1


def _add_view_commands(sub) -> None:
    v = sub.add_parser(
        "validate",
        help="check the engine against the paper's closed forms on this device",
        description="Run the engine against every closed form (Eqs. 13-19, each in its regime), "
        "the invariants and the quadrature's self-convergence on the current JAX device; print "
        "a table; exit status 1 if any check fails (docs/validation.md).",
    )
    v.add_argument(
        "--order",
        type=_positive_int,
        metavar="N",
        help="Gauss-Legendre nodes per panel to validate (default: jaxmi.Config().order)",
    )
    pl = sub.add_parser(
        "plot",
        help="draw a sweep file to a PNG (needs matplotlib)",
        description="Draw a sweep file: lines against T (or the bias) per coupling, the "
        "crossover ratio against u on log axes for a u file, or a map with a diverging colour "
        "scale for two swept axes (e.g. dG/dT over Jz/Jx and T).",
    )
    pl.add_argument("file", metavar="OUT.h5")
    pl.add_argument(
        "-o",
        "--output",
        metavar="FILE.png",
        help="default: OUT.png; any format matplotlib writes, by extension (.pdf, .svg, ...)",
    )
    pl.add_argument("--overwrite", action="store_true", help=_OVERWRITE_PICTURE)
    axes = ("J", "T", "V", "u", "mu0", "scale", "exponent")
    pl.add_argument("--x", choices=axes, help="horizontal axis")
    pl.add_argument("--y", choices=axes, help="vertical axis: draw a map")
    pl.add_argument(
        "--quantity",
        choices=("conductance", "current", "Sx", "Sy", "Sz", "dGdT", "ratio"),
        help="what to draw (dGdT: d(dG)/dT; ratio: dG / dG_L of Eq. 14); default by the axes",
    )
    pl.add_argument("--log", choices=("x", "y", "xy", "none"), help="log axes of a line plot")
    f = sub.add_parser(
        "figures",
        help="run the shipped specs fig2 and fig3 and draw the paper's Fig. 2 and Fig. 3",
        description="Run the specs fig2 and fig3 shipped with jaxmi (as `jaxmi run fig2`) and "
        "write fig2.png and fig3.png (engine as markers, closed forms dashed).",
    )
    f.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        default=".",
        help="where the PNGs go (default: the current directory); created if missing, like "
        "mkdir (its parent must exist)",
    )
    f.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keep the HDF5 files here (reused if complete); default a temporary directory",
    )
    f.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    f.add_argument("--overwrite", action="store_true", help=_OVERWRITE_PICTURE)


_OVERWRITE_PICTURE = (
    "replace an existing picture that jaxmi did not write (without it only a picture carrying "
    "jaxmi's stamp is replaced)"
)


def _validate(args) -> int:
    from jaxmi.config import Config
    from jaxmi.validate import describe_device, format_table, run_validation

    config = Config() if args.order is None else Config(order=args.order)
    print(f"jaxmi validate: quadrature order {config.order}, on {describe_device()}", flush=True)
    t0 = time.perf_counter()
    rows = run_validation(config)
    print(format_table(rows))
    print(f"wall time {time.perf_counter() - t0:.1f} s (including compilation)")
    return 0 if all(r.passed for r in rows) else EXIT_FAILED


def _plot(args) -> int:
    from jaxmi import plot

    out = plot.plot_file(
        args.file,
        args.output,
        x=args.x,
        y=args.y,
        quantity_name=args.quantity,
        log=None if args.log is None else ("" if args.log == "none" else args.log),
        overwrite=args.overwrite,
    )
    print(f"wrote {out}")
    return 0


def _figures(args) -> int:
    from jaxmi import plot

    plot._matplotlib()  # fail before running any sweep
    _enable_compilation_cache()
    from jaxmi.sweep import run as run_mod

    progress = run_mod.NoProgress() if args.quiet else run_mod.LineProgress(sys.stderr)
    figures = plot.make_figures(
        args.output, data_dir=args.data_dir, progress=progress, overwrite=args.overwrite
    )
    for out in figures:
        print(f"wrote {out}")
    return 0


_VIEW_COMMANDS = {"validate": _validate, "plot": _plot, "figures": _figures}


# --- fit (jaxmi.fitting) ---------------------------------------------------------------------


def _add_fit_command(sub) -> None:
    f = sub.add_parser(
        "fit",
        help="fit couplings and E0 to a measured G(T, V) table (CSV)",
        description="Least-squares fit of G = 1 + n dG(J; kB T/E0, eV/E0) + offset (e^2/h) to a "
        "CSV (comma- or semicolon-separated) with columns T [K], G [e^2/h] and optional V [mV], "
        "G_err [e^2/h] (a header may write them so); prints a table "
        "(docs/fitting.md). Parameters: Jx, Jy, Jz (or J, isotropic), E0_meV, n, offset; "
        "mu0_meV (Fermi level from the Dirac point, meV); texture_scale, texture_exponent "
        "(--texture power_law) or texture_c0, texture_c1, ... (--texture polynomial).",
    )
    f.add_argument(
        "data",
        metavar="DATA.csv|SPEC.toml",
        help="a conductance table, or a global fit's spec (several tables, shared and "
        "per-dataset parameters; docs/fitting.md)",
    )
    f.add_argument("--free", metavar="NAMES", help="free parameters, e.g. Jx,Jz,E0_meV")
    f.add_argument("--start", metavar="NAME=X,...", help="start values of free parameters")
    f.add_argument("--fix", metavar="NAME=X,...", help="fixed values, e.g. E0_meV=10")
    f.add_argument("--bounds", metavar="NAME=LO:HI,...", help="bounds; empty side: unbounded")
    f.add_argument(
        "--spin",
        metavar="S",
        help="impurity spin 1/2 (default), 1, 3/2, ... (a fixed model choice, not fitted)",
    )
    f.add_argument(
        "--texture",
        choices=("power_law", "polynomial"),
        help="theta(eps): power_law (default; (|eps| / (texture_scale E0))^texture_exponent, "
        "1 and 2 unless named) or polynomial (sum_k texture_ck (eps/E0)^k, c0..c2 or up to the "
        "highest texture_ck named; default c2 = 1, others 0)",
    )
    f.add_argument("--starts", type=_positive_int, default=1, metavar="N", help="starts (1)")
    f.add_argument("--seed", type=int, default=0, help="seed of the extra starts (0)")
    f.add_argument(
        "--profile",
        metavar="NAMES",
        help="profile-likelihood intervals (68%%, 95%%) of these free parameters, the others "
        "refitted; a profile plot beside --plot",
    )
    f.add_argument(
        "--posterior",
        action="store_true",
        help="also sample the posterior with NUTS (flat priors within the bounds; intervals, "
        "R-hat and ESS in the table and JSON; a corner plot beside --plot)",
    )
    f.add_argument(
        "--prior",
        metavar="NAME=MEAN+-SD,...",
        help="normal priors for --posterior, e.g. E0_meV=10+-2",
    )
    # Defaults: jaxmi.fitting.posterior's CHAINS, DRAWS, WARMUP (4, 1000, 500).
    f.add_argument("--chains", type=_positive_int, metavar="N", help="NUTS chains (4)")
    f.add_argument("--draws", type=_positive_int, metavar="N", help="draws per chain (1000)")
    f.add_argument("--warmup", type=_positive_int, metavar="N", help="warmup steps (500)")
    f.add_argument("-o", "--output", metavar="OUT.json", help="write the result as JSON")
    f.add_argument(
        "--plot",
        metavar="FIG.png",
        help="data, fit and residuals (matplotlib; any format it writes, by extension); with "
        "--posterior also FIG_corner.png, with --profile FIG_profile.png",
    )
    f.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing -o/--plot files that jaxmi did not write (without it only a "
        "jaxmi fit result or a picture carrying jaxmi's stamp is replaced)",
    )


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


def parse_priors(text: str | None) -> dict[str, tuple[float, float]]:
    """``"E0_meV=10+-2,J=0.3+-0.1"`` -> ``{"E0_meV": (10.0, 2.0), "J": (0.3, 0.1)}`` (normal
    priors: mean and standard deviation; names checked by :func:`fit`)."""
    out: dict[str, tuple[float, float]] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, rest = item.partition("=")
        mean, pm, sd = rest.partition("+-")
        if not sep or not pm:
            raise FitError(f"--prior: expected NAME=MEAN+-SD, got {item.strip()!r}")
        try:
            out[name.strip()] = (float(mean), float(sd))
        except ValueError:
            raise FitError(
                f"--prior: {name.strip()} needs numbers MEAN+-SD, got {rest!r}"
            ) from None
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


def model_from_options(spin: str | float | None, texture: str | None, names: Sequence[str] = ()):
    """The model of the command line's ``--spin`` and ``--texture``: ``spin`` 1/2 (default),
    1, 3/2, ... (``"3/2"`` or ``"1.5"``); ``texture`` ``power_law`` (default: theta =
    (|eps| / (texture_scale E0))^texture_exponent, 1 and 2 unless fixed or free) or
    ``polynomial`` (theta = sum_k texture_ck (eps / E0)^k with as many coefficients as the highest
    ``texture_ck`` among ``names`` needs, at least c0..c2; defaults c2 = 1, the others 0: the
    paper's texture). None for the paper's model (spin 1/2, power law).

    Raises:
        FitError: a bad spin or texture, one line naming the option.
    """
    from jaxmi.model import Model, Polynomial, PowerLaw

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


def _fit(args) -> int:
    import warnings

    _enable_compilation_cache()
    from jaxmi.errors import FitWarning
    from jaxmi.fitting.files import companion_path, fit_file

    start = parse_values(args.start, "--start")
    fix = parse_values(args.fix, "--fix")
    bounds = parse_bounds(args.bounds)
    prior = parse_priors(args.prior)
    if prior and not args.posterior:
        raise FitError("--prior needs --posterior (least squares takes no prior)")
    model = None
    if args.spin is not None or args.texture is not None:
        names = [*start, *fix, *bounds, *(k.strip() for k in (args.free or "").split(","))]
        model = model_from_options(args.spin, args.texture, names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)  # the same text is in the table's notes
        result = fit_file(
            args.data,
            free=args.free,
            start=start,
            fix=fix,
            bounds=bounds,
            starts=args.starts,
            seed=args.seed,
            output=args.output,
            plot=args.plot,
            model=model,
            overwrite=args.overwrite,
            posterior=args.posterior,
            prior=prior,
            **{
                k: getattr(args, k)
                for k in ("chains", "warmup", "draws")
                if getattr(args, k) is not None
            },
            progress=_NutsBar() if args.posterior else None,
            profile=args.profile,
        )
    print(result.summary())
    extra = []
    if args.plot and args.profile:
        extra.append(companion_path(args.plot, "profile"))
    if args.plot and args.posterior:
        extra.append(companion_path(args.plot, "corner"))
    for path in (args.output, args.plot, *extra):
        if path is not None:
            print(f"wrote {path}")
    return 0


class _NutsBar:
    """A tqdm bar on stderr for the posterior's NUTS transitions (per chain)."""

    def __init__(self):
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc="NUTS", unit="step", file=sys.stderr)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()


_VIEW_COMMANDS["fit"] = _fit


# --- bench (jaxmi.bench) ---------------------------------------------------------------------


def _add_bench_command(sub) -> None:
    b = sub.add_parser(
        "bench",
        help="measure throughput and accuracy on this device (under a minute)",
        description="Time the direct path (conductance), its gradient w.r.t. J and the "
        "factorized grid (100 (T, V) pairs x 1e5 J, compute only) on the default JAX device, "
        "after compilation (median of repeats), and their accuracy against a high-order run; "
        "print a table (docs/performance.md). About 30-60 s on 2 CPU cores; --quick about 15 s.",
    )
    b.add_argument("--quick", action="store_true", help="smaller sizes (about 15 s)")
    b.add_argument(
        "--order",
        type=_positive_int,
        metavar="N",
        help="Gauss-Legendre nodes per panel (default: jaxmi.Config().order)",
    )
    b.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")
    b.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --json file that is not a jaxmi bench result",
    )


def _bench(args) -> int:
    import json

    from jaxmi import bench, outputs
    from jaxmi.config import Config

    if args.json:  # checked before the minute of measuring
        outputs.check_output(args.json, outputs.BENCH, overwrite=args.overwrite, option="--json")
    config = Config() if args.order is None else Config(order=args.order)
    sizes = bench.QUICK if args.quick else bench.FULL
    result = bench.run_bench(sizes, config, progress=lambda m: print(m, file=sys.stderr))
    print(bench.format_bench(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"jaxmi_format": outputs.BENCH_FORMAT, **result}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


_VIEW_COMMANDS["bench"] = _bench
