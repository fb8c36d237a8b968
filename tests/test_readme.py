"""The README's Python example runs as written (it is what a new user copies first)."""

import pathlib
import re

import numpy as np
import pytest

README = (pathlib.Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.slow
def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "README has no python example"
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102
    assert scope["dG"].shape == (2, 30)
    # The isotropic row is tiny and negative (T^4 law); Jz > Jx lies below -Jx^2/2.
    assert np.all(np.asarray(scope["dG"][0]) < 0)
    assert np.all(np.asarray(scope["dG"][1]) < -(0.25**2) / 2)
    assert np.all(np.isfinite(np.asarray(scope["g"])))


def test_readme_opens_with_the_two_commands():
    first = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1).splitlines()
    assert first[0].startswith("pip install . && jaxmi run sweeps/fig2.toml")
    assert first[1].startswith('pip install ".[test]" && python -m pytest -q')


def test_ci_runs_the_readme_commands_verbatim():
    ci = (pathlib.Path(__file__).parents[1] / ".ci" / "run").read_text().splitlines()
    first = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1).splitlines()
    for line in first[:2]:
        command = line.split("#")[0].strip()
        assert command in ci, command


@pytest.mark.slow
def test_readme_model_family_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    scope: dict = {}
    exec(compile(blocks[1], "README.md", "exec"), scope)  # noqa: S102
    # A gate makes the isotropic correction finite at T = 0.05 (O(mu0^2 T^2), negative).
    assert -1e-2 < float(scope["dG"]) < 0
    rho = np.asarray(scope["rho"])
    assert rho.shape == (3, 3)
    np.testing.assert_allclose(np.trace(rho), 1.0, atol=1e-14)
    assert np.isfinite(float(scope["dmu"].mu0))


def test_readme_notebook_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    monkeypatch.chdir(tmp_path)  # it writes phase.h5 in the current directory
    scope: dict = {}
    exec(compile(blocks[2], "README.md", "exec"), scope)  # noqa: S102
    assert scope["ds"].conductance.dims == ("J", "T", "V")
    assert scope["line"].dims == ("Jz", "T") and scope["line"].shape == (11, 30)
    # On the line Jz = Jx the linear conductance is -Jx^2/2 at every T (Eq. 14).
    np.testing.assert_allclose(scope["line"].sel(Jz=0.25).values, -(0.25**2) / 2, rtol=1e-10)
    np.testing.assert_array_equal(scope["dG"].values.reshape(-1), scope["line"].values.reshape(-1))
