"""Per-customer error budgets and SRE burn-rate alerts, with answers worked out by hand.

Every expected number is derived in the comments from the small inputs, not by the code.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_features import customers, incidents, make_source, surveys

from satmodel import reporting
from satmodel.reporting.data import ReportData


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --------------------------------------------------------------------------------------
# per-customer budgets, February 2025: 28 days = 40,320 minutes
#
# a (x, expects 99.9%): budget 40.32 min; 90 min down on day 3 -> 223.2%: over budget.
# b (x, no expectation -> the default SLO 99.5%): budget 201.6; 30 min on day 1 -> 14.88%.
# c (y, expects 99%): budget 403.2; never down.
# d (y, expects 100%): budget 0; never down: on track, used % undefined.
# e (y, expects 99.9%): 25 min on day 10 and 100 on day 20: 125 / 40.32 = 310.0% in the
#   month; after 14 days only the 25: 62.0%, which at that pace is 124% by the month's end.

BUDGET_CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c", "d", "e"],
        "segment": ["x", "x", "y", "y", "y"],
        "expected_availability_pct": [99.9, np.nan, 99.0, 100.0, 99.9],
    }
)
DAILY = pd.DataFrame(
    {
        "customer_id": ["a", "b", "e", "e"],
        "day": [3, 1, 10, 20],
        "downtime_minutes": [90.0, 30.0, 25.0, 100.0],
    }
)


def test_customer_budgets_of_a_complete_month():
    table = reporting.customer_budgets(DAILY, BUDGET_CUSTOMERS, "2025-02", slo_pct=99.5)
    assert list(table.columns) == [
        "customer_id",
        "segment",
        "slo_availability_pct",
        "budget_minutes",
        "downtime_minutes",
        "budget_used_pct",
        "elapsed_pct",
        "projected_used_pct",
        "projection",
        "status",
    ]
    # over budget first, the most used first; then on track
    assert list(table["customer_id"]) == ["e", "a", "b", "c", "d"]
    rows = table.set_index("customer_id")
    assert rows.at["a", "budget_minutes"] == pytest.approx(40.32)
    assert rows.at["a", "budget_used_pct"] == pytest.approx(100 * 90 / 40.32)
    assert rows.at["b", "slo_availability_pct"] == 99.5
    assert rows.at["b", "budget_minutes"] == pytest.approx(201.6)
    assert rows.at["b", "budget_used_pct"] == pytest.approx(100 * 30 / 201.6)
    assert rows.at["e", "budget_used_pct"] == pytest.approx(100 * 125 / 40.32)
    assert rows.at["c", "downtime_minutes"] == 0 and rows.at["c", "budget_used_pct"] == 0
    assert rows.at["d", "budget_minutes"] == pytest.approx(0, abs=1e-9)
    assert math.isnan(rows.at["d", "budget_used_pct"])
    assert list(rows["status"]) == ["over budget"] * 2 + ["on track"] * 3
    # a finished month has no projection
    assert (rows["projection"] == "month complete").all()
    assert rows["projected_used_pct"].isna().all()
    assert (rows["elapsed_pct"] == 100).all()


def test_customer_budgets_halfway_project_to_the_month_end():
    table = reporting.customer_budgets(DAILY, BUDGET_CUSTOMERS, "2025-02", 99.5, elapsed_days=14)
    rows = table.set_index("customer_id")
    assert rows.at["e", "downtime_minutes"] == 25  # day 20 is not covered yet
    assert rows.at["e", "budget_used_pct"] == pytest.approx(100 * 25 / 40.32)
    assert rows.at["e", "projected_used_pct"] == pytest.approx(2 * 100 * 25 / 40.32)
    assert rows.at["e", "status"] == "will be over at this rate"
    assert rows.at["e", "projection"] == "124% by month end at this rate"
    assert rows.at["a", "status"] == "over budget"
    assert rows.at["b", "projected_used_pct"] == pytest.approx(2 * 100 * 30 / 201.6)
    assert rows.at["b", "status"] == "on track"
    assert rows.at["d", "status"] == "on track"  # zero budget, zero downtime
    assert list(table["customer_id"][:2]) == ["a", "e"]


def test_zero_budget_with_downtime_is_over():
    daily = pd.DataFrame({"customer_id": ["d"], "day": [1], "downtime_minutes": [0.5]})
    table = reporting.customer_budgets(daily, BUDGET_CUSTOMERS, "2025-02", 99.5)
    assert table.iloc[0]["customer_id"] == "d" and table.iloc[0]["status"] == "over budget"


def test_segment_budgets_count_customers_over_budget():
    table = reporting.customer_budgets(DAILY, BUDGET_CUSTOMERS, "2025-02", 99.5)
    segments = reporting.segment_budgets(table).set_index("segment")
    assert list(segments.index) == ["x", "y", reporting.ALL_SEGMENTS]
    assert segments.loc["x", ["customers", "over_budget", "on_track"]].tolist() == [2, 1, 1]
    assert segments.loc["y", ["customers", "over_budget", "on_track"]].tolist() == [3, 1, 2]
    everyone = segments.loc[reporting.ALL_SEGMENTS]
    assert everyone["over_budget"] == 2 and everyone["over_budget_pct"] == pytest.approx(40)
    assert everyone["downtime_minutes"] == pytest.approx(245)
    assert segments.at["y", "worst_budget_used_pct"] == pytest.approx(100 * 125 / 40.32)
    # y: used 0 (c) and 310% (e); d's is undefined -> median 155%
    assert segments.at["y", "median_budget_used_pct"] == pytest.approx(50 * 125 / 40.32)
    text = reporting.budgets_text(reporting.segment_budgets(table), "2025-02").data
    assert "2 of 5 customers" in text


def test_pooled_budgets_hide_what_per_customer_budgets_show():
    """Issue 13: pooled per segment, y is within budget although e is three times over."""
    table = reporting.customer_budgets(DAILY, BUDGET_CUSTOMERS, "2025-02", 99.5)
    pooled = reporting.burn_rates(DAILY, BUDGET_CUSTOMERS, "2025-02", 99.5).set_index("segment")
    # pooled y: 125 min against 3 x 201.6 min of the default SLO = 20.7%
    assert pooled.at["y", "status"] == "on track"
    assert (table.loc[table["segment"] == "y", "status"] == "over budget").sum() == 1


# --------------------------------------------------------------------------------------
# burn-rate alerts, March 2025, evaluated at the end of every minute.
# Thresholds in minutes of downtime per window = burn rate x (1 - SLO) x window.
#
# a (SLO 99%, budget 1%): down Mar 5 10:00-10:20.
#   page 14.4x: 1 h needs 8.64 min (from 10:08.64), 5 min needs 0.72 (until 10:24.28): fires
#   at 10:09..10:24 = 16 minutes; peak 1 h burn 20/60/0.01 = 33.3. 6x over 6 h needs 21.6 min
#   and 1x over 3 days 43.2: 20 is less, neither fires.
# b (SLO 95%, budget 5%): down Mar 10 00:00-02:00.
#   page 14.4x: 1 h needs 43.2 (from 00:43.2), 5 min 3.6 (until 02:01.4): 00:44..02:01 = 78
#   minutes, 1.3 h; peak 60/60/0.05 = 20.
#   page 6x: 6 h needs 108 (from 01:48), 30 min needs 9 (until 02:21): 01:48..02:21 = 34
#   minutes; peak 120/360/0.05 = 6.67. Ticket: 3 days need 216 min: no.
# c (no expectation: SLO 99.9%): down 30 s every 2 h on Mar 2, 00:00 to 22:00 (12 times).
#   ticket 1x: 3 days need 4.32 min = 259.2 s, reached 19.2 s into the 9th outage (16:00):
#   from 16:01; 6 h needs 21.6 s, so it holds until 6 h after 22:00:08.4: until Mar 3 04:00.
#   16:01..04:00 = 720 minutes = 12 h; peak 6 min / 4320 / 0.001 = 1.39. Pages: 1 h holds at
#   most 30 s (needs 51.84 s), 6 h at most 90 s (needs 129.6 s): no.
# d (SLO 99%): down Feb 28 23:40 to Mar 1 00:00, in February only. The 1 h window at Mar 1
#   00:01 still holds its 20 minutes and the 5 min window 4 (needs 0.72): page from 00:01 to
#   00:04 (4 - t >= 0.72 minutes), 4 minutes.
# z: down but not a customer of the month: ignored.


def alert_intervals() -> pd.DataFrame:
    rows = [
        ("a", "2025-03-05 10:00", "2025-03-05 10:20"),
        ("b", "2025-03-10 00:00", "2025-03-10 02:00"),
        ("d", "2025-02-28 23:40", "2025-03-01 00:00"),
        ("z", "2025-03-10 00:00", "2025-03-12 00:00"),
    ]
    start = ts("2025-03-02 00:00")
    rows += [
        (
            "c",
            str(start + pd.Timedelta(hours=2 * k)),
            str(start + pd.Timedelta(hours=2 * k, seconds=30)),
        )
        for k in range(12)
    ]
    return pd.DataFrame(
        [(c, ts(s), ts(e)) for c, s, e in rows], columns=["customer_id", "start_ts", "end_ts"]
    )


ALERT_CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c", "d", "quiet"],
        "segment": ["x", "x", "y", "y", "y"],
        "expected_availability_pct": [99.0, 95.0, np.nan, 99.0, 99.0],
    }
)


def test_burn_alerts_by_hand():
    alerts = reporting.burn_alerts(alert_intervals(), ALERT_CUSTOMERS, "2025-03", slo_pct=99.9)
    page_1h, page_6h, ticket = (rule.name for rule in reporting.ALERT_RULES)
    assert page_1h == "page: 14.4x over 1 h and 5 min"
    assert ticket == "ticket: 1x over 3 days and 6 h"
    got = [
        (r.customer_id, r.alert, r.first_fired, r.hours_firing)
        for r in alerts.itertuples(index=False)
    ]
    assert got == [
        ("d", page_1h, ts("2025-03-01 00:01"), pytest.approx(4 / 60)),
        ("a", page_1h, ts("2025-03-05 10:09"), pytest.approx(16 / 60)),
        ("b", page_1h, ts("2025-03-10 00:44"), pytest.approx(1.3)),
        ("b", page_6h, ts("2025-03-10 01:48"), pytest.approx(34 / 60)),
        ("c", ticket, ts("2025-03-02 16:01"), pytest.approx(12.0)),
    ]
    rows = alerts.set_index(["customer_id", "alert"])
    assert rows.at[("a", page_1h), "peak_burn_rate"] == pytest.approx(20 / 60 / 0.01)
    assert rows.at[("b", page_1h), "peak_burn_rate"] == pytest.approx(20.0)
    assert rows.at[("b", page_6h), "peak_burn_rate"] == pytest.approx(120 / 360 / 0.05)
    assert rows.at[("c", ticket), "peak_burn_rate"] == pytest.approx(6 / 4320 / 0.001)
    assert rows.at[("c", ticket), "slo_availability_pct"] == 99.9
    assert rows.at[("c", ticket), "severity"] == "ticket"
    assert rows.at[("b", page_6h), "long_window"] == "6 h"
    assert rows.at[("b", page_6h), "short_window"] == "30 min"
    text = reporting.alerts_text(alerts, "2025-03").data
    assert "paged for **3 customers**" in text and "opened a ticket for **1 customers**" in text


def test_burn_alerts_stop_at_the_data_end():
    """With 4 days covered, a's outage on March 5 is not seen yet."""
    alerts = reporting.burn_alerts(
        alert_intervals(), ALERT_CUSTOMERS, "2025-03", 99.9, elapsed_days=4
    )
    assert list(alerts["customer_id"]) == ["d", "c"]


def test_no_downtime_no_alerts():
    empty = pd.DataFrame(columns=["customer_id", "start_ts", "end_ts"])
    alerts = reporting.burn_alerts(empty, ALERT_CUSTOMERS, "2025-03", 99.9)
    assert alerts.empty and "first_fired" in alerts.columns
    assert "No burn-rate alert" in reporting.alerts_text(alerts, "2025-03").data


# --------------------------------------------------------------------------------------
# the report's sections, from a source, with pseudonymised ids


@pytest.fixture(scope="module")
def report_data(tmp_path_factory):
    tables = {
        "customers": customers("a", "b", expected_availability_pct=[99.0, 95.0]),
        "incidents": incidents(
            [
                ("a", "2025-03-05T10:00:00", "2025-03-05T10:20:00"),
                ("a", "2025-03-05T10:10:00", "2025-03-05T10:15:00"),  # inside: counts once
                ("b", "2025-03-10T00:00:00", "2025-03-10T02:00:00"),
            ]
        ),
        "surveys": surveys([("a", "2025-03-31T12:00:00", 4), ("b", "2025-02-10T00:00:00", 3)]),
    }
    source = make_source(tmp_path_factory.mktemp("budget_report"), tables)
    panel = pd.DataFrame(
        {
            "customer_id": ["p-a", "p-b"],
            "month": "2025-03",
            "segment": "ent",
            "expected_availability_pct": [99.0, 95.0],
        }
    )

    def ids(values: pd.Series) -> pd.Series:
        return "p-" + values.astype(str)

    return ReportData(
        month="2025-03",
        window=("2025-02", "2025-03"),
        source=source,
        validation=None,
        config=source.config,
        panel=panel,
        ids=ids,
    )


def test_customer_budget_section_from_the_source(report_data):
    table, segments = reporting.customer_budget_section(report_data)
    rows = table.set_index("customer_id")
    assert list(rows.index) == ["p-b", "p-a"]  # pseudonyms, as the panel has them
    # a: 20 minutes (the inner incident counts once) of 1% x 44,640 = 446.4
    assert rows.at["p-a", "downtime_minutes"] == pytest.approx(20)
    assert rows.at["p-a", "budget_used_pct"] == pytest.approx(100 * 20 / 446.4)
    # b: 120 minutes of 5% x 44,640 = 2,232
    assert rows.at["p-b", "budget_used_pct"] == pytest.approx(100 * 120 / 2232)
    assert (rows["projection"] == "month complete").all()  # the data reaches March 31
    assert segments.set_index("segment").at["ent", "over_budget"] == 0


def test_burn_alert_section_from_the_source(report_data):
    alerts = reporting.burn_alert_section(report_data)
    assert list(zip(alerts["customer_id"], alerts["first_fired"], strict=True)) == [
        ("p-a", ts("2025-03-05 10:09")),
        ("p-b", ts("2025-03-10 00:44")),
        ("p-b", ts("2025-03-10 01:48")),
    ]


def test_sections_without_incidents(tmp_path):
    tables = {"customers": customers("a"), "surveys": surveys([("a", "2025-03-01T00:00:00", 4)])}
    source = make_source(tmp_path, tables)
    data = ReportData(
        month="2025-03",
        window=("2025-03", "2025-03"),
        source=source,
        validation=None,
        config=source.config,
        panel=pd.DataFrame({"customer_id": ["a"], "month": ["2025-03"], "segment": ["ent"]}),
    )
    table, segments = reporting.customer_budget_section(data)
    assert table.empty and segments.empty
    assert "status" in table and "over_budget" in segments  # the notebook selects on them
    assert reporting.burn_alert_section(data).empty
    assert "no error budget" in reporting.budgets_text(segments, "2025-03").data


def test_summary_blocks_are_json(report_data):
    import json

    from satmodel.reporting.summary import alert_block, budget_block

    budgets = budget_block(*reporting.customer_budget_section(report_data))
    alerts = alert_block(reporting.burn_alert_section(report_data))
    text = json.dumps({"error_budgets": budgets, "burn_alerts": alerts}, allow_nan=False)
    back = json.loads(text)
    assert back["error_budgets"]["month_complete"] is True
    assert back["error_budgets"]["customers_over_budget"] == 0
    assert back["error_budgets"]["customers"] == []  # every customer on track
    assert [s["segment"] for s in back["error_budgets"]["segments"]] == [
        "ent",
        reporting.ALL_SEGMENTS,
    ]
    assert back["burn_alerts"]["customers_paged"] == 2
    assert back["burn_alerts"]["customers_ticketed"] == 0
    assert back["burn_alerts"]["fired"][0]["first_fired"] == "2025-03-05T10:09:00+00:00"
    assert [r["long_window_minutes"] for r in back["burn_alerts"]["rules"]] == [60, 360, 4320]


def test_budgets_count_the_minutes_of_the_local_month():
    # Berlin's March 2025 loses an hour to daylight saving: 31 x 1,440 - 60 = 44,580 minutes.
    # b (the default SLO 99.5%): 0.5% of 44,580 = 222.9 minutes (a UTC March: 223.2).
    table = reporting.customer_budgets(
        DAILY, BUDGET_CUSTOMERS, "2025-03", 99.5, timezone="Europe/Berlin"
    ).set_index("customer_id")
    assert table.loc["b", "budget_minutes"] == pytest.approx(222.9)
    utc = reporting.customer_budgets(DAILY, BUDGET_CUSTOMERS, "2025-03", 99.5)
    assert utc.set_index("customer_id").loc["b", "budget_minutes"] == pytest.approx(223.2)
    burn = reporting.burn_rates(DAILY, BUDGET_CUSTOMERS, "2025-03", 99.5, timezone="Europe/Berlin")
    # segment x: a at 99.9% would be 44.58 if the table used expectations; burn_rates pools
    # the SLO: 2 customers x 222.9
    assert burn.set_index("segment").loc["x", "budget_minutes"] == pytest.approx(2 * 222.9)
