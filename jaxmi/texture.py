"""Spin texture: the rotation angle theta(k) and the rotation B(k) of paper Eq. 5.

Energies and momenta are in units of vF*k0 and k0; energy is conserved in a scattering event,
so k = eps / vF and theta = eps**2 in these units. All functions accept complex ``eps`` because
the energy integrals run along a contour in the complex plane.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

SIGMA = (
    jnp.array([[0, 1], [1, 0]], dtype=complex),
    jnp.array([[0, -1j], [1j, 0]], dtype=complex),
    jnp.array([[1, 0], [0, -1]], dtype=complex),
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
    """exp(i n theta) - 1 for Im(theta) >= 0 (the upper contour of jaxmi.quadrature).

    Near theta = 0 it is written as 2i sin(n theta/2) exp(i n theta/2): the naive form loses all
    digits of its real part, cos(n theta) - 1 ~ -(n theta)^2/2, and for small theta (the T^4
    regime) that deviation is the whole answer. Far out on the contour the product form is
    inf * 0 (sin grows like exp(Im), exp decays), so there the plain exp(i n theta) - 1 is used,
    which is bounded by 2 for Im(theta) >= 0 and has no cancellation once |n theta| > 1/2.
    """
    h = 0.5 * n * th
    small = jnp.abs(h) < 0.25
    hs = jnp.where(small, h, 0.0)
    hl = jnp.where(small, 1.0, h)
    return jnp.where(small, 2j * jnp.sin(hs) * jnp.exp(1j * hs), jnp.exp(2j * hl) - 1.0)
