"""Sources: where the canonical tables come from.

A :class:`Source` is an in-memory DuckDB connection that shows the user's data as the canonical
tables of docs/contract.md, without copying it: a DuckDB file is attached read-only, a folder of
Parquet/CSV files (or one CSV/Parquet file that several canonical tables are cut from) is
scanned in place, a PostgreSQL database is read through psycopg in batches, and a config file
maps a user's own table and column names, units, constants, derived columns and filters onto
the canonical ones (see :mod:`satmodel.config`). Every canonical table the data holds is a
view ``raw.<table>`` with canonical names and types; :func:`satmodel.validate.quarantine` then
adds the clean views under the plain table names. Large tables (``requests``) never pass
through pandas.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from satmodel.config import (
    COMPARISONS,
    CONFIG_FILE_NAME,
    REPEAT_INDEX,
    UNIT_FACTORS,
    WHERE_TESTS,
    Config,
    Derived,
    TableMapping,
    is_url,
    load_config,
)
from satmodel.errors import InputError
from satmodel.schema import SQL_TYPES, TABLES, TableSpec

NUMERIC_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
}
TIME_TYPES = {
    "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE",
    "TIMESTAMP_S",
    "TIMESTAMP_MS",
    "TIMESTAMP_NS",
    "DATE",
}


# Kinds whose values may arrive as text and are parsed; the text is kept in a column named
# TEXT_PREFIX + canonical name, which validation reads and the clean views drop.
TEXT_PARSED_KINDS = ("float", "int", "bool", "timestamp")
TEXT_PREFIX = "_text_"


def quote(identifier: str) -> str:
    """Quote an SQL identifier for DuckDB."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: object) -> str:
    """An SQL literal for a constant from the config (numbers, booleans, strings only)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise InputError(f"config: constant {value!r} must be a number, boolean or string")


def _base_type(sql_type: str) -> str:
    upper = sql_type.upper()
    if upper.startswith("DECIMAL"):
        return "DOUBLE"
    return upper


def _compatible(kind: str, sql_type: str) -> bool:
    base = _base_type(sql_type)
    if kind in ("str", "month"):
        return True
    if kind in ("float", "int"):
        return base in NUMERIC_TYPES or base == "DOUBLE"
    if kind == "bool":
        return base == "BOOLEAN" or base in NUMERIC_TYPES
    if kind == "timestamp":
        return base in TIME_TYPES
    raise ValueError(kind)


@dataclass
class Source:
    """The canonical tables of one data source.

    Attributes
    ----------
    con : in-memory DuckDB connection; ``raw.<table>`` views hold the canonical tables as read,
        and after :func:`satmodel.validate.quarantine` the plain ``<table>`` views hold the rows
        that passed every rule.
    location : what was opened (file, folder, or a PostgreSQL URL without password).
    kind : ``duckdb``, ``folder``, ``file`` (one CSV/Parquet file) or ``postgres``.
    tables : canonical tables present, in canonical order.
    config : the configuration in force.
    type_problems : columns present but of a type that cannot be cast (one message each).
    missing_columns : required canonical columns each table lacks.
    quarantined, report : set by :func:`satmodel.validation.quarantine`.
    files : the files read, for fingerprints.
    remote : PostgreSQL tables read (``url#schema.table`` -> rows copied), for fingerprints.
    """

    con: duckdb.DuckDBPyConnection
    location: Path | str
    kind: str
    tables: list[str]
    config: Config
    type_problems: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    missing_columns: dict[str, list[str]] = field(default_factory=dict)
    quarantined: bool = False
    report: object | None = None
    remote: dict[str, int] = field(default_factory=dict)

    def has(self, table: str) -> bool:
        """Whether the source holds canonical table ``table``."""
        return table in self.tables

    def relation(self, table: str, clean: bool = True) -> duckdb.DuckDBPyRelation:
        """A DuckDB relation over one canonical table (the clean rows by default)."""
        if not self.has(table):
            raise InputError(f"{table}: table not found in {self.location}")
        if clean and not self.quarantined:
            raise RuntimeError(
                "call satmodel.validate.quarantine(source) before reading clean rows"
            )
        return self.con.table(table if clean else f"raw.{table}")

    def frame(self, table: str, clean: bool = True) -> pd.DataFrame:
        """A small canonical table as a pandas DataFrame (never use this for ``requests``)."""
        return self.relation(table, clean=clean).df()

    def ibis(self):
        """An ibis backend over this source's connection."""
        import ibis

        return ibis.duckdb.from_connection(self.con)

    def fingerprint(self) -> dict[str, str]:
        """SHA-256 of every input file (size and mtime for files over 256 MiB)."""
        prints = {}
        for path in self.files:
            stat = path.stat()
            if stat.st_size > 256 * 2**20:
                prints[str(path)] = f"size={stat.st_size};mtime={int(stat.st_mtime)}"
                continue
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda h=handle: h.read(2**20), b""):
                    digest.update(block)
            prints[str(path)] = "sha256:" + digest.hexdigest()
        for table, rows in self.remote.items():
            prints[table] = f"rows={rows}"
        return prints

    def close(self) -> None:
        self.con.close()


def apply_duckdb_settings(con, settings: Mapping[str, Any] | None) -> None:
    """Apply DuckDB settings (``memory_limit``, ``temp_directory``, ``threads``...) to ``con``.

    Raises
    ------
    InputError
        When DuckDB rejects a setting.
    """
    import duckdb

    for key, value in (settings or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(key)):
            raise InputError(f"duckdb setting {key!r}: not a setting name")
        literal = (
            str(value).lower()
            if isinstance(value, bool)
            else str(value)
            if isinstance(value, int | float)
            else "'" + str(value).replace("'", "''") + "'"
        )
        try:
            con.execute(f"SET {key} = {literal}")
        except duckdb.Error as exc:
            raise InputError(
                f"duckdb setting {key} = {value!r}: {str(exc).splitlines()[0]}"
            ) from None


def _connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC with the ``raw`` schema for the canonical views."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE SCHEMA raw")
    return con


def _path_literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _scan_folder_file(path: Path) -> str:
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path.stem}: file {path} is empty (not even a header row)")
    if path.is_dir():
        return f"read_parquet({_path_literal(path / '*.parquet')})"
    if path.suffix == ".parquet":
        return f"read_parquet({_path_literal(path)})"
    return f"read_csv({_path_literal(path)}, header = true, auto_detect = true)"


def _find_in_folder(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.parquet", folder / f"{stem}.csv", folder / stem):
        if candidate.is_file() or (candidate.is_dir() and any(candidate.glob("*.parquet"))):
            return candidate
    return None


def _select_list(
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
        if _base_type(source_type) == "VARCHAR" and column.kind in TEXT_PARSED_KINDS:
            # Text that should hold numbers, booleans or timestamps (CSV sniffing gives up on
            # one bad value): parse it here and keep the text, so validation can quarantine
            # the values that do not parse, or refuse a column where none does.
            items.append(f"{expression} AS {quote(TEXT_PREFIX + column.name)}")
            parsed_type = "DOUBLE" if column.kind in ("float", "int") else SQL_TYPES[column.kind]
            expression = f"TRY_CAST({expression} AS {parsed_type})"
            source_type = parsed_type
        if not _compatible(column.kind, source_type):
            items.append(f"{expression} AS {quote(column.name)}")
            problems.append(
                f"{spec.name}.{column.name}: expected {column.kind}, found {source_type}"
            )
            continue
        if column.kind == "month" and _base_type(source_type) in TIME_TYPES:
            expression = f"strftime({expression}, '%Y-%m')"
        if column.name in mapping.units:
            unit = mapping.units[column.name]
            factors = UNIT_FACTORS.get(column.unit or "", {})
            if unit not in factors:
                raise InputError(
                    f"config: tables.{spec.name}.units.{column.name} = {unit!r} is not a known unit "
                    f"(known: {', '.join(factors) or 'none for this column'})"
                )
            expression = f"CAST({expression} AS DOUBLE) * {factors[unit]!r}"
        items.append(f"CAST({expression} AS {target_type}) AS {quote(column.name)}")
    return items


_DIVISORS = {
    "days_between": 86400.0,
    "hours_between": 3600.0,
    "minutes_between": 60.0,
    "seconds_between": 1.0,
}


def _derived_alias(column: str) -> str:
    return f"_satmodel_derived_{column}"


def _part(value: object) -> str:
    return f"CAST({quote(value)} AS BIGINT)" if isinstance(value, str) else str(int(value))


def derived_sql(derived: Derived) -> str:
    """The SQL expression of a derived column (identifiers quoted, values as literals)."""
    op, args = derived.op, derived.args
    if op in _DIVISORS:
        start = f"epoch(TRY_CAST({quote(args['start'])} AS TIMESTAMP))"
        end = f"epoch(TRY_CAST({quote(args['end'])} AS TIMESTAMP))"
        expression = f"(({end} - {start}) / {_DIVISORS[op]!r})"
    elif op in COMPARISONS:
        right = quote(args["other"]) if "other" in args else literal(args["value"])
        return f"({quote(args['column'])} {COMPARISONS[op]} {right})"
    elif op in ("is_null", "not_null"):
        return f"({quote(args['column'])} IS {'NOT ' if op == 'not_null' else ''}NULL)"
    elif op == "month_of":
        return f"strftime(TRY_CAST({quote(args['column'])} AS TIMESTAMP), '%Y-%m')"
    elif op == "date_from_parts":
        day = args.get("day", 1)
        return (
            f"CAST(make_date({_part(args['year'])}, {_part(args['month'])}, {_part(day)}) "
            "AS TIMESTAMP)"
        )
    elif op == "concat":
        parts = ", ".join(f"CAST({quote(c)} AS VARCHAR)" for c in args["columns"])
        return f"concat_ws({literal(args.get('sep', '-'))}, {parts})"
    elif op == "row_number":
        order = ", ".join(quote(c) for c in args["order_by"])
        return f"row_number() OVER (ORDER BY {order})"
    elif op == "multiply":
        return f"(CAST({quote(args['column'])} AS DOUBLE) * {args['value']!r})"
    elif op == "coalesce":
        parts = [quote(c) for c in args["columns"]]
        if "value" in args:
            parts.append(literal(args["value"]))
        return f"coalesce({', '.join(parts)})"
    elif op == "copy":
        expression = quote(args["column"])
    else:  # pragma: no cover - config rejects unknown ops
        raise InputError(f"derived: unknown op {op!r}")
    if "scale" in args:
        expression = f"(CAST({expression} AS DOUBLE) * {args['scale']!r})"
    return expression


def _where_sql(condition) -> str:
    column = quote(condition.column)
    operator = WHERE_TESTS[condition.test]
    if condition.test == "is_null":
        return f"({column} IS {'' if condition.value else 'NOT '}NULL)"
    if condition.test in ("in", "not_in"):
        values = ", ".join(literal(v) for v in condition.value)
        return f"({column} {operator} ({values}))"
    return f"({column} {operator} {literal(condition.value)})"


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


def _check_names(
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


def _first_error_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0]


def _mapped_from(
    con, source: Source, name: str, from_clause: str, mapping: TableMapping, label: str
) -> tuple[str, TableMapping]:
    """Apply a mapping's filters, repeat and derived columns: a new FROM clause and mapping."""
    if not (mapping.where or mapping.repeat or mapping.derived):
        return from_clause, mapping
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {from_clause}").fetchall()
    except duckdb.Error as exc:
        raise InputError(f"{name}: cannot read {label} ({_first_error_line(exc)})") from None
    _check_names(source, name, mapping, [row[0] for row in described], label)
    where = f"config {source.config.path}" if source.config.path else "config"
    types = {row[0]: _base_type(row[1]) for row in described}
    for column, derived in mapping.derived.items():
        if derived.op in _DIVISORS or derived.op == "month_of":
            for used in derived.columns():
                if types.get(used) not in TIME_TYPES | {"VARCHAR"}:
                    raise InputError(
                        f"{where}: tables.{name}.derived.{column}: op {derived.op!r} cannot use "
                        f"column {used!r} of {label}: it holds {types.get(used)}, not a date or "
                        "timestamp"
                    )
    rows = f"SELECT * FROM {from_clause}"
    if mapping.where:
        rows += " WHERE " + " AND ".join(_where_sql(c) for c in mapping.where)
        try:
            con.execute(f"DESCRIBE {rows}").fetchall()
        except duckdb.Error as exc:
            raise InputError(
                f"{where}: tables.{name}.where: cannot apply to {label} ({_first_error_line(exc)})"
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
                f"count ({_first_error_line(exc)})"
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
                    f"computed from {label} ({_first_error_line(exc)})"
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


def _register(
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
    select = _select_list(spec, mapping, source_types, source.type_problems)
    missing = [
        c.name
        for c in spec.columns
        if not c.nullable
        and c.name not in mapping.constants
        and mapping.columns.get(c.name, c.name) not in source_types
    ]
    source.missing_columns[name] = missing
    if not select:
        select = ["NULL AS _no_canonical_column"]
    distinct = "DISTINCT " if mapping.distinct else ""
    con.execute(
        f"CREATE VIEW raw.{quote(name)} AS SELECT {distinct}{', '.join(select)} FROM {from_clause}"
    )
    source.tables.append(name)


def _register_postgres(
    con, source: Source, name: str, url: str, mapping: TableMapping, readers: dict
) -> None:
    """Copy one PostgreSQL table into DuckDB (``pg.<name>``) and register its mapping."""
    from satmodel.postgres import PostgresReader, redact

    if url not in readers:
        readers[url] = PostgresReader.connect(url)
    reader = readers[url]
    stem = mapping.table or name
    found = reader.tables()
    if stem not in found:
        if mapping.table is None and mapping.url is None:
            return  # a canonical table the database does not hold
        raise InputError(
            f"{name}: table {stem!r} not found in {redact(url)} "
            f"(tables: {', '.join(sorted(k for k in found if '.' not in k)) or 'none'})"
        )
    schema, table = found[stem]
    available = list(reader.columns(schema, table))
    _check_names(source, name, mapping, available, f"{redact(url)} table {schema}.{table}")
    con.execute("CREATE SCHEMA IF NOT EXISTS pg")
    target = f"pg.{quote(name)}"
    rows = reader.load(con, schema, table, target, referenced_columns(TABLES[name], mapping))
    source.remote[f"{redact(url)}#{schema}.{table}"] = rows
    _register(con, source, name, target, mapping, f"{redact(url)} table {schema}.{table}")


def open_source(src: str | Path | None = None, config: Config | None = None) -> Source:
    """Open a data source as canonical tables.

    Parameters
    ----------
    src : a DuckDB file, a folder of ``<table>.parquet``/``<table>.csv`` files, a
        ``postgresql://`` URL, or a ``satmodel.toml`` config file naming one (or one CSV/Parquet
        file that its mappings cut tables from). ``None`` uses the config's source (default
        ``data/satmodel.duckdb``).
    config : configuration; read from ``src`` when it is a ``.toml`` file, else defaults.

    Returns
    -------
    Source

    Raises
    ------
    InputError
        When the source does not exist or cannot be read.

    Examples
    --------
    >>> source = open_source("data/satmodel.duckdb")  # doctest: +SKIP
    >>> source.tables  # doctest: +SKIP
    ['customers', 'requests', ...]
    """
    if src is not None and not is_url(str(src)) and Path(src).suffix == ".toml":
        config = load_config(src)
        src = None
    if config is None:
        config = load_config(None) if src is None else Config()
    url = str(src) if src is not None and is_url(str(src)) else None
    if src is None and config.source_url is not None:
        url = config.source_url
    if url is not None:
        return _open_postgres(url, config)
    location = Path(src) if src is not None else config.source
    if not location.exists():
        hint = " (run `satmodel demo` to create the demo data)" if location == config.source else ""
        raise InputError(f"source {location}: not found{hint}")
    con = _connect()
    apply_duckdb_settings(con, config.duckdb)
    if location.is_dir():
        kind = "folder"
    elif location.suffix.lower() in (".csv", ".parquet", ".tsv", ".txt"):
        kind = "file"
    else:
        kind = "duckdb"
    source = Source(con=con, location=location, kind=kind, tables=[], config=config)
    readers: dict = {}
    try:
        _open_tables(con, source, location, kind, readers)
    except BaseException:
        con.close()
        raise
    finally:
        for reader in readers.values():
            reader.close()
    return source


def _open_postgres(url: str, config: Config) -> Source:
    from satmodel.postgres import redact

    con = _connect()
    source = Source(con=con, location=redact(url), kind="postgres", tables=[], config=config)
    readers: dict = {}
    try:
        for name in TABLES:
            mapping = config.tables.get(name, TableMapping())
            if mapping.file is not None:
                _register_file(con, source, name, mapping.file, mapping)
            else:
                _register_postgres(con, source, name, mapping.url or url, mapping, readers)
    except BaseException:
        con.close()
        raise
    finally:
        for reader in readers.values():
            reader.close()
    return source


def _register_file(con, source: Source, name: str, path: Path, mapping: TableMapping) -> None:
    if not path.exists():
        raise InputError(f"{name}: file {path} not found")
    source.files.extend(sorted(path.glob("*.parquet")) if path.is_dir() else [path])
    _register(con, source, name, _scan_folder_file(path), mapping, path.name)


def _open_tables(con, source: Source, location: Path, kind: str, readers: dict) -> None:
    config = source.config
    if kind == "file" and not config.tables:
        raise InputError(
            f"source {location}: one file can hold canonical tables only through a "
            f"{CONFIG_FILE_NAME} that maps them, e.g. [tables.surveys] columns = "
            '{ response_id = "review_id", csat = "score" }'
        )
    if kind == "duckdb":
        try:
            con.execute(f"ATTACH {_path_literal(location)} AS src (READ_ONLY)")
        except duckdb.Error as exc:
            raise InputError(
                f"source {location}: not a readable DuckDB file ({str(exc).splitlines()[0]})"
            ) from None
        source.files.append(location)
        present = {
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'src'"
            ).fetchall()
        }
    for name in TABLES:
        mapping = config.tables.get(name, TableMapping())
        stem = mapping.table or name
        if mapping.file is not None:
            _register_file(con, source, name, mapping.file, mapping)
        elif mapping.url is not None:
            _register_postgres(con, source, name, mapping.url, mapping, readers)
        elif kind == "file":
            if name in config.tables:
                if location not in source.files:
                    source.files.append(location)
                _register(con, source, name, _scan_folder_file(location), mapping, location.name)
        elif kind == "duckdb":
            if stem in present:
                _register(con, source, name, f"src.{quote(stem)}", mapping, stem)
        else:
            found = _find_in_folder(location, stem)
            if found is not None:
                source.files.extend(sorted(found.glob("*.parquet")) if found.is_dir() else [found])
                _register(con, source, name, _scan_folder_file(found), mapping, found.name)


def read_table_file(path: str | Path) -> pd.DataFrame:
    """Read one CSV or Parquet file of any columns into pandas (for ``satmodel fit``).

    Raises
    ------
    InputError
        When the file is missing, empty or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".txt"):
            return pd.read_csv(path, encoding="utf-8-sig")
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
    raise InputError(f"{path}: expected a .csv or .parquet file")
