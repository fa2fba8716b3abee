"""Error budget section: downtime per day, burn rates and the burn-down chart."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from satmodel.calendar import days_in_month, minutes_in_month, month_name, month_start
from satmodel.reporting.data import ALL_SEGMENTS, ReportData, month_sql_bounds
from satmodel.reporting.figures import (
    ALERT_COLOR,
    GUIDE_COLOR,
    INK_COLOR,
    OTHER_COLOR,
    figure_style,
    label_positions,
    new_figure,
    palette,
)
from satmodel.reporting.labels import md_escape, plot_label
from satmodel.reporting.pseudonyms import with_ids


def merge_intervals(intervals: pd.DataFrame) -> pd.DataFrame:
    """The union of each customer's downtime intervals (overlapping incidents count once).

    Parameters
    ----------
    intervals : customer_id, start_ts, end_ts (timezone-aware timestamps).

    Returns
    -------
    DataFrame
        customer_id, start_ts, end_ts: disjoint intervals, sorted by customer and start.
    """
    columns = ["customer_id", "start_ts", "end_ts"]
    if intervals.empty:
        return pd.DataFrame(columns=columns)
    frame = intervals[columns].dropna().sort_values(["customer_id", "start_ts", "end_ts"])
    frame = frame.reset_index(drop=True)
    rows = []
    for customer, group in frame.groupby("customer_id", sort=True):
        start, end = None, None
        for s, e in zip(group["start_ts"], group["end_ts"], strict=True):
            if start is None:
                start, end = s, e
            elif s <= end:
                end = max(end, e)
            else:
                rows.append((customer, start, end))
                start, end = s, e
        rows.append((customer, start, end))
    return pd.DataFrame(rows, columns=columns)


def downtime_by_day(intervals: pd.DataFrame, month: str) -> pd.DataFrame:
    """Downtime minutes per customer and day of a month, from incident intervals.

    Intervals are merged per customer first (:func:`merge_intervals`) and clipped to the
    month, as the panel's ``downtime_minutes`` is.

    Parameters
    ----------
    intervals : customer_id, start_ts, end_ts.
    month : ``YYYY-MM``.

    Returns
    -------
    DataFrame
        customer_id, day (1..days in month), downtime_minutes (only days with downtime).
    """
    columns = ["customer_id", "day", "downtime_minutes"]
    merged = merge_intervals(intervals)
    if merged.empty:
        return pd.DataFrame(columns=columns)
    first = month_start(month)
    n_days = days_in_month(month)
    rows = []
    for customer, start, end in merged.itertuples(index=False):
        for day in range(1, n_days + 1):
            lo = first + pd.Timedelta(days=day - 1)
            hi = lo + pd.Timedelta(days=1)
            overlap = (min(end, hi) - max(start, lo)).total_seconds() / 60
            if overlap > 0:
                rows.append((customer, day, overlap))
    out = pd.DataFrame(rows, columns=columns)
    return out.groupby(["customer_id", "day"], as_index=False)["downtime_minutes"].sum()


def burn_rates(
    daily: pd.DataFrame,
    customers: pd.DataFrame,
    month: str,
    slo_pct: float,
    elapsed_days: float | None = None,
) -> pd.DataFrame:
    """Error budget burn rate per segment: budget consumed against the share of month elapsed.

    A segment's error budget is the downtime its availability SLO allows all its customers in
    the whole month, ``customers x (1 - SLO/100) x minutes in the month``. The **burn rate** is
    the share of that budget consumed so far divided by the share of the month elapsed: 1 spends
    the budget exactly by the month's end, 2 would spend it in half the month. For a complete
    month it equals the budget used (as a fraction). The **peak 7-day burn rate** is the same
    ratio over the worst 7 consecutive days, the signal an SRE alert would have fired on.

    Parameters
    ----------
    daily : customer_id, day, downtime_minutes (from :func:`downtime_by_day`).
    customers : customer_id, segment of every customer of the month (with or without downtime).
    month : ``YYYY-MM``.
    slo_pct : the availability SLO, e.g. 99.9.
    elapsed_days : days of the month the data covers (default: all of them).

    Returns
    -------
    DataFrame
        One row per segment (alphabetical) and a last row ``All customers``: segment,
        customers, budget_minutes, downtime_minutes, error_budget_used_pct, elapsed_pct,
        burn_rate, peak_7day_burn_rate, projected_used_pct (at this rate, by the month's end),
        status (``exhausted``, ``burning too fast``, ``on track``).
    """
    n_days = days_in_month(month)
    elapsed = float(n_days if elapsed_days is None else min(max(elapsed_days, 0), n_days))
    per_customer = (1 - slo_pct / 100) * minutes_in_month(month)
    who = customers[["customer_id", "segment"]].drop_duplicates("customer_id")
    who = who.assign(customer_id=who["customer_id"].astype(str), segment=who["segment"].astype(str))
    days = daily.assign(customer_id=daily["customer_id"].astype(str)).merge(who, on="customer_id")
    days = days.loc[days["day"] <= math.ceil(elapsed)] if elapsed < n_days else days

    def row(segment: str, members: pd.DataFrame, spent: pd.DataFrame) -> dict[str, Any]:
        budget = per_customer * len(members)
        used = float(spent["downtime_minutes"].sum())
        by_day = (
            spent.groupby("day")["downtime_minutes"]
            .sum()
            .reindex(range(1, n_days + 1), fill_value=0.0)
        )
        window = min(7, n_days)
        peak = float(by_day.rolling(window).sum().max()) if len(by_day) else 0.0
        used_share = used / budget if budget > 0 else math.nan
        burn = used_share / (elapsed / n_days) if elapsed > 0 else math.nan
        peak_burn = peak / budget / (window / n_days) if budget > 0 else math.nan
        if used_share >= 1:
            status = "exhausted"
        elif burn > 1:
            status = "burning too fast"
        else:
            status = "on track"
        return {
            "segment": segment,
            "customers": len(members),
            "budget_minutes": budget,
            "downtime_minutes": used,
            "error_budget_used_pct": 100 * used_share,
            "elapsed_pct": 100 * elapsed / n_days,
            "burn_rate": burn,
            "peak_7day_burn_rate": peak_burn,
            "projected_used_pct": 100 * burn,
            "status": status if budget > 0 else "no budget",
        }

    rows = [
        row(segment, members, days.loc[days["segment"] == segment])
        for segment, members in who.groupby("segment", sort=True)
    ]
    rows.append(row(ALL_SEGMENTS, who, days))
    return pd.DataFrame(rows)


def burn_down(
    daily: pd.DataFrame, customers: pd.DataFrame, month: str, slo_pct: float
) -> pd.DataFrame:
    """Cumulative error budget used per segment and day (for the burn-down chart).

    Returns
    -------
    DataFrame
        segment, day, used_pct (cumulative % of the month's budget), elapsed_pct.
    """
    n_days = days_in_month(month)
    per_customer = (1 - slo_pct / 100) * minutes_in_month(month)
    who = customers[["customer_id", "segment"]].drop_duplicates("customer_id").astype(str)
    days = daily.assign(customer_id=daily["customer_id"].astype(str)).merge(who, on="customer_id")
    rows = []
    for segment, members in who.groupby("segment", sort=True):
        spent = days.loc[days["segment"] == segment].groupby("day")["downtime_minutes"].sum()
        cumulative = spent.reindex(range(1, n_days + 1), fill_value=0.0).cumsum()
        budget = per_customer * len(members)
        for day, used in cumulative.items():
            rows.append(
                {
                    "segment": segment,
                    "day": int(day),
                    "used_pct": 100 * used / budget if budget > 0 else math.nan,
                    "elapsed_pct": 100 * day / n_days,
                }
            )
    return pd.DataFrame(rows, columns=["segment", "day", "used_pct", "elapsed_pct"])


def covered_days(data: ReportData) -> float:
    """Days of the report month the data covers: all of them unless it is the data's last
    month, where the latest request, survey or incident timestamp of the month decides."""
    month = data.month
    n_days = days_in_month(month)
    if month < data.window[1]:
        return float(n_days)
    lo, hi = month_sql_bounds(month)
    latest = None
    for table, column in (("requests", "ts"), ("surveys", "ts"), ("incidents", "start_ts")):
        if not data.source.has(table):
            continue
        value = data.source.con.execute(
            f"SELECT max({column}) FROM {table} WHERE {column} >= {lo} AND {column} < {hi}"
        ).fetchone()[0]
        if value is not None:
            value = pd.Timestamp(value)
            value = value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
            latest = value if latest is None else max(latest, value)
    if latest is None:
        return float(n_days)
    return float(min(n_days, math.ceil((latest - month_start(month)) / pd.Timedelta(days=1))))


def month_incidents(data: ReportData) -> pd.DataFrame | None:
    """The clean incidents overlapping the report month (None without an incidents table)."""
    if not data.source.has("incidents"):
        return None
    lo, hi = month_sql_bounds(data.month)
    frame = data.source.con.execute(
        "SELECT customer_id, start_ts, end_ts FROM incidents "
        f"WHERE start_ts < {hi} AND end_ts > {lo}"
    ).df()
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame = with_ids(frame, data.ids)
    for column in ("start_ts", "end_ts"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def budget_burn(data: ReportData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Burn rate table and burn-down curve of the report month (:func:`burn_rates`).

    Returns
    -------
    tuple of DataFrame
        (burn rates per segment, cumulative budget used per segment and day); both empty when
        the source has no incidents table.
    """
    incidents = month_incidents(data)
    if incidents is None:
        return pd.DataFrame(), pd.DataFrame()
    customers = data.panel.loc[data.panel["month"].astype(str) == data.month]
    if "segment" not in customers:
        customers = customers.assign(segment="all")
    slo = data.config.thresholds.slo_availability_pct
    daily = downtime_by_day(incidents, data.month)
    table = burn_rates(daily, customers, data.month, slo, covered_days(data))
    curve = burn_down(daily, customers, data.month, slo)
    return table, curve


def burn_text(burn: pd.DataFrame, month: str):
    """One paragraph on the burn rates, as IPython Markdown."""
    from IPython.display import Markdown

    if burn.empty:
        return Markdown("No incidents table in the data, so no error budget to track.")
    segments = burn.loc[burn["segment"] != ALL_SEGMENTS]
    hot = segments.loc[segments["status"] != "on track"]
    elapsed = float(burn["elapsed_pct"].iloc[-1])
    when = (
        f"With {elapsed:.0f}% of {month_name(month)} covered by the data, "
        if elapsed < 100
        else f"Over the whole of {month_name(month)}, "
    )
    if hot.empty:
        return Markdown(when + "every segment burned its error budget at a sustainable rate.")
    parts = [
        f"**{md_escape(r.segment)}** at {r.burn_rate:.1f}x ({r.status})"
        for r in hot.itertuples(index=False)
    ]
    return Markdown(
        when
        + "these segments burned their error budget faster than the SLO allows: "
        + ", ".join(parts)
        + ". A burn rate of 1 spends exactly the month's budget; above 1 the SLO is missed."
    )


def plot_burn(curve: pd.DataFrame, burn: pd.DataFrame, month: str):
    """Error budget burn-down per segment over the month, and each segment's burn rate.

    Parameters
    ----------
    curve, burn : the two tables of :func:`budget_burn`.
    month : the month reported.

    Returns
    -------
    matplotlib.figure.Figure or None
        None without incident data.
    """
    if curve.empty or burn.empty:
        return None
    colors = palette(sorted(curve["segment"].unique()))
    with figure_style():
        figure, (left, right) = new_figure(13, 4.2, ncols=2)
        for segment, group in curve.groupby("segment", sort=True):
            left.plot(
                group["day"],
                group["used_pct"],
                label=plot_label(segment),
                color=colors[segment],
                linewidth=2,
            )
        days = int(curve["day"].max())
        left.plot(
            [0, days],
            [0, 100],
            color=GUIDE_COLOR,
            linestyle="--",
            linewidth=1,
            label="steady pace (all used by month end)",
        )
        left.axhline(100, color=ALERT_COLOR, linewidth=1)
        left.set_xlim(0, days + 0.5)
        left.set_xlabel(f"day of {month_name(month)}", fontsize=9)
        left.set_ylabel("% of the month's error budget used", fontsize=9)
        left.set_title("Error budget used so far (cumulative)", fontsize=11)
        left.legend(title="segment", fontsize=8, title_fontsize=8, loc="upper left")
        rows = burn.loc[burn["segment"] != ALL_SEGMENTS]
        y = label_positions(right, [plot_label(s) for s in rows["segment"]])
        bars = right.barh(
            y,
            rows["burn_rate"],
            color=[colors.get(s, OTHER_COLOR) for s in rows["segment"]],
        )
        right.bar_label(bars, fmt="%.2fx", fontsize=8, padding=3)
        right.scatter(
            rows["peak_7day_burn_rate"],
            y,
            marker="|",
            s=300,
            color=INK_COLOR,
            label="worst 7 days",
            zorder=3,
        )
        right.axvline(1, color=ALERT_COLOR, linestyle="--", linewidth=1)
        right.set_xlabel(
            "burn rate (budget used / share of month elapsed; 1 = on budget)", fontsize=9
        )
        right.set_title("Burn rate by segment", fontsize=11)
        right.legend(fontsize=8, loc="lower right")
        right.invert_yaxis()
        top = np.nanmax(np.r_[rows["burn_rate"], rows["peak_7day_burn_rate"], 1.0])
        right.set_xlim(0, float(top) * 1.2)
        figure.suptitle(f"Error budget burn, {month_name(month)}", fontsize=12)
    return figure
