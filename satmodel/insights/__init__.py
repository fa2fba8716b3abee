"""Insights: from fitted models to the service level a satisfaction target needs.

=====================  ==================================================================
module                 what
=====================  ==================================================================
``importance``         Shapley / LMG driver importance with customer-bootstrap intervals,
                       importance-vs-performance quadrant plot
``whatif``             what-if scenarios, response curves, marginal effects/elasticities
``targets``            inverse solver (:func:`solve_target`), trade-off frontier
``gaps``               expected vs measured service per customer and segment, customers
                       at risk
``plans``              cost curves and the cheapest combination of levers for a target
``apdex``              Apdex T calibration (one DuckDB pass over requests)
``nowcast``            predicted CSAT for every customer-month, surveyed or not
=====================  ==================================================================

Every answer for a segment or a customer averages the models' expected outcome over its real
customer-months of the month (:func:`current_profile`), each customer's persistent part held
at its own value by a within-customer model; levers move their linked columns
(:func:`set_levers`): see :mod:`satmodel.insights.scenarios` for the exact rules.
"""

from __future__ import annotations

from satmodel.insights.apdex import ApdexCalibration, apdex_by_threshold, calibrate_apdex
from satmodel.insights.gaps import GapResult, gap_analysis
from satmodel.insights.importance import (
    ImportanceResult,
    default_drivers,
    driver_importance,
    driver_performance,
    plot_importance_quadrant,
    shapley_from_covariance,
    shapley_values,
)
from satmodel.insights.nowcast import nowcast
from satmodel.insights.plans import (
    DEFAULT_COSTS,
    PlanResult,
    cheapest_plan,
    cost_curve,
    lever_cost,
    resolve_costs,
)
from satmodel.insights.scenarios import (
    LEVERS,
    MINUTES_PER_MONTH,
    OUTCOMES,
    Lever,
    OutcomeModel,
    current_profile,
    guaranteed_levels,
    set_levers,
    typical_level,
)
from satmodel.insights.targets import TargetResult, solve_target, target_frontier
from satmodel.insights.whatif import (
    DEFAULT_STEPS,
    marginal_effects,
    plot_response_curve,
    response_curve,
    what_if,
)

__all__ = [
    "DEFAULT_COSTS",
    "DEFAULT_STEPS",
    "LEVERS",
    "MINUTES_PER_MONTH",
    "OUTCOMES",
    "ApdexCalibration",
    "GapResult",
    "ImportanceResult",
    "Lever",
    "OutcomeModel",
    "PlanResult",
    "TargetResult",
    "apdex_by_threshold",
    "calibrate_apdex",
    "cheapest_plan",
    "cost_curve",
    "current_profile",
    "default_drivers",
    "driver_importance",
    "driver_performance",
    "gap_analysis",
    "guaranteed_levels",
    "lever_cost",
    "marginal_effects",
    "nowcast",
    "plot_importance_quadrant",
    "plot_response_curve",
    "resolve_costs",
    "response_curve",
    "set_levers",
    "shapley_from_covariance",
    "shapley_values",
    "solve_target",
    "target_frontier",
    "typical_level",
    "what_if",
]
