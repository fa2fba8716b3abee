"""The demo world: a realistic synthetic company with a known true model.

:func:`generate_demo` writes every canonical table of docs/contract.md as ``<out_dir>/<table>.parquet``
plus ``truth.json``, and optionally loads them into a DuckDB file. Everything is drawn from
one seed and is fully deterministic: the same arguments give byte-identical files.

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
   (some global, ``customer_id`` null) and ``usage``. Every timestamp lies in the months
   generated: an incident still open at the end of the data ends in the last month.
4. **The panel**: the service tables are written and :func:`satmodel.features.build_panel`
   computes the service panel from them, exactly as an analyst would.
5. **Outcomes** (:func:`draw_outcomes`): the true linear predictors are evaluated on that panel
   with patsy, so the truth is exactly what a statsmodels formula computes. CSAT per survey
   response follows an ordinal logit, complaints per customer-month an NB2 with exposure
   ``active_users``. By default every customer also has hidden persistent effects on both,
   tied to its persistent latency (:mod:`satmodel.demo.effects`): the truth's params are
   the within-customer effects, and a pooled fit is biased for the latency terms. The truth
   is written to ``truth.json``; :func:`true_required_level` answers the inverse question
   from it.

Modules
-------
- :mod:`satmodel.demo.tables`: Arrow schemas and column builders of the canonical tables.
- :mod:`satmodel.demo.world`: customers, latent service quality and the service tables.
- :mod:`satmodel.demo.outcomes`: the true models, the outcomes drawn from them, truth.json.
- :mod:`satmodel.demo.effects`: the hidden customer effects and the pooled bias they cause.
- :mod:`satmodel.demo.inverse`: the true lever level that reaches a target (no fitting).
- :mod:`satmodel.demo.contracts`: contracts with revenue, churn from a known hazard, the true
  revenue at risk, and the monthly operating cost (``opex``).
- :mod:`satmodel.demo.store`: Parquet writing and the DuckDB load (the file is marked as the
  demo's own, and an existing file it did not make is only written into with ``force``).
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
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from satmodel.calendar import add_months, current_month
from satmodel.demo.components import add_components, true_component_costs
from satmodel.demo.contracts import churn_truth, make_contracts, make_opex
from satmodel.demo.effects import draw_customer_effects, expected_pooled_bias
from satmodel.demo.inverse import OUTCOMES, true_outcome, true_required_level
from satmodel.demo.outcomes import (
    COMPLAINT_CATEGORIES,
    default_truth,
    draw_outcomes,
    truth_document,
)
from satmodel.demo.store import MARKER_TABLE, check_duckdb_target, load_duckdb, write_parquet
from satmodel.demo.tables import SEGMENTS, TABLE_NAMES, arrow_schema, frame_to_table
from satmodel.demo.world import (
    make_changes,
    make_incidents,
    make_requests,
    make_tickets,
    make_usage,
    make_world,
    placeholder_complaints,
)
from satmodel.errors import InputError

__all__ = [
    "COMPLAINT_CATEGORIES",
    "MARKER_TABLE",
    "OUTCOMES",
    "SEGMENTS",
    "TABLE_NAMES",
    "DemoResult",
    "arrow_schema",
    "default_truth",
    "draw_outcomes",
    "generate_demo",
    "true_outcome",
    "true_required_level",
]


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


def default_start(months: int, now: datetime | None = None) -> str:
    """The first month of a demo of ``months`` months that ends at the last complete month.

    Parameters
    ----------
    months : number of months of the demo (>= 1).
    now : the current time (UTC); defaults to now.
    """
    return add_months(current_month(now), -_check_int("months", months, 1))


def _build_panel(folder: Path) -> pd.DataFrame:
    """The service panel of the tables in ``folder``, computed by :mod:`satmodel.features`."""
    from satmodel.features import build_panel
    from satmodel.sources import open_source

    source = open_source(folder)
    try:
        return build_panel(source)
    finally:
        with contextlib.suppress(Exception):
            source.close()


def _component_truth(folder: Path, panel: pd.DataFrame, surveys: pd.DataFrame, truth) -> dict:
    """The true cost of every component and problem (``truth.json``: components, problems)."""
    from satmodel.sources import open_source

    source = open_source(folder)
    try:
        return true_component_costs(source, panel, surveys, truth)
    finally:
        with contextlib.suppress(Exception):
            source.close()


def generate_demo(
    out_dir: str | os.PathLike,
    customers: int = 500,
    months: int = 24,
    seed: int = 20261,
    start_month: str | None = None,
    duckdb_path: str | os.PathLike | None = None,
    progress: bool = True,
    force: bool = False,
    customer_effects: bool = True,
    components: bool = True,
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
    start_month : str, optional
        First month, ``YYYY-MM``. By default the months end at the last complete calendar
        month (UTC) of today, so a fresh demo is never a stale feed (:func:`default_start`).
    duckdb_path : path, optional
        When given, every table is also loaded into this DuckDB file (one table per canonical
        table; the file is rebuilt in a temporary file and renamed into place atomically).
        The file is marked as the demo's (table :data:`MARKER_TABLE`); a demo file is
        rewritten freely, any other existing file only with ``force``.
    progress : bool
        Show a tqdm progress bar on stderr.
    force : bool
        Also write into an existing DuckDB file the demo did not make: its canonical tables
        are replaced, its other tables kept.
    customer_effects : bool
        Give every customer hidden persistent effects on CSAT and complaints, correlated
        with its persistent latency (:mod:`satmodel.demo.effects`), so that pooled
        estimates of the latency terms are biased. Off, the files are those of a world
        without them (the other draws are the same either way).
    components : bool
        IT components, recurring problems, planned maintenance and failed changes that
        cause incidents (:mod:`satmodel.demo.components`); ``truth.json`` then states each
        component's and problem's true cost. Off, no components table is written and the
        incidents and changes are those of a world without them.

    Returns
    -------
    DemoResult

    Raises
    ------
    InputError
        For a bad argument (named in the message with its value), or a ``duckdb_path`` the
        demo did not make without ``force``; nothing is written then.

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
    start = _parse_month(start_month if start_month is not None else default_start(months))
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"out_dir: {str(out)!r} exists and is not a folder")
    if duckdb_path is not None:
        check_duckdb_target(duckdb_path, force)
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
        world, extra = make_world(customers, months, start, seed)
        rngs = extra["rngs"]
        tables["customers"] = extra["customers"]
        tables["usage"] = make_usage(world)
        bar.update()
        step("requests")
        tables["requests"] = make_requests(world, rngs["requests"])
        bar.update()
        step("incidents")
        tables["incidents"], started = make_incidents(world, rngs["incidents"])
        bar.update()
        step("tickets")
        tables["tickets"] = make_tickets(world, started, rngs["tickets"])
        bar.update()
        step("changes")
        tables["changes"] = make_changes(world, rngs["changes"])
        if components:
            tables["components"], tables["incidents"], tables["changes"] = add_components(
                world, tables["incidents"], tables["changes"], rngs["components"]
            )
        bar.update()

        step("write")
        written = [name for name in TABLE_NAMES if name != "components" or components]
        paths = {name: staging / f"{name}.parquet" for name in written}
        for name in written:
            if name in tables:
                write_parquet(tables[name], paths[name])
        write_parquet(placeholder_complaints(world), paths["complaints"])
        bar.update()

        step("panel")
        panel = _build_panel(staging)
        bar.update()

        step("outcomes")
        truth_models = default_truth()
        if customer_effects:
            truth_models["customer_effects"] = draw_customer_effects(world, rngs["effects"])
        surveys, complaints = draw_outcomes(panel, truth_models, rngs["outcomes"])
        tables["surveys"] = frame_to_table("surveys", surveys)
        tables["complaints"] = frame_to_table("complaints", complaints)
        # the value world draws from a stream appended after world.py's (others unchanged)
        value_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(len(rngs),)))
        truth_models["churn"] = churn_truth()
        contracts, truth_models["churn"]["revenue_at_risk"] = make_contracts(
            panel, surveys, truth_models["churn"], value_rng
        )
        tables["contracts"] = frame_to_table("contracts", contracts)
        opex = make_opex(sorted(panel["month"].unique()), customers, value_rng)
        tables["opex"] = frame_to_table("opex", opex)
        for name in ("surveys", "complaints", "contracts", "opex"):
            write_parquet(tables[name], paths[name])
        row_counts = {name: tables[name].num_rows for name in written}
        if customer_effects:
            truth_models["customer_effects"]["pooled_bias"] = expected_pooled_bias(
                truth_models, panel
            )
        truth = truth_document(truth_models, customers, months, seed, start, row_counts)
        truth["churn"] = truth_models["churn"]
        if components:
            truth.update(_component_truth(staging, panel, surveys, truth))
        with (staging / "truth.json").open("w", encoding="utf-8") as handle:
            json.dump(truth, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        final = {name: out / f"{name}.parquet" for name in written}
        final["truth"] = out / "truth.json"
        for name in written:
            os.replace(paths[name], final[name])
        for name in set(TABLE_NAMES) - set(written):  # a table of an earlier run, e.g. components
            with contextlib.suppress(FileNotFoundError):
                (out / f"{name}.parquet").unlink()
        os.replace(staging / "truth.json", final["truth"])
        bar.update()

        db = None
        if duckdb_path is not None:
            step("duckdb")
            db = Path(duckdb_path)
            load_duckdb(final, db, truth, force)
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
