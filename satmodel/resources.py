"""Where satmodel's own files are: notebooks, example configs, HTML templates, the default data.

The notebooks, the example configs and the templates are package data of ``satmodel`` (in a
source checkout ``satmodel/notebooks`` and ``satmodel/examples`` are symlinks to the top-level
folders), so one lookup serves a checkout, an editable install and an installed wheel.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

from satmodel.config import CONFIG_FILE_NAME, DEFAULT_DUCKDB
from satmodel.errors import SatmodelError

__all__ = ["default_source", "example_config", "notebook_path", "package_file", "template_path"]

PACKAGE = "satmodel"


def package_file(*parts: str) -> Path:
    """The path of ``satmodel/<parts...>`` where satmodel is installed (it may not exist).

    Raises
    ------
    SatmodelError
        When satmodel is imported from a zip archive: notebooks must be real files to run.
    """
    resource = files(PACKAGE).joinpath(*parts)
    if not isinstance(resource, Path):
        raise SatmodelError(
            f"satmodel/{'/'.join(parts)}: satmodel is imported from an archive "
            f"({resource}); install it as files (pip install satmodel)"
        )
    return resource.resolve()


def _existing(path: Path, what: str, listing: str) -> Path:
    if path.exists():
        return path
    folder = path.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    known = sorted(p.relative_to(folder).as_posix() for p in folder.glob(listing))
    raise SatmodelError(
        f"{what} {path}: not found in the installed satmodel package "
        f"(found in {folder}: {', '.join(known) or 'nothing'})"
    )


def notebook_path(name: str) -> Path:
    """A notebook shipped with satmodel, e.g. ``04_monthly_report.ipynb`` or
    ``case_studies/olist_delivery.ipynb``.

    Raises
    ------
    SatmodelError
        When the package holds no such notebook (the message lists the ones it holds).
    """
    return _existing(package_file("notebooks", *name.split("/")), "notebook", "**/*.ipynb")


def example_config(name: str) -> Path:
    """The ``satmodel.toml`` of an example shipped with satmodel (``olist``, ``dot_baggage``).

    Raises
    ------
    SatmodelError
        When the package holds no such example.
    """
    path = package_file("examples", name, CONFIG_FILE_NAME)
    return _existing(path, "example config", f"*/{CONFIG_FILE_NAME}")


def template_path(name: str) -> Path:
    """A folder of nbconvert templates shipped with satmodel, e.g. ``satmodel_report``.

    Raises
    ------
    SatmodelError
        When the package holds no such template.
    """
    return _existing(package_file("templates", name), "template", "*")


def _is_satmodel_project(folder: Path) -> bool:
    try:
        project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return project.get("project", {}).get("name") == PACKAGE


def default_source(start: str | Path | None = None) -> Path:
    """The data a notebook reads when its ``data`` parameter is empty.

    Walks up from ``start`` (default: the working directory; JupyterLab starts kernels in the
    notebook's folder) to the first folder that holds a ``satmodel.toml``, a
    ``data/satmodel.duckdb``, or a ``pyproject.toml`` naming satmodel (the project root), and
    returns that config file or ``<folder>/data/satmodel.duckdb``. Without any such folder it
    returns ``data/satmodel.duckdb`` under ``start``.

    Returns
    -------
    Path
        An absolute path; it may not exist (then opening it says which path was looked for).
    """
    here = Path(start if start is not None else Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE_NAME).is_file():
            return folder / CONFIG_FILE_NAME
        if (folder / DEFAULT_DUCKDB).is_file() or _is_satmodel_project(folder):
            return folder / DEFAULT_DUCKDB
    return here / DEFAULT_DUCKDB
