"""The notebook kernel: a private IPC kernel manager, and the sweep of killed runs' kernels."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

KERNEL_FOLDER_PREFIX = "satmodel-kernel-"


@contextlib.contextmanager
def ipc_kernel_manager(env: Mapping[str, str] | None = None) -> Iterator[type]:
    """A kernel manager class whose kernel talks over Unix sockets in a private folder.

    Over TCP (the default) any local user can reach the kernel's ports and ipykernel warns about
    it on stderr at every run; IPC sockets live in a 0700 temporary folder removed afterwards.

    Parameters
    ----------
    env : extra environment variables for the kernel process only (e.g. a database password
        libpq reads), so they reach neither the notebook's parameters nor the disk.
    """
    from jupyter_client.manager import AsyncKernelManager

    sweep_kernel_folders()
    folder = tempfile.mkdtemp(prefix=f"{KERNEL_FOLDER_PREFIX}{os.getpid()}-")
    prefix = os.path.join(folder, "kernel")
    extra = dict(env or {})

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", prefix)
            super().__init__(**kwargs)

        async def start_kernel(self, **kw):
            if extra:
                kw["env"] = {**kw.get("env", os.environ), **extra}
            await super().start_kernel(**kw)

    try:
        yield IPCKernelManager
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_kernel_folders() -> None:
    """Remove kernel socket folders of runs that were killed (their process is gone)."""
    pattern = re.compile(rf"{re.escape(KERNEL_FOLDER_PREFIX)}(\d+)-\w+")
    base = Path(tempfile.gettempdir())
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match or pid_alive(int(match.group(1))):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink() and entry.stat().st_uid == os.getuid():
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue
