"""Sweeps as xarray Datasets, for notebooks: :func:`run` a spec and get the result, :func:`open`
a sweep file.

Both go through the sweep file (jaxmi.sweep.store; docs/sweeps.md): ``run(spec)`` without an
output writes a temporary file, reads it into memory and removes it, so the Dataset is the one
``jaxmi run`` would write, value for value. Unwritten points of an interrupted sweep are NaN;
the spec text, units and provenance are attributes; a product grid of couplings can be unstacked
into Jx, Jy, Jz dimensions.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping

import numpy as np

from jaxmi.errors import SpecError, StoreError
from jaxmi.sweep import spec as spec_mod
from jaxmi.sweep import store


def _xarray():
    try:
        import xarray
    except ImportError as err:  # a core dependency; only a broken install lands here
        raise StoreError(
            f"jaxmi.open needs xarray and h5netcdf ({err}); pip install xarray"
        ) from None
    return xarray


def as_spec(spec) -> spec_mod.Spec:
    """A validated Spec from a path (str or os.PathLike) to a TOML file, the name of a shipped
    spec ("fig2"), a TOML text, a dict of the same schema (docs/sweeps.md) or a Spec.

    A str of several lines is TOML text (a spec always has several: one key per line); a
    one-line str means what ``jaxmi run SPEC`` means (:func:`jaxmi.sweep.spec.resolve`).

    Raises:
        SpecError: one line naming what is wrong (the key, for a dict as for a file).
    """
    if isinstance(spec, spec_mod.Spec):
        return spec
    if isinstance(spec, Mapping):
        import tomli_w

        try:
            text = tomli_w.dumps(dict(spec))
        except (TypeError, ValueError) as err:
            raise SpecError(f"<dict>: cannot be written as TOML: {err}") from None
        return spec_mod.parse(text, "<dict>")
    if isinstance(spec, os.PathLike):
        return spec_mod.load(spec)
    if isinstance(spec, str):
        if "\n" not in spec.strip():
            return spec_mod.load(spec)
        return spec_mod.parse(spec, "<string>")
    raise SpecError(f"spec must be a path, a TOML text or a dict, got {type(spec).__name__}")


def _progress(progress):
    from jaxmi.sweep import run as run_mod

    if progress is True:
        return run_mod.TqdmProgress(sys.stderr, auto=True)
    if progress is False or progress is None:
        return run_mod.NoProgress()
    return progress


def run(
    spec,
    output: str | os.PathLike | None = None,
    *,
    progress=True,
    overwrite: bool = False,
    chunk: int | None = None,
    force: bool = False,
):
    """Run (or resume) a sweep and return it as an ``xarray.Dataset``.

    Args:
        spec: a path to a TOML spec, a shipped spec's name ("fig2"), a TOML text, or a dict of
            the same schema (docs/sweeps.md).
        output: the HDF5 file to write, resumable exactly as ``jaxmi run SPEC -o OUTPUT`` (the
            same file); None: in memory (a temporary file is written, read and removed).
        progress: True (a tqdm bar, a widget in a notebook), False, or a
            :class:`jaxmi.sweep.run.Progress`.
        overwrite, chunk, force: as ``jaxmi run --overwrite --chunk N --force``.

    Returns:
        The sweep (:func:`open`): data variables conductance, current, spin (those the spec
        asks for) over (J, [model parameters,] T, V or u), loaded into memory when ``output``
        is None, else backed by the file.

    Raises:
        SpecError, StoreError, WriteError, PrecisionError: one line each, as the CLI prints them.
    """
    from jaxmi.sweep import run as run_mod

    s = as_spec(spec)
    prog = _progress(progress)
    if output is not None:
        run_mod.run_sweep(
            s,
            output=os.fspath(output),
            overwrite=overwrite,
            chunk=chunk,
            progress=prog,
            force=force,
        )
        return open(output)
    with tempfile.TemporaryDirectory(prefix="jaxmi-run-") as d:
        path = os.path.join(d, "sweep.h5")
        run_mod.run_sweep(s, output=path, chunk=chunk, progress=prog, force=force)
        with open(path) as ds:
            return ds.load()


_PROVENANCE_BYTES = ("created", "finished", "device")  # fixed-size byte attributes in the file


def open(path: str | os.PathLike, *, unstack: bool = False):  # noqa: A001 (jaxmi.open)
    """A sweep file as an ``xarray.Dataset`` (lazily read; close it, or use ``with``).

    Points not computed yet are NaN (also those of a chunk whose write was cut off), the spec
    text, units and provenance are attributes (str throughout), and every coordinate has
    ``units``. Opens without HDF5 file locking, so it also reads a file a run is writing.

    Args:
        path: a file written by ``jaxmi run`` or :func:`run`.
        unstack: for a product grid of couplings (``[J] product``), replace the J dimension by
            Jx, Jy and Jz dimensions (NaN where a combination is not in the grid: none for a
            product grid).

    Raises:
        StoreError: the file is missing, not a jaxmi sweep file, or damaged (one line).
    """
    xr = _xarray()
    path = os.fspath(path)
    s = store.summary(path)  # one-line StoreError for a missing, foreign or damaged file
    try:
        ds = xr.open_dataset(path, engine="h5netcdf", driver_kwds={"locking": False})
    except (OSError, ValueError) as err:
        raise StoreError(f"{path}: cannot be read by xarray: {err}") from None
    for name in _PROVENANCE_BYTES:
        if isinstance(ds.attrs.get(name), bytes | np.bytes_):
            ds.attrs[name] = ds.attrs[name].decode(errors="replace")
    if not s["complete"]:
        written = store.written_mask(path, s)
        for q in s["quantities"]:
            mask = written if ds[q].ndim == written.ndim else written[..., None]
            ds[q] = ds[q].where(np.broadcast_to(mask, ds[q].shape))
    if unstack:
        if s["J_kind"] != "product":
            ds.close()
            raise StoreError(
                f"{path}: unstack=True needs a product grid of couplings ([J] product), this "
                f"file's J axis is {s['J_kind']!r}"
            )
        ds = ds.set_index(J=["Jx", "Jy", "Jz"]).unstack("J")
        ds = ds.transpose("Jx", "Jy", "Jz", ...)
    return ds
