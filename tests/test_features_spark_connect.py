"""The Spark engine through a real Spark Connect server started from the pyspark package (its
``spark-connect`` jar), in a JVM whose time zone is not UTC: the same panel as DuckDB.

Needs pyspark, its Connect client (grpcio, grpcio-status, googleapis-common-protos) and Java;
skipped without them locally, a failure under CI=true.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import skip_or_fail
from test_features import assert_panels_equal
from test_features_spark import TINY, check_tiny, duckdb_panel, write_lake

from satmodel.cli import main

pytestmark = [pytest.mark.spark, pytest.mark.slow]
SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"
STARTUP_SECONDS = 180


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """``sc://127.0.0.1:<port>`` of a Connect server on ``local[1]``, stopped at the end."""
    try:
        import pyspark
        import pyspark.sql.connect.session  # checks the client dependencies
    except ImportError as exc:
        skip_or_fail(f"Spark Connect client not installed ({exc})")
    home = Path(pyspark.__file__).parent
    if not list((home / "jars").glob("spark-connect_*.jar")):
        skip_or_fail(f"no spark-connect jar in {home / 'jars'}")
    port = free_port()
    log = tmp_path_factory.mktemp("connect") / "server.log"
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1"}
    command = [
        str(home / "bin" / "spark-submit"),
        *("--class", SERVER, "--master", "local[1]", "--driver-memory", "768m"),
        # a server not on UTC: months must still be UTC months
        *("--driver-java-options", "-Duser.timezone=America/New_York"),
        *("--conf", f"spark.connect.grpc.binding.port={port}"),
        *("--conf", "spark.ui.enabled=false"),
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + STARTUP_SECONDS
    while b"Spark Connect server started" not in log.read_bytes():
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            tail = log.read_text(errors="replace")[-500:]
            skip_or_fail(f"Spark Connect server did not start: {tail}")
        time.sleep(0.5)
    connect_mode = os.environ.get("SPARK_CONNECT_MODE_ENABLED")
    yield f"sc://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=60)
    # the client marks the process as Connect-only; later classic sessions must not see it
    if connect_mode is None:
        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)


def test_tiny_world_through_connect(tmp_path, remote, capsys):
    lake = write_lake(tmp_path / "lake", TINY)
    out = tmp_path / "panel.parquet"
    argv = ["features", "--engine", "spark", "--spark-remote", remote]
    assert main([*argv, "--data", str(lake), "--out", str(out)]) == 0
    panel = pd.read_parquet(out)
    check_tiny(panel)
    expected = duckdb_panel(lake)
    assert_panels_equal(panel, expected)
    assert panel.dtypes.equals(expected.dtypes)
    assert "wrote" in capsys.readouterr().out


def test_unreachable_server_exits_2_at_once(tmp_path, capsys):
    lake = write_lake(tmp_path / "lake", TINY)
    dead = f"sc://127.0.0.1:{free_port()}"
    argv = ["features", "--engine", "spark", "--spark-remote", dead, "--data", str(lake)]
    started = time.monotonic()
    assert main([*argv, "--out", str(tmp_path / "p.parquet")]) == 2
    assert time.monotonic() - started < 30  # the client alone retries for 10 minutes
    assert dead in capsys.readouterr().err
