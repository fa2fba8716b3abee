"""satmodel.resources: the package's own files, and the data a notebook reads by default."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from satmodel import resources
from satmodel.errors import SatmodelError

ROOT = Path(__file__).resolve().parents[1]


def test_notebooks_are_the_single_copy_in_the_top_level_folder():
    assert resources.notebook_path("04_monthly_report.ipynb") == (
        ROOT / "notebooks" / "04_monthly_report.ipynb"
    )
    case = resources.notebook_path("case_studies/olist_delivery.ipynb")
    assert case == ROOT / "notebooks" / "case_studies" / "olist_delivery.ipynb"
    assert case.is_file()


def test_example_config_and_template():
    assert resources.example_config("olist") == ROOT / "examples" / "olist" / "satmodel.toml"
    assert resources.example_config("dot_baggage").is_file()
    template = resources.template_path("satmodel_report")
    assert template == ROOT / "satmodel" / "templates" / "satmodel_report"
    assert (template / "index.html.j2").is_file()


def test_a_missing_notebook_names_the_path_looked_for_and_what_exists():
    with pytest.raises(SatmodelError) as caught:
        resources.notebook_path("05_nope.ipynb")
    message = str(caught.value)
    assert str(ROOT / "notebooks" / "05_nope.ipynb") in message
    assert "04_monthly_report.ipynb" in message
    assert "case_studies/olist_delivery.ipynb" in message


def test_a_missing_example_lists_the_examples():
    with pytest.raises(SatmodelError, match=r"example config .*nope.*olist/satmodel\.toml"):
        resources.example_config("nope")


def test_a_zipped_package_is_refused_with_a_reason(monkeypatch, tmp_path):
    archive = tmp_path / "satmodel.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("satmodel/__init__.py", "")
    monkeypatch.setattr(resources, "files", lambda _: zipfile.Path(archive, "satmodel/"))
    with pytest.raises(SatmodelError, match="imported from an archive"):
        resources.notebook_path("04_monthly_report.ipynb")


def _project(root: Path, name: str = "satmodel") -> Path:
    (root / "notebooks" / "case_studies").mkdir(parents=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n', encoding="utf-8")
    return root


def test_default_source_walks_up_to_the_project_data(tmp_path):
    root = _project(tmp_path / "proj")
    (root / "data").mkdir()
    (root / "data" / "satmodel.duckdb").write_bytes(b"")
    expected = root / "data" / "satmodel.duckdb"
    assert resources.default_source(root / "notebooks" / "case_studies") == expected
    assert resources.default_source(root / "notebooks") == expected
    assert resources.default_source(root) == expected


def test_default_source_finds_the_project_root_before_the_data_exists(tmp_path):
    root = _project(tmp_path / "proj")
    assert resources.default_source(root / "notebooks") == root / "data" / "satmodel.duckdb"


def test_default_source_finds_the_data_without_a_pyproject(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "satmodel.duckdb").write_bytes(b"")
    (tmp_path / "work").mkdir()
    assert resources.default_source(tmp_path / "work") == tmp_path / "data" / "satmodel.duckdb"


def test_default_source_prefers_the_nearest_satmodel_toml(tmp_path):
    root = _project(tmp_path / "proj")
    (root / "notebooks" / "satmodel.toml").write_text("", encoding="utf-8")
    assert resources.default_source(root / "notebooks") == root / "notebooks" / "satmodel.toml"


def test_another_projects_pyproject_is_not_a_root(tmp_path, monkeypatch):
    other = _project(tmp_path / "other", name="not-satmodel")
    (other / "pyproject.toml").write_text("not toml [", encoding="utf-8")
    (other / "notebooks" / "pyproject.toml").write_text(
        '[project]\nname = "other"\n', encoding="utf-8"
    )
    start = other / "notebooks"
    expected = start / "data" / "satmodel.duckdb"
    assert resources.default_source(start) == expected
    monkeypatch.chdir(start)
    assert resources.default_source() == expected
