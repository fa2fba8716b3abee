"""Sales proposals: ``notebooks/03_expectation_to_support.ipynb`` into ``OUT/<name>-csat<X>.../``.

Writes ``proposal.ipynb``, ``proposal.html`` (no code, offline), ``summary.json`` and
``manifest.json`` with the report's guarantees, after checking the segment or customer against
the data.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from satmodel.errors import InputError
from satmodel.jobs.confinement import confine
from satmodel.jobs.files import writable_out
from satmodel.jobs.inputs import inspect_source, resolve_data
from satmodel.jobs.parameters import check_parameters, check_text
from satmodel.jobs.runner import Job, run_job
from satmodel.resources import notebook_path
from satmodel.vocabulary import DEFAULT_ASSURANCE

PROPOSAL_NOTEBOOK_NAME = "03_expectation_to_support.ipynb"


def default_proposal_notebook() -> Path:
    """The sales notebook (package data, else the source tree's ``notebooks/``)."""
    return notebook_path(PROPOSAL_NOTEBOOK_NAME)


@dataclass(frozen=True)
class ProposalRequest:
    """What proposal to build, and how to run it.

    Not :class:`satmodel.reporting.ProposalRequest`, the notebook's view of who it is for.

    Attributes
    ----------
    segment, customer : who the proposal is for (exactly one).
    csat_target : the mean CSAT (1-5) the customer expects.
    complaint_target : at most this many complaints per 1,000 active users (optional).
    data : the data source (as for :class:`satmodel.jobs.report.ReportRequest`).
    out : the proposals folder (default ``reports/proposals``).
    month : the last month of data used (default: the last complete month).
    tiers : the candidate service tiers, e.g. ``"Bronze 99.5/800/24; Gold 99.95/300/4"``;
        None for the default tiers.
    assurance : the probability (0 < p < 1) with which the cheapest plan must reach each
        target (default 0.8); the notebook parameter ``assurance``.
    progress, wait, notebook, parameters, timeout, now, allow_outside : as for
        :class:`~satmodel.jobs.report.ReportRequest`.
    pseudonymise : as for ``ReportRequest``; a customer's proposal is then named, titled and
        run with the customer's pseudonym, and error messages show pseudonyms only.
    """

    segment: str | None = None
    customer: str | None = None
    csat_target: float | None = None
    complaint_target: float | None = None
    data: str | os.PathLike | None = None
    out: str | os.PathLike = "reports/proposals"
    month: str | None = None
    tiers: str | None = None
    assurance: float = DEFAULT_ASSURANCE
    progress: bool = True
    wait: bool = False
    notebook: str | os.PathLike | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = 3600
    now: datetime | None = None
    allow_outside: bool = True
    pseudonymise: bool = False


def proposal_key(
    segment: str | None, customer: str | None, csat_target: float, complaint_target: float | None
) -> str:
    """The proposal's folder name: :func:`satmodel.reporting.proposal_slug`, plus 8 hex digits
    of the exact name's SHA-256 when the slug had to change the name (so ``smb!`` and ``smb``
    never share a folder)."""
    from satmodel.reporting import proposal_slug

    slug = proposal_slug(segment, customer, csat_target, complaint_target)
    name = f"{segment}" if segment not in (None, "") else f"customer-{customer}"
    if slug.startswith(f"{name}-csat"):
        return slug
    return f"{slug}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


def pseudonymise_ids(text: str, ids: list[str], key: bytes) -> str:
    """``text`` with every customer id of ``ids`` (a whole token, longest first) replaced by its
    pseudonym."""
    from satmodel.reporting import pseudonym

    if not ids:
        return text
    alternatives = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
    return pattern.sub(lambda match: pseudonym(match.group(0), key), text)


def _request_check(request: ProposalRequest, key: bytes | None):
    """The check of the request against the open source (pseudonymised messages with a key)."""
    from satmodel.reporting import check_proposal_request

    def check(source) -> None:
        try:
            check_proposal_request(
                source,
                request.segment,
                request.customer,
                request.csat_target,
                request.complaint_target,
            )
        except InputError as exc:
            if key is None:
                raise
            ids = [
                str(row[0])
                for row in source.con.execute(
                    "SELECT DISTINCT customer_id FROM raw.customers WHERE customer_id IS NOT NULL"
                ).fetchall()
            ]
            raise InputError([pseudonymise_ids(line, ids, key) for line in exc.problems]) from None

    return check


def run_proposal(request: ProposalRequest) -> Path:
    """Build a one-page expectation-to-support proposal for a segment or one customer.

    Returns
    -------
    Path
        The proposal folder, ``out/<name>-csat<X>[-complaints<Y>]`` (:func:`proposal_key`).

    Raises
    ------
    InputError
        For an unknown segment or customer (naming valid ones), a target outside its range, a
        malformed month or tier list, an assurance outside (0, 1), a missing source, a table-level fault or an unusable
        out folder (CLI exit 2), before any kernel starts.
    ReportBusyError, ReportError
        As for :func:`satmodel.jobs.report.run_report`.
    """
    from satmodel.insights.plans import check_assurance
    from satmodel.reporting import check_month, last_complete_month, parse_tiers

    began = time.perf_counter()
    check_text(
        {
            "--segment": request.segment,
            "--customer": request.customer,
            "--tiers": request.tiers,
            "--data": request.data,
            "--out": request.out,
        }
    )
    check_parameters(dict(request.parameters or {}))
    if request.month is not None:
        check_month(request.month, "--month")
    if request.tiers is not None:
        parse_tiers(request.tiers)
    assurance = check_assurance(request.assurance)
    if assurance is None:
        raise InputError("--assurance: give a probability between 0 and 1, e.g. 0.8")
    roots = confine(request.data, request.out, request.allow_outside)
    notebook = (
        Path(request.notebook).resolve()
        if request.notebook is not None
        else default_proposal_notebook()
    )
    if not notebook.is_file():
        raise InputError(f"notebook {notebook}: not found")
    extra = dict(request.parameters or {})
    key_bytes = None
    if request.pseudonymise:
        from satmodel.reporting import pseudonym_key

        key_bytes = pseudonym_key(create=True)
        extra["pseudonymise"] = True
    data_path = resolve_data(request.data)
    window, fingerprints = inspect_source(data_path, _request_check(request, key_bytes), roots)
    month = request.month or last_complete_month(window, request.now)
    if not window[0] <= month <= window[1]:
        raise InputError(f"month {month}: outside the data's months {window[0]}..{window[1]}")
    customer = request.customer
    if key_bytes is not None and customer:
        from satmodel.reporting import pseudonym

        customer = pseudonym(customer, key_bytes)  # from here on, only the pseudonym
    key = proposal_key(request.segment, customer, request.csat_target, request.complaint_target)
    out_path = writable_out(request.out)
    who = f"segment {request.segment}" if request.segment else f"customer {customer}"
    csat = float(request.csat_target)
    complaints = request.complaint_target
    if request.tiers is not None:
        extra["tiers"] = request.tiers
    job = Job(
        key=key,
        kind="proposal",
        title=f"Service proposal for {who}: CSAT {csat:g}",
        data=data_path,
        out=out_path,
        shown_out=str(request.out),
        notebook=notebook,
        fingerprints=fingerprints,
        leading={
            "segment": request.segment or "",
            "customer": customer or "",
            "csat_target": csat,
            "complaint_target": float(complaints) if complaints is not None else 0.0,
            "assurance": assurance,
            "month": month,
        },
        parameters=extra,
        manifest={"proposal": key, "month": month},
        resolve_seconds=time.perf_counter() - began,
    )
    return run_job(job, progress=request.progress, wait=request.wait, timeout=request.timeout)
