"""Config: defaults without a file, TOML parsing, clear errors, nothing evaluated."""

import subprocess
import sys

import pytest

from satmodel import Config, InputError, load_config


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config == Config()
    assert config.thresholds.apdex_t_ms == 500.0
    assert config.thresholds.satisfied_cutoff == 4


def test_reads_thresholds_mappings_and_relative_paths(tmp_path):
    path = tmp_path / "satmodel.toml"
    path.write_text(
        """
[source]
path = "warehouse"

[tables.requests]
table = "api_log"
columns = { customer_id = "account", latency_ms = "duration_s" }
units = { latency_ms = "s" }

[thresholds]
apdex_t_ms = 300
satisfied_cutoff = 5
""",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.source == tmp_path / "warehouse"
    assert config.thresholds.apdex_t_ms == 300.0
    assert config.thresholds.satisfied_cutoff == 5
    mapping = config.tables["requests"]
    assert mapping.table == "api_log"
    assert mapping.columns["latency_ms"] == "duration_s"
    assert mapping.units == {"latency_ms": "s"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[thresholds]\napdex_t = 3\n", "unknown setting thresholds.apdex_t"),
        ("[thresholds]\napdex_t_ms = 'fast'\n", "must be a number"),
        ("[tables.tickts]\n", "not a canonical table"),
        ("[nonsense]\n", "unknown section"),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path, text, fragment):
    path = tmp_path / "satmodel.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_loading_never_evaluates_code(tmp_path):
    path = tmp_path / "satmodel.toml"
    marker = tmp_path / "pwned"
    path.write_text(
        f"[tables.customers]\nconstants = {{ segment = \"__import__('pathlib').Path('{marker}').touch()\" }}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert isinstance(config.tables["customers"].constants["segment"], str)
    assert not marker.exists()


@pytest.mark.parametrize(
    "constant, fragment",
    [
        ('ok = "yes"', "constants.ok must be true or false"),
        ("ok = 1", "constants.ok must be true or false"),
        ('latency_ms = "fast"', "constants.latency_ms must be a number"),
        ("latency_ms = true", "constants.latency_ms must be a number"),
        ("ts = 5", "constants.ts must be a timestamp string"),
    ],
)
def test_constant_of_the_wrong_kind_is_exit_2(tmp_path, good_folder, constant, fragment):
    path = good_folder / "satmodel.toml"
    path.write_text(f'[source]\npath = "."\n[tables.requests]\nconstants = {{ {constant} }}\n')
    with pytest.raises(InputError, match=fragment):
        load_config(path)
    result = subprocess.run(
        [sys.executable, "-m", "satmodel", "validate", "--data", str(path), "--no-persist"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and fragment in result.stderr, result.stderr


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_config(tmp_path / "absent.toml")


def test_derived_where_repeat_distinct_and_url_source(tmp_path):
    path = tmp_path / "satmodel.toml"
    path.write_text(
        """
[source]
path = "postgresql://analyst@127.0.0.1:5432/ops"

[tables.requests]
distinct = true
repeat = "n"
where = [{ column = "status", equals = "delivered" }, { column = "kind", in = ["a", "b"] }]
derived = { latency_ms = { days_between = ["bought", "delivered"], scale = 2 }, ok = { op = "less_equal", column = "delivered", other = "promised" } }
""",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.source_url == "postgresql://analyst@127.0.0.1:5432/ops"
    mapping = config.tables["requests"]
    assert mapping.distinct and mapping.repeat == "n"
    assert [(c.column, c.test, c.value) for c in mapping.where] == [
        ("status", "equals", "delivered"),
        ("kind", "in", ("a", "b")),
    ]
    latency = mapping.derived["latency_ms"]
    assert latency.op == "days_between"
    assert latency.args == {"start": "bought", "end": "delivered", "scale": 2.0}
    assert mapping.derived["ok"].columns() == ["delivered", "promised"]


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ('derived = { ok = { op = "exec", column = "x" } }', "unknown op 'exec'"),
        ('derived = { ok = { op = "less", column = "x" } }', "exactly one of value"),
        ('derived = { latency_ms = { op = "days_between", start = "a" } }', "needs end"),
        ('derived = { latency_ms = { op = "month_of", column = 3 } }', "must be a column name"),
        ('derived = { nonsense = { op = "copy", column = "x" } }', "is not a column of requests"),
        ('where = { column = "x", like = "y" }', "needs exactly one test"),
        ('where = { column = "x", in = [] }', "non-empty list"),
        ('distinct = "yes"', "must be true or false"),
        ('url = "mysql://x"', "must start with postgresql://"),
        ('constants = { ok = true }\nderived = { ok = { op = "not_null", column = "x" } }', "both"),
    ],
)
def test_bad_mapping_is_one_line_naming_the_setting(tmp_path, table, fragment):
    path = tmp_path / "satmodel.toml"
    path.write_text(f"[tables.requests]\n{table}\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert fragment in str(info.value)
    assert "tables.requests" in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_source_setting(tmp_path):
    path = tmp_path / "satmodel.toml"
    path.write_text('[source]\nfile = "x.csv"\n', encoding="utf-8")
    with pytest.raises(InputError, match="unknown setting source.file"):
        load_config(path)


def test_duckdb_settings_are_checked_and_applied(tmp_path, good_folder):
    from satmodel import open_source

    path = tmp_path / "satmodel.toml"
    path.write_text(
        f'[source]\npath = "{good_folder}"\n[duckdb]\nmemory_limit = "1GB"\ntemp_directory = "spill"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.duckdb == {"memory_limit": "1GB", "temp_directory": str(tmp_path / "spill")}
    source = open_source(path)
    limit = source.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert limit.replace(" ", "").upper() in ("1.0GB", "953.6MIB", "1GB", "953.6MB")
    path.write_text('[duckdb]\nmemory_limt = "1GB"\n', encoding="utf-8")
    with pytest.raises(InputError, match="unknown setting duckdb.memory_limt"):
        load_config(path)
