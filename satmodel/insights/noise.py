"""Is a driver's importance share distinguishable from noise? A permutation null per driver.

A share is never negative and a driver of pure noise still gets a small positive one, so
percentile bootstrap intervals of small shares sit above zero and can even exclude the
estimate. Here each driver's columns are permuted (their cluster means across clusters,
the deviations from them within clusters: the driver keeps its between/within structure
and loses any link with the outcome) and the shares recomputed; the driver is
*distinguishable* when its share exceeds what permuted copies get.
"""

from __future__ import annotations

import numpy as np

from satmodel.insights.shapley import batched_r2, shapley_values

# permutations per driver when not given: the linear null is cheap, refits are not
DEFAULT_PERMUTATIONS = {"linear": 39, "refit": 19}


class Permutations:
    """Permutations of drivers' columns: their cluster means permuted across clusters and
    their deviations from them permuted across rows. No link with the outcome is left, and
    the between-cluster spread that decides the null's width is kept (rows as clusters: a
    plain permutation). The same ``n_perm`` permutations serve every driver.
    """

    def __init__(self, codes: np.ndarray, w: np.ndarray, n_perm: int, rng):
        self.codes, self.w, self.n_perm = codes, w, n_perm
        self.n_clusters = int(codes.max()) + 1
        self.totals = np.bincount(codes, weights=w, minlength=self.n_clusters)
        self.clusters = [rng.permutation(self.n_clusters) for _ in range(n_perm)]
        self.rows = [rng.permutation(len(codes)) for _ in range(n_perm)]

    def copies(self, values: np.ndarray):
        """Yield the ``n_perm`` permuted copies of ``values`` (rows x columns)."""
        sums = np.stack(
            [
                np.bincount(self.codes, weights=self.w * v, minlength=self.n_clusters)
                for v in values.T
            ],
            axis=1,
        )
        means = sums / np.where(self.totals > 0, self.totals, 1.0)[:, None]
        deviations = values - means[self.codes]
        for clusters, rows in zip(self.clusters, self.rows, strict=True):
            yield means[clusters][self.codes] + deviations[rows]


def linear_null_shares(Z, w, groups, subsets, base_values, permutations) -> np.ndarray:
    """Shares (n_perm, p) of each driver when its columns of Z = [X, y] are permuted.

    Only the permuted driver's rows and columns of the covariance change, and only the
    subsets holding it (``base_values``: R² of every subset on the data as they are).
    """
    total = w.sum()
    centred = Z - (w @ Z) / total
    weighted = centred * (w / total)[:, None]
    cov = centred.T @ weighted
    p = len(groups)
    n_perm = permutations.n_perm
    masks = np.arange(len(subsets))
    out = np.empty((n_perm, p))
    for j, cols in enumerate(groups):
        holding = masks[(masks >> j) & 1 == 1]
        batch = np.repeat(cov[None], n_perm, axis=0)
        for b, permuted in enumerate(permutations.copies(Z[:, cols])):
            permuted -= (w @ permuted) / total
            cross = permuted.T @ weighted
            batch[b][cols, :] = cross
            batch[b][:, cols] = cross.T
            batch[b][np.ix_(cols, cols)] = permuted.T @ (permuted * (w / total)[:, None])
        values = np.repeat(base_values[None], n_perm, axis=0)
        values[:, holding] = batched_r2(batch, [subsets[m] for m in holding])
        out[:, j] = shapley_values(values, p)[:, j]
    return out


def noise_test(shares: np.ndarray, null: np.ndarray, ci: float):
    """Permutation p-values and whether each share beats its null at level 1 - ci.

    Returns (p_values, distinguishable); both all-NaN / None when there is no null.
    """
    if null.shape[0] == 0:
        return np.full(len(shares), np.nan), [None] * len(shares)
    exceed = (null >= shares[None, :]).sum(axis=0)
    p_values = (1.0 + exceed) / (1.0 + null.shape[0])
    return p_values, [bool(v) for v in p_values <= 1 - ci]
