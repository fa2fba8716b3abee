"""Contracts and opex: validation rules, the panel's monthly_revenue and churned, config."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import GOOD_TABLES, write_tables

from satmodel.config import DEFAULT_COMPLAINT_COST, load_config
from satmodel.errors import InputError
from satmodel.features import build_panel
from satmodel.sources import open_source
from satmodel.validation import validate

CONTRACTS = """customer_id,start_month,end_month,monthly_revenue
c1,2024-01,2025-01,1000
c1,2025-02,,500
c2,2024-06,2025-01,100
"""


def rejected(report) -> set[tuple[str, str]]:
    frame = report.rejected
    return {(r.column_name, r.reason) for r in frame.itertuples() if r.table_name == "contracts"}


def test_bad_contracts_are_quarantined_with_the_reason(tmp_path):
    tables = dict(GOOD_TABLES)
    tables["contracts"] = (
        "customer_id,start_month,end_month,monthly_revenue\n"
        "c1,2024-01,,1000\n"  # kept: the first open contract
        "c1,2024-06,,500\n"  # a second open contract
        "c2,2025-02,2025-01,100\n"  # ends before it starts
        "c2,2024-01,2024-12,-5\n"  # negative revenue
        "c2,2025-01,2025-01,0\n"  # fine: one month, no revenue
    )
    tables["opex"] = "month,amount\n2025-01,1000\n2025-02,-3\n"
    report = validate(write_tables(tmp_path / "d", tables), persist=False)
    assert rejected(report) == {
        ("end_month", "a second open row (null end_month) for one customer_id (first kept)"),
        ("end_month", "before start_month"),
        ("monthly_revenue", "negative revenue"),
    }
    assert int(report.rejected["rows"].sum()) == 4
    assert ("opex", "amount") in set(
        zip(report.rejected.table_name, report.rejected.column_name, strict=True)
    )


def test_panel_revenue_and_churn_follow_the_contracts(tmp_path):
    tables = dict(GOOD_TABLES, contracts=CONTRACTS)
    source = open_source(write_tables(tmp_path / "d", tables))
    panel = build_panel(source).set_index(["customer_id", "month"])
    # c1 renews in 2025-02: no churn; c2 leaves at the end of 2025-01
    assert panel.loc[("c1", "2025-01"), "monthly_revenue"] == 1000
    assert panel.loc[("c1", "2025-02"), "monthly_revenue"] == 500
    assert panel.loc[("c1", "2025-01"), "churned"] == 0
    assert panel.loc[("c1", "2025-02"), "churned"] == 0
    assert panel.loc[("c2", "2025-01"), "churned"] == 1
    assert pd.isna(panel.loc[("c2", "2025-02"), "churned"])
    assert pd.isna(panel.loc[("c2", "2025-02"), "monthly_revenue"])
    # the contracts' early months do not widen the panel
    assert sorted(panel.index.get_level_values("month").unique()) == ["2025-01", "2025-02"]


def test_customer_without_contract_has_null_churn(tmp_path):
    tables = dict(
        GOOD_TABLES, contracts="customer_id,start_month,end_month,monthly_revenue\nc1,2025-02,,10\n"
    )
    panel = build_panel(open_source(write_tables(tmp_path / "d", tables)))
    panel = panel.set_index(["customer_id", "month"])
    assert panel.loc[("c2", "2025-01"), ["churned", "monthly_revenue"]].isna().all()
    assert pd.isna(panel.loc[("c1", "2025-01"), "churned"])  # before its start
    assert panel.loc[("c1", "2025-02"), "churned"] == 0


def test_panel_without_contracts_has_no_churn_columns(good_folder):
    panel = build_panel(open_source(good_folder))
    assert "churned" not in panel.columns and "monthly_revenue" not in panel.columns


def test_nps_score_in_the_panel(tmp_path):
    tables = dict(GOOD_TABLES)
    tables["surveys"] = (
        "response_id,customer_id,ts,csat,nps\n"
        "r1,c1,2025-01-10T09:00:00Z,5,9\n"
        "r2,c1,2025-01-11T09:00:00Z,5,10\n"
        "r3,c1,2025-01-12T09:00:00Z,4,3\n"
        "r4,c1,2025-01-13T09:00:00Z,4,8\n"
        "r5,c2,2025-02-11T09:00:00Z,2,\n"
    )
    panel = build_panel(open_source(write_tables(tmp_path / "d", tables)))
    panel = panel.set_index(["customer_id", "month"])
    assert panel.loc[("c1", "2025-01"), "nps_n"] == 4
    assert panel.loc[("c1", "2025-01"), "nps_score"] == pytest.approx(100 * (2 - 1) / 4)
    assert panel.loc[("c2", "2025-02"), "nps_n"] == 0
    assert pd.isna(panel.loc[("c2", "2025-02"), "nps_score"])  # answered csat, not nps


def test_config_per_complaint_and_opex(tmp_path):
    path = tmp_path / "satmodel.toml"
    path.write_text(
        '[costs]\nper_complaint = 55\nlatency_per_100ms = 1000\n[opex]\n"2025-02" = 10\n'
        '"2025-01" = 20.5\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.per_complaint == 55.0
    assert "per_complaint" not in config.costs  # the cost curves do not see it
    assert config.opex == {"2025-01": 20.5, "2025-02": 10.0}
    path.write_text("[costs]\nlatency_per_100ms = 1000\n", encoding="utf-8")
    assert load_config(path).per_complaint == DEFAULT_COMPLAINT_COST
    path.write_text("[costs]\nper_complaint = -1\n", encoding="utf-8")
    with pytest.raises(InputError, match="per_complaint"):
        load_config(path)
    path.write_text('[opex]\n"2025-13" = 1\n', encoding="utf-8")
    with pytest.raises(InputError, match="opex"):
        load_config(path)
