"""Within effects (correlated random effects / Mundlak) for every family.

OLS against the published fixed-effects estimates (Stata ``xtreg, fe`` on Grunfeld) and
against pyfixest's cluster-robust FE standard errors; Poisson against pyfixest's ``fepois``;
ordinal and logit by seeded simulation of a confounded panel (the pooled fit is biased,
the within fit recovers the truth).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
import statsmodels.api as sm
from scipy.special import expit

from satmodel import FitResult, fit
from satmodel.errors import InputError

RESULTS = Path(__file__).parent / "results"


def confounded_panel(family: str, groups: int = 400, months: int = 8, seed: int = 11):
    """A panel where groups with a higher persistent x are worse for other reasons."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), months)
    persistent = rng.normal(0.0, 1.0, groups)
    x = persistent[g] + rng.normal(0.0, 1.0, len(g))
    hidden = -1.2 * persistent + rng.normal(0.0, 0.1, groups)
    eta = 0.5 * x + hidden[g]
    if family == "ordinal":
        cuts = np.array([-2.0, -0.7, 0.5, 1.8])
        y = 1 + (rng.logistic(size=len(g))[:, None] + eta[:, None] > cuts).sum(axis=1)
    elif family == "logit":
        y = (rng.random(len(g)) < expit(eta - 0.2)).astype(int)
    else:
        raise ValueError(family)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in g],
            "month": np.tile([f"2025-{m + 1:02d}" for m in range(months)], groups),
            "x": x,
            "y": y,
        }
    )


def _estimate(result, term="x"):
    return result.coefficients_.set_index("term").loc[term]


def test_ols_within_equals_the_published_fixed_effects_estimates():
    reference = json.loads((RESULTS / "grunfeld_fe.json").read_text())
    data = sm.datasets.grunfeld.load_pandas().data
    data = data.loc[data["firm"] != "American Steel"]
    result = fit(data, "invest ~ value + capital", "ols", within="firm")
    for term, value in reference["params"].items():
        assert _estimate(result, term)["estimate"] == pytest.approx(
            value, abs=reference["tolerance"]
        )
    assert list(result.mundlak_terms_["term"]) == ["mean(value)", "mean(capital)"]
    assert result.cluster == "firm" and result.cov_type_ == "cluster"


def test_ols_within_matches_pyfixest_cluster_robust_errors():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(200), 6)
    persistent = rng.normal(size=200)
    data = pd.DataFrame({"cid": g.astype(str), "x": persistent[g] + rng.normal(size=len(g))})
    data["z"] = rng.normal(size=len(g))
    data["y"] = 0.5 * data["x"] - 0.3 * data["z"] - persistent[g] + rng.normal(size=len(g))
    ours = fit(data, "y ~ x + z", "ols", within="cid")
    theirs = pf.feols("y ~ x + z | cid", data=data, vcov={"CRV1": "cid"})
    for term in ("x", "z"):
        assert _estimate(ours, term)["estimate"] == pytest.approx(theirs.coef()[term], abs=1e-10)
        # fixest counts the absorbed effects as nested in the clusters (k = 2), the Mundlak
        # regression counts its mean terms (k = 5): (N-1)/(N-k) differs by 0.25 %
        assert _estimate(ours, term)["std_error"] == pytest.approx(theirs.se()[term], rel=5e-3)


def test_poisson_within_agrees_with_fixed_effects_poisson():
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(300), 8)
    persistent = rng.normal(size=300)
    x = persistent[g] + rng.normal(size=len(g))
    data = pd.DataFrame({"cid": g.astype(str), "x": x})
    data["n"] = rng.poisson(np.exp(1.0 + 0.3 * x - 0.6 * persistent[g]))
    ours = _estimate(fit(data, "n ~ x", "poisson", within="cid"))
    theirs = pf.fepois("n ~ x | cid", data=data, vcov={"CRV1": "cid"})
    # CRE Poisson is not algebraically the conditional (FE) Poisson estimator; both are
    # consistent for the within effect: they agree well inside one standard error
    assert abs(ours["estimate"] - theirs.coef()["x"]) < 0.25 * theirs.se()["x"]
    assert ours["ci_low"] < 0.3 < ours["ci_high"]


@pytest.mark.parametrize("family", ["ordinal", "logit"])
def test_within_recovers_the_truth_where_pooled_is_biased(family):
    data = confounded_panel(family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pooled = _estimate(fit(data, "y ~ x", family, cluster="customer_id"))
        within = fit(data, "y ~ x", family, within="customer_id")
    assert not pooled["ci_low"] < 0.5 < pooled["ci_high"], pooled
    assert pooled["estimate"] < 0.2
    x = _estimate(within)
    assert x["ci_low"] < 0.5 < x["ci_high"], x
    assert within.mundlak_test_["p_value"] < 1e-6
    assert within.mundlak_test_["df"] == 1


def test_within_fit_predicts_with_each_groups_own_persistent_part():
    data = confounded_panel("ordinal", groups=120, months=6)
    result = fit(data, "y ~ x", "ordinal", within="customer_id")
    fitted = result.predict(data)["expected"]
    # two rows with the same x but different customers differ by their persistent parts
    a = data.iloc[[0]].assign(x=0.0)
    b = data.iloc[[6 * 50]].assign(x=0.0)
    assert result.predict(a)["expected"].iloc[0] != pytest.approx(
        result.predict(b)["expected"].iloc[0]
    )
    # the mean fitted score equals the mean observed score closely (the fit has an intercept
    # through its cutpoints and the means)
    assert fitted.mean() == pytest.approx(data["y"].mean(), abs=0.05)
    again = FitResult.from_json(result.to_json())
    pd.testing.assert_frame_equal(again.predict(data.head(20)), result.predict(data.head(20)))
    with pytest.raises(InputError, match="customer_id.*not fitted on"):
        result.predict(data.head(2).assign(customer_id="new"))


@pytest.mark.parametrize("cluster", [None, "account"])
def test_collapsed_and_uncollapsed_within_fits_agree(cluster):
    data = confounded_panel("ordinal", groups=60, months=5)
    # two customers per account: clusters coarser than the within groups
    data["account"] = "a" + (data["customer_id"].str[1:].astype(int) // 2).astype(str)
    data = pd.concat([data] * 3, ignore_index=True)  # repeated responses collapse
    collapsed = fit(data, "y ~ x", "ordinal", within="customer_id", cluster=cluster)
    plain = fit(data, "y ~ x", "ordinal", within="customer_id", cluster=cluster, collapse=False)
    assert collapsed.n_clusters_ == (60 if cluster is None else 30)
    assert len(collapsed.within_.means) == 60
    pd.testing.assert_frame_equal(collapsed.coefficients_, plain.coefficients_, atol=1e-8)
    pd.testing.assert_frame_equal(collapsed.mundlak_terms_, plain.mundlak_terms_, atol=1e-8)


def test_time_effects_add_one_effect_per_month():
    data = confounded_panel("logit", groups=100, months=4)
    result = fit(data, "y ~ x", "logit", within="customer_id", time_effects="month")
    assert result.reliable, result.warnings_
    terms = list(result.coefficients_["term"])
    assert [t for t in terms if t.startswith("C(month)")] == [
        "C(month)[T.2025-02]",
        "C(month)[T.2025-03]",
        "C(month)[T.2025-04]",
    ]


def test_within_column_without_repeats_names_the_column():
    data = confounded_panel("ordinal", groups=80, months=1)
    with pytest.raises(InputError, match=r"within 'customer_id'.*0 of 80 levels"):
        fit(data, "y ~ x", "ordinal", within="customer_id")


def test_cli_within_json_and_bad_input(tmp_path):
    data = confounded_panel("ordinal", groups=150, months=6)
    table = tmp_path / "panel.csv"
    data.to_csv(table, index=False)
    out = tmp_path / "fit.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "satmodel",
            "fit",
            "--data",
            str(table),
            "--formula",
            "y ~ x",
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
    assert run.returncode == 0, run.stderr
    payload = json.loads(out.read_text())
    assert payload["within"] == "customer_id"
    assert [t["term"] for t in payload["params"]] == ["x"]
    assert [t["term"] for t in payload["mundlak_terms"]] == ["mean(x)"]
    assert set(payload["mundlak_test"]) == {"statistic", "df", "p_value"}
    single = tmp_path / "single.csv"
    data.drop_duplicates("customer_id").to_csv(single, index=False)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "satmodel",
            "fit",
            "--data",
            str(single),
            "--formula",
            "y ~ x",
            "--family",
            "ordinal",
            "--within",
            "customer_id",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "customer_id" in lines[0] and "levels" in lines[0], bad.stderr
