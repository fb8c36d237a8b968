"""End-to-end sweep benchmark (not a test): points/s with the HDF5 write included, and peak RSS.

Runs, each in a fresh child process (so that peak RSS is the sweep's own):

* ``large``: the shipped spec ``large`` (jaxmi/sweeps/large.toml: 10^6 couplings x 10
  temperatures = 10^7 points, J-heavy);
* ``cli-cold``, ``cli-warm``: ``jaxmi run large`` as a whole process (start-up, compilation,
  run, write), first with an empty JAX compilation cache, then with it filled;
* ``1e8``: a 10^8-point variant of it (10^7 couplings x 10 temperatures; conductance only, to
  keep the file at 0.8 GB), for the peak-RSS target (< 2 GiB: memory is bounded by the chunk).

Each child compiles the chunk program first on dummy inputs (timed separately as compile_s),
then times ``run_sweep`` from opening the file to closing it (run_s): points/s = points / run_s.
Output files go to a temporary directory (default under /tmp) and are deleted. Prints a table
and writes JSON to benchmarks/results/ (git-ignored).

Usage:  python benchmarks/sweep_e2e.py [--only large|cli|1e8] [--tmp DIR] [--chunk N]
Targets (issue 3): >= 5e6 points/s for the J-heavy grid on a 2-core CPU; peak RSS < 2 GiB at 1e8.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The shipped spec, by name as users give it (jaxmi.sweep.spec.resolve finds it in the package).
LARGE = "large"

LARGE_1E8 = """
description = "benchmark: 10^7 couplings x 10 temperatures at V = 0 (10^8 points)"
quantities = ["conductance"]
[J.product]
Jx = {{ start = 0.01, stop = 0.5, num = 1000 }}
Jy = {{ start = 0.0, stop = 0.5, num = 100 }}
Jz = {{ start = -0.5, stop = 0.5, num = 100 }}
[T]
start = 0.01
stop = 0.3
num = 10
spacing = "log"
[V]
values = [0.0]
[numerics]
chunk = {chunk}
"""

CHILD = r"""
import json, resource, sys, time
t_start = time.perf_counter()
import jax, numpy as np
from jaxmi.config import Config
from jaxmi.sweep import chunks, grid, load
from jaxmi.sweep.run import run_sweep

spec_path, out, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
spec = load(spec_path)
chunk = chunk or spec.chunk
g = grid.build(spec)
layout = chunks.plan(g.shape, chunk)
t0 = time.perf_counter()
J, T, V = jax.device_put(chunks.inputs(g, layout, 0), jax.local_devices()[0])  # as run_sweep
jax.block_until_ready(chunks._chunk(J, T, V, config=Config(order=spec.order), block=layout.block))
compile_s = time.perf_counter() - t0
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = run_sweep(spec, output=out, chunk=chunk)
print(json.dumps({
    "points": r.points, "shape": r.shape, "block": layout.block, "chunks": layout.n_chunks,
    "quantities": spec.quantities, "compile_s": compile_s, "run_s": r.wall_time,
    "points_per_s": r.points / r.wall_time, "complete": r.complete,
    "peak_rss_before_run_mib": rss_before / 1024,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "device": chunks.describe_devices(), "startup_s": t0 - t_start,
}))
"""


def run_case(name: str, spec_path: str | Path, tmp: Path, chunk: int) -> dict:
    out = tmp / f"{name}.h5"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(spec_path), str(out), str(chunk)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{proc.stderr}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["file_mib"] = out.stat().st_size / 2**20
    finally:
        if out.exists():
            out.unlink()
    result["name"] = name
    return result


def run_cli_case(name: str, spec_path: str | Path, tmp: Path, cache: Path) -> dict:
    """The command as users run it (`jaxmi run SPEC -o OUT -q`), wall time of the whole process
    (start-up, compilation or compilation-cache load, run, write), peak RSS of the child."""
    import resource

    out = tmp / f"{name}.h5"
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "jaxmi", "run", str(spec_path), "-o", str(out), "-q"],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{proc.stderr}")
        file_mib = out.stat().st_size / 2**20
    finally:
        if out.exists():
            out.unlink()
    from jaxmi.sweep import load

    points = load(spec_path).n_points
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "name": name,
        "points": points,
        "block": ["whole command"],
        "compile_s": float("nan"),
        "run_s": wall,
        "points_per_s": points / wall,
        # RUSAGE_CHILDREN is a maximum over all children so far: only meaningful if it grew
        "peak_rss_mib": (rss if rss > before else float("nan")) / 1024,
        "file_mib": file_mib,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=["large", "cli", "1e8"], help="run one case only")
    p.add_argument("--tmp", default=None, help="directory for the output files (deleted)")
    p.add_argument("--chunk", type=int, default=0, help="points per chunk (default: spec's)")
    args = p.parse_args()

    results = []
    load0 = os.getloadavg()  # the machine may be shared: timings scale with its load
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="jaxmi-bench-") as d:
        tmp = Path(d)
        cases = []
        if args.only in (None, "large"):
            cases.append(("large", LARGE))
        if args.only in (None, "1e8"):
            spec = tmp / "large_1e8.toml"
            spec.write_text(LARGE_1E8.format(chunk=args.chunk or 262144))
            cases.append(("1e8", spec))
        for name, spec in cases:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            results.append(run_case(name, spec, tmp, args.chunk))
        if args.only in (None, "cli"):
            cache = tmp / "xdg-cache"  # a fresh compilation cache: cold, then warm
            for name in ("cli-cold", "cli-warm"):
                print(f"running {name} ...", file=sys.stderr, flush=True)
                results.append(run_cli_case(name, LARGE, tmp, cache))

    header = f"{'case':8} {'points':>10} {'block':>18} {'compile s':>9} {'run s':>8} "
    header += f"{'points/s':>10} {'peak RSS MiB':>12} {'file MiB':>9}"
    print(header)

    def num(x, fmt):
        return "-" if x != x else format(x, fmt)  # NaN: not measured

    for r in results:
        print(
            f"{r['name']:8} {r['points']:>10.3g} {str(tuple(r['block'])):>18} "
            f"{num(r['compile_s'], '>9.1f'):>9} {r['run_s']:>8.1f} {r['points_per_s']:>10.3g} "
            f"{num(r['peak_rss_mib'], '>12.0f'):>12} {r['file_mib']:>9.0f}"
        )
    print(f"load average before/after: {load0} / {os.getloadavg()}")
    meta = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_before": load0,
        "load_average_after": os.getloadavg(),
        "results": results,
    }
    out_dir = REPO / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"sweep_e2e-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(meta, indent=2))
    print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
