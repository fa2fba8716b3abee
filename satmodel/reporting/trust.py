"""Trust section: pooled against within-customer effects, the Mundlak test, sensitivity to
omitted time-varying confounders and the models' warnings (proportional odds among them).

An effect estimated across customers (pooled) mixes what a change in service does with how
customers who get worse service differ anyway; the within-customer effect compares each
customer with itself. Where the two disagree (the Mundlak test), the report reads the within
effects and words the pooled ones as "associated with", never as what "drives" satisfaction.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from satmodel.errors import SatmodelError
from satmodel.reporting.data import ReportData
from satmodel.reporting.diagnostics import model_frame
from satmodel.reporting.drivers import ModelSection, describe_driver
from satmodel.reporting.labels import md_escape, model_label

WITHIN_COLUMN = "customer_id"
MUNDLAK_ALPHA = 0.05
COMPARISON_COLUMNS = ["model", "term", "driver", "pooled_estimate", "pooled_ci_low"]
COMPARISON_COLUMNS += ["pooled_ci_high", "within_estimate", "within_ci_low", "within_ci_high"]
COMPARISON_COLUMNS += ["ratio", "reading"]
MUNDLAK_COLUMNS = ["model", "statistic", "df", "p_value", "verdict", "warnings"]


def pooled_and_within(models: ModelSection, data: ReportData) -> dict[str, tuple]:
    """The pooled and the within-customer fit of every default model, by model name.

    A model that is already a within fit is refitted pooled, a pooled one within
    (``within="customer_id"``), on the rows it was fitted on. A refit that fails is left out
    with a note in ``data.notes``.
    """
    from satmodel.models import fit

    pairs = {}
    for name, result in models.results.items():
        rows = model_frame(data, name)
        if rows is None or WITHIN_COLUMN not in rows.columns:
            continue
        within = None if result.within_ is not None else WITHIN_COLUMN
        options = {"exposure": result.exposure, "weights": result.weights}
        if result.family == "ordinal":
            options["link"] = result.link
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                other = fit(
                    rows,
                    result.formula,
                    result.family,
                    cluster=WITHIN_COLUMN,
                    within=within,
                    **options,
                )
        except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
            data.notes.append(f"{name}: no {'within' if within else 'pooled'} refit ({exc})")
            continue
        pairs[name] = (result, other) if within else (other, result)
    return pairs


def within_csat_model(models: ModelSection, data: ReportData):
    """The within-customer ordinal CSAT fit (the default one when it is within), or None."""
    result = models.results.get("csat")
    if result is None or result.within_ is not None:
        return result
    pair = pooled_and_within(ModelSection(results={"csat": result}), data).get("csat")
    return None if pair is None else pair[1]


def effect_comparison(pairs: dict[str, tuple]) -> pd.DataFrame:
    """Pooled and within effects side by side, per model and driver.

    ``ratio`` is within / pooled estimate; ``reading`` says how to word the driver: "changes
    CSAT within a customer" when the within interval excludes 0, "associated with (between
    customers only)" when only the pooled one does, "no clear effect" otherwise.

    Returns
    -------
    DataFrame
        model, term, driver, pooled_estimate, pooled_ci_low, pooled_ci_high,
        within_estimate, within_ci_low, within_ci_high, ratio, reading.
    """
    frames = []
    for name, (pooled, within) in pairs.items():
        left = pooled.coefficients_.set_index("term")
        right = within.coefficients_.set_index("term")
        terms = [t for t in right.index if t != "Intercept" and t in left.index]
        if within.within_ is not None:
            terms = [t for t in terms if t in within.within_.varying]
        frame = pd.DataFrame(
            {
                "model": name,
                "term": terms,
                "driver": [describe_driver(t)[0] for t in terms],
                "pooled_estimate": left.loc[terms, "estimate"].to_numpy(float),
                "pooled_ci_low": left.loc[terms, "ci_low"].to_numpy(float),
                "pooled_ci_high": left.loc[terms, "ci_high"].to_numpy(float),
                "within_estimate": right.loc[terms, "estimate"].to_numpy(float),
                "within_ci_low": right.loc[terms, "ci_low"].to_numpy(float),
                "within_ci_high": right.loc[terms, "ci_high"].to_numpy(float),
            }
        )
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = out["within_estimate"] / out["pooled_estimate"]
    within_clear = (out["within_ci_low"] > 0) | (out["within_ci_high"] < 0)
    pooled_clear = (out["pooled_ci_low"] > 0) | (out["pooled_ci_high"] < 0)
    out["reading"] = np.select(
        [within_clear, pooled_clear],
        ["changes it within a customer", "associated with it (between customers only)"],
        "no clear effect",
    )
    return out[COMPARISON_COLUMNS]


def comparison_view(comparison: pd.DataFrame) -> pd.DataFrame:
    """The pooled and within effects as a manager reads them: odds ratios (CSAT and
    satisfied share) or rate ratios (complaints) for the step each driver is shown for.

    Parameters
    ----------
    comparison : the output of :func:`effect_comparison`.

    Returns
    -------
    DataFrame
        model, driver, step, pooled_effect, pooled_effect_low, pooled_effect_high,
        within_effect, within_effect_low, within_effect_high, reading.
    """
    described = [describe_driver(str(t)) for t in comparison["term"]]
    steps = np.array([d[1] for d in described], dtype=float)
    out = comparison[["model", "driver"]].reset_index(drop=True)
    out["step"] = [d[2] for d in described]
    for side in ("pooled", "within"):
        for source, suffix in (("estimate", ""), ("ci_low", "_low"), ("ci_high", "_high")):
            values = comparison[f"{side}_{source}"].to_numpy(float)
            out[f"{side}_effect{suffix}"] = np.exp(values * steps)
    out["reading"] = comparison["reading"].to_numpy()
    return out


def brant_failures(diagnosed: pd.DataFrame | None) -> dict[str, list[str]]:
    """Failed proportional-odds (Brant) checks per model, as warning lines."""
    if diagnosed is None or diagnosed.empty:
        return {}
    failed = diagnosed.loc[
        diagnosed["check"].astype(str).str.startswith("proportional_odds")
        & ~diagnosed["ok"].astype(bool)
    ]
    out: dict[str, list[str]] = {}
    for r in failed.itertuples(index=False):
        _, _, term = str(r.check).partition(":")
        what = f"for {describe_driver(term)[0]}" if term else "overall"
        p = "-" if pd.isna(r.value) else f"{float(r.value):.3g}"
        out.setdefault(str(r.model), []).append(
            f"proportional odds rejected {what} (Brant p = {p})"
        )
    return out


def mundlak_table(pairs: dict[str, tuple], diagnosed: pd.DataFrame | None = None) -> pd.DataFrame:
    """The Mundlak test of every model, its verdict, and the model's warnings.

    Returns
    -------
    DataFrame
        model, statistic, df, p_value, verdict ("pooled effects biased" when p < 0.05,
        "pooled and within agree" otherwise, "not testable"), warnings (the within fit's flags
        and every failed proportional-odds check; "none").
    """
    brant = brant_failures(diagnosed)
    rows = []
    for name, (_, within) in pairs.items():
        test = within.mundlak_test_ or {}
        p_value = test.get("p_value")
        if p_value is None:
            verdict = "not testable"
        elif p_value < MUNDLAK_ALPHA:
            verdict = "pooled effects biased"
        else:
            verdict = "pooled and within agree"
        flags = list(within.warnings_) + brant.get(name, [])
        rows.append(
            {
                "model": name,
                "statistic": math.nan if test.get("statistic") is None else test["statistic"],
                "df": int(test.get("df", 0)),
                "p_value": math.nan if p_value is None else p_value,
                "verdict": verdict,
                "warnings": "; ".join(flags) or "none",
            }
        )
    return pd.DataFrame(rows, columns=MUNDLAK_COLUMNS)


def mundlak_text(table: pd.DataFrame):
    """The Mundlak verdict in plain words, as IPython Markdown."""
    from IPython.display import Markdown

    if table.empty:
        return Markdown("Pooled and within-customer effects could not be compared.")
    biased = table.loc[table["verdict"] == "pooled effects biased", "model"].tolist()
    if biased:
        names = ", ".join(md_escape(model_label(m)) for m in biased)
        return Markdown(
            f"Customers with worse service also differ in other ways ({names}: the test of "
            "pooled against within effects rejects, p < 0.05): the pooled effects are biased; "
            "the satisfaction and complaint figures of this report use the within-customer "
            "effects, which are safe from what stays the same about a customer but not from "
            "what changes with the service over time (see the hidden-factor check below). "
            "Customers leave only once, so the revenue figures can only compare customers with "
            "each other and are *associated with* service, not shown to be caused by it."
        )
    return Markdown(
        "Pooled and within effects agree (no model's test rejects at the 5% level): customers "
        "with worse service do not measurably differ in other ways."
    )


def sensitivity_section(data: ReportData):
    """Cinelli-Hazlett sensitivity of the within model of monthly mean CSAT, or None (noted)."""
    from satmodel.insights.sensitivity import csat_mean_sensitivity

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return csat_mean_sensitivity(data.panel)
    except (SatmodelError, ValueError, np.linalg.LinAlgError) as exc:
        data.notes.append(f"sensitivity analysis: not possible ({exc})")
        return None


def sensitivity_view(sensitivity) -> pd.DataFrame:
    """One row per driver: its effect, partial R² with CSAT and the robustness values, in %.

    Effects are in points of the mean CSAT for the step the other driver tables use (per
    doubling of a latency, per percentage point of errors...: :func:`describe_driver`), not
    per unit of the model's term.

    Returns
    -------
    DataFrame
        driver, step, csat_effect, partial_r2_pct, rv_q_pct, rv_qa_pct, benchmark,
        bound_csat_effect_k3 (the effect left by a confounder 3 times as strong as the
        benchmark); empty for None.
    """
    columns = ["driver", "step", "csat_effect", "partial_r2_pct", "rv_q_pct", "rv_qa_pct"]
    columns += ["benchmark", "bound_csat_effect_k3"]
    if sensitivity is None:
        return pd.DataFrame(columns=columns)
    table = sensitivity.table_
    bounds = sensitivity.bounds_
    strongest = bounds.loc[bounds["k_d"] == bounds["k_d"].max()].set_index("term")
    described = [describe_driver(t) for t in table["term"]]
    size = np.array([d[1] for d in described], dtype=float)
    return pd.DataFrame(
        {
            "driver": [d[0] for d in described],
            "step": [d[2] for d in described],
            "csat_effect": size * table["estimate"].astype(float).to_numpy(),
            "partial_r2_pct": 100 * table["partial_r2"].astype(float),
            "rv_q_pct": 100 * table["rv_q"].astype(float),
            "rv_qa_pct": 100 * table["rv_qa"].astype(float),
            "benchmark": [
                describe_driver(b)[0] if isinstance(b, str) else "" for b in table["benchmark"]
            ],
            "bound_csat_effect_k3": size
            * table["term"].map(strongest["adjusted_estimate"]).astype(float).to_numpy(),
        }
    )[columns]


def sensitivity_text(sensitivity):
    """The sensitivity analysis in plain words, as IPython Markdown."""
    from IPython.display import Markdown

    if sensitivity is None:
        return Markdown("The sensitivity analysis could not be computed.")
    table = sensitivity.table_
    significant = table.loc[table["rv_qa"] > 0]
    if significant.empty:
        return Markdown(
            "No driver of the within-customer model of mean CSAT is significant at the 5% "
            "level, so there is no effect for an omitted confounder to explain away."
        )
    weakest = significant.loc[significant["rv_q"].idxmin()]
    name = md_escape(describe_driver(str(weakest["term"]))[0])
    return Markdown(
        f"An omitted factor that changes over time would have to explain at least "
        f"**{100 * weakest['rv_q']:.1f}%** of the remaining variation of both *{name}* (the "
        f"most fragile significant driver) and mean CSAT to explain its effect away "
        f"({100 * weakest['rv_qa']:.1f}% to make it insignificant). The bounds table shows "
        "what a confounder 1-3 times as strong as the strongest measured driver would leave."
    )


def trust_summary(
    pairs: dict[str, tuple], sensitivity=None, backtest: pd.DataFrame | None = None
) -> dict:
    """The ``trust`` block of ``summary.json``: mundlak (per model), robustness_value,
    sensitivity (per driver) and at_risk_backtest (per month)."""
    mundlak = {}
    for name, (_, within) in pairs.items():
        test = within.mundlak_test_ or {}
        mundlak[name] = {
            "statistic": test.get("statistic"),
            "df": int(test.get("df", 0)),
            "p_value": test.get("p_value"),
            "pooled_biased": (
                None if test.get("p_value") is None else bool(test["p_value"] < MUNDLAK_ALPHA)
            ),
        }
    block: dict = {
        "mundlak": mundlak,
        "robustness_value": None if sensitivity is None else sensitivity.robustness_value_,
    }
    if sensitivity is not None:
        block["sensitivity"] = sensitivity.table_.to_dict("records")
    if backtest is not None:
        block["at_risk_backtest"] = {
            "months": backtest.to_dict("records"),
            "flagged": int(backtest["flagged"].sum()) if len(backtest) else 0,
            "precision": _pooled_precision(backtest),
        }
    return block


def _pooled_precision(backtest: pd.DataFrame) -> float:
    answered = int(backtest["flagged_answered"].sum()) if len(backtest) else 0
    return float(backtest["flagged_below"].sum() / answered) if answered else math.nan
