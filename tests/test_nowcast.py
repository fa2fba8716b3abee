"""Nowcast and predictive at-risk forecast on simulated customers with persistent effects."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special

import satmodel
from satmodel.errors import InputError
from satmodel.insights.nowcast import (
    backtest_at_risk,
    customer_effects,
    forecast_mean_csat,
    nowcast,
)

CUTS = np.array([-2.0, -1.0, 0.0, 1.2])
MONTHS = [f"2025-{m:02d}" for m in range(1, 9)]


def simulate(n_customers=240, spread=0.8, seed=1, unsurveyed=0):
    """Customers with a latent effect u_i correlated with their mean x; 1-4 answers a month."""
    rng = np.random.default_rng(seed)
    level = rng.normal(size=n_customers)
    u = spread * (0.6 * level + 0.8 * rng.normal(size=n_customers))
    panel, responses = [], []
    for i in range(n_customers):
        cid = f"c{i:03d}"
        usual = 1 + i % 4
        for month in MONTHS:
            x = level[i] + rng.normal(scale=0.7)
            n = 0 if i < unsurveyed else rng.binomial(usual, 0.8)
            eta = -1.0 * x + u[i]
            cum = special.expit(CUTS[None, :] - eta)
            draws = 1 + (rng.random((n, 1)) > cum).sum(axis=1)
            segment = "a" if i % 2 else "b"
            for score in draws:
                responses.append({"customer_id": cid, "month": month, "segment": segment,
                                  "x": x, "csat": int(score)})  # fmt: skip
            panel.append({"customer_id": cid, "month": month, "segment": segment, "x": x,
                          "csat_n": n, "csat_mean": draws.mean() if n else np.nan})  # fmt: skip
    return pd.DataFrame(panel), pd.DataFrame(responses), u


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return satmodel.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def world():
    panel, responses, u = simulate()
    return panel, responses, u


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_nowcast_uses_the_fits_link_and_cutoff(world, link):
    panel, responses, _ = world
    result = quiet_fit(responses, "csat ~ x", "ordinal", link=link)
    now = nowcast({"csat": result}, panel, satisfied_cutoff=3)
    predicted = result.predict(panel)
    np.testing.assert_allclose(now["csat_expected"], predicted["expected"])
    np.testing.assert_allclose(
        now["top2_probability"], predicted[["p_3", "p_4", "p_5"]].sum(axis=1), atol=1e-12
    )
    assert (now["top2_ci_low"] < now["top2_probability"]).all()


def test_nowcast_of_a_within_fit_keeps_each_customers_persistent_part(world):
    panel, responses, _ = world
    seen = responses.loc[responses["customer_id"] != "c000"]
    result = quiet_fit(seen, "csat ~ x", "ordinal", within="customer_id")
    now = nowcast({"csat": result}, panel)
    known = panel["customer_id"] != "c000"
    np.testing.assert_allclose(
        now.loc[known, "csat_expected"], result.predict(panel.loc[known])["expected"]
    )
    # the unseen customer's persistent part is the mean of its own rows
    own = panel.loc[~known].assign(**{"mean(x)": panel.loc[~known, "x"].mean()})
    np.testing.assert_allclose(now.loc[~known, "csat_expected"], result.predict(own)["expected"])


def test_customer_effects_find_the_heterogeneity():
    panel, responses, u = simulate(spread=0.8, seed=2)
    result = quiet_fit(responses, "csat ~ x", "ordinal", within="customer_id")
    effects = customer_effects(result, responses)
    table = effects.table_.set_index("customer_id")
    truth = pd.Series(u, index=[f"c{i:03d}" for i in range(len(u))])
    assert effects.variance_ > 0.05
    assert np.corrcoef(table["effect"], truth.loc[table.index])[0, 1] > 0.6
    # shrinkage: effects are pulled towards 0, most for customers with few answers
    assert (table["effect"].abs() <= table["mean_residual"].abs() + 1e-12).all()
    assert (table["effect_variance"] <= effects.variance_ + 1e-12).all()
    none = simulate(spread=0.0, seed=2)[1]
    flat = customer_effects(quiet_fit(none, "csat ~ x", "ordinal", within="customer_id"), none)
    assert flat.variance_ < 0.2 * effects.variance_


def test_predictive_interval_covers_next_months_mean_and_flags_are_calibrated():
    panel, responses, _ = simulate(n_customers=400, seed=4)
    last, before = MONTHS[-1], MONTHS[-2]
    train = responses.loc[responses["month"] <= before]
    result = quiet_fit(train, "csat ~ x", "ordinal", within="customer_id")
    forecast = forecast_mean_csat(result, panel, train, before, 3.6, probability=0.8)
    outcome = panel.loc[panel["month"] == last].set_index("customer_id")
    seen = forecast["customer_id"].map(outcome["csat_n"]) > 0
    score = forecast["customer_id"].map(outcome["csat_mean"])
    inside = (score >= forecast["predictive_low"]) & (score <= forecast["predictive_high"])
    assert inside[seen].mean() > 0.88
    # the interval of the expected score alone (parameter uncertainty) misses most of them
    old = nowcast({"csat": result}, panel.loc[panel["month"] == before])
    narrow = (score.to_numpy() >= old["csat_expected_ci_low"].to_numpy()) & (
        score.to_numpy() <= old["csat_expected_ci_high"].to_numpy()
    )
    assert narrow[seen.to_numpy()].mean() < 0.5
    flagged = forecast["at_risk"] & seen
    assert flagged.sum() >= 10
    assert (forecast.loc[forecast["at_risk"], "p_below_target"] > 0.8).all()
    assert (score[flagged] < 3.6).mean() > 0.7
    assert (forecast["expected_responses"] >= 1).all()


def test_backtest_counts_the_flags_of_the_month_before():
    panel, responses, _ = simulate(n_customers=120, seed=6, unsurveyed=10)
    table = backtest_at_risk(responses, panel, "csat ~ x", {"a": 3.6, "b": 3.8}, MONTHS[-2:])
    assert list(table["month"]) == MONTHS[-2:]
    assert list(table["flagged_in"]) == MONTHS[-3:-1]
    row = table.iloc[-1]
    train = responses.loc[responses["month"] <= MONTHS[-2]]
    result = quiet_fit(train, "csat ~ x", "ordinal", within="customer_id", cluster="customer_id")
    flags = forecast_mean_csat(result, panel, train, MONTHS[-2], {"a": 3.6, "b": 3.8})
    then = panel.loc[panel["month"] == MONTHS[-1]].set_index("customer_id")
    answered = flags["customer_id"].map(then["csat_n"]) > 0
    below = answered & (flags["customer_id"].map(then["csat_mean"]) < flags["csat_target"])
    assert row["flagged"] == flags["at_risk"].sum()
    assert row["flagged_answered"] == (flags["at_risk"] & answered).sum()
    assert row["flagged_below"] == (flags["at_risk"] & below).sum()
    assert row["precision"] == pytest.approx(row["flagged_below"] / row["flagged_answered"])
    assert row["base_rate"] == pytest.approx(below.sum() / answered.sum())
    # customers never surveyed are forecast too (with the population's spread)
    assert flags["customer_id"].isin([f"c{i:03d}" for i in range(10)]).sum() == 10


def test_forecast_input_errors(world):
    panel, responses, _ = world
    result = quiet_fit(responses, "csat ~ x", "ordinal", within="customer_id")
    with pytest.raises(InputError, match="probability"):
        forecast_mean_csat(result, panel, responses, MONTHS[-1], 4.0, probability=1.5)
    with pytest.raises(InputError, match="segment 'a'"):
        forecast_mean_csat(result, panel, responses, MONTHS[-1], {"b": 4.0})
    with pytest.raises(InputError, match="no customer-month"):
        forecast_mean_csat(result, panel, responses, "2030-01", 4.0)
    ols = quiet_fit(panel.dropna(), "csat_mean ~ x", "ols")
    with pytest.raises(InputError, match="ordinal"):
        forecast_mean_csat(ols, panel, responses, MONTHS[-1], 4.0)
