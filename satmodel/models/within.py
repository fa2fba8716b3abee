"""Within effects by correlated random effects (Mundlak): the group means enter the model.

With ``within="customer_id"`` every design column that varies within customers gets a
companion column, its customer mean (weighted like the fit, over the rows the model uses).
The driver's own coefficient is then the within-customer effect: what changes in a
customer's outcome when that customer's service changes; persistent differences between
customers (heavier workloads, tougher buyers) load on the mean terms. For OLS the driver
coefficients equal the fixed-effects (within) estimator exactly; for the likelihood models it
is Mundlak's (1978) and Chamberlain's correlated-random-effects device (Wooldridge 2010,
ch. 15-16). The joint Wald test that the mean terms are zero is the cluster-robust Hausman
test of pooled against within effects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from satmodel.errors import InputError

__all__ = ["WithinDesign", "add_group_means", "mean_term", "mundlak_test"]

# a column "varies within" when its within-group sum of squares is at least this share of its
# total sum of squares (below it, the within effect rests on rounding noise)
_MIN_WITHIN_SHARE = 1e-10


def mean_term(column: str) -> str:
    """The name of a design column's group-mean term."""
    return f"mean({column})"


@dataclass
class WithinDesign:
    """The group means a within fit added to its design.

    Attributes
    ----------
    column : the grouping column (e.g. ``customer_id``).
    varying : design columns that vary within groups (each got a mean term).
    means : one row per group (index: the group value as a string), one column per mean term.
    n_groups : groups in the fit; ``n_varying_groups``: groups with more than one distinct row.
    """

    column: str
    varying: list[str]
    means: pd.DataFrame
    n_groups: int
    n_varying_groups: int

    @property
    def terms(self) -> list[str]:
        """The mean terms, in design order."""
        return [mean_term(c) for c in self.varying]

    def to_dict(self) -> dict:
        return {
            "column": self.column,
            "varying": list(self.varying),
            "groups": [str(g) for g in self.means.index],
            "means": self.means.to_numpy(dtype=float).tolist(),
            "n_groups": self.n_groups,
            "n_varying_groups": self.n_varying_groups,
        }

    @classmethod
    def from_dict(cls, payload: dict) -> WithinDesign:
        terms = [mean_term(c) for c in payload["varying"]]
        means = pd.DataFrame(
            np.asarray(payload["means"], dtype=float).reshape(len(payload["groups"]), len(terms)),
            index=pd.Index(payload["groups"], dtype=object),
            columns=terms,
        )
        return cls(
            payload["column"],
            list(payload["varying"]),
            means,
            int(payload["n_groups"]),
            int(payload["n_varying_groups"]),
        )

    def append_means(self, design: pd.DataFrame, new_data: pd.DataFrame) -> pd.DataFrame:
        """The design of new rows with their group's means appended.

        A column of ``new_data`` named like a mean term sets that persistent part directly;
        otherwise the row's group (``new_data[column]``) must be one the model was fitted on.
        """
        rows = new_data.loc[design.index]
        given = [t for t in self.terms if t in rows.columns]
        if len(given) == len(self.terms):
            values = rows[self.terms].to_numpy(dtype=float)
        else:
            if self.column not in rows.columns:
                raise InputError(
                    f"new_data: column {self.column!r} is needed (the model holds each "
                    f"{self.column}'s persistent part at its own mean)"
                )
            keys = rows[self.column].astype(str)
            unknown = ~keys.isin(self.means.index)
            if unknown.any():
                raise InputError(
                    f"new_data.{self.column}: {int(unknown.sum())} rows belong to groups the "
                    f"model was not fitted on (e.g. {keys[unknown].iloc[0]!r}); give their "
                    f"persistent part as columns {self.terms[:2]}..."
                )
            values = self.means.loc[keys].to_numpy(dtype=float)
        extra = pd.DataFrame(values, index=design.index, columns=self.terms)
        return pd.concat([design, extra], axis=1)


def add_group_means(
    X: np.ndarray, columns: list[str], group_values: np.ndarray, w: np.ndarray, column: str
) -> tuple[np.ndarray, list[str], WithinDesign]:
    """Append the weighted group means of every column that varies within groups.

    Raises
    ------
    InputError
        When no column varies within the groups (one row per group, or drivers that are
        constant within every group).
    """
    codes, uniques = pd.factorize(pd.Series(group_values).astype(str))
    n_groups = len(uniques)
    weight_sum = np.bincount(codes, weights=w, minlength=n_groups)
    safe = np.where(weight_sum > 0, weight_sum, 1.0)
    means = (
        np.column_stack(
            [
                np.bincount(codes, weights=w * X[:, j], minlength=n_groups) / safe
                for j in range(X.shape[1])
            ]
        )
        if X.shape[1]
        else np.zeros((n_groups, 0))
    )
    deviation = X - means[codes]
    within_ss = (w[:, None] * deviation**2).sum(axis=0)
    overall = (w @ X) / max(w.sum(), 1e-300)
    total_ss = (w[:, None] * (X - overall) ** 2).sum(axis=0)
    # a mean that is the same in every group (a balanced panel's month dummies) carries
    # nothing the intercept does not: no mean term for it
    between_ss = total_ss - within_ss
    varies_within = [
        j
        for j, name in enumerate(columns)
        if name != "Intercept" and within_ss[j] > _MIN_WITHIN_SHARE * max(total_ss[j], 1e-300)
    ]
    varying = [j for j in varies_within if between_ss[j] > _MIN_WITHIN_SHARE * total_ss[j]]
    rows_per_group = np.bincount(codes, minlength=n_groups)
    row_varies = np.abs(deviation).max(axis=1) > 0 if X.shape[1] else np.zeros(len(codes), bool)
    n_varying_groups = int(
        np.count_nonzero(np.bincount(codes, weights=row_varies, minlength=n_groups))
    )
    if not varies_within:
        raise InputError(
            f"within {column!r}: no driver varies within {column} ({n_varying_groups} of "
            f"{n_groups} levels have more than one distinct row; {int((rows_per_group > 1).sum())} "
            f"have more than one row); within effects need repeated, varying observations"
        )
    names = [columns[j] for j in varying]
    frame = pd.DataFrame(
        means[:, varying],
        index=pd.Index(uniques, dtype=object),
        columns=[mean_term(c) for c in names],
    )
    design = WithinDesign(column, names, frame, n_groups, n_varying_groups)
    X_out = np.hstack((X, means[codes][:, varying]))
    return X_out, [*columns, *design.terms], design


def persistent_parts(result, panel: pd.DataFrame | None) -> pd.DataFrame | None:
    """Each group's mean terms for a within fit: the fit's, else the means of its own rows.

    A customer the model was not fitted on (e.g. one that never answered a survey) keeps
    the persistent part its own panel rows show: the Mundlak terms are the group means of
    the drivers, which its data give as well as anyone's.

    Parameters
    ----------
    result : a FitResult.
    panel : rows holding the groups (and their drivers) to cover; None: the fit's groups only.

    Returns
    -------
    DataFrame or None
        One row per group (index: the group as a string), one column per mean term; None for a
        fit without ``within``.
    """
    within = result.within_
    if within is None:
        return None
    table = within.means
    if panel is None or within.column not in panel.columns:
        return table
    ids = panel[within.column].astype(str)
    unseen = panel.loc[~ids.isin(table.index)].reset_index(drop=True)
    if unseen.empty:
        return table
    base = result.design_matrix(unseen.assign(**dict.fromkeys(within.terms, 0.0)))
    own = base[within.varying].groupby(unseen.loc[base.index, within.column].astype(str))
    return pd.concat([table, own.mean().set_axis(within.terms, axis=1)])


def with_persistent(
    result, frame: pd.DataFrame, parts: pd.DataFrame | None, who: str = "the"
) -> pd.DataFrame:
    """``frame`` with the mean-term columns of its groups from ``parts`` (:func:`persistent_parts`).

    Raises
    ------
    InputError
        When ``frame`` lacks the group column, or holds a group ``parts`` does not know.
    """
    if parts is None:
        return frame
    column = result.within_.column
    if column not in frame.columns:
        raise InputError(
            f"scenario: column {column!r} is needed ({who} model holds each {column}'s "
            "persistent part at its own value)"
        )
    ids = frame[column].astype(str)
    unknown = ~ids.isin(parts.index)
    if unknown.any():
        raise InputError(
            f"scenario: {column} {ids[unknown].iloc[0]!r} is unknown to {who} model (not "
            "fitted on it and not in the panel)"
        )
    means = parts.loc[ids].to_numpy(dtype=float)
    return frame.assign(**{t: means[:, j] for j, t in enumerate(parts.columns)})


def mundlak_test(estimates: pd.Series, covariance: pd.DataFrame, terms: list[str]) -> dict:
    """Joint Wald test that the mean terms are zero (pooled and within effects agree).

    Terms without an estimate (dropped as collinear) are left out of the test.
    """
    present = [t for t in terms if t in estimates.index and np.isfinite(estimates[t])]
    if not present:
        return {"statistic": None, "df": 0, "p_value": None}
    b = estimates[present].to_numpy(dtype=float)
    V = covariance.loc[present, present].to_numpy(dtype=float)
    if not np.all(np.isfinite(V)):
        return {"statistic": None, "df": len(present), "p_value": None}
    statistic = float(b @ np.linalg.pinv(V) @ b)
    return {
        "statistic": statistic,
        "df": len(present),
        "p_value": float(stats.chi2.sf(statistic, len(present))),
    }
