"""Numerical options: one small frozen, hashable object, passed to ``jit`` as a static argument.

A new ``Config`` recompiles; new values of J, T or V do not.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping

import numpy as np

from jaxmi.domain import (  # noqa: F401  (the limits, defined once; re-exported)
    DEFAULT_ORDER,
    FAMILY_MU0_MAX,
    FAMILY_T_MAX,
    T_MAX,
    U_MAX,
    U_STEP,
    V_MAX,
)
from jaxmi.domain import family_t_max as _family_t_max
from jaxmi.errors import ConfigError


def family_t_max(config: Config) -> float:
    """Largest T validated for the general path at the config's tail panels (jaxmi.domain)."""
    return _family_t_max(config.family_tail_panels)


def unresolved_edges(T, V):
    """Where U_MAX < |V|/2T <= U_STEP (numpy arrays of one shape): Fermi edges so much sharper
    than the bias window that the error estimate cannot vouch for the rule there (jaxmi.domain).
    A bool array."""
    T, V = np.asarray(T), np.asarray(V)
    u = np.where(T > 0, np.abs(V) / (2 * np.where(T > 0, T, 1.0)), 0.0)
    return (u > U_MAX) & (u <= U_STEP)


def outside_domain(T, V, *, t_max: float, mu0=None):
    """Where (T, V) (numpy arrays of one shape, vF*k0) lie outside the validated domain: T above
    ``t_max``, |V| above V_MAX, |V|/2T above U_MAX (T = 0 is inside, as is |V|/2T above
    U_STEP: computed as T = 0), and with a model family member its |mu0| above
    FAMILY_MU0_MAX (``mu0``: a number or an array broadcasting with T; None for the paper's
    model). Returns a bool array."""
    T, V = np.asarray(T), np.asarray(V)
    outside = (T > t_max) | (np.abs(V) > V_MAX) | unresolved_edges(T, V)
    if mu0 is not None:
        outside = outside | (np.abs(mu0) > FAMILY_MU0_MAX)
    return outside


def accuracy_warning(
    n_over: int, worst: float, config: Config, *, options: tuple[str, ...] = (), sweep: str = ""
) -> str:
    """The AccuracyWarning text for ``n_over`` points whose error estimate exceeds the
    tolerance, ``worst`` the largest estimate (the API and sweeps say the same); ``options``:
    the Config fields the model's strategy reads (only those are suggested); ``sweep``: the
    file of a sweep (its advice is the spec's [numerics] order)."""
    if sweep:
        return (
            f"{sweep}: {n_over} point(s) computed by this run have a quadrature error estimate "
            f"above {config.tolerance:g} (worst {worst:.1e}, relative: docs/accuracy.md; the "
            f"file's error dataset has them per point); raise [numerics] order (now "
            f"{config.order}) in the spec and see the estimate fall"
        )
    more = "or Config(family_tail_panels=...) " if "family_tail_panels" in options else ""
    return (
        f"{n_over} point(s) with a quadrature error estimate above Config(tolerance="
        f"{config.tolerance:g}) (worst {worst:.1e}, relative: docs/accuracy.md); raise "
        f"Config(order=...) (now {config.order}) {more}and see the estimate "
        "(Observables.error) fall"
    )


def edges_warning(n: int) -> str:
    """The AccuracyWarning text for ``n`` points with U_MAX < |V|/2T <= U_STEP."""
    return (
        f"{n} point(s) with {U_MAX:g} < |V|/2T <= {U_STEP:g}: Fermi edges this much sharper "
        "than the bias window are not resolved by the default quadrature, and its error "
        "estimate cannot tell (errors up to ~1e-6 seen); at |V|/2T > "
        f"{U_STEP:g} jaxmi takes T = 0, exact there (docs/accuracy.md)"
    )


def domain_warning(
    n_outside: int, t_max: float, *, family: bool, options: tuple[str, ...] = ()
) -> str:
    """The AccuracyWarning text for ``n_outside`` points outside the validated domain (the API
    and sweeps say the same); ``options``: the Config fields the model's strategy reads (only
    those are suggested)."""
    return (
        f"{n_outside} point(s) outside the validated domain T <= {t_max},"
        f" |V| <= {V_MAX}, |V|/2T <= {U_MAX} (or T = 0, or |V|/2T > {U_STEP:g})"
        f"{f', |mu0| <= {FAMILY_MU0_MAX}' if family else ''}: the default "
        "quadrature is not checked there; raise Config(order=...) "
        f"{'or Config(family_tail_panels=...) ' if 'family_tail_panels' in options else ''}"
        "and compare (docs/accuracy.md)"
    )


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
        family_window_panels: panels on each half of the bias window of the general path
            (jaxmi.family), graded toward the Fermi edges.
        family_tail_panels: panels on each real-axis tail of the general path, graded
            uniformly (32: validated for T <= FAMILY_T_MAX; 48 reaches T = 0.5).
        contour_link_panels: panels (uniform) on the real link of the power-law contour
            (jaxmi.family.power_law_pieces) from an outer Fermi edge to the Dirac point, where
            the Dirac point lies in a tail (at most tail_cutoff * T long).
        contour_ray_panels: panels on each ray of the power-law contour, each twice as long as
            the previous one from the ray's start (the first is 2^(1 - panels) of the ray; three
            more, shrinking by 4, below it: jaxmi.family.ray_fractions).
        even_window_panels: panels on each of the three pieces of the folded window of the even
            contour (jaxmi.family.even_breaks): [0, c] graded toward the inner Fermi edge
            c = ||mu0| - |V|/2|, then [c, b] graded toward c and toward b = |mu0| + |V|/2.
        even_ray_panels: panels on the even contour's ray from b (each twice as long as the
            previous one from b).
        regularization: relative shift of the Bloch matrix in the stationary solve, i.e. the
            Laplace variable of the trajectory started at ``rho = 1/2`` (see
            :func:`jaxmi.stationary.reached_state_solve`).
        tolerance: a point whose quadrature error estimate (``Observables.error``, relative:
            jaxmi.estimate) exceeds this raises an AccuracyWarning (evaluate, evaluate_grid).
            Not part of the comparison: ``Config(tolerance=1e-8) == Config()``, and the two
            share compiled programs.
    """

    order: int = DEFAULT_ORDER
    window_panels: int = 6
    tail_panels: int = 6
    tail_cutoff: float = 40.0
    regularization: float = 1e-24
    family_window_panels: int = 6
    family_tail_panels: int = 32
    contour_link_panels: int = 8
    contour_ray_panels: int = 7
    even_window_panels: int = 6
    even_ray_panels: int = 7
    # Read on the host only (which points warn), never by a compiled program: Configs that
    # differ only here compare equal and hash alike, so they share the programs (jit caches
    # on static arguments' equality) and a new tolerance costs no compilation.
    tolerance: float = dataclasses.field(default=1e-10, compare=False)

    def __post_init__(self) -> None:
        for name in (
            "order",
            "window_panels",
            "tail_panels",
            "family_window_panels",
            "family_tail_panels",
            "contour_link_panels",
            "contour_ray_panels",
            "even_window_panels",
            "even_ray_panels",
        ):
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

        if not (
            isinstance(self.tolerance, numbers.Real)
            and not isinstance(self.tolerance, bool)
            and 1e-16 <= self.tolerance <= 1e-2
        ):
            raise ConfigError(
                f"Config.tolerance must be a float in [1e-16, 1e-2], got {self.tolerance!r}"
            )
        object.__setattr__(self, "tolerance", float(self.tolerance))

    @property
    def nodes(self) -> int:
        """Total number of quadrature nodes per (T, V) pair."""
        return self.order * (self.window_panels + self.tail_panels)


def check_config(config) -> Config:
    """``config`` itself if it is a :class:`Config`: the one check of the ``config=`` argument of
    every public function (a dict would reach ``jax.jit`` as an unhashable static argument).

    Raises:
        ConfigError: ``config`` is not a Config; the message shows the Config to write instead,
            e.g. ``use jaxmi.Config(order=16)`` for ``{"order": 16}``.
    """
    if isinstance(config, Config):
        return config
    names = [f.name for f in dataclasses.fields(Config)]
    hint = f"jaxmi.Config(...) with options {', '.join(names)}"
    if isinstance(config, Mapping) and all(isinstance(k, str) for k in config):
        unknown = [k for k in config if k not in names]
        if unknown:
            hint += f" ({unknown[0]!r} is not one)"
        else:
            hint = "jaxmi.Config(" + ", ".join(f"{k}={v!r}" for k, v in config.items()) + ")"
    raise ConfigError(f"config must be a jaxmi.Config, got {type(config).__name__}; use {hint}")


def check_options(config: Config, options: tuple[str, ...], strategy: str) -> None:
    """Refuse a Config whose non-default options the chosen strategy does not read.

    An option is "set" when it differs from its default; ``options`` are the fields the
    strategy reads (jaxmi.strategy.Strategy.options), ``strategy`` names it for the message.

    Raises:
        ConfigError: e.g. ``Config(family_tail_panels=64)`` for the paper's model, whose contour
            has no real-axis tails: the option would be silently ignored.
    """
    unused = [
        f.name
        for f in dataclasses.fields(Config)
        if f.name not in options and getattr(config, f.name) != f.default
    ]
    if unused:
        names = ", ".join(f"{n}={getattr(config, n)!r}" for n in unused)
        raise ConfigError(
            f"Config({names}): not used by the {strategy} strategy this model is evaluated with "
            f"(it reads {', '.join(options)}); remove {'it' if len(unused) == 1 else 'them'}"
        )
