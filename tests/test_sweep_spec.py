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
    # Every spec in sweeps/ is valid; fig2 is the paper's four cases at V = 0 (Fig. 2).
    specs = {p.stem: spec.load(p) for p in SWEEPS.glob("*.toml")}
    assert {"fig2", "fig3", "phase", "large"} <= set(specs)
    fig2 = specs["fig2"]
    assert fig2.J.kind == "cases" and len(fig2.J) == 4 and fig2.third_name == "V"
    vectors = grid.build(fig2).J.tolist()
    assert vectors == [[0.25, 0.25, 0.25], [0.25, 0.0, 0.35], [0.25, 0.0, 0.25], [0.25, 0, 0]]
    assert fig2.shape[1] >= 50 and grid.build(fig2).T.max() == 0.3
    assert specs["fig3"].third_name == "u"
    assert specs["large"].n_points >= 10**7


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
        'quantities[0] must be one of conductance, current, spin, got "conductanse"; '
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
        "output, quantities, J, T, V, u, numerics)",
    ),
    ("no T", BASE.replace("[T]\nvalues = [0.1]\n", ""), "needs a [T] table (the temperature axis)"),
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
