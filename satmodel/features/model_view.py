"""The model-ready view of the panel (or of the survey responses): what the default models'
design needs, leaving the panel's own columns as the contract says.

A customer-month without tickets has no resolution time (null in the panel: nothing to
measure). Dropping such rows from a model would drop their responses and complaints too, so
the view adds ``no_tickets`` (1 when ``tickets`` is 0) and fills ``resolution_hours_median``
with 0 there: with ``no_tickets`` in the model the filled value carries no effect of its own.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

MOSTLY_NULL = 0.5  # a driver whose columns are null in more than this share is left out


def model_view(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with ``no_tickets`` and the resolution time filled where no ticket.

    Parameters
    ----------
    frame : the panel or the responses (needs ``tickets`` and ``resolution_hours_median``;
        returned as a plain copy without them).

    Returns
    -------
    DataFrame
    """
    view = frame.copy()
    if not {"tickets", "resolution_hours_median"} <= set(view.columns):
        return view
    none = pd.to_numeric(view["tickets"], errors="coerce").fillna(0).eq(0)
    view["no_tickets"] = none.astype("int64")
    view.loc[none, "resolution_hours_median"] = view.loc[none, "resolution_hours_median"].fillna(
        0.0
    )
    return view


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


__all__ = ["MOSTLY_NULL", "model_view", "usable_drivers"]
