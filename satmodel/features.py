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

Outcomes:

- active_users : from ``usage`` (null when the customer-month has no usage row).
- complaints : number of complaints in the month.
- complaint_rate_per_1k : 1000 * complaints / active_users; null when active_users is 0 or
  null (needs both ``usage`` and ``complaints``).
- csat_n, csat_mean : number and mean of survey responses in the month.
- csat_top2_rate : share of responses with csat >= ``config.thresholds.satisfied_cutoff``
  (default 4).

Types: customer_id, month, segment, region, tier are strings; the event counts (incidents,
requests, tickets, changes, complaints, csat_n) are int64; every other column is float64
(active_users too, because it can be null). Durations keep microseconds.

Scale: exact quantiles hold every value of a group in memory and DuckDB cannot spill them to
disk, so when the raw ``requests`` row count says the aggregation would not fit in half of
DuckDB's ``memory_limit`` (about 32 bytes a row), it runs in several passes over contiguous
month ranges (and customer hash buckets when needed) into a temporary table; time-ordered
Parquet row groups outside a pass's months are skipped. Pass DuckDB settings with
``build_panel(..., duckdb_settings={"memory_limit": "2GB", "temp_directory": ...})``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from satmodel.config import Config, Thresholds
from satmodel.errors import InputError
from satmodel.schema import TABLES
from satmodel.sources import apply_duckdb_settings

IDENTITY_COLUMNS = (
    "customer_id",
    "month",
    "segment",
    "region",
    "tier",
    "expected_availability_pct",
    "expected_latency_p95_ms",
    "expected_resolution_hours",
)
SERVICE_COLUMNS: dict[str, tuple[str, ...]] = {
    "incidents": ("availability_pct", "downtime_minutes", "incidents", "mttr_hours"),
    "requests": (
        "requests",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "error_rate",
        "apdex",
    ),
    "tickets": (
        "tickets",
        "first_response_hours_median",
        "resolution_hours_median",
        "resolution_hours_p90",
        "sla_breach_rate",
    ),
    "changes": ("changes", "change_failure_rate"),
}
OUTCOME_COLUMNS: dict[str, tuple[str, ...]] = {
    "usage": ("active_users",),
    "complaints": ("complaints",),
    "usage+complaints": ("complaint_rate_per_1k",),
    "surveys": ("csat_n", "csat_mean", "csat_top2_rate"),
}
COUNT_COLUMNS = frozenset({"incidents", "requests", "tickets", "changes", "complaints", "csat_n"})
STRING_COLUMNS = frozenset({"customer_id", "month", "segment", "region", "tier"})
RESPONSE_COLUMNS = ("response_id", "customer_id", "month", "ts", "csat", "nps")

# Peak bytes DuckDB needs per request row in the grouped exact-quantile aggregation (the
# quantile state keeps every value and cannot spill to disk); measured about 22 bytes.
_BYTES_PER_REQUEST = 32
# Share of DuckDB's memory_limit one request-aggregation pass may use.
_MEMORY_SHARE = 0.5
_SECONDS_PER_HOUR = 3600.0
_PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3


def panel_columns(tables: list[str] | tuple[str, ...] | set[str]) -> list[str]:
    """The panel's columns, in order, for a source holding ``tables``.

    Parameters
    ----------
    tables : names of the canonical tables present.

    Returns
    -------
    list of str
    """
    present = set(tables)
    service = [c for t, cols in SERVICE_COLUMNS.items() if t in present for c in cols]
    outcomes = [
        c
        for key, cols in OUTCOME_COLUMNS.items()
        if all(part in present for part in key.split("+"))
        for c in cols
    ]
    return [*IDENTITY_COLUMNS, *service, *(f"{c}_lag1" for c in service), *outcomes]


# --------------------------------------------------------------------------------------------
# months


def _month_index(month: str) -> int:
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def _month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _month_of(value: Any) -> str | None:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value[:7]
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
    return f"{stamp.year:04d}-{stamp.month:02d}"


def _months_frame(first: str, last: str) -> pd.DataFrame:
    """Month names with their UTC bounds in epoch seconds."""
    indices = range(_month_index(first), _month_index(last) + 1)
    names = [_month_name(i) for i in indices]
    starts = [int(pd.Timestamp(f"{m}-01", tz="UTC").timestamp()) for m in names]
    ends = [int(pd.Timestamp(f"{_month_name(i + 1)}-01", tz="UTC").timestamp()) for i in indices]
    return pd.DataFrame(
        {
            "month": pd.Series(names, dtype=object),
            "m_start": pd.Series(starts, dtype="int64"),
            "m_end": pd.Series(ends, dtype="int64"),
        }
    )


def _time_columns(table: str) -> list[str]:
    return [c.name for c in TABLES[table].columns if c.kind in ("timestamp", "month")]


# --------------------------------------------------------------------------------------------
# the ibis expressions (shared by both engines)


@functools.cache
def _udfs():
    """ibis builtin functions ``unix_micros(ts)`` and ``timestamp_micros(n)``.

    Both are Spark SQL functions. For DuckDB, sqlglot writes ``unix_micros`` as ``epoch_us``
    and :func:`prepare_duckdb` defines a ``timestamp_micros`` macro (``make_timestamp``).
    Together they give the UTC month in cheap integer work: ibis' ``strftime``/``truncate``
    on a TIMESTAMPTZ go through DuckDB's time-zone library, about 3x the CPU per row.
    """
    import ibis
    import ibis.expr.datatypes as dt

    def unix_micros(ts):
        """Microseconds since 1970-01-01 00:00 UTC."""

    def timestamp_micros(n):
        """The (time-zone-free, UTC) timestamp ``n`` microseconds after the epoch."""

    return (
        ibis.udf.scalar.builtin(
            unix_micros, name="unix_micros", signature=((dt.timestamp,), dt.int64)
        ),
        ibis.udf.scalar.builtin(
            timestamp_micros, name="timestamp_micros", signature=((dt.int64,), dt.timestamp)
        ),
    )


def prepare_duckdb(con) -> None:
    """Define the ``timestamp_micros`` macro the panel expressions use on DuckDB."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'timestamp_micros'"
    ).fetchall()[0][0]
    if not exists:
        con.execute("CREATE TEMP MACRO timestamp_micros(n) AS make_timestamp(n)")


def _epoch(ts):
    """Seconds since the epoch as float64 (microsecond precision)."""
    unix_micros, _ = _udfs()
    return unix_micros(ts).cast("float64") / 1e6


def _month_number(ts):
    """UTC year * 100 + month of a timestamp."""
    unix_micros, timestamp_micros = _udfs()
    utc = timestamp_micros(unix_micros(ts))
    return utc.year().cast("int64") * 100 + utc.month().cast("int64")


def _month_name_of(number):
    """'YYYY-MM' from :func:`_month_number`."""
    year = (number // 100).cast("string")
    return year + "-" + (number % 100).cast("string").lpad(2, "0")


def _month_key(ts):
    """'YYYY-MM' (UTC) of a timestamp."""
    return _month_name_of(_month_number(ts))


def request_metrics(requests, thresholds: Thresholds):
    """Per customer-month request metrics as an ibis expression.

    Parameters
    ----------
    requests : ibis table with customer_id, ts, latency_ms, ok.
    thresholds : Apdex T is ``thresholds.apdex_t_ms``.

    Returns
    -------
    ibis table: customer_id, month, requests, error_rate, apdex, latency_p50_ms,
    latency_p95_ms, latency_p99_ms (only customer-months with requests).
    """
    t = float(thresholds.apdex_t_ms)
    ok = requests.ok
    latency = requests.latency_ms
    # Built from booleans cast to float64: Spark reads a literal 1.0 as a DECIMAL and would
    # average the score in decimals.
    satisfied = (ok & (latency <= t)).cast("float64")
    tolerating = (ok & (latency > t) & (latency <= 4 * t)).cast("float64")
    score = satisfied + tolerating * 0.5
    # group by the integer month (cheap per row), name it on the small result
    agg = requests.group_by(
        customer_id=requests.customer_id, _month=_month_number(requests.ts)
    ).aggregate(
        requests=requests.count(),
        error_rate=(~ok).cast("float64").mean(),
        apdex=score.mean(),
        _q=latency.quantile([0.5, 0.95, 0.99]),
    )
    return agg.select(
        "customer_id",
        month=_month_name_of(agg._month),
        requests="requests",
        error_rate="error_rate",
        apdex="apdex",
        latency_p50_ms=agg._q[0],
        latency_p95_ms=agg._q[1],
        latency_p99_ms=agg._q[2],
    )


def _incident_metrics(incidents, months):
    """Counts and MTTR by start month; downtime from the union of intervals, by month."""
    import ibis

    inc = incidents.select(
        customer_id=incidents.customer_id,
        incident_id=incidents.incident_id,
        month=_month_key(incidents.start_ts),
        s=_epoch(incidents.start_ts),
        e=_epoch(incidents.end_ts),
    )
    counts = inc.group_by("customer_id", "month").aggregate(
        incidents=inc.count(),
        mttr_hours=((inc.e - inc.s) / _SECONDS_PER_HOUR).mean(),
    )
    # Gaps and islands: an incident opens a new island when it starts after every earlier
    # incident (by start, end, id) of the customer has ended.
    order = [inc.s, inc.e, inc.incident_id]
    before = ibis.window(group_by=inc.customer_id, order_by=order, rows=(None, -1))
    upto = ibis.window(group_by=inc.customer_id, order_by=order, rows=(None, 0))
    flagged = inc.mutate(_prev_end=inc.e.max().over(before))
    flagged = flagged.mutate(
        _new=ibis.ifelse(flagged._prev_end.isnull() | (flagged.s > flagged._prev_end), 1, 0)
    )
    flagged = flagged.mutate(_island=flagged._new.sum().over(upto))
    islands = flagged.group_by("customer_id", "_island").aggregate(
        s=flagged.s.min(), e=flagged.e.max()
    )
    pieces = islands.join(months, (islands.s < months.m_end) & (islands.e > months.m_start)).select(
        customer_id=islands.customer_id,
        month=months.month,
        seconds=ibis.least(islands.e, months.m_end.cast("float64"))
        - ibis.greatest(islands.s, months.m_start.cast("float64")),
    )
    downtime = pieces.group_by("customer_id", "month").aggregate(
        downtime_minutes=(pieces.seconds / 60.0).sum()
    )
    return counts, downtime


def _ticket_metrics(tickets, customers, thresholds: Thresholds):
    import ibis

    sla = customers.select(
        customer_id=customers.customer_id, _sla=customers.expected_resolution_hours
    )
    joined = tickets.left_join(sla, tickets.customer_id == sla.customer_id)
    opened = _epoch(joined.opened_ts)
    first_h = (_epoch(joined.first_response_ts) - opened) / _SECONDS_PER_HOUR
    resolution_h = (_epoch(joined.resolved_ts) - opened) / _SECONDS_PER_HOUR
    limit = ibis.coalesce(joined._sla, float(thresholds.default_resolution_sla_hours))
    breach = (resolution_h > limit).cast("float64")  # null when unresolved
    t = joined.select(
        customer_id=joined.customer_id,
        month=_month_key(joined.opened_ts),
        first_h=first_h,
        resolution_h=resolution_h,
        breach=breach,
    )
    agg = t.group_by("customer_id", "month").aggregate(
        tickets=t.count(),
        first_response_hours_median=t.first_h.quantile(0.5),
        _q=t.resolution_h.quantile([0.5, 0.9]),
        sla_breach_rate=t.breach.mean(),
    )
    return agg.select(
        "customer_id",
        "month",
        "tickets",
        "first_response_hours_median",
        resolution_hours_median=agg._q[0],
        resolution_hours_p90=agg._q[1],
        sla_breach_rate="sla_breach_rate",
    )


def _change_metrics(changes):
    c = changes.select(
        customer_id=changes.customer_id,
        month=_month_key(changes.ts),
        failed=changes.failed.cast("int64"),
    )
    mine = c.filter(c.customer_id.notnull())
    own = mine.group_by("customer_id", "month").aggregate(
        _own_n=mine.count(), _own_failed=mine.failed.sum()
    )
    everyone = c.filter(c.customer_id.isnull())
    shared = everyone.group_by("month").aggregate(
        _all_n=everyone.count(), _all_failed=everyone.failed.sum()
    )
    return own, shared


def _survey_metrics(surveys, thresholds: Thresholds):
    s = surveys.select(
        customer_id=surveys.customer_id,
        month=_month_key(surveys.ts),
        csat=surveys.csat.cast("float64"),
    )
    return s.group_by("customer_id", "month").aggregate(
        csat_n=s.count(),
        csat_mean=s.csat.mean(),
        csat_top2_rate=(s.csat >= float(thresholds.satisfied_cutoff)).cast("float64").mean(),
    )


def _complaint_metrics(complaints):
    c = complaints.select(customer_id=complaints.customer_id, month=_month_key(complaints.ts))
    return c.group_by("customer_id", "month").aggregate(complaints=c.count())


def _left_join(grid, other, keys=("customer_id", "month")):
    """Left join on same-named keys, keeping the grid's key columns only."""
    predicates = [grid[k] == other[k] for k in keys]
    extra = [c for c in other.columns if c not in keys]
    joined = grid.left_join(other, predicates)
    return joined.select(*[joined[c] for c in grid.columns], *[other[c] for c in extra])


def panel_expr(tables: Mapping[str, Any], months, thresholds: Thresholds, requests_agg=None):
    """The whole panel as one ibis expression.

    Parameters
    ----------
    tables : canonical table name -> ibis table (clean rows), for the tables present.
    months : ibis table of month, m_start, m_end (epoch seconds), every month of the panel.
    thresholds : the thresholds in force.
    requests_agg : precomputed :func:`request_metrics` (e.g. a materialized table); computed
        from ``tables["requests"]`` when None.

    Returns
    -------
    ibis table with the columns of :func:`panel_columns`, unsorted.
    """
    import ibis

    customers = tables["customers"]
    grid = customers.cross_join(months).select(
        *[customers[c] for c in IDENTITY_COLUMNS if c != "month"],
        month=months.month,
        _minutes=((months.m_end - months.m_start) / 60.0),
    )
    # Join every per-table aggregate onto the grid first, then compute the columns from the
    # final join (ibis expressions belong to one relation).
    if "incidents" in tables:
        counts, downtime = _incident_metrics(tables["incidents"], months)
        grid = _left_join(_left_join(grid, counts), downtime)
    if "requests" in tables:
        if requests_agg is None:
            requests_agg = request_metrics(tables["requests"], thresholds)
        grid = _left_join(grid, requests_agg)
    if "tickets" in tables:
        grid = _left_join(grid, _ticket_metrics(tables["tickets"], customers, thresholds))
    if "changes" in tables:
        own, shared = _change_metrics(tables["changes"])
        grid = _left_join(_left_join(grid, own), shared, keys=("month",))
    if "usage" in tables:
        usage = tables["usage"]
        usage = usage.select(
            customer_id=usage.customer_id,
            month=usage.month,
            active_users=usage.active_users.cast("float64"),
        )
        grid = _left_join(grid, usage)
    if "complaints" in tables:
        grid = _left_join(grid, _complaint_metrics(tables["complaints"]))
    if "surveys" in tables:
        grid = _left_join(grid, _survey_metrics(tables["surveys"], thresholds))

    g = grid
    nothing = ibis.null("float64")
    values: dict[str, Any] = {}
    if "incidents" in tables:
        down = g.downtime_minutes.fill_null(0.0)
        values["availability_pct"] = 100.0 * (1.0 - down / g._minutes)
        values["downtime_minutes"] = down
        values["incidents"] = g.incidents.fill_null(0)
    if "changes" in tables:
        n = g._own_n.fill_null(0) + g._all_n.fill_null(0)
        failed = g._own_failed.fill_null(0) + g._all_failed.fill_null(0)
        values["changes"] = n
        values["change_failure_rate"] = ibis.ifelse(
            n > 0, failed.cast("float64") / n.cast("float64"), nothing
        )
    for count in ("requests", "tickets", "complaints", "csat_n"):
        if count in g.columns:
            values[count] = g[count].fill_null(0)
    if "usage" in tables and "complaints" in tables:
        values["complaint_rate_per_1k"] = ibis.ifelse(
            g.active_users > 0,
            1000.0 * values["complaints"].cast("float64") / g.active_users,
            nothing,
        )

    columns = panel_columns(list(tables))
    base = [c for c in columns if not c.endswith("_lag1")]
    panel = g.select(**{c: values[c] if c in values else g[c] for c in base})
    lagged = [c for c in columns if c.endswith("_lag1")]
    if lagged:
        window = ibis.window(group_by=panel.customer_id, order_by=panel.month)
        panel = panel.mutate(**{c: panel[c[: -len("_lag1")]].lag().over(window) for c in lagged})
    return panel.select(*columns)


# --------------------------------------------------------------------------------------------
# engines


def _clean_source(source) -> None:
    """Make sure the clean views exist (quarantine bad rows first)."""
    if not source.quarantined:
        from satmodel.validation import quarantine

        quarantine(source)
    if "customers" not in source.tables:
        raise InputError(
            f"customers: table not found in {source.location} (the panel has one row per customer)"
        )


_SIZE = re.compile(r"^\s*([0-9.]+)\s*([KMGTP]?)(I?B)?\s*$", re.IGNORECASE)


def _parse_bytes(text: str) -> float | None:
    match = _SIZE.match(str(text))
    if not match:
        return None
    number, prefix, unit = match.groups()
    base = 1024 if (unit or "").upper() == "IB" else 1000
    power = " KMGTP".index(prefix.upper() or " ") if prefix else 0
    return float(number) * base**power


def _request_passes(con, rows: int) -> int:
    """How many passes the exact-quantile aggregation of ``rows`` requests needs in DuckDB."""
    limit_text = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    limit = _parse_bytes(limit_text)
    if not limit or rows <= 0:
        return 1
    return max(1, math.ceil(rows * _BYTES_PER_REQUEST / (limit * _MEMORY_SHARE)))


class _Materialized:
    """Small intermediate results kept in the engine (DuckDB temp table or cached Spark frame).

    DuckDB DDL goes through the connection itself: ibis 12's DDL helpers call DuckDB APIs that
    DuckDB 2.0 removed.
    """

    def __init__(self, backend):
        self.backend = backend
        self.duckdb = backend.name == "duckdb"
        self.names: list[str] = []
        self.cached: list[Any] = []

    def table(self, exprs: list[Any]):
        """Materialize the union of ``exprs`` (run one after the other) and return it."""
        if not self.duckdb:
            import ibis

            cached = (exprs[0] if len(exprs) == 1 else ibis.union(*exprs)).cache()
            self.cached.append(cached)
            return cached
        name = f"_satmodel_{uuid.uuid4().hex[:12]}"
        con = self.backend.con
        for i, expr in enumerate(exprs):
            sql = str(self.backend.compile(expr))
            if i == 0:
                con.execute(f'CREATE TEMP TABLE "{name}" AS {sql}')
            else:
                con.execute(f'INSERT INTO "{name}" {sql}')
        self.names.append(name)
        return self.backend.table(name)

    def release(self) -> None:
        for cached in self.cached:
            cached.release()
        for name in self.names:
            self.backend.con.execute(f'DROP TABLE IF EXISTS "{name}"')
        self.cached, self.names = [], []


def _request_pieces(requests, months: pd.DataFrame | None, passes: int, thresholds):
    """The request metrics as ``passes`` pieces (contiguous months x customer hash).

    Exact quantiles keep every value of a group in memory and DuckDB cannot spill them; one
    piece at a time keeps the peak under the memory limit. Row groups of time-ordered Parquet
    outside a piece's months are skipped.
    """
    import ibis

    if passes <= 1 or months is None:
        return [request_metrics(requests, thresholds)]
    n_months = len(months)
    month_groups = min(passes, n_months)
    buckets = math.ceil(passes / month_groups)
    edges = [round(i * n_months / month_groups) for i in range(month_groups + 1)]
    pieces = []
    for g in range(month_groups):
        lo = pd.Timestamp(int(months["m_start"].iloc[edges[g]]), unit="s", tz="UTC")
        hi = pd.Timestamp(int(months["m_end"].iloc[edges[g + 1] - 1]), unit="s", tz="UTC")
        conditions = []
        if g > 0:
            conditions.append(requests.ts >= ibis.literal(lo, "timestamp('UTC')"))
        if g < month_groups - 1:
            conditions.append(requests.ts < ibis.literal(hi, "timestamp('UTC')"))
        for b in range(buckets):
            piece = requests.filter(*conditions) if conditions else requests
            if buckets > 1:
                bucket = (piece.customer_id.hash() % buckets + buckets) % buckets  # hash < 0 too
                piece = piece.filter(bucket == b)
            pieces.append(request_metrics(piece, thresholds))
    return pieces


def _to_pandas(expr) -> pd.DataFrame:
    return expr.to_pyarrow().to_pandas()


def _as_str(values: pd.Series) -> pd.Series:
    """Strings in pandas' default string dtype, missing values kept missing."""
    if _PANDAS_3:
        return values.astype("str")
    return values.astype(object).where(values.notna(), None)


def _finish(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Canonical dtypes and order of the panel."""
    frame = frame.reindex(columns=columns)
    for column in columns:
        if column in STRING_COLUMNS:
            frame[column] = _as_str(frame[column])
        elif column in COUNT_COLUMNS:
            frame[column] = frame[column].fillna(0).astype("int64")
        else:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame = frame.sort_values(["customer_id", "month"], kind="stable").reset_index(drop=True)
    return frame


def _empty_panel(columns: list[str]) -> pd.DataFrame:
    return _finish(pd.DataFrame({c: [] for c in columns}), columns)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence known, harmless warnings of the pinned libraries, and only those.

    ibis 12 calls DuckDB 2.0's deprecated ``fetch_arrow_table``; pyspark 4.0 warns on every
    pandas conversion that pandas >= 3 is not fully supported.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"fetch_arrow_table\(\) is deprecated", category=DeprecationWarning
        )
        warnings.filterwarnings("ignore", message=r"(?s).*[Pp]andas.*", module=r"pyspark(\..*)?")
        warnings.filterwarnings("ignore", message=r"(?s).*future\.infer_string.*")
        yield


def spark_session(memory: str = "1g", shuffle_partitions: int = 2):
    """A small local Spark session (``local[1]``) for the panel, created on first use.

    Parameters
    ----------
    memory : driver memory (only effective when this call starts the JVM).
    shuffle_partitions : ``spark.sql.shuffle.partitions``.

    Returns
    -------
    pyspark.sql.SparkSession
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError(
            "engine spark: pyspark is not installed (pip install 'satmodel[spark]')"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return (
        SparkSession.builder.master("local[1]")
        .appName("satmodel")
        .config("spark.driver.memory", memory)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.default.parallelism", "1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def _month_range(tables: Mapping[str, Any], requests_agg) -> tuple[str, str] | None:
    """First and last month over every time column of the tables present (one query).

    ``requests`` contributes through its (small) aggregate, so the large table is scanned once.
    """
    import ibis

    parts = []
    for name, table in tables.items():
        if name == "customers":
            continue
        if name == "requests":
            table = requests_agg
            months = [table.month]
        elif name == "usage":
            months = [table.month]
        else:
            months = [table[c] for c in _time_columns(name)]
        for month in months:
            if month.type().is_timestamp():
                lo, hi = _month_key(month.min()), _month_key(month.max())
            else:
                lo, hi = month.min(), month.max()
            parts.append(table.aggregate(lo=lo.cast("string"), hi=hi.cast("string")))
    if not parts:
        return None
    both = ibis.union(*parts) if len(parts) > 1 else parts[0]
    row = both.aggregate(lo=both.lo.min(), hi=both.hi.max()).to_pyarrow().to_pylist()[0]
    if row["lo"] is None:
        return None
    for month in (row["lo"], row["hi"]):
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
            raise InputError(f"usage.month: not a YYYY-MM month (e.g. {month!r})")
    return row["lo"], row["hi"]


def _request_plan(source) -> tuple[int, pd.DataFrame | None]:
    """Passes the DuckDB request aggregation needs, and the months to split them by.

    Sized from the raw table's row count and time range (metadata reads for Parquet and
    DuckDB tables): an upper bound of the clean rows, used for planning only.
    """
    if "requests" not in source.tables:
        return 1, None
    rows, first, last = source.con.execute(
        "SELECT count(*), min(ts), max(ts) FROM raw.requests"
    ).fetchall()[0]
    passes = _request_passes(source.con, int(rows or 0))
    if passes <= 1 or first is None:
        return 1, None
    return passes, _months_frame(_month_of(first), _month_of(last))


def _build(backend, tables: Mapping[str, Any], config: Config, columns, plan=(1, None)):
    """Run the panel expressions on ``backend`` (DuckDB or pyspark) and return pandas."""
    import ibis

    thresholds = config.thresholds
    passes, plan_months = plan
    store = _Materialized(backend)
    try:
        requests_agg = None
        if "requests" in tables:
            pieces = _request_pieces(tables["requests"], plan_months, passes, thresholds)
            requests_agg = store.table(pieces)
        window = _month_range(tables, requests_agg)
        if window is None:
            return _empty_panel(columns)
        months = ibis.memtable(pa.Table.from_pandas(_months_frame(*window), preserve_index=False))
        expr = panel_expr(tables, months, thresholds, requests_agg=requests_agg)
        return _finish(_to_pandas(expr), columns)
    finally:
        store.release()


def _panel_duckdb(source, config: Config, columns: list[str]) -> pd.DataFrame:
    with _quiet():
        prepare_duckdb(source.con)
        backend = source.ibis()
        tables = {name: backend.table(name) for name in source.tables}
        return _build(backend, tables, config, columns, plan=_request_plan(source))


def _panel_spark(source, config: Config, columns: list[str], session) -> pd.DataFrame:
    import ibis

    with tempfile.TemporaryDirectory(prefix="satmodel-spark-") as folder, _quiet():
        session = session if session is not None else spark_session()
        backend = ibis.pyspark.connect(session)
        tables = {}
        for name in source.tables:
            path = Path(folder) / f"{name}.parquet"
            quoted = "'" + str(path).replace("'", "''") + "'"
            source.con.execute(f'COPY (SELECT * FROM "{name}") TO {quoted} (FORMAT parquet)')
            tables[name] = backend.read_parquet(
                str(path), table_name=f"satmodel_{name}_{uuid.uuid4().hex[:8]}"
            )
        return _build(backend, tables, config, columns)


def build_panel(
    source,
    config: Config | None = None,
    engine: str = "duckdb",
    *,
    duckdb_settings: Mapping[str, Any] | None = None,
    spark=None,
) -> pd.DataFrame:
    """Build the service panel: one row per customer and month.

    Parameters
    ----------
    source : :class:`satmodel.sources.Source`; bad rows are quarantined first when that has not
        been done yet.
    config : thresholds etc.; defaults to ``source.config``.
    engine : ``"duckdb"`` (default) or ``"spark"`` (same ibis expressions on local Spark).
    duckdb_settings : DuckDB settings applied to ``source.con`` before the build, e.g.
        ``{"memory_limit": "2GB", "temp_directory": "/scratch", "threads": 2}``; a config's
        ``duckdb`` settings (when it has any) are applied first.
    spark : an existing SparkSession for ``engine="spark"``; a small local one otherwise.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`panel_columns` (see the module docstring), sorted by
        customer_id and month.

    Raises
    ------
    InputError
        When ``customers`` is missing, a setting is rejected or the engine is unknown.
    """
    config = config if config is not None else source.config
    if engine not in ("duckdb", "spark"):
        raise InputError(f"engine {engine!r}: expected duckdb or spark")
    apply_duckdb_settings(source.con, duckdb_settings)
    _clean_source(source)
    columns = panel_columns(source.tables)
    if engine == "spark":
        return _panel_spark(source, config, columns, spark)
    return _panel_duckdb(source, config, columns)


def write_panel(
    source,
    out_path: str | Path,
    config: Config | None = None,
    engine: str = "duckdb",
    **kwargs: Any,
) -> Path:
    """Build the panel and write it to Parquet, atomically.

    The file is written next to ``out_path`` under a temporary name and renamed over it only
    when complete, so a failed run never destroys an earlier good file.

    Parameters
    ----------
    source, config, engine, kwargs : as for :func:`build_panel`.
    out_path : the Parquet file to write.

    Returns
    -------
    pathlib.Path
        ``out_path``.
    """
    out_path = Path(out_path)
    panel = build_panel(source, config=config, engine=engine, **kwargs)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temp = out_path.with_name(f".{out_path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        panel.to_parquet(temp, index=False)
        os.replace(temp, out_path)
    finally:
        temp.unlink(missing_ok=True)
    return out_path


def build_responses(source, panel: pd.DataFrame) -> pd.DataFrame:
    """One row per survey response with its customer-month's panel columns.

    Parameters
    ----------
    source : the source the panel was built from (its clean ``surveys`` view is read).
    panel : the output of :func:`build_panel`.

    Returns
    -------
    pandas.DataFrame
        response_id, customer_id, month, ts, csat, nps, then every other panel column of that
        customer-month (null when the panel has no such row). Note that the panel's csat_*
        columns summarise the month's responses, this one included. Sorted by customer_id,
        month, ts, response_id.

    Raises
    ------
    InputError
        When the source has no ``surveys`` table or the panel lacks customer_id or month.
    """
    _clean_source(source)
    if "surveys" not in source.tables:
        raise InputError(f"surveys: table not found in {source.location}")
    missing = [c for c in ("customer_id", "month") if c not in panel.columns]
    if missing:
        raise InputError(f"panel: column {missing[0]} missing (pass the output of build_panel)")
    responses = source.con.execute(
        "SELECT response_id, customer_id, strftime(ts, '%Y-%m') AS month, ts, "
        "CAST(csat AS BIGINT) AS csat, CAST(nps AS DOUBLE) AS nps FROM surveys"
    ).df()
    for column in ("response_id", "customer_id", "month"):
        responses[column] = responses[column].astype(pd.StringDtype(na_value=float("nan")))
    keys = panel[["customer_id", "month"]].astype(pd.StringDtype(na_value=float("nan")))
    right = panel.drop(columns=["customer_id", "month"]).assign(
        customer_id=keys["customer_id"], month=keys["month"]
    )
    right = right.drop(
        columns=[
            c for c in RESPONSE_COLUMNS if c in right.columns and c not in ("customer_id", "month")
        ]
    )
    merged = responses.merge(right, on=["customer_id", "month"], how="left", validate="m:1")
    merged = merged.sort_values(["customer_id", "month", "ts", "response_id"], kind="stable")
    return merged.reset_index(drop=True)
