"""The canonical tables of docs/contract.md, stated once.

Every later step reads this one description: :mod:`satmodel.sources` uses it to cast a user's
columns onto the canonical types, :mod:`satmodel.validate` derives the pandera schemas
(column presence and types) and the row rules (quarantine) from it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Column kinds and the DuckDB type each is cast to.
SQL_TYPES = {
    "str": "VARCHAR",
    "float": "DOUBLE",
    "int": "DOUBLE",  # kept as DOUBLE until the row rule "whole number" has been checked
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
    "month": "VARCHAR",
}


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical column.

    Attributes
    ----------
    name : canonical name.
    kind : one of ``str``, ``float``, ``int``, ``bool``, ``timestamp``, ``month``.
    nullable : whether nulls are allowed.
    rule : SQL predicate over the column that must hold for every non-null value
        (written with ``{c}`` for the quoted column name), or None.
    rule_text : what breaking the rule means, for messages ("outside 1..5").
    unit : unit family for ``units`` conversions in the config (``ms``, ``hours``, ``pct``).
    references : a table whose key every non-null value must name when that table is present
        (rows naming an unknown one are quarantined), or None.
    """

    name: str
    kind: str
    nullable: bool = False
    rule: str | None = None
    rule_text: str | None = None
    unit: str | None = None
    references: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """One canonical table.

    Attributes
    ----------
    name : canonical table name.
    columns : its columns, in canonical order.
    key : columns that must be unique together (duplicates after the first are quarantined).
    time_column : the column whose month places the row in the data window.
    time_end_column : for interval tables, the end column: the row is in the window when the
        interval overlaps it.
    order_pairs : (earlier, later) column pairs where ``later >= earlier`` must hold.
    one_open : (key, end) columns: at most one row per ``key`` may have a null ``end`` (one
        open contract per customer); later open rows are quarantined.
    """

    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...] = ()
    time_column: str | None = None
    time_end_column: str | None = None
    order_pairs: tuple[tuple[str, str], ...] = ()
    one_open: tuple[str, str] | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


# An id or segment must be visible text: no NUL byte, no bidirectional control character
# (U+202A..U+202E, U+2066..U+2069 can make "abc" display as another id), not blank.
TEXT_KEY_RULE = (
    "NOT regexp_matches({c}, '[\\x00\\x{{202A}}-\\x{{202E}}\\x{{2066}}-\\x{{2069}}]') "
    "AND NOT regexp_full_match({c}, '\\s*')"
)
TEXT_KEY_REASON = "not a usable name (blank, NUL byte or bidirectional control character)"


def _key(name: str, nullable: bool = False, references: str | None = None) -> ColumnSpec:
    return ColumnSpec(
        name, "str", nullable, rule=TEXT_KEY_RULE, rule_text=TEXT_KEY_REASON, references=references
    )


# Elsewhere customer_id must name a row of customers, whose ids meet TEXT_KEY_RULE.
_ID = ColumnSpec("customer_id", "str")
_WHOLE = "{c} = floor({c})"


def _month(name: str, nullable: bool = False) -> ColumnSpec:
    return ColumnSpec(
        name,
        "month",
        nullable,
        rule="regexp_full_match({c}, '[0-9]{{4}}-(0[1-9]|1[0-2])')",
        rule_text="not a YYYY-MM month",
    )


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "customers",
            (
                _key("customer_id"),
                _key("segment"),
                ColumnSpec("region", "str", nullable=True),
                ColumnSpec("tier", "str", nullable=True),
                ColumnSpec(
                    "expected_availability_pct",
                    "float",
                    nullable=True,
                    rule="{c} BETWEEN 0 AND 100",
                    rule_text="outside 0..100",
                    unit="pct",
                ),
                ColumnSpec(
                    "expected_latency_p95_ms",
                    "float",
                    nullable=True,
                    rule="{c} > 0",
                    rule_text="not > 0",
                    unit="ms",
                ),
                ColumnSpec(
                    "expected_resolution_hours",
                    "float",
                    nullable=True,
                    rule="{c} > 0",
                    rule_text="not > 0",
                    unit="hours",
                ),
                # optional: the customer's name as proposals address it (else the id)
                ColumnSpec("name", "str", nullable=True),
            ),
            key=("customer_id",),
        ),
        TableSpec(
            "requests",
            (
                _ID,
                ColumnSpec("ts", "timestamp"),
                ColumnSpec("latency_ms", "float", rule="{c} >= 0", rule_text="negative", unit="ms"),
                ColumnSpec("ok", "bool"),
            ),
            time_column="ts",
        ),
        TableSpec(
            "incidents",
            (
                _key("incident_id"),
                _ID,
                ColumnSpec("start_ts", "timestamp"),
                ColumnSpec("end_ts", "timestamp"),
                ColumnSpec(
                    "severity",
                    "int",
                    rule=_WHOLE + " AND {c} BETWEEN 1 AND 4",
                    rule_text="not a whole number in 1..4",
                ),
                # optional: the IT component, the recurring problem, planned maintenance
                _key("component_id", nullable=True, references="components"),
                _key("problem_id", nullable=True),
                ColumnSpec("planned", "bool", nullable=True),
            ),
            key=("incident_id",),
            time_column="start_ts",
            time_end_column="end_ts",
            order_pairs=(("start_ts", "end_ts"),),
        ),
        TableSpec(
            "tickets",
            (
                _key("ticket_id"),
                _ID,
                ColumnSpec("opened_ts", "timestamp"),
                ColumnSpec("first_response_ts", "timestamp", nullable=True),
                ColumnSpec("resolved_ts", "timestamp", nullable=True),
                ColumnSpec("priority", "str"),
            ),
            key=("ticket_id",),
            time_column="opened_ts",
            order_pairs=(("opened_ts", "first_response_ts"), ("opened_ts", "resolved_ts")),
        ),
        TableSpec(
            "changes",
            (
                _key("change_id"),
                ColumnSpec("customer_id", "str", nullable=True),
                ColumnSpec("ts", "timestamp"),
                ColumnSpec("failed", "bool"),
                _key("component_id", nullable=True, references="components"),
            ),
            key=("change_id",),
            time_column="ts",
        ),
        TableSpec(
            "usage",
            (
                _ID,
                _month("month"),
                ColumnSpec(
                    "active_users",
                    "int",
                    rule=_WHOLE + " AND {c} >= 0",
                    rule_text="not a whole number >= 0",
                ),
            ),
            key=("customer_id", "month"),
            time_column="month",
        ),
        TableSpec(
            "surveys",
            (
                _key("response_id"),
                _ID,
                ColumnSpec("ts", "timestamp"),
                ColumnSpec(
                    "csat",
                    "int",
                    rule=_WHOLE + " AND {c} BETWEEN 1 AND 5",
                    rule_text="not a whole number in 1..5",
                ),
                ColumnSpec(
                    "nps",
                    "int",
                    nullable=True,
                    rule=_WHOLE + " AND {c} BETWEEN 0 AND 10",
                    rule_text="not a whole number in 0..10",
                ),
            ),
            key=("response_id",),
            time_column="ts",
        ),
        TableSpec(
            "complaints",
            (
                _key("complaint_id"),
                _ID,
                ColumnSpec("ts", "timestamp"),
                ColumnSpec("category", "str"),
            ),
            key=("complaint_id",),
            time_column="ts",
        ),
        # contracts and opex have no time column: their months do not widen the data window
        TableSpec(
            "contracts",
            (
                _ID,
                _month("start_month"),
                _month("end_month", nullable=True),
                ColumnSpec(
                    "monthly_revenue", "float", rule="{c} >= 0", rule_text="negative revenue"
                ),
            ),
            order_pairs=(("start_month", "end_month"),),
            one_open=("customer_id", "end_month"),
        ),
        TableSpec(
            "opex",
            (
                _month("month"),
                ColumnSpec("amount", "float", rule="{c} >= 0", rule_text="negative cost"),
            ),
            key=("month",),
        ),
        TableSpec(
            "components",
            (
                _key("component_id"),
                ColumnSpec("name", "str"),
                ColumnSpec("kind", "str"),
                ColumnSpec("service", "str", nullable=True),
            ),
            key=("component_id",),
        ),
    )
}

SERVICE_TABLES = ("requests", "incidents", "tickets", "changes")
OUTCOME_TABLES = ("surveys", "complaints")
