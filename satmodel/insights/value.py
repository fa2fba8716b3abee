"""What service quality is worth: revenue at risk and the revenue each lever retains.

Revenue at risk (DESIGN.md, ``satmodel value``) is the expected monthly revenue of today's
customers lost over the horizon if service stays as it is:

    sum over customers under contract in the month (and not leaving in it) of
    monthly_revenue * (1 - (1 - h)^horizon),

where h is the churn model's monthly hazard averaged over the customer's last ``window``
months that the model can score (its segment's mean hazard when none). The interval comes
from draws of the churn model's coefficients (multivariate normal, their covariance).

A lever step (:data:`LEVER_STEPS`: +0.1 pp availability, -100 ms p95, -1 h median resolution)
moves the lever and its lag in every scored month (availability moves downtime too); when
``outcome_models`` holds the CSAT (``csat``, ordinal) and complaint (``complaints``, per
active user) models, csat_mean and complaint_rate_per_1k move by their predicted change too.
Its value is the revenue retained (revenue at risk now minus after the step) plus the
complaint handling cost avoided (``[costs] per_complaint`` times the complaints avoided per
month), against its monthly cost (:func:`satmodel.insights.plans.lever_cost` at the
revenue-weighted current level). ``roi`` = (value - cost) / cost; the best-return plan is the
set of lever steps with the largest value - cost.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from satmodel.calendar import check_month, minutes_in_month, month_at, month_index
from satmodel.config import DEFAULT_COMPLAINT_COST
from satmodel.errors import InputError
from satmodel.insights.loyalty import fit_churn_model, require_churn
from satmodel.insights.plans import lever_cost, resolve_costs
from satmodel.insights.scenarios import LEVERS
from satmodel.models.results import FitResult, json_number
from satmodel.models.within import persistent_parts

LEVER_STEPS = {
    "availability_pct": 0.1,
    "latency_p95_ms": -100.0,
    "resolution_hours_median": -1.0,
}
"""One step of improvement per lever, in the lever's unit."""


@dataclass
class ValueResult:
    """Result of :func:`revenue_at_risk` (tables are tidy DataFrames)."""

    month: str
    horizon_months: int
    monthly_revenue: float
    revenue_at_risk: float
    revenue_at_risk_ci_low: float
    revenue_at_risk_ci_high: float
    by_segment: pd.DataFrame
    by_customer: pd.DataFrame
    levers: pd.DataFrame
    best_plan: dict[str, Any]
    churn_model: FitResult
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``value --json`` document (DESIGN.md)."""

        def records(frame: pd.DataFrame) -> list[dict]:
            return [
                {k: json_number(v) if isinstance(v, float) else v for k, v in row.items()}
                for row in frame.to_dict("records")
            ]

        return {
            "month": self.month,
            "horizon_months": self.horizon_months,
            "monthly_revenue": json_number(self.monthly_revenue),
            "revenue_at_risk": json_number(self.revenue_at_risk),
            "revenue_at_risk_ci_low": json_number(self.revenue_at_risk_ci_low),
            "revenue_at_risk_ci_high": json_number(self.revenue_at_risk_ci_high),
            "by_segment": records(self.by_segment),
            "levers": records(self.levers),
            "best_plan": {
                k: json_number(v) if isinstance(v, float) else v for k, v in self.best_plan.items()
            },
            "customers": records(self.by_customer),
            "notes": list(self.notes),
            "churn_model": self.churn_model.to_dict(),
        }


def _coefficient_draws(model: FitResult, n_draws: int, seed: int) -> np.ndarray:
    """Point estimate (row 0) and ``n_draws`` normal draws of the design coefficients."""
    table = model.coefficients_.set_index("term")["estimate"]
    beta = table.reindex(model.design_columns_).to_numpy(dtype=float)
    known = np.isfinite(beta)
    cov = model.covariance_.loc[model.design_columns_, model.design_columns_].to_numpy(float)
    beta, cov = np.where(known, beta, 0.0), np.where(np.outer(known, known), cov, 0.0)
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(beta, np.nan_to_num(cov), n_draws, method="eigh")
    return np.vstack([beta, draws])


def _scored_rows(panel: pd.DataFrame, month: str, window: int) -> tuple[pd.DataFrame, pd.Series]:
    """The last ``window`` months up to ``month`` and the customers kept (under contract in
    ``month`` and not leaving at its end), with their monthly revenue."""
    at_month = panel.loc[(panel["month"].astype(str) == month) & (panel["churned"] == 0)]
    revenue = at_month.set_index("customer_id")["monthly_revenue"].astype(float)
    first = month_at(month_index(month) - window + 1)
    months = panel["month"].astype(str)
    rows = panel.loc[(months >= first) & (months <= month)]
    return rows.loc[rows["customer_id"].isin(revenue.index)], revenue


def _hazards(model, rows, customers, segments, betas) -> np.ndarray:
    """Mean monthly hazard per customer (rows of ``customers``) for each coefficient row."""
    design = model.design_matrix(rows)
    eta = design.to_numpy(dtype=float) @ betas.T
    frame = pd.DataFrame(expit(eta), index=design.index)
    frame["customer_id"] = rows.loc[design.index, "customer_id"].to_numpy()
    mean = frame.groupby("customer_id").mean()
    by_segment = mean.groupby(segments.reindex(mean.index)).mean()
    filled = mean.reindex(customers)
    missing = filled.isna().all(axis=1)
    if missing.any():
        fallback = by_segment.reindex(segments.reindex(customers[missing])).to_numpy()
        filled.loc[missing] = fallback
    if filled.isna().all(axis=1).any():
        raise InputError(
            "panel: a segment has no customer-month the churn model can score (drivers missing)"
        )
    return filled.to_numpy()


def _anchored(model, rows: pd.DataFrame) -> dict:
    """The mean-term columns a within model needs for ``rows`` (empty for a pooled model).

    Customers a within model was not fitted on (no survey answers) keep the persistent part
    their own rows show; one without a usable row gets NaN.
    """
    parts = persistent_parts(model, rows)
    if parts is None:
        return {}
    means = parts.reindex(rows[model.within_.column].astype(str)).to_numpy(dtype=float)
    return {term: means[:, j] for j, term in enumerate(parts.columns)}


def _mediator(rows: pd.DataFrame, outcome_models: dict):
    """A function of moved rows (same index as ``rows``): them with csat_mean and
    complaint_rate_per_1k shifted by the outcome models' change from ``rows``.

    The persistent parts and the predictions for ``rows`` are computed once, here.
    """
    shifts = []
    for key, target, column, scale in (
        ("csat", "csat_mean", "expected", 1.0),
        ("complaints", "complaint_rate_per_1k", "rate", 1000.0),
    ):
        model = outcome_models.get(key)
        if model is None or target not in rows.columns:
            continue
        given = _anchored(model, rows)
        before = model.predict(rows.assign(**given))[column]
        shifts.append((model, given, before, target, column, scale))

    def mediated(moved: pd.DataFrame) -> pd.DataFrame:
        out = moved.copy()
        for model, given, before, target, column, scale in shifts:
            change = model.predict(moved.assign(**given))[column] - before
            out[target] = np.maximum(out[target] + scale * change.fillna(0.0), 0.0)
        return out

    return mediated


def _step(rows: pd.DataFrame, levers: tuple[str, ...], timezone: str = "UTC") -> pd.DataFrame:
    """``rows`` with each lever (and its lag) one step better in every month.

    Availability moves downtime by the same share of that month's minutes (so a month at
    100 % stays at 0 downtime).
    """
    out = rows.copy()
    for lever in levers:
        spec, step = LEVERS[lever], LEVER_STEPS[lever]
        upper = np.inf if spec.high is None else spec.high
        for column in (lever, f"{lever}_lag1"):
            if column in out.columns:
                out[column] = np.clip(out[column].astype(float) + step, spec.low, upper)
        if lever == "availability_pct":
            minutes = rows["month"].astype(str).map(lambda m: minutes_in_month(m, timezone))
            cut = step / 100.0 * minutes
            for column in ("downtime_minutes", "downtime_minutes_lag1"):
                if column in out.columns:
                    out[column] = np.maximum(out[column].astype(float) - cut, 0.0)
    return out


def revenue_at_risk(
    panel: pd.DataFrame,
    churn_model: FitResult | None = None,
    month: str | None = None,
    horizon: int = 12,
    window: int = 6,
    outcome_models: dict[str, FitResult] | None = None,
    config=None,
    n_draws: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> ValueResult:
    """Revenue at risk over ``horizon`` months, per segment and customer, and lever returns.

    Parameters
    ----------
    panel : the service panel with ``churned`` and ``monthly_revenue`` (a contracts table).
    churn_model : a fitted hazard (:func:`~satmodel.insights.loyalty.fit_churn_model`, which
        is fitted on ``panel`` when None).
    month : the month "today" (default the panel's last).
    horizon : months ahead (>= 1).
    window : months of "service as it is" behind each customer's hazard.
    outcome_models : optional ``csat`` and ``complaints`` models that carry a lever step
        through CSAT and complaints into the hazard and the complaints avoided.
    config : the configuration (cost curves ``[costs]``, ``per_complaint``).
    n_draws, ci, seed : parameter draws of the interval.

    Returns
    -------
    ValueResult

    Raises
    ------
    InputError
        Without contracts (one line naming the table), for a bad month or horizon.
    """
    require_churn(panel)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise InputError(f"horizon {horizon!r}: expected a whole number of months >= 1")
    month = check_month(month) if month else str(panel["month"].astype(str).max())
    model = churn_model if churn_model is not None else fit_churn_model(panel)
    rows, revenue = _scored_rows(panel, month, window)
    if revenue.empty:
        raise InputError(f"month {month}: no customer under contract in that month")
    customers = revenue.index
    segments = panel.groupby("customer_id")["segment"].first().astype(str)
    betas = _coefficient_draws(model, n_draws, seed)
    tail = (1.0 - ci) / 2 * 100

    def at_risk(frame: pd.DataFrame) -> np.ndarray:
        """Revenue at risk per customer (rows) and coefficient row (columns)."""
        hazard = _hazards(model, frame, customers, segments, betas)
        return revenue.to_numpy()[:, None] * (1.0 - (1.0 - hazard) ** horizon)

    now = at_risk(rows)
    total = now.sum(axis=0)
    by_customer = pd.DataFrame(
        {
            "customer_id": customers.astype(str),
            "segment": segments.reindex(customers).to_numpy(),
            "monthly_revenue": revenue.to_numpy(),
            "p_lost": now[:, 0] / np.maximum(revenue.to_numpy(), 1e-300),
            "revenue_at_risk": now[:, 0],
        }
    ).sort_values("revenue_at_risk", ascending=False, kind="stable", ignore_index=True)
    by_segment = _by_segment(now, revenue, segments.reindex(customers).to_numpy(), tail)
    costs = resolve_costs(config=config)
    per_complaint = getattr(config, "per_complaint", DEFAULT_COMPLAINT_COST)
    timezone = config.calendar.timezone if config is not None else "UTC"
    levers, best = _lever_returns(
        rows, revenue, total, at_risk, outcome_models or {}, costs, per_complaint, tail, timezone
    )
    return ValueResult(
        month=month,
        horizon_months=horizon,
        monthly_revenue=float(revenue.sum()),
        revenue_at_risk=float(total[0]),
        revenue_at_risk_ci_low=float(np.percentile(total[1:], tail)),
        revenue_at_risk_ci_high=float(np.percentile(total[1:], 100 - tail)),
        by_segment=by_segment,
        by_customer=by_customer,
        levers=levers,
        best_plan=best,
        churn_model=model,
        notes=[
            f"hazard of each customer: the mean over its months {month_at(month_index(month) - window + 1)}"
            f"..{month}; interval from {n_draws} draws of the churn model's coefficients"
        ],
    )


def _by_segment(now: np.ndarray, revenue: pd.Series, segment: np.ndarray, tail: float):
    rows = []
    for name in sorted(set(segment)):
        mask = segment == name
        draws = now[mask].sum(axis=0)
        rows.append(
            {
                "segment": name,
                "customers": int(mask.sum()),
                "monthly_revenue": float(revenue.to_numpy()[mask].sum()),
                "revenue_at_risk": float(draws[0]),
                "ci_low": float(np.percentile(draws[1:], tail)),
                "ci_high": float(np.percentile(draws[1:], 100 - tail)),
            }
        )
    frame = pd.DataFrame(rows)
    frame["share_at_risk"] = frame["revenue_at_risk"] / frame["monthly_revenue"].where(
        frame["monthly_revenue"] > 0
    )
    return frame


def _complaints_avoided(rows, moved, customers) -> float:
    """Complaints per month avoided on the customers' mean month."""
    if "complaint_rate_per_1k" not in rows.columns or "active_users" not in rows.columns:
        return 0.0
    users = rows["active_users"].astype(float)
    change = (rows["complaint_rate_per_1k"] - moved["complaint_rate_per_1k"]) * users / 1000.0
    per_customer = change.groupby(rows["customer_id"]).mean()
    return float(per_customer.reindex(customers).fillna(0.0).sum())


def _lever_returns(
    rows, revenue, total, at_risk, outcome_models, costs, per_complaint, tail, timezone
):
    """One row per lever step and the best-return combination of steps."""
    weights = revenue.reindex(rows["customer_id"]).to_numpy()
    available = [lever for lever in LEVER_STEPS if lever in rows.columns]
    mediated = _mediator(rows, outcome_models)
    results = {}
    for size in range(1, len(available) + 1):
        for combo in itertools.combinations(available, size):
            moved = mediated(_step(rows, combo, timezone))
            retained = total - at_risk(moved).sum(axis=0)
            avoided = _complaints_avoided(rows, moved, revenue.index)
            cost = 0.0
            for lever in combo:
                current = rows[lever].astype(float)
                known = current.notna().to_numpy()
                level = float(np.average(current[known], weights=weights[known]))
                cost += float(lever_cost(lever, level + LEVER_STEPS[lever], level, costs))
            results[combo] = (retained, avoided, cost)
    lever_rows = []
    for lever in available:
        retained, avoided, cost = results[(lever,)]
        value = float(retained[0]) + avoided * per_complaint
        lever_rows.append(
            {
                "lever": lever,
                "change": LEVER_STEPS[lever],
                "revenue_retained": float(retained[0]),
                "revenue_retained_ci_low": float(np.percentile(retained[1:], tail)),
                "revenue_retained_ci_high": float(np.percentile(retained[1:], 100 - tail)),
                "complaints_avoided": avoided,
                "complaint_cost_avoided": avoided * per_complaint,
                "cost": cost,
                "net_return": value - cost,
                "roi": (value - cost) / cost if cost > 0 else float("nan"),
            }
        )
    levers = pd.DataFrame(lever_rows)
    if levers.empty:
        return levers, {"levers": [], "revenue_retained": 0.0, "cost": 0.0, "roi": float("nan")}
    levers = levers.sort_values("net_return", ascending=False, ignore_index=True)

    def net(combo):
        retained, avoided, cost = results[combo]
        return float(retained[0]) + avoided * per_complaint - cost

    combo = max(results, key=net)
    retained, avoided, cost = results[combo]
    best = {
        "levers": list(combo) if net(combo) > 0 else [],
        "revenue_retained": float(retained[0]) if net(combo) > 0 else 0.0,
        "complaint_cost_avoided": avoided * per_complaint if net(combo) > 0 else 0.0,
        "cost": cost if net(combo) > 0 else 0.0,
        "net_return": max(net(combo), 0.0),
        "roi": net(combo) / cost if net(combo) > 0 and cost > 0 else float("nan"),
    }
    return levers, best
