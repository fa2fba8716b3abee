"""Read PostgreSQL tables into DuckDB, in batches, through psycopg (no DuckDB extension).

DuckDB's own ``postgres`` extension is downloaded from the internet on first use; this module
needs only the ``psycopg`` driver (``pip install 'satmodel[postgres]'``). A table is read with a
server-side cursor, converted to Arrow one batch at a time and appended to an in-memory DuckDB
table, so a large table never sits in Python as one list. Only the columns a mapping uses are
read. Every identifier is quoted by psycopg; nothing from the config becomes SQL text.
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass

from satmodel.errors import InputError
from satmodel.redaction import REDACTED, redact

BATCH_ROWS = 50_000

# PostgreSQL type (information_schema data_type) -> (cast in the query, Arrow type name).
_INTEGER = ("bigint", "int64")
_FLOAT = ("double precision", "float64")
_TYPES = {
    "smallint": _INTEGER,
    "integer": _INTEGER,
    "bigint": _INTEGER,
    "real": _FLOAT,
    "double precision": _FLOAT,
    "numeric": _FLOAT,
    "boolean": ("boolean", "bool"),
    "date": ("date", "date32"),
    "timestamp without time zone": ("timestamp", "timestamp"),
    "timestamp with time zone": ("timestamptz", "timestamptz"),
}
_TEXT = ("text", "string")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class PostgresReader:
    """One open connection to a PostgreSQL database.

    Attributes
    ----------
    url : the URL as given (may hold a password; never shown).
    conn : the psycopg connection.
    """

    url: str
    conn: object

    @property
    def label(self) -> str:
        """The URL without password."""
        return redact(self.url)

    @classmethod
    def connect(cls, url: str, password_env: str | None = None) -> PostgresReader:
        """Connect to ``url``.

        The password comes from, in this order: the environment variable ``password_env``
        (``[source] password_env`` in satmodel.toml), the URL itself, then libpq's own
        ``PGPASSWORD``, ``PGPASSFILE`` / ``~/.pgpass`` and service files, which psycopg reads
        whenever the URL holds no password. Messages show the URL through :func:`redact`.

        Raises
        ------
        InputError
            When psycopg is not installed, ``password_env`` is not set or the server cannot be
            reached.
        """
        try:
            import psycopg
        except ImportError:
            raise InputError(
                f"source {redact(url)}: reading PostgreSQL needs the psycopg driver "
                "(pip install 'satmodel[postgres]' or 'psycopg[binary]>=3.1')"
            ) from None
        options = {}
        if password_env is not None:
            if not os.environ.get(password_env):
                raise InputError(
                    f"config: source.password_env: environment variable {password_env} is not set "
                    f"(it should hold the password for {redact(url)})"
                )
            options["password"] = os.environ[password_env]
        try:
            conn = psycopg.connect(url, connect_timeout=10, autocommit=False, **options)
        except psycopg.Error as exc:
            reason = redact(_first_line(exc))
            if options:
                reason = reason.replace(options["password"], REDACTED)
            raise InputError(f"source {redact(url)}: cannot connect ({reason})") from None
        conn.read_only = True
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
        conn.commit()  # keep the session setting
        return cls(url=url, conn=conn)

    def tables(self) -> dict[str, tuple[str, str]]:
        """Tables and views on the search path: name -> (schema, name); also ``schema.name``."""
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
                "ORDER BY (table_schema = ANY (current_schemas(false))) DESC, table_schema"
            )
            rows = cur.fetchall()
            cur.execute("SELECT current_schemas(false)")
            search_path = cur.fetchone()[0]
        found: dict[str, tuple[str, str]] = {}
        for schema, name in rows:
            found.setdefault(f"{schema}.{name}", (schema, name))
            if schema in search_path:
                found.setdefault(name, (schema, name))
        return found

    def columns(self, schema: str, name: str) -> dict[str, str]:
        """Column name -> PostgreSQL data type, in table order."""
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (schema, name),
            )
            return dict(cur.fetchall())

    def load(
        self,
        con,
        schema: str,
        name: str,
        target: str,
        columns: list[str] | None = None,
        batch_rows: int = BATCH_ROWS,
    ) -> int:
        """Copy a table (or some of its columns) into the DuckDB table ``target``.

        Parameters
        ----------
        con : DuckDB connection.
        schema, name : the PostgreSQL table.
        target : the DuckDB table to create (already quoted, e.g. ``pg."surveys"``).
        columns : the columns to read (default all); names not in the table are ignored.
        batch_rows : rows fetched and appended per batch.

        Returns
        -------
        int
            Rows copied.
        """
        import pyarrow as pa
        from psycopg import sql

        available = self.columns(schema, name)
        wanted = [c for c in (columns or list(available)) if c in available] or list(available)
        kinds = [_TYPES.get(available[c], _TEXT) for c in wanted]
        arrow_types = {
            "int64": pa.int64(),
            "float64": pa.float64(),
            "bool": pa.bool_(),
            "date32": pa.date32(),
            "timestamp": pa.timestamp("us"),
            "timestamptz": pa.timestamp("us", tz="UTC"),
            "string": pa.string(),
        }
        schema_arrow = pa.schema(
            [pa.field(c, arrow_types[k[1]]) for c, k in zip(wanted, kinds, strict=True)]
        )
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(
                sql.SQL("CAST({} AS {}) AS {}").format(
                    sql.Identifier(c), sql.SQL(k[0]), sql.Identifier(c)
                )
                for c, k in zip(wanted, kinds, strict=True)
            ),
            sql.Identifier(schema, name),
        )
        empty = schema_arrow.empty_table()
        con.register("_satmodel_pg_batch", empty)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM _satmodel_pg_batch")
        finally:
            con.unregister("_satmodel_pg_batch")
        rows = 0
        try:
            with self.conn.cursor(name=f"satmodel_{name[:40]}") as cur:
                cur.itersize = batch_rows
                cur.execute(query)
                while True:
                    chunk = cur.fetchmany(batch_rows)
                    if not chunk:
                        break
                    batch = pa.Table.from_arrays(
                        [
                            pa.array([row[i] for row in chunk], type=field.type)
                            for i, field in enumerate(schema_arrow)
                        ],
                        schema=schema_arrow,
                    )
                    con.register("_satmodel_pg_batch", batch)
                    try:
                        con.execute(f"INSERT INTO {target} SELECT * FROM _satmodel_pg_batch")
                    finally:
                        con.unregister("_satmodel_pg_batch")
                    rows += len(chunk)
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise InputError(
                    f"{target}: cannot read {schema}.{name} from {self.label} ({_first_line(exc)})"
                ) from None
            raise
        finally:
            with suppress(Exception):
                self.conn.rollback()
        return rows

    def close(self) -> None:
        """Close the connection."""
        with suppress(Exception):
            self.conn.close()
