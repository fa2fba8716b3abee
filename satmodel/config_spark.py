"""The ``[spark]`` section of ``satmodel.toml``: where the Spark engine runs and reads."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from satmodel.errors import InputError

__all__ = ["ENGINES", "SPARK_FORMATS", "SparkSettings", "has_scheme", "spark_settings"]


@dataclass(frozen=True)
class SparkSettings:
    """The ``[spark]`` section: where the Spark engine runs and where it reads the tables.

    Attributes
    ----------
    master : Spark master URL (``local[2]``, ``local-cluster[2,1,1024]``, ``spark://host:7077``,
        ``yarn``); None keeps an active session's or spark-submit's.
    remote : Spark Connect URL (``sc://host:15002``) instead of a master.
    executor_memory, driver_memory : e.g. ``"4g"`` (driver memory only when this process
        starts the JVM).
    shuffle_partitions : ``spark.sql.shuffle.partitions``.
    root : folder or URI (``s3a://lake/ops``, ``hdfs://...``) holding one ``<table>`` folder
        (or ``<table>.parquet`` file) per canonical table; default ``[source] path``.
    format : ``parquet`` or ``delta`` for the folders under ``root`` and table files.
    database : catalog (Hive/Unity) database whose tables are the canonical ones.
    jdbc_url : ``jdbc:...`` URL whose tables are the canonical ones (password from
        ``[source] password_env``).
    rejected : folder or URI for the quarantined rows (default ``<root>/rejected``).
    """

    master: str | None = None
    remote: str | None = None
    executor_memory: str | None = None
    driver_memory: str | None = None
    shuffle_partitions: int | None = None
    root: str | None = None
    format: str = "parquet"
    database: str | None = None
    jdbc_url: str | None = None
    rejected: str | None = None


SPARK_FORMATS = ("parquet", "delta")
ENGINES = ("duckdb", "spark")


def has_scheme(value: str) -> bool:
    """Whether a location is a URI (``s3a://...``, ``hdfs://...``), not a local path."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value) is not None


def spark_settings(raw: dict[str, Any], base: Path, where: str) -> SparkSettings:
    """The [spark] section; relative local paths are taken from the config's folder."""
    known = {f.name for f in fields(SparkSettings)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise InputError(
                f"config {where}: unknown setting spark.{key} (known: {', '.join(sorted(known))})"
            )
        if key == "shuffle_partitions":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(
                    f"config {where}: spark.shuffle_partitions must be a whole number >= 1, "
                    f"got {value!r}"
                )
        elif not isinstance(value, str) or not value:
            raise InputError(
                f"config {where}: spark.{key} must be a non-empty string, got {value!r} "
                '(e.g. master = "spark://host:7077", executor_memory = "4g")'
            )
        if key in ("root", "rejected") and not has_scheme(value):
            value = str(base / value)
        values[key] = value
    if values.get("format", "parquet") not in SPARK_FORMATS:
        raise InputError(
            f"config {where}: spark.format must be one of {', '.join(SPARK_FORMATS)}, "
            f"got {values['format']!r}"
        )
    if "master" in values and "remote" in values:
        raise InputError(f"config {where}: spark: give master or remote, not both")
    if "remote" in values and not values["remote"].startswith("sc://"):
        raise InputError(
            f"config {where}: spark.remote must be a Spark Connect URL sc://host:port, "
            f"got {values['remote']!r}"
        )
    return SparkSettings(**values)
