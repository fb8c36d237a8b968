"""Side-by-side benchmark of jaxmi against the baselines a user would pick instead (issue 4).

One run on this machine measures, with the same inputs and in the same process:

* baseline "plain": what a physicist writes today. Adaptive scipy quadrature (``quad_vec``) of
  every matrix element of Eqs. 10 and 12 (the integrand of tests/reference.py, epsrel 1e-10), a
  numpy least-squares stationary state and dI/dV by one central difference (h = 1e-3 T): three
  quadratures per point;
* baseline "strict": tests/reference.py ``point`` as it is (epsrel 2e-13, 40-digit stationary
  solve, 12 currents per conductance with Richardson extrapolation): the independent reference;
* the stationary-state step alone on the same 4x4 Liouvillian: QuTiP 5 ``steadystate`` (optional
  extra ``bench``; the row is skipped with a note if QuTiP is missing), numpy ``lstsq``,
  mpmath (the reference's) and jaxmi's own 2x2 reduced solve;
* jaxmi direct path (``observables.points``) at orders 8-24 and batch sizes 1e2-1e6, the
  conductance alone and its gradient w.r.t. J (``vmap(grad)`` and ``vmap(jacfwd)``);
* jaxmi factorized path (``observables.grid_arrays``), 100 (T, V) pairs x 1e5 J, compute only;
* scaling against nJ, the number of pairs and the order (log-log PNGs in docs/figures/), a
  profile of the direct path by stage, XLA's operation counts, and a roofline model.

Accuracy: every timed configuration is compared with the stored reference points
(tests/data/reference_points.json: tests/reference.py at its strict settings), which are the first
32 points of every timed batch, and with a high-order engine run (48 x 28 panels) on a subset.
Timings are medians of repeated calls after compilation (compile time apart); ratios are to the
baselines measured in the same run. The machine may be shared: the load average is recorded.

Usage: python benchmarks/run.py [--quick] [--no-docs] [--from-json RUN.json]  (about 4 min)
Writes benchmarks/results/run-<time>.json (git-ignored), docs/figures/scaling_*.png and the
generated block of docs/performance.md. Needs the test extra (scipy, mpmath) and matplotlib.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from docblock import cpu_model

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import reference  # noqa: E402  (tests/reference.py: numpy, scipy, mpmath only)

import jaxmi  # noqa: E402  (float64)

# As the jaxmi command does: one CPU device per core (jaxmi.devices), before JAX starts.
jaxmi.set_host_device_count()
from jaxmi import bench  # noqa: E402
from jaxmi.config import Config  # noqa: E402
from jaxmi.integrals import coefficients  # noqa: E402
from jaxmi.observables import BLOCK_POINTS, combine_grid, generators, point  # noqa: E402
from jaxmi.stationary import reached_state_solve  # noqa: E402

REF_POINTS = json.loads((REPO / "tests" / "data" / "reference_points.json").read_text())["points"]
N_REF = len(REF_POINTS)
REF_J = np.array([p["J"] for p in REF_POINTS])
REF_T = np.array([p["T"] for p in REF_POINTS])
REF_V = np.array([p["V"] for p in REF_POINTS])
REF_G = np.array([p["conductance"] for p in REF_POINTS])
REF_SPIN = np.array([p["spin"] for p in REF_POINTS])
#: Points of the baselines (a stratified subset of the stored reference points).
BASELINE_IDX = [0, 5, 10, 15, 20, 25, 30]
ORDERS = [8, 12, 16, 24]
DEFAULT = Config()
#: H100 SXM, float64 (vendor figures): tensor-core and vector peaks, HBM3 bandwidth.
H100 = {"fp64_tensor_flops": 67e12, "fp64_vector_flops": 34e12, "hbm_bytes_per_s": 3.35e12}
#: FP64 flops charged per transcendental call on a GPU (no FP64 special-function units: exp,
#: sin, cos, expm1, tanh are software sequences of ~15-30 FMAs plus range reduction). A model
#: assumption, stated in docs/performance.md.
FLOPS_PER_TRANSCENDENTAL = 25.0


def load() -> float:
    return os.getloadavg()[0]


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load():.2f}] {msg}", file=sys.stderr, flush=True)


def median_time(fn, repeat: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


# --- baselines ------------------------------------------------------------------------------


def lstsq_state(sup: np.ndarray) -> np.ndarray:
    """Stationary rho (2, 2) of the row-major 4x4 Liouvillian: lstsq of [L; s tr] x = [0; s]."""
    s = np.abs(sup).max()
    a = np.vstack([sup, s * np.array([1, 0, 0, 1])])
    b = np.array([0, 0, 0, 0, s], dtype=complex)
    return np.linalg.lstsq(a, b, rcond=None)[0].reshape(2, 2)


def plain_current(J, T, V, grid_V, epsrel=1e-10) -> float:
    settings = dict(reference.SETTINGS, epsrel=epsrel)
    sup, cur, _ = reference.integrated_operators(J, T, V, settings=settings, grid_V=grid_V)
    return float(np.trace(cur @ lstsq_state(sup)).real)


def plain_conductance(J, T, V, h_rel=1e-3) -> float:
    """The physicist's baseline: quad_vec + lstsq + one central difference (3 quadratures)."""
    h = h_rel * T
    return (plain_current(J, T, V + h, V) - plain_current(J, T, V - h, V)) / (2 * h)


def run_baselines(quick: bool) -> dict:
    idx = BASELINE_IDX[:3] if quick else BASELINE_IDX
    rows = {"plain": [], "strict": []}
    for i in idx:
        J, T, V = REF_J[i], REF_T[i], REF_V[i]
        t0 = time.perf_counter()
        g = plain_conductance(J, T, V)
        rows["plain"].append((time.perf_counter() - t0, abs(g / REF_G[i] - 1)))
        if not quick or i == idx[0]:
            t0 = time.perf_counter()
            g = reference.point(J, T, V)["conductance"]
            # its accuracy: stored self-check (tighter settings + analytic derivative)
            sc = REF_POINTS[i]["selfcheck"]
            err = max(sc["conductance_rel_tight"], sc["conductance_rel_analytic"])
            rows["strict"].append((time.perf_counter() - t0, err))
    out = {}
    for name, r in rows.items():
        t = np.array([x[0] for x in r])
        e = np.array([x[1] for x in r])
        out[name] = {
            "points": len(r),
            "seconds_per_point_median": float(np.median(t)),
            "seconds_per_point": t.tolist(),
            "points_per_s": float(1 / np.median(t)),
            "max_rel_error": float(e.max()),
            "errors": e.tolist(),
        }
    out["plain"]["note"] = "quad_vec epsrel 1e-10 + numpy lstsq + central FD h = 1e-3 T"
    out["strict"]["note"] = "tests/reference.py point(): error from its stored self-check"
    return out


def run_stationary(quick: bool) -> dict:
    """The stationary-state step alone on the same Liouvillians (reference quadrature)."""
    idx = BASELINE_IDX[:3] if quick else BASELINE_IDX
    sups = [reference.integrated_operators(REF_J[i], REF_T[i], REF_V[i])[0] for i in idx]
    rho_ref = [reference.stationary_state(s) for s in sups]  # 40-digit least squares
    rows = {}

    def measure(name, solve, repeat):
        times, errs = [], []
        for s, r in zip(sups, rho_ref, strict=True):
            t, _, rho = median_time(lambda s=s: solve(s), repeat)
            times.append(t)
            errs.append(float(np.abs(np.asarray(rho) - r).max()))
        rows[name] = {
            "seconds_per_state": float(np.median(times)),
            "states_per_s": float(1 / np.median(times)),
            "max_abs_error_rho": max(errs),
        }

    measure("numpy lstsq (5x4)", lstsq_state, 200)
    measure("mpmath 40 digits (reference)", reference.stationary_state, 5)
    try:
        import qutip

        perm = np.eye(4)[[0, 2, 1, 3]]  # row-major vec -> qutip's column stacking

        def to_qutip(s):
            return qutip.Qobj(perm @ s @ perm, dims=[[[2], [2]], [[2], [2]]])

        for method, rep in (("direct", 10), ("svd", 100)):
            measure(
                f"qutip {qutip.__version__} steadystate({method})",
                lambda s, m=method: qutip.steadystate(to_qutip(s), method=m).full(),
                rep,
            )
        rows["qutip_note"] = "includes building the Qobj (4x4 superoperator) per call"
    except ImportError:
        rows["qutip_note"] = "QuTiP not installed (pip install '.[bench]'): row skipped"

    # jaxmi: the 2x2 x-z block of the Bloch equation (trace and the decoupled y row removed),
    # Cramer's rule, batched; a stable random M per state.
    n = 1_000_000
    rng = np.random.default_rng(0)
    d = rng.uniform(0.1, 1.0, (2, n))
    off = rng.uniform(-0.05, 0.05, (2, n))
    m = (jnp.asarray(-d[0]), jnp.asarray(off[0]), jnp.asarray(off[1]), jnp.asarray(-d[1]))
    rhs = tuple(jnp.asarray(x) for x in rng.uniform(-1, 1, (2, n)))
    t, _ = bench.timed(lambda m, r: reached_state_solve(m, r, 1e-24), m, rhs, repeat=5)
    t1, _ = bench.timed(
        lambda m, r: reached_state_solve(m, r, 1e-24),
        tuple(x[:1] for x in m),
        tuple(x[:1] for x in rhs),
        repeat=200,
    )
    rows["jaxmi 2x2 reduced (batched 1e6)"] = {
        "seconds_per_state": t.median_s / n,
        "states_per_s": n / t.median_s,
        "max_abs_error_rho": None,
    }
    rows["jaxmi 2x2 reduced (one jitted call)"] = {
        "seconds_per_state": t1.median_s,
        "states_per_s": 1 / t1.median_s,
        "max_abs_error_rho": None,
    }
    return rows


# --- jaxmi ------------------------------------------------------------------------------------


def direct_batch(n: int):
    """The 32 reference points first, then random points of the validated domain."""
    J, T, V = bench.sample(max(n - N_REF, 1), seed=3)
    cat = (
        np.concatenate([a, b])[:n] for a, b in zip((REF_J, REF_T, REF_V), (J, T, V), strict=True)
    )
    return tuple(cat)


def ref_error(g) -> float:
    g = np.asarray(g)[:N_REF]
    return bench.max_rel_error(g, REF_G[: len(g)])


def run_direct(quick: bool) -> dict:
    n_acc = 256
    high_in = direct_batch(n_acc)
    _, g_high = bench.timed(bench.direct_conductance(bench.HIGH), *high_in, repeat=1)
    g_high = np.asarray(g_high)
    high_vs_ref = ref_error(g_high)
    rows = []
    n_main = 2_048 if quick else 10_240  # a multiple of observables.DIRECT_BLOCK
    sizes = [100, 1_000, n_main] if quick else [100, 1_000, n_main, 100_000, 1_000_000]
    configs = [(o, n_main) for o in ORDERS] + [(DEFAULT.order, n) for n in sizes if n != n_main]
    for order, n in configs:
        cfg = Config(order=order)
        say(f"direct order {order}, n = {n}")
        t, g = bench.timed(
            bench.direct_conductance(cfg), *direct_batch(n), repeat=3, min_repeat_s=1.0
        )
        g = np.asarray(g)
        rows.append(
            {
                "order": order,
                "nodes": cfg.nodes,
                "n": n,
                "compile_s": t.compile_s,
                "median_s": t.median_s,
                "repeats": len(t.times_s),
                "points_per_s": n / t.median_s,
                "err_vs_reference": ref_error(g),
                "err_vs_high": bench.max_rel_error(g[:n_acc], g_high[: min(n, n_acc)]),
            }
        )
    # gradients w.r.t. J at the default order, timed in turn with the plain conductance
    n = n_main
    inputs = direct_batch(n)
    items, compile_s = {}, {}
    fns = {
        "conductance": bench.direct_conductance(DEFAULT),
        "grad": bench.direct_gradient(DEFAULT, "grad"),
        "jacfwd": bench.direct_gradient(DEFAULT, "jacfwd"),
    }
    for mode, fn in fns.items():
        c, args, compile_s[mode] = bench.compiled(fn, *inputs)
        items[mode] = (c, args)
    # the public call on numpy inputs: the batch split over the local devices
    public = bench.public_conductance(DEFAULT)
    t0 = time.perf_counter()
    split_g = np.asarray(public(*inputs))  # compiles each device's piece
    compile_s["split"] = time.perf_counter() - t0
    items["split"] = (public, inputs)
    say(f"gradients (interleaved with the conductance), n = {n}")
    times = bench.interleaved_times(items, rounds=9)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    plain_g = np.asarray(items["conductance"][0](*items["conductance"][1]))
    _, dg_high = bench.timed(
        bench.direct_gradient(bench.HIGH, "jacfwd"), *(x[:64] for x in inputs), repeat=1
    )
    dg_high = np.asarray(dg_high)
    scale = np.abs(dg_high).max(axis=1, keepdims=True)  # per point, max over components
    grad_rows = []
    for mode in ("grad", "jacfwd"):
        dg = np.asarray(items[mode][0](*items[mode][1]))
        grad_rows.append(
            {
                "mode": f"vmap({mode})",
                "n": n,
                "compile_s": compile_s[mode],
                "median_s": med[mode],
                "points_per_s": n / med[mode],
                "conductance_points_per_s_same_rounds": n / med["conductance"],
                "ratio_to_conductance": med["conductance"] / med[mode],
                "err_vs_high": float(np.max(np.abs(dg[:64] - dg_high) / scale)),
            }
        )
    split = {
        "devices": len(jax.local_devices()),
        "n": n,
        "compile_s": compile_s["split"],
        "points_per_s": n / med["split"],
        "best_points_per_s": n / best["split"],
        "conductance_points_per_s_same_rounds": n / med["conductance"],
        "conductance_best_points_per_s": n / best["conductance"],
        "speedup": med["conductance"] / med["split"],
        "bitwise_equal_to_one_device": bool(np.array_equal(split_g, plain_g)),
        "err_vs_reference": ref_error(split_g),
    }
    return {
        "rows": rows,
        "gradient": grad_rows,
        "split": split,
        "high_vs_reference": high_vs_ref,
    }


def factorized_grid(n_pairs: int, n_j: int):
    """J (n_j, 3) and pairs (n_pairs,): the reference points' J and (T, V) first."""
    J, T, V = bench.factorized_inputs(n_pairs, n_j, seed=5)
    k_j, k_p = min(N_REF, n_j), min(N_REF, n_pairs)
    J[:k_j], T[:k_p], V[:k_p] = REF_J[:k_j], REF_T[:k_p], REF_V[:k_p]
    return J, T, V


def time_factorized(n_pairs, n_j, config=DEFAULT, repeat=3):
    t, out = bench.timed(
        bench.factorized(config), *factorized_grid(n_pairs, n_j), repeat=repeat, min_repeat_s=1.0
    )
    g = np.asarray(out[1])
    k = min(N_REF, n_pairs, n_j)
    err = bench.max_rel_error(np.diagonal(g[:k, :k]), REF_G[:k])  # point i = (J_i, T_i, V_i)
    return {
        "order": config.order,
        "nodes": config.nodes,
        "pairs": n_pairs,
        "n_j": n_j,
        "points": n_pairs * n_j,
        "compile_s": t.compile_s,
        "median_s": t.median_s,
        "repeats": len(t.times_s),
        "points_per_s": n_pairs * n_j / t.median_s,
        "err_vs_reference": err,
        "reference_points": k,
    }


def run_factorized(quick: bool) -> dict:
    say("factorized 100 x 1e5")
    main = time_factorized(100, 10_000 if quick else 100_000, repeat=5)
    vs_nj = []
    for n_j in [100, 1_000, 10_000] + ([] if quick else [100_000, 300_000]):
        say(f"factorized 100 x {n_j}")
        vs_nj.append(time_factorized(100, n_j))
    vs_pairs = []
    for n_p in [1, 10, 100] + ([] if quick else [3, 30, 300, 1000]):
        say(f"factorized {n_p} x 1e4")
        vs_pairs.append(time_factorized(n_p, 10_000))
    vs_pairs.sort(key=lambda r: r["pairs"])
    vs_order = []
    for order in [8, 16, 32] + ([] if quick else [12, 24, 48]):
        say(f"factorized order {order}")
        vs_order.append(time_factorized(100, 10_000, Config(order=order)))
    vs_order.sort(key=lambda r: r["order"])
    return {"main": main, "vs_nj": vs_nj, "vs_pairs": vs_pairs, "vs_order": vs_order}


def run_direct_order_scaling(quick: bool) -> list[dict]:
    rows = []
    for order in [8, 12, 16, 24, 32, 48] if not quick else [8, 16, 32]:
        cfg = Config(order=order)
        say(f"direct order scaling {order}")
        t, _ = bench.timed(bench.direct_conductance(cfg), *direct_batch(4096), repeat=3)
        rows.append({"order": order, "nodes": cfg.nodes, "points_per_s": 4096 / t.median_s})
    return rows


# --- profile and operation counts -----------------------------------------------------------


def run_profile(quick: bool) -> dict:
    """Per-point cost of the direct path by stage (each stage includes the previous ones)."""
    n = 2_000 if quick else 10_000
    J, T, V = direct_batch(n)
    cfg = DEFAULT

    def integrals(T, V):
        return jax.vmap(lambda t, v: coefficients(t, v, config=cfg))(T, V)

    def integrals_dv(T, V):
        def one(t, v):
            return jax.jvp(lambda vv: coefficients(t, vv, config=cfg), (v,), (jnp.ones_like(v),))

        return jax.vmap(one)(T, V)

    stages = [
        ("energy integrals (value)", integrals, (T, V)),
        ("+ their V-derivative (jvp)", integrals_dv, (T, V)),
        ("+ generator forms (15 -> 6x13 map)", lambda T, V: generators(T, V, cfg), (T, V)),
        ("+ J-combination and stationary solve", bench.direct_conductance(cfg), (J, T, V)),
    ]
    items, costs = {}, {}
    for name, fn, args in stages:
        say(f"profile: compile {name}")
        c, a, _ = bench.compiled(fn, *args)
        items[name] = (c, a)
        costs[name] = bench.cost(fn, *args)
    say("profile: timing the stages in turn")
    med = bench.interleaved(items, rounds=5)
    rows = []
    for name, _, _ in stages:
        cst = costs[name]
        rows.append(
            {
                "stage": name,
                "us_per_point": 1e6 * med[name] / n,
                "flops_per_point": cst["flops"] / n,
                "transcendentals_per_point": cst["transcendentals"] / n,
                "bytes_per_point": cst["bytes"] / n,
            }
        )
    # factorized: the J part alone, on precomputed generators
    gen, dgen = generators(jnp.asarray(T[:100]), jnp.asarray(V[:100]), cfg)
    n_j = 10_000 if quick else 100_000
    Jg = jnp.asarray(bench.sample(n_j, 7)[0])

    def j_part(J, gen, dgen):
        return combine_grid(J, gen, dgen, cfg)

    t, _ = bench.timed(j_part, Jg, gen, dgen, repeat=3)
    # XLA counts a loop body once: count one block of the J loop (BLOCK_POINTS // 100 J).
    nb = BLOCK_POINTS // 100
    cst = bench.cost(j_part, Jg[:nb], gen, dgen)
    fact_j = {
        "us_per_point": 1e6 * t.median_s / (100 * n_j),
        "flops_per_point": cst["flops"] / (100 * nb),
        "transcendentals_per_point": cst["transcendentals"] / (100 * nb),
        "bytes_per_point": cst["bytes"] / (100 * nb),
    }
    # the cost of one transcendental call and of a streaming pass on this device
    x = jnp.asarray(np.random.default_rng(0).uniform(0.1, 3.0, 4_000_000))
    z = x + 1j * x[::-1]
    micro = {}
    for name, fn, arg, calls in (
        ("exp (real)", jnp.exp, x, 1),
        ("sin (real)", jnp.sin, x, 1),
        ("exp (complex: exp, sin, cos)", jnp.exp, z, 3),
        ("copy (stream)", lambda a: a + 1.0, x, 0),
    ):
        t, _ = bench.timed(fn, arg, repeat=5)
        micro[name] = {
            "ns_per_element": 1e9 * t.median_s / arg.size,
            "ns_per_call": 1e9 * t.median_s / arg.size / calls if calls else None,
            "gb_per_s": 2 * arg.nbytes / t.median_s / 1e9,
        }
    return {
        "n": n,
        "direct": rows,
        "factorized_j_part": fact_j,
        "micro": micro,
        "code_counts_per_point": code_counts(),
    }


def code_counts() -> dict:
    """Costly primitives in the jaxpr of one direct-path conductance (value + d/dV), by dtype:
    the count from the code, independent of XLA's cost model."""
    jaxpr = jax.make_jaxpr(lambda J, T, V: point(J, T, V, DEFAULT).conductance)(
        jnp.array([0.3, -0.5, 0.7]), 0.1, 0.2
    )
    costly = {"exp", "expm1", "sin", "cos", "tanh", "log", "log1p", "div", "pow", "sqrt"}
    counts: dict[str, int] = {}

    def walk(jp):
        for e in jp.eqns:
            for v in e.params.values():
                sub = getattr(v, "jaxpr", None)
                if sub is not None:
                    walk(getattr(sub, "jaxpr", sub))
            if e.primitive.name in costly:
                for o in e.outvars:
                    key = f"{e.primitive.name} ({o.aval.dtype})"
                    counts[key] = counts.get(key, 0) + int(np.prod(o.aval.shape))

    walk(jaxpr.jaxpr)
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def roofline(profile: dict, direct_pps: float, fact_pps: float, fact_pairs_pps: float) -> dict:
    """FLOPs and bytes per point, and the H100 float64 bound of both paths (a model)."""
    full = profile["direct"][-1]
    fj = profile["factorized_j_part"]
    gen = profile["direct"][2]  # per (T, V) pair: integrals + jvp + forms
    out = {}
    for name, flops, transc, io_bytes, xla_bytes, measured in (
        (
            "direct (per point)",
            full["flops_per_point"],
            full["transcendentals_per_point"],
            5 * 8 + 8,  # J, T, V in; conductance out
            full["bytes_per_point"],
            direct_pps,
        ),
        (
            "factorized, J part (per point)",
            fj["flops_per_point"],
            fj["transcendentals_per_point"],
            5 * 8,  # current, conductance, spin (3) out; J, generators amortised
            fj["bytes_per_point"],
            fact_pps,
        ),
        (
            "factorized, per (T, V) pair",
            gen["flops_per_point"],
            gen["transcendentals_per_point"],
            2 * 8 + 2 * 6 * 13 * 8,  # T, V in; forms and their V-derivative out
            gen["bytes_per_point"],
            fact_pairs_pps,
        ),
    ):
        eff = flops + FLOPS_PER_TRANSCENDENTAL * transc
        t_compute = eff / H100["fp64_vector_flops"]
        t_mem_io = io_bytes / H100["hbm_bytes_per_s"]
        t_mem_xla = xla_bytes / H100["hbm_bytes_per_s"]
        out[name] = {
            "flops": flops,
            "transcendentals": transc,
            "effective_flops": eff,
            "io_bytes": io_bytes,
            "xla_cpu_bytes": xla_bytes,
            "h100_bound_points_per_s": 1 / max(t_compute, t_mem_io),
            "h100_bound_if_unfused_points_per_s": 1 / max(t_compute, t_mem_xla),
            "bound": "compute" if t_compute >= t_mem_io else "memory",
            "cpu_measured_points_per_s": measured,
            "cpu_effective_gflops": eff * measured / 1e9,
        }
    return out


# --- figures and docs -------------------------------------------------------------------------


def make_figures(res: dict, outdir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    written = []

    def finish(fig, ax, name, title):
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = outdir / name
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(str(path.relative_to(REPO)))

    f = res["factorized"]
    # cost vs nJ
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    nj = np.array([r["n_j"] for r in f["vs_nj"]])
    s = np.array([r["median_s"] for r in f["vs_nj"]])
    ax.loglog(nj, s, "o-", label="factorized, 100 (T, V) pairs (measured)")
    ax.loglog(nj, s[-1] * nj / nj[-1], "k--", lw=0.8, label="slope 1")
    gen_s = 100 * res["profile"]["direct"][2]["us_per_point"] * 1e-6
    ax.axhline(gen_s, color="C1", ls=":", label="integrals of the 100 pairs (profile)")
    ax.set_xlabel("number of couplings nJ")
    ax.set_ylabel("seconds per call")
    finish(fig, ax, "scaling_nj.png", "Factorized path: cost vs nJ")
    # cost vs pairs
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    p = np.array([r["pairs"] for r in f["vs_pairs"]])
    s = np.array([r["median_s"] for r in f["vs_pairs"]])
    ax.loglog(p, s, "o-", label="factorized, nJ = 1e4 (measured)")
    ax.loglog(p, s[-1] * p / p[-1], "k--", lw=0.8, label="slope 1")
    ax.set_xlabel("number of (T, V) pairs")
    ax.set_ylabel("seconds per call")
    finish(fig, ax, "scaling_pairs.png", "Factorized path: cost vs (T, V) pairs")
    # cost vs order
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    d = res["direct_order_scaling"]
    nodes = np.array([r["nodes"] for r in d])
    us = np.array([1e6 / r["points_per_s"] for r in d])
    ax.loglog(nodes, us, "o-", label="direct, per point")
    ax.loglog(nodes, us[-1] * nodes / nodes[-1], "k--", lw=0.8, label="slope 1")
    fo = f["vs_order"]
    fn = np.array([r["nodes"] for r in fo])
    fus = np.array([1e6 * r["median_s"] / r["points"] for r in fo])
    ax.loglog(fn, fus, "s-", label="factorized 100 x 1e4, per point")
    panels = DEFAULT.window_panels + DEFAULT.tail_panels
    ax.set_xlabel(f"quadrature nodes per (T, V) pair (order x {panels} panels)")
    ax.set_ylabel("microseconds per point")
    finish(fig, ax, "scaling_order.png", "Cost vs quadrature order")
    return written


def fmt(x, spec=".2g") -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    return format(x, spec)


def markdown(res: dict) -> str:
    m = res["meta"]
    b = res["baselines"]
    plain, strict = b["plain"]["points_per_s"], b["strict"]["points_per_s"]
    L = []
    L.append(
        f"Measured {m['time']} on {m['device']} ({m.get('devices', 1)} device(s)), {m['cpus']} "
        f"cores ({m['cpu_model']}); load "
        f"average {m['load_before']:.2f} before, {m['load_after']:.2f} after "
        f"(the machine was shared; medians of repeated calls after compilation). Code: "
        f"{m['git']}; default `{m['config']}` ({DEFAULT.nodes} nodes per (T, V) pair)."
    )
    L.append("")
    L.append("### Side by side: conductance per point")
    L.append("")
    L.append(
        "| method | order (nodes) | batch | points/s | vs plain | vs strict | compile s | "
        "max rel. error vs reference |"
    )
    L.append("|---|---|---|---|---|---|---|---|")
    for name, key in (("baseline plain", "plain"), ("baseline strict (reference)", "strict")):
        r = b[key]
        L.append(
            f"| {name}: {r['note']} | adaptive | 1 ({r['points']} pts timed) | "
            f"{fmt(r['points_per_s'], '.3g')} | {fmt(r['points_per_s'] / plain, '.2g')} | "
            f"{fmt(r['points_per_s'] / strict, '.2g')} | - | {fmt(r['max_rel_error'], '.1e')} |"
        )
    for r in res["direct"]["rows"]:
        L.append(
            f"| jaxmi direct | {r['order']} ({r['nodes']}) | {r['n']:.0e} | "
            f"{fmt(r['points_per_s'], '.3g')} | {fmt(r['points_per_s'] / plain, '.2g')} | "
            f"{fmt(r['points_per_s'] / strict, '.2g')} | {r['compile_s']:.1f} | "
            f"{fmt(r['err_vs_reference'], '.1e')} (vs order 48: {fmt(r['err_vs_high'], '.1e')}) |"
        )
    for r in res["direct"]["gradient"]:
        L.append(
            f"| jaxmi direct, d/dJ {r['mode']} | {DEFAULT.order} ({DEFAULT.nodes}) | "
            f"{r['n']:.0e} | "
            f"{fmt(r['points_per_s'], '.3g')} = {r['ratio_to_conductance']:.0%} of conductance | "
            f"{fmt(r['points_per_s'] / plain, '.2g')} | {fmt(r['points_per_s'] / strict, '.2g')} "
            f"| {r['compile_s']:.1f} | gradient vs order 48: {fmt(r['err_vs_high'], '.1e')} |"
        )
    sp = res["direct"].get("split")
    if sp is not None:
        same = "the same bits as one device" if sp["bitwise_equal_to_one_device"] else "DIFFERS"
        L.append(
            f"| jaxmi.conductance: the batch split over {sp['devices']} devices (numpy in, "
            "checks and transfers included) | "
            f"{DEFAULT.order} ({DEFAULT.nodes}) | {sp['n']:.0e} | {fmt(sp['points_per_s'], '.3g')} "
            f"= {sp['speedup']:.2g} x one device in the same rounds (best rounds: "
            f"{fmt(sp['best_points_per_s'], '.3g')} vs "
            f"{fmt(sp['conductance_best_points_per_s'], '.3g')}) | "
            f"{fmt(sp['points_per_s'] / plain, '.2g')} | {fmt(sp['points_per_s'] / strict, '.2g')} "
            f"| {sp['compile_s']:.1f} | {fmt(sp['err_vs_reference'], '.1e')} ({same}) |"
        )
    f = res["factorized"]["main"]
    L.append(
        f"| jaxmi factorized (compute only) | {f['order']} ({f['nodes']}) | {f['pairs']} pairs x "
        f"{f['n_j']:.0e} J | {fmt(f['points_per_s'], '.3g')} | "
        f"{fmt(f['points_per_s'] / plain, '.2g')} | {fmt(f['points_per_s'] / strict, '.2g')} | "
        f"{f['compile_s']:.1f} | {fmt(f['err_vs_reference'], '.1e')} |"
    )
    L.append("")
    L.append(
        f"Errors against the reference are the max over the {N_REF} stored reference points "
        "(tests/data/reference_points.json), which are the first points of every timed batch; "
        f"'vs order 48' over the first 256 points (the order-48 engine itself is "
        f"{res['direct']['high_vs_reference']:.1e} from the reference). Baseline plain: error "
        "measured against the stored reference on the same points; baseline strict: its stored "
        "self-check (tighter settings, analytic derivative)."
    )
    L.append("")
    L.append("### The stationary-state step alone (same 4x4 Liouvillian)")
    L.append("")
    L.append("| solver | states/s | s per state | max abs error of rho vs 40-digit |")
    L.append("|---|---|---|---|")
    for name, r in res["stationary"].items():
        if name.endswith("note"):
            continue
        L.append(
            f"| {name} | {fmt(r['states_per_s'], '.3g')} | {fmt(r['seconds_per_state'], '.2e')} "
            f"| {fmt(r['max_abs_error_rho'], '.1e')} |"
        )
    L.append("")
    L.append(f"QuTiP: {res['stationary']['qutip_note']}.")
    L.append("")
    L.append("### Profile of the direct path (default order, per point)")
    L.append("")
    L.append("| stage (cumulative) | us/point | FLOPs | transcendental calls | bytes (XLA:CPU) |")
    L.append("|---|---|---|---|---|")
    for r in res["profile"]["direct"]:
        L.append(
            f"| {r['stage']} | {r['us_per_point']:.1f} | {r['flops_per_point']:.3g} | "
            f"{r['transcendentals_per_point']:.0f} | {r['bytes_per_point']:.3g} |"
        )
    fj = res["profile"]["factorized_j_part"]
    L.append(
        f"| factorized J part alone (per point, 100 pairs) | {fj['us_per_point']:.4f} | "
        f"{fj['flops_per_point']:.3g} | {fj['transcendentals_per_point']:.2g} | "
        f"{fj['bytes_per_point']:.3g} |"
    )
    L.append("")
    cc = res["profile"]["code_counts_per_point"]
    libm = 3 * sum(v for k, v in cc.items() if k.split()[0] in ("exp", "expm1") and "complex" in k)
    libm += sum(v for k, v in cc.items() if "float" in k and k.split()[0] != "div")
    ns_call = res["profile"]["micro"]["exp (complex: exp, sin, cos)"]["ns_per_call"]
    L.append(
        "Costly operations per point counted in the code (jaxpr of one conductance, value and "
        "d/dV): " + ", ".join(f"{k} {v}" for k, v in cc.items()) + f". A complex exp or expm1 "
        f"is three libm calls (exp, sin, cos): ~{libm} calls per point, which at the measured "
        f"{ns_call:.1f} ns per call (whole device) is a floor of {libm * ns_call / 1e3:.0f} us "
        f"per point, i.e. at most {1e9 / (libm * ns_call):.2g} points/s from the "
        "transcendentals alone; the complex divisions of the Fermi functions come on top."
    )
    L.append("")
    L.append("| micro-benchmark (4e6 float64, whole device) | ns/element | ns/call | GB/s |")
    L.append("|---|---|---|---|")
    for name, r in res["profile"]["micro"].items():
        L.append(
            f"| {name} | {r['ns_per_element']:.2f} | {fmt(r['ns_per_call'], '.2f')} | "
            f"{r['gb_per_s']:.1f} |"
        )
    L.append("")
    L.append("### Roofline model (H100 SXM, float64) against the measured CPU")
    L.append("")
    L.append(
        f"Effective FLOPs = FLOPs + {FLOPS_PER_TRANSCENDENTAL:.0f} x transcendental calls; "
        "H100: 34 TFLOP/s FP64 vector (the 67 TFLOP/s of the tensor cores needs matrix "
        "products, which neither path has at a useful size), 3.35 TB/s HBM3. The GPU columns "
        "are model estimates, unmeasured."
    )
    L.append("")
    L.append(
        "| path | FLOPs | transc. | eff. FLOPs | bytes (I/O) | bytes (XLA:CPU, unfused) | "
        "H100 bound /s | bound by | CPU measured /s | CPU eff. GFLOP/s |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in res["roofline"].items():
        L.append(
            f"| {name} | {r['flops']:.3g} | {r['transcendentals']:.3g} | "
            f"{r['effective_flops']:.3g} | {r['io_bytes']:.0f} | {r['xla_cpu_bytes']:.3g} | "
            f"{r['h100_bound_points_per_s']:.2g} (unfused: "
            f"{r['h100_bound_if_unfused_points_per_s']:.2g}) | {r['bound']} | "
            f"{r['cpu_measured_points_per_s']:.3g} | {r['cpu_effective_gflops']:.2g} |"
        )
    L.append("")
    L.append("### Targets (issue 4)")
    L.append("")
    L.append("| target | measured | met |")
    L.append("|---|---|---|")
    for t in res["targets"]:
        L.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |")
    L.append("")
    L.append("![cost vs nJ](figures/scaling_nj.png)")
    L.append("![cost vs pairs](figures/scaling_pairs.png)")
    L.append("![cost vs order](figures/scaling_order.png)")
    return "\n".join(L)


BEGIN = "<!-- begin generated by benchmarks/run.py -->"
END = "<!-- end generated by benchmarks/run.py -->"


def write_docs(text: str, path: Path) -> None:
    doc = path.read_text() if path.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in doc:
        doc += f"\n{BEGIN}\n{END}\n"
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def targets(res: dict) -> list[dict]:
    plain = res["baselines"]["plain"]["points_per_s"]
    d16 = max(
        (r for r in res["direct"]["rows"] if r["order"] == DEFAULT.order),
        key=lambda r: r["points_per_s"],
    )
    fm = res["factorized"]["main"]
    grad = res["direct"]["gradient"]
    best_grad = max(grad, key=lambda r: r["ratio_to_conductance"])
    sp = res["direct"]["split"]
    best = sp["points_per_s"]
    one = f"; one device {d16['points_per_s']:.3g} (batch {d16['n']:.0e})"
    return [
        {
            "target": "direct >= 1e5 conductance points/s at the default order",
            "measured": f"{best:.3g} points/s (jaxmi.conductance, batch {sp['n']:.0e} over "
            f"{sp['devices']} devices; best round {sp['best_points_per_s']:.3g}){one}",
            "met": best >= 1e5,
        },
        {
            "target": "direct >= 1e5 x the plain baseline at equal or better accuracy",
            "measured": f"{best / plain:.2g} x, one device {d16['points_per_s'] / plain:.2g} x "
            f"(error {sp['err_vs_reference']:.0e} vs baseline "
            f"{res['baselines']['plain']['max_rel_error']:.0e}; the baseline runs on one core)",
            "met": best / plain >= 1e5
            and sp["err_vs_reference"] <= res["baselines"]["plain"]["max_rel_error"],
        },
        {
            "target": "factorized >= 1e7 points/s (100 pairs x 1e5 J, compute only)",
            "measured": f"{fm['points_per_s']:.3g} points/s ({fm['pairs']} x {fm['n_j']:.0e})",
            "met": fm["points_per_s"] >= 1e7 and fm["n_j"] >= 100_000,
        },
        {
            "target": "gradient w.r.t. J >= 30% of the conductance throughput",
            "measured": ", ".join(f"{r['mode']} {r['ratio_to_conductance']:.0%}" for r in grad),
            "met": best_grad["ratio_to_conductance"] >= 0.3,
        },
    ]


def _git_state() -> str:
    import subprocess

    def git(*a):
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes (about 2 min)")
    p.add_argument("--no-docs", action="store_true", help="do not touch docs/ (JSON only)")
    p.add_argument("--from-json", metavar="RUN.json", help="redraw figures and docs from a run")
    args = p.parse_args()
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
        for fig in make_figures(res, REPO / "docs" / "figures"):
            print(f"wrote {fig}")
        write_docs(markdown(res), REPO / "docs" / "performance.md")
        return
    from jaxmi.validate import describe_device

    meta = {
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "device": describe_device(),
        "devices": len(jax.local_devices()),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "quick": args.quick,
        "load_before": load(),
        "config": repr(DEFAULT),
        "git": _git_state(),
    }
    res = {"meta": meta}
    loads = {}
    for name, fn in (
        ("baselines", run_baselines),
        ("stationary", run_stationary),
        ("direct", run_direct),
        ("factorized", run_factorized),
        ("direct_order_scaling", run_direct_order_scaling),
        ("profile", run_profile),
    ):
        say(f"== {name}")
        t0, l0 = time.perf_counter(), load()
        res[name] = fn(args.quick)
        loads[name] = {"before": l0, "after": load(), "wall_s": time.perf_counter() - t0}
    meta["load_after"] = load()
    meta["load_by_section"] = loads
    d16 = max(
        (r for r in res["direct"]["rows"] if r["order"] == DEFAULT.order),
        key=lambda r: r["points_per_s"],
    )
    gen_us = res["profile"]["direct"][2]["us_per_point"]
    res["roofline"] = roofline(
        res["profile"],
        d16["points_per_s"],
        1e6 / res["profile"]["factorized_j_part"]["us_per_point"],
        1e6 / gen_us,
    )
    res["targets"] = targets(res)
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"run-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(res, indent=2, default=float))
    text = markdown(res)
    print(text)
    print(f"wrote {path.relative_to(REPO)}")
    if not args.no_docs:
        for fig in make_figures(res, REPO / "docs" / "figures"):
            print(f"wrote {fig}")
        write_docs(text, REPO / "docs" / "performance.md")
        print("wrote docs/performance.md (generated block)")


if __name__ == "__main__":
    main()
