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
import numpy as np
from jax import Array

from jaxmi import estimate
from jaxmi.config import Config
from jaxmi.generator import COLUMNS, PAIRS, Generator, generator
from jaxmi.integrals import coefficients_and_values, flat_errors, tangent_pieces
from jaxmi.stationary import free_polarization, reached_state_solve, safe_ratio

# numpy, not jnp: a module constant must not become a tracer if first imported under jit.
_PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex)


def density_from_spin(spin: Array) -> Array:
    """rho = 1/2 + sum_k <S^k> sigma^k (spin-1/2), spin (..., 3) -> (..., 2, 2) complex."""
    eye = jnp.eye(2).reshape((1,) * (spin.ndim - 1) + (2, 2))
    return 0.5 * eye + jnp.einsum("...k,kab->...ab", spin, _PAULI)


class Observables(NamedTuple):
    """Results of one evaluation; leading axes are the broadcast batch shape.

    Attributes:
        current: backscattering current, units e vF k0 / h, shape (...).
        conductance: dG / G0 = d current / dV, units e^2/h, shape (...).
        spin: (<Sx>, <Sy>, <Sz>) = Tr(S rho), shape (..., 3).
        density_matrix: rho of the impurity, shape (..., 2, 2), complex.
        error: the per-point estimate of the quadrature error, relative, one number for all
            the observables (jaxmi.estimate: the largest of the current's error over
            J^2 max(|V|, T), the conductance's over J^2 and the spin's over S), shape (...);
            None where a path does not compute it.
    """

    current: Array
    conductance: Array
    spin: Array
    density_matrix: Array
    error: Array | None = None


def free_current(J: Array, V: Array) -> Array:
    """Texture-free current -V (Jx^2 - Jy^2)^2 / (2 (Jx^2 + Jy^2)), exact at any T (Eq. 14, first
    term); 0 at Jx = Jy = 0 (no backscattering)."""
    jx2, jy2 = J[..., 0] * J[..., 0], J[..., 1] * J[..., 1]
    # ratio first: squaring jx2 - jy2 underflows to 0 for |J| < 1e-77 while the result does not
    return -0.5 * V * (jx2 - jy2) * safe_ratio(jx2 - jy2, jx2 + jy2)


def pair_products(J: Array) -> Array:
    """jj6 = (Jx^2, Jy^2, Jz^2, JxJy, JxJz, JyJz) over ``PAIRS``, shape (..., 6)."""
    return jnp.stack([J[..., j] * J[..., k] for j, k in PAIRS], axis=-1)


def combine(J: Array, q: Array, V: Array, pol: Array, config: Config) -> tuple[Array, Array]:
    """Current and Bloch vector r from the quadratic forms evaluated at J.

    Elementwise over any batch shape: J (..., 3), q = jj6 @ Generator.forms (..., 13), V and
    pol (...) broadcastable.

    Returns:
        (current, r): shapes (...) and (..., 3); rho = 1/2 + r . S (r_y = 0 for diagonal J).
    """
    q = dict(zip(COLUMNS, jnp.moveaxis(q, -1, 0), strict=True))
    rz0 = free_polarization(J, pol)
    rhs = (q["dbx"] + q["dMxz"] * rz0, q["dbz"] + q["dMzz"] * rz0)
    drx, drz = reached_state_solve(
        (q["Mxx"], q["Mxz"], q["Mzx"], q["Mzz"]), rhs, config.regularization
    )
    rx, rz = drx, rz0 + drz
    current = (
        free_current(J, V)
        + q["c0x"] * drx
        + q["c0z"] * drz
        + q["dc"]
        + q["dcx"] * rx
        + q["dcz"] * rz
    )
    return current, jnp.stack([rx, jnp.zeros_like(rx), rz], axis=-1)


def from_bloch(current: Array, conductance: Array, r: Array, error=None) -> Observables:
    """Observables from the current, the conductance and the Bloch vector r = 2 <S> (and the
    per-point error estimate, where computed)."""
    return Observables(current, conductance, 0.5 * r, density_from_spin(0.5 * r), error)


def generator_and_errors(T: Array, V: Array, config: Config, integrals=None, moving=False):
    """(gen, dgen, eq, deq) of one (T, V) pair: the generator, its V-derivative and the error
    bounds of their forms (6, 13) each (jaxmi.estimate.forms_errors).

    ``integrals``: v -> (Coefficients, node values) at the bias v (default: the paper path's,
    jaxmi.integrals.coefficients_and_values); ``moving``: its nodes move with V (the general
    path's real pieces at T = 0), so the kernels' tangents count in the V-derivatives' bounds.
    """
    if integrals is None:
        integrals = functools.partial(coefficients_and_values, T, config=config)

    def one(v):
        c, values = integrals(v)
        return generator(c), values

    (gen, values), (dgen, dvalues) = jax.jvp(one, (V,), (jnp.ones_like(V),))
    eq = estimate.forms_errors(flat_errors(values, config.order), gen.forms)
    de = flat_errors(tangent_pieces(values, dvalues, moving), config.order)
    deq = estimate.forms_errors(de, dgen.forms)
    return gen, dgen, eq, deq


def slope_and_error(J, jj6, q, dq, gen, dgen, eq, deq, T, config: Config):
    """(current, conductance, r, error) of J (..., 3) with jj6 (..., 6), the forms q, dq
    (..., 13) at J, against generators and form bounds broadcasting with them."""
    ones = jnp.ones_like(gen.V)
    (cur, r), (dcur, dr_v) = jax.jvp(
        lambda a, v, p: combine(J, a, v, p, config), (q, gen.V, gen.pol), (dq, ones, dgen.pol)
    )
    rz0, drz0 = jax.jvp(lambda p: free_polarization(J, p), (gen.pol,), (dgen.pol,))
    a6 = jnp.abs(jj6)
    eqj = jnp.moveaxis(jnp.einsum("...p,...pc->...c", a6, eq), -1, 0)
    edqj = jnp.moveaxis(jnp.einsum("...p,...pc->...c", a6, deq), -1, 0)
    bounds = estimate.paper_bounds(
        jnp.moveaxis(q, -1, 0),
        jnp.moveaxis(dq, -1, 0),
        eqj,
        edqj,
        (r[..., 0], r[..., 2] - rz0),
        (dr_v[..., 0], dr_v[..., 2] - drz0),
        rz0,
        drz0,
        config.regularization,
    )
    s = estimate.coupling_scale(jnp.sum(J * J, axis=-1), 0.5)
    return cur, dcur, r, estimate.relative(bounds, s, T, gen.V)


def point(J: Array, T: Array, V: Array, config: Config = Config()) -> Observables:
    """Direct path for one point: J (3,), T and V scalars (units vF*k0)."""
    gen, dgen, eq, deq = generator_and_errors(T, V, config)
    jj6 = pair_products(J)
    q, dq = jj6 @ gen.forms, jj6 @ dgen.forms
    cur, dcur, r, err = slope_and_error(J, jj6, q, dq, gen, dgen, eq, deq, T, config)
    return from_bloch(cur, dcur, r, err)


#: Points per block of the direct path: a block's per-node intermediates (~1 MB) stay in
#: cache; measured 1.5-2.4x faster than one vmap over 1e4 points on 2 cores.
DIRECT_BLOCK = 128


@functools.partial(jax.jit, static_argnames="config")
def points(J: Array, T: Array, V: Array, config: Config = Config()) -> Observables:
    """Direct path over a flat batch: J (n, 3), T (n,), V (n,) -> Observables with leading (n,).

    Evaluated in blocks of DIRECT_BLOCK points (the last one padded with copies of the first
    point and dropped), so intermediates stay in cache.
    """
    n = T.shape[0]
    block = min(n, DIRECT_BLOCK)
    n_blocks = -(-n // block)
    pad = n_blocks * block - n

    def blocks(x):
        x = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad, *x.shape[1:]))])
        return x.reshape(n_blocks, block, *x.shape[1:])

    one_block = jax.vmap(point, in_axes=(0, 0, 0, None))
    out = jax.lax.map(lambda a: one_block(*a, config), (blocks(J), blocks(T), blocks(V)))
    return jax.tree_util.tree_map(lambda x: x.reshape(n_blocks * block, *x.shape[2:])[:n], out)


def generators(T: Array, V: Array, config: Config = Config()) -> tuple[Generator, Generator]:
    """Generators of a flat batch of (T, V) pairs and their V-derivatives, leading axis (n,)."""
    gen, dgen, _, _ = jax.vmap(lambda t, v: generator_and_errors(t, v, config))(T, V)
    return gen, dgen


#: Points per block of the J-combination: its intermediates then stay in cache (measured on
#: 2 cores: ~3x faster than one pass over a 1e7-point chunk, which is memory bound).
BLOCK_POINTS = 8192


def _combine_block(J: Array, gen: Generator, dgen: Generator, errors, config: Config):
    """(current, conductance, spin[, error]) of J (b, 3) against generators (nP,): shapes
    (b, nP[, 3]); the error where ``errors`` = (eq, deq, T): the forms' bounds (nP, 6, 13) each
    and the temperatures (nP,), is given."""
    jj6 = pair_products(J)
    q = jnp.einsum("jp,npc->jnc", jj6, gen.forms)
    dq = jnp.einsum("jp,npc->jnc", jj6, dgen.forms)
    Jb = J[:, None, :]
    if errors is not None:
        bc = jax.tree_util.tree_map(lambda x: x[None], (gen, dgen, *errors))
        cur, dcur, r, err = slope_and_error(Jb, jj6[:, None, :], q, dq, *bc, config)
        return cur, dcur, 0.5 * r, err
    (cur, r), (dcur, _) = jax.jvp(
        lambda q_, v_, p_: combine(Jb, q_, v_, p_, config),
        (q, gen.V[None, :], gen.pol[None, :]),
        (dq, jnp.ones_like(gen.V)[None, :], dgen.pol[None, :]),
    )
    return cur, dcur, 0.5 * r


def combine_grid(J: Array, gen: Generator, dgen: Generator, config: Config, errors=None):
    """Every J (nJ, 3) against every pair of a batch of generators (nP,).

    The quadratic forms and their V-derivatives are evaluated at blocks of J (two small matrix
    products), then elementwise arithmetic; blocks of ~BLOCK_POINTS points keep it in cache.

    Returns:
        (current (nJ, nP), conductance (nJ, nP), spin (nJ, nP, 3)), and the error (nJ, nP)
        where ``errors`` (the forms' bounds and T, (eq, deq, T)) is given.
    """
    n_j, n_p = J.shape[0], gen.V.shape[0]
    block = max(1, min(n_j, BLOCK_POINTS // max(n_p, 1)))
    n_blocks = -(-n_j // block)
    Jp = jnp.concatenate([J, jnp.zeros((n_blocks * block - n_j, 3))]).reshape(n_blocks, block, 3)
    out = jax.lax.map(lambda j: _combine_block(j, gen, dgen, errors, config), Jp)
    return jax.tree_util.tree_map(lambda x: x.reshape(n_blocks * block, *x.shape[2:])[:n_j], out)


@functools.partial(jax.jit, static_argnames=("config", "with_error"))
def grid_arrays(J: Array, T: Array, V: Array, config: Config = Config(), with_error: bool = False):
    """Factorized path without the density matrix (what a sweep stores).

    J (nJ, 3) against (T, V) pairs T (nP,), V (nP,) -> (current (nJ, nP), conductance (nJ, nP),
    spin (nJ, nP, 3)), and with ``with_error`` the per-point error estimate (nJ, nP) after them
    (jaxmi.estimate; it costs a reverse pass per observable through the per-J part). The energy
    integrals are computed once per pair, then combined with every J.
    """
    if not with_error:
        gen, dgen = generators(T, V, config)
        # Keeps XLA from fusing the integrals' reductions into the per-J loops.
        gen, dgen = jax.lax.optimization_barrier((gen, dgen))
        return combine_grid(J, gen, dgen, config)
    gen, dgen, eq, deq = jax.vmap(lambda t, v: generator_and_errors(t, v, config))(T, V)
    gen, dgen, eq, deq = jax.lax.optimization_barrier((gen, dgen, eq, deq))
    return combine_grid(J, gen, dgen, config, (eq, deq, T))


@functools.partial(jax.jit, static_argnames="config")
def grid(J: Array, T: Array, V: Array, config: Config = Config()) -> Observables:
    """Factorized path: J (nJ, 3) against (T, V) pairs T (nP,), V (nP,) -> leading (nJ, nP)."""
    cur, dcur, spin, err = grid_arrays(J, T, V, config, with_error=True)
    return Observables(cur, dcur, spin, density_from_spin(spin), err)
