"""Formula parsing and safety: which names a formula may use, and the patsy design matrix.

Formula terms are Python code that patsy evaluates; :func:`parse_formula` lets through only
columns, numbers, operators and an allow-list of element-wise numpy functions, so a formula
from a user (CLI, config, notebook parameter) can never run arbitrary code.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import patsy

from satmodel.errors import InputError

_STATEFUL_TRANSFORMS = ("center", "standardize", "scale", "bs", "cr", "cc", "te")
# Bounds that keep parsing and evaluating a formula fast: Python integers have no size limit,
# so ``10**10**10`` or ``(a+b+c+d)**50`` would run for hours, and deep nesting exhausts the stack.
MAX_FORMULA_LENGTH = 2000
MAX_NESTING_DEPTH = 30
MAX_FORMULA_OPERANDS = 200
MAX_TERM_POWER = 5
MAX_FORMULA_TERMS = 1000
MAX_EXPONENT = 10
_BRACKETS = {"(": ")", "[": "]", "{": "}"}


def _eval_namespace() -> dict[str, Any]:
    namespace = {name: getattr(patsy.builtins, name) for name in patsy.builtins.__all__}
    namespace["np"] = np
    return namespace


def _eval_env() -> patsy.EvalEnvironment:
    return patsy.EvalEnvironment([_eval_namespace()])


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _calls(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _quoted_name(node: ast.AST) -> str | None:
    """The column a well-formed ``Q("name")`` names: one plain string literal, nothing else."""
    if (
        _calls(node, "Q")
        and len(node.args) == 1
        and not node.keywords
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


def _code_names(code: str) -> tuple[set[str], set[str]]:
    """Names a patsy factor's Python code refers to, and the columns it quotes with ``Q()``."""
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError:
        return set(), set()
    names, quoted = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif (name := _quoted_name(node)) is not None:
            quoted.add(name)
    return names | quoted, quoted


def _names_in_code(code: str) -> set[str]:
    """Names a patsy factor's Python code refers to (``Q("a b")`` counts as ``a b``)."""
    return _code_names(code)[0]


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


# Shifts and matrix products have no use in a formula; ``1 << 10**10`` would fill the memory.
_UNSAFE_OPERATORS = (ast.LShift, ast.RShift, ast.MatMult)
# Repeating a literal string, list or tuple (``'a' * 10**9``) would fill the memory too.
_SEQUENCE_LITERALS = (ast.List, ast.Tuple)


def _constant_value(node: ast.AST, depth: int = 0) -> float | None:
    """Value of an arithmetic expression of number literals, in floats (never a huge integer).

    None when ``node`` is anything else, or nested deeper than MAX_NESTING_DEPTH.
    """
    if depth > MAX_NESTING_DEPTH:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        value = _constant_value(node.operand, depth + 1)
        if value is None:
            return None
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left = _constant_value(node.left, depth + 1)
        right = _constant_value(node.right, depth + 1)
        if left is None or right is None:
            return None
        try:
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Div):
                return left / right
            if isinstance(node.op, ast.Pow):
                return float(left**right)
        except (ZeroDivisionError, OverflowError, TypeError):
            return None
    return None


def _power_operands(node: ast.AST) -> tuple[ast.AST, ast.AST] | None:
    """(base, exponent) of ``a ** b`` or ``pow(a, b)``, else None."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return node.left, node.right
    if _calls(node, "pow") and len(node.args) >= 2:
        return node.args[0], node.args[1]
    return None


def _unbounded_part(node: ast.AST) -> str | None:
    """Why evaluating ``node`` could take unbounded time or memory, or None."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, _UNSAFE_OPERATORS):
        return f"operator {type(node.op).__name__} in {ast.unparse(node)!r} is not allowed"
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Mult)
        and any(
            isinstance(side, _SEQUENCE_LITERALS)
            or (isinstance(side, ast.Constant) and isinstance(side.value, str | bytes))
            for side in (node.left, node.right)
        )
    ):
        return f"repeating a string or list ({ast.unparse(node)!r}) is not allowed"
    if _calls(node, "pow") and (node.keywords or len(node.args) != 2):
        return f"{ast.unparse(node)!r}: pow() takes exactly two arguments"
    if _calls(node, "Q") and _quoted_name(node) is None:
        return f"{ast.unparse(node)!r}: Q() takes one plain string naming a column, e.g. Q('a b')"
    operands = _power_operands(node)
    if operands is None:
        return None
    base, exponent = operands
    value = _constant_value(exponent)
    if value is None or not abs(value) <= MAX_EXPONENT:
        return (
            f"the exponent of {ast.unparse(node)!r} must be a number between "
            f"-{MAX_EXPONENT} and {MAX_EXPONENT} (np.power(x, y) takes column exponents)"
        )
    if any(_power_operands(inner) is not None for inner in ast.walk(base)):
        return f"{ast.unparse(node)!r} raises a power to a power; write a single power"
    return None


def _unsafe_part(code: str, allowed_names: set[str]) -> str | None:
    """Why a formula term's code is not allowed, or None when it is safe to evaluate."""
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError:
        return "not a Python expression"
    for node in ast.walk(tree):
        if not isinstance(node, _SAFE_NODES):
            return f"{type(node).__name__} expressions are not allowed"
        unbounded = _unbounded_part(node)
        if unbounded is not None:
            return unbounded
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


def _nesting_problem(formula: str) -> str | None:
    """Why the brackets of ``formula`` nest too deep (string literals skipped), or None."""
    depth, quote, escaped = 0, None, False
    for position, char in enumerate(formula):
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in _BRACKETS:
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                return (
                    f"brackets nest more than {MAX_NESTING_DEPTH} deep at "
                    f"{formula[max(0, position - 20) : position + 20]!r}"
                )
        elif char in _BRACKETS.values():
            depth -= 1
    return None


def _term_count(node, counts: dict) -> int:
    """Upper bound of the terms ``node`` expands to, from its operands' bounds in ``counts``.

    Capped just above MAX_FORMULA_TERMS, so the numbers stay small.
    """
    parts = [counts[id(arg)] for arg in node.args]
    if len(parts) == 2:
        left, right = parts
        if node.type == "**" and node.args[1].type == "NUMBER":
            power = min(int(float(node.args[1].token.extra)), left)
            total = sum(math.comb(left, k) for k in range(1, power + 1))
        else:
            total = {
                "~": right,
                "+": left + right,
                "-": left,
                ":": left * right,
                "*": left + right + left * right,
                "/": left + left * right,
            }.get(node.type, left + right)
    else:
        total = parts[0] if parts else 1
    return min(total, MAX_FORMULA_TERMS + 1)


def _operator_problem(formula: str) -> str | None:
    """Why the formula operators of ``formula`` would be slow to expand, or None."""
    try:
        tree = patsy.parse_formula.parse_formula(formula)
    except patsy.PatsyError:
        return None  # patsy says what is wrong when the formula is evaluated
    operands = 0
    order = []
    pending = [tree]
    while pending:
        node = pending.pop()
        order.append(node)
        pending.extend(node.args)
        if not node.args:
            operands += 1
        if node.type == "**" and node.args[1].type == "NUMBER":
            power = float(node.args[1].token.extra)
            if power > MAX_TERM_POWER:
                part = formula[node.origin.start : node.origin.end]
                return (
                    f"term {part!r}: the interaction power {node.args[1].token.extra} is more "
                    f"than {MAX_TERM_POWER}"
                )
    if operands > MAX_FORMULA_OPERANDS:
        return f"{operands} operands of formula operators (at most {MAX_FORMULA_OPERANDS})"
    counts: dict[int, int] = {}
    for node in reversed(order):  # operands before the operators that combine them
        counts[id(node)] = _term_count(node, counts)
        if counts[id(node)] > MAX_FORMULA_TERMS:
            part = formula[node.origin.start : node.origin.end]
            return f"{part!r} expands to more than {MAX_FORMULA_TERMS} terms"
    return None


def _check_bounds(formula: str) -> None:
    """Raise InputError when parsing or evaluating ``formula`` could take unbounded time."""
    shown = formula if len(formula) <= 80 else formula[:77] + "..."
    if len(formula) > MAX_FORMULA_LENGTH:
        raise InputError(
            f"formula {shown!r}: {len(formula)} characters (at most {MAX_FORMULA_LENGTH})"
        )
    problem = _nesting_problem(formula) or _operator_problem(formula)
    if problem is not None:
        raise InputError(f"formula {shown!r}: {problem}")


def parse_formula(formula: str, columns) -> Formula:
    """Parse and check ``formula`` against the data's ``columns``.

    Raises
    ------
    InputError
        Not a formula, too long or too deeply nested, code outside the allow-list, powers
        that are not small numbers, names that are not columns.
    """
    if not isinstance(formula, str) or "~" not in formula:
        raise InputError(f"formula {formula!r}: expected 'outcome ~ term + term ...'")
    _check_bounds(formula)
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
        names, quoted = _code_names(code)
        missing = (names - column_names - known) | (quoted - column_names)
        unsafe = _unsafe_part(code, known | names)
        if unsafe is not None and not missing:
            raise InputError(
                f"formula {formula!r}: term {code!r} is not allowed ({unsafe}); use columns, "
                "numbers, operators and element-wise np functions such as np.log(...)"
            )
        for name in sorted(missing):
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
    # parse_formula already vetted this code; checked again here, next to the eval, so no
    # Formula built any other way can reach it: columns, numbers, operators and
    # allow-listed np functions only (tests/test_security.py).
    allowed = set(_eval_namespace()) | _SAFE_BUILTINS | {str(c) for c in data.columns}
    unsafe = _unsafe_part(code, allowed)
    if unsafe is not None:
        raise InputError(f"outcome {code!r}: not allowed ({unsafe})")
    try:
        values = _eval_env().eval(code, inner_namespace=data)
    except Exception as exc:
        raise InputError(f"outcome {code!r}: cannot be evaluated ({first_line(exc)})") from None
    if np.ndim(values) == 0:
        values = np.repeat(values, len(data))
    return pd.Series(np.asarray(values), index=data.index, name=code)
