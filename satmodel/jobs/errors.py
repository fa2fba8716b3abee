"""The job runner's errors (CLI exit 1)."""

from __future__ import annotations

from satmodel.errors import SatmodelError


class ReportError(SatmodelError):
    """A run failed (CLI exit 1); the message says where the failed notebook is."""


class ReportBusyError(SatmodelError):
    """Another run holds the lock of this output (CLI exit 1)."""
