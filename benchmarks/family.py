"""Cost of the model family's general path against S and against a user texture (issue 9).

One run on this machine, the paper path (``observables``, the default model's fast path) timed in
the same rounds as the reference line:

* direct path (``family.points``), points/s: the paper model through the general path
  (``Model()`` forced onto it), then S = 1/2, 1, 3/2, 2 with a tensor exchange, mu0 = 0.3 and the
  built-in ``PowerLaw()`` texture, then S = 1/2 (tensor, mu0 = 0.3) with two ``CustomTexture``
  s: ``eps**2`` (the built-in's function, so the row separates the cost of "custom" from the cost
  of the function) and ``a * tanh(eps / w)**2``;
* factorized path (``family.grid_arrays``), 100 (T, V) pairs x nJ, per S: points/s at the
  largest nJ, and the per-J cost from two nJ (slope: J part alone) and the per-pair cost
  (intercept: the energy integrals), against the paper path's ``observables.grid_arrays``;
* accuracy: general vs paper path on the paper model (max over the timed points of the relative
  difference, and of the difference over max |G|); direct vs factorized on an 8 x 8 sub-grid
  (the first 64 points of every direct batch are that sub-grid of the factorized inputs);
  custom ``eps**2`` vs built-in ``PowerLaw()`` (the same texture);
* XLA operation counts (cost analysis) of one (T, V) pair's integrals with their V-derivative
  (paper vs general path) and of the per-J solve with its V-derivative against S.

Inputs: T log-uniform in [0.01, 0.3] (the general path's validated range), V uniform in
[-2, 2], J entries uniform in [-0.5, 0.5] (diagonal: (Jx, Jy, Jz); tensor: 3 x 3). Timings are
medians (and the best round) of round-robin rounds of ahead-of-time compiled calls on
device-resident inputs (all variants in the same rounds, the order rotating from round to round,
so that their ratios see the same load); compile time apart.

Usage: python benchmarks/family.py [--quick] [--no-docs]     (about 2-3 min on 2 cores)
Writes benchmarks/results/family-<time>.json (git-ignored) and the generated block
"benchmarks/family.py" of docs/performance.md.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from docblock import cpu_model, save

REPO = Path(__file__).resolve().parents[1]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import jaxmi  # noqa: E402, F401  (float64)
from jaxmi import bench, family, observables  # noqa: E402
from jaxmi.config import Config  # noqa: E402
from jaxmi.integrals import coefficients as paper_coefficients  # noqa: E402
from jaxmi.model import CustomTexture, Model, PowerLaw  # noqa: E402

CFG = Config()
SPINS = (0.5, 1.0, 1.5, 2.0)
MU0 = 0.3
N_SUB = 8  # direct-vs-factorized sub-grid: N_SUB couplings x N_SUB pairs
N_PAIRS = 100
#: Per section: dump every thread's stack and exit if it hangs (seconds).
WATCHDOG_S = 400


def eps2(e, p):
    return e**2


def tanh2(e, p):
    return p["a"] * jnp.tanh(e / p["w"]) ** 2


def load() -> float:
    return os.getloadavg()[0]


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load():.2f}] {msg}", file=sys.stderr, flush=True)
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)


def rotated_rounds(items: dict, rounds: int) -> tuple[dict, dict]:
    """(median, min) seconds per call of compiled calls timed round-robin; the order in which
    the variants run rotates from round to round (no variant always runs first or after the
    same neighbour). ``items``: name -> (compiled, args)."""
    names = list(items)
    times = {k: [] for k in names}
    for i in range(rounds):
        for k in names[i % len(names) :] + names[: i % len(names)]:
            c, args = items[k]
            t0 = time.perf_counter()
            jax.block_until_ready(c(*args))
            times[k].append(time.perf_counter() - t0)
    return (
        {k: statistics.median(v) for k, v in times.items()},
        {k: min(v) for k, v in times.items()},
    )


def spin_label(S: float) -> str:
    return {0.5: "1/2", 1.0: "1", 1.5: "3/2", 2.0: "2"}.get(S, f"{S:g}")


def tensor_model(S: float, texture=None) -> Model:
    return Model(spin=S, exchange="tensor", mu0=MU0, texture=texture or PowerLaw())


def cases() -> list[dict]:
    """The direct-path rows: name, model (None: the paper path) and the J form."""
    rows = [
        {"name": "paper path (observables.points), paper model", "model": None, "J": "diagonal"},
        {"name": "general path, paper model (Model())", "model": Model(), "J": "diagonal"},
    ]
    for S in SPINS:
        rows.append(
            {
                "name": f"general, S = {spin_label(S)}, tensor, mu0 = {MU0}, PowerLaw()",
                "model": tensor_model(S),
                "J": "tensor",
                "spin": S,
            }
        )
    rows.append(
        {
            "name": f"general, S = 1/2, tensor, mu0 = {MU0}, CustomTexture(eps**2)",
            "model": tensor_model(0.5, CustomTexture(eps2, None, name="eps2")),
            "J": "tensor",
            "texture": "custom eps**2",
        }
    )
    rows.append(
        {
            "name": f"general, S = 1/2, tensor, mu0 = {MU0}, CustomTexture(a tanh(eps/w)^2)",
            "model": tensor_model(0.5, CustomTexture(tanh2, {"a": 1.0, "w": 0.5}, name="tanh2")),
            "J": "tensor",
            "texture": "custom tanh2",
        }
    )
    return rows


def inputs(n: int, n_j: int, seed: int = 11):
    """Direct batch (first N_SUB^2 points: the sub-grid of the factorized inputs) and
    factorized inputs. J as (n, 3, 3) tensors; the diagonal form takes their diagonals."""
    rng = np.random.default_rng(seed)
    Jg = rng.uniform(-0.5, 0.5, (n_j, 3, 3))
    Tg = np.exp(rng.uniform(np.log(0.01), np.log(0.3), N_PAIRS))
    Vg = rng.uniform(-2.0, 2.0, N_PAIRS)
    k = N_SUB
    sub = (np.repeat(Jg[:k], k, axis=0), np.tile(Tg[:k], k), np.tile(Vg[:k], k))
    Jr = rng.uniform(-0.5, 0.5, (n, 3, 3))
    Tr = np.exp(rng.uniform(np.log(0.01), np.log(0.3), n))
    Vr = rng.uniform(-2.0, 2.0, n)
    direct = tuple(np.concatenate([s, r])[:n] for s, r in zip(sub, (Jr, Tr, Vr), strict=True))
    return direct, (Jg, Tg, Vg)


def diag(J: np.ndarray) -> np.ndarray:
    return np.diagonal(J, axis1=-2, axis2=-1).copy()


def direct_fn(model):
    """(J, T, V[, model]) -> conductance; the model is an argument, as the API passes it (its
    leaves, mu0 and the texture's parameters, are traced, not constants of the program)."""
    if model is None:
        return lambda J, T, V: observables.points(J, T, V, CFG).conductance
    return lambda J, T, V, m: family.points(J, T, V, m, CFG).conductance


def grid_fn(model):
    if model is None:
        return lambda J, T, V: observables.grid_arrays(J, T, V, CFG)[1]
    return lambda J, T, V, m: family.grid_arrays(J, T, V, m, CFG)[1]


def model_args(model) -> tuple:
    return () if model is None else (model,)


def nodes_per_pair() -> tuple[int, int]:
    """Nodes per (T, V) pair of the power-law contour and of the real axis (custom textures)."""
    T, V, mu0 = jnp.asarray(0.1), jnp.asarray(0.5), jnp.asarray(MU0)
    contour = family.power_law_path(T, V, mu0, jnp.asarray(2.0), CFG)
    real = family.real_axis_path(T, V, mu0, CFG)
    return tuple(int(sum(p.eps.shape[0] for p in path)) for path in (contour, real))


def rel_errors(g, ref, T=None, V=None) -> dict:
    g, ref = np.asarray(g), np.asarray(ref)
    rel = np.abs(g - ref) / np.maximum(np.abs(ref), 1e-300)
    i = int(np.argmax(rel))
    out = {
        "max_rel": float(rel[i]),
        "max_abs_over_max": float(np.abs(g - ref).max() / np.abs(ref).max()),
        "at": {"index": i, "G": float(ref[i]), "max_abs_G": float(np.abs(ref).max())},
    }
    if T is not None:
        out["at"].update(T=float(T[i]), V=float(V[i]))
    return out


def run_direct(direct_inputs, rounds: int) -> dict:
    Jd, Td, Vd = direct_inputs
    n = Td.shape[0]
    rows, items = [], {}
    for c in cases():
        say(f"direct: compile {c['name']}")
        J = Jd if c["J"] == "tensor" else diag(Jd)
        fn = direct_fn(c["model"])
        compiled, args, compile_s = bench.compiled(fn, J, Td, Vd, *model_args(c["model"]))
        items[c["name"]] = (compiled, args)
        rows.append({**{k: v for k, v in c.items() if k != "model"}, "compile_s": compile_s})
    say(f"direct: {len(items)} variants x {rounds} rounds, n = {n}")
    med, best = rotated_rounds(items, rounds)
    values = {k: np.asarray(c(*a)) for k, (c, a) in items.items()}
    paper_name, general_paper = rows[0]["name"], rows[1]["name"]
    paper_pps = n / med[paper_name]
    for r in rows:
        r["n"] = n
        r["median_s"] = med[r["name"]]
        r["points_per_s"] = n / med[r["name"]]
        r["best_points_per_s"] = n / best[r["name"]]
        r["vs_paper_path"] = r["points_per_s"] / paper_pps
    acc = {
        "general_vs_paper_on_paper_model": rel_errors(
            values[general_paper], values[paper_name], Td, Vd
        ),
        "custom_eps2_vs_powerlaw": rel_errors(values[rows[-2]["name"]], values[rows[2]["name"]]),
    }
    return {"rows": rows, "accuracy": acc, "values": values}


def run_factorized(grid_inputs, n_js: dict, n_small: int, rounds: int, direct: dict) -> dict:
    Jg_all, Tg, Vg = grid_inputs
    items, rows = {}, []
    variants = [("paper path (observables.grid_arrays)", None, None)] + [
        (f"general, S = {spin_label(S)}", tensor_model(S), S) for S in SPINS
    ]
    for name, model, S in variants:
        n_large = n_js[S]
        J = Jg_all if model is not None else diag(Jg_all)
        row = {"name": name, "spin": S, "pairs": N_PAIRS, "n_j": n_large, "n_j_small": n_small}
        for size in (n_small, n_large):
            say(f"factorized: compile {name}, {N_PAIRS} pairs x {size} J")
            fn = grid_fn(model)
            c, args, cs = bench.compiled(fn, J[:size], Tg, Vg, *model_args(model))
            items[(name, size)] = (c, args)
            row[f"compile_s_{size}"] = cs
        rows.append(row)
    say(f"factorized: {len(items)} variants x {rounds} rounds")
    med, _ = rotated_rounds(items, rounds)
    for row in rows:
        name, nl, ns = row["name"], row["n_j"], row["n_j_small"]
        t_l, t_s = med[(name, nl)], med[(name, ns)]
        per_j = (t_l - t_s) / ((nl - ns) * N_PAIRS)  # s per (J, pair) point: the J part
        row.update(
            median_s=t_l,
            points_per_s=N_PAIRS * nl / t_l,
            j_part_points_per_s=1 / per_j if per_j > 0 else float("nan"),
            pair_ms=max(t_s - per_j * ns * N_PAIRS, 0.0) / N_PAIRS * 1e3,
            compile_s=row[f"compile_s_{nl}"],
        )
    # direct vs factorized on the sub-grid, every S (and the paper model through both paths)
    k = N_SUB
    for row, (name, model, S) in zip(rows, variants, strict=True):
        g_fact = np.asarray(items[(name, n_small)][0](*items[(name, n_small)][1]))[:k, :k]
        key = (
            "paper path (observables.points), paper model"
            if model is None
            else f"general, S = {spin_label(S)}, tensor, mu0 = {MU0}, PowerLaw()"
        )
        g_dir = direct["values"][key][: k * k]
        row["direct_vs_factorized"] = rel_errors(g_fact.reshape(-1), g_dir)
    paper = rows[0]
    for row in rows:
        row["vs_paper_path"] = row["points_per_s"] / paper["points_per_s"]
        row["j_part_vs_paper"] = row["j_part_points_per_s"] / paper["j_part_points_per_s"]
    return {"rows": rows}


def run_j_stages(n: int, rounds: int) -> dict:
    """The per-(J, pair) work of the general path by stage, vmapped over n random systems:
    building the Bloch matrix M and drive b from A = J K J^T (einsum with the (3, 3, m, m) map,
    m = d^2 - 1), one LU solve of an m x m system, and the whole per-(J, pair) step of the
    factorized path (family.current_and_slope: current and d/dV, with its solves)."""
    from jaxmi.impurity import bloch_maps

    T, V = jnp.asarray(0.1), jnp.asarray(0.5)
    rng = np.random.default_rng(4)
    out = {}
    for S in SPINS:
        say(f"J part by stage, S = {spin_label(S)}")
        maps = bloch_maps(S)
        m = maps.matrix.shape[-1]
        Jt = rng.uniform(-0.5, 0.5, (n, 3, 3))
        X = rng.normal(size=(4, n, 3, 3)) + 1j * rng.normal(size=(4, n, 3, 3))
        K, D, dK, dD = (x @ np.conj(np.swapaxes(x, -1, -2)) for x in X)  # Hermitian
        M = rng.normal(size=(n, m, m)) + m * np.eye(m)
        b = rng.normal(size=(n, m))

        def build(Jt, K, maps=maps):
            A = Jt @ K @ Jt.T
            Mb = jnp.real(jnp.einsum("il,ilkq->kq", A, maps.matrix))
            return Mb, jnp.real(jnp.einsum("il,ilk->k", A - A.T, maps.drive))

        def step(Jt, K, D, dK, dD, S=S):
            rates, tangents = (K, D), (dK, dD)
            return family.current_and_slope(Jt, rates, tangents, T, V, S, CFG.regularization)

        items = {
            "build M, b": bench.compiled(jax.vmap(build), Jt, K)[:2],
            "one LU solve": bench.compiled(jax.vmap(jnp.linalg.solve), M, b)[:2],
            "whole step": bench.compiled(jax.vmap(step), Jt, K, D, dK, dD)[:2],
        }
        med, _ = rotated_rounds(items, rounds)
        out[spin_label(S)] = {"m": m, **{k: v / n * 1e6 for k, v in med.items()}}
    return out


def run_counts() -> dict:
    """XLA cost analysis: one pair's integrals (+ d/dV), and one (J, pair) solve (+ d/dV)."""
    say("operation counts")
    T, V = jnp.asarray(0.1), jnp.asarray(0.5)

    def paper_pair(t, v):
        return jax.jvp(lambda vv: paper_coefficients(t, vv, config=CFG), (v,), (jnp.ones_like(v),))

    def general_pair(t, v):
        m = tensor_model(0.5)
        return jax.jvp(lambda vv: family.rate_matrices(t, vv, m, CFG), (v,), (jnp.ones_like(v),))

    out = {
        "pair": {
            "paper": bench.cost(paper_pair, T, V),
            "general": bench.cost(general_pair, T, V),
        },
        "solve": {},
    }
    rng = np.random.default_rng(0)
    K = jnp.asarray(rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3)))
    Jt = jnp.asarray(rng.normal(size=(3, 3)))
    for S in SPINS:

        def one(Jt, K, S=S):
            rates, tangents = (K, K), (K, K)
            return family.current_and_slope(Jt, rates, tangents, T, V, S, CFG.regularization)

        n = (int(round(2 * S)) + 1) ** 2 - 1
        out["solve"][spin_label(S)] = {"n": n, **bench.cost(one, Jt, K)}
    return out


def markdown(res: dict) -> str:
    m = res["meta"]
    L = [
        f"Measured {m['time']} on {m['device']}, {m['cpus']} cores "
        f"({m['cpu_model']}); load average {m['load_before']:.2f} before, "
        f"{m['load_after']:.2f} after (the machine was shared; medians of {m['rounds']} "
        f"round-robin rounds after compilation). Code: {m['git']}. Default `Config()`: "
        f"{m['nodes_paper']} nodes per (T, V) pair on the paper path, {m['nodes_general'][0]} on "
        f"the general path's power-law contour, {m['nodes_general'][1]} on its real axis (the "
        "custom textures). T in [0.01, 0.3], |V| <= 2, J entries in [-0.5, 0.5].",
        "",
        "### Direct path (points/s)",
        "",
        "| model | batch | points/s (median) | best round | vs paper path | compile s |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["direct"]["rows"]:
        L.append(
            f"| {r['name']} | {r['n']} | {r['points_per_s']:.3g} | {r['best_points_per_s']:.3g} "
            f"| {r['vs_paper_path']:.3g} | "
            f"{r['compile_s']:.1f} |"
        )
    a = res["direct"]["accuracy"]
    gp, ce = a["general_vs_paper_on_paper_model"], a["custom_eps2_vs_powerlaw"]
    L += [
        "",
        f"Accuracy on the timed points: general path vs paper path on the paper model: max "
        f"relative difference {gp['max_rel']:.1e} (at T = {gp['at']['T']:.3g}, V = "
        f"{gp['at']['V']:.3g}, |G| = {abs(gp['at']['G']):.1e}; max difference / max |G|: "
        f"{gp['max_abs_over_max']:.1e}); CustomTexture(eps**2) vs PowerLaw() (the same "
        f"texture): {ce['max_rel']:.1e} ({ce['max_abs_over_max']:.1e}).",
        "",
        f"### Factorized path ({N_PAIRS} (T, V) pairs x nJ, compute only)",
        "",
        "| model | nJ | points/s | vs paper path | J part alone: points/s (vs paper) | "
        "per (T, V) pair: ms | compile s | direct vs factorized (8 x 8): max rel. |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fr = res["factorized"]["rows"]
    for r in fr:
        name = r["name"] + ("" if r["spin"] is None else f", tensor, mu0 = {MU0}, PowerLaw()")
        dv = r["direct_vs_factorized"]
        L.append(
            f"| {name} | {r['n_j']} | {r['points_per_s']:.3g} | {r['vs_paper_path']:.2g} | "
            f"{r['j_part_points_per_s']:.3g} ({r['j_part_vs_paper']:.2g}) | {r['pair_ms']:.2f} | "
            f"{r['compile_s']:.1f} | {dv['max_rel']:.1e} |"
        )
    c = res["counts"]
    pp, pg = c["pair"]["paper"], c["pair"]["general"]
    L += [
        "",
        f"J part alone: the slope of the time between nJ = {fr[0]['n_j_small']} and the nJ of "
        "the row (the energy integrals drop out); per pair: the intercept.",
    ]
    L += [
        "",
        f"### The per-(J, pair) step by stage (us per (J, pair), vmapped over "
        f"{m['j_stage_batch']})",
        "",
        "| S | d^2 - 1 | build M, b (einsum) | one LU solve | whole step (current + d/dV) |",
        "|---|---|---|---|---|",
    ]
    for S, r in res["j_stages_us"].items():
        L.append(
            f"| {S} | {r['m']} | {r['build M, b']:.3f} | {r['one LU solve']:.3f} | "
            f"{r['whole step']:.3f} |"
        )
    L += [
        "",
        "### Operation counts (XLA cost analysis)",
        "",
        "| program | FLOPs | transcendental calls | bytes (XLA:CPU) |",
        "|---|---|---|---|",
        f"| one (T, V) pair's integrals + d/dV, paper path ({m['nodes_paper']} nodes) | "
        f"{pp['flops']:.3g} | {pp['transcendentals']:.0f} | {pp['bytes']:.3g} |",
        f"| one (T, V) pair's rate matrices + d/dV, general path ({m['nodes_general'][0]} nodes) | "
        f"{pg['flops']:.3g} | {pg['transcendentals']:.0f} | {pg['bytes']:.3g} |",
    ]
    for S, r in c["solve"].items():
        L.append(
            f"| one (J, pair) step + d/dV, general path, S = {S} (d^2 - 1 = {r['n']}) | "
            f"{r['flops']:.3g} | {r['transcendentals']:.0f} | {r['bytes']:.3g} |"
        )
    L += [
        "",
        "XLA's counts leave out the LAPACK calls (getrf, trsm) of the LU solves, which are "
        "custom calls on the CPU: the per-step FLOPs are those of the rest (the 3x3 products "
        "and the einsums with the (3, 3, m, m) map).",
    ]
    return "\n".join(L)


def git_state() -> str:
    import subprocess

    def git(*a):
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "jaxmi")
    return git("rev-parse", "--short", "HEAD") + (
        " + uncommitted changes in jaxmi/" if dirty else ""
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes (about 1.5 min)")
    p.add_argument("--no-docs", action="store_true", help="JSON only, do not touch docs/")
    p.add_argument("--rounds", type=int, default=9, help="timed rounds (default 9)")
    args = p.parse_args()
    if args.quick:
        n, n_js, n_small = 256, {None: 2048, 0.5: 512, 1.0: 256, 1.5: 128, 2.0: 128}, 16
    else:
        n, n_js, n_small = 2048, {None: 16384, 0.5: 4096, 1.0: 2048, 1.5: 1024, 2.0: 1024}, 16
    from jaxmi.validate import describe_device

    meta = {
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "device": describe_device(),
        "jax": jax.__version__,
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "quick": args.quick,
        "rounds": args.rounds,
        "git": git_state(),
        "config": repr(CFG),
        "nodes_paper": CFG.nodes,
        "nodes_general": nodes_per_pair(),
        "load_before": load(),
    }
    t0 = time.perf_counter()
    direct_inputs, grid_inputs = inputs(n, max(n_js.values()))
    direct = run_direct(direct_inputs, args.rounds)
    fact = run_factorized(grid_inputs, n_js, n_small, args.rounds, direct)
    meta["j_stage_batch"] = 1024 if args.quick else 4096
    j_stages = run_j_stages(meta["j_stage_batch"], args.rounds)
    counts = run_counts()
    faulthandler.cancel_dump_traceback_later()
    meta["load_after"] = load()
    meta["wall_s"] = time.perf_counter() - t0
    direct.pop("values")
    res = {
        "meta": meta,
        "direct": direct,
        "factorized": fact,
        "j_stages_us": j_stages,
        "counts": counts,
    }
    save("family", res, markdown(res), quick=args.quick, docs=not args.no_docs)


if __name__ == "__main__":
    main()
