"""``jaxmi validate``: the engine against every closed form of the paper, and its invariants.

What a user runs on a new machine (a GPU node, another JAX version) before trusting a sweep:
each closed form of Eqs. 13-19 is checked in its own regime with the error law it implies, the
structural laws on seeded random points of the validated domain, the factorized path against
the direct one, and the quadrature against itself at a higher order. Everything runs on the
current default JAX device with the given :class:`jaxmi.Config`; a deliberately wrong order
(``Config(order=4)``) fails several rows. docs/validation.md explains each row and tolerance.

The points of all checks are evaluated in three compiled calls (one forward-mode ``jvp`` of the
direct path, which gives the values and their V-derivatives, and the factorized path at the
given and at a reference order), so the run costs about three compilations.

Units as everywhere: T, V (= eV) in vF*k0, J dimensionless, conductance in e^2/h.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from jaxmi.config import Config, check_config

#: Couplings of the linear-response checks (as tests/test_linear_response.py): isotropic, the
#: four cases of Fig. 2, easy axis/plane, generic, zeros in every position, near-isotropic.
COUPLINGS = np.array(
    [
        [0.25, 0.25, 0.25],
        [0.25, 0.0, 0.35],
        [0.25, 0.0, 0.25],
        [0.25, 0.0, 0.0],
        [0.7, 0.7, 0.7],
        [-0.4, -0.4, -0.4],
        [0.3, 0.3, 0.6],
        [0.3, 0.3, 0.1],
        [0.5, 0.1, 0.1],
        [0.1, 0.5, 0.1],
        [0.3, -0.5, 0.7],
        [0.9, 0.1, -0.4],
        [-0.2, 0.8, 0.3],
        [0.6, 0.2, 0.0],
        [0.6, 0.0, 0.2],
        [0.2, 0.0, 0.6],
        [0.0, 0.5, 0.3],
        [0.0, 0.5, 0.0],
        [1.0, -1.0, 0.5],
        [0.05, 0.9, 0.9],
        [0.33, 0.31, 0.29],
        [0.8, 0.0, 0.8],
    ]
)
LINEAR_T = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.5])
J_ISO = 0.25
#: Couplings of the factorized and self-convergence checks: generic, Fig. 2 blue, isotropic.
GRID_J = np.array([[0.3, -0.5, 0.7], [0.25, 0.0, 0.35], [0.25, 0.25, 0.25], [0.9, 0.1, -0.4]])
#: Reference quadrature of the self-convergence check (docs/accuracy.md).
REFERENCE = Config(order=48, window_panels=16, tail_panels=12)
U_VALUES = np.array([0.1, 1.0, 5.0, 20.0])


def kappa_eq16() -> float:
    """Coefficient of the relative error of Eq. 16's T^4 law: engine/formula - 1 = kappa T^4.

    1 - Ic^2 - Is^2 = (m4 - m2^2) x^2 - c4 x^4 + O(x^6) in x = scriptT = 8 T^2, with the moments
    m_k = int_0^inf e^k sech^2(e) de = pi^2/12, 7 pi^4/240, 31 pi^6/1344, 127 pi^8/3840 (k = 2,
    4, 6, 8) and c4 = m4^2/4 + m8/12 - m2 m6/3; kappa = -64 c4 / (m4 - m2^2) = -653.10.
    """
    p = np.pi
    m2, m4, m6, m8 = p**2 / 12, 7 * p**4 / 240, 31 * p**6 / 1344, 127 * p**8 / 3840
    c4 = m4**2 / 4 + m8 / 12 - m2 * m6 / 3
    return float(-64 * c4 / (m4 - m2**2))


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the validation table.

    Attributes:
        formula: what is compared (equation and quantity).
        regime: where, and what the error measures.
        points: number of engine evaluations behind the row.
        error: the worst error (at the point whose error is largest relative to its tolerance).
        tolerance: the tolerance at that point.
        passed: every point is within its tolerance (and the error is finite).
    """

    formula: str
    regime: str
    points: int
    error: float
    tolerance: float
    passed: bool


def _row(formula: str, regime: str, points: int, err, tol) -> Row:
    err = np.atleast_1d(np.asarray(err, dtype=float))
    tol = np.broadcast_to(np.asarray(tol, dtype=float), err.shape).ravel()
    err = err.ravel()
    ratio = np.where(np.isfinite(err), err / tol, np.inf)
    k = int(np.argmax(ratio))
    passed = bool(np.all(np.isfinite(err)) and np.all(err <= tol))
    return Row(formula, regime, int(points), float(err[k]), float(tol[k]), passed)


def _rel(got, want):
    got, want = np.asarray(got), np.asarray(want)
    return np.abs(got - want) / np.where(want == 0, 1.0, np.abs(want))


def _exponent(x, err) -> float:
    """Least-squares slope of log|err| against log x (nan if an error is exactly 0)."""
    err = np.abs(np.asarray(err))
    if np.any(err == 0) or not np.all(np.isfinite(err)):
        return float("nan")
    return float(np.polyfit(np.log(x), np.log(err), 1)[0])


class _Batch:
    """Collects (J, T, V) points of many checks for one evaluation, hands back slices."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.n = 0

    def add(self, J, T, V) -> slice:
        J, T, V = np.broadcast_arrays(
            np.asarray(J, float), np.asarray(T, float)[..., None], np.asarray(V, float)[..., None]
        )
        J, T, V = J.reshape(-1, 3), T[..., 0].ravel(), V[..., 0].ravel()
        self.parts.append((J, T, V))
        start, self.n = self.n, self.n + len(T)
        return slice(start, self.n)

    def arrays(self):
        return tuple(np.concatenate(x) for x in zip(*self.parts, strict=True))


def _domain_pairs() -> tuple[np.ndarray, np.ndarray]:
    """(T, V) pairs of the self-convergence check: the validated domain's corners and inside."""
    T = [0.0, 1e-3, 1e-2, 0.1, 0.3, 1.0]
    V = [0.0, 0.01, 0.1, 0.5, 1.0, 2.0]
    pairs = [(t, v) for t in T for v in V if t == 0 or v / (2 * t) <= 2000]
    t, v = np.array(pairs).T
    return t, v


def _random_points(n: int, seed: int = 20240611):
    """Seeded points of the validated domain (T <= 1, |V| <= 2, |V|/2T <= 2000), with exact
    zeros of J, T and V mixed in (the singular generator, the T = 0 and V = 0 branches)."""
    rng = np.random.default_rng(seed)
    J = rng.uniform(-1.0, 1.0, (n, 3))
    J[rng.random((n, 3)) < 0.15] = 0.0
    T = 10.0 ** rng.uniform(-3.0, 0.0, n)
    T[rng.random(n) < 0.1] = 0.0
    V = rng.uniform(-2.0, 2.0, n)
    V[rng.random(n) < 0.1] = 0.0
    V = np.where(T > 0, np.clip(V, -4000 * T, 4000 * T), V)
    return J, T, V


def describe_device() -> str:
    """The default JAX device, e.g. ``cpu (cpu), jax 0.4.35, float64``."""
    import jax

    d = jax.devices()[0]
    precision = "float64" if jax.config.jax_enable_x64 else "float32"
    return f"{d.platform} ({d.device_kind}), jax {jax.__version__}, {precision}"


def run_validation(config: Config | None = None) -> list[Row]:
    """Run every check on the current JAX device; returns the table rows (see :class:`Row`).

    Args:
        config: quadrature options to validate (default ``Config()``).

    Raises:
        ConfigError: ``config`` is neither None nor a :class:`jaxmi.Config`.
    """
    import jax
    import jax.numpy as jnp

    import jaxmi
    from jaxmi import analytic

    config = Config() if config is None else check_config(config)
    b = _Batch()

    # Eqs. 13, 14: exact in linear response, every coupling x several T, V = 0.
    lin = b.add(COUPLINGS[:, None, :], LINEAR_T[None, :], 0.0)
    # Eq. 16, first form (exact) down to T = 1e-3, and the T^4 law at small T.
    t16 = np.array([1e-3, 2e-3, 5e-3, 1e-2, 0.05, 0.2, 1.0])
    iso16 = b.add([J_ISO] * 3, t16, 0.0)
    t16law = np.array([0.005, 0.01])
    iso16law = b.add([J_ISO] * 3, t16law, 0.0)
    # Eq. 15 (state slopes, asymptotic in T).
    t15 = np.array([0.01, 0.02, 0.04])
    iso15 = b.add([J_ISO] * 3, t15, 0.0)
    # Eq. 17 at T = 0.
    v17 = np.array([0.025, 0.05, 0.1])
    iso17 = b.add([J_ISO] * 3, 0.0, v17)
    # Eqs. 18, 19 at fixed u = V/2T: three temperatures per u (halving), V and V = 0.
    t18 = np.where(U_VALUES[:, None] <= 1, [0.005, 0.01, 0.02], [0.0025, 0.005, 0.01])
    iso18 = b.add([J_ISO] * 3, t18, 2 * U_VALUES[:, None] * t18)
    iso18l = b.add([J_ISO] * 3, t18, 0.0)
    t19 = np.broadcast_to([0.0025, 0.005, 0.01], t18.shape)
    iso19 = b.add([J_ISO] * 3, t19, 2 * U_VALUES[:, None] * t19)
    # Invariants: random points at V and -V.
    rj, rt, rv = _random_points(48)
    rplus = b.add(rj, rt, rv)
    rminus = b.add(rj, rt, -rv)
    # Factorized == direct: every GRID_J x every domain pair, also directly.
    pt, pv = _domain_pairs()
    gJ = np.concatenate([GRID_J, rj[:4]])
    direct = b.add(gJ[:, None, :], pt[None, :], pv[None, :])

    J, T, V = b.arrays()
    with warnings.catch_warnings():
        # The checks below measure the accuracy themselves; the error estimate's warning (its
        # known pessimism at T = 1, docs/accuracy.md) would only repeat itself here.
        warnings.simplefilter("ignore", jaxmi.AccuracyWarning)
        out, dout = jax.jvp(
            lambda v: jaxmi.evaluate(J, T, v, config=config),
            (jnp.asarray(V),),
            (jnp.ones_like(V),),
        )
        out = jax.tree_util.tree_map(np.asarray, out)
        fact = jax.tree_util.tree_map(np.asarray, jaxmi.evaluate_grid(gJ, pt, pv, config=config))
        ref = np.asarray(jaxmi.evaluate_grid(gJ[:3], pt, pv, config=REFERENCE).conductance)
    dspin = np.asarray(dout.spin)  # d<S>/dV at every point
    G = out.conductance
    rows: list[Row] = []

    # --- Eq. 13: d<S>/dV at V = 0, exact; needs Jy != 0 (the printed ratios are 0/0 otherwise).
    has_jy = np.repeat(COUPLINGS[:, 1] != 0, len(LINEAR_T))
    Jl, Tl = J[lin][has_jy], T[lin][has_jy]
    want = np.asarray(analytic.eq13_spin_slope(Jl, Tl))
    # Relative to the largest component; where Eq. 13 gives 0 (Jx = Jz = 0), to 1/4T, the
    # slope of a fully polarised response.
    size = np.max(np.abs(want), -1)
    err = np.max(np.abs(dspin[lin][has_jy] - want), -1) / np.where(size > 0, size, 0.25 / Tl)
    rows.append(
        _row(
            "Eq. 13 linear-response state d<S>/dV",
            f"{int(has_jy.sum() // len(LINEAR_T))} couplings (Jy != 0) x T in [0.02, 0.5], V = 0",
            len(Tl),
            err,
            1e-10,
        )
    )
    # --- Eq. 14: exact, any diagonal J and T.
    want = np.asarray(analytic.eq14_linear_conductance(J[lin], T[lin]))
    rows.append(
        _row(
            "Eq. 14 linear conductance dG_L",
            f"{len(COUPLINGS)} couplings x T in [0.02, 0.5], V = 0",
            len(want),
            _rel(G[lin], want),
            1e-10,
        )
    )
    # --- Eq. 16, first form: exact; measured <= 1e-15 from T = 1e-3 up (docs/accuracy.md).
    want = np.asarray(analytic.eq16_isotropic_exact(J_ISO, t16))
    rows.append(
        _row(
            "Eq. 16 isotropic dG_L, exact form",
            "J = 0.25 iso, T in [1e-3, 1], V = 0",
            len(t16),
            _rel(G[iso16], want),
            1e-12,
        )
    )
    # --- Eq. 16, T^4 law: engine/formula - 1 = kappa T^4 (1 + O(T^4)); rel. error of kappa.
    kappa = kappa_eq16()
    est = G[iso16law] / np.asarray(analytic.eq16_isotropic_asymptotic(J_ISO, t16law)) - 1
    est = est / t16law**4
    rows.append(
        _row(
            f"Eq. 16 T^4 law: error coefficient kappa = {kappa:.2f}",
            "J = 0.25 iso, T = 0.005, 0.01; rel. error of kappa",
            len(t16law),
            _rel(est, kappa),
            1e-4,
        )
    )
    # --- Eq. 15: relative errors O(T^4) on <Sx> slope, O(T^8) on <Sz> slope; exponents.
    want = np.asarray(analytic.eq15_spin_slope(t15))
    ex = _exponent(t15, dspin[iso15][:, 0] / want[:, 0] - 1)
    ez = _exponent(t15, dspin[iso15][:, 2] / want[:, 2] - 1)
    rows.append(
        _row(
            "Eq. 15 d<Sx>/dV: error exponent 4",
            "J = 0.25 iso, T = 0.01..0.04; rel. error of the exponent",
            len(t15),
            abs(ex / 4 - 1),
            0.0125,
        )
    )
    rows.append(
        _row(
            "Eq. 15 d<Sz>/dV: error exponent 8",
            "J = 0.25 iso, T = 0.01..0.04; rel. error of the exponent",
            len(t15),
            abs(ez / 8 - 1),
            0.0125,
        )
    )
    # --- Eq. 17 at T = 0: engine/formula - 1 = V^4/70 + O(V^8).
    err17 = G[iso17] / np.asarray(analytic.eq17_large_bias(J_ISO, v17)) - 1
    rows.append(
        _row(
            "Eq. 17 (eV)^4 law: error exponent 4",
            "J = 0.25 iso, T = 0, V = 0.025..0.1; rel. error of the exponent",
            len(v17),
            abs(_exponent(v17, err17) / 4 - 1),
            0.005,
        )
    )
    rows.append(
        _row(
            "Eq. 17 (eV)^4 law: error coefficient 1/70",
            "J = 0.25 iso, T = 0, V = 0.025; rel. error of the coefficient",
            1,
            _rel(err17[0] / v17[0] ** 4, 1 / 70),
            1e-3,
        )
    )
    # --- Eq. 18: dG(T, V)/dG_L(T) = F(u) (1 + O(T^4)) at fixed u.
    g18 = (G[iso18] / G[iso18l]).reshape(t18.shape)
    e18 = g18 / np.asarray(analytic.eq18_crossover(U_VALUES))[:, None] - 1
    p18 = np.array([_exponent(t, e) for t, e in zip(t18, e18, strict=True)])
    rows.append(
        _row(
            "Eq. 18 crossover F(u): error exponent 4",
            "J = 0.25 iso, u = 0.1..20, T = 0.0025..0.02; rel. error of the exponent",
            t18.size * 2,
            np.abs(p18 / 4 - 1),
            0.025,
        )
    )
    rows.append(
        _row(
            "Eq. 18 crossover F(u): value",
            "same points; rel. error at the lowest T, tolerance 1e-6 (1 + u)^2",
            t18.size * 2,
            np.abs(e18[:, 0]),
            1e-6 * (1 + U_VALUES) ** 2,
        )
    )
    # --- Eq. 19: <Sx> = Sx0 F19(u) (1 + O(T^4)), Sx0 = -(u/3)(pi T)^2 (corrected; see analytic).
    s19 = out.spin[iso19][:, 0].reshape(t19.shape)
    sx0 = np.asarray(analytic.eq19_sx0(t19, 2 * U_VALUES[:, None] * t19))
    e19 = s19 / sx0 / np.asarray(analytic.eq19_polarization_ratio(U_VALUES))[:, None] - 1
    p19 = np.array([_exponent(t, e) for t, e in zip(t19, e19, strict=True)])
    rows.append(
        _row(
            "Eq. 19 polarization Sx/Sx0: error exponent 4",
            "J = 0.25 iso, u = 0.1..20, T = 0.0025..0.01; rel. error of the exponent",
            t19.size,
            np.abs(p19 / 4 - 1),
            0.025,
        )
    )
    rows.append(
        _row(
            "Eq. 19 polarization Sx/Sx0: value",
            "same points, Sx0 = -(u/3)(pi T)^2 (corrected); rel. error at the lowest T",
            t19.size,
            np.abs(e19[:, 0]),
            2e-6,
        )
    )
    # --- Invariants on random points.
    rho = np.concatenate([out.density_matrix[rplus], out.density_matrix[rminus]])
    herm = np.max(np.abs(rho - np.conj(np.swapaxes(rho, -1, -2))), axis=(-1, -2))
    trace = np.abs(np.trace(rho, axis1=-2, axis2=-1) - 1)
    negative = np.maximum(-np.linalg.eigvalsh(0.5 * (rho + np.conj(np.swapaxes(rho, -1, -2)))), 0)
    rows.append(
        _row(
            "rho Hermitian, trace 1, positive",
            "random J in [-1,1]^3, T <= 1, |V| <= 2; absolute",
            len(rho),
            np.maximum(np.maximum(herm, trace), negative.max(-1)),
            1e-13,
        )
    )
    cur_p, cur_m = out.current[rplus], out.current[rminus]
    scale = np.sum(rj**2, -1) * (np.abs(rv) + rt)
    rows.append(
        _row(
            "current odd in V, conductance even",
            "same points; relative, floor 1e-2 J^2 (|V| + T)",
            2 * len(rt),
            np.maximum(
                np.abs(cur_p + cur_m) / (np.abs(cur_p) + 1e-2 * scale + 1e-300),
                np.abs(G[rplus] - G[rminus])
                / (np.abs(G[rplus]) + 1e-2 * np.sum(rj**2, -1) + 1e-300),
            ),
            1e-12,
        )
    )
    # --- Factorized == direct, every observable.
    nJ, nP = len(gJ), len(pt)
    sc = (np.sum(gJ**2, -1)[:, None] * (np.abs(pv) + pt + 1)[None, :]).ravel()
    errs = []
    for name in ("current", "conductance", "spin", "density_matrix"):
        a = getattr(fact, name).reshape(nJ * nP, -1)
        d = getattr(out, name)[direct].reshape(nJ * nP, -1)
        errs.append(np.max(np.abs(a - d), -1) / (np.max(np.abs(d), -1) + 1e-2 * sc))
    rows.append(
        _row(
            "factorized path == direct path",
            f"{nJ} J x {nP} (T, V) pairs, all observables; relative",
            2 * nJ * nP,
            np.max(errs, axis=0),
            1e-13,
        )
    )
    # --- Quadrature self-convergence: config against the reference order.
    got = fact.conductance[:3]
    err = _rel(got, ref)
    tol = 1e-12
    rows.append(
        _row(
            f"quadrature order {config.order} vs {REFERENCE.order} (self-convergence)",
            f"3 J x {nP} (T, V) pairs, T <= 1, V <= 2; relative",
            2 * got.size,
            err,
            tol,
        )
    )
    rows.extend(_family_rows(config))
    return rows


def _family_rows(config: Config) -> list[Row]:
    """The model family (general path, jaxmi.family): its closed form and the paper reduction."""
    import jax.numpy as jnp

    import jaxmi
    from jaxmi import analytic, family
    from jaxmi.model import Model
    from jaxmi.strategy import Strategy

    # the general path forced onto the paper's model (choose(Model()) is the paper path)
    GENERAL = Strategy("power-law-contour", "spin-s")

    rows = []
    # Isotropic impurity at V = 0, gate mu0, spin S: dG = -(4/3) S(S+1) J^2 (1 - |A|^2), exact.
    cases = [(0.005, 0.6), (0.02, 0.8), (0.05, -0.5), (0.1, 0.3), (0.3, 1.0)]
    errs = []
    for spin in (0.5, 1.5):
        for T, mu0 in cases:
            got = float(
                jaxmi.conductance(
                    [J_ISO] * 3, T, 0.0, model=Model(spin=spin, mu0=mu0), config=config
                )
            )
            errs.append(_rel(got, analytic.gate_isotropic_exact(J_ISO, T, mu0, spin)))
    rows.append(
        _row(
            "gated isotropic closed form (family)",
            "S = 1/2, 3/2; T in [0.005, 0.3], mu0 in [-0.5, 1], V = 0; relative",
            len(errs),
            errs,
            1e-10,
        )
    )
    # The general path on the paper's model against the paper path.
    J, T, V = _random_points(64, seed=7)
    T = np.minimum(T, 0.3)
    paper = jaxmi.evaluate(J, T, V, config=config)
    general = family.points(
        jnp.asarray(J), jnp.asarray(T), jnp.asarray(V), Model(), config, GENERAL
    )
    floor = 1e-2 * np.sum(J**2, -1) + 1e-300
    g = np.asarray(paper.conductance)
    err = np.abs(np.asarray(general.conductance) - g) / np.maximum(np.abs(g), floor)
    rows.append(
        _row(
            "general path == paper path (family)",
            "64 random points, T <= 0.3, paper's model; relative, floor 1e-2 J^2",
            len(err),
            err,
            1e-12,
        )
    )
    return rows


def format_table(rows: list[Row]) -> str:
    """The rows as a plain-text table (one line per check) with a summary line."""
    head = ("formula", "regime", "points", "max rel error", "tolerance", "result")
    body = [
        (
            r.formula,
            r.regime,
            str(r.points),
            f"{r.error:.2e}",
            f"{r.tolerance:.1e}",
            "pass" if r.passed else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(x[k]) for x in [head, *body]) for k in range(len(head))]
    right = {2, 3, 4}

    def line(cells):
        return "  ".join(
            c.rjust(w) if k in right else c.ljust(w)
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(head), line(["-" * w for w in widths])]
    out += [line(x) for x in body]
    failed = sum(not r.passed for r in rows)
    out.append(
        f"{len(rows) - failed}/{len(rows)} checks passed" + (f", {failed} FAILED" if failed else "")
    )
    return "\n".join(out)
