"""Validation and quarantine on Spark: the row rules of :mod:`satmodel.validation` as Spark SQL.

The rules come from the same :mod:`satmodel.schema` description and give the same reasons as
on DuckDB; they run on the cluster, the rejected rows (table_name, reason, column_name, value,
row_json) are written next to the data as a Parquet folder ``rejected/``, and only the counts
per (table, column, reason) come back, as a :class:`~satmodel.validation.ValidationReport`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from satmodel.calendar import month_at, month_index
from satmodel.errors import InputError
from satmodel.schema import OUTCOME_TABLES, SERVICE_TABLES, TABLES, TableSpec
from satmodel.sources.core import TEXT_PREFIX
from satmodel.sources.spark import SparkSource, literal, quote
from satmodel.validation import (
    EARLIEST_PLAUSIBLE,
    TIMESTAMP_RANGE,
    ValidationReport,
    rank_columns,
)

_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class SparkRule:
    """A row rule: a Spark SQL condition TRUE for a bad row, the column, the reason, the value."""

    condition: str
    column: str
    reason: str
    value: str | None = None

    @property
    def test(self) -> str:
        return f"coalesce(({self.condition}), FALSE)"

    @property
    def value_sql(self) -> str:
        return self.value or f"CAST({quote(self.column)} AS STRING)"


def spark_rule(rule: str, column: str) -> str:
    """A :class:`~satmodel.schema.ColumnSpec` rule (DuckDB SQL) in Spark SQL.

    ``regexp_full_match`` becomes an anchored ``RLIKE``, ``regexp_matches`` an ``RLIKE``; the
    patterns are re-escaped for Spark's string literals (DuckDB's keep backslashes as is).
    """

    def pattern(text: str, anchored: bool) -> str:
        body = f"^(?:{text})\\z" if anchored else text
        return literal(body)

    sql = rule.format(c=column)
    sql = re.sub(
        r"regexp_full_match\((.+?), '((?:[^']|'')*)'\)",
        lambda m: f"({m.group(1)} RLIKE {pattern(m.group(2), True)})",
        sql,
    )
    return re.sub(
        r"regexp_matches\((.+?), '((?:[^']|'')*)'\)",
        lambda m: f"({m.group(1)} RLIKE {pattern(m.group(2), False)})",
        sql,
    )


def _timestamp(text: str) -> str:
    return f"TIMESTAMP '{text}'"


def table_rules(
    source: SparkSource, spec: TableSpec, window: tuple[str, str] | None
) -> list[SparkRule]:
    """The row rules of one table, in the order of :mod:`satmodel.validation`'s (first wins)."""
    rules = []
    columns = set(source.raw[spec.name].columns)
    for column in spec.columns:
        name = quote(column.name)
        if TEXT_PREFIX + column.name in columns:
            text = quote(TEXT_PREFIX + column.name)
            rules.append(
                SparkRule(
                    f"{text} IS NOT NULL AND {name} IS NULL",
                    column.name,
                    f"not a {column.kind}",
                    text,
                )
            )
        if not column.nullable:
            rules.append(SparkRule(f"{name} IS NULL", column.name, "missing"))
        if column.kind in ("float", "int"):
            rules.append(
                SparkRule(
                    f"isnan({name}) OR abs({name}) = double('inf')",
                    column.name,
                    "not a finite number",
                )
            )
        if column.kind == "timestamp":
            low, high = TIMESTAMP_RANGE
            rules.append(
                SparkRule(
                    f"{name} < {_timestamp(f'{low}-01-01 00:00:00')} OR "
                    f"{name} >= {_timestamp(f'{high + 1}-01-01 00:00:00')}",
                    column.name,
                    f"timestamp out of range (outside {low}..{high})",
                )
            )
        if column.rule:
            rule = spark_rule(column.rule, name)
            rules.append(
                SparkRule(f"{name} IS NOT NULL AND NOT ({rule})", column.name, column.rule_text)
            )
    for earlier, later in spec.order_pairs:
        rules.append(SparkRule(f"{quote(later)} < {quote(earlier)}", later, f"before {earlier}"))
    if spec.name != "customers" and "customer_id" in spec.column_names and source.has("customers"):
        rules.append(
            SparkRule(
                "customer_id IS NOT NULL AND _satmodel_known IS NULL",
                "customer_id",
                "unknown customer (not in customers)",
            )
        )
    time_column = spec.time_column
    if time_column and spec.column(time_column).kind == "timestamp":
        start = quote(time_column)
        end = quote(spec.time_end_column or time_column)
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        rules.append(
            SparkRule(
                f"{start} < {_timestamp(EARLIEST_PLAUSIBLE + ' 00:00:00')} OR "
                f"{start} > {_timestamp(now)} + INTERVAL 1 DAY",
                time_column,
                "implausible timestamp (before 2000 or in the future)",
            )
        )
        if window is not None:
            low = _timestamp(f"{window[0]}-01 00:00:00")
            high = _timestamp(f"{month_at(month_index(window[1]) + 1)}-01 00:00:00")
            rules.append(
                SparkRule(
                    f"{end} < {low} OR {start} >= {high}",
                    time_column,
                    f"outside the data's months {window[0]}..{window[1]}",
                )
            )
    return rules


def _flagged(source: SparkSource, spec: TableSpec, rules: list[SparkRule]):
    """The raw rows with the columns the rules read: known customer, duplicate and open ranks."""
    frame = source.raw[spec.name]
    if any("_satmodel_known" in rule.condition for rule in rules):
        known = source.clean["customers"].selectExpr(
            "customer_id AS _satmodel_customer", "TRUE AS _satmodel_known"
        )
        frame = frame.join(known, frame.customer_id == known._satmodel_customer, "left").drop(
            "_satmodel_customer"
        )
    if not spec.key and spec.one_open is None:
        return frame
    breaks = " OR ".join(rule.test for rule in rules) or "FALSE"
    frame = frame.selectExpr("*", f"({breaks}) AS _satmodel_breaks")
    return frame.selectExpr("*", *rank_columns(spec, "_satmodel_breaks", quote))


def _quarantine_table(source: SparkSource, spec: TableSpec, window):
    """The clean rows and the rejected rows (with reason) of one table, both lazy."""
    rules = table_rules(source, spec, window)
    rows = _flagged(source, spec, rules)
    if spec.key:
        rules.append(SparkRule("_satmodel_rank > 1", spec.key[0], "duplicate id (first kept)"))
    if spec.one_open is not None:
        key, end = spec.one_open
        reason = f"a second open row (null {end}) for one {key} (first kept)"
        rules.append(SparkRule("_satmodel_open_rank > 1", end, reason))
    reason = " ".join(f"WHEN {r.test} THEN {literal(r.reason)}" for r in rules)
    column = " ".join(f"WHEN {r.test} THEN {literal(r.column)}" for r in rules)
    value = " ".join(f"WHEN {r.test} THEN {r.value_sql}" for r in rules)
    checked = rows.selectExpr(
        "*",
        f"CASE {reason} END AS _satmodel_reason",
        f"CASE {column} END AS _satmodel_column",
        f"CASE {value} END AS _satmodel_value",
    )
    casts = [
        f"CAST({quote(c.name)} AS BIGINT) AS {quote(c.name)}" if c.kind == "int" else quote(c.name)
        for c in spec.columns
    ]
    clean = checked.where("_satmodel_reason IS NULL").selectExpr(*casts)
    row_json = ", ".join(quote(c) for c in spec.column_names)
    rejected = checked.where("_satmodel_reason IS NOT NULL").selectExpr(
        f"{literal(spec.name)} AS table_name",
        "_satmodel_reason AS reason",
        "_satmodel_column AS column_name",
        "_satmodel_value AS value",
        f"to_json(struct({row_json})) AS row_json",
    )
    return clean, rejected


def _table_problems(source: SparkSource) -> list[str]:
    problems = []
    where = source.location
    if not source.has("customers"):
        problems.append(f"customers: table not found in {where} (it is required)")
    if not any(source.has(t) for t in OUTCOME_TABLES):
        problems.append(f"surveys: table not found in {where} (surveys or complaints is required)")
    if not any(source.has(t) for t in SERVICE_TABLES):
        problems.append(
            f"requests: table not found in {where} (at least one of {', '.join(SERVICE_TABLES)} "
            "is required)"
        )
    for table, missing in source.missing_columns.items():
        shown = ", ".join(list(source.columns_read[table])[:15])
        problems.extend(
            f"{table}.{column}: column not found (columns: {shown}; map it in [tables.{table}] "
            "columns of satmodel.toml)"
            for column in missing
        )
    return problems + source.type_problems


def _data_window(source: SparkSource) -> tuple[str, str] | None:
    if not source.has("usage") or "month" in source.missing_columns.get("usage", []):
        return None
    row = (
        source.raw["usage"]
        .where(f"month RLIKE {literal('^' + _MONTH.pattern + chr(92) + 'z')}")
        .selectExpr("min(month) AS lo", "max(month) AS hi")
        .collect()[0]
    )
    return (row["lo"], row["hi"]) if row["lo"] is not None else None


def quarantine_spark(source: SparkSource, persist: bool = True) -> ValidationReport:
    """Run the row rules on Spark, keep the clean rows, write the rejected ones beside the data.

    After this call ``source.clean`` holds one lazy DataFrame of clean rows per table. With
    ``persist`` and a ``source.rejected_path``, the rejected rows of this run replace the
    Parquet folder there (written by the executors; nothing large reaches the driver).

    Returns
    -------
    ValidationReport
        Rows read per table and rejected rows per (table, column, reason), as on DuckDB.

    Raises
    ------
    InputError
        For table-level faults (missing table or column, wrong type, empty required table).
    """
    import pandas as pd
    from pyspark.sql import functions as F

    problems = _table_problems(source)
    if problems:
        raise InputError(problems)
    report = ValidationReport(window=_data_window(source))
    rejected = []
    for table in source.tables:
        try:
            report.rows[table] = source.raw[table].count()
            clean, bad = _quarantine_table(source, TABLES[table], report.window)
        except Exception as exc:  # Spark reports unreadable data as Java exceptions
            raise InputError(f"{table}: cannot read ({str(exc).strip().splitlines()[0]})") from None
        if report.rows[table] == 0 and table == "customers":
            raise InputError(f"customers: table is empty in {source.location}")
        source.clean[table] = clean
        rejected.append(bad)
    union = rejected[0]
    for bad in rejected[1:]:
        union = union.unionByName(bad)
    if persist and source.rejected_path is not None:
        try:
            union.write.mode("overwrite").parquet(source.rejected_path)
            union = source.session.read.parquet(source.rejected_path)
        except Exception as exc:  # a read-only lake: the report still counts every row
            report.notes.append(
                f"rejected rows not written to {source.rejected_path}: "
                f"{str(exc).strip().splitlines()[0][:120]}"
            )
    counts = (
        union.groupBy("table_name", "column_name", "reason")
        .agg(F.count("*").alias("rows"), F.min(F.coalesce("value", F.lit("null"))).alias("example"))
        .toPandas()
    )
    report.rejected = (
        counts[["table_name", "column_name", "reason", "rows", "example"]]
        .sort_values(["table_name", "column_name", "reason"])
        .reset_index(drop=True)
        .astype({"rows": "int64"})
    )
    if report.rejected.empty:
        report.rejected = pd.DataFrame(
            columns=["table_name", "column_name", "reason", "rows", "example"]
        )
    empty = [t for t in OUTCOME_TABLES if source.has(t)]
    if empty and all(report.rows[t] == 0 for t in empty):
        raise InputError(f"{empty[0]}: table is empty (no outcome to model)")
    source.quarantined = True
    source.report = report
    return report
