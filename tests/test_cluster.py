"""Sweeps on dask.distributed (jaxmi.sweep.cluster), on loopback only: a LocalCluster of 2 worker
processes on 127.0.0.1, a worker killed with SIGKILL, the client killed and the run finished
without a cluster, a failing chunk, the SLURM job script, and the one-line errors.

Bitwise equality is the right check, not a tolerance: every worker runs the same compiled chunk
program on the same chunk inputs as a single-process run, and the client writes the results into
the same file layout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import xarray as xr
from sweep_helpers import cli_env, jaxmi_command, run_cli, write_spec  # noqa: F401

pytest.importorskip("distributed", reason="the cluster extra is not installed")
psutil = pytest.importorskip("psutil", reason="psutil comes with distributed")


from jaxmi.errors import ClusterError, StoreError  # noqa: E402
from jaxmi.sweep import chunks, cluster, grid, load  # noqa: E402
from jaxmi.sweep.run import chunk_ranges, run_sweep  # noqa: E402

QUANTITIES = ("conductance", "current", "spin")

#: 10^6 points (10^5 J x 5 T x 2 V) in 100 chunks of 10^4 J x 1 T x 1 V.
BIG_SPEC = """
    output = "big.h5"
    [J.product]
    Jx = { start = 0.01, stop = 0.5, num = 50 }
    Jy = { start = 0.0, stop = 0.5, num = 50 }
    Jz = { start = -0.5, stop = 0.5, num = 40 }
    [T]
    start = 0.02
    stop = 0.3
    num = 5
    spacing = "log"
    [V]
    values = [0.0, 0.05]
    [numerics]
    chunk = 10000
"""

#: A small sweep (24 chunks of 4 J x 1 (T, u) pair) for the failing-chunk test.
SMALL_SPEC = """
    [J]
    isotropic = {start = 0.1, stop = 0.4, num = 4}
    [T]
    start = 0.01
    stop = 0.3
    num = 6
    [u]
    values = [0.5, 1.0, 2.0, 3.0]
    [numerics]
    chunk = 4
"""


def arrays(path):
    with h5py.File(path, "r") as f:
        return {q: f[q][...] for q in QUANTITIES}, f["sweep/chunks_done"][...]


def children():
    return psutil.Process().children(recursive=True)


def _helper(p) -> bool:
    # multiprocessing's resource tracker lives as long as the test process (not a dask process)
    with contextlib.suppress(psutil.Error):
        return "multiprocessing.resource_tracker" in " ".join(p.cmdline())
    return True


@pytest.fixture(scope="module", autouse=True)
def no_processes_left():
    # Every process the tests start (workers, nannies, CLI runs) is gone at the end.
    before = {p.pid for p in children()}
    yield
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = [p for p in children() if p.pid not in before and p.is_running()]
        left = [p for p in left if p.status() != psutil.STATUS_ZOMBIE and not _helper(p)]
        if not left:
            return
        time.sleep(0.2)
    described = []
    for p in left:
        with contextlib.suppress(psutil.Error):
            described.append((p.pid, p.status(), " ".join(p.cmdline())[:200]))
            p.kill()
    pytest.fail(f"processes left running: {described}")


@pytest.fixture(scope="module")
def client():
    """2 worker processes (1 thread each) on 127.0.0.1, no dashboard; closed after the module."""
    with cluster.local_client(2) as c:
        yield c


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """BIG_SPEC and its single-process run: (spec path, arrays)."""
    d = tmp_path_factory.mktemp("big")
    path = write_spec(d / "big.toml", BIG_SPEC)
    result = run_sweep(load(path), output=str(d / "local.h5"))
    assert result.complete and result.points == 10**6
    data, done = arrays(d / "local.h5")
    assert done.all() and done.size == 100
    return path, data


@pytest.mark.slow
def test_two_workers_bitwise(tmp_path, client, big):
    # Acceptance: 10^6 points on 2 worker processes, bitwise the single-process arrays; each
    # worker built its chunk computer once (one spec in its cache, one compiled program).
    spec_path, ref = big
    out = tmp_path / "cluster.h5"
    result = run_sweep(load(spec_path), output=str(out), backend=cluster.DaskBackend(client))
    assert result.complete and result.points_computed == 10**6 and result.chunks_computed == 100
    got, done = arrays(out)
    assert done.all()
    for q in QUANTITIES:
        assert np.array_equal(got[q], ref[q]), q
    with h5py.File(out, "r") as f:
        assert f.attrs["device"].decode().startswith("dask 2 workers, 2 threads (tcp://127.0.0.1:")

    def worker_caches():
        from jaxmi.sweep import chunks as c
        from jaxmi.sweep import cluster as cl

        return len(cl._STATE), c._chunk._cache_size()

    assert sorted(client.run(worker_caches).values()) == [(1, 1), (1, 1)]


@pytest.mark.slow
def test_worker_sigkill_mid_sweep(tmp_path, client, big):
    # One worker process is killed with SIGKILL after 3 chunks are written, while chunks are in
    # flight on it: dask recomputes them elsewhere (its nanny restarts it), the sweep completes,
    # the arrays are bitwise the single-process run's, and the file opens in h5py and xarray.
    spec_path, ref = big
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]

    class KillAfter3:
        def start(self, total, done):
            self.n = 0

        def advance(self, points):
            self.n += 1
            if self.n == 3:
                os.kill(victim, signal.SIGKILL)

        def close(self):
            pass

    out = tmp_path / "killed.h5"
    progress = KillAfter3()
    backend = cluster.DaskBackend(client, in_flight=6)
    result = run_sweep(load(spec_path), output=str(out), progress=progress, backend=backend)
    assert progress.n == 100 and result.complete
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == "zombie"
    got, done = arrays(out)
    assert done.all()
    for q in QUANTITIES:
        assert np.array_equal(got[q], ref[q]), q
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.conductance.dims == ("J", "T", "V") and ds.spin.shape == (10**5, 5, 2, 3)
        assert np.array_equal(ds.conductance.values, ref["conductance"])

    def rescheduled(dask_scheduler):
        # chunks sent to a worker more than once: those in flight on the killed one
        seen: dict = {}
        for key, _, finish, *_ in dask_scheduler.transition_log:
            if str(key).startswith("jaxmi-chunk-") and finish == "processing":
                seen[key] = seen.get(key, 0) + 1
        return [str(k) for k, n in seen.items() if n > 1]

    assert client.run_on_scheduler(rescheduled)  # the kill did hit chunks in flight
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it, for the next tests


@pytest.mark.slow
def test_client_killed_then_finished_locally(tmp_path, cli_env, big):  # noqa: F811
    # `jaxmi run --cluster local:2` (its own LocalCluster) killed with SIGKILL after a few
    # chunks: its worker processes exit with it; the same command without --cluster finishes the
    # file with the local engine, bitwise the single-process run.
    spec_path, ref = big
    out = tmp_path / "big.h5"
    proc = subprocess.Popen(
        [*jaxmi_command(), "run", spec_path, "-o", out, "-q", "--cluster", "local:2"],
        env=cli_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = []
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            assert proc.poll() is None, proc.communicate()
            try:
                started = psutil.Process(proc.pid).children(recursive=True)
                with h5py.File(out, "r", locking=False) as f:
                    if f["sweep/chunks_done"][...].sum() >= 3:
                        break
            except (OSError, KeyError, psutil.Error):
                pass
            time.sleep(0.02)
        else:
            pytest.fail("no progress")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert len(started) >= 2  # the worker processes (and their helpers)
    _, done = arrays(out)
    assert 0 < done.sum() < done.size, done.sum()
    gone = psutil.wait_procs(started, timeout=30)[1]
    assert not gone, f"still running after the client died: {[p.pid for p in gone]}"

    final = run_cli(["run", spec_path, "-o", out], cli_env, cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert final.stdout.startswith(f"resumed and completed {out}: 1000000 points")
    got, done = arrays(out)
    assert done.all()
    for q in QUANTITIES:
        assert np.array_equal(got[q], ref[q]), q


def failing_task(spec_text, spec_path, block, i, cache=False):
    """compute_chunk, but chunk 7 raises (fault injection)."""
    if i == 7:
        raise RuntimeError("injected failure")
    return cluster.compute_chunk(spec_text, spec_path, block, i, cache)


def nan_task(spec_text, spec_path, block, i, cache=False):
    """compute_chunk, but chunk 5 returns a NaN (fault injection)."""
    values = cluster.compute_chunk(spec_text, spec_path, block, i, cache)
    if i == 5:
        values["conductance"] = values["conductance"].copy()
        values["conductance"][0, 0, 0] = np.nan
    return values


@pytest.mark.slow
def test_failing_chunk_is_reported_not_recorded(tmp_path, client):
    # A chunk raising on a worker, and a chunk whose result holds a NaN: each stops the run with
    # one line naming the chunk and its J/T/u index ranges; it is not marked done; the tasks
    # still in flight are cancelled; a clean run then completes the same file.
    spec_path = write_spec(tmp_path / "small.toml", SMALL_SPEC)
    spec = load(spec_path)
    g = grid.build(spec)
    layout = chunks.plan(g.shape, spec.chunk)
    assert layout.n_chunks == 24
    out = tmp_path / "small.h5"

    def jaxmi_tasks(dask_scheduler):
        return [k for k in dask_scheduler.tasks if str(k).startswith("jaxmi-chunk-")]

    def no_tasks_left():
        deadline = time.monotonic() + 30
        while client.run_on_scheduler(jaxmi_tasks) and time.monotonic() < deadline:
            time.sleep(0.1)
        return client.run_on_scheduler(jaxmi_tasks) == []

    backend = cluster.DaskBackend(client, task=failing_task, in_flight=4)
    with pytest.raises(ClusterError) as info:
        run_sweep(spec, output=str(out), backend=backend)
    assert str(info.value) == (
        f"{spec_path}: chunk 7 of 24 failed on a worker (RuntimeError: injected failure); "
        f"chunk not written: {chunk_ranges(7, layout, g)}"
    )
    assert str(info.value).endswith(
        "chunk not written: J[0:4] (Jx 0.1..0.4, Jy 0.1..0.4, Jz 0.1..0.4), T[1:2] "
        "(0.068..0.068), u[3:4] (3..3)"
    )
    _, done = arrays(out)
    assert not done[7] and done.sum() < 24
    assert no_tasks_left()

    nan_out = tmp_path / "nan.h5"
    backend = cluster.DaskBackend(client, task=nan_task, in_flight=4)
    with pytest.raises(StoreError) as info:
        run_sweep(spec, output=str(nan_out), backend=backend)
    assert str(info.value) == (
        f"{nan_out}: chunk 5 of 24 produced NaN in conductance at 1 point(s); chunk not written: "
        f"{chunk_ranges(5, layout, g)}"
    )
    _, done = arrays(nan_out)
    assert not done[5] and done.sum() < 24
    assert no_tasks_left()

    result = run_sweep(spec, output=str(out), backend=cluster.DaskBackend(client))
    assert result.complete and result.points_computed < result.points


SLURM_GPU = """
    [slurm]
    queue = "gpu"
    account = "phys-123"
    walltime = "02:00:00"
    cores = 16
    memory = "64GB"
    gpus = 4
    jobs = 3
    prologue = ["module load cuda/12.4", "source $HOME/venvs/jaxmi/bin/activate"]
    env = { XLA_PYTHON_CLIENT_MEM_FRACTION = "0.9" }
    job_extra = ["--constraint=a100"]
    python = "python3"
"""


def test_slurm_gpu_job_script(tmp_path, cli_env):  # noqa: F811
    # `jaxmi cluster job-script` prints what dask-jobqueue would submit; no batch system needed.
    path = write_spec(tmp_path / "gpu.toml", SLURM_GPU)
    proc = run_cli(["cluster", "job-script", path], cli_env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    for directive in (
        "#SBATCH -J jaxmi",
        "#SBATCH -p gpu",
        "#SBATCH -A phys-123",
        "#SBATCH -n 1",
        "#SBATCH --cpus-per-task=16",
        "#SBATCH --mem=60G",
        "#SBATCH -t 02:00:00",
        "#SBATCH --constraint=a100",
        "#SBATCH --gres=gpu:4",
    ):
        assert directive in lines, directive
    prologue = [
        "module load cuda/12.4",
        "source $HOME/venvs/jaxmi/bin/activate",
        "export XLA_PYTHON_CLIENT_PREALLOCATE=false",
        "export XLA_PYTHON_CLIENT_MEM_FRACTION=0.9",
    ]
    assert [ln for ln in lines if ln in prologue] == prologue  # in this order
    worker = lines[-1]
    assert worker.startswith(
        f"python3 -m distributed.cli.dask_worker {cluster.SCHEDULER_PLACEHOLDER} --name jaxmi "
    )
    for arg in ("--nthreads 4", "--nworkers 4", "--nanny", "--resources GPU=1"):
        assert arg in worker, arg
    assert lines.index(prologue[-1]) < len(lines) - 1  # the environment is set before the worker
    assert "SCHEDULER-ADDRESS" in proc.stderr

    # PBS: the GPUs go to the select statement.
    pbs = write_spec(tmp_path / "pbs.toml", SLURM_GPU.replace("[slurm]", "[pbs]"))
    script = cluster.job_script(str(pbs))
    assert "#PBS -l select=1:ncpus=16:ngpus=4:mem=60GB" in script.splitlines()
    target = cluster.load_file(str(pbs))
    assert target.jobqueue.jobs == 3 and target.jobqueue.gpus == 4


BAD_FILES = [
    ("", 'needs exactly one of address = "tcp://HOST:PORT", [slurm] and [pbs], got none'),
    (
        'address = "tcp://127.0.0.1:1"\n[slurm]\ncores = 1\nmemory = "1GB"\n',
        'needs exactly one of address = "tcp://HOST:PORT", [slurm] and [pbs], got address and '
        "slurm",
    ),
    (
        "adress = 1\n",
        'unknown key "adress" at the top level; did you mean "address"? (allowed: '
        "address, slurm, pbs, in_flight)",
    ),
    ("address = 3\n", 'address must be a scheduler address "tcp://HOST:PORT", got 3'),
    (
        'address = "bogus://x"\n',
        'address must be a scheduler address "tcp://HOST:PORT", got "bogus://x" (the scheme '
        "'bogus://' is not supported, only tcp://)",
    ),
    ('[slurm]\nmemory = "1GB"\n', "[slurm] needs cores (CPU cores per job), e.g. cores = 16"),
    ('[slurm]\ncores = 0\nmemory = "1GB"\n', "[slurm].cores must be a positive integer, got 0"),
    (
        "[pbs]\ncores = 4\nmemory = 12\n",
        '[pbs].memory must be a size such as "64GB" or "500MiB", got 12',
    ),
    (
        '[slurm]\ncores = 4\nmemory = "8GB"\ngpus = 2\nprocesses = 4\n',
        "[slurm].processes must equal gpus (2) in a GPU job (one worker process per GPU), got 4",
    ),
    (
        '[slurm]\ncores = 4\nmemory = "8GB"\nwalltime = "2h"\n',
        '[slurm].walltime must look like "HH:MM:SS" or "D-HH:MM", got "2h"',
    ),
    (
        '[slurm]\ncores = 4\nmemory = "8GB"\nqueu = "gpu"\n',
        'unknown key "queu" in [slurm]; did '
        'you mean "queue"? (allowed: queue, account, walltime, cores, memory, gpus, processes, '
        "jobs, env, prologue, job_extra, python, interface, local_directory, log_directory)",
    ),
    (
        '[slurm]\ncores = 4\nmemory = "8GB"\njobs = -1\n',
        "[slurm].jobs must be a positive integer, got -1",
    ),
    (
        '[slurm]\ncores = 4\nmemory = "8GB"\nenv = { A = true }\n',
        "[slurm].env.A must be a string or a number, got true",
    ),
    ("[slurm\n", "is not valid TOML: "),
]


@pytest.mark.parametrize("text, expected", BAD_FILES)
def test_bad_cluster_file(tmp_path, capsys, text, expected):
    # Each malformed cluster file fails with one line naming the file and the key, exit 2,
    # before anything is started.
    from jaxmi.cli import main

    spec = write_spec(tmp_path / "s.toml", SMALL_SPEC)
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert main(["run", str(spec), "-o", str(tmp_path / "o.h5"), "--cluster", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jaxmi: error: {bad}: {expected}") and err.count("\n") == 1, err
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.parametrize(
    "value, expected",
    [
        ("local:0", "--cluster local:N needs a positive number of workers N, got 'local:0'"),
        (
            "nowhere",
            "--cluster must be local, local:N, a scheduler address (tcp://HOST:PORT) or "
            "a cluster file (.toml), got 'nowhere'",
        ),
        (
            "tcp://host",
            "--cluster 'tcp://host': expected HOST:PORT after tcp://, e.g. tcp://10.0.0.5:8786 "
            "(allowed: local, local:N, a scheduler address tcp://HOST:PORT (or HOST:PORT), or a "
            "cluster file FILE.toml)",
        ),
        ("host:70000", "--cluster 'host:70000': port 70000 is outside 1..65535 (allowed: "),
    ],
)
def test_bad_cluster_value(tmp_path, capsys, value, expected):
    from jaxmi.cli import main

    spec = write_spec(tmp_path / "s.toml", SMALL_SPEC)
    assert main(["run", str(spec), "--cluster", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jaxmi: error: {expected}") and err.count("\n") == 1, err


def test_missing_extra_is_one_line(tmp_path):
    # Without dask.distributed (simulated: None in sys.modules makes the import fail),
    # --cluster and `cluster job-script` fail with one line naming the extra, exit 2.
    spec = write_spec(tmp_path / "s.toml", SMALL_SPEC)
    gpu = write_spec(tmp_path / "gpu.toml", SLURM_GPU)
    for blocked, args in (
        ("distributed", ["run", str(spec), "--cluster", "local:2"]),
        ("dask_jobqueue", ["cluster", "job-script", str(gpu)]),
    ):
        code = (
            f"import sys; sys.modules[{blocked!r}] = None\n"
            "from jaxmi.cli import main\n"
            f"raise SystemExit(main({args!r}))\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("jaxmi: error: ")
        assert proc.stderr.rstrip().endswith("install it with: pip install 'jaxmi[cluster]'")
        assert "not installed" in proc.stderr
        assert not (tmp_path / "s.h5").exists()
