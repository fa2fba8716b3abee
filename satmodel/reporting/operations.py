"""Operations scorecard section: delivery and recovery measures (DORA-style)."""

from __future__ import annotations

import math

import pandas as pd

from satmodel.calendar import add_months, days_in_month, month_name, month_range
from satmodel.reporting.data import ReportData, month_sql_bounds
from satmodel.reporting.figures import figure_style, new_figure, trend_panel
from satmodel.reporting.pseudonyms import with_ids

OPERATIONS = {
    "changes_per_week": ("Changes per week", "changes / week", None),
    "change_failure_pct": ("Change failure rate", "% of changes", False),
    "mttr_hours": ("Time to restore (MTTR)", "hours per incident", False),
    "releases_per_week": ("Releases per week", "platform releases / week", True),
    "days_between_releases": ("Days between releases", "days (mean)", False),
}


def load_operations(data: ReportData, months: int = 15) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean changes and incidents of the ``months`` months up to the report month.

    Returns
    -------
    tuple of DataFrame
        (changes: change_id, customer_id, ts, failed; incidents: incident_id, customer_id,
        start_ts, end_ts); a table the source lacks is an empty frame.
    """
    lo = month_sql_bounds(add_months(data.month, -months + 1))[0]
    hi = month_sql_bounds(data.month)[1]
    frames = []
    for table, columns, ts in (
        ("changes", "change_id, customer_id, ts, failed", "ts"),
        ("incidents", "incident_id, customer_id, start_ts, end_ts", "start_ts"),
    ):
        if data.source.has(table):
            frame = data.source.con.execute(
                f"SELECT {columns} FROM {table} WHERE {ts} >= {lo} AND {ts} < {hi}"
            ).df()
        else:
            frame = pd.DataFrame(columns=[c.strip() for c in columns.split(",")])
        frames.append(with_ids(frame, data.ids))
    return frames[0], frames[1]


def _month_of_ts(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.strftime("%Y-%m")


def operations_monthly(
    changes: pd.DataFrame, incidents: pd.DataFrame, months: list[str]
) -> pd.DataFrame:
    """Delivery and recovery measures per month.

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
    changes : change_id, customer_id, ts, failed.
    incidents : incident_id, customer_id, start_ts, end_ts.
    months : the months wanted, ``YYYY-MM``.

    Returns
    -------
    DataFrame
        One row per month: month, changes, changes_per_week, failed_changes,
        change_failure_pct, releases, releases_per_week, days_between_releases, incidents,
        mttr_hours (NaN where there is nothing to measure).
    """
    change = pd.DataFrame(
        {
            "month": _month_of_ts(changes["ts"]).astype(str),
            "ts": pd.to_datetime(changes["ts"], utc=True),
            "failed": changes["failed"].astype(bool),
            "release": changes["customer_id"].isna(),
        }
    )
    releases = change.loc[change["release"]].sort_values("ts")
    gaps = releases.assign(gap_days=releases["ts"].diff() / pd.Timedelta(days=1))
    incident = pd.DataFrame(
        {
            "month": _month_of_ts(incidents["start_ts"]).astype(str),
            "hours": (
                pd.to_datetime(incidents["end_ts"], utc=True)
                - pd.to_datetime(incidents["start_ts"], utc=True)
            )
            / pd.Timedelta(hours=1),
        }
    )
    rows = []
    for month in months:
        weeks = days_in_month(month) / 7
        these = change.loc[change["month"] == month]
        n = len(these)
        failed = int(these["failed"].sum())
        n_releases = int(these["release"].sum())
        month_gaps = gaps.loc[gaps["month"] == month, "gap_days"].dropna()
        hours = incident.loc[incident["month"] == month, "hours"]
        rows.append(
            {
                "month": month,
                "changes": n,
                "changes_per_week": n / weeks,
                "failed_changes": failed,
                "change_failure_pct": 100 * failed / n if n else math.nan,
                "releases": n_releases,
                "releases_per_week": n_releases / weeks,
                "days_between_releases": float(month_gaps.mean()) if len(month_gaps) else math.nan,
                "incidents": len(hours),
                "mttr_hours": float(hours.mean()) if len(hours) else math.nan,
            }
        )
    return pd.DataFrame(rows)


def operations_scorecard(monthly: pd.DataFrame, month: str) -> pd.DataFrame:
    """Before/after scorecard: this month against the previous month and a quarter ago.

    Parameters
    ----------
    monthly : the output of :func:`operations_monthly` (must include the three months).
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
    for kpi, (label, unit, better) in OPERATIONS.items():

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


def operations_section(data: ReportData, months: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Operations measures of the report: (monthly measures, scorecard of the month)."""
    changes, incidents = load_operations(data, months=max(months, 4))
    shown = month_range(add_months(data.month, -max(months, 4) + 1), data.month)
    shown = [m for m in shown if m >= data.window[0]]
    monthly = operations_monthly(changes, incidents, shown)
    return monthly, operations_scorecard(monthly, data.month)


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
