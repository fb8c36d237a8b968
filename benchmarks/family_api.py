"""The model family's throughput targets as a user meets them: ``jaxmi.conductance`` (issue 15).

One run, one process: the same 8192 points (T log-uniform in [0.01, 0.3], |V| <= 2, J entries
uniform in [-0.5, 0.5], numpy inputs, seed 0) through the public API for

* ``Model()``, the paper's model (its own path: the reference line),
* ``Model(mu0=0.4)``, the gated paper texture (the "even-contour" strategy, jaxmi/strategy.py),
* ``Model(spin=1)`` (mu0 = 0, the paper's texture: the paper's contour, the spin-S solve),

each compiled first, then timed in ``--rounds`` round-robin rounds whose order rotates (so that a
drifting load biases none); the best round of each is reported, with the ratio to the paper's
model (the targets: >= 0.5x gated, >= 0.3x spin 1). Wall-clock times: run it on a quiet machine,
or compare the ratios only.

Usage: python benchmarks/family_api.py [--points 8192] [--rounds 5] [--no-docs]
Writes benchmarks/results/family_api-<time>.json (git-ignored) and the generated block
"benchmarks/family_api.py" of docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np
from docblock import cpu_model, save

import jaxmi
from jaxmi.model import Model
from jaxmi.strategy import choose

MODELS = {"Model()": Model(), "Model(mu0=0.4)": Model(mu0=0.4), "Model(spin=1)": Model(spin=1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=8192)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.points
    T = np.exp(rng.uniform(np.log(0.01), np.log(0.3), n))
    V = rng.uniform(-2.0, 2.0, n)
    J = rng.uniform(-0.5, 0.5, (n, 3))
    load_before = os.getloadavg()[0]
    for m in MODELS.values():
        jax.block_until_ready(jaxmi.conductance(J, T, V, model=m))
    names = list(MODELS)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(args.rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            jax.block_until_ready(jaxmi.conductance(J, T, V, model=MODELS[k]))
            times[k].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}
    load_after = os.getloadavg()[0]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {cpu_model()}, jax {jax.__version__}; "
        f"load average {load_before:.2f} before, {load_after:.2f} after. "
        f"`jaxmi.conductance` on {n} points, best of {args.rounds} rotating rounds after "
        "compilation.",
        "",
        "| model | strategy | points/s | x paper |",
        "|---|---|---|---|",
    ]
    for k in names:
        lines.append(
            f"| `{k}` | {choose(MODELS[k]).describe()} | {n / best[k]:.3g} | "
            f"{best['Model()'] / best[k]:.2f} |"
        )
    res = {"points": n, "rounds": args.rounds, "best_s": best, "load": [load_before, load_after]}
    save("family_api", res, "\n".join(lines), quick=False, docs=not args.no_docs)


if __name__ == "__main__":
    main()
