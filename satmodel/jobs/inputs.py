"""The data source of a run: resolved, checked before any kernel starts, shown without secrets.

A database URL's password never reaches the notebook, the manifest, the HTML or a message:
the notebook gets the URL without it (:func:`satmodel.redaction.without_password`), messages
show it redacted, and the kernel process alone gets the password in ``PGPASSWORD``, which
libpq reads when the URL has none.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from satmodel.errors import InputError
from satmodel.jobs.files import sha256

PASSWORD_ENV = "PGPASSWORD"


def resolve_data(data: str | os.PathLike | None) -> Path | str:
    """The data source the notebook will open: an absolute path, or a database URL as given."""
    from satmodel.config import CONFIG_FILE_NAME, is_url, load_config

    if data not in (None, "") and is_url(str(data)):
        return str(data)
    if data not in (None, ""):
        return Path(data).expanduser().resolve()
    if Path(CONFIG_FILE_NAME).is_file():
        return Path(CONFIG_FILE_NAME).resolve()
    return Path(load_config(None).source).resolve()


def shown_source(data: Path | str) -> str:
    """The source as notebooks, manifests and messages may show it (no password)."""
    from satmodel.redaction import redact

    return redact(data) if isinstance(data, str) else str(data)


def notebook_source(data: Path | str) -> str:
    """The source as the notebook gets it: a URL without its password (see :func:`kernel_env`)."""
    from satmodel.redaction import without_password

    return without_password(data) if isinstance(data, str) else str(data)


def kernel_env(data: Path | str) -> dict[str, str]:
    """Environment variables only the kernel gets: the source's password, if it has one."""
    if not isinstance(data, str):
        return {}
    from psycopg.conninfo import conninfo_to_dict

    password = conninfo_to_dict(data).get("password")
    return {PASSWORD_ENV: str(password)} if password else {}


def inspect_source(
    data: Path | str,
    check: Callable[[object], None] | None = None,
    allowed_roots: list[Path] | None = None,
) -> tuple[tuple[str, str], dict[str, str]]:
    """Check a source before anything runs; its data window and input fingerprints.

    Parameters
    ----------
    data : a resolved source (:func:`resolve_data`).
    check : called with the open source after validation (e.g. the proposal's request check).
    allowed_roots : folders every path the source names must lie in (confined runs).

    Returns
    -------
    (first month, last month), {input: fingerprint}

    Raises
    ------
    InputError
        For a table-level fault (missing table or column, wrong type: the same check as
        :func:`satmodel.validation.quarantine`), a failed ``check``, or no dated rows.
    """
    from satmodel.reporting import data_window
    from satmodel.sources import open_source
    from satmodel.validation import quarantine

    source = open_source(data, allowed_roots=allowed_roots)
    try:
        quarantine(source, persist=False)
        if check is not None:
            check(source)
        window = data_window(source)
        fingerprints = source.fingerprint()
        if source.config.path is not None:
            path = Path(source.config.path).resolve()
            fingerprints[str(path)] = sha256(path)
    finally:
        source.close()
    if window is None:
        raise InputError(f"data {shown_source(data)}: no dated rows (usage.month, surveys.ts...)")
    return window, fingerprints
