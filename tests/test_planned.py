"""Planned maintenance: left out of availability, downtime and budgets by default (hand cases)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from test_features import customers, incidents, make_source, row, surveys

from satmodel.config import Config, Thresholds, load_config
from satmodel.errors import InputError
from satmodel.features import build_panel, downtime_by_period, downtime_intervals
from satmodel.features.telemetry import incidents_in_month, operations_by_month

MINUTES_MARCH = 31 * 24 * 60

# c1: 60 unplanned minutes, 120 planned minutes overlapping 30 of them; c2: only planned.
ROWS = [
    ("c1", "2025-03-03T10:00", "2025-03-03T11:00", False),
    ("c1", "2025-03-03T10:30", "2025-03-03T12:30", True),
    ("c2", "2025-03-09T02:00", "2025-03-09T04:00", True),
    ("c2", "2025-03-20T00:00", "2025-03-20T00:10", None),  # null planned = unplanned
]


def planned_incidents() -> pd.DataFrame:
    frame = incidents([r[:3] for r in ROWS])
    frame["planned"] = pd.array([r[3] for r in ROWS], dtype="boolean")
    return frame


def source_for(folder, exclude: bool | None = None):
    source = make_source(
        folder,
        {
            "customers": customers("c1", "c2"),
            "incidents": planned_incidents(),
            "surveys": surveys([("c1", "2025-03-15T00:00:00", 4)]),
        },
    )
    if exclude is not None:
        source.config = replace(source.config, thresholds=Thresholds(exclude_planned=exclude))
    return source


def test_planned_minutes_left_out_of_availability(tmp_path):
    panel = build_panel(source_for(tmp_path))
    c1, c2 = row(panel, "c1", "2025-03"), row(panel, "c2", "2025-03")
    assert c1.downtime_minutes == pytest.approx(60.0)
    assert c1.planned_downtime_minutes == pytest.approx(120.0)
    assert c1.availability_pct == pytest.approx(100 * (1 - 60 / MINUTES_MARCH))
    assert c1.incidents == 1 and c1.mttr_hours == pytest.approx(1.0)
    assert c2.downtime_minutes == pytest.approx(10.0)
    assert c2.planned_downtime_minutes == pytest.approx(120.0)
    assert c2.incidents == 1


def test_planned_counts_when_not_excluded(tmp_path):
    panel = build_panel(source_for(tmp_path, exclude=False))
    c1 = row(panel, "c1", "2025-03")
    # union 10:00..12:30
    assert c1.downtime_minutes == pytest.approx(150.0)
    assert c1.availability_pct == pytest.approx(100 * (1 - 150 / MINUTES_MARCH))
    assert c1.planned_downtime_minutes == pytest.approx(120.0)
    assert c1.incidents == 2


def test_data_without_planned_column_is_unchanged(tmp_path):
    frame = planned_incidents().drop(columns="planned")
    source = make_source(
        tmp_path,
        {
            "customers": customers("c1", "c2"),
            "incidents": frame,
            "surveys": surveys([("c1", "2025-03-15T00:00:00", 4)]),
        },
    )
    panel = build_panel(source)
    c1 = row(panel, "c1", "2025-03")
    assert c1.downtime_minutes == pytest.approx(150.0)
    assert c1.planned_downtime_minutes == 0.0


def test_budget_telemetry_leaves_planned_out(tmp_path):
    source = source_for(tmp_path)
    intervals = downtime_intervals(source, "2025-03")
    assert len(intervals[intervals.customer_id == "c1"]) == 1
    minutes = (intervals.end_ts - intervals.start_ts).dt.total_seconds().sum() / 60
    assert minutes == pytest.approx(70.0)
    daily = downtime_by_period(source, "2025-03")
    assert daily.downtime_minutes.sum() == pytest.approx(70.0)
    assert set(daily.day) == {3, 20}  # the planned night of the 9th is not spent
    assert len(incidents_in_month(source, "2025-03")) == 2
    ops = operations_by_month(source, "2025-03", "2025-03")
    assert ops.incidents.iloc[0] == 2


def test_budget_telemetry_counts_planned_when_told(tmp_path):
    daily = downtime_by_period(source_for(tmp_path, exclude=False), "2025-03")
    assert daily.downtime_minutes.sum() == pytest.approx(150.0 + 120.0 + 10.0)


def test_exclude_planned_config_key(tmp_path):
    path = tmp_path / "satmodel.toml"
    path.write_text("[thresholds]\nexclude_planned = false\nchange_incident_window_hours = 6\n")
    config = load_config(path)
    assert config.thresholds.exclude_planned is False
    assert config.thresholds.change_incident_window_hours == 6.0
    assert Config().thresholds.exclude_planned is True
    path.write_text('[thresholds]\nexclude_planned = "no"\n')
    with pytest.raises(InputError, match="exclude_planned must be true or false"):
        load_config(path)
