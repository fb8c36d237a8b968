"""Observables from the stationary state: current (Eq. 12), conductance dI/dV, spin, rho.

Two evaluation paths share the per-J combination :func:`combine`:

* direct: per (J, T, V) point, integrals -> generator -> state -> observables;
* factorized (:func:`grid`): the energy integrals and their V-derivative are computed once per
  (T, V) pair and combined with every J vector; the master equation and the current are
  quadratic in J, so the (T, V)-dependent part is a few small fixed matrices.

The conductance is the total derivative dI/dV (the stationary state depends on V), taken by
forward-mode autodiff through the integrals, the quadrature nodes and the stationary solve.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from jaxmi.config import Config
from jaxmi.generator import Generator, generator
from jaxmi.integrals import coefficients
from jaxmi.stationary import free_state, reached_state_solve, safe_ratio

_S = 0.5 * jnp.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex)


class Observables(NamedTuple):
    """Results of one evaluation; leading axes are the broadcast batch shape.

    Attributes:
        current: backscattering current, units e vF k0 / h, shape (...).
        conductance: dG / G0 = d current / dV, units e^2/h, shape (...).
        spin: (<Sx>, <Sy>, <Sz>) = Tr(S rho), shape (..., 3).
        density_matrix: rho of the impurity, shape (..., 2, 2), complex.
    """

    current: Array
    conductance: Array
    spin: Array
    density_matrix: Array


def free_current(J: Array, V: Array) -> Array:
    """Texture-free current -V (Jx^2 - Jy^2)^2 / (2 (Jx^2 + Jy^2)), exact at any T (Eq. 14, first
    term); 0 at Jx = Jy = 0 (no backscattering)."""
    jx2, jy2 = J[0] * J[0], J[1] * J[1]
    return -0.5 * V * safe_ratio((jx2 - jy2) ** 2, jx2 + jy2)


def combine(J: Array, gen: Generator, config: Config) -> tuple[Array, Array]:
    """Current and Bloch vector r for one J (3,) and one (T, V) generator.

    Returns:
        (current, r): shapes () and (3,); rho = 1/2 + r . S.
    """
    jj = (J[:, None] * J[None, :]).reshape(9)
    b0 = jnp.tensordot(jj, gen.bloch0, axes=1)
    db = jnp.tensordot(jj, gen.dbloch, axes=1)
    m = b0[:, 1:] + db[:, 1:]
    r0 = free_state(J, gen.pol)
    dr = reached_state_solve(m, db[:, 0] + db[:, 1:] @ r0, config.regularization)
    r = r0 + dr
    c0 = jj @ gen.cur0
    dc = jj @ gen.dcur
    current = free_current(J, gen.V) + c0[1:] @ dr + dc[0] + dc[1:] @ r
    return current, r


def _from_r(current: Array, conductance: Array, r: Array) -> Observables:
    rho = 0.5 * jnp.eye(2) + jnp.einsum("k,kab->ab", r, _S)
    return Observables(current, conductance, 0.5 * r, rho)


def point(J: Array, T: Array, V: Array, config: Config = Config()) -> Observables:
    """Direct path for one point: J (3,), T and V scalars (units vF*k0)."""

    def current_and_r(v):
        return combine(J, generator(coefficients(T, v, config=config)), config)

    (cur, r), (dcur, _) = jax.jvp(current_and_r, (V,), (jnp.ones_like(V),))
    return _from_r(cur, dcur, r)


@functools.partial(jax.jit, static_argnames="config")
def points(J: Array, T: Array, V: Array, config: Config = Config()) -> Observables:
    """Direct path over a flat batch: J (n, 3), T (n,), V (n,) -> Observables with leading (n,)."""
    return jax.vmap(point, in_axes=(0, 0, 0, None))(J, T, V, config)


def generators(T: Array, V: Array, config: Config = Config()) -> tuple[Generator, Generator]:
    """Generators of a flat batch of (T, V) pairs and their V-derivatives, leading axis (n,)."""

    def one(t, v):
        return jax.jvp(
            lambda vv: generator(coefficients(t, vv, config=config)), (v,), (jnp.ones_like(v),)
        )

    return jax.vmap(one)(T, V)


def combine_many(J: Array, gen: Generator, dgen: Generator, config: Config) -> Observables:
    """Observables for J (nJ, 3) against one (T, V) generator and its V-derivative -> (nJ,)."""

    def one(j):
        (cur, r), (dcur, _) = jax.jvp(lambda g: combine(j, g, config), (gen,), (dgen,))
        return _from_r(cur, dcur, r)

    return jax.vmap(one)(J)


@functools.partial(jax.jit, static_argnames="config")
def grid(J: Array, T: Array, V: Array, config: Config = Config()) -> Observables:
    """Factorized path: J (nJ, 3) against (T, V) pairs T (nP,), V (nP,) -> leading (nJ, nP).

    The energy integrals are computed once per (T, V) pair, then combined with every J.
    """
    gen, dgen = generators(T, V, config)
    gen, dgen = jax.lax.optimization_barrier((gen, dgen))
    out = jax.vmap(combine_many, in_axes=(None, 0, 0, None))(J, gen, dgen, config)
    return jax.tree_util.tree_map(lambda x: jnp.moveaxis(x, 0, 1), out)
