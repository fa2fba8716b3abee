"""Pseudonyms: customer ids in reports that leave the team."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from satmodel.errors import InputError, SatmodelError

PSEUDONYM_KEY_ENV = "SATMODEL_PSEUDONYM_KEY"
PSEUDONYM_KEY_FILE = Path("data") / "pseudonym.key"
PSEUDONYM_PREFIX = "cust-"
MIN_KEY_CHARS = 16
MIN_DISTINCT_KEY_CHARS = 8


def _key_file() -> Path:
    return Path.cwd() / PSEUDONYM_KEY_FILE


def pseudonym_key(create: bool = False) -> bytes:
    """The secret key of :func:`pseudonym`.

    From the environment variable ``SATMODEL_PSEUDONYM_KEY`` (at least 16 characters), else
    from ``data/pseudonym.key`` under the working directory, which ``create=True`` makes on
    first use (64 random hex digits, mode 0600). Without the key a pseudonym cannot be traced
    back to its customer, even by trying every plausible id.

    Raises
    ------
    InputError
        When the key is too short, the key file is readable by others, or it is missing
        (and ``create`` is False) or cannot be created.
    """
    value = os.environ.get(PSEUDONYM_KEY_ENV, "")
    if value:
        if len(value) < MIN_KEY_CHARS:
            raise InputError(
                f"{PSEUDONYM_KEY_ENV}: too short ({len(value)} characters; need at least "
                f"{MIN_KEY_CHARS}, e.g. 64 random hex digits)"
            )
        _check_guessable(value, PSEUDONYM_KEY_ENV)
        return value.encode("utf-8")
    path = _key_file()
    if not path.exists():
        if not create:
            raise InputError(
                f"{path}: no pseudonym key (set {PSEUDONYM_KEY_ENV}, or run "
                "`satmodel report --pseudonymise` once to create it)"
            )
        _create_key_file(path)
    try:
        info = path.stat()
        mode = info.st_mode
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the pseudonym key ({exc})") from None
    if mode & 0o077:
        raise InputError(
            f"{path}: readable by others (mode {mode & 0o777:o}); run `chmod 600 {path}`"
        )
    if info.st_uid != os.geteuid():
        # another user could have chosen (and so know) the key
        raise InputError(
            f"{path}: owned by user id {info.st_uid}, not by you ({os.geteuid()}); a key "
            "someone else wrote is not secret: delete it and let satmodel create a new one"
        )
    if len(text) < MIN_KEY_CHARS:
        raise InputError(f"{path}: the pseudonym key is too short (need {MIN_KEY_CHARS}+ chars)")
    _check_guessable(text, str(path))
    return text.encode("ascii")


def _check_guessable(key: str, where: str) -> None:
    """Refuse a key with too few distinct characters (``aaaaaaaaaaaaaaaa``): guessable."""
    if len(set(key)) < MIN_DISTINCT_KEY_CHARS:
        raise InputError(
            f"{where}: the pseudonym key is guessable ({len(set(key))} distinct characters; "
            f"need {MIN_DISTINCT_KEY_CHARS}+, e.g. 64 random hex digits: "
            "python -c 'import secrets; print(secrets.token_hex(32))')"
        )


def _create_key_file(path: Path) -> None:
    """Create the key file atomically (a concurrent creator wins; its key is then used)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".pseudonym.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:  # mkstemp: mode 0600
                handle.write(secrets.token_hex(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # fails if it exists: never overwrite a key
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise InputError(f"{path}: cannot create the pseudonym key ({exc.strerror})") from None


def pseudonym(customer_id: Any, key: bytes) -> str:
    """The stable pseudonym of a customer id: ``cust-`` and 16 hex digits of HMAC-SHA256.

    The same id and key always give the same pseudonym (so reports of different months and
    proposals agree); another key gives unrelated ones.

    Examples
    --------
    >>> pseudonym("C0001", b"0123456789abcdef0123")
    'cust-7f7afe0fd450d798'
    """
    digest = hmac.new(key, str(customer_id).encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:16]


def pseudonymise_ids(values: pd.Series, key: bytes) -> pd.Series:
    """Map a Series of customer ids to pseudonyms (missing values stay missing).

    Raises
    ------
    SatmodelError
        When two ids would share a pseudonym (64 bits: not expected below billions of ids).
    """
    unique = pd.unique(values.dropna().astype(str))
    mapping = {value: pseudonym(value, key) for value in unique}
    if len(set(mapping.values())) != len(mapping):
        raise SatmodelError("pseudonyms: two customer ids share a pseudonym; use another key")
    out = values.astype(object).where(values.isna(), values.astype(str).map(mapping))
    return out.astype(object)


def with_ids(
    frame: pd.DataFrame | None, ids: Callable[[pd.Series], pd.Series] | None
) -> pd.DataFrame | None:
    """``frame`` with its customer_id column mapped through ``ids`` (unchanged when None)."""
    if frame is None or ids is None or "customer_id" not in frame.columns:
        return frame
    return frame.assign(customer_id=ids(frame["customer_id"]))


def pseudonymised_validation(validation, ids: Callable[[pd.Series], pd.Series]):
    """A copy of a validation report whose customer_id examples are pseudonyms."""
    import copy

    rejected = getattr(validation, "rejected", None)
    if rejected is None or not len(rejected):
        return validation
    out = copy.copy(validation)
    rejected = rejected.copy()
    mask = rejected["column_name"].astype(str) == "customer_id"
    if mask.any():
        rejected.loc[mask, "example"] = ids(rejected.loc[mask, "example"].astype(str)).to_numpy()
    out.rejected = rejected
    return out
