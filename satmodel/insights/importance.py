"""Driver importance: Shapley (LMG / dominance) decomposition of explained variation.

The explained variation of a model with every driver is split between the drivers by the
Shapley value over all 2^p subsets of drivers (Lindeman, Merenda and Gold's LMG; "general
dominance" in dominance analysis): a driver's share is its average gain in explained
variation when added to a subset of the other drivers, averaged over subset sizes. The
shares add up to the full model's explained variation exactly.

* ``family="ols"`` (e.g. ``csat_mean`` of the panel): linear R². Every subset's R² comes
  from the covariance matrix of (drivers, outcome), not from refitting, and the covariance
  of a customer-level bootstrap resample is a weighted sum of per-customer sufficient
  statistics (n, sums, cross-products): 1,000 resamples x 256 subsets cost a few batched
  matrix solves.
* ``family="ordinal" | "logit" | "negbin"`` (response-level CSAT, top-2 box, complaint
  counts with the ``active_users`` exposure): McFadden's likelihood-ratio pseudo-R²
  ``1 - ll(subset) / ll(null)``, refitting every subset (the null model keeps the
  cutpoints, the intercept and offset, and NB2's alpha); bootstrap refits start from the
  full-sample estimates.

Intervals: customer-level (cluster) bootstrap, percentile intervals of shares and ranks;
a permutation null per driver (:mod:`satmodel.insights.noise`) says which shares are
distinguishable from noise.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
from scipy import sparse

from satmodel.errors import InputError
from satmodel.insights.noise import (
    DEFAULT_PERMUTATIONS,
    Permutations,
    linear_null_shares,
    noise_test,
)
from satmodel.insights.scenarios import check_ci
from satmodel.insights.shapley import (
    batched_r2,
    shapley_from_covariance,
    shapley_values,
    subset_columns,
)
from satmodel.plotting import figure_and_axes
from satmodel.vocabulary import DRIVERS

__all__ = [
    "DRIVER_NAMES",
    "ImportanceResult",
    "default_drivers",
    "driver_importance",
    "driver_performance",
    "plot_importance_quadrant",
    "shapley_from_covariance",
    "shapley_values",
]

# short names of the default model terms
DRIVER_NAMES = {d.term: d.key for d in DRIVERS}
# which expectation each default driver is judged against (driver_performance)
_PERFORMANCE_RULES = {d.key: d.area for d in DRIVERS if d.area != "segment"}
_FAMILIES = ("ols", "ordinal", "logit", "negbin")
_MAX_DRIVERS = 12
# Newton steps of a bootstrap refit, started at the full-sample estimate of the same subset
# (the start is O(n^-1/2) from the resample's optimum; two steps reach it to O(n^-2))
_BOOT_NEWTON = 2
# default terms grouped by service area (drivers="grouped")
_GROUPS: dict[str, tuple[str, ...]] = {
    area: tuple(d.key for d in DRIVERS if d.area == area)
    for area in dict.fromkeys(d.area for d in DRIVERS)
}


def default_drivers(columns, grouped: bool = False) -> dict[str, list[str]]:
    """One driver per term of the default model formulas (:func:`models.default_formulas`).

    Parameters
    ----------
    columns : iterable of str
        Available columns.
    grouped : bool
        Group the terms by service area instead: latency (log latency and its shortfall),
        availability (downtime, last month's downtime, availability shortfall), error_rate,
        resolution, segment - 5 drivers, 32 subsets (fast for the refitting families).

    Returns
    -------
    dict
        Driver name -> list of patsy terms.
    """
    from satmodel.models import default_formulas

    rhs = default_formulas(columns)["csat"].split("~", 1)[1]
    terms = [t.strip() for t in rhs.split(" + ")]
    per_term = {DRIVER_NAMES.get(t, t): [t] for t in terms}
    if not grouped:
        return per_term
    out: dict[str, list[str]] = {}
    used = set()
    for group, names in _GROUPS.items():
        members = [per_term[n][0] for n in names if n in per_term]
        used.update(n for n in names if n in per_term)
        if members:
            out[group] = members
    out.update({name: ts for name, ts in per_term.items() if name not in used})
    return out


# --------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------


@dataclass
class ImportanceResult:
    """Result of :func:`driver_importance`.

    Attributes
    ----------
    table_ : DataFrame
        One row per driver: driver, terms, share (contribution to the explained variation;
        shares add up to ``total_``), share_ci_low, share_ci_high, relative_share (share /
        total), relative_share_ci_low, relative_share_ci_high, rank (1 = most important),
        rank_ci_low, rank_ci_high, measure, noise_p_value, distinguishable (the share beats
        those of permuted copies of the driver; NA without the test). Sorted by rank.
        Share intervals are percentile intervals widened to hold the estimate, starting at 0
        for drivers indistinguishable from noise.
    total_, total_ci_ : float, (float, float)
        Explained variation of the full model and its interval.
    measure_ : str
        ``"r2"`` (linear) or ``"mcfadden_r2"``.
    subset_values_ : array (2**p,)
        Explained variation of every driver subset (bit mask index).
    boot_shares_ : array (n_boot, p)
        Bootstrap shares (columns in ``drivers_`` order).
    """

    table_: pd.DataFrame
    total_: float
    total_ci_: tuple
    measure_: str
    family: str
    outcome: str
    drivers_: dict
    subset_values_: np.ndarray
    boot_shares_: np.ndarray
    n_obs_: float
    n_clusters_: int
    n_boot: int
    ci: float
    notes_: list = field(default_factory=list)

    def plot_quadrant(self, performance=None, panel=None, **kwargs):
        """Importance-versus-performance plot (see :func:`plot_importance_quadrant`)."""
        return plot_importance_quadrant(self, performance=performance, panel=panel, **kwargs)


def _ranks(shares: np.ndarray) -> np.ndarray:
    """Rank 1 = largest share, along the last axis (ties share the smaller rank)."""
    order = np.argsort(-shares, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, shares.shape[-1] + 1)[None, :], axis=-1)
    return ranks


def _table(drivers, shares, boot, total, ci, measure, null) -> pd.DataFrame:
    alpha = (1 - ci) / 2
    p = len(drivers)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = shares / total
        boot_rel = boot / boot.sum(axis=1, keepdims=True)
    ranks = _ranks(shares[None, :])[0]
    if len(boot):
        boot_ranks = _ranks(boot)
        lo, hi = np.nanquantile(boot, [alpha, 1 - alpha], axis=0)
        rlo, rhi = np.nanquantile(boot_rel, [alpha, 1 - alpha], axis=0)
        klo = np.quantile(boot_ranks, alpha, axis=0, method="lower")
        khi = np.quantile(boot_ranks, 1 - alpha, axis=0, method="higher")
        # the interval always holds the estimate (a biased bootstrap can put it outside) ...
        lo, hi = np.minimum(lo, shares), np.maximum(hi, shares)
        rlo, rhi = np.minimum(rlo, rel), np.maximum(rhi, rel)
    else:
        lo = hi = rlo = rhi = klo = khi = np.full(p, np.nan)
    noise_p, distinguishable = noise_test(shares, null, ci)
    # ... and zero when the permutation test cannot tell the share from noise's
    noise = np.array([d is False for d in distinguishable])
    lo, rlo = np.where(noise, 0.0, lo), np.where(noise, 0.0, rlo)
    table = pd.DataFrame(
        {
            "driver": list(drivers),
            "terms": [" + ".join(t) for t in drivers.values()],
            "share": shares,
            "share_ci_low": lo,
            "share_ci_high": hi,
            "relative_share": rel,
            "relative_share_ci_low": rlo,
            "relative_share_ci_high": rhi,
            "rank": ranks.astype(int),
            "rank_ci_low": klo,
            "rank_ci_high": khi,
            "measure": measure,
            "noise_p_value": noise_p,
            "distinguishable": pd.array(distinguishable, dtype="boolean"),
        }
    )
    return table.sort_values("rank", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------
# data preparation
# --------------------------------------------------------------------------------------


def _prepare(data, outcome, drivers, family, weights, cluster, exposure):
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if family not in _FAMILIES:
        raise InputError(f"family {family!r}: must be one of {', '.join(_FAMILIES)}")
    if drivers is None or (isinstance(drivers, str) and drivers in ("terms", "grouped")):
        drivers = default_drivers(data.columns, grouped=drivers == "grouped")
    elif isinstance(drivers, list | tuple):
        drivers = {DRIVER_NAMES.get(t, t): [t] for t in drivers}
    drivers = {str(k): list(v) if isinstance(v, list | tuple) else [v] for k, v in drivers.items()}
    if not 1 <= len(drivers) <= _MAX_DRIVERS:
        raise InputError(
            f"drivers: {len(drivers)} given; the Shapley decomposition takes 1 to "
            f"{_MAX_DRIVERS} drivers (group terms into drivers with a dict)"
        )
    terms = [t for ts in drivers.values() for t in ts]
    if cluster is not None and cluster not in data.columns:
        raise InputError(
            f"data: cluster column {cluster!r} not found (e.g. customer_id; or cluster=None)"
        )
    env = patsy.EvalEnvironment(
        [{"np": np, **{n: getattr(patsy.builtins, n) for n in patsy.builtins.__all__}}]
    )
    frame = data.reset_index(drop=True)
    lhs = outcome
    try:
        y_df, x_df = patsy.dmatrices(
            f"{lhs} ~ 1 + {' + '.join(terms)}",
            frame,
            eval_env=env,
            NA_action="drop",
            return_type="dataframe",
        )
    except (patsy.PatsyError, NameError, KeyError) as exc:
        raise InputError(
            f"data: importance formula cannot be evaluated ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0]}); columns: {', '.join(map(str, data.columns[:12]))}"
        ) from None
    rows = x_df.index.to_numpy()
    info = x_df.design_info
    groups = []
    for ts in drivers.values():
        cols = []
        for t in ts:
            matches = [
                name
                for name in info.term_names
                if name == t or name.replace(" ", "") == t.replace(" ", "")
            ]
            if not matches:
                raise InputError(f"drivers: term {t!r} not found in the design ({info.term_names})")
            sl = info.term_name_slices[matches[0]]
            cols.extend(range(sl.start - 1, sl.stop - 1))  # minus the intercept
        groups.append(cols)
    X = x_df.to_numpy(dtype=float)[:, 1:]
    y = y_df.to_numpy(dtype=float)
    # a logical outcome such as I(csat >= 4) gives [False, True] columns: keep True
    y = y[:, -1]
    w = np.ones(len(rows))
    if weights is not None:
        if weights not in frame.columns:
            raise InputError(f"data: weights column {weights!r} not found")
        w = pd.to_numeric(frame.loc[rows, weights], errors="coerce").to_numpy(dtype=float)
    offset = None
    if family == "negbin":
        if exposure not in frame.columns:
            raise InputError(f"data: exposure column {exposure!r} not found (e.g. active_users)")
        expo = pd.to_numeric(frame.loc[rows, exposure], errors="coerce").to_numpy(dtype=float)
        keep = expo > 0
        w = np.where(keep, w, 0.0)
        offset = np.log(np.where(keep, expo, 1.0))
    keep = np.isfinite(w) & (w > 0) & np.all(np.isfinite(X), axis=1) & np.isfinite(y)
    if cluster is not None:
        codes = pd.factorize(frame.loc[rows, cluster].astype(str))[0]
    else:
        codes = np.arange(len(rows))
    X, y, w, codes = X[keep], y[keep], w[keep], codes[keep]
    offset = offset[keep] if offset is not None else None
    codes = pd.factorize(codes)[0]
    if len(y) < 3:
        raise InputError(f"data: only {len(y)} complete rows for {outcome!r} and the drivers")
    return drivers, groups, X, y, w, offset, codes


def _cluster_stats(Z: np.ndarray, w: np.ndarray, codes: np.ndarray):
    """Per-cluster n, sums and cross-products of standardized Z (rows weighted by w)."""
    n_clusters = int(codes.max()) + 1
    total = w.sum()
    mean = (w @ Z) / total
    sd = np.sqrt((w @ (Z - mean) ** 2) / total)
    sd[sd == 0] = 1.0
    Zs = (Z - mean) / sd
    G = sparse.csr_matrix((w, (codes, np.arange(len(w)))), shape=(n_clusters, len(w)))
    n = np.asarray(G.sum(axis=1)).ravel()
    S = np.asarray(G @ Zs)
    m = Z.shape[1]
    P = np.empty((n_clusters, m, m))
    for j in range(m):
        P[:, :, j] = np.asarray(G @ (Zs * Zs[:, j : j + 1]))
    return n, S, P.reshape(n_clusters, m * m)


def _cov_from_stats(N, S, P):
    mean = S / N[:, None]
    m = S.shape[1]
    return P.reshape(-1, m, m) / N[:, None, None] - mean[:, :, None] * mean[:, None, :]


# --------------------------------------------------------------------------------------
# likelihood refits for the pseudo-R²
# --------------------------------------------------------------------------------------


class _Refitter:
    def __init__(self, family, X, y, w, offset):
        from satmodel import models

        self._m = models
        self.family, self.X, self.y, self.w, self.offset = family, X, y, w, offset
        self.n_levels = None
        if family == "ordinal":
            levels = np.unique(y)
            self.codes = np.searchsorted(levels, y).astype(float)
            self.n_levels = len(levels)
            if self.n_levels < 2:
                raise InputError("data: the ordinal outcome has a single level")

    def fit(self, cols, rows=None, w=None, theta0=None, maxiter=100):
        """Log-likelihood and parameters of the model with design columns ``cols``."""
        m = self._m
        sel = slice(None) if rows is None else rows
        X = self.X[sel][:, cols]
        w = self.w[sel] if w is None else w
        y = self.y[sel]
        if self.family == "ordinal":
            outcome, offset = self.codes[sel], None
        else:
            X = np.hstack((np.ones((X.shape[0], 1)), X))
            outcome = y
            offset = None if self.offset is None else self.offset[sel]
        estimate = m.maximize_likelihood(
            self.family,
            X,
            outcome,
            w,
            offset=offset,
            n_levels=self.n_levels,
            start=theta0,
            maxiter=maxiter,
        )
        return estimate.log_likelihood, estimate.theta


def _collapse(X, y, w, offset, codes):
    """Merge identical rows of one cluster into one weighted row (same likelihood)."""
    parts = [codes[:, None].astype(float), X, y[:, None]]
    if offset is not None:
        parts.append(offset[:, None])
    key = np.hstack(parts)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    w = np.bincount(inverse, weights=w, minlength=len(uniq))
    m = X.shape[1]
    offset = uniq[:, m + 2] if offset is not None else None
    return uniq[:, 1 : m + 1], uniq[:, m + 1], w, offset, uniq[:, 0].astype(int)


def _base_fits(refit, subsets):
    """Fit every subset, each started from the fit without its highest driver."""
    base = [refit.fit(subsets[0])]
    for mask in range(1, len(subsets)):
        parent = mask & ~(1 << (mask.bit_length() - 1))
        theta = base[parent][1]
        k_parent = len(subsets[parent])
        n_new = len(subsets[mask]) - k_parent
        head = 0 if refit.family == "ordinal" else 1  # intercept first
        split = head + k_parent
        theta0 = np.concatenate((theta[:split], np.zeros(n_new), theta[split:]))
        base.append(refit.fit(subsets[mask], theta0=theta0))
    return base


def _refit_null_shares(refit, groups, subsets, base, permutations) -> np.ndarray:
    """Shares (n_perm, p) of each driver when its columns are permuted (refitting only the
    subsets that hold it, each from the fit without it plus zeros)."""
    p = len(groups)
    ll = np.array([b[0] for b in base])
    base_values = 1.0 - ll / ll[0]
    head = 0 if refit.family == "ordinal" else 1  # intercept first
    masks = np.arange(len(subsets))
    out = np.empty((permutations.n_perm, p))
    for j, cols in enumerate(groups):
        holding = masks[(masks >> j) & 1 == 1]
        for b, copy in enumerate(permutations.copies(refit.X[:, cols])):
            X = refit.X.copy()
            X[:, cols] = copy
            permuted = _Refitter(refit.family, X, refit.y, refit.w, refit.offset)
            values = base_values.copy()
            for mask in holding:
                theta = base[mask & ~(1 << j)][1]
                at = head + sum(len(groups[i]) for i in range(j) if mask >> i & 1)
                theta0 = np.concatenate((theta[:at], np.zeros(len(cols)), theta[at:]))
                ll_mask = permuted.fit(subsets[mask], theta0=theta0, maxiter=_BOOT_NEWTON)[0]
                values[mask] = 1.0 - ll_mask / ll[0]
            out[b, j] = shapley_values(values, p)[j]
    return out


def _blas_one_thread():
    from satmodel.models import single_threaded_blas

    return single_threaded_blas()


def _boot_values(refit, subsets, base, wb):
    rows = np.flatnonzero(wb > 0)
    lls = np.array(
        [
            refit.fit(cols, rows=rows, w=wb[rows], theta0=base[s][1], maxiter=_BOOT_NEWTON)[0]
            for s, cols in enumerate(subsets)
        ]
    )
    return 1.0 - lls / lls[0]


# --------------------------------------------------------------------------------------
# the entry point
# --------------------------------------------------------------------------------------


def driver_importance(
    data: pd.DataFrame,
    outcome: str = "csat_mean",
    drivers=None,
    family: str = "ols",
    weights: str | None = None,
    cluster: str | None = "customer_id",
    exposure: str = "active_users",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int | None = 0,
    progress: bool = False,
    n_perm: int | None = None,
) -> ImportanceResult:
    """Shapley (LMG) decomposition of explained variation, with customer-bootstrap intervals.

    Parameters
    ----------
    data : DataFrame
        The panel (``csat_mean`` with ``family="ols"``, ``complaints`` with ``"negbin"``) or
        the survey responses (``csat`` with ``"ordinal"``, ``I(csat >= 4)`` with
        ``"logit"``).
    outcome : str
        Outcome column or patsy expression.
    drivers : dict, list or {"terms", "grouped"}, optional
        Driver name -> list of patsy terms (a driver may hold several design columns, e.g.
        ``C(segment)``); a list gives one driver per term. Default (``"terms"``): one driver
        per term of the default model formulas; ``"grouped"``: the default terms grouped by
        service area (:func:`default_drivers`).
    family : {"ols", "ordinal", "logit", "negbin"}
        Linear R² (fast, sufficient statistics) or McFadden pseudo-R² (refits).
    weights : str, optional
        Frequency-weight column (e.g. ``csat_n`` for ``csat_mean``).
    cluster : str or None
        Resampling unit of the bootstrap (default ``customer_id``); None resamples rows.
    exposure : str
        Exposure column of ``negbin`` (log offset).
    n_boot : int
        Bootstrap resamples (0: no intervals). The refitting families cost 2**p fits per
        resample: use tens to a few hundred.
    ci : float
        Confidence level of the percentile intervals.
    seed : int, optional
        Seed of the resampling.
    progress : bool
        tqdm progress bar on stderr.
    n_perm : int, optional
        Permutations per driver of the noise test (column ``distinguishable``: the share
        beats those of the driver's permuted copies at level 1 - ci; ``noise_p_value``;
        an indistinguishable driver's share interval starts at 0). Default 39 for ``ols``,
        19 for the refitting families, 0 (no test) when ``n_boot`` is 0.

    Returns
    -------
    ImportanceResult
    """
    from tqdm import tqdm

    ci = check_ci(ci)
    if int(n_boot) < 0:
        raise InputError(f"n_boot: must be >= 0, got {n_boot!r}")
    n_boot = int(n_boot)
    if n_perm is None:
        n_perm = (
            0 if n_boot == 0 else DEFAULT_PERMUTATIONS["linear" if family == "ols" else "refit"]
        )
    if int(n_perm) < 0:
        raise InputError(f"n_perm: must be >= 0, got {n_perm!r}")
    n_perm = int(n_perm)
    drivers, groups, X, y, w, offset, codes = _prepare(
        data, outcome, drivers, family, weights, cluster, exposure
    )
    p = len(drivers)
    n_clusters = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    subsets = subset_columns(groups)
    counts = (
        rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot)
        if n_boot
        else np.zeros((0, n_clusters))
    )
    # drawn after the resamples: the bootstrap does not depend on n_perm
    perm_rng = np.random.default_rng(rng.integers(2**63))
    notes: list[str] = []
    if family == "ols":
        measure = "r2"
        n_c, S, P = _cluster_stats(np.column_stack((X, y)), w, codes)
        weights_all = np.vstack((np.ones(n_clusters), counts)).astype(float)
        values = np.empty((n_boot + 1, len(subsets)))
        chunk = 250
        bar = tqdm(total=n_boot + 1, desc="importance", file=sys.stderr, disable=not progress)
        for start in range(0, n_boot + 1, chunk):
            K = weights_all[start : start + chunk]
            cov = _cov_from_stats(K @ n_c, K @ S, K @ P)
            values[start : start + chunk] = batched_r2(cov, subsets)
            bar.update(len(K))
        bar.close()
        values[:, 0] = 0.0
        with _blas_one_thread():
            null = linear_null_shares(
                np.column_stack((X, y)),
                w,
                groups,
                subsets,
                values[0],
                Permutations(codes, w, n_perm, perm_rng),
            )
    else:
        measure = "mcfadden_r2"
        X, y, w, offset, codes = _collapse(X, y, w, offset, codes)
        refit = _Refitter(family, X, y, w, offset)
        with _blas_one_thread():
            base = _base_fits(refit, subsets)
        ll = np.array([b[0] for b in base])
        values = np.empty((n_boot + 1, len(subsets)))
        values[0] = 1.0 - ll / ll[0]
        bar = tqdm(total=n_boot, desc="importance", file=sys.stderr, disable=not progress)
        for b in range(n_boot):
            with _blas_one_thread():
                values[b + 1] = _boot_values(refit, subsets, base, w * counts[b][codes])
            bar.update()
        bar.close()
        with _blas_one_thread():
            permutations = Permutations(codes, w, n_perm, perm_rng)
            null = _refit_null_shares(refit, groups, subsets, base, permutations)
        notes.append("McFadden pseudo-R² = 1 - ll(subset) / ll(null model)")
    shares_all = shapley_values(values, p)
    shares, boot = shares_all[0], shares_all[1:]
    total = float(values[0, -1])
    alpha = (1 - ci) / 2
    totals = values[1:, -1]
    total_ci = (
        tuple(float(v) for v in np.quantile(totals, [alpha, 1 - alpha]))
        if n_boot
        else (float("nan"), float("nan"))
    )
    table = _table(drivers, shares, boot, total, ci, measure, null)
    noise = table.loc[table["distinguishable"].eq(False).fillna(False), "driver"].tolist()
    if noise:
        notes.append(
            f"indistinguishable from noise (share not above those of {n_perm} permuted copies "
            f"at level {1 - ci:.2g}): {', '.join(noise)}; their share intervals start at 0"
        )
    table["family"] = family
    table["outcome"] = outcome
    return ImportanceResult(
        table_=table,
        total_=total,
        total_ci_=total_ci,
        measure_=measure,
        family=family,
        outcome=outcome,
        drivers_=drivers,
        subset_values_=values[0],
        boot_shares_=boot,
        n_obs_=float(w.sum()),
        n_clusters_=n_clusters,
        n_boot=n_boot,
        ci=ci,
        notes_=notes,
    )


# --------------------------------------------------------------------------------------
# performance and the quadrant plot
# --------------------------------------------------------------------------------------


def driver_performance(
    panel: pd.DataFrame, window: int = 1, error_rate_slo: float = 0.01
) -> pd.Series:
    """Current performance of each default driver: % of customers meeting expectation.

    Over the last ``window`` months: latency drivers - p95 latency <= the customer's
    expected_latency_p95_ms; downtime/availability drivers - availability_pct >=
    expected_availability_pct; error_rate - error rate <= ``error_rate_slo``; resolution -
    median resolution hours <= expected_resolution_hours (customer-months without a
    measurement are left out).

    Returns
    -------
    Series
        Driver name -> percentage (0-100).
    """
    months = sorted(panel["month"].astype(str).unique())[-window:]
    recent = panel[panel["month"].astype(str).isin(months)]

    def share(ok, valid):
        valid = valid & ok.notna()
        return float(100.0 * ok[valid].astype(float).mean()) if valid.any() else np.nan

    rules = {}
    cols = set(recent.columns)
    if {"latency_p95_ms", "expected_latency_p95_ms"} <= cols:
        ok = recent["latency_p95_ms"] <= recent["expected_latency_p95_ms"]
        rules["latency"] = share(ok, recent["latency_p95_ms"].notna())
    if {"availability_pct", "expected_availability_pct"} <= cols:
        ok = recent["availability_pct"] >= recent["expected_availability_pct"]
        rules["availability"] = share(ok, recent["availability_pct"].notna())
    if "error_rate" in cols:
        rules["error_rate"] = share(
            recent["error_rate"] <= error_rate_slo, recent["error_rate"].notna()
        )
    if {"resolution_hours_median", "expected_resolution_hours"} <= cols:
        ok = recent["resolution_hours_median"] <= recent["expected_resolution_hours"]
        rules["resolution"] = share(ok, recent["resolution_hours_median"].notna())
    out = {d: rules[r] for d, r in _PERFORMANCE_RULES.items() if r in rules}
    return pd.Series(out, name="performance_pct", dtype=float)


def plot_importance_quadrant(
    importance, performance=None, panel=None, ax=None, title: str | None = None
):
    """Importance-versus-current-performance (quadrant) plot.

    Parameters
    ----------
    importance : ImportanceResult or its ``table_``
    performance : Series or dict, optional
        Driver -> current performance in % (default: :func:`driver_performance` of
        ``panel``). Drivers without a performance (e.g. segment) are left out.
    panel : DataFrame, optional
        Used for the default performance.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, 7.5, 5.5)
    table = importance.table_ if isinstance(importance, ImportanceResult) else importance
    measure = str(table["measure"].iloc[0]) if "measure" in table else "r2"
    if performance is None:
        if panel is None:
            raise InputError("performance: give performance= or panel= for the default")
        performance = driver_performance(panel)
    performance = pd.Series(performance, dtype=float)
    data = table.assign(performance=table["driver"].map(performance)).dropna(subset=["performance"])
    if data.empty:
        raise InputError(
            f"performance: no driver of {list(table['driver'])} has a performance value"
        )
    imp = 100.0 * data["relative_share"]
    ax.scatter(data["performance"], imp, s=60, color="tab:blue", zorder=3)
    if "relative_share_ci_low" in data and data["relative_share_ci_low"].notna().any():
        lo = 100.0 * data["relative_share_ci_low"]
        hi = 100.0 * data["relative_share_ci_high"]
        yerr = [np.clip(imp - lo, 0, None), np.clip(hi - imp, 0, None)]
        ax.errorbar(data["performance"], imp, yerr=yerr, fmt="none", ecolor="grey", zorder=2)
    y_span = max(float(np.ptp(imp)), 1.0)
    placed: list[float] = []
    for (_, row), y in zip(data.iterrows(), imp, strict=True):
        # labels of points at about the same importance are stacked, one line apart, so
        # long driver names never run into each other
        near = sum(abs(y - earlier) < 0.06 * y_span for earlier in placed)
        placed.append(y)
        ax.annotate(
            row["driver"],
            (row["performance"], y),
            textcoords="offset points",
            xytext=(5, 5 - 13 * near),
            fontsize=9,
        )
    x_mid, y_mid = float(data["performance"].mean()), float(imp.mean())
    ax.axvline(x_mid, color="grey", linestyle="--", linewidth=1)
    ax.axhline(y_mid, color="grey", linestyle="--", linewidth=1)
    # two short lines each, in opposite top corners: they stay apart even on a narrow panel
    for x, align, text, color in (
        (0.02, "left", "fix first:\nimportant,\nunderperforming", "firebrick"),
        (0.98, "right", "keep up\nthe good work", "darkgreen"),
    ):
        ax.text(
            x,
            0.98,
            text,
            transform=ax.transAxes,
            va="top",
            ha=align,
            fontsize=8,
            color=color,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
            zorder=4,
        )
    label = "R²" if measure == "r2" else "McFadden pseudo-R²"
    ax.margins(x=0.25, y=0.22)  # headroom for the corner labels
    ax.set_xlabel("Current performance: customers meeting their expectation (%)")
    ax.set_ylabel(f"Importance: share of explained variation ({label}, %)")
    ax.set_title(title or "Driver importance vs current performance")
    ax.grid(alpha=0.3)
    return fig
