"""Drift section: month-over-month change of the drivers' effects."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from satmodel.calendar import add_months, month_name
from satmodel.reporting.data import ReportData, up_to_month
from satmodel.reporting.drivers import ModelSection, describe_driver, fit_models
from satmodel.reporting.labels import md_escape, model_label


def fit_previous_models(data: ReportData, enabled: bool = True) -> ModelSection:
    """The default models fitted on the data up to the month before the report month."""
    previous = add_months(data.month, -1)
    if previous < data.window[0]:
        section = ModelSection()
        section.notes.append("no month before the report month, so no drift to measure")
        return section
    earlier = ReportData(
        month=previous,
        window=data.window,
        source=data.source,
        validation=data.validation,
        config=data.config,
        panel=up_to_month(data.panel, previous),
        responses=up_to_month(data.responses, previous),
    )
    return fit_models(earlier, enabled=enabled)


def effect_drift(
    current: ModelSection, previous: ModelSection, alpha: float = 0.01
) -> pd.DataFrame:
    """Month-over-month change of every driver's coefficient, with an approximate z-test.

    The two fits share data: the previous fit uses the months up to last month, the current
    one the same months plus this month. Their estimates are therefore strongly correlated,
    and the usual independent-samples test (variance of the difference = sum of the two
    variances) would almost never flag anything. Under the hypothesis that the effect did
    not change, the estimate on the larger sample is (asymptotically) efficient, and for nested
    samples its covariance with the smaller-sample estimate equals its own variance (the
    Hausman argument), so::

        Var(b_now - b_before) = Var(b_before) - Var(b_now)

    That difference of two estimated variances is itself noisy: it can come out near zero, or
    negative (cluster-robust standard errors need not shrink with one month more), which would
    inflate z. So the larger of it and the sample-size version
    ``Var(b_now) x (n_now / n_before - 1)`` is used (``method`` names the one that was
    larger). Both are approximations: they assume correctly specified models and that the
    extra month adds information in proportion to its observations. The test amounts to
    asking whether this month's data alone disagrees with the months before. With about 30
    coefficients, a 1% level (``alpha``) keeps false alarms to about one in three reports.

    Parameters
    ----------
    current, previous : the models fitted up to this month and up to the month before.
    alpha : significance level of the flag.

    Returns
    -------
    DataFrame
        model, term, driver, estimate, previous_estimate, difference, std_error,
        previous_std_error, se_difference, z, p_value, method, flagged.
    """
    from scipy import stats

    columns = ["model", "term", "driver", "estimate", "previous_estimate", "difference"]
    columns += ["std_error", "previous_std_error", "se_difference", "z", "p_value", "method"]
    columns += ["flagged"]
    rows = []
    for name, now in current.results.items():
        before = previous.results.get(name)
        if before is None:
            continue
        n_now, n_before = float(now.n_obs_), float(before.n_obs_)
        old = before.coefficients_.set_index("term")
        for record in now.coefficients_.to_dict("records"):
            term = record["term"]
            if term == "Intercept" or term not in old.index:
                continue
            b1, s1 = float(record["estimate"]), float(record["std_error"])
            b0, s0 = float(old.at[term, "estimate"]), float(old.at[term, "std_error"])
            nested = s0**2 - s1**2
            by_size = s1**2 * (n_now / n_before - 1) if n_before > 0 else math.nan
            if nested > by_size or math.isnan(by_size):
                variance, method = nested, "nested (Hausman)"
            else:
                variance, method = by_size, "sample size"
            se = math.sqrt(variance) if variance > 0 else math.nan
            z = (b1 - b0) / se if se > 0 else math.nan
            p = float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else math.nan
            rows.append(
                {
                    "model": name,
                    "term": term,
                    "driver": describe_driver(term)[0],
                    "estimate": b1,
                    "previous_estimate": b0,
                    "difference": b1 - b0,
                    "std_error": s1,
                    "previous_std_error": s0,
                    "se_difference": se,
                    "z": z,
                    "p_value": p,
                    "method": method,
                    "flagged": bool(p < alpha) if math.isfinite(p) else False,
                }
            )
    return pd.DataFrame(rows, columns=columns)


def drift_view(drift: pd.DataFrame, references: dict[str, str] | None = None) -> pd.DataFrame:
    """The drift table as a manager reads it: odds ratios (CSAT and satisfied share) or rate
    ratios (complaints) last month and this month, for the step each driver is shown for,
    with this month's 95% interval, the p-value of the change and its flag.

    Parameters
    ----------
    drift : the output of :func:`effect_drift`.
    references : reference level of each categorical variable (``ModelSection.references``),
        named in the step of its levels.

    Returns
    -------
    DataFrame
        model, driver, step, previous_effect, effect, effect_low, effect_high, p_value,
        flagged.
    """
    from scipy import stats

    z = stats.norm.ppf(0.975)
    described = [describe_driver(str(t), references) for t in drift["term"]]
    steps = np.array([d[1] for d in described], dtype=float)
    estimate = drift["estimate"].to_numpy(float)
    spread = z * drift["std_error"].to_numpy(float)
    out = drift[["model", "driver"]].reset_index(drop=True)
    out["step"] = [d[2] for d in described]
    out["previous_effect"] = np.exp(drift["previous_estimate"].to_numpy(float) * steps)
    out["effect"] = np.exp(estimate * steps)
    out["effect_low"] = np.exp((estimate - spread) * steps)
    out["effect_high"] = np.exp((estimate + spread) * steps)
    out["p_value"] = drift["p_value"].to_numpy(float)
    out["flagged"] = drift["flagged"].to_numpy(bool)
    return out


def drift_text(drift: pd.DataFrame, month: str):
    """One paragraph on the drivers whose effect changed this month, as IPython Markdown."""
    from IPython.display import Markdown

    if drift.empty:
        return Markdown("No drift to report (the models of both months are needed).")
    flagged = drift.loc[drift["flagged"]]
    if flagged.empty:
        return Markdown(
            f"No driver's effect changed significantly with the data of {month_name(month)} "
            f"({len(drift)} coefficients compared at the 1% level)."
        )
    parts = []
    for r in flagged.itertuples(index=False):
        _, step, step_text = describe_driver(str(r.term))
        parts.append(
            f"**{md_escape(r.driver)}** in the {md_escape(model_label(r.model))} model "
            f"(x{math.exp(r.previous_estimate * step):.2f} to x{math.exp(r.estimate * step):.2f} "
            f"{md_escape(step_text)})"
        )
    return Markdown(
        f"Adding {month_name(month)} changed these effects more than chance would explain: "
        + "; ".join(parts)
        + ". Check for a change in how the service is measured, or in what customers value."
    )
