"""Benchmark the service panel's request aggregation against hand-written DuckDB and pandas.

Usage: ``python bench/bench_features.py [--rows N | --quick] [--repeats 3] [--data DIR]
[--scale [--scale-rows N,N,...] [--memory-limit 2GB]]``

Data: N request rows (default 20,000,000; ``--quick`` 2,000,000), seeded, 500 customers over
24 months (2024-01..2025-12), time-ordered like a log, written as Parquet (row groups of 1M)
into a temporary folder with ``customers.parquet`` and a small ``surveys.parquet`` (one
response per customer-month: the contract requires an outcome table).

Compared in one run, each measurement in a fresh subprocess (peak RSS from that process's
``getrusage``), interleaved, median of ``--repeats`` runs:

- ``satmodel``: :func:`satmodel.features.build_panel` on the source opened from the folder,
  after ``quarantine`` (done before the clock starts and reported separately as
  ``validate``). This is the whole features step: the request metrics read through the clean
  views (with their row rules), the month grid, the joins, lags, and the pandas panel
  (customers x months).
- ``satmodel_expr``: only satmodel's ibis request-metrics expression, on the raw view (no row
  rules): shows what the ibis layer costs next to the hand-written SQL.
- ``duckdb_sql``: one hand-written DuckDB query: per customer-month count, error rate and
  ``quantile_cont(latency_ms, [0.5, 0.95, 0.99])`` straight from the Parquet file.
- ``pandas``: ``read_parquet`` + ``groupby`` (size, mean, quantile).

Targets (PASS/FAIL): satmodel <= 1.25x the DuckDB time, >= 3x faster than pandas, peak RSS
<= 1.5x DuckDB's. Exit code 0 when every target passes, 1 otherwise.

``--scale`` (instead of the comparison): the DuckDB scaling curve: build_panel on 10M, 50M and
200M request rows (``--scale-rows 10000000,50000000,200000000``) with DuckDB's memory_limit at
2GB (``--memory-limit``) and a temp directory, each size followed by the hand-written query
under the same limit (exact quantiles cannot spill: it runs out of memory); then seconds per
10M rows at each size against the smallest (1.00 = linear).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_DUCKDB_RATIO = 1.25
TARGET_PANDAS_SPEEDUP = 3.0
TARGET_MEMORY_RATIO = 1.5
METHODS = ("satmodel", "satmodel_expr", "duckdb_sql", "duckdb_sql_tuned", "pandas")
CUSTOMERS = 500
MONTHS = 24
START = "2024-01-01"


# ------------------------------------------------------------------------------------ data


def generate(folder: Path, rows: int, seed: int = 42, chunk: int = 2_000_000) -> Path:
    """Write customers, requests and surveys as Parquet into ``folder`` (reused if present)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "meta.json"
    meta = {"rows": rows, "seed": seed, "customers": CUSTOMERS, "months": MONTHS, "version": 1}
    if stamp.exists() and json.loads(stamp.read_text()) == meta:
        return folder
    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:05d}" for i in range(CUSTOMERS)])
    pd.DataFrame(
        {
            "customer_id": ids,
            "segment": rng.choice(["enterprise", "mid", "smb"], CUSTOMERS),
            "region": rng.choice(["eu", "us", "apac"], CUSTOMERS),
            "tier": rng.choice(["gold", "silver"], CUSTOMERS),
            "expected_availability_pct": 99.9,
            "expected_latency_p95_ms": 800.0,
            "expected_resolution_hours": 24.0,
        }
    ).to_parquet(folder / "customers.parquet", index=False)
    month_starts = pd.date_range(START, periods=MONTHS + 1, freq="MS", tz="UTC")
    mid = month_starts[:-1] + pd.Timedelta(days=14)
    pd.DataFrame(
        {
            "response_id": [f"r{i}" for i in range(CUSTOMERS * MONTHS)],
            "customer_id": np.repeat(ids, MONTHS),
            "ts": np.tile(mid.to_numpy(), CUSTOMERS),
            "csat": rng.integers(1, 6, CUSTOMERS * MONTHS),
            "nps": rng.integers(0, 11, CUSTOMERS * MONTHS),
        }
    ).to_parquet(folder / "surveys.parquet", index=False)

    first = month_starts[0].value // 1000  # microseconds
    last = month_starts[-1].value // 1000
    edges = np.linspace(first, last, -(-rows // chunk) + 1).astype(np.int64)
    schema = pa.schema(
        [
            ("customer_id", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("latency_ms", pa.float64()),
            ("ok", pa.bool_()),
        ]
    )
    temp = folder / "requests.parquet.tmp"
    with pq.ParquetWriter(temp, schema, compression="snappy") as writer:
        done = 0
        for k in range(len(edges) - 1):
            n = min(chunk, rows - done)
            ts = np.sort(rng.integers(edges[k], edges[k + 1], n))
            latency = np.round(rng.lognormal(5.3, 0.7, n), 2)
            table = pa.table(
                {
                    "customer_id": pa.array(ids[rng.integers(0, CUSTOMERS, n)]),
                    "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                    "latency_ms": latency,
                    "ok": rng.random(n) > 0.01,
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=1_000_000)
            done += n
    temp.replace(folder / "requests.parquet")
    stamp.write_text(json.dumps(meta))
    return folder


# --------------------------------------------------------------------------------- workers

HAND_SQL = """
SELECT customer_id, strftime(ts, '%Y-%m') AS month, count(*) AS requests,
       avg(CASE WHEN ok THEN 0.0 ELSE 1.0 END) AS error_rate,
       quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS q
FROM read_parquet('{path}')
GROUP BY ALL
"""
# The same with satmodel's month trick (UTC month from the stored microseconds, no time-zone
# library per row): shown for information, so the comparison above is not flattering.
TUNED_SQL = """
SELECT customer_id, month, requests, error_rate, q FROM (
  SELECT customer_id,
         year(make_timestamp(epoch_us(ts))) * 100 + month(make_timestamp(epoch_us(ts))) AS m,
         printf('%04d-%02d', m // 100, m % 100) AS month, count(*) AS requests,
         avg(CASE WHEN ok THEN 0.0 ELSE 1.0 END) AS error_rate,
         quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS q
  FROM read_parquet('{path}')
  GROUP BY customer_id, m
)
"""


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t0: float, c0: float) -> tuple[float, float]:
    """Wall seconds and CPU seconds (every thread of the process) since ``_clock()``."""
    return time.perf_counter() - t0, time.process_time() - c0


def _satmodel(folder: Path, settings: dict | None = None) -> tuple[float, object, dict]:
    import ibis.backends.duckdb  # noqa: F401  (imports are not timed, for every method)

    from satmodel import features
    from satmodel.sources import open_source

    source = open_source(folder, duckdb_settings=settings)
    t0 = time.perf_counter()
    features.ensure_clean(source)  # quarantine: satmodel's validate step, not timed below
    validate_seconds = time.perf_counter() - t0
    t0, c0 = _clock()
    panel = features.build_panel(source)
    seconds, cpu = _since(t0, c0)
    out = panel[panel.requests > 0][
        ["customer_id", "month", "requests", "error_rate", "latency_p50_ms", "latency_p95_ms"]
        + ["latency_p99_ms"]
    ]
    extra = {"validate_seconds": validate_seconds, "panel_rows": len(panel), "cpu_seconds": cpu}
    return seconds, out, extra


def _satmodel_expr(folder: Path) -> tuple[float, object, dict]:
    import ibis.backends.duckdb  # noqa: F401

    from satmodel.config import Thresholds
    from satmodel.features import prepare_duckdb, quiet, request_metrics
    from satmodel.sources import open_source

    source = open_source(folder)
    with quiet():
        prepare_duckdb(source.con)
        backend = source.ibis()
        requests = backend.table("requests", database="raw")
        t0, c0 = _clock()
        out = request_metrics(requests, Thresholds()).to_pyarrow().to_pandas()
        seconds, cpu = _since(t0, c0)
    return seconds, out, {"cpu_seconds": cpu}


def _duckdb_sql(
    folder: Path, settings: dict | None = None, sql: str = HAND_SQL
) -> tuple[float, object, dict]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for key, value in (settings or {}).items():
        con.execute(f"SET {key} = '{value}'")
    t0, c0 = _clock()
    out = con.execute(sql.format(path=folder / "requests.parquet")).df()
    seconds, cpu = _since(t0, c0)
    q = np.stack(out.pop("q").to_numpy())
    out["latency_p50_ms"], out["latency_p95_ms"], out["latency_p99_ms"] = q.T
    return seconds, out, {"cpu_seconds": cpu}


def _pandas(folder: Path) -> tuple[float, object, dict]:
    import pandas as pd

    t0, c0 = _clock()
    df = pd.read_parquet(folder / "requests.parquet")
    df["month"] = df["ts"].dt.tz_convert(None).to_numpy().astype("datetime64[M]")
    df["failed"] = ~df["ok"]
    groups = df.groupby(["customer_id", "month"], sort=False)
    out = groups.agg(requests=("ok", "size"), error_rate=("failed", "mean"))
    q = groups["latency_ms"].quantile([0.5, 0.95, 0.99]).unstack()
    q.columns = ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"]
    out = out.join(q).reset_index()
    out["month"] = out["month"].dt.strftime("%Y-%m")
    seconds, cpu = _since(t0, c0)
    return seconds, out, {"cpu_seconds": cpu}


def worker(method: str, folder: Path, result: Path | None) -> None:
    """Run one measurement and print one JSON line (seconds, peak_rss_mb, extra)."""
    run = {
        "satmodel": _satmodel,
        "satmodel_expr": _satmodel_expr,
        "duckdb_sql": _duckdb_sql,
        "duckdb_sql_tuned": lambda folder: _duckdb_sql(folder, sql=TUNED_SQL),
        "pandas": _pandas,
    }[method]
    seconds, out, extra = run(folder)
    if result is not None:
        out.to_parquet(result, index=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "rows_out": len(out), **extra}))


def measure(method: str, folder: Path, result: Path | None = None) -> dict:
    command = [sys.executable, __file__, "--worker", method, "--data", str(folder)]
    if result is not None:
        command += ["--result", str(result)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------- runs


def compare_outputs(results: dict[str, Path]) -> str:
    """Max relative difference of every method's request metrics vs the hand-written SQL."""
    import pandas as pd

    key = ["customer_id", "month"]
    columns = ["requests", "error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"]
    base = pd.read_parquet(results["duckdb_sql"]).set_index(key).sort_index()[columns]
    notes = []
    for method, path in results.items():
        if method == "duckdb_sql":
            continue
        other = pd.read_parquet(path)
        other["month"] = other["month"].astype(str)
        other = other.set_index(key).sort_index()[columns]
        if len(other) != len(base) or not other.index.equals(base.index):
            notes.append(f"{method}: DIFFERENT customer-months ({len(other)} vs {len(base)})")
            continue
        scale = base.abs().where(base.abs() > 0, 1.0)
        diff = ((other - base).abs() / scale).max().max()
        notes.append(f"{method}: max relative difference {diff:.1e}")
    return "; ".join(notes)


def run_comparison(folder: Path, rows: int, repeats: int, label: str = "") -> bool:
    print(f"data: {folder} ({rows:,} request rows, {CUSTOMERS} customers x {MONTHS} months)")
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {m: [] for m in METHODS}
    results = {m: folder / f"result_{m}.parquet" for m in METHODS}
    for r in range(repeats):
        for method in METHODS:
            runs[method].append(measure(method, folder, results[method] if r == 0 else None))
            last = runs[method][-1]
            print(
                f"  run {r + 1} {method:<17} {last['seconds']:7.2f} s  "
                f"{last['cpu_seconds']:7.2f} CPU s  {last['peak_rss_mb']:7.0f} MB",
                flush=True,
            )
    print("outputs: " + compare_outputs(results))
    load = max(load_before, os.getloadavg()[0])
    cores = os.cpu_count() or 1
    print(
        f"machine: {cores} cores, 1-minute load average up to {load:.1f}"
        + ("  (BUSY: wall times are inflated, compare CPU s too)" if load > 0.75 * cores else "")
    )
    med = {
        m: {
            "seconds": statistics.median(x["seconds"] for x in runs[m]),
            "rss": statistics.median(x["peak_rss_mb"] for x in runs[m]),
            "cpu": statistics.median(x["cpu_seconds"] for x in runs[m]),
        }
        for m in METHODS
    }
    validate = statistics.median(x["validate_seconds"] for x in runs["satmodel"])
    print()
    print(f"{'method':<18}{'seconds':>10}{'CPU s':>10}{'rows/s':>14}{'peak RSS MB':>14}")
    for m in METHODS:
        s = med[m]["seconds"]
        print(f"{m:<18}{s:>10.2f}{med[m]['cpu']:>10.2f}{rows / s:>14,.0f}{med[m]['rss']:>14.0f}")
    print(f"(satmodel's quarantine before build_panel: {validate:.2f} s, not included above)")
    print()
    sat, duck, pand = med["satmodel"], med["duckdb_sql"], med["pandas"]
    checks = [
        (
            "satmodel time / DuckDB time",
            sat["seconds"] / duck["seconds"],
            f"<= {TARGET_DUCKDB_RATIO}",
            sat["seconds"] / duck["seconds"] <= TARGET_DUCKDB_RATIO,
        ),
        (
            "pandas time / satmodel time",
            pand["seconds"] / sat["seconds"],
            f">= {TARGET_PANDAS_SPEEDUP}",
            pand["seconds"] / sat["seconds"] >= TARGET_PANDAS_SPEEDUP,
        ),
        (
            "satmodel peak RSS / DuckDB",
            sat["rss"] / duck["rss"],
            f"<= {TARGET_MEMORY_RATIO}",
            sat["rss"] / duck["rss"] <= TARGET_MEMORY_RATIO,
        ),
    ]
    for m in ("satmodel_expr", "duckdb_sql_tuned"):
        print(
            f"info: {m} / duckdb_sql = {med[m]['seconds'] / duck['seconds']:.2f} (wall), "
            f"{med[m]['cpu'] / duck['cpu']:.2f} (CPU); satmodel / {m} = "
            f"{sat['seconds'] / med[m]['seconds']:.2f} (wall)"
        )
    print(f"info: satmodel / duckdb_sql CPU time = {sat['cpu'] / duck['cpu']:.2f}")
    for name, value, target, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name:<30} {value:6.2f}  (target {target}){label}")
    return all(ok for *_, ok in checks)


def run_scale(folder: Path, rows: int, memory_limit: str) -> tuple[float, float] | None:
    """build_panel on ``rows`` requests under a DuckDB memory limit: its wall and CPU seconds,
    or None when it does not complete."""
    spill = folder / "duckdb_tmp"
    spill.mkdir(exist_ok=True)
    settings = {"memory_limit": memory_limit, "temp_directory": str(spill)}
    print(f"scale: {rows:,} request rows, DuckDB memory_limit {memory_limit}, temp {spill}")
    code = (
        "import json, resource, sys, time; sys.path.insert(0, {bench!r}); "
        "import bench_features as b; from pathlib import Path; "
        "s, out, extra = b.{fn}(Path({folder!r}), {settings!r}); "
        "print(json.dumps(dict(seconds=s, rows_out=len(out), "
        "peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **extra)))"
    )
    seconds = None
    for fn in ("_satmodel", "_duckdb_sql"):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                code.format(
                    bench=str(Path(__file__).parent), fn=fn, folder=str(folder), settings=settings
                ),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        name = fn.strip("_")
        if done.returncode == 0:
            result = done.stdout.strip().splitlines()[-1]
            print(f"  {name:<12} {result}")
            if fn == "_satmodel":
                measured = json.loads(result)
                seconds = (float(measured["seconds"]), float(measured["cpu_seconds"]))
        else:
            last = [line for line in done.stderr.strip().splitlines() if "Error" in line]
            print(f"  {name:<12} FAILED: {(last or ['?'])[-1][:200]}")
    print(
        f"{'PASS' if seconds is not None else 'FAIL'}  satmodel completes under "
        f"memory_limit={memory_limit}"
    )
    return seconds


def print_curve(curve: dict[int, tuple[float, float] | None]) -> None:
    """Wall and CPU seconds per 10M rows at each size, against the smallest (1.00 = linear).

    On a shared machine the wall time of one size can wait on others' work; the CPU column
    is the steadier measure of how the work grows.
    """
    done = {rows: s for rows, s in curve.items() if s is not None}
    if not done:
        return
    smallest = min(done)
    unit = [value / smallest * 1e7 for value in done[smallest]]
    print("DuckDB scaling curve (build_panel under the memory limit)")
    print(f"  {'rows':>13} {'wall s':>8} {'CPU s':>8} {'CPU s per 10M':>14} {'vs linear':>10}")
    for rows, seconds in sorted(curve.items()):
        if seconds is None:
            print(f"  {rows:>13,} {'failed':>8}")
            continue
        wall, cpu = seconds
        per = cpu / rows * 1e7
        print(f"  {rows:>13,} {wall:>8.1f} {cpu:>8.1f} {per:>14.2f} {per / unit[1]:>9.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--quick", action="store_true", help="2,000,000 rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, help="folder for the generated data (reused)")
    parser.add_argument(
        "--scale", action="store_true", help="only the 200M-row run under a memory limit (minutes)"
    )
    parser.add_argument(
        "--scale-rows",
        default="10000000,50000000,200000000",
        help="comma-separated sizes of the scaling curve",
    )
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.data, args.result)
        return 0
    rows = 2_000_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory(prefix="bench-features-") as scratch:
        base = args.data or Path(scratch)
        if args.scale:
            curve = {}
            for size in (int(x) for x in args.scale_rows.split(",")):
                t0 = time.perf_counter()
                big = generate(base / f"requests_{size}", size)
                print(f"generated/reused {size:,} rows in {time.perf_counter() - t0:.1f} s")
                curve[size] = run_scale(big, size, args.memory_limit)
            print_curve(curve)
            return 0 if all(s is not None for s in curve.values()) else 1
        t0 = time.perf_counter()
        folder = generate(base / f"requests_{rows}", rows)
        print(f"generated/reused data in {time.perf_counter() - t0:.1f} s")
        label = "  (quick: indicative only)" if args.quick else ""
        passed = run_comparison(folder, rows, args.repeats, label)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
