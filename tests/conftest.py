"""Shared fixtures: tiny canonical tables written as CSV files into a temporary folder; and the
one rule for tests that need something the machine may lack (../shared data, PostgreSQL,
Chromium): skipped locally with the reason, a failure under ``CI=true``, where .ci/run provides
everything and a skip would hide a test that never ran.
"""

import os
from pathlib import Path
from typing import NoReturn

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def in_ci() -> bool:
    """True under CI (``CI=true``, set by .ci/run and by CI services)."""
    return os.environ.get("CI") == "true"


def skip_or_fail(reason: str, allow_module_level: bool = False) -> NoReturn:
    """Skip the test with ``reason``; under CI fail it instead."""
    if in_ci():
        pytest.fail(f"{reason}; CI=true, where it must be present", pytrace=False)
    pytest.skip(reason, allow_module_level=allow_module_level)


def shared_data(path: Path) -> Path:
    """``path`` (under ../shared/data) if it exists, else skip the test (fail it under CI)."""
    if not Path(path).exists():
        skip_or_fail(f"shared data {path} not present (../shared/data beside the project root)")
    return path


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.requires(available, reason=...)``: a ``skipif`` that fails under CI."""
    for marker in item.iter_markers(name="requires"):
        if not marker.args[0]:
            skip_or_fail(marker.kwargs["reason"])


GOOD_TABLES = {
    "customers": """customer_id,segment,region,tier,expected_availability_pct,expected_latency_p95_ms,expected_resolution_hours
c1,enterprise,eu,gold,99.95,300,4
c2,smb,us,,99.5,800,24
""",
    "usage": """customer_id,month,active_users
c1,2025-01,1000
c2,2025-01,50
c1,2025-02,1100
c2,2025-02,55
""",
    "requests": """customer_id,ts,latency_ms,ok
c1,2025-01-03T10:00:00Z,120,true
c1,2025-02-03T10:00:00Z,250,false
c2,2025-01-05T11:00:00Z,900,true
""",
    "surveys": """response_id,customer_id,ts,csat,nps
r1,c1,2025-01-10T09:00:00Z,5,9
r2,c2,2025-02-11T09:00:00Z,2,
""",
}


def write_tables(folder: Path, tables: dict[str, str]) -> Path:
    """Write {table: csv_text} as <table>.csv files into folder and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def good_folder(tmp_path: Path) -> Path:
    """A folder of small canonical tables that meet the contract."""
    return write_tables(tmp_path / "good", GOOD_TABLES)
