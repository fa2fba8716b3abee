"""Features: raw telemetry -> the service panel, one row per customer and month.

The panel is written once, as ibis expressions over the clean canonical tables that
:func:`satmodel.validate.quarantine` exposes as plain views (``customers``, ``requests``...).
DuckDB executes them by default, straight from Parquet or the DuckDB file (``requests`` never
passes through pandas); ``engine="spark"`` runs the very same expressions on a local Spark
session through ibis' pyspark backend.

Rows: every customer of ``customers`` times every month from the first to the last month seen
in any time column of the tables present (``start_ts``, ``end_ts``, ``opened_ts``, ...) and in
``usage.month``. Months are ``YYYY-MM`` strings; timestamps are taken in UTC. Sorted by
customer_id, month.

Missing values follow one rule: event counts are 0 when their table is present but holds no
event for the customer-month; measurements are null (never 0) when there is nothing to
measure; a column whose source table is absent is left out.

Columns, in this order
----------------------
Identity and context (from ``customers``):

- customer_id, month, segment, region, tier, expected_availability_pct,
  expected_latency_p95_ms, expected_resolution_hours.

Service metrics (``incidents``):

- availability_pct : 100 * (1 - downtime_minutes / minutes in the month); 100 without downtime.
  (Planned maintenance is not downtime by default: see planned_downtime_minutes.)
- downtime_minutes : minutes of the month covered by the **union** of the customer's incident
  intervals (overlapping incidents count once; an incident that crosses a month end is split
  between the months it covers). 0 without downtime.
- incidents : number of incidents starting in the month.
- mttr_hours : mean duration (end_ts - start_ts, whole, not clipped) of the incidents
  *starting* in the month; null when none started. (Attributing each incident to its start
  month keeps incidents and mttr_hours about the same events.)

Service metrics (``requests``):

- requests : number of requests in the month.
- latency_p50_ms, latency_p95_ms, latency_p99_ms : exact quantiles of latency_ms with linear
  interpolation (DuckDB ``quantile_cont``, Spark ``percentile``, numpy's default); null when
  there were no requests.
- error_rate : share of requests with ok = false.
- apdex : (satisfied + tolerating / 2) / requests, where satisfied = ok and latency <= T,
  tolerating = ok and T < latency <= 4T, and everything else (slow or failed) is frustrated;
  T = ``config.thresholds.apdex_t_ms`` (default 500 ms).

Service metrics (``tickets``; every ticket belongs to the month it was *opened* in):

- tickets : number of tickets opened in the month.
- first_response_hours_median : median hours from opened_ts to first_response_ts over the
  month's tickets that have a first response.
- resolution_hours_median, resolution_hours_p90 : median and 90th percentile (linear
  interpolation) of hours from opened_ts to resolved_ts over the month's resolved tickets.
- sla_breach_rate : share of the month's *resolved* tickets resolved later than the
  customer's expected_resolution_hours (``config.thresholds.default_resolution_sla_hours``
  when null). Unresolved tickets are left out of numerator and denominator; null when no
  ticket of the month is resolved.

Service metrics (``changes``):

- changes : the customer's own changes in the month plus the global ones (customer_id null
  affects every customer).
- change_failure_rate : failed changes / changes; null when changes = 0.

Lags: ``<metric>_lag1`` for every service metric above, in the same order: the value of the
previous calendar month for the same customer (null in the first month).

Planned maintenance (``incidents``, after the lags):

- planned_downtime_minutes : minutes of the month covered by the union of the customer's
  *planned* incidents (``incidents.planned`` true). With ``[thresholds] exclude_planned =
  true`` (the default) planned incidents are left out of availability_pct, downtime_minutes,
  incidents and mttr_hours; with false they count there too. 0 without planned downtime.

Outcomes:

- active_users : from ``usage`` (null when the customer-month has no usage row).
- complaints : number of complaints in the month.
- complaint_rate_per_1k : 1000 * complaints / active_users; null when active_users is 0 or
  null (needs both ``usage`` and ``complaints``).
- csat_n, csat_mean : number and mean of survey responses in the month.
- csat_top2_rate : share of responses with csat >= ``config.thresholds.satisfied_cutoff``
  (default 4).
- nps_n : number of the month's responses with an NPS answer (0 when none).
- nps_score : 100 * (promoters, nps 9-10, - detractors, nps 0-6) / nps_n; null when nps_n = 0.

With the optional ``contracts`` table (its months do not widen the panel's months):

- monthly_revenue : sum of monthly_revenue over the customer's contracts covering the month
  (start_month..end_month, or from start_month on when end_month is null); null when none.
- churned : 1 in the last month under contract when no contract covers the next month (the
  customer left; a renewal starting the next month is no churn), 0 in the months under
  contract before, null when no contract covers the month (before the start, after the end,
  or a customer without a contract). A contract running past the data stays 0.

Types: customer_id, month, segment, region, tier are strings; the event counts (incidents,
requests, tickets, changes, complaints, csat_n, nps_n) are int64; every other column is float64
(active_users too, because it can be null). Durations keep microseconds.

Scale: see :mod:`satmodel.features.engines`. Pass DuckDB settings with
``open_source(..., duckdb_settings={"memory_limit": "2GB", "temp_directory": ...})``.

Modules
-------
=================  =========================================================================
``months``         calendar months and periods (UTC bounds in epoch seconds)
``expressions``    the per-table ibis aggregates, the one union of incident intervals
``engines``        clean views, DuckDB request passes, results to pandas
``panel``          grid, joins, lags: :func:`build_panel`, :func:`write_panel`,
                   :func:`build_responses`
``telemetry``      aggregates for reports and insights: downtime intervals and per day/hour,
                   incidents of a month, days covered, Apdex counts for many T
``components``     per IT component and recurring problem: union-aware downtime, failed
                   changes and their incidents, downtime without one component or problem
=================  =========================================================================
"""

from __future__ import annotations

from satmodel.features.engines import (
    ensure_clean,
    parse_bytes,
    quiet,
    request_passes,
    request_plan,
    require_table,
)
from satmodel.features.expressions import month_key, prepare_duckdb, request_metrics
from satmodel.features.panel import (
    COUNT_COLUMNS,
    IDENTITY_COLUMNS,
    OUTCOME_COLUMNS,
    PLANNED_COLUMNS,
    RESPONSE_COLUMNS,
    SERVICE_COLUMNS,
    STRING_COLUMNS,
    build_panel,
    build_responses,
    panel_columns,
    panel_expr,
    write_panel,
)
from satmodel.features.telemetry import (
    apdex_grid,
    covered_days,
    downtime_by_period,
    downtime_intervals,
    incidents_in_month,
    threshold_grid,
)

# The Spark engine's session belongs to the source layer; re-exported here, where the notebooks,
# the benchmarks and the docs have always found it.
from satmodel.sources.spark import spark_session

__all__ = [
    "COUNT_COLUMNS",
    "IDENTITY_COLUMNS",
    "OUTCOME_COLUMNS",
    "PLANNED_COLUMNS",
    "RESPONSE_COLUMNS",
    "SERVICE_COLUMNS",
    "STRING_COLUMNS",
    "apdex_grid",
    "build_panel",
    "build_responses",
    "covered_days",
    "downtime_by_period",
    "downtime_intervals",
    "ensure_clean",
    "incidents_in_month",
    "month_key",
    "panel_columns",
    "panel_expr",
    "parse_bytes",
    "prepare_duckdb",
    "quiet",
    "request_metrics",
    "request_passes",
    "request_plan",
    "require_table",
    "spark_session",
    "threshold_grid",
    "write_panel",
]
