"""Generate tests/data/reference_points.json with the independent reference in reference.py.

Usage (from the repository root or from tests/)::

    python3.11 tests/make_reference.py [--workers 2] [--no-check]

Points are stratified (seeded numpy RNG): five coupling classes (generic random, one exact zero
component, isotropic, easy-axis, easy-plane) times five bias classes (V = 0, |V| << T,
|V| ~ T, |V| up to 10 T, |V| up to 1), T log-uniform in [0.02, 0.5], plus the three
non-degenerate coupling vectors of the paper's Fig. 2 at V = 0 and the corner T = 0.5, V = 1.

Unless ``--no-check`` is given every point is recomputed with tighter settings (panels half as
wide, larger cutoff, other finite-difference steps) and with the analytic V-derivative; the
largest deviations are written into the header ("selfcheck").
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import mpmath
import numpy as np
import scipy

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference as ref  # noqa: E402

SEED = 20240611
OUT = Path(__file__).resolve().parent / "data" / "reference_points.json"
TIGHT = dict(
    ref.SETTINGS,
    cutoff_T=50.0,
    panel_T=1.0,
    panel_osc=math.pi / 8,
    h0_T=0.7,
    richardson_levels=7,
)
COUPLING_CLASSES = ("random", "one_zero", "isotropic", "easy_axis", "easy_plane")
BIAS_CLASSES = ("zero", "small", "order_T", "up_to_10T", "up_to_1")


def draw_coupling(rng: np.random.Generator, kind: str) -> list[float]:
    """Coupling vector of the given class, components in [-1, 1]."""
    if kind == "random":
        return list(rng.uniform(-1, 1, 3))
    if kind == "one_zero":
        j = list(rng.uniform(-1, 1, 3))
        j[int(rng.integers(3))] = 0.0
        return j
    if kind == "isotropic":
        return [float(rng.uniform(0.1, 1.0))] * 3
    # |Jx| = |Jy| = a (in-plane), Jz = b: easy axis |b| > a, easy plane |b| < a
    a, b = sorted(rng.uniform(0.1, 1.0, 2))
    if kind == "easy_axis":
        return [a, a * float(rng.choice([-1, 1])), b * float(rng.choice([-1, 1]))]
    if kind == "easy_plane":
        return [b, b * float(rng.choice([-1, 1])), a * float(rng.choice([-1, 1]))]
    raise ValueError(kind)


def draw_bias(rng: np.random.Generator, kind: str, T: float) -> float:
    """Bias of the given class (random sign), never |V| > 1."""
    sign = float(rng.choice([-1, 1]))
    if kind == "zero":
        return 0.0
    if kind == "small":
        return sign * T * float(rng.uniform(0.01, 0.1))
    if kind == "order_T":
        return sign * T * float(rng.uniform(0.5, 2.0))
    if kind == "up_to_10T":
        return sign * min(1.0, T * float(rng.uniform(3.0, 10.0)))
    if kind == "up_to_1":
        return sign * float(rng.uniform(0.2, 1.0))
    raise ValueError(kind)


def make_points() -> list[dict]:
    """5 x 5 (coupling class x bias class) points, log T stratified (Latin square), + 7 fixed."""
    rng = np.random.default_rng(SEED)
    n = len(COUPLING_CLASSES)
    edges = np.linspace(math.log(0.02), math.log(0.5), n + 1)
    pts = []
    for bk in BIAS_CLASSES:
        strata = rng.permutation(n)  # each bias class visits every log-T stratum once
        for ck, s in zip(COUPLING_CLASSES, strata, strict=True):
            T = float(math.exp(rng.uniform(edges[s], edges[s + 1])))
            pts.append(
                {
                    "J": [float(x) for x in draw_coupling(rng, ck)],
                    "T": T,
                    "V": draw_bias(rng, bk, T),
                    "coupling_class": ck,
                    "bias_class": bk,
                }
            )
    fixed = (
        ([0.25, 0.25, 0.25], 0.1, 0.0),  # paper Fig. 2 couplings, linear response
        ([0.25, 0.0, 0.35], 0.15, 0.0),
        ([0.25, 0.0, 0.25], 0.3, 0.0),
        ([0.25, 0.25, 0.25], 0.5, 1.0),  # corner of the domain: largest T and |V|
        ([0.3, -0.5, 0.7], 0.05, 0.5),  # V = 10 T exactly (issue 2: V up to 10 T)
        ([0.6, 0.6, 0.6], 0.02, 0.2),  # isotropic, V = 10 T
        ([0.8, 0.1, -0.3], 0.1, -1.0),  # V = -10 T = -vF k0
    )
    for J, T, V in fixed:
        pts.append({"J": J, "T": T, "V": V, "coupling_class": "fixed", "bias_class": "fixed"})
    return pts


def deviations(r: dict, t: dict, ga: float, scale: float, V: float) -> dict:
    """Self-check metrics of a production result r against tight result t / analytic dI/dV ga.

    Currents are compared relative to max(|I|, 1e-12 * scale) (I = 0 at V = 0 up to
    round-off), spins absolutely (|<S>| <= 1/2; components vanish by symmetry, e.g. S^y always
    and all of them for Jy = 0) and conductances relatively.
    """
    return {
        # at V = 0 the current vanishes exactly and both values are round-off: no relative error
        "current_rel": None
        if V == 0
        else abs(r["current"] - t["current"]) / max(abs(t["current"]), 1e-12 * scale),
        "current_abs_over_scale": abs(r["current"] - t["current"]) / scale,
        "spin_abs": float(np.max(np.abs(r["spin"] - t["spin"]))),
        "conductance_rel_tight": abs(r["conductance"] / t["conductance"] - 1),
        "conductance_rel_analytic": abs(r["conductance"] / ga - 1),
        "conductance_err_rel": r["conductance_err"] / abs(r["conductance"]),
    }


def compute(p: dict, check: bool = True) -> dict:
    t0 = time.perf_counter()
    r = ref.point(p["J"], p["T"], p["V"])
    out = dict(p)
    out.update(
        current=r["current"],
        conductance=r["conductance"],
        conductance_err=r["conductance_err"],
        spin=[float(x) for x in r["spin"]],
        seconds=time.perf_counter() - t0,
    )
    if check:
        t1 = time.perf_counter()
        t = ref.point(p["J"], p["T"], p["V"], settings=TIGHT)
        ga = ref.conductance_analytic(p["J"], p["T"], p["V"])
        scale = ref.noise_scale(p["J"], p["T"], p["V"])
        out["check"] = deviations(r, t, ga, scale, p["V"])
        out["seconds_check"] = time.perf_counter() - t1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()
    pts = make_points()
    t0 = time.perf_counter()
    with Pool(args.workers) as pool:
        results = pool.starmap(compute, [(p, not args.no_check) for p in pts])
    wall = time.perf_counter() - t0
    header = {
        "generator": "tests/make_reference.py (reference implementation tests/reference.py)",
        "generated_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "mpmath": mpmath.__version__,
        "seed": SEED,
        "settings": ref.SETTINGS,
        "tight_settings_for_selfcheck": TIGHT,
        "units": "eps, T, V in vF*k0; J dimensionless (J/vF); current in e*vF*k0/h; "
        "conductance dI/dV in e^2/h; spin = Tr(S^j rho), S^j = sigma_j/2",
        "model": "theta(eps)=eps^2, Eq.10 master equation (prefactor dropped), "
        "I = 2 int (W_LR Tr[G_LR G_RL rho] - W_RL Tr[G_RL G_LR rho])",
        "wall_seconds": wall,
        "seconds_per_point": [r["seconds"] for r in results],
        "seconds_selfcheck_per_point": [r.get("seconds_check") for r in results],
    }
    if not args.no_check:
        header["selfcheck"] = {
            k: max(r["check"][k] for r in results if r["check"][k] is not None)
            for k in results[0]["check"]
        }
    points = []
    for r in results:
        points.append(
            {
                "J": [float(x) for x in r["J"]],
                "T": r["T"],
                "V": r["V"],
                "current": r["current"],
                "conductance": r["conductance"],
                "conductance_err": r["conductance_err"],
                "spin": r["spin"],
                "coupling_class": r["coupling_class"],
                "bias_class": r["bias_class"],
                **({"selfcheck": r["check"]} if "check" in r else {}),
            }
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # json writes floats with repr(), i.e. the shortest string that round-trips exactly
    OUT.write_text(json.dumps({"header": header, "points": points}, indent=1) + "\n")
    print(f"wrote {len(points)} points to {OUT} in {wall:.1f} s")
    for r in results:
        c = r.get("check", {})
        print(
            f"T={r['T']:.4f} V={r['V']:+.4f} J={np.round(r['J'], 3)} "
            f"G={r['conductance']:+.6e} {r['seconds']:.1f}s "
            + " ".join(f"{k}={v:.1e}" for k, v in c.items() if v is not None)
        )
    if "selfcheck" in header:
        print("max selfcheck deviations:", header["selfcheck"])


if __name__ == "__main__":
    main()
