"""The public API: every advertised name resolves; importing satmodel is cheap and inert."""

import subprocess
import sys

import pytest

import satmodel


@pytest.mark.parametrize("name", satmodel.__all__)
def test_public_name_resolves(name):
    assert getattr(satmodel, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        satmodel.no_such_thing  # noqa: B018


def test_import_has_no_heavy_side_effects():
    code = "import sys, satmodel; print(sorted(m for m in ('duckdb', 'statsmodels', 'ibis') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_validate_is_the_function_even_after_the_module_is_imported():
    import satmodel.validation

    assert callable(satmodel.validate)
    assert satmodel.targets is satmodel.solve_target
