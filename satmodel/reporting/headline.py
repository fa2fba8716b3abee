"""Headline section: the month's satisfaction and complaint measures and their trend."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from satmodel.calendar import add_months, month_name
from satmodel.reporting.figures import figure_style, new_figure, trend_panel

# Headline measures: key -> (label, unit, higher_is_better).
HEADLINE = {
    "csat_mean": ("CSAT, mean score", "score 1-5", True),
    "csat_top2_pct": ("Satisfied customers (CSAT 4-5)", "% of responses", True),
    "complaint_rate_per_1k": ("Complaints per 1,000 active users", "per 1,000 users", False),
    "responses": ("Survey responses", "responses", None),
    "complaints": ("Complaints", "complaints", None),
    "active_users": ("Active users", "users", None),
}

# How the three outcome measures are written in sentences.
CHANGE_FORMATS = {
    "csat_mean": "{:.2f}",
    "csat_top2_pct": "{:.1f}%",
    "complaint_rate_per_1k": "{:.2f}",
}


def weighted_mean(values: pd.Series, weights: pd.Series) -> float:
    """Mean of ``values`` weighted by ``weights``, over positive weights (NaN when none)."""
    values = pd.to_numeric(values, errors="coerce").astype(float)
    weights = pd.to_numeric(weights, errors="coerce").astype(float)
    ok = values.notna() & weights.notna() & (weights > 0)
    total = weights[ok].sum()
    return float((values[ok] * weights[ok]).sum() / total) if total > 0 else math.nan


def monthly_kpis(panel: pd.DataFrame) -> pd.DataFrame:
    """Outcome measures per month, over all customers.

    CSAT and the top-2 share are response-weighted (every survey response counts once); the
    complaint rate is total complaints per 1,000 total active users.

    Parameters
    ----------
    panel : the service panel.

    Returns
    -------
    DataFrame
        One row per month: month, customers, active_users, responses, csat_mean,
        csat_top2_pct, complaints, complaint_rate_per_1k (a column is NaN when the panel
        lacks its source).
    """
    rows = []
    for month, group in panel.groupby(panel["month"].astype(str), sort=True):
        row: dict[str, Any] = {"month": month, "customers": int(group["customer_id"].nunique())}
        users = (
            pd.to_numeric(group["active_users"], errors="coerce")
            if "active_users" in group
            else None
        )
        row["active_users"] = float(users.sum()) if users is not None else math.nan
        if "csat_n" in group:
            n = pd.to_numeric(group["csat_n"], errors="coerce").fillna(0)
            row["responses"] = float(n.sum())
            row["csat_mean"] = (
                weighted_mean(group["csat_mean"], n) if "csat_mean" in group else math.nan
            )
            row["csat_top2_pct"] = (
                100 * weighted_mean(group["csat_top2_rate"], n)
                if "csat_top2_rate" in group
                else math.nan
            )
        else:
            row.update(responses=math.nan, csat_mean=math.nan, csat_top2_pct=math.nan)
        if "complaints" in group:
            complaints = pd.to_numeric(group["complaints"], errors="coerce").fillna(0)
            row["complaints"] = float(complaints.sum())
            if users is not None:
                has_users = users > 0
                exposed = float(users[has_users].sum())
                row["complaint_rate_per_1k"] = (
                    1000 * float(complaints[has_users].sum()) / exposed if exposed else math.nan
                )
            else:
                row["complaint_rate_per_1k"] = math.nan
        else:
            row.update(complaints=math.nan, complaint_rate_per_1k=math.nan)
        rows.append(row)
    columns = ["month", "customers", "active_users", "responses", "csat_mean", "csat_top2_pct"]
    columns += ["complaints", "complaint_rate_per_1k"]
    return pd.DataFrame(rows, columns=columns)


def headline_kpis(panel: pd.DataFrame, month: str, window: int = 12) -> pd.DataFrame:
    """The headline measures of one month, against the month before and the trailing average.

    Parameters
    ----------
    panel : the service panel (months after ``month`` are ignored).
    month : the month reported, ``YYYY-MM``.
    window : months in the trailing average (the months before ``month``).

    Returns
    -------
    DataFrame
        One row per measure: kpi, label, unit, value, previous, change, trailing_mean,
        higher_is_better (True, False or None for plain counts).
    """
    monthly = monthly_kpis(panel).set_index("month")
    previous_month = add_months(month, -1)
    before = [m for m in monthly.index if add_months(month, -window) <= m < month]
    rows = []
    for kpi, (label, unit, better) in HEADLINE.items():
        value = monthly.at[month, kpi] if month in monthly.index else math.nan
        previous = monthly.at[previous_month, kpi] if previous_month in monthly.index else math.nan
        trailing = monthly.loc[before, kpi].mean() if before else math.nan
        rows.append(
            {
                "kpi": kpi,
                "label": label,
                "unit": unit,
                "value": float(value),
                "previous": float(previous),
                "change": float(value - previous),
                "trailing_mean": float(trailing),
                "higher_is_better": better,
            }
        )
    return pd.DataFrame(rows)


def headline_text(kpis: pd.DataFrame, month: str):
    """A sentence or two on the headline measures, as IPython Markdown.

    Parameters
    ----------
    kpis : the output of :func:`headline_kpis`.
    month : the month reported.
    """
    from IPython.display import Markdown

    lines = []
    for _, row in kpis.iterrows():
        if row["kpi"] not in CHANGE_FORMATS or pd.isna(row["value"]):
            continue
        text = "- " + change_line(row, month)
        if pd.notna(row["trailing_mean"]):
            text += f"; 12-month average {CHANGE_FORMATS[row['kpi']].format(row['trailing_mean'])}"
        lines.append(text)
    if not lines:
        lines.append("- No survey or complaint data for this month.")
    return Markdown(f"**{month_name(month)} at a glance**\n\n" + "\n".join(lines))


def plot_kpi_trends(panel: pd.DataFrame, month: str, months: int = 12):
    """Line charts of CSAT, the satisfied share and the complaint rate over the last months.

    Parameters
    ----------
    panel : the service panel.
    month : the month reported (highlighted).
    months : how many months to show, ending at ``month``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    monthly = monthly_kpis(panel)
    monthly = monthly.loc[
        (monthly["month"] > add_months(month, -months)) & (monthly["month"] <= month)
    ].reset_index(drop=True)
    shown = list(monthly["month"])
    panels = [
        ("csat_mean", "CSAT, mean score", "score (1 = very unhappy, 5 = very happy)"),
        ("csat_top2_pct", "Satisfied customers (CSAT 4-5)", "% of survey responses"),
        ("complaint_rate_per_1k", "Complaints per 1,000 active users", "complaints / 1,000 users"),
    ]
    with figure_style():
        figure, axes = new_figure(13, 3.8, ncols=3)
        for ax, (column, title, unit) in zip(axes, panels, strict=True):
            trend_panel(ax, monthly[column].astype(float), shown, month, title, unit)
        figure.suptitle(
            f"Customer satisfaction and complaints, {len(shown)} months to {month_name(month)}",
            fontsize=12,
        )
    return figure


# The three actions of the executive summary: gap analysis short name -> (lever, what to do).
ACTIONS = {
    "availability": ("availability_pct", "Raise availability to what they expect"),
    "latency": ("latency_p95_ms", "Bring p95 latency down to what they expect"),
    "resolution": ("resolution_hours_median", "Resolve tickets as fast as they expect"),
}


def summary_actions(gaps, config=None, include_no_gain: bool = False) -> pd.DataFrame:
    """The actions of the executive summary: close one kind of expectation gap each.

    For availability, p95 latency and resolution time: the customers who got less than they
    expect this month, the rise of their mean predicted CSAT if that gap alone were closed
    (gap analysis), and the monthly cost of closing it for all of them as one service change,
    from their typical level to their typical expectation (``[costs]`` cost curves of the
    config price a change of a service level for whoever receives it, as the plans and the
    proposals do; :func:`~satmodel.insights.scenarios.typical_level`). Sorted by CSAT gain per
    unit of cost, best first.

    ``include_no_gain``: also the gaps whose closing the models see no CSAT gain in (last),
    which are no action but worth saying (the executive summary says why they are left out).

    Returns
    -------
    DataFrame
        action, lever, customers, csat_gain, monthly_cost (NaN when the costs are not valid).
    """
    from satmodel.errors import SatmodelError
    from satmodel.insights.plans import lever_cost, resolve_costs
    from satmodel.insights.scenarios import typical_level

    columns = ["action", "lever", "customers", "csat_gain", "monthly_cost"]
    if gaps is None:
        return pd.DataFrame(columns=columns)
    table = gaps.customers_
    try:
        costs = resolve_costs(None, config)
    except SatmodelError:
        costs = None
    rows = []
    for short, (lever, action) in ACTIONS.items():
        gap = f"{short}_gap"
        if gap not in table or f"csat_mean_gain_{short}" not in table:
            continue
        hit = table.loc[pd.to_numeric(table[gap], errors="coerce").fillna(0) > 0]
        if hit.empty:
            continue
        cost = math.nan
        if costs is not None:
            expected = typical_level(lever, pd.to_numeric(hit[f"{short}_expected"]))
            measured = typical_level(lever, pd.to_numeric(hit[f"{short}_measured"]))
            cost = float(lever_cost(lever, expected, measured, costs))
        rows.append(
            {
                "action": action,
                "lever": lever,
                "customers": len(hit),
                "csat_gain": float(hit[f"csat_mean_gain_{short}"].mean()),
                "monthly_cost": cost,
            }
        )
    out = pd.DataFrame(rows, columns=columns)
    gain = out["csat_gain"] > 0  # closing a gap the models see no gain in is no action
    value = out["csat_gain"] / out["monthly_cost"].where(out["monthly_cost"] > 0)
    ranked = (
        out.assign(_value=value.fillna(math.inf).where(gain, -math.inf))
        .sort_values(["_value", "csat_gain"], ascending=False, kind="stable")
        .drop(columns="_value")
    )
    if not include_no_gain:
        ranked = ranked.loc[ranked["csat_gain"] > 0]
    return ranked.reset_index(drop=True)


def change_line(row: pd.Series, month: str) -> str:
    """One headline measure of :func:`headline_kpis` and its change on last month, in words."""
    fmt = CHANGE_FORMATS[row["kpi"]]
    text = f"**{row['label']}**: {fmt.format(row['value'])}"
    if pd.isna(row["change"]):
        return text + " (no previous month to compare)"
    if fmt.format(abs(row["change"])) == fmt.format(0.0):  # no change at the precision shown
        return text + f", unchanged on {month_name(add_months(month, -1))}"
    up = row["change"] > 0
    good = up == bool(row["higher_is_better"])
    change = fmt.format(abs(row["change"])).replace("%", " points")
    return (
        text + f", {'up' if up else 'down'} {change} on {month_name(add_months(month, -1))} "
        f"({'better' if good else 'worse'})"
    )


def executive_summary(kpis: pd.DataFrame, actions: pd.DataFrame, month: str, currency: str = "EUR"):
    """The report's first screen: the three things that changed and the three actions.

    Parameters
    ----------
    kpis : :func:`headline_kpis`.
    actions : :func:`summary_actions` (the first three with a gain are shown; those without,
        from ``include_no_gain=True``, are said to be no action).
    month : the month reported.
    currency : ``[costs] currency``.

    Returns
    -------
    IPython.display.Markdown
    """
    from IPython.display import Markdown

    from satmodel.reporting.labels import md_escape

    changed = [
        change_line(row, month)
        for _, row in kpis.iterrows()
        if row["kpi"] in CHANGE_FORMATS and pd.notna(row["value"])
    ]
    lines = [f"## Executive summary: {month_name(month)}", "", "**What changed**", ""]
    lines += [f"{i}. {text}" for i, text in enumerate(changed, 1)] or [
        "- No survey or complaint data for this month."
    ]
    lines += ["", "**What to do next** (expected effect and cost)", ""]
    no_gain = actions.loc[~(actions["csat_gain"] > 0)]
    actions = actions.loc[actions["csat_gain"] > 0]
    for i, action in enumerate(actions.head(3).itertuples(index=False), 1):
        cost = (
            f"about {md_escape(currency)} {float(f'{action.monthly_cost:.2g}'):,.0f} a month"
            if math.isfinite(action.monthly_cost)
            else "cost not configured"
        )
        lines.append(
            f"{i}. {action.action} for the **{action.customers:,} customers** who got less "
            f"this month: their predicted CSAT rises by {action.csat_gain:+.2f} on average; "
            f"{cost}."
        )
    if actions.empty and no_gain.empty:
        lines.append("- Every customer got the service it expects: keep it so.")
    elif actions.empty:
        lines.append("- No gap the models see a satisfaction gain in closing.")
    for row in no_gain.itertuples(index=False):
        what = row.action[0].lower() + row.action[1:]
        lines.append(
            f"- Not an action: {what} for the {row.customers:,} customers who got less this "
            "month: the models see no rise in their predicted CSAT from it."
        )
    return Markdown("\n".join(lines))
