"""Sweep specs (TOML -> Spec), the coordinate grid and the chunk layout.

Pure Python and numpy: no JAX compilation here. The CLI-level table of malformed inputs is in
test_cli.py; this file pins the parser's messages and the grid/chunk arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sweep_helpers import SWEEPS

from jaxmi.errors import SpecError
from jaxmi.sweep import grid, spec

BASE = """
[J]
isotropic = {values = [0.25]}
[T]
values = [0.1]
[V]
values = [0.0]
"""


def parse(text: str) -> spec.Spec:
    return spec.parse(text, "s.toml")


def test_shipped_specs_parse():
    # Every spec of jaxmi/sweeps/ is shipped and valid; fig2 is the paper's four cases at V = 0
    # (Fig. 2).
    names = spec.shipped_names()
    assert names == tuple(sorted(p.stem for p in SWEEPS.glob("*.toml")))
    specs = {name: spec.load(spec.shipped(name)) for name in names}
    assert {"fig2", "fig3", "phase", "large", "gate", "textures"} <= set(specs)
    for name, s in specs.items():
        assert s.path == f"jaxmi/sweeps/{name}.toml" and s.default_output() == f"{name}.h5"
    fig2 = specs["fig2"]
    assert fig2.J.kind == "cases" and len(fig2.J) == 4 and fig2.third_name == "V"
    vectors = grid.build(fig2).J.tolist()
    assert vectors == [[0.25, 0.25, 0.25], [0.25, 0.0, 0.35], [0.25, 0.0, 0.25], [0.25, 0, 0]]
    assert fig2.shape[1] >= 50 and grid.build(fig2).T.max() == 0.3
    assert specs["fig3"].third_name == "u"
    assert specs["large"].n_points >= 10**7
    # The model family: the gate map over (mu0, T) and the texture comparison over (p, T).
    gate, textures = specs["gate"], specs["textures"]
    assert gate.dims == ("J", "mu0", "T", "V") and gate.shape == (2, 41, 24, 1)
    assert not gate.paper_path and grid.build(gate).model_axes[0][1][[0, 20, 40]].tolist() == [
        -0.8,
        0.0,
        0.8,
    ]
    assert textures.dims == ("J", "exponent", "T", "V") and textures.model.mu0 == 0.0
    for name in ("fig2", "fig3", "phase", "large"):
        assert specs[name].model is None and specs[name].paper_path


def test_defaults():
    s = parse(BASE)
    assert s.quantities == ("conductance", "current", "spin")
    assert (s.order, s.precision, s.chunk) == (16, "float64", spec.DEFAULT_CHUNK)
    assert s.output is None and spec.parse(BASE, "dir/a.b.toml").default_output() == "a.b.h5"
    assert s.sha256 == spec.parse(BASE, "other.toml").sha256  # the text, not the path


def test_axes_and_j_kinds():
    s = parse(
        """
        quantities = ["spin", "conductance"]
        [J]
        product = {Jx = 0.25, Jy = [0.0, 0.1], Jz = {start = 0, stop = 0.5, num = 3}}
        [T]
        start = 0.01
        stop = 1.0
        num = 3
        spacing = "log"
        [u]
        values = [0.5, 2]
        """
    )
    g = grid.build(s)
    assert s.quantities == ("conductance", "spin")  # canonical order
    assert g.shape == (6, 3, 2) and s.J.shape == (1, 2, 3)
    # product order: Jx slowest, Jz fastest (C order over (Jx, Jy, Jz))
    np.testing.assert_array_equal(g.J[:3], [[0.25, 0, 0], [0.25, 0, 0.25], [0.25, 0, 0.5]])
    np.testing.assert_array_equal(g.T, [0.01, 0.1, 1.0])  # geometric, end points exact
    # u axis: V = 2 u T exactly
    np.testing.assert_array_equal(g.V, 2.0 * np.array([0.5, 2.0])[None, :] * g.T[:, None])

    sphere = parse(BASE.replace("isotropic = {values = [0.25]}", SPHERE))
    gs = grid.build(sphere)
    assert gs.J.shape == (2 * 3 * 4, 3) and sphere.J.shape == (2, 3, 4)
    # |J| is the magnitude; exact to rounding (1e-15 relative: a few products of sin/cos)
    np.testing.assert_allclose(np.linalg.norm(gs.J, axis=1), np.repeat([0.1, 0.3], 12), rtol=1e-15)


SPHERE = "sphere = {n_theta = 3, n_phi = 4, magnitudes = [0.1, 0.3]}"


def test_model_table():
    # [model] parameters: numbers are fixed, axes become dimensions between J and T in the order
    # mu0, scale, exponent; the model's defaults are the paper's.
    s = parse(
        """
        [model]
        spin = 1.5
        mu0 = {start = -0.5, stop = 0.5, num = 5}
        [model.texture]
        exponent = [1, 3]
        scale = 0.5
        """
        + BASE.replace("values = [0.1]", "values = [0.1, 0.2]")
    )
    m = s.model
    assert (m.spin, m.exchange, m.texture, m.scale) == (1.5, "diagonal", "power_law", 0.5)
    assert s.dims == ("J", "mu0", "exponent", "T", "V") and s.shape == (1, 5, 2, 2, 1)
    assert s.n_points == 20 and not s.paper_path
    g = grid.build(s)
    assert g.dims == s.dims and g.shape == s.shape and not g.paper_path
    np.testing.assert_array_equal(g.model_axes[0][1], np.linspace(-0.5, 0.5, 5))
    np.testing.assert_array_equal(g.model_axes[1][1], [1.0, 3.0])
    defaults = parse("[model]\n" + BASE)
    assert defaults.model == spec.ModelSpec() and defaults.paper_path
    assert defaults.dims == ("J", "T", "V") and defaults.shape == (1, 1, 1)
    poly = parse("[model.texture]\nkind = 'polynomial'\ncoefficients = [0, 0, 1]\n" + BASE)
    assert poly.model.coefficients == (0.0, 0.0, 1.0) and not poly.paper_path


def test_model_spec_is_paper_agrees_with_model():
    # The spec's pure-Python test for the fast path is Model.is_paper() of the model it builds.
    from jaxmi.sweep.chunks import build_model

    tables = [
        "",
        "spin = 0.5\nmu0 = 0.0",
        "mu0 = 0.1",
        "spin = 1",
        "exchange = 'tensor'",
        "[model.texture]\nexponent = 2.5",
        "[model.texture]\nscale = 2",
        "[model.texture]\nkind = 'polynomial'\ncoefficients = [0, 0, 1]",
    ]
    for table in tables:
        s = parse("[model]\n" + table + "\n" + BASE)
        assert s.model.is_paper() == build_model(grid.build(s)).is_paper(), table


def test_tensor_couplings():
    # exchange = "tensor": cases are 3x3 tensors J[i][j] (row i: impurity spin), or 3 numbers
    # for a diagonal tensor; isotropic is J times the identity.
    s = parse(
        """
        [model]
        exchange = "tensor"
        [J]
        cases = [{J = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]}, {J = [1, 2, 3]}]
        [T]
        values = [0.1]
        [V]
        values = [0.0]
        """
    )
    J = grid.build(s).J
    assert J.shape == (2, 3, 3) and s.J.tensor
    np.testing.assert_array_equal(J[0], np.arange(1, 10).reshape(3, 3) / 10)
    np.testing.assert_array_equal(J[1], np.diag([1.0, 2.0, 3.0]))
    iso = parse("[model]\nexchange = 'tensor'\n" + BASE.replace("[0.25]", "[0.25, 0.5]"))
    np.testing.assert_array_equal(grid.build(iso).J, [0.25 * np.eye(3), 0.5 * np.eye(3)])


# (what is wrong, the spec text, the exact message after "s.toml: ")
BAD = [
    (
        "typo in a key",
        BASE.replace("values = [0.1]", "valuse = [0.1]"),
        'unknown key "valuse" in [T]; did you mean "values"? '
        "(allowed: values, start, stop, num, spacing)",
    ),
    (
        "negative num",
        BASE.replace("values = [0.1]", "start = 0.1\nstop = 1\nnum = -3"),
        "[T].num must be a positive integer, got -3",
    ),
    (
        "num = 0",
        BASE.replace("values = [0.1]", "start = 0.1\nstop = 1\nnum = 0"),
        "[T].num must be a positive integer, got 0",
    ),
    (
        "negative T",
        BASE.replace("values = [0.1]", "values = [0.1, -0.2]"),
        "[T].values[1] must be >= 0 (units of vF*k0), got -0.2",
    ),
    (
        "NaN T",
        BASE.replace("values = [0.1]", "values = [nan]"),
        "[T].values[0] must be a finite number, got nan",
    ),
    (
        "empty axis",
        BASE.replace("values = [0.0]", "values = []"),
        "[V].values must be a non-empty list of numbers, got []",
    ),
    (
        "string value",
        BASE.replace("values = [0.0]", 'values = ["0"]'),
        '[V].values[0] must be a number, got a string "0"',
    ),
    (
        "unknown quantity",
        "quantities = ['conductanse']\n" + BASE,
        'quantities[0] must be one of conductance, current, spin, error, got "conductanse"; '
        'did you mean "conductance"?',
    ),
    (
        "float32",
        BASE + "[numerics]\nprecision = 'float32'\n",
        '[numerics].precision must be "float64", got "float32": the T^4 effect of an '
        "isotropic impurity is a cancellation of O(J^2) terms that float32 cannot hold",
    ),
    (
        "u with T = 0",
        BASE.replace("[V]", "[u]").replace("values = [0.1]", "values = [0.0, 1]"),
        "[T].values[0] must be > 0 when the bias is given as [u] (u = eV/2T is undefined at "
        "T = 0; use [V] instead), got 0.0",
    ),
    (
        "both V and u",
        BASE + "[u]\nvalues = [1.0]\n",
        "needs exactly one of [V] (bias eV) and [u] (u = eV/2T), got both",
    ),
    (
        "two J kinds",
        BASE.replace("[J]\n", "[J]\ncases = [{J = [0.1, 0, 0]}]\n"),
        "[J] needs exactly one of cases, isotropic, product, sphere, got cases, isotropic",
    ),
    (
        "J vector of 2",
        BASE.replace("isotropic = {values = [0.25]}", "cases = [{J = [1, 2]}]"),
        "[J].cases[0].J must be 3 numbers [Jx, Jy, Jz], got [1, 2]",
    ),
    (
        "log with start 0",
        BASE.replace("values = [0.1]", "start = 0\nstop = 1\nnum = 3\nspacing = 'log'"),
        '[T].start must be > 0 with spacing = "log", got 0.0',
    ),
    (
        "bad spacing",
        BASE.replace("values = [0.1]", "start = 0\nstop = 1\nnum = 3\nspacing = 'cubic'"),
        '[T].spacing must be "linear" or "log", got "cubic"',
    ),
    (
        "order not int",
        BASE + "[numerics]\norder = 16.5\n",
        "[numerics].order must be an integer in [2, 1024], got 16.5",
    ),
    (
        "chunk bool",
        BASE + "[numerics]\nchunk = true\n",
        "[numerics].chunk must be a positive integer, got true",
    ),
    (
        "unknown top key",
        "ouptut = 'a.h5'\n" + BASE,
        'unknown key "ouptut" at the top level; did you mean "output"? (allowed: description, '
        "output, quantities, model, J, T, V, u, numerics)",
    ),
    ("no T", BASE.replace("[T]\nvalues = [0.1]\n", ""), "needs a [T] table (the temperature axis)"),
    (
        "model typo",
        "[model]\nexchang = 'tensor'\n" + BASE,
        'unknown key "exchang" in [model]; did you mean "exchange"? (allowed: spin, exchange, '
        "mu0, texture)",
    ),
    (
        "texture typo",
        "[model.texture]\nexponnet = 3\n" + BASE,
        'unknown key "exponnet" in [model.texture]; did you mean "exponent"? (allowed: kind, '
        "scale, exponent)",
    ),
    (
        "spin 0",
        "[model]\nspin = 0\n" + BASE,
        "[model].spin must be 1/2, 1, 3/2, ... (a positive multiple of 1/2, at most 10), got 0",
    ),
    (
        "spin bool",
        "[model]\nspin = true\n" + BASE,
        "[model].spin must be 1/2, 1, 3/2, ... (a positive multiple of 1/2, at most 10), got true",
    ),
    (
        "mu0 log axis",
        "[model]\nmu0 = {start = 0, stop = 1, num = 3, spacing = 'log'}\n" + BASE,
        '[model].mu0.start must be > 0 with spacing = "log", got 0.0',
    ),
    (
        "mu0 outside",
        "[model]\nmu0 = [0.5, 1.5]\n" + BASE,
        "[model].mu0.values[1] must be in [-1, 1] (vF*k0, the validated domain of the general "
        "path), got 1.5",
    ),
    (
        "negative scale",
        "[model.texture]\nscale = -1\n" + BASE,
        "[model.texture].scale must be > 0, got -1.0",
    ),
    (
        "polynomial without coefficients",
        "[model.texture]\nkind = 'polynomial'\n" + BASE,
        "[model.texture] needs coefficients = [c0, c1, ...] (theta(eps))",
    ),
    (
        "coefficients empty",
        "[model.texture]\nkind = 'polynomial'\ncoefficients = []\n" + BASE,
        "[model.texture].coefficients must be a list of 1 to 16 numbers [c0, c1, ...], got []",
    ),
    (
        "sphere with tensor",
        "[model]\nexchange = 'tensor'\n" + BASE.replace("isotropic = {values = [0.25]}", SPHERE),
        '[J].sphere gives diagonal couplings; with [model] exchange = "tensor" use cases (3x3 '
        'tensors) or isotropic (J times the identity), or exchange = "diagonal"',
    ),
    (
        "V outside with a model",
        "[model]\nspin = 1\n" + BASE.replace("values = [0.0]", "values = [0.0, -2.5]"),
        "[V].values[1] must be in [-2, 2] with a [model] other than the paper's (the validated "
        "domain of the general path), got -2.5",
    ),
    (
        "u gives V outside with a model",
        "[model]\nmu0 = 0.1\n"
        + BASE.replace("[V]", "[u]").replace("values = [0.0]", "values = [20.0]"),
        "[u] gives biases |V| = 2|u|T up to 4 with [T] up to 0.1; |V| must be <= 2 with a "
        "[model] other than the paper's (the validated domain of the general path)",
    ),
    ("not TOML", "[T\n", None),
]


@pytest.mark.parametrize("what, text, message", BAD, ids=[b[0] for b in BAD])
def test_bad_specs(what, text, message):
    # Each malformed spec is one SpecError whose single line names the file and the key.
    with pytest.raises(SpecError) as info:
        parse(text)
    text_ = str(info.value)
    assert "\n" not in text_ and text_.startswith("s.toml: ")
    if message is not None:
        assert text_ == "s.toml: " + message
    else:
        assert "is not valid TOML" in text_


def test_load_missing_file(tmp_path):
    with pytest.raises(SpecError, match=r"nope\.toml: cannot read the spec file: No such file"):
        spec.load(tmp_path / "nope.toml")


def test_resolve_a_file_or_a_shipped_name(tmp_path, monkeypatch):
    # `jaxmi run SPEC`: an existing file as given wins, else a shipped spec by name (with or
    # without .toml), whatever the current directory; anything else is one line with the names.
    monkeypatch.chdir(tmp_path)
    shipped = spec.shipped("fig2")
    assert shipped.path == "jaxmi/sweeps/fig2.toml"
    with open(shipped.file) as f:  # the package's copy of the source tree's file
        assert f.read() == (SWEEPS / "fig2.toml").read_text()
    assert spec.resolve("fig2") == spec.resolve("fig2.toml") == shipped
    assert spec.load("fig2").path == "jaxmi/sweeps/fig2.toml"
    (tmp_path / "phase").mkdir()  # a directory of that name is not a spec: the shipped one
    assert spec.resolve("phase") == spec.shipped("phase.toml")
    (tmp_path / "fig2.toml").write_text(BASE)
    assert spec.resolve("fig2.toml") == ("fig2.toml", "fig2.toml")  # the file here wins
    assert spec.resolve("fig2") == shipped  # (there is no file called "fig2")
    assert spec.load("fig2.toml").sha256 == spec.parse(BASE).sha256
    names = "(fig2, fig3, gate, large, phase, textures)"
    for arg in ("fig9", "sweeps/fig2.toml", "phase/"):
        with pytest.raises(SpecError) as info:
            spec.resolve(arg)
        assert str(info.value).startswith(f"{arg}: cannot read the spec file: ")
        assert str(info.value).endswith(f", and no spec shipped with jaxmi has that name {names}")
    with pytest.raises(SpecError, match=r"^fig9: no spec shipped with jaxmi has that name \("):
        spec.shipped("fig9")


@settings(max_examples=200, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 40), st.integers(1, 9), st.integers(1, 9)),
    chunk=st.integers(1, 500),
)
def test_chunk_plan_covers_grid_once(shape, chunk):
    # Invariant: the chunk regions tile the grid exactly once; a block has <= chunk points;
    # blocks split each axis evenly (padding along an axis < number of blocks).
    from jaxmi.sweep.chunks import plan

    layout = plan(shape, chunk)
    seen = np.zeros(shape, dtype=int)
    for i in range(layout.n_chunks):
        seen[layout.region(i)] += 1
    assert (seen == 1).all()
    assert math.prod(layout.block) <= chunk
    for n, c, k in zip(shape, layout.block, layout.counts, strict=True):
        assert c <= n and k * c - n < k


@settings(max_examples=200, deadline=None)
@given(
    shape=st.lists(st.integers(1, 9), min_size=4, max_size=6).map(tuple),
    chunk=st.integers(1, 500),
    max_pairs=st.one_of(st.none(), st.integers(1, 40)),
)
def test_chunk_plan_with_model_axes(shape, chunk, max_pairs):
    # The same invariants with swept model parameters (4 to 6 dimensions) and the general
    # path's cap on the (model point, T, V) triples per chunk.
    from jaxmi.sweep.chunks import plan

    layout = plan(shape, chunk, max_pairs=max_pairs)
    seen = np.zeros(shape, dtype=int)
    for i in range(layout.n_chunks):
        seen[layout.region(i)] += 1
    assert (seen == 1).all()
    assert math.prod(layout.block) <= chunk
    if max_pairs is not None:
        assert math.prod(layout.block[1:]) <= max_pairs
    for n, c, k in zip(shape, layout.block, layout.counts, strict=True):
        assert c <= n and k * c - n < k


def test_chunk_plan_of_three_dimensions_is_unchanged():
    # The paper's layout (no model axes, no cap) is the one files were written with before
    # model axes existed: a file started then resumes with the same chunks.
    from jaxmi.sweep.chunks import plan

    assert plan((4, 60, 1), 65536).block == (4, 60, 1)
    assert plan((5, 3, 3), 4).block == (3, 1, 1)
    assert plan((81, 59, 1), 1000).block == (81, 12, 1)
