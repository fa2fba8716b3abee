"""Insight sections: driver importance, CSAT targets, response curves, customers at risk, gaps."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from satmodel.errors import InputError, SatmodelError
from satmodel.insights.scenarios import observed_range
from satmodel.reporting.data import ReportData
from satmodel.reporting.drivers import ModelSection
from satmodel.reporting.figures import (
    INK_COLOR,
    MAIN_COLOR,
    MUTED_COLOR,
    error_extents,
    figure_style,
    label_positions,
    legend_below,
    new_figure,
)
from satmodel.reporting.labels import (
    IMPORTANCE_NAMES,
    LEVER_NAMES,
    level_caveat,
    md_escape,
    plot_label,
    segment_label,
)
from satmodel.reporting.trust import within_csat_model
from satmodel.vocabulary import LEVERS, OUTCOME_METRICS

TARGET_LEVERS = ("latency_p95_ms", "availability_pct")
DEFAULT_CSAT_TARGETS = "4.2"


# outcome of the importance table -> the column counting its answers (the weights)
IMPORTANCE_OUTCOMES = {"csat_mean": "csat_n", "nps_score": "nps_n"}


def driver_importance(
    data: ReportData, n_boot: int = 300, seed: int = 0, outcome: str = "csat_mean"
):
    """Driver importance for the mean CSAT (or the NPS) of customer-months, with intervals.

    Shapley (LMG) shares of the explained variation (R²) of a linear model of each
    customer-month's mean CSAT or NPS (weighted by its answers) on the default drivers, with
    customer-level bootstrap intervals (:func:`satmodel.insights.importance.driver_importance`).

    Parameters
    ----------
    data : the report's data.
    n_boot, seed : bootstrap resamples and their seed.
    outcome : ``csat_mean`` or ``nps_score`` (100 x (promoters - detractors) / answers).

    Returns
    -------
    ImportanceResult or None
        None when the panel has no answers for the outcome (silently for the NPS, which is
        optional), or (with a note in ``data.notes``) when it cannot be computed.
    """
    from satmodel.insights.importance import driver_importance as lmg_importance

    if outcome not in IMPORTANCE_OUTCOMES:
        raise InputError(
            f"outcome {outcome!r}: importance is for {' or '.join(IMPORTANCE_OUTCOMES)} "
            "(e.g. outcome='nps_score')"
        )
    answers = IMPORTANCE_OUTCOMES[outcome]
    if outcome not in data.panel or answers not in data.panel:
        return None
    panel = data.panel.loc[pd.to_numeric(data.panel[answers], errors="coerce") > 0]
    if panel.empty:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return lmg_importance(
                panel, outcome, family="ols", weights=answers, n_boot=n_boot, seed=seed
            )
    except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
        data.notes.append(f"driver importance: could not be computed ({exc})")
        return None


def importance_view(importance, nps=None) -> pd.DataFrame:
    """Driver importance as a manager reads it.

    Parameters
    ----------
    importance : :func:`driver_importance` of the mean CSAT, or None.
    nps : :func:`driver_importance` with ``outcome="nps_score"``, optional: adds
        nps_share_pct and nps_rank (how much each driver accounts for in how likely customers
        are to recommend us); left out when None (no NPS answers).

    Returns
    -------
    DataFrame
        driver, share_pct (share of what the model explains), share_low_pct,
        share_high_pct, rank, rank_range (e.g. ``2-3``), [nps_share_pct, nps_rank]; empty
        when ``importance`` is None.
    """
    columns = ["driver", "share_pct", "share_low_pct", "share_high_pct", "rank", "rank_range"]
    if importance is None:
        return pd.DataFrame(columns=columns)
    table = importance.table_
    out = pd.DataFrame(
        {
            "driver": [IMPORTANCE_NAMES.get(d, d) for d in table["driver"]],
            "share_pct": 100 * table["relative_share"].astype(float),
            "share_low_pct": 100 * table["relative_share_ci_low"].astype(float),
            "share_high_pct": 100 * table["relative_share_ci_high"].astype(float),
            "rank": table["rank"].astype(int),
            "rank_range": [
                f"{int(lo)}" if lo == hi else f"{int(lo)}-{int(hi)}"
                for lo, hi in zip(table["rank_ci_low"], table["rank_ci_high"], strict=True)
            ],
        }
    )
    if nps is not None:
        by_driver = nps.table_.set_index("driver")
        out["nps_share_pct"] = 100 * table["driver"].map(by_driver["relative_share"]).astype(float)
        out["nps_rank"] = table["driver"].map(by_driver["rank"]).astype("Int64")
        columns += ["nps_share_pct", "nps_rank"]
    return out[columns].reset_index(drop=True)


def plot_importance(importance, panel: pd.DataFrame):
    """Driver importance (bars with 95% intervals) and importance against performance.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when ``importance`` is None.
    """
    if importance is None:
        return None
    from satmodel.insights.importance import driver_performance, plot_importance_quadrant

    view = importance_view(importance).iloc[::-1]
    with figure_style():
        figure, (left, right) = new_figure(13, 0.45 * len(view) + 2.6, ncols=2)
        y = label_positions(left, [plot_label(d) for d in view["driver"]], fontsize=9)
        left.barh(y, view["share_pct"], color=MAIN_COLOR)
        left.errorbar(
            view["share_pct"],
            y,
            xerr=error_extents(view["share_pct"], view["share_low_pct"], view["share_high_pct"]),
            fmt="none",
            ecolor=INK_COLOR,
            capsize=3,
        )
        left.set_xlabel("% of the explained variation in CSAT (95% interval)", fontsize=9)
        left.set_title(
            f"Importance (the model explains {100 * importance.total_:.0f}% of CSAT)",
            fontsize=11,
        )
        table = importance.table_.assign(
            driver=[IMPORTANCE_NAMES.get(d, d) for d in importance.table_["driver"]]
        )
        performance = driver_performance(panel)
        performance.index = [IMPORTANCE_NAMES.get(d, d) for d in performance.index]
        try:
            plot_importance_quadrant(
                table,
                performance=performance,
                ax=right,
                title="Importance vs. expectations met",
            )
            right.title.set_fontsize(11)
        except SatmodelError:
            right.set_visible(False)
        figure.suptitle("Which service measures are most associated with satisfaction", fontsize=12)
    return figure


def parse_csat_targets(spec: str | float | None, segments: list[str]) -> dict[str, float]:
    """Each segment's CSAT target from ``"4.2"`` (every segment) or ``"enterprise 4.4; * 4.0"``.

    ``*`` sets the default of the segments not named; without it, unnamed segments get
    :data:`DEFAULT_CSAT_TARGETS`.

    Raises
    ------
    InputError
        For a malformed target or one outside 1-5.
    """
    text = str(spec if spec not in (None, "") else DEFAULT_CSAT_TARGETS).strip()
    named: dict[str, float] = {}
    default = float(DEFAULT_CSAT_TARGETS)
    problems = []
    for part in (p.strip() for p in text.split(";") if p.strip()):
        name, _, value = part.rpartition(" ")
        try:
            number = float(value)
        except ValueError:
            problems.append(f"csat_targets {part!r}: expected 'SEGMENT TARGET', e.g. 'smb 4.0'")
            continue
        if not 1 <= number <= 5:
            problems.append(f"csat_targets {part!r}: a CSAT target must be between 1 and 5")
        name = name.strip()
        if name in ("", "*"):
            default = number
        else:
            named[name] = number
    if problems:
        raise InputError(problems)
    return {segment: named.get(segment, default) for segment in segments}


def segment_targets(
    models: ModelSection,
    data: ReportData,
    csat_targets: str | float | None = None,
    levers: tuple[str, ...] = TARGET_LEVERS,
    n_sim: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """The service level each segment needs for its CSAT target (the inverse solver).

    For every segment and lever: the level of the lever (other drivers held at the segment's
    values this month) at which the segment's predicted mean CSAT just reaches its target
    (:func:`satmodel.insights.targets.solve_target`). When the target is already met, that is
    the worst level the segment can afford (e.g. p95 latency may rise to ``required``); when
    not, the level it needs.

    Returns
    -------
    DataFrame
        segment, csat_target, current_csat, met_now, lever, unit, direction, current_level,
        required, ci_low, ci_high, feasible, extrapolated, caveat (what the sentence
        recommending ``required`` must add: :func:`~satmodel.reporting.labels.level_caveat`);
        empty without models or insights.
    """
    columns = ["segment", "csat_target", "current_csat", "met_now", "lever", "unit"]
    columns += ["direction", "current_level", "required", "ci_low", "ci_high", "feasible"]
    columns += ["extrapolated", "caveat"]
    from satmodel.insights.targets import solve_target

    if not {"csat", "complaints"} & set(models.results):
        return pd.DataFrame(columns=columns)
    month = data.panel.loc[data.panel["month"].astype(str) == data.month]
    segments = sorted(str(s) for s in month["segment"].dropna().unique())
    targets = parse_csat_targets(csat_targets, segments)
    rows = []
    for segment in segments:
        for lever in levers:
            if lever not in data.panel:
                continue
            name, unit, direction = LEVER_NAMES.get(lever, (lever, "", ""))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = solve_target(
                        models.results,
                        data.panel,
                        "csat_mean",
                        targets[segment],
                        lever,
                        segment=segment,
                        n_sim=n_sim,
                        seed=seed,
                    )
            except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
                data.notes.append(f"target for {segment}, {name}: not solved ({exc})")
                continue
            rows.append(
                {
                    "segment": segment,
                    "csat_target": targets[segment],
                    "current_csat": result.current_outcome,
                    "met_now": bool(result.met_now),
                    "lever": name,
                    "unit": unit,
                    "direction": direction,
                    "current_level": result.current,
                    "required": math.nan if result.required is None else result.required,
                    "ci_low": math.nan if result.ci_low is None else result.ci_low,
                    "ci_high": math.nan if result.ci_high is None else result.ci_high,
                    "feasible": bool(result.feasible),
                    "extrapolated": bool(result.extrapolated),
                    "caveat": level_caveat(
                        lever, result.required, observed_range(LEVERS[lever], data.panel)
                    )
                    if result.feasible
                    else "",
                }
            )
    return pd.DataFrame(rows, columns=columns)


def targets_text(targets: pd.DataFrame):
    """One line per segment: what its CSAT target needs, as IPython Markdown."""
    from IPython.display import Markdown

    if targets.empty:
        return Markdown("No targets could be computed (no fitted models).")
    lines = []
    for segment, group in targets.groupby("segment", sort=True):
        first = group.iloc[0]
        status = "meets" if first["met_now"] else "misses"
        parts = []
        for r in group.itertuples(index=False):
            if not r.feasible:
                parts.append(f"no {r.lever} alone reaches it")
                continue
            level = f"{r.required:,.3f}" if r.unit == "%" else f"{r.required:,.0f}"
            parts.append(f"{r.lever} {r.direction} {level} {r.unit}{r.caveat}")
        lines.append(
            f"- **{md_escape(segment_label(segment))}** ({status} its target of {first['csat_target']:.2f} "
            f"now, at {first['current_csat']:.2f}): " + "; ".join(parts) + "."
        )
    return Markdown(
        "Service level needed for each segment's CSAT target, one measure at a time (the "
        "others held at this month's values):\n\n" + "\n".join(lines)
    )


CURVE_LEVERS = ("latency_p95_ms", "availability_pct", "resolution_hours_median")


def curve_grid(panel: pd.DataFrame, lever: str, n_points: int = 40) -> np.ndarray:
    """Lever levels for a response curve: log-spaced over the levels customers see.

    Latency and resolution time run from the 1st to 1.5x the 99th percentile of the panel;
    availability from 99.999% down to the 1st percentile (at least to 99%), spaced evenly in
    "nines" (log of the unavailability), where customers feel the difference.
    """
    values = pd.to_numeric(panel[lever], errors="coerce").dropna()
    if lever == "availability_pct":
        worst = 100 - float(values.quantile(0.01)) if len(values) else 1.0
        gaps = np.geomspace(0.001, min(max(worst, 1.0), 20.0), n_points)
        return np.sort(100 - gaps)
    positive = values[values > 0]
    if positive.empty:
        return np.geomspace(1, 1000, n_points)
    low = float(positive.quantile(0.01))
    high = float(positive.quantile(0.99)) * 1.5
    if lever == "latency_p95_ms":
        low /= 1.5
    return np.geomspace(low, max(high, low * 2), n_points)


def response_curves(
    models: ModelSection,
    data: ReportData,
    levers: tuple[str, ...] = CURVE_LEVERS,
    outcome: str = "csat_mean",
    n_points: int = 40,
    n_sim: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Predicted outcome of each segment along each lever, other drivers held at this month's.

    Calls :func:`satmodel.insights.whatif.response_curve` per segment and lever (parameter
    simulation intervals). ``current_level`` is the segment's median of the lever this month,
    the level its held profile uses. ``significant`` is False when the data cannot tell the
    lever's effect from none: the 95% interval of the change in the outcome from the lowest
    to the highest observed level of the lever includes 0 (no draws: False).

    Returns
    -------
    DataFrame
        segment, lever, level, estimate, ci_low, ci_high, observed, current_level, unit,
        significant; empty (with a note) without models or insights.
    """
    columns = ["segment", "lever", "level", "estimate", "ci_low", "ci_high", "observed"]
    columns += ["current_level", "unit", "significant"]
    from satmodel.insights.whatif import response_curve

    if not models.results:
        return pd.DataFrame(columns=columns)
    month = data.panel.loc[data.panel["month"].astype(str) == data.month]
    segments = sorted(str(s) for s in month["segment"].dropna().unique())
    frames = []
    for lever in levers:
        if lever not in data.panel:
            continue
        for segment in segments:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    curve = response_curve(
                        models.results,
                        data.panel,
                        outcome,
                        lever,
                        segment=segment,
                        grid=curve_grid(data.panel, lever, n_points),
                        n_sim=n_sim,
                        seed=seed,
                    )
            except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
                data.notes.append(f"response curve of {segment}, {lever}: not drawn ({exc})")
                continue
            current = pd.to_numeric(
                month.loc[month["segment"].astype(str) == segment, lever], errors="coerce"
            ).median()
            significant = (curve["change_ci_low"] > 0) | (curve["change_ci_high"] < 0)
            frames.append(
                curve.assign(
                    segment=segment, current_level=float(current), significant=significant
                )[columns]
            )
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def _two_and_five(value: float, _position=None) -> str:
    """A minor tick label of a log axis: shown at 2 and 5 times a power of ten only."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return f"{value:,.6g}" if round(mantissa) in (2, 5) else ""


def plot_response_curves(
    curves: pd.DataFrame, targets: pd.DataFrame | None = None, outcome: str = "csat_mean"
):
    """One chart per lever: each segment's predicted CSAT along it, with 95% bands.

    A segment's curve whose effect the data cannot tell from none (``significant`` False: the
    95% interval of the change across the lever's observed range includes 0) is drawn grey
    and dashed, and its panel's title says so.

    Parameters
    ----------
    curves : the output of :func:`response_curves`.
    targets : the output of :func:`segment_targets` (draws each segment's target), optional.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when there is no curve.
    """
    import seaborn as sns

    if curves.empty:
        return None
    levers = list(dict.fromkeys(curves["lever"]))
    segments = sorted(curves["segment"].unique())
    palette = dict(zip(segments, sns.color_palette("deep"), strict=False))
    goal = (
        targets.drop_duplicates("segment").set_index("segment")["csat_target"]
        if targets is not None and len(targets)
        else pd.Series(dtype=float)
    )
    label_y, unit_y, _ = OUTCOME_METRICS.get(outcome, (outcome, "", False))
    from matplotlib.ticker import FixedLocator, FuncFormatter

    with figure_style():
        figure, axes = new_figure(13, 4.2, ncols=len(levers))
        for ax, lever in zip(axes, levers, strict=True):
            name, unit, _ = LEVER_NAMES.get(lever, (lever, "", ""))
            unclear = []
            for segment in segments:
                rows = curves.loc[(curves["lever"] == lever) & (curves["segment"] == segment)]
                if rows.empty:
                    continue
                significant = bool(rows["significant"].iloc[0])
                color = palette[segment] if significant else MUTED_COLOR
                if not significant:
                    unclear.append(plot_label(segment_label(segment)))
                # availability is drawn as unavailability (100 - %) on a log axis: the "nines"
                shift = 100.0 if lever == "availability_pct" else 0.0
                x = (shift - rows["level"]).abs() if shift else rows["level"]
                ax.fill_between(x, rows["ci_low"], rows["ci_high"], color=color, alpha=0.15)
                ax.plot(x, rows["estimate"], color=color, linestyle="-" if significant else "--")
                current = float(rows["current_level"].iloc[0])
                x_now = abs(shift - current) if shift else current
                if math.isfinite(x_now) and x.min() <= x_now <= x.max():
                    order = np.argsort(x.to_numpy())
                    y_now = float(
                        np.interp(x_now, x.to_numpy()[order], rows["estimate"].to_numpy()[order])
                    )
                    ax.plot([x_now], [y_now], marker="o", color=color, markersize=7)
                if segment in goal.index:
                    ax.axhline(goal[segment], color=color, linestyle=":", linewidth=1)
            ax.set_xscale("log")
            if lever == "availability_pct":
                ax.invert_xaxis()
                ax.xaxis.set_major_locator(FixedLocator([10, 1, 0.1, 0.01, 0.001]))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 - v:g}"))
                ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
            else:
                # plain numbers, minor ticks labelled at 2 and 5 only: 2x10^2, 3x10^2... overlap
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.6g}"))
                ax.xaxis.set_minor_formatter(FuncFormatter(_two_and_five))
            ax.set_xlabel(f"{name} ({unit}, log scale)", fontsize=9)
            ax.set_ylabel(f"predicted {label_y} ({unit_y})", fontsize=9)
            title = f"{label_y} vs. {name}"
            if unclear:
                who = (
                    "every segment"
                    if len(unclear) == len(segments)
                    else ", ".join(unclear)
                    if len(unclear) <= 2
                    else f"{len(unclear)} segments"
                )
                title += f"\ngrey: the data cannot tell ({who})"
            ax.set_title(title, fontsize=11 if not unclear else 9)
        from matplotlib.lines import Line2D

        # drawn from the palette: a greyed curve in the first panel keeps its segment's colour
        handles = [
            Line2D([], [], color=palette[s], label=plot_label(segment_label(s))) for s in segments
        ]
        if not curves["significant"].all():
            handles.append(
                Line2D([], [], color=MUTED_COLOR, linestyle="--", label="the data cannot tell")
            )
        legend_below(figure, handles=handles, title="segment (dot: now)")
        figure.suptitle(
            "Response curves: predicted satisfaction as one service measure moves\n"
            "(dotted: segment's target; grey, dashed: the change's 95% interval includes none)",
            fontsize=12,
        )
    return figure


AT_RISK_COLUMNS = ["customer_id", "segment", "predicted_csat", "ci_low", "ci_high"]
AT_RISK_COLUMNS += ["csat_target", "p_below_target", "observed_csat", "responses"]
AT_RISK_COLUMNS += ["expected_responses", "n_gaps", "gain_if_gaps_closed"]
AT_RISK_PROBABILITY = 0.8
BACKTEST_MONTHS = 3


def customers_at_risk(
    models: ModelSection,
    data: ReportData,
    csat_targets: str | float | None = None,
    gaps=None,
    probability: float = AT_RISK_PROBABILITY,
    n_draws: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Customers whose mean CSAT next month is probably below their segment's target.

    The prediction is the predictive distribution of the customer's mean CSAT next month
    (:func:`satmodel.insights.nowcast.forecast_mean_csat`, this month's service standing in
    for next month's), from the within-customer ordinal CSAT model: parameter uncertainty,
    the customer's own persistent effect and the noise of a mean of its usual number of
    responses. A customer is at risk when the predictive probability of falling below the
    target exceeds ``probability`` (0.8), whether or not it answered a survey.
    ``ci_low``/``ci_high`` are the 95% predictive interval. ``gain_if_gaps_closed`` is the
    CSAT the customer would gain if its own expectation gaps were closed
    (:func:`satmodel.insights.gaps.gap_analysis`, from ``gaps``).

    Parameters
    ----------
    gaps : a :class:`satmodel.insights.gaps.GapResult` of the month, optional.
    probability : flag above this predictive probability of missing the target.

    Returns
    -------
    DataFrame
        customer_id, segment, predicted_csat, ci_low, ci_high, csat_target, p_below_target,
        observed_csat, responses (this month), expected_responses, n_gaps,
        gain_if_gaps_closed; most probable miss first.
    """
    from satmodel.insights.nowcast import forecast_mean_csat

    result = within_csat_model(models, data)
    if result is None or data.responses is None:
        return pd.DataFrame(columns=AT_RISK_COLUMNS)
    month = data.panel.loc[data.panel["month"].astype(str) == data.month]
    segments = sorted(str(s) for s in month["segment"].dropna().unique())
    targets = parse_csat_targets(csat_targets, segments)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            now = forecast_mean_csat(
                result,
                data.panel,
                data.responses,
                data.month,
                targets,
                probability=probability,
                n_draws=n_draws,
                seed=seed,
            )
    except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
        data.notes.append(f"customers at risk: no forecast ({exc})")
        return pd.DataFrame(columns=AT_RISK_COLUMNS)
    out = now.rename(
        columns={
            "predictive_low": "ci_low",
            "predictive_high": "ci_high",
            "csat_mean": "observed_csat",
            "csat_n": "responses",
        }
    )
    if gaps is not None:
        per_customer = gaps.customers_.set_index(gaps.customers_["customer_id"].astype(str))
        out["n_gaps"] = out["customer_id"].map(per_customer["n_gaps"]).fillna(0).astype(int)
        out["gain_if_gaps_closed"] = out["customer_id"].map(per_customer["csat_mean_gain"])
    else:
        out["n_gaps"] = 0
        out["gain_if_gaps_closed"] = math.nan
    out = out.loc[out["at_risk"]]
    out = out.sort_values(
        ["p_below_target", "predicted_csat", "customer_id"],
        ascending=[False, True, True],
        kind="stable",
    )
    return out[AT_RISK_COLUMNS].reset_index(drop=True)


def at_risk_backtest(
    models: ModelSection,
    data: ReportData,
    csat_targets: str | float | None = None,
    months: int = BACKTEST_MONTHS,
    probability: float = AT_RISK_PROBABILITY,
    n_draws: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """How the customers-at-risk flags of the last ``months`` months turned out.

    For each of the last ``months`` months up to the report month: the within CSAT model
    fitted on the data up to the month before flags customers as :func:`customers_at_risk`
    does, and the flags are held against the month's answers
    (:func:`satmodel.insights.nowcast.backtest_at_risk`).

    Returns
    -------
    DataFrame
        month, flagged_in, customers, flagged, flagged_answered, flagged_below, precision,
        answered, below, base_rate; empty (with a note) without the CSAT model or history.
    """
    from satmodel.calendar import add_months
    from satmodel.insights.nowcast import BACKTEST_COLUMNS, backtest_at_risk

    result = models.results.get("csat")
    if result is None or data.responses is None:
        return pd.DataFrame(columns=BACKTEST_COLUMNS)
    answered = data.responses["month"].astype(str)
    tested = [add_months(data.month, -k) for k in range(months - 1, -1, -1)]
    tested = [m for m in tested if (answered < m).any()]
    segments = sorted(str(s) for s in data.panel["segment"].dropna().unique())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return backtest_at_risk(
                data.responses,
                data.panel,
                result.formula,
                parse_csat_targets(csat_targets, segments),
                tested,
                probability=probability,
                link=result.link,
                n_draws=n_draws,
                seed=seed,
            )
    except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
        data.notes.append(f"customers at risk: no backtest ({exc})")
        return pd.DataFrame(columns=BACKTEST_COLUMNS)


def backtest_text(backtest: pd.DataFrame):
    """One sentence on how last months' at-risk flags turned out, as IPython Markdown."""
    from IPython.display import Markdown

    answered = int(backtest["flagged_answered"].sum()) if len(backtest) else 0
    if not answered:
        return Markdown("No flagged customer answered a survey in the months after: no backtest.")
    below = int(backtest["flagged_below"].sum())
    base = backtest["below"].sum() / max(int(backtest["answered"].sum()), 1)
    return Markdown(
        f"Backtest over {len(backtest)} month(s): of the {int(backtest['flagged'].sum()):,} "
        f"customers flagged a month earlier, {answered:,} answered a survey and {below:,} of "
        f"them (**{100 * below / answered:.0f}%**) then scored below their target; of all "
        f"customers who answered, {100 * base:.0f}% did."
    )


def gap_analysis(models: ModelSection, data: ReportData, n_sim: int = 300, seed: int = 0):
    """Expectation gaps of the month and what they cost in satisfaction and complaints.

    :func:`satmodel.insights.gaps.gap_analysis` for the report month (each customer's
    measured availability, p95 latency and median resolution time against its expectation).

    Returns
    -------
    GapResult or None
        None (with a note) without the CSAT model or insights.
    """
    from satmodel.insights.gaps import gap_analysis as analyse_gaps

    if "csat" not in models.results:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return analyse_gaps(
                models.results, data.panel, month=data.month, n_sim=n_sim, seed=seed
            )
    except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
        data.notes.append(f"gap analysis: not possible ({exc})")
        return None


def gap_view(gaps) -> pd.DataFrame:
    """Per segment: customers with each gap, CSAT now and with every gap closed.

    Returns
    -------
    DataFrame
        segment, customers, with_availability_gap, with_latency_gap, with_resolution_gap,
        csat_mean_now, csat_mean_closed, csat_mean_gain, complaints_avoidable_per_month
        (the columns gap analysis gives); empty when ``gaps`` is None.
    """
    wanted = ["segment", "customers", "with_availability_gap", "with_latency_gap"]
    wanted += ["with_resolution_gap", "csat_mean_now", "csat_mean_closed", "csat_mean_gain"]
    wanted += ["complaints_avoidable_per_month"]
    if gaps is None:
        return pd.DataFrame(columns=wanted)
    table = gaps.segments_
    return table[[c for c in wanted if c in table]].reset_index(drop=True)


def at_risk_text(at_risk: pd.DataFrame, probability: float = AT_RISK_PROBABILITY):
    """One paragraph on the customers at risk, as IPython Markdown."""
    from IPython.display import Markdown

    rule = (
        f"a predictive probability above {100 * probability:.0f}% that their mean CSAT next "
        "month falls below their segment's target (the model's uncertainty, the customer's own "
        "tendency and the noise of a few answers included)"
    )
    if at_risk.empty:
        return Markdown(f"No customer has {rule}.")
    by_segment = at_risk["segment"].value_counts().sort_index()
    parts = ", ".join(
        f"{count:,} in {md_escape(segment_label(name))}" for name, count in by_segment.items()
    )
    return Markdown(f"**{len(at_risk):,} customers** have {rule}: {parts}.")
