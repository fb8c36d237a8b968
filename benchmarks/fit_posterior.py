"""Coverage of the fit's posterior intervals (jaxmi.fit(..., posterior=True)) over noise seeds.

Data: the paper's closed form for an isotropic impurity in linear response, Eq. 16 (dG = -J^2
(1 - Ic^2 - Is^2), jaxmi.analytic: the Ic, Is integrals, not the master equation that the fit
evaluates), J = 0.3, E0 = 10 meV, 30 temperatures 2-60 K (kB T / E0 0.017-0.52), Gaussian noise
1e-3 e^2/h, one noise draw per seed. Two cases: weighted (G_err given) and unweighted (the noise
scale sigma_G sampled too). For each seed: a least-squares fit and NUTS; counted: whether the
68% (q16-q84) and 95% (q2.5-q97.5) intervals hold the truth, whether the least-squares
+-1 stderr interval does, the ratio of the posterior's 68% half-width to the stderr, and the
diagnostics (R-hat, bulk ESS, divergences).

A correct posterior holds the truth in 68% (95%) of the seeds, within the binomial spread
sqrt(p (1 - p) / N) (5.2% (2.4%) for N = 80).

    python benchmarks/fit_posterior.py              # 80 + 40 seeds, ~25 min on 2 cores
    python benchmarks/fit_posterior.py --seeds 10 --no-docs   # a look, ~3 min

Writes benchmarks/results/fit_posterior-*.json and the block in docs/fitting.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from docblock import REPO, cpu_model, write_block  # noqa: E402

TRUTH = {"J": 0.3, "E0_meV": 10.0}
T = np.linspace(2.0, 60.0, 30)
SIGMA = 1e-3


def closed_form(T_K):
    import jax.numpy as jnp

    from jaxmi import analytic, units

    t = jnp.asarray(units.temperature(T_K, TRUTH["E0_meV"]))
    return 1.0 + np.asarray(analytic.eq16_isotropic_exact(TRUTH["J"], t))


def run_case(
    weighted: bool, seeds: int, chains: int, warmup: int, draws: int, seed0: int = 0
) -> dict:
    import jaxmi
    from jaxmi.errors import FitWarning

    clean = closed_form(T)
    truth = dict(TRUTH)
    if not weighted:
        truth["sigma_G"] = SIGMA
    rows = []
    t0 = time.perf_counter()
    for seed in range(seed0, seed0 + seeds):
        G = clean + SIGMA * np.random.default_rng(1000 + seed).normal(size=T.shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            r = jaxmi.fit(
                T,
                None,
                G,
                SIGMA if weighted else None,
                free="J,E0_meV",
                start={"J": 0.2, "E0_meV": 8.0},
                posterior=True,
                chains=chains,
                warmup=warmup,
                draws=draws,
                seed=seed,
            )
        p = r.posterior
        row = {"seed": seed, "divergences": p.divergences}
        for name, value in truth.items():
            q = p.quantiles[name]
            row[name] = {
                "in68": q["q16"] <= value <= q["q84"],
                "in95": q["q2.5"] <= value <= q["q97.5"],
                "rhat": p.rhat[name],
                "ess": p.ess[name],
            }
            if name in r.stderr:
                err = r.stderr[name]
                row[name]["ls_in68"] = abs(r.params[name] - value) <= err
                row[name]["width_ratio"] = 0.5 * (q["q84"] - q["q16"]) / err
        rows.append(row)
        done = seed - seed0 + 1
        print(
            f"  {'weighted' if weighted else 'unweighted'} seed {seed}: "
            + ", ".join(
                f"{n} 68% {sum(x[n]['in68'] for x in rows) / done:.2f} "
                f"95% {sum(x[n]['in95'] for x in rows) / done:.2f}"
                for n in truth
            )
            + f" ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return {"weighted": weighted, "seeds": seeds, "rows": rows, "seconds": time.perf_counter() - t0}


def summarise(case: dict) -> list[str]:
    rows, n = case["rows"], case["seeds"]
    out = []
    for name in rows[0]:
        if name in ("seed", "divergences"):
            continue
        x = [r[name] for r in rows]
        c68 = sum(v["in68"] for v in x) / n
        c95 = sum(v["in95"] for v in x) / n
        ls = [v["ls_in68"] for v in x if "ls_in68" in v]
        wr = np.array([v["width_ratio"] for v in x if "width_ratio" in v])
        width = f"{np.median(wr):.3f} [{wr.min():.3f}, {wr.max():.3f}]" if len(wr) else "-"
        ls_text = f"{100 * sum(ls) / len(ls):.0f}%" if ls else "-"
        out.append(
            f"| {'G_err given' if case['weighted'] else 'no G_err'} | {name} | {n} | "
            f"{100 * c68:.0f}% (+-{100 * math.sqrt(0.68 * 0.32 / n):.1f}) | "
            f"{100 * c95:.0f}% (+-{100 * math.sqrt(0.95 * 0.05 / n):.1f}) | {ls_text} | "
            f"{width} | {max(v['rhat'] for v in x):.4f} | {min(v['ess'] for v in x):.0f} | "
            f"{sum(r['divergences'] for r in rows)} |"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=80)
    ap.add_argument("--unweighted-seeds", type=int, default=40)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--seed0", type=int, default=0, help="first noise seed (1000 + seed)")
    ap.add_argument("--no-docs", action="store_true")
    a = ap.parse_args()
    cases = [run_case(True, a.seeds, a.chains, a.warmup, a.draws, a.seed0)] if a.seeds else []
    if a.unweighted_seeds:
        cases.append(run_case(False, a.unweighted_seeds, a.chains, a.warmup, a.draws, a.seed0))
    lines = [
        f"Posterior coverage, {time.strftime('%Y-%m-%d')}, {cpu_model()}: Eq. 16 closed-form "
        f"data (J = 0.3, E0 = 10 meV, 30 temperatures 2-60 K, noise {SIGMA:g} e^2/h), J and "
        f"E0_meV free; NUTS {a.chains} chains x {a.draws} draws ({a.warmup} warmup) per seed, "
        f"noise seeds {a.seed0}.. . "
        "Coverage: the fraction of seeds whose interval holds the truth (+- its binomial "
        "spread for a correct interval); width: the posterior's 68% half-width over the "
        "least-squares stderr (median [min, max] over seeds).",
        "",
        "| errors | parameter | seeds | 68% interval | 95% interval | LS +-1 stderr | width / "
        "stderr | max R-hat | min ESS | divergent |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        lines += summarise(case)
    lines.append("")
    lines.append(
        "Time per seed (fit + posterior, compiled once per case): "
        + ", ".join(
            f"{'weighted' if c['weighted'] else 'unweighted'} {c['seconds'] / c['seeds']:.1f} s"
            for c in cases
        )
        + "."
    )
    text = "\n".join(lines)
    import json

    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"fit_posterior-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"args": vars(a), "cases": cases}, indent=2, default=float))
    print(text)
    print(f"wrote {path.relative_to(REPO)}")
    if not a.no_docs:
        write_block(REPO / "docs" / "fitting.md", "benchmarks/fit_posterior.py", text)
        print("wrote docs/fitting.md (generated block benchmarks/fit_posterior.py)")


if __name__ == "__main__":
    main()
