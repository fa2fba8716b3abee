"""Run every ``bench/bench_*.py`` in turn and summarise (``make bench``).

Usage: ``python bench/run_all.py [--quick] [--only NAME] [--list]``

Each benchmark runs in its own process with this interpreter, one after the other (they
measure time and memory: never in parallel), its output streamed as it comes. A benchmark's
exit code is its verdict: 0 every target met, 1 a target missed, anything else a crash.
``--quick`` is passed on to every benchmark (smaller data, indicative targets only).
``bench_spark.py`` (DuckDB vs Spark ``local[2]``, 20M requests; 2M with ``--quick``) is one of
them; ``--skip-spark`` leaves it out on a machine without Java. Without ``--quick``,
``bench_features.py`` runs a second time with ``--scale``: the DuckDB scaling curve (10M, 50M,
200M requests under a 2 GB memory limit; several minutes and about 4 GB of disk).

Exit code: 0 when every benchmark exits 0, else 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Extra runs of a benchmark, with their options, in a full (not --quick) run.
FULL_RUNS = {"bench_features": [["--scale"]]}


def find_benchmarks(only: str | None = None) -> list[Path]:
    """The benchmark scripts, sorted by name (``only``: name must contain it)."""
    found = sorted(HERE.glob("bench_*.py"))
    return [p for p in found if only is None or only in p.stem]


def verdict(code: int) -> str:
    return {0: "PASS", 1: "FAIL"}.get(code, f"ERROR (exit {code})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    parser.add_argument("--only", help="run only benchmarks whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and stop")
    parser.add_argument("--skip-spark", action="store_true", help="leave out bench_spark.py")
    args = parser.parse_args(argv)
    scripts = find_benchmarks(args.only)
    if args.skip_spark:
        scripts = [p for p in scripts if p.stem != "bench_spark"]
    if args.list or not scripts:
        for script in scripts:
            print(script.name)
        if not scripts:
            print("no benchmark found", file=sys.stderr)
            return 1
        return 0
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    runs = []
    for script in scripts:
        runs.append((script, ["--quick"] if args.quick else []))
        if not args.quick:
            runs += [(script, options) for options in FULL_RUNS.get(script.stem, [])]
    results = []
    for script, options in runs:
        command = [sys.executable, str(script), *options]
        name = " ".join([script.name, *options])
        print(f"\n=== {name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(command, cwd=HERE.parent, env=env)
        results.append((name, code, time.perf_counter() - start))
    print("\n=== summary")
    for name, code, seconds in results:
        print(f"{verdict(code):<18} {name:<36} {seconds:8.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
