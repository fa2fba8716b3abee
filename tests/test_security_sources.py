"""Hostile sources: passwords in URLs, DuckDB views reading local files, paths out of bounds."""

import subprocess
import sys

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import GOOD_TABLES, write_tables

from satmodel import InputError, load_config, open_source, quarantine
from satmodel.postgres import PostgresReader
from satmodel.redaction import redact, without_password


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:PW@host/db",
        "postgresql://u:PW@host:5432/db?sslmode=require",
        "postgresql://u@host/db?password=PW",
        "postgresql://u@host/db?sslmode=require&password=PW",
        "postgresql://u@host/db?sslpassword=PW&sslmode=require",
        "host=x password=PW dbname=ops",
        "host=x password='P W' dbname=ops",
        "host=x sslpassword=PW user=u",
    ],
)
def test_redact_hides_every_form_of_password(url):
    shown = redact(url)
    assert "PW" not in shown and "P W" not in shown
    assert "***" in shown and ("host" in shown or "x" in shown)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:PW@host/db", "postgresql://u@host/db"),
        ("postgresql://u@host/db?password=PW", "postgresql://u@host/db"),
        (
            "postgresql://u@host/db?sslmode=require&password=PW",
            "postgresql://u@host/db?sslmode=require",
        ),
        (
            "postgresql://u@host/db?PASSWORD=PW&sslmode=require#f",
            "postgresql://u@host/db?sslmode=require#f",
        ),
        ("host=x password='P W' dbname=ops", "host=x dbname=ops"),
    ],
)
def test_notebook_url_has_no_password_at_all(url, expected):
    """A redacted URL would make libpq send "***"; without one it reads PGPASSWORD."""
    from psycopg.conninfo import conninfo_to_dict

    assert without_password(url) == expected
    assert "password" not in conninfo_to_dict(without_password(url))


def test_password_env_is_read_from_config_and_required(tmp_path, monkeypatch):
    config = tmp_path / "satmodel.toml"
    config.write_text(
        '[source]\npath = "postgresql://analyst@127.0.0.1:1/ops"\npassword_env = "PGPW_OPS"\n',
        encoding="utf-8",
    )
    assert load_config(config).password_env == "PGPW_OPS"
    monkeypatch.delenv("PGPW_OPS", raising=False)
    pytest.importorskip("psycopg")
    with pytest.raises(InputError, match="PGPW_OPS is not set"):
        open_source(config)
    monkeypatch.setenv("PGPW_OPS", "s3cret-pw")
    with pytest.raises(InputError) as info:  # nothing listens on port 1
        PostgresReader.connect("postgresql://analyst@127.0.0.1:1/ops", "PGPW_OPS")
    assert "s3cret-pw" not in str(info.value) and "cannot connect" in str(info.value)


def test_bad_url_in_config_is_shown_redacted(tmp_path):
    config = tmp_path / "satmodel.toml"
    config.write_text('[tables.surveys]\nurl = "host=x password=hunter2"\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(config)
    assert "hunter2" not in str(info.value)


def _duckdb_with_leaking_view(tmp_path):
    folder = write_tables(tmp_path / "csv", GOOD_TABLES)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOKEN=topsecret", encoding="utf-8")
    db = tmp_path / "data" / "hostile.duckdb"
    db.parent.mkdir()
    con = duckdb.connect(str(db))
    for name in GOOD_TABLES:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{folder}/{name}.csv')")
    con.execute("DROP TABLE customers")
    con.execute(
        "CREATE VIEW customers AS SELECT c.*, t.content AS region_leak FROM "
        f"read_csv('{folder}/customers.csv') c, read_text('{secret}') t"
    )
    con.close()
    return db


def test_duckdb_view_reading_other_files_is_refused(tmp_path):
    db = _duckdb_with_leaking_view(tmp_path)
    with pytest.raises(InputError, match=r"^customers: refused: its definition reads files"):
        open_source(db)
    result = subprocess.run(
        [sys.executable, "-m", "satmodel", "validate", "--data", str(db)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert "topsecret" not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_open_connection_is_locked_and_cannot_read_files(good_folder, tmp_path):
    source = open_source(good_folder)
    (tmp_path / "x.txt").write_text("x", encoding="utf-8")
    with pytest.raises(duckdb.Error):
        source.con.execute(f"SELECT * FROM read_text('{tmp_path / 'x.txt'}')").fetchall()
    with pytest.raises(duckdb.Error):
        source.con.execute("SET enable_external_access = true")
    with pytest.raises(InputError, match="locked"):
        from satmodel.sources import apply_duckdb_settings

        apply_duckdb_settings(source.con, {"threads": 1})
    report = quarantine(source, persist=True)  # folder sources still read and persist
    assert report.ok and report.rows["requests"] == 3
    written = source.write_parquet("customers", tmp_path / "customers.parquet")
    assert pq.read_table(written).num_rows == 2  # files are written from Python, not DuckDB
    tuned = open_source(good_folder, duckdb_settings={"threads": 1, "memory_limit": "1GB"})
    assert tuned.con.execute("SELECT current_setting('threads')").fetchall()[0][0] == 1


def test_parquet_folder_and_duckdb_file_still_work_and_persist(tmp_path):
    folder = write_tables(tmp_path / "csv", GOOD_TABLES)
    db = tmp_path / "ok.duckdb"
    con = duckdb.connect(str(db))
    parquet = tmp_path / "pq"
    parquet.mkdir()
    (parquet / "requests").mkdir()
    for name in GOOD_TABLES:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{folder}/{name}.csv')")
        target = parquet / ("requests/part-0.parquet" if name == "requests" else f"{name}.parquet")
        con.execute(f"COPY {name} TO '{target}' (FORMAT parquet)")
    con.execute("UPDATE surveys SET csat = 9 WHERE response_id = 'r1'")
    con.close()
    for src in (db, parquet):
        source = open_source(src)
        report = quarantine(source, persist=True)
        assert report.rows["requests"] == 3
    check = duckdb.connect(str(db), read_only=True)
    assert check.execute("SELECT count(*) FROM rejected").fetchall()[0][0] == 1


def _config(tmp_path, text):
    path = tmp_path / "proj" / "satmodel.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path):
    write_tables(tmp_path / "proj", GOOD_TABLES)
    outside = write_tables(tmp_path / "elsewhere", {"customers": GOOD_TABLES["customers"]})
    return tmp_path / "proj", outside


def test_table_path_outside_the_roots_is_refused(tmp_path, project):
    root, outside = project
    config = _config(
        tmp_path,
        '[source]\npath = "."\n[tables.customers]\ntable = "../elsewhere/customers"\n',
    )
    open_source(config)  # without roots: the user's explicit choice
    with pytest.raises(InputError) as info:
        open_source(config, allowed_roots=[root])
    assert str(info.value).startswith("tables.customers.table: path ")
    assert "outside the allowed folders" in str(info.value) and "\n" not in str(info.value)
    config = _config(tmp_path, '[tables.customers]\nfile = "/etc/passwd"\n[source]\npath = "."\n')
    with pytest.raises(InputError, match=r"^tables\.customers\.file: path /etc/passwd"):
        open_source(config, allowed_roots=[root])


def test_symlink_inside_a_folder_leading_outside_is_refused(tmp_path, project):
    root, outside = project
    (root / "customers.csv").unlink()
    (root / "customers.csv").symlink_to(outside / "customers.csv")
    with pytest.raises(InputError, match=r"resolves to .*elsewhere"):
        open_source(root, allowed_roots=[root])
    assert open_source(root, allowed_roots=[root, outside]).has("customers")


def test_temp_directory_outside_the_roots_is_refused(tmp_path, project):
    root, _ = project
    config = _config(tmp_path, '[source]\npath = "."\n[duckdb]\ntemp_directory = "/tmp/spill"\n')
    with pytest.raises(InputError, match=r"^duckdb\.temp_directory: path /tmp/spill"):
        open_source(config, allowed_roots=[root])
    config = _config(tmp_path, '[source]\npath = "."\n[duckdb]\ntemp_directory = "spill"\n')
    assert open_source(config, allowed_roots=[root]).has("customers")
