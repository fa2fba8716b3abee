"""Shapley arithmetic of driver importance: values of all subsets to Shapley shares, and
the R² of every subset from a covariance matrix."""

from __future__ import annotations

import math

import numpy as np


def _popcount(masks: np.ndarray) -> np.ndarray:
    counts = np.zeros_like(masks)
    work = masks.copy()
    while np.any(work):
        counts += work & 1
        work >>= 1
    return counts


def shapley_values(values: np.ndarray, p: int) -> np.ndarray:
    """Shapley values from the value of every subset.

    Parameters
    ----------
    values : array (..., 2**p)
        Value of each subset, indexed by bit mask (bit j set: driver j in the subset);
        ``values[..., 0]`` is the empty set.
    p : int
        Number of drivers.

    Returns
    -------
    array (..., p)
        Sum over drivers equals ``values[..., -1] - values[..., 0]``.
    """
    values = np.asarray(values, dtype=float)
    masks = np.arange(2**p)
    sizes = _popcount(masks)
    # weight of a subset S not containing j: |S|! (p - |S| - 1)! / p!
    weight = np.array(
        [math.factorial(s) * math.factorial(p - s - 1) / math.factorial(p) for s in range(p)]
    )
    out = np.empty(values.shape[:-1] + (p,))
    for j in range(p):
        bit = 1 << j
        without = masks[(masks & bit) == 0]
        gains = values[..., without | bit] - values[..., without]
        out[..., j] = gains @ weight[sizes[without]]
    return out


def subset_columns(groups: list[list[int]]) -> list[np.ndarray]:
    """Design columns of every driver subset, indexed by bit mask (bit j: driver j)."""
    p = len(groups)
    cols = []
    for mask in range(2**p):
        idx = [c for j in range(p) if mask >> j & 1 for c in groups[j]]
        cols.append(np.array(idx, dtype=int))
    return cols


def batched_r2(cov: np.ndarray, subsets: list[np.ndarray]) -> np.ndarray:
    """R² of every subset for a batch of covariance matrices (B, m+1, m+1); outcome last."""
    n_batch = cov.shape[0]
    var_y = cov[:, -1, -1]
    out = np.zeros((n_batch, len(subsets)))
    for s, cols in enumerate(subsets):
        if len(cols) == 0:
            continue
        A = cov[:, cols[:, None], cols[None, :]]
        b = cov[:, cols, -1]
        try:
            sol = np.linalg.solve(A, b[..., None])[..., 0]
        except np.linalg.LinAlgError:
            sol = np.einsum("bij,bj->bi", np.linalg.pinv(A), b)
        out[:, s] = np.einsum("bi,bi->b", b, sol)
    with np.errstate(divide="ignore", invalid="ignore"):
        return out / var_y[:, None]


def shapley_from_covariance(cov, groups: list[list[int]] | None = None) -> np.ndarray:
    """Population LMG shares (contributions to R²) from a covariance matrix.

    Parameters
    ----------
    cov : array (m+1, m+1)
        Covariance of the m predictor columns and, last, the outcome.
    groups : list of lists of column indices, optional
        Columns of each driver (default: one driver per column).

    Returns
    -------
    array (p,)
        Contributions; they add up to the population R².
    """
    cov = np.asarray(cov, dtype=float)
    m = cov.shape[0] - 1
    groups = groups if groups is not None else [[j] for j in range(m)]
    r2 = batched_r2(cov[None], subset_columns(groups))
    return shapley_values(r2, len(groups))[0]
