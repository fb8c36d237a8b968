"""Shared helpers of the sweep tests: run the installed ``jaxmi`` script in a subprocess with the
session's JAX compilation cache (tests/conftest.py: each chunk shape compiles once per session)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The ready specs in the source tree (shipped as package data: jaxmi.sweep.spec.shipped).
SWEEPS = REPO / "jaxmi" / "sweeps"
#: A small grid (3 couplings x 3 T x 3 V, T = 0 and V = 0 included) for the specs of the tests.
SMALL_GRID = """
[J]
cases = [
    {name = "iso", J = [0.25, 0.25, 0.25]},
    {name = "xz", J = [0.25, 0.0, 0.35]},
    {name = "general", J = [0.3, -0.1, 0.2]},
]
[T]
values = [0.0, 0.05, 0.2]
[V]
values = [-0.3, 0.0, 0.5]
"""


def jaxmi_command() -> list[str]:
    """The installed console script (as users run it), else ``python -m jaxmi``."""
    script = shutil.which("jaxmi")
    return [script] if script else [sys.executable, "-m", "jaxmi"]


@pytest.fixture(scope="session")
def cli_env() -> dict[str, str]:
    """Environment of CLI subprocesses: the session's XDG cache (set by tests/conftest.py), no
    XLA_FLAGS."""
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    return env


def run_cli(args, env, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*jaxmi_command(), *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_spec(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def cli_sweep(directory: Path, text: str, env, stem: str = "s") -> tuple[Path, Path]:
    """Write ``text`` (dedented) to directory/STEM.toml and run ``jaxmi run`` on it into
    directory/STEM.h5, quietly; returns (spec path, output path)."""
    spec = write_spec(directory / f"{stem}.toml", text)
    out = directory / f"{stem}.h5"
    proc = run_cli(["run", spec, "-o", out, "-q"], env)
    assert proc.returncode == 0, proc.stderr
    return spec, out


def partial_run(spec, out, chunks: int):
    """Run ``spec`` (a path or a Spec) into ``out`` in this process and stop once ``chunks``
    chunks are written (0: the file is only created); returns the run's Result."""
    from jaxmi.sweep import run as run_mod  # noqa: PLC0415
    from jaxmi.sweep import spec as spec_mod  # noqa: PLC0415

    s = spec if isinstance(spec, spec_mod.Spec) else spec_mod.load(spec)
    polled = []  # stop() is polled once before each chunk is taken and written
    return run_mod.run_sweep(
        s, output=str(out), stop=lambda: len(polled) >= chunks or polled.append(1)
    )


def make(tmp_path: Path, text: str, name: str = "s.toml"):
    """The Spec of a TOML text written to tmp_path/name (as given, not dedented)."""
    from jaxmi.sweep import spec  # noqa: PLC0415 (no JAX for the CLI-only helpers above)

    path = tmp_path / name
    path.write_text(text)
    return spec.load(path)


def read(path) -> dict:
    """The stored quantities of a sweep file, as numpy arrays."""
    import h5py  # noqa: PLC0415

    from jaxmi.domain import SWEEP_QUANTITIES  # noqa: PLC0415

    with h5py.File(path, "r") as f:
        return {q: f[q][...] for q in SWEEP_QUANTITIES if q in f}


#: A sweep of a few seconds with many small chunks (resume and locking tests): 360 chunks of
#: 4 J x 1 (T, u) pair, ~10 ms each (dispatch, write and two flushes dominate).
SLOW_SPEC = """
    output = "slow.h5"
    [J]
    isotropic = {start = 0.1, stop = 0.4, num = 4}
    [T]
    start = 0.01
    stop = 0.3
    num = 60
    [u]
    start = 0.1
    stop = 3
    num = 6
    spacing = "log"
    [numerics]
    chunk = 4
"""
