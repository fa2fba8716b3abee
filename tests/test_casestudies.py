"""Case studies on real public data (../shared/data), run as papermill notebooks.

Each case study runs once per session through :func:`satmodel.casestudies.run_case_study`
(papermill -> report.ipynb, report.html, summary.json, manifest.json); the tests read the
numbers the notebook wrote to ``summary.json``.

Tolerances (Olist): the shared file is a ~21 % sample (20,463 delivered reviews) of the full
98,673-order data set the published figures come from. A sample mean differs from the full-data
mean by a random amount whose standard deviation is at most the sample's standard error (less,
by the finite-population factor sqrt(1 - 0.21) = 0.89, since the sample is part of the full
data), and published figures are rounded to 0.01. So each mean must lie within
4 standard errors + 0.005 of its published value (a chance failure has probability < 1e-4 per
check), and the ordinal "effect of being late" (published as about -1.6, one decimal) within
3 standard errors + 0.05. Wrong mappings (a flipped delay sign, days read as milliseconds...)
move these numbers by dozens of standard errors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import SHARED_DATA, shared_data

ROOT = Path(__file__).resolve().parents[1]
OLIST_CSV = SHARED_DATA / "olist" / "olist_reviews_delivery_union.csv"
DOT_CSV = SHARED_DATA / "dot_baggage" / "baggagecomplaints.csv"
CASE_NOTEBOOKS = sorted((ROOT / "notebooks" / "case_studies").glob("*.ipynb"))

_RUNS: dict[str, Path] = {}


def _need(path: Path) -> None:
    shared_data(path)


def _run(name: str, tmp_path_factory, data: Path | None = None) -> Path:
    """Run a case study once per session through the CLI, as a user with no code would."""
    if name not in _RUNS:
        from satmodel.cli import main

        out = tmp_path_factory.mktemp(f"case_{name}")
        args = ["case-study", name, "--out", str(out)]
        if data is not None:
            args += ["--data", str(data)]
        assert main(args) == 0
        _RUNS[name] = out / name
    return _RUNS[name]


def _copied_olist_config(tmp_path_factory) -> Path:
    """The example config copied elsewhere and pointed at the CSV, as a new user would."""
    text = (ROOT / "examples" / "olist" / "satmodel.toml").read_text(encoding="utf-8")
    text, count = re.subn(
        r'^path = ".*"$', f"path = {json.dumps(str(OLIST_CSV))}", text, flags=re.MULTILINE
    )
    assert count == 1
    folder = tmp_path_factory.mktemp("user_config")
    (folder / "satmodel.toml").write_text(text, encoding="utf-8")
    return folder / "satmodel.toml"


@pytest.fixture(scope="module")
def olist(tmp_path_factory) -> Path:
    _need(OLIST_CSV)
    return _run("olist_delivery", tmp_path_factory, _copied_olist_config(tmp_path_factory))


@pytest.fixture(scope="module")
def olist_summary(olist) -> dict:
    return json.loads((olist / "summary.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dot(tmp_path_factory) -> Path:
    _need(DOT_CSV)
    return _run("dot_baggage", tmp_path_factory)


@pytest.fixture(scope="module")
def dot_summary(dot) -> dict:
    return json.loads((dot / "summary.json").read_text(encoding="utf-8"))


def _close(value: float, published: float, std_error: float, k: float, rounding: float) -> bool:
    return abs(value - published) <= k * std_error + rounding


# -- the notebooks (tests/test_notebooks.py checks they are thin and stored clean) -------


def test_both_case_notebooks_exist():
    assert [p.name for p in CASE_NOTEBOOKS] == ["dot_baggage.ipynb", "olist_delivery.ipynb"]


@pytest.mark.parametrize(
    ("name", "folder"), [("olist_delivery", "olist"), ("dot_baggage", "dot_baggage")]
)
def test_example_configs_are_found_as_package_data_or_in_the_source_tree(name, folder):
    from satmodel import casestudies as cs

    config = cs.case_config(name)
    assert config.is_file()
    assert config.resolve() == (ROOT / "examples" / folder / "satmodel.toml").resolve()


def test_unknown_case_study_is_an_input_error():
    from satmodel import casestudies as cs
    from satmodel.errors import InputError

    with pytest.raises(InputError, match="unknown"):
        cs.case_config("nope")


# -- Olist ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_olist_runs_like_a_report_from_a_copied_config(olist):
    assert {p.name for p in olist.iterdir()} >= {
        "report.ipynb",
        "report.html",
        "summary.json",
        "manifest.json",
    }
    manifest = json.loads((olist / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    assert str(OLIST_CSV.resolve()) in manifest["inputs"]
    html = (olist / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 2
    assert "Traceback" not in html and "&lt;Figure size" not in html
    assert "cs.load_case" not in html  # no code


@pytest.mark.slow
def test_olist_rows_and_late_share(olist_summary):
    rows = olist_summary["rows"]
    assert rows["reviews"] == 21_167  # every review of the file reached the workbook
    assert rows["delivered_reviews"] == 20_463  # README: 20,463 delivered with a date
    assert rows["quarantined"] == 0
    # binomial SE of the share: sqrt(0.078 * 0.922 / 20463) = 0.0019
    assert _close(olist_summary["late_share"], 0.078, 0.0019, 4, 0.0005)


@pytest.mark.slow
def test_olist_mean_score_on_time_vs_late(olist_summary):
    means = olist_summary["mean_score"]
    assert _close(means["on_time"]["mean"], 4.28, means["on_time"]["std_error"], 4, 0.005)
    assert _close(means["late"]["mean"], 2.57, means["late"]["std_error"], 4, 0.005)


@pytest.mark.slow
def test_olist_mean_score_falls_monotonically_with_delay(olist_summary):
    buckets = {b["bucket"]: b for b in olist_summary["buckets"]}
    published = [label for label in buckets if buckets[label]["published"] is not None]
    assert published == ["<= -10", "(0, 2]", "(2, 5]", "(5, 10]", "> 10"]
    for label in published:
        bucket = buckets[label]
        assert _close(bucket["mean_score"], bucket["published"], bucket["std_error"], 4, 0.005), (
            label
        )
    means = [buckets[label]["mean_score"] for label in buckets]  # all six, in delay order
    assert means == sorted(means, reverse=True)


@pytest.mark.slow
def test_olist_ordinal_effect_of_being_late(olist_summary):
    ordinal = olist_summary["ordinal_logit"]
    late = ordinal["late"]  # step for being late, with a slope per day late
    assert _close(late["estimate"], -1.6, late["std_error"], 3, 0.05)
    assert late["ci_high"] < 0
    assert ordinal["per_day_late"]["ci_high"] < 0
    # the step alone also absorbs the per-day penalty, so it is larger
    assert ordinal["late_only"]["estimate"] < late["estimate"]
    shape = ordinal["delay_shape"]
    assert shape["days_0_2"]["ci_high"] < 0 and shape["days_2_10"]["ci_high"] < 0
    assert shape["log_likelihood"] > shape["log_likelihood_late_slope"]
    # a low score (the complaint proxy) is far more likely when late
    assert olist_summary["low_score_logit"]["late"]["ci_low"] > 0


@pytest.mark.slow
def test_olist_days_late_for_a_mean_score_of_4_from_the_curve(olist_summary):
    # published: 4.28 on time, 3.92 in (0, 2] days: the threshold lies inside (0, 2) days
    curve = olist_summary["curve_max_days_late"]
    assert curve["target"] == 4.0
    assert 0 < curve["max_days_late"] < 2
    assert curve["expected_on_time"] > 4


@pytest.mark.slow
def test_olist_inverse_solver_answers_how_late_a_delivery_may_be(olist_summary):
    solver = olist_summary["solver"]
    assert solver["feasible"]
    assert 0 < solver["max_days_late"] < 2
    assert solver["max_days_late_ci_low"] <= solver["max_days_late"]
    assert solver["max_days_late"] <= solver["max_days_late_ci_high"]
    # the solver and the response curve (0.05-day grid) agree
    assert abs(solver["max_days_late"] - olist_summary["curve_max_days_late"]["max_days_late"]) < (
        0.1
    )


# -- DOT baggage ------------------------------------------------------------------------------


@pytest.mark.slow
def test_dot_runs_like_a_report(dot, dot_summary):
    manifest = json.loads((dot / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    html = (dot / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 2
    assert "Traceback" not in html
    rows = dot_summary["rows"]
    assert rows == {
        "airline_months": 252,
        "airlines": 3,
        "complaints": 3_178_604,  # sum of Baggage over the file
        "quarantined": 0,
    }
    assert dot_summary["data_window"] == ["2004-01", "2010-12"]


@pytest.mark.slow
def test_dot_overdispersion_detected(dot_summary):
    over = dot_summary["overdispersion"]
    # published: Poisson dispersion about 334 (airline, cancellations, month of year and year,
    # offset log passengers); the same model on the same 252 rows gives the same number
    assert over["poisson_dispersion"] == pytest.approx(334, abs=0.5)
    assert over["negbin_dispersion"] < 2
    assert over["lr_statistic"] > 1000 and over["lr_p_value"] < 1e-10
    assert over["alpha"] > 0
    assert over["diagnostics_lr"] == pytest.approx(over["lr_statistic"], rel=1e-6)


@pytest.mark.slow
def test_dot_cancellations_drive_complaints_with_seasonality(dot_summary):
    cancel = dot_summary["cancellations"]
    assert cancel["ci_low"] > 1  # more cancellations, more baggage reports per passenger
    assert 1.02 < cancel["rate_ratio"] < 1.15  # per percentage point (NB2: 1.079)
    season = dot_summary["seasonality"]
    assert [row["month_of_year"] for row in season] == [f"{m:02d}" for m in range(1, 13)]
    assert sum(row["ci_high"] < 1 for row in season) >= 3  # months clearly below January
    assert dot_summary["peak_month"] in ("12", "01")  # the holiday peak
