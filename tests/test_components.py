"""Components, recurring problems and their cost: hand cases, validation, the demo's truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_features import changes, customers, incidents, surveys

from satmodel.cli import main
from satmodel.features.components import (
    component_summary,
    downtime_total,
    downtime_without,
    failed_change_links,
    problem_summary,
)
from satmodel.insights.components import counterfactual
from satmodel.sources import open_source
from satmodel.validation import quarantine

# (customer, start, end, component, problem)
ROWS = [
    ("c1", "2025-03-03T10:00", "2025-03-03T11:00", "db", "P1"),
    ("c1", "2025-03-03T10:30", "2025-03-03T12:00", "net", None),  # 30 minutes shared with db
    ("c2", "2025-03-03T10:00", "2025-03-03T11:00", "db", "P1"),
    ("c2", "2025-03-20T08:00", "2025-03-20T08:20", "db", "P1"),
    ("c2", "2025-03-25T00:00", "2025-03-25T00:10", "net", "P1"),  # P1 spans two components
    ("c1", "2025-03-31T23:30", "2025-04-01T00:30", "ghost", None),  # unknown component
]
COMPONENTS = pd.DataFrame(
    {
        "component_id": ["db", "net"],
        "name": ["Database", "Network"],
        "kind": ["database", "network"],
        "service": ["core", None],
    }
)


def write(folder, with_components=True):
    frame = incidents([r[:3] for r in ROWS])
    frame["component_id"] = [r[3] for r in ROWS]
    frame["problem_id"] = [r[4] for r in ROWS]
    chg = changes(
        [
            (None, "2025-03-03T08:00", True),
            (None, "2025-03-10T08:00", True),
            ("c1", "2025-03-01", 0),
        ]
    )
    chg["component_id"] = ["db", "net", "db"]
    tables = {
        "customers": customers("c1", "c2"),
        "incidents": frame,
        "changes": chg,
        "surveys": surveys([("c1", "2025-03-15T00:00:00", 4), ("c2", "2025-04-15T00:00:00", 4)]),
    }
    if with_components:
        tables["components"] = COMPONENTS
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.fixture
def source(tmp_path):
    source = open_source(write(tmp_path / "data"))
    quarantine(source)
    return source


def test_unknown_component_is_quarantined_with_its_reason(source):
    rejected = source.report.rejected
    hit = rejected[rejected.column_name == "component_id"]
    assert hit.reason.tolist() == ["unknown component (not in components)"]
    assert hit.rows.tolist() == [1] and hit.example.tolist() == ["ghost"]
    assert source.con.execute("SELECT count(*) FROM incidents").fetchall()[0][0] == 5
    assert any("P1" in note and "db, net" in note for note in source.report.notes)


def test_components_table_without_component_id_exits_2(tmp_path, capsys):
    folder = write(tmp_path / "data")
    COMPONENTS.drop(columns="component_id").to_parquet(folder / "components.parquet")
    assert main(["validate", "--data", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "components.component_id: column missing" in err[0]
    assert "Traceback" not in err[0]


def test_data_without_components_works_as_before(tmp_path):
    source = open_source(write(tmp_path / "data", with_components=False))
    report = quarantine(source)
    assert report.ok  # no components table: any component id goes


def test_component_summary_is_union_aware(source):
    summary = component_summary(source, "2025-03", "2025-03").set_index("component_id")
    assert summary.loc["db", "downtime_minutes"] == pytest.approx(60 + 60 + 20)
    assert summary.loc["net", "downtime_minutes"] == pytest.approx(90 + 10)
    assert summary.loc["db", "customers_affected"] == 2 and summary.loc["db", "incidents"] == 3
    # wall clock: db was down 10:00..11:00 for both customers at once, then 20 minutes
    assert summary.loc["db", "outage_minutes"] == pytest.approx(80)
    # the total counts the 30 minutes db and net share once: c1 10:00..12:00, c2 60+20+10
    assert downtime_total(source, "2025-03", "2025-03") == pytest.approx(120 + 90)
    assert summary.loc["db", "failed_changes"] == 1 and summary.loc["db", "changes"] == 2
    assert summary.loc["db", "failed_changes_with_incident"] == 1
    assert summary.loc["net", "failed_changes_with_incident"] == 0  # next net incident: 15 days


def test_failed_change_links_follow_the_window(source):
    links = failed_change_links(source, "2025-03", "2025-03")
    # db incidents i0 (c1) and i2 (c2) both start 2 hours after x0
    assert links.set_index("change_id").loc["x0", "incident_id"] in {"i0", "i2"}
    assert links.linked.tolist() == [True, False]


def test_problem_recurrence(source):
    problems = problem_summary(source, "2025-03", "2025-03").set_index("problem_id")
    p1 = problems.loc["P1"]
    assert p1.component_ids == "db, net" and p1.occurrences == 3 and p1.incidents == 4
    assert p1.first_seen == pd.Timestamp("2025-03-03T10:00", tz="UTC")
    assert p1.last_seen == pd.Timestamp("2025-03-25T00:00", tz="UTC")
    assert p1.mean_days_between == pytest.approx((21 + 14 / 24) / 2)


def test_downtime_without_keeps_what_another_component_covers(source):
    left = downtime_without(source, "component_id", "2025-03", "2025-03")
    left = left.set_index(["component_id", "customer_id"])["downtime_minutes"]
    assert left.loc[("db", "c1")] == pytest.approx(90)  # net's 10:30..12:00 stays
    assert left.loc[("db", "c2")] == pytest.approx(10)
    assert left.loc[("net", "c1")] == pytest.approx(60)
    assert left.loc[("net", "c2")] == pytest.approx(80)


def test_counterfactual_moves_availability_and_the_lag():
    panel = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c2"],
            "month": ["2025-03", "2025-04", "2025-03"],
            "downtime_minutes": [150.0, 0.0, 5.0],
            "availability_pct": [100 * (1 - 150 / 44640), 100.0, 100 * (1 - 5 / 44640)],
            "downtime_minutes_lag1": [np.nan, 150.0, np.nan],
        }
    )
    left = pd.DataFrame({"customer_id": ["c1"], "month": ["2025-03"], "downtime_minutes": [30.0]})
    rows = counterfactual(panel, left)
    assert rows.index.tolist() == [0, 1]
    assert rows.loc[0, "downtime_minutes"] == 30.0
    assert rows.loc[0, "availability_pct"] == pytest.approx(100 * (1 - 30 / 44640))
    assert rows.loc[1, "downtime_minutes_lag1"] == 30.0 and rows.loc[1, "downtime_minutes"] == 0


@pytest.fixture(scope="module")
def demo_world(tmp_path_factory):
    from satmodel.demo import generate_demo

    return generate_demo(tmp_path_factory.mktemp("demo"), customers=200, months=12, progress=False)


@pytest.mark.slow
def test_demo_costs_recover_the_truth(demo_world, tmp_path, capsys):
    out = tmp_path / "components.json"
    assert main(["components", "--data", str(demo_world.out_dir), "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    # the text reads like the report: names, thousands separators, the points explained
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == len(payload["components"])
    for line, row in zip(lines, payload["components"], strict=True):
        assert line.startswith(f"  {row['name']}: ")  # not its id
        assert f"{row['incidents']:,} incident" in line
        if row["csat_points"] is not None:
            assert f"would raise average CSAT by {row['csat_points']:.3f} points" in line
            assert "if its downtime had not happened" in line
    truth = {c["component_id"]: c["csat_points"] for c in demo_world.truth["components"]}
    estimated = {c["component_id"]: c for c in payload["components"]}
    ranked = [c["component_id"] for c in payload["components"]]
    true_ranked = sorted(truth, key=truth.get, reverse=True)
    assert ranked[0] == true_ranked[0] == "db-core"
    top = estimated["db-core"]
    assert top["csat_points"] == pytest.approx(truth["db-core"], rel=0.4)
    assert top["csat_points_ci_low"] < top["csat_points"] < top["csat_points_ci_high"]
    ranks = pd.Series(range(len(ranked)), index=ranked)
    true_ranks = pd.Series(range(len(true_ranked)), index=true_ranked)
    assert ranks.corr(true_ranks.reindex(ranks.index), method="spearman") >= 0.75
    for key in ("name", "kind", "incidents", "customers_affected", "downtime_minutes"):
        assert key in top
    assert top["complaints_per_month"] > 0 and top["failed_changes"] >= 0
    problems = [p["problem_id"] for p in payload["problems"]]
    assert problems == [p["problem_id"] for p in demo_world.truth["problems"]]
    assert {"first_seen", "last_seen", "csat_points_ci_low"} <= set(payload["problems"][0])


@pytest.mark.slow
def test_demo_planned_windows_and_changes(demo_world):
    from satmodel.features import build_panel
    from satmodel.features.components import component_summary

    source = open_source(demo_world.out_dir)
    panel = build_panel(source)
    # every customer has the two-hour maintenance window every month, none of it downtime
    assert (panel.planned_downtime_minutes >= 120 - 1e-6).all()
    first, last = demo_world.truth["start_month"], demo_world.truth["end_month"]
    summary = component_summary(source, first, last).set_index("component_id")
    login = summary.loc["login"]
    assert login.failed_changes > 0
    assert login.failed_changes_with_incident == login.failed_changes
    assert summary.loc["db-core", "customers_affected"] > summary.loc["cdn", "incidents"] / 10
    assert not any("planned" in note for note in source.report.notes)  # windows are stated


def test_report_pieces_on_hand_data(source):
    from satmodel.features import build_panel
    from satmodel.features.components import component_downtime, problem_occurrences
    from satmodel.reporting.components import component_commitments, gap_causes, planned_minutes

    causes = gap_causes(source, ["c1", "c2"], "2025-03").set_index("customer_id")
    assert causes.loc["c1", "caused_by"] == "Network, Database"  # 90 minutes against db's 60
    assert causes.loc["c2", "caused_by"] == "Database, Network"  # 60 + 20 against 10
    down = component_downtime(source, "2025-03", "2025-03")
    assert down.downtime_minutes.sum() == pytest.approx(140 + 100)
    assert len(problem_occurrences(source, "2025-03", "2025-03")) == 3
    summary = component_summary(source, "2025-03", "2025-03")
    commitments = component_commitments(summary, 99.9, "2025-03").set_index("component_id")
    budget = 31 * 1440 * 0.001
    assert commitments.loc["db", "budget_minutes"] == pytest.approx(budget * 140 / 240)
    assert commitments.loc["db", "availability_pct"] == pytest.approx(
        100 * (1 - budget * 140 / 240 / (31 * 1440))
    )
    sums = planned_minutes(build_panel(source)).set_index("month")
    assert sums.loc["2025-03", "unplanned_minutes"] == pytest.approx(210)
    assert sums.loc["2025-03", "planned_minutes"] == 0


def test_demo_components_off_leaves_the_other_tables_alone(tmp_path):
    from satmodel.demo import generate_demo
    from satmodel.schema import TABLES

    size = {"customers": 12, "months": 3, "progress": False}
    on = generate_demo(tmp_path / "on", **size)
    off = generate_demo(tmp_path / "off", components=False, **size)
    assert "components" not in off.paths and not (tmp_path / "off" / "components.parquet").exists()
    for name in ("customers", "requests", "tickets", "usage"):
        assert on.paths[name].read_bytes() == off.paths[name].read_bytes(), name
    optional = ["component_id", "problem_id", "planned"]
    incidents_off = pd.read_parquet(off.paths["incidents"])
    assert incidents_off.columns.tolist() == [c.name for c in TABLES["incidents"].columns]
    assert incidents_off[optional].isna().all().all()  # present as in the contract, never set
    assert "components" not in off.truth
    # the everyday incidents keep their timing when they get a component
    inc_on, inc_off = (pd.read_parquet(r.paths["incidents"]) for r in (on, off))
    keys = ["customer_id", "start_ts", "end_ts"]
    kept = inc_off[keys].merge(inc_on[keys].drop_duplicates(), how="left", indicator=True)
    assert (kept["_merge"] == "both").all()


def write_planned(folder):
    """The hand data plus a five-hour planned maintenance on db for c2 (not downtime)."""
    write(folder)
    frame = pd.read_parquet(folder / "incidents.parquet")
    planned = frame.iloc[[2]].assign(
        incident_id="i-maint",
        start_ts=pd.Timestamp("2025-03-12T00:00", tz="UTC"),
        end_ts=pd.Timestamp("2025-03-12T05:00", tz="UTC"),
        problem_id=None,
    )
    frame = pd.concat([frame, planned], ignore_index=True)
    frame["planned"] = frame["incident_id"] == "i-maint"
    frame.to_parquet(folder / "incidents.parquet", index=False)
    return folder


def without_component_ids(folder):
    """The hand data with no component named on any incident or change."""
    write(folder, with_components=False)
    for name in ("incidents", "changes"):
        frame = pd.read_parquet(folder / f"{name}.parquet")
        frame["component_id"] = pd.Series([None] * len(frame), dtype=object)
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def report_of(source, month="2025-03", ids=None):
    """What the component pieces of the report read from ReportData."""
    from types import SimpleNamespace

    return SimpleNamespace(source=source, month=month, ids=ids)


def test_gap_causes_list_every_component_largest_first(source):
    from satmodel.reporting.components import gap_causes

    causes = gap_causes(source, ["c2", "c1", "c9"], "2025-03")
    assert causes["customer_id"].tolist() == ["c2", "c1", "c9"]  # the order asked
    assert causes["caused_by"].tolist() == ["Database, Network", "Network, Database", ""]
    # each component's union per customer, summed: c1 60 + 90, c2 (60 + 20) + 10, c9 none
    assert causes["downtime_minutes"].tolist() == pytest.approx([90, 150, 0])
    assert gap_causes(source, ["c1"], "2025-04")["caused_by"].tolist() == [""]  # ghost: quarantined


def test_gap_causes_map_the_source_ids_like_the_panel(source):
    from satmodel.reporting.components import gap_causes

    causes = gap_causes(source, ["alias-c1", "c2"], "2025-03", ids=lambda s: "alias-" + s)
    assert causes["caused_by"].tolist() == ["Network, Database", ""]  # c2 is not a panel id


def test_gap_table_gains_caused_by_for_availability_misses_only(source, tmp_path):
    from satmodel.reporting.components import with_gap_causes

    gaps = pd.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "misses": [2, 1],
            "missed": ["availability, latency", "latency"],
        }
    )
    shown = with_gap_causes(gaps, report_of(source))
    assert shown.columns.tolist() == [*gaps.columns, "caused_by"]
    assert shown["caused_by"].tolist() == ["Network, Database", ""]
    plain = open_source(without_component_ids(tmp_path / "plain"))
    quarantine(plain)
    assert with_gap_causes(gaps, report_of(plain)).columns.tolist() == gaps.columns.tolist()


def test_component_scorecard_by_hand(tmp_path):
    from satmodel.reporting import component_scorecard

    planned = open_source(write_planned(tmp_path / "data"))
    quarantine(planned)
    card = component_scorecard(report_of(planned)).set_index("component")
    assert card.index.tolist() == ["Database", "Network"]  # most incidents first
    db, net = card.loc["Database"], card.loc["Network"]
    # changes: x0 db failed (c1, c2 incidents on db two hours later), x1 net failed (the next
    # net incident 15 days later), x2 db ok
    assert (db.changes, db.failed_changes, db.failed_changes_with_incident) == (2, 1, 1)
    assert (net.changes, net.failed_changes, net.failed_changes_with_incident) == (1, 1, 0)
    assert db.change_failure_pct == pytest.approx(50) and net.change_failure_pct == 100
    # MTTR: db 60, 60 and 20 minutes (the five-hour maintenance left out), net 90 and 10
    assert db.incidents == 3 and db.mttr_hours == pytest.approx((60 + 60 + 20) / 3 / 60)
    assert net.incidents == 2 and net.mttr_hours == pytest.approx((90 + 10) / 2 / 60)
    plain = open_source(without_component_ids(tmp_path / "plain"))
    quarantine(plain)
    assert component_scorecard(report_of(plain)) is None


def test_commitments_name_each_component_and_reject_bad_levels(source):
    from satmodel.errors import InputError
    from satmodel.reporting.components import component_commitments

    summary = pd.DataFrame(
        {"component_id": ["a", "b", "c"], "name": ["Disk", None, "Idle"],
         "downtime_minutes": [30.0, 10.0, 0.0]}
    )  # fmt: skip
    out = component_commitments(summary, 99.95, "2025-02")
    assert out["name"].tolist() == ["Disk", "b"]  # no downtime: no budget needed
    # 28 days: 20.16 budget minutes, 3/4 to a, 1/4 to b
    assert out["availability_pct"].tolist() == pytest.approx([100 - 0.05 * 0.75, 100 - 0.05 / 4])
    assert out["budget_minutes"].tolist() == pytest.approx([28 * 1440 * 0.0005 * 0.75, 5.04])
    for bad in (100, 0, -1):
        with pytest.raises(InputError, match="availability_pct"):
            component_commitments(summary, bad, "2025-02")


def test_summary_components_block_top_three_after_the_core_keys():
    from types import SimpleNamespace

    from test_report import make_panel

    from satmodel import reporting
    from satmodel.config import Config

    class Validation:
        rows = {"customers": 3}
        rejected = pd.DataFrame(columns=["table_name", "column_name", "reason", "rows", "example"])

    costs = pd.DataFrame(
        {
            "component_id": ["db", "net", "cdn", "dns", "ghost"],
            "name": ["Database", None, "CDN", "DNS", None],
            "csat_points": [0.3, 0.2, 0.1, 0.05, np.nan],
            "csat_points_ci_low": [0.1, 0.0, 0.02, 0.0, np.nan],
            "csat_points_ci_high": [0.5, 0.4, 0.2, 0.1, np.nan],
        }
    )
    result = SimpleNamespace(components_=costs, months=("2025-02", "2025-02"), month="2025-02")
    panel = make_panel()
    data = reporting.ReportData(
        month="2025-02", window=("2025-01", "2025-02"), source=None,
        validation=Validation(), config=Config(), panel=panel,
    )  # fmt: skip
    models = reporting.ModelSection()
    summary = reporting.build_summary(
        data,
        reporting.headline_kpis(panel, data.month),
        reporting.slo_attainment(panel, data.config, data.month),
        reporting.expectation_gaps(panel, data.config, data.month),
        reporting.data_quality(Validation()),
        reporting.quarantine_reasons(Validation()),
        models,
        reporting.driver_table(models),
        components=result,
    )
    assert list(summary)[-2:] == ["status", "components"]
    block = summary["components"]
    assert block["first_month"] == block["last_month"] == "2025-02"
    assert block["top"] == [
        {
            "component_id": "db",
            "name": "Database",
            "csat_points": 0.3,
            "ci_low": 0.1,
            "ci_high": 0.5,
        },
        {"component_id": "net", "name": "net", "csat_points": 0.2, "ci_low": 0.0, "ci_high": 0.4},
        {"component_id": "cdn", "name": "CDN", "csat_points": 0.1, "ci_low": 0.02, "ci_high": 0.2},
    ]


@pytest.mark.slow
def test_demo_report_shows_components_in_gaps_scorecard_and_summary(tmp_path_factory):
    import duckdb
    from test_notebooks import demo_data, demo_report

    folder = demo_report(tmp_path_factory)
    with duckdb.connect(str(demo_data(tmp_path_factory)), read_only=True) as con:
        names = {row[0] for row in con.execute("SELECT name FROM components").fetchall()}
    summary = json.loads((folder / "summary.json").read_text())
    top = summary["components"]["top"]
    assert len(top) == 3 and {row["name"] for row in top} <= names
    points = [row["csat_points"] for row in top]
    assert points == sorted(points, reverse=True)
    assert all(row["ci_low"] <= row["csat_points"] <= row["ci_high"] for row in top)
    worst = summary["gaps"]["worst"]
    missed = [row for row in worst if "availability" in row["missed"]]
    assert missed and all(row["caused_by"] for row in missed)
    assert all(set(row["caused_by"].split(", ")) <= names for row in missed)
    assert all(row["caused_by"] == "" for row in worst if row not in missed)
    html = (folder / "report.html").read_text()
    for shown in ("Caused by", "Operations per component", "Failed changes followed by an"):
        assert shown in html


@pytest.mark.slow
def test_demo_proposal_names_the_component_commitments(tmp_path_factory):
    from test_notebooks import demo_data

    from satmodel.calendar import days_in_month
    from satmodel.jobs import ProposalRequest, run_proposal

    folder = run_proposal(
        ProposalRequest(
            segment="enterprise",
            csat_target=4.3,
            data=demo_data(tmp_path_factory),
            out=tmp_path_factory.mktemp("proposals"),
            parameters={"n_sim": 100},
            progress=False,
        )
    )
    summary = json.loads((folder / "summary.json").read_text())
    level = summary["recommendation"]["levels"]["availability_pct"]
    commitments = summary["component_commitments"]
    assert commitments and all(level <= row["availability_pct"] < 100 for row in commitments)
    budget = days_in_month(summary["month"]) * 1440 * (100 - level) / 100
    assert sum(row["budget_minutes"] for row in commitments) == pytest.approx(budget, rel=1e-4)
    html = (folder / "proposal.html").read_text()
    assert "end to end, each part of the service is held to its share" in html
    assert commitments[0]["name"] in html
    assert "Component commitments" in (folder / "proposal_appendix.html").read_text()


# --------------------------------------------------------------------------------------
# the report's components table


def _costed(frame):
    from satmodel.insights.components import ComponentsResult

    return ComponentsResult("2025-03", ("2025-03", "2025-03"), frame, pd.DataFrame(), 0.0, {})


def test_components_view_reads_as_words_and_rounds(source):
    from satmodel.reporting import components_view, show

    frame = component_summary(source, "2025-03", "2025-03")
    frame["kind"] = frame["kind"].replace({"network": "third_party"})
    frame["name"] = frame["name"].where(frame["component_id"] != "net", None)
    frame["failed_changes"], frame["changes"] = 3, 70
    frame["change_failure_rate"] = 3 / 70
    frame["downtime_minutes"] = 5542.366667
    for column, value in {"csat_points": 0.055081, "complaints_per_month": 99.6}.items():
        frame[column] = value
        frame[f"{column}_ci_low"], frame[f"{column}_ci_high"] = 0.9 * value, 1.1 * value
    view = components_view(_costed(frame))
    assert "component_id" not in view
    shown = dict(zip(frame["component_id"], view["component"], strict=True))
    assert shown["db"] == "Database" and shown["net"] == "net"  # the id where none is named
    html = show(view, precision=1, key="components", whole=("downtime_minutes",)).to_html()
    assert "third_party" not in html and "third party" in html
    assert f"{100 * 3 / 70:.1f}" in html and f"{3 / 70:.3f}" not in html  # a percentage
    assert "5,542<" in html and "5,542.4" not in html  # whole customer-minutes
    assert f"{0.055081:.3f} ({0.9 * 0.055081:.3f} to {1.1 * 0.055081:.3f})" in html
    assert ">Component<" in html and "Component id" not in html and ">Kind<" in html


def test_components_view_names_shared_names_by_id(source):
    from satmodel.reporting import components_view

    frame = component_summary(source, "2025-03", "2025-03")
    frame["name"] = "Same name"
    for column in ("csat_points", "complaints_per_month"):
        frame[[column, f"{column}_ci_low", f"{column}_ci_high"]] = np.nan
    view = components_view(_costed(frame))
    assert view["component"].is_unique
    assert set(view["component"]) == {f"Same name ({c})" for c in frame["component_id"]}
    assert (view["csat_points_interval"] == "-").all()


@pytest.mark.slow
def test_demo_components_table_has_no_raw_values(demo_world):
    from satmodel.insights.components import component_costs
    from satmodel.reporting import components_view, show
    from satmodel.workbook import Workbook

    book = Workbook(demo_world.out_dir)
    result = component_costs(book.source_, book.panel_, book.responses_, n_draws=20)
    raw = result.components_
    html = show(components_view(result), precision=1, whole=("downtime_minutes",)).to_html()
    assert "third_party" in set(raw["kind"]) and "third_party" not in html
    assert "third party" in html
    for row in raw.itertuples():
        assert f">{row.name}<" in html
        if row.change_failure_rate > 0:
            assert f">{100 * row.change_failure_rate:,.1f}<" in html
            assert f">{row.change_failure_rate:.3f}<" not in html
        assert f">{row.downtime_minutes:,.0f}<" in html
