"""Property-based tests of the validators: no row disappears; clean rows meet every rule."""

import math

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satmodel import open_source, quarantine

CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["c1", "c2"],
        "segment": ["smb", "enterprise"],
        "expected_availability_pct": [99.5, 99.9],
        "expected_latency_p95_ms": [500.0, 300.0],
        "expected_resolution_hours": [24.0, 4.0],
    }
)

csat_values = st.one_of(
    st.integers(min_value=-3, max_value=9).map(float),
    st.floats(min_value=-2, max_value=8, allow_nan=False).map(lambda v: round(v, 1)),
    st.none(),
)
survey_rows = st.lists(
    st.tuples(
        st.sampled_from(["r1", "r2", "r3", "r4", "r5", "r6"]),
        st.sampled_from(["c1", "c2", "c3"]),
        st.integers(min_value=0, max_value=40),
        csat_values,
    ),
    min_size=1,
    max_size=25,
)


def _source(tmp_path, rows):
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    CUSTOMERS.to_parquet(folder / "customers.parquet")
    surveys = pd.DataFrame(rows, columns=["response_id", "customer_id", "day", "csat"])
    surveys["ts"] = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(
        surveys.pop("day"), unit="D"
    )
    surveys["nps"] = pd.array([None] * len(surveys), dtype="Float64")
    surveys["csat"] = surveys["csat"].astype("Float64")
    surveys.to_parquet(folder / "surveys.parquet")
    requests = pd.DataFrame(
        {
            "customer_id": ["c1"],
            "ts": [pd.Timestamp("2025-01-02", tz="UTC")],
            "latency_ms": [10.0],
            "ok": [True],
        }
    )
    requests.to_parquet(folder / "requests.parquet")
    usage = pd.DataFrame(
        {"customer_id": ["c1", "c1"], "month": ["2025-01", "2025-02"], "active_users": [5, 5]}
    )
    usage.to_parquet(folder / "usage.parquet")
    return open_source(folder)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=survey_rows)
def test_no_row_disappears_and_clean_rows_meet_the_rules(tmp_path, rows):
    source = _source(tmp_path, rows)
    report = quarantine(source)
    clean = source.frame("surveys")
    assert len(clean) + int(
        report.rejected.loc[report.rejected["table_name"] == "surveys", "rows"].sum()
    ) == len(rows)
    # every clean row meets the contract
    assert clean["csat"].between(1, 5).all()
    assert clean["customer_id"].isin(["c1", "c2"]).all()
    assert clean["response_id"].is_unique
    assert (clean["ts"] < pd.Timestamp("2025-03-01", tz="UTC")).all()

    def good(row):
        _, customer, day, csat = row
        return (
            csat is not None
            and not math.isnan(csat)
            and csat == int(csat)
            and 1 <= csat <= 5
            and customer in ("c1", "c2")
            and day < 59
        )

    # each id with at least one good row keeps exactly one; ids with none keep none
    good_ids = {r[0] for r in rows if good(r)}
    assert set(clean["response_id"]) == good_ids
