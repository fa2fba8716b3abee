"""The customer's proposal as a customer sees it: printed to PDF by headless Chromium it is ONE
page on A4 and on Letter, and its visible text names no internals. The PDFs and a screenshot
are kept under ``reports/test-artifacts/`` (CI artefacts).

Needs the Debian ``chromium`` package (skipped when absent; a failure under CI=true).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_notebooks import demo_data

from satmodel.jobs import ProposalRequest, run_proposal

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.requires(
        CHROMIUM is not None, reason="chromium not installed (apt-get install chromium)"
    ),
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "reports" / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
INTERNALS = re.compile(
    r"satmodel\.|\.py\b|papermill|negbin|ordinal|patsy|np\.log|C\(segment\)|planner",
    re.IGNORECASE,
)


def chromium(*argv: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="satmodel-chromium-")
    try:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def pdf_pages(pdf: bytes) -> int:
    """Pages of a PDF: its ``/Type /Page`` objects (not ``/Pages``)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf))


@pytest.fixture(scope="module")
def proposal(tmp_path_factory) -> Path:
    """proposal.html of a demo customer, the CSAT it asks for out of reach of the cheap tiers."""
    folder = run_proposal(
        ProposalRequest(
            customer="C0001",
            csat_target=4.0,
            complaint_target=2.0,
            data=demo_data(tmp_path_factory),
            out=tmp_path_factory.mktemp("proposals"),
            parameters={"n_sim": 200},
            progress=False,
        )
    )
    return folder / "proposal.html"


@pytest.mark.parametrize("paper", ["A4", "letter"])
def test_the_proposal_prints_on_one_page(proposal, paper, tmp_path):
    page = tmp_path / f"proposal-{paper}.html"
    page.write_text(
        proposal.read_text().replace("</head>", f"<style>@page {{ size: {paper}; }}</style></head>")
    )
    pdf = tmp_path / f"proposal-{paper}.pdf"
    done = chromium(f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.resolve().as_uri())
    assert pdf.is_file(), done.stderr[-2000:]
    data = pdf.read_bytes()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(pdf, ARTIFACTS / pdf.name)
    assert pdf_pages(data) == 1


def test_the_page_count_is_read_right(tmp_path):
    """The counter sees a second page when there is one."""
    long = tmp_path / "long.html"
    long.write_text(
        "<html><body>" + "<p style='page-break-after: always'>x</p>" * 3 + "</body></html>"
    )
    pdf = tmp_path / "long.pdf"
    chromium(f"--print-to-pdf={pdf}", "--no-pdf-header-footer", long.resolve().as_uri())
    assert pdf_pages(pdf.read_bytes()) == 3


def test_the_customer_sees_no_internals_and_the_price(proposal, tmp_path):
    done = chromium("--dump-dom", proposal.resolve().as_uri())
    dom = done.stdout
    assert "Our recommendation" in dom
    text = re.sub(r"<style.*?</style>|<title>.*?</title>|<[^>]+>", " ", dom, flags=re.S)
    assert INTERNALS.search(text) is None, INTERNALS.search(text)
    assert re.search(r"EUR [\d,]+", text) and "valid until" in text
    assert "Cheaper" in text and "How we estimated this" in text
    shot = tmp_path / "proposal.png"
    chromium("--window-size=1000,1400", f"--screenshot={shot}", proposal.resolve().as_uri())
    assert shot.read_bytes().startswith(b"\x89PNG")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "proposal.png")
