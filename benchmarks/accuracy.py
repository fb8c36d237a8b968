"""Quadrature convergence study: relative error of the conductance against quadrature order.

Run: python benchmarks/accuracy.py  (about a minute on 2 cores). Prints the markdown table that
docs/accuracy.md quotes. The reference is the engine at 48 nodes x (16 + 12) panels; the
independent check against adaptive scipy quadrature is tests/test_reference.py.
"""

from __future__ import annotations

import numpy as np

from jaxmi import Config
from jaxmi.observables import grid

HIGH = Config(order=48, window_panels=16, tail_panels=12)
COUPLINGS = {
    "generic (0.3,-0.5,0.7)": [0.3, -0.5, 0.7],
    "Fig.2 blue (0.25,0,0.35)": [0.25, 0.0, 0.35],
    "isotropic 0.25": [0.25, 0.25, 0.25],
}
T_VALUES = [0.0, 1e-3, 1e-2, 0.1, 0.3, 1.0]
V_VALUES = [0.0, 0.01, 0.1, 0.5, 1.0, 2.0]
ORDERS = [4, 6, 8, 10, 12, 16, 24]


def main() -> None:
    pairs = [(t, v) for t in T_VALUES for v in V_VALUES if t == 0 or v / (2 * t) <= 2000]
    t, v = (np.array(x) for x in zip(*pairs, strict=True))
    j = np.array(list(COUPLINGS.values()))
    ref = np.asarray(grid(j, t, v, HIGH).conductance)
    denom = np.where(ref == 0, 1.0, np.abs(ref))
    print("| order (nodes/panel) | nodes | " + " | ".join(COUPLINGS) + " |")
    print("|---|---|" + "---|" * len(COUPLINGS))
    for n in ORDERS:
        cfg = Config(order=n)
        err = np.abs(np.asarray(grid(j, t, v, cfg).conductance) - ref) / denom
        cells = [f"{e:.1e}" for e in err.max(axis=1)]
        print(f"| {n} | {cfg.nodes} | " + " | ".join(cells) + " |")
    print()
    print("Worst case per T at the default order (all V, all couplings above):")
    err = np.abs(np.asarray(grid(j, t, v, Config()).conductance) - ref) / denom
    for tt in T_VALUES:
        sel = t == tt
        print(
            f"- T = {tt:g}: "
            + ", ".join(f"{k.split()[0]} {err[i, sel].max():.1e}" for i, k in enumerate(COUPLINGS))
        )


if __name__ == "__main__":
    main()
