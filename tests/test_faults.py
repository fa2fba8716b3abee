"""Fault injection: a report run that is killed, crashes, runs out of room or meets a busy
lock never damages the earlier good report, never leaves a partial file in the month folder,
and never blocks the next run.

Most faults are injected into a tiny notebook of our own (fast); one kills a real
``satmodel report`` of the small demo (tests/test_notebooks.py) mid-way through its notebook.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from satmodel.cli import main
from satmodel.errors import InputError
from satmodel.jobs import ReportBusyError, ReportError, ReportRequest, run_report
from satmodel.jobs import files as files_module
from satmodel.jobs import html as html_module
from satmodel.jobs import runner as runner_module
from satmodel.jobs.files import MARKER

MONTH = "2025-02"  # the conftest tables hold 2025-01 and 2025-02
KERNEL_FOLDERS = Path(tempfile.gettempdir())

PARAMETERS = (
    'month: str = ""  # YYYY-MM\n'
    'data: str = ""  # source\n'
    'out_dir: str = ""  # where summary.json goes\n'
    'crash: str = ""  # raise, kill-kernel or exit\n'
    "pause: float = 0.0  # seconds to sleep before the last cell"
)
BODY = (
    "import os, signal, sys, time\n"
    "from satmodel.reporting import write_summary\n"
    "time.sleep(pause)\n"
    "if crash == 'raise':\n"
    "    raise RuntimeError('injected fault')\n"
    "if crash == 'kill-kernel':\n"
    "    os.kill(os.getpid(), signal.SIGKILL)\n"
    "if crash == 'exit':\n"
    "    os._exit(3)\n"
    "written = write_summary({'month': month, 'value': 2.5}, out_dir)"
)


@pytest.fixture(scope="module")
def notebook(tmp_path_factory) -> Path:
    parameters = new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[new_markdown_cell("# Fault notebook"), parameters, new_code_cell(BODY)],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    path = tmp_path_factory.mktemp("faults") / "faults.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    from conftest import GOOD_TABLES, write_tables

    return write_tables(tmp_path / "data", GOOD_TABLES)


def run(notebook: Path, data: Path, out: Path, **kwargs):
    kwargs.setdefault("month", MONTH)
    return run_report(
        ReportRequest(data=data, out=out, notebook=notebook, progress=False, **kwargs)
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def kernel_folders(pid: int) -> list[Path]:
    return list(KERNEL_FOLDERS.glob(f"satmodel-kernel-{pid}-*"))


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def gone(pid: int) -> bool:
    """True when ``pid`` has exited (or is a zombie waiting for its reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


SCRIPT = (
    "import sys; from satmodel.jobs import ReportRequest, run_report\n"
    f"run_report(ReportRequest(month={MONTH!r}, data=sys.argv[1], out=sys.argv[2], notebook=sys.argv[3],"
    " progress=False, parameters={'pause': float(sys.argv[4])}))\n"
)


# --------------------------------------------------------------------------------------
# 1a. killed mid-way


def kill_when(process: subprocess.Popen, out: Path, stage: str) -> list[int]:
    """SIGKILL the process group of ``process`` at ``stage``; return its kernel's pids.

    ``staging``: as soon as the staging folder exists (the kernel may not be up yet);
    ``kernel``: once the kernel runs the notebook (its sockets exist and it has a pid).
    """
    wait_until(
        lambda: (out / f".{MONTH}.partial").exists() or process.poll() is not None,
        60,
        "the staging folder",
    )
    assert process.poll() is None, "the run ended before the fault could be injected"
    kernels: list[int] = []
    if stage == "kernel":
        wait_until(
            lambda: any(f.is_dir() and any(f.iterdir()) for f in kernel_folders(process.pid)),
            60,
            "the kernel's sockets",
        )
        wait_until(lambda: bool(children(process.pid)), 30, "the kernel process")
        kernels = children(process.pid)
        time.sleep(1.0)  # inside the notebook's sleeping cell
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return kernels


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["staging", "kernel"])
def test_killed_run_keeps_the_good_report_and_the_rerun_succeeds(stage, notebook, data, tmp_path):
    out = tmp_path / "reports"
    good = run(notebook, data, out)
    before = snapshot(good)

    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(data), str(out), str(notebook), "30"],
        start_new_session=True,  # its own process group: killpg hits it and only it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        kernels = kill_when(process, out, stage)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    # the earlier report is byte-identical; nothing of the killed run is in the month folder
    assert snapshot(good) == before
    # the killed run's kernel notices its parent died and exits (no orphan left running)
    for pid in kernels:
        wait_until(lambda pid=pid: gone(pid), 20, f"kernel {pid} to exit")

    # the rerun is not blocked by the dead run's lock or staging folder, and cleans up
    again = run(notebook, data, out)
    assert again == good
    assert json.loads((good / "summary.json").read_text()) == {"month": MONTH, "value": 2.5}
    assert sorted(p.name for p in out.iterdir()) == [f".{MONTH}.lock", MONTH]
    assert kernel_folders(process.pid) == []


@pytest.mark.slow
def test_killed_cli_report_of_the_demo(tmp_path_factory, tmp_path):
    """``satmodel report`` on the demo, SIGKILLed while its notebook runs (process group)."""
    from test_notebooks import LAST_MONTH, demo_data, demo_report

    data = demo_data(tmp_path_factory)
    out = tmp_path / "reports"
    out.mkdir()
    good = out / LAST_MONTH
    shutil.copytree(demo_report(tmp_path_factory), good)  # the earlier good report
    before = snapshot(good)
    argv = ["report", "--data", str(data), "--out", str(out), "--quiet", "--allow-outside"]

    process = subprocess.Popen(
        [sys.executable, "-m", "satmodel", *argv],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: (out / f".{LAST_MONTH}.partial").exists() or process.poll() is not None,
            60,
            "the staging folder",
        )
        wait_until(lambda: bool(children(process.pid)), 60, "the kernel process")
        kernels = children(process.pid)
        time.sleep(3.0)  # well inside the notebook
        assert process.poll() is None
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert snapshot(good) == before
    assert sorted(p.name for p in good.iterdir()) == sorted(
        p.name for p in demo_report(tmp_path_factory).iterdir()
    )
    for pid in kernels:
        wait_until(lambda pid=pid: gone(pid), 20, f"kernel {pid} to exit")
    assert (out / f".{LAST_MONTH}.partial").exists()  # what the killed run left behind

    assert main(argv) == 0
    assert not (out / f".{LAST_MONTH}.partial").exists()
    assert kernel_folders(process.pid) == []
    # same data, same month: the summary is byte-identical to the earlier run's
    assert (good / "summary.json").read_bytes() == before["summary.json"]


def test_stale_staging_of_killed_runs_is_swept_unless_locked(notebook, data, tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    stale = out / ".2025-01.partial"  # a killed run of another month: its marker says so
    stale.mkdir()
    (stale / "report.ipynb").write_text("half")
    (stale / MARKER).write_text(json.dumps({"tool": "satmodel", "key": "2025-01"}))
    (out / ".2025-01.lock").write_text("pid 999999 since long ago\n")  # no one holds it
    old = out / ".2024-12.old"  # a killed publish (non-Linux fallback): an earlier report
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({"manifest_version": 1, "status": "ok"}))
    busy = out / ".2024-11.partial"  # a run that is still going
    busy.mkdir()
    (busy / MARKER).write_text(json.dumps({"tool": "satmodel", "key": "2024-11"}))
    with (out / ".2024-11.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        run(notebook, data, out)
        assert busy.exists()  # its lock is held: a live run, left alone
    assert not stale.exists() and not old.exists()


def test_dead_kernel_folders_are_swept(notebook, data, tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    pid = int(dead.stdout)
    leftover = Path(tempfile.mkdtemp(prefix=f"satmodel-kernel-{pid}-"))
    (leftover / "kernel-1").write_text("")
    mine = Path(tempfile.mkdtemp(prefix=f"satmodel-kernel-{os.getpid()}-"))  # alive: kept
    try:
        run(notebook, data, tmp_path / "reports")
        assert not leftover.exists()
        assert mine.exists()
    finally:
        shutil.rmtree(leftover, ignore_errors=True)
        shutil.rmtree(mine, ignore_errors=True)


# --------------------------------------------------------------------------------------
# crashes inside and around the notebook


@pytest.mark.parametrize(
    ("crash", "error"),
    [("raise", "RuntimeError: injected fault"), ("kill-kernel", "Kernel"), ("exit", "Kernel")],
)
def test_crashing_kernel_keeps_the_good_report(crash, error, notebook, data, tmp_path):
    out = tmp_path / "reports"
    good = run(notebook, data, out)
    before = snapshot(good)
    with pytest.raises(ReportError, match="previous report was kept") as info:
        run(notebook, data, out, parameters={"crash": crash}, timeout=60)
    assert error.lower() in str(info.value).lower()
    after = snapshot(good)
    assert {k: v for k, v in after.items() if not k.startswith("failed/")} == before
    assert sorted(p.name for p in (good / "failed").iterdir()) == [
        "error.txt",
        "manifest.json",
        "report.ipynb",
    ]
    assert not (out / f".{MONTH}.partial").exists()


@pytest.mark.parametrize("step", ["html", "publish"])
def test_disk_fault_at_html_or_publish_keeps_the_good_report(
    step, notebook, data, tmp_path, monkeypatch
):
    out = tmp_path / "reports"
    good = run(notebook, data, out)
    before = snapshot(good)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    module, name = (runner_module, "export_html") if step == "html" else (files_module, "exchange")
    monkeypatch.setattr(module, name, no_space)
    with pytest.raises(ReportError, match=f"failed at {step}: no space left on device") as info:
        run(notebook, data, out)
    assert "previous report was kept" in str(info.value)
    after = snapshot(good)
    assert {k: v for k, v in after.items() if not k.startswith("failed/")} == before
    assert (good / "failed" / "error.txt").is_file()
    assert sorted(p.name for p in out.iterdir()) == [f".{MONTH}.lock", MONTH]


@pytest.mark.parametrize(
    ("when", "step", "written"),
    [
        ("start", "stage", f"/.{MONTH}.partial"),
        ("after the notebook", "html", f"{MONTH}.partial/report.html"),
    ],
)
def test_disk_full_says_so_and_leaves_no_partial(
    when, step, written, notebook, data, tmp_path, monkeypatch
):
    """The disk is full from the start, or fills after the notebook ran (then even the failed/
    copy cannot be written): one clear line (exit 1), the good report untouched, nothing
    half-written left."""
    out = tmp_path / "reports"
    good = run(notebook, data, out)
    before = snapshot(good)
    real = files_module.write_text

    def full(path, text):
        if when != "start" and path.name == MARKER:
            return real(path, text)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files_module, "write_text", full)
    monkeypatch.setattr(html_module, "write_text", full)
    with pytest.raises(ReportError) as info:
        run(notebook, data, out)
    message = str(info.value)
    assert info.value.exit_code == 1 and "\n" not in message
    assert f"failed at {step}: no space left on device while writing " in message
    assert written in message and "OSError" not in message
    assert snapshot(good) == before
    assert sorted(p.name for p in good.iterdir()) == sorted(before)
    assert sorted(p.name for p in out.iterdir()) == [f".{MONTH}.lock", MONTH]


def test_missing_required_column_is_exit_2_before_any_kernel(tmp_path, capsys):
    from conftest import GOOD_TABLES, write_tables

    surveys = "\n".join(
        ",".join(cell for i, cell in enumerate(line.split(",")) if i != 3)  # no csat column
        for line in GOOD_TABLES["surveys"].splitlines()
    )
    data = write_tables(tmp_path / "data", {**GOOD_TABLES, "surveys": surveys + "\n"})
    out = tmp_path / "reports"
    argv = ["report", "--data", str(data), "--out", str(out), "--month", MONTH, "--quiet"]
    code = main([*argv, "--allow-outside"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("satmodel: surveys.csat") and err.count("\n") == 1, err
    assert not out.exists()  # no folder, no lock: no kernel was started


# --------------------------------------------------------------------------------------
# 1b. two runs of one month


def test_second_run_waits_with_wait(notebook, data, tmp_path):
    """With --wait the second run blocks until the first releases the lock, then succeeds."""
    out = tmp_path / "reports"
    out.mkdir()
    handle = (out / f".{MONTH}.lock").open("a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    timer = threading.Timer(2.0, handle.close)  # the "first run" finishes after 2 s
    began = time.monotonic()
    timer.start()
    try:
        folder = run(notebook, data, out, wait=True)
    finally:
        timer.cancel()
        handle.close()
    assert time.monotonic() - began >= 2.0
    assert (folder / "report.html").is_file()


def test_second_cli_run_is_refused_with_one_clear_line(notebook, data, tmp_path, capsys):
    out = tmp_path / "reports"
    out.mkdir()
    with (out / f".{MONTH}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        code = main(
            ["report", "--data", str(data), "--out", str(out), "--month", MONTH, "--quiet"]
            + ["--allow-outside"]
        )
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "another run is building it" in err and "--wait" in err
    assert "Traceback" not in err
    assert not (out / MONTH).exists()


def test_busy_error_from_python(notebook, data, tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    with (out / f".{MONTH}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(ReportBusyError):
            run(notebook, data, out)


# --------------------------------------------------------------------------------------
# 1c. an output folder that cannot be written
#
# Tests run as root in CI, where chmod does not stop anyone: these folders fail for root too.
# /proc exists and os.access(/proc, W_OK) is True for root, yet nothing can be created in it;
# a path below a regular file cannot be created by anyone (ENOTDIR).


def unwritable_cases(tmp_path: Path) -> list[tuple[str, str]]:
    (tmp_path / "a-file").write_text("not a folder")
    cases = [
        (str(tmp_path / "a-file" / "reports"), "cannot create (Not a directory)"),
        ("/proc", "not writable"),
        ("/proc/self/task", "not writable"),
    ]
    if os.geteuid() != 0:  # chmod only stops a user who is not root
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        cases.append((str(locked), "not writable"))
    return cases


def test_unwritable_out_is_one_line_and_exit_2(data, tmp_path, capsys):
    for out, message in unwritable_cases(tmp_path):
        argv = ["report", "--data", str(data), "--out", out, "--month", MONTH, "--quiet"]
        code = main([*argv, "--allow-outside"])
        err = capsys.readouterr().err
        assert code == 2, (out, err)
        assert message in err, (out, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"satmodel: --out {out}: ")


def test_unwritable_out_under_the_project(data, tmp_path, monkeypatch, capsys):
    """The confined default: reports/ is a file, so reports/x cannot be made (exit 2)."""
    assert data == tmp_path / "data"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").write_text("a file where the folder should be")
    code = main(["report", "--data", "data", "--out", "reports/x", "--month", MONTH])
    err = capsys.readouterr().err
    assert code == 2 and "Not a directory" in err and err.count("\n") == 1


def test_unwritable_out_from_python_is_input_error(notebook, data, tmp_path):
    with pytest.raises(InputError, match=re.escape("--out /proc: not writable")):
        run(notebook, data, "/proc")


def test_failed_copy_is_never_written_through_a_swapped_link(tmp_path):
    """The month folder became a link while the run went on: failed/ is not written into it."""
    from satmodel.jobs.files import keep_failed, make_staging

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "reports"
    out.mkdir()
    (out / MONTH).symlink_to(elsewhere, target_is_directory=True)
    staging = make_staging(out / f".{MONTH}.partial", MONTH)
    with pytest.raises(InputError, match="is a symbolic link"):
        keep_failed(staging, out / MONTH, {"status": "failed"}, "boom", "report")
    assert list(elsewhere.iterdir()) == []
    assert not staging.exists()
