"""Running a case-study notebook like the monthly report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from satmodel.casestudies.common import CASE_STUDIES, case_config
from satmodel.errors import InputError


def run_case_study(
    name: str,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike = "reports/case_studies",
    parameters: dict[str, Any] | None = None,
    progress: bool = False,
    timeout: float | None = 1800,
) -> Path:
    """Execute a case-study notebook into ``out/<name>/`` with papermill, as the report does.

    Parameters
    ----------
    name : ``olist_delivery`` or ``dot_baggage``.
    data : the ``satmodel.toml`` (default: the example config of the case study).
    out : the parent folder of the output.
    parameters : other notebook parameters.
    progress : show papermill's progress bar.
    timeout : seconds one cell may run.

    Returns
    -------
    Path
        ``out/<name>/`` holding report.ipynb, report.html, summary.json, manifest.json.
    """
    from satmodel.jobs import run_notebook
    from satmodel.resources import notebook_path

    config = case_config(name)
    data = Path(data) if data is not None else config
    if not Path(data).exists():
        raise InputError(f"case study {name}: data {data} not found")
    spec = CASE_STUDIES[name]
    return run_notebook(
        notebook_path(spec["notebook"]),
        out,
        key=name,
        parameters=dict(parameters or {}),
        data=data,
        kind="report",
        title=spec["title"],
        manifest={"case_study": name},
        progress=progress,
        timeout=timeout,
    )
