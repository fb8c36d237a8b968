"""Default model: does HEAD regress against a base revision? Both measured in one run (issue 9).

The paper's model (``Model()``, the default) keeps its own fast path; this script checks that its
figures did not get slower. It creates a git worktree of the base revision under /tmp (removed at
the end) and runs the same child program alternately against the base tree and the head tree
(each child a fresh process with PYTHONPATH and the working directory at its tree,
JAX_ENABLE_X64=1), ``--reps`` times each, in the order AB BA AB BA ... (interleaved, and which tree
goes first in a back-to-back pair alternates, so that a drifting load biases neither). Every
child measures, after compilation, in round-robin rounds:

* ``api``: the public ``jaxmi.conductance(J, T, V)`` (direct path, default order) on 1e4 random
  points, J in [-1, 1]^3, T in [0.01, 1] (log-uniform), |V| <= 2, numpy inputs, as a user calls it
  (argument checks and conversions included);
* ``api_1``: the same on one point, 100 calls per round (time per call: mostly the Python
  argument checks, conversions and eager dispatches of the public API, where the model family
  added its routing; the one-point kernel itself is ~0.1 ms of it);
* ``factorized``: ``observables.grid_arrays`` compute only, 100 (T, V) pairs x 1e5 J (as
  benchmarks/run.py: ahead-of-time compiled, inputs on the device);
* ``grad``: d conductance / dJ by ``vmap(grad)`` of ``observables.point`` on the same 1e4 points
  (as benchmarks/run.py).

A child reports the median of its rounds; the run reports, per figure, the median over children
of each tree, their min and max, and head/base ratios of times (> 1: head slower).

Noise and verdict: child i of the base and child i of the head run back to back, so each pair
sees about the same load; the pair ratios r_i = head_i / base_i carry the run-to-run noise (their
spread is reported, as is the spread of the base's own children). Per figure:

The noise of one pair is the robust sd of log r_i (1.4826 x their median absolute deviation),
and the standard error of the median pair ratio is 1.2533 sd / sqrt(n). Per figure:

* ``regression``: the median pair ratio is > 1.05 by more than 2 standard errors, or every pair
  ratio is > 1.05 (head > 5% slower in each of n back-to-back pairs: if the true slowdown were
  <= 5%, each pair would exceed it with probability <= 1/2 under symmetric noise, all n with
  <= 2^-n, 1/64 at n = 6);
* ``no regression``: the median pair ratio is <= 1.05; "(clear)" when it is <= 1.05 even
  2 standard errors up (a slowdown > 5% is then excluded at about that level);
* ``inconclusive``: otherwise (rerun on a quieter machine, or with more --reps).

Usage: python benchmarks/regression.py [--base c929a93] [--head REV] [--reps 6] [--rounds 5]
                                       [--quick] [--no-docs]
--head defaults to the working tree (this checkout, uncommitted changes included). Writes
benchmarks/results/regression-<time>.json (git-ignored) and the generated block
"benchmarks/regression.py" of docs/performance.md. About 3-5 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from docblock import cpu_model, save

REPO = Path(__file__).resolve().parents[1]
THRESHOLD = 1.05
METRICS = {
    "api": "jaxmi.conductance, direct path (public API)",
    "api_1": "jaxmi.conductance, one point per call (API overhead + a 1-point kernel)",
    "factorized": "factorized grid_arrays, compute only",
    "grad": "d/dJ by vmap(grad), direct path",
}

CHILD = r"""
import json, os, statistics, sys, time
t_start = time.perf_counter()
import numpy as np
import jax
import jaxmi
from jaxmi import bench
from jaxmi.config import Config

n_direct, n_pairs, n_j, rounds = (int(x) for x in sys.argv[1:5])
cfg = Config()
rng = np.random.default_rng(9)
J = rng.uniform(-1.0, 1.0, (n_direct, 3))
T = np.exp(rng.uniform(np.log(0.01), 0.0, n_direct))
V = rng.uniform(-2.0, 2.0, n_direct)
Jg, Tg, Vg = bench.factorized_inputs(n_pairs, n_j, seed=5)

def api():
    return jax.block_until_ready(jaxmi.conductance(J, T, V))

N_CALLS = 100
J1, T1, V1 = J[0], float(T[0]), float(V[0])

def api_1():  # N_CALLS calls on one point: the Python checks and dispatch around the kernel
    for _ in range(N_CALLS):
        out = jax.block_until_ready(jaxmi.conductance(J1, T1, V1))
    return out

t0 = time.perf_counter()
g_api = np.asarray(api())
compile_s = {"api": time.perf_counter() - t0}
t0 = time.perf_counter()
g_1 = float(jaxmi.conductance(J1, T1, V1))
compile_s["api_1"] = time.perf_counter() - t0
c_fact, a_fact, compile_s["factorized"] = bench.compiled(bench.factorized(cfg), Jg, Tg, Vg)
c_grad, a_grad, compile_s["grad"] = bench.compiled(bench.direct_gradient(cfg, "grad"), J, T, V)
fns = {
    "api": api,
    "api_1": api_1,
    "factorized": lambda: jax.block_until_ready(c_fact(*a_fact)),
    "grad": lambda: jax.block_until_ready(c_grad(*a_grad)),
}
for f in fns.values():  # one untimed call each (first-call effects after compilation)
    f()
times = {k: [] for k in fns}
for _ in range(rounds):
    for k, f in fns.items():
        t0 = time.perf_counter()
        f()
        times[k].append(time.perf_counter() - t0)
g_fact = np.asarray(c_fact(*a_fact)[1])
dg = np.asarray(c_grad(*a_grad))
print(json.dumps({
    "jaxmi_file": jaxmi.__file__,
    "jax": jax.__version__,
    "device": str(jax.devices()[0]),
    "x64": bool(jax.config.jax_enable_x64),
    "compile_s": compile_s,
    "times_s": times,
    "median_s": {k: statistics.median(v) / (N_CALLS if k == "api_1" else 1)
                 for k, v in times.items()},
    "min_s": {k: min(v) / (N_CALLS if k == "api_1" else 1) for k, v in times.items()},
    "startup_s": time.perf_counter() - t_start - sum(sum(v) for v in times.values()),
    "checksum": {"api": float(np.sum(g_api)), "api_1": g_1, "factorized": float(np.sum(g_fact)),
                 "grad": float(np.sum(dg))},
    "sample": {"api": g_api[:4].tolist(), "api_1": [], "factorized": g_fact[0, :4].tolist(),
               "grad": dg[0].tolist()},
}))
"""


def load() -> float:
    return os.getloadavg()[0]


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load():.2f}] {msg}", file=sys.stderr, flush=True)


def git(*args: str, check: bool = True) -> str:
    r = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=check)
    return r.stdout.strip()


def run_child(tree: Path, sizes: list[int], timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), JAX_ENABLE_X64="1", PYTHONDONTWRITEBYTECODE="1")
    l0, t0 = load(), time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, sizes)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if r.returncode != 0:
        raise RuntimeError(f"child in {tree} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if not Path(out["jaxmi_file"]).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"child in {tree} imported jaxmi from {out['jaxmi_file']}")
    out["load_before"], out["load_after"] = l0, load()
    out["wall_s"] = time.perf_counter() - t0
    return out


def summarize(base: list[dict], head: list[dict], sizes: dict) -> dict:
    rows = {}
    for k in METRICS:
        b = [c["median_s"][k] for c in base]
        h = [c["median_s"][k] for c in head]
        pairs = [y / x for x, y in zip(b, h, strict=True)]
        base_spread = max(b) / min(b) - 1
        med_pair = statistics.median(pairs)
        logs = [math.log(r) for r in pairs]
        mad = statistics.median(abs(x - statistics.median(logs)) for x in logs)
        # robust sd of one pair's log ratio, and the standard error of the median of n of them
        sd = 1.4826 * mad
        se_median = 1.2533 * sd / math.sqrt(len(pairs))
        best = min(c["min_s"][k] for c in head) / min(c["min_s"][k] for c in base)
        upper = med_pair * math.exp(2 * se_median)  # ~2 s.e. above the median pair ratio
        lower = med_pair * math.exp(-2 * se_median)
        if min(pairs) > THRESHOLD or lower > THRESHOLD:
            verdict = "regression"
        elif med_pair <= THRESHOLD:
            verdict = "no regression" + (" (clear)" if upper <= THRESHOLD else "")
        else:
            verdict = "inconclusive"
        n_points = {"factorized": sizes["n_pairs"] * sizes["n_j"], "api_1": 1}.get(
            k, sizes["n_direct"]
        )
        rows[k] = {
            "what": METRICS[k],
            "points": n_points,
            "base_median_s": statistics.median(b),
            "base_min_s": min(b),
            "base_max_s": max(b),
            "head_median_s": statistics.median(h),
            "head_min_s": min(h),
            "head_max_s": max(h),
            "base_points_per_s": n_points / statistics.median(b),
            "head_points_per_s": n_points / statistics.median(h),
            "ratio_of_medians": statistics.median(h) / statistics.median(b),
            "pair_ratios": pairs,
            "pair_ratio_median": med_pair,
            "pair_ratio_min": min(pairs),
            "pair_ratio_max": max(pairs),
            "base_spread": base_spread,
            "pair_log_sd": sd,
            "pair_median_se": se_median,
            "best_of_ratio": best,
            "pair_ratio_upper": upper,
            "pair_ratio_lower": lower,
            "head_spread": max(h) / min(h) - 1,
            "base_compile_s": statistics.median(c["compile_s"][k] for c in base),
            "head_compile_s": statistics.median(c["compile_s"][k] for c in head),
            "verdict": verdict,
        }
    return rows


def same_values(base: list[dict], head: list[dict]) -> dict:
    """Max relative difference of the checksums and sample values, base vs head."""
    out = {}
    for k in METRICS:
        a = [base[0]["checksum"][k], *base[0]["sample"][k]]
        b = [head[0]["checksum"][k], *head[0]["sample"][k]]
        out[k] = max(abs(x - y) / max(abs(x), 1e-300) for x, y in zip(a, b, strict=True))
    return out


def markdown(res: dict) -> str:
    m = res["meta"]
    s = m["sizes"]
    L = [
        f"Measured {m['time']} on {m['device']}, jax {m['jax']}, float64, {m['cpus']} cores "
        f"({m['cpu_model']}); load average {m['load_before']:.2f} before, "
        f"{m['load_after']:.2f} after, {m['load_min']:.2f}-{m['load_max']:.2f} over the "
        f"children (the machine was shared). Base `{m['base']}` ({m['base_rev']}), head "
        f"`{m['head']}`. {m['reps']} children per tree, interleaved "
        f"(AB BA AB ...), each the median of {s['rounds']} rounds after compilation.",
        "",
        "| figure | size | base: median (min-max) | head: median (min-max) | head/base, "
        "pairs: median +- s.e. (min-max) | head/base: of medians, best of all rounds | "
        "noise: base spread, one pair's sd | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, r in res["rows"].items():
        size = {"factorized": f"{s['n_pairs']} pairs x {s['n_j']:.0e} J", "api_1": "1 point"}
        size = size.get(k, f"{r['points']:.0e} points")

        def rate(t: str, r=r, k=k) -> str:
            if k == "api_1":  # a time per call reads better than calls/s here
                lo, hi = r[f"{t}_min_s"] * 1e6, r[f"{t}_max_s"] * 1e6
                return f"{r[f'{t}_median_s'] * 1e6:.0f} us/call ({lo:.0f}-{hi:.0f})"
            p = r["points"]
            return (
                f"{p / r[f'{t}_median_s']:.3g} points/s "
                f"({p / r[f'{t}_max_s']:.3g}-{p / r[f'{t}_min_s']:.3g})"
            )

        L.append(
            f"| {r['what']} | {size} | {rate('base')} | {rate('head')} | "
            f"{r['pair_ratio_median']:.3f} +- {r['pair_median_se']:.1%} "
            f"({r['pair_ratio_min']:.3f}-{r['pair_ratio_max']:.3f}) | "
            f"{r['ratio_of_medians']:.3f}, {r['best_of_ratio']:.3f} | "
            f"{r['base_spread']:.0%}, {r['pair_log_sd']:.0%} | **{r['verdict']}** |"
        )
    L.append("")
    comp = ", ".join(
        f"{k} {r['base_compile_s']:.1f} / {r['head_compile_s']:.1f} s"
        for k, r in res["rows"].items()
    )
    same = ", ".join(f"{k} {v:.0e}" for k, v in res["same_values"].items())
    L.append(
        "Ratios are of times (> 1: head slower); pairs: child i of the base and child i of the "
        "head, run back to back; s.e.: standard error of the median pair ratio from the robust "
        "sd of one pair (1.4826 x MAD of the log ratios); base spread: max/min - 1 of the "
        "base's own children; best of all rounds: fastest head call / fastest base call (load "
        "only adds time, so the minima are the least loaded estimate). "
        f"Compile time (median, base / head): {comp}. "
        f"Same values on both trees (max relative difference of checksums and samples): {same}. "
        f"Verdict: regression when the median pair ratio exceeds {THRESHOLD:.2f} by more than "
        f"2 s.e. or every pair does (sign test, p <= 2^-{m['reps']}); no regression when the "
        f"median pair ratio is <= {THRESHOLD:.2f} (clear: also 2 s.e. up); inconclusive "
        "otherwise."
    )
    return "\n".join(L)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="c929a93", help="base revision (default c929a93)")
    p.add_argument("--head", default=None, help="head revision (default: the working tree)")
    p.add_argument("--reps", type=int, default=6, help="children per tree (>= 5 recommended)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per child")
    p.add_argument("--quick", action="store_true", help="1e4 J instead of 1e5, 3 reps x 3 rounds")
    p.add_argument("--no-docs", action="store_true", help="JSON only, do not touch docs/")
    p.add_argument("--timeout", type=float, default=240.0, help="seconds per child")
    args = p.parse_args()
    if args.quick:
        args.reps, args.rounds = min(args.reps, 3), min(args.rounds, 3)
    sizes = {
        "n_direct": 10_000,
        "n_pairs": 100,
        "n_j": 10_000 if args.quick else 100_000,
        "rounds": args.rounds,
    }
    child_sizes = [sizes["n_direct"], sizes["n_pairs"], sizes["n_j"], sizes["rounds"]]
    base_rev = git("rev-parse", "--short", args.base)
    tmp = Path(tempfile.mkdtemp(prefix="jaxmi-regression-"))
    trees = {"base": tmp / "base"}
    if args.head:
        trees["head"] = tmp / "head"
        head_desc = f"{args.head} ({git('rev-parse', '--short', args.head)})"
    else:
        trees["head"] = REPO
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "jaxmi")
        head_desc = f"working tree at {git('rev-parse', '--short', 'HEAD')}" + (
            " + uncommitted changes in jaxmi/" if dirty else ""
        )
    changed = git("diff", "--stat", base_rev, *([args.head] if args.head else []), "--", "jaxmi")
    meta = {
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "base": args.base,
        "base_rev": base_rev,
        "head": head_desc,
        "jaxmi_changes_base_to_head": changed,
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "reps": args.reps,
        "sizes": sizes,
        "load_before": load(),
    }
    children = {"base": [], "head": []}
    try:
        git("worktree", "add", "--detach", str(trees["base"]), base_rev)
        if args.head:
            git("worktree", "add", "--detach", str(trees["head"]), args.head)
        for i in range(args.reps):
            # ABBA ABBA...: each pair runs back to back, and which tree goes first alternates
            # (a load drift within a pair then biases half the pairs each way)
            for name in ("base", "head") if i % 2 == 0 else ("head", "base"):
                say(f"{name} child {i + 1}/{args.reps}")
                c = run_child(trees[name], child_sizes, args.timeout)
                children[name].append(c)
                say(
                    f"  {name}: "
                    + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in c["median_s"].items())
                )
    finally:
        for name in ("base", "head"):
            if trees[name] != REPO and trees[name].exists():
                git("worktree", "remove", "--force", str(trees[name]), check=False)
        git("worktree", "prune", check=False)
        if tmp.exists() and not any(tmp.iterdir()):
            tmp.rmdir()
    first = children["base"][0]
    meta.update(
        device=first["device"],
        jax=first["jax"],
        load_after=load(),
        load_min=min(c["load_before"] for cs in children.values() for c in cs),
        load_max=max(c["load_after"] for cs in children.values() for c in cs),
    )
    res = {
        "meta": meta,
        "rows": summarize(children["base"], children["head"], sizes),
        "same_values": same_values(children["base"], children["head"]),
        "children": children,
    }
    save("regression", res, markdown(res), quick=args.quick, docs=not args.no_docs)


if __name__ == "__main__":
    main()
