"""Sources: where the canonical tables come from.

A :class:`Source` is an in-memory DuckDB connection that shows the user's data as the canonical
tables of DESIGN.md, without copying it: a DuckDB file is attached read-only, a folder of
Parquet/CSV files is scanned in place, and a config file maps a user's own table and column
names, units and constants onto the canonical ones. Every canonical table the data holds is a
view ``raw.<table>`` with canonical names and types; :func:`satmodel.validate.quarantine` then
adds the clean views under the plain table names. Large tables (``requests``) never pass
through pandas.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from satmodel.config import CONFIG_FILE_NAME, UNIT_FACTORS, Config, TableMapping, load_config
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
    location : what was opened (file, folder or config path).
    kind : ``duckdb`` or ``folder``.
    tables : canonical tables present, in canonical order.
    config : the configuration in force.
    type_problems : columns present but of a type that cannot be cast (one message each).
    missing_columns : required canonical columns each table lacks.
    quarantined, report : set by :func:`satmodel.validation.quarantine`.
    files : the files read, for fingerprints.
    """

    con: duckdb.DuckDBPyConnection
    location: Path
    kind: str
    tables: list[str]
    config: Config
    type_problems: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    missing_columns: dict[str, list[str]] = field(default_factory=dict)
    quarantined: bool = False
    report: object | None = None

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
        return prints

    def close(self) -> None:
        self.con.close()


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE SCHEMA raw")
    return con


def _path_literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _scan_folder_file(path: Path) -> str:
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


def _register(con, source: Source, name: str, from_clause: str, mapping: TableMapping) -> None:
    spec = TABLES[name]
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
    con.execute(f"CREATE VIEW raw.{quote(name)} AS SELECT {', '.join(select)} FROM {from_clause}")
    source.tables.append(name)


def open_source(src: str | Path | None = None, config: Config | None = None) -> Source:
    """Open a data source as canonical tables.

    Parameters
    ----------
    src : a DuckDB file, a folder of ``<table>.parquet``/``<table>.csv`` files, or a
        ``satmodel.toml`` config file naming one. ``None`` uses the config's source
        (default ``data/satmodel.duckdb``).
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
    if src is not None and Path(src).suffix == ".toml":
        config = load_config(src)
        src = None
    if config is None:
        config = load_config(None) if src is None else Config()
    location = Path(src) if src is not None else config.source
    if not location.exists():
        hint = " (run `satmodel demo` to create the demo data)" if location == config.source else ""
        raise InputError(f"source {location}: not found{hint}")
    con = _connect()
    kind = "folder" if location.is_dir() else "duckdb"
    source = Source(con=con, location=location, kind=kind, tables=[], config=config)
    if kind == "duckdb":
        if location.suffix in (".parquet", ".csv", ".toml"):
            raise InputError(
                f"source {location}: expected a DuckDB file, a folder of tables or a {CONFIG_FILE_NAME}"
            )
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
            if not mapping.file.exists():
                raise InputError(f"{name}: file {mapping.file} not found")
            source.files.append(mapping.file)
            _register(con, source, name, _scan_folder_file(mapping.file), mapping)
        elif kind == "duckdb":
            if stem in present:
                _register(con, source, name, f"src.{quote(stem)}", mapping)
        else:
            found = _find_in_folder(location, stem)
            if found is not None:
                source.files.extend(sorted(found.glob("*.parquet")) if found.is_dir() else [found])
                _register(con, source, name, _scan_folder_file(found), mapping)
    return source


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
