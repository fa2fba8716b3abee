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
    surveys = source.frame("surveys").sort_values("response_id")
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


ORDERS = """order_id,review_id,score,status,bought,delivered,promised,n
o1,r1,5,delivered,2025-01-02 10:00:00,2025-01-05 10:00:00,2025-01-08,2
o2,r2,1,delivered,2025-01-03 12:00:00,2025-01-20 12:00:00,2025-01-10,0
o2,r3,2,delivered,2025-01-03 12:00:00,2025-01-20 12:00:00,2025-01-10,0
o3,r4,3,canceled,2025-02-01 09:00:00,,2025-02-10,1
"""
ORDERS_CONFIG = """
[source]
path = "orders.csv"

[tables.customers]
distinct = true
columns = { customer_id = "order_id" }
constants = { segment = "all" }
derived = { expected_latency_p95_ms = { days_between = ["bought", "promised"] } }
units = { expected_latency_p95_ms = "days" }

[tables.requests]
distinct = true
where = [{ column = "status", equals = "delivered" }, { column = "delivered", is_null = false }]
columns = { customer_id = "order_id", ts = "bought" }
units = { latency_ms = "days" }
derived = { latency_ms = { op = "days_between", start = "bought", end = "delivered" }, ok = { op = "less_equal", column = "delivered", other = "promised" } }

[tables.usage]
distinct = true
columns = { customer_id = "order_id" }
constants = { active_users = 1 }
derived = { month = { month_of = "bought" } }

[tables.surveys]
columns = { customer_id = "order_id", ts = "bought", csat = "score" }
derived = { response_id = { op = "concat", columns = ["order_id", "review_id"], sep = ":" } }

[tables.complaints]
repeat = "n"
columns = { customer_id = "order_id", ts = "bought" }
constants = { category = "late" }
derived = { complaint_id = { op = "concat", columns = ["order_id", "_repeat_index"] } }
"""


def test_one_csv_file_cut_into_tables_by_derived_columns_filters_and_repeat(tmp_path):
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    (tmp_path / "satmodel.toml").write_text(ORDERS_CONFIG, encoding="utf-8")
    source = open_source(tmp_path / "satmodel.toml")
    assert source.kind == "file"
    assert source.tables == ["customers", "requests", "usage", "surveys", "complaints"]
    assert source.files == [tmp_path / "orders.csv"]
    report = quarantine(source)
    assert report.ok, report.problem_lines()
    customers = source.frame("customers").sort_values("customer_id")
    assert customers["customer_id"].tolist() == ["o1", "o2", "o3"]
    assert customers["expected_latency_p95_ms"].iloc[1] == pytest.approx(6.5 * 86_400_000)
    requests = source.frame("requests").sort_values("customer_id")
    assert requests["latency_ms"].tolist() == pytest.approx([3 * 86_400_000, 17 * 86_400_000])
    assert requests["ok"].tolist() == [True, False]
    assert sorted(source.frame("usage")["month"]) == ["2025-01", "2025-01", "2025-02"]
    assert sorted(source.frame("surveys")["response_id"]) == ["o1:r1", "o2:r2", "o2:r3", "o3:r4"]
    assert sorted(source.frame("complaints")["complaint_id"]) == ["o1-0", "o1-1", "o3-0"]


def test_derived_column_naming_a_missing_column_is_one_line(tmp_path):
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    (tmp_path / "satmodel.toml").write_text(
        ORDERS_CONFIG.replace('end = "delivered"', 'end = "delivred"'), encoding="utf-8"
    )
    with pytest.raises(InputError) as info:
        open_source(tmp_path / "satmodel.toml")
    message = str(info.value)
    assert (
        "tables.requests.derived.latency_ms: column 'delivred' not found in orders.csv" in message
    )
    assert "\n" not in message


def test_derived_op_of_the_wrong_type_is_an_input_error(tmp_path):
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    (tmp_path / "satmodel.toml").write_text(
        ORDERS_CONFIG.replace('{ month_of = "bought" }', '{ month_of = "score" }'),
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"tables\.usage\.derived\.month: op 'month_of' cannot"):
        open_source(tmp_path / "satmodel.toml")


def test_single_file_without_mapping_is_an_input_error(tmp_path):
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    with pytest.raises(InputError, match="only through a satmodel.toml"):
        open_source(tmp_path / "orders.csv")
