"""Per-point error estimate of the observables from the quadrature error bounds of the integrals.

The integrals' bounds come from :func:`jaxmi.quadrature.error_bound` (per piece, from the same
node values as the integrals); those of their V-derivatives (the conductance) from the tangents
of the node values. They are carried to the observables to first order, with absolute values
throughout, so that no cancellation can hide an error:

    |d obs| <= sum_k |d obs / d c_k| e_k + sum_k |d obs / d c'_k| e'_k,

with c the E_n integrals and c' = dc/dV; on the paper path the derivatives are written out
through the 2x2 solve (:func:`paper_bounds`), on the general path they are one reverse pass
per observable through the solve (jaxmi.family.slope_and_error); never through the integrals.

What "relative" means (one number per point, ``Observables.error``): the largest of

* the current's bound over ``s max(|V|, T)``,
* the conductance's bound over ``s``,
* each spin component's bound over S,

with ``s = (4/3) S (S + 1) sum_ij J_ij^2`` (= Jx^2 + Jy^2 + Jz^2 for the paper's model): the
natural scales of the observables, which stay finite where a value is 0 (the current at V = 0,
everything at J = 0: there the estimate is 0, the observables being exactly 0). Relative to the
value itself would be meaningless at a zero and huge at the T^4 cancellation of an isotropic
impurity, where the absolute accuracy is what the engine guarantees (docs/accuracy.md).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxmi.generator import forms_map
from jaxmi.quadrature import ROUNDOFF
from jaxmi.stationary import safe_ratio

#: Floor of the per-point estimate: the roundoff of the final sums (relative to the scales).
OUTPUT_FLOOR = 4.0 * float(np.finfo(float).eps)


@functools.cache
def abs_forms_map() -> np.ndarray:
    """(6, 78): the bound of the forms' errors (6 x 13, flat) from those of the six complex
    integrals E_n of the windows (jaxmi.integrals.flat_errors: one bound for the real and the
    imaginary part), i.e. |forms_map()| summed over each pair of rows (Re, Im)."""
    a = np.abs(forms_map()).reshape(15, -1)
    return np.concatenate([a[3:6] + a[6:9], a[9:12] + a[12:15]])


def forms_errors(e: Array, forms: Array) -> Array:
    """Bounds on the errors of Generator.forms (..., 6, 13) from the six bounds e (..., 6) of
    jaxmi.integrals.flat_errors, plus their own roundoff (ROUNDOFF relative)."""
    flat = jnp.tensordot(e, jnp.asarray(abs_forms_map()), axes=1)
    return flat.reshape(forms.shape) + ROUNDOFF * jnp.abs(forms)


def coupling_scale(j2: Array, spin: float) -> Array:
    """s = (4/3) S (S + 1) j2, j2 = sum of the squared couplings (J_ij^2, or Jx^2 + Jy^2 + Jz^2
    for diagonal exchange)."""
    return (4.0 / 3.0) * spin * (spin + 1.0) * j2


def relative(bounds: Array, s: Array, T: Array, V: Array) -> Array:
    """The per-point estimate from absolute bounds on the leading axis of ``bounds`` (k, ...):
    the current's, the conductance's, then those of O(1) quantities (the spin over S, the
    Bloch vector, rho's entries), which count as they are; s the coupling scale (...)."""
    natural = s * jnp.maximum(jnp.abs(V), T)
    parts = [safe_ratio(bounds[0], natural), safe_ratio(bounds[1], s), *bounds[2:]]
    out = functools.reduce(jnp.maximum, parts)
    return jnp.where(s > 0, out + OUTPUT_FLOOR, 0.0)


def _inverse_abs(m, reg: float):
    """|(M - reg s)^{-1}| entrywise for the 2x2 block m = (Mxx, Mxz, Mzx, Mzz), as the engine's
    regularised solve (jaxmi.stationary.reached_state_solve) inverts it; a 4-tuple."""
    largest = functools.reduce(jnp.maximum, (jnp.abs(x) for x in m))
    s = jnp.where(largest > 0, largest, 1.0)
    a, b, c, d = m[0] / s - reg, m[1] / s, m[2] / s, m[3] / s - reg
    det = jnp.abs(a * d - b * c) * s
    det = jnp.where(det > 0, det, np.inf)  # only where the numerators it divides are 0 (J = 0)
    return jnp.abs(d) / det, jnp.abs(b) / det, jnp.abs(c) / det, jnp.abs(a) / det


def _apply(inv, x):
    """inv (4-tuple, 2x2 row-major) applied to the 2-vector x."""
    return inv[0] * x[0] + inv[1] * x[1], inv[2] * x[0] + inv[3] * x[1]


def paper_bounds(q, dq, eq, edq, dr, ddr, rz0, drz0, reg: float):
    """First-order bounds on the errors of (current, conductance, rx, rz) of the paper path from
    the bounds eq, edq (13, ...) of the forms q and their V-derivatives dq (13, ...) (columns on
    the leading axis, jaxmi.generator.COLUMNS), at the solution: dr = (drx, drz) the texture
    deviation of the Bloch vector, ddr its V-derivative, rz0 and drz0 the closed-form part and
    its V-derivative. Returns (4, ...).

    With I = free + lam . dr + dc + dcz rz0, lam = (c0x + dcx, c0z + dcz), dr = -M^-1 rhs,
    rhs = (dbx + dMxz rz0, dbz + dMzz rz0), and G = dI/dV (dr' = -M^-1 (M' dr + rhs')), each
    product contributes |factor| times the other's bound; M^-1's error is that of its
    argument: d(M^-1 x) = M^-1 (dx - dM M^-1 x). All terms with absolute values.
    """
    (mxx, mxz, mzx, mzz, dmxz, dmzz, dbx, dbz, c0x, c0z, dc, dcx, dcz) = q
    (pxx, pxz, pzx, pzz, pmxz, pmzz, pbx, pbz, p0x, p0z, pc, pcx, pcz) = dq
    e = eq
    f = edq
    inv = _inverse_abs((mxx, mxz, mzx, mzz), reg)
    adr = (jnp.abs(dr[0]), jnp.abs(dr[1]))
    addr = (jnp.abs(ddr[0]), jnp.abs(ddr[1]))
    arz0, adrz0 = jnp.abs(rz0), jnp.abs(drz0)
    # dr: d(dr) <= |M^-1| (d rhs + dM |dr|)
    d_rhs = (e[6] + arz0 * e[4], e[7] + arz0 * e[5])
    d_mdr = (e[0] * adr[0] + e[1] * adr[1], e[2] * adr[0] + e[3] * adr[1])
    eps = _apply(inv, (d_rhs[0] + d_mdr[0], d_rhs[1] + d_mdr[1]))
    lam = (jnp.abs(c0x + dcx), jnp.abs(c0z + dcz))
    dlam = (e[8] + e[11], e[9] + e[12])
    b_cur = lam[0] * eps[0] + lam[1] * eps[1] + dlam[0] * adr[0] + dlam[1] * adr[1]
    b_cur = b_cur + e[10] + e[12] * arz0
    # dr' = -M^-1 X, X = M' dr + rhs'
    d_rhs1 = (
        f[6] + arz0 * f[4] + adrz0 * e[4],
        f[7] + arz0 * f[5] + adrz0 * e[5],
    )
    d_x = (
        f[0] * adr[0] + f[1] * adr[1] + jnp.abs(pxx) * eps[0] + jnp.abs(pxz) * eps[1] + d_rhs1[0],
        f[2] * adr[0] + f[3] * adr[1] + jnp.abs(pzx) * eps[0] + jnp.abs(pzz) * eps[1] + d_rhs1[1],
    )
    d_m = (e[0] * addr[0] + e[1] * addr[1], e[2] * addr[0] + e[3] * addr[1])
    eps1 = _apply(inv, (d_x[0] + d_m[0], d_x[1] + d_m[1]))
    lam1 = (jnp.abs(p0x + pcx), jnp.abs(p0z + pcz))
    dlam1 = (f[8] + f[11], f[9] + f[12])
    b_g = dlam1[0] * adr[0] + dlam1[1] * adr[1] + lam1[0] * eps[0] + lam1[1] * eps[1]
    b_g = b_g + dlam[0] * addr[0] + dlam[1] * addr[1] + lam[0] * eps1[0] + lam[1] * eps1[1]
    b_g = b_g + f[10] + f[12] * arz0 + e[12] * adrz0
    del mxx, mxz, mzx, mzz, dmxz, dmzz, dbx, dbz, dc, pmxz, pmzz, pbx, pbz, pc
    return jnp.stack([b_cur, b_g, eps[0], eps[1]])
