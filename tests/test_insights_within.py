"""Insights use the fit's own structure: within-customer means, its link, the satisfied cutoff."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from satmodel import Workbook, fit, generate_demo
from satmodel.config import load_config
from satmodel.errors import InputError
from satmodel.insights import OutcomeModel, current_profile, solve_target, what_if
from satmodel.models import fit_default_models


def small_panel(customers: int = 120, months: int = 6, seed: int = 3) -> pd.DataFrame:
    """A panel whose slower customers are less satisfied for other reasons too."""
    rng = np.random.default_rng(seed)
    cid = np.repeat([f"c{i:03d}" for i in range(customers)], months)
    persistent = np.repeat(rng.normal(0.0, 0.5, customers), months)
    latency = np.exp(6.0 + persistent + rng.normal(0.0, 0.4, len(cid)))
    latent = -0.6 * np.log(latency) - 0.8 * persistent + rng.logistic(size=len(cid))
    csat = 1 + np.searchsorted(np.array([-6.2, -5.2, -4.2, -3.2]), latent)
    return pd.DataFrame(
        {
            "customer_id": cid,
            "month": np.tile([f"2025-{m + 1:02d}" for m in range(months)], customers),
            "segment": np.repeat(rng.choice(["smb", "enterprise"], customers), months),
            "latency_p95_ms": latency,
            "csat": csat,
            "csat_mean": csat.astype(float),
        }
    )


FORMULA = "csat ~ np.log(latency_p95_ms)"


@pytest.fixture(scope="module")
def panel():
    return small_panel()


@pytest.mark.parametrize("link", ["logit", "probit"])
@pytest.mark.parametrize("within", [None, "customer_id"])
def test_what_if_predicts_through_the_fits_own_link_and_means(panel, link, within):
    result = fit(panel, FORMULA, "ordinal", link=link, within=within, cluster="customer_id")
    table = what_if({"csat": result}, panel, {"latency_p95_ms": 250.0}, segment="smb", n_sim=0)
    rows = current_profile(panel, segment="smb")
    for i, frame in enumerate((rows, rows.assign(latency_p95_ms=250.0))):
        expected = result.predict(frame)["expected"].mean()
        assert table["csat_mean"].iloc[i] == pytest.approx(expected, rel=1e-10)


def test_a_counterfactual_keeps_each_customers_persistent_part(panel):
    result = fit(panel, FORMULA, "ordinal", within="customer_id")
    model = OutcomeModel({"csat": result}, "csat_mean")
    one = panel[panel["month"] == "2025-06"].head(3).reset_index(drop=True)
    moved = one.assign(latency_p95_ms=400.0)
    X = model.design(moved)
    means = result.within_.means.loc[one["customer_id"], "mean(np.log(latency_p95_ms))"]
    np.testing.assert_allclose(X[:, -1], means.to_numpy())  # the persistent part is its own
    predicted = model.evaluate(X, model.theta)[:, 0]
    np.testing.assert_allclose(predicted, result.predict(moved)["expected"].to_numpy())
    # same lever level, different customers: different answers (persistent parts differ)
    assert np.ptp(predicted) > 0


def test_a_customer_the_fit_never_saw_gets_its_own_rows_means(panel):
    surveyed = panel[panel["customer_id"] != "c000"]
    result = fit(surveyed, FORMULA, "ordinal", within="customer_id")
    with pytest.raises(InputError, match="c000"):
        OutcomeModel({"csat": result}, "csat_mean").design(panel[panel["customer_id"] == "c000"])
    model = OutcomeModel({"csat": result}, "csat_mean", panel=panel)
    own = np.log(panel.loc[panel["customer_id"] == "c000", "latency_p95_ms"]).mean()
    assert model.persistent.loc["c000"].iloc[0] == pytest.approx(own)
    res = solve_target({"csat": result}, panel, "csat_mean", 3.0, "latency_p95_ms", n_sim=0)
    assert res.n_customer_months == panel["customer_id"].nunique()


def test_the_satisfied_cutoff_reaches_the_top2_model_and_the_insights(panel):
    data = panel.assign(error_rate=np.linspace(0, 0.02, len(panel)))
    models = fit_default_models(data, None, satisfied_cutoff=5)
    assert models["top2"].outcome == "I(csat >= 5)"
    assert models["csat"].within_ is not None and models["top2"].within_ is not None
    res = solve_target(models, data, "csat_top2_rate", 0.5, "latency_p95_ms", n_sim=0)
    rows = current_profile(data)
    assert res.outcome_now == pytest.approx(models["csat"].predict(rows)["p_5"].mean())
    logit = solve_target(
        models, data, "csat_top2_rate", 0.5, "latency_p95_ms", n_sim=0, top2_model="logit"
    )
    assert logit.outcome_now == pytest.approx(models["top2"].predict(rows)["probability"].mean())
    with pytest.raises(InputError, match="fitted with cutoff 5"):
        OutcomeModel(models, "csat_top2_rate", top2_model="logit", satisfied_cutoff=4)
    for bad in (4.5, 6, 1, "4"):
        with pytest.raises(InputError, match="satisfied_cutoff"):
            fit_default_models(data, None, satisfied_cutoff=bad)


def test_within_falls_back_to_pooled_with_a_warning(panel):
    once = panel[panel["month"] == "2025-01"]
    once = once.assign(error_rate=np.linspace(0, 0.02, len(once)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = fit_default_models(once, None)
    assert models["csat"].within_ is None
    assert any("within-customer identification impossible" in w for w in models["csat"].warnings_)
    pooled = fit_default_models(
        panel.assign(error_rate=np.linspace(0, 0.02, len(panel))), None, identification="pooled"
    )
    assert pooled["csat"].within_ is None
    with pytest.raises(InputError, match="identification"):
        fit_default_models(panel, None, identification="fixed")


def test_workbook_passes_models_identification_and_cutoff(tmp_path):
    folder = tmp_path / "demo"
    generate_demo(folder, customers=30, months=4, seed=2, progress=False)
    config = tmp_path / "satmodel.toml"
    config.write_text(
        f'[source]\npath = "{folder}"\n[thresholds]\nsatisfied_cutoff = 5\n'
        '[models]\nidentification = "pooled"\n'
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = Workbook(config).models_
    assert models["top2"].outcome == "I(csat >= 5)"
    assert all(m.within_ is None for m in models.values())
    assert load_config(config).models.identification == "pooled"
    bad = tmp_path / "bad.toml"
    bad.write_text('[models]\nidentification = "random"\n')
    with pytest.raises(InputError, match="models.identification"):
        load_config(bad)
