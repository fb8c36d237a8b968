"""Data safety of the sweep store under faults and mistakes (jaxmi.sweep.store, .budget).

Fault injection: a file-size limit (RLIMIT_FSIZE) on a child ``jaxmi run`` makes every write at
an offset beyond the limit fail with EFBIG, also overwrites inside an existing file, so a chunk
write fails in the middle of a run without privileges. Where the test runs as root and may
mount, a 2 MB tmpfs gives a real full disk as well. Each fault must end in one line (exit 2), no
chunk recorded that was not written, and a resume that ends bitwise identical to an
uninterrupted run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from sweep_helpers import (  # noqa: F401
    cli_env,
    cli_sweep,
    jaxmi_command,
    partial_run,
    read,
    run_cli,
    write_spec,
)

from jaxmi.sweep import budget, grid
from jaxmi.sweep import spec as spec_mod

# 4 J x 10 T x 2 V in 20 chunks of 4 J x 1 T x 1 V: a few seconds, chunks written in order.
FAULT_SPEC = """
    [J]
    isotropic = {start = 0.1, stop = 0.4, num = 4}
    [T]
    start = 0.02
    stop = 0.3
    num = 10
    [V]
    values = [0.0, 0.2]
    [numerics]
    chunk = 4
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cli_env):  # noqa: F811
    """An uninterrupted CLI run of FAULT_SPEC on a roomy disk: (spec path, arrays)."""
    spec, out = cli_sweep(tmp_path_factory.mktemp("fault-reference"), FAULT_SPEC, cli_env, "ref")
    return spec, read(out)


# Sets the limit, then becomes the command (exec: no fork in the test process, where JAX runs).
_WITH_LIMIT = (
    "import os, resource, sys; "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY)); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def _run_limited(args, env, limit: int, cwd=None) -> subprocess.CompletedProcess:
    """``jaxmi ARGS`` in a child whose writes beyond ``limit`` bytes of any file fail (EFBIG)."""
    command = jaxmi_command()
    command[0] = shutil.which(command[0]) or command[0]
    return subprocess.run(
        [sys.executable, "-c", _WITH_LIMIT, str(limit), *command, *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("jaxmi: error: ")
    return lines[0]


def _skeleton_only(spec_path, out) -> None:
    """Create ``out`` as a run of the spec that stops before its first chunk."""
    result = partial_run(spec_path, out, 0)
    assert result.points_done == 0 and result.interrupted


@pytest.mark.slow
def test_write_fails_mid_run_then_resumes_bitwise(tmp_path, cli_env, reference):  # noqa: F811
    # The limit falls at chunk 8's spin values: chunks 0-7 are written, chunk 8 fails after its
    # conductance and current went in; it must not be recorded, and nothing after it either.
    spec, ref = reference
    out = tmp_path / "fault.h5"
    _skeleton_only(spec, out)
    layout = grid.plan(spec_mod.load(spec).shape, 4)
    with h5py.File(out, "r") as f:
        start = tuple(r.start for r in layout.region(8)) + (0,)
        limit = f["spin"].id.get_chunk_info_by_coord(start).byte_offset
        assert limit > f["sweep/chunks_done"].id.get_offset()  # the record lies before the data
    size_before = out.stat().st_size

    proc = _run_limited(["run", spec, "-o", out, "-q"], cli_env, limit)
    line = _one_error_line(proc)
    assert f"{out}: writing chunk 8 failed: File too large" in line
    assert "keeps its 8 chunk(s) written before" in line
    assert line.endswith(f"run the same command again to resume: jaxmi run {spec} -o {out} -q")
    assert out.stat().st_size == size_before  # the file was allocated whole at creation

    with h5py.File(out, "r") as f:
        done = f["sweep/chunks_done"][...]
        assert done.tolist() == [1] * 8 + [0] * 12
        assert int(f.attrs["complete"]) == 0 and int(f.attrs["runs"]) == 2
        for i in range(8):
            region = layout.region(i)
            for q, arr in ref.items():
                assert np.array_equal(f[q][region], arr[region])
        for i in range(9, 20):  # never reached: still NaN for every reader
            assert np.isnan(f["conductance"][layout.region(i)]).all()

    again = run_cli(["run", spec, "-o", out, "-q"], cli_env)
    assert again.returncode == 0 and again.stderr == "", again.stderr
    got = read(out)
    for q, arr in ref.items():
        assert got[q].tobytes() == arr.tobytes(), q


@pytest.mark.slow
def test_fresh_run_over_a_size_limit_creates_nothing(tmp_path, cli_env, reference):  # noqa: F811
    # A file-size limit below the file: refused while reserving the space, before HDF5 writes;
    # no output and no temporary is left; without the limit the same command completes.
    spec, ref = reference
    out = tmp_path / "fresh.h5"
    proc = _run_limited(["run", spec, "-o", out], cli_env, 64 * 1024)
    line = _one_error_line(proc)
    assert f"{out}: the sweep file needs" in line and "File too large" in line
    assert list(tmp_path.iterdir()) == []
    again = run_cli(["run", spec, "-o", out, "-q"], cli_env)
    assert again.returncode == 0, again.stderr
    got = read(out)
    for q, arr in ref.items():
        assert got[q].tobytes() == arr.tobytes(), q


def _mount_tmpfs(path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return proc.returncode == 0


# 8000 J x 10 T x 3 V = 2.4e5 points, ~10 MB: five times a 2 MB tmpfs.
BIG_SPEC = """
    [J.product]
    Jx = { start = 0.01, stop = 0.5, num = 20 }
    Jy = { start = 0.0, stop = 0.5, num = 20 }
    Jz = { start = -0.5, stop = 0.5, num = 20 }
    [T]
    start = 0.01
    stop = 0.3
    num = 10
    [V]
    values = [0.0, 0.1, 0.2]
    [numerics]
    chunk = 65536
"""


@pytest.mark.slow
def test_full_disk_tmpfs(tmp_path, cli_env):  # noqa: F811
    # A real full disk (root only: a 2 MB tmpfs). Fresh run: refused before any file exists;
    # after space is freed the same command runs. Resume onto a disk that filled up meanwhile:
    # completes, since the file took its space when it was created. Both bitwise equal to a run
    # on a roomy disk. With --force and 16 kB free: refused cleanly before HDF5 writes.
    mnt = tmp_path / "mnt"
    if not _mount_tmpfs(mnt, "2m"):
        pytest.skip("needs root and a mountable tmpfs (the file-size-limit tests cover CI)")
    try:
        spec = write_spec(tmp_path / "big.toml", BIG_SPEC)
        proc = run_cli(["run", spec, "-o", tmp_path / "ref.h5", "-q"], cli_env)
        assert proc.returncode == 0, proc.stderr
        ref = read(tmp_path / "ref.h5")
        out = mnt / "big.h5"

        line = _one_error_line(run_cli(["run", spec, "-o", out], cli_env))
        assert f"{out}: 240000 points (J x T x V = 8000 x 10 x 3), 9.9 MB on disk" in line
        assert f"{mnt} has 2.1 MB free" in line
        assert list(mnt.iterdir()) == []

        filler = mnt / "filler"
        filler.write_bytes(b"\0" * (2048 - 16) * 1024)
        line = _one_error_line(run_cli(["run", spec, "-o", out, "--force"], cli_env))
        assert "No space left on device" in line
        assert sorted(p.name for p in mnt.iterdir()) == ["filler"]
        filler.unlink()

        subprocess.run(["mount", "-o", "remount,size=12m", str(mnt)], check=True)
        proc = run_cli(["run", spec, "-o", out, "-q"], cli_env)
        assert proc.returncode == 0, proc.stderr
        got = read(out)
        for q, arr in ref.items():
            assert got[q].tobytes() == arr.tobytes(), q
        out.unlink()

        _skeleton_only(spec, out)  # created with room, then the disk fills up
        with open(mnt / "filler", "wb") as f, pytest.raises(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        assert budget.free_disk(str(mnt)) < 65536
        proc = run_cli(["run", spec, "-o", out, "-q"], cli_env)
        assert proc.returncode == 0, proc.stderr
        got = read(out)
        for q, arr in ref.items():
            assert got[q].tobytes() == arr.tobytes(), q
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


# --- pre-flight ---------------------------------------------------------------------------------

HUGE = {
    # 1e12 (T, V) pairs: the V coordinate alone would be 8 TB of memory.
    "1e12 T x V": (
        "[J]\nisotropic = {values = [0.25]}\n[T]\nstart = 0.01\nstop = 0.3\nnum = 1000000\n"
        "[V]\nstart = 0.0\nstop = 1.0\nnum = 1000000\n",
        "1.0e12 points (J x T x V = 1 x 1000000 x 1000000), 40 TB on disk, 8.0 TB of memory",
    ),
    # 1e18 couplings.
    "1e18 J": (
        "[J.product]\nJx = {start = 0, stop = 1, num = 1000000}\n"
        "Jy = {start = 0, stop = 1, num = 1000000}\nJz = {start = 0, stop = 1, num = 1000000}\n"
        "[T]\nvalues = [0.1]\n[V]\nvalues = [0.0]\n",
        "1.0e18 points (J x T x V = 1000000000000000000 x 1 x 1), 72 EB on disk, 32 EB of memory",
    ),
}


@pytest.mark.parametrize("case", HUGE, ids=list(HUGE))
def test_preflight_refuses_huge_grids_at_once(case, tmp_path, cli_env):  # noqa: F811
    # One line with the estimate, nothing created, and before JAX or h5py are even imported:
    # the refusal is arithmetic on the spec (the whole command takes ~0.2 s on a 2-core CPU).
    text, expected = HUGE[case]
    spec = tmp_path / "huge.toml"
    spec.write_text(text)
    line = _one_error_line(run_cli(["run", spec, "-o", tmp_path / "huge.h5"], cli_env))
    assert f"{spec}: {expected}" in line, line
    assert "split the sweep" in line and "--force" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.toml"]
    code = (
        "import sys; from jaxmi.cli import main; rc = main(sys.argv[1:]); "
        "assert not {'jax', 'h5py'} & set(sys.modules), 'imported'; sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", str(spec), "-o", str(tmp_path / "huge.h5")],
        env=cli_env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "imported" not in proc.stderr, proc.stderr
    # --dry-run prints the same estimate and stops (exit 0), refusal or not; nothing created.
    dry = run_cli(["run", spec, "-o", tmp_path / "huge.h5", "--dry-run"], cli_env)
    assert dry.returncode == 0 and dry.stderr == "", dry.stderr
    assert dry.stdout.startswith(f"{spec}: {expected}") and "chunks; output " in dry.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.toml"]


def test_preflight_refuses_a_file_larger_than_the_disk(tmp_path, cli_env):  # noqa: F811
    # 1e12 points with small coordinates (1e6 J x 1e4 T x 100 V): fits memory, not the disk.
    spec = tmp_path / "wide.toml"
    spec.write_text(
        "[J.product]\nJx = {start = 0, stop = 1, num = 100}\nJy = {start = 0, stop = 1, num = 100}"
        "\nJz = {start = 0, stop = 1, num = 100}\n[T]\nstart = 0.01\nstop = 0.3\nnum = 10000\n"
        "[V]\nstart = 0.0\nstop = 1.0\nnum = 100\n"
    )
    out = tmp_path / "wide.h5"
    line = _one_error_line(run_cli(["run", spec, "-o", out], cli_env))
    assert line.startswith(f"jaxmi: error: {out}: 1.0e12 points (J x T x V = 1000000 x 10000 x")
    assert "40 TB on disk" in line and f"{tmp_path} has " in line and "B free" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.toml"]


ESTIMATE_SPECS = {
    "fig2-like cases": "[J]\ncases = [{name = 'a', J = [0.25, 0.25, 0.25]}, {J = [0.3, 0, 0.4]}]"
    "\n[T]\nstart = 0.01\nstop = 0.3\nnum = 60\n[V]\nvalues = [0.0]\n",
    "many chunks": "[J]\nisotropic = {start = 0.1, stop = 0.4, num = 4}\n[T]\nstart = 0.01\n"
    "stop = 0.3\nnum = 60\n[u]\nstart = 0.1\nstop = 3\nnum = 6\n[numerics]\nchunk = 4\n",
    "product": BIG_SPEC.replace("\n    ", "\n"),
    "tensor model, mu0 axis": "[model]\nexchange = 'tensor'\nmu0 = {start = 0, stop = 0.5, "
    "num = 5}\n[J]\nisotropic = {values = [0.2, 0.3]}\n[T]\nvalues = [0.1, 0.2]\n[V]\n"
    "values = [0.0]\nquantities = ['conductance']\n",
}


@pytest.mark.parametrize("case", ESTIMATE_SPECS, ids=list(ESTIMATE_SPECS))
def test_file_estimate_bounds_the_real_file(case, tmp_path):
    # The estimate is an upper bound of the created file (every value allocated), and not a
    # loose one: the index costs 60-70 bytes per chunk and data set (80 estimated), the fixed
    # part ~40 kB (64 kB estimated).
    text = ESTIMATE_SPECS[case]
    if case == "tensor model, mu0 axis":  # top-level keys come before the tables
        text = "quantities = ['conductance']\n" + text.replace("quantities = ['conductance']\n", "")
    (tmp_path / "s.toml").write_text(text)
    s = spec_mod.load(tmp_path / "s.toml")
    out = tmp_path / "s.h5"
    _skeleton_only(tmp_path / "s.toml", out)
    est = budget.estimate(s, grid.plan_grid(s, s.chunk))
    st = out.stat()
    assert st.st_blocks * 512 >= st.st_size - 4096  # allocated whole, not sparse
    assert st.st_size <= est.file_bytes <= 1.25 * st.st_size + 50_000, (st.st_size, est)


def test_sizes_and_counts_read_well():
    assert budget.size(512) == "512 B"
    assert budget.size(9_882_984) == "9.9 MB"
    assert budget.size(4e13) == "40 TB"
    assert budget.size(2_097_152) == "2.1 MB"
    assert budget.count(240_000) == "240000" and budget.count(10**12) == "1.0e12"


# --- what readers see ---------------------------------------------------------------------------


@pytest.mark.slow
def test_unwritten_points_are_nan_for_every_reader(tmp_path, reference):
    # An interrupted sweep: h5py and xarray (netCDF semantics, _FillValue) show NaN exactly at
    # the points of chunks not written, the computed values elsewhere; no 0.0 placeholder.
    xr = pytest.importorskip("xarray")

    spec, ref = reference
    out = tmp_path / "part.h5"
    partial_run(spec, out, 6)
    layout = grid.plan(spec_mod.load(spec).shape, 4)
    with h5py.File(out, "r") as f:
        done = f["sweep/chunks_done"][...].astype(bool)
        assert 0 < done.sum() < done.size
        assert f["conductance"].attrs["_FillValue"] != f["conductance"].attrs["_FillValue"]
    written = np.zeros(ref["conductance"].shape, bool)
    for i in np.flatnonzero(done):
        written[layout.region(i)] = True
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        for q in ("conductance", "current", "spin"):
            values = ds[q].values
            mask = written if values.ndim == 3 else written[..., None]
            mask = np.broadcast_to(mask, values.shape)
            assert np.isnan(values[~mask]).all(), q
            assert np.array_equal(values[mask], ref[q][mask]), q
            assert not (values[~mask] == 0.0).any()


# --- damaged resume records ---------------------------------------------------------------------


def _damage(path, how: str) -> None:
    with h5py.File(path, "r+") as f:
        old = f["sweep/chunks_done"][...]
        del f["sweep/chunks_done"]
        if how == "short":
            f["sweep"].create_dataset("chunks_done", data=old[:-3])
        elif how == "long":
            f["sweep"].create_dataset("chunks_done", data=np.concatenate([old, old]))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["short", "long", "missing"])
@pytest.mark.parametrize("command", ["run", "info", "plot"])
def test_damaged_resume_record_is_one_line(how, command, tmp_path, cli_env, reference):  # noqa: F811
    spec, _ = reference
    out = tmp_path / "damaged.h5"
    _skeleton_only(spec, out)
    _damage(out, how)
    before = out.read_bytes()
    args = {"run": ["run", spec, "-o", out], "info": ["info", out], "plot": ["plot", out]}
    line = _one_error_line(run_cli(args[command], cli_env))
    assert f"{out}: the resume record sweep/chunks_done " in line and "damaged" in line, line
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.h5"]


# --- silent results -----------------------------------------------------------------------------


@pytest.mark.slow
def test_sweep_outside_the_domain_warns_once(tmp_path, cli_env):  # noqa: F811
    # T = 1e3 and V = 50 lie outside the validated domain: one AccuracyWarning line with the
    # count, as the API gives for the same points; the sweep still runs.
    spec = tmp_path / "hot.toml"
    spec.write_text(
        "[J]\nisotropic = {values = [0.2, 0.3]}\n[T]\nvalues = [0.1, 1000.0]\n[V]\n"
        "values = [0.0, 50.0]\n"
    )
    proc = run_cli(["run", spec, "-o", tmp_path / "hot.h5", "-q"], cli_env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("jaxmi: AccuracyWarning: 6 point(s) outside the validated domain")


@pytest.mark.slow
def test_float32_is_refused_before_any_file(tmp_path, cli_env, reference):  # noqa: F811
    spec, _ = reference
    env = dict(cli_env, JAX_ENABLE_X64="0")
    line = _one_error_line(run_cli(["run", spec, "-o", tmp_path / "f32.h5"], env))
    assert "jaxmi needs float64 (JAX_ENABLE_X64 is off)" in line
    assert list(tmp_path.iterdir()) == []
