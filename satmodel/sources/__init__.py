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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from satmodel.config import CONFIG_FILE_NAME, Config, TableMapping, is_url, load_config
from satmodel.errors import InputError
from satmodel.redaction import redact
from satmodel.schema import TABLES
from satmodel.sources.core import (
    NUMERIC_TYPES,
    TEXT_PARSED_KINDS,
    TEXT_PREFIX,
    TIME_TYPES,
    Source,
    apply_duckdb_settings,
    connect,
    literal,
    path_literal,
    quote,
)
from satmodel.sources.guard import confine, is_within, lock_down
from satmodel.sources.mapping import (
    check_names,
    derived_sql,
    referenced_columns,
    register_view,
)
from satmodel.sources.statistics import footer_mismatches, guarded_scan

__all__ = [
    "NUMERIC_TYPES",
    "TEXT_PARSED_KINDS",
    "TEXT_PREFIX",
    "TIME_TYPES",
    "Source",
    "apply_duckdb_settings",
    "derived_sql",
    "is_within",
    "literal",
    "open_source",
    "quote",
    "read_table_file",
    "referenced_columns",
]


def _scan_folder_file(path: Path) -> str:
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path.stem}: file {path} is empty (not even a header row)")
    path = path.absolute()
    if path.is_dir():
        return f"read_parquet({path_literal(path / '*.parquet')})"
    if path.suffix == ".parquet":
        return f"read_parquet({path_literal(path)})"
    return f"read_csv({path_literal(path)}, header = true, auto_detect = true)"


def _find_in_folder(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.parquet", folder / f"{stem}.csv", folder / stem):
        if candidate.is_file() or (candidate.is_dir() and any(candidate.glob("*.parquet"))):
            return candidate
    return None


@dataclass
class _Reading:
    """What one opening may read (``roots``) and has read (``folders`` scanned by a glob, the
    Parquet files whose footer was ``checked``: the columns it misdescribes)."""

    roots: list[Path] | None
    folders: list[Path] = field(default_factory=list)
    checked: dict[Path, list[str]] = field(default_factory=dict)


def _scan(source: Source, reading: _Reading, path: Path, setting: str) -> str:
    """The FROM clause of a table file or Parquet folder, once every file in it is confined.

    A Parquet file whose footer statistics do not match its values is read without them
    (:mod:`satmodel.sources.statistics`), with a note in ``source.notes``.
    """
    confine(path, reading.roots, setting)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    for file in files:
        confine(file, reading.roots, f"{setting}: file {file.name}")
    if path.is_dir():
        reading.folders.append(path)
    source.files.extend(f for f in files if f not in source.files)
    from_clause = _scan_folder_file(path)
    misdescribed = False
    for file in files:
        if file.suffix != ".parquet":
            continue
        if file not in reading.checked:
            reading.checked[file] = footer_mismatches(source.con, file)
            if reading.checked[file]:
                source.notes.append(
                    f"{file.name}: footer statistics do not match the values "
                    f"({', '.join(reading.checked[file])}); read without them"
                )
        misdescribed = misdescribed or bool(reading.checked[file])
    return guarded_scan(source.con, from_clause) if misdescribed else from_clause


def _register_postgres(
    con, source: Source, name: str, url: str, mapping: TableMapping, readers: dict
) -> None:
    """Copy one PostgreSQL table into DuckDB (``pg.<name>``) and register its mapping."""
    from satmodel.postgres import PostgresReader

    if url not in readers:
        readers[url] = PostgresReader.connect(url, source.config.password_env)
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
    check_names(source, name, mapping, available, f"{redact(url)} table {schema}.{table}")
    con.execute("CREATE SCHEMA IF NOT EXISTS pg")
    target = f"pg.{quote(name)}"
    rows = reader.load(con, schema, table, target, referenced_columns(TABLES[name], mapping))
    source.remote[f"{redact(url)}#{schema}.{table}"] = rows
    register_view(con, source, name, target, mapping, f"{redact(url)} table {schema}.{table}")


def open_source(
    src: str | Path | None = None,
    config: Config | None = None,
    *,
    allowed_roots: Sequence[Path] | None = None,
    duckdb_settings: Mapping[str, Any] | None = None,
) -> Source:
    """Open a data source as canonical tables.

    Parameters
    ----------
    src : a DuckDB file, a folder of ``<table>.parquet``/``<table>.csv`` files, a
        ``postgresql://`` URL, or a ``satmodel.toml`` config file naming one (or one CSV/Parquet
        file that its mappings cut tables from). ``None`` uses the config's source (default
        ``data/satmodel.duckdb``).
    config : configuration; read from ``src`` when it is a ``.toml`` file, else defaults.
    allowed_roots : when given, every path the source, its config or its folder names (table
        files, files inside a folder followed through symbolic links, ``[duckdb]
        temp_directory``) must lie inside one of these folders.
    duckdb_settings : DuckDB settings (``memory_limit``, ``temp_directory``, ``threads``...)
        applied over the config's ``[duckdb]`` ones.

    The connection can read only the source's own files afterwards (see
    :mod:`satmodel.sources.guard`): DuckDB settings must be given before, in ``[duckdb]``.

    Returns
    -------
    Source

    Raises
    ------
    InputError
        When the source does not exist, cannot be read, or names a path outside
        ``allowed_roots``.

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
    reading = _Reading(roots=None if allowed_roots is None else [Path(r) for r in allowed_roots])
    if duckdb_settings:
        config = replace(config, duckdb={**config.duckdb, **duckdb_settings})
    if "temp_directory" in config.duckdb:
        confine(config.duckdb["temp_directory"], reading.roots, "duckdb.temp_directory")
    if url is not None:
        return _open_postgres(url, config, reading)
    location = Path(src) if src is not None else config.source
    if not location.exists():
        hint = " (run `satmodel demo` to create the demo data)" if location == config.source else ""
        raise InputError(f"source {location}: not found{hint}")
    confine(location, reading.roots, "source" if src is not None else "source.path")
    con = connect()
    if location.is_dir():
        kind = "folder"
    elif location.suffix.lower() in (".csv", ".parquet", ".tsv", ".txt"):
        kind = "file"
    else:
        kind = "duckdb"
    source = Source(con=con, location=location, kind=kind, tables=[], config=config)
    readers: dict = {}
    try:
        apply_duckdb_settings(con, config.duckdb)
        _open_tables(con, source, location, kind, readers, reading)
        lock_down(source, source.files, reading.folders)
    except BaseException:
        con.close()
        raise
    finally:
        for reader in readers.values():
            reader.close()
    return source


def _open_postgres(url: str, config: Config, reading: _Reading) -> Source:
    con = connect()
    source = Source(con=con, location=redact(url), kind="postgres", tables=[], config=config)
    readers: dict = {}
    try:
        apply_duckdb_settings(con, config.duckdb)
        for name in TABLES:
            mapping = config.tables.get(name, TableMapping())
            if mapping.file is not None:
                _register_file(con, source, name, mapping.file, mapping, reading)
            else:
                _register_postgres(con, source, name, mapping.url or url, mapping, readers)
        lock_down(source, source.files, reading.folders)
    except BaseException:
        con.close()
        raise
    finally:
        for reader in readers.values():
            reader.close()
    return source


def _register_file(
    con, source: Source, name: str, path: Path, mapping: TableMapping, reading: _Reading
) -> None:
    if not path.exists():
        raise InputError(f"{name}: file {path} not found")
    from_clause = _scan(source, reading, path, f"tables.{name}.file")
    register_view(con, source, name, from_clause, mapping, path.name)


def _open_tables(
    con, source: Source, location: Path, kind: str, readers: dict, reading: _Reading
) -> None:
    config = source.config
    if kind == "file" and not config.tables:
        raise InputError(
            f"source {location}: one file can hold canonical tables only through a "
            f"{CONFIG_FILE_NAME} that maps them, e.g. [tables.surveys] columns = "
            '{ response_id = "review_id", csat = "score" }'
        )
    if kind == "duckdb":
        try:
            con.execute(f"ATTACH {path_literal(location)} AS src (READ_ONLY)")
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
            _register_file(con, source, name, mapping.file, mapping, reading)
        elif mapping.url is not None:
            _register_postgres(con, source, name, mapping.url, mapping, readers)
        elif kind == "file":
            if name in config.tables:
                from_clause = _scan(source, reading, location, "source")
                register_view(con, source, name, from_clause, mapping, location.name)
        elif kind == "duckdb":
            if stem in present:
                register_view(con, source, name, f"src.{quote(stem)}", mapping, stem)
        else:
            found = _find_in_folder(location, stem)
            if found is not None:
                setting = f"tables.{name}.table" if mapping.table else f"source: table {name}"
                from_clause = _scan(source, reading, found, setting)
                register_view(con, source, name, from_clause, mapping, found.name)


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
