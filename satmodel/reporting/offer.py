"""The offer a proposal makes: one recommended service level, two alternatives, their prices.

:func:`build_offer` turns the tier predictions of :mod:`satmodel.reporting.proposal` into an
:class:`Offer`: who it is for (by name), the service they get today and the one they told us
they expect, the recommended tier with its monthly price and the satisfaction and complaint
rate it buys (with 95% ranges), a cheaper and a safer alternative, the date and the validity.
:mod:`satmodel.reporting.proposal_page` renders it for the customer and for the account team.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from satmodel.config import DEFAULT_CURRENCY
from satmodel.reporting.data import ReportData
from satmodel.reporting.labels import segment_label
from satmodel.reporting.proposal import (
    TIER_LEVERS,
    ProposalRequest,
    observed_levels,
    recommended_tier,
)

VALIDITY_DAYS = 30
EXPECTED_COLUMNS = {
    "availability_pct": "expected_availability_pct",
    "latency_p95_ms": "expected_latency_p95_ms",
    "resolution_hours_median": "expected_resolution_hours",
}


@dataclass(frozen=True)
class ServiceOption:
    """One service level on offer and what it is predicted to buy.

    Attributes
    ----------
    role : ``recommended``, ``cheaper`` or ``safer``.
    tier : the tier's name (``Current service`` for today's service).
    levels : availability_pct, latency_p95_ms, resolution_hours_median -> committed level.
    monthly_price : the extra monthly price over today's service (NaN when unknown), rounded
        up by :func:`round_price`.
    csat, csat_low, csat_high : predicted mean CSAT and its 95% range.
    satisfied_pct, satisfied_low, satisfied_high : predicted share of 4-5 scores (%).
    complaints, complaints_low, complaints_high : complaints per 1,000 users a month.
    meets_csat, meets_complaints : ``yes``, ``likely``, ``no`` or ``-`` (no target).
    """

    role: str
    tier: str
    levels: dict[str, float]
    monthly_price: float
    csat: float
    csat_low: float
    csat_high: float
    satisfied_pct: float
    satisfied_low: float
    satisfied_high: float
    complaints: float
    complaints_low: float
    complaints_high: float
    meets_csat: str
    meets_complaints: str

    @property
    def meets_targets(self) -> bool:
        """True when the prediction reaches every target (``yes`` or ``likely``)."""
        return self.meets_csat in ("yes", "likely") and self.meets_complaints != "no"


@dataclass(frozen=True)
class Offer:
    """Everything the customer page and the account team's appendix show.

    Attributes
    ----------
    addressee : the customer's name (``customers.name``), else its id; for a segment, e.g.
        ``Mid-market customers``.
    segment, customer : as requested (the customer as the data names it: a pseudonym in a
        pseudonymised run).
    issued, valid_until : the proposal's date and the last day it is valid.
    currency : ``[costs] currency`` of the config.
    csat_target, complaint_target : what the customer expects (complaints may be None).
    today : today's service levels (availability_pct, latency_p95_ms, resolution_hours_median).
    expected : the levels the customer told us it expects (NaN where it did not say).
    csat_now : the model's mean CSAT for the customer's months now (what it reports now).
    csat_observed, responses : the mean survey score of the month and the number of answers.
    today_option : the current service as a :class:`ServiceOption` (price 0).
    recommended : the recommended option (None without predictions).
    cheaper, safer : the alternatives (None when there is none).
    customers, months : how many customers and months the estimates learned from.
    observed : lever -> the lowest and highest level in the data (for
        :func:`~satmodel.reporting.labels.level_caveat`).
    """

    addressee: str
    segment: str | None
    customer: str | None
    issued: date
    valid_until: date
    currency: str
    csat_target: float
    complaint_target: float | None
    today: dict[str, float]
    expected: dict[str, float]
    csat_now: float
    csat_observed: float
    responses: int
    today_option: ServiceOption | None
    recommended: ServiceOption | None
    cheaper: ServiceOption | None
    safer: ServiceOption | None
    customers: int = 0
    months: int = 0
    notes: list[str] = field(default_factory=list)
    observed: dict[str, tuple[float, float]] = field(default_factory=dict)


def round_price(value: float) -> float:
    """A price as a quote shows it: rounded up to three significant digits (at least to 10).

    Examples
    --------
    >>> round_price(12_345.6), round_price(87.2), round_price(0.0)
    (12400.0, 90.0, 0.0)
    """
    if not math.isfinite(value) or value <= 0:
        return value if math.isfinite(value) else math.nan
    step = max(10.0, 10.0 ** (math.floor(math.log10(value)) - 2))
    return float(math.ceil(round(value / step, 9)) * step)


def service_option(row: pd.Series, role: str) -> ServiceOption:
    """A :class:`ServiceOption` from one row of the tier predictions."""

    def number(column: str) -> float:
        value = row.get(column, math.nan)
        return float(value) if value is not None and pd.notna(value) else math.nan

    return ServiceOption(
        role=role,
        tier=str(row["tier"]),
        levels={lever: number(lever) for lever in TIER_LEVERS},
        monthly_price=round_price(number("monthly_cost")),
        csat=number("csat_mean"),
        csat_low=number("csat_mean_ci_low"),
        csat_high=number("csat_mean_ci_high"),
        satisfied_pct=number("csat_top2_pct"),
        satisfied_low=number("csat_top2_ci_low"),
        satisfied_high=number("csat_top2_ci_high"),
        complaints=number("complaint_rate_per_1k"),
        complaints_low=number("complaint_ci_low"),
        complaints_high=number("complaint_ci_high"),
        meets_csat=str(row["meets_csat"]),
        meets_complaints=str(row["meets_complaints"]),
    )


def choose_options(
    predictions: pd.DataFrame,
) -> tuple[pd.Series | None, pd.Series | None, pd.Series | None]:
    """The recommended tier and the cheaper and safer alternatives, as prediction rows.

    The recommendation is :func:`~satmodel.reporting.proposal.recommended_tier` (the
    cheapest option meeting every target: today's service when it does, with the cheapest
    tier as the safer alternative); when no option does, the tier with the highest
    predicted CSAT, or today's service (no alternatives) when no tier is predicted above it. The cheaper alternative is the next tier down by price (today's service
    when the recommendation is the cheapest tier), the safer one the next tier up (None when
    the recommendation is the best tier there is).
    """
    if predictions.empty:
        return None, None, None
    tiers = predictions.iloc[1:].copy()
    if tiers.empty:
        return None, None, None
    tiers["_order"] = np.arange(len(tiers))
    if tiers["monthly_cost"].notna().all():
        tiers = tiers.sort_values(["monthly_cost", "_order"], kind="stable")
    today = predictions.iloc[0]
    chosen = recommended_tier(predictions)
    if chosen is None:
        best = tiers.loc[tiers["csat_mean"].astype(float).idxmax()]
        if not float(best["csat_mean"]) > float(today["csat_mean"]):
            return today, None, None  # no tier would raise the score: nothing to sell
        chosen = str(best["tier"])
    if chosen == str(today["tier"]):  # today's service already does it
        return today, None, tiers.iloc[0]
    names = list(tiers["tier"].astype(str))
    at = names.index(chosen)
    cheaper = tiers.iloc[at - 1] if at > 0 else predictions.iloc[0]
    safer = tiers.iloc[at + 1] if at + 1 < len(tiers) else None
    return tiers.iloc[at], cheaper, safer


def addressee_name(data: ReportData, request: ProposalRequest) -> str:
    """Who the proposal is addressed to: ``customers.name`` when set, else the customer id.

    A pseudonymised run never shows a name: the pseudonym stands for the customer.
    """
    if request.segment:
        return f"{segment_label(request.segment)} customers"
    customer = str(request.customer)
    if data.pseudonymised or not data.source.has("customers"):
        return customer
    customers = data.source.frame("customers")
    if "name" not in customers.columns:
        return customer
    names = customers.loc[customers["customer_id"].astype(str) == customer, "name"].dropna()
    names = [str(n).strip() for n in names if str(n).strip()]
    return names[0] if names else customer


def _subject_rows(data: ReportData, request: ProposalRequest) -> pd.DataFrame:
    month = data.panel.loc[data.panel["month"].astype(str) == data.month]
    if request.segment:
        return month.loc[month["segment"].astype(str) == request.segment]
    return month.loc[month["customer_id"].astype(str) == str(request.customer)]


def _median(rows: pd.DataFrame, column: str) -> float:
    if column not in rows:
        return math.nan
    values = pd.to_numeric(rows[column], errors="coerce").dropna()
    return float(values.median()) if len(values) else math.nan


def build_offer(
    data: ReportData,
    request: ProposalRequest,
    predictions: pd.DataFrame,
    issued: date | None = None,
    validity_days: int = VALIDITY_DAYS,
) -> Offer:
    """The proposal's offer (see :class:`Offer`).

    Parameters
    ----------
    data, request, predictions : as for :func:`~satmodel.reporting.proposal.tier_predictions`.
    issued : the proposal's date (default: today).
    validity_days : how long the offer holds.
    """
    issued = issued or date.today()
    rows = _subject_rows(data, request)
    answers = pd.to_numeric(rows.get("csat_n", pd.Series(dtype=float)), errors="coerce")
    scores = pd.to_numeric(rows.get("csat_mean", pd.Series(dtype=float)), errors="coerce")
    answered = answers.fillna(0) > 0
    responses = int(answers[answered].sum()) if answered.any() else 0
    observed = (
        float((scores[answered] * answers[answered]).sum() / responses) if responses else math.nan
    )
    recommended, cheaper, safer = choose_options(predictions)
    today_option = service_option(predictions.iloc[0], "today") if len(predictions) else None
    if today_option is not None and math.isfinite(today_option.monthly_price):
        today_option = ServiceOption(**{**asdict(today_option), "monthly_price": 0.0})
    return Offer(
        addressee=addressee_name(data, request),
        segment=request.segment,
        customer=request.customer,
        issued=issued,
        valid_until=issued + timedelta(days=validity_days),
        currency=str(getattr(data.config, "currency", DEFAULT_CURRENCY)),
        csat_target=request.csat_target,
        complaint_target=request.complaint_target,
        today=dict(today_option.levels) if today_option else {},
        expected={lever: _median(rows, column) for lever, column in EXPECTED_COLUMNS.items()},
        csat_now=today_option.csat if today_option else math.nan,
        csat_observed=observed,
        responses=responses,
        today_option=today_option,
        recommended=service_option(recommended, "recommended") if recommended is not None else None,
        cheaper=(
            (
                today_option
                if cheaper.name == predictions.index[0]
                else service_option(cheaper, "cheaper")
            )
            if cheaper is not None
            else None
        ),
        safer=service_option(safer, "safer") if safer is not None else None,
        customers=int(data.panel["customer_id"].nunique()),
        months=int(data.panel["month"].nunique()),
        observed=observed_levels(data),
    )


def offer_summary(offer: Offer) -> dict[str, Any]:
    """The offer for ``summary.json``: csat_now, the recommendation and the alternatives.

    Keys: addressee, issued, valid_until, currency, csat_now, csat_observed, responses,
    recommendation (tier, levels, monthly_price, csat with ci, satisfied_pct, complaints,
    meets_csat, meets_complaints, meets_targets), alternatives (cheaper, safer).
    """

    def option(value: ServiceOption | None) -> dict[str, Any] | None:
        if value is None:
            return None
        return {**asdict(value), "meets_targets": value.meets_targets}

    return {
        "addressee": offer.addressee,
        "issued": offer.issued.isoformat(),
        "valid_until": offer.valid_until.isoformat(),
        "currency": offer.currency,
        "csat_now": offer.csat_now,
        "csat_observed": offer.csat_observed,
        "responses": offer.responses,
        "recommendation": option(offer.recommended),
        "alternatives": {"cheaper": option(offer.cheaper), "safer": option(offer.safer)},
    }
