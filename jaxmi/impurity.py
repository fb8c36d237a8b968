"""Spin-S algebra of the impurity: operators, a Bloch basis, and Eqs. 10 / 12 as fixed linear maps.

For an impurity of spin S (dimension d = 2S + 1) the density matrix is written
rho = 1/d + sum_k r_k L_k with L_k (k < n = d^2 - 1) an orthonormal basis of the traceless
Hermitian matrices (Tr L_k L_k' = delta_kk', generalised Gell-Mann). With the 3x3 Hermitian rate
matrix A (A_il = sum_jm J_ij K_jm J_lm, see jaxmi.family), Eq. 10 is

    d rho / dt  ~  - sum_il A_il ({S^i S^l, rho} - 2 S^l rho S^i),

i.e. dr/dt = M r + b with M and b linear in the nine A_il, and Eq. 12 is
I = 2 Re sum_il C_il Tr(S^i S^l rho). Everything here is numpy, built once per S (cached), so it
is safe to call while JAX traces.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import NamedTuple

import numpy as np


def dimension(S: float) -> int:
    """d = 2S + 1 for S in {1/2, 1, 3/2, ...}."""
    return int(round(2 * S)) + 1


def is_spin(S) -> bool:
    """True for a positive half-integer or integer S (1/2, 1, 3/2, ...)."""
    try:
        twice = Fraction(S).limit_denominator(1000) * 2
    except (TypeError, ValueError):
        return False
    return twice.denominator == 1 and twice >= 1 and abs(float(twice) - 2 * float(S)) < 1e-12


@functools.cache
def operators(S: float) -> np.ndarray:
    """(S^x, S^y, S^z) for spin S in the basis m = S, S-1, ..., -S; shape (3, d, d), complex."""
    d = dimension(S)
    m = S - np.arange(d)
    # S^+ |m> = sqrt(S(S+1) - m(m+1)) |m+1>: entries just above the diagonal.
    plus = np.diag(np.sqrt(S * (S + 1) - m[1:] * (m[1:] + 1)), 1).astype(complex)
    minus = plus.conj().T
    return np.array([(plus + minus) / 2, (plus - minus) / 2j, np.diag(m).astype(complex)])


@functools.cache
def basis(d: int) -> np.ndarray:
    """Orthonormal traceless Hermitian basis (generalised Gell-Mann), shape (d^2 - 1, d, d)."""
    out = []
    for j in range(d):
        for k in range(j + 1, d):
            sym = np.zeros((d, d), complex)
            sym[j, k] = sym[k, j] = 1 / np.sqrt(2)
            anti = np.zeros((d, d), complex)
            anti[j, k], anti[k, j] = -1j / np.sqrt(2), 1j / np.sqrt(2)
            out += [sym, anti]
    for level in range(1, d):
        diag = np.zeros(d)
        diag[:level] = 1.0
        diag[level] = -level
        out.append(np.diag(diag / np.sqrt(level * (level + 1))).astype(complex))
    return np.array(out)


class BlochMaps(NamedTuple):
    """The linear maps of one spin S (numpy, complex; contract with a 3x3 matrix over (i, l)).

    Attributes:
        matrix: (3, 3, n, n): M = Re sum_il A_il matrix[i, l].
        drive: (3, 3, n), purely imaginary: b = Re sum_il (A_il - A_li) drive[i, l]
            (antisymmetric part only, so a real symmetric A gives b = 0 exactly: no roundoff
            drive where there is none).
        trace_const: (3, 3): Tr(S^i S^l) / d.
        trace_r: (3, 3, n): Tr(S^i S^l L_k).
        spin_r: (3, n): Tr(S^i L_k).
        basis: (n, d, d): the L_k.
    """

    matrix: np.ndarray
    drive: np.ndarray
    trace_const: np.ndarray
    trace_r: np.ndarray
    spin_r: np.ndarray
    basis: np.ndarray


def _dissipator(s: np.ndarray, i: int, k: int, x: np.ndarray) -> np.ndarray:
    """D_ik(X) = -({S^i S^k, X} - 2 S^k X S^i)."""
    sik = s[i] @ s[k]
    return -(sik @ x + x @ sik - 2.0 * s[k] @ x @ s[i])


@functools.cache
def bloch_maps(S: float) -> BlochMaps:
    """The maps of :class:`BlochMaps` for spin S (cached)."""
    s = operators(S)
    d = dimension(S)
    lam = basis(d)
    n = lam.shape[0]
    matrix = np.zeros((3, 3, n, n), complex)
    drive = np.zeros((3, 3, n), complex)
    for i in range(3):
        for k in range(3):
            for q in range(n):
                matrix[i, k, :, q] = np.einsum("pab,ba->p", lam, _dissipator(s, i, k, lam[q]))
            # D_ik(1/d) = -(2/d) [S^i, S^k]; half of it, so that (A_ik - A_ki) * drive sums to it.
            comm = s[i] @ s[k] - s[k] @ s[i]
            drive[i, k] = -np.einsum("pab,ba->p", lam, comm) / d
    trace_const = np.real(np.einsum("iab,lba->il", s, s)) / d
    trace_r = np.einsum("iab,lbc,kca->ilk", s, s, lam)
    spin_r = np.real(np.einsum("iab,kba->ik", s, lam))
    return BlochMaps(matrix, drive, trace_const, trace_r, spin_r, lam)


class FrameMaps(NamedTuple):
    """What a rotation of the impurity's frame needs for spin S (numpy, built once per S).

    The rotation R = R_y(-beta) R_z(-phi), which takes the unit vector
    (sin beta cos phi, sin beta sin phi, cos beta) to z, acts on the spin as
    U = exp(i beta S^y) exp(i phi S^z) (U S^k U^dagger = sum_i R_ik S^i, checked in
    tests/test_family_robust.py); exp(i beta S^y) = Y diag(exp(i beta m_y)) Y^dagger.

    Attributes:
        m_z: (d,) the S^z eigenvalues S, S-1, ..., -S (the diagonal of S^z).
        m_y: (d,) the S^y eigenvalues.
        y_vectors: (d, d) complex, the S^y eigenvectors (columns).
    """

    m_z: np.ndarray
    m_y: np.ndarray
    y_vectors: np.ndarray


@functools.cache
def frame_maps(S: float) -> FrameMaps:
    """The constants of :class:`FrameMaps` for spin S (cached)."""
    s = operators(S)
    m_y, y_vectors = np.linalg.eigh(s[1])
    return FrameMaps(np.real(np.diag(s[2])).copy(), m_y, y_vectors)
