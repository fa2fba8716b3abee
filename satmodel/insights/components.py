"""Which IT components and which recurring problems cost satisfaction and complaints.

For each component (problem) the panel's downtime is recomputed as the union of the
*remaining* incidents (:func:`satmodel.features.components.downtime_without`), availability
and last month's downtime follow, and the fitted **within-customer** models predict every
affected customer-month again with each customer's persistent part held at its own mean:

- ``csat_points``: the rise of the average CSAT over all survey responses of the months;
- ``complaints_per_month``: the complaints the complaint model puts on that downtime, per month.

Intervals come from parameter draws: N(estimate, covariance_) of the fitted models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from satmodel.calendar import check_month, minutes_in_month, month_at, month_index
from satmodel.errors import InputError
from satmodel.features.components import (
    component_summary,
    downtime_total,
    downtime_without,
    problem_summary,
)
from satmodel.models import default_formulas, fit

WITHIN = "customer_id"
COMPONENT_ROW_KEYS = (
    "component_id",
    "name",
    "kind",
    "incidents",
    "customers_affected",
    "downtime_minutes",
    "csat_points",
    "csat_points_ci_low",
    "csat_points_ci_high",
    "complaints_per_month",
    "complaints_per_month_ci_low",
    "complaints_per_month_ci_high",
    "failed_changes",
)
PROBLEM_ROW_KEYS = (
    "problem_id",
    "incidents",
    "customers_affected",
    "downtime_minutes",
    "csat_points",
    "csat_points_ci_low",
    "csat_points_ci_high",
    "complaints_per_month",
    "first_seen",
    "last_seen",
)


def fit_within_models(responses: pd.DataFrame | None, panel: pd.DataFrame) -> dict:
    """The default CSAT (ordinal) and complaint (NB2) models, fitted within customers.

    Returns
    -------
    dict of FitResult
        ``csat`` when there are responses, ``complaints`` when the panel has complaints and
        active users.
    """
    models = {}
    if responses is not None and len(responses):
        formula = default_formulas(responses.columns)["csat"]
        models["csat"] = fit(responses, formula, "ordinal", cluster=WITHIN, within=WITHIN)
    if "complaints" in panel.columns and "active_users" in panel.columns:
        data = panel.loc[pd.to_numeric(panel["active_users"], errors="coerce") > 0]
        formula = default_formulas(panel.columns)["complaints"]
        models["complaints"] = fit(
            data, formula, "negbin", exposure="active_users", cluster=WITHIN, within=WITHIN
        )
    if not models:
        raise InputError("surveys: no responses and no complaints to attribute downtime to")
    return models


def parameter_draws(result, n: int, rng: np.random.Generator) -> np.ndarray:
    """Row 0 the estimate, then ``n`` draws from N(estimate, covariance_).

    Columns: the design columns (within fits: the mean terms too), then the cutpoints.
    """
    terms = pd.concat([result.coefficients_, result.mundlak_terms_], ignore_index=True)
    beta = terms.set_index("term")["estimate"].reindex(result.design_columns_).to_numpy(float)
    cuts = result.thresholds_["estimate"].to_numpy(dtype=float)
    theta = np.concatenate((np.where(np.isfinite(beta), beta, 0.0), cuts))
    names = list(result.design_columns_) + list(result.thresholds_["term"])
    cov = result.covariance_.loc[names, names].to_numpy(dtype=float)
    cov = np.where(np.isfinite(cov), cov, 0.0)
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2.0)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    sims = theta + rng.standard_normal((n, len(theta))) @ root.T
    return np.vstack((theta, sims))


def _outcome(result, X: np.ndarray, theta: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Expected CSAT (ordinal) or complaints (count) of rows X for parameter rows theta."""
    k = X.shape[1]
    eta = X @ theta[:, :k].T  # rows x draws
    if result.family == "ordinal":
        cuts = np.sort(theta[:, k:], axis=1)  # draws x cuts
        values = np.asarray(result.level_values_, dtype=float)
        cdf = special.expit(cuts.T[None, :, :] - eta[:, None, :])  # rows x cuts x draws
        return values[-1] - np.einsum("rcd,c->rd", cdf, np.diff(values))
    return np.exp(eta + offset[:, None])


def counterfactual(panel: pd.DataFrame, left: pd.DataFrame, timezone: str = "UTC") -> pd.DataFrame:
    """The panel rows a group's downtime touches, with the downtime that is left.

    Parameters
    ----------
    panel : the service panel.
    left : customer_id, month, downtime_minutes (what is left) for the customer-months the
        group's incidents shared time with.
    timezone : the panel's ``[calendar] timezone``, whose month lengths availability uses.

    Returns
    -------
    DataFrame
        Those panel rows and the rows of the month after (their lagged columns change), with
        downtime_minutes, availability_pct and their ``_lag1`` copies recomputed; the index is
        the panel's.
    """

    def keyed(customers: pd.Series, months: pd.Series) -> pd.Series:
        return customers.astype(str) + "\x1f" + months.astype(str)

    def shifted(months: pd.Series, step: int) -> pd.Series:
        return months.astype(str).map(lambda m: month_at(month_index(m) + step))

    def availability(down: pd.Series, months: pd.Series) -> pd.Series:
        minutes = months.astype(str).map(lambda m: minutes_in_month(m, timezone)).astype(float)
        return 100.0 * (1.0 - down / minutes)

    new = pd.Series(
        left["downtime_minutes"].to_numpy(float),
        index=keyed(left["customer_id"], left["month"]),
    )
    keys = keyed(panel["customer_id"], panel["month"])
    touched = keys.isin(new.index) | keys.isin(
        keyed(left["customer_id"], shifted(left["month"], 1))
    )
    rows = panel.loc[touched].copy()
    own = keys[touched].map(new)
    down = own.where(own.notna(), rows["downtime_minutes"]).astype(float)
    before = shifted(rows["month"], -1)
    was = keyed(rows["customer_id"], before).map(new)
    values = {
        "downtime_minutes": (down, was),
        "availability_pct": (availability(down, rows["month"]), availability(was, before)),
    }
    for column, (current, lagged) in values.items():
        if column in rows.columns:
            rows[column] = current
        lag = f"{column}_lag1"
        if lag in rows.columns:
            rows[lag] = lagged.where(was.notna(), rows[lag])
    return rows


@dataclass
class _Rows:
    """The panel rows of the months, as one model sees them."""

    result: object
    X: np.ndarray
    index: pd.Index
    weight: np.ndarray
    offset: np.ndarray
    theta: np.ndarray
    base: np.ndarray = field(init=False)

    def __post_init__(self):
        self.base = _outcome(self.result, self.X, self.theta, self.offset)


def _model_rows(result, rows: pd.DataFrame, weight: pd.Series, theta) -> _Rows:
    design = result.design_matrix(rows)
    offset = np.zeros(len(design))
    if result.exposure is not None:
        offset = np.log(rows.loc[design.index, result.exposure].to_numpy(dtype=float))
    return _Rows(
        result,
        design.to_numpy(dtype=float),
        design.index,
        weight.loc[design.index].to_numpy(dtype=float),
        offset,
        theta,
    )


def _change(model: _Rows, rows: pd.DataFrame, total: float) -> np.ndarray:
    """Weighted sum of (outcome now - outcome without the group) per draw, over ``total``."""
    rows = rows.loc[rows.index.intersection(model.index)]
    if rows.empty or total <= 0:
        return np.zeros(model.theta.shape[0])
    design = model.result.design_matrix(rows)
    position = model.index.get_indexer(design.index)
    X = design.to_numpy(dtype=float)
    without = _outcome(model.result, X, model.theta, model.offset[position])
    return (model.weight[position] @ (without - model.base[position])) / total


def attribute(
    source,
    panel: pd.DataFrame,
    responses: pd.DataFrame | None,
    key: str,
    months: tuple[str, str],
    models: dict | None = None,
    n_draws: int = 200,
    ci: float = 0.95,
    seed: int = 0,
    ids: Callable[[pd.Series], pd.Series] | None = None,
) -> pd.DataFrame:
    """The satisfaction and complaints each component's (problem's) downtime costs.

    Parameters
    ----------
    source : the source the panel was built from.
    panel, responses : the service panel and the survey responses (with panel columns).
    key : ``component_id`` or ``problem_id``.
    months : first and last month (``YYYY-MM``) whose responses and complaints count.
    models : within-customer fits (``csat``, ``complaints``); :func:`fit_within_models` when
        None.
    n_draws : parameter draws for the intervals.
    ci : interval level.
    seed : seed of the draws.
    ids : maps the source's customer ids to the panel's (a pseudonymised panel); None: the
        panel holds the source's ids.

    Returns
    -------
    DataFrame
        ``key``, csat_points, csat_points_ci_low, csat_points_ci_high (rise of the average
        CSAT over all responses of the months), complaints_per_month (+ ci_low, ci_high);
        sorted by csat_points, largest first. NaN for an outcome without a model.
    """
    first, last = check_month(months[0]), check_month(months[1])
    if not 0 < ci < 1:
        raise InputError(f"ci: must be between 0 and 1, got {ci!r}")
    models = models if models is not None else fit_within_models(responses, panel)
    rng = np.random.default_rng(seed)
    inside = panel["month"].astype(str).between(first, last)
    rows = panel.loc[inside]
    n_months = month_index(last) - month_index(first) + 1
    evaluated = {}
    if "csat" in models and responses is not None:
        count = responses.groupby(["customer_id", "month"]).size().rename("_n")
        weight = rows[["customer_id", "month"]].join(count, on=["customer_id", "month"])["_n"]
        weight = weight.fillna(0.0)
        answered = weight > 0  # rows without responses weigh nothing (nor were they fitted)
        theta = parameter_draws(models["csat"], n_draws, rng)
        model = _model_rows(models["csat"], rows.loc[answered], weight.loc[answered], theta)
        evaluated["csat_points"] = (model, float(model.weight.sum()))
    if "complaints" in models:
        users = pd.to_numeric(rows["active_users"], errors="coerce")
        counted = rows.loc[users > 0]
        theta = parameter_draws(models["complaints"], n_draws, rng)
        model = _model_rows(models["complaints"], counted, pd.Series(1.0, counted.index), theta)
        # complaints it causes: now minus without, per month (sign flipped below)
        evaluated["complaints_per_month"] = (model, -float(n_months))
    left = downtime_without(source, key, first, last)
    zone = source.config.calendar.timezone
    if ids is not None:
        left = left.assign(customer_id=ids(left["customer_id"]))
    alpha = (1 - ci) / 2
    out = []
    for group, lost in left.groupby(key, sort=True):
        changed = counterfactual(panel, lost, zone).loc[lambda d, i=inside: i.loc[d.index]]
        record = {key: group}
        for name in ("csat_points", "complaints_per_month"):
            if name not in evaluated:
                record.update({name: np.nan, f"{name}_ci_low": np.nan, f"{name}_ci_high": np.nan})
                continue
            model, total = evaluated[name]
            values = _change(model, changed, abs(total)) * np.sign(total)
            record[name] = float(values[0])
            record[f"{name}_ci_low"] = float(np.quantile(values[1:], alpha)) if n_draws else np.nan
            record[f"{name}_ci_high"] = (
                float(np.quantile(values[1:], 1 - alpha)) if n_draws else np.nan
            )
        out.append(record)
    columns = [key] + [
        f"{n}{s}"
        for n in ("csat_points", "complaints_per_month")
        for s in ("", "_ci_low", "_ci_high")
    ]
    frame = pd.DataFrame(out, columns=columns)
    frame = frame.sort_values(["csat_points", key], ascending=[False, True], kind="stable")
    return frame.reset_index(drop=True)


@dataclass
class ComponentsResult:
    """Components and problems ranked by the satisfaction they cost.

    Attributes
    ----------
    month : the month asked for, or None for the whole data window.
    months : first and last month counted.
    components_, problems_ : one row per component (problem): telemetry and attribution,
        sorted by csat_points, largest first.
    total_downtime_minutes_ : customer-minutes of downtime (union over every incident).
    models_ : the within-customer fits used.
    """

    month: str | None
    months: tuple[str, str]
    components_: pd.DataFrame
    problems_: pd.DataFrame
    total_downtime_minutes_: float
    models_: dict

    def to_dict(self) -> dict:
        """The ``components --json`` document."""
        return {
            "month": self.month,
            "first_month": self.months[0],
            "last_month": self.months[1],
            "total_downtime_minutes": self.total_downtime_minutes_,
            "components": _records(self.components_),
            "problems": _records(self.problems_),
        }


def _records(frame: pd.DataFrame) -> list[dict]:
    out = []
    for row in frame.to_dict(orient="records"):
        clean = {}
        for name, value in row.items():
            if isinstance(value, pd.Timestamp):
                clean[name] = value.isoformat()
            elif isinstance(value, float | np.floating):
                clean[name] = float(value) if np.isfinite(value) else None
            elif isinstance(value, np.integer):
                clean[name] = int(value)
            elif value is None or (not isinstance(value, str) and pd.isna(value)):
                clean[name] = None
            else:
                clean[name] = value
        out.append(clean)
    return out


def component_costs(
    source,
    panel: pd.DataFrame,
    responses: pd.DataFrame | None,
    month: str | None = None,
    models: dict | None = None,
    n_draws: int = 200,
    seed: int = 0,
    ids: Callable[[pd.Series], pd.Series] | None = None,
) -> ComponentsResult:
    """Every component and recurring problem with its telemetry and the satisfaction it costs.

    Parameters
    ----------
    source : satmodel.sources.Source (quarantined), with an incidents table.
    panel, responses : the service panel and the survey responses of ``source``.
    month : ``YYYY-MM``: count that month's responses and complaints; None: the whole window.
    models : within-customer fits; :func:`fit_within_models` when None.
    n_draws, seed : parameter draws of the intervals.
    ids : maps the source's customer ids to the panel's (see :func:`attribute`).

    Returns
    -------
    ComponentsResult

    Raises
    ------
    InputError
        When the month is outside the data, or the source has no incidents table.
    """
    window = (str(panel["month"].min()), str(panel["month"].max()))
    if month is not None:
        month = check_month(month)
        if not window[0] <= month <= window[1]:
            raise InputError(f"month {month}: outside the data's months {window[0]}..{window[1]}")
    months = (month, month) if month is not None else window
    models = models if models is not None else fit_within_models(responses, panel)
    kwargs = {"models": models, "n_draws": n_draws, "seed": seed, "ids": ids}
    summary = component_summary(source, *months)
    costs = attribute(source, panel, responses, "component_id", months, **kwargs)
    components = summary.merge(costs, on="component_id", how="left")
    problems = problem_summary(source, *months)
    problem_costs = attribute(source, panel, responses, "problem_id", months, **kwargs)
    problems = problems.merge(problem_costs, on="problem_id", how="left")
    order = {"ascending": [False, True], "kind": "stable", "na_position": "last"}
    components = components.sort_values(["csat_points", "component_id"], **order)
    problems = problems.sort_values(["csat_points", "problem_id"], **order)
    return ComponentsResult(
        month=month,
        months=months,
        components_=components.reset_index(drop=True),
        problems_=problems.reset_index(drop=True),
        total_downtime_minutes_=downtime_total(source, *months),
        models_=models,
    )
