"""Sources on Spark: the canonical tables read where they are, mapped in Spark SQL.

The Spark engine never stages data through DuckDB. Each canonical table is a Spark DataFrame
over the user's data: a Parquet (or Delta) folder of part files or a single file, local or on
any file system Spark resolves (``s3a://``, ``hdfs://``, ``abfss://``), a catalog (Hive, Unity)
table by name, or a JDBC table. The same :class:`~satmodel.config.TableMapping` objects as on
DuckDB (renames, units, constants, derived columns, filters, repeat, distinct) compile here to
Spark SQL with back-quoted identifiers and escaped literals only.

Where a table is found, in this order: ``[tables.<name>] file``; ``[spark] jdbc_url`` (table
``table`` or the canonical name); ``[spark] database`` or a ``table`` holding a dot (catalog);
else ``<root>/<table>`` (a folder), ``<root>/<table>.parquet`` or ``.csv`` under ``[spark]
root`` or the source folder.

The Spark session itself comes from :func:`spark_session` (re-exported as
``satmodel.features.spark_session``): the active one, a new local or cluster one, or a Spark
Connect client.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satmodel.config import (
    REPEAT_INDEX,
    Config,
    Derived,
    TableMapping,
    load_config,
)
from satmodel.config_spark import has_scheme
from satmodel.errors import InputError
from satmodel.schema import TABLES, TableSpec
from satmodel.sources import sql
from satmodel.sources.core import TEXT_PARSED_KINDS, TEXT_PREFIX
from satmodel.sources.sql import SqlDialect

SPARK_TYPES = {
    "str": "STRING",
    "float": "DOUBLE",
    "int": "DOUBLE",  # kept as DOUBLE until the row rule "whole number" has been checked
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "month": "STRING",
}
_NUMERIC = {"tinyint", "smallint", "int", "bigint", "float", "double"}
_TIME = {"timestamp", "timestamp_ntz", "date"}


def quote(identifier: str) -> str:
    """Back-quote an identifier for Spark SQL."""
    return "`" + identifier.replace("`", "``") + "`"


def literal(value: object) -> str:
    """A Spark SQL literal for a config constant (numbers as DOUBLE, escaped strings)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"CAST({value!r} AS DOUBLE)"  # a bare 1.5 is a DECIMAL in Spark
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise InputError(f"config: constant {value!r} must be a number, boolean or string")


def type_kind(spark_type: str) -> str:
    """The base name of a Spark type (``decimal(10,2)`` -> ``double``)."""
    name = spark_type.lower()
    return "double" if name.startswith("decimal") else name


def compatible(kind: str, spark_type: str) -> bool:
    """Whether a column of ``spark_type`` can be cast to canonical ``kind``."""
    base = type_kind(spark_type)
    if kind in ("str", "month"):
        return True
    if kind in ("float", "int"):
        return base in _NUMERIC
    if kind == "bool":
        return base == "boolean" or base in _NUMERIC
    return base in _TIME


def _epoch(spec: TableSpec, column: str, expression: str, units: dict[str, str]) -> str:
    factor = sql.unit_factor(spec.name, column, units[column], "epoch")
    micros = f"CAST(round(try_cast({expression} AS DOUBLE) * {literal(factor)}) AS BIGINT)"
    return f"timestamp_micros({micros})"


def select_list(
    spec: TableSpec, mapping: TableMapping, types: dict[str, str], problems: list[str]
) -> list[str]:
    """Spark SQL expressions mapping a user's table onto the canonical columns."""
    items = []
    for column in spec.columns:
        target = SPARK_TYPES[column.kind]
        name = quote(column.name)
        if column.name in mapping.constants:
            items.append(f"CAST({literal(mapping.constants[column.name])} AS {target}) AS {name}")
            continue
        user = mapping.columns.get(column.name, column.name)
        if user not in types:
            if column.nullable:
                items.append(f"CAST(NULL AS {target}) AS {name}")
            continue  # a required column: reported as missing
        expression, source_type = quote(user), type_kind(types[user])
        if column.kind == "timestamp" and column.name in mapping.units:
            expression, source_type = (
                _epoch(spec, column.name, expression, mapping.units),
                "timestamp",
            )
        if source_type == "string" and column.kind in TEXT_PARSED_KINDS:
            items.append(f"{expression} AS {quote(TEXT_PREFIX + column.name)}")
            parsed = "DOUBLE" if column.kind in ("float", "int") else target
            expression, source_type = f"try_cast({expression} AS {parsed})", parsed.lower()
        if not compatible(column.kind, source_type):
            items.append(f"{expression} AS {name}")
            hint = (
                f'; numbers since 1970? give units = {{ {column.name} = "epoch_s" }} or '
                '"epoch_ms" (Parquet nanosecond timestamps arrive as numbers: "epoch_ns")'
                if column.kind == "timestamp" and source_type in _NUMERIC
                else ""
            )
            problems.append(
                f"{spec.name}.{column.name}: wrong type: expected {column.kind}, found "
                f"{types[user]} (column {user!r}{hint})"
            )
            continue
        if column.kind == "month" and source_type in _TIME:
            expression = f"date_format({expression}, 'yyyy-MM')"
        if column.name in mapping.units and column.kind != "timestamp":
            unit = mapping.units[column.name]
            factor = sql.unit_factor(spec.name, column.name, unit, column.unit or "")
            expression = f"CAST({expression} AS DOUBLE) * {literal(factor)}"
        items.append(f"CAST({expression} AS {target}) AS {name}")
    return items


SPARK_SQL = SqlDialect(
    quote=quote,
    literal=literal,
    string_type="STRING",
    integer_type="INT",
    month_of=lambda expression: f"date_format({expression}, 'yyyy-MM')",
    seconds_between=lambda start, end: (
        f"CAST(unix_micros(try_cast({end} AS TIMESTAMP)) - "
        f"unix_micros(try_cast({start} AS TIMESTAMP)) AS DOUBLE) / 1e6"
    ),
)


def derived_sql(derived: Derived) -> str:
    """The Spark SQL expression of a derived column (as :func:`satmodel.sources.derived_sql`)."""
    return sql.derived_sql(derived, SPARK_SQL)


def mapped_frame(frame, name: str, mapping: TableMapping, label: str, problems: list[str]):
    """A user's DataFrame as canonical table ``name`` (filters, repeat, derived, casts)."""
    where = f"tables.{name}"
    available = set(frame.columns)
    for setting, used in (
        [(f"where.{c.column}", c.column) for c in mapping.where]
        + ([("repeat", mapping.repeat)] if mapping.repeat else [])
        + [(f"derived.{k}", c) for k, d in mapping.derived.items() for c in d.columns()]
    ):
        if used not in available and used != REPEAT_INDEX:
            shown = ", ".join(list(frame.columns)[:15])
            raise InputError(
                f"config: {where}.{setting}: column {used!r} not found in {label} "
                f"(columns: {shown})"
            )
    if mapping.where:
        frame = frame.where(" AND ".join(sql.where_sql(c, SPARK_SQL) for c in mapping.where))
    if mapping.repeat:
        count = f"CAST(greatest(coalesce({quote(mapping.repeat)}, 0), 0) AS INT)"
        frame = frame.selectExpr(
            "*", f"posexplode(array_repeat(TRUE, {count})) AS ({quote(REPEAT_INDEX)}, _copy)"
        ).drop("_copy")
    columns = dict(mapping.columns)
    if mapping.derived:
        items = []
        for column, derived in mapping.derived.items():
            alias = f"_satmodel_derived_{column}"
            items.append(f"{derived_sql(derived)} AS {quote(alias)}")
            columns[column] = alias
        frame = frame.selectExpr("*", *items)
    effective = TableMapping(columns=columns, units=mapping.units, constants=mapping.constants)
    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    spec = TABLES[name]
    select = select_list(spec, effective, types, problems)
    missing = [
        c.name
        for c in spec.columns
        if not c.nullable
        and c.name not in mapping.constants
        and columns.get(c.name, c.name) not in types
    ]
    canonical = frame.selectExpr(*(select or ["NULL AS _no_canonical_column"]))
    return (canonical.distinct() if mapping.distinct else canonical), missing, types


@dataclass
class SparkSource:
    """The canonical tables of one source, as Spark DataFrames.

    Attributes
    ----------
    session : the Spark session.
    location : what was opened (folder, URI, database, JDBC URL without password).
    config : the configuration in force.
    raw : canonical table name -> DataFrame as read and mapped (canonical names and types).
    clean : the rows that passed every rule, set by
        :func:`satmodel.validation_spark.quarantine_spark`.
    rejected_path : where the quarantined rows are written (a Parquet folder), or None.
    type_problems, missing_columns, columns_read : as on :class:`satmodel.sources.Source`.
    """

    session: Any
    location: str
    config: Config
    raw: dict[str, Any] = field(default_factory=dict)
    clean: dict[str, Any] = field(default_factory=dict)
    rejected_path: str | None = None
    type_problems: list[str] = field(default_factory=list)
    missing_columns: dict[str, list[str]] = field(default_factory=dict)
    columns_read: dict[str, dict[str, str]] = field(default_factory=dict)
    quarantined: bool = False
    report: object | None = None

    @property
    def tables(self) -> list[str]:
        """Canonical tables present, in canonical order."""
        return [name for name in TABLES if name in self.raw]

    def has(self, table: str) -> bool:
        """Whether the source holds canonical table ``table``."""
        return table in self.raw


SESSION_SQL = {
    "spark.sql.session.timeZone": "UTC",
    # Parquet nanosecond timestamps arrive as numbers (give units = epoch_ns) instead of
    # failing the whole read.
    "spark.sql.legacy.parquet.nanosAsLong": "true",
}
"""Session settings the Spark engine relies on, on a classic and on a Spark Connect session."""


def spark_session(
    memory: str | None = None,
    shuffle_partitions: int | None = None,
    *,
    master: str | None = None,
    remote: str | None = None,
    executor_memory: str | None = None,
):
    """The Spark session of the Spark engine: the active one, or a new one on ``master``.

    Parameters
    ----------
    memory : driver memory (only effective when this call starts the JVM; default ``1g``).
    shuffle_partitions : ``spark.sql.shuffle.partitions`` (default 2 on ``local[...]``, else
        Spark's own).
    master : Spark master URL (``local-cluster[2,1,1024]``, ``spark://host:7077``, ``yarn``);
        default ``local[1]`` unless a session is active or spark-submit set one.
    remote : Spark Connect URL ``sc://host:port`` (instead of ``master``).
    executor_memory : ``spark.executor.memory`` (e.g. ``4g``).

    Returns
    -------
    pyspark.sql.SparkSession

    Raises
    ------
    InputError
        When pyspark (or, for ``remote``, its Spark Connect client) is not installed, or both
        ``master`` and ``remote`` are given.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError(
            "engine spark: pyspark is not installed (pip install 'satmodel[spark]')"
        ) from None
    if master and remote:
        raise InputError("engine spark: give --spark-master or --spark-remote, not both")
    if remote:
        return _connect_session(SparkSession, remote, shuffle_partitions)
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    master = master or os.environ.get("MASTER") or "local[1]"
    builder = SparkSession.builder.master(master).appName("satmodel")
    local = master.startswith("local")
    settings = {
        "spark.driver.memory": memory or "1g",
        "spark.executor.memory": executor_memory,
        "spark.sql.shuffle.partitions": shuffle_partitions or (2 if local else None),
        "spark.default.parallelism": "1" if master == "local[1]" else None,
        "spark.ui.enabled": "false" if local else None,
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        **SESSION_SQL,
    }
    for key, value in settings.items():
        if value is not None:
            builder = builder.config(key, str(value))
    return builder.getOrCreate()


def _reachable(remote: str) -> None:
    """Fail fast when nothing listens at ``remote``.

    The Connect client retries an unreachable server for 10 minutes before it reports it.
    """
    import socket
    from urllib.parse import urlparse

    url = urlparse(remote)
    try:
        host, port = url.hostname, url.port or 15002
    except ValueError:
        host = None
    if not host:
        raise InputError(f"--spark-remote {remote!r}: expected a Spark Connect URL sc://host:port")
    try:
        socket.create_connection((host, port), timeout=10).close()
    except OSError as exc:
        raise InputError(
            f"--spark-remote {remote}: cannot connect (nothing answers at {host}:{port}: {exc})"
        ) from None


def _connect_session(session_class, remote: str, shuffle_partitions: int | None):
    """A Spark Connect session on ``remote`` (``sc://host:port``), set as the engine needs."""
    if not remote.startswith("sc://"):
        raise InputError(f"--spark-remote {remote!r}: expected a Spark Connect URL sc://host:port")
    try:
        import pyspark.sql.connect.session  # noqa: F401 - checks the client's dependencies
    except ImportError as exc:
        raise InputError(
            f"--spark-remote {remote}: the Spark Connect client is not installed "
            f"(pip install 'pyspark[connect]'; {str(exc).splitlines()[0]})"
        ) from None
    _reachable(remote)
    try:
        session = session_class.builder.remote(remote).getOrCreate()
    except Exception as exc:  # any connection failure of the client is the user's address
        raise InputError(
            f"--spark-remote {remote}: cannot connect ({str(exc).strip().splitlines()[0]})"
        ) from None
    # A Connect session starts with the server's defaults (its JVM's time zone); ibis sets UTC
    # only when the panel connects, after the source was read and validated.
    required = {"spark.sql.session.timeZone": SESSION_SQL["spark.sql.session.timeZone"]}
    if shuffle_partitions:
        required["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
    for key, value in required.items():
        try:
            session.conf.set(key, value)
        except Exception as exc:  # the server refused the setting
            raise InputError(
                f"--spark-remote {remote}: the server refuses {key} = {value} "
                f"({str(exc).strip().splitlines()[0]})"
            ) from None
    # Managed servers (Databricks serverless) refuse legacy settings; without this one only a
    # Parquet nanosecond timestamp fails, with its own message when read.
    with contextlib.suppress(Exception):
        session.conf.set(
            "spark.sql.legacy.parquet.nanosAsLong",
            SESSION_SQL["spark.sql.legacy.parquet.nanosAsLong"],
        )
    return session


def _read_path(session, path: str, fmt: str):
    """A DataFrame over a Parquet/Delta folder or a Parquet/CSV file."""
    reader = session.read
    if path.lower().endswith(".csv"):
        return reader.option("header", "true").option("inferSchema", "true").csv(path)
    if fmt == "delta":
        return reader.format("delta").load(path)
    return reader.parquet(path)


def _local_candidate(root: Path, stem: str) -> str | None:
    for candidate in (root / stem, root / f"{stem}.parquet", root / f"{stem}.csv"):
        if candidate.is_file() or (candidate.is_dir() and any(candidate.rglob("*.parquet"))):
            return str(candidate)
        if candidate.is_dir() and (candidate / "_delta_log").is_dir():
            return str(candidate)
    return None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300]


def _absent(exc: BaseException) -> bool:
    text = str(exc)
    return any(
        marker in text
        for marker in ("PATH_NOT_FOUND", "TABLE_OR_VIEW_NOT_FOUND", "does not exist", "not found")
    )


def _jdbc_properties(config: Config) -> dict[str, str]:
    if config.password_env and os.environ.get(config.password_env):
        return {"password": os.environ[config.password_env]}
    return {}


def _frame(session, config: Config, root: str | None, name: str, mapping: TableMapping):
    """The user's DataFrame for canonical table ``name`` and its label; None when absent."""
    settings = config.spark
    stem = mapping.table or name
    if mapping.url is not None:
        raise InputError(
            f"{name}: engine spark reads databases through JDBC: give [spark] jdbc_url = "
            '"jdbc:postgresql://host:5432/db" instead of tables.' + name + ".url"
        )
    try:
        if mapping.file is not None:
            if not mapping.file.exists():
                raise InputError(f"{name}: file {mapping.file} not found")
            return _read_path(session, str(mapping.file), settings.format), mapping.file.name
        if settings.jdbc_url:
            frame = session.read.jdbc(settings.jdbc_url, stem, properties=_jdbc_properties(config))
            return frame, f"JDBC table {stem}"
        if settings.database or "." in stem:
            qualified = stem if "." in stem else f"{settings.database}.{stem}"
            if not session.catalog.tableExists(qualified):
                return None
            return session.table(qualified), f"table {qualified}"
        if root is None:
            return None
        if has_scheme(root):
            path = root.rstrip("/") + "/" + stem
            return _read_path(session, path, settings.format), path
        found = _local_candidate(Path(root), stem)
        if found is None:
            return None
        return _read_path(session, found, settings.format), Path(found).name
    except InputError:
        raise
    except Exception as exc:  # Spark reports unreadable data as Java exceptions
        if _absent(exc) and mapping.table is None and mapping.file is None:
            return None
        raise InputError(f"{name}: cannot read {stem} ({_first_line(exc)})") from None


def _root(src: str | Path | None, config: Config) -> str | None:
    if config.spark.root:
        return config.spark.root
    if src is not None:
        return str(src)
    if config.spark.jdbc_url or config.spark.database:
        return None
    return str(config.source)


def open_spark_source(
    src: str | Path | None = None, config: Config | None = None, session=None
) -> SparkSource:
    """Open a source's canonical tables on Spark, where they are.

    Parameters
    ----------
    src : a folder (local or URI) of ``<table>`` Parquet folders/files, or a ``satmodel.toml``;
        None uses the config's ``[spark]`` settings and ``[source] path``.
    config : configuration; read from ``src`` when it is a ``.toml`` file, else defaults.
    session : the Spark session; by default one from ``[spark]`` (see :func:`spark_session`).

    Returns
    -------
    SparkSource

    Raises
    ------
    InputError
        When the source is a DuckDB file or PostgreSQL URL (Spark cannot read those in place),
        does not exist, or a table cannot be read.
    """
    if src is not None and str(src).endswith(".toml"):
        config, src = load_config(src), None
    config = config if config is not None else load_config(None)
    root = _root(src, config)
    if root is not None and not has_scheme(root):
        path = Path(root)
        if not path.exists():
            raise InputError(f"source {path}: not found")
        if path.is_file():
            raise InputError(
                f"source {path}: engine spark reads Parquet or Delta folders, catalog tables or "
                "JDBC where they are, not a DuckDB or single file; point --data or [spark] root "
                "at a folder of <table> Parquet folders (satmodel demo --out DIR writes one)"
            )
    settings = config.spark
    if session is None:
        session = spark_session(
            settings.driver_memory,
            settings.shuffle_partitions,
            master=settings.master,
            remote=settings.remote,
            executor_memory=settings.executor_memory,
        )
    location = root or settings.database or (settings.jdbc_url or "").split("?")[0]
    rejected = settings.rejected or ((root.rstrip("/") + "/rejected") if root is not None else None)
    source = SparkSource(session=session, location=location, config=config, rejected_path=rejected)
    for name in TABLES:
        mapping = config.tables.get(name, TableMapping())
        found = _frame(session, config, root, name, mapping)
        if found is None:
            continue
        frame, label = found
        canonical, missing, types = mapped_frame(frame, name, mapping, label, source.type_problems)
        source.raw[name] = canonical
        source.missing_columns[name] = missing
        source.columns_read[name] = types
    return source
