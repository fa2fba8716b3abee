"""Tests of the report runner (satmodel.jobs) and the report tables (satmodel.reporting).

The runner is exercised with a tiny notebook of its own (a figure, a summary, an optional
failing cell and an optional pause) so these tests do not depend on the panel or the models;
tests/test_notebooks.py runs the real monthly report notebook on demo data.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from satmodel import reporting
from satmodel.cli import main
from satmodel.config import Config, Thresholds
from satmodel.errors import InputError
from satmodel.jobs import ReportBusyError, ReportError, ReportRequest, export_html, run_report

# The conftest's good_folder holds usage for 2025-01 and 2025-02.
MONTH = "2025-02"

TINY_CELLS = [
    ("md", "# Tiny report\n\nA notebook to test the runner."),
    (
        "parameters",
        'month: str = ""  # YYYY-MM\n'
        'data: str = ""  # source\n'
        'out_dir: str = ""  # where summary.json goes\n'
        "fail: bool = False  # raise in the last cell\n"
        "pause: float = 0.0  # seconds to sleep (concurrency tests)",
    ),
    (
        "code",
        "import time\n"
        "from matplotlib.figure import Figure\n"
        "from satmodel.reporting import write_summary\n"
        "figure = Figure(figsize=(4, 3))\n"
        "axes = figure.subplots()\n"
        "axes.plot([1, 2, 3], [2, 1, 3])\n"
        "axes.set_title(f'Tiny figure {month}')\n"
        "time.sleep(pause)\n"
        "figure",
    ),
    ("md", "Some $x^2$ maths and text."),
    (
        "code",
        "import sys\n"
        "print('a warning on stderr', file=sys.stderr)\n"
        "if fail:\n"
        "    raise RuntimeError('boom in the tiny notebook')\n"
        "written = write_summary({'month': month, 'value': 1.5}, out_dir)",
    ),
]


def write_tiny_notebook(path: Path) -> Path:
    cells = []
    for kind, text in TINY_CELLS:
        if kind == "md":
            cells.append(new_markdown_cell(text))
        else:
            cell = new_code_cell(text)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            cells.append(cell)
    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_notebook(tmp_path_factory.mktemp("nb") / "tiny.ipynb")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    from conftest import GOOD_TABLES, write_tables

    return write_tables(tmp_path / "data", GOOD_TABLES)


def run(tiny: Path, data: Path, out: Path, **kwargs):
    kwargs.setdefault("month", MONTH)
    return run_report(ReportRequest(data=data, out=out, notebook=tiny, progress=False, **kwargs))


EXTERNAL = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|import\s*\(\s*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//""",
    re.IGNORECASE,
)


def external_references(html: str) -> list[str]:
    """Script, link, image, import and CSS url() references to another host."""
    return [m.group(0) for m in EXTERNAL.finditer(html)]


# --------------------------------------------------------------------------------------
# the runner


def test_report_writes_the_four_files_atomically(tiny, data, tmp_path):
    out = tmp_path / "reports"
    folder = run(tiny, data, out)
    assert folder == out.resolve() / MONTH
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json",
        "report.html",
        "report.ipynb",
        "summary.json",
    ]
    assert sorted(p.name for p in out.iterdir()) == [f".{MONTH}.lock", MONTH]  # no leftovers

    summary = json.loads((folder / "summary.json").read_text())
    assert summary == {"month": MONTH, "value": 1.5}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    assert manifest["month"] == MONTH
    assert manifest["parameters"]["month"] == MONTH
    assert manifest["parameters"]["data"] == str(data.resolve())
    assert manifest["output_dir"] == str(folder)
    assert manifest["parameters"]["out_dir"] == str(folder)  # the final path, not the staging
    assert {"python", "satmodel", "papermill", "nbconvert", "pandas"} <= set(manifest["packages"])
    assert set(manifest["inputs"]) == {
        str(data.resolve() / f"{t}.csv") for t in ("customers", "usage", "requests", "surveys")
    }
    assert all(v.startswith("sha256:") for v in manifest["inputs"].values())
    assert {"resolve", "execute", "html", "total"} <= set(manifest["timings_s"])
    assert manifest["outputs"]["summary.json"].startswith("sha256:")

    executed = nbformat.read(folder / "report.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and f'month = "{MONTH}"' in injected[0].source


def test_html_has_no_code_no_prompts_and_no_external_requests(tiny, data, tmp_path):
    folder = run(tiny, data, tmp_path / "reports")
    html = (folder / "report.html").read_text()
    assert "<title>Service and satisfaction report 2025-02</title>" in html
    assert "Tiny report" in html  # markdown kept
    assert "data:image/png;base64," in html  # the figure, embedded
    assert "write_summary" not in html and "time.sleep" not in html  # no code
    body = re.sub(r"<style.*?</style>", "", html, flags=re.DOTALL)
    assert 'class="jp-InputPrompt' not in body and 'class="jp-OutputPrompt' not in body
    assert "In&nbsp;[" not in body and "Out[" not in body and "jp-InputArea-editor" not in body
    assert "hl-ipython3" not in body and "highlight" not in body
    assert "a warning on stderr" not in html  # stderr is kept in report.ipynb only
    assert external_references(html) == []
    for cdn in ("cdnjs", "mathjax", "require.js", "mermaid.esm", "unpkg"):
        assert cdn not in html.lower().replace("mathjax_url", "")


@pytest.mark.slow
def test_rerun_is_idempotent_and_replaces_the_report(tiny, data, tmp_path):
    out = tmp_path / "reports"
    first = run(tiny, data, out)
    summary = (first / "summary.json").read_bytes()
    marker = first / "stale.txt"
    marker.write_text("from the earlier run")
    second = run(tiny, data, out)
    assert second == first
    assert (second / "summary.json").read_bytes() == summary
    assert not marker.exists()  # the folder was replaced as a whole
    assert sorted(p.name for p in out.iterdir()) == [f".{MONTH}.lock", MONTH]


@pytest.mark.slow
def test_failed_run_keeps_the_good_report_and_writes_failed(tiny, data, tmp_path):
    out = tmp_path / "reports"
    good = run(tiny, data, out)
    before = {p.name: p.read_bytes() for p in good.iterdir()}
    with pytest.raises(ReportError, match="boom in the tiny notebook") as info:
        run(tiny, data, out, parameters={"fail": True})
    assert "previous report was kept" in str(info.value)
    assert {p.name: p.read_bytes() for p in good.iterdir() if p.is_file()} == before
    failed = good / "failed"
    assert sorted(p.name for p in failed.iterdir()) == [
        "error.txt",
        "manifest.json",
        "report.ipynb",
    ]
    manifest = json.loads((failed / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["failed_step"] == "execute"
    assert "RuntimeError" in (failed / "error.txt").read_text()
    executed = nbformat.read(failed / "report.ipynb", as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors and errors[0].ename == "RuntimeError"
    assert not (out / f".{MONTH}.partial").exists()
    # a later good run replaces the folder, failed/ included
    run(tiny, data, out)
    assert not (good / "failed").exists()


def test_failed_first_run_leaves_only_failed(tiny, data, tmp_path):
    out = tmp_path / "reports"
    with pytest.raises(ReportError, match="no earlier report"):
        run(tiny, data, out, parameters={"fail": True})
    assert sorted(p.name for p in (out / MONTH).iterdir()) == ["failed"]


def test_second_run_of_the_same_month_is_refused_while_locked(tiny, data, tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    with (out / f".{MONTH}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(ReportBusyError, match="another run is building it"):
            run(tiny, data, out)
    assert not (out / MONTH).exists()


@pytest.mark.slow
def test_two_concurrent_cli_runs_one_refused(tiny, data, tmp_path):
    """Two real processes: the second finds the lock held and exits 1 with a clear line."""
    out = tmp_path / "reports"
    script = (
        "import sys; from satmodel.jobs import ReportRequest, run_report\n"
        "from satmodel.cli import main\n"
        "from satmodel.errors import SatmodelError\n"
        "try:\n"
        f"    run_report(ReportRequest(month={MONTH!r}, data=sys.argv[1], out=sys.argv[2], notebook=sys.argv[3],"
        " progress=False, parameters={'pause': float(sys.argv[4])}))\n"
        "except SatmodelError as exc:\n"
        "    print(exc, file=sys.stderr); sys.exit(exc.exit_code)\n"
    )
    args = [sys.executable, "-c", script, str(data), str(out), str(tiny)]
    first = subprocess.Popen([*args, "4"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / f".{MONTH}.partial").exists():
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.1)
    second = subprocess.run([*args, "0"], stderr=subprocess.PIPE, text=True, timeout=120)
    assert second.returncode == 1
    assert "another run is building it" in second.stderr
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert (out / MONTH / "report.html").is_file()


@pytest.mark.slow
def test_backfill_builds_every_month(tiny, data, tmp_path):
    out = tmp_path / "reports"
    folders = run_report(
        ReportRequest(
            data=data,
            out=out,
            notebook=tiny,
            progress=False,
            from_month="2025-01",
            to_month="2025-02",
        )
    )
    assert [f.name for f in folders] == ["2025-01", "2025-02"]
    for folder in folders:
        assert json.loads((folder / "summary.json").read_text())["month"] == folder.name


# --------------------------------------------------------------------------------------
# parameters, validated before anything runs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--month", "2025-13"], "--month '2025-13': expected a month as YYYY-MM"),
        (["--month", "25-02"], "expected a month as YYYY-MM"),
        (["--month", "2030-01"], "month 2030-01: outside the data's months 2025-01..2025-02"),
        (["--month", "2025-02", "--from", "2025-01"], "cannot be combined"),
        (["--to", "2025-02"], "--to needs --from"),
        (["--from", "2025-03", "--to", "2025-02"], "is after"),
    ],
)
def test_cli_bad_month_exits_2(argv, message, data, tmp_path, capsys):
    code = main(
        ["report", "--data", str(data), "--out", str(tmp_path / "r"), "--quiet", *argv]
        + ["--allow-outside"]  # tmp paths lie outside the project's data/ and reports/
    )
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_cli_missing_source_exits_2(tmp_path, capsys):
    code = main(
        ["report", "--data", str(tmp_path / "nope.duckdb"), "--out", str(tmp_path)]
        + ["--allow-outside"]
    )
    assert code == 2
    assert "not found" in capsys.readouterr().err


def test_out_is_a_file_exits_2(data, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    argv = ["report", "--data", str(data), "--out", str(tmp_path / "file"), "--allow-outside"]
    assert main(argv) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_input_error_before_kernel_start(tiny, data, tmp_path):
    with pytest.raises(InputError):
        run(tiny, data, tmp_path / "r", month="2025-1")


@pytest.mark.parametrize(
    ("window", "now", "expected"),
    [
        (("2024-11", "2026-10"), datetime(2026, 11, 27, tzinfo=UTC), "2026-10"),
        (("2024-11", "2026-11"), datetime(2026, 11, 27, tzinfo=UTC), "2026-10"),  # Nov unfinished
        (("2024-11", "2026-11"), datetime(2026, 12, 1, tzinfo=UTC), "2026-11"),
        (("2025-01", "2025-02"), datetime(2026, 11, 27, tzinfo=UTC), "2025-02"),
    ],
)
def test_last_complete_month(window, now, expected):
    assert reporting.last_complete_month(window, now) == expected


def test_no_complete_month_is_input_error():
    with pytest.raises(InputError, match="no complete month"):
        reporting.last_complete_month(("2026-11", "2026-11"), datetime(2026, 11, 5, tzinfo=UTC))


def test_default_month_is_last_complete_month(tiny, data, tmp_path):
    folder = run_report(ReportRequest(data=data, out=tmp_path / "r", notebook=tiny, progress=False))
    assert folder.name == "2025-02"


def test_export_html_removes_cdn_scripts_even_for_mermaid(tmp_path):
    nb = new_notebook(
        cells=[new_markdown_cell("# T\n\n$$a^2$$\n\n```mermaid\ngraph TD; A-->B\n```")]
    )
    nbformat.write(nb, tmp_path / "n.ipynb")
    html = export_html(tmp_path / "n.ipynb", tmp_path / "n.html", "T").read_text()
    assert external_references(html) == []
    assert "cdnjs" not in html and "<script src=" not in html


# --------------------------------------------------------------------------------------
# the report tables, on a hand-made panel


def make_panel() -> pd.DataFrame:
    rows = []
    for shift in (0.0, 1.0):
        rows += [
            # customer, segment, avail, downtime, p95, exp avail, exp p95, tickets, breach,
            # res median, exp res, users, complaints, csat_n, csat_mean, top2
            (
                "c1",
                "enterprise",
                99.99,
                4.0,
                300 + 100 * shift,
                99.95,
                300,
                4,
                0.25,
                3.0,
                4,
                1000,
                2,
                10,
                4.5,
                0.9,
            ),
            (
                "c2",
                "enterprise",
                99.5,
                216.0 + 100 * shift,
                900,
                99.9,
                800,
                2,
                0.5,
                30.0,
                24,
                500,
                3,
                5,
                3.0,
                0.2,
            ),
            ("c3", "smb", 100.0, 0.0, 700, None, None, 0, None, None, None, 0, 0, 0, None, None),
        ]
    columns = [
        "customer_id",
        "segment",
        "availability_pct",
        "downtime_minutes",
        "latency_p95_ms",
        "expected_availability_pct",
        "expected_latency_p95_ms",
        "tickets",
        "sla_breach_rate",
        "resolution_hours_median",
        "expected_resolution_hours",
        "active_users",
        "complaints",
        "csat_n",
        "csat_mean",
        "csat_top2_rate",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame.insert(1, "month", ["2025-01"] * 3 + ["2025-02"] * 3)
    return frame


def test_monthly_kpis_are_response_and_user_weighted():
    monthly = reporting.monthly_kpis(make_panel()).set_index("month")
    jan = monthly.loc["2025-01"]
    assert jan["responses"] == 15
    assert jan["csat_mean"] == pytest.approx((10 * 4.5 + 5 * 3.0) / 15)
    assert jan["csat_top2_pct"] == pytest.approx(100 * (9 + 1) / 15)
    assert jan["complaint_rate_per_1k"] == pytest.approx(1000 * 5 / 1500)
    assert jan["customers"] == 3


def test_headline_kpis_change_against_previous_month():
    panel = make_panel()
    panel.loc[panel["month"] == "2025-02", "complaints"] = [4, 5, 0]
    kpis = reporting.headline_kpis(panel, "2025-02").set_index("kpi")
    assert kpis.at["complaint_rate_per_1k", "value"] == pytest.approx(6.0)
    assert kpis.at["complaint_rate_per_1k", "previous"] == pytest.approx(1000 * 5 / 1500)
    assert kpis.at["complaint_rate_per_1k", "trailing_mean"] == pytest.approx(1000 * 5 / 1500)
    assert kpis.at["complaint_rate_per_1k", "higher_is_better"] is False
    assert math.isnan(
        reporting.headline_kpis(panel, "2025-01").set_index("kpi").at["csat_mean", "previous"]
    )


def test_slo_attainment_and_error_budget():
    config = Config(thresholds=Thresholds(slo_availability_pct=99.9, slo_latency_p95_ms=800))
    slo = reporting.slo_attainment(make_panel(), config, "2025-01").set_index("segment")
    budget = 0.001 * 31 * 24 * 60  # 44.64 minutes per customer in January
    ent = slo.loc["enterprise"]
    assert ent["customers"] == 2
    assert ent["availability_met_pct"] == pytest.approx(50.0)
    assert ent["error_budget_used_pct"] == pytest.approx(100 * (4 + 216) / (2 * budget))
    assert ent["customers_over_budget"] == 1
    assert ent["latency_met_pct"] == pytest.approx(50.0)
    assert ent["tickets"] == 6
    assert ent["resolution_sla_breach_pct"] == pytest.approx(100 * (4 * 0.25 + 2 * 0.5) / 6)
    assert list(slo.index) == ["enterprise", "smb", reporting.ALL_SEGMENTS]
    assert slo.loc[reporting.ALL_SEGMENTS, "customers"] == 3


def test_expectation_gaps_use_each_customers_expectation():
    config = Config()
    gaps = reporting.expectation_gaps(make_panel(), config, "2025-02")
    assert list(gaps["customer_id"]) == ["c2", "c1"]
    assert gaps.iloc[0]["missed"] == "availability, latency, resolution"
    assert gaps.iloc[1]["missed"] == "latency"  # 400 ms against the 300 ms c1 expects


def test_summary_is_deterministic_json_with_stable_keys(tmp_path):
    panel = make_panel()
    config = Config()

    class Validation:
        rows = {"customers": 3, "surveys": 30}
        rejected = pd.DataFrame(
            [("surveys", "csat", "outside 1..5", 2, "7")],
            columns=["table_name", "column_name", "reason", "rows", "example"],
        )

    class Source:
        location = tmp_path

    data = reporting.ReportData(
        month="2025-02",
        window=("2025-01", "2025-02"),
        source=Source(),
        validation=Validation(),
        config=config,
        panel=panel,
    )
    kpis = reporting.headline_kpis(panel, data.month)
    slo = reporting.slo_attainment(panel, config, data.month)
    gaps = reporting.expectation_gaps(panel, config, data.month)
    quality = reporting.data_quality(Validation())
    reasons = reporting.quarantine_reasons(Validation())
    models = reporting.ModelSection(notes=["no models in this test"])
    drivers = reporting.driver_table(models)
    summary = reporting.build_summary(data, kpis, slo, gaps, quality, reasons, models, drivers)
    assert list(summary) == [
        "schema_version",
        "month",
        "data_window",
        "kpis",
        "service_levels",
        "gaps",
        "drivers",
        "targets",
        "data_quality",
        "notes",
        "warnings",
        "status",
    ]
    assert summary["data_quality"]["rows_quarantined"] == 2
    assert summary["gaps"]["customers_missing_any"] == 2
    assert summary["kpis"]["csat_mean"]["value"] == pytest.approx(
        (10 * 4.5 + 5 * 3.0) / 15, abs=1e-6
    )
    (tmp_path / "a").mkdir()
    first = reporting.write_summary(summary, tmp_path / "a")
    again = reporting.build_summary(data, kpis, slo, gaps, quality, reasons, models, drivers)
    second = reporting.write_summary(again, tmp_path)
    assert first.read_bytes() == second.read_bytes()
    json.loads(first.read_text())  # valid JSON: NaN written as null
    assert "NaN" not in first.read_text()
    assert reporting.write_summary(summary, "") is None


def test_show_is_deterministic_html():
    kpis = reporting.headline_kpis(make_panel(), "2025-02")
    html = reporting.show(kpis, caption="x", key="kpis").to_html()
    assert html == reporting.show(kpis, caption="x", key="kpis").to_html()
    assert "CSAT, mean score" in html and "This month" in html


@pytest.mark.skipif(sys.platform != "linux", reason="flock semantics tested on Linux")
def test_lock_file_is_kept_and_reusable(tiny, data, tmp_path):
    out = tmp_path / "reports"
    run(tiny, data, out)
    lock = out / f".{MONTH}.lock"
    assert lock.is_file() and f"pid {os.getpid()}" in lock.read_text()


def test_notebooks_come_from_package_data():
    from satmodel.errors import SatmodelError
    from satmodel.resources import notebook_path

    found = notebook_path("04_monthly_report.ipynb")
    assert found.is_file() and found.parent.name == "notebooks"
    with pytest.raises(SatmodelError) as info:
        notebook_path("no_such_notebook.ipynb")
    message = str(info.value)
    assert "no_such_notebook.ipynb" in message and "04_monthly_report.ipynb" in message


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_published_files_get_the_mode_open_gives(tiny, data, tmp_path, mask):
    """report.html and manifest.json were 0600 (mkstemp) beside a 0644 notebook: every
    published file gets what a plain open() gives under the umask."""
    before = os.umask(mask)
    try:
        folder = run(tiny, data, tmp_path / "reports")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(before)
    expected = plain.stat().st_mode & 0o777
    assert expected == 0o666 & ~mask
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert {"report.html", "manifest.json", "report.ipynb", "summary.json"} <= set(modes)
    assert modes == dict.fromkeys(modes, expected)


def test_report_command_lists_the_files_it_wrote(tiny, data, tmp_path, monkeypatch, capsys):
    """The "wrote" line names every published file (it left out report.html and the CSV)."""
    import dataclasses

    import satmodel.jobs.report as jobs_report

    real = jobs_report.run_report
    monkeypatch.setattr(
        jobs_report,
        "run_report",
        lambda request: real(dataclasses.replace(request, notebook=tiny, progress=False)),
    )
    out = tmp_path / "reports"
    main(["report", "--month", MONTH, "--data", str(data), "--out", str(out), "--quiet"])
    (wrote,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("wrote")]
    folder = out.resolve() / MONTH
    assert wrote == f"wrote {folder}/ ({', '.join(sorted(p.name for p in folder.iterdir()))})"
    assert "report.html" in wrote
