"""Loading a report's data: the source, its validation and the panel up to the report month.

A report for month ``M`` uses the data up to and including ``M`` only: a backfilled report of
an old month shows what was known then (the quarantine rules, however, see the whole data).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from satmodel.calendar import check_month, last_complete_month, month_name
from satmodel.errors import InputError, SatmodelError
from satmodel.reporting.labels import MAX_TEXT_CHARS, md_escape
from satmodel.reporting.pseudonyms import (
    pseudonym_key,
    pseudonymise_ids,
    pseudonymised_validation,
    with_ids,
)

ALL_SEGMENTS = "All customers"


@dataclass
class ReportData:
    """Everything one monthly report is computed from.

    Attributes
    ----------
    month : the month reported, ``YYYY-MM``.
    window : first and last month of the data.
    source : the open source, with quarantined rows set aside.
    validation : the :class:`~satmodel.validation.ValidationReport`.
    config : the configuration in force (SLO thresholds...).
    panel : the service panel up to and including ``month``.
    responses : survey responses with their panel columns, up to ``month`` (None when the
        source has no surveys or the features module cannot build them).
    notes : things the reader should know (sections left out and why).
    ids : None, or (for a pseudonymised report) the function that maps a Series of real
        customer ids to their pseudonyms; ``panel``, ``responses`` and ``validation`` then
        already hold pseudonyms, and tables read from ``source`` must go through it.
    """

    month: str
    window: tuple[str, str]
    source: Any
    validation: Any
    config: Any
    panel: pd.DataFrame
    responses: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    ids: Callable[[pd.Series], pd.Series] | None = field(default=None, repr=False)

    @property
    def pseudonymised(self) -> bool:
        """True when customer ids are replaced by keyed pseudonyms (:func:`pseudonym`)."""
        return self.ids is not None


def up_to_month(frame: pd.DataFrame | None, month: str) -> pd.DataFrame | None:
    """The rows of ``frame`` up to and including ``month`` (unchanged without a month column)."""
    if frame is None or "month" not in frame.columns:
        return frame
    return frame.loc[frame["month"].astype(str) <= month].reset_index(drop=True)


def load_report_data(
    data: str | os.PathLike | None = None,
    month: str | None = None,
    now: datetime | None = None,
    pseudonymise: bool = False,
) -> ReportData:
    """Open, validate and build the panel for one monthly report.

    Parameters
    ----------
    data : a DuckDB file, a folder of tables or a ``satmodel.toml``; None or ``""`` for the
        default ``data/satmodel.duckdb``.
    month : ``YYYY-MM``; None or ``""`` for the last complete month in the data, in the
        data's ``[calendar] timezone``.
    now : the current time, for the default month (tests).
    pseudonymise : replace every customer id of the panel, the responses and the quarantine
        examples by its keyed pseudonym (:func:`pseudonym`, key from :func:`pseudonym_key`),
        for reports that leave the team. The source itself is left as it is.

    Returns
    -------
    ReportData

    Raises
    ------
    InputError
        For a bad month, a month outside the data, or table-level faults of the data.
    """
    from satmodel.workbook import Workbook

    book = Workbook(data or None)
    source, validation = book.source_, book.validation_
    window = book.window_
    if window is None:
        raise InputError("data: no dated rows (usage.month, surveys.ts...), so no month to report")
    zone = source.config.calendar.timezone
    month = check_month(month) if month else last_complete_month(window, now, zone)
    if not window[0] <= month <= window[1]:
        raise InputError(f"month {month}: outside the data's months {window[0]}..{window[1]}")
    panel = book.panel_
    notes = []
    responses = None
    try:
        responses = book.responses_
    except SatmodelError as exc:
        notes.append(f"survey responses could not be built ({exc})")
    ids = None
    if pseudonymise:
        key = pseudonym_key()

        def ids(values: pd.Series) -> pd.Series:
            return pseudonymise_ids(values, key)

        panel = with_ids(panel, ids)
        responses = with_ids(responses, ids)
        validation = pseudonymised_validation(validation, ids)
    return ReportData(
        month=month,
        window=tuple(window),
        source=source,
        validation=validation,
        config=source.config,
        panel=up_to_month(panel, month),
        responses=up_to_month(responses, month),
        notes=notes,
        ids=ids,
    )


def intro(data: ReportData):
    """The report's opening lines (month, data window, customers, source) as IPython Markdown."""
    from IPython.display import Markdown

    customers = int(
        data.panel.loc[data.panel["month"].astype(str) == data.month, "customer_id"].nunique()
    )
    lines = [
        f"Report for **{month_name(data.month)}** ({data.month}), "
        f"{customers:,} customers. Data from {data.window[0]} to {data.window[1]}; "
        f"this report uses the months up to {data.month} only.",
        f"Source: {md_escape(Path(str(data.source.location)).name, MAX_TEXT_CHARS)}.",
    ]
    lines += [f"Note: {md_escape(note, MAX_TEXT_CHARS)}" for note in data.notes]
    return Markdown("\n\n".join(lines))
