"""Case studies on real public data, run through the same workbook as the monthly report.

Two notebooks under ``notebooks/case_studies/`` call these functions; the data reach satmodel
only through a ``satmodel.toml`` (``examples/olist/``, ``examples/dot_baggage/``) that maps the
public files onto the canonical tables, so every number below has passed the same sources ->
validation -> features -> models path as a customer's own data.

- **Olist** (Brazilian e-commerce, one review per order): each order is a customer; its
  delivery is one request whose latency is the time from purchase to delivery and whose
  expectation (``expected_latency_p95_ms``) is the promised delivery time, so
  ``latency - expectation`` is the delivery delay. Review score = CSAT; score <= 2 = complaint.
- **DOT baggage** (three airlines x 84 months): mishandled-baggage reports are complaints,
  passengers enplaned the exposure, cancelled / scheduled flights the request error rate,
  airlines the customers and segments.

:func:`run_case_study` executes a case-study notebook with papermill into
``OUT/<name>/`` (``report.ipynb``, ``report.html``, ``summary.json``, ``manifest.json``) through
:func:`satmodel.report.run_notebook`, with the monthly report's guarantees.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from satmodel.errors import InputError, ModelWarning

MS_PER_DAY = 86_400_000.0
ROOT = Path(__file__).resolve().parents[1]
CASE_STUDIES = {
    "olist_delivery": {
        "notebook": "case_studies/olist_delivery.ipynb",
        "config": ROOT / "examples" / "olist" / "satmodel.toml",
        "title": "Case study: Olist delivery delay and review scores",
    },
    "dot_baggage": {
        "notebook": "case_studies/dot_baggage.ipynb",
        "config": ROOT / "examples" / "dot_baggage" / "satmodel.toml",
        "title": "Case study: DOT mishandled baggage, cancellations and seasonality",
    },
}

# --- Olist ----------------------------------------------------------------------------------

# Published aggregates of the full 98,673-order data set (shared/data/README.md).
OLIST_PUBLISHED = {
    "mean_on_time": 4.28,
    "mean_late": 2.57,
    "late_share": 0.078,
    "late_effect_ordinal_logit": -1.6,
    "buckets": {
        "<= -10": 4.32,
        "(0, 2]": 3.92,
        "(2, 5]": 2.81,
        "(5, 10]": 1.89,
        "> 10": 1.70,
    },
}
# Delay buckets in days (actual - promised delivery): label -> (low exclusive, high inclusive).
OLIST_BUCKETS = {
    "<= -10": (-math.inf, -10.0),
    "(-10, 0]": (-10.0, 0.0),
    "(0, 2]": (0.0, 2.0),
    "(2, 5]": (2.0, 5.0),
    "(5, 10]": (5.0, 10.0),
    "> 10": (10.0, math.inf),
}
# The delay models, written in panel columns so the inverse solver can move the lever
# (latency_p95_ms, purchase to delivery) against the promise (expected_latency_p95_ms) held at
# its current value. DAYS_LATE is max(delivered - promised, 0) in days.
DAYS_LATE = "np.maximum(latency_p95_ms - expected_latency_p95_ms, 0) / 86400000.0"
LATE_TERM = "I(1.0 * (latency_p95_ms > expected_latency_p95_ms))"
DAYS_LATE_TERM = f"I({DAYS_LATE})"
FIRST_DAYS_TERM = f"I(np.minimum({DAYS_LATE}, 2))"
MIDDLE_DAYS_TERM = f"I(np.clip({DAYS_LATE} - 2, 0, 8))"
LAST_DAYS_TERM = f"I(np.maximum({DAYS_LATE} - 10, 0))"
OLIST_TERMS = {
    LATE_TERM: "late (any delay)",
    DAYS_LATE_TERM: "per day late",
    FIRST_DAYS_TERM: "per day late, days 0-2",
    MIDDLE_DAYS_TERM: "per day late, days 2-10",
    LAST_DAYS_TERM: "per day late, beyond 10 days",
}
# ``csat``: the delay shape (piecewise linear in days late, knots at 2 and 10 days; no jump
# at 0: with this shape a separate "late" step is not significant); the solver's model.
OLIST_FORMULA = f"csat ~ {FIRST_DAYS_TERM} + {MIDDLE_DAYS_TERM} + {LAST_DAYS_TERM}"
# ``late_slope``: a step for being late plus a linear slope per day late (the step is the
# "effect of being late" published figures quote); ``late_only``: the step alone.
OLIST_LATE_FORMULA = f"csat ~ {LATE_TERM} + {DAYS_LATE_TERM}"
OLIST_LATE_ONLY = f"csat ~ {LATE_TERM}"
OLIST_COMPLAINT_FORMULA = f"low_score ~ {LATE_TERM} + {DAYS_LATE_TERM}"

# --- DOT baggage ----------------------------------------------------------------------------

DOT_FORMULA = "complaints ~ C(segment) + error_rate + C(month_of_year) + C(year)"
DOT_PUBLISHED = {"poisson_dispersion": 334.0}


@dataclass
class CaseData:
    """A case study's data after validation and feature building.

    Attributes
    ----------
    source : the open :class:`~satmodel.sources.Source` (quarantine applied).
    validation : the :class:`~satmodel.validation.ValidationReport`.
    panel : the service panel.
    responses : survey responses with their panel columns (None without surveys).
    """

    source: Any
    validation: Any
    panel: pd.DataFrame
    responses: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def case_config(name: str) -> Path:
    """The example ``satmodel.toml`` of a case study (``olist_delivery`` or ``dot_baggage``)."""
    if name not in CASE_STUDIES:
        raise InputError(f"case study {name!r}: unknown (known: {', '.join(CASE_STUDIES)})")
    return CASE_STUDIES[name]["config"]


def load_case(data: str | os.PathLike) -> CaseData:
    """Open a source (usually a ``satmodel.toml``), quarantine bad rows, build the panel.

    Parameters
    ----------
    data : a ``satmodel.toml`` or any source :func:`satmodel.sources.open_source` accepts.

    Returns
    -------
    CaseData
    """
    from satmodel.features import build_panel, build_responses
    from satmodel.sources import open_source
    from satmodel.validation import quarantine

    source = open_source(data)
    validation = quarantine(source)
    panel = build_panel(source)
    responses = build_responses(source, panel) if source.has("surveys") else None
    return CaseData(source=source, validation=validation, panel=panel, responses=responses)


def data_quality(case: CaseData) -> pd.DataFrame:
    """Rows read and quarantined per canonical table."""
    rejected = case.validation.rejected.groupby("table_name")["rows"].sum()
    rows = [
        {
            "table_name": table,
            "rows_read": int(count),
            "rows_quarantined": int(rejected.get(table, 0)),
        }
        for table, count in case.validation.rows.items()
    ]
    return pd.DataFrame(rows, columns=["table_name", "rows_read", "rows_quarantined"])


# --------------------------------------------------------------------------------------------
# Olist


def delivery_frame(case: CaseData) -> pd.DataFrame:
    """Reviews of delivered orders with their delay.

    Returns
    -------
    DataFrame
        The survey responses whose order has a delivery (``requests`` > 0), plus
        ``promised_days``, ``delivery_days``, ``delay_days`` (delivered - promised; > 0 late),
        ``late`` (0/1), ``days_late`` (max(delay, 0)), ``low_score`` (csat <= 2, 0/1) and
        ``delay_bucket``.
    """
    if case.responses is None:
        raise InputError("surveys: table not found (the Olist mapping needs [tables.surveys])")
    needed = ["latency_p95_ms", "expected_latency_p95_ms", "requests"]
    missing = [c for c in needed if c not in case.responses.columns]
    if missing:
        raise InputError(
            f"panel: column {missing[0]} missing (map [tables.requests] and "
            "customers.expected_latency_p95_ms, as in examples/olist/satmodel.toml)"
        )
    frame = case.responses.loc[
        (case.responses["requests"] > 0)
        & case.responses["latency_p95_ms"].notna()
        & case.responses["expected_latency_p95_ms"].notna()
    ].copy()
    frame["promised_days"] = frame["expected_latency_p95_ms"] / MS_PER_DAY
    frame["delivery_days"] = frame["latency_p95_ms"] / MS_PER_DAY
    frame["delay_days"] = frame["delivery_days"] - frame["promised_days"]
    frame["late"] = (frame["delay_days"] > 0).astype("int64")
    frame["days_late"] = frame["delay_days"].clip(lower=0.0)
    frame["low_score"] = (frame["csat"] <= 2).astype("int64")
    frame["delay_bucket"] = delay_bucket(frame["delay_days"])
    return frame.reset_index(drop=True)


def delay_bucket(delay_days: pd.Series) -> pd.Series:
    """The :data:`OLIST_BUCKETS` label of each delay (days)."""
    labels = pd.Series(pd.NA, index=delay_days.index, dtype="string")
    for label, (low, high) in OLIST_BUCKETS.items():
        labels[(delay_days > low) & (delay_days <= high)] = label
    return labels


def _mean_row(label: str, scores: pd.Series, published: float | None) -> dict[str, Any]:
    n = int(scores.notna().sum())
    mean = float(scores.mean()) if n else math.nan
    se = float(scores.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return {
        "group": label,
        "responses": n,
        "mean_score": mean,
        "std_error": se,
        "published": math.nan if published is None else published,
        "difference": mean - published if published is not None else math.nan,
        "z": (mean - published) / se if published is not None and se > 0 else math.nan,
    }


def score_by_delay(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean review score on time / late and by delay bucket, against the published figures.

    Returns
    -------
    DataFrame
        group, responses, mean_score, std_error (of the sample mean), published (full data
        set), difference, z (difference / std_error).
    """
    rows = [
        _mean_row(
            "on time", frame.loc[frame["late"] == 0, "csat"], OLIST_PUBLISHED["mean_on_time"]
        ),
        _mean_row("late", frame.loc[frame["late"] == 1, "csat"], OLIST_PUBLISHED["mean_late"]),
    ]
    for label in OLIST_BUCKETS:
        rows.append(
            _mean_row(
                f"delay {label} days",
                frame.loc[frame["delay_bucket"] == label, "csat"],
                OLIST_PUBLISHED["buckets"].get(label),
            )
        )
    return pd.DataFrame(rows)


def _quiet_fit(*args, **kwargs):
    from satmodel.models import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        return fit(*args, **kwargs)


def olist_models(frame: pd.DataFrame) -> dict[str, Any]:
    """Fit the Olist models on the delivered orders' reviews.

    Returns
    -------
    dict of FitResult
        ``csat``: ordinal logit of the score on the delay shape (the model the inverse
        solver uses); ``late_slope``: ordinal logit on a step for being late plus a slope
        per day late; ``late_only``: the step alone; ``complaints_logit``: logit of a low
        score (<= 2) on the step and the slope.
    """
    return {
        "csat": _quiet_fit(frame, OLIST_FORMULA, "ordinal"),
        "late_slope": _quiet_fit(frame, OLIST_LATE_FORMULA, "ordinal"),
        "late_only": _quiet_fit(frame, OLIST_LATE_ONLY, "ordinal"),
        "complaints_logit": _quiet_fit(frame, OLIST_COMPLAINT_FORMULA, "logit"),
    }


def effects_table(models: dict[str, Any], names: dict[str, str] | None = None) -> pd.DataFrame:
    """Coefficients of several models in one tidy table with readable driver names.

    Returns
    -------
    DataFrame
        model, family, term, driver, estimate, std_error, ci_low, ci_high, p_value, ratio
        (exp(estimate): odds ratio for ordinal/logit, rate ratio for counts).
    """
    names = names or {}
    rows = []
    for key, result in models.items():
        for row in result.coefficients_.itertuples():
            if row.term == "Intercept":
                continue
            rows.append(
                {
                    "model": key,
                    "family": result.family,
                    "term": row.term,
                    "driver": names.get(row.term, row.term),
                    "estimate": row.estimate,
                    "std_error": row.std_error,
                    "ci_low": row.ci_low,
                    "ci_high": row.ci_high,
                    "p_value": row.p_value,
                    "ratio": math.exp(row.estimate) if np.isfinite(row.estimate) else math.nan,
                }
            )
    return pd.DataFrame(rows)


def delay_curve(
    model, frame: pd.DataFrame, days: np.ndarray | None = None, promised_days: float | None = None
) -> pd.DataFrame:
    """Expected review score by days of delay, from the ordinal model, with a 95 % interval.

    Parameters
    ----------
    model : the ``csat`` FitResult of :func:`olist_models`.
    frame : the delivery frame (for the typical promised delivery time).
    days : delays to evaluate (default -20 to 30 days in steps of 0.05).
    promised_days : promise held fixed (default: the median over the orders).

    Returns
    -------
    DataFrame
        delay_days, expected, ci_low, ci_high.
    """
    days = np.round(np.arange(-400, 601) * 0.05, 6) if days is None else np.asarray(days, float)
    promised = float(frame["promised_days"].median()) if promised_days is None else promised_days
    grid = pd.DataFrame(
        {
            "expected_latency_p95_ms": promised * MS_PER_DAY,
            "latency_p95_ms": (promised + days) * MS_PER_DAY,
        }
    )
    predicted = model.predict(grid)
    return pd.DataFrame(
        {
            "delay_days": days,
            "expected": predicted["expected"].to_numpy(),
            "ci_low": predicted["ci_low"].to_numpy(),
            "ci_high": predicted["ci_high"].to_numpy(),
        }
    )


def max_delay_for(curve: pd.DataFrame, target: float = 4.0) -> float:
    """The largest delay (days) of the curve whose expected score is still >= target.

    Returns NaN when no delay on the curve reaches the target.
    """
    ok = curve.loc[curve["expected"] >= target, "delay_days"]
    return float(ok.max()) if len(ok) else math.nan


def solver_available() -> bool:
    """Whether :func:`satmodel.insights.solve_target` is installed."""
    try:
        from satmodel.insights import solve_target  # noqa: F401
    except ImportError:
        return False
    return True


def delivery_target(
    models: dict[str, Any], case: CaseData, target: float = 4.0, n_sim: int = 500
) -> dict[str, Any] | None:
    """Inverse solver: how late may a delivery be for a mean score of at least ``target``?

    Runs :func:`satmodel.insights.solve_target` with ``latency_p95_ms`` (purchase to
    delivery) as the lever, the promise (``expected_latency_p95_ms``) held at the segment's
    median, over the delivered orders' panel rows.

    Returns
    -------
    dict or None
        required_delivery_days, promised_days, max_days_late (= required - promised) with
        its interval, feasible, extrapolated; None when satmodel.insights is not installed.
    """
    if not solver_available():
        return None
    from satmodel.insights import solve_target

    panel = case.panel.loc[case.panel["requests"] > 0]
    segment = str(panel["segment"].iloc[0])
    months = panel["month"].nunique()
    result = solve_target(
        {"csat": models["csat"]},
        panel,
        outcome="csat_mean",
        target=target,
        lever="latency_p95_ms",
        segment=segment,
        window=int(months),
        n_sim=n_sim,
    )
    promised = float(result.held_["expected_latency_p95_ms"].iloc[0]) / MS_PER_DAY

    def days(value):
        return None if value is None else float(value) / MS_PER_DAY

    required = days(result.required)
    return {
        "target": target,
        "segment": segment,
        "feasible": result.feasible,
        "extrapolated": result.extrapolated,
        "promised_days": promised,
        "required_delivery_days": required,
        "max_days_late": None if required is None else required - promised,
        "max_days_late_ci_low": None if result.ci_low is None else days(result.ci_low) - promised,
        "max_days_late_ci_high": None
        if result.ci_high is None
        else days(result.ci_high) - promised,
        "current_outcome": result.current_outcome,
    }


def olist_summary(
    case: CaseData,
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    models: dict[str, Any],
    curve: pd.DataFrame,
    target: dict[str, Any] | None,
    score_target: float = 4.0,
) -> dict[str, Any]:
    """The machine-readable summary of the Olist case study (``summary.json``)."""

    def coefficient(key: str, term: str) -> dict[str, float]:
        row = models[key].coefficients_.set_index("term").loc[term]
        return {
            "estimate": float(row["estimate"]),
            "std_error": float(row["std_error"]),
            "ci_low": float(row["ci_low"]),
            "ci_high": float(row["ci_high"]),
        }

    by_group = scores.set_index("group")
    return {
        "schema_version": 1,
        "case_study": "olist_delivery",
        "data_window": [str(case.panel["month"].min()), str(case.panel["month"].max())],
        "rows": {
            "reviews": int(len(case.responses)) if case.responses is not None else 0,
            "delivered_reviews": int(len(frame)),
            "orders": int(frame["customer_id"].nunique()),
            "quarantined": int(case.validation.n_rejected),
        },
        "late_share": float(frame["late"].mean()),
        "mean_score": {
            key: {
                "mean": float(by_group.loc[group, "mean_score"]),
                "std_error": float(by_group.loc[group, "std_error"]),
                "responses": int(by_group.loc[group, "responses"]),
            }
            for key, group in (("on_time", "on time"), ("late", "late"))
        },
        "buckets": [
            {
                "bucket": label,
                "responses": int(by_group.loc[f"delay {label} days", "responses"]),
                "mean_score": float(by_group.loc[f"delay {label} days", "mean_score"]),
                "std_error": float(by_group.loc[f"delay {label} days", "std_error"]),
                "published": OLIST_PUBLISHED["buckets"].get(label),
            }
            for label in OLIST_BUCKETS
        ],
        "ordinal_logit": {
            "late_only": coefficient("late_only", LATE_TERM),
            "late": coefficient("late_slope", LATE_TERM),
            "per_day_late": coefficient("late_slope", DAYS_LATE_TERM),
            "delay_shape": {
                "days_0_2": coefficient("csat", FIRST_DAYS_TERM),
                "days_2_10": coefficient("csat", MIDDLE_DAYS_TERM),
                "beyond_10": coefficient("csat", LAST_DAYS_TERM),
                "log_likelihood": float(models["csat"].log_likelihood_),
                "log_likelihood_late_slope": float(models["late_slope"].log_likelihood_),
            },
        },
        "low_score_logit": {
            "late": coefficient("complaints_logit", LATE_TERM),
            "per_day_late": coefficient("complaints_logit", DAYS_LATE_TERM),
        },
        "curve_max_days_late": {
            "target": score_target,
            "max_days_late": max_delay_for(curve, score_target),
            "expected_on_time": float(curve.loc[curve["delay_days"] == 0, "expected"].iloc[0])
            if (curve["delay_days"] == 0).any()
            else None,
        },
        "solver": target,
        "published": OLIST_PUBLISHED,
    }


def olist_findings(summary: dict[str, Any]):
    """The Olist findings in a few sentences (IPython Markdown) from :func:`olist_summary`."""
    from IPython.display import Markdown

    means = summary["mean_score"]
    ordinal = summary["ordinal_logit"]
    shape = ordinal["delay_shape"]
    published = summary["published"]
    lines = [
        f"- **{100 * summary['late_share']:.1f} %** of the {summary['rows']['orders']:,} "
        f"delivered orders arrived after the promised date (full data set: "
        f"{100 * published['late_share']:.1f} %).",
        f"- Mean review score **{means['on_time']['mean']:.2f}** on time vs "
        f"**{means['late']['mean']:.2f}** late "
        f"(full data set: {published['mean_on_time']:.2f} vs {published['mean_late']:.2f}).",
        f"- Ordinal logit: being late lowers the log-odds of a higher score by "
        f"**{-ordinal['late']['estimate']:.2f}** (95 % CI {-ordinal['late']['ci_high']:.2f} to "
        f"{-ordinal['late']['ci_low']:.2f}) plus {-ordinal['per_day_late']['estimate']:.3f} per "
        f"day late (published: about {-published['late_effect_ordinal_logit']:.1f}); on its own, "
        f"the step is {-ordinal['late_only']['estimate']:.2f}.",
        f"- The penalty is graded rather than a step: {-shape['days_0_2']['estimate']:.2f} per "
        f"day over the first two days late, {-shape['days_2_10']['estimate']:.2f} per day up to "
        f"ten days, then flat ({shape['beyond_10']['estimate']:+.3f} per day).",
    ]
    curve = summary["curve_max_days_late"]
    target = curve["target"]
    solver = summary.get("solver")
    if solver is not None and solver["feasible"]:
        lines.append(
            f"- **For a mean score of at least {target:g}, a delivery may be at most "
            f"{solver['max_days_late']:.2f} days late** (95 % CI "
            f"{solver['max_days_late_ci_low']:.2f} to {solver['max_days_late_ci_high']:.2f}; "
            f"inverse solver, promise held at {solver['promised_days']:.1f} days)."
        )
    elif solver is not None:
        lines.append(f"- No delivery time reaches a mean score of {target:g} (inverse solver).")
    else:
        lines.append(
            "- The inverse solver (satmodel.insights) is not installed; from the response "
            f"curve, a mean score of at least {target:g} allows at most "
            f"{curve['max_days_late']:.2f} days of delay."
        )
    return Markdown("\n".join(lines))


def plot_score_by_delay(scores: pd.DataFrame):
    """Bar chart of the mean score by delay bucket (sample, 95 % CI) with published means."""
    from matplotlib.figure import Figure

    rows = scores.loc[scores["group"].str.startswith("delay ")].reset_index(drop=True)
    labels = [g.removeprefix("delay ").removesuffix(" days") for g in rows["group"]]
    figure = Figure(figsize=(8, 3.6), dpi=100, layout="constrained")
    ax = figure.subplots()
    x = np.arange(len(rows))
    ax.bar(
        x,
        rows["mean_score"],
        yerr=1.96 * rows["std_error"],
        color="#4c72b0",
        alpha=0.85,
        capsize=3,
        label="this sample (95% CI)",
    )
    published = rows["published"].to_numpy(dtype=float)
    shown = np.isfinite(published)
    ax.scatter(
        x[shown],
        published[shown],
        color="#dd8452",
        zorder=3,
        marker="D",
        label="full data set (published)",
    )
    ax.set_xticks(x, labels)
    ax.set_xlabel("delivery delay, days (actual - promised)")
    ax.set_ylabel("mean review score")
    ax.set_ylim(1, 5)
    ax.axhline(4.0, color="grey", linewidth=0.8, linestyle=":")
    ax.legend(loc="upper right", frameon=False)
    return figure


def plot_delay_curve(curve: pd.DataFrame, frame: pd.DataFrame, target: float = 4.0):
    """Model-expected score by days of delay with the observed means by whole day."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.6), dpi=100, layout="constrained")
    ax = figure.subplots()
    ax.fill_between(
        curve["delay_days"],
        curve["ci_low"],
        curve["ci_high"],
        color="#4c72b0",
        alpha=0.2,
        linewidth=0,
    )
    ax.plot(curve["delay_days"], curve["expected"], color="#4c72b0", label="ordinal model")
    window = frame.loc[
        frame["delay_days"].between(curve["delay_days"].min(), curve["delay_days"].max())
    ]
    observed = window.groupby(np.ceil(window["delay_days"]))["csat"].agg(["mean", "size"])
    observed = observed.loc[observed["size"] >= 20]
    ax.scatter(
        observed.index,
        observed["mean"],
        s=12,
        color="#55a868",
        label="observed mean (days rounded up, n >= 20)",
    )
    ax.axhline(target, color="grey", linewidth=0.8, linestyle=":")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("delivery delay, days (actual - promised)")
    ax.set_ylabel("expected review score")
    ax.set_ylim(1, 5)
    ax.legend(loc="lower left", frameon=False)
    return figure


# --------------------------------------------------------------------------------------------
# DOT baggage


def airline_panel(case: CaseData) -> pd.DataFrame:
    """The airline-month panel with ``year``, ``month_of_year`` and ``cancelled_pct``.

    Raises
    ------
    InputError
        When the panel lacks complaints, active_users or error_rate.
    """
    needed = ["complaints", "active_users", "error_rate"]
    missing = [c for c in needed if c not in case.panel.columns]
    if missing:
        raise InputError(
            f"panel: column {missing[0]} missing (map complaints, usage and requests as in "
            "examples/dot_baggage/satmodel.toml)"
        )
    panel = case.panel.loc[case.panel["active_users"] > 0].copy()
    panel["year"] = panel["month"].str[:4]
    panel["month_of_year"] = panel["month"].str[5:7]
    panel["cancelled_pct"] = 100.0 * panel["error_rate"]
    return panel.reset_index(drop=True)


def dot_models(panel: pd.DataFrame, formula: str = DOT_FORMULA) -> dict[str, Any]:
    """Poisson and NB2 complaint models with exposure ``active_users`` (passengers).

    Returns
    -------
    dict of FitResult
        ``poisson``, ``negbin`` (the same formula) and ``complaints`` (= ``negbin``, the key
        :mod:`satmodel.insights` reads).
    """
    poisson = _quiet_fit(panel, formula, "poisson", exposure="active_users")
    negbin = _quiet_fit(panel, formula, "negbin", exposure="active_users")
    return {"poisson": poisson, "negbin": negbin, "complaints": negbin}


def overdispersion(models: dict[str, Any], panel: pd.DataFrame) -> dict[str, float]:
    """Poisson vs NB2: Pearson dispersion of each fit and the likelihood-ratio test.

    Uses :func:`satmodel.evaluation.diagnostics`; the LR p-value is the boundary-corrected
    one (half a chi-square(1) tail, alpha = 0 under the null).
    """
    from satmodel.evaluation import diagnostics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        poisson = diagnostics(models["poisson"], panel).set_index("check")
        negbin = diagnostics(models["negbin"], panel).set_index("check")
    lr = float(2 * (models["negbin"].log_likelihood_ - models["poisson"].log_likelihood_))
    from scipy import stats

    return {
        "poisson_dispersion": float(poisson.loc["dispersion", "value"]),
        "negbin_dispersion": float(negbin.loc["dispersion", "value"]),
        "lr_statistic": lr,
        "lr_p_value": float(0.5 * stats.chi2.sf(max(lr, 0.0), 1)),
        "diagnostics_lr": float(poisson.loc["overdispersion_lr", "value"]),
        "alpha": float(models["negbin"].alpha_),
        "poisson_log_likelihood": float(models["poisson"].log_likelihood_),
        "negbin_log_likelihood": float(models["negbin"].log_likelihood_),
    }


def seasonality(model) -> pd.DataFrame:
    """Month-of-year rate ratios (January = 1) with 95 % intervals."""
    rows = [{"month_of_year": "01", "rate_ratio": 1.0, "ci_low": 1.0, "ci_high": 1.0}]
    for row in model.coefficients_.itertuples():
        if row.term.startswith("C(month_of_year)[T."):
            rows.append(
                {
                    "month_of_year": row.term.split("[T.")[1].rstrip("]"),
                    "rate_ratio": math.exp(row.estimate),
                    "ci_low": math.exp(row.ci_low),
                    "ci_high": math.exp(row.ci_high),
                }
            )
    return pd.DataFrame(rows)


def cancellation_effect(model, step_pct: float = 1.0) -> dict[str, float]:
    """Complaint rate ratio for ``step_pct`` more percentage points of cancelled flights."""
    row = model.coefficients_.set_index("term").loc["error_rate"]
    scale = step_pct / 100.0
    return {
        "coefficient": float(row["estimate"]),
        "std_error": float(row["std_error"]),
        "step_pct": step_pct,
        "rate_ratio": math.exp(scale * row["estimate"]),
        "ci_low": math.exp(scale * row["ci_low"]),
        "ci_high": math.exp(scale * row["ci_high"]),
        "p_value": float(row["p_value"]),
    }


def airline_rates(panel: pd.DataFrame) -> pd.DataFrame:
    """Per airline: months, passengers, reports, reports per 1,000 passengers, cancelled %."""
    grouped = panel.groupby("segment")
    table = pd.DataFrame(
        {
            "months": grouped.size(),
            "passengers": grouped["active_users"].sum(),
            "complaints": grouped["complaints"].sum(),
            "scheduled": grouped["requests"].sum(),
            "cancelled": (panel["error_rate"] * panel["requests"]).groupby(panel["segment"]).sum(),
        }
    )
    table["complaint_rate_per_1k"] = 1000.0 * table["complaints"] / table["passengers"]
    table["cancelled_pct"] = 100.0 * table["cancelled"] / table["scheduled"]
    return table.reset_index().drop(columns=["scheduled", "cancelled"])


def dot_summary(
    case: CaseData, panel: pd.DataFrame, models: dict[str, Any], dispersion: dict[str, float]
) -> dict[str, Any]:
    """The machine-readable summary of the DOT baggage case study (``summary.json``)."""
    season = seasonality(models["negbin"])
    return {
        "schema_version": 1,
        "case_study": "dot_baggage",
        "data_window": [str(panel["month"].min()), str(panel["month"].max())],
        "rows": {
            "airline_months": int(len(panel)),
            "airlines": int(panel["customer_id"].nunique()),
            "complaints": int(panel["complaints"].sum()),
            "quarantined": int(case.validation.n_rejected),
        },
        "formula": models["negbin"].formula,
        "overdispersion": dispersion,
        "cancellations": cancellation_effect(models["negbin"]),
        "cancellations_poisson": cancellation_effect(models["poisson"]),
        "seasonality": season.to_dict(orient="records"),
        "peak_month": str(season.loc[season["rate_ratio"].idxmax(), "month_of_year"]),
        "trough_month": str(season.loc[season["rate_ratio"].idxmin(), "month_of_year"]),
        "airlines": airline_rates(panel).to_dict(orient="records"),
        "published": DOT_PUBLISHED,
    }


def dot_findings(summary: dict[str, Any]):
    """The DOT baggage findings in a few sentences (IPython Markdown) from :func:`dot_summary`."""
    from IPython.display import Markdown

    over = summary["overdispersion"]
    cancel = summary["cancellations"]
    p_value = over["lr_p_value"]
    p_text = "< 1e-300" if p_value == 0 else f"= {p_value:.2g}"
    lines = [
        f"- {summary['rows']['complaints']:,} mishandled-baggage reports over "
        f"{summary['rows']['airline_months']} airline-months "
        f"({summary['data_window'][0]} to {summary['data_window'][1]}).",
        f"- **Overdispersed**: the Poisson model's Pearson dispersion is "
        f"**{over['poisson_dispersion']:.0f}** (published: about "
        f"{summary['published']['poisson_dispersion']:.0f}; 1 for a Poisson process); NB2 "
        f"brings it to {over['negbin_dispersion']:.2f} with alpha = {over['alpha']:.4f}; "
        f"likelihood ratio {over['lr_statistic']:,.0f} (p {p_text}).",
        f"- **Cancellations drive complaints**: one percentage point more flights cancelled "
        f"goes with **{100 * (cancel['rate_ratio'] - 1):.1f} %** more reports per passenger "
        f"(95 % CI {100 * (cancel['ci_low'] - 1):.1f} to {100 * (cancel['ci_high'] - 1):.1f} %), "
        f"airline, month of year and year held fixed.",
        f"- **Seasonality**: the complaint rate peaks in month {summary['peak_month']} and is "
        f"lowest in month {summary['trough_month']} (rate ratios against January below).",
    ]
    return Markdown("\n".join(lines))


def plot_airline_rates(panel: pd.DataFrame):
    """Monthly complaint rate per 1,000 passengers and cancelled share, per airline."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5), dpi=100, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    for segment, group in panel.groupby("segment"):
        when = pd.to_datetime(group["month"] + "-01")
        top.plot(when, group["complaint_rate_per_1k"], label=segment, linewidth=1.2)
        bottom.plot(when, group["cancelled_pct"], label=segment, linewidth=1.2)
    top.set_ylabel("reports per 1,000 passengers")
    bottom.set_ylabel("flights cancelled (%)")
    top.legend(loc="upper right", frameon=False)
    return figure


def plot_seasonality(season: pd.DataFrame):
    """Month-of-year rate ratios of the NB2 model with 95 % intervals."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.2), dpi=100, layout="constrained")
    ax = figure.subplots()
    x = np.arange(len(season))
    ax.errorbar(
        x,
        season["rate_ratio"],
        yerr=[season["rate_ratio"] - season["ci_low"], season["ci_high"] - season["rate_ratio"]],
        fmt="o",
        color="#4c72b0",
        capsize=3,
    )
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(x, season["month_of_year"])
    ax.set_xlabel("month of year")
    ax.set_ylabel("complaint rate vs January")
    return figure


# --------------------------------------------------------------------------------------------
# running


def run_case_study(
    name: str,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike = "reports/case_studies",
    parameters: dict[str, Any] | None = None,
    progress: bool = False,
    timeout: float | None = 1800,
) -> Path:
    """Execute a case-study notebook into ``out/<name>/`` with papermill, as the report does.

    Parameters
    ----------
    name : ``olist_delivery`` or ``dot_baggage``.
    data : the ``satmodel.toml`` (default: the example config of the case study).
    out : the parent folder of the output.
    parameters : other notebook parameters.
    progress : show papermill's progress bar.
    timeout : seconds one cell may run.

    Returns
    -------
    Path
        ``out/<name>/`` holding report.ipynb, report.html, summary.json, manifest.json.
    """
    from satmodel.report import default_notebook, run_notebook

    config = case_config(name)
    data = Path(data) if data is not None else config
    if not Path(data).exists():
        raise InputError(f"case study {name}: data {data} not found")
    spec = CASE_STUDIES[name]
    return run_notebook(
        default_notebook(spec["notebook"]),
        out,
        key=name,
        parameters=dict(parameters or {}),
        data=data,
        kind="report",
        title=spec["title"],
        manifest={"case_study": name},
        progress=progress,
        timeout=timeout,
    )
