"""Model diagnostics section: every check of every fitted model."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from satmodel.errors import SatmodelError
from satmodel.reporting.data import ReportData
from satmodel.reporting.drivers import ModelSection


def model_frame(data: ReportData, name: str) -> pd.DataFrame | None:
    """The rows a default model is fitted on: responses, or customer-months with users."""
    if name in ("csat", "top2"):
        return data.responses
    panel = data.panel
    if "active_users" not in panel:
        return panel
    return panel.loc[pd.to_numeric(panel["active_users"], errors="coerce") > 0]


def model_diagnostics(models: ModelSection, data: ReportData) -> pd.DataFrame:
    """Every check of :func:`satmodel.evaluation.diagnostics` for every fitted model.

    Returns
    -------
    DataFrame
        model, check, value, threshold, ok, note (a check that could not run has ok False
        and the reason in note).
    """
    columns = ["model", "check", "value", "threshold", "ok", "note"]
    if not models.results:
        return pd.DataFrame(columns=columns)
    from satmodel.evaluation import diagnostics

    frames = []
    for name, result in models.results.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                table = diagnostics(result, model_frame(data, name))
            except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
                table = pd.DataFrame(
                    [
                        {
                            "check": "diagnostics",
                            "value": math.nan,
                            "threshold": math.nan,
                            "ok": False,
                            "note": str(exc).splitlines()[0],
                        }
                    ]
                )
        table.insert(0, "model", name)
        frames.append(table)
    out = pd.concat(frames, ignore_index=True)
    out["ok"] = out["ok"].astype(bool)
    return out[columns]


def _reading(value) -> str:
    """A check's number as a reader writes it: ``17,109``, ``0.043``, ``1.2e-05``, ``-``."""
    if pd.isna(value):
        return "-"
    value = float(value)
    if value == round(value) and abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) >= 1e-4 else f"{value:.2g}"


def diagnostics_view(diagnosed: pd.DataFrame) -> pd.DataFrame:
    """:func:`model_diagnostics` for the page: each value and threshold written for its own
    check (counts whole, statistics to 3 significant digits), not to one precision for all."""
    return diagnosed.assign(
        value=[_reading(v) for v in diagnosed["value"]],
        threshold=[_reading(v) for v in diagnosed["threshold"]],
    )


def diagnostic_warnings(diagnosed: pd.DataFrame) -> list[str]:
    """One line per failed diagnostic check (``model: check value (threshold): note``)."""
    lines = []
    for r in diagnosed.loc[~diagnosed["ok"].astype(bool)].itertuples(index=False):
        note = f": {r.note}" if r.note else ""
        lines.append(
            f"{r.model}: {r.check} = {_reading(r.value)} (threshold {_reading(r.threshold)}){note}"
        )
    return lines
