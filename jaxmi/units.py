"""Physical units at the edge of jaxmi: kelvin, millivolt and meV to the engine's vF*k0 units.

The engine is unitless (the README's Units table): temperatures and biases are energies in units of
the spin-texture scale ``E0 = vF * k0``. Measured data come in kelvin and millivolt, and E0 is
quoted in meV. This module is the one place that converts; :mod:`jaxmi.fitting` and the command line
use it, the physics modules never do.

Every function is pure and works on floats, numpy arrays and JAX arrays (also under ``jit`` and
``grad``: ``E0_meV`` may be a fit parameter).

Example:
    >>> from jaxmi import units
    >>> round(float(units.temperature(10.0, 10.0)), 6)  # 10 K with E0 = 10 meV
    0.086173
    >>> float(units.bias(5.0, 10.0))  # eV = 5 meV with E0 = 10 meV
    0.5
"""

from __future__ import annotations

#: Boltzmann constant in meV/K: k_B / e with the exact SI values k_B = 1.380649e-23 J/K and
#: e = 1.602176634e-19 C (2019 SI), i.e. 8.617333262...e-5 eV/K.
KB_MEV_PER_K = 1.380649e-23 / 1.602176634e-19 * 1e3


def temperature(T_K, E0_meV):
    """Temperature in engine units: ``kB * T / E0``.

    Args:
        T_K: temperature in kelvin, any shape.
        E0_meV: spin-texture scale ``E0 = vF * k0`` in meV, broadcastable against ``T_K``.

    Returns:
        ``kB T / E0`` (dimensionless, the engine's ``T``), broadcast shape.
    """
    return KB_MEV_PER_K * T_K / E0_meV


def bias(V_mV, E0_meV):
    """Bias in engine units: ``e V / E0``.

    Args:
        V_mV: bias voltage in millivolt, any shape (``e * 1 mV = 1 meV``).
        E0_meV: spin-texture scale ``E0 = vF * k0`` in meV, broadcastable against ``V_mV``.

    Returns:
        ``e V / E0`` (dimensionless, the engine's ``V``), broadcast shape.
    """
    return V_mV / E0_meV


def temperature_K(T, E0_meV):
    """Inverse of :func:`temperature`: engine ``T`` (units of E0) to kelvin."""
    return T * E0_meV / KB_MEV_PER_K


def bias_mV(V, E0_meV):
    """Inverse of :func:`bias`: engine ``V`` (= eV in units of E0) to millivolt."""
    return V * E0_meV
