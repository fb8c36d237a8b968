"""Shared helpers of the sweep tests: run the installed ``jaxmi`` script in a subprocess with a
per-session JAX compilation cache (so each chunk shape compiles once per test session)."""

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


def jaxmi_command() -> list[str]:
    """The installed console script (as users run it), else ``python -m jaxmi``."""
    script = shutil.which("jaxmi")
    return [script] if script else [sys.executable, "-m", "jaxmi"]


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory) -> dict[str, str]:
    """Environment of CLI subprocesses: a session-wide XDG cache (JAX compilation cache)."""
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(tmp_path_factory.getbasetemp() / "xdg-cache")
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


def make(tmp_path: Path, text: str, name: str = "s.toml"):
    """The Spec of a TOML text written to tmp_path/name (as given, not dedented)."""
    from jaxmi.sweep import spec  # noqa: PLC0415 (no JAX for the CLI-only helpers above)

    path = tmp_path / name
    path.write_text(text)
    return spec.load(path)


def read(path) -> dict:
    """The stored quantities of a sweep file, as numpy arrays."""
    import h5py  # noqa: PLC0415

    from jaxmi.sweep.spec import QUANTITIES  # noqa: PLC0415

    with h5py.File(path, "r") as f:
        return {q: f[q][...] for q in QUANTITIES if q in f}


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
