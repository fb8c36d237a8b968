"""Strict JAX for the whole suite, and hypothesis profiles.

float64 comes from importing jaxmi (its one documented switch); here rank promotion raises, so a
silent broadcast in the engine is a test failure. Profiles: "ci" (default: bounded, derandomized
examples and no deadline, as the first call of a jitted function compiles) and "thorough"
(HYPOTHESIS_PROFILE=thorough: 1000 random examples per test).
"""

import atexit
import gc
import os
import shutil
import tempfile

import jax
import pytest
from hypothesis import HealthCheck, settings

import jaxmi  # noqa: F401  (enables float64)

jax.config.update("jax_numpy_rank_promotion", "raise")
# One persistent compilation cache for the whole session, in a fresh temporary folder (never
# the user's ~/.cache): the fixtures below drop the compiled programs after each module (and
# after each case of the per-point family tests), and the same program compiled again later (the
# same reference point at the default Config in another module, the same sweep chunk) is then
# read back instead of compiled. jaxmi's CLI, called in-process, points JAX at
# $XDG_CACHE_HOME/jaxmi/jax: the same folder. CLI subprocesses inherit XDG_CACHE_HOME.
# pytest-xdist's workers inherit the folder from the process that made it, which removes it.
if "JAXMI_TEST_CACHE_HOME" not in os.environ:
    os.environ["JAXMI_TEST_CACHE_HOME"] = tempfile.mkdtemp(prefix="jaxmi-test-cache-")
    atexit.register(shutil.rmtree, os.environ["JAXMI_TEST_CACHE_HOME"], ignore_errors=True)
_CACHE_HOME = os.environ["JAXMI_TEST_CACHE_HOME"]
os.environ["XDG_CACHE_HOME"] = _CACHE_HOME
jax.config.update("jax_compilation_cache_dir", os.path.join(_CACHE_HOME, "jaxmi", "jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
# Start JAX now, with the devices the test process was started with: cli.main() called in-process
# then never changes the host device count (jaxmi.devices), whichever test runs first.
jax.devices()

# "ci" is derandomized (the same examples on every run, no example database): the suite's
# verdict on a commit does not depend on a seed. The random exploration is "thorough"'s job;
# what it finds becomes an issue and a fixed example.
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
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
