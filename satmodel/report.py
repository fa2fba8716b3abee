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

Faults and hostile input:

- a run killed outright (SIGKILL, power loss) leaves only its hidden ``OUT/.KEY.partial/``
  staging folder and its kernel's private socket folder; its ``flock`` dies with the process,
  so the next run is not blocked, and every run removes staging folders whose lock nobody
  holds and kernel folders whose process is gone;
- the output folder is probed by really creating (and removing) a folder in it, because
  ``os.access`` says yes to root where writing still fails (``/proc``, read-only mounts,
  immutable folders); an unusable one is an :class:`~satmodel.errors.InputError` (exit 2);
- notebook parameters are checked before anything runs: plain names, scalar values, no
  control characters (papermill writes them into the notebook as Python source);
- with ``allow_outside=False`` (the command line's default) the data and output paths must
  lie inside the project's ``data/`` and ``reports/`` folders (under the working directory),
  after symbolic links are resolved;
- ``pseudonymise=True`` replaces every customer id the outputs show by a keyed pseudonym
  (:func:`satmodel.reporting.pseudonym`); the key never reaches the notebook's parameters.
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
import keyword
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import unicodedata
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
    "ALLOW_PATHS_ENV",
    "CONFINE_PATHS_ENV",
    "ReportError",
    "ReportBusyError",
    "check_parameters",
    "confine_path",
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
ALLOW_PATHS_ENV = "SATMODEL_ALLOW_PATHS"
CONFINE_PATHS_ENV = "SATMODEL_CONFINE_PATHS"
MAX_PARAMETER_CHARS = 2000
KERNEL_FOLDER_PREFIX = "satmodel-kernel-"
TRASH_PREFIX = ".satmodel-trash-"


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

    _sweep_kernel_folders()
    folder = tempfile.mkdtemp(prefix=f"{KERNEL_FOLDER_PREFIX}{os.getpid()}-")
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _sweep_kernel_folders() -> None:
    """Remove kernel socket folders of runs that were killed (their process is gone)."""
    pattern = re.compile(rf"{re.escape(KERNEL_FOLDER_PREFIX)}(\d+)-\w+")
    base = Path(tempfile.gettempdir())
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match or _pid_alive(int(match.group(1))):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink() and entry.stat().st_uid == os.getuid():
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


def _sweep_stale(out: Path) -> list[str]:
    """Remove staging folders (``.KEY.partial``, ``.KEY.old``) left by killed runs.

    A folder is stale when nobody holds the lock of its key: a live run holds it for as long
    as it runs, and a killed run's ``flock`` is released by the kernel when it dies. The lock
    is held only for an instant (to rename the folder to ``.satmodel-trash-*``), so a run of
    that key starting at the same moment is not told it is busy; the trash is removed after,
    and trash a killed sweep left behind is removed by the next one.

    Returns
    -------
    list of str
        The names removed.
    """
    removed = []
    pattern = re.compile(r"\.(.+)\.(partial|old)")
    for entry in sorted(out.iterdir()):
        if not entry.is_dir() or entry.is_symlink():
            continue
        if entry.name.startswith(TRASH_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)
            continue
        match = pattern.fullmatch(entry.name)
        if not match:
            continue
        try:
            handle = (out / f".{match.group(1)}.lock").open("a+")
        except OSError:
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live run owns it
            trash = Path(tempfile.mkdtemp(prefix=TRASH_PREFIX, dir=out))
            with contextlib.suppress(OSError):  # gone already: a concurrent sweep took it
                entry.rename(trash / entry.name)
        shutil.rmtree(trash, ignore_errors=True)
        if entry.exists():
            continue
        removed.append(entry.name)
    return removed


# --------------------------------------------------------------------------------------
# parameters and paths, checked before anything runs


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _bad_char(text: str) -> str | None:
    """The first control or line-separator character of ``text`` (as ``U+XXXX``), or None."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            return f"U+{ord(char):04X}"
    return None


def check_parameters(parameters: dict[str, Any], what: str = "notebook parameter") -> None:
    """Check notebook parameters before papermill writes them into the notebook.

    Names must be plain Python identifiers (not keywords); values None, bool, int, finite
    float or str, or lists of those; strings at most 2,000 characters with no control,
    format or line-separator character (a newline in a segment name has no business in a
    report, and papermill turns values into Python source).

    Raises
    ------
    InputError
        One line per bad parameter.
    """
    problems = []

    def bad_value(value: Any) -> str | None:
        if value is None or isinstance(value, bool | int):
            return None
        if isinstance(value, float):
            return None if math.isfinite(value) else "not a finite number"
        if isinstance(value, str):
            if len(value) > MAX_PARAMETER_CHARS:
                return f"longer than {MAX_PARAMETER_CHARS:,} characters"
            char = _bad_char(value)
            return f"contains the control character {char}" if char else None
        if isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, list | tuple):
                    return "nested lists are not allowed"
                reason = bad_value(item)
                if reason:
                    return reason
            return None
        return f"type {type(value).__name__} is not allowed (str, int, float, bool, list)"

    for name, value in parameters.items():
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or keyword.iskeyword(name):
            problems.append(f"{what} {name!r}: not a plain name")
            continue
        reason = bad_value(value)
        if reason:
            problems.append(f"{what} {name} = {str(value)[:60]!r}: {reason}")
    if problems:
        raise InputError(problems)


def _check_text(values: dict[str, Any]) -> None:
    """Check command-line values (``--segment`` ...) like notebook parameters."""
    problems = []
    for flag, value in values.items():
        if value is None:
            continue
        char = _bad_char(str(value))
        if char:
            problems.append(f"{flag} {str(value)[:60]!r}: contains the control character {char}")
    if problems:
        raise InputError(problems)


def project_folders(base: str | os.PathLike | None = None) -> dict[str, Path]:
    """The folders paths are confined to: ``data`` and ``reports`` under ``base`` (default cwd)."""
    root = Path(base) if base is not None else Path.cwd()
    return {"data": root / "data", "out": root / "reports"}


def confined_by_env() -> bool:
    """True when ``SATMODEL_CONFINE_PATHS=1`` confines the command line to data/ and reports/."""
    return os.environ.get(CONFINE_PATHS_ENV, "").strip().lower() in ("1", "true", "yes")


def allowed_outside_by_env() -> bool:
    """True when ``SATMODEL_ALLOW_PATHS=1`` lifts the path confinement (as ``--allow-outside``)."""
    return os.environ.get(ALLOW_PATHS_ENV, "").strip().lower() in ("1", "true", "yes")


def confine_path(path: str | os.PathLike, roots: list[Path], flag: str) -> Path:
    """``path`` resolved (symbolic links followed), when it lies inside one of ``roots``.

    Raises
    ------
    InputError
        When it lies outside every root (naming them and how to allow it).
    """
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        top = root.expanduser().resolve()
        if resolved == top or resolved.is_relative_to(top):
            return resolved
    names = " or ".join(str(r) for r in roots)
    raise InputError(
        f"{flag} {path}: outside the project's folders ({names}); pass --allow-outside "
        f"(or set {ALLOW_PATHS_ENV}=1) to use it"
    )


def _confine_data(data: str | os.PathLike | None, roots: list[Path]) -> None:
    """Confine a user-given data source, and the files a ``.toml`` config names, to ``roots``.

    Database URLs are not paths and are allowed; ``data=None`` (the project's own
    ``satmodel.toml`` or default database) is trusted.
    """
    from satmodel.config import is_url, load_config

    if data in (None, "") or is_url(str(data)):
        return
    resolved = confine_path(data, roots, "--data")
    if Path(data).suffix != ".toml" or not resolved.is_file():  # open_source's own test
        return
    config = load_config(resolved)
    if config.source_url is None and config.source is not None:
        confine_path(config.source, roots, f"--data {data}: source.path")
    for name, mapping in config.tables.items():
        file = getattr(mapping, "file", None)
        if file is not None and not is_url(str(file)):
            confine_path(file, roots, f"--data {data}: tables.{name}.file")


def _confine(data: str | os.PathLike | None, out: str | os.PathLike, allow_outside: bool) -> None:
    if allow_outside:
        return
    folders = project_folders()
    _confine_data(data, [folders["data"]])
    confine_path(out, [folders["out"]], "--out")


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
    staging = out / f".{key}.partial"
    params = {
        **job.leading,
        "data": str(job.data),
        "out_dir": str(staging),
        **job.parameters,
    }
    check_parameters(params)
    with _lock(out / f".{key}.lock", f"{job.kind} {key}", wait):
        _sweep_stale(out)  # staging folders of killed runs (this key's included)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
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
                path.name: _sha256(path)
                for path in sorted(staging.iterdir())
                if path.is_file() and not path.name.startswith(".")
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
    allow_outside: bool = True,
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
    progress, wait, timeout, allow_outside : as for :func:`run_report`.

    Returns
    -------
    Path
        The output folder.
    """
    began = time.perf_counter()
    if not key or key.startswith(".") or "/" in key or os.sep in key or _bad_char(key):
        raise InputError(f"output name {key!r}: must be a plain folder name")
    _check_text({"--data": data, "--out": out})
    check_parameters(dict(parameters))
    _confine(data, out, allow_outside)
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
        raise InputError(f"--out {out}: cannot create ({exc.strerror or exc})") from None
    # Probe with a real folder: os.access() says yes to root where creating still fails
    # (/proc, read-only bind mounts, immutable folders, root-squashed NFS).
    try:
        probe = tempfile.mkdtemp(prefix=".satmodel-probe-", dir=out_path)
        os.rmdir(probe)
    except OSError as exc:
        raise InputError(f"--out {out}: not writable ({exc.strerror or exc})") from None
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
    allow_outside: bool = True,
    pseudonymise: bool = False,
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
    allow_outside : False confines ``data`` and ``out`` to the project's ``data/`` and
        ``reports/`` folders under the working directory (the command line's default, lifted by
        ``--allow-outside`` or ``SATMODEL_ALLOW_PATHS=1``). True (the default in Python: the
        caller is code, not a user) allows any path.
    pseudonymise : replace every customer id in the HTML, ``summary.json`` and CSV exports
        (and the executed notebook) by its keyed pseudonym, for reports that leave the team
        (key: ``SATMODEL_PSEUDONYM_KEY``, else ``data/pseudonym.key``, created on first use).

    Returns
    -------
    Path or list of Path
        The report folder, or one folder per month of a backfill.

    Raises
    ------
    InputError
        For a malformed month, a month outside the data, a missing source, a path outside
        the project (with ``allow_outside=False``), a parameter with control characters, an
        unusable out folder or pseudonym key (CLI exit 2), before anything runs.
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
    _check_text({"--data": data, "--out": out})
    check_parameters(dict(parameters or {}))
    _confine(data, out, allow_outside)
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
    extra = dict(parameters or {})
    if pseudonymise:
        from satmodel.reporting import pseudonym_key

        pseudonym_key(create=True)  # the notebook reads the same key
        extra["pseudonymise"] = True
    out_path = _writable_out(out)
    resolve_seconds = time.perf_counter() - began
    run = {
        "data": data_path,
        "out": out_path,
        "notebook": notebook,
        "fingerprints": fingerprints,
        "parameters": extra,
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
    allow_outside: bool = True,
    pseudonymise: bool = False,
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
    progress, wait, notebook, parameters, timeout, now, allow_outside : as for
        :func:`run_report`.
    pseudonymise : as for :func:`run_report`; a customer's proposal is then named, titled
        and run with the customer's pseudonym (the notebook never sees the real id).

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
    _check_text(
        {
            "--segment": segment,
            "--customer": customer,
            "--tiers": tiers,
            "--data": data,
            "--out": out,
        }
    )
    check_parameters(dict(parameters or {}))
    if month is not None:
        check_month(month, "--month")
    if tiers is not None:
        parse_tiers(tiers)
    _confine(data, out, allow_outside)
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
    extra = dict(parameters or {})
    if pseudonymise:
        from satmodel.reporting import pseudonym, pseudonym_key

        key_bytes = pseudonym_key(create=True)
        if customer:
            customer = pseudonym(customer, key_bytes)  # from here on, only the pseudonym
        extra["pseudonymise"] = True
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
