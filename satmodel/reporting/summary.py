"""The machine-readable summaries (``summary.json``) of reports and proposals."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from satmodel.calendar import add_months, month_name
from satmodel.reporting.alerts import ALERT_RULES
from satmodel.reporting.budgets import MONTH_COMPLETE, ON_TRACK, OVER_BUDGET, WILL_BE_OVER
from satmodel.reporting.data import ReportData
from satmodel.reporting.diagnostics import diagnostic_warnings
from satmodel.reporting.drivers import ModelSection
from satmodel.reporting.insight_sections import importance_view
from satmodel.reporting.proposal import ProposalRequest, recommended_tier
from satmodel.reporting.value import value_summary

SUMMARY_SCHEMA_VERSION = 1


class StaleNote(str):
    """The report's note that the feed is stale; ``month`` is the month missing from the data.

    A note like any other in ``ReportData.notes`` (so every list of notes shows it), whose
    type lets :func:`build_summary` fill ``status.stale`` without parsing text.
    """

    month: str

    def __new__(cls, month: str, data_end: str):
        note = super().__new__(
            cls,
            f"stale data: {month_name(month)} ({month}), the last complete month, is missing "
            f"from the data, which ends in {data_end}; check the feed",
        )
        note.month = month
        return note


def stale_banner(data: ReportData, stale_month: str = ""):
    """The stale-feed warning for the report's first screen (empty when the data is current).

    Also adds it to ``data.notes`` as a :class:`StaleNote`, so ``summary.json`` says
    ``status.stale`` and the notes at the end repeat it.

    Parameters
    ----------
    data : the report's data.
    stale_month : ``YYYY-MM`` of the last complete month when the data lacks it (the
        ``stale_month`` parameter ``satmodel report`` passes), ``""`` when the data is current.
    """
    from IPython.display import Markdown

    if not stale_month:
        return Markdown("")
    note = StaleNote(stale_month, data.window[1])
    if not any(isinstance(n, StaleNote) for n in data.notes):
        data.notes.append(note)
    return Markdown(f"**Warning — {note}.**")


def report_status(data: ReportData, models: ModelSection) -> dict[str, Any]:
    """The ``status`` block of ``summary.json``: what a scheduler must look at.

    Keys: stale (the last complete month is missing from the data), missing_month
    (that month or None), models_failed (default models the data supports that could not be
    fitted; empty when the models were not attempted).
    """
    stale = next((n for n in data.notes if isinstance(n, StaleNote)), None)
    expected = []
    if data.responses is not None and len(data.responses):
        expected += ["csat", "top2"]
    if {"complaints", "active_users"} <= set(data.panel.columns):
        expected.append("complaints")
    attempted = bool(models.results) or bool(models.warnings)
    failed = [name for name in expected if attempted and name not in models.results]
    return {
        "stale": stale is not None,
        "missing_month": stale.month if stale is not None else None,
        "models_failed": failed,
    }


def proposal_summary(
    data: ReportData,
    request: ProposalRequest,
    predictions: pd.DataFrame,
    requirements: pd.DataFrame,
    plans: pd.DataFrame,
    models: ModelSection,
    commitments: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The machine-readable proposal (``summary.json``).

    Keys: schema_version, kind (``proposal``), month, data_window, segment, customer,
    csat_target, complaint_target, recommended_tier, tiers (predictions per tier),
    requirements, plans, then component_commitments (when ``commitments``, see
    :func:`satmodel.reporting.components.proposal_commitments`, is given), notes, warnings.
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
        "tiers": records(predictions),
        "requirements": records(requirements),
        "plans": records(plans),
        **({"component_commitments": records(commitments)} if commitments is not None else {}),
        "notes": list(data.notes) + list(models.notes),
        "warnings": list(models.warnings),
    }
    return json_ready(summary)


def json_ready(value: Any) -> Any:
    """JSON-ready value: numpy scalars to Python, NaN to None, floats rounded to 6 places and
    10 significant digits (a large ratio such as exp(19.6) would otherwise show the last-bit
    noise of parallel sums, and a rerun would not give the same bytes)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(float(f"{value:.10g}"), 6)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        json_ready(dict(zip(frame.columns, row, strict=True))) for row in frame.itertuples(False)
    ]


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
    budgets: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    alerts: pd.DataFrame | None = None,
    trust: dict | None = None,
    value=None,
    components=None,
    actions: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The machine-readable summary of a report (``summary.json``).

    Keys, in this order: schema_version, month, data_window, kpis, service_levels, gaps,
    drivers, targets, data_quality, notes, warnings, status (:func:`report_status`), then
    (when given) error_budgets, burn_alerts, trust, value, components, driver_importance,
    driver_drift, burn_rate, operations, diagnostics and actions. Floats are rounded to 6 decimals and NaN is
    written as null, so the same data always gives the same file.

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
    budgets : :func:`customer_budget_section`'s two tables (``error_budgets``: the segments
        and the customers not on track).
    alerts : :func:`burn_alert_section` (``burn_alerts``: the rules and the alerts fired).
    trust : :func:`trust_summary` (``trust``: mundlak per model, robustness_value,
        sensitivity, at_risk_backtest).
    value : :func:`value_section` (``value``: revenue at risk with its interval, the best
        lever, nps_score; see :func:`value_summary`).
    components : :func:`components_section`'s result (``components``: see
        :func:`components_block`).
    actions : :func:`summary_actions` (``actions``: the executive summary's "what to do
        next", with ``include_no_gain=True`` the gaps closed for no gain too).

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
        "worst": records(gaps.head(10)),
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
            "params": records(rows),
        }
    if gap_segments is not None:
        gap_block["by_segment"] = records(gap_segments)
    if at_risk is not None:
        gap_block["at_risk"] = {
            "customers": len(at_risk),
            "worst": records(at_risk.head(10)),
        }
    importance_block = None
    if importance is not None:
        importance_block = {
            "outcome": "csat_mean",
            "measure": importance.measure_,
            "explained": importance.total_,
            "drivers": records(importance_view(importance)),
        }
    drift_block = None
    if drift is not None:
        drift_block = {
            "compared_with": add_months(data.month, -1),
            "flagged": records(drift.loc[drift["flagged"].astype(bool), ["model", "term"]]),
            "params": records(drift),
        }
    summary = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "month": data.month,
        "data_window": list(data.window),
        "kpis": kpi_block,
        "service_levels": records(slo),
        "gaps": gap_block,
        "drivers": driver_block,
        "targets": {
            "slo_availability_pct": thresholds.slo_availability_pct,
            "slo_latency_p95_ms": thresholds.slo_latency_p95_ms,
            "default_resolution_sla_hours": thresholds.default_resolution_sla_hours,
            "apdex_t_ms": thresholds.apdex_t_ms,
            "satisfied_cutoff": thresholds.satisfied_cutoff,
            **({"segments": records(targets)} if targets is not None else {}),
        },
        "data_quality": {
            "rows_read": int(quality["rows_read"].iloc[-1]) if len(quality) else 0,
            "rows_quarantined": int(quality["rows_quarantined"].iloc[-1]) if len(quality) else 0,
            "tables": records(quality.iloc[:-1]),
            "tables_with_quarantine": int((quality.iloc[:-1]["rows_quarantined"] > 0).sum())
            if len(quality)
            else 0,
            "reasons": records(reasons),
        },
        "notes": list(data.notes) + list(models.notes),
        "warnings": list(models.warnings),
        "status": report_status(data, models),
    }
    if diagnostics is not None:
        summary["warnings"] += diagnostic_warnings(diagnostics)
    if budgets is not None:
        summary["error_budgets"] = budget_block(*budgets)
    if alerts is not None:
        summary["burn_alerts"] = alert_block(alerts)
    if trust is not None:
        summary["trust"] = trust
    if value is not None:
        summary["value"] = value_summary(value)
    if components is not None:
        summary["components"] = components_block(components)
    if importance_block is not None:
        summary["driver_importance"] = importance_block
    if drift_block is not None:
        summary["driver_drift"] = drift_block
    if burn is not None:
        summary["burn_rate"] = records(burn)
    if operations is not None:
        summary["operations"] = {
            "month": data.month,
            "previous_month": add_months(data.month, -1),
            "quarter_ago": add_months(data.month, -3),
            "measures": records(operations),
        }
    if diagnostics is not None:
        summary["diagnostics"] = {
            "checks": len(diagnostics),
            "failed": int((~diagnostics["ok"].astype(bool)).sum()),
            "rows": records(diagnostics),
        }
    if actions is not None:
        summary["actions"] = records(actions.assign(worth_acting=actions["csat_gain"] > 0))
    return json_ready(summary)


def components_block(result, top: int = 3) -> dict[str, Any]:
    """``components``: first_month, last_month, and the ``top`` components by the CSAT points
    their downtime cost (component_id, name, csat_points, ci_low, ci_high), largest first."""
    frame = result.components_.dropna(subset=["csat_points"]).head(top)
    rows = pd.DataFrame(
        {
            "component_id": frame["component_id"],
            "name": frame["name"].where(frame["name"].notna(), frame["component_id"]),
            "csat_points": frame["csat_points"],
            "ci_low": frame["csat_points_ci_low"],
            "ci_high": frame["csat_points_ci_high"],
        }
    )
    return {"first_month": result.months[0], "last_month": result.months[1], "top": records(rows)}


def budget_block(customers: pd.DataFrame, segments: pd.DataFrame) -> dict[str, Any]:
    """``error_budgets``: month_complete, elapsed_pct, customers_over_budget,
    customers_will_be_over, segments, customers (those not on track)."""
    if customers.empty:
        return {"segments": [], "customers": []}
    status = customers["status"]
    return {
        "month_complete": bool((customers["projection"] == MONTH_COMPLETE).all()),
        "elapsed_pct": float(customers["elapsed_pct"].iloc[0]),
        "customers_over_budget": int((status == OVER_BUDGET).sum()),
        "customers_will_be_over": int((status == WILL_BE_OVER).sum()),
        "segments": records(segments),
        "customers": records(customers.loc[status != ON_TRACK]),
    }


def alert_block(alerts: pd.DataFrame) -> dict[str, Any]:
    """``burn_alerts``: the rules, customers paged and ticketed, and every alert fired
    (first_fired as an ISO 8601 UTC time)."""
    fired = alerts.assign(first_fired=alerts["first_fired"].map(lambda t: t.isoformat()))
    return {
        "rules": [
            {
                "alert": rule.name,
                "severity": rule.severity,
                "burn_rate": rule.burn_rate,
                "long_window_minutes": rule.long_minutes,
                "short_window_minutes": rule.short_minutes,
            }
            for rule in ALERT_RULES
        ],
        "customers_paged": int(alerts.loc[alerts["severity"] == "page", "customer_id"].nunique()),
        "customers_ticketed": int(
            alerts.loc[alerts["severity"] == "ticket", "customer_id"].nunique()
        ),
        "fired": records(fired),
    }


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
    text = json.dumps(json_ready(summary), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    tmp = target.with_name(".summary.json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target
