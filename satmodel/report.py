"""Run the monthly report: papermill, nbconvert, summary and manifest, written atomically.

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
    "export_html",
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


def default_notebook() -> Path:
    """The monthly report notebook: ``notebooks/`` of the source tree, or the installed copy."""
    for candidate in (
        Path(__file__).resolve().parents[1] / "notebooks" / NOTEBOOK_NAME,
        Path(__file__).resolve().parent / "notebooks" / NOTEBOOK_NAME,
    ):
        if candidate.is_file():
            return candidate
    raise SatmodelError(f"report notebook {NOTEBOOK_NAME} not found next to the satmodel package")


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
def _month_lock(path: Path, month: str, wait: bool) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for one month's run."""
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ReportBusyError(
                f"report {month}: another run is building it (lock {path} is held); "
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


def _keep_failed(staging: Path, target: Path, manifest: dict[str, Any], error: str) -> Path:
    """Move what a failed run produced to ``target/failed/`` (replacing an earlier failure)."""
    target.mkdir(exist_ok=True)
    failed = target / "failed"
    pending = target / ".failed.partial"
    shutil.rmtree(pending, ignore_errors=True)
    pending.mkdir()
    notebook = staging / "report.ipynb"
    if notebook.is_file():
        notebook.replace(pending / "report.ipynb")
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


def _resolve_data(data: str | os.PathLike | None) -> Path:
    """The absolute path of the data source the notebook will open."""
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
    import nbformat
    import papermill

    target = out / month
    with _month_lock(out / f".{month}.lock", month, wait):
        staging = out / f".{month}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        params = {"month": month, "data": str(data), "out_dir": str(staging), **parameters}
        manifest: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION,
            "status": "running",
            "month": month,
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "parameters": params,
            "output_dir": str(target),
            "notebook": {"path": str(notebook), "fingerprint": _sha256(notebook)},
            "inputs": fingerprints,
            "packages": _versions(),
            "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "timings_s": {"resolve": round(resolve_seconds, 3)},
        }
        timings = manifest["timings_s"]
        step = "execute"
        try:
            began = time.perf_counter()
            with _ipc_kernel_manager() as manager_class:
                papermill.execute_notebook(
                    str(notebook),
                    str(staging / "report.ipynb"),
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
            export_html(
                staging / "report.ipynb",
                staging / "report.html",
                title=f"Service and satisfaction report {month}",
            )
            timings["html"] = round(time.perf_counter() - began, 3)
            step = "summary"
            if not (staging / "summary.json").is_file():
                raise ReportError(f"report {month}: the notebook did not write summary.json")
            executed = nbformat.read(staging / "report.ipynb", as_version=4)
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
                for name in ("report.ipynb", "report.html", "summary.json")
            }
            timings["total"] = round(sum(v for k, v in timings.items() if k != "cells"), 3)
            _write_json(staging / "manifest.json", manifest)
            _publish(staging, target)
        except KeyboardInterrupt:
            manifest.update(status="failed", failed_step=step, error="interrupted")
            _keep_failed(staging, target, manifest, "interrupted")
            raise
        except Exception as exc:
            error = _error_text(exc)
            manifest.update(status="failed", failed_step=step, error=error)
            failed = _keep_failed(staging, target, manifest, error)
            kept = (
                "the previous report was kept"
                if (target / "report.html").exists()
                else "no earlier report of this month"
            )
            raise ReportError(
                f"report {month} failed at {step}: {error}; failed notebook in {failed}/ ({kept})"
            ) from exc
    return target


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
    try:
        out_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create ({exc.strerror})") from None
    if not os.access(out_path, os.W_OK):
        raise InputError(f"--out {out}: not writable")
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
