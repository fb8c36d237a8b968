"""The one rule for pictures and fit results (jaxmi.outputs): where an output may be written,
which formats, and that an existing file is replaced only if jaxmi wrote it (its stamp in a
picture's metadata, ``jaxmi_format`` in a fit result) or with ``overwrite``."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from jaxmi import outputs
from jaxmi.errors import StoreError

REFUSED = "refusing to overwrite it (use --overwrite to replace it, or -o elsewhere)"


def test_fit_results_are_recognised_by_their_format(tmp_path):
    path = tmp_path / "fit.json"
    assert outputs.check_output(path, outputs.FIT) == str(path)  # absent: fine
    path.write_text(json.dumps({"jaxmi_format": outputs.FIT_FORMAT, "params": {}}))
    assert outputs.check_output(path, outputs.FIT) == str(path)
    for text in ('{"params": {}}', "[1, 2]", "not json", b"\xff\xfe"):
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        with pytest.raises(StoreError) as info:
            outputs.check_output(path, outputs.FIT)
        assert str(info.value) == f"{path}: exists and is not a jaxmi fit result; {REFUSED}"
        assert outputs.check_output(path, outputs.FIT, overwrite=True) == str(path)


def test_bench_results_are_recognised_by_their_format(tmp_path):
    # A fit result is not a bench result, and the other way round.
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"jaxmi_format": outputs.BENCH_FORMAT, "device": "cpu"}))
    assert outputs.check_output(path, outputs.BENCH) == str(path)
    with pytest.raises(StoreError, match="is not a jaxmi fit result"):
        outputs.check_output(path, outputs.FIT)
    path.write_text(json.dumps({"jaxmi_format": outputs.FIT_FORMAT}))
    with pytest.raises(StoreError, match="is not a jaxmi bench result"):
        outputs.check_output(path, outputs.BENCH)


def test_stamped_pictures_are_recognised(tmp_path):
    # Every format that holds metadata is written with the stamp and recognised; the same
    # bytes without the stamp (matplotlib's own) are not.
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    formats = [*outputs.METADATA_KEYS, "jpg", "tiff", "webp"]
    for fmt in formats:
        ours, theirs = tmp_path / f"ours.{fmt}", tmp_path / f"theirs.{fmt}"
        assert outputs.save_figure(fig, ours, dpi=30) == str(ours)
        fig.savefig(theirs, dpi=30)
        assert outputs.written_by_jaxmi(ours, outputs.PICTURE), fmt
        assert not outputs.written_by_jaxmi(theirs, outputs.PICTURE), fmt
        outputs.save_figure(fig, ours, dpi=30)  # its own picture: replaced
        with pytest.raises(StoreError, match=re.escape(f"carries no jaxmi stamp; {REFUSED}")):
            outputs.save_figure(fig, theirs, dpi=30)
        outputs.save_figure(fig, theirs, dpi=30, overwrite=True)
        assert outputs.written_by_jaxmi(theirs, outputs.PICTURE), fmt
    gif = tmp_path / "x.gif"
    outputs.save_figure(fig, gif, dpi=30)
    with pytest.raises(StoreError, match=r"exists and may not be jaxmi's \(.gif pictures hold "):
        outputs.check_output(gif, outputs.PICTURE, option="--plot")


def test_picture_formats_and_places(tmp_path):
    pytest.importorskip("matplotlib")
    assert {"png", "pdf", "svg"} <= set(outputs.picture_formats())
    allowed = ", ".join(outputs.picture_formats())
    with pytest.raises(StoreError) as info:
        outputs.check_output(tmp_path / "x.dat", outputs.PICTURE)
    assert str(info.value) == f"{tmp_path}/x.dat: matplotlib cannot write .dat pictures " + (
        f"(allowed: {allowed})"
    )
    assert outputs.check_output(tmp_path / "X.PNG", outputs.PICTURE)  # case-insensitive
    with pytest.raises(StoreError, match="does not exist"):
        outputs.check_output(tmp_path / "no" / "x.png", outputs.PICTURE)
    with pytest.raises(StoreError, match="is a directory, not an output file"):
        outputs.check_output(tmp_path, outputs.FIT, overwrite=True)
    with pytest.raises(ValueError, match="kind must be"):
        outputs.check_output(tmp_path / "x.png", "png")


def test_unwritable_directory_is_refused_before_the_work(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: directory permissions are not enforced")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(StoreError, match=f"cannot create the output file: {locked} is not "):
            outputs.check_output(locked / "fit.json", outputs.FIT)
    finally:
        locked.chmod(0o700)


def test_outputs_imports_neither_jax_nor_h5py_nor_matplotlib():
    code = (
        "import sys, jaxmi.outputs\n"
        "bad = [m for m in ('jax', 'h5py', 'matplotlib', 'PIL') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
