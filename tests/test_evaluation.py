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
from satmodel.evaluation import DIAGNOSTIC_COLUMNS, diagnostics, time_cv
from satmodel.models import fit

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
