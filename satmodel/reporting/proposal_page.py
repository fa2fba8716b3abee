"""The proposal as people read it: one printed page for the customer, an appendix for the team.

:func:`proposal_page` renders an :class:`~satmodel.reporting.offer.Offer` as the customer's
page (plain words: no module, command, file or model names; one A4 or Letter page when
printed). :func:`write_appendix` keeps the technical detail (every tier, the required levels,
the cheapest plan, model notes) in ``proposal_appendix.html`` for the account team, and
:func:`proposal_table` is ``proposal.csv``: numbers rounded, empty cells where a value does
not apply.
"""

from __future__ import annotations

import base64
import io
import math
import os
from pathlib import Path

import pandas as pd

from satmodel.reporting.display import show
from satmodel.reporting.labels import LEVER_NAMES, availability_digits, escape_label, level_caveat
from satmodel.reporting.offer import Offer, ServiceOption, round_price
from satmodel.reporting.proposal import TIER_LEVERS, plan_sentence
from satmodel.reporting.proposal_nps import LoyaltyOutlook, loyalty_text

APPENDIX_NAME = "proposal_appendix.html"
MEASURES = {
    "availability_pct": "Availability",
    "latency_p95_ms": "Response time (95% of requests within)",
    "resolution_hours_median": "Ticket resolution time (median)",
}
# proposal.csv: decimals kept per column (by name prefix).
CSV_DIGITS = {
    "availability_pct": 3,
    "latency_p95_ms": 0,
    "resolution_hours_median": 1,
    "csat_mean": 2,
    "csat_top2": 1,
    "complaint": 2,
    "monthly_cost": 0,
}
VERDICTS = {
    "yes": "Yes, even at the cautious end of the range",
    "likely": "Likely: the estimate does, the range reaches below",
    "no": "No",
    "-": "No target set",
}

# Scoped to .satmodel-proposal; sized so the page fits A4 (210 mm wide) and Letter (11 in
# high) with the print margins of the report template.
PAGE_CSS = """
.satmodel-proposal { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #222; max-width: 46em; font-size: 14px; line-height: 1.4; }
.satmodel-proposal h1 { font-size: 1.7em; margin: 0 0 0.1em 0; border: none; }
.satmodel-proposal h2 { font-size: 1.1em; margin: 0.9em 0 0.3em 0; color: #1f4e79; }
.satmodel-proposal .kicker { text-transform: uppercase; letter-spacing: 0.08em;
  font-size: 0.8em; color: #3b6ea8; }
.satmodel-proposal .meta { color: #555; margin: 0 0 0.6em 0; }
.satmodel-proposal table.offer-table { border-collapse: collapse; width: 100%;
  font-size: 0.95em; table-layout: auto; margin: 0; }
.satmodel-proposal table.offer-table th, .satmodel-proposal table.offer-table td {
  border: none; border-bottom: 1px solid #ddd; padding: 0.25em 0.4em; text-align: left;
  vertical-align: top; overflow-wrap: break-word; max-width: none; }
.satmodel-proposal table.offer-table th { background: #f2f5f9; font-weight: 600; }
.satmodel-proposal table.offer-table td.num { text-align: right; white-space: nowrap; }
.satmodel-proposal .offer { border: 2px solid #3b6ea8; border-radius: 6px;
  padding: 0.5em 0.9em; margin: 0.8em 0; break-inside: avoid; }
.satmodel-proposal .offer h2 { margin-top: 0.2em; }
.satmodel-proposal .price { font-size: 1.5em; font-weight: 600; color: #1f4e79; }
.satmodel-proposal .price span { font-size: 0.6em; font-weight: normal; color: #555; }
.satmodel-proposal .method, .satmodel-proposal footer { font-size: 0.85em; color: #444; }
.satmodel-proposal footer { border-top: 1px solid #ccc; margin-top: 0.8em;
  padding-top: 0.3em; }
@media print {
  .satmodel-proposal { font-size: 10pt; max-width: none; }
  .satmodel-proposal h2 { margin-top: 0.6em; }
}
"""


def _text(value) -> str:
    return escape_label(value, "html", None)


def _day(day) -> str:
    """``1 June 2025``."""
    return f"{day.day} {day:%B %Y}"


def _level(lever: str, value: float) -> str:
    """A service level in words: ``99.95%``, ``300 ms``, ``4 h``."""
    if not math.isfinite(value):
        return "not stated"
    if lever == "availability_pct":
        if value >= 100.0:
            return "100%"
        return f"{value:.{availability_digits(value)}f}".rstrip("0").rstrip(".") + "%"
    if lever == "latency_p95_ms":
        return f"{value:,.0f} ms"
    return (f"{value:.1f}".rstrip("0").rstrip(".") if value < 10 else f"{value:,.0f}") + " h"


def _range(value: float, low: float, high: float, digits: int, unit: str = "") -> str:
    if not math.isfinite(value):
        return "not estimated"
    text = f"{value:,.{digits}f}{unit}"
    if math.isfinite(low) and math.isfinite(high):
        text += f" ({low:,.{digits}f}\u2013{high:,.{digits}f})"
    return text


def _price(option: ServiceOption, currency: str) -> str:
    if not math.isfinite(option.monthly_price):
        return "on request"
    if option.monthly_price == 0:
        return "no change"
    return f"{_text(currency)} {option.monthly_price:,.0f}"


def _wants(offer: Offer) -> str:
    text = f"an average satisfaction score of at least <b>{offer.csat_target:.1f} out of 5</b>"
    if offer.complaint_target is not None:
        text += f" and at most <b>{offer.complaint_target:g} complaints per 1,000 users</b> a month"
    return text


def _service_table(offer: Offer) -> str:
    chosen = offer.recommended
    rows = []
    for lever, name in MEASURES.items():
        today = _level(lever, offer.today.get(lever, math.nan))
        wanted = _level(lever, offer.expected.get(lever, math.nan))
        new = _level(lever, chosen.levels[lever]) if chosen else "-"
        rows.append(
            f"<tr><td>{name}</td><td class='num'>{today}</td><td class='num'>{wanted}</td>"
            f"<td class='num'><b>{new}</b></td></tr>"
        )
    now = offer.today_option
    survey = (
        "<p class='method'>Today's figures are our estimates for your months; your users' "
        f"survey answers this month averaged {offer.csat_observed:.2f} ({offer.responses:,} "
        "answers).</p>"
        if offer.responses
        else ""
    )
    if now is not None:
        rows.append(
            "<tr><td>Satisfaction (average score, 1\u20135)</td>"
            f"<td class='num'>{_range(now.csat, now.csat_low, now.csat_high, 2)}</td>"
            f"<td class='num'>at least {offer.csat_target:.1f}</td>"
            f"<td class='num'><b>{_range(chosen.csat, chosen.csat_low, chosen.csat_high, 2) if chosen else '-'}</b></td></tr>"
        )
        target = (
            f"at most {offer.complaint_target:g}" if offer.complaint_target is not None else "-"
        )
        rows.append(
            "<tr><td>Complaints per 1,000 users a month</td>"
            f"<td class='num'>{_range(now.complaints, now.complaints_low, now.complaints_high, 1)}</td>"
            f"<td class='num'>{target}</td>"
            f"<td class='num'><b>{_range(chosen.complaints, chosen.complaints_low, chosen.complaints_high, 1) if chosen else '-'}</b></td></tr>"
        )
    return (
        "<table class='offer-table'><thead><tr><th>Measure</th><th>Today</th><th>You expect</th>"
        "<th>Recommended</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>" + survey
    )


def _tailored(offer: Offer, plans: pd.DataFrame | None) -> str:
    """One sentence on the cheapest made-to-measure levels reaching the CSAT target, or ``""``.

    For a page whose tiers fall short: the plan of :func:`~satmodel.reporting.proposal.
    cheapest_plans`, only the levels it changes, its price rounded as the tiers' are.
    """
    if plans is None or not len(plans):
        return ""
    plan = plans.loc[plans["target_of"] == "CSAT"]
    if not len(plan) or not bool(plan["feasible"].iloc[0]):
        return ""
    keys = {LEVER_NAMES.get(key, (key,))[0]: key for key in MEASURES}
    changed = [
        row
        for row in plan.itertuples(index=False)
        if row.lever in keys and abs(float(row.change)) > 1e-9
    ]
    if not changed:
        return ""
    levels = ", ".join(
        f"{MEASURES[keys[row.lever]].split(' (')[0].lower()} "
        f"{_level(keys[row.lever], float(row.planned))}"
        + (" (beyond anything we have measured so far)" if row.caveat else "")
        for row in changed
    )
    price = round_price(float(plan["total_cost"].iloc[0]))
    cost = f" for about {_text(offer.currency)} {price:,.0f} a month" if price > 0 else ""
    return (
        f"<p>A service level made to measure could reach your target: {levels}{cost}. "
        "Your account team can quote it.</p>"
    )


def _recommendation(
    offer: Offer, commitments: pd.DataFrame | None = None, plans: pd.DataFrame | None = None
) -> str:
    chosen = offer.recommended
    if chosen is None:
        return (
            "<div class='offer'><h2>Our recommendation</h2><p>We cannot estimate the effect "
            "of a service change for you yet; your account team will contact you.</p></div>"
        )
    promised = ", ".join(
        f"{MEASURES[lever].split(' (')[0].lower()} {_level(lever, chosen.levels[lever])}"
        + level_caveat(lever, chosen.levels[lever], offer.observed.get(lever))
        for lever in TIER_LEVERS
    )
    if offer.today_option is not None and chosen.tier == offer.today_option.tier:
        expected = (
            f"an average satisfaction score of "
            f"<b>{_range(chosen.csat, chosen.csat_low, chosen.csat_high, 2)}</b> and "
            f"{_range(chosen.complaints, chosen.complaints_low, chosen.complaints_high, 1)} "
            "complaints per 1,000 users a month (95% ranges in brackets)"
        )
        if chosen.meets_targets:
            said = (
                f"Your current service is expected to meet your target: {expected}. The "
                "safer alternative below adds a committed service level for more certainty."
            )
        else:
            said = (
                "None of our service levels is expected to raise your satisfaction above what "
                f"your current service gives: {expected}. Your account team can discuss what "
                "else would help you reach your target."
            )
        return (
            "<div class='offer'><h2>Our recommendation: keep your current service</h2>"
            f"<div class='price'>no extra cost</div><p>{said}</p>"
            f"{'' if chosen.meets_targets else _tailored(offer, plans)}</div>"
        )
    if chosen.meets_targets:
        verdict = (
            "This meets your target even at the cautious end of the range."
            if chosen.meets_csat == "yes"
            else "Our central estimate meets your target; the range reaches a little below it."
        )
    else:
        verdict = (
            "No service level we offer is expected to reach your target on its own; this is "
            "the closest. Your account team can discuss what else would help."
        )
    return (
        f"<div class='offer'><h2>Our recommendation: {_text(chosen.tier)}</h2>"
        f"<div class='price'>{_price(chosen, offer.currency)} "
        "<span>per month on top of your current service</span></div>"
        f"<p>We commit to {promised}. We expect an average satisfaction score of "
        f"<b>{_range(chosen.csat, chosen.csat_low, chosen.csat_high, 2)}</b>, "
        f"{_range(chosen.satisfied_pct, chosen.satisfied_low, chosen.satisfied_high, 0, '%')} "
        "of answers scoring 4 or 5, and "
        f"{_range(chosen.complaints, chosen.complaints_low, chosen.complaints_high, 1)} "
        f"complaints per 1,000 users a month (95% ranges in brackets). {verdict}</p>"
        f"{'' if chosen.meets_targets else _tailored(offer, plans)}"
        f"{_parts_line(chosen, commitments)}</div>"
    )


def _parts_line(chosen: ServiceOption, commitments: pd.DataFrame | None, top: int = 3) -> str:
    """One sentence: the availability the main parts of the service must hold ('' without)."""
    if commitments is None or commitments.empty:
        return ""
    shown = commitments.head(top)
    parts = [
        f"{_text(name)} {_level('availability_pct', value)}"
        for name, value in zip(shown["name"], shown["availability_pct"], strict=True)
    ]
    listed = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    rest = len(commitments) - len(shown)
    others = f" (and {rest} smaller part{'s' if rest > 1 else ''})" if rest else ""
    return (
        f"<p>To deliver {_level('availability_pct', chosen.levels['availability_pct'])} end "
        "to end, each part of the service is held to its share of the downtime allowed: "
        f"{listed}{others}.</p>"
    )


def _alternatives(offer: Offer) -> str:
    rows = []
    for title, option in (("Cheaper", offer.cheaper), ("Safer", offer.safer)):
        if option is None:
            continue
        name = "Keep today's service" if option.role == "today" else option.tier
        levels = " / ".join(_level(lever, option.levels[lever]) for lever in TIER_LEVERS)
        rows.append(
            f"<tr><td><b>{title}</b>: {_text(name)}</td><td>{levels}</td>"
            f"<td class='num'>{_price(option, offer.currency)}</td>"
            f"<td class='num'>{_range(option.csat, option.csat_low, option.csat_high, 2)}</td>"
            f"<td class='num'>{_range(option.complaints, option.complaints_low, option.complaints_high, 1)}</td>"
            f"<td>{VERDICTS.get(option.meets_csat, option.meets_csat)}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<h2>Alternatives</h2><table class='offer-table'><thead><tr><th>Option</th>"
        "<th>Availability / response time / resolution</th><th>Price per month</th>"
        "<th>Satisfaction (range)</th><th>Complaints per 1,000 (range)</th>"
        "<th>Meets your satisfaction target</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _method(offer: Offer) -> str:
    return (
        "<h2>How we estimated this</h2><p class='method'>We compared the service each of our "
        f"{offer.customers:,} customers received over {offer.months} months with their users' "
        "satisfaction surveys and complaints, and estimated how availability, response time "
        "and ticket resolution time move both, allowing for the differences between "
        "customers. Each figure is our central estimate; the range in brackets holds the true "
        "value with 95% confidence. The estimates assume your users respond to better service "
        "as similar customers' users have, with everything else kept as it is today. Prices "
        "are the extra monthly cost of the higher service level over your current one.</p>"
    )


def proposal_page(
    offer: Offer, commitments: pd.DataFrame | None = None, plans: pd.DataFrame | None = None
):
    """The customer's one-page proposal, as IPython HTML (see the module docstring).

    Parameters
    ----------
    offer : the offer.
    commitments : :func:`satmodel.reporting.components.proposal_commitments`: the
        availability each part of the service must hold (one sentence); None: left out.
    plans : :func:`satmodel.reporting.proposal.cheapest_plans`: when no tier reaches the
        target, the page names the made-to-measure levels that would; None: left out.
    """
    from IPython.display import HTML

    body = (
        f"<style>{PAGE_CSS}</style><article class='satmodel-proposal'>"
        "<div class='kicker'>Service proposal</div>"
        f"<h1>{_text(offer.addressee)}</h1>"
        f"<p class='meta'>{_day(offer.issued)} &middot; valid until "
        f"{_day(offer.valid_until)} &middot; prices in {_text(offer.currency)}</p>"
        f"<p>You asked us for {_wants(offer)}. Here is the service level we recommend, "
        "what it costs and what it is expected to bring.</p>"
        "<h2>Your service today, what you expect, what we recommend</h2>"
        + _service_table(offer)
        + _recommendation(offer, commitments, plans)
        + _alternatives(offer)
        + _method(offer)
        + f"<footer>This offer is valid until {_day(offer.valid_until)}. Prices are per "
        f"month in {_text(offer.currency)}.</footer></article>"
    )
    return HTML(body)


def proposal_table(predictions: pd.DataFrame, currency: str = "EUR") -> pd.DataFrame:
    """``proposal.csv``: one row per tier, numbers rounded, empty cells where not applicable.

    CSAT to 2 decimals, shares to 1, complaint rates to 2, prices to whole units (column
    ``monthly_cost``, in ``currency``); a verdict without a target is empty, not ``-``.
    """
    out = predictions.copy()
    for column in out.columns:
        digits = next((d for prefix, d in CSV_DIGITS.items() if column.startswith(prefix)), None)
        if digits is not None:
            out[column] = pd.to_numeric(out[column], errors="coerce").round(digits) + 0.0
    for column in ("meets_csat", "meets_complaints"):
        out[column] = out[column].where(out[column] != "-", None)
    out["currency"] = currency
    return out


def _figure_png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def appendix_html(
    offer: Offer,
    predictions: pd.DataFrame,
    requirements: pd.DataFrame,
    plans: pd.DataFrame,
    notes: list[str],
    figure=None,
    loyalty: LoyaltyOutlook | None = None,
    commitments: pd.DataFrame | None = None,
) -> str:
    """The account team's appendix: every tier, the required levels, the cheapest plan, notes.

    A self-contained HTML page (the figure embedded as a data URI, nothing loaded from
    elsewhere); technical terms allowed, it does not go to the customer. With ``loyalty``
    (:func:`~satmodel.reporting.proposal_nps.loyalty_outlook`) and NPS answers, a section on
    how likely the customers are to recommend us now and with each tier. With
    ``commitments`` (:func:`satmodel.reporting.components.proposal_commitments`) it also
    lists every component's availability commitment.
    """
    from satmodel.reporting.proposal import tier_view

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Internal appendix: proposal for {_text(offer.addressee)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:1em auto;"
        "padding:0 1em}table{border-collapse:collapse;font-size:13px;margin:.5em 0 1.2em}"
        "th,td{border-bottom:1px solid #ddd;padding:2px 6px}img{max-width:100%}"
        "@media print{table{font-size:9pt}h2{break-before:page}}</style></head><body>",
        f"<h1>Internal appendix: proposal for {_text(offer.addressee)}</h1>",
        "<p><b>For the account team only; not for the customer.</b> Segment "
        f"{_text(offer.segment or '-')}, customer {_text(offer.customer or '-')}, issued "
        f"{offer.issued.isoformat()}, valid until {offer.valid_until.isoformat()}, prices in "
        f"{_text(offer.currency)}. Predictions: what-if of the CSAT (ordinal logit), "
        "satisfied-share and complaint (negative binomial, exposure active users) models; "
        "the other drivers held at the subject's values in the last month.</p>",
    ]
    if figure is not None:
        parts.append(
            f"<img src='data:image/png;base64,{_figure_png(figure)}' "
            "alt='Predicted CSAT and complaints per tier with 95% intervals and the targets'>"
        )
    targets = dict.fromkeys(plans["target_of"]) if "target_of" in plans else {}
    sentences = (plan_sentence(plans, target_of) for target_of in targets)
    parts += [f"<p>{_text(sentence)}</p>" for sentence in sentences if sentence]
    tables = [
        (tier_view(predictions), "Predictions per tier (95% intervals in brackets)", 2),
        (requirements, "Required level of each measure per tier (inverse solver)", 2),
        (plans, "Cheapest plan per target", 2),
    ]
    if commitments is not None:
        tables.append(
            (
                commitments.assign(downtime_share_pct=100 * commitments["share"]).drop(
                    columns="share"
                ),
                "Component commitments for the recommended availability (downtime budget "
                "shared by each component's downtime today)",
                4,  # commitments differ in the third and fourth decimal
            )
        )
    for frame, caption, digits in tables:
        shown = show(frame, caption=caption, precision=digits, key=caption.split()[0].lower())
        parts.append(
            shown.to_html() if hasattr(shown, "to_html") else f"<p>{_text(caption)}: none.</p>"
        )
    said = loyalty_text(loyalty) if loyalty is not None else ""
    if said:
        parts.append(f"<h2>Likely to recommend us</h2><p>{_text(said)}</p>")
        if len(loyalty.tiers):
            caption = "Net promoter score per tier (model, 95% range)"
            parts.append(show(loyalty.tiers, caption=caption, precision=0, key="nps").to_html())
    parts.append("<h2>Notes and warnings</h2><ul>")
    parts += [f"<li>{_text(note)}</li>" for note in notes] or ["<li>None.</li>"]
    parts.append("</ul></body></html>")
    return "".join(parts)


def write_appendix(html: str, out_dir: str | os.PathLike | None) -> Path | None:
    """Write the appendix as ``out_dir/proposal_appendix.html``; nothing when out_dir is empty."""
    if not out_dir:
        return None
    target = Path(out_dir) / APPENDIX_NAME
    target.write_text(html, encoding="utf-8")
    return target
