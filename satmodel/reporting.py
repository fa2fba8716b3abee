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
import contextlib
import hashlib
import hmac
import html
import json
import math
import os
import re
import secrets
import tempfile
import warnings
from collections.abc import Callable
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
    "quarter_ago": "Same month last quarter",
    "change_quarter": "Change on last quarter",
    "trend": "Trend (vs. previous month)",
    "budget_minutes": "Error budget (min)",
    "downtime_minutes": "Downtime (min)",
    "elapsed_pct": "Month elapsed (%)",
    "burn_rate": "Burn rate (x)",
    "peak_7day_burn_rate": "Worst 7 days burn rate (x)",
    "projected_used_pct": "Budget used at this rate by month end (%)",
    "status": "Status",
    "previous_estimate": "Coefficient last month",
    "coefficient": "Coefficient this month",
    "z": "z",
    "flagged": "Changed?",
    "share_pct": "Share of explained variation (%)",
    "share_low_pct": "95% CI low",
    "share_high_pct": "95% CI high",
    "rank": "Rank",
    "rank_range": "Rank, 95% range",
    "csat_target": "CSAT target",
    "current_csat": "Predicted CSAT now",
    "met_now": "Target met now",
    "lever": "Service measure",
    "direction": "Needs",
    "current_level": "Now",
    "required": "Level needed",
    "feasible": "Reachable",
    "extrapolated": "Beyond the data",
    "measured_pct": "Measured (% of customer-months)",
    "p05": "5th percentile",
    "median": "Median",
    "p95": "95th percentile",
    "mean": "Mean",
    "csat_mean": "CSAT mean",
    "csat_top2_rate": "Satisfied share",
    "complaint_rate_per_1k": "Complaints per 1,000 users",
    "model_name": "Model",
    "metric": "Metric",
    "vs_baseline_pct": "Error vs. baseline (%)",
    "predicted_csat": "Predicted CSAT",
    "observed_csat": "Observed CSAT",
    "responses": "Responses",
    "n_gaps": "Expectations missed",
    "gain_if_gaps_closed": "CSAT gain if gaps closed",
    "with_availability_gap": "With availability gap",
    "with_latency_gap": "With latency gap",
    "with_resolution_gap": "With resolution gap",
    "csat_mean_now": "Predicted CSAT now",
    "csat_mean_closed": "Predicted CSAT, gaps closed",
    "csat_mean_gain": "CSAT gain",
    "complaints_avoidable_per_month": "Complaints avoidable / month",
    "tier": "Tier",
    "csat_top2_pct": "Satisfied share (%)",
    "csat": "CSAT (95% CI)",
    "satisfied_pct": "Satisfied % (95% CI)",
    "complaints_per_1k": "Complaints per 1,000 (95% CI)",
    "csat_mean_ci_low": "CSAT 95% low",
    "csat_mean_ci_high": "CSAT 95% high",
    "csat_top2_ci_low": "Satisfied 95% low",
    "csat_top2_ci_high": "Satisfied 95% high",
    "complaint_ci_low": "Complaints 95% low",
    "complaint_ci_high": "Complaints 95% high",
    "meets_csat": "Meets CSAT target",
    "meets_complaints": "Meets complaint target",
    "monthly_cost": "Extra cost / month",
    "target_of": "Target",
    "tier_level": "Tier's level",
    "tier_is_enough": "Tier's level enough",
    "current": "Now",
    "planned": "Planned",
    "cost": "Cost / month",
    "total_cost": "Total cost / month",
    "predicted": "Predicted",
    "predicted_ci_low": "95% low",
    "predicted_ci_high": "95% high",
    "check": "Check",
    "threshold": "Threshold",
    "ok": "OK",
    "note": "Note",
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
    ids : None, or (for a pseudonymised report) the function that maps a Series of real
        customer ids to their pseudonyms; ``panel``, ``responses`` and ``validation`` then
        already hold pseudonyms, and tables read from ``source`` must go through it.
    """

    month: str
    window: tuple[str, str]
    source: Any
    validation: Any
    config: Any
    panel: pd.DataFrame
    responses: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    ids: Callable[[pd.Series], pd.Series] | None = field(default=None, repr=False)

    @property
    def pseudonymised(self) -> bool:
        """True when customer ids are replaced by keyed pseudonyms (:func:`pseudonym`)."""
        return self.ids is not None


def _up_to(frame: pd.DataFrame | None, month: str) -> pd.DataFrame | None:
    if frame is None or "month" not in frame.columns:
        return frame
    return frame.loc[frame["month"].astype(str) <= month].reset_index(drop=True)


def load_report_data(
    data: str | os.PathLike | None = None,
    month: str | None = None,
    now: datetime | None = None,
    pseudonymise: bool = False,
) -> ReportData:
    """Open, validate and build the panel for one monthly report.

    Parameters
    ----------
    data : a DuckDB file, a folder of tables or a ``satmodel.toml``; None or ``""`` for the
        default ``data/satmodel.duckdb``.
    month : ``YYYY-MM``; None or ``""`` for the last complete month in the data.
    now : the current time, for the default month (tests).
    pseudonymise : replace every customer id of the panel, the responses and the quarantine
        examples by its keyed pseudonym (:func:`pseudonym`, key from :func:`pseudonym_key`),
        for reports that leave the team. The source itself is left as it is.

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
    ids = None
    if pseudonymise:
        key = pseudonym_key()

        def ids(values: pd.Series) -> pd.Series:
            return pseudonymise_ids(values, key)

        panel = _with_ids(panel, ids)
        responses = _with_ids(responses, ids)
        validation = _pseudonymised_validation(validation, ids)
    return ReportData(
        month=month,
        window=tuple(window),
        source=source,
        validation=validation,
        config=source.config,
        panel=_up_to(panel, month),
        responses=_up_to(responses, month),
        notes=notes,
        ids=ids,
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
        f"Source: {md_escape(Path(str(data.source.location)).name)}.",
    ]
    lines += [f"Note: {md_escape(note)}" for note in data.notes]
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
# escaping


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$])")


def md_escape(value: Any) -> str:
    """A data string made safe for Markdown and HTML output: shown as text, never as markup.

    HTML special characters ``< > &`` become entities and Markdown punctuation is
    backslash-escaped, so a segment named ``<script>alert(1)</script>`` or ``**big**`` renders
    literally. Quotes stay as they are: they are harmless in text, and their numeric entities
    (``&#x27;``) would be broken by the escaped ``#`` and shown to the reader.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(value), quote=False))


def plot_label(value: Any) -> str:
    """A data string made safe for a Matplotlib label (no mathtext: ``$`` is escaped)."""
    return str(value).replace("$", r"\$")


# --------------------------------------------------------------------------------------
# CSV exports for sales: spreadsheet formulas neutralised

# A cell starting with one of these is run as a formula by Excel, LibreOffice Calc or Google
# Sheets (OWASP "CSV injection": = + - @, tab and carriage return); the full-width forms are
# included because some spreadsheet imports fold them to their ASCII twins.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula.

    A string starting with ``= + - @``, a tab or a carriage return (or their full-width forms)
    gets a leading apostrophe, which spreadsheets read as "text follows" and do not show;
    anything else, numbers included, is returned unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _neutral_column(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_datetime64_any_dtype(
        column.dtype
    ):
        return column  # numbers stay numbers (a negative number is not a formula)
    return column.astype(object).map(neutralise_cell)


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table for spreadsheets (sales) atomically, with formulas neutralised.

    Every CSV export of the reports goes through this function. String cells and column names
    are passed through :func:`neutralise_cell`; numeric columns are written as numbers. The
    file is UTF-8 with a byte-order mark (so Excel reads accents right), with CRLF line ends
    (RFC 4180: a cell holding a CR or LF is quoted, so it cannot start a new row) and no
    index; it is written to a temporary file in the same folder, flushed to disk and then
    renamed over ``path``, so a reader never sees half a file.

    Parameters
    ----------
    frame : the table.
    path : the ``.csv`` file to write (its folder must exist).

    Returns
    -------
    Path
        The file written.
    """
    target = Path(path)
    safe = pd.DataFrame(
        {j: _neutral_column(frame.iloc[:, j]) for j in range(frame.shape[1])},
        index=range(len(frame)),
    )
    safe.columns = [neutralise_cell(str(c)) for c in frame.columns]
    text = safe.to_csv(index=False, lineterminator="\r\n")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a report file is meant to be shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def export_csv(frame: pd.DataFrame, out_dir: str | os.PathLike | None, name: str) -> Path | None:
    """Write ``frame`` as ``out_dir/name`` through :func:`write_csv`; nothing when out_dir is empty.

    For the notebooks: ``out_dir`` is ``""`` when they run interactively.
    """
    if not out_dir:
        return None
    if not name.endswith(".csv") or "/" in name or os.sep in name:
        raise InputError(f"export {name!r}: expected a plain file name ending in .csv")
    return write_csv(frame, Path(out_dir) / name)


# --------------------------------------------------------------------------------------
# pseudonyms: customer ids in reports that leave the team

PSEUDONYM_KEY_ENV = "SATMODEL_PSEUDONYM_KEY"
PSEUDONYM_KEY_FILE = Path("data") / "pseudonym.key"
PSEUDONYM_PREFIX = "cust-"
MIN_KEY_CHARS = 16


def _key_file() -> Path:
    return Path.cwd() / PSEUDONYM_KEY_FILE


def pseudonym_key(create: bool = False) -> bytes:
    """The secret key of :func:`pseudonym`.

    From the environment variable ``SATMODEL_PSEUDONYM_KEY`` (at least 16 characters), else
    from ``data/pseudonym.key`` under the working directory, which ``create=True`` makes on
    first use (64 random hex digits, mode 0600). Without the key a pseudonym cannot be traced
    back to its customer, even by trying every plausible id.

    Raises
    ------
    InputError
        When the key is too short, the key file is readable by others, or it is missing
        (and ``create`` is False) or cannot be created.
    """
    value = os.environ.get(PSEUDONYM_KEY_ENV, "")
    if value:
        if len(value) < MIN_KEY_CHARS:
            raise InputError(
                f"{PSEUDONYM_KEY_ENV}: too short ({len(value)} characters; need at least "
                f"{MIN_KEY_CHARS}, e.g. 64 random hex digits)"
            )
        return value.encode("utf-8")
    path = _key_file()
    if not path.exists():
        if not create:
            raise InputError(
                f"{path}: no pseudonym key (set {PSEUDONYM_KEY_ENV}, or run "
                "`satmodel report --pseudonymise` once to create it)"
            )
        _create_key_file(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the pseudonym key ({exc})") from None
    if mode & 0o077:
        raise InputError(
            f"{path}: readable by others (mode {mode & 0o777:o}); run `chmod 600 {path}`"
        )
    if len(text) < MIN_KEY_CHARS:
        raise InputError(f"{path}: the pseudonym key is too short (need {MIN_KEY_CHARS}+ chars)")
    return text.encode("ascii")


def _create_key_file(path: Path) -> None:
    """Create the key file atomically (a concurrent creator wins; its key is then used)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".pseudonym.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:  # mkstemp: mode 0600
                handle.write(secrets.token_hex(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # fails if it exists: never overwrite a key
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise InputError(f"{path}: cannot create the pseudonym key ({exc.strerror})") from None


def pseudonym(customer_id: Any, key: bytes) -> str:
    """The stable pseudonym of a customer id: ``cust-`` and 16 hex digits of HMAC-SHA256.

    The same id and key always give the same pseudonym (so reports of different months and
    proposals agree); another key gives unrelated ones.

    Examples
    --------
    >>> pseudonym("C0001", b"0123456789abcdef0123")
    'cust-7f7afe0fd450d798'
    """
    digest = hmac.new(key, str(customer_id).encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:16]


def pseudonymise_ids(values: pd.Series, key: bytes) -> pd.Series:
    """Map a Series of customer ids to pseudonyms (missing values stay missing).

    Raises
    ------
    SatmodelError
        When two ids would share a pseudonym (64 bits: not expected below billions of ids).
    """
    unique = pd.unique(values.dropna().astype(str))
    mapping = {value: pseudonym(value, key) for value in unique}
    if len(set(mapping.values())) != len(mapping):
        raise SatmodelError("pseudonyms: two customer ids share a pseudonym; use another key")
    out = values.astype(object).where(values.isna(), values.astype(str).map(mapping))
    return out.astype(object)


def _with_ids(
    frame: pd.DataFrame | None, ids: Callable[[pd.Series], pd.Series] | None
) -> pd.DataFrame | None:
    """``frame`` with its customer_id column mapped through ``ids`` (unchanged when None)."""
    if frame is None or ids is None or "customer_id" not in frame.columns:
        return frame
    return frame.assign(customer_id=ids(frame["customer_id"]))


def _pseudonymised_validation(validation, ids: Callable[[pd.Series], pd.Series]):
    """A copy of a validation report whose customer_id examples are pseudonyms."""
    import copy

    rejected = getattr(validation, "rejected", None)
    if rejected is None or not len(rejected):
        return validation
    out = copy.copy(validation)
    rejected = rejected.copy()
    mask = rejected["column_name"].astype(str) == "customer_id"
    if mask.any():
        rejected.loc[mask, "example"] = ids(rejected.loc[mask, "example"].astype(str)).to_numpy()
    out.rejected = rejected
    return out


# --------------------------------------------------------------------------------------
# error budget burn rate


def month_start(month: str) -> pd.Timestamp:
    """The first instant of a month (UTC)."""
    return pd.Timestamp(f"{month}-01", tz="UTC")


def days_in_month(month: str) -> int:
    """Number of days in a calendar month."""
    return calendar.monthrange(int(month[:4]), int(month[5:7]))[1]


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


def _month_sql_bounds(month: str) -> tuple[str, str]:
    return (
        f"TIMESTAMPTZ '{month}-01 00:00:00+00'",
        f"TIMESTAMPTZ '{add_months(month, 1)}-01 00:00:00+00'",
    )


def covered_days(data: ReportData) -> float:
    """Days of the report month the data covers: all of them unless it is the data's last
    month, where the latest request, survey or incident timestamp of the month decides."""
    month = data.month
    n_days = days_in_month(month)
    if month < data.window[1]:
        return float(n_days)
    lo, hi = _month_sql_bounds(month)
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
    lo, hi = _month_sql_bounds(data.month)
    frame = data.source.con.execute(
        "SELECT customer_id, start_ts, end_ts FROM incidents "
        f"WHERE start_ts < {hi} AND end_ts > {lo}"
    ).df()
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame = _with_ids(frame, data.ids)
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


# --------------------------------------------------------------------------------------
# operations scorecard


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
    lo = _month_sql_bounds(add_months(data.month, -months + 1))[0]
    hi = _month_sql_bounds(data.month)[1]
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
        frames.append(_with_ids(frame, data.ids))
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


# --------------------------------------------------------------------------------------
# drift of the drivers' effects


def fit_previous_models(data: ReportData, enabled: bool = True) -> ModelSection:
    """The default models fitted on the data up to the month before the report month."""
    previous = add_months(data.month, -1)
    if previous < data.window[0]:
        section = ModelSection()
        section.notes.append("no month before the report month, so no drift to measure")
        return section
    earlier = ReportData(
        month=previous,
        window=data.window,
        source=data.source,
        validation=data.validation,
        config=data.config,
        panel=_up_to(data.panel, previous),
        responses=_up_to(data.responses, previous),
    )
    return fit_models(earlier, enabled=enabled)


def effect_drift(
    current: ModelSection, previous: ModelSection, alpha: float = 0.01
) -> pd.DataFrame:
    """Month-over-month change of every driver's coefficient, with an approximate z-test.

    The two fits share data: the previous fit uses the months up to last month, the current
    one the same months plus this month. Their estimates are therefore strongly correlated,
    and the usual independent-samples test (variance of the difference = sum of the two
    variances) would almost never flag anything. Under the hypothesis that the effect did
    not change, the estimate on the larger sample is (asymptotically) efficient, and for nested
    samples its covariance with the smaller-sample estimate equals its own variance (the
    Hausman argument), so::

        Var(b_now - b_before) = Var(b_before) - Var(b_now)

    That difference of two estimated variances is itself noisy: it can come out near zero, or
    negative (cluster-robust standard errors need not shrink with one month more), which would
    inflate z. So the larger of it and the sample-size version
    ``Var(b_now) x (n_now / n_before - 1)`` is used (``method`` names the one that was
    larger). Both are approximations: they assume correctly specified models and that the
    extra month adds information in proportion to its observations. The test amounts to
    asking whether this month's data alone disagrees with the months before. With about 30
    coefficients, a 1% level (``alpha``) keeps false alarms to about one in three reports.

    Parameters
    ----------
    current, previous : the models fitted up to this month and up to the month before.
    alpha : significance level of the flag.

    Returns
    -------
    DataFrame
        model, term, driver, estimate, previous_estimate, difference, std_error,
        previous_std_error, se_difference, z, p_value, method, flagged.
    """
    from scipy import stats

    columns = ["model", "term", "driver", "estimate", "previous_estimate", "difference"]
    columns += ["std_error", "previous_std_error", "se_difference", "z", "p_value", "method"]
    columns += ["flagged"]
    rows = []
    for name, now in current.results.items():
        before = previous.results.get(name)
        if before is None:
            continue
        n_now, n_before = float(now.n_obs_), float(before.n_obs_)
        old = before.coefficients_.set_index("term")
        for record in now.coefficients_.to_dict("records"):
            term = record["term"]
            if term == "Intercept" or term not in old.index:
                continue
            b1, s1 = float(record["estimate"]), float(record["std_error"])
            b0, s0 = float(old.at[term, "estimate"]), float(old.at[term, "std_error"])
            nested = s0**2 - s1**2
            by_size = s1**2 * (n_now / n_before - 1) if n_before > 0 else math.nan
            if nested > by_size or math.isnan(by_size):
                variance, method = nested, "nested (Hausman)"
            else:
                variance, method = by_size, "sample size"
            se = math.sqrt(variance) if variance > 0 else math.nan
            z = (b1 - b0) / se if se > 0 else math.nan
            p = float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else math.nan
            rows.append(
                {
                    "model": name,
                    "term": term,
                    "driver": describe_driver(term)[0],
                    "estimate": b1,
                    "previous_estimate": b0,
                    "difference": b1 - b0,
                    "std_error": s1,
                    "previous_std_error": s0,
                    "se_difference": se,
                    "z": z,
                    "p_value": p,
                    "method": method,
                    "flagged": bool(p < alpha) if math.isfinite(p) else False,
                }
            )
    return pd.DataFrame(rows, columns=columns)


def drift_view(drift: pd.DataFrame) -> pd.DataFrame:
    """The drift table as a manager reads it: model, driver, before, now, z, p-value, flag."""
    columns = ["model", "driver", "previous_estimate", "estimate", "z", "p_value", "flagged"]
    return drift[columns].rename(columns={"estimate": "coefficient"}).reset_index(drop=True)


def drift_text(drift: pd.DataFrame, month: str):
    """One paragraph on the drivers whose effect changed this month, as IPython Markdown."""
    from IPython.display import Markdown

    if drift.empty:
        return Markdown("No drift to report (the models of both months are needed).")
    flagged = drift.loc[drift["flagged"]]
    if flagged.empty:
        return Markdown(
            f"No driver's effect changed significantly with the data of {month_name(month)} "
            f"({len(drift)} coefficients compared at the 1% level)."
        )
    parts = [
        f"**{md_escape(r.driver)}** in the {md_escape(r.model)} model "
        f"({r.previous_estimate:+.3f} to {r.estimate:+.3f})"
        for r in flagged.itertuples(index=False)
    ]
    return Markdown(
        f"Adding {month_name(month)} changed these effects more than chance would explain: "
        + "; ".join(parts)
        + ". Check for a change in how the service is measured, or in what customers value."
    )


# --------------------------------------------------------------------------------------
# model diagnostics


def model_frame(data: ReportData, name: str) -> pd.DataFrame | None:
    """The rows a default model is fitted on: responses, or customer-months with users."""
    if name in ("csat", "top2"):
        return data.responses
    panel = data.panel
    if "active_users" not in panel:
        return panel
    return panel.loc[pd.to_numeric(panel["active_users"], errors="coerce") > 0]


def model_diagnostics(models: ModelSection, data: ReportData) -> pd.DataFrame:
    """Every check of :func:`satmodel.evaluation.diagnostics` for every fitted model.

    Returns
    -------
    DataFrame
        model, check, value, threshold, ok, note (a check that could not run has ok False
        and the reason in note).
    """
    columns = ["model", "check", "value", "threshold", "ok", "note"]
    if not models.results:
        return pd.DataFrame(columns=columns)
    from satmodel.evaluation import diagnostics

    frames = []
    for name, result in models.results.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                table = diagnostics(result, model_frame(data, name))
            except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
                table = pd.DataFrame(
                    [
                        {
                            "check": "diagnostics",
                            "value": math.nan,
                            "threshold": math.nan,
                            "ok": False,
                            "note": str(exc).splitlines()[0],
                        }
                    ]
                )
        table.insert(0, "model", name)
        frames.append(table)
    out = pd.concat(frames, ignore_index=True)
    out["ok"] = out["ok"].astype(bool)
    return out[columns]


def diagnostic_warnings(diagnosed: pd.DataFrame) -> list[str]:
    """One line per failed diagnostic check (``model: check value (threshold): note``)."""
    lines = []
    for r in diagnosed.loc[~diagnosed["ok"].astype(bool)].itertuples(index=False):
        value = "-" if pd.isna(r.value) else f"{float(r.value):.3g}"
        threshold = "-" if pd.isna(r.threshold) else f"{float(r.threshold):.3g}"
        note = f": {r.note}" if r.note else ""
        lines.append(f"{r.model}: {r.check} = {value} (threshold {threshold}){note}")
    return lines


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
                x,
                group["availability_met_pct"],
                marker="o",
                label=plot_label(segment),
                color=palette[segment],
            )
        left.set_ylim(-5, 105)
        left.set_ylabel("% of customers meeting the SLO", fontsize=9)
        left.set_title(f"Customers meeting the {target:g}% availability SLO", fontsize=11)
        left.legend(title="segment", fontsize=8, title_fontsize=8, loc="lower left")
        _month_axis(left, shown)
        bars = right.barh(
            [plot_label(segment) for segment in current["segment"]],
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
    import seaborn as sns

    if curve.empty or burn.empty:
        return None
    segments = sorted(curve["segment"].unique())
    palette = dict(zip(segments, sns.color_palette("deep"), strict=False))
    with _style():
        figure, (left, right) = _figure(13, 4.2, ncols=2)
        for segment, group in curve.groupby("segment", sort=True):
            left.plot(
                group["day"],
                group["used_pct"],
                label=plot_label(segment),
                color=palette[segment],
                linewidth=2,
            )
        days = int(curve["day"].max())
        left.plot(
            [0, days],
            [0, 100],
            color="#555555",
            linestyle="--",
            linewidth=1,
            label="steady pace (all used by month end)",
        )
        left.axhline(100, color="#d1495b", linewidth=1)
        left.set_xlim(0, days + 0.5)
        left.set_xlabel(f"day of {month_name(month)}", fontsize=9)
        left.set_ylabel("% of the month's error budget used", fontsize=9)
        left.set_title("Error budget used so far (cumulative)", fontsize=11)
        left.legend(title="segment", fontsize=8, title_fontsize=8, loc="upper left")
        rows = burn.loc[burn["segment"] != ALL_SEGMENTS]
        bars = right.barh(
            [plot_label(s) for s in rows["segment"]],
            rows["burn_rate"],
            color=[palette.get(s, "#777777") for s in rows["segment"]],
        )
        right.bar_label(bars, fmt="%.2fx", fontsize=8, padding=3)
        right.scatter(
            rows["peak_7day_burn_rate"],
            [plot_label(s) for s in rows["segment"]],
            marker="|",
            s=300,
            color="#333333",
            label="worst 7 days",
            zorder=3,
        )
        right.axvline(1, color="#d1495b", linestyle="--", linewidth=1)
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


def plot_operations(monthly: pd.DataFrame, month: str, months: int = 12):
    """Trends of the operations measures (changes, failure rate, MTTR, release cadence).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when there is nothing to draw.
    """
    from matplotlib.figure import Figure

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
    with _style():
        figure = Figure(figsize=(13, 6.4), dpi=100, layout="constrained")
        axes = figure.subplots(2, 2).ravel()
        for ax, (column, title, unit) in zip(axes, panels, strict=True):
            values = shown[column].astype(float)
            ax.plot(range(len(labels)), values, marker="o", color="#3b6ea8")
            if month in labels:
                i = labels.index(month)
                ax.plot([i], [values.iloc[i]], marker="o", markersize=10, color="#d1495b")
            ax.set_title(title, fontsize=11)
            ax.set_ylabel(unit, fontsize=9)
            ax.set_ylim(bottom=0)
            _month_axis(ax, labels)
        figure.suptitle(
            f"Operations: delivery and recovery, {len(labels)} months to {month_name(month)}",
            fontsize=12,
        )
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
# insights: driver importance, targets, response curves, customers at risk


# Readable names of satmodel.insights' driver names.
IMPORTANCE_NAMES = {
    "latency": "p95 latency",
    "latency_shortfall": "p95 latency above expectation",
    "downtime": "downtime",
    "downtime_lag1": "last month's downtime",
    "availability_shortfall": "availability below expectation",
    "error_rate": "error rate",
    "resolution": "ticket resolution time",
    "segment": "segment",
}
LEVER_NAMES = {
    "latency_p95_ms": ("p95 latency", "ms", "at most"),
    "availability_pct": ("availability", "%", "at least"),
    "resolution_hours_median": ("resolution time", "hours, median", "at most"),
    "error_rate": ("error rate", "share of requests", "at most"),
    "downtime_minutes": ("downtime", "minutes / month", "at most"),
}
TARGET_LEVERS = ("latency_p95_ms", "availability_pct")
DEFAULT_CSAT_TARGETS = "4.2"


def _insights(module: str, data: ReportData | None = None):
    """``satmodel.insights.<module>``, or None (with a note) when it is not installed."""
    import importlib

    try:
        return importlib.import_module(f"satmodel.insights.{module}")
    except ImportError as exc:
        if data is not None:
            data.notes.append(f"satmodel.insights.{module} is not available ({exc})")
        return None


def driver_importance(data: ReportData, n_boot: int = 300, seed: int = 0):
    """Driver importance for the mean CSAT of customer-months, with bootstrap intervals.

    Shapley (LMG) shares of the explained variation (R²) of a linear model of each
    customer-month's mean CSAT (weighted by its responses) on the default drivers, with
    customer-level bootstrap intervals (:func:`satmodel.insights.importance.driver_importance`).

    Returns
    -------
    ImportanceResult or None
        None (with a note in ``data.notes``) when it cannot be computed.
    """
    module = _insights("importance", data)
    if module is None or "csat_mean" not in data.panel:
        return None
    panel = data.panel.loc[pd.to_numeric(data.panel["csat_n"], errors="coerce") > 0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return module.driver_importance(
                panel, "csat_mean", family="ols", weights="csat_n", n_boot=n_boot, seed=seed
            )
    except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
        data.notes.append(f"driver importance: could not be computed ({exc})")
        return None


def importance_view(importance) -> pd.DataFrame:
    """Driver importance as a manager reads it.

    Returns
    -------
    DataFrame
        driver, share_pct (share of what the model explains), share_low_pct,
        share_high_pct, rank, rank_range (e.g. ``2-3``); empty when ``importance`` is None.
    """
    columns = ["driver", "share_pct", "share_low_pct", "share_high_pct", "rank", "rank_range"]
    if importance is None:
        return pd.DataFrame(columns=columns)
    table = importance.table_
    out = pd.DataFrame(
        {
            "driver": [IMPORTANCE_NAMES.get(d, d) for d in table["driver"]],
            "share_pct": 100 * table["relative_share"].astype(float),
            "share_low_pct": 100 * table["relative_share_ci_low"].astype(float),
            "share_high_pct": 100 * table["relative_share_ci_high"].astype(float),
            "rank": table["rank"].astype(int),
            "rank_range": [
                f"{int(lo)}" if lo == hi else f"{int(lo)}-{int(hi)}"
                for lo, hi in zip(table["rank_ci_low"], table["rank_ci_high"], strict=True)
            ],
        }
    )
    return out[columns].reset_index(drop=True)


def plot_importance(importance, panel: pd.DataFrame):
    """Driver importance (bars with 95% intervals) and importance against performance.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when ``importance`` is None.
    """
    if importance is None:
        return None
    module = _insights("importance")
    view = importance_view(importance).iloc[::-1]
    with _style():
        figure, (left, right) = _figure(13, 0.45 * len(view) + 2.6, ncols=2)
        y = np.arange(len(view))
        left.barh(y, view["share_pct"], color="#3b6ea8")
        left.errorbar(
            view["share_pct"],
            y,
            xerr=[
                view["share_pct"] - view["share_low_pct"],
                view["share_high_pct"] - view["share_pct"],
            ],
            fmt="none",
            ecolor="#333333",
            capsize=3,
        )
        left.set_yticks(y)
        left.set_yticklabels([plot_label(d) for d in view["driver"]], fontsize=9)
        left.set_xlabel("% of the explained variation in CSAT (95% interval)", fontsize=9)
        left.set_title(
            f"Driver importance (model explains {100 * importance.total_:.0f}% of CSAT variation)",
            fontsize=11,
        )
        if module is not None:
            table = importance.table_.assign(
                driver=[IMPORTANCE_NAMES.get(d, d) for d in importance.table_["driver"]]
            )
            performance = module.driver_performance(panel)
            performance.index = [IMPORTANCE_NAMES.get(d, d) for d in performance.index]
            try:
                module.plot_importance_quadrant(
                    table,
                    performance=performance,
                    ax=right,
                    title="Importance vs. how often we meet expectations",
                )
                right.title.set_fontsize(11)
            except SatmodelError:
                right.set_visible(False)
        else:
            right.set_visible(False)
        figure.suptitle("Which service measures matter most for satisfaction", fontsize=12)
    return figure


def parse_csat_targets(spec: str | float | None, segments: list[str]) -> dict[str, float]:
    """Each segment's CSAT target from ``"4.2"`` (every segment) or ``"enterprise 4.4; * 4.0"``.

    ``*`` sets the default of the segments not named; without it, unnamed segments get
    :data:`DEFAULT_CSAT_TARGETS`.

    Raises
    ------
    InputError
        For a malformed target or one outside 1-5.
    """
    text = str(spec if spec not in (None, "") else DEFAULT_CSAT_TARGETS).strip()
    named: dict[str, float] = {}
    default = float(DEFAULT_CSAT_TARGETS)
    problems = []
    for part in (p.strip() for p in text.split(";") if p.strip()):
        name, _, value = part.rpartition(" ")
        try:
            number = float(value)
        except ValueError:
            problems.append(f"csat_targets {part!r}: expected 'SEGMENT TARGET', e.g. 'smb 4.0'")
            continue
        if not 1 <= number <= 5:
            problems.append(f"csat_targets {part!r}: a CSAT target must be between 1 and 5")
        name = name.strip()
        if name in ("", "*"):
            default = number
        else:
            named[name] = number
    if problems:
        raise InputError(problems)
    return {segment: named.get(segment, default) for segment in segments}


def segment_targets(
    models: ModelSection,
    data: ReportData,
    csat_targets: str | float | None = None,
    levers: tuple[str, ...] = TARGET_LEVERS,
    n_sim: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """The service level each segment needs for its CSAT target (the inverse solver).

    For every segment and lever: the level of the lever (other drivers held at the segment's
    values this month) at which the segment's predicted mean CSAT just reaches its target
    (:func:`satmodel.insights.targets.solve_target`). When the target is already met, that is
    the worst level the segment can afford (e.g. p95 latency may rise to ``required``); when
    not, the level it needs.

    Returns
    -------
    DataFrame
        segment, csat_target, current_csat, met_now, lever, unit, direction, current_level,
        required, ci_low, ci_high, feasible, extrapolated; empty without models or insights.
    """
    columns = ["segment", "csat_target", "current_csat", "met_now", "lever", "unit"]
    columns += ["direction", "current_level", "required", "ci_low", "ci_high", "feasible"]
    columns += ["extrapolated"]
    module = _insights("targets", data)
    if module is None or not {"csat", "complaints"} & set(models.results):
        return pd.DataFrame(columns=columns)
    month = data.panel.loc[data.panel["month"].astype(str) == data.month]
    segments = sorted(str(s) for s in month["segment"].dropna().unique())
    targets = parse_csat_targets(csat_targets, segments)
    rows = []
    for segment in segments:
        for lever in levers:
            if lever not in data.panel:
                continue
            name, unit, direction = LEVER_NAMES.get(lever, (lever, "", ""))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = module.solve_target(
                        models.results,
                        data.panel,
                        "csat_mean",
                        targets[segment],
                        lever,
                        segment=segment,
                        n_sim=n_sim,
                        seed=seed,
                    )
            except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
                data.notes.append(f"target for {segment}, {name}: not solved ({exc})")
                continue
            rows.append(
                {
                    "segment": segment,
                    "csat_target": targets[segment],
                    "current_csat": result.current_outcome,
                    "met_now": bool(result.met_now),
                    "lever": name,
                    "unit": unit,
                    "direction": direction,
                    "current_level": result.current,
                    "required": math.nan if result.required is None else result.required,
                    "ci_low": math.nan if result.ci_low is None else result.ci_low,
                    "ci_high": math.nan if result.ci_high is None else result.ci_high,
                    "feasible": bool(result.feasible),
                    "extrapolated": bool(result.extrapolated),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def targets_text(targets: pd.DataFrame):
    """One line per segment: what its CSAT target needs, as IPython Markdown."""
    from IPython.display import Markdown

    if targets.empty:
        return Markdown("No targets could be computed (no fitted models).")
    lines = []
    for segment, group in targets.groupby("segment", sort=True):
        first = group.iloc[0]
        status = "meets" if first["met_now"] else "misses"
        parts = []
        for r in group.itertuples(index=False):
            if not r.feasible:
                parts.append(f"no {r.lever} alone reaches it")
                continue
            level = f"{r.required:,.3f}" if r.unit == "%" else f"{r.required:,.0f}"
            flag = " (beyond the levels seen in the data)" if r.extrapolated else ""
            parts.append(f"{r.lever} {r.direction} {level} {r.unit}{flag}")
        lines.append(
            f"- **{md_escape(segment)}** ({status} its target of {first['csat_target']:.2f} "
            f"now, at {first['current_csat']:.2f}): " + "; ".join(parts) + "."
        )
    return Markdown(
        "Service level needed for each segment's CSAT target, one measure at a time (the "
        "others held at this month's values):\n\n" + "\n".join(lines)
    )


CURVE_LEVERS = ("latency_p95_ms", "availability_pct", "resolution_hours_median")


def curve_grid(panel: pd.DataFrame, lever: str, n_points: int = 40) -> np.ndarray:
    """Lever levels for a response curve: log-spaced over the levels customers see.

    Latency and resolution time run from the 1st to 1.5x the 99th percentile of the panel;
    availability from 99.999% down to the 1st percentile (at least to 99%), spaced evenly in
    "nines" (log of the unavailability), where customers feel the difference.
    """
    values = pd.to_numeric(panel[lever], errors="coerce").dropna()
    if lever == "availability_pct":
        worst = 100 - float(values.quantile(0.01)) if len(values) else 1.0
        gaps = np.geomspace(0.001, min(max(worst, 1.0), 20.0), n_points)
        return np.sort(100 - gaps)
    positive = values[values > 0]
    if positive.empty:
        return np.geomspace(1, 1000, n_points)
    low = float(positive.quantile(0.01))
    high = float(positive.quantile(0.99)) * 1.5
    if lever == "latency_p95_ms":
        low /= 1.5
    return np.geomspace(low, max(high, low * 2), n_points)


def response_curves(
    models: ModelSection,
    data: ReportData,
    levers: tuple[str, ...] = CURVE_LEVERS,
    outcome: str = "csat_mean",
    n_points: int = 40,
    n_sim: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Predicted outcome of each segment along each lever, other drivers held at this month's.

    Calls :func:`satmodel.insights.whatif.response_curve` per segment and lever (parameter
    simulation intervals). ``current_level`` is the segment's median of the lever this month,
    the level its held profile uses.

    Returns
    -------
    DataFrame
        segment, lever, level, estimate, ci_low, ci_high, observed, current_level, unit;
        empty (with a note) without models or insights.
    """
    columns = ["segment", "lever", "level", "estimate", "ci_low", "ci_high", "observed"]
    columns += ["current_level", "unit"]
    module = _insights("whatif", data)
    if module is None or not models.results:
        return pd.DataFrame(columns=columns)
    month = data.panel.loc[data.panel["month"].astype(str) == data.month]
    segments = sorted(str(s) for s in month["segment"].dropna().unique())
    frames = []
    for lever in levers:
        if lever not in data.panel:
            continue
        for segment in segments:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    curve = module.response_curve(
                        models.results,
                        data.panel,
                        outcome,
                        lever,
                        segment=segment,
                        grid=curve_grid(data.panel, lever, n_points),
                        n_sim=n_sim,
                        seed=seed,
                    )
            except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
                data.notes.append(f"response curve of {segment}, {lever}: not drawn ({exc})")
                continue
            current = pd.to_numeric(
                month.loc[month["segment"].astype(str) == segment, lever], errors="coerce"
            ).median()
            frames.append(curve.assign(segment=segment, current_level=float(current))[columns])
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def plot_response_curves(
    curves: pd.DataFrame, targets: pd.DataFrame | None = None, outcome: str = "csat_mean"
):
    """One chart per lever: each segment's predicted CSAT along it, with 95% bands.

    Parameters
    ----------
    curves : the output of :func:`response_curves`.
    targets : the output of :func:`segment_targets` (draws each segment's target), optional.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when there is no curve.
    """
    import seaborn as sns

    if curves.empty:
        return None
    levers = list(dict.fromkeys(curves["lever"]))
    segments = sorted(curves["segment"].unique())
    palette = dict(zip(segments, sns.color_palette("deep"), strict=False))
    goal = (
        targets.drop_duplicates("segment").set_index("segment")["csat_target"]
        if targets is not None and len(targets)
        else pd.Series(dtype=float)
    )
    label_y, unit_y, _ = OUTCOME_METRICS.get(outcome, (outcome, "", False))
    with _style():
        figure, axes = _figure(13, 4.2, ncols=len(levers))
        for ax, lever in zip(axes, levers, strict=True):
            name, unit, _ = LEVER_NAMES.get(lever, (lever, "", ""))
            for segment in segments:
                rows = curves.loc[(curves["lever"] == lever) & (curves["segment"] == segment)]
                if rows.empty:
                    continue
                color = palette[segment]
                # availability is drawn as unavailability (100 - %) on a log axis: the "nines"
                shift = 100.0 if lever == "availability_pct" else 0.0
                x = (shift - rows["level"]).abs() if shift else rows["level"]
                ax.fill_between(x, rows["ci_low"], rows["ci_high"], color=color, alpha=0.15)
                ax.plot(x, rows["estimate"], color=color, label=plot_label(segment))
                current = float(rows["current_level"].iloc[0])
                x_now = abs(shift - current) if shift else current
                if math.isfinite(x_now) and x.min() <= x_now <= x.max():
                    order = np.argsort(x.to_numpy())
                    y_now = float(
                        np.interp(x_now, x.to_numpy()[order], rows["estimate"].to_numpy()[order])
                    )
                    ax.plot([x_now], [y_now], marker="o", color=color, markersize=7)
                if segment in goal.index:
                    ax.axhline(goal[segment], color=color, linestyle=":", linewidth=1)
            ax.set_xscale("log")
            if lever == "availability_pct":
                from matplotlib.ticker import FixedLocator, FuncFormatter

                ax.invert_xaxis()
                ax.xaxis.set_major_locator(FixedLocator([10, 1, 0.1, 0.01, 0.001]))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 - v:g}"))
                ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
            ax.set_xlabel(f"{name} ({unit}, log scale)", fontsize=9)
            ax.set_ylabel(f"predicted {label_y} ({unit_y})", fontsize=9)
            ax.set_title(f"{label_y} vs. {name}", fontsize=11)
        axes[0].legend(title="segment (dot: now)", fontsize=8, title_fontsize=8)
        figure.suptitle(
            "Response curves: predicted satisfaction as one service measure moves "
            "(dotted: segment's target)",
            fontsize=12,
        )
    return figure


AT_RISK_COLUMNS = ["customer_id", "segment", "predicted_csat", "ci_low", "ci_high"]
AT_RISK_COLUMNS += ["csat_target", "observed_csat", "responses", "n_gaps", "gain_if_gaps_closed"]


def customers_at_risk(
    models: ModelSection,
    data: ReportData,
    csat_targets: str | float | None = None,
    gaps=None,
) -> pd.DataFrame:
    """Customers whose predicted CSAT this month is clearly below their segment's target.

    A customer is at risk when the whole 95% interval of its predicted CSAT lies below the
    target (a prediction just under it is not flagged). The prediction is the nowcast of the ordinal CSAT model for every customer of the month,
    surveyed or not (:func:`satmodel.insights.nowcast.nowcast`): what the service each got
    predicts. ``gain_if_gaps_closed`` is the CSAT the customer would gain if its own
    expectation gaps were closed (:func:`satmodel.insights.gaps.gap_analysis`, from ``gaps``).

    Parameters
    ----------
    gaps : a :class:`satmodel.insights.gaps.GapResult` of the month, optional.

    Returns
    -------
    DataFrame
        customer_id, segment, predicted_csat, ci_low, ci_high, csat_target, observed_csat,
        responses, n_gaps, gain_if_gaps_closed; lowest prediction first.
    """
    module = _insights("nowcast", data)
    if module is None or "csat" not in models.results:
        return pd.DataFrame(columns=AT_RISK_COLUMNS)
    month = data.panel.loc[data.panel["month"].astype(str) == data.month]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            now = module.nowcast(models.results, month)
    except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
        data.notes.append(f"customers at risk: no nowcast ({exc})")
        return pd.DataFrame(columns=AT_RISK_COLUMNS)
    segments = sorted(str(s) for s in now["segment"].dropna().unique())
    targets = parse_csat_targets(csat_targets, segments)
    out = pd.DataFrame(
        {
            "customer_id": now["customer_id"].astype(str),
            "segment": now["segment"].astype(str),
            "predicted_csat": now["csat_expected"].astype(float),
            "ci_low": now["csat_expected_ci_low"].astype(float),
            "ci_high": now["csat_expected_ci_high"].astype(float),
            "csat_target": now["segment"].astype(str).map(targets).astype(float),
            "observed_csat": pd.to_numeric(now["csat_mean"], errors="coerce"),
            "responses": pd.to_numeric(now["csat_n"], errors="coerce").fillna(0).astype(int),
        }
    )
    if gaps is not None:
        per_customer = gaps.customers_.set_index(gaps.customers_["customer_id"].astype(str))
        out["n_gaps"] = out["customer_id"].map(per_customer["n_gaps"]).fillna(0).astype(int)
        out["gain_if_gaps_closed"] = out["customer_id"].map(per_customer["csat_mean_gain"])
    else:
        out["n_gaps"] = 0
        out["gain_if_gaps_closed"] = math.nan
    out = out.loc[out["ci_high"] < out["csat_target"]]
    out = out.sort_values(["predicted_csat", "customer_id"], kind="stable")
    return out[AT_RISK_COLUMNS].reset_index(drop=True)


def gap_analysis(models: ModelSection, data: ReportData, n_sim: int = 300, seed: int = 0):
    """Expectation gaps of the month and what they cost in satisfaction and complaints.

    :func:`satmodel.insights.gaps.gap_analysis` for the report month (each customer's
    measured availability, p95 latency and median resolution time against its expectation).

    Returns
    -------
    GapResult or None
        None (with a note) without the CSAT model or insights.
    """
    module = _insights("gaps", data)
    if module is None or "csat" not in models.results:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return module.gap_analysis(
                models.results, data.panel, month=data.month, n_sim=n_sim, seed=seed
            )
    except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
        data.notes.append(f"gap analysis: not possible ({exc})")
        return None


def gap_view(gaps) -> pd.DataFrame:
    """Per segment: customers with each gap, CSAT now and with every gap closed.

    Returns
    -------
    DataFrame
        segment, customers, with_availability_gap, with_latency_gap, with_resolution_gap,
        csat_mean_now, csat_mean_closed, csat_mean_gain, complaints_avoidable_per_month
        (the columns gap analysis gives); empty when ``gaps`` is None.
    """
    wanted = ["segment", "customers", "with_availability_gap", "with_latency_gap"]
    wanted += ["with_resolution_gap", "csat_mean_now", "csat_mean_closed", "csat_mean_gain"]
    wanted += ["complaints_avoidable_per_month"]
    if gaps is None:
        return pd.DataFrame(columns=wanted)
    table = gaps.segments_
    return table[[c for c in wanted if c in table]].reset_index(drop=True)


def at_risk_text(at_risk: pd.DataFrame):
    """One paragraph on the customers at risk, as IPython Markdown."""
    from IPython.display import Markdown

    if at_risk.empty:
        return Markdown("No customer is predicted to fall below its segment's CSAT target.")
    by_segment = at_risk["segment"].value_counts().sort_index()
    parts = ", ".join(f"{count:,} in {md_escape(name)}" for name, count in by_segment.items())
    return Markdown(
        f"**{len(at_risk):,} customers** are predicted, with their whole 95% interval, to fall "
        f"below their segment's CSAT target this month: {parts}."
    )


# --------------------------------------------------------------------------------------
# exploration (notebooks/01_explore.ipynb) and model evaluation (02_drivers.ipynb)


# Service metrics and outcomes of the panel: column -> (label, unit, log scale in charts).
METRICS = {
    "availability_pct": ("Availability", "%", False),
    "downtime_minutes": ("Downtime", "minutes / month", True),
    "latency_p95_ms": ("p95 latency", "ms", True),
    "error_rate": ("Error rate", "share of requests", False),
    "apdex": ("Apdex", "score 0-1", False),
    "resolution_hours_median": ("Median ticket resolution", "hours", True),
    "sla_breach_rate": ("Tickets resolved late", "share of tickets", False),
    "change_failure_rate": ("Change failure rate", "share of changes", False),
}
OUTCOME_METRICS = {
    "csat_mean": ("CSAT, mean score", "score 1-5", False),
    "csat_top2_rate": ("Satisfied share (CSAT 4-5)", "share of responses", False),
    "complaint_rate_per_1k": ("Complaints per 1,000 users", "per 1,000 users", False),
}


def panel_overview(panel: pd.DataFrame) -> pd.DataFrame:
    """One row per service metric and outcome of the panel: coverage and spread.

    Returns
    -------
    DataFrame
        column_name, label, unit, measured_pct (share of customer-months with a value), p05,
        median, p95, mean.
    """
    rows = []
    for column, (label, unit, _) in {**METRICS, **OUTCOME_METRICS}.items():
        if column not in panel:
            continue
        values = pd.to_numeric(panel[column], errors="coerce")
        present = values.dropna()
        rows.append(
            {
                "column_name": column,
                "label": label,
                "unit": unit,
                "measured_pct": 100 * len(present) / len(values) if len(values) else math.nan,
                "p05": float(present.quantile(0.05)) if len(present) else math.nan,
                "median": float(present.median()) if len(present) else math.nan,
                "p95": float(present.quantile(0.95)) if len(present) else math.nan,
                "mean": float(present.mean()) if len(present) else math.nan,
            }
        )
    columns = ["column_name", "label", "unit", "measured_pct", "p05", "median", "p95", "mean"]
    return pd.DataFrame(rows, columns=columns)


def plot_distributions(panel: pd.DataFrame, columns: list[str] | None = None):
    """Histograms of the service metrics and outcomes over customer-months, by segment.

    Heavy-tailed metrics (latency, downtime, resolution time) are drawn on a log scale.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    import seaborn as sns
    from matplotlib.figure import Figure

    specs = {**METRICS, **OUTCOME_METRICS}
    columns = [c for c in (columns or list(specs)) if c in panel]
    if not columns:
        return None
    ncols = 3
    nrows = math.ceil(len(columns) / ncols)
    frame = panel.assign(segment=panel["segment"].astype(str).map(plot_label))
    with _style():
        figure = Figure(figsize=(13, 3.2 * nrows), dpi=100, layout="constrained")
        axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, column in zip(axes, columns, strict=False):
            label, unit, log = specs.get(column, (column, "", False))
            values = pd.to_numeric(frame[column], errors="coerce")
            data = frame.assign(value=values).dropna(subset=["value"])
            if log:
                data = data.loc[data["value"] > 0]
            if data.empty:
                ax.set_visible(False)
                continue
            sns.histplot(
                data=data,
                x="value",
                hue="segment",
                hue_order=sorted(data["segment"].unique()),
                bins=30,
                log_scale=log,
                element="step",
                stat="density",
                common_norm=False,
                ax=ax,
            )
            ax.set_title(label, fontsize=10)
            ax.set_xlabel(f"{unit}{' (log scale)' if log else ''}", fontsize=8)
            ax.set_ylabel("density", fontsize=8)
        for ax in axes[len(columns) :]:
            ax.set_visible(False)
        figure.suptitle("How service and satisfaction vary over customer-months", fontsize=12)
    return figure


def metric_correlations(panel: pd.DataFrame) -> pd.DataFrame:
    """Rank (Spearman) correlation of each service metric with each outcome.

    Returns
    -------
    DataFrame
        column_name, label, then one column per outcome present (``csat_mean``,
        ``csat_top2_rate``, ``complaint_rate_per_1k``), over customer-months where both are
        measured; sorted by the strength of the link with ``csat_mean``.
    """
    outcomes = [c for c in OUTCOME_METRICS if c in panel]
    rows = []
    for column, (label, _, _) in METRICS.items():
        if column not in panel:
            continue
        row: dict[str, Any] = {"column_name": column, "label": label}
        x = pd.to_numeric(panel[column], errors="coerce")
        for outcome in outcomes:
            y = pd.to_numeric(panel[outcome], errors="coerce")
            ok = x.notna() & y.notna()
            row[outcome] = float(x[ok].rank().corr(y[ok].rank())) if ok.sum() > 2 else math.nan
        rows.append(row)
    out = pd.DataFrame(rows, columns=["column_name", "label", *outcomes])
    if "csat_mean" in out and len(out):
        out = out.reindex(out["csat_mean"].abs().sort_values(ascending=False).index)
    return out.reset_index(drop=True)


def binned_outcome(
    panel: pd.DataFrame, metric: str, outcome: str = "csat_mean", bins: int = 10
) -> pd.DataFrame:
    """Mean outcome by bin of a service metric (equal-count bins), with a 95% interval.

    The outcome is weighted by survey responses (``csat_n``) for CSAT outcomes and by active
    users for the complaint rate.

    Returns
    -------
    DataFrame
        bin, metric_median (the bin's middle), n (customer-months), mean, ci_low, ci_high.
    """
    columns = ["bin", "metric_median", "n", "mean", "ci_low", "ci_high"]
    weight_column = "active_users" if outcome == "complaint_rate_per_1k" else "csat_n"
    x = pd.to_numeric(panel[metric], errors="coerce")
    y = pd.to_numeric(panel[outcome], errors="coerce")
    w = (
        pd.to_numeric(panel[weight_column], errors="coerce")
        if weight_column in panel
        else pd.Series(1.0, index=panel.index)
    )
    ok = x.notna() & y.notna() & (w > 0)
    if ok.sum() < bins * 3:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame({"x": x[ok], "y": y[ok], "w": w[ok]})
    frame["bin"] = pd.qcut(frame["x"].rank(method="first"), bins, labels=False)
    rows = []
    for b, group in frame.groupby("bin", sort=True):
        weights = group["w"] / group["w"].sum()
        mean = float((weights * group["y"]).sum())
        # standard error of a weighted mean of customer-months (Kish effective size)
        n_eff = 1 / float((weights**2).sum())
        spread = float(np.sqrt((weights * (group["y"] - mean) ** 2).sum()))
        half = 1.96 * spread / math.sqrt(max(n_eff - 1, 1))
        rows.append(
            {
                "bin": int(b),
                "metric_median": float(group["x"].median()),
                "n": len(group),
                "mean": mean,
                "ci_low": mean - half,
                "ci_high": mean + half,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def plot_relationships(panel: pd.DataFrame, outcome: str = "csat_mean", bins: int = 10):
    """Mean outcome against each service metric (binned, with 95% intervals).

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    from matplotlib.figure import Figure

    if outcome not in panel:
        return None
    metrics = [c for c in METRICS if c in panel]
    label_y, unit_y, _ = OUTCOME_METRICS.get(outcome, (outcome, "", False))
    ncols = 3
    nrows = math.ceil(len(metrics) / ncols)
    with _style():
        figure = Figure(figsize=(13, 3.2 * nrows), dpi=100, layout="constrained")
        axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, metric in zip(axes, metrics, strict=False):
            label, unit, log = METRICS[metric]
            binned = binned_outcome(panel, metric, outcome, bins)
            if binned.empty:
                ax.set_visible(False)
                continue
            ax.fill_between(
                binned["metric_median"],
                binned["ci_low"],
                binned["ci_high"],
                color="#3b6ea8",
                alpha=0.2,
            )
            ax.plot(binned["metric_median"], binned["mean"], marker="o", color="#3b6ea8")
            if log and (binned["metric_median"] > 0).all():
                ax.set_xscale("log")
            ax.set_title(f"{label_y} by {label.lower()}", fontsize=10)
            ax.set_xlabel(f"{label} ({unit}; median of each tenth)", fontsize=8)
            ax.set_ylabel(unit_y, fontsize=8)
        for ax in axes[len(metrics) :]:
            ax.set_visible(False)
        figure.suptitle(
            f"{label_y} against each service measure (95% intervals; not adjusted for the others)",
            fontsize=12,
        )
    return figure


def validation_notes(validation) -> list[str]:
    """The validation's notes (optional tables or columns absent...), for the report."""
    return list(getattr(validation, "notes", []) or [])


def cross_validation(
    models: ModelSection,
    data: ReportData,
    n_splits: int = 3,
    include_boosting: bool = True,
) -> pd.DataFrame:
    """Time-based cross-validation of every fitted model against a naive baseline and
    HistGradientBoosting on the same drivers (:func:`satmodel.evaluation.time_cv`).

    Each fold trains on the months before its test months (expanding window).

    Returns
    -------
    DataFrame
        model_name (csat, top2, complaints) and time_cv's columns: fold, model, metric, value,
        n_train, n_test, train_end, test_start, test_end, reliable.
    """
    from satmodel.evaluation import CV_COLUMNS, time_cv

    frames = []
    for name, result in models.results.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cv = time_cv(
                    model_frame(data, name),
                    result.formula,
                    result.family,
                    n_splits=n_splits,
                    exposure=result.exposure,
                    include_boosting=include_boosting,
                )
        except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
            models.notes.append(f"cross-validation of {name}: not possible ({exc})")
            continue
        cv.insert(0, "model_name", name)
        frames.append(cv)
    if not frames:
        return pd.DataFrame(columns=["model_name", *CV_COLUMNS])
    return pd.concat(frames, ignore_index=True)


CV_NAMES = {
    "satmodel": "satmodel model",
    "baseline": "naive baseline",
    "hist_gradient_boosting": "gradient boosting",
}


def cv_summary(cv: pd.DataFrame) -> pd.DataFrame:
    """Mean out-of-sample error per model and metric over the folds (lower is better).

    Returns
    -------
    DataFrame
        model_name, metric, then one column per compared model (``satmodel model``,
        ``naive baseline``, ``gradient boosting``), and ``vs_baseline_pct``: the satmodel
        model's error relative to the baseline's, in % (below 100: better than naive).
    """
    if cv.empty:
        return pd.DataFrame(columns=["model_name", "metric", "vs_baseline_pct"])
    table = cv.pivot_table(
        index=["model_name", "metric"], columns="model", values="value", aggfunc="mean"
    )
    table = table.rename(columns=CV_NAMES)
    table.columns.name = None
    table["vs_baseline_pct"] = 100 * table["satmodel model"] / table["naive baseline"]
    order = {"csat": 0, "top2": 1, "complaints": 2}
    out = table.reset_index()
    out = out.sort_values(["model_name", "metric"], key=lambda s: s.map(order).fillna(s))
    return out.reset_index(drop=True)


def plot_cv(cv: pd.DataFrame):
    """Out-of-sample error per fold: satmodel model, baseline and gradient boosting.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    import seaborn as sns

    if cv.empty:
        return None
    main = cv.loc[cv["metric"].isin(["log_loss", "deviance"])].copy()
    if main.empty:
        return None
    main["model"] = main["model"].map(CV_NAMES).fillna(main["model"])
    main["test months"] = main["test_start"] + " to " + main["test_end"]
    names = list(dict.fromkeys(main["model_name"]))
    with _style():
        figure, axes = _figure(13, 3.8, ncols=len(names))
        for ax, name in zip(axes, names, strict=True):
            rows = main.loc[main["model_name"] == name]
            sns.barplot(data=rows, x="test months", y="value", hue="model", ax=ax, errorbar=None)
            metric = rows["metric"].iloc[0]
            ax.set_title(f"{name}: {metric.replace('_', ' ')} (lower is better)", fontsize=10)
            ax.set_ylabel(metric.replace("_", " "), fontsize=9)
            ax.set_xlabel("test months (trained on all months before)", fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
            ax.legend(fontsize=7, title=None)
        figure.suptitle("Out-of-sample error, time-based cross-validation", fontsize=12)
    return figure


# --------------------------------------------------------------------------------------
# proposals (notebooks/03_expectation_to_support.ipynb)


DEFAULT_TIERS = "Bronze 99.5/800/24; Silver 99.9/500/8; Gold 99.95/300/4"
TIER_COLUMNS = ["tier", "availability_pct", "latency_p95_ms", "resolution_hours_median"]
_TIER = re.compile(r"\s*(\S.*?)\s+([0-9.]+)\s*/\s*([0-9.]+)\s*/\s*([0-9.]+)\s*")


def parse_tiers(spec: str | None = None) -> pd.DataFrame:
    """Candidate service tiers from ``"NAME availability/p95 latency/resolution; ..."``.

    Parameters
    ----------
    spec : e.g. ``"Bronze 99.5/800/24; Gold 99.95/300/4"``: availability in %, p95 latency in
        ms, median resolution time in hours; None or ``""`` for :data:`DEFAULT_TIERS`.

    Returns
    -------
    DataFrame
        tier, availability_pct, latency_p95_ms, resolution_hours_median, in the given order.

    Raises
    ------
    InputError
        For a malformed tier, a value outside its range or a repeated name.
    """
    spec = spec or DEFAULT_TIERS
    rows, problems = [], []
    for part in (p for p in str(spec).split(";") if p.strip()):
        match = _TIER.fullmatch(part)
        if not match:
            problems.append(
                f"--tiers {part.strip()!r}: expected 'NAME availability/p95 ms/resolution h', "
                "e.g. 'Gold 99.95/300/4'"
            )
            continue
        name = match.group(1)
        try:
            availability, latency, resolution = (float(match.group(i)) for i in (2, 3, 4))
        except ValueError:
            problems.append(f"--tiers {part.strip()!r}: not numbers")
            continue
        if not 0 < availability <= 100:
            problems.append(f"--tiers {name}: availability {availability:g} is outside 0..100 %")
        if latency <= 0 or resolution <= 0:
            problems.append(f"--tiers {name}: latency and resolution time must be > 0")
        if any(r[0] == name for r in rows):
            problems.append(f"--tiers {name}: named twice")
        rows.append((name, availability, latency, resolution))
    if not rows and not problems:
        problems.append(f"--tiers {spec!r}: no tier given, e.g. {DEFAULT_TIERS!r}")
    if problems:
        raise InputError(problems)
    return pd.DataFrame(rows, columns=TIER_COLUMNS)


def _known(values: list[str], shown: int = 5) -> str:
    examples = ", ".join(values[:shown])
    return examples + (f" ... ({len(values):,} in all)" if len(values) > shown else "")


def check_proposal_request(
    source,
    segment: str | None,
    customer: str | None,
    csat_target: float | None,
    complaint_target: float | None = None,
) -> None:
    """Check a proposal request against the data before anything runs.

    Raises
    ------
    InputError
        Naming valid examples, when the segment or customer is not in the customers table,
        when neither or both are given, or when a target is out of range (CSAT 1-5,
        complaints >= 0).
    """
    import difflib

    problems = []
    if (segment in (None, "")) == (customer in (None, "")):
        problems.append("proposal: give exactly one of --segment or --customer")
    problems += _target_problems(csat_target, complaint_target)
    if problems:
        raise InputError(problems)
    if not source.has("customers"):
        raise InputError(f"customers: table not found in {source.location}")
    column = "segment" if segment not in (None, "") else "customer_id"
    wanted = str(segment if column == "segment" else customer)
    values = sorted(
        str(v[0])
        for v in source.con.execute(
            f"SELECT DISTINCT {column} FROM raw.customers WHERE {column} IS NOT NULL"
        ).fetchall()
    )
    if wanted in values:
        return
    close = difflib.get_close_matches(wanted, values, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    flag = "--segment" if column == "segment" else "--customer"
    what = "segments" if column == "segment" else "customers"
    raise InputError(
        f"{flag} {wanted!r}: not in customers.{column} (valid {what}: {_known(values)}){hint}"
    )


def _target_problems(csat_target: float | None, complaint_target: float | None) -> list[str]:
    """One line per out-of-range proposal target (CSAT 1-5, complaints >= 0)."""
    problems = []
    if csat_target is None or not (isinstance(csat_target, int | float) and 1 <= csat_target <= 5):
        problems.append(f"--csat-target {csat_target!r}: must be a mean CSAT between 1 and 5")
    if complaint_target is not None and not (
        isinstance(complaint_target, int | float)
        and math.isfinite(complaint_target)
        and complaint_target >= 0
    ):
        problems.append(
            f"--complaint-target {complaint_target!r}: must be >= 0 complaints per 1,000 users"
        )
    return problems


def _slug(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return cleaned[:60] or "x"


def proposal_slug(
    segment: str | None,
    customer: str | None,
    csat_target: float,
    complaint_target: float | None = None,
) -> str:
    """A proposal's folder name: ``<segment or customer>-csat<X>[-complaints<Y>]``.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``; a customer's
    name is prefixed ``customer-`` so a segment and a customer never share a folder.

    Examples
    --------
    >>> proposal_slug("enterprise", None, 4.3, 2)
    'enterprise-csat4.3-complaints2'
    >>> proposal_slug(None, "C0001", 4.5)
    'customer-C0001-csat4.5'
    """
    name = _slug(segment) if segment not in (None, "") else "customer-" + _slug(customer)
    slug = f"{name}-csat{float(csat_target):g}"
    if complaint_target not in (None, 0, 0.0):
        slug += f"-complaints{float(complaint_target):g}"
    return slug


TIER_LEVERS = ("availability_pct", "latency_p95_ms", "resolution_hours_median")


@dataclass
class ProposalRequest:
    """Who a proposal is for and what they expect.

    Attributes
    ----------
    segment, customer : exactly one is set.
    csat_target : the mean CSAT (1-5) expected.
    complaint_target : at most this many complaints per 1,000 users a month; None for none.
    tiers : the candidate tiers (:func:`parse_tiers`).
    """

    segment: str | None
    customer: str | None
    csat_target: float
    complaint_target: float | None
    tiers: pd.DataFrame

    @property
    def subject(self) -> str:
        """``segment smb`` or ``customer C0001``."""
        return f"segment {self.segment}" if self.segment else f"customer {self.customer}"


def proposal_request(
    data: ReportData,
    segment: str = "",
    customer: str = "",
    csat_target: float = 4.2,
    complaint_target: float = 0.0,
    tiers: str = "",
) -> ProposalRequest:
    """Check and hold a proposal's parameters (empty strings and a 0 complaint target: none).

    Raises
    ------
    InputError
        For an unknown segment or customer (naming valid ones), bad targets or tiers.
    """
    complaint = float(complaint_target) if complaint_target else None
    if data.pseudonymised and customer:
        # the customer is named by its pseudonym: check it against the (pseudonymised) panel
        problems = _target_problems(csat_target, complaint)
        if problems:
            raise InputError(problems)
        known = set(data.panel["customer_id"].astype(str))
        if str(customer) not in known:
            raise InputError(
                f"--customer {customer!r}: no customer has this pseudonym (pass the real "
                "customer id; the report shows its pseudonym)"
            )
    else:
        check_proposal_request(
            data.source, segment or None, customer or None, csat_target, complaint
        )
    return ProposalRequest(
        segment=segment or None,
        customer=customer or None,
        csat_target=float(csat_target),
        complaint_target=complaint,
        tiers=parse_tiers(tiers),
    )


def proposal_intro(data: ReportData, request: ProposalRequest):
    """The proposal's opening lines (who, what they expect, the data used), as Markdown."""
    from IPython.display import Markdown

    month = data.panel.loc[data.panel["month"].astype(str) == data.month]
    if request.segment:
        rows = month.loc[month["segment"].astype(str) == request.segment]
        who = f"the **{md_escape(request.segment)}** segment ({rows['customer_id'].nunique():,} customers)"
    else:
        rows = month.loc[month["customer_id"].astype(str) == request.customer]
        segment = rows["segment"].iloc[0] if len(rows) else "?"
        who = f"customer **{md_escape(request.customer)}** (segment {md_escape(segment)})"
    wants = f"a mean CSAT of at least **{request.csat_target:.2f}**"
    if request.complaint_target is not None:
        wants += (
            f" and at most **{request.complaint_target:g} complaints per 1,000 active users** "
            "a month"
        )
    return Markdown(
        f"Proposal for {who}, who expect {wants}. Predictions use the models fitted on the "
        f"data up to {month_name(data.month)}, with the other drivers held at their values in "
        "that month."
    )


def _costs(data: ReportData):
    module = _insights("plans", data)
    if module is None:
        return None, None
    try:
        return module, module.resolve_costs(None, data.config)
    except SatmodelError as exc:
        data.notes.append(f"costs: {exc}")
        return module, None


def tier_predictions(
    models: ModelSection,
    data: ReportData,
    request: ProposalRequest,
    n_sim: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Predicted CSAT, satisfied share and complaint rate for the current service and each tier.

    Each tier sets availability, p95 latency and median resolution time
    (:func:`satmodel.insights.whatif.what_if`; other drivers held at the subject's values).
    ``meets_csat`` is ``yes`` when the whole 95% interval reaches the target, ``likely`` when
    only the prediction does, ``no`` otherwise (the same for complaints, ``-`` without a
    target). ``monthly_cost`` is the cost of moving each lever from its current level to the
    tier's (:func:`satmodel.insights.plans.lever_cost`, ``[costs]`` of the config; 0 for a
    lever the tier does not improve).

    Returns
    -------
    DataFrame
        tier, availability_pct, latency_p95_ms, resolution_hours_median, csat_mean,
        csat_mean_ci_low, csat_mean_ci_high, csat_top2_pct, csat_top2_ci_low,
        csat_top2_ci_high, complaint_rate_per_1k, complaint_ci_low, complaint_ci_high,
        meets_csat, meets_complaints, monthly_cost.
    """
    columns = ["tier", *TIER_LEVERS, "csat_mean", "csat_mean_ci_low", "csat_mean_ci_high"]
    columns += ["csat_top2_pct", "csat_top2_ci_low", "csat_top2_ci_high"]
    columns += ["complaint_rate_per_1k", "complaint_ci_low", "complaint_ci_high"]
    columns += ["meets_csat", "meets_complaints", "monthly_cost"]
    module = _insights("whatif", data)
    if module is None or not models.results:
        return pd.DataFrame(columns=columns)
    levers = [lever for lever in TIER_LEVERS if lever in data.panel]
    scenarios = [
        {"scenario": row["tier"], **{lever: float(row[lever]) for lever in levers}}
        for row in request.tiers.to_dict("records")
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = module.what_if(
            models.results,
            data.panel,
            scenarios,
            segment=request.segment,
            customer=request.customer,
            n_sim=n_sim,
            seed=seed,
        )
    out = pd.DataFrame({"tier": result["scenario"].astype(str)})
    out.loc[0, "tier"] = "Current service"
    for lever in TIER_LEVERS:
        out[lever] = result[lever].astype(float) if lever in result else math.nan
    for name, source, scale in (
        ("csat_mean", "csat_mean", 1.0),
        ("csat_top2", "csat_top2_rate", 100.0),
        ("complaint", "complaint_rate_per_1k", 1.0),
    ):
        value_column = {"csat_top2": "csat_top2_pct", "complaint": "complaint_rate_per_1k"}.get(
            name, name
        )
        for suffix, target in (("", value_column), ("_ci_low", None), ("_ci_high", None)):
            column = target or f"{name}{suffix}"
            out[column] = (
                scale * result[f"{source}{suffix}"].astype(float)
                if f"{source}{suffix}" in result
                else math.nan
            )

    def verdict(value, low_side, target, higher_better):
        if target is None or not math.isfinite(value):
            return "-"
        if higher_better:
            return "yes" if low_side >= target else ("likely" if value >= target else "no")
        return "yes" if low_side <= target else ("likely" if value <= target else "no")

    out["meets_csat"] = [
        verdict(v, lo, request.csat_target, True)
        for v, lo in zip(out["csat_mean"], out["csat_mean_ci_low"], strict=True)
    ]
    out["meets_complaints"] = [
        verdict(v, hi, request.complaint_target, False)
        for v, hi in zip(out["complaint_rate_per_1k"], out["complaint_ci_high"], strict=True)
    ]
    plans, costs = _costs(data)
    if plans is not None and costs is not None:
        current = out.iloc[0]
        out["monthly_cost"] = [
            float(
                sum(
                    plans.lever_cost(lever, row[lever], current[lever], costs)
                    for lever in levers
                    if math.isfinite(row[lever]) and math.isfinite(current[lever])
                )
            )
            for _, row in out.iterrows()
        ]
    else:
        out["monthly_cost"] = math.nan
    return out[columns]


def _with_interval(value: float, low: float, high: float, digits: int) -> str:
    if not math.isfinite(value):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def tier_view(predictions: pd.DataFrame) -> pd.DataFrame:
    """The tier predictions as a manager reads them: each outcome with its interval in one cell.

    Returns
    -------
    DataFrame
        tier, availability_pct, latency_p95_ms, resolution_hours_median, csat (e.g.
        ``4.12 (4.05-4.19)``), satisfied_pct, complaints_per_1k, meets_csat,
        meets_complaints, monthly_cost.
    """
    columns = ["tier", *TIER_LEVERS, "csat", "satisfied_pct", "complaints_per_1k"]
    columns += ["meets_csat", "meets_complaints", "monthly_cost"]
    if predictions.empty:
        return pd.DataFrame(columns=columns)
    out = predictions[["tier", *TIER_LEVERS]].copy()
    for column, (value, low, high, digits) in {
        "csat": ("csat_mean", "csat_mean_ci_low", "csat_mean_ci_high", 2),
        "satisfied_pct": ("csat_top2_pct", "csat_top2_ci_low", "csat_top2_ci_high", 0),
        "complaints_per_1k": ("complaint_rate_per_1k", "complaint_ci_low", "complaint_ci_high", 2),
    }.items():
        out[column] = [
            _with_interval(*values, digits)
            for values in zip(predictions[value], predictions[low], predictions[high], strict=True)
        ]
    for column in ("meets_csat", "meets_complaints", "monthly_cost"):
        out[column] = predictions[column]
    return out[columns].reset_index(drop=True)


def tier_requirements(
    models: ModelSection,
    data: ReportData,
    request: ProposalRequest,
    n_sim: int = 150,
    seed: int = 0,
) -> pd.DataFrame:
    """What each lever must reach for the targets, given the tier's other two levers.

    For every tier and lever, the inverse solver
    (:func:`satmodel.insights.targets.solve_target`) with the tier's other levers fixed: e.g.
    "with Silver's availability and resolution time, p95 latency must be at most X ms for a
    CSAT of 4.3". Also for the complaint target when there is one.

    Returns
    -------
    DataFrame
        tier, target_of (``CSAT`` or ``complaints``), lever, unit, direction, tier_level,
        required, ci_low, ci_high, feasible, tier_is_enough (the tier's own level is at least
        as good as the required one), extrapolated.
    """
    columns = ["tier", "target_of", "lever", "unit", "direction", "tier_level", "required"]
    columns += ["ci_low", "ci_high", "feasible", "tier_is_enough", "extrapolated"]
    module = _insights("targets", data)
    if module is None or not models.results:
        return pd.DataFrame(columns=columns)
    levers = [lever for lever in TIER_LEVERS if lever in data.panel]
    goals = [("CSAT", "csat_mean", request.csat_target)]
    if request.complaint_target is not None and "complaints" in models.results:
        goals.append(("complaints", "complaint_rate_per_1k", request.complaint_target))
    rows = []
    for tier in request.tiers.to_dict("records"):
        for label, outcome, target in goals:
            for lever in levers:
                fixed = {other: float(tier[other]) for other in levers if other != lever}
                name, unit, direction = LEVER_NAMES[lever]
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        result = module.solve_target(
                            models.results,
                            data.panel,
                            outcome,
                            target,
                            lever,
                            segment=request.segment,
                            customer=request.customer,
                            fixed=fixed,
                            n_sim=n_sim,
                            seed=seed,
                        )
                except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
                    data.notes.append(f"{tier['tier']}, {name}: not solved ({exc})")
                    continue
                required = math.nan if result.required is None else float(result.required)
                level = float(tier[lever])
                better_is_higher = lever == "availability_pct"
                enough = bool(result.feasible) and (
                    level >= required if better_is_higher else level <= required
                )
                rows.append(
                    {
                        "tier": tier["tier"],
                        "target_of": label,
                        "lever": name,
                        "unit": unit,
                        "direction": direction,
                        "tier_level": level,
                        "required": required,
                        "ci_low": math.nan if result.ci_low is None else result.ci_low,
                        "ci_high": math.nan if result.ci_high is None else result.ci_high,
                        "feasible": bool(result.feasible),
                        "tier_is_enough": enough,
                        "extrapolated": bool(result.extrapolated),
                    }
                )
    return pd.DataFrame(rows, columns=columns)


def cheapest_plans(
    models: ModelSection, data: ReportData, request: ProposalRequest, n_sim: int = 500
) -> pd.DataFrame:
    """The cheapest service levels that reach each target (:func:`insights.plans.cheapest_plan`).

    Returns
    -------
    DataFrame
        target_of, lever, unit, current, planned, change, cost, total_cost, feasible,
        predicted, predicted_ci_low, predicted_ci_high.
    """
    columns = ["target_of", "lever", "unit", "current", "planned", "change", "cost"]
    columns += ["total_cost", "feasible", "predicted", "predicted_ci_low", "predicted_ci_high"]
    plans, _ = _costs(data)
    if plans is None or not models.results:
        return pd.DataFrame(columns=columns)
    levers = tuple(lever for lever in TIER_LEVERS if lever in data.panel)
    goals = [("CSAT", "csat_mean", request.csat_target)]
    if request.complaint_target is not None and "complaints" in models.results:
        goals.append(("complaints", "complaint_rate_per_1k", request.complaint_target))
    frames = []
    for label, outcome, target in goals:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plan = plans.cheapest_plan(
                    models.results,
                    data.panel,
                    outcome,
                    target,
                    levers=levers,
                    segment=request.segment,
                    customer=request.customer,
                    config=data.config,
                    n_sim=n_sim,
                )
        except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
            data.notes.append(f"cheapest plan for the {label} target: not found ({exc})")
            continue
        table = plan.plan_.copy()
        table["lever"] = [LEVER_NAMES.get(x, (x,))[0] for x in table["lever"]]
        table.insert(0, "target_of", label)
        table["total_cost"] = plan.total_cost_
        table["feasible"] = bool(plan.feasible_)
        table["predicted"] = plan.predicted_
        table["predicted_ci_low"], table["predicted_ci_high"] = plan.predicted_ci_
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    return out[[c for c in columns if c in out]]


def recommended_tier(predictions: pd.DataFrame) -> str | None:
    """The cheapest tier that meets every target with its whole interval (else ``likely``).

    Returns None when no tier meets the targets.
    """
    tiers = predictions.iloc[1:]
    for accept in (("yes",), ("yes", "likely")):
        ok = tiers["meets_csat"].isin(accept) & tiers["meets_complaints"].isin((*accept, "-"))
        if ok.any():
            chosen = tiers.loc[ok]
            if chosen["monthly_cost"].notna().any():
                chosen = chosen.sort_values("monthly_cost", kind="stable")
            return str(chosen["tier"].iloc[0])
    return None


def proposal_text(
    request: ProposalRequest, predictions: pd.DataFrame, plans: pd.DataFrame | None = None
):
    """The proposal's answer in a few sentences, as IPython Markdown."""
    from IPython.display import Markdown

    if predictions.empty:
        return Markdown("No prediction is possible (the models could not be fitted).")
    current = predictions.iloc[0]
    lines = [
        f"**Today** {md_escape(request.subject)} is predicted at a CSAT of "
        f"{current['csat_mean']:.2f} (95% interval {current['csat_mean_ci_low']:.2f} to "
        f"{current['csat_mean_ci_high']:.2f}) against a target of {request.csat_target:.2f}"
        + (
            f", and {current['complaint_rate_per_1k']:.2f} complaints per 1,000 users against "
            f"{request.complaint_target:g}"
            if request.complaint_target is not None
            else ""
        )
        + "."
    ]
    chosen = recommended_tier(predictions)
    if chosen is None:
        lines.append(
            "**No candidate tier reaches the target.** See the required levels below for what "
            "it would take."
        )
    else:
        row = predictions.loc[predictions["tier"] == chosen].iloc[0]
        sure = "with its whole 95% interval" if row["meets_csat"] == "yes" else "on the prediction"
        cost = (
            f" at an estimated {row['monthly_cost']:,.0f} a month over today's service"
            if math.isfinite(row["monthly_cost"])
            else ""
        )
        lines.append(
            f"**Recommended tier: {md_escape(chosen)}** (availability "
            f"{row['availability_pct']:g}%, p95 latency {row['latency_p95_ms']:g} ms, median "
            f"resolution {row['resolution_hours_median']:g} h): predicted CSAT "
            f"{row['csat_mean']:.2f}, meeting the target {sure}{cost}."
        )
    if plans is not None and len(plans):
        csat_plan = plans.loc[plans["target_of"] == "CSAT"]
        if len(csat_plan) and bool(csat_plan["feasible"].iloc[0]):
            parts = ", ".join(
                f"{r.lever} {r.planned:,.4g} {r.unit}" for r in csat_plan.itertuples(index=False)
            )
            lines.append(
                f"The cheapest way to the CSAT target found by the planner: {parts}, "
                f"about {csat_plan['total_cost'].iloc[0]:,.0f} a month."
            )
    return Markdown("\n\n".join(lines))


def plot_tiers(predictions: pd.DataFrame, request: ProposalRequest):
    """Predicted CSAT (and complaint rate) per tier with 95% intervals and the targets.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    if predictions.empty:
        return None
    has_complaints = predictions["complaint_rate_per_1k"].notna().any()
    colors = {"yes": "#2e8b57", "likely": "#e0a030", "no": "#d1495b", "-": "#3b6ea8"}
    with _style():
        figure, axes = _figure(13 if has_complaints else 7, 3.8, ncols=2 if has_complaints else 1)
        names = [plot_label(t) for t in predictions["tier"]]
        x = np.arange(len(names))
        panels = [
            (
                "csat_mean",
                "csat_mean_ci_low",
                "csat_mean_ci_high",
                "meets_csat",
                "Predicted mean CSAT",
                "score 1-5",
                request.csat_target,
            )
        ]
        if has_complaints:
            panels.append(
                (
                    "complaint_rate_per_1k",
                    "complaint_ci_low",
                    "complaint_ci_high",
                    "meets_complaints",
                    "Predicted complaints",
                    "per 1,000 users / month",
                    request.complaint_target,
                )
            )
        for ax, (value, low, high, meets, title, unit, target) in zip(axes, panels, strict=True):
            values = predictions[value].astype(float)
            ax.errorbar(
                x,
                values,
                yerr=[values - predictions[low], predictions[high] - values],
                fmt="none",
                ecolor="#333333",
                capsize=4,
            )
            ax.scatter(
                x,
                values,
                s=80,
                zorder=3,
                color=[colors.get(m, "#3b6ea8") for m in predictions[meets]],
            )
            if target is not None:
                ax.axhline(target, color="#d1495b", linestyle="--", linewidth=1)
                ax.text(
                    x[-1] + 0.3,
                    target,
                    f"target {target:g}",
                    color="#d1495b",
                    fontsize=8,
                    va="bottom",
                    ha="right",
                )
            ax.set_xticks(x)
            ax.set_xticklabels(names, fontsize=9)
            ax.set_xlim(-0.5, len(names) - 0.5)
            ax.set_title(f"{title} (95% interval; green: target met)", fontsize=10)
            ax.set_ylabel(unit, fontsize=9)
        figure.suptitle(f"Service tiers for {plot_label(request.subject)}", fontsize=12)
    return figure


def proposal_summary(
    data: ReportData,
    request: ProposalRequest,
    predictions: pd.DataFrame,
    requirements: pd.DataFrame,
    plans: pd.DataFrame,
    models: ModelSection,
) -> dict[str, Any]:
    """The machine-readable proposal (``summary.json``).

    Keys: schema_version, kind (``proposal``), month, data_window, segment, customer,
    csat_target, complaint_target, recommended_tier, tiers (predictions per tier),
    requirements, plans, notes, warnings.
    """
    summary = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "kind": "proposal",
        "month": data.month,
        "data_window": list(data.window),
        "segment": request.segment,
        "customer": request.customer,
        "csat_target": request.csat_target,
        "complaint_target": request.complaint_target,
        "recommended_tier": recommended_tier(predictions) if len(predictions) else None,
        "tiers": _records(predictions),
        "requirements": _records(requirements),
        "plans": _records(plans),
        "notes": list(data.notes) + list(models.notes),
        "warnings": list(models.warnings),
    }
    return _plain(summary)


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

        return Markdown(f"**{md_escape(caption)}**: {empty}" if caption else empty)
    shown = frame.drop(columns=[c for c in ("kpi", "higher_is_better") if c in frame])
    text = [c for c in shown.columns if not pd.api.types.is_numeric_dtype(shown[c])]
    numbers = [c for c in shown.columns if c not in text]
    labels: dict[str, str] = {}
    for c in shown.columns:
        label = LABELS.get(c, c.replace("_", " "))
        labels[c] = label if label not in labels.values() else f"{label} ({c})"
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
    styler = styler.format(na_rep="-", subset=[labels[c] for c in text], escape="html")
    styler = styler.format_index(escape="html", axis=1)
    if text:
        styler = styler.set_properties(subset=[labels[c] for c in text], **{"text-align": "left"})
    if caption:
        styler = styler.set_caption(html.escape(caption))
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
    return Markdown("\n".join(f"- {md_escape(line)}" for line in lines))


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
    *,
    burn: pd.DataFrame | None = None,
    operations: pd.DataFrame | None = None,
    importance=None,
    drift: pd.DataFrame | None = None,
    targets: pd.DataFrame | None = None,
    at_risk: pd.DataFrame | None = None,
    gap_segments: pd.DataFrame | None = None,
    diagnostics: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The machine-readable summary of a report (``summary.json``).

    Keys, in this order: schema_version, month, data_window, kpis, service_levels, gaps,
    drivers, targets, data_quality, notes, warnings, then (when given) driver_importance,
    driver_drift, burn_rate, operations and diagnostics. Floats are rounded to 6 decimals and NaN is written as null, so the same data
    always gives the same file.

    Parameters
    ----------
    data, kpis, slo, gaps, quality, reasons, models, drivers : the report's core sections.
    burn : :func:`budget_burn`'s table (``burn_rate``).
    operations : :func:`operations_scorecard` (``operations``).
    importance : :func:`driver_importance` (``driver_importance``).
    drift : :func:`effect_drift` (``driver_drift``).
    targets : :func:`segment_targets` (``targets.segments``; the thresholds stay).
    at_risk : :func:`customers_at_risk` (``gaps.at_risk``).
    gap_segments : :func:`gap_view` (``gaps.by_segment``).
    diagnostics : :func:`model_diagnostics` (``diagnostics``: every check and the failed ones).

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
    if gap_segments is not None:
        gap_block["by_segment"] = _records(gap_segments)
    if at_risk is not None:
        gap_block["at_risk"] = {
            "customers": len(at_risk),
            "worst": _records(at_risk.head(10)),
        }
    importance_block = None
    if importance is not None:
        importance_block = {
            "outcome": "csat_mean",
            "measure": importance.measure_,
            "explained": importance.total_,
            "drivers": _records(importance_view(importance)),
        }
    drift_block = None
    if drift is not None:
        drift_block = {
            "compared_with": add_months(data.month, -1),
            "flagged": _records(drift.loc[drift["flagged"].astype(bool), ["model", "term"]]),
            "params": _records(drift),
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
            **({"segments": _records(targets)} if targets is not None else {}),
        },
        "data_quality": {
            "rows_read": int(quality["rows_read"].iloc[-1]) if len(quality) else 0,
            "rows_quarantined": int(quality["rows_quarantined"].iloc[-1]) if len(quality) else 0,
            "tables": _records(quality.iloc[:-1]),
            "tables_with_quarantine": int((quality.iloc[:-1]["rows_quarantined"] > 0).sum())
            if len(quality)
            else 0,
            "reasons": _records(reasons),
        },
        "notes": list(data.notes) + list(models.notes),
        "warnings": list(models.warnings),
    }
    if diagnostics is not None:
        summary["warnings"] += diagnostic_warnings(diagnostics)
    if importance_block is not None:
        summary["driver_importance"] = importance_block
    if drift_block is not None:
        summary["driver_drift"] = drift_block
    if burn is not None:
        summary["burn_rate"] = _records(burn)
    if operations is not None:
        summary["operations"] = {
            "month": data.month,
            "previous_month": add_months(data.month, -1),
            "quarter_ago": add_months(data.month, -3),
            "measures": _records(operations),
        }
    if diagnostics is not None:
        summary["diagnostics"] = {
            "checks": len(diagnostics),
            "failed": int((~diagnostics["ok"].astype(bool)).sum()),
            "rows": _records(diagnostics),
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
