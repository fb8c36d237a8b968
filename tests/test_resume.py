"""Interrupted runs, resumed: kill -9 at random moments, Ctrl-C, a second writer, and the
number of devices. Real processes (the installed ``jaxmi`` script), real signals.

Bitwise equality is the right check here, not a tolerance: a resumed run computes each missing
chunk with the same compiled program on the same inputs as an uninterrupted run.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest
from sweep_helpers import SLOW_SPEC, cli_env, jaxmi_command, run_cli, write_spec  # noqa: F401

from jaxmi.devices import usable_cores

QUANTITIES = ("conductance", "current", "spin")


def arrays(path):
    with h5py.File(path, "r") as f:
        return {q: f[q][...] for q in QUANTITIES}, f["sweep/chunks_done"][...]


def start(args, env, cwd):
    return subprocess.Popen(
        [*jaxmi_command(), *map(str, args)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def chunks_done(path) -> int:
    """Chunks marked done, read without locking (the writer holds the file), or -1."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f["sweep/chunks_done"][...].sum())
    except (OSError, KeyError):
        return -1


def wait_for_progress(path, proc, minimum=3, timeout=120.0):
    """Wait until the running sweep has written at least ``minimum`` chunks."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.communicate()}")
        if chunks_done(path) >= minimum:
            return
        time.sleep(0.05)
    pytest.fail("no progress")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cli_env):  # noqa: F811
    """An uninterrupted run of SLOW_SPEC: (spec path, arrays, wall seconds of the command)."""
    d = tmp_path_factory.mktemp("reference")
    spec = write_spec(d / "slow.toml", SLOW_SPEC)
    t0 = time.monotonic()
    proc = run_cli(["run", spec, "-q"], cli_env, cwd=d)
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    data, done = arrays(d / "slow.h5")
    assert done.all() and done.size == 360
    return spec, data, wall


@pytest.mark.slow
def test_sigkill_at_random_moments(tmp_path, cli_env, reference):  # noqa: F811
    # kill -9 once in mid-sweep for certain, then at seeded random moments (fractions of an
    # uninterrupted run's duration, so some land during start-up or file creation), re-running
    # the same command each time: every interrupted file opens with h5py (with HDF5's own
    # locking: no stale lock), and the finished arrays are bitwise the reference's.
    spec, ref, wall = reference
    out = tmp_path / "slow.h5"
    rng = random.Random(20240607)
    delays = [None] + [rng.uniform(0.05, 0.9) * wall for _ in range(4)]
    states = []
    for delay in delays:
        proc = start(["run", spec, "-o", out, "-q"], cli_env, tmp_path)
        try:
            if delay is None:
                wait_for_progress(out, proc, minimum=3)
            else:
                time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        states.append(chunks_done(out))
        if out.exists():
            with h5py.File(out, "r") as f:
                assert f["sweep/chunks_done"].shape == (360,)
    assert 0 < states[0] < 360, states  # the first kill hit a partly written file
    final = run_cli(["run", spec, "-o", out, "-q"], cli_env, cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    got, done = arrays(out)
    assert done.all()
    for q in QUANTITIES:
        assert np.array_equal(got[q], ref[q]), q
    assert not list(tmp_path.glob("*.tmp-*"))  # stale temporaries are cleaned up


def test_ctrl_c_is_clean_and_resumable(tmp_path, cli_env, reference):  # noqa: F811
    # SIGINT (Ctrl-C): the run stops after the chunk being written, exits 130 with one line on
    # stderr (no traceback), leaves a file that opens; the same command then completes it.
    spec, ref, _ = reference
    out = tmp_path / "slow.h5"
    proc = start(["run", spec, "-o", out, "-q"], cli_env, tmp_path)
    try:
        wait_for_progress(out, proc)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr
    assert lines[0].startswith("jaxmi: interrupted: ") and lines[0].endswith(
        "run the same command again to resume"
    )
    with h5py.File(out, "r") as f:
        done = f["sweep/chunks_done"][...]
        assert 0 < done.sum() < done.size and int(f.attrs["complete"]) == 0
    again = run_cli(["run", spec, "-o", out], cli_env, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.startswith(f"resumed and completed {out}")
    got, done = arrays(out)
    assert done.all() and all(np.array_equal(got[q], ref[q]) for q in QUANTITIES)


@pytest.mark.slow
def test_second_writer_is_refused(tmp_path, cli_env, reference):  # noqa: F811
    # Two real processes on one output file: the second is refused with one line while the
    # first writes (even with --overwrite), and the first finishes unharmed. The first is
    # paused (SIGSTOP) mid-sweep while the second tries, so the check cannot race its end.
    spec, ref, _ = reference
    out = tmp_path / "slow.h5"
    first = start(["run", spec, "-o", out, "-q"], cli_env, tmp_path)
    try:
        wait_for_progress(out, first)
    except BaseException:
        first.kill()
        first.communicate()
        raise
    first.send_signal(signal.SIGSTOP)
    try:
        for extra in ([], ["--overwrite"]):
            second = run_cli(["run", spec, "-o", out, *extra], cli_env, cwd=tmp_path)
            assert second.returncode == 2
            assert second.stderr == (
                f"jaxmi: error: {out}: another process is writing this file; wait for it to "
                "finish, or write elsewhere with -o\n"
            )
    finally:
        first.send_signal(signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    got, done = arrays(out)
    assert done.all() and all(np.array_equal(got[q], ref[q]) for q in QUANTITIES)


@pytest.mark.slow
def test_one_and_four_devices_bitwise(tmp_path, cli_env):  # noqa: F811
    # Chunks are dispatched round-robin over jax.local_devices(), each device running the same
    # single-device program on whole chunks: 4 host devices give the 1-device bits exactly. The
    # CLI's default is one host device per usable core (jaxmi.devices), unless XLA_FLAGS says.
    fig = tmp_path / "small.toml"
    # 20 chunks over 4 devices; a subset of SLOW_SPEC's grid keeps the run short.
    write_spec(fig, SLOW_SPEC.replace("num = 60", "num = 5"))
    flag = "--xla_force_host_platform_device_count"
    envs = {
        "one": (dict(cli_env, XLA_FLAGS=f"{flag}=1"), 1),
        "four": (dict(cli_env, XLA_FLAGS=f"{flag}=4"), 4),
        "default": (cli_env, usable_cores()),
    }
    runs = {}
    for name, (env, count) in envs.items():
        out = tmp_path / f"{name}.h5"
        proc = run_cli(["run", fig, "-o", out, "-q"], env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        runs[name] = arrays(out)[0]
        with h5py.File(out, "r") as f:
            assert f.attrs["device"].decode().startswith(f"cpu x{count} ")
    for q in QUANTITIES:
        assert np.array_equal(runs["one"][q], runs["four"][q]), q
        assert np.array_equal(runs["one"][q], runs["default"][q]), q
