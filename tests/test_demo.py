"""Tests of the demo world (satmodel.demo)."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import patsy
import pyarrow.parquet as pq
import pytest

from satmodel import demo, features, sources
from satmodel.cli import main
from satmodel.demo.store import load_duckdb
from satmodel.errors import InputError
from satmodel.schema import TABLES

SMALL = {"customers": 30, "months": 4, "seed": 7, "start_month": "2025-11"}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> demo.DemoResult:
    out = tmp_path_factory.mktemp("demo") / "small"
    return demo.generate_demo(out, progress=False, **SMALL)


def read(result: demo.DemoResult, table: str) -> pd.DataFrame:
    return pq.read_table(result.paths[table]).to_pandas()


def month_of(ts: pd.Series) -> pd.Series:
    return ts.dt.tz_convert("UTC").dt.strftime("%Y-%m")


def handmade_panel(customers: int, months: int, seed: int) -> pd.DataFrame:
    """A panel with the columns the truth uses, drawn independently of satmodel.features."""
    rng = np.random.default_rng(seed)
    cust = np.repeat([f"c{i}" for i in range(customers)], months)
    month = np.tile([f"2025-{m + 1:02d}" for m in range(months)], customers)
    segment = np.repeat(rng.choice(demo.SEGMENTS, customers, p=[0.2, 0.35, 0.45]), months)
    expected = np.repeat(rng.choice([300.0, 450.0, 700.0], customers), months)
    downtime = np.where(rng.random(len(cust)) < 0.3, rng.lognormal(3.0, 1.2, len(cust)), 0.0)
    panel = pd.DataFrame(
        {
            "customer_id": cust,
            "month": month,
            "segment": segment,
            "active_users": np.repeat(rng.integers(20, 3000, customers), months),
            "latency_p95_ms": rng.lognormal(np.log(420.0), 0.35, len(cust)),
            "expected_latency_p95_ms": expected,
            "downtime_minutes": downtime,
            "error_rate": rng.beta(1.5, 180.0, len(cust)),
        }
    )
    lag = panel.groupby("customer_id")["downtime_minutes"].shift(1)
    panel["downtime_minutes_lag1"] = lag
    return panel


# --------------------------------------------------------------------------------------
# arguments and pure pieces


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"customers": 0}, "customers"),
        ({"customers": 2.5}, "customers"),
        ({"months": 0}, "months"),
        ({"seed": -1}, "seed"),
        ({"start_month": "2024-13"}, "start_month"),
        ({"start_month": "Nov 2024"}, "start_month"),
    ],
)
def test_bad_arguments_raise_input_error(tmp_path, kwargs, word):
    with pytest.raises(InputError, match=word):
        demo.generate_demo(tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out" / "customers.parquet").exists()


def test_arrow_schemas_follow_the_contract():
    for name, spec in TABLES.items():
        schema = demo.arrow_schema(name)
        assert schema.names == spec.column_names
        for column in spec.columns:
            kind = str(schema.field(column.name).type)
            expected = {
                "str": "string",
                "month": "string",
                "float": "double",
                "int": "int64",
                "bool": "bool",
                "timestamp": "timestamp[us, tz=UTC]",
            }[column.kind]
            assert kind == expected, (name, column.name)


def test_truth_terms_match_patsy_names():
    truth = demo.default_truth()
    panel = handmade_panel(20, 3, seed=1).dropna()
    for model, drop in (("csat", True), ("complaints", False)):
        rhs = truth[model]["formula"].split("~", 1)[1]
        columns = list(patsy.dmatrix(rhs, panel, return_type="dataframe").columns)
        if drop:
            columns.remove("Intercept")
        assert sorted(columns) == sorted(truth[model]["params"])
    thresholds = truth["csat"]["thresholds"]
    assert len(thresholds) == 4 and thresholds == sorted(thresholds)
    assert truth["complaints"]["exposure"] == "active_users"


def test_draw_outcomes_on_a_handmade_panel():
    panel = handmade_panel(200, 6, seed=2)
    truth = demo.default_truth()
    surveys, complaints = demo.draw_outcomes(panel, truth, np.random.default_rng(3))
    assert list(surveys.columns) == TABLES["surveys"].column_names
    assert list(complaints.columns) == TABLES["complaints"].column_names
    assert surveys["response_id"].is_unique and complaints["complaint_id"].is_unique
    assert surveys["csat"].between(1, 5).all()
    assert surveys["nps"].dropna().between(0, 10).all()
    assert 0.05 < surveys["nps"].isna().mean() < 0.3
    assert 3.5 < surveys["csat"].mean() < 4.4
    assert surveys["ts"].is_monotonic_increasing
    # every outcome lies in a customer-month of the panel, first month included
    keys = set(zip(panel["customer_id"], panel["month"], strict=True))
    assert set(zip(surveys["customer_id"], month_of(surveys["ts"]), strict=True)) <= keys
    assert set(zip(complaints["customer_id"], month_of(complaints["ts"]), strict=True)) <= keys
    assert (month_of(surveys["ts"]) == "2025-01").any()
    # sparse: about 40% of customer-months answer, each with 1..6 responses
    per_month = surveys.groupby(["customer_id", month_of(surveys["ts"])]).size()
    assert 0.25 < len(per_month) / len(panel) < 0.6
    assert per_month.between(1, 6).all()
    assert set(complaints["category"]) <= set(demo.COMPLAINT_CATEGORIES)


def test_draw_outcomes_is_deterministic_and_csat_responds_to_latency():
    panel = handmade_panel(100, 4, seed=4)
    truth = demo.default_truth()
    a = demo.draw_outcomes(panel, truth, np.random.default_rng(5))
    b = demo.draw_outcomes(panel, truth, np.random.default_rng(5))
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])
    slow = panel.assign(latency_p95_ms=panel["latency_p95_ms"] * 4)
    worse, more = demo.draw_outcomes(slow, truth, np.random.default_rng(5))
    assert worse["csat"].mean() < a[0]["csat"].mean() - 0.3
    assert len(more) > len(a[1])


def test_draw_outcomes_rejects_bad_panels():
    truth = demo.default_truth()
    panel = handmade_panel(10, 3, seed=6)
    with pytest.raises(InputError, match="active_users"):
        demo.draw_outcomes(panel.drop(columns="active_users"), truth, np.random.default_rng(0))
    broken = panel.copy()
    broken.loc[4, "error_rate"] = np.nan
    with pytest.raises(InputError, match="panel"):
        demo.draw_outcomes(broken, truth, np.random.default_rng(0))
    odd = panel.assign(segment="consumer")
    with pytest.raises(InputError, match="segment"):
        demo.draw_outcomes(odd, truth, np.random.default_rng(0))


@pytest.mark.slow
def test_csat_and_complaints_recover_the_truth():
    """Fit the true formulas on drawn outcomes: estimates within 3.5 standard errors."""
    import statsmodels.formula.api as smf
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    panel = handmade_panel(1000, 12, seed=8)
    truth = demo.default_truth()
    surveys, complaints = demo.draw_outcomes(panel, truth, np.random.default_rng(9))
    fit_panel = panel.dropna(subset=["downtime_minutes_lag1"])
    responses = surveys.assign(month=month_of(surveys["ts"])).merge(
        fit_panel, on=["customer_id", "month"]
    )
    ordinal = OrderedModel.from_formula(truth["csat"]["formula"], responses, distr="logit").fit(
        method="bfgs", maxiter=3000, disp=False
    )
    for term, value in truth["csat"]["params"].items():
        assert abs(ordinal.params[term] - value) < 3.5 * ordinal.bse[term], term
    cuts = ordinal.model.transform_threshold_params(ordinal.params)[1:-1]
    assert np.allclose(cuts, truth["csat"]["thresholds"], atol=0.6)

    counts = complaints.groupby(["customer_id", month_of(complaints["ts"])]).size()
    counts.index.names = ["customer_id", "month"]
    data = fit_panel.merge(
        counts.rename("complaints").reset_index(), on=["customer_id", "month"], how="left"
    ).fillna({"complaints": 0})
    negbin = smf.negativebinomial(
        truth["complaints"]["formula"], data, exposure=data["active_users"]
    ).fit(disp=False, maxiter=500)
    for term, value in [*truth["complaints"]["params"].items(), ("alpha", 0.4)]:
        assert abs(negbin.params[term] - value) < 3.5 * negbin.bse[term], term


# --------------------------------------------------------------------------------------
# the whole world


def test_tables_have_canonical_columns_and_types(small):
    assert set(small.paths) == {*TABLES, "truth"}
    for name in TABLES:
        schema = pq.read_schema(small.paths[name])
        assert schema.names == TABLES[name].column_names, name
        assert schema.remove_metadata().equals(demo.arrow_schema(name)), name
        assert pq.read_metadata(small.paths[name]).num_rows == small.row_counts[name]
    for name in ("requests", "incidents", "tickets", "changes", "usage", "surveys", "complaints"):
        assert small.row_counts[name] > 0, name
    customers = read(small, "customers")
    assert customers["customer_id"].is_unique and len(customers) == SMALL["customers"]
    assert set(customers["segment"]) == set(demo.SEGMENTS)
    for column in ("expected_availability_pct", "expected_latency_p95_ms"):
        means = customers.groupby("segment")[column].mean()
        assert means.nunique() == 3


def test_ids_are_unique_and_rows_valid(small):
    for table, key in (
        ("incidents", "incident_id"),
        ("tickets", "ticket_id"),
        ("changes", "change_id"),
        ("surveys", "response_id"),
        ("complaints", "complaint_id"),
    ):
        assert read(small, table)[key].is_unique, table
    incidents = read(small, "incidents")
    assert (incidents["end_ts"] >= incidents["start_ts"]).all()
    assert incidents["severity"].between(1, 4).all()
    tickets = read(small, "tickets")
    for column in ("first_response_ts", "resolved_ts"):
        done = tickets[column].notna()
        assert (tickets.loc[done, column] >= tickets.loc[done, "opened_ts"]).all()
    assert tickets["resolved_ts"].isna().any()
    usage = read(small, "usage")
    assert len(usage) == SMALL["customers"] * SMALL["months"]
    assert (usage["active_users"] > 0).all()


def test_every_customer_month_has_requests(small):
    requests = read(small, "requests")
    per_month = requests.groupby(["customer_id", month_of(requests["ts"])]).size()
    assert len(per_month) == SMALL["customers"] * SMALL["months"]
    assert (requests["latency_ms"] >= 0).all()
    assert 0 < (~requests["ok"]).mean() < 0.1


def test_incidents_overlap_and_cross_months(small):
    incidents = read(small, "incidents").sort_values(["customer_id", "start_ts"])
    previous_end = (
        incidents.groupby("customer_id")["end_ts"]
        .cummax()
        .groupby(incidents["customer_id"])
        .shift(1)
    )
    assert (incidents["start_ts"] < previous_end).sum() >= 3
    crossing = month_of(incidents["start_ts"]) != month_of(incidents["end_ts"])
    assert crossing.sum() >= 3


def test_global_changes_exist(small):
    changes = read(small, "changes")
    assert changes["customer_id"].isna().sum() >= 2 * SMALL["months"]
    assert changes["customer_id"].notna().any()
    assert changes["failed"].any() and not changes["failed"].all()


def test_surveys_are_sparse(small):
    surveys = read(small, "surveys")
    per_month = surveys.groupby(["customer_id", month_of(surveys["ts"])]).size()
    share = len(per_month) / (SMALL["customers"] * SMALL["months"])
    assert 0.15 < share < 0.75
    assert per_month.between(1, 6).all()
    assert surveys["csat"].between(1, 5).all()
    assert surveys["nps"].isna().any()


def test_truth_json(small):
    truth = json.loads(small.paths["truth"].read_text(encoding="utf-8"))
    assert truth == small.truth
    assert list(truth)[:6] == [
        "description",
        "seed",
        "customers",
        "months",
        "start_month",
        "end_month",
    ]
    assert truth["seed"] == SMALL["seed"] and truth["end_month"] == "2026-02"
    assert truth["rows"] == small.row_counts
    assert truth["csat"]["formula"].startswith("csat ~ ")
    assert truth["complaints"]["formula"].startswith("complaints ~ ")
    assert truth["complaints"]["exposure"] == "active_users"
    assert truth["complaints"]["alpha"] > 0
    assert "lag" in truth["lag_rule"]["description"]
    # hidden customer effects are on by default, one per customer and model
    for model in ("csat", "complaints"):
        assert len(truth["customer_effects"][model]["values"]) == SMALL["customers"]

    source = sources.open_source(small.out_dir)
    try:
        panel = features.build_panel(source)
    finally:
        source.close()
    assert len(panel) == SMALL["customers"] * SMALL["months"]
    for model in ("csat", "complaints"):
        rhs = truth[model]["formula"].split("~", 1)[1]
        matrix = patsy.dmatrix(rhs, panel, return_type="dataframe")
        terms = set(matrix.columns) - ({"Intercept"} if model == "csat" else set())
        assert terms == set(truth[model]["params"]), model
        # drivers are never null except the first month's lag
        assert len(matrix) == len(panel) - SMALL["customers"]


def test_same_seed_gives_identical_files_and_other_seed_differs(small, tmp_path):
    again = demo.generate_demo(tmp_path / "again", progress=False, **SMALL)
    other = demo.generate_demo(tmp_path / "other", progress=False, **{**SMALL, "seed": 8})
    for name, path in small.paths.items():
        assert path.read_bytes() == again.paths[name].read_bytes(), name
    differ = [n for n in TABLES if small.paths[n].read_bytes() != other.paths[n].read_bytes()]
    # the components table is the demo's fixed CMDB: the same for every seed
    assert set(differ) == set(TABLES) - {"components"}
    assert not [p for p in (tmp_path / "again").iterdir() if p.name.startswith(".")]


def foreign_duckdb(path):
    """A DuckDB file the demo did not make: a canonical table, rejected rows and a note."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE notes AS SELECT 1 AS x")
    con.execute("CREATE TABLE rejected AS SELECT 'old' AS reason")
    con.execute("CREATE TABLE surveys AS SELECT 42 AS old_column")
    con.close()
    return path


def table_names(path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def test_duckdb_file_the_demo_did_not_make_is_refused_without_force(tmp_path):
    target = foreign_duckdb(tmp_path / "db" / "satmodel.duckdb")
    before = target.read_bytes()
    with pytest.raises(InputError, match="force") as caught:
        demo.generate_demo(tmp_path / "out", duckdb_path=target, progress=False, **SMALL)
    assert len(caught.value.problems) == 1
    assert target.read_bytes() == before
    assert not (tmp_path / "out").exists()  # refused before anything was written
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_duckdb_load_replaces_tables_marks_the_file_and_is_atomic(small, tmp_path, capsys):
    target = foreign_duckdb(tmp_path / "db" / "satmodel.duckdb")
    result = demo.generate_demo(
        tmp_path / "out", duckdb_path=target, progress=True, force=True, **SMALL
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "demo" in captured.err
    assert table_names(target) == {*TABLES, "notes", demo.MARKER_TABLE}
    con = duckdb.connect(str(target), read_only=True)
    try:
        for name in TABLES:
            rows = con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
            assert rows == result.row_counts[name], name
        columns = [row[0] for row in con.execute("DESCRIBE surveys").fetchall()]
        assert columns == TABLES["surveys"].column_names
        marker = con.execute(f"SELECT * FROM {demo.MARKER_TABLE}").df()
    finally:
        con.close()
    assert len(marker) == 1
    for key in ("seed", "customers", "months", "start_month", "end_month"):
        assert marker[key].iloc[0] == result.truth[key], key

    # its own file is rewritten without force (the demo is rerun freely), the note kept
    again = demo.generate_demo(tmp_path / "out", duckdb_path=target, progress=False, **SMALL)
    assert again.row_counts == result.row_counts
    assert table_names(target) == {*TABLES, "notes", demo.MARKER_TABLE}

    # a failing load leaves the earlier good file untouched and no temporary files behind
    before = target.read_bytes()
    broken = {**result.paths, "requests": tmp_path / "missing.parquet"}
    with pytest.raises(duckdb.Error):
        load_duckdb(broken, target, result.truth)
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_cli_demo_refuses_a_foreign_duckdb_file_unless_force(tmp_path, capsys):
    target = foreign_duckdb(tmp_path / "own.duckdb")
    args = ["demo", "--customers", "12", "--months", "2", "--out", str(tmp_path / "out")]
    args += ["--duckdb", str(target), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--force" in err and "Traceback" not in err
    assert table_names(target) == {"notes", "rejected", "surveys"}
    assert main([*args, "--force"]) == 0
    assert demo.MARKER_TABLE in table_names(target)
    assert main(args) == 0  # now it is the demo's own file


def window_of(truth: dict) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First instant of the first month and first instant after the last month."""
    start = pd.Timestamp(truth["start_month"] + "-01", tz="UTC")
    return start, start + pd.DateOffset(months=truth["months"])


@pytest.mark.parametrize(
    "customers", [1500, pytest.param(5000, marks=pytest.mark.slow)], ids=["1500", "5000"]
)
def test_demo_at_any_size_keeps_every_timestamp_in_its_months(tmp_path, customers):
    """At these sizes an incident runs past the data end; it must not add an empty month."""
    db = tmp_path / "demo.duckdb"
    args = ["demo", "--customers", str(customers), "--months", "3", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "out"), "--duckdb", str(db)]) == 0
    truth = json.loads((tmp_path / "out" / "truth.json").read_text(encoding="utf-8"))
    start, end = window_of(truth)
    for table, spec in TABLES.items():
        frame = pq.read_table(tmp_path / "out" / f"{table}.parquet").to_pandas()
        for column in spec.columns:
            if column.kind == "timestamp":
                stamps = frame[column.name].dropna()
                assert stamps.min() >= start and stamps.max() < end, (table, column.name)
    source = sources.open_source(db)
    try:
        panel = features.build_panel(source)
    finally:
        source.close()
    assert len(panel) == customers * 3
    assert panel["latency_p95_ms"].notna().all()


@pytest.mark.slow
def test_demo_recovers_its_truth_through_the_panel(tmp_path):
    """End to end: demo tables -> build_panel/build_responses -> statsmodels -> truth (pooled
    fits, so without the hidden customer effects: tests/test_demo_confounding.py has them)."""
    import statsmodels.formula.api as smf
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    result = demo.generate_demo(
        tmp_path / "mid", customers=150, months=10, seed=11, progress=False, customer_effects=False
    )
    truth = result.truth
    source = sources.open_source(result.out_dir)
    try:
        panel = features.build_panel(source)
        responses = features.build_responses(source, panel)
    finally:
        source.close()
    # hidden customer effects and component outages (database, CDN) pull the mean down
    assert 3.5 < responses["csat"].mean() < 4.3
    responses = responses.dropna(subset=["downtime_minutes_lag1"])
    ordinal = OrderedModel.from_formula(truth["csat"]["formula"], responses, distr="logit").fit(
        method="bfgs", maxiter=3000, disp=False
    )
    for term, value in truth["csat"]["params"].items():
        assert abs(ordinal.params[term] - value) < 3.5 * ordinal.bse[term], term
    data = panel.dropna(subset=["downtime_minutes_lag1"])
    negbin = smf.negativebinomial(
        truth["complaints"]["formula"], data, exposure=data["active_users"]
    ).fit(disp=False, maxiter=500)
    for term, value in [*truth["complaints"]["params"].items(), ("alpha", 0.4)]:
        assert abs(negbin.params[term] - value) < 3.5 * negbin.bse[term], term
