"""Data preparation: missing values, outcome coding, collapsing rows, the design matrix."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import patsy

from satmodel.errors import InputError
from satmodel.models.formulas import Formula, dmatrix, first_line, outcome_series, rhs_desc
from satmodel.models.within import WithinDesign, add_group_means

MAX_ORDINAL_LEVELS = 50


@dataclass
class Prepared:
    X: np.ndarray
    columns: list[str]
    y: np.ndarray
    w: np.ndarray
    n_units: np.ndarray
    offset: np.ndarray | None
    groups: np.ndarray | None
    n_rows: int
    n_dropped: int
    dropped_by: dict[str, int]
    levels: list | None
    level_values: list[float] | None
    design_info: Any
    categorical: list[dict]
    collapsed: bool
    notes: list[str] = field(default_factory=list)
    within: WithinDesign | None = None
    n_fractional_weights: int = 0


def _example(values) -> str:
    values = list(values)
    return repr(_plain(values[0])) if values else "?"


def _parse_order(order) -> list[str] | None:
    if order is None:
        return None
    items = order.split(",") if isinstance(order, str) else list(order)
    items = [str(i).strip() for i in items if str(i).strip() != ""]
    if len(items) < 2:
        raise InputError(f"order {order!r}: give at least two levels, e.g. 'low,mid,high'")
    if len(set(items)) != len(items):
        raise InputError(f"order {order!r}: levels repeat")
    return items


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _code_outcome(y: pd.Series, family: str, order, name: str):
    """Return (numeric outcome or level codes, levels, level values)."""
    if family == "ordinal":
        order_items = _parse_order(order)
        if order_items is not None:
            if _is_numeric(y):
                try:
                    keys = [float(i) for i in order_items]
                except ValueError:
                    raise InputError(
                        f"order {order!r}: outcome {name!r} is numeric but the order has "
                        f"non-numeric levels"
                    ) from None
                values = y.astype(float).to_numpy()
            else:
                keys = order_items
                values = y.astype(str).str.strip().to_numpy()
            lookup = {k: i for i, k in enumerate(keys)}
            codes = pd.Series(values).map(lookup)
            bad = codes.isna().to_numpy()
            if bad.any():
                raise InputError(
                    f"outcome {name!r}: {int(bad.sum())} rows have values not in order "
                    f"{order_items} (e.g. {_example(values[bad])})"
                )
            levels = [_plain(k) for k in (keys if _is_numeric(y) else order_items)]
            level_values = (
                [float(k) for k in keys]
                if _is_numeric(y)
                else [float(i + 1) for i in range(len(keys))]
            )
            return codes.to_numpy(dtype=float), levels, level_values
        if isinstance(y.dtype, pd.CategoricalDtype) and y.cat.ordered:
            levels = [_plain(c) for c in y.cat.categories]
            codes = y.cat.codes.to_numpy().astype(float)
            return codes, levels, [float(i + 1) for i in range(len(levels))]
        if not _is_numeric(y):
            examples = ", ".join(repr(v) for v in pd.unique(y.dropna())[:3])
            raise InputError(
                f"outcome {name!r}: values are not numbers (e.g. {examples}); give their order "
                f"with order='low,mid,high' (CLI: --order)"
            )
        values = y.astype(float).to_numpy()
        uniques = np.unique(values)
        if len(uniques) > MAX_ORDINAL_LEVELS:
            raise InputError(
                f"outcome {name!r}: {len(uniques)} distinct values (e.g. {_example(uniques)}) "
                f"is too many for an ordinal outcome; use family 'ols'"
            )
        codes = np.searchsorted(uniques, values).astype(float)
        levels = [_plain(u) for u in uniques]
        return codes, levels, [float(u) for u in uniques]
    if not _is_numeric(y):
        examples = ", ".join(repr(v) for v in pd.unique(y.dropna())[:3])
        hint = " (use e.g. I(col == 'yes'))" if family == "logit" else ""
        raise InputError(f"outcome {name!r}: values are not numbers (e.g. {examples}){hint}")
    values = y.astype(float).to_numpy()
    if family == "logit":
        bad = (values != 0) & (values != 1)
        if bad.any():
            raise InputError(
                f"outcome {name!r}: logit needs 0/1 or true/false; {int(bad.sum())} rows are "
                f"not (e.g. {_example(values[bad])}); use e.g. I({name} >= 4)"
            )
    elif family in ("poisson", "negbin"):
        bad = values < 0
        if bad.any():
            raise InputError(
                f"outcome {name!r}: {int(bad.sum())} negative counts (e.g. {_example(values[bad])})"
            )
        bad = values != np.round(values)
        if bad.any():
            raise InputError(
                f"outcome {name!r}: {int(bad.sum())} counts are not whole numbers (e.g. "
                f"{_example(values[bad])})"
            )
    return values, None, None


def _plain(value):
    """A JSON-able Python scalar."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _numeric_column(data: pd.DataFrame, column: str, role: str) -> pd.Series:
    if column not in data.columns:
        raise InputError(f"data: {role} column {column!r} not found")
    series = data[column]
    if not _is_numeric(series):
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna()
        raise InputError(
            f"data.{column}: {role} must be numeric; {int(bad.sum())} rows are not "
            f"(e.g. {_example(series[bad])})"
        )
    return series.astype(float)


def prepare(
    data: pd.DataFrame,
    formula: Formula,
    family: str,
    *,
    exposure: str | None,
    weights: str | None,
    cluster: str | None,
    order,
    collapse: bool,
    within: str | None = None,
) -> Prepared:
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise InputError("data: no rows")
    data = data.reset_index(drop=True)
    aux = {}
    if exposure is not None:
        aux["exposure"] = _numeric_column(data, exposure, "exposure")
    if weights is not None:
        aux["weights"] = _numeric_column(data, weights, "weights")
    if cluster is not None and cluster not in data.columns:
        raise InputError(f"data: cluster column {cluster!r} not found")
    if within is not None and within not in data.columns:
        raise InputError(f"data: within column {within!r} not found")

    y_raw = outcome_series(data, formula)
    used = list(dict.fromkeys(formula.lhs_columns + formula.rhs_columns))
    for extra in (exposure, weights, cluster, within):
        if extra is not None and extra not in used:
            used.append(extra)
    handled = _nan_handled_columns(formula, data, family)
    used = [c for c in used if c not in handled]
    missing = data[used].isna() if used else pd.DataFrame(index=data.index)
    missing_any = missing.any(axis=1).to_numpy() | y_raw.isna().to_numpy()
    dropped_by = {c: int(n) for c, n in missing.sum().items() if n > 0}
    if y_raw.isna().any() and formula.lhs_code not in dropped_by:
        dropped_by.setdefault(formula.lhs_code, int(y_raw.isna().sum()))
    n_dropped = int(missing_any.sum())
    keep = ~missing_any
    if not keep.any():
        worst = max(dropped_by, key=dropped_by.get) if dropped_by else formula.lhs_code
        raise InputError(
            f"data: no rows left after dropping {n_dropped} rows with missing values "
            f"(column {worst!r} is missing in {dropped_by.get(worst, n_dropped)} rows)"
        )
    frame = data.loc[keep, formula.rhs_columns]
    y_raw = y_raw[keep]
    y, levels, level_values = _code_outcome(y_raw, family, order, formula.lhs_code)

    w = np.ones(len(frame))
    if weights is not None:
        w = aux["weights"][keep].to_numpy()
        bad = w < 0
        if bad.any():
            raise InputError(
                f"data.{weights}: weights must be >= 0; {int(bad.sum())} rows are negative "
                f"(e.g. {_example(w[bad])})"
            )
    n_fractional_weights = int(np.count_nonzero(w != np.round(w)))
    expo = None
    if exposure is not None:
        expo = aux["exposure"][keep].to_numpy()
        bad = ~(expo > 0)
        if bad.any():
            raise InputError(
                f"data.{exposure}: exposure must be > 0; {int(bad.sum())} rows are not "
                f"(e.g. {_example(expo[bad])})"
            )
    cluster_values = data.loc[keep, cluster].to_numpy() if cluster is not None else None
    # a within fit clusters by its own column by default: convert and group by it once
    same_column = within == cluster
    within_values = None
    if within is not None and not same_column:
        within_values = data.loc[keep, within].to_numpy()
    n_rows = len(frame)
    n_units = np.ones(n_rows)

    collapsed = False
    if collapse and n_rows > 1 and not formula.stateful:
        result = _collapse(frame, y, w, expo, [cluster_values, within_values])
        if result is not None:
            frame, y, w, expo, (cluster_values, within_values), n_units = result
            collapsed = True
    if within is not None and same_column:
        within_values = cluster_values

    desc = rhs_desc(formula.rhs_terms, force_intercept=(family == "ordinal"))
    try:
        design = dmatrix(desc, frame)
    except patsy.PatsyError as exc:
        raise InputError(f"formula {formula.text!r}: {first_line(exc)}") from None
    except Exception as exc:
        raise InputError(
            f"formula {formula.text!r}: cannot be evaluated ({type(exc).__name__}: "
            f"{first_line(exc)})"
        ) from None
    position = frame.index.get_indexer(design.index)
    if len(position) < len(frame):
        lost = np.setdiff1d(np.arange(len(frame)), position)
        n_lost = int(n_units[lost].sum())
        n_dropped += n_lost
        dropped_by["(NaN from formula transforms)"] = n_lost
        if len(position) == 0:
            raise InputError(
                f"data: no rows left: formula {formula.text!r} gives missing values in every "
                f"row (e.g. {frame.iloc[lost[0]].to_dict()})"
            )
    X = design.to_numpy(dtype=float)
    columns = list(design.columns)
    finite = np.isfinite(X)
    if not finite.all():
        bad_rows = ~finite.all(axis=1)
        bad_col = columns[int(np.flatnonzero(~finite.all(axis=0))[0])]
        example = frame.iloc[position[bad_rows][0]].to_dict()
        raise InputError(
            f"formula term {bad_col!r}: not finite in {int(n_units[position[bad_rows]].sum())} "
            f"rows (e.g. {example})"
        )
    y = y[position]
    w = w[position]
    n_units = n_units[position]
    offset = np.log(expo[position]) if expo is not None else None
    groups = None
    if cluster_values is not None:
        groups = pd.factorize(cluster_values[position])[0]
    categorical = _categorical_info(design.design_info, formula)
    if family == "ordinal":
        X = X[:, 1:]
        columns = columns[1:]
    within_design = None
    if within_values is not None:
        X, columns, within_design = add_group_means(X, columns, within_values[position], w, within)
    return Prepared(
        X=np.ascontiguousarray(X),
        columns=columns,
        y=y,
        w=w,
        n_units=n_units,
        offset=offset,
        groups=groups,
        n_rows=int(n_units.sum()),
        n_dropped=n_dropped,
        dropped_by=dropped_by,
        levels=levels,
        level_values=level_values,
        design_info=design.design_info,
        categorical=categorical,
        collapsed=collapsed,
        within=within_design,
        n_fractional_weights=n_fractional_weights,
    )


def _nan_handled_columns(formula: Formula, data: pd.DataFrame, family: str) -> set[str]:
    """Driver columns whose missing values the formula itself handles.

    ``np.log1p(np.fmax(x, 0)) + np.where(np.isnan(x), 1.0, 0.0)`` gives a finite design row
    where ``x`` is missing (a month without a resolved ticket): such rows stay in the model. A
    column counts as handled when a complete row with only that column set missing still has
    a finite design row.
    """
    if formula.stateful:
        return set()
    columns = [
        c
        for c in formula.rhs_columns
        if pd.api.types.is_float_dtype(data[c]) and data[c].isna().any()
    ]
    complete = data[formula.rhs_columns].dropna()
    if not columns or complete.empty:
        return set()
    desc = rhs_desc(formula.rhs_terms, force_intercept=(family == "ordinal"))
    handled = set()
    for column in columns:
        probe = complete.iloc[[0]].copy()
        probe[column] = np.nan
        try:
            design = dmatrix(desc, probe)
        except Exception:
            continue
        if len(design) == 1 and np.isfinite(design.to_numpy(dtype=float)).all():
            handled.add(column)
    return handled


def group_codes(columns: list, max_groups: int):
    """Codes (numbered in order of first appearance) of the distinct rows of ``columns``.

    Returns None as soon as one column alone has more than ``max_groups`` distinct values.
    """
    combined = None
    n_combined = 1
    for values in columns:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        n_unique = len(uniques)
        if n_unique > max_groups:
            return None
        if combined is None:
            combined, n_combined = codes.astype(np.int64), n_unique
            continue
        if n_combined * n_unique >= 2**62:
            combined, uniques_combined = pd.factorize(combined)
            n_combined = len(uniques_combined)
        combined = combined * n_unique + codes
        n_combined *= n_unique
    codes, uniques = pd.factorize(combined)
    if len(uniques) > max_groups:
        return None
    return codes


def _surely_too_distinct(frame: pd.DataFrame, n: int) -> bool:
    """Cheap early exit for continuous data: a float column with no repeat in a sample.

    A column with at most n/2 distinct values shows, in a random sample of 8 sqrt(n) rows,
    about 64 repeated pairs or more; seeing none means collapsing cannot halve the rows.
    """
    size = int(8 * math.sqrt(n))
    if size >= n:
        return False
    sample = np.random.default_rng(0).choice(n, size=size, replace=False)
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_float_dtype(series):
            values = series.to_numpy()[sample]
            return len(np.unique(values)) == size
    return False


def _collapse(frame, y, w, expo, groupings):
    """Merge rows with identical covariates, outcome, exposure and groupings (cluster and
    within columns: a list of arrays, or None for one that is not used).

    Returns None when collapsing would not at least halve the rows.
    """
    n = len(frame)
    if _surely_too_distinct(frame, n):
        return None
    keys = [frame[c] for c in frame.columns] + [y]
    if expo is not None:
        keys.append(expo)
    keys += [values for values in groupings if values is not None]
    codes = group_codes(keys, max_groups=n // 2)
    if codes is None:
        return None
    n_groups = int(codes.max()) + 1
    # codes are numbered in order of first appearance: a new code is a new running maximum
    running_max = np.maximum.accumulate(codes)
    first = np.flatnonzero(np.concatenate(([True], running_max[1:] > running_max[:-1])))
    new_w = np.bincount(codes, weights=w, minlength=n_groups)
    n_units = np.bincount(codes, minlength=n_groups).astype(float)
    new_frame = frame.iloc[first].reset_index(drop=True)
    return (
        new_frame,
        y[first],
        new_w,
        expo[first] if expo is not None else None,
        [None if values is None else values[first] for values in groupings],
        n_units,
    )


def _categorical_info(design_info, formula: Formula) -> list[dict]:
    info = []
    for factor, factor_info in design_info.factor_infos.items():
        if factor_info.type != "categorical":
            continue
        variables = formula.factor_columns.get(factor.code, [])
        info.append(
            {
                "factor": factor.code,
                "variable": variables[0] if len(variables) == 1 else None,
                "levels": [_plain(level) for level in factor_info.categories],
            }
        )
    return info


def subset_rows(prep: Prepared, mask: np.ndarray) -> Prepared:
    prep.X = prep.X[mask]
    prep.y = prep.y[mask]
    prep.w = prep.w[mask]
    prep.n_units = prep.n_units[mask]
    if prep.offset is not None:
        prep.offset = prep.offset[mask]
    if prep.groups is not None:
        prep.groups = pd.factorize(prep.groups[mask])[0]
    return prep
