"""Cost of the per-point error estimate on the paper path's direct evaluation (docs/accuracy.md).

Two programs over the same random points (J in [-1, 1]^3, T log-uniform in [0.01, 1], |V| <= 2),
both ahead-of-time compiled in this one process: all observables without ``error``, and with it
(XLA drops the estimate from the first). Timed in alternating rounds; the best round of each is
reported (CPU time of the process: on a shared machine others' load then biases neither).

Usage: python benchmarks/estimate_cost.py [--points 8192] [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("JAX_ENABLE_X64", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxmi import observables  # noqa: E402
from jaxmi.config import Config  # noqa: E402

FIELDS = ("current", "conductance", "spin", "density_matrix")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=8192)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(9)
    n = args.points
    J = jnp.asarray(rng.uniform(-1.0, 1.0, (n, 3)))
    T = jnp.asarray(np.exp(rng.uniform(np.log(0.01), 0.0, n)))
    V = jnp.asarray(rng.uniform(-2.0, 2.0, n))
    cfg = Config()

    def make(fields):
        def fn(j, t, v):
            out = observables.points(j, t, v, cfg)
            return tuple(getattr(out, f) for f in fields)

        return jax.jit(fn).lower(J, T, V).compile()

    fns = {"without": make(FIELDS), "with": make((*FIELDS, "error"))}
    best = {k: float("inf") for k in fns}
    for f in fns.values():
        jax.block_until_ready(f(J, T, V))
    for _ in range(args.rounds):
        for k, f in fns.items():
            t0 = time.process_time()
            jax.block_until_ready(f(J, T, V))
            best[k] = min(best[k], time.process_time() - t0)
    a, b = n / best["without"], n / best["with"]
    print(f"without the estimate {a:,.0f} points/s, with it {b:,.0f} points/s")
    print(f"cost of the estimate: {a / b - 1:+.0%}")


if __name__ == "__main__":
    main()
