"""The default models of the service panel: CSAT (ordinal), top-2-box (logit) and
complaints (NB2 with exposure), and the model matrices of a fitted model."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from satmodel.errors import InputError, ModelWarning
from satmodel.features.model_view import usable_drivers
from satmodel.models.design import prepare, subset_rows
from satmodel.models.fitting import MIN_RESPONSES, fit, single_threaded_blas
from satmodel.models.formulas import parse_formula
from satmodel.models.results import FitResult
from satmodel.vocabulary import DEFAULT_SATISFIED_CUTOFF, DRIVERS

DEFAULT_DRIVERS: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (d.term, d.columns) for d in DRIVERS
)

DEFAULT_MODELS = {
    "csat": {"outcome": "csat", "family": "ordinal", "data": "responses"},
    "top2": {"outcome": "I(csat >= {cutoff})", "family": "logit", "data": "responses"},
    "complaints": {"outcome": "complaints", "family": "negbin", "data": "panel"},
}
IDENTIFICATIONS = ("within", "pooled")
WITHIN_COLUMN = "customer_id"
_TOP2_OUTCOME = re.compile(r"^I\(csat >= (\d+)\)$")


def check_satisfied_cutoff(cutoff, responses: pd.DataFrame | None = None) -> int:
    """Validate a satisfied cutoff: a whole CSAT score that splits the observed scores.

    Raises
    ------
    InputError
        When the cutoff is not a whole number, or (with ``responses``) no observed score lies
        below it or none at or above it (no top-2 split to model).
    """
    if isinstance(cutoff, bool) or not isinstance(cutoff, int | float | np.integer | np.floating):
        raise InputError(f"satisfied_cutoff {cutoff!r}: must be a whole CSAT score, e.g. 4")
    if not float(cutoff).is_integer():
        raise InputError(f"satisfied_cutoff {cutoff!r}: must be a whole CSAT score, e.g. 4")
    cutoff = int(cutoff)
    if responses is not None and "csat" in responses.columns:
        scores = pd.to_numeric(responses["csat"], errors="coerce").dropna()
        if len(scores) and not (scores.min() < cutoff <= scores.max()):
            raise InputError(
                f"satisfied_cutoff {cutoff}: the CSAT scores run from {scores.min():g} to "
                f"{scores.max():g}, so no response or every response counts as satisfied"
            )
    return cutoff


def satisfied_cutoff_of(models: dict) -> int | None:
    """The satisfied cutoff the default ``top2`` model was fitted with (None without one)."""
    top2 = models.get("top2")
    found = _TOP2_OUTCOME.match(top2.outcome) if top2 is not None else None
    return int(found.group(1)) if found else None


def default_formulas(
    columns=None, satisfied_cutoff: int = DEFAULT_SATISFIED_CUTOFF, terms=None
) -> dict[str, str]:
    """Default formulas of the ``csat``, ``top2`` and ``complaints`` models.

    Parameters
    ----------
    columns : iterable of str, optional
        Available columns; drivers whose columns are absent are left out.
    satisfied_cutoff : int
        CSAT at or above this is "satisfied" (the ``top2`` outcome).
    terms : list of str, optional
        The driver terms to use (e.g. from :func:`satmodel.features.usable_drivers`) instead
        of every default driver whose columns are present.

    Returns
    -------
    dict
        Model name to patsy formula.
    """
    cutoff = check_satisfied_cutoff(satisfied_cutoff)
    available = None if columns is None else {str(c) for c in columns}
    drivers = (
        list(terms)
        if terms is not None
        else [
            term
            for term, needed in DEFAULT_DRIVERS
            if available is None or all(c in available for c in needed)
        ]
    )
    if not drivers:
        raise InputError(
            "panel: none of the default drivers' columns are present (need e.g. "
            "latency_p95_ms, downtime_minutes, error_rate)"
        )
    rhs = " + ".join(drivers)
    return {
        name: f"{spec['outcome'].format(cutoff=cutoff)} ~ {rhs}"
        for name, spec in DEFAULT_MODELS.items()
    }


def _identified_fit(data, formula, family, identification, **kwargs) -> FitResult:
    """Within-customer fit, or the pooled fit (flagged) when within is impossible."""
    if identification == "pooled":
        return fit(data, formula, family, **kwargs)
    reason = f"no column {WITHIN_COLUMN!r}"
    if WITHIN_COLUMN in data.columns:
        try:
            return fit(data, formula, family, within=WITHIN_COLUMN, **kwargs)
        except InputError as exc:
            reason = str(exc)
    result = fit(data, formula, family, **kwargs)
    flag = (
        f"within-customer identification impossible ({reason}); pooled fit: its effects "
        "compare customers with each other and may carry persistent customer differences"
    )
    result.warnings_.append(flag)
    warnings.warn(f"{family} {formula!r}: {flag}", ModelWarning, stacklevel=3)
    return result


def fit_default_models(
    responses: pd.DataFrame | None,
    panel: pd.DataFrame | None,
    formulas: dict[str, str] | None = None,
    cluster: str = "customer_id",
    exposure: str = "active_users",
    identification: str = "within",
    satisfied_cutoff: int = DEFAULT_SATISFIED_CUTOFF,
) -> dict[str, FitResult]:
    """Fit the default CSAT, top-2-box and complaint models.

    Parameters
    ----------
    responses : DataFrame or None
        One row per survey response with the customer-month's panel columns and ``csat``;
        the ``csat`` and ``top2`` models are skipped when None.
    panel : DataFrame or None
        The service panel (one row per customer-month); ``complaints`` is skipped when
        None or without the ``complaints`` or exposure column.
    formulas : dict, optional
        Formulas replacing the defaults, by model name (``csat``, ``top2``,
        ``complaints``); drivers default to those whose columns are present.
    cluster : str
        Column clustering the response-level standard errors of a pooled fit (a within fit
        clusters by customer).
    exposure : str
        Exposure column of the complaint model; customer-months with exposure <= 0 (no
        active users) are left out and counted in ``n_dropped_``.
    identification : {"within", "pooled"}
        ``within`` (default): effects within customers (correlated random effects by
        ``customer_id``, see :func:`satmodel.models.fit`), so persistent differences between
        customers do not pass for service effects; when no customer repeats with varying
        drivers the model falls back to the pooled fit and its ``warnings_`` say so.
        ``pooled``: effects compare customers with each other.
    satisfied_cutoff : int
        CSAT at or above this is "satisfied": the ``top2`` outcome ``I(csat >= cutoff)``.

    Returns
    -------
    dict of FitResult
    """
    if identification not in IDENTIFICATIONS:
        raise InputError(
            f"identification {identification!r}: must be one of {', '.join(IDENTIFICATIONS)}"
        )
    cutoff = check_satisfied_cutoff(satisfied_cutoff, responses)
    formulas = dict(formulas or {})
    results: dict[str, FitResult] = {}
    if responses is not None:
        terms, left_out = usable_drivers(responses, DEFAULT_DRIVERS)
        defaults = default_formulas(responses.columns, cutoff, terms)
        thin = _thin_segments(responses, panel)
        for name in ("csat", "top2"):
            spec = DEFAULT_MODELS[name]
            results[name] = _identified_fit(
                responses,
                formulas.get(name, defaults[name]),
                spec["family"],
                identification,
                cluster=cluster if cluster in responses.columns else None,
            )
            results[name].warnings_.extend(thin)
            results[name].notes_.extend(left_out)
        for flag in thin:
            warnings.warn(f"csat and top2 models: {flag}", ModelWarning, stacklevel=2)
    if panel is not None and "complaints" in panel.columns and exposure in panel.columns:
        terms, left_out = usable_drivers(panel, DEFAULT_DRIVERS)
        defaults = default_formulas(panel.columns, cutoff, terms)
        users = pd.to_numeric(panel[exposure], errors="coerce")
        no_users = ~(users > 0)
        data = panel.loc[~no_users]
        result = _identified_fit(
            data,
            formulas.get("complaints", defaults["complaints"]),
            "negbin",
            identification,
            exposure=exposure,
        )
        result.notes_.extend(left_out)
        n_none = int(no_users.sum())
        if n_none:
            result.n_dropped_ += n_none
            result.dropped_by_[f"{exposure} <= 0 or missing"] = n_none
            result.notes_.append(f"{n_none} customer-months without {exposure} left out")
        results["complaints"] = result
    from satmodel.evaluation import diagnose_models  # evaluation builds on models

    diagnose_models(results, {"csat": responses, "top2": responses, "complaints": panel})
    return results


def _thin_segments(responses: pd.DataFrame, panel: pd.DataFrame | None) -> list[str]:
    """One warning per segment with fewer than MIN_RESPONSES survey responses.

    Every segment of the panel counts (one without any response gets 0): what the models say
    about such a segment rests on too few answers and must not be read as if it were fine.
    """
    if "segment" not in responses.columns or "csat" not in responses.columns:
        return []
    answered = responses.loc[responses["csat"].notna(), "segment"].dropna().astype(str)
    counts = answered.value_counts()
    segments = set(counts.index)
    if panel is not None and "segment" in panel.columns:
        segments |= set(panel["segment"].dropna().astype(str))
    flags = []
    for segment in sorted(segments):
        n = int(counts.get(segment, 0))
        if n < MIN_RESPONSES:
            flags.append(
                f"too few responses in segment {segment!r}: n = {n} (need >= {MIN_RESPONSES}); "
                "its estimates are unreliable"
            )
    return flags


@dataclass
class ModelData:
    """The rows a fitted model uses, as arrays (collapsed rows carry summed weights).

    ``X`` holds the design columns that were estimated (collinear ones left out), ``y`` the
    outcome (ordinal: level codes 0..J-1 of ``result.levels_``), ``weights`` frequency
    weights and ``offset`` log(exposure) or None.
    """

    X: pd.DataFrame
    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray | None


def model_data(result: FitResult, data: pd.DataFrame) -> ModelData:
    """Rebuild the model matrices of ``result`` on ``data`` (normally the fitting data).

    Parameters
    ----------
    result : FitResult
    data : DataFrame

    Returns
    -------
    ModelData
    """
    parsed = parse_formula(result.formula, data.columns)
    order = result.levels_ if result.family == "ordinal" else None
    with single_threaded_blas():
        prep = prepare(
            data,
            parsed,
            result.family,
            exposure=result.exposure,
            weights=result.weights,
            cluster=None,
            order=order,
            collapse=True,
            within=None if result.within_ is None else result.within_.column,
        )
    keep = prep.w > 0
    if not keep.all():
        prep = subset_rows(prep, keep)
    if prep.columns != result.design_columns_:
        raise InputError(
            f"data: design columns {prep.columns} differ from the fitted model's "
            f"{result.design_columns_} (different categorical levels?)"
        )
    terms = pd.concat([result.coefficients_, result.mundlak_terms_], ignore_index=True)
    estimates = terms.set_index("term")["estimate"].reindex(prep.columns)
    estimated = estimates.notna().to_numpy()
    columns = [c for c, e in zip(prep.columns, estimated, strict=True) if e]
    X = pd.DataFrame(prep.X[:, estimated], columns=columns)
    return ModelData(X=X, y=prep.y, weights=prep.w, offset=prep.offset)
