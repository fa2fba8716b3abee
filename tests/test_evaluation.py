"""Tests of satmodel.evaluation: time-based cross-validation and diagnostics."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from satmodel.errors import InputError, ModelWarning
from satmodel.evaluation import (
    DIAGNOSTIC_COLUMNS,
    diagnose,
    diagnose_models,
    diagnostics,
    failed_check_messages,
    time_cv,
)
from satmodel.models import fit, fit_default_models

REFERENCES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "references"
RESULTS = Path(__file__).resolve().parent / "results"

needs_references = pytest.mark.requires(
    REFERENCES.is_dir(),
    reason=f"published reference data not found at {REFERENCES} (../shared is absent)",
)


@pytest.fixture(scope="module")
def monthly() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 3000
    data = pd.DataFrame(
        {
            "month": rng.choice([f"2024-{m:02d}" for m in range(1, 9)], n),
            "x": np.round(rng.normal(size=n), 1),
            "segment": rng.choice(["a", "b"], n),
            "users": rng.integers(10, 500, n),
        }
    )
    latent = 1.2 * data["x"] + np.where(data["segment"] == "b", 0.5, 0.0)
    data["csat"] = 1 + np.searchsorted([-1.5, -0.5, 0.5, 1.5], latent + rng.logistic(size=n))
    mu = np.exp(-4 + 0.4 * data["x"]) * data["users"] * rng.gamma(2.0, 0.5, n)
    data["complaints"] = rng.poisson(mu)
    return data


@pytest.mark.parametrize(
    ("formula", "family", "extra", "metrics"),
    [
        ("csat ~ x + C(segment)", "ordinal", {}, {"log_loss", "mae"}),
        ("I(csat >= 4) ~ x + C(segment)", "logit", {}, {"log_loss", "mae"}),
        ("complaints ~ x + C(segment)", "negbin", {"exposure": "users"}, {"mae", "deviance"}),
        ("csat ~ x + C(segment)", "ols", {}, {"mae", "rmse"}),
    ],
)
def test_time_cv_beats_the_baseline(monthly, formula, family, extra, metrics):
    table = time_cv(monthly, formula, family, n_splits=2, **extra)
    assert list(table.columns[:4]) == ["fold", "model", "metric", "value"]
    assert set(table["fold"]) == {0, 1}
    assert set(table["model"]) == {"satmodel", "baseline", "hist_gradient_boosting"}
    assert set(table["metric"]) == metrics
    # expanding window: training always ends before testing starts
    assert (table["train_end"] < table["test_start"]).all()
    assert table.groupby("fold")["n_train"].first().is_monotonic_increasing
    means = table.groupby(["model", "metric"])["value"].mean()
    for metric in metrics:
        assert means[("satmodel", metric)] < means[("baseline", metric)]


def test_time_cv_without_boosting(monthly):
    table = time_cv(monthly, "csat ~ x", "ordinal", n_splits=3, include_boosting=False)
    assert set(table["model"]) == {"satmodel", "baseline"}
    assert table["fold"].nunique() == 3


def test_time_cv_bad_input(monthly):
    with pytest.raises(InputError, match="'period'"):
        time_cv(monthly, "csat ~ x", "ordinal", time_col="period")
    with pytest.raises(InputError, match="too few"):
        time_cv(monthly, "csat ~ x", "ordinal", n_splits=8)


def test_diagnostics_columns_and_basic_checks(monthly):
    result = fit(monthly, "csat ~ x + C(segment)", "ordinal")
    table = diagnostics(result, monthly)
    assert list(table.columns) == DIAGNOSTIC_COLUMNS
    checks = table.set_index("check")
    for name in ("converged", "n_obs", "separation", "collinearity", "proportional_odds"):
        assert bool(checks.loc[name, "ok"]), name
    assert checks.loc["n_obs", "value"] == len(monthly)
    assert {"vif:x", "vif:C(segment)[T.b]"} <= set(checks.index)
    assert checks.loc["vif:x", "value"] == pytest.approx(1.0, abs=0.05)


def test_diagnostics_flags_collinearity_and_high_vif():
    rng = np.random.default_rng(5)
    x = rng.normal(size=500)
    data = pd.DataFrame({"x": x, "z": x + rng.normal(scale=0.05, size=500)})
    data["y"] = rng.poisson(np.exp(0.2 * x))
    result = fit(data, "y ~ x + z", "poisson")
    checks = diagnostics(result, data).set_index("check")
    assert checks.loc["vif:x", "value"] > 100 and not checks.loc["vif:x", "ok"]
    assert bool(checks.loc["overdispersion_lr", "ok"])  # Poisson data: no overdispersion


def test_diagnostics_flags_non_proportional_odds():
    rng = np.random.default_rng(3)
    n = 4000
    x = rng.normal(size=n)
    # x moves only the top category: the cumulative logits have very different slopes
    low = rng.logistic(size=n) > 0.0
    top = rng.logistic(size=n) + 2.0 * x > 1.5
    y = np.where(top, 3, np.where(low, 2, 1))
    data = pd.DataFrame({"x": x, "y": y})
    result = fit(data, "y ~ x", "ordinal")
    checks = diagnostics(result, data).set_index("check")
    assert checks.loc["proportional_odds", "value"] < 1e-6
    assert not checks.loc["proportional_odds", "ok"]
    assert not checks.loc["proportional_odds:x", "ok"]


def test_diagnostics_reports_separation_and_too_few():
    x = np.arange(20, dtype=float)
    data = pd.DataFrame({"x": x, "y": (x >= 10).astype(int)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        result = fit(data, "y ~ x", "logit")
    checks = diagnostics(result, data).set_index("check")
    assert not checks.loc["separation", "ok"]
    assert not checks.loc["n_obs", "ok"]


@needs_references
def test_brant_test_matches_published_stata_output():
    spec = json.loads((RESULTS / "brant_ologit_ucla.json").read_text(encoding="utf-8"))
    data = pd.read_csv(REFERENCES / spec["data"])
    result = fit(data, spec["formula"], "ordinal", order=spec["order"])
    checks = diagnostics(result, data).set_index("check")
    tol = spec["tolerance"]

    def chi2_df(note):
        match = re.search(r"chi2 = ([0-9.]+), df = (\d+)", note)
        return float(match.group(1)), int(match.group(2))

    omnibus = checks.loc["proportional_odds"]
    chi2, df = chi2_df(omnibus["note"])
    assert chi2 == pytest.approx(spec["omnibus"]["chi2"], abs=tol["chi2"])
    assert df == spec["omnibus"]["df"]
    assert omnibus["value"] == pytest.approx(spec["omnibus"]["p_value"], abs=tol["p_value"])
    for ref in spec["per_term"]:
        row = checks.loc[f"proportional_odds:{ref['term']}"]
        chi2, df = chi2_df(row["note"])
        assert chi2 == pytest.approx(ref["chi2"], abs=tol["chi2"])
        assert df == ref["df"]
        assert row["value"] == pytest.approx(ref["p_value"], abs=tol["p_value"])


@needs_references
@pytest.mark.parametrize("family", ["poisson", "negbin"])
def test_ships_overdispersion(family):
    data = pd.read_csv(REFERENCES / "ships.csv")
    result = fit(data, "accident ~ yr_con + op_75_79", family, exposure="service")
    checks = diagnostics(result, data).set_index("check")
    # LR statistic from the published Stata log likelihoods: 2 * (-82.49115612 + 91.28727940)
    assert checks.loc["overdispersion_lr", "value"] == pytest.approx(17.59224656, abs=1e-4)
    assert bool(checks.loc["overdispersion_lr", "ok"]) is (family == "negbin")
    assert checks.loc["dispersion", "value"] > 1.0


# --------------------------------------------------------------------------------------
# diagnose: failed checks become the model's warnings
# --------------------------------------------------------------------------------------


def non_proportional_odds(seed=11, n=1500):
    """x moves P(y >= 2) strongly and P(y = 3) not at all: proportional odds fails."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    low = 2.0 * x + rng.logistic(size=n) < 0
    top = rng.uniform(size=n) < 0.4
    y = np.where(low, 1, np.where(top, 3, 2))
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "y": y})


def test_diagnose_puts_a_failed_brant_test_into_warnings():
    data = non_proportional_odds()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelWarning)
        result = fit(data, "y ~ x + z", "ordinal")
    assert result.reliable
    table = diagnose(result, data)
    row = table.set_index("check").loc["proportional_odds"]
    assert not row["ok"]
    (message,) = [m for m in result.warnings_ if m.startswith("proportional odds")]
    assert "x" in message.split("terms:")[1] and "z" not in message.split("terms:")[1]
    assert not result.reliable and message in result.to_dict()["warnings"]
    diagnose(result, data)
    assert result.warnings_.count(message) == 1


def test_diagnose_adds_nothing_to_a_sound_model(monthly):
    data = monthly
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelWarning)
        result = fit(data, "csat ~ x + C(segment)", "ols")
    before = list(result.warnings_)
    table = diagnose(result, data)
    assert table["ok"].all()
    assert result.warnings_ == before


def test_separation_row_covers_count_models():
    rng = np.random.default_rng(2)
    group = rng.choice(["a", "b", "c"], 300)
    y = np.where(group == "c", 0, rng.poisson(2.0, 300))
    data = pd.DataFrame({"g": group, "y": y})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        result = fit(data, "y ~ C(g)", "poisson")
    row = diagnostics(result, data).set_index("check").loc["separation"]
    assert not row["ok"] and "C(g)[T.c]" in row["note"]


def default_model_data(seed=7):
    rng = np.random.default_rng(seed)
    months = [f"2025-{m:02d}" for m in range(1, 7)]
    customers = [f"c{i:02d}" for i in range(40)]
    panel = pd.DataFrame(
        [(c, m) for c in customers for m in months], columns=["customer_id", "month"]
    )
    n = len(panel)
    panel["latency_p95_ms"] = rng.lognormal(6, 0.3, n)
    panel["downtime_minutes"] = rng.exponential(30, n)
    # nearly the same column twice: the VIF check must fail and say so in warnings_
    panel["downtime_minutes_lag1"] = panel["downtime_minutes"] * rng.uniform(0.99, 1.01, n)
    panel["active_users"] = rng.integers(0, 500, n)
    panel["complaints"] = rng.poisson(0.01 * panel["active_users"])
    eta = -1.2 * np.log(panel["latency_p95_ms"]) - 0.2 * np.log1p(panel["downtime_minutes"])
    rows = rng.integers(0, n, 3000)
    responses = panel.iloc[rows].reset_index(drop=True)
    latent = eta.to_numpy()[rows] + rng.logistic(size=len(rows))
    responses["csat"] = 1 + np.searchsorted([-9.5, -8.5, -7.5, -6.5], latent)
    return panel, responses


def test_fit_default_models_report_every_failed_diagnostic():
    panel, responses = default_model_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        results = fit_default_models(responses, panel)
    for name, result in results.items():
        data = panel.loc[panel["active_users"] > 0] if name == "complaints" else responses
        table = diagnostics(result, data)
        assert not table["ok"].all(), name
        for message in failed_check_messages(table):
            assert message in result.warnings_, (name, message)
        assert any(m.startswith("high collinearity") for m in result.warnings_), name
        assert not result.reliable


def test_diagnose_models_turns_a_check_that_cannot_run_into_a_warning():
    data = non_proportional_odds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        result = fit(data, "y ~ x + z", "ordinal")
    tables = diagnose_models({"csat": result}, {"csat": data.drop(columns=["z"])})
    assert tables == {}
    assert any(m.startswith("diagnostics could not run") for m in result.warnings_)
