"""The core of a source: the :class:`Source` object, SQL quoting and the DuckDB connection."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from satmodel.config import Config
from satmodel.errors import InputError

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
    "TIMESTAMPTZ",
    "TIMESTAMPTZ_NS",
    "TIMESTAMP_NS WITH TIME ZONE",
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


def base_type(sql_type: str) -> str:
    upper = sql_type.upper()
    if upper.startswith("DECIMAL"):
        return "DOUBLE"
    return upper


def compatible(kind: str, sql_type: str) -> bool:
    base = base_type(sql_type)
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
    columns_read : the user's own columns of each table and their DuckDB types.
    notes : what opening noticed that is not a fault (Parquet files read without their
        footer statistics); validation reports them.
    quarantined, report : set by :func:`satmodel.validation.quarantine`.
    files : the files read, for fingerprints.
    remote : PostgreSQL tables read (``url#schema.table`` -> rows copied), for fingerprints.
    ibis_backend : the ibis backend of :meth:`ibis`.
    """

    con: duckdb.DuckDBPyConnection
    location: Path | str
    kind: str
    tables: list[str]
    config: Config
    type_problems: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    missing_columns: dict[str, list[str]] = field(default_factory=dict)
    columns_read: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    quarantined: bool = False
    report: object | None = None
    remote: dict[str, int] = field(default_factory=dict)
    ibis_backend: object | None = field(default=None, repr=False)

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
        """The ibis backend over this source's connection (made once, before the lock)."""
        import ibis

        if self.ibis_backend is None:
            self.ibis_backend = ibis.duckdb.from_connection(self.con)
        return self.ibis_backend

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

    def write_parquet(self, table: str, path: str | Path) -> Path:
        """Write a table or view of the connection to a Parquet file, one batch at a time.

        The connection itself may not write files once the source is open
        (:mod:`satmodel.sources.guard`); the batches are written from Python instead.
        """
        import pyarrow.parquet as pq

        batches = self.con.sql(f"SELECT * FROM {quote(table)}").to_arrow_reader()
        with pq.ParquetWriter(path, batches.schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
        return Path(path)

    def close(self) -> None:
        self.con.close()


def apply_duckdb_settings(con, settings: Mapping[str, Any] | None) -> None:
    """Apply DuckDB settings (``memory_limit``, ``temp_directory``, ``threads``...) to ``con``.

    Raises
    ------
    InputError
        When DuckDB rejects a setting.
    """
    if settings and con.execute("SELECT current_setting('lock_configuration')").fetchall()[0][0]:
        raise InputError(
            f"duckdb settings {', '.join(settings)}: the source's connection is locked once it "
            "is open; give them in [duckdb] of satmodel.toml instead"
        )
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


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC with the ``raw`` schema for the canonical views."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    # a runaway query stops with an error instead of filling the disk with spill files
    # (DuckDB's default allows 90 % of the free space); [duckdb] settings may raise it
    con.execute("SET max_temp_directory_size = '8GiB'")
    con.execute("CREATE SCHEMA raw")
    return con


def path_literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def first_error_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0]
