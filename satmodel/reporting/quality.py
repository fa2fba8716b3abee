"""Data quality section: rows read and quarantined, and why."""

from __future__ import annotations

import pandas as pd


def data_quality(validation) -> pd.DataFrame:
    """Rows read and quarantined per table.

    Parameters
    ----------
    validation : a :class:`~satmodel.validation.ValidationReport`.

    Returns
    -------
    DataFrame
        table_name, rows_read, rows_quarantined, quarantined_pct; a last row ``all tables``.
    """
    rejected = validation.rejected
    by_table = (
        rejected.groupby("table_name")["rows"].sum() if len(rejected) else pd.Series(dtype=int)
    )
    rows = []
    for table, read in validation.rows.items():
        quarantined = int(by_table.get(table, 0))
        rows.append(
            {
                "table_name": table,
                "rows_read": int(read),
                "rows_quarantined": quarantined,
                "quarantined_pct": 100 * quarantined / read if read else 0.0,
            }
        )
    total_read = sum(r["rows_read"] for r in rows)
    total_bad = sum(r["rows_quarantined"] for r in rows)
    rows.append(
        {
            "table_name": "all tables",
            "rows_read": total_read,
            "rows_quarantined": total_bad,
            "quarantined_pct": 100 * total_bad / total_read if total_read else 0.0,
        }
    )
    return pd.DataFrame(rows)


def quarantine_reasons(validation) -> pd.DataFrame:
    """Why rows were quarantined: table_name, column_name, reason, rows, example."""
    columns = ["table_name", "column_name", "reason", "rows", "example"]
    rejected = validation.rejected
    if not len(rejected):
        return pd.DataFrame(columns=columns)
    out = rejected[columns].copy()
    out["rows"] = out["rows"].astype(int)
    out["example"] = out["example"].astype(str)
    return out.sort_values(["rows", "table_name", "column_name"], ascending=[False, True, True])


def validation_notes(validation) -> list[str]:
    """The validation's notes (optional tables or columns absent...), for the report."""
    return list(getattr(validation, "notes", []) or [])
