"""Sources: DuckDB files, folders of Parquet/CSV, and config mappings onto canonical tables."""

import duckdb
import pandas as pd
import pytest
from conftest import GOOD_TABLES, write_tables

from satmodel import InputError, open_source, quarantine, read_table_file


def test_folder_of_csv_tables(good_folder):
    source = open_source(good_folder)
    assert source.tables == ["customers", "requests", "usage", "surveys"]
    quarantine(source)
    types = dict(
        source.con.execute("SELECT column_name, column_type FROM (DESCRIBE requests)").fetchall()
    )
    assert types == {
        "customer_id": "VARCHAR",
        "ts": "TIMESTAMP WITH TIME ZONE",
        "latency_ms": "DOUBLE",
        "ok": "BOOLEAN",
    }
    surveys = source.frame("surveys")
    assert surveys["csat"].tolist() == [5, 2]


def test_duckdb_file_and_parquet_folder_give_the_same_tables(good_folder, tmp_path):
    db = tmp_path / "x.duckdb"
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    with duckdb.connect(str(db)) as con:
        for name in GOOD_TABLES:
            con.execute(
                f"CREATE TABLE {name} AS SELECT * FROM read_csv('{good_folder / (name + '.csv')}')"
            )
            con.execute(f"COPY {name} TO '{parquet / (name + '.parquet')}' (FORMAT parquet)")
    frames = []
    for location in (good_folder, db, parquet):
        source = open_source(location)
        quarantine(source)
        frames.append(source.frame("surveys").sort_values("response_id").reset_index(drop=True))
    pd.testing.assert_frame_equal(frames[0], frames[1])
    pd.testing.assert_frame_equal(frames[0], frames[2])


def test_config_maps_names_units_and_constants(tmp_path):
    tables = dict(GOOD_TABLES)
    tables["api_log"] = (
        "account,when,duration_s\nc1,2025-01-03T10:00:00Z,0.12\nc2,2025-01-04T10:00:00Z,1.5\n"
    )
    del tables["requests"]
    folder = write_tables(tmp_path / "mine", tables)
    config = tmp_path / "satmodel.toml"
    config.write_text(
        """
[source]
path = "mine"

[tables.requests]
table = "api_log"
columns = { customer_id = "account", ts = "when", latency_ms = "duration_s" }
units = { latency_ms = "s" }
constants = { ok = true }
""",
        encoding="utf-8",
    )
    source = open_source(config)
    assert source.location == folder
    quarantine(source)
    requests = source.frame("requests").sort_values("customer_id")
    assert requests["latency_ms"].tolist() == pytest.approx([120.0, 1500.0])
    assert requests["ok"].tolist() == [True, True]


def test_unknown_unit_is_a_clear_error(tmp_path):
    folder = write_tables(tmp_path / "d", GOOD_TABLES)
    config = tmp_path / "satmodel.toml"
    config.write_text(
        f'[source]\npath = "{folder}"\n[tables.requests]\nunits = {{ latency_ms = "fortnights" }}\n'
    )
    with pytest.raises(InputError, match=r"tables.requests.units.latency_ms = 'fortnights'"):
        open_source(config)


def test_missing_source_names_the_path(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_source(tmp_path / "nothing-here")


def test_read_table_file_reads_csv_with_bom(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffa,b\n1,2\n".encode())
    assert list(read_table_file(path).columns) == ["a", "b"]
    with pytest.raises(InputError, match="file not found"):
        read_table_file(tmp_path / "absent.csv")
