"""The malformed-input corpus: every case gets exit code 2 with a clear line, or quarantine."""

import json
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
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


def _fit_json(tmp_path, frame, formula, family, capsys):
    table = tmp_path / "table.csv"
    frame.to_csv(table, index=False)
    out = tmp_path / "fit.json"
    code = main(
        ["fit", "--data", str(table), "--formula", formula, "--family", family, "--json", str(out)]
    )
    captured = capsys.readouterr()
    return code, json.loads(out.read_text()) if out.exists() else None, captured.err


def test_constant_driver_is_flagged_not_shown_as_fine(tmp_path, capsys):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=200), "constant": 3.0})
    frame["y"] = 1 + frame["x"] + rng.normal(size=200)
    code, payload, err = _fit_json(tmp_path, frame, "y ~ x + constant", "ols", capsys)
    assert code == 0
    assert payload["reliable"] is False
    assert any("collinear" in w for w in payload["warnings"])
    assert "warning:" in err


def test_perfectly_separated_outcome_is_flagged(tmp_path, capsys):
    frame = pd.DataFrame({"x": np.arange(100.0)})
    frame["y"] = (frame["x"] > 50).astype(int)
    code, payload, err = _fit_json(tmp_path, frame, "y ~ x", "logit", capsys)
    assert code == 0
    assert payload["reliable"] is False
    assert any("separation" in w for w in payload["warnings"])
    assert "separation" in err


@pytest.mark.slow
def test_ten_million_rows_with_one_bad_row(tmp_path, capsys):
    folder = write_case(CASES[[c.name for c in CASES].index("single_customer")], tmp_path)
    (folder / "requests.csv").unlink()
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT 'c1' AS customer_id, TIMESTAMPTZ '2025-01-01 00:00:00+00' "
            "+ to_microseconds(i * 100_000) AS ts, "
            "CASE WHEN i = 7_654_321 THEN -1.0 ELSE 50.0 + i % 400 END AS latency_ms, "
            "i % 97 <> 0 AS ok FROM range(10_000_000) t(i)) "
            f"TO '{folder / 'requests.parquet'}' (FORMAT parquet)"
        )
    result = _validate(folder, capsys)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["requests.latency_ms: 1 row negative (e.g. -1.0)"]
    assert "requests 10,000,000" in result.stdout
