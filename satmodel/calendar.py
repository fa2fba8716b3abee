"""Calendar months, the one owner of ``YYYY-MM`` months in satmodel.

A month is a ``YYYY-MM`` string of ASCII digits (:func:`check_month`); every other function
here takes a month already checked.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pandas as pd

from satmodel.errors import InputError

__all__ = [
    "MONTH_PATTERN",
    "add_months",
    "check_month",
    "current_month",
    "data_window",
    "days_in_month",
    "last_complete_month",
    "minutes_in_month",
    "month_abbr",
    "month_at",
    "month_index",
    "month_name",
    "month_range",
    "month_start",
    "stale_month",
]

# ASCII digits only: ``\d`` would also take full-width digits (``２０２５-06``), which int()
# reads, so a range of such months would never reach its end.
MONTH_PATTERN = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def check_month(value: str, name: str = "month") -> str:
    """Return ``value`` when it is a ``YYYY-MM`` month, else raise :class:`InputError`.

    Parameters
    ----------
    value : the month to check.
    name : how the value is named in the error message (e.g. ``--month``).
    """
    if not isinstance(value, str) or not MONTH_PATTERN.fullmatch(value):
        raise InputError(f"{name} {value!r}: expected a month as YYYY-MM, e.g. 2026-10")
    return value


def month_index(month: str) -> int:
    """Months since year 0: ``2026-10`` -> 24,321 (so months subtract as integers)."""
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_at(index: int) -> str:
    """The ``YYYY-MM`` month of a :func:`month_index`: ``24321`` -> ``2026-10`` (its inverse)."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def add_months(month: str, n: int) -> str:
    """The month ``n`` months after ``month`` (``n`` may be negative)."""
    return month_at(month_index(month) + n)


def month_range(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last``, both included (empty when first > last)."""
    # counted, not compared as strings: a range always ends, whatever digits it was given
    count = month_index(last) - month_index(first) + 1
    return [add_months(first, i) for i in range(max(count, 0))]


def minutes_in_month(month: str, timezone: str = "UTC") -> int:
    """Number of minutes in a calendar month in ``timezone`` (default UTC).

    A month with a daylight-saving change is an hour shorter or longer than its days.
    """
    if timezone == "UTC":  # the common case, mapped over whole panels: no timestamps
        return calendar.monthrange(int(month[:4]), int(month[5:7]))[1] * 24 * 60
    span = month_start(add_months(month, 1), timezone) - month_start(month, timezone)
    return int(span.total_seconds()) // 60


def month_name(month: str) -> str:
    """``2026-10`` -> ``October 2026``."""
    return f"{calendar.month_name[int(month[5:7])]} {month[:4]}"


def data_window(source) -> tuple[str, str] | None:
    """First and last month of a source's data, without loading it.

    The months of the ``usage`` table when present (the same window validation uses), else
    the months of the survey, complaint and request timestamps, in the source's
    ``[calendar] timezone``.

    Parameters
    ----------
    source : an open :class:`satmodel.sources.Source`.

    Returns
    -------
    tuple of str or None
        ``(first, last)`` as ``YYYY-MM``, or None when the source holds no dated row.
    """
    con = source.con
    if source.has("usage") and "month" not in source.missing_columns.get("usage", []):
        rows = con.execute(
            "SELECT min(month), max(month) FROM raw.usage "
            "WHERE regexp_full_match(month, '[0-9]{4}-(0[1-9]|1[0-2])')"
        ).fetchall()
        if rows[0][0] is not None:
            return rows[0][0], rows[0][1]
    zone = source.config.calendar.timezone
    # the zone name is checked against the IANA list when the config is read
    local = "{}" if zone == "UTC" else f"timezone('{zone}', {{}})"
    firsts, lasts = [], []
    for table in ("surveys", "complaints", "requests"):
        if not source.has(table) or "ts" in source.missing_columns.get(table, []):
            continue
        first, last = local.format("min(ts)"), local.format("max(ts)")
        rows = con.execute(
            f"SELECT strftime({first}, '%Y-%m'), strftime({last}, '%Y-%m') FROM raw.{table} "
            "WHERE ts >= TIMESTAMPTZ '2000-01-01 00:00:00+00'"
        ).fetchall()
        if rows[0][0] is not None:
            firsts.append(rows[0][0])
            lasts.append(rows[0][1])
    return (min(firsts), max(lasts)) if firsts else None


def current_month(now: datetime | date | None = None, timezone: str = "UTC") -> str:
    """The calendar month, ``YYYY-MM``, that ``now`` falls in, in ``timezone``.

    Parameters
    ----------
    now : the current time (a naive value is UTC), or a calendar day (already local: its
        month is taken as it is); defaults to now.
    timezone : IANA zone whose months count (``[calendar] timezone``), e.g. ``Asia/Shanghai``.
    """
    if isinstance(now, date) and not isinstance(now, datetime):
        return f"{now.year:04d}-{now.month:02d}"
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    local = now.astimezone(ZoneInfo(timezone))
    return f"{local.year:04d}-{local.month:02d}"


def last_complete_month(
    window: tuple[str, str] | None, now: datetime | date | None = None, timezone: str = "UTC"
) -> str:
    """The month a report covers by default: the last complete month in the data.

    That is the last month of the data window whose calendar end is in the past: when the
    data reaches into the current (unfinished) month, the month before it.

    Parameters
    ----------
    window : ``(first, last)`` month of the data, from :func:`data_window`.
    now, timezone : the current time or day and the zone whose months count
        (:func:`current_month`).

    Raises
    ------
    InputError
        When the data holds no complete month.
    """
    if window is None:
        raise InputError("data: no dated rows (usage.month, surveys.ts...), so no month to report")
    current = current_month(now, timezone)
    month = min(window[1], add_months(current, -1))
    if month < window[0]:
        raise InputError(
            f"data: no complete month yet (data covers {window[0]}..{window[1]}, "
            f"current month {current})"
        )
    return month


def stale_month(
    window: tuple[str, str], now: datetime | date | None = None, timezone: str = "UTC"
) -> str | None:
    """The last complete calendar month when the data does not reach it (a stale feed).

    Parameters
    ----------
    window : ``(first, last)`` month of the data.
    now, timezone : as for :func:`current_month`.

    Returns
    -------
    str or None
        ``YYYY-MM`` of the month missing from the data, None when the data is up to date.
    """
    expected = add_months(current_month(now, timezone), -1)
    return expected if window[1] < expected else None


def month_start(month: str, timezone: str = "UTC") -> pd.Timestamp:
    """The first instant of a month in ``timezone`` (default UTC)."""
    return pd.Timestamp(f"{month}-01").tz_localize(timezone)


def days_in_month(month: str) -> int:
    """Number of days in a calendar month."""
    return calendar.monthrange(int(month[:4]), int(month[5:7]))[1]


def month_abbr(month: str) -> str:
    """``2026-10`` -> ``Oct``."""
    return calendar.month_abbr[int(month[5:7])]
