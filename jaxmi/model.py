"""The model family beyond the paper: gate (mu0), exchange tensor, spin texture, impurity spin S.

A :class:`Model` is small, frozen and a JAX pytree: the Fermi level ``mu0`` and the texture's
parameters are leaves (differentiable: fits can free them), the impurity spin, the exchange form
and the texture's functional form are static (a new value recompiles).

The paper's model is ``Model()``: spin 1/2, diagonal exchange J = (Jx, Jy, Jz), Fermi level at the
Dirac point (mu0 = 0) and theta = (eps / vF k0)^2. Energies are in units of vF*k0 throughout;
the texture angle theta(eps) is a function of the energy eps measured from the Dirac point k = 0.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxmi.domain import EXCHANGES
from jaxmi.errors import DomainError
from jaxmi.impurity import is_spin


def _static_and_leaves(cls, static: tuple[str, ...], leaves: tuple[str, ...]):
    """Register a frozen dataclass as a pytree with the given static fields and leaves."""
    return jax.tree_util.register_dataclass(cls, data_fields=list(leaves), meta_fields=list(static))


def _safe_abs_power(x: Array, p: Array) -> Array:
    """|x|^p for real x and p > 0, 0 at x = 0 with finite derivatives (also w.r.t. p)."""
    ax = jnp.abs(x)
    pos = ax > 0
    return jnp.where(pos, jnp.exp(p * jnp.log(jnp.where(pos, ax, 1.0))), 0.0)


@dataclasses.dataclass(frozen=True)
class PowerLaw:
    """theta(eps) = (|eps| / scale)^exponent; the paper's texture is scale = 1, exponent = 2.

    Attributes:
        scale: energy at which theta = 1 rad, units vF*k0 (> 0). Differentiable.
        exponent: > 0. Differentiable. Not an even integer: a kink at the Dirac point (the
            quadrature has a panel break there).
    """

    scale: Any = 1.0
    exponent: Any = 2.0

    def __call__(self, eps: Array) -> Array:
        return _safe_abs_power(eps / self.scale, self.exponent)

    def describe(self) -> dict:
        return {"kind": "power_law", "scale": _num(self.scale), "exponent": _num(self.exponent)}


@dataclasses.dataclass(frozen=True)
class Polynomial:
    """theta(eps) = sum_k coefficients[k] eps^k (eps in vF*k0). Differentiable coefficients."""

    coefficients: Any = (0.0, 0.0, 1.0)

    def __call__(self, eps: Array) -> Array:
        c = jnp.asarray(self.coefficients, dtype=float)
        return jnp.polyval(c[::-1], eps)

    def describe(self) -> dict:
        coefficients = [_num(c) for c in np.ravel(self.coefficients)]
        return {"kind": "polynomial", "coefficients": coefficients}


@dataclasses.dataclass(frozen=True)
class CustomTexture:
    """A user texture: theta(eps) = function(eps, params), JAX-traceable, real, elementwise.

    ``params`` is any pytree of arrays (differentiable); ``function`` is static (a new function
    recompiles). ``name`` is what sweep files and fit reports record.

    Example:
        >>> def theta(e, p):
        ...     return p["a"] * jnp.tanh(e / p["w"]) ** 2
        >>> tex = CustomTexture(theta, {"a": 1.0, "w": 0.5}, name="tanh2")
    """

    function: Callable[[Array, Any], Array]
    params: Any = None
    name: str = "custom"

    def __call__(self, eps: Array) -> Array:
        return self.function(eps, self.params)

    def describe(self) -> dict:
        leaves = jax.tree_util.tree_leaves(self.params)
        return {"kind": "custom", "name": self.name, "params": [_num(x) for x in leaves]}


def _num(x):
    """x as a float or nested list, or None where it is not concrete (a tracer)."""
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        return None
    return float(a) if a.ndim == 0 else a.tolist()


_static_and_leaves(PowerLaw, (), ("scale", "exponent"))
_static_and_leaves(Polynomial, (), ("coefficients",))
_static_and_leaves(CustomTexture, ("function", "name"), ("params",))


@dataclasses.dataclass(frozen=True)
class Model:
    """One member of the model family (module docstring); the default is the paper's model.

    Attributes:
        spin: impurity spin S in {1/2, 1, 3/2, ...} (static).
        exchange: "diagonal" (J of shape (..., 3)) or "tensor" (J of shape (..., 3, 3)) (static).
        mu0: Fermi level of both leads at zero bias, measured from the Dirac point, units vF*k0
            (mu_R,L = mu0 +- eV/2). Differentiable.
        texture: theta(eps): :class:`PowerLaw`, :class:`Polynomial` or :class:`CustomTexture`.
    """

    spin: float = 0.5
    exchange: str = "diagonal"
    mu0: Any = 0.0
    texture: Any = dataclasses.field(default_factory=PowerLaw)

    def __post_init__(self) -> None:
        if isinstance(self.spin, bool) or not is_spin(self.spin):
            raise DomainError(
                "Model.spin must be 1/2, 1, 3/2, ... (a positive multiple of 1/2), got "
                f"{self.spin!r}"
            )
        object.__setattr__(self, "spin", float(self.spin))
        if self.exchange not in EXCHANGES:
            raise DomainError(f"Model.exchange must be one of {EXCHANGES}, got {self.exchange!r}")
        if not isinstance(self.texture, (PowerLaw, Polynomial, CustomTexture)):
            raise DomainError(
                "Model.texture must be a jaxmi.model.PowerLaw, Polynomial or CustomTexture, got "
                f"{type(self.texture).__name__}"
            )

    def check(self) -> None:
        """Raise DomainError for a non-finite mu0 or a non-positive power-law parameter (concrete
        values only: the API calls this at its boundary; a pytree rebuilt under a JAX
        transformation is not checked)."""
        mu0 = _num(self.mu0)
        if mu0 is not None and not (isinstance(mu0, float) and math.isfinite(mu0)):
            raise DomainError(f"Model.mu0 must be a finite real number (vF*k0), got {self.mu0!r}")
        tex = self.texture
        if isinstance(tex, PowerLaw):
            for name in ("scale", "exponent"):
                v = _num(getattr(tex, name))
                if v is not None and not (isinstance(v, float) and v > 0 and math.isfinite(v)):
                    raise DomainError(f"PowerLaw.{name} must be a finite number > 0, got {v!r}")
        if isinstance(tex, Polynomial):
            c = _num(tex.coefficients)
            if c is not None and not np.all(np.isfinite(c)):
                raise DomainError(f"Polynomial.coefficients must be finite, got {c!r}")

    @property
    def dimension(self) -> int:
        """d = 2S + 1."""
        return int(round(2 * self.spin)) + 1

    def is_paper(self) -> bool:
        """True when this is the paper's model with concrete parameters (its fast path applies):
        the decision of :func:`jaxmi.strategy.choose`, made there only."""
        from jaxmi.strategy import PAPER, choose

        return choose(self) == PAPER

    def describe(self) -> dict:
        """A JSON-able description (what sweep files and fit reports record)."""
        return {
            "spin": self.spin,
            "exchange": self.exchange,
            "mu0": _num(self.mu0),
            "texture": self.texture.describe(),
        }


_static_and_leaves(Model, ("spin", "exchange"), ("mu0", "texture"))


def exchange_tensor(J: Array, exchange: str) -> Array:
    """J as a (..., 3, 3) tensor: diag(J) for the diagonal form."""
    if exchange == "diagonal":
        return J[..., :, None] * jnp.eye(3)
    return J
