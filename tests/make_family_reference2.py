"""Generate tests/data/family_points_2.json: the second, high-temperature family reference set.

Usage (from the repository root or from tests/)::

    python3.11 tests/make_family_reference2.py [--workers 2] [--only N ...]

The validated domain of the general path, sampled where it is hardest: S = 1/2, 1, 3/2; full
random 3x3 exchange tensors (entries in [-0.6, 0.6]) for most points, some diagonal ones;
|mu0| <= 1 (classes: 0, |mu0| in [0.9, 1], +-1 exactly, uniform); T log-uniform in
[0.005, 0.3] or in [0.15, 0.3] ("hot", about half the points) or T = 0.3; |V| <= 2 (classes:
0, |V| << T, |V| ~ T, |V| in [0.5, 2], |V| = 2); power-law textures (|eps|/s)^p with
p in {1.5, 2, 3, 4} or drawn from [1.5, 4] and s in [0.5, 2] (0.5 and 2 included) and two
polynomials (degree 2 and 4). The first point is the issue's worst point:
PowerLaw(0.8, 3), T = 0.3, V = 2, mu0 = 0.8, S = 3/2, full J.

Method per point (stored as "method"; both are in tests/family_reference.py):

* "real_axis": family_reference.point (adaptive quadrature on the real axis).
* "contour": family_reference.point(method="contour"): the real axis between the Fermi edges
  and rays into the complex plane for the tails (power laws only). Used where the real axis
  would need more than REAL_AXIS_MAX_PANELS initial panels: at T = 0.3 the tail of
  (|eps|/0.5)^4 holds ~2e6 quarter periods of cos(4 theta) (hours per point).

Cost (2 shared cores, 2 workers): 19 min; the contour takes <= 84 s per point (PowerLaw(0.5,
4) at T = 0.3), the real-axis cross-check of the worst point 354 s (36000 panels). Finished
points are cached (pickled under the temporary directory) so that an interrupted run resumes.

Every point is recomputed with tighter settings of its own method (the contour's with another
ray start and angle, i.e. another contour); the deviations are stored with the point
("selfcheck") and their maxima in the header. Power-law points are in addition computed by the
other method where it is affordable (contour: always; real axis: up to CROSSCHECK_MAX_PANELS
panels, and the worst point); those deviations are stored as "crosscheck" and their maxima
in the header.
"""

from __future__ import annotations

import argparse
import datetime
import math
import pickle
import platform
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import mpmath
import numpy as np
import scipy

sys.path.insert(0, str(Path(__file__).resolve().parent))
import family_reference as fr  # noqa: E402
import make_family_reference as mk  # noqa: E402

SEED = 20261202
OUT = Path(__file__).resolve().parent / "data" / "family_points_2.json"
REAL_AXIS_MAX_PANELS = 6000  # above: the contour is the primary method
CROSSCHECK_MAX_PANELS = 15000  # real-axis cross-check of a contour point up to this many panels
CROSSCHECK_ALWAYS = (0,)  # ... and of these points (the worst point, ~36000 panels)
CACHE = Path(tempfile.gettempdir()) / "family_points_2_cache"  # finished points, for a rerun
TIGHT = dict(mk.TIGHT)
TIGHT_CONTOUR = dict(
    fr.CONTOUR_SETTINGS,
    cutoff_T=50.0,
    panel_T=1.0,
    panel_period=0.125,
    h0_T=0.7,
    richardson_levels=10,
    ray_start_T=5.0,
    ray_angle=0.3,
    ray_cutoff_T=50.0,
)


def pl(scale, exponent) -> dict:
    return {"kind": "power_law", "scale": scale, "exponent": exponent}


WORST = pl(0.8, 3.0)
FAST = pl(0.5, 4.0)
POLY2 = {"kind": "polynomial", "coefficients": [0.0, 0.3, 0.8]}
POLY4 = {"kind": "polynomial", "coefficients": [0.1, -0.4, 0.6, 0.15, -0.02]}
RANDOM = "random"  # a power law with scale in [0.5, 2], exponent in [1.5, 4]

# (S, coupling class, texture, T class, bias class, mu0 class)
SPECS = [
    (1.5, "full", WORST, "fixed_0.3", "fixed_2.0", "fixed_0.8"),  # the worst point
    (1.5, "full", FAST, "fixed_0.3", "max", "edge"),
    (1.5, "full", FAST, "hot", "order_T", "any"),
    (1.5, "full", pl(2.0, 4.0), "hot", "large", "any"),
    (1.5, "full", pl(0.5, 1.5), "hot", "zero", "edge"),
    (1.5, "full", pl(2.0, 1.5), "any", "small", "zero"),
    (1.5, "full", pl(1.0, 2.0), "any", "order_T", "any"),
    (1.5, "diag", WORST, "hot", "large", "zero"),
    (1.5, "full", RANDOM, "hot", "large", "any"),
    (1.5, "full", RANDOM, "any", "order_T", "edge"),
    (1.5, "full", POLY2, "hot", "large", "edge"),
    (1.5, "full", POLY4, "any", "order_T", "any"),
    (1.5, "full", pl(1.0, 3.0), "any", "max", "any"),
    (1.5, "diag", pl(0.5, 2.0), "hot", "small", "any"),
    (1.5, "full", FAST, "any", "large", "zero"),
    (1.5, "full", RANDOM, "fixed_0.3", "order_T", "one"),
    # S = 1
    (1.0, "full", WORST, "fixed_0.3", "large", "any"),
    (1.0, "full", FAST, "hot", "large", "edge"),
    (1.0, "full", FAST, "any", "small", "any"),
    (1.0, "full", pl(2.0, 4.0), "fixed_0.3", "order_T", "zero"),
    (1.0, "full", pl(0.5, 1.5), "any", "large", "any"),
    (1.0, "full", pl(2.0, 1.5), "hot", "max", "edge"),
    (1.0, "full", pl(1.0, 2.0), "hot", "zero", "any"),
    (1.0, "diag", pl(2.0, 2.0), "any", "order_T", "edge"),
    (1.0, "full", RANDOM, "hot", "order_T", "any"),
    (1.0, "full", RANDOM, "any", "large", "zero"),
    (1.0, "full", RANDOM, "hot", "small", "one"),
    (1.0, "full", POLY2, "any", "order_T", "zero"),
    (1.0, "full", POLY4, "hot", "large", "edge"),
    (1.0, "full", pl(1.0, 3.0), "hot", "order_T", "any"),
    (1.0, "diag", FAST, "hot", "order_T", "any"),
    (1.0, "full", pl(0.5, 3.0), "any", "max", "any"),
    # S = 1/2
    (0.5, "full", WORST, "hot", "max", "edge"),
    (0.5, "full", FAST, "fixed_0.3", "large", "any"),
    (0.5, "full", FAST, "any", "order_T", "edge"),
    (0.5, "full", pl(2.0, 4.0), "hot", "small", "any"),
    (0.5, "full", pl(0.5, 1.5), "hot", "order_T", "zero"),
    (0.5, "full", pl(2.0, 1.5), "any", "large", "any"),
    (0.5, "full", pl(1.0, 2.0), "any", "max", "one"),
    (0.5, "diag", pl(1.0, 3.0), "hot", "order_T", "edge"),
    (0.5, "full", RANDOM, "hot", "large", "any"),
    (0.5, "full", RANDOM, "any", "small", "any"),
    (0.5, "full", RANDOM, "fixed_0.3", "large", "zero"),
    (0.5, "full", POLY2, "hot", "order_T", "any"),
    (0.5, "full", POLY4, "any", "large", "any"),
    (0.5, "full", pl(0.5, 2.0), "hot", "large", "edge"),
    (0.5, "diag", RANDOM, "any", "zero", "any"),
    (0.5, "full", pl(1.5, 4.0), "hot", "order_T", "any"),
]
T_RANGE = (0.005, 0.3)
T_HOT = (0.15, 0.3)


def draw_T(rng: np.random.Generator, kind: str) -> float:
    if kind.startswith("fixed_"):
        return float(kind.removeprefix("fixed_"))
    lo, hi = {"any": T_RANGE, "hot": T_HOT}[kind]
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def draw_bias(rng: np.random.Generator, kind: str, T: float) -> float:
    sign = float(rng.choice([-1.0, 1.0]))
    if kind.startswith("fixed_"):
        return float(kind.removeprefix("fixed_"))
    if kind == "zero":
        return 0.0
    if kind == "small":
        return sign * T * float(rng.uniform(0.05, 0.3))
    if kind == "order_T":
        return sign * T * float(rng.uniform(0.5, 2.0))
    if kind == "large":
        return sign * float(rng.uniform(0.5, 2.0))
    if kind == "max":
        return sign * 2.0
    raise ValueError(kind)


def draw_mu0(rng: np.random.Generator, kind: str) -> float:
    if kind.startswith("fixed_"):
        return float(kind.removeprefix("fixed_"))
    if kind == "zero":
        return 0.0
    if kind == "edge":
        return float(rng.choice([-1.0, 1.0]) * rng.uniform(0.9, 1.0))
    if kind == "one":
        return float(rng.choice([-1.0, 1.0]))
    if kind == "any":
        return float(rng.uniform(-1.0, 1.0))
    raise ValueError(kind)


def draw_texture(rng: np.random.Generator, tex) -> dict:
    if tex == RANDOM:
        return pl(float(rng.uniform(0.5, 2.0)), float(rng.uniform(1.5, 4.0)))
    return dict(tex)


def make_points() -> list[dict]:
    """One point per spec (seeded; the draws are in spec order)."""
    rng = np.random.default_rng(SEED)
    pts = []
    for S, ck, tex, tk, bk, mk_ in SPECS:
        T = draw_T(rng, tk)
        pts.append(
            {
                "S": S,
                "J": mk.draw_coupling(rng, ck),
                "T": T,
                "V": draw_bias(rng, bk, T),
                "mu0": draw_mu0(rng, mk_),
                "texture": draw_texture(rng, tex),
                "coupling_class": ck,
                "bias_class": bk,
                "T_class": tk,
                "mu0_class": mk_,
            }
        )
    return pts


def real_axis_panels(p: dict) -> float:
    """Initial panels the real-axis method would lay out (inf beyond the refusal limit).

    A power law whose range ends hold more than twice the limit in quarter periods of
    cos(4 theta) (8 theta / pi) is inf without laying the panels out (that walk takes ~20 s).
    """
    tex = fr.as_texture(p["texture"])
    if isinstance(tex, fr.PowerLaw):
        lo, hi = fr.integration_range(p["T"], abs(p["V"]) + p["T"], p["mu0"], fr.SETTINGS)
        quarters = 8 / math.pi * (tex(lo) + tex(hi))
        if quarters > 2 * fr.SETTINGS["max_panels"]:
            return math.inf
    try:
        *_, pts = fr.panel_points(
            p["T"], p["V"], p["mu0"], fr.as_texture(p["texture"]), vmax=abs(p["V"]) + p["T"]
        )
    except ValueError:
        return math.inf
    return len(pts) + 1


def plan(p: dict, n: float | None = None) -> tuple[str, list[str]]:
    """(primary method, cross-check methods) for a point (n: its real_axis_panels)."""
    if p["texture"]["kind"] != "power_law":
        return "real_axis", []
    n = real_axis_panels(p) if n is None else n
    if n <= REAL_AXIS_MAX_PANELS:
        return "real_axis", ["contour"]
    return "contour", (["real_axis"] if n <= CROSSCHECK_MAX_PANELS else [])


def _args(p: dict) -> tuple:
    return (p["S"], p["J"], p["T"], p["V"], p["mu0"], fr.as_texture(p["texture"]))


def compute(p: dict, method: str, cross: list[str]) -> dict:
    scale = fr.noise_scale(p["S"], p["J"], p["T"], p["V"])
    t0 = time.perf_counter()
    r = fr.point(*_args(p), method=method)
    out = {"input": p, "method": method, "result": r}
    out["timings"] = {"point_s": time.perf_counter() - t0}
    t1 = time.perf_counter()
    tight = TIGHT_CONTOUR if method == "contour" else TIGHT
    t = fr.point(*_args(p), settings=tight, method=method)
    out["timings"]["selfcheck_s"] = time.perf_counter() - t1
    out["check"] = mk.deviations(r, t, scale, p["V"])
    out["tight_panels"] = t["panels"]
    out["cross"] = {}
    for m in cross:
        t2 = time.perf_counter()
        c = fr.point(*_args(p), method=m)
        out["cross"][m] = mk.deviations(r, c, scale, p["V"])
        out["timings"][f"crosscheck_{m}_s"] = time.perf_counter() - t2
    return out


def _compute_job(job: tuple) -> dict:
    return compute(*job)


def _maxima(dicts: list[dict]) -> dict:
    if not dicts:
        return {}
    return {k: max((d[k] for d in dicts if d[k] is not None), default=None) for k in dicts[0]}


def _line(r: dict) -> str:
    p, res = r["input"], r["result"]
    c = r["check"]
    x = {m: d["conductance_rel_tight"] for m, d in r["cross"].items()}
    return (
        f"S={p['S']} T={p['T']:.4f} V={p['V']:+.4f} mu0={p['mu0']:+.3f} {p['texture']} "
        f"{r['method']} G={res['conductance']:+.6e} panels={res['panels']} "
        f"{r['timings']}  self: I {c['current_abs_over_scale']:.1e} "
        f"G {c['conductance_rel_tight']:.1e} rho {c['rho_abs']:.1e}  cross G {x}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", type=int, nargs="*", help="compute these indices, do not write")
    args = ap.parse_args()
    pts = make_points()
    todo = list(range(len(pts))) if args.only is None else args.only
    # expensive first (contour with a real-axis cross-check, then by panel count)
    cost = {n: real_axis_panels(pts[n]) for n in todo}
    plans = {n: plan(pts[n], cost[n]) for n in todo}
    for n in CROSSCHECK_ALWAYS:
        if n in plans and plans[n][0] == "contour" and not plans[n][1]:
            plans[n] = ("contour", ["real_axis"])
    order = sorted(todo, key=lambda n: -min(cost[n], 1e6) * (1 + len(plans[n][1])))
    t0 = time.perf_counter()
    CACHE.mkdir(exist_ok=True)
    results = {}
    for n in order:  # a rerun (same points, same plan) picks up the finished ones
        f = CACHE / f"{n}.pkl"
        if f.exists() and (r := pickle.loads(f.read_bytes()))["input"] == pts[n]:
            if (r["method"], sorted(r["cross"])) == (plans[n][0], sorted(plans[n][1])):
                results[n] = r
    order = [n for n in order if n not in results]
    jobs = [(pts[n], *plans[n]) for n in order]
    with Pool(args.workers) as pool:
        for n, r in zip(order, pool.imap(_compute_job, jobs, chunksize=1), strict=True):
            r["real_axis_panels"] = None if math.isinf(cost[n]) else cost[n]
            results[n] = r
            (CACHE / f"{n}.pkl").write_bytes(pickle.dumps(r))
            print(f"[{time.perf_counter() - t0:7.1f}s] #{n} " + _line(r), flush=True)
    wall = time.perf_counter() - t0
    if args.only is not None:
        return
    results = [results[n] for n in range(len(pts))]
    header = {
        "generator": "tests/make_family_reference2.py (reference tests/family_reference.py)",
        "generated_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "mpmath": mpmath.__version__,
        "seed": SEED,
        "methods": {
            "real_axis": "family_reference.point: adaptive quad_vec on the real axis",
            "contour": "family_reference.point(method='contour'): real axis on [A, B] "
            "(ray_start_T * T beyond 0 and the outermost Fermi edges), Fourier components "
            "a_k exp(i k theta) of the tails on rays tilted by +-alpha "
            "(alpha = min(ray_angle * pi / p, pi / 4)) into the decaying half plane",
        },
        "method_rule": f"polynomial: real_axis; power law: real_axis up to "
        f"{REAL_AXIS_MAX_PANELS} initial panels, else contour; cross-checks: contour on "
        f"every real_axis power-law point, real_axis on contour points up to "
        f"{CROSSCHECK_MAX_PANELS} panels and on points {list(CROSSCHECK_ALWAYS)}",
        "settings": {"real_axis": fr.SETTINGS, "contour": fr.CONTOUR_SETTINGS},
        "tight_settings_for_selfcheck": {"real_axis": TIGHT, "contour": TIGHT_CONTOUR},
        "units": "eps, T, V, mu0 in vF*k0; J dimensionless; current in e*vF*k0/h; "
        "conductance dI/dV in e^2/h; spin = Tr(S^i rho)",
        "model": "as tests/data/family_points.json (H_int = sum_ij J[i][j] S^i sigma^j; "
        "f_R = f(eps - mu0 - V/2), f_L = f(eps - mu0 + V/2); Eq. 10 / Eq. 12; G = dI/dV)",
        "texture_kinds": "power_law: theta = (|eps|/scale)^exponent; "
        "polynomial: theta = sum_k coefficients[k] eps^k",
        "rho_format": "rho[m][n] = [re, im], basis m = S, S-1, ..., -S",
        "point_provenance": "method: the method of the stored numbers; selfcheck: deviations "
        "from a rerun with the tight settings of that method; crosscheck: deviations from "
        "the other method at its default settings (metrics of make_family_reference.deviations)",
        "wall_seconds": round(wall, 1),
        "counts": {m: sum(r["method"] == m for r in results) for m in ("real_axis", "contour")},
        "selfcheck": _maxima([r["check"] for r in results]),
        "crosscheck": {
            m: _maxima([r["cross"][m] for r in results if m in r["cross"]])
            for m in ("real_axis", "contour")
        },
    }
    points = []
    for r in results:
        p, res = r["input"], r["result"]
        q = {
            "S": p["S"],
            "J": p["J"],
            "T": p["T"],
            "V": p["V"],
            "mu0": p["mu0"],
            "texture": p["texture"],
            "current": res["current"],
            "conductance": res["conductance"],
            "conductance_err": res["conductance_err"],
            "spin": [float(x) for x in res["spin"]],
            "rho": mk._complex_matrix(res["rho"]),
            "coupling_class": p["coupling_class"],
            "bias_class": p["bias_class"],
            "T_class": p["T_class"],
            "mu0_class": p["mu0_class"],
            "method": r["method"],
            "panels": res["panels"],
            "real_axis_panels": r["real_axis_panels"],
            "timings": {k: round(v, 2) for k, v in r["timings"].items()},
            "selfcheck": mk._short(r["check"]),
            "crosscheck": {m: mk._short(d) for m, d in r["cross"].items()},
        }
        points.append(q)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = fr.points_json(header, points, indent=1)
    OUT.write_text(text)
    print(f"wrote {len(points)} points to {OUT} ({len(text)} bytes) in {wall:.1f} s")
    print("max selfcheck deviations:", header["selfcheck"])
    print("max crosscheck deviations:", header["crosscheck"])


if __name__ == "__main__":
    main()
