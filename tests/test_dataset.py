"""Sweeps from Python as xarray Datasets: jaxmi.run and jaxmi.open (jaxmi.sweep.dataset).

The reference is the CLI: ``jaxmi.run(spec)`` must give the values and coordinates of the file
``jaxmi run`` writes for the same spec, bit for bit (same program, same chunks); ``jaxmi.open``
must show NaN exactly where a file holds no computed value.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import xarray as xr
from sweep_helpers import cli_env, cli_sweep, partial_run, write_spec  # noqa: F401

import jaxmi
from jaxmi.errors import SpecError, StoreError
from jaxmi.sweep import grid, store
from jaxmi.sweep import spec as spec_mod
from jaxmi.sweep.dataset import as_spec

SPEC = {
    "description": "two couplings against T and V",
    "J": {"cases": [{"name": "iso", "J": [0.25, 0.25, 0.25]}, {"J": [0.3, 0.0, 0.4]}]},
    "T": {"start": 0.02, "stop": 0.3, "num": 5},
    "V": {"values": [0.0, 0.2]},
    "numerics": {"chunk": 4},
}
TOML = """
description = "two couplings against T and V"
[J]
cases = [{name = "iso", J = [0.25, 0.25, 0.25]}, {J = [0.3, 0.0, 0.4]}]
[T]
start = 0.02
stop = 0.3
num = 5
[V]
values = [0.0, 0.2]
[numerics]
chunk = 4
"""
#: Attributes that say when and where a run happened, not what it computed.
PROVENANCE = {
    "created",
    "finished",
    "history",
    "wall_time_s",
    "device",
    "spec",
    "spec_sha256",
    "spec_path",
}


@pytest.fixture(scope="module")
def cli_file(tmp_path_factory, cli_env):  # noqa: F811
    return cli_sweep(tmp_path_factory.mktemp("dataset"), TOML, cli_env, "cli")[1]


@pytest.mark.slow
def test_run_in_memory_equals_the_cli_file(cli_file):
    ds = jaxmi.run(SPEC, progress=False)
    with xr.open_dataset(cli_file, engine="h5netcdf") as ref:
        xr.testing.assert_equal(ds, ref)  # values (bitwise: no tolerance), coordinates
        for name in [*ds.data_vars, *ds.coords]:
            assert ds[name].attrs == ref[name].attrs, name
        same = {k: v for k, v in ref.attrs.items() if k not in PROVENANCE}
        assert {k: v for k, v in ds.attrs.items() if k in same}.keys() == same.keys()
        for k, v in same.items():
            np.testing.assert_array_equal(ds.attrs[k], v, err_msg=k)
    # (Those values were read after run() had removed its temporary file: they are in memory.)
    assert ds.attrs["Conventions"].startswith("CF-") and ds.attrs["complete"] == 1
    assert all("units" in ds[c].attrs for c in ds.coords)


@pytest.mark.slow
def test_run_from_toml_text_and_path_to_a_file(tmp_path, cli_file):
    out = tmp_path / "nb.h5"
    with jaxmi.run(TOML, out, progress=False) as ds, jaxmi.open(cli_file) as ref:
        xr.testing.assert_equal(ds, ref)
    before = out.read_bytes()
    with jaxmi.run(TOML, out, progress=False) as again:  # complete: reused, not rewritten
        assert again.conductance.shape == (2, 5, 2)
    assert out.read_bytes() == before
    path = write_spec(tmp_path / "s.toml", TOML)
    with jaxmi.run(str(path), progress=False) as ds, jaxmi.open(cli_file) as ref:
        xr.testing.assert_equal(ds, ref)


def test_bad_specs_are_one_line():
    with pytest.raises(SpecError, match=r"<dict>: \[T\]\.num must be a positive integer"):
        jaxmi.run({**SPEC, "T": {"start": 0.02, "stop": 0.3, "num": 0}}, progress=False)
    with pytest.raises(SpecError, match=r"<string>: is not valid TOML"):
        jaxmi.run("[T\nvalues = 1", progress=False)
    with pytest.raises(SpecError, match="spec must be a path, a TOML text or a dict, got int"):
        jaxmi.run(3, progress=False)
    with pytest.raises(SpecError, match=r"nosuch: .*no spec shipped with jaxmi has that name"):
        jaxmi.run("nosuch", progress=False)


def test_a_one_line_string_is_what_jaxmi_run_means():
    # The CLI's rule (jaxmi.sweep.spec.resolve): a shipped spec by name, else a file.
    s = as_spec("fig2")
    assert s.path.endswith("fig2.toml") and s.shape == (4, 60, 1)
    assert as_spec("fig2.toml").sha256 == s.sha256


@pytest.mark.slow
def test_open_masks_exactly_the_unwritten_points(tmp_path, cli_file):
    # An interrupted sweep, and in it one unmarked chunk that holds values (a write cut off
    # before its mark): NaN at every point of unmarked chunks, the computed values elsewhere.
    s = spec_mod.load(write_spec(tmp_path / "s.toml", TOML))
    out = tmp_path / "part.h5"
    partial_run(s, out, 3)
    layout = grid.plan(s.shape, s.chunk)
    with h5py.File(out, "r+") as f:
        done = f["sweep/chunks_done"][...].astype(bool)
        assert 0 < done.sum() < done.size
        cut = int(np.flatnonzero(~done)[0])
        f["conductance"][layout.region(cut)] = 0.0  # a write that was cut off
    written = store.written_mask(out)
    assert written.sum() == sum(layout.points(i) for i in np.flatnonzero(done))
    with jaxmi.open(out) as ds, jaxmi.open(cli_file) as ref:
        for q in ("conductance", "current", "spin"):
            mask = np.broadcast_to(written if ds[q].ndim == 3 else written[..., None], ds[q].shape)
            assert np.isnan(ds[q].values[~mask]).all(), q
            assert np.array_equal(ds[q].values[mask], ref[q].values[mask]), q
        assert isinstance(ds.attrs["created"], str) and ds.attrs["finished"] == ""


def test_open_unstacks_a_product_grid(tmp_path):
    spec = {
        "J": {"product": {"Jx": {"values": [0.1, 0.2]}, "Jy": 0.0, "Jz": {"values": [0.1, 0.3]}}},
        "T": {"values": [0.05, 0.1]},
        "V": {"values": [0.0]},
    }
    out = tmp_path / "product.h5"
    with jaxmi.run(spec, out, progress=False) as flat, jaxmi.open(out, unstack=True) as ds:
        assert ds.conductance.dims == ("Jx", "Jy", "Jz", "T", "V")
        assert ds.conductance.shape == (2, 1, 2, 2, 1)
        points = zip(flat.Jx.values, flat.Jy.values, flat.Jz.values, strict=True)
        for k, (jx, jy, jz) in enumerate(points):
            got = ds.conductance.sel(Jx=jx, Jy=jy, Jz=jz).values
            assert np.array_equal(got, flat.conductance.isel(J=k).values)


@pytest.mark.slow
def test_open_refuses_what_it_cannot_read(tmp_path, cli_file):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3.0)
    with pytest.raises(StoreError, match="is not a jaxmi sweep file"):
        jaxmi.open(other)
    with pytest.raises(StoreError, match="no such file"):
        jaxmi.open(tmp_path / "none.h5")
    with pytest.raises(StoreError, match=r"unstack=True needs a product grid .* 'cases'"):
        jaxmi.open(cli_file, unstack=True)
