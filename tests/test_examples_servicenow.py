"""The ServiceNow mapping example loads onto the canonical tables with its satmodel.toml only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from satmodel.features import build_panel
from satmodel.features.components import component_summary, problem_summary
from satmodel.sources import open_source
from satmodel.validation import quarantine

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "servicenow" / "satmodel.toml"


@pytest.fixture
def source():
    source = open_source(EXAMPLE)
    yield source
    source.close()


def test_export_maps_onto_canonical_incidents(source):
    report = quarantine(source)
    assert report.ok, report.problem_lines()
    assert {"incidents", "components", "customers", "surveys"} <= set(source.tables)
    incidents = source.frame("incidents").set_index("incident_id")
    assert len(incidents) == 8
    first = incidents.loc["INC0010001"]
    assert first.customer_id == "ACME" and first.component_id == "db-prod-01"
    assert first.problem_id == "PRB0040001" and first.severity == 1
    assert first.start_ts == pd.Timestamp("2025-03-03 10:00", tz="UTC")
    assert bool(incidents.loc["INC0010005", "planned"]) and not bool(first.planned)
    assert pd.isna(incidents.loc["INC0010003", "problem_id"])
    components = source.frame("components").set_index("component_id")
    assert components.loc["db-prod-01", "kind"] == "database"
    assert pd.isna(components.loc["cdn-edge", "service"])


def test_planned_patching_is_not_downtime(source):
    panel = build_panel(source).set_index(["customer_id", "month"])
    acme = panel.loc[("ACME", "2025-03")]
    # 10:00..14:00 on the database and 12:00..12:45 on login overlap: 240 minutes
    assert acme.downtime_minutes == pytest.approx(240.0)
    assert acme.planned_downtime_minutes == pytest.approx(120.0)
    assert acme.availability_pct == pytest.approx(100 * (1 - 240 / (31 * 1440)))


def test_components_and_problems_of_the_export(source):
    summary = component_summary(source, "2025-03", "2025-04").set_index("component_id")
    assert summary.loc["db-prod-01", "incidents"] == 3  # the planned two are left out
    assert summary.loc["db-prod-01", "customers_affected"] == 2
    problems = problem_summary(source, "2025-03", "2025-04").set_index("problem_id")
    assert problems.loc["PRB0040001", "occurrences"] == 2
    assert problems.loc["PRB0040001", "last_seen"] == pd.Timestamp("2025-04-14 16:00", tz="UTC")


def test_an_unknown_configuration_item_is_quarantined(tmp_path):
    folder = EXAMPLE.parent
    for name in ("cmdb_ci.csv", "customers.csv", "surveys.csv", "satmodel.toml"):
        (tmp_path / name).write_text((folder / name).read_text())
    text = (folder / "incident_export.csv").read_text().replace("cdn-edge", "cdn-old")
    (tmp_path / "incident_export.csv").write_text(text)
    source = open_source(tmp_path / "satmodel.toml")
    report = quarantine(source)
    assert report.problem_lines() == [
        "incidents.component_id: 1 row unknown component (not in components) (e.g. cdn-old)"
    ]
    assert len(source.frame("incidents")) == 7
