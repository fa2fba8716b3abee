"""Hidden persistent customer effects: the confounding that makes pooled estimates biased.

In real operations data the customers with worse service differ in ways no column records
(heavier workloads, legacy products, tougher buyers). The demo makes that explicit: every
customer ``i`` gets an effect ``u_i`` on the CSAT latent scale and ``v_i`` on the complaint
log-rate, both tied to ``z_i``, its persistent component of log p95 latency
(:attr:`satmodel.demo.world.World.lat_customer`)::

    u_i = -c_u * z_i + e_i,   e_i ~ Normal(0, sd_u)
    v_i = +c_v * z_i + f_i,   f_i ~ Normal(0, sd_v)

The true ``params`` stay the drivers' effects within a customer. A pooled fit, which compares
customers with each other, attributes part of ``u_i`` / ``v_i`` to latency;
:func:`expected_pooled_bias` gives the size of that bias to first order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from satmodel.demo.outcomes import (
    customer_offsets,
    design_matrix,
    expected_responses,
    lag_fill,
    prepare_panel,
)
from satmodel.demo.world import LATENCY_CUSTOMER_SD, World

CSAT_EFFECT = {"c": 0.8, "sd": 0.20}
"""``u_i = -c * z_i + Normal(0, sd)`` on the CSAT latent scale (higher is more satisfied)."""

COMPLAINT_EFFECT = {"c": 0.7, "sd": 0.20}
"""``v_i = +c * z_i + Normal(0, sd)`` on the complaint log-rate."""

LATENCY_TERMS = (
    "np.log(latency_p95_ms)",
    "np.maximum(0, np.log(latency_p95_ms / expected_latency_p95_ms))",
)
"""The true models' terms that the hidden effects bias in a pooled fit."""


def _rule(model: str, sign: str, spec: dict[str, float], scale: str) -> dict[str, Any]:
    name = {"csat": "u_i", "complaints": "v_i"}[model]
    return {
        "scale": scale,
        "rule": (
            f"{name} = {sign}c * z_i + e_i with c = {spec['c']} and e_i ~ Normal(0, {spec['sd']}) "
            "independent of everything else"
        ),
        "c": spec["c"],
        "sd": spec["sd"],
    }


def draw_customer_effects(world: World, rng: np.random.Generator) -> dict[str, Any]:
    """The ``customer_effects`` section of the truth: rule and realised values per customer.

    Parameters
    ----------
    world : World
        The customers and their persistent latency component ``lat_customer`` (``z_i``).
    rng : numpy.random.Generator
        The effects' own random stream (the other parts' draws do not depend on it).

    Returns
    -------
    dict
        ``description``, ``z``, ``csat`` and ``complaints`` (each with ``scale``, ``rule``,
        ``c``, ``sd`` and ``values``: customer_id -> effect, rounded to 6 decimals; these
        rounded values are the ones the outcomes are drawn with).
    """
    z = world.lat_customer
    ids = world.customer_ids.astype(str)
    u = -CSAT_EFFECT["c"] * z + rng.normal(0.0, CSAT_EFFECT["sd"], len(z))
    v = COMPLAINT_EFFECT["c"] * z + rng.normal(0.0, COMPLAINT_EFFECT["sd"], len(z))
    csat = _rule(
        "csat",
        "-",
        CSAT_EFFECT,
        "added to x'beta: P(csat <= k | customer i) = logistic(threshold_k - x'beta - u_i)",
    )
    complaints = _rule(
        "complaints",
        "+",
        COMPLAINT_EFFECT,
        "added to the log-rate: log(mu) = log(active_users) + x'gamma + v_i",
    )
    return {
        "description": (
            "Hidden persistent customer effects, in no table: customers on slower "
            "infrastructure are also less satisfied and complain more for other reasons "
            "(heavier workloads, legacy products, tougher buyers). The params of csat and "
            "complaints are the drivers' effects conditional on the customer (the "
            "within-customer truth)."
        ),
        "z": (
            "z_i: customer i's persistent (between-customer) component of log p95 latency, "
            f"Normal(0, {LATENCY_CUSTOMER_SD}); its latent log p95 latency is the segment "
            "level + z_i + AR(1) drift + bad months + lasting shifts"
        ),
        "csat": {**csat, "values": dict(zip(ids, np.round(u, 6).tolist(), strict=True))},
        "complaints": {
            **complaints,
            "values": dict(zip(ids, np.round(v, 6).tolist(), strict=True)),
        },
    }


def _projection(X: np.ndarray, offset: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares coefficients of ``offset`` on the columns of ``X``."""
    root = np.sqrt(weights)
    coef, *_ = np.linalg.lstsq(X * root[:, None], offset * root, rcond=None)
    return coef


def expected_pooled_bias(truth: dict[str, Any], panel: pd.DataFrame) -> dict[str, Any]:
    """First-order bias of a pooled fit of the true formulas, from the truth and panel alone.

    A pooled fit leaves ``u_i`` (``v_i``) in the error; to first order its estimates are the
    true params plus the coefficients of the linear projection of the effect on the model's
    terms over the rows a fit uses (the panel rows with a lagged driver; for csat weighted by
    the expected responses per customer-month). The ordinal logit slightly attenuates this.

    Parameters
    ----------
    truth : dict
        The true models with their ``customer_effects``.
    panel : pandas.DataFrame
        The service panel the outcomes were drawn on.

    Returns
    -------
    dict
        ``statement``, ``method``, then per model ``csat`` / ``complaints`` and per term:
        ``true``, ``expected_pooled`` and ``ratio`` (pooled / true); the latency terms of
        :data:`LATENCY_TERMS` carry most of the bias.
    """
    lagged = list(lag_fill(truth))
    rows = panel.dropna(subset=[c for c in lagged if c in panel.columns])
    data = prepare_panel(rows, truth)
    weights = {
        "csat": expected_responses(data["segment"].cat.codes.to_numpy()),
        "complaints": np.ones(len(data)),
    }
    out: dict[str, Any] = {
        "statement": "",
        "method": (
            "true param + the coefficient of the linear projection of u_i (v_i) on the "
            "model's terms over the fitted rows (panel rows with a lagged driver; csat "
            "weighted by the expected responses per customer-month): the first-order "
            "omitted-variable bias of a pooled fit"
        ),
    }
    for model in ("csat", "complaints"):
        params = truth[model]["params"]
        X = design_matrix(truth[model], data)
        if "Intercept" not in params:  # the ordinal thresholds absorb a constant
            X = np.column_stack([X, np.ones(len(X))])
        offset = customer_offsets(truth, model, data["customer_id"])
        bias = dict(zip(params, _projection(X, offset, weights[model]), strict=False))
        out[model] = {
            term: {
                "true": params[term],
                "expected_pooled": round(params[term] + bias[term], 3),
                "ratio": round((params[term] + bias[term]) / params[term], 2),
            }
            for term in params
        }
    latency = LATENCY_TERMS[0]
    expected = ", ".join(
        f"{model} {out[model][latency]['true']} within, about "
        f"{out[model][latency]['expected_pooled']} pooled ({out[model][latency]['ratio']}x)"
        for model in ("csat", "complaints")
    )
    out["statement"] = (
        "A pooled fit of these formulas (customers compared with each other) is biased for "
        "the latency terms: it adds to the true within-customer effect the part of the hidden "
        "effects that goes with persistently slow service. Expected for "
        f"{latency}: {expected}; every term below (first-order values for this world)."
    )
    return out
