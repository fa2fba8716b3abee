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
from satmodel.models.optimize import (
    SE_CORRECTIONS,
    independent_columns,
    invert_information,
    newton,
    sandwich,
    small_sample_factor,
)
from satmodel.models.results import FitResult, json_number, tidy
from satmodel.models.within import mundlak_test

MIN_RESPONSES = 30
MIN_PER_LEVEL = 10
MIN_CLUSTERS = 30
WEIGHTS_KINDS = ("frequency", "analytic")
_SEPARATION_TOL = 1e-9
# NB2 estimates of alpha below this are the Poisson limit: finish with the Poisson fit
_ALPHA_FLOOR = 1e-8


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
    se_correction: str = "statsmodels",
    weights_kind: str = "frequency",
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
        Column of weights; see ``weights_kind``.
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
    se_correction : {"statsmodels", "stata"}
        Small-sample factor of robust and cluster-robust standard errors: ``statsmodels``
        (also R sandwich) G/(G-1) (N-1)/(N-k) for clusters and none for HC0; ``stata``
        as Stata's ML commands, G/(G-1) for ``vce(cluster)`` and N/(N-1) for
        ``vce(robust)`` (OLS: as ``regress``). Stored in ``se_correction_``.
    weights_kind : {"frequency", "analytic"}
        ``frequency``: a row of weight w counts as w observations (n_obs is their total;
        weights that are not whole numbers are flagged). ``analytic``: weights are relative
        precisions, normalised to sum to the number of rows (n_obs = rows), so their scale
        never changes a standard error.

    Returns
    -------
    FitResult

    Raises
    ------
    InputError
        Unknown family or columns, formula errors, outcomes of the wrong kind, negative
        weights or counts, exposure <= 0, no rows left after dropping missing values,
        an outcome with nothing to model (one level, all 0 or all 1, all counts 0), fewer
        than 2 clusters.

    Notes
    -----
    ``warnings_`` flags what makes a fit untrustworthy: non-convergence, separation (the
    terms whose estimates are infinite are named; for counts, zero counts predicted with
    certainty), collinearity, fewer than 30 clusters, fractional frequency weights. An NB2
    fit whose alpha reaches its bound 0 ends at the Poisson fit, converged, with a note.
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
    if se_correction not in SE_CORRECTIONS:
        raise InputError(
            f"se_correction {se_correction!r}: must be one of {', '.join(SE_CORRECTIONS)}"
        )
    if weights_kind not in WEIGHTS_KINDS:
        raise InputError(
            f"weights_kind {weights_kind!r}: must be one of {', '.join(WEIGHTS_KINDS)}"
        )
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
            se_correction,
            weights_kind,
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
    se_correction="statsmodels",
    weights_kind="frequency",
) -> FitResult:
    formula = parsed.text
    # without weights, collapsed rows carry frequency weights whatever weights_kind says
    analytic = weights is not None and weights_kind == "analytic"
    if analytic and cov_type == "robust":
        # merged rows would square the sum of their analytic weights in the HC meat
        collapse = False
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
    notes = list(prep.notes)
    positive = prep.w > 0
    if not positive.all():
        prep = subset_rows(prep, positive)
    if prep.w.sum() <= 0:
        raise InputError(f"data.{weights}: all weights are zero")
    if analytic:
        prep.w = prep.w * (prep.n_units.sum() / prep.w.sum())
        notes.append(f"analytic weights {weights!r}, normalised to sum to the {prep.n_rows} rows")
    elif prep.n_fractional_weights:
        flags.append(
            f"weights {weights!r} are not whole numbers in {prep.n_fractional_weights} rows but "
            f"are treated as frequency weights (a row counts as w observations); for "
            f"relative precisions use weights_kind='analytic' (CLI: --weights-kind analytic)"
        )
    # analytic weights: rows are the observations (the normalised weights sum to them)
    n_obs = float(prep.n_units.sum() if analytic else prep.w.sum())
    n_clusters = None
    if prep.groups is not None:
        n_clusters = int(prep.groups.max()) + 1
    if cov_type == "cluster":
        if n_clusters < 2:
            raise InputError(
                f"cluster {cluster!r}: the {prep.n_rows} rows used form {n_clusters} cluster; "
                f"cluster-robust standard errors need at least 2 (use cov_type='robust')"
            )
        if n_clusters < MIN_CLUSTERS:
            flags.append(
                f"only {n_clusters} clusters of {cluster!r} (need >= {MIN_CLUSTERS}): the "
                f"cluster-robust (CRV1, {se_correction} small-sample factor) standard errors "
                f"and intervals are unreliable"
            )
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
    elif family in ("poisson", "negbin") and not (prep.y > 0).any():
        raise InputError(
            f"outcome {parsed.lhs_code!r}: all {json_number(n_obs)} counts are 0; nothing to model"
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
    theta_names = kept_columns
    if family == "ordinal":
        theta_names = kept_columns + [
            f"{levels[j]}|{levels[j + 1]}" for j in range(len(levels) - 1)
        ]
    fitted = _fit_family(
        family,
        link,
        X,
        prep,
        levels,
        maxiter,
        need_scores=cov_type != "nonrobust",
        has_intercept="Intercept" in kept_columns,
        theta_names=theta_names,
    )
    theta, converged, iterations, bread, unit_scores, ll, extra = fitted
    if not converged:
        flags.append(f"did not converge in {maxiter} iterations")
    if extra.get("separation"):
        flags.append(extra["separation"])
    if extra.get("note"):
        notes.append(extra["note"])

    se_used = None
    if cov_type == "nonrobust":
        cov_theta = bread * extra.get("scale", 1.0)
    else:
        se_used = se_correction
        factor = small_sample_factor(
            cov_type, se_correction, n_obs, bread.shape[0], n_clusters, family != "ols"
        )
        cov_theta = sandwich(
            bread,
            unit_scores,
            prep.w,
            prep.groups,
            cov_type,
            factor,
            frequency=not analytic,
        )
    if not np.all(np.isfinite(cov_theta)) or np.any(np.diag(cov_theta) < 0):
        flags.append("covariance not estimable (singular information matrix)")
    if len(cov_theta) < len(theta):
        # alpha at its bound 0: no variance for it, the coefficients' is Poisson's
        padded = np.full((len(theta), len(theta)), np.nan)
        padded[: len(cov_theta), : len(cov_theta)] = cov_theta
        cov_theta = padded

    # assemble
    se_theta = np.sqrt(np.abs(np.diag(cov_theta)))
    beta_full = np.full(len(prep.columns), np.nan)
    se_full = np.full(len(prep.columns), np.nan)
    beta_full[kept] = theta[:k]
    se_full[kept] = se_theta[:k]
    dist_df = None
    if family == "ols":
        dist_df = (n_clusters - 1) if cov_type == "cluster" else (n_obs - k) or None
    coefficients = tidy(prep.columns, beta_full, se_full, ci, dist_df)
    threshold_names: list[str] = []
    thresholds = tidy([], [], [], ci)
    alpha = alpha_se = None
    cov_names = list(prep.columns)
    # d(reported parameter) / d(theta): diagonal (log alpha -> alpha)
    jac = np.ones(len(theta))
    if family == "ordinal":
        threshold_names = [f"{levels[j]}|{levels[j + 1]}" for j in range(len(levels) - 1)]
        thresholds = tidy(threshold_names, theta[k:], se_theta[k:], ci)
        cov_names += threshold_names
    elif family == "negbin":
        alpha = float(np.exp(theta[k]))
        jac[k] = alpha
        alpha_se = float(alpha * se_theta[k]) if np.isfinite(theta[k]) else None
        cov_names += ["alpha"]
    cov_theta_out = cov_theta * np.outer(jac, jac)
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
        n_clusters=n_clusters,
        converged=converged,
        iterations=iterations,
        warnings=flags,
        notes=notes,
        cov_type=cov_type,
        se_correction=se_used,
        weights_kind=weights_kind if weights is not None else None,
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
            return _maximize_nb2(X, y, w, offset, start, maxiter)
    else:
        raise InputError(f"family {family!r}: expected one of ordinal, logit, poisson, negbin")
    theta, converged, iterations = newton(likelihood, theta0, maxiter)
    return MLEstimate(theta, float(likelihood.loglike(theta)), converged, iterations, likelihood)


def _maximize_nb2(X, y, w, offset, start, maxiter) -> MLEstimate:
    """NB2 by Newton in (beta, log alpha), with the Poisson limit alpha = 0 as its bound.

    At the Poisson fit the score in alpha is sum w ((y - mu)^2 - y) / 2: when it is not
    positive there is no overdispersion to estimate and the Poisson fit, with log alpha =
    -inf, is the maximum; so is it when Newton drifts below ``_ALPHA_FLOOR``.
    """
    poisson = PoissonLikelihood(X, y, w, offset)
    likelihood = NB2Likelihood(X, y, w, offset)

    def poisson_limit(beta0, iterations_before):
        beta, converged, iterations = newton(poisson, beta0, maxiter)
        theta = np.concatenate((beta, [-np.inf]))
        return MLEstimate(
            theta, poisson.loglike(beta), converged, iterations_before + iterations, likelihood
        )

    theta0 = start
    if theta0 is None or not np.isfinite(theta0[-1]):
        beta0 = _log_linear_start(X, y, w, offset) if theta0 is None else theta0[:-1]
        beta_p, converged_p, iterations_p = newton(poisson, beta0, maxiter)
        mu = np.exp(X @ beta_p + (offset if offset is not None else 0.0))
        excess = float(w @ ((y - mu) ** 2 - y))
        if converged_p and excess <= 0:
            theta = np.concatenate((beta_p, [-np.inf]))
            return MLEstimate(theta, poisson.loglike(beta_p), True, iterations_p, likelihood)
        moment = excess / float(w @ mu**2)
        theta0 = np.concatenate((beta_p, [np.log(max(moment, 0.05))]))
    theta, converged, iterations = newton(likelihood, theta0, maxiter)
    if theta[-1] < np.log(_ALPHA_FLOOR):
        return poisson_limit(theta[:-1], iterations)
    return MLEstimate(theta, float(likelihood.loglike(theta)), converged, iterations, likelihood)


def _fit_family(
    family, link, X, prep: Prepared, levels, maxiter, need_scores, has_intercept, theta_names
):
    """Return theta, converged, iterations, bread (inverse information), unit scores, ll, extra.

    For NB2 with alpha at its bound 0, bread and scores cover the coefficients only.
    """
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
    k = X.shape[1]
    if family == "negbin" and theta[k] == -np.inf:
        poisson = PoissonLikelihood(X, y, w, offset)
        ll, _, H, unit_scores = poisson.derivatives(theta[:k], scores=need_scores)
        extra["note"] = (
            "no overdispersion: a Poisson model fits as well (alpha at its lower bound 0)"
        )
    else:
        ll, _, H, unit_scores = likelihood.derivatives(theta, scores=need_scores)
    bread = invert_information(-H)

    if family == "ordinal":
        certain = likelihood.fitted_prob(theta) > 1 - _SEPARATION_TOL
        kind = "quasi-complete separation"
    elif family == "logit":
        p = special.expit(likelihood.eta(theta))
        certain = np.where(y > 0.5, p, 1 - p) > 1 - _SEPARATION_TOL
        kind = "perfect or quasi-complete separation"
    elif family in ("poisson", "negbin"):
        # a zero count predicted with certainty: its regressors' estimates drift to -infinity
        certain = (y == 0) & (np.exp(likelihood.eta(theta[:k])) < _SEPARATION_TOL)
        kind = "separation (zero counts perfectly predicted)"
    else:
        certain = np.zeros(len(y), dtype=bool)
    if certain.any():
        dims = len(H) if family == "ordinal" else k
        terms = separated_terms(-H[:dims, :dims], X, w, theta_names[:dims])
        extra["separation"] = (
            f"{kind}: {json_number(w[certain].sum())} responses perfectly predicted; the "
            f"estimates of {', '.join(terms)} drift to +-infinity (not finite)"
        )
    return theta, converged, iterations, bread, unit_scores, ll, extra


def separated_terms(info: np.ndarray, X: np.ndarray, w: np.ndarray, names: list[str]) -> list:
    """Terms along which the information vanishes: the direction of infinite estimates.

    The information is put on the scale of the design columns (their weighted root mean
    square; cutpoints unscaled) and the terms loading most on its smallest eigenvector are
    named.
    """
    scale = np.ones(len(info))
    rms = np.sqrt((w @ X**2) / w.sum())
    scale[: X.shape[1]] = np.where(rms > 0, rms, 1.0)
    scaled = info / np.outer(scale, scale)
    try:
        _, vectors = np.linalg.eigh(scaled)
    except np.linalg.LinAlgError:
        return list(names)
    loading = np.abs(vectors[:, 0])
    return [name for name, value in zip(names, loading, strict=True) if value >= 0.25]


def _log_linear_start(X, y, w, offset):
    """Weighted least squares of log(y + 0.5) - offset: a safe start for log-linear models."""
    target = np.log(y + 0.5) - (offset if offset is not None else 0.0)
    sw = np.sqrt(w)
    return np.linalg.lstsq(X * sw[:, None], target * sw, rcond=None)[0]
