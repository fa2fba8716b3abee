"""Shared machinery of :mod:`satmodel.insights`: levers, held profiles, outcome evaluation.

Levers and their links
----------------------
A *lever* is a service metric the IT team can commit to. Setting a lever in a scenario also
sets the columns that follow from it:

* ``availability_pct = a`` sets ``downtime_minutes = (100 - a) / 100 * MINUTES_PER_MONTH``
  (a 30.44-day month, 43,833.6 minutes), and ``downtime_minutes = d`` sets
  ``availability_pct = 100 * (1 - d / MINUTES_PER_MONTH)``;
* every set column's ``<column>_lag1`` takes the same value: a committed service level holds
  every month (steady state).

Physical ranges: availability 0..100 %, downtime 0..a month, latency >= 1 ms (a floor for the
log terms), resolution hours >= 0, error rate 0..1.

Held ("current") profile
------------------------
Drivers that are not levers are held at the *current* values of the segment or customer:

* a customer: the median of each column over the customer's last ``window`` months of the
  panel (default: the latest month); a column with no value there falls back to the
  customer's median over all months, then to the segment's;
* a segment: the median over the segment's customer-months in the last ``window`` months
  (fallback: the segment's median over all months, then the whole panel's); the expected_*
  columns are the median over the segment's customers;
* no segment and no customer: one profile per segment, weighted by its number of customers;
  outcomes are the customer-weighted average over segments.

In every profile ``<metric>_lag1 = <metric>`` (steady state: last month looked like this one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from satmodel.errors import InputError

MINUTES_PER_MONTH = 30.44 * 24 * 60
OUTCOMES = ("csat_mean", "csat_top2_rate", "complaint_rate_per_1k")
OUTCOME_UNITS = {
    "csat_mean": "CSAT points (1-5)",
    "csat_top2_rate": "share of responses with CSAT >= 4",
    "complaint_rate_per_1k": "complaints per 1,000 active users per month",
}
# for satisfaction outcomes the target is a floor ("at least"); for complaints a ceiling
OUTCOME_DIRECTION = {"csat_mean": 1, "csat_top2_rate": 1, "complaint_rate_per_1k": -1}
EXPECTED_COLUMNS = (
    "expected_availability_pct",
    "expected_latency_p95_ms",
    "expected_resolution_hours",
)


@dataclass(frozen=True)
class Lever:
    """A service level the team can commit to.

    Attributes
    ----------
    name : panel column.
    low, high : physical range (``high=None``: unbounded; searched up to 10x the observed max).
    better : ``"higher"`` or ``"lower"``: which direction improves the service.
    unit : unit label for tables and plots.
    scale : grid spacing used by the solver (``"log"``, ``"downtime"``: log1p of the implied
        downtime, ``"linear"``).
    """

    name: str
    low: float
    high: float | None
    better: str
    unit: str
    scale: str
    label: str


LEVERS: dict[str, Lever] = {
    "availability_pct": Lever(
        "availability_pct", 0.0, 100.0, "higher", "%", "downtime", "availability"
    ),
    "downtime_minutes": Lever(
        "downtime_minutes", 0.0, MINUTES_PER_MONTH, "lower", "minutes/month", "log1p", "downtime"
    ),
    "latency_p95_ms": Lever("latency_p95_ms", 1.0, None, "lower", "ms", "log", "p95 latency"),
    "resolution_hours_median": Lever(
        "resolution_hours_median", 0.0, None, "lower", "hours", "log1p", "median resolution time"
    ),
    "error_rate": Lever(
        "error_rate", 0.0, 1.0, "lower", "share of requests", "linear", "error rate"
    ),
}


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
            f"e.g. {valid[0] if valid else 'latency_p95_ms'})"
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
        )
    return str(segment)


def check_customer(customer, panel: pd.DataFrame):
    """Validate a customer id against ``panel.customer_id``."""
    if customer is None:
        return None
    ids = panel["customer_id"].astype(str)
    if str(customer) not in set(ids):
        raise InputError(
            f"customer {customer!r}: not found in panel column 'customer_id' (e.g. {ids.iloc[0]!r})"
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


def _numeric_columns(panel: pd.DataFrame) -> list[str]:
    return [
        c
        for c in panel.columns
        if pd.api.types.is_numeric_dtype(panel[c]) and not pd.api.types.is_bool_dtype(panel[c])
    ]


def _steady_state(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if column.endswith("_lag1") and column[:-5] in frame.columns:
            frame[column] = frame[column[:-5]]
    return frame


def _last_months(panel: pd.DataFrame, window: int, month: str | None) -> list[str]:
    months = sorted(panel["month"].dropna().astype(str).unique())
    if month is not None:
        if str(month) not in months:
            raise InputError(f"month {month!r}: not in panel column 'month' (e.g. {months[-1]!r})")
        months = [m for m in months if m <= str(month)]
    if window < 1:
        raise InputError(f"window: must be >= 1 month, got {window!r}")
    return months[-window:]


def current_profile(
    panel: pd.DataFrame,
    segment: str | None = None,
    customer: str | None = None,
    window: int = 1,
    month: str | None = None,
) -> pd.DataFrame:
    """The held ("current") driver values of a segment, a customer or every segment.

    Parameters
    ----------
    panel : DataFrame
        The service panel.
    segment, customer : str, optional
        Whose current values; neither gives one row per segment.
    window : int
        Months (ending at ``month`` or the panel's last month) whose values are summarised.
    month : str, optional
        Last month of the window (``YYYY-MM``).

    Returns
    -------
    DataFrame
        One row per profile: the panel's columns (numeric ones as medians, lags equal to
        the current values), plus ``profile`` (segment or customer id), ``weight``
        (customers represented) and ``n_customers``.
    """
    segment = check_segment(segment, panel)
    customer = check_customer(customer, panel)
    months = _last_months(panel, window, month)
    numeric = [c for c in _numeric_columns(panel) if not c.endswith("_lag1")]
    data = panel.assign(customer_id=panel["customer_id"].astype(str))
    recent = data[data["month"].astype(str).isin(months)]

    def summarise(rows: pd.DataFrame, fallbacks: list[pd.DataFrame]) -> dict:
        values = rows[numeric].median(numeric_only=True)
        for fallback in fallbacks:
            missing = values.index[values.isna()]
            if len(missing) == 0:
                break
            values[missing] = fallback[missing].median(numeric_only=True)
        row = values.to_dict()
        for col in ("segment", "region", "tier"):
            if col in rows.columns:
                mode = rows[col].dropna().astype(str).mode()
                row[col] = mode.iloc[0] if len(mode) else None
        return row

    rows = []
    if customer is not None:
        mine = data[data["customer_id"] == customer]
        seg = str(mine["segment"].iloc[0]) if "segment" in mine.columns else None
        seg_rows = data[data["segment"].astype(str) == seg] if seg is not None else data
        row = summarise(recent[recent["customer_id"] == customer], [mine, seg_rows, data])
        if "segment" in mine.columns:
            row["segment"] = seg
        row.update(customer_id=customer, profile=customer, weight=1.0, n_customers=1)
        rows.append(row)
    else:
        segments = (
            [segment]
            if segment is not None
            else sorted(data["segment"].dropna().astype(str).unique())
            if "segment" in data.columns
            else [None]
        )
        for seg in segments:
            mask_all = data["segment"].astype(str) == seg if seg is not None else data.index >= 0
            seg_all = data[mask_all]
            seg_recent = recent[recent["segment"].astype(str) == seg] if seg is not None else recent
            row = summarise(seg_recent, [seg_all, data])
            per_customer = seg_all.groupby("customer_id")[
                [c for c in EXPECTED_COLUMNS if c in seg_all.columns]
            ].first()
            for col in per_customer.columns:
                med = per_customer[col].median()
                if np.isfinite(med):
                    row[col] = med
            n = int(seg_all["customer_id"].nunique())
            if seg is not None:
                row["segment"] = seg
            row.update(profile=seg if seg is not None else "all", weight=float(n), n_customers=n)
            rows.append(row)
    profile = _steady_state(pd.DataFrame(rows))
    for column in panel.columns:
        if column.endswith("_lag1") and column not in profile.columns and column[:-5] in profile:
            profile[column] = profile[column[:-5]]
    if "month" in panel.columns:
        profile["month"] = months[-1]
    # keep availability and downtime consistent with the lever link
    if {"availability_pct", "downtime_minutes"} <= set(profile.columns):
        profile = set_levers(profile, {"downtime_minutes": profile["downtime_minutes"]})
    return profile.reset_index(drop=True)


# --------------------------------------------------------------------------------------
# outcome evaluation over parameter draws
# --------------------------------------------------------------------------------------


def _model_for(models: dict, outcome: str, top2_model: str = "ordinal"):
    check_outcome(outcome)
    if outcome == "complaint_rate_per_1k":
        key = "complaints"
    elif outcome == "csat_top2_rate" and top2_model == "logit":
        key = "top2"
    elif outcome == "csat_top2_rate" and top2_model != "ordinal":
        raise InputError(f"top2_model {top2_model!r}: must be 'ordinal' or 'logit'")
    else:
        key = "csat"
    if key not in models:
        raise InputError(
            f"models: no {key!r} model for outcome {outcome!r} (have: {', '.join(models)})"
        )
    return models[key]


class OutcomeModel:
    """One outcome of a fitted model, evaluated for many parameter vectors at once.

    Parameters
    ----------
    models : dict of FitResult
        As returned by :func:`satmodel.models.fit_default_models`.
    outcome : {"csat_mean", "csat_top2_rate", "complaint_rate_per_1k"}
    top2_model : {"ordinal", "logit"}
        ``csat_top2_rate`` from the ordinal CSAT model (P(csat >= 4), default; consistent
        with ``csat_mean``) or from the separate top-2 logit.
    satisfied_cutoff : int
        CSAT at or above this is "top-2".
    """

    def __init__(self, models: dict, outcome: str, top2_model: str = "ordinal", satisfied_cutoff=4):
        self.outcome = outcome
        self.result = _model_for(models, outcome, top2_model)
        res = self.result
        self.family = res.family
        beta = res.coefficients_["estimate"].to_numpy(dtype=float)
        self.estimated = np.isfinite(beta)
        self.k = len(beta)
        names = list(res.coefficients_["term"]) + list(res.thresholds_["term"])
        theta = np.concatenate(
            (np.where(self.estimated, beta, 0.0), res.thresholds_["estimate"].to_numpy(float))
        )
        cov = res.covariance_.loc[names, names].to_numpy(dtype=float)
        cov = np.where(np.isfinite(cov), cov, 0.0)
        self.theta = theta
        self.cov = (cov + cov.T) / 2.0
        self.names = names
        if self.family == "ordinal":
            values = np.asarray(res.level_values_, dtype=float)
            self.values = values
            below = int(np.sum(values < satisfied_cutoff))
            if below == 0 or below == len(values):
                raise InputError(
                    f"satisfied_cutoff {satisfied_cutoff}: CSAT levels {list(values)} leave no "
                    f"top-2 split"
                )
            self.top_cut = below - 1
        elif outcome in ("csat_mean",) or self.family not in ("logit", "negbin", "poisson"):
            raise InputError(f"model {self.family!r} cannot give outcome {outcome!r}")

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
        design = self.result.design_matrix(frame)
        if len(design) != len(frame):
            cols = [c for c in frame.columns if frame[c].isna().any()]
            raise InputError(
                f"scenario: {len(frame) - len(design)} rows have missing drivers "
                f"(columns {cols[:5]})"
            )
        return design.to_numpy(dtype=float)

    def evaluate(self, X: np.ndarray, theta: np.ndarray, pairwise: bool = False) -> np.ndarray:
        """Outcome for rows ``X`` and parameter rows ``theta``.

        Returns (rows, draws), or (rows,) with ``pairwise=True`` (row i with draw i).
        """
        theta = np.atleast_2d(theta)
        beta = theta[:, : self.k]
        eta = np.einsum("ij,ij->i", X, beta) if pairwise else X @ beta.T
        if self.family == "ordinal":
            cuts = np.sort(theta[:, self.k :], axis=1)
            # pairwise: rows x cuts; else rows x cuts x draws
            z = cuts - eta[:, None] if pairwise else cuts.T[None, :, :] - eta[:, None, :]
            cdf = special.expit(z)
            axis = 1
            if self.outcome == "csat_mean":
                steps = np.diff(self.values)
                shape = (1, -1) if pairwise else (1, -1, 1)
                return self.values[-1] - np.sum(cdf * steps.reshape(shape), axis=axis)
            return 1.0 - np.take(cdf, self.top_cut, axis=axis)
        if self.family == "logit":
            return special.expit(eta)
        return 1000.0 * np.exp(eta)

    def probabilities(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Ordinal level probabilities: (rows, levels, draws)."""
        theta = np.atleast_2d(theta)
        eta = X @ theta[:, : self.k].T
        cuts = np.sort(theta[:, self.k :], axis=1)
        cdf = special.expit(cuts.T[None, :, :] - eta[:, None, :])
        n_rows, _, n_draws = cdf.shape
        zeros = np.zeros((n_rows, 1, n_draws))
        cum = np.concatenate((zeros, cdf, zeros + 1.0), axis=1)
        return np.diff(cum, axis=1)


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


def customer_profiles(
    panel: pd.DataFrame, window: int = 1, month: str | None = None
) -> pd.DataFrame:
    """Current values of every customer at once (the customer rule of :func:`current_profile`).

    Numeric columns are the median over the customer's last ``window`` months; a column
    without a value there falls back to the customer's median over all months, then to the
    segment's median. Lags equal the current values (steady state).

    Returns
    -------
    DataFrame
        One row per customer_id with ``profile`` (= customer_id) and ``weight`` (1).
    """
    months = _last_months(panel, window, month)
    numeric = [c for c in _numeric_columns(panel) if not c.endswith("_lag1")]
    data = panel.assign(customer_id=panel["customer_id"].astype(str))
    data = data[data["month"].astype(str) <= months[-1]]
    recent = data[data["month"].astype(str).isin(months)]
    current = recent.groupby("customer_id")[numeric].median()
    overall = data.groupby("customer_id")[numeric].median()
    current = current.reindex(overall.index).fillna(overall)
    context = data.groupby("customer_id")[
        [c for c in ("segment", "region", "tier") if c in data.columns]
    ].last()
    out = current.join(context)
    if "segment" in out.columns:
        seg_median = data.groupby("segment")[numeric].median()
        fill = seg_median.reindex(out["segment"].astype(str)).set_axis(out.index)
        out[numeric] = out[numeric].fillna(fill)
    out = out.reset_index()
    out["profile"] = out["customer_id"]
    out["weight"] = 1.0
    out["n_customers"] = 1
    out["month"] = months[-1]
    for column in panel.columns:
        if column.endswith("_lag1") and column[:-5] in out.columns:
            out[column] = out[column[:-5]]
    if {"availability_pct", "downtime_minutes"} <= set(out.columns):
        out = set_levers(out, {"downtime_minutes": out["downtime_minutes"].to_numpy(float)})
    return out
