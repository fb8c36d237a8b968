"""Sweeps on dask.distributed: a LocalCluster, a running scheduler, or SLURM/PBS via dask-jobqueue.

The chunks of a sweep become dask tasks; the client (this process) stays the single writer of
the HDF5 file through :func:`jaxmi.sweep.run.run_sweep` (same layout, same ``chunks_done``
record, same resume logic), so a run started on a cluster can be finished locally and the other
way round. Design (docs/cluster.md):

* A task carries the spec text, the chunk block and a chunk index, never grid arrays. Each worker
  process parses the spec, builds the grid and the compiled chunk function once (cached by spec
  sha256 and block) and reuses them for every later chunk.
* At most ``in_flight`` chunks are submitted at a time (default twice the workers' threads);
  a new one is submitted when one completes (``as_completed``), so the client's memory is a few
  chunks whatever the grid size. Results are written in completion order.
* Faults: dask recomputes the chunks of a worker that dies (SIGKILL, OOM) elsewhere; a chunk that
  raises is reported with its chunk and grid indices and is not recorded (a NaN in a result is
  caught by the driver, with the same message as a local run); either way the tasks still in
  flight are cancelled. The client killed: run the command again (locally or on a cluster).

dask, distributed and dask-jobqueue are optional (``pip install 'jaxmi[cluster]'``) and imported
inside the functions that need them. The cluster file is validated in pure Python first.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import os
import re
import shlex
import threading
import time
import tomllib
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from jaxmi.errors import ClusterError
from jaxmi.sweep.spec import unknown_key

INSTALL_HINT = "pip install 'jaxmi[cluster]'"
KINDS = ("slurm", "pbs")
_TOP_KEYS = ("address", "slurm", "pbs", "in_flight")
_JOB_KEYS = (
    "queue",
    "account",
    "walltime",
    "cores",
    "memory",
    "gpus",
    "processes",
    "jobs",
    "env",
    "prologue",
    "job_extra",
    "python",
    "interface",
    "local_directory",
    "log_directory",
)
_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*([kKMGTP]i?)?B?\s*$")
_WALLTIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Set in GPU jobs unless the file's env says otherwise: JAX would otherwise take 75% of each
#: GPU's memory in every worker process at start-up.
GPU_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
#: What a job script shows where dask-jobqueue puts the scheduler's address (known at run time).
SCHEDULER_PLACEHOLDER = "tcp://SCHEDULER-ADDRESS:8786"


# --- the --cluster value and the cluster file (pure Python) -----------------------------------


@dataclasses.dataclass(frozen=True)
class JobQueue:
    """A ``[slurm]`` or ``[pbs]`` section: one batch job starts ``processes`` worker processes.

    Attributes:
        kind: "slurm" or "pbs".
        options: keyword arguments of ``dask_jobqueue.SLURMCluster`` / ``PBSCluster`` (queue,
            account, walltime, cores, memory, processes, job_extra_directives,
            job_script_prologue, worker_extra_args, ...).
        jobs: how many jobs to submit (``cluster.scale(jobs=...)``).
        gpus: GPUs per job (0: CPU workers); one worker process per GPU, each running one chunk
            at a time (dask resource ``GPU=1``).
    """

    kind: str
    options: dict
    jobs: int
    gpus: int


@dataclasses.dataclass(frozen=True)
class Target:
    """Where ``--cluster`` points: ``kind`` "local" (``workers`` processes on this machine),
    "address" (a running scheduler) or "jobqueue" (a batch system); ``path`` is the cluster file
    (or None); ``in_flight`` the chunks in flight (None: twice the workers' threads)."""

    kind: str
    workers: int | None = None
    address: str | None = None
    jobqueue: JobQueue | None = None
    path: str | None = None
    in_flight: int | None = None


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else '"' + value + '"'
    if isinstance(value, bool):
        text = "true" if value else "false"
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(path: str, key: str, problem: str) -> ClusterError:
    return ClusterError(f"{path}: {key} {problem}" if key else f"{path}: {problem}")


def _check_keys(path: str, table: dict, allowed: tuple[str, ...], where: str) -> None:
    message = unknown_key(table, allowed, where)
    if message is not None:
        raise _fail(path, "", message)


def _int(path: str, table: dict, key: str, where: str, default, minimum: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise _fail(path, f"{where}.{key}", f"must be {what}, got {_show(value)}")
    return value


def _str(path: str, table: dict, key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _fail(path, f"{where}.{key}", f"must be a non-empty string, got {_show(value)}")
    return value


def _str_list(path: str, table: dict, key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, f"{where}.{key}", f"must be a list of strings, got {_show(value)}")
    return list(value)


def _job_section(path: str, kind: str, table: Any) -> JobQueue:
    where = f"[{kind}]"
    if not isinstance(table, dict):
        raise _fail(path, where, f"must be a table, got {_show(table)}")
    _check_keys(path, table, _JOB_KEYS, where)
    if "cores" not in table:
        raise _fail(path, where, "needs cores (CPU cores per job), e.g. cores = 16")
    if "memory" not in table:
        raise _fail(path, where, 'needs memory (per job), e.g. memory = "64GB"')
    cores = _int(path, table, "cores", where, None, 1)
    memory = table["memory"]
    if not isinstance(memory, str) or not _MEMORY.match(memory):
        raise _fail(
            path,
            f"{where}.memory",
            f'must be a size such as "64GB" or "500MiB", got {_show(memory)}',
        )
    gpus = _int(path, table, "gpus", where, 0, 0)
    processes = _int(path, table, "processes", where, max(gpus, 1), 1)
    if gpus and processes != gpus:
        raise _fail(
            path,
            f"{where}.processes",
            f"must equal gpus ({gpus}) in a GPU job (one worker process per GPU), got {processes}",
        )
    if processes > cores:
        raise _fail(
            path, f"{where}.processes", f"must be <= cores ({cores}), got {_show(processes)}"
        )
    jobs = _int(path, table, "jobs", where, 1, 1)
    walltime = _str(path, table, "walltime", where)
    if walltime is not None and not _WALLTIME.match(walltime):
        raise _fail(
            path,
            f"{where}.walltime",
            f'must look like "HH:MM:SS" or "D-HH:MM", got {_show(walltime)}',
        )
    env = table.get("env", {})
    if not isinstance(env, dict):
        raise _fail(path, f"{where}.env", f'must be a table of NAME = "value", got {_show(env)}')
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise _fail(path, f"{where}.env", f"has an invalid variable name {_show(name)}")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _fail(
                path, f"{where}.env.{name}", f"must be a string or a number, got {_show(value)}"
            )
    prologue = _str_list(path, table, "prologue", where)
    job_extra = _str_list(path, table, "job_extra", where)

    options: dict[str, Any] = {
        "cores": cores,
        "memory": memory,
        "processes": processes,
        "job_name": "jaxmi",
    }
    for key in ("queue", "account", "walltime", "python", "interface", "local_directory"):
        value = _str(path, table, key, where)
        if value is not None:
            options[key] = value
    log_directory = _str(path, table, "log_directory", where)
    if log_directory is not None:
        options["log_directory"] = log_directory
    full_env = {**(GPU_ENV if gpus else {}), **{k: str(v) for k, v in env.items()}}
    options["job_script_prologue"] = prologue + [
        f"export {k}={shlex.quote(v)}" for k, v in full_env.items()
    ]
    directives = list(job_extra)
    worker_args: list[str] = []
    if gpus:
        worker_args = ["--resources", "GPU=1"]  # one chunk at a time per GPU worker
        if kind == "slurm":
            directives.append(f"--gres=gpu:{gpus}")
    options["job_extra_directives"] = directives
    options["worker_extra_args"] = worker_args
    return JobQueue(kind=kind, options=options, jobs=jobs, gpus=gpus)


def load_file(path: str) -> Target:
    """Read and validate a cluster file (TOML): ``address = "tcp://HOST:PORT"``, or one
    ``[slurm]`` or ``[pbs]`` section; optional top-level ``in_flight``.

    Raises:
        ClusterError: one line naming the file and the key.
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.loads(f.read().decode("utf-8"))
    except OSError as err:
        raise ClusterError(f"{path}: cannot read the cluster file: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise ClusterError(f"{path}: is not UTF-8 text (byte {err.start})") from None
    except tomllib.TOMLDecodeError as err:
        raise ClusterError(f"{path}: is not valid TOML: {err}") from None
    _check_keys(path, data, _TOP_KEYS, "")
    given = [k for k in ("address", "slurm", "pbs") if k in data]
    if len(given) != 1:
        raise _fail(
            path,
            "",
            'needs exactly one of address = "tcp://HOST:PORT", [slurm] and [pbs], got '
            + (" and ".join(given) if given else "none"),
        )
    in_flight = data.get("in_flight")
    if in_flight is not None:
        in_flight = _int(path, data, "in_flight", "", None, 1)
    if "address" in data:
        address = data["address"]
        problem = _address_problem(address) if isinstance(address, str) else ""
        if problem is not None:
            raise _fail(
                path,
                "address",
                f'must be a scheduler address "tcp://HOST:PORT", got {_show(address)}'
                + (f" ({problem})" if problem else ""),
            )
        return Target("address", address=address, path=path, in_flight=in_flight)
    kind = given[0]
    job = _job_section(path, kind, data[kind])
    return Target("jobqueue", jobqueue=job, path=path, in_flight=in_flight)


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$")
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(\d+)$")
#: What ``--cluster`` accepts, for the messages.
_ALLOWED = (
    "allowed: local, local:N, a scheduler address tcp://HOST:PORT (or HOST:PORT), or a cluster "
    "file FILE.toml"
)


def _address_problem(text: str) -> str | None:
    """None if ``text`` is a scheduler address jaxmi can connect to, ``tcp://HOST:PORT`` or
    ``HOST:PORT`` (port 1..65535), else what is wrong with it (a phrase). Only tcp: dask's
    tls:// needs credentials jaxmi does not pass, and its other schemes need extra packages."""
    rest = text
    m = _SCHEME.match(text)
    if m is not None:
        if m.group(1) != "tcp":
            return f"the scheme {m.group(1) + '://'!r} is not supported, only tcp://"
        rest = m.group(2)
    hp = _HOST_PORT.match(rest)
    if hp is None:
        return "expected HOST:PORT after tcp://, e.g. tcp://10.0.0.5:8786"
    if not 1 <= int(hp.group(2)) <= 65535:
        return f"port {hp.group(2)} is outside 1..65535"
    return None


def parse_target(text: str) -> Target:
    """The value of ``--cluster``: ``local``, ``local:N``, a scheduler address
    (``tcp://HOST:PORT`` or ``HOST:PORT``) or a ``.toml`` cluster file.

    Raises:
        ClusterError: one line saying what was given and what is allowed (e.g. an address with
            another scheme than tcp://, or without a port).
    """
    if text == "local" or text.startswith("local:"):
        n = text[len("local:") :] if text != "local" else ""
        if n and (not n.isdigit() or int(n) < 1):
            raise ClusterError(
                f"--cluster local:N needs a positive number of workers N, got {text!r}"
            )
        return Target("local", workers=int(n) if n else None)
    if text.endswith(".toml") or os.path.isfile(text):
        return load_file(text)
    if "://" in text or _HOST_PORT.match(text):
        problem = _address_problem(text)
        if problem is None:
            return Target("address", address=text)
        raise ClusterError(f"--cluster {text!r}: {problem} ({_ALLOWED})")
    raise ClusterError(
        "--cluster must be local, local:N, a scheduler address (tcp://HOST:PORT) or a cluster "
        f"file (.toml), got {text!r}"
    )


# --- optional dependencies ----------------------------------------------------------------------


def require(what: str = "--cluster") -> None:
    """Fail with one line naming the extra if dask.distributed is not installed."""
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as err:
        raise ClusterError(
            f"{what} needs dask.distributed, which is not installed ({err}); install it with: "
            f"{INSTALL_HINT}"
        ) from None


def _jobqueue_classes(kind: str):
    try:
        if kind == "slurm":
            from dask_jobqueue import SLURMCluster as cluster_cls
            from dask_jobqueue.slurm import SLURMJob as job_cls
        else:
            from dask_jobqueue import PBSCluster as cluster_cls
            from dask_jobqueue.pbs import PBSJob as job_cls
    except ImportError as err:
        raise ClusterError(
            f"a [{kind}] cluster file needs dask-jobqueue, which is not installed ({err}); "
            f"install it with: {INSTALL_HINT}"
        ) from None
    return cluster_cls, job_cls


def _jobqueue_options(job: JobQueue) -> dict:
    options = dict(job.options)
    if job.kind == "pbs" and job.gpus:
        from dask.utils import parse_bytes
        from dask_jobqueue.pbs import pbs_format_bytes_ceil

        mem = pbs_format_bytes_ceil(parse_bytes(options["memory"]))
        options["resource_spec"] = f"select=1:ncpus={options['cores']}:ngpus={job.gpus}:mem={mem}"
    return options


def job_script(path: str) -> str:
    """The batch script dask-jobqueue would submit for the cluster file ``path`` (a ``[slurm]`` or
    ``[pbs]`` section), with :data:`SCHEDULER_PLACEHOLDER` for the scheduler's address. Starts
    nothing and needs no batch system.

    Raises:
        ClusterError: the file is malformed, has no batch section, or dask-jobqueue is missing.
    """
    target = load_file(path)
    if target.kind != "jobqueue":
        raise ClusterError(
            f"{path}: has no [slurm] or [pbs] section (it names a running scheduler), so there "
            "is no job script"
        )
    require("jaxmi cluster job-script")
    _, job_cls = _jobqueue_classes(target.jobqueue.kind)
    job = job_cls(
        scheduler=SCHEDULER_PLACEHOLDER, name="jaxmi", **_jobqueue_options(target.jobqueue)
    )
    return job.job_script()


@contextlib.contextmanager
def local_client(n_workers: int) -> Iterator[Any]:
    """A LocalCluster of ``n_workers`` processes (one thread each) on 127.0.0.1 with no
    dashboard, and a Client on it; both closed on exit. Used by ``--cluster local[:N]``, the
    tests and benchmarks/cluster_bench.py."""
    require()
    import logging

    from distributed import Client, LocalCluster

    with warnings.catch_warnings():
        # The scheduler's HTTP server (no dashboard) moves to a free port if 8787 is taken.
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    with cluster, Client(cluster) as client:
        yield client


@contextlib.contextmanager
def connect(
    target: Target, stop: Callable[[], bool] | None = None
) -> Iterator[tuple[Any, DaskBackend]]:
    """Start (or connect to) the cluster of ``target`` and wait for a first worker (polling
    ``stop``: KeyboardInterrupt when it returns True); yields ``(client, backend)`` and closes on
    exit everything it started (the client, and a LocalCluster or batch jobs)."""
    require()
    from distributed import Client

    with contextlib.ExitStack() as stack:
        resources = None
        if target.kind == "local":
            client = stack.enter_context(local_client(target.workers or default_workers()))
        elif target.kind == "address":
            try:
                client = stack.enter_context(Client(target.address, timeout="30s"))
            except OSError as err:
                where = f"{target.path}: address" if target.path else "--cluster"
                raise ClusterError(
                    f"{where}: cannot connect to the scheduler at {target.address}: {err}"
                ) from None
        else:
            job = target.jobqueue
            cluster_cls, _ = _jobqueue_classes(job.kind)
            cluster = stack.enter_context(cluster_cls(**_jobqueue_options(job)))
            cluster.scale(jobs=job.jobs)
            client = stack.enter_context(Client(cluster))
            if job.gpus:
                resources = {"GPU": 1}
        while not client.nthreads():  # e.g. batch jobs still queued
            if stop is not None and stop():
                raise KeyboardInterrupt
            time.sleep(0.5)
        yield client, DaskBackend(client, in_flight=target.in_flight, resources=resources)


# --- the worker side ----------------------------------------------------------------------------

_STATE: collections.OrderedDict = collections.OrderedDict()
_STATE_LOCK = threading.Lock()
_STATE_SIZE = 4  # specs kept per worker process


def _local_rank() -> int:
    """This worker's index on its node: the LocalCluster name (0, 1, ...) or the ``-k`` suffix
    dask adds to the workers of a multi-process job; 0 when there is no worker or no index."""
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return 0
    if isinstance(name, int):
        return name
    m = re.search(r"-(\d+)$", str(name))
    return int(m.group(1)) if m else 0


def _enable_compilation_cache() -> None:
    """The CLI's persistent JAX compilation cache, in this worker's own $XDG_CACHE_HOME/jaxmi."""
    import jax

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    jax.config.update("jax_compilation_cache_dir", os.path.join(base, "jaxmi", "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _worker_state(spec_text: str, spec_path: str, block: tuple[int, ...], cache: bool):
    """The parsed spec and a chunk computer for it, built once per worker process and spec."""
    key = (hashlib.sha256(spec_text.encode()).hexdigest(), tuple(block))
    with _STATE_LOCK:
        if key in _STATE:
            _STATE.move_to_end(key)
            return _STATE[key]
        import jax

        from jaxmi.sweep import chunks, grid
        from jaxmi.sweep.spec import parse

        if cache:
            _enable_compilation_cache()
        spec = parse(spec_text, spec_path)
        g = grid.build(spec)
        layout = chunks.Layout(shape=g.shape, block=tuple(block))
        devices = jax.local_devices()
        device = devices[_local_rank() % len(devices)]  # one GPU per worker process
        computer = chunks.Computer(g, layout, chunks.config_for(spec), [device], spec.quantities)
        _STATE[key] = (spec, computer)
        while len(_STATE) > _STATE_SIZE:
            _STATE.popitem(last=False)
        return _STATE[key]


def compute_chunk(spec_text: str, spec_path: str, block, i: int, cache: bool = False) -> dict:
    """The dask task: chunk ``i`` of the sweep ``spec_text`` with chunk ``block``; returns the
    valid part of the spec's quantities (numpy arrays), as :meth:`chunks.Computer.result`."""
    _, computer = _worker_state(spec_text, spec_path, block, cache)
    return computer.result(computer.submit(i))


# --- the client side ----------------------------------------------------------------------------


class DaskBackend:
    """Chunks as dask tasks on ``client``'s workers (a :class:`jaxmi.sweep.run.Backend`).

    Args:
        client: a ``distributed.Client``.
        in_flight: chunks submitted at a time; default twice the workers' threads (checked again
            every few seconds, so workers joining later are used), at least 2.
        resources: dask resources each task needs (``{"GPU": 1}`` on GPU jobs).
        cache: enable the persistent JAX compilation cache on the workers (the CLI does).
        task: the task function (default :func:`compute_chunk`; tests wrap it to inject faults).
    """

    def __init__(
        self,
        client,
        *,
        in_flight: int | None = None,
        resources: dict | None = None,
        cache: bool = False,
        task: Callable = compute_chunk,
    ) -> None:
        self.client = client
        self.in_flight = in_flight
        self.resources = resources
        self.cache = cache
        self.task = task

    def _threads(self) -> int:
        return sum(self.client.nthreads().values())

    def _limit(self) -> int:
        if self.in_flight is not None:
            return self.in_flight
        return max(2, 2 * self._threads())

    def describe(self) -> str:
        nthreads = self.client.nthreads()
        address = self.client.scheduler.address
        return f"dask {len(nthreads)} workers, {sum(nthreads.values())} threads ({address})"[:96]

    def results(self, spec, g, layout, config, todo):
        from distributed import as_completed

        from jaxmi.sweep.run import chunk_ranges

        run_id = uuid.uuid4().hex[:8]
        block = tuple(int(b) for b in layout.block)
        pending: dict = {}
        queue = iter(todo)
        done = as_completed()

        def submit(i: int) -> None:
            future = self.client.submit(
                self.task,
                spec.text,
                spec.path,
                block,
                i,
                self.cache,
                key=f"jaxmi-chunk-{i}-{run_id}",
                pure=False,
                resources=self.resources,
            )
            pending[future] = i
            done.add(future)

        def refill() -> None:
            while len(pending) < limit:
                j = next(queue, None)
                if j is None:
                    return
                submit(j)

        limit, checked = self._limit(), time.monotonic()
        try:
            refill()
            for future in done:
                i = pending.pop(future)
                try:
                    values = future.result()
                except Exception as err:
                    future.release()  # the traceback keeps this frame (and the future) alive
                    raise ClusterError(
                        f"{spec.path}: chunk {i} of {layout.n_chunks} failed on a worker "
                        f"({type(err).__name__}: {_one_line(err)}); chunk not written: "
                        f"{chunk_ranges(i, layout, g)}"
                    ) from err
                future.release()
                if self.in_flight is None and time.monotonic() - checked > 5.0:
                    limit, checked = self._limit(), time.monotonic()
                refill()  # before handing the result over: workers compute while we write
                yield i, values
        finally:
            if pending:
                self.client.cancel(list(pending))
                pending.clear()


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 200 else text[:197] + "..."


def default_workers() -> int:
    """Workers of ``--cluster local`` without N: one per CPU core."""
    return max(1, os.cpu_count() or 1)


__all__ = [
    "DaskBackend",
    "JobQueue",
    "Target",
    "compute_chunk",
    "connect",
    "job_script",
    "load_file",
    "parse_target",
    "require",
]
