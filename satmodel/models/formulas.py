"""Formula parsing and safety: which names a formula may use, and the patsy design matrix.

Formula terms are Python code that patsy evaluates; :func:`parse_formula` lets through only
columns, numbers, operators and an allow-list of element-wise numpy functions, so a formula
from a user (CLI, config, notebook parameter) can never run arbitrary code.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import patsy

from satmodel.errors import InputError

_STATEFUL_TRANSFORMS = ("center", "standardize", "scale", "bs", "cr", "cc", "te")


def _eval_namespace() -> dict[str, Any]:
    namespace = {name: getattr(patsy.builtins, name) for name in patsy.builtins.__all__}
    namespace["np"] = np
    return namespace


def _eval_env() -> patsy.EvalEnvironment:
    return patsy.EvalEnvironment([_eval_namespace()])


def first_line(exc: BaseException) -> str:
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
class Formula:
    text: str
    lhs_code: str
    rhs_terms: list
    lhs_columns: list[str]
    rhs_columns: list[str]
    factor_columns: dict[str, list[str]]
    stateful: bool


def parse_formula(formula: str, columns) -> Formula:
    if not isinstance(formula, str) or "~" not in formula:
        raise InputError(f"formula {formula!r}: expected 'outcome ~ term + term ...'")
    try:
        desc = patsy.ModelDesc.from_formula(formula)
    except patsy.PatsyError as exc:
        raise InputError(f"formula {formula!r}: {first_line(exc)}") from None
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
    return Formula(
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
    return list(parse_formula(formula, columns).rhs_columns)


def rhs_desc(rhs_terms: list, force_intercept: bool) -> patsy.ModelDesc:
    terms = list(rhs_terms)
    if force_intercept and patsy.INTERCEPT not in terms:
        terms.insert(0, patsy.INTERCEPT)
    return patsy.ModelDesc([], terms)


def dmatrix(desc: patsy.ModelDesc, frame: pd.DataFrame) -> pd.DataFrame:
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


def outcome_series(data: pd.DataFrame, formula: Formula) -> pd.Series:
    code = formula.lhs_code
    if code in data.columns:
        return data[code]
    # Only reached with a Formula from parse_formula, whose outcome code passed _unsafe_part:
    # columns, numbers, operators and allow-listed np functions (tests/test_security.py).
    try:
        values = _eval_env().eval(code, inner_namespace=data)
    except Exception as exc:
        raise InputError(f"outcome {code!r}: cannot be evaluated ({first_line(exc)})") from None
    if np.ndim(values) == 0:
        values = np.repeat(values, len(data))
    return pd.Series(np.asarray(values), index=data.index, name=code)
