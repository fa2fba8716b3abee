"""Satisfaction nowcast: predicted CSAT for every customer-month, surveyed or not.

The ordinal CSAT model predicts, for every row of the panel, the expected CSAT score and the
top-2 probability P(csat >= 4), with delta-method intervals (the top-2 interval is computed
on the logit scale and transformed back). A driver the row lacks is filled so that every
customer-month gets a prediction, and the filled columns are listed in ``imputed``:
``<metric>_lag1`` takes the same month's value (the demo's lag rule; the first month has no
lag), other drivers take the customer's median over all months, then the segment's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from satmodel.errors import InputError
from satmodel.insights.scenarios import check_ci

__all__ = ["nowcast"]


def _fill_drivers(panel: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    frame = panel.copy()
    imputed = pd.Series([""] * len(frame), index=frame.index, dtype=object)
    for column in columns:
        if column not in frame.columns or not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        missing = frame[column].isna()
        if not missing.any():
            continue
        if column.endswith("_lag1") and column[:-5] in frame.columns:
            frame[column] = frame[column].fillna(frame[column[:-5]])
        if frame[column].isna().any():
            by_customer = frame.groupby("customer_id")[column].transform("median")
            frame[column] = frame[column].fillna(by_customer)
        if frame[column].isna().any() and "segment" in frame.columns:
            by_segment = frame.groupby("segment")[column].transform("median")
            frame[column] = frame[column].fillna(by_segment)
        frame[column] = frame[column].fillna(frame[column].median())
        imputed[missing] = imputed[missing] + np.where(imputed[missing] == "", "", ",") + column
    return frame, imputed


def nowcast(models: dict, panel: pd.DataFrame, ci: float = 0.95, satisfied_cutoff: int = 4):
    """Predicted satisfaction of every customer-month of the panel.

    Parameters
    ----------
    models : dict of FitResult
        Needs the ordinal ``csat`` model.
    panel : DataFrame
        The service panel.
    ci : float
        Confidence level of the delta-method intervals.
    satisfied_cutoff : int
        CSAT at or above this is top-2.

    Returns
    -------
    DataFrame
        customer_id, month, segment, surveyed (csat_n > 0), csat_n, csat_mean (observed),
        csat_top2_rate (observed), csat_expected, csat_expected_ci_low,
        csat_expected_ci_high, top2_probability, top2_ci_low, top2_ci_high, imputed (comma-
        separated driver columns filled in, empty when none).
    """
    ci = check_ci(ci)
    if "csat" not in models or models["csat"].family != "ordinal":
        raise InputError(
            f"models: the nowcast needs the ordinal 'csat' model (have: {', '.join(models)})"
        )
    result = models["csat"]
    from satmodel.models import formula_columns

    used = formula_columns(result.formula, [*panel.columns, "csat"])
    frame, imputed = _fill_drivers(panel.reset_index(drop=True), used)
    design = result.design_matrix(frame)
    X = design.to_numpy(dtype=float)
    beta = result.coefficients_["estimate"].to_numpy(dtype=float)
    beta = np.where(np.isfinite(beta), beta, 0.0)
    names = list(result.coefficients_["term"]) + list(result.thresholds_["term"])
    cov = result.covariance_.loc[names, names].to_numpy(dtype=float)
    cov = np.where(np.isfinite(cov), cov, 0.0)
    cuts = result.thresholds_["estimate"].to_numpy(dtype=float)
    values = np.asarray(result.level_values_, dtype=float)
    k = len(beta)
    z = stats.norm.ppf(0.5 + ci / 2)
    eta = X @ beta
    cdf = special.expit(cuts[None, :] - eta[:, None])
    pdf = cdf * (1 - cdf)
    steps = np.diff(values)
    expected = values[-1] - cdf @ steps
    weight = pdf * steps[None, :]
    grad = np.hstack((X * weight.sum(axis=1)[:, None], -weight))
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", grad, cov, grad), 0.0))
    j = int(np.sum(values < satisfied_cutoff)) - 1
    if not 0 <= j < len(cuts):
        raise InputError(f"satisfied_cutoff {satisfied_cutoff}: no top-2 split of {list(values)}")
    # logit P(top2) = eta - cut_j, linear in the parameters
    logit_top = eta - cuts[j]
    g = np.hstack((X, np.zeros((len(X), len(cuts)))))
    g[:, k + j] = -1.0
    se_top = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", g, cov, g), 0.0))
    pred = pd.DataFrame(
        {
            "csat_expected": expected,
            "csat_expected_ci_low": np.clip(expected - z * se, values[0], values[-1]),
            "csat_expected_ci_high": np.clip(expected + z * se, values[0], values[-1]),
            "top2_probability": special.expit(logit_top),
            "top2_ci_low": special.expit(logit_top - z * se_top),
            "top2_ci_high": special.expit(logit_top + z * se_top),
        },
        index=design.index,
    ).reindex(frame.index)
    keep = [c for c in ("customer_id", "month", "segment") if c in frame.columns]
    out = frame[keep].copy()
    csat_n = frame["csat_n"] if "csat_n" in frame.columns else pd.Series(0, index=frame.index)
    out["surveyed"] = csat_n.fillna(0).to_numpy() > 0
    out["csat_n"] = csat_n.fillna(0).astype(int).to_numpy()
    for column in ("csat_mean", "csat_top2_rate"):
        out[column] = frame[column] if column in frame.columns else np.nan
    out = pd.concat([out, pred], axis=1)
    out["imputed"] = imputed
    return out
