"""Packaging: environment.yml and pyproject.toml agree; notebooks and examples are package data;
the Makefile's lab and test targets."""

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]


def _name_and_bound(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(>=\s*[0-9][^,;<\s]*)?", requirement)
    name = match.group(1).lower().replace("_", "-")
    bound = (match.group(3) or "").replace(" ", "")
    return name, bound


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    return dict(_name_and_bound(r) for r in requirements)


def _conda_requirements() -> dict[str, str]:
    entries = {}
    text = (ROOT / "environment.yml").read_text()
    dependencies = text.split("dependencies:", 1)[1]
    for line in dependencies.splitlines():
        # conda packages at two spaces; pip-only packages (not on conda-forge) at six
        item = re.match(r"^  - ([^\s#:]+)\s*$", line) or re.match(
            r"^      - ([A-Za-z][^\s#:]*)\s*(#.*)?$", line
        )
        if item and item.group(1) != "pip" and not item.group(1).startswith("python"):
            name, bound = _name_and_bound(item.group(1))
            entries[name] = bound
    return entries


def test_environment_yml_matches_pyproject():
    assert _conda_requirements() == _pyproject_requirements()


def test_environment_yml_installs_the_package_itself():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s+- -e \.\s*$", text, re.MULTILINE)


def test_every_dependency_has_a_lower_bound():
    assert all(bound for bound in _pyproject_requirements().values())


def test_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["satmodel"] == "satmodel.cli:main"


def test_notebooks_and_examples_are_package_data_through_symlinks():
    for folder in ("notebooks", "examples"):
        link = ROOT / "satmodel" / folder
        assert link.is_symlink(), f"satmodel/{folder} must be a symlink (one copy in git)"
        assert link.readlink() == Path("..") / folder
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["satmodel"]
    shipped = [
        path
        for folder in ("notebooks", "examples")
        for path in (ROOT / "satmodel" / folder).rglob("*")
        if path.is_file() and ".ipynb_checkpoints" not in path.parts
    ]
    assert len(shipped) >= 10
    missing = [
        path.relative_to(ROOT / "satmodel").as_posix()
        for path in shipped
        if not any(path.relative_to(ROOT / "satmodel").match(pattern) for pattern in globs)
    ]
    assert missing == [], f"not matched by [tool.setuptools.package-data]: {missing}"


def _make_dry_run(target: str) -> str:
    if shutil.which("make") is None:
        skip_or_fail("make not installed (apt-get install make)")
    done = subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_make_lab_registers_the_project_kernel_and_runs_as_root():
    commands = _make_dry_run("lab")
    assert "-m ipykernel install --sys-prefix --name satmodel" in commands
    lab = next(line for line in commands.splitlines() if "jupyter lab" in line)
    assert ("--allow-root" in lab) == (os.geteuid() == 0)


def test_make_test_fast_leaves_out_the_slow_tests_and_make_test_does_not():
    assert '-m pytest -m "not slow and not spark"' in _make_dry_run("test-fast")
    assert "not slow" not in _make_dry_run("test")
