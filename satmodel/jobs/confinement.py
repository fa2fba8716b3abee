"""Path confinement: the data and output paths a run may use.

With confinement on (``--confine-paths`` or ``SATMODEL_CONFINE_PATHS=1``), ``--data`` (and the
files a ``satmodel.toml`` names) must lie inside the project's ``data/`` and ``--out`` inside
its ``reports/``, after symbolic links are resolved; ``--allow-outside`` or
``SATMODEL_ALLOW_PATHS=1`` lifts it.
"""

from __future__ import annotations

import os
from pathlib import Path

from satmodel.errors import InputError

ALLOW_PATHS_ENV = "SATMODEL_ALLOW_PATHS"
CONFINE_PATHS_ENV = "SATMODEL_CONFINE_PATHS"
_TRUE = ("1", "true", "yes")


def project_folders(base: str | os.PathLike | None = None) -> dict[str, Path]:
    """The folders paths are confined to: ``data`` and ``reports`` under ``base`` (default cwd)."""
    root = Path(base) if base is not None else Path.cwd()
    return {"data": root / "data", "out": root / "reports"}


def confined_by_env() -> bool:
    """True when ``SATMODEL_CONFINE_PATHS=1`` confines the command line to data/ and reports/."""
    return os.environ.get(CONFINE_PATHS_ENV, "").strip().lower() in _TRUE


def allowed_outside_by_env() -> bool:
    """True when ``SATMODEL_ALLOW_PATHS=1`` lifts the path confinement (as ``--allow-outside``)."""
    return os.environ.get(ALLOW_PATHS_ENV, "").strip().lower() in _TRUE


def confine_path(path: str | os.PathLike, roots: list[Path], flag: str) -> Path:
    """``path`` resolved (symbolic links followed), when it lies inside one of ``roots``.

    Raises
    ------
    InputError
        When it lies outside every root (naming them and how to allow it).
    """
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        top = root.expanduser().resolve()
        if resolved == top or resolved.is_relative_to(top):
            return resolved
    names = " or ".join(str(r) for r in roots)
    raise InputError(
        f"{flag} {path}: outside the project's folders ({names}); pass --allow-outside "
        f"(or set {ALLOW_PATHS_ENV}=1) to use it"
    )


def confine(
    data: str | os.PathLike | None, out: str | os.PathLike, allow_outside: bool
) -> list[Path] | None:
    """Refuse ``data`` and ``out`` outside the project's folders unless ``allow_outside``.

    Returns
    -------
    list of Path or None
        The folders every path the source names must lie in (for
        :func:`satmodel.sources.open_source`'s ``allowed_roots``: config table names, files
        inside a folder, symbolic links, temp directories), or None when not confined.
        Database URLs are not paths and are allowed.

    Raises
    ------
    InputError
    """
    if allow_outside:
        return None
    folders = project_folders()
    _confine_data(data, [folders["data"]])
    confine_path(out, [folders["out"]], "--out")
    return [folders["data"]]


def _confine_data(data: str | os.PathLike | None, roots: list[Path]) -> None:
    """Confine a user-given data source, and the files a ``.toml`` config names, to ``roots``
    (so the message names the option); open_source checks the rest under the same roots.

    ``data=None`` (the project's own ``satmodel.toml`` or default database) is trusted.
    """
    from satmodel.config import is_url, load_config

    if data in (None, "") or is_url(str(data)):
        return
    resolved = confine_path(data, roots, "--data")
    if Path(data).suffix != ".toml" or not resolved.is_file():
        return
    config = load_config(resolved)
    if config.source_url is None and config.source is not None:
        confine_path(config.source, roots, f"--data {data}: source.path")
    for name, mapping in config.tables.items():
        file = getattr(mapping, "file", None)
        if file is not None and not is_url(str(file)):
            confine_path(file, roots, f"--data {data}: tables.{name}.file")
