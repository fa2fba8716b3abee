"""Canonical tables as the demo writes them: Arrow schemas and column builders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from satmodel.errors import InputError
from satmodel.schema import TABLES

SEGMENTS = ("enterprise", "mid_market", "smb")
"""Customer segments, in the order patsy sorts them (enterprise is the reference level)."""

TABLE_NAMES = tuple(TABLES)
"""Canonical tables written by the demo, in canonical order."""

_ARROW_TYPES = {
    "str": pa.string(),
    "month": pa.string(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a canonical table as the demo writes it.

    Parameters
    ----------
    table : str
        A canonical table name (see :data:`satmodel.schema.TABLES`).

    Returns
    -------
    pyarrow.Schema
        Canonical column names and types: strings, ``float64``, ``int64``, ``bool`` and
        ``timestamp('us', tz='UTC')``.
    """
    if table not in TABLES:
        raise InputError(f"table: unknown canonical table {table!r}")
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.kind]) for c in TABLES[table].columns])


def make_ids(prefix: str, n: int, width: int) -> np.ndarray:
    """``prefix`` + zero-padded 1..n, as a numpy string array."""
    if n == 0:
        return np.array([], dtype=str)
    numbers = np.char.zfill(np.arange(1, n + 1).astype(str), width)
    return np.char.add(prefix, numbers)


def pick_category(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category per row of ``probs`` (rows of probabilities), vectorised."""
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    u = rng.random(len(probs))
    return np.minimum((u[:, None] > cum).sum(axis=1), probs.shape[1] - 1)


def string_array(values: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    """An Arrow string column, null where ``null_mask`` is true."""
    return pa.array(values.astype(object), type=pa.string(), mask=null_mask)


def timestamp_array(us: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    """An Arrow UTC timestamp column from microseconds since the epoch."""
    return pa.array(us.astype(np.int64), type=pa.int64(), mask=null_mask).cast(
        pa.timestamp("us", tz="UTC")
    )


def customer_column(ids: np.ndarray, index: np.ndarray) -> pa.Array:
    """A string column of customer ids from integer indices (fast for millions of rows)."""
    dictionary = pa.array(ids.astype(object), type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), dictionary).cast(
        pa.string()
    )


def canonical_table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    """The canonical table ``name`` from its columns, in canonical order and types.

    A nullable column the demo does not make (e.g. ``customers.name``) is all null.
    """
    schema = arrow_schema(name)
    rows = len(next(iter(columns.values()))) if columns else 0
    nullable = {c.name for c in TABLES[name].columns if c.nullable}
    arrays = [
        columns[f.name] if f.name in columns or f.name not in nullable else pa.nulls(rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def frame_to_table(name: str, frame: pd.DataFrame) -> pa.Table:
    """A pandas frame with (at least) the columns of canonical table ``name``, as Arrow."""
    schema = arrow_schema(name)
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    return table.replace_schema_metadata(None)
