"""Writing the demo: Parquet files and the DuckDB file it loads (and marks as its own)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from satmodel.demo.tables import TABLE_NAMES
from satmodel.errors import InputError
from satmodel.schema import TABLES

MARKER_TABLE = "satmodel_demo"
"""The table that marks a DuckDB file as made by the demo (one row: its generation settings)."""

_MARKER_COLUMNS = ("seed", "customers", "months", "start_month", "end_month")


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write Parquet with fixed settings and no varying metadata (byte-identical reruns)."""
    table = table.replace_schema_metadata(None)
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=3,
        row_group_size=1_048_576,
        use_dictionary=True,
        write_statistics=True,
        version="2.6",
        data_page_version="1.0",
    )


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _attach_old(con, target: Path) -> None:
    """Attach an existing ``target`` read-only as ``old`` (InputError when unreadable)."""
    import duckdb

    try:
        con.execute(f"ATTACH {_literal(target)} AS old (READ_ONLY)")
    except duckdb.Error as exc:
        raise InputError(
            f"duckdb_path {target}: cannot read the existing file "
            f"({str(exc).splitlines()[0]}); delete it or choose another path"
        ) from exc


def _check_marked(con, target: Path, force: bool) -> None:
    """Refuse an attached ``old`` database the demo did not make, unless ``force``."""
    marked = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = 'old' AND schema_name = 'main' AND table_name = ?",
        [MARKER_TABLE],
    ).fetchone()[0]
    if not marked and not force:
        raise InputError(
            f"duckdb_path {target}: exists and was not made by the demo, whose canonical "
            "tables would replace its own; choose another path or use --force (force=True)"
        )


def check_duckdb_target(target: str | os.PathLike, force: bool = False) -> Path:
    """Check that the demo may load into ``target``; returns it resolved.

    The demo writes into a new file or one it made itself (marked by :data:`MARKER_TABLE`);
    any other existing DuckDB file only with ``force``.

    Raises
    ------
    InputError
        When ``target`` has a pending write-ahead log, is unreadable, or exists without the
        demo's mark and ``force`` is false.
    """
    import duckdb

    target = Path(target).resolve()
    wal = target.with_name(target.name + ".wal")
    if wal.exists():
        raise InputError(
            f"duckdb_path {target}: has a pending write-ahead log {wal.name} "
            "(is another process using it?)"
        )
    if target.exists():
        con = duckdb.connect()
        try:
            _attach_old(con, target)
            _check_marked(con, target, force)
        finally:
            con.close()
    return target


def load_duckdb(
    paths: dict[str, Path], target: Path, truth: dict[str, Any], force: bool = False
) -> None:
    """Load every table into ``target`` via a temporary file and an atomic rename.

    Canonical tables are replaced; other tables of an existing file are kept, except
    ``rejected`` (quarantined rows of the old data). The file is marked as the demo's with a
    :data:`MARKER_TABLE` holding the generation settings of ``truth``. An existing file the
    demo did not make is refused unless ``force`` (see :func:`check_duckdb_target`).
    """
    import duckdb

    target = check_duckdb_target(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        con = duckdb.connect(str(tmp))
        try:
            for name in (name for name in TABLE_NAMES if name in paths):
                con.execute(
                    f'CREATE TABLE "{name}" AS SELECT * FROM read_parquet({_literal(paths[name])})'
                )
            columns = ", ".join(f"? AS {column}" for column in _MARKER_COLUMNS)
            con.execute(
                f"CREATE TABLE {MARKER_TABLE} AS SELECT {columns}",
                [truth[column] for column in _MARKER_COLUMNS],
            )
            if target.exists():
                _attach_old(con, target)
                keep = con.execute(
                    "SELECT schema_name, table_name FROM duckdb_tables() "
                    "WHERE database_name = 'old' ORDER BY schema_name, table_name"
                ).fetchall()
                replaced = {*TABLES, "rejected", MARKER_TABLE}
                for schema, name in keep:
                    if schema != "main" or name in replaced:
                        continue
                    quoted = '"' + name.replace('"', '""') + '"'
                    con.execute(f"CREATE TABLE {quoted} AS SELECT * FROM old.main.{quoted}")
                con.execute("DETACH old")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
