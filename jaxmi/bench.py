"""Throughput and accuracy of the two evaluation paths on the current JAX device.

What ``jaxmi bench`` prints, and the building blocks of benchmarks/run.py (the full comparison
with the baselines, docs/performance.md). Every timing is the median of repeated calls of an
ahead-of-time compiled function on inputs already on the device, with ``block_until_ready``;
compilation is timed separately. Device-agnostic: nothing here names a CPU or a GPU.

Rows of :func:`run_bench` (all at the default :class:`jaxmi.Config` unless given):

* direct: conductance of a flat batch of random (J, T, V) points (``observables.points``) on
  one device, and the same batch through ``jaxmi.conductance``, which splits it over all local
  devices (jaxmi.devices; the ``jaxmi`` command gives a CPU one device per core);
* gradient: ``vmap(grad)`` of the conductance w.r.t. J per point (what a fit needs), and its
  throughput relative to the plain conductance (both timed in turn on the same batch);
* factorized: ``observables.grid_arrays`` (current, conductance, spin) of n_pairs (T, V) pairs x
  n_j couplings, compute only (no HDF5);
* accuracy: relative error of both paths against the direct path at a high order
  (:data:`HIGH`, itself checked against the independent reference in docs/accuracy.md), on a
  sub-grid of the timed points.

Points are drawn in the validated domain: J uniform in [-0.5, 0.5]^3, T log-uniform in
[0.01, 0.5], V uniform in [-1, 1] (units vF*k0). Units of the results: points per second.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

import numpy as np

from jaxmi.config import Config

#: Reference quadrature of the accuracy columns (as benchmarks/accuracy.py): 48 x (16 + 12) nodes.
HIGH = Config(order=48, window_panels=16, tail_panels=12)


def sample(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n random points of the validated domain: J (n, 3), T (n,), V (n,) (numpy float64)."""
    u = np.random.default_rng(seed).uniform(size=(n, 5))  # one row per point: prefixes agree
    J = u[:, :3] - 0.5
    T = np.exp(np.log(0.01) + u[:, 3] * np.log(50.0))
    V = 2.0 * u[:, 4] - 1.0
    return J, T, V


@dataclasses.dataclass(frozen=True)
class Timing:
    """Compile time and the wall times of repeated calls after compilation, in seconds."""

    compile_s: float
    times_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)


def timed(fn, *args, repeat: int = 5, min_repeat_s: float = 0.0):
    """Compile ``jax.jit(fn)`` for ``args`` ahead of time, then call it ``repeat`` times.

    More calls are made (up to 50) while their total is below ``min_repeat_s``, so that short
    calls get a stable median. Returns ``(Timing, output of the last call)``.
    """
    import jax

    args = jax.device_put(args)
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    times, out = [], None
    while len(times) < repeat or (sum(times) < min_repeat_s and len(times) < 50):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    return Timing(compile_s, tuple(times)), out


def compiled(fn, *args):
    """(compiled function, args on the device, compile seconds) of ``jax.jit(fn)`` at args."""
    import jax

    args = jax.device_put(args)
    t0 = time.perf_counter()
    c = jax.jit(fn).lower(*args).compile()
    return c, args, time.perf_counter() - t0


def interleaved_times(items: dict, rounds: int = 5) -> dict:
    """Seconds of every call of several compiled calls, timed in turn round by round.

    ``items``: name -> (compiled, args). On a shared machine the load drifts; timing the
    variants round-robin exposes them to the same drift, so that their ratio is meaningful.
    Returns name -> list of ``rounds`` times.
    """
    import jax

    times = {k: [] for k in items}
    for _ in range(rounds):
        for k, (c, args) in items.items():
            t0 = time.perf_counter()
            jax.block_until_ready(c(*args))
            times[k].append(time.perf_counter() - t0)
    return times


def interleaved(items: dict, rounds: int = 5) -> dict:
    """Median seconds per call of :func:`interleaved_times`, per name."""
    return {k: statistics.median(v) for k, v in interleaved_times(items, rounds).items()}


def cost(fn, *args) -> dict:
    """XLA's cost analysis of ``jax.jit(fn)`` at ``args``: flops, transcendentals, bytes accessed.

    ``flops`` excludes the transcendental calls (exp, sin, cos, expm1, tanh, ...), counted apart;
    ``bytes`` is the compiled program's traffic between its fused kernels (a property of the
    backend's fusion, not of the algorithm).
    """
    import jax

    c = jax.jit(fn).lower(*args).compile().cost_analysis()
    c = c[0] if isinstance(c, (list, tuple)) else c
    return {
        "flops": float(c.get("flops", 0.0)),
        "transcendentals": float(c.get("transcendentals", 0.0)),
        "bytes": float(c.get("bytes accessed", 0.0)),
    }


# --- the functions that are timed -------------------------------------------------------------


def direct_conductance(config: Config = Config()):
    """J (n, 3), T (n,), V (n,) -> conductance (n,) by the direct path."""
    from jaxmi.observables import points

    return lambda J, T, V: points(J, T, V, config).conductance


def public_conductance(config: Config = Config()):
    """``jaxmi.conductance`` on numpy inputs: the batch split over ``jax.local_devices()``
    (jaxmi.devices), checks and transfers included; what a user's call costs."""
    from jaxmi.api import conductance

    return lambda J, T, V: conductance(J, T, V, config=config)


def direct_gradient(config: Config = Config(), mode: str = "grad"):
    """J (n, 3), T (n,), V (n,) -> d conductance / dJ (n, 3) per point, reverse ("grad") or
    forward ("jacfwd") mode, vmapped over the batch."""
    import jax

    from jaxmi.observables import point

    def g(j, t, v):
        return point(j, t, v, config).conductance

    d = {"grad": jax.grad, "jacfwd": jax.jacfwd}[mode](g)
    return jax.vmap(d)


def factorized(config: Config = Config()):
    """J (nJ, 3), T (nP,), V (nP,) -> (current, conductance (nJ, nP), spin (nJ, nP, 3))."""
    from jaxmi.observables import grid_arrays

    return lambda J, T, V: grid_arrays(J, T, V, config)


def max_rel_error(value, ref, floor: float = 1e-300) -> float:
    """max |value - ref| / max(|ref|, floor) over all entries."""
    value, ref = np.asarray(value), np.asarray(ref)
    return float(np.max(np.abs(value - ref) / np.maximum(np.abs(ref), floor)))


def factorized_inputs(n_pairs: int, n_j: int, seed: int = 1):
    """J (n_j, 3) and (T, V) pairs (n_pairs,) from :func:`sample`."""
    J, _, _ = sample(n_j, seed)
    _, T, V = sample(n_pairs, seed + 1)
    return J, T, V


# --- jaxmi bench ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BenchSizes:
    """Problem sizes of :func:`run_bench`."""

    n_direct: int = 65_536  # the gradient runs on the same batch
    n_pairs: int = 100
    n_j: int = 100_000
    n_accuracy: int = 8  # accuracy sub-grid: n_accuracy pairs x n_accuracy couplings
    repeat: int = 5


FULL = BenchSizes()
QUICK = BenchSizes(n_direct=4096, n_pairs=100, n_j=10_000, repeat=3)


def run_bench(sizes: BenchSizes = FULL, config: Config = Config(), progress=None) -> dict:
    """Measure the rows of ``jaxmi bench`` on the default JAX device; returns a dict.

    The first ``n_accuracy**2`` points of the direct batch are the sub-grid (first n_accuracy
    pairs x first n_accuracy couplings) of the factorized grid, so that one high-order direct
    call gives the accuracy of both paths without compiling the timed functions twice.
    """
    import jax

    from jaxmi.validate import describe_device

    say = progress or (lambda msg: None)
    k = sizes.n_accuracy
    Jg, Tg, Vg = factorized_inputs(sizes.n_pairs, sizes.n_j)
    # Direct batch: the k x k sub-grid first (J-major, like grid's (nJ, nP) layout), then random.
    sub = (
        np.repeat(Jg[:k], k, axis=0),
        np.tile(Tg[:k], k),
        np.tile(Vg[:k], k),
    )
    Jr, Tr, Vr = sample(sizes.n_direct, seed=2)
    Jd, Td, Vd = (
        np.concatenate([s, r])[: sizes.n_direct] for s, r in zip(sub, (Jr, Tr, Vr), strict=True)
    )
    t0 = time.perf_counter()
    load = [os.getloadavg()[0]]

    say("direct path and its gradient w.r.t. J ...")
    c_direct, args, direct_compile = compiled(direct_conductance(config), Jd, Td, Vd)
    c_grad, _, grad_compile = compiled(direct_gradient(config), Jd, Td, Vd)
    public = public_conductance(config)
    g_public = np.asarray(public(Jd, Td, Vd))  # compiles for each device's piece
    # timed in turn, so that the ratios see the same load
    med = interleaved(
        {
            "direct": (c_direct, args),
            "grad": (c_grad, args),
            "public": (public, (Jd, Td, Vd)),
        },
        sizes.repeat,
    )
    g_direct = c_direct(*args)
    say("factorized path ...")
    fact_t, (_, g_fact, _) = timed(factorized(config), Jg, Tg, Vg, repeat=sizes.repeat)
    say("accuracy (high-order reference) ...")
    _, g_high = timed(direct_conductance(HIGH), *sub, repeat=1)
    load.append(os.getloadavg()[0])

    g_high = np.asarray(g_high)
    direct_pps = sizes.n_direct / med["direct"]
    grad_pps = sizes.n_direct / med["grad"]
    return {
        "device": describe_device(),
        "devices": len(jax.devices()),
        "cpus": os.cpu_count(),
        "order": config.order,
        "nodes": config.nodes,
        "sizes": dataclasses.asdict(sizes),
        "direct_points_per_s": direct_pps,
        "direct_compile_s": direct_compile,
        "all_devices_points_per_s": sizes.n_direct / med["public"],
        "all_devices_same_values": bool(np.array_equal(g_public, np.asarray(g_direct))),
        "gradient_points_per_s": grad_pps,
        "gradient_compile_s": grad_compile,
        "gradient_ratio": grad_pps / direct_pps,
        "factorized_points_per_s": sizes.n_pairs * sizes.n_j / fact_t.median_s,
        "factorized_compile_s": fact_t.compile_s,
        "direct_max_rel_error": max_rel_error(np.asarray(g_direct)[: k * k], g_high),
        "factorized_max_rel_error": max_rel_error(np.asarray(g_fact)[:k, :k].reshape(-1), g_high),
        "accuracy_points": k * k,
        "load_average": load,
        "wall_s": time.perf_counter() - t0,
    }


def format_bench(r: dict) -> str:
    """The table ``jaxmi bench`` prints."""
    s = r["sizes"]
    rows = [
        ("device", f"{r['device']} ({r['devices']} device(s), {r['cpus']} CPU cores)"),
        ("quadrature", f"order {r['order']} ({r['nodes']} nodes per (T, V) pair)"),
        (
            "direct conductance",
            f"{r['direct_points_per_s']:.3g} points/s on one device  ({s['n_direct']} points; "
            f"compile {r['direct_compile_s']:.1f} s)",
        ),
        (
            "jaxmi.conductance",
            f"{r['all_devices_points_per_s']:.3g} points/s, the same batch split over "
            f"{r['devices']} device(s)"
            + ("" if r["all_devices_same_values"] else "  (VALUES DIFFER from one device)"),
        ),
        (
            "gradient w.r.t. J",
            f"{r['gradient_points_per_s']:.3g} points/s = {r['gradient_ratio']:.0%} of the "
            f"conductance  (vmap(grad); compile {r['gradient_compile_s']:.1f} s)",
        ),
        (
            "factorized grid",
            f"{r['factorized_points_per_s']:.3g} points/s  ({s['n_pairs']} (T, V) pairs x "
            f"{s['n_j']} J, compute only; compile {r['factorized_compile_s']:.1f} s)",
        ),
        (
            "accuracy (conductance)",
            f"direct {r['direct_max_rel_error']:.1e}, factorized "
            f"{r['factorized_max_rel_error']:.1e} max relative error vs order "
            f"{HIGH.order} x {HIGH.window_panels + HIGH.tail_panels} panels "
            f"({r['accuracy_points']} points)",
        ),
        ("load average", " -> ".join(f"{x:.2f}" for x in r["load_average"])),
        ("wall time", f"{r['wall_s']:.1f} s including compilation"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
