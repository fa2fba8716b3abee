"""The demo's contracts: revenue per customer and churn drawn from a known hazard.

Every customer but a few has a contract that started before the data (some renewed once,
the renewal starting the month after the old contract ended: no churn). From the first month
on, a customer under contract leaves at the end of month ``t`` with the discrete-time hazard

    logit h_t = Intercept + b_down * log1p(downtime_minutes_t) + b_csat * csat_mean_t

on the service panel (csat_mean_t := :data:`CSAT_FILL` in months without a survey answer).
Its contract then ends in month ``t``. Churn does not feed back into the other tables (their
draws are fixed before), so a customer who left keeps its telemetry; the panel marks its
months after the end as not under contract (churned null).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from satmodel.calendar import month_at, month_index
from satmodel.demo.tables import SEGMENTS

CSAT_FILL = 4.0
"""csat_mean used by the hazard in months without a survey answer."""

RAR_WINDOW = 6
"""Months of 'service as it is' behind the truth's revenue at risk."""

_NO_CONTRACT_SHARE = 0.04
_RENEWED_SHARE = 0.15
_PRICE_PER_USER = (22.0, 15.0, 10.0)  # median monthly revenue per active user, by segment


def churn_truth() -> dict[str, Any]:
    """The true churn hazard (a logit on the customer-month panel), keyed by patsy term."""
    return {
        "family": "logit",
        "formula": "churned ~ np.log1p(downtime_minutes) + csat_mean",
        "params": {
            "Intercept": -0.8,
            "np.log1p(downtime_minutes)": 0.3,
            "csat_mean": -0.9,
        },
        "csat_fill": CSAT_FILL,
    }


def true_hazard(truth: dict[str, Any], panel: pd.DataFrame, fill: bool = True) -> np.ndarray:
    """The true monthly hazard of every panel row (NaN where csat_mean is null, unless
    ``fill`` puts :data:`CSAT_FILL` there)."""
    params = truth["params"]
    csat = panel["csat_mean"].to_numpy(dtype=float)
    if fill:
        csat = np.where(np.isnan(csat), truth["csat_fill"], csat)
    down = np.log1p(panel["downtime_minutes"].to_numpy(dtype=float))
    eta = params["Intercept"] + params["np.log1p(downtime_minutes)"] * down
    return expit(eta + params["csat_mean"] * csat)


def _csat_by_month(panel: pd.DataFrame, surveys: pd.DataFrame) -> pd.Series:
    """Mean csat of every panel row (NaN without responses), aligned with ``panel``."""
    month = surveys["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m")
    means = surveys.groupby([surveys["customer_id"].astype(str), month])["csat"].mean()
    keys = pd.MultiIndex.from_arrays([panel["customer_id"].astype(str), panel["month"]])
    return pd.Series(means.reindex(keys).to_numpy(), index=panel.index, dtype=float)


def make_contracts(
    panel: pd.DataFrame,
    surveys: pd.DataFrame,
    truth: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Draw the contracts table and the true revenue at risk.

    Parameters
    ----------
    panel : the service panel (customer_id, month, segment, active_users, downtime_minutes),
        sorted by customer_id and month, every customer over the same months.
    surveys : the demo's survey responses (customer_id, ts, csat).
    truth : :func:`churn_truth`.
    rng : the contracts' own random stream.

    Returns
    -------
    contracts : DataFrame
        customer_id, start_month, end_month (None while active), monthly_revenue.
    revenue_at_risk : dict
        The true revenue at risk over 12 months from the last month (see truth.json).
    """
    frame = panel[["customer_id", "month", "segment", "active_users", "downtime_minutes"]].copy()
    frame["csat_mean"] = _csat_by_month(frame, surveys)
    months = sorted(frame["month"].unique())
    ids = frame["customer_id"].astype(str).unique()
    n, m = len(ids), len(months)
    hazard = true_hazard(truth, frame).reshape(n, m)
    first = frame.groupby("customer_id", sort=False).first()
    seg = first["segment"].map({s: i for i, s in enumerate(SEGMENTS)}).to_numpy()
    users = first["active_users"].fillna(1.0).to_numpy(dtype=float)
    price = np.exp(np.log(np.array(_PRICE_PER_USER)[seg]) + rng.normal(0.0, 0.25, n))
    revenue = np.round(np.maximum(users, 1.0) * price, 2)
    start0 = month_index(months[0])
    began = start0 - rng.integers(1, 37, n)
    renewed = rng.random(n) < _RENEWED_SHARE
    renewal_at = began + rng.integers(1, 13, n)
    has_contract = rng.random(n) >= _NO_CONTRACT_SHARE
    leaves = rng.random((n, m)) < hazard
    left_at = np.where(leaves.any(axis=1), leaves.argmax(axis=1), -1)

    rows = []
    for i in range(n):
        if not has_contract[i]:
            continue
        start = int(began[i])
        if renewed[i] and renewal_at[i] < start0:
            rows.append((ids[i], month_at(start), month_at(int(renewal_at[i]) - 1), revenue[i]))
            start = int(renewal_at[i])
        end = month_at(start0 + int(left_at[i])) if left_at[i] >= 0 else None
        rows.append((ids[i], month_at(start), end, revenue[i]))
    contracts = pd.DataFrame(
        rows, columns=["customer_id", "start_month", "end_month", "monthly_revenue"]
    )
    active = has_contract & (left_at < 0)
    return contracts, _revenue_at_risk(frame, truth, active, revenue, ids, months[-1])


def _revenue_at_risk(frame, truth, active, revenue, ids, last, horizon: int = 12) -> dict:
    """The truth's revenue at risk: today's active customers, the mean true hazard over their
    last RAR_WINDOW months with a csat answer (the months a fitted model can score)."""
    recent = frame.loc[frame["month"] > month_at(month_index(last) - RAR_WINDOW)]
    scored = recent.assign(h=true_hazard(truth, recent, fill=False)).dropna(subset=["h"])
    mean_h = scored.groupby("customer_id")["h"].mean()
    by_segment = scored.groupby("segment")["h"].mean()
    segment = frame.groupby("customer_id", sort=False)["segment"].first()
    h = mean_h.reindex(ids).fillna(segment.reindex(ids).map(by_segment)).to_numpy()
    lost = 1.0 - (1.0 - h) ** horizon
    at_risk = float(np.sum(np.where(active, revenue * lost, 0.0)))
    return {
        "month": last,
        "horizon_months": horizon,
        "monthly_revenue": round(float(np.sum(revenue[active])), 2),
        "revenue_at_risk": round(at_risk, 2),
        "recipe": (
            "sum over customers under contract in the last month of monthly_revenue * "
            f"(1 - (1 - h)^{horizon}), h = the mean true hazard over the customer's last "
            f"{RAR_WINDOW} months with csat_mean (its segment's mean without one)"
        ),
    }


def make_opex(months: list[str], n_customers: int, rng: np.random.Generator) -> pd.DataFrame:
    """Monthly operating cost: a base per customer, falling about 1 % a month, with noise."""
    trend = 0.99 ** np.arange(len(months))
    amount = (20_000.0 + 150.0 * n_customers) * trend * np.exp(rng.normal(0.0, 0.04, len(months)))
    return pd.DataFrame({"month": months, "amount": np.round(amount, 2)})
