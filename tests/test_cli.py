"""The command line: help with examples, exit codes, one-line errors without tracebacks."""

import subprocess
import sys

import pytest

from satmodel.cli import build_parser, main

COMMANDS = ["demo", "validate", "features", "fit", "targets", "report", "proposal", "case-study"]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "satmodel", *args], capture_output=True, text=True)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "Example:" in out
    assert f"satmodel {command}" in out


def test_top_level_help_lists_commands():
    help_text = build_parser().format_help()
    for command in COMMANDS:
        assert command in help_text


def test_bad_usage_exits_2():
    result = _run("fit", "--data", "x.csv")
    assert result.returncode == 2
    assert "--formula" in result.stderr


def test_missing_file_is_one_line_exit_2(tmp_path):
    result = _run(
        "fit", "--data", str(tmp_path / "absent.csv"), "--formula", "y ~ x", "--family", "ols"
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.stderr


def test_features_writes_the_panel(good_folder, tmp_path):
    import pandas as pd

    out = tmp_path / "panel.parquet"
    result = _run("features", "--data", str(good_folder), "--out", str(out))
    assert result.returncode == 0, result.stderr
    panel = pd.read_parquet(out)
    assert len(panel) == 4  # 2 customers x 2 months
    assert f"wrote {out}: 4 customer-months" in result.stdout


def test_paths_are_confined_only_when_asked(monkeypatch):
    from argparse import Namespace

    from satmodel.cli import allow_outside

    monkeypatch.delenv("SATMODEL_CONFINE_PATHS", raising=False)
    monkeypatch.delenv("SATMODEL_ALLOW_PATHS", raising=False)
    # the contract: `satmodel report --data SRC --out DIR` takes any SRC and DIR
    assert allow_outside(Namespace(allow_outside=False, confine_paths=False))
    assert not allow_outside(Namespace(allow_outside=False, confine_paths=True))
    assert allow_outside(Namespace(allow_outside=True, confine_paths=True))
    monkeypatch.setenv("SATMODEL_CONFINE_PATHS", "1")
    assert not allow_outside(Namespace(allow_outside=False, confine_paths=False))
