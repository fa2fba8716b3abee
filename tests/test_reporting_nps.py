"""NPS in the driver importance table and the proposal's appendix; response curves that say
when the data cannot tell a lever's effect from none."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from test_notebooks import demo_data

from satmodel import reporting
from satmodel.config import Config
from satmodel.errors import InputError
from satmodel.insights.loyalty import fit_nps_model
from satmodel.insights.whatif import what_if
from satmodel.models import fit
from satmodel.reporting.figures import MUTED_COLOR


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    report = reporting.load_report_data(str(demo_data(tmp_path_factory)), "")
    return report, reporting.fit_models(report)


def without_nps(report):
    """The same report data with no NPS answer anywhere."""
    panel = report.panel.assign(nps_n=0, nps_score=np.nan)
    responses = report.responses.assign(nps=np.nan)
    return dataclasses.replace(report, panel=panel, responses=responses, notes=[])


# --------------------------------------------------------------------------------------
# importance
# --------------------------------------------------------------------------------------


def test_importance_table_gains_the_nps_share_and_rank(demo):
    report, _ = demo
    csat = reporting.driver_importance(report, n_boot=20)
    nps = reporting.driver_importance(report, n_boot=20, outcome="nps_score")
    assert nps.outcome == "nps_score"
    view = reporting.importance_view(csat, nps=nps)
    assert list(view.columns[-2:]) == ["nps_share_pct", "nps_rank"]
    # the NPS columns follow the CSAT table's drivers: matched by name, not by position
    by_name = dict(zip(nps.table_["driver"], nps.table_["relative_share"], strict=True))
    for name, share in zip(csat.table_["driver"], view["nps_share_pct"], strict=True):
        assert share == pytest.approx(100 * by_name[name])
    assert view["nps_share_pct"].sum() == pytest.approx(100.0)
    assert sorted(view["nps_rank"]) == list(range(1, len(view) + 1))
    assert list(reporting.importance_view(csat).columns) == list(view.columns[:-2])


def test_importance_without_nps_answers_is_left_out_silently(demo):
    report, _ = demo
    silent = without_nps(report)
    assert reporting.driver_importance(silent, n_boot=0, outcome="nps_score") is None
    assert silent.notes == []
    with pytest.raises(InputError, match="outcome 'nps'.*nps_score"):
        reporting.driver_importance(report, outcome="nps")


# --------------------------------------------------------------------------------------
# proposal
# --------------------------------------------------------------------------------------


def enterprise(report, models):
    request = reporting.proposal_request(report, "enterprise", "", 4.3, 0.0, "")
    predictions = reporting.tier_predictions(models, report, request, n_sim=200)
    return request, predictions


def test_nps_now_is_the_months_answers_of_the_subject(demo):
    report, models = demo
    request, predictions = enterprise(report, models)
    outlook = reporting.loyalty_outlook(report, request, predictions, "Gold", n_sim=200)
    answers = report.responses.loc[
        (report.responses["month"] == report.month)
        & (report.responses["segment"] == "enterprise")
        & report.responses["nps"].notna(),
        "nps",
    ]
    assert outlook.answers == len(answers) > 0
    expected = 100 * ((answers >= 9).mean() - (answers <= 6).mean())
    assert outlook.now == pytest.approx(expected)
    summary = reporting.loyalty_summary(outlook)
    assert summary["nps_now"] == pytest.approx(expected)
    assert summary["nps_expected"]["tier"] == "Gold"


def test_tier_nps_is_promoters_minus_detractors_of_the_nps_model(demo):
    report, models = demo
    request, predictions = enterprise(report, models)
    tiers = reporting.tier_nps(report, request, predictions, n_sim=200)
    assert list(tiers["tier"]) == list(predictions["tier"])
    assert (tiers["nps_ci_low"] <= tiers["nps"]).all() and (
        tiers["nps"] <= tiers["nps_ci_high"]
    ).all()
    assert tiers["nps"].between(-100, 100).all()
    # the group probabilities of the same what-if, straight from the NPS model
    levers = ["availability_pct", "latency_p95_ms", "resolution_hours_median"]
    scenarios = [
        {"scenario": r["tier"], **{k: r[k] for k in levers}}
        for _, r in predictions.iloc[1:].iterrows()
    ]
    probs = what_if(
        {"csat": fit_nps_model(report.responses)},
        report.panel,
        scenarios,
        segment="enterprise",
        n_sim=0,
        satisfied_cutoff=2,
        guarantee=True,  # a tier's levels are guarantees, as in tier_predictions
    )
    np.testing.assert_allclose(tiers["nps"], 100 * (probs["p_2"] - probs["p_0"]), atol=1e-6)
    np.testing.assert_allclose(tiers["promoters_pct"], 100 * probs["p_2"], atol=1e-6)


def test_appendix_tells_the_nps_in_plain_words(demo):
    report, models = demo
    request, predictions = enterprise(report, models)
    offer = reporting.build_offer(report, request, predictions)
    chosen = offer.recommended.tier
    outlook = reporting.loyalty_outlook(report, request, predictions, chosen, n_sim=200)
    text = reporting.loyalty_text(outlook)
    assert "recommend us" in text and f"recommended {chosen} service" in text
    assert f"{outlook.answers:,} answers" in text
    assert not re.search(r"\b[a-z]+_[a-z_]+\b|satmodel|ordinal|\d\.\d", text)
    args = (offer, predictions, pd.DataFrame(), pd.DataFrame(), [])
    html = reporting.appendix_html(*args, loyalty=outlook)
    assert "Likely to recommend us" in html and "Net promoter score per tier" in html
    assert "recommend us" not in reporting.appendix_html(*args)


def test_without_nps_answers_the_proposal_says_nothing_of_it(demo):
    report, models = demo
    silent = without_nps(report)
    request, predictions = enterprise(silent, models)
    offer = reporting.build_offer(silent, request, predictions)
    outlook = reporting.loyalty_outlook(silent, request, predictions, offer.recommended.tier)
    assert outlook.answers == 0 and outlook.tiers.empty
    assert reporting.loyalty_summary(outlook) == {
        "nps_now": None,
        "nps_answers": 0,
        "nps_expected": None,
    }
    assert reporting.loyalty_text(outlook) == ""
    html = reporting.appendix_html(
        offer, predictions, pd.DataFrame(), pd.DataFrame(), [], loyalty=outlook
    )
    assert "recommend" not in html and silent.notes == []


# --------------------------------------------------------------------------------------
# response curves
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def noise_and_signal():
    """CSAT driven by p95 latency; the resolution time is pure noise (seeded)."""
    rng = np.random.default_rng(1)
    months = ["2025-01", "2025-02", "2025-03"]
    panel = pd.DataFrame(
        [
            {
                "customer_id": f"c{c}",
                "month": m,
                "segment": ("smb", "enterprise")[c % 2],
                "latency_p95_ms": float(np.exp(rng.normal(6, 0.6))),
                "resolution_hours_median": float(np.exp(rng.normal(2, 0.8))),
            }
            for c in range(60)
            for m in months
        ]
    )
    responses = panel.loc[panel.index.repeat(8)].reset_index(drop=True)
    latent = -1.5 * np.log(responses["latency_p95_ms"]) + rng.logistic(size=len(responses))
    edges = np.quantile(latent, [0, 0.1, 0.25, 0.5, 0.8, 1])
    responses["csat"] = pd.cut(latent, edges, labels=False, include_lowest=True) + 1
    model = fit(
        responses, "csat ~ np.log(latency_p95_ms) + np.log(resolution_hours_median)", "ordinal"
    )
    data = reporting.ReportData(
        month=months[-1],
        window=(months[0], months[-1]),
        source=None,
        validation=None,
        config=Config(),
        panel=panel,
    )
    curves = reporting.response_curves(
        reporting.ModelSection(results={"csat": model}),
        data,
        levers=("latency_p95_ms", "resolution_hours_median"),
        n_sim=300,
    )
    return curves, data


def test_a_noise_lever_is_not_significant_and_a_strong_one_is(noise_and_signal):
    curves, data = noise_and_signal
    assert data.notes == []
    assert curves["significant"].dtype == bool
    per = curves.groupby("lever")["significant"]
    assert per.all()["latency_p95_ms"]
    assert not per.any()["resolution_hours_median"]


def test_the_noise_curve_is_grey_dashed_and_its_title_says_so(noise_and_signal):
    curves, _ = noise_and_signal
    figure = reporting.plot_response_curves(curves)
    strong, noise = figure.axes[:2]
    assert "cannot tell" not in strong.get_title()
    assert "the data cannot tell" in noise.get_title() and "every segment" in noise.get_title()
    muted = to_hex(MUTED_COLOR)
    dashed = [
        (to_hex(line.get_color()), line.get_linestyle())
        for line in noise.lines
        if len(line.get_xdata()) > 1
    ]
    assert dashed and all(pair == (muted, "--") for pair in dashed)
    solid = [to_hex(line.get_color()) for line in strong.lines if len(line.get_xdata()) > 1]
    assert solid and muted not in solid
