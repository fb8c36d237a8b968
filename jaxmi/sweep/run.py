"""The sweep driver: spec -> grid -> chunks -> devices -> store, with resume and progress.

:func:`run_sweep` opens (or resumes) the output file, skips the chunks it already holds, and
streams the others: while the devices compute the next chunks (JAX dispatches asynchronously),
the main thread checks and writes the previous one, so memory is bounded by the chunks in
flight (one per device, plus the one being written), not by the grid. Progress is reported
between chunks, never from inside compiled code.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Protocol, TextIO

import jax
import numpy as np

import jaxmi
from jaxmi.api import check_precision
from jaxmi.config import (
    T_MAX,
    Config,
    accuracy_warning,
    domain_warning,
    family_t_max,
    outside_domain,
)
from jaxmi.errors import AccuracyWarning, StoreError
from jaxmi.sweep import budget, chunks, grid, store
from jaxmi.sweep.spec import Spec


class Progress(Protocol):
    """What the driver reports to: ``start`` once, ``advance`` after each written chunk,
    ``close`` at the end (also after an error or an interruption)."""

    def start(self, total: int, done: int) -> None: ...

    def advance(self, points: int) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    """The default: report nothing."""

    def start(self, total: int, done: int) -> None:
        pass

    def advance(self, points: int) -> None:
        pass

    def close(self) -> None:
        pass


COMPILING = "compiling the chunk program ..."


class LineProgress:
    """Plain lines for logs: ``compiling ...`` at the start, then at most one line every
    ``interval`` seconds and one at the end: ``1200/4800 points, 310 k points/s, ETA 12 s``
    (``..., done`` on the last).

    The rate and the ETA count from the first chunk written by this run (before it, JAX is
    compiling; that time says nothing about the rest), so the first line may show ``?``, and a
    sweep done in its first chunk ends in ``10/10 points, done``.
    """

    def __init__(self, stream: TextIO | None = None, interval: float = 5.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval

    def start(self, total: int, done: int) -> None:
        self.total, self.done = total, done
        self.last = time.perf_counter()
        self.base = None  # (time, points) when the first chunk landed
        self.printed = done  # points count of the last line printed
        if done < total:
            print(COMPILING, file=self.stream, flush=True)

    def _line(self) -> str:
        rate = 0.0
        if self.base is not None:
            elapsed = time.perf_counter() - self.base[0]
            rate = (self.done - self.base[1]) / elapsed if elapsed > 0 else 0.0
        speed = budget.si(rate, "points/s") if rate > 0 else "? points/s"
        if self.done >= self.total:
            if rate == 0:  # one chunk did it all: no rate measured after the compilation
                return f"{self.done}/{self.total} points, done"
            eta = "done"
        else:
            eta = f"ETA {(self.total - self.done) / rate:.0f} s" if rate > 0 else "ETA ?"
        return f"{self.done}/{self.total} points, {speed}, {eta}"

    def advance(self, points: int) -> None:
        self.done += points
        now = time.perf_counter()
        if self.base is None:
            self.base = (now, self.done)
        if now - self.last >= self.interval:
            self.last = now
            self._print()

    def _print(self) -> None:
        self.printed = self.done
        print(self._line(), file=self.stream, flush=True)

    def close(self) -> None:
        # A final line for progress not yet printed (closing twice prints nothing more).
        if self.done > self.printed:
            self._print()


class TqdmProgress:
    """A tqdm bar on ``stream`` (points done, points/s, ETA); with ``auto`` tqdm.auto's (a
    widget in a Jupyter notebook where ipywidgets is installed, else the text bar).

    Until the first chunk lands the bar reads ``compiling ...``; its clock then starts again, so
    the rate and ETA count computation, not JAX's compilation.
    """

    def __init__(self, stream: TextIO | None = None, *, auto: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.auto = auto
        self.bar = None
        self.compiling = False

    def start(self, total: int, done: int) -> None:
        if self.auto:
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm

        self.tqdm, self.total = tqdm, total
        self.compiling = done < total
        # While compiling, a bar that gives way to the computing one at the first chunk.
        self.bar = (
            self._bar(done, desc="compiling", leave=False) if self.compiling else self._bar(done)
        )

    def _bar(self, initial: int, **kwargs):
        return self.tqdm(
            total=self.total,
            initial=initial,
            unit="pt",
            unit_scale=True,
            file=self.stream,
            dynamic_ncols=True,
            smoothing=0.1,
            **kwargs,
        )

    def advance(self, points: int) -> None:
        if self.compiling:
            # A new bar from here: the old one's clock started before compilation.
            n = self.bar.n + points
            self.bar.close()
            self.bar = self._bar(n)
            self.compiling = False
            return
        self.bar.update(points)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclasses.dataclass(frozen=True)
class Result:
    """What a run did.

    Attributes:
        path: the output file.
        shape: the grid's (nJ, nT, nV) (or (nJ, nT, nu)); a sweep of model parameters has more
            dimensions: see ``dims``.
        points: points in the grid; points_done: points in the file now.
        points_computed, chunks_computed: computed by this run.
        complete: every chunk is in the file; interrupted: ``stop`` ended the run early.
        wall_time: seconds this run took (file opened to file closed).
        dims: every dimension of the grid and its length, in order, e.g.
            {"J": 2, "mu0": 41, "T": 24, "V": 1}.
        inaccurate: points computed by this run whose error estimate is above the tolerance
            (only counted where the spec stores "error"); worst_error: the largest estimate
            this run computed (None without "error").
    """

    path: str
    shape: tuple[int, int, int]
    points: int
    points_done: int
    points_computed: int
    chunks_computed: int
    complete: bool
    interrupted: bool
    wall_time: float
    dims: dict = dataclasses.field(default_factory=dict)
    inaccurate: int = 0
    worst_error: float | None = None


def model_attrs(g: grid.Grid) -> dict:
    """Root attributes of a sweep with a ``[model]`` table: ``model`` (JSON of
    :meth:`jaxmi.model.Model.describe` without the swept parameters, which are dimensions),
    ``spin``, ``exchange``, ``texture`` (its kind) and ``mu0`` when it is not swept."""
    description = chunks.build_model(g).describe()
    swept = {name for name, _ in g.model_axes}
    if "mu0" in swept:
        del description["mu0"]
    for name in swept - {"mu0"}:
        del description["texture"][name]
    attrs = {
        "model": json.dumps(description),
        "spin": np.float64(g.model.spin),
        "exchange": g.model.exchange,
        "texture": g.model.texture,
    }
    if "mu0" not in swept:
        attrs["mu0"] = np.float64(description["mu0"])
    return attrs


def skeleton(spec: Spec, g: grid.Grid, layout: chunks.Layout, config: Config, device: str):
    """The file skeleton of a sweep (coordinates and metadata)."""
    attrs = {
        "spec": spec.text,
        "spec_path": spec.path,
        "description": spec.description,
        "precision": spec.precision,
        "quadrature_order": np.int64(config.order),
        "window_panels": np.int64(config.window_panels),
        "tail_panels": np.int64(config.tail_panels),
        "tail_cutoff": np.float64(config.tail_cutoff),
        "regularization": np.float64(config.regularization),
    }
    if "error" in spec.quantities:
        attrs["tolerance"] = np.float64(config.tolerance)
    if spec.model is not None:  # a spec without [model] keeps the paper's file exactly
        attrs.update(model_attrs(g))
        attrs["units"] = store.ROOT_UNITS + (
            "; mu0 and the texture scale: vF*k0; texture exponent: 1; J_tensor: 1 (J_ij/vF)"
        )
        attrs["code_path"] = "paper" if g.paper_path else "general"
        if not g.paper_path:
            attrs["family_window_panels"] = np.int64(config.family_window_panels)
            attrs["family_tail_panels"] = np.int64(config.family_tail_panels)
    return store.Skeleton(
        grid=g,
        block=layout.block,
        quantities=spec.quantities,
        spec_sha256=spec.sha256,
        version=jaxmi.__version__,
        attrs=attrs,
        device=device,
    )


def chunk_ranges(i: int, layout: chunks.Layout, g: grid.Grid) -> str:
    """Chunk i's grid indices and coordinate ranges, for messages: 'J[0:4] (Jx 0.1..0.4, ...),
    T[2:3] (0.05..0.05), V[0:6] (...)' (with 'mu0[0:3] (...)' etc. for swept model
    parameters, and 'J[0:2] (J_ij -0.1..0.3)' for exchange tensors)."""
    rj, *rm, rt, rv = layout.region(i)
    J, T, X = g.J[rj], g.T[rt], g.third[rv]

    def span(x):
        return f"{x.min():.6g}..{x.max():.6g}"

    if J.ndim == 3:
        parts = [f"J[{rj.start}:{rj.stop}] (J_ij {span(J)})"]
    else:
        parts = [
            f"J[{rj.start}:{rj.stop}] (Jx {span(J[:, 0])}, Jy {span(J[:, 1])}, Jz {span(J[:, 2])})"
        ]
    for (name, values), r in zip(g.model_axes, rm, strict=True):
        parts.append(f"{name}[{r.start}:{r.stop}] ({span(values[r])})")
    parts.append(f"T[{rt.start}:{rt.stop}] ({span(T)})")
    parts.append(f"{g.third_name}[{rv.start}:{rv.stop}] ({span(X)})")
    return ", ".join(parts)


def _nan_message(path: str, i: int, layout: chunks.Layout, g: grid.Grid, q: str, arr) -> str:
    return (
        f"{path}: chunk {i} of {layout.n_chunks} produced NaN in {q} at "
        f"{int(np.isnan(arr).sum())} point(s); chunk not written: {chunk_ranges(i, layout, g)}"
    )


class Backend(Protocol):
    """Where chunks are computed. ``describe()`` names it for the file's ``device`` attribute;
    ``results(spec, g, layout, config, todo)`` computes the chunks ``todo`` and yields
    ``(i, {quantity: array of chunk i's valid points})`` in any order, keeping a bounded number
    of chunks in flight; closing the generator early cancels what is still in flight."""

    def describe(self) -> str: ...

    def results(
        self, spec: Spec, g: grid.Grid, layout: chunks.Layout, config: Config, todo: list[int]
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]: ...


class LocalBackend:
    """The local JAX devices (the default): chunks go round-robin to ``devices`` (default
    ``jax.local_devices()``), one in flight per device while the oldest one is written."""

    def __init__(self, devices=None) -> None:
        self.devices = list(devices) if devices is not None else jax.local_devices()

    def describe(self) -> str:
        return chunks.describe_devices(self.devices)

    def results(self, spec, g, layout, config, todo):
        computer = chunks.Computer(g, layout, config, self.devices, spec.quantities)
        pending: collections.deque = collections.deque()
        for i in todo:
            pending.append(computer.submit(i))
            # Keep one chunk per device in flight while the oldest one is written.
            if len(pending) > len(self.devices):
                handle = pending.popleft()
                yield handle[0], computer.result(handle)
        while pending:
            handle = pending.popleft()
            yield handle[0], computer.result(handle)


def _n_devices(backend) -> int:
    """Chunks in flight at once, for the memory estimate (one per local device; a cluster's
    workers hold theirs elsewhere, and this process holds the results of about as many)."""
    return len(getattr(backend, "devices", ())) or 1


def warn_outside_domain(g: grid.Grid, config: Config) -> None:
    """One AccuracyWarning for the grid points outside the validated domain, as the API gives
    for the same points (jaxmi.config.outside_domain)."""
    axes = dict(g.model_axes)
    t_max = T_MAX if g.paper_path else family_t_max(config)
    mu0 = None
    if not g.paper_path:
        mu0 = axes["mu0"][:, None, None] if "mu0" in axes else g.model.mu0
    outside = outside_domain(g.T[:, None], g.V, t_max=t_max, mu0=mu0)  # ([mu0,] T, third)
    if not outside.any():
        return
    others = g.shape[0] * math.prod(len(v) for name, v in g.model_axes if name != "mu0")
    warnings.warn(
        domain_warning(int(outside.sum()) * others, t_max, family=not g.paper_path),
        AccuracyWarning,
        stacklevel=3,
    )


def run_sweep(
    spec: Spec,
    *,
    output: str | None = None,
    overwrite: bool = False,
    chunk: int | None = None,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
    devices=None,
    backend: Backend | None = None,
    force: bool = False,
) -> Result:
    """Run (or resume) a sweep and write it to HDF5.

    Args:
        spec: a validated spec (:func:`jaxmi.sweep.load`).
        output: the file to write; default ``spec.default_output()``, relative to the CWD.
        overwrite: replace an existing file that holds another sweep (or is not a jaxmi file).
        chunk: points per chunk, overriding the spec's ``[numerics].chunk``. A file can only be
            resumed with the chunk shape it was started with.
        progress: a :class:`Progress`; default silent.
        stop: polled between chunks; when it returns True the run ends early (chunks already
            written stay; the rest can be resumed later).
        devices: JAX devices to use; default ``jax.local_devices()``.
        backend: where the chunks are computed (a :class:`Backend`); default
            ``LocalBackend(devices)``. Whatever computes them, this process alone writes the
            file (e.g. :class:`jaxmi.sweep.cluster.DaskBackend` on dask.distributed), so a file
            started with one backend can be finished with another.
        force: skip the pre-flight's refusals (jaxmi.sweep.budget): run a sweep whose
            estimated memory or file size exceeds what this machine has free.

    Returns:
        :class:`Result`.

    Raises:
        PrecisionError: JAX runs in float32 (nothing is created).
        StoreError: the sweep would not fit this machine's memory or disk (nothing is created),
            the output cannot be written or resumed, or a chunk produced NaN (that chunk is not
            written; the message names it and its J/T/V ranges).
        WriteError: a chunk could not be written (disk full, I/O error, file-size limit): it is
            not recorded, and the same call resumes the file once the cause is gone.
        ClusterError: a chunk raised on a cluster worker (named the same way; not written).
    """
    progress = progress if progress is not None else NoProgress()
    if backend is None:
        backend = LocalBackend(devices)
    elif devices is not None:
        raise TypeError("run_sweep: pass devices or backend, not both")
    path = output if output is not None else spec.default_output()
    check_precision()  # before any file exists: float32 would write NaN or noise
    # Pre-flight, before the grid's coordinates are built or a file is created (jaxmi.sweep.budget).
    est = budget.preflight(spec, chunk, path, n_devices=_n_devices(backend), force=force)
    layout = est.layout
    g = grid.build(spec)
    config = chunks.config_for(spec)
    warn_outside_domain(g, config)
    device = backend.describe()
    t0 = time.perf_counter()
    computed = chunks_computed = inaccurate = 0
    worst = 0.0
    interrupted = False
    with store.open_writer(
        path,
        skeleton(spec, g, layout, config, device),
        overwrite=overwrite,
        estimate=est,
        force=force,
    ) as w:
        w.start_run(device)
        todo = [i for i in range(layout.n_chunks) if not w.done[i]]
        progress.start(g.n_points, g.n_points - sum(layout.points(i) for i in todo))
        results = backend.results(spec, g, layout, config, todo)
        try:
            while True:
                if stop is not None and stop():
                    interrupted = True
                    break
                try:
                    i, values = next(results)
                except StopIteration:
                    break
                for q, arr in values.items():
                    if np.isnan(arr).any():
                        raise StoreError(_nan_message(path, i, layout, g, q, arr))
                w.write_chunk(i, layout.region(i), values)
                if "error" in values:
                    inaccurate += int(np.count_nonzero(values["error"] > config.tolerance))
                    worst = max(worst, float(np.max(values["error"], initial=0.0)))
                computed += layout.points(i)
                chunks_computed += 1
                progress.advance(layout.points(i))
        finally:
            results.close()  # cancels the chunks still in flight
            wall = time.perf_counter() - t0
            w.finish(wall)
            progress.close()
        done_points = sum(layout.points(i) for i in range(layout.n_chunks) if w.done[i])
        complete = bool(w.done.all())
    if interrupted and complete:
        interrupted = False
    if inaccurate:
        warnings.warn(
            accuracy_warning(inaccurate, worst, config, sweep=path), AccuracyWarning, stacklevel=2
        )
    return Result(
        path=path,
        shape=(g.shape[0], g.shape[-2], g.shape[-1]),
        points=g.n_points,
        points_done=done_points,
        points_computed=computed,
        chunks_computed=chunks_computed,
        complete=complete,
        interrupted=interrupted,
        wall_time=wall,
        dims=dict(zip(g.dims, g.shape, strict=True)),
        inaccurate=inaccurate,
        worst_error=worst if "error" in spec.quantities else None,
    )
