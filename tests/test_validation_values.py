"""Row rules read the values themselves: lying Parquet footers, NaN/inf, absurd timestamps,
invisible ids, corrupt files."""

import subprocess
import sys

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import GOOD_TABLES, write_tables

from satmodel import InputError, open_source, quarantine


def _reasons(source):
    return dict(
        source.con.execute(
            "SELECT json_extract_string(row_json, '$.' || "
            "CASE table_name WHEN 'customers' THEN 'customer_id' WHEN 'requests' THEN 'ts' "
            "ELSE 'response_id' END), reason FROM rejected"
        ).fetchall()
    )


def test_values_patched_behind_the_footer_statistics_are_quarantined(tmp_path):
    folder = write_tables(
        tmp_path / "lie", {k: v for k, v in GOOD_TABLES.items() if k != "surveys"}
    )
    n = 40
    csat = np.full(n, 5, dtype=np.int64)
    csat[:20] = 3
    table = pa.table(
        {
            "response_id": [f"r{i}" for i in range(n)],
            "customer_id": ["c1"] * n,
            "ts": pa.array(
                np.full(n, np.datetime64("2025-01-10T09:00:00", "us")), pa.timestamp("us", "UTC")
            ),
            "csat": csat,
        }
    )
    path = folder / "surveys.parquet"
    pq.write_table(table, path, use_dictionary=False, compression="none")
    raw = bytearray(path.read_bytes())
    at = raw.find(csat.tobytes())
    assert at > 0 and raw.find(csat.tobytes(), at + 1) < 0
    for i in range(22, 40):  # 18 values 5 -> 7 in the data page; the footer still says max 5
        raw[at + 8 * i] = 7
    path.write_bytes(bytes(raw))
    assert pq.read_table(path)["csat"].to_pylist().count(7) == 18
    assert pq.read_metadata(path).row_group(0).column(3).statistics.max == 5

    source = open_source(folder)
    report = quarantine(source)
    assert report.problem_lines() == ["surveys.csat: 18 rows not a whole number in 1..5 (e.g. 7.0)"]
    assert report.notes == [
        "surveys.parquet: footer statistics do not match the values (csat); read without them"
    ]
    clean = source.con.execute("SELECT count(*), max(csat) FROM surveys").fetchall()[0]
    assert clean == (22, 5)


def test_nan_and_infinity_are_quarantined(tmp_path):
    requests = GOOD_TABLES["requests"] + (
        "c1,2025-01-04T10:00:00Z,NaN,true\n"
        "c1,2025-01-05T10:00:00Z,inf,true\n"
        "c1,2025-01-06T10:00:00Z,Infinity,true\n"
        "c1,2025-01-07T10:00:00Z,-inf,true\n"
    )
    folder = write_tables(tmp_path / "nan", {**GOOD_TABLES, "requests": requests})
    source = open_source(folder)
    report = quarantine(source)
    assert report.problem_lines()[0].startswith(
        "requests.latency_ms: 4 rows not a finite number"
    ), report.problem_lines()
    assert source.con.execute("SELECT count(*) FROM requests").fetchall()[0][0] == 3


def test_absurd_years_are_out_of_range_not_a_later_error(tmp_path):
    folder = write_tables(tmp_path / "years", {k: GOOD_TABLES[k] for k in GOOD_TABLES})
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * REPLACE (CAST(ts AS TIMESTAMP_S) AS ts) FROM "
        f"(SELECT * FROM read_csv('{folder}/surveys.csv') UNION ALL "
        "SELECT 'r8', 'c1', make_timestamp(291811, 1, 1, 0, 0, 0), 4, NULL UNION ALL "
        "SELECT 'r9', 'c2', make_timestamp(-274243, 1, 1, 0, 0, 0), 4, NULL)) "
        f"TO '{folder}/surveys.parquet' (FORMAT parquet)"
    )
    (folder / "surveys.csv").unlink()
    source = open_source(folder)
    quarantine(source)
    reasons = _reasons(source)
    assert reasons == {
        "r8": "timestamp out of range (outside 1970..2100)",
        "r9": "timestamp out of range (outside 1970..2100)",
    }


@pytest.mark.parametrize(
    "bad_id", ["c\u202e3", "c\x004", "   ", "\t"], ids=["rtl", "nul", "blank", "tab"]
)
def test_invisible_or_blank_ids_and_segments_are_quarantined(tmp_path, bad_id):
    customers = GOOD_TABLES["customers"] + f'"{bad_id}",smb,eu,,,,\nc5,"{bad_id}",eu,,,,\n'
    folder = tmp_path / "ids"
    folder.mkdir()
    for name, text in {**GOOD_TABLES, "customers": customers}.items():
        (folder / f"{name}.csv").write_bytes(text.encode("utf-8"))
    source = open_source(folder)
    report = quarantine(source)
    lines = [line for line in report.problem_lines() if line.startswith("customers.")]
    assert any(line.startswith("customers.customer_id: 1 row not a usable name") for line in lines)
    assert any(line.startswith("customers.segment: 1 row not a usable name") for line in lines)
    assert source.con.execute("SELECT count(*) FROM customers").fetchall()[0][0] == 2


def _cli_validate(data):
    return subprocess.run(
        [sys.executable, "-m", "satmodel", "validate", "--data", str(data), "--no-persist"],
        capture_output=True,
        text=True,
    )


def test_corrupt_duckdb_file_is_exit_2(tmp_path):
    folder = write_tables(tmp_path / "csv", GOOD_TABLES)
    db = tmp_path / "ops.duckdb"
    con = duckdb.connect(str(db))
    for name in GOOD_TABLES:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{folder}/{name}.csv')")
    con.execute(
        "INSERT INTO requests SELECT 'c1', TIMESTAMPTZ '2025-01-03 10:00:00+00' + "
        "i * INTERVAL 1 second, i % 1000, true FROM range(300000) t(i)"
    )
    con.close()
    raw = bytearray(db.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 5000] = b"\x13" * 5000
    db.write_bytes(bytes(raw))
    result = _cli_validate(db)
    assert result.returncode == 2, result.stderr
    assert ": cannot read" in result.stderr or "not a readable DuckDB file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_missing_required_column_is_exit_2(tmp_path):
    surveys = "response_id,customer_id,ts\nr1,c1,2025-01-10T09:00:00Z\n"
    folder = write_tables(tmp_path / "nocsat", {**GOOD_TABLES, "surveys": surveys})
    with pytest.raises(InputError, match=r"surveys\.csat: column missing"):
        quarantine(open_source(folder))
    result = _cli_validate(folder)
    assert result.returncode == 2 and "surveys.csat: column missing" in result.stderr


def test_missing_columns_show_the_users_columns_and_a_mapping_sketch(tmp_path):
    tables = {
        **GOOD_TABLES,
        "surveys": "review_id,cust,score,created_at\nr1,c1,5,2025-01-10T09:00:00Z\n",
    }
    folder = write_tables(tmp_path / "theirs", tables)
    with pytest.raises(InputError) as info:
        quarantine(open_source(folder))
    lines = [line for line in info.value.problems if line.startswith("surveys.")]
    assert [line.split(":")[0] for line in lines] == [
        "surveys.response_id",
        "surveys.customer_id",
        "surveys.ts",
        "surveys.csat",
    ]
    for line in lines:
        assert "columns in the data: review_id, cust, score, created_at" in line
        assert "canonical columns found" not in line
        assert (
            '[tables.surveys] columns = { response_id = "review_id", customer_id = "cust", '
            'ts = "created_at", csat = "score" }'
        ) in line
