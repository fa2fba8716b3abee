"""Which default drivers the data can carry: a driver whose column is absent, or null in
most rows, is left out of the default models with a note for the report (instead of every row
of the model being dropped, or no model being fitted)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

MOSTLY_NULL = 0.5  # a driver whose columns are null in more than this share is left out


def usable_drivers(
    frame: pd.DataFrame, drivers: Iterable[tuple[str, tuple[str, ...]]]
) -> tuple[list[str], list[str]]:
    """The driver terms whose columns are present and mostly measured, and why others are not.

    Parameters
    ----------
    frame : the model's data (e.g. :func:`model_view` of the panel).
    drivers : (term, columns it needs) pairs, e.g. ``satmodel.models.defaults.DEFAULT_DRIVERS``.

    Returns
    -------
    (terms, notes)
        The terms kept, in order, and one note per term left out (absent column, or more than
        :data:`MOSTLY_NULL` of its rows null), for the report.
    """
    kept, notes = [], []
    for term, columns in drivers:
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            notes.append(f"driver {term} left out of the model: column {absent[0]} is absent")
            continue
        share = _null_share(frame, columns)
        if share > MOSTLY_NULL:
            notes.append(
                f"driver {term} left out of the model: {100 * share:.0f}% of its rows have no "
                f"value (more than {100 * MOSTLY_NULL:.0f}%)"
            )
            continue
        kept.append(term)
    return kept, notes


def _null_share(frame: pd.DataFrame, columns: Iterable[str]) -> float:
    if not len(frame):
        return 1.0
    missing = frame[list(columns)].isna().any(axis=1)
    return float(missing.mean())


__all__ = ["MOSTLY_NULL", "usable_drivers"]
