"""The Olist case study: delivery delay against review scores."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from satmodel.casestudies.common import MS_PER_DAY, CaseData, quiet_fit
from satmodel.errors import InputError

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
        "csat": quiet_fit(frame, OLIST_FORMULA, "ordinal"),
        "late_slope": quiet_fit(frame, OLIST_LATE_FORMULA, "ordinal"),
        "late_only": quiet_fit(frame, OLIST_LATE_ONLY, "ordinal"),
        "complaints_logit": quiet_fit(frame, OLIST_COMPLAINT_FORMULA, "logit"),
    }


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


def delivery_target(
    models: dict[str, Any], case: CaseData, target: float = 4.0, n_sim: int = 500
) -> dict[str, Any]:
    """Inverse solver: how late may a delivery be for a mean score of at least ``target``?

    Runs :func:`satmodel.insights.solve_target` with ``latency_p95_ms`` (purchase to
    delivery) as the lever, the promise (``expected_latency_p95_ms``) held at the segment's
    median, over the delivered orders' panel rows.

    Returns
    -------
    dict
        required_delivery_days, promised_days, max_days_late (= required - promised) with
        its interval, feasible, extrapolated.
    """
    from satmodel.insights import solve_target

    panel = case.panel.loc[case.panel["requests"] > 0].copy()
    # The solver averages over real orders; with each order's own promise a common delivery
    # time would be early for some and late for others. The question is about the median promise.
    panel["expected_latency_p95_ms"] = panel["expected_latency_p95_ms"].median()
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
    promised = float(result.held_["expected_latency_p95_ms"].median()) / MS_PER_DAY

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
    target: dict[str, Any],
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
    target = summary["curve_max_days_late"]["target"]
    solver = summary["solver"]
    if solver["feasible"]:
        lines.append(
            f"- **For a mean score of at least {target:g}, a delivery may be at most "
            f"{solver['max_days_late']:.2f} days late** (95 % CI "
            f"{solver['max_days_late_ci_low']:.2f} to {solver['max_days_late_ci_high']:.2f}; "
            f"inverse solver, promise held at {solver['promised_days']:.1f} days)."
        )
    else:
        lines.append(f"- No delivery time reaches a mean score of {target:g} (inverse solver).")
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
