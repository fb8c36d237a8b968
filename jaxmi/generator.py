"""The master-equation generator (Eq. 10) and the current functional (Eq. 12) from (T, V) integrals.

For a spin-1/2 impurity and couplings G_ab(eps) = sum_j J_j S^j R_j(eps)_ab (Eq. 7), with
R_j = B^dagger sigma_j B = sum_m O_jm(eps) sigma_m the texture rotation, Eq. 10 reads

    d rho / dt  ~  - sum_jl A_jl ( {S^j S^l, rho} - 2 S^l rho S^j ),
    A_jl = J_j J_l K_jl,   K_jl = sum_ab int W_ab(eps) (R_j)_ab (R_l)_ba d eps,

and Eq. 12 reads  I = 2 sum_jl J_j J_l D_jl Tr(S^j S^l rho)  with
D_jl = int [W_LR (R_j)_LR (R_l)_RL - W_RL (R_j)_RL (R_l)_LR] d eps. The positive prefactor of
Eq. 10 is dropped (it sets the time scale, not the stationary state); the prefactor of Eq. 12
makes the current come out in units of e vF k0 / h, so that conductance = dI/dV in units of
e^2/h (the README's Units table): e.g. Jy = 0, Jz = Jx gives I = -Jx^2 V / 2.

Writing rho = 1/2 + sum_k r_k S^k (so <S^k> = r_k / 2), Eq. 10 becomes the Bloch equation
dr/dt = M r + b. Since everything is quadratic in J, each of M, b and the current is a linear
map of the nine products J_j J_l; :class:`Generator` holds these maps for one (T, V) pair, split
into a texture-free part (closed form) and a texture deviation (from the E_n integrals).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxmi.integrals import Coefficients

# --- constant tensors (numpy, built once) -------------------------------------------------------
_PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex)
_S = 0.5 * _PAULI
#: rho basis: P_0 = 1/2, P_k = S^k.
_P = np.concatenate([0.5 * np.eye(2, dtype=complex)[None], _S])


def _bloch_tensor() -> np.ndarray:
    """LB[j, l, i, nu] = 2 Tr(S^i D_jl(P_nu)), D_jl(X) = -({S^j S^l, X} - 2 S^l X S^j)."""
    out = np.zeros((3, 3, 3, 4), dtype=complex)
    for j in range(3):
        for lo in range(3):
            sjl = _S[j] @ _S[lo]
            for nu in range(4):
                x = _P[nu]
                d = -(sjl @ x + x @ sjl - 2.0 * _S[lo] @ x @ _S[j])
                for i in range(3):
                    out[j, lo, i, nu] = 2.0 * np.trace(_S[i] @ d)
    return out


_LB = _bloch_tensor().reshape(9, 3, 4)
#: TR[j, l, nu] = Tr(S^j S^l P_nu): Tr(S^j S^l rho) = TR[..., 0] + sum_k r_k TR[..., k].
_TR = np.einsum("jab,lbc,nca->jln", _S, _S, _P).reshape(9, 4)

# Texture rotation O = B_0 + (cos 2theta - 1) B_1 + sin 2theta B_2, basis o = (1, dc, s).
_B = np.array(
    [np.eye(3), np.diag([1.0, 0.0, 1.0]), [[0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]
)
# Chiral-space products C[m, m'] = (sigma_m)_ab (sigma_m')_ba for the windows d, RL, LR.
_U_RL = np.array([1.0, -1j, 0.0])  # (sigma_m)_RL
_U_LR = np.array([1.0, 1j, 0.0])  # (sigma_m)_LR
_C = np.array([np.diag([0.0, 0.0, 1.0]), np.outer(_U_RL, _U_LR), np.outer(_U_LR, _U_RL)])
#: T[w, k, k', j, l] = (B_k C_w B_k'^T)_jl.
_T = np.einsum("kjm,wmn,qln->wkqjl", _B, _C, _B)


#: The six distinct products J_j J_l of a symmetric jj, in this order.
PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
#: Columns of Generator.forms: quadratic forms in J needed per J (x-z block; y decouples).
# fmt: off
COLUMNS = (
    "Mxx", "Mxz", "Mzx", "Mzz",  # Bloch matrix, texture-free + deviation
    "dMxz", "dMzz",  # deviation of its z column (acts on r0 = (0, 0, rz0))
    "dbx", "dbz",  # deviation of the drive
    "c0x", "c0z",  # texture-free current, r-linear part
    "dc", "dcx", "dcz",  # deviation of the current: constant and r-linear parts
)
# fmt: on


class Generator(NamedTuple):
    """Everything Eqs. 10 and 12 need from one (T, V) pair, as quadratic forms in J.

    For diagonal J the y component of the Bloch vector decouples (its row and column carry no
    x, z or drive entries, checked in tests/test_generator.py) and is 0 in the stationary
    state, so only the x-z block is kept. Each column of ``forms`` (named in ``COLUMNS``) is a
    quadratic form: value = sum_p jj6[p] forms[p, col], with jj6 = J_j J_l over ``PAIRS``.

    Attributes:
        forms: (6, 13) real, units vF*k0 (batches add leading axes).
        V: bias, shape ().
        pol: tanh(V/2T), shape () (sign(V) at T = 0).
    """

    forms: Array
    V: Array
    pol: Array


def moments(w: Array, e2: Array, e4: Array) -> tuple[Array, Array]:
    """Moment matrices int W o_k o_k' in the basis o = (1, cos 2theta - 1, sin 2theta).

    Args:
        w, e2, e4: one window's closed-form integral and E_2, E_4 (see jaxmi.integrals).

    Returns:
        (texture-free part, deviation), each (3, 3) real symmetric; the first is w at [0, 0].
    """
    m01, m02 = jnp.real(e2), jnp.imag(e2)
    m11 = 0.5 * jnp.real(e4) - 2.0 * jnp.real(e2)
    m22 = -0.5 * jnp.real(e4)
    m12 = 0.5 * jnp.imag(e4) - jnp.imag(e2)
    zero = jnp.zeros_like(w)
    dev = jnp.stack(
        [jnp.stack([zero, m01, m02]), jnp.stack([m01, m11, m12]), jnp.stack([m02, m12, m22])]
    )
    free = jnp.zeros((3, 3)).at[0, 0].set(w)
    return free, dev


def coupling_matrices(c: Coefficients) -> tuple[Array, Array, Array, Array]:
    """(K0, dK, D0, dD): the 3x3 complex Hermitian matrices K and D of the module docstring,
    split into texture-free part and deviation. For one (T, V) pair."""
    free, dev = zip(*(moments(c.w[i], c.E2[i], c.E4[i]) for i in range(3)), strict=True)
    free, dev = jnp.stack(free), jnp.stack(dev)  # (3 windows, 3, 3)
    t = jnp.asarray(_T)
    k0 = jnp.einsum("wkq,wkqjl->jl", free, t)
    dk = jnp.einsum("wkq,wkqjl->jl", dev, t)
    d0 = jnp.einsum("kq,kqjl->jl", free[2], t[2]) - jnp.einsum("kq,kqjl->jl", free[1], t[1])
    dd = jnp.einsum("kq,kqjl->jl", dev[2], t[2]) - jnp.einsum("kq,kqjl->jl", dev[1], t[1])
    return k0, dk, d0, dd


def bloch_map(k: Array) -> Array:
    """[b | M] as a linear map of the nine jj = J_j J_l: (9, 3, 4), real (generic, any k)."""
    return jnp.real(k.reshape(9, 1, 1) * _LB)


def current_map(d: Array) -> Array:
    """(const, r-linear) current coefficients as a linear map of jj: (9, 4), real."""
    return 2.0 * jnp.real(d.reshape(9, 1) * _TR)


def _symmetric(x: Array) -> Array:
    """Fold a map over the nine (j, l) into the six distinct pairs: (9, ...) -> (6, ...)."""
    x = x.reshape(3, 3, *x.shape[1:])
    return jnp.stack([x[j, k] if j == k else x[j, k] + x[k, j] for j, k in PAIRS])


def _forms_from_matrices(k0: Array, dk: Array, d0: Array, dd: Array) -> Array:
    """Generator.forms (6, 13) from the split K and D matrices (see COLUMNS)."""
    m0, dm = _symmetric(bloch_map(k0)), _symmetric(bloch_map(dk))  # (6, 3, 4): [b | Mx My Mz]
    c0, dc = _symmetric(current_map(d0)), _symmetric(current_map(dd))  # (6, 4): [1 | rx ry rz]
    m = m0 + dm
    return jnp.stack(
        [
            m[:, 0, 1], m[:, 0, 3], m[:, 2, 1], m[:, 2, 3],
            dm[:, 0, 3], dm[:, 2, 3],
            dm[:, 0, 0], dm[:, 2, 0],
            c0[:, 1], c0[:, 3],
            dc[:, 0], dc[:, 1], dc[:, 3],
        ],
        axis=-1,
    )  # fmt: skip


def _flat(c: Coefficients) -> Array:
    """The 15 real numbers of one (T, V) pair: w (3), Re E2, Im E2, Re E4, Im E4 (3 each)."""
    return jnp.concatenate(
        [c.w, jnp.real(c.E2), jnp.imag(c.E2), jnp.real(c.E4), jnp.imag(c.E4)], axis=-1
    )


def _unflat(x: Array) -> Coefficients:
    z = jnp.zeros(())
    return Coefficients(V=z, w=x[0:3], E2=x[3:6] + 1j * x[6:9], E4=x[9:12] + 1j * x[12:15], pol=z)


@functools.cache
def forms_map() -> np.ndarray:
    """The linear map (15,) -> (6, 13) from the flat coefficients to Generator.forms.

    Everything from the integrals to the quadratic forms is linear, so the explicit algebra above
    (Pauli matrices, rotation, chiral products) is run once, on unit vectors, and the hot path is
    one small matrix product.
    """
    one = jax.jit(jax.vmap(lambda e: _forms_from_matrices(*coupling_matrices(_unflat(e)))))
    with jax.ensure_compile_time_eval():  # may first be called while tracing
        return np.asarray(one(np.eye(15)))


def generator(c: Coefficients) -> Generator:
    """The J-independent part of Eqs. 10 and 12 for one (T, V) pair."""
    forms = jnp.tensordot(_flat(c), jnp.asarray(forms_map()), axes=1)
    return Generator(forms=forms, V=c.V, pol=c.pol)


def generator_explicit(c: Coefficients) -> Generator:
    """The same as :func:`generator`, through the explicit algebra (a test reference)."""
    return Generator(forms=_forms_from_matrices(*coupling_matrices(c)), V=c.V, pol=c.pol)
