"""Months (satmodel.calendar): ASCII-only months, ranges that always end."""

from __future__ import annotations

import pytest

from satmodel import calendar, reporting
from satmodel.cli import main
from satmodel.errors import InputError

FULL_WIDTH = "\uff12\uff10\uff12\uff15-06"  # "２０２５-06": int() reads it, a month it is not


@pytest.mark.parametrize("month", ["2025-06", "1999-12", "0001-01"])
def test_check_month_takes_ascii_months(month):
    assert calendar.check_month(month) == month


@pytest.mark.parametrize(
    "month",
    [FULL_WIDTH, "2025-\uff10\uff16", "\u0662\u0660\u0662\u0665-06", "2025-13", "2025-6", 202506],
)
def test_check_month_refuses_other_digits_naming_the_option(month):
    with pytest.raises(InputError) as caught:
        calendar.check_month(month, "--month")
    assert str(caught.value).startswith("--month ")


def test_month_range_always_ends():
    assert calendar.month_range("2024-11", "2025-02") == [
        "2024-11",
        "2024-12",
        "2025-01",
        "2025-02",
    ]
    assert calendar.month_range("2025-02", "2025-01") == []
    # full-width digits counted, not compared as strings: this range used to never end
    assert calendar.month_range("2025-05", FULL_WIDTH) == ["2025-05", "2025-06"]


def test_month_arithmetic():
    assert calendar.add_months("2025-01", -1) == "2024-12"
    assert calendar.add_months("2024-12", 14) == "2026-02"
    assert calendar.month_index("0000-01") == 0
    assert calendar.month_index("0001-02") == 13
    assert calendar.month_at(24_321) == "2026-10"
    assert calendar.month_at(0) == "0000-01"
    for month in ("2024-12", "2025-01", "1999-07"):
        assert calendar.month_at(calendar.month_index(month)) == month
    assert calendar.days_in_month("2024-02") == 29
    assert calendar.minutes_in_month("2025-02") == 28 * 24 * 60
    assert calendar.month_name("2026-10") == "October 2026"
    assert calendar.month_abbr("2026-10") == "Oct"
    assert str(calendar.month_start("2025-03")) == "2025-03-01 00:00:00+00:00"


@pytest.mark.parametrize("option", ["--month", "--from"])
def test_report_refuses_full_width_months_with_exit_2(option, tmp_path, capsys):
    code = main(["report", option, FULL_WIDTH, "--data", str(tmp_path), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and option in err[0] and "Traceback" not in err[0]


def test_reporting_reexports_the_months():
    names = ["check_month", "add_months", "month_range", "minutes_in_month", "month_name"]
    names += ["data_window", "last_complete_month", "month_start", "days_in_month"]
    for name in names:
        assert getattr(reporting, name) is getattr(calendar, name)
