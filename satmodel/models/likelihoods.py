"""Likelihoods of the model families: weighted sums returning log-likelihood, gradient,
Hessian and scores per row."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

FAMILIES = ("ordinal", "logit", "ols", "poisson", "negbin")
DEFAULT_LINKS = {
    "ordinal": "logit",
    "logit": "logit",
    "ols": "identity",
    "poisson": "log",
    "negbin": "log",
}


def cdf_pdf(z: np.ndarray, link: str):
    """CDF, density and density derivative of the link's latent distribution."""
    if link == "logit":
        cdf = special.expit(z)
        pdf = cdf * (1.0 - cdf)
        dpdf = pdf * (1.0 - 2.0 * cdf)
    else:
        cdf = special.ndtr(z)
        pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        with np.errstate(invalid="ignore"):
            dpdf = -z * pdf
    for arr in (pdf, dpdf):
        arr[~np.isfinite(z)] = 0.0
    return cdf, pdf, dpdf


class OrdinalLikelihood:
    """Cumulative-link likelihood in (beta, cutpoints), P(y <= j) = F(cut_j - x'b).

    With u = cut_j - x'b and l = cut_(j-1) - x'b for a response in category j, the
    log-likelihood is log(F(u) - F(l)); u and l are linear in the parameters, so score
    and Hessian follow from the derivatives of log p in (u, l). Rows are sorted by
    category so that each category is one contiguous slice.
    """

    def __init__(self, X, codes, w, n_levels, link):
        codes = codes.astype(np.int64)
        self.order = np.argsort(codes, kind="stable")
        self.X = np.ascontiguousarray(X[self.order])
        self.codes = codes[self.order]
        self.w = w[self.order]
        self.J = n_levels
        self.link = link
        self.k = X.shape[1]
        starts = np.searchsorted(self.codes, np.arange(n_levels + 1))
        self.slices = [slice(starts[j], starts[j + 1]) for j in range(n_levels)]

    def _bounds(self, theta):
        ext = np.concatenate(([-np.inf], theta[self.k :], [np.inf]))
        eta = self.X @ theta[: self.k]
        return ext[self.codes + 1] - eta, ext[self.codes] - eta

    def _parts(self, upper, lower):
        """log p, and f, f' at u and l."""
        if self.link == "logit":
            cdf_u = special.expit(upper)
            sf_l = special.expit(-lower)
            # F(u) - F(l) = F(u) (1 - F(l)) (1 - exp(l - u)): no cancellation in either tail
            with np.errstate(divide="ignore"):
                log_prob = np.log(cdf_u * sf_l * -np.expm1(lower - upper))
            pdf_u = cdf_u * (1.0 - cdf_u)
            pdf_l = sf_l * (1.0 - sf_l)
            return log_prob, pdf_u, pdf_u * (1.0 - 2.0 * cdf_u), pdf_l, pdf_l * (2.0 * sf_l - 1.0)
        right_tail = lower > 0
        prob = np.where(
            right_tail,
            special.ndtr(-lower) - special.ndtr(-upper),
            special.ndtr(upper) - special.ndtr(lower),
        )
        with np.errstate(divide="ignore"):
            log_prob = np.log(prob)
        _, pdf_u, dpdf_u = cdf_pdf(upper, "probit")
        _, pdf_l, dpdf_l = cdf_pdf(lower, "probit")
        return log_prob, pdf_u, dpdf_u, pdf_l, dpdf_l

    def loglike(self, theta):
        if np.any(np.diff(theta[self.k :]) <= 0):
            return -np.inf
        upper, lower = self._bounds(theta)
        if self.link == "logit":
            with np.errstate(divide="ignore"):
                log_prob = np.log(
                    special.expit(upper) * special.expit(-lower) * -np.expm1(lower - upper)
                )
        else:
            log_prob = self._parts(upper, lower)[0]
        return float(self.w @ log_prob)

    def fitted_prob(self, theta):
        """Fitted probability of each row's observed category (original row order)."""
        prob = np.empty(len(self.w))
        prob[self.order] = np.exp(self._parts(*self._bounds(theta))[0])
        return prob

    def derivatives(self, theta, scores=False):
        log_prob, pdf_u, dpdf_u, pdf_l, dpdf_l = self._parts(*self._bounds(theta))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            prob = np.exp(log_prob)
            ll = float(self.w @ log_prob)
            g_u = pdf_u / prob
            g_l = -pdf_l / prob
            h_uu = dpdf_u / prob - g_u**2
            h_ll = -dpdf_l / prob - g_l**2
            h_ul = -g_u * g_l
        X, w, k, n_cuts = self.X, self.w, self.k, self.J - 1
        # u = -x'b + cut_j, l = -x'b + cut_(j-1)
        s_beta = -(g_u + g_l)
        grad = np.zeros(k + n_cuts)
        grad[:k] = X.T @ (w * s_beta)
        H = np.zeros((k + n_cuts, k + n_cuts))
        H[:k, :k] = (X * (w * (h_uu + 2 * h_ul + h_ll))[:, None]).T @ X
        a_bu = -w * (h_uu + h_ul)
        a_bl = -w * (h_ul + h_ll)
        for j, sl in enumerate(self.slices):
            if sl.start == sl.stop:
                continue
            if j < n_cuts:  # the category's upper cutpoint
                grad[k + j] += w[sl] @ g_u[sl]
                H[:k, k + j] += X[sl].T @ a_bu[sl]
                H[k + j, k + j] += w[sl] @ h_uu[sl]
            if j > 0:  # its lower cutpoint
                grad[k + j - 1] += w[sl] @ g_l[sl]
                H[:k, k + j - 1] += X[sl].T @ a_bl[sl]
                H[k + j - 1, k + j - 1] += w[sl] @ h_ll[sl]
            if 0 < j < n_cuts:
                cross = w[sl] @ h_ul[sl]
                H[k + j, k + j - 1] += cross
                H[k + j - 1, k + j] += cross
        H[k:, :k] = H[:k, k:].T
        unit_scores = None
        if scores:
            sorted_scores = np.zeros((len(w), k + n_cuts))
            sorted_scores[:, :k] = X * s_beta[:, None]
            for j, sl in enumerate(self.slices):
                if j < n_cuts:
                    sorted_scores[sl, k + j] = g_u[sl]
                if j > 0:
                    sorted_scores[sl, k + j - 1] = g_l[sl]
            unit_scores = np.empty_like(sorted_scores)
            unit_scores[self.order] = sorted_scores
        return ll, grad, H, unit_scores


class LogitLikelihood:
    def __init__(self, X, y, w, offset):
        self.X, self.y, self.w = X, y, w
        self.offset = offset if offset is not None else 0.0

    def eta(self, theta):
        return self.X @ theta + self.offset

    def loglike(self, theta):
        eta = self.eta(theta)
        return float(self.w @ (self.y * eta - np.logaddexp(0.0, eta)))

    def derivatives(self, theta, scores=False):
        eta = self.eta(theta)
        p = special.expit(eta)
        ll = float(self.w @ (self.y * eta - np.logaddexp(0.0, eta)))
        resid = self.y - p
        grad = self.X.T @ (self.w * resid)
        H = -(self.X * (self.w * p * (1 - p))[:, None]).T @ self.X
        unit_scores = self.X * resid[:, None] if scores else None
        return ll, grad, H, unit_scores


class PoissonLikelihood(LogitLikelihood):
    def __init__(self, X, y, w, offset):
        super().__init__(X, y, w, offset)
        self.const = special.gammaln(y + 1)

    def loglike(self, theta):
        eta = self.eta(theta)
        with np.errstate(over="ignore"):
            return float(self.w @ (self.y * eta - np.exp(eta) - self.const))

    def derivatives(self, theta, scores=False):
        eta = self.eta(theta)
        mu = np.exp(eta)
        ll = float(self.w @ (self.y * eta - mu - self.const))
        resid = self.y - mu
        grad = self.X.T @ (self.w * resid)
        H = -(self.X * (self.w * mu)[:, None]).T @ self.X
        unit_scores = self.X * resid[:, None] if scores else None
        return ll, grad, H, unit_scores


def log_rising_ratio(y: np.ndarray, r: np.ndarray, order: int = 0) -> np.ndarray:
    """D = log(Gamma(y + r) / (Gamma(r) r^y)) for whole counts y, or its ``order``-th
    derivative in r (1 or 2), accurate as r -> infinity.

    Differences of log-gammas (digammas) lose all digits when r is large (alpha -> 0);
    there D is the sum over i < y of log(1 + i / r), expanded in powers of 1 / r.
    """
    y, r = np.broadcast_arrays(np.asarray(y, dtype=float), np.asarray(r, dtype=float))
    out = np.empty(y.shape)
    series = y < 1e-4 * r
    ys, inv = y[series], 1.0 / r[series]
    # D = s1 / r - s2 / (2 r^2) + s3 / (3 r^3) - ..., s_m = sum over i < y of i^m
    s1 = ys * (ys - 1) / 2
    s2 = (ys - 1) * ys * (2 * ys - 1) / 6
    s3 = s1**2
    yd, rd = y[~series], r[~series]
    if order == 0:
        out[series] = inv * (s1 - inv * (s2 / 2 - inv * s3 / 3))
        out[~series] = special.gammaln(yd + rd) - special.gammaln(rd) - yd * np.log(rd)
    elif order == 1:
        out[series] = -(inv**2) * (s1 - inv * (s2 - inv * s3))
        out[~series] = special.digamma(yd + rd) - special.digamma(rd) - yd / rd
    else:
        out[series] = inv**3 * (2 * s1 - inv * (3 * s2 - 4 * inv * s3))
        out[~series] = special.polygamma(1, yd + rd) - special.polygamma(1, rd) + yd / rd**2
    return out


class NB2Likelihood(LogitLikelihood):
    """NB2 in (beta, log alpha): Var(y) = mu + alpha mu^2.

    log alpha = -inf is the Poisson limit (no overdispersion), where the log-likelihood is
    Poisson's.
    """

    def __init__(self, X, y, w, offset):
        super().__init__(X, y, w, offset)
        self.const = special.gammaln(y + 1)
        self.k = X.shape[1]

    def _terms(self, theta):
        eta = self.eta(theta[: self.k])
        mu = np.exp(eta)
        if theta[self.k] == -np.inf:
            return mu, np.inf, self.y * eta - mu - self.const
        r = np.exp(-theta[self.k])
        # written with log1p(mu / r) so that nothing cancels as r -> infinity
        shrink = np.log1p(mu / r)
        ll_rows = log_rising_ratio(self.y, r) - self.const - r * shrink + self.y * (eta - shrink)
        return mu, r, ll_rows

    def loglike(self, theta):
        with np.errstate(over="ignore", invalid="ignore"):
            _, _, ll_rows = self._terms(theta)
            return float(self.w @ ll_rows)

    def derivatives(self, theta, scores=False):
        mu, r, ll_rows = self._terms(theta)
        y, w, X = self.y, self.w, self.X
        ll = float(w @ ll_rows)
        rm = r + mu
        d_eta = (y - mu) * r / rm
        # digamma(y + r) - digamma(r) + log(r / rm) + 1 - (r + y) / rm and its derivative,
        # regrouped so that no term is a difference of two large numbers as r -> infinity
        d_r = log_rising_ratio(y, r, 1) - np.log1p(mu / r) + (r + y) * mu / (r * rm)
        d_a = -r * d_r
        d_rr = log_rising_ratio(y, r, 2) + mu * (mu * r - 2 * y * r - y * mu) / (r * rm) ** 2
        d_aa = r * d_r + r**2 * d_rr
        d_eta_eta = -r * mu * (r + y) / rm**2
        d_eta_a = -r * (y - mu) * mu / rm**2
        grad = np.concatenate((X.T @ (w * d_eta), [w @ d_a]))
        H_bb = (X * (w * d_eta_eta)[:, None]).T @ X
        H_ba = X.T @ (w * d_eta_a)
        H = np.block([[H_bb, H_ba[:, None]], [H_ba[None, :], np.array([[w @ d_aa]])]])
        unit_scores = np.hstack((X * d_eta[:, None], d_a[:, None])) if scores else None
        return ll, grad, H, unit_scores
