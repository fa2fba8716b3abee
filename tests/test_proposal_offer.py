"""The offer of a proposal: one recommendation, two alternatives, rounded prices, the CSV,
the customer's page in plain words, and ``[costs] currency``."""

from __future__ import annotations

import math
import re
from datetime import date

import pandas as pd
import pytest

from satmodel.config import load_config
from satmodel.errors import InputError
from satmodel.reporting.offer import (
    Offer,
    choose_options,
    offer_summary,
    round_price,
)
from satmodel.reporting.offer import service_option as option_of
from satmodel.reporting.proposal_page import proposal_page, proposal_table

INTERNALS = re.compile(
    r"satmodel\.|\.py\b|papermill|negbin|ordinal|patsy|np\.log|C\(segment\)|planner"
)


def predictions(meets=("no", "no", "yes", "yes"), costs=(0.0, 100.0, 1000.0, 5000.0)):
    """A tier table as tier_predictions returns it: today's service, then three tiers."""
    names = ["Current service", "Bronze", "Silver", "Gold"]
    csat = [3.6, 3.8, 4.1, 4.3]
    return pd.DataFrame(
        {
            "tier": names,
            "availability_pct": [99.71234, 99.5, 99.9, 99.95],
            "latency_p95_ms": [640.4, 800.0, 500.0, 300.0],
            "resolution_hours_median": [11.26, 24.0, 8.0, 4.0],
            "csat_mean": csat,
            "csat_mean_ci_low": [c - 0.1 for c in csat],
            "csat_mean_ci_high": [c + 0.1 for c in csat],
            "csat_top2_pct": [60.123456, 65.0, 72.0, 80.0],
            "csat_top2_ci_low": [55.0, 60.0, 66.0, 75.0],
            "csat_top2_ci_high": [65.0, 70.0, 78.0, 85.0],
            "complaint_rate_per_1k": [3.123456789, 2.5, 1.9, 1.2],
            "complaint_ci_low": [2.0, 1.8, 1.2, 0.7],
            "complaint_ci_high": [4.0, 3.5, 2.6, 1.9],
            "meets_csat": list(meets),
            "meets_complaints": ["-"] * 4,
            "monthly_cost": list(costs),
        }
    )


def offer(frame: pd.DataFrame, addressee: str = "Acme Logistics") -> Offer:
    chosen, cheaper, safer = choose_options(frame)
    today = option_of(frame.iloc[0], "today")
    return Offer(
        addressee=addressee,
        segment=None,
        customer="C0001",
        issued=date(2025, 5, 2),
        valid_until=date(2025, 6, 1),
        currency="EUR",
        csat_target=4.0,
        complaint_target=None,
        today=today.levels,
        expected={
            "availability_pct": 99.9,
            "latency_p95_ms": 400.0,
            "resolution_hours_median": math.nan,
        },
        csat_now=today.csat,
        csat_observed=3.55,
        responses=42,
        today_option=today,
        recommended=option_of(chosen, "recommended"),
        cheaper=option_of(cheaper, "cheaper") if cheaper is not None else None,
        safer=option_of(safer, "safer") if safer is not None else None,
        customers=40,
        months=6,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12_345.6, 12_400.0), (87.2, 90.0), (100.0, 100.0), (0.0, 0.0), (216_495.0, 217_000.0)],
)
def test_prices_are_rounded_up_to_three_significant_digits(value, expected):
    assert round_price(value) == expected


def test_the_cheapest_tier_meeting_the_target_is_recommended_with_its_neighbours():
    chosen, cheaper, safer = choose_options(predictions())
    assert (chosen["tier"], cheaper["tier"], safer["tier"]) == ("Silver", "Bronze", "Gold")


def test_the_cheapest_tier_has_today_as_its_cheaper_alternative_and_the_best_no_safer():
    chosen, cheaper, safer = choose_options(predictions(meets=("no", "yes", "yes", "yes")))
    assert (chosen["tier"], cheaper["tier"], safer["tier"]) == (
        "Bronze",
        "Current service",
        "Silver",
    )
    chosen, cheaper, safer = choose_options(predictions(meets=("no",) * 4))
    assert chosen["tier"] == "Gold" and cheaper["tier"] == "Silver" and safer is None


def test_no_tier_above_today_is_not_sold():
    frame = predictions(meets=("no",) * 4)
    frame["csat_mean"] = [3.80, 3.78, 3.79, 3.80]
    chosen, cheaper, safer = choose_options(frame)
    assert (chosen["tier"], cheaper, safer) == ("Current service", None, None)
    page = proposal_page(offer(frame)).data
    assert "keep your current service" in page and "None of our service levels" in page


def test_today_meeting_the_target_is_kept_with_the_cheapest_tier_as_safer():
    frame = predictions(meets=("yes", "yes", "yes", "yes"))
    chosen, cheaper, safer = choose_options(frame)
    assert (chosen["tier"], cheaper, safer["tier"]) == ("Current service", None, "Bronze")
    page = proposal_page(offer(frame)).data
    assert "keep your current service" in page and "no extra cost" in page
    assert "per month on top of your current service" not in page


def test_today_likely_gives_way_to_a_tier_that_surely_meets():
    chosen, _, _ = choose_options(predictions(meets=("likely", "no", "yes", "yes")))
    assert chosen["tier"] == "Silver"


def test_full_availability_reads_100_percent_not_1():
    frame = predictions()
    frame.loc[0, "availability_pct"] = 100.0
    page = proposal_page(offer(frame)).data
    assert ">100%<" in page and ">1%<" not in page


def test_options_follow_price_not_the_order_given():
    frame = predictions(costs=(0.0, 100.0, 9000.0, 5000.0), meets=("no", "no", "yes", "yes"))
    chosen, cheaper, safer = choose_options(frame)
    assert (chosen["tier"], cheaper["tier"], safer["tier"]) == ("Gold", "Bronze", "Silver")


def test_summary_carries_csat_now_and_the_recommendation():
    summary = offer_summary(offer(predictions()))
    assert summary["csat_now"] == 3.6 and summary["csat_observed"] == 3.55
    assert summary["recommendation"]["tier"] == "Silver"
    assert summary["recommendation"]["monthly_price"] == 1000.0
    assert summary["recommendation"]["meets_targets"] is True
    assert summary["alternatives"]["cheaper"]["tier"] == "Bronze"
    assert summary["valid_until"] == "2025-06-01" and summary["currency"] == "EUR"


def test_the_page_speaks_to_the_customer_in_plain_words():
    html = proposal_page(offer(predictions())).data
    text = re.sub(r"<style.*?</style>|<[^>]+>", " ", html, flags=re.S)
    assert "Acme Logistics" in text and "Our recommendation: Silver" in text
    assert "EUR 1,000" in text and "valid until 1 June 2025" in text
    assert "Cheaper" in text and "Safer" in text and "How we estimated this" in text
    assert "99.71%" in text and "640 ms" in text and "not stated" in text
    assert "4.10 (4.00\u20134.20)" in text
    assert INTERNALS.search(text) is None


def test_the_page_escapes_the_customer_name():
    html = proposal_page(offer(predictions(), addressee="<b>Evil</b> & Co")).data
    assert "<b>Evil</b>" not in html and "&lt;b&gt;Evil&lt;/b&gt; &amp; Co" in html


def test_proposal_csv_is_rounded_with_empty_cells_for_what_does_not_apply():
    table = proposal_table(predictions(), "USD")
    assert table["meets_complaints"].isna().all()
    assert table["complaint_rate_per_1k"].iloc[0] == 3.12
    assert table["availability_pct"].iloc[0] == 99.712
    assert table["csat_top2_pct"].iloc[0] == 60.1 and table["latency_p95_ms"].iloc[0] == 640
    assert set(table["currency"]) == {"USD"}
    text = table.to_csv(index=False)
    assert "-0.0" not in proposal_table(predictions().assign(monthly_cost=-0.0)).to_csv()
    assert not re.search(r"\d\.\d{4,}", text)


def test_currency_defaults_to_eur_and_can_be_configured(tmp_path):
    assert load_config(None).currency == "EUR"
    path = tmp_path / "satmodel.toml"
    path.write_text('[costs]\ncurrency = "USD"\n')
    config = load_config(path)
    assert config.currency == "USD" and "currency" not in config.costs
    path.write_text('[costs]\ncurrency = "=1+1"\n')
    with pytest.raises(InputError, match="costs.currency"):
        load_config(path)


def _plans(feasible=True, caveat=""):
    """A CSAT plan as cheapest_plans returns it: latency changed, availability kept."""
    return pd.DataFrame(
        {
            "target_of": ["CSAT", "CSAT"],
            "lever": ["availability", "p95 latency"],
            "planned": [99.96, 69.45],
            "change": [0.0, -239.7],
            "caveat": ["", caveat],
            "total_cost": [47_939.0, 47_939.0],
            "feasible": [feasible, feasible],
        }
    )


def test_a_page_whose_tiers_fall_short_names_the_made_to_measure_levels():
    frame = predictions(meets=("no",) * 4)
    page = proposal_page(offer(frame), plans=_plans(caveat=" (beyond anything observed)")).data
    assert (
        "made to measure" in page and "response time 69 ms" in page and "EUR 48,000 a month" in page
    )
    assert "beyond anything we have measured" in page and "availability 99.96" not in page
    assert "made to measure" not in proposal_page(offer(frame), plans=_plans(False)).data
    # a tier that meets the target needs no tailored level
    assert "made to measure" not in proposal_page(offer(predictions()), plans=_plans()).data
