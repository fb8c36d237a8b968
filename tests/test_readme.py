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
    assert first[0].startswith("pip install . && jaxmi run fig2 -o fig2.h5")
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


REPO = pathlib.Path(__file__).parents[1]
#: What users read: the README, docs/ and the package (its docstrings, messages and specs).
USER_FILES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *sorted((REPO / "jaxmi").rglob("*.py")),
    *sorted((REPO / "jaxmi").rglob("*.toml")),
]
#: Files that exist only where jaxmi was developed, not in the repository or the package.
NOT_SHIPPED = ("shared/", "DESIGN.md", "STYLE.md")
#: A file of the repository named in the text, e.g. tests/test_asymptotics.py.
REPO_FILE = re.compile(r"\b(?:tests|docs|benchmarks)/[\w./-]+\.(?:py|md|json|png)")


def test_user_docs_cite_only_files_users_have():
    # A reader of the README, docs/ or a docstring has this repository (or the package) only: no
    # pointer to the development notes (shared/, DESIGN.md, STYLE.md), and every tests/, docs/
    # or benchmarks/ file named exists (e.g. not a renamed test module).
    assert len(USER_FILES) > 30
    found = []
    for path in USER_FILES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{path.relative_to(REPO)}:{n}"
            found += [f"{where}: {word}" for word in NOT_SHIPPED if word in line]
            for name in REPO_FILE.findall(line):
                if not (REPO / name).exists():
                    found.append(f"{where}: {name} does not exist")
    assert not found, "\n".join(found)
