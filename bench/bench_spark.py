"""Benchmark the service panel on DuckDB and on Spark ``local[2]``, side by side.

Usage: ``python bench/bench_spark.py [--rows N | --quick] [--repeats 3] [--master local[2]]``

Data: N request rows (default 20,000,000, the issue's baseline; 2,000,000 with ``--quick``),
the seeded data of :mod:`bench_features` (500 customers, 24 months), written once as a lake:
one folder of Parquet part files per table. Each engine runs in a fresh subprocess. Peak
memory is the process's own peak RSS (``getrusage``) plus the peak RSS (``VmHWM``, Linux
``/proc``) of every live process below it: for Spark the JVM that runs the driver and, with
``local[...]``, the executors (a ``local-cluster`` or remote cluster's executor JVMs are not
children and are not counted):

- ``duckdb``: open the folder, quarantine, build_panel.
- ``spark``: open the same folder on Spark (no DuckDB), quarantine on Spark (rejected rows
  written beside the data), build_panel on the cluster; the JVM start is timed apart
  (``spark_start``).

The engines run in turn, ``--repeats`` rounds (default 3, 1 with ``--quick``); medians. Prints
seconds, peak RSS and the Spark / DuckDB ratios (indicative on a shared machine), and checks
that both panels agree.
Exit code 0 when they agree (Spark is not expected to beat DuckDB on one machine: it is the
scale-out path), 1 otherwise.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_features import generate  # noqa: E402 - the shared seeded data

ENGINES = ("duckdb", "spark")


def make_lake(flat: Path, lake: Path) -> Path:
    """The benchmark's Parquet files as folders of part files (one row group per part)."""
    import pyarrow.parquet as pq

    if (lake / "meta.json").exists() and (lake / "meta.json").read_text() == (
        flat / "meta.json"
    ).read_text():
        return lake
    for path in flat.glob("*.parquet"):
        target = lake / path.stem
        target.mkdir(parents=True, exist_ok=True)
        reader = pq.ParquetFile(path)
        for i in range(reader.num_row_groups):
            pq.write_table(reader.read_row_group(i), target / f"part-{i:05d}.parquet")
    (lake / "meta.json").write_text((flat / "meta.json").read_text())
    return lake


def _descendants(pid: int | None = None) -> list[int]:
    """The live processes below ``pid`` (default: this one), from Linux's /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid or os.getpid()]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _peak_kib(pid: int) -> int:
    """A live process's peak resident memory (VmHWM, KiB); 0 when it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return int(line.split()[1]) if line else 0


def run_one(engine: str, lake: str, master: str, out: str) -> dict:
    """One measurement in this process: seconds of each step and peak RSS (MiB)."""
    from satmodel.features import build_panel

    timings = {}
    start = time.perf_counter()
    if engine == "duckdb":
        from satmodel.sources import open_source
        from satmodel.validation import quarantine

        source = open_source(lake)
        quarantine(source)
    else:
        from satmodel.features import spark_session
        from satmodel.sources.spark import open_spark_source
        from satmodel.validation_spark import quarantine_spark

        session = spark_session("2g", 4, master=master)
        timings["spark_start"] = time.perf_counter() - start
        start = time.perf_counter()
        source = open_spark_source(lake, session=session)
        quarantine_spark(source, persist=False)
    timings["validate"] = time.perf_counter() - start
    start = time.perf_counter()
    panel = build_panel(source, engine=engine)
    timings["panel"] = time.perf_counter() - start
    panel.to_parquet(out, index=False)
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timings["peak_mib"] = (self_kib + sum(_peak_kib(pid) for pid in _descendants())) / 1024
    timings["total"] = timings["validate"] + timings["panel"]
    return timings


def measure(engine: str, lake: Path, master: str, out: Path) -> dict:
    command = [sys.executable, __file__, "--one", engine, "--lake", str(lake)]
    command += ["--master", master, "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{engine} run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="2M rows, 1 round")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (3; --quick: 1)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--data", default=None, help="folder to keep the data in")
    parser.add_argument("--one", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.lake, args.master, args.out)))
        return 0
    import pandas as pd

    rows = args.rows or (2_000_000 if args.quick else 20_000_000)
    with tempfile.TemporaryDirectory(prefix="satmodel-bench-spark-") as scratch:
        base = Path(args.data) if args.data else Path(scratch)
        flat = generate(base / f"flat-{rows}", rows)
        lake = make_lake(flat, base / f"lake-{rows}")
        print(f"{rows:,} requests in {lake} ({args.master} for Spark)")
        repeats = args.repeats or (1 if args.quick else 3)
        runs = {engine: [] for engine in ENGINES}
        for _ in range(repeats):
            for engine in ENGINES:
                out = Path(scratch) / f"{engine}.parquet"
                runs[engine].append(measure(engine, lake, args.master, out))
        results = {
            engine: {
                step: statistics.median(run[step] for run in runs[engine])
                for step in runs[engine][0]
            }
            for engine in ENGINES
        }
        print(f"medians of {repeats} interleaved runs each (indicative: the machine is shared)")
        print(f"{'step':<12} {'duckdb':>10} {'spark':>10} {'ratio':>8}")
        for step in ("validate", "panel", "total", "peak_mib"):
            duck, spark = results["duckdb"][step], results["spark"][step]
            print(f"{step:<12} {duck:>10.1f} {spark:>10.1f} {spark / duck:>7.2f}x")
        print(f"{'spark_start':<12} {'':>10} {results['spark']['spark_start']:>10.1f}")
        on_duckdb = pd.read_parquet(Path(scratch) / "duckdb.parquet")
        on_spark = pd.read_parquet(Path(scratch) / "spark.parquet")
        numeric = on_duckdb.select_dtypes("number").columns.drop("nps_score", errors="ignore")
        same = on_duckdb.shape == on_spark.shape and bool(
            (
                (on_duckdb[numeric] - on_spark[numeric]).abs()
                <= 1e-6 * (1 + on_duckdb[numeric].abs())
            )
            .where(on_duckdb[numeric].notna(), on_spark[numeric].isna())
            .all()
            .all()
        )
        print(f"panels agree: {'PASS' if same else 'FAIL'}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
