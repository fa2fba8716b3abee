"""Packaging: environment.yml and pyproject.toml list the same packages and lower bounds."""

import re
import tomllib
from pathlib import Path

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
        item = re.match(r"^  - ([^\s#:]+)\s*$", line)
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
