"""Local-time months end to end: ``[calendar] timezone`` decides the month of every event.

The tiny world has one customer and events at 2026-10-31T20:00Z, which is 04:00 on
1 November in Shanghai (UTC+8, no daylight saving): in UTC they belong to October, in
Asia/Shanghai to November. Expected values are counted by hand from the tables below.
"""

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_tables

from satmodel import features
from satmodel.calendar import minutes_in_month
from satmodel.errors import InputError
from satmodel.features import build_panel, build_responses, downtime_intervals, engines, months
from satmodel.reporting.data import load_report_data
from satmodel.sources import open_source
from satmodel.validation import quarantine

SHANGHAI = "Asia/Shanghai"
EVENT = "2026-10-31T20:00:00Z"  # 2026-11-01 04:00 in Shanghai
CUSTOMERS = """customer_id,segment,region,tier,expected_availability_pct,expected_latency_p95_ms,expected_resolution_hours
c1,enterprise,eu,gold,99.9,500,8
"""


def usage(months):
    return "customer_id,month,active_users\n" + "".join(f"c1,{m},100\n" for m in months)


# Incident A runs 22:00-02:00 Shanghai time across local midnight (16:00Z); incident B
# starts at EVENT and lasts 6 hours (all of it November in Shanghai, 4 h October in UTC).
WORLD = {
    "customers": CUSTOMERS,
    "usage": usage(["2026-09", "2026-10", "2026-11"]),
    "requests": f"customer_id,ts,latency_ms,ok\nc1,{EVENT},100,true\n",
    "surveys": f"response_id,customer_id,ts,csat,nps\nr1,c1,{EVENT},5,10\n",
    "complaints": f"complaint_id,customer_id,ts,category\nk1,c1,{EVENT},billing\n",
    "incidents": (
        "incident_id,customer_id,start_ts,end_ts,severity\n"
        "a,c1,2026-10-31T14:00:00Z,2026-10-31T18:00:00Z,2\n"
        f"b,c1,{EVENT},2026-11-01T02:00:00Z,1\n"
    ),
}
# (October, November) by hand: which month the event rows and downtime minutes fall in
EXPECTED = {
    "UTC": {
        "requests": (1, 0),
        "csat_n": (1, 0),
        "complaints": (1, 0),
        "incidents": (2, 0),
        "downtime_minutes": (240.0 + 240.0, 120.0),
    },
    SHANGHAI: {
        "requests": (0, 1),
        "csat_n": (0, 1),
        "complaints": (0, 1),
        "incidents": (1, 1),
        "downtime_minutes": (120.0, 120.0 + 360.0),
    },
}


def world(folder: Path, zone: str, tables=None) -> Path:
    """The tables as CSV with a satmodel.toml setting ``zone``; returns the toml."""
    write_tables(folder, tables or WORLD)
    toml = folder / "satmodel.toml"
    toml.write_text(f'[source]\npath = "."\n\n[calendar]\ntimezone = "{zone}"\n')
    return toml


def row(panel: pd.DataFrame, month: str) -> pd.Series:
    rows = panel.loc[panel["month"] == month]
    assert len(rows) == 1
    return rows.iloc[0]


@pytest.mark.parametrize("zone", ["UTC", SHANGHAI])
def test_panel_months_follow_the_calendar_zone(tmp_path, zone):
    panel = build_panel(open_source(world(tmp_path, zone)))
    assert list(panel["month"]) == ["2026-09", "2026-10", "2026-11"]
    october, november = row(panel, "2026-10"), row(panel, "2026-11")
    for column, (in_october, in_november) in EXPECTED[zone].items():
        assert (october[column], november[column]) == (in_october, in_november), column
    for month, down in zip(("2026-10", "2026-11"), EXPECTED[zone]["downtime_minutes"], strict=True):
        expected = 100.0 * (1.0 - down / minutes_in_month(month))
        assert row(panel, month)["availability_pct"] == pytest.approx(expected)
    survey_month = "2026-10" if zone == "UTC" else "2026-11"
    assert row(panel, survey_month)["csat_mean"] == 5.0
    assert row(panel, survey_month)["nps_score"] == 100.0


def test_downtime_splits_at_local_midnight(tmp_path):
    source = open_source(world(tmp_path, SHANGHAI))
    october = downtime_intervals(source, "2026-10")
    assert list(october["start_ts"]) == [pd.Timestamp("2026-10-31T14:00Z")]
    assert list(october["end_ts"]) == [pd.Timestamp("2026-10-31T16:00Z")]  # local midnight
    november = downtime_intervals(source, "2026-11")
    assert list(november["start_ts"]) == [
        pd.Timestamp("2026-10-31T16:00Z"),
        pd.Timestamp(EVENT),
    ]


@pytest.mark.parametrize("zone", ["UTC", SHANGHAI])
def test_responses_take_the_local_month(tmp_path, zone):
    source = open_source(world(tmp_path, zone))
    responses = build_responses(source, build_panel(source))
    month = "2026-10" if zone == "UTC" else "2026-11"
    assert list(responses["month"]) == [month]
    # joined with the panel row of that month, which holds this response
    assert list(responses["csat_n"]) == [1]
    assert list(responses["ts"].dt.tz_convert("UTC")) == [pd.Timestamp(EVENT)]


def test_a_constant_offset_zone_is_utc_shifted_by_it(tmp_path):
    """Shanghai is always UTC+8: its panel is the UTC panel of timestamps 8 hours later."""
    shifted = {}
    for name, text in WORLD.items():
        lines = text.splitlines()
        shifted[name] = "\n".join(
            [lines[0]]
            + [
                ",".join(
                    (pd.Timestamp(v) + pd.Timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
                    if v.endswith("Z")
                    else v
                    for v in line.split(",")
                )
                for line in lines[1:]
            ]
        )
    local = build_panel(open_source(world(tmp_path / "local", SHANGHAI)))
    utc = build_panel(open_source(world(tmp_path / "utc", "UTC", shifted)))
    pd.testing.assert_frame_equal(local, utc)


@pytest.mark.parametrize(
    ("zone", "kept", "rejected"),
    [("UTC", ["r_event"], "r_early"), (SHANGHAI, ["r_early"], "r_event")],
)
def test_validation_window_is_local_months(tmp_path, zone, kept, rejected):
    # usage gives the data's months: October only
    tables = {
        "customers": CUSTOMERS,
        "usage": usage(["2026-10"]),
        "requests": "customer_id,ts,latency_ms,ok\nc1,2026-10-15T12:00:00Z,100,true\n",
        "surveys": (
            "response_id,customer_id,ts,csat,nps\n"
            f"r_event,c1,{EVENT},5,10\n"  # October in UTC, November in Shanghai
            "r_early,c1,2026-09-30T18:00:00Z,4,8\n"  # September in UTC, October in Shanghai
        ),
    }
    source = open_source(world(tmp_path, zone, tables))
    report = quarantine(source)
    assert report.window == ("2026-10", "2026-10")
    clean = source.con.execute("SELECT response_id FROM surveys").fetchall()
    assert [r[0] for r in clean] == kept
    out = source.con.execute(
        "SELECT json_extract_string(row_json, '$.response_id'), reason FROM rejected "
        "WHERE table_name = 'surveys'"
    ).fetchall()
    assert out == [(rejected, "outside the data's months 2026-10..2026-10")]


@pytest.mark.parametrize(
    ("zone", "months"), [("UTC", ["2026-09"]), (SHANGHAI, ["2026-09", "2026-10"])]
)
def test_report_default_month_is_the_last_complete_local_month(tmp_path, zone, months):
    # at EVENT October is over in Shanghai (the current month is November) but not in UTC
    now = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)
    data = load_report_data(world(tmp_path, zone), now=now)
    assert data.month == months[-1]
    assert list(data.panel["month"].unique()) == months


def test_request_passes_split_at_local_month_starts(tmp_path, monkeypatch):
    """Pieces of the request aggregation cut at Shanghai month starts: no month in two."""
    names = ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
    # two requests on each local 1st, either side of UTC midnight (08:00 in Shanghai), so
    # pieces cut at UTC month starts would put each local month in two pieces
    starts = [pd.Timestamp(f"{m}-01T08:00").tz_localize(SHANGHAI) for m in names]
    requests = "customer_id,ts,latency_ms,ok\n" + "".join(
        f"c1,{(s + pd.Timedelta(minutes=k)).tz_convert('UTC'):%Y-%m-%dT%H:%M:%SZ},{300 + 10 * (k + 30)},true\n"
        for s in starts
        for k in (-30, 90)
    )
    tables = {
        "customers": CUSTOMERS,
        "usage": usage(names),
        "requests": requests,
        "complaints": "complaint_id,customer_id,ts,category\nk1,c1,2026-10-15T12:00:00Z,x\n",
    }
    source = open_source(world(tmp_path, SHANGHAI, tables))
    whole = build_panel(source)
    monkeypatch.setattr(engines, "request_passes", lambda con, rows: 3)
    assert features.request_plan(source, SHANGHAI)[0] == 3
    pieces = build_panel(source)
    pd.testing.assert_frame_equal(pieces, whole)
    assert list(pieces["requests"]) == [2] * len(names)
    assert list(pieces["latency_p50_ms"]) == [900.0] * len(names)  # of 300 and 1500


def test_features_months_checks_months_like_calendar():
    with pytest.raises(InputError, match="expected a month as YYYY-MM"):
        months.check_month("２０２６-10")  # full-width digits are no month
    assert months.days_in_month("2028-02") == 29
    assert months.month_index("2026-10") - months.month_index("2025-10") == 12
