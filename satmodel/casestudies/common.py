"""What both case studies share: where their configs are, loading, fitting, effect tables."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from satmodel.errors import InputError, ModelWarning
from satmodel.resources import example_config

MS_PER_DAY = 86_400_000.0
CASE_STUDIES = {
    "olist_delivery": {
        "notebook": "case_studies/olist_delivery.ipynb",
        "config": "olist",
        "title": "Case study: Olist delivery delay and review scores",
    },
    "dot_baggage": {
        "notebook": "case_studies/dot_baggage.ipynb",
        "config": "dot_baggage",
        "title": "Case study: DOT mishandled baggage, cancellations and seasonality",
    },
}
"""Each case study's notebook (under notebooks/), example config (under examples/) and title."""


@dataclass
class CaseData:
    """A case study's data after validation and feature building.

    Attributes
    ----------
    source : the open :class:`~satmodel.sources.Source` (quarantine applied).
    validation : the :class:`~satmodel.validation.ValidationReport`.
    panel : the service panel.
    responses : survey responses with their panel columns (None without surveys).
    """

    source: Any
    validation: Any
    panel: pd.DataFrame
    responses: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def case_config(name: str) -> Path:
    """The example ``satmodel.toml`` of a case study (``olist_delivery`` or ``dot_baggage``)."""
    if name not in CASE_STUDIES:
        raise InputError(f"case study {name!r}: unknown (known: {', '.join(CASE_STUDIES)})")
    return example_config(CASE_STUDIES[name]["config"])


def load_case(data: str | os.PathLike) -> CaseData:
    """Open a source (usually a ``satmodel.toml``), quarantine bad rows, build the panel.

    Parameters
    ----------
    data : a ``satmodel.toml`` or any source :func:`satmodel.sources.open_source` accepts.

    Returns
    -------
    CaseData
    """
    from satmodel.workbook import Workbook

    book = Workbook(data)
    return CaseData(
        source=book.source_,
        validation=book.validation_,
        panel=book.panel_,
        responses=book.responses_,
    )


def data_quality(case: CaseData) -> pd.DataFrame:
    """Rows read and quarantined per canonical table."""
    rejected = case.validation.rejected.groupby("table_name")["rows"].sum()
    rows = [
        {
            "table_name": table,
            "rows_read": int(count),
            "rows_quarantined": int(rejected.get(table, 0)),
        }
        for table, count in case.validation.rows.items()
    ]
    return pd.DataFrame(rows, columns=["table_name", "rows_read", "rows_quarantined"])


def quiet_fit(*args, **kwargs):
    """:func:`satmodel.models.fit` without its model warnings (the case studies report fit
    quality themselves)."""
    from satmodel.models import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        return fit(*args, **kwargs)


def effects_table(models: dict[str, Any], names: dict[str, str] | None = None) -> pd.DataFrame:
    """Coefficients of several models in one tidy table with readable driver names.

    Returns
    -------
    DataFrame
        model, family, term, driver, estimate, std_error, ci_low, ci_high, p_value, ratio
        (exp(estimate): odds ratio for ordinal/logit, rate ratio for counts).
    """
    names = names or {}
    rows = []
    for key, result in models.items():
        for row in result.coefficients_.itertuples():
            if row.term == "Intercept":
                continue
            rows.append(
                {
                    "model": key,
                    "family": result.family,
                    "term": row.term,
                    "driver": names.get(row.term, row.term),
                    "estimate": row.estimate,
                    "std_error": row.std_error,
                    "ci_low": row.ci_low,
                    "ci_high": row.ci_high,
                    "p_value": row.p_value,
                    "ratio": math.exp(row.estimate) if np.isfinite(row.estimate) else math.nan,
                }
            )
    return pd.DataFrame(rows)
