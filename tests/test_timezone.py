"""Local-time months end to end: ``[calendar] timezone`` decides the month of every event.

The tiny world has one customer and events at 2026-10-31T20:00Z, which is 04:00 on
1 November in Shanghai (UTC+8, no daylight saving): in UTC they belong to October, in
Asia/Shanghai to November. Expected values are counted by hand from the tables below.
"""

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import write_tables

from satmodel import features
from satmodel.calendar import minutes_in_month
from satmodel.errors import InputError
from satmodel.features import build_panel, build_responses, downtime_intervals, engines, months
from satmodel.features.components import (
    component_downtime,
    component_summary,
    downtime_total,
    downtime_without,
    problem_summary,
)
from satmodel.features.telemetry import operations_by_month
from satmodel.insights.components import counterfactual
from satmodel.reporting import component_scorecard
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


# Components in local months: incident a (db) starts 2025-02-28T20:00Z, 04:00 on 1 March in
# Shanghai; b (net) runs 23:00..01:00 Shanghai time (15:00..17:00Z), 60 minutes in each local
# month, starting in February; d (net) runs 23:00..02:00 UTC across the UTC month end (all of
# it 1 March in Shanghai); c (db) is an hour on 10 March; p is a planned five hours on db (not
# downtime). Change x0 (failed, db) at 03:00 on 1 March Shanghai, an hour before a.
COMPONENT_WORLD = {
    "customers": CUSTOMERS,
    "usage": usage(["2025-02", "2025-03"]),
    "components": "component_id,name,kind\ndb,Database,database\nnet,Network,network\n",
    "incidents": (
        "incident_id,customer_id,start_ts,end_ts,severity,component_id,problem_id,planned\n"
        "a,c1,2025-02-28T20:00:00Z,2025-02-28T22:00:00Z,1,db,P1,\n"
        "b,c1,2025-02-28T15:00:00Z,2025-02-28T17:00:00Z,2,net,,\n"
        "d,c1,2025-02-28T23:00:00Z,2025-03-01T02:00:00Z,2,net,,\n"
        "c,c1,2025-03-10T10:00:00Z,2025-03-10T11:00:00Z,2,db,P1,\n"
        "p,c1,2025-03-12T00:00:00Z,2025-03-12T05:00:00Z,3,db,,true\n"
    ),
    "changes": "change_id,customer_id,ts,failed,component_id\nx0,,2025-02-28T19:00:00Z,true,db\n",
    "surveys": "response_id,customer_id,ts,csat,nps\nr1,c1,2025-03-15T00:00:00Z,4,8\n",
}
# by hand, per month: downtime minutes and (incidents starting, MTTR hours) per component
COMPONENT_EXPECTED = {
    "UTC": {
        "2025-02": ({"db": 120.0, "net": 180.0}, {"db": (1, 2.0), "net": (2, 2.5)}),
        "2025-03": ({"db": 60.0, "net": 120.0}, {"db": (1, 1.0), "net": (0, None)}),
    },
    SHANGHAI: {
        "2025-02": ({"db": 0.0, "net": 60.0}, {"db": (0, None), "net": (1, 2.0)}),
        "2025-03": ({"db": 180.0, "net": 240.0}, {"db": (2, 1.5), "net": (1, 3.0)}),
    },
}


@pytest.mark.parametrize("zone", ["UTC", SHANGHAI])
def test_component_months_follow_the_calendar_zone(tmp_path, zone):
    source = open_source(world(tmp_path, zone, COMPONENT_WORLD))
    quarantine(source)
    panel = build_panel(source).set_index("month")
    for month, (down, stats) in COMPONENT_EXPECTED[zone].items():
        summary = component_summary(source, month, month).set_index("component_id")
        assert summary["downtime_minutes"].to_dict() == pytest.approx(down), month
        for component, (count, mttr) in stats.items():
            assert summary.loc[component, "incidents"] == count, (month, component)
            if mttr is None:
                assert np.isnan(summary.loc[component, "mttr_hours"]), (month, component)
            else:
                assert summary.loc[component, "mttr_hours"] == pytest.approx(mttr)
        # the same customer-month as the panel's: its downtime and its incidents
        assert downtime_total(source, month, month) == panel.loc[month, "downtime_minutes"]
        assert summary["incidents"].sum() == panel.loc[month, "incidents"]
        per_customer = component_downtime(source, month, month)
        assert set(per_customer["month"]) <= {month}
        assert per_customer["downtime_minutes"].sum() == pytest.approx(sum(down.values()))
    march = "2025-03"
    db = component_summary(source, march, march).set_index("component_id").loc["db"]
    in_march = zone == SHANGHAI  # x0 is on 1 March in Shanghai, 28 February in UTC
    assert (db.changes, db.failed_changes_with_incident) == (int(in_march), int(in_march))
    problems = problem_summary(source, march, march).set_index("problem_id")
    assert problems.loc["P1", "incidents"] == (2 if in_march else 1)
    left = downtime_without(source, "component_id", march, march).set_index("component_id")
    assert list(left["month"]) == [march] * len(left)
    # without db, net's March minutes are left; without net, db's (none overlap)
    expected = COMPONENT_EXPECTED[zone][march][0]
    assert left["downtime_minutes"].to_dict() == {"db": expected["net"], "net": expected["db"]}


@pytest.mark.parametrize("zone", ["UTC", SHANGHAI])
def test_scorecard_mttr_is_the_panels(tmp_path, zone):
    """One MTTR: the operations scorecard's per component and the panel's, by start month,
    planned maintenance left out."""
    source = open_source(world(tmp_path, zone, COMPONENT_WORLD))
    quarantine(source)
    panel = build_panel(source).set_index("month")
    operations = operations_by_month(source, "2025-02", "2025-03").set_index("month")
    for month, (_, stats) in COMPONENT_EXPECTED[zone].items():
        card = component_scorecard(SimpleNamespace(source=source, month=month, ids=None))
        card = card.set_index("component")
        started = {c: s for c, s in stats.items() if s[0]}
        names = {"db": "Database", "net": "Network"}
        # an incident only running into the month neither counts nor lists its component
        assert sorted(card.index) == sorted(names[c] for c in started), month
        for component, (count, mttr) in started.items():
            row_ = card.loc[names[component]]
            assert (row_["incidents"], row_["mttr_hours"]) == (count, pytest.approx(mttr))
        # one customer: the mean over the components' incidents is the panel's MTTR
        hours = sum(n * h for n, h in started.values()) / sum(n for n, _ in started.values())
        assert panel.loc[month, "mttr_hours"] == pytest.approx(hours)
        assert operations.loc[month, "mttr_hours"] == pytest.approx(hours)


def test_counterfactual_availability_uses_the_local_month_minutes(tmp_path):
    """Berlin's March 2025 has an hour less (daylight saving from the 30th): the panel and
    the component counterfactual both divide by its 44,580 minutes."""
    berlin = "Europe/Berlin"
    source = open_source(world(tmp_path, berlin, COMPONENT_WORLD))
    quarantine(source)
    panel = build_panel(source)
    minutes = 31 * 1440 - 60
    assert minutes_in_month("2025-03", berlin) == minutes
    march = panel.loc[panel["month"] == "2025-03"]
    assert march["downtime_minutes"].tolist() == [240.0]  # c and d: a and b are February
    assert march["availability_pct"].tolist() == pytest.approx([100 * (1 - 240 / minutes)])
    same = counterfactual(panel, march[["customer_id", "month", "downtime_minutes"]], berlin)
    assert same.loc[march.index, "availability_pct"].tolist() == march["availability_pct"].tolist()
    left = pd.DataFrame({"customer_id": ["c1"], "month": ["2025-03"], "downtime_minutes": [30.0]})
    rows = counterfactual(panel, left, berlin)
    assert rows.loc[march.index, "availability_pct"].tolist() == pytest.approx(
        [100 * (1 - 30 / minutes)]
    )


def test_value_availability_step_uses_the_local_month_minutes():
    """+0.1 point of availability in Berlin's March 2025 (44,580 minutes, DST) is 44.58
    minutes less downtime, not the 44.64 of a UTC month."""
    from satmodel.insights.value import _step

    rows = pd.DataFrame(
        {"customer_id": ["a", "b"], "month": ["2025-03", "2025-03"],
         "availability_pct": [99.0, 100.0], "downtime_minutes": [446.4, 0.0]}
    )  # fmt: skip
    moved = _step(rows, ("availability_pct",), "Europe/Berlin")
    assert moved["downtime_minutes"].tolist() == pytest.approx([446.4 - 44.58, 0.0])
    assert moved["availability_pct"].tolist() == pytest.approx([99.1, 100.0])
