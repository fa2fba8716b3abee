"""Run the monthly report and sales proposals: papermill, nbconvert, summary and manifest,
written atomically.

Both go through :func:`run_notebook` (one machinery: lock, staging folder, papermill, HTML
without code, summary check, manifest, atomic publish, ``failed/`` on error).
:func:`run_proposal` runs ``notebooks/03_expectation_to_support.ipynb`` into
``OUT/<segment or customer>-csat<X>[-complaints<Y>]/`` (``proposal.ipynb``, ``proposal.html``,
``summary.json``, ``manifest.json``), checking the segment or customer against the data first.

``run_report`` executes ``notebooks/04_monthly_report.ipynb`` with papermill for one month and
writes ``OUT/YYYY-MM/``:

- ``report.ipynb``: the executed notebook (with code, for analysts);
- ``report.html``: the same without code or prompts, self-contained (figures embedded), with no
  script, style sheet or font loaded from any other host;
- ``summary.json``: headline measures, service levels, gaps, drivers, targets and data quality,
  written by :func:`satmodel.reporting.write_summary` from inside the notebook;
- ``manifest.json``: parameters, package versions, input fingerprints and timings.

Everything is built in ``OUT/.YYYY-MM.partial/`` and swapped into place only when every step
succeeded. A failed run leaves the previous good report of that month untouched, keeps the failed
notebook, the error and a manifest under ``OUT/YYYY-MM/failed/`` and raises
:class:`ReportError` (CLI exit 1). A lock file ``OUT/.YYYY-MM.lock`` (``fcntl.flock``) keeps two
runs of the same month from interleaving: the second one stops at once with a clear message, or
waits for the first when ``wait=True``.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from satmodel.errors import InputError, SatmodelError
from satmodel.reporting import (
    check_month,
    data_window,
    last_complete_month,
    month_range,
    write_summary,
)

__all__ = [
    "ReportError",
    "ReportBusyError",
    "default_notebook",
    "default_proposal_notebook",
    "export_html",
    "run_notebook",
    "run_proposal",
    "run_report",
    "write_summary",
]

NOTEBOOK_NAME = "04_monthly_report.ipynb"
TEMPLATES = Path(__file__).resolve().parent / "templates"
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


class ReportError(SatmodelError):
    """A report run failed (CLI exit 1); the message says where the failed notebook is."""


class ReportBusyError(SatmodelError):
    """Another run holds the lock of this month's report (CLI exit 1)."""


def default_notebook(name: str = NOTEBOOK_NAME) -> Path:
    """A notebook of the project (default: the monthly report): ``notebooks/`` of the source
    tree, or the installed copy."""
    for candidate in (
        Path(__file__).resolve().parents[1] / "notebooks" / name,
        Path(__file__).resolve().parent / "notebooks" / name,
    ):
        if candidate.is_file():
            return candidate
    raise SatmodelError(f"notebook {name} not found next to the satmodel package")


# --------------------------------------------------------------------------------------
# helpers


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


@contextlib.contextmanager
def _lock(path: Path, what: str, wait: bool) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for one run (``what``: e.g. ``report 2026-10``)."""
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ReportBusyError(
                f"{what}: another run is building it (lock {path} is held); "
                "try again when it has finished, or pass --wait"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing the file releases the lock


def _exchange(new: Path, target: Path) -> bool:
    """Atomically swap two directories (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(
        at_fdcwd, os.fsencode(new), at_fdcwd, os.fsencode(target), ctypes.c_uint(rename_exchange)
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(target))


def _publish(staging: Path, target: Path) -> None:
    """Put the finished report in place of ``target`` (replacing an earlier report)."""
    if not target.exists():
        staging.rename(target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging)  # now holds the earlier report
        return
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _keep_failed(
    staging: Path, target: Path, manifest: dict[str, Any], error: str, stem: str = "report"
) -> Path:
    """Move what a failed run produced to ``target/failed/`` (replacing an earlier failure)."""
    target.mkdir(exist_ok=True)
    failed = target / "failed"
    pending = target / ".failed.partial"
    shutil.rmtree(pending, ignore_errors=True)
    pending.mkdir()
    notebook = staging / f"{stem}.ipynb"
    if notebook.is_file():
        notebook.replace(pending / f"{stem}.ipynb")
    (pending / "error.txt").write_text(error + "\n", encoding="utf-8")
    _write_json(pending / "manifest.json", manifest)
    old = target / ".failed.old"
    shutil.rmtree(old, ignore_errors=True)
    if failed.exists():
        failed.rename(old)
    pending.rename(failed)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    return failed


@contextlib.contextmanager
def _ipc_kernel_manager() -> Iterator[type]:
    """A kernel manager class whose kernel talks over Unix sockets in a private folder.

    Over TCP (the default) any local user can reach the kernel's ports and ipykernel warns about
    it on stderr at every run; IPC sockets live in a 0700 temporary folder removed afterwards.
    """
    from jupyter_client.manager import AsyncKernelManager

    folder = tempfile.mkdtemp(prefix="satmodel-kernel-")
    prefix = os.path.join(folder, "kernel")

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", prefix)
            super().__init__(**kwargs)

    try:
        yield IPCKernelManager
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------------------
# HTML


def _html_notebook(nb):
    """A copy of the executed notebook for the HTML: no stderr streams, no hidden cells."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {"remove-cell", "parameters", "injected-parameters"}:
            continue
        if cell.cell_type == "code":
            if "remove-output" in tags:
                cell.outputs = []
            cell.outputs = [
                out
                for out in cell.outputs
                if not (out.get("output_type") == "stream" and out.get("name") == "stderr")
            ]
        cells.append(cell)
    nb.cells = cells
    return nb


def export_html(notebook: str | os.PathLike, html: str | os.PathLike, title: str) -> Path:
    """Export an executed notebook to self-contained HTML without code, prompts or CDN requests.

    Uses the ``satmodel_report`` template (``satmodel/templates/``): the lab template without
    its require.js, MathJax, mermaid and widget script tags; figures are embedded as data URIs.

    Parameters
    ----------
    notebook : the executed ``.ipynb``.
    html : the file to write.
    title : the page title.

    Returns
    -------
    Path
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["title"] = title
    exporter = HTMLExporter(
        template_name="satmodel_report",
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
        mathjax_url="",
        require_js_url="",
        mermaid_js_url="",
        mermaid_layout_elk_js_url="",
        widget_renderer_url="",
        jupyter_widgets_base_url="",
    )
    body, _ = exporter.from_notebook_node(_html_notebook(nb))
    target = Path(html)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(target)
    return target


# --------------------------------------------------------------------------------------
# the run


def _resolve_data(data: str | os.PathLike | None) -> Path | str:
    """The data source the notebook will open: an absolute path, or a database URL as given."""
    from satmodel.config import is_url

    if data not in (None, "") and is_url(str(data)):
        return str(data)
    if data not in (None, ""):
        return Path(data).expanduser().resolve()
    from satmodel.config import CONFIG_FILE_NAME, load_config

    if Path(CONFIG_FILE_NAME).is_file():
        return Path(CONFIG_FILE_NAME).resolve()
    return Path(load_config(None).source).resolve()


def _inspect_source(data: Path) -> tuple[tuple[str, str] | None, dict[str, str]]:
    """Data window and input fingerprints of a source (opened read-only, not validated)."""
    from satmodel.sources import open_source

    source = open_source(data)
    try:
        fingerprints = source.fingerprint()
        if source.config.path is not None:
            path = Path(source.config.path).resolve()
            fingerprints[str(path)] = _sha256(path)
        return data_window(source), fingerprints
    finally:
        source.close()


def _error_text(exc: BaseException) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return f"cell {exc.cell_index + 1} raised {exc.ename}: {exc.evalue}".strip()
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"


@dataclass
class _Job:
    """One notebook run: where it goes, what it is called, and what it is given."""

    key: str  # the folder name under ``out`` (a month, or a proposal's slug)
    kind: str  # "report" or "proposal": the file stem and the start of every message
    title: str  # the HTML page title
    data: Path
    out: Path
    notebook: Path
    fingerprints: dict[str, str]
    leading: dict[str, Any]  # the notebook parameters that name the run (month...)
    parameters: dict[str, Any]  # the other notebook parameters (after data and out_dir)
    manifest: dict[str, Any] = field(default_factory=dict)  # extra manifest fields
    resolve_seconds: float = 0.0


def _run_job(job: _Job, progress: bool, wait: bool, timeout: float | None) -> Path:
    """Execute one notebook into ``out/key/`` atomically, or keep it under ``failed/``."""
    import nbformat
    import papermill

    key, stem, out = job.key, job.kind, job.out
    target = out / key
    with _lock(out / f".{key}.lock", f"{job.kind} {key}", wait):
        staging = out / f".{key}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        params = {
            **job.leading,
            "data": str(job.data),
            "out_dir": str(staging),
            **job.parameters,
        }
        manifest: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION,
            "status": "running",
            **job.manifest,
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "parameters": params,
            "output_dir": str(target),
            "notebook": {"path": str(job.notebook), "fingerprint": _sha256(job.notebook)},
            "inputs": job.fingerprints,
            "packages": _versions(),
            "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "timings_s": {"resolve": round(job.resolve_seconds, 3)},
        }
        timings = manifest["timings_s"]
        executed_path = staging / f"{stem}.ipynb"
        step = "execute"
        try:
            began = time.perf_counter()
            with _ipc_kernel_manager() as manager_class:
                papermill.execute_notebook(
                    str(job.notebook),
                    str(executed_path),
                    parameters=params,
                    kernel_name="python3",
                    progress_bar=progress,
                    log_output=False,
                    execution_timeout=timeout,
                    report_mode=False,
                    kernel_manager_class=manager_class,
                )
            timings["execute"] = round(time.perf_counter() - began, 3)
            step = "html"
            began = time.perf_counter()
            export_html(executed_path, staging / f"{stem}.html", title=job.title)
            timings["html"] = round(time.perf_counter() - began, 3)
            step = "summary"
            if not (staging / "summary.json").is_file():
                raise ReportError(f"{job.kind} {key}: the notebook did not write summary.json")
            executed = nbformat.read(executed_path, as_version=4)
            cells = [c.get("metadata", {}).get("papermill", {}) for c in executed.cells]
            timings["cells"] = round(sum(c.get("duration") or 0 for c in cells), 3)
            manifest["stderr_outputs"] = sum(
                1
                for c in executed.cells
                for o in c.get("outputs", [])
                if o.get("output_type") == "stream" and o.get("name") == "stderr"
            )
            step = "publish"
            manifest["status"] = "ok"
            manifest["outputs"] = {
                name: _sha256(staging / name)
                for name in (f"{stem}.ipynb", f"{stem}.html", "summary.json")
            }
            timings["total"] = round(sum(v for k, v in timings.items() if k != "cells"), 3)
            _write_json(staging / "manifest.json", manifest)
            _publish(staging, target)
        except KeyboardInterrupt:
            manifest.update(status="failed", failed_step=step, error="interrupted")
            _keep_failed(staging, target, manifest, "interrupted", stem)
            raise
        except Exception as exc:
            error = _error_text(exc)
            manifest.update(status="failed", failed_step=step, error=error)
            failed = _keep_failed(staging, target, manifest, error, stem)
            kept = (
                f"the previous {job.kind} was kept"
                if (target / f"{stem}.html").exists()
                else f"no earlier {job.kind} of this {'month' if stem == 'report' else 'name'}"
            )
            raise ReportError(
                f"{job.kind} {key} failed at {step}: {error}; failed notebook in {failed}/ ({kept})"
            ) from exc
    return target


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
) -> Path:
    """Run any parameterized notebook into ``out/key/`` with the report's guarantees.

    Writes ``<kind>.ipynb`` (executed), ``<kind>.html`` (no code, offline), ``summary.json``
    (written by the notebook into its ``out_dir`` parameter) and ``manifest.json``, built in
    ``out/.key.partial/`` and swapped into place only when every step succeeded; a failed run
    keeps the earlier good output and leaves the failed notebook under ``out/key/failed/``.

    Parameters
    ----------
    notebook : the notebook to run; it must take ``data`` and ``out_dir`` parameters.
    out : the parent folder.
    key : the output folder's name (no path separator).
    parameters : the other notebook parameters.
    data : the data source (as for :func:`run_report`).
    kind : ``report`` or ``proposal``: the output files' stem and the start of messages.
    title : the HTML page title.
    manifest : extra manifest fields (e.g. ``{"month": "2026-10"}``).
    progress, wait, timeout : as for :func:`run_report`.

    Returns
    -------
    Path
        The output folder.
    """
    began = time.perf_counter()
    if not key or key.startswith(".") or "/" in key or os.sep in key:
        raise InputError(f"output name {key!r}: must be a plain folder name")
    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        raise InputError(f"notebook {notebook}: not found")
    out_path = _writable_out(out)
    data_path = _resolve_data(data)
    _, fingerprints = _inspect_source(data_path)
    job = _Job(
        key=key,
        kind=kind,
        title=title or f"{kind} {key}",
        data=data_path,
        out=out_path,
        notebook=notebook,
        fingerprints=fingerprints,
        leading={},
        parameters=dict(parameters),
        manifest=dict(manifest or {}),
        resolve_seconds=time.perf_counter() - began,
    )
    return _run_job(job, progress=progress, wait=wait, timeout=timeout)


def _writable_out(out: str | os.PathLike) -> Path:
    """The resolved output folder, created when missing; InputError when unusable."""
    out_path = Path(out).expanduser().resolve()
    if out_path.exists() and not out_path.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    try:
        out_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create ({exc.strerror})") from None
    if not os.access(out_path, os.W_OK):
        raise InputError(f"--out {out}: not writable")
    return out_path


def _run_month(
    month: str,
    data: Path,
    out: Path,
    notebook: Path,
    fingerprints: dict[str, str],
    parameters: dict[str, Any],
    progress: bool,
    wait: bool,
    timeout: float | None,
    resolve_seconds: float,
) -> Path:
    job = _Job(
        key=month,
        kind="report",
        title=f"Service and satisfaction report {month}",
        data=data,
        out=out,
        notebook=notebook,
        fingerprints=fingerprints,
        leading={"month": month},
        parameters=parameters,
        manifest={"month": month},
        resolve_seconds=resolve_seconds,
    )
    return _run_job(job, progress=progress, wait=wait, timeout=timeout)


def run_report(
    month: str | None = None,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike = "reports",
    from_month: str | None = None,
    to_month: str | None = None,
    progress: bool = True,
    wait: bool = False,
    notebook: str | os.PathLike | None = None,
    parameters: dict[str, Any] | None = None,
    timeout: float | None = 3600,
    now: datetime | None = None,
) -> Path | list[Path]:
    """Build the monthly report of one month, or of every month from ``from_month`` to ``to_month``.

    Parameters
    ----------
    month : ``YYYY-MM``; None for the last complete month in the data (the last month of the
        data window whose calendar end is in the past, see
        :func:`satmodel.reporting.last_complete_month`).
    data : the data source (DuckDB file, folder of tables or ``satmodel.toml``); None for
        ``./satmodel.toml`` when present, else ``data/satmodel.duckdb``.
    out : the reports folder; the report goes to ``out/YYYY-MM/``.
    from_month, to_month : a backfill: every month from ``from_month`` to ``to_month`` (both
        included; ``to_month`` defaults to the last complete month). Not with ``month``.
    progress : show a progress bar (cells of one month, or months of a backfill) on stderr.
    wait : when another run holds the month's lock, wait for it instead of failing.
    notebook : the notebook to run (default ``notebooks/04_monthly_report.ipynb``).
    parameters : extra notebook parameters (e.g. ``{"fit_models": False}``).
    timeout : seconds one cell may run before the run fails (None: no limit).
    now : the current time, for the default month (tests).

    Returns
    -------
    Path or list of Path
        The report folder, or one folder per month of a backfill.

    Raises
    ------
    InputError
        For a malformed month, a month outside the data, a missing source or an unusable out
        folder (CLI exit 2), before anything runs.
    ReportBusyError
        When another run holds the month's lock and ``wait`` is False.
    ReportError
        When the notebook or the HTML export fails; for a backfill, after every month was
        tried, naming the months that failed.
    """
    began = time.perf_counter()
    if month is not None and (from_month is not None or to_month is not None):
        raise InputError("--month cannot be combined with --from/--to")
    if to_month is not None and from_month is None:
        raise InputError("--to needs --from (the first month of the backfill)")
    for value, name in ((month, "--month"), (from_month, "--from"), (to_month, "--to")):
        if value is not None:
            check_month(value, name)
    notebook = Path(notebook).resolve() if notebook is not None else default_notebook()
    if not notebook.is_file():
        raise InputError(f"notebook {notebook}: not found")
    out_path = Path(out).expanduser().resolve()
    if out_path.exists() and not out_path.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    data_path = _resolve_data(data)
    window, fingerprints = _inspect_source(data_path)
    if window is None:
        raise InputError(f"data {data_path}: no dated rows (usage.month, surveys.ts...)")
    if from_month is not None:
        last = to_month or last_complete_month(window, now)
        if from_month > last:
            raise InputError(f"--from {from_month} is after --to {last}")
        months = month_range(from_month, last)
    else:
        months = [month or last_complete_month(window, now)]
    outside = [m for m in months if not window[0] <= m <= window[1]]
    if outside:
        raise InputError(
            f"month {outside[0]}: outside the data's months {window[0]}..{window[1]}"
            + (f" ({len(outside)} months of the range are)" if len(outside) > 1 else "")
        )
    out_path = _writable_out(out)
    resolve_seconds = time.perf_counter() - began
    run = {
        "data": data_path,
        "out": out_path,
        "notebook": notebook,
        "fingerprints": fingerprints,
        "parameters": dict(parameters or {}),
        "wait": wait,
        "timeout": timeout,
        "resolve_seconds": resolve_seconds,
    }
    if len(months) == 1 and from_month is None:
        return _run_month(months[0], progress=progress, **run)
    from tqdm import tqdm

    done: list[Path] = []
    failures: list[str] = []
    with tqdm(months, desc="report", unit="month", file=sys.stderr, disable=not progress) as bar:
        for each in bar:
            bar.set_postfix_str(each)
            try:
                done.append(_run_month(each, progress=False, **run))
            except (ReportError, ReportBusyError) as exc:
                failures.append(str(exc))
    if failures:
        raise ReportError(
            f"{len(failures)} of {len(months)} months failed: " + " | ".join(failures)
        )
    return done


# --------------------------------------------------------------------------------------
# proposals


PROPOSAL_NOTEBOOK_NAME = "03_expectation_to_support.ipynb"


def default_proposal_notebook() -> Path:
    """The sales notebook: ``notebooks/`` of the source tree, or the installed copy."""
    return default_notebook(PROPOSAL_NOTEBOOK_NAME)


def run_proposal(
    segment: str | None = None,
    customer: str | None = None,
    csat_target: float | None = None,
    complaint_target: float | None = None,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike = "reports/proposals",
    month: str | None = None,
    tiers: str | None = None,
    progress: bool = True,
    wait: bool = False,
    notebook: str | os.PathLike | None = None,
    parameters: dict[str, Any] | None = None,
    timeout: float | None = 3600,
    now: datetime | None = None,
) -> Path:
    """Build a one-page expectation-to-support proposal for a segment or one customer.

    Runs ``notebooks/03_expectation_to_support.ipynb`` with papermill into
    ``out/<name>-csat<X>[-complaints<Y>]/`` (see :func:`satmodel.reporting.proposal_slug`):
    ``proposal.ipynb``, ``proposal.html`` (no code, offline), ``summary.json`` and
    ``manifest.json``, with the same guarantees as :func:`run_report` (atomic, locked, failed
    runs kept under ``failed/``).

    Parameters
    ----------
    segment, customer : who the proposal is for (exactly one).
    csat_target : the mean CSAT (1-5) the customer expects.
    complaint_target : at most this many complaints per 1,000 active users (optional).
    data : the data source (as for :func:`run_report`).
    out : the proposals folder (default ``reports/proposals``).
    month : the last month of data used (default: the last complete month).
    tiers : the candidate service tiers, e.g. ``"Bronze 99.5/800/24; Gold 99.95/300/4"``
        (availability %, p95 latency ms, resolution hours); None for the default tiers.
    progress, wait, notebook, parameters, timeout, now : as for :func:`run_report`.

    Returns
    -------
    Path
        The proposal folder.

    Raises
    ------
    InputError
        For an unknown segment or customer (naming valid ones), a target outside its range, a
        malformed month or tier list, a missing source or an unusable out folder (CLI exit 2).
    ReportBusyError, ReportError
        As for :func:`run_report`.
    """
    from satmodel.reporting import check_proposal_request, parse_tiers, proposal_slug
    from satmodel.sources import open_source

    began = time.perf_counter()
    if month is not None:
        check_month(month, "--month")
    if tiers is not None:
        parse_tiers(tiers)
    notebook = Path(notebook).resolve() if notebook is not None else default_proposal_notebook()
    if not notebook.is_file():
        raise InputError(f"notebook {notebook}: not found")
    data_path = _resolve_data(data)
    source = open_source(data_path)
    try:
        check_proposal_request(source, segment, customer, csat_target, complaint_target)
        window = data_window(source)
        fingerprints = source.fingerprint()
        if source.config.path is not None:
            path = Path(source.config.path).resolve()
            fingerprints[str(path)] = _sha256(path)
    finally:
        source.close()
    if window is None:
        raise InputError(f"data {data_path}: no dated rows (usage.month, surveys.ts...)")
    month = month or last_complete_month(window, now)
    if not window[0] <= month <= window[1]:
        raise InputError(f"month {month}: outside the data's months {window[0]}..{window[1]}")
    key = proposal_slug(segment, customer, csat_target, complaint_target)
    out_path = _writable_out(out)
    who = f"segment {segment}" if segment else f"customer {customer}"
    leading = {
        "segment": segment or "",
        "customer": customer or "",
        "csat_target": float(csat_target),
        "complaint_target": float(complaint_target) if complaint_target is not None else 0.0,
        "month": month,
    }
    extra = dict(parameters or {})
    if tiers is not None:
        extra["tiers"] = tiers
    job = _Job(
        key=key,
        kind="proposal",
        title=f"Service proposal for {who}: CSAT {float(csat_target):g}",
        data=data_path,
        out=out_path,
        notebook=notebook,
        fingerprints=fingerprints,
        leading=leading,
        parameters=extra,
        manifest={"proposal": key, "month": month},
        resolve_seconds=time.perf_counter() - began,
    )
    return _run_job(job, progress=progress, wait=wait, timeout=timeout)
