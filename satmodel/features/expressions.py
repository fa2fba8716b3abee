"""The per-table ibis aggregates of the panel, shared by the DuckDB and Spark engines.

Every function takes ibis tables of clean canonical rows and returns an ibis expression keyed
by customer_id and month (``YYYY-MM`` in the ``timezone`` given, default UTC:
:func:`month_number`); nothing is executed here. The union of incident
intervals (:func:`downtime_islands`) and its cut into months, days or hours
(:func:`clip_intervals`) are the package's one implementation of downtime.
"""

from __future__ import annotations

import functools
from datetime import datetime
from zoneinfo import ZoneInfo

from satmodel.config import Thresholds
from satmodel.errors import InputError

SECONDS_PER_HOUR = 3600.0
MICROS_PER_MINUTE = 60_000_000.0
# years whose month-boundary offsets must agree for a zone to be used (its current rules)
OFFSET_YEARS = range(2016, 2041)


@functools.cache
def udfs():
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


def epoch(ts):
    """Seconds since the epoch as float64 (microsecond precision)."""
    unix_micros, _ = udfs()
    return unix_micros(ts).cast("float64") / 1e6


@functools.cache
def boundary_offsets(timezone: str) -> tuple[int, ...]:
    """The zone's UTC offset (microseconds) at local midnight on the 1st of each month.

    Returns
    -------
    tuple of 12 int
        Index 0 is January. Daylight-saving changes never fall on a month boundary, so
        these 12 numbers place every instant in its local month (:func:`month_number`).

    Raises
    ------
    InputError
        When the zone's boundary offsets differ between the years of :data:`OFFSET_YEARS`
        (its rules changed), so no 12 numbers describe it.
    """
    zone = ZoneInfo(timezone)
    offsets = set()
    for year in OFFSET_YEARS:
        offsets.add(
            tuple(
                int(datetime(year, m, 1, tzinfo=zone).utcoffset().total_seconds()) * 1_000_000
                for m in range(1, 13)
            )
        )
    if len(offsets) != 1:
        raise InputError(
            f"calendar.timezone {timezone!r}: its UTC offsets at month starts change between "
            f"{OFFSET_YEARS[0]} and {OFFSET_YEARS[-1]}; not supported (use e.g. UTC)"
        )
    return offsets.pop()


def month_number(ts, timezone: str = "UTC"):
    """Year * 100 + month of a timestamp, in ``timezone``.

    The instant is shifted by the zone's offset at the nearest month boundary (the start of
    its UTC month in the first half of it, of the next month after): near a boundary that is
    the offset that decides the month, and away from one any offset within +-14 h keeps the
    month. Integer work per row, like UTC.
    """
    import ibis

    unix_micros, timestamp_micros = udfs()
    micros = unix_micros(ts)
    if timezone != "UTC":
        offsets = boundary_offsets(timezone)
        if len(set(offsets)) == 1:
            micros = micros + offsets[0]
        else:
            utc = timestamp_micros(micros)
            month = utc.month().cast("int64")
            boundary = ibis.ifelse(utc.day() < 16, month, month % 12 + 1)
            shift = ibis.cases(*((boundary == m + 1, off) for m, off in enumerate(offsets)))
            micros = micros + shift
    local = timestamp_micros(micros)
    return local.year().cast("int64") * 100 + local.month().cast("int64")


def month_name_of(number):
    """'YYYY-MM' from :func:`month_number`."""
    year = (number // 100).cast("string")
    return year + "-" + (number % 100).cast("string").lpad(2, "0")


def month_key(ts, timezone: str = "UTC"):
    """'YYYY-MM' of a timestamp in ``timezone`` (:func:`month_number`)."""
    return month_name_of(month_number(ts, timezone))


def request_metrics(requests, thresholds: Thresholds, timezone: str = "UTC"):
    """Per customer-month request metrics as an ibis expression.

    Parameters
    ----------
    requests : ibis table with customer_id, ts, latency_ms, ok.
    thresholds : Apdex T is ``thresholds.apdex_t_ms``.
    timezone : the zone of the months (:func:`month_number`).

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
        customer_id=requests.customer_id, _month=month_number(requests.ts, timezone)
    ).aggregate(
        requests=requests.count(),
        error_rate=(~ok).cast("float64").mean(),
        apdex=score.mean(),
        _q=latency.quantile([0.5, 0.95, 0.99]),
    )
    return agg.select(
        "customer_id",
        month=month_name_of(agg._month),
        requests="requests",
        error_rate="error_rate",
        apdex="apdex",
        latency_p50_ms=agg._q[0],
        latency_p95_ms=agg._q[1],
        latency_p99_ms=agg._q[2],
    )


def apdex_counts(requests, edges, timezone: str = "UTC"):
    """Per customer-month request count and ok requests at or under each latency edge.

    One aggregation pass for any number of edges: Apdex(T) needs the counts at T and 4T.

    Parameters
    ----------
    requests : ibis table with customer_id, ts, latency_ms, ok.
    edges : latency edges in ms.
    timezone : the zone of the months (:func:`month_number`).

    Returns
    -------
    ibis table: customer_id, month, requests, ``c0``, ``c1``... (ok requests with latency_ms
    <= ``edges[i]``), only customer-months with requests.
    """
    ok = requests.ok
    agg = requests.group_by(
        customer_id=requests.customer_id, _month=month_number(requests.ts, timezone)
    ).aggregate(
        requests=requests.count(),
        **{
            f"c{i}": requests.count(where=ok & (requests.latency_ms <= float(edge)))
            for i, edge in enumerate(edges)
        },
    )
    counts = {f"c{i}": f"c{i}" for i in range(len(edges))}
    return agg.select("customer_id", month=month_name_of(agg._month), requests="requests", **counts)


def planned_mask(incidents):
    """Boolean ibis column: the incident is planned maintenance (a null ``planned`` is not)."""
    import ibis

    if "planned" not in incidents.columns:
        return ibis.literal(False)
    return incidents.planned.fill_null(False)


def counted_incidents(incidents, thresholds: Thresholds):
    """The incidents that count as downtime: without planned maintenance when
    ``thresholds.exclude_planned`` (the default), else all of them."""
    if not thresholds.exclude_planned or "planned" not in incidents.columns:
        return incidents
    return incidents.filter(~planned_mask(incidents))


def downtime_islands(incidents, by: tuple[str, ...] = ("customer_id",)):
    """The union of each customer's incident intervals, as disjoint intervals.

    Overlapping (or touching) incidents merge into one island, so every minute of downtime
    counts once.

    Parameters
    ----------
    incidents : ibis table with incident_id, start_ts, end_ts and the ``by`` columns.
    by : the columns whose groups get their own union (the customer by default; e.g. a
        scenario and the customer, or a component alone for its wall-clock outages).

    Returns
    -------
    ibis table: the ``by`` columns, s, e (island start and end, epoch microseconds).
    """
    import ibis

    unix_micros, _ = udfs()
    inc = incidents.select(
        *[incidents[k] for k in by],
        incident_id=incidents.incident_id,
        s=unix_micros(incidents.start_ts),
        e=unix_micros(incidents.end_ts),
    )
    # Gaps and islands: an incident opens a new island when it starts after every earlier
    # incident (by start, end, id) of its group has ended.
    order = [inc.s, inc.e, inc.incident_id]
    groups = [inc[k] for k in by]
    before = ibis.window(group_by=groups, order_by=order, rows=(None, -1))
    upto = ibis.window(group_by=groups, order_by=order, rows=(None, 0))
    flagged = inc.mutate(_prev_end=inc.e.max().over(before))
    flagged = flagged.mutate(
        _new=ibis.ifelse(flagged._prev_end.isnull() | (flagged.s > flagged._prev_end), 1, 0)
    )
    flagged = flagged.mutate(_island=flagged._new.sum().over(upto))
    islands = flagged.group_by(*by, "_island").aggregate(s=flagged.s.min(), e=flagged.e.max())
    return islands.select(*by, "s", "e")


def clip_intervals(intervals, periods, label: str, by: tuple[str, ...] = ("customer_id",)):
    """Intervals cut at period bounds: one row per interval and period they share time in.

    Parameters
    ----------
    intervals : ibis table with the ``by`` columns, s, e (epoch microseconds), e.g.
        :func:`downtime_islands`.
    periods : ibis table with ``label``, m_start, m_end (epoch seconds), non-overlapping.
    label : the column naming a period (``month``, ``period``).
    by : the key columns of the intervals, kept.

    Returns
    -------
    ibis table: the ``by`` columns, ``label``, s, e (the part inside the period, epoch
    microseconds).
    """
    import ibis

    start = periods.m_start.cast("int64") * 1_000_000
    end = periods.m_end.cast("int64") * 1_000_000
    joined = intervals.join(periods, (intervals.s < end) & (intervals.e > start))
    return joined.select(
        *[intervals[k] for k in by],
        **{label: periods[label]},
        s=ibis.greatest(intervals.s, start),
        e=ibis.least(intervals.e, end),
    )


def minutes(intervals):
    """Length of ``s``..``e`` (epoch microseconds) in minutes, float64."""
    return (intervals.e - intervals.s).cast("float64") / MICROS_PER_MINUTE


def incident_metrics(incidents, months, thresholds: Thresholds, timezone: str = "UTC"):
    """Counts and MTTR by start month; downtime from the union of intervals, by month.

    Planned maintenance is left out of all three when ``thresholds.exclude_planned``; its
    minutes (union of the planned intervals) are given apart either way.

    Returns
    -------
    tuple of ibis tables: (customer_id, month, incidents, mttr_hours), (customer_id, month,
    downtime_minutes), (customer_id, month, planned_downtime_minutes).
    """
    counted = counted_incidents(incidents, thresholds)
    inc = counted.select(
        customer_id=counted.customer_id,
        month=month_key(counted.start_ts, timezone),
        hours=(epoch(counted.end_ts) - epoch(counted.start_ts)) / SECONDS_PER_HOUR,
    )
    counts = inc.group_by("customer_id", "month").aggregate(
        incidents=inc.count(), mttr_hours=inc.hours.mean()
    )
    return (
        counts,
        monthly_downtime(counted, months),
        monthly_downtime(
            incidents.filter(planned_mask(incidents)), months, "planned_downtime_minutes"
        ),
    )


def monthly_downtime(incidents, months, name: str = "downtime_minutes"):
    """Minutes of each customer-month covered by the union of ``incidents``' intervals.

    Returns
    -------
    ibis table: customer_id, month, ``name`` (only customer-months with downtime).
    """
    pieces = clip_intervals(downtime_islands(incidents), months, "month")
    return pieces.group_by("customer_id", "month").aggregate(**{name: minutes(pieces).sum()})


def ticket_metrics(tickets, customers, thresholds: Thresholds, timezone: str = "UTC"):
    """Per customer-month ticket counts, response and resolution times, SLA breach rate."""
    import ibis

    sla = customers.select(
        customer_id=customers.customer_id, _sla=customers.expected_resolution_hours
    )
    joined = tickets.left_join(sla, tickets.customer_id == sla.customer_id)
    opened = epoch(joined.opened_ts)
    first_h = (epoch(joined.first_response_ts) - opened) / SECONDS_PER_HOUR
    resolution_h = (epoch(joined.resolved_ts) - opened) / SECONDS_PER_HOUR
    limit = ibis.coalesce(joined._sla, float(thresholds.default_resolution_sla_hours))
    breach = (resolution_h > limit).cast("float64")  # null when unresolved
    t = joined.select(
        customer_id=joined.customer_id,
        month=month_key(joined.opened_ts, timezone),
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


def change_metrics(changes, timezone: str = "UTC"):
    """Changes and failed changes: per customer-month (own) and per month (global ones)."""
    c = changes.select(
        customer_id=changes.customer_id,
        month=month_key(changes.ts, timezone),
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


def survey_metrics(surveys, thresholds: Thresholds, timezone: str = "UTC"):
    """Per customer-month survey count, mean CSAT, top-2 rate, NPS answers and NPS score."""

    s = surveys.select(
        customer_id=surveys.customer_id,
        month=month_key(surveys.ts, timezone),
        csat=surveys.csat.cast("float64"),
        nps=surveys.nps.cast("float64"),
    )
    # shares of promoters (9-10) and detractors (0-6) among the answers (null nps: no answer);
    # boolean casts keep float64 on every engine (float literals become DECIMAL on Spark)
    promoter = (s.nps >= 9.0).cast("float64")
    detractor = (s.nps <= 6.0).cast("float64")
    return s.group_by("customer_id", "month").aggregate(
        csat_n=s.count(),
        csat_mean=s.csat.mean(),
        csat_top2_rate=(s.csat >= float(thresholds.satisfied_cutoff)).cast("float64").mean(),
        nps_n=s.nps.count(),
        nps_score=100.0 * (promoter.mean() - detractor.mean()),
    )


def month_number_of_name(month):
    """Months since year 0 of a 'YYYY-MM' string column (as :func:`~satmodel.features.months.
    month_index`)."""
    return month.substr(0, 4).cast("int64") * 12 + month.substr(5, 2).cast("int64") - 1


def contract_metrics(contracts, months):
    """Per customer-month revenue under contract and whether a contract covers the next month.

    Returns customer_id, month, monthly_revenue (sum over the contracts covering the month),
    _covered and _covered_next (1 when some contract covers the month, the next month); only
    customer-months covered by a contract, or whose next month is, have a row. A contract
    covers start_month..end_month, or every month from start_month when end_month is null.
    """
    import ibis

    c = contracts.select(
        customer_id=contracts.customer_id,
        _start=month_number_of_name(contracts.start_month),
        _end=month_number_of_name(contracts.end_month),
        _revenue=contracts.monthly_revenue.cast("float64"),
    )
    m = months.select(month=months.month, _index=month_number_of_name(months.month))
    j = c.cross_join(m)

    def covers(index):
        return (j._start <= index) & (j._end.isnull() | (index <= j._end))

    here, following = covers(j._index), covers(j._index + 1)
    j = j.filter(here | following)
    here, following = covers(j._index), covers(j._index + 1)
    return j.group_by("customer_id", "month").aggregate(
        monthly_revenue=ibis.ifelse(here, j._revenue, 0.0).sum(),
        _covered=here.cast("int64").max(),
        _covered_next=following.cast("int64").max(),
    )


def complaint_metrics(complaints, timezone: str = "UTC"):
    """Per customer-month complaint count."""
    c = complaints.select(
        customer_id=complaints.customer_id, month=month_key(complaints.ts, timezone)
    )
    return c.group_by("customer_id", "month").aggregate(complaints=c.count())
