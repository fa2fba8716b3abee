"""Did-you-mean hints for names a user typed (segments, customers, levers, options...)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(value: object, choices: Iterable[object], n: int = 3) -> str:
    """A ``"; did you mean X?"`` suffix naming the choices closest to ``value``.

    Parameters
    ----------
    value : what the user gave.
    choices : the valid values (any order; compared as strings, case-insensitively first).
    n : at most this many suggestions.

    Returns
    -------
    str
        ``"; did you mean a, b?"``, or ``""`` when nothing is close.
    """
    known = sorted({str(c) for c in choices})
    wanted = str(value)
    lowered = {c.lower(): c for c in known}
    if wanted.lower() in lowered and lowered[wanted.lower()] != wanted:
        return f"; did you mean {lowered[wanted.lower()]}?"
    close = difflib.get_close_matches(wanted.lower(), list(lowered), n=n, cutoff=0.6)
    if not close:
        return ""
    return f"; did you mean {', '.join(lowered[c] for c in close)}?"
