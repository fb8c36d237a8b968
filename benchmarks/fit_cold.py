"""A first fit from a cold start against a first conductance call from a cold start (issue 17).

What a new user waits for: each measurement is a fresh ``python`` process with a fresh, empty
JAX compilation cache ($XDG_CACHE_HOME in a new temporary folder), timed from the start of the
process to its end (import, CSV reading, compilation, the solve, the JSON written):

* ``conductance``: ``jaxmi.conductance`` of the model on the data's 30 (T, V) points, the
  reference line;
* ``fit``: ``jaxmi fit data.csv --free ... -o out.json`` (the CLI, ``python -m jaxmi``);
* ``repeat``: the same fit again in a new process with the cache the cold fit left.

for the paper's model (J, E0_meV free, 30 points of G(T)) and a gated one (J, E0_meV and
mu0_meV free, 30 points of G(T) at three biases). Cases rotate across ``--rounds`` rounds so that
a drifting load biases none; the medians are reported with the ratio fit / conductance (the
target: <= 2x) and the repeat's time (target: < 2 s). With ``--base REV`` the fits of that git
revision (a worktree under /tmp, removed at the end) run in the same rounds, for the ratio
before/after on the same machine state.

Usage: python benchmarks/fit_cold.py [--rounds 3] [--base REV] [--no-docs]
Writes benchmarks/results/fit_cold-<time>.json (git-ignored) and the generated block
"benchmarks/fit_cold.py" of docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
from docblock import REPO, cpu_model, save

import jaxmi.fitting as F

#: name -> (truth, free, start, the model's Model() for the conductance line, T_K, V_mV)
_T = np.linspace(2.0, 40.0, 30)
CASES = {
    "paper": (
        {"J": 0.3, "E0_meV": 10.0},
        "J,E0_meV",
        "J=0.2,E0_meV=8",
        "Model()",
        _T,
        np.zeros(30),
    ),
    "gated": (
        {"J": 0.3, "E0_meV": 10.0, "mu0_meV": 4.0},
        "J,E0_meV,mu0_meV",
        "J=0.2,E0_meV=8,mu0_meV=3",
        "Model(mu0=0.4)",
        np.repeat([4.0, 12.0, 30.0], 10),
        np.tile(np.linspace(0.0, 12.0, 10), 3),
    ),
}

_CONDUCTANCE = """
import numpy as np, jaxmi, jaxmi.units
from jaxmi.model import Model
d = np.loadtxt({csv!r}, delimiter=",", skiprows=1)
T, V = jaxmi.units.temperature(d[:, 0], 10.0), jaxmi.units.bias(d[:, 1], 10.0)
jaxmi.conductance([0.3, 0.3, 0.3], T, V, model={model}).block_until_ready()
"""


def _write_data(folder: Path) -> dict[str, Path]:
    paths = {}
    rng = np.random.default_rng(0)
    for name, (truth, _, _, _, T, V) in CASES.items():
        G = np.asarray(F.model(truth, T, V)) + 1e-4 * rng.normal(size=T.shape)
        path = folder / f"{name}.csv"
        rows = "".join(
            f"{float(t)!r},{float(v)!r},{float(g)!r},1e-4\n"
            for t, v, g in zip(T, V, G, strict=True)
        )
        path.write_text("T,V,G,G_err\n" + rows)
        paths[name] = path
    return paths


def _timed(cmd: list[str], cwd: Path, cache: str, pythonpath: str | None) -> float:
    env = {**os.environ, "XDG_CACHE_HOME": cache}
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--base", help="a git revision whose fits run beside HEAD's")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jaxmi-fit-cold-"))
    trees = {"HEAD": None}
    if args.base:
        base = work / "base"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(base), args.base],
            check=True,
            capture_output=True,
        )
        trees[args.base] = str(base)
    load_before = os.getloadavg()[0]
    try:
        data = _write_data(work)
        jobs = []
        for name, (_, free, start, model, _, _) in CASES.items():
            code = _CONDUCTANCE.format(csv=str(data[name]), model=model)
            jobs.append((name, "conductance", None, [sys.executable, "-c", code]))
            for tree, path in trees.items():
                cmd = [sys.executable, "-m", "jaxmi", "fit", str(data[name]), "--free", free]
                cmd += ["--start", start, "-o", str(work / f"{name}.json"), "--overwrite"]
                jobs.append((name, f"fit {tree}", path, cmd))
        times: dict[tuple[str, str], list[float]] = {}
        for r in range(args.rounds):
            for name, what, tree, cmd in jobs[r % len(jobs) :] + jobs[: r % len(jobs)]:
                cache = tempfile.mkdtemp(dir=work)
                times.setdefault((name, what), []).append(_timed(cmd, work, cache, tree))
                if what.startswith("fit"):
                    again = _timed(cmd, work, cache, tree)
                    times.setdefault((name, what.replace("fit", "repeat", 1)), []).append(again)
                shutil.rmtree(cache)
    finally:
        if args.base:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(work / "base")],
                capture_output=True,
            )
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()[0]
    med = {f"{k[0]} {k[1]}": statistics.median(v) for k, v in times.items()}
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {cpu_model()}, jax {jax.__version__}; "
        f"load average {load_before:.2f} before, {load_after:.2f} after. Each time a fresh "
        f"process with an empty compilation cache (repeat: the cache the cold fit left), "
        f"median of {args.rounds} rotating rounds.",
        "",
        "| model | cold conductance [s] | "
        + " | ".join(f"cold fit {t} [s] | x conductance | repeat {t} [s]" for t in trees)
        + " |",
        "|---|---|" + "---|---|---|" * len(trees),
    ]
    for name in CASES:
        g = med[f"{name} conductance"]
        row = f"| {name} ({CASES[name][1]} free) | {g:.2f} |"
        for t in trees:
            row += f" {med[f'{name} fit {t}']:.2f} | {med[f'{name} fit {t}'] / g:.2f} |"
            row += f" {med[f'{name} repeat {t}']:.2f} |"
        lines.append(row)
    res = {"rounds": args.rounds, "median_s": med, "load": [load_before, load_after]}
    res["all_s"] = {f"{k[0]} {k[1]}": v for k, v in times.items()}
    save("fit_cold", res, "\n".join(lines), quick=False, docs=not args.no_docs)


if __name__ == "__main__":
    main()
