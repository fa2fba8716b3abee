"""Report tables with answers computed by hand: burn rate, operations scorecard, drift, escaping.

Every expected number below is worked out in the comments from the small hand-made inputs.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest
from test_features import changes, customers, incidents, make_source, surveys

from satmodel import reporting
from satmodel.errors import InputError
from satmodel.features.telemetry import (
    downtime_by_period,
    downtime_intervals,
    operations_by_month,
)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --------------------------------------------------------------------------------------
# burn rate
#
# February 2025 has 28 days = 40,320 minutes; a 99.9% SLO allows 40.32 minutes per customer.
# Customer a (segment x): two overlapping incidents on Feb 3, 10:00-11:00 and 10:30-11:30:
#   their union is 90 minutes (not 120).
# Customer b (segment x): 23:30 Jan 31 to 00:30 Feb 1: 30 of its minutes fall in February.
# Customer c (segment y): no incident.

INTERVALS = pd.DataFrame(
    {
        "customer_id": ["a", "a", "b"],
        "start_ts": [ts("2025-02-03 10:00"), ts("2025-02-03 10:30"), ts("2025-01-31 23:30")],
        "end_ts": [ts("2025-02-03 11:00"), ts("2025-02-03 11:30"), ts("2025-02-01 00:30")],
    }
)
CUSTOMERS = pd.DataFrame({"customer_id": ["a", "b", "c"], "segment": ["x", "x", "y"]})


@pytest.fixture(scope="module")
def budget_source(tmp_path_factory):
    """INTERVALS as an incidents table (c never down), for the features' downtime."""
    tables = {
        "customers": customers("a", "b", "c"),
        "incidents": incidents(
            [
                (c, s.isoformat(), e.isoformat())
                for c, s, e in INTERVALS.itertuples(index=False, name=None)
            ]
        ),
        "surveys": surveys([("c", "2025-02-15T00:00:00", 4)]),
    }
    return make_source(tmp_path_factory.mktemp("budgets"), tables)


@pytest.fixture(scope="module")
def daily(budget_source):
    return downtime_by_period(budget_source, "2025-02")


def test_downtime_intervals_count_overlap_once(budget_source):
    merged = downtime_intervals(budget_source, "2025-02")
    assert list(merged["customer_id"]) == ["a", "b"]
    assert merged.iloc[0]["start_ts"] == ts("2025-02-03 10:00")
    assert merged.iloc[0]["end_ts"] == ts("2025-02-03 11:30")
    assert merged.iloc[1]["start_ts"] == ts("2025-02-01 00:00")  # clipped to the month


def test_downtime_by_day_clips_to_the_month(daily):
    assert daily.to_dict("records") == [
        {"customer_id": "a", "day": 3, "downtime_minutes": pytest.approx(90.0)},
        {"customer_id": "b", "day": 1, "downtime_minutes": pytest.approx(30.0)},
    ]


def test_burn_rates_by_hand(daily):
    burn = reporting.burn_rates(daily, CUSTOMERS, "2025-02", slo_pct=99.9).set_index("segment")
    assert list(burn.index) == ["x", "y", reporting.ALL_SEGMENTS]
    x = burn.loc["x"]
    assert x["customers"] == 2
    assert x["budget_minutes"] == pytest.approx(2 * 40.32)
    assert x["downtime_minutes"] == pytest.approx(120.0)
    assert x["error_budget_used_pct"] == pytest.approx(100 * 120 / 80.64)  # 148.8%
    assert x["elapsed_pct"] == pytest.approx(100.0)
    assert x["burn_rate"] == pytest.approx(120 / 80.64)  # whole month: used / budget
    # all 120 minutes fall in one 7-day window: (120 / 80.64) / (7 / 28)
    assert x["peak_7day_burn_rate"] == pytest.approx(120 / 80.64 * 4)
    assert x["status"] == "exhausted"
    y = burn.loc["y"]
    assert y["burn_rate"] == 0 and y["status"] == "on track"
    everyone = burn.loc[reporting.ALL_SEGMENTS]
    assert everyone["budget_minutes"] == pytest.approx(3 * 40.32)
    assert everyone["burn_rate"] == pytest.approx(120 / 120.96)  # 0.992: just on track
    assert everyone["status"] == "on track"


def test_burn_rate_halfway_through_the_month_doubles(daily):
    burn = reporting.burn_rates(daily, CUSTOMERS, "2025-02", 99.9, elapsed_days=14)
    burn = burn.set_index("segment")
    assert burn.at["x", "elapsed_pct"] == pytest.approx(50.0)
    assert burn.at["x", "burn_rate"] == pytest.approx(120 / 80.64 / 0.5)
    everyone = burn.loc[reporting.ALL_SEGMENTS]
    assert everyone["burn_rate"] == pytest.approx(120 / 120.96 / 0.5)
    assert everyone["status"] == "burning too fast"
    assert everyone["projected_used_pct"] == pytest.approx(100 * 120 / 120.96 / 0.5)


def test_burn_down_is_cumulative(daily):
    curve = reporting.burn_down(daily, CUSTOMERS, "2025-02", 99.9)
    x = curve.loc[curve["segment"] == "x"].set_index("day")["used_pct"]
    assert len(x) == 28
    assert x[1] == pytest.approx(100 * 30 / 80.64)
    assert x[2] == pytest.approx(100 * 30 / 80.64)
    assert x[3] == pytest.approx(100 * 120 / 80.64)
    assert x[28] == pytest.approx(100 * 120 / 80.64)


# --------------------------------------------------------------------------------------
# operations scorecard
#
# January (31 days): 4 changes, 1 failed, 1 of them a platform release (customer_id null) on
#   Jan 10; incidents of 0.5 h. February (28 days = 4 weeks): 2 changes, none failed, one
#   release on Feb 9 (30 days after the January one); incidents of 1 h and 3 h.

CHANGES = [
    ("a", "2025-01-02T00:00:00", False),
    (None, "2025-01-10T00:00:00", False),
    ("b", "2025-01-15T00:00:00", True),
    ("a", "2025-01-20T00:00:00", False),
    (None, "2025-02-09T00:00:00", False),
    ("c", "2025-02-20T00:00:00", False),
]
INCIDENTS = [
    ("a", "2025-01-05T10:00:00", "2025-01-05T10:30:00"),
    ("b", "2025-02-01T00:00:00", "2025-02-01T01:00:00"),
    ("c", "2025-02-10T12:00:00", "2025-02-10T15:00:00"),
]


@pytest.fixture(scope="module")
def operations_source(tmp_path_factory):
    tables = {
        "customers": customers("a", "b", "c"),
        "changes": changes(CHANGES),
        "incidents": incidents(INCIDENTS),
        "surveys": surveys([("a", "2025-01-15T00:00:00", 4)]),
    }
    return make_source(tmp_path_factory.mktemp("operations"), tables)


def test_operations_monthly_by_hand(operations_source):
    counts = operations_by_month(operations_source, "2025-01", "2025-02")
    monthly = reporting.operations_monthly(counts)
    assert list(monthly["month"]) == ["2025-01", "2025-02"]
    jan, feb = monthly.to_dict("records")
    assert jan["changes"] == 4
    assert jan["changes_per_week"] == pytest.approx(4 / (31 / 7))
    assert jan["change_failure_pct"] == pytest.approx(25.0)
    assert jan["releases"] == 1
    assert math.isnan(jan["days_between_releases"])  # no release before it
    assert jan["mttr_hours"] == pytest.approx(0.5)
    assert feb["changes_per_week"] == pytest.approx(0.5)
    assert feb["change_failure_pct"] == 0
    assert feb["releases_per_week"] == pytest.approx(0.25)
    assert feb["days_between_releases"] == pytest.approx(30.0)
    assert feb["incidents"] == 2
    assert feb["mttr_hours"] == pytest.approx(2.0)


def test_operations_scorecard_before_after(operations_source):
    monthly = reporting.operations_monthly(
        operations_by_month(operations_source, "2024-11", "2025-02")
    )
    card = reporting.operations_scorecard(monthly, "2025-02").set_index("kpi")
    assert list(card.index) == list(reporting.OPERATIONS)
    cfr = card.loc["change_failure_pct"]
    assert cfr["value"] == 0 and cfr["previous"] == pytest.approx(25.0)
    assert cfr["change"] == pytest.approx(-25.0)
    assert cfr["trend"] == "better"  # lower is better
    assert math.isnan(cfr["quarter_ago"])  # November: no changes, so no failure rate
    mttr = card.loc["mttr_hours"]
    assert mttr["change"] == pytest.approx(1.5) and mttr["trend"] == "worse"
    weekly = card.loc["changes_per_week"]
    assert weekly["quarter_ago"] == 0 and weekly["change_quarter"] == pytest.approx(0.5)
    assert weekly["trend"] == "-"  # no better direction
    html = reporting.show(card.reset_index(), key="ops").to_html()
    assert "Change failure rate" in html and "Same month last quarter" in html


# --------------------------------------------------------------------------------------
# drift of effects


def fake_fit(n_obs: float, rows: list[tuple[str, float, float]]):
    coefficients = pd.DataFrame(rows, columns=["term", "estimate", "std_error"])
    return SimpleNamespace(n_obs_=n_obs, coefficients_=coefficients)


def test_effect_drift_uses_the_nested_variance_and_flags_big_changes():
    before = reporting.ModelSection(
        results={"m": fake_fit(100, [("Intercept", 0, 1), ("x", 1.0, 0.2), ("z", 0.0, 0.1)])}
    )
    now = reporting.ModelSection(
        results={"m": fake_fit(125, [("Intercept", 0, 1), ("x", 1.5, 0.1), ("z", 0.05, 0.1)])}
    )
    drift = reporting.effect_drift(now, before).set_index("term")
    assert list(drift.index) == ["x", "z"]  # no intercept
    # x: nested variance 0.2^2 - 0.1^2 = 0.03 beats the sample-size one 0.01 x 0.25
    x = drift.loc["x"]
    assert x["method"] == "nested (Hausman)"
    assert x["se_difference"] == pytest.approx(math.sqrt(0.03))
    assert x["z"] == pytest.approx(0.5 / math.sqrt(0.03))  # 2.887
    assert x["p_value"] == pytest.approx(0.00389, abs=1e-5)
    assert bool(x["flagged"])
    # z: equal standard errors: the sample-size variance 0.01 x (125/100 - 1) = 0.0025
    z = drift.loc["z"]
    assert z["method"] == "sample size"
    assert z["se_difference"] == pytest.approx(0.05)
    assert z["z"] == pytest.approx(1.0)
    assert z["p_value"] == pytest.approx(0.3173, abs=1e-4)
    assert not bool(z["flagged"])
    text = reporting.drift_text(drift.reset_index(), "2025-02").data
    assert "x" in text and "February 2025" in text


def test_effect_drift_without_previous_models_is_empty():
    now = reporting.ModelSection(results={"m": fake_fit(10, [("x", 1.0, 0.1)])})
    assert reporting.effect_drift(now, reporting.ModelSection()).empty


# --------------------------------------------------------------------------------------
# proposals: tiers, slugs


def test_parse_tiers_default_and_custom():
    tiers = reporting.parse_tiers(None)
    assert list(tiers["tier"]) == ["Bronze", "Silver", "Gold"]
    assert list(tiers.columns) == reporting.TIER_COLUMNS
    custom = reporting.parse_tiers("Basic 99/1000/48; Premium plus 99.99/200/2")
    assert custom.iloc[1].to_dict() == {
        "tier": "Premium plus",
        "availability_pct": 99.99,
        "latency_p95_ms": 200.0,
        "resolution_hours_median": 2.0,
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("Gold 99.95/300", "expected 'NAME availability/p95 ms/resolution h'"),
        ("Gold 101/300/4", "outside 0..100"),
        ("Gold 99/0/4", "must be > 0"),
        ("Gold 99/300/4; Gold 99.9/200/2", "named twice"),
    ],
)
def test_parse_tiers_rejects_bad_specs(spec, message):
    with pytest.raises(InputError, match=message):
        reporting.parse_tiers(spec)


def test_proposal_slug_is_a_safe_folder_name():
    assert reporting.proposal_slug("enterprise", None, 4.3, 2) == "enterprise-csat4.3-complaints2"
    assert reporting.proposal_slug(None, "C0001", 4.5) == "customer-C0001-csat4.5"
    slug = reporting.proposal_slug("<script>alert(1)</script>", None, 4.0)
    assert "/" not in slug and "<" not in slug and not slug.startswith(".")
    assert reporting.proposal_slug("../../etc", None, 4) == "etc-csat4"


# --------------------------------------------------------------------------------------
# escaping

EVIL = "<script>alert(1)</script>"


def test_md_escape_renders_markup_as_text():
    escaped = reporting.md_escape(EVIL)
    assert "<script>" not in escaped and "&lt;script&gt;" in escaped
    assert reporting.md_escape("**big** _x_ [a](b)") == r"\*\*big\*\* \_x\_ \[a\]\(b\)"
    assert reporting.plot_label("$5 plan") == r"\$5 plan"


def test_show_escapes_data_strings_and_captions():
    frame = pd.DataFrame({"segment": [EVIL], "customers": [3]})
    html = reporting.show(frame, caption=f"Segment {EVIL}", key="evil").to_html()
    assert "<script>" not in html
    assert html.count("&lt;script&gt;") == 2  # the cell and the caption


def test_burn_text_escapes_segment_names(daily):
    customers = CUSTOMERS.replace({"x": EVIL})
    burn = reporting.burn_rates(daily, customers, "2025-02", 99.9)
    text = reporting.burn_text(burn, "2025-02").data
    assert "<script>" not in text and "&lt;script&gt;" in text
