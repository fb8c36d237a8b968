"""Spec -> flat coordinate arrays of the sweep grid (numpy, float64; no JAX).

The output grid has shape (nJ, nT, nV): every coupling against every (T, V) pair. When the spec
gives the bias as u = eV/2T, the third axis is u and the bias is the 2-D coordinate
V[t, k] = 2 u[k] T[t]. A ``[model]`` table may sweep some of the model's parameters (the Fermi
level mu0, the power-law texture's scale and exponent): each swept one is a dimension between J
and T, e.g. (nJ, nmu0, nT, nV). Units: T, V, mu0 and the texture scale in vF*k0; u and J
dimensionless.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxmi.sweep.spec import Axis, JAxis, ModelSpec, Spec


@dataclasses.dataclass(frozen=True, eq=False)
class Grid:
    """Coordinates of a sweep.

    Attributes:
        J: couplings, shape (nJ, 3) (Jx, Jy, Jz), or (nJ, 3, 3) exchange tensors J[i, j] when
            the model's exchange is "tensor".
        J_names: case names (nJ strings) or None.
        J_kind, J_shape: how the J axis was built and the shape it reshapes to (C order).
        T: temperatures, shape (nT,).
        third_name: "V" or "u".
        third: the third axis' values, shape (n3,).
        V: the bias at every (T, third) pair, shape (nT, n3): V[t, k] = third[k] for a V axis,
            2 u[k] T[t] for a u axis.
        model: the spec's ``[model]`` table, or None (the paper's model).
        model_axes: the swept model parameters ((name, values (n,)), ...), in output order.
        paper_path: every point runs on the paper's fast path (jaxmi.observables), else on the
            general path of the model family (jaxmi.family).
    """

    J: np.ndarray
    J_names: tuple[str, ...] | None
    J_kind: str
    J_shape: tuple[int, ...]
    T: np.ndarray
    third_name: str
    third: np.ndarray
    V: np.ndarray
    model: ModelSpec | None = None
    model_axes: tuple[tuple[str, np.ndarray], ...] = ()
    paper_path: bool = True

    @property
    def dims(self) -> tuple[str, ...]:
        """("J", <swept model parameters>, "T", "V" or "u")."""
        return ("J", *(n for n, _ in self.model_axes), "T", self.third_name)

    @property
    def shape(self) -> tuple[int, ...]:
        """(nJ, nT, n3), with the swept model parameters' lengths between J and T."""
        return (
            self.J.shape[0],
            *(v.shape[0] for _, v in self.model_axes),
            self.T.shape[0],
            self.third.shape[0],
        )

    @property
    def n_points(self) -> int:
        return math.prod(self.shape)


def axis_values(axis: Axis) -> np.ndarray:
    """The values of an axis, float64 (linear: numpy.linspace; log: numpy.geomspace; both
    include the end points exactly)."""
    if axis.spacing == "values":
        return np.asarray(axis.values, dtype=np.float64)
    if axis.spacing == "log":
        return np.geomspace(axis.start, axis.stop, axis.num, dtype=np.float64)
    return np.linspace(axis.start, axis.stop, axis.num, dtype=np.float64)


def j_vectors(j: JAxis) -> np.ndarray:
    """The nJ couplings of a J axis in the order of the output's J axis: shape (nJ, 3), or
    (nJ, 3, 3) for exchange tensors (``j.tensor``)."""
    if j.tensor:
        if j.kind == "cases":
            return np.asarray([v for _, v in j.cases], dtype=np.float64).reshape(-1, 3, 3)
        return axis_values(j.axes[0])[:, None, None] * np.eye(3)  # isotropic: J times 1
    if j.kind == "cases":
        return np.asarray([v for _, v in j.cases], dtype=np.float64).reshape(-1, 3)
    if j.kind == "isotropic":
        return np.repeat(axis_values(j.axes[0])[:, None], 3, axis=1)
    if j.kind == "product":
        x, y, z = (axis_values(a) for a in j.axes)
        mesh = np.meshgrid(x, y, z, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)
    mags = axis_values(j.axes[0])
    theta = np.pi * (np.arange(j.n_theta) + 0.5) / j.n_theta
    phi = 2.0 * np.pi * np.arange(j.n_phi) / j.n_phi
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    unit = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=-1)
    return (mags[:, None, None, None] * unit[None]).reshape(-1, 3)


def build(spec: Spec) -> Grid:
    """The coordinate arrays of a validated spec."""
    J = j_vectors(spec.J)
    T = axis_values(spec.T)
    third = axis_values(spec.third)
    if spec.third_name == "V":
        V = np.broadcast_to(third[None, :], (T.shape[0], third.shape[0])).copy()
    else:
        V = 2.0 * third[None, :] * T[:, None]
    model_axes = tuple((name, axis_values(axis)) for name, axis in spec.model_axes)
    for a in (J, T, third, V, *(v for _, v in model_axes)):
        a.setflags(write=False)
    return Grid(
        J=J,
        J_names=spec.J.names,
        J_kind=spec.J.kind,
        J_shape=spec.J.shape,
        T=T,
        third_name=spec.third_name,
        third=third,
        V=V,
        model=spec.model,
        model_axes=model_axes,
        paper_path=spec.paper_path,
    )


# --- chunk layout (no JAX: the pre-flight plans before anything is allocated) ---------------

#: Most energy-integral evaluations ((T, V) pairs times model points) in one chunk of the general
#: path: its real-axis quadrature holds ~200 kB per pair while it runs (measured on XLA:CPU), so
#: 1024 pairs keep a chunk under ~0.3 GB and ~0.5 s on one CPU core.
FAMILY_PAIRS = 1024


@dataclasses.dataclass(frozen=True)
class Layout:
    """Chunk layout of an output grid.

    Attributes:
        shape: the grid (nJ, nT, nV), or (nJ, <swept model parameters>, nT, nV).
        block: the chunk, one length per dimension, each <= the grid's; chunks are numbered in
            C order over the block counts (J block slowest).
    """

    shape: tuple[int, ...]
    block: tuple[int, ...]

    @property
    def counts(self) -> tuple[int, ...]:
        """Number of blocks along each dimension."""
        return tuple(-(-n // c) for n, c in zip(self.shape, self.block, strict=True))

    @property
    def n_chunks(self) -> int:
        return math.prod(self.counts)

    @property
    def chunk_points(self) -> int:
        return math.prod(self.block)

    def region(self, i: int) -> tuple[slice, ...]:
        """Where chunk i's valid points go in the output."""
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


def plan(shape: tuple[int, ...], chunk: int, *, max_pairs: int | None = None) -> Layout:
    """Choose a chunk block of about ``chunk`` points for a grid of ``shape`` (nJ, ..., nT, nV).

    J gets the budget first (more J per (T, V) pair amortizes the energy integrals), then V,
    then T, then the swept model parameters (last first); each block length splits its axis
    evenly, so padding is small. ``max_pairs`` caps the product of the non-J block lengths (the
    energy integrals computed per chunk; :data:`FAMILY_PAIRS` on the general path).
    """
    cj = _even(shape[0], chunk)
    budget = chunk // cj
    if max_pairs is not None:
        budget = min(budget, max_pairs)
    rest = []
    for n in reversed(shape[1:]):
        c = _even(n, budget)
        rest.append(c)
        budget //= c
    return Layout(shape=tuple(shape), block=(cj, *reversed(rest)))


def plan_grid(g: Grid | Spec, chunk: int) -> Layout:
    """The layout of a sweep (of its grid, or of its spec before the grid is built): :func:`plan`,
    with the pairs per chunk capped on the general path."""
    return plan(g.shape, chunk, max_pairs=None if g.paper_path else FAMILY_PAIRS)
