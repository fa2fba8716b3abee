"""Hostile data strings in every figure, table and Markdown text of the reports (issue 19.9).

A segment named ``zz $\\href{x}{y}$`` or ``Tier $x^$`` made Matplotlib's mathtext raise (the
whole report exited 1), ``Price $5 and $10`` was drawn as maths, ``$...$`` in an HTML table
rendered as MathJax, and a 100,000-character name made charts 1.4M pixels wide.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib import cbook
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from satmodel import reporting
from satmodel.reporting import labels

HUGE = "Q" * 100_000
HOSTILE = [r"zz $\href{x}{y}$", "Tier $x^$", "Price $5 and $10", HUGE]
MONTHS = ["2025-01", "2025-02", "2025-03"]
CONFIG = SimpleNamespace(
    thresholds=SimpleNamespace(
        slo_availability_pct=99.9, slo_latency_p95_ms=500.0, default_resolution_sla_hours=8.0
    ),
    calendar=SimpleNamespace(timezone="UTC"),
)


def hostile_panel(segments: list[str] = HOSTILE) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for month in MONTHS:
        for s, segment in enumerate(segments):
            for c in range(12):
                rows.append(
                    {
                        "customer_id": f"c{s}-{c}",
                        "month": month,
                        "segment": segment,
                        "availability_pct": 100 - rng.exponential(0.1),
                        "expected_availability_pct": 99.9,
                        "downtime_minutes": rng.exponential(40),
                        "latency_p95_ms": rng.lognormal(6, 0.4),
                        "expected_latency_p95_ms": 500.0,
                        "error_rate": rng.uniform(0, 0.02),
                        "resolution_hours_median": rng.lognormal(2, 0.5),
                        "expected_resolution_hours": 8.0,
                        "csat_n": 3,
                        "csat_mean": rng.uniform(2, 5),
                        "csat_top2_rate": rng.uniform(0, 1),
                        "complaints": int(rng.poisson(2)),
                        "active_users": 1000,
                        "complaint_rate_per_1k": rng.uniform(0, 4),
                    }
                )
    return pd.DataFrame(rows)


def burn_inputs(segments: list[str]):
    customers = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(len(segments))], "segment": segments}
    )
    # customer i down for 30 (i + 1) minutes on Feb 3
    daily = pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "day": 3,
            "downtime_minutes": [30.0 * (i + 1) for i in range(len(segments))],
        }
    )
    burn = reporting.burn_rates(daily, customers, "2025-02", 99.9)
    curve = reporting.burn_down(daily, customers, "2025-02", 99.9)
    return curve, burn


def driver_frame() -> pd.DataFrame:
    names = [reporting.describe_driver(f"C(segment)[T.{s}]") for s in HOSTILE]
    return pd.DataFrame(
        {
            "model": "top2",
            "driver": [n[0] for n in names],
            "step": [n[2] for n in names],
            "estimate": [0.1, -0.2, 0.3, -0.4],
            "effect": [1.1, 0.8, 1.3, 0.7],
            "effect_low": [1.0, 0.7, 1.1, 0.5],
            "effect_high": [1.2, 0.9, 1.5, 0.9],
            "p_value": [0.01, 0.2, 0.03, 0.5],
        }
    )


def importance_result():
    table = pd.DataFrame(
        {
            "driver": ["latency", "downtime", *HOSTILE],
            "share": [0.2, 0.1, 0.05, 0.04, 0.03, 0.02],
            "relative_share": [0.4, 0.2, 0.1, 0.1, 0.1, 0.1],
            "relative_share_ci_low": [0.3, 0.1, 0.05, 0.05, 0.05, 0.05],
            "relative_share_ci_high": [0.5, 0.3, 0.2, 0.2, 0.2, 0.2],
            "rank": [1, 2, 3, 4, 5, 6],
            "rank_ci_low": [1, 1, 2, 3, 3, 4],
            "rank_ci_high": [2, 3, 5, 6, 6, 6],
        }
    )
    return SimpleNamespace(table_=table, total_=0.5, measure_="lmg")


def response_curves() -> pd.DataFrame:
    frames = []
    for segment in HOSTILE:
        for lever in ("latency_p95_ms", "availability_pct"):
            level = (
                np.geomspace(100, 2000, 5)
                if lever == "latency_p95_ms"
                else 100 - np.geomspace(0.001, 1, 5)
            )
            frames.append(
                pd.DataFrame(
                    {
                        "segment": segment,
                        "lever": lever,
                        "level": level,
                        "estimate": np.linspace(4.5, 3.5, 5),
                        "ci_low": np.linspace(4.3, 3.3, 5),
                        "ci_high": np.linspace(4.7, 3.7, 5),
                        "current_level": level[2],
                        "significant": lever == "latency_p95_ms",
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def tier_predictions() -> pd.DataFrame:
    tiers = ["Current service", *HOSTILE]
    n = len(tiers)
    return pd.DataFrame(
        {
            "tier": tiers,
            "csat_mean": np.linspace(4.0, 4.4, n),
            "csat_mean_ci_low": np.linspace(3.9, 4.3, n),
            "csat_mean_ci_high": np.linspace(4.1, 4.5, n),
            "complaint_rate_per_1k": np.linspace(3.0, 1.0, n),
            "complaint_ci_low": np.linspace(2.5, 0.5, n),
            "complaint_ci_high": np.linspace(3.5, 1.5, n),
            "meets_csat": ["no", "likely", "yes", "yes", "no"],
            "meets_complaints": ["no", "yes", "yes", "likely", "-"],
        }
    )


def cv_frame() -> pd.DataFrame:
    rows = [
        {
            "model_name": "csat",
            "fold": fold,
            "model": model,
            "metric": "log_loss",
            "value": 1.0 + 0.1 * fold,
            "test_start": f"2025-0{fold + 1}",
            "test_end": f"2025-0{fold + 1}",
        }
        for fold in range(2)
        for model in ("satmodel", "baseline", "hist_gradient_boosting")
    ]
    return pd.DataFrame(rows)


REQUEST = reporting.ProposalRequest(
    segment=HOSTILE[2],
    customer=None,
    csat_target=4.2,
    complaint_target=2.0,
    tiers=pd.DataFrame(columns=reporting.TIER_COLUMNS),
)
FIGURES = {
    "kpi_trends": lambda: reporting.plot_kpi_trends(hostile_panel(), MONTHS[-1]),
    "service_levels": lambda: reporting.plot_service_levels(hostile_panel(), CONFIG, MONTHS[-1]),
    "burn": lambda: reporting.plot_burn(*burn_inputs(HOSTILE), "2025-02"),
    "operations": lambda: reporting.plot_operations(
        reporting.operations_monthly(
            pd.DataFrame(
                {  # a failed change in February, a platform release in March
                    "month": MONTHS,
                    "changes": [0, 1, 1],
                    "failed_changes": [0, 1, 0],
                    "releases": [0, 0, 1],
                    "days_between_releases": [math.nan] * 3,
                    "incidents": [0, 0, 0],
                    "mttr_hours": [math.nan] * 3,
                }
            )
        ),
        MONTHS[-1],
    ),
    "drivers": lambda: reporting.plot_drivers(driver_frame()),
    "importance": lambda: reporting.plot_importance(importance_result(), hostile_panel()),
    "response_curves": lambda: reporting.plot_response_curves(
        response_curves(), pd.DataFrame({"segment": HOSTILE, "csat_target": 4.2})
    ),
    "distributions": lambda: reporting.plot_distributions(hostile_panel()),
    "relationships": lambda: reporting.plot_relationships(hostile_panel(), bins=3),
    "cv": lambda: reporting.plot_cv(cv_frame()),
    "tiers": lambda: reporting.plot_tiers(tier_predictions(), REQUEST),
}


def drawn_texts(figure) -> list[str]:
    FigureCanvasAgg(figure).draw()  # mathtext is parsed here: a bad label raised
    return [t.get_text() for t in figure.findobj(Text) if t.get_visible() and t.get_text()]


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figures_draw_hostile_labels_as_text(name):
    figure = FIGURES[name]()
    assert figure is not None
    texts = drawn_texts(figure)
    # log-axis tick labels are Matplotlib's own mathtext; every other text is plain
    texts = [t for t in texts if not t.startswith(r"$\mathdefault{")]
    assert not [t for t in texts if cbook.is_math_text(t)]
    assert max(len(t) for t in texts) < 2 * labels.MAX_LABEL_CHARS + 40  # names cut
    width, height = figure.get_size_inches() * figure.dpi
    assert width <= 1400 and height <= 2000
    tight = figure.get_tightbbox()
    assert tight.width * figure.dpi < 2000  # a 100k-character label would be far wider


def test_escaped_labels_keep_their_dollars_as_text():
    figure = reporting.plot_drivers(driver_frame())
    texts = drawn_texts(figure)
    assert any("Segment: Price \\$5 and \\$10" in t for t in texts)  # shown as "$5 and $10"
    assert any(t.startswith("Segment: " + "Q" * 20) and labels.ELLIPSIS in t for t in texts)


def test_more_segments_than_palette_colours():
    segments = [f"segment {i}" for i in range(14)]
    assert reporting.plot_service_levels(hostile_panel(segments), CONFIG, MONTHS[-1]) is not None
    assert reporting.plot_burn(*burn_inputs(segments), "2025-02") is not None


def test_truncated_names_that_collide_stay_separate_bars():
    twins = ["A" * 70 + "1", "A" * 70 + "2"]
    figure = reporting.plot_burn(*burn_inputs(twins), "2025-02")
    right = figure.axes[1]
    assert len(right.patches) == 2
    assert sorted({p.get_y() for p in right.patches}) == sorted(p.get_y() for p in right.patches)


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_label_for_each_medium(text):
    plot = labels.escape_label(text, "plot")
    markdown = labels.escape_label(text, "markdown")
    html = labels.escape_label(text, "html")
    assert not cbook.is_math_text(plot) and plot.count("$") == plot.count(r"\$")
    assert "$" not in markdown and "$" not in html
    for shown in (plot, markdown, html):
        assert len(shown) < 4 * labels.MAX_LABEL_CHARS
    assert len(labels.escape_label(text, "plot", max_chars=None)) >= len(text)


def test_show_renders_hostile_labels_as_text():
    frame = pd.DataFrame({"segment": HOSTILE, "customers": [1, 2, 3, 4]})
    html = reporting.show(frame, caption="Segments $a$ and $b$", key="hostile").to_html()
    assert "$" not in html
    assert "&#36;5 and &#36;10" in html and r"zz &#36;\href{x}{y}&#36;" in html
    assert "Q" * (labels.MAX_TEXT_CHARS + 1) not in html and len(html) < 10_000
    assert "tex2jax_ignore mathjax_ignore" in html  # MathJax leaves the table alone
    empty = reporting.show(frame.iloc[:0], caption="Price $5").data
    assert "$" not in empty


def test_markdown_texts_have_no_dollar():
    curve, burn = burn_inputs(HOSTILE)
    burn["burn_rate"] = 2.0
    burn["status"] = "burning too fast"
    texts = [
        reporting.burn_text(burn, "2025-02").data,
        reporting.notes_markdown([f"target for {s}: not solved" for s in HOSTILE]).data,
        reporting.md_escape(HOSTILE[2]),
    ]
    for text in texts:
        assert "$" not in text and "Q" * (labels.MAX_TEXT_CHARS + 1) not in text
    assert "&#36;5 and &#36;10" in texts[0]


# --- human labels, readable ratio axes, alt text --------------------------------------------


@pytest.mark.parametrize(
    ("segment", "shown"),
    [
        ("mid_market", "Mid-market"),
        ("smb", "SMB"),
        ("public_sector", "Public sector"),
        ("Retail EU", "Retail EU"),
    ],
)
def test_segments_read_as_words(segment, shown):
    from satmodel.reporting.labels import segment_label

    assert segment_label(segment) == shown


def test_terms_and_models_read_as_words_and_name_the_reference():
    from satmodel.reporting.drivers import describe_driver
    from satmodel.reporting.labels import model_label, term_label

    assert term_label("C(segment)[T.mid_market]", "enterprise") == (
        "Segment: Mid-market (vs. Enterprise)"
    )
    assert term_label("np.log(latency_p95_ms)") == "p95 latency"
    assert model_label("negbin") == "Complaints (count model)"
    assert model_label("top2") == "Satisfied share (top-2)"
    name, _, step = describe_driver("C(segment)[T.smb]", {"segment": "enterprise"})
    assert name == "Segment: SMB" and step == "vs. Enterprise"
    _, size, step = describe_driver("np.where(np.isnan(resolution_hours_median), 1.0, 0.0)")
    assert (size, step) == (1.0, "vs. the other months")  # an indicator has no "unit"


def test_forest_plot_has_readable_ticks_and_greys_what_the_data_cannot_tell():
    import numpy as np
    import pandas as pd

    from satmodel.reporting.drivers import plot_drivers

    drivers = pd.DataFrame(
        {
            "model": ["top2"] * 2,
            "driver": ["p95 latency", "error rate"],
            "step": ["per doubling", "per +1 percentage point"],
            "estimate": [-0.4, 0.05],
            "effect": [0.67, 1.05],
            "effect_low": [0.55, 0.8],
            "effect_high": [0.81, 1.4],
            "p_value": [0.001, 0.6],
        }
    )
    figure = plot_drivers(drivers)
    ticks = [float(t) for t in figure.axes[0].get_xticks()]
    assert len(ticks) >= 3 and 1.0 in ticks and np.all(np.diff(ticks) > 0)
    notes = [t.get_text() for t in figure.axes[0].texts]
    assert notes == ["the data cannot tell"]
    assert repr(figure).startswith("Figure: What drives the odds of a satisfied response")


def test_every_exported_image_gets_an_alt_text():
    import nbformat

    from satmodel.jobs.html import html_notebook

    nb = nbformat.v4.new_notebook()
    png = "iVBORw0KGgo="
    nb.cells = [
        nbformat.v4.new_markdown_cell("## Response curves"),
        nbformat.v4.new_code_cell(
            outputs=[
                nbformat.v4.new_output(
                    "display_data", data={"image/png": png, "text/plain": "Figure: CSAT by tier"}
                ),
                nbformat.v4.new_output(
                    "display_data",
                    data={"image/png": png, "text/plain": "<Figure size 800x360 with 1 Axes>"},
                ),
            ]
        ),
    ]
    outputs = html_notebook(nb).cells[1].outputs
    alts = [o.metadata["image/png"]["alt"] for o in outputs]
    assert alts == ["CSAT by tier", "Chart of the section Response curves"]


@pytest.mark.parametrize(
    ("lever", "level", "observed", "expected"),
    [
        ("availability_pct", 100.0, (97.0, 99.97), "at the physical limit of 100 %"),
        ("resolution_hours_median", 0.0, (1.0, 48.0), "at the physical limit of 0 hours"),
        ("availability_pct", 99.99, (97.0, 99.97), "beyond anything observed (max seen 99.97 %)"),
        ("latency_p95_ms", 40.0, (80.0, 900.0), "beyond anything observed (min seen 80 ms)"),
    ],
)
def test_level_caveat_names_physical_limits_and_extrapolation(lever, level, observed, expected):
    caveat = reporting.level_caveat(lever, level, observed)
    assert caveat.startswith(" (") and caveat.endswith(")")
    assert expected in caveat
    limit = "at the physical limit" in expected
    assert ("no service can promise this" in caveat) is limit
    assert ("an extrapolation" in caveat) is not limit


@pytest.mark.parametrize(
    ("lever", "level", "observed"),
    [
        ("availability_pct", 99.9, (97.0, 99.97)),
        ("latency_p95_ms", 300.0, (80.0, 900.0)),
        ("availability_pct", 99.99, None),  # nothing known about the data: no claim
        ("availability_pct", math.nan, (97.0, 99.97)),
        ("apdex", 0.9, (0.5, 0.8)),  # not a lever
    ],
)
def test_level_caveat_is_empty_inside_the_data(lever, level, observed):
    assert reporting.level_caveat(lever, level, observed) == ""


# --- identifiers in words in tables and notes; ratios; legends and quadrant labels ----------


def test_model_terms_inside_text_read_as_words():
    from satmodel.vocabulary import driver

    line = (
        "csat: vif:mean(np.log(latency_p95_ms)) = 10.7 (threshold 10); "
        "proportional_odds:np.log1p(downtime_minutes) = 0.01; C(segment)[T.mid_market] 12"
    )
    shown = labels.plain_terms(line)
    for internal in ("np.", "C(", "[T.", "vif:", "proportional_odds", "csat:", "_"):
        assert internal not in shown, (internal, shown)
    assert shown.startswith(labels.model_label("csat") + ": ")
    assert f"usual {driver('np.log(latency_p95_ms)').label} = 10.7" in shown
    assert f"Proportional odds for {driver('np.log1p(downtime_minutes)').label}" in shown
    assert "Segment: Mid-market 12" in shown
    assert labels.plain_terms("C(segment)[T.smb] and C(segment)[T.mid_market]") == (
        "Segment: SMB and Segment: Mid-market"
    )
    assert labels.plain_terms("no term here: 3 rows") == "no term here: 3 rows"


@pytest.mark.parametrize(
    ("check", "internal"),
    [
        ("vif:C(segment)[T.smb]", "C("),
        ("proportional_odds:np.log(latency_p95_ms)", "np."),
        ("min_level_count", "_"),
        ("overdispersion_lr", "_"),
        ("n_obs", "_"),
    ],
)
def test_diagnostic_checks_read_as_words(check, internal):
    shown = labels.check_label(check)
    assert internal not in shown and shown[:1].isupper()


def test_show_puts_identifiers_in_words_and_rounds_expected_counts():
    frame = pd.DataFrame(
        {
            "segment": ["mid_market", "enterprise"],
            "model": ["negbin", "top2"],
            "family": ["negbin", "logit"],
            "check": ["vif:np.log(latency_p95_ms)", "min_level_count"],
            "warnings": ["top2: np.log1p(downtime_minutes) 11.2", "none"],
            "complaints_avoidable_per_month": [15.93, 2.4],
            "flagged": [3, 4],
        }
    )
    html = reporting.show(
        frame, whole=("complaints_avoidable_per_month",), headers={"flagged": "Flagged at risk"}
    ).to_html()
    for internal in ("mid_market", "negbin", "top2", "logit", "np.", "vif:", "min_level_count"):
        assert internal not in html, internal
    assert "Mid-market" in html and "Enterprise" in html
    assert ">16<" in html and ">2<" in html and "15.93" not in html
    assert "Flagged at risk" in html and "Changed?" not in html
    # without ``whole`` the expected counts keep their decimals
    assert "15.93" in reporting.show(frame).to_html()


def test_drift_view_shows_odds_ratios_with_their_interval():
    drift = pd.DataFrame(
        {
            "model": ["top2", "complaints"],
            "term": ["np.log(latency_p95_ms)", "C(segment)[T.smb]"],
            "driver": ["p95 latency", "Segment: SMB"],
            "estimate": [-0.5, 0.2],
            "previous_estimate": [-0.3, 0.1],
            "std_error": [0.1, 0.05],
            "p_value": [0.004, 0.3],
            "flagged": [True, False],
        }
    )
    view = reporting.drift_view(drift, {"segment": "enterprise"})
    z = 1.959963984540054
    # latency per doubling: odds ratio 2 ** b; the segment against its reference: exp(b)
    assert view["effect"].tolist() == pytest.approx([2**-0.5, math.exp(0.2)])
    assert view["previous_effect"].tolist() == pytest.approx([2**-0.3, math.exp(0.1)])
    assert view["effect_low"].tolist() == pytest.approx(
        [2 ** (-0.5 - z * 0.1), math.exp(0.2 - z * 0.05)]
    )
    assert view["effect_high"].tolist() == pytest.approx(
        [2 ** (-0.5 + z * 0.1), math.exp(0.2 + z * 0.05)]
    )
    assert view["step"].tolist() == ["per doubling", "vs. Enterprise"]
    assert "estimate" not in view and "coefficient" not in view
    html = reporting.show(view).to_html()
    assert "Satisfied share" in html and "top2" not in html
    text = reporting.drift_text(drift, "2025-02").data
    assert f"x{2**-0.3:.2f} to x{2**-0.5:.2f} per doubling" in text and "top2" not in text


def test_pooled_and_within_effects_are_shown_as_ratios():
    comparison = pd.DataFrame(
        {
            "model": ["csat"],
            "term": ["error_rate"],
            "driver": ["error rate"],
            "pooled_estimate": [-15.0],
            "pooled_ci_low": [-30.0],
            "pooled_ci_high": [0.0],
            "within_estimate": [-25.0],
            "within_ci_low": [-48.0],
            "within_ci_high": [-2.0],
            "ratio": [25 / 15],
            "reading": ["changes it within a customer"],
        }
    )
    view = reporting.comparison_view(comparison)
    # the error rate is shown per percentage point: exp(b * 0.01)
    assert view.loc[0, "pooled_effect"] == pytest.approx(math.exp(-0.15))
    assert view.loc[0, "within_effect_low"] == pytest.approx(math.exp(-0.48))
    assert view.loc[0, "within_effect_high"] == pytest.approx(math.exp(-0.02))
    assert view.loc[0, "step"] == "per +1 percentage point"
    assert "term" not in view and "ratio" not in view


@pytest.mark.parametrize(
    "name", ["burn", "service_levels", "response_curves", "distributions", "cv"]
)
def test_legends_sit_outside_every_axes(name):
    figure = FIGURES[name]()
    FigureCanvasAgg(figure).draw()
    assert [ax for ax in figure.axes if ax.get_legend() is not None] == []
    assert figure.legends
    renderer = figure.canvas.get_renderer()
    for legend in figure.legends:
        box = legend.get_window_extent(renderer)
        for ax in figure.axes:
            if ax.get_visible():
                assert not box.overlaps(ax.get_window_extent(renderer)), name


def test_quadrant_labels_never_overlap():
    from satmodel.insights.importance import plot_importance_quadrant

    table = importance_result().table_.iloc[:2]
    # two drivers at the same importance and close performance: their labels must not collide
    table = table.assign(
        relative_share=[0.3, 0.3], relative_share_ci_low=0.2, relative_share_ci_high=0.4
    )
    figure = plot_importance_quadrant(
        table.assign(driver=["p95 latency", "downtime minutes"]),
        performance={"p95 latency": 75.0, "downtime minutes": 87.0},
    )
    FigureCanvasAgg(figure).draw()
    renderer = figure.canvas.get_renderer()
    ax = figure.axes[0]
    texts = [t for t in ax.texts if t.get_text()]
    assert len(texts) == 4  # two corner labels, two driver names
    boxes = [t.get_window_extent(renderer) for t in texts]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())


def test_headline_counts_and_their_averages_have_no_decimals():
    kpis = pd.DataFrame(
        {
            "kpi": ["csat_mean", "responses"],
            "label": ["CSAT, mean score", "Survey responses"],
            "unit": ["score 1-5", "responses"],
            "value": [3.7, 99.0],
            "previous": [3.57, 93.0],
            "change": [0.13, 6.0],
            "trailing_mean": [3.63, 92.29],
            "higher_is_better": [True, None],
        }
    )
    html = reporting.show(kpis).to_html()
    assert ">92<" in html and "92.29" not in html
    assert ">3.63<" in html and ">3.70<" in html


def test_availability_never_rounds_to_100_in_a_table():
    frame = pd.DataFrame(
        {
            "segment": ["smb", "enterprise"],
            "availability_target_pct": [99.95, 99.995],
            "availability_met_pct": [87.5, 100.0],
        }
    )
    html = reporting.show(frame, precision=1, key="slo").to_html()
    assert ">99.95<" in html and ">99.995<" in html and ">100.0<" in html  # the share stays 1 dp
    assert [labels.availability_digits(v) for v in (99.5, 99.95, 99.999, 100.0)] == [2, 3, 4, 2]


def test_timestamps_in_a_table_read_as_dates_in_utc():
    frame = pd.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "first_fired": pd.to_datetime(["2026-11-01 00:01", None], utc=True),
        }
    )
    html = reporting.show(frame, key="fired").to_html()
    assert ">1 Nov 2026 00:01 UTC<" in html and "+00:00" not in html


def test_diagnostics_read_each_number_for_its_own_check():
    diagnosed = pd.DataFrame(
        {
            "model": ["csat"] * 3,
            "check": ["n_obs", "collinearity", "brant"],
            "value": [17109.0, 0.0431, np.nan],
            "threshold": [30.0, 10.0, 0.00001],
            "ok": [True, True, False],
            "note": ["", "", "not run"],
        }
    )
    view = reporting.diagnostics_view(diagnosed)
    assert list(view["value"]) == ["17,109", "0.0431", "-"]
    assert list(view["threshold"]) == ["30", "10", "1e-05"]
    assert reporting.diagnostic_warnings(diagnosed) == [
        "csat: brant = - (threshold 1e-05): not run"
    ]
