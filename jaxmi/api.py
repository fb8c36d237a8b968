"""Public functions: convert the inputs, check them while they are concrete, then call a jitted
batch over the per-point core (jaxmi.observables).

Units (the README's Units table): T and V (= eV) in units of vF*k0; J = (Jx, Jy, Jz)
dimensionless (J / vF); current in e vF k0 / h; conductance in e^2 / h.
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jaxmi import config as _config
from jaxmi import family, observables
from jaxmi.config import Config
from jaxmi.devices import split_over_devices
from jaxmi.errors import AccuracyWarning, DomainError, PrecisionError
from jaxmi.model import Model
from jaxmi.observables import Observables
from jaxmi.strategy import PAPER, Strategy, choose


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _as_real(name: str, x: ArrayLike) -> Array:
    if not isinstance(x, jax.Array):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise DomainError(f"{name} must be a real number or array, got {x!r}") from err
    if np.dtype(x.dtype).kind not in "biuf":
        raise DomainError(f"{name} must be real, got dtype {x.dtype}")
    return jnp.asarray(x, dtype=float)


def check_precision() -> None:
    """Raise PrecisionError unless JAX computes in float64 (also for sweeps, before a file is
    created)."""
    if not jax.config.jax_enable_x64:
        raise PrecisionError(
            "jaxmi needs float64 (JAX_ENABLE_X64 is off): the T^4 effect of an isotropic "
            "impurity is a cancellation that float32 cannot hold; unset JAX_ENABLE_X64 or set it "
            "to 1"
        )


def _check_values(
    J: Array,
    T: Array,
    V: Array,
    model: Model,
    strategy: Strategy,
    config: Config = Config(),
    box: bool = True,
) -> None:
    """Refuse non-finite J, T, V and T < 0; with ``box`` warn for points outside the validated
    domain (the functions that do not compute the error estimate: conductance, current), else
    for those whose Fermi edges the estimate cannot judge (jaxmi.config.unresolved_edges)."""
    for name, x in (("J", J), ("T", T), ("V", V)):
        if _is_concrete(x):
            bad = ~np.isfinite(np.asarray(x))
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                raise DomainError(f"{name} must be finite, got {np.asarray(x)[idx]} at index {idx}")
    if _is_concrete(T):
        t = np.asarray(T)
        if (t < 0).any():
            idx = tuple(int(i) for i in np.argwhere(t < 0)[0])
            raise DomainError(f"T must be >= 0 (units of vF*k0), got {t[idx]} at index {idx}")
    if not box and _is_concrete(T) and _is_concrete(V):
        # The error estimate drives the warning, except where the Fermi edges are too sharp
        # for it to see what the rule misses (jaxmi.domain.U_STEP).
        t, v = np.broadcast_arrays(np.asarray(T), np.asarray(V))
        unresolved = _config.unresolved_edges(t, v)
        if unresolved.any():
            warnings.warn(
                _config.edges_warning(int(unresolved.sum())), AccuracyWarning, stacklevel=4
            )
    if box and _is_concrete(T) and _is_concrete(V):
        t, v = np.broadcast_arrays(np.asarray(T), np.asarray(V))
        paper = strategy == PAPER
        t_max = _config.T_MAX if paper else _config.family_t_max(config)
        mu0 = None
        if not paper:
            mu0 = np.abs(np.asarray(model.mu0)) if _is_concrete(model.mu0) else 0.0
        outside = _config.outside_domain(t, v, t_max=t_max, mu0=mu0)
        if outside.any():
            warnings.warn(
                _config.domain_warning(
                    int(outside.sum()), t_max, family=not paper, options=strategy.options
                ),
                AccuracyWarning,
                stacklevel=4,
            )


def warn_accuracy(
    error, config: Config, options: tuple[str, ...] = (), stacklevel: int = 4
) -> None:
    """One AccuracyWarning for the points whose error estimate exceeds ``config.tolerance`` (a
    concrete array; NaN counts as over)."""
    e = np.asarray(error)
    over = ~(e <= config.tolerance)
    if over.any():
        worst = float(np.nanmax(np.where(np.isnan(e), np.inf, e)))
        warnings.warn(
            _config.accuracy_warning(int(over.sum()), worst, config, options=options),
            AccuracyWarning,
            stacklevel=stacklevel,
        )


def _over_devices(fn, batch: tuple, block: int, shared: tuple = ()):
    """fn(*batch, *shared) with the batch split across the local devices (jaxmi.devices) where
    every input is concrete; under a user's jit, grad or vmap it is one call."""
    leaves = jax.tree_util.tree_leaves((batch, shared))
    if all(_is_concrete(x) for x in leaves):
        return split_over_devices(fn, batch, block, shared)
    return fn(*batch, *shared)


def _model(model: Model | None, config: Config) -> tuple[Model, Strategy]:
    """The checked model (None: the paper's, ``Model()``) and its strategy, chosen here from its
    concrete values (jaxmi.strategy.choose, outside any jit); ``config`` is refused where it
    sets an option that strategy does not read."""
    if model is None:
        model = Model()
    if not isinstance(model, Model):
        raise DomainError(f"model must be a jaxmi.Model, got {type(model).__name__}")
    model.check()
    strategy = choose(model)
    _config.check_options(config, strategy.options, strategy.describe())
    return model, strategy


def _j_tail(model: Model) -> tuple[int, ...]:
    return (3, 3) if model.exchange == "tensor" else (3,)


def _check_j_shape(J: Array, tail: tuple[int, ...], lead: str = "...") -> None:
    if J.ndim < len(tail) or J.shape[J.ndim - len(tail) :] != tail:
        tensor = "the exchange tensor J[i, j] (Model(exchange='tensor'))"
        what = "(Jx, Jy, Jz)" if tail == (3,) else tensor
        shape = f"({lead}, {', '.join(map(str, tail))})"
        raise DomainError(f"J must have shape {shape} for {what}, got shape {J.shape}")


def _prepare(
    J: ArrayLike,
    T: ArrayLike,
    V: ArrayLike,
    model: Model,
    strategy: Strategy,
    config: Config,
    box: bool = True,
) -> tuple[Array, Array, Array, tuple]:
    check_precision()
    J, T, V = _as_real("J", J), _as_real("T", T), _as_real("V", V)
    tail = _j_tail(model)
    _check_j_shape(J, tail)
    lead = J.shape[: J.ndim - len(tail)]
    try:
        shape = np.broadcast_shapes(lead, T.shape, V.shape)
    except ValueError as err:
        raise DomainError(
            f"J (..., {', '.join(map(str, tail))}), T and V must broadcast: got J{J.shape}, "
            f"T{T.shape}, V{V.shape}"
        ) from err
    _check_values(J, T, V, model, strategy, config, box)
    n = int(np.prod(shape))
    J = jnp.broadcast_to(J, (*shape, *tail)).reshape(n, *tail)
    T = jnp.broadcast_to(T, shape).reshape(n)
    V = jnp.broadcast_to(V, shape).reshape(n)
    return J, T, V, shape


@functools.partial(jax.jit, static_argnames=("config", "fields", "strategy"))
def _direct(J: Array, T: Array, V: Array, model: Model, config: Config, fields, strategy) -> dict:
    # Only the fields asked for leave the program: XLA then drops the rest (the conductance
    # alone runs ~1.3x faster than all four observables on one CPU device, with the same bits;
    # spin alone would differ from evaluate's in the last bits, so spin and rho come from all).
    if strategy == PAPER:
        out = observables.points(J, T, V, config)
    else:
        out = family.points(J, T, V, model, config, strategy)
    return {f: getattr(out, f) for f in fields}


def _fields(
    J: ArrayLike,
    T: ArrayLike,
    V: ArrayLike,
    model: Model | None,
    config: Config,
    fields: tuple[str, ...],
) -> dict:
    """The observables ``fields`` of the direct path, broadcast shapes (see :func:`evaluate`).
    Where the error estimate is among them it drives the AccuracyWarning (warn_accuracy);
    else the domain box does (_check_values)."""
    config = _config.check_config(config)
    model, strategy = _model(model, config)
    with_error = "error" in fields
    J, T, V, shape = _prepare(J, T, V, model, strategy, config, box=not with_error)
    out = _over_devices(
        lambda j, t, v, m: _direct(j, t, v, m, config, fields, strategy),
        (J, T, V),
        observables.DIRECT_BLOCK if strategy == PAPER else family.BLOCK,
        (model,),
    )
    if with_error and all(_is_concrete(x) for x in jax.tree_util.tree_leaves(out["error"])):
        warn_accuracy(out["error"], config, strategy.options)
    return {f: x.reshape(*shape, *x.shape[1:]) for f, x in out.items()}


def evaluate(
    J: ArrayLike,
    T: ArrayLike,
    V: ArrayLike,
    *,
    model: Model | None = None,
    config: Config = Config(),
) -> Observables:
    """All observables at once (direct path), broadcast over leading axes.

    Args:
        J: couplings (Jx, Jy, Jz), shape (..., 3), dimensionless (J / vF); with
            ``Model(exchange="tensor")`` the exchange tensor J[i, j], shape (..., 3, 3).
        T: temperature, shape (...), units vF*k0, T >= 0 (T = 0 is the exact limit).
        V: bias eV, shape (...), units vF*k0.
        model: the member of the model family (:class:`jaxmi.Model`: impurity spin, exchange
            form, Fermi level mu0, texture); default (None or ``Model()``): the paper's model,
            on its own fast path. Any other model runs the general path (jaxmi.family).
        config: quadrature options, a :class:`jaxmi.Config`.

    Returns:
        :class:`jaxmi.observables.Observables`; with J of shape (4, 1, 3), T of shape (5,) and
        V scalar, ``current`` has shape (4, 5), ``spin`` (4, 5, 3), ``density_matrix``
        (4, 5, d, d), d = 2S + 1.

    Raises:
        DomainError: J, T or V not finite, T < 0, wrong shapes, or ``model`` not a Model.
        ConfigError: ``config`` is not a :class:`jaxmi.Config` (as for every public function
            with ``config=``: :func:`jaxmi.config.check_config`).
        PrecisionError: float64 is off.

    With several local devices (e.g. one per core after :func:`jaxmi.set_host_device_count`)
    a concrete batch is split into one piece per device, with the same values to the bit; under
    a user's ``jit``, ``grad`` or ``vmap`` it is one call.
    """
    return Observables(**_fields(J, T, V, model, config, Observables._fields))


def conductance(
    J: ArrayLike,
    T: ArrayLike,
    V: ArrayLike,
    *,
    model: Model | None = None,
    config: Config = Config(),
) -> Array:
    """Differential conductance correction dG/G0 = d current / dV (Eq. 1), units e^2/h.

    Shapes as :func:`evaluate`: J (..., 3), T (...), V (...) broadcast to the result's shape.

    Example:
        >>> import jaxmi
        >>> float(jaxmi.conductance([0.25, 0.0, 0.25], 0.1, 0.0))  # Eq. 14: -Jx^2/2
        -0.03125
    """
    return _fields(J, T, V, model, config, ("conductance",))["conductance"]


def current(
    J: ArrayLike,
    T: ArrayLike,
    V: ArrayLike,
    *,
    model: Model | None = None,
    config: Config = Config(),
) -> Array:
    """Backscattering current (Eq. 12), units e vF k0 / h; odd in V. Shapes as :func:`evaluate`."""
    return _fields(J, T, V, model, config, ("current",))["current"]


def spin(
    J: ArrayLike,
    T: ArrayLike,
    V: ArrayLike,
    *,
    model: Model | None = None,
    config: Config = Config(),
) -> Array:
    """Impurity spin (<Sx>, <Sy>, <Sz>) = Tr(S rho), shape (..., 3); S^x is along the edge."""
    return evaluate(J, T, V, model=model, config=config).spin


def density_matrix(
    J: ArrayLike,
    T: ArrayLike,
    V: ArrayLike,
    *,
    model: Model | None = None,
    config: Config = Config(),
) -> Array:
    """Stationary impurity density matrix (Eq. 10 = 0), shape (..., d, d), d = 2S + 1, complex.

    Where the stationary state is not unique (a single non-zero coupling or one effective
    coupling direction, J = 0, or T = V = 0) this is the state reached from rho = 1/d.
    """
    return evaluate(J, T, V, model=model, config=config).density_matrix


def evaluate_grid(
    J: ArrayLike,
    T: ArrayLike,
    V: ArrayLike,
    *,
    model: Model | None = None,
    config: Config = Config(),
) -> Observables:
    """Factorized path: every J against every (T, V) pair.

    Args:
        J: couplings, shape (nJ, 3) (or (nJ, 3, 3) with ``Model(exchange="tensor")``).
        T, V: the (T, V) pairs, shape (nP,) each (units vF*k0).
        model: as for :func:`evaluate`.

    Returns:
        Observables with leading shape (nJ, nP). The energy integrals are computed once per pair
        and combined with all J; agrees with :func:`evaluate` to ~1e-15.
    """
    check_precision()
    config = _config.check_config(config)
    model, strategy = _model(model, config)
    J, T, V = _as_real("J", J), _as_real("T", T), _as_real("V", V)
    tail = _j_tail(model)
    _check_j_shape(J, tail, "nJ")
    if J.ndim != 1 + len(tail):
        raise DomainError(f"J must have shape (nJ, {', '.join(map(str, tail))}), got {J.shape}")
    if T.ndim != 1 or T.shape != V.shape:
        raise DomainError(f"T and V must both have shape (nP,), got T{T.shape}, V{V.shape}")
    _check_values(J, T, V, model, strategy, config, box=False)
    if strategy == PAPER:
        out = observables.grid(J, T, V, config)
    else:
        out = family.grid(J, T, V, model, config, strategy)
    if all(_is_concrete(x) for x in jax.tree_util.tree_leaves(out.error)):
        warn_accuracy(out.error, config, strategy.options, stacklevel=3)
    return out
