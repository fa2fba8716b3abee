"""The service panel: grid of customers x months, joins of the per-table aggregates, lags.

The columns and their rules are described in :mod:`satmodel.features`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from satmodel.config import Config, Thresholds
from satmodel.errors import InputError
from satmodel.features.engines import (
    Materialized,
    as_str,
    duckdb_tables,
    memtable,
    month_range,
    quiet,
    request_pieces,
    request_plan,
    require_table,
    to_pandas,
)
from satmodel.features.expressions import (
    change_metrics,
    complaint_metrics,
    contract_metrics,
    incident_metrics,
    request_metrics,
    survey_metrics,
    ticket_metrics,
)
from satmodel.features.months import months_frame
from satmodel.schema import TABLES
from satmodel.sources import literal

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
    "surveys": ("csat_n", "csat_mean", "csat_top2_rate", "nps_n", "nps_score"),
    "contracts": ("monthly_revenue", "churned"),
}
# Measured beside the service metrics, but not a service metric (no lag): planned maintenance.
PLANNED_COLUMNS: dict[str, tuple[str, ...]] = {"incidents": ("planned_downtime_minutes",)}
COUNT_COLUMNS = frozenset(
    {"incidents", "requests", "tickets", "changes", "complaints", "csat_n", "nps_n"}
)
STRING_COLUMNS = frozenset({"customer_id", "month", "segment", "region", "tier"})
RESPONSE_COLUMNS = ("response_id", "customer_id", "month", "ts", "csat", "nps")
PANEL_NEEDS = "the panel has one row per customer"


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
    planned = [c for t, cols in PLANNED_COLUMNS.items() if t in present for c in cols]
    return [*IDENTITY_COLUMNS, *service, *(f"{c}_lag1" for c in service), *planned, *outcomes]


def _left_join(grid, other, keys=("customer_id", "month")):
    """Left join on same-named keys, keeping the grid's key columns only."""
    predicates = [grid[k] == other[k] for k in keys]
    extra = [c for c in other.columns if c not in keys]
    joined = grid.left_join(other, predicates)
    return joined.select(*[joined[c] for c in grid.columns], *[other[c] for c in extra])


def panel_expr(
    tables: Mapping[str, Any],
    months,
    thresholds: Thresholds,
    requests_agg=None,
    timezone: str = "UTC",
):
    """The whole panel as one ibis expression.

    Parameters
    ----------
    tables : canonical table name -> ibis table (clean rows), for the tables present.
    months : ibis table of month, m_start, m_end (epoch seconds), every month of the panel.
    thresholds : the thresholds in force.
    requests_agg : precomputed :func:`request_metrics` (e.g. a materialized table); computed
        from ``tables["requests"]`` when None (in the same ``timezone``).
    timezone : the zone whose months the timestamps fall in (``[calendar] timezone``); the
        bounds in ``months`` must be of the same zone.

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
        counts, downtime, planned = incident_metrics(
            tables["incidents"], months, thresholds, timezone
        )
        grid = _left_join(_left_join(_left_join(grid, counts), downtime), planned)
    if "requests" in tables:
        if requests_agg is None:
            requests_agg = request_metrics(tables["requests"], thresholds, timezone)
        grid = _left_join(grid, requests_agg)
    if "tickets" in tables:
        tickets = ticket_metrics(tables["tickets"], customers, thresholds, timezone)
        grid = _left_join(grid, tickets)
    if "changes" in tables:
        own, shared = change_metrics(tables["changes"], timezone)
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
        grid = _left_join(grid, complaint_metrics(tables["complaints"], timezone))
    if "surveys" in tables:
        grid = _left_join(grid, survey_metrics(tables["surveys"], thresholds, timezone))
    if "contracts" in tables:
        grid = _left_join(grid, contract_metrics(tables["contracts"], months))

    g = grid
    nothing = ibis.null("float64")
    values: dict[str, Any] = {}
    if "incidents" in tables:
        down = g.downtime_minutes.fill_null(0.0)
        values["availability_pct"] = 100.0 * (1.0 - down / g._minutes)
        values["downtime_minutes"] = down
        values["incidents"] = g.incidents.fill_null(0)
        values["planned_downtime_minutes"] = g.planned_downtime_minutes.fill_null(0.0)
    if "changes" in tables:
        n = g._own_n.fill_null(0) + g._all_n.fill_null(0)
        failed = g._own_failed.fill_null(0) + g._all_failed.fill_null(0)
        values["changes"] = n
        values["change_failure_rate"] = ibis.ifelse(
            n > 0, failed.cast("float64") / n.cast("float64"), nothing
        )
    if "contracts" in tables:
        covered = g._covered.fill_null(0) == 1
        values["monthly_revenue"] = ibis.ifelse(covered, g.monthly_revenue, nothing)
        left = ibis.ifelse(g._covered_next.fill_null(0) == 1, 0.0, 1.0)
        values["churned"] = ibis.ifelse(covered, left, nothing)
    for count in ("requests", "tickets", "complaints", "csat_n", "nps_n"):
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


def dated_tables(tables: Mapping[str, Any]) -> dict[str, Any]:
    """The tables whose rows date the panel's months (contracts and opex do not)."""
    return {name: t for name, t in tables.items() if TABLES[name].time_column is not None}


def _finish(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Canonical dtypes and order of the panel."""
    frame = frame.reindex(columns=columns)
    for column in columns:
        if column in STRING_COLUMNS:
            frame[column] = as_str(frame[column])
        elif column in COUNT_COLUMNS:
            frame[column] = frame[column].fillna(0).astype("int64")
        else:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame = frame.sort_values(["customer_id", "month"], kind="stable").reset_index(drop=True)
    return frame


def _build(backend, tables: Mapping[str, Any], config: Config, columns, plan=(1, None)):
    """Run the panel expressions on ``backend`` (DuckDB or pyspark) and return pandas.

    ``plan`` is :func:`request_plan`'s, made in ``config.calendar.timezone``.
    """
    thresholds, zone = config.thresholds, config.calendar.timezone
    passes, plan_months = plan
    store = Materialized(backend)
    try:
        requests_agg = None
        if "requests" in tables:
            pieces = request_pieces(tables["requests"], plan_months, passes, thresholds, zone)
            requests_agg = store.table(pieces)
        window = month_range(dated_tables(tables), requests_agg, timezone=zone)
        if window is None:
            return _finish(pd.DataFrame({c: [] for c in columns}), columns)
        months = memtable(months_frame(*window, timezone=zone))
        expr = panel_expr(tables, months, thresholds, requests_agg=requests_agg, timezone=zone)
        return _finish(to_pandas(expr), columns)
    finally:
        store.release()


def _panel_duckdb(source, config: Config, columns: list[str]) -> pd.DataFrame:
    with quiet():
        backend, tables = duckdb_tables(source)
        plan = request_plan(source, config.calendar.timezone)
        return _build(backend, tables, config, columns, plan=plan)


def as_spark_source(source, spark=None):
    """``source`` on Spark: a :class:`~satmodel.sources.spark.SparkSource` as is, or the same
    folder and config opened on Spark (never through DuckDB), its rows quarantined on Spark.

    Raises
    ------
    InputError
        When the source is a DuckDB file, one CSV/Parquet file or PostgreSQL: Spark reads the
        tables where they are, and cannot read those.
    """
    from satmodel.sources.spark import SparkSource, open_spark_source
    from satmodel.validation_spark import quarantine_spark

    if not isinstance(source, SparkSource):
        if source.kind != "folder":
            raise InputError(
                f"engine spark: cannot read the {source.kind} source {source.location} where it "
                "is; give a folder of Parquet tables, or [spark] root, database or jdbc_url in "
                "satmodel.toml"
            )
        source = open_spark_source(source.location, source.config, session=spark)
    if not source.quarantined:
        with quiet():
            quarantine_spark(source, persist=False)
    return source


def _panel_spark(source, config: Config, columns: list[str]) -> pd.DataFrame:
    import ibis

    backend = ibis.pyspark.connect(source.session)
    views = {name: f"satmodel_{name}_{uuid.uuid4().hex[:8]}" for name in source.tables}
    try:
        with quiet():
            for name, view in views.items():
                source.clean[name].createOrReplaceTempView(view)
            tables = {name: backend.table(view) for name, view in views.items()}
            return _build(backend, tables, config, columns)
    finally:
        for view in views.values():
            source.session.catalog.dropTempView(view)


def build_panel(
    source,
    config: Config | None = None,
    engine: str = "duckdb",
    *,
    spark=None,
) -> pd.DataFrame:
    """Build the service panel: one row per customer and month.

    Parameters
    ----------
    source : :class:`satmodel.sources.Source`; bad rows are quarantined first when that has not
        been done yet.
    config : thresholds etc.; defaults to ``source.config``.
    engine : ``"duckdb"`` (default) or ``"spark"``: the same ibis expressions on Spark, over
        the tables read where they are and quarantined on Spark (a
        :class:`~satmodel.sources.spark.SparkSource` always runs on Spark).
    spark : an existing SparkSession for ``engine="spark"``; by default the one ``[spark]``
        of the config describes (see :func:`satmodel.features.spark_session`).

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`panel_columns` (see :mod:`satmodel.features`), sorted by
        customer_id and month.

    Raises
    ------
    InputError
        When ``customers`` is missing or the engine is unknown.
    """
    config = config if config is not None else source.config
    if engine not in ("duckdb", "spark"):
        raise InputError(f"engine {engine!r}: expected duckdb or spark")
    if engine == "spark" or not hasattr(source, "con"):
        source = as_spark_source(source, spark)
        if not source.has("customers"):
            raise InputError(f"customers: table not found in {source.location} ({PANEL_NEEDS})")
        return _panel_spark(source, config, panel_columns(source.tables))
    require_table(source, "customers", PANEL_NEEDS)
    return _panel_duckdb(source, config, panel_columns(source.tables))


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


def _panel_right(panel: pd.DataFrame, drop: tuple[str, ...]) -> pd.DataFrame:
    """The panel keyed by string customer_id and month, without the columns in ``drop``."""
    missing = [c for c in ("customer_id", "month") if c not in panel.columns]
    if missing:
        raise InputError(f"panel: column {missing[0]} missing (pass the output of build_panel)")
    keys = panel[["customer_id", "month"]].astype(pd.StringDtype(na_value=float("nan")))
    right = panel.drop(columns=["customer_id", "month"]).assign(
        customer_id=keys["customer_id"], month=keys["month"]
    )
    return right.drop(columns=[c for c in drop if c in right.columns and c not in keys.columns])


def _response_patterns(source, spark=None) -> pd.DataFrame:
    """Survey responses collapsed on Spark: one row per customer, month and csat, with weight."""
    source = as_spark_source(source, spark)
    if not source.has("surveys"):
        raise InputError(f"surveys: table not found in {source.location}")
    timezone = source.config.calendar.timezone  # a checked IANA name, safe in the SQL text
    with quiet():
        patterns = (
            source.clean["surveys"]
            .selectExpr(
                "customer_id",
                f"date_format(from_utc_timestamp(ts, '{timezone}'), 'yyyy-MM') AS month",
                "CAST(csat AS BIGINT) AS csat",
            )
            .groupBy("customer_id", "month", "csat")
            .count()
            .withColumnRenamed("count", "weight")
            .toPandas()
        )
    for column in ("customer_id", "month"):
        patterns[column] = patterns[column].astype(pd.StringDtype(na_value=float("nan")))
    return patterns.astype({"csat": "int64", "weight": "int64"})


def build_responses(
    source, panel: pd.DataFrame, engine: str = "duckdb", *, spark=None
) -> pd.DataFrame:
    """One row per survey response (or, on Spark, per response pattern) with its customer-month's
    panel columns.

    Parameters
    ----------
    source : the source the panel was built from (its clean ``surveys`` rows are read; a
        response's month is that of its ts in the source's ``[calendar] timezone``).
    panel : the output of :func:`build_panel`.
    engine : ``"duckdb"``: one row per response. ``"spark"``: the responses collapsed on the
        cluster to covariate patterns, one row per customer, month and csat with a ``weight``
        column (the number of such responses), so only these small rows reach the driver; fit
        them with ``satmodel.fit(..., weights="weight")``.
    spark : an existing SparkSession for ``engine="spark"``.

    Returns
    -------
    pandas.DataFrame
        DuckDB: response_id, customer_id, month, ts, csat, nps, then every other panel column
        of that customer-month (null when the panel has no such row), sorted by customer_id,
        month, ts, response_id. Spark: customer_id, month, csat, weight, then the panel
        columns, sorted by customer_id, month, csat. Note that the panel's csat_* columns
        summarise the month's responses, this one included.

    Raises
    ------
    InputError
        When the source has no ``surveys`` table, the panel lacks customer_id or month, or the
        engine is unknown.
    """
    if engine not in ("duckdb", "spark"):
        raise InputError(f"engine {engine!r}: expected duckdb or spark")
    if engine == "spark" or not hasattr(source, "con"):
        right = _panel_right(panel, ("csat", "weight"))
        patterns = _response_patterns(source, spark)
        merged = patterns.merge(right, on=["customer_id", "month"], how="left", validate="m:1")
        merged = merged.sort_values(["customer_id", "month", "csat"], kind="stable")
        return merged.reset_index(drop=True)
    require_table(source, "customers", PANEL_NEEDS)
    require_table(source, "surveys")
    right = _panel_right(panel, RESPONSE_COLUMNS)
    zone = literal(source.config.calendar.timezone)
    responses = source.con.execute(
        f"SELECT response_id, customer_id, strftime(timezone({zone}, ts), '%Y-%m') AS month, "
        "ts, CAST(csat AS BIGINT) AS csat, CAST(nps AS DOUBLE) AS nps FROM surveys"
    ).df()
    for column in ("response_id", "customer_id", "month"):
        responses[column] = responses[column].astype(pd.StringDtype(na_value=float("nan")))
    merged = responses.merge(right, on=["customer_id", "month"], how="left", validate="m:1")
    merged = merged.sort_values(["customer_id", "month", "ts", "response_id"], kind="stable")
    return merged.reset_index(drop=True)
