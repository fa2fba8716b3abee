"""The conftest rule for missing prerequisites: skipped locally, a failure under CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CASES = """
import pytest
from conftest import shared_data, skip_or_fail


def test_missing_shared_data():
    shared_data(__import__("pathlib").Path("/nonexistent/shared/data/x.csv"))


@pytest.mark.requires(False, reason="chromium not installed")
def test_missing_program():
    pass


@pytest.mark.requires(True, reason="never shown")
def test_present_program():
    pass


def test_missing_driver():
    skip_or_fail("psycopg not installed")
"""


def _outcomes(tmp_path: Path, ci: str | None) -> tuple[int, str]:
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_cases.py").write_text(CASES, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    requires(available, reason): test\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "test_cases.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    return done.returncode, done.stdout


@pytest.mark.parametrize("ci", [None, "false"])
def test_missing_prerequisites_skip_locally_with_the_reason(tmp_path, ci):
    code, out = _outcomes(tmp_path, ci)
    assert code == 0 and "1 passed, 3 skipped" in out, out
    for reason in ("/nonexistent/shared/data/x.csv", "chromium not installed", "psycopg"):
        assert reason in out


def test_missing_prerequisites_fail_under_ci(tmp_path):
    code, out = _outcomes(tmp_path, "true")
    # a failing marker check is reported as an error in setup, the others as failures
    assert code == 1 and "2 failed, 1 passed, 1 error" in out, out
    assert "skipped" not in out
    for reason in ("/nonexistent/shared/data/x.csv", "chromium not installed", "psycopg"):
        assert reason in out
