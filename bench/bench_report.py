"""Benchmark: ``satmodel report`` end to end against the same steps called directly in Python.

Both run in the same invocation, each in a fresh Python process (so both pay interpreter start
and imports):

- **report**: ``satmodel report --month M --data SRC --out TMP`` (papermill starts a kernel and
  executes notebooks/04_monthly_report.ipynb, nbconvert writes the HTML, plus summary and
  manifest);
- **direct**: this script with ``--direct``: the notebook's code cells executed in-process with the
  same parameters, every displayed object rendered as Jupyter would (figures to PNG, tables to
  HTML), summary.json written.

The papermill + nbconvert overhead is ``(report - direct) / report``. Targets: report <= 60 s
and overhead <= 25 % on the default demo data (500 customers, 24 months).

Usage::

    python bench/bench_report.py                      # data/satmodel.duckdb, or a fresh demo
    python bench/bench_report.py --data data/satmodel.duckdb --month 2026-10 --repeat 2
    python bench/bench_report.py --quick              # one run of each (the default data)
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "04_monthly_report.ipynb"
TARGET_TOTAL_S = 60.0
TARGET_OVERHEAD = 0.25


def render(obj) -> None:
    """Render a displayed object the way the Jupyter kernel does (the cost papermill pays too)."""
    if obj is None:
        return
    from matplotlib.figure import Figure

    if isinstance(obj, Figure):
        obj.savefig(io.BytesIO(), format="png", bbox_inches="tight")
        return
    for method in ("_repr_html_", "_repr_markdown_"):
        if hasattr(obj, method):
            getattr(obj, method)()
            return
    repr(obj)


def run_direct(data: str, month: str, out_dir: str) -> None:
    """Execute the notebook's code cells in this process, with the report's parameters."""
    import IPython.display
    import matplotlib
    import nbformat

    matplotlib.use("Agg")
    IPython.display.display = lambda *objects, **_: [render(o) for o in objects]
    nb = nbformat.read(NOTEBOOK, as_version=4)
    namespace: dict = {"__name__": "__bench__"}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(
            "" if line.lstrip().startswith(("%", "!")) else line
            for line in cell.source.splitlines()
        )
        if "parameters" in cell.metadata.get("tags", []):
            source += f"\nmonth = {month!r}\ndata = {data!r}\nout_dir = {out_dir!r}\n"
        tree = ast.parse(source)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<cell>", "exec"), namespace)  # noqa: S102 - the notebook's own code
        if last is not None:
            render(eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace))  # noqa: S307


def timed(command: list[str], env: dict | None = None) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def default_data(workdir: Path) -> Path:
    """data/satmodel.duckdb when it exists, else the default demo generated into workdir."""
    existing = ROOT / "data" / "satmodel.duckdb"
    if existing.is_file():
        return existing
    from satmodel.demo import generate_demo

    print("data/satmodel.duckdb not found: generating the default demo (500 customers, 24 months)")
    began = time.perf_counter()
    generate_demo(workdir / "demo", duckdb_path=workdir / "demo.duckdb", progress=False)
    print(f"  demo generated in {time.perf_counter() - began:.1f} s")
    return workdir / "demo.duckdb"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data source (default: data/satmodel.duckdb or a new demo)")
    parser.add_argument("--month", help="month to report (default: the last complete month)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (median reported)")
    parser.add_argument("--quick", action="store_true", help="one run of each (run_all.py --quick)")
    parser.add_argument("--direct", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1
    if args.direct:
        run_direct(args.data, args.month, args.out)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        workdir = Path(tmp)
        data = Path(args.data).resolve() if args.data else default_data(workdir)
        month = args.month
        if month is None:
            from satmodel.reporting import data_window, last_complete_month
            from satmodel.sources import open_source

            source = open_source(data)
            month = last_complete_month(data_window(source))
            source.close()
        satmodel = str(Path(sys.executable).with_name("satmodel"))
        env = {**os.environ, "MPLBACKEND": "Agg"}
        report_s, direct_s = [], []
        for i in range(args.repeat):
            out = workdir / f"reports-{i}"
            report_s.append(
                timed(
                    [satmodel, "report", "--month", month, "--data", str(data), "--out", str(out)]
                    + ["--allow-outside"]
                    + ["--quiet"]
                )
            )
            direct_out = workdir / f"direct-{i}"
            direct_out.mkdir()
            direct_s.append(
                timed(
                    [sys.executable, __file__, "--direct", "--data", str(data), "--month", month]
                    + ["--out", str(direct_out)],
                    env=env,
                )
            )
            same = (out / month / "summary.json").read_bytes() == (
                direct_out / "summary.json"
            ).read_bytes()
            manifest = json.loads((out / month / "manifest.json").read_text())
        report, direct = statistics.median(report_s), statistics.median(direct_s)
        overhead = (report - direct) / report
        timings = manifest["timings_s"]
        print(f"data: {data} month {month}; runs: {args.repeat}; cpus: {os.cpu_count()}")
        print(f"satmodel report, end to end : {report:6.1f} s   (target <= {TARGET_TOTAL_S:.0f} s)")
        print(f"same steps, direct Python   : {direct:6.1f} s")
        print(
            f"papermill + nbconvert share : {100 * overhead:6.1f} %   "
            f"(target <= {100 * TARGET_OVERHEAD:.0f} %)"
        )
        print(
            "manifest timings (s): "
            + ", ".join(f"{k} {v}" for k, v in timings.items())
            + "   (cells = time inside the kernel)"
        )
        print(f"summary.json identical in both: {same}")
        ok = report <= TARGET_TOTAL_S and overhead <= TARGET_OVERHEAD
        print("targets met" if ok else "TARGET MISSED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
