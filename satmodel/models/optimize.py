"""Newton-Raphson maximisation, information inversion, sandwich covariances, collinearity."""

from __future__ import annotations

import numpy as np
from scipy import linalg


def newton(likelihood, theta0, maxiter: int, tol: float = 1e-12):
    """Damped Newton-Raphson; returns (theta, converged, iterations)."""
    theta = np.asarray(theta0, dtype=float).copy()
    ll = likelihood.loglike(theta)
    if not np.isfinite(ll):
        return theta, False, 0
    for iteration in range(1, maxiter + 1):
        _, grad, H, _ = likelihood.derivatives(theta)
        if not (np.all(np.isfinite(grad)) and np.all(np.isfinite(H))):
            return theta, False, iteration
        step = _ascent_direction(grad, H)
        decrement = float(grad @ step)
        if decrement < tol:
            # quadratic region: one more full step polishes to machine precision
            candidate = theta + step
            ll_candidate = likelihood.loglike(candidate)
            if np.isfinite(ll_candidate) and ll_candidate >= ll - 1e-9 * (1 + abs(ll)):
                theta = candidate
            return theta, True, iteration
        if decrement < 1e-6:
            candidate = theta + step
            ll_candidate = likelihood.loglike(candidate)
            if np.isfinite(ll_candidate) and ll_candidate >= ll - 1e-9 * (1 + abs(ll)):
                theta, ll = candidate, ll_candidate
                continue
        scale = 1.0
        while scale > 1e-12:
            candidate = theta + scale * step
            ll_candidate = likelihood.loglike(candidate)
            if np.isfinite(ll_candidate) and ll_candidate > ll:
                break
            scale *= 0.5
        else:
            # no ascent possible: at the optimum to machine precision, or stuck
            return theta, decrement < 1e-6, iteration
        theta, ll = candidate, ll_candidate
    return theta, False, maxiter


def _ascent_direction(grad, H):
    neg_h = -H
    ridge = 0.0
    scale = max(float(np.max(np.abs(np.diag(neg_h)))), 1e-12)
    for _ in range(30):
        try:
            factor = linalg.cho_factor(neg_h + ridge * np.eye(len(grad)), check_finite=False)
            return linalg.cho_solve(factor, grad, check_finite=False)
        except linalg.LinAlgError:
            ridge = scale * 1e-8 if ridge == 0 else ridge * 10
    return grad / scale


def invert_information(info: np.ndarray) -> np.ndarray:
    try:
        factor = linalg.cho_factor(info, check_finite=False)
        return linalg.cho_solve(factor, np.eye(len(info)), check_finite=False)
    except linalg.LinAlgError:
        return np.linalg.pinv(info)


SE_CORRECTIONS = ("statsmodels", "stata")


def small_sample_factor(robust_kind, se_correction, n_obs, n_params, n_groups, likelihood):
    """Factor multiplying a sandwich covariance, by convention.

    ``statsmodels`` (also R sandwich): clusters G/(G-1) (N-1)/(N-k), HC0 1. ``stata``: the
    ML commands (``vce(cluster)``, ``vce(robust)``) use G/(G-1) and N/(N-1); ``regress``
    uses G/(G-1) (N-1)/(N-k) and N/(N-k).
    """
    if robust_kind == "cluster":
        factor = n_groups / (n_groups - 1.0)
        if se_correction == "statsmodels" or not likelihood:
            factor *= (n_obs - 1.0) / (n_obs - n_params)
        return factor
    if se_correction == "statsmodels":
        return 1.0
    return n_obs / (n_obs - 1.0) if likelihood else n_obs / (n_obs - n_params)


def sandwich(bread, unit_scores, w, groups, robust_kind, factor, frequency=True):
    """Cluster-robust (CRV1) or heteroskedasticity-robust covariance times ``factor``.

    A row of frequency weight w is w identical observations (w s s' in the HC meat); with
    analytic weights it is one observation whose score is w s.
    """
    k = bread.shape[0]
    if robust_kind == "cluster":
        n_groups = int(groups.max()) + 1
        sums = np.zeros((n_groups, k))
        np.add.at(sums, groups, unit_scores * w[:, None])
        meat = sums.T @ sums
    else:
        weighted = unit_scores * w[:, None]
        meat = weighted.T @ (unit_scores if frequency else weighted)
    return factor * bread @ meat @ bread


# --------------------------------------------------------------------------------------
# collinearity
# --------------------------------------------------------------------------------------


def standardized_design(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit weighted spread, for rank decisions.

    Constant columns become ones (zero columns stay zero); the others are centred only when
    a constant column is present (centring keeps their span only then). A column of
    99.99 +- 0.003 is then as well conditioned as any other.
    """
    total = w.sum()
    mean = (w @ X) / total
    centred = X - mean
    spread = np.sqrt((w @ centred**2) / total)
    constant = spread <= 1e-12 * np.maximum(np.abs(mean), 1e-300)
    if not (constant & (mean != 0)).any():
        centred, mean = X, np.zeros(X.shape[1])
        spread = np.sqrt((w @ X**2) / total)
    out = np.where(spread > 0, centred / np.where(spread > 0, spread, 1.0), 0.0)
    out[:, constant] = (mean[constant] != 0).astype(float)
    return out


def independent_columns(X: np.ndarray, w: np.ndarray, tol: float = 1e-9) -> list[int]:
    """Indices of columns kept, in order, dropping each one that earlier columns explain.

    Decided on :func:`standardized_design`, so the scale or offset of a column never makes
    it look redundant; a column is dropped when earlier ones explain all but ``tol`` of its
    variance.
    """
    Z = standardized_design(X, w)
    gram = (Z * w[:, None]).T @ Z
    kept: list[int] = []
    for j in range(X.shape[1]):
        gjj = gram[j, j]
        if gjj <= 0:
            continue
        if kept:
            g_sj = gram[np.ix_(kept, [j])]
            g_ss = gram[np.ix_(kept, kept)]
            coef = np.linalg.lstsq(g_ss, g_sj, rcond=None)[0]
            residual = gjj - (g_sj.T @ coef).item()
            if residual <= tol * gjj:
                continue
        kept.append(j)
    return kept
