"""Apdex T calibration: the threshold T whose Apdex best predicts satisfaction.

For every T of a grid, Apdex(T) = (satisfied + tolerating / 2) / requests per customer-month
(satisfied: ok and latency <= T; tolerating: ok and T < latency <= 4T; failed requests are
frustrated), as in the panel. The counts for all T come from
:func:`satmodel.features.apdex_grid` (one aggregation pass over ``requests``, which never
reaches pandas). Then the CSAT ordinal model is refitted with Apdex(T) in place of the latency
terms for each T; the profile log-likelihood over T picks the best T (the same responses enter
every fit, so the log-likelihoods are comparable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from satmodel.errors import InputError
from satmodel.features import apdex_grid, threshold_grid
from satmodel.plotting import figure_and_axes

__all__ = ["ApdexCalibration", "apdex_by_threshold", "calibrate_apdex"]

DEFAULT_T_GRID = (
    50, 75, 100, 125, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 1000, 1250,
    1500, 2000, 2500, 3000,
)  # fmt: skip


def _t_grid(t_grid) -> np.ndarray:
    return threshold_grid(DEFAULT_T_GRID if t_grid is None else t_grid)


def apdex_by_threshold(source, t_grid=None) -> pd.DataFrame:
    """Apdex of every customer-month for many thresholds T, in one pass over requests.

    Parameters
    ----------
    source : satmodel.sources.Source
        Bad rows are quarantined first when that has not been done yet.
    t_grid : sequence of float, optional
        Thresholds T in ms (default :data:`DEFAULT_T_GRID`).

    Returns
    -------
    DataFrame
        customer_id, month, requests, and ``apdex_<T>`` for every T (T in whole ms when
        integral), one row per customer-month with requests.
    """
    grid = _t_grid(t_grid)
    counts = apdex_grid(source, grid)
    counts = counts.assign(
        apdex=(counts["satisfied"] + counts["tolerating"] / 2.0) / counts["requests"]
    )
    wide = counts.pivot(index=["customer_id", "month", "requests"], columns="t_ms", values="apdex")
    wide = wide.reindex(columns=grid).rename(columns=_column)
    wide.columns.name = None
    return wide.reset_index()


def _column(t: float) -> str:
    return f"apdex_{int(t)}" if float(t).is_integer() else f"apdex_{t:g}"


@dataclass
class ApdexCalibration:
    """Result of :func:`calibrate_apdex`.

    Attributes
    ----------
    profile_ : DataFrame
        t_ms, log_likelihood, delta_log_likelihood (vs the best T), coefficient of Apdex
        and its std_error, converged.
    best_t_ : float
        T with the highest log-likelihood.
    default_t_ : float
        The customary (or configured) T, default 500 ms.
    log_likelihood_best_, log_likelihood_default_ : float
    lr_vs_default_ : float
        2 x (ll(best) - ll(default)): the likelihood-ratio improvement of the best T.
    formula_ : str
        The formula fitted (``apdex_t`` stands for Apdex(T)).
    n_obs_ : float
    """

    profile_: pd.DataFrame
    best_t_: float
    default_t_: float
    log_likelihood_best_: float
    log_likelihood_default_: float
    lr_vs_default_: float
    formula_: str
    n_obs_: float

    def plot(self, ax=None, title=None):
        """Profile log-likelihood against T (log axis), best and default T marked."""
        fig, ax = figure_and_axes(ax, 7.5, 4.5)
        prof = self.profile_
        ax.plot(prof["t_ms"], prof["log_likelihood"], marker="o", color="tab:blue")
        ax.axvline(
            self.best_t_, color="tab:green", linestyle="--", label=f"best T = {self.best_t_:g} ms"
        )
        ax.axvline(
            self.default_t_,
            color="grey",
            linestyle=":",
            label=f"default T = {self.default_t_:g} ms",
        )
        ax.set_xscale("log")
        ax.set_xlabel("Apdex threshold T (ms)")
        ax.set_ylabel("CSAT model log-likelihood")
        ax.set_title(title or "Apdex T calibration: profile log-likelihood of the CSAT model")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return fig


def _default_rhs(columns) -> str:
    from satmodel.models import default_formulas

    rhs = default_formulas(columns)["csat"].split("~", 1)[1]
    terms = [t.strip() for t in rhs.split(" + ") if "latency" not in t]
    return " + ".join(["apdex_t", *terms])


def calibrate_apdex(
    source,
    responses: pd.DataFrame,
    t_grid=None,
    rhs: str | None = None,
    default_t: float | None = None,
    progress: bool = False,
) -> ApdexCalibration:
    """Profile the CSAT model's likelihood over the Apdex threshold T.

    Parameters
    ----------
    source : satmodel.sources.Source
        Holds ``requests`` (read in one DuckDB pass, :func:`satmodel.features.apdex_grid`).
    responses : DataFrame
        :func:`satmodel.features.build_responses` output (csat with panel columns).
    t_grid : sequence of float, optional
        Thresholds in ms (default :data:`DEFAULT_T_GRID`; the default T is added).
    rhs : str, optional
        Right-hand side with ``apdex_t`` standing for Apdex(T); default: the default CSAT
        drivers without the latency terms, plus ``apdex_t``.
    default_t : float, optional
        Customary T (default ``source.config.thresholds.apdex_t_ms``, normally 500 ms).
    progress : bool
        tqdm progress bar on stderr.

    Returns
    -------
    ApdexCalibration
    """
    import sys
    import warnings

    from tqdm import tqdm

    from satmodel.models import fit

    if default_t is None:
        config = getattr(source, "config", None)
        default_t = float(getattr(getattr(config, "thresholds", None), "apdex_t_ms", 500.0))
    grid = _t_grid(list(_t_grid(t_grid)) + [float(default_t)])
    apdex = apdex_by_threshold(source, grid)
    for column in ("customer_id", "month", "csat"):
        if column not in responses.columns:
            raise InputError(
                f"responses: column {column!r} not found (pass build_responses output)"
            )
    base = responses.drop(columns=[c for c in responses.columns if c.startswith("apdex_")])
    base = base.assign(customer_id=base["customer_id"].astype(str), month=base["month"].astype(str))
    data = base.merge(apdex.drop(columns="requests"), on=["customer_id", "month"], how="inner")
    if data.empty:
        raise InputError("responses: no survey response falls in a customer-month with requests")
    rhs = rhs or _default_rhs(data.columns)
    if "apdex_t" not in rhs:
        raise InputError(f"rhs {rhs!r}: must contain the term apdex_t")
    formula = f"csat ~ {rhs}"
    # identical rows for every T: drop rows any fit would drop
    probe = data.assign(apdex_t=data[_column(grid[0])])
    needed = [c for c in probe.columns if c in rhs or c == "csat"]
    data = data.loc[probe[needed].notna().all(axis=1)].reset_index(drop=True)
    rows = []
    for t in tqdm(grid, desc="apdex T", file=sys.stderr, disable=not progress):
        frame = data.assign(apdex_t=data[_column(t)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fit(frame, formula, "ordinal", cluster="customer_id")
        coef = result.coefficients_.set_index("term").loc["apdex_t"]
        rows.append(
            {
                "t_ms": float(t),
                "log_likelihood": float(result.log_likelihood_),
                "apdex_coef": float(coef["estimate"]),
                "apdex_std_error": float(coef["std_error"]),
                "converged": bool(result.converged_),
                "n_obs": float(result.n_obs_),
            }
        )
    profile = pd.DataFrame(rows)
    best = profile.loc[profile["log_likelihood"].idxmax()]
    ll_default = float(profile.loc[profile["t_ms"] == float(default_t), "log_likelihood"].iloc[0])
    profile["delta_log_likelihood"] = profile["log_likelihood"] - float(best["log_likelihood"])
    return ApdexCalibration(
        profile_=profile,
        best_t_=float(best["t_ms"]),
        default_t_=float(default_t),
        log_likelihood_best_=float(best["log_likelihood"]),
        log_likelihood_default_=ll_default,
        lr_vs_default_=2.0 * (float(best["log_likelihood"]) - ll_default),
        formula_=formula.replace("apdex_t", "apdex(T)"),
        n_obs_=float(best["n_obs"]),
    )
