"""What-if scenarios, response curves and marginal effects (elasticities).

All three average the model's expected outcome over the held real customer-months of a
segment or customer (:func:`satmodel.insights.current_profile`) with some levers changed in
each (:func:`satmodel.insights.set_levers`: availability and downtime move together, lags
follow; each customer's persistent part stays its own). Intervals are parametric-simulation intervals: the model parameters
are drawn ``n_sim`` times from N(estimate, covariance) and the percentile interval of the
predictions is reported (for effects, of the predicted *differences*, so the common
uncertainty cancels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from satmodel.errors import InputError
from satmodel.insights.scenarios import (
    LEVERS,
    OUTCOME_UNITS,
    OUTCOMES,
    OutcomeModel,
    check_ci,
    check_lever,
    check_outcome,
    current_profile,
    guaranteed_levels,
    interval,
    lever_bounds,
    observed_range,
    set_levers,
    typical_level,
    weighted,
)
from satmodel.insights.targets import TargetSolver, from_unit, to_unit
from satmodel.plotting import figure_and_axes

__all__ = [
    "DEFAULT_STEPS",
    "marginal_effects",
    "plot_response_curve",
    "response_curve",
    "what_if",
]

# the improvement one "step" of each lever stands for in marginal_effects
DEFAULT_STEPS = {
    "availability_pct": 0.1,  # +0.1 percentage points
    "downtime_minutes": -10.0,  # 10 fewer minutes a month
    "latency_p95_ms": -100.0,  # 100 ms faster p95
    "resolution_hours_median": -1.0,  # 1 hour faster median resolution
    "error_rate": -0.001,  # 0.1 percentage points fewer failed requests
}


def _available_outcomes(models: dict, top2_model: str) -> list[str]:
    out = []
    if "csat" in models:
        out += ["csat_mean", "csat_top2_rate"]
    elif "top2" in models and top2_model == "logit":
        out.append("csat_top2_rate")
    if "complaints" in models:
        out.append("complaint_rate_per_1k")
    if not out:
        raise InputError(
            f"models: need a 'csat' or 'complaints' model (have: {', '.join(models) or 'none'})"
        )
    return out


def _scenario_list(scenarios) -> list[tuple[str, dict]]:
    if scenarios is None:
        return [("current", {})]
    if isinstance(scenarios, dict):
        scenarios = [scenarios]
    if isinstance(scenarios, pd.DataFrame):
        scenarios = scenarios.to_dict("records")
    out = [("current", {})]
    for i, item in enumerate(scenarios):
        item = dict(item)
        label = str(item.pop("scenario", f"scenario_{i + 1}"))
        out.append((label, item))
    return out


def what_if(
    models: dict,
    panel: pd.DataFrame,
    scenarios=None,
    segment: str | None = None,
    customer: str | None = None,
    n_sim: int = 2000,
    ci: float = 0.95,
    window: int = 1,
    top2_model: str = "ordinal",
    seed: int | None = 0,
    month: str | None = None,
    satisfied_cutoff: int | None = None,
    guarantee: bool = False,
) -> pd.DataFrame:
    """Predicted satisfaction and complaints for service-level scenarios.

    Parameters
    ----------
    models : dict of FitResult
        From :func:`satmodel.models.fit_default_models`.
    panel : DataFrame
        The service panel.
    scenarios : dict, list of dict or DataFrame, optional
        Column -> level for each scenario (an optional ``scenario`` key names it), e.g.
        ``{"availability_pct": 99.95, "latency_p95_ms": 300}``. A ``current`` row (nothing
        changed) always comes first.
    segment, customer : str, optional
        Whose customer-months are held (neither: everyone's).
    n_sim, ci, seed : simulation draws, confidence level, seed.
    window, top2_model, month, satisfied_cutoff : see :func:`satmodel.insights.solve_target`.
    guarantee : bool
        False (default): a scenario sets each lever to its level in every held customer-month.
        True: the levels are guarantees (:func:`~satmodel.insights.scenarios.guaranteed_levels`):
        months already better keep their own level, as under a service tier's commitment.

    Returns
    -------
    DataFrame
        One row per scenario: scenario, profile, the set levels (``current``: today's level
        over the held customer-months, :func:`~satmodel.insights.scenarios.typical_level`),
        ``p_<level>`` (CSAT distribution), csat_mean, csat_mean_ci_low, csat_mean_ci_high, csat_top2_rate (+ CI),
        complaint_rate_per_1k (+ CI), for the outcomes the models support.
    """
    ci = check_ci(ci)
    held = current_profile(panel, segment=segment, customer=customer, window=window, month=month)
    items = _scenario_list(scenarios)
    for _, levels in items:
        for column in levels:
            if column not in panel.columns:
                valid = [c for c in LEVERS if c in panel.columns]
                raise InputError(
                    f"scenario: column {column!r} not in the panel (levers: {', '.join(valid)})"
                )
    rng = np.random.default_rng(seed)
    rows = [
        {"scenario": label, "profile": segment or customer or "all", **levels}
        for label, levels in items
    ]
    out = pd.DataFrame(rows)
    for column in {c for _, lv in items for c in lv}:
        out[column] = [
            float(levels.get(column, typical_level(column, held[column]))) for _, levels in items
        ]
    levels_list = [levels for _, levels in items]
    for outcome in _available_outcomes(models, top2_model):
        model = OutcomeModel(
            models, outcome, top2_model=top2_model, satisfied_cutoff=satisfied_cutoff, panel=panel
        )
        mine = model.predictable(held)
        theta = model.draws(int(n_sim), rng)
        applied = (
            [guaranteed_levels(mine, levels) for levels in levels_list]
            if guarantee
            else levels_list
        )
        values = model.scenario_means(mine, applied, theta)
        if outcome == "csat_mean":
            weights = mine["weight"].to_numpy(dtype=float)
            for i, levels in enumerate(applied):
                X = model.design(set_levers(mine, levels))
                probs = weighted(model.probabilities(X, theta[:1])[:, :, 0], weights)
                for j, level in enumerate(model.result.levels_):
                    out.loc[i, f"p_{level}"] = probs[j]
        out[outcome] = values[:, 0]
        low, high = interval(values[:, 1:], ci) if n_sim > 0 else (np.nan, np.nan)
        out[f"{outcome}_ci_low"] = low
        out[f"{outcome}_ci_high"] = high
    return out


def _default_grid(lever, panel, n_points):
    obs_lo, obs_hi = observed_range(lever, panel)
    phys_lo, phys_hi = lever_bounds(lever, panel)
    u_lo, u_hi = sorted(to_unit(lever, np.array([obs_lo, obs_hi])))
    pad = 0.25 * (u_hi - u_lo) if u_hi > u_lo else 1.0
    u_phys = sorted(to_unit(lever, np.array([phys_lo, phys_hi])))
    u = np.linspace(max(u_lo - pad, u_phys[0]), min(u_hi + pad, u_phys[1]), n_points)
    return np.sort(from_unit(lever, u))


def response_curve(
    models: dict,
    panel: pd.DataFrame,
    outcome: str,
    lever: str,
    segment: str | None = None,
    customer: str | None = None,
    grid=None,
    n_points: int = 60,
    fixed: dict | None = None,
    n_sim: int = 1000,
    ci: float = 0.95,
    window: int = 1,
    top2_model: str = "ordinal",
    seed: int | None = 0,
    month: str | None = None,
    satisfied_cutoff: int | None = None,
) -> pd.DataFrame:
    """An outcome as a function of one lever, set in every held customer-month.

    Parameters
    ----------
    models, panel, outcome, lever, segment, customer, fixed, n_sim, ci, window, top2_model,
    seed, month, satisfied_cutoff
        As for :func:`satmodel.insights.solve_target`.
    grid : sequence of float, optional
        Lever levels (default: ``n_points`` levels over the observed range widened by a
        quarter on each side, within the physical range).

    Returns
    -------
    DataFrame
        Columns lever, level, outcome, estimate, ci_low, ci_high, observed (level inside
        the panel's observed range), unit, outcome_unit, profile, and change, change_ci_low,
        change_ci_high: the outcome at the highest minus at the lowest observed level of
        the grid (the whole grid when fewer than two levels are observed), with the interval
        of the simulated differences (NaN without draws); the same on every row.
    """
    outcome = check_outcome(outcome)
    spec = check_lever(lever, panel)
    ci = check_ci(ci)
    model = OutcomeModel(
        models, outcome, top2_model=top2_model, satisfied_cutoff=satisfied_cutoff, panel=panel
    )
    held = current_profile(panel, segment=segment, customer=customer, window=window, month=month)
    held = model.predictable(held)
    if fixed:
        held = set_levers(held, fixed)
    grid = _default_grid(spec, panel, n_points) if grid is None else np.asarray(grid, float)
    theta = model.draws(int(n_sim), np.random.default_rng(seed))
    values = TargetSolver(model, held, spec).on_grid(grid, theta)
    low, high = interval(values[:, 1:], ci) if n_sim > 0 else (np.nan, np.nan)
    obs_lo, obs_hi = observed_range(spec, panel)
    observed = (grid >= obs_lo) & (grid <= obs_hi)
    ends = np.flatnonzero(observed) if observed.sum() >= 2 else np.arange(len(grid))
    change = values[ends[-1]] - values[ends[0]]
    change_low, change_high = interval(change[1:], ci) if n_sim > 0 else (np.nan, np.nan)
    return pd.DataFrame(
        {
            "lever": lever,
            "level": grid,
            "outcome": outcome,
            "estimate": values[:, 0],
            "ci_low": low,
            "ci_high": high,
            "observed": observed,
            "observed_min": obs_lo,
            "observed_max": obs_hi,
            "unit": spec.unit,
            "outcome_unit": OUTCOME_UNITS[outcome],
            "profile": segment or customer or "all",
            "change": change[0],
            "change_ci_low": change_low,
            "change_ci_high": change_high,
        }
    )


def plot_response_curve(curve: pd.DataFrame, target: float | None = None, ax=None, title=None):
    """Plot a :func:`response_curve` with its interval and the observed range shaded.

    Parameters
    ----------
    curve : DataFrame from :func:`response_curve`
    target : float, optional
        Draw the target as a horizontal line.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, 7.5, 4.8)
    lever = str(curve["lever"].iloc[0])
    outcome = str(curve["outcome"].iloc[0])
    spec = LEVERS.get(lever)
    ax.axvspan(
        float(curve["observed_min"].iloc[0]),
        float(curve["observed_max"].iloc[0]),
        color="tab:green",
        alpha=0.12,
        label="observed range of the data",
    )
    ax.fill_between(
        curve["level"],
        curve["ci_low"],
        curve["ci_high"],
        color="tab:blue",
        alpha=0.25,
        label="95% interval" if curve["ci_low"].notna().any() else None,
    )
    ax.plot(curve["level"], curve["estimate"], color="tab:blue", label="prediction")
    if target is not None:
        ax.axhline(target, color="firebrick", linestyle="--", label=f"target {target:g}")
    if spec is not None and spec.scale == "log":
        ax.set_xscale("log")
    lo, hi = float(curve["level"].min()), float(curve["level"].max())
    ax.set_xlim(lo, hi)
    label = spec.label if spec is not None else lever
    ax.set_xlabel(f"{label} ({curve['unit'].iloc[0]})")
    ax.set_ylabel(f"{outcome} ({curve['outcome_unit'].iloc[0]})")
    ax.set_title(title or f"{outcome} vs {label} - {curve['profile'].iloc[0]}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def marginal_effects(
    models: dict,
    panel: pd.DataFrame,
    levers=None,
    steps: dict | None = None,
    segments=None,
    n_sim: int = 2000,
    ci: float = 0.95,
    window: int = 1,
    top2_model: str = "ordinal",
    seed: int | None = 0,
    month: str | None = None,
    satisfied_cutoff: int | None = None,
) -> pd.DataFrame:
    """Effect of a one-step improvement of each lever, and elasticities, per segment.

    A step is :data:`DEFAULT_STEPS` unless given (e.g. +0.1 pp availability, -100 ms p95
    latency, -1 h resolution). Every held customer-month moves one step from its own level;
    one whose step would leave the physical range (availability already 100 %) steps to the
    bound from one step inside instead (``from_level``/``to_level`` give the medians). The
    elasticity is d log(outcome) / d log(lever): the response of the average outcome to a
    proportional change of every customer-month's level (central difference).

    Parameters
    ----------
    models, panel : fitted models and the service panel.
    levers : list of str, optional
        Default: every lever of :data:`LEVERS` in the panel.
    steps : dict, optional
        Lever -> signed step (overrides :data:`DEFAULT_STEPS`).
    segments : list of str, optional
        Default: every segment, plus ``all`` (every customer-month).
    n_sim, ci, window, top2_model, seed, month, satisfied_cutoff : as for :func:`what_if`.

    Returns
    -------
    DataFrame
        segment, lever, unit, step, from_level, to_level, outcome, outcome_unit, baseline,
        effect, effect_ci_low, effect_ci_high, elasticity, elasticity_ci_low,
        elasticity_ci_high.
    """
    ci = check_ci(ci)
    steps = {**DEFAULT_STEPS, **(steps or {})}
    if levers is None:
        levers = [name for name in LEVERS if name in panel.columns]
    specs = [check_lever(name, panel) for name in levers]
    for spec in specs:
        if spec.name not in steps:
            raise InputError(f"steps: no step for lever {spec.name!r}")
    if segments is None:
        segments = sorted(panel["segment"].dropna().astype(str).unique()) + [None]
    outcomes = _available_outcomes(models, top2_model)
    rng = np.random.default_rng(seed)
    draws = {}
    for outcome in outcomes:
        model = OutcomeModel(
            models, outcome, top2_model=top2_model, satisfied_cutoff=satisfied_cutoff, panel=panel
        )
        draws[outcome] = (model, model.draws(int(n_sim), rng))
    rel = 1e-3  # relative change of the central difference
    rows = []
    for seg in segments:
        held = current_profile(panel, segment=seg, window=window, month=month)
        for outcome, (model, theta) in draws.items():
            mine = model.predictable(held)
            for spec in specs:
                step = float(steps[spec.name])
                lo, hi = lever_bounds(spec, panel)
                x = mine[spec.name].to_numpy(float)
                x1 = np.clip(x + step, lo, hi)
                x0 = np.where(x1 == x, np.clip(x1 - step, lo, hi), x)
                xa = np.clip(x0 * (1 - rel), lo, hi)
                xb = np.clip(x0 * (1 + rel), lo, hi)
                levels = [{spec.name: v} for v in (x0, x1, xa, xb)]
                vals = model.scenario_means(mine, levels, theta)
                effect = vals[1] - vals[0]
                with np.errstate(divide="ignore", invalid="ignore"):
                    elastic = (np.log(vals[3]) - np.log(vals[2])) / np.log((1 + rel) / (1 - rel))
                e_lo, e_hi = interval(effect[1:], ci) if n_sim > 0 else (np.nan, np.nan)
                l_lo, l_hi = interval(elastic[1:], ci) if n_sim > 0 else (np.nan, np.nan)
                rows.append(
                    {
                        "segment": seg if seg is not None else "all",
                        "lever": spec.name,
                        "unit": spec.unit,
                        "step": float(np.mean(x1 - x0)),
                        "from_level": float(np.median(x0)),
                        "to_level": float(np.median(x1)),
                        "outcome": outcome,
                        "outcome_unit": OUTCOME_UNITS[outcome],
                        "baseline": float(vals[0, 0]),
                        "effect": float(effect[0]),
                        "effect_ci_low": float(e_lo),
                        "effect_ci_high": float(e_hi),
                        "elasticity": float(elastic[0]),
                        "elasticity_ci_low": float(l_lo),
                        "elasticity_ci_high": float(l_hi),
                    }
                )
    table = pd.DataFrame(rows)
    order = {name: i for i, name in enumerate(OUTCOMES)}
    return table.sort_values(
        ["segment", "lever", "outcome"],
        key=lambda s: s.map(order) if s.name == "outcome" else s,
        kind="stable",
    ).reset_index(drop=True)
