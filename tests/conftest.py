"""Strict JAX for the whole suite, and hypothesis profiles.

float64 comes from importing jaxmi (its one documented switch); here rank promotion raises, so a
silent broadcast in the engine is a test failure. Profiles: "ci" (default, bounded examples and
no deadline: the first call of a jitted function compiles) and "thorough" (HYPOTHESIS_PROFILE).
"""

import gc
import os

import jax
import pytest
from hypothesis import HealthCheck, settings

import jaxmi  # noqa: F401  (enables float64)

jax.config.update("jax_numpy_rank_promotion", "raise")
# Start JAX now, with the devices the test process was started with: cli.main() called in-process
# then never changes the host device count (jaxmi.devices), whichever test runs first.
jax.devices()

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop the compiled programs of a test module when it ends. The suite compiles hundreds of
    programs (one per model, Config, strategy and shape) in one process; kept, they grow the
    process by GBs, and late in the full run an XLA compilation segfaulted (twice, in
    test_sweep_model, which passes alone)."""
    yield
    jax.clear_caches()
    gc.collect()


@pytest.fixture
def release_compiled():
    """The same after one test: for tests whose every case compiles programs of its own (one
    model per reference point), ~100-200 in a module; the full suite once segfaulted in an XLA
    compilation late in such a module (tests/test_error_estimate.py), which passes alone."""
    yield
    jax.clear_caches()
    gc.collect()
