"""Sweeps of the model family (issue 9): the ``[model]`` table, a mu0 axis, a texture-parameter
axis and exchange tensors, against the direct path; the file layout seen by h5py, xarray and
``jaxmi info``; resume after SIGKILL and after a stop; refused specs on the command line.

Tolerance of the value checks: 1e-13 of max(|G|, 1e-2 J^2) (and likewise for the current), the
general path's agreement with itself in another evaluation order (the sweep is the factorized
path, jaxmi.evaluate the direct one, one point at a time). Where the direct path takes the
paper's fast path (mu0 = 0 in a mu0 axis) the two paths agree to that tolerance as well
(tests/test_family.py: test_reduces_to_the_paper_path). A misplaced or padded chunk would be off
by O(1).

The in-process sweeps share one chunk block per kind of model, so each compiles once per session.
"""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from sweep_helpers import SMALL_GRID, cli_env, make, read, run_cli, write_spec  # noqa: F401
from test_resume import chunks_done, start, wait_for_progress

import jaxmi
from jaxmi.model import Model, PowerLaw
from jaxmi.sweep import chunks, grid, spec, store
from jaxmi.sweep.run import run_sweep

QUANTITIES = ("conductance", "current", "spin")

CASES = SMALL_GRID + "[numerics]\nchunk = 12\n"

#: A gate sweep: 3 J x 3 mu0 x 3 T x 3 V in chunks of (3, 1, 1, 3).
MU0 = (
    """
description = "gate test"
[model]
mu0 = {values = [-0.5, 0.0, 0.4]}
"""
    + CASES
)

#: A texture sweep: the power law's exponent as an axis, at mu0 = 0.2.
EXPONENT = (
    """
[model]
mu0 = 0.2
[model.texture]
kind = "power_law"
exponent = {values = [1.5, 3.0]}
"""
    + CASES
)

#: Exchange tensors (one off-diagonal, one given by its diagonal), spin 1, a fixed mu0.
TENSOR = """
[model]
spin = 1
exchange = "tensor"
mu0 = 0.3
[J]
cases = [
    {name = "offdiag", J = [[0.2, 0.1, 0.0], [-0.05, 0.15, 0.0], [0.0, 0.02, 0.3]]},
    {name = "diag", J = [0.25, 0.0, 0.35]},
    {name = "skew", J = [[0.1, 0.0, -0.2], [0.0, 0.25, 0.0], [0.2, 0.0, 0.1]]},
]
[T]
values = [0.0, 0.05, 0.2]
[V]
values = [-0.3, 0.0, 0.5]
[numerics]
chunk = 12
"""


def close(got, want, floor):
    """|got - want| <= 1e-13 max(|want|, floor) everywhere (floor broadcasts against want)."""
    bound = 1e-13 * np.maximum(np.abs(want), floor)
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) / bound)


def check_against_direct(got, J, T, V, models, *, tensor=False):
    """got[q][:, m] against jaxmi.evaluate(J, T, V, model=models[m]) for every model point m.

    The J^2 floor: sum of squares of the couplings (vector or tensor), per J."""
    axes = (1, 2) if tensor else (1,)
    floor = 1e-2 * np.sum(np.square(J), axis=axes)[:, None, None]
    Jb = J[:, None, None]
    for m, model in enumerate(models):
        ref = jaxmi.evaluate(Jb, T[None, :, None], V[None, None, :], model=model)
        for q in ("conductance", "current"):
            close(got[q][:, m], np.asarray(getattr(ref, q)), floor)
        np.testing.assert_allclose(got["spin"][:, m], np.asarray(ref.spin), rtol=0, atol=1e-13)


@pytest.fixture(scope="module")
def mu0_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("mu0")
    s = make(d, MU0)
    out = d / "mu0.h5"
    result = run_sweep(s, output=str(out))
    assert result.complete and result.dims == {"J": 3, "mu0": 3, "T": 3, "V": 3}
    return s, out


@pytest.mark.slow
def test_mu0_axis_equals_direct_path(mu0_file):
    # Every (J, mu0, T, V) point of the gate sweep equals jaxmi.evaluate with Model(mu0=...),
    # including T = 0, V < 0, V = 0 and mu0 = 0 (where the direct path is the paper's).
    s, out = mu0_file
    layout = chunks.plan_grid(grid.build(s), s.chunk)
    assert layout.block == (3, 1, 1, 3) and layout.n_chunks == 9
    got = read(out)
    with h5py.File(out, "r") as f:
        J = np.stack([f["Jx"][...], f["Jy"][...], f["Jz"][...]], axis=-1)
        mu0, T, V = f["mu0"][...], f["T"][...], f["V"][...]
        assert f["conductance"].shape == (3, 3, 3, 3) and f["spin"].shape == (3, 3, 3, 3, 3)
        assert f["conductance"].chunks == (3, 1, 1, 3)
    np.testing.assert_array_equal(mu0, [-0.5, 0.0, 0.4])
    check_against_direct(got, J, T, V, [Model(mu0=float(m)) for m in mu0])


@pytest.mark.slow
def test_exponent_axis_equals_direct_path(tmp_path):
    # A texture-parameter axis: theta = |eps|^p for two p, each point against jaxmi.evaluate
    # with Model(mu0=0.2, texture=PowerLaw(exponent=p)).
    s = make(tmp_path, EXPONENT)
    assert s.dims == ("J", "exponent", "T", "V")
    out = tmp_path / "p.h5"
    assert run_sweep(s, output=str(out)).complete
    got = read(out)
    with h5py.File(out, "r") as f:
        J = np.stack([f["Jx"][...], f["Jy"][...], f["Jz"][...]], axis=-1)
        p, T, V = f["exponent"][...], f["T"][...], f["V"][...]
        assert float(f.attrs["mu0"]) == 0.2
        model = json.loads(f.attrs["model"])
    assert model == {
        "spin": 0.5,
        "exchange": "diagonal",
        "mu0": 0.2,
        "texture": {"kind": "power_law", "scale": 1.0},
    }
    models = [Model(mu0=0.2, texture=PowerLaw(exponent=float(x))) for x in p]
    check_against_direct(got, J, T, V, models)


@pytest.mark.slow
def test_tensor_sweep_equals_direct_path(tmp_path):
    # Exchange tensors (a 3x3 case, a diagonal one given as 3 numbers, an antisymmetric part)
    # for spin 1 at mu0 = 0.3: stored as J_tensor (J, i, j), values equal jaxmi.evaluate.
    s = make(tmp_path, TENSOR)
    out = tmp_path / "t.h5"
    assert run_sweep(s, output=str(out)).complete
    got = {q: a[:, None] for q, a in read(out).items()}  # a model axis of length 1
    with h5py.File(out, "r") as f:
        J, T, V = f["J_tensor"][...], f["T"][...], f["V"][...]
        assert "Jx" not in f and f["conductance"].shape == (3, 3, 3)
        assert f.attrs["exchange"] == "tensor" and float(f.attrs["spin"]) == 1.0
    np.testing.assert_array_equal(J[1], np.diag([0.25, 0.0, 0.35]))
    check_against_direct(got, J, T, V, [Model(spin=1, exchange="tensor", mu0=0.3)], tensor=True)
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.conductance.dims == ("J", "T", "V")
        assert ds.J_tensor.dims == ("J", "i_impurity", "j_electron")
        assert list(ds.i_impurity.values) == ["x", "y", "z"]
        assert ds.J_tensor.attrs["units"] == "1" and ds.J_tensor.attrs["long_name"] == "J_ij / vF"
        np.testing.assert_array_equal(ds.J_tensor.values, J)


def test_mu0_file_layout(mu0_file):
    # xarray: dims (J, mu0, T, V), mu0 a dimension coordinate in vF k0; the model as JSON
    # without mu0 (a dimension, not an attribute); jaxmi info / store.summary show both.
    s, out = mu0_file
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.conductance.dims == ("J", "mu0", "T", "V")
        assert ds.spin.dims == ("J", "mu0", "T", "V", "component")
        assert {"mu0", "T", "V", "Jx", "Jy", "Jz", "J_name"} <= set(ds.conductance.coords)
        assert ds.mu0.attrs["units"] == "1" and ds.mu0.attrs["long_name"] == "mu0 / vF k0"
        np.testing.assert_array_equal(ds.mu0.values, [-0.5, 0.0, 0.4])
        assert "mu0" not in ds.attrs and ds.attrs["code_path"] == "general"
        assert json.loads(ds.attrs["model"]) == {
            "spin": 0.5,
            "exchange": "diagonal",
            "texture": {"kind": "power_law", "scale": 1.0, "exponent": 2.0},
        }
        assert list(ds.attrs["chunk_shape"]) == [3, 1, 1, 3]
        g = ds.conductance.sel(mu0=0.4, T=0.05, V=0.5, J=1).item()
    assert g == read(out)["conductance"][1, 2, 1, 2]
    info = store.summary(str(out))
    assert info["dims"] == {"J": 3, "mu0": 3, "T": 3, "V": 3}
    assert info["coords"]["mu0"] == (-0.5, 0.4) and info["model"]["exchange"] == "diagonal"
    sw = store.read_sweep(out)
    assert sw.dims == ("J", "mu0", "T", "V") and sw.shape == (3, 3, 3, 3) and not sw.paper


def test_resume_after_stop_is_bitwise(tmp_path, mu0_file):
    # A run stopped after 4 of 9 chunks, then resumed: the same bits as an uninterrupted run.
    s, ref_path = mu0_file
    out = tmp_path / "r.h5"
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 4

    first = run_sweep(s, output=str(out), stop=stop)
    assert first.interrupted and not first.complete and first.chunks_computed == 4
    second = run_sweep(s, output=str(out))
    assert second.complete and second.chunks_computed == 5
    got, ref = read(out), read(ref_path)
    for q in QUANTITIES:
        assert np.array_equal(got[q], ref[q]), q


#: Many small chunks (200 of (3, 1, 1, 3), the block of MU0) so that a kill lands mid-sweep.
SLOW_MU0 = """
[model]
mu0 = {start = -0.6, stop = 0.6, num = 10}
[J]
isotropic = [0.1, 0.2, 0.3]
[T]
start = 0.01
stop = 0.3
num = 20
[V]
values = [-0.2, 0.0, 0.2]
[numerics]
chunk = 12
"""


@pytest.mark.slow
def test_sigkill_resume_is_bitwise(tmp_path, cli_env, mu0_file):  # noqa: F811
    # kill -9 in mid-sweep, then the same command (the installed jaxmi script, real signals;
    # helpers of test_resume.py): the finished file is bitwise an uninterrupted run's (here one
    # in this process: the same program on the same chunk inputs).
    specfile = write_spec(tmp_path / "slow.toml", SLOW_MU0)
    ref = tmp_path / "ref.h5"
    assert run_sweep(spec.load(specfile), output=str(ref)).complete
    out = tmp_path / "killed.h5"
    proc = start(["run", specfile, "-o", out, "-q"], cli_env, tmp_path)
    try:
        wait_for_progress(out, proc, minimum=3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert 0 < chunks_done(out) < 200
    again = run_cli(["run", specfile, "-o", out], cli_env, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.startswith(f"resumed and completed {out}")
    a, b = read(out), read(ref)
    for q in QUANTITIES:
        assert a[q].shape[:4] == (3, 10, 20, 3) and np.array_equal(a[q], b[q]), q
    info = run_cli(["info", out], cli_env)
    assert "dims: J 3, mu0 10, T 20, V 3" in info.stdout
    assert 'model: {"spin": 0.5, "exchange": "diagonal", "texture": ' in info.stdout


def test_chunk_messages_name_the_model_axes(tmp_path):
    # A failing chunk is named with its ranges along every dimension (NaN and worker errors).
    from jaxmi.sweep.run import chunk_ranges

    g = grid.build(make(tmp_path, MU0))
    layout = chunks.plan_grid(g, 12)
    assert chunk_ranges(4, layout, g) == (
        "J[0:3] (Jx 0.25..0.3, Jy -0.1..0.25, Jz 0.2..0.35), mu0[1:2] (0..0), T[1:2] "
        "(0.05..0.05), V[0:3] (-0.3..0.5)"
    )
    t = grid.build(make(tmp_path, TENSOR, "t.toml"))
    assert chunk_ranges(0, chunks.plan_grid(t, 12), t).startswith("J[0:3] (J_ij -0.2..0.35), T")


def test_paper_model_table_is_the_paper_sweep(tmp_path):
    # A [model] table that is the paper's model runs the paper's fast path: bitwise the same
    # values as the spec without it; the file also records the model.
    plain = make(tmp_path, CASES, "plain.toml")
    with_model = make(tmp_path, "[model]\nspin = 0.5\nmu0 = 0\n" + CASES, "model.toml")
    assert with_model.paper_path and not make(tmp_path, MU0, "mu0.toml").paper_path
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    run_sweep(plain, output=str(a))
    run_sweep(with_model, output=str(b))
    ra, rb = read(a), read(b)
    for q in QUANTITIES:
        assert np.array_equal(ra[q], rb[q]), q
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert "model" not in fa.attrs and "spin" not in fa.attrs  # today's layout exactly
        assert fb.attrs["code_path"] == "paper" and float(fb.attrs["mu0"]) == 0.0
    assert store.read_sweep(b).paper


def test_cluster_task_computes_the_same_chunk(mu0_file):
    # The dask task (without dask) builds the same grid, model and program: chunk 4 equals the
    # local run's bits.
    from jaxmi.sweep import cluster

    s, out = mu0_file
    layout = chunks.plan_grid(grid.build(s), s.chunk)
    values = cluster.compute_chunk(s.text, s.path, layout.block, 4)
    ref = read(out)
    for q in QUANTITIES:
        assert np.array_equal(values[q], ref[q][layout.region(4)]), q


def test_plot_of_a_gate_file(mu0_file, tmp_path):
    # jaxmi.plot: panels per coupling, lines against T per mu0 for few mu0 values, a map over
    # (mu0, T) for many (the gate map); the ratio to Eq. 14 is refused for another model.
    pytest.importorskip("matplotlib")
    from jaxmi import plot
    from jaxmi.errors import JaxmiError

    _, out = mu0_file
    sw = plot.read_sweep(out)
    assert plot.default_view(sw) == ("T", None, "conductance")
    png = plot.plot_file(out, tmp_path / "lines.png")
    png2 = plot.plot_file(out, tmp_path / "map.png", x="mu0", y="T")
    for p in (png, png2):
        data = Path(p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    with pytest.raises(JaxmiError, match="ratio divides by Eq. 14"):
        plot.quantity(sw, "ratio")
    many = plot.Sweep(
        "gate.h5",
        sw.J,
        sw.J_names,
        "cases",
        (3,),
        sw.T,
        "V",
        sw.third,
        sw.V,
        {"conductance": None},
        True,
        "",
        model_axes={"mu0": np.linspace(-0.8, 0.8, 41)},
        model={},
    )
    assert plot.default_view(many) == ("mu0", "T", "conductance")


# (what is wrong, the spec text, the message after "jaxmi: error: <spec>: ")
BAD = [
    ("not a table", "model = 3\n" + CASES, "[model] must be a table, got an integer 3"),
    (
        "typo",
        "[model]\nspn = 1\n" + CASES,
        'unknown key "spn" in [model]; did you mean "spin"? (allowed: spin, exchange, mu0, '
        "texture)",
    ),
    (
        "spin",
        "[model]\nspin = 0.7\n" + CASES,
        "[model].spin must be 1/2, 1, 3/2, ... (a positive multiple of 1/2, at most 10), got 0.7",
    ),
    (
        "exchange",
        "[model]\nexchange = 'full'\n" + CASES,
        '[model].exchange must be "diagonal" or "tensor", got "full"',
    ),
    (
        "mu0 out of domain",
        "[model]\nmu0 = {start = -2, stop = 0, num = 3}\n" + CASES,
        "[model].mu0.start must be in [-1, 1] (vF*k0, the validated domain of the general "
        "path), got -2.0",
    ),
    (
        "mu0 string",
        "[model]\nmu0 = 'high'\n" + CASES,
        "[model].mu0 must be a number, a list of numbers or a table with values or "
        'start/stop/num, got a string "high"',
    ),
    (
        "texture kind",
        "[model.texture]\nkind = 'gaussian'\n" + CASES,
        '[model.texture].kind must be "power_law" or "polynomial", got "gaussian"',
    ),
    (
        "key of another kind",
        "[model.texture]\nkind = 'polynomial'\nexponent = 3\n" + CASES,
        '[model.texture].exponent belongs to kind = "power_law", not "polynomial" (allowed: '
        "kind, coefficients)",
    ),
    (
        "exponent 0",
        "[model.texture]\nexponent = [2, 0]\n" + CASES,
        "[model.texture].exponent.values[1] must be > 0, got 0.0",
    ),
    (
        "tensor without exchange",
        CASES.replace("[0.25, 0.25, 0.25]", "[[1, 0, 0], [0, 1, 0], [0, 0, 1]]"),
        "[J].cases[0].J must be 3 numbers [Jx, Jy, Jz], got [[1, 0, 0], [0, 1, 0], [0, 0, 1]] "
        '(a 3x3 exchange tensor needs [model] exchange = "tensor")',
    ),
    (
        "tensor 3x2",
        TENSOR.replace("[-0.05, 0.15, 0.0]", "[-0.05, 0.15]"),
        "[J].cases[0].J must be a 3x3 tensor [[Jxx, Jxy, Jxz], [Jyx, Jyy, Jyz], [Jzx, Jzy, "
        "Jzz]] or 3 numbers (its diagonal), got",
    ),
    (
        "product with tensor",
        "[model]\nexchange = 'tensor'\n[J]\nproduct = {Jx = 0.1, Jy = 0, Jz = [0.1, 0.2]}\n"
        "[T]\nvalues = [0.1]\n[V]\nvalues = [0.0]\n",
        '[J].product gives diagonal couplings; with [model] exchange = "tensor" use cases',
    ),
    (
        "T above the general path's domain",
        "[model]\nmu0 = 0.1\n" + CASES.replace("0.2]", "0.8]"),
        "[T].values[2] must be <= 0.5 with a [model] other than the paper's (the validated "
        "domain of the general path), got 0.8",
    ),
]


@pytest.mark.parametrize("what, text, message", BAD, ids=[b[0] for b in BAD])
def test_bad_model_tables_on_the_command_line(what, text, message, tmp_path, cli_env):  # noqa: F811
    # `jaxmi run` refuses each before computing anything: exit 2, one line naming the file and
    # the key, nothing on stdout, no output file.
    specfile = tmp_path / "bad.toml"
    specfile.write_text(textwrap.dedent(text))
    proc = run_cli(["run", specfile], cli_env, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"jaxmi: error: {specfile}: {message}"), lines[0]
    assert [p.name for p in tmp_path.iterdir()] == ["bad.toml"]
