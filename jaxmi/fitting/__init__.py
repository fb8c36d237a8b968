"""Least-squares fits of couplings and the spin-texture scale to a measured edge conductance.

Model (physical units; docs/fitting.md)::

    G / G0 = 1 + n * dG(J; kB T / E0, e V / E0) + offset

with G0 = e^2/h, so ``1`` is the conductance of one ballistic helical edge in units of e^2/h,
``dG`` the impurity correction of :func:`jaxmi.conductance` (the differential conductance dI/dV
at bias V), ``J`` the couplings (``Jx, Jy, Jz``, or ``J`` for an isotropic impurity), ``E0 = vF k0``
in meV, ``n`` the number of impurities and ``offset`` a constant, both fixed by default.
T is in kelvin and V in millivolt (:mod:`jaxmi.units`).

Beyond the paper's model (``model=`` a :class:`jaxmi.Model`: impurity spin S, texture kind), the
Fermi level ``mu0_meV`` (meV from the Dirac point; the engine's mu0 is ``mu0_meV / E0``) and the
texture's parameters (``texture_scale``, ``texture_exponent`` of a power law, in units of E0 and
dimensionless; ``texture_c0, texture_c1, ...`` of a polynomial in eps / E0) are parameters like the
others, free or fixed by name. The paper's model with none of them free runs exactly the paper
path of the engine (same output); anything else its general path (:mod:`jaxmi.family`).

The residuals ``(model - G) / G_err`` are minimised with optimistix's Levenberg-Marquardt, the one
solver of every model (paper or family, whichever integration strategy the engine chooses); its
Jacobian is forward-mode autodiff through :func:`jaxmi.conductance` (the master equation and its
V-derivative), never finite differences. Bounds are smooth reparametrisations (exp for one bound,
a logistic for two), so the solver itself is unconstrained. Standard errors come from the
Jacobian in the physical parameters at the optimum, ``cov = (J^T J)^-1``, scaled by the residual
variance when no ``G_err`` is given.

With ``posterior=True`` (``jaxmi fit --posterior``) the free parameters are also sampled with
NUTS (blackjax) on the same likelihood, started around the optimum in coordinates whitened by
its linearised covariance (:mod:`jaxmi.fitting.posterior`): quantiles, R-hat, ESS, a corner plot.

Compilation: the model appears in one compiled program, the residuals with their Jacobian
(:mod:`jaxmi.fitting.problem`), jitted on the number of free parameters, the number of points
(padded to a multiple of 16 with zero-weight points), the quadrature ``Config`` and the model's
static part (spin, texture kind; None for the paper's model). Which parameters are free, their
bounds, fixed values, starts and data are traced arrays, so a new data set of similar size or
another choice of free parameters reuses it. The solver's step is a second, small program with
no model in it (:mod:`jaxmi.fitting.solve`), driven one step at a time: neither grows with the
number of iterations.

Modules: :mod:`~jaxmi.fitting.parameters` (names, defaults, bounds, the bound transform),
:mod:`~jaxmi.fitting.data` (the CSV table), :mod:`~jaxmi.fitting.problem` (model, residuals,
Jacobian), :mod:`~jaxmi.fitting.solve` (the solver, identifiability, covariance),
:mod:`~jaxmi.fitting.posterior` (NUTS draws, :class:`Posterior`),
:mod:`~jaxmi.fitting.profile` (profile-likelihood intervals),
:mod:`~jaxmi.fitting.joint` (global fits: several data sets, shared and per-dataset parameters,
a TOML spec), :mod:`~jaxmi.fitting.result` (:class:`FitResult`, notes),
:mod:`~jaxmi.fitting.api` (:func:`fit`), :mod:`~jaxmi.fitting.files` (:func:`fit_file`: CSV or
spec in, JSON and figures out). The command line's option parsing is in :mod:`jaxmi.cli`.
"""

from __future__ import annotations

from jaxmi.fitting.api import fit
from jaxmi.fitting.data import CSV_COLUMNS, CSV_UNITS, Data, read_csv
from jaxmi.fitting.files import fit_file
from jaxmi.fitting.joint import Dataset, GlobalFitResult, fit_global, read_spec
from jaxmi.fitting.parameters import (
    COUPLINGS,
    DEFAULT_BOUNDS,
    DEFAULT_FIXED,
    DEFAULT_START,
    MU0,
    PARAMETERS,
    POWER_LAW_PARAMETERS,
    family_parameters,
)
from jaxmi.fitting.posterior import Posterior
from jaxmi.fitting.problem import PAD, model
from jaxmi.fitting.result import CORRELATION_WARN, FitResult, describe_model
from jaxmi.fitting.solve import RANK_TOL

__all__ = [
    "COUPLINGS",
    "CORRELATION_WARN",
    "CSV_COLUMNS",
    "CSV_UNITS",
    "DEFAULT_BOUNDS",
    "DEFAULT_FIXED",
    "DEFAULT_START",
    "MU0",
    "PAD",
    "PARAMETERS",
    "POWER_LAW_PARAMETERS",
    "RANK_TOL",
    "Data",
    "Dataset",
    "GlobalFitResult",
    "FitResult",
    "Posterior",
    "describe_model",
    "family_parameters",
    "fit",
    "fit_file",
    "fit_global",
    "model",
    "read_csv",
    "read_spec",
]
