"""The proposal's loyalty outlook: the NPS the customer gives us now and what each tier buys.

The observed NPS pools the month's answers of the subject's customers (as the CSAT the
customer reports now does). The expected NPS comes from the NPS model
(:func:`satmodel.insights.loyalty.fit_nps_model`: detractor < passive < promoter) through the
same what-if as the CSAT predictions, with each tier's service levels set in the subject's
customer-months. Without NPS answers everything here is empty and the proposal says nothing
about it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from satmodel.errors import SatmodelError
from satmodel.reporting.data import ReportData
from satmodel.reporting.proposal import TIER_LEVERS, ProposalRequest

# the NPS groups are scored 0, 1, 2: their model's expected score is 1 + NPS / 100
_NPS_SCALE = 100.0
_PROMOTER = 2


@dataclass
class LoyaltyOutlook:
    """The subject's NPS now and the NPS each tier is expected to give.

    Attributes
    ----------
    now : the NPS of the month's answers (-100 to 100), NaN without answers.
    answers : how many NPS answers ``now`` pools.
    tiers : tier, nps, nps_ci_low, nps_ci_high (95%), promoters_pct; one row per row of the
        tier predictions (``Current service`` first); empty without answers or model.
    recommended : the recommended tier (the offer's), None without one.
    """

    now: float
    answers: int
    tiers: pd.DataFrame
    recommended: str | None


TIER_NPS_COLUMNS = ["tier", "nps", "nps_ci_low", "nps_ci_high", "promoters_pct"]


def observed_nps(data: ReportData, request: ProposalRequest) -> tuple[float, int]:
    """The NPS of the subject's answers in the report month and their number (NaN, 0: none)."""
    month = data.panel.loc[data.panel["month"].astype(str) == data.month]
    if request.segment:
        rows = month.loc[month["segment"].astype(str) == request.segment]
    else:
        rows = month.loc[month["customer_id"].astype(str) == str(request.customer)]
    if not {"nps_n", "nps_score"} <= set(rows.columns):
        return math.nan, 0
    answers = pd.to_numeric(rows["nps_n"], errors="coerce").fillna(0)
    scores = pd.to_numeric(rows["nps_score"], errors="coerce")
    answered = (answers > 0) & scores.notna()
    total = int(answers[answered].sum())
    if total == 0:
        return math.nan, 0
    return float((scores[answered] * answers[answered]).sum() / total), total


def tier_nps(
    data: ReportData,
    request: ProposalRequest,
    predictions: pd.DataFrame,
    n_sim: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Expected NPS of the current service and of each tier, with 95% intervals.

    Fits the NPS model on the survey answers (within-customer unless ``[models]
    identification`` is pooled) and sets each row's service levels of ``predictions``
    (:func:`~satmodel.reporting.proposal.tier_predictions`) in the subject's customer-months.

    Returns
    -------
    DataFrame
        tier, nps, nps_ci_low, nps_ci_high, promoters_pct; empty without NPS answers (and,
        with a note in ``data.notes``, when the model cannot be fitted).
    """
    from satmodel.insights.loyalty import fit_nps_model
    from satmodel.insights.whatif import what_if

    responses = data.responses
    if (
        predictions.empty
        or responses is None
        or "nps" not in responses
        or pd.to_numeric(responses["nps"], errors="coerce").notna().sum() == 0
    ):
        return pd.DataFrame(columns=TIER_NPS_COLUMNS)
    levers = [lever for lever in TIER_LEVERS if lever in data.panel]
    scenarios = [
        {"scenario": str(row["tier"]), **{lever: float(row[lever]) for lever in levers}}
        for _, row in predictions.iloc[1:].iterrows()
    ]
    pooled = data.config.models.identification == "pooled"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = fit_nps_model(responses, within=None if pooled else "customer_id")
            # the group model sits where what_if looks for the CSAT model: its mean outcome
            # is the expected group score, its top share (cut at promoter) the promoters
            result = what_if(
                {"csat": model},
                data.panel,
                scenarios,
                segment=request.segment,
                customer=request.customer,
                n_sim=n_sim,
                seed=seed,
                satisfied_cutoff=_PROMOTER,
                guarantee=True,
            )
    except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
        data.notes.append(f"likelihood to recommend: not predicted ({exc})")
        return pd.DataFrame(columns=TIER_NPS_COLUMNS)
    return pd.DataFrame(
        {
            "tier": predictions["tier"].astype(str).to_numpy(),
            "nps": _NPS_SCALE * (result["csat_mean"].to_numpy(float) - 1.0),
            "nps_ci_low": _NPS_SCALE * (result["csat_mean_ci_low"].to_numpy(float) - 1.0),
            "nps_ci_high": _NPS_SCALE * (result["csat_mean_ci_high"].to_numpy(float) - 1.0),
            "promoters_pct": 100.0 * result["csat_top2_rate"].to_numpy(float),
        }
    )[TIER_NPS_COLUMNS]


def loyalty_outlook(
    data: ReportData,
    request: ProposalRequest,
    predictions: pd.DataFrame,
    recommended: str | None,
    n_sim: int = 1000,
    seed: int = 0,
) -> LoyaltyOutlook:
    """The subject's NPS now and per tier (see :class:`LoyaltyOutlook`).

    The tiers are predicted only when the subject answered the NPS question in the report
    month: the appendix sets the prediction beside what the customer says now.

    Parameters
    ----------
    recommended : the recommended tier's name (``offer.recommended.tier``), or None.
    """
    now, answers = observed_nps(data, request)
    tiers = tier_nps(data, request, predictions, n_sim=n_sim, seed=seed) if answers else None
    return LoyaltyOutlook(
        now=now,
        answers=answers,
        tiers=tiers if tiers is not None else pd.DataFrame(columns=TIER_NPS_COLUMNS),
        recommended=recommended,
    )


def _expected(outlook: LoyaltyOutlook) -> pd.Series | None:
    rows = outlook.tiers.loc[outlook.tiers["tier"] == outlook.recommended]
    return rows.iloc[0] if len(rows) else None


def loyalty_summary(outlook: LoyaltyOutlook) -> dict:
    """The outlook for ``summary.json``.

    Keys: nps_now (null without answers), nps_answers, nps_expected (the recommended tier's
    tier, nps, nps_ci_low, nps_ci_high, promoters_pct; null without a prediction).
    """
    expected = _expected(outlook)
    return {
        "nps_now": outlook.now if outlook.answers else None,
        "nps_answers": outlook.answers,
        "nps_expected": expected.to_dict() if expected is not None else None,
    }


def _signed(value: float) -> str:
    return f"{value:+.0f}"


def loyalty_text(outlook: LoyaltyOutlook) -> str:
    """The outlook in plain words for the account team; empty without NPS answers."""
    if not outlook.answers:
        return ""
    text = (
        f"How likely the customers are to recommend us (net promoter score, -100 to +100: "
        f"the share of 9-10 answers minus the share of 0-6 answers): {_signed(outlook.now)} "
        f"this month, from {outlook.answers:,} answers."
    )
    expected = _expected(outlook)
    if expected is not None:
        text += (
            f" With the recommended {expected['tier']} service we expect "
            f"{_signed(expected['nps'])} (95% range {_signed(expected['nps_ci_low'])} to "
            f"{_signed(expected['nps_ci_high'])}), with {expected['promoters_pct']:.0f}% of "
            "answers at 9 or 10."
        )
    return text
