"""jaxmi: magnetic impurity + spin texture on the helical edge of a 2D topological insulator.

Public API (units: T, V = eV in vF*k0; J dimensionless; conductance in e^2/h):
:func:`conductance`, :func:`current`, :func:`spin`, :func:`density_matrix`, :func:`evaluate`,
:func:`evaluate_grid`, :class:`Config`, :mod:`jaxmi.analytic`, and the errors.
"""

import os as _os

import jax as _jax

# The one place jaxmi touches JAX's global configuration: float64 is the default, because the
# T^4 effect is a cancellation float32 cannot hold. An explicit JAX_ENABLE_X64 is respected
# (and a float32 session is then refused by the public functions with PrecisionError).
if "JAX_ENABLE_X64" not in _os.environ:
    _jax.config.update("jax_enable_x64", True)

from jaxmi import analytic  # noqa: E402
from jaxmi.api import (  # noqa: E402
    conductance,
    current,
    density_matrix,
    evaluate,
    evaluate_grid,
    spin,
)
from jaxmi.config import Config  # noqa: E402
from jaxmi.errors import (  # noqa: E402
    AccuracyWarning,
    ConfigError,
    DomainError,
    JaxmiError,
    PrecisionError,
    SpecError,
    StoreError,
)
from jaxmi.observables import Observables  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AccuracyWarning",
    "Config",
    "ConfigError",
    "DomainError",
    "JaxmiError",
    "Observables",
    "PrecisionError",
    "SpecError",
    "StoreError",
    "analytic",
    "conductance",
    "current",
    "density_matrix",
    "evaluate",
    "evaluate_grid",
    "spin",
]
