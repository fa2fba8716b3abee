"""Tests of satmodel.features: the service panel, with hand-computed answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from satmodel import features
from satmodel.config import Config, Thresholds
from satmodel.errors import InputError
from satmodel.features import build_panel, build_responses, engines, panel_columns, write_panel
from satmodel.schema import TABLES
from satmodel.sources import open_source

JAN_MINUTES = 31 * 24 * 60
FEB_MINUTES = 28 * 24 * 60  # 2025


def ts(text: str | None) -> pd.Timestamp:
    return pd.NaT if text is None else pd.Timestamp(text, tz="UTC")


def customers(*ids: str, **columns) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": list(ids),
            "segment": ["ent"] * len(ids),
            "region": ["eu"] * len(ids),
            "tier": ["gold"] * len(ids),
            "expected_availability_pct": [99.9] * len(ids),
            "expected_latency_p95_ms": [500.0] * len(ids),
            "expected_resolution_hours": [24.0] * len(ids),
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def surveys(rows) -> pd.DataFrame:
    """rows: (customer_id, ts, csat)."""
    return pd.DataFrame(
        {
            "response_id": [f"r{i}" for i in range(len(rows))],
            "customer_id": [r[0] for r in rows],
            "ts": [ts(r[1]) for r in rows],
            "csat": [r[2] for r in rows],
            "nps": [np.nan] * len(rows),
        }
    )


def requests(rows) -> pd.DataFrame:
    """rows: (customer_id, ts, latency_ms, ok)."""
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": pd.Series([ts(r[1]) for r in rows], dtype="datetime64[us, UTC]"),
            "latency_ms": [float(r[2]) for r in rows],
            "ok": pd.Series([bool(r[3]) for r in rows], dtype=bool),
        }
    )


def incidents(rows) -> pd.DataFrame:
    """rows: (customer_id, start, end)."""
    return pd.DataFrame(
        {
            "incident_id": [f"i{i}" for i in range(len(rows))],
            "customer_id": [r[0] for r in rows],
            "start_ts": [ts(r[1]) for r in rows],
            "end_ts": [ts(r[2]) for r in rows],
            "severity": [2] * len(rows),
        }
    )


def tickets(rows) -> pd.DataFrame:
    """rows: (customer_id, opened, first_response, resolved)."""
    return pd.DataFrame(
        {
            "ticket_id": [f"t{i}" for i in range(len(rows))],
            "customer_id": [r[0] for r in rows],
            "opened_ts": pd.Series([ts(r[1]) for r in rows], dtype="datetime64[us, UTC]"),
            "first_response_ts": pd.Series([ts(r[2]) for r in rows], dtype="datetime64[us, UTC]"),
            "resolved_ts": pd.Series([ts(r[3]) for r in rows], dtype="datetime64[us, UTC]"),
            "priority": ["p2"] * len(rows),
        }
    )


def changes(rows) -> pd.DataFrame:
    """rows: (customer_id or None, ts, failed)."""
    return pd.DataFrame(
        {
            "change_id": [f"x{i}" for i in range(len(rows))],
            "customer_id": pd.Series([r[0] for r in rows], dtype=object),
            "ts": [ts(r[1]) for r in rows],
            "failed": [bool(r[2]) for r in rows],
        }
    )


def make_source(folder: Path, tables: dict[str, pd.DataFrame], quarantine: bool = False):
    """Write canonical Parquet tables and open them.

    Unless ``quarantine`` is set, the clean views are created here the way
    :func:`satmodel.validate.quarantine` creates them (same names and types, every row kept),
    so these tests depend only on the features step.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    source = open_source(folder)
    if not quarantine:
        for name in source.tables:
            select = ", ".join(
                f'CAST("{c.name}" AS BIGINT) AS "{c.name}"' if c.kind == "int" else f'"{c.name}"'
                for c in TABLES[name].columns
            )
            source.con.execute(f'CREATE VIEW main."{name}" AS SELECT {select} FROM raw."{name}"')
        source.quarantined = True
    return source


def row(panel: pd.DataFrame, customer_id: str, month: str) -> pd.Series:
    found = panel[(panel.customer_id == customer_id) & (panel.month == month)]
    assert len(found) == 1, (customer_id, month)
    return found.iloc[0]


BASE_SURVEYS = surveys([("c1", "2025-01-15T00:00:00", 4), ("c2", "2025-02-15T00:00:00", 5)])


# ------------------------------------------------------------------------------- incidents


def test_incident_union_overlaps_and_month_boundary(tmp_path):
    source = make_source(
        tmp_path,
        {
            "customers": customers("c1", "c2"),
            "surveys": BASE_SURVEYS,
            "incidents": incidents(
                [
                    ("c1", "2025-01-31T22:00:00", "2025-02-01T02:00:00"),  # A: 120 + 120 min
                    ("c1", "2025-01-31T23:00:00", "2025-01-31T23:30:00"),  # B: inside A
                    ("c1", "2025-02-01T01:00:00", "2025-02-01T03:00:00"),  # C: extends A by 60
                    ("c1", "2025-02-10T00:00:00", "2025-02-10T00:30:00"),  # D: alone, 30 min
                    ("c1", "2025-02-10T00:30:00", "2025-02-10T00:45:00"),  # E: touches D, 15
                ]
            ),
        },
    )
    panel = build_panel(source)
    jan, feb = row(panel, "c1", "2025-01"), row(panel, "c1", "2025-02")
    # January: 22:00-24:00 on the 31st, B adds nothing.
    assert jan.downtime_minutes == pytest.approx(120.0)
    assert jan.availability_pct == pytest.approx(100 * (1 - 120 / JAN_MINUTES))
    assert jan.incidents == 2
    assert jan.mttr_hours == pytest.approx((4.0 + 0.5) / 2)  # whole durations of A and B
    # February: 00:00-03:00 (A and C merged) + 00:00-00:45 on the 10th.
    assert feb.downtime_minutes == pytest.approx(180.0 + 45.0)
    assert feb.availability_pct == pytest.approx(100 * (1 - 225 / FEB_MINUTES))
    assert feb.incidents == 3
    assert feb.mttr_hours == pytest.approx((2.0 + 0.5 + 0.25) / 3)
    # A customer without incidents: full availability, zero counts, no MTTR.
    for month in ("2025-01", "2025-02"):
        other = row(panel, "c2", month)
        assert other.availability_pct == 100.0
        assert other.downtime_minutes == 0.0
        assert other.incidents == 0
        assert np.isnan(other.mttr_hours)


def test_incident_longer_than_a_month(tmp_path):
    source = make_source(
        tmp_path,
        {
            "customers": customers("c1"),
            "surveys": surveys([("c1", "2025-01-15T00:00:00", 4)]),
            "incidents": incidents([("c1", "2024-12-31T12:00:00", "2025-03-01T00:00:00")]),
        },
    )
    panel = build_panel(source)
    assert list(panel.month) == ["2024-12", "2025-01", "2025-02", "2025-03"]
    assert list(panel.downtime_minutes) == [720.0, JAN_MINUTES, FEB_MINUTES, 0.0]
    assert list(panel.availability_pct) == pytest.approx([100 * (1 - 720 / 44640), 0, 0, 100])
    assert list(panel.incidents) == [1, 0, 0, 0]


# -------------------------------------------------------------------------------- requests


def test_apdex_worked_example_and_failed_fast_request(tmp_path):
    rows = []
    # c1: 60 satisfied (<= 500, including exactly 500), 30 tolerating (<= 2000, including
    # exactly 2000), 10 frustrated (> 2000): (60 + 30 / 2) / 100 = 0.75.
    rows += [("c1", "2025-01-10T00:00:00", 500 if i == 0 else 100 + i, True) for i in range(60)]
    rows += [("c1", "2025-01-11T00:00:00", 2000 if i == 0 else 600 + i, True) for i in range(30)]
    rows += [("c1", "2025-01-12T00:00:00", 2000.5 + i, True) for i in range(10)]
    # c2: 3 satisfied and one request that failed fast (5 ms): frustrated, 3 / 4 = 0.75.
    rows += [("c2", "2025-01-10T00:00:00", 100, True)] * 3
    rows += [("c2", "2025-01-10T00:00:01", 5, False)]
    source = make_source(
        tmp_path,
        {"customers": customers("c1", "c2"), "surveys": BASE_SURVEYS, "requests": requests(rows)},
    )
    panel = build_panel(source)
    c1, c2 = row(panel, "c1", "2025-01"), row(panel, "c2", "2025-01")
    assert c1.apdex == pytest.approx(0.75)
    assert c1.requests == 100
    assert c1.error_rate == 0.0
    assert c2.apdex == pytest.approx(0.75)
    assert c2.error_rate == pytest.approx(0.25)
    # T from the config: with T = 100 ms no c1 request is satisfied (the fastest takes
    # 101 ms) and the 59 requests of 101..159 ms are tolerating (<= 400): 29.5 / 100.
    config = Config(thresholds=Thresholds(apdex_t_ms=100.0))
    assert row(build_panel(source, config=config), "c1", "2025-01").apdex == pytest.approx(0.295)


def test_latency_quantiles_and_month_without_requests(tmp_path):
    latencies = [10, 20, 30, 40, 1000]
    rows = [("c1", f"2025-01-0{i + 1}T00:00:00", lat, True) for i, lat in enumerate(latencies)]
    source = make_source(
        tmp_path,
        {
            "customers": customers("c1"),
            "surveys": surveys([("c1", "2025-01-15T00:00:00", 4), ("c1", "2025-02-03", 3)]),
            "requests": requests(rows),
        },
    )
    panel = build_panel(source)
    jan, feb = row(panel, "c1", "2025-01"), row(panel, "c1", "2025-02")
    # linear interpolation over 5 values: position q * 4
    assert jan.latency_p50_ms == pytest.approx(30.0)
    assert jan.latency_p95_ms == pytest.approx(40 + 0.8 * 960)
    assert jan.latency_p99_ms == pytest.approx(40 + 0.96 * 960)
    assert jan.requests == 5
    # February has no request: count 0, every measurement null (never 0).
    assert feb.requests == 0
    for column in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate", "apdex"):
        assert np.isnan(feb[column]), column
    assert feb.requests_lag1 == 5
    assert feb.latency_p50_ms_lag1 == pytest.approx(30.0)
    assert np.isnan(jan.requests_lag1)


# --------------------------------------------------------------------------------- tickets


def test_ticket_metrics_and_customer_without_tickets(tmp_path):
    source = make_source(
        tmp_path,
        {
            "customers": customers("c1", "c2", "c3", expected_resolution_hours=[8.0, 24.0, np.nan]),
            "surveys": BASE_SURVEYS,
            "tickets": tickets(
                [
                    # c1, January: first responses 1 h, 3 h, none; resolutions 2 h, 10 h, 30 h
                    # and one still open.
                    ("c1", "2025-01-05T00:00:00", "2025-01-05T01:00:00", "2025-01-05T02:00:00"),
                    ("c1", "2025-01-06T00:00:00", "2025-01-06T03:00:00", "2025-01-06T10:00:00"),
                    ("c1", "2025-01-07T00:00:00", None, "2025-01-08T06:00:00"),
                    ("c1", "2025-01-31T20:00:00", None, None),
                    # c3 has no expected hours: the default SLA (24 h) applies; 25 h breaches.
                    ("c3", "2025-02-01T00:00:00", "2025-02-01T00:30:00", "2025-02-02T01:00:00"),
                ]
            ),
        },
    )
    panel = build_panel(source)
    c1 = row(panel, "c1", "2025-01")
    assert c1.tickets == 4
    assert c1.first_response_hours_median == pytest.approx(2.0)
    assert c1.resolution_hours_median == pytest.approx(10.0)
    assert c1.resolution_hours_p90 == pytest.approx(10 + 0.8 * 20)  # position 0.9 * 2 = 1.8
    assert c1.sla_breach_rate == pytest.approx(2 / 3)  # unresolved ticket left out
    c3 = row(panel, "c3", "2025-02")
    assert c3.sla_breach_rate == 1.0
    assert c3.first_response_hours_median == pytest.approx(0.5)
    # customer without tickets: 0 tickets, null measurements
    for month in ("2025-01", "2025-02"):
        c2 = row(panel, "c2", month)
        assert c2.tickets == 0
        for column in (
            "first_response_hours_median",
            "resolution_hours_median",
            "resolution_hours_p90",
            "sla_breach_rate",
        ):
            assert np.isnan(c2[column]), column
    # a month with only unresolved tickets: counted, but nothing to measure
    assert row(panel, "c1", "2025-02").tickets == 0
    # the config default SLA
    config = Config(thresholds=Thresholds(default_resolution_sla_hours=48.0))
    assert row(build_panel(source, config=config), "c3", "2025-02").sla_breach_rate == 0.0


# --------------------------------------------------------------------------------- changes


def test_global_change_counts_for_every_customer(tmp_path):
    source = make_source(
        tmp_path,
        {
            "customers": customers("c1", "c2"),
            "surveys": BASE_SURVEYS,
            "changes": changes(
                [
                    (None, "2025-01-03T00:00:00", True),  # global, failed
                    ("c1", "2025-01-04T00:00:00", False),
                    ("c2", "2025-02-04T00:00:00", True),
                ]
            ),
        },
    )
    panel = build_panel(source)
    assert row(panel, "c1", "2025-01").changes == 2
    assert row(panel, "c1", "2025-01").change_failure_rate == pytest.approx(0.5)
    assert row(panel, "c2", "2025-01").changes == 1
    assert row(panel, "c2", "2025-01").change_failure_rate == 1.0
    assert row(panel, "c1", "2025-02").changes == 0
    assert np.isnan(row(panel, "c1", "2025-02").change_failure_rate)
    assert row(panel, "c2", "2025-02").changes == 1
    assert row(panel, "c2", "2025-02").changes_lag1 == 1


# -------------------------------------------------------------------------------- outcomes


def test_outcomes(tmp_path):
    source = make_source(
        tmp_path,
        {
            "customers": customers("c1", "c2", "c3"),
            "surveys": surveys(
                [
                    ("c1", "2025-01-02T00:00:00", 5),
                    ("c1", "2025-01-03T00:00:00", 4),
                    ("c1", "2025-01-04T00:00:00", 2),
                    ("c2", "2025-01-04T00:00:00", 3),
                ]
            ),
            "usage": pd.DataFrame(
                {
                    "customer_id": ["c1", "c2"],
                    "month": ["2025-01", "2025-01"],
                    "active_users": [500, 0],
                }
            ),
            "complaints": pd.DataFrame(
                {
                    "complaint_id": ["k1", "k2", "k3"],
                    "customer_id": ["c1", "c1", "c2"],
                    "ts": [ts("2025-01-05"), ts("2025-01-06"), ts("2025-01-07")],
                    "category": ["billing"] * 3,
                }
            ),
            "requests": requests([("c1", "2025-01-02T00:00:00", 100, True)]),
        },
    )
    panel = build_panel(source)
    c1, c2, c3 = (row(panel, c, "2025-01") for c in ("c1", "c2", "c3"))
    assert (c1.active_users, c1.complaints, c1.complaint_rate_per_1k) == (500.0, 2, 4.0)
    assert (c1.csat_n, c1.csat_mean, c1.csat_top2_rate) == (3, pytest.approx(11 / 3), 2 / 3)
    assert c2.complaints == 1 and np.isnan(c2.complaint_rate_per_1k)  # 0 active users
    assert c3.complaints == 0 and np.isnan(c3.active_users) and np.isnan(c3.complaint_rate_per_1k)
    assert c3.csat_n == 0 and np.isnan(c3.csat_mean) and np.isnan(c3.csat_top2_rate)
    # the cutoff comes from the config
    strict = Config(thresholds=Thresholds(satisfied_cutoff=5))
    assert row(build_panel(source, config=strict), "c1", "2025-01").csat_top2_rate == 1 / 3


# ------------------------------------------------------------------- grid, columns, types


def test_every_customer_every_month(tmp_path):
    source = make_source(
        tmp_path,
        {
            "customers": customers("c1", "c2", "c3"),
            "surveys": surveys([("c1", "2024-11-15T00:00:00", 4)]),
            # nothing at all happens in December; the last month comes from a resolved_ts
            "tickets": tickets([("c2", "2025-01-20T00:00:00", None, "2025-02-03T00:00:00")]),
            "usage": pd.DataFrame(
                {"customer_id": ["c3"], "month": ["2024-10"], "active_users": [7]}
            ),
        },
    )
    panel = build_panel(source)
    months = ["2024-10", "2024-11", "2024-12", "2025-01", "2025-02"]
    expected = pd.DataFrame({"customer_id": np.repeat(["c1", "c2", "c3"], 5), "month": months * 3})
    assert len(panel) == 15
    assert panel[["customer_id", "month"]].astype(object).equals(expected.astype(object))
    assert row(panel, "c2", "2025-01").tickets == 1
    assert row(panel, "c2", "2024-12").tickets == 0
    assert row(panel, "c2", "2025-02").tickets_lag1 == 1


def test_absent_tables_leave_their_columns_out(tmp_path):
    source = make_source(
        tmp_path,
        {
            "customers": customers("c1"),
            "surveys": BASE_SURVEYS.iloc[:1],
            "requests": requests([("c1", "2025-01-02T00:00:00", 100, True)]),
        },
    )
    panel = build_panel(source)
    assert list(panel.columns) == panel_columns(["customers", "surveys", "requests"])
    assert list(panel.columns) == [
        *features.IDENTITY_COLUMNS,
        "requests",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "error_rate",
        "apdex",
        "requests_lag1",
        "latency_p50_ms_lag1",
        "latency_p95_ms_lag1",
        "latency_p99_ms_lag1",
        "error_rate_lag1",
        "apdex_lag1",
        "csat_n",
        "csat_mean",
        "csat_top2_rate",
        "nps_n",
        "nps_score",
    ]
    assert panel.requests.dtype == "int64" and panel.csat_n.dtype == "int64"
    assert panel.apdex.dtype == "float64"


def test_full_column_order():
    columns = panel_columns(list(TABLES))
    assert columns[:8] == list(features.IDENTITY_COLUMNS)
    assert columns[8:12] == ["availability_pct", "downtime_minutes", "incidents", "mttr_hours"]
    assert columns[-10:] == [
        "active_users",
        "complaints",
        "complaint_rate_per_1k",
        "csat_n",
        "csat_mean",
        "csat_top2_rate",
        "nps_n",
        "nps_score",
        "monthly_revenue",
        "churned",
    ]
    service = columns[8:25]
    assert columns[25:42] == [f"{c}_lag1" for c in service]
    assert "planned_downtime_minutes" in columns
    assert len(columns) == len(set(columns)) == 53


def test_missing_customers_and_bad_engine(tmp_path):
    source = make_source(tmp_path, {"surveys": BASE_SURVEYS})
    with pytest.raises(InputError, match="customers"):
        build_panel(source)
    other = make_source(tmp_path / "b", {"customers": customers("c1"), "surveys": BASE_SURVEYS})
    with pytest.raises(InputError, match="engine"):
        build_panel(other, engine="polars")


# ------------------------------------------------------------ agreement with plain pandas


def random_tables(seed: int = 7, n_customers: int = 6, n_requests: int = 3000) -> dict:
    """Small random canonical tables over 2025-01..2025-06, timestamps at whole seconds."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i}" for i in range(n_customers)]
    start = pd.Timestamp("2025-01-01", tz="UTC")
    span = 181 * 24 * 3600  # to 2025-07-01

    def stamps(n, low=0, high=span):
        return start + pd.to_timedelta(rng.integers(low, high, n), unit="s")

    req_ids = rng.choice(ids[:-1], n_requests)  # the last customer has no requests
    reqs = pd.DataFrame(
        {
            "customer_id": req_ids,
            "ts": stamps(n_requests),
            "latency_ms": np.round(rng.lognormal(5.5, 1.0, n_requests), 3),
            "ok": rng.random(n_requests) > 0.05,
        }
    )
    n_inc = 40
    inc_start = stamps(n_inc, 0, span - 5 * 24 * 3600)
    incs = pd.DataFrame(
        {
            "incident_id": [f"i{i}" for i in range(n_inc)],
            "customer_id": rng.choice(ids[:3], n_inc),
            "start_ts": inc_start,
            "end_ts": inc_start + pd.to_timedelta(rng.integers(60, 4 * 24 * 3600, n_inc), "s"),
            "severity": rng.integers(1, 5, n_inc),
        }
    )
    n_t = 80
    opened = stamps(n_t, 0, span - 10 * 24 * 3600)
    first = opened + pd.to_timedelta(rng.integers(60, 48 * 3600, n_t), "s")
    resolved = opened + pd.to_timedelta(rng.integers(600, 96 * 3600, n_t), "s")
    tix = pd.DataFrame(
        {
            "ticket_id": [f"t{i}" for i in range(n_t)],
            "customer_id": rng.choice(ids[1:], n_t),
            "opened_ts": opened,
            "first_response_ts": first.where(rng.random(n_t) > 0.2),
            "resolved_ts": resolved.where(rng.random(n_t) > 0.25),
            "priority": rng.choice(["p1", "p2"], n_t),
        }
    )
    n_c = 30
    chg = pd.DataFrame(
        {
            "change_id": [f"x{i}" for i in range(n_c)],
            "customer_id": pd.Series(rng.choice([*ids, None, None], n_c), dtype=object),
            "ts": stamps(n_c),
            "failed": rng.random(n_c) < 0.3,
        }
    )
    months = [f"2025-0{m}" for m in range(1, 7)]
    use = pd.DataFrame(
        [(c, m, int(rng.integers(0, 50))) for c in ids for m in months if rng.random() > 0.2],
        columns=["customer_id", "month", "active_users"],
    )
    n_s = 200
    surv = pd.DataFrame(
        {
            "response_id": [f"r{i}" for i in range(n_s)],
            "customer_id": rng.choice(ids, n_s),
            "ts": stamps(n_s),
            "csat": rng.integers(1, 6, n_s),
            "nps": np.where(rng.random(n_s) < 0.2, np.nan, rng.integers(0, 11, n_s)),
        }
    )
    n_k = 60
    comp = pd.DataFrame(
        {
            "complaint_id": [f"k{i}" for i in range(n_k)],
            "customer_id": rng.choice(ids, n_k),
            "ts": stamps(n_k),
            "category": rng.choice(["billing", "outage"], n_k),
        }
    )
    cust = customers(
        *ids, expected_resolution_hours=[8.0, np.nan, 24.0, 4.0, np.nan, 12.0][:n_customers]
    )
    return {
        "customers": cust,
        "requests": reqs,
        "incidents": incs,
        "tickets": tix,
        "changes": chg,
        "usage": use,
        "surveys": surv,
        "complaints": comp,
    }


def pandas_panel(tables: dict, thresholds: Thresholds | None = None) -> pd.DataFrame:
    """The panel computed directly with pandas and plain Python, for comparison."""
    thresholds = thresholds or Thresholds()

    def month_of(stamps):
        return stamps.dt.strftime("%Y-%m")

    cust = tables["customers"]
    times = [tables["usage"].month]
    for table in tables.values():
        for column in table.columns:
            if isinstance(table[column].dtype, pd.DatetimeTZDtype):
                times.append(month_of(table[column].dropna()))
    all_months = pd.concat(times)
    months = pd.period_range(all_months.min(), all_months.max(), freq="M").strftime("%Y-%m")
    grid = cust.merge(pd.DataFrame({"month": months}), how="cross")
    key = ["customer_id", "month"]
    T = thresholds.apdex_t_ms

    # requests
    r = tables["requests"].assign(month=lambda d: month_of(d.ts))
    score = np.where(
        r.ok & (r.latency_ms <= T), 1.0, np.where(r.ok & (r.latency_ms <= 4 * T), 0.5, 0)
    )
    r = r.assign(score=score, err=(~r.ok).astype(float))
    g = r.groupby(key)
    req = pd.DataFrame(
        {
            "requests": g.size(),
            "latency_p50_ms": g.latency_ms.quantile(0.5),
            "latency_p95_ms": g.latency_ms.quantile(0.95),
            "latency_p99_ms": g.latency_ms.quantile(0.99),
            "error_rate": g.err.mean(),
            "apdex": g.score.mean(),
        }
    ).reset_index()

    # incidents: counts by start month; downtime from the union, clipped to months
    i = tables["incidents"].assign(month=lambda d: month_of(d.start_ts))
    i = i.assign(hours=(i.end_ts - i.start_ts).dt.total_seconds() / 3600)
    inc = (
        i.groupby(key).agg(incidents=("hours", "size"), mttr_hours=("hours", "mean")).reset_index()
    )
    down = {}
    bounds = [(m, pd.Timestamp(m + "-01", tz="UTC")) for m in months]
    for customer, group in i.sort_values("start_ts").groupby("customer_id"):
        merged = []
        for s, e in zip(group.start_ts, group.end_ts, strict=True):
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        for s, e in merged:
            for m, m_start in bounds:
                m_end = m_start + pd.offsets.MonthBegin(1)
                overlap = (min(e, m_end) - max(s, m_start)).total_seconds()
                if overlap > 0:
                    down[(customer, m)] = down.get((customer, m), 0.0) + overlap / 60
    downtime = pd.DataFrame(
        [(c, m, v) for (c, m), v in down.items()], columns=[*key, "downtime_minutes"]
    )

    # tickets
    t = tables["tickets"].merge(cust[["customer_id", "expected_resolution_hours"]], how="left")
    t = t.assign(
        month=month_of(t.opened_ts),
        first_h=(t.first_response_ts - t.opened_ts).dt.total_seconds() / 3600,
        res_h=(t.resolved_ts - t.opened_ts).dt.total_seconds() / 3600,
    )
    sla = t.expected_resolution_hours.fillna(thresholds.default_resolution_sla_hours)
    t = t.assign(breach=np.where(t.res_h.isna(), np.nan, (t.res_h > sla).astype(float)))
    g = t.groupby(key)
    tik = pd.DataFrame(
        {
            "tickets": g.size(),
            "first_response_hours_median": g.first_h.median(),
            "resolution_hours_median": g.res_h.median(),
            "resolution_hours_p90": g.res_h.quantile(0.9),
            "sla_breach_rate": g.breach.mean(),
        }
    ).reset_index()

    # changes: own + global
    c = tables["changes"].assign(month=lambda d: month_of(d.ts))
    own = c[c.customer_id.notna()].groupby(key).failed.agg(["size", "sum"]).reset_index()
    glob = c[c.customer_id.isna()].groupby("month").failed.agg(["size", "sum"]).reset_index()

    out = grid.merge(inc, on=key, how="left").merge(downtime, on=key, how="left")
    out = out.merge(req, on=key, how="left").merge(tik, on=key, how="left")
    out = out.merge(own, on=key, how="left").merge(glob, on="month", how="left")
    minutes = pd.Series(
        [(pd.Period(m, "M").days_in_month) * 1440 for m in out.month], index=out.index
    )
    out["downtime_minutes"] = out.downtime_minutes.fillna(0.0)
    out["availability_pct"] = 100 * (1 - out.downtime_minutes / minutes)
    for count in ("incidents", "requests", "tickets"):
        out[count] = out[count].fillna(0).astype("int64")
    n = out.size_x.fillna(0) + out.size_y.fillna(0)
    failed = out.sum_x.fillna(0) + out.sum_y.fillna(0)
    out["changes"] = n.astype("int64")
    out["change_failure_rate"] = (failed / n).where(n > 0)

    # outcomes
    s = tables["surveys"].assign(month=lambda d: month_of(d.ts))
    s = s.assign(top=(s.csat >= thresholds.satisfied_cutoff).astype(float))
    net = np.select([s.nps >= 9, s.nps <= 6, s.nps.notna()], [100.0, -100.0, 0.0], np.nan)
    s = s.assign(net=net)
    sv = s.groupby(key).agg(
        csat_n=("csat", "size"),
        csat_mean=("csat", "mean"),
        csat_top2_rate=("top", "mean"),
        nps_n=("nps", "count"),
        nps_score=("net", "mean"),
    )
    k = tables["complaints"].assign(month=lambda d: month_of(d.ts)).groupby(key).size()
    out = out.merge(tables["usage"], on=key, how="left")
    out = out.merge(k.rename("complaints").reset_index(), on=key, how="left")
    out = out.merge(sv.reset_index(), on=key, how="left")
    out["complaints"] = out.complaints.fillna(0).astype("int64")
    out["csat_n"] = out.csat_n.fillna(0).astype("int64")
    out["nps_n"] = out.nps_n.fillna(0).astype("int64")
    out["active_users"] = out.active_users.astype("float64")
    out["complaint_rate_per_1k"] = (1000 * out.complaints / out.active_users).where(
        out.active_users > 0
    )
    out = out.sort_values(key).reset_index(drop=True)
    if "incidents" in tables:  # the test tables hold no planned maintenance
        out["planned_downtime_minutes"] = 0.0
    service = [c for cols in features.SERVICE_COLUMNS.values() for c in cols]
    for column in service:
        out[f"{column}_lag1"] = out.groupby("customer_id")[column].shift(1).astype("float64")
    return out[panel_columns(list(tables))]


def assert_panels_equal(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(actual.columns) == list(expected.columns)
    assert len(actual) == len(expected)
    for column in actual.columns:
        a, e = actual[column], expected[column]
        if column in features.STRING_COLUMNS:
            assert a.astype(object).where(a.notna(), None).tolist() == (
                e.astype(object).where(e.notna(), None).tolist()
            ), column
        else:
            np.testing.assert_allclose(
                a.to_numpy(dtype=float),
                e.to_numpy(dtype=float),
                rtol=1e-9,
                atol=1e-9,
                err_msg=column,
            )


@pytest.fixture(scope="module")
def random_source(tmp_path_factory):
    tables = random_tables()
    return tables, make_source(tmp_path_factory.mktemp("random"), tables)


def test_agrees_with_pandas_on_random_data(random_source):
    tables, source = random_source
    panel = build_panel(source)
    assert_panels_equal(panel, pandas_panel(tables))
    assert panel.downtime_minutes.gt(0).any() and panel.changes.gt(0).any()


def test_quantile_passes_give_the_same_panel(random_source, monkeypatch):
    """With a tiny memory budget the request aggregation runs in pieces: same result."""
    tables, source = random_source
    whole = build_panel(source)
    monkeypatch.setattr(engines, "request_passes", lambda con, rows: 13)  # > 6 months
    assert features.request_plan(source)[0] == 13
    pieces = build_panel(source)
    pd.testing.assert_frame_equal(pieces, whole)


# ---------------------------------------------------------------------- outputs and files


def test_write_panel_is_atomic(random_source, tmp_path):
    tables, source = random_source
    out = tmp_path / "out" / "panel.parquet"
    assert write_panel(source, out) == out
    written = pd.read_parquet(out)
    assert_panels_equal(written, build_panel(source))
    before = out.read_bytes()
    with pytest.raises(InputError):
        write_panel(source, out, engine="nope")
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["panel.parquet"]


def test_build_responses(random_source):
    tables, source = random_source
    panel = build_panel(source)
    responses = build_responses(source, panel)
    assert len(responses) == len(tables["surveys"])
    assert list(responses.columns[:6]) == list(features.RESPONSE_COLUMNS)
    assert set(panel.columns) <= set(responses.columns)
    one = responses.iloc[0]
    match = row(panel, one.customer_id, one.month)
    assert one.requests == match.requests
    assert one.month == one.ts.strftime("%Y-%m")
    assert responses.csat.dtype == "int64"
    with pytest.raises(InputError, match="panel"):
        build_responses(source, panel.drop(columns="month"))


def test_empty_event_tables(tmp_path):
    """Tables present with no rows: counts 0, measurements null, availability 100."""
    source = make_source(
        tmp_path,
        {
            "customers": customers("c1"),
            "surveys": surveys([("c1", "2025-03-02T00:00:00", 3)]),
            "requests": requests([]),
            "incidents": incidents([]).astype(
                {"start_ts": "datetime64[us, UTC]", "end_ts": "datetime64[us, UTC]"}
            ),
        },
    )
    panel = build_panel(source)
    assert len(panel) == 1
    one = panel.iloc[0]
    assert (one.requests, one.incidents, one.availability_pct) == (0, 0, 100.0)
    assert np.isnan(one.latency_p95_ms)


def test_with_the_real_quarantine(good_folder):
    """End to end through satmodel's own quarantine (build_panel calls it when needed)."""
    source = open_source(good_folder)
    panel = build_panel(source)
    assert source.quarantined
    assert len(panel) == 2 * 2  # customers c1, c2 x months 2025-01, 2025-02
    c1 = row(panel, "c1", "2025-01")
    assert c1.requests == 1 and c1.latency_p50_ms == 120.0 and c1.active_users == 1000.0
    assert row(panel, "c2", "2025-02").csat_mean == 2.0


def test_month_key_matches_the_calendar():
    """The integer month key agrees with DuckDB's strftime at every day edge 2000..2100."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    features.prepare_duckdb(con)
    con.execute(
        "CREATE TABLE t AS SELECT TIMESTAMPTZ '2000-01-01 00:00:00+00' + to_days(i) "
        "+ to_microseconds(e) AS ts FROM range(0, 36525) a(i), (VALUES (-1), (0)) b(e)"
    )
    import ibis

    table = ibis.duckdb.from_connection(con).table("t")
    got = table.select(table.ts, key=features.month_key(table.ts), text=table.ts.strftime("%Y-%m"))
    frame = got.to_pyarrow().to_pandas()
    assert len(frame) == 73050
    assert (frame["key"] == frame["text"]).all()


def test_parse_memory_limit():
    assert features.parse_bytes("2.0 GiB") == 2 * 2**30
    assert features.parse_bytes("2GB") == 2e9
    assert features.parse_bytes("512.5 MiB") == 512.5 * 2**20
    assert features.parse_bytes("unlimited") is None
