"""Operations scorecard section: delivery and recovery measures (DORA-style)."""

from __future__ import annotations

import math

import pandas as pd

from satmodel.calendar import add_months, days_in_month, month_name
from satmodel.features.components import component_summary, names_components
from satmodel.features.telemetry import operations_by_month
from satmodel.reporting.data import ReportData
from satmodel.reporting.figures import figure_style, new_figure, trend_panel

OPERATIONS = {
    "changes_per_week": ("Changes per week", "changes / week", None),
    "change_failure_pct": ("Change failure rate", "% of changes", False),
    "mttr_hours": ("Time to restore (MTTR)", "hours per incident", False),
    "releases_per_week": ("Releases per week", "platform releases / week", True),
    "days_between_releases": ("Days between releases", "days (mean)", False),
}
OPERATING_COST = {
    "opex": ("Operating cost", "per month", False),
    "cost_per_customer": ("Operating cost per customer", "per customer and month", False),
    "cost_per_change": ("Operating cost per change", "per change", False),
}
"""Scorecard rows of the operating cost, shown when the data has one (``opex``, ``[opex]``)."""


def operations_monthly(counts: pd.DataFrame) -> pd.DataFrame:
    """Delivery and recovery measures per month, from the month's counts.

    - **changes per week**: every change counted once (a platform-wide change, whose
      customer_id is null, counts once, not once per customer) over days in the month / 7;
    - **change failure rate**: failed changes / changes;
    - **MTTR**: mean duration (end - start) of the incidents that started in the month, in
      hours; an incident row is one customer's outage, so a platform outage weighs once per
      customer it hit;
    - **releases**: platform-wide changes (customer_id null) — the release train; releases per
      week, and the mean days between consecutive releases for releases in the month (the gap
      from the release before counts, even when it fell in the previous month).

    Parameters
    ----------
    counts : :func:`satmodel.features.telemetry.operations_by_month` (month, changes,
        failed_changes, releases, days_between_releases, incidents, mttr_hours).

    Returns
    -------
    DataFrame
        One row per month: month, changes, changes_per_week, failed_changes,
        change_failure_pct, releases, releases_per_week, days_between_releases, incidents,
        mttr_hours (NaN where there is nothing to measure).
    """
    weeks = counts["month"].map(days_in_month).astype(float) / 7
    changes = counts["changes"].astype(float)
    out = pd.DataFrame(
        {
            "month": counts["month"].astype(str),
            "changes": counts["changes"],
            "changes_per_week": changes / weeks,
            "failed_changes": counts["failed_changes"],
            "change_failure_pct": (100 * counts["failed_changes"] / changes).where(changes > 0),
            "releases": counts["releases"],
            "releases_per_week": counts["releases"] / weeks,
            "days_between_releases": counts["days_between_releases"].astype(float),
            "incidents": counts["incidents"],
            "mttr_hours": counts["mttr_hours"].astype(float),
        }
    )
    return out.reset_index(drop=True)


def operations_scorecard(monthly: pd.DataFrame, month: str) -> pd.DataFrame:
    """Before/after scorecard: this month against the previous month and a quarter ago.

    Parameters
    ----------
    monthly : the output of :func:`operations_monthly` (must include the three months), with
        the :data:`OPERATING_COST` columns of :func:`with_operating_cost` when there are any
        (they are then rows of the scorecard too).
    month : the month reported.

    Returns
    -------
    DataFrame
        One row per measure: kpi, label, unit, value, previous, change, quarter_ago,
        change_quarter, trend (``better``, ``worse``, ``unchanged``, ``-`` when it cannot be
        told or the measure has no better direction), higher_is_better.
    """
    by_month = monthly.set_index("month")
    rows = []
    measures = {**OPERATIONS, **{k: v for k, v in OPERATING_COST.items() if k in monthly}}
    for kpi, (label, unit, better) in measures.items():

        def at(m: str, column: str = kpi) -> float:
            return float(by_month.at[m, column]) if m in by_month.index else math.nan

        value, previous, quarter = at(month), at(add_months(month, -1)), at(add_months(month, -3))
        change = value - previous
        if math.isnan(change) or better is None:
            trend = "-"
        elif abs(change) < 1e-9:
            trend = "unchanged"
        else:
            trend = "better" if (change > 0) == better else "worse"
        rows.append(
            {
                "kpi": kpi,
                "label": label,
                "unit": unit,
                "value": value,
                "previous": previous,
                "change": change,
                "quarter_ago": quarter,
                "change_quarter": value - quarter,
                "trend": trend,
                "higher_is_better": better,
            }
        )
    return pd.DataFrame(rows)


def operating_cost(data: ReportData) -> pd.Series:
    """Monthly operating cost by month: the ``opex`` table, else ``[opex]`` of the config.

    Returns
    -------
    Series
        Amount per month (``YYYY-MM`` index); empty when the data gives none.
    """
    if data.source is not None and data.source.has("opex"):
        table = data.source.frame("opex")
        return pd.Series(
            table["amount"].astype(float).to_numpy(), index=table["month"].astype(str), name="opex"
        ).sort_index()
    config = getattr(data.config, "opex", None) or {}
    return pd.Series(config, dtype=float, name="opex").sort_index()


def with_operating_cost(
    monthly: pd.DataFrame, opex: pd.Series, customers: pd.Series
) -> pd.DataFrame:
    """``monthly`` with the operating cost, per customer and per change (unchanged without).

    Parameters
    ----------
    monthly : :func:`operations_monthly`.
    opex : operating cost by month (:func:`operating_cost`).
    customers : customers served by month (the panel's customers of each month).

    Returns
    -------
    DataFrame
        ``monthly`` plus opex, customers, cost_per_customer (opex / customers) and
        cost_per_change (opex / changes; NaN in a month without changes).
    """
    if opex.empty:
        return monthly
    amount = monthly["month"].map(opex).astype(float)
    served = monthly["month"].map(customers).astype(float)
    changes = monthly["changes"].astype(float)
    return monthly.assign(
        opex=amount,
        customers=served,
        cost_per_customer=amount / served.where(served > 0),
        cost_per_change=amount / changes.where(changes > 0),
    )


def operations_section(data: ReportData, months: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Operations measures of the report: (monthly measures, scorecard of the month).

    With an operating cost (``opex`` table or ``[opex]``) both include it
    (:func:`with_operating_cost`), so the before/after scorecard is one table.
    """
    first = max(add_months(data.month, -max(months, 4) + 1), data.window[0])
    monthly = operations_monthly(operations_by_month(data.source, first, data.month))
    served = data.panel.groupby(data.panel["month"].astype(str))["customer_id"].nunique()
    monthly = with_operating_cost(monthly, operating_cost(data), served)
    return monthly, operations_scorecard(monthly, data.month)


def component_scorecard(data: ReportData) -> pd.DataFrame | None:
    """The month's delivery and recovery per IT component, or None without components.

    - **change failure rate**: failed changes / all changes of the component in the month;
    - **failed changes followed by an incident**: those with an incident on the same component
      within ``[thresholds] change_incident_window_hours`` after them;
    - **MTTR**: mean duration of the component's incidents starting in the month, in hours
      (the panel's ``mttr_hours``; planned maintenance left out, as in the downtime).

    Parameters
    ----------
    data : the report's data.

    Returns
    -------
    DataFrame or None
        One row per component with a change or an incident in the month, most incidents
        first: component, changes, failed_changes, change_failure_pct,
        failed_changes_with_incident, incidents, mttr_hours (NaN where there is nothing to
        measure). None when neither incidents nor changes name a component.
    """
    source = data.source
    if not source.has("incidents") or not (
        names_components(source) or names_components(source, "changes")
    ):
        return None
    summary = component_summary(source, data.month, data.month)
    active = summary.loc[(summary["changes"] > 0) | (summary["incidents"] > 0)]
    named = active["name"].where(active["name"].notna(), active["component_id"])
    out = pd.DataFrame(
        {
            "component": named.astype(str),
            "changes": active["changes"],
            "failed_changes": active["failed_changes"],
            "change_failure_pct": 100.0 * active["change_failure_rate"],
            "failed_changes_with_incident": active["failed_changes_with_incident"],
            "incidents": active["incidents"],
            "mttr_hours": active["mttr_hours"],
        }
    )
    out = out.sort_values(
        ["incidents", "changes", "component"], ascending=[False, False, True], kind="stable"
    )
    return out.reset_index(drop=True)


def plot_operations(monthly: pd.DataFrame, month: str, months: int = 12):
    """Trends of the operations measures (changes, failure rate, MTTR, release cadence).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when there is nothing to draw.
    """
    shown = monthly.loc[monthly["month"] > add_months(month, -months)].reset_index(drop=True)
    if shown.empty or shown[list(OPERATIONS)].isna().all().all():
        return None
    labels = list(shown["month"])
    panels = [
        ("changes_per_week", "Changes per week", "changes / week"),
        ("change_failure_pct", "Change failure rate", "% of changes that failed"),
        ("mttr_hours", "Time to restore (MTTR)", "hours per incident"),
        ("releases_per_week", "Release cadence", "platform releases / week"),
    ]
    with figure_style():
        figure, axes = new_figure(13, 6.4, ncols=2, nrows=2)
        for ax, (column, title, unit) in zip(axes, panels, strict=True):
            trend_panel(ax, shown[column].astype(float), labels, month, title, unit)
            ax.set_ylim(bottom=0)
        figure.suptitle(
            f"Operations: delivery and recovery, {len(labels)} months to {month_name(month)}",
            fontsize=12,
        )
    return figure


def plot_operating_cost(monthly: pd.DataFrame, month: str, months: int = 12):
    """Trends of the operating cost per customer and per change.

    Returns
    -------
    matplotlib.figure.Figure or None
        None without an operating cost.
    """
    if "opex" not in monthly:
        return None
    shown = monthly.loc[monthly["month"] > add_months(month, -months)].reset_index(drop=True)
    if shown.empty or shown["opex"].isna().all():
        return None
    labels = list(shown["month"])
    panels = [
        ("cost_per_customer", "Operating cost per customer", "per customer and month"),
        ("cost_per_change", "Operating cost per change", "per change"),
    ]
    with figure_style():
        figure, axes = new_figure(13, 3.4, ncols=2)
        for ax, (column, title, unit) in zip(axes, panels, strict=True):
            trend_panel(ax, shown[column].astype(float), labels, month, title, unit)
            ax.set_ylim(bottom=0)
        figure.suptitle(
            f"Operating cost per customer and per change, {len(labels)} months to "
            f"{month_name(month)}",
            fontsize=12,
        )
    return figure
