"""A fit from a CSV file to a JSON document and a figure (:func:`fit_file`, behind ``jaxmi
fit``), with jaxmi's rule for replacing files (:mod:`jaxmi.outputs`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

from jaxmi import outputs
from jaxmi.config import Config
from jaxmi.errors import FitError, StoreError
from jaxmi.fitting import posterior as _post
from jaxmi.fitting.api import fit
from jaxmi.fitting.data import read_csv
from jaxmi.fitting.joint import GlobalFitResult
from jaxmi.fitting.result import FitResult
from jaxmi.model import Model


def fit_file(
    path,
    *,
    free: str | Sequence[str] | None = None,
    start: Mapping[str, float] | None = None,
    fix: Mapping[str, float] | None = None,
    bounds: Mapping | None = None,
    starts: int = 1,
    seed: int = 0,
    output=None,
    plot=None,
    config: Config = Config(),
    model: Model | None = None,
    overwrite: bool = False,
    posterior: bool = False,
    prior: Mapping[str, tuple[float, float]] | None = None,
    chains: int = _post.CHAINS,
    warmup: int = _post.WARMUP,
    draws: int = _post.DRAWS,
    progress=None,
    profile: Sequence[str] | str | None = None,
) -> FitResult | GlobalFitResult:
    """:func:`jaxmi.fitting.read_csv`, :func:`jaxmi.fitting.fit` (the other arguments are
    its), then write the JSON document (``output``) and the figure (``plot``); with
    ``posterior`` also the corner plot of the draws, with ``profile`` the profiles, beside
    ``plot`` (:func:`companion_path`).

    A ``path`` ending in ``.toml`` is a global fit's spec (:func:`jaxmi.fitting.joint.read_spec`:
    several CSV files, shared and per-dataset parameters, the model): it runs
    :func:`jaxmi.fitting.joint.fit_global` and returns its
    :class:`~jaxmi.fitting.joint.GlobalFitResult`; the parameters and the model then come from
    the spec only.

    The outputs are checked before the fit starts (:func:`jaxmi.outputs.check_output`): an
    existing file is replaced only if it is a jaxmi fit result (``output``) or a picture jaxmi
    stamped (``plot``), or with ``overwrite``.

    Raises:
        FitError: as ``read_csv`` and ``fit``; ``output`` and ``plot`` are one file.
        StoreError: an output cannot or may not be written.
    """
    if os.fspath(path).endswith(".toml"):
        return _fit_spec(
            path,
            given={
                "free": free,
                "start": start,
                "fix": fix,
                "bounds": bounds,
                "model": model,
            },
            posterior=posterior,
            prior=prior,
            chains=chains,
            warmup=warmup,
            draws=draws,
            progress=progress,
            starts=starts,
            seed=seed,
            output=output,
            plot=plot,
            config=config,
            overwrite=overwrite,
            profile=profile,
        )
    data = read_csv(path)
    corner = companion_path(plot, "corner") if plot is not None and posterior else None
    prof = companion_path(plot, "profile") if plot is not None and profile else None
    _check_outputs(output, plot, overwrite, [x for x in (prof, corner) if x is not None])
    result = fit(
        data.T_K,
        data.V_mV,
        data.G,
        data.G_err,
        free=free,
        start=start,
        fix=fix,
        bounds=bounds,
        starts=starts,
        seed=seed,
        config=config,
        model=model,
        posterior=posterior,
        prior=prior,
        chains=chains,
        warmup=warmup,
        draws=draws,
        progress=progress,
        profile=profile,
    )
    if output is not None:
        _write_json(result, output, overwrite)
    if plot is not None:
        from jaxmi.plot import corner_figure, fit_figure, profile_figure

        fit_figure(result, plot, overwrite=overwrite)
        if prof is not None:
            profile_figure(result, prof, overwrite=overwrite)
        if corner is not None:
            corner_figure(result, corner, overwrite=overwrite)
    return result


def _fit_spec(
    path,
    *,
    given,
    posterior,
    prior,
    chains,
    warmup,
    draws,
    progress,
    starts,
    seed,
    output,
    plot,
    config,
    overwrite,
    profile,
):
    """A global fit from a TOML spec (:mod:`jaxmi.fitting.joint`): its data sets, shared and
    per-dataset parameters and model come from the spec, not from the arguments."""
    from jaxmi.fitting.joint import fit_global, read_spec

    named = [k for k, v in given.items() if v]
    if named:
        option = {"model": "spin/texture"}.get(named[0], named[0])
        raise FitError(
            f"{path}: a global fit takes its {option} from the spec file (write it there), not "
            "from the command line"
        )
    datasets, options = read_spec(path)
    prof = companion_path(plot, "profile") if plot is not None and profile else None
    corner = companion_path(plot, "corner") if plot is not None and posterior else None
    _check_outputs(output, plot, overwrite, [x for x in (prof, corner) if x is not None])
    result = fit_global(
        datasets,
        **options,
        starts=starts,
        seed=seed,
        config=config,
        profile=profile,
        posterior=posterior,
        prior=prior,
        chains=chains,
        warmup=warmup,
        draws=draws,
        progress=progress,
    )
    if output is not None:
        _write_json(result, output, overwrite)
    if plot is not None:
        from jaxmi.plot import corner_figure, global_fit_figure, profile_figure

        global_fit_figure(result, plot, overwrite=overwrite)
        if prof is not None:
            profile_figure(result, prof, overwrite=overwrite)
        if corner is not None:
            corner_figure(result, corner, overwrite=overwrite)
    return result


def companion_path(plot, kind: str) -> str:
    """Where ``jaxmi fit --plot FIG.png`` writes its other figures: FIG_corner.png (the
    posterior's corner plot), FIG_profile.png (the profiles), in the same folder and format."""
    root, ext = os.path.splitext(os.fspath(plot))
    return f"{root}_{kind}{ext or '.png'}"


def _check_outputs(output, plot, overwrite: bool, companions=()) -> None:
    """Fail before the fit if matplotlib is missing or an output may not be written."""
    if plot is not None:
        from jaxmi.plot import _matplotlib

        _matplotlib()
        outputs.check_output(plot, outputs.PICTURE, overwrite=overwrite, option="--plot")
    for picture in companions:
        outputs.check_output(picture, outputs.PICTURE, overwrite=overwrite, option="--plot")
    if plot is not None and output is not None:
        for picture in (plot, *companions):
            if os.path.realpath(output) == os.path.realpath(picture):
                raise FitError(
                    f"{picture}: the JSON result (-o) and the figure (--plot) are one file"
                )
    if output is not None:
        outputs.check_output(output, outputs.FIT, overwrite=overwrite)


def _write_json(result: FitResult, output, overwrite: bool) -> None:
    outputs.check_output(output, outputs.FIT, overwrite=overwrite)  # again: the fit took time
    try:
        with open(output, "w") as fh:
            json.dump(result.to_json(), fh, indent=2)
            fh.write("\n")
    except OSError as err:
        raise StoreError(f"{output}: cannot write: {err.strerror or err}") from None
