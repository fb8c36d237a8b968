"""The one place that decides how a model is evaluated: which energy-integration path and which
stationary solve (JAX-free: importable where no computation runs, e.g. a sweep's planning).

Integration paths (all give the same 15 numbers per (T, V), :class:`jaxmi.integrals.Coefficients`):

* ``"paper-contour"``: theta = eps^2 and mu0 = 0 (any spin, any exchange): the integrands are
  even, the half line is integrated along the pole-free contour of jaxmi.quadrature (real bias
  window, then a 45-degree ray with table Fermi factors): jaxmi.integrals.coefficients.
* ``"power-law-contour"``: any :class:`jaxmi.model.PowerLaw` and any mu0: the real window
  [mu0 - |V|/2, mu0 + |V|/2], then from each outer Fermi edge a ray into the sector where
  exp(i n theta) decays (jaxmi.family.power_law_pieces); a real link to the Dirac point where it
  lies in a tail.
* ``"even-contour"``: theta = (eps/s)^2 (even and entire; the path also takes p = 4 where
  asked for, see EVEN_CHOSEN), any s and concrete mu0, other than the paper's texture at
  mu0 = 0: the full line folded onto the half line, the folded window [0, |mu0| + |V|/2] on the
  real axis, then one ray at pi/(2p) with table Fermi factors (jaxmi.family.even_coefficients;
  400 nodes, 2.1x the paper contour's, 0.57x the power-law contour's, and no complex power per
  node). ``Strategy.power`` holds p (static).
* ``"real-axis"``: :class:`jaxmi.model.Polynomial` and :class:`jaxmi.model.CustomTexture` (a
  polynomial's sector is set by its leading term only asymptotically; a user function need not
  be analytic): the real line, window plus two uniformly paneled tails
  (jaxmi.family.real_line_pieces).

Solvers: ``"spin-half-2x2"`` (spin 1/2 and a diagonal exchange: the y component decouples and
the texture-free state is in closed form; jaxmi.observables.combine) and ``"spin-s"`` (any spin,
any exchange tensor: the (d^2 - 1)-dimensional Bloch solve of jaxmi.family.solve).

The choice reads values only where they are concrete: under a JAX transformation (a fit that
frees mu0 or a texture parameter) the leaves are tracers and the general strategy of the
texture's kind is taken, which is exact for every value.
"""

from __future__ import annotations

import dataclasses
import math

INTEGRATIONS = ("paper-contour", "even-contour", "power-law-contour", "real-axis")
SOLVERS = ("spin-half-2x2", "spin-s")

#: The exponents p of theta = (eps/s)^p the even contour computes (even integers: theta is even
#: and entire).
EVEN_POWERS = (2, 4)
#: Those :func:`choose_for` gives it: p = 4 is not (at scale 0.5 and |mu0| + |V|/2 ~ 2, theta
#: ~ 200 rad across the window and a steep kernel at the ray's start: 1e-7 to 1e-2 off the
#: references of tests/data/family_points_2.json at the default panels; it keeps the
#: power-law contour, whose known misses are those of tests/test_family_reference2.py).
EVEN_CHOSEN = (2,)

#: The Config fields each integration path reads.
INTEGRATION_OPTIONS = {
    "paper-contour": ("order", "window_panels", "tail_panels", "tail_cutoff"),
    "even-contour": ("order", "even_window_panels", "even_ray_panels", "tail_cutoff"),
    "power-law-contour": (
        "order",
        "family_window_panels",
        "contour_link_panels",
        "contour_ray_panels",
        "tail_cutoff",
    ),
    "real-axis": ("order", "family_window_panels", "family_tail_panels", "tail_cutoff"),
}
#: The Config fields each solver reads.
SOLVER_OPTIONS = {"spin-half-2x2": ("regularization",), "spin-s": ("regularization",)}


@dataclasses.dataclass(frozen=True)
class Strategy:
    """How one model is evaluated (hashable: a static argument of ``jax.jit``).

    Attributes:
        integration: one of INTEGRATIONS (module docstring).
        solver: one of SOLVERS.
        options: names of the jaxmi.config.Config fields this strategy reads (a Config that
            differs only elsewhere gives the same numbers).
        power: the even exponent p of the "even-contour" texture (2 or 4; it fixes the ray's
            angle and how theta is multiplied out); 0 for the other integrations.
    """

    integration: str
    solver: str
    options: tuple[str, ...] = ()
    power: int = 0

    def __post_init__(self) -> None:
        if self.integration not in INTEGRATIONS:
            raise ValueError(f"integration must be one of {INTEGRATIONS}, got {self.integration!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        if (self.integration == "even-contour") != (self.power in EVEN_POWERS):
            raise ValueError(
                f"power must be one of {EVEN_POWERS} for even-contour (only), got {self.power!r}"
            )
        if not self.options:
            names = INTEGRATION_OPTIONS[self.integration] + SOLVER_OPTIONS[self.solver]
            object.__setattr__(self, "options", tuple(dict.fromkeys(names)))

    def describe(self) -> str:
        """E.g. "power-law-contour / spin-s" (for messages)."""
        power = f" (p = {self.power})" if self.power else ""
        return f"{self.integration}{power} / {self.solver}"


#: The paper's model: its even contour and its cancellation-free 2x2 solve (jaxmi.observables).
PAPER = Strategy("paper-contour", "spin-half-2x2")


def _concrete(x) -> float | None:
    """x as a float where it is a concrete scalar, else None (a tracer, an array, a pytree)."""
    try:
        value = float(x)
    except Exception:  # a JAX tracer raises one of several error types
        return None
    return value if math.isfinite(value) else None


def _texture_kind(texture) -> str:
    name = type(texture).__name__
    return {"PowerLaw": "power_law", "Polynomial": "polynomial"}.get(name, "custom")


def choose_for(spin, exchange: str, kind: str, mu0=None, scale=None, exponent=None) -> Strategy:
    """The decision itself, from plain values: impurity spin, exchange form ("diagonal" or
    "tensor"), texture kind ("power_law", "polynomial", "custom") and, for the power law, mu0,
    scale and exponent (None where not concrete: a tracer, a swept or a free parameter, which
    takes the general strategy of the kind, exact for every value). A model (:func:`choose`),
    a sweep spec's ``[model]`` and a fit's model all decide through this function."""
    paper_texture = kind == "power_law" and (mu0, scale, exponent) == (0.0, 1.0, 2.0)
    concrete = None not in (mu0, scale, exponent)
    power = 0
    if paper_texture:
        integration = "paper-contour"
    elif kind == "power_law" and concrete and exponent in EVEN_CHOSEN:
        integration, power = "even-contour", int(exponent)
    elif kind == "power_law":
        integration = "power-law-contour"
    else:
        integration = "real-axis"
    half = spin == 0.5 and exchange == "diagonal"
    return Strategy(integration, "spin-half-2x2" if half else "spin-s", power=power)


def choose(model) -> Strategy:
    """The strategy for a jaxmi.model.Model (its spin, exchange, texture kind and, where
    concrete, mu0 and the texture's parameters). ``choose(Model())`` is the paper path,
    :data:`PAPER`."""
    tex = model.texture
    kind = _texture_kind(tex)
    if kind != "power_law":
        return choose_for(model.spin, model.exchange, kind)
    values = (_concrete(model.mu0), _concrete(tex.scale), _concrete(tex.exponent))
    return choose_for(model.spin, model.exchange, kind, *values)
