"""IT components, recurring problems and planned maintenance in the demo world.

The incidents :func:`satmodel.demo.world.make_incidents` draws keep their timing and are put
on the everyday components (application servers, core network, storage); then components
with their own failure patterns add incidents:

- ``db-core`` (database): a few long outages hitting many customers at once, the recurring
  problem ``PRB-0001``;
- ``login`` (application): the recurring problem ``PRB-0002``, outages of one to two hours for
  a fifth to a third of the customers, each caused by a failed change on it shortly before;
- ``cdn`` (third party): many short blips of a single customer;
- ``storage``: monthly planned maintenance for every customer (``planned`` true), each stated
  by a change on storage at its start.

:func:`true_component_costs` gives each component's (problem's) true CSAT and complaint cost
from the true models: the rise of the average true expected CSAT over all survey responses
had its downtime not happened (the union of the remaining incidents).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from satmodel.demo.inverse import expected_outcome
from satmodel.demo.outcomes import prepare_panel
from satmodel.demo.tables import canonical_table, make_ids, string_array
from satmodel.demo.world import World

COMPONENTS = (
    # component_id, name, kind, service, pattern
    ("app", "Application servers", "application", "platform", "everyday incidents"),
    ("net-core", "Core network", "network", "platform", "everyday incidents"),
    ("storage", "Storage cluster", "storage", "platform", "everyday incidents, planned windows"),
    ("db-core", "Customer database", "database", "platform", "few long outages, many customers"),
    ("login", "Login service", "application", "identity", "recurring outages after changes"),
    ("cdn", "Content delivery network", "third_party", "web", "many short one-customer blips"),
)
EVERYDAY_SHARES = {"app": 0.55, "net-core": 0.30, "storage": 0.15}
PROBLEMS = {"db-core": "PRB-0001", "login": "PRB-0002"}
MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US


def components_table() -> pa.Table:
    """The canonical ``components`` table of the demo."""
    columns = list(zip(*COMPONENTS, strict=True))
    return canonical_table(
        "components",
        {
            name: pa.array(list(values), pa.string())
            for name, values in zip(
                ("component_id", "name", "kind", "service"), columns[:4], strict=True
            )
        },
    )


def _outages(world: World, rng, count: int, share, minutes, component: str) -> list[dict]:
    """``count`` outages, each hitting a share of the customers at (nearly) the same time."""
    rows = []
    span = world.data_end_us - world.month_start_us[0]
    for _ in range(count):
        start = int(world.month_start_us[0] + rng.random() * (span - 12 * HOUR_US))
        length = int(rng.uniform(*minutes) * MINUTE_US)
        hit = np.flatnonzero(rng.random(world.n_customers) < rng.uniform(*share))
        lag = (rng.uniform(0, 10, len(hit)) * MINUTE_US).astype(np.int64)
        for customer, delay in zip(hit, lag, strict=True):
            rows.append(
                {
                    "customer": customer,
                    "start": start + int(delay),
                    "end": min(start + length, world.last_us),
                    "severity": 1 if length > 2 * HOUR_US else 2,
                    "component_id": component,
                    "problem_id": PROBLEMS.get(component),
                    "planned": False,
                }
            )
    return rows


def _blips(world: World, rng) -> list[dict]:
    counts = rng.poisson(0.2, (world.n_customers, world.n_months))
    cm = np.repeat(np.arange(counts.size), counts.ravel())
    customer, month = cm // world.n_months, cm % world.n_months
    start = world.month_start_us[month] + (
        rng.random(len(cm)) * (world.month_len_us[month] - HOUR_US)
    ).astype(np.int64)
    length = (rng.uniform(3, 15, len(cm)) * MINUTE_US).astype(np.int64)
    return [
        {
            "customer": c,
            "start": int(s),
            "end": int(s + d),
            "severity": 4,
            "component_id": "cdn",
            "problem_id": None,
            "planned": False,
        }
        for c, s, d in zip(customer, start, length, strict=True)
    ]


def _maintenance(world: World) -> tuple[list[dict], list[int]]:
    """Two hours every first Sunday 02:00 UTC for every customer, and the windows' starts."""
    rows, starts = [], []
    for m in range(world.n_months):
        first = pd.Timestamp(int(world.month_start_us[m]), unit="us", tz="UTC")
        sunday = first + pd.Timedelta(days=(6 - first.day_of_week) % 7, hours=2)
        start = int(sunday.value // 1000)
        starts.append(start)
        for customer in range(world.n_customers):
            rows.append(
                {
                    "customer": customer,
                    "start": start,
                    "end": start + 2 * HOUR_US,
                    "severity": 4,
                    "component_id": "storage",
                    "problem_id": None,
                    "planned": True,
                }
            )
    return rows, starts


def add_components(
    world: World, incidents: pa.Table, changes: pa.Table, rng: np.random.Generator
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The components table, and the incidents and changes with their components.

    Returns
    -------
    components, incidents, changes : pyarrow.Table
        Incidents sorted by start, customer; new incident and change ids.
    """
    base = incidents.to_pandas()
    index = {c: i for i, c in enumerate(world.customer_ids)}
    names = list(EVERYDAY_SHARES)
    frame = pd.DataFrame(
        {
            "customer": base["customer_id"].map(index).to_numpy(),
            "start": _micros(incidents, "start_ts"),
            "end": _micros(incidents, "end_ts"),
            "severity": base["severity"].to_numpy(),
            "component_id": rng.choice(names, len(base), p=list(EVERYDAY_SHARES.values())),
            "problem_id": None,
            "planned": False,
        }
    )
    months = world.n_months
    database = _outages(world, rng, max(3, months // 3), (0.5, 0.8), (180, 480), "db-core")
    login = _outages(world, rng, max(3, round(months / 1.5)), (0.15, 0.35), (45, 120), "login")
    planned, windows = _maintenance(world)
    extra = pd.DataFrame(database + login + _blips(world, rng) + planned)
    frame = pd.concat([frame, extra], ignore_index=True)
    frame = frame.sort_values(["start", "customer"], kind="stable").reset_index(drop=True)
    incidents = canonical_table(
        "incidents",
        {
            "incident_id": string_array(make_ids("INC-", len(frame), 7)),
            "customer_id": pa.array(world.customer_ids[frame["customer"]].astype(object)),
            "start_ts": _stamps(frame["start"]),
            "end_ts": _stamps(frame["end"]),
            "severity": pa.array(frame["severity"].astype(np.int64), pa.int64()),
            "component_id": pa.array(frame["component_id"].astype(object), pa.string()),
            "problem_id": pa.array(frame["problem_id"].astype(object), pa.string()),
            "planned": pa.array(frame["planned"].astype(bool), pa.bool_()),
        },
    )
    return components_table(), incidents, _changes(world, changes, login, windows, rng)


def _micros(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).cast(pa.int64()).to_numpy()


def _stamps(us: pd.Series) -> pa.Array:
    return pa.array(us.to_numpy(np.int64), pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _changes(world, changes: pa.Table, login: list[dict], windows: list[int], rng) -> pa.Table:
    """Existing changes on a random component, plus the login outages' failed changes and
    the maintenance windows' changes."""
    frame = changes.to_pandas()
    frame = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(object),
            "ts": _micros(changes, "ts"),
            "failed": frame["failed"].to_numpy(bool),
            "component_id": rng.choice(
                [c[0] for c in COMPONENTS if c[0] not in ("login", "cdn")], len(frame)
            ).astype(object),
        }
    )
    caused = [int(s - rng.uniform(1, 6) * HOUR_US) for s in _first_starts(login)]
    added = pd.DataFrame(
        {
            "customer_id": None,
            "ts": caused + windows,
            "failed": [True] * len(caused) + [False] * len(windows),
            "component_id": ["login"] * len(caused) + ["storage"] * len(windows),
        }
    )
    frame = pd.concat([frame, added], ignore_index=True).sort_values("ts", kind="stable")
    frame["ts"] = np.maximum(frame["ts"].to_numpy(np.int64), world.month_start_us[0])
    return canonical_table(
        "changes",
        {
            "change_id": string_array(make_ids("CHG-", len(frame), 6)),
            "customer_id": pa.array(
                [c if isinstance(c, str) else None for c in frame["customer_id"]], pa.string()
            ),
            "ts": _stamps(frame["ts"]),
            "failed": pa.array(frame["failed"].to_numpy(bool), pa.bool_()),
            "component_id": pa.array(frame["component_id"].tolist(), pa.string()),
        },
    )


def _first_starts(rows: list[dict]) -> list[int]:
    """The start of each outage (the earliest start of its group of incidents)."""
    starts = sorted(row["start"] for row in rows)
    firsts: list[int] = []
    for start in starts:
        if not firsts or start - firsts[-1] > HOUR_US:
            firsts.append(start)
    return firsts


def true_component_costs(
    source, panel: pd.DataFrame, surveys: pd.DataFrame, truth: dict[str, Any]
) -> dict[str, list[dict]]:
    """Each component's and problem's true cost, from the true models.

    ``csat_points``: rise of the average true expected CSAT over all survey responses;
    ``complaints_per_month``: true expected complaints its downtime causes per month.
    """
    from satmodel.features.components import downtime_without
    from satmodel.insights.components import counterfactual

    first, last = str(panel["month"].min()), str(panel["month"].max())
    n_months = panel["month"].nunique()
    months = pd.Series(pd.to_datetime(surveys["ts"], utc=True).dt.strftime("%Y-%m"))
    counts = pd.DataFrame({"customer_id": surveys["customer_id"].astype(str), "month": months})
    weight = (
        panel[["customer_id", "month"]]
        .join(
            counts.groupby(["customer_id", "month"]).size().rename("n"), on=["customer_id", "month"]
        )["n"]
        .fillna(0.0)
    )
    users = panel["active_users"].to_numpy(float)

    def outcomes(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        data = prepare_panel(rows, truth)
        csat = expected_outcome(truth, data, "csat_mean")
        complaints = expected_outcome(truth, data, "complaint_rate_per_1k") / 1000.0
        return csat, complaints * users[panel.index.get_indexer(rows.index)]

    now_csat, now_complaints = outcomes(panel)
    out = {}
    for key, label in (("component_id", "components"), ("problem_id", "problems")):
        left = downtime_without(source, key, first, last)
        rows = []
        for group, lost in left.groupby(key, sort=True):
            changed = counterfactual(panel, lost)
            csat, complaints = outcomes(changed)
            at = panel.index.get_indexer(changed.index)
            rise = float(weight.iloc[at].to_numpy() @ (csat - now_csat[at]) / weight.sum())
            fewer = float((now_complaints[at] - complaints).sum() / n_months)
            rows.append({key: group, "csat_points": rise, "complaints_per_month": fewer})
        out[label] = sorted(rows, key=lambda r: -r["csat_points"])
    patterns = {c[0]: c[4] for c in COMPONENTS}
    for row in out["components"]:
        row["pattern"] = patterns.get(row["component_id"])
    return out
