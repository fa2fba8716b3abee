"""The fitted-model object: tidy tables, prediction, text summary and JSON round trip."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
from scipy import special, stats

from satmodel.errors import InputError, SatmodelError
from satmodel.models.formulas import dmatrix, first_line, parse_formula, rhs_desc
from satmodel.models.likelihoods import DEFAULT_LINKS, cdf_pdf
from satmodel.models.within import WithinDesign

_TIDY_COLUMNS = ["term", "estimate", "std_error", "ci_low", "ci_high", "p_value"]
# the small-sample factor of each robust covariance, by convention (optimize.small_sample_factor)
SE_CORRECTION_TEXT = {
    "cluster": {
        "statsmodels": "factor G/(G-1) (N-1)/(N-k), as statsmodels and R sandwich",
        "stata": "factor G/(G-1), as Stata's vce(cluster) (regress: times (N-1)/(N-k))",
    },
    "robust": {
        "statsmodels": "HC0, no factor, as statsmodels",
        "stata": "factor N/(N-1), as Stata's vce(robust) (regress: N/(N-k))",
    },
}


def tidy(names, estimates, std_errors, ci, dist_df=None) -> pd.DataFrame:
    estimates = np.asarray(estimates, dtype=float)
    std_errors = np.asarray(std_errors, dtype=float)
    if dist_df is None:
        crit = stats.norm.ppf(0.5 + ci / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_values = 2 * stats.norm.sf(np.abs(estimates / std_errors))
    else:
        crit = stats.t.ppf(0.5 + ci / 2, dist_df)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_values = 2 * stats.t.sf(np.abs(estimates / std_errors), dist_df)
    return pd.DataFrame(
        {
            "term": pd.array([str(n) for n in names], dtype=str),
            "estimate": estimates,
            "std_error": std_errors,
            "ci_low": estimates - crit * std_errors,
            "ci_high": estimates + crit * std_errors,
            "p_value": p_values,
        },
        columns=_TIDY_COLUMNS,
    )


def _json_float(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_number(value):
    value = float(value)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() else value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {
            "term": str(row.term),
            **{c: _json_float(getattr(row, c)) for c in _TIDY_COLUMNS[1:]},
        }
        for row in frame.itertuples(index=False)
    ]


def _from_records(records: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=_TIDY_COLUMNS)
    for column in _TIDY_COLUMNS[1:]:
        frame[column] = frame[column].astype(float)
    frame["term"] = frame["term"].astype(str)
    return frame


class FitResult:
    """A fitted model: tidy estimates, diagnostics flags, prediction and JSON round trip.

    Attributes
    ----------
    family, formula, link : str
        What was fitted.
    coefficients_ : DataFrame
        Columns term, estimate, std_error, ci_low, ci_high, p_value (no intercept for
        ordinal; coefficients dropped for collinearity have NaN estimates).
    thresholds_ : DataFrame
        Ordinal cutpoints, ascending, same columns (empty for other families).
    alpha_, alpha_std_error_ : float or None
        NB2 dispersion (``Var = mu + alpha mu^2``), negbin only.
    log_likelihood_ : float
        Log-likelihood of the (uncollapsed, frequency-expanded) data.
    n_obs_ : float
        Observations: rows, or the total frequency weight when weights are given.
    n_rows_, n_dropped_ : int
        Rows used and rows dropped for missing values.
    n_clusters_ : int or None
    converged_ : bool
    warnings_ : list of str
        Reasons the fit may be unreliable; ``reliable`` is False when any is set.
    cov_type_ : str
        ``nonrobust`` (inverse observed information), ``robust`` (HC0) or ``cluster``.
    se_correction_ : str or None
        Small-sample convention of robust and cluster-robust standard errors
        (``statsmodels`` or ``stata``; see :data:`SE_CORRECTION_TEXT`); None when
        nonrobust.
    weights_kind_ : str or None
        ``frequency`` or ``analytic`` when weights are given.
    covariance_ : DataFrame
        Covariance of coefficients and thresholds (alpha for negbin).
    levels_ : list or None
        Ordinal outcome levels in order.
    within_ : WithinDesign or None
        For a within fit: the grouping column, the varying design columns and each group's
        means (the persistent part held fixed when predicting).
    mundlak_terms_ : DataFrame
        The mean terms of a within fit (same columns as ``coefficients_``; empty otherwise).
    mundlak_test_ : dict or None
        ``statistic``, ``df``, ``p_value`` of the joint Wald test that the mean terms are
        zero (pooled and within effects agree), with the fit's covariance (cluster-robust).
    """

    def __init__(self, **state):
        self.family: str = state["family"]
        self.formula: str = state["formula"]
        self.link: str = state["link"]
        self.ci: float = state.get("ci", 0.95)
        self.coefficients_: pd.DataFrame = state["coefficients"]
        self.thresholds_: pd.DataFrame = state["thresholds"]
        self.alpha_ = state.get("alpha")
        self.alpha_std_error_ = state.get("alpha_std_error")
        self.log_likelihood_: float = state["log_likelihood"]
        self.n_obs_ = state["n_obs"]
        self.n_rows_: int = state["n_rows"]
        self.n_dropped_: int = state["n_dropped"]
        self.dropped_by_: dict = state.get("dropped_by", {})
        self.n_clusters_ = state.get("n_clusters")
        self.converged_: bool = state["converged"]
        self.iterations_ = state.get("iterations")
        self.warnings_: list[str] = list(state.get("warnings", []))
        self.notes_: list[str] = list(state.get("notes", []))
        self.cov_type_: str = state["cov_type"]
        self.se_correction_: str | None = state.get("se_correction")
        self.weights_kind_: str | None = state.get("weights_kind")
        self.covariance_: pd.DataFrame = state["covariance"]
        self.levels_ = state.get("levels")
        self.level_values_ = state.get("level_values")
        self.df_resid_ = state.get("df_resid")
        self.r_squared_ = state.get("r_squared")
        self.scale_ = state.get("scale")
        self.exposure = state.get("exposure")
        self.weights = state.get("weights")
        self.cluster = state.get("cluster")
        self.design_columns_: list[str] = list(state["design_columns"])
        self.categorical_: list[dict] = list(state.get("categorical", []))
        self.stateful_: bool = bool(state.get("stateful", False))
        self._design_info = state.get("design_info")
        self.within_: WithinDesign | None = state.get("within")
        self.mundlak_terms_: pd.DataFrame = state.get("mundlak_terms")
        if self.mundlak_terms_ is None:
            self.mundlak_terms_ = tidy([], [], [], self.ci)
        self.mundlak_test_: dict | None = state.get("mundlak_test")

    # -- basic properties -------------------------------------------------------------

    @property
    def reliable(self) -> bool:
        """False when any warning flag (non-convergence, separation, ...) is set."""
        return self.converged_ and not self.warnings_

    @property
    def outcome(self) -> str:
        """The outcome expression (left of ``~``)."""
        return self.formula.split("~", 1)[0].strip()

    @property
    def params_(self) -> pd.Series:
        """Coefficients (then thresholds) as a Series indexed by term."""
        frames = [self.coefficients_, self.thresholds_]
        frames = [f for f in frames if len(f)]
        tidy = pd.concat(frames, ignore_index=True) if frames else self.coefficients_
        return pd.Series(tidy["estimate"].to_numpy(), index=tidy["term"].to_numpy())

    def __repr__(self) -> str:
        flag = "" if self.reliable else ", UNRELIABLE"
        return (
            f"FitResult(family={self.family!r}, formula={self.formula!r}, "
            f"n_obs={json_number(self.n_obs_)}, log_likelihood={self.log_likelihood_:.4f}{flag})"
        )

    # -- design matrix for new data ----------------------------------------------------

    def design_matrix(self, new_data: pd.DataFrame) -> pd.DataFrame:
        """Rebuild the model's design matrix (columns as ``coefficients_``) for new data.

        Rows whose drivers are missing are dropped (the returned index says which remain).
        """
        if not isinstance(new_data, pd.DataFrame):
            raise InputError(
                f"new_data: expected a pandas DataFrame, got {type(new_data).__name__}"
            )
        self._check_levels(new_data)
        try:
            if self._design_info is not None:
                (design,) = patsy.build_design_matrices(
                    [self._design_info], new_data, NA_action="drop", return_type="dataframe"
                )
            else:
                design = self._rebuild_design(new_data)
        except patsy.PatsyError as exc:
            raise InputError(f"new_data: {first_line(exc)}") from None
        except Exception as exc:
            raise InputError(
                f"new_data: formula {self.formula!r} cannot be evaluated "
                f"({type(exc).__name__}: {first_line(exc)})"
            ) from None
        if self.family == "ordinal" and "Intercept" in design.columns:
            design = design.drop(columns="Intercept")
        base = self.design_columns_
        if self.within_ is not None:
            base = base[: len(base) - len(self.within_.terms)]
        if list(design.columns) != base:
            raise InputError(
                f"new_data: design columns {list(design.columns)} do not match the fitted "
                f"model's {base}"
            )
        if self.within_ is not None:
            design = self.within_.append_means(design, new_data)
        return design

    def _check_levels(self, new_data: pd.DataFrame):
        for info in self.categorical_:
            variable = info["variable"]
            if variable is None or variable not in new_data.columns:
                continue
            levels = info["levels"]
            if set(levels) <= {False, True} and pd.api.types.is_bool_dtype(new_data[variable]):
                continue
            values = new_data[variable].dropna()
            unseen = ~values.isin(levels)
            if unseen.any():
                raise InputError(
                    f"new_data.{variable}: {int(unseen.sum())} rows have levels not seen when "
                    f"fitting (e.g. {values[unseen].iloc[0]!r}; known: {levels})"
                )

    def _rebuild_design(self, new_data: pd.DataFrame) -> pd.DataFrame:
        if self.stateful_:
            raise SatmodelError(
                f"formula {self.formula!r} uses stateful transforms (center, standardize, "
                f"splines) that cannot be rebuilt from JSON; predict with the fitted object"
            )
        frame = new_data.copy()
        for info in self.categorical_:
            variable = info["variable"]
            if variable is None or variable not in frame.columns:
                continue
            levels = info["levels"]
            if set(levels) <= {False, True}:
                continue
            frame[variable] = pd.Categorical(frame[variable], categories=levels)
        formula = parse_formula(self.formula, frame.columns)
        desc = rhs_desc(formula.rhs_terms, force_intercept=(self.family == "ordinal"))
        return dmatrix(desc, frame)

    # -- prediction ---------------------------------------------------------------------

    def _parameter_arrays(self):
        terms = pd.concat([self.coefficients_, self.mundlak_terms_], ignore_index=True)
        beta = terms.set_index("term")["estimate"].reindex(self.design_columns_).to_numpy(float)
        beta = np.where(np.isfinite(beta), beta, 0.0)
        names = list(self.design_columns_) + list(self.thresholds_["term"])
        cov = self.covariance_.loc[names, names].to_numpy(dtype=float)
        cov = np.where(np.isfinite(cov), cov, 0.0)
        return beta, cov

    def predict(self, new_data: pd.DataFrame, ci: float = 0.95) -> pd.DataFrame:
        """Predict for new rows, with delta-method confidence intervals.

        Parameters
        ----------
        new_data : DataFrame
            Rows with the formula's driver columns (and the exposure column for a
            per-row expected count).
        ci : float
            Confidence level of the intervals.

        Returns
        -------
        DataFrame indexed like ``new_data`` (rows with missing drivers are NaN):

        * ordinal: ``p_<level>`` per level, ``expected`` score, ``std_error``, ``ci_low``,
          ``ci_high`` (levels that are not numbers score 1, 2, ...);
        * logit: ``probability``, ``std_error`` (of the logit), ``ci_low``, ``ci_high``;
        * ols: ``mean``, ``std_error``, ``ci_low``, ``ci_high``;
        * poisson/negbin: ``rate``, ``rate_ci_low``, ``rate_ci_high`` per unit of exposure
          (per row without exposure) and, when the exposure column is present (or there is
          no exposure), ``mean``, ``ci_low``, ``ci_high`` for the expected count.
        """
        if not 0 < ci < 1:
            raise InputError(f"ci: must be between 0 and 1, got {ci!r}")
        index = new_data.index if new_data.index.is_unique else pd.RangeIndex(len(new_data))
        frame = new_data.set_axis(index) if new_data.index is not index else new_data
        design = self.design_matrix(frame)
        X = design.to_numpy(dtype=float)
        beta, cov = self._parameter_arrays()
        k = len(beta)
        z = stats.norm.ppf(0.5 + ci / 2)
        eta = X @ beta
        if self.family == "ordinal":
            out = self._predict_ordinal(X, eta, cov, k, z)
        else:
            cov_b = cov[:k, :k]
            se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", X, cov_b, X), 0.0))
            if self.family == "logit":
                out = {
                    "probability": special.expit(eta),
                    "std_error": se,
                    "ci_low": special.expit(eta - z * se),
                    "ci_high": special.expit(eta + z * se),
                }
            elif self.family == "ols":
                crit = stats.t.ppf(0.5 + ci / 2, self.df_resid_) if self.df_resid_ else z
                out = {
                    "mean": eta,
                    "std_error": se,
                    "ci_low": eta - crit * se,
                    "ci_high": eta + crit * se,
                }
            else:
                out = {
                    "rate": np.exp(eta),
                    "rate_ci_low": np.exp(eta - z * se),
                    "rate_ci_high": np.exp(eta + z * se),
                }
                offset = None
                if self.exposure is None:
                    offset = np.zeros(len(eta))
                elif self.exposure in frame.columns:
                    expo = pd.to_numeric(frame.loc[design.index, self.exposure], errors="coerce")
                    with np.errstate(divide="ignore", invalid="ignore"):
                        offset = np.log(expo.to_numpy(dtype=float))
                if offset is not None:
                    out["mean"] = np.exp(eta + offset)
                    out["std_error"] = se
                    out["ci_low"] = np.exp(eta + offset - z * se)
                    out["ci_high"] = np.exp(eta + offset + z * se)
        result = pd.DataFrame(out, index=design.index)
        return result.reindex(index)

    def _predict_ordinal(self, X, eta, cov, k, z):
        cuts = self.thresholds_["estimate"].to_numpy(dtype=float)
        values = np.asarray(self.level_values_, dtype=float)
        z_cut = cuts[None, :] - eta[:, None]
        cdf, pdf, _ = cdf_pdf(z_cut, self.link)
        cum = np.hstack((np.zeros((len(eta), 1)), cdf, np.ones((len(eta), 1))))
        probs = np.diff(cum, axis=1)
        steps = np.diff(values)
        expected = values[-1] - cdf @ steps
        # gradient of the expected score in (beta, cutpoints)
        weight = pdf * steps[None, :]
        grad = np.hstack((X * weight.sum(axis=1)[:, None], -weight))
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", grad, cov, grad), 0.0))
        out = {f"p_{level}": probs[:, j] for j, level in enumerate(self.levels_)}
        out["expected"] = expected
        out["std_error"] = se
        out["ci_low"] = np.clip(expected - z * se, values[0], values[-1])
        out["ci_high"] = np.clip(expected + z * se, values[0], values[-1])
        return out

    # -- reporting --------------------------------------------------------------------------

    def summary(self) -> str:
        """Readable text summary; reliability flags come first."""
        lines = []
        title = f"satmodel {self.family} model ({self.link} link)"
        lines.append(title)
        lines.append("=" * max(len(title), 60))
        if not self.reliable:
            lines.append("!! UNRELIABLE FIT - do not use these estimates without fixing:")
            if not self.converged_:
                lines.append("!!   - did not converge")
            lines.extend(f"!!   - {w}" for w in self.warnings_)
            lines.append("")
        lines.append(f"formula:        {self.formula}")
        n_obs = json_number(self.n_obs_)
        weights = ""
        if self.weights:
            weights = (
                f" (rows; analytic weights {self.weights!r})"
                if self.weights_kind_ == "analytic"
                else f" (total of frequency weights {self.weights!r})"
            )
        lines.append(f"observations:   {n_obs}{weights}")
        if self.n_dropped_:
            by = ", ".join(f"{c}: {n}" for c, n in self.dropped_by_.items())
            lines.append(f"dropped rows:   {self.n_dropped_} with missing values ({by})")
        if self.exposure:
            lines.append(f"exposure:       log({self.exposure}) as offset")
        cov = self.cov_type_
        if self.cov_type_ == "cluster":
            cov = f"cluster-robust by {self.cluster!r} ({self.n_clusters_} clusters)"
        if self.se_correction_ is not None:
            cov += f"; {self.se_correction_}: {SE_CORRECTION_TEXT[self.cov_type_][self.se_correction_]}"
        lines.append(f"std. errors:    {cov}")
        if self.within_ is not None:
            test = self.mundlak_test_ or {}
            p_value = test.get("p_value")
            lines.append(
                f"within:         effects within {self.within_.column!r} (Mundlak: "
                f"{len(self.within_.terms)} mean terms; test pooled = within: chi2("
                f"{test.get('df', 0)}) = {test.get('statistic') or float('nan'):.4g}, "
                f"p = {p_value if p_value is not None else float('nan'):.3g})"
            )
        lines.append(f"log-likelihood: {self.log_likelihood_:.4f}")
        lines.append(f"converged:      {'yes' if self.converged_ else 'NO'}")
        if self.alpha_ is not None:
            alpha_se = self.alpha_std_error_
            alpha_se = "none: at its bound" if alpha_se is None else f"{alpha_se:.4g}"
            lines.append(f"alpha (NB2):    {self.alpha_:.6g} (s.e. {alpha_se})")
        if self.r_squared_ is not None:
            lines.append(f"R-squared:      {self.r_squared_:.4f}")
        lines.extend(f"note: {n}" for n in self.notes_)
        lines.append("")
        lines.append("coefficients:")
        lines.append(_format_table(self.coefficients_))
        if len(self.thresholds_):
            lines.append("")
            lines.append("thresholds (cutpoints):")
            lines.append(_format_table(self.thresholds_))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-able dict with the ``fit --json`` keys of docs/contract.md plus the state predict needs."""
        cov = self.covariance_
        return {
            "family": self.family,
            "formula": self.formula,
            "n_obs": json_number(self.n_obs_),
            "converged": bool(self.converged_),
            "log_likelihood": _json_float(self.log_likelihood_),
            "params": _records(self.coefficients_),
            "thresholds": _records(self.thresholds_),
            "alpha": _json_float(self.alpha_),
            "alpha_std_error": _json_float(self.alpha_std_error_),
            "link": self.link,
            "cov_type": self.cov_type_,
            "se_correction": self.se_correction_,
            "weights_kind": self.weights_kind_,
            "ci": float(self.ci),
            "reliable": bool(self.reliable),
            "warnings": list(self.warnings_),
            "notes": list(self.notes_),
            "n_rows": int(self.n_rows_),
            "n_dropped": int(self.n_dropped_),
            "dropped_by": {str(k): int(v) for k, v in self.dropped_by_.items()},
            "n_clusters": None if self.n_clusters_ is None else int(self.n_clusters_),
            "iterations": self.iterations_,
            "df_resid": _json_float(self.df_resid_),
            "r_squared": _json_float(self.r_squared_),
            "scale": _json_float(self.scale_),
            "exposure": self.exposure,
            "weights": self.weights,
            "cluster": self.cluster,
            "levels": self.levels_,
            "level_values": self.level_values_,
            "covariance": {
                "terms": [str(t) for t in cov.index],
                "matrix": [[_json_float(v) for v in row] for row in cov.to_numpy(dtype=float)],
            },
            "design": {
                "columns": self.design_columns_,
                "categorical": self.categorical_,
                "stateful": self.stateful_,
                **({} if self.within_ is None else {"within": self.within_.to_dict()}),
            },
            **self._within_keys(),
        }

    def _within_keys(self) -> dict:
        if self.within_ is None:
            return {}
        test = self.mundlak_test_ or {}
        return {
            "within": self.within_.column,
            "mundlak_terms": _records(self.mundlak_terms_),
            "mundlak_test": {
                "statistic": _json_float(test.get("statistic")),
                "df": int(test.get("df", 0)),
                "p_value": _json_float(test.get("p_value")),
            },
        }

    def to_json(self, path: str | Path | None = None, indent: int | None = 2) -> str:
        """Serialise to JSON (written to ``path`` when given); returns the text."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, payload: dict) -> FitResult:
        """Rebuild a result from :meth:`to_dict` output (it can still ``predict``)."""
        try:
            cov_terms = payload["covariance"]["terms"]
            matrix = np.array(
                [
                    [np.nan if v is None else v for v in row]
                    for row in payload["covariance"]["matrix"]
                ],
                dtype=float,
            ).reshape(len(cov_terms), len(cov_terms))
            return cls(
                family=payload["family"],
                formula=payload["formula"],
                link=payload.get("link") or DEFAULT_LINKS[payload["family"]],
                ci=payload.get("ci", 0.95),
                coefficients=_from_records(payload["params"]),
                thresholds=_from_records(payload["thresholds"]),
                alpha=payload.get("alpha"),
                alpha_std_error=payload.get("alpha_std_error"),
                log_likelihood=payload["log_likelihood"],
                n_obs=payload["n_obs"],
                n_rows=payload.get("n_rows", payload["n_obs"]),
                n_dropped=payload.get("n_dropped", 0),
                dropped_by=payload.get("dropped_by", {}),
                n_clusters=payload.get("n_clusters"),
                converged=payload["converged"],
                iterations=payload.get("iterations"),
                warnings=payload.get("warnings", []),
                notes=payload.get("notes", []),
                cov_type=payload.get("cov_type", "nonrobust"),
                se_correction=payload.get("se_correction"),
                weights_kind=payload.get("weights_kind"),
                covariance=pd.DataFrame(matrix, index=cov_terms, columns=cov_terms),
                levels=payload.get("levels"),
                level_values=payload.get("level_values"),
                df_resid=payload.get("df_resid"),
                r_squared=payload.get("r_squared"),
                scale=payload.get("scale"),
                exposure=payload.get("exposure"),
                weights=payload.get("weights"),
                cluster=payload.get("cluster"),
                design_columns=payload["design"]["columns"],
                categorical=payload["design"].get("categorical", []),
                stateful=payload["design"].get("stateful", False),
                within=(
                    WithinDesign.from_dict(payload["design"]["within"])
                    if "within" in payload["design"]
                    else None
                ),
                mundlak_terms=(
                    _from_records(payload["mundlak_terms"]) if "mundlak_terms" in payload else None
                ),
                mundlak_test=payload.get("mundlak_test"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"fit result JSON: missing or malformed field ({exc})") from None

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> FitResult:
        """Load a result saved by :meth:`to_json` from JSON text or a file path."""
        text = str(text_or_path)
        if isinstance(text_or_path, Path) or not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise InputError(f"fit result JSON {str(path)!r}: cannot read ({exc})") from None
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"fit result JSON: not valid JSON ({exc})") from None
        return cls.from_dict(payload)


def _format_table(frame: pd.DataFrame) -> str:
    if not len(frame):
        return "  (none)"
    width = max(12, *(len(str(t)) for t in frame["term"]))
    header = (
        f"  {'term':<{width}} {'estimate':>11} {'std.error':>10} {'ci_low':>10} "
        f"{'ci_high':>10} {'p':>8}"
    )
    rows = [header]
    for row in frame.itertuples(index=False):
        rows.append(
            f"  {str(row.term):<{width}} {row.estimate:>11.5g} {row.std_error:>10.4g} "
            f"{row.ci_low:>10.4g} {row.ci_high:>10.4g} {row.p_value:>8.3g}"
        )
    return "\n".join(rows)
