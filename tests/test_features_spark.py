"""The Spark engine on a real multi-process cluster (``local-cluster[2,1,1024]``: two executor
JVMs) over a lake of Parquet part-file folders: hand-computed values, the same panel and the
same quarantine reasons as DuckDB, weighted response patterns, the CLI options.

Needs pyspark and Java; CI installs both, so this runs there (it is not skipped).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_features import (
    BASE_SURVEYS,
    FEB_MINUTES,
    JAN_MINUTES,
    assert_panels_equal,
    customers,
    incidents,
    random_tables,
    requests,
    row,
    surveys,
)

from satmodel.cli import main
from satmodel.config import load_config
from satmodel.errors import InputError
from satmodel.features import build_panel, build_responses, spark_session
from satmodel.models import fit
from satmodel.sources import open_source
from satmodel.sources.spark import open_spark_source
from satmodel.validation import quarantine
from satmodel.validation_spark import quarantine_spark

pytestmark = [pytest.mark.spark, pytest.mark.slow]
CLUSTER = "local-cluster[2,1,1024]"


@pytest.fixture(scope="module")
def spark():
    session = spark_session(memory="768m", master=CLUSTER, executor_memory="512m")
    yield session
    session.stop()


def write_lake(folder: Path, tables: dict[str, pd.DataFrame], parts: int = 2) -> Path:
    """Each table as a folder of Parquet part files (microsecond timestamps), as Spark writes."""
    for name, frame in tables.items():
        target = folder / name
        target.mkdir(parents=True)
        for i, piece in enumerate(np.array_split(np.arange(len(frame)), parts)):
            table = pa.Table.from_pandas(frame.iloc[piece], preserve_index=False)
            pq.write_table(table, target / f"part-{i:05d}.parquet", coerce_timestamps="us")
    return folder


def duckdb_panel(folder: Path) -> pd.DataFrame:
    source = open_source(folder)
    quarantine(source)
    return build_panel(source)


TINY = {
    "customers": customers("c1", "c2"),
    "surveys": BASE_SURVEYS,
    "incidents": incidents(
        [
            ("c1", "2025-01-31T22:00:00", "2025-02-01T02:00:00"),
            ("c1", "2025-01-31T23:00:00", "2025-01-31T23:30:00"),
            ("c1", "2025-02-01T01:00:00", "2025-02-01T03:00:00"),
            ("c1", "2025-02-10T00:00:00", "2025-02-10T00:30:00"),
            ("c1", "2025-02-10T00:30:00", "2025-02-10T00:45:00"),
        ]
    ),
    "requests": requests(
        [("c1", "2025-01-10T00:00:00", 500 if i == 0 else 100 + i, True) for i in range(60)]
        + [("c1", "2025-01-11T00:00:00", 2000 if i == 0 else 600 + i, True) for i in range(30)]
        + [("c1", "2025-01-12T00:00:00", 2000.5 + i, True) for i in range(10)]
        + [("c2", "2025-01-10T00:00:00", 100, True)] * 3
        + [("c2", "2025-01-10T00:00:01", 5, False)]
    ),
}


def check_tiny(panel: pd.DataFrame) -> None:
    """The hand-computed values of the tiny world (see tests/test_features.py)."""
    jan, feb = row(panel, "c1", "2025-01"), row(panel, "c1", "2025-02")
    assert jan.downtime_minutes == pytest.approx(120.0)
    assert jan.availability_pct == pytest.approx(100 * (1 - 120 / JAN_MINUTES))
    assert feb.downtime_minutes == pytest.approx(225.0)
    assert feb.availability_pct == pytest.approx(100 * (1 - 225 / FEB_MINUTES))
    assert (jan.incidents, feb.incidents) == (2, 3)
    assert jan.mttr_hours == pytest.approx(2.25)
    assert jan.apdex == pytest.approx(0.75)
    assert row(panel, "c2", "2025-01").apdex == pytest.approx(0.75)
    assert row(panel, "c2", "2025-01").error_rate == pytest.approx(0.25)
    assert row(panel, "c2", "2025-02").availability_pct == 100.0


def test_tiny_world_on_the_cluster(tmp_path, spark):
    lake = write_lake(tmp_path / "lake", TINY)
    assert spark.sparkContext.master == CLUSTER
    panel = build_panel(open_spark_source(lake, session=spark))
    check_tiny(panel)
    expected = duckdb_panel(lake)
    assert_panels_equal(panel, expected)
    assert panel.dtypes.equals(expected.dtypes)


def test_cli_features_spark_master(tmp_path, spark, capsys, monkeypatch):
    """The Spark path gives the hand-computed values and never opens DuckDB."""
    lake = write_lake(tmp_path / "lake", TINY)
    out = tmp_path / "panel.parquet"
    argv = ["features", "--engine", "spark", "--spark-master", CLUSTER]

    def no_duckdb(*args, **kwargs):
        raise AssertionError("the Spark path opened a DuckDB connection")

    with monkeypatch.context() as patched:
        patched.setattr(duckdb, "connect", no_duckdb)
        assert main([*argv, "--data", str(lake), "--out", str(out)]) == 0
    check_tiny(pd.read_parquet(out))
    assert "wrote" in capsys.readouterr().out


def test_config_engine_and_spark_section(tmp_path, spark):
    write_lake(tmp_path / "lake", TINY)
    config = tmp_path / "satmodel.toml"
    config.write_text(
        '[source]\nengine = "spark"\n\n'
        f'[spark]\nroot = "lake"\nmaster = "{CLUSTER}"\nshuffle_partitions = 4\n\n'
        '[tables.requests]\ntable = "api_log"\ncolumns = { latency_ms = "duration_s" }\n'
        'units = { latency_ms = "s" }\n'
    )
    renamed = TINY["requests"].rename(columns={"latency_ms": "duration_s"})
    write_lake(tmp_path / "lake", {"api_log": renamed.assign(duration_s=renamed.duration_s / 1000)})
    (tmp_path / "lake" / "requests").rename(tmp_path / "lake" / "requests_unused")
    settings = load_config(config).spark
    assert (settings.master, settings.shuffle_partitions) == (CLUSTER, 4)
    out = tmp_path / "panel.parquet"
    assert main(["features", "--data", str(config), "--out", str(out)]) == 0  # engine from toml
    check_tiny(pd.read_parquet(out))


def test_bad_rows_quarantined_with_the_same_reasons(tmp_path, spark):
    tables = dict(TINY)
    tables["customers"] = pd.concat(
        [customers("c1", "c2"), customers("c3").assign(segment="  "), customers("c\u202e4")]
    )
    bad = surveys([("c1", "2025-01-20T00:00:00", 7), ("zz", "2025-01-21T00:00:00", 3)])
    tables["surveys"] = pd.concat(
        [BASE_SURVEYS, bad.assign(response_id=["bad1", "bad2"])], ignore_index=True
    )
    tables["requests"] = pd.concat(
        [TINY["requests"], requests([("c1", "2025-01-13T00:00:00", -5.0, True)])]
    )
    lake = write_lake(tmp_path / "lake", tables)
    on_duckdb = open_source(lake)
    expected = quarantine(on_duckdb)
    source = open_spark_source(lake, session=spark)
    report = quarantine_spark(source)
    pd.testing.assert_frame_equal(report.rejected, expected.rejected, check_dtype=False)
    assert report.rows == expected.rows
    assert report.problem_lines() == expected.problem_lines()
    reasons = set(expected.rejected.reason)
    assert "not a whole number in 1..5" in reasons and "negative" in reasons
    assert "unknown customer (not in customers)" in reasons
    assert expected.rejected.reason.str.startswith("not a usable name").sum() == 2
    written = pd.read_parquet(lake / "rejected")
    assert len(written) == report.n_rejected == 5
    assert set(written.reason) == reasons
    check_tiny(build_panel(source))
    assert_panels_equal(build_panel(source), build_panel(on_duckdb))


def test_random_world_agrees_with_duckdb(tmp_path, spark):
    """Every panel column equals DuckDB's."""
    lake = write_lake(tmp_path / "lake", random_tables(seed=11, n_customers=5, n_requests=1500))
    on_spark = build_panel(open_spark_source(lake, session=spark))
    on_duckdb = duckdb_panel(lake)
    assert on_duckdb.downtime_minutes.gt(0).any() and on_duckdb.latency_p99_ms.notna().any()
    assert_panels_equal(on_spark, on_duckdb)
    assert on_spark.dtypes.equals(on_duckdb.dtypes)


def test_nps_score_exact_on_spark(tmp_path, spark):
    nps = surveys([("c1", "2025-01-15T00:00:00", 4)] * 3).assign(
        response_id=["a", "b", "c"], nps=[9, 0, 0]
    )
    lake = write_lake(tmp_path / "lake", {**TINY, "surveys": nps})
    panel = build_panel(open_spark_source(lake, session=spark))
    assert row(panel, "c1", "2025-01").nps_score == pytest.approx(-100 / 3, abs=1e-9)


def test_demo_world_agrees_with_duckdb(tmp_path, spark):
    from satmodel.demo import generate_demo

    demo = tmp_path / "demo"
    generate_demo(demo, customers=6, months=3, progress=False)
    tables = {p.stem: pd.read_parquet(p) for p in demo.glob("*.parquet")}
    lake = write_lake(tmp_path / "lake", tables, parts=3)
    source = open_spark_source(lake, session=spark)
    on_spark = build_panel(source)
    on_duckdb = duckdb_panel(lake)
    assert_panels_equal(on_spark, on_duckdb)
    # the survey responses arrive collapsed: weights add up to the responses of DuckDB
    patterns = build_responses(source, on_spark, engine="spark")
    responses = build_responses(open_and_clean(lake), on_duckdb)
    counts = responses.groupby(["customer_id", "month", "csat"]).size()
    weights = patterns.set_index(["customer_id", "month", "csat"]).weight
    pd.testing.assert_series_equal(weights.sort_index(), counts.sort_index(), check_names=False)
    weighted = fit(patterns, "csat ~ latency_p95_ms", "ols", weights="weight")
    full = fit(responses, "csat ~ latency_p95_ms", "ols")
    assert weighted.params_.to_numpy() == pytest.approx(full.params_.to_numpy())


def open_and_clean(folder: Path):
    source = open_source(folder)
    quarantine(source)
    return source


def test_usage_errors_exit_2(tmp_path, spark, capsys):
    lake = write_lake(tmp_path / "lake", TINY)
    out = str(tmp_path / "p.parquet")
    remote = ["features", "--engine", "spark", "--spark-remote", "sc://127.0.0.1:1"]
    assert main([*remote, "--data", str(lake), "--out", out]) == 2
    duckdb_file = tmp_path / "x.duckdb"
    duckdb_file.write_bytes(b"")
    assert main(["features", "--engine", "spark", "--data", str(duckdb_file), "--out", out]) == 2
    assert main(["features", "--spark-master", CLUSTER, "--data", str(lake), "--out", out]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and "Traceback" not in "".join(lines)
    assert "sc://127.0.0.1:1" in lines[0] and "x.duckdb" in lines[1]
    with pytest.raises(InputError, match="spark.format"):
        bad = tmp_path / "bad.toml"
        bad.write_text('[spark]\nformat = "orc"\n')
        load_config(bad)
