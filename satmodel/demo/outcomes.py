"""The true models behind the demo's outcomes, and the outcomes drawn from them.

The true linear predictors are evaluated on the service panel with patsy, so the truth is
exactly what a statsmodels formula computes. CSAT per survey response follows an ordinal
logit, complaints per customer-month an NB2 with exposure ``active_users``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from satmodel.demo.tables import SEGMENTS, make_ids, pick_category
from satmodel.errors import InputError, SatmodelError

# Driver terms shared by both true models (statsmodels/patsy formula syntax).
_RHS = (
    "np.log(latency_p95_ms)"
    " + np.maximum(0, np.log(latency_p95_ms / expected_latency_p95_ms))"
    " + np.log1p(downtime_minutes)"
    " + np.log1p(downtime_minutes_lag1)"
    " + error_rate"
    " + C(segment)"
)

# Survey sampling per segment (enterprise, mid_market, smb).
_SURVEY_RESPONSE_PROB = (0.60, 0.45, 0.35)
_SURVEY_EXTRA_Q = (0.70, 0.50, 0.35)
_SURVEY_MAX_EXTRA = 5
_NPS_NULL_SHARE = 0.15

COMPLAINT_CATEGORIES = ("performance", "outage", "errors", "support", "billing", "other")
"""Levels of ``complaints.category``."""


def default_truth() -> dict[str, Any]:
    """The true models behind the demo's satisfaction and complaints.

    Returns
    -------
    dict
        ``csat`` (ordinal logit: ``params`` without intercept and 4 ascending ``thresholds``)
        and ``complaints`` (NB2 with exposure ``active_users``, ``params`` with ``Intercept``
        and ``alpha``), each keyed by the exact patsy term names of its ``formula``; plus
        ``lag_fill``, the rule for months without a previous month.
    """
    return {
        "csat": {
            "family": "ordinal",
            "link": "logit",
            "formula": "csat ~ " + _RHS,
            "unit": "one survey response; drivers are its customer-month's panel row",
            "definition": (
                "P(csat <= k) = logistic(threshold_k - x'beta) for k = 1..4; no intercept "
                "(the Intercept column patsy makes is dropped, as OrderedModel.from_formula "
                "does); enterprise is the reference segment"
            ),
            "params": {
                "C(segment)[T.mid_market]": 0.25,
                "C(segment)[T.smb]": 0.45,
                "np.log(latency_p95_ms)": -0.60,
                "np.maximum(0, np.log(latency_p95_ms / expected_latency_p95_ms))": -1.20,
                "np.log1p(downtime_minutes)": -0.18,
                "np.log1p(downtime_minutes_lag1)": -0.10,
                "error_rate": -25.0,
            },
            "thresholds": [-7.20, -6.15, -5.00, -3.40],
        },
        "complaints": {
            "family": "negbin",
            "variance": "NB2: var = mu + alpha * mu**2",
            "formula": "complaints ~ " + _RHS,
            "exposure": "active_users",
            "unit": "one customer-month of the panel",
            "definition": (
                "complaints ~ NegativeBinomial(mu, alpha) with "
                "log(mu) = log(active_users) + x'gamma"
            ),
            "params": {
                "Intercept": -9.40,
                "C(segment)[T.mid_market]": 0.20,
                "C(segment)[T.smb]": 0.50,
                "np.log(latency_p95_ms)": 0.50,
                "np.maximum(0, np.log(latency_p95_ms / expected_latency_p95_ms))": 0.80,
                "np.log1p(downtime_minutes)": 0.12,
                "np.log1p(downtime_minutes_lag1)": 0.07,
                "error_rate": 15.0,
            },
            "alpha": 0.4,
        },
        "lag_fill": {"downtime_minutes_lag1": "downtime_minutes"},
    }


def expected_responses(segment_codes: np.ndarray) -> np.ndarray:
    """Expected survey responses of a customer-month, by segment code (index of SEGMENTS)."""
    prob = np.array(_SURVEY_RESPONSE_PROB)[segment_codes]
    return prob * (1 + _SURVEY_MAX_EXTRA * np.array(_SURVEY_EXTRA_Q)[segment_codes])


def design_matrix(model: dict[str, Any], panel: pd.DataFrame) -> np.ndarray:
    """Evaluate a true model's right-hand side on a prepared panel, in its ``params`` order.

    Parameters
    ----------
    model : dict
        ``truth["csat"]`` or ``truth["complaints"]``; patsy's ``Intercept`` column is kept
        only when ``params`` has one (the ordinal model has none).
    panel : pandas.DataFrame
        Rows as :func:`prepare_panel` returns them.

    Returns
    -------
    numpy.ndarray
        One row per panel row, one column per term of ``model["params"]``.
    """
    import patsy

    rhs = model["formula"].split("~", 1)[1].strip()
    try:
        matrix = patsy.dmatrix(rhs, panel, return_type="dataframe", NA_action="raise")
    except patsy.PatsyError as exc:
        raise InputError(f"panel: cannot evaluate {rhs!r}: {exc}".replace("\n", " ")) from exc
    terms = list(model["params"])
    if "Intercept" not in terms and "Intercept" in matrix.columns:
        matrix = matrix.drop(columns="Intercept")
    if sorted(matrix.columns) != sorted(terms):
        raise SatmodelError(
            f"truth: terms {terms} do not match the formula's columns {list(matrix.columns)}"
        )
    return matrix[terms].to_numpy(dtype=float)


def lag_fill(truth: dict[str, Any]) -> dict[str, str]:
    """Lagged driver -> the current driver that fills it in the first month, from the true
    models (``lag_fill``) or from a truth document (``truth.json``: ``lag_rule.fill``)."""
    if "lag_fill" in truth:
        return dict(truth["lag_fill"])
    return dict(truth.get("lag_rule", {}).get("fill", {}))


def prepare_panel(panel: pd.DataFrame, truth: dict[str, Any]) -> pd.DataFrame:
    """The panel as the true models see it: a copy with a 0..n-1 index, the lagged drivers
    filled as :func:`lag_fill` says and ``segment`` a categorical of :data:`SEGMENTS`.

    Raises
    ------
    InputError
        When the panel lacks ``customer_id``, ``month``, ``segment`` or ``active_users``, or
        has an unknown segment.
    """
    needed = ["customer_id", "month", "segment", "active_users"]
    missing = [c for c in needed if c not in panel.columns]
    if missing:
        raise InputError(f"panel: missing columns {missing}")
    data = panel.reset_index(drop=True).copy()
    for lagged, current in lag_fill(truth).items():
        if lagged in data.columns and current in data.columns:
            data[lagged] = data[lagged].fillna(data[current])
    unknown = ~data["segment"].isin(SEGMENTS)
    if unknown.any():
        raise InputError(
            f"panel.segment: {int(unknown.sum())} rows with an unknown segment "
            f"(e.g. {data['segment'][unknown].iloc[0]!r}; expected one of {list(SEGMENTS)})"
        )
    data["segment"] = pd.Categorical(data["segment"].astype(str), categories=list(SEGMENTS))
    return data


def customer_offsets(truth: dict[str, Any], model: str, customer_ids) -> np.ndarray:
    """The hidden customer effect of each row on a true model's linear predictor.

    Parameters
    ----------
    truth : dict
        The true models; without a ``customer_effects`` section every effect is 0.
    model : {"csat", "complaints"}
        ``u_i`` (CSAT latent scale) or ``v_i`` (complaint log-rate).
    customer_ids : array-like
        The customer of each row.

    Returns
    -------
    numpy.ndarray
        One effect per row.

    Raises
    ------
    InputError
        When the truth has effects, but none for a customer of the rows.
    """
    ids = pd.Series(np.asarray(customer_ids, dtype=str))
    effects = truth.get("customer_effects")
    if effects is None:
        return np.zeros(len(ids))
    values = ids.map(effects[model]["values"])
    if values.isna().any():
        raise InputError(
            f"panel.customer_id: {int(values.isna().sum())} rows of customers without a "
            f"{model} effect in the truth (e.g. {ids[values.isna()].iloc[0]!r})"
        )
    return values.to_numpy(dtype=float)


def _month_bounds(months: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    start = np.asarray(months.astype(str), dtype="datetime64[M]")
    start_us = start.astype("datetime64[us]").astype(np.int64)
    end_us = (start + 1).astype("datetime64[us]").astype(np.int64)
    return start_us, end_us - start_us


def _timestamps(rng: np.random.Generator, start: np.ndarray, length: np.ndarray) -> pd.Series:
    us = start + (rng.random(len(start)) * length).astype(np.int64)
    return pd.Series(pd.to_datetime(us, unit="us", utc=True))


def draw_outcomes(
    panel: pd.DataFrame, truth: dict[str, Any], rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw survey responses and complaints from the true models on a service panel.

    Parameters
    ----------
    panel : pandas.DataFrame
        One row per customer-month with at least ``customer_id``, ``month`` (``YYYY-MM``),
        ``segment``, ``active_users`` and every column the truth formulas use. Lagged
        columns named in ``truth["lag_fill"]`` may be null (first month): they are filled
        with the same customer-month's current value before the linear predictors are
        evaluated. No other driver may be null.
    truth : dict
        The true models, as :func:`default_truth` returns them, optionally with a
        ``customer_effects`` section (:func:`satmodel.demo.effects.draw_customer_effects`):
        its ``u_i`` is added to the CSAT latent scale and its ``v_i`` to the complaint
        log-rate of every row of customer ``i``.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    surveys : pandas.DataFrame
        Canonical ``surveys`` columns, sorted by time, ``response_id`` unique. About 40% of
        customer-months answer, with 1 to 6 responses; csat follows the ordinal logit
        ``P(csat <= k) = logistic(threshold_k - x'beta - u_i)``; nps is correlated with csat and
        15% null.
    complaints : pandas.DataFrame
        Canonical ``complaints`` columns, sorted by time, ``complaint_id`` unique; counts per
        customer-month are NB2 with mean ``active_users * exp(x'gamma + v_i)``.

    Raises
    ------
    InputError
        When the panel lacks a column, a driver is null, or a customer has no effect.
    """
    from scipy.special import expit

    data = prepare_panel(panel, truth)
    n = len(data)
    seg = data["segment"].cat.codes.to_numpy()
    month_start, month_len = _month_bounds(data["month"])
    customer = data["customer_id"].astype(str).to_numpy()

    # --- surveys: which customer-months answer, how often, and what they say
    csat_model = truth["csat"]
    eta = design_matrix(csat_model, data) @ np.array(list(csat_model["params"].values()))
    eta += customer_offsets(truth, "csat", customer)
    answers = rng.random(n) < np.array(_SURVEY_RESPONSE_PROB)[seg]
    extra = rng.binomial(_SURVEY_MAX_EXTRA, np.array(_SURVEY_EXTRA_Q)[seg])
    n_resp = np.where(answers, 1 + extra, 0)
    row = np.repeat(np.arange(n), n_resp)
    cum = expit(np.asarray(csat_model["thresholds"])[None, :] - eta[row][:, None])
    csat = 1 + (rng.random(len(row))[:, None] > cum).sum(axis=1)
    nps = np.clip(np.round(2.2 * csat - 1.2 + rng.normal(0.0, 1.2, len(row))), 0, 10)
    nps_null = rng.random(len(row)) < _NPS_NULL_SHARE
    ts = _timestamps(rng, month_start[row], month_len[row])
    surveys = pd.DataFrame(
        {
            "customer_id": pd.array(customer[row], dtype="str"),
            "ts": ts,
            "csat": csat.astype(np.int64),
            "nps": pd.array(np.where(nps_null, pd.NA, nps.astype(np.int64)), dtype="Int64"),
        }
    )
    surveys = surveys.sort_values(["ts", "customer_id"], kind="stable", ignore_index=True)
    surveys.insert(0, "response_id", pd.array(make_ids("SRV-", len(surveys), 7), dtype="str"))

    # --- complaints: NB2 counts with exposure, categories leaning on what went wrong
    comp_model = truth["complaints"]
    xg = design_matrix(comp_model, data) @ np.array(list(comp_model["params"].values()))
    xg += customer_offsets(truth, "complaints", customer)
    users = data[comp_model["exposure"]].to_numpy(dtype=float)
    mu = users * np.exp(xg)
    alpha = float(comp_model["alpha"])
    counts = rng.poisson(rng.gamma(1.0 / alpha, alpha * mu))
    row = np.repeat(np.arange(n), counts)
    ratio = data["latency_p95_ms"].to_numpy(float) / data["expected_latency_p95_ms"].to_numpy(float)
    weights = np.column_stack(
        [
            1.0 + 4.0 * np.maximum(0.0, np.log(ratio)),
            0.3 + 0.6 * np.log1p(data["downtime_minutes"].to_numpy(float)),
            0.3 + 60.0 * data["error_rate"].to_numpy(float),
            np.full(n, 1.0),
            np.full(n, 0.5),
            np.full(n, 0.4),
        ]
    )
    category = np.array(COMPLAINT_CATEGORIES)[pick_category(rng, weights[row])]
    complaints = pd.DataFrame(
        {
            "customer_id": pd.array(customer[row], dtype="str"),
            "ts": _timestamps(rng, month_start[row], month_len[row]),
            "category": pd.array(category, dtype="str"),
        }
    )
    complaints = complaints.sort_values(["ts", "customer_id"], kind="stable", ignore_index=True)
    complaints.insert(
        0, "complaint_id", pd.array(make_ids("CMP-", len(complaints), 7), dtype="str")
    )
    return surveys, complaints


def _description(customer_effects: bool) -> str:
    world = (
        "Synthetic demo world of satmodel. Customers in three segments with their own "
        "expectations get a service whose quality varies between customers and over time "
        "(customer effects, AR(1) drift, bad months, one platform-wide bad month, lasting "
        "improvements and degradations). Raw requests, incidents, tickets, changes and usage "
        "are drawn from it; satmodel.features.build_panel computes the service panel from "
        "them; survey CSAT and complaints are then drawn from the true models below, "
        "evaluated with patsy on that panel"
    )
    if not customer_effects:
        return world + (
            ", so a statsmodels fit of these formulas on the "
            "panel (joined to survey responses for csat) recovers these coefficients. "
            "Customer-months are independent given the panel: there are no hidden customer "
            "effects in the outcomes."
        )
    return world + (
        ", plus hidden persistent customer effects (see customer_effects) that no table "
        "records: customers on slower infrastructure are also less satisfied and complain "
        "more for other reasons. The params are the drivers' effects within a customer "
        "(conditional on its hidden effect). A pooled fit that compares customers with each "
        "other is biased for the latency terms; a within-customer fit (fixed effects, or "
        "correlated random effects / Mundlak with the customer means of the time-varying "
        "drivers) recovers them."
    )


def truth_document(
    models: dict[str, Any],
    customers: int,
    months: int,
    seed: int,
    start: np.datetime64,
    row_counts: dict[str, int],
) -> dict[str, Any]:
    """The content of ``truth.json`` (stable key order)."""
    end = str(start + (months - 1))
    segments = list(SEGMENTS)
    effects = (
        {"customer_effects": models["customer_effects"]} if "customer_effects" in models else {}
    )
    return {
        "description": _description("customer_effects" in models),
        "seed": seed,
        "customers": customers,
        "months": months,
        "start_month": str(start),
        "end_month": end,
        "last_complete_month": end,
        "segments": segments,
        "formula_engine": "patsy (statsmodels' default); term names are patsy's column names",
        "csat": models["csat"],
        "complaints": models["complaints"],
        **effects,
        "lag_rule": {
            "fill": models["lag_fill"],
            "description": (
                "The first month has no previous month, so the panel's *_lag1 columns are null "
                "there. Its outcomes are drawn with each lagged driver replaced by the same "
                "customer-month's current value (downtime_minutes_lag1 := downtime_minutes). A "
                "fit on the panel drops those rows (null lag), which leaves the estimates "
                "unbiased."
            ),
        },
        "surveys": {
            "response_probability": dict(zip(segments, _SURVEY_RESPONSE_PROB, strict=True)),
            "responses_when_answering": (
                f"1 + Binomial({_SURVEY_MAX_EXTRA}, q_segment), i.e. 1 to {_SURVEY_MAX_EXTRA + 1}"
            ),
            "q": dict(zip(segments, _SURVEY_EXTRA_Q, strict=True)),
            "sampling": "independent of service quality (no response bias)",
            "nps": (
                "clip(round(2.2 * csat - 1.2 + Normal(0, 1.2)), 0, 10); "
                f"{_NPS_NULL_SHARE:.0%} null at random"
            ),
        },
        "complaint_categories": {
            "levels": list(COMPLAINT_CATEGORIES),
            "weights": (
                "performance 1 + 4 * max(0, log(latency_p95_ms / expected_latency_p95_ms)), "
                "outage 0.3 + 0.6 * log1p(downtime_minutes), errors 0.3 + 60 * error_rate, "
                "support 1, billing 0.5, other 0.4"
            ),
        },
        "panel": {"builder": "satmodel.features.build_panel", "config": "default"},
        "rows": row_counts,
    }
