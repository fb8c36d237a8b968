"""Batches split over devices (jaxmi.devices): the same bits as one call on the paper path, the
same to ~1 ulp on the general path; the host device count set before JAX starts; one observable
alone: the values of all of them (to ~2 ulp: the program without the error estimate rounds
differently). A test process has the device count it was started with, so the multi-device cases
run in a child process with XLA_FLAGS set, as a user's would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import jaxmi
from jaxmi import ConfigError, Model, bench, set_host_device_count
from jaxmi.devices import usable_cores


def _python(code: str, xla_flags: str | None = None) -> str:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


SPLIT = """
    import jax, numpy as np
    import jaxmi
    from jaxmi import api, bench, family, observables

    devices = jax.local_devices()
    assert len(devices) == 4, devices
    used = set()
    original = api._direct

    def recording(J, *args):
        used.update(J.devices())
        return original(J, *args)

    api._direct = recording  # looked up at call time
    J, T, V = bench.sample(1000)  # 8 blocks of 128 -> pieces of 256, 256, 256, 232
    split = jaxmi.evaluate(J, T, V)
    assert used == set(devices), used
    api._direct = original
    # conductance() alone drops the error estimate: another program, the same to ~2 ulp
    np.testing.assert_allclose(jaxmi.conductance(J, T, V), split.conductance, rtol=2e-15, atol=0)
    one = observables.points(*jax.device_put((J, T, V), devices[0]))
    for name in ("current", "conductance", "spin", "density_matrix", "error"):
        assert np.array_equal(getattr(split, name), getattr(one, name)), name
    # under the user's jit: one call, the same values
    traced = jax.jit(lambda j: jaxmi.conductance(j, T, V))(J)
    assert np.array_equal(traced, jaxmi.conductance(J, T, V))

    # The general path: XLA:CPU compiles a loop of one or two blocks apart from a longer one
    # (the windows' closed form then rounds differently), so a point's last bit can depend on
    # its piece: measured 1 ulp of the largest value (conductance at 22 of 300 points).
    model = jaxmi.Model(spin=1, mu0=0.2)
    n = 300  # 5 blocks of 64 -> pieces of 128, 128, 44
    split = jaxmi.evaluate(J[:n], 0.3 * T[:n], V[:n], model=model)
    one = family.points(*jax.device_put((J[:n], 0.3 * T[:n], V[:n], model), devices[0]))
    for name in ("current", "conductance", "spin", "density_matrix", "error"):
        b = np.asarray(getattr(one, name))
        ulp = np.spacing(np.max(np.abs(b)))
        np.testing.assert_allclose(getattr(split, name), b, rtol=0, atol=8 * ulp, err_msg=name)
    print("ok")
"""


@pytest.mark.slow
def test_split_over_four_devices_gives_the_bits_of_one_call():
    # Pieces are whole blocks of the compiled loop, so every point meets the same arithmetic.
    assert _python(SPLIT, "--xla_force_host_platform_device_count=4").strip() == "ok"


def test_host_device_count_before_and_after_jax_starts():
    out = _python(
        """
        import warnings
        import jaxmi
        assert jaxmi.set_host_device_count(3) == 3
        import jax
        assert len(jax.devices("cpu")) == 3
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert jaxmi.set_host_device_count(2) == 3  # too late: warns, keeps 3
            assert jaxmi.set_host_device_count() == 3  # the default asks for nothing new
        print(len(caught), caught[0].category.__name__)
        """
    )
    assert out.split() == ["1", "RuntimeWarning"]


@pytest.mark.slow
def test_host_device_count_default_keeps_xla_flags_and_else_takes_the_cores():
    code = """
        import jaxmi, jax
        print(jaxmi.set_host_device_count(), len(jax.devices("cpu")))
    """
    flag = "--xla_force_host_platform_device_count"
    assert _python(code, f"{flag}=2").split() == ["2", "2"]
    n = usable_cores()
    assert _python(code).split() == [str(n), str(n)]
    # Other flags are kept, the count is replaced (JAX is not started: the made-up flag is safe).
    out = _python(
        """
        import os, jaxmi
        print(jaxmi.set_host_device_count(3), os.environ["XLA_FLAGS"])
        """,
        f"--xla_made_up_flag=7 {flag}=2",
    )
    assert out.split() == ["3", "--xla_made_up_flag=7", f"{flag}=3"]


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_host_device_count_rejects_bad_counts(bad):
    before = os.environ.get("XLA_FLAGS")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match="positive integer"):
            set_host_device_count(bad)
    assert os.environ.get("XLA_FLAGS") == before


@pytest.mark.slow
@pytest.mark.parametrize("model", [None, Model(spin=1, mu0=0.2)], ids=["paper", "spin-1 gated"])
def test_one_observable_has_the_values_of_evaluate(model):
    # conductance() and current() compile only their own output (faster), without the error
    # estimate that evaluate() adds: another XLA program, whose fusions can round differently.
    # Measured: paper path, 23 of 1000 conductances differ, by <= 4e-16 relative (2 ulp); the
    # currents and the family path's values are identical. rtol 2e-15 is ~5x that.
    J, T, V = bench.sample(300)
    T = 0.3 * T
    out = jaxmi.evaluate(J, T, V, model=model)
    np.testing.assert_allclose(
        jaxmi.conductance(J, T, V, model=model), out.conductance, rtol=2e-15, atol=0
    )
    np.testing.assert_allclose(jaxmi.current(J, T, V, model=model), out.current, rtol=2e-15, atol=0)
    # spin() is evaluate().spin (one program: comparing the two could not fail). Check it
    # against an independent route instead: Tr(S^i rho) in numpy, with the spin operators built
    # here from the ladder operators, on the density matrix the engine returns. Measured:
    # 6e-17 (paper path, rho built from <S>) and 2e-16 (spin 1: rho from the Gell-Mann basis,
    # <S> from a separate contraction); 2e-15 is ~10x that.
    S = 0.5 if model is None else model.spin
    m = S - np.arange(int(2 * S) + 1)
    plus = np.diag(np.sqrt(S * (S + 1) - m[1:] * (m[1:] + 1)), 1)
    ops = np.array([(plus + plus.T) / 2, (plus - plus.T) / 2j, np.diag(m)])
    rho = np.asarray(out.density_matrix)
    expected = np.real(np.einsum("iab,nba->ni", ops, rho))
    assert np.max(np.abs(np.asarray(jaxmi.spin(J, T, V, model=model)) - expected)) < 2e-15
