"""Proposals (``03_expectation_to_support.ipynb``): which service tier meets a customer's expectation."""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from satmodel.calendar import month_name
from satmodel.errors import InputError, SatmodelError
from satmodel.features.telemetry import customer_values
from satmodel.hints import did_you_mean
from satmodel.insights.plans import DEFAULT_ASSURANCE, check_assurance
from satmodel.insights.scenarios import observed_range
from satmodel.reporting.data import ReportData
from satmodel.reporting.drivers import ModelSection
from satmodel.reporting.figures import (
    ALERT_COLOR,
    INK_COLOR,
    MAIN_COLOR,
    VERDICT_COLORS,
    error_extents,
    figure_style,
    new_figure,
)
from satmodel.reporting.labels import LEVER_NAMES, level_caveat, md_escape, plot_label
from satmodel.vocabulary import LEVERS

DEFAULT_TIERS = "Bronze 99.5/800/24; Silver 99.9/500/8; Gold 99.95/300/4"
TIER_COLUMNS = ["tier", "availability_pct", "latency_p95_ms", "resolution_hours_median"]
_TIER = re.compile(r"\s*(\S.*?)\s+([0-9.]+)\s*/\s*([0-9.]+)\s*/\s*([0-9.]+)\s*")


def parse_tiers(spec: str | None = None) -> pd.DataFrame:
    """Candidate service tiers from ``"NAME availability/p95 latency/resolution; ..."``.

    Parameters
    ----------
    spec : e.g. ``"Bronze 99.5/800/24; Gold 99.95/300/4"``: availability in %, p95 latency in
        ms, median resolution time in hours; None or ``""`` for :data:`DEFAULT_TIERS`.

    Returns
    -------
    DataFrame
        tier, availability_pct, latency_p95_ms, resolution_hours_median, in the given order.

    Raises
    ------
    InputError
        For a malformed tier, a value outside its range or a repeated name.
    """
    spec = spec or DEFAULT_TIERS
    rows, problems = [], []
    for part in (p for p in str(spec).split(";") if p.strip()):
        match = _TIER.fullmatch(part)
        if not match:
            problems.append(
                f"--tiers {part.strip()!r}: expected 'NAME availability/p95 ms/resolution h', "
                "e.g. 'Gold 99.95/300/4'"
            )
            continue
        name = match.group(1)
        try:
            availability, latency, resolution = (float(match.group(i)) for i in (2, 3, 4))
        except ValueError:
            problems.append(f"--tiers {part.strip()!r}: not numbers")
            continue
        if not 0 < availability <= 100:
            problems.append(f"--tiers {name}: availability {availability:g} is outside 0..100 %")
        if latency <= 0 or resolution <= 0:
            problems.append(f"--tiers {name}: latency and resolution time must be > 0")
        if any(r[0] == name for r in rows):
            problems.append(f"--tiers {name}: named twice")
        rows.append((name, availability, latency, resolution))
    if not rows and not problems:
        problems.append(f"--tiers {spec!r}: no tier given, e.g. {DEFAULT_TIERS!r}")
    if problems:
        raise InputError(problems)
    return pd.DataFrame(rows, columns=TIER_COLUMNS)


def _known(values: list[str], shown: int = 5) -> str:
    examples = ", ".join(values[:shown])
    return examples + (f" ... ({len(values):,} in all)" if len(values) > shown else "")


def check_proposal_request(
    source,
    segment: str | None,
    customer: str | None,
    csat_target: float | None,
    complaint_target: float | None = None,
) -> None:
    """Check a proposal request against the data before anything runs.

    Raises
    ------
    InputError
        Naming valid examples, when the segment or customer is not in the customers table,
        when neither or both are given, or when a target is out of range (CSAT 1-5,
        complaints >= 0).
    """
    problems = []
    if (segment in (None, "")) == (customer in (None, "")):
        problems.append("proposal: give exactly one of --segment or --customer")
    problems += _target_problems(csat_target, complaint_target)
    if problems:
        raise InputError(problems)
    column = "segment" if segment not in (None, "") else "customer_id"
    wanted = str(segment if column == "segment" else customer)
    values = customer_values(source, column)
    if wanted in values:
        return
    hint = did_you_mean(wanted, values)
    flag = "--segment" if column == "segment" else "--customer"
    what = "segments" if column == "segment" else "customers"
    raise InputError(
        f"{flag} {wanted!r}: not in customers.{column} (valid {what}: {_known(values)}){hint}"
    )


def _target_problems(csat_target: float | None, complaint_target: float | None) -> list[str]:
    """One line per out-of-range proposal target (CSAT 1-5, complaints >= 0)."""
    problems = []
    if csat_target is None or not (isinstance(csat_target, int | float) and 1 <= csat_target <= 5):
        problems.append(f"--csat-target {csat_target!r}: must be a mean CSAT between 1 and 5")
    if complaint_target is not None and not (
        isinstance(complaint_target, int | float)
        and math.isfinite(complaint_target)
        and complaint_target >= 0
    ):
        problems.append(
            f"--complaint-target {complaint_target!r}: must be >= 0 complaints per 1,000 users"
        )
    return problems


def _slug(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return cleaned[:60] or "x"


def proposal_slug(
    segment: str | None,
    customer: str | None,
    csat_target: float,
    complaint_target: float | None = None,
) -> str:
    """A proposal's folder name: ``<segment or customer>-csat<X>[-complaints<Y>]``.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``; a customer's
    name is prefixed ``customer-`` so a segment and a customer never share a folder.

    Examples
    --------
    >>> proposal_slug("enterprise", None, 4.3, 2)
    'enterprise-csat4.3-complaints2'
    >>> proposal_slug(None, "C0001", 4.5)
    'customer-C0001-csat4.5'
    """
    name = _slug(segment) if segment not in (None, "") else "customer-" + _slug(customer)
    slug = f"{name}-csat{float(csat_target):g}"
    if complaint_target not in (None, 0, 0.0):
        slug += f"-complaints{float(complaint_target):g}"
    return slug


TIER_LEVERS = ("availability_pct", "latency_p95_ms", "resolution_hours_median")


def observed_levels(data: ReportData) -> dict[str, tuple[float, float]]:
    """The lowest and highest level of each tier lever in the panel."""
    return {
        lever: observed_range(LEVERS[lever], data.panel)
        for lever in TIER_LEVERS
        if lever in data.panel
    }


@dataclass
class ProposalRequest:
    """Who a proposal is for and what they expect.

    Attributes
    ----------
    segment, customer : exactly one is set.
    csat_target : the mean CSAT (1-5) expected.
    complaint_target : at most this many complaints per 1,000 users a month; None for none.
    tiers : the candidate tiers (:func:`parse_tiers`).
    assurance : the probability with which the cheapest plan must reach each target (None:
        at the point estimate).
    """

    segment: str | None
    customer: str | None
    csat_target: float
    complaint_target: float | None
    tiers: pd.DataFrame
    assurance: float | None = DEFAULT_ASSURANCE

    @property
    def subject(self) -> str:
        """``segment smb`` or ``customer C0001``."""
        return f"segment {self.segment}" if self.segment else f"customer {self.customer}"


def proposal_request(
    data: ReportData,
    segment: str = "",
    customer: str = "",
    csat_target: float = 4.2,
    complaint_target: float = 0.0,
    tiers: str = "",
    assurance: float | None = DEFAULT_ASSURANCE,
) -> ProposalRequest:
    """Check and hold a proposal's parameters (empty strings and a 0 complaint target: none).

    Raises
    ------
    InputError
        For an unknown segment or customer (naming valid ones), bad targets or tiers, an
        assurance outside (0, 1).
    """
    assurance = check_assurance(assurance)
    complaint = float(complaint_target) if complaint_target else None
    if data.pseudonymised and customer:
        # the customer is named by its pseudonym: check it against the (pseudonymised) panel
        problems = _target_problems(csat_target, complaint)
        if problems:
            raise InputError(problems)
        known = set(data.panel["customer_id"].astype(str))
        if str(customer) not in known:
            raise InputError(
                f"--customer {customer!r}: no customer has this pseudonym (pass the real "
                "customer id; the report shows its pseudonym)"
            )
    else:
        check_proposal_request(
            data.source, segment or None, customer or None, csat_target, complaint
        )
    return ProposalRequest(
        segment=segment or None,
        customer=customer or None,
        csat_target=float(csat_target),
        complaint_target=complaint,
        tiers=parse_tiers(tiers),
        assurance=assurance,
    )


def proposal_intro(data: ReportData, request: ProposalRequest):
    """The proposal's opening lines (who, what they expect, the data used), as Markdown."""
    from IPython.display import Markdown

    month = data.panel.loc[data.panel["month"].astype(str) == data.month]
    if request.segment:
        rows = month.loc[month["segment"].astype(str) == request.segment]
        who = f"the **{md_escape(request.segment)}** segment ({rows['customer_id'].nunique():,} customers)"
    else:
        rows = month.loc[month["customer_id"].astype(str) == request.customer]
        segment = rows["segment"].iloc[0] if len(rows) else "?"
        who = f"customer **{md_escape(request.customer)}** (segment {md_escape(segment)})"
    wants = f"a mean CSAT of at least **{request.csat_target:.2f}**"
    if request.complaint_target is not None:
        wants += (
            f" and at most **{request.complaint_target:g} complaints per 1,000 active users** "
            "a month"
        )
    return Markdown(
        f"Proposal for {who}, who expect {wants}. Predictions use the models fitted on the "
        f"data up to {month_name(data.month)}, with the other drivers held at their values in "
        "that month."
    )


def _costs(data: ReportData) -> dict[str, float] | None:
    """The ``[costs]`` of the config, or None (with a note) when they are not valid."""
    from satmodel.insights.plans import resolve_costs

    try:
        return resolve_costs(None, data.config)
    except SatmodelError as exc:
        data.notes.append(f"costs: {exc}")
        return None


def tier_predictions(
    models: ModelSection,
    data: ReportData,
    request: ProposalRequest,
    n_sim: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Predicted CSAT, satisfied share and complaint rate for the current service and each tier.

    Each tier guarantees availability, p95 latency and median resolution time: a
    customer-month worse than the tier's level is brought to it, one already better keeps
    its own (:func:`satmodel.insights.whatif.what_if` with ``guarantee=True``; other drivers
    held at the subject's values). The current service's levels are today's
    (:func:`~satmodel.insights.scenarios.typical_level`: mean availability, median others).
    ``meets_csat`` is ``yes`` when the whole 95% interval reaches the target, ``likely`` when
    only the prediction does, ``no`` otherwise (the same for complaints, ``-`` without a
    target). ``monthly_cost`` is the cost of moving each lever from its current level to the
    tier's (:func:`satmodel.insights.plans.lever_cost`, ``[costs]`` of the config; 0 for a
    lever the tier does not improve).

    Returns
    -------
    DataFrame
        tier, availability_pct, latency_p95_ms, resolution_hours_median, csat_mean,
        csat_mean_ci_low, csat_mean_ci_high, csat_top2_pct, csat_top2_ci_low,
        csat_top2_ci_high, complaint_rate_per_1k, complaint_ci_low, complaint_ci_high,
        meets_csat, meets_complaints, monthly_cost.
    """
    columns = ["tier", *TIER_LEVERS, "csat_mean", "csat_mean_ci_low", "csat_mean_ci_high"]
    columns += ["csat_top2_pct", "csat_top2_ci_low", "csat_top2_ci_high"]
    columns += ["complaint_rate_per_1k", "complaint_ci_low", "complaint_ci_high"]
    columns += ["meets_csat", "meets_complaints", "monthly_cost"]
    from satmodel.insights.plans import lever_cost
    from satmodel.insights.whatif import what_if

    if not models.results:
        return pd.DataFrame(columns=columns)
    levers = [lever for lever in TIER_LEVERS if lever in data.panel]
    scenarios = [
        {"scenario": row["tier"], **{lever: float(row[lever]) for lever in levers}}
        for row in request.tiers.to_dict("records")
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = what_if(
            models.results,
            data.panel,
            scenarios,
            segment=request.segment,
            customer=request.customer,
            n_sim=n_sim,
            seed=seed,
            guarantee=True,
        )
    out = pd.DataFrame({"tier": result["scenario"].astype(str)})
    out.loc[0, "tier"] = "Current service"
    for lever in TIER_LEVERS:
        out[lever] = result[lever].astype(float) if lever in result else math.nan
    for name, source, scale in (
        ("csat_mean", "csat_mean", 1.0),
        ("csat_top2", "csat_top2_rate", 100.0),
        ("complaint", "complaint_rate_per_1k", 1.0),
    ):
        value_column = {"csat_top2": "csat_top2_pct", "complaint": "complaint_rate_per_1k"}.get(
            name, name
        )
        for suffix, target in (("", value_column), ("_ci_low", None), ("_ci_high", None)):
            column = target or f"{name}{suffix}"
            out[column] = (
                scale * result[f"{source}{suffix}"].astype(float)
                if f"{source}{suffix}" in result
                else math.nan
            )

    def verdict(value, low_side, target, higher_better):
        if target is None or not math.isfinite(value):
            return "-"
        if higher_better:
            return "yes" if low_side >= target else ("likely" if value >= target else "no")
        return "yes" if low_side <= target else ("likely" if value <= target else "no")

    out["meets_csat"] = [
        verdict(v, lo, request.csat_target, True)
        for v, lo in zip(out["csat_mean"], out["csat_mean_ci_low"], strict=True)
    ]
    out["meets_complaints"] = [
        verdict(v, hi, request.complaint_target, False)
        for v, hi in zip(out["complaint_rate_per_1k"], out["complaint_ci_high"], strict=True)
    ]
    costs = _costs(data)
    if costs is not None:
        current = out.iloc[0]
        out["monthly_cost"] = [
            float(
                sum(
                    lever_cost(lever, row[lever], current[lever], costs)
                    for lever in levers
                    if math.isfinite(row[lever]) and math.isfinite(current[lever])
                )
            )
            for _, row in out.iterrows()
        ]
    else:
        out["monthly_cost"] = math.nan
    return out[columns]


def _with_interval(value: float, low: float, high: float, digits: int) -> str:
    if not math.isfinite(value):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def tier_view(predictions: pd.DataFrame) -> pd.DataFrame:
    """The tier predictions as a manager reads them: each outcome with its interval in one cell.

    Returns
    -------
    DataFrame
        tier, availability_pct, latency_p95_ms, resolution_hours_median, csat (e.g.
        ``4.12 (4.05-4.19)``), satisfied_pct, complaints_per_1k, meets_csat,
        meets_complaints, monthly_cost.
    """
    columns = ["tier", *TIER_LEVERS, "csat", "satisfied_pct", "complaints_per_1k"]
    columns += ["meets_csat", "meets_complaints", "monthly_cost"]
    if predictions.empty:
        return pd.DataFrame(columns=columns)
    out = predictions[["tier", *TIER_LEVERS]].copy()
    for column, (value, low, high, digits) in {
        "csat": ("csat_mean", "csat_mean_ci_low", "csat_mean_ci_high", 2),
        "satisfied_pct": ("csat_top2_pct", "csat_top2_ci_low", "csat_top2_ci_high", 0),
        "complaints_per_1k": ("complaint_rate_per_1k", "complaint_ci_low", "complaint_ci_high", 2),
    }.items():
        out[column] = [
            _with_interval(*values, digits)
            for values in zip(predictions[value], predictions[low], predictions[high], strict=True)
        ]
    for column in ("meets_csat", "meets_complaints", "monthly_cost"):
        out[column] = predictions[column]
    return out[columns].reset_index(drop=True)


def tier_requirements(
    models: ModelSection,
    data: ReportData,
    request: ProposalRequest,
    n_sim: int = 150,
    seed: int = 0,
) -> pd.DataFrame:
    """What each lever must reach for the targets, given the tier's other two levers.

    For every tier and lever, the inverse solver
    (:func:`satmodel.insights.targets.solve_target`) with the tier's other levers fixed: e.g.
    "with Silver's availability and resolution time, p95 latency must be at most X ms for a
    CSAT of 4.3". Also for the complaint target when there is one.

    Returns
    -------
    DataFrame
        tier, target_of (``CSAT`` or ``complaints``), lever, unit, direction, tier_level,
        required, ci_low, ci_high, feasible, tier_is_enough (the tier's own level is at least
        as good as the required one), extrapolated.
    """
    columns = ["tier", "target_of", "lever", "unit", "direction", "tier_level", "required"]
    columns += ["ci_low", "ci_high", "feasible", "tier_is_enough", "extrapolated"]
    from satmodel.insights.targets import solve_target

    if not models.results:
        return pd.DataFrame(columns=columns)
    levers = [lever for lever in TIER_LEVERS if lever in data.panel]
    goals = [("CSAT", "csat_mean", request.csat_target)]
    if request.complaint_target is not None and "complaints" in models.results:
        goals.append(("complaints", "complaint_rate_per_1k", request.complaint_target))
    rows = []
    for tier in request.tiers.to_dict("records"):
        for label, outcome, target in goals:
            for lever in levers:
                fixed = {other: float(tier[other]) for other in levers if other != lever}
                name, unit, direction = LEVER_NAMES[lever]
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        result = solve_target(
                            models.results,
                            data.panel,
                            outcome,
                            target,
                            lever,
                            segment=request.segment,
                            customer=request.customer,
                            fixed=fixed,
                            n_sim=n_sim,
                            seed=seed,
                        )
                except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
                    data.notes.append(f"{tier['tier']}, {name}: not solved ({exc})")
                    continue
                required = math.nan if result.required is None else float(result.required)
                level = float(tier[lever])
                better_is_higher = lever == "availability_pct"
                enough = bool(result.feasible) and (
                    level >= required if better_is_higher else level <= required
                )
                rows.append(
                    {
                        "tier": tier["tier"],
                        "target_of": label,
                        "lever": name,
                        "unit": unit,
                        "direction": direction,
                        "tier_level": level,
                        "required": required,
                        "ci_low": math.nan if result.ci_low is None else result.ci_low,
                        "ci_high": math.nan if result.ci_high is None else result.ci_high,
                        "feasible": bool(result.feasible),
                        "tier_is_enough": enough,
                        "extrapolated": bool(result.extrapolated),
                    }
                )
    return pd.DataFrame(rows, columns=columns)


def cheapest_plans(
    models: ModelSection, data: ReportData, request: ProposalRequest, n_sim: int = 500
) -> pd.DataFrame:
    """The cheapest service levels that reach each target (:func:`insights.plans.cheapest_plan`).

    Each plan reaches its target with probability ``request.assurance`` over the models'
    uncertainty; ``probability`` is the share of the simulations in which it does.

    Returns
    -------
    DataFrame
        target_of, target, lever, unit, current, planned, caveat (:func:`level_caveat` of the
        planned level), change, cost, total_cost, feasible, assurance, probability, predicted,
        predicted_ci_low, predicted_ci_high.
    """
    columns = ["target_of", "target", "lever", "unit", "current", "planned", "caveat"]
    columns += ["change", "cost", "total_cost", "feasible", "assurance", "probability"]
    columns += ["predicted", "predicted_ci_low", "predicted_ci_high"]
    from satmodel.insights.plans import cheapest_plan

    if not models.results:
        return pd.DataFrame(columns=columns)
    levers = tuple(lever for lever in TIER_LEVERS if lever in data.panel)
    observed = observed_levels(data)
    goals = [("CSAT", "csat_mean", request.csat_target)]
    if request.complaint_target is not None and "complaints" in models.results:
        goals.append(("complaints", "complaint_rate_per_1k", request.complaint_target))
    frames = []
    for label, outcome, target in goals:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plan = cheapest_plan(
                    models.results,
                    data.panel,
                    outcome,
                    target,
                    levers=levers,
                    segment=request.segment,
                    customer=request.customer,
                    config=data.config,
                    n_sim=n_sim,
                    assurance=request.assurance,
                )
        except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
            data.notes.append(f"cheapest plan for the {label} target: not found ({exc})")
            continue
        table = plan.plan_.copy()
        table["caveat"] = [
            level_caveat(x, level, observed.get(x))
            for x, level in zip(table["lever"], table["planned"], strict=True)
        ]
        table["lever"] = [LEVER_NAMES.get(x, (x,))[0] for x in table["lever"]]
        table.insert(0, "target_of", label)
        table.insert(1, "target", float(target))
        table["total_cost"] = plan.total_cost_
        table["feasible"] = bool(plan.feasible_)
        table["assurance"] = math.nan if plan.assurance is None else plan.assurance
        table["probability"] = plan.probability_
        table["predicted"] = plan.predicted_
        table["predicted_ci_low"], table["predicted_ci_high"] = plan.predicted_ci_
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    return out[[c for c in columns if c in out]]


def recommended_tier(predictions: pd.DataFrame) -> str | None:
    """The cheapest option that meets every target with its whole interval (else ``likely``).

    Today's service (the first row, no extra cost) is an option: when it already meets the
    targets, the recommendation is to keep it (its name, ``Current service``). Returns None
    when no option meets the targets.
    """
    tiers = predictions
    for accept in (("yes",), ("yes", "likely")):
        ok = tiers["meets_csat"].isin(accept) & tiers["meets_complaints"].isin((*accept, "-"))
        if ok.any():
            chosen = tiers.loc[ok]
            if chosen["monthly_cost"].notna().any():
                chosen = chosen.sort_values("monthly_cost", kind="stable")
            return str(chosen["tier"].iloc[0])
    return None


def _confidence(assurance: float, probability: float) -> str:
    """``with 80 % confidence (in 83 % of the simulations)``; the point estimate without."""
    sure = (
        f"with {100 * assurance:.0f} % confidence"
        if math.isfinite(assurance)
        else "on the central estimate"
    )
    if math.isfinite(probability):
        sure += f" (in {100 * probability:.0f} % of the simulations)"
    return sure


def plan_sentence(plans: pd.DataFrame, target_of: str = "CSAT") -> str:
    """The cheapest plan to one target in a sentence, or ``""`` when there is none.

    E.g. "The cheapest way to the CSAT target: availability 99.95 %, p95 latency 250 ms,
    resolution time 8 hours, about 45,000 a month; it reaches 4.3 with 80 % confidence (in
    83 % of the simulations)." Each level carries its :func:`level_caveat`. A plan that no
    combination of levels achieves says so, with the confidence asked for.
    """
    plan = plans.loc[plans["target_of"] == target_of] if len(plans) else plans
    if not len(plan):
        return ""
    if not bool(plan["feasible"].iloc[0]):
        first = plan.iloc[0]
        return (
            f"No combination of the service levels reaches the {target_of} target of "
            f"{first['target']:g} {_confidence(first['assurance'], math.nan)}."
        )
    parts = ", ".join(
        f"{r.lever} {r.planned:,.4g} {r.unit}{r.caveat}" for r in plan.itertuples(index=False)
    )
    first = plan.iloc[0]
    return (
        f"The cheapest way to the {target_of} target: {parts}, about "
        f"{first['total_cost']:,.0f} a month; it reaches {first['target']:g} "
        f"{_confidence(first['assurance'], first['probability'])}."
    )


def proposal_text(
    request: ProposalRequest,
    predictions: pd.DataFrame,
    plans: pd.DataFrame | None = None,
    observed: dict[str, tuple[float, float]] | None = None,
):
    """The proposal's answer in a few sentences, as IPython Markdown.

    ``observed`` (:func:`observed_levels`) lets the recommended tier's levels say when they
    lie beyond the data.
    """
    from IPython.display import Markdown

    if predictions.empty:
        return Markdown("No prediction is possible (the models could not be fitted).")
    observed = observed or {}
    current = predictions.iloc[0]
    lines = [
        f"**Today** {md_escape(request.subject)} is predicted at a CSAT of "
        f"{current['csat_mean']:.2f} (95% interval {current['csat_mean_ci_low']:.2f} to "
        f"{current['csat_mean_ci_high']:.2f}) against a target of {request.csat_target:.2f}"
        + (
            f", and {current['complaint_rate_per_1k']:.2f} complaints per 1,000 users against "
            f"{request.complaint_target:g}"
            if request.complaint_target is not None
            else ""
        )
        + "."
    ]
    chosen = recommended_tier(predictions)
    if chosen is None:
        lines.append(
            "**No candidate tier reaches the target.** See the required levels below for what "
            "it would take."
        )
    elif chosen == str(current["tier"]):
        sure = (
            "with its whole 95% interval" if current["meets_csat"] == "yes" else "on the prediction"
        )
        lines.append(f"**Today's service already meets the target** {sure}: no tier is needed.")
    else:
        row = predictions.loc[predictions["tier"] == chosen].iloc[0]
        sure = "with its whole 95% interval" if row["meets_csat"] == "yes" else "on the prediction"
        cost = (
            f" at an estimated {row['monthly_cost']:,.0f} a month over today's service"
            if math.isfinite(row["monthly_cost"])
            else ""
        )
        levels = ", ".join(
            f"{LEVER_NAMES[lever][0]} {row[lever]:g} {LEVERS[lever].unit}"
            + level_caveat(lever, row[lever], observed.get(lever))
            for lever in TIER_LEVERS
        )
        lines.append(
            f"**Recommended tier: {md_escape(chosen)}** ({levels}): predicted CSAT "
            f"{row['csat_mean']:.2f}, meeting the target {sure}{cost}."
        )
    sentence = plan_sentence(plans) if plans is not None else ""
    if sentence:
        lines.append(sentence)
    return Markdown("\n\n".join(lines))


def plot_tiers(predictions: pd.DataFrame, request: ProposalRequest):
    """Predicted CSAT (and complaint rate) per tier with 95% intervals and the targets.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    if predictions.empty:
        return None
    has_complaints = predictions["complaint_rate_per_1k"].notna().any()
    with figure_style():
        figure, axes = new_figure(
            13 if has_complaints else 7, 3.8, ncols=2 if has_complaints else 1
        )
        names = [plot_label(t) for t in predictions["tier"]]
        x = np.arange(len(names))
        panels = [
            (
                "csat_mean",
                "csat_mean_ci_low",
                "csat_mean_ci_high",
                "meets_csat",
                "Predicted mean CSAT",
                "score 1-5",
                request.csat_target,
            )
        ]
        if has_complaints:
            panels.append(
                (
                    "complaint_rate_per_1k",
                    "complaint_ci_low",
                    "complaint_ci_high",
                    "meets_complaints",
                    "Predicted complaints",
                    "per 1,000 users / month",
                    request.complaint_target,
                )
            )
        for ax, (value, low, high, meets, title, unit, target) in zip(axes, panels, strict=True):
            values = predictions[value].astype(float)
            ax.errorbar(
                x,
                values,
                yerr=error_extents(values, predictions[low], predictions[high]),
                fmt="none",
                ecolor=INK_COLOR,
                capsize=4,
            )
            ax.scatter(
                x,
                values,
                s=80,
                zorder=3,
                color=[VERDICT_COLORS.get(m, MAIN_COLOR) for m in predictions[meets]],
            )
            if target is not None:
                ax.axhline(target, color=ALERT_COLOR, linestyle="--", linewidth=1)
                ax.text(
                    x[-1] + 0.3,
                    target,
                    f"target {target:g}",
                    color=ALERT_COLOR,
                    fontsize=8,
                    va="bottom",
                    ha="right",
                )
            ax.set_xticks(x)
            ax.set_xticklabels(names, fontsize=9)
            ax.set_xlim(-0.5, len(names) - 0.5)
            ax.set_title(f"{title} (95% interval; green: target met)", fontsize=10)
            ax.set_ylabel(unit, fontsize=9)
        figure.suptitle(f"Service tiers for {plot_label(request.subject)}", fontsize=12)
    return figure
