"""The panel on Spark (ibis pyspark backend) agrees with the panel on DuckDB.

Needs pyspark and Java; CI installs both, so this runs there (it is not skipped).
"""

from __future__ import annotations

import pytest
from test_features import assert_panels_equal, make_source, random_tables

from satmodel.features import build_panel, spark_session

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    session = spark_session(memory="512m")
    yield session
    session.stop()


def test_spark_and_duckdb_agree(tmp_path, spark):
    tables = random_tables(seed=11, n_customers=5, n_requests=1500)
    source = make_source(tmp_path, tables)
    on_duckdb = build_panel(source)
    on_spark = build_panel(source, engine="spark", spark=spark)
    assert_panels_equal(on_spark, on_duckdb)
    assert on_spark.dtypes.equals(on_duckdb.dtypes)
    assert on_duckdb.downtime_minutes.gt(0).any()
    assert on_duckdb.latency_p99_ms.notna().any()
