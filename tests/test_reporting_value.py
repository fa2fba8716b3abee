"""Report section "What service quality is worth" and the operating cost of the scorecard."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy.special import expit

from satmodel import reporting
from satmodel.config import Config
from satmodel.reporting.summary import json_ready


class Validation:
    rows = {"customers": 400}
    rejected = pd.DataFrame(columns=["table_name", "column_name", "reason", "rows", "example"])


def report_data(panel, month="2025-10", source=None, config=None):
    return reporting.ReportData(
        month=month,
        window=(str(panel["month"].min()), month),
        source=source,
        validation=Validation(),
        config=config or Config(),
        panel=panel,
    )


def churn_panel(n=400, months=10, seed=7):
    """Customer-months with a known hazard rising with downtime; NPS answers in every month."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        segment = ("enterprise", "smb")[i % 2]
        revenue = 1000.0 if segment == "enterprise" else 100.0
        scale = 20.0 if i % 4 < 2 else 600.0  # half the customers average below 99.5 %
        for m in range(months):
            down = rng.exponential(scale) if rng.random() < 0.4 else 0.0
            left = rng.random() < expit(-3.5 + 0.5 * np.log1p(down))
            rows.append((f"c{i}", segment, f"2025-{m + 1:02d}", down, float(left), revenue))
            if left:
                break
    columns = ["customer_id", "segment", "month", "downtime_minutes", "churned"]
    panel = pd.DataFrame(rows, columns=[*columns, "monthly_revenue"])
    panel["availability_pct"] = 100 * (1 - panel["downtime_minutes"] / 43_200)
    panel["nps_n"] = 2
    panel["nps_score"] = rng.choice([-100.0, 0.0, 100.0], len(panel))
    return panel


@pytest.fixture(scope="module")
def section():
    panel = churn_panel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = reporting.value_section(reporting.ModelSection(), report_data(panel), n_draws=200)
    return panel, result


def test_nps_trend_pools_the_answers():
    panel = pd.DataFrame(
        {
            "customer_id": ["a", "b", "a", "b"],
            "segment": ["x", "y", "x", "y"],
            "month": ["2025-01", "2025-01", "2025-02", "2025-02"],
            "nps_n": [2, 6, 0, 4],
            "nps_score": [100.0, -50.0, np.nan, 25.0],
        }
    )
    trend = reporting.nps_trend(panel, "2025-02").set_index(["month", "segment"])
    # January: 2 promoters of 2, and 3 more detractors than promoters of 6: (2 - 3) / 8
    assert trend.loc[("2025-01", reporting.ALL_SEGMENTS), "nps_score"] == pytest.approx(-12.5)
    assert trend.loc[("2025-01", reporting.ALL_SEGMENTS), "responses"] == 8
    assert math.isnan(trend.loc[("2025-02", "x"), "nps_score"])  # no answer
    assert trend.loc[("2025-02", reporting.ALL_SEGMENTS), "nps_score"] == pytest.approx(25.0)
    assert reporting.nps_trend(panel.drop(columns="nps_n"), "2025-02").empty


def test_section_is_left_out_in_one_line_without_contracts():
    panel = churn_panel(n=20).drop(columns=["churned", "monthly_revenue"])
    result = reporting.value_section(reporting.ModelSection(), report_data(panel))
    assert result.left_out == reporting.VALUE_LEFT_OUT and result.value is None
    text = reporting.value_text(result).data
    assert "left out" in text and "contracts" in text and "NPS" in text
    assert reporting.plot_lever_returns(result) is None
    assert reporting.plot_retention(result) is None
    assert reporting.segment_value_view(result).empty and reporting.lever_view(result).empty
    block = reporting.value_summary(result)
    assert block["left_out"] == reporting.VALUE_LEFT_OUT and "revenue_at_risk" not in block


def test_revenue_at_risk_by_segment_and_lever_returns(section):
    panel, result = section
    assert result.left_out is None
    value = result.value
    segments = reporting.segment_value_view(result).set_index("segment")
    assert segments["revenue_at_risk"].sum() == pytest.approx(value.revenue_at_risk)
    assert segments["under_contract"].sum() == len(value.by_customer)
    assert (segments["ci_low"] < segments["revenue_at_risk"]).all()
    assert (segments["revenue_at_risk"] < segments["ci_high"]).all()
    # the hazard rises with downtime: more availability keeps revenue
    levers = reporting.lever_view(result).set_index("lever")
    kept = levers.loc["availability"]
    assert kept["step"] == "+0.1 pp" and kept["ci_low"] < kept["revenue_retained"] < kept["ci_high"]
    assert kept["revenue_retained"] > 0
    net = kept["revenue_retained"] + kept["complaint_cost_avoided"] - kept["cost"]
    assert kept["roi_pct"] == pytest.approx(100 * net / kept["cost"])
    # without a CSAT model there is no cheapest plan, and the notes say so
    assert any("no CSAT model" in note for note in result.notes)
    text = reporting.value_text(result).data
    assert f"EUR {value.revenue_at_risk:,.0f}" in text and "associated with" in text


def test_retention_is_lower_in_the_worse_availability_band(section):
    _, result = section
    last = result.retention.groupby("band")["retention"].last()
    assert last[">= 99.9 %"] > last["< 99.5 %"]


def test_figures_have_titles_and_units(section):
    _, result = section
    for figure in (
        reporting.plot_nps_trend(result),
        reporting.plot_lever_returns(result),
        reporting.plot_retention(result),
    ):
        assert isinstance(figure, Figure)
        assert figure.get_suptitle()
        assert all(ax.get_ylabel() or ax.get_xlabel() for ax in figure.axes)
    roi = reporting.plot_lever_returns(result)
    assert "October 2025" in roi.get_suptitle()
    assert "%" in roi.axes[1].get_xlabel()


def test_summary_value_block_before_driver_importance(section):
    panel, result = section
    data = report_data(panel)
    models = reporting.ModelSection()
    summary = reporting.build_summary(
        data,
        pd.DataFrame(columns=["kpi", "label", "unit", "value", "previous", "change"]),
        pd.DataFrame(),
        pd.DataFrame(columns=["missed"]),
        reporting.data_quality(Validation()),
        reporting.quarantine_reasons(Validation()),
        models,
        reporting.driver_table(models),
        value=result,
    )
    assert list(summary)[-2:] == ["status", "value"]  # after the core keys (status is the last)
    block = summary["value"]
    assert block["revenue_at_risk"] == json_ready(result.value.revenue_at_risk)
    assert block["revenue_at_risk_ci_low"] < block["revenue_at_risk"]
    assert block["revenue_at_risk"] < block["revenue_at_risk_ci_high"]
    overall = result.nps.loc[result.nps["segment"] == reporting.ALL_SEGMENTS]
    assert block["nps_score"] == json_ready(overall["nps_score"].iloc[-1])
    paying = result.value.levers.loc[result.value.levers["net_return"] > 0, "lever"]
    assert block["best_lever"] == (paying.iloc[0] if len(paying) else None)


def operations_months():
    return pd.DataFrame(
        {
            "month": ["2025-01", "2025-02", "2025-03", "2025-04"],
            "changes": [5, 0, 4, 8],
            "changes_per_week": 1.0,
            "change_failure_pct": 10.0,
            "mttr_hours": 1.0,
            "releases_per_week": 1.0,
            "days_between_releases": 7.0,
        }
    )


def test_operating_cost_per_customer_and_per_change():
    opex = pd.Series({"2025-01": 1000.0, "2025-02": 900.0, "2025-04": 800.0})
    customers = pd.Series({"2025-01": 4, "2025-02": 3, "2025-03": 3, "2025-04": 4})
    monthly = reporting.with_operating_cost(operations_months(), opex, customers)
    rows = monthly.set_index("month")
    assert rows.loc["2025-01", "cost_per_customer"] == pytest.approx(250.0)
    assert rows.loc["2025-01", "cost_per_change"] == pytest.approx(200.0)
    assert math.isnan(rows.loc["2025-02", "cost_per_change"])  # no change that month
    assert math.isnan(rows.loc["2025-03", "opex"])  # no cost given
    card = reporting.operations_scorecard(monthly, "2025-04").set_index("kpi")
    assert list(card.index) == [*reporting.OPERATIONS, *reporting.OPERATING_COST]
    per_customer = card.loc["cost_per_customer"]
    assert per_customer["value"] == pytest.approx(200.0)
    assert per_customer["quarter_ago"] == pytest.approx(250.0)
    assert per_customer["trend"] == "-"  # March has no cost to compare with
    assert card.loc["cost_per_change", "value"] == pytest.approx(100.0)
    figure = reporting.plot_operating_cost(monthly, "2025-04")
    assert "per change" in figure.get_suptitle()
    # without an operating cost the scorecard is the delivery measures only
    plain = reporting.with_operating_cost(operations_months(), pd.Series(dtype=float), customers)
    assert list(reporting.operations_scorecard(plain, "2025-04")["kpi"]) == list(
        reporting.OPERATIONS
    )
    assert reporting.plot_operating_cost(plain, "2025-04") is None


class OpexSource:
    def __init__(self, table):
        self.table = table

    def has(self, name):
        return name == "opex" and self.table is not None

    def frame(self, name):
        return self.table


def test_operating_cost_from_the_table_else_the_config():
    panel = churn_panel(n=4, months=2)
    config = Config(opex={"2025-02": 50.0, "2025-01": 40.0})
    from_config = reporting.operating_cost(report_data(panel, "2025-02", OpexSource(None), config))
    assert from_config.to_dict() == {"2025-01": 40.0, "2025-02": 50.0}
    table = pd.DataFrame({"month": ["2025-02", "2025-01"], "amount": [7.0, 6.0]})
    from_table = reporting.operating_cost(report_data(panel, "2025-02", OpexSource(table), config))
    assert from_table.to_dict() == {"2025-01": 6.0, "2025-02": 7.0}


def test_summary_numbers_do_not_carry_last_bit_noise():
    """Two sums in another order differ in the 16th digit; the summary shows the same bytes."""
    ratio = float(np.exp(19.605398))
    noisy = ratio * (1 + 2e-15)
    assert round(ratio, 6) != round(noisy, 6)  # visible at 6 decimal places
    assert json_ready({"ratio": ratio}) == json_ready({"ratio": noisy})
    assert json_ready(0.12345678912) == 0.123457  # 6 places still
    assert json_ready(123456789.123) == 123456789.1  # 10 significant digits
