"""Mapping a user's table onto a canonical table: renames, units, constants, derived columns,
filters and casts, compiled to one DuckDB view ``raw.<table>`` with quoted identifiers and
literals only.
"""

from __future__ import annotations

import duckdb

from satmodel.config import (
    REPEAT_INDEX,
    Derived,
    TableMapping,
)
from satmodel.errors import InputError
from satmodel.schema import SQL_TYPES, TABLES, TableSpec
from satmodel.sources import sql
from satmodel.sources.core import (
    NUMERIC_TYPES,
    TEXT_PARSED_KINDS,
    TEXT_PREFIX,
    TIME_TYPES,
    Source,
    base_type,
    compatible,
    first_error_line,
    literal,
    quote,
)
from satmodel.sources.sql import SqlDialect


def type_name(sql_type: str) -> str:
    """A DuckDB type as validation names types elsewhere (ibis names: ``int64``, ``string``)."""
    from ibis.backends.sql.datatypes import DuckDBType

    try:
        name = str(DuckDBType.from_string(sql_type))
    except Exception:  # any type ibis cannot parse keeps DuckDB's name
        return sql_type
    return sql_type if name.startswith("unknown") else name


def _epoch(spec: TableSpec, column: str, expression: str, units: dict[str, str]) -> tuple[str, str]:
    """A timestamp from numbers since 1970 in the unit the config gives (``epoch_ms``...)."""
    factor = sql.unit_factor(spec.name, column, units[column], "epoch")
    micros = f"CAST(round(TRY_CAST({expression} AS DOUBLE) * {factor!r}) AS BIGINT)"
    return f"TRY(make_timestamp({micros}))", "TIMESTAMP"


def select_list(
    spec: TableSpec, mapping: TableMapping, source_types: dict[str, str], problems: list[str]
) -> list[str]:
    """SELECT expressions mapping a user's table onto the canonical columns."""
    items = []
    for column in spec.columns:
        target_type = SQL_TYPES[column.kind]
        if column.name in mapping.constants:
            items.append(
                f"CAST({literal(mapping.constants[column.name])} AS {target_type}) AS {quote(column.name)}"
            )
            continue
        user_column = mapping.columns.get(column.name, column.name)
        if user_column not in source_types:
            if column.nullable:  # an optional column the data lacks: all null
                items.append(f"CAST(NULL AS {target_type}) AS {quote(column.name)}")
            continue  # a required column: reported as missing by validation
        expression = quote(user_column)
        source_type = source_types[user_column]
        if column.kind == "timestamp" and column.name in mapping.units:
            expression, source_type = _epoch(spec, column.name, expression, mapping.units)
        if base_type(source_type) == "VARCHAR" and column.kind in TEXT_PARSED_KINDS:
            # Text that should hold numbers, booleans or timestamps (CSV sniffing gives up on
            # one bad value): parse it here and keep the text, so validation can quarantine
            # the values that do not parse, or refuse a column where none does.
            items.append(f"{expression} AS {quote(TEXT_PREFIX + column.name)}")
            parsed_type = "DOUBLE" if column.kind in ("float", "int") else SQL_TYPES[column.kind]
            expression = f"TRY_CAST({expression} AS {parsed_type})"
            source_type = parsed_type
        if not compatible(column.kind, source_type):
            items.append(f"{expression} AS {quote(column.name)}")
            hint = (
                f'; numbers since 1970? give units = {{ {column.name} = "epoch_s" }} or "epoch_ms"'
                if column.kind == "timestamp" and base_type(source_type) in NUMERIC_TYPES
                else ""
            )
            problems.append(
                f"{spec.name}.{column.name}: wrong type: expected {column.kind}, found "
                f"{type_name(source_type)} (column {user_column!r}{hint})"
            )
            continue
        if column.kind == "month" and base_type(source_type) in TIME_TYPES:
            expression = f"strftime({expression}, '%Y-%m')"
        if column.name in mapping.units and column.kind != "timestamp":
            unit = mapping.units[column.name]
            factor = sql.unit_factor(spec.name, column.name, unit, column.unit or "")
            expression = f"CAST({expression} AS DOUBLE) * {factor!r}"
        items.append(f"CAST({expression} AS {target_type}) AS {quote(column.name)}")
    return items


DUCKDB_SQL = SqlDialect(
    quote=quote,
    literal=literal,
    string_type="VARCHAR",
    integer_type="BIGINT",
    month_of=lambda expression: f"strftime({expression}, '%Y-%m')",
    seconds_between=lambda start, end: (
        f"(epoch(TRY_CAST({end} AS TIMESTAMP)) - epoch(TRY_CAST({start} AS TIMESTAMP)))"
    ),
)


def _derived_alias(column: str) -> str:
    return f"_satmodel_derived_{column}"


def derived_sql(derived: Derived) -> str:
    """The DuckDB SQL expression of a derived column (identifiers quoted, values as literals)."""
    return sql.derived_sql(derived, DUCKDB_SQL)


def referenced_columns(spec: TableSpec, mapping: TableMapping) -> list[str]:
    """The user's columns a mapping reads (for reading only those from a database)."""
    names: list[str] = []
    for column in spec.columns:
        if column.name in mapping.constants or column.name in mapping.derived:
            continue
        names.append(mapping.columns.get(column.name, column.name))
    for derived in mapping.derived.values():
        names.extend(derived.columns())
    names.extend(c.column for c in mapping.where)
    if mapping.repeat:
        names.append(mapping.repeat)
    return [n for i, n in enumerate(names) if n not in names[:i] and n != REPEAT_INDEX]


def check_names(
    source: Source, name: str, mapping: TableMapping, available: list[str], label: str
) -> None:
    """Raise InputError when a filter, repeat or derived column names a column the data lacks."""
    where = f"config {source.config.path}" if source.config.path else "config"
    shown = ", ".join(available[:15]) + (", ..." if len(available) > 15 else "")
    known = set(available)
    checks: list[tuple[str, str]] = [(f"where.{c.column}", c.column) for c in mapping.where]
    if mapping.repeat:
        checks.append(("repeat", mapping.repeat))
        known.add(REPEAT_INDEX)
    for column, derived in mapping.derived.items():
        checks.extend((f"derived.{column}", used) for used in derived.columns())
    for setting, used in checks:
        if used not in known:
            raise InputError(
                f"{where}: tables.{name}.{setting}: column {used!r} not found in {label} "
                f"(columns: {shown})"
            )


def _mapped_from(
    con, source: Source, name: str, from_clause: str, mapping: TableMapping, label: str
) -> tuple[str, TableMapping]:
    """Apply a mapping's filters, repeat and derived columns: a new FROM clause and mapping."""
    if not (mapping.where or mapping.repeat or mapping.derived):
        return from_clause, mapping
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {from_clause}").fetchall()
    except duckdb.Error as exc:
        raise InputError(f"{name}: cannot read {label} ({first_error_line(exc)})") from None
    check_names(source, name, mapping, [row[0] for row in described], label)
    where = f"config {source.config.path}" if source.config.path else "config"
    types = {row[0]: base_type(row[1]) for row in described}
    for column, derived in mapping.derived.items():
        if derived.op in sql.DIVISORS or derived.op == "month_of":
            for used in derived.columns():
                if types.get(used) not in TIME_TYPES | {"VARCHAR"}:
                    raise InputError(
                        f"{where}: tables.{name}.derived.{column}: op {derived.op!r} cannot use "
                        f"column {used!r} of {label}: it holds {types.get(used)}, not a date or "
                        "timestamp"
                    )
    rows = f"SELECT * FROM {from_clause}"
    if mapping.where:
        rows += " WHERE " + " AND ".join(sql.where_sql(c, DUCKDB_SQL) for c in mapping.where)
        try:
            con.execute(f"DESCRIBE {rows}").fetchall()
        except duckdb.Error as exc:
            raise InputError(
                f"{where}: tables.{name}.where: cannot apply to {label} ({first_error_line(exc)})"
            ) from None
    if mapping.repeat:
        count = quote(mapping.repeat)
        rows = (
            f"SELECT *, unnest(range(CAST(greatest(coalesce({count}, 0), 0) AS BIGINT))) "
            f"AS {quote(REPEAT_INDEX)} FROM ({rows})"
        )
        try:
            con.execute(f"DESCRIBE {rows}").fetchall()
        except duckdb.Error as exc:
            raise InputError(
                f"{where}: tables.{name}.repeat: column {mapping.repeat!r} of {label} is not a "
                f"count ({first_error_line(exc)})"
            ) from None
    if mapping.derived:
        items = []
        for column, derived in mapping.derived.items():
            expression = derived_sql(derived)
            try:
                con.execute(f"DESCRIBE SELECT {expression} FROM ({rows})").fetchall()
            except duckdb.Error as exc:
                raise InputError(
                    f"{where}: tables.{name}.derived.{column}: op {derived.op!r} cannot be "
                    f"computed from {label} ({first_error_line(exc)})"
                ) from None
            items.append(f"{expression} AS {quote(_derived_alias(column))}")
        rows = f"SELECT *, {', '.join(items)} FROM ({rows})"
    columns = dict(mapping.columns)
    columns.update({column: _derived_alias(column) for column in mapping.derived})
    effective = TableMapping(
        table=mapping.table,
        file=mapping.file,
        columns=columns,
        units=mapping.units,
        constants=mapping.constants,
        url=mapping.url,
        distinct=mapping.distinct,
    )
    return f"({rows})", effective


def register_view(
    con, source: Source, name: str, from_clause: str, mapping: TableMapping, label: str = ""
) -> None:
    spec = TABLES[name]
    label = label or from_clause
    from_clause, mapping = _mapped_from(con, source, name, from_clause, mapping, label)
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {from_clause}").fetchall()
    except duckdb.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise InputError(f"{name}: cannot read ({first_line})") from None
    source_types = {row[0]: row[1] for row in described}
    select = select_list(spec, mapping, source_types, source.type_problems)
    missing = [
        c.name
        for c in spec.columns
        if not c.nullable
        and c.name not in mapping.constants
        and mapping.columns.get(c.name, c.name) not in source_types
    ]
    source.missing_columns[name] = missing
    source.columns_read[name] = {
        c: t for c, t in source_types.items() if not c.startswith("_satmodel_")
    }
    if not select:
        select = ["NULL AS _no_canonical_column"]
    distinct = "DISTINCT " if mapping.distinct else ""
    con.execute(
        f"CREATE VIEW raw.{quote(name)} AS SELECT {distinct}{', '.join(select)} FROM {from_clause}"
    )
    source.tables.append(name)
