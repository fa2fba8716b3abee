"""Loyalty: the NPS model, the churn hazard and retention curves by service-level band.

- :func:`fit_nps_model`: an ordinal model of NPS (detractor < passive < promoter, or the 0-10
  answer itself) on the survey responses, with the CSAT model's drivers and within-customer
  identification (:func:`satmodel.fit` with ``within="customer_id"``).
- :func:`fit_churn_model`: a discrete-time hazard, a logit of ``churned`` on the
  customer-months under contract, with customer-clustered standard errors, linking service
  levels, CSAT and complaints to leaving.
- :func:`retention_curves`: Kaplan-Meier retention (lifelines) over the months of the data, by
  band of the customer's mean availability, with Greenwood intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter

from satmodel.errors import InputError
from satmodel.models import default_formulas, fit
from satmodel.models.results import FitResult

NPS_GROUPS = ("detractor", "passive", "promoter")
"""NPS answer groups, in order: 0-6, 7-8, 9-10."""

CHURN_DRIVERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("np.log1p(downtime_minutes)", ("downtime_minutes",)),
    ("np.log(latency_p95_ms)", ("latency_p95_ms",)),
    ("np.log1p(np.fmax(resolution_hours_median, 0))", ("resolution_hours_median",)),
    ("np.where(np.isnan(resolution_hours_median), 1.0, 0.0)", ("resolution_hours_median",)),
    ("csat_mean", ("csat_mean",)),
    ("np.log1p(complaint_rate_per_1k)", ("complaint_rate_per_1k",)),
)
"""Terms of the default churn hazard and the panel columns each needs."""

CONTRACTS_NEEDED = (
    "contracts: table needed (customer_id, start_month, end_month, monthly_revenue) for "
    "churn and revenue at risk; the panel has no churned column"
)
AVAILABILITY_BANDS = (99.9, 99.5)
"""Edges of the availability bands of :func:`retention_curves` (highest first)."""


def nps_group(nps: pd.Series) -> pd.Series:
    """0 (detractor, 0-6), 1 (passive, 7-8), 2 (promoter, 9-10); NaN without an answer."""
    values = pd.to_numeric(nps, errors="coerce")
    return pd.Series(
        np.select([values >= 9, values >= 7, values >= 0], [2.0, 1.0, 0.0], np.nan),
        index=nps.index,
    )


def fit_nps_model(
    responses: pd.DataFrame,
    formula: str | None = None,
    scale: str = "groups",
    within: str | None = "customer_id",
) -> FitResult:
    """Fit the NPS model on the survey responses.

    Parameters
    ----------
    responses : DataFrame
        One row per response with ``nps`` and the customer-month's panel columns
        (:func:`satmodel.build_responses`).
    formula : str, optional
        The right-hand side (or a whole formula); default the CSAT model's drivers.
    scale : {"groups", "0-10"}
        Outcome: ``nps_group`` (0 detractor, 1 passive, 2 promoter, see :data:`NPS_GROUPS`)
        or the 0-10 answer itself.
    within : str or None
        Within-``within`` effects (Mundlak), clustered by it; None for a pooled fit.

    Returns
    -------
    FitResult
        An ordinal fit; responses without an NPS answer are left out.
    """
    if scale not in ("groups", "0-10"):
        raise InputError(f"scale {scale!r}: expected 'groups' or '0-10'")
    if "nps" not in responses.columns:
        raise InputError("responses: column nps missing (surveys.nps holds the NPS answers)")
    outcome = "nps_group" if scale == "groups" else "nps"
    data = responses.assign(nps_group=nps_group(responses["nps"]))
    if formula is None:
        formula = default_formulas(responses.columns)["csat"].split("~", 1)[1]
    rhs = formula.split("~", 1)[1] if "~" in formula else formula
    if within is not None and within not in data.columns:
        within = None
    return fit(data, f"{outcome} ~ {rhs.strip()}", "ordinal", within=within)


def require_churn(panel: pd.DataFrame) -> None:
    """Raise the one-line InputError of :data:`CONTRACTS_NEEDED` when ``panel`` has no churn.

    Raises
    ------
    InputError
        When the panel lacks ``churned`` or ``monthly_revenue``, or no month is under contract.
    """
    if "churned" not in panel.columns or "monthly_revenue" not in panel.columns:
        raise InputError(CONTRACTS_NEEDED)
    if panel["churned"].notna().sum() == 0:
        raise InputError("contracts: no customer-month of the panel is under contract")


def churn_formula(columns) -> str:
    """The default churn hazard formula for the columns present."""
    available = {str(c) for c in columns}
    terms = [t for t, needed in CHURN_DRIVERS if all(c in available for c in needed)]
    if not terms:
        raise InputError(
            "panel: none of the churn drivers' columns are present (need e.g. "
            "downtime_minutes, latency_p95_ms, csat_mean)"
        )
    return "churned ~ " + " + ".join(terms)


def fit_churn_model(
    panel: pd.DataFrame, formula: str | None = None, cluster: str = "customer_id"
) -> FitResult:
    """Fit the discrete-time churn hazard on the customer-months under contract.

    Parameters
    ----------
    panel : DataFrame
        The service panel with ``churned`` (built with a ``contracts`` table).
    formula : str, optional
        Default :func:`churn_formula` (service levels, CSAT and complaints).
    cluster : str
        Column clustering the standard errors (a customer's months are not independent).

    Returns
    -------
    FitResult
        A logit of churned: ``predict(...)["probability"]`` is the monthly hazard.
    """
    require_churn(panel)
    data = panel.loc[panel["churned"].notna()]
    return fit(
        data,
        formula or churn_formula(panel.columns),
        "logit",
        cluster=cluster if cluster in data.columns else None,
    )


def availability_band(availability: pd.Series, edges=AVAILABILITY_BANDS) -> pd.Series:
    """Band labels of availability values (``>= 99.9 %``, ``99.5-99.9 %``, ``< 99.5 %``)."""
    high, low = edges
    labels = np.select(
        [availability >= high, availability >= low, availability.notna()],
        [f">= {high:g} %", f"{low:g}-{high:g} %", f"< {low:g} %"],
        "",
    )
    return pd.Series(labels, index=availability.index).replace("", np.nan)


def retention_curves(panel: pd.DataFrame, ci: float = 0.95) -> pd.DataFrame:
    """Kaplan-Meier retention by availability band over the months of the data.

    Each customer enters at its first month under contract in the panel and is followed
    until it churns (event) or its last month under contract (censored). Its band is that of
    its mean availability over those months. The estimate is lifelines'
    ``KaplanMeierFitter``.

    Returns
    -------
    DataFrame
        band, month_number (1 = first month followed), at_risk, churned, retention,
        ci_low, ci_high (Greenwood, on the log(-log) scale), customers (in the band).
    """
    require_churn(panel)
    if "availability_pct" not in panel.columns:
        raise InputError("panel: column availability_pct missing (the incidents table)")
    under = panel.loc[panel["churned"].notna()]
    per = under.groupby("customer_id").agg(
        months=("churned", "size"),
        event=("churned", "max"),
        availability=("availability_pct", "mean"),
    )
    per["band"] = availability_band(per["availability"])
    frames = []
    for band, group in per.dropna(subset=["band"]).groupby("band", sort=False):
        timeline = np.arange(1, int(group["months"].max()) + 1)
        fitter = KaplanMeierFitter(alpha=1.0 - ci).fit(
            group["months"], event_observed=group["event"], timeline=timeline
        )
        counts = fitter.event_table.reindex(timeline, fill_value=0)
        removed_before = counts["removed"].cumsum().shift(fill_value=0)
        bounds = fitter.confidence_interval_survival_function_.to_numpy()
        retention = fitter.survival_function_.iloc[:, 0].to_numpy()
        frames.append(
            pd.DataFrame(
                {
                    "band": band,
                    "month_number": timeline,
                    "at_risk": (len(group) - removed_before).to_numpy(dtype=int),
                    "churned": counts["observed"].to_numpy(dtype=int),
                    "retention": retention,
                    # lifelines leaves the interval undefined once retention reaches 0
                    "ci_low": np.where(retention > 0, bounds[:, 0], 0.0),
                    "ci_high": np.where(retention > 0, bounds[:, 1], 0.0),
                    "customers": len(group),
                }
            )
        )
    columns = ["band", "month_number", "at_risk", "churned", "retention", "ci_low", "ci_high"]
    if not frames:
        return pd.DataFrame(columns=[*columns, "customers"])
    return pd.concat(frames, ignore_index=True)
