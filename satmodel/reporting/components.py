"""Report section "Which components and problems cost satisfaction", and the component
pieces of the sales proposal and the gap analysis.

The numbers come from :func:`satmodel.insights.components.component_costs`; this module
draws and tabulates them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from satmodel.calendar import add_months, minutes_in_month
from satmodel.errors import InputError
from satmodel.features.components import (
    component_downtime,
    component_summary,
    names_components,
    problem_occurrences,
)
from satmodel.reporting.figures import error_extents, figure_style, legend_below, new_figure
from satmodel.reporting.labels import kind_label, plot_label


def plot_costs(result, top: int = 10):
    """Ranked bars of the CSAT points each component and each problem costs, with intervals.

    Parameters
    ----------
    result : :class:`satmodel.insights.components.ComponentsResult`
    top : at most this many bars per panel.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when nothing has a cost.
    """
    frames = [
        ("Components", result.components_, "component_id"),
        ("Recurring problems", result.problems_, "problem_id"),
    ]
    frames = [(t, f.dropna(subset=["csat_points"]).head(top), k) for t, f, k in frames]
    frames = [(t, f, k) for t, f, k in frames if len(f)]
    if not frames:
        return None
    with figure_style():
        figure, axes = new_figure(12, 0.5 + 0.45 * max(len(f) for _, f, _ in frames), len(frames))
        for ax, (title, frame, key) in zip(axes, frames, strict=True):
            order = frame.iloc[::-1]
            labels = [plot_label(name) for name in display_names(order, key)]
            ax.barh(
                labels,
                order["csat_points"],
                xerr=error_extents(
                    order["csat_points"], order["csat_points_ci_low"], order["csat_points_ci_high"]
                ),
                color="#c0504d",
                capsize=3,
            )
            ax.set_title(title)
            ax.set_xlabel("CSAT points gained had its downtime not happened (95% interval)")
            ax.set_xlim(left=0)
        months = result.month or f"{result.months[0]}..{result.months[1]}"
        figure.suptitle(f"Which components and problems cost satisfaction ({months})")
    return figure


def display_names(frame: pd.DataFrame, key: str = "component_id") -> list[str]:
    """The name of each row where the data gives one, else its id (``key``).

    A name two rows share is followed by the row's id, e.g. ``Core network (net-core)``.
    """
    ids = [str(k) for k in frame[key]]
    given = frame["name"] if "name" in frame else pd.Series(None, index=frame.index)
    names = [n if isinstance(n, str) and n.strip() else k for n, k in zip(given, ids, strict=True)]
    counts = pd.Series(names).value_counts()
    return [
        f"{n} ({k})" if counts[n] > 1 and n != k else n for n, k in zip(names, ids, strict=True)
    ]


def _with_interval(value: float, low: float, high: float, digits: int) -> str:
    """``0.055 (0.051 to 0.059)``; ``-`` when the value is missing."""
    if value is None or not math.isfinite(value):
        return "-"
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:,.{digits}f}"
    return f"{value:,.{digits}f} ({low:,.{digits}f} to {high:,.{digits}f})"


def components_view(result) -> pd.DataFrame:
    """The components of :func:`components_section` as the report's table shows them.

    Each component by its name (its id where the data names none), its kind in words
    (:func:`~satmodel.reporting.labels.kind_label`), the change failure rate in per cent
    and each cost with its 95% interval in one cell, so the table fits the page.

    Parameters
    ----------
    result : :class:`satmodel.insights.components.ComponentsResult`

    Returns
    -------
    DataFrame
        component, kind, service, incidents, customers_affected, downtime_minutes
        (customer-minutes), mttr_hours, change_failure_pct, csat_points_interval (e.g.
        ``0.055 (0.051 to 0.059)``), complaints_interval (whole complaints per month); in
        the order of ``result.components_``.
    """
    frame = result.components_
    kinds = [k if pd.isna(k) else kind_label(k) for k in frame["kind"]]
    out = pd.DataFrame(
        {
            "component": display_names(frame),
            "kind": pd.Series(kinds, index=frame.index, dtype=object),
            "service": frame["service"],
            "incidents": frame["incidents"],
            "customers_affected": frame["customers_affected"],
            "downtime_minutes": frame["downtime_minutes"],
            "mttr_hours": frame["mttr_hours"],
            "change_failure_pct": 100.0 * frame["change_failure_rate"].astype(float),
        }
    )
    for column, (value, digits) in {
        "csat_points_interval": ("csat_points", 3),
        "complaints_interval": ("complaints_per_month", 0),
    }.items():
        out[column] = [
            _with_interval(*values, digits)
            for values in zip(
                frame[value].astype(float),
                frame[f"{value}_ci_low"].astype(float),
                frame[f"{value}_ci_high"].astype(float),
                strict=True,
            )
        ]
    return out.reset_index(drop=True)


def plot_recurrence(source, result, top: int = 5):
    """Timeline of the top problems' occurrences (one row per problem, one mark each).

    Returns
    -------
    matplotlib.figure.Figure or None
        None without recurring problems.
    """
    problems = list(result.problems_["problem_id"].head(top))
    if not problems:
        return None
    occurrences = problem_occurrences(source, *result.months)
    with figure_style():
        figure, (ax,) = new_figure(12, 0.8 + 0.5 * len(problems))
        for row, problem in enumerate(reversed(problems)):
            mine = occurrences[occurrences["problem_id"] == problem]
            hours = (mine["end_ts"] - mine["start_ts"]).dt.total_seconds() / 3600
            ax.scatter(mine["start_ts"], [row] * len(mine), s=20 + 30 * hours, color="#4f81bd")
        ax.set_yticks(range(len(problems)), list(reversed(problems)))
        ax.set_title("Top recurring problems: each occurrence (size = hours)")
    return figure


def planned_minutes(panel: pd.DataFrame) -> pd.DataFrame:
    """Planned and unplanned customer-minutes of downtime per month.

    Returns
    -------
    DataFrame
        month, unplanned_minutes, planned_minutes, planned_share (of all minutes; NaN
        without any).
    """
    columns = ["downtime_minutes", "planned_downtime_minutes"]
    if not set(columns) <= set(panel.columns):
        return pd.DataFrame(
            columns=["month", "unplanned_minutes", "planned_minutes", "planned_share"]
        )
    sums = panel.groupby("month")[columns].sum().reset_index()
    sums.columns = ["month", "unplanned_minutes", "planned_minutes"]
    total = sums["unplanned_minutes"] + sums["planned_minutes"]
    sums["planned_share"] = (sums["planned_minutes"] / total.where(total > 0)).astype(float)
    return sums


def plot_planned(panel: pd.DataFrame):
    """Stacked monthly bars: unplanned downtime and planned maintenance minutes.

    Returns
    -------
    matplotlib.figure.Figure or None
        None without incidents.
    """
    sums = planned_minutes(panel)
    if sums.empty:
        return None
    with figure_style():
        figure, (ax,) = new_figure(12, 3.6)
        ax.bar(sums["month"], sums["unplanned_minutes"], label="unplanned (counts as downtime)")
        ax.bar(
            sums["month"],
            sums["planned_minutes"],
            bottom=sums["unplanned_minutes"],
            label="planned maintenance (left out)",
            color="#9bbb59",
        )
        ax.set_ylabel("customer-minutes")
        ax.tick_params(axis="x", rotation=45)
        ax.set_title("Planned vs unplanned minutes")
        legend_below(figure, ax)
    return figure


def component_commitments(
    components: pd.DataFrame, availability_pct: float, month: str, timezone: str = "UTC"
):
    """Component-level availability each component must hold for a service level.

    The month's downtime budget (``100 - availability_pct`` % of its minutes, per customer)
    is shared among the components in proportion to the downtime each causes today; a
    component's commitment is the availability that leaves it its share. Downtime on two
    components at once counts once end to end, so components holding their commitments
    keep the service level.

    Parameters
    ----------
    components : ``ComponentsResult.components_`` or
        :func:`~satmodel.features.components.component_summary` (component_id, name,
        downtime_minutes).
    availability_pct : the recommended service level, e.g. 99.9.
    month : ``YYYY-MM`` (its length sets the minutes).
    timezone : the calendar's time zone (a month with a daylight-saving change is an hour
        shorter or longer).

    Returns
    -------
    DataFrame
        component_id, name (the id where the data names none), share (of today's downtime),
        budget_minutes (per customer and month), availability_pct (the commitment); largest
        share first; empty when no component had downtime.

    Raises
    ------
    InputError
        When availability_pct is not a percentage below 100.
    """
    level = float(availability_pct)
    if not 0 < level < 100:
        raise InputError(
            f"availability_pct: must be a percentage between 0 and 100, e.g. 99.9; got "
            f"{availability_pct!r}"
        )
    minutes = minutes_in_month(month, timezone)
    budget = minutes * (100.0 - level) / 100.0
    frame = components.loc[components["downtime_minutes"] > 0]
    share = frame["downtime_minutes"] / frame["downtime_minutes"].sum()
    names = frame["name"] if "name" in frame else pd.Series(None, index=frame.index)
    out = pd.DataFrame(
        {
            "component_id": frame["component_id"],
            "name": names.where(names.notna() & (names != ""), frame["component_id"]),
            "share": share,
            "budget_minutes": budget * share,
            "availability_pct": 100.0 * (1.0 - budget * share / minutes),
        }
    )
    out = out.sort_values(["share", "component_id"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)


def proposal_commitments(report, offer, months: int = 12) -> pd.DataFrame | None:
    """The component commitments behind a proposal's recommended availability, or None.

    Today's downtime shares come from the ``months`` months up to the proposal's month.

    Parameters
    ----------
    report : :class:`satmodel.reporting.data.ReportData`
    offer : :class:`satmodel.reporting.offer.Offer`
    months : months of downtime the shares are taken from.

    Returns
    -------
    DataFrame or None
        :func:`component_commitments`; None without a recommendation, when the incidents
        name no component or no component had downtime.
    """
    chosen = offer.recommended
    if chosen is None or not names_components(report.source):
        return None
    level = float(chosen.levels["availability_pct"])
    if not math.isfinite(level) or level >= 100:
        return None
    first = max(add_months(report.month, -months + 1), report.window[0])
    summary = component_summary(report.source, first, report.month)
    zone = report.config.calendar.timezone
    commitments = component_commitments(summary, level, report.month, zone)
    return commitments if len(commitments) else None


def component_names(source) -> pd.Series:
    """Component name by component_id (empty without a components table)."""
    if not source.has("components"):
        return pd.Series(dtype=object)
    known = source.frame("components")
    names = known["name"].where(known["name"].notna(), known["component_id"])
    return pd.Series(names.astype(str).to_numpy(), index=known["component_id"].astype(str))


def gap_causes(
    source,
    customers: list[str],
    month: str,
    ids: Callable[[pd.Series], pd.Series] | None = None,
) -> pd.DataFrame:
    """The components whose downtime hit each customer in a month (for the gap analysis).

    Parameters
    ----------
    source : satmodel.sources.Source, with an incidents table.
    customers : the customer ids asked about, as the report shows them.
    month : ``YYYY-MM``.
    ids : maps the source's customer ids to the report's (a pseudonymised report); None:
        the report shows the source's ids.

    Returns
    -------
    DataFrame
        customer_id (in the order asked), caused_by (the components' names, most downtime
        first, comma-separated; empty when none), downtime_minutes (the customer's downtime
        on components, each component's union summed; 0 when none).
    """
    down = component_downtime(source, month, month)
    if ids is not None:
        down = down.assign(customer_id=ids(down["customer_id"]).astype(str).to_numpy())
    wanted = [str(c) for c in customers]
    down = down.loc[down["customer_id"].isin(wanted)]
    names = down["component_id"].map(component_names(source))
    down = down.assign(name=names.where(names.notna(), down["component_id"]))
    down = down.sort_values(
        ["customer_id", "downtime_minutes", "component_id"],
        ascending=[True, False, True],
        kind="stable",
    )
    by_customer = down.groupby("customer_id", sort=False)
    out = pd.DataFrame({"customer_id": wanted})
    named = by_customer["name"].agg(", ".join).to_dict()
    out["caused_by"] = [named.get(c, "") for c in wanted]
    minutes = out["customer_id"].map(by_customer["downtime_minutes"].sum())
    out["downtime_minutes"] = minutes.astype(float).fillna(0.0)
    return out


def with_gap_causes(gaps: pd.DataFrame, report) -> pd.DataFrame:
    """``gaps`` with a ``caused_by`` column: the components behind each availability miss.

    Parameters
    ----------
    gaps : :func:`satmodel.reporting.expectation_gaps` of the report's month.
    report : :class:`satmodel.reporting.data.ReportData` (its ``ids`` map the source's
        customer ids the way the panel's are).

    Returns
    -------
    DataFrame
        ``gaps`` unchanged when the incidents name no component; else with caused_by (the
        components' names, most downtime that month first; empty for a customer whose
        availability was not missed).
    """
    if "missed" not in gaps or not names_components(report.source):
        return gaps
    causes = gap_causes(report.source, list(gaps["customer_id"]), report.month, report.ids)
    caused = causes.set_index("customer_id")["caused_by"]
    availability = gaps["missed"].str.split(", ").map(lambda names: "availability" in names)
    shown = gaps["customer_id"].astype(str).map(caused).fillna("")
    return gaps.assign(caused_by=shown.where(availability.astype(bool), ""))


def components_section(report, enabled: bool = True):
    """The month's component and problem costs for the report, or None.

    None when models are not fitted (``enabled`` false), or the data names no component,
    has no incidents or no survey responses.

    Parameters
    ----------
    report : :class:`satmodel.reporting.data.ReportData`
    enabled : fit the within-customer models (the report's ``fit_models`` parameter).

    Returns
    -------
    ComponentsResult or None
    """
    from satmodel.insights.components import component_costs

    source = report.source
    if not enabled or report.responses is None or not names_components(source):
        return None
    return component_costs(
        source, report.panel, report.responses, month=report.month, ids=report.ids
    )
