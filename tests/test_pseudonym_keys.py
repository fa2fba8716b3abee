"""Pseudonym keys that are not secret are refused (owned by another user, guessable)."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from satmodel import reporting
from satmodel.errors import InputError
from satmodel.insights.scenarios import check_customer, check_lever, check_segment


@pytest.fixture
def key_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(reporting.PSEUDONYM_KEY_ENV, raising=False)
    path = tmp_path / "data" / "pseudonym.key"
    path.parent.mkdir()
    path.write_text("0123456789abcdef" * 4, encoding="ascii")
    path.chmod(0o600)
    return path


def test_a_good_key_file_is_used(key_file):
    assert reporting.pseudonym_key() == key_file.read_bytes().strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_a_key_file_owned_by_another_user_is_refused(key_file):
    os.chown(key_file, 1, 1)
    with pytest.raises(InputError, match="owned by user id 1"):
        reporting.pseudonym_key()


@pytest.mark.parametrize("where", ["file", "env"])
def test_a_guessable_key_is_refused(where, key_file, monkeypatch):
    if where == "file":
        key_file.write_text("a" * 16, encoding="ascii")
    else:
        monkeypatch.setenv(reporting.PSEUDONYM_KEY_ENV, "abababababababab")
    with pytest.raises(InputError, match="guessable"):
        reporting.pseudonym_key()


def test_did_you_mean_for_segments_customers_and_levers():
    panel = pd.DataFrame(
        {
            "customer_id": ["C0001", "C0002"],
            "segment": ["smb", "enterprise"],
            "latency_p95_ms": [1, 2],
        }
    )
    with pytest.raises(InputError, match="did you mean smb"):
        check_segment("SMB", panel)
    with pytest.raises(InputError, match="did you mean C0001"):
        check_customer("C001", panel)
    with pytest.raises(InputError, match="did you mean latency_p95_ms"):
        check_lever("latency_p95", panel)
