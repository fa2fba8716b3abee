"""Shared machinery of :mod:`satmodel.insights`: levers, held customer-months, outcomes.

Levers and their links
----------------------
A *lever* is a service metric the IT team can commit to (:data:`satmodel.vocabulary.LEVERS`).
Setting a lever in a scenario sets it in every held customer-month, with the columns that
follow from it:

* ``availability_pct = a`` sets ``downtime_minutes = (100 - a) / 100 * MINUTES_PER_MONTH``
  (a 30.44-day month, 43,833.6 minutes), and ``downtime_minutes = d`` sets
  ``availability_pct = 100 * (1 - d / MINUTES_PER_MONTH)``;
* every set column's ``<column>_lag1`` takes the same value: a committed service level holds
  every month (steady state).

Physical ranges: availability 0..100 %, downtime 0..a month, latency >= 1 ms (a floor for the
log terms), resolution hours >= 0, error rate 0..1.

Held customer-months ("now")
----------------------------
An answer for a segment, a customer or everyone is the average of the model's expected
outcome over their **real customer-months** of the month (default: the panel's last month;
``window`` months ending there), never over a made-up median profile:

* a segment: each of its customer-months of the month, equally weighted;
* a customer: its customer-month(s) of the month;
* neither: every customer-month of the month.

Each row keeps its own drivers and expectations. A driver without a measurement that month
(no tickets: no resolution time) is held at the customer's median over its months (then the
segment's, then the panel's); a lag without a previous month equals the current value.

A within-customer model (:func:`satmodel.models.fit` with ``within="customer_id"``) holds
each customer's *persistent part* (its ``mean(...)`` terms) at its own value: a counterfactual
moves the lever, not who the customer is. A customer the model was not fitted on (e.g. never
surveyed) gets the means of its own panel rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from satmodel.errors import InputError
from satmodel.hints import did_you_mean
from satmodel.models.defaults import check_satisfied_cutoff, satisfied_cutoff_of
from satmodel.models.likelihoods import cdf_pdf
from satmodel.models.within import persistent_parts, with_persistent
from satmodel.vocabulary import (
    DEFAULT_SATISFIED_CUTOFF,
    DRIVERS,
    EXPECTED_COLUMNS,
    LEVERS,
    MINUTES_PER_MONTH,
    OUTCOME_DIRECTION,
    OUTCOME_UNITS,
    OUTCOMES,
    Lever,
)

__all__ = [
    "EXPECTED_COLUMNS",
    "LEVERS",
    "MINUTES_PER_MONTH",
    "OUTCOMES",
    "OUTCOME_DIRECTION",
    "OUTCOME_UNITS",
    "Lever",
    "OutcomeModel",
    "check_ci",
    "check_customer",
    "check_lever",
    "check_outcome",
    "check_segment",
    "current_profile",
    "interval",
    "lever_bounds",
    "observed_range",
    "guaranteed_levels",
    "set_levers",
    "typical_level",
    "weighted",
]

# cap on the elements of one (rows x cutpoints x draws) block evaluated at once
_BLOCK = 4_000_000
# the driver columns a held customer-month needs (the default models' inputs)
_DRIVER_COLUMNS = tuple(dict.fromkeys(c for d in DRIVERS for c in d.columns if c != "segment"))


def check_outcome(outcome: str) -> str:
    """Validate an outcome name (InputError naming the valid ones)."""
    if outcome not in OUTCOMES:
        raise InputError(
            f"outcome {outcome!r}: not a supported outcome (valid: {', '.join(OUTCOMES)})"
        )
    return outcome


def check_lever(lever: str, panel: pd.DataFrame) -> Lever:
    """Validate a lever column against :data:`LEVERS` and the panel's columns."""
    valid = [name for name in LEVERS if name in panel.columns]
    if lever not in LEVERS or lever not in panel.columns:
        where = "is not in the panel" if lever in LEVERS else "is not a service lever"
        raise InputError(
            f"lever {lever!r}: column {where} (valid levers: {', '.join(valid) or 'none'}; "
            f"e.g. {valid[0] if valid else 'latency_p95_ms'}){did_you_mean(lever, valid)}"
        )
    return LEVERS[lever]


def check_segment(segment, panel: pd.DataFrame):
    """Validate a segment against ``panel.segment``."""
    if segment is None:
        return None
    if "segment" not in panel.columns:
        raise InputError("panel: column 'segment' not found (needed for --segment)")
    known = sorted(str(s) for s in panel["segment"].dropna().unique())
    if str(segment) not in known:
        raise InputError(
            f"segment {segment!r}: not found in panel column 'segment' "
            f"(valid: {', '.join(known)}; e.g. {known[0] if known else 'smb'})"
            f"{did_you_mean(segment, known)}"
        )
    return str(segment)


def check_customer(customer, panel: pd.DataFrame):
    """Validate a customer id against ``panel.customer_id``."""
    if customer is None:
        return None
    ids = panel["customer_id"].astype(str)
    known = set(ids)
    if str(customer) not in known:
        raise InputError(
            f"customer {customer!r}: not found in panel column 'customer_id' (e.g. {ids.iloc[0]!r})"
            f"{did_you_mean(customer, known)}"
        )
    return str(customer)


# --------------------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------------------


def lever_bounds(lever: Lever, panel: pd.DataFrame) -> tuple[float, float]:
    """Search range of a lever: its physical range, unbounded ends at 10x the observed max."""
    high = lever.high
    if high is None:
        observed = pd.to_numeric(panel[lever.name], errors="coerce").max()
        high = 10.0 * float(observed) if np.isfinite(observed) and observed > 0 else 1e6
    return float(lever.low), float(high)


def observed_range(lever: Lever, panel: pd.DataFrame) -> tuple[float, float]:
    """Observed min and max of the lever in the panel."""
    values = pd.to_numeric(panel[lever.name], errors="coerce")
    return float(values.min()), float(values.max())


def set_levers(frame: pd.DataFrame, levels: dict) -> pd.DataFrame:
    """Copy of ``frame`` with lever columns set, linked columns and lags following.

    Parameters
    ----------
    frame : DataFrame
        Scenario rows.
    levels : dict
        Column -> value (scalar or array of len(frame)).
    """
    out = frame.copy()
    for column, value in levels.items():
        value = np.asarray(value, dtype=float)
        assigned = {column: value}
        if column == "availability_pct":
            assigned["downtime_minutes"] = (100.0 - value) / 100.0 * MINUTES_PER_MONTH
        elif column == "downtime_minutes":
            assigned["availability_pct"] = 100.0 * (1.0 - value / MINUTES_PER_MONTH)
        for name, val in assigned.items():
            if name in out.columns or name == column:
                out[name] = val
            lag = f"{name}_lag1"
            if lag in out.columns:
                out[lag] = val
    return out


def guaranteed_levels(rows: pd.DataFrame, levels: dict) -> dict:
    """Levels as guarantees: per-row levels for :func:`set_levers` (and their lags).

    A guarantee is a floor for a lever where higher is better and a ceiling for one where
    lower is better: a customer-month already better than the level keeps its own value (a
    service tier promises at least 99.95 %, it does not take a month without downtime down to
    99.95 %). Columns that are not levers are set as given.
    """
    out = {}
    for column, level in levels.items():
        spec = LEVERS.get(column)
        if spec is None or column not in rows.columns:
            out[column] = level
            continue
        keep = np.maximum if spec.better == "higher" else np.minimum
        for name in (column, f"{column}_lag1"):
            if name in rows.columns:
                own = rows[name].to_numpy(dtype=float)
                out[name] = np.where(np.isnan(own), level, keep(own, level))
        if column == "availability_pct" and "downtime_minutes_lag1" in rows.columns:
            lag = out.get("availability_pct_lag1", out[column])
            out["downtime_minutes_lag1"] = (100.0 - lag) / 100.0 * MINUTES_PER_MONTH
    return out


def typical_level(column: str, values) -> float:
    """Today's level of a lever over customer-months, as a customer would read it.

    Availability is the mean (the share of minutes up, each month weighing the same: most
    months without downtime make the median 100 %, which no customer experienced over the
    year); any other lever the median customer-month (one bad month does not move it).
    NaN when no value is known.
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan")
    return float(values.mean() if column == "availability_pct" else np.median(values))


def _last_months(panel: pd.DataFrame, window: int, month: str | None) -> list[str]:
    months = sorted(panel["month"].dropna().astype(str).unique())
    if month is not None:
        if str(month) not in months:
            raise InputError(f"month {month!r}: not in panel column 'month' (e.g. {months[-1]!r})")
        months = [m for m in months if m <= str(month)]
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise InputError(f"window: must be a whole number of months >= 1, got {window!r}")
    return months[-int(window) :]


def current_profile(
    panel: pd.DataFrame,
    segment: str | None = None,
    customer: str | None = None,
    window: int = 1,
    month: str | None = None,
) -> pd.DataFrame:
    """The held customer-months of a segment, a customer or everyone (see the module notes).

    Parameters
    ----------
    panel : DataFrame
        The service panel.
    segment, customer : str, optional
        Whose customer-months; neither gives every customer-month.
    window : int
        Months (ending at ``month`` or the panel's last month) whose customer-months are held.
    month : str, optional
        Last month of the window (``YYYY-MM``).

    Returns
    -------
    DataFrame
        One row per real customer-month, the panel's columns (missing drivers filled as the
        module notes say), plus ``profile`` (segment, customer id or ``all``) and ``weight``
        (1: every customer-month counts the same).
    """
    segment = check_segment(segment, panel)
    customer = check_customer(customer, panel)
    months = _last_months(panel, window, month)
    data = panel.assign(customer_id=panel["customer_id"].astype(str))
    data = data[data["month"].astype(str) <= months[-1]]
    mine = data["month"].astype(str).isin(months)
    if customer is not None:
        mine &= data["customer_id"] == customer
    elif segment is not None:
        mine &= data["segment"].astype(str) == segment
    who = customer or segment or "all"
    rows = data[mine].copy()
    if rows.empty:
        raise InputError(f"panel: no customer-months of {who!r} in {months[0]}..{months[-1]}")
    for column in (c for c in _DRIVER_COLUMNS if c in rows.columns):
        if not rows[column].isna().any():
            continue
        values = pd.to_numeric(data[column], errors="coerce")
        by_customer = values.groupby(data["customer_id"]).median()
        rows[column] = rows[column].fillna(rows["customer_id"].map(by_customer))
        if "segment" in rows.columns:
            by_segment = values.groupby(data["segment"].astype(str)).median()
            rows[column] = rows[column].fillna(rows["segment"].astype(str).map(by_segment))
        rows[column] = rows[column].fillna(values.median())
    for column in rows.columns:
        if column.endswith("_lag1") and column[:-5] in rows.columns:
            rows[column] = rows[column].fillna(rows[column[:-5]])
    rows["profile"] = who
    rows["weight"] = 1.0
    return rows.reset_index(drop=True)


# --------------------------------------------------------------------------------------
# outcome evaluation over parameter draws
# --------------------------------------------------------------------------------------


def _model_key(models: dict, outcome: str, top2_model: str) -> str:
    check_outcome(outcome)
    if top2_model not in ("ordinal", "logit"):
        raise InputError(f"top2_model {top2_model!r}: must be 'ordinal' or 'logit'")
    if outcome == "complaint_rate_per_1k":
        key = "complaints"
    elif outcome == "csat_top2_rate" and top2_model == "logit":
        key = "top2"
    else:
        key = "csat"
    if key not in models:
        raise InputError(
            f"models: no {key!r} model for outcome {outcome!r} (have: {', '.join(models)})"
        )
    return key


class OutcomeModel:
    """One outcome of a fitted model, evaluated for many parameter vectors at once.

    Predictions go through the fit's own link (logit or probit) and, for a within-customer
    fit, hold each customer's persistent part (its ``mean(...)`` terms) at its own value.

    Parameters
    ----------
    models : dict of FitResult
        As returned by :func:`satmodel.models.fit_default_models`.
    outcome : {"csat_mean", "csat_top2_rate", "complaint_rate_per_1k"}
    top2_model : {"ordinal", "logit"}
        ``csat_top2_rate`` from the ordinal CSAT model (P(csat >= cutoff), default;
        consistent with ``csat_mean``) or from the separate top-2 logit.
    satisfied_cutoff : int, optional
        CSAT at or above this is "satisfied"; default: the cutoff the ``top2`` model was
        fitted with, else 4. The top-2 logit can only give its own cutoff.
    panel : DataFrame, optional
        The service panel: customers the within fit never saw get the means of their rows.
    """

    def __init__(
        self,
        models: dict,
        outcome: str,
        top2_model: str = "ordinal",
        satisfied_cutoff: int | None = None,
        panel: pd.DataFrame | None = None,
    ):
        self.outcome = outcome
        self.key = _model_key(models, outcome, top2_model)
        self.result = res = models[self.key]
        self.family = res.family
        self.link = res.link
        fitted_cutoff = satisfied_cutoff_of(models)
        if satisfied_cutoff is None:
            satisfied_cutoff = fitted_cutoff or DEFAULT_SATISFIED_CUTOFF
        self.satisfied_cutoff = check_satisfied_cutoff(satisfied_cutoff)
        if self.key == "top2" and fitted_cutoff not in (None, self.satisfied_cutoff):
            raise InputError(
                f"satisfied_cutoff {self.satisfied_cutoff}: the top-2 logit was fitted with "
                f"cutoff {fitted_cutoff}; refit it or use top2_model='ordinal'"
            )
        terms = pd.concat([res.coefficients_, res.mundlak_terms_], ignore_index=True)
        beta = terms.set_index("term")["estimate"].reindex(res.design_columns_).to_numpy(float)
        self.estimated = np.isfinite(beta)
        self.k = len(beta)
        names = list(res.design_columns_) + list(res.thresholds_["term"])
        theta = np.concatenate(
            (np.where(self.estimated, beta, 0.0), res.thresholds_["estimate"].to_numpy(float))
        )
        cov = res.covariance_.loc[names, names].to_numpy(dtype=float)
        cov = np.where(np.isfinite(cov), cov, 0.0)
        self.theta = theta
        self.cov = (cov + cov.T) / 2.0
        self.names = names
        self.n_cuts = len(res.thresholds_)
        if self.family == "ordinal":
            values = np.asarray(res.level_values_, dtype=float)
            self.values = values
            below = int(np.sum(values < self.satisfied_cutoff))
            if below == 0 or below == len(values):
                raise InputError(
                    f"satisfied_cutoff {self.satisfied_cutoff}: CSAT levels {list(values)} "
                    "leave no top-2 split"
                )
            self.top_cut = below - 1
        elif outcome == "csat_mean" or self.family not in ("logit", "negbin", "poisson"):
            raise InputError(f"model {self.family!r} cannot give outcome {outcome!r}")
        self.persistent = persistent_parts(self.result, panel)

    def _with_persistent(self, frame: pd.DataFrame) -> pd.DataFrame:
        return with_persistent(self.result, frame, self.persistent, f"the {self.key}")

    def predictable(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The rows the model can predict (every driver present, customer known)."""
        rows = rows.reset_index(drop=True)
        if self.persistent is not None and self.result.within_.column in rows.columns:
            known = rows[self.result.within_.column].astype(str).isin(self.persistent.index)
            rows = rows.loc[known].reset_index(drop=True)
        design = self.result.design_matrix(self._with_persistent(rows))
        if design.empty:
            raise InputError(
                f"scenario: none of the {len(rows)} held customer-months has every driver of "
                f"the {self.key} model"
            )
        return rows.loc[design.index].reset_index(drop=True)

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Parameter vectors: row 0 the estimate, then ``n`` draws from N(estimate, cov)."""
        if n <= 0:
            return self.theta[None, :]
        vals, vecs = np.linalg.eigh(self.cov)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        z = rng.standard_normal((n, len(self.theta)))
        sims = self.theta + z @ root.T
        return np.vstack((self.theta, sims))

    def design(self, frame: pd.DataFrame) -> np.ndarray:
        """Design matrix of scenario rows (every driver must be present)."""
        design = self.result.design_matrix(self._with_persistent(frame.reset_index(drop=True)))
        if len(design) != len(frame):
            cols = [c for c in frame.columns if frame[c].isna().any()]
            raise InputError(
                f"scenario: {len(frame) - len(design)} rows have missing drivers "
                f"(columns {cols[:5]})"
            )
        return design.to_numpy(dtype=float)

    def _rows_per_block(self, n_draws: int) -> int:
        return max(1, _BLOCK // (n_draws * max(self.n_cuts, 1)))

    def evaluate(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Outcome for rows ``X`` and parameter rows ``theta``: (rows, draws)."""
        theta = np.atleast_2d(theta)
        step = self._rows_per_block(len(theta))
        blocks = [self._evaluate(X[i : i + step], theta) for i in range(0, len(X), step)]
        return np.concatenate(blocks, axis=0) if blocks else np.empty((0, len(theta)))

    def _evaluate(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        eta = X @ theta[:, : self.k].T
        if self.family == "ordinal":
            cdf = self._cumulative(eta, theta)
            if self.outcome == "csat_mean":
                steps = np.diff(self.values)
                return self.values[-1] - np.einsum("rcs,c->rs", cdf, steps)
            return 1.0 - cdf[:, self.top_cut, :]
        if self.family == "logit":
            return cdf_pdf(eta, self.link)[0]
        return 1000.0 * np.exp(eta)

    def _cumulative(self, eta: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """P(csat <= level j): (rows, cutpoints, draws), through the fit's own link."""
        cuts = np.sort(theta[:, self.k :], axis=1)
        return cdf_pdf(cuts.T[None, :, :] - eta[:, None, :], self.link)[0]

    def probabilities(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Ordinal level probabilities: (rows, levels, draws)."""
        theta = np.atleast_2d(theta)
        cdf = self._cumulative(X @ theta[:, : self.k].T, theta)
        n_rows, _, n_draws = cdf.shape
        zeros = np.zeros((n_rows, 1, n_draws))
        cum = np.concatenate((zeros, cdf, zeros + 1.0), axis=1)
        return np.diff(cum, axis=1)

    def scenario_means(self, rows: pd.DataFrame, scenarios: list[dict], theta) -> np.ndarray:
        """Weighted mean outcome of ``rows`` under each scenario: (scenarios, draws).

        Each scenario maps lever columns to a level (scalar, or one value per row), set by
        :func:`set_levers`; the rows' ``weight`` column weighs them.
        """
        theta = np.atleast_2d(theta)
        weights = rows["weight"].to_numpy(dtype=float)
        weights = weights / weights.sum()
        n_rows = len(rows)
        per_chunk = max(1, self._rows_per_block(len(theta)) // max(n_rows, 1))
        out = []
        for start in range(0, len(scenarios), per_chunk):
            chunk = scenarios[start : start + per_chunk]
            values = self.evaluate(self.design(_scenario_frame(rows, chunk)), theta)
            values = values.reshape(len(chunk), n_rows, -1)
            out.append(np.einsum("grs,r->gs", values, weights))
        return np.concatenate(out, axis=0)


def _scenario_frame(rows: pd.DataFrame, scenarios: list[dict]) -> pd.DataFrame:
    """``rows`` once per scenario, each copy with its scenario's levers set.

    Scenarios that all set the same levers (a grid) are set in one call on the repeated
    rows: copying the frame once per scenario costs more than the model.
    """
    if len({frozenset(levels) for levels in scenarios}) != 1:
        return pd.concat([set_levers(rows, levels) for levels in scenarios], ignore_index=True)
    n_rows = len(rows)
    repeated = rows.iloc[np.tile(np.arange(n_rows), len(scenarios))].reset_index(drop=True)
    levels = {
        column: np.concatenate(
            [np.broadcast_to(np.asarray(s[column], dtype=float), (n_rows,)) for s in scenarios]
        )
        for column in scenarios[0]
    }
    return set_levers(repeated, levels)


def weighted(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted average over the first axis."""
    weights = np.asarray(weights, dtype=float)
    return np.tensordot(weights / weights.sum(), values, axes=(0, 0))


def interval(samples: np.ndarray, ci: float, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of simulation draws (NaN-aware)."""
    alpha = (1.0 - ci) / 2.0
    low = np.nanquantile(samples, alpha, axis=axis)
    high = np.nanquantile(samples, 1.0 - alpha, axis=axis)
    return low, high


def check_ci(ci: float) -> float:
    """Validate a confidence level."""
    if not 0 < ci < 1:
        raise InputError(f"ci: must be between 0 and 1, got {ci!r}")
    return float(ci)
