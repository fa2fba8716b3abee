"""Tests of the notebooks: stored thin and without outputs; every notebook runs on demo data.

``demo_data`` builds one small demo (40 customers, 6 months) once per test session and
``demo_report`` its monthly report; tests/test_report_browser.py and tests/test_proposal.py reuse
them.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

from satmodel.calendar import add_months, current_month
from satmodel.demo import default_start

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
REPORT_NOTEBOOK = ROOT / "notebooks" / "04_monthly_report.ipynb"
# the demo's months end at the last complete calendar month, so its report is not stale
DEMO = {"customers": 40, "months": 6, "seed": 7, "start_month": default_start(6)}
LAST_MONTH = add_months(current_month(), -1)

_CACHE: dict[str, Path] = {}


def demo_data(tmp_path_factory) -> Path:
    """The small demo's DuckDB file, generated once per session."""
    if "data" in _CACHE:
        return _CACHE["data"]
    from satmodel.demo import generate_demo

    base = tmp_path_factory.mktemp("demo_data")
    generate_demo(base / "demo", duckdb_path=base / "demo.duckdb", progress=False, **DEMO)
    _CACHE["data"] = base / "demo.duckdb"
    return _CACHE["data"]


def demo_report(tmp_path_factory) -> Path:
    """The report folder of the small demo's last month, built once per session."""
    if "report" in _CACHE:
        return _CACHE["report"]
    from satmodel.jobs import ReportRequest, run_report

    data = demo_data(tmp_path_factory)
    out = tmp_path_factory.mktemp("demo_report") / "reports"
    _CACHE["report"] = run_report(ReportRequest(data=data, out=out, progress=False))
    return _CACHE["report"]


def run_notebook_on_demo(tmp_path_factory, name: str, **parameters) -> nbformat.NotebookNode:
    """Execute notebooks/<name> with papermill on the small demo; return the executed notebook."""
    import papermill

    from satmodel.jobs.kernel import ipc_kernel_manager

    data = demo_data(tmp_path_factory)
    out = tmp_path_factory.mktemp(name.split(".")[0])
    with ipc_kernel_manager() as manager_class:  # no TCP kernel warning
        papermill.execute_notebook(
            str(ROOT / "notebooks" / name),
            str(out / name),
            parameters={"data": str(data), **parameters},
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            cwd=str(out),
            kernel_manager_class=manager_class,
        )
    return nbformat.read(out / name, as_version=4)


def outputs_of(nb, output_type: str) -> list:
    return [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == output_type]


def images_of(nb) -> int:
    """Number of PNG figures a notebook shows (displayed or as a cell's value)."""
    shown = outputs_of(nb, "display_data") + outputs_of(nb, "execute_result")
    return sum("image/png" in o.data for o in shown)


def code_without_magics(source: str) -> str:
    """Cell source with IPython magics and shell lines blanked, so ast can parse it."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"
        assert "papermill" not in cell.metadata
    assert "papermill" not in nb.metadata


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_defines_no_function_or_class(path):
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tree = ast.parse(code_without_magics(cell.source))
        defined = [
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        lambdas = [node for node in ast.walk(tree) if isinstance(node, ast.Lambda)]
        assert not defined and not lambdas, (
            f"{path.name} cell {index} defines {defined or 'a lambda'}: logic belongs in satmodel"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_typed_commented_parameters_cell_first(path):
    import papermill

    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    assert code[0] is tagged[0], f"{path.name}: the parameters cell must be the first code cell"
    assignments = [
        line
        for line in tagged[0].source.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert assignments
    pattern = re.compile(r"^\w+: [\w\[\], ]+ = [^=#]+  # [^=]+$")
    for line in assignments:
        assert pattern.match(line), (
            f"{path.name}: parameter line needs a type and a comment: {line!r}"
        )
    inferred = papermill.inspect_notebook(str(path))
    assert len(inferred) == len(assignments), "papermill must be able to parse every parameter"
    assert all(p["help"] for p in inferred.values())


def test_report_notebook_parameters():
    import papermill

    inferred = papermill.inspect_notebook(str(REPORT_NOTEBOOK))
    assert {"month", "data", "out_dir"} <= set(inferred)
    assert inferred["month"]["inferred_type_name"] == "str"
    assert inferred["month"]["default"] == '""'  # empty: the last complete month


@pytest.mark.parametrize(
    ("costs", "costs_figure", "recurrence_figure", "planned_figure"),
    [
        ("costs", None, None, None),
        ("costs", "bars", None, "planned"),
        ("costs", None, "timeline", None),
        (None, "bars", "timeline", None),
    ],
)
def test_component_figures_cell_never_displays_none(
    costs, costs_figure, recurrence_figure, planned_figure
):
    """The components section's figure cell shows the figures there are and no "None" for the
    ones a plot function leaves out (display(None) prints "None" under the chart)."""
    from types import SimpleNamespace

    nb = nbformat.read(REPORT_NOTEBOOK, as_version=4)
    (cell,) = [c for c in nb.cells if c.get("id") == "c15-components-2"]
    shown = []
    namespace = {
        "costs": costs,
        "report": SimpleNamespace(panel="panel", source="source"),
        "display": shown.append,
        "component_report": SimpleNamespace(
            plot_costs=lambda result: costs_figure,
            plot_recurrence=lambda source, result: recurrence_figure,
            plot_planned=lambda panel: planned_figure,
        ),
    }
    exec(compile(cell.source, "c15-components-2", "exec"), namespace)
    drawn = [costs_figure, recurrence_figure] if costs is not None else []
    assert shown == [f for f in [*drawn, planned_figure] if f is not None]


def test_report_contents_list_every_section_in_order():
    """The table of contents on the first screen names each section, linked to its heading."""
    nb = nbformat.read(REPORT_NOTEBOOK, as_version=4)
    headings = [
        line[3:].strip()
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("## ")
    ]
    toc = next(cell for cell in nb.cells if cell.get("id") == "toc").source
    listed = re.findall(r"^\d+\. \[(.+)\]\(#(.+)\)$", toc, flags=re.MULTILINE)
    sections = [h for h in headings if h != "Machine-readable summary"]
    assert [title for title, _ in listed] == sections
    assert all(anchor == title.replace(" ", "-") for title, anchor in listed)


def test_report_notebook_calls_satmodel_only():
    nb = nbformat.read(REPORT_NOTEBOOK, as_version=4)
    imported = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(code_without_magics(cell.source))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
    assert imported <= {"satmodel", "IPython"}, imported


@pytest.mark.slow
def test_monthly_report_runs_on_demo_data(tmp_path_factory):
    folder = demo_report(tmp_path_factory)
    assert folder.name == LAST_MONTH  # the last complete month of the demo data
    summary = json.loads((folder / "summary.json").read_text())
    assert list(summary)[:4] == ["schema_version", "month", "data_window", "kpis"]
    assert summary["month"] == LAST_MONTH
    assert summary["data_window"] == [DEMO["start_month"], LAST_MONTH]
    assert 1 <= summary["kpis"]["csat_mean"]["value"] <= 5
    assert 0 <= summary["kpis"]["csat_top2_pct"]["value"] <= 100
    assert summary["kpis"]["complaint_rate_per_1k"]["value"] >= 0
    assert summary["kpis"]["responses"]["value"] > 0
    segments = [row["segment"] for row in summary["service_levels"]]
    assert segments[-1] == "All customers" and len(segments) >= 2
    assert summary["service_levels"][-1]["customers"] == DEMO["customers"]
    assert set(summary["drivers"]) == {"csat", "top2", "complaints"}
    assert list(summary)[-6:] == [
        "driver_importance",
        "driver_drift",
        "burn_rate",
        "operations",
        "diagnostics",
        "actions",
    ]
    # the executive summary's "what to do next", for a scheduler too
    assert all(
        {"action", "customers", "csat_gain", "worth_acting"} <= set(a) for a in summary["actions"]
    )
    assert all(a["worth_acting"] == (a["csat_gain"] > 0) for a in summary["actions"])
    assert summary["burn_rate"][-1]["segment"] == "All customers"
    assert summary["burn_rate"][-1]["elapsed_pct"] == 100
    measures = [row["kpi"] for row in summary["operations"]["measures"]]
    assert measures[:3] == ["changes_per_week", "change_failure_pct", "mttr_hours"]
    assert summary["driver_importance"]["drivers"][0]["rank"] == 1
    assert {"model", "term", "z", "p_value", "flagged"} <= set(summary["driver_drift"]["params"][0])
    assert summary["diagnostics"]["checks"] > 10
    segments_now = {row["segment"] for row in summary["service_levels"][:-1]}
    assert {row["segment"] for row in summary["targets"]["segments"]} == segments_now
    assert {"required", "ci_low", "ci_high", "feasible"} <= set(summary["targets"]["segments"][0])
    assert {"at_risk", "by_segment"} <= set(summary["gaps"])
    for model in summary["drivers"].values():
        assert model["params"] and {"term", "estimate", "ci_low", "ci_high", "p_value"} <= set(
            model["params"][0]
        )
    assert summary["data_quality"]["rows_read"] > 0
    assert set(summary["targets"]) >= {"slo_availability_pct", "slo_latency_p95_ms"}

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    assert manifest["parameters"]["month"] == LAST_MONTH
    assert list(manifest["inputs"]) == [str(_CACHE["data"].resolve())]

    html = (folder / "report.html").read_text()
    for heading in (
        "Headline: satisfaction and complaints",
        "Service levels and error budget",
        "Customers whose expectations were missed",
        "Data quality",
        "What drives satisfaction and complaints",
        "Error budget burn rate",
        "Operations scorecard",
        "Which drivers matter most",
        "Did the effects change this month?",
        "Response curves",
        "Targets: what service each segment",
        "Expectation gaps and customers at risk",
        "Appendix: model diagnostics",
    ):
        assert heading in html
    # trends, service levels, burn, operations, drivers, importance, response curves
    assert html.count("data:image/png;base64,") >= 7
    assert "&lt;Figure size" not in html  # figures rendered, not their repr
    assert ">None<" not in html  # no display(None) of a figure left out
    assert "reporting." not in html  # no code
    assert "Traceback" not in html

    executed = nbformat.read(folder / "report.ipynb", as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []


@pytest.mark.slow
def test_summary_is_identical_on_rerun(tmp_path_factory):
    from satmodel.jobs import ReportRequest, run_report

    folder = demo_report(tmp_path_factory)
    before = (folder / "summary.json").read_bytes()
    again = run_report(
        ReportRequest(
            month=LAST_MONTH,
            data=_CACHE["data"],
            out=folder.parent,
            progress=False,
            parameters={"fit_models": True},
        )
    )
    assert again == folder
    assert (folder / "summary.json").read_bytes() == before


@pytest.mark.slow
def test_explore_notebook_runs_on_demo_data(tmp_path_factory):
    nb = run_notebook_on_demo(tmp_path_factory, "01_explore.ipynb", bins=5)
    assert outputs_of(nb, "error") == []
    assert images_of(nb) >= 3  # distributions and two relationship charts
    html = "".join(o.data.get("text/html", "") for o in outputs_of(nb, "display_data"))
    html += "".join(o.data.get("text/html", "") for o in outputs_of(nb, "execute_result"))
    assert "Rows read and quarantined per table" in html
    assert "Rank correlation" in html


@pytest.mark.slow
def test_drivers_notebook_runs_on_demo_data(tmp_path_factory):
    nb = run_notebook_on_demo(tmp_path_factory, "02_drivers.ipynb", n_splits=2, importance_boot=20)
    assert outputs_of(nb, "error") == []
    html = "".join(
        o.data.get("text/html", "")
        for o in outputs_of(nb, "display_data") + outputs_of(nb, "execute_result")
    )
    for caption in ("Diagnostics", "Mean out-of-sample error", "Driver importance for CSAT"):
        assert caption in html
    assert "naive baseline" in html and "gradient boosting" in html
    assert images_of(nb) >= 5  # two forest plots, CV, importance, response curves


@pytest.mark.slow
def test_proposal_notebook_runs_interactively_on_demo_data(tmp_path_factory):
    nb = run_notebook_on_demo(
        tmp_path_factory,
        "03_expectation_to_support.ipynb",
        segment="smb",
        csat_target=4.0,
        n_sim=100,
    )
    assert outputs_of(nb, "error") == []
    page = "".join(
        o.data.get("text/html", "")
        for o in outputs_of(nb, "display_data") + outputs_of(nb, "execute_result")
    )
    assert "Our recommendation" in page and "SMB customers" in page


# --------------------------------------------------------------------------------------------
# Opened as JupyterLab opens them: the notebook's own kernel, the working directory of the
# kernel anywhere in the project, the data parameter left empty.

# Only the costly knobs are lowered; data (and month) keep their empty defaults.
QUICK = {
    "01_explore.ipynb": {},
    "02_drivers.ipynb": {"n_splits": 2, "importance_boot": 20, "include_boosting": False},
    "03_expectation_to_support.ipynb": {"n_sim": 100},
    "04_monthly_report.ipynb": {"importance_boot": 20},
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_asks_for_the_project_kernel(path):
    assert nbformat.read(path, as_version=4).metadata.kernelspec.name == "satmodel"


@pytest.fixture(scope="module")
def lab_project(tmp_path_factory) -> tuple[Path, dict]:
    """A project folder holding data/satmodel.duckdb and the notebooks, and an environment in
    which the ``satmodel`` kernel the notebooks ask for is registered (as `make lab` does)."""
    import shutil
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("lab") / "proj"
    (root / "data").mkdir(parents=True)
    shutil.copy(demo_data(tmp_path_factory), root / "data" / "satmodel.duckdb")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    prefix = root.parent / "jupyter"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ipykernel",
            "install",
            "--prefix",
            str(prefix),
            "--name",
            "satmodel",
        ],
        check=True,
        capture_output=True,
    )
    return root, {"JUPYTER_PATH": str(prefix / "share" / "jupyter")}


def run_as_in_lab(notebook: Path, cwd: Path, out: Path, parameters: dict) -> nbformat.NotebookNode:
    """Execute a notebook with the kernel its metadata names, from the working directory cwd."""
    import papermill

    papermill.execute_notebook(
        str(notebook),
        str(out),
        parameters=parameters,
        progress_bar=False,
        log_output=False,
        cwd=str(cwd),
    )
    return nbformat.read(out, as_version=4)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["notebooks", "project root"])
@pytest.mark.parametrize("name", list(QUICK))
def test_notebook_runs_with_default_data_from_anywhere_in_the_project(
    lab_project, monkeypatch, tmp_path, name, where
):
    root, env = lab_project
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cwd = root / "notebooks" if where == "notebooks" else root
    nb = run_as_in_lab(root / "notebooks" / name, cwd, tmp_path / name, QUICK[name])
    assert outputs_of(nb, "error") == []
    text = "".join(
        o.get("text", "") + o.get("data", {}).get("text/markdown", "")
        for o in outputs_of(nb, "stream") + outputs_of(nb, "display_data")
    )
    assert "Traceback" not in text


@pytest.mark.slow
def test_without_a_project_the_error_names_the_path_looked_for(lab_project, monkeypatch, tmp_path):
    import papermill

    _, env = lab_project
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nowhere = tmp_path / "elsewhere"
    nowhere.mkdir()
    with pytest.raises(papermill.PapermillExecutionError) as caught:
        run_as_in_lab(ROOT / "notebooks" / "01_explore.ipynb", nowhere, tmp_path / "out.ipynb", {})
    assert str(nowhere / "data" / "satmodel.duckdb") in caught.value.evalue
    assert "not found" in caught.value.evalue


def reporting_names(path: Path) -> set[tuple[str, str]]:
    """(module, name) of everything a notebook takes from satmodel.reporting or its modules."""
    import importlib

    used: set[tuple[str, str]] = set()
    aliases = {}
    trees = [
        ast.parse(code_without_magics(cell.source))
        for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "code"
    ]
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "satmodel":
                aliases.update(
                    {a.asname or a.name: "" for a in node.names if a.name == "reporting"}
                )
            elif isinstance(node, ast.ImportFrom) and node.module == "satmodel.reporting":
                for alias in node.names:
                    try:
                        importlib.import_module(f"satmodel.reporting.{alias.name}")
                    except ModuleNotFoundError:
                        used.add(("", alias.name))
                    else:
                        aliases[alias.asname or alias.name] = alias.name
    for tree in trees:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                used.add((aliases[node.value.id], node.attr))
    return used


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_use_only_exported_reporting_names(path):
    """Every reporting name a notebook calls is in reporting.__all__, also through a module
    alias; only a function named as its own module (proposal_page.proposal_page) cannot be
    re-exported without hiding that module."""
    from satmodel import reporting

    used = reporting_names(path)
    assert used or "reporting" not in path.read_text()
    missing = sorted(
        f"{module + '.' if module else ''}{name}"
        for module, name in used
        if name not in reporting.__all__ and name != module
    )
    assert not missing, f"not in satmodel.reporting.__all__: {missing}"
