"""Notebook parameters and command-line text, checked before anything runs.

Papermill writes parameters into the notebook as Python source, so names must be plain
identifiers and values plain scalars (or flat lists of them) with no control characters.
"""

from __future__ import annotations

import keyword
import math
import os
import re
import unicodedata
from typing import Any

from satmodel.errors import InputError

MAX_PARAMETER_CHARS = 2000
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def bad_char(text: str) -> str | None:
    """The first control or line-separator character of ``text`` (as ``U+XXXX``), or None."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            return f"U+{ord(char):04X}"
    return None


def _bad_value(value: Any) -> str | None:
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "not a finite number"
    if isinstance(value, str):
        if len(value) > MAX_PARAMETER_CHARS:
            return f"longer than {MAX_PARAMETER_CHARS:,} characters"
        char = bad_char(value)
        return f"contains the control character {char}" if char else None
    if isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, list | tuple):
                return "nested lists are not allowed"
            reason = _bad_value(item)
            if reason:
                return reason
        return None
    return f"type {type(value).__name__} is not allowed (str, int, float, bool, list)"


def check_parameters(parameters: dict[str, Any], what: str = "notebook parameter") -> None:
    """Check notebook parameters before papermill writes them into the notebook.

    Names must be plain Python identifiers (not keywords); values None, bool, int, finite
    float or str, or lists of those; strings at most 2,000 characters with no control,
    format or line-separator character.

    Raises
    ------
    InputError
        One line per bad parameter.
    """
    problems = []
    for name, value in parameters.items():
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or keyword.iskeyword(name):
            problems.append(f"{what} {name!r}: not a plain name")
            continue
        reason = _bad_value(value)
        if reason:
            problems.append(f"{what} {name} = {str(value)[:60]!r}: {reason}")
    if problems:
        raise InputError(problems)


def check_text(values: dict[str, Any]) -> None:
    """Check command-line values (``--segment`` ...) for control characters.

    Raises
    ------
    InputError
        One line per value holding one.
    """
    problems = []
    for flag, value in values.items():
        if value is None:
            continue
        char = bad_char(str(value))
        if char:
            problems.append(f"{flag} {str(value)[:60]!r}: contains the control character {char}")
    if problems:
        raise InputError(problems)


def check_key(key: str) -> None:
    """Check an output folder's name: one plain path component, not hidden.

    Raises
    ------
    InputError
    """
    if not key or key.startswith(".") or "/" in key or os.sep in key or bad_char(key):
        raise InputError(f"output name {key!r}: must be a plain folder name")
