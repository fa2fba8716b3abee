"""The files of a run: atomic writes, locks, staging folders, publishing and sweeping.

This is the one module that creates, swaps and removes anything under an output folder, and it
touches only what satmodel made:

- paths are examined with ``lstat`` and never followed when they are symbolic links;
- a staging folder is made with ``mkdir`` (fails when anything is already there) and carries
  the run's marker file :data:`MARKER` (a JSON tag) until it is published;
- a folder counts as satmodel's when it holds that marker or a satmodel ``manifest.json``;
  stale folders are swept only when they are satmodel's AND named like satmodel's;
- a month (or proposal) folder that exists without a satmodel manifest is never replaced;
- lock files are opened with ``O_NOFOLLOW`` and without truncation, and refused unless they
  are regular files with a single link, so a planted link never redirects a write.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from satmodel.errors import InputError
from satmodel.filemodes import new_file_mode
from satmodel.jobs.errors import ReportBusyError

MARKER = ".satmodel-staging"
TRASH_PREFIX = ".satmodel-trash-"
TOOL_TAG = "satmodel"
STAGING_NAME = re.compile(r"\.(.+)\.(partial|old)")


def sha256(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def write_text(path: Path, text: str) -> None:
    """Write ``path`` atomically (a fresh temporary file beside it, then a rename).

    The file gets the mode a plain ``open()`` would give it (:func:`new_file_mode`), not
    the 0600 of ``mkstemp``: a published report is as readable as the notebook beside it.

    Raises
    ------
    OSError
        With ``filename`` set to ``path`` (ENOSPC included); the temporary file is removed.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), new_file_mode())
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        exc.filename = exc.filename or str(path)
        raise


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented UTF-8 JSON, atomically."""
    write_text(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def disk_full_message(exc: BaseException, where: Path) -> str | None:
    """``no space left on device while writing <path>`` for ENOSPC, else None."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"no space left on device while writing {exc.filename or where}"
    return None


# --------------------------------------------------------------------------------------
# locks


def open_lock(path: Path) -> int:
    """Open (or create) a lock file without following links or truncating anything.

    Raises
    ------
    InputError
        When ``path`` is a symbolic link, not a regular file, or a regular file with other
        hard links (it could be someone else's file).
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(
                f"lock {path}: is a symbolic link; refusing to follow it (remove it)"
            ) from None
        raise InputError(f"lock {path}: cannot open ({exc.strerror or exc})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "has other hard links" if stat.S_ISREG(info.st_mode) else "is not a regular file"
        raise InputError(f"lock {path}: {what}; refusing to use it (remove it)")
    return fd


@contextlib.contextmanager
def lock(path: Path, what: str, wait: bool) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for one run (``what``: e.g. ``report 2026-10``).

    Raises
    ------
    ReportBusyError
        When another run holds it and ``wait`` is False.
    InputError
        For a lock path that is not a plain file of its own (see :func:`open_lock`).
    """
    fd = open_lock(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ReportBusyError(
                f"{what}: another run is building it (lock {path} is held); "
                "try again when it has finished, or pass --wait"
            ) from None
        since = datetime.now(UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {since}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the file releases the lock


# --------------------------------------------------------------------------------------
# what satmodel made


def _regular_json(path: Path) -> Any:
    """The JSON in ``path`` when it is a regular file (not a link), else None."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def written_by_satmodel(folder: Path) -> bool:
    """Whether ``folder`` (a real folder, not a link) holds satmodel's marker or manifest."""
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return False
    except OSError:
        return False
    tag = _regular_json(folder / MARKER)
    if isinstance(tag, dict) and tag.get("tool") == TOOL_TAG:
        return True
    for manifest in (folder / "manifest.json", folder / "failed" / "manifest.json"):
        found = _regular_json(manifest)
        if isinstance(found, dict) and "manifest_version" in found:
            return True
    return False


def remove_tree(path: Path) -> None:
    """Remove ``path``: a link or file is unlinked (never followed), a folder removed whole."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def check_target(target: Path, shown: str) -> None:
    """Refuse to replace ``target`` unless it is missing or a folder satmodel wrote.

    Raises
    ------
    InputError
        For a symbolic link, a file, or a folder without a satmodel manifest (``shown``: the
        path as the user named it).
    """
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise InputError(f"{shown}: is a symbolic link; refusing to follow it (remove it)")
    if not stat.S_ISDIR(info.st_mode):
        raise InputError(f"{shown}: exists and is not a folder")
    if not written_by_satmodel(target):
        raise InputError(f"{shown} exists and was not written by satmodel")


def clear_own(path: Path) -> None:
    """Remove a staging path of this run's key left by a killed run (the lock is held).

    Raises
    ------
    InputError
        When something is there that satmodel did not make (a link, a file, a foreign folder).
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise InputError(f"{path}: is a symbolic link; refusing to follow it (remove it)")
    if not written_by_satmodel(path):
        raise InputError(f"{path}: exists and was not made by satmodel (remove it)")
    remove_tree(path)


def make_staging(path: Path, key: str) -> Path:
    """Create the staging folder ``path`` (never an existing one) with the run's marker.

    Raises
    ------
    OSError
        When it cannot be made (disk full...); nothing is left behind.
    """
    os.mkdir(path, 0o755)
    if not stat.S_ISDIR(os.lstat(path).st_mode):  # swapped for something else meanwhile
        raise InputError(f"{path}: changed while it was being created")
    tag = {"tool": TOOL_TAG, "key": key, "pid": os.getpid()}
    try:
        write_json(path / MARKER, {**tag, "created_utc": datetime.now(UTC).isoformat()})
    except OSError:
        remove_tree(path)
        raise
    return path


# --------------------------------------------------------------------------------------
# publishing


def exchange(new: Path, target: Path) -> bool:
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


def publish(staging: Path, target: Path) -> None:
    """Put the finished folder in place of ``target`` (replacing an earlier one satmodel wrote).

    The marker goes first: the published folder is satmodel's by its manifest.
    """
    os.unlink(staging / MARKER)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        staging.rename(target)
        return
    if stat.S_ISLNK(info.st_mode):  # checked before the run; never swap a link
        raise InputError(f"{target}: is a symbolic link; refusing to follow it (remove it)")
    if exchange(staging, target):
        remove_tree(staging)  # now holds the earlier folder
        return
    old = target.with_name(f".{target.name}.old")
    target.rename(old)
    staging.rename(target)
    remove_tree(old)


def keep_failed(
    staging: Path, target: Path, manifest: dict[str, Any], error: str, stem: str
) -> Path:
    """Move what a failed run produced to ``target/failed/`` (replacing an earlier failure).

    Raises
    ------
    OSError
        When even that cannot be written (disk full); nothing half-written is left behind.
    InputError
        When ``target`` was swapped for a link (or a foreign folder) during the run.
    """
    failed = target / "failed"
    pending = target / ".failed.partial"
    old = target / ".failed.old"
    try:
        try:
            os.mkdir(target, 0o755)
        except FileExistsError:
            check_target(target, str(target))  # still ours: never write through a swapped link
        remove_tree(pending)
        os.mkdir(pending, 0o755)
        notebook = staging / f"{stem}.ipynb"
        if notebook.is_file() and not notebook.is_symlink():
            notebook.replace(pending / f"{stem}.ipynb")
        write_text(pending / "error.txt", error + "\n")
        write_json(pending / "manifest.json", manifest)
        remove_tree(old)
        if os.path.lexists(failed):
            failed.rename(old)
        pending.rename(failed)
        remove_tree(old)
    finally:
        remove_tree(pending)
        remove_tree(staging)
    return failed


# --------------------------------------------------------------------------------------
# output folder and sweeping


def writable_out(out: str | os.PathLike) -> Path:
    """The resolved output folder, created when missing.

    Raises
    ------
    InputError
        When it is a file, cannot be created, or nothing can be created in it (probed with a
        real folder: ``os.access`` says yes to root where creating still fails, e.g. ``/proc``,
        read-only mounts, immutable folders).
    """
    out_path = Path(out).expanduser().resolve()
    if out_path.exists() and not out_path.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    try:
        out_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create ({exc.strerror or exc})") from None
    try:
        probe = tempfile.mkdtemp(prefix=".satmodel-probe-", dir=out_path)
        os.rmdir(probe)
    except OSError as exc:
        raise InputError(f"--out {out}: not writable ({exc.strerror or exc})") from None
    return out_path


def _trash(entry: Path) -> None:
    """Move ``entry`` into a marked trash folder and remove that (a killed removal is swept)."""
    trash = Path(tempfile.mkdtemp(prefix=TRASH_PREFIX, dir=entry.parent))
    write_json(trash / MARKER, {"tool": TOOL_TAG, "key": "trash", "pid": os.getpid()})
    with contextlib.suppress(OSError):  # gone already: a concurrent sweep took it
        entry.rename(trash / entry.name)
    remove_tree(trash)


def sweep_stale(out: Path) -> list[str]:
    """Remove staging folders (``.KEY.partial``, ``.KEY.old``) that killed runs left behind.

    Only folders named like that AND made by satmodel (marker or manifest) are touched, and
    only when nobody holds the lock of their key: a live run holds it for as long as it runs,
    and a killed run's ``flock`` is released by the kernel when it dies. The lock is held only
    for an instant (to move the folder into trash), so a run of that key starting at the same
    moment is not told it is busy.

    Returns
    -------
    list of str
        The names removed.
    """
    removed = []
    for entry in sorted(out.iterdir()):
        if entry.name.startswith(TRASH_PREFIX):
            if written_by_satmodel(entry):
                remove_tree(entry)
            continue
        match = STAGING_NAME.fullmatch(entry.name)
        if not match or not written_by_satmodel(entry):
            continue
        try:
            fd = open_lock(out / f".{match.group(1)}.lock")
        except InputError:
            continue  # a lock we must not touch: leave its folder alone too
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live run owns it
            _trash(entry)
        finally:
            os.close(fd)
        if not os.path.lexists(entry):
            removed.append(entry.name)
    return removed
