"""Fits that say when they cannot be trusted: separation in count models, low-spread
columns, NB2 at the Poisson boundary, few clusters, the cluster-robust convention, weights."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import special

from satmodel.errors import InputError, ModelWarning
from satmodel.models import fit
from satmodel.models.likelihoods import NB2Likelihood, PoissonLikelihood

RESULTS = Path(__file__).resolve().parent / "results"
SHIPS = Path(sm.__file__).parent / "discrete" / "tests" / "results" / "ships.csv"


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        return fit(*args, **kwargs)


def run_fit_cli(*args, cwd: Path):
    return subprocess.run(
        [sys.executable, "-m", "satmodel", "fit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


# --------------------------------------------------------------------------------------
# 1. separation in count models
# --------------------------------------------------------------------------------------


def counts_with_an_all_zero_group(seed=0, n=300):
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], n)
    x = rng.normal(size=n)
    y = rng.poisson(np.exp(0.7 + 0.3 * x))
    y[group == "c"] = 0
    return pd.DataFrame({"g": group, "x": x, "y": y})


@pytest.mark.parametrize("family", ["poisson", "negbin"])
def test_all_zero_group_is_flagged_as_separation_naming_the_term(family):
    data = counts_with_an_all_zero_group()
    with pytest.warns(ModelWarning, match="separation"):
        result = fit(data, "y ~ C(g) + x", family)
    assert not result.reliable
    (message,) = [m for m in result.warnings_ if "separation" in m]
    assert "C(g)[T.c]" in message
    assert "C(g)[T.b]" not in message and " x" not in message.split("estimates of")[1]


def test_regressor_living_only_on_zero_counts_is_named():
    rng = np.random.default_rng(1)
    n = 300
    x = rng.normal(size=n)
    y = rng.poisson(np.exp(0.5 + 0.2 * x))
    z = np.where((y == 0) & (rng.uniform(size=n) < 0.5), rng.uniform(1, 2, n), 0.0)
    data = pd.DataFrame({"x": x, "y": y, "z": z})
    result = quiet_fit(data, "y ~ x + z", "poisson")
    (message,) = [m for m in result.warnings_ if "separation" in m]
    assert "z" in message.split("estimates of")[1]
    assert not result.reliable


def test_ordinary_count_fit_has_no_separation_flag():
    data = counts_with_an_all_zero_group()
    data["y"] = np.random.default_rng(2).poisson(2.0, len(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelWarning)
        result = fit(data, "y ~ C(g) + x", "poisson")
    assert result.reliable


@pytest.mark.parametrize("family", ["poisson", "negbin"])
def test_all_zero_outcome_is_nothing_to_model(family):
    data = pd.DataFrame({"x": np.linspace(0, 1, 50), "y": 0})
    with pytest.raises(InputError, match="nothing to model"):
        fit(data, "y ~ x", family)


def test_logit_separation_names_the_separating_term():
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    noise = rng.normal(size=200)
    data = pd.DataFrame({"x": x, "noise": noise, "y": (x > 0).astype(int)})
    result = quiet_fit(data, "y ~ x + noise", "logit")
    (message,) = [m for m in result.warnings_ if "separation" in m]
    assert "x" in message.split("estimates of")[1].replace("noise", "")


# --------------------------------------------------------------------------------------
# 2. low-spread columns are not collinear
# --------------------------------------------------------------------------------------


def low_spread_data(seed=4, n=400):
    rng = np.random.default_rng(seed)
    availability = 99.99 + 0.003 * rng.normal(size=n)
    z = (availability - 99.99) / 0.003
    latency = rng.lognormal(5, 0.3, n)
    csat = 3.5 + 0.4 * z - 0.2 * np.log(latency) + rng.normal(0, 0.5, n)
    return pd.DataFrame({"availability": availability, "latency": latency, "csat": csat})


@pytest.mark.parametrize("family", ["ols", "logit", "ordinal"])
def test_low_spread_driver_is_kept(family):
    data = low_spread_data()
    if family == "logit":
        data["csat"] = (data["csat"] > 3).astype(int)
    elif family == "ordinal":
        data["csat"] = pd.qcut(data["csat"], 4, labels=False) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelWarning)
        result = fit(data, "csat ~ availability + np.log(latency)", family)
    row = result.coefficients_.set_index("term").loc["availability"]
    assert np.isfinite(row["estimate"]) and row["p_value"] < 1e-6
    if family == "ols":
        reference = smf.ols("csat ~ availability + np.log(latency)", data).fit()
        assert row["estimate"] == pytest.approx(reference.params["availability"], rel=1e-6)
        assert row["estimate"] == pytest.approx(0.4 / 0.003, rel=0.1)


def test_exactly_collinear_low_spread_copy_is_still_dropped():
    data = low_spread_data()
    data["availability_copy"] = 2 * data["availability"] - 100
    result = quiet_fit(data, "csat ~ availability + availability_copy", "ols")
    assert any(m.startswith("collinear") and "availability_copy" in m for m in result.warnings_)


# --------------------------------------------------------------------------------------
# 3. NB2 on Poisson data
# --------------------------------------------------------------------------------------


def test_nb2_log_likelihood_is_exact_near_alpha_zero():
    rng = np.random.default_rng(5)
    X = np.column_stack((np.ones(500), rng.normal(size=500)))
    y = rng.poisson(np.exp(1.0 + 0.5 * X[:, 1])).astype(float)
    w = np.ones(500)
    beta = np.array([1.0, 0.5])
    poisson = PoissonLikelihood(X, y, w, None).loglike(beta)
    nb = NB2Likelihood(X, y, w, None)
    for alpha in (1e-6, 1e-10, 1e-14):
        # NB2 -> Poisson with the first-order term alpha/2 sum((y-mu)^2 - y)
        mu = np.exp(X @ beta)
        first_order = 0.5 * alpha * float(((y - mu) ** 2 - y).sum())
        got = nb.loglike(np.concatenate((beta, [np.log(alpha)])))
        assert got == pytest.approx(poisson + first_order, abs=1e-7)
    # moderate alpha: still the exact NB2 log-likelihood
    alpha = 0.5
    r = 1 / alpha
    mu = np.exp(X @ beta)
    exact = (
        special.gammaln(y + r)
        - special.gammaln(r)
        - special.gammaln(y + 1)
        + r * np.log(r / (r + mu))
        + y * np.log(mu / (r + mu))
    ).sum()
    assert nb.loglike(np.concatenate((beta, [np.log(alpha)]))) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_nb2_on_poisson_data_converges(seed):
    rng = np.random.default_rng(100 + seed)
    n = 400
    x = rng.normal(size=n)
    users = rng.integers(50, 500, n)
    y = rng.poisson(users / 100 * np.exp(0.3 * x))
    data = pd.DataFrame({"x": x, "users": users, "y": y})
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelWarning)
        result = fit(data, "y ~ x", "negbin", exposure="users")
    assert result.converged_ and result.reliable
    poisson = fit(data, "y ~ x", "poisson", exposure="users")
    assert result.log_likelihood_ >= poisson.log_likelihood_ - 1e-8
    if result.alpha_ == 0:
        assert any("no overdispersion" in n for n in result.notes_)
        assert result.coefficients_["estimate"].to_numpy() == pytest.approx(
            poisson.coefficients_["estimate"].to_numpy(), abs=1e-9
        )
        assert result.coefficients_["std_error"].to_numpy() == pytest.approx(
            poisson.coefficients_["std_error"].to_numpy(), rel=1e-9
        )
        assert "at its bound" in result.summary()
        json.loads(result.to_json())
    else:
        assert result.alpha_ < 0.1


# --------------------------------------------------------------------------------------
# 4. few clusters
# --------------------------------------------------------------------------------------


def clustered(n_clusters, seed=6, per=40):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_clusters), per)
    x = rng.normal(size=len(g))
    y = 1 + 0.5 * x + rng.normal(size=n_clusters)[g] + rng.normal(size=len(g))
    return pd.DataFrame({"g": g.astype(str), "x": x, "y": y, "k": rng.poisson(2, len(g))})


@pytest.mark.parametrize("family", ["ols", "poisson"])
def test_one_cluster_is_bad_input(family):
    data = clustered(1)
    outcome = "y" if family == "ols" else "k"
    with pytest.raises(InputError, match="at least 2"):
        fit(data, f"{outcome} ~ x", family, cluster="g")


def test_one_cluster_exits_2_with_one_line(tmp_path):
    path = tmp_path / "one.csv"
    clustered(1).to_csv(path, index=False)
    done = run_fit_cli(
        "--data", str(path), "--formula", "y ~ x", "--family", "ols", "--cluster", "g",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr and "cluster" in done.stderr


def test_few_clusters_warn_and_say_what_is_used():
    with pytest.warns(ModelWarning, match="only 5 clusters"):
        result = fit(clustered(5), "y ~ x", "ols", cluster="g")
    (message,) = [m for m in result.warnings_ if "clusters" in m]
    assert "CRV1" in message and "statsmodels" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelWarning)
        assert fit(clustered(30), "y ~ x", "ols", cluster="g").reliable


# --------------------------------------------------------------------------------------
# 5. cluster-robust conventions, against Stata
# --------------------------------------------------------------------------------------


def ships() -> pd.DataFrame:
    return pd.read_csv(SHIPS)


STATA = json.loads((RESULTS / "ships_stata_robust.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", STATA["cases"], ids=lambda c: c["cmdline"])
def test_stata_convention_matches_stata(case):
    tol = STATA["tolerance"]
    result = quiet_fit(
        ships(),
        STATA["formula"],
        case["family"],
        exposure=case["exposure"],
        cluster=case["cluster"],
        cov_type=case["cov_type"],
        se_correction="stata",
    )
    assert result.n_obs_ == case["n_obs"] and result.n_clusters_ == case["n_clusters"]
    assert result.log_likelihood_ == pytest.approx(
        case["log_likelihood"], abs=tol["log_likelihood"]
    )
    if "alpha" in case:
        assert result.alpha_ == pytest.approx(case["alpha"], abs=tol["alpha"])
    got = result.coefficients_.set_index("term")
    for ref in case["params"]:
        assert got.loc[ref["term"], "estimate"] == pytest.approx(ref["estimate"], abs=1e-5)
        assert got.loc[ref["term"], "std_error"] == pytest.approx(
            ref["std_error"], rel=1e-4, abs=tol["std_error"]
        )
    assert result.se_correction_ == "stata"
    assert result.to_dict()["se_correction"] == "stata"
    assert "Stata" in result.summary()


def test_default_convention_is_statsmodels_and_differs_by_its_factor():
    data = ships()
    kwargs = {"exposure": "service", "cluster": "ship"}
    default = quiet_fit(data, STATA["formula"], "poisson", **kwargs)
    stata = quiet_fit(data, STATA["formula"], "poisson", se_correction="stata", **kwargs)
    assert default.se_correction_ == "statsmodels"
    n, k = 34, 3
    ratio = default.coefficients_["std_error"] / stata.coefficients_["std_error"]
    assert ratio.to_numpy() == pytest.approx(np.sqrt((n - 1) / (n - k)), rel=1e-10)
    reference = smf.poisson(
        "accident ~ yr_con + op_75_79", data.dropna(), exposure=data.dropna()["service"]
    ).fit(disp=0, cov_type="cluster", cov_kwds={"groups": data.dropna()["ship"]})
    assert default.coefficients_.set_index("term")["std_error"].to_numpy() == pytest.approx(
        reference.bse.to_numpy(), rel=1e-6
    )
    assert quiet_fit(data, STATA["formula"], "poisson").se_correction_ is None


def test_cli_se_correction_stata(tmp_path):
    out = tmp_path / "fit.json"
    done = run_fit_cli(
        "--data", str(SHIPS), "--formula", STATA["formula"], "--family", "negbin",
        "--cluster", "ship", "--se-correction", "stata", "--json", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = json.loads(out.read_text())
    (case,) = [
        c
        for c in STATA["cases"]
        if c["cmdline"].startswith("nbreg accident yr_con op_75_79, vce(cluster")
    ]
    ref = {p["term"]: p["std_error"] for p in case["params"]}
    got = {p["term"]: p["std_error"] for p in payload["params"]}
    assert payload["se_correction"] == "stata"
    for term, se in ref.items():
        assert got[term] == pytest.approx(se, rel=1e-4)
    bad = run_fit_cli(
        "--data", str(SHIPS), "--formula", STATA["formula"], "--family", "poisson",
        "--se-correction", "sas", cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2


# --------------------------------------------------------------------------------------
# 6. weights
# --------------------------------------------------------------------------------------


def weighted_data(seed=7, n=200):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    w = rng.uniform(0.2, 3.0, n)
    y = 1 + 0.5 * x + rng.normal(size=n) / np.sqrt(w)
    return pd.DataFrame({"x": x, "y": y, "w": w, "top": (y > 1).astype(int)})


def test_fractional_frequency_weights_warn():
    data = weighted_data()
    with pytest.warns(ModelWarning, match="not whole numbers"):
        result = fit(data, "y ~ x", "ols", weights="w")
    assert not result.reliable
    whole = data.assign(w=np.round(data["w"]) + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelWarning)
        assert fit(whole, "y ~ x", "ols", weights="w").reliable


@pytest.mark.parametrize("family", ["ols", "logit"])
def test_analytic_weights_do_not_depend_on_their_scale(family):
    data = weighted_data()
    outcome = "y" if family == "ols" else "top"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelWarning)
        base = fit(data, f"{outcome} ~ x", family, weights="w", weights_kind="analytic")
        scaled = fit(
            data.assign(w=data["w"] * 1000), f"{outcome} ~ x", family, weights="w",
            weights_kind="analytic",
        )  # fmt: skip
    assert base.n_obs_ == len(data) == scaled.n_obs_
    assert base.coefficients_["std_error"].to_numpy() == pytest.approx(
        scaled.coefficients_["std_error"].to_numpy(), rel=1e-9
    )
    assert base.weights_kind_ == "analytic" and base.to_dict()["weights_kind"] == "analytic"


def test_analytic_weights_match_weighted_least_squares():
    data = weighted_data()
    result = fit(data, "y ~ x", "ols", weights="w", weights_kind="analytic")
    reference = smf.wls("y ~ x", data, weights=data["w"]).fit()
    got = result.coefficients_.set_index("term")
    assert got["estimate"].to_numpy() == pytest.approx(reference.params.to_numpy(), rel=1e-10)
    assert got["std_error"].to_numpy() == pytest.approx(reference.bse.to_numpy(), rel=1e-10)


def test_frequency_weights_times_1000_are_a_thousand_times_the_data():
    data = weighted_data().assign(w=1)
    expanded = quiet_fit(data.assign(w=1000), "y ~ x", "ols", weights="w")
    assert expanded.n_obs_ == 1000 * len(data)
    analytic = quiet_fit(data.assign(w=1000), "y ~ x", "ols", weights="w", weights_kind="analytic")
    plain = fit(data, "y ~ x", "ols")
    assert analytic.coefficients_["std_error"].to_numpy() == pytest.approx(
        plain.coefficients_["std_error"].to_numpy(), rel=1e-10
    )


def test_cli_weights_kind(tmp_path):
    path = tmp_path / "w.csv"
    weighted_data().to_csv(path, index=False)
    out = tmp_path / "fit.json"
    done = run_fit_cli(
        "--data", str(path), "--formula", "y ~ x", "--family", "ols", "--weights", "w",
        "--weights-kind", "analytic", "--json", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = json.loads(out.read_text())
    assert payload["n_obs"] == 200 and payload["weights_kind"] == "analytic"


def test_bad_options_are_input_errors():
    data = weighted_data()
    with pytest.raises(InputError, match="se_correction"):
        fit(data, "y ~ x", "ols", se_correction="sas")
    with pytest.raises(InputError, match="weights_kind"):
        fit(data, "y ~ x", "ols", weights="w", weights_kind="probability")


def test_weights_kind_without_weights_changes_nothing():
    data = weighted_data().round({"x": 1})  # repeated rows: collapsed into counts
    plain = fit(data, "top ~ x", "logit", cov_type="robust")
    said = fit(data, "top ~ x", "logit", cov_type="robust", weights_kind="analytic")
    assert said.coefficients_["std_error"].to_numpy() == pytest.approx(
        plain.coefficients_["std_error"].to_numpy(), rel=1e-12
    )
    assert said.weights_kind_ is None


def test_analytic_weights_robust_errors_do_not_depend_on_collapsing():
    data = weighted_data().round({"x": 1})
    data["w"] = np.round(data["w"], 1)
    kwargs = {"weights": "w", "weights_kind": "analytic", "cov_type": "robust"}
    merged = fit(data, "top ~ x", "logit", **kwargs)
    unmerged = fit(data, "top ~ x", "logit", collapse=False, **kwargs)
    assert merged.coefficients_["std_error"].to_numpy() == pytest.approx(
        unmerged.coefficients_["std_error"].to_numpy(), rel=1e-10
    )
