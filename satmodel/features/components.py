"""Telemetry per IT component and per recurring problem.

Every function takes a :class:`satmodel.sources.Source` and the first and last month wanted,
runs ibis expressions on its DuckDB connection and returns a small tidy DataFrame. Downtime is
the panel's rule (:func:`satmodel.features.expressions.downtime_islands`): the union of a
customer's incident intervals, planned maintenance left out when ``[thresholds]
exclude_planned`` (the default). A component's ``downtime_minutes`` is the union of its own
incidents per customer, summed over customers; the same minute on two components counts once
in each of them but once only in :func:`downtime_total`. ``outage_minutes`` is the wall-clock
union: minutes during which the component was down for anybody. Months are those of the
source's ``[calendar] timezone``, as the panel's; ``incidents`` and ``mttr_hours`` count the
incidents starting in the months (the panel's rule), downtime every minute inside them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from satmodel.errors import InputError
from satmodel.features.engines import (
    as_str,
    duckdb_tables,
    memtable,
    quiet,
    require_table,
    to_pandas,
)
from satmodel.features.expressions import (
    SECONDS_PER_HOUR,
    clip_intervals,
    counted_incidents,
    downtime_islands,
    epoch,
    minutes,
    udfs,
)
from satmodel.features.months import check_month, month_bounds, months_frame

GROUP_KEYS = ("component_id", "problem_id")
COMPONENT_COLUMNS = (
    "component_id",
    "name",
    "kind",
    "service",
    "incidents",
    "customers_affected",
    "downtime_minutes",
    "outage_minutes",
    "mttr_hours",
    "changes",
    "failed_changes",
    "failed_changes_with_incident",
    "change_failure_rate",
)
PROBLEM_COLUMNS = (
    "problem_id",
    "component_ids",
    "incidents",
    "occurrences",
    "customers_affected",
    "downtime_minutes",
    "first_seen",
    "last_seen",
    "mean_days_between",
)
COMPONENTS_NEED = "component attribution needs it"
MICROS_PER_DAY = 86_400_000_000


def names_components(source, table: str = "incidents") -> bool:
    """True when the source's ``incidents`` (or ``changes``) table names at least one component.

    Parameters
    ----------
    source : satmodel.sources.Source (quarantined).
    table : ``incidents`` or ``changes``.
    """
    if table not in ("incidents", "changes"):
        raise InputError(f"table {table!r}: expected incidents or changes")
    if not source.has(table):
        return False
    return bool(source.con.execute(f"SELECT count(component_id) FROM {table}").fetchall()[0][0])


def _check_key(key: str) -> str:
    if key not in GROUP_KEYS:
        raise InputError(f"key {key!r}: expected one of {', '.join(GROUP_KEYS)}")
    return key


def _window(first: str, last: str) -> tuple[str, str]:
    first, last = check_month(first), check_month(last)
    if first > last:
        raise InputError(f"months {first}..{last}: the first month comes after the last")
    return first, last


def _bounds(source, first: str, last: str):
    """ibis UTC timestamps of the start of ``first`` and the end of ``last``, months of the
    source's ``[calendar] timezone``."""
    import ibis

    zone = source.config.calendar.timezone
    lo, hi = month_bounds(first, zone)[0], month_bounds(last, zone)[1]
    return ibis.literal(lo, "timestamp('UTC')"), ibis.literal(hi, "timestamp('UTC')")


def _months(source, first: str, last: str):
    """ibis table of the months (month, m_start, m_end) in the source's calendar zone."""
    return memtable(months_frame(first, last, source.config.calendar.timezone))


def _incidents(source, first: str, last: str):
    """ibis table of the clean incidents counted as downtime that share time with the months,
    with ``_started``: the incident starts in them."""
    require_table(source, "incidents", COMPONENTS_NEED)
    _, tables = duckdb_tables(source)
    incidents = counted_incidents(tables["incidents"], source.config.thresholds)
    lo, hi = _bounds(source, first, last)
    inside = incidents.filter(incidents.start_ts < hi, incidents.end_ts > lo)
    return inside.mutate(_started=inside.start_ts >= lo)


def _grouped_downtime(incidents, months, key: str):
    """Customer-minutes of the union of each group's incidents per customer (clipped)."""
    with_key = incidents.filter(incidents[key].notnull())
    by = (key, "customer_id")
    pieces = clip_intervals(downtime_islands(with_key, by=by), months, "month", by=by)
    return pieces.group_by(key).aggregate(downtime_minutes=minutes(pieces).sum())


def _wall_clock(incidents, months, key: str):
    """Each group's wall-clock union over all customers: minutes, occurrences, starts."""
    with_key = incidents.filter(incidents[key].notnull())
    islands = downtime_islands(with_key, by=(key,))
    pieces = clip_intervals(islands, months, "month", by=(key,))
    return to_pandas(pieces.group_by(key).aggregate(outage_minutes=minutes(pieces).sum())), (
        to_pandas(islands.order_by(key, "s"))
    )


def downtime_total(source, first: str, last: str) -> float:
    """Customer-minutes of downtime in the months: the union over every incident, whatever
    its component (the sum of the panel's ``downtime_minutes``)."""
    first, last = _window(first, last)
    months = _months(source, first, last)
    with quiet():
        incidents = _incidents(source, first, last)
        pieces = clip_intervals(downtime_islands(incidents), months, "month")
        frame = to_pandas(pieces.aggregate(total=minutes(pieces).sum()))
    total = frame["total"].iloc[0] if len(frame) else None
    return float(total) if total is not None and np.isfinite(total) else 0.0


def failed_change_links(source, first: str, last: str) -> pd.DataFrame:
    """Failed changes on a component and the first incident on it soon after.

    An incident is linked when it is on the change's component and starts within
    ``[thresholds] change_incident_window_hours`` (default 24) after the change.

    Returns
    -------
    DataFrame
        change_id, component_id, ts, incident_id (the first linked incident, null when none),
        linked (bool); sorted by ts, change_id.
    """
    first, last = _window(first, last)
    require_table(source, "changes", COMPONENTS_NEED)
    window_us = int(source.config.thresholds.change_incident_window_hours * 3600 * 1e6)
    lo, hi = _bounds(source, first, last)
    unix_micros, _ = udfs()
    with quiet():
        _, tables = duckdb_tables(source)
        changes = tables["changes"]
        failed = changes.filter(
            changes.failed,
            changes.component_id.notnull(),
            changes.ts >= lo,
            changes.ts < hi,
        )
        c = failed.select(
            change_id=failed.change_id,
            component_id=failed.component_id,
            ts=failed.ts,
            us=unix_micros(failed.ts),
        )
        frame = to_pandas(c)
        if "incidents" in tables:
            incidents = counted_incidents(tables["incidents"], source.config.thresholds)
            i = incidents.select(
                i_component=incidents.component_id,
                incident_id=incidents.incident_id,
                i_us=unix_micros(incidents.start_ts),
            )
            joined = c.join(
                i,
                (c.component_id == i.i_component) & (i.i_us >= c.us) & (i.i_us <= c.us + window_us),
            )
            first_hit = joined.group_by("change_id").aggregate(
                incident_id=joined.incident_id.argmin(joined.i_us)
            )
            hits = to_pandas(first_hit)
        else:
            hits = pd.DataFrame({"change_id": [], "incident_id": []})
    frame = frame.drop(columns="us").merge(hits, on="change_id", how="left")
    frame["change_id"] = as_str(frame["change_id"])
    frame["component_id"] = as_str(frame["component_id"])
    frame["incident_id"] = frame["incident_id"].astype(object).where(frame["incident_id"].notna())
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["linked"] = frame["incident_id"].notna()
    frame = frame.sort_values(["ts", "change_id"], kind="stable").reset_index(drop=True)
    return frame[["change_id", "component_id", "ts", "incident_id", "linked"]]


def _component_changes(source, first: str, last: str) -> pd.DataFrame:
    lo, hi = _bounds(source, first, last)
    with quiet():
        _, tables = duckdb_tables(source)
        changes = tables["changes"]
        inside = changes.filter(
            changes.component_id.notnull(),
            changes.ts >= lo,
            changes.ts < hi,
        )
        agg = inside.group_by("component_id").aggregate(
            changes=inside.count(), failed_changes=inside.failed.cast("int64").sum()
        )
        frame = to_pandas(agg)
    links = failed_change_links(source, first, last)
    linked = links.groupby("component_id")["linked"].sum().rename("failed_changes_with_incident")
    frame["component_id"] = as_str(frame["component_id"])
    return frame.merge(linked.reset_index(), on="component_id", how="left")


def _incident_stats(incidents, key: str):
    """Per group: incidents starting in the months and their mean hours (the panel's
    ``incidents`` and ``mttr_hours``), customers with downtime in them."""
    hours = (epoch(incidents.end_ts) - epoch(incidents.start_ts)) / SECONDS_PER_HOUR
    with_key = incidents.filter(incidents[key].notnull()).mutate(_hours=hours)
    return with_key.group_by(key).aggregate(
        incidents=with_key.count(where=with_key._started),
        customers_affected=with_key.customer_id.nunique(),
        mttr_hours=with_key._hours.mean(where=with_key._started),
    )


def component_summary(source, first: str, last: str) -> pd.DataFrame:
    """Incidents, downtime and changes of every IT component in the months.

    Parameters
    ----------
    source : satmodel.sources.Source
    first, last : ``YYYY-MM``.

    Returns
    -------
    DataFrame
        The columns of :data:`COMPONENT_COLUMNS`, one row per component of the
        ``components`` table (and per component id the incidents name when there is none),
        sorted by downtime_minutes, largest first. ``incidents`` and ``mttr_hours`` are of
        the incidents starting in the months, ``customers_affected`` the customers with
        downtime in them. Counts are 0 and rates NaN where there is nothing to count; changes
        columns are 0 without a changes table.

    Raises
    ------
    InputError
        When a month is not ``YYYY-MM`` or the source has no incidents table.
    """
    first, last = _window(first, last)
    months = _months(source, first, last)
    with quiet():
        incidents = _incidents(source, first, last)
        stats = to_pandas(_incident_stats(incidents, "component_id"))
        down = to_pandas(_grouped_downtime(incidents, months, "component_id"))
        outage, _ = _wall_clock(incidents, months, "component_id")
    frame = stats.merge(down, on="component_id", how="outer").merge(
        outage, on="component_id", how="outer"
    )
    frame["component_id"] = as_str(frame["component_id"])
    if source.has("components"):
        known = source.frame("components")
        known["component_id"] = as_str(known["component_id"])
        frame = known.merge(frame, on="component_id", how="outer")
    if source.has("changes"):
        frame = frame.merge(_component_changes(source, first, last), on="component_id", how="left")
    frame = frame.reindex(columns=list(COMPONENT_COLUMNS))
    counts = ("incidents", "customers_affected", "changes", "failed_changes")
    for column in (*counts, "failed_changes_with_incident"):
        frame[column] = frame[column].fillna(0).astype("int64")
    for column in ("downtime_minutes", "outage_minutes"):
        frame[column] = frame[column].astype("float64").fillna(0.0)
    frame["mttr_hours"] = frame["mttr_hours"].astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = frame["failed_changes"] / frame["changes"].where(frame["changes"] > 0)
    frame["change_failure_rate"] = rate.astype("float64")
    frame = frame.sort_values(["downtime_minutes", "component_id"], ascending=[False, True])
    return frame.reset_index(drop=True)


def problem_summary(source, first: str, last: str) -> pd.DataFrame:
    """Every recurring problem (``incidents.problem_id``) in the months.

    An *occurrence* is one island of the problem's wall-clock union: an outage hitting 300
    customers at once is 300 incidents but one occurrence.

    Returns
    -------
    DataFrame
        The columns of :data:`PROBLEM_COLUMNS`: component_ids (comma-separated, sorted),
        first_seen and last_seen (UTC start of the first and last occurrence),
        mean_days_between (mean days from one occurrence's start to the next; NaN with one);
        sorted by downtime_minutes, largest first.
    """
    first, last = _window(first, last)
    months = _months(source, first, last)
    with quiet():
        incidents = _incidents(source, first, last)
        stats = to_pandas(_incident_stats(incidents, "problem_id").drop("mttr_hours"))
        with_key = incidents.filter(incidents.problem_id.notnull())
        parts = with_key.group_by("problem_id").aggregate(
            component_ids=with_key.component_id.collect().unique().sort()
        )
        spans = to_pandas(parts)
        down = to_pandas(_grouped_downtime(incidents, months, "problem_id"))
        _, islands = _wall_clock(incidents, months, "problem_id")
    frame = stats.merge(down, on="problem_id", how="outer").merge(spans, on="problem_id")
    rows = []
    for problem, group in islands.groupby("problem_id", sort=True):
        starts = np.sort(group["s"].to_numpy(dtype=np.int64))
        gaps = np.diff(starts) / MICROS_PER_DAY
        rows.append(
            {
                "problem_id": problem,
                "occurrences": len(starts),
                "first_seen": pd.Timestamp(int(starts[0]), unit="us", tz="UTC"),
                "last_seen": pd.Timestamp(int(starts[-1]), unit="us", tz="UTC"),
                "mean_days_between": float(gaps.mean()) if len(gaps) else np.nan,
            }
        )
    recurrences = pd.DataFrame(
        rows,
        columns=["problem_id", "occurrences", "first_seen", "last_seen", "mean_days_between"],
    )
    frame = frame.merge(recurrences, on="problem_id", how="left")
    frame["problem_id"] = as_str(frame["problem_id"])
    frame["component_ids"] = [
        ", ".join(str(c) for c in (ids if ids is not None else []) if c is not None)
        for ids in frame["component_ids"]
    ]
    frame = frame.reindex(columns=list(PROBLEM_COLUMNS))
    for column in ("incidents", "occurrences", "customers_affected"):
        frame[column] = frame[column].fillna(0).astype("int64")
    frame["downtime_minutes"] = frame["downtime_minutes"].astype("float64").fillna(0.0)
    frame = frame.sort_values(["downtime_minutes", "problem_id"], ascending=[False, True])
    return frame.reset_index(drop=True)


def downtime_without(source, key: str, first: str, last: str) -> pd.DataFrame:
    """Each customer-month's downtime had one component's (or problem's) incidents not happened.

    The downtime left is recomputed as the union of the remaining incidents, so a minute that
    another component was also down stays down.

    Parameters
    ----------
    source : satmodel.sources.Source
    key : ``component_id`` or ``problem_id``.
    first, last : ``YYYY-MM``.

    Returns
    -------
    DataFrame
        ``key``, customer_id, month, downtime_minutes (what is left; 0 when nothing), for every
        customer-month the group's incidents shared time with; sorted by ``key``, customer_id,
        month.
    """
    key = _check_key(key)
    first, last = _window(first, last)
    months = _months(source, first, last)
    with quiet():
        incidents = _incidents(source, first, last)
        own = incidents.filter(incidents[key].notnull())
        by = (key, "customer_id")
        own_pieces = clip_intervals(downtime_islands(own, by=by), months, "month", by=by)
        touched = own_pieces.select(key, "customer_id", "month").distinct()
        groups = own.select(_group=own[key], _customer=own.customer_id).distinct()
        others = incidents.join(
            groups,
            (incidents.customer_id == groups._customer)
            & (incidents[key].isnull() | (incidents[key] != groups._group)),
        )
        others = others.select(
            **{key: others._group},
            customer_id=others.customer_id,
            incident_id=others.incident_id,
            start_ts=others.start_ts,
            end_ts=others.end_ts,
        )
        pieces = clip_intervals(downtime_islands(others, by=by), months, "month", by=by)
        left = pieces.group_by(key, "customer_id", "month").aggregate(
            downtime_minutes=minutes(pieces).sum()
        )
        joined = touched.left_join(
            left,
            [touched[k] == left[k] for k in (key, "customer_id", "month")],
        )
        result = joined.select(
            touched[key],
            touched.customer_id,
            touched.month,
            downtime_minutes=joined.downtime_minutes.fill_null(0.0),
        )
        frame = to_pandas(result.order_by(key, "customer_id", "month"))
    for column in (key, "customer_id", "month"):
        frame[column] = as_str(frame[column])
    frame["downtime_minutes"] = frame["downtime_minutes"].astype("float64")
    return frame.reset_index(drop=True)


def problem_occurrences(source, first: str, last: str) -> pd.DataFrame:
    """Every occurrence of every recurring problem: its wall-clock outage, all customers.

    Returns
    -------
    DataFrame
        problem_id, start_ts, end_ts (UTC, whole, not clipped), sorted by problem_id, start_ts.
    """
    first, last = _window(first, last)
    with quiet():
        incidents = _incidents(source, first, last)
        with_key = incidents.filter(incidents.problem_id.notnull())
        islands = to_pandas(
            downtime_islands(with_key, by=("problem_id",)).order_by("problem_id", "s")
        )
    return pd.DataFrame(
        {
            "problem_id": as_str(islands["problem_id"]),
            "start_ts": pd.to_datetime(islands["s"].astype("int64"), unit="us", utc=True),
            "end_ts": pd.to_datetime(islands["e"].astype("int64"), unit="us", utc=True),
        }
    )


def component_downtime(source, first: str, last: str) -> pd.DataFrame:
    """Each customer-month's downtime on each component (the union of its incidents there).

    Returns
    -------
    DataFrame
        component_id, customer_id, month, downtime_minutes (only where there was some);
        sorted by customer_id, month, downtime_minutes (largest first).
    """
    first, last = _window(first, last)
    months = _months(source, first, last)
    by = ("component_id", "customer_id")
    with quiet():
        incidents = _incidents(source, first, last)
        own = incidents.filter(incidents.component_id.notnull())
        pieces = clip_intervals(downtime_islands(own, by=by), months, "month", by=by)
        agg = pieces.group_by(*by, "month").aggregate(downtime_minutes=minutes(pieces).sum())
        frame = to_pandas(agg)
    for column in ("component_id", "customer_id", "month"):
        frame[column] = as_str(frame[column])
    frame["downtime_minutes"] = frame["downtime_minutes"].astype("float64")
    frame = frame.sort_values(
        ["customer_id", "month", "downtime_minutes"], ascending=[True, True, False], kind="stable"
    )
    return frame.reset_index(drop=True)
