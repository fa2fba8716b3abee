"""Compatibility names for callers of the old ``satmodel.report`` module.

The runner lives in :mod:`satmodel.jobs`; :func:`run_report` and :func:`run_proposal` here take
the request's fields as keywords and build the request.
"""

from __future__ import annotations

from pathlib import Path

from satmodel.jobs import (
    ALLOW_PATHS_ENV,
    CONFINE_PATHS_ENV,
    ProposalRequest,
    ReportBusyError,
    ReportError,
    ReportRequest,
    allowed_outside_by_env,
    check_parameters,
    confine_path,
    confined_by_env,
    default_notebook,
    default_proposal_notebook,
    export_html,
    run_notebook,
)
from satmodel.jobs import proposal as proposal_job
from satmodel.jobs import report as report_job
from satmodel.jobs.kernel import ipc_kernel_manager

__all__ = [
    "ALLOW_PATHS_ENV",
    "CONFINE_PATHS_ENV",
    "ReportBusyError",
    "ReportError",
    "allowed_outside_by_env",
    "check_parameters",
    "confine_path",
    "confined_by_env",
    "default_notebook",
    "default_proposal_notebook",
    "export_html",
    "run_notebook",
    "run_proposal",
    "run_report",
]

# tests/test_notebooks.py imports the kernel manager under its old name
_ipc_kernel_manager = ipc_kernel_manager


def run_report(**fields) -> Path | list[Path]:
    """:func:`satmodel.jobs.report.run_report` of ``ReportRequest(**fields)``."""
    return report_job.run_report(ReportRequest(**fields))


def run_proposal(**fields) -> Path:
    """:func:`satmodel.jobs.proposal.run_proposal` of ``ProposalRequest(**fields)``."""
    return proposal_job.run_proposal(ProposalRequest(**fields))
