"""Property-based tests of panel metrics: availability bounds, interval union, Apdex bounds."""

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satmodel import build_panel, open_source

START = pd.Timestamp("2025-01-01", tz="UTC")
MINUTES_TWO_MONTHS = (31 + 28) * 24 * 60

incidents_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=MINUTES_TWO_MONTHS - 1),
        st.integers(min_value=0, max_value=3 * 24 * 60),
    ),
    min_size=1,
    max_size=8,
)
requests_strategy = st.lists(
    st.tuples(st.floats(min_value=0, max_value=5000, allow_nan=False), st.booleans()),
    min_size=1,
    max_size=40,
)
SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _panel(folder, incidents, requests=((100.0, True),)):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "customer_id": ["c1"],
            "segment": ["smb"],
            "expected_availability_pct": [99.9],
            "expected_latency_p95_ms": [500.0],
            "expected_resolution_hours": [8.0],
        }
    ).to_parquet(folder / "customers.parquet")
    pd.DataFrame(
        {"customer_id": ["c1", "c1"], "month": ["2025-01", "2025-02"], "active_users": [10, 10]}
    ).to_parquet(folder / "usage.parquet")
    pd.DataFrame(
        {
            "response_id": ["r1"],
            "customer_id": ["c1"],
            "ts": [START + pd.Timedelta(days=3)],
            "csat": [4],
            "nps": pd.array([None], dtype="Int64"),
        }
    ).to_parquet(folder / "surveys.parquet")
    pd.DataFrame(
        {
            "incident_id": [f"i{k}" for k in range(len(incidents))],
            "customer_id": ["c1"] * len(incidents),
            "start_ts": [START + pd.Timedelta(minutes=s) for s, _ in incidents],
            "end_ts": [
                START + pd.Timedelta(minutes=min(s + d, MINUTES_TWO_MONTHS - 1))
                for s, d in incidents
            ],
            "severity": [2] * len(incidents),
        }
    ).to_parquet(folder / "incidents.parquet")
    pd.DataFrame(
        {
            "customer_id": ["c1"] * len(requests),
            "ts": [START + pd.Timedelta(hours=k) for k in range(len(requests))],
            "latency_ms": [latency for latency, _ in requests],
            "ok": [ok for _, ok in requests],
        }
    ).to_parquet(folder / "requests.parquet")
    return build_panel(open_source(folder)).set_index("month")


def _split(incidents):
    start, duration = incidents[0]
    half = duration // 2
    return [(start, half), (start + half, duration - half), *incidents[1:]]


@pytest.mark.slow
@SETTINGS
@given(incidents=incidents_strategy, data=st.data())
def test_availability_is_a_union_unchanged_by_order_or_splitting(tmp_path_factory, incidents, data):
    base = _panel(tmp_path_factory.mktemp("a"), incidents)
    assert base["availability_pct"].between(0, 100).all()
    shuffled = data.draw(st.permutations(incidents))
    for variant in (shuffled, _split(incidents)):
        other = _panel(tmp_path_factory.mktemp("b"), variant)
        pd.testing.assert_series_equal(base["downtime_minutes"], other["downtime_minutes"])
        pd.testing.assert_series_equal(base["availability_pct"], other["availability_pct"])
    # the union is never longer than the sum of the parts, nor shorter than the longest one
    total = sum(min(s + d, MINUTES_TWO_MONTHS - 1) - s for s, d in incidents)
    longest = max(min(s + d, MINUTES_TWO_MONTHS - 1) - s for s, d in incidents)
    assert longest - 1e-6 <= base["downtime_minutes"].sum() <= total + 1e-6


@pytest.mark.slow
@SETTINGS
@given(requests=requests_strategy)
def test_apdex_and_error_rate_are_shares(tmp_path_factory, requests):
    panel = _panel(tmp_path_factory.mktemp("r"), [(0, 0)], requests)
    january = panel.loc["2025-01"]
    assert 0 <= january["apdex"] <= 1
    assert 0 <= january["error_rate"] <= 1
    satisfied = sum(1 for latency, ok in requests if ok and latency <= 500)
    tolerating = sum(1 for latency, ok in requests if ok and 500 < latency <= 2000)
    assert abs(january["apdex"] - (satisfied + tolerating / 2) / len(requests)) < 1e-12
