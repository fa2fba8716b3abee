"""Parquet footer statistics, checked against the values once when a source is opened.

DuckDB trusts a Parquet file's footer: it skips row groups whose min/max exclude a filter,
folds conditions to constants and answers ``min()``/``max()`` from the footer alone. A footer
that does not describe the values (a file patched after it was written, a writer that leaves
NaN out of a column's range) would let bad rows through validation and skew every query.

:func:`footer_mismatches` reads each file once, row group by row group, with the optimizers
that use statistics switched off, and compares the footer's min, max and null count with the
values. A file whose footer does not match is read through :func:`guarded_scan`, whose values
carry no statistics; honest files keep their statistics (and row group skipping) everywhere.

DuckDB database files are not checked: DuckDB writes their zone maps itself and checksums
every block, so a file patched behind its statistics is refused as corrupt. Tables read from
PostgreSQL are copied into DuckDB, which computes their statistics; CSV files have none.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb

from satmodel.errors import InputError
from satmodel.sources.core import (
    NUMERIC_TYPES,
    first_error_line,
    literal,
    path_literal,
    quote,
)

# Optimizers that replace values by footer statistics: folding, count(x) -> count(*),
# min/max answered from the footer. The check must read the values themselves.
STATISTICS_OPTIMIZERS = ("statistics_propagation", "partial_aggregate_pushdown")
# Column types whose footer min/max DuckDB reads and that order like their Parquet statistics.
CHECKED_TYPES = NUMERIC_TYPES | {
    "DECIMAL",
    "BOOLEAN",
    "VARCHAR",
    "BLOB",
    "UUID",
    "DATE",
    "TIME",
    "TIMESTAMP",
    "TIMESTAMP_S",
    "TIMESTAMP_MS",
    "TIMESTAMP_NS",
}


def _checked(sql_type: str) -> bool:
    """Whether a column's footer is checked (scalar types; nested columns are not read)."""
    return sql_type.upper().split("(")[0].split(" ")[0] in CHECKED_TYPES


def _row_groups(con: duckdb.DuckDBPyConnection, file: str) -> list[tuple[int, int]]:
    """(row group id, first row) of every non-empty row group, in file order."""
    sizes = con.execute(
        f"SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata({file}) "
        "ORDER BY row_group_id"
    ).fetchall()
    groups, first = [], 0
    for group, rows in sizes:
        if rows:
            groups.append((group, first))
        first += rows
    return groups


def _violation(position: int, column: str, sql_type: str) -> str:
    """SQL, TRUE when the footer of one row group does not describe column ``position``."""
    low, high, nulls = f"a.min_{position}", f"a.max_{position}", f"a.nulls_{position}"
    tests = []
    for field, actual, broken in (
        ("stats_min_value", low, "<"),
        ("stats_min", low, "<"),
        ("stats_max_value", high, ">"),
        ("stats_max", high, ">"),
    ):
        footer = f"TRY_CAST(m.{field} AS {sql_type})"
        # A footer value that does not parse as the column's type cannot be trusted either.
        tests.append(
            f"(m.{field} IS NOT NULL AND ({footer} IS NULL OR {actual} {broken} {footer}))"
        )
    tests.append(f"(m.stats_null_count IS NOT NULL AND m.stats_null_count <> {nulls})")
    return f"m.path_in_schema = {literal(column)} AND ({' OR '.join(tests)})"


def footer_mismatches(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """The columns of one Parquet file whose footer statistics do not match their values.

    Every row group's min, max (NaN counts as the largest value, as DuckDB orders it) and null
    count are computed from the values and compared with the footer's.

    Raises
    ------
    InputError
        When the file cannot be read.
    """
    file = path_literal(path.absolute())
    previous = con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0]
    disabled = [name for name in previous.split(",") if name.strip()]
    disabled += [name for name in STATISTICS_OPTIMIZERS if name not in disabled]
    con.execute(f"SET disabled_optimizers = {literal(','.join(disabled))}")
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({file})").fetchall()
        columns = [(row[0], row[1]) for row in described if _checked(row[1])]
        groups = _row_groups(con, file)
        if not columns or not groups:
            return []
        # Chunks of `step` rows never straddle a row group; their min/max/nulls roll up.
        step = math.gcd(*[first for _, first in groups[1:]]) or (1 << 62)
        chunk = ", ".join(
            f"min({quote(c)}) AS min_{i}, max({quote(c)}) AS max_{i}, "
            f"count(*) - count({quote(c)}) AS nulls_{i}"
            for i, (c, _) in enumerate(columns)
        )
        rollup = ", ".join(
            f"min(min_{i}) AS min_{i}, max(max_{i}) AS max_{i}, sum(nulls_{i}) AS nulls_{i}"
            for i in range(len(columns))
        )
        starts = ", ".join(f"({group}, {first})" for group, first in groups)
        violations = " OR ".join(f"({_violation(i, c, t)})" for i, (c, t) in enumerate(columns))
        found = con.execute(
            f"WITH chunks AS (SELECT file_row_number // {step} AS chunk, {chunk} "
            f"FROM read_parquet({file}, file_row_number = true) GROUP BY chunk), "
            f"starts AS (SELECT * FROM (VALUES {starts}) s(row_group_id, first_row)), "
            f"actual AS (SELECT s.row_group_id, {rollup} FROM chunks "
            "ASOF JOIN starts s ON chunks.chunk * "
            f"{step} >= s.first_row GROUP BY s.row_group_id) "
            "SELECT DISTINCT m.path_in_schema FROM actual a JOIN "
            f"parquet_metadata({file}) m USING (row_group_id) WHERE {violations}"
        ).fetchall()
    except duckdb.Error as exc:
        raise InputError(f"{path.stem}: cannot read {path} ({first_error_line(exc)})") from None
    finally:
        con.execute(f"SET disabled_optimizers = {literal(previous)}")
    return [c for c, _ in columns if (c,) in found]


def guarded_scan(con: duckdb.DuckDBPyConnection, from_clause: str) -> str:
    """A FROM clause over ``from_clause`` whose values the optimizer cannot replace by statistics.

    Each column passes through a volatile, always true condition: DuckDB can neither skip row
    groups nor fold a condition from the footer, so every query reads the values.
    """
    described = con.execute(f"DESCRIBE SELECT * FROM {from_clause}").fetchall()
    columns = ", ".join(
        f"CASE WHEN random() < 2 THEN {quote(row[0])} END AS {quote(row[0])}" for row in described
    )
    return f"(SELECT {columns} FROM {from_clause})"
