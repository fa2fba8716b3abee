"""The DOT baggage case study: mishandled baggage, cancellations and seasonality."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from satmodel.casestudies.common import CaseData, quiet_fit
from satmodel.errors import InputError, ModelWarning

DOT_FORMULA = "complaints ~ C(segment) + error_rate + C(month_of_year) + C(year)"
DOT_PUBLISHED = {"poisson_dispersion": 334.0}


def airline_panel(case: CaseData) -> pd.DataFrame:
    """The airline-month panel with ``year``, ``month_of_year`` and ``cancelled_pct``.

    Raises
    ------
    InputError
        When the panel lacks complaints, active_users or error_rate.
    """
    needed = ["complaints", "active_users", "error_rate"]
    missing = [c for c in needed if c not in case.panel.columns]
    if missing:
        raise InputError(
            f"panel: column {missing[0]} missing (map complaints, usage and requests as in "
            "examples/dot_baggage/satmodel.toml)"
        )
    panel = case.panel.loc[case.panel["active_users"] > 0].copy()
    panel["year"] = panel["month"].str[:4]
    panel["month_of_year"] = panel["month"].str[5:7]
    panel["cancelled_pct"] = 100.0 * panel["error_rate"]
    return panel.reset_index(drop=True)


def dot_models(panel: pd.DataFrame, formula: str = DOT_FORMULA) -> dict[str, Any]:
    """Poisson and NB2 complaint models with exposure ``active_users`` (passengers).

    Returns
    -------
    dict of FitResult
        ``poisson``, ``negbin`` (the same formula) and ``complaints`` (= ``negbin``, the key
        :mod:`satmodel.insights` reads).
    """
    poisson = quiet_fit(panel, formula, "poisson", exposure="active_users")
    negbin = quiet_fit(panel, formula, "negbin", exposure="active_users")
    return {"poisson": poisson, "negbin": negbin, "complaints": negbin}


def overdispersion(models: dict[str, Any], panel: pd.DataFrame) -> dict[str, float]:
    """Poisson vs NB2: Pearson dispersion of each fit and the likelihood-ratio test.

    Uses :func:`satmodel.evaluation.diagnostics`; the LR p-value is the boundary-corrected
    one (half a chi-square(1) tail, alpha = 0 under the null).
    """
    from satmodel.evaluation import diagnostics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        poisson = diagnostics(models["poisson"], panel).set_index("check")
        negbin = diagnostics(models["negbin"], panel).set_index("check")
    lr = float(2 * (models["negbin"].log_likelihood_ - models["poisson"].log_likelihood_))
    from scipy import stats

    return {
        "poisson_dispersion": float(poisson.loc["dispersion", "value"]),
        "negbin_dispersion": float(negbin.loc["dispersion", "value"]),
        "lr_statistic": lr,
        "lr_p_value": float(0.5 * stats.chi2.sf(max(lr, 0.0), 1)),
        "diagnostics_lr": float(poisson.loc["overdispersion_lr", "value"]),
        "alpha": float(models["negbin"].alpha_),
        "poisson_log_likelihood": float(models["poisson"].log_likelihood_),
        "negbin_log_likelihood": float(models["negbin"].log_likelihood_),
    }


def seasonality(model) -> pd.DataFrame:
    """Month-of-year rate ratios (January = 1) with 95 % intervals."""
    rows = [{"month_of_year": "01", "rate_ratio": 1.0, "ci_low": 1.0, "ci_high": 1.0}]
    for row in model.coefficients_.itertuples():
        if row.term.startswith("C(month_of_year)[T."):
            rows.append(
                {
                    "month_of_year": row.term.split("[T.")[1].rstrip("]"),
                    "rate_ratio": math.exp(row.estimate),
                    "ci_low": math.exp(row.ci_low),
                    "ci_high": math.exp(row.ci_high),
                }
            )
    return pd.DataFrame(rows)


def cancellation_effect(model, step_pct: float = 1.0) -> dict[str, float]:
    """Complaint rate ratio for ``step_pct`` more percentage points of cancelled flights."""
    row = model.coefficients_.set_index("term").loc["error_rate"]
    scale = step_pct / 100.0
    return {
        "coefficient": float(row["estimate"]),
        "std_error": float(row["std_error"]),
        "step_pct": step_pct,
        "rate_ratio": math.exp(scale * row["estimate"]),
        "ci_low": math.exp(scale * row["ci_low"]),
        "ci_high": math.exp(scale * row["ci_high"]),
        "p_value": float(row["p_value"]),
    }


def airline_rates(panel: pd.DataFrame) -> pd.DataFrame:
    """Per airline: months, passengers, reports, reports per 1,000 passengers, cancelled %."""
    grouped = panel.groupby("segment")
    table = pd.DataFrame(
        {
            "months": grouped.size(),
            "passengers": grouped["active_users"].sum(),
            "complaints": grouped["complaints"].sum(),
            "scheduled": grouped["requests"].sum(),
            "cancelled": (panel["error_rate"] * panel["requests"]).groupby(panel["segment"]).sum(),
        }
    )
    table["complaint_rate_per_1k"] = 1000.0 * table["complaints"] / table["passengers"]
    table["cancelled_pct"] = 100.0 * table["cancelled"] / table["scheduled"]
    return table.reset_index().drop(columns=["scheduled", "cancelled"])


def dot_summary(
    case: CaseData, panel: pd.DataFrame, models: dict[str, Any], dispersion: dict[str, float]
) -> dict[str, Any]:
    """The machine-readable summary of the DOT baggage case study (``summary.json``)."""
    season = seasonality(models["negbin"])
    return {
        "schema_version": 1,
        "case_study": "dot_baggage",
        "data_window": [str(panel["month"].min()), str(panel["month"].max())],
        "rows": {
            "airline_months": int(len(panel)),
            "airlines": int(panel["customer_id"].nunique()),
            "complaints": int(panel["complaints"].sum()),
            "quarantined": int(case.validation.n_rejected),
        },
        "formula": models["negbin"].formula,
        "overdispersion": dispersion,
        "cancellations": cancellation_effect(models["negbin"]),
        "cancellations_poisson": cancellation_effect(models["poisson"]),
        "seasonality": season.to_dict(orient="records"),
        "peak_month": str(season.loc[season["rate_ratio"].idxmax(), "month_of_year"]),
        "trough_month": str(season.loc[season["rate_ratio"].idxmin(), "month_of_year"]),
        "airlines": airline_rates(panel).to_dict(orient="records"),
        "published": DOT_PUBLISHED,
    }


def dot_findings(summary: dict[str, Any]):
    """The DOT baggage findings in a few sentences (IPython Markdown) from :func:`dot_summary`."""
    from IPython.display import Markdown

    over = summary["overdispersion"]
    cancel = summary["cancellations"]
    p_value = over["lr_p_value"]
    p_text = "< 1e-300" if p_value == 0 else f"= {p_value:.2g}"
    lines = [
        f"- {summary['rows']['complaints']:,} mishandled-baggage reports over "
        f"{summary['rows']['airline_months']} airline-months "
        f"({summary['data_window'][0]} to {summary['data_window'][1]}).",
        f"- **Overdispersed**: the Poisson model's Pearson dispersion is "
        f"**{over['poisson_dispersion']:.0f}** (published: about "
        f"{summary['published']['poisson_dispersion']:.0f}; 1 for a Poisson process); NB2 "
        f"brings it to {over['negbin_dispersion']:.2f} with alpha = {over['alpha']:.4f}; "
        f"likelihood ratio {over['lr_statistic']:,.0f} (p {p_text}).",
        f"- **Cancellations drive complaints**: one percentage point more flights cancelled "
        f"goes with **{100 * (cancel['rate_ratio'] - 1):.1f} %** more reports per passenger "
        f"(95 % CI {100 * (cancel['ci_low'] - 1):.1f} to {100 * (cancel['ci_high'] - 1):.1f} %), "
        f"airline, month of year and year held fixed.",
        f"- **Seasonality**: the complaint rate peaks in month {summary['peak_month']} and is "
        f"lowest in month {summary['trough_month']} (rate ratios against January below).",
    ]
    return Markdown("\n".join(lines))


def plot_airline_rates(panel: pd.DataFrame):
    """Monthly complaint rate per 1,000 passengers and cancelled share, per airline."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5), dpi=100, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    for segment, group in panel.groupby("segment"):
        when = pd.to_datetime(group["month"] + "-01")
        top.plot(when, group["complaint_rate_per_1k"], label=segment, linewidth=1.2)
        bottom.plot(when, group["cancelled_pct"], label=segment, linewidth=1.2)
    top.set_ylabel("reports per 1,000 passengers")
    bottom.set_ylabel("flights cancelled (%)")
    top.legend(loc="upper right", frameon=False)
    return figure


def plot_seasonality(season: pd.DataFrame):
    """Month-of-year rate ratios of the NB2 model with 95 % intervals."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.2), dpi=100, layout="constrained")
    ax = figure.subplots()
    x = np.arange(len(season))
    ax.errorbar(
        x,
        season["rate_ratio"],
        yerr=[season["rate_ratio"] - season["ci_low"], season["ci_high"] - season["rate_ratio"]],
        fmt="o",
        color="#4c72b0",
        capsize=3,
    )
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(x, season["month_of_year"])
    ax.set_xlabel("month of year")
    ax.set_ylabel("complaint rate vs January")
    return figure
