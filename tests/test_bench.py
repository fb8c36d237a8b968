"""`jaxmi bench` at a tiny size: the rows are measured and the accuracy columns are real.

The timings themselves are not asserted (the machine may be shared); the accuracy is: both
paths at the default order agree with the high-order run to 1e-10 relative on the sub-grid
(docs/accuracy.md: <= 5.4e-14 for generic couplings in this domain; 1e-10 leaves room for the
isotropic-like roundoff floor ~1e-16/(pi T)^2 at T = 0.01).
"""

from __future__ import annotations

import math

import pytest

from jaxmi import Config, bench, cli

TINY = bench.BenchSizes(n_direct=64, n_pairs=6, n_j=40, n_accuracy=4, repeat=2)


@pytest.mark.slow
def test_bench_tiny():
    r = bench.run_bench(TINY)
    for key in (
        "direct_points_per_s",
        "all_devices_points_per_s",
        "gradient_points_per_s",
        "factorized_points_per_s",
    ):
        assert math.isfinite(r[key]) and r[key] > 0, key
    assert r["all_devices_same_values"]  # the public call gives the one-device bits
    assert math.isclose(r["gradient_ratio"], r["gradient_points_per_s"] / r["direct_points_per_s"])
    assert r["direct_max_rel_error"] <= 1e-10
    assert r["factorized_max_rel_error"] <= 1e-10
    assert r["accuracy_points"] == 16 and r["nodes"] == Config().nodes
    table = bench.format_bench(r)
    for row in ("device", "direct", "jaxmi.conductance", "gradient", "factorized", "accuracy"):
        assert row in table


def test_bench_command_line():
    args = cli._parser().parse_args(["bench", "--quick", "--order", "12"])
    assert args.command == "bench" and args.quick and args.order == 12
    assert cli._VIEW_COMMANDS["bench"] is cli._bench


def test_sample_is_in_the_validated_domain():
    J, T, V = bench.sample(1000)
    assert J.shape == (1000, 3) and abs(J).max() <= 0.5
    assert T.min() >= 0.01 and T.max() <= 0.5 and abs(V).max() <= 1.0
    assert (abs(V) / (2 * T)).max() <= 2000
