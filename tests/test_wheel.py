"""The wheel, installed into a fresh venv, runs the demo and the monthly report from an empty
folder outside the project: nothing may depend on a source checkout.

The copy of the project that is built keeps ``satmodel/notebooks`` and ``satmodel/examples`` as
symlinks, as git stores them, so the test also proves that setuptools copies them as files.
The fresh venv gets every dependency from the package index (about a minute here, from pip's
cache and the local index).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_BUILT = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "data", "reports"
)
pytestmark = pytest.mark.slow


def _run(command: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(wheel, venv's bin folder, environment without this checkout on PYTHONPATH)."""
    base = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    source = base / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_BUILT)
    assert (source / "satmodel" / "notebooks").is_symlink()
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", base / "dist", source], base, env
    )
    (wheel,) = (base / "dist").glob("satmodel-*.whl")
    _run([sys.executable, "-m", "venv", base / "venv"], base, env)
    bin_dir = base / "venv" / "bin"
    began = time.perf_counter()
    _run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--no-compile", wheel], base, env)
    print(f"fresh venv: wheel and dependencies installed in {time.perf_counter() - began:.0f} s")
    return wheel, bin_dir, env


def test_wheel_holds_every_notebook_and_example(installed):
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"satmodel/{path.relative_to(ROOT).as_posix()}"
        for folder in ("notebooks", "examples")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in (".ipynb", ".toml", ".md")
    }
    assert len(expected) >= 10
    assert expected <= names, sorted(expected - names)
    assert "satmodel/templates/satmodel_report/index.html.j2" in names


def test_installed_package_runs_demo_and_report_from_an_empty_folder(installed, tmp_path):
    _, bin_dir, env = installed
    work = tmp_path / "empty"
    work.mkdir()
    where = _run([bin_dir / "python", "-c", "import satmodel; print(satmodel.__file__)"], work, env)
    assert Path(where.stdout.strip()).is_relative_to(bin_dir.parent), where.stdout
    _run([bin_dir / "satmodel", "demo", "--out", "d", "--duckdb", "d/s.duckdb"], work, env)
    _run([bin_dir / "satmodel", "report", "--data", "d/s.duckdb", "--out", "r"], work, env)
    reports = list((work / "r").glob("*/report.html"))
    assert len(reports) == 1 and reports[0].stat().st_size > 10_000
    assert (reports[0].parent / "summary.json").is_file()
