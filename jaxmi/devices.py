"""Using every core of a CPU node: one JAX host device per core, and batches split over devices.

XLA:CPU runs one program on one device with limited intra-op parallelism: on 2 cores the direct
path keeps ~1.4-1.7 of them busy. With one host device per core
(``--xla_force_host_platform_device_count``, which must be set before JAX starts its CPU
backend) and a batch split into one contiguous piece per device, every core runs its own copy of
the same single-device program (docs/performance.md: 1.1-1.5x on 2 cores).

The split does not change a result beyond the last bit: pieces are whole multiples of the
program's own block, so each point goes through the same arithmetic as in one call. On the paper
path it gives the same bits; on the general path XLA:CPU compiles a loop of one or two blocks
apart from a longer one, and a point can differ by 1 ulp (tests/test_devices.py checks both). On
a GPU node ``jax.local_devices()`` are the GPUs and the same split spreads a batch over them;
the host device count only concerns the CPU platform.

Library code never sets the count on import (it is process-wide state that belongs to the
application): the ``jaxmi`` command does, and scripts call :func:`set_host_device_count` first.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence

from jaxmi.errors import ConfigError

_FLAG = "--xla_force_host_platform_device_count"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; the CPU count where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _flag_count(flags: str) -> int | None:
    m = re.search(_FLAG + r"=(\d+)", flags)
    return int(m.group(1)) if m else None


def backend_started() -> bool:
    """Whether JAX has started its backends in this process (the device count is then fixed)."""
    bridge = sys.modules.get("jax._src.xla_bridge")
    return bool(bridge is not None and getattr(bridge, "_backends", None))


def set_host_device_count(n: int | None = None) -> int:
    """Ask JAX for ``n`` CPU devices (default: one per usable core), before its backend starts.

    Call it at the top of a script, before the first JAX computation; ``jaxmi`` CLI commands call
    it with the default. With ``n=None`` a count already given in ``XLA_FLAGS`` is kept (the user's
    choice wins). Once the backend has started the count cannot change: then this warns (if the
    count differs) and returns the count in effect.

    Args:
        n: CPU devices, a positive integer, or None.

    Returns:
        The host device count this process will have.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"the host device count must be a positive integer, got {n!r}")
    flags = os.environ.get("XLA_FLAGS", "")
    given = _flag_count(flags)
    if n is None:
        n = given if given is not None else usable_cores()
    if backend_started():
        import jax

        current = len(jax.devices("cpu"))
        if current != n:
            warnings.warn(
                f"JAX already runs with {current} CPU device(s); set_host_device_count({n}) "
                "has no effect after the first JAX computation: call it first",
                RuntimeWarning,
                stacklevel=2,
            )
        return current
    flags = re.sub(_FLAG + r"=\d+", "", flags).strip()
    os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={n}".strip()
    return n


def split_over_devices(
    fn: Callable,
    arrays: Sequence,
    multiple: int,
    shared: Sequence = (),
    devices: Sequence | None = None,
):
    """``fn(*arrays, *shared)`` for a flat batch, one contiguous piece per device, concurrently.

    Args:
        fn: a (jitted) function of arrays with a leading batch axis n (then the ``shared``
            arguments), returning a pytree of arrays with the same leading axis.
        arrays: the inputs, leading axis n each.
        multiple: every piece but the last holds a multiple of this many points (the block of
            fn's own loop, so that each point meets the same compiled code as in one call).
        shared: pytrees passed whole to every piece (e.g. a :class:`jaxmi.Model`).
        devices: default ``jax.local_devices()``.

    Returns:
        fn's output over the whole batch, on the first device. With one device, or fewer than
        two blocks of points, this is just ``fn(*arrays, *shared)``.
    """
    import jax
    import jax.numpy as jnp

    devices = list(devices) if devices is not None else jax.local_devices()
    n = arrays[0].shape[0]
    blocks = -(-n // multiple)
    k = min(len(devices), blocks)
    if k < 2:
        return fn(*arrays, *shared)
    per = -(-blocks // k) * multiple
    # All inputs are placed before the first dispatch: a slice on the first device would
    # otherwise queue behind that device's piece.
    placed = [
        jax.device_put(([a[s : s + per] for a in arrays], shared), d)
        for s, d in zip(range(0, n, per), devices, strict=False)
    ]
    outs = [fn(*piece, *sh) for piece, sh in placed]  # asynchronous: the devices run side by side
    first = devices[0]
    return jax.tree_util.tree_map(
        lambda *parts: jnp.concatenate(jax.device_put(parts, first)), *outs
    )
