"""Gap analysis: the service each customer expects against the service it gets.

Every customer-month of the month (``window`` months ending there; the held customer-months
of :func:`satmodel.insights.current_profile`) compares its measured availability, p95 latency
and median resolution time with its ``expected_*`` columns. A *gap* is a shortfall:
availability below, latency or resolution time above the expectation (0 when the expectation
is met). The cost of the gaps is the predicted outcome now minus the predicted outcome with
every gap closed (each short lever set to the expected level, other drivers unchanged, steady
state, the customer's persistent part held), with parametric-simulation intervals; each gap is
also closed on its own. A customer's row averages its customer-months.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from satmodel.errors import InputError
from satmodel.insights.scenarios import (
    OutcomeModel,
    check_ci,
    current_profile,
    interval,
    set_levers,
)

__all__ = ["GAP_LEVERS", "GapResult", "gap_analysis"]

# lever -> (expectation column, gap sign): gap = sign * (measured - expected), floored at 0
GAP_LEVERS = {
    "availability_pct": ("expected_availability_pct", -1.0),
    "latency_p95_ms": ("expected_latency_p95_ms", 1.0),
    "resolution_hours_median": ("expected_resolution_hours", 1.0),
}
_SHORT = {
    "availability_pct": "availability",
    "latency_p95_ms": "latency",
    "resolution_hours_median": "resolution",
}


@dataclass
class GapResult:
    """Result of :func:`gap_analysis`.

    Attributes
    ----------
    customers_ : DataFrame
        One row per customer, ranked by satisfaction lost to gaps (``risk_rank`` 1 first).
    segments_ : DataFrame
        Per segment: customers, customers with each gap, mean gaps, mean predicted outcomes
        now and with gaps closed, complaints a month avoidable.
    """

    customers_: pd.DataFrame
    segments_: pd.DataFrame
    month: str
    window: int


def _close(rows: pd.DataFrame, levers, levels: dict, short: dict) -> pd.DataFrame:
    """The rows with each lever's gap closed where it is short (other rows untouched)."""
    out = rows.copy()
    for lever in levers:
        mask = short[lever]
        if mask.any():
            moved = set_levers(out.loc[mask], {lever: levels[lever][mask]})
            out.loc[mask, moved.columns] = moved
    return out


def gap_analysis(
    models: dict,
    panel: pd.DataFrame,
    window: int = 1,
    month: str | None = None,
    n_sim: int = 500,
    ci: float = 0.95,
    top2_model: str = "ordinal",
    seed: int | None = 0,
    satisfied_cutoff: int | None = None,
) -> GapResult:
    """Per customer and segment: expectation gaps and what they cost in satisfaction.

    Parameters
    ----------
    models : dict of FitResult
        ``csat`` (and ``complaints`` for complaint costs).
    panel : DataFrame
        The service panel.
    window : int
        Months (ending at ``month``, default the last) whose customer-months are compared.
    month : str, optional
    n_sim, ci, seed : simulation draws, confidence level, seed.
    top2_model : {"ordinal", "logit"}
    satisfied_cutoff : int, optional
        CSAT at or above this is satisfied (default: the top-2 model's cutoff, else 4).

    Returns
    -------
    GapResult
        ``customers_`` columns: customer_id, segment, for each of availability, latency,
        resolution: ``<x>_measured``, ``<x>_expected``, ``<x>_gap`` (shortfall, >= 0);
        csat_mean_now, csat_mean_closed, csat_mean_gain (+ ci_low/ci_high), the gain of
        closing each gap alone (``csat_mean_gain_<x>``), csat_top2_now, csat_top2_closed,
        complaint_rate_now, complaint_rate_closed, complaints_avoidable_per_month (+ CI),
        active_users, n_gaps, at_risk (the gaps cost satisfaction: the gain's interval lies
        above 0), risk_rank.
    """
    ci = check_ci(ci)
    if "csat" not in models:
        raise InputError(f"models: gap analysis needs the 'csat' model (have: {', '.join(models)})")
    levers = [lv for lv, (exp, _) in GAP_LEVERS.items() if {lv, exp} <= set(panel.columns)]
    if not levers:
        raise InputError(
            "panel: no lever with its expectation column (need e.g. latency_p95_ms and "
            "expected_latency_p95_ms)"
        )
    outcomes = ["csat_mean", "csat_top2_rate"]
    if "complaints" in models:
        outcomes.append("complaint_rate_per_1k")
    outcome_models = {
        o: OutcomeModel(
            models, o, top2_model=top2_model, satisfied_cutoff=satisfied_cutoff, panel=panel
        )
        for o in outcomes
    }
    rows = current_profile(panel, window=window, month=month)
    for model in outcome_models.values():
        rows = model.predictable(rows)
    # one row per customer: the average of its customer-months
    codes, customers = pd.factorize(rows["customer_id"])
    share = np.zeros((len(customers), len(rows)))
    share[codes, np.arange(len(rows))] = 1.0
    share /= share.sum(axis=1, keepdims=True)
    out = pd.DataFrame({"customer_id": customers.astype(str)})
    if "segment" in rows:
        out["segment"] = rows.groupby(codes)["segment"].first().astype(str).to_numpy()
    closed_levels, short = {}, {}
    for lever in levers:
        exp_col, sign = GAP_LEVERS[lever]
        name = _SHORT[lever]
        measured = rows[lever].to_numpy(float)
        expected = rows[exp_col].to_numpy(float)
        gap = np.maximum(0.0, sign * (measured - expected))
        gap = np.where(np.isfinite(gap), gap, 0.0)
        out[f"{name}_measured"] = share @ measured
        out[f"{name}_expected"] = share @ expected
        out[f"{name}_gap"] = share @ gap
        closed_levels[lever] = expected
        short[lever] = gap > 0
    out["n_gaps"] = sum((out[f"{_SHORT[lv]}_gap"] > 0).astype(int) for lv in levers)
    scenarios = [rows, _close(rows, levers, closed_levels, short)]
    scenarios += [_close(rows, [lv], closed_levels, short) for lv in levers]
    rng = np.random.default_rng(seed)

    def predict(outcome):
        model = outcome_models[outcome]
        theta = model.draws(int(n_sim), rng)
        frame = pd.concat(scenarios, ignore_index=True)
        vals = model.evaluate(model.design(frame), theta).reshape(len(scenarios), len(rows), -1)
        return np.einsum("cr,frs->fcs", share, vals)

    csat = predict("csat_mean")
    out["csat_mean_now"] = csat[0, :, 0]
    out["csat_mean_closed"] = csat[1, :, 0]
    gain = csat[1] - csat[0]
    out["csat_mean_gain"] = gain[:, 0]
    low, high = interval(gain[:, 1:], ci) if n_sim > 0 else (np.nan, np.nan)
    out["csat_mean_gain_ci_low"] = low
    out["csat_mean_gain_ci_high"] = high
    for i, lever in enumerate(levers):
        out[f"csat_mean_gain_{_SHORT[lever]}"] = csat[2 + i, :, 0] - csat[0, :, 0]
    top2 = predict("csat_top2_rate")
    out["csat_top2_now"] = top2[0, :, 0]
    out["csat_top2_closed"] = top2[1, :, 0]
    if "complaints" in models:
        rate = predict("complaint_rate_per_1k")
        out["complaint_rate_now"] = rate[0, :, 0]
        out["complaint_rate_closed"] = rate[1, :, 0]
        users = (
            share @ pd.to_numeric(rows["active_users"], errors="coerce").to_numpy(float)
            if "active_users" in rows
            else np.full(len(out), np.nan)
        )
        avoid = (rate[0] - rate[1]) / 1000.0 * users.reshape(-1, 1)
        out["active_users"] = users
        out["complaints_avoidable_per_month"] = avoid[:, 0]
        low, high = interval(avoid[:, 1:], ci) if n_sim > 0 else (np.nan, np.nan)
        out["complaints_avoidable_ci_low"] = low
        out["complaints_avoidable_ci_high"] = high
    out["at_risk"] = (out["n_gaps"] > 0) & (out["csat_mean_gain_ci_low"] > 0)
    out = out.sort_values(
        ["csat_mean_gain", "csat_mean_now"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    out["risk_rank"] = np.arange(1, len(out) + 1)

    agg = {"customers": ("customer_id", "size"), "at_risk": ("at_risk", "sum")}
    for lever in levers:
        name = _SHORT[lever]
        out[f"_{name}_short"] = out[f"{name}_gap"] > 0
        agg[f"with_{name}_gap"] = (f"_{name}_short", "sum")
        agg[f"{name}_gap_mean"] = (f"{name}_gap", "mean")
    agg["csat_mean_now"] = ("csat_mean_now", "mean")
    agg["csat_mean_closed"] = ("csat_mean_closed", "mean")
    agg["csat_mean_gain"] = ("csat_mean_gain", "mean")
    agg["csat_top2_now"] = ("csat_top2_now", "mean")
    agg["csat_top2_closed"] = ("csat_top2_closed", "mean")
    if "complaints_avoidable_per_month" in out:
        agg["complaints_avoidable_per_month"] = ("complaints_avoidable_per_month", "sum")
    by = "segment" if "segment" in out.columns else None
    if by is None:
        segments = out.assign(segment="all").groupby("segment").agg(**agg).reset_index()
    else:
        segments = out.groupby(by).agg(**agg).reset_index()
    out = out.drop(columns=[c for c in out.columns if c.startswith("_")])
    return GapResult(
        customers_=out,
        segments_=segments,
        month=str(rows["month"].astype(str).max()),
        window=window,
    )
