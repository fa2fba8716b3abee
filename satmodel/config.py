"""Project configuration: ``satmodel.toml``.

The file is read with :mod:`tomllib`; nothing in it is ever evaluated as code. Every setting has
a default, so satmodel runs without a config file at all. Relative paths in the file are taken
relative to the folder that holds the file.

Example
-------
.. code-block:: toml

    [source]
    path = "warehouse/ops.duckdb"        # DuckDB file, folder of <table>.parquet / .csv, one
                                         # CSV/Parquet file, or postgresql://user@host:5432/db
    password_env = "PGPASSWORD_OPS"      # PostgreSQL: read the password from this variable;
                                         # without it, libpq's PGPASSWORD / ~/.pgpass apply

    [tables.requests]
    table = "api_log"                    # the user's table (or file stem) for this canonical table
    columns = { customer_id = "account", latency_ms = "duration_s" }
    units = { latency_ms = "s" }         # duration_s holds seconds: converted to ms
    constants = { ok = true }

    [tables.surveys]
    file = "exports/reviews.csv"         # or url = "postgresql://..." with table = "schema.name"
    where = { column = "status", equals = "delivered" }
    derived = { response_id = { op = "concat", columns = ["order_id", "review_id"] } }

    [thresholds]
    apdex_t_ms = 300

    [costs]
    per_complaint = 40          # handling cost of one complaint (the value of avoiding it)

    [opex]                      # monthly operating cost, when there is no opex table
    "2025-01" = 180000

    [calendar]
    timezone = "Asia/Shanghai"           # months, their bounds and "last complete month" in
                                         # this IANA zone (default UTC)

    [models]
    identification = "within"            # or "pooled"

    [spark]                     # engine spark ([source] engine = "spark" or --engine spark)
    root = "s3a://lake/ops"     # <table> Parquet/Delta folders; or database = / jdbc_url =
    master = "yarn"             # or remote = "sc://host:15002"; executor_memory = "8g" ...

Derived columns and filters
---------------------------
``derived`` gives canonical columns computed from the user's columns by a small declarative
vocabulary (:data:`DERIVED_OPS`); ``where`` keeps only the rows that meet every condition
(:data:`WHERE_TESTS`); ``repeat = "n"`` makes each source row stand for ``n`` events (its
0-based copy number is the column ``_repeat_index``); ``distinct = true`` keeps each distinct
mapped row once. They compile to SQL with quoted identifiers and literals only.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from satmodel.config_spark import ENGINES, SparkSettings, spark_settings
from satmodel.errors import InputError
from satmodel.redaction import redact
from satmodel.schema import TABLES

DEFAULT_DUCKDB = Path("data") / "satmodel.duckdb"
CONFIG_FILE_NAME = "satmodel.toml"
DEFAULT_COMPLAINT_COST = 40.0
"""Default cost of handling one complaint (``[costs] per_complaint``)."""
DEFAULT_CURRENCY = "EUR"  # [costs] currency: what proposal prices are quoted in

# Unit conversions into the canonical unit of a column: canonical value = source value * factor.
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "ms": {
        "ms": 1.0,
        "s": 1000.0,
        "us": 0.001,
        "min": 60_000.0,
        "h": 3_600_000.0,
        "hours": 3_600_000.0,
        "d": 86_400_000.0,
        "days": 86_400_000.0,
    },
    "hours": {"h": 1.0, "hours": 1.0, "min": 1 / 60, "s": 1 / 3600, "d": 24.0, "days": 24.0},
    "pct": {"pct": 1.0, "percent": 1.0, "fraction": 100.0},
    # timestamps given as numbers since 1970-01-01 UTC: factor to microseconds
    "epoch": {"epoch_s": 1e6, "epoch_ms": 1e3, "epoch_us": 1.0, "epoch_ns": 1e-3},
}


# Derived-column operations: op -> (required keys, optional keys). In the short form
# ``{ days_between = ["a", "b"] }`` the list gives the keys in this order.
_BETWEEN = (("start", "end"), ("scale",))
_COMPARE = (("column",), ("value", "other"))
DERIVED_OPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "days_between": _BETWEEN,  # (end - start) in days (fractional), times scale
    "hours_between": _BETWEEN,
    "minutes_between": _BETWEEN,
    "seconds_between": _BETWEEN,
    "equal": _COMPARE,  # column = value (a literal) or column = other (a column)
    "not_equal": _COMPARE,
    "less": _COMPARE,
    "less_equal": _COMPARE,
    "greater": _COMPARE,
    "greater_equal": _COMPARE,
    "is_null": (("column",), ()),
    "not_null": (("column",), ()),
    "month_of": (("column",), ()),  # 'YYYY-MM' of a date/timestamp column
    "date_from_parts": (("year", "month"), ("day",)),  # each a column or a whole number
    "concat": (("columns",), ("sep",)),  # text of the columns joined by sep (default '-')
    "row_number": (("order_by",), ()),  # 1, 2, ... in the order of the named columns
    "multiply": (("column", "value"), ()),
    "coalesce": (("columns",), ("value",)),  # first non-null column, else value
    "copy": (("column",), ("scale",)),  # the column itself (times scale)
}
COMPARISONS = {
    "equal": "=",
    "not_equal": "<>",
    "less": "<",
    "less_equal": "<=",
    "greater": ">",
    "greater_equal": ">=",
}
# Filter tests: key in a ``where`` condition -> SQL operator (``in``/``not_in`` take a list).
WHERE_TESTS = {
    "equals": "=",
    "not_equals": "<>",
    "less": "<",
    "less_equal": "<=",
    "greater": ">",
    "greater_equal": ">=",
    "in": "IN",
    "not_in": "NOT IN",
    "is_null": "IS NULL",
}
REPEAT_INDEX = "_repeat_index"
URL_SCHEMES = ("postgresql://", "postgres://")
_EXAMPLE_DERIVED = (
    'e.g. derived = { latency_ms = { op = "days_between", start = "shipped", end = "delivered" } }'
)


def is_url(value: object) -> bool:
    """Whether ``value`` is a PostgreSQL URL (``postgresql://...`` or ``postgres://...``)."""
    return isinstance(value, str) and value.startswith(URL_SCHEMES)


@dataclass(frozen=True)
class Derived:
    """One derived column: an operation of :data:`DERIVED_OPS` and its arguments."""

    op: str
    args: dict[str, Any]

    def columns(self) -> list[str]:
        """The user's columns this operation reads."""
        names: list[str] = []
        for key, value in self.args.items():
            if key in ("start", "end", "column", "other"):
                names.append(value)
            elif key in ("columns", "order_by"):
                names.extend(value)
            elif key in ("year", "month", "day") and isinstance(value, str):
                names.append(value)
        return names


@dataclass(frozen=True)
class Condition:
    """One ``where`` condition: ``column`` ``test`` ``value`` (a key of :data:`WHERE_TESTS`)."""

    column: str
    test: str
    value: Any


@dataclass(frozen=True)
class Thresholds:
    """Service thresholds used by the panel and the reports.

    Attributes
    ----------
    apdex_t_ms : Apdex target time T; satisfied <= T, tolerating <= 4T.
    satisfied_cutoff : csat at or above this counts as "top-2-box" satisfied.
    default_resolution_sla_hours : resolution SLA for customers without expected_resolution_hours.
    slo_availability_pct, slo_latency_p95_ms : default service level objectives.
    exclude_planned : leave planned maintenance (``incidents.planned``) out of availability,
        downtime and error budgets.
    change_incident_window_hours : a failed change is linked to an incident on its component
        that starts within this many hours after it.
    """

    apdex_t_ms: float = 500.0
    satisfied_cutoff: int = 4
    default_resolution_sla_hours: float = 24.0
    slo_availability_pct: float = 99.9
    slo_latency_p95_ms: float = 800.0
    exclude_planned: bool = True
    change_incident_window_hours: float = 24.0


IDENTIFICATIONS = ("within", "pooled")


@dataclass(frozen=True)
class Models:
    """How the default models are fitted (``[models]``).

    Attributes
    ----------
    identification : ``"within"`` (effects within customers, Mundlak; the default) or
        ``"pooled"`` (effects compare customers with each other).
    """

    identification: str = "within"


def _models(raw: dict[str, Any], where: str) -> Models:
    unknown = set(raw) - {"identification"}
    if unknown:
        raise InputError(
            f"config {where}: unknown setting models.{sorted(unknown)[0]} (known: identification)"
        )
    value = raw.get("identification", "within")
    if value not in IDENTIFICATIONS:
        raise InputError(
            f"config {where}: models.identification must be one of "
            f"{', '.join(IDENTIFICATIONS)}, got {value!r}"
        )
    return Models(identification=value)


@dataclass(frozen=True)
class CalendarSettings:
    """How timestamps fall into months.

    Attributes
    ----------
    timezone : IANA zone (``Asia/Shanghai``) whose calendar months the panel, the reports and
        "the last complete month" use; timestamps stay UTC instants.
    """

    timezone: str = "UTC"


@dataclass(frozen=True)
class TableMapping:
    """How one canonical table is read from the user's data.

    Attributes
    ----------
    table : name of the user's table (DuckDB) or file stem (folder); defaults to the canonical name.
    file : explicit path of a Parquet/CSV file for this table.
    columns : canonical column name -> the user's column name.
    units : canonical column name -> unit of the user's column (converted to the canonical unit).
    constants : canonical column name -> a constant value for a column the user's table lacks.
    url : a PostgreSQL URL to read this table from (``table`` names the table there).
    derived : canonical column name -> a :class:`Derived` computed from the user's columns.
    where : conditions every row kept must meet.
    repeat : a column of counts: each row stands for that many events.
    distinct : keep each distinct mapped row once (e.g. customers from an order file).
    """

    table: str | None = None
    file: Path | None = None
    columns: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    url: str | None = None
    derived: dict[str, Derived] = field(default_factory=dict)
    where: tuple[Condition, ...] = ()
    repeat: str | None = None
    distinct: bool = False


@dataclass(frozen=True)
class Config:
    """The whole configuration; ``Config()`` holds the defaults."""

    source: Path = DEFAULT_DUCKDB
    tables: dict[str, TableMapping] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)
    models: Models = field(default_factory=Models)
    costs: dict[str, dict[str, float]] = field(default_factory=dict)
    per_complaint: float = DEFAULT_COMPLAINT_COST
    opex: dict[str, float] = field(default_factory=dict)
    currency: str = DEFAULT_CURRENCY
    path: Path | None = None
    source_url: str | None = None
    duckdb: dict[str, Any] = field(default_factory=dict)
    password_env: str | None = None
    calendar: CalendarSettings = field(default_factory=CalendarSettings)
    engine: str = "duckdb"
    spark: SparkSettings = field(default_factory=lambda: SparkSettings())


def _currency(value: Any, where: str) -> str:
    """``[costs] currency``: a short visible code or symbol such as ``EUR``, ``USD`` or ``€``."""
    if not isinstance(value, str) or not re.fullmatch(r"[^\s\d<>&\"'=+@-]{1,5}", value.strip()):
        raise InputError(
            f"config {where}: costs.currency must be a currency code such as 'EUR', got {value!r}"
        )
    return value.strip()


def _section(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise InputError(f"config {where}: [{key}] must be a table, got {value!r}")
    return value


def _amount(value: Any, key: str, where: str) -> float:
    """A money amount of the config: a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise InputError(f"config {where}: {key} must be a number >= 0, got {value!r}")
    return float(value)


def _thresholds(raw: dict[str, Any], where: str) -> Thresholds:
    known = {f.name: f.type for f in fields(Thresholds)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise InputError(
                f"config {where}: unknown setting thresholds.{key} (known: {', '.join(known)})"
            )
        if known[key] == "bool":
            if not isinstance(value, bool):
                raise InputError(
                    f"config {where}: thresholds.{key} must be true or false, got {value!r}"
                )
            values[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"config {where}: thresholds.{key} must be a number, got {value!r}")
        if value <= 0:
            raise InputError(f"config {where}: thresholds.{key} must be > 0, got {value!r}")
        values[key] = int(value) if known[key] == "int" else float(value)
    return Thresholds(**values)


def _calendar(raw: dict[str, Any], where: str) -> CalendarSettings:
    import zoneinfo

    from satmodel.hints import did_you_mean

    unknown = set(raw) - {"timezone"}
    if unknown:
        raise InputError(
            f"config {where}: unknown setting calendar.{sorted(unknown)[0]} (known: timezone)"
        )
    zone = raw.get("timezone", "UTC")
    if not isinstance(zone, str) or not zone:
        raise InputError(
            f'config {where}: calendar.timezone must be a zone name, got {zone!r} (e.g. "UTC")'
        )
    zones = zoneinfo.available_timezones() | {"UTC"}
    if zone not in zones:
        raise InputError(
            f"config {where}: calendar.timezone {zone!r}: not a known IANA time zone"
            + (did_you_mean(zone, zones) or ' (e.g. "Asia/Shanghai")')
        )
    return CalendarSettings(timezone=zone)


def _name(value: object, setting: str, where: str, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(
            f"config {where}: {setting} must be a column name, got {value!r} ({example})"
        )
    return value


def _literal_value(value: object, setting: str, where: str) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    raise InputError(
        f"config {where}: {setting} must be a number, boolean or string, got {value!r}"
    )


def _derived(table: str, column: str, raw: object, where: str) -> Derived:
    setting = f"tables.{table}.derived.{column}"
    if not isinstance(raw, dict):
        raise InputError(f"config {where}: {setting} must be a table ({_EXAMPLE_DERIVED})")
    raw = dict(raw)
    if "op" in raw:
        op = raw.pop("op")
    else:  # short form: { days_between = ["start", "end"], scale = 1 }
        named = [key for key in raw if key in DERIVED_OPS]
        if len(named) != 1:
            raise InputError(f"config {where}: {setting} needs op = ... ({_EXAMPLE_DERIVED})")
        op = named[0]
        values = raw.pop(op)
        values = values if isinstance(values, list) else [values]
        required, optional = DERIVED_OPS[op]
        if op in COMPARISONS:
            positional = ("column", "value")
        elif required in (("columns",), ("order_by",)):
            positional = ()
            raw.setdefault(required[0], values)
            values = []
        else:
            positional = required + optional
        if len(values) > len(positional):
            raise InputError(
                f"config {where}: {setting}: {op} takes at most {len(positional)} values "
                f"({', '.join(positional)}), got {len(values)}"
            )
        for key, value in zip(positional, values, strict=False):
            raw.setdefault(key, value)
    if op not in DERIVED_OPS:
        raise InputError(
            f"config {where}: {setting}: unknown op {op!r} (known: {', '.join(DERIVED_OPS)})"
        )
    required, optional = DERIVED_OPS[op]
    unknown = set(raw) - set(required) - set(optional)
    if unknown:
        raise InputError(
            f"config {where}: {setting}: unknown key {sorted(unknown)[0]!r} for op {op!r} "
            f"(known: {', '.join(required + optional)})"
        )
    absent = [key for key in required if key not in raw]
    if absent:
        raise InputError(
            f"config {where}: {setting}: op {op!r} needs {absent[0]} ({_EXAMPLE_DERIVED})"
        )
    if op in COMPARISONS and ("value" in raw) == ("other" in raw):
        raise InputError(
            f"config {where}: {setting}: op {op!r} needs exactly one of value (a literal) or "
            f'other (a column), e.g. {{ op = "{op}", column = "review_score", value = 2 }}'
        )
    args: dict[str, Any] = {}
    for key, value in raw.items():
        here = f"{setting}.{key}"
        if key in ("start", "end", "column", "other"):
            args[key] = _name(value, here, where, _EXAMPLE_DERIVED)
        elif key in ("columns", "order_by"):
            items = value if isinstance(value, list) else [value]
            if not items:
                raise InputError(f"config {where}: {here} must name at least one column")
            args[key] = tuple(_name(v, here, where, _EXAMPLE_DERIVED) for v in items)
        elif key in ("scale",) or (key == "value" and op == "multiply"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"config {where}: {here} must be a number, got {value!r}")
            args[key] = float(value)
        elif key in ("year", "month", "day"):
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise InputError(
                    f"config {where}: {here} must be a column name or a whole number, got {value!r}"
                )
            args[key] = value
        elif key == "sep":
            if not isinstance(value, str):
                raise InputError(f"config {where}: {here} must be a string, got {value!r}")
            args[key] = value
        else:  # value of a comparison or coalesce
            args[key] = _literal_value(value, here, where)
    return Derived(op=op, args=args)


def _conditions(table: str, raw: object, where: str) -> tuple[Condition, ...]:
    setting = f"tables.{table}.where"
    example = 'e.g. where = { column = "order_status", equals = "delivered" }'
    items = raw if isinstance(raw, list) else [raw]
    conditions = []
    for item in items:
        if not isinstance(item, dict) or "column" not in item:
            raise InputError(
                f"config {where}: {setting} must be a table (or a list of tables) with a "
                f"column and one test ({example})"
            )
        tests = [key for key in item if key != "column"]
        if len(tests) != 1 or tests[0] not in WHERE_TESTS:
            raise InputError(
                f"config {where}: {setting}: needs exactly one test of "
                f"{', '.join(WHERE_TESTS)} besides column, got {', '.join(tests) or 'none'} "
                f"({example})"
            )
        test = tests[0]
        column = _name(item["column"], f"{setting}.column", where, example)
        value = item[test]
        if test in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise InputError(f"config {where}: {setting}.{test} must be a non-empty list")
            value = tuple(_literal_value(v, f"{setting}.{test}", where) for v in value)
        elif test == "is_null":
            if not isinstance(value, bool):
                raise InputError(f"config {where}: {setting}.is_null must be true or false")
        else:
            value = _literal_value(value, f"{setting}.{test}", where)
        conditions.append(Condition(column=column, test=test, value=value))
    return tuple(conditions)


_CONSTANT_TYPES = {
    "bool": ((bool,), "true or false"),
    "float": ((int, float), "a number"),
    "int": ((int, float), "a number"),
    "timestamp": ((str,), 'a timestamp string, e.g. "2025-01-01T00:00:00Z"'),
}


def _check_constant(table: str, column: str, value: object, where: str) -> None:
    """A constant must have the kind of its canonical column (a string is no boolean)."""
    if column not in TABLES[table].column_names:
        return  # reported as not a column of the table
    kind = TABLES[table].column(column).kind
    types, wanted = _CONSTANT_TYPES.get(kind, ((bool, int, float, str), "a value"))
    if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
        raise InputError(
            f"config {where}: tables.{table}.constants.{column} must be {wanted} "
            f"({column} is {kind}), got {value!r}"
        )


def _table_mapping(name: str, raw: dict[str, Any], base: Path, where: str) -> TableMapping:
    known = {
        "table",
        "file",
        "url",
        "columns",
        "units",
        "constants",
        "derived",
        "where",
        "repeat",
        "distinct",
    }
    unknown = set(raw) - known
    if unknown:
        raise InputError(
            f"config {where}: unknown key tables.{name}.{sorted(unknown)[0]} (known: {', '.join(sorted(known))})"
        )
    for key in ("columns", "units", "constants", "derived"):
        if not isinstance(raw.get(key, {}), dict):
            raise InputError(
                f"config {where}: tables.{name}.{key} must be a table of column = value"
            )
    for key in ("columns", "units"):
        for column, value in raw.get(key, {}).items():
            if not isinstance(value, str):
                raise InputError(
                    f"config {where}: tables.{name}.{key}.{column} must be a string, got {value!r}"
                )
    canonical = TABLES[name].column_names
    for key in ("columns", "units", "constants", "derived"):
        for column in raw.get(key, {}):
            if column not in canonical:
                raise InputError(
                    f"config {where}: tables.{name}.{key}.{column} is not a column of {name} "
                    f"(canonical columns: {', '.join(canonical)})"
                )
    for column, value in raw.get("constants", {}).items():
        _check_constant(name, column, value, where)
    both = sorted(set(raw.get("constants", {})) & set(raw.get("derived", {})))
    if both:
        raise InputError(
            f"config {where}: tables.{name}.{both[0]} is both a constant and derived: keep one"
        )
    for key in ("table", "file", "url", "repeat"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key]):
            raise InputError(
                f"config {where}: tables.{name}.{key} must be a non-empty string, got {raw[key]!r}"
            )
    if "file" in raw and "url" in raw:
        raise InputError(f"config {where}: tables.{name}: give file or url, not both")
    url = raw.get("url")
    if url is not None and not is_url(url):
        raise InputError(
            f"config {where}: tables.{name}.url must start with postgresql://, got {redact(url)!r} "
            '(e.g. url = "postgresql://analyst@127.0.0.1:5432/ops")'
        )
    distinct = raw.get("distinct", False)
    if not isinstance(distinct, bool):
        raise InputError(
            f"config {where}: tables.{name}.distinct must be true or false, got {distinct!r}"
        )
    file_value = raw.get("file")
    return TableMapping(
        table=raw.get("table"),
        file=(base / file_value) if file_value else None,
        columns=dict(raw.get("columns", {})),
        units=dict(raw.get("units", {})),
        constants=dict(raw.get("constants", {})),
        url=url,
        derived={
            column: _derived(name, column, spec, where)
            for column, spec in raw.get("derived", {}).items()
        },
        where=_conditions(name, raw["where"], where) if "where" in raw else (),
        repeat=raw.get("repeat"),
        distinct=distinct,
    )


DUCKDB_SETTINGS = {
    "memory_limit": str,
    "temp_directory": str,
    "max_temp_directory_size": str,
    "threads": int,
    "preserve_insertion_order": bool,
}


def _duckdb_settings(raw: dict[str, Any], base: Path, where: str) -> dict[str, Any]:
    """The [duckdb] section: engine settings for large data (memory limit, spill folder)."""
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        kind = DUCKDB_SETTINGS.get(key)
        if kind is None:
            raise InputError(
                f"config {where}: unknown setting duckdb.{key} (known: {', '.join(DUCKDB_SETTINGS)})"
            )
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InputError(
                f"config {where}: duckdb.{key} must be a {kind.__name__}, got {value!r} "
                '(e.g. memory_limit = "2GB")'
            )
        settings[key] = str(base / value) if key == "temp_directory" else value
    return settings


def load_config(path: str | Path | None = None) -> Config:
    """Read a ``satmodel.toml`` file.

    Parameters
    ----------
    path : path of the file. ``None`` reads ``./satmodel.toml`` if it exists, else returns the
        defaults.

    Returns
    -------
    Config

    Raises
    ------
    InputError
        When the file is missing, is not valid TOML or holds an unknown or mistyped setting.
    """
    if path is None:
        candidate = Path(CONFIG_FILE_NAME)
        if not candidate.is_file():
            return Config()
        path = candidate
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"config {path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"config {path}: not valid TOML ({exc})") from None
    where = str(path)
    base = path.resolve().parent
    known_sections = {
        "source",
        "tables",
        "thresholds",
        "models",
        "costs",
        "duckdb",
        "opex",
        "calendar",
        "spark",
    }
    unknown = set(raw) - known_sections
    if unknown:
        raise InputError(
            f"config {where}: unknown section [{sorted(unknown)[0]}] (known: {', '.join(sorted(known_sections))})"
        )
    source_section = _section(raw, "source", where)
    unknown = set(source_section) - {"path", "password_env", "engine"}
    if unknown:
        raise InputError(
            f"config {where}: unknown setting source.{sorted(unknown)[0]} (known: engine, path, "
            'password_env), e.g. path = "data/ops.duckdb" or path = '
            '"postgresql://analyst@127.0.0.1:5432/ops"'
        )
    engine = source_section.get("engine", "duckdb")
    if engine not in ENGINES:
        raise InputError(
            f"config {where}: source.engine must be one of {', '.join(ENGINES)}, got {engine!r}"
        )
    password_env = source_section.get("password_env")
    if password_env is not None and (
        not isinstance(password_env, str)
        or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", password_env)
    ):
        raise InputError(
            f"config {where}: source.password_env must name an environment variable, got "
            f'{password_env!r} (e.g. password_env = "PGPASSWORD_OPS")'
        )
    source_path = source_section.get("path")
    if source_path is not None and (not isinstance(source_path, str) or not source_path):
        raise InputError(
            f"config {where}: source.path must be a path or a postgresql:// URL, got "
            f"{redact(source_path) if isinstance(source_path, str) else source_path!r}"
        )
    source_url = source_path if is_url(source_path) else None
    if source_url is not None:
        source_path = None
    tables: dict[str, TableMapping] = {}
    for name, mapping in _section(raw, "tables", where).items():
        if name not in TABLES:
            raise InputError(
                f"config {where}: [tables.{name}] is not a canonical table (known: {', '.join(TABLES)})"
            )
        if not isinstance(mapping, dict):
            raise InputError(f"config {where}: [tables.{name}] must be a table")
        tables[name] = _table_mapping(name, mapping, base, where)
    costs = dict(_section(raw, "costs", where))
    per_complaint = _amount(
        costs.pop("per_complaint", DEFAULT_COMPLAINT_COST), "costs.per_complaint", where
    )
    opex = {}
    for month, amount in _section(raw, "opex", where).items():
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
            raise InputError(
                f'config {where}: opex.{month}: expected a YYYY-MM month, e.g. "2025-03" = 120000'
            )
        opex[month] = _amount(amount, f"opex.{month}", where)
    currency = _currency(costs.pop("currency", DEFAULT_CURRENCY), where)
    duckdb_settings = _duckdb_settings(_section(raw, "duckdb", where), base, where)
    return Config(
        duckdb=duckdb_settings,
        source=(base / source_path) if source_path else DEFAULT_DUCKDB,
        tables=tables,
        thresholds=_thresholds(_section(raw, "thresholds", where), where),
        models=_models(_section(raw, "models", where), where),
        costs={k: dict(v) if isinstance(v, dict) else {"value": v} for k, v in costs.items()},
        per_complaint=per_complaint,
        opex=dict(sorted(opex.items())),
        currency=currency,
        path=path,
        source_url=source_url,
        password_env=password_env,
        calendar=_calendar(_section(raw, "calendar", where), where),
        engine=engine,
        spark=spark_settings(_section(raw, "spark", where), base, where),
    )
