"""The demo's hidden customer effects: pooled fits are biased, a within-customer fit is not;
and the analytic truth of the inverse question (satmodel.demo.true_required_level)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import patsy
import pytest
from scipy.special import expit

from satmodel import demo, features, fit, sources
from satmodel.cli import main
from satmodel.errors import InputError

LATENCY = "np.log(latency_p95_ms)"
SHORTFALL = "np.maximum(0, np.log(latency_p95_ms / expected_latency_p95_ms))"
TIME_VARYING = [
    LATENCY,
    SHORTFALL,
    "np.log1p(downtime_minutes)",
    "np.log1p(downtime_minutes_lag1)",
    "error_rate",
]
SERVICE_TABLES = ("customers", "requests", "incidents", "tickets", "changes", "usage")
# a fixed start: the generator's default start follows today's date
MID = {"customers": 300, "months": 12, "seed": 11, "start_month": "2024-11"}


def _load(result: demo.DemoResult) -> dict:
    source = sources.open_source(result.out_dir)
    try:
        panel = features.build_panel(source)
        responses = features.build_responses(source, panel)
    finally:
        source.close()
    return {"result": result, "truth": result.truth, "panel": panel, "responses": responses}


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """The same mid-sized world (same seed) with and without hidden customer effects."""
    root = tmp_path_factory.mktemp("confounding")
    on = demo.generate_demo(root / "on", progress=False, **MID)
    off = demo.generate_demo(root / "off", progress=False, customer_effects=False, **MID)
    return {"on": _load(on), "off": _load(off)}


def _fit_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(*args, **kwargs)


def _row(result, term: str) -> pd.Series:
    return result.coefficients_.set_index("term").loc[term]


def _customer_log_latency(panel: pd.DataFrame) -> pd.Series:
    return np.log(panel["latency_p95_ms"]).groupby(panel["customer_id"]).mean()


# --------------------------------------------------------------------------------------
# the world


def test_truth_documents_the_effects_tied_to_persistent_latency(worlds):
    truth, panel = worlds["on"]["truth"], worlds["on"]["panel"]
    on_disk = json.loads(worlds["on"]["result"].paths["truth"].read_text(encoding="utf-8"))
    assert on_disk == truth
    effects = truth["customer_effects"]
    assert "hidden" in truth["description"] and "within" in truth["description"]
    slow = _customer_log_latency(panel)
    for model, sign in (("csat", -1), ("complaints", 1)):
        spec = effects[model]
        assert spec["c"] > 0 and 0 < spec["sd"] < 0.3
        assert f"c = {spec['c']}" in spec["rule"]
        values = pd.Series(spec["values"])
        assert set(values.index) == set(panel["customer_id"])
        # customers on persistently slower infrastructure are less happy, complain more
        assert sign * np.corrcoef(values[slow.index], slow)[0, 1] > 0.5
    bias = effects["pooled_bias"]
    assert "latency" in bias["statement"]
    assert bias["csat"][LATENCY]["true"] == truth["csat"]["params"][LATENCY]
    assert bias["csat"][LATENCY]["expected_pooled"] < 1.3 * truth["csat"]["params"][LATENCY]
    assert bias["complaints"][LATENCY]["ratio"] > 1.3

    off = worlds["off"]["truth"]
    assert "customer_effects" not in off
    assert "no hidden customer effects" in off["description"]


def test_effects_use_their_own_random_stream(worlds):
    on, off = worlds["on"]["result"], worlds["off"]["result"]
    for table in SERVICE_TABLES:
        assert on.paths[table].read_bytes() == off.paths[table].read_bytes(), table
    surveys_on, surveys_off = (w["responses"] for w in (worlds["on"], worlds["off"]))
    pd.testing.assert_series_equal(surveys_on["response_id"], surveys_off["response_id"])
    pd.testing.assert_series_equal(surveys_on["ts"], surveys_off["ts"])
    # the same responses: their csat moves with the customer's effect
    shift = (surveys_on["csat"] - surveys_off["csat"]).groupby(surveys_on["customer_id"]).mean()
    u = pd.Series(worlds["on"]["truth"]["customer_effects"]["csat"]["values"])[shift.index]
    assert np.corrcoef(shift, u)[0, 1] > 0.3


def test_cli_demo_switches_the_effects_off(tmp_path):
    args = ["demo", "--customers", "12", "--months", "2", "--quiet"]
    for name, extra in (("on", []), ("off", ["--no-customer-effects"])):
        out, db = tmp_path / name, tmp_path / f"{name}.duckdb"
        assert main([*args, *extra, "--out", str(out), "--duckdb", str(db)]) == 0
    on = json.loads((tmp_path / "on" / "truth.json").read_text(encoding="utf-8"))
    off = json.loads((tmp_path / "off" / "truth.json").read_text(encoding="utf-8"))
    assert len(on["customer_effects"]["csat"]["values"]) == 12
    assert "customer_effects" not in off


def test_draw_outcomes_applies_the_effects_of_the_truth():
    rng = np.random.default_rng(0)
    customers = [f"c{i}" for i in range(200)]
    panel = pd.DataFrame(
        {
            "customer_id": np.repeat(customers, 6),
            "month": np.tile([f"2025-{m:02d}" for m in range(1, 7)], 200),
            "segment": "smb",
            "active_users": 500,
            "latency_p95_ms": rng.lognormal(np.log(400.0), 0.2, 1200),
            "expected_latency_p95_ms": 450.0,
            "downtime_minutes": 0.0,
            "downtime_minutes_lag1": 0.0,
            "error_rate": 0.005,
        }
    )
    truth = demo.default_truth()
    plain = demo.draw_outcomes(panel, truth, np.random.default_rng(1))[0]
    # a large effect on half of the customers, none on the others
    values = {c: (2.0 if i % 2 else 0.0) for i, c in enumerate(customers)}
    truth["customer_effects"] = {
        "csat": {"values": values},
        "complaints": {"values": dict.fromkeys(customers, 0.0)},
    }
    shifted = demo.draw_outcomes(panel, truth, np.random.default_rng(1))[0]
    gain = (shifted["csat"] - plain["csat"]).groupby(shifted["customer_id"].map(values)).mean()
    assert gain[0.0] == 0 and gain[2.0] > 0.4
    del values["c3"]
    with pytest.raises(InputError, match="c3"):
        demo.draw_outcomes(panel, truth, np.random.default_rng(1))


# --------------------------------------------------------------------------------------
# what the within-customer estimation must get right


@pytest.mark.slow
def test_pooled_ordinal_fit_is_biased_for_latency(worlds):
    true = worlds["on"]["truth"]["csat"]["params"][LATENCY]
    for name in ("on", "off"):
        truth, responses = worlds[name]["truth"], worlds[name]["responses"]
        result = _fit_quietly(responses, truth["csat"]["formula"], "ordinal", cluster="customer_id")
        row = _row(result, LATENCY)
        if name == "on":
            assert row["ci_high"] < true, row  # excludes the truth, on the steeper side
            expected = truth["customer_effects"]["pooled_bias"]["csat"][LATENCY]
            assert row["ci_low"] <= expected["expected_pooled"] <= row["ci_high"]
        else:
            assert row["ci_low"] <= true <= row["ci_high"], row


def _with_customer_means(frame: pd.DataFrame, panel: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Mundlak by hand: the customer means (over the fitted panel rows) of the time-varying
    driver terms as extra columns; returns the frame and the formula terms to add."""
    rows = panel.dropna(subset=["downtime_minutes_lag1"])
    terms = patsy.dmatrix(" + ".join(TIME_VARYING), rows, return_type="dataframe")
    terms = terms.drop(columns="Intercept")
    means = terms.groupby(rows["customer_id"].to_numpy()).mean()
    means.columns = [f"customer_mean_{k}" for k in range(len(TIME_VARYING))]
    means = means.rename_axis("customer_id").reset_index()
    return frame.merge(means, on="customer_id", how="left"), " + " + " + ".join(means.columns[1:])


@pytest.mark.slow
def test_hand_made_mundlak_fit_recovers_the_within_truth(worlds):
    truth, panel = worlds["on"]["truth"], worlds["on"]["panel"]
    responses, extra = _with_customer_means(worlds["on"]["responses"], panel)
    pooled = _fit_quietly(
        worlds["on"]["responses"], truth["csat"]["formula"], "ordinal", cluster="customer_id"
    )
    within = _fit_quietly(
        responses, truth["csat"]["formula"] + extra, "ordinal", cluster="customer_id"
    )
    row = _row(within, LATENCY)
    true = truth["csat"]["params"][LATENCY]
    assert row["ci_low"] <= true <= row["ci_high"], row
    assert abs(row["estimate"] - true) < abs(_row(pooled, LATENCY)["estimate"] - true)

    data, extra = _with_customer_means(panel.dropna(subset=["downtime_minutes_lag1"]), panel)
    counts = _fit_quietly(
        data,
        truth["complaints"]["formula"] + extra,
        "negbin",
        exposure="active_users",
        cluster="customer_id",
    )
    row = _row(counts, LATENCY)
    assert row["ci_low"] <= truth["complaints"]["params"][LATENCY] <= row["ci_high"], row


# --------------------------------------------------------------------------------------
# the analytic truth of the inverse question


def _by_hand(truth: dict, rows: pd.DataFrame, outcome: str) -> np.ndarray:
    """The true expected outcome per row, written out term by term (no patsy, no satmodel)."""
    latency = rows["latency_p95_ms"].to_numpy(float)
    downtime = rows["downtime_minutes"].to_numpy(float)
    lag = rows["downtime_minutes_lag1"].fillna(rows["downtime_minutes"]).to_numpy(float)
    values = {
        LATENCY: np.log(latency),
        SHORTFALL: np.maximum(0, np.log(latency / rows["expected_latency_p95_ms"].to_numpy())),
        "np.log1p(downtime_minutes)": np.log1p(downtime),
        "np.log1p(downtime_minutes_lag1)": np.log1p(lag),
        "error_rate": rows["error_rate"].to_numpy(float),
        "Intercept": np.ones(len(rows)),
    }
    for level in ("mid_market", "smb"):
        values[f"C(segment)[T.{level}]"] = (rows["segment"] == level).to_numpy(float)
    model = "complaints" if outcome == "complaint_rate_per_1k" else "csat"
    params = truth[model]["params"]
    linear = sum(value * values[term] for term, value in params.items())
    linear = linear + rows["customer_id"].map(truth["customer_effects"][model]["values"])
    linear = linear.to_numpy(float)
    if model == "complaints":
        return 1000 * np.exp(linear)
    cuts = truth["csat"]["thresholds"]
    probs = np.diff(
        np.column_stack(
            [np.zeros(len(rows)), *(expit(c - linear) for c in cuts), np.ones(len(rows))]
        ),
        axis=1,
    )
    if outcome == "csat_mean":
        return probs @ np.arange(1, 6)
    return probs[:, 3:].sum(axis=1)


@pytest.mark.parametrize("outcome", demo.OUTCOMES)
def test_true_outcome_at_own_levels_is_the_average_true_expectation(worlds, outcome):
    truth, panel = worlds["on"]["truth"], worlds["on"]["panel"]
    for month in (truth["start_month"], truth["last_complete_month"]):  # lag null, lag known
        rows = panel[(panel["segment"] == "smb") & (panel["month"] == month)]
        expected = _by_hand(truth, rows, outcome).mean()
        got = demo.true_outcome(truth, panel, outcome, segment="smb", month=month)
        assert got == pytest.approx(expected, rel=1e-10), month
    # at L = each row's own level the required level reproduces it (one row: no averaging)
    one = rows.iloc[[0]]
    level = demo.true_required_level(
        truth, one, outcome, _by_hand(truth, one, outcome)[0], segment="smb", month=month
    )
    assert level == pytest.approx(one["latency_p95_ms"].iloc[0], rel=1e-6)


def test_true_outcome_matches_what_the_customers_answered(worlds):
    """The truth with its effects predicts the observed CSAT of the most and least affected
    customers; without the effects it would not."""
    truth, responses = worlds["on"]["truth"], worlds["on"]["responses"]
    u = responses["customer_id"].map(truth["customer_effects"]["csat"]["values"])
    for group in (responses[u < u.quantile(0.25)], responses[u > u.quantile(0.75)]):
        observed, sd = group["csat"].mean(), group["csat"].std() / np.sqrt(len(group))
        assert abs(demo.true_outcome(truth, group, "csat_mean") - observed) < 3 * sd
        without = {k: v for k, v in truth.items() if k != "customer_effects"}
        assert abs(demo.true_outcome(without, group, "csat_mean") - observed) > 3 * sd


@pytest.mark.parametrize(
    ("outcome", "targets", "rising"),
    [
        ("csat_mean", [3.7, 3.9, 4.1, 4.3], False),
        ("csat_top2_rate", [0.6, 0.7, 0.8, 0.9], False),
        ("complaint_rate_per_1k", [2.0, 5.0, 10.0, 20.0], True),
    ],
)
def test_true_required_level_hits_the_target_and_is_monotone(worlds, outcome, targets, rising):
    truth, panel = worlds["on"]["truth"], worlds["on"]["panel"]
    where = {"segment": "smb", "month": truth["last_complete_month"]}
    levels = [demo.true_required_level(truth, panel, outcome, t, **where) for t in targets]
    for target, level in zip(targets, levels, strict=True):
        reached = demo.true_outcome(
            truth, panel, outcome, levels={"latency_p95_ms": level}, **where
        )
        assert reached == pytest.approx(target, rel=1e-8)
    steps = np.diff(levels)
    assert (steps > 0).all() if rising else (steps < 0).all()


def test_true_required_level_rejects_bad_questions(worlds):
    truth, panel = worlds["on"]["truth"], worlds["on"]["panel"]
    with pytest.raises(InputError, match="outcome"):
        demo.true_required_level(truth, panel, "nps_mean", 4.0)
    with pytest.raises(InputError, match="not reachable"):
        demo.true_required_level(truth, panel, "csat_mean", 5.5, segment="smb")
    with pytest.raises(InputError, match="segment"):
        demo.true_required_level(truth, panel, "csat_mean", 4.0, segment="consumer")
    with pytest.raises(InputError, match="month"):
        demo.true_required_level(truth, panel, "csat_mean", 4.0, month="1999-01")
    with pytest.raises(InputError, match="lever"):
        demo.true_required_level(truth, panel, "csat_mean", 4.0, lever="no_such_column")
    with pytest.raises(InputError, match="target"):
        demo.true_required_level(truth, panel, "csat_mean", float("nan"))
