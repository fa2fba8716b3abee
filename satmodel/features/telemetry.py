"""Telemetry aggregates for reports and insights: downtime, incidents, coverage, Apdex counts.

Every function takes a :class:`satmodel.sources.Source` (bad rows are quarantined first when
that has not been done yet), runs ibis expressions on its DuckDB connection and returns a
small tidy DataFrame with stable columns; customer_id is a string, timestamps are UTC and
months (their bounds, days and hours) are those of the source's ``[calendar] timezone``.
Downtime is the panel's own rule (:func:`satmodel.features.expressions.downtime_islands`):
the union of a customer's incident intervals, so overlapping incidents count once, clipped to
the month, as ``downtime_minutes`` and ``availability_pct`` are; planned maintenance is left
out of it (and of the incidents of a month and the operations counts) when ``[thresholds]
exclude_planned`` (the default), so error budgets only spend unplanned minutes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from satmodel.errors import InputError
from satmodel.features.engines import (
    as_str,
    duckdb_tables,
    ensure_clean,
    memtable,
    month_range,
    quiet,
    require_table,
    to_pandas,
)
from satmodel.features.expressions import (
    SECONDS_PER_HOUR,
    apdex_counts,
    clip_intervals,
    counted_incidents,
    downtime_islands,
    epoch,
    minutes,
    month_key,
    udfs,
)
from satmodel.features.months import (
    PERIOD_SECONDS,
    check_month,
    days_in_month,
    month_bounds,
    months_frame,
    periods_frame,
    window_columns,
)

INTERVAL_COLUMNS = ("customer_id", "start_ts", "end_ts")
APDEX_GRID_COLUMNS = ("customer_id", "month", "t_ms", "requests", "satisfied", "tolerating")
# The timestamps that say how far into its last month the data reaches.
COVERAGE_COLUMNS = (("requests", "ts"), ("surveys", "ts"), ("incidents", "start_ts"))
DOWNTIME_NEEDS = "downtime needs it"
MICROS_PER_DAY = 86_400_000_000
OPERATIONS_COLUMNS = (
    "month",
    "changes",
    "failed_changes",
    "releases",
    "days_between_releases",
    "incidents",
    "mttr_hours",
)
OPERATIONS_COUNTS = ("changes", "failed_changes", "releases", "incidents")
CUSTOMER_VALUE_COLUMNS = ("segment", "customer_id")


def _literal(stamp: pd.Timestamp):
    import ibis

    return ibis.literal(stamp, "timestamp('UTC')")


def _month_incidents(source, month: str):
    """ibis table of the clean incidents sharing time with ``month`` that count as downtime
    (planned maintenance left out when ``[thresholds] exclude_planned``, the default)."""
    require_table(source, "incidents", DOWNTIME_NEEDS)
    _, tables = duckdb_tables(source)
    incidents = counted_incidents(tables["incidents"], source.config.thresholds)
    lo, hi = month_bounds(month, source.config.calendar.timezone)
    return incidents.filter(incidents.start_ts < _literal(hi), incidents.end_ts > _literal(lo))


def _timestamps(micros: pd.Series) -> pd.Series:
    return pd.to_datetime(micros.astype("int64"), unit="us", utc=True)


def incidents_in_month(source, month: str) -> pd.DataFrame:
    """The clean incidents that share time with a month, whole (not clipped).

    Parameters
    ----------
    source : satmodel.sources.Source
    month : ``YYYY-MM``.

    Returns
    -------
    DataFrame
        customer_id, start_ts, end_ts (UTC), sorted by customer_id, start_ts, end_ts.

    Raises
    ------
    InputError
        When the month is not ``YYYY-MM`` or the source has no incidents table.
    """
    month = check_month(month)
    with quiet():
        incidents = _month_incidents(source, month)
        frame = to_pandas(incidents.select(*INTERVAL_COLUMNS).order_by(*INTERVAL_COLUMNS))
    frame["customer_id"] = as_str(frame["customer_id"])
    for column in ("start_ts", "end_ts"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.reset_index(drop=True)


def downtime_intervals(source, month: str) -> pd.DataFrame:
    """Each customer's downtime in a month: the union of its incident intervals, clipped.

    Parameters
    ----------
    source : satmodel.sources.Source
    month : ``YYYY-MM``.

    Returns
    -------
    DataFrame
        customer_id, start_ts, end_ts (UTC): disjoint intervals inside the month (overlapping
        incidents merged), sorted by customer_id and start_ts. Their minutes sum to the
        panel's ``downtime_minutes`` of the customer-month.

    Raises
    ------
    InputError
        When the month is not ``YYYY-MM`` or the source has no incidents table.
    """
    month = check_month(month)
    with quiet():
        islands = downtime_islands(_month_incidents(source, month))
        months = months_frame(month, month, source.config.calendar.timezone)
        pieces = clip_intervals(islands, memtable(months), "month")
        frame = to_pandas(pieces.select("customer_id", "s", "e").order_by("customer_id", "s"))
    return pd.DataFrame(
        {
            "customer_id": as_str(frame["customer_id"]),
            "start_ts": _timestamps(frame["s"]),
            "end_ts": _timestamps(frame["e"]),
        }
    )


def downtime_by_period(source, month: str, freq: str = "D") -> pd.DataFrame:
    """Minutes of downtime per customer and day (or hour) of a month.

    From the same union as :func:`downtime_intervals`: overlapping incidents count once, an
    incident crossing a day, hour or month edge is split between them. The hourly series is
    the input of multi-window burn-rate alerts.

    Parameters
    ----------
    source : satmodel.sources.Source
    month : ``YYYY-MM``.
    freq : ``"D"`` (days) or ``"h"`` (hours).

    Returns
    -------
    DataFrame
        customer_id, day (1..days in the month), hour (0..23, only for ``freq="h"``),
        downtime_minutes; only periods with downtime, sorted by customer and period.

    Raises
    ------
    InputError
        When the month or freq is not valid or the source has no incidents table.
    """
    month = check_month(month)
    if freq not in PERIOD_SECONDS:
        raise InputError(f"freq {freq!r}: expected D (days) or h (hours)")
    with quiet():
        islands = downtime_islands(_month_incidents(source, month))
        periods = periods_frame(month, freq, source.config.calendar.timezone)
        pieces = clip_intervals(islands, memtable(periods), "period")
        agg = pieces.group_by("customer_id", "period").aggregate(
            downtime_minutes=minutes(pieces).sum()
        )
        frame = to_pandas(agg.order_by("customer_id", "period"))
    per_day = 86_400 // PERIOD_SECONDS[freq]
    period = frame["period"].astype("int64")
    out = {"customer_id": as_str(frame["customer_id"]), "day": period // per_day + 1}
    if freq == "h":
        out["hour"] = period % per_day
    out["downtime_minutes"] = frame["downtime_minutes"].astype("float64")
    return pd.DataFrame(out)


def covered_days(source, month: str) -> float:
    """Days of a month the data covers.

    Every day, unless the month is the data's last one (the last month of the tables' window
    columns, e.g. ``usage.month``, ``requests.ts``): then the days up to the latest request,
    survey or incident start of the month (rounded up).

    Parameters
    ----------
    source : satmodel.sources.Source
    month : ``YYYY-MM``.

    Returns
    -------
    float
        0 to the number of days in the month.

    Raises
    ------
    InputError
        When the month is not ``YYYY-MM``.
    """
    import ibis

    month = check_month(month)
    ensure_clean(source)
    n_days = days_in_month(month)
    zone = source.config.calendar.timezone
    lo, hi = month_bounds(month, zone)
    unix_micros, _ = udfs()
    with quiet():
        _, tables = duckdb_tables(source)
        window = month_range(tables, columns=window_columns, timezone=zone)
        parts = []
        for name, column in COVERAGE_COLUMNS:
            if name in tables:
                table = tables[name]
                ts = table[column]
                inside = table.filter(ts >= _literal(lo), ts < _literal(hi))
                parts.append(inside.aggregate(latest=unix_micros(inside[column]).max()))
        if window is None or month < window[1] or not parts:
            return float(n_days)
        both = ibis.union(*parts) if len(parts) > 1 else parts[0]
        latest = both.aggregate(latest=both.latest.max()).to_pyarrow().to_pylist()[0]["latest"]
    if latest is None:
        return float(n_days)
    start = int(lo.timestamp()) * 1_000_000
    return float(min(n_days, -(-(latest - start) // MICROS_PER_DAY)))


def operations_by_month(source, first: str, last: str) -> pd.DataFrame:
    """Changes, platform releases and incidents of every month from ``first`` to ``last``.

    A change counts once, also a platform-wide one (customer_id null); the platform-wide
    changes are the **releases**. An incident counts in the month it starts in, with its whole
    duration (one row per affected customer, as the panel's ``incidents`` and ``mttr_hours``).

    Parameters
    ----------
    source : satmodel.sources.Source
    first, last : ``YYYY-MM``, the first and last month wanted.

    Returns
    -------
    DataFrame
        One row per month in order: month, changes, failed_changes, releases (int64; 0 when
        the table is absent), days_between_releases (mean days from each release of the month
        to the release before it, counting only releases from ``first`` on), incidents,
        mttr_hours (mean hours of the incidents starting in the month); NaN where there is
        nothing to measure.

    Raises
    ------
    InputError
        When a month is not ``YYYY-MM`` or ``first`` comes after ``last``.
    """
    import ibis

    first, last = check_month(first), check_month(last)
    if first > last:
        raise InputError(f"months {first}..{last}: the first month comes after the last")
    ensure_clean(source)
    unix_micros, _ = udfs()
    zone = source.config.calendar.timezone
    lo, hi = month_bounds(first, zone)[0], month_bounds(last, zone)[1]
    out = months_frame(first, last, zone)[["month"]]
    parts = []
    with quiet():
        _, tables = duckdb_tables(source)
        if "changes" in tables:
            changes = tables["changes"]
            changes = changes.filter(changes.ts >= _literal(lo), changes.ts < _literal(hi))
            c = changes.select(
                month=month_key(changes.ts, zone),
                failed=changes.failed.cast("int64"),
                release=changes.customer_id.isnull().cast("int64"),
                us=unix_micros(changes.ts),
            )
            parts.append(
                c.group_by("month").aggregate(
                    changes=c.count(), failed_changes=c.failed.sum(), releases=c.release.sum()
                )
            )
            r = c.filter(c.release == 1)
            gap = (r.us - r.us.lag().over(ibis.window(order_by=r.us))).cast("float64")
            gaps = r.mutate(gap=gap / MICROS_PER_DAY)
            parts.append(gaps.group_by("month").aggregate(days_between_releases=gaps.gap.mean()))
        if "incidents" in tables:
            incidents = counted_incidents(tables["incidents"], source.config.thresholds)
            incidents = incidents.filter(
                incidents.start_ts >= _literal(lo), incidents.start_ts < _literal(hi)
            )
            hours = (epoch(incidents.end_ts) - epoch(incidents.start_ts)) / SECONDS_PER_HOUR
            i = incidents.select(month=month_key(incidents.start_ts, zone), hours=hours)
            parts.append(
                i.group_by("month").aggregate(incidents=i.count(), mttr_hours=i.hours.mean())
            )
        for part in parts:
            frame = to_pandas(part)
            out = out.merge(frame.assign(month=as_str(frame["month"]).astype(object)), "left")
    for column in OPERATIONS_COLUMNS[1:]:
        if column not in out:
            out[column] = np.nan
        if column in OPERATIONS_COUNTS:
            out[column] = out[column].fillna(0).astype("int64")
        else:
            out[column] = out[column].astype("float64")
    return out[list(OPERATIONS_COLUMNS)].reset_index(drop=True)


def customer_values(source, column: str) -> list[str]:
    """The distinct segments or customer ids of the customers table as read, sorted.

    Read before quarantine, so a request naming a segment or customer can be checked before
    the data is validated.

    Parameters
    ----------
    source : satmodel.sources.Source
    column : ``segment`` or ``customer_id``.

    Returns
    -------
    list of str
        Without missing values.

    Raises
    ------
    InputError
        When the column is not one of these or the source has no customers table.
    """
    if column not in CUSTOMER_VALUE_COLUMNS:
        raise InputError(f"column {column!r}: expected one of {', '.join(CUSTOMER_VALUE_COLUMNS)}")
    if not source.has("customers"):
        raise InputError(f"customers: table not found in {source.location}")
    with quiet():
        table = source.ibis().table("customers", database="raw")
        values = table.filter(table[column].notnull()).select(value=table[column]).distinct()
        frame = to_pandas(values)
    return sorted(str(v) for v in frame["value"])


def threshold_grid(t_grid) -> np.ndarray:
    """Apdex thresholds T in ms as a sorted array without duplicates.

    Raises
    ------
    InputError
        When ``t_grid`` is not a non-empty sequence of positive finite numbers.
    """
    problem = InputError(f"t_grid: needs positive numbers of milliseconds, got {t_grid!r}")
    try:
        grid = np.asarray(t_grid, dtype=float)
    except (TypeError, ValueError):
        raise problem from None
    if grid.ndim != 1 or len(grid) == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise problem
    return np.unique(grid)


def apdex_grid(source, t_grid) -> pd.DataFrame:
    """Apdex counts of every customer-month for several thresholds T, in one pass.

    For each T: satisfied = ok requests with latency <= T, tolerating = ok requests with
    T < latency <= 4T (the panel's rule), so Apdex(T) = (satisfied + tolerating / 2) /
    requests.

    Parameters
    ----------
    source : satmodel.sources.Source
    t_grid : sequence of float
        Thresholds T in ms.

    Returns
    -------
    DataFrame
        customer_id, month, t_ms, requests, satisfied, tolerating (int64 counts); one row per
        customer-month with requests and T, sorted by customer_id, month, t_ms.

    Raises
    ------
    InputError
        When ``t_grid`` is not valid or the source has no requests table.
    """
    grid = threshold_grid(t_grid)
    require_table(source, "requests", "Apdex needs it")
    edges = np.unique(np.concatenate((grid, 4 * grid)))
    index = {float(e): i for i, e in enumerate(edges)}
    with quiet():
        _, tables = duckdb_tables(source)
        zone = source.config.calendar.timezone
        wide = to_pandas(apdex_counts(tables["requests"], edges, zone))
    keys = {
        "customer_id": as_str(wide["customer_id"]),
        "month": as_str(wide["month"]),
        "requests": wide["requests"].astype("int64"),
    }
    parts = []
    for t in grid:
        satisfied = wide[f"c{index[float(t)]}"].astype("int64")
        within_4t = wide[f"c{index[float(4 * t)]}"].astype("int64")
        parts.append(
            pd.DataFrame(
                {
                    **keys,
                    "t_ms": float(t),
                    "satisfied": satisfied,
                    "tolerating": within_4t - satisfied,
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)[list(APDEX_GRID_COLUMNS)]
    frame = frame.sort_values(["customer_id", "month", "t_ms"], kind="stable")
    return frame.reset_index(drop=True)
