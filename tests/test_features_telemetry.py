"""Tests of satmodel.features.telemetry against brute force: minute-by-minute unions, counts."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from test_features import changes, customers, incidents, make_source, requests, row, surveys

from satmodel.errors import InputError
from satmodel.features import (
    apdex_grid,
    build_panel,
    covered_days,
    downtime_by_period,
    downtime_intervals,
    incidents_in_month,
)
from satmodel.features.telemetry import customer_values, operations_by_month

MONTH = "2025-03"
MONTH_START = pd.Timestamp("2025-03-01", tz="UTC")
MONTH_END = pd.Timestamp("2025-04-01", tz="UTC")

# (customer_id, start, end): overlapping, nested, touching, duplicated and month-straddling
HAND_INCIDENTS = [
    ("c1", "2025-03-01T10:00", "2025-03-01T12:00"),
    ("c1", "2025-03-01T11:00", "2025-03-01T13:30"),  # overlaps the one before
    ("c1", "2025-03-01T10:15", "2025-03-01T10:45"),  # inside the first
    ("c1", "2025-03-01T13:30", "2025-03-01T14:00"),  # touches the second
    ("c1", "2025-02-28T23:00", "2025-03-01T01:00"),  # straddles the month start
    ("c2", "2025-03-31T22:30", "2025-04-01T02:00"),  # straddles the month end
    ("c2", "2025-03-10T00:00", "2025-03-12T06:00"),  # crosses days
    ("c2", "2025-03-11T23:00", "2025-03-13T00:30"),  # overlaps it, crosses more days
    ("c3", "2025-02-02T00:00", "2025-02-03T00:00"),  # before the month
    ("c3", "2025-04-02T00:00", "2025-04-03T00:00"),  # after it
    ("c4", "2025-03-05T05:05", "2025-03-05T05:50"),
    ("c4", "2025-03-05T05:05", "2025-03-05T05:50"),  # the same outage twice
    ("c5", "2025-02-20T00:00", "2025-04-10T00:00"),  # covers the whole month
    ("c6", "2025-02-27T12:00", "2025-03-01T00:00"),  # ends at the month start: no downtime
]


def minute(stamp: pd.Timestamp) -> int:
    return int(stamp.timestamp()) // 60


def brute_minutes(frame: pd.DataFrame, month_start=MONTH_START, month_end=MONTH_END) -> dict:
    """customer_id -> the set of minutes of the month some incident covers."""
    lo, hi = minute(month_start), minute(month_end)
    covered: dict[str, set[int]] = {}
    for customer, start, end in frame[["customer_id", "start_ts", "end_ts"]].itertuples(
        index=False
    ):
        span = set(range(max(minute(start), lo), min(minute(end), hi)))
        if span:
            covered.setdefault(customer, set()).update(span)
    return covered


def interval_minutes(intervals: pd.DataFrame) -> dict:
    covered: dict[str, set[int]] = {}
    for customer, start, end in intervals.itertuples(index=False):
        covered.setdefault(customer, set()).update(range(minute(start), minute(end)))
    return covered


def random_incidents(seed: int = 3, n: int = 120) -> pd.DataFrame:
    """Minute-aligned incidents of 8 customers over February..April 2025, many overlapping."""
    rng = np.random.default_rng(seed)
    first = pd.Timestamp("2025-02-01", tz="UTC")
    starts = first + pd.to_timedelta(rng.integers(0, 89 * 24 * 60, n), unit="min")
    lengths = pd.to_timedelta(rng.choice([1, 7, 59, 61, 300, 1440, 4000], n), unit="min")
    frame = incidents([(f"c{i}", None, None) for i in rng.integers(0, 8, n)])
    return frame.assign(start_ts=starts, end_ts=starts + lengths)


@pytest.fixture(scope="module", params=["hand", "random"])
def incident_source(request, tmp_path_factory):
    frame = incidents(HAND_INCIDENTS) if request.param == "hand" else random_incidents()
    ids = sorted(set(frame["customer_id"]) | {"c9"})  # c9: never down
    tables = {
        "customers": customers(*ids),
        "incidents": frame,
        "surveys": surveys([("c9", "2025-03-15T00:00:00", 4)]),
    }
    return frame, make_source(tmp_path_factory.mktemp(f"telemetry_{request.param}"), tables)


def test_downtime_intervals_are_the_union(incident_source):
    frame, source = incident_source
    got = downtime_intervals(source, MONTH)
    assert list(got.columns) == ["customer_id", "start_ts", "end_ts"]
    assert str(got["start_ts"].dt.tz) == "UTC" and str(got["end_ts"].dt.tz) == "UTC"
    assert (got["start_ts"] >= MONTH_START).all() and (got["end_ts"] <= MONTH_END).all()
    assert (got["start_ts"] < got["end_ts"]).all()
    for _, group in got.groupby("customer_id"):
        # disjoint, sorted, and merged: the next island starts after the previous one ended
        assert (group["start_ts"].iloc[1:].to_numpy() > group["end_ts"].iloc[:-1].to_numpy()).all()
    assert interval_minutes(got) == brute_minutes(frame)


def test_downtime_matches_the_panel(incident_source):
    frame, source = incident_source
    panel = build_panel(source)
    brute = brute_minutes(frame)
    for customer in sorted(set(panel["customer_id"])):
        one = row(panel, customer, MONTH)
        assert one.downtime_minutes == pytest.approx(len(brute.get(customer, ())), abs=1e-9)


@pytest.mark.parametrize("freq", ["D", "h"])
def test_downtime_by_period(incident_source, freq):
    frame, source = incident_source
    got = downtime_by_period(source, MONTH, freq=freq)
    keys = ["day", "hour"] if freq == "h" else ["day"]
    assert list(got.columns) == ["customer_id", *keys, "downtime_minutes"]
    expected = Counter()
    for customer, minutes in brute_minutes(frame).items():
        for m in minutes:
            offset = m - minute(MONTH_START)
            key = (
                (offset // 1440 + 1, offset % 1440 // 60) if freq == "h" else (offset // 1440 + 1,)
            )
            expected[(customer, *key)] += 1
    actual = {tuple(r[:-1]): r[-1] for r in got.itertuples(index=False)}
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, abs=1e-9), key
    assert got["day"].dtype == "int64" and got["downtime_minutes"].dtype == "float64"
    assert got.equals(got.sort_values(["customer_id", *keys]))


def test_hand_cases_in_numbers(tmp_path):
    """A few totals worked out by hand, independent of the brute force."""
    tables = {
        "customers": customers("c1", "c2", "c5", "c6"),
        "incidents": incidents(HAND_INCIDENTS),
        "surveys": surveys([("c1", "2025-03-15T00:00:00", 4)]),
    }
    source = make_source(tmp_path, tables)
    got = downtime_intervals(source, MONTH)
    by_customer = got.groupby("customer_id").apply(
        lambda g: ((g["end_ts"] - g["start_ts"]).dt.total_seconds() / 60).sum(),
        include_groups=False,
    )
    assert by_customer["c1"] == 60 + 4 * 60  # 00:00-01:00 and 10:00-14:00
    assert by_customer["c2"] == 90 + 3 * 24 * 60 + 30  # 31st 22:30-24:00, 10th-13th 00:30
    assert by_customer["c4"] == 45
    assert by_customer["c5"] == 31 * 24 * 60
    assert "c3" not in by_customer and "c6" not in by_customer
    daily = downtime_by_period(source, MONTH)
    c2 = daily.loc[daily["customer_id"] == "c2"].set_index("day")["downtime_minutes"]
    assert c2.to_dict() == {10: 1440.0, 11: 1440.0, 12: 1440.0, 13: 30.0, 31: 90.0}
    hourly = downtime_by_period(source, MONTH, freq="h")
    c1 = hourly.loc[hourly["customer_id"] == "c1"]
    assert list(zip(c1["day"], c1["hour"], c1["downtime_minutes"], strict=True)) == [
        (1, 0, 60.0),
        (1, 10, 60.0),
        (1, 11, 60.0),
        (1, 12, 60.0),
        (1, 13, 60.0),
    ]


def test_incidents_in_month(incident_source):
    frame, source = incident_source
    got = incidents_in_month(source, MONTH)
    assert list(got.columns) == ["customer_id", "start_ts", "end_ts"]
    overlapping = frame.loc[(frame["start_ts"] < MONTH_END) & (frame["end_ts"] > MONTH_START)]
    expected = sorted(
        (c, s, e) for c, s, e in overlapping[["customer_id", "start_ts", "end_ts"]].to_numpy()
    )
    assert list(got.itertuples(index=False, name=None)) == expected
    assert str(got["start_ts"].dt.tz) == "UTC"


def test_empty_month_gives_empty_frames(incident_source):
    _, source = incident_source
    assert downtime_intervals(source, "2024-06").empty
    empty = downtime_by_period(source, "2024-06", freq="h")
    assert empty.empty and list(empty.columns) == ["customer_id", "day", "hour", "downtime_minutes"]
    assert incidents_in_month(source, "2024-06").empty


def test_bad_arguments_are_input_errors(incident_source, tmp_path):
    _, source = incident_source
    for bad in ("2025-3", "2025-13", 202503, "March"):
        with pytest.raises(InputError, match="month"):
            downtime_intervals(source, bad)
    with pytest.raises(InputError, match="freq"):
        downtime_by_period(source, MONTH, freq="W")
    plain = make_source(
        tmp_path,
        {"customers": customers("c1"), "surveys": surveys([("c1", "2025-03-01T00:00:00", 3)])},
    )
    for function in (downtime_intervals, downtime_by_period, incidents_in_month):
        with pytest.raises(InputError, match="incidents: table not found"):
            function(plain, MONTH)
    with pytest.raises(InputError, match="requests: table not found"):
        apdex_grid(plain, [500])


# ------------------------------------------------------------------------------ coverage


def test_covered_days(tmp_path):
    tables = {
        "customers": customers("c1", "c2"),
        "requests": requests(
            [
                ("c1", "2025-02-03T00:00:00", 100, True),
                ("c1", "2025-03-10T12:00:00", 100, True),  # day 10
            ]
        ),
        "surveys": surveys([("c2", "2025-03-14T06:00:00", 4)]),  # day 14
        # starts on day 20, ends in April: an incident's end does not extend the data
        "incidents": incidents([("c2", "2025-03-19T00:01:00", "2025-04-02T00:00:00")]),
    }
    source = make_source(tmp_path, tables)
    assert covered_days(source, "2025-03") == 19.0
    assert covered_days(source, "2025-02") == 28.0  # not the last month: complete
    assert covered_days(source, "2024-12") == 31.0  # no data at all in it
    with pytest.raises(InputError, match="month"):
        covered_days(source, "2025")


def test_covered_days_exact_day_edge(tmp_path):
    tables = {
        "customers": customers("c1"),
        "surveys": surveys([("c1", "2025-04-03T00:00:00", 4), ("c1", "2025-03-01T00:00:00", 4)]),
    }
    source = make_source(tmp_path, tables)
    assert covered_days(source, "2025-04") == 2.0  # up to 04-03 00:00: two whole days
    assert covered_days(source, "2025-03") == 31.0


# --------------------------------------------------------------------------------- Apdex


@pytest.fixture(scope="module")
def request_source(tmp_path_factory):
    rng = np.random.default_rng(5)
    n = 4000
    start = pd.Timestamp("2025-01-01", tz="UTC")
    edges = np.array([100.0, 400.0, 250.0, 1000.0, 500.0, 2000.0])  # T and 4T exactly too
    latency = np.where(rng.random(n) < 0.2, rng.choice(edges, n), rng.lognormal(5.8, 1.0, n))
    frame = pd.DataFrame(
        {
            "customer_id": rng.choice(["c1", "c2", "c3"], n),
            "ts": start + pd.to_timedelta(rng.integers(0, 90 * 86400, n), unit="s"),
            "latency_ms": np.round(latency, 3),
            "ok": rng.random(n) > 0.1,
        }
    )
    frame["ts"] = frame["ts"].astype("datetime64[us, UTC]")
    tables = {
        "customers": customers("c1", "c2", "c3", "c4"),
        "requests": frame,
        "surveys": surveys([("c4", "2025-01-15T00:00:00", 4)]),
    }
    return frame, make_source(tmp_path_factory.mktemp("apdex"), tables)


def test_apdex_grid_counts(request_source):
    frame, source = request_source
    grid = apdex_grid(source, [500, 100, 250, 100])
    assert list(grid.columns) == [
        "customer_id",
        "month",
        "t_ms",
        "requests",
        "satisfied",
        "tolerating",
    ]
    frame = frame.assign(month=frame["ts"].dt.strftime("%Y-%m"))
    rows = []
    for (customer, month), group in frame.groupby(["customer_id", "month"]):
        for t in (100.0, 250.0, 500.0):
            ok = group.loc[group["ok"], "latency_ms"]
            rows.append(
                (
                    customer,
                    month,
                    t,
                    len(group),
                    int((ok <= t).sum()),
                    int(((ok > t) & (ok <= 4 * t)).sum()),
                )
            )
    assert list(grid.itertuples(index=False, name=None)) == rows
    for column in ("requests", "satisfied", "tolerating"):
        assert grid[column].dtype == "int64"


def test_apdex_grid_agrees_with_the_panel(request_source):
    _, source = request_source
    panel = build_panel(source)
    grid = apdex_grid(source, [source.config.thresholds.apdex_t_ms])
    merged = panel.merge(grid, on=["customer_id", "month", "requests"])  # same counts too
    assert len(merged) == int((panel["requests"] > 0).sum()) > 0
    apdex = (merged["satisfied"] + merged["tolerating"] / 2) / merged["requests"]
    np.testing.assert_allclose(apdex, merged["apdex"], atol=1e-12)


@pytest.mark.parametrize("bad", [[], [0, 100], [-5], ["fast"], 500, [np.inf], [[100, 200]]])
def test_apdex_grid_rejects_bad_thresholds(request_source, bad):
    _, source = request_source
    with pytest.raises(InputError, match="t_grid"):
        apdex_grid(source, bad)


def test_insights_apdex_by_threshold_from_the_grid(request_source):
    """The insight's wide Apdex table is the grid's counts, one column per T."""
    from satmodel.insights import apdex_by_threshold

    _, source = request_source
    wide = apdex_by_threshold(source, [250, 100.5])
    assert list(wide.columns) == ["customer_id", "month", "requests", "apdex_100.5", "apdex_250"]
    grid = apdex_grid(source, [100.5, 250])
    for t, column in ((100.5, "apdex_100.5"), (250.0, "apdex_250")):
        one = grid.loc[grid["t_ms"] == t].reset_index(drop=True)
        expected = (one["satisfied"] + one["tolerating"] / 2) / one["requests"]
        np.testing.assert_allclose(wide[column], expected, rtol=0, atol=1e-15)
        assert (wide[["customer_id", "month"]] == one[["customer_id", "month"]]).all().all()
    with pytest.raises(InputError, match="t_grid"):  # was a ValueError traceback
        apdex_by_threshold(source, ["fast"])


# ---------------------------------------------------------------------------- operations


def test_operations_by_month_by_hand(tmp_path):
    tables = {
        "customers": customers("c1", "c2"),
        # releases (customer_id null) on Jan 10, Jan 20 12:00 and Mar 1: gaps 10.5 and 11.5 + 28 = 39.5 days
        "changes": changes(
            [
                (None, "2025-01-10T00:00:00", False),
                ("c1", "2025-01-15T00:00:00", True),
                (None, "2025-01-20T12:00:00", True),
                ("c2", "2025-03-01T00:00:00", False),
                (None, "2025-03-01T00:00:00", False),
                ("c1", "2025-04-01T00:00:00", False),  # after the last month asked for
            ]
        ),
        # counted in the month they start, with their whole duration
        "incidents": incidents(
            [
                ("c1", "2025-01-31T23:00:00", "2025-02-01T01:00:00"),
                ("c2", "2025-01-05T00:00:00", "2025-01-05T01:00:00"),
                ("c2", "2024-12-31T00:00:00", "2025-01-01T00:00:00"),  # before the first month
            ]
        ),
        "surveys": surveys([("c1", "2025-01-15T00:00:00", 4)]),
    }
    source = make_source(tmp_path, tables)
    got = operations_by_month(source, "2025-01", "2025-03")
    assert list(got["month"]) == ["2025-01", "2025-02", "2025-03"]
    assert list(got["changes"]) == [3, 0, 2]
    assert list(got["failed_changes"]) == [2, 0, 0]
    assert list(got["releases"]) == [2, 0, 1]
    assert got["days_between_releases"].tolist()[0] == pytest.approx(10.5)  # the first: none
    assert np.isnan(got["days_between_releases"].iloc[1])
    assert got["days_between_releases"].iloc[2] == pytest.approx(39.5)
    assert list(got["incidents"]) == [2, 0, 0]
    assert got["mttr_hours"].iloc[0] == pytest.approx(1.5)
    assert got["mttr_hours"].iloc[1:].isna().all()
    assert got["changes"].dtype == "int64" and got["mttr_hours"].dtype == "float64"
    with pytest.raises(InputError, match="comes after"):
        operations_by_month(source, "2025-03", "2025-01")


def test_operations_by_month_without_tables(tmp_path):
    tables = {"customers": customers("c1"), "surveys": surveys([("c1", "2025-01-15T00:00:00", 4)])}
    got = operations_by_month(make_source(tmp_path, tables), "2025-01", "2025-02")
    assert got["changes"].tolist() == [0, 0] and got["incidents"].tolist() == [0, 0]
    assert got["mttr_hours"].isna().all() and got["days_between_releases"].isna().all()


def test_customer_values(tmp_path):
    tables = {
        "customers": customers("c2", "c1", "c3", segment=["smb", "ent", None]),
        "surveys": surveys([("c1", "2025-01-15T00:00:00", 4)]),
    }
    source = make_source(tmp_path, tables)
    assert customer_values(source, "segment") == ["ent", "smb"]
    assert customer_values(source, "customer_id") == ["c1", "c2", "c3"]
    with pytest.raises(InputError, match="column"):
        customer_values(source, "region; DROP TABLE customers")
