"""Driver importance (Shapley / LMG): exactness, brute force, bootstrap coverage."""

from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd
import pytest

from satmodel.errors import InputError
from satmodel.insights import (
    driver_importance,
    plot_importance_quadrant,
    shapley_from_covariance,
    shapley_values,
)


def _make_data(n_customers=60, per=4, seed=1):
    rng = np.random.default_rng(seed)
    n = n_customers * per
    cust = np.repeat([f"c{i:03d}" for i in range(n_customers)], per)
    base = rng.normal(size=(n_customers, 3))[np.repeat(np.arange(n_customers), per)]
    x = 0.6 * base + rng.normal(size=(n, 3))
    x[:, 1] += 0.5 * x[:, 0]
    seg = rng.choice(["a", "b", "c"], size=n)
    y = (
        0.8 * x[:, 0]
        - 0.5 * x[:, 1]
        + 0.3 * x[:, 2]
        + np.where(seg == "b", 0.4, 0.0)
        + rng.normal(size=n)
    )
    return pd.DataFrame(
        {
            "customer_id": cust,
            "x1": x[:, 0],
            "x2": x[:, 1],
            "x3": x[:, 2],
            "segment": seg,
            "y": y,
            "w": rng.integers(1, 4, size=n).astype(float),
        }
    )


def _r2(X, y, w):
    A = np.column_stack((np.ones(len(y)), X)) if X.shape[1] else np.ones((len(y), 1))
    sw = np.sqrt(w)
    beta = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)[0]
    resid = y - A @ beta
    ybar = (w @ y) / w.sum()
    return 1.0 - (w @ resid**2) / (w @ (y - ybar) ** 2)


def _brute_shapley(columns, y, w):
    """Shapley values by refitting every subset with lstsq (columns: list of 2-d arrays)."""
    p = len(columns)
    n = len(y)

    def value(subset):
        X = np.hstack([columns[j] for j in subset]) if subset else np.zeros((n, 0))
        return _r2(X, y, w) if subset else 0.0

    out = np.zeros(p)
    for j in range(p):
        others = [i for i in range(p) if i != j]
        for size in range(p):
            for subset in combinations(others, size):
                weight = factorial(size) * factorial(p - size - 1) / factorial(p)
                out[j] += weight * (value(list(subset) + [j]) - value(list(subset)))
    return out


def test_shares_add_up_and_match_brute_force():
    data = _make_data()
    drivers = {"x1": ["x1"], "x2": ["x2"], "x3": ["x3"], "segment": ["C(segment)"]}
    res = driver_importance(data, "y", drivers=drivers, weights="w", n_boot=50, seed=3)
    table = res.table_.set_index("driver")
    assert table["share"].sum() == pytest.approx(res.total_, abs=1e-10)
    assert table["relative_share"].sum() == pytest.approx(1.0, abs=1e-10)
    dummies = pd.get_dummies(data["segment"], drop_first=True).to_numpy(float)
    columns = [data[["x1"]].to_numpy(), data[["x2"]].to_numpy(), data[["x3"]].to_numpy(), dummies]
    brute = _brute_shapley(columns, data["y"].to_numpy(), data["w"].to_numpy())
    np.testing.assert_allclose(table.loc[list(drivers), "share"].to_numpy(), brute, atol=1e-10)
    assert res.total_ == pytest.approx(
        _r2(np.hstack(columns), data["y"].to_numpy(), data["w"].to_numpy()), abs=1e-10
    )
    expected_cols = [
        "driver",
        "terms",
        "share",
        "share_ci_low",
        "share_ci_high",
        "relative_share",
        "relative_share_ci_low",
        "relative_share_ci_high",
        "rank",
        "rank_ci_low",
        "rank_ci_high",
        "measure",
    ]
    assert list(res.table_.columns[: len(expected_cols)]) == expected_cols
    assert list(res.table_["rank"]) == [1, 2, 3, 4]
    assert (res.table_["rank_ci_low"] <= res.table_["rank"]).all()
    assert (res.table_["rank_ci_high"] >= res.table_["rank"]).all()
    assert res.boot_shares_.shape == (50, 4)
    assert np.allclose(res.boot_shares_.sum(axis=1), res.boot_shares_.sum(axis=1))


def test_shapley_values_efficiency_random():
    rng = np.random.default_rng(0)
    values = rng.random((5, 2**5))
    values[:, 0] = 0.0
    phi = shapley_values(values, 5)
    np.testing.assert_allclose(phi.sum(axis=1), values[:, -1], atol=1e-12)


def test_pseudo_r2_matches_refits_with_fit():
    from satmodel.models import fit

    data = _make_data(n_customers=80, per=3, seed=5)
    data["top"] = (data["y"] > 0).astype(int)
    drivers = ["x1", "x2", "x3"]
    res = driver_importance(data, "top", drivers=drivers, family="logit", n_boot=3)
    ll = {}
    for size in range(4):
        for subset in combinations(drivers, size):
            rhs = " + ".join(subset) if subset else "1"
            ll[subset] = fit(data, f"top ~ {rhs}", "logit").log_likelihood_
    r2 = {s: 1 - v / ll[()] for s, v in ll.items()}
    brute = []
    for j in drivers:
        others = [d for d in drivers if d != j]
        total = 0.0
        for size in range(3):
            for subset in combinations(others, size):
                with_j = tuple(d for d in drivers if d in subset or d == j)
                weight = factorial(size) * factorial(2 - size) / factorial(3)
                total += weight * (r2[with_j] - r2[tuple(subset)])
        brute.append(total)
    got = res.table_.set_index("driver").loc[drivers, "share"].to_numpy()
    np.testing.assert_allclose(got, brute, atol=1e-7)
    assert res.measure_ == "mcfadden_r2"


def test_bad_input():
    data = _make_data()
    with pytest.raises(InputError, match="cluster column"):
        driver_importance(data, "y", drivers=["x1"], cluster="nope", n_boot=0)
    with pytest.raises(InputError, match="family"):
        driver_importance(data, "y", drivers=["x1"], family="probit", n_boot=0)
    with pytest.raises(InputError, match="cannot be evaluated"):
        driver_importance(data, "y", drivers=["nope"], n_boot=0)


def test_quadrant_plot_returns_figure():
    data = _make_data()
    res = driver_importance(data, "y", drivers=["x1", "x2", "x3"], n_boot=20)
    fig = plot_importance_quadrant(res, performance={"x1": 80.0, "x2": 60.0, "x3": 95.0})
    ax = fig.axes[0]
    assert ax.get_title()
    assert "%" in ax.get_xlabel() and "%" in ax.get_ylabel()


@pytest.mark.slow
def test_bootstrap_intervals_cover_population_shares():
    """95% customer-bootstrap intervals cover the population LMG shares ~95% of the time."""
    rng = np.random.default_rng(2024)
    p = 3
    sigma_between = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.0]]) * 0.5
    sigma_within = np.array([[1.0, 0.4, 0.1], [0.4, 1.0, 0.3], [0.1, 0.3, 1.0]]) * 0.5
    beta = np.array([0.6, 0.3, -0.4])
    sd_u, sd_e = 0.5, 1.0
    sigma_x = sigma_between + sigma_within
    cov = np.zeros((p + 1, p + 1))
    cov[:p, :p] = sigma_x
    cov[:p, p] = cov[p, :p] = sigma_x @ beta
    cov[p, p] = beta @ sigma_x @ beta + sd_u**2 + sd_e**2
    truth = shapley_from_covariance(cov)
    n_sets, n_customers, per = 160, 150, 4
    covered = np.zeros((n_sets, p), dtype=bool)
    lb = np.linalg.cholesky(sigma_between)
    lw = np.linalg.cholesky(sigma_within)
    ids = np.repeat(np.arange(n_customers), per)
    for s in range(n_sets):
        xb = (rng.standard_normal((n_customers, p)) @ lb.T)[ids]
        x = xb + rng.standard_normal((n_customers * per, p)) @ lw.T
        y = x @ beta + sd_u * rng.standard_normal(n_customers)[ids]
        y = y + sd_e * rng.standard_normal(len(y))
        frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=y, customer_id=ids)
        res = driver_importance(frame, "y", drivers=["a", "b", "c"], n_boot=300, seed=s)
        t = res.table_.set_index("driver").loc[["a", "b", "c"]]
        covered[s] = (t["share_ci_low"] <= truth) & (truth <= t["share_ci_high"])
    rate = covered.mean()
    # binomial tolerance around 0.95 for n_sets * p (correlated) indicators
    tolerance = 3 * np.sqrt(0.95 * 0.05 / n_sets)
    assert abs(rate - 0.95) < tolerance, (rate, covered.mean(axis=0))
    assert covered.mean(axis=0).min() > 0.95 - 1.5 * tolerance


# --------------------------------------------------------------------------------------
# noise drivers
# --------------------------------------------------------------------------------------


def _with_noise(seed=5, n_customers=200, per=6):
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(n_customers), per)
    x = rng.normal(size=(n_customers, 2))[ids] + rng.normal(size=(len(ids), 2))
    noise = rng.normal(size=len(ids))
    y = (
        0.8 * x[:, 0]
        + 0.4 * x[:, 1]
        + rng.normal(size=n_customers)[ids]
        + rng.normal(size=len(ids))
    )
    return pd.DataFrame({"customer_id": ids, "a": x[:, 0], "b": x[:, 1], "noise": noise, "y": y})


def test_pure_noise_driver_is_marked_and_its_interval_holds_zero():
    data = _with_noise()
    res = driver_importance(data, "y", drivers=["a", "b", "noise"], n_boot=200, seed=1)
    table = res.table_.set_index("driver")
    assert table.loc["noise", "share"] < 0.01
    assert not table.loc["noise", "distinguishable"]
    assert table.loc["noise", "share_ci_low"] == 0.0
    assert table.loc["noise", "share_ci_low"] <= table.loc["noise", "share"]
    assert table.loc["noise", "share"] <= table.loc["noise", "share_ci_high"]
    assert table.loc[["a", "b"], "distinguishable"].all()
    assert (table.loc[["a", "b"], "share_ci_low"] > 0).all()
    assert table.loc["noise", "noise_p_value"] > 0.05
    assert any("indistinguishable from noise" in n and "noise" in n for n in res.notes_)


def test_noise_driver_constant_within_customers_is_not_distinguishable():
    """A customer-level noise attribute: the null must keep its between-customer spread."""
    data = _with_noise(seed=8)
    rng = np.random.default_rng(3)
    data["attribute"] = rng.normal(size=data["customer_id"].max() + 1)[data["customer_id"]]
    hits = 0
    for seed in range(10):
        res = driver_importance(data, "y", drivers=["a", "attribute"], n_boot=20, seed=seed)
        hits += bool(res.table_.set_index("driver").loc["attribute", "distinguishable"])
    assert hits <= 3


def test_noise_test_in_refitting_families():
    data = _with_noise(n_customers=100, per=4).assign(top=lambda d: (d["y"] > 0).astype(int))
    res = driver_importance(data, "top", drivers=["a", "noise"], family="logit", n_boot=5)
    table = res.table_.set_index("driver")
    assert bool(table.loc["a", "distinguishable"])
    assert table.loc["noise", "noise_p_value"] > 0.05


def test_no_noise_test_without_resamples():
    res = driver_importance(_with_noise(), "y", drivers=["a", "noise"], n_boot=0)
    assert res.table_["distinguishable"].isna().all()
    with pytest.raises(InputError, match="n_perm"):
        driver_importance(_with_noise(), "y", drivers=["a"], n_perm=-1)
