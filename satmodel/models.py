"""Fit satisfaction and complaint models: ordinal CSAT, top-2-box, means and complaint counts.

One entry point, :func:`fit`, fits any of five families with the same options:

========  ===============================================  ==========================
family    model                                            link
========  ===============================================  ==========================
ordinal   cumulative-link (proportional odds) model         logit (default) or probit
logit     binary logistic regression                        logit
ols       linear regression                                 identity
poisson   Poisson regression                                log
negbin    negative binomial NB2, alpha estimated by ML      log
========  ===============================================  ==========================

All families accept frequency weights (``weights=COL``: a row stands for COL identical
observations), cluster-robust standard errors (``cluster=COL``) and, for counts, an exposure
(``exposure=COL``: log(COL) is an offset). Before fitting, rows with the same covariate
values, outcome, cluster and exposure are collapsed into one weighted row; the weighted
likelihood, its score per cluster and its information are exactly those of the original
rows, so estimates and standard errors do not change, but a million survey responses that
share 50,000 customer-months fit in a fraction of a second.

Ordinal models have no intercept: the design is built with treatment coding (reference level
dropped) and the ``Intercept`` column removed; the cutpoints (``thresholds_``) are reported
themselves, ascending, as R ``polr`` and Stata ``ologit`` report them:
``P(y <= j) = F(cut_j - x'b)``.

Formulas are patsy formulas evaluated with ``np`` (numpy) and patsy's built-ins (``C``,
``I``, ``Q``...) in scope. Terms are named as patsy names them (``Intercept``,
``C(segment)[T.smb]``, ``np.log(latency_p95_ms)``).

Default models of the service panel
-----------------------------------
:func:`default_formulas` and :func:`fit_default_models` fit three models:

* ``csat`` - ordinal logit of the 1-5 CSAT of each survey response, standard errors
  clustered by customer;
* ``top2`` - logit of ``I(csat >= 4)`` (top-2-box) per response, clustered by customer;
* ``complaints`` - NB2 of monthly complaints per customer with ``active_users`` as exposure.

All three share the drivers (each kept only when its columns exist):
``np.log(latency_p95_ms)``, ``np.log1p(downtime_minutes)``, ``error_rate``,
``np.log1p(resolution_hours_median)``, the shortfalls against the customer's expectation
``np.maximum(0, np.log(latency_p95_ms / expected_latency_p95_ms))`` and
``np.maximum(0, expected_availability_pct - availability_pct)``, last month's downtime
``np.log1p(downtime_minutes_lag1)`` and ``C(segment)``. Pass ``formulas=`` to override any of
them. Rows with a missing driver are dropped and counted (``n_dropped_``).
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import patsy
from scipy import linalg, special, stats

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
    threadpool_limits = None

from satmodel.errors import InputError, ModelWarning, SatmodelError

__all__ = [
    "FAMILIES",
    "FitResult",
    "ModelData",
    "default_formulas",
    "fit",
    "fit_default_models",
    "model_data",
]

FAMILIES = ("ordinal", "logit", "ols", "poisson", "negbin")
MIN_RESPONSES = 30
MIN_PER_LEVEL = 10
MAX_ORDINAL_LEVELS = 50
_SEPARATION_TOL = 1e-9
_STATEFUL_TRANSFORMS = ("center", "standardize", "scale", "bs", "cr", "cc", "te")
_TIDY_COLUMNS = ["term", "estimate", "std_error", "ci_low", "ci_high", "p_value"]
_DEFAULT_LINKS = {
    "ordinal": "logit",
    "logit": "logit",
    "ols": "identity",
    "poisson": "log",
    "negbin": "log",
}


# --------------------------------------------------------------------------------------
# formula handling
# --------------------------------------------------------------------------------------


def _eval_namespace() -> dict[str, Any]:
    namespace = {name: getattr(patsy.builtins, name) for name in patsy.builtins.__all__}
    namespace["np"] = np
    return namespace


def _eval_env() -> patsy.EvalEnvironment:
    return patsy.EvalEnvironment([_eval_namespace()])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _names_in_code(code: str) -> set[str]:
    """Names a patsy factor's Python code refers to (``Q("a b")`` counts as ``a b``)."""
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "Q"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


# Formula terms are Python code that patsy evaluates: only this small vocabulary is allowed,
# so a formula from a user (CLI, config, notebook parameter) can never run arbitrary code.
_SAFE_BUILTINS = frozenset({"abs", "round", "min", "max", "pow", "float", "int", "True", "False"})
# numpy functions a formula may call: element-wise maths only (np.save, np.load... never).
_SAFE_NUMPY = frozenset(
    {
        "abs",
        "absolute",
        "clip",
        "exp",
        "expm1",
        "log",
        "log1p",
        "log2",
        "log10",
        "sqrt",
        "square",
        "power",
        "maximum",
        "minimum",
        "fmax",
        "fmin",
        "where",
        "sign",
        "floor",
        "ceil",
        "round",
        "rint",
        "tanh",
        "arctan",
        "isnan",
        "isfinite",
        "nan",
        "inf",
        "pi",
        "e",
    }
)
_SAFE_NODES = (
    ast.Expression,
    ast.Name,
    ast.Load,
    ast.Call,
    ast.Attribute,
    ast.Constant,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.BoolOp,
    ast.keyword,
    ast.Tuple,
    ast.List,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
    ast.boolop,
)


def _unsafe_part(code: str, allowed_names: set[str]) -> str | None:
    """Why a formula term's code is not allowed, or None when it is safe to evaluate."""
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError:
        return "not a Python expression"
    for node in ast.walk(tree):
        if not isinstance(node, _SAFE_NODES):
            return f"{type(node).__name__} expressions are not allowed"
        if isinstance(node, ast.Attribute) and not (
            isinstance(node.value, ast.Name) and node.value.id == "np" and node.attr in _SAFE_NUMPY
        ):
            return f"np.{getattr(node, 'attr', '?')} is not an allowed element-wise np function"
        if isinstance(node, ast.Name) and (node.id.startswith("_") or node.id not in allowed_names):
            return f"name {node.id!r} is not a column or an allowed function"
    return None


@dataclass
class _Formula:
    text: str
    lhs_code: str
    rhs_terms: list
    lhs_columns: list[str]
    rhs_columns: list[str]
    factor_columns: dict[str, list[str]]
    stateful: bool


def _parse_formula(formula: str, columns) -> _Formula:
    if not isinstance(formula, str) or "~" not in formula:
        raise InputError(f"formula {formula!r}: expected 'outcome ~ term + term ...'")
    try:
        desc = patsy.ModelDesc.from_formula(formula)
    except patsy.PatsyError as exc:
        raise InputError(f"formula {formula!r}: {_first_line(exc)}") from None
    lhs = desc.lhs_termlist
    if len(lhs) != 1 or len(lhs[0].factors) != 1:
        raise InputError(f"formula {formula!r}: needs exactly one outcome left of '~'")
    lhs_code = lhs[0].factors[0].code
    known = set(_eval_namespace()) | _SAFE_BUILTINS
    column_names = {str(c) for c in columns}
    factor_columns: dict[str, list[str]] = {}
    unknown: list[tuple[str, str]] = []
    stateful = False

    def columns_of(code: str) -> list[str]:
        names = _names_in_code(code)
        unsafe = _unsafe_part(code, known | names)
        if unsafe is not None and not (names - column_names - known):
            raise InputError(
                f"formula {formula!r}: term {code!r} is not allowed ({unsafe}); use columns, "
                "numbers, operators and element-wise np functions such as np.log(...)"
            )
        for name in sorted(names - column_names - known):
            unknown.append((name, code))
        return sorted(names & column_names)

    lhs_columns = columns_of(lhs_code)
    rhs_columns: list[str] = []
    for term in desc.rhs_termlist:
        for factor in term.factors:
            used = columns_of(factor.code)
            factor_columns[factor.code] = used
            rhs_columns.extend(c for c in used if c not in rhs_columns)
            names = _names_in_code(factor.code)
            if names & set(_STATEFUL_TRANSFORMS):
                stateful = True
    if unknown:
        shown = ", ".join(sorted(column_names)[:12])
        more = ", ..." if len(column_names) > 12 else ""
        raise InputError(
            [
                f"data: column {name!r} used in formula term {code!r} not found "
                f"(columns: {shown}{more})"
                for name, code in unknown
            ]
        )
    return _Formula(
        text=formula,
        lhs_code=lhs_code,
        rhs_terms=list(desc.rhs_termlist),
        lhs_columns=lhs_columns,
        rhs_columns=rhs_columns,
        factor_columns=factor_columns,
        stateful=stateful,
    )


def formula_columns(formula: str, columns) -> list[str]:
    """The data columns a formula's right-hand side reads (before any transform).

    Parameters
    ----------
    formula : a patsy formula, ``"outcome ~ terms"``.
    columns : the columns of the data it will be evaluated on (names that are not columns
        are functions or constants).
    """
    return list(_parse_formula(formula, columns).rhs_columns)


def _rhs_desc(rhs_terms: list, force_intercept: bool) -> patsy.ModelDesc:
    terms = list(rhs_terms)
    if force_intercept and patsy.INTERCEPT not in terms:
        terms.insert(0, patsy.INTERCEPT)
    return patsy.ModelDesc([], terms)


def _dmatrix(desc: patsy.ModelDesc, frame: pd.DataFrame) -> pd.DataFrame:
    """patsy design matrix of ``frame`` (NA rows dropped); intercept-only gets every row."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # log(0) and friends: reported as non-finite terms (or dropped NaN rows) afterwards
        design = patsy.dmatrix(
            desc, frame, eval_env=_eval_env(), NA_action="drop", return_type="dataframe"
        )
    if not any(term.factors for term in desc.rhs_termlist) and len(design) != len(frame):
        design = pd.DataFrame(
            np.ones((len(frame), design.shape[1])), index=frame.index, columns=design.columns
        )
        design.design_info = patsy.dmatrix(desc, frame.iloc[:1], eval_env=_eval_env()).design_info
    return design


def _example(values) -> str:
    values = list(values)
    return repr(_plain(values[0])) if values else "?"


# --------------------------------------------------------------------------------------
# data preparation: validation, missing values, outcome coding, collapsing, design matrix
# --------------------------------------------------------------------------------------


@dataclass
class _Prepared:
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


def _outcome_series(data: pd.DataFrame, formula: _Formula) -> pd.Series:
    code = formula.lhs_code
    if code in data.columns:
        return data[code]
    # Only reached with a _Formula from _parse_formula, whose outcome code passed _unsafe_part:
    # columns, numbers, operators and allow-listed np functions (tests/test_security.py).
    try:
        values = _eval_env().eval(code, inner_namespace=data)
    except Exception as exc:
        raise InputError(f"outcome {code!r}: cannot be evaluated ({_first_line(exc)})") from None
    if np.ndim(values) == 0:
        values = np.repeat(values, len(data))
    return pd.Series(np.asarray(values), index=data.index, name=code)


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


def _prepare(
    data: pd.DataFrame,
    formula: _Formula,
    family: str,
    *,
    exposure: str | None,
    weights: str | None,
    cluster: str | None,
    order,
    collapse: bool,
) -> _Prepared:
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

    y_raw = _outcome_series(data, formula)
    used = list(dict.fromkeys(formula.lhs_columns + formula.rhs_columns))
    for extra in (exposure, weights, cluster):
        if extra is not None and extra not in used:
            used.append(extra)
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
    n_rows = len(frame)
    n_units = np.ones(n_rows)

    collapsed = False
    if collapse and n_rows > 1 and not formula.stateful:
        result = _collapse(frame, y, w, expo, cluster_values)
        if result is not None:
            frame, y, w, expo, cluster_values, n_units = result
            collapsed = True

    desc = _rhs_desc(formula.rhs_terms, force_intercept=(family == "ordinal"))
    try:
        design = _dmatrix(desc, frame)
    except patsy.PatsyError as exc:
        raise InputError(f"formula {formula.text!r}: {_first_line(exc)}") from None
    except Exception as exc:
        raise InputError(
            f"formula {formula.text!r}: cannot be evaluated ({type(exc).__name__}: "
            f"{_first_line(exc)})"
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
    return _Prepared(
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
    )


def _group_codes(columns: list, max_groups: int):
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


def _collapse(frame, y, w, expo, cluster_values):
    """Merge rows with identical covariates, outcome, cluster and exposure.

    Returns None when collapsing would not at least halve the rows.
    """
    n = len(frame)
    if _surely_too_distinct(frame, n):
        return None
    keys = [frame[c] for c in frame.columns] + [y]
    if expo is not None:
        keys.append(expo)
    if cluster_values is not None:
        keys.append(cluster_values)
    codes = _group_codes(keys, max_groups=n // 2)
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
        cluster_values[first] if cluster_values is not None else None,
        n_units,
    )


def _categorical_info(design_info, formula: _Formula) -> list[dict]:
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


# --------------------------------------------------------------------------------------
# likelihoods (weighted sums; return log-likelihood, gradient, Hessian, scores per row)
# --------------------------------------------------------------------------------------


def _cdf_pdf(z: np.ndarray, link: str):
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


class _OrdinalLikelihood:
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
        _, pdf_u, dpdf_u = _cdf_pdf(upper, "probit")
        _, pdf_l, dpdf_l = _cdf_pdf(lower, "probit")
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


class _LogitLikelihood:
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


class _PoissonLikelihood(_LogitLikelihood):
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


class _NB2Likelihood(_LogitLikelihood):
    """NB2 in (beta, log alpha): Var(y) = mu + alpha mu^2."""

    def __init__(self, X, y, w, offset):
        super().__init__(X, y, w, offset)
        self.const = special.gammaln(y + 1)
        self.k = X.shape[1]

    def _terms(self, theta):
        eta = self.eta(theta[: self.k])
        mu = np.exp(eta)
        r = np.exp(-theta[self.k])
        ll_rows = (
            special.gammaln(self.y + r)
            - special.gammaln(r)
            - self.const
            + r * np.log(r / (r + mu))
            + self.y * (eta - np.log(r + mu))
        )
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
        d_r = special.digamma(y + r) - special.digamma(r) + np.log(r / rm) + 1 - (r + y) / rm
        d_a = -r * d_r
        d_rr = (
            special.polygamma(1, y + r)
            - special.polygamma(1, r)
            + 1 / r
            - 1 / rm
            - (mu - y) / rm**2
        )
        d_aa = r * d_r + r**2 * d_rr
        d_eta_eta = -r * mu * (r + y) / rm**2
        d_eta_a = -r * (y - mu) * mu / rm**2
        grad = np.concatenate((X.T @ (w * d_eta), [w @ d_a]))
        H_bb = (X * (w * d_eta_eta)[:, None]).T @ X
        H_ba = X.T @ (w * d_eta_a)
        H = np.block([[H_bb, H_ba[:, None]], [H_ba[None, :], np.array([[w @ d_aa]])]])
        unit_scores = np.hstack((X * d_eta[:, None], d_a[:, None])) if scores else None
        return ll, grad, H, unit_scores


def _newton(likelihood, theta0, maxiter: int, tol: float = 1e-12):
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


def _invert_information(info: np.ndarray) -> np.ndarray:
    try:
        factor = linalg.cho_factor(info, check_finite=False)
        return linalg.cho_solve(factor, np.eye(len(info)), check_finite=False)
    except linalg.LinAlgError:
        return np.linalg.pinv(info)


def _sandwich(bread, unit_scores, w, groups, n_obs, robust_kind):
    """Cluster-robust (CRV1, statsmodels' small-sample correction) or HC0 covariance."""
    k = bread.shape[0]
    if robust_kind == "cluster":
        n_groups = int(groups.max()) + 1
        sums = np.zeros((n_groups, k))
        np.add.at(sums, groups, unit_scores * w[:, None])
        meat = sums.T @ sums
        correction = n_groups / (n_groups - 1.0) * (n_obs - 1.0) / (n_obs - k)
    else:
        meat = (unit_scores * w[:, None]).T @ unit_scores
        correction = 1.0
    return correction * bread @ meat @ bread


# --------------------------------------------------------------------------------------
# collinearity
# --------------------------------------------------------------------------------------


def _independent_columns(X: np.ndarray, w: np.ndarray, tol: float = 1e-9) -> list[int]:
    """Indices of columns kept, in order, dropping each one that earlier columns explain."""
    gram = (X * w[:, None]).T @ X
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


# --------------------------------------------------------------------------------------
# the result object
# --------------------------------------------------------------------------------------


def _tidy(names, estimates, std_errors, ci, dist_df=None) -> pd.DataFrame:
    estimates = np.asarray(estimates, dtype=float)
    std_errors = np.asarray(std_errors, dtype=float)
    if dist_df is None:
        crit = stats.norm.ppf(0.5 + ci / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_values = 2 * stats.norm.sf(np.abs(estimates / std_errors))
    else:
        crit = stats.t.ppf(0.5 + ci / 2, dist_df)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_values = 2 * stats.t.sf(np.abs(estimates / std_errors), dist_df)
    return pd.DataFrame(
        {
            "term": pd.array([str(n) for n in names], dtype=str),
            "estimate": estimates,
            "std_error": std_errors,
            "ci_low": estimates - crit * std_errors,
            "ci_high": estimates + crit * std_errors,
            "p_value": p_values,
        },
        columns=_TIDY_COLUMNS,
    )


def _json_float(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _json_number(value):
    value = float(value)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() else value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {
            "term": str(row.term),
            **{c: _json_float(getattr(row, c)) for c in _TIDY_COLUMNS[1:]},
        }
        for row in frame.itertuples(index=False)
    ]


def _from_records(records: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=_TIDY_COLUMNS)
    for column in _TIDY_COLUMNS[1:]:
        frame[column] = frame[column].astype(float)
    frame["term"] = frame["term"].astype(str)
    return frame


class FitResult:
    """A fitted model: tidy estimates, diagnostics flags, prediction and JSON round trip.

    Attributes
    ----------
    family, formula, link : str
        What was fitted.
    coefficients_ : DataFrame
        Columns term, estimate, std_error, ci_low, ci_high, p_value (no intercept for
        ordinal; coefficients dropped for collinearity have NaN estimates).
    thresholds_ : DataFrame
        Ordinal cutpoints, ascending, same columns (empty for other families).
    alpha_, alpha_std_error_ : float or None
        NB2 dispersion (``Var = mu + alpha mu^2``), negbin only.
    log_likelihood_ : float
        Log-likelihood of the (uncollapsed, frequency-expanded) data.
    n_obs_ : float
        Observations: rows, or the total frequency weight when weights are given.
    n_rows_, n_dropped_ : int
        Rows used and rows dropped for missing values.
    n_clusters_ : int or None
    converged_ : bool
    warnings_ : list of str
        Reasons the fit may be unreliable; ``reliable`` is False when any is set.
    cov_type_ : str
        ``nonrobust`` (inverse observed information), ``robust`` (HC0) or ``cluster``.
    covariance_ : DataFrame
        Covariance of coefficients and thresholds (alpha for negbin).
    levels_ : list or None
        Ordinal outcome levels in order.
    """

    def __init__(self, **state):
        self.family: str = state["family"]
        self.formula: str = state["formula"]
        self.link: str = state["link"]
        self.ci: float = state.get("ci", 0.95)
        self.coefficients_: pd.DataFrame = state["coefficients"]
        self.thresholds_: pd.DataFrame = state["thresholds"]
        self.alpha_ = state.get("alpha")
        self.alpha_std_error_ = state.get("alpha_std_error")
        self.log_likelihood_: float = state["log_likelihood"]
        self.n_obs_ = state["n_obs"]
        self.n_rows_: int = state["n_rows"]
        self.n_dropped_: int = state["n_dropped"]
        self.dropped_by_: dict = state.get("dropped_by", {})
        self.n_clusters_ = state.get("n_clusters")
        self.converged_: bool = state["converged"]
        self.iterations_ = state.get("iterations")
        self.warnings_: list[str] = list(state.get("warnings", []))
        self.notes_: list[str] = list(state.get("notes", []))
        self.cov_type_: str = state["cov_type"]
        self.covariance_: pd.DataFrame = state["covariance"]
        self.levels_ = state.get("levels")
        self.level_values_ = state.get("level_values")
        self.df_resid_ = state.get("df_resid")
        self.r_squared_ = state.get("r_squared")
        self.scale_ = state.get("scale")
        self.exposure = state.get("exposure")
        self.weights = state.get("weights")
        self.cluster = state.get("cluster")
        self.design_columns_: list[str] = list(state["design_columns"])
        self.categorical_: list[dict] = list(state.get("categorical", []))
        self.stateful_: bool = bool(state.get("stateful", False))
        self._design_info = state.get("design_info")

    # -- basic properties -------------------------------------------------------------

    @property
    def reliable(self) -> bool:
        """False when any warning flag (non-convergence, separation, ...) is set."""
        return self.converged_ and not self.warnings_

    @property
    def outcome(self) -> str:
        """The outcome expression (left of ``~``)."""
        return self.formula.split("~", 1)[0].strip()

    @property
    def params_(self) -> pd.Series:
        """Coefficients (then thresholds) as a Series indexed by term."""
        frames = [self.coefficients_, self.thresholds_]
        frames = [f for f in frames if len(f)]
        tidy = pd.concat(frames, ignore_index=True) if frames else self.coefficients_
        return pd.Series(tidy["estimate"].to_numpy(), index=tidy["term"].to_numpy())

    def __repr__(self) -> str:
        flag = "" if self.reliable else ", UNRELIABLE"
        return (
            f"FitResult(family={self.family!r}, formula={self.formula!r}, "
            f"n_obs={_json_number(self.n_obs_)}, log_likelihood={self.log_likelihood_:.4f}{flag})"
        )

    # -- design matrix for new data ----------------------------------------------------

    def design_matrix(self, new_data: pd.DataFrame) -> pd.DataFrame:
        """Rebuild the model's design matrix (columns as ``coefficients_``) for new data.

        Rows whose drivers are missing are dropped (the returned index says which remain).
        """
        if not isinstance(new_data, pd.DataFrame):
            raise InputError(
                f"new_data: expected a pandas DataFrame, got {type(new_data).__name__}"
            )
        self._check_levels(new_data)
        try:
            if self._design_info is not None:
                (design,) = patsy.build_design_matrices(
                    [self._design_info], new_data, NA_action="drop", return_type="dataframe"
                )
            else:
                design = self._rebuild_design(new_data)
        except patsy.PatsyError as exc:
            raise InputError(f"new_data: {_first_line(exc)}") from None
        except Exception as exc:
            raise InputError(
                f"new_data: formula {self.formula!r} cannot be evaluated "
                f"({type(exc).__name__}: {_first_line(exc)})"
            ) from None
        if self.family == "ordinal" and "Intercept" in design.columns:
            design = design.drop(columns="Intercept")
        if list(design.columns) != self.design_columns_:
            raise InputError(
                f"new_data: design columns {list(design.columns)} do not match the fitted "
                f"model's {self.design_columns_}"
            )
        return design

    def _check_levels(self, new_data: pd.DataFrame):
        for info in self.categorical_:
            variable = info["variable"]
            if variable is None or variable not in new_data.columns:
                continue
            levels = info["levels"]
            if set(levels) <= {False, True} and pd.api.types.is_bool_dtype(new_data[variable]):
                continue
            values = new_data[variable].dropna()
            unseen = ~values.isin(levels)
            if unseen.any():
                raise InputError(
                    f"new_data.{variable}: {int(unseen.sum())} rows have levels not seen when "
                    f"fitting (e.g. {values[unseen].iloc[0]!r}; known: {levels})"
                )

    def _rebuild_design(self, new_data: pd.DataFrame) -> pd.DataFrame:
        if self.stateful_:
            raise SatmodelError(
                f"formula {self.formula!r} uses stateful transforms (center, standardize, "
                f"splines) that cannot be rebuilt from JSON; predict with the fitted object"
            )
        frame = new_data.copy()
        for info in self.categorical_:
            variable = info["variable"]
            if variable is None or variable not in frame.columns:
                continue
            levels = info["levels"]
            if set(levels) <= {False, True}:
                continue
            frame[variable] = pd.Categorical(frame[variable], categories=levels)
        formula = _parse_formula(self.formula, frame.columns)
        desc = _rhs_desc(formula.rhs_terms, force_intercept=(self.family == "ordinal"))
        return _dmatrix(desc, frame)

    # -- prediction ---------------------------------------------------------------------

    def _parameter_arrays(self):
        beta = self.coefficients_["estimate"].to_numpy(dtype=float)
        beta = np.where(np.isfinite(beta), beta, 0.0)
        names = list(self.coefficients_["term"]) + list(self.thresholds_["term"])
        cov = self.covariance_.loc[names, names].to_numpy(dtype=float)
        cov = np.where(np.isfinite(cov), cov, 0.0)
        return beta, cov

    def predict(self, new_data: pd.DataFrame, ci: float = 0.95) -> pd.DataFrame:
        """Predict for new rows, with delta-method confidence intervals.

        Parameters
        ----------
        new_data : DataFrame
            Rows with the formula's driver columns (and the exposure column for a
            per-row expected count).
        ci : float
            Confidence level of the intervals.

        Returns
        -------
        DataFrame indexed like ``new_data`` (rows with missing drivers are NaN):

        * ordinal: ``p_<level>`` per level, ``expected`` score, ``std_error``, ``ci_low``,
          ``ci_high`` (levels that are not numbers score 1, 2, ...);
        * logit: ``probability``, ``std_error`` (of the logit), ``ci_low``, ``ci_high``;
        * ols: ``mean``, ``std_error``, ``ci_low``, ``ci_high``;
        * poisson/negbin: ``rate``, ``rate_ci_low``, ``rate_ci_high`` per unit of exposure
          (per row without exposure) and, when the exposure column is present (or there is
          no exposure), ``mean``, ``ci_low``, ``ci_high`` for the expected count.
        """
        if not 0 < ci < 1:
            raise InputError(f"ci: must be between 0 and 1, got {ci!r}")
        index = new_data.index if new_data.index.is_unique else pd.RangeIndex(len(new_data))
        frame = new_data.set_axis(index) if new_data.index is not index else new_data
        design = self.design_matrix(frame)
        X = design.to_numpy(dtype=float)
        beta, cov = self._parameter_arrays()
        k = len(beta)
        z = stats.norm.ppf(0.5 + ci / 2)
        eta = X @ beta
        if self.family == "ordinal":
            out = self._predict_ordinal(X, eta, cov, k, z)
        else:
            cov_b = cov[:k, :k]
            se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", X, cov_b, X), 0.0))
            if self.family == "logit":
                out = {
                    "probability": special.expit(eta),
                    "std_error": se,
                    "ci_low": special.expit(eta - z * se),
                    "ci_high": special.expit(eta + z * se),
                }
            elif self.family == "ols":
                crit = stats.t.ppf(0.5 + ci / 2, self.df_resid_) if self.df_resid_ else z
                out = {
                    "mean": eta,
                    "std_error": se,
                    "ci_low": eta - crit * se,
                    "ci_high": eta + crit * se,
                }
            else:
                out = {
                    "rate": np.exp(eta),
                    "rate_ci_low": np.exp(eta - z * se),
                    "rate_ci_high": np.exp(eta + z * se),
                }
                offset = None
                if self.exposure is None:
                    offset = np.zeros(len(eta))
                elif self.exposure in frame.columns:
                    expo = pd.to_numeric(frame.loc[design.index, self.exposure], errors="coerce")
                    with np.errstate(divide="ignore", invalid="ignore"):
                        offset = np.log(expo.to_numpy(dtype=float))
                if offset is not None:
                    out["mean"] = np.exp(eta + offset)
                    out["std_error"] = se
                    out["ci_low"] = np.exp(eta + offset - z * se)
                    out["ci_high"] = np.exp(eta + offset + z * se)
        result = pd.DataFrame(out, index=design.index)
        return result.reindex(index)

    def _predict_ordinal(self, X, eta, cov, k, z):
        cuts = self.thresholds_["estimate"].to_numpy(dtype=float)
        values = np.asarray(self.level_values_, dtype=float)
        z_cut = cuts[None, :] - eta[:, None]
        cdf, pdf, _ = _cdf_pdf(z_cut, self.link)
        cum = np.hstack((np.zeros((len(eta), 1)), cdf, np.ones((len(eta), 1))))
        probs = np.diff(cum, axis=1)
        steps = np.diff(values)
        expected = values[-1] - cdf @ steps
        # gradient of the expected score in (beta, cutpoints)
        weight = pdf * steps[None, :]
        grad = np.hstack((X * weight.sum(axis=1)[:, None], -weight))
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", grad, cov, grad), 0.0))
        out = {f"p_{level}": probs[:, j] for j, level in enumerate(self.levels_)}
        out["expected"] = expected
        out["std_error"] = se
        out["ci_low"] = np.clip(expected - z * se, values[0], values[-1])
        out["ci_high"] = np.clip(expected + z * se, values[0], values[-1])
        return out

    # -- reporting --------------------------------------------------------------------------

    def summary(self) -> str:
        """Readable text summary; reliability flags come first."""
        lines = []
        title = f"satmodel {self.family} model ({self.link} link)"
        lines.append(title)
        lines.append("=" * max(len(title), 60))
        if not self.reliable:
            lines.append("!! UNRELIABLE FIT - do not use these estimates without fixing:")
            if not self.converged_:
                lines.append("!!   - did not converge")
            lines.extend(f"!!   - {w}" for w in self.warnings_)
            lines.append("")
        lines.append(f"formula:        {self.formula}")
        n_obs = _json_number(self.n_obs_)
        weights = f" (total of frequency weights {self.weights!r})" if self.weights else ""
        lines.append(f"observations:   {n_obs}{weights}")
        if self.n_dropped_:
            by = ", ".join(f"{c}: {n}" for c, n in self.dropped_by_.items())
            lines.append(f"dropped rows:   {self.n_dropped_} with missing values ({by})")
        if self.exposure:
            lines.append(f"exposure:       log({self.exposure}) as offset")
        cov = self.cov_type_
        if self.cov_type_ == "cluster":
            cov = f"cluster-robust by {self.cluster!r} ({self.n_clusters_} clusters)"
        lines.append(f"std. errors:    {cov}")
        lines.append(f"log-likelihood: {self.log_likelihood_:.4f}")
        lines.append(f"converged:      {'yes' if self.converged_ else 'NO'}")
        if self.alpha_ is not None:
            lines.append(f"alpha (NB2):    {self.alpha_:.6g} (s.e. {self.alpha_std_error_:.4g})")
        if self.r_squared_ is not None:
            lines.append(f"R-squared:      {self.r_squared_:.4f}")
        lines.extend(f"note: {n}" for n in self.notes_)
        lines.append("")
        lines.append("coefficients:")
        lines.append(_format_table(self.coefficients_))
        if len(self.thresholds_):
            lines.append("")
            lines.append("thresholds (cutpoints):")
            lines.append(_format_table(self.thresholds_))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-able dict: the ``fit --json`` keys of docs/contract.md, the state predict needs."""
        cov = self.covariance_
        return {
            "family": self.family,
            "formula": self.formula,
            "n_obs": _json_number(self.n_obs_),
            "converged": bool(self.converged_),
            "log_likelihood": _json_float(self.log_likelihood_),
            "params": _records(self.coefficients_),
            "thresholds": _records(self.thresholds_),
            "alpha": _json_float(self.alpha_),
            "alpha_std_error": _json_float(self.alpha_std_error_),
            "link": self.link,
            "cov_type": self.cov_type_,
            "ci": float(self.ci),
            "reliable": bool(self.reliable),
            "warnings": list(self.warnings_),
            "notes": list(self.notes_),
            "n_rows": int(self.n_rows_),
            "n_dropped": int(self.n_dropped_),
            "dropped_by": {str(k): int(v) for k, v in self.dropped_by_.items()},
            "n_clusters": None if self.n_clusters_ is None else int(self.n_clusters_),
            "iterations": self.iterations_,
            "df_resid": _json_float(self.df_resid_),
            "r_squared": _json_float(self.r_squared_),
            "scale": _json_float(self.scale_),
            "exposure": self.exposure,
            "weights": self.weights,
            "cluster": self.cluster,
            "levels": self.levels_,
            "level_values": self.level_values_,
            "covariance": {
                "terms": [str(t) for t in cov.index],
                "matrix": [[_json_float(v) for v in row] for row in cov.to_numpy(dtype=float)],
            },
            "design": {
                "columns": self.design_columns_,
                "categorical": self.categorical_,
                "stateful": self.stateful_,
            },
        }

    def to_json(self, path: str | Path | None = None, indent: int | None = 2) -> str:
        """Serialise to JSON (written to ``path`` when given); returns the text."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, payload: dict) -> FitResult:
        """Rebuild a result from :meth:`to_dict` output (it can still ``predict``)."""
        try:
            cov_terms = payload["covariance"]["terms"]
            matrix = np.array(
                [
                    [np.nan if v is None else v for v in row]
                    for row in payload["covariance"]["matrix"]
                ],
                dtype=float,
            ).reshape(len(cov_terms), len(cov_terms))
            return cls(
                family=payload["family"],
                formula=payload["formula"],
                link=payload.get("link") or _DEFAULT_LINKS[payload["family"]],
                ci=payload.get("ci", 0.95),
                coefficients=_from_records(payload["params"]),
                thresholds=_from_records(payload["thresholds"]),
                alpha=payload.get("alpha"),
                alpha_std_error=payload.get("alpha_std_error"),
                log_likelihood=payload["log_likelihood"],
                n_obs=payload["n_obs"],
                n_rows=payload.get("n_rows", payload["n_obs"]),
                n_dropped=payload.get("n_dropped", 0),
                dropped_by=payload.get("dropped_by", {}),
                n_clusters=payload.get("n_clusters"),
                converged=payload["converged"],
                iterations=payload.get("iterations"),
                warnings=payload.get("warnings", []),
                notes=payload.get("notes", []),
                cov_type=payload.get("cov_type", "nonrobust"),
                covariance=pd.DataFrame(matrix, index=cov_terms, columns=cov_terms),
                levels=payload.get("levels"),
                level_values=payload.get("level_values"),
                df_resid=payload.get("df_resid"),
                r_squared=payload.get("r_squared"),
                scale=payload.get("scale"),
                exposure=payload.get("exposure"),
                weights=payload.get("weights"),
                cluster=payload.get("cluster"),
                design_columns=payload["design"]["columns"],
                categorical=payload["design"].get("categorical", []),
                stateful=payload["design"].get("stateful", False),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"fit result JSON: missing or malformed field ({exc})") from None

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> FitResult:
        """Load a result saved by :meth:`to_json` from JSON text or a file path."""
        text = str(text_or_path)
        if isinstance(text_or_path, Path) or not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise InputError(f"fit result JSON {str(path)!r}: cannot read ({exc})") from None
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"fit result JSON: not valid JSON ({exc})") from None
        return cls.from_dict(payload)


def _format_table(frame: pd.DataFrame) -> str:
    if not len(frame):
        return "  (none)"
    width = max(12, *(len(str(t)) for t in frame["term"]))
    header = (
        f"  {'term':<{width}} {'estimate':>11} {'std.error':>10} {'ci_low':>10} "
        f"{'ci_high':>10} {'p':>8}"
    )
    rows = [header]
    for row in frame.itertuples(index=False):
        rows.append(
            f"  {str(row.term):<{width}} {row.estimate:>11.5g} {row.std_error:>10.4g} "
            f"{row.ci_low:>10.4g} {row.ci_high:>10.4g} {row.p_value:>8.3g}"
        )
    return "\n".join(rows)


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------


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
    elif link in (None, "logit", _DEFAULT_LINKS[family]):
        # the link option is the ordinal link; other families have a fixed one
        link = _DEFAULT_LINKS[family]
    else:
        raise InputError(f"link {link!r}: family {family!r} uses the {_DEFAULT_LINKS[family]} link")
    if exposure is not None and family not in ("poisson", "negbin"):
        raise InputError(f"exposure {exposure!r}: only poisson and negbin take an exposure")
    if order is not None and family != "ordinal":
        raise InputError("order: only ordinal models take an outcome order")
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

    parsed = _parse_formula(formula, data.columns)
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
) -> FitResult:
    formula = parsed.text
    prep = _prepare(
        data,
        parsed,
        family,
        exposure=exposure,
        weights=weights,
        cluster=cluster,
        order=order,
        collapse=collapse,
    )
    flags: list[str] = []
    positive = prep.w > 0
    if not positive.all():
        prep = _subset(prep, positive)
    n_obs = float(prep.w.sum())
    if n_obs <= 0:
        raise InputError(f"data.{weights}: all weights are zero")
    if n_obs < MIN_RESPONSES:
        flags.append(f"too few responses: n = {_json_number(n_obs)} (need >= {MIN_RESPONSES})")

    levels, level_values = prep.levels, prep.level_values
    if family == "ordinal":
        counts = np.bincount(prep.y.astype(int), weights=prep.w, minlength=len(levels))
        present = counts > 0
        for level, count in zip(levels, counts, strict=True):
            if count < MIN_PER_LEVEL:
                flags.append(
                    f"too few responses at outcome level {level!r}: {_json_number(count)} "
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
                    f"too few responses with outcome {label}: {_json_number(count)} "
                    f"(need >= {MIN_PER_LEVEL})"
                )
        if events == 0 or events == n_obs:
            raise InputError(
                f"outcome {parsed.lhs_code!r}: all {_json_number(n_obs)} rows are "
                f"{int(events > 0)}; nothing to model"
            )

    # collinearity: keep the columns earlier ones do not explain (ordinal: with intercept)
    X_check = np.hstack((np.ones((len(prep.w), 1)), prep.X)) if family == "ordinal" else prep.X
    kept = _independent_columns(X_check, prep.w)
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
        flags.append(f"more parameters ({n_params}) than observations ({_json_number(n_obs)})")

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
        cov_theta = _sandwich(bread, unit_scores, prep.w, prep.groups, n_obs, cov_type)
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
    coefficients = _tidy(prep.columns, beta_full, se_full, ci, dist_df)
    threshold_names: list[str] = []
    thresholds = _tidy([], [], [], ci)
    alpha = alpha_se = None
    cov_names = list(prep.columns)
    jac = np.zeros((len(theta), len(theta)))
    jac[np.arange(len(theta)), np.arange(len(theta))] = 1.0
    if family == "ordinal":
        threshold_names = [f"{levels[j]}|{levels[j + 1]}" for j in range(len(levels) - 1)]
        thresholds = _tidy(threshold_names, theta[k:], se_theta[k:], ci)
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
        covariance=pd.DataFrame(cov_full, index=cov_names, columns=cov_names),
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


def _subset(prep: _Prepared, mask: np.ndarray) -> _Prepared:
    prep.X = prep.X[mask]
    prep.y = prep.y[mask]
    prep.w = prep.w[mask]
    prep.n_units = prep.n_units[mask]
    if prep.offset is not None:
        prep.offset = prep.offset[mask]
    if prep.groups is not None:
        prep.groups = pd.factorize(prep.groups[mask])[0]
    return prep


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
        likelihood = _OrdinalLikelihood(X, y, w, n_levels, link)
        theta0 = start
        if theta0 is None:
            cum = np.cumsum(np.bincount(y.astype(int), weights=w, minlength=n_levels))[:-1]
            cum = np.clip(cum / w.sum(), 1e-6, 1 - 1e-6)
            cuts0 = special.logit(cum) if link == "logit" else special.ndtri(cum)
            # keep start cutpoints strictly increasing
            cuts0 = np.maximum.accumulate(cuts0 + np.arange(len(cuts0)) * 1e-6)
            theta0 = np.concatenate((np.zeros(X.shape[1]), cuts0))
    elif family == "logit":
        likelihood = _LogitLikelihood(X, y, w, offset)
        theta0 = np.zeros(X.shape[1]) if start is None else start
    elif family in ("poisson", "negbin"):
        poisson = _PoissonLikelihood(X, y, w, offset)
        if family == "poisson":
            likelihood = poisson
            theta0 = _log_linear_start(X, y, w, offset) if start is None else start
        else:
            likelihood = _NB2Likelihood(X, y, w, offset)
            theta0 = start
            if theta0 is None:
                beta_p, _, _ = _newton(poisson, _log_linear_start(X, y, w, offset), maxiter)
                mu = np.exp(X @ beta_p + (offset if offset is not None else 0.0))
                moment = float(w @ ((y - mu) ** 2 - y)) / float(w @ mu**2)
                theta0 = np.concatenate((beta_p, [np.log(max(moment, 0.05))]))
    else:
        raise InputError(f"family {family!r}: expected one of ordinal, logit, poisson, negbin")
    theta, converged, iterations = _newton(likelihood, theta0, maxiter)
    return MLEstimate(theta, float(likelihood.loglike(theta)), converged, iterations, likelihood)


def _fit_family(family, link, X, prep: _Prepared, levels, maxiter, need_scores, has_intercept):
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
        bread = _invert_information((X if unweighted else X * w[:, None]).T @ X)
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
    bread = _invert_information(-H)

    if family == "ordinal":
        p_obs = likelihood.fitted_prob(theta)
        certain = p_obs > 1 - _SEPARATION_TOL
        if certain.any():
            extra["separation"] = (
                f"quasi-complete separation: {_json_number(w[certain].sum())} responses "
                f"perfectly predicted (some estimates drift to +-infinity)"
            )
    elif family == "logit":
        p = special.expit(likelihood.eta(theta))
        p_obs = np.where(y > 0.5, p, 1 - p)
        certain = p_obs > 1 - _SEPARATION_TOL
        if certain.any():
            extra["separation"] = (
                f"perfect or quasi-complete separation: {_json_number(w[certain].sum())} "
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


# --------------------------------------------------------------------------------------
# default models of the service panel
# --------------------------------------------------------------------------------------

DEFAULT_DRIVERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("np.log(latency_p95_ms)", ("latency_p95_ms",)),
    ("np.log1p(downtime_minutes)", ("downtime_minutes",)),
    ("error_rate", ("error_rate",)),
    ("np.log1p(resolution_hours_median)", ("resolution_hours_median",)),
    (
        "np.maximum(0, np.log(latency_p95_ms / expected_latency_p95_ms))",
        ("latency_p95_ms", "expected_latency_p95_ms"),
    ),
    (
        "np.maximum(0, expected_availability_pct - availability_pct)",
        ("availability_pct", "expected_availability_pct"),
    ),
    ("np.log1p(downtime_minutes_lag1)", ("downtime_minutes_lag1",)),
    ("C(segment)", ("segment",)),
)

DEFAULT_MODELS = {
    "csat": {"outcome": "csat", "family": "ordinal", "data": "responses"},
    "top2": {"outcome": "I(csat >= 4)", "family": "logit", "data": "responses"},
    "complaints": {"outcome": "complaints", "family": "negbin", "data": "panel"},
}


def default_formulas(columns=None) -> dict[str, str]:
    """Default formulas of the ``csat``, ``top2`` and ``complaints`` models.

    Parameters
    ----------
    columns : iterable of str, optional
        Available columns; drivers whose columns are absent are left out.

    Returns
    -------
    dict
        Model name to patsy formula.
    """
    available = None if columns is None else {str(c) for c in columns}
    drivers = [
        term
        for term, needed in DEFAULT_DRIVERS
        if available is None or all(c in available for c in needed)
    ]
    if not drivers:
        raise InputError(
            "panel: none of the default drivers' columns are present (need e.g. "
            "latency_p95_ms, downtime_minutes, error_rate)"
        )
    rhs = " + ".join(drivers)
    return {name: f"{spec['outcome']} ~ {rhs}" for name, spec in DEFAULT_MODELS.items()}


def fit_default_models(
    responses: pd.DataFrame | None,
    panel: pd.DataFrame | None,
    formulas: dict[str, str] | None = None,
    cluster: str = "customer_id",
    exposure: str = "active_users",
) -> dict[str, FitResult]:
    """Fit the default CSAT, top-2-box and complaint models.

    Parameters
    ----------
    responses : DataFrame or None
        One row per survey response with the customer-month's panel columns and ``csat``;
        the ``csat`` and ``top2`` models are skipped when None.
    panel : DataFrame or None
        The service panel (one row per customer-month); ``complaints`` is skipped when
        None or without the ``complaints`` or exposure column.
    formulas : dict, optional
        Formulas replacing the defaults, by model name (``csat``, ``top2``,
        ``complaints``); drivers default to those whose columns are present.
    cluster : str
        Column clustering the response-level standard errors.
    exposure : str
        Exposure column of the complaint model; customer-months with exposure <= 0 (no
        active users) are left out and counted in ``n_dropped_``.

    Returns
    -------
    dict of FitResult
    """
    formulas = dict(formulas or {})
    results: dict[str, FitResult] = {}
    if responses is not None:
        defaults = default_formulas(responses.columns)
        thin = _thin_segments(responses, panel)
        for name in ("csat", "top2"):
            spec = DEFAULT_MODELS[name]
            results[name] = fit(
                responses,
                formulas.get(name, defaults[name]),
                spec["family"],
                cluster=cluster if cluster in responses.columns else None,
            )
            results[name].warnings_.extend(thin)
        for flag in thin:
            warnings.warn(f"csat and top2 models: {flag}", ModelWarning, stacklevel=2)
    if panel is not None and "complaints" in panel.columns and exposure in panel.columns:
        defaults = default_formulas(panel.columns)
        users = pd.to_numeric(panel[exposure], errors="coerce")
        no_users = ~(users > 0)
        data = panel.loc[~no_users]
        result = fit(
            data,
            formulas.get("complaints", defaults["complaints"]),
            "negbin",
            exposure=exposure,
        )
        n_none = int(no_users.sum())
        if n_none:
            result.n_dropped_ += n_none
            result.dropped_by_[f"{exposure} <= 0 or missing"] = n_none
            result.notes_.append(f"{n_none} customer-months without {exposure} left out")
        results["complaints"] = result
    return results


def _thin_segments(responses: pd.DataFrame, panel: pd.DataFrame | None) -> list[str]:
    """One warning per segment with fewer than MIN_RESPONSES survey responses.

    Every segment of the panel counts (one without any response gets 0): what the models say
    about such a segment rests on too few answers and must not be read as if it were fine.
    """
    if "segment" not in responses.columns or "csat" not in responses.columns:
        return []
    answered = responses.loc[responses["csat"].notna(), "segment"].dropna().astype(str)
    counts = answered.value_counts()
    segments = set(counts.index)
    if panel is not None and "segment" in panel.columns:
        segments |= set(panel["segment"].dropna().astype(str))
    flags = []
    for segment in sorted(segments):
        n = int(counts.get(segment, 0))
        if n < MIN_RESPONSES:
            flags.append(
                f"too few responses in segment {segment!r}: n = {n} (need >= {MIN_RESPONSES}); "
                "its estimates are unreliable"
            )
    return flags


# --------------------------------------------------------------------------------------
# helpers shared with satmodel.evaluation
# --------------------------------------------------------------------------------------


@dataclass
class ModelData:
    """The rows a fitted model uses, as arrays (collapsed rows carry summed weights).

    ``X`` holds the design columns that were estimated (collinear ones left out), ``y`` the
    outcome (ordinal: level codes 0..J-1 of ``result.levels_``), ``weights`` frequency
    weights and ``offset`` log(exposure) or None.
    """

    X: pd.DataFrame
    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray | None


def model_data(result: FitResult, data: pd.DataFrame) -> ModelData:
    """Rebuild the model matrices of ``result`` on ``data`` (normally the fitting data).

    Parameters
    ----------
    result : FitResult
    data : DataFrame

    Returns
    -------
    ModelData
    """
    parsed = _parse_formula(result.formula, data.columns)
    order = result.levels_ if result.family == "ordinal" else None
    with single_threaded_blas():
        prep = _prepare(
            data,
            parsed,
            result.family,
            exposure=result.exposure,
            weights=result.weights,
            cluster=None,
            order=order,
            collapse=True,
        )
    keep = prep.w > 0
    if not keep.all():
        prep = _subset(prep, keep)
    if prep.columns != result.design_columns_:
        raise InputError(
            f"data: design columns {prep.columns} differ from the fitted model's "
            f"{result.design_columns_} (different categorical levels?)"
        )
    estimated = result.coefficients_["estimate"].notna().to_numpy()
    columns = [c for c, e in zip(prep.columns, estimated, strict=True) if e]
    X = pd.DataFrame(prep.X[:, estimated], columns=columns)
    return ModelData(X=X, y=prep.y, weights=prep.w, offset=prep.offset)
