"""The models recover the demo generator's true coefficients (truth.json), via Python and CLI.

The default demo world has hidden customer effects tied to latency: within-customer fits
recover the true (within) effects of the time-varying drivers; the pooled fit is biased.
"""

import json
import subprocess
import sys
import warnings

import pytest

from satmodel import build_panel, build_responses, fit, open_source
from satmodel.demo import generate_demo

LATENCY = "np.log(latency_p95_ms)"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("truth")
    db = root / "satmodel.duckdb"
    result = generate_demo(
        root / "demo",
        customers=200,
        months=12,
        seed=5,
        start_month="2024-11",  # fixed: the default start follows today's date
        components=False,  # the component world has its own truth tests
        duckdb_path=db,
        progress=False,
    )
    source = open_source(db)
    panel = build_panel(source)
    responses = build_responses(source, panel)
    return {"truth": result.truth, "db": db, "panel": panel, "responses": responses}


def _assert_covers(coefficients, truth_params):
    table = coefficients.set_index("term")
    for term, value in truth_params.items():
        low, high = table.loc[term, "ci_low"], table.loc[term, "ci_high"]
        assert low <= value <= high, (term, low, value, high)


def _time_varying(params: dict) -> dict:
    """The true effects of the drivers that vary within customers (not segment, intercept)."""
    return {t: v for t, v in params.items() if t != "Intercept" and not t.startswith("C(segment)")}


@pytest.mark.slow
def test_within_ordinal_csat_recovers_the_truth_and_pooled_is_biased(demo):
    truth = demo["truth"]["csat"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(demo["responses"], truth["formula"], "ordinal", within="customer_id", ci=0.99)
        pooled = fit(demo["responses"], truth["formula"], "ordinal", cluster="customer_id")
    assert result.reliable, result.warnings_
    _assert_covers(result.coefficients_, _time_varying(truth["params"]))
    latency = pooled.coefficients_.set_index("term").loc[LATENCY]
    assert latency["ci_high"] < truth["params"][LATENCY], latency  # visibly biased


@pytest.mark.slow
def test_within_negbin_complaints_recover_the_truth_and_pooled_is_biased(demo):
    truth = demo["truth"]["complaints"]
    data = demo["panel"].dropna(subset=["downtime_minutes_lag1"])
    result = fit(
        data, truth["formula"], "negbin", exposure="active_users", within="customer_id", ci=0.99
    )
    _assert_covers(result.coefficients_, _time_varying(truth["params"]))
    pooled = fit(data, truth["formula"], "negbin", exposure="active_users", cluster="customer_id")
    latency = pooled.coefficients_.set_index("term").loc[LATENCY]
    assert latency["ci_low"] > truth["params"][LATENCY], latency


@pytest.mark.slow
def test_cli_fit_on_a_source_fits_responses_for_csat(demo, tmp_path):
    truth = demo["truth"]["csat"]
    out = tmp_path / "csat.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "satmodel",
            "fit",
            "--data",
            str(demo["db"]),
            "--formula",
            truth["formula"],
            "--family",
            "ordinal",
            "--within",
            "customer_id",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(out.read_text())
    assert payload["n_obs"] == len(demo["responses"].dropna(subset=["downtime_minutes_lag1"]))
    assert [t["term"] for t in payload["params"]] == list(truth["params"])
    assert len(payload["thresholds"]) == 4
    assert payload["within"] == "customer_id"
    by_term = {t["term"]: t for t in payload["params"]}
    for term, value in _time_varying(truth["params"]).items():
        assert by_term[term]["ci_low"] <= value <= by_term[term]["ci_high"], (term, value)
