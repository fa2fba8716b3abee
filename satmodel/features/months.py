"""Calendar months and periods in a time zone (default UTC): names, bounds in epoch seconds,
time columns. The zone is ``[calendar] timezone`` (:class:`satmodel.config.CalendarSettings`);
month arithmetic and checks come from :mod:`satmodel.calendar`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from satmodel.calendar import (
    add_months,
    check_month,
    days_in_month,
    month_at,
    month_index,
    month_start,
)
from satmodel.schema import TABLES

__all__ = [
    "PERIOD_SECONDS",
    "check_month",
    "days_in_month",
    "month_bounds",
    "month_index",
    "month_of",
    "months_frame",
    "periods_frame",
    "time_columns",
    "window_columns",
]

PERIOD_SECONDS = {"D": 86_400, "h": 3_600}


def month_of(value: Any, timezone: str = "UTC") -> str | None:
    """``YYYY-MM`` in ``timezone`` of a timestamp (naive: UTC) or a month string; None when
    missing."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value[:7]
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    stamp = stamp.tz_convert(timezone)
    return f"{stamp.year:04d}-{stamp.month:02d}"


def month_bounds(month: str, timezone: str = "UTC") -> tuple[pd.Timestamp, pd.Timestamp]:
    """First instant of the month and of the next one, in ``timezone``."""
    return month_start(month, timezone), month_start(add_months(month, 1), timezone)


def months_frame(first: str, last: str, timezone: str = "UTC") -> pd.DataFrame:
    """Month names with their bounds in ``timezone`` in epoch seconds (month, m_start,
    m_end)."""
    indices = range(month_index(first), month_index(last) + 1)
    names = [month_at(i) for i in indices]
    starts = [int(month_start(m, timezone).timestamp()) for m in names]
    ends = [int(month_start(month_at(i + 1), timezone).timestamp()) for i in indices]
    return pd.DataFrame(
        {
            "month": pd.Series(names, dtype=object),
            "m_start": pd.Series(starts, dtype="int64"),
            "m_end": pd.Series(ends, dtype="int64"),
        }
    )


def periods_frame(month: str, freq: str, timezone: str = "UTC") -> pd.DataFrame:
    """The days (``freq="D"``) or hours (``"h"``) of a month: period (0, 1, ...), m_start,
    m_end in epoch seconds (the columns :func:`months_frame` has, for the same joins).

    The periods start at the month's first instant in ``timezone`` and are 24 h (1 h) long,
    so in a month with a daylight-saving change the last day ends an hour off the month end.
    """
    step = PERIOD_SECONDS[freq]
    start = int(month_bounds(month, timezone)[0].timestamp())
    n = days_in_month(month) * 86_400 // step
    starts = [start + i * step for i in range(n)]
    return pd.DataFrame(
        {
            "period": pd.Series(range(n), dtype="int64"),
            "m_start": pd.Series(starts, dtype="int64"),
            "m_end": pd.Series([s + step for s in starts], dtype="int64"),
        }
    )


def time_columns(table: str) -> list[str]:
    """Every timestamp or month column of a canonical table."""
    return [c.name for c in TABLES[table].columns if c.kind in ("timestamp", "month")]


def window_columns(table: str) -> list[str]:
    """The column whose month places a row of ``table`` in the data window (validation's)."""
    column = TABLES[table].time_column
    return [column] if column else []
