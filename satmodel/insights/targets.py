"""Inverse solver: the lever level needed to reach a satisfaction or complaint target.

Outcomes, each the average of the model's expected outcome over the held real customer-months
of the segment or customer (:func:`satmodel.insights.current_profile`), the lever set in every
one of them:

* ``csat_mean`` - expected CSAT score from the ordinal ``csat`` model;
* ``csat_top2_rate`` - P(csat >= satisfied cutoff) from the ordinal ``csat`` model
  (``top2_model="logit"`` uses the separate top-2 logit instead);
* ``complaint_rate_per_1k`` - 1000 x the negative-binomial rate per active user.

``outcome_now`` is that average with nothing changed (what the model says the customers
report now) and ``observed_now`` what they did report: the mean of the panel's outcome column
over the same customer-months (those with a value).

Satisfaction targets are floors (reach *at least* the target), complaint targets ceilings
(*at most*). The required level is the least demanding level of the lever such that every
level between it and the lever's best physical end reaches the target (for a monotone
response: where the response crosses the target). Uncertainty: parametric bootstrap - the
model's parameters are drawn ``n_sim`` times from N(estimate, covariance) and the target
solved for each draw; the interval is the percentile interval of those solutions (a draw
whose target cannot be reached counts at the lever's best physical end, one that reaches it
everywhere at the worst end). Each draw's solution is interpolated between the points of a
grid of the lever; the estimate is refined by bisection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from satmodel.errors import InputError
from satmodel.insights.scenarios import (
    MINUTES_PER_MONTH,
    OUTCOME_DIRECTION,
    OUTCOME_UNITS,
    Lever,
    OutcomeModel,
    check_ci,
    check_lever,
    check_outcome,
    current_profile,
    interval,
    lever_bounds,
    observed_range,
    set_levers,
    typical_level,
)

__all__ = ["TargetResult", "TargetSolver", "observed_outcome", "solve_target", "target_frontier"]

_GRID = 256
_BISECTIONS = 40


def to_unit(lever: Lever, x):
    """Lever level -> solver coordinate (increasing from the best to the worst level)."""
    x = np.asarray(x, dtype=float)
    if lever.scale == "log":
        return np.log(np.maximum(x, 1e-12))
    if lever.scale == "log1p":
        return np.log1p(np.maximum(x, 0.0))
    if lever.scale == "downtime":
        return np.log1p(np.maximum(100.0 - x, 0.0) / 100.0 * MINUTES_PER_MONTH)
    return x


def from_unit(lever: Lever, u):
    """Solver coordinate -> lever level."""
    u = np.asarray(u, dtype=float)
    if lever.scale == "log":
        return np.exp(u)
    if lever.scale == "log1p":
        return np.expm1(u)
    if lever.scale == "downtime":
        return 100.0 - np.expm1(u) / MINUTES_PER_MONTH * 100.0
    return u


@dataclass
class TargetResult:
    """Answer of :func:`solve_target`; :meth:`to_dict` gives the CLI's JSON keys.

    ``required`` is the lever level needed (None when infeasible), ``ci_low``/``ci_high``
    its interval, ``current`` the lever's current level (median over the held
    customer-months), ``outcome_now`` the model's average outcome over them as they are and
    ``observed_now`` the average of what they reported (``observed_n`` customer-months), ``feasible`` whether any level in
    the lever's physical range reaches the target, ``extrapolated`` whether the answer lies
    outside the lever's observed range in the panel.
    """

    outcome: str
    target: float
    lever: str
    required: float | None
    ci_low: float | None
    ci_high: float | None
    current: float
    feasible: bool
    extrapolated: bool
    segment: str | None = None
    customer: str | None = None
    unit: str = ""
    outcome_unit: str = ""
    direction: str = "at least"
    ci: float = 0.95
    met_now: bool = False
    binding: bool = True
    current_outcome: float = float("nan")
    current_outcome_ci_low: float = float("nan")
    current_outcome_ci_high: float = float("nan")
    outcome_now: float = float("nan")
    outcome_now_ci_low: float = float("nan")
    outcome_now_ci_high: float = float("nan")
    observed_now: float = float("nan")
    observed_n: int = 0
    month: str | None = None
    n_customer_months: int = 0
    best_outcome: float = float("nan")
    observed_min: float = float("nan")
    observed_max: float = float("nan")
    physical_min: float = float("nan")
    physical_max: float = float("nan")
    feasible_share: float = float("nan")
    n_sim: int = 0
    fixed: dict = field(default_factory=dict)
    held_: pd.DataFrame | None = field(default=None, repr=False)
    solutions_: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-able dict (NaN -> None) with the docs/contract.md keys first."""

        def clean(value):
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                return None
            return value

        keys = [
            "outcome",
            "target",
            "lever",
            "required",
            "ci_low",
            "ci_high",
            "current",
            "feasible",
            "extrapolated",
            "outcome_now",
            "outcome_now_ci_low",
            "outcome_now_ci_high",
            "observed_now",
            "observed_n",
            "month",
            "n_customer_months",
            "segment",
            "customer",
            "unit",
            "outcome_unit",
            "direction",
            "ci",
            "met_now",
            "binding",
            "current_outcome",
            "current_outcome_ci_low",
            "current_outcome_ci_high",
            "best_outcome",
            "observed_min",
            "observed_max",
            "physical_min",
            "physical_max",
            "feasible_share",
            "n_sim",
        ]
        out = {key: clean(getattr(self, key)) for key in keys}
        out["fixed"] = {k: clean(float(v)) for k, v in self.fixed.items()}
        return out


class TargetSolver:
    """Outcome of the held customer-months as a function of one lever, for many draws."""

    def __init__(self, model: OutcomeModel, rows: pd.DataFrame, lever: Lever):
        self.model = model
        self.rows = rows.reset_index(drop=True)
        self.lever = lever

    def on_grid(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Outcome at lever levels ``x`` (G,) for draws ``theta`` (S, P): (G, S)."""
        scenarios = [{self.lever.name: float(level)} for level in np.asarray(x, dtype=float)]
        return self.model.scenario_means(self.rows, scenarios, theta)


def _solve(solver: TargetSolver, theta: np.ndarray, target: float, sign: int, bounds):
    """Per draw: (solution, status) with status 1 solved, 0 infeasible, 2 met everywhere."""
    lever = solver.lever
    u_lo, u_hi = sorted(to_unit(lever, np.array(bounds)))
    u_grid = np.linspace(u_lo, u_hi, _GRID)
    x_grid = from_unit(lever, u_grid)
    values = solver.on_grid(x_grid, theta)  # (G, S)
    ok = sign * (values - target) >= 0
    n_draws = theta.shape[0]
    status = np.ones(n_draws, dtype=int)
    status[~ok[0]] = 0
    fails = ~ok
    first_fail = np.where(fails.any(axis=0), fails.argmax(axis=0), -1)
    status[(first_fail == -1) & ok[0]] = 2
    solution = np.full(n_draws, np.nan)
    solution[status == 2] = x_grid[-1]
    todo = np.flatnonzero(status == 1)
    if len(todo):
        # linear interpolation of the outcome between the last good and the first failing
        # grid point (the grid is fine: the error is far inside the interval)
        hi_i = first_fail[todo]
        v_lo, v_hi = values[hi_i - 1, todo], values[hi_i, todo]
        share = np.clip((target - v_lo) / np.where(v_hi != v_lo, v_hi - v_lo, 1.0), 0.0, 1.0)
        u_solved = u_grid[hi_i - 1] + share * (u_grid[hi_i] - u_grid[hi_i - 1])
        solution[todo] = from_unit(lever, u_solved)
    if status[0] == 1:
        lo, hi = u_grid[first_fail[0] - 1], u_grid[first_fail[0]]
        for _ in range(_BISECTIONS):
            mid = (lo + hi) / 2.0
            good = sign * (solver.on_grid(from_unit(lever, [mid]), theta[:1])[0, 0] - target) >= 0
            lo, hi = (mid, hi) if good else (lo, mid)
        solution[0] = float(from_unit(lever, lo))
    return solution, status, values


def observed_outcome(rows: pd.DataFrame, outcome: str) -> tuple[float, int]:
    """Mean of the panel's outcome column over the rows that have it, and how many do."""
    if outcome not in rows.columns:
        return float("nan"), 0
    values = pd.to_numeric(rows[outcome], errors="coerce").dropna()
    return (float(values.mean()) if len(values) else float("nan")), int(len(values))


def solve_target(
    models: dict,
    panel: pd.DataFrame,
    outcome: str,
    target: float,
    lever: str,
    segment: str | None = None,
    customer: str | None = None,
    fixed: dict | None = None,
    n_sim: int = 2000,
    ci: float = 0.95,
    window: int = 1,
    top2_model: str = "ordinal",
    seed: int | None = 0,
    month: str | None = None,
    satisfied_cutoff: int | None = None,
) -> TargetResult:
    """The level of one lever needed to reach an outcome target.

    Parameters
    ----------
    models : dict of FitResult
        From :func:`satmodel.models.fit_default_models` (``csat``, ``top2``, ``complaints``).
    panel : DataFrame
        The service panel (held values and the lever's observed range come from it).
    outcome : {"csat_mean", "csat_top2_rate", "complaint_rate_per_1k"}
    target : float
        A floor for satisfaction outcomes, a ceiling for complaints.
    lever : str
        One of :data:`satmodel.insights.LEVERS` present in the panel.
    segment, customer : str, optional
        Whose customer-months are held (see :func:`current_profile`; neither: everyone's).
    fixed : dict, optional
        Other levers set to given levels (column -> value) in every held customer-month.
    n_sim : int
        Parameter draws for the interval (0: point estimate only).
    ci : float
        Confidence level.
    window : int
        Months (ending at ``month``) whose customer-months are held.
    top2_model : {"ordinal", "logit"}
        Source of ``csat_top2_rate``.
    seed : int, optional
        Seed of the parameter draws.
    month : str, optional
        ``YYYY-MM`` of "now" (default: the panel's last month).
    satisfied_cutoff : int, optional
        CSAT at or above this is satisfied (default: the top-2 model's cutoff, else 4).

    Returns
    -------
    TargetResult
    """
    outcome = check_outcome(outcome)
    lever_spec = check_lever(lever, panel)
    ci = check_ci(ci)
    try:
        target = float(target)
    except (TypeError, ValueError):
        raise InputError(f"target {target!r}: must be a number") from None
    if not math.isfinite(target):
        raise InputError(f"target {target!r}: must be a finite number")
    fixed = dict(fixed or {})
    for name in fixed:
        check_lever(name, panel)
        if name == lever:
            raise InputError(f"fixed: {name!r} is the lever being solved for")
    model = OutcomeModel(
        models, outcome, top2_model=top2_model, satisfied_cutoff=satisfied_cutoff, panel=panel
    )
    rows = current_profile(panel, segment=segment, customer=customer, window=window, month=month)
    rows = model.predictable(rows)
    held = set_levers(rows, fixed) if fixed else rows
    rng = np.random.default_rng(seed)
    theta = model.draws(int(n_sim), rng)
    sign = OUTCOME_DIRECTION[outcome]
    bounds = lever_bounds(lever_spec, panel)
    solver = TargetSolver(model, held, lever_spec)
    solution, status, grid_values = _solve(solver, theta, target, sign, bounds)

    current_level = typical_level(lever, rows[lever])
    now, held_now = model.scenario_means(rows, [{}, fixed], theta)
    now_low, now_high = interval(now[1:], ci) if len(now) > 1 else (np.nan, np.nan)
    held_low, held_high = interval(held_now[1:], ci) if len(now) > 1 else (np.nan, np.nan)
    observed_now, observed_n = observed_outcome(rows, outcome)
    obs_lo, obs_hi = observed_range(lever_spec, panel)
    best_end, worst_end = (
        (bounds[0], bounds[1]) if lever_spec.better == "lower" else (bounds[1], bounds[0])
    )
    feasible = bool(status[0] != 0)
    required = float(solution[0]) if feasible else None
    ci_low = ci_high = None
    feasible_share = float("nan")
    if len(theta) > 1:
        sims = solution[1:].copy()
        sims[status[1:] == 0] = best_end
        feasible_share = float(np.mean(status[1:] != 0))
        low, high = interval(sims, ci)
        ci_low, ci_high = sorted((float(low), float(high)))
    if not feasible:
        ci_low = ci_high = None  # no level to put an interval around
    extrapolated = bool(feasible and not (obs_lo <= required <= obs_hi))
    return TargetResult(
        outcome=outcome,
        target=target,
        lever=lever,
        required=required,
        ci_low=ci_low,
        ci_high=ci_high,
        current=current_level,
        feasible=feasible,
        extrapolated=extrapolated,
        segment=segment,
        customer=customer,
        unit=lever_spec.unit,
        outcome_unit=OUTCOME_UNITS[outcome],
        direction="at least" if sign > 0 else "at most",
        ci=ci,
        met_now=bool(sign * (held_now[0] - target) >= 0),
        binding=bool(status[0] == 1),
        current_outcome=float(held_now[0]),
        current_outcome_ci_low=float(held_low),
        current_outcome_ci_high=float(held_high),
        outcome_now=float(now[0]),
        outcome_now_ci_low=float(now_low),
        outcome_now_ci_high=float(now_high),
        observed_now=observed_now,
        observed_n=observed_n,
        month=str(rows["month"].astype(str).max()),
        n_customer_months=len(rows),
        best_outcome=float(grid_values[0, 0]),
        observed_min=obs_lo,
        observed_max=obs_hi,
        physical_min=float(min(best_end, worst_end)),
        physical_max=float(max(best_end, worst_end)),
        feasible_share=feasible_share,
        n_sim=int(n_sim),
        fixed=fixed,
        held_=held,
        solutions_=solution,
    )


def target_frontier(
    models: dict,
    panel: pd.DataFrame,
    outcome: str,
    target: float,
    lever: str,
    other: str,
    other_levels,
    segment: str | None = None,
    customer: str | None = None,
    n_sim: int = 500,
    ci: float = 0.95,
    seed: int | None = 0,
    **kwargs,
) -> pd.DataFrame:
    """Trade-off frontier: the required ``lever`` for each level of another lever.

    Parameters
    ----------
    models, panel, outcome, target, lever, segment, customer, n_sim, ci, seed
        As for :func:`solve_target`.
    other : str
        The second lever, fixed at each of ``other_levels``.
    other_levels : sequence of float
    **kwargs
        Passed to :func:`solve_target` (``window``, ``top2_model``, ``month``,
        ``satisfied_cutoff``).

    Returns
    -------
    DataFrame
        Columns ``<other>``, ``required_<lever>``, ``ci_low``, ``ci_high``, ``feasible``,
        ``extrapolated``, ``binding``, plus outcome, target, lever, other.
    """
    rows = []
    for level in other_levels:
        res = solve_target(
            models,
            panel,
            outcome,
            target,
            lever,
            segment=segment,
            customer=customer,
            fixed={other: float(level)},
            n_sim=n_sim,
            ci=ci,
            seed=seed,
            **kwargs,
        )
        rows.append(
            {
                "outcome": outcome,
                "target": float(target),
                "other": other,
                other: float(level),
                "lever": lever,
                f"required_{lever}": res.required,
                "ci_low": res.ci_low,
                "ci_high": res.ci_high,
                "feasible": res.feasible,
                "extrapolated": res.extrapolated,
                "binding": res.binding,
            }
        )
    return pd.DataFrame(rows)
