"""The job: one parameterized notebook run into ``OUT/KEY/``, atomically.

Every run (monthly report, proposal, case study) goes through :func:`run_job`: lock, sweep of
killed runs, staging folder, papermill on a private IPC kernel, HTML without code, summary
check, manifest, atomic publish, and ``failed/`` on error. A failed run leaves the previous good
output untouched and raises :class:`~satmodel.jobs.errors.ReportError` (CLI exit 1).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from satmodel.errors import InputError
from satmodel.jobs.confinement import confine
from satmodel.jobs.errors import ReportError
from satmodel.jobs.files import (
    check_target,
    clear_own,
    disk_full_message,
    keep_failed,
    lock,
    make_staging,
    publish,
    sha256,
    sweep_stale,
    writable_out,
    write_json,
)
from satmodel.jobs.html import export_html
from satmodel.jobs.inputs import (
    inspect_source,
    kernel_env,
    notebook_source,
    resolve_data,
)
from satmodel.jobs.kernel import ipc_kernel_manager
from satmodel.jobs.parameters import check_key, check_parameters, check_text

PACKAGES = (
    "satmodel",
    "pandas",
    "numpy",
    "scipy",
    "statsmodels",
    "matplotlib",
    "seaborn",
    "duckdb",
    "pyarrow",
    "papermill",
    "nbconvert",
    "nbformat",
    "ipykernel",
    "jupyter_client",
)
MANIFEST_VERSION = 1


def versions() -> dict[str, str]:
    """Python's and every listed package's version."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def error_text(exc: BaseException, where: Path) -> str:
    """One line for a failure: the failing cell, a full disk, or the exception."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return f"cell {exc.cell_index + 1} raised {exc.ename}: {exc.evalue}".strip()
    full = disk_full_message(exc, where)
    if full:
        return full
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"


@dataclass(frozen=True)
class Job:
    """One notebook run: where it goes, what it is called, and what it is given.

    Attributes
    ----------
    key : the folder name under ``out`` (a month, or a proposal's slug).
    kind : ``report`` or ``proposal``: the file stem and the start of every message.
    title : the HTML page title.
    data : the resolved source (may hold a password: never written anywhere).
    out : the resolved parent folder; ``shown_out``: as the user named it.
    notebook : the notebook to run.
    fingerprints : input fingerprints for the manifest.
    leading : the notebook parameters that name the run (month...).
    parameters : the other notebook parameters (after data and out_dir).
    manifest : extra manifest fields.
    """

    key: str
    kind: str
    title: str
    data: Path | str
    out: Path
    shown_out: str
    notebook: Path
    fingerprints: dict[str, str]
    leading: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    resolve_seconds: float = 0.0


def _execute(job: Job, staging: Path, params: dict, progress: bool, timeout) -> dict[str, float]:
    """Run the notebook and export its HTML into ``staging``; the step timings."""
    import papermill

    stem = job.kind
    began = time.perf_counter()
    with ipc_kernel_manager(env=kernel_env(job.data)) as manager_class:
        papermill.execute_notebook(
            str(job.notebook),
            str(staging / f"{stem}.ipynb"),
            parameters=params,
            kernel_name="python3",
            progress_bar=progress,
            log_output=False,
            execution_timeout=timeout,
            report_mode=False,
            kernel_manager_class=manager_class,
        )
    return {"execute": round(time.perf_counter() - began, 3)}


def _stderr_and_cell_time(executed_path: Path) -> tuple[int, float]:
    import nbformat

    executed = nbformat.read(executed_path, as_version=4)
    cells = [c.get("metadata", {}).get("papermill", {}) for c in executed.cells]
    stderr = sum(
        1
        for c in executed.cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stderr"
    )
    return stderr, round(sum(c.get("duration") or 0 for c in cells), 3)


def run_job(job: Job, progress: bool, wait: bool, timeout: float | None) -> Path:
    """Execute one notebook into ``out/key/`` atomically, or keep it under ``failed/``.

    Raises
    ------
    InputError
        When the output folder (or a staging path of this key) is a link or was not written
        by satmodel, before anything runs.
    ReportBusyError, ReportError
    """
    key, stem, out = job.key, job.kind, job.out
    target = out / key
    staging = out / f".{key}.partial"
    params = {**job.leading, "data": notebook_source(job.data), "out_dir": str(staging)}
    params.update(job.parameters)
    check_parameters(params)
    with lock(out / f".{key}.lock", f"{job.kind} {key}", wait):
        sweep_stale(out)  # staging folders of killed runs of other keys
        check_target(target, str(Path(job.shown_out) / key))
        for own in (staging, out / f".{key}.old"):
            clear_own(own)
        try:
            make_staging(staging, key)
        except OSError as exc:
            raise ReportError(
                f"{job.kind} {key} failed at stage: {error_text(exc, staging)}"
            ) from exc
        manifest: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION,
            "status": "running",
            **job.manifest,
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "parameters": {**params, "out_dir": str(target)},
            "output_dir": str(target),
            "notebook": {"path": str(job.notebook), "fingerprint": sha256(job.notebook)},
            "inputs": job.fingerprints,
            "packages": versions(),
            "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "timings_s": {"resolve": round(job.resolve_seconds, 3)},
        }
        timings = manifest["timings_s"]
        step, where = "execute", staging / f"{stem}.ipynb"
        try:
            timings.update(_execute(job, staging, params, progress, timeout))
            step, where = "html", staging / f"{stem}.html"
            began = time.perf_counter()
            export_html(staging / f"{stem}.ipynb", where, title=job.title)
            timings["html"] = round(time.perf_counter() - began, 3)
            step, where = "summary", staging / "summary.json"
            if not where.is_file():
                raise ReportError(f"{job.kind} {key}: the notebook did not write summary.json")
            manifest["stderr_outputs"], timings["cells"] = _stderr_and_cell_time(
                staging / f"{stem}.ipynb"
            )
            step, where = "publish", target
            manifest["status"] = "ok"
            manifest["outputs"] = {
                path.name: sha256(path)
                for path in sorted(staging.iterdir())
                if path.is_file() and not path.name.startswith(".")
            }
            timings["total"] = round(sum(v for k, v in timings.items() if k != "cells"), 3)
            write_json(staging / "manifest.json", manifest)
            publish(staging, target)
        except KeyboardInterrupt:
            manifest.update(status="failed", failed_step=step, error="interrupted")
            keep_failed(staging, target, manifest, "interrupted", stem)
            raise
        except Exception as exc:
            _fail(job, manifest, step, error_text(exc, where), staging, target, exc)
    return target


def _fail(
    job: Job,
    manifest: dict[str, Any],
    step: str,
    error: str,
    staging: Path,
    target: Path,
    exc: BaseException,
) -> None:
    """Keep the failed run under ``failed/`` and raise the one-line ReportError."""
    stem, key = job.kind, job.key
    manifest.update(status="failed", failed_step=step, error=error)
    try:
        failed = keep_failed(staging, target, manifest, error, stem)
    except OSError as again:
        raise ReportError(
            f"{job.kind} {key} failed at {step}: {error}; the failed notebook could not be "
            f"kept either ({error_text(again, target / 'failed')})"
        ) from exc
    kept = (
        f"the previous {job.kind} was kept"
        if (target / f"{stem}.html").exists()
        else f"no earlier {job.kind} of this {'month' if stem == 'report' else 'name'}"
    )
    raise ReportError(
        f"{job.kind} {key} failed at {step}: {error}; failed notebook in {failed}/ ({kept})"
    ) from exc


def run_notebook(
    notebook: str | os.PathLike,
    out: str | os.PathLike,
    key: str,
    parameters: dict[str, Any],
    data: str | os.PathLike | None = None,
    kind: str = "report",
    title: str | None = None,
    manifest: dict[str, Any] | None = None,
    progress: bool = True,
    wait: bool = False,
    timeout: float | None = 3600,
    allow_outside: bool = True,
) -> Path:
    """Run any parameterized notebook into ``out/key/`` with the report's guarantees.

    Writes ``<kind>.ipynb`` (executed), ``<kind>.html`` (no code, offline), ``summary.json``
    (written by the notebook into its ``out_dir`` parameter) and ``manifest.json``.

    Parameters
    ----------
    notebook : the notebook to run; it must take ``data`` and ``out_dir`` parameters.
    out : the parent folder.
    key : the output folder's name (no path separator).
    parameters : the other notebook parameters.
    data : the data source (as for :func:`satmodel.jobs.report.run_report`).
    kind : ``report`` or ``proposal``: the output files' stem and the start of messages.
    title : the HTML page title.
    manifest : extra manifest fields (e.g. ``{"case_study": "olist_delivery"}``).
    progress, wait, timeout, allow_outside : as for :class:`satmodel.jobs.report.ReportRequest`.

    Returns
    -------
    Path
        The output folder.
    """
    began = time.perf_counter()
    check_key(key)
    check_text({"--data": data, "--out": out})
    check_parameters(dict(parameters))
    roots = confine(data, out, allow_outside)
    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        raise InputError(f"notebook {notebook}: not found")
    out_path = writable_out(out)
    data_path = resolve_data(data)
    _, fingerprints = inspect_source(data_path, allowed_roots=roots)
    job = Job(
        key=key,
        kind=kind,
        title=title or f"{kind} {key}",
        data=data_path,
        out=out_path,
        shown_out=str(out),
        notebook=notebook,
        fingerprints=fingerprints,
        parameters=dict(parameters),
        manifest=dict(manifest or {}),
        resolve_seconds=time.perf_counter() - began,
    )
    return run_job(job, progress=progress, wait=wait, timeout=timeout)
