"""Cost-aware plans: the cheapest combination of lever improvements that reaches a target.

Cost curves (monthly cost of improving a lever beyond its current level; worsening a lever
is not part of a plan), from the ``[costs]`` section of ``satmodel.toml``:

=========================  ===========================================  ===========
key                        cost of                                      default
=========================  ===========================================  ===========
``availability_per_nine``  each extra "nine": -log10(1 - a/100) rises   50,000
                           by 1 (99 % -> 99.9 % is one nine)
``latency_per_100ms``      each 100 ms off the p95 latency              20,000
``resolution_per_hour``    each hour off the median resolution time     5,000
``error_rate_per_0_1pp``   each 0.1 percentage point off the error rate 10,000
=========================  ===========================================  ===========

Availability counts at most 6 nines (99.9999 %), so a customer at 100 % today costs nothing
more. The plan minimises the total cost subject to the target (the point estimate of the
average outcome over the held real customer-months of the segment or customer) with SLSQP,
started from the cheapest feasible point of a coarse grid over the levers' ranges (current
level to best physical level). A plan's levels are guarantees
(:func:`~satmodel.insights.scenarios.guaranteed_levels`): a month worse than the level is
brought to it, a month already better keeps its own, so a month without downtime never
makes 100 % availability free. ``current`` is today's level
(:func:`~satmodel.insights.scenarios.typical_level`: mean availability, median others).

Assurance: the point estimate reaches a target only about half the time. With ``assurance``
*p* the plan must reach it in a share *p* of the parameter uncertainty: over a fixed, seeded
set of parameter draws, the (1 - *p*) quantile of the outcome must be at least a floor
(``csat_mean``, ``csat_top2_rate``), the *p* quantile at most a ceiling
(``complaint_rate_per_1k``). The grid, the SLSQP constraint and the trade-off table all use
that assured value; ``assurance=None`` uses the point estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from satmodel.errors import InputError
from satmodel.insights.scenarios import (
    OUTCOME_DIRECTION,
    OutcomeModel,
    check_ci,
    check_lever,
    check_outcome,
    current_profile,
    guaranteed_levels,
    interval,
    lever_bounds,
    typical_level,
)
from satmodel.insights.targets import from_unit, to_unit
from satmodel.vocabulary import DEFAULT_ASSURANCE

__all__ = [
    "DEFAULT_ASSURANCE",
    "DEFAULT_COSTS",
    "PlanResult",
    "check_assurance",
    "cheapest_plan",
    "cost_curve",
    "lever_cost",
    "resolve_costs",
]

DEFAULT_COSTS = {
    "availability_per_nine": 50_000.0,
    "latency_per_100ms": 20_000.0,
    "resolution_per_hour": 5_000.0,
    "error_rate_per_0_1pp": 10_000.0,
}
_COST_KEY = {
    "availability_pct": "availability_per_nine",
    "latency_p95_ms": "latency_per_100ms",
    "resolution_hours_median": "resolution_per_hour",
    "error_rate": "error_rate_per_0_1pp",
}
_MAX_NINES = 6.0
# parameter draws behind the assured value: enough for a stable 5-20 % quantile, few enough
# that the grid search stays fast
_ASSURANCE_DRAWS = 400
_GRID_PER_LEVER = {1: 200, 2: 40, 3: 14, 4: 8}
_GRID_BATCH = 128


def resolve_costs(costs=None, config=None) -> dict[str, float]:
    """Cost settings: defaults, updated by ``config.costs`` and then by ``costs``.

    ``config.costs`` holds the ``[costs]`` section (flat keys arrive as ``{"value": x}``).
    """
    out = dict(DEFAULT_COSTS)
    sources = []
    if config is not None:
        sources.append(getattr(config, "costs", {}) or {})
    if costs is not None:
        sources.append(costs)
    for source in sources:
        for key, value in source.items():
            if isinstance(value, dict):
                value = value.get("value", value.get("cost"))
            if key not in DEFAULT_COSTS:
                raise InputError(
                    f"costs.{key}: unknown cost key (known: {', '.join(DEFAULT_COSTS)})"
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InputError(f"costs.{key}: must be a number >= 0, got {value!r}")
            out[key] = float(value)
    return out


def check_assurance(assurance):
    """Validate an assurance level: None (the point estimate) or a probability in (0, 1)."""
    if assurance is None:
        return None
    if (
        isinstance(assurance, bool)
        or not isinstance(assurance, int | float | np.floating)
        or not 0 < assurance < 1
    ):
        raise InputError(
            f"assurance: must be a probability between 0 and 1 (exclusive), e.g. 0.8, "
            f"got {assurance!r}"
        )
    return float(assurance)


def _nines(a):
    a = np.asarray(a, dtype=float)
    with np.errstate(divide="ignore"):
        return np.minimum(-np.log10(np.maximum(1.0 - a / 100.0, 0.0)), _MAX_NINES)


def lever_cost(lever: str, level, current, costs: dict | None = None):
    """Monthly cost of moving ``lever`` from ``current`` to ``level`` (0 if not better).

    Parameters
    ----------
    lever : str
        availability_pct, latency_p95_ms, resolution_hours_median or error_rate.
    level, current : float or array
    costs : dict, optional
        Cost settings (default :data:`DEFAULT_COSTS`).
    """
    costs = resolve_costs(costs)
    if lever not in _COST_KEY:
        raise InputError(
            f"lever {lever!r}: no cost curve (levers with costs: {', '.join(_COST_KEY)})"
        )
    rate = costs[_COST_KEY[lever]]
    level = np.asarray(level, dtype=float)
    current = np.asarray(current, dtype=float)
    if lever == "availability_pct":
        return rate * np.maximum(0.0, _nines(level) - _nines(current))
    if lever == "latency_p95_ms":
        return rate * np.maximum(0.0, current - level) / 100.0
    if lever == "resolution_hours_median":
        return rate * np.maximum(0.0, current - level)
    return rate * np.maximum(0.0, current - level) / 0.001


def cost_curve(lever: str, current: float, levels, costs: dict | None = None) -> pd.DataFrame:
    """Tidy cost curve of one lever: lever, level, current, cost."""
    levels = np.asarray(levels, dtype=float)
    return pd.DataFrame(
        {
            "lever": lever,
            "level": levels,
            "current": float(current),
            "cost": lever_cost(lever, levels, current, costs),
        }
    )


@dataclass
class PlanResult:
    """Result of :func:`cheapest_plan`.

    Attributes
    ----------
    plan_ : DataFrame
        lever, unit, current, planned, change, cost.
    total_cost_ : float
        Monthly cost of the plan (NaN when infeasible).
    feasible_ : bool
        Whether the levers' best levels together reach the target (with the assurance).
    predicted_, predicted_ci_ : float, (float, float)
        The outcome predicted at the plan and its simulation interval.
    assurance : float or None
        The required probability of reaching the target (None: the point estimate).
    probability_ : float
        Share of the interval's parameter draws in which the plan reaches the target (NaN
        when infeasible or without draws).
    tradeoff_ : DataFrame
        For a grid of the first lever's levels (from the panel's 1st-percentile level, or
        today's if worse, to the best physical level): the second lever's required level
        (other levers at their current level, the second no worse than today), the cost of
        each and the total.
    """

    outcome: str
    target: float
    plan_: pd.DataFrame
    total_cost_: float
    feasible_: bool
    predicted_: float
    predicted_ci_: tuple
    tradeoff_: pd.DataFrame
    costs: dict
    assurance: float | None = None
    probability_: float = float("nan")
    notes_: list = field(default_factory=list)


def cheapest_plan(
    models: dict,
    panel: pd.DataFrame,
    outcome: str,
    target: float,
    levers=("availability_pct", "latency_p95_ms", "resolution_hours_median"),
    segment: str | None = None,
    customer: str | None = None,
    costs: dict | None = None,
    config=None,
    n_sim: int = 1000,
    ci: float = 0.95,
    window: int = 1,
    top2_model: str = "ordinal",
    n_tradeoff: int = 8,
    seed: int | None = 0,
    month: str | None = None,
    satisfied_cutoff: int | None = None,
    assurance: float | None = DEFAULT_ASSURANCE,
) -> PlanResult:
    """The cheapest lever levels that reach an outcome target.

    Parameters
    ----------
    models, panel, outcome, target, segment, customer, window, top2_model, month,
    satisfied_cutoff
        As for :func:`satmodel.insights.solve_target`.
    levers : sequence of str
        Levers the plan may improve (each must have a cost curve).
    costs : dict, optional
        Cost settings overriding ``config.costs`` and :data:`DEFAULT_COSTS`.
    config : satmodel.config.Config, optional
        Its ``[costs]`` section.
    n_sim, ci, seed : interval of the predicted outcome at the plan.
    n_tradeoff : int
        Levels of the first lever in the trade-off table.
    assurance : float or None
        Probability (0 < p < 1) with which the plan must reach the target over the parameter
        uncertainty (see the module notes); None: at the point estimate.

    Returns
    -------
    PlanResult
    """
    outcome = check_outcome(outcome)
    ci = check_ci(ci)
    assurance = check_assurance(assurance)
    target = float(target)
    costs = resolve_costs(costs, config)
    specs = [check_lever(name, panel) for name in levers]
    for spec in specs:
        if spec.name not in _COST_KEY:
            raise InputError(
                f"lever {spec.name!r}: no cost curve (levers with costs: {', '.join(_COST_KEY)})"
            )
    if not specs or len({s.name for s in specs}) != len(specs):
        raise InputError(f"levers: give distinct levers, got {list(levers)}")
    model = OutcomeModel(
        models, outcome, top2_model=top2_model, satisfied_cutoff=satisfied_cutoff, panel=panel
    )
    held = current_profile(panel, segment=segment, customer=customer, window=window, month=month)
    held = model.predictable(held)
    sign = OUTCOME_DIRECTION[outcome]
    current = np.array([typical_level(s.name, held[s.name]) for s in specs])
    best = []
    for spec in specs:
        lo, hi = lever_bounds(spec, panel)
        best.append(lo if spec.better == "lower" else hi)
    best = np.array(best)
    u_cur = np.array([to_unit(s, c) for s, c in zip(specs, current, strict=True)], dtype=float)
    u_best = np.array([to_unit(s, b) for s, b in zip(specs, best, strict=True)], dtype=float)
    # the current level may already be at (or beyond) the best end
    u_cur = np.maximum(u_cur, u_best)

    def levels_of(u):
        return np.array([from_unit(s, ui) for s, ui in zip(specs, u, strict=True)], dtype=float)

    def outcome_at(level_rows: np.ndarray, theta: np.ndarray) -> np.ndarray:
        scenarios = [
            guaranteed_levels(held, {s.name: float(row[i]) for i, s in enumerate(specs)})
            for row in level_rows
        ]
        return model.scenario_means(held, scenarios, theta)

    if assurance is None:
        assured_theta, level_q = model.theta[None, :], None
    else:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
        assured_theta = model.draws(_ASSURANCE_DRAWS, rng)[1:]
        level_q = 1.0 - assurance if sign > 0 else assurance

    def assured_at(level_rows: np.ndarray) -> np.ndarray:
        """The value held against the target: point estimate or quantile over the draws."""
        values = outcome_at(level_rows, assured_theta)
        return values[:, 0] if level_q is None else np.quantile(values, level_q, axis=1)

    def cost_of(level_rows: np.ndarray) -> np.ndarray:
        return sum(
            lever_cost(s.name, level_rows[:, i], current[i], costs) for i, s in enumerate(specs)
        )

    # coarse grid over the box [best, current] in solver units
    n_per = _GRID_PER_LEVER.get(len(specs), 6)
    axes = [np.linspace(b, c, n_per) for b, c in zip(u_best, u_cur, strict=True)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(specs))
    grid_levels = np.array([levels_of(u) for u in mesh])
    at_best, at_current = assured_at(np.array([levels_of(u_best), levels_of(u_cur)]))
    notes = []
    feasible = bool(sign * (at_best - target) >= 0)
    if not feasible:
        plan_levels = np.full(len(specs), np.nan)
        total = float("nan")
    else:
        # the cheapest grid point that reaches the target, evaluated in order of cost: with
        # many parameter draws the model, not the search, is what costs time
        order = np.argsort(cost_of(grid_levels), kind="stable")
        for batch in np.array_split(order, max(1, len(order) // _GRID_BATCH)):
            ok = sign * (assured_at(grid_levels[batch]) - target) >= 0
            if ok.any():
                start = mesh[batch[np.argmax(ok)]]
                break
        scale = max(float(cost_of(levels_of(u_best)[None, :])[0]), 1.0)
        spread = abs(float(at_best - at_current)) or 1.0

        def objective(u):
            return float(cost_of(levels_of(u)[None, :])[0]) / scale

        def constraint(u):
            return sign * (float(assured_at(levels_of(u)[None, :])[0]) - target) / spread

        res = optimize.minimize(
            objective,
            start,
            method="SLSQP",
            bounds=list(zip(u_best, u_cur, strict=True)),
            constraints=[{"type": "ineq", "fun": constraint}],
            options={"maxiter": 200, "ftol": 1e-10},
        )
        u_plan = start
        if res.success and constraint(res.x) >= -1e-9 and objective(res.x) <= objective(start):
            u_plan = res.x
        elif not res.success:
            notes.append(f"SLSQP: {res.message}; the best grid point is reported")
        # levers the optimiser leaves (numerically) at their current level stay there
        u_plan = np.where(np.abs(u_plan - u_cur) < 1e-7, u_cur, u_plan)
        plan_levels = levels_of(u_plan)
        total = float(cost_of(plan_levels[None, :])[0])
    predicted = ci_pair = (float("nan"), float("nan"))
    probability = float("nan")
    if feasible:
        theta = model.draws(int(n_sim), np.random.default_rng(seed))
        vals = outcome_at(plan_levels[None, :], theta)[0]
        predicted = float(vals[0])
        if n_sim > 0:
            ci_pair = tuple(float(v) for v in interval(vals[1:], ci))
            probability = float(np.mean(sign * (vals[1:] - target) >= 0))
    plan = pd.DataFrame(
        {
            "lever": [s.name for s in specs],
            "unit": [s.unit for s in specs],
            "current": current,
            "planned": plan_levels,
            "change": plan_levels - current,
            "cost": [
                float(lever_cost(s.name, plan_levels[i], current[i], costs)) if feasible else np.nan
                for i, s in enumerate(specs)
            ],
        }
    )
    tradeoff = pd.DataFrame()
    if len(specs) >= 2 and n_tradeoff > 0:
        # the first lever's grid also covers levels worse than today (the panel's 1st
        # percentile), which cost nothing and show what the second lever must make up for
        worst = np.nanquantile(
            panel[specs[0].name].to_numpy(float), 0.01 if specs[0].better == "higher" else 0.99
        )
        u_first_worst = max(float(u_cur[0]), float(to_unit(specs[0], worst)))
        tradeoff = _tradeoff(
            specs,
            u_best,
            u_cur,
            u_first_worst,
            current,
            levels_of,
            assured_at,
            costs,
            sign,
            target,
            n_tradeoff,
        )
    return PlanResult(
        outcome=outcome,
        target=target,
        plan_=plan,
        total_cost_=total,
        feasible_=feasible,
        predicted_=predicted if feasible else float("nan"),
        predicted_ci_=ci_pair,
        tradeoff_=tradeoff,
        costs=costs,
        assurance=assurance,
        probability_=probability,
        notes_=notes,
    )


def _tradeoff(
    specs, u_best, u_cur, u_first_worst, current, levels_of, assured_at, costs, sign, target, n
):
    """Required second lever for a grid of the first (others at their current level)."""
    first, second = specs[0], specs[1]
    u_first = np.linspace(u_first_worst, u_best[0], n)
    u_second = np.linspace(u_best[1], u_cur[1], 400)

    def levels_at(index: np.ndarray) -> np.ndarray:
        u = np.tile(u_cur, (n, 1))
        u[:, 0] = u_first
        u[:, 1] = u_second[index]
        return np.array([levels_of(x) for x in u])

    def reaches(index: np.ndarray) -> np.ndarray:
        return sign * (assured_at(levels_at(index)) - target) >= 0

    # the least demanding second-lever level that still reaches the target: the outcome is
    # monotone in the lever, so a bisection over the 400 levels (best first) finds the last
    # one that does, for every first-lever level at once
    last = len(u_second) - 1
    feasible = reaches(np.zeros(n, dtype=int))
    lo = np.zeros(n, dtype=int)
    hi = np.full(n, last)
    lo = np.where(reaches(hi), last, lo)
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        ok = reaches(mid)
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    levels = levels_at(lo)
    rows = []
    for i in range(n):
        level_first = float(levels[i, 0])
        required = float(levels[i, 1]) if feasible[i] else np.nan
        c1 = float(lever_cost(first.name, level_first, current[0], costs))
        c2 = float(lever_cost(second.name, required, current[1], costs)) if feasible[i] else np.nan
        rows.append(
            {
                first.name: level_first,
                f"required_{second.name}": required,
                "feasible": bool(feasible[i]),
                f"cost_{first.name}": c1,
                f"cost_{second.name}": c2,
                "total_cost": c1 + c2,
            }
        )
    return pd.DataFrame(rows)
