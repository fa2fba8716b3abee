"""Published reference results (Stata, R, NIST) beyond tests/test_models.py's cases.

Data come from statsmodels.datasets at test time; the reference numbers, with their source,
are in tests/results/*.json (copied from the result files statsmodels ships for its own
tests, never computed by satmodel).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
from statsmodels import datasets

from satmodel.errors import ModelWarning
from satmodel.models import fit

RESULTS = Path(__file__).resolve().parent / "results"


def spec(case: str) -> dict:
    return json.loads((RESULTS / f"{case}.json").read_text(encoding="utf-8"))


def clean_fit(*args, small=False, **kwargs):
    """A reference fit raises no warning (``small``: only that the sample is small)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelWarning)
        result = fit(*args, **kwargs)
    messages = [str(w.message) for w in caught if issubclass(w.category, ModelWarning)]
    assert [m for m in messages if not (small and "too few responses" in m)] == []
    return result


def assert_params(result, params, rel=None, abs_=None, se_rel=None):
    got = result.coefficients_.set_index("term")
    for ref in params:
        estimate = got.loc[ref["term"], "estimate"]
        std_error = got.loc[ref["term"], "std_error"]
        assert estimate == pytest.approx(ref["estimate"], rel=rel, abs=abs_), ref
        assert std_error == pytest.approx(ref["std_error"], rel=se_rel or rel, abs=abs_), ref


def test_spector_logit_matches_stata():
    case = spec("spector_logit")
    data = datasets.spector.load_pandas().data
    result = clean_fit(data, case["formula"], case["family"])
    tol = case["tolerance"]
    assert result.n_obs_ == case["n_obs"]
    assert_params(result, case["params"], rel=tol["relative"])
    assert result.log_likelihood_ == pytest.approx(
        case["log_likelihood"], abs=tol["log_likelihood"]
    )


def test_longley_matches_nist_certified_values():
    """Longley is the classic ill-conditioned design (condition number ~ 1e8)."""
    case = spec("longley_ols")
    data = datasets.longley.load_pandas().data
    result = clean_fit(data, case["formula"], case["family"], small=True)
    rel = case["tolerance"]["relative"]
    assert result.n_obs_ == case["n_obs"]
    assert_params(result, case["params"], rel=rel)
    assert result.scale_ == pytest.approx(case["scale"], rel=rel)
    assert result.r_squared_ == pytest.approx(case["r_squared"], rel=rel)


def star98_long() -> pd.DataFrame:
    """Two rows per school: outcome 1 weighted NABOVE, outcome 0 weighted NBELOW."""
    data = datasets.star98.load_pandas().data
    above = data.drop(columns=["NBELOW"]).rename(columns={"NABOVE": "count"}).assign(above=1)
    below = data.drop(columns=["NABOVE"]).rename(columns={"NBELOW": "count"}).assign(above=0)
    return pd.concat([above, below], ignore_index=True)


def test_star98_binomial_with_frequency_weights_matches_r():
    case = spec("star98_binomial_weights")
    data = star98_long()
    result = clean_fit(data, case["formula"], case["family"], weights="count")
    assert result.n_rows_ == 2 * case["n_obs_rows"]
    assert result.n_obs_ == data["count"].sum()
    assert_params(result, case["params"], rel=case["tolerance"]["relative"])


def cpunish() -> pd.DataFrame:
    return datasets.cpunish.load_pandas().data


def test_cpunish_poisson_matches_r():
    case = spec("cpunish_poisson")
    result = clean_fit(cpunish(), case["formula"], case["family"], small=True)
    tol = case["tolerance"]
    assert result.n_obs_ == case["n_obs"]
    assert_params(result, case["params"], rel=tol["relative"])
    assert result.log_likelihood_ == pytest.approx(
        case["log_likelihood"], abs=tol["log_likelihood"]
    )


def test_cpunish_poisson_with_exposure_matches_r():
    case = spec("cpunish_poisson")
    offset = case["offset_case"]
    data = cpunish().assign(exposure=offset["exposure_value"])
    result = clean_fit(data, case["formula"], case["family"], exposure="exposure", small=True)
    got = result.coefficients_.set_index("term")
    for ref in offset["params"]:
        tol = offset["tolerance"]
        assert got.loc[ref["term"], "estimate"] == pytest.approx(
            ref["estimate"], rel=tol["relative_estimate"]
        )
        assert got.loc[ref["term"], "std_error"] == pytest.approx(
            ref["std_error"], rel=tol["relative_std_error"]
        )


def grunfeld() -> pd.DataFrame:
    data = datasets.grunfeld.load_pandas().data.iloc[:200]
    return data.assign(aw=1 / data["value"])


GRUNFELD = spec("grunfeld_ols_stata")


@pytest.mark.parametrize("case", GRUNFELD["cases"], ids=lambda c: c["cmdline"])
def test_grunfeld_regress_matches_stata(case):
    kwargs = {"cov_type": case["cov_type"], "se_correction": "stata"}
    if case["cov_type"] == "cluster":
        kwargs["cluster"] = "firm"
    if case["weights"]:
        kwargs.update(weights="aw", weights_kind="analytic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)  # 10 clusters: flagged as few
        result = fit(grunfeld(), GRUNFELD["formula"], GRUNFELD["family"], **kwargs)
    assert result.n_obs_ == case["n_obs"]
    assert result.n_clusters_ == case["n_clusters"]
    assert_params(result, case["params"], rel=GRUNFELD["tolerance"]["relative"])
    if case["cov_type"] == "cluster":
        assert any("only 10 clusters" in m for m in result.warnings_)


def test_references_carry_their_source():
    for path in RESULTS.glob("*.json"):
        payload = json.loads(path.read_text(encoding="utf-8"))
        assert payload.get("source"), path.name
