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

from jaxmi import domain

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
#: The Config fields every strategy reads (the error estimate's tolerance).
COMMON_OPTIONS = ("tolerance",)


@dataclasses.dataclass(frozen=True)
class Strategy:
    """How one model is evaluated (hashable: a static argument of ``jax.jit``).

    Attributes:
        integration: one of INTEGRATIONS (module docstring).
        solver: one of SOLVERS.
        options: names of the jaxmi.config.Config fields this strategy reads (a Config that
            differs only elsewhere gives the same numbers).
        phase_breaks: "power-law-contour" only: window ends evenly spaced in theta's phase
            (jaxmi.family.phase_fractions), for a texture fast across the window
            (:func:`phase_breaks_for`).
        dirac_extra: "power-law-contour" only: window panels graded toward the Dirac point on
            each side (jaxmi.family.dirac_breaks), for a non-integer exponent.
        ray_extra: "power-law-contour" only: doubling panels added to each ray, for a texture
            steep where a ray starts (:func:`ray_extra_for`).
        link_extra: "power-law-contour" only: uniform panels added to the link, for a texture
            steep across it (:func:`link_extra_for`).
        All four are static (they set the shapes of the path) and chosen by :func:`choose_for`
        from the model's concrete scale and exponent; 0 is the plain path.
        power: the even exponent p of the "even-contour" texture (2 or 4; it fixes the ray's
            angle and how theta is multiplied out); 0 for the other integrations.
    """

    integration: str
    solver: str
    options: tuple[str, ...] = ()
    phase_breaks: int = 0
    dirac_extra: int = 0
    ray_extra: int = 0
    link_extra: int = 0
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
            names = (
                INTEGRATION_OPTIONS[self.integration] + SOLVER_OPTIONS[self.solver] + COMMON_OPTIONS
            )
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


#: The window's Fermi-graded panels (2 Config.family_window_panels + 1) resolve a texture whose
#: phase varies by up to this much over any bias window of the domain (rad): PowerLaw(1, 2)
#: (4 rad) agrees to 8e-14 at T = 1e-5, |V| = 2; at low T the middle panels span ~0.95 of each
#: half window, so PowerLaw(1, 3) (8 rad) erred by 1.6e-8 there, PowerLaw(0.8, 3) by 7e-3.
WINDOW_PHASE_FREE = 4.0
#: Largest change of theta across the window's panels where they are placed by phase (rad):
#: ~2 rad per panel gave <= 4e-13 on E_2, E_4 for PowerLaw(1, 3), (0.8, 3), (0.5, 3) and
#: (0.5, 4) over T = 1e-5 - 0.3, |mu0| <= 1, |V| = 2.
WINDOW_PHASE_STEP = 2.0
#: Extra window ends on each side of the Dirac point for a non-integer exponent
#: (jaxmi.family.dirac_breaks, a grid shrinking by 4): the error falls by ~4^(p + 1) per end;
#: at p = 1.5, the smallest exponent of the documented domain, and the steepest kink there
#: (scale 0.5), 3 ends left 3.4e-11, 4 left 1.1e-12, 5 leave 2e-13 (T = 1e-5 - 0.3, |V| = 2).
DIRAC_EXTRA = 5


def window_phase(scale, exponent) -> float | None:
    """The largest change of theta = (|eps|/s)^p over a bias window of the documented domain
    (|mu0| <= FAMILY_MU0_MAX, |V| <= V_MAX: the window lies in |eps| <= R = FAMILY_MU0_MAX +
    V_MAX / 2, and theta varies most over [0, R] or [-R, 0]): (R / s)^p (rad). None where
    scale or exponent is not concrete."""
    if scale is None or exponent is None or scale <= 0:
        return None
    return (domain.FAMILY_MU0_MAX + 0.5 * domain.V_MAX) ** exponent / scale**exponent


def phase_breaks_for(scale, exponent) -> int:
    """Window ends placed evenly in theta's phase (jaxmi.family.phase_fractions): none for a
    texture the Fermi-graded panels resolve (:data:`WINDOW_PHASE_FREE`), else enough that each
    panel spans at most WINDOW_PHASE_STEP of the largest window phase; none where the texture's
    parameters are not concrete (a fit that frees them: its window is resolved as a slow one's)."""
    phase = window_phase(scale, exponent)
    if phase is None or phase <= WINDOW_PHASE_FREE:
        return 0
    return math.ceil(phase / WINDOW_PHASE_STEP) - 1


#: The rays' default panels (Config.contour_ray_panels = 7) resolve the kernel from a start
#: where theta' L <= RAY_SLOPE_FREE (rad), L the ray's length; each doubling beyond halves the
#: first panels (PowerLaw(0.5, 4) from eps = 2 at T = 0.3, theta' L ~ 6.6e3: 1.4e-10 with 7
#: panels, 2e-15 with 11).
RAY_SLOPE_FREE = 400.0


def ray_extra_for(scale, exponent) -> int:
    """Extra doubling panels on each ray for a texture steep where a ray may start: the largest
    theta' L over the documented domain, theta'(R) = p R^(p-1) / s^p at R = FAMILY_MU0_MAX +
    V_MAX / 2, L = 40 T / cos(phi) at T = FAMILY_T_MAX and the default tail_cutoff (40), phi
    the rays' angle, pi / (2 max(p, 2)); none where the texture's parameters are not concrete."""
    if scale is None or exponent is None or scale <= 0:
        return 0
    r = domain.FAMILY_MU0_MAX + 0.5 * domain.V_MAX
    slope = exponent * r ** (exponent - 1.0) / scale**exponent
    length = 40.0 * domain.FAMILY_T_MAX / math.cos(math.pi / (2.0 * max(exponent, 2.0)))
    return max(0, math.ceil(math.log2(slope * length / RAY_SLOPE_FREE)))


#: Largest change of theta across one of the link's uniform panels at its steep end (rad):
#: PowerLaw(0.5, 4) over [0, 1] (V = 0, mu0 = 1, T = 0.05) erred by 3.3e-9 with 8 panels
#: (8 rad), 1.3e-15 with 16 (4 rad).
LINK_PHASE_STEP = 4.0
#: Config.contour_link_panels' default, which :func:`link_extra_for` counts on.
LINK_PANELS = 8


def link_extra_for(scale, exponent) -> int:
    """Uniform link panels beyond the default 8: the link lies in |eps| <= FAMILY_MU0_MAX, where
    theta's steepest change per panel of n is about p (FAMILY_MU0_MAX / s)^p / n; enough that it
    stays <= LINK_PHASE_STEP. None where the texture's parameters are not concrete."""
    if scale is None or exponent is None or scale <= 0:
        return 0
    steep = exponent * (domain.FAMILY_MU0_MAX / scale) ** exponent
    return max(0, math.ceil(steep / LINK_PHASE_STEP) - LINK_PANELS)


def dirac_extra_for(exponent) -> int:
    """Extra panels on each side of the Dirac point: none for an integer exponent (theta is a
    polynomial on each side of the break at eps = 0), DIRAC_EXTRA otherwise (also where the
    exponent is not concrete)."""
    if exponent is not None and float(exponent).is_integer():
        return 0
    return DIRAC_EXTRA


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
    solver = "spin-half-2x2" if half else "spin-s"
    if integration == "power-law-contour":
        return Strategy(
            integration,
            solver,
            phase_breaks=phase_breaks_for(scale, exponent),
            dirac_extra=dirac_extra_for(exponent),
            ray_extra=ray_extra_for(scale, exponent),
            link_extra=link_extra_for(scale, exponent),
        )
    return Strategy(integration, solver, power=power)


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
