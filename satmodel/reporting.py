"""Tables, figures and the summary of the monthly report.

Everything the monthly report notebook (``notebooks/04_monthly_report.ipynb``) shows is
computed here; the notebook only calls these functions, in order, and adds prose. Every table
is a tidy DataFrame with stable column names (display labels are applied by :func:`show`), and
every figure is a :class:`matplotlib.figure.Figure` built without pyplot state, so calling a
function never draws anything by itself.

A report for month ``M`` uses the data up to and including ``M`` only: a backfilled report of
an old month shows what was known then (the quarantine rules, however, see the whole data).
"""

from __future__ import annotations

import calendar
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from satmodel.errors import InputError, SatmodelError

MONTH_PATTERN = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
SUMMARY_SCHEMA_VERSION = 1
ALL_SEGMENTS = "All customers"

# Display labels: tidy column name -> what a manager reads in the report.
LABELS: dict[str, str] = {
    "kpi": "Measure",
    "label": "Measure",
    "unit": "Unit",
    "value": "This month",
    "previous": "Previous month",
    "change": "Change",
    "trailing_mean": "Average of the 12 months before",
    "segment": "Segment",
    "customers": "Customers",
    "availability_target_pct": "Availability SLO (%)",
    "availability_met_pct": "Customers meeting availability SLO (%)",
    "error_budget_used_pct": "Error budget used (%)",
    "customers_over_budget": "Customers over budget",
    "latency_target_ms": "p95 latency SLO (ms)",
    "latency_met_pct": "Customers meeting latency SLO (%)",
    "tickets": "Tickets",
    "resolution_sla_breach_pct": "Tickets resolved late (%)",
    "customer_id": "Customer",
    "availability_pct": "Availability (%)",
    "expected_availability_pct": "Expected availability (%)",
    "latency_p95_ms": "p95 latency (ms)",
    "expected_latency_p95_ms": "Expected p95 latency (ms)",
    "resolution_hours_median": "Median resolution (h)",
    "expected_resolution_hours": "Expected resolution (h)",
    "misses": "Expectations missed",
    "table_name": "Table",
    "column_name": "Column",
    "reason": "Reason",
    "rows": "Rows",
    "example": "Example value",
    "rows_read": "Rows read",
    "rows_quarantined": "Rows quarantined",
    "quarantined_pct": "Quarantined (%)",
    "model": "Model",
    "family": "Family",
    "term": "Driver",
    "estimate": "Estimate",
    "ratio": "Odds / rate ratio per unit",
    "driver": "Driver",
    "step": "For",
    "effect": "Effect (x odds or rate)",
    "effect_low": "95% CI low",
    "effect_high": "95% CI high",
    "formula": "Formula",
    "missed": "Missed on",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "p_value": "p-value",
    "n_obs": "Observations",
    "converged": "Converged",
    "warnings": "Warnings",
}

# Headline measures: key -> (label, unit, higher_is_better).
HEADLINE = {
    "csat_mean": ("CSAT, mean score", "score 1-5", True),
    "csat_top2_pct": ("Satisfied customers (CSAT 4-5)", "% of responses", True),
    "complaint_rate_per_1k": ("Complaints per 1,000 active users", "per 1,000 users", False),
    "responses": ("Survey responses", "responses", None),
    "complaints": ("Complaints", "complaints", None),
    "active_users": ("Active users", "users", None),
}


# --------------------------------------------------------------------------------------
# months


def check_month(value: str, name: str = "month") -> str:
    """Return ``value`` when it is a ``YYYY-MM`` month, else raise :class:`InputError`.

    Parameters
    ----------
    value : the month to check.
    name : how the value is named in the error message (e.g. ``--month``).
    """
    if not isinstance(value, str) or not MONTH_PATTERN.fullmatch(value):
        raise InputError(f"{name} {value!r}: expected a month as YYYY-MM, e.g. 2026-10")
    return value


def add_months(month: str, n: int) -> str:
    """The month ``n`` months after ``month`` (``n`` may be negative)."""
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_range(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last``, both included (empty when first > last)."""
    months = []
    month = first
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    return months


def minutes_in_month(month: str) -> int:
    """Number of minutes in a calendar month."""
    return calendar.monthrange(int(month[:4]), int(month[5:7]))[1] * 24 * 60


def month_name(month: str) -> str:
    """``2026-10`` -> ``October 2026``."""
    return f"{calendar.month_name[int(month[5:7])]} {month[:4]}"


def data_window(source) -> tuple[str, str] | None:
    """First and last month of a source's data, without loading it.

    The months of the ``usage`` table when present (the same window validation uses), else
    the months of the survey, complaint and request timestamps.

    Parameters
    ----------
    source : an open :class:`satmodel.sources.Source`.

    Returns
    -------
    tuple of str or None
        ``(first, last)`` as ``YYYY-MM``, or None when the source holds no dated row.
    """
    con = source.con
    if source.has("usage") and "month" not in source.missing_columns.get("usage", []):
        rows = con.execute(
            "SELECT min(month), max(month) FROM raw.usage "
            "WHERE regexp_full_match(month, '[0-9]{4}-(0[1-9]|1[0-2])')"
        ).fetchall()
        if rows[0][0] is not None:
            return rows[0][0], rows[0][1]
    firsts, lasts = [], []
    for table in ("surveys", "complaints", "requests"):
        if not source.has(table) or "ts" in source.missing_columns.get(table, []):
            continue
        rows = con.execute(
            f"SELECT strftime(min(ts), '%Y-%m'), strftime(max(ts), '%Y-%m') FROM raw.{table} "
            "WHERE ts >= TIMESTAMPTZ '2000-01-01 00:00:00+00'"
        ).fetchall()
        if rows[0][0] is not None:
            firsts.append(rows[0][0])
            lasts.append(rows[0][1])
    return (min(firsts), max(lasts)) if firsts else None


def last_complete_month(window: tuple[str, str] | None, now: datetime | None = None) -> str:
    """The month a report covers by default: the last complete month in the data.

    That is the last month of the data window whose calendar end is in the past: when the
    data reaches into the current (unfinished) month, the month before it.

    Parameters
    ----------
    window : ``(first, last)`` month of the data, from :func:`data_window`.
    now : the current time (UTC); defaults to now.

    Raises
    ------
    InputError
        When the data holds no complete month.
    """
    if window is None:
        raise InputError("data: no dated rows (usage.month, surveys.ts...), so no month to report")
    now = now or datetime.now(UTC)
    current = f"{now.year:04d}-{now.month:02d}"
    month = min(window[1], add_months(current, -1))
    if month < window[0]:
        raise InputError(
            f"data: no complete month yet (data covers {window[0]}..{window[1]}, "
            f"current month {current})"
        )
    return month


# --------------------------------------------------------------------------------------
# loading


@dataclass
class ReportData:
    """Everything one monthly report is computed from.

    Attributes
    ----------
    month : the month reported, ``YYYY-MM``.
    window : first and last month of the data.
    source : the open source, with quarantined rows set aside.
    validation : the :class:`~satmodel.validation.ValidationReport`.
    config : the configuration in force (SLO thresholds...).
    panel : the service panel up to and including ``month``.
    responses : survey responses with their panel columns, up to ``month`` (None when the
        source has no surveys or the features module cannot build them).
    notes : things the reader should know (sections left out and why).
    """

    month: str
    window: tuple[str, str]
    source: Any
    validation: Any
    config: Any
    panel: pd.DataFrame
    responses: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def _up_to(frame: pd.DataFrame | None, month: str) -> pd.DataFrame | None:
    if frame is None or "month" not in frame.columns:
        return frame
    return frame.loc[frame["month"].astype(str) <= month].reset_index(drop=True)


def load_report_data(
    data: str | os.PathLike | None = None,
    month: str | None = None,
    now: datetime | None = None,
) -> ReportData:
    """Open, validate and build the panel for one monthly report.

    Parameters
    ----------
    data : a DuckDB file, a folder of tables or a ``satmodel.toml``; None or ``""`` for the
        default ``data/satmodel.duckdb``.
    month : ``YYYY-MM``; None or ``""`` for the last complete month in the data.
    now : the current time, for the default month (tests).

    Returns
    -------
    ReportData

    Raises
    ------
    InputError
        For a bad month, a month outside the data, or table-level faults of the data.
    """
    from satmodel.features import build_panel
    from satmodel.sources import open_source
    from satmodel.validation import quarantine

    source = open_source(data or None)
    validation = quarantine(source, persist=False)
    window = validation.window or data_window(source)
    if window is None:
        raise InputError("data: no dated rows (usage.month, surveys.ts...), so no month to report")
    month = check_month(month) if month else last_complete_month(window, now)
    if not window[0] <= month <= window[1]:
        raise InputError(f"month {month}: outside the data's months {window[0]}..{window[1]}")
    panel = build_panel(source)
    notes = []
    responses = None
    if source.has("surveys"):
        try:
            from satmodel.features import build_responses

            responses = build_responses(source, panel)
        except (ImportError, SatmodelError) as exc:
            notes.append(f"survey responses could not be built ({exc})")
    return ReportData(
        month=month,
        window=tuple(window),
        source=source,
        validation=validation,
        config=source.config,
        panel=_up_to(panel, month),
        responses=_up_to(responses, month),
        notes=notes,
    )


def intro(data: ReportData):
    """The report's opening lines (month, data window, customers, source) as IPython Markdown."""
    from IPython.display import Markdown

    customers = int(
        data.panel.loc[data.panel["month"].astype(str) == data.month, "customer_id"].nunique()
    )
    lines = [
        f"Report for **{month_name(data.month)}** ({data.month}), "
        f"{customers:,} customers. Data from {data.window[0]} to {data.window[1]}; "
        f"this report uses the months up to {data.month} only.",
        f"Source: `{Path(str(data.source.location)).name}`.",
    ]
    lines += [f"Note: {note}" for note in data.notes]
    return Markdown("\n\n".join(lines))


# --------------------------------------------------------------------------------------
# headline


def _weighted_mean(values: pd.Series, weights: pd.Series) -> float:
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
                _weighted_mean(group["csat_mean"], n) if "csat_mean" in group else math.nan
            )
            row["csat_top2_pct"] = (
                100 * _weighted_mean(group["csat_top2_rate"], n)
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
    by_kpi = kpis.set_index("kpi")
    formats = {"csat_mean": "{:.2f}", "csat_top2_pct": "{:.1f}%", "complaint_rate_per_1k": "{:.2f}"}
    for kpi, fmt in formats.items():
        if kpi not in by_kpi.index or pd.isna(by_kpi.at[kpi, "value"]):
            continue
        row = by_kpi.loc[kpi]
        text = f"- **{row['label']}**: {fmt.format(row['value'])}"
        if pd.notna(row["change"]):
            if abs(row["change"]) < 1e-9:
                verdict = "unchanged"
            else:
                up = row["change"] > 0
                good = up == bool(row["higher_is_better"])
                change = fmt.format(abs(row["change"])).replace("%", " points")
                verdict = f"{'up' if up else 'down'} {change} ({'better' if good else 'worse'})"
            text += f", {verdict} on {month_name(add_months(month, -1))}"
        if pd.notna(row["trailing_mean"]):
            text += f"; 12-month average {fmt.format(row['trailing_mean'])}"
        lines.append(text)
    if not lines:
        lines.append("- No survey or complaint data for this month.")
    return Markdown(f"**{month_name(month)} at a glance**\n\n" + "\n".join(lines))


# --------------------------------------------------------------------------------------
# service levels


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
        availability = pd.to_numeric(panel["availability_pct"], errors="coerce")
        target = thresholds.slo_availability_pct
        budget = (1 - target / 100) * frame["month"].map(minutes_in_month)
        if "downtime_minutes" in panel:
            downtime = pd.to_numeric(panel["downtime_minutes"], errors="coerce")
        else:
            downtime = (100 - availability) / 100 * frame["month"].map(minutes_in_month)
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
        row["resolution_sla_breach_pct"] = 100 * _weighted_mean(
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

    customers = int(
        data.panel.loc[data.panel["month"].astype(str) == data.month, "customer_id"].nunique()
    )
    if gaps.empty:
        return Markdown(f"Every one of the {customers:,} customers got the service they expect.")
    missed = gaps["missed"].str.split(", ").explode().value_counts()
    parts = ", ".join(f"{count:,} on {name}" for name, count in missed.items())
    return Markdown(
        f"**{len(gaps):,} of {customers:,} customers** ({100 * len(gaps) / customers:.0f}%) got "
        f"less than they expect on at least one measure: {parts}. "
        "The customers with the most misses come first."
    )


# --------------------------------------------------------------------------------------
# data quality


def data_quality(validation) -> pd.DataFrame:
    """Rows read and quarantined per table.

    Parameters
    ----------
    validation : a :class:`~satmodel.validation.ValidationReport`.

    Returns
    -------
    DataFrame
        table_name, rows_read, rows_quarantined, quarantined_pct; a last row ``all tables``.
    """
    rejected = validation.rejected
    by_table = (
        rejected.groupby("table_name")["rows"].sum() if len(rejected) else pd.Series(dtype=int)
    )
    rows = []
    for table, read in validation.rows.items():
        quarantined = int(by_table.get(table, 0))
        rows.append(
            {
                "table_name": table,
                "rows_read": int(read),
                "rows_quarantined": quarantined,
                "quarantined_pct": 100 * quarantined / read if read else 0.0,
            }
        )
    total_read = sum(r["rows_read"] for r in rows)
    total_bad = sum(r["rows_quarantined"] for r in rows)
    rows.append(
        {
            "table_name": "all tables",
            "rows_read": total_read,
            "rows_quarantined": total_bad,
            "quarantined_pct": 100 * total_bad / total_read if total_read else 0.0,
        }
    )
    return pd.DataFrame(rows)


def quarantine_reasons(validation) -> pd.DataFrame:
    """Why rows were quarantined: table_name, column_name, reason, rows, example."""
    columns = ["table_name", "column_name", "reason", "rows", "example"]
    rejected = validation.rejected
    if not len(rejected):
        return pd.DataFrame(columns=columns)
    out = rejected[columns].copy()
    out["rows"] = out["rows"].astype(int)
    out["example"] = out["example"].astype(str)
    return out.sort_values(["rows", "table_name", "column_name"], ascending=[False, True, True])


# --------------------------------------------------------------------------------------
# models


@dataclass
class ModelSection:
    """The fitted default models of a report.

    Attributes
    ----------
    results : model name (``csat``, ``top2``, ``complaints``) -> FitResult.
    warnings : one line per flagged problem (``model: message``).
    notes : why a model is absent.
    """

    results: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fit_models(data: ReportData, enabled: bool = True) -> ModelSection:
    """Fit the default CSAT, top-2 and complaint models on the data up to the report month.

    Never raises for a model that cannot be fitted: the reason is kept in ``warnings``, so the
    rest of the report is still produced.

    Parameters
    ----------
    data : the report's data.
    enabled : False skips the models (the section then says so).

    Returns
    -------
    ModelSection
    """
    section = ModelSection()
    if not enabled:
        section.notes.append("models were not fitted (fit_models = False)")
        return section
    try:
        from satmodel.models import fit_default_models
    except ImportError:
        section.notes.append("satmodel.models is not available in this installation")
        return section
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            section.results = fit_default_models(data.responses, data.panel)
        except SatmodelError as exc:
            section.warnings.append(f"models: could not be fitted ({exc})")
    seen = set()
    for warning in caught:
        line = f"fit: {warning.message}"
        if line not in seen:
            seen.add(line)
            section.warnings.append(line)
    for name, result in section.results.items():
        if not result.converged_:
            section.warnings.append(f"{name}: did not converge")
        section.warnings.extend(f"{name}: {w}" for w in result.warnings_)
    if not section.results and not section.warnings:
        section.notes.append("no survey or complaint data to fit the models on")
    return section


# Plain names of the default drivers (satmodel.models.DEFAULT_DRIVERS) for the report.
DRIVER_NAMES = {
    "np.log(latency_p95_ms)": "p95 latency",
    "np.log1p(downtime_minutes)": "downtime minutes",
    "error_rate": "error rate",
    "np.log1p(resolution_hours_median)": "median ticket resolution time",
    "np.maximum(0, np.log(latency_p95_ms / expected_latency_p95_ms))": (
        "p95 latency above the customer's expectation"
    ),
    "np.maximum(0, expected_availability_pct - availability_pct)": (
        "availability below the customer's expectation"
    ),
    "np.log1p(downtime_minutes_lag1)": "last month's downtime minutes",
}
_LN2 = math.log(2)


def describe_driver(term: str) -> tuple[str, float, str]:
    """A driver's plain name, the step its effect is shown for, and that step in words.

    Log terms are shown per doubling, the error rate per percentage point, availability shortfall
    per 0.1 point, segments against the base segment, anything else per unit.

    Returns
    -------
    tuple
        (name, step, step_text): the effect shown is ``exp(estimate * step)``.
    """
    match = re.fullmatch(r"C\((\w+)\)\[T\.(.+)\]", term)
    if match:
        return f"{match.group(1)} {match.group(2)}", 1.0, "vs. the base level"
    name = DRIVER_NAMES.get(term, term)
    if term.startswith("np.maximum(0, np.log("):
        return name, _LN2, "per doubling above expectation"
    if term.startswith(("np.log(", "np.log1p(")):
        return name, _LN2, "per doubling"
    if term == "error_rate":
        return name, 0.01, "per +1 percentage point"
    if term.startswith("np.maximum(0, expected_availability_pct"):
        return name, 0.1, "per 0.1 point below expectation"
    return name, 1.0, "per unit"


def driver_table(models: ModelSection) -> pd.DataFrame:
    """The drivers (coefficients) of every fitted model, intercept left out.

    ``ratio`` is exp(estimate): the odds ratio of the CSAT (ordinal) and top-2 (logit) models,
    the rate ratio of the complaint model (negbin) — the factor by which odds or rate change
    for one unit more of the driver.

    ``effect`` (with ``effect_low``, ``effect_high``) is the same factor for a step a manager can
    picture (``step``, e.g. a doubling of latency; see :func:`describe_driver`).

    Returns
    -------
    DataFrame
        model, family, term, estimate, std_error, ci_low, ci_high, p_value, ratio, driver,
        step, effect, effect_low, effect_high.
    """
    columns = ["model", "family", "term", "estimate", "std_error", "ci_low", "ci_high"]
    columns += ["p_value", "ratio", "driver", "step", "effect", "effect_low", "effect_high"]
    frames = []
    for name, result in models.results.items():
        coefficients = result.coefficients_.copy()
        coefficients = coefficients.loc[coefficients["term"] != "Intercept"]
        coefficients.insert(0, "family", result.family)
        coefficients.insert(0, "model", name)
        frames.append(coefficients)
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    out["ratio"] = np.exp(out["estimate"].astype(float))
    described = [describe_driver(str(term)) for term in out["term"]]
    out["driver"] = [d[0] for d in described]
    steps = np.array([d[1] for d in described])
    out["step"] = [d[2] for d in described]
    for target, source in (
        ("effect", "estimate"),
        ("effect_low", "ci_low"),
        ("effect_high", "ci_high"),
    ):
        out[target] = np.exp(out[source].astype(float).to_numpy() * steps)
    return out[columns]


def driver_view(drivers: pd.DataFrame) -> pd.DataFrame:
    """The drivers table as a manager reads it: model, driver, step, effect and its interval."""
    columns = ["model", "driver", "step", "effect", "effect_low", "effect_high", "p_value"]
    return drivers[columns].reset_index(drop=True)


def model_checks(models: ModelSection) -> pd.DataFrame:
    """One row per model: model, family, n_obs, converged, warnings (formulas: summary.json)."""
    rows = [
        {
            "model": name,
            "family": result.family,
            "n_obs": int(round(float(result.n_obs_))),
            "converged": bool(result.converged_),
            "warnings": "; ".join(result.warnings_) or "none",
        }
        for name, result in models.results.items()
    ]
    return pd.DataFrame(rows, columns=["model", "family", "n_obs", "converged", "warnings"])


# --------------------------------------------------------------------------------------
# figures


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    axes = figure.subplots(1, ncols, squeeze=False)[0]
    return figure, axes


def _style():
    import seaborn as sns

    return sns.axes_style("whitegrid")


def _month_axis(ax, months: list[str]) -> None:
    ax.set_xticks(range(len(months)))
    ax.set_xticklabels([f"{calendar.month_abbr[int(m[5:7])]}\n{m[:4]}" for m in months], fontsize=8)
    ax.set_xlim(-0.5, len(months) - 0.5)


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
    with _style():
        figure, axes = _figure(13, 3.8, ncols=3)
        for ax, (column, title, unit) in zip(axes, panels, strict=True):
            values = monthly[column].astype(float)
            ax.plot(range(len(shown)), values, marker="o", color="#3b6ea8")
            if month in shown:
                i = shown.index(month)
                ax.plot([i], [values.iloc[i]], marker="o", markersize=10, color="#d1495b")
            ax.set_title(title, fontsize=11)
            ax.set_ylabel(unit, fontsize=9)
            _month_axis(ax, shown)
        figure.suptitle(
            f"Customer satisfaction and complaints, {len(shown)} months to {month_name(month)}",
            fontsize=12,
        )
    return figure


def plot_service_levels(panel: pd.DataFrame, config, month: str, months: int = 12):
    """Availability SLO attainment per segment over time, and error budget used this month.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when the panel has no availability (no incidents table).
    """
    import seaborn as sns

    trend = slo_trend(panel, config, month, months)
    if trend.empty:
        return None
    current = slo_attainment(panel, config, month)
    current = current.loc[current["segment"] != ALL_SEGMENTS]
    shown = sorted(trend["month"].unique())
    target = config.thresholds.slo_availability_pct
    with _style():
        figure, (left, right) = _figure(13, 4.2, ncols=2)
        palette = dict(
            zip(sorted(trend["segment"].unique()), sns.color_palette("deep"), strict=False)
        )
        for segment, group in trend.groupby("segment", sort=True):
            x = [shown.index(m) for m in group["month"]]
            left.plot(
                x, group["availability_met_pct"], marker="o", label=segment, color=palette[segment]
            )
        left.set_ylim(-5, 105)
        left.set_ylabel("% of customers meeting the SLO", fontsize=9)
        left.set_title(f"Customers meeting the {target:g}% availability SLO", fontsize=11)
        left.legend(title="segment", fontsize=8, title_fontsize=8, loc="lower left")
        _month_axis(left, shown)
        bars = right.barh(
            current["segment"],
            current["error_budget_used_pct"],
            color=[palette.get(s, "#777777") for s in current["segment"]],
        )
        right.bar_label(bars, fmt="%.0f%%", fontsize=8, padding=3)
        right.axvline(100, color="#d1495b", linestyle="--", linewidth=1)
        right.text(100, -0.6, " budget", color="#d1495b", fontsize=8, va="bottom")
        right.set_xlabel("% of the month's downtime budget used (100% = SLO just met)", fontsize=9)
        right.set_title(f"Error budget used, {month_name(month)}", fontsize=11)
        right.invert_yaxis()
        right.set_xlim(0, max(110, float(np.nanmax(current["error_budget_used_pct"])) * 1.15))
        figure.suptitle("Service levels by segment", fontsize=12)
    return figure


def plot_drivers(drivers: pd.DataFrame, model: str = "top2"):
    """Forest plot of one model's drivers: odds or rate ratio with its 95% interval.

    Parameters
    ----------
    drivers : the output of :func:`driver_table`.
    model : which model to draw (``top2`` by default: the easiest to read).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when that model was not fitted.
    """
    from matplotlib.ticker import FuncFormatter

    rows = drivers.loc[drivers["model"] == model].dropna(subset=["estimate"])
    if rows.empty:
        return None
    rows = rows.iloc[::-1]
    ratio = rows["effect"].astype(float)
    low = rows["effect_low"].astype(float)
    high = rows["effect_high"].astype(float)
    what = {
        "top2": "odds of a satisfied response (CSAT 4-5)",
        "csat": "odds of a higher CSAT score",
        "complaints": "complaint rate",
    }.get(model, "outcome")
    with _style():
        figure, (ax,) = _figure(10, 0.55 * len(rows) + 1.6)
        y = np.arange(len(rows))
        significant = (rows["p_value"].astype(float) < 0.05).to_numpy()
        colors = np.where(significant, "#3b6ea8", "#9aa5b1")
        ax.hlines(y, low, high, color=colors, linewidth=2)
        ax.scatter(ratio, y, color=colors, zorder=3)
        ax.axvline(1, color="#555555", linewidth=1, linestyle="--")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_yticks(y)
        ax.set_yticklabels(
            [f"{d}\n({step})" for d, step in zip(rows["driver"], rows["step"], strict=True)],
            fontsize=8,
        )
        ax.set_xlabel(f"factor on the {what} (log scale; 1 = no effect)", fontsize=9)
        ax.set_title(
            f"What drives the {what}, with 95% intervals\n(blue: significant at the 5% level)",
            fontsize=11,
        )
    return figure


# --------------------------------------------------------------------------------------
# display


def _number(precision: int, whole: bool = False):
    """A formatter: ``-`` for missing, yes/no for booleans, whole numbers without decimals."""

    def formatted(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, bool | np.bool_):
            return "yes" if value else "no"
        if whole or isinstance(value, int | np.integer):
            return f"{float(value):,.0f}"
        return f"{float(value):,.{precision}f}"

    return formatted


def _p_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _whole(column: pd.Series) -> bool:
    values = pd.to_numeric(column, errors="coerce").dropna()
    return bool(len(values)) and bool((values == values.round()).all())


def show(
    frame: pd.DataFrame,
    caption: str | None = None,
    precision: int = 2,
    key: str = "t",
    empty: str = "Nothing to show.",
):
    """A table for the report: readable column labels, no index, numbers rounded.

    Columns of whole numbers are shown without decimals (in the headline table, which mixes
    measures by row, every whole number is), p-values as ``<0.001`` when tiny, text is
    left-aligned, missing values are ``-``.

    Parameters
    ----------
    frame : a tidy table.
    caption : shown above the table.
    precision : decimals of other numbers.
    key : a stable id for the table's HTML (keeps the HTML deterministic).
    empty : the sentence shown instead of an empty table.

    Returns
    -------
    pandas.io.formats.style.Styler or IPython.display.Markdown
    """
    if frame.empty:
        from IPython.display import Markdown

        return Markdown(f"**{caption}**: {empty}" if caption else empty)
    shown = frame.drop(columns=[c for c in ("kpi", "higher_is_better") if c in frame])
    text = [c for c in shown.columns if not pd.api.types.is_numeric_dtype(shown[c])]
    numbers = [c for c in shown.columns if c not in text]
    labels = {c: LABELS.get(c, c.replace("_", " ")) for c in shown.columns}
    shown = shown.rename(columns=labels)
    styler = shown.style.set_uuid(key).hide(axis="index")
    by_cell = "kpi" in frame.columns
    for column in numbers:
        if column == "p_value":
            styler = styler.format(_p_value, subset=[labels[column]])
        elif by_cell:
            styler = styler.format(
                lambda v: _number(precision, whole=_whole(pd.Series([v])))(v),
                subset=[labels[column]],
            )
        else:
            styler = styler.format(
                _number(precision, whole=_whole(shown[labels[column]])), subset=[labels[column]]
            )
    styler = styler.format(na_rep="-", subset=[labels[c] for c in text])
    if text:
        styler = styler.set_properties(subset=[labels[c] for c in text], **{"text-align": "left"})
    if caption:
        styler = styler.set_caption(caption)
    return styler.set_table_styles(
        [
            {"selector": "caption", "props": "caption-side: top; font-weight: bold;"},
            {"selector": "th", "props": "text-align: left;"},
        ]
    )


def notes_markdown(*groups: list[str]):
    """A bullet list of notes and warnings as IPython Markdown (``None`` when there are none)."""
    from IPython.display import Markdown

    lines = [line for group in groups for line in group]
    if not lines:
        return Markdown("No warnings.")
    return Markdown("\n".join(f"- {line}" for line in lines))


# --------------------------------------------------------------------------------------
# summary


def _plain(value: Any) -> Any:
    """JSON-ready value: numpy scalars to Python, NaN to None, floats rounded to 6 places."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_plain(dict(zip(frame.columns, row, strict=True))) for row in frame.itertuples(False)]


def build_summary(
    data: ReportData,
    kpis: pd.DataFrame,
    slo: pd.DataFrame,
    gaps: pd.DataFrame,
    quality: pd.DataFrame,
    reasons: pd.DataFrame,
    models: ModelSection,
    drivers: pd.DataFrame,
) -> dict[str, Any]:
    """The machine-readable summary of a report (``summary.json``).

    Keys, in this order: schema_version, month, data_window, kpis, service_levels, gaps,
    drivers, targets, data_quality, notes, warnings. Floats are rounded to 6 decimals and NaN
    is written as null, so the same data always gives the same file.

    Returns
    -------
    dict
    """
    thresholds = data.config.thresholds
    kpi_block = {
        row["kpi"]: {
            "label": row["label"],
            "unit": row["unit"],
            "value": row["value"],
            "previous": row["previous"],
            "change": row["change"],
            "trailing_mean": row["trailing_mean"],
        }
        for row in kpis.to_dict("records")
    }
    missed = gaps["missed"].str.split(", ").explode() if len(gaps) else pd.Series(dtype=str)
    gap_block = {
        "customers": int(
            data.panel.loc[data.panel["month"].astype(str) == data.month, "customer_id"].nunique()
        ),
        "customers_missing_any": len(gaps),
        "by_expectation": {
            name: int((missed == name).sum()) for name in ("availability", "latency", "resolution")
        },
        "worst": _records(gaps.head(10)),
    }
    driver_block = {}
    for name, result in models.results.items():
        rows = drivers.loc[drivers["model"] == name].drop(columns=["model", "family"])
        driver_block[name] = {
            "family": result.family,
            "formula": result.formula,
            "n_obs": result.n_obs_,
            "converged": bool(result.converged_),
            "warnings": list(result.warnings_),
            "params": _records(rows),
        }
    summary = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "month": data.month,
        "data_window": list(data.window),
        "kpis": kpi_block,
        "service_levels": _records(slo),
        "gaps": gap_block,
        "drivers": driver_block,
        "targets": {
            "slo_availability_pct": thresholds.slo_availability_pct,
            "slo_latency_p95_ms": thresholds.slo_latency_p95_ms,
            "default_resolution_sla_hours": thresholds.default_resolution_sla_hours,
            "apdex_t_ms": thresholds.apdex_t_ms,
            "satisfied_cutoff": thresholds.satisfied_cutoff,
        },
        "data_quality": {
            "rows_read": int(quality["rows_read"].iloc[-1]) if len(quality) else 0,
            "rows_quarantined": int(quality["rows_quarantined"].iloc[-1]) if len(quality) else 0,
            "tables": _records(quality.iloc[:-1]),
            "reasons": _records(reasons),
        },
        "notes": list(data.notes) + list(models.notes),
        "warnings": list(models.warnings),
    }
    return _plain(summary)


def write_summary(summary: dict[str, Any], out_dir: str | os.PathLike | None) -> Path | None:
    """Write ``summary.json`` into ``out_dir`` (atomically); do nothing when out_dir is empty.

    Parameters
    ----------
    summary : the output of :func:`build_summary`.
    out_dir : the folder; ``""`` or None when the notebook runs interactively.

    Returns
    -------
    Path or None
        The file written.
    """
    if not out_dir:
        return None
    target = Path(out_dir) / "summary.json"
    text = json.dumps(_plain(summary), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    tmp = target.with_name(".summary.json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target
