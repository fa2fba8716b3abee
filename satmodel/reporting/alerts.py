"""SRE multi-window burn-rate alerts: which pages and tickets a month's downtime would have raised.

The rules are the Google SRE workbook's (chapter "Alerting on SLOs"): an alert fires while the
burn rate, ``(downtime in the window / window length) / (1 - SLO/100)``, is at or above its
threshold over both a long and a short window; the short window makes it stop soon after the
downtime does. They are evaluated at the end of every minute of the month, on the exact
downtime (the union of the customer's incident intervals), so windows shorter than an hour
need no approximation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from satmodel.calendar import add_months, days_in_month, month_name, month_start
from satmodel.features.telemetry import covered_days, downtime_intervals
from satmodel.reporting.budgets import customer_slo
from satmodel.reporting.data import ReportData
from satmodel.reporting.labels import md_escape
from satmodel.reporting.pseudonyms import with_ids

# A burn rate exactly at the threshold fires; this absorbs float rounding of "exactly".
RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class AlertRule:
    """A multi-window burn-rate alert: fires while both windows burn at >= ``burn_rate``."""

    severity: str
    burn_rate: float
    long_minutes: int
    short_minutes: int

    @property
    def name(self) -> str:
        """E.g. ``page: 14.4x over 1 h and 5 min``."""
        return (
            f"{self.severity}: {self.burn_rate:g}x over {window_text(self.long_minutes)} "
            f"and {window_text(self.short_minutes)}"
        )


ALERT_RULES = (
    AlertRule("page", 14.4, 60, 5),
    AlertRule("page", 6.0, 360, 30),
    AlertRule("ticket", 1.0, 3 * 24 * 60, 360),
)
ALERT_COLUMNS = [
    "customer_id",
    "segment",
    "slo_availability_pct",
    "alert",
    "severity",
    "burn_rate_threshold",
    "long_window",
    "short_window",
    "first_fired",
    "hours_firing",
    "peak_burn_rate",
]


def window_text(minutes: int) -> str:
    """``5 min``, ``6 h``, ``3 days``."""
    if minutes % 1440 == 0:
        return f"{minutes // 1440} days" if minutes > 1440 else "1 day"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def cumulative_downtime(starts: np.ndarray, ends: np.ndarray):
    """The function ``t -> minutes of downtime before t`` of disjoint intervals (minutes)."""
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    lengths = ends - starts
    done = np.cumsum(lengths)
    xs = np.column_stack([starts, ends]).ravel()
    ys = np.column_stack([done - lengths, done]).ravel()

    def before(t: np.ndarray) -> np.ndarray:
        return np.interp(t, xs, ys, left=0.0, right=float(ys[-1]))

    return before


def burn_alerts(
    intervals: pd.DataFrame,
    customers: pd.DataFrame,
    month: str,
    slo_pct: float,
    elapsed_days: float | None = None,
    rules: tuple[AlertRule, ...] = ALERT_RULES,
    timezone: str = "UTC",
) -> pd.DataFrame:
    """The burn-rate alerts each customer's downtime would have fired in a month.

    Parameters
    ----------
    intervals : customer_id, start_ts, end_ts: each customer's downtime as disjoint intervals
        (:func:`satmodel.features.telemetry.downtime_intervals`), of the month and of the
        month before it, so that the long windows early in the month see the end of the last.
    customers : customer_id, segment and (optional) expected_availability_pct of every
        customer of the month; the SLO is the customer's own, else ``slo_pct``.
    month : ``YYYY-MM``.
    slo_pct : the default availability SLO, e.g. 99.9.
    elapsed_days : days of the month the data covers (default: all); no alert is evaluated
        after them.
    rules : the alerts to evaluate (default :data:`ALERT_RULES`).

    Returns
    -------
    DataFrame
        One row per customer and alert that fired, pages first, then by first_fired:
        customer_id, segment, slo_availability_pct, alert (its name), severity,
        burn_rate_threshold, long_window, short_window (in words), first_fired (UTC: the end
        of the first minute it fired), hours_firing (minutes it fired / 60),
        peak_burn_rate (the highest long-window burn rate while it fired; NaN for a 100%
        SLO, whose budget is zero).
    """
    n_days = days_in_month(month)
    elapsed = float(n_days if elapsed_days is None else min(max(elapsed_days, 0), n_days))
    start = month_start(month, timezone)
    t = np.arange(1, int(np.ceil(elapsed * 1440)) + 1, dtype=float)
    who = customer_slo(customers, slo_pct).set_index("customer_id")
    frame = intervals.assign(customer_id=intervals["customer_id"].astype(str))
    frame = frame.loc[frame["customer_id"].isin(who.index)]
    rows = []
    for customer, group in frame.groupby("customer_id", sort=True):
        before = cumulative_downtime(
            ((group["start_ts"] - start) / pd.Timedelta(minutes=1)).to_numpy(float),
            ((group["end_ts"] - start) / pd.Timedelta(minutes=1)).to_numpy(float),
        )
        now = before(t)
        slo = float(who.at[customer, "slo_availability_pct"])
        budget = 1 - slo / 100
        for rule in rules:
            firing = np.ones(len(t), dtype=bool)
            for window in (rule.long_minutes, rule.short_minutes):
                down = now - before(t - window)
                need = rule.burn_rate * budget * window * (1 - RELATIVE_TOLERANCE)
                firing &= (down > 0) & (down >= need)
            if not firing.any():
                continue
            long_down = now - before(t - rule.long_minutes)
            peak = (
                float(long_down[firing].max() / rule.long_minutes / budget)
                if budget > 0
                else np.nan
            )
            rows.append(
                {
                    "customer_id": customer,
                    "segment": who.at[customer, "segment"],
                    "slo_availability_pct": slo,
                    "alert": rule.name,
                    "severity": rule.severity,
                    "burn_rate_threshold": rule.burn_rate,
                    "long_window": window_text(rule.long_minutes),
                    "short_window": window_text(rule.short_minutes),
                    "first_fired": start + pd.Timedelta(minutes=float(t[firing.argmax()])),
                    "hours_firing": float(firing.sum()) / 60,
                    "peak_burn_rate": peak,
                }
            )
    alerts = pd.DataFrame(rows, columns=ALERT_COLUMNS)
    alerts["first_fired"] = pd.to_datetime(alerts["first_fired"], utc=True)
    order = alerts.assign(_page=alerts["severity"] != "page")
    order = order.sort_values(["_page", "first_fired", "customer_id"], kind="stable")
    return order[ALERT_COLUMNS].reset_index(drop=True)


def burn_alert_section(data: ReportData) -> pd.DataFrame:
    """The burn-rate alerts of the report month (:func:`burn_alerts`).

    Returns
    -------
    DataFrame
        Empty (with the columns) when the source has no incidents table.
    """
    if not data.source.has("incidents"):
        return pd.DataFrame(columns=ALERT_COLUMNS)
    intervals = pd.concat(
        [downtime_intervals(data.source, m) for m in (add_months(data.month, -1), data.month)],
        ignore_index=True,
    )
    intervals = with_ids(intervals, data.ids)
    customers = data.panel.loc[data.panel["month"].astype(str) == data.month]
    if "segment" not in customers:
        customers = customers.assign(segment="all")
    return burn_alerts(
        intervals,
        customers,
        data.month,
        data.config.thresholds.slo_availability_pct,
        covered_days(data.source, data.month),
        timezone=data.config.calendar.timezone,
    )


def alerts_text(alerts: pd.DataFrame, month: str, shown: int = 5):
    """One paragraph on the burn-rate alerts of the month, as IPython Markdown."""
    from IPython.display import Markdown

    rules = "; ".join(rule.name for rule in ALERT_RULES)
    how = (
        f" The rules ({rules}) are evaluated at every minute on each customer's exact "
        "downtime against its own availability SLO. The burn rate is how many times faster "
        "than the month allows the error budget is spent: while a customer is fully down it is "
        "100 / (100 - SLO), 1,000x at 99.9 % and 2,000x at 99.95 %. An alert fires on a fast "
        "burn early, so it also fires for customers who end the month within their budget."
    )
    if alerts.empty:
        return Markdown(f"No burn-rate alert would have fired in {month_name(month)}." + how)
    parts = []
    for severity, verb in (("page", "paged"), ("ticket", "opened a ticket")):
        hit = alerts.loc[alerts["severity"] == severity]
        customers = hit["customer_id"].drop_duplicates()
        if customers.empty:
            continue
        names = ", ".join(md_escape(c) for c in customers.head(shown))
        more = f" and {len(customers) - shown:,} more" if len(customers) > shown else ""
        parts.append(
            f"would have {verb} for **{len(customers):,} customers** ({names}{more}), "
            f"{hit['hours_firing'].sum():,.1f} alert hours in all"
        )
    return Markdown(f"In {month_name(month)}, the burn-rate alerts " + "; ".join(parts) + "." + how)
