"""PostgreSQL sources, tested against a real server (no mocks).

A throwaway cluster is created with ``initdb`` in a temporary folder, started on 127.0.0.1 on a
free port for this module and stopped afterwards. As root, the server runs as the ``postgres``
system user (PostgreSQL refuses to run as root). Without PostgreSQL binaries the tests are
skipped, except in CI (``CI=true``), where that is a failure: .ci/run installs them.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import GOOD_TABLES, SHARED_DATA, shared_data, skip_or_fail, write_tables

from satmodel import InputError, open_source, quarantine

try:
    import psycopg
except ImportError:  # pragma: no cover - depends on the environment
    skip_or_fail("psycopg not installed (pip install -e '.[postgres]')", allow_module_level=True)

USER = "satmodel"


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *command]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(command)]


@pytest.fixture(scope="module")
def pg_url():
    """URL of a fresh PostgreSQL server on loopback, stopped at the end of the module."""
    bindir = _pg_bin()
    if bindir is None:
        skip_or_fail("PostgreSQL binaries (initdb, pg_ctl) not found (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="satmodel-pg-"))
    base.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres", group="postgres")
    data_dir = base / "data"
    port = _free_port()
    log = base / "server.log"
    subprocess.run(
        _as_server_user(
            [str(bindir / "initdb"), "-D", str(data_dir), "-U", USER, "-A", "trust"]
            + ["-E", "UTF8", "--no-locale", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-h 127.0.0.1 -p {port} -k {base} -F -c fsync=off"
    subprocess.run(
        _as_server_user(
            [str(bindir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(log)]
            + ["-w", "-t", "60", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://{USER}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user(
                [str(bindir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"]
            ),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def _copy_csv(conn, table: str, ddl: str, csv_text: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} ({ddl})")
        with cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            copy.write(csv_text)
    conn.commit()


@pytest.fixture(scope="module")
def canonical_db(pg_url):
    """The small canonical tables of conftest.GOOD_TABLES, as PostgreSQL tables."""
    ddl = {
        "customers": "customer_id text, segment text, region text, tier text, "
        "expected_availability_pct numeric, expected_latency_p95_ms double precision, "
        "expected_resolution_hours integer",
        "usage": "customer_id text, month text, active_users bigint",
        "requests": "customer_id text, ts timestamptz, latency_ms real, ok boolean",
        "surveys": "response_id text, customer_id text, ts timestamptz, csat smallint, nps int",
    }
    with psycopg.connect(pg_url) as conn:
        for table, columns in ddl.items():
            _copy_csv(conn, table, columns, GOOD_TABLES[table])
    return pg_url


def _database(pg_url: str, name: str) -> str:
    """A new, empty database on the test server; its URL."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return pg_url.rsplit("/", 1)[0] + f"/{name}"


def _clean_frames(source) -> dict[str, pd.DataFrame]:
    quarantine(source)
    frames = {}
    for table in source.tables:
        frame = source.frame(table)
        frames[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return frames


def test_postgres_url_gives_the_same_canonical_tables_as_csv(canonical_db, tmp_path):
    from_pg = open_source(canonical_db)
    assert from_pg.kind == "postgres"
    assert from_pg.tables == ["customers", "requests", "usage", "surveys"]
    from_csv = open_source(write_tables(tmp_path / "csv", GOOD_TABLES))
    pg_frames, csv_frames = _clean_frames(from_pg), _clean_frames(from_csv)
    for table, frame in csv_frames.items():
        pd.testing.assert_frame_equal(pg_frames[table], frame, check_dtype=False, obj=table)
    assert from_pg.report.ok
    prints = from_pg.fingerprint()
    assert any(
        key.endswith("#public.surveys") and value == "rows=2" for key, value in prints.items()
    )


def test_config_source_url_with_mapping_and_derived_columns(pg_url, tmp_path):
    pg_url = _database(pg_url, "shop")
    with psycopg.connect(pg_url) as conn:
        _copy_csv(
            conn,
            "reviews",
            "order_id text, review_id text, score int, status text, bought timestamp, "
            "delivered timestamp, promised date",
            "order_id,review_id,score,status,bought,delivered,promised\n"
            "o1,r1,5,delivered,2024-01-02 10:00:00,2024-01-05 10:00:00,2024-01-08\n"
            "o2,r2,1,delivered,2024-01-03 12:00:00,2024-01-20 12:00:00,2024-01-10\n"
            "o2,r3,2,delivered,2024-01-03 12:00:00,2024-01-20 12:00:00,2024-01-10\n"
            "o3,r4,3,canceled,2024-02-01 09:00:00,,2024-02-10\n",
        )
    config = tmp_path / "satmodel.toml"
    config.write_text(
        f"""
[source]
path = "{pg_url}"

[tables.customers]
table = "reviews"
distinct = true
columns = {{ customer_id = "order_id" }}
constants = {{ segment = "all" }}
derived = {{ expected_latency_p95_ms = {{ days_between = ["bought", "promised"] }} }}
units = {{ expected_latency_p95_ms = "days" }}

[tables.requests]
table = "reviews"
distinct = true
where = {{ column = "status", equals = "delivered" }}
columns = {{ customer_id = "order_id", ts = "bought" }}
derived = {{ latency_ms = {{ op = "hours_between", start = "bought", end = "delivered" }}, ok = {{ op = "less_equal", column = "delivered", other = "promised" }} }}
units = {{ latency_ms = "h" }}

[tables.surveys]
table = "public.reviews"
columns = {{ response_id = "review_id", customer_id = "order_id", ts = "bought", csat = "score" }}
""",
        encoding="utf-8",
    )
    source = open_source(config)
    assert source.kind == "postgres" and source.tables == ["customers", "requests", "surveys"]
    quarantine(source)
    customers = source.frame("customers").sort_values("customer_id")
    assert customers["customer_id"].tolist() == ["o1", "o2", "o3"]
    assert customers["expected_latency_p95_ms"].tolist() == pytest.approx(
        [5.5833333 * 86_400_000, 6.5 * 86_400_000, 8.625 * 86_400_000]
    )
    requests = source.frame("requests").sort_values("customer_id")
    assert requests["customer_id"].tolist() == ["o1", "o2"]
    assert requests["latency_ms"].tolist() == pytest.approx([72 * 3_600_000, 408 * 3_600_000])
    assert requests["ok"].tolist() == [True, False]
    assert len(source.frame("surveys")) == 4
    # only the columns the mappings use were copied out of PostgreSQL
    copied = {row[0] for row in source.con.execute("DESCRIBE pg.requests").fetchall()}
    assert copied == {"order_id", "status", "bought", "delivered", "promised"}


def test_postgres_errors_are_one_line_and_hide_the_password(pg_url, tmp_path):
    bad = pg_url.replace(f"{USER}@", f"{USER}:hunter2@").replace("/postgres", "/no_such_db")
    with pytest.raises(InputError) as info:
        open_source(bad)
    message = str(info.value)
    assert "hunter2" not in message and "cannot connect" in message and "\n" not in message

    config = tmp_path / "satmodel.toml"
    config.write_text(
        f'[source]\npath = "{pg_url}"\n\n[tables.surveys]\ntable = "absent_table"\n',
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="surveys: table 'absent_table' not found"):
        open_source(config)

    config.write_text(
        f'[source]\npath = "{pg_url}"\n\n[tables.surveys]\ntable = "usage"\n'
        'derived = { response_id = { op = "concat", columns = ["customer_id", "nope"] } }\n',
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"tables\.surveys\.derived\.response_id: column 'nope'"):
        open_source(config)


@pytest.mark.slow
def test_olist_through_postgres_matches_the_csv(pg_url, tmp_path):
    csv = shared_data(SHARED_DATA / "olist" / "olist_reviews_delivery_union.csv")
    pg_url = _database(pg_url, "olist")
    text = csv.read_text(encoding="utf-8")
    columns = (
        "order_id text, review_id text, review_score int, order_status text, "
        "order_purchase_timestamp timestamp, order_delivered_customer_date timestamp, "
        "order_estimated_delivery_date timestamp, review_creation_date timestamp, "
        "delivery_days double precision, delay_days double precision, late double precision, "
        "sources text, in_dhipin1_random15k int"
    )
    with psycopg.connect(pg_url) as conn:
        _copy_csv(conn, "olist", columns, text)
    example = Path(__file__).resolve().parents[1] / "examples" / "olist" / "satmodel.toml"
    config_text = example.read_text(encoding="utf-8")
    lines = []
    for line in io.StringIO(config_text):
        if line.startswith("path = "):
            line = f'path = "{pg_url}"\n'
        lines.append(line)
        if line.startswith("[tables.") and "." not in line.strip()[8:-1]:
            lines.append('table = "olist"\n')
    config = tmp_path / "satmodel.toml"
    config.write_text("".join(lines), encoding="utf-8")
    counts = {}
    for where in (config, example):
        source = open_source(where)
        with contextlib.closing(source.con):
            report = quarantine(source)
            counts[where.name if where == example else "pg"] = (
                dict(report.rows),
                source.con.execute(
                    "SELECT count(*), sum(latency_ms), sum(CAST(ok AS INT)) FROM requests"
                ).fetchall(),
                source.con.execute("SELECT sum(csat), count(*) FROM surveys").fetchall(),
            )
    pg_rows, pg_requests, pg_surveys = counts["pg"]
    csv_rows, csv_requests, csv_surveys = counts["satmodel.toml"]
    assert pg_rows == csv_rows
    assert pg_requests[0][0] == csv_requests[0][0] and pg_requests[0][2] == csv_requests[0][2]
    assert pg_requests[0][1] == pytest.approx(csv_requests[0][1], rel=1e-12)
    assert pg_surveys == csv_surveys
