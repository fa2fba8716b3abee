"""Shared fixtures: tiny canonical tables written as CSV files into a temporary folder."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

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
