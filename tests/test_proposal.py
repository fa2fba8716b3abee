"""The ``satmodel proposal`` command: bad input exits 2 before anything runs; a good request
writes proposal.ipynb, proposal.html (no code, offline), summary.json and manifest.json."""

from __future__ import annotations

import json
import re
import shutil

import duckdb
import nbformat
import pytest
from test_notebooks import demo_data
from test_report import external_references

from satmodel.cli import main
from satmodel.errors import InputError
from satmodel.jobs import ProposalRequest, ReportError, default_proposal_notebook
from satmodel.jobs import run_proposal as run_proposal_request

EVIL = "<script>alert(1)</script>"


def run_proposal(**fields):
    """The proposal job of a request with these fields (the CLI builds the same request)."""
    return run_proposal_request(ProposalRequest(**fields))


@pytest.fixture
def data(tmp_path):
    from conftest import GOOD_TABLES, write_tables

    return write_tables(tmp_path / "data", GOOD_TABLES)


def cli(*argv: str) -> int:
    # tmp paths lie outside the project's data/ and reports/ folders
    return main(["proposal", "--quiet", "--allow-outside", *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--segment", "enterprize", "--csat-target", "4.3"],
            "--segment 'enterprize': not in customers.segment (valid segments: enterprise, smb)"
            "; did you mean enterprise?",
        ),
        (
            ["--customer", "c9", "--csat-target", "4.3"],
            "--customer 'c9': not in customers.customer_id (valid customers: c1, c2)",
        ),
        (["--segment", "smb", "--csat-target", "6"], "must be a mean CSAT between 1 and 5"),
        (
            ["--segment", "smb", "--csat-target", "4", "--complaint-target", "-1"],
            "must be >= 0 complaints per 1,000 users",
        ),
        (["--segment", "smb", "--csat-target", "4", "--tiers", "Gold 99.9/300"], "--tiers"),
        (["--segment", "smb", "--csat-target", "4", "--month", "2025-13"], "YYYY-MM"),
        (["--segment", "smb", "--csat-target", "4", "--month", "2030-01"], "outside the data"),
        (
            ["--segment", "smb", "--csat-target", "4", "--assurance", "1.5"],
            "assurance: must be a probability between 0 and 1",
        ),
    ],
)
def test_bad_request_exits_2_with_one_clear_line(argv, message, data, tmp_path, capsys):
    out = tmp_path / "proposals"
    assert cli("--data", str(data), "--out", str(out), *argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # nothing written, no kernel started


def test_segment_and_customer_together_is_a_usage_error(data, capsys):
    with pytest.raises(SystemExit) as info:
        cli("--data", str(data), "--segment", "smb", "--customer", "c1", "--csat-target", "4")
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_neither_segment_nor_customer_is_a_usage_error(data, capsys):
    with pytest.raises(SystemExit) as info:
        cli("--data", str(data), "--csat-target", "4")
    assert info.value.code == 2


def test_missing_source_exits_2(tmp_path, capsys):
    code = cli("--data", str(tmp_path / "nope.duckdb"), "--segment", "smb", "--csat-target", "4")
    assert code == 2
    assert "not found" in capsys.readouterr().err


def test_unknown_segment_is_input_error_from_python(data, tmp_path):
    with pytest.raises(InputError, match="valid segments: enterprise, smb"):
        run_proposal(segment="gold", csat_target=4.0, data=data, out=tmp_path, progress=False)


@pytest.mark.slow
def test_proposal_for_a_segment_writes_the_four_files(tmp_path_factory, capsys):
    data = demo_data(tmp_path_factory)
    out = tmp_path_factory.mktemp("proposals")
    code = cli(
        "--data",
        str(data),
        "--out",
        str(out),
        "--segment",
        "enterprise",
        "--csat-target",
        "4.3",
        "--complaint-target",
        "2",
        "--assurance",
        "0.9",
    )
    assert code == 0, capsys.readouterr().err
    folder = out / "enterprise-csat4.3-complaints2"
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json",
        "proposal.csv",
        "proposal.html",
        "proposal.ipynb",
        "proposal_appendix.html",
        "summary.json",
    ]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["kind"] == "proposal" and summary["segment"] == "enterprise"
    assert summary["csat_target"] == 4.3 and summary["complaint_target"] == 2
    tiers = [row["tier"] for row in summary["tiers"]]
    assert tiers == ["Current service", "Bronze", "Silver", "Gold"]
    for row in summary["tiers"]:
        assert row["csat_mean_ci_low"] <= row["csat_mean"] <= row["csat_mean_ci_high"]
        assert row["meets_csat"] in ("yes", "likely", "no")
        assert row["monthly_cost"] >= 0
    assert {r["target_of"] for r in summary["requirements"]} == {"CSAT", "complaints"}
    assert summary["plans"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["proposal"] == folder.name
    assert manifest["parameters"]["segment"] == "enterprise"
    # --assurance reaches the notebook and its plans
    assert manifest["parameters"]["assurance"] == 0.9
    assert {row["assurance"] for row in summary["plans"]} == {0.9}
    for row in summary["plans"]:
        if row["feasible"]:  # 500 simulations: binomial noise about 0.015
            assert row["probability"] >= 0.9 - 0.05
        else:
            assert row["probability"] is None and row["planned"] is None
    # the recommendation and what the customer reports now
    assert summary["currency"] == "EUR"
    current = summary["tiers"][0]
    assert summary["csat_now"] == pytest.approx(current["csat_mean"])
    chosen = summary["recommendation"]
    assert chosen["tier"] in tiers[1:] and chosen["monthly_price"] >= 0
    assert chosen["csat_low"] <= chosen["csat"] <= chosen["csat_high"]
    if summary["recommended_tier"] is not None:
        assert chosen["tier"] == summary["recommended_tier"] and chosen["meets_targets"]
    html = (folder / "proposal.html").read_text()
    assert "Our recommendation: " + chosen["tier"] in html and "valid until" in html
    assert "EUR " in html and "Enterprise customers" in html
    assert "reporting." not in html and "Traceback" not in html
    shown = re.sub(r"<style.*?</style>|<[^>]+>", " ", html, flags=re.S)
    assert not re.search(r"planner|satmodel\.|\.py\b|negbin|ordinal|--csat", shown)
    assert external_references(html) == []
    appendix = (folder / "proposal_appendix.html").read_text()
    assert "Predictions per tier" in appendix and "Required level" in appendix
    assert "not for the customer" in appendix and external_references(appendix) == []
    assert "4.3 with 90 % confidence" in appendix  # the plan's sentence, feasible or not
    assert appendix.count("data:image/png;base64,") == 1
    # how likely the customers are to recommend us: now (answers) and with the tier (model),
    # on the appendix only (the customer's page keeps to one page)
    assert -100 <= summary["nps_now"] <= 100 and summary["nps_answers"] > 0
    expected = summary["nps_expected"]
    assert expected["tier"] == chosen["tier"]
    assert expected["nps_ci_low"] <= expected["nps"] <= expected["nps_ci_high"]
    assert "Likely to recommend us" in appendix and "recommend us" not in html
    # proposal.csv: rounded numbers, empty cells where nothing applies
    rows = (folder / "proposal.csv").read_text(encoding="utf-8-sig").splitlines()
    assert "'-" not in "".join(rows) and ",-," not in "".join(rows)
    assert not re.search(r"\d\.\d{4,}", "".join(rows))


@pytest.mark.slow
def test_failed_proposal_is_kept_and_exits_1(tmp_path_factory, tmp_path, capsys):
    """A notebook that raises: exit 1, nothing published, the failed notebook kept."""
    data = demo_data(tmp_path_factory)
    broken = tmp_path / "broken.ipynb"
    shutil.copy(default_proposal_notebook(), broken)
    nb = nbformat.read(broken, as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('boom in the proposal')"))
    nbformat.write(nb, broken)

    with pytest.raises(ReportError, match="boom in the proposal") as info:
        run_proposal(
            customer="C0001",
            csat_target=4.0,
            data=data,
            out=tmp_path / "p",
            notebook=broken,
            progress=False,
        )
    assert "no earlier proposal" in str(info.value)
    folder = tmp_path / "p" / "customer-C0001-csat4"
    assert sorted(p.name for p in folder.iterdir()) == ["failed"]
    assert (folder / "failed" / "proposal.ipynb").is_file()


@pytest.mark.slow
def test_segment_names_are_escaped_in_the_html(tmp_path_factory, tmp_path):
    """A segment named like a script tag renders as text in every table and sentence."""
    evil_data = tmp_path / "evil.duckdb"
    shutil.copy(demo_data(tmp_path_factory), evil_data)
    with duckdb.connect(str(evil_data)) as con:
        con.execute("UPDATE customers SET segment = ? WHERE segment = 'smb'", [EVIL])
    folder = run_proposal(
        segment=EVIL,
        csat_target=4.0,
        data=evil_data,
        out=tmp_path / "proposals",
        parameters={"n_sim": 100},
        progress=False,
    )
    assert "<" not in folder.name and "/" not in folder.name
    html = (folder / "proposal.html").read_text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"<script>\s*alert", html)


def test_the_page_names_the_component_commitments_in_one_sentence():
    from datetime import date

    import pandas as pd

    from satmodel.reporting.components import component_commitments
    from satmodel.reporting.offer import Offer, ServiceOption
    from satmodel.reporting.proposal_page import appendix_html, proposal_page

    levels = {"availability_pct": 99.95, "latency_p95_ms": 300.0, "resolution_hours_median": 4.0}
    gold = ServiceOption(
        "recommended", "Gold", levels, 1000.0, 4.4, 4.3, 4.5, 80.0, 75.0, 85.0,
        1.0, 0.5, 1.5, "yes", "-",
    )  # fmt: skip
    offer = Offer(
        "Acme", None, "c1", date(2025, 3, 1), date(2025, 3, 31), "EUR", 4.3, None, levels,
        levels, 4.2, 4.1, 10, None, gold, None, None,
    )  # fmt: skip
    # today's downtime 60 / 30 / 8 / 2: shares of the 0.05% the service may be down
    summary = pd.DataFrame(
        {
            "component_id": ["db", "net", "cdn", "dns"],
            "name": ["Database", "Network", "CDN <b>", "DNS"],
            "downtime_minutes": [60.0, 30.0, 8.0, 2.0],
        }
    )
    commitments = component_commitments(summary, 99.95, "2025-03")
    html = proposal_page(offer, commitments).data
    assert (
        "To deliver 99.95% end to end, each part of the service is held to its share of the "
        "downtime allowed: Database 99.97%, Network 99.985% and CDN &lt;b&gt; 99.996% (and 1 "
        "smaller part)." in html
    )
    assert "each part of the service" not in proposal_page(offer).data  # no component data
    appendix = appendix_html(offer, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), [], None,
                             commitments=commitments)  # fmt: skip
    assert "Component commitments" in appendix and "99.9990" in appendix  # DNS: 2% of 0.05


def _plans(assurance: float, probability: float, availability: float = 100.0):
    import pandas as pd

    from satmodel.reporting.labels import level_caveat

    return pd.DataFrame(
        {
            "target_of": ["CSAT", "CSAT"],
            "target": [4.3, 4.3],
            "lever": ["availability", "p95 latency"],
            "unit": ["%", "ms"],
            "planned": [availability, 250.0],
            "caveat": [
                level_caveat("availability_pct", availability, (97.0, 99.97)),
                level_caveat("latency_p95_ms", 250.0, (80.0, 900.0)),
            ],
            "total_cost": [45_000.0, 45_000.0],
            "feasible": [True, True],
            "assurance": [assurance, assurance],
            "probability": [probability, probability],
        }
    )


def test_plan_sentence_says_the_confidence_and_the_limits():
    from satmodel.reporting import plan_sentence

    sentence = plan_sentence(_plans(0.8, 0.83))
    assert "reaches 4.3 with 80 % confidence (in 83 % of the simulations)" in sentence
    assert "availability 100 % (at the physical limit of 100 %: no service" in sentence
    assert "p95 latency 250 ms," in sentence and "45,000 a month" in sentence
    point = plan_sentence(_plans(float("nan"), 0.52, availability=99.99))
    assert "reaches 4.3 on the central estimate (in 52 % of the simulations)" in point
    assert "max seen 99.97 %): an extrapolation" in point
    assert plan_sentence(_plans(0.8, 0.83), "complaints") == ""
    infeasible = _plans(0.9, float("nan")).assign(feasible=False)
    assert plan_sentence(infeasible) == (
        "No combination of the service levels reaches the CSAT target of 4.3 with 90 % confidence."
    )
