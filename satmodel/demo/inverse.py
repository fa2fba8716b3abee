"""The analytic truth of the inverse question, from ``truth.json`` and the panel alone.

:func:`true_required_level` answers "which level of a lever reaches this target?" with the
true models (hidden customer effects included), without fitting anything: it is what an
estimate of :func:`satmodel.insights.solve_target` should come close to. The outcome of a
segment-month is the average over its real customer-months of the true expected outcome of
each, other drivers at each customer-month's own values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from satmodel.demo.outcomes import customer_offsets, design_matrix, prepare_panel
from satmodel.demo.tables import SEGMENTS
from satmodel.errors import InputError

OUTCOMES = ("csat_mean", "csat_top2_rate", "complaint_rate_per_1k")
"""Outcomes of the inverse question (the names of :mod:`satmodel.insights`)."""

_BRACKET_DECADES = 6  # how far (powers of 10) the level search reaches around the current level


def expected_outcome(truth: dict[str, Any], data: pd.DataFrame, outcome: str) -> np.ndarray:
    """The true expected outcome of each prepared row, its customer's hidden effect included."""
    from scipy.special import expit

    model = truth["complaints"] if outcome == "complaint_rate_per_1k" else truth["csat"]
    name = "complaints" if outcome == "complaint_rate_per_1k" else "csat"
    linear = design_matrix(model, data) @ np.array(list(model["params"].values()))
    linear = linear + customer_offsets(truth, name, data["customer_id"])
    if outcome == "complaint_rate_per_1k":
        return 1000.0 * np.exp(linear)
    # P(csat <= k) for k = 1..4
    cdf = expit(np.asarray(model["thresholds"])[None, :] - linear[:, None])
    if outcome == "csat_mean":
        return 5.0 - cdf.sum(axis=1)  # E[csat] = sum over k = 1..5 of P(csat >= k)
    return 1.0 - cdf[:, 2]


def _rows(panel: pd.DataFrame, segment: str | None, month: str | None) -> pd.DataFrame:
    rows = panel
    if segment is not None:
        if segment not in SEGMENTS:
            raise InputError(f"segment {segment!r}: expected one of {list(SEGMENTS)}")
        rows = rows[rows["segment"] == segment]
    if month is not None:
        rows = rows[rows["month"].astype(str) == str(month)]
    if rows.empty:
        raise InputError(f"panel: no customer-months for segment {segment!r}, month {month!r}")
    return rows


def _check_outcome(outcome: str) -> str:
    if outcome not in OUTCOMES:
        raise InputError(f"outcome {outcome!r}: expected one of {list(OUTCOMES)}")
    return outcome


def true_outcome(
    truth: dict[str, Any],
    panel: pd.DataFrame,
    outcome: str,
    segment: str | None = None,
    month: str | None = None,
    levels: dict[str, float] | None = None,
) -> float:
    """The true expected outcome averaged over a segment-month's customer-months.

    Parameters
    ----------
    truth : dict
        The demo's truth (``truth.json``), with its ``customer_effects`` when it has them.
    panel : pandas.DataFrame
        The service panel (or any frame with its columns, e.g. survey responses).
    outcome : {"csat_mean", "csat_top2_rate", "complaint_rate_per_1k"}
        Mean CSAT, P(csat >= 4), or 1000 x the NB2 mean complaints per active user.
    segment, month : str, optional
        The rows averaged over (default: every segment, every month).
    levels : dict, optional
        Drivers set to a level (column -> value) in every row; the other drivers keep each
        row's own values. Lagged drivers still null (first month) are then filled with the
        current driver, as the truth's lag rule says, and derived terms (the expectation shortfall) are recomputed by the formula.

    Returns
    -------
    float
    """
    outcome = _check_outcome(outcome)
    rows = _rows(panel, segment, month)
    if levels:
        missing = [c for c in levels if c not in rows.columns]
        if missing:
            raise InputError(f"levels: {missing} are not panel columns")
        rows = rows.assign(**{c: float(v) for c, v in levels.items()})
    return float(np.mean(expected_outcome(truth, prepare_panel(rows, truth), outcome)))


def true_required_level(
    truth: dict[str, Any],
    panel: pd.DataFrame,
    outcome: str,
    target: float,
    lever: str = "latency_p95_ms",
    segment: str | None = None,
    month: str | None = None,
) -> float:
    """The lever level at which the true expected outcome of a segment-month hits a target.

    Solves ``true_outcome(truth, panel, outcome, segment, month, {lever: L}) == target`` for
    ``L > 0`` with :func:`scipy.optimize.brentq` on ``log(L)``.

    Parameters
    ----------
    truth, panel, outcome, segment, month
        As for :func:`true_outcome`.
    target : float
        The outcome wanted.
    lever : str
        A positive driver of the true formulas, e.g. ``latency_p95_ms``.

    Returns
    -------
    float
        The level ``L``.

    Raises
    ------
    InputError
        For a bad argument, or a target no level within 10**6 times the current median
        reaches (the message gives the range the outcome spans).

    Examples
    --------
    >>> true_required_level(truth, panel, "csat_mean", 4.3, segment="smb", month="2026-10")  # doctest: +SKIP
    """
    from scipy.optimize import brentq

    rows = _rows(panel, segment, month)
    if lever not in rows.columns:
        raise InputError(f"lever {lever!r}: not a panel column")
    try:
        target = float(target)
    except (TypeError, ValueError):
        raise InputError(f"target {target!r}: must be a number") from None
    if not math.isfinite(target):
        raise InputError(f"target {target!r}: must be a finite number")
    current = float(rows[lever].median())
    if not current > 0:
        raise InputError(f"lever {lever!r}: its current median {current} is not positive")

    def gap(log_level: float) -> float:
        level = math.exp(log_level)
        return true_outcome(truth, rows, outcome, levels={lever: level}) - target

    low = math.log(current) - _BRACKET_DECADES * math.log(10)
    high = math.log(current) + _BRACKET_DECADES * math.log(10)
    at_low, at_high = gap(low), gap(high)
    if at_low * at_high > 0:
        span = sorted((at_low + target, at_high + target))
        raise InputError(
            f"target {target}: not reachable with {lever} (the true {outcome} spans "
            f"{span[0]:.4g} to {span[1]:.4g})"
        )
    return math.exp(brentq(gap, low, high, xtol=1e-12, rtol=1e-12))
