"""Trust section: pooled vs within effects, the Mundlak verdict, Brant warnings, summary keys."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import satmodel
from satmodel import reporting


def confounded(bias: float, n_customers=150, months=6, seed=8):
    """Responses whose customer effect is ``bias`` times the customer's mean driver level."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_customers):
        level = rng.normal()
        for m in range(months):
            x = level + rng.normal()
            for _ in range(3):
                latent = -0.8 * x + bias * level + rng.logistic()
                rows.append(
                    {"customer_id": f"c{i}", "month": f"2025-0{m + 1}", "x": x,
                     "csat": int(np.digitize(latent, [-2.0, -1.0, 0.0, 1.0])) + 1}
                )  # fmt: skip
    return pd.DataFrame(rows)


def pair(bias: float):
    data = confounded(bias)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pooled = satmodel.fit(data, "csat ~ x", "ordinal", cluster="customer_id")
        within = satmodel.fit(data, "csat ~ x", "ordinal", within="customer_id")
    return {"csat": (pooled, within)}


def test_confounded_customers_make_the_pooled_effect_biased():
    pairs = pair(bias=-1.5)
    table = reporting.effect_comparison(pairs)
    row = table.iloc[0]
    assert list(table.columns) == reporting.COMPARISON_COLUMNS
    assert row["term"] == "x" and row["within_estimate"] == pytest.approx(-0.8, abs=0.15)
    assert row["pooled_estimate"] < row["within_estimate"] - 0.3  # pooled picks up the bias
    assert row["ratio"] == pytest.approx(row["within_estimate"] / row["pooled_estimate"])
    assert row["reading"] == "changes it within a customer"
    mundlak = reporting.mundlak_table(pairs)
    assert mundlak.loc[0, "verdict"] == "pooled effects biased" and mundlak.loc[0, "p_value"] < 0.01
    text = reporting.mundlak_text(mundlak).data
    assert "pooled effects are biased" in text and "within-customer effects" in text


def test_unconfounded_customers_agree():
    mundlak = reporting.mundlak_table(pair(bias=0.0))
    assert mundlak.loc[0, "verdict"] == "pooled and within agree"
    assert "agree" in reporting.mundlak_text(mundlak).data


def test_brant_failures_are_model_warnings():
    diagnosed = pd.DataFrame(
        [
            ("csat", "proportional_odds", 0.001, 0.05, False, ""),
            ("csat", "proportional_odds:error_rate", 0.002, 0.05, False, ""),
            ("csat", "proportional_odds:np.log(latency_p95_ms)", 0.4, 0.05, True, ""),
            ("csat", "vif:error_rate", 20.0, 10.0, False, ""),
        ],
        columns=["model", "check", "value", "threshold", "ok", "note"],
    )
    failures = reporting.brant_failures(diagnosed)
    assert failures == {
        "csat": [
            "proportional odds rejected overall (Brant p = 0.001)",
            "proportional odds rejected for error rate (Brant p = 0.002)",
        ]
    }
    table = reporting.mundlak_table(pair(bias=0.0), diagnosed)
    assert "proportional odds rejected for error rate" in table.loc[0, "warnings"]
    assert "vif" not in table.loc[0, "warnings"]


def test_trust_summary_is_json_ready():
    pairs = pair(bias=-1.5)
    backtest = pd.DataFrame(
        [("2025-06", "2025-05", 10, 4, 3, 2, 2 / 3, 8, 4, 0.5)],
        columns=["month", "flagged_in", "customers", "flagged", "flagged_answered",
                 "flagged_below", "precision", "answered", "below", "base_rate"],
    )  # fmt: skip
    block = reporting.trust_summary(pairs, None, backtest)
    assert block["mundlak"]["csat"]["pooled_biased"] is True
    assert block["mundlak"]["csat"]["df"] == 1
    assert block["robustness_value"] is None
    assert block["at_risk_backtest"]["flagged"] == 4
    assert block["at_risk_backtest"]["precision"] == pytest.approx(2 / 3)
    json.dumps(reporting.summary.json_ready(block), allow_nan=False)
    text = reporting.backtest_text(backtest).data
    assert "3 answered" in text and "67%" in text and "50%" in text


def test_wording_says_associated_with_where_only_the_pooled_fit_shows_it():
    pooled, within = pair(bias=-1.5)["csat"]
    pooled.coefficients_.loc[:, ["ci_low", "ci_high"]] = [[-1.0, -0.5]]
    within.coefficients_.loc[:, ["ci_low", "ci_high"]] = [[-0.5, 0.2]]
    table = reporting.effect_comparison({"csat": (pooled, within)})
    assert table.loc[0, "reading"] == "associated with it (between customers only)"
    assert "drive" not in reporting.at_risk_text(pd.DataFrame(columns=["segment"])).data


def test_build_summary_adds_the_trust_block_after_the_core_keys(tmp_path):
    from test_report import make_panel

    from satmodel.config import Config

    class Validation:
        rows = {"customers": 3}
        rejected = pd.DataFrame(columns=["table_name", "column_name", "reason", "rows", "example"])

    panel = make_panel()
    data = reporting.ReportData(
        month="2025-02", window=("2025-01", "2025-02"), source=None,
        validation=Validation(), config=Config(), panel=panel,
    )  # fmt: skip
    models = reporting.ModelSection()
    summary = reporting.build_summary(
        data,
        reporting.headline_kpis(panel, data.month),
        reporting.slo_attainment(panel, data.config, data.month),
        reporting.expectation_gaps(panel, data.config, data.month),
        reporting.data_quality(Validation()),
        reporting.quarantine_reasons(Validation()),
        models,
        reporting.driver_table(models),
        trust=reporting.trust_summary(pair(bias=-1.5)),
    )
    assert list(summary)[-2:] == ["status", "trust"]  # after the core keys (status is the last)
    assert summary["trust"]["mundlak"]["csat"]["pooled_biased"] is True


def test_sensitivity_effects_are_per_step_as_in_the_other_driver_tables():
    import math
    from types import SimpleNamespace

    table = pd.DataFrame(
        {
            "term": ["np.log(latency_p95_ms)", "error_rate"],
            "estimate": [-0.3, -20.0],
            "partial_r2": [0.01, 0.02],
            "rv_q": [0.1, 0.2],
            "rv_qa": [0.05, 0.1],
            "benchmark": ["error_rate", "np.log(latency_p95_ms)"],
        }
    )
    bounds = pd.DataFrame(
        {
            "term": ["np.log(latency_p95_ms)", "error_rate"],
            "k_d": [3, 3],
            "adjusted_estimate": [-0.2, -10.0],
        }
    )
    view = reporting.sensitivity_view(SimpleNamespace(table_=table, bounds_=bounds))
    assert list(view["step"]) == ["per doubling", "per +1 percentage point"]
    assert view["csat_effect"].tolist() == pytest.approx([-0.3 * math.log(2), -0.2])
    assert view["bound_csat_effect_k3"].tolist() == pytest.approx([-0.2 * math.log(2), -0.1])
