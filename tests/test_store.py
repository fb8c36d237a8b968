"""The sweep engine and its HDF5 store, in-process: values against the direct path, the file
layout seen by xarray, NaN refusal, and never clobbering a file.

All sweeps here have 5 couplings and chunk = 4, so every one uses the chunk block (3, 1, 1)
(J padded: 5 = 3 + 2) and compiles once per test session.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import xarray as xr
from sweep_helpers import make, read

import jaxmi
from jaxmi.errors import StoreError
from jaxmi.sweep import chunks, store
from jaxmi.sweep.run import run_sweep

J_CASES = """
[J]
cases = [
    {name = "iso", J = [0.25, 0.25, 0.25]},
    {name = "xz", J = [0.25, 0.0, 0.35]},
    {name = "general", J = [0.3, -0.1, 0.2]},
    {name = "dephasing", J = [0.25, 0.0, 0.0]},
    {name = "zero", J = [0.0, 0.0, 0.0]},
]
[numerics]
chunk = 4
"""

SMALL = (
    J_CASES
    + """
[T]
values = [0.0, 0.05, 0.2]
[V]
values = [-0.3, 0.0, 0.5]
"""
)

U_AXIS = (
    J_CASES
    + """
[T]
values = [0.02, 0.1]
[u]
values = [0.5, 3.0]
"""
)


def test_sweep_equals_direct_path(tmp_path):
    # The sweep (factorized path, chunked, J-padded last block) against jaxmi.evaluate (direct
    # path, one point at a time) on a grid with T = 0, V < 0, V > 0 and degenerate couplings.
    # Tolerance 1e-13 of each quantity's largest magnitude: the two paths differ only by the
    # order of float64 operations (~1e-15 relative), while a wrongly placed or padded chunk
    # would be off by O(1).
    s = make(tmp_path, SMALL)
    layout = chunks.plan(s.shape, s.chunk)
    assert layout.block == (3, 1, 1) and layout.shape[0] % layout.block[0] != 0  # padded
    result = run_sweep(s, output=str(tmp_path / "out.h5"))
    assert result.complete and result.points_computed == 45 and result.chunks_computed == 18
    got = read(tmp_path / "out.h5")

    with h5py.File(tmp_path / "out.h5", "r") as f:
        J = np.stack([f["Jx"][...], f["Jy"][...], f["Jz"][...]], axis=-1)
        T, V = f["T"][...], f["V"][...]
    ref = jaxmi.evaluate(J[:, None, None, :], T[None, :, None], V[None, None, :])
    for q in ("conductance", "current", "spin"):
        want = np.asarray(getattr(ref, q))
        assert got[q].shape == want.shape and got[q].dtype == np.float64
        scale = np.abs(want).max()
        assert np.abs(got[q] - want).max() <= 1e-13 * scale, q


def test_file_layout_u_axis(tmp_path):
    # The DESIGN.md section 4 layout, as xarray sees it: dims (J, T, u), coordinates T, u,
    # Jx, Jy, Jz, J_name and the 2-D V(T, u) = 2 u T (exactly: the same float64 product the
    # grid uses), units attributes, metadata, HDF5 chunks = the compute chunks.
    s = make(tmp_path, U_AXIS)
    out = tmp_path / "u.h5"
    run_sweep(s, output=str(out))
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.conductance.dims == ("J", "T", "u")
        assert ds.spin.dims == ("J", "T", "u", "component")
        assert {"T", "u", "V", "Jx", "Jy", "Jz", "J_name"} <= set(ds.coords)
        assert ds.V.dims == ("T", "u")
        np.testing.assert_array_equal(
            ds.V.values, 2.0 * ds.u.values[None, :] * ds.T.values[:, None]
        )
        assert list(ds.J_name.values) == ["iso", "xz", "general", "dephasing", "zero"]
        # CF: every variable and coordinate has units ("1": the engine's numbers are
        # dimensionless), a short long_name that says the unit, a comment that explains it.
        assert ds.attrs["Conventions"] == "CF-1.10"
        for name in [*ds.data_vars, *ds.coords]:
            assert ds[name].attrs["units"] == "1", name
            assert len(ds[name].attrs["long_name"]) <= 20 and ds[name].attrs["comment"], name
        assert ds.conductance.attrs["long_name"] == "dG / (e^2/h)"
        assert ds.T.attrs["long_name"] == "T / vF k0"
        # str attributes throughout (no bytes); lists of str; numbers
        for k, v in ds.attrs.items():
            assert not isinstance(v, bytes | np.bytes_), k
            assert not isinstance(v, list) or all(isinstance(x, str) for x in v), k
        assert isinstance(ds.attrs["created"], str) and isinstance(ds.attrs["device"], str)
        assert int(ds.attrs["complete"]) == 1 and ds.attrs["precision"] == "float64"
        assert ds.attrs["spec"] == s.text and ds.attrs["spec_sha256"] == s.sha256
        assert int(ds.attrs["quadrature_order"]) == 16
        assert ds.attrs["jaxmi_version"] == jaxmi.__version__
        assert ds.attrs["device"].startswith("cpu x")
        assert float(ds.attrs["wall_time_s"]) > 0 and len(ds.attrs["finished"]) == 20
    with h5py.File(out, "r") as f:
        assert f["conductance"].chunks == (3, 1, 1) and f["spin"].chunks == (3, 1, 1, 3)
        assert f["sweep/chunks_done"][...].all()


def test_quantities_subset(tmp_path):
    # Only the quantities the spec asks for become datasets.
    s = make(tmp_path, 'quantities = ["current"]\n' + U_AXIS)
    run_sweep(s, output=str(tmp_path / "q.h5"))
    assert set(read(tmp_path / "q.h5")) == {"current"}


def test_nan_chunk_is_not_written(tmp_path, monkeypatch):
    # A chunk with NaN stops the run with a StoreError naming the chunk and its J/T/V ranges;
    # the chunk stays unmarked, earlier chunks stay, and the file still opens.
    s = make(tmp_path, U_AXIS)
    original = chunks.Computer.result

    def poisoned(self, handle):
        values = original(self, handle)
        if handle[0] == 2:
            values["conductance"] = values["conductance"].copy()
            values["conductance"][0, 0, 0] = np.nan
        return values

    monkeypatch.setattr(chunks.Computer, "result", poisoned)
    out = tmp_path / "nan.h5"
    with pytest.raises(StoreError) as info:
        run_sweep(s, output=str(out))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{out}: chunk 2 of 8 produced NaN in conductance at 1 point(s)")
    assert "J[0:3] (Jx 0.25..0.3, Jy -0.1..0.25, Jz 0.2..0.35), T[1:2] (0.1..0.1)" in message
    assert message.endswith("u[0:1] (0.5..0.5)")
    with h5py.File(out, "r") as f:
        done = f["sweep/chunks_done"][...]
        assert done.tolist() == [1, 1, 0, 0, 0, 0, 0, 0] and int(f.attrs["complete"]) == 0


def test_never_clobbers(tmp_path):
    # An existing file of another spec, a non-HDF5 file and a foreign HDF5 file at the output
    # path are refused (byte-identical afterwards); --overwrite replaces them.
    out = tmp_path / "x.h5"
    run_sweep(make(tmp_path, U_AXIS, "a.toml"), output=str(out))
    before = out.read_bytes()
    other = make(tmp_path, U_AXIS.replace("3.0", "4.0"), "b.toml")
    with pytest.raises(StoreError, match="exists and holds a sweep of another spec"):
        run_sweep(other, output=str(out))
    with pytest.raises(StoreError, match="was started with chunks of"):
        run_sweep(make(tmp_path, U_AXIS, "a.toml"), output=str(out), chunk=5)
    assert out.read_bytes() == before

    text = tmp_path / "notes.h5"
    text.write_text("my notes\n")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(3)
    for victim in (text, foreign):
        content = victim.read_bytes()
        with pytest.raises(StoreError, match="exists and is not a jaxmi sweep file"):
            run_sweep(other, output=str(victim))
        assert victim.read_bytes() == content

    result = run_sweep(other, output=str(out), overwrite=True)
    assert result.complete and result.points_computed == other.n_points
    with h5py.File(out, "r") as f:
        assert f.attrs["spec_sha256"] == other.sha256


def test_resume_skips_done_chunks(tmp_path):
    # A second run of the same spec computes nothing; one with chunks unmarked recomputes only
    # those, and the values are bitwise those of the first run (same program, same chunk).
    s = make(tmp_path, U_AXIS)
    out = tmp_path / "r.h5"
    run_sweep(s, output=str(out))
    first = read(out)
    again = run_sweep(s, output=str(out))
    assert again.complete and again.points_computed == 0
    with h5py.File(out, "r+") as f:
        f["sweep/chunks_done"][3:6] = 0
        f["conductance"][...] = 0.0  # what an unmarked chunk holds does not matter
    resumed = run_sweep(s, output=str(out))
    assert resumed.chunks_computed == 3
    got = read(out)
    with h5py.File(out, "r") as f:
        done_region = [chunks.plan(s.shape, s.chunk).region(i) for i in range(3, 6)]
    for q in first:
        if q == "conductance":
            for r in done_region:
                assert np.array_equal(got[q][r], first[q][r])
        else:
            assert np.array_equal(got[q], first[q])


def test_creation_is_atomic(tmp_path, monkeypatch):
    # A failure while the skeleton is written leaves nothing at the target (the skeleton is
    # written under a temporary name and linked into place), and stale temporaries of killed
    # creators are removed by the next run.
    s = make(tmp_path, U_AXIS)
    out = tmp_path / "c.h5"

    def boom(path, sk):
        with h5py.File(path, "w", locking=False) as f:
            f["half"] = np.arange(3)
        raise OSError("disk full")

    monkeypatch.setattr(store, "_write_skeleton", boom)
    with pytest.raises(OSError, match="disk full"):
        run_sweep(s, output=str(out))
    assert list(tmp_path.glob("c.h5*")) == []
    monkeypatch.undo()

    stale = tmp_path / "c.h5.tmp-999999"
    stale.write_bytes(b"half a file")
    assert run_sweep(s, output=str(out)).complete
    assert not stale.exists()


def test_summary(tmp_path):
    s = make(tmp_path, U_AXIS)
    out = tmp_path / "i.h5"
    run_sweep(s, output=str(out))
    info = store.summary(str(out))
    assert info["dims"] == {"J": 5, "T": 2, "u": 2} and info["complete"]
    assert info["model"] is None and "model" not in info["attrs"]  # no [model]: the paper's
    assert (
        info["coords"]["V"] == (2 * 0.5 * 0.02, 2 * 3.0 * 0.1)
        and info["chunks_done"] == info["chunks"] == 8
    )
    with pytest.raises(StoreError, match="no such file"):
        store.summary(str(tmp_path / "missing.h5"))


def test_summary_of_a_foreign_file_says_so_once(tmp_path):
    # A non-jaxmi HDF5 file: one clear message, not wrapped in a second "cannot be read" one.
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(StoreError) as info:
        store.summary(str(path))
    assert str(info.value) == f"{path}: is not a jaxmi sweep file (no jaxmi_format attribute)"


def test_line_progress_prints_the_final_line_once():
    import io

    from jaxmi.sweep.run import LineProgress

    stream = io.StringIO()
    p = LineProgress(stream, interval=0.0)
    p.start(total=10, done=0)
    p.advance(10)  # interval 0: prints "10/10 points ..." after "compiling ..."
    p.close()
    p.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("10/10 points")
