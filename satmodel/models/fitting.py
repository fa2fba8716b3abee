"""Fit one model: :func:`fit` (formula, checks, standard errors) and
:func:`maximize_likelihood` (the engine, for ready-made design matrices)."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import special

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
    threadpool_limits = None

from satmodel.errors import InputError, ModelWarning
from satmodel.models.design import Prepared, prepare, subset_rows
from satmodel.models.formulas import parse_formula
from satmodel.models.likelihoods import (
    DEFAULT_LINKS,
    FAMILIES,
    LogitLikelihood,
    NB2Likelihood,
    OrdinalLikelihood,
    PoissonLikelihood,
)
from satmodel.models.optimize import independent_columns, invert_information, newton, sandwich
from satmodel.models.results import FitResult, json_number, tidy
from satmodel.models.within import mundlak_test

MIN_RESPONSES = 30
MIN_PER_LEVEL = 10
_SEPARATION_TOL = 1e-9


def fit(
    data: pd.DataFrame,
    formula: str,
    family: str,
    exposure: str | None = None,
    weights: str | None = None,
    cluster: str | None = None,
    link: str | None = "logit",
    order=None,
    collapse: bool = True,
    maxiter: int = 100,
    ci: float = 0.95,
    cov_type: str | None = None,
    within: str | None = None,
    time_effects: str | None = None,
) -> FitResult:
    """Fit a satisfaction or complaint model.

    Parameters
    ----------
    data : DataFrame
        One row per observation (or per cell, with ``weights``).
    formula : str
        patsy formula, e.g. ``"csat ~ np.log(latency_p95_ms) + C(segment)"``.
    family : {"ordinal", "logit", "ols", "poisson", "negbin"}
    exposure : str, optional
        Column whose log is the offset (poisson, negbin).
    weights : str, optional
        Column of frequency weights (a row counts as that many observations).
    cluster : str, optional
        Column of cluster ids for cluster-robust (CRV1) standard errors.
    link : {"logit", "probit"}, optional
        Ordinal link (default logit). Other families have a fixed link (logit, identity,
        log); ``"logit"`` is accepted and ignored for them.
    order : str or list, optional
        Order of an ordinal outcome whose values are not numbers, e.g. ``"low,mid,high"``.
    collapse : bool
        Merge identical rows into weighted rows before fitting (same estimates, faster).
    maxiter : int
        Newton-Raphson iterations.
    ci : float
        Confidence level of the intervals.
    cov_type : {"nonrobust", "robust", "cluster"}, optional
        Defaults to "cluster" when ``cluster`` is given, else "nonrobust".
    within : str, optional
        Estimate within-``within`` effects (e.g. ``"customer_id"``) by correlated random
        effects (Mundlak): the ``within``-means of every design column that varies within it
        enter the model, the driver terms keep their names and are the within effects, and
        ``mundlak_terms_`` / ``mundlak_test_`` hold the mean terms and the joint test that
        pooled and within effects agree. Standard errors are clustered by ``within`` unless
        ``cluster`` names another column.
    time_effects : {"month"}, optional
        Add one effect per value of that column (``C(month)``): platform-wide shocks.

    Returns
    -------
    FitResult

    Raises
    ------
    InputError
        Unknown family or columns, formula errors, outcomes of the wrong kind, negative
        weights or counts, exposure <= 0, no rows left after dropping missing values.
    """
    if family not in FAMILIES:
        raise InputError(f"family {family!r}: must be one of {', '.join(FAMILIES)}")
    if family == "ordinal":
        link = link or "logit"
        if link not in ("logit", "probit"):
            raise InputError(f"link {link!r}: ordinal models take 'logit' or 'probit'")
    elif link in (None, "logit", DEFAULT_LINKS[family]):
        # the link option is the ordinal link; other families have a fixed one
        link = DEFAULT_LINKS[family]
    else:
        raise InputError(f"link {link!r}: family {family!r} uses the {DEFAULT_LINKS[family]} link")
    if exposure is not None and family not in ("poisson", "negbin"):
        raise InputError(f"exposure {exposure!r}: only poisson and negbin take an exposure")
    if order is not None and family != "ordinal":
        raise InputError("order: only ordinal models take an outcome order")
    if within is not None and cluster is None:
        # within effects exist because responses repeat within the group: cluster by it
        cluster = within
    if cov_type is None:
        cov_type = "cluster" if cluster is not None else "nonrobust"
    if cov_type not in ("nonrobust", "robust", "cluster"):
        raise InputError(f"cov_type {cov_type!r}: must be nonrobust, robust or cluster")
    if cov_type == "cluster" and cluster is None:
        raise InputError("cov_type 'cluster' needs a cluster column (cluster=COL)")
    if not 0 < ci < 1:
        raise InputError(f"ci: must be between 0 and 1, got {ci!r}")
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data: expected a pandas DataFrame, got {type(data).__name__}")

    if time_effects is not None:
        if time_effects not in data.columns:
            raise InputError(
                f"time_effects {time_effects!r}: no such column (e.g. time_effects='month')"
            )
        formula = f"{formula} + C({time_effects})"
    parsed = parse_formula(formula, data.columns)
    # tall, skinny matrix products: BLAS threads only add overhead (and fight other jobs)
    with single_threaded_blas():
        return _fit_parsed(
            data,
            parsed,
            family,
            exposure,
            weights,
            cluster,
            link,
            order,
            collapse,
            maxiter,
            ci,
            cov_type,
            within,
        )


def _fit_parsed(
    data,
    parsed,
    family,
    exposure,
    weights,
    cluster,
    link,
    order,
    collapse,
    maxiter,
    ci,
    cov_type,
    within=None,
) -> FitResult:
    formula = parsed.text
    prep = prepare(
        data,
        parsed,
        family,
        exposure=exposure,
        weights=weights,
        cluster=cluster,
        order=order,
        collapse=collapse,
        within=within,
    )
    flags: list[str] = []
    positive = prep.w > 0
    if not positive.all():
        prep = subset_rows(prep, positive)
    n_obs = float(prep.w.sum())
    if n_obs <= 0:
        raise InputError(f"data.{weights}: all weights are zero")
    if n_obs < MIN_RESPONSES:
        flags.append(f"too few responses: n = {json_number(n_obs)} (need >= {MIN_RESPONSES})")

    levels, level_values = prep.levels, prep.level_values
    if family == "ordinal":
        counts = np.bincount(prep.y.astype(int), weights=prep.w, minlength=len(levels))
        present = counts > 0
        for level, count in zip(levels, counts, strict=True):
            if count < MIN_PER_LEVEL:
                flags.append(
                    f"too few responses at outcome level {level!r}: {json_number(count)} "
                    f"(need >= {MIN_PER_LEVEL})"
                )
        if not present.all():
            remap = np.cumsum(present) - 1
            prep.y = remap[prep.y.astype(int)].astype(float)
            levels = [lv for lv, p in zip(levels, present, strict=True) if p]
            level_values = [v for v, p in zip(level_values, present, strict=True) if p]
        if len(levels) < 2:
            raise InputError(
                f"outcome {parsed.lhs_code!r}: only one level present ({levels[0]!r}); "
                f"nothing to model"
            )
    elif family == "logit":
        events = float(prep.w @ prep.y)
        for label, count in (("1", events), ("0", n_obs - events)):
            if count < MIN_PER_LEVEL:
                flags.append(
                    f"too few responses with outcome {label}: {json_number(count)} "
                    f"(need >= {MIN_PER_LEVEL})"
                )
        if events == 0 or events == n_obs:
            raise InputError(
                f"outcome {parsed.lhs_code!r}: all {json_number(n_obs)} rows are "
                f"{int(events > 0)}; nothing to model"
            )

    # collinearity: keep the columns earlier ones do not explain (ordinal: with intercept)
    X_check = np.hstack((np.ones((len(prep.w), 1)), prep.X)) if family == "ordinal" else prep.X
    kept = independent_columns(X_check, prep.w)
    if family == "ordinal":
        if 0 not in kept:
            kept = [0, *kept]
        kept = [j - 1 for j in kept if j > 0]
    dropped_cols = [c for j, c in enumerate(prep.columns) if j not in kept]
    if dropped_cols:
        flags.append(
            "collinear design (rank deficient): no estimate for " + ", ".join(dropped_cols)
        )
    X = prep.X[:, kept]
    k = X.shape[1]
    n_params = k + (len(levels) - 1 if family == "ordinal" else 0) + (family == "negbin")
    if n_obs <= n_params:
        flags.append(f"more parameters ({n_params}) than observations ({json_number(n_obs)})")

    kept_columns = [prep.columns[j] for j in kept]
    fitted = _fit_family(
        family,
        link,
        X,
        prep,
        levels,
        maxiter,
        need_scores=cov_type != "nonrobust",
        has_intercept="Intercept" in kept_columns,
    )
    theta, converged, iterations, bread, unit_scores, ll, extra = fitted
    if not converged:
        flags.append(f"did not converge in {maxiter} iterations")
    if extra.get("separation"):
        flags.append(extra["separation"])
    if extra.get("boundary"):
        flags.append(extra["boundary"])

    if cov_type == "nonrobust":
        cov_theta = bread * extra.get("scale", 1.0)
    else:
        cov_theta = sandwich(bread, unit_scores, prep.w, prep.groups, n_obs, cov_type)
    if not np.all(np.isfinite(cov_theta)) or np.any(np.diag(cov_theta) < 0):
        flags.append("covariance not estimable (singular information matrix)")

    # assemble
    se_theta = np.sqrt(np.abs(np.diag(cov_theta)))
    beta_full = np.full(len(prep.columns), np.nan)
    se_full = np.full(len(prep.columns), np.nan)
    beta_full[kept] = theta[:k]
    se_full[kept] = se_theta[:k]
    dist_df = None
    if family == "ols":
        dist_df = (int(prep.groups.max()) if cov_type == "cluster" else n_obs - k) or None
    coefficients = tidy(prep.columns, beta_full, se_full, ci, dist_df)
    threshold_names: list[str] = []
    thresholds = tidy([], [], [], ci)
    alpha = alpha_se = None
    cov_names = list(prep.columns)
    jac = np.zeros((len(theta), len(theta)))
    jac[np.arange(len(theta)), np.arange(len(theta))] = 1.0
    if family == "ordinal":
        threshold_names = [f"{levels[j]}|{levels[j + 1]}" for j in range(len(levels) - 1)]
        thresholds = tidy(threshold_names, theta[k:], se_theta[k:], ci)
        cov_names += threshold_names
    elif family == "negbin":
        alpha = float(np.exp(theta[k]))
        jac[k, k] = alpha
        alpha_se = float(alpha * se_theta[k])
        cov_names += ["alpha"]
    cov_theta_out = jac @ cov_theta @ jac.T
    position = list(kept) + list(range(len(prep.columns), len(cov_names)))
    cov_full = np.full((len(cov_names), len(cov_names)), np.nan)
    cov_full[np.ix_(position, position)] = cov_theta_out
    covariance = pd.DataFrame(cov_full, index=cov_names, columns=cov_names)
    mundlak_terms = tidy([], [], [], ci)
    mundlak = None
    if prep.within is not None:
        is_mean = coefficients["term"].isin(prep.within.terms)
        mundlak_terms = coefficients.loc[is_mean].reset_index(drop=True)
        coefficients = coefficients.loc[~is_mean].reset_index(drop=True)
        mundlak = mundlak_test(
            mundlak_terms.set_index("term")["estimate"], covariance, prep.within.terms
        )

    result = FitResult(
        family=family,
        formula=formula,
        link=link,
        ci=ci,
        coefficients=coefficients,
        thresholds=thresholds,
        alpha=alpha,
        alpha_std_error=alpha_se,
        log_likelihood=ll,
        n_obs=n_obs,
        n_rows=prep.n_rows,
        n_dropped=prep.n_dropped,
        dropped_by=prep.dropped_by,
        n_clusters=None if prep.groups is None else int(prep.groups.max()) + 1,
        converged=converged,
        iterations=iterations,
        warnings=flags,
        notes=prep.notes,
        cov_type=cov_type,
        covariance=covariance,
        levels=levels,
        level_values=level_values,
        df_resid=(n_obs - k) if family == "ols" else None,
        r_squared=extra.get("r_squared"),
        scale=extra.get("scale"),
        exposure=exposure,
        weights=weights,
        cluster=cluster,
        design_columns=prep.columns,
        categorical=prep.categorical,
        stateful=parsed.stateful,
        design_info=prep.design_info,
        within=prep.within,
        mundlak_terms=mundlak_terms,
        mundlak_test=mundlak,
    )
    for message in flags:
        warnings.warn(f"{family} {formula!r}: {message}", ModelWarning, stacklevel=3)
    return result


_THREADPOOL_CONTROLLER: list = []


def single_threaded_blas():
    """Context limiting BLAS to one thread (library discovery is done once, lazily).

    Many small dense solves run faster on one thread than with BLAS threads fighting over two
    cores; every fit runs inside it, and so may code that refits many small models.
    """
    if threadpool_limits is None:
        return contextlib.nullcontext()
    if not _THREADPOOL_CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _THREADPOOL_CONTROLLER.append(ThreadpoolController())
    return _THREADPOOL_CONTROLLER[0].limit(limits=1, user_api="blas")


class MLEstimate(NamedTuple):
    """What :func:`maximize_likelihood` found."""

    theta: np.ndarray
    log_likelihood: float
    converged: bool
    iterations: int
    likelihood: Any


def maximize_likelihood(
    family: str,
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    offset: np.ndarray | None = None,
    n_levels: int | None = None,
    link: str = "logit",
    start: np.ndarray | None = None,
    maxiter: int = 100,
) -> MLEstimate:
    """Maximum-likelihood estimates for a ready-made design matrix: the engine of :func:`fit`.

    For code that refits many designs (driver importance). No formulas, checks or standard
    errors: use :func:`fit` for those.

    Parameters
    ----------
    family : ``ordinal``, ``logit``, ``poisson`` or ``negbin``.
    X : design matrix (with an intercept column except for ``ordinal``).
    y : outcome; for ``ordinal`` the 0-based level codes.
    weights : frequency weights.
    offset : log-exposure offset (counts) or None.
    n_levels : number of outcome levels (``ordinal``).
    link : ``logit`` or ``probit`` (``ordinal``).
    start : starting values (coefficients, then cutpoints or log alpha); a data-driven start
        when None.
    maxiter : Newton iterations at most.

    Returns
    -------
    MLEstimate
        theta (coefficients, then cutpoints for ordinal or log alpha for negbin),
        log_likelihood, converged, iterations and the likelihood object.
    """
    w = weights
    if family == "ordinal":
        likelihood = OrdinalLikelihood(X, y, w, n_levels, link)
        theta0 = start
        if theta0 is None:
            cum = np.cumsum(np.bincount(y.astype(int), weights=w, minlength=n_levels))[:-1]
            cum = np.clip(cum / w.sum(), 1e-6, 1 - 1e-6)
            cuts0 = special.logit(cum) if link == "logit" else special.ndtri(cum)
            # keep start cutpoints strictly increasing
            cuts0 = np.maximum.accumulate(cuts0 + np.arange(len(cuts0)) * 1e-6)
            theta0 = np.concatenate((np.zeros(X.shape[1]), cuts0))
    elif family == "logit":
        likelihood = LogitLikelihood(X, y, w, offset)
        theta0 = np.zeros(X.shape[1]) if start is None else start
    elif family in ("poisson", "negbin"):
        poisson = PoissonLikelihood(X, y, w, offset)
        if family == "poisson":
            likelihood = poisson
            theta0 = _log_linear_start(X, y, w, offset) if start is None else start
        else:
            likelihood = NB2Likelihood(X, y, w, offset)
            theta0 = start
            if theta0 is None:
                beta_p, _, _ = newton(poisson, _log_linear_start(X, y, w, offset), maxiter)
                mu = np.exp(X @ beta_p + (offset if offset is not None else 0.0))
                moment = float(w @ ((y - mu) ** 2 - y)) / float(w @ mu**2)
                theta0 = np.concatenate((beta_p, [np.log(max(moment, 0.05))]))
    else:
        raise InputError(f"family {family!r}: expected one of ordinal, logit, poisson, negbin")
    theta, converged, iterations = newton(likelihood, theta0, maxiter)
    return MLEstimate(theta, float(likelihood.loglike(theta)), converged, iterations, likelihood)


def _fit_family(family, link, X, prep: Prepared, levels, maxiter, need_scores, has_intercept):
    """Return theta, converged, iterations, bread (inverse information), unit scores, ll, extra."""
    y, w, offset = prep.y, prep.w, prep.offset
    extra: dict[str, Any] = {}
    if family == "ols":
        unweighted = bool(np.all(w == 1.0))
        if unweighted:
            beta = np.linalg.lstsq(X, y, rcond=None)[0]
        else:
            sw = np.sqrt(w)
            beta = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
        resid = y - X @ beta
        n_obs = float(w.sum())
        rss = float(w @ resid**2)
        df_resid = n_obs - X.shape[1]
        sigma2 = rss / df_resid if df_resid > 0 else np.nan
        sigma2_ml = rss / n_obs
        ll = -0.5 * n_obs * (np.log(2 * np.pi * sigma2_ml) + 1) if sigma2_ml > 0 else np.inf
        bread = invert_information((X if unweighted else X * w[:, None]).T @ X)
        unit_scores = X * resid[:, None] if need_scores else None
        centred = y - (w @ y) / n_obs
        tss = float(w @ centred**2)
        extra["r_squared"] = (1 - rss / tss) if tss > 0 and has_intercept else None
        extra["scale"] = sigma2
        return beta, True, 1, bread, unit_scores, float(ll), extra

    theta, _, converged, iterations, likelihood = maximize_likelihood(
        family,
        X,
        y,
        w,
        offset=offset,
        n_levels=len(levels) if levels is not None else None,
        link=link,
        maxiter=maxiter,
    )
    ll, _, H, unit_scores = likelihood.derivatives(theta, scores=need_scores)
    bread = invert_information(-H)

    if family == "ordinal":
        p_obs = likelihood.fitted_prob(theta)
        certain = p_obs > 1 - _SEPARATION_TOL
        if certain.any():
            extra["separation"] = (
                f"quasi-complete separation: {json_number(w[certain].sum())} responses "
                f"perfectly predicted (some estimates drift to +-infinity)"
            )
    elif family == "logit":
        p = special.expit(likelihood.eta(theta))
        p_obs = np.where(y > 0.5, p, 1 - p)
        certain = p_obs > 1 - _SEPARATION_TOL
        if certain.any():
            extra["separation"] = (
                f"perfect or quasi-complete separation: {json_number(w[certain].sum())} "
                f"responses perfectly predicted (some estimates drift to +-infinity)"
            )
    elif family == "negbin" and theta[-1] < np.log(1e-8):
        extra["boundary"] = "alpha at its lower bound 0 (no overdispersion): use poisson"
    return theta, converged, iterations, bread, unit_scores, ll, extra


def _log_linear_start(X, y, w, offset):
    """Weighted least squares of log(y + 0.5) - offset: a safe start for log-linear models."""
    target = np.log(y + 0.5) - (offset if offset is not None else 0.0)
    sw = np.sqrt(w)
    return np.linalg.lstsq(X * sw[:, None], target * sw, rcond=None)[0]
