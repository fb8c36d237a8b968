"""Pre-flight of a sweep: how many points, how many bytes on disk, how much host memory.

Everything here is integer arithmetic on the spec's shape and chunk layout (no JAX, no h5py, no
array is allocated), so a mistaken spec of 1e12 or 1e18 points is refused in milliseconds with
the numbers, before the grid's coordinates are built or a file is created. The one decision
"does this sweep fit this machine" is :func:`check_memory` (before the grid is built) and
:func:`check_disk` (before the output file is created, :mod:`jaxmi.sweep.store`); both raise a
one-line :class:`jaxmi.errors.StoreError` that says what is needed, what is there and how to
split the sweep, unless ``force``.

The file estimate is the HDF5 file's size with every value allocated (the store writes NaN to
every point when it creates the file, so the space is taken at creation: a sweep that starts
can always finish writing). It is an upper bound: data and coordinates exactly, plus HDF5's
per-chunk index and fixed overheads as measured (``tests/test_store_faults.py`` compares it with
real files).
"""

from __future__ import annotations

import dataclasses
import math
import os

from jaxmi.errors import StoreError
from jaxmi.sweep.grid import Layout
from jaxmi.sweep.spec import Spec

#: Bytes of one stored value (float64).
VALUE_BYTES = 8
#: HDF5's chunk index (v1 B-tree) per chunk and dataset, and a fixed part per file (superblock,
#: object headers, dimension scales, attributes, the spec text). Upper bounds of what
#: tests/test_store_faults.py measures (60-70 bytes per chunk and data set, ~40 kB fixed).
INDEX_BYTES_PER_CHUNK = 80
FIXED_BYTES = 64 * 1024
#: Host memory of one chunk in flight, in values per point: the outputs (5 float64: conductance,
#: current, 3 spin) on the device and in the host copy, and the compiled program's temporaries.
CHUNK_VALUES_PER_POINT = 40
#: Host memory per chunk of the bookkeeping (the resume record, the list of chunks to do).
BOOK_BYTES_PER_CHUNK = 48
#: Working memory of one general-path chunk per energy-integral pair (jaxmi.sweep.grid).
FAMILY_BYTES_PER_PAIR = 256 * 1024


@dataclasses.dataclass(frozen=True)
class Estimate:
    """What a sweep needs.

    Attributes:
        dims: every dimension and its length, in order ({"J": 8000, "T": 10, "V": 3}).
        points: grid points; chunks: compute chunks.
        file_bytes: the output file with every value allocated (an upper bound).
        memory_bytes: peak host memory of a run (coordinates, chunks in flight, bookkeeping).
        coordinate_bytes: the part of memory_bytes held by the grid's coordinates.
        metadata_bytes: the part of file_bytes that is not computed values (coordinates,
            index, attributes): what HDF5 writes before the values are allocated.
        layout: the chunk layout the estimate is for.
    """

    dims: dict
    points: int
    chunks: int
    file_bytes: int
    memory_bytes: int
    coordinate_bytes: int
    metadata_bytes: int
    layout: Layout

    def describe(self) -> str:
        """'2.4e5 points (J x T x V = 8000 x 10 x 3), 9.9 MB on disk, 60 MB of memory'."""
        names = " x ".join(self.dims)
        sizes = " x ".join(str(n) for n in self.dims.values())
        return (
            f"{count(self.points)} points ({names} = {sizes}), {size(self.file_bytes)} on disk, "
            f"{size(self.memory_bytes)} of memory"
        )


def count(n: int) -> str:
    """An integer for a message: exact below 1e6, else 1.2e12."""
    if n < 10**6:
        return str(n)
    mantissa, exponent = f"{n:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def si(x: float, unit: str) -> str:
    """A number with a decimal SI prefix and its unit: '512 B', '9.9 MB', '61 points/s',
    '1.5 M points/s' (two significant digits below 10, whole numbers above)."""
    prefix = ""
    for prefix in ("", "k", "M", "G", "T", "P", "E"):
        if abs(x) < 999.5 or prefix == "E":
            break
        x /= 1000.0
    if not prefix:
        return f"{x:.2g} {unit}" if x < 9.95 and x != int(x) else f"{x:.0f} {unit}"
    space = "" if unit == "B" else " "
    number = f"{x:.1f}" if x < 9.95 else f"{x:.0f}"
    return f"{number} {prefix}{space}{unit}"


def size(n: float) -> str:
    """Bytes with a decimal SI prefix: '512 B', '9.9 MB', '40 TB'."""
    return si(n, "B")


def _values_per_point(spec: Spec) -> int:
    return sum(3 if q == "spin" else 1 for q in spec.quantities)


def _coordinate_values(spec: Spec, *, in_memory: bool) -> int:
    """float64 values of the grid's coordinates: as built in memory (jaxmi.sweep.grid.Grid, whose
    V is always (nT, n3)), or as stored (a 2-D V only for a u axis)."""
    n_j = math.prod(spec.J.shape)
    n_t, n_3 = len(spec.T), len(spec.third)
    per_j = 9 if spec.J.tensor else 3
    model = sum(len(axis) for _, axis in spec.model_axes)
    v_2d = n_t * n_3 if in_memory or spec.third_name == "u" else 0
    return n_j * (per_j + 1) + n_t + n_3 + v_2d + model  # + 1: the J index


def estimate(spec: Spec, layout: Layout, n_devices: int = 1) -> Estimate:
    """Points, file bytes and peak memory of ``spec`` cut into ``layout`` (pure arithmetic).

    Args:
        spec: a validated spec.
        layout: its chunk layout (:func:`jaxmi.sweep.grid.plan_grid` of the spec).
        n_devices: devices computing at once (one chunk in flight on each, one being written).
    """
    points = math.prod(spec.shape)
    chunks = layout.n_chunks
    n_datasets = len(spec.quantities)
    coords = _coordinate_values(spec, in_memory=True) * VALUE_BYTES
    names = sum(len(name) + 32 for name in spec.J.names or ())
    metadata = (
        _coordinate_values(spec, in_memory=False) * VALUE_BYTES
        + names
        + chunks * (1 + n_datasets * INDEX_BYTES_PER_CHUNK)
        + len(spec.text.encode())
        + FIXED_BYTES
    )
    file_bytes = points * _values_per_point(spec) * VALUE_BYTES + metadata
    per_chunk = layout.chunk_points * CHUNK_VALUES_PER_POINT * VALUE_BYTES
    if not spec.paper_path:
        pairs = layout.chunk_points // layout.block[0]
        per_chunk += pairs * FAMILY_BYTES_PER_PAIR
    memory = coords + names + (n_devices + 1) * per_chunk + chunks * BOOK_BYTES_PER_CHUNK
    return Estimate(
        dims=dict(zip(spec.dims, spec.shape, strict=True)),
        points=points,
        chunks=chunks,
        file_bytes=file_bytes,
        memory_bytes=memory,
        coordinate_bytes=coords,
        metadata_bytes=metadata,
        layout=layout,
    )


# --- what this machine has ----------------------------------------------------------------------


def free_disk(directory: str) -> int:
    """Bytes this user may still write under ``directory`` (statvfs: blocks available to
    non-root users, as ``df`` shows them)."""
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def available_memory() -> int:
    """Host memory available to a new computation: MemAvailable of /proc/meminfo (Linux), else
    the physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


_SPLIT = (
    "split the sweep into several specs (fewer J, T or V values each; a resumed file keeps its "
    "chunks), or pass --force to try anyway"
)


def check_memory(spec: Spec, est: Estimate, *, force: bool = False) -> None:
    """Refuse a sweep whose grid would not fit this machine's memory.

    Raises:
        StoreError: one line with the estimate and how to split the sweep (not with ``force``).
    """
    if force:
        return
    have = available_memory()
    if est.memory_bytes > have:
        raise StoreError(
            f"{spec.path}: {est.describe()}; this machine has {size(have)} of memory "
            f"available; {_SPLIT}"
        )


def check_disk(path: str, est: Estimate, *, force: bool = False) -> None:
    """Refuse to create ``path`` when the sweep's file would not fit the free space of its
    directory.

    Raises:
        StoreError: one line with the estimate, the free space and what to do (not with
            ``force``).
    """
    if force:
        return
    directory = os.path.dirname(os.path.abspath(path))
    free = free_disk(directory)
    if est.file_bytes > free:
        raise StoreError(
            f"{path}: {est.describe()}; {directory} has {size(free)} free; free space, write "
            f"elsewhere with -o, or {_SPLIT}"
        )


def preflight(
    spec: Spec, chunk: int | None, path: str, *, n_devices: int = 1, force: bool = False
) -> Estimate:
    """The estimate of a sweep, checked against this machine: its memory, and the free disk
    space when ``path`` does not exist yet (an existing file is resumed or refused later, by
    :func:`jaxmi.sweep.store.open_writer`). Arithmetic only: no JAX, nothing allocated.

    Raises:
        StoreError: the sweep does not fit (not with ``force``).
    """
    from jaxmi.sweep.grid import plan_grid

    est = estimate(spec, plan_grid(spec, chunk if chunk is not None else spec.chunk), n_devices)
    check_memory(spec, est, force=force)
    if not os.path.lexists(path) and os.path.isdir(os.path.dirname(os.path.abspath(path))):
        check_disk(path, est, force=force)
    return est
