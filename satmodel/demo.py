"""The demo world: a realistic synthetic company with a known true model.

:func:`generate_demo` writes every canonical table (docs/contract.md) as
``<out_dir>/<table>.parquet`` plus ``truth.json``, and optionally loads them into a DuckDB
file. Everything is drawn from one seed and is fully deterministic: the same arguments give
byte-identical files.

How the world is made
---------------------
1. **Customers** in three segments (enterprise, mid_market, smb) with their own expectations
   (availability, p95 latency, resolution time), region, tier and size (active users).
2. **Service quality** per customer-month: a latency level with a customer effect, an AR(1)
   drift, bad months (one of them platform-wide), lasting improvements and degradations; an
   error probability, an incident rate, a support quality and a change failure probability.
3. **Service tables** drawn from that quality: raw ``requests`` (lognormal latencies, every
   customer-month has requests), ``incidents`` (Poisson counts, heavy-tailed durations, some
   deliberately overlapping and some crossing a month boundary), ``tickets``, ``changes``
   (some global, ``customer_id`` null) and ``usage``.
4. **The panel**: the service tables are written and :func:`satmodel.features.build_panel`
   computes the service panel from them, exactly as an analyst would.
5. **Outcomes** (:func:`draw_outcomes`): the true linear predictors are evaluated on that panel
   with patsy, so the truth is exactly what a statsmodels formula computes. CSAT per survey
   response follows an ordinal logit, complaints per customer-month an NB2 with exposure
   ``active_users``. The truth is written to ``truth.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from satmodel.errors import InputError, SatmodelError
from satmodel.schema import TABLES

__all__ = [
    "SEGMENTS",
    "TABLE_NAMES",
    "DemoResult",
    "arrow_schema",
    "default_truth",
    "draw_outcomes",
    "generate_demo",
]

SEGMENTS = ("enterprise", "mid_market", "smb")
"""Customer segments, in the order patsy sorts them (enterprise is the reference level)."""

TABLE_NAMES = tuple(TABLES)
"""Canonical tables written by the demo, in canonical order."""

_ARROW_TYPES = {
    "str": pa.string(),
    "month": pa.string(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}

_US_PER_MINUTE = 60_000_000
_US_PER_HOUR = 3_600_000_000

# Driver terms shared by both true models (statsmodels/patsy formula syntax).
_RHS = (
    "np.log(latency_p95_ms)"
    " + np.maximum(0, np.log(latency_p95_ms / expected_latency_p95_ms))"
    " + np.log1p(downtime_minutes)"
    " + np.log1p(downtime_minutes_lag1)"
    " + error_rate"
    " + C(segment)"
)

# Survey sampling per segment (enterprise, mid_market, smb).
_SURVEY_RESPONSE_PROB = (0.60, 0.45, 0.35)
_SURVEY_EXTRA_Q = (0.70, 0.50, 0.35)
_SURVEY_MAX_EXTRA = 5
_NPS_NULL_SHARE = 0.15
_COMPLAINT_CATEGORIES = ("performance", "outage", "errors", "support", "billing", "other")


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a canonical table as the demo writes it.

    Parameters
    ----------
    table : str
        A canonical table name (see :data:`satmodel.schema.TABLES`).

    Returns
    -------
    pyarrow.Schema
        Canonical column names and types: strings, ``float64``, ``int64``, ``bool`` and
        ``timestamp('us', tz='UTC')``.
    """
    if table not in TABLES:
        raise InputError(f"table: unknown canonical table {table!r}")
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.kind]) for c in TABLES[table].columns])


def default_truth() -> dict[str, Any]:
    """The true models behind the demo's satisfaction and complaints.

    Returns
    -------
    dict
        ``csat`` (ordinal logit: ``params`` without intercept and 4 ascending ``thresholds``)
        and ``complaints`` (NB2 with exposure ``active_users``, ``params`` with ``Intercept``
        and ``alpha``), each keyed by the exact patsy term names of its ``formula``; plus
        ``lag_fill``, the rule for months without a previous month.
    """
    return {
        "csat": {
            "family": "ordinal",
            "link": "logit",
            "formula": "csat ~ " + _RHS,
            "unit": "one survey response; drivers are its customer-month's panel row",
            "definition": (
                "P(csat <= k) = logistic(threshold_k - x'beta) for k = 1..4; no intercept "
                "(the Intercept column patsy makes is dropped, as OrderedModel.from_formula "
                "does); enterprise is the reference segment"
            ),
            "params": {
                "C(segment)[T.mid_market]": 0.25,
                "C(segment)[T.smb]": 0.45,
                "np.log(latency_p95_ms)": -0.60,
                "np.maximum(0, np.log(latency_p95_ms / expected_latency_p95_ms))": -1.20,
                "np.log1p(downtime_minutes)": -0.18,
                "np.log1p(downtime_minutes_lag1)": -0.10,
                "error_rate": -25.0,
            },
            "thresholds": [-7.20, -6.15, -5.00, -3.40],
        },
        "complaints": {
            "family": "negbin",
            "variance": "NB2: var = mu + alpha * mu**2",
            "formula": "complaints ~ " + _RHS,
            "exposure": "active_users",
            "unit": "one customer-month of the panel",
            "definition": (
                "complaints ~ NegativeBinomial(mu, alpha) with "
                "log(mu) = log(active_users) + x'gamma"
            ),
            "params": {
                "Intercept": -9.40,
                "C(segment)[T.mid_market]": 0.20,
                "C(segment)[T.smb]": 0.50,
                "np.log(latency_p95_ms)": 0.50,
                "np.maximum(0, np.log(latency_p95_ms / expected_latency_p95_ms))": 0.80,
                "np.log1p(downtime_minutes)": 0.12,
                "np.log1p(downtime_minutes_lag1)": 0.07,
                "error_rate": 15.0,
            },
            "alpha": 0.4,
        },
        "lag_fill": {"downtime_minutes_lag1": "downtime_minutes"},
    }


@dataclass
class DemoResult:
    """What :func:`generate_demo` wrote.

    Attributes
    ----------
    out_dir : the folder holding the tables.
    paths : path of every table's Parquet file, plus ``truth`` for ``truth.json``.
    row_counts : rows per table.
    truth : the true model and generation settings (the content of ``truth.json``).
    duckdb_path : the DuckDB file loaded, or None.
    seconds : wall time of the whole generation.
    """

    out_dir: Path
    paths: dict[str, Path]
    row_counts: dict[str, int]
    truth: dict[str, Any]
    duckdb_path: Path | None = None
    seconds: float = field(default=0.0, compare=False)


# --------------------------------------------------------------------------------------
# small helpers


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"{name}: expected a whole number >= {minimum}, got {value!r}")
    return int(value)


def _parse_month(value: Any) -> np.datetime64:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise InputError(f"start_month: expected a month as 'YYYY-MM', got {value!r}")
    return np.datetime64(value, "M")


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    """``prefix`` + zero-padded 1..n, as a numpy string array."""
    if n == 0:
        return np.array([], dtype=str)
    numbers = np.char.zfill(np.arange(1, n + 1).astype(str), width)
    return np.char.add(prefix, numbers)


def _lognormal(rng: np.random.Generator, median, sigma, size=None) -> np.ndarray:
    """Lognormal draws with the given median; one draw per element of ``median`` by default."""
    if size is None:
        size = np.broadcast_shapes(np.shape(median), np.shape(sigma))
    return np.exp(np.log(median) + sigma * rng.standard_normal(size))


def _pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category per row of ``probs`` (rows of probabilities), vectorised."""
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    u = rng.random(len(probs))
    return np.minimum((u[:, None] > cum).sum(axis=1), probs.shape[1] - 1)


def _str_array(values: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(values.astype(object), type=pa.string(), mask=null_mask)


def _ts_array(us: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(us.astype(np.int64), type=pa.int64(), mask=null_mask).cast(
        pa.timestamp("us", tz="UTC")
    )


def _customer_column(ids: np.ndarray, index: np.ndarray) -> pa.Array:
    """A string column of customer ids from integer indices (fast for millions of rows)."""
    dictionary = pa.array(ids.astype(object), type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), dictionary).cast(
        pa.string()
    )


def _table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    schema = arrow_schema(name)
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Write Parquet with fixed settings and no varying metadata (byte-identical reruns)."""
    table = table.replace_schema_metadata(None)
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=3,
        row_group_size=1_048_576,
        use_dictionary=True,
        write_statistics=True,
        version="2.6",
        data_page_version="1.0",
    )


# --------------------------------------------------------------------------------------
# the world


@dataclass
class _World:
    """Customers, calendar and latent service quality (arrays indexed [customer, month])."""

    customer_ids: np.ndarray
    segment: np.ndarray  # int index into SEGMENTS
    month_start_us: np.ndarray  # months + 1 boundaries, µs since epoch
    users: np.ndarray
    req_scale: np.ndarray
    lat_log_p95: np.ndarray
    lat_sigma: np.ndarray
    error_prob: np.ndarray
    incident_rate: np.ndarray
    support_log: np.ndarray
    change_fail_prob: np.ndarray
    global_fail_prob: np.ndarray

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_months(self) -> int:
        return len(self.month_start_us) - 1

    @property
    def month_len_us(self) -> np.ndarray:
        return np.diff(self.month_start_us)

    @property
    def data_end_us(self) -> int:
        return int(self.month_start_us[-1])


def _segment_counts(n: int) -> np.ndarray:
    shares = np.array([0.20, 0.35, 0.45])
    counts = np.floor(shares * n).astype(int)
    order = np.argsort(-(shares * n - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    if n >= len(shares):
        for k in range(len(shares)):
            if counts[k] == 0:
                counts[np.argmax(counts)] -= 1
                counts[k] = 1
    return counts


def _make_customers(n: int, months: int, rng: np.random.Generator) -> tuple[pa.Table, dict]:
    width = max(4, len(str(n)))
    ids = _ids("C", n, width)
    seg = rng.permutation(np.repeat(np.arange(3), _segment_counts(n)))

    sla = np.array([[99.9, 99.95, 99.99], [99.5, 99.9, 99.95], [99.0, 99.5, 99.9]])
    avail = sla[seg, rng.choice(3, size=n, p=[0.25, 0.5, 0.25])]
    latency = np.round(_lognormal(rng, np.array([330.0, 470.0, 650.0])[seg], 0.2) / 10) * 10
    resolution = np.maximum(
        1.0, np.round(_lognormal(rng, np.array([8.0, 24.0, 48.0])[seg], 0.3) * 2) / 2
    )
    regions = np.array(["EMEA", "NA", "APAC", "LATAM"])
    region = regions[rng.choice(4, size=n, p=[0.40, 0.35, 0.18, 0.07])]
    tiers = np.array(["platinum", "gold", "silver", "bronze"])
    tier_probs = np.array([[0.5, 0.4, 0.1, 0.0], [0.1, 0.4, 0.4, 0.1], [0.0, 0.1, 0.4, 0.5]])
    tier = tiers[_pick(rng, tier_probs[seg])]
    region_null = rng.random(n) < 0.03
    tier_null = rng.random(n) < 0.05

    users0 = _lognormal(rng, np.array([1500.0, 300.0, 40.0])[seg], 0.6)
    growth = rng.normal(0.012, 0.01, n)
    noise = rng.normal(0.0, 0.03, (n, months))
    users = np.maximum(
        1, np.round(users0[:, None] * np.exp(growth[:, None] * np.arange(months) + noise))
    )
    req_scale = np.array([1.3, 1.0, 0.75])[seg] * _lognormal(rng, 1.0, 0.15, n)

    table = _table(
        "customers",
        {
            "customer_id": _str_array(ids),
            "segment": _str_array(np.array(SEGMENTS)[seg]),
            "region": _str_array(region, region_null),
            "tier": _str_array(tier, tier_null),
            "expected_availability_pct": pa.array(avail, pa.float64()),
            "expected_latency_p95_ms": pa.array(latency, pa.float64()),
            "expected_resolution_hours": pa.array(resolution, pa.float64()),
        },
    )
    return table, {"ids": ids, "seg": seg, "users": users.astype(np.int64), "req_scale": req_scale}


def _ar1(rng: np.random.Generator, n: int, months: int, phi: float, sd: float) -> np.ndarray:
    """AR(1) paths per customer (loop over months only, vectorised over customers)."""
    out = np.empty((n, months))
    state = rng.normal(0.0, sd / np.sqrt(1 - phi**2), n)
    for m in range(months):
        state = phi * state + rng.normal(0.0, sd, n) if m else state
        out[:, m] = state
    return out


def _make_world(
    customers: int, months: int, start: np.datetime64, seed: int
) -> tuple[_World, dict]:
    # one independent stream per part, so changing one part leaves the others' draws alone
    names = ("customers", "quality", "requests", "incidents", "tickets", "changes", "outcomes")
    streams = np.random.SeedSequence(seed).spawn(len(names))
    rngs = {name: np.random.default_rng(s) for name, s in zip(names, streams, strict=True)}
    cust_table, cust = _make_customers(customers, months, rngs["customers"])
    seg = cust["seg"]
    n, rng = customers, rngs["quality"]
    month_index = np.arange(months)

    # bad months: per customer, plus one platform-wide bad month
    bad = (rng.random((n, months)) < 0.06) * rng.uniform(0.35, 0.9, (n, months))
    platform_bad = np.zeros(months)
    if months >= 3:
        platform_bad[rng.integers(1, months)] = 1.0
    # lasting improvements (35% of customers) and degradations (10%)
    shift = np.zeros((n, months))
    if months >= 2:
        improve = rng.random(n) < 0.35
        t_imp = rng.integers(1, months, n)
        shift -= (
            improve[:, None] * (month_index >= t_imp[:, None]) * rng.uniform(0.15, 0.45, n)[:, None]
        )
        degrade = rng.random(n) < 0.10
        t_deg = rng.integers(1, months, n)
        shift += (
            degrade[:, None] * (month_index >= t_deg[:, None]) * rng.uniform(0.1, 0.3, n)[:, None]
        )

    lat_log_p95 = (
        np.log(380.0)
        + np.array([-0.10, 0.0, 0.10])[seg][:, None]
        + rng.normal(0.0, 0.30, n)[:, None]
        + _ar1(rng, n, months, 0.7, 0.12)
        + bad
        + 0.25 * platform_bad
        + shift
    )
    lat_sigma = rng.uniform(0.45, 0.70, (n, months))
    is_bad = (bad > 0) | (platform_bad[None, :] > 0)
    error_logit = (
        np.log(0.006 / 0.994)
        + rng.normal(0.0, 0.5, n)[:, None]
        + 1.0 * is_bad
        + rng.normal(0.0, 0.3, (n, months))
    )
    error_prob = 1 / (1 + np.exp(-error_logit))
    incident_rate = 0.30 * np.exp(rng.normal(0.0, 0.5, n)[:, None] + 1.0 * is_bad)
    support_log = (
        np.array([-0.3, 0.0, 0.2])[seg][:, None]
        + rng.normal(0.0, 0.3, n)[:, None]
        + _ar1(rng, n, months, 0.6, 0.15)
    )
    change_fail = np.minimum(0.5, 0.06 * np.exp(rng.normal(0.0, 0.4, n)[:, None] + 0.7 * is_bad))
    global_fail = np.where(platform_bad > 0, 0.25, 0.05)

    month_start = (start + np.arange(months + 1)).astype("datetime64[us]").astype(np.int64)
    world = _World(
        customer_ids=cust["ids"],
        segment=seg,
        month_start_us=month_start,
        users=cust["users"],
        req_scale=cust["req_scale"],
        lat_log_p95=lat_log_p95,
        lat_sigma=lat_sigma,
        error_prob=error_prob,
        incident_rate=incident_rate,
        support_log=support_log,
        change_fail_prob=change_fail,
        global_fail_prob=global_fail,
    )
    return world, {"customers": cust_table, "rngs": rngs}


def _make_requests(world: _World, rng: np.random.Generator) -> pa.Table:
    n, months = world.n_customers, world.n_months
    lam = 300.0 * world.req_scale[:, None] * (world.month_len_us / (30.4 * 24 * _US_PER_HOUR))
    counts = np.maximum(50, rng.poisson(np.broadcast_to(lam, (n, months)))).ravel()
    block = np.repeat(np.arange(n * months, dtype=np.int64), counts)  # customer-major blocks
    month = block % months
    # offsets within the month, sorted within each block via one combined key
    offset = (rng.random(len(block)) * world.month_len_us[month]).astype(np.int64)
    offset = np.sort((block << 42) | offset) & ((1 << 42) - 1)
    mu = (world.lat_log_p95 - 1.6449 * world.lat_sigma).ravel()
    latency = np.round(
        np.exp(mu[block] + world.lat_sigma.ravel()[block] * rng.standard_normal(len(block))), 2
    )
    ok = rng.random(len(block)) >= world.error_prob.ravel()[block]
    return _table(
        "requests",
        {
            "customer_id": _customer_column(world.customer_ids, block // months),
            "ts": _ts_array(world.month_start_us[month] + offset),
            "latency_ms": pa.array(latency, pa.float64()),
            "ok": pa.array(ok, pa.bool_()),
        },
    )


def _incident_durations(rng: np.random.Generator, severity: np.ndarray) -> np.ndarray:
    """Heavy-tailed durations in µs (lognormal, longer for severe incidents, max 3 days)."""
    shift = np.array([0.0, 0.9, 0.4, 0.0, -0.4])[severity]
    minutes = np.clip(_lognormal(rng, 20.0 * np.exp(shift), 1.1), 1.0, 3 * 24 * 60.0)
    return np.round(minutes * 60) * 1_000_000


def _make_incidents(world: _World, rng: np.random.Generator) -> tuple[pa.Table, np.ndarray]:
    n, months = world.n_customers, world.n_months
    counts = rng.poisson(world.incident_rate)
    cm = np.repeat(np.arange(n * months), counts.ravel())
    cust, month = cm // months, cm % months
    severity = rng.choice([1, 2, 3, 4], size=len(cm), p=[0.08, 0.22, 0.40, 0.30])
    start = world.month_start_us[month] + (rng.random(len(cm)) * world.month_len_us[month]).astype(
        np.int64
    )
    duration = _incident_durations(rng, severity)

    # a handful of incidents deliberately crossing a month boundary
    if months >= 2:
        k = max(3, round(0.01 * len(cm)))
        c_cross = rng.integers(0, n, k)
        m_cross = rng.integers(0, months - 1, k)
        boundary = world.month_start_us[m_cross + 1]
        s_cross = boundary - np.round(rng.uniform(5, 240, k) * 60) * 1_000_000
        d_cross = (boundary - s_cross) + np.round(rng.uniform(10, 360, k) * 60) * 1_000_000
        cust = np.concatenate([cust, c_cross])
        start = np.concatenate([start, s_cross.astype(np.int64)])
        duration = np.concatenate([duration, d_cross])
        severity = np.concatenate([severity, rng.choice([1, 2], size=k)])
    # and some overlapping a previous incident of the same customer
    k = min(len(cust), max(3, round(0.03 * len(cust))))
    parent = rng.choice(len(cust), size=k, replace=False)
    o_sev = rng.choice([2, 3, 4], size=k)
    o_start = start[parent] + (rng.uniform(0.0, 0.8, k) * duration[parent]).astype(np.int64)
    cust = np.concatenate([cust, cust[parent]])
    start = np.concatenate([start, o_start])
    duration = np.concatenate([duration, _incident_durations(rng, o_sev)])
    severity = np.concatenate([severity, o_sev])

    end = np.minimum(start + duration.astype(np.int64), world.data_end_us)
    order = np.lexsort((cust, start))
    cust, start, end, severity = cust[order], start[order], end[order], severity[order]
    # incidents started per customer-month (drives ticket volume)
    month_of = np.searchsorted(world.month_start_us, start, side="right") - 1
    started = np.zeros((n, months), dtype=np.int64)
    np.add.at(started, (cust, month_of), 1)
    table = _table(
        "incidents",
        {
            "incident_id": _str_array(_ids("INC-", len(cust), 6)),
            "customer_id": _customer_column(world.customer_ids, cust),
            "start_ts": _ts_array(start),
            "end_ts": _ts_array(end),
            "severity": pa.array(severity.astype(np.int64), pa.int64()),
        },
    )
    return table, started


def _make_tickets(
    world: _World, incidents_started: np.ndarray, rng: np.random.Generator
) -> pa.Table:
    n, months = world.n_customers, world.n_months
    base = np.array([4.0, 2.0, 0.8])[world.segment] * _lognormal(rng, 1.0, 0.3, n)
    counts = rng.poisson(base[:, None] + 1.5 * incidents_started)
    cm = np.repeat(np.arange(n * months), counts.ravel())
    cust, month = cm // months, cm % months
    k = len(cm)
    opened = world.month_start_us[month] + (rng.random(k) * world.month_len_us[month]).astype(
        np.int64
    )
    priority = rng.choice(4, size=k, p=[0.05, 0.20, 0.45, 0.30])
    first_hours = _lognormal(rng, np.array([0.25, 1.0, 4.0, 8.0])[priority], 0.8)
    resolve_hours = _lognormal(
        rng,
        np.array([4.0, 12.0, 30.0, 60.0])[priority] * np.exp(world.support_log.ravel()[cm]),
        0.9,
    )
    resolve_hours = np.maximum(resolve_hours, first_hours + 0.05)
    first = opened + np.round(first_hours * 3600) * 1_000_000
    resolved = opened + np.round(resolve_hours * 3600) * 1_000_000
    stale = rng.random(k) < 0.01  # never resolved; half of them never answered
    no_response = (first > world.data_end_us) | (stale & (rng.random(k) < 0.5))
    unresolved = (resolved > world.data_end_us) | stale
    order = np.lexsort((cust, opened))
    return _table(
        "tickets",
        {
            "ticket_id": _str_array(_ids("TCK-", k, 7)),
            "customer_id": _customer_column(world.customer_ids, cust[order]),
            "opened_ts": _ts_array(opened[order]),
            "first_response_ts": _ts_array(first[order], no_response[order]),
            "resolved_ts": _ts_array(resolved[order], unresolved[order]),
            "priority": _str_array(np.array(["P1", "P2", "P3", "P4"])[priority[order]]),
        },
    )


def _make_changes(world: _World, rng: np.random.Generator) -> pa.Table:
    n, months = world.n_customers, world.n_months
    counts = rng.poisson(
        np.broadcast_to(np.array([2.0, 1.2, 0.6])[world.segment][:, None], (n, months))
    )
    cm = np.repeat(np.arange(n * months), counts.ravel())
    cust, month = cm // months, cm % months
    failed = rng.random(len(cm)) < world.change_fail_prob.ravel()[cm]
    # global changes (customer_id null): at least two every month
    g_month = np.repeat(np.arange(months), 2 + rng.poisson(3.0, months))
    g_failed = rng.random(len(g_month)) < world.global_fail_prob[g_month]
    month = np.concatenate([month, g_month])
    cust = np.concatenate([cust, np.full(len(g_month), -1)])
    failed = np.concatenate([failed, g_failed])
    ts = world.month_start_us[month] + (rng.random(len(month)) * world.month_len_us[month]).astype(
        np.int64
    )
    order = np.lexsort((cust, ts))
    cust = cust[order]
    is_global = cust < 0
    column = _customer_column(world.customer_ids, np.maximum(cust, 0))
    column = pa.array(column.to_numpy(zero_copy_only=False), type=pa.string(), mask=is_global)
    return _table(
        "changes",
        {
            "change_id": _str_array(_ids("CHG-", len(cust), 6)),
            "customer_id": column,
            "ts": _ts_array(ts[order]),
            "failed": pa.array(failed[order], pa.bool_()),
        },
    )


def _month_strings(world: _World) -> np.ndarray:
    starts = world.month_start_us[:-1].astype("datetime64[us]").astype("datetime64[M]")
    return starts.astype(str)


def _make_usage(world: _World) -> pa.Table:
    n, months = world.n_customers, world.n_months
    cust = np.repeat(np.arange(n), months)
    return _table(
        "usage",
        {
            "customer_id": _customer_column(world.customer_ids, cust),
            "month": _str_array(np.tile(_month_strings(world), n)),
            "active_users": pa.array(world.users.ravel(), pa.int64()),
        },
    )


def _placeholder_complaints(world: _World) -> pa.Table:
    """One complaint, so that the service tables form a valid source for the panel builder.

    Validation requires a non-empty outcome table; the outcomes do not exist yet when the
    panel is built. The drivers do not depend on outcomes, and the real ``complaints`` table
    replaces this one before anything is published.
    """
    return _table(
        "complaints",
        {
            "complaint_id": _str_array(np.array(["placeholder"])),
            "customer_id": _str_array(world.customer_ids[:1]),
            "ts": _ts_array(world.month_start_us[:1]),
            "category": _str_array(np.array(["other"])),
        },
    )


# --------------------------------------------------------------------------------------
# outcomes


def _design(model: dict[str, Any], panel: pd.DataFrame, drop_intercept: bool) -> np.ndarray:
    """Evaluate a true model's right-hand side on the panel, in its ``params`` order."""
    import patsy

    rhs = model["formula"].split("~", 1)[1].strip()
    try:
        matrix = patsy.dmatrix(rhs, panel, return_type="dataframe", NA_action="raise")
    except patsy.PatsyError as exc:
        raise InputError(f"panel: cannot evaluate {rhs!r}: {exc}".replace("\n", " ")) from exc
    if drop_intercept and "Intercept" in matrix.columns:
        matrix = matrix.drop(columns="Intercept")
    terms = list(model["params"])
    if sorted(matrix.columns) != sorted(terms):
        raise SatmodelError(
            f"truth: terms {terms} do not match the formula's columns {list(matrix.columns)}"
        )
    return matrix[terms].to_numpy(dtype=float)


def _month_bounds(months: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    start = np.asarray(months.astype(str), dtype="datetime64[M]")
    start_us = start.astype("datetime64[us]").astype(np.int64)
    end_us = (start + 1).astype("datetime64[us]").astype(np.int64)
    return start_us, end_us - start_us


def _timestamps(rng: np.random.Generator, start: np.ndarray, length: np.ndarray) -> pd.Series:
    us = start + (rng.random(len(start)) * length).astype(np.int64)
    return pd.Series(pd.to_datetime(us, unit="us", utc=True))


def draw_outcomes(
    panel: pd.DataFrame, truth: dict[str, Any], rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw survey responses and complaints from the true models on a service panel.

    Parameters
    ----------
    panel : pandas.DataFrame
        One row per customer-month with at least ``customer_id``, ``month`` (``YYYY-MM``),
        ``segment``, ``active_users`` and every column the truth formulas use. Lagged
        columns named in ``truth["lag_fill"]`` may be null (first month): they are filled
        with the same customer-month's current value before the linear predictors are
        evaluated. No other driver may be null.
    truth : dict
        The true models, as :func:`default_truth` returns them.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    surveys : pandas.DataFrame
        Canonical ``surveys`` columns, sorted by time, ``response_id`` unique. About 40% of
        customer-months answer, with 1 to 6 responses; csat follows the ordinal logit
        ``P(csat <= k) = logistic(threshold_k - x'beta)``; nps is correlated with csat and
        15% null.
    complaints : pandas.DataFrame
        Canonical ``complaints`` columns, sorted by time, ``complaint_id`` unique; counts per
        customer-month are NB2 with mean ``active_users * exp(x'gamma)``.

    Raises
    ------
    InputError
        When the panel lacks a column or a driver is null.
    """
    from scipy.special import expit

    needed = ["customer_id", "month", "segment", "active_users"]
    missing = [c for c in needed if c not in panel.columns]
    if missing:
        raise InputError(f"panel: missing columns {missing}")
    data = panel.reset_index(drop=True).copy()
    for lagged, current in truth.get("lag_fill", {}).items():
        if lagged in data.columns and current in data.columns:
            data[lagged] = data[lagged].fillna(data[current])
    unknown = ~data["segment"].isin(SEGMENTS)
    if unknown.any():
        raise InputError(
            f"panel.segment: {int(unknown.sum())} rows with an unknown segment "
            f"(e.g. {data['segment'][unknown].iloc[0]!r}; expected one of {list(SEGMENTS)})"
        )
    data["segment"] = pd.Categorical(data["segment"].astype(str), categories=list(SEGMENTS))
    n = len(data)
    seg = data["segment"].cat.codes.to_numpy()
    month_start, month_len = _month_bounds(data["month"])
    customer = data["customer_id"].astype(str).to_numpy()

    # --- surveys: which customer-months answer, how often, and what they say
    csat_model = truth["csat"]
    eta = _design(csat_model, data, drop_intercept=True) @ np.array(
        list(csat_model["params"].values())
    )
    answers = rng.random(n) < np.array(_SURVEY_RESPONSE_PROB)[seg]
    extra = rng.binomial(_SURVEY_MAX_EXTRA, np.array(_SURVEY_EXTRA_Q)[seg])
    n_resp = np.where(answers, 1 + extra, 0)
    row = np.repeat(np.arange(n), n_resp)
    cum = expit(np.asarray(csat_model["thresholds"])[None, :] - eta[row][:, None])
    csat = 1 + (rng.random(len(row))[:, None] > cum).sum(axis=1)
    nps = np.clip(np.round(2.2 * csat - 1.2 + rng.normal(0.0, 1.2, len(row))), 0, 10)
    nps_null = rng.random(len(row)) < _NPS_NULL_SHARE
    ts = _timestamps(rng, month_start[row], month_len[row])
    surveys = pd.DataFrame(
        {
            "customer_id": pd.array(customer[row], dtype="str"),
            "ts": ts,
            "csat": csat.astype(np.int64),
            "nps": pd.array(np.where(nps_null, pd.NA, nps.astype(np.int64)), dtype="Int64"),
        }
    )
    surveys = surveys.sort_values(["ts", "customer_id"], kind="stable", ignore_index=True)
    surveys.insert(0, "response_id", pd.array(_ids("SRV-", len(surveys), 7), dtype="str"))

    # --- complaints: NB2 counts with exposure, categories leaning on what went wrong
    comp_model = truth["complaints"]
    xg = _design(comp_model, data, drop_intercept=False) @ np.array(
        list(comp_model["params"].values())
    )
    users = data[comp_model["exposure"]].to_numpy(dtype=float)
    mu = users * np.exp(xg)
    alpha = float(comp_model["alpha"])
    counts = rng.poisson(rng.gamma(1.0 / alpha, alpha * mu))
    row = np.repeat(np.arange(n), counts)
    ratio = data["latency_p95_ms"].to_numpy(float) / data["expected_latency_p95_ms"].to_numpy(float)
    weights = np.column_stack(
        [
            1.0 + 4.0 * np.maximum(0.0, np.log(ratio)),
            0.3 + 0.6 * np.log1p(data["downtime_minutes"].to_numpy(float)),
            0.3 + 60.0 * data["error_rate"].to_numpy(float),
            np.full(n, 1.0),
            np.full(n, 0.5),
            np.full(n, 0.4),
        ]
    )
    category = np.array(_COMPLAINT_CATEGORIES)[_pick(rng, weights[row])]
    complaints = pd.DataFrame(
        {
            "customer_id": pd.array(customer[row], dtype="str"),
            "ts": _timestamps(rng, month_start[row], month_len[row]),
            "category": pd.array(category, dtype="str"),
        }
    )
    complaints = complaints.sort_values(["ts", "customer_id"], kind="stable", ignore_index=True)
    complaints.insert(0, "complaint_id", pd.array(_ids("CMP-", len(complaints), 7), dtype="str"))
    return surveys, complaints


def _frame_to_table(name: str, frame: pd.DataFrame) -> pa.Table:
    schema = arrow_schema(name)
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    return table.replace_schema_metadata(None)


# --------------------------------------------------------------------------------------
# panel and DuckDB


def _build_panel(folder: Path) -> pd.DataFrame:
    """The service panel of the tables in ``folder``, computed by :mod:`satmodel.features`."""
    try:
        from satmodel.features import build_panel
        from satmodel.sources import open_source
    except ImportError as exc:  # pragma: no cover - only while features is being written
        raise SatmodelError(f"demo: the panel builder is not available ({exc})") from exc
    source = open_source(folder)
    try:
        return build_panel(source)
    finally:
        with contextlib.suppress(Exception):
            source.close()


def _load_duckdb(paths: dict[str, Path], target: Path) -> None:
    """Load every table into ``target`` via a temporary file and an atomic rename.

    Canonical tables are replaced; other tables of an existing file are kept, except
    ``rejected`` (quarantined rows of the old data).
    """
    import duckdb

    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    wal = target.with_name(target.name + ".wal")
    if wal.exists():
        raise InputError(
            f"duckdb_path {target}: has a pending write-ahead log {wal.name} "
            "(is another process using it?)"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()

    def lit(path: Path) -> str:
        return "'" + str(path).replace("'", "''") + "'"

    try:
        con = duckdb.connect(str(tmp))
        try:
            for name in TABLE_NAMES:
                con.execute(
                    f'CREATE TABLE "{name}" AS SELECT * FROM read_parquet({lit(paths[name])})'
                )
            if target.exists():
                try:
                    con.execute(f"ATTACH {lit(target)} AS old (READ_ONLY)")
                except duckdb.Error as exc:
                    raise InputError(
                        f"duckdb_path {target}: cannot read the existing file ({str(exc).splitlines()[0]}); "
                        "delete it or choose another path"
                    ) from exc
                keep = con.execute(
                    "SELECT schema_name, table_name FROM duckdb_tables() "
                    "WHERE database_name = 'old' ORDER BY schema_name, table_name"
                ).fetchall()
                for schema, name in keep:
                    if schema != "main" or name in TABLES or name == "rejected":
                        continue
                    quoted = '"' + name.replace('"', '""') + '"'
                    con.execute(f"CREATE TABLE {quoted} AS SELECT * FROM old.main.{quoted}")
                con.execute("DETACH old")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


# --------------------------------------------------------------------------------------
# entry point


def generate_demo(
    out_dir: str | os.PathLike,
    customers: int = 500,
    months: int = 24,
    seed: int = 20261,
    start_month: str = "2024-11",
    duckdb_path: str | os.PathLike | None = None,
    progress: bool = True,
) -> DemoResult:
    """Generate the demo world: canonical tables, their true model, and optionally a DuckDB file.

    Parameters
    ----------
    out_dir : path
        Folder for ``<table>.parquet`` (one per canonical table) and ``truth.json``; created
        if needed, existing files of the same names are replaced.
    customers : int
        Number of customers (>= 1). At 500 (24 months) the ``requests`` table has about 3.5 million rows.
    months : int
        Number of months (>= 1), starting at ``start_month``.
    seed : int
        Seed (>= 0); the same arguments give byte-identical files.
    start_month : str
        First month, ``YYYY-MM``. The default 2024-11 with 24 months ends in 2026-10.
    duckdb_path : path, optional
        When given, every table is also loaded into this DuckDB file (one table per canonical
        table; the file is rebuilt in a temporary file and renamed into place atomically).
    progress : bool
        Show a tqdm progress bar on stderr.

    Returns
    -------
    DemoResult

    Raises
    ------
    InputError
        For a bad argument (named in the message with its value).

    Examples
    --------
    >>> result = generate_demo("data/demo", customers=50, months=6, progress=False)  # doctest: +SKIP
    >>> result.row_counts["surveys"]  # doctest: +SKIP
    """
    from tqdm import tqdm

    began = time.perf_counter()
    customers = _check_int("customers", customers, 1)
    months = _check_int("months", months, 1)
    seed = _check_int("seed", seed, 0)
    start = _parse_month(start_month)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"out_dir: {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)

    steps = ["world", "requests", "incidents", "tickets", "changes", "write", "panel", "outcomes"]
    if duckdb_path is not None:
        steps.append("duckdb")
    bar = tqdm(total=len(steps), desc="demo", unit="step", file=sys.stderr, disable=not progress)
    staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=out))
    try:
        tables: dict[str, pa.Table] = {}

        def step(name: str) -> None:
            bar.set_postfix_str(name)

        step("world")
        world, extra = _make_world(customers, months, start, seed)
        rngs = extra["rngs"]
        tables["customers"] = extra["customers"]
        tables["usage"] = _make_usage(world)
        bar.update()
        step("requests")
        tables["requests"] = _make_requests(world, rngs["requests"])
        bar.update()
        step("incidents")
        tables["incidents"], started = _make_incidents(world, rngs["incidents"])
        bar.update()
        step("tickets")
        tables["tickets"] = _make_tickets(world, started, rngs["tickets"])
        bar.update()
        step("changes")
        tables["changes"] = _make_changes(world, rngs["changes"])
        bar.update()

        step("write")
        paths = {name: staging / f"{name}.parquet" for name in TABLE_NAMES}
        for name in TABLE_NAMES:
            if name in tables:
                _write_parquet(tables[name], paths[name])
        _write_parquet(_placeholder_complaints(world), paths["complaints"])
        bar.update()

        step("panel")
        panel = _build_panel(staging)
        bar.update()

        step("outcomes")
        truth_models = default_truth()
        surveys, complaints = draw_outcomes(panel, truth_models, rngs["outcomes"])
        tables["surveys"] = _frame_to_table("surveys", surveys)
        tables["complaints"] = _frame_to_table("complaints", complaints)
        for name in ("surveys", "complaints"):
            _write_parquet(tables[name], paths[name])
        row_counts = {name: tables[name].num_rows for name in TABLE_NAMES}
        truth = _truth_document(truth_models, customers, months, seed, start, row_counts)
        with (staging / "truth.json").open("w", encoding="utf-8") as handle:
            json.dump(truth, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        final = {name: out / f"{name}.parquet" for name in TABLE_NAMES}
        final["truth"] = out / "truth.json"
        for name in TABLE_NAMES:
            os.replace(paths[name], final[name])
        os.replace(staging / "truth.json", final["truth"])
        bar.update()

        db = None
        if duckdb_path is not None:
            step("duckdb")
            db = Path(duckdb_path)
            _load_duckdb(final, db)
            bar.update()
    finally:
        bar.close()
        shutil.rmtree(staging, ignore_errors=True)
    return DemoResult(
        out_dir=out,
        paths=final,
        row_counts=row_counts,
        truth=truth,
        duckdb_path=db,
        seconds=time.perf_counter() - began,
    )


def _truth_document(
    models: dict[str, Any],
    customers: int,
    months: int,
    seed: int,
    start: np.datetime64,
    row_counts: dict[str, int],
) -> dict[str, Any]:
    """The content of ``truth.json`` (stable key order)."""
    end = str(start + (months - 1))
    segments = list(SEGMENTS)
    return {
        "description": (
            "Synthetic demo world of satmodel. Customers in three segments with their own "
            "expectations get a service whose quality varies between customers and over time "
            "(customer effects, AR(1) drift, bad months, one platform-wide bad month, lasting "
            "improvements and degradations). Raw requests, incidents, tickets, changes and usage "
            "are drawn from it; satmodel.features.build_panel computes the service panel from "
            "them; survey CSAT and complaints are then drawn from the true models below, "
            "evaluated with patsy on that panel, so a statsmodels fit of these formulas on the "
            "panel (joined to survey responses for csat) recovers these coefficients. "
            "Customer-months are independent given the panel: there are no hidden customer "
            "effects in the outcomes."
        ),
        "seed": seed,
        "customers": customers,
        "months": months,
        "start_month": str(start),
        "end_month": end,
        "last_complete_month": end,
        "segments": segments,
        "formula_engine": "patsy (statsmodels' default); term names are patsy's column names",
        "csat": models["csat"],
        "complaints": models["complaints"],
        "lag_rule": {
            "fill": models["lag_fill"],
            "description": (
                "The first month has no previous month, so the panel's *_lag1 columns are null "
                "there. Its outcomes are drawn with each lagged driver replaced by the same "
                "customer-month's current value (downtime_minutes_lag1 := downtime_minutes). A "
                "fit on the panel drops those rows (null lag), which leaves the estimates "
                "unbiased."
            ),
        },
        "surveys": {
            "response_probability": dict(zip(segments, _SURVEY_RESPONSE_PROB, strict=True)),
            "responses_when_answering": (
                f"1 + Binomial({_SURVEY_MAX_EXTRA}, q_segment), i.e. 1 to {_SURVEY_MAX_EXTRA + 1}"
            ),
            "q": dict(zip(segments, _SURVEY_EXTRA_Q, strict=True)),
            "sampling": "independent of service quality (no response bias)",
            "nps": (
                "clip(round(2.2 * csat - 1.2 + Normal(0, 1.2)), 0, 10); "
                f"{_NPS_NULL_SHARE:.0%} null at random"
            ),
        },
        "complaint_categories": {
            "levels": list(_COMPLAINT_CATEGORIES),
            "weights": (
                "performance 1 + 4 * max(0, log(latency_p95_ms / expected_latency_p95_ms)), "
                "outage 0.3 + 0.6 * log1p(downtime_minutes), errors 0.3 + 60 * error_rate, "
                "support 1, billing 0.5, other 0.4"
            ),
        },
        "panel": {"builder": "satmodel.features.build_panel", "config": "default"},
        "rows": row_counts,
    }
