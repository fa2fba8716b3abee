"""Config: defaults without a file, TOML parsing, clear errors, nothing evaluated."""

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
        f"[tables.requests]\nconstants = {{ ok = \"__import__('pathlib').Path('{marker}').touch()\" }}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert isinstance(config.tables["requests"].constants["ok"], str)
    assert not marker.exists()


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_config(tmp_path / "absent.toml")
