"""NPS model, churn hazard fit and Kaplan-Meier retention (satmodel.insights.loyalty)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from satmodel.errors import InputError
from satmodel.insights.loyalty import (
    fit_churn_model,
    fit_nps_model,
    nps_group,
    retention_curves,
)


def test_nps_groups():
    groups = nps_group(pd.Series([0, 6, 7, 8, 9, 10, None]))
    assert groups.iloc[:6].tolist() == [0, 0, 1, 1, 2, 2] and np.isnan(groups.iloc[6])


def responses(n_customers=120, per=8, seed=3):
    rng = np.random.default_rng(seed)
    cust = np.repeat([f"c{i}" for i in range(n_customers)], per)
    latency = rng.lognormal(np.log(400), 0.4, len(cust))
    eta = -1.2 * np.log(latency / 400)
    # two cutpoints (-0.5, 1.0) on a logistic latent scale: 0 detractor, 1 passive, 2 promoter
    latent = rng.logistic(size=len(cust)) + eta
    group = (latent > -0.5).astype(int) + (latent > 1.0).astype(int)
    nps = np.select([group == 2, group == 1], [9.0, 7.0], 3.0)
    frame = pd.DataFrame({"customer_id": cust, "latency_p95_ms": latency, "nps": nps})
    frame.loc[rng.random(len(frame)) < 0.1, "nps"] = np.nan
    return frame


def test_nps_model_is_ordinal_with_the_drivers():
    data = responses()
    model = fit_nps_model(data, "np.log(latency_p95_ms)", within=None)
    assert model.family == "ordinal" and model.outcome == "nps_group"
    assert model.n_rows_ == data["nps"].notna().sum()
    assert model.coefficients_.set_index("term").loc["np.log(latency_p95_ms)", "ci_high"] < 0
    within = fit_nps_model(data, "np.log(latency_p95_ms)")
    assert within.within_ is not None
    eleven = fit_nps_model(data, "np.log(latency_p95_ms)", scale="0-10", within=None)
    assert eleven.outcome == "nps"
    with pytest.raises(InputError, match="scale"):
        fit_nps_model(data, scale="stars")


def hazard_panel(n=600, months=10, seed=5):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        for m in range(months):
            down = rng.exponential(30) if rng.random() < 0.3 else 0.0
            csat = rng.normal(4, 0.5)
            left = rng.random() < expit(-1.0 + 0.4 * np.log1p(down) - 0.8 * csat)
            rows.append((f"c{i}", f"2025-{m + 1:02d}", down, csat, float(left), 100.0))
            if left:
                break
    columns = ["customer_id", "month", "downtime_minutes", "csat_mean", "churned", "rev"]
    panel = pd.DataFrame(rows, columns=columns).rename(columns={"rev": "monthly_revenue"})
    panel["availability_pct"] = 100 * (1 - panel["downtime_minutes"] / 43_200)
    return panel


def test_churn_model_is_a_clustered_hazard_logit():
    panel = hazard_panel()
    model = fit_churn_model(panel)
    assert model.family == "logit" and model.cov_type_ == "cluster"
    table = model.coefficients_.set_index("term")
    assert table.loc["np.log1p(downtime_minutes)", "ci_low"] <= 0.4
    assert table.loc["np.log1p(downtime_minutes)", "ci_high"] >= 0.4
    with pytest.raises(InputError, match="contracts: table needed"):
        fit_churn_model(panel.drop(columns="churned"))


def test_kaplan_meier_matches_a_hand_count():
    # band >= 99.9: three customers, one leaves in month 2, one is censored after month 1
    panel = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c"],
            "month": ["2025-01", "2025-02", "2025-03", "2025-01", "2025-02", "2025-01"],
            "churned": [0, 0, 0, 0, 1, 0],
            "monthly_revenue": 1.0,
            "availability_pct": 100.0,
        }
    )
    curve = retention_curves(panel).set_index("month_number")
    assert curve.loc[1, "at_risk"] == 3 and curve.loc[1, "retention"] == 1.0
    assert curve.loc[2, "at_risk"] == 2 and curve.loc[2, "churned"] == 1
    assert curve.loc[2, "retention"] == pytest.approx(0.5)
    assert curve.loc[3, "retention"] == pytest.approx(0.5)
    assert curve.loc[2, "ci_low"] < 0.5 < curve.loc[2, "ci_high"]
    assert set(curve["band"]) == {">= 99.9 %"}


def test_kaplan_meier_interval_is_greenwood_on_the_log_log_scale():
    # two customers followed, one leaves in month 2: S(2) = 0.5, Greenwood sum 1 / (2 * 1)
    panel = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b"],
            "month": ["2025-01", "2025-02", "2025-01", "2025-02"],
            "churned": [0, 0, 0, 1],
            "monthly_revenue": 1.0,
            "availability_pct": 99.0,
        }
    )
    row = retention_curves(panel, ci=0.9).set_index("month_number").loc[2]
    spread = 1.6448536269514722 * np.sqrt(0.5) / abs(np.log(0.5))
    assert row["band"] == "< 99.5 %" and row["customers"] == 2
    assert row["ci_low"] == pytest.approx(0.5 ** np.exp(spread))
    assert row["ci_high"] == pytest.approx(0.5 ** np.exp(-spread))
