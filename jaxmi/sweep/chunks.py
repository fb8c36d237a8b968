"""Cut the (J, T, V) grid into fixed-shape chunks, and compute one chunk on one device.

A chunk is a block (cJ, cT, cV) of the output grid: cJ coupling vectors against the cT * cV
(T, V) pairs of a T block times a V block. Every chunk has the same shape, so one compiled
function serves the whole sweep; the last block along an axis is padded by repeating its last
valid index, and the padding's results are dropped. Within a chunk the energy integrals are
computed once per (T, V) pair and combined with all cJ couplings (the factorized path,
:func:`jaxmi.observables.grid`), so a J-heavy grid spends its time in the cheap combination.

Chunks go to the local JAX devices round-robin; each device runs the same single-device program
on whole chunks, so the results do not depend on the number of devices (bit for bit).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import numpy as np

from jaxmi import observables
from jaxmi.config import Config
from jaxmi.sweep.grid import Grid


@dataclasses.dataclass(frozen=True)
class Layout:
    """Chunk layout of an output grid.

    Attributes:
        shape: the grid (nJ, nT, nV).
        block: the chunk (cJ, cT, cV), each <= the grid's; chunks are numbered in C order over
            the block counts (J block slowest).
    """

    shape: tuple[int, int, int]
    block: tuple[int, int, int]

    @property
    def counts(self) -> tuple[int, int, int]:
        """Number of blocks along J, T and V."""
        return tuple(-(-n // c) for n, c in zip(self.shape, self.block, strict=True))

    @property
    def n_chunks(self) -> int:
        return math.prod(self.counts)

    @property
    def chunk_points(self) -> int:
        return math.prod(self.block)

    def region(self, i: int) -> tuple[slice, slice, slice]:
        """Where chunk i's valid points go in the output (J, T, V)."""
        idx = np.unravel_index(i, self.counts)
        return tuple(
            slice(int(k) * c, min((int(k) + 1) * c, n))
            for k, c, n in zip(idx, self.block, self.shape, strict=True)
        )

    def points(self, i: int) -> int:
        """Number of valid points in chunk i."""
        return math.prod(s.stop - s.start for s in self.region(i))


def _even(n: int, budget: int) -> int:
    """The block length <= budget that splits n into the fewest, most even blocks."""
    budget = max(1, min(n, budget))
    return -(-n // -(-n // budget))


def plan(shape: tuple[int, int, int], chunk: int) -> Layout:
    """Choose a chunk block of about ``chunk`` points for a grid of ``shape`` (nJ, nT, nV).

    J gets the budget first (more J per (T, V) pair amortizes the energy integrals), then V,
    then T; each block length splits its axis evenly, so padding is small.
    """
    nj, nt, nv = shape
    cj = _even(nj, chunk)
    cv = _even(nv, chunk // cj)
    ct = _even(nt, chunk // (cj * cv))
    return Layout(shape=(nj, nt, nv), block=(cj, ct, cv))


def inputs(grid: Grid, layout: Layout, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chunk i's inputs: J (cJ, 3) and the (T, V) pairs T (cT*cV,), V (cT*cV,), padded by
    repeating the last valid index along each axis. Pairs are in C order over (T, V)."""
    idx = []
    for s, c, n in zip(layout.region(i), layout.block, layout.shape, strict=True):
        if s.start + c <= n:
            idx.append(slice(s.start, s.start + c))  # a full block: a view, no gather
        else:
            idx.append(np.minimum(np.arange(s.start, s.start + c), n - 1))
    ij, it, iv = idx
    J = grid.J[ij]
    T = np.repeat(grid.T[it], layout.block[2])
    V = grid.V[it][:, iv].reshape(-1)
    return J, T, V


@functools.partial(jax.jit, static_argnames=("config", "block"))
def _chunk(J, T, V, *, config: Config, block: tuple[int, int, int]):
    current, conductance, spin = observables.grid_arrays(J, T, V, config)
    return conductance.reshape(block), current.reshape(block), spin.reshape(*block, 3)


class Computer:
    """Dispatches chunks to the local devices, round-robin, asynchronously.

    ``submit(i)`` starts chunk i on device ``i % n_devices`` and returns at once (JAX's async
    dispatch); ``result(handle)`` waits for it and returns the valid part as numpy arrays
    ``{"conductance": (nj, nt, nv), "current": ..., "spin": (nj, nt, nv, 3)}``.
    """

    def __init__(self, grid: Grid, layout: Layout, config: Config, devices=None) -> None:
        self.grid, self.layout, self.config = grid, layout, config
        self.devices = list(devices) if devices is not None else jax.local_devices()

    def submit(self, i: int):
        device = self.devices[i % len(self.devices)]
        J, T, V = jax.device_put(inputs(self.grid, self.layout, i), device)
        return i, _chunk(J, T, V, config=self.config, block=self.layout.block)

    def result(self, handle) -> dict[str, np.ndarray]:
        i, (g, c, s) = handle
        nj, nt, nv = (r.stop - r.start for r in self.layout.region(i))
        return {
            "conductance": np.asarray(g)[:nj, :nt, :nv],
            "current": np.asarray(c)[:nj, :nt, :nv],
            "spin": np.asarray(s)[:nj, :nt, :nv],
        }


def describe_devices(devices=None) -> str:
    """A short description of the devices, e.g. 'cpu x4 (cpu)'."""
    devices = list(devices) if devices is not None else jax.local_devices()
    kinds = sorted({d.device_kind for d in devices})
    return f"{devices[0].platform} x{len(devices)} ({', '.join(kinds)})"


__all__ = ["Computer", "Layout", "describe_devices", "inputs", "plan"]
