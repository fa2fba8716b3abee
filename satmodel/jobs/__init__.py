"""The job runner: monthly reports, sales proposals and case studies run as notebooks.

One run builds ``OUT/KEY/`` atomically (staging folder, papermill, HTML without code, summary,
manifest, swap into place) or keeps the failed notebook under ``OUT/KEY/failed/``:

- :mod:`~satmodel.jobs.files`: atomic writes, locks, staging, publishing, sweeping;
- :mod:`~satmodel.jobs.kernel`: the private IPC kernel manager and the kernel-folder sweep;
- :mod:`~satmodel.jobs.confinement`: project folders and path confinement;
- :mod:`~satmodel.jobs.parameters`: notebook parameter checks;
- :mod:`~satmodel.jobs.inputs`: the data source, checked first, shown without credentials;
- :mod:`~satmodel.jobs.html`: HTML export;
- :mod:`~satmodel.jobs.runner`: the job itself;
- :mod:`~satmodel.jobs.report` and :mod:`~satmodel.jobs.proposal`: the two entry points,
  taking :class:`ReportRequest` and :class:`ProposalRequest`.
"""

from satmodel.jobs.confinement import (
    ALLOW_PATHS_ENV,
    CONFINE_PATHS_ENV,
    allowed_outside_by_env,
    confine_path,
    confined_by_env,
)
from satmodel.jobs.errors import ReportBusyError, ReportError
from satmodel.jobs.html import export_html
from satmodel.jobs.parameters import check_parameters
from satmodel.jobs.proposal import ProposalRequest, default_proposal_notebook, run_proposal
from satmodel.jobs.report import ReportRequest, run_report
from satmodel.jobs.runner import run_notebook

__all__ = [
    "ALLOW_PATHS_ENV",
    "CONFINE_PATHS_ENV",
    "ProposalRequest",
    "ReportBusyError",
    "ReportError",
    "ReportRequest",
    "allowed_outside_by_env",
    "check_parameters",
    "confine_path",
    "confined_by_env",
    "default_proposal_notebook",
    "export_html",
    "run_notebook",
    "run_proposal",
    "run_report",
]
