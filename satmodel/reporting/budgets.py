"""Error budget section: downtime per day, burn rates and the burn-down chart."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from satmodel.calendar import days_in_month, minutes_in_month, month_name
from satmodel.features.telemetry import covered_days, downtime_by_period
from satmodel.reporting.data import ALL_SEGMENTS, ReportData
from satmodel.reporting.figures import (
    ALERT_COLOR,
    GUIDE_COLOR,
    INK_COLOR,
    OTHER_COLOR,
    figure_style,
    label_positions,
    legend_below,
    new_figure,
    palette,
)
from satmodel.reporting.labels import md_escape, plot_label, segment_label
from satmodel.reporting.pseudonyms import with_ids


def burn_rates(
    daily: pd.DataFrame,
    customers: pd.DataFrame,
    month: str,
    slo_pct: float,
    elapsed_days: float | None = None,
    timezone: str = "UTC",
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
    daily : customer_id, day, downtime_minutes (from
        :func:`satmodel.features.telemetry.downtime_by_period`).
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
    per_customer = (1 - slo_pct / 100) * minutes_in_month(month, timezone)
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
    daily: pd.DataFrame,
    customers: pd.DataFrame,
    month: str,
    slo_pct: float,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Cumulative error budget used per segment and day (for the burn-down chart).

    Returns
    -------
    DataFrame
        segment, day, used_pct (cumulative % of the month's budget), elapsed_pct.
    """
    n_days = days_in_month(month)
    per_customer = (1 - slo_pct / 100) * minutes_in_month(month, timezone)
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


OVER_BUDGET = "over budget"
WILL_BE_OVER = "will be over at this rate"
ON_TRACK = "on track"
MONTH_COMPLETE = "month complete"
BUDGET_STATUSES = (OVER_BUDGET, WILL_BE_OVER, ON_TRACK)
CUSTOMER_BUDGET_COLUMNS = [
    "customer_id",
    "segment",
    "slo_availability_pct",
    "budget_minutes",
    "downtime_minutes",
    "budget_used_pct",
    "elapsed_pct",
    "projected_used_pct",
    "projection",
    "status",
]
SEGMENT_COLUMNS = [
    "segment",
    "customers",
    "over_budget",
    "will_be_over",
    "on_track",
    "over_budget_pct",
    "downtime_minutes",
    "median_budget_used_pct",
    "worst_budget_used_pct",
]


def customer_slo(customers: pd.DataFrame, slo_pct: float) -> pd.DataFrame:
    """Each customer's availability SLO: its expected_availability_pct, else ``slo_pct``.

    Returns
    -------
    DataFrame
        customer_id, segment (strings), slo_availability_pct; one row per customer.
    """
    who = customers.drop_duplicates("customer_id")
    expected = (
        pd.to_numeric(who["expected_availability_pct"], errors="coerce")
        if "expected_availability_pct" in who
        else pd.Series(np.nan, index=who.index)
    )
    return pd.DataFrame(
        {
            "customer_id": who["customer_id"].astype(str).to_numpy(),
            "segment": who["segment"].astype(str).to_numpy(),
            "slo_availability_pct": expected.fillna(float(slo_pct)).astype(float).to_numpy(),
        }
    )


def customer_budgets(
    daily: pd.DataFrame,
    customers: pd.DataFrame,
    month: str,
    slo_pct: float,
    elapsed_days: float | None = None,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Each customer's error budget of the month: what it may lose, what it lost.

    A customer's budget is the downtime its own availability SLO allows in the whole month,
    ``(1 - SLO/100) x minutes in the month``, with SLO = its expected_availability_pct, else
    ``slo_pct``. While the month is not over (``elapsed_days`` short of it), the budget used is
    projected to the month's end at the pace so far; a complete month has no projection.

    Parameters
    ----------
    daily : customer_id, day, downtime_minutes (from
        :func:`satmodel.features.telemetry.downtime_by_period`).
    customers : customer_id, segment and (optional) expected_availability_pct of every
        customer of the month, with or without downtime.
    month : ``YYYY-MM``.
    slo_pct : the default availability SLO, e.g. 99.9.
    elapsed_days : days of the month the data covers (default: all of them).

    Returns
    -------
    DataFrame
        One row per customer, the most used budget first: customer_id, segment,
        slo_availability_pct, budget_minutes, downtime_minutes, budget_used_pct (NaN for a
        zero budget), elapsed_pct, projected_used_pct (NaN for a complete month), projection
        (``month complete`` or the projected share in words), status (``over budget``:
        more downtime than the budget; ``will be over at this rate``; ``on track``).
    """
    n_days = days_in_month(month)
    elapsed = float(n_days if elapsed_days is None else min(max(elapsed_days, 0), n_days))
    complete = elapsed >= n_days
    who = customer_slo(customers, slo_pct)
    days = daily.assign(customer_id=daily["customer_id"].astype(str))
    if not complete:
        days = days.loc[days["day"] <= math.ceil(elapsed)]
    spent = days.groupby("customer_id")["downtime_minutes"].sum()
    budget = (1 - who["slo_availability_pct"] / 100) * minutes_in_month(month, timezone)
    downtime = who["customer_id"].map(spent).fillna(0.0).astype(float)
    used = (100 * downtime / budget).where(budget > 0)
    share = elapsed / n_days
    projected = used / share if (not complete and share > 0) else pd.Series(np.nan, who.index)
    over = downtime > budget
    will = ~over & (projected > 100)
    status = np.where(over, OVER_BUDGET, np.where(will, WILL_BE_OVER, ON_TRACK))
    projection = (
        pd.Series(MONTH_COMPLETE, index=who.index)
        if complete
        else projected.map(
            lambda p: f"{p:,.0f}% by month end at this rate" if math.isfinite(p) else "-"
        )
    )
    table = who.assign(
        budget_minutes=budget,
        downtime_minutes=downtime,
        budget_used_pct=used,
        elapsed_pct=100 * share,
        projected_used_pct=projected,
        projection=projection,
        status=status,
    )
    order = table.assign(
        _rank=table["status"].map({s: i for i, s in enumerate(BUDGET_STATUSES)}),
        _used=table["budget_used_pct"].fillna(np.inf).where(table["downtime_minutes"] > 0, 0.0),
    ).sort_values(["_rank", "_used", "customer_id"], ascending=[True, False, True])
    return order[CUSTOMER_BUDGET_COLUMNS].reset_index(drop=True)


def segment_budgets(budgets: pd.DataFrame) -> pd.DataFrame:
    """Per segment, how many customers are over their own error budget.

    Parameters
    ----------
    budgets : :func:`customer_budgets`.

    Returns
    -------
    DataFrame
        One row per segment (alphabetical) and a last row ``All customers``: segment,
        customers, over_budget, will_be_over, on_track, over_budget_pct (% of the segment's
        customers), downtime_minutes, median_budget_used_pct, worst_budget_used_pct.
    """

    def row(segment: str, members: pd.DataFrame) -> dict[str, Any]:
        n = len(members)
        over = int((members["status"] == OVER_BUDGET).sum())
        used = members["budget_used_pct"].dropna()
        return {
            "segment": segment,
            "customers": n,
            "over_budget": over,
            "will_be_over": int((members["status"] == WILL_BE_OVER).sum()),
            "on_track": int((members["status"] == ON_TRACK).sum()),
            "over_budget_pct": 100 * over / n if n else math.nan,
            "downtime_minutes": float(members["downtime_minutes"].sum()),
            "median_budget_used_pct": float(used.median()) if len(used) else math.nan,
            "worst_budget_used_pct": float(used.max()) if len(used) else math.nan,
        }

    rows = [row(s, members) for s, members in budgets.groupby("segment", sort=True)]
    rows.append(row(ALL_SEGMENTS, budgets))
    return pd.DataFrame(rows, columns=SEGMENT_COLUMNS)


def budget_inputs(data: ReportData) -> tuple[pd.DataFrame, pd.DataFrame, float] | None:
    """What the error budgets of the report month are computed from.

    Returns
    -------
    tuple or None
        (downtime per customer and day, from
        :func:`satmodel.features.telemetry.downtime_by_period`, ids as the report shows them;
        the customers of the month from the panel, with segment and
        expected_availability_pct; the days of the month the data covers), or None when the
        source has no incidents table.
    """
    if not data.source.has("incidents"):
        return None
    daily = with_ids(downtime_by_period(data.source, data.month, "D"), data.ids)
    customers = data.panel.loc[data.panel["month"].astype(str) == data.month]
    if "segment" not in customers:
        customers = customers.assign(segment="all")
    return daily, customers, covered_days(data.source, data.month)


def budget_burn(data: ReportData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Burn rate table and burn-down curve of the report month (:func:`burn_rates`).

    Returns
    -------
    tuple of DataFrame
        (burn rates per segment, cumulative budget used per segment and day); both empty when
        the source has no incidents table.
    """
    inputs = budget_inputs(data)
    if inputs is None:
        return pd.DataFrame(), pd.DataFrame()
    daily, customers, elapsed = inputs
    slo, zone = data.config.thresholds.slo_availability_pct, data.config.calendar.timezone
    table = burn_rates(daily, customers, data.month, slo, elapsed, zone)
    curve = burn_down(daily, customers, data.month, slo, timezone=zone)
    return table, curve


def customer_budget_section(data: ReportData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-customer error budgets of the report month and their per-segment summary.

    Returns
    -------
    tuple of DataFrame
        (:func:`customer_budgets`, :func:`segment_budgets`); both empty when the source has
        no incidents table.
    """
    inputs = budget_inputs(data)
    if inputs is None:
        return pd.DataFrame(columns=CUSTOMER_BUDGET_COLUMNS), pd.DataFrame(columns=SEGMENT_COLUMNS)
    daily, customers, elapsed = inputs
    slo, zone = data.config.thresholds.slo_availability_pct, data.config.calendar.timezone
    table = customer_budgets(daily, customers, data.month, slo, elapsed, zone)
    return table, segment_budgets(table)


def budgets_text(segments: pd.DataFrame, month: str):
    """One paragraph on the per-customer error budgets, as IPython Markdown."""
    from IPython.display import Markdown

    if segments.empty:
        return Markdown("No incidents table in the data, so no error budget to track.")
    everyone = segments.loc[segments["segment"] == ALL_SEGMENTS].iloc[0]
    by_segment = segments.loc[segments["segment"] != ALL_SEGMENTS]
    text = (
        f"In {month_name(month)}, **{everyone.over_budget:,} of {everyone.customers:,} "
        "customers** had more downtime than their own availability SLO allows"
    )
    if everyone.will_be_over:
        text += f", and {everyone.will_be_over:,} more will be at the pace so far"
    hit = by_segment.loc[by_segment["over_budget"] > 0]
    if len(hit):
        text += (
            " ("
            + ", ".join(
                f"{md_escape(segment_label(r.segment))}: {r.over_budget:,} of {r.customers:,}"
                for r in hit.itertuples(index=False)
            )
            + ")"
        )
    return Markdown(
        text + ". Each customer's budget is its own: the downtime its expected availability "
        "(or the SLO, where it states none) allows in the month, so one customer's bad month "
        "is not averaged away by the others."
    )


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
        f"**{md_escape(segment_label(r.segment))}** at {r.burn_rate:.1f}x ({r.status})"
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
                label=plot_label(segment_label(segment)),
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
        rows = burn.loc[burn["segment"] != ALL_SEGMENTS]
        y = label_positions(right, [plot_label(segment_label(s)) for s in rows["segment"]])
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
        legend_below(figure, left, right, ncols=6)
        right.invert_yaxis()
        top = np.nanmax(np.r_[rows["burn_rate"], rows["peak_7day_burn_rate"], 1.0])
        right.set_xlim(0, float(top) * 1.2)
        figure.suptitle(f"Error budget burn, {month_name(month)}", fontsize=12)
    return figure
