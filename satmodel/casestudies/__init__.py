"""Case studies on real public data, run through the same workbook as the monthly report.

Two notebooks under ``notebooks/case_studies/`` call these functions; the data reach satmodel
only through a ``satmodel.toml`` (``examples/olist/``, ``examples/dot_baggage/``) that maps the
public files onto the canonical tables, so every number below has passed the same sources ->
validation -> features -> models path as a customer's own data.

- **Olist** (Brazilian e-commerce, one review per order): each order is a customer; its
  delivery is one request whose latency is the time from purchase to delivery and whose
  expectation (``expected_latency_p95_ms``) is the promised delivery time, so
  ``latency - expectation`` is the delivery delay. Review score = CSAT; score <= 2 = complaint.
- **DOT baggage** (three airlines x 84 months): mishandled-baggage reports are complaints,
  passengers enplaned the exposure, cancelled / scheduled flights the request error rate,
  airlines the customers and segments.

:func:`run_case_study` executes a case-study notebook with papermill into
``OUT/<name>/`` (``report.ipynb``, ``report.html``, ``summary.json``, ``manifest.json``) through
:func:`satmodel.jobs.run_notebook`, with the monthly report's guarantees.

Modules
-------
- :mod:`satmodel.casestudies.common`: the example configs, loading, fitting, effect tables.
- :mod:`satmodel.casestudies.olist`: the Olist delivery-delay case.
- :mod:`satmodel.casestudies.dot`: the DOT baggage case.
- :mod:`satmodel.casestudies.run`: running a case-study notebook.

The notebooks use ``from satmodel import casestudies as cs`` and the names below.
"""

from satmodel.casestudies.common import (
    CASE_STUDIES,
    MS_PER_DAY,
    CaseData,
    case_config,
    data_quality,
    effects_table,
    load_case,
)
from satmodel.casestudies.dot import (
    DOT_FORMULA,
    DOT_PUBLISHED,
    airline_panel,
    airline_rates,
    cancellation_effect,
    dot_findings,
    dot_models,
    dot_summary,
    overdispersion,
    plot_airline_rates,
    plot_seasonality,
    seasonality,
)
from satmodel.casestudies.olist import (
    DAYS_LATE,
    DAYS_LATE_TERM,
    FIRST_DAYS_TERM,
    LAST_DAYS_TERM,
    LATE_TERM,
    MIDDLE_DAYS_TERM,
    OLIST_BUCKETS,
    OLIST_COMPLAINT_FORMULA,
    OLIST_FORMULA,
    OLIST_LATE_FORMULA,
    OLIST_LATE_ONLY,
    OLIST_PUBLISHED,
    OLIST_TERMS,
    delay_bucket,
    delay_curve,
    delivery_frame,
    delivery_target,
    max_delay_for,
    olist_findings,
    olist_models,
    olist_summary,
    plot_delay_curve,
    plot_score_by_delay,
    score_by_delay,
)
from satmodel.casestudies.run import (
    run_case_study,
)

__all__ = [
    "CASE_STUDIES",
    "CaseData",
    "DAYS_LATE",
    "DAYS_LATE_TERM",
    "DOT_FORMULA",
    "DOT_PUBLISHED",
    "FIRST_DAYS_TERM",
    "LAST_DAYS_TERM",
    "LATE_TERM",
    "MIDDLE_DAYS_TERM",
    "MS_PER_DAY",
    "OLIST_BUCKETS",
    "OLIST_COMPLAINT_FORMULA",
    "OLIST_FORMULA",
    "OLIST_LATE_FORMULA",
    "OLIST_LATE_ONLY",
    "OLIST_PUBLISHED",
    "OLIST_TERMS",
    "airline_panel",
    "airline_rates",
    "cancellation_effect",
    "case_config",
    "data_quality",
    "delay_bucket",
    "delay_curve",
    "delivery_frame",
    "delivery_target",
    "dot_findings",
    "dot_models",
    "dot_summary",
    "effects_table",
    "load_case",
    "max_delay_for",
    "olist_findings",
    "olist_models",
    "olist_summary",
    "overdispersion",
    "plot_airline_rates",
    "plot_delay_curve",
    "plot_score_by_delay",
    "plot_seasonality",
    "run_case_study",
    "score_by_delay",
    "seasonality",
]
