"""The executive summary: what changed and the three actions a manager reads first."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from satmodel import reporting
from satmodel.config import Config
from satmodel.insights.plans import lever_cost, resolve_costs

LEVERS = {
    "availability": "availability_pct",
    "latency": "latency_p95_ms",
    "resolution": "resolution_hours_median",
}


def gap_result(n: int = 6, seed: int = 4) -> SimpleNamespace:
    """Customers with known gaps and gains (the part of a gap analysis the actions read)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)]})
    measured = {
        "availability": rng.uniform(99.0, 99.95, n),
        "latency": rng.uniform(200, 900, n),
        "resolution": rng.uniform(2, 30, n),
    }
    expected = {"availability": np.full(n, 99.9), "latency": np.full(n, 500.0)}
    expected["resolution"] = np.full(n, 8.0)
    for short in LEVERS:
        frame[f"{short}_measured"] = measured[short]
        frame[f"{short}_expected"] = expected[short]
        shortfall = (
            expected[short] - measured[short]
            if short == "availability"
            else measured[short] - expected[short]
        )
        frame[f"{short}_gap"] = np.clip(shortfall, 0, None)
        frame[f"csat_mean_gain_{short}"] = np.where(
            frame[f"{short}_gap"] > 0, rng.uniform(0.02, 0.4, n), 0.0
        )
    return SimpleNamespace(customers_=frame)


def test_each_action_counts_its_customers_and_prices_one_service_change():
    gaps = gap_result()
    config = Config()
    costs = resolve_costs(None, config)
    actions = reporting.summary_actions(gaps, config)
    table = gaps.customers_
    assert len(actions) == 3 and set(actions["lever"]) == set(LEVERS.values())
    for row in actions.itertuples(index=False):
        short = next(s for s, lever in LEVERS.items() if lever == row.lever)
        hit = table.loc[table[f"{short}_gap"] > 0]
        assert isinstance(row.customers, int | np.integer) and row.customers == len(hit)
        assert row.csat_gain == pytest.approx(hit[f"csat_mean_gain_{short}"].mean())
        # one service change for all of them: from their typical level to their typical
        # expectation (mean availability, median latency and resolution time)
        typical = np.mean if short == "availability" else np.median
        cost = lever_cost(
            row.lever, typical(hit[f"{short}_expected"]), typical(hit[f"{short}_measured"]), costs
        )
        assert row.monthly_cost == pytest.approx(float(cost))
        per_customer = sum(
            lever_cost(row.lever, e, m, costs)
            for e, m in zip(hit[f"{short}_expected"], hit[f"{short}_measured"], strict=True)
        )
        assert row.monthly_cost < per_customer  # not priced once per customer
    value = actions["csat_gain"] / actions["monthly_cost"]
    assert value.is_monotonic_decreasing  # best CSAT per unit of cost first


def test_a_gap_closing_which_gains_nothing_is_no_action():
    gaps = gap_result()
    gaps.customers_["csat_mean_gain_latency"] = 0.0
    actions = reporting.summary_actions(gaps, Config())
    assert "latency_p95_ms" not in set(actions["lever"]) and len(actions) == 2
    assert list(reporting.summary_actions(None).columns) == [
        "action",
        "lever",
        "customers",
        "csat_gain",
        "monthly_cost",
    ]


def kpis(month: str = "2025-02") -> pd.DataFrame:
    panel = pd.DataFrame(
        {
            "customer_id": ["a", "b", "a", "b"],
            "month": ["2025-01", "2025-01", "2025-02", "2025-02"],
            "csat_n": [10, 10, 10, 30],
            "csat_mean": [4.0, 3.6, 4.2, 3.9],
            "csat_top2_rate": [0.7, 0.5, 0.8, 0.6],
            "complaints": [2, 4, 1, 3],
            "active_users": [1000, 3000, 1000, 3000],
        }
    )
    return reporting.headline_kpis(panel, month)


def shown_actions(text: str) -> list[str]:
    after = text.split("**What to do next**", 1)[1]
    return re.findall(r"^\d\. .*$", after, flags=re.M)


def test_the_summary_shows_three_actions_with_effect_and_cost_in_plain_words():
    actions = pd.DataFrame(
        {
            "action": [f"Action number {i}" for i in range(1, 5)],
            "lever": list(LEVERS.values()) + ["error_rate"],
            "customers": [1234, 12, 3, 1],
            "csat_gain": [0.25, 0.1, 0.05, 0.01],
            "monthly_cost": [15300.0, 800.0, 96.0, 10.0],
        }
    )
    text = reporting.executive_summary(kpis(), actions, "2025-02", "USD").data
    assert text.startswith("## Executive summary: ")
    lines = shown_actions(text)
    assert [line[:2] for line in lines] == ["1.", "2.", "3."]
    for line, row in zip(lines, actions.head(3).itertuples(index=False), strict=True):
        assert line.startswith(f"{line[0]}. {row.action} ")
        assert f"**{row.customers:,} customers**" in line  # a whole number, thousands split
        assert f"rises by {row.csat_gain:+.2f}" in line
        assert re.search(r"about USD [\d,]+ a month", line)
    assert "Action number 4" not in text
    assert "USD 15,000 a month" in lines[0]  # two significant figures, never 15,300.0
    # what a manager reads: no column or module names, no Python values
    assert not re.search(r"\b[a-z]+_[a-z_]+\b|satmodel|reporting\.|\bnan\b|\.0 customers", text)
    changed = text.split("**What changed**", 1)[1].split("**What to do next**", 1)[0]
    assert len(re.findall(r"^\d\. ", changed, flags=re.M)) == 3


def test_the_summary_says_when_costs_are_unknown_and_when_nothing_is_to_do():
    actions = pd.DataFrame(
        {
            "action": ["Raise availability to what they expect"],
            "lever": ["availability_pct"],
            "customers": [4],
            "csat_gain": [0.3],
            "monthly_cost": [math.nan],
        }
    )
    text = reporting.executive_summary(kpis(), actions, "2025-02").data
    assert shown_actions(text) == [
        "1. Raise availability to what they expect for the **4 customers** who got less this "
        "month: their predicted CSAT rises by +0.30 on average; cost not configured."
    ]
    empty = reporting.executive_summary(kpis(), reporting.summary_actions(None), "2025-02").data
    assert shown_actions(empty) == []
    assert "Every customer got the service it expects" in empty


def test_a_gap_without_gain_is_said_to_be_no_action_not_that_all_is_well():
    gaps = gap_result()
    gaps.customers_["csat_mean_gain_resolution"] = 0.0
    actions = reporting.summary_actions(gaps, Config(), include_no_gain=True)
    assert list(actions["lever"])[-1] == "resolution_hours_median" and len(actions) == 3
    text = reporting.executive_summary(kpis(), actions, "2025-02").data
    assert len(shown_actions(text)) == 2
    hit = int((gaps.customers_["resolution_gap"] > 0).sum())
    assert (
        f"Not an action: resolve tickets as fast as they expect for the {hit:,} customers" in text
    )
    only = reporting.executive_summary(kpis(), actions.tail(1), "2025-02").data
    assert "Every customer got the service" not in only and "Not an action" in only


def test_a_change_too_small_to_show_is_unchanged_not_worse():
    from satmodel.reporting.headline import change_line

    row = pd.Series(
        {"kpi": "csat_mean", "label": "CSAT, mean score", "value": 3.88, "change": -0.004,
         "higher_is_better": True}
    )  # fmt: skip
    assert change_line(row, "2026-11") == "**CSAT, mean score**: 3.88, unchanged on October 2026"
    moved = change_line(row.copy().replace(-0.004, -0.006), "2026-11")
    assert moved.endswith("down 0.01 on October 2026 (worse)")
