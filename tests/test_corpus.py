"""The malformed-input corpus: every case gets exit code 2 with a clear line, or quarantine."""

from types import SimpleNamespace

import pytest
from malformed_corpus import CASES, write_case

from satmodel.cli import main


def _validate(folder, capsys):
    """Run `satmodel validate` in this process (the corpus is large; subprocesses are slow)."""
    returncode = main(["validate", "--data", str(folder), "--no-persist"])
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=returncode, stdout=captured.out, stderr=captured.err)


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case(case, tmp_path, capsys):
    result = _validate(write_case(case, tmp_path), capsys)
    assert "Traceback" not in result.stderr, result.stderr
    if case.expect == "valid":
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    if case.expect == "error":
        where = f"{case.table}.{case.column}:" if case.column else f"{case.table}:"
        matching = [line for line in lines if line.startswith(f"satmodel: {where}")]
        assert matching, lines
        assert case.fragment in matching[0], matching[0]
        return
    plural = "row" if case.rows == 1 else "rows"
    expected = f"{case.table}.{case.column}: {case.rows} {plural} {case.fragment}"
    assert any(line.startswith(expected) for line in lines), lines
    assert "rows quarantined: " in result.stdout
