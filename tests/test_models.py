"""Tests of satmodel.models: published R/Stata numbers, collapsing, clusters, JSON, warnings."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.miscmodels.ordinal_model import OrderedModel

import satmodel
from satmodel.errors import InputError, ModelWarning
from satmodel.models import FitResult, default_formulas, fit, fit_default_models

REFERENCES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "references"
RESULTS = Path(__file__).resolve().parent / "results"
REFERENCE_CASES = [
    "ologit_ucla",
    "MASS_housing",
    "ships_poisson",
    "ships_negbin",
    "randhie_negbin",
]
TIDY = ["term", "estimate", "std_error", "ci_low", "ci_high", "p_value"]

needs_references = pytest.mark.requires(
    REFERENCES.is_dir(),
    reason=f"published reference data not found at {REFERENCES} (../shared is absent)",
)


def expected(case: str) -> dict:
    return json.loads((RESULTS / f"{case}.json").read_text(encoding="utf-8"))


def reference_data(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCES / name)


def fit_case(spec: dict, **extra) -> FitResult:
    data = reference_data(spec["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelWarning)  # reference fits must be clean
        return fit(
            data,
            spec["formula"],
            spec["family"],
            exposure=spec.get("exposure"),
            weights=spec.get("weights"),
            order=spec.get("order"),
            **extra,
        )


def check_against(spec: dict, params: dict, thresholds: dict, log_likelihood, alpha, n_obs):
    """Compare fitted numbers (dicts term -> {estimate, std_error}) with a reference spec."""
    tol = spec["tolerance"]
    for ref in spec["params"]:
        got = params[ref["term"]]
        assert got["estimate"] == pytest.approx(ref["estimate"], abs=tol["estimate"]), ref
        if "std_error" in ref:
            assert got["std_error"] == pytest.approx(ref["std_error"], abs=tol["std_error"]), ref
    for ref in spec.get("thresholds", []):
        got = thresholds[ref["term"]]
        assert got["estimate"] == pytest.approx(ref["estimate"], abs=tol["estimate"]), ref
    if "log_likelihood" in spec:
        assert log_likelihood == pytest.approx(spec["log_likelihood"], abs=tol["log_likelihood"])
    if "residual_deviance" in spec:
        assert -2 * log_likelihood == pytest.approx(
            spec["residual_deviance"], abs=tol["residual_deviance"]
        )
    if spec.get("alpha") is not None:
        assert alpha == pytest.approx(spec["alpha"], abs=tol["alpha"])
    else:
        assert alpha is None
    assert n_obs == spec["n_obs"]


def by_term(records) -> dict:
    return {r["term"]: r for r in records}


# --------------------------------------------------------------------------------------
# published reference numbers
# --------------------------------------------------------------------------------------


@needs_references
@pytest.mark.parametrize("case", REFERENCE_CASES)
def test_reference_case_python_api(case):
    spec = expected(case)
    result = fit_case(spec)
    payload = result.to_dict()
    assert result.converged_ and result.reliable
    check_against(
        spec,
        by_term(payload["params"]),
        by_term(payload["thresholds"]),
        result.log_likelihood_,
        result.alpha_,
        payload["n_obs"],
    )
    assert [r["term"] for r in payload["params"]] != []
    if "n_dropped" in spec:
        assert result.n_dropped_ == spec["n_dropped"]
    if spec["family"] == "ordinal":
        assert "Intercept" not in list(result.coefficients_["term"])
        cuts = [t["estimate"] for t in payload["thresholds"]]
        assert cuts == sorted(cuts)
    else:
        assert payload["thresholds"] == []


@needs_references
def test_housing_weighted_equals_expanded_rows():
    spec = expected("MASS_housing")
    weighted = fit_case(spec)
    cells = reference_data(spec["data"])
    people = cells.loc[cells.index.repeat(cells["Freq"])].reset_index(drop=True)
    assert len(people) == 1681
    for collapse in (True, False):
        expanded = fit(people, spec["formula"], "ordinal", order=spec["order"], collapse=collapse)
        for column in ("estimate", "std_error"):
            np.testing.assert_allclose(
                weighted.coefficients_[column], expanded.coefficients_[column], atol=1e-6
            )
            np.testing.assert_allclose(
                weighted.thresholds_[column], expanded.thresholds_[column], atol=1e-6
            )
        assert expanded.log_likelihood_ == pytest.approx(weighted.log_likelihood_, abs=1e-6)
        assert expanded.n_obs_ == weighted.n_obs_ == 1681


@needs_references
def test_ordered_categorical_outcome_needs_no_order():
    spec = expected("ologit_ucla")
    data = reference_data(spec["data"])
    data["apply"] = pd.Categorical(data["apply"], categories=spec["order"].split(","), ordered=True)
    result = fit(data, spec["formula"], "ordinal")
    assert result.coefficients_["estimate"].iloc[0] == pytest.approx(1.047664, abs=1e-4)


@needs_references
def test_probit_link_matches_statsmodels():
    data = reference_data("ologit_ucla.csv")
    order = ["unlikely", "somewhat likely", "very likely"]
    ours = fit(data, "apply ~ pared + public + gpa", "ordinal", order=order, link="probit")
    codes = pd.Series(pd.Categorical(data["apply"], categories=order, ordered=True))
    theirs = OrderedModel(codes, data[["pared", "public", "gpa"]], distr="probit").fit(
        method="bfgs", disp=False, maxiter=1000, gtol=1e-10
    )
    np.testing.assert_allclose(ours.coefficients_["estimate"], theirs.params[:3], atol=1e-5)
    np.testing.assert_allclose(ours.coefficients_["std_error"], theirs.bse[:3], atol=1e-4)
    cuts = theirs.model.transform_threshold_params(theirs.params)[1:-1]
    np.testing.assert_allclose(ours.thresholds_["estimate"], cuts, atol=1e-5)
    assert ours.log_likelihood_ == pytest.approx(theirs.llf, abs=1e-6)


# --------------------------------------------------------------------------------------
# collapsing and cluster-robust standard errors
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def responses() -> pd.DataFrame:
    """Survey responses over customer-months that share their drivers."""
    rng = np.random.default_rng(42)
    n_cm = 400
    panel = pd.DataFrame(
        {
            "customer_id": [f"c{i % 80:03d}" for i in range(n_cm)],
            "latency": np.round(rng.lognormal(5.5, 0.4, n_cm), 0),
            "downtime": np.round(rng.exponential(20, n_cm), 0),
            "segment": rng.choice(["enterprise", "midmarket", "smb"], n_cm),
            "users": rng.integers(20, 2000, n_cm),
        }
    )
    rows = rng.integers(0, n_cm, 6000)
    data = panel.iloc[rows].reset_index(drop=True)
    eta = (
        -0.9 * np.log(data["latency"])
        - 0.3 * np.log1p(data["downtime"])
        + np.where(data["segment"] == "smb", 0.4, 0.0)
    )
    data["csat"] = 1 + np.searchsorted([-7.5, -6.5, -5.4, -4.0], eta + rng.logistic(size=6000))
    data["complaints"] = rng.poisson(np.exp(-5 - 0.5 * eta) * data["users"] / 100)
    return data


FORMULA = "csat ~ np.log(latency) + np.log1p(downtime) + C(segment)"


@pytest.mark.parametrize(
    ("formula", "family", "extra"),
    [
        (FORMULA, "ordinal", {}),
        (FORMULA, "ordinal", {"link": "probit"}),
        ("I(csat >= 4) ~ np.log(latency) + C(segment)", "logit", {}),
        ("complaints ~ np.log(latency) + C(segment)", "poisson", {"exposure": "users"}),
        ("complaints ~ np.log(latency) + C(segment)", "negbin", {"exposure": "users"}),
        ("csat ~ np.log(latency) + C(segment)", "ols", {}),
    ],
)
def test_collapsed_equals_uncollapsed(responses, formula, family, extra):
    collapsed = fit(responses, formula, family, cluster="customer_id", **extra)
    plain = fit(responses, formula, family, cluster="customer_id", collapse=False, **extra)
    assert collapsed.n_rows_ == plain.n_rows_ == len(responses)
    for attr in ("coefficients_", "thresholds_"):
        for column in ("estimate", "std_error"):
            np.testing.assert_allclose(
                getattr(collapsed, attr)[column], getattr(plain, attr)[column], atol=1e-6
            )
    assert collapsed.log_likelihood_ == pytest.approx(plain.log_likelihood_, abs=1e-6)
    if family == "negbin":
        assert collapsed.alpha_ == pytest.approx(plain.alpha_, abs=1e-6)


def test_ordinal_cluster_se_match_statsmodels(responses):
    ours = fit(responses, FORMULA, "ordinal", cluster="customer_id")
    X = ours.design_matrix(responses)
    groups = pd.factorize(responses["customer_id"])[0]
    theirs = OrderedModel(responses["csat"], X, distr="logit").fit(
        method="newton", disp=False, cov_type="cluster", cov_kwds={"groups": groups}
    )
    k = X.shape[1]
    np.testing.assert_allclose(ours.coefficients_["estimate"], theirs.params[:k], atol=1e-6)
    # OrderedModel's scores and Hessian are numerical derivatives: agreement to ~1e-5
    np.testing.assert_allclose(ours.coefficients_["std_error"], theirs.bse[:k], rtol=1e-4)
    assert ours.cov_type_ == "cluster"
    assert ours.n_clusters_ == responses["customer_id"].nunique()


@pytest.mark.parametrize(
    ("formula", "family", "call"),
    [
        ("top2 ~ np.log(latency) + C(segment)", "logit", smf.logit),
        ("complaints ~ np.log(latency) + C(segment)", "poisson", smf.poisson),
        ("csat ~ np.log(latency) + C(segment)", "ols", smf.ols),
    ],
)
def test_cluster_se_match_statsmodels(responses, formula, family, call):
    data = responses.assign(top2=(responses["csat"] >= 4).astype(int))
    ours = fit(data, formula, family, cluster="customer_id")
    groups = pd.factorize(data["customer_id"])[0]
    model = call(formula, data)
    kwargs = {"disp": False} if family != "ols" else {}
    theirs = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, **kwargs)
    np.testing.assert_allclose(ours.coefficients_["estimate"], theirs.params, atol=1e-6)
    np.testing.assert_allclose(ours.coefficients_["std_error"], theirs.bse, rtol=1e-6)


def test_robust_cov_type(responses):
    result = fit(responses, FORMULA, "ordinal", cov_type="robust")
    plain = fit(responses, FORMULA, "ordinal")
    assert result.cov_type_ == "robust"
    assert not np.allclose(result.coefficients_["std_error"], plain.coefficients_["std_error"])


# --------------------------------------------------------------------------------------
# prediction and JSON round trip
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "family", "extra"),
    [
        (FORMULA, "ordinal", {"cluster": "customer_id"}),
        ("I(csat >= 4) ~ np.log(latency) + C(segment)", "logit", {}),
        ("complaints ~ np.log(latency) + C(segment)", "negbin", {"exposure": "users"}),
        ("complaints ~ np.log(latency) + C(segment)", "poisson", {"exposure": "users"}),
        ("csat ~ np.log(latency) + C(segment)", "ols", {}),
    ],
)
def test_json_round_trip_predicts_identically(responses, tmp_path, formula, family, extra):
    result = fit(responses, formula, family, **extra)
    new = responses.head(25).sample(frac=1.0, random_state=1)
    before = result.predict(new)
    path = tmp_path / "fit.json"
    result.to_json(path)
    for loaded in (FitResult.from_json(path), FitResult.from_json(path.read_text())):
        pd.testing.assert_frame_equal(loaded.predict(new), before)
        pd.testing.assert_frame_equal(loaded.coefficients_, result.coefficients_)
        pd.testing.assert_frame_equal(loaded.thresholds_, result.thresholds_)
        assert loaded.to_dict() == result.to_dict()
    assert list(before.index) == list(new.index)


def test_to_dict_has_the_design_keys_and_plain_types(responses):
    result = fit(responses, FORMULA, "ordinal")
    payload = result.to_dict()
    for key in (
        "family",
        "formula",
        "n_obs",
        "converged",
        "log_likelihood",
        "params",
        "thresholds",
        "alpha",
    ):
        assert key in payload
    assert payload["family"] == "ordinal" and payload["alpha"] is None
    assert isinstance(payload["n_obs"], int) and payload["n_obs"] == len(responses)
    assert all(set(r) == set(TIDY) for r in payload["params"] + payload["thresholds"])
    assert [r["term"] for r in payload["params"]] == [
        "C(segment)[T.midmarket]",
        "C(segment)[T.smb]",
        "np.log(latency)",
        "np.log1p(downtime)",
    ]
    text = json.dumps(payload, allow_nan=False)  # plain types only, no NaN
    assert json.loads(text) == payload
    assert list(result.coefficients_.columns) == TIDY


def test_ordinal_predict_probabilities(responses):
    result = fit(responses, FORMULA, "ordinal")
    out = result.predict(responses.head(50))
    probs = out[[f"p_{level}" for level in result.levels_]]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert ((out["ci_low"] <= out["expected"]) & (out["expected"] <= out["ci_high"])).all()
    expected_score = probs.to_numpy() @ np.asarray(result.level_values_)
    np.testing.assert_allclose(out["expected"], expected_score, atol=1e-12)


def test_count_predict_uses_exposure(responses):
    result = fit(responses, "complaints ~ np.log(latency)", "negbin", exposure="users")
    out = result.predict(responses.head(10))
    np.testing.assert_allclose(out["mean"], out["rate"] * responses["users"].head(10))
    without = result.predict(responses.head(10).drop(columns="users"))
    assert "mean" not in without.columns and "rate" in without.columns


def test_predict_marks_rows_with_missing_drivers(responses):
    result = fit(responses, FORMULA, "ordinal")
    new = responses.head(3).copy()
    new.loc[new.index[1], "latency"] = np.nan
    out = result.predict(new)
    assert out.iloc[1].isna().all() and out.iloc[[0, 2]].notna().all().all()


def test_predict_rejects_unseen_level(responses):
    result = FitResult.from_json(fit(responses, FORMULA, "ordinal").to_json())
    new = responses.head(2).assign(segment="government")
    with pytest.raises(InputError, match=r"segment.*'government'"):
        result.predict(new)


def test_summary_and_repr(responses):
    result = fit(responses, FORMULA, "ordinal", cluster="customer_id")
    text = result.summary()
    assert "np.log(latency)" in text and "thresholds" in text and "cluster" in text
    assert "UNRELIABLE" not in text
    assert "ordinal" in repr(result)


def test_top_level_lazy_exports():
    assert satmodel.fit is fit and satmodel.FitResult is FitResult


# --------------------------------------------------------------------------------------
# missing values, warnings and bad input
# --------------------------------------------------------------------------------------


def test_missing_rows_are_dropped_and_counted(responses):
    data = responses.copy()
    data.loc[data.index[:7], "downtime"] = np.nan
    data.loc[data.index[5:9], "csat"] = np.nan
    result = fit(data, FORMULA, "ordinal")
    assert result.n_dropped_ == 9
    assert result.n_obs_ == len(data) - 9
    assert "9 with missing values" in result.summary()
    assert result.to_dict()["n_dropped"] == 9


def test_separation_warns_and_flags_unreliable():
    x = np.arange(40, dtype=float)
    data = pd.DataFrame({"x": x, "y": (x >= 20).astype(int)})
    with pytest.warns(ModelWarning, match="separation"):
        result = fit(data, "y ~ x", "logit")
    assert not result.reliable
    assert any("separation" in w for w in result.warnings_)
    assert "UNRELIABLE" in result.summary()
    assert result.to_dict()["reliable"] is False


def test_ordinal_category_perfectly_predicted_warns():
    rng = np.random.default_rng(0)
    group = np.repeat(["a", "b"], 60)
    y = np.where(group == "a", rng.integers(1, 3, 120), rng.integers(2, 4, 120))
    y[group == "b"] = 3
    data = pd.DataFrame({"g": group, "y": y})
    with pytest.warns(ModelWarning, match="separation"):
        result = fit(data, "y ~ C(g)", "ordinal")
    assert not result.reliable


def test_too_few_responses_warns():
    data = pd.DataFrame({"x": np.linspace(0, 1, 12), "y": [0, 1] * 6})
    with pytest.warns(ModelWarning, match="too few responses"):
        result = fit(data, "y ~ x", "logit")
    assert not result.reliable


def test_too_few_per_outcome_level_warns(responses):
    data = responses.copy()
    data.loc[data.index[:3], "csat"] = 6  # a rare level
    with pytest.warns(ModelWarning, match="outcome level 6"):
        result = fit(data, FORMULA, "ordinal")
    assert not result.reliable


def test_non_convergence_warns(responses):
    with pytest.warns(ModelWarning, match="did not converge"):
        result = fit(responses, FORMULA, "ordinal", maxiter=1)
    assert not result.converged_ and not result.reliable
    assert result.to_dict()["converged"] is False


def test_collinear_design_warns_and_drops_the_redundant_term(responses):
    data = responses.assign(log_latency_copy=np.log(responses["latency"]) * 2.0)
    with pytest.warns(ModelWarning, match="collinear"):
        result = fit(data, "csat ~ np.log(latency) + log_latency_copy", "ordinal")
    dropped = result.coefficients_.set_index("term").loc["log_latency_copy"]
    assert np.isnan(dropped["estimate"])
    assert not result.reliable
    assert result.to_dict()["params"][1]["estimate"] is None
    assert result.predict(data.head(3))["expected"].notna().all()


def _set(column, value, rows=5):
    def change(data):
        data.loc[data.index[:rows], column] = value
        return data

    return change


def _unchanged(data):
    return data


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (_unchanged, {"formula": "csat ~ nothere"}, r"'nothere'"),
        (_unchanged, {"formula": "csat ~ latency +"}, r"formula"),
        (_unchanged, {"formula": "csat latency"}, r"formula"),
        (_unchanged, {"family": "gamma"}, r"family 'gamma'"),
        (_unchanged, {"formula": "segment ~ latency"}, r"'segment'.*e\.g\. '"),
        (_unchanged, {"formula": "csat ~ latency", "order": "1,2,3"}, r"'csat'.*not in order"),
        (
            _unchanged,
            {"formula": "segment ~ latency", "family": "poisson"},
            r"'segment'.*not numbers.*e\.g\. '",
        ),
        (
            _set("csat", -1),
            {"formula": "csat ~ latency", "family": "poisson"},
            r"'csat'.*negative.*-1",
        ),
        (
            _set("users", 0),
            {"formula": "complaints ~ latency", "family": "negbin", "exposure": "users"},
            r"users.*> 0.*e\.g\. 0",
        ),
        (
            _set("users", -2),
            {"formula": "complaints ~ latency", "family": "poisson", "weights": "users"},
            r"users.*>= 0.*-2",
        ),
        (
            _unchanged,
            {"formula": "csat ~ latency", "family": "poisson", "exposure": "nothere"},
            r"'nothere'",
        ),
        (_unchanged, {"formula": "csat ~ latency", "family": "logit"}, r"'csat'.*0/1.*e\.g\."),
        (
            _set("latency", np.nan, rows=200),
            {"formula": "csat ~ latency"},
            r"no rows left.*latency",
        ),
        (_set("latency", 0.0), {"formula": "csat ~ np.log(latency)"}, r"np.log\(latency\).*finite"),
    ],
)
def test_bad_input_raises_input_error(responses, change, kwargs, message):
    data = change(responses.head(200).copy())
    args = {"formula": FORMULA, "family": "ordinal", **kwargs}
    with pytest.raises(InputError, match=message) as info:
        fit(data, **args)
    assert all("\n" not in line for line in info.value.problems)


def test_non_dataframe_input_is_rejected():
    with pytest.raises(InputError, match="DataFrame"):
        fit({"y": [1, 2]}, "y ~ 1", "ols")


# --------------------------------------------------------------------------------------
# default models
# --------------------------------------------------------------------------------------


def _panel_and_responses():
    rng = np.random.default_rng(7)
    months = [f"2025-{m:02d}" for m in range(1, 7)]
    customers = [f"c{i:02d}" for i in range(40)]
    panel = pd.DataFrame(
        [(c, m) for c in customers for m in months], columns=["customer_id", "month"]
    )
    n = len(panel)
    panel["segment"] = np.repeat(rng.choice(["enterprise", "smb"], len(customers)), len(months))
    panel["latency_p95_ms"] = rng.lognormal(6, 0.3, n)
    panel["expected_latency_p95_ms"] = 500.0
    panel["downtime_minutes"] = rng.exponential(30, n)
    panel["downtime_minutes_lag1"] = panel.groupby("customer_id")["downtime_minutes"].shift(1)
    panel["error_rate"] = rng.beta(1, 50, n)
    panel["availability_pct"] = 100 * (1 - panel["downtime_minutes"] / 43200)
    panel["expected_availability_pct"] = 99.9
    panel["active_users"] = rng.integers(0, 500, n)
    panel["complaints"] = rng.poisson(0.01 * panel["active_users"])
    eta = -1.2 * np.log(panel["latency_p95_ms"]) - 0.2 * np.log1p(panel["downtime_minutes"])
    rows = rng.integers(0, n, 3000)
    responses = panel.iloc[rows].reset_index(drop=True)
    latent = eta.to_numpy()[rows] + rng.logistic(size=len(rows))
    responses["csat"] = 1 + np.searchsorted([-9.5, -8.5, -7.5, -6.5], latent)
    return panel, responses


def test_default_formulas_use_available_columns():
    formulas = default_formulas(["csat", "complaints", "latency_p95_ms", "segment"])
    assert formulas["csat"] == "csat ~ np.log(latency_p95_ms) + C(segment)"
    assert formulas["top2"].startswith("I(csat >= 4) ~ ")
    assert set(default_formulas()) == {"csat", "top2", "complaints"}
    with pytest.raises(InputError):
        default_formulas(["nothing"])


def test_fit_default_models():
    panel, responses = _panel_and_responses()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        results = fit_default_models(responses, panel)
    assert set(results) == {"csat", "top2", "complaints"}
    csat = results["csat"]
    assert csat.family == "ordinal" and csat.cov_type_ == "cluster"
    assert csat.n_dropped_ > 0  # first month has no lag
    assert "np.log(latency_p95_ms)" in list(csat.coefficients_["term"])
    latency = csat.coefficients_.set_index("term").loc["np.log(latency_p95_ms)", "estimate"]
    assert latency < 0
    assert results["top2"].family == "logit"
    complaints = results["complaints"]
    assert complaints.family == "negbin" and complaints.exposure == "active_users"
    no_users = int((panel["active_users"] <= 0).sum())
    assert complaints.n_dropped_ >= no_users > 0
    custom = fit_default_models(
        responses,
        None,
        formulas={"csat": "csat ~ np.log(latency_p95_ms)", "top2": "I(csat >= 4) ~ error_rate"},
    )
    assert list(custom["csat"].coefficients_["term"]) == ["np.log(latency_p95_ms)"]
    assert "complaints" not in custom


# --------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------


def run_cli(*args, cwd: Path):
    return subprocess.run(
        [sys.executable, "-m", "satmodel", "fit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@needs_references
@pytest.mark.parametrize(
    "case", ["ships_poisson", "ships_negbin", "randhie_negbin", "MASS_housing", "ologit_ucla"]
)
def test_reference_case_through_cli(case, tmp_path):
    spec = expected(case)
    out = tmp_path / "fit.json"
    args = [
        "--data",
        str(REFERENCES / spec["data"]),
        "--formula",
        spec["formula"],
        "--family",
        spec["family"],
        "--json",
        str(out),
    ]
    for option in ("exposure", "weights", "order"):
        if spec.get(option):
            args += [f"--{option}", spec[option]]
    completed = run_cli(*args, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(out.read_text(encoding="utf-8"))
    check_against(
        spec,
        by_term(payload["params"]),
        by_term(payload["thresholds"]),
        payload["log_likelihood"],
        payload["alpha"],
        payload["n_obs"],
    )
    assert payload["family"] == spec["family"] and payload["formula"] == spec["formula"]
    assert payload["converged"] is True
    loaded = FitResult.from_json(out)
    assert loaded.predict(reference_data(spec["data"]).head(3)).notna().all().all()


@needs_references
def test_cli_bad_input_exits_2(tmp_path):
    completed = run_cli(
        "--data",
        str(REFERENCES / "ships.csv"),
        "--formula",
        "accident ~ nothere",
        "--family",
        "poisson",
        cwd=tmp_path,
    )
    assert completed.returncode == 2
    assert "nothere" in completed.stderr and "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    "term",
    [
        "__import__('os').system('touch {marker}')",
        "np.__dict__",
        "open('{marker}', 'w')",
        "x.__class__",
        "getattr(np, 'load')",
    ],
)
def test_formula_code_is_never_evaluated_beyond_the_safe_vocabulary(tmp_path, term):
    marker = tmp_path / "pwned"
    data = pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40.0) % 7})
    with pytest.raises(InputError):
        fit(data, "y ~ " + term.format(marker=marker), "ols")
    assert not marker.exists()


def test_from_json_refuses_a_tampered_formula(tmp_path):
    data = pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40.0) % 7 + 0.5 * np.arange(40.0)})
    payload = fit(data, "y ~ x", "ols").to_dict()
    marker = tmp_path / "pwned"
    payload["formula"] = f"y ~ __import__('pathlib').Path('{marker}').touch()"
    loaded = FitResult.from_dict(payload)
    with pytest.raises(InputError):
        loaded.predict(data.head(2))
    assert not marker.exists()
