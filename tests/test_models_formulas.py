"""Bounded formula evaluation: formulas that would hang, exhaust the stack or reach builtins."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from satmodel.errors import InputError
from satmodel.models import fit
from satmodel.models.formulas import (
    MAX_EXPONENT,
    MAX_FORMULA_LENGTH,
    MAX_NESTING_DEPTH,
    MAX_TERM_POWER,
)

COLUMNS = "abcdefghijkl"
# Old code ran each of these for minutes or hours (Python integers and patsy's term expansion
# have no size limit): the subprocess timeout turns a hang into a failure.
TIMEOUT = 60


def frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    data = {c: rng.integers(0, 3, n).astype(float) for c in COLUMNS}
    data["x"] = rng.uniform(1, 5, n)
    data["y"] = 2 * data["x"] + rng.normal(size=n)
    return pd.DataFrame(data)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("formulas") / "table.csv"
    frame().to_csv(path, index=False)
    return path


def run_fit(table, formula: str) -> subprocess.CompletedProcess:
    args = ["--data", str(table), "--formula", formula, "--family", "ols"]
    return subprocess.run(
        [sys.executable, "-m", "satmodel", "fit", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.mark.parametrize(
    ("formula", "part"),
    [
        ("y ~ I(10**10**10)", "10 ** 10 ** 10"),
        ("y ~ x + I(pow(10, 10**10))", "pow(10, 10 ** 10)"),
        ("I(10**10**10) ~ x", "10 ** 10 ** 10"),
        ("y ~ (" + "+".join(COLUMNS) + ")**50", "**50"),
        ("y ~ " + "*".join(COLUMNS), "a*b*c"),
        ("y ~ " + ":".join(["x"] * 600), "operands"),
    ],
)
def test_unbounded_formula_exits_2_fast_naming_the_part(table, formula, part):
    completed = run_fit(table, formula)
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in completed.stderr
    assert part in lines[0]


def test_tampered_json_formula_cannot_hang_predict():
    code = textwrap.dedent(
        """
        import numpy as np, pandas as pd
        from satmodel.errors import InputError
        from satmodel.models import FitResult, fit
        data = pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40.0) % 7 + np.arange(40.0)})
        payload = fit(data, "y ~ I(x)", "ols").to_dict()
        payload["formula"] = "y ~ I(x + 10**10**10)"
        try:
            FitResult.from_dict(payload).predict(data.head(2))
        except InputError as exc:
            print("InputError", exc)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert completed.stdout.startswith("InputError"), completed.stderr
    assert "10 ** 10 ** 10" in completed.stdout


def test_formula_longer_than_the_limit_is_refused():
    terms = " + ".join(f"I(x * {i})" for i in range(MAX_FORMULA_LENGTH // 10))
    formula = "y ~ " + terms
    assert len(formula) > MAX_FORMULA_LENGTH
    with pytest.raises(InputError, match=f"{len(formula)} characters"):
        fit(frame(), formula, "ols")


@pytest.mark.parametrize("inside", [False, True])
def test_brackets_nested_deeper_than_the_limit_are_refused(inside):
    depth = MAX_NESTING_DEPTH + 1
    nested = "(" * depth + "x" + ")" * depth
    formula = f"y ~ I({nested})" if inside else f"y ~ {nested}"
    with pytest.raises(InputError, match=f"nest more than {MAX_NESTING_DEPTH} deep"):
        fit(frame(), formula, "ols")


def test_brackets_inside_quoted_names_do_not_count_as_nesting():
    data = frame().rename(columns={"x": "x" + "(" * (MAX_NESTING_DEPTH + 1)})
    name = data.columns[-2]
    result = fit(data, f"y ~ Q('{name}')", "ols")
    assert f"Q('{name}')" in list(result.coefficients_["term"])


@pytest.mark.parametrize(
    "formula",
    [
        f"y ~ I(x ** {MAX_EXPONENT + 1})",
        f"y ~ I(x ** -{MAX_EXPONENT + 1})",
        "y ~ I(x ** x)",
        "y ~ I(x ** int(a))",
        "y ~ I((x ** 2) ** 3)",
        "y ~ I(pow(x, 2, 3))",
        f"y ~ (a + b + c) ** {MAX_TERM_POWER + 1}",
    ],
)
def test_powers_must_be_small_numbers(formula):
    with pytest.raises(InputError, match="exponent|power|pow"):
        fit(frame(), formula, "ols")


@pytest.mark.parametrize(
    "formula", ["y ~ I('a' * 10**9)", "y ~ I([0] * 10**9)", "y ~ I(1 << 10**9)"]
)
def test_memory_filling_code_is_refused(formula):
    with pytest.raises(InputError, match="not allowed"):
        fit(frame(), formula, "ols")


@pytest.mark.parametrize(
    "term",
    ["Q('__built' + 'ins__')", "Q('x', 'y')", "Q(name='x')", "Q(max('x', 'y'))", "Q(b'x')"],
)
def test_q_takes_one_plain_string_literal(term):
    with pytest.raises(InputError, match=r"Q\(\) takes one plain string"):
        fit(frame(), f"y ~ x + {term}", "ols")


@pytest.mark.parametrize("name", ["np", "C", "__builtins__"])
def test_q_names_only_columns(name):
    with pytest.raises(InputError, match=f"column '{name}' used in formula term"):
        fit(frame(), f"y ~ x + Q('{name}')", "ols")


def test_small_powers_and_quoted_columns_still_fit_like_precomputed_columns():
    data = frame()
    data["x2"] = data["x"] ** 2
    data["x_cube_root"] = data["x"] ** (1 / 3)
    data["x_inv"] = 1 / data["x"]
    data["x_pow_a"] = np.power(data["x"], data["a"])
    data["a b"] = data["a"]
    formula = "y ~ I(x**2) + I(x ** (1/3)) + I(x**-1) + np.power(x, a) + Q('a b')"
    expected = fit(data, "y ~ x2 + x_cube_root + x_inv + x_pow_a + a", "ols")
    result = fit(data, formula, "ols")
    np.testing.assert_allclose(
        result.coefficients_["estimate"], expected.coefficients_["estimate"], rtol=1e-9
    )


def test_interaction_power_within_the_limit_expands_like_the_written_out_formula():
    data = frame()
    result = fit(data, f"y ~ (a + b + c) ** {MAX_TERM_POWER}", "ols")
    written = fit(data, "y ~ a + b + c + a:b + a:c + b:c + a:b:c", "ols")
    assert list(result.coefficients_["term"]) == list(written.coefficients_["term"])
    np.testing.assert_allclose(
        result.coefficients_["estimate"], written.coefficients_["estimate"], rtol=1e-9
    )
