"""Running the feature expressions: clean views, DuckDB passes, results.

The Spark session comes from the source layer (:func:`satmodel.sources.spark.spark_session`).

Scale: exact quantiles hold every value of a group in memory and DuckDB cannot spill them to
disk, so when the raw ``requests`` row count says the aggregation would not fit in half of
DuckDB's ``memory_limit`` (about 32 bytes a row), it runs in several passes over contiguous
month ranges (and customer hash buckets when needed) into a temporary table; time-ordered
Parquet row groups outside a pass's months are skipped.
"""

from __future__ import annotations

import contextlib
import math
import re
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pandas as pd

from satmodel.errors import InputError
from satmodel.features.expressions import month_key, prepare_duckdb, request_metrics
from satmodel.features.months import month_of, months_frame, time_columns

# Peak bytes DuckDB needs per request row in the grouped exact-quantile aggregation (the
# quantile state keeps every value and cannot spill to disk); measured about 22 bytes.
BYTES_PER_REQUEST = 32
# Share of DuckDB's memory_limit one request-aggregation pass may use.
MEMORY_SHARE = 0.5
PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3


def ensure_clean(source) -> None:
    """Make sure the clean views exist (quarantine bad rows first)."""
    if not source.quarantined:
        from satmodel.validation import quarantine

        quarantine(source)


def require_table(source, table: str, why: str | None = None) -> None:
    """Quarantine when needed and check that ``source`` holds ``table``.

    Raises
    ------
    InputError
        When the table is missing (``why`` says what needs it).
    """
    ensure_clean(source)
    if table not in source.tables:
        reason = f" ({why})" if why else ""
        raise InputError(f"{table}: table not found in {source.location}{reason}")


_SIZE = re.compile(r"^\s*([0-9.]+)\s*([KMGTP]?)(I?B)?\s*$", re.IGNORECASE)


def parse_bytes(text: str) -> float | None:
    """Bytes of a DuckDB size setting (``2.0 GiB``, ``2GB``); None when not a size."""
    match = _SIZE.match(str(text))
    if not match:
        return None
    number, prefix, unit = match.groups()
    base = 1024 if (unit or "").upper() == "IB" else 1000
    power = " KMGTP".index(prefix.upper() or " ") if prefix else 0
    return float(number) * base**power


def request_passes(con, rows: int) -> int:
    """How many passes the exact-quantile aggregation of ``rows`` requests needs in DuckDB."""
    limit_text = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    limit = parse_bytes(limit_text)
    if not limit or rows <= 0:
        return 1
    return max(1, math.ceil(rows * BYTES_PER_REQUEST / (limit * MEMORY_SHARE)))


def request_plan(source, timezone: str = "UTC") -> tuple[int, pd.DataFrame | None]:
    """Passes the DuckDB request aggregation needs, and the months to split them by.

    Sized from the raw table's row count and time range (metadata reads for Parquet and
    DuckDB tables): an upper bound of the clean rows, used for planning only. The months
    are those of ``timezone``, the zone of the panel's months (so no pass splits one).
    """
    if "requests" not in source.tables:
        return 1, None
    rows, first, last = source.con.execute(
        "SELECT count(*), min(ts), max(ts) FROM raw.requests"
    ).fetchall()[0]
    passes = request_passes(source.con, int(rows or 0))
    if passes <= 1 or first is None:
        return 1, None
    first, last = month_of(first, timezone), month_of(last, timezone)
    return passes, months_frame(first, last, timezone)


class Materialized:
    """Small intermediate results kept in the engine (DuckDB temp table or cached Spark frame).

    DuckDB DDL goes through the connection itself: ibis 12's DDL helpers call DuckDB APIs that
    DuckDB 2.0 removed.
    """

    def __init__(self, backend):
        self.backend = backend
        self.duckdb = backend.name == "duckdb"
        self.names: list[str] = []
        self.cached: list[Any] = []

    def table(self, exprs: list[Any]):
        """Materialize the union of ``exprs`` (run one after the other) and return it."""
        if not self.duckdb:
            import ibis

            cached = (exprs[0] if len(exprs) == 1 else ibis.union(*exprs)).cache()
            self.cached.append(cached)
            return cached
        name = f"_satmodel_{uuid.uuid4().hex[:12]}"
        con = self.backend.con
        for i, expr in enumerate(exprs):
            sql = str(self.backend.compile(expr))
            if i == 0:
                con.execute(f'CREATE TEMP TABLE "{name}" AS {sql}')
            else:
                con.execute(f'INSERT INTO "{name}" {sql}')
        self.names.append(name)
        return self.backend.table(name)

    def release(self) -> None:
        """Drop every materialized result."""
        for cached in self.cached:
            cached.release()
        for name in self.names:
            self.backend.con.execute(f'DROP TABLE IF EXISTS "{name}"')
        self.cached, self.names = [], []


def request_pieces(
    requests, months: pd.DataFrame | None, passes: int, thresholds, timezone: str = "UTC"
):
    """The request metrics as ``passes`` pieces (contiguous months x customer hash), with
    months in ``timezone`` (:func:`request_metrics`).

    Exact quantiles keep every value of a group in memory and DuckDB cannot spill them; one
    piece at a time keeps the peak under the memory limit. Row groups of time-ordered Parquet
    outside a piece's months are skipped.
    """
    import ibis

    if passes <= 1 or months is None:
        return [request_metrics(requests, thresholds, timezone)]
    n_months = len(months)
    month_groups = min(passes, n_months)
    buckets = math.ceil(passes / month_groups)
    edges = [round(i * n_months / month_groups) for i in range(month_groups + 1)]
    pieces = []
    for g in range(month_groups):
        lo = pd.Timestamp(int(months["m_start"].iloc[edges[g]]), unit="s", tz="UTC")
        hi = pd.Timestamp(int(months["m_end"].iloc[edges[g + 1] - 1]), unit="s", tz="UTC")
        conditions = []
        if g > 0:
            conditions.append(requests.ts >= ibis.literal(lo, "timestamp('UTC')"))
        if g < month_groups - 1:
            conditions.append(requests.ts < ibis.literal(hi, "timestamp('UTC')"))
        for b in range(buckets):
            piece = requests.filter(*conditions) if conditions else requests
            if buckets > 1:
                bucket = (piece.customer_id.hash() % buckets + buckets) % buckets  # hash < 0 too
                piece = piece.filter(bucket == b)
            pieces.append(request_metrics(piece, thresholds, timezone))
    return pieces


def month_range(
    tables: Mapping[str, Any],
    requests_agg=None,
    columns: Callable[[str], list[str]] = time_columns,
    timezone: str = "UTC",
) -> tuple[str, str] | None:
    """First and last month over the time columns of the tables present (one query).

    Parameters
    ----------
    tables : canonical table name -> ibis table.
    requests_agg : :func:`request_metrics` of ``requests``; when given, ``requests``
        contributes through this (small) aggregate, so the large table is scanned once.
    columns : table name -> the time columns that count (default: every one).
    timezone : the zone whose months a timestamp falls in (:func:`month_key`).

    Returns
    -------
    tuple of str or None
        ``(first, last)`` as ``YYYY-MM``; None when no row is dated.
    """
    import ibis

    parts = []
    for name, table in tables.items():
        if name == "customers":
            continue
        if name == "requests" and requests_agg is not None:
            table, months = requests_agg, [requests_agg.month]
        else:
            months = [table[c] for c in columns(name)]
        for month in months:
            if month.type().is_timestamp():
                lo, hi = month_key(month.min(), timezone), month_key(month.max(), timezone)
            else:
                lo, hi = month.min(), month.max()
            parts.append(table.aggregate(lo=lo.cast("string"), hi=hi.cast("string")))
    if not parts:
        return None
    both = ibis.union(*parts) if len(parts) > 1 else parts[0]
    row = both.aggregate(lo=both.lo.min(), hi=both.hi.max()).to_pyarrow().to_pylist()[0]
    if row["lo"] is None:
        return None
    for month in (row["lo"], row["hi"]):
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
            raise InputError(f"usage.month: not a YYYY-MM month (e.g. {month!r})")
    return row["lo"], row["hi"]


def duckdb_tables(source) -> tuple[Any, dict[str, Any]]:
    """An ibis DuckDB backend over the source (macros defined) and its clean tables.

    Returns
    -------
    tuple
        (backend, canonical table name -> ibis table).
    """
    prepare_duckdb(source.con)
    backend = source.ibis()
    return backend, {name: backend.table(name) for name in source.tables}


def to_pandas(expr) -> pd.DataFrame:
    """Execute an ibis expression into pandas (through Arrow)."""
    return expr.to_pyarrow().to_pandas()


def as_str(values: pd.Series) -> pd.Series:
    """Strings in pandas' default string dtype, missing values kept missing."""
    if PANDAS_3:
        return values.astype("str")
    return values.astype(object).where(values.notna(), None)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence known, harmless warnings of the pinned libraries, and only those.

    ibis 12 calls DuckDB 2.0's deprecated ``fetch_arrow_table``; pyspark 4.0 warns on every
    pandas conversion that pandas >= 3 is not fully supported.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"fetch_arrow_table\(\) is deprecated", category=DeprecationWarning
        )
        warnings.filterwarnings("ignore", message=r"(?s).*[Pp]andas.*", module=r"pyspark(\..*)?")
        warnings.filterwarnings("ignore", message=r"(?s).*future\.infer_string.*")
        yield


def memtable(frame: pd.DataFrame):
    """A small pandas frame as an ibis in-memory table (through Arrow, no index)."""
    import ibis
    import pyarrow as pa

    return ibis.memtable(pa.Table.from_pandas(frame, preserve_index=False))
