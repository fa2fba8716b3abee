"""The models recover the demo generator's true coefficients (truth.json), via Python and CLI."""

import json
import subprocess
import sys
import warnings

import pytest

from satmodel import build_panel, build_responses, fit, open_source
from satmodel.demo import generate_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("truth")
    db = root / "satmodel.duckdb"
    result = generate_demo(
        root / "demo",
        customers=200,
        months=12,
        seed=5,
        duckdb_path=db,
        progress=False,
        customer_effects=False,  # pooled fits recover the truth only without hidden effects
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


@pytest.mark.slow
def test_ordinal_csat_recovers_the_truth(demo):
    truth = demo["truth"]["csat"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(demo["responses"], truth["formula"], "ordinal", cluster="customer_id", ci=0.99)
    assert result.reliable
    _assert_covers(result.coefficients_, truth["params"])
    for estimate, true_cut in zip(result.thresholds_["estimate"], truth["thresholds"], strict=True):
        assert abs(estimate - true_cut) < 3 * result.thresholds_["std_error"].max()


@pytest.mark.slow
def test_negbin_complaints_recover_the_truth_with_estimated_alpha(demo):
    truth = demo["truth"]["complaints"]
    data = demo["panel"].dropna(subset=["downtime_minutes_lag1"])
    result = fit(data, truth["formula"], "negbin", exposure="active_users", ci=0.99)
    _assert_covers(result.coefficients_, truth["params"])
    alpha_true = demo["truth"]["complaints"]["alpha"]
    assert abs(result.alpha_ - alpha_true) < 2.58 * result.alpha_std_error_


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
            "--cluster",
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
