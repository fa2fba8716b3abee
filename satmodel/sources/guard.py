"""What a source may touch: path confinement and the locked DuckDB connection.

A DuckDB file can hold views that read any local file (``read_text('/proc/self/environ')``),
and a config or a folder can name paths anywhere (``table = "../../etc/x"``, a symbolic link
inside the folder). Two defences, both applied by :func:`satmodel.sources.open_source`:

- with ``allowed_roots``, every path a config or folder names is resolved (links followed) and
  refused unless it lies inside one of the roots (:func:`confine`);
- once the tables are registered, the connection may read only the files the source is made
  of: ``enable_external_access`` is switched off (with those files and the spill folder as the
  only exceptions) and the configuration is locked (:func:`lock_down`). A view that needs any
  other file then fails when it is probed, as an :class:`InputError` naming the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb

from satmodel.errors import InputError
from satmodel.sources.core import Source, first_error_line, literal, quote


def is_within(path: str | Path, roots: Sequence[str | Path]) -> bool:
    """Whether ``path``, with symbolic links followed, lies inside one of ``roots``."""
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        top = Path(root).expanduser().resolve()
        if resolved == top or resolved.is_relative_to(top):
            return True
    return False


def confine(path: str | Path, roots: Sequence[str | Path] | None, setting: str) -> None:
    """Refuse ``path`` when ``roots`` are given and it lies outside all of them.

    Parameters
    ----------
    path : the path named by ``setting``.
    roots : the allowed folders; None allows every path.
    setting : the config key or origin named in the message (``tables.customers.table``).

    Raises
    ------
    InputError
        One line naming the setting, the path and where it leads.
    """
    if roots is None or is_within(path, roots):
        return
    target = Path(path).expanduser().resolve()
    shown = "" if str(target) == str(path) else f" (resolves to {target})"
    raise InputError(
        f"{setting}: path {path}{shown} is outside the allowed folders "
        f"({', '.join(str(r) for r in roots)})"
    )


def _list(values: Iterable[str]) -> str:
    return "[" + ", ".join(literal(v) for v in dict.fromkeys(values)) + "]"


def lock_down(source: Source, files: Iterable[Path], folders: Iterable[Path]) -> None:
    """Let ``source.con`` read only ``files`` and ``folders``, then lock its configuration.

    The ibis backend is created first (it sets the session time zone, which the lock forbids
    later), then every ``raw`` view is probed so that one needing any other file is refused now.

    Raises
    ------
    InputError
        Naming the table whose view reads files outside the source.
    """
    con = source.con
    source.ibis()
    paths = [str(Path(p).absolute()) for p in files]
    paths += [p + ".wal" for p in paths if p.endswith(".duckdb")]
    directories = [str(Path(d).absolute()) + "/" for d in folders]
    temp = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
    if temp:
        directories.append(str(Path(temp).absolute()) + "/")
    con.execute(f"SET allowed_paths = {_list(paths)}")
    con.execute(f"SET allowed_directories = {_list(directories)}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    for table in source.tables:
        try:
            con.execute(f"SELECT * FROM raw.{quote(table)} LIMIT 0").fetchall()
        except duckdb.PermissionException as exc:
            raise InputError(
                f"{table}: refused: its definition reads files outside the source "
                f"({first_error_line(exc)})"
            ) from None
