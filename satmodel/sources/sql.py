"""One compiler of the config's derived columns and ``where`` filters, for every SQL engine.

DuckDB and Spark SQL differ only in how they quote, write literals, name types, format a month
and take the seconds between two timestamps; an :class:`SqlDialect` holds those pieces, and
:func:`derived_sql` and :func:`where_sql` build the same expressions for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from satmodel.config import COMPARISONS, UNIT_FACTORS, WHERE_TESTS, Derived
from satmodel.errors import InputError

DIVISORS = {
    "days_between": 86400.0,
    "hours_between": 3600.0,
    "minutes_between": 60.0,
    "seconds_between": 1.0,
}


@dataclass(frozen=True)
class SqlDialect:
    """What one SQL engine spells its own way.

    Attributes
    ----------
    quote : an identifier, quoted.
    literal : a config constant as a literal.
    string_type, integer_type : the names of the string and the integer type.
    month_of : a timestamp expression -> its ``YYYY-MM`` text.
    seconds_between : quoted start and end columns -> the seconds from start to end (DOUBLE).
    """

    quote: Callable[[str], str]
    literal: Callable[[object], str]
    string_type: str
    integer_type: str
    month_of: Callable[[str], str]
    seconds_between: Callable[[str, str], str]


def unit_factor(table: str, column: str, unit: str, quantity: str) -> float:
    """The factor from a configured ``unit`` to the canonical unit of ``quantity``.

    Raises
    ------
    InputError
        Naming ``tables.<table>.units.<column>`` and the known units when ``unit`` is unknown.
    """
    factors = UNIT_FACTORS.get(quantity, {})
    if unit not in factors:
        raise InputError(
            f"config: tables.{table}.units.{column} = {unit!r} is not a known unit "
            f"(known: {', '.join(factors) or 'none for this column'})"
        )
    return factors[unit]


def _part(value: object, dialect: SqlDialect) -> str:
    if isinstance(value, str):
        return f"CAST({dialect.quote(value)} AS {dialect.integer_type})"
    return str(int(value))


def derived_sql(derived: Derived, dialect: SqlDialect) -> str:
    """The expression of a derived column (identifiers quoted, values as literals)."""
    op, args = derived.op, derived.args
    quote, literal = dialect.quote, dialect.literal
    if op in DIVISORS:
        seconds = dialect.seconds_between(quote(args["start"]), quote(args["end"]))
        expression = f"({seconds} / {literal(DIVISORS[op])})"
    elif op in COMPARISONS:
        right = quote(args["other"]) if "other" in args else literal(args["value"])
        return f"({quote(args['column'])} {COMPARISONS[op]} {right})"
    elif op in ("is_null", "not_null"):
        return f"({quote(args['column'])} IS {'NOT ' if op == 'not_null' else ''}NULL)"
    elif op == "month_of":
        return dialect.month_of(f"TRY_CAST({quote(args['column'])} AS TIMESTAMP)")
    elif op == "date_from_parts":
        parts = (args["year"], args["month"], args.get("day", 1))
        return f"CAST(make_date({', '.join(_part(p, dialect) for p in parts)}) AS TIMESTAMP)"
    elif op == "concat":
        parts = ", ".join(f"CAST({quote(c)} AS {dialect.string_type})" for c in args["columns"])
        return f"concat_ws({literal(args.get('sep', '-'))}, {parts})"
    elif op == "row_number":
        order = ", ".join(quote(c) for c in args["order_by"])
        return f"row_number() OVER (ORDER BY {order})"
    elif op == "multiply":
        return f"(CAST({quote(args['column'])} AS DOUBLE) * {literal(args['value'])})"
    elif op == "coalesce":
        parts = [quote(c) for c in args["columns"]]
        if "value" in args:
            parts.append(literal(args["value"]))
        return f"coalesce({', '.join(parts)})"
    elif op == "copy":
        expression = quote(args["column"])
    else:  # pragma: no cover - config rejects unknown ops
        raise InputError(f"derived: unknown op {op!r}")
    if "scale" in args:
        expression = f"(CAST({expression} AS DOUBLE) * {literal(args['scale'])})"
    return expression


def where_sql(condition, dialect: SqlDialect) -> str:
    """The test of one ``where`` condition of a table mapping."""
    column = dialect.quote(condition.column)
    if condition.test == "is_null":
        return f"({column} IS {'' if condition.value else 'NOT '}NULL)"
    operator = WHERE_TESTS[condition.test]
    if condition.test in ("in", "not_in"):
        values = ", ".join(dialect.literal(v) for v in condition.value)
        return f"({column} {operator} ({values}))"
    return f"({column} {operator} {dialect.literal(condition.value)})"
