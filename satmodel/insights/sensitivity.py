"""Sensitivity of linear effects to an omitted confounder (Cinelli & Hazlett 2020).

For an OLS coefficient with t statistic ``t`` on ``dof`` residual degrees of freedom:

* partial R² of the driver with the outcome: ``t² / (t² + dof)``;
* robustness value ``RV_q``: the partial R² a confounder would need with both the driver and
  the outcome to remove ``100 q %`` of the estimate; ``RV_{q,alpha}``: to make the reduced
  estimate insignificant at level ``alpha``;
* bounds: a confounder ``k_D`` times as strongly related to the driver (and ``k_Y = k_D``
  times to the outcome) as an observed covariate, and the estimate it would leave.

The closed forms are the paper's (eqs. 11-12, 18-19 and section 6.2) and those of its
PySensemakr port; they are written out here because the port calls ``sys.exit`` on
impossible bounds (e.g. ``k_D`` too large), which a report cannot survive.

:func:`csat_mean_sensitivity` applies them to the within-customer model of each
customer-month's mean CSAT: drivers and outcome demeaned within customers (the fixed-effects
regression, which removes every time-invariant confounder), so what is left to fear is an
omitted confounder that varies over time.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from satmodel.errors import InputError

__all__ = [
    "BOUND_COLUMNS",
    "SENSITIVITY_COLUMNS",
    "SensitivityResult",
    "bias_bound",
    "csat_mean_sensitivity",
    "partial_r2",
    "robustness_value",
]

SENSITIVITY_COLUMNS = ["term", "estimate", "std_error", "t_statistic", "dof", "partial_r2"]
SENSITIVITY_COLUMNS += ["rv_q", "rv_qa", "benchmark", "benchmark_partial_r2"]
BOUND_COLUMNS = ["term", "benchmark", "k_d", "r2dz_x", "r2yz_dx", "adjusted_estimate"]
BOUND_COLUMNS += ["adjusted_se", "adjusted_t", "adjusted_ci_low", "adjusted_ci_high"]


def partial_r2(t_statistic, dof):
    """Partial R² of a regressor with the outcome, from its t statistic."""
    t = np.asarray(t_statistic, dtype=float)
    return t**2 / (t**2 + dof)


def robustness_value(t_statistic, dof, q: float = 1.0, alpha: float = 1.0):
    """Robustness value RV_q (``alpha = 1``) or RV_{q,alpha} of a coefficient.

    Parameters
    ----------
    t_statistic, dof : the coefficient's t statistic and the residual degrees of freedom.
    q : share of the estimate the confounder would remove (1: all of it).
    alpha : significance level the adjusted estimate must lose (1: none, plain RV_q).
    """
    if q <= 0 or not 0 < alpha <= 1 or dof <= 1:
        raise InputError(
            f"robustness value: need q > 0, 0 < alpha <= 1, dof > 1 (got {q}, {alpha}, {dof})"
        )
    fq = q * np.abs(np.asarray(t_statistic, dtype=float)) / np.sqrt(dof)
    f_crit = abs(stats.t.ppf(alpha / 2, dof - 1)) / np.sqrt(dof - 1)
    fqa = fq - f_crit
    with np.errstate(divide="ignore"):
        loose_case = fq > 1 / f_crit
    binding = 0.5 * (np.sqrt(fqa**4 + 4 * fqa**2) - fqa**2)
    loose = (fq**2 - f_crit**2) / (1 + fq**2)
    return np.where(fqa < 0, 0.0, np.where(loose_case, loose, binding))


def bias_bound(r2dxj_x: float, r2yxj_dx: float, k_d: float, k_y: float | None = None):
    """Partial R²s of a confounder ``k_d`` (``k_y``) times as strong as a benchmark covariate.

    Parameters
    ----------
    r2dxj_x : partial R² of the benchmark with the driver (given the other covariates).
    r2yxj_dx : partial R² of the benchmark with the outcome (given the driver and the rest).

    Returns
    -------
    tuple of float or None
        (r2dz_x, r2yz_dx), r2yz_dx capped at 1; None when ``k_d`` is impossible (the implied
        partial R² with the driver would reach 1).
    """
    k_y = k_d if k_y is None else k_y
    r2dz_x = k_d * r2dxj_x / (1 - r2dxj_x)
    if r2dz_x >= 1 or k_d * r2dxj_x >= 1:
        return None
    r2zxj_xd = k_d * r2dxj_x**2 / ((1 - k_d * r2dxj_x) * (1 - r2dxj_x))
    if r2zxj_xd >= 1:
        return None
    factor = ((np.sqrt(k_y) + np.sqrt(r2zxj_xd)) / np.sqrt(1 - r2zxj_xd)) ** 2
    return float(r2dz_x), float(min(factor * r2yxj_dx / (1 - r2yxj_dx), 1.0))


def _adjusted(estimate, se, dof, r2dz_x, r2yz_dx, ci=0.95):
    bias = se * np.sqrt(r2yz_dx * r2dz_x / (1 - r2dz_x)) * np.sqrt(dof)
    adjusted = np.sign(estimate) * (abs(estimate) - bias)
    adjusted_se = se * np.sqrt((1 - r2yz_dx) / (1 - r2dz_x)) * np.sqrt(dof / (dof - 1))
    crit = stats.t.ppf(0.5 + ci / 2, dof - 1)
    return {
        "adjusted_estimate": adjusted,
        "adjusted_se": adjusted_se,
        "adjusted_t": adjusted / adjusted_se if adjusted_se > 0 else np.nan,
        "adjusted_ci_low": adjusted - crit * adjusted_se,
        "adjusted_ci_high": adjusted + crit * adjusted_se,
    }


class SensitivityResult:
    """Sensitivity of each driver of a linear model to an omitted confounder.

    Attributes
    ----------
    table_ : DataFrame
        One row per driver: term, estimate, std_error, t_statistic, dof, partial_r2 (with the
        outcome), rv_q (RV_{q=1}), rv_qa (RV_{q=1,alpha}), benchmark (the strongest other
        driver: the largest partial R² with the outcome), benchmark_partial_r2.
    bounds_ : DataFrame
        term, benchmark, k_d, r2dz_x, r2yz_dx, adjusted_estimate, adjusted_se, adjusted_t,
        adjusted_ci_low, adjusted_ci_high: a confounder k_d = 1, 2, 3 times as strong as the
        benchmark (rows of impossible k_d are left out).
    alpha_ : float
    n_obs_, n_groups_ : int
        Rows and groups of the within regression (``n_groups_`` 0 when pooled).
    """

    def __init__(self, table, bounds, alpha, n_obs, n_groups):
        self.table_ = table
        self.bounds_ = bounds
        self.alpha_ = alpha
        self.n_obs_ = n_obs
        self.n_groups_ = n_groups

    @property
    def robustness_value_(self) -> float:
        """The smallest RV_{q=1} of the drivers whose estimate is significant (NaN: none)."""
        significant = self.table_.loc[self.table_["rv_qa"] > 0, "rv_q"]
        return float(significant.min()) if len(significant) else float("nan")


def _ols_t(frame: pd.DataFrame, outcome: str, columns: list[str]) -> pd.DataFrame:
    from satmodel.models import fit

    names = {c: f"x{j}" for j, c in enumerate(columns)}
    data = frame.rename(columns={**names, outcome: "y"})
    formula = "y ~ 0 + " + " + ".join(names.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(data, formula, "ols", cov_type="nonrobust")
    table = result.coefficients_.assign(term=columns, df=result.df_resid_)
    table["t"] = table["estimate"] / table["std_error"]
    return table.set_index("term")


def csat_mean_sensitivity(
    panel: pd.DataFrame,
    formula: str | None = None,
    within: str | None = "customer_id",
    k_d: tuple[float, ...] = (1.0, 2.0, 3.0),
    alpha: float = 0.05,
) -> SensitivityResult:
    """Cinelli-Hazlett sensitivity of the within-customer model of monthly mean CSAT.

    Parameters
    ----------
    panel : DataFrame
        The service panel; customer-months with survey answers (``csat_n > 0``) are used,
        each once (classical standard errors, as the paper's algebra assumes).
    formula : str, optional
        ``csat_mean ~ drivers``; default: the default drivers that vary over time (segment
        is constant within a customer).
    within : str or None
        Demean outcome and drivers within this column (the fixed-effects regression; its
        residual degrees of freedom lose one per group); None for the pooled regression.
    k_d : multiples of the benchmark's strength for the bounds.
    alpha : significance level of RV_{q,alpha}.

    Returns
    -------
    SensitivityResult
    """
    from satmodel.models import default_formulas, fit

    if "csat_mean" not in panel.columns or "csat_n" not in panel.columns:
        raise InputError("panel: columns csat_mean and csat_n are needed")
    if formula is None:
        rhs = default_formulas(panel.columns)["csat"].split("~", 1)[1]
        terms = [t.strip() for t in rhs.split(" + ") if not t.strip().startswith("C(")]
        formula = "csat_mean ~ " + " + ".join(terms)
    rows = panel.loc[pd.to_numeric(panel["csat_n"], errors="coerce") > 0]
    if within is not None and within not in rows.columns:
        raise InputError(f"panel: within column {within!r} not found")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pooled = fit(rows, formula, "ols", cov_type="nonrobust")
    design = pooled.design_matrix(rows)
    y = pd.to_numeric(rows.loc[design.index, "csat_mean"], errors="coerce")
    keep = y.notna()
    design, y = design.loc[keep], y.loc[keep]
    columns = [c for c in design.columns if c != "Intercept"]
    frame = design[columns].assign(csat_mean=y)
    n_groups = 0
    if within is not None:
        groups = rows.loc[frame.index, within].astype(str)
        frame = frame - frame.groupby(groups.to_numpy()).transform("mean")
        n_groups = int(groups.nunique())
    else:
        frame = frame - frame.mean()
    scale = frame[columns].std()
    columns = [c for c in columns if scale[c] > 1e-12 * max(1.0, abs(design[c]).max())]
    if not columns:
        raise InputError(f"formula {formula!r}: no driver varies within {within}")
    dof = len(frame) - len(columns) - (n_groups if within is not None else 1)
    if dof <= 1:
        raise InputError(
            f"panel: too few customer-months ({len(frame)}) for {len(columns)} drivers"
        )
    outcome = _ols_t(frame, "csat_mean", columns)
    # the demeaned fit counts dof without the groups; partial R² does not depend on it
    r2y = partial_r2(outcome["t"], outcome["df"])
    t_true = np.sign(outcome["t"]) * np.sqrt(dof * r2y / (1 - r2y))
    se_true = outcome["estimate"] / t_true
    table = pd.DataFrame(
        {
            "term": columns,
            "estimate": outcome["estimate"].to_numpy(),
            "std_error": se_true.to_numpy(),
            "t_statistic": t_true.to_numpy(),
            "dof": dof,
            "partial_r2": r2y.to_numpy(),
            "rv_q": robustness_value(t_true.to_numpy(), dof, 1.0),
            "rv_qa": robustness_value(t_true.to_numpy(), dof, 1.0, alpha),
        }
    )
    bounds = []
    benchmarks, benchmark_r2 = [], []
    for term in columns:
        others = [c for c in columns if c != term]
        if not others:
            benchmarks.append(None)
            benchmark_r2.append(np.nan)
            continue
        r2y_others = r2y.loc[others]
        benchmark = str(r2y_others.idxmax())
        benchmarks.append(benchmark)
        benchmark_r2.append(float(r2y_others.max()))
        treatment = _ols_t(frame, term, others)
        r2d = float(partial_r2(treatment.loc[benchmark, "t"], treatment.loc[benchmark, "df"]))
        row = table.loc[table["term"] == term].iloc[0]
        for k in k_d:
            bound = bias_bound(r2d, float(r2y[benchmark]), k)
            if bound is None:
                continue
            adjusted = _adjusted(row["estimate"], row["std_error"], dof, *bound)
            bounds.append(
                {"term": term, "benchmark": benchmark, "k_d": k, "r2dz_x": bound[0]}
                | {"r2yz_dx": bound[1], **adjusted}
            )
    table["benchmark"] = benchmarks
    table["benchmark_partial_r2"] = benchmark_r2
    return SensitivityResult(
        table[SENSITIVITY_COLUMNS],
        pd.DataFrame(bounds, columns=BOUND_COLUMNS),
        alpha,
        len(frame),
        n_groups,
    )
