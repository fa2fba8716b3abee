"""Report section "What service quality is worth": NPS, revenue at risk, lever returns.

The section needs a ``contracts`` table (revenue and contract ends); without one it says in one
line that it is left out. The churn hazard compares customers with each other (a pooled
model), so the report says revenue is *associated with* service levels, not moved by them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from satmodel.calendar import add_months, month_name
from satmodel.config import DEFAULT_CURRENCY
from satmodel.errors import InputError, SatmodelError
from satmodel.insights.loyalty import fit_churn_model, require_churn, retention_curves
from satmodel.insights.plans import DEFAULT_ASSURANCE, cheapest_plan
from satmodel.insights.scenarios import observed_range
from satmodel.insights.value import LEVER_STEPS, ValueResult, revenue_at_risk
from satmodel.reporting.data import ALL_SEGMENTS, ReportData
from satmodel.reporting.drivers import ModelSection
from satmodel.reporting.figures import (
    GUIDE_COLOR,
    INK_COLOR,
    MAIN_COLOR,
    MUTED_COLOR,
    error_extents,
    figure_style,
    label_positions,
    legend_below,
    month_axis,
    new_figure,
    palette,
)
from satmodel.reporting.insight_sections import parse_csat_targets
from satmodel.reporting.labels import (
    LEVER_NAMES,
    MAX_TEXT_CHARS,
    level_caveat,
    md_escape,
    plain_terms,
    plot_label,
    segment_label,
)
from satmodel.vocabulary import LEVERS

VALUE_LEFT_OUT = (
    "What service quality is worth: left out, the data has no contracts table (each "
    "customer's monthly revenue and contract end are needed to tell who leaves and what it costs)"
)
"""The one line the section shows without contracts."""

PLAN_COLUMNS = ["plan", "lever", "current", "planned", "caveat", "change", "cost"]
PLAN_COLUMNS += ["revenue_retained"]


@dataclass
class ValueSection:
    """What the section shows (see :func:`value_section`).

    Attributes
    ----------
    month : the month reported.
    nps : :func:`nps_trend`.
    value : revenue at risk and lever returns, None when left out.
    retention : :func:`satmodel.insights.loyalty.retention_curves` (empty when left out).
    plans : :func:`plan_comparison` (the best-return plan and the cheapest CSAT plan).
    csat_target : the CSAT target of the cheapest plan.
    currency : ``[costs] currency`` of the config: what the amounts are in.
    left_out : why the value part is left out (None when shown).
    notes : what the reader should know (a plan not found...).
    """

    month: str
    nps: pd.DataFrame
    value: ValueResult | None = None
    retention: pd.DataFrame = field(default_factory=pd.DataFrame)
    plans: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PLAN_COLUMNS))
    csat_target: float = float("nan")
    currency: str = DEFAULT_CURRENCY
    left_out: str | None = None
    notes: list[str] = field(default_factory=list)


def nps_trend(panel: pd.DataFrame, month: str, months: int = 12) -> pd.DataFrame:
    """NPS per month and segment (and over all customers), from the panel's nps_n and nps_score.

    A month's NPS pools the answers: sum(nps_score * nps_n) / sum(nps_n), so every answer
    counts once.

    Returns
    -------
    DataFrame
        month, segment, responses, nps_score (NaN without answers); empty without nps_n.
    """
    columns = ["month", "segment", "responses", "nps_score"]
    if not {"nps_n", "nps_score"} <= set(panel.columns):
        return pd.DataFrame(columns=columns)
    months_ = panel["month"].astype(str)
    shown = panel.loc[(months_ > add_months(month, -months)) & (months_ <= month)]
    answered = shown.assign(
        responses=shown["nps_n"].fillna(0).astype(float),
        net=(shown["nps_score"] * shown["nps_n"]).fillna(0.0),
    )
    frames = [answered.assign(segment=answered["segment"].astype(str))]
    frames.append(answered.assign(segment=ALL_SEGMENTS))
    pooled = pd.concat(frames).groupby(["month", "segment"], sort=True)[["responses", "net"]].sum()
    pooled["nps_score"] = (pooled["net"] / pooled["responses"]).where(pooled["responses"] > 0)
    return pooled.reset_index()[columns].assign(month=lambda f: f["month"].astype(str))


def value_section(
    models: ModelSection,
    data: ReportData,
    csat_targets: str | float | None = None,
    horizon: int = 12,
    months: int = 12,
    n_draws: int = 500,
    seed: int = 0,
) -> ValueSection:
    """NPS trend, revenue at risk, lever returns, the two plans and the retention curves.

    Never raises for a part that cannot be computed: the reason goes to ``left_out`` (no
    contracts, no churn model) or ``notes`` (no cheapest plan), so the report still runs.

    Parameters
    ----------
    models : the report's CSAT and complaint models (they carry a lever step through CSAT and
        complaints into the hazard, and give the cheapest CSAT plan).
    data : the report's data.
    csat_targets : as for :func:`parse_csat_targets`; the plan uses the default target.
    horizon : months of revenue at risk.
    months : months of the NPS trend.
    n_draws, seed : coefficient draws of the intervals.
    """
    section = ValueSection(
        month=data.month,
        nps=nps_trend(data.panel, data.month, months),
        currency=str(getattr(data.config, "currency", DEFAULT_CURRENCY)),
    )
    try:
        require_churn(data.panel)
    except InputError:
        section.left_out = VALUE_LEFT_OUT
        return section
    outcome_models = {k: v for k, v in models.results.items() if k in ("csat", "complaints")}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            churn = fit_churn_model(data.panel)
            section.value = revenue_at_risk(
                data.panel,
                churn,
                month=data.month,
                horizon=horizon,
                outcome_models=outcome_models,
                config=data.config,
                n_draws=n_draws,
                seed=seed,
            )
        section.retention = retention_curves(data.panel)
    except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
        section.left_out = (
            f"What service quality is worth: left out, the churn model could not be fitted "
            f"({str(exc).splitlines()[0]})"
        )
        return section
    section.csat_target = parse_csat_targets(csat_targets, [ALL_SEGMENTS])[ALL_SEGMENTS]
    section.plans = plan_comparison(section.value, models, data, section.csat_target, section.notes)
    return section


def plan_comparison(
    value: ValueResult, models: ModelSection, data: ReportData, target: float, notes: list[str]
) -> pd.DataFrame:
    """The best-return plan beside the cheapest plan that reaches the CSAT target.

    Returns
    -------
    DataFrame
        plan (``best return`` or ``cheapest to CSAT <target>``, reached with
        :data:`~satmodel.insights.plans.DEFAULT_ASSURANCE` confidence), lever, current,
        planned, caveat (:func:`~satmodel.reporting.labels.level_caveat` of the planned
        level), change, cost (per month), revenue_retained (per month, the best-return plan's
        total on its first row). A plan not found adds a line to ``notes``.
    """
    rows = []
    levels = {row["lever"]: row for row in value.levers.to_dict("records")}
    for lever in value.best_plan["levers"]:
        rows.append(
            {
                "plan": "best return",
                "lever": LEVER_NAMES.get(lever, (lever,))[0],
                "change": LEVER_STEPS[lever],
                "cost": levels[lever]["cost"],
                "revenue_retained": np.nan,
            }
        )
    if rows:
        rows[0]["revenue_retained"] = value.best_plan["revenue_retained"]
    else:
        notes.append("no lever step pays back its cost: the best-return plan is to change nothing")
    levers = tuple(lever for lever in LEVER_STEPS if lever in data.panel.columns)
    if "csat" not in models.results:
        notes.append("cheapest plan to the CSAT target: not available (no CSAT model)")
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plan = cheapest_plan(
                    models.results,
                    data.panel,
                    "csat_mean",
                    target,
                    levers=levers,
                    config=data.config,
                    n_sim=200,
                    assurance=DEFAULT_ASSURANCE,
                )
        except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
            notes.append(f"cheapest plan to the CSAT target: not found ({exc})")
        else:
            label = f"cheapest to CSAT {target:g}"
            if not plan.feasible_:
                notes.append(
                    f"no combination of service levels reaches CSAT {target:g} over all customers"
                )
            elif not plan.total_cost_ > 0:
                rows.append({"plan": label, "lever": "none: target already reached", "cost": 0.0})
            else:
                for row in plan.plan_.to_dict("records"):
                    if row["cost"] > 0:
                        rows.append(
                            {
                                "plan": label,
                                "lever": LEVER_NAMES.get(row["lever"], (row["lever"],))[0],
                                "current": row["current"],
                                "planned": row["planned"],
                                "caveat": level_caveat(
                                    row["lever"],
                                    row["planned"],
                                    observed_range(LEVERS[row["lever"]], data.panel),
                                ),
                                "change": row["change"],
                                "cost": row["cost"],
                                "revenue_retained": np.nan,
                            }
                        )
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def segment_value_view(section: ValueSection) -> pd.DataFrame:
    """Revenue at risk by segment with its interval, and the share of monthly revenue (%).

    ``under_contract`` counts the segment's customers under contract this month (and not
    leaving at its end): the customers whose revenue can be at risk.
    """
    columns = ["segment", "under_contract", "monthly_revenue", "revenue_at_risk", "ci_low"]
    columns += ["ci_high"]
    if section.value is None:
        return pd.DataFrame(columns=[*columns, "share_at_risk_pct"])
    table = section.value.by_segment.rename(columns={"customers": "under_contract"})
    return table[columns].assign(share_at_risk_pct=100 * table["share_at_risk"])


def lever_view(section: ValueSection) -> pd.DataFrame:
    """Each lever step: revenue retained (with interval), complaint cost avoided, cost, ROI %."""
    columns = ["lever", "step", "revenue_retained", "ci_low", "ci_high"]
    columns += ["complaint_cost_avoided", "cost", "net_return", "roi_pct"]
    if section.value is None or section.value.levers.empty:
        return pd.DataFrame(columns=columns)
    levers = section.value.levers
    return pd.DataFrame(
        {
            "lever": [LEVER_NAMES.get(x, (x,))[0] for x in levers["lever"]],
            "step": [
                _step_text(x, s) for x, s in zip(levers["lever"], levers["change"], strict=True)
            ],
            "revenue_retained": levers["revenue_retained"],
            "ci_low": levers["revenue_retained_ci_low"],
            "ci_high": levers["revenue_retained_ci_high"],
            "complaint_cost_avoided": levers["complaint_cost_avoided"],
            "cost": levers["cost"],
            "net_return": levers["net_return"],
            "roi_pct": 100 * levers["roi"],
        }
    )


def _step_text(lever: str, step: float) -> str:
    unit = {"availability_pct": " pp", "latency_p95_ms": " ms", "resolution_hours_median": " h"}
    return f"{step:+g}{unit.get(lever, '')}"


def _roi_interval(levers: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """ROI (%) at the ends of the revenue-retained interval."""
    cost = levers["cost"].where(levers["cost"] > 0)
    low = levers["revenue_retained_ci_low"] + levers["complaint_cost_avoided"] - levers["cost"]
    high = levers["revenue_retained_ci_high"] + levers["complaint_cost_avoided"] - levers["cost"]
    return (100 * low / cost).to_numpy(float), (100 * high / cost).to_numpy(float)


def value_text(section: ValueSection):
    """The section's reading in plain words, as IPython Markdown."""
    from IPython.display import Markdown

    lines = []
    overall = section.nps.loc[section.nps["segment"] == ALL_SEGMENTS].set_index("month")
    now = overall["nps_score"].get(section.month, np.nan)
    if np.isfinite(now):
        before = overall["nps_score"].get(add_months(section.month, -3), np.nan)
        trend = (
            f", {abs(now - before):.0f} points {'up' if now >= before else 'down'} on three "
            "months ago"
            if np.isfinite(before)
            else ""
        )
        lines.append(f"**NPS** in {month_name(section.month)}: **{now:+.0f}**{trend}.")
    else:
        lines.append("**NPS**: no NPS answers in the surveys this month.")
    if section.left_out:
        lines.append(md_escape(plain_terms(section.left_out), MAX_TEXT_CHARS) + ".")
        return Markdown("\n\n".join(lines))
    value = section.value
    share = value.revenue_at_risk / value.monthly_revenue if value.monthly_revenue > 0 else 0.0

    def money(amount: float) -> str:
        return f"{md_escape(section.currency)} {amount:,.0f}"

    lines.append(
        f"**Revenue at risk**: if service stays as it is, customers paying "
        f"**{money(value.revenue_at_risk)}** a month ({share:.0%} of today's monthly revenue of "
        f"{money(value.monthly_revenue)}) are expected to leave within {value.horizon_months} "
        f"months (95% interval {money(value.revenue_at_risk_ci_low)} to "
        f"{money(value.revenue_at_risk_ci_high)})."
    )
    best = value.best_plan
    if best["levers"]:
        names = ", ".join(LEVER_NAMES.get(x, (x,))[0] for x in best["levers"])
        lines.append(
            f"**Best return**: improving {names} by one step is associated with keeping "
            f"{money(best['revenue_retained'])} of monthly revenue and saving "
            f"{money(best['complaint_cost_avoided'])} of complaint handling, for "
            f"{money(best['cost'])} a month: a net return of {money(best['net_return'])} a "
            "month."
        )
    else:
        lines.append("**Best return**: no single step of service improvement pays back its cost.")
    cheapest = section.plans.loc[section.plans["plan"].str.startswith("cheapest")]
    units = {LEVER_NAMES.get(key, (key,))[0]: spec.unit for key, spec in LEVERS.items()}
    if len(cheapest) and cheapest["cost"].sum() > 0:
        levels = ", ".join(
            f"{r.lever} to {r.planned:,.4g} {units.get(r.lever, '')}".rstrip() + r.caveat
            for r in cheapest.itertuples(index=False)
        )
        lines.append(
            f"**Cheapest way to CSAT {section.csat_target:g}** over all customers (reached with "
            f"{100 * DEFAULT_ASSURANCE:.0f} % confidence): improve {levels}, for "
            f"{money(cheapest['cost'].sum())} a month."
        )
    elif len(cheapest):
        lines.append(
            f"**CSAT target {section.csat_target:g}**: already reached over all customers, "
            "nothing to spend to reach it."
        )
    lines.append(
        "These amounts come from comparing customers who got better and worse service (a "
        "pooled model), so revenue is *associated with* service quality, not shown to be "
        "caused by it."
    )
    lines += [f"- {md_escape(note, MAX_TEXT_CHARS)}" for note in section.notes]
    return Markdown("\n\n".join(lines))


def plot_nps_trend(section: ValueSection):
    """NPS by month, one line per segment and a bold line over all customers (None if empty)."""
    nps = section.nps.dropna(subset=["nps_score"])
    if nps.empty:
        return None
    months = sorted(nps["month"].unique())
    segments = [s for s in nps["segment"].unique() if s != ALL_SEGMENTS]
    colours = palette(segments)
    with figure_style():
        figure, (ax,) = new_figure(9, 4)
        for name in [*segments, ALL_SEGMENTS]:
            rows = nps.loc[nps["segment"] == name].set_index("month").reindex(months)
            overall = name == ALL_SEGMENTS
            ax.plot(
                range(len(months)),
                rows["nps_score"],
                marker="o",
                color=INK_COLOR if overall else colours[name],
                linewidth=2.5 if overall else 1.2,
                label=plot_label(segment_label(name)),
            )
        ax.axhline(0, color=GUIDE_COLOR, linewidth=0.8)
        ax.set_ylabel("NPS (-100 to +100)", fontsize=9)
        month_axis(ax, months)
        legend_below(figure, ax)
        figure.suptitle(
            f"Net Promoter Score by segment, {len(months)} months to {month_name(section.month)}",
            fontsize=12,
        )
    return figure


def plot_lever_returns(section: ValueSection):
    """What each lever step returns: value vs cost per month, and ROI with its interval.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when there is no lever to show.
    """
    if section.value is None or section.value.levers.empty:
        return None
    levers = section.value.levers
    labels = [
        f"{LEVER_NAMES.get(x, (x,))[0]} {_step_text(x, s)}"
        for x, s in zip(levers["lever"], levers["change"], strict=True)
    ]
    value = levers["revenue_retained"] + levers["complaint_cost_avoided"]
    low = levers["revenue_retained_ci_low"] + levers["complaint_cost_avoided"]
    high = levers["revenue_retained_ci_high"] + levers["complaint_cost_avoided"]
    roi = 100 * levers["roi"].to_numpy(float)
    roi_low, roi_high = _roi_interval(levers)
    with figure_style():
        figure, (left, right) = new_figure(12, 1.2 + 0.8 * len(levers), ncols=2)
        y = label_positions(left, [plot_label(x) for x in labels])
        left.barh(
            y + 0.2, value, height=0.4, color=MAIN_COLOR, label="revenue kept + complaints saved"
        )
        left.errorbar(
            value,
            y + 0.2,
            xerr=error_extents(value, low, high),
            fmt="none",
            ecolor=INK_COLOR,
            capsize=3,
        )
        left.barh(y - 0.2, levers["cost"], height=0.4, color=MUTED_COLOR, label="cost")
        left.set_xlabel("per month (currency of the contracts)", fontsize=9)
        left.set_title("Value against cost of one step", fontsize=11)
        left.invert_yaxis()
        label_positions(right, ["" for _ in labels])
        right.barh(y, roi, color=np.where(roi >= 0, MAIN_COLOR, MUTED_COLOR))
        right.errorbar(
            roi,
            y,
            xerr=error_extents(roi, roi_low, roi_high),
            fmt="none",
            ecolor=INK_COLOR,
            capsize=3,
        )
        right.axvline(0, color=GUIDE_COLOR, linewidth=0.8)
        right.set_xlabel("return on cost, % ((value - cost) / cost)", fontsize=9)
        right.set_title("Return on each step (95% interval)", fontsize=11)
        right.invert_yaxis()
        figure.legend(loc="outside lower center", ncols=2, fontsize=9)
        figure.suptitle(
            f"What one step of each service improvement returns: revenue kept and complaint "
            f"handling saved against its monthly cost, {month_name(section.month)}",
            fontsize=12,
        )
    return figure


def plot_retention(section: ValueSection):
    """Kaplan-Meier retention by availability band, with 95% bands (None when empty)."""
    curves = section.retention
    if curves.empty:
        return None
    bands = list(dict.fromkeys(curves["band"]))
    colours = palette(bands)
    with figure_style():
        figure, (ax,) = new_figure(9, 4)
        for band in bands:
            rows = curves.loc[curves["band"] == band]
            x = np.concatenate([[0], rows["month_number"].to_numpy(float)])
            kept = 100 * np.concatenate([[1.0], rows["retention"].to_numpy(float)])
            ax.step(
                x,
                kept,
                where="post",
                color=colours[band],
                label=f"{band} ({rows['customers'].iloc[0]} customers)",
            )
            ax.fill_between(
                x,
                100 * np.concatenate([[1.0], rows["ci_low"].to_numpy(float)]),
                100 * np.concatenate([[1.0], rows["ci_high"].to_numpy(float)]),
                step="post",
                color=colours[band],
                alpha=0.15,
            )
        ax.set_xlabel("months since the customer was first seen under contract", fontsize=9)
        ax.set_ylabel("customers still under contract, %", fontsize=9)
        legend_below(figure, ax, title="mean availability")
        figure.suptitle(
            "Customers kept over time by availability band (Kaplan-Meier, 95% bands)", fontsize=12
        )
    return figure


def value_summary(section: ValueSection) -> dict[str, Any]:
    """The ``value`` block of summary.json.

    Keys: month, nps_score (all customers, this month), left_out, and when shown
    horizon_months, monthly_revenue, revenue_at_risk, revenue_at_risk_ci_low,
    revenue_at_risk_ci_high, best_lever (the lever with the largest net return, None when
    none pays back), best_plan, by_segment.
    """
    overall = section.nps.loc[section.nps["segment"] == ALL_SEGMENTS].set_index("month")
    block: dict[str, Any] = {
        "month": section.month,
        "nps_score": overall["nps_score"].get(section.month, np.nan),
        "left_out": section.left_out,
    }
    value = section.value
    if value is None:
        return block
    paying = value.levers.loc[value.levers["net_return"] > 0] if len(value.levers) else value.levers
    block.update(
        {
            "horizon_months": value.horizon_months,
            "monthly_revenue": value.monthly_revenue,
            "revenue_at_risk": value.revenue_at_risk,
            "revenue_at_risk_ci_low": value.revenue_at_risk_ci_low,
            "revenue_at_risk_ci_high": value.revenue_at_risk_ci_high,
            "best_lever": paying["lever"].iloc[0] if len(paying) else None,
            "best_plan": dict(value.best_plan),
            "by_segment": value.by_segment.to_dict("records"),
        }
    )
    return block
