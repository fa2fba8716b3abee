"""Report section "Which components and problems cost satisfaction", and the component
pieces of the sales proposal and the gap analysis.

The numbers come from :func:`satmodel.insights.components.component_costs`; this module
draws and tabulates them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from satmodel.features.components import component_downtime, problem_occurrences
from satmodel.reporting.figures import error_extents, figure_style, new_figure

MINUTES_PER_DAY = 1440.0


def plot_costs(result, top: int = 10):
    """Ranked bars of the CSAT points each component and each problem costs, with intervals.

    Parameters
    ----------
    result : :class:`satmodel.insights.components.ComponentsResult`
    top : at most this many bars per panel.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when nothing has a cost.
    """
    frames = [
        ("Components", result.components_, "component_id"),
        ("Recurring problems", result.problems_, "problem_id"),
    ]
    frames = [(t, f.dropna(subset=["csat_points"]).head(top), k) for t, f, k in frames]
    frames = [(t, f, k) for t, f, k in frames if len(f)]
    if not frames:
        return None
    with figure_style():
        figure, axes = new_figure(12, 0.5 + 0.45 * max(len(f) for _, f, _ in frames), len(frames))
        for ax, (title, frame, key) in zip(axes, frames, strict=True):
            order = frame.iloc[::-1]
            labels = [
                f"{k} ({n})" if isinstance(n, str) and n else str(k)
                for k, n in zip(order[key], order.get("name", order[key]), strict=True)
            ]
            ax.barh(
                labels,
                order["csat_points"],
                xerr=error_extents(
                    order["csat_points"], order["csat_points_ci_low"], order["csat_points_ci_high"]
                ),
                color="#c0504d",
                capsize=3,
            )
            ax.set_title(title)
            ax.set_xlabel("CSAT points gained had its downtime not happened (95% interval)")
            ax.set_xlim(left=0)
        months = result.month or f"{result.months[0]}..{result.months[1]}"
        figure.suptitle(f"Which components and problems cost satisfaction ({months})")
    return figure


def plot_recurrence(source, result, top: int = 5):
    """Timeline of the top problems' occurrences (one row per problem, one mark each).

    Returns
    -------
    matplotlib.figure.Figure or None
        None without recurring problems.
    """
    problems = list(result.problems_["problem_id"].head(top))
    if not problems:
        return None
    occurrences = problem_occurrences(source, *result.months)
    with figure_style():
        figure, (ax,) = new_figure(12, 0.8 + 0.5 * len(problems))
        for row, problem in enumerate(reversed(problems)):
            mine = occurrences[occurrences["problem_id"] == problem]
            hours = (mine["end_ts"] - mine["start_ts"]).dt.total_seconds() / 3600
            ax.scatter(mine["start_ts"], [row] * len(mine), s=20 + 30 * hours, color="#4f81bd")
        ax.set_yticks(range(len(problems)), list(reversed(problems)))
        ax.set_title("Top recurring problems: each occurrence (size = hours)")
    return figure


def planned_minutes(panel: pd.DataFrame) -> pd.DataFrame:
    """Planned and unplanned customer-minutes of downtime per month.

    Returns
    -------
    DataFrame
        month, unplanned_minutes, planned_minutes, planned_share (of all minutes; NaN
        without any).
    """
    columns = ["downtime_minutes", "planned_downtime_minutes"]
    if not set(columns) <= set(panel.columns):
        return pd.DataFrame(
            columns=["month", "unplanned_minutes", "planned_minutes", "planned_share"]
        )
    sums = panel.groupby("month")[columns].sum().reset_index()
    sums.columns = ["month", "unplanned_minutes", "planned_minutes"]
    total = sums["unplanned_minutes"] + sums["planned_minutes"]
    sums["planned_share"] = (sums["planned_minutes"] / total.where(total > 0)).astype(float)
    return sums


def plot_planned(panel: pd.DataFrame):
    """Stacked monthly bars: unplanned downtime and planned maintenance minutes.

    Returns
    -------
    matplotlib.figure.Figure or None
        None without incidents.
    """
    sums = planned_minutes(panel)
    if sums.empty:
        return None
    with figure_style():
        figure, (ax,) = new_figure(12, 3.6)
        ax.bar(sums["month"], sums["unplanned_minutes"], label="unplanned (counts as downtime)")
        ax.bar(
            sums["month"],
            sums["planned_minutes"],
            bottom=sums["unplanned_minutes"],
            label="planned maintenance (left out)",
            color="#9bbb59",
        )
        ax.set_ylabel("customer-minutes")
        ax.tick_params(axis="x", rotation=45)
        ax.legend()
        ax.set_title("Planned vs unplanned minutes")
    return figure


def component_commitments(components: pd.DataFrame, availability_pct: float, month: str):
    """Component-level availability each component must hold for a service level.

    The month's downtime budget (``100 - availability_pct`` % of its minutes, per customer)
    is shared among the components in proportion to the downtime each causes today; a
    component's commitment is the availability that leaves it its share.

    Parameters
    ----------
    components : ``ComponentsResult.components_`` (component_id, name, downtime_minutes,
        customers_affected).
    availability_pct : the recommended service level, e.g. 99.9.
    month : ``YYYY-MM`` (its length sets the minutes).

    Returns
    -------
    DataFrame
        component_id, name, share (of today's downtime), budget_minutes (per customer and
        month), availability_pct (the commitment); largest share first.
    """
    from satmodel.features.months import days_in_month

    minutes = days_in_month(month) * MINUTES_PER_DAY
    budget = minutes * (100.0 - float(availability_pct)) / 100.0
    frame = components.loc[components["downtime_minutes"] > 0].copy()
    share = frame["downtime_minutes"] / frame["downtime_minutes"].sum()
    out = pd.DataFrame(
        {
            "component_id": frame["component_id"],
            "name": frame.get("name", frame["component_id"]),
            "share": share,
            "budget_minutes": budget * share,
            "availability_pct": 100.0 * (1.0 - budget * share / minutes),
        }
    )
    return out.sort_values("share", ascending=False, kind="stable").reset_index(drop=True)


def gap_causes(source, customers: list[str], month: str) -> pd.DataFrame:
    """Which component caused each customer's downtime in a month (for the gap analysis).

    Returns
    -------
    DataFrame
        customer_id, component_id (the component with the most downtime; null without
        any), downtime_minutes (on it), share (of the customer's component downtime).
    """
    down = component_downtime(source, month, month)
    down = down[down["customer_id"].isin([str(c) for c in customers])]
    totals = down.groupby("customer_id")["downtime_minutes"].sum()
    worst = down.drop_duplicates("customer_id").set_index("customer_id")
    out = pd.DataFrame({"customer_id": [str(c) for c in customers]})
    out["component_id"] = out["customer_id"].map(worst["component_id"])
    out["downtime_minutes"] = out["customer_id"].map(worst["downtime_minutes"]).fillna(0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share"] = (out["downtime_minutes"] / out["customer_id"].map(totals)).astype(float)
    return out


def components_section(report, enabled: bool = True):
    """The month's component and problem costs for the report, or None.

    None when models are not fitted (``enabled`` false), or the data names no component,
    has no incidents or no survey responses.

    Parameters
    ----------
    report : :class:`satmodel.reporting.data.ReportData`
    enabled : fit the within-customer models (the report's ``fit_models`` parameter).

    Returns
    -------
    ComponentsResult or None
    """
    from satmodel.insights.components import component_costs

    source = report.source
    if not enabled or report.responses is None or not source.has("incidents"):
        return None
    named = source.con.execute("SELECT count(component_id) FROM incidents").fetchall()[0][0]
    if not named:
        return None
    return component_costs(
        source, report.panel, report.responses, month=report.month, ids=report.ids
    )
