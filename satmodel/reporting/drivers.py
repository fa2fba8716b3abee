"""Models section: the fitted default models and their drivers."""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from satmodel.errors import SatmodelError
from satmodel.reporting.data import ReportData
from satmodel.reporting.figures import (
    GUIDE_COLOR,
    MAIN_COLOR,
    MUTED_COLOR,
    figure_style,
    label_positions,
    new_figure,
)
from satmodel.reporting.labels import model_label, plot_label, segment_label, term_label


@dataclass
class ModelSection:
    """The fitted default models of a report.

    Attributes
    ----------
    results : model name (``csat``, ``top2``, ``complaints``) -> FitResult.
    warnings : one line per flagged problem (``model: message``).
    notes : why a model is absent.
    references : categorical variable -> its reference level (the first level, as the
        formulas' ``C(...)`` treatment coding takes it), e.g. ``{"segment": "enterprise"}``.
    """

    results: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    references: dict[str, str] = field(default_factory=dict)


def fit_models(data: ReportData, enabled: bool = True) -> ModelSection:
    """Fit the default CSAT, top-2 and complaint models on the data up to the report month.

    Never raises for a model that cannot be fitted: the reason is kept in ``warnings``, so the
    rest of the report is still produced.

    Parameters
    ----------
    data : the report's data.
    enabled : False skips the models (the section then says so).

    Returns
    -------
    ModelSection
    """
    section = ModelSection()
    if not enabled:
        section.notes.append("models were not fitted (fit_models = False)")
        return section
    from satmodel.models import fit_default_models

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            section.results = fit_default_models(
                data.responses,
                data.panel,
                identification=data.config.models.identification,
                satisfied_cutoff=data.config.thresholds.satisfied_cutoff,
            )
        except SatmodelError as exc:
            section.warnings.append(f"models: could not be fitted ({exc})")
    seen = set()
    for warning in caught:
        line = f"fit: {warning.message}"
        if line not in seen:
            seen.add(line)
            section.warnings.append(line)
    for name, result in section.results.items():
        if not result.converged_:
            section.warnings.append(f"{name}: did not converge")
        section.warnings.extend(f"{name}: {w}" for w in result.warnings_)
    if not section.results and not section.warnings:
        section.notes.append("no survey or complaint data to fit the models on")
    if "segment" in data.panel and data.panel["segment"].notna().any():
        section.references["segment"] = str(sorted(data.panel["segment"].dropna().astype(str))[0])
    return section


_LN2 = math.log(2)
# Ticks of a ratio axis (log scale): readable factors on both sides of 1.
RATIO_TICKS = (0.1, 0.2, 0.3, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 3, 5, 10)


def describe_driver(term: str, references: dict[str, str] | None = None) -> tuple[str, float, str]:
    """A driver's plain name, the step its effect is shown for, and that step in words.

    Log terms are shown per doubling, the error rate per percentage point, availability shortfall
    per 0.1 point, segments against the base segment, a yes/no indicator against the other
    months, anything else per unit.

    Returns
    -------
    tuple
        (name, step, step_text): the effect shown is ``exp(estimate * step)``.
    """
    match = re.fullmatch(r"C\((\w+)\)\[T\.(.+)\]", term)
    if match:
        reference = (references or {}).get(match.group(1))
        step = f"vs. {segment_label(reference)}" if reference else "vs. the base level"
        return term_label(term), 1.0, step
    name = term_label(term)
    if term.startswith("np.maximum(0, np.log("):
        return name, _LN2, "per doubling above expectation"
    if term.startswith(("np.log(", "np.log1p(")):
        return name, _LN2, "per doubling"
    if term == "error_rate":
        return name, 0.01, "per +1 percentage point"
    if term.startswith("np.maximum(0, expected_availability_pct"):
        return name, 0.1, "per 0.1 point below expectation"
    if re.fullmatch(r"np\.where\(.+, 1\.0, 0\.0\)", term):  # a yes/no indicator
        return name, 1.0, "vs. the other months"
    return name, 1.0, "per unit"


def driver_table(models: ModelSection) -> pd.DataFrame:
    """The drivers (coefficients) of every fitted model, intercept left out.

    ``ratio`` is exp(estimate): the odds ratio of the CSAT (ordinal) and top-2 (logit) models,
    the rate ratio of the complaint model (negbin) — the factor by which odds or rate change
    for one unit more of the driver.

    ``effect`` (with ``effect_low``, ``effect_high``) is the same factor for a step a manager can
    picture (``step``, e.g. a doubling of latency; see :func:`describe_driver`).

    Returns
    -------
    DataFrame
        model, family, term, estimate, std_error, ci_low, ci_high, p_value, ratio, driver,
        step, effect, effect_low, effect_high.
    """
    columns = ["model", "family", "term", "estimate", "std_error", "ci_low", "ci_high"]
    columns += ["p_value", "ratio", "driver", "step", "effect", "effect_low", "effect_high"]
    frames = []
    for name, result in models.results.items():
        coefficients = result.coefficients_.copy()
        coefficients = coefficients.loc[coefficients["term"] != "Intercept"]
        coefficients.insert(0, "family", result.family)
        coefficients.insert(0, "model", name)
        frames.append(coefficients)
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    out["ratio"] = np.exp(out["estimate"].astype(float))
    described = [describe_driver(str(term), models.references) for term in out["term"]]
    out["driver"] = [d[0] for d in described]
    steps = np.array([d[1] for d in described])
    out["step"] = [d[2] for d in described]
    for target, source in (
        ("effect", "estimate"),
        ("effect_low", "ci_low"),
        ("effect_high", "ci_high"),
    ):
        out[target] = np.exp(out[source].astype(float).to_numpy() * steps)
    return out[columns]


def driver_view(drivers: pd.DataFrame) -> pd.DataFrame:
    """The drivers table as a manager reads it: model, driver, step, effect and its interval."""
    columns = ["model", "driver", "step", "effect", "effect_low", "effect_high", "p_value"]
    out = drivers[columns].reset_index(drop=True)
    out["model"] = [model_label(m) for m in out["model"]]
    return out


def model_checks(models: ModelSection) -> pd.DataFrame:
    """One row per model: model, family, n_obs, converged, warnings (formulas: summary.json)."""
    rows = [
        {
            "model": model_label(name),
            "family": result.family,
            "n_obs": int(round(float(result.n_obs_))),
            "converged": bool(result.converged_),
            "warnings": "; ".join(result.warnings_) or "none",
        }
        for name, result in models.results.items()
    ]
    return pd.DataFrame(rows, columns=["model", "family", "n_obs", "converged", "warnings"])


def plot_drivers(drivers: pd.DataFrame, model: str = "top2"):
    """Forest plot of one model's drivers: odds or rate ratio with its 95% interval.

    Parameters
    ----------
    drivers : the output of :func:`driver_table`.
    model : which model to draw (``top2`` by default: the easiest to read).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when that model was not fitted.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    rows = drivers.loc[drivers["model"] == model].dropna(subset=["estimate"])
    if rows.empty:
        return None
    rows = rows.iloc[::-1]
    ratio = rows["effect"].astype(float)
    low = rows["effect_low"].astype(float)
    high = rows["effect_high"].astype(float)
    what = {
        "top2": "odds of a satisfied response (CSAT 4-5)",
        "csat": "odds of a higher CSAT score",
        "complaints": "complaint rate",
    }.get(model, "outcome")
    with figure_style():
        figure, (ax,) = new_figure(10, 0.55 * len(rows) + 1.6)
        y = label_positions(
            ax,
            [
                f"{plot_label(d)}\n({step})"
                for d, step in zip(rows["driver"], rows["step"], strict=True)
            ],
            fontsize=8,
        )
        significant = (rows["p_value"].astype(float) < 0.05).to_numpy()
        colors = np.where(significant, MAIN_COLOR, MUTED_COLOR)
        for i in np.flatnonzero(~significant & np.isfinite(high.to_numpy())):
            ax.annotate(
                "the data cannot tell",
                (float(high.iloc[i]), y[i]),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
                color=MUTED_COLOR,
            )
        ax.hlines(y, low, high, color=colors, linewidth=2)
        ax.scatter(ratio, y, color=colors, zorder=3)
        ax.axvline(1, color=GUIDE_COLOR, linewidth=1, linestyle="--")
        ax.set_xscale("log")
        span = np.concatenate([low.to_numpy(), high.to_numpy(), [1.0]])
        span = span[np.isfinite(span) & (span > 0)]
        ticks = [t for t in RATIO_TICKS if span.min() / 1.3 <= t <= span.max() * 1.3] or [1]
        ax.set_xlim(min(ticks[0], span.min()) / 1.1, max(ticks[-1], span.max()) * 1.1)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(f"factor on the {what} (log scale; 1 = no effect)", fontsize=9)
        ax.set_title(
            f"What drives the {what}, with 95% intervals\n"
            "(blue: significant at the 5% level; grey: the data cannot tell)",
            fontsize=11,
        )
    return figure
