"""Numerical options: one small frozen, hashable object, passed to ``jit`` as a static argument.

A new ``Config`` recompiles; new values of J, T or V do not.
"""

from __future__ import annotations

import dataclasses
import numbers

from jaxmi.errors import ConfigError

#: Validated domain of the default quadrature (see docs/accuracy.md).
T_MAX = 1.0
V_MAX = 2.0
U_MAX = 2000.0


@dataclasses.dataclass(frozen=True)
class Config:
    """Quadrature options of the energy integrals.

    Attributes:
        order: Gauss-Legendre nodes per panel.
        window_panels: panels on the bias window ``[0, |V|/2]``, graded geometrically toward
            the Fermi edge at ``|V|/2`` (needed for ``T << eV``).
        tail_panels: panels on the tail ray that leaves the real axis at ``|V|/2`` at 45 degrees
            (turning the ``exp(i n eps^2)`` oscillation into Gaussian decay); each twice as long
            as the previous one.
        tail_cutoff: the ray ends where ``Re(eps) - |V|/2 = tail_cutoff * T``
            (Fermi tails ``~exp(-tail_cutoff)``).
        regularization: relative shift of the Bloch matrix in the stationary solve, i.e. the
            Laplace variable of the trajectory started at ``rho = 1/2`` (see
            :func:`jaxmi.stationary.reached_state_solve`).
    """

    order: int = 16
    window_panels: int = 6
    tail_panels: int = 6
    tail_cutoff: float = 40.0
    regularization: float = 1e-24

    def __post_init__(self) -> None:
        for name in ("order", "window_panels", "tail_panels"):
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                value = int(value)
                object.__setattr__(self, name, value)  # numpy integers hash like ints
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ConfigError(f"Config.{name} must be an integer >= 2, got {value!r}")
        if not (isinstance(self.tail_cutoff, (int, float)) and 10.0 <= self.tail_cutoff <= 200.0):
            raise ConfigError(
                f"Config.tail_cutoff must be a number in [10, 200], got {self.tail_cutoff!r}"
            )
        if not (isinstance(self.regularization, numbers.Real) and 0.0 < self.regularization < 1e-6):
            raise ConfigError(
                f"Config.regularization must be a float in (0, 1e-6), got {self.regularization!r}"
            )

    @property
    def nodes(self) -> int:
        """Total number of quadrature nodes per (T, V) pair."""
        return self.order * (self.window_panels + self.tail_panels)
