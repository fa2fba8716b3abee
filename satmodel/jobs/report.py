"""The monthly report: ``notebooks/04_monthly_report.ipynb`` into ``OUT/YYYY-MM/``.

Writes ``report.ipynb`` (executed), ``report.html`` (no code, offline), ``summary.json``
(written by the notebook) and ``manifest.json``, through :func:`satmodel.jobs.runner.run_job`.
:func:`scheduler_problems` reads what a built report asks a scheduler to look at (CLI exit 3).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from satmodel.calendar import stale_month
from satmodel.errors import InputError
from satmodel.jobs.confinement import confine
from satmodel.jobs.errors import ReportBusyError, ReportError
from satmodel.jobs.files import writable_out
from satmodel.jobs.inputs import inspect_source, resolve_data
from satmodel.jobs.parameters import check_parameters, check_text
from satmodel.jobs.runner import Job, run_job
from satmodel.resources import notebook_path

NOTEBOOK_NAME = "04_monthly_report.ipynb"


@dataclass(frozen=True)
class ReportRequest:
    """What to build: one month, or every month of a backfill.

    Attributes
    ----------
    month : ``YYYY-MM``; None for the last complete month in the data
        (:func:`satmodel.reporting.last_complete_month`).
    data : the data source (DuckDB file, folder of tables, ``satmodel.toml`` or a PostgreSQL
        URL); None for ``./satmodel.toml`` when present, else ``data/satmodel.duckdb``.
    out : the reports folder; the report goes to ``out/YYYY-MM/``.
    from_month, to_month : a backfill from ``from_month`` to ``to_month`` (both included;
        ``to_month`` defaults to the last complete month). Not with ``month``.
    progress : show a progress bar (cells of one month, or months of a backfill) on stderr.
    wait : when another run holds the month's lock, wait for it instead of failing.
    notebook : the notebook to run (default ``notebooks/04_monthly_report.ipynb``).
    parameters : extra notebook parameters (e.g. ``{"fit_models": False}``).
    timeout : seconds one cell may run before the run fails (None: no limit).
    now : the current time, for the default month and the stale check (tests).
    as_of : the day the run counts as (``--as-of``): the last complete calendar month is the
        month before this day's month. Overrides ``now``.
    allow_outside : False confines ``data`` and ``out`` to the project's ``data/`` and
        ``reports/`` (:mod:`satmodel.jobs.confinement`); True (the default in Python: the
        caller is code, not a user) allows any path.
    pseudonymise : show every customer id as its keyed pseudonym
        (:func:`satmodel.reporting.pseudonym`); the key never reaches the notebook.
    """

    month: str | None = None
    data: str | os.PathLike | None = None
    out: str | os.PathLike = "reports"
    from_month: str | None = None
    to_month: str | None = None
    progress: bool = True
    wait: bool = False
    notebook: str | os.PathLike | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = 3600
    now: datetime | None = None
    as_of: date | None = None
    allow_outside: bool = True
    pseudonymise: bool = False


def _months(request: ReportRequest, window: tuple[str, str], timezone: str) -> list[str]:
    """The months to build, each inside the data's window."""
    from satmodel.calendar import last_complete_month, month_range

    now = request.as_of or request.now
    if request.from_month is not None:
        last = request.to_month or last_complete_month(window, now, timezone)
        if request.from_month > last:
            raise InputError(f"--from {request.from_month} is after --to {last}")
        months = month_range(request.from_month, last)
    else:
        months = [request.month or last_complete_month(window, now, timezone)]
    outside = [m for m in months if not window[0] <= m <= window[1]]
    if outside:
        raise InputError(
            f"month {outside[0]}: outside the data's months {window[0]}..{window[1]}"
            + (f" ({len(outside)} months of the range are)" if len(outside) > 1 else "")
        )
    return months


def _check_request(request: ReportRequest) -> list[Path] | None:
    from satmodel.reporting import check_month

    if request.month is not None and not (request.from_month is request.to_month is None):
        raise InputError("--month cannot be combined with --from/--to")
    if request.to_month is not None and request.from_month is None:
        raise InputError("--to needs --from (the first month of the backfill)")
    for value, name in (
        (request.month, "--month"),
        (request.from_month, "--from"),
        (request.to_month, "--to"),
    ):
        if value is not None:
            check_month(value, name)
    check_text({"--data": request.data, "--out": request.out})
    check_parameters(dict(request.parameters or {}))
    return confine(request.data, request.out, request.allow_outside)


def run_report(request: ReportRequest) -> Path | list[Path]:
    """Build the monthly report of one month, or of every month of a backfill.

    Returns
    -------
    Path or list of Path
        The report folder, or one folder per month of a backfill.

    Raises
    ------
    InputError
        For a malformed month, a month outside the data, a missing source or one with a
        table-level fault, a path outside the project (when confined), a parameter with
        control characters, an unusable out folder or month folder, or pseudonym key
        (CLI exit 2), before any kernel starts.
    ReportBusyError
        When another run holds the month's lock and ``wait`` is False.
    ReportError
        When the notebook or the HTML export fails; for a backfill, after every month was
        tried, naming the months that failed.
    """
    began = time.perf_counter()
    roots = _check_request(request)
    notebook = (
        Path(request.notebook).resolve()
        if request.notebook is not None
        else notebook_path(NOTEBOOK_NAME)
    )
    if not notebook.is_file():
        raise InputError(f"notebook {notebook}: not found")
    out_path = Path(request.out).expanduser().resolve()
    if out_path.exists() and not out_path.is_dir():
        raise InputError(f"--out {request.out}: exists and is not a folder")
    data_path = resolve_data(request.data)
    zone: dict[str, str] = {}

    def remember_zone(source) -> None:
        zone["timezone"] = source.config.calendar.timezone

    window, fingerprints = inspect_source(data_path, check=remember_zone, allowed_roots=roots)
    months = _months(request, window, zone["timezone"])
    extra = dict(request.parameters or {})
    stale = stale_month(window, request.as_of or request.now, zone["timezone"])
    if stale is not None:
        extra.setdefault("stale_month", stale)
    if request.pseudonymise:
        from satmodel.reporting import pseudonym_key

        pseudonym_key(create=True)  # the notebook reads the same key
        extra["pseudonymise"] = True
    out_path = writable_out(request.out)
    resolve_seconds = time.perf_counter() - began

    def one(month: str, progress: bool) -> Path:
        job = Job(
            key=month,
            kind="report",
            title=f"Service and satisfaction report {month}",
            data=data_path,
            out=out_path,
            shown_out=str(request.out),
            notebook=notebook,
            fingerprints=fingerprints,
            leading={"month": month},
            parameters=extra,
            manifest={"month": month},
            resolve_seconds=resolve_seconds,
        )
        return run_job(job, progress=progress, wait=request.wait, timeout=request.timeout)

    if request.from_month is None:
        return one(months[0], request.progress)
    from tqdm import tqdm

    done: list[Path] = []
    failures: list[str] = []
    with tqdm(
        months, desc="report", unit="month", file=sys.stderr, disable=not request.progress
    ) as bar:
        for each in bar:
            bar.set_postfix_str(each)
            try:
                done.append(one(each, False))
            except (ReportError, ReportBusyError) as exc:
                failures.append(str(exc))
    if failures:
        raise ReportError(
            f"{len(failures)} of {len(months)} months failed: " + " | ".join(failures)
        )
    return done


def scheduler_problems(folder: str | os.PathLike, allow_stale: bool = False) -> list[str]:
    """What a built report asks a scheduler to look at (CLI exit 3), one line each.

    Read from the ``status`` block of its ``summary.json``
    (:func:`satmodel.reporting.summary.report_status`): a stale feed (unless ``allow_stale``)
    and default models that could not be fitted.

    Parameters
    ----------
    folder : the report folder (``OUT/YYYY-MM``).
    allow_stale : a stale feed is expected (``--allow-stale``): not a problem.

    Returns
    -------
    list of str
        Empty when nothing needs a look.
    """
    summary = json.loads((Path(folder) / "summary.json").read_text(encoding="utf-8"))
    status = summary.get("status") or {}
    month = summary.get("month")
    problems = []
    if status.get("stale") and not allow_stale:
        problems.append(
            f"report {month}: stale data: the last complete month {status.get('missing_month')} "
            "is missing from the data (--allow-stale accepts this)"
        )
    failed = status.get("models_failed") or []
    if failed:
        problems.append(f"report {month}: models could not be fitted: {', '.join(failed)}")
    return problems
