"""Cinelli-Hazlett sensitivity: published darfur numbers, the PySensemakr port, within dof."""

import numpy as np
import pandas as pd
import pytest
import sensemakr

import satmodel
from satmodel.errors import InputError
from satmodel.insights.sensitivity import (
    bias_bound,
    csat_mean_sensitivity,
    partial_r2,
    robustness_value,
)

DARFUR = (
    "peacefactor ~ directlyharmed + age + farmer_dar + herder_dar + pastvoted + hhsize_darfur"
    " + female + C(village)"
)


def test_darfur_matches_the_published_table():
    result = satmodel.fit(sensemakr.load_darfur(), DARFUR, "ols")
    row = result.coefficients_.set_index("term").loc["directlyharmed"]
    t, dof = row["estimate"] / row["std_error"], result.df_resid_
    # Cinelli & Hazlett (2020), Table 1
    assert row["estimate"] == pytest.approx(0.097, abs=5e-4)
    assert row["std_error"] == pytest.approx(0.023, abs=5e-4)
    assert t == pytest.approx(4.18, abs=5e-3)
    assert dof == 783
    for value, published in (
        (partial_r2(t, dof), 2.19),
        (robustness_value(t, dof, q=1), 13.88),
        (robustness_value(t, dof, q=1, alpha=0.05), 7.63),
    ):
        assert float(value) == pytest.approx(published / 100, abs=1e-3)
        assert 100 * float(value) == pytest.approx(published, abs=0.005)  # 2-decimal rounding


@pytest.mark.parametrize("t", [0.5, 2.1, 4.18, -9.8, 40.0])
@pytest.mark.parametrize("alpha", [1.0, 0.05, 0.01])
def test_robustness_value_agrees_with_pysensemakr(t, alpha):
    expected = sensemakr.robustness_value(t_statistic=float(t), dof=120, q=1, alpha=alpha)
    assert float(robustness_value(t, 120, 1.0, alpha)) == pytest.approx(float(expected.iloc[0]))


def test_bounds_agree_with_pysensemakr():
    # the port's own example: female as the benchmark of directlyharmed
    r2y = float(sensemakr.partial_r2(t_statistic=-9.789, dof=783))
    r2d = float(sensemakr.partial_r2(t_statistic=-2.680, dof=783))
    reference = sensemakr.ovb_partial_r2_bound(r2dxj_x=r2d, r2yxj_dx=r2y, kd=[1, 2, 3])
    ours = [bias_bound(r2d, r2y, k) for k in (1, 2, 3)]
    np.testing.assert_allclose([b[0] for b in ours], reference["r2dz_x"])
    np.testing.assert_allclose([b[1] for b in ours], reference["r2yz_dx"])
    assert bias_bound(0.6, 0.1, 3) is None  # impossible: the port would sys.exit here


def panel_with_customers(n_customers=30, months=6, seed=3):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_customers):
        level = rng.normal()
        for m in range(months):
            x = level + rng.normal()
            z = rng.normal()
            rows.append(
                {
                    "customer_id": f"c{i:02d}",
                    "month": f"2025-{m + 1:02d}",
                    "x": x,
                    "z": z,
                    "csat_n": 1 + (m % 3),
                    "csat_mean": 3 + 0.8 * level - 0.3 * x + 0.2 * z + rng.normal(0, 0.5),
                }
            )
    return pd.DataFrame(rows)


def test_within_sensitivity_is_the_fixed_effects_regression():
    panel = panel_with_customers()
    result = csat_mean_sensitivity(panel, "csat_mean ~ x + z")
    dummies = satmodel.fit(panel, "csat_mean ~ x + z + C(customer_id)", "ols")
    table = result.table_.set_index("term")
    fe = dummies.coefficients_.set_index("term")
    for term in ("x", "z"):
        t = fe.loc[term, "estimate"] / fe.loc[term, "std_error"]
        assert table.loc[term, "estimate"] == pytest.approx(fe.loc[term, "estimate"])
        assert table.loc[term, "t_statistic"] == pytest.approx(t)
        assert table.loc[term, "partial_r2"] == pytest.approx(partial_r2(t, dummies.df_resid_))
        assert table.loc[term, "rv_qa"] == pytest.approx(
            robustness_value(t, dummies.df_resid_, 1.0, 0.05)
        )
    assert table.loc["x", "dof"] == dummies.df_resid_
    assert table.loc["x", "benchmark"] == "z" and table.loc["z", "benchmark"] == "x"
    bounds = result.bounds_
    assert list(bounds.loc[bounds["term"] == "x", "k_d"]) == [1.0, 2.0, 3.0]
    # a stronger confounder leaves less of the effect
    adjusted = bounds.loc[bounds["term"] == "x", "adjusted_estimate"].abs().to_numpy()
    assert np.all(np.diff(adjusted) < 0)
    assert result.robustness_value_ == pytest.approx(table.loc[table["rv_qa"] > 0, "rv_q"].min())


def test_adjusted_estimates_agree_with_pysensemakr():
    panel = panel_with_customers(seed=5)
    result = csat_mean_sensitivity(panel, "csat_mean ~ x + z")
    row = result.table_.set_index("term").loc["x"]
    bounds = result.bounds_.loc[result.bounds_["term"] == "x"]
    kwargs = {"r2dz_x": bounds["r2dz_x"].to_numpy(), "r2yz_dx": bounds["r2yz_dx"].to_numpy()}
    estimate = sensemakr.adjusted_estimate(
        estimate=float(row["estimate"]), se=float(row["std_error"]), dof=int(row["dof"]), **kwargs
    )
    se = sensemakr.adjusted_se(se=float(row["std_error"]), dof=int(row["dof"]), **kwargs)
    np.testing.assert_allclose(bounds["adjusted_estimate"], estimate)
    np.testing.assert_allclose(bounds["adjusted_se"], se)


def test_sensitivity_input_errors():
    panel = panel_with_customers()
    with pytest.raises(InputError, match="csat_mean"):
        csat_mean_sensitivity(panel.drop(columns="csat_mean"), "csat_mean ~ x")
    with pytest.raises(InputError, match="no driver varies"):
        csat_mean_sensitivity(panel.assign(k=panel["customer_id"].str[1:].astype(float)),
                              "csat_mean ~ k")  # fmt: skip
    with pytest.raises(InputError, match="robustness value"):
        robustness_value(2.0, 100, q=0)
