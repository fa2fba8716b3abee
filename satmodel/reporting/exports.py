"""CSV exports for sales, with spreadsheet formulas neutralised."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from satmodel.errors import InputError
from satmodel.filemodes import new_file_mode

# A cell starting with one of these is run as a formula by Excel, LibreOffice Calc or Google
# Sheets (OWASP "CSV injection": = + - @, tab and carriage return); the full-width forms are
# included because some spreadsheet imports fold them to their ASCII twins.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula.

    A string starting with ``= + - @``, a tab or a carriage return (or their full-width forms)
    gets a leading apostrophe, which spreadsheets read as "text follows" and do not show;
    anything else, numbers included, is returned unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _neutral_column(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_datetime64_any_dtype(
        column.dtype
    ):
        return column  # numbers stay numbers (a negative number is not a formula)
    return column.astype(object).map(neutralise_cell)


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table for spreadsheets (sales) atomically, with formulas neutralised.

    Every CSV export of the reports goes through this function. String cells and column names
    are passed through :func:`neutralise_cell`; numeric columns are written as numbers. The
    file is UTF-8 with a byte-order mark (so Excel reads accents right), with CRLF line ends
    (RFC 4180: a cell holding a CR or LF is quoted, so it cannot start a new row) and no
    index; it is written to a temporary file in the same folder, flushed to disk and then
    renamed over ``path``, so a reader never sees half a file.

    Parameters
    ----------
    frame : the table.
    path : the ``.csv`` file to write (its folder must exist).

    Returns
    -------
    Path
        The file written.
    """
    target = Path(path)
    safe = pd.DataFrame(
        {j: _neutral_column(frame.iloc[:, j]) for j in range(frame.shape[1])},
        index=range(len(frame)),
    )
    safe.columns = [neutralise_cell(str(c)) for c in frame.columns]
    text = safe.to_csv(index=False, lineterminator="\r\n")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, new_file_mode())  # mkstemp makes it 0600; open() would not
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def export_csv(frame: pd.DataFrame, out_dir: str | os.PathLike | None, name: str) -> Path | None:
    """Write ``frame`` as ``out_dir/name`` through :func:`write_csv`; nothing when out_dir is empty.

    For the notebooks: ``out_dir`` is ``""`` when they run interactively.
    """
    if not out_dir:
        return None
    if not name.endswith(".csv") or "/" in name or os.sep in name:
        raise InputError(f"export {name!r}: expected a plain file name ending in .csv")
    return write_csv(frame, Path(out_dir) / name)
