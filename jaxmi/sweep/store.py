"""The HDF5 store of a sweep: layout, crash-safe chunk writes, resume and locking.

The only module that imports h5py. Layout (DESIGN.md section 4; docs/sweeps.md):

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
when the skeleton is created, so a chunk write changes only raw data (no HDF5 metadata); the
attributes that change later have fixed sizes and are rewritten in place. A chunk is written,
flushed, then marked done and flushed again: a SIGKILL at any moment leaves a file that opens,
in which every chunk marked done holds its final values. Values of chunks not marked done are
undefined (not NaN-filled: that would double the bytes written).

Locking. A writer holds an exclusive ``flock`` on the file for its whole run (released by the
kernel when the process dies, so a killed run leaves no stale lock); a second writer, or any
HDF5 program that tries to open the file while it is written, is refused. HDF5's own locking is
turned off for our handles (it would conflict with ours in the same process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import glob
import json
import os

import h5py
import numpy as np

from jaxmi.errors import StoreError
from jaxmi.sweep.grid import Grid

FORMAT = "jaxmi-sweep/1"
UNITS = {
    "conductance": "e^2/h",
    "current": "e vF k0 / h",
    "spin": "1 (<S_j> = Tr(S_j rho), hbar = 1)",
    "T": "vF k0",
    "V": "vF k0 (V means eV)",
    "u": "1 (u = eV / 2T)",
    "Jx": "1 (J_x / vF)",
    "Jy": "1 (J_y / vF)",
    "Jz": "1 (J_z / vF)",
    "J_tensor": "1 (J_ij / vF)",
    "mu0": "vF k0",
    "scale": "vF k0",
    "exponent": "1",
}
LONG_NAMES = {
    "conductance": "differential conductance correction dG/G0 = d current / dV",
    "current": "backscattering current",
    "spin": "impurity spin <S_j>",
    "T": "temperature",
    "V": "bias eV",
    "u": "u = eV / 2T",
    "Jx": "exchange coupling Jx",
    "Jy": "exchange coupling Jy",
    "Jz": "exchange coupling Jz",
    "J": "coupling index",
    "J_name": "coupling case name",
    "component": "spin component",
    "J_tensor": "exchange tensor J_ij (i: impurity spin S^i, j: electron spin sigma^j)",
    "i": "impurity spin component of J_ij",
    "j": "electron spin component of J_ij",
    "mu0": "Fermi level mu0 at zero bias, from the Dirac point",
    "scale": "texture scale: theta = (|eps| / scale)^exponent",
    "exponent": "texture exponent: theta = (|eps| / scale)^exponent",
}
#: Dimensions a [model] table can add between J and T, in this order (jaxmi.sweep.spec).
MODEL_DIMS = ("mu0", "scale", "exponent")
ROOT_UNITS = (
    "T, V (= eV): vF*k0; u = eV/2T: 1; Jx, Jy, Jz: 1 (J/vF); conductance: e^2/h; "
    "current: e*vF*k0/h; spin: <S_j> with hbar = 1"
)
_STAMP = "%Y-%m-%dT%H:%M:%SZ"  # always 20 characters: fixed-size attributes
_STAMP_DTYPE = "S20"
_DEVICE_DTYPE = "S96"


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
    def n_chunks(self) -> int:
        n = 1
        for s, c in zip(self.shape, self.block, strict=True):
            n *= -(-s // c)
        return n


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
            if name in UNITS:
                ds.attrs["units"] = UNITS[name]
            ds.attrs["long_name"] = LONG_NAMES[name]
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
            for name in ("i", "j"):
                scales[name] = coord(name, ["x", "y", "z"], h5py.string_dtype())
        scales["J"].attrs["kind"] = sk.grid.J_kind
        scales["J"].attrs["structured_shape"] = np.asarray(sk.grid.J_shape, dtype=np.int64)
        for name, ds in scales.items():
            ds.make_scale(name)
        along_j = []
        if tensor:
            jt = coord("J_tensor", sk.grid.J)
            jt.dims[1].attach_scale(scales["i"])
            jt.dims[2].attach_scale(scales["j"])
            along_j.append(jt)
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
                fill_time="never",
                dcpl=dcpl,
            )
            ds.attrs["units"] = UNITS[q]
            ds.attrs["long_name"] = LONG_NAMES[q]
            ds.attrs["coordinates"] = " ".join(coord_names)
            for k, d in enumerate(dims):
                ds.dims[k].attach_scale(scales[d])

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
    return None


class Writer:
    """An open sweep file, locked for this process. Use as a context manager.

    Attributes:
        path: the file.
        done: bool array (n_chunks,), True where the chunk is already written.
        resumed: whether the file existed (same spec) before this run.
    """

    def __init__(self, path: str, lock_fd: int, resumed: bool) -> None:
        self.path = path
        self._lock_fd = lock_fd
        self.resumed = resumed
        try:
            self._f = h5py.File(path, "r+", locking=False)
        except OSError as err:
            os.close(lock_fd)
            raise StoreError(f"{path}: cannot open the file for writing: {err}") from None
        self._done = self._f["sweep/chunks_done"]
        self.done = self._done[...].astype(bool)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start_run(self, device: str) -> None:
        """Record the devices of this run (fixed-size attributes, rewritten in place)."""
        a = self._f.attrs
        a.modify("device", np.bytes_(device.encode()[:96]))
        a.modify("runs", np.int64(a["runs"] + 1))
        self._f.flush()

    def write_chunk(self, i: int, region: tuple[slice, ...], values: dict[str, np.ndarray]):
        """Write chunk i's values at ``region`` (one slice per dimension), flush, then mark it
        done."""
        for name, arr in values.items():
            if name in self._f:
                self._f[name][region] = arr
        self._f.flush()
        self._done[i] = 1
        self._f.flush()
        self.done[i] = True

    def finish(self, wall_time: float) -> None:
        """Add this run's wall time; if every chunk is done, set ``complete`` and ``finished``."""
        a = self._f.attrs
        a.modify("wall_time_s", np.float64(a["wall_time_s"] + wall_time))
        if self.done.all():
            a.modify("finished", np.bytes_(_now().encode()))
            a.modify("complete", np.uint8(1))
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
            os.close(self._lock_fd)


def _check_directory(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(directory):
        raise StoreError(f"{path}: the output directory {directory} does not exist")
    if not os.path.isdir(directory):
        raise StoreError(f"{path}: {directory} is not a directory")
    if os.path.isdir(path):
        raise StoreError(f"{path}: is a directory, not an output file")


def _create(path: str, sk: Skeleton) -> tuple[str, int]:
    """Write the skeleton under a temporary name (locked); returns (temporary path, its fd)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as err:
        raise StoreError(f"{path}: cannot create the output file: {err.strerror}") from None
    try:
        _lock(fd)
        _write_skeleton(tmp, sk)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp, fd


def open_writer(path: str, sk: Skeleton, *, overwrite: bool = False) -> Writer:
    """Open ``path`` for this sweep: create it, or resume it if it holds the same sweep.

    Never overwrites a file without ``overwrite``: another spec's file, a file of another jaxmi
    version or chunk shape, and any non-jaxmi file are refused. A file another process is
    writing is refused even with ``overwrite``.

    Raises:
        StoreError: one line saying why, naming the path.
    """
    _check_directory(path)
    _remove_stale_temporaries(path)
    for _attempt in range(3):
        if not os.path.exists(path):
            tmp, fd = _create(path, sk)
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
            return Writer(path, fd, resumed=True)
        if not overwrite:
            os.close(fd)
            raise StoreError(problem)
        # Replace, still holding the old file's lock so no writer can slip in meanwhile.
        try:
            tmp, new_fd = _create(path, sk)
            os.replace(tmp, path)
        finally:
            os.close(fd)
        return Writer(path, new_fd, resumed=False)
    raise StoreError(f"{path}: the file keeps appearing and disappearing; is another run busy?")


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
            if f.attrs.get("jaxmi_format") != FORMAT or "sweep/chunks_done" not in f:
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
            done = f["sweep/chunks_done"][...]
            return {
                "path": path,
                "dims": dims,
                "coords": coords,
                "model": json.loads(_text(a["model"])) if "model" in a else None,
                "J_kind": _text(f["J"].attrs.get("kind", "")),
                "J_names": [_text(x) for x in f["J_name"][...]] if "J_name" in f else None,
                "quantities": [q for q in ("conductance", "current", "spin") if q in f],
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
            # Values of chunks not marked done are undefined: mask them (chunks_done is in C
            # order over the blocks of chunk_shape; store.py).
            done = f["sweep/chunks_done"][...].astype(bool)
            block = s["chunk_shape"]
            nblocks = tuple(-(-n // c) for n, c in zip(shape, block, strict=True))
            mask = np.zeros(shape, bool)
            for i in np.flatnonzero(done):
                idx = np.unravel_index(i, nblocks)
                mask[tuple(slice(k * c, (k + 1) * c) for k, c in zip(idx, block, strict=True))] = 1
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
