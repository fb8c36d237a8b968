"""Stationary state of the Bloch equation dr/dt = M r + b (Eq. 10 = 0, Tr rho = 1 built in).

rho = 1/2 + sum_k r_k S^k. The state is solved as r = r0 + dr:

* r0 is the texture-free stationary state in closed form, <S^z> = Jx Jy tanh(V/2T) / (Jx^2+Jy^2)
  (Eq. 13 with Ic = 1, Is = 0; it holds at any bias, see docs/physics.md);
* dr solves M dr = -(db + dM r0), whose right side is built from texture deviations only.

For an isotropic impurity the answer is a cancellation of O(J^2) terms down to O(J^2 T^4); solving
for r directly loses ~1e-16 / T^4 relative (1e-4 at T = 1e-3), the deviation form does not.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import Array


def safe_ratio(num: Array, den: Array) -> Array:
    """num / den with the value 0 where den == 0, and finite gradients there.

    Used for J-ratios such as Jx Jy / (Jx^2 + Jy^2), bounded but 0/0 when Jx = Jy = 0. A plain
    ``where`` after the division still differentiates the NaN branch; this divides by 1 there.
    """
    ok = den != 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def free_polarization(J: Array, pol: Array) -> Array:
    """Texture-free stationary rz0 = 2 Jx Jy pol / (Jx^2 + Jy^2) (rho = 1/2 + rz0 S^z).

    At Jx = Jy = 0 there is no spin flip at all; the state reached from rho = 1/2 is rz0 = 0.
    """
    jx, jy = J[..., 0], J[..., 1]
    return 2.0 * safe_ratio(jx * jy, jx * jx + jy * jy) * pol


def reached_state_solve(
    m: tuple[Array, Array, Array, Array], rhs: tuple[Array, Array], regularization: float
) -> tuple[Array, Array]:
    """x = -(M - delta s)^{-1} rhs for the 2x2 x-z block: the limit of dx/dt = M x + rhs, x(0) = 0.

    For a stable M (the Bloch matrix of a Lindblad generator), (delta - M)^{-1} rhs is the
    Laplace transform at delta of the trajectory started at rho = 1/2; as delta -> 0 it tends to
    that trajectory's limit. So where the stationary state is not unique (a single non-zero
    coupling: pure dephasing; J = 0; T = V = 0) this returns the state reached from rho = 1/2,
    finite, with finite gradients, and where it is unique it changes the result by a relative
    ~delta / (smallest decay rate / largest): negligible unless a coupling is below
    ~sqrt(delta) of the largest. Cramer's rule: no pivoting, a few flops per J.

    The scale s = max |M_ij| is held out of the gradient (the result does not depend on it to
    first order in delta).

    Args:
        m: (Mxx, Mxz, Mzx, Mzz), each of the batch shape; eigenvalues with Re <= 0.
        rhs: (rx, rz).
        regularization: delta, relative to s.

    Returns:
        (x_x, x_z).
    """
    mxx, mxz, mzx, mzz = m
    largest = functools.reduce(jnp.maximum, (jnp.abs(x) for x in m))
    s = jax.lax.stop_gradient(largest)
    s = jnp.where(s > 0, s, 1.0)
    a, b, c, d = mxx / s - regularization, mxz / s, mzx / s, mzz / s - regularization
    ux, uz = rhs[0] / s, rhs[1] / s
    det = a * d - b * c
    # A singular M (rank one: T = V = 0 at J = (0.25, 0, 0.35), mu0 = 0.2) leaves det(M / s) to
    # cancellation, which can round to exactly 0 although det(M / s - delta) = det(M / s)
    # - delta tr(M / s) + delta^2 is not: 0 / 0 was a NaN. Keep the delta terms there.
    det = jnp.where(det == 0, regularization * (regularization - (mxx + mzz) / s), det)
    return -(d * ux - b * uz) / det, -(a * uz - c * ux) / det
