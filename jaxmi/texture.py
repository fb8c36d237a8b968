"""Spin texture: the rotation angle theta(k) and the rotation B(k) of paper Eq. 5.

Energies and momenta are in units of vF*k0 and k0; energy is conserved in a scattering event,
so k = eps / vF and theta = eps**2 in these units. All functions accept complex ``eps`` because
the energy integrals run along a contour in the complex plane.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import Array

SIGMA = (  # numpy constants: safe to import under a jit trace
    np.array([[0, 1], [1, 0]], dtype=complex),
    np.array([[0, -1j], [1j, 0]], dtype=complex),
    np.array([[1, 0], [0, -1]], dtype=complex),
)


def theta(eps: Array) -> Array:
    """Texture angle theta = (k/k0)^2 = eps^2 (Eq. 5); eps in units of vF*k0."""
    return eps * eps


def rotation(eps: Array) -> Array:
    """B(eps) = cos(theta) + i sigma_y sin(theta), shape (..., 2, 2) (Eq. 5)."""
    t = theta(jnp.asarray(eps))[..., None, None]
    return jnp.cos(t) * jnp.eye(2) + 1j * jnp.sin(t) * SIGMA[1]


def rotation_matrix(eps: Array) -> Array:
    """O(eps), shape (..., 3, 3): B^dagger sigma_j B = sum_m O[j, m] sigma_m (Eq. 7).

    B^dagger sigma_x B = cos(2 theta) sigma_x - sin(2 theta) sigma_z, sigma_y is unchanged and
    B^dagger sigma_z B = sin(2 theta) sigma_x + cos(2 theta) sigma_z.
    """
    t = 2 * theta(jnp.asarray(eps))
    c, s = jnp.cos(t), jnp.sin(t)
    z, o = jnp.zeros_like(c), jnp.ones_like(c)
    return jnp.stack(
        [jnp.stack([c, z, -s], -1), jnp.stack([z, o, z], -1), jnp.stack([s, z, c], -1)], -2
    )


def phase_minus_one(n: int, th: Array) -> Array:
    """exp(i n theta) - 1 for complex theta with Im(theta) >= 0 (the upper contour).

    Evaluated as expm1: the naive form loses all digits of its real part,
    cos(n theta) - 1 ~ -(n theta)^2/2, when theta is small, and for small theta (the T^4 regime)
    that deviation is the whole answer. Bounded by 2 where Im(theta) >= 0.
    """
    return jnp.expm1(1j * n * th)


def real_kernel_parts(theta: Array) -> tuple[Array, Array, Array, Array]:
    """Re and Im of exp(2 i theta) - 1 and exp(4 i theta) - 1 for real theta, without
    cancellation: (cos 2theta - 1, sin 2theta, cos 4theta - 1, sin 4theta), each theta's shape.

    cos 2theta - 1 = -2 sin^2 theta and cos 4theta - 1 = -2 sin^2 2theta: no digits lost for
    small theta, where the deviation is the whole answer.
    """
    s, c = jnp.sin(theta), jnp.cos(theta)
    re2, im2 = -2.0 * s * s, 2.0 * s * c
    re4, im4 = -2.0 * im2 * im2, 2.0 * im2 * (1.0 + re2)
    return re2, im2, re4, im4


def real_moments(win: Array, theta: Array) -> tuple[Array, Array]:
    """(win @ (exp(2 i theta) - 1), win @ (exp(4 i theta) - 1)) for real win (m, n) and real
    theta (n,): shapes (m,) complex each.

    Four real matrix-vector products instead of two complex ones whose real weights would be
    promoted to complex: 1.15x on the whole direct path. (One (m, n) x (n, 4) product is as fast
    but its summation order on XLA:CPU depends on the batch size, so a point's last bits would
    depend on the batch it is in; these do not: tests/test_devices.py.)
    """
    re2, im2, re4, im4 = (win @ k for k in real_kernel_parts(theta))
    return re2 + 1j * im2, re4 + 1j * im4
