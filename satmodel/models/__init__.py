"""Fit satisfaction and complaint models: ordinal CSAT, top-2-box, means and complaint counts.

One entry point, :func:`fit`, fits any of five families with the same options:

========  ===============================================  ==========================
family    model                                            link
========  ===============================================  ==========================
ordinal   cumulative-link (proportional odds) model         logit (default) or probit
logit     binary logistic regression                        logit
ols       linear regression                                 identity
poisson   Poisson regression                                log
negbin    negative binomial NB2, alpha estimated by ML      log
========  ===============================================  ==========================

All families accept frequency weights (``weights=COL``: a row stands for COL identical
observations), cluster-robust standard errors (``cluster=COL``) and, for counts, an exposure
(``exposure=COL``: log(COL) is an offset). Before fitting, rows with the same covariate
values, outcome, cluster and exposure are collapsed into one weighted row; the weighted
likelihood, its score per cluster and its information are exactly those of the original
rows, so estimates and standard errors do not change, but a million survey responses that
share 50,000 customer-months fit in a fraction of a second.

Ordinal models have no intercept: the design is built with treatment coding (reference level
dropped) and the ``Intercept`` column removed; the cutpoints (``thresholds_``) are reported
themselves, ascending, as R ``polr`` and Stata ``ologit`` report them:
``P(y <= j) = F(cut_j - x'b)``.

Formulas are patsy formulas evaluated with ``np`` (numpy) and patsy's built-ins (``C``,
``I``, ``Q``...) in scope. Terms are named as patsy names them (``Intercept``,
``C(segment)[T.smb]``, ``np.log(latency_p95_ms)``).

Default models of the service panel
-----------------------------------
:func:`default_formulas` and :func:`fit_default_models` fit three models:

* ``csat`` - ordinal logit of the 1-5 CSAT of each survey response, standard errors
  clustered by customer;
* ``top2`` - logit of ``I(csat >= 4)`` (top-2-box) per response, clustered by customer;
* ``complaints`` - NB2 of monthly complaints per customer with ``active_users`` as exposure.

All three share the drivers of :data:`satmodel.vocabulary.DRIVERS` (each kept only when its
columns exist and are mostly measured): ``np.log(latency_p95_ms)``,
``np.log1p(downtime_minutes)``, ``error_rate``, the median resolution time with an indicator
for months without a resolved ticket (so those months keep their responses), the shortfalls
against the customer's expectation, last month's downtime and ``C(segment)``. Pass
``formulas=`` to override any of them. Rows with a missing driver are dropped and counted
(``n_dropped_``); a missing value the formula itself handles (``np.fmax``, ``np.isnan``)
drops nothing.

Modules: :mod:`~satmodel.models.formulas` (parsing and safety), :mod:`~satmodel.models.design`
(data preparation), :mod:`~satmodel.models.likelihoods`, :mod:`~satmodel.models.optimize`,
:mod:`~satmodel.models.results` (:class:`FitResult`), :mod:`~satmodel.models.fitting`
(:func:`fit`) and :mod:`~satmodel.models.defaults` (the default models).
"""

from satmodel.models.defaults import (
    DEFAULT_DRIVERS,
    DEFAULT_MODELS,
    ModelData,
    default_formulas,
    fit_default_models,
    model_data,
)
from satmodel.models.design import MAX_ORDINAL_LEVELS
from satmodel.models.fitting import (
    MIN_PER_LEVEL,
    MIN_RESPONSES,
    MLEstimate,
    fit,
    maximize_likelihood,
    single_threaded_blas,
    threadpool_limits,
)
from satmodel.models.formulas import formula_columns
from satmodel.models.likelihoods import FAMILIES
from satmodel.models.results import FitResult

__all__ = [
    "DEFAULT_DRIVERS",
    "DEFAULT_MODELS",
    "FAMILIES",
    "MAX_ORDINAL_LEVELS",
    "MIN_PER_LEVEL",
    "MIN_RESPONSES",
    "FitResult",
    "MLEstimate",
    "ModelData",
    "default_formulas",
    "fit",
    "fit_default_models",
    "formula_columns",
    "maximize_likelihood",
    "model_data",
    "single_threaded_blas",
    "threadpool_limits",
]
