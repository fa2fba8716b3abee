"""Tables and notes as the report shows them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from satmodel.reporting.labels import (
    LABELS,
    MAX_TEXT_CHARS,
    availability_digits,
    check_label,
    escape_label,
    family_label,
    md_escape,
    model_label,
    plain_terms,
    segment_label,
    term_label,
)

# Columns whose values are identifiers, shown as a manager reads them; free-text columns
# have the model terms inside them put in words.
_VALUES_SHOWN_AS = {
    "segment": segment_label,
    "model": model_label,
    "family": family_label,
    "check": check_label,
    "term": term_label,
    "warnings": plain_terms,
    "note": plain_terms,
    "reason": plain_terms,
}


def _number(precision: int, whole: bool = False):
    """A formatter: ``-`` for missing, yes/no for booleans, whole numbers without decimals."""

    def formatted(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, bool | np.bool_):
            return "yes" if value else "no"
        if whole or isinstance(value, int | np.integer):
            return f"{float(value):,.0f}"
        return f"{float(value):,.{precision}f}"

    return formatted


def _p_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _whole(column: pd.Series) -> bool:
    values = pd.to_numeric(column, errors="coerce").dropna()
    return bool(len(values)) and bool((values == values.round()).all())


def _html_text(value: Any) -> str:
    return escape_label(value, "html", MAX_TEXT_CHARS)


def _moment(value) -> str | None:
    """A timestamp as a reader writes it: ``1 Nov 2026 00:01 UTC`` (None when missing)."""
    if pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return f"{stamp.day} {stamp:%b %Y %H:%M} UTC"


def _is_availability(column: str) -> bool:
    """An availability level in % (not a share of customers or months meeting one)."""
    return "availability" in column and column.endswith("_pct") and "met" not in column


def _availability_text(value, precision: int) -> str:
    """``99.95``, ``99.962``, ``100.0``: the downtime to two significant digits, trailing
    zeros beyond ``precision`` decimals dropped."""
    if pd.isna(value):
        return "-"
    text = f"{value:,.{availability_digits(value, precision)}f}"
    whole, _, decimals = text.partition(".")
    decimals = decimals.rstrip("0").ljust(precision, "0")
    return f"{whole}.{decimals}" if decimals else whole


def show(
    frame: pd.DataFrame,
    caption: str | None = None,
    precision: int = 2,
    key: str = "t",
    empty: str = "Nothing to show.",
    headers: dict[str, str] | None = None,
    whole: tuple[str, ...] = (),
):
    """A table for the report: readable column labels, no index, numbers rounded.

    Columns of whole numbers are shown without decimals (in the headline table, which mixes
    measures by row, every whole number is, and so is every number of a plain count's row,
    its averages included), p-values as ``<0.001`` when tiny, text is
    left-aligned, missing values are ``-``. Segments, models, model terms and diagnostic
    checks are shown in words (:mod:`satmodel.reporting.labels`), as are the model terms
    inside warnings and notes.

    Parameters
    ----------
    frame : a tidy table.
    caption : shown above the table.
    precision : decimals of other numbers.
    key : a stable id for the table's HTML (keeps the HTML deterministic).
    empty : the sentence shown instead of an empty table.
    headers : column headers of this table that differ from :data:`LABELS` (where the
        same column name means something else, e.g. ``flagged`` as a count).
    whole : columns rounded to whole numbers (expected counts: say so in the caption).

    Returns
    -------
    pandas.io.formats.style.Styler or IPython.display.Markdown
    """
    if frame.empty:
        from IPython.display import Markdown

        return Markdown(f"**{md_escape(caption, MAX_TEXT_CHARS)}**: {empty}" if caption else empty)
    shown = frame.drop(columns=[c for c in ("kpi", "higher_is_better") if c in frame])
    for column, in_words in _VALUES_SHOWN_AS.items():
        if column in shown and not pd.api.types.is_numeric_dtype(shown[column]):
            shown[column] = [v if pd.isna(v) else in_words(v) for v in shown[column]]
    for column in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[column]):
            shown[column] = [_moment(t) for t in shown[column]]
    text = [c for c in shown.columns if not pd.api.types.is_numeric_dtype(shown[c])]
    numbers = [c for c in shown.columns if c not in text]
    names = {**LABELS, **(headers or {})}
    labels: dict[str, str] = {}
    for c in shown.columns:
        label = names.get(c, c.replace("_", " "))
        labels[c] = label if label not in labels.values() else f"{label} ({c})"
    shown = shown.rename(columns=labels)
    styler = shown.style.set_uuid(key).hide(axis="index")
    by_cell = "kpi" in frame.columns
    # plain counts (responses, complaints, users) and their averages: whole numbers
    counts = (
        list(frame.index[frame["higher_is_better"].isna()])
        if by_cell and "higher_is_better" in frame
        else []
    )
    for column in numbers:
        if column == "p_value":
            styler = styler.format(_p_value, subset=[labels[column]])
        elif by_cell:
            styler = styler.format(
                lambda v: _number(precision, whole=_whole(pd.Series([v])))(v),
                subset=[labels[column]],
            )
            if counts:
                styler = styler.format(
                    _number(precision, whole=True), subset=(counts, [labels[column]])
                )
        elif _is_availability(column):
            styler = styler.format(
                lambda v: _availability_text(v, precision), subset=[labels[column]]
            )
        else:
            rounded = column in whole or _whole(shown[labels[column]])
            styler = styler.format(_number(precision, whole=rounded), subset=[labels[column]])
    styler = styler.format(_html_text, na_rep="-", subset=[labels[c] for c in text])
    styler = styler.format_index(_html_text, axis=1)
    if text:
        styler = styler.set_properties(subset=[labels[c] for c in text], **{"text-align": "left"})
    if caption:
        styler = styler.set_caption(_html_text(caption))
    # the classes MathJax skips: JupyterLab would otherwise typeset "$...$" in a cell as maths
    styler = styler.set_table_attributes('class="tex2jax_ignore mathjax_ignore"')
    return styler.set_table_styles(
        [
            {"selector": "caption", "props": "caption-side: top; font-weight: bold;"},
            {"selector": "th", "props": "text-align: left;"},
        ]
    )


def notes_markdown(*groups: list[str]):
    """A bullet list of notes and warnings as IPython Markdown (``None`` when there are none)."""
    from IPython.display import Markdown

    lines = [line for group in groups for line in group]
    if not lines:
        return Markdown("No warnings.")
    return Markdown(
        "\n".join(f"- {md_escape(plain_terms(line), MAX_TEXT_CHARS)}" for line in lines)
    )
