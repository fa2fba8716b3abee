"""Display names of the report and the one function that makes data strings safe to show.

Every data string (segment, tier, driver, customer...) shown in a figure, in Markdown or in
an HTML table goes through :func:`escape_label`: it is shortened for display and escaped for
its medium, so it is always shown as text, never as markup or maths.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any, Literal

from satmodel.vocabulary import DRIVERS, LEVERS, driver_label

# Display labels: tidy column name -> what a manager reads in the report.
LABELS: dict[str, str] = {
    "kpi": "Measure",
    "label": "Measure",
    "unit": "Unit",
    "value": "This month",
    "previous": "Previous month",
    "change": "Change",
    "trailing_mean": "Average of the 12 months before",
    "segment": "Segment",
    "customers": "Customers",
    "availability_target_pct": "Availability SLO (%)",
    "availability_met_pct": "Customers meeting availability SLO (%)",
    "error_budget_used_pct": "Error budget used (%)",
    "customers_over_budget": "Customers over the team SLO's budget",
    "latency_target_ms": "p95 latency SLO (ms)",
    "latency_met_pct": "Customers meeting latency SLO (%)",
    "tickets": "Tickets",
    "resolution_sla_breach_pct": "Tickets resolved late (%)",
    "customer_id": "Customer",
    "availability_pct": "Availability (%)",
    "expected_availability_pct": "Expected availability (%)",
    "latency_p95_ms": "p95 latency (ms)",
    "expected_latency_p95_ms": "Expected p95 latency (ms)",
    "resolution_hours_median": "Median resolution (h)",
    "expected_resolution_hours": "Expected resolution (h)",
    "misses": "Expectations missed",
    "table_name": "Table",
    "column_name": "Column",
    "reason": "Reason",
    "rows": "Rows",
    "example": "Example value",
    "rows_read": "Rows read",
    "rows_quarantined": "Rows quarantined",
    "quarantined_pct": "Quarantined (%)",
    "model": "Model",
    "family": "Family",
    "term": "Driver",
    "estimate": "Estimate",
    "ratio": "Odds / rate ratio per unit",
    "driver": "Driver",
    "step": "For",
    "effect": "Effect (x odds or rate)",
    "effect_low": "95% CI low",
    "effect_high": "95% CI high",
    "formula": "Formula",
    "missed": "Missed on",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "p_value": "p-value",
    "n_obs": "Observations",
    "converged": "Converged",
    "warnings": "Warnings",
    "quarter_ago": "Same month last quarter",
    "change_quarter": "Change on last quarter",
    "trend": "Trend (vs. previous month)",
    "budget_minutes": "Error budget (min)",
    "downtime_minutes": "Downtime (min)",
    "elapsed_pct": "Month elapsed (%)",
    "burn_rate": "Burn rate (x)",
    "peak_7day_burn_rate": "Worst 7 days burn rate (x)",
    "projected_used_pct": "Budget used at this rate by month end (%)",
    "status": "Status",
    "previous_estimate": "Coefficient last month",
    "coefficient": "Coefficient this month",
    "z": "z",
    "flagged": "Changed?",
    "share_pct": "Share of explained variation (%)",
    "share_low_pct": "95% CI low",
    "share_high_pct": "95% CI high",
    "rank": "Rank",
    "rank_range": "Rank, 95% range",
    "nps_share_pct": "Share in likelihood to recommend us (%)",
    "nps_rank": "Rank for likelihood to recommend us",
    "nps": "Net promoter score",
    "nps_ci_low": "95% CI low",
    "nps_ci_high": "95% CI high",
    "promoters_pct": "Answers of 9-10 (%)",
    "csat_target": "CSAT target",
    "current_csat": "Predicted CSAT now",
    "met_now": "Target met now",
    "lever": "Service measure",
    "direction": "Needs",
    "current_level": "Now",
    "required": "Level needed",
    "feasible": "Reachable",
    "extrapolated": "Beyond the data",
    "measured_pct": "Measured (% of customer-months)",
    "p05": "5th percentile",
    "median": "Median",
    "p95": "95th percentile",
    "mean": "Mean",
    "csat_mean": "CSAT mean",
    "csat_top2_rate": "Satisfied share",
    "complaint_rate_per_1k": "Complaints per 1,000 users",
    "model_name": "Model",
    "metric": "Metric",
    "vs_baseline_pct": "Error vs. baseline (%)",
    "predicted_csat": "Predicted CSAT",
    "observed_csat": "Observed CSAT",
    "responses": "Responses",
    "n_gaps": "Expectations missed",
    "gain_if_gaps_closed": "CSAT gain if gaps closed",
    "with_availability_gap": "With availability gap",
    "with_latency_gap": "With latency gap",
    "with_resolution_gap": "With resolution gap",
    "csat_mean_now": "Predicted CSAT now",
    "csat_mean_closed": "Predicted CSAT, gaps closed",
    "csat_mean_gain": "CSAT gain",
    "complaints_avoidable_per_month": "Complaints avoidable / month",
    "tier": "Tier",
    "csat_top2_pct": "Satisfied share (%)",
    "csat": "CSAT (95% CI)",
    "satisfied_pct": "Satisfied % (95% CI)",
    "complaints_per_1k": "Complaints per 1,000 (95% CI)",
    "csat_mean_ci_low": "CSAT 95% low",
    "csat_mean_ci_high": "CSAT 95% high",
    "csat_top2_ci_low": "Satisfied 95% low",
    "csat_top2_ci_high": "Satisfied 95% high",
    "complaint_ci_low": "Complaints 95% low",
    "complaint_ci_high": "Complaints 95% high",
    "meets_csat": "Meets CSAT target",
    "meets_complaints": "Meets complaint target",
    "monthly_cost": "Extra cost / month",
    "monthly_revenue": "Revenue / month",
    "under_contract": "Customers under contract",
    "revenue_at_risk": "Revenue at risk",
    "share_at_risk_pct": "Share of revenue at risk (%)",
    "revenue_retained": "Revenue kept",
    "complaint_cost_avoided": "Complaint cost avoided",
    "net_return": "Net return / month",
    "roi_pct": "Return on cost (%)",
    "target_of": "Target",
    "tier_level": "Tier's level",
    "tier_is_enough": "Tier's level enough",
    "current": "Now",
    "planned": "Planned",
    "cost": "Cost / month",
    "total_cost": "Total cost / month",
    "predicted": "Predicted",
    "predicted_ci_low": "95% low",
    "predicted_ci_high": "95% high",
    "check": "Check",
    "threshold": "Threshold",
    "ok": "OK",
    "note": "Note",
    "component": "Component",
    "component_id": "Component id",
    "name": "Name",
    "caused_by": "Caused by",
    "changes": "Changes",
    "failed_changes": "Failed changes",
    "change_failure_pct": "Change failure rate (%)",
    "failed_changes_with_incident": "Failed changes followed by an incident",
    "incidents": "Incidents",
    "mttr_hours": "Time to restore (MTTR, h)",
    "downtime_share_pct": "Share of today's downtime (%)",
    "over_budget": "Over budget",
    "will_be_over": "Will be over at this rate",
    "on_track": "On track",
    "over_budget_pct": "Over budget (%)",
    "median_budget_used_pct": "Median error budget used (%)",
    "worst_budget_used_pct": "Worst error budget used (%)",
    "slo_availability_pct": "Availability SLO (%)",
    "budget_used_pct": "Error budget used (%)",
    "projection": "Projection",
    "alert": "Alert",
    "severity": "Severity",
    "burn_rate_threshold": "Burn rate threshold (x)",
    "long_window": "Long window",
    "short_window": "Short window",
    "first_fired": "First fired",
    "hours_firing": "Hours firing",
    "peak_burn_rate": "Peak burn rate (x)",
    "kind": "Kind",
    "service": "Service",
    "customers_affected": "Customers affected",
    "outage_minutes": "Outage (min)",
    "change_failure_rate": "Change failure rate",
    "csat_points_interval": "CSAT points lost (95% CI)",
    "complaints_interval": "Complaints / month (95% CI)",
    "csat_points": "CSAT points lost",
    "csat_points_ci_low": "CSAT points 95% low",
    "csat_points_ci_high": "CSAT points 95% high",
    "complaints_per_month": "Complaints / month",
    "complaints_per_month_ci_low": "Complaints / month 95% low",
    "complaints_per_month_ci_high": "Complaints / month 95% high",
    "statistic": "Test statistic",
    "df": "Degrees of freedom",
    "verdict": "Verdict",
    "reading": "Reading",
    "pooled_effect": "Across customers (x odds or rate)",
    "pooled_effect_low": "Across: 95% low",
    "pooled_effect_high": "Across: 95% high",
    "within_effect": "Within a customer (x odds or rate)",
    "within_effect_low": "Within: 95% low",
    "within_effect_high": "Within: 95% high",
    "previous_effect": "Effect last month",
    "partial_r2_pct": "Share of CSAT variation it alone explains (partial R², %)",
    "rv_q_pct": "Hidden factor strength to remove it (robustness value, %)",
    "rv_qa_pct": "Hidden factor strength to make it insignificant (%)",
    "benchmark": "Compared with",
    "csat_effect": "Effect on mean CSAT (points per step)",
    "bound_csat_effect_k3": "Effect left by a factor 3x as strong (points per step)",
    "month": "Month",
    "flagged_in": "Flagged with data up to",
    "flagged_answered": "Flagged who answered",
    "flagged_below": "Flagged who scored below target",
    "precision": "Share of flags that came true",
    "answered": "Customers who answered",
    "below": "Customers who scored below target",
    "base_rate": "Share below target, all who answered",
    "caveat": "Caveat",
    "p_below_target": "Chance below target",
    "expected_responses": "Expected responses",
}


# Plain names of the default drivers for the report (owned by satmodel.vocabulary).
DRIVER_NAMES = {d.term: d.label for d in DRIVERS if d.area != "segment"}


# Readable names of satmodel.insights' driver names.
IMPORTANCE_NAMES = {d.key: d.label for d in DRIVERS}


LEVER_NAMES = {
    "latency_p95_ms": ("p95 latency", "ms", "at most"),
    "availability_pct": ("availability", "%", "at least"),
    "resolution_hours_median": ("resolution time", "hours, median", "at most"),
    "error_rate": ("error rate", "share of requests", "at most"),
    "downtime_minutes": ("downtime", "minutes / month", "at most"),
}


# a level this close to a physical limit (in the lever's unit) is at it: 99.9999 % is not
_AT_LIMIT = 1e-9


def availability_digits(value: float, minimum: int = 2) -> int:
    """Decimals that show an availability's downtime to two significant digits.

    99.95 (0.050 % down) needs 3, 99.995 needs 4: a level below 100 % never rounds to
    ``100``; ``minimum`` decimals at least.

    >>> availability_digits(99.95), availability_digits(99.5, 1), availability_digits(100.0, 1)
    (3, 2, 1)
    """
    allowed = 100.0 - value
    if not math.isfinite(allowed) or allowed <= 0:
        return minimum
    return max(minimum, math.ceil(-math.log10(allowed)) + 1)


def _amount(value: float, unit: str) -> str:
    return f"{value:,.6g}" + (" %" if unit == "%" else f" {unit}")


def level_caveat(lever: str, level: float, observed: tuple[float, float] | None = None) -> str:
    """What a recommendation of ``level`` must admit: at a physical limit, or beyond the data.

    Parameters
    ----------
    lever : str
        Panel column of the lever, e.g. ``availability_pct``.
    level : float
        The recommended level.
    observed : (float, float), optional
        The lowest and highest level of the lever in the panel.

    Returns
    -------
    str
        ``" (at the physical limit of 100 %: no service can promise this)"``, ``" (beyond
        anything observed (max seen 99.97 %): an extrapolation)"`` or ``""``, to append to
        the sentence that recommends the level.

    Examples
    --------
    >>> level_caveat("availability_pct", 100.0)
    ' (at the physical limit of 100 %: no service can promise this)'
    >>> level_caveat("latency_p95_ms", 40.0, (80.0, 900.0))
    ' (beyond anything observed (min seen 80 ms): an extrapolation)'
    """
    spec = LEVERS.get(lever)
    if spec is None or level is None or not math.isfinite(level):
        return ""
    limit = spec.high if spec.better == "higher" else spec.low
    if limit is not None and abs(level - limit) <= _AT_LIMIT * max(1.0, abs(limit)):
        return (
            f" (at the physical limit of {_amount(limit, spec.unit)}: no service can promise this)"
        )
    if observed is None or not all(math.isfinite(v) for v in observed):
        return ""
    low, high = observed
    if level > high:
        return (
            f" (beyond anything observed (max seen {_amount(high, spec.unit)}): an extrapolation)"
        )
    if level < low:
        return f" (beyond anything observed (min seen {_amount(low, spec.unit)}): an extrapolation)"
    return ""


# Component kinds (the components table's ``kind``) as a manager reads them; any other kind
# has its underscores shown as spaces (see kind_label).
KIND_NAMES = {
    "application": "application",
    "database": "database",
    "network": "network",
    "storage": "storage",
    "third_party": "third party",
}


def kind_label(kind: Any) -> str:
    """A component kind in words: ``third_party`` -> ``third party`` (:data:`KIND_NAMES`);
    an unknown identifier has its underscores shown as spaces, other text is kept."""
    text = str(kind)
    if text in KIND_NAMES:
        return KIND_NAMES[text]
    return text.replace("_", " ") if re.fullmatch(r"[a-z0-9_]+", text) else text


# Segment names that are not spelt as their identifier reads (the rest: see segment_label).
SEGMENT_NAMES = {"smb": "SMB", "mid_market": "Mid-market", "enterprise": "Enterprise"}

# The report's models as a manager reads them (keys: ModelSection.results).
MODEL_NAMES = {
    "csat": "CSAT score (1-5)",
    "top2": "Satisfied share (top-2)",
    "complaints": "Complaints (count model)",
    "ordinal": "CSAT score (1-5)",
    "logit": "Satisfied share (top-2)",
    "negbin": "Complaints (count model)",
}

# Model families as a manager reads them (the Family column of the models table).
FAMILY_NAMES = {
    "ordinal": "ordered scores 1-5",
    "logit": "satisfied yes/no",
    "negbin": "counts per user",
    "poisson": "counts per user",
    "ols": "average score",
}

# Diagnostic checks (satmodel.evaluation.diagnostics) in words; the ``vif:`` and
# ``proportional_odds:`` checks name a model term after the colon.
CHECK_NAMES = {
    "converged": "Fit converged",
    "n_obs": "Observations",
    "min_level_count": "Smallest outcome group",
    "separation": "Separation",
    "collinearity": "Collinearity",
    "vif:": "Collinearity (variance inflation) of",
    "overdispersion_lr": "Overdispersion (likelihood-ratio test)",
    "dispersion": "Dispersion",
    "proportional_odds": "Proportional odds (Brant test)",
    "proportional_odds:": "Proportional odds for",
    "diagnostics": "Diagnostics",
}

_TREATMENT = re.compile(r"C\((\w+)\)\[T\.(.+)\]")
_CUSTOMER_MEAN = re.compile(r"mean\((.+)\)")


def segment_label(segment: Any) -> str:
    """A segment as a manager reads it: ``mid_market`` -> ``Mid-market``, ``smb`` -> ``SMB``.

    Known names come from :data:`SEGMENT_NAMES`; any other identifier has its underscores
    shown as spaces and its first letter capitalised (``public_sector`` -> ``Public sector``);
    a name that already holds capitals or spaces is kept as it is.
    """
    text = str(segment)
    if text in SEGMENT_NAMES:
        return SEGMENT_NAMES[text]
    if text != text.lower() or " " in text or not re.fullmatch(r"[a-z0-9_]+", text):
        return text
    spaced = text.replace("_", " ")
    return spaced[:1].upper() + spaced[1:]


def model_label(model: Any) -> str:
    """A model's name (``top2``, ``negbin``...) as the report shows it (:data:`MODEL_NAMES`)."""
    return MODEL_NAMES.get(str(model), str(model))


def family_label(family: Any) -> str:
    """A model family (``ordinal``, ``negbin``...) in words (:data:`FAMILY_NAMES`)."""
    return FAMILY_NAMES.get(str(family), str(family))


def check_label(check: Any) -> str:
    """A diagnostic check in words: ``vif:np.log(latency_p95_ms)`` reads ``Collinearity
    (variance inflation) of p95 latency``; unknown checks are shown as they are."""
    name, colon, term = str(check).partition(":")
    if not colon:
        return CHECK_NAMES.get(name, name)
    return f"{CHECK_NAMES.get(name + colon, name)} {term_label(term)}"


def term_label(term: str, reference: str | None = None) -> str:
    """A model term as a manager reads it, naming the reference level of a category.

    ``C(segment)[T.mid_market]`` with reference ``enterprise`` reads ``Segment: Mid-market
    (vs. Enterprise)``; other terms go through :func:`satmodel.vocabulary.driver_label` and
    then :data:`DRIVER_NAMES`.

    Examples
    --------
    >>> term_label("C(segment)[T.smb]", "enterprise")
    'Segment: SMB (vs. Enterprise)'
    """
    match = _TREATMENT.fullmatch(str(term))
    if match:
        variable, level = match.groups()
        shown = segment_label(level) if variable == "segment" else level
        against = ""
        if reference is not None:
            against = f" (vs. {segment_label(reference) if variable == 'segment' else reference})"
        return f"{variable.replace('_', ' ').capitalize()}: {shown}{against}"
    mean = _CUSTOMER_MEAN.fullmatch(str(term))
    if mean:
        return f"customer's usual {term_label(mean.group(1), reference)}"
    label = driver_label(str(term))
    return DRIVER_NAMES.get(label, label)


# Model terms as they appear inside free text (warnings, notes), longest first so that
# ``mean(np.log(x))`` is replaced as a whole before ``np.log(x)``.
_TERMS_IN_TEXT = sorted(
    [f"mean({d.term})" for d in DRIVERS] + [d.term for d in DRIVERS], key=len, reverse=True
)
_MODEL_PREFIX = re.compile(r"^(\w+): ")
_CHECK_IN_TEXT = re.compile(r"\b(vif|proportional_odds):")
# a level inside free text ends at the first "]", so two levels on one line stay two
_TREATMENT_IN_TEXT = re.compile(r"C\(\w+\)\[T\.[^\]]+\]")


def plain_terms(text: Any) -> str:
    """Free text (a warning, a note) with every model term and a leading model key in words.

    Examples
    --------
    >>> plain_terms("csat: high collinearity (np.log(latency_p95_ms) 11.1)")
    'CSAT score (1-5): high collinearity (p95 latency 11.1)'
    """
    out = _TREATMENT_IN_TEXT.sub(lambda m: term_label(m.group(0)), str(text))
    for term in _TERMS_IN_TEXT:
        if term in out:
            out = out.replace(term, term_label(term))
    out = _CHECK_IN_TEXT.sub(lambda m: CHECK_NAMES[m.group(0)] + " ", out)
    prefix = _MODEL_PREFIX.match(out)
    if prefix and prefix.group(1) in MODEL_NAMES:
        out = f"{model_label(prefix.group(1))}: {out[prefix.end() :]}"
    return out


CV_NAMES = {
    "satmodel": "satmodel model",
    "baseline": "naive baseline",
    "hist_gradient_boosting": "gradient boosting",
}


# Longest data string shown as a label (figure text, names in prose) and as free text (table
# cells, notes): a 100,000-character segment name made 1.4M-pixel-wide charts.
MAX_LABEL_CHARS = 60
MAX_TEXT_CHARS = 500
ELLIPSIS = "\u2026"

# Markdown punctuation escaped with a backslash; ``$`` becomes an entity instead (below).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def escape_label(
    value: Any,
    target: Literal["markdown", "html", "plot"] = "markdown",
    max_chars: int | None = MAX_LABEL_CHARS,
) -> str:
    """A data string made safe to show as text in a figure, Markdown or an HTML table.

    The text is cut to ``max_chars`` characters (the last one an ellipsis) and escaped for
    ``target``:

    - ``plot``: ``$`` becomes ``\\$``, so Matplotlib never parses it as mathtext (``$x^$``
      would raise, ``Price $5 and $10`` would be drawn as maths);
    - ``html``: ``< > & " '`` become entities;
    - ``markdown``: ``< > &`` become entities and Markdown punctuation is backslash-escaped,
      so ``<script>`` or ``**big**`` renders literally; quotes stay as they are (harmless in
      text, and the escaped ``#`` would break their numeric entities).

    For HTML and Markdown, ``$`` becomes ``&#36;``: shown as a dollar sign, never read as a
    MathJax delimiter.

    Parameters
    ----------
    value : anything; shown as ``str(value)``.
    target : the medium.
    max_chars : the longest text kept (None: no limit).
    """
    text = str(value)
    if max_chars is not None and len(text) > max_chars:
        text = text[: max(max_chars - 1, 0)] + ELLIPSIS
    if target == "plot":
        return text.replace("$", r"\$")
    if target == "html":
        text = html.escape(text, quote=True)
    else:
        text = _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))
    return text.replace("$", "&#36;")


def md_escape(value: Any, max_chars: int | None = MAX_LABEL_CHARS) -> str:
    """:func:`escape_label` for Markdown."""
    return escape_label(value, "markdown", max_chars)


def plot_label(value: Any, max_chars: int | None = MAX_LABEL_CHARS) -> str:
    """:func:`escape_label` for a Matplotlib label."""
    return escape_label(value, "plot", max_chars)
