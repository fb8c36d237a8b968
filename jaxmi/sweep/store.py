"""The HDF5 store of a sweep: layout, crash-safe chunk writes, resume and locking.

The only module that imports h5py. Layout (docs/sweeps.md, "The HDF5 file"):

* data: ``conductance`` (J, T, V) in e^2/h, ``current`` (J, T, V) in e vF k0 / h,
  ``spin`` (J, T, V, component) = <S_j> (hbar = 1); float64, HDF5-chunked like the compute
  chunks, each with a ``units`` attribute (only the quantities the spec asks for);
* coordinates, as HDF5 dimension scales: ``J`` (index 0..nJ-1), ``T``, ``V`` (or ``u`` and a
  2-D ``V`` (T, u) = 2 u T), ``component`` ("x", "y", "z"); along J the coordinates ``Jx``,
  ``Jy``, ``Jz`` (and ``J_name`` for named cases), listed in each data variable's
  ``coordinates`` attribute, so that ``xarray.open_dataset(path, engine="h5netcdf")`` shows
  dims (J, T, V) with labelled coordinates;
* a ``[model]`` that sweeps some of its parameters (mu0, the texture's scale or exponent) adds
  one dimension per swept parameter between J and T, each a dimension scale named after it,
  e.g. (J, mu0, T, V); exchange tensors are stored as ``J_tensor`` (J, i, j) instead of
  ``Jx``, ``Jy``, ``Jz``;
* root attributes: units, the spec text and its sha256, jaxmi version, quadrature options,
  precision, device, created / finished timestamps, wall time, ``complete``; with a
  ``[model]`` also ``model`` (JSON), ``spin``, ``exchange``, ``texture`` and ``mu0`` (when it is
  not swept);
* the group ``/sweep`` holds the resume record ``chunks_done`` (one uint8 per chunk).

Crash safety. The file skeleton is written under a temporary name and linked into place, so a
kill during creation never leaves a half file at the target. All dataset storage is allocated
when the skeleton is created, with every value NaN (also the ``_FillValue`` attribute, so
netCDF readers such as xarray agree): a point not computed yet reads as NaN with any reader,
never as a plausible 0.0. Creating the file takes all of its disk space at once (the free space
is checked first, :mod:`jaxmi.sweep.budget`, and then reserved with ``posix_fallocate`` before
HDF5 writes the values), so a sweep that starts does not run out of disk later on ordinary
filesystems. A chunk write then changes only raw data (no HDF5 metadata), straight to the file
(no HDF5 chunk cache, whose deferred writes would report a full disk only when a handle is
freed, too late to keep the chunk unrecorded); the attributes that change later have fixed
sizes and are rewritten in place. A chunk is written, flushed, then marked done and flushed
again: a SIGKILL at any moment leaves a file that opens, in which every chunk marked done holds
its final values. A write that fails (ENOSPC on a copy-on-write filesystem, EIO, EFBIG from a
file-size limit) raises :class:`jaxmi.errors.WriteError` at once; that chunk is not recorded,
nothing else is written, and the file resumes where it stopped.

Locking. A writer holds an exclusive ``flock`` on the file for its whole run (released by the
kernel when the process dies, so a killed run leaves no stale lock); a second writer, or any
HDF5 program that tries to open the file while it is written, is refused. HDF5's own locking is
turned off for our handles (it would conflict with ours in the same process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import glob
import json
import os

import h5py
import numpy as np

from jaxmi.domain import SWEEP_QUANTITIES
from jaxmi.errors import StoreError, WriteError
from jaxmi.outputs import check_directory
from jaxmi.sweep import budget
from jaxmi.sweep.grid import Grid, Layout

FORMAT = "jaxmi-sweep/1"
#: CF attributes of every variable: (long_name, comment). The engine's numbers are
#: dimensionless (energies in units of hbar vF k0, couplings in hbar vF, conductance in e^2/h),
#: so every ``units`` is "1" (UDUNITS: dimensionless) and the short ``long_name``, which xarray
#: and jaxmi's plots use as the axis label, says in what the number is measured; ``comment``
#: says it in words.
VARIABLES = {
    "conductance": (
        "dG / (e^2/h)",
        "differential conductance correction dG = d current / dV, in units of the conductance "
        "quantum e^2/h",
    ),
    "current": ("I / (e vF k0 / h)", "backscattering current, in units of e vF k0 / h"),
    "spin": ("<S_j>", "impurity spin <S_j> = Tr(S_j rho), hbar = 1; x along the edge"),
    "error": (
        "error estimate",
        "per-point bound on the quadrature error of the observables, relative: the current's "
        "over s max(|V|, T), the conductance's over s, the spin's over S, s = (4/3) S (S + 1) "
        "sum J_ij^2; above the file's tolerance attribute the point may be inaccurate",
    ),
    "T": (
        "T / vF k0",
        "temperature k_B T in units of hbar vF k0 (k0: the spin-texture scale, theta = (k/k0)^2)",
    ),
    "V": ("eV / vF k0", "bias energy eV in units of hbar vF k0"),
    "u": ("eV / 2T", "bias energy over twice the temperature, u = eV / (2 k_B T)"),
    "Jx": ("Jx / vF", "exchange coupling Jx in units of hbar vF"),
    "Jy": ("Jy / vF", "exchange coupling Jy in units of hbar vF"),
    "Jz": ("Jz / vF", "exchange coupling Jz in units of hbar vF"),
    "J": ("coupling", "index along the coupling axis (the couplings: Jx, Jy, Jz or J_tensor)"),
    "J_name": ("coupling case", "name of the coupling case of the spec"),
    "component": ("spin component", "component of the impurity spin; x along the edge"),
    "J_tensor": (
        "J_ij / vF",
        "exchange tensor J_ij (i: impurity spin S^i, j: electron spin sigma^j) in units of hbar vF",
    ),
    "i_impurity": ("impurity spin component", "i of J_ij: the impurity spin S^i"),
    "j_electron": ("electron spin component", "j of J_ij: the electron spin sigma^j"),
    "mu0": ("mu0 / vF k0", "Fermi level at zero bias from the Dirac point, in units of hbar vF k0"),
    "scale": ("texture scale / vF k0", "theta = (|eps| / scale)^exponent, in units of hbar vF k0"),
    "exponent": ("texture exponent", "theta = (|eps| / scale)^exponent"),
}
#: What the numbers are (the root ``references`` attribute).
REFERENCES = (
    "master-equation model of a magnetic impurity exchange-coupled to the helical edge electrons "
    "of a 2D topological insulator with spin texture theta(k) = (k/k0)^2 (conductance "
    "correction Eqs. 3-19 of that model; jaxmi docs/physics.md)"
)
#: The dimensions of J_tensor after J (not "i", "j": netCDF names are case-blind to CF, and J
#: is taken).
TENSOR_DIMS = ("i_impurity", "j_electron")
#: The CF version whose attribute conventions the files follow (Conventions attribute).
CONVENTIONS = "CF-1.10"


def _describe(ds, name: str) -> None:
    """Write the CF attributes of variable ``name`` onto the h5py dataset ``ds``."""
    long_name, comment = VARIABLES[name]
    ds.attrs["units"] = "1"
    ds.attrs["long_name"] = long_name
    ds.attrs["comment"] = comment


#: Dimensions a [model] table can add between J and T, in this order (jaxmi.sweep.spec).
MODEL_DIMS = ("mu0", "scale", "exponent")
ROOT_UNITS = (
    "T, V (= eV): vF*k0; u = eV/2T: 1; Jx, Jy, Jz: 1 (J/vF); conductance: e^2/h; "
    "current: e*vF*k0/h; spin: <S_j> with hbar = 1"
)
_STAMP = "%Y-%m-%dT%H:%M:%SZ"  # always 20 characters: fixed-size attributes
# Fixed-size UTF-8 strings: rewritten in place, and read as str by netCDF readers.
_STAMP_DTYPE = h5py.string_dtype("utf-8", 20)
_DEVICE_DTYPE = h5py.string_dtype("utf-8", 96)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(_STAMP)


@dataclasses.dataclass(frozen=True, eq=False)
class Skeleton:
    """Everything the file holds before any chunk is computed.

    Attributes:
        grid: the coordinates (jaxmi.sweep.grid.Grid: J, names, T, V or u, V(T, u)).
        block: the chunk block, one length per dimension of the grid.
        quantities: the datasets to create.
        identity: attributes that must match to resume (spec sha256, chunk block, version).
        attrs: further root attributes (spec text, quadrature options, precision, ...).
        device: description of the devices of this run.
    """

    grid: Grid
    block: tuple[int, int, int]
    quantities: tuple[str, ...]
    spec_sha256: str
    version: str
    attrs: dict
    device: str

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid (nJ, nT, n3), or (nJ, <swept model parameters>, nT, n3)."""
        return self.grid.shape

    @property
    def layout(self) -> Layout:
        return Layout(shape=self.shape, block=tuple(self.block))

    @property
    def n_chunks(self) -> int:
        return self.layout.n_chunks


# --- locking and creation ---------------------------------------------------------------------


def _lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _remove_stale_temporaries(path: str) -> None:
    """Delete temporaries of killed creators: ``<path>.tmp-<pid>`` files nobody holds locked."""
    for tmp in glob.glob(glob.escape(path) + ".tmp-*"):
        with contextlib.suppress(OSError):
            fd = os.open(tmp, os.O_RDONLY)
            try:
                if _lock(fd):
                    os.unlink(tmp)
            finally:
                os.close(fd)


def _write_skeleton(path: str, sk: Skeleton) -> None:
    """Write a complete file skeleton at ``path`` (an existing empty file we hold locked)."""
    nj = sk.shape[0]
    third = sk.grid.third_name
    with h5py.File(path, "w", locking=False) as f:
        a = f.attrs
        a["jaxmi_format"] = FORMAT
        a["Conventions"] = CONVENTIONS
        a["title"] = sk.attrs.get("description") or "jaxmi sweep"
        a["source"] = f"jaxmi {sk.version}"
        a["references"] = REFERENCES
        a["history"] = f"{_now()} created by jaxmi {sk.version} (jaxmi run; resumes add no line)"
        a["units"] = ROOT_UNITS
        a["jaxmi_version"] = sk.version
        a["spec_sha256"] = sk.spec_sha256
        a["chunk_shape"] = np.asarray(sk.block, dtype=np.int64)
        a["quantities"] = list(sk.quantities)
        for k, v in sk.attrs.items():
            a[k] = v
        a.create("device", np.bytes_(sk.device.encode()[:96]), dtype=_DEVICE_DTYPE)
        a.create("created", np.bytes_(_now().encode()), dtype=_STAMP_DTYPE)
        a.create("finished", np.bytes_(b""), dtype=_STAMP_DTYPE)
        a.create("wall_time_s", np.float64(0.0))
        a.create("runs", np.int64(0))
        a.create("complete", np.uint8(0))

        def coord(name, data, dtype=np.float64):
            ds = f.create_dataset(name, data=data, dtype=dtype)
            _describe(ds, name)
            return ds

        tensor = sk.grid.J.ndim == 3
        scales = {
            "J": coord("J", np.arange(nj, dtype=np.int64), np.int64),
            **{name: coord(name, values) for name, values in sk.grid.model_axes},
            "T": coord("T", sk.grid.T),
            third: coord(third, sk.grid.third),
            "component": coord("component", ["x", "y", "z"], h5py.string_dtype()),
        }
        if tensor:
            for name in TENSOR_DIMS:
                scales[name] = coord(name, ["x", "y", "z"], h5py.string_dtype())
        scales["J"].attrs["kind"] = sk.grid.J_kind
        scales["J"].attrs["structured_shape"] = np.asarray(sk.grid.J_shape, dtype=np.int64)
        for name, ds in scales.items():
            ds.make_scale(name)
        along_j = []
        if tensor:
            # A data variable, not in the quantities' `coordinates`: CF wants an auxiliary
            # coordinate's dimensions to be a subset of its variable's, and (i, j) are not.
            jt = coord("J_tensor", sk.grid.J)
            jt.dims[0].attach_scale(scales["J"])
            jt.dims[1].attach_scale(scales[TENSOR_DIMS[0]])
            jt.dims[2].attach_scale(scales[TENSOR_DIMS[1]])
        else:
            for k, name in enumerate(("Jx", "Jy", "Jz")):
                along_j.append(coord(name, sk.grid.J[:, k]))
        if sk.grid.J_names is not None:
            along_j.append(coord("J_name", list(sk.grid.J_names), h5py.string_dtype()))
        for ds in along_j:
            ds.dims[0].attach_scale(scales["J"])
        coord_names = [ds.name.lstrip("/") for ds in along_j]
        if third == "u":
            v2 = coord("V", sk.grid.V)
            v2.dims[0].attach_scale(scales["T"])
            v2.dims[1].attach_scale(scales["u"])
            coord_names.append("V")

        # The resume record first: it lies before the data in the file.
        g = f.create_group("sweep")
        g.attrs["description"] = (
            "resume record: chunks_done[i] = 1 once chunk i (C order over the blocks of "
            "chunk_shape) is written"
        )
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        done = g.create_dataset(
            "chunks_done", shape=(sk.n_chunks,), dtype=np.uint8, fillvalue=0, dcpl=dcpl
        )
        done.make_scale("chunks_done")  # its own dimension: no phony dims for netCDF readers

        for q in sk.quantities:
            shape, chunks, dims = sk.shape, sk.block, list(sk.grid.dims)
            if q == "spin":
                shape, chunks, dims = (*shape, 3), (*chunks, 3), [*dims, "component"]
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            # All storage now: later chunk writes touch raw data only, never HDF5 metadata.
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            ds = f.create_dataset(
                q,
                shape=shape,
                dtype=np.float64,
                chunks=chunks,
                fillvalue=np.nan,
                fill_time="never",  # NaN is written by _fill_nan, after the space is reserved
                dcpl=dcpl,
            )
            ds.attrs["_FillValue"] = np.float64(np.nan)
            _describe(ds, q)
            ds.attrs["coordinates"] = " ".join(coord_names)
            for k, d in enumerate(dims):
                ds.dims[k].attach_scale(scales[d])


def _identity_problem(path: str, f: h5py.File, sk: Skeleton) -> str | None:
    """Why an existing jaxmi file cannot be resumed by this run, or None."""
    a = f.attrs
    if a.get("spec_sha256") != sk.spec_sha256:
        old = str(a.get("spec_sha256", "?"))[:12]
        return (
            f"{path}: exists and holds a sweep of another spec (spec sha256 {old}..., this "
            f"spec {sk.spec_sha256[:12]}...); use --overwrite to replace it, or -o elsewhere"
        )
    if a.get("jaxmi_version") != sk.version:
        return (
            f"{path}: was written by jaxmi {a.get('jaxmi_version')}, this is jaxmi {sk.version};"
            " resuming would mix two versions' results: use --overwrite to start again"
        )
    old_block = tuple(int(x) for x in a.get("chunk_shape", ()))
    if old_block != sk.block:
        dims = ", ".join(("J", *(name for name, _ in sk.grid.model_axes), "T", "V"))
        return (
            f"{path}: was started with chunks of {old_block} ({dims}) points, this run asks for "
            f"{sk.block}; resume with the same --chunk, or use --overwrite"
        )
    return _record_problem(path, f, sk.n_chunks)


def _record_problem(path: str, f: h5py.File, n_chunks: int) -> str | None:
    """Why the resume record ``sweep/chunks_done`` of an open jaxmi file is unusable, or None."""
    done = f.get("sweep/chunks_done")
    if not isinstance(done, h5py.Dataset):
        return f"{path}: the resume record sweep/chunks_done is missing; the file is damaged"
    if done.shape != (n_chunks,) or done.dtype != np.uint8:
        return (
            f"{path}: the resume record sweep/chunks_done has shape {done.shape} and dtype "
            f"{done.dtype}, the file's chunk shape needs ({n_chunks},) uint8; the file is damaged"
        )
    return None


def _n_chunks(shape: tuple[int, ...], block: tuple[int, ...]) -> int | None:
    """Chunks of a grid of ``shape`` cut into ``block``, or None if they do not fit together."""
    if len(shape) != len(block) or any(c < 1 for c in block):
        return None
    return Layout(shape=tuple(shape), block=tuple(block)).n_chunks


class Writer:
    """An open sweep file, locked for this process. Use as a context manager.

    A file whose chunks are all written is opened read-only: a rerun of a finished sweep leaves
    it byte-identical (``start_run`` and ``finish`` then do nothing).

    Attributes:
        path: the file.
        done: bool array (n_chunks,), True where the chunk is already written.
        resumed: whether the file existed (same spec) before this run.
    """

    def __init__(self, path: str, lock_fd: int, resumed: bool) -> None:
        self.path = path
        self._lock_fd = lock_fd
        self.resumed = resumed
        self._failed = False
        try:
            with h5py.File(path, "r", locking=False) as f:
                self.done = f["sweep/chunks_done"][...].astype(bool)
            self.readonly = bool(self.done.all())
            # No raw-data chunk cache: a chunk goes to the file inside write_chunk, where a
            # failed write raises; a cached one would fail only when its handle is freed.
            self._f = h5py.File(path, "r" if self.readonly else "r+", locking=False, rdcc_nbytes=0)
        except OSError as err:
            os.close(lock_fd)
            raise StoreError(f"{path}: cannot open the file for writing: {err}") from None
        self._done = self._f["sweep/chunks_done"]
        self._data = {name: self._f[name] for name in SWEEP_QUANTITIES if name in self._f}

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start_run(self, device: str) -> None:
        """Record the devices of this run (fixed-size attributes, rewritten in place)."""
        if self.readonly:
            return
        a = self._f.attrs
        self._checked(
            lambda: (
                a.modify("device", np.bytes_(device.encode()[:96])),
                a.modify("runs", np.int64(a["runs"] + 1)),
                self._f.flush(),
            ),
            "recording this run",
        )

    def write_chunk(self, i: int, region: tuple[slice, ...], values: dict[str, np.ndarray]):
        """Write chunk i's values at ``region`` (one slice per dimension), flush, then mark it
        done and flush again.

        Raises:
            WriteError: the write failed (disk full, I/O error, file-size limit): chunk i is
                not marked done, and nothing more is written to the file by this Writer.
        """

        def write():
            for name, arr in values.items():
                if name in self._data:
                    self._data[name][region] = arr
            self._f.flush()
            self._done[i] = 1
            self._f.flush()

        self._checked(write, f"writing chunk {i}")
        self.done[i] = True

    def _checked(self, action, what: str) -> None:
        if self._failed:
            raise StoreError(f"{self.path}: not written after an earlier write error")
        try:
            action()
        except OSError as err:
            self._failed = True
            raise WriteError(_write_message(self.path, what, err, int(self.done.sum()))) from None

    def finish(self, wall_time: float) -> None:
        """Add this run's wall time; if every chunk is done, set ``complete`` and ``finished``.
        Does nothing on a read-only file or after a failed write (the file stays as it was
        after its last good chunk)."""
        if self.readonly or self._failed:
            return
        a = self._f.attrs

        def record():
            a.modify("wall_time_s", np.float64(a["wall_time_s"] + wall_time))
            if self.done.all():
                a.modify("finished", np.bytes_(_now().encode()))
                a.modify("complete", np.uint8(1))
            self._f.flush()

        self._checked(record, "recording the run's end")

    def close(self) -> None:
        if self._f is not None:
            f, self._f = self._f, None
            self._data = {}
            self._done = None
            try:
                f.close()
            except OSError:
                if not self._failed:
                    raise
            finally:
                os.close(self._lock_fd)


def _write_message(path: str, what: str, err: OSError, kept: int) -> str:
    """One line for a failed write: the file, the reason, the free space, what is kept."""
    reason = os.strerror(err.errno) if err.errno else str(err).splitlines()[0]
    directory = os.path.dirname(os.path.abspath(path))
    try:
        free = f"{budget.size(budget.free_disk(directory))} free in {directory}"
    except OSError:
        free = f"free space of {directory} unknown"
    return (
        f"{path}: {what} failed: {reason} ({free}); the file is consistent and keeps its {kept} "
        "chunk(s) written before; free space (or lift the limit) and run the same command "
        "again to resume"
    )


_SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _reserve(fd: int, path: str, nbytes: int, what: str) -> None:
    """Allocate ``nbytes`` of the file behind ``fd`` (holes included) now, so that later writes
    within them cannot fail for want of space. A filesystem without fallocate is left as is.

    Raises:
        StoreError: there is not enough space (or a quota or file-size limit says so).
    """
    try:
        os.posix_fallocate(fd, 0, max(nbytes, 1))
    except OSError as err:
        if err.errno not in _SPACE_ERRORS:
            return  # EOPNOTSUPP, EINVAL, ...: writes will tell (and are checked)
        directory = os.path.dirname(os.path.abspath(path))
        raise StoreError(
            f"{path}: {what} needs {budget.size(nbytes)} on disk: {os.strerror(err.errno)} "
            f"({budget.size(budget.free_disk(directory))} free in {directory}); free space, "
            "write elsewhere with -o, or split the sweep"
        ) from None


def _fill_nan(path: str, sk: Skeleton) -> None:
    """Write NaN to every value of the data sets, chunk by chunk (the space is reserved)."""
    layout = sk.layout
    with h5py.File(path, "r+", locking=False, rdcc_nbytes=0) as f:
        for q in sk.quantities:
            ds = f[q]
            full = np.full(ds.chunks, np.nan)
            for i in range(layout.n_chunks):
                region = layout.region(i)
                ds[region] = full[tuple(slice(0, r.stop - r.start) for r in region)]


def _create(path: str, sk: Skeleton, *, reserve: int | None) -> tuple[str, int]:
    """Write the skeleton under a temporary name (locked), its data NaN; returns (temporary
    path, its fd).

    ``reserve``: bytes to find free before HDF5 writes anything (the estimate of
    :func:`jaxmi.sweep.budget.estimate`; None: do not check). HDF5 cannot recover from a write
    that fails inside its metadata cache (a later close crashes the process), so the space is
    proven first, the metadata-only skeleton is written, then the whole file is allocated and
    only then filled with NaN.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as err:
        raise StoreError(f"{path}: cannot create the output file: {err.strerror}") from None
    try:
        _lock(fd)
        if reserve is not None:
            _reserve(fd, path, reserve, "the sweep file")
            os.ftruncate(fd, 0)
        _write_skeleton(tmp, sk)  # sparse: metadata only, every data chunk allocated
        _reserve(fd, path, os.fstat(fd).st_size, "the sweep file")
        _fill_nan(tmp, sk)
    except BaseException as err:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, StoreError):
            raise StoreError(f"{path}: cannot create the output file: {err}") from None
        raise
    return tmp, fd


def open_writer(
    path: str,
    sk: Skeleton,
    *,
    overwrite: bool = False,
    estimate: budget.Estimate | None = None,
    force: bool = False,
) -> Writer:
    """Open ``path`` for this sweep: create it, or resume it if it holds the same sweep.

    Never overwrites a file without ``overwrite``: another spec's file, a file of another jaxmi
    version or chunk shape, and any non-jaxmi file are refused. A file another process is
    writing is refused even with ``overwrite``. A new file must fit the free disk space
    (``estimate``, checked before anything is created, unless ``force``); a resumed one has its
    space allocated before the run (files of this version have it already).

    Raises:
        StoreError: one line saying why, naming the path.
    """
    check_directory(path)
    _remove_stale_temporaries(path)
    # Space proven free before HDF5 writes: the whole file, or with force at least what HDF5
    # writes before the values are allocated (a failed write inside HDF5 crashes it later).
    reserve = None
    if estimate is not None:
        reserve = estimate.metadata_bytes if force else estimate.file_bytes
    for _attempt in range(3):
        if not os.path.exists(path):
            if estimate is not None:
                budget.check_disk(path, estimate, force=force)
            tmp, fd = _create(path, sk, reserve=reserve)
            try:
                os.link(tmp, path)  # atomic and never clobbers (unlike rename)
            except FileExistsError:
                os.close(fd)
                os.unlink(tmp)
                continue  # someone else created it meanwhile: inspect theirs
            except OSError as err:
                os.close(fd)
                os.unlink(tmp)
                raise StoreError(f"{path}: cannot create the output file: {err.strerror}") from None
            os.unlink(tmp)
            return Writer(path, fd, resumed=False)

        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise StoreError(f"{path}: cannot open the existing file: {err.strerror}") from None
        if not _lock(fd):
            os.close(fd)
            raise StoreError(
                f"{path}: another process is writing this file; wait for it to finish, or "
                "write elsewhere with -o"
            )
        problem = _inspect(path, sk)
        if problem is None:
            try:
                _reserve_existing(path)
            except BaseException:
                os.close(fd)
                raise
            return Writer(path, fd, resumed=True)
        if not overwrite:
            os.close(fd)
            raise StoreError(problem)
        # Replace, still holding the old file's lock so no writer can slip in meanwhile.
        try:
            if estimate is not None:
                budget.check_disk(path, estimate, force=force)
            tmp, new_fd = _create(path, sk, reserve=reserve)
            os.replace(tmp, path)
        finally:
            os.close(fd)
        return Writer(path, new_fd, resumed=False)
    raise StoreError(f"{path}: the file keeps appearing and disappearing; is another run busy?")


def _reserve_existing(path: str) -> None:
    """Allocate the holes of a file to be resumed (none in files this version creates; a sparse
    one would otherwise meet a full disk in the middle of the run)."""
    st = os.stat(path)
    if st.st_blocks * 512 >= st.st_size:
        return
    fd = os.open(path, os.O_RDWR)
    try:
        _reserve(fd, path, st.st_size, "resuming the sweep")
    finally:
        os.close(fd)


def _inspect(path: str, sk: Skeleton) -> str | None:
    """None if ``path`` is a resumable file of this sweep, else why not (one line)."""
    not_ours = (
        f"{path}: exists and is not a jaxmi sweep file; refusing to overwrite it "
        "(use --overwrite to replace it, or -o elsewhere)"
    )
    try:
        if not h5py.is_hdf5(path):
            return not_ours
        with h5py.File(path, "r", locking=False) as f:
            if f.attrs.get("jaxmi_format") != FORMAT:
                return not_ours
            return _identity_problem(path, f, sk)
    except OSError:
        return f"{path}: exists but cannot be read as HDF5; use --overwrite to replace it"


# --- reading ------------------------------------------------------------------------------------


def _text(value) -> str:
    if isinstance(value, bytes | np.bytes_):
        return value.decode(errors="replace")
    return str(value)


def summary(path: str) -> dict:
    """What a sweep file holds: dims, coordinate ranges, quantities, completeness, metadata.

    Opens read-only without HDF5 file locking, so it also works while a run writes the file.

    Raises:
        StoreError: the file is missing or is not a jaxmi sweep file.
    """
    if not os.path.isfile(path):
        raise StoreError(f"{path}: no such file")
    try:
        if not h5py.is_hdf5(path):
            raise StoreError(f"{path}: is not an HDF5 file")
        with h5py.File(path, "r", locking=False) as f:
            a = f.attrs
            if a.get("jaxmi_format") != FORMAT:
                raise StoreError(f"{path}: is not a jaxmi sweep file (no jaxmi_format attribute)")
            third = "u" if "u" in f else "V"
            model_dims = tuple(name for name in MODEL_DIMS if name in f)
            dims = {name: int(f[name].shape[0]) for name in ("J", *model_dims, "T", third)}
            coords = {}
            along_j = ("J_tensor",) if "J_tensor" in f else ("Jx", "Jy", "Jz")
            for name in (*along_j, *model_dims, "T", third) + (("V",) if third == "u" else ()):
                data = f[name][...]
                coords[name] = (float(np.min(data)), float(np.max(data)))
            block = tuple(int(x) for x in a.get("chunk_shape", ()))
            n_chunks = _n_chunks(tuple(dims.values()), block)
            problem = (
                f"{path}: the chunk shape {block} does not fit the grid {tuple(dims.values())}; "
                "the file is damaged"
                if n_chunks is None
                else _record_problem(path, f, n_chunks)
            )
            if problem is not None:
                raise StoreError(problem)
            done = f["sweep/chunks_done"][...]
            return {
                "path": path,
                "dims": dims,
                "coords": coords,
                "model": json.loads(_text(a["model"])) if "model" in a else None,
                "J_kind": _text(f["J"].attrs.get("kind", "")),
                "J_names": [_text(x) for x in f["J_name"][...]] if "J_name" in f else None,
                "quantities": [q for q in SWEEP_QUANTITIES if q in f],
                "chunks_done": int(done.sum()),
                "chunks": int(done.size),
                "chunk_shape": tuple(int(x) for x in a["chunk_shape"]),
                "complete": bool(a["complete"]),
                "attrs": {
                    k: _text(a[k])
                    for k in (
                        "model",
                        "code_path",
                        "jaxmi_version",
                        "quadrature_order",
                        "family_tail_panels",
                        "precision",
                        "device",
                        "created",
                        "finished",
                        "wall_time_s",
                        "runs",
                        "spec_path",
                        "spec_sha256",
                    )
                    if k in a
                },
            }
    except StoreError:
        raise  # already says what is wrong (a StoreError is also an OSError)
    except KeyError as err:
        raise StoreError(f"{path}: a jaxmi sweep file without {err}; the file is damaged") from None
    except OSError as err:
        raise StoreError(f"{path}: cannot be read as HDF5: {err}") from None


# --- reading (for plots and analysis) ----------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Sweep:
    """A sweep file in memory.

    Attributes:
        path: the file.
        J: (nJ, 3) couplings, or (nJ, 3, 3) exchange tensors; J_names: nJ case names or None;
            J_kind: "cases", "isotropic", "product" or "sphere"; J_shape: the structured shape
            of the J axis.
        T: (nT,) in vF*k0; third_name: "V" or "u"; third: (n3,) its values; V: (nT, n3) the bias.
        data: "conductance", "current" (nJ, nT, n3) and "spin" (nJ, nT, n3, 3), those present;
            NaN where the file's chunks are not written yet. With swept model parameters their
            dimensions come between J and T: (nJ, nmu0, nT, n3).
        complete: every chunk is written; description: the spec's description.
        model_axes: the swept model parameters {name: values}, in the order of their dimensions.
        model: the file's model description (``model`` attribute, JSON of
            jaxmi.model.Model.describe without the swept parameters), or None: the paper's model.
    """

    path: str
    J: np.ndarray
    J_names: list[str] | None
    J_kind: str
    J_shape: tuple[int, ...]
    T: np.ndarray
    third_name: str
    third: np.ndarray
    V: np.ndarray
    data: dict
    complete: bool
    description: str
    model_axes: dict = dataclasses.field(default_factory=dict)
    model: dict | None = None

    @property
    def dims(self) -> tuple[str, ...]:
        return ("J", *self.model_axes, "T", self.third_name)

    @property
    def shape(self) -> tuple[int, ...]:
        lengths = (len(v) for v in self.model_axes.values())
        return (len(self.J), *lengths, len(self.T), len(self.third))

    @property
    def paper(self) -> bool:
        """The paper's model (no [model] table, or the paper's model in one)."""
        if self.model_axes:
            return False
        m = self.model
        return m is None or (
            m.get("spin") == 0.5
            and m.get("exchange") == "diagonal"
            and m.get("mu0") == 0.0
            and m.get("texture") == {"kind": "power_law", "scale": 1.0, "exponent": 2.0}
        )


def _written(done: np.ndarray, shape: tuple[int, ...], block: tuple[int, ...]) -> np.ndarray:
    """Bool array of ``shape``: True at the points of chunks marked done. Chunks not marked
    read NaN, or hold the values of a write that was cut off (chunks_done is in C order over
    the blocks of chunk_shape)."""
    layout = Layout(shape=tuple(shape), block=tuple(block))
    mask = np.zeros(shape, bool)
    for i in np.flatnonzero(done):
        mask[layout.region(int(i))] = True
    return mask


def written_mask(path: str | os.PathLike, s: dict | None = None) -> np.ndarray:
    """Where a jaxmi sweep file holds computed values: a bool array of the grid's shape (without
    the spin component), True at the points of the chunks marked done. ``s``: the file's
    :func:`summary`, if the caller has it already.

    Raises:
        StoreError: the file is missing, not a jaxmi sweep file, or damaged (one line).
    """
    path = os.fspath(path)
    s = summary(path) if s is None else s
    with h5py.File(path, "r", locking=False) as f:
        return _written(f["sweep/chunks_done"][...], tuple(s["dims"].values()), s["chunk_shape"])


def read_sweep(path: str | os.PathLike) -> Sweep:
    """Read a jaxmi sweep file (docs/sweeps.md) into a :class:`Sweep`.

    Raises:
        jaxmi.StoreError: the file is missing or is not a jaxmi sweep file (one line).
    """
    path = os.fspath(path)
    s = summary(path)  # checks that it is a jaxmi file; one-line StoreError otherwise
    third = "u" if "u" in s["dims"] else "V"
    with h5py.File(path, "r", locking=False) as f:
        if "J_tensor" in f:
            J = f["J_tensor"][...]
        else:
            J = np.stack([f[k][...] for k in ("Jx", "Jy", "Jz")], axis=-1)
        model_axes = {name: f[name][...] for name in s["dims"] if name in MODEL_DIMS}
        T = f["T"][...]
        x3 = f[third][...]
        V = f["V"][...] if third == "u" else np.broadcast_to(x3, (len(T), len(x3)))
        data = {q: f[q][...] for q in s["quantities"]}
        shape = tuple(s["dims"].values())
        if not s["complete"]:
            mask = _written(f["sweep/chunks_done"][...], shape, s["chunk_shape"])
            for q, arr in data.items():
                m = mask if arr.ndim == len(shape) else mask[..., None]
                data[q] = np.where(m, arr, np.nan)
        description = f.attrs.get("description", "")
        J_shape = tuple(int(x) for x in f["J"].attrs.get("structured_shape", [len(J)]))
    if isinstance(description, bytes):
        description = description.decode(errors="replace")
    return Sweep(
        path=path,
        J=J,
        J_names=s["J_names"],
        J_kind=s["J_kind"],
        J_shape=J_shape,
        T=T,
        third_name=third,
        third=x3,
        V=np.asarray(V),
        data=data,
        complete=s["complete"],
        description=str(description),
        model_axes=model_axes,
        model=s["model"],
    )
