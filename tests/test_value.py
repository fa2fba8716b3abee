"""Churn and revenue at risk on the demo world: the hazard and revenue at risk against truth."""

from __future__ import annotations

import json
import shutil
import warnings
from datetime import date

import numpy as np
import pandas as pd
import pytest

from satmodel import build_panel, fit, open_source
from satmodel.cli import main
from satmodel.demo import generate_demo
from satmodel.demo.contracts import true_hazard
from satmodel.errors import InputError
from satmodel.insights.value import LEVER_STEPS, revenue_at_risk

# a fixed start: the generator's default start follows today's date
DEMO = {
    "customers": 300,
    "months": 18,
    "seed": 11,
    "start_month": "2024-11",
    "components": False,  # the component world has its own truth tests
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("value") / "demo"
    result = generate_demo(folder, progress=False, **DEMO)
    panel = build_panel(open_source(folder))
    return {"folder": folder, "truth": result.truth["churn"], "panel": panel}


def test_churn_hazard_recovered_through_fit(world):
    truth, panel = world["truth"], world["panel"]
    # 99 % intervals: three parameters are checked at once
    result = fit(
        panel[panel["churned"].notna()], truth["formula"], "logit", cluster="customer_id", ci=0.99
    )
    table = result.coefficients_.set_index("term")
    for term, value in truth["params"].items():
        assert table.loc[term, "ci_low"] <= value <= table.loc[term, "ci_high"], term
    # the drivers matter: the service terms are clearly away from zero
    assert table.loc["csat_mean", "ci_high"] < 0 < table.loc["np.log1p(downtime_minutes)", "ci_low"]


def test_demo_churn_follows_the_true_hazard(world):
    panel = world["panel"]
    under = panel[panel["churned"].notna()]
    expected = true_hazard(world["truth"], under).sum()
    observed = under["churned"].sum()
    assert abs(observed - expected) < 4 * np.sqrt(expected)


def test_revenue_at_risk_within_25_percent_of_truth(world):
    truth = world["truth"]
    model = fit(world["panel"].query("churned == churned"), truth["formula"], "logit")
    result = revenue_at_risk(world["panel"], model, n_draws=400)
    want = truth["revenue_at_risk"]
    assert result.month == want["month"]
    assert result.monthly_revenue == pytest.approx(want["monthly_revenue"], rel=1e-9)
    assert result.revenue_at_risk == pytest.approx(want["revenue_at_risk"], rel=0.25)
    assert result.revenue_at_risk_ci_low < result.revenue_at_risk < result.revenue_at_risk_ci_high
    segments = result.by_segment
    assert segments["revenue_at_risk"].sum() == pytest.approx(result.revenue_at_risk)
    assert result.by_customer["revenue_at_risk"].sum() == pytest.approx(result.revenue_at_risk)
    # a lever that lowers the hazard retains revenue; its step is the documented one
    levers = result.levers.set_index("lever")
    assert levers.loc["availability_pct", "revenue_retained"] > 0
    assert levers.loc["availability_pct", "change"] == LEVER_STEPS["availability_pct"]


def test_longer_horizon_puts_more_at_risk(world):
    model = fit(world["panel"].query("churned == churned"), world["truth"]["formula"], "logit")
    short = revenue_at_risk(world["panel"], model, horizon=3, n_draws=50)
    long = revenue_at_risk(world["panel"], model, horizon=12, n_draws=50)
    assert 0 < short.revenue_at_risk < long.revenue_at_risk < long.monthly_revenue
    with pytest.raises(InputError, match="horizon"):
        revenue_at_risk(world["panel"], model, horizon=0)


def test_value_command_writes_the_contract_keys(world, tmp_path, capsys):
    out = tmp_path / "value.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["value", "--data", str(world["folder"]), "--horizon", "6", "--json", str(out)])
    assert code == 0
    payload = json.loads(out.read_text())
    for key in (
        "month",
        "horizon_months",
        "revenue_at_risk",
        "revenue_at_risk_ci_low",
        "revenue_at_risk_ci_high",
        "by_segment",
        "levers",
        "churn_model",
    ):
        assert key in payload, key
    assert payload["horizon_months"] == 6
    # by default the last complete month, as the report: never the unfinished current one
    today = date.today()
    before_this_month = f"{today.year - (today.month == 1):04d}-{(today.month - 2) % 12 + 1:02d}"
    assert payload["month"] == min(world["panel"]["month"].astype(str).max(), before_this_month)
    assert {"segment", "monthly_revenue", "revenue_at_risk"} <= set(payload["by_segment"][0])
    assert {"lever", "change", "revenue_retained", "cost", "roi"} <= set(payload["levers"][0])
    assert payload["churn_model"]["family"] == "logit"
    assert "params" in payload["churn_model"]
    text = capsys.readouterr().out  # money in the default currency
    assert f"EUR {payload['revenue_at_risk']:,.0f} of EUR {payload['monthly_revenue']:,.0f}" in text


def test_value_without_contracts_exits_2_naming_the_table(good_folder, capsys):
    assert main(["value", "--data", str(good_folder)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "contracts" in line]
    assert len(err) == 1 and "contracts: table needed" in err[0]


def test_value_goes_on_with_the_churn_model_when_csat_cannot_be_fitted(world, tmp_path, capsys):
    # every survey answers 4: the CSAT model has one level and cannot be fitted
    folder = tmp_path / "one-level"
    shutil.copytree(world["folder"], folder)
    surveys = pd.read_parquet(folder / "surveys.parquet").assign(csat=4)
    surveys.to_parquet(folder / "surveys.parquet")
    out = tmp_path / "value.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["value", "--data", str(folder), "--json", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 0
    fallback = [line for line in err if "churn model alone" in line]
    assert len(fallback) == 1 and fallback[0].startswith("warning: CSAT and complaint models")
    payload = json.loads(out.read_text())
    assert payload["revenue_at_risk_ci_low"] < payload["revenue_at_risk"]
    assert payload["revenue_at_risk"] < payload["revenue_at_risk_ci_high"]


def test_value_scores_customers_who_never_answered_a_survey(world, tmp_path, capsys):
    """The within models were not fitted on them; they keep their own rows' persistent part."""
    folder = tmp_path / "silent"
    shutil.copytree(world["folder"], folder)
    surveys = pd.read_parquet(folder / "surveys.parquet")
    silent = sorted(surveys["customer_id"].astype(str).unique())[:30]
    surveys.loc[~surveys["customer_id"].astype(str).isin(silent)].to_parquet(
        folder / "surveys.parquet"
    )
    out = tmp_path / "value.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["value", "--data", str(folder), "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    payload = json.loads(out.read_text())
    retained = [lever["revenue_retained"] for lever in payload["levers"]]
    assert all(np.isfinite(retained)) and max(retained) > 0


def test_value_text_names_levers_in_words_and_money_in_the_currency(world, tmp_path, capsys):
    """The text line reads like the report (lever names, ``[costs] currency``); --json keeps
    the lever ids of the contract."""
    from satmodel.reporting.labels import LEVER_NAMES

    folder = tmp_path / "usd"
    shutil.copytree(world["folder"], folder)
    (folder / "satmodel.toml").write_text('[source]\npath = "."\n[costs]\ncurrency = "USD"\n')
    out = tmp_path / "value.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["value", "--data", str(folder / "satmodel.toml"), "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    payload = json.loads(out.read_text())
    levers = payload["best_plan"]["levers"]
    assert levers and set(levers) <= set(LEVER_NAMES)  # the JSON keeps the ids
    plan = text.split("best-return plan: ", 1)[1].strip()
    assert plan == ", ".join(LEVER_NAMES[k][0] for k in levers)
    assert f"USD {payload['revenue_at_risk']:,.0f} of USD {payload['monthly_revenue']:,.0f}" in text
    assert "EUR" not in text and not any(k in text for k in levers)
