"""Validation and quarantine: check the canonical tables against the data contract.

Two kinds of fault:

- **table-level** (a required table or column is missing, a column has a type that cannot be
  read as its canonical type, a required table is empty): raise :class:`InputError`, one line
  per problem naming table, column and an example value. Nothing can go on.
- **row-level** (csat 7, negative latency, end before start, duplicate ids, unknown customers,
  timestamps outside the data's months...): the row is set aside in the ``rejected`` table with
  the reason, counted and reported; everything else goes on with the clean rows.

The column presence and types are checked with pandera schemas (ibis backend, so nothing is
loaded into pandas); the row rules run as SQL in DuckDB, generated from the same
:mod:`satmodel.schema` description, so they scale to billions of requests.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from satmodel.calendar import add_months, month_start
from satmodel.errors import InputError
from satmodel.schema import OUTCOME_TABLES, SERVICE_TABLES, TABLES, TableSpec
from satmodel.sources import TEXT_PREFIX, Source, literal, open_source, quote
from satmodel.sources.core import compatible

REJECTED_COLUMNS = ("table_name", "reason", "column_name", "value", "row_json")
EARLIEST_PLAUSIBLE = "2000-01-01"
# Years a timestamp may fall in at all; others are corrupt (epoch units mixed up, overflow).
TIMESTAMP_RANGE = (1970, 2100)


@dataclass
class ValidationReport:
    """What validation found.

    Attributes
    ----------
    rows : rows read per table.
    rejected : one row per (table, column, reason): rows and an example value.
    window : first and last month of the data ('YYYY-MM'), or None when unknown.
    notes : things worth knowing that are not faults (optional columns absent...).
    """

    rows: dict[str, int] = field(default_factory=dict)
    rejected: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            columns=["table_name", "column_name", "reason", "rows", "example"]
        )
    )
    window: tuple[str, str] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_rejected(self) -> int:
        """Total rows quarantined."""
        return int(self.rejected["rows"].sum()) if len(self.rejected) else 0

    @property
    def ok(self) -> bool:
        """True when no row broke a rule."""
        return self.n_rejected == 0

    def problem_lines(self) -> list[str]:
        """One line per rule broken: table, column, number of rows and an example."""
        return [
            f"{r.table_name}.{r.column_name}: {r.rows} row{'s' if r.rows != 1 else ''} {r.reason} "
            f"(e.g. {r.example})"
            for r in self.rejected.itertuples()
        ]

    def summary(self) -> str:
        """A short human summary: rows read and rows quarantined."""
        read = ", ".join(f"{table} {count:,}" for table, count in self.rows.items())
        window = f"{self.window[0]}..{self.window[1]}" if self.window else "unknown"
        return f"rows read: {read}; months {window}; rows quarantined: {self.n_rejected:,}"


def _required_tables_problems(source: Source) -> list[str]:
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
    return problems


def _example(source: Source, table: str, column: str) -> str:
    rows = source.con.execute(
        f"SELECT {quote(column)}::VARCHAR FROM raw.{quote(table)} "
        f"WHERE {quote(column)} IS NOT NULL LIMIT 1"
    ).fetchall()
    return repr(rows[0][0]) if rows else "no non-null value"


def _pandera_schema(spec: TableSpec):
    import ibis.expr.datatypes as dt
    import pandera.ibis as pa

    types = {
        "str": dt.String(),
        "month": dt.String(),
        "float": dt.Float64(),
        "int": dt.Float64(),
        "bool": dt.Boolean(),
        "timestamp": dt.Timestamp(timezone="UTC", scale=6),
    }
    return pa.DataFrameSchema(
        {c.name: pa.Column(types[c.kind], nullable=True) for c in spec.columns},
        name=spec.name,
    )


def mapping_guesses(
    spec: TableSpec, missing: list[str], available: dict[str, str]
) -> dict[str, str]:
    """Best guess of the user's column for each missing canonical one.

    Pairs are scored by name similarity, plus a bonus when the column's type fits (a timestamp
    for ``ts``, a number for ``csat``), and taken best first; each user column is used once.
    """
    pairs = []
    for column in missing:
        kind = spec.column(column).kind
        for name, sql_type in available.items():
            score = difflib.SequenceMatcher(None, column.lower(), name.lower()).ratio()
            if kind not in ("str", "month") and compatible(kind, sql_type):
                score += 1.0
            pairs.append((score, column, name))
    guesses: dict[str, str] = {}
    for score, column, name in sorted(pairs, reverse=True):
        if score >= 0.3 and column not in guesses and name not in guesses.values():
            guesses[column] = name
    return guesses


def missing_column_lines(source: Source, table: str, missing: list[str]) -> list[str]:
    """One line per missing column: the user's columns and a ready ``satmodel.toml`` mapping."""
    available = list(source.columns_read.get(table, {}))
    unmapped = {
        c: t
        for c, t in source.columns_read.get(table, {}).items()
        if c not in TABLES[table].column_names
    }
    guesses = mapping_guesses(TABLES[table], missing, unmapped)
    sketch = ", ".join(f'{c} = "{guesses.get(c, "<your column>")}"' for c in missing)
    shown = ", ".join(available[:20]) + (", ..." if len(available) > 20 else "")
    return [
        f"{table}.{column}: column missing (columns in the data: {shown or 'none'}; map them in "
        f"satmodel.toml, e.g. [tables.{table}] columns = {{ {sketch} }})"
        for column in missing
    ]


def _column_problems(source: Source) -> list[str]:
    """Missing columns and wrong types, checked with pandera on the raw views."""
    import pandera.errors

    problems = list(source.type_problems)
    backend = source.ibis()
    for table in source.tables:
        spec = TABLES[table]
        missing = source.missing_columns.get(table, [])
        mistyped = {  # reported by the source ("table.column: wrong type ...")
            line.split(":", 1)[0].split(".", 1)[1]
            for line in source.type_problems
            if line.startswith(f"{table}.")
        }
        if missing:
            problems.extend(missing_column_lines(source, table, missing))
        present = [c for c in spec.columns if c.name not in missing and c.name not in mistyped]
        if not present:
            continue
        problems.extend(_unparsed_text_problems(source, table, present))
        try:
            _pandera_schema(spec).validate(
                backend.table(table, database="raw").select(*[c.name for c in present]),
                lazy=True,
            )
        except pandera.errors.SchemaErrors as exc:
            for case in exc.failure_cases.itertuples():
                if case.column not in spec.column_names:
                    continue
                kind = spec.column(case.column).kind
                problems.append(
                    f"{table}.{case.column}: wrong type: expected {kind}, found {case.failure_case} "
                    f"(e.g. {_example(source, table, case.column)})"
                )
    return problems


def _text_columns(source: Source, table: str) -> set[str]:
    """Canonical columns of ``table`` that arrived as text and were parsed by the source."""
    described = source.con.execute(f"DESCRIBE raw.{quote(table)}").fetchall()
    return {row[0][len(TEXT_PREFIX) :] for row in described if row[0].startswith(TEXT_PREFIX)}


def _unparsed_text_problems(source: Source, table: str, present) -> list[str]:
    """A column given as text where no value parses as its kind is the wrong type."""
    problems = []
    text_columns = _text_columns(source, table)
    for column in present:
        if column.name not in text_columns:
            continue
        text, parsed = quote(TEXT_PREFIX + column.name), quote(column.name)
        given, failed, example = source.con.execute(
            f"SELECT count({text}), count({text}) FILTER ({parsed} IS NULL), "
            f"min({text}) FILTER ({parsed} IS NULL) FROM raw.{quote(table)}"
        ).fetchall()[0]
        if given and failed == given:
            problems.append(
                f"{table}.{column.name}: wrong type: expected {column.kind}, found text "
                f"({given} row{'s' if given != 1 else ''}, none parses; e.g. {example!r})"
            )
    return problems


def _data_window(source: Source) -> tuple[str, str] | None:
    if not source.has("usage") or "month" in source.missing_columns.get("usage", []):
        return None
    rows = source.con.execute(
        "SELECT min(month), max(month) FROM raw.usage "
        "WHERE regexp_full_match(month, '[0-9]{4}-(0[1-9]|1[0-2])')"
    ).fetchall()
    first, last = rows[0]
    return (first, last) if first is not None else None


def _month_start_sql(month: str, timezone: str) -> str:
    """SQL literal of the first instant of ``month`` in ``timezone``, written in UTC."""
    start = month_start(month, timezone).tz_convert("UTC")
    return f"TIMESTAMPTZ '{start:%Y-%m-%d %H:%M:%S}+00'"


@dataclass(frozen=True)
class _Rule:
    """A row rule: an SQL condition TRUE for a bad row, the column, the reason, the value."""

    condition: str
    column: str
    reason: str
    value: str | None = None  # SQL for the offending value; the column's value by default

    @property
    def test(self) -> str:
        return f"COALESCE(({self.condition}), FALSE)"

    @property
    def value_sql(self) -> str:
        return self.value or f"CAST({quote(self.column)} AS VARCHAR)"


def _conditions(source: Source, spec: TableSpec, window: tuple[str, str] | None) -> list[_Rule]:
    """The row rules of one table; the first that matches gives the reason."""
    conditions = []
    text_columns = _text_columns(source, spec.name)
    for column in spec.columns:
        name = quote(column.name)
        if column.name in text_columns:
            text = quote(TEXT_PREFIX + column.name)
            conditions.append(
                (
                    f"{text} IS NOT NULL AND {name} IS NULL",
                    column.name,
                    f"not a {column.kind}",
                    text,
                )
            )
        if not column.nullable:
            conditions.append((f"{name} IS NULL", column.name, "missing"))
        if column.kind in ("float", "int"):
            conditions.append((f"NOT isfinite({name})", column.name, "not a finite number"))
        if column.kind == "timestamp":
            conditions.append(
                (
                    f"{name} < TIMESTAMPTZ '{TIMESTAMP_RANGE[0]}-01-01 00:00:00+00' OR "
                    f"{name} >= TIMESTAMPTZ '{TIMESTAMP_RANGE[1] + 1}-01-01 00:00:00+00'",
                    column.name,
                    f"timestamp out of range (outside {TIMESTAMP_RANGE[0]}..{TIMESTAMP_RANGE[1]})",
                )
            )
        if column.rule:
            rule = column.rule.format(c=name)
            conditions.append(
                (f"{name} IS NOT NULL AND NOT ({rule})", column.name, column.rule_text)
            )
    for earlier, later in spec.order_pairs:
        conditions.append((f"{quote(later)} < {quote(earlier)}", later, f"before {earlier}"))
    for column in spec.columns:
        if column.references and source.has(column.references):
            value = quote(column.name)
            key = quote(TABLES[column.references].key[0])
            conditions.append(
                (
                    f"{value} IS NOT NULL AND {value} NOT IN "
                    f"(SELECT {key} FROM main.{quote(column.references)})",
                    column.name,
                    f"unknown {column.references.removesuffix('s')} (not in {column.references})",
                )
            )
    if spec.name != "customers" and "customer_id" in spec.column_names and source.has("customers"):
        customer = quote("customer_id")
        conditions.append(
            (
                f"{customer} IS NOT NULL AND {customer} NOT IN "
                "(SELECT customer_id FROM main.customers)",
                "customer_id",
                "unknown customer (not in customers)",
            )
        )
    time_column = spec.time_column
    if time_column and TABLES[spec.name].column(time_column).kind == "timestamp":
        start = quote(time_column)
        end = quote(spec.time_end_column or time_column)
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        conditions.append(
            (
                f"{start} < TIMESTAMPTZ '{EARLIEST_PLAUSIBLE}' OR {start} > TIMESTAMPTZ '{now}+00' + INTERVAL 1 DAY",
                time_column,
                "implausible timestamp (before 2000 or in the future)",
            )
        )
        if window is not None:
            # the window's months are local months of the [calendar] zone
            zone = source.config.calendar.timezone
            low = _month_start_sql(window[0], zone)
            high = _month_start_sql(add_months(window[1], 1), zone)
            conditions.append(
                (
                    f"{end} < {low} OR {start} >= {high}",
                    time_column,
                    f"outside the data's months {window[0]}..{window[1]}",
                )
            )
    return [_Rule(*condition) for condition in conditions]


def validation_order(tables: list[str]) -> list[str]:
    """The tables in canonical order, except that the tables others reference come first.

    A rule "must name a row of customers (components)" reads the clean ``customers``
    (``components``) view, so those are quarantined before the tables that reference them.
    """
    referenced = {"customers"} | {
        c.references for t in tables for c in TABLES[t].columns if c.references
    }
    return [t for t in tables if t in referenced] + [t for t in tables if t not in referenced]


def component_notes(source: Source) -> list[str]:
    """Things worth knowing about components and problems that are allowed by the contract.

    A recurring problem whose incidents lie on several components, and planned incidents
    outside any stated maintenance window: a planned incident is inside one when a change
    on its component (or a platform-wide one) falls between its start and end (without a
    changes table nothing states a window, and nothing is noted).
    """
    if not source.has("incidents"):
        return []
    con = source.con
    notes = []
    spread = con.execute(
        "SELECT problem_id, string_agg(DISTINCT component_id, ', ' ORDER BY component_id) "
        "FROM main.incidents WHERE problem_id IS NOT NULL AND component_id IS NOT NULL "
        "GROUP BY problem_id HAVING count(DISTINCT component_id) > 1 ORDER BY problem_id"
    ).fetchall()
    if spread:
        notes.append(
            f"incidents.problem_id: {len(spread)} of the recurring problems span several "
            f"components (allowed; e.g. {spread[0][0]}: {spread[0][1]})"
        )
    if not source.has("changes"):
        return notes
    outside, example = con.execute(
        "SELECT count(*), min(incident_id) FROM main.incidents AS i WHERE i.planned AND NOT "
        "EXISTS (SELECT 1 FROM main.changes AS c WHERE c.ts BETWEEN i.start_ts AND i.end_ts "
        "AND (c.component_id IS NULL OR i.component_id IS NULL "
        "OR c.component_id = i.component_id))"
    ).fetchall()[0]
    if outside:
        notes.append(
            f"incidents.planned: {outside} planned incident{'s' if outside != 1 else ''} outside "
            f"any stated maintenance window (no change on the component during it; allowed; "
            f"e.g. {example})"
        )
    return notes


def _checked_rows(spec: TableSpec, rules: list[_Rule]) -> str:
    """The raw rows, with a duplicate rank when the table has a key (and an open rank when
    it has ``one_open``).

    Among rows sharing an id, those that meet every other rule rank first (then the earliest),
    so a duplicate id keeps its first good row rather than losing all of them; the same order
    ranks the open rows (null end) of one ``one_open`` key.
    """
    source = f"raw.{quote(spec.name)}"
    if not spec.key and spec.one_open is None:
        return source
    breaks_a_rule = " OR ".join(rule.test for rule in rules) or "FALSE"
    return f"(SELECT *, {', '.join(rank_columns(spec, f'({breaks_a_rule})'))} FROM {source})"


def rank_columns(spec: TableSpec, breaks: str, quote=quote) -> list[str]:
    """SQL select items ranking the rows of one id (and the open rows of one ``one_open`` key).

    ``breaks`` is a boolean SQL expression, true for a row that breaks a rule: good rows rank
    first, then the earliest, then by every column (a stable order on any engine). ``quote``
    quotes an identifier in the engine's dialect (DuckDB's by default).
    """
    order = ", ".join(
        [breaks]
        + [quote(c) for c in ([spec.time_column] if spec.time_column else []) + spec.column_names]
    )
    ranks = []
    if spec.key:
        partition = ", ".join(quote(k) for k in spec.key)
        ranks.append(
            f"row_number() OVER (PARTITION BY {partition} ORDER BY {order}) AS _satmodel_rank"
        )
    if spec.one_open is not None:
        key, end = (quote(c) for c in spec.one_open)
        ranks.append(
            f"CASE WHEN {end} IS NULL THEN row_number() OVER (PARTITION BY {key}, {end} IS NULL "
            f"ORDER BY {order}) END AS _satmodel_open_rank"
        )
    return ranks


def _clean_select(spec: TableSpec) -> str:
    casts = []
    for column in spec.columns:
        name = quote(column.name)
        casts.append(f"CAST({name} AS BIGINT) AS {name}" if column.kind == "int" else name)
    return ", ".join(casts)


def unreadable(exc: BaseException) -> bool:
    """Whether a DuckDB error means the data cannot be read (corrupt or refused file)."""
    return isinstance(exc, duckdb.IOException | duckdb.PermissionException) or (
        "Corrupt database file" in str(exc)
    )


def _quarantine_table(source: Source, report: ValidationReport, table: str) -> None:
    """Count one table's rows, expose its clean rows and put its bad rows into ``rejected``."""
    con = source.con
    spec = TABLES[table]
    report.rows[table] = con.execute(f"SELECT count(*) FROM raw.{quote(table)}").fetchall()[0][0]
    conditions = _conditions(source, spec, report.window)
    rows = _checked_rows(spec, conditions)
    if spec.key:
        conditions.append(_Rule("_satmodel_rank > 1", spec.key[0], "duplicate id (first kept)"))
    if spec.one_open is not None:
        key, end = spec.one_open
        reason = f"a second open row (null {end}) for one {key} (first kept)"
        conditions.append(_Rule("_satmodel_open_rank > 1", end, reason))
    is_bad = " OR ".join(rule.test for rule in conditions)
    con.execute(
        f"CREATE OR REPLACE VIEW main.{quote(table)} AS SELECT {_clean_select(spec)} "
        f"FROM {rows} WHERE NOT ({is_bad})"
    )
    reason = " ".join(f"WHEN {rule.test} THEN {literal(rule.reason)}" for rule in conditions)
    column = " ".join(f"WHEN {rule.test} THEN {literal(rule.column)}" for rule in conditions)
    value = " ".join(f"WHEN {rule.test} THEN {rule.value_sql}" for rule in conditions)
    row_struct = ", ".join(f"{quote(c)} := {quote(c)}" for c in spec.column_names)
    con.execute(
        f"INSERT INTO rejected SELECT '{table}', CASE {reason} END, CASE {column} END, "
        f"CASE {value} END, to_json(struct_pack({row_struct}))::VARCHAR "
        f"FROM {rows} WHERE {is_bad}"
    )


def quarantine(source: Source, persist: bool = False) -> ValidationReport:
    """Set rows that break the contract aside and expose the clean rows.

    After this call ``source.con`` has a view ``<table>`` with the clean rows of every canonical
    table present, and a table ``rejected`` (table_name, reason, column_name, value, row_json)
    with every quarantined row.

    Parameters
    ----------
    source : an open :class:`~satmodel.sources.Source`.
    persist : also write ``rejected`` into the source's DuckDB file (or ``rejected.parquet`` in
        a writable source folder).

    Returns
    -------
    ValidationReport

    Raises
    ------
    InputError
        For table-level faults (missing table or column, wrong type, empty required table).
    """
    problems = _required_tables_problems(source) + _column_problems(source)
    if problems:
        raise InputError(problems)
    con = source.con
    report = ValidationReport(window=_data_window(source), notes=list(source.notes))
    con.execute(
        "CREATE OR REPLACE TABLE rejected (table_name VARCHAR, reason VARCHAR, "
        "column_name VARCHAR, value VARCHAR, row_json VARCHAR)"
    )
    for table in validation_order(source.tables):
        try:
            _quarantine_table(source, report, table)
        except duckdb.Error as exc:
            if not unreadable(exc):
                raise
            raise InputError(
                f"{table}: cannot read {source.location} ({str(exc).strip().splitlines()[0]})"
            ) from None
        if report.rows[table] == 0 and table == "customers":
            raise InputError(f"customers: table is empty in {source.location}")
    report.rows = {table: report.rows[table] for table in source.tables}
    report.notes.extend(component_notes(source))
    report.rejected = con.execute(
        "SELECT table_name, column_name, reason, count(*) AS rows, min(coalesce(value, 'null')) AS example "
        "FROM rejected GROUP BY ALL ORDER BY table_name, column_name, reason"
    ).df()
    report.rejected["rows"] = report.rejected["rows"].astype("int64")
    empty_outcomes = [t for t in OUTCOME_TABLES if source.has(t)]
    if empty_outcomes and all(report.rows[t] == 0 for t in empty_outcomes):
        raise InputError(f"{empty_outcomes[0]}: table is empty (no outcome to model)")
    source.quarantined = True
    source.report = report
    if persist:
        _persist_rejected(source)
    return report


def _persist_rejected(source: Source) -> None:
    """Keep the quarantined rows beside the data (DuckDB table or rejected.parquet).

    Writing is skipped when there is nothing new to record, and a source that another
    process holds open is left alone with a note: the run's report still counts every row.
    """
    con = source.con
    n_rejected = source.report.n_rejected
    if source.kind == "duckdb":
        previous = con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_catalog = 'src' AND table_name = 'rejected'"
        ).fetchall()[0][0]
        if n_rejected == 0 and (
            not previous or con.execute("SELECT count(*) FROM src.rejected").fetchall()[0][0] == 0
        ):
            return
        path = literal(str(source.location))
        con.execute("DETACH src")
        try:
            con.execute(f"ATTACH {path} AS src_write")
            con.execute("CREATE OR REPLACE TABLE src_write.rejected AS SELECT * FROM rejected")
            con.execute("DETACH src_write")
        except duckdb.Error as exc:
            source.report.notes.append(
                f"rejected rows not written to {source.location}: {str(exc).splitlines()[0][:120]}"
            )
        finally:
            con.execute(f"ATTACH {path} AS src (READ_ONLY)")
        return
    target = Path(source.location) / "rejected.parquet"
    if n_rejected == 0 and not target.exists():
        return
    try:
        tmp = target.with_suffix(".parquet.tmp")
        source.write_parquet("rejected", tmp)
        tmp.replace(target)
    except (duckdb.Error, OSError):
        source.report.notes.append(
            f"rejected rows kept in memory only: {target.parent} is not writable"
        )


def validate(src: str | Path | Source | None = None, persist: bool = True) -> ValidationReport:
    """Check every table and row of a source against the data contract.

    Parameters
    ----------
    src : a DuckDB file, a folder of tables, a ``satmodel.toml``, an open Source, or None for
        the default ``data/satmodel.duckdb``.
    persist : keep the quarantined rows in the source (table ``rejected``).

    Returns
    -------
    ValidationReport
        ``report.ok`` is False when any row broke a rule; ``report.problem_lines()`` says which.

    Raises
    ------
    InputError
        For table-level faults.
    """
    source = src if isinstance(src, Source) else open_source(src)
    return quarantine(source, persist=persist)
