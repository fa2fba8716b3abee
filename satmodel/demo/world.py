"""The demo world: customers, their latent service quality, and the service tables drawn from it.

:func:`make_world` draws the customers (segments with their own expectations, region, tier,
active users) and a latent service quality per customer-month (customer effects, AR(1) drift,
bad months, one platform-wide bad month, lasting improvements and degradations). The
``make_*`` functions then draw the raw service tables from that quality: ``requests``,
``incidents``, ``tickets``, ``changes`` and ``usage``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from satmodel.demo.tables import (
    SEGMENTS,
    canonical_table,
    customer_column,
    make_ids,
    pick_category,
    string_array,
    timestamp_array,
)

_US_PER_HOUR = 3_600_000_000

LATENCY_CUSTOMER_SD = 0.30
"""Sd of a customer's persistent component of log p95 latency (``World.lat_customer``)."""


def _lognormal(rng: np.random.Generator, median, sigma, size=None) -> np.ndarray:
    """Lognormal draws with the given median; one draw per element of ``median`` by default."""
    if size is None:
        size = np.broadcast_shapes(np.shape(median), np.shape(sigma))
    return np.exp(np.log(median) + sigma * rng.standard_normal(size))


@dataclass
class World:
    """Customers, calendar and latent service quality (arrays indexed [customer, month])."""

    customer_ids: np.ndarray
    segment: np.ndarray  # int index into SEGMENTS
    month_start_us: np.ndarray  # months + 1 boundaries, µs since epoch
    users: np.ndarray
    req_scale: np.ndarray
    lat_log_p95: np.ndarray
    lat_customer: np.ndarray  # persistent customer component of lat_log_p95 (no table has it)
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
        """The first instant after the last month (exclusive end of the data)."""
        return int(self.month_start_us[-1])

    @property
    def last_us(self) -> int:
        """The last instant of the last month: the latest timestamp the tables may hold."""
        return self.data_end_us - 1


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
    ids = make_ids("C", n, width)
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
    tier = tiers[pick_category(rng, tier_probs[seg])]
    region_null = rng.random(n) < 0.03
    tier_null = rng.random(n) < 0.05

    users0 = _lognormal(rng, np.array([1500.0, 300.0, 40.0])[seg], 0.6)
    growth = rng.normal(0.012, 0.01, n)
    noise = rng.normal(0.0, 0.03, (n, months))
    users = np.maximum(
        1, np.round(users0[:, None] * np.exp(growth[:, None] * np.arange(months) + noise))
    )
    req_scale = np.array([1.3, 1.0, 0.75])[seg] * _lognormal(rng, 1.0, 0.15, n)

    table = canonical_table(
        "customers",
        {
            "customer_id": string_array(ids),
            "segment": string_array(np.array(SEGMENTS)[seg]),
            "region": string_array(region, region_null),
            "tier": string_array(tier, tier_null),
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


def make_world(customers: int, months: int, start: np.datetime64, seed: int) -> tuple[World, dict]:
    """Draw the customers and their latent service quality.

    Returns
    -------
    world : World
    extra : dict
        ``customers`` (the canonical customers table) and ``rngs`` (one independent random
        generator per part: requests, incidents, tickets, changes, outcomes...).
    """
    # one independent stream per part, so changing one part leaves the others' draws alone
    # (new parts go at the end: spawned children keep their index, so the others' draws stay)
    names = (
        "customers",
        "quality",
        "requests",
        "incidents",
        "tickets",
        "changes",
        "outcomes",
        "effects",
        "components",
    )
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

    lat_customer = rng.normal(0.0, LATENCY_CUSTOMER_SD, n)
    lat_log_p95 = (
        np.log(380.0)
        + np.array([-0.10, 0.0, 0.10])[seg][:, None]
        + lat_customer[:, None]
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
    world = World(
        customer_ids=cust["ids"],
        segment=seg,
        month_start_us=month_start,
        users=cust["users"],
        req_scale=cust["req_scale"],
        lat_log_p95=lat_log_p95,
        lat_customer=lat_customer,
        lat_sigma=lat_sigma,
        error_prob=error_prob,
        incident_rate=incident_rate,
        support_log=support_log,
        change_fail_prob=change_fail,
        global_fail_prob=global_fail,
    )
    return world, {"customers": cust_table, "rngs": rngs}


def make_requests(world: World, rng: np.random.Generator) -> pa.Table:
    """Raw requests: lognormal latencies, at least 50 in every customer-month."""
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
    return canonical_table(
        "requests",
        {
            "customer_id": customer_column(world.customer_ids, block // months),
            "ts": timestamp_array(world.month_start_us[month] + offset),
            "latency_ms": pa.array(latency, pa.float64()),
            "ok": pa.array(ok, pa.bool_()),
        },
    )


def _incident_durations(rng: np.random.Generator, severity: np.ndarray) -> np.ndarray:
    """Heavy-tailed durations in µs (lognormal, longer for severe incidents, max 3 days)."""
    shift = np.array([0.0, 0.9, 0.4, 0.0, -0.4])[severity]
    minutes = np.clip(_lognormal(rng, 20.0 * np.exp(shift), 1.1), 1.0, 3 * 24 * 60.0)
    return np.round(minutes * 60) * 1_000_000


def make_incidents(world: World, rng: np.random.Generator) -> tuple[pa.Table, np.ndarray]:
    """Incidents (some overlapping, some crossing a month end) and the count started per
    customer-month (which drives ticket volume). Every timestamp lies in the data window."""
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
    # within the parent's clipped interval, so that no incident starts after the data end
    p_duration = np.minimum(duration[parent], world.last_us - start[parent])
    o_start = start[parent] + (rng.uniform(0.0, 0.8, k) * p_duration).astype(np.int64)
    cust = np.concatenate([cust, cust[parent]])
    start = np.concatenate([start, o_start])
    duration = np.concatenate([duration, _incident_durations(rng, o_sev)])
    severity = np.concatenate([severity, o_sev])

    # still open at the data end: end in the last month, not at the first instant after it,
    # which would add an empty month to the panel
    end = np.minimum(start + duration.astype(np.int64), world.last_us)
    order = np.lexsort((cust, start))
    cust, start, end, severity = cust[order], start[order], end[order], severity[order]
    # incidents started per customer-month (drives ticket volume)
    month_of = np.searchsorted(world.month_start_us, start, side="right") - 1
    started = np.zeros((n, months), dtype=np.int64)
    np.add.at(started, (cust, month_of), 1)
    table = canonical_table(
        "incidents",
        {
            "incident_id": string_array(make_ids("INC-", len(cust), 6)),
            "customer_id": customer_column(world.customer_ids, cust),
            "start_ts": timestamp_array(start),
            "end_ts": timestamp_array(end),
            "severity": pa.array(severity.astype(np.int64), pa.int64()),
        },
    )
    return table, started


def make_tickets(world: World, incidents_started: np.ndarray, rng: np.random.Generator) -> pa.Table:
    """Support tickets, more of them in months with incidents; responses and resolutions
    after the data end are null."""
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
    no_response = (first > world.last_us) | (stale & (rng.random(k) < 0.5))
    unresolved = (resolved > world.last_us) | stale
    order = np.lexsort((cust, opened))
    return canonical_table(
        "tickets",
        {
            "ticket_id": string_array(make_ids("TCK-", k, 7)),
            "customer_id": customer_column(world.customer_ids, cust[order]),
            "opened_ts": timestamp_array(opened[order]),
            "first_response_ts": timestamp_array(first[order], no_response[order]),
            "resolved_ts": timestamp_array(resolved[order], unresolved[order]),
            "priority": string_array(np.array(["P1", "P2", "P3", "P4"])[priority[order]]),
        },
    )


def make_changes(world: World, rng: np.random.Generator) -> pa.Table:
    """Changes per customer, plus at least two global ones (``customer_id`` null) a month."""
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
    column = customer_column(world.customer_ids, np.maximum(cust, 0))
    column = pa.array(column.to_numpy(zero_copy_only=False), type=pa.string(), mask=is_global)
    return canonical_table(
        "changes",
        {
            "change_id": string_array(make_ids("CHG-", len(cust), 6)),
            "customer_id": column,
            "ts": timestamp_array(ts[order]),
            "failed": pa.array(failed[order], pa.bool_()),
        },
    )


def _month_strings(world: World) -> np.ndarray:
    starts = world.month_start_us[:-1].astype("datetime64[us]").astype("datetime64[M]")
    return starts.astype(str)


def make_usage(world: World) -> pa.Table:
    """Active users of every customer-month."""
    n, months = world.n_customers, world.n_months
    cust = np.repeat(np.arange(n), months)
    return canonical_table(
        "usage",
        {
            "customer_id": customer_column(world.customer_ids, cust),
            "month": string_array(np.tile(_month_strings(world), n)),
            "active_users": pa.array(world.users.ravel(), pa.int64()),
        },
    )


def placeholder_complaints(world: World) -> pa.Table:
    """One complaint, so that the service tables form a valid source for the panel builder.

    Validation requires a non-empty outcome table; the outcomes do not exist yet when the
    panel is built. The drivers do not depend on outcomes, and the real ``complaints`` table
    replaces this one before anything is published.
    """
    return canonical_table(
        "complaints",
        {
            "complaint_id": string_array(np.array(["placeholder"])),
            "customer_id": string_array(world.customer_ids[:1]),
            "ts": timestamp_array(world.month_start_us[:1]),
            "category": string_array(np.array(["other"])),
        },
    )
