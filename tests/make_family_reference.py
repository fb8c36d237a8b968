"""Generate tests/data/family_points.json with the independent reference family_reference.py.

Usage (from the repository root or from tests/)::

    python3.11 tests/make_family_reference.py [--workers 2] [--no-check]

Points (seeded numpy RNG, fixed list of specs below): impurity spin S = 1/2, 1, 3/2; random
full 3x3 exchange tensors with entries in [-0.6, 0.6] for most points, plus diagonal ones and
the isotropic S = 1/2 point J = 0.3 * identity at V = 0, mu0 = 0.5; textures: the paper's
PowerLaw(1, 2), PowerLaw(0.8, 3) (kink at 0), PowerLaw(1.3, 2), Polynomial(0, 0.3, 0.8);
T log-uniform in [0.03, 0.4] (in [0.03, 0.2] where V ~ 5 T so that |V| <= 1, and in
[0.03, 0.15] for PowerLaw(0.8, 3): at T = 0.4 its 45 T window holds ~70000 quarter periods of
cos(4 theta), ~100 s per point); bias classes V = 0, |V| << T, |V| ~ T, V ~ 5 T, |V| up to 1;
mu0 = 0, |mu0| in [0.3, 0.8] or uniform in [-0.8, 0.8].

Unless ``--no-check`` is given every point is recomputed with tighter settings (panels half as
wide, cutoff 50 T, other finite-difference steps); the per-point deviations (also against the
analytic V-derivative of the tight run) are stored with the point and their maxima in the
header ("selfcheck").
"""

from __future__ import annotations

import argparse
import datetime
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
import family_reference as fr  # noqa: E402

SEED = 20250109
OUT = Path(__file__).resolve().parent / "data" / "family_points.json"
TIGHT = dict(
    fr.SETTINGS,
    cutoff_T=50.0,
    panel_T=1.0,
    panel_period=0.125,
    h0_T=0.7,
    richardson_levels=10,
)
PAPER = {"kind": "power_law", "scale": 1.0, "exponent": 2.0}
CUBIC = {"kind": "power_law", "scale": 0.8, "exponent": 3.0}
WIDE = {"kind": "power_law", "scale": 1.3, "exponent": 2.0}
POLY = {"kind": "polynomial", "coefficients": [0.0, 0.3, 0.8]}

# (S, coupling class, texture, bias class, mu0 class)
SPECS = [
    # S = 1/2: off-diagonal (full) J, diagonal J with mu0 != 0, the isotropic point
    (0.5, "full", PAPER, "large", "big"),
    (0.5, "full", PAPER, "zero", "any"),
    (0.5, "full", PAPER, "five_T", "zero"),
    (0.5, "full", POLY, "order_T", "big"),
    (0.5, "full", CUBIC, "five_T", "big"),
    (0.5, "full", WIDE, "small", "any"),
    (0.5, "diag", PAPER, "order_T", "big"),
    (0.5, "isotropic", PAPER, "zero", "fixed_0.5"),
    # S = 1
    (1.0, "full", PAPER, "order_T", "big"),
    (1.0, "full", PAPER, "large", "any"),
    (1.0, "full", PAPER, "zero", "big"),
    (1.0, "full", PAPER, "five_T", "any"),
    (1.0, "full", PAPER, "small", "zero"),
    (1.0, "full", CUBIC, "order_T", "any"),
    (1.0, "full", WIDE, "large", "big"),
    (1.0, "full", POLY, "five_T", "big"),
    (1.0, "diag", PAPER, "large", "any"),
    (1.0, "full", PAPER, "order_T", "zero"),
    (1.0, "full", POLY, "zero", "any"),
    # S = 3/2
    (1.5, "full", PAPER, "order_T", "any"),
    (1.5, "full", PAPER, "large", "big"),
    (1.5, "full", PAPER, "zero", "zero"),
    (1.5, "full", PAPER, "five_T", "big"),
    (1.5, "full", PAPER, "small", "any"),
    (1.5, "full", CUBIC, "large", "big"),
    (1.5, "full", WIDE, "five_T", "any"),
    (1.5, "full", POLY, "order_T", "big"),
    (1.5, "diag", PAPER, "order_T", "big"),
    (1.5, "full", WIDE, "large", "zero"),
    (1.5, "full", PAPER, "five_T", "any"),
]
T_RANGE = (0.03, 0.4)


def draw_coupling(rng: np.random.Generator, kind: str) -> list[list[float]]:
    if kind == "full":
        j = rng.uniform(-0.6, 0.6, (3, 3))
    elif kind == "diag":
        j = np.diag(rng.uniform(-0.6, 0.6, 3))
    elif kind == "isotropic":
        j = 0.3 * np.eye(3)
    else:
        raise ValueError(kind)
    return [[float(x) for x in row] for row in j]


def draw_bias(rng: np.random.Generator, kind: str, T: float) -> float:
    sign = float(rng.choice([-1.0, 1.0]))
    if kind == "zero":
        return 0.0
    if kind == "small":
        v = T * rng.uniform(0.05, 0.3)
    elif kind == "order_T":
        v = T * rng.uniform(0.5, 2.0)
    elif kind == "five_T":
        v = 5 * T * rng.uniform(0.9, 1.1)
    elif kind == "large":
        v = rng.uniform(0.3, 1.0)
    else:
        raise ValueError(kind)
    return sign * min(1.0, float(v))


def draw_mu0(rng: np.random.Generator, kind: str) -> float:
    if kind == "zero":
        return 0.0
    if kind == "big":
        return float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.8))
    if kind == "any":
        return float(rng.uniform(-0.8, 0.8))
    if kind.startswith("fixed_"):
        return float(kind.removeprefix("fixed_"))
    raise ValueError(kind)


def make_points() -> list[dict]:
    """One point per spec; log T stratified over the specs whose T range is the full one."""
    rng = np.random.default_rng(SEED)
    full = [n for n, s in enumerate(SPECS) if s[2] is not CUBIC and s[3] != "five_T"]
    strata = dict(zip(full, rng.permutation(len(full)), strict=True))
    edges = np.linspace(math.log(T_RANGE[0]), math.log(T_RANGE[1]), len(full) + 1)
    pts = []
    for n, (S, ck, tex, bk, mk) in enumerate(SPECS):
        if n in strata:
            lo, hi = edges[strata[n]], edges[strata[n] + 1]
        else:  # V ~ 5 T needs T <= 0.2 (|V| <= 1); the cubic texture is costly at high T
            lo, hi = math.log(T_RANGE[0]), math.log(0.15 if tex is CUBIC else 0.2)
        T = float(math.exp(rng.uniform(lo, hi)))
        pts.append(
            {
                "S": S,
                "J": draw_coupling(rng, ck),
                "T": T,
                "V": draw_bias(rng, bk, T),
                "mu0": draw_mu0(rng, mk),
                "texture": dict(tex),
                "coupling_class": ck,
                "bias_class": bk,
            }
        )
    return pts


def _args(p: dict) -> tuple:
    return (p["S"], p["J"], p["T"], p["V"], p["mu0"], fr.as_texture(p["texture"]))


def deviations(r: dict, t: dict, scale: float, V: float) -> dict:
    """Self-check metrics of the production result r against the tight result t.

    Currents relative to max(|I|, 1e-12 scale) (None at V = 0, where I vanishes exactly and
    both values are round-off), spin and rho absolutely (|<S>| <= S, |rho_mn| <= 1), the
    conductance relative to the tight finite differences and to the tight analytic derivative.
    """
    return {
        "current_rel": None
        if V == 0
        else abs(r["current"] - t["current"]) / max(abs(t["current"]), 1e-12 * scale),
        "current_abs_over_scale": abs(r["current"] - t["current"]) / scale,
        "spin_abs": float(np.max(np.abs(r["spin"] - t["spin"]))),
        "rho_abs": float(np.max(np.abs(r["rho"] - t["rho"]))),
        "conductance_rel_tight": abs(r["conductance"] / t["conductance"] - 1),
        "conductance_rel_analytic": abs(r["conductance"] / t["conductance_analytic"] - 1),
        "conductance_rel_analytic_same_quad": abs(r["conductance"] / r["conductance_analytic"] - 1),
        "conductance_err_rel": r["conductance_err"] / abs(r["conductance"]),
    }


def compute(p: dict, check: bool = True) -> dict:
    t0 = time.perf_counter()
    r = fr.point(*_args(p))
    out = {"input": p, "result": r, "timings": {"point_s": time.perf_counter() - t0}}
    if check:
        t1 = time.perf_counter()
        t = fr.point(*_args(p), settings=TIGHT)
        out["check"] = deviations(r, t, fr.noise_scale(p["S"], p["J"], p["T"], p["V"]), p["V"])
        out["timings"]["selfcheck_s"] = time.perf_counter() - t1
        out["tight_panels"] = t["panels"]
    return out


def _complex_matrix(a: np.ndarray) -> list:
    return [[[float(z.real), float(z.imag)] for z in row] for row in a]


def _short(d: dict) -> dict:
    """Round diagnostics (not reference values) to 3 significant digits to keep the file small."""
    return {k: (None if v is None else float(f"{v:.3g}")) for k, v in d.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()
    pts = make_points()
    t0 = time.perf_counter()
    with Pool(args.workers) as pool:
        results = pool.starmap(compute, [(p, not args.no_check) for p in pts], chunksize=1)
    wall = time.perf_counter() - t0
    header = {
        "generator": "tests/make_family_reference.py (reference tests/family_reference.py)",
        "generated_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "mpmath": mpmath.__version__,
        "seed": SEED,
        "settings": fr.SETTINGS,
        "tight_settings_for_selfcheck": TIGHT,
        "units": "eps, T, V, mu0 in vF*k0; J dimensionless; current in e*vF*k0/h; "
        "conductance dI/dV in e^2/h; spin = Tr(S^i rho)",
        "model": "H_int = sum_ij J[i][j] S^i sigma^j (i impurity, j electron); spin basis "
        "m = S..-S; B = cos(theta) + i sin(theta) sigma_y, R_j = B^+ sigma_j B, "
        "G_ab = sum_ij J_ij S^i R_j[a,b] (0 = R, 1 = L); f_R = f(eps - mu0 - V/2), "
        "f_L = f(eps - mu0 + V/2); Eq. 10 master equation (prefactor dropped); "
        "I = 2 int (W_LR Tr[G_LR G_RL rho] - W_RL Tr[G_RL G_LR rho]); G = dI/dV total",
        "texture_kinds": "power_law: theta = (|eps|/scale)^exponent; "
        "polynomial: theta = sum_k coefficients[k] eps^k",
        "rho_format": "rho[m][n] = [re, im], basis m = S, S-1, ..., -S",
        "wall_seconds": round(wall, 1),
    }
    if not args.no_check:
        header["selfcheck"] = {
            k: max(r["check"][k] for r in results if r["check"][k] is not None)
            for k in results[0]["check"]
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
            "rho": _complex_matrix(res["rho"]),
            "coupling_class": p["coupling_class"],
            "bias_class": p["bias_class"],
            "panels": res["panels"],
            "timings": {k: round(v, 2) for k, v in r["timings"].items()},
        }
        if "check" in r:
            q["selfcheck"] = _short(r["check"])
        points.append(q)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = fr.points_json(header, points, indent=1)
    OUT.write_text(text)
    print(f"wrote {len(points)} points to {OUT} ({len(text)} bytes) in {wall:.1f} s")
    for r in results:
        p, res, c = r["input"], r["result"], r.get("check", {})
        print(
            f"S={p['S']} T={p['T']:.4f} V={p['V']:+.4f} mu0={p['mu0']:+.3f} "
            f"{p['texture']['kind'][:4]} G={res['conductance']:+.6e} "
            f"panels={res['panels']} {r['timings']['point_s']:.1f}s "
            + " ".join(f"{k}={v:.1e}" for k, v in c.items() if v is not None)
        )
    if "selfcheck" in header:
        print("max selfcheck deviations:", header["selfcheck"])


if __name__ == "__main__":
    main()
