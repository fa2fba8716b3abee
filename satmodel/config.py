"""Project configuration: ``satmodel.toml``.

The file is read with :mod:`tomllib`; nothing in it is ever evaluated as code. Every setting has
a default, so satmodel runs without a config file at all. Relative paths in the file are taken
relative to the folder that holds the file.

Example
-------
.. code-block:: toml

    [source]
    path = "warehouse/ops.duckdb"        # DuckDB file, or a folder of <table>.parquet / .csv

    [tables.requests]
    table = "api_log"                    # the user's table (or file stem) for this canonical table
    columns = { customer_id = "account", latency_ms = "duration_s" }
    units = { latency_ms = "s" }         # duration_s holds seconds: converted to ms
    constants = { ok = true }

    [thresholds]
    apdex_t_ms = 300
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from satmodel.errors import InputError
from satmodel.schema import TABLES

DEFAULT_DUCKDB = Path("data") / "satmodel.duckdb"
CONFIG_FILE_NAME = "satmodel.toml"

# Unit conversions into the canonical unit of a column: canonical value = source value * factor.
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "ms": {"ms": 1.0, "s": 1000.0, "us": 0.001, "min": 60_000.0},
    "hours": {"h": 1.0, "hours": 1.0, "min": 1 / 60, "s": 1 / 3600, "d": 24.0, "days": 24.0},
    "pct": {"pct": 1.0, "percent": 1.0, "fraction": 100.0},
}


@dataclass(frozen=True)
class Thresholds:
    """Service thresholds used by the panel and the reports.

    Attributes
    ----------
    apdex_t_ms : Apdex target time T; satisfied <= T, tolerating <= 4T.
    satisfied_cutoff : csat at or above this counts as "top-2-box" satisfied.
    default_resolution_sla_hours : resolution SLA for customers without expected_resolution_hours.
    slo_availability_pct, slo_latency_p95_ms : default service level objectives.
    """

    apdex_t_ms: float = 500.0
    satisfied_cutoff: int = 4
    default_resolution_sla_hours: float = 24.0
    slo_availability_pct: float = 99.9
    slo_latency_p95_ms: float = 800.0


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
    """

    table: str | None = None
    file: Path | None = None
    columns: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """The whole configuration; ``Config()`` holds the defaults."""

    source: Path = DEFAULT_DUCKDB
    tables: dict[str, TableMapping] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)
    costs: dict[str, dict[str, float]] = field(default_factory=dict)
    path: Path | None = None


def _section(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise InputError(f"config {where}: [{key}] must be a table, got {value!r}")
    return value


def _thresholds(raw: dict[str, Any], where: str) -> Thresholds:
    known = {f.name: f.type for f in fields(Thresholds)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise InputError(
                f"config {where}: unknown setting thresholds.{key} (known: {', '.join(known)})"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"config {where}: thresholds.{key} must be a number, got {value!r}")
        if value <= 0:
            raise InputError(f"config {where}: thresholds.{key} must be > 0, got {value!r}")
        values[key] = int(value) if known[key] == "int" else float(value)
    return Thresholds(**values)


def _table_mapping(name: str, raw: dict[str, Any], base: Path, where: str) -> TableMapping:
    known = {"table", "file", "columns", "units", "constants"}
    unknown = set(raw) - known
    if unknown:
        raise InputError(
            f"config {where}: unknown key tables.{name}.{sorted(unknown)[0]} (known: {', '.join(sorted(known))})"
        )
    for key in ("columns", "units", "constants"):
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
    file_value = raw.get("file")
    return TableMapping(
        table=raw.get("table"),
        file=(base / file_value) if file_value else None,
        columns=dict(raw.get("columns", {})),
        units=dict(raw.get("units", {})),
        constants=dict(raw.get("constants", {})),
    )


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
    known_sections = {"source", "tables", "thresholds", "costs"}
    unknown = set(raw) - known_sections
    if unknown:
        raise InputError(
            f"config {where}: unknown section [{sorted(unknown)[0]}] (known: {', '.join(sorted(known_sections))})"
        )
    source_section = _section(raw, "source", where)
    source_path = source_section.get("path")
    tables: dict[str, TableMapping] = {}
    for name, mapping in _section(raw, "tables", where).items():
        if name not in TABLES:
            raise InputError(
                f"config {where}: [tables.{name}] is not a canonical table (known: {', '.join(TABLES)})"
            )
        if not isinstance(mapping, dict):
            raise InputError(f"config {where}: [tables.{name}] must be a table")
        tables[name] = _table_mapping(name, mapping, base, where)
    costs = _section(raw, "costs", where)
    return Config(
        source=(base / source_path) if source_path else DEFAULT_DUCKDB,
        tables=tables,
        thresholds=_thresholds(_section(raw, "thresholds", where), where),
        costs={k: dict(v) if isinstance(v, dict) else {"value": v} for k, v in costs.items()},
        path=path,
    )
