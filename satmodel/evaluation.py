"""Out-of-sample evaluation and diagnostics of fitted models.

* :func:`time_cv` - expanding-window cross-validation over months: train on the earlier
  months, test on the following ones; compares the satmodel model with a naive baseline and
  scikit-learn's HistGradientBoosting on the same features.
* :func:`diagnostics` - convergence, sample size, separation, collinearity (VIF),
  overdispersion (Poisson vs NB2) and the proportional-odds assumption (Brant test).
* :func:`diagnose` - the same checks, each failed one also appended to the model's
  ``warnings_`` (what reports show next to the model); :func:`diagnose_models` for several.

Both return tidy DataFrames.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd
from scipy import linalg, special, stats

from satmodel.errors import InputError, ModelWarning, SatmodelError
from satmodel.models import (
    MIN_PER_LEVEL,
    MIN_RESPONSES,
    FitResult,
    fit,
    model_data,
    threadpool_limits,
)
from satmodel.models.design import group_codes
from satmodel.models.formulas import outcome_series, parse_formula
from satmodel.models.likelihoods import LogitLikelihood
from satmodel.models.optimize import newton

__all__ = ["DIAGNOSTIC_COLUMNS", "diagnose", "diagnose_models", "diagnostics", "time_cv"]

CV_COLUMNS = [
    "fold",
    "model",
    "metric",
    "value",
    "n_train",
    "n_test",
    "train_end",
    "test_start",
    "test_end",
    "reliable",
]
DIAGNOSTIC_COLUMNS = ["check", "value", "threshold", "ok", "note"]
VIF_THRESHOLD = 10.0
DISPERSION_THRESHOLD = 1.5
ALPHA_LEVEL = 0.05
_EPS = 1e-15


# --------------------------------------------------------------------------------------
# time-based cross-validation
# --------------------------------------------------------------------------------------


def _test_rows(result: FitResult, test: pd.DataFrame):
    """Design matrix, outcome, weights and exposure of the usable test rows."""
    design = result.design_matrix(test)
    rows = test.loc[design.index]
    formula = parse_formula(result.formula, test.columns)
    y = outcome_series(rows, formula)
    ok = y.notna().to_numpy()
    w = np.ones(len(rows))
    if result.weights is not None:
        w = pd.to_numeric(rows[result.weights], errors="coerce").to_numpy(dtype=float)
        ok = ok & np.isfinite(w) & (w >= 0)
    expo = None
    if result.exposure is not None:
        expo = pd.to_numeric(rows[result.exposure], errors="coerce").to_numpy(dtype=float)
        ok = ok & np.isfinite(expo) & (expo > 0)
    design, rows, y, w = design[ok], rows[ok], y[ok], w[ok]
    expo = expo[ok] if expo is not None else None
    if result.family == "ordinal":
        values = y.to_numpy()
        if pd.api.types.is_numeric_dtype(y):
            lookup = {float(v): i for i, v in enumerate(result.levels_)}
            codes = np.array([lookup.get(float(v), -1) for v in values])
        else:
            lookup = {str(v): i for i, v in enumerate(result.levels_)}
            codes = np.array([lookup.get(str(v).strip(), -1) for v in values])
        y_out = codes
    else:
        y_out = y.astype(float).to_numpy()
    return design, rows, y_out, w, expo


def _single_threaded(openmp: bool = False):
    """Limit BLAS (and OpenMP) to one thread: small problems, shared machines."""
    if threadpool_limits is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api=None if openmp else "blas")


def _weighted_mean(values, w):
    return float(np.sum(w * values) / np.sum(w))


def _poisson_deviance(y, mu, w):
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu)
    return _weighted_mean(2 * term, w)


def _metrics(family, y, w, prediction, level_values=None):
    """Metrics of one model's predictions (probabilities per level, or means)."""
    out = {}
    if family == "ordinal":
        probs = prediction
        observed = np.where(
            y >= 0, probs[np.arange(len(y)), np.clip(y, 0, probs.shape[1] - 1)], 0.0
        )
        out["log_loss"] = _weighted_mean(-np.log(np.clip(observed, _EPS, 1.0)), w)
        values = np.asarray(level_values, dtype=float)
        expected = probs @ values
        actual = np.where(y >= 0, values[np.clip(y, 0, len(values) - 1)], np.nan)
        keep = np.isfinite(actual)
        out["mae"] = _weighted_mean(np.abs(expected - actual)[keep], w[keep])
    elif family == "logit":
        p = np.clip(prediction, _EPS, 1 - _EPS)
        out["log_loss"] = _weighted_mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)), w)
        out["mae"] = _weighted_mean(np.abs(y - prediction), w)
    elif family == "ols":
        out["mae"] = _weighted_mean(np.abs(y - prediction), w)
        out["rmse"] = float(np.sqrt(_weighted_mean((y - prediction) ** 2, w)))
    else:
        out["mae"] = _weighted_mean(np.abs(y - prediction), w)
        out["deviance"] = _poisson_deviance(y, np.maximum(prediction, _EPS), w)
    return out


def _collapsed_training(X: np.ndarray, y: np.ndarray, w: np.ndarray):
    """Merge identical (features, outcome) rows for the gradient boosting fit."""
    codes = group_codes([*X.T, y], max_groups=len(y) // 2)
    if codes is None:
        return X, y, w
    n_groups = int(codes.max()) + 1
    running_max = np.maximum.accumulate(codes)
    first = np.flatnonzero(np.concatenate(([True], running_max[1:] > running_max[:-1])))
    return X[first], y[first], np.bincount(codes, weights=w, minlength=n_groups)


def _boosting_prediction(
    family, result, X_train, y_train, w_train, expo_train, X_test, expo_test, params
):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    options = {"random_state": 0, **(params or {})}
    if family in ("ordinal", "logit"):
        classes = np.arange(len(result.levels_)) if family == "ordinal" else np.array([0.0, 1.0])
        X, y, w = _collapsed_training(X_train, y_train, w_train)
        model = HistGradientBoostingClassifier(**options)
        model.fit(X, y, sample_weight=w)
        raw = model.predict_proba(X_test)
        probs = np.zeros((len(X_test), len(classes)))
        for j, cls in enumerate(model.classes_):
            probs[:, int(np.flatnonzero(classes == cls)[0])] = raw[:, j]
        return probs if family == "ordinal" else probs[:, 1]
    if family == "ols":
        X, y, w = _collapsed_training(X_train, y_train, w_train)
        model = HistGradientBoostingRegressor(**options)
        model.fit(X, y, sample_weight=w)
        return model.predict(X_test)
    # counts: model the rate, weighted by exposure (the usual way without an offset)
    expo_train = np.ones(len(y_train)) if expo_train is None else expo_train
    expo_test = np.ones(len(X_test)) if expo_test is None else expo_test
    model = HistGradientBoostingRegressor(loss="poisson", **options)
    model.fit(X_train, y_train / expo_train, sample_weight=w_train * expo_train)
    return model.predict(X_test) * expo_test


def time_cv(
    data: pd.DataFrame,
    formula: str,
    family: str,
    time_col: str = "month",
    n_splits: int = 3,
    exposure: str | None = None,
    weights: str | None = None,
    link: str | None = None,
    order=None,
    boosting_params: dict | None = None,
    include_boosting: bool = True,
) -> pd.DataFrame:
    """Expanding-window cross-validation over time periods.

    The sorted distinct values of ``time_col`` are split as scikit-learn's
    ``TimeSeriesSplit`` splits positions: fold i trains on all periods before its test block.

    Parameters
    ----------
    data : DataFrame
    formula, family, exposure, weights, link, order
        As for :func:`satmodel.models.fit`.
    time_col : str
        Period column (e.g. ``month`` as ``YYYY-MM``); sorts chronologically.
    n_splits : int
        Number of folds (needs at least ``n_splits + 1`` periods).
    boosting_params : dict, optional
        Options for the HistGradientBoosting model.
    include_boosting : bool
        Also evaluate HistGradientBoosting on the same design matrix.

    Returns
    -------
    DataFrame
        Columns fold, model (``satmodel``, ``baseline``, ``hist_gradient_boosting``), metric
        (ordinal/logit: ``log_loss``, ``mae``; counts: ``mae``, ``deviance`` (mean Poisson
        deviance); ols: ``mae``, ``rmse``), value, n_train, n_test, train_end, test_start,
        test_end, reliable (False when the fold's satmodel fit raised a ModelWarning flag).
    """
    from sklearn.model_selection import TimeSeriesSplit

    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if time_col not in data.columns:
        raise InputError(f"data: time column {time_col!r} not found")
    periods = np.sort(pd.unique(data[time_col].dropna()))
    if not isinstance(n_splits, int) or n_splits < 1:
        raise InputError(f"n_splits: must be a positive integer, got {n_splits!r}")
    if len(periods) < n_splits + 1:
        raise InputError(
            f"data.{time_col}: {len(periods)} periods (e.g. {periods[:1].tolist()}) are too "
            f"few for {n_splits} folds (need {n_splits + 1})"
        )
    rows = []
    splitter = TimeSeriesSplit(n_splits=n_splits)
    for fold, (train_idx, test_idx) in enumerate(splitter.split(periods)):
        train = data[data[time_col].isin(periods[train_idx])]
        test = data[data[time_col].isin(periods[test_idx])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ModelWarning)
            result = fit(
                train, formula, family, exposure=exposure, weights=weights, link=link, order=order
            )
        train_data = model_data(result, train)
        design, test_rows, y, w, expo = _test_rows(result, test)
        if len(y) == 0:
            continue
        prediction = result.predict(test_rows)
        info = {
            "n_train": float(result.n_obs_),
            "n_test": float(w.sum()),
            "train_end": str(periods[train_idx][-1]),
            "test_start": str(periods[test_idx][0]),
            "test_end": str(periods[test_idx][-1]),
            "reliable": bool(result.reliable),
        }
        y_train, w_train = train_data.y, train_data.weights
        predictions = {}
        if family == "ordinal":
            levels = [f"p_{level}" for level in result.levels_]
            predictions["satmodel"] = prediction[levels].to_numpy()
            marginal = np.bincount(y_train.astype(int), weights=w_train, minlength=len(levels))
            predictions["baseline"] = np.tile(marginal / marginal.sum(), (len(y), 1))
        elif family == "logit":
            predictions["satmodel"] = prediction["probability"].to_numpy()
            predictions["baseline"] = np.full(len(y), _weighted_mean(y_train, w_train))
        elif family == "ols":
            predictions["satmodel"] = prediction["mean"].to_numpy()
            predictions["baseline"] = np.full(len(y), _weighted_mean(y_train, w_train))
        else:
            predictions["satmodel"] = prediction["mean"].to_numpy()
            if expo is None:
                predictions["baseline"] = np.full(len(y), _weighted_mean(y_train, w_train))
            else:
                train_expo = np.exp(train_data.offset)
                rate = float(np.sum(w_train * y_train) / np.sum(w_train * train_expo))
                predictions["baseline"] = rate * expo
        if include_boosting:
            X_test = design[train_data.X.columns].to_numpy(dtype=float)
            with _single_threaded(openmp=True):
                predictions["hist_gradient_boosting"] = _boosting_prediction(
                    family,
                    result,
                    train_data.X.to_numpy(dtype=float),
                    y_train,
                    w_train,
                    None if train_data.offset is None else np.exp(train_data.offset),
                    X_test,
                    expo,
                    boosting_params,
                )
        for model_name, predicted in predictions.items():
            for metric, value in _metrics(family, y, w, predicted, result.level_values_).items():
                rows.append(
                    {"fold": fold, "model": model_name, "metric": metric, "value": value, **info}
                )
    return pd.DataFrame(rows, columns=CV_COLUMNS)


# --------------------------------------------------------------------------------------
# diagnostics
# --------------------------------------------------------------------------------------


def _row(check, value, threshold, ok, note=""):
    return {
        "check": check,
        "value": float(value) if value is not None else np.nan,
        "threshold": float(threshold) if threshold is not None else np.nan,
        "ok": bool(ok),
        "note": note,
    }


def _vif(X: pd.DataFrame, w: np.ndarray) -> dict[str, float]:
    """Variance inflation factors from the weighted correlation matrix of the drivers."""
    columns = [c for c in X.columns if c != "Intercept"]
    if len(columns) < 2:
        return dict.fromkeys(columns, 1.0)
    values = X[columns].to_numpy(dtype=float)
    mean = w @ values / w.sum()
    centred = values - mean
    cov = (centred * w[:, None]).T @ centred / w.sum()
    sd = np.sqrt(np.diag(cov))
    out = {}
    constant = sd <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    live = ~constant
    try:
        inv_diag = np.diag(linalg.inv(corr[np.ix_(live, live)]))
    except (linalg.LinAlgError, ValueError):
        inv_diag = np.full(int(live.sum()), np.inf)
    live_iter = iter(inv_diag)
    for column, is_constant in zip(columns, constant, strict=True):
        out[column] = np.nan if is_constant else float(next(live_iter))
    return out


def _brant(X: np.ndarray, codes: np.ndarray, w: np.ndarray, n_levels: int, names: list[str]):
    """Brant (1990) Wald tests that the J-1 cumulative binary logits share their slopes."""
    n, k = X.shape
    Xi = np.hstack((np.ones((n, 1)), X))
    fits, infos = [], []
    for j in range(n_levels - 1):
        z = (codes > j).astype(float)
        likelihood = LogitLikelihood(Xi, z, w, None)
        theta, _, _ = newton(likelihood, np.zeros(k + 1), 100)
        p = special.expit(Xi @ theta)
        fits.append((theta, p))
        infos.append(linalg.inv((Xi * (w * p * (1 - p))[:, None]).T @ Xi))
    m = n_levels - 1
    V = np.zeros((m * k, m * k))
    for a in range(m):
        for b in range(a, m):
            pa, pb = fits[a][1], fits[b][1]
            if a == b:
                block = infos[a]
            else:
                # cov(z_a, z_b) = P(y > b) - P(y > a) P(y > b) for b > a
                middle = (Xi * (w * (pb - pa * pb))[:, None]).T @ Xi
                block = infos[a] @ middle @ infos[b]
            V[a * k : (a + 1) * k, b * k : (b + 1) * k] = block[1:, 1:]
            V[b * k : (b + 1) * k, a * k : (a + 1) * k] = block[1:, 1:].T
    slopes = np.concatenate([theta[1:] for theta, _ in fits])

    def wald(columns):
        rows = []
        for a in range(1, m):
            for c in columns:
                row = np.zeros(m * k)
                row[c] = 1.0
                row[a * k + c] = -1.0
                rows.append(row)
        D = np.array(rows)
        diff = D @ slopes
        stat = float(diff @ np.linalg.pinv(D @ V @ D.T) @ diff)
        df = len(rows)
        return stat, df, float(stats.chi2.sf(stat, df))

    omnibus = wald(range(k))
    per_term = {name: wald([c]) for c, name in enumerate(names)}
    return omnibus, per_term


def diagnostics(result: FitResult, data: pd.DataFrame) -> pd.DataFrame:
    """Checks of a fitted model against its data.

    Parameters
    ----------
    result : FitResult
    data : DataFrame
        The data the model was fitted on.

    Returns
    -------
    DataFrame
        Columns check, value, threshold, ok, note. Checks: ``converged``, ``n_obs``,
        ``min_level_count`` (ordinal/logit), ``separation`` (every family), ``collinearity``,
        ``vif:<term>``, for counts ``overdispersion_lr`` (Poisson vs NB2 likelihood-ratio
        statistic; ok when the fitted family suits it) and ``dispersion`` (Pearson
        chi2 / df), for ordinal ``proportional_odds`` and ``proportional_odds:<term>``
        (Brant test p-values).
    """
    rows = [
        _row(
            "converged",
            1.0 if result.converged_ else 0.0,
            1.0,
            result.converged_,
            f"{result.iterations_} Newton iterations" if result.iterations_ else "",
        ),
        _row(
            "n_obs",
            result.n_obs_,
            MIN_RESPONSES,
            result.n_obs_ >= MIN_RESPONSES,
            f"{result.n_dropped_} rows dropped for missing values" if result.n_dropped_ else "",
        ),
    ]
    md = model_data(result, data)
    X, y, w = md.X, md.y, md.weights
    if result.family in ("ordinal", "logit"):
        if result.family == "ordinal":
            counts = np.bincount(y.astype(int), weights=w, minlength=len(result.levels_))
            labels = result.levels_
        else:
            counts = np.array([w.sum() - w @ y, w @ y])
            labels = [0, 1]
        smallest = int(np.argmin(counts))
        rows.append(
            _row(
                "min_level_count",
                counts[smallest],
                MIN_PER_LEVEL,
                counts[smallest] >= MIN_PER_LEVEL,
                f"outcome level {labels[smallest]!r}",
            )
        )
    separated = [m for m in result.warnings_ if "separation" in m]
    rows.append(
        _row("separation", 1.0 if separated else 0.0, 0.0, not separated, "; ".join(separated))
    )
    collinear = [m for m in result.warnings_ if m.startswith("collinear")]
    rows.append(
        _row("collinearity", 1.0 if collinear else 0.0, 0.0, not collinear, "; ".join(collinear))
    )
    for term, vif in _vif(X, w).items():
        rows.append(
            _row(
                f"vif:{term}",
                vif,
                VIF_THRESHOLD,
                bool(np.isfinite(vif) and vif < VIF_THRESHOLD) or np.isnan(vif),
                "constant column" if np.isnan(vif) else "",
            )
        )
    if result.family in ("poisson", "negbin"):
        rows.extend(_overdispersion_rows(result, data, md))
    if result.family == "ordinal" and len(result.levels_) > 2 and X.shape[1] > 0:
        rows.extend(_proportional_odds_rows(X, y, w, len(result.levels_)))
    return pd.DataFrame(rows, columns=DIAGNOSTIC_COLUMNS)


# checks whose failure the fit itself already put in warnings_
_FLAGGED_BY_FIT = ("converged", "n_obs", "min_level_count", "separation", "collinearity")


def diagnose(result: FitResult, data: pd.DataFrame) -> pd.DataFrame:
    """:func:`diagnostics`, with every failed check also appended to ``result.warnings_``.

    Rows whose exposure is missing or not positive are left out first (as the default
    complaint model leaves them out). Running it twice adds nothing new.

    Parameters
    ----------
    result : FitResult
        Changed in place: failed checks join its warnings (it is then not ``reliable``).
    data : DataFrame
        The data the model was fitted on.

    Returns
    -------
    DataFrame
        The :func:`diagnostics` table.
    """
    if result.exposure is not None and result.exposure in data.columns:
        data = data.loc[pd.to_numeric(data[result.exposure], errors="coerce") > 0]
    table = diagnostics(result, data)
    for message in failed_check_messages(table):
        if message not in result.warnings_:
            result.warnings_.append(message)
    return table


def diagnose_models(
    results: dict[str, FitResult], data: dict[str, pd.DataFrame | None]
) -> dict[str, pd.DataFrame]:
    """:func:`diagnose` for each model of ``results`` with data under the same name.

    A check that cannot run on a model's data (e.g. its design no longer builds) becomes a
    warning of that model instead of an error: the fits stay usable.
    """
    tables = {}
    for name, result in results.items():
        if data.get(name) is None:
            continue
        try:
            tables[name] = diagnose(result, data[name])
        except SatmodelError as exc:
            result.warnings_.append(f"diagnostics could not run: {exc}")
    return tables


def failed_check_messages(table: pd.DataFrame) -> list[str]:
    """One warning per failed diagnostic not already flagged by the fit (VIFs grouped)."""
    failed = table.loc[~table["ok"] & ~table["check"].isin(_FLAGGED_BY_FIT)]
    messages = []
    vif = failed.loc[failed["check"].str.startswith("vif:")]
    if len(vif):
        terms = ", ".join(f"{row.check[4:]} {row.value:.3g}" for row in vif.itertuples(index=False))
        messages.append(
            f"high collinearity: variance inflation factor >= {VIF_THRESHOLD:g} ({terms})"
        )
    per_term = failed.loc[failed["check"].str.startswith("proportional_odds:")]
    for row in failed.itertuples(index=False):
        if row.check == "proportional_odds":
            terms = ", ".join(t[len("proportional_odds:") :] for t in per_term["check"])
            messages.append(
                f"proportional odds rejected (p = {row.value:.3g} < {row.threshold:g}; "
                f"{row.note})" + (f"; terms: {terms}" if terms else "")
            )
        elif row.check == "overdispersion_lr":
            messages.append(f"overdispersion: Poisson vs NB2 LR = {row.value:.4g} ({row.note})")
        elif row.check == "dispersion":
            messages.append(
                f"dispersion {row.value:.3g} > {row.threshold:g} ({row.note}): standard errors "
                f"understated"
            )
    return messages


def _overdispersion_rows(result: FitResult, data: pd.DataFrame, md) -> list[dict]:
    other_family = "negbin" if result.family == "poisson" else "poisson"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        other = fit(
            data,
            result.formula,
            other_family,
            exposure=result.exposure,
            weights=result.weights,
        )
    poisson, negbin = (result, other) if result.family == "poisson" else (other, result)
    lr = max(2 * (negbin.log_likelihood_ - poisson.log_likelihood_), 0.0)
    p_value = 0.5 * stats.chi2.sf(lr, 1) if lr > 0 else 1.0
    overdispersed = p_value < ALPHA_LEVEL
    critical = stats.chi2.ppf(1 - 2 * ALPHA_LEVEL, 1)
    if result.family == "poisson":
        ok, note = (
            not overdispersed,
            (
                f"p = {p_value:.3g}; "
                + ("overdispersed: use negbin" if overdispersed else "Poisson adequate")
            ),
        )
    else:
        ok, note = (
            True,
            (
                f"p = {p_value:.3g}; alpha = {negbin.alpha_:.4g}; "
                + ("NB2 preferred over Poisson" if overdispersed else "Poisson would do")
            ),
        )
    rows = [_row("overdispersion_lr", lr, critical, ok, note)]
    terms = pd.concat([result.coefficients_, result.mundlak_terms_], ignore_index=True)
    beta = terms.set_index("term")["estimate"].reindex(md.X.columns).to_numpy(dtype=float)
    eta = md.X.to_numpy(dtype=float) @ beta + (md.offset if md.offset is not None else 0.0)
    mu = np.exp(eta)
    variance = mu if result.family == "poisson" else mu + result.alpha_ * mu**2
    df = md.weights.sum() - len(beta) - (result.family == "negbin")
    pearson = float(md.weights @ ((md.y - mu) ** 2 / variance)) / df if df > 0 else np.nan
    rows.append(
        _row(
            "dispersion",
            pearson,
            DISPERSION_THRESHOLD,
            bool(pearson <= DISPERSION_THRESHOLD),
            "Pearson chi2 / df under the fitted model's variance",
        )
    )
    return rows


def _proportional_odds_rows(X: pd.DataFrame, y, w, n_levels) -> list[dict]:
    try:
        with _single_threaded():
            (stat, df, p_value), per_term = _brant(
                X.to_numpy(dtype=float), y.astype(int), w, n_levels, list(X.columns)
            )
    except (linalg.LinAlgError, ValueError) as exc:
        return [_row("proportional_odds", np.nan, ALPHA_LEVEL, False, f"Brant test failed: {exc}")]
    rows = [
        _row(
            "proportional_odds",
            p_value,
            ALPHA_LEVEL,
            p_value >= ALPHA_LEVEL,
            f"Brant test chi2 = {stat:.3f}, df = {df}; value is the p-value",
        )
    ]
    for term, (t_stat, t_df, t_p) in per_term.items():
        rows.append(
            _row(
                f"proportional_odds:{term}",
                t_p,
                ALPHA_LEVEL,
                t_p >= ALPHA_LEVEL,
                f"chi2 = {t_stat:.3f}, df = {t_df}",
            )
        )
    return rows
