"""Satisfaction nowcast and forecast: predicted CSAT for every customer-month, surveyed or not.

:func:`nowcast` gives, for every row of the panel, the expected CSAT score and the top-2
probability P(csat >= cutoff) of the ordinal CSAT model, with delta-method intervals (the
top-2 interval is computed on the scale of the fit's link and transformed back): what the
service each customer-month got predicts, parameter uncertainty only.

:func:`forecast_mean_csat` gives the *predictive* distribution of a customer's mean CSAT
next month, which also holds what the fit does not explain: the customer's persistent
effect (the Mundlak mean terms of a within fit, plus the customer's residual heterogeneity,
estimated from its past responses by :func:`customer_effects`) and the noise of a mean of
the few responses a customer gives in a month. :func:`backtest_at_risk` checks its flags
against the month that followed.

A driver a row lacks is filled so that every customer-month gets a prediction, and the
filled columns are listed in ``imputed``: ``<metric>_lag1`` takes the same month's value (the
demo's lag rule; the first month has no lag), other drivers take the customer's median over
the rows given, then the segment's. For a within fit, a customer the fit has never seen
gets as its persistent part the mean of its own design rows (over ``history`` when given).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from satmodel.errors import InputError
from satmodel.insights.scenarios import check_ci
from satmodel.models.likelihoods import cdf_pdf

__all__ = [
    "BACKTEST_COLUMNS",
    "CustomerEffects",
    "backtest_at_risk",
    "customer_effects",
    "forecast_mean_csat",
    "nowcast",
    "typical_responses",
]


def _fill_drivers(panel: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    frame = panel.copy()
    imputed = pd.Series([""] * len(frame), index=frame.index, dtype=object)
    for column in columns:
        if column not in frame.columns or not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        missing = frame[column].isna()
        if not missing.any():
            continue
        if column.endswith("_lag1") and column[:-5] in frame.columns:
            frame[column] = frame[column].fillna(frame[column[:-5]])
        if frame[column].isna().any():
            by_customer = frame.groupby("customer_id")[column].transform("median")
            frame[column] = frame[column].fillna(by_customer)
        if frame[column].isna().any() and "segment" in frame.columns:
            by_segment = frame.groupby("segment")[column].transform("median")
            frame[column] = frame[column].fillna(by_segment)
        frame[column] = frame[column].fillna(frame[column].median())
        imputed[missing] = imputed[missing] + np.where(imputed[missing] == "", "", ",") + column
    return frame, imputed


def _ordinal_fit(models: dict):
    if "csat" not in models or models["csat"].family != "ordinal":
        raise InputError(
            f"models: the nowcast needs the ordinal 'csat' model (have: {', '.join(models)})"
        )
    return models["csat"]


def _parameters(result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients in design order (mean terms included), cutpoints, and their covariance."""
    terms = pd.concat([result.coefficients_, result.mundlak_terms_], ignore_index=True)
    beta = terms.set_index("term")["estimate"].reindex(result.design_columns_).to_numpy(float)
    beta = np.where(np.isfinite(beta), beta, 0.0)
    cuts = result.thresholds_["estimate"].to_numpy(dtype=float)
    names = list(result.design_columns_) + list(result.thresholds_["term"])
    cov = result.covariance_.loc[names, names].to_numpy(dtype=float)
    return beta, cuts, np.where(np.isfinite(cov), cov, 0.0)


def _design(result, frame: pd.DataFrame, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """The fit's design of ``frame``; a within fit's unknown customers get their own means.

    The mean terms of a customer the fit knows are the fit's own; any other customer's are
    the means of its design rows in ``history`` (its rows in ``frame`` without history).
    """
    within = result.within_
    if within is None:
        return result.design_matrix(frame)
    placeholder = dict.fromkeys(within.terms, 0.0)
    design = result.design_matrix(frame.assign(**placeholder))
    keys = frame.loc[design.index, within.column].astype(str)
    known = keys.isin(within.means.index)
    means = pd.DataFrame(np.nan, index=design.index, columns=within.terms)
    means.loc[known] = within.means.loc[keys[known]].to_numpy(dtype=float)
    if not known.all():
        sources = [frame] if history is None else [history, frame]
        for source in sources:
            rows = result.design_matrix(source.assign(**placeholder))
            own = (
                rows[within.varying]
                .groupby(source.loc[rows.index, within.column].astype(str).to_numpy())
                .mean()
                .set_axis(within.terms, axis=1)
            )
            fill = own.reindex(keys).set_axis(design.index)
            means = means.fillna(fill)
    design[within.terms] = means.to_numpy(dtype=float)
    return design


def nowcast(
    models: dict,
    panel: pd.DataFrame,
    ci: float = 0.95,
    satisfied_cutoff: int = 4,
    history: pd.DataFrame | None = None,
):
    """Predicted satisfaction of every customer-month of the panel.

    Parameters
    ----------
    models : dict of FitResult
        Needs the ordinal ``csat`` model (pooled or within, logit or probit link).
    panel : DataFrame
        The service panel.
    ci : float
        Confidence level of the delta-method intervals.
    satisfied_cutoff : int
        CSAT at or above this is top-2 (``config.thresholds.satisfied_cutoff``).
    history : DataFrame, optional
        Panel rows over which a within fit's unseen customers get their persistent part.

    Returns
    -------
    DataFrame
        customer_id, month, segment, surveyed (csat_n > 0), csat_n, csat_mean (observed),
        csat_top2_rate (observed), csat_expected, csat_expected_ci_low,
        csat_expected_ci_high, top2_probability, top2_ci_low, top2_ci_high, imputed (comma-
        separated driver columns filled in, empty when none).
    """
    ci = check_ci(ci)
    result = _ordinal_fit(models)
    from satmodel.models import formula_columns

    used = formula_columns(result.formula, [*panel.columns, "csat"])
    frame, imputed = _fill_drivers(panel.reset_index(drop=True), used)
    design = _design(result, frame, history)
    X = design.to_numpy(dtype=float)
    beta, cuts, cov = _parameters(result)
    values = np.asarray(result.level_values_, dtype=float)
    k = len(beta)
    z = stats.norm.ppf(0.5 + ci / 2)
    eta = X @ beta
    cdf, pdf, _ = cdf_pdf(cuts[None, :] - eta[:, None], result.link)
    steps = np.diff(values)
    expected = values[-1] - cdf @ steps
    weight = pdf * steps[None, :]
    grad = np.hstack((X * weight.sum(axis=1)[:, None], -weight))
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", grad, cov, grad), 0.0))
    j = int(np.sum(values < satisfied_cutoff)) - 1
    if not 0 <= j < len(cuts):
        raise InputError(f"satisfied_cutoff {satisfied_cutoff}: no top-2 split of {list(values)}")
    # P(top2) = F(eta - cut_j) (logit and probit are symmetric): linear in the parameters
    linear_top = eta - cuts[j]
    g = np.hstack((X, np.zeros((len(X), len(cuts)))))
    g[:, k + j] = -1.0
    se_top = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", g, cov, g), 0.0))

    def top2(linear):
        return cdf_pdf(linear, result.link)[0]

    pred = pd.DataFrame(
        {
            "csat_expected": expected,
            "csat_expected_ci_low": np.clip(expected - z * se, values[0], values[-1]),
            "csat_expected_ci_high": np.clip(expected + z * se, values[0], values[-1]),
            "top2_probability": top2(linear_top),
            "top2_ci_low": top2(linear_top - z * se_top),
            "top2_ci_high": top2(linear_top + z * se_top),
        },
        index=design.index,
    ).reindex(frame.index)
    keep = [c for c in ("customer_id", "month", "segment") if c in frame.columns]
    out = frame[keep].copy()
    csat_n = frame["csat_n"] if "csat_n" in frame.columns else pd.Series(0, index=frame.index)
    out["surveyed"] = csat_n.fillna(0).to_numpy() > 0
    out["csat_n"] = csat_n.fillna(0).astype(int).to_numpy()
    for column in ("csat_mean", "csat_top2_rate"):
        out[column] = frame[column] if column in frame.columns else np.nan
    out = pd.concat([out, pred], axis=1)
    out["imputed"] = imputed
    return out


@dataclass
class CustomerEffects:
    """Each customer's persistent effect on the score scale beyond what the fit explains.

    Attributes
    ----------
    variance_ : float
        Between-customer variance of the residual effect (method of moments: the variance of
        the customers' mean residual scores less their average sampling variance; >= 0).
    table_ : DataFrame
        customer_id, responses, mean_residual (observed minus expected score, averaged),
        sampling_variance (of that mean, from the fit's level probabilities), effect (the
        empirical-Bayes shrunken mean residual), effect_variance (its posterior variance).
    """

    variance_: float
    table_: pd.DataFrame

    def lookup(self, customer_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Effect and its variance per customer; a customer without responses gets (0, tau^2)."""
        table = self.table_.set_index("customer_id")
        keys = customer_ids.astype(str)
        effect = keys.map(table["effect"]).fillna(0.0).to_numpy(dtype=float)
        variance = keys.map(table["effect_variance"]).fillna(self.variance_)
        return effect, variance.to_numpy(dtype=float)


def customer_effects(result, responses: pd.DataFrame) -> CustomerEffects:
    """Estimate the residual customer heterogeneity of an ordinal fit from its responses.

    Parameters
    ----------
    result : FitResult
        Ordinal CSAT fit (within fits: the effect left after the Mundlak mean terms).
    responses : DataFrame
        Survey responses with ``customer_id``, the outcome and the drivers (the fit's data).

    Returns
    -------
    CustomerEffects
    """
    outcome = result.outcome
    if outcome not in responses.columns or "customer_id" not in responses.columns:
        raise InputError(f"responses: columns customer_id and {outcome!r} are needed")
    predicted = result.predict(responses)
    values = np.asarray(result.level_values_, dtype=float)
    probs = predicted[[f"p_{level}" for level in result.levels_]].to_numpy(dtype=float)
    score = pd.to_numeric(responses[outcome], errors="coerce")
    frame = pd.DataFrame(
        {
            "customer_id": responses["customer_id"].astype(str).to_numpy(),
            "residual": (score - predicted["expected"]).to_numpy(dtype=float),
            "variance": probs @ values**2 - predicted["expected"].to_numpy(dtype=float) ** 2,
        }
    ).dropna()
    if frame.empty:
        raise InputError("responses: no response with an outcome and every driver")
    per = frame.groupby("customer_id", sort=True).agg(
        responses=("residual", "size"),
        mean_residual=("residual", "mean"),
        variance=("variance", "mean"),
    )
    per["sampling_variance"] = per["variance"] / per["responses"]
    spread = float(per["mean_residual"].var(ddof=1)) if len(per) > 1 else 0.0
    tau2 = max(spread - float(per["sampling_variance"].mean()), 0.0) if np.isfinite(spread) else 0.0
    total = tau2 + per["sampling_variance"]
    shrink = np.where(total > 0, tau2 / total.where(total > 0, 1.0), 0.0)
    per["effect"] = shrink * per["mean_residual"]
    per["effect_variance"] = tau2 * (1.0 - shrink)
    columns = ["customer_id", "responses", "mean_residual", "sampling_variance", "effect"]
    table = per.reset_index()[[*columns, "effect_variance"]]
    return CustomerEffects(variance_=tau2, table_=table)


def _targets(frame: pd.DataFrame, target: float | Mapping[str, float]) -> np.ndarray:
    if isinstance(target, Mapping):
        mapped = frame["segment"].astype(str).map(target)
        if mapped.isna().any():
            missing = frame.loc[mapped.isna(), "segment"].astype(str).iloc[0]
            raise InputError(f"target: no CSAT target for segment {missing!r}")
        return mapped.to_numpy(dtype=float)
    return np.full(len(frame), float(target))


def typical_responses(history: pd.DataFrame) -> pd.Series:
    """Each customer's median responses in the months it answered (at least 1), by customer_id."""
    counts = pd.to_numeric(history["csat_n"], errors="coerce")
    answered = history.loc[counts > 0].assign(csat_n=counts[counts > 0])
    median = answered.groupby(answered["customer_id"].astype(str))["csat_n"].median()
    return np.maximum(np.round(median), 1.0)


def forecast_mean_csat(
    result,
    panel: pd.DataFrame,
    responses: pd.DataFrame,
    month: str,
    target: float | Mapping[str, float],
    probability: float = 0.8,
    ci: float = 0.95,
    n_draws: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Predictive distribution of each customer's mean CSAT next month, and who is at risk.

    The service of ``month`` stands in for next month's. For each of ``n_draws`` draws of the
    parameters from the fit's covariance the model gives the customer's expected score and
    response variance; to it the customer's own effect is added (:func:`customer_effects`:
    its shrunken past residual, with its posterior variance; tau^2 for a customer never
    surveyed) and the noise of a mean of its typical number of responses per month
    (:func:`typical_responses`, 1 for a customer never surveyed). The mean of ``n``
    responses is taken as normal given the draw. A customer is at risk when the predictive
    probability of a mean below its target exceeds ``probability``.

    Parameters
    ----------
    result : FitResult
        Ordinal CSAT fit on ``responses`` (within fits give the customer's mean terms).
    panel : DataFrame
        The service panel up to ``month`` (later months are ignored).
    responses : DataFrame
        The responses the fit used (for the customer effects).
    month : str
        The last month of data, ``YYYY-MM``.
    target : float or mapping of segment to float
        The CSAT target (per segment).
    probability : float
        Flag a customer when P(mean CSAT < target) exceeds it.
    ci : float
        Level of the predictive interval.
    n_draws, seed : parameter draws and their seed.

    Returns
    -------
    DataFrame
        customer_id, segment, month, csat_n, csat_mean (observed in ``month``),
        expected_responses, csat_expected (the model, parameter mean), customer_effect,
        predicted_csat (predictive mean), predictive_low, predictive_high, csat_target,
        p_below_target, at_risk; one row per customer of ``month``.
    """
    ci = check_ci(ci)
    if not 0 < probability < 1:
        raise InputError(f"probability: must be between 0 and 1, got {probability!r}")
    if int(n_draws) < 10:
        raise InputError(f"n_draws: need at least 10 parameter draws, got {n_draws!r}")
    if result.family != "ordinal":
        raise InputError(f"result: an ordinal CSAT fit is needed, got {result.family!r}")
    months = panel["month"].astype(str)
    history = panel.loc[months <= month]
    rows = panel.loc[months == month]
    if rows.empty:
        raise InputError(f"panel: no customer-month in {month}")
    from satmodel.models import formula_columns

    used = formula_columns(result.formula, [*panel.columns, result.outcome])
    frame, _ = _fill_drivers(rows.reset_index(drop=True), used)
    design = _design(result, frame, history)
    frame = frame.loc[design.index]
    X = design.to_numpy(dtype=float)
    beta, cuts, cov = _parameters(result)
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(
        np.concatenate((beta, cuts)), cov, size=int(n_draws), method="eigh"
    )
    beta_s, cuts_s = draws[:, : len(beta)], np.sort(draws[:, len(beta) :], axis=1)
    values = np.asarray(result.level_values_, dtype=float)
    eta = X @ beta_s.T  # customers x draws
    cdf, _, _ = cdf_pdf(cuts_s[None, :, :] - eta[:, :, None], result.link)
    cum = np.concatenate((np.zeros(eta.shape + (1,)), cdf, np.ones(eta.shape + (1,))), axis=2)
    probs = np.diff(cum, axis=2)
    mean_s = probs @ values
    var_s = np.maximum(probs @ values**2 - mean_s**2, 0.0)
    effects = customer_effects(result, responses)
    effect, effect_var = effects.lookup(frame["customer_id"])
    typical = typical_responses(history)
    n = frame["customer_id"].astype(str).map(typical).fillna(1.0).to_numpy(dtype=float)
    centre = mean_s + effect[:, None]
    sd = np.sqrt(effect_var[:, None] + var_s / n[:, None])
    goal = _targets(frame, target)
    with np.errstate(divide="ignore", invalid="ignore"):
        below = stats.norm.cdf((goal[:, None] - centre) / sd)
    below = np.where(sd > 0, below, (centre < goal[:, None]).astype(float))
    sample = np.clip(centre + sd * rng.standard_normal(centre.shape), values[0], values[-1])
    tail = (1 - ci) / 2
    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str).to_numpy(),
            "segment": frame["segment"].astype(str).to_numpy(),
            "month": month,
            "csat_n": pd.to_numeric(frame["csat_n"], errors="coerce").fillna(0).astype(int),
            "csat_mean": pd.to_numeric(frame["csat_mean"], errors="coerce"),
            "expected_responses": n.astype(int),
            "csat_expected": mean_s.mean(axis=1),
            "customer_effect": effect,
            "predicted_csat": np.clip(centre.mean(axis=1), values[0], values[-1]),
            "predictive_low": np.quantile(sample, tail, axis=1),
            "predictive_high": np.quantile(sample, 1 - tail, axis=1),
            "csat_target": goal,
            "p_below_target": below.mean(axis=1),
        }
    )
    out["at_risk"] = out["p_below_target"] > probability
    return out.reset_index(drop=True)


BACKTEST_COLUMNS = ["month", "flagged_in", "customers", "flagged", "flagged_answered"]
BACKTEST_COLUMNS += ["flagged_below", "precision", "answered", "below", "base_rate"]


def backtest_at_risk(
    responses: pd.DataFrame,
    panel: pd.DataFrame,
    formula: str,
    target: float | Mapping[str, float],
    months: list[str],
    probability: float = 0.8,
    link: str = "logit",
    within: str | None = "customer_id",
    n_draws: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Did the customers flagged a month earlier then score below their target?

    For each month ``M`` of ``months``: the ordinal model ``formula`` is fitted on the
    responses up to the month before, :func:`forecast_mean_csat` flags customers as of that
    month, and the flags are held against the mean CSAT each customer gave in ``M``.

    Returns
    -------
    DataFrame
        month (the month predicted), flagged_in (the month of the flags), customers,
        flagged, flagged_answered (flagged customers who answered a survey in ``month``),
        flagged_below (of those, the ones whose mean CSAT was below target), precision
        (flagged_below / flagged_answered), answered (every customer who answered),
        below (of those, below target), base_rate (below / answered: the precision of
        flagging at random).
    """
    from satmodel.calendar import add_months
    from satmodel.models import fit

    rows = []
    answer_months = responses["month"].astype(str)
    for month in months:
        previous = add_months(month, -1)
        train = responses.loc[answer_months <= previous]
        if train.empty:
            raise InputError(f"months: no responses before {month} to fit the model on")
        result = fit(train, formula, "ordinal", link=link, within=within, cluster="customer_id")
        flags = forecast_mean_csat(
            result, panel, train, previous, target, probability, n_draws=n_draws, seed=seed
        )
        then = panel.loc[panel["month"].astype(str) == month].set_index(
            panel.loc[panel["month"].astype(str) == month, "customer_id"].astype(str)
        )
        score = flags["customer_id"].map(pd.to_numeric(then["csat_mean"], errors="coerce"))
        answered = flags["customer_id"].map(pd.to_numeric(then["csat_n"], errors="coerce")) > 0
        below = answered & (score < flags["csat_target"])
        flagged = flags["at_risk"].astype(bool)
        n_flag_answered = int((flagged & answered).sum())
        n_answered = int(answered.sum())
        rows.append(
            {
                "month": month,
                "flagged_in": previous,
                "customers": len(flags),
                "flagged": int(flagged.sum()),
                "flagged_answered": n_flag_answered,
                "flagged_below": int((flagged & below).sum()),
                "precision": (
                    (flagged & below).sum() / n_flag_answered if n_flag_answered else np.nan
                ),
                "answered": n_answered,
                "below": int(below.sum()),
                "base_rate": below.sum() / n_answered if n_answered else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=BACKTEST_COLUMNS)
