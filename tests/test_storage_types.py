"""Every storage type real exports use gives the same panel (docs/contract.md, "Storage types")."""

import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import GOOD_TABLES, write_tables

from satmodel import build_panel, open_source

WORLD = {
    **GOOD_TABLES,
    "incidents": """incident_id,customer_id,start_ts,end_ts,severity
i1,c1,2025-01-03T10:00:00Z,2025-01-03T11:30:00Z,2
i2,c2,2025-02-05T10:00:00Z,2025-02-05T10:20:00Z,1
""",
}
TIME_COLUMNS = {"requests": ["ts"], "surveys": ["ts"], "incidents": ["start_ts", "end_ts"]}


def _frames(base: Path) -> dict[str, pd.DataFrame]:
    frames = {name: pd.read_csv(base / f"{name}.csv") for name in WORLD}
    for name, columns in TIME_COLUMNS.items():
        for column in columns:
            frames[name][column] = pd.to_datetime(frames[name][column], utc=True)
    return frames


def _duckdb_world(tmp_path: Path, base: Path, sql_type: str) -> Path:
    db = tmp_path / f"{sql_type.lower()}.duckdb"
    con = duckdb.connect(str(db))
    con.execute("SET TimeZone = 'UTC'")
    for name in WORLD:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{base}/{name}.csv')")
        for column in TIME_COLUMNS.get(name, []):
            cast = f"CAST(CAST({column} AS TIMESTAMP) AS {sql_type})"
            con.execute(f"ALTER TABLE {name} ALTER {column} TYPE {sql_type} USING {cast}")
    con.close()
    return db


def _parquet_world(tmp_path: Path, frames, label: str, change) -> Path:
    folder = tmp_path / label
    folder.mkdir()
    for name, frame in frames.items():
        table = change(name, frame.copy())
        if isinstance(table, pd.DataFrame):
            table.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            pq.write_table(table, folder / f"{name}.parquet")
    return folder


def _epoch_world(tmp_path: Path, frames, unit: str) -> Path:
    scale = {"epoch_s": 10**9, "epoch_ms": 10**6}[unit]

    def change(name, frame):
        for column in TIME_COLUMNS.get(name, []):
            frame[column] = frame[column].dt.as_unit("ns").astype("int64") // scale
        return frame

    folder = _parquet_world(tmp_path, frames, unit, change)
    lines = [f'[source]\npath = "{folder}"']
    for name, columns in TIME_COLUMNS.items():
        units = ", ".join(f'{c} = "{unit}"' for c in columns)
        lines.append(f"[tables.{name}]\nunits = {{ {units} }}")
    config = folder / "satmodel.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def _iso_offsets(name, frame):
    for column in TIME_COLUMNS.get(name, []):
        frame[column] = (
            frame[column].dt.tz_convert("Asia/Kolkata").map(lambda t: t.isoformat()).astype(str)
        )
    return frame


def _decimal_flags_and_categories(name, frame):
    if name == "requests":
        frame["ok"] = frame["ok"].astype(int)  # 0/1 flags
        table = pa.Table.from_pandas(frame, preserve_index=False)
        latency = pa.array(frame["latency_ms"].map(str).map(__import__("decimal").Decimal))
        return table.set_column(2, "latency_ms", latency.cast(pa.decimal128(12, 3)))
    if name == "customers":
        frame["segment"] = frame["segment"].astype("category")
        frame["tier"] = frame["tier"].astype("category")
    if name == "surveys":
        table = pa.Table.from_pandas(frame, preserve_index=False)
        return table.set_column(
            1, "customer_id", pa.array(frame["customer_id"]).dictionary_encode()
        )
    return frame


def _integer_ids(name, frame):
    frame["customer_id"] = frame["customer_id"].str[1:].astype("int64")
    return frame


def _panel(src) -> pd.DataFrame:
    panel = build_panel(open_source(src))
    return panel.sort_values(["customer_id", "month"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("storage")
    base = write_tables(tmp_path / "csv", WORLD)
    return tmp_path, base, _frames(base), _panel(base)


STORAGES = {
    "pandas_parquet_ns_utc": lambda t, b, f: _parquet_world(t, f, "pandas", lambda n, x: x),
    "duckdb_timestamptz_ns": lambda t, b, f: _duckdb_world(t, b, "TIMESTAMPTZ_NS"),
    "duckdb_timestamp_ns": lambda t, b, f: _duckdb_world(t, b, "TIMESTAMP_NS"),
    "duckdb_timestamp_ms": lambda t, b, f: _duckdb_world(t, b, "TIMESTAMP_MS"),
    "duckdb_timestamp_s": lambda t, b, f: _duckdb_world(t, b, "TIMESTAMP_S"),
    "epoch_s": lambda t, b, f: _epoch_world(t, f, "epoch_s"),
    "epoch_ms": lambda t, b, f: _epoch_world(t, f, "epoch_ms"),
    "iso_with_offsets": lambda t, b, f: _parquet_world(t, f, "iso", _iso_offsets),
    "decimal_flags_categories": lambda t, b, f: _parquet_world(
        t, f, "typed", _decimal_flags_and_categories
    ),
}


@pytest.mark.parametrize("storage", list(STORAGES))
def test_every_storage_type_gives_the_same_panel(world, storage):
    tmp_path, base, frames, expected = world
    panel = _panel(STORAGES[storage](tmp_path, base, frames))
    pd.testing.assert_frame_equal(panel, expected, check_dtype=False)


def test_integer_ids_become_strings(world):
    tmp_path, base, frames, expected = world
    panel = _panel(_parquet_world(tmp_path, frames, "intids", _integer_ids))
    expected = expected.assign(customer_id=expected["customer_id"].str[1:])
    pd.testing.assert_frame_equal(panel, expected, check_dtype=False)


def test_unreadable_column_is_exit_2_naming_table_and_column(world):
    tmp_path, base, frames, _ = world

    def epoch_without_unit(name, frame):
        if name == "surveys":
            frame["ts"] = frame["ts"].dt.as_unit("ns").astype("int64") // 10**9
        return frame

    folder = _parquet_world(tmp_path, frames, "nounit", epoch_without_unit)
    result = subprocess.run(
        [sys.executable, "-m", "satmodel", "validate", "--data", str(folder), "--no-persist"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("satmodel: surveys.ts: wrong type"), lines
    assert "epoch_s" in lines[0] and "Traceback" not in result.stderr
