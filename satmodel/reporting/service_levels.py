"""Service levels section: SLO attainment, error budget used and expectation gaps."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from satmodel.calendar import add_months, minutes_in_month, month_name
from satmodel.reporting.data import ALL_SEGMENTS, ReportData
from satmodel.reporting.figures import (
    ALERT_COLOR,
    OTHER_COLOR,
    figure_style,
    label_positions,
    legend_below,
    month_axis,
    new_figure,
    palette,
)
from satmodel.reporting.headline import weighted_mean
from satmodel.reporting.labels import plot_label, segment_label


def _slo_frame(panel: pd.DataFrame, config) -> pd.DataFrame:
    """Per customer-month: SLO targets, whether they were met, error budget."""
    thresholds = config.thresholds
    frame = pd.DataFrame(
        {
            "customer_id": panel["customer_id"].astype(str),
            "month": panel["month"].astype(str),
            "segment": (
                panel["segment"].astype(str)
                if "segment" in panel
                else pd.Series("all", panel.index)
            ),
        }
    )
    if "availability_pct" in panel:

        def minutes(month: str) -> int:
            return minutes_in_month(month, config.calendar.timezone)

        availability = pd.to_numeric(panel["availability_pct"], errors="coerce")
        target = thresholds.slo_availability_pct
        budget = (1 - target / 100) * frame["month"].map(minutes)
        if "downtime_minutes" in panel:
            downtime = pd.to_numeric(panel["downtime_minutes"], errors="coerce")
        else:
            downtime = (100 - availability) / 100 * frame["month"].map(minutes)
        frame["availability_target_pct"] = target
        frame["availability_met"] = (availability >= target).where(availability.notna())
        frame["budget_minutes"] = budget
        frame["downtime_minutes"] = downtime
    if "latency_p95_ms" in panel:
        latency = pd.to_numeric(panel["latency_p95_ms"], errors="coerce")
        frame["latency_target_ms"] = thresholds.slo_latency_p95_ms
        frame["latency_met"] = (latency <= thresholds.slo_latency_p95_ms).where(latency.notna())
    if "tickets" in panel and "sla_breach_rate" in panel:
        frame["tickets"] = pd.to_numeric(panel["tickets"], errors="coerce").fillna(0)
        frame["sla_breach_rate"] = pd.to_numeric(panel["sla_breach_rate"], errors="coerce")
    return frame


def _share(flags: pd.Series) -> float:
    flags = flags.dropna()
    return float(100 * flags.astype(bool).mean()) if len(flags) else math.nan


def _slo_row(segment: str, group: pd.DataFrame) -> dict[str, Any]:
    row: dict[str, Any] = {"segment": segment, "customers": int(group["customer_id"].nunique())}
    if "availability_met" in group:
        budget = float(group["budget_minutes"].sum())
        used = float(group["downtime_minutes"].fillna(0).sum())
        row["availability_target_pct"] = float(group["availability_target_pct"].iloc[0])
        row["availability_met_pct"] = _share(group["availability_met"])
        row["error_budget_used_pct"] = 100 * used / budget if budget > 0 else math.nan
        row["customers_over_budget"] = int(
            (group["downtime_minutes"].fillna(0) > group["budget_minutes"]).sum()
        )
    if "latency_met" in group:
        row["latency_target_ms"] = float(group["latency_target_ms"].iloc[0])
        row["latency_met_pct"] = _share(group["latency_met"])
    if "tickets" in group:
        row["tickets"] = int(group["tickets"].sum())
        row["resolution_sla_breach_pct"] = 100 * weighted_mean(
            group["sla_breach_rate"], group["tickets"]
        )
    return row


def slo_attainment(panel: pd.DataFrame, config, month: str) -> pd.DataFrame:
    """SLO attainment and error budget per segment for one month.

    The SLOs are the team's own thresholds from the config (``[thresholds]``
    ``slo_availability_pct``, ``slo_latency_p95_ms``; resolution uses each customer's expected
    resolution time or ``default_resolution_sla_hours``, as in the panel's
    ``sla_breach_rate``). The error budget of a customer-month is the downtime the
    availability SLO allows, ``(1 - SLO/100) x minutes in the month``; a segment's budget used is
    its total downtime over its total budget.

    Parameters
    ----------
    panel : the service panel.
    config : the :class:`~satmodel.config.Config` in force.
    month : the month reported.

    Returns
    -------
    DataFrame
        One row per segment (alphabetical) plus a last row ``All customers``: segment,
        customers, availability_target_pct, availability_met_pct, error_budget_used_pct,
        customers_over_budget, latency_target_ms, latency_met_pct, tickets,
        resolution_sla_breach_pct (columns whose panel source is absent are left out).
    """
    frame = _slo_frame(panel, config)
    frame = frame.loc[frame["month"] == month]
    rows = [_slo_row(segment, group) for segment, group in frame.groupby("segment", sort=True)]
    rows.append(_slo_row(ALL_SEGMENTS, frame))
    return pd.DataFrame(rows)


def slo_trend(panel: pd.DataFrame, config, month: str, months: int = 12) -> pd.DataFrame:
    """Share of customers meeting the availability SLO, per segment and month.

    Returns
    -------
    DataFrame
        month, segment, availability_met_pct, error_budget_used_pct for the ``months`` months
        up to ``month`` (empty when the panel has no availability).
    """
    frame = _slo_frame(panel, config)
    columns = ["month", "segment", "availability_met_pct", "error_budget_used_pct"]
    if "availability_met" not in frame:
        return pd.DataFrame(columns=columns)
    frame = frame.loc[(frame["month"] > add_months(month, -months)) & (frame["month"] <= month)]
    rows = []
    for (m, segment), group in frame.groupby(["month", "segment"], sort=True):
        row = _slo_row(segment, group)
        rows.append({"month": m, **{c: row[c] for c in columns[1:]}})
    return pd.DataFrame(rows, columns=columns)


def expectation_gaps(panel: pd.DataFrame, config, month: str) -> pd.DataFrame:
    """Customers whose service missed their own expectation in one month.

    Each customer's expected availability, p95 latency and resolution time (the ``expected_*``
    columns; the config's SLO when a customer has none) against what they got: availability
    below expected, p95 latency above expected, median resolution above expected.

    Parameters
    ----------
    panel : the service panel.
    config : the configuration in force.
    month : the month reported.

    Returns
    -------
    DataFrame
        One row per customer that missed at least one expectation, most misses first: customer_id,
        segment, availability_pct, expected_availability_pct, latency_p95_ms,
        expected_latency_p95_ms, resolution_hours_median, expected_resolution_hours, misses,
        missed (comma-separated: availability, latency, resolution).
    """
    thresholds = config.thresholds
    rows = panel.loc[panel["month"].astype(str) == month].copy()
    checks = {
        "availability": (
            "availability_pct",
            "expected_availability_pct",
            thresholds.slo_availability_pct,
            -1,
        ),
        "latency": ("latency_p95_ms", "expected_latency_p95_ms", thresholds.slo_latency_p95_ms, 1),
        "resolution": (
            "resolution_hours_median",
            "expected_resolution_hours",
            thresholds.default_resolution_sla_hours,
            1,
        ),
    }
    columns = ["customer_id", "segment"]
    missed = pd.DataFrame(index=rows.index)
    for name, (actual, expected, default, sign) in checks.items():
        if actual not in rows:
            continue
        value = pd.to_numeric(rows[actual], errors="coerce")
        target = (
            pd.to_numeric(rows[expected], errors="coerce").fillna(default)
            if expected in rows
            else pd.Series(default, index=rows.index, dtype=float)
        )
        rows[expected] = target
        missed[name] = (sign * (value - target) > 0) & value.notna()
        columns += [actual, expected]
    if "segment" not in rows:
        rows["segment"] = "all"
    rows["misses"] = missed.sum(axis=1).astype(int) if len(missed.columns) else 0
    rows["missed"] = [
        ", ".join(name for name in missed.columns if missed.at[i, name]) for i in rows.index
    ]
    out = rows.loc[rows["misses"] > 0, [*columns, "misses", "missed"]]
    out = out.sort_values(["misses", "customer_id"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)


def gaps_text(gaps: pd.DataFrame, data: ReportData):
    """One paragraph on the expectation gaps of the month, as IPython Markdown."""
    from IPython.display import Markdown

    rows = data.panel.loc[data.panel["month"].astype(str) == data.month]
    customers = int(rows["customer_id"].nunique())
    if gaps.empty:
        return Markdown(_no_gap_text(rows, customers))
    missed = gaps["missed"].str.split(", ").explode().value_counts()
    parts = ", ".join(f"{count:,} on {name}" for name, count in missed.items())
    return Markdown(
        f"**{len(gaps):,} of {customers:,} customers** ({100 * len(gaps) / customers:.0f}%) got "
        f"less than they expect on at least one measure: {parts}. "
        "The customers with the most misses come first."
    )


# measure checked -> (panel column, the customers' expectation column)
GAP_MEASURES = {
    "availability": ("availability_pct", "expected_availability_pct"),
    "latency": ("latency_p95_ms", "expected_latency_p95_ms"),
    "resolution": ("resolution_hours_median", "expected_resolution_hours"),
}


def _no_gap_text(rows: pd.DataFrame, customers: int) -> str:
    """What a month without a missed expectation shows: only what the panel could check."""
    measured = [
        name
        for name, (actual, _) in GAP_MEASURES.items()
        if actual in rows and rows[actual].notna().any()
    ]
    if not measured:
        return (
            "No service measure could be held against expectations this month (the panel has "
            "no availability, p95 latency or resolution time)."
        )
    stated = [
        name
        for name in measured
        if GAP_MEASURES[name][1] in rows and rows[GAP_MEASURES[name][1]].notna().any()
    ]
    names = ", ".join(measured)
    if not stated:
        return (
            f"No customer expectations are recorded (no expected_* values), so each of the "
            f"{customers:,} customers was held against our own SLOs on {names}: all met them."
        )
    return (
        f"Every one of the {customers:,} customers got the service they expect on {names} "
        "(our SLO standing in where a customer stated no expectation)."
    )


def plot_service_levels(panel: pd.DataFrame, config, month: str, months: int = 12):
    """Availability SLO attainment per segment over time, and error budget used this month.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when the panel has no availability (no incidents table).
    """
    trend = slo_trend(panel, config, month, months)
    if trend.empty:
        return None
    current = slo_attainment(panel, config, month)
    current = current.loc[current["segment"] != ALL_SEGMENTS]
    shown = sorted(trend["month"].unique())
    target = config.thresholds.slo_availability_pct
    with figure_style():
        figure, (left, right) = new_figure(13, 4.2, ncols=2)
        colors = palette(sorted(trend["segment"].unique()))
        for segment, group in trend.groupby("segment", sort=True):
            x = [shown.index(m) for m in group["month"]]
            left.plot(
                x,
                group["availability_met_pct"],
                marker="o",
                label=plot_label(segment_label(segment)),
                color=colors[segment],
            )
        left.set_ylim(-5, 105)
        left.set_ylabel("% of customers meeting the SLO", fontsize=9)
        left.set_title(f"Customers meeting the {target:g}% availability SLO", fontsize=11)
        month_axis(left, shown)
        y = label_positions(right, [plot_label(segment_label(s)) for s in current["segment"]])
        bars = right.barh(
            y,
            current["error_budget_used_pct"],
            color=[colors.get(s, OTHER_COLOR) for s in current["segment"]],
        )
        right.bar_label(bars, fmt="%.0f%%", fontsize=8, padding=3)
        right.axvline(100, color=ALERT_COLOR, linestyle="--", linewidth=1)
        right.text(100, -0.6, " budget", color=ALERT_COLOR, fontsize=8, va="bottom")
        right.set_xlabel("% of the month's downtime budget used (100% = SLO just met)", fontsize=9)
        right.set_title(f"Error budget used, {month_name(month)}", fontsize=11)
        legend_below(figure, left, title="segment")
        right.invert_yaxis()
        right.set_xlim(0, max(110, float(np.nanmax(current["error_budget_used_pct"])) * 1.15))
        figure.suptitle("Service levels by segment", fontsize=12)
    return figure
