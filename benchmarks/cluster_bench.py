"""Cluster benchmark (not a test): sweeps on dask.distributed against the local engine.

Measures, on this machine, with LocalClusters of 1 and 2 worker processes (1 thread each) on
127.0.0.1 (docs/cluster.md quotes the figures):

* ``rates``: points/s of ``run_sweep`` (HDF5 write included, compilation excluded: each
  configuration runs the sweep once to warm up, then times two more runs, best kept) for the
  local engine and for 1 and 2 workers, on a J-heavy grid (5.1e5 J x 5 T in 10 chunks of 2.5e5
  points: the cheap per-J combination dominates) and a (T, V)-heavy grid (4 J x 200 T x 50 V in
  10 chunks of 4000 points: the energy integrals dominate);
* ``overhead``: per-task overhead against chunk compute time on 1 worker, for a range of chunk
  sizes of both grids (chunks are computed through :class:`jaxmi.sweep.cluster.DaskBackend`
  without writing; the worker times each chunk itself), and the smallest chunk that keeps the
  overhead under 5%;
* ``store``: what the client's single writer costs per chunk (``Writer.write_chunk``: write,
  flush, mark, flush) and what fetching a chunk's result costs (a task that returns a ready-made
  result), against compute, and the alternative (each worker writes its own shard file; the
  client joins them with an HDF5 virtual dataset) measured end to end on 2 workers.

The machine may have few cores (workers share them with the client, and here with other work):
the 2-worker figures then show contention, not scaling. Prints tables and writes JSON to
benchmarks/results/ (git-ignored).

Usage:  python benchmarks/cluster_bench.py [--only rates|overhead|store] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

J_HEAVY = """
description = "cluster benchmark: J-heavy"
quantities = {quantities}
[J.product]
Jx = {{ start = 0.01, stop = 0.5, num = 64 }}
Jy = {{ start = 0.0, stop = 0.5, num = 64 }}
Jz = {{ start = -0.5, stop = 0.5, num = {nz} }}
[T]
start = 0.02
stop = 0.3
num = 5
spacing = "log"
[V]
values = [0.0]
[numerics]
chunk = {chunk}
"""

TV_HEAVY = """
description = "cluster benchmark: (T, V)-heavy"
quantities = {quantities}
[J]
isotropic = {{ start = 0.1, stop = 0.4, num = 4 }}
[T]
start = 0.01
stop = 0.3
num = {nt}
spacing = "log"
[V]
start = -0.5
stop = 0.5
num = 50
[numerics]
chunk = {chunk}
"""


ALL = '["conductance", "current", "spin"]'


def spec_file(tmp: Path, name: str, template: str, **kw) -> str:
    kw.setdefault("quantities", ALL)
    kw.setdefault("nt", 40)
    path = tmp / f"{name}.toml"
    path.write_text(textwrap.dedent(template.format(**kw)).lstrip())
    return str(path)


def local_cluster(n: int):
    """n worker processes on loopback, as `jaxmi run --cluster local:n` starts them."""
    from jaxmi.sweep import cluster

    return cluster.local_client(n)


def timed_sweep(spec_path: str, tmp: Path, backend=None, repeats: int = 2, warmup=True) -> dict:
    """A warm-up run (compiles), then ``repeats`` timed runs of run_sweep; best wall time."""
    from jaxmi.sweep import load
    from jaxmi.sweep.run import run_sweep

    spec = load(spec_path)
    walls = []
    for k in range(repeats + int(warmup)):
        out = tmp / f"out-{os.getpid()}-{k}.h5"
        t0 = time.perf_counter()
        result = run_sweep(spec, output=str(out), backend=backend)
        wall = time.perf_counter() - t0
        assert result.complete
        out.unlink()
        if k > 0 or not warmup:
            walls.append(wall)
    best = min(walls) if walls else float("nan")
    return {"points": spec.n_points, "wall_s": best, "points_per_s": spec.n_points / best}


# --- per-task overhead ---------------------------------------------------------------------------


def timed_task(spec_text, spec_path, block, i, cache=False):
    """compute_chunk, timed on the worker (pickled by value: this is __main__)."""
    from jaxmi.sweep import cluster

    t0 = time.perf_counter()
    values = cluster.compute_chunk(spec_text, spec_path, block, i, cache)
    return {"values": values, "seconds": time.perf_counter() - t0}


def echo_task(spec_text, spec_path, block, i, cache=False):
    """A chunk-sized result without compute: what fetching a result costs."""
    from jaxmi.sweep.spec import parse

    per_point = sum(3 if q == "spin" else 1 for q in parse(spec_text).quantities)
    return {"values": np.ones(per_point * int(np.prod(block))), "seconds": 0.0}


def drive(client, spec_path: str, task, in_flight: int = 2, limit: int = 40) -> dict:
    """All chunks through DaskBackend, no store: wall, per-chunk worker seconds."""
    from jaxmi.config import Config
    from jaxmi.sweep import chunks, cluster, grid, load

    spec = load(spec_path)
    g = grid.build(spec)
    layout = chunks.plan(g.shape, spec.chunk)
    backend = cluster.DaskBackend(client, in_flight=in_flight, task=task)
    todo = list(range(min(layout.n_chunks, limit)))
    seconds = []
    t0 = time.perf_counter()
    for _, res in backend.results(spec, g, layout, Config(order=spec.order), todo):
        seconds.append(res["seconds"])
    wall = time.perf_counter() - t0
    return {
        "chunks": len(todo),
        "block": layout.block,
        "points": sum(layout.points(i) for i in todo),
        "wall": wall,
        "seconds": seconds,
    }


def overhead_scan(tmp: Path) -> list[dict]:
    """Per chunk size: worker compute time, wall time per task (1 worker, 2 in flight), and the
    same for a task returning a ready-made result of that size (fixed cost + transfer)."""
    rows = []
    one = '["conductance"]'
    cases = [("J-heavy", J_HEAVY, {"nz": 256}, c) for c in (4096, 16384, 65536, 262144, 1048576)]
    cases += [
        ("J-heavy, G only", J_HEAVY, {"nz": 256, "quantities": one}, c) for c in (65536, 1048576)
    ]
    cases += [("(T,V)-heavy", TV_HEAVY, {"nt": 200}, c) for c in (200, 1000, 4000, 10000, 20000)]
    with local_cluster(1) as client:
        for name, template, kw, chunk in cases:
            path = spec_file(tmp, f"ovh-{len(rows)}", template, chunk=chunk, **kw)
            drive(client, path, timed_task, limit=4)  # warm-up: compile this chunk shape
            runs = [drive(client, path, timed_task) for _ in range(2)]
            r = min(runs, key=lambda r: r["wall"])
            per_task = r["wall"] / r["chunks"]
            compute = statistics.median(r["seconds"])
            overhead = max(per_task - compute, 0.0)
            echo = min(drive(client, path, echo_task)["wall"] for _ in range(2)) / r["chunks"]
            row = {
                "grid": name,
                "chunk_points": int(np.prod(r["block"])),
                "block": list(r["block"]),
                "chunks_timed": r["chunks"],
                "compute_ms": 1e3 * compute,
                "per_task_ms": 1e3 * per_task,
                "overhead_ms": 1e3 * overhead,
                "overhead_frac": overhead / per_task,
                "result_only_task_ms": 1e3 * echo,
            }
            rows.append(row)
            print(
                f"  {name:16s} chunk {row['chunk_points']:8d}: compute {row['compute_ms']:8.2f} ms,"
                f" per task {row['per_task_ms']:8.2f} ms, overhead {row['overhead_ms']:6.2f} ms "
                f"({100 * row['overhead_frac']:.0f}%); result-only task "
                f"{row['result_only_task_ms']:6.2f} ms",
                flush=True,
            )
    return rows


# --- the store: single writer against shards + virtual dataset ------------------------------------


def shard_task(spec_text, spec_path, block, i, cache=False, directory=""):
    """Compute chunk i and write it to this worker's own shard file; return only its index."""
    import h5py

    from jaxmi.sweep import cluster

    values = cluster.compute_chunk(spec_text, spec_path, block, i, cache)
    with h5py.File(os.path.join(directory, f"shard-{os.getpid()}.h5"), "a") as f:
        for q, arr in values.items():
            f.create_dataset(f"{q}/{i}", data=arr)
    return {"values": {}, "seconds": 0.0}


def shards_run(client, spec_path: str, tmp: Path) -> dict:
    """The shard alternative end to end: workers write shard files, the client joins them."""
    import functools

    import h5py

    from jaxmi.config import Config
    from jaxmi.sweep import chunks, cluster, grid, load

    spec = load(spec_path)
    g = grid.build(spec)
    layout = chunks.plan(g.shape, spec.chunk)
    d = tmp / f"shards-{time.monotonic_ns()}"
    d.mkdir()
    task = functools.partial(shard_task, directory=str(d))
    backend = cluster.DaskBackend(client, task=task)
    t0 = time.perf_counter()
    for _ in backend.results(spec, g, layout, Config(order=spec.order), range(layout.n_chunks)):
        pass
    t_compute = time.perf_counter() - t0
    # Join: one virtual dataset per quantity, one mapping per chunk.
    where = {}
    for shard in sorted(d.glob("shard-*.h5")):
        with h5py.File(shard, "r") as f:
            for key in f["conductance"]:
                where[int(key)] = shard.name
    with h5py.File(d / "joined.h5", "w") as out:
        for q in spec.quantities:
            shape = (*g.shape, 3) if q == "spin" else g.shape
            vl = h5py.VirtualLayout(shape=shape, dtype=np.float64)
            for i in range(layout.n_chunks):
                region = layout.region(i)
                sub = tuple(s.stop - s.start for s in region) + ((3,) if q == "spin" else ())
                vl[region] = h5py.VirtualSource(where[i], f"{q}/{i}", shape=sub)
            out.create_virtual_dataset(q, vl, fillvalue=np.nan)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "join_s": wall - t_compute, "points_per_s": spec.n_points / wall}


class ReadyBackend:
    """Chunk results ready at once (zeros): times the store alone."""

    def describe(self):
        return "ready-made results"

    def results(self, spec, g, layout, config, todo):
        for i in todo:
            shape = tuple(s.stop - s.start for s in layout.region(i))
            yield i, {"conductance": np.zeros(shape), "current": np.zeros(shape),
                      "spin": np.zeros((*shape, 3))}  # fmt: skip


def store_costs(tmp: Path) -> dict:
    rows = []
    for chunk in (16384, 65536, 262144):
        path = spec_file(tmp, f"store-{chunk}", J_HEAVY, chunk=chunk, nz=20)
        w = timed_sweep(path, tmp, backend=ReadyBackend())
        rows.append({"chunk_points": chunk, "write_points_per_s": w["points_per_s"]})
        print(f"  write only, chunk {chunk:7d}: {w['points_per_s']:.3g} points/s", flush=True)
    with local_cluster(1) as client:
        for row in rows:
            path = spec_file(tmp, f"echo-{row['chunk_points']}", J_HEAVY,
                             chunk=row["chunk_points"], nz=20)  # fmt: skip
            drive(client, path, echo_task)
            r = drive(client, path, echo_task)
            row["fetch_points_per_s"] = r["points"] / r["wall"]
            print(f"  fetch only, chunk {row['chunk_points']:7d}: "
                  f"{row['fetch_points_per_s']:.3g} points/s", flush=True)  # fmt: skip
    path = spec_file(tmp, "jheavy-65536", J_HEAVY, chunk=65536, nz=124)
    with local_cluster(2) as client:
        from jaxmi.sweep import cluster

        timed_sweep(path, tmp, backend=cluster.DaskBackend(client), repeats=0)  # warm-up
        shards_run(client, path, tmp)  # warm-up
        singles, shard_runs = [], []
        for _ in range(3):  # interleaved, best of 3 each
            singles.append(timed_sweep(path, tmp, cluster.DaskBackend(client), 1, warmup=False))
            shard_runs.append(shards_run(client, path, tmp))
        single = min(singles, key=lambda r: r["wall_s"])
        shards = min(shard_runs, key=lambda r: r["wall_s"])
    print(
        "  2 workers, J-heavy (2.5e6 points), chunk 65536: single writer "
        f"{single['points_per_s']:.3g} points/s; "
        f"shards + VDS {shards['points_per_s']:.3g} points/s (join {shards['join_s']:.2f} s)",
        flush=True,
    )
    return {"rows": rows, "single_writer": single, "shards_vds": shards}


# --- throughput -----------------------------------------------------------------------------------


def rates(tmp: Path, rounds: int = 3) -> list[dict]:
    """Best of ``rounds`` interleaved rounds (local, 1 worker, 2 workers), after a warm-up:
    interleaving spreads the noise of a shared machine over all three."""
    from jaxmi.sweep import cluster

    grids = [
        ("J-heavy", spec_file(tmp, "jheavy", J_HEAVY, chunk=262144, nz=124)),
        ("(T,V)-heavy", spec_file(tmp, "tvheavy", TV_HEAVY, chunk=4000, nt=200)),
    ]
    with local_cluster(1) as c1, local_cluster(2) as c2:
        engines = [("local", None), ("dask x1", c1), ("dask x2", c2)]

        def backend(client):
            return None if client is None else cluster.DaskBackend(client)

        for _, path in grids:
            for _, client in engines:
                timed_sweep(path, tmp, backend(client), repeats=0)  # warm-up (compile)
        best: dict = {}
        for _ in range(rounds):
            for gname, path in grids:
                for ename, client in engines:
                    r = timed_sweep(path, tmp, backend(client), repeats=1, warmup=False)
                    key = (gname, ename)
                    if key not in best or r["wall_s"] < best[key]["wall_s"]:
                        best[key] = r
    rows = []
    for gname, _ in grids:
        local = best[(gname, "local")]["points_per_s"]
        for ename, _ in engines:
            r = best[(gname, ename)]
            rows.append(
                {"grid": gname, "engine": ename, **r, "vs_local": r["points_per_s"] / local}
            )
            print(
                f"  {gname:12s} {ename:8s} {r['points_per_s']:10.3g} points/s "
                f"({r['points_per_s'] / local:.2f} x local)",
                flush=True,
            )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("rates", "overhead", "store"))
    ap.add_argument("--tmp", default=None, help="directory for the output files (default /tmp)")
    args = ap.parse_args()
    import distributed

    import jaxmi

    info = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "jaxmi": jaxmi.__version__,
        "distributed": distributed.__version__,
        "load_average_before": os.getloadavg(),
        "note": "workers share the machine's cores with the client (and other work)",
    }
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        tmp = Path(d)
        if args.only in (None, "rates"):
            print("points/s (HDF5 write included, compilation excluded):", flush=True)
            info["rates"] = rates(tmp)
        if args.only in (None, "overhead"):
            print("per-task overhead on 1 worker:", flush=True)
            rows = overhead_scan(tmp)
            info["overhead"] = rows
            fixed = statistics.median(r["overhead_ms"] for r in rows)
            info["fixed_overhead_ms_median"] = fixed
            print(f"  median overhead per task: {fixed:.1f} ms")
            for name in ("J-heavy", "(T,V)-heavy"):
                big = max((r for r in rows if r["grid"] == name), key=lambda r: r["chunk_points"])
                per_point_ms = big["compute_ms"] / big["chunk_points"]
                model = 19 * fixed / per_point_ms  # overhead / (compute + overhead) < 5%
                info[f"model_chunk_under_5pct_{name}"] = model
                print(
                    f"  {name}: compute {1e3 * per_point_ms:.3g} us/point -> overhead < 5% "
                    f"from about {model:.3g} points per chunk (19 x overhead / compute per point)"
                )
                ok = [
                    r["chunk_points"]
                    for r in rows
                    if r["grid"] == name and r["overhead_frac"] < 0.05
                ]
                info[f"min_chunk_under_5pct_{name}"] = min(ok) if ok else None
                print(f"  {name}: smallest chunk with overhead < 5%: {min(ok) if ok else 'none'}")
        if args.only in (None, "store"):
            print("store: single writer on the client against worker shards:", flush=True)
            info["store"] = store_costs(tmp)
    info["load_average_after"] = os.getloadavg()
    out_dir = REPO / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"cluster_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(info, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
