"""The one-way data flow of docs/architecture.md, checked on every import of the package.

source -> validation -> features -> models -> insights -> notebooks (reporting) -> jobs: a module
imports only from its own step, the steps above it and the shared helpers. Entry points and
tools (the CLI, the demo company, the case studies, ``satmodel/__init__``) may import from
anywhere, and nothing imports them. Every import counts: module-level and inside functions,
``from satmodel.x import y`` and ``import satmodel.x``.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

import satmodel

PACKAGE = Path(satmodel.__file__).parent

# In the order of the flow: a module may import a module of its own step or of an earlier one.
STEPS = (
    "shared",
    "source",
    "validation",
    "features",
    "models",
    "insights",
    "notebooks",
    "jobs",
    "entry",
)

# Top-level module or package of satmodel -> its step. A new one must be placed here.
LAYERS = {
    "errors": "shared",
    "schema": "shared",
    "config": "shared",
    "config_spark": "shared",
    "calendar": "shared",
    "vocabulary": "shared",
    "hints": "shared",
    "resources": "shared",
    "plotting": "shared",
    "filemodes": "shared",
    "redaction": "shared",
    "sources": "source",
    "postgres": "source",
    "validation": "validation",
    "validation_spark": "validation",
    "features": "features",
    "models": "models",
    "evaluation": "models",  # cross-validation and diagnostics of the fitted models
    "workbook": "models",  # source -> validation -> panel -> default models, in one object
    "insights": "insights",
    "reporting": "notebooks",
    "jobs": "jobs",
    "cli": "entry",
    "__main__": "entry",
    "__init__": "entry",  # the lazy public API of ``import satmodel``
    "demo": "entry",
    "casestudies": "entry",
}


def package_modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (the notebooks and examples
    symlinks, which hold no package code, are not followed)."""
    modules = {}
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if not (Path(folder) / d).is_symlink())
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = Path(folder) / name
            parts = ["satmodel", *path.relative_to(PACKAGE).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def step_of(module: str) -> str | None:
    """The step of a dotted satmodel module name; None when it is not placed in LAYERS."""
    parts = module.split(".")
    return LAYERS.get(parts[1] if len(parts) > 1 else "__init__")


def imported_modules(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every satmodel module that ``source`` (the text of ``module``) imports, anywhere in it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative: resolved against the importing module's package
                base = module.split(".")[: len(module.split(".")) - node.level + is_package]
                target = ".".join([*base, *([node.module] if node.module else [])])
            if target == "satmodel":  # `from satmodel import reporting`: the module itself
                found += [
                    f"satmodel.{a.name}" if a.name in LAYERS else "satmodel" for a in node.names
                ]
            else:
                found.append(target)
    return [name for name in found if name == "satmodel" or name.startswith("satmodel.")]


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """``module -> imported module (step imports step)`` for each import against the flow."""
    step = step_of(module)
    problems = []
    for target in imported_modules(module, source, is_package):
        target_step = step_of(target)
        if target_step is None or STEPS.index(target_step) > STEPS.index(step):
            problems.append(f"{module} -> {target} ({step} imports {target_step})")
    return problems


def test_every_module_is_placed_in_a_step():
    unplaced = sorted(m for m in package_modules() if step_of(m) is None)
    assert not unplaced, f"add these to LAYERS in {__file__}: {unplaced}"


def test_layers_names_only_modules_that_exist():
    present = {m.split(".")[1] if "." in m else "__init__" for m in package_modules()}
    assert set(LAYERS) <= present, sorted(set(LAYERS) - present)
    assert set(LAYERS.values()) <= set(STEPS)


def test_imports_follow_the_flow():
    problems = []
    for module, path in package_modules().items():
        problems += violations(module, path.read_text(), path.name == "__init__.py")
    assert not problems, "imports against the flow:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        # a function-level import from a later step
        (
            "satmodel.sources.fake",
            "def session():\n    from satmodel.features.engines import spark_session\n",
            "satmodel.sources.fake -> satmodel.features.engines (source imports features)",
        ),
        # `import satmodel.x` at module level
        (
            "satmodel.validation",
            "import satmodel.insights.plans\n",
            "satmodel.validation -> satmodel.insights.plans (validation imports insights)",
        ),
        # a shared helper reaching into a step
        (
            "satmodel.config",
            "from satmodel.postgres import redact\n",
            "satmodel.config -> satmodel.postgres (shared imports source)",
        ),
        # `from satmodel import <module>`
        (
            "satmodel.models.fake",
            "from satmodel import reporting\n",
            "satmodel.models.fake -> satmodel.reporting (models imports notebooks)",
        ),
        # a step importing an entry point
        (
            "satmodel.jobs.fake",
            "from satmodel.cli import main\n",
            "satmodel.jobs.fake -> satmodel.cli (jobs imports entry)",
        ),
        # a relative import, resolved
        (
            "satmodel.features.fake",
            "from ..insights import what_if\n",
            "satmodel.features.fake -> satmodel.insights (features imports insights)",
        ),
        # a module nobody placed
        (
            "satmodel.reporting.fake",
            "from satmodel.newthing import x\n",
            "satmodel.reporting.fake -> satmodel.newthing (notebooks imports None)",
        ),
    ],
)
def test_checker_reports_a_forbidden_import(module, source, expected):
    assert violations(module, source) == [expected]


def test_checker_allows_the_flow():
    source = (
        "import os\n"
        "from satmodel.errors import InputError\n"
        "from satmodel.calendar import month_at\n"
        "from satmodel.sources.spark import spark_session\n"
        "from satmodel.validation import quarantine\n"
        "def f():\n"
        "    from satmodel.features.months import month_of\n"
    )
    assert violations("satmodel.features.fake", source) == []
    assert violations("satmodel.cli.fake", "from satmodel.jobs import report\n") == []
    assert violations("satmodel.redaction", "from satmodel.errors import InputError\n") == []
