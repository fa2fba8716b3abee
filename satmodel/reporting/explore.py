"""Exploration (``01_explore.ipynb``) and model evaluation (``02_drivers.ipynb``) helpers."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from satmodel.errors import SatmodelError
from satmodel.reporting.data import ReportData
from satmodel.reporting.diagnostics import model_frame
from satmodel.reporting.drivers import ModelSection
from satmodel.reporting.figures import MAIN_COLOR, figure_style, legend_below, new_figure, palette
from satmodel.reporting.labels import CV_NAMES, plot_label, segment_label
from satmodel.vocabulary import METRICS, OUTCOME_METRICS


def panel_overview(panel: pd.DataFrame) -> pd.DataFrame:
    """One row per service metric and outcome of the panel: coverage and spread.

    Returns
    -------
    DataFrame
        column_name, label, unit, measured_pct (share of customer-months with a value), p05,
        median, p95, mean.
    """
    rows = []
    for column, (label, unit, _) in {**METRICS, **OUTCOME_METRICS}.items():
        if column not in panel:
            continue
        values = pd.to_numeric(panel[column], errors="coerce")
        present = values.dropna()
        rows.append(
            {
                "column_name": column,
                "label": label,
                "unit": unit,
                "measured_pct": 100 * len(present) / len(values) if len(values) else math.nan,
                "p05": float(present.quantile(0.05)) if len(present) else math.nan,
                "median": float(present.median()) if len(present) else math.nan,
                "p95": float(present.quantile(0.95)) if len(present) else math.nan,
                "mean": float(present.mean()) if len(present) else math.nan,
            }
        )
    columns = ["column_name", "label", "unit", "measured_pct", "p05", "median", "p95", "mean"]
    return pd.DataFrame(rows, columns=columns)


def plot_distributions(panel: pd.DataFrame, columns: list[str] | None = None):
    """Histograms of the service metrics and outcomes over customer-months, by segment.

    Heavy-tailed metrics (latency, downtime, resolution time) are drawn on a log scale.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    import seaborn as sns

    specs = {**METRICS, **OUTCOME_METRICS}
    columns = [c for c in (columns or list(specs)) if c in panel]
    if not columns:
        return None
    ncols = 3
    nrows = math.ceil(len(columns) / ncols)
    frame = panel.assign(
        segment=[plot_label(segment_label(s)) for s in panel["segment"].astype(str)]
    )
    with figure_style():
        figure, axes = new_figure(13, 3.2 * nrows, ncols=ncols, nrows=nrows)
        for ax, column in zip(axes, columns, strict=False):
            label, unit, log = specs.get(column, (column, "", False))
            values = pd.to_numeric(frame[column], errors="coerce")
            data = frame.assign(value=values).dropna(subset=["value"])
            if log:
                data = data.loc[data["value"] > 0]
            if data.empty:
                ax.set_visible(False)
                continue
            hue_order = sorted(data["segment"].unique())
            sns.histplot(
                data=data,
                x="value",
                hue="segment",
                hue_order=hue_order,
                palette=palette(hue_order),
                bins=30,
                log_scale=log,
                element="step",
                stat="density",
                common_norm=False,
                ax=ax,
            )
            ax.set_title(label, fontsize=10)
            ax.set_xlabel(f"{unit}{' (log scale)' if log else ''}", fontsize=8)
            ax.set_ylabel("density", fontsize=8)
        for ax in axes[len(columns) :]:
            ax.set_visible(False)
        legend_below(figure, *axes, title="segment")
        figure.suptitle("How service and satisfaction vary over customer-months", fontsize=12)
    return figure


def metric_correlations(panel: pd.DataFrame) -> pd.DataFrame:
    """Rank (Spearman) correlation of each service metric with each outcome.

    Returns
    -------
    DataFrame
        column_name, label, then one column per outcome present (``csat_mean``,
        ``csat_top2_rate``, ``complaint_rate_per_1k``), over customer-months where both are
        measured; sorted by the strength of the link with ``csat_mean``.
    """
    outcomes = [c for c in OUTCOME_METRICS if c in panel]
    rows = []
    for column, (label, _, _) in METRICS.items():
        if column not in panel:
            continue
        row: dict[str, Any] = {"column_name": column, "label": label}
        x = pd.to_numeric(panel[column], errors="coerce")
        for outcome in outcomes:
            y = pd.to_numeric(panel[outcome], errors="coerce")
            ok = x.notna() & y.notna()
            row[outcome] = float(x[ok].rank().corr(y[ok].rank())) if ok.sum() > 2 else math.nan
        rows.append(row)
    out = pd.DataFrame(rows, columns=["column_name", "label", *outcomes])
    if "csat_mean" in out and len(out):
        out = out.reindex(out["csat_mean"].abs().sort_values(ascending=False).index)
    return out.reset_index(drop=True)


def binned_outcome(
    panel: pd.DataFrame, metric: str, outcome: str = "csat_mean", bins: int = 10
) -> pd.DataFrame:
    """Mean outcome by bin of a service metric (equal-count bins), with a 95% interval.

    The outcome is weighted by survey responses (``csat_n``) for CSAT outcomes and by active
    users for the complaint rate.

    Returns
    -------
    DataFrame
        bin, metric_median (the bin's middle), n (customer-months), mean, ci_low, ci_high.
    """
    columns = ["bin", "metric_median", "n", "mean", "ci_low", "ci_high"]
    weight_column = "active_users" if outcome == "complaint_rate_per_1k" else "csat_n"
    x = pd.to_numeric(panel[metric], errors="coerce")
    y = pd.to_numeric(panel[outcome], errors="coerce")
    w = (
        pd.to_numeric(panel[weight_column], errors="coerce")
        if weight_column in panel
        else pd.Series(1.0, index=panel.index)
    )
    ok = x.notna() & y.notna() & (w > 0)
    if ok.sum() < bins * 3:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame({"x": x[ok], "y": y[ok], "w": w[ok]})
    frame["bin"] = pd.qcut(frame["x"].rank(method="first"), bins, labels=False)
    rows = []
    for b, group in frame.groupby("bin", sort=True):
        weights = group["w"] / group["w"].sum()
        mean = float((weights * group["y"]).sum())
        # standard error of a weighted mean of customer-months (Kish effective size)
        n_eff = 1 / float((weights**2).sum())
        spread = float(np.sqrt((weights * (group["y"] - mean) ** 2).sum()))
        half = 1.96 * spread / math.sqrt(max(n_eff - 1, 1))
        rows.append(
            {
                "bin": int(b),
                "metric_median": float(group["x"].median()),
                "n": len(group),
                "mean": mean,
                "ci_low": mean - half,
                "ci_high": mean + half,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def plot_relationships(panel: pd.DataFrame, outcome: str = "csat_mean", bins: int = 10):
    """Mean outcome against each service metric (binned, with 95% intervals).

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    if outcome not in panel:
        return None
    metrics = [c for c in METRICS if c in panel]
    label_y, unit_y, _ = OUTCOME_METRICS.get(outcome, (outcome, "", False))
    ncols = 3
    nrows = math.ceil(len(metrics) / ncols)
    with figure_style():
        figure, axes = new_figure(13, 3.2 * nrows, ncols=ncols, nrows=nrows)
        for ax, metric in zip(axes, metrics, strict=False):
            label, unit, log = METRICS[metric]
            binned = binned_outcome(panel, metric, outcome, bins)
            if binned.empty:
                ax.set_visible(False)
                continue
            ax.fill_between(
                binned["metric_median"],
                binned["ci_low"],
                binned["ci_high"],
                color=MAIN_COLOR,
                alpha=0.2,
            )
            ax.plot(binned["metric_median"], binned["mean"], marker="o", color=MAIN_COLOR)
            if log and (binned["metric_median"] > 0).all():
                ax.set_xscale("log")
            ax.set_title(f"{label_y} by {label.lower()}", fontsize=10)
            ax.set_xlabel(f"{label} ({unit}; median of each tenth)", fontsize=8)
            ax.set_ylabel(unit_y, fontsize=8)
        for ax in axes[len(metrics) :]:
            ax.set_visible(False)
        figure.suptitle(
            f"{label_y} against each service measure (95% intervals; not adjusted for the others)",
            fontsize=12,
        )
    return figure


def cross_validation(
    models: ModelSection,
    data: ReportData,
    n_splits: int = 3,
    include_boosting: bool = True,
) -> pd.DataFrame:
    """Time-based cross-validation of every fitted model against a naive baseline and
    HistGradientBoosting on the same drivers (:func:`satmodel.evaluation.time_cv`).

    Each fold trains on the months before its test months (expanding window).

    Returns
    -------
    DataFrame
        model_name (csat, top2, complaints) and time_cv's columns: fold, model, metric, value,
        n_train, n_test, train_end, test_start, test_end, reliable.
    """
    from satmodel.evaluation import CV_COLUMNS, time_cv

    frames = []
    for name, result in models.results.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cv = time_cv(
                    model_frame(data, name),
                    result.formula,
                    result.family,
                    n_splits=n_splits,
                    exposure=result.exposure,
                    include_boosting=include_boosting,
                )
        except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
            models.notes.append(f"cross-validation of {name}: not possible ({exc})")
            continue
        cv.insert(0, "model_name", name)
        frames.append(cv)
    if not frames:
        return pd.DataFrame(columns=["model_name", *CV_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def cv_summary(cv: pd.DataFrame) -> pd.DataFrame:
    """Mean out-of-sample error per model and metric over the folds (lower is better).

    Returns
    -------
    DataFrame
        model_name, metric, then one column per compared model (``satmodel model``,
        ``naive baseline``, ``gradient boosting``), and ``vs_baseline_pct``: the satmodel
        model's error relative to the baseline's, in % (below 100: better than naive).
    """
    if cv.empty:
        return pd.DataFrame(columns=["model_name", "metric", "vs_baseline_pct"])
    table = cv.pivot_table(
        index=["model_name", "metric"], columns="model", values="value", aggfunc="mean"
    )
    table = table.rename(columns=CV_NAMES)
    table.columns.name = None
    table["vs_baseline_pct"] = 100 * table["satmodel model"] / table["naive baseline"]
    order = {"csat": 0, "top2": 1, "complaints": 2}
    out = table.reset_index()
    out = out.sort_values(["model_name", "metric"], key=lambda s: s.map(order).fillna(s))
    return out.reset_index(drop=True)


def plot_cv(cv: pd.DataFrame):
    """Out-of-sample error per fold: satmodel model, baseline and gradient boosting.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    import seaborn as sns

    if cv.empty:
        return None
    main = cv.loc[cv["metric"].isin(["log_loss", "deviance"])].copy()
    if main.empty:
        return None
    main["model"] = main["model"].map(CV_NAMES).fillna(main["model"])
    main["test months"] = main["test_start"] + " to " + main["test_end"]
    names = list(dict.fromkeys(main["model_name"]))
    colors = palette(list(dict.fromkeys(main["model"])))
    with figure_style():
        figure, axes = new_figure(13, 3.8, ncols=len(names))
        for ax, name in zip(axes, names, strict=True):
            rows = main.loc[main["model_name"] == name]
            sns.barplot(
                data=rows,
                x="test months",
                y="value",
                hue="model",
                palette=colors,
                ax=ax,
                errorbar=None,
            )
            metric = rows["metric"].iloc[0]
            ax.set_title(f"{name}: {metric.replace('_', ' ')} (lower is better)", fontsize=10)
            ax.set_ylabel(metric.replace("_", " "), fontsize=9)
            ax.set_xlabel("test months (trained on all months before)", fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
        legend_below(figure, *axes)
        figure.suptitle("Out-of-sample error, time-based cross-validation", fontsize=12)
    return figure
