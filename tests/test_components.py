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
def test_demo_costs_recover_the_truth(demo_world, tmp_path):
    out = tmp_path / "components.json"
    assert main(["components", "--data", str(demo_world.out_dir), "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
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
    assert causes.loc["c1", "component_id"] == "net"  # 90 minutes against db's 60
    assert causes.loc["c2", "component_id"] == "db"
    assert causes.loc["c2", "share"] == pytest.approx(80 / 90)
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
