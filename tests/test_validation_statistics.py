"""Parquet footer statistics are checked once at open; only files that lie are read without them."""

import subprocess
import sys

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import GOOD_TABLES, write_tables

from satmodel import InputError, open_source, quarantine
from satmodel.sources.statistics import footer_mismatches

TS = np.datetime64("2025-01-10T09:00:00", "us")


def _surveys(csat) -> pa.Table:
    n = len(csat)
    return pa.table(
        {
            "response_id": [f"r{i}" for i in range(n)],
            "customer_id": ["c1"] * n,
            "ts": pa.array(np.full(n, TS), pa.timestamp("us", "UTC")),
            "csat": pa.array(csat, pa.float64() if np.isnan(csat).any() else pa.int64()),
        }
    )


def _write(path, table, row_groups=None):
    """Write ``table`` plain and uncompressed, cut into row groups of the sizes given."""
    sizes = row_groups or [len(table)]
    with pq.ParquetWriter(path, table.schema, use_dictionary=False, compression="none") as writer:
        start = 0
        for size in sizes:
            writer.write_table(table.slice(start, size))
            start += size
    assert [pq.read_metadata(path).row_group(g).num_rows for g in range(len(sizes))] == sizes
    return path


def _patch(path, values, sizes, changes):
    """Overwrite int64 values in the data pages, leaving the footer as written."""
    raw = bytearray(path.read_bytes())
    values = np.array(values, dtype=np.int64)
    starts = np.cumsum([0, *sizes])
    for index, new in changes.items():
        group = int(np.searchsorted(starts, index, side="right")) - 1
        page = values[starts[group] : starts[group + 1]].tobytes()
        at = raw.find(page)
        assert at > 0 and raw.find(page, at + 1) < 0, "the row group's values are not unique"
        offset = at + 8 * (index - starts[group])
        raw[offset : offset + 8] = np.int64(new).tobytes()
        values[index] = new
    path.write_bytes(bytes(raw))


def _plan(source, sql):
    return source.con.execute(f"EXPLAIN {sql}").fetchall()[0][1].lower()


def _folder_without_surveys(tmp_path):
    return write_tables(tmp_path / "data", {k: v for k, v in GOOD_TABLES.items() if k != "surveys"})


def test_honest_parquet_files_keep_their_statistics(tmp_path):
    folder = _folder_without_surveys(tmp_path)
    _write(folder / "surveys.parquet", _surveys(np.arange(21) % 5 + 1), [7, 5, 9])
    assert footer_mismatches(duckdb.connect(), folder / "surveys.parquet") == []
    source = open_source(folder)
    report = quarantine(source)
    assert report.ok and report.notes == [] and source.notes == []
    view = source.con.execute(
        "SELECT sql FROM duckdb_views() WHERE schema_name = 'raw' AND view_name = 'surveys'"
    ).fetchall()[0][0]
    assert "random()" not in view
    # the optimizer may use the footer: a filter outside its range reads nothing
    assert "empty result" in _plan(source, "SELECT count(*) FROM surveys WHERE csat > 5")


def test_a_lie_inside_one_row_group_is_found_though_the_file_range_holds(tmp_path):
    # row groups of irregular sizes: 3 3 3 3 3 3 3 | 4 4 4 4 4 | 5 5 5 ...; a 4 patched to 5
    csat = np.array([3] * 7 + [4] * 5 + [5] * 9, dtype=np.int64)
    csat[7:12] = [41, 42, 43, 44, 45]  # distinct bytes to find; the footer says 41..45
    path = _write(tmp_path / "s.parquet", _surveys(csat), [7, 5, 9])
    con = duckdb.connect()
    assert footer_mismatches(con, path) == []
    _patch(path, csat, [7, 5, 9], {9: 40})  # below the row group's footer min
    assert footer_mismatches(con, path) == ["csat"]


def test_values_above_the_footer_max_are_quarantined_and_noted(tmp_path):
    folder = _folder_without_surveys(tmp_path)
    csat = np.array([3] * 10 + [4, 5, 4, 5, 5, 4, 5, 4, 5, 5] + [1] * 10, dtype=np.int64)
    path = _write(folder / "surveys.parquet", _surveys(csat), [10, 10, 10])
    _patch(
        path, csat, [10, 10, 10], {11: 7, 14: 7}
    )  # in the middle row group, whose footer says max 5
    source = open_source(folder)
    report = quarantine(source)
    assert report.problem_lines() == ["surveys.csat: 2 rows not a whole number in 1..5 (e.g. 7.0)"]
    assert report.notes == [
        "surveys.parquet: footer statistics do not match the values (csat); read without them"
    ]
    # the clean view and every query on it read the values too
    assert "empty result" not in _plan(source, "SELECT count(*) FROM raw.surveys WHERE csat > 5")
    assert (
        source.con.execute("SELECT count(*) FROM surveys WHERE csat > 4").fetchall()[0][0]
        == csat.tolist().count(5) - 2
    )


def test_nan_left_out_of_the_footer_range_is_read_without_statistics(tmp_path):
    # Parquet writers leave NaN out of min/max; DuckDB would then skip the NaN rows.
    folder = _folder_without_surveys(tmp_path)
    csat = np.array([4.0, np.nan] * 5)
    _write(folder / "surveys.parquet", _surveys(csat))
    source = open_source(folder)
    report = quarantine(source)
    assert report.problem_lines()[0].startswith("surveys.csat: 5 rows not a finite number")
    assert "surveys.parquet: footer statistics do not match the values (csat)" in report.notes[0]
    assert source.con.execute("SELECT count(*) FROM surveys").fetchall()[0][0] == 5
    nan_rows = "SELECT count(*) FROM raw.surveys WHERE isnan(csat)"
    assert source.con.execute(nan_rows).fetchall()[0][0] == 5


def test_one_lying_file_of_a_parquet_folder_is_named(tmp_path):
    folder = _folder_without_surveys(tmp_path)
    (folder / "surveys").mkdir()
    honest = np.array([1, 2, 3, 4, 5] * 2, dtype=np.int64)
    _write(folder / "surveys" / "part-0.parquet", _surveys(honest))
    lying = np.array([5, 4, 3, 2, 1, 2, 3, 4, 5, 5], dtype=np.int64)
    table = _surveys(lying)
    table = table.set_column(0, "response_id", pa.array([f"s{i}" for i in range(len(lying))]))
    part = _write(folder / "surveys" / "part-1.parquet", table)
    _patch(part, lying, [10], {2: 0})  # below the footer min 1
    report = quarantine(open_source(folder))
    assert report.notes == [
        "part-1.parquet: footer statistics do not match the values (csat); read without them"
    ]
    assert report.problem_lines() == ["surveys.csat: 1 row not a whole number in 1..5 (e.g. 0.0)"]


def test_the_check_leaves_the_users_disabled_optimizers(tmp_path):
    folder = _folder_without_surveys(tmp_path)
    _write(folder / "surveys.parquet", _surveys(np.array([1, 2, 3], dtype=np.int64)))
    source = open_source(folder, duckdb_settings={"disabled_optimizers": "top_n"})
    setting = source.con.execute("SELECT current_setting('disabled_optimizers')").fetchall()
    assert setting[0][0] == "top_n"


def test_unreadable_data_pages_are_exit_2_at_open(tmp_path):
    folder = _folder_without_surveys(tmp_path)
    csat = np.arange(40, dtype=np.int64) % 5 + 1
    path = _write(folder / "surveys.parquet", _surveys(csat))
    raw = bytearray(path.read_bytes())
    raw[100:400] = b"\x13" * 300  # the footer stays readable, the pages do not
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"surveys: cannot read .*surveys\.parquet"):
        open_source(folder)
    result = subprocess.run(
        [sys.executable, "-m", "satmodel", "validate", "--data", str(folder), "--no-persist"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
