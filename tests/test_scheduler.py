"""Scheduler-grade runs: exit 3 (stale feed, models not fitted), --as-of, --allow-stale,
--notify-command, --log-timestamps, one-line usage errors, the edges of features and targets,
the demo's default months and the systemd units of examples/systemd."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from satmodel import calendar, reporting
from satmodel.cli import main
from satmodel.config import Config, load_config
from satmodel.errors import InputError
from satmodel.hints import did_you_mean
from satmodel.jobs.report import scheduler_problems
from satmodel.reporting.summary import StaleNote, report_status, stale_banner

ROOT = Path(__file__).resolve().parents[1]
ISO_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 ")
# The conftest's good tables end in 2025-02: on any day after March 2025 that is a stale feed.
DATA_END = "2025-02"


@pytest.fixture(scope="module")
def status_notebook(tmp_path_factory) -> Path:
    """A tiny report notebook writing summary.json with the status of its stale_month."""
    params = new_code_cell(
        'month: str = ""  # YYYY-MM\n'
        'data: str = ""  # source\n'
        'out_dir: str = ""  # where summary.json goes\n'
        'stale_month: str = ""  # set by satmodel report'
    )
    params.metadata["tags"] = ["parameters"]
    body = new_code_cell(
        "from satmodel.reporting import write_summary\n"
        "status = {'stale': bool(stale_month), 'missing_month': stale_month or None,\n"
        "          'models_failed': []}\n"
        "written = write_summary({'month': month, 'status': status}, out_dir)"
    )
    nb = new_notebook(
        cells=[params, body],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    path = tmp_path_factory.mktemp("nb") / "status.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def report_cli(status_notebook, good_folder, tmp_path, monkeypatch):
    """``satmodel report`` on the good tables with the status notebook; returns a runner."""
    monkeypatch.setattr("satmodel.jobs.report.notebook_path", lambda name: status_notebook)
    out = tmp_path / "reports"

    def run(*extra: str) -> int:
        argv = ["report", "--data", str(good_folder), "--out", str(out), "--quiet"]
        return main([*argv, "--allow-outside", *extra])

    run.out = out
    return run


# --------------------------------------------------------------------------------------
# months: the last complete calendar month, in a time zone


def test_stale_month_is_the_last_complete_month_missing_from_the_data():
    now = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
    assert calendar.stale_month(("2024-11", "2026-10"), now) == "2026-11"
    assert calendar.stale_month(("2024-11", "2026-11"), now) is None
    assert calendar.stale_month(("2024-11", "2026-12"), now) is None  # partial current month
    assert calendar.stale_month(("2024-11", "2026-10"), date(2026, 11, 30)) is None  # --as-of


def test_months_count_in_the_calendar_time_zone():
    evening = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)  # 04:00 on 1 November in Shanghai
    assert calendar.current_month(evening) == "2026-10"
    assert calendar.current_month(evening, "Asia/Shanghai") == "2026-11"
    window = ("2026-01", "2026-10")
    assert calendar.stale_month(window, evening) is None
    assert calendar.stale_month(window, evening, "Asia/Shanghai") is None  # November unfinished
    assert calendar.last_complete_month(("2026-01", "2026-11"), evening, "Asia/Shanghai") == (
        "2026-10"
    )
    assert str(calendar.month_start("2026-11", "Asia/Shanghai")) == "2026-11-01 00:00:00+08:00"


def test_calendar_timezone_setting(tmp_path):
    assert Config().calendar.timezone == "UTC"
    path = tmp_path / "satmodel.toml"
    path.write_text('[calendar]\ntimezone = "Asia/Shanghai"\n')
    assert load_config(path).calendar.timezone == "Asia/Shanghai"
    path.write_text('[calendar]\ntimezone = "Asia/Shangai"\n')
    with pytest.raises(InputError, match="did you mean Asia/Shanghai"):
        load_config(path)
    path.write_text('[calendar]\nzone = "UTC"\n')
    with pytest.raises(InputError, match="unknown setting calendar.zone"):
        load_config(path)


# --------------------------------------------------------------------------------------
# exit 3


def test_stale_feed_exits_3_naming_the_missing_month(report_cli, capsys):
    assert report_cli() == 3
    err = capsys.readouterr().err
    missing = calendar.add_months(calendar.current_month(), -1)
    assert f"the last complete month {missing} is missing" in err
    status = json.loads((report_cli.out / DATA_END / "summary.json").read_text())["status"]
    assert status == {"stale": True, "missing_month": missing, "models_failed": []}


def test_allow_stale_and_as_of_exit_0(report_cli, capsys):
    assert report_cli("--allow-stale") == 0
    assert report_cli("--as-of", "2025-03-20") == 0  # February is the last complete month
    assert "stale" not in capsys.readouterr().err


def test_notify_command_gets_exit_code_and_report_and_lines_are_timestamped(
    report_cli, tmp_path, capsys
):
    seen = tmp_path / "seen.json"
    script = tmp_path / "notify.py"
    script.write_text(
        "import json, os, sys\n"
        "keys = ('SATMODEL_EXIT_CODE', 'SATMODEL_REPORT', 'SATMODEL_MESSAGE')\n"
        "json.dump({k: os.environ[k] for k in keys}, open(sys.argv[1], 'w'))\n"
    )
    command = f"{sys.executable} {script} {seen}"
    assert report_cli("--notify-command", command, "--log-timestamps") == 3
    got = json.loads(seen.read_text())
    assert got["SATMODEL_EXIT_CODE"] == "3"
    assert Path(got["SATMODEL_REPORT"]) == (report_cli.out / DATA_END).resolve()
    assert "stale data" in got["SATMODEL_MESSAGE"]
    captured = capsys.readouterr()
    lines = captured.out.splitlines() + captured.err.splitlines()
    assert lines and all(ISO_LINE.match(line) for line in lines), lines


def test_notify_command_is_not_run_on_success(report_cli, tmp_path):
    seen = tmp_path / "ran"
    command = f"{sys.executable} -c \"open({str(seen)!r}, 'w')\""
    assert report_cli("--allow-stale", "--notify-command", command) == 0
    assert not seen.exists()


def test_scheduler_problems_read_the_summary_status(tmp_path):
    status = {"stale": True, "missing_month": "2026-11", "models_failed": ["csat", "top2"]}
    (tmp_path / "summary.json").write_text(json.dumps({"month": "2026-10", "status": status}))
    problems = scheduler_problems(tmp_path)
    assert len(problems) == 2
    assert "2026-11" in problems[0] and "csat, top2" in problems[1]
    assert scheduler_problems(tmp_path, allow_stale=True) == [problems[1]]
    (tmp_path / "summary.json").write_text(json.dumps({"month": "2026-10"}))
    assert scheduler_problems(tmp_path) == []


def _report_data(tmp_path, responses=None) -> reporting.ReportData:
    from test_report import make_panel

    class Source:
        location = tmp_path

    return reporting.ReportData(
        month="2025-02",
        window=("2025-01", "2025-02"),
        source=Source(),
        validation=None,
        config=None,
        panel=make_panel(),
        responses=responses,
    )


def test_report_status_names_the_stale_month_and_the_models_not_fitted(tmp_path):
    responses = pd.DataFrame({"customer_id": ["c1"], "csat": [4]})
    data = _report_data(tmp_path, responses)
    banner = stale_banner(data, "2026-11")
    assert "November 2026 (2026-11), the last complete month, is missing" in banner.data
    assert [n for n in data.notes if isinstance(n, StaleNote)][0].month == "2026-11"
    failed = reporting.ModelSection(warnings=["models: could not be fitted (singular)"])
    status = report_status(data, failed)
    assert status["stale"] and status["missing_month"] == "2026-11"
    expected = ["csat", "top2"]
    if {"complaints", "active_users"} <= set(data.panel.columns):
        expected.append("complaints")
    assert status["models_failed"] == expected
    skipped = reporting.ModelSection(notes=["models were not fitted (fit_models = False)"])
    assert report_status(data, skipped)["models_failed"] == []


def test_current_data_has_no_stale_banner(tmp_path):
    data = _report_data(tmp_path)
    assert stale_banner(data, "").data == ""
    assert report_status(data, reporting.ModelSection())["stale"] is False


# --------------------------------------------------------------------------------------
# usage errors, features --out, targets --target


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "satmodel", *args], capture_output=True, text=True)


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["report", "--alow-stale"], "did you mean --allow-stale"),
        (["reprot"], "did you mean report?"),
        (["fit", "--data", "x.csv", "--formula", "y ~ x", "--family", "negbim"], "negbin?"),
        (["report", "--as-of", "2026-13-01"], "expected a day as YYYY-MM-DD"),
    ],
)
def test_usage_errors_are_one_line_with_a_hint(argv, hint):
    result = _cli(*argv)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert hint in lines[0] and "--help" in lines[0] and "usage:" not in lines[0]
    assert lines[0].startswith(f"satmodel {argv[0]}: error: ") or argv[0] == "reprot"


def test_features_out_suffix_decides_the_format(good_folder, tmp_path):
    bad = _cli("features", "--data", str(good_folder), "--out", str(tmp_path / "panel.txt"))
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and ".parquet or .csv" in bad.stderr
    assert not (tmp_path / "panel.txt").exists()
    for name in ("panel.csv", "panel.parquet"):
        done = _cli("features", "--data", str(good_folder), "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
    from_csv = pd.read_csv(tmp_path / "panel.csv", dtype={"customer_id": str})
    from_parquet = pd.read_parquet(tmp_path / "panel.parquet")
    assert list(from_csv.columns) == list(from_parquet.columns)
    assert from_csv["customer_id"].tolist() == from_parquet["customer_id"].astype(str).tolist()


def test_targets_refuses_a_percentage_for_a_share(tmp_path):
    result = _cli(
        "targets",
        "--data",
        str(tmp_path),
        "--outcome",
        "csat_top2_rate",
        "--target",
        "80",
        "--lever",
        "latency_p95_ms",
    )
    assert result.returncode == 2
    assert "did you mean 0.80?" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_targets_suggests_the_lever_meant(tmp_path):
    result = _cli("targets", "--outcome", "csat_mean", "--target", "4", "--lever", "latency_p59_ms")
    assert result.returncode == 2 and "did you mean latency_p95_ms" in result.stderr


def test_did_you_mean():
    assert did_you_mean("enterprize", ["smb", "enterprise", "mid_market"]) == (
        "; did you mean enterprise?"
    )
    assert did_you_mean("SMB", ["smb", "enterprise"]) == "; did you mean smb?"
    assert did_you_mean("zzz", ["smb", "enterprise"]) == ""


# --------------------------------------------------------------------------------------
# the demo's default months


def test_demo_ends_at_the_last_complete_month_by_default():
    from satmodel.demo import default_start

    assert default_start(24, datetime(2026, 12, 1, tzinfo=UTC)) == "2024-12"
    assert default_start(1, datetime(2027, 1, 15, tzinfo=UTC)) == "2026-12"
    last = calendar.add_months(default_start(6), 5)
    assert last == calendar.add_months(calendar.current_month(), -1)


# --------------------------------------------------------------------------------------
# systemd units


UNITS = ROOT / "examples" / "systemd"


def test_systemd_units_are_hardened():
    service = (UNITS / "satmodel-report.service").read_text()
    for setting in (
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ReadWritePaths=",
        "PrivateTmp=true",
        "OnFailure=satmodel-report-failed@%n.service",
    ):
        assert setting in service
    timer = (UNITS / "satmodel-report.timer").read_text()
    assert "OnCalendar=*-*-01 06:30:00 UTC" in timer and "Persistent=true" in timer


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_systemd_units_verify(tmp_path):
    satmodel = Path(sys.executable).with_name("satmodel")
    if not satmodel.exists():
        satmodel = Path(sys.executable)
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/srv/satmodel/.venv/bin/satmodel", str(satmodel))
        (tmp_path / unit.name).write_text(text)
    names = sorted(str(p) for p in tmp_path.iterdir())
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


# --------------------------------------------------------------------------------------
# local-time months in the features


@pytest.mark.parametrize(
    "zone", ["UTC", "Asia/Shanghai", "America/New_York", "Europe/Berlin", "Asia/Kolkata"]
)
def test_month_key_matches_the_local_calendar(zone):
    import duckdb
    import ibis
    import numpy as np

    from satmodel.features.expressions import month_key, prepare_duckdb
    from satmodel.features.months import month_of

    rng = np.random.default_rng(3)
    boundaries = [
        pd.Timestamp(f"{m}-01").tz_localize(zone)
        for m in calendar.month_range("2025-01", "2027-01")
    ]
    # instants within 15 hours of every local month start, plus some anywhere
    near = [
        b + pd.Timedelta(minutes=int(m)) for b in boundaries for m in rng.integers(-900, 900, 8)
    ]
    anywhere = pd.to_datetime(rng.integers(1.74e9, 1.8e9, 200), unit="s", utc=True)
    stamps = pd.Series([t.tz_convert("UTC") for t in near] + list(anywhere))
    con = duckdb.connect()
    prepare_duckdb(con)
    backend = ibis.duckdb.from_connection(con)
    table = ibis.memtable(pd.DataFrame({"ts": stamps}))
    expr = table.select(month=month_key(table.ts, zone))
    got = backend.to_pyarrow(expr).column("month").to_pylist()
    assert got == [month_of(t, zone) for t in stamps]


def test_an_evening_event_is_next_month_in_shanghai():
    from satmodel.features.months import month_of, months_frame

    event = pd.Timestamp("2026-10-31T20:00Z")
    assert month_of(event) == "2026-10"
    assert month_of(event, "Asia/Shanghai") == "2026-11"
    bounds = months_frame("2026-11", "2026-11", "Asia/Shanghai").iloc[0]
    assert bounds["m_start"] <= event.timestamp() < bounds["m_end"]
    assert bounds["m_end"] - bounds["m_start"] == 30 * 86_400


# --------------------------------------------------------------------------------------
# models that degrade gracefully; no claim about a table that is not there


def test_default_models_leave_out_a_mostly_null_driver_with_a_note():
    from satmodel.models import fit_default_models

    rng = np.random.default_rng(4)
    n = 600
    responses = pd.DataFrame(
        {
            "customer_id": [f"c{i % 60}" for i in range(n)],
            "latency_p95_ms": rng.lognormal(6, 0.3, n),
            "error_rate": np.where(rng.random(n) < 0.8, np.nan, rng.beta(1, 100, n)),
            "csat": rng.integers(1, 6, n),
        }
    )
    models = fit_default_models(responses, None, identification="pooled")
    assert "error_rate" not in models["csat"].formula
    assert any("error_rate left out" in note for note in models["csat"].notes_)
    assert models["csat"].n_obs_ == n


def test_absent_or_mostly_null_drivers_are_left_out_with_a_note():
    from satmodel.features.model_view import usable_drivers

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, None, None, None]})
    drivers = [("np.log(a)", ("a",)), ("b", ("b",)), ("np.log(c)", ("c",))]
    kept, notes = usable_drivers(frame, drivers)
    assert kept == ["np.log(a)"]
    assert "column c is absent" in notes[1] and "75% of its rows have no value" in notes[0]


def test_no_gap_text_claims_nothing_about_absent_expectations(tmp_path):
    data = _report_data(tmp_path)
    month = data.panel.loc[data.panel["month"] == data.month]
    customers = month["customer_id"].nunique()
    no_gaps = pd.DataFrame(columns=["missed"])
    bare = data.panel.drop(columns=[c for c in data.panel if c.startswith("expected_")])
    data.panel = bare
    text = reporting.gaps_text(no_gaps, data).data
    assert "they expect" not in text
    assert "No customer expectations are recorded" in text and f"{customers:,}" in text
    data.panel = bare[["customer_id", "month", "segment"]]
    assert "No service measure" in reporting.gaps_text(no_gaps, data).data


def test_months_without_a_resolved_ticket_keep_their_responses():
    from satmodel.models import fit_default_models

    rng = np.random.default_rng(4)
    n = 600
    responses = pd.DataFrame(
        {
            "customer_id": [f"c{i % 60}" for i in range(n)],
            "latency_p95_ms": rng.lognormal(6, 0.3, n),
            "resolution_hours_median": np.where(rng.random(n) < 0.3, np.nan, rng.gamma(2, 4, n)),
            "csat": rng.integers(1, 6, n),
        }
    )
    models = fit_default_models(responses, None, identification="pooled")
    assert models["csat"].n_obs_ == n and models["csat"].n_dropped_ == 0
    terms = set(models["csat"].coefficients_["term"])
    assert "np.where(np.isnan(resolution_hours_median), 1.0, 0.0)" in terms
