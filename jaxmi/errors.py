"""Errors a user can see: each message says what is wrong, where, what was given, what is allowed.

The CLI catches :class:`JaxmiError` only; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class JaxmiError(Exception):
    """Base class of every error jaxmi raises on purpose."""


class DomainError(JaxmiError, ValueError):
    """An argument is outside the physical domain (T < 0, NaN, wrong shape of J, ...)."""


class ConfigError(JaxmiError, ValueError):
    """A numerical option is invalid (quadrature order, panels, ...)."""


class PrecisionError(JaxmiError, RuntimeError):
    """float64 is not enabled: the T^4 effect is a cancellation that float32 cannot hold."""


class SpecError(JaxmiError, ValueError):
    """A sweep specification (TOML) is malformed."""


class StoreError(JaxmiError, OSError):
    """An output file cannot be written, resumed or read as asked."""


class WriteError(StoreError):
    """A chunk (or the run's record) could not be written: disk full, I/O error, file-size limit.
    The chunk is not recorded, the file stays consistent, and the same run resumes it once the
    cause is gone."""


class ClusterError(JaxmiError, RuntimeError):
    """A sweep cannot run on a cluster as asked: a malformed cluster file or ``--cluster`` value
    (file and key named), the optional extra missing (``pip install 'jaxmi[cluster]'``), or a
    chunk that raised on a worker (its chunk and grid indices named; it is not recorded)."""


class FitError(JaxmiError, ValueError):
    """A fit cannot be set up as asked: malformed data (file, row, column), an unknown or
    non-identifiable parameter choice, or too few points for the free parameters."""


class AccuracyWarning(UserWarning):
    """The quadrature may be inaccurate: a point's error estimate (``Observables.error``) exceeds
    ``Config.tolerance`` (evaluate, evaluate_grid), or an input lies outside the domain where the
    default quadrature is validated (conductance, current, sweeps)."""


class FitWarning(UserWarning):
    """A fit ran but is weakly determined: near-degenerate parameters (|correlation| > 0.999),
    an optimum on a bound, or no convergence. The same text is in ``FitResult.notes``."""
