"""Limits and names shared by every stage: the one place they are defined (no JAX import).

The API (jaxmi.api), the sweep spec parser and driver (jaxmi.sweep), the fits (jaxmi.fitting)
and the plots import these; parsing a spec or printing ``--help`` must not import JAX, so this
module imports nothing but the standard library.

Units: T, V (= eV) and mu0 in vF*k0 (the README's Units table).
"""

from __future__ import annotations

#: Gauss-Legendre nodes per panel of the default quadrature (jaxmi.Config().order).
DEFAULT_ORDER = 16

# --- the validated domain (docs/accuracy.md) ----------------------------------------------------
#: The paper's model: T <= T_MAX, |V| <= V_MAX, |V|/2T <= U_MAX (T = 0 is inside).
T_MAX = 1.0
V_MAX = 2.0
U_MAX = 2000.0
#: Beyond u = |V| / 2T = U_STEP the point is T = 0 to float64: the T -> 0 approach is linear,
#: 1 + 4/u (the same-lead window int f (1 - f) = T; Eq. 18), so the relative difference is
#: < 1e-16 there, and the energy integrals take T = 0 (jaxmi.integrals.effective_temperature):
#: the point is as exact as T = 0, inside the domain again. Between U_MAX and U_STEP the error
#: estimate cannot see what the window's rule misses at its Fermi edges (measured up to 3e-6 at
#: u ~ 1e7, half the conductance at T = 1e-300 before T = 0 was taken): those points warn.
U_STEP = 1e17
#: The model family's general path at the default tail panels: T <= FAMILY_T_MAX,
#: |mu0| <= FAMILY_MU0_MAX, |V| <= V_MAX.
FAMILY_T_MAX = 0.3
FAMILY_MU0_MAX = 1.0
#: With at least FAMILY_FINE_TAIL_PANELS tail panels the general path is validated up to
#: FAMILY_T_MAX_FINE; a sweep of a family model above FAMILY_T_MAX asks for them.
FAMILY_FINE_TAIL_PANELS = 48
FAMILY_T_MAX_FINE = 0.5


def family_t_max(tail_panels: int) -> float:
    """Largest T validated for the general path with ``tail_panels`` real-axis tail panels."""
    return FAMILY_T_MAX_FINE if tail_panels >= FAMILY_FINE_TAIL_PANELS else FAMILY_T_MAX


# --- what a sweep stores (jaxmi.sweep) -----------------------------------------------------------
#: The quantities a sweep can store, in the order of its datasets: the observables and the
#: per-point error estimate ("error": relative, jaxmi.estimate; it costs ~1.7x a paper-path
#: chunk and ~4x a general-path one, so it is stored only when a spec asks for it).
SWEEP_QUANTITIES = ("conductance", "current", "spin", "error")
#: What a spec without ``quantities`` stores.
DEFAULT_SWEEP_QUANTITIES = ("conductance", "current", "spin")


# --- names of the model family (jaxmi.model) ----------------------------------------------------
#: Exchange forms: "diagonal", J of shape (..., 3) = diag(Jx, Jy, Jz); "tensor", J of shape
#: (..., 3, 3) = J[i, j] with H_int = sum_ij J_ij S^i sigma^j (i: impurity, j: electron spin).
EXCHANGES = ("diagonal", "tensor")
#: Built-in texture kinds as sweep specs, fit options and files name them (a user's
#: jaxmi.model.CustomTexture is "custom" and exists only in Python).
TEXTURES = ("power_law", "polynomial")
#: Largest impurity spin a spec or fit accepts (d = 2S + 1 = 21: the spin-S solve is d^2 - 1).
MAX_SPIN = 10.0
