"""What a scheduler (cron, systemd timer) needs around a run: log lines and a notify hook."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from satmodel.errors import InputError

NOTIFY_TIMEOUT_SECONDS = 300
EXIT_LOOK = 3  # "built, but a scheduler must look" (DESIGN.md, report)


def log_line(text: str, timestamps: bool, stream=None) -> None:
    """Print one log line, prefixed with the UTC time in ISO 8601 when ``timestamps``."""
    stream = stream if stream is not None else sys.stdout
    if timestamps:
        text = f"{datetime.now(UTC).isoformat(timespec='seconds')} {text}"
    print(text, file=stream, flush=True)


def notify_argv(command: str) -> list[str]:
    """The argument vector of a ``--notify-command`` (shell words, no shell is started).

    Raises
    ------
    InputError
        When the command is empty or its quoting is broken.
    """
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise InputError(f"--notify-command {command!r}: {exc}") from None
    if not argv:
        raise InputError("--notify-command: empty command (e.g. --notify-command 'notify-ops')")
    return argv


def notify(
    argv: Sequence[str],
    exit_code: int,
    report: str | os.PathLike,
    messages: Sequence[str],
) -> str | None:
    """Run the notify command of a run that ended with exit code 1 or 3.

    The command gets ``SATMODEL_EXIT_CODE``, ``SATMODEL_REPORT`` (the report folder, or for a
    failed run the reports folder) and ``SATMODEL_MESSAGE`` (the problems, one per line) in
    its environment. Its own failure never changes the run's exit code.

    Returns
    -------
    str or None
        A one-line warning when the command could not run or failed, else None.
    """
    env = {
        **os.environ,
        "SATMODEL_EXIT_CODE": str(exit_code),
        "SATMODEL_REPORT": str(Path(report).resolve()),
        "SATMODEL_MESSAGE": "\n".join(messages),
    }
    try:
        done = subprocess.run(
            list(argv),
            env=env,
            timeout=NOTIFY_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"notify command {argv[0]!r} could not run: {exc}"
    if done.returncode != 0:
        return f"notify command {argv[0]!r} exited with {done.returncode}"
    return None
