"""The workbook's vocabulary, owned here once: drivers, levers, outcomes and their names.

Every later step (models, insights, reporting, the command line) reads these; none spells them
out again.

- :data:`DRIVERS`: the default model terms, the panel columns each needs, its short key (used
  by driver importance), the service area it belongs to, and how a manager reads it.
- :data:`LEVERS`: the service levels the IT team can commit to, with their physical ranges.
- :data:`OUTCOMES`: the satisfaction and complaint outcomes a target can be set on.
- :data:`METRICS` / :data:`OUTCOME_METRICS`: display names and units of panel columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "DEFAULT_SATISFIED_CUTOFF",
    "DRIVERS",
    "Driver",
    "EXPECTED_COLUMNS",
    "LEVERS",
    "Lever",
    "METRICS",
    "MINUTES_PER_MONTH",
    "OUTCOMES",
    "OUTCOME_DIRECTION",
    "OUTCOME_METRICS",
    "OUTCOME_UNITS",
    "driver",
    "driver_label",
]

# A 30.44-day month: the length the levers' downtime <-> availability link uses.
MINUTES_PER_MONTH = 30.44 * 24 * 60
DEFAULT_SATISFIED_CUTOFF = 4
# probability with which a cost-aware plan must reach its target over the models' uncertainty
DEFAULT_ASSURANCE = 0.8
EXPECTED_COLUMNS = (
    "expected_availability_pct",
    "expected_latency_p95_ms",
    "expected_resolution_hours",
)
_LN2 = math.log(2)


@dataclass(frozen=True)
class Driver:
    """A default model term.

    Attributes
    ----------
    term : the patsy term in the default formulas.
    columns : panel columns it needs (left out of the model when one is absent).
    key : short name (driver importance, JSON).
    area : service area it belongs to (importance grouped by area, performance rules).
    label : what a manager reads.
    step, step_text : the step an effect is shown for (``exp(estimate * step)``) and that step
        in words.
    """

    term: str
    columns: tuple[str, ...]
    key: str
    area: str
    label: str
    step: float
    step_text: str


DRIVERS: tuple[Driver, ...] = (
    Driver(
        "np.log(latency_p95_ms)",
        ("latency_p95_ms",),
        "latency",
        "latency",
        "p95 latency",
        _LN2,
        "per doubling",
    ),
    Driver(
        "np.log1p(downtime_minutes)",
        ("downtime_minutes",),
        "downtime",
        "availability",
        "downtime minutes",
        _LN2,
        "per doubling",
    ),
    Driver(
        "error_rate",
        ("error_rate",),
        "error_rate",
        "error_rate",
        "error rate",
        0.01,
        "per +1 percentage point",
    ),
    # A month without a resolved ticket has no resolution time (null in the panel): the term
    # counts it as 0 hours and the indicator next to it takes its own effect, so no response
    # of such a month is dropped from the models.
    Driver(
        "np.log1p(np.fmax(resolution_hours_median, 0))",
        ("resolution_hours_median",),
        "resolution",
        "resolution",
        "median ticket resolution time",
        _LN2,
        "per doubling",
    ),
    Driver(
        "np.where(np.isnan(resolution_hours_median), 1.0, 0.0)",
        ("resolution_hours_median",),
        "no_resolution",
        "resolution",
        "month without a resolved ticket",
        1.0,
        "vs. a month with resolved tickets",
    ),
    Driver(
        "np.maximum(0, np.log(latency_p95_ms / expected_latency_p95_ms))",
        ("latency_p95_ms", "expected_latency_p95_ms"),
        "latency_shortfall",
        "latency",
        "p95 latency above the customer's expectation",
        _LN2,
        "per doubling above expectation",
    ),
    Driver(
        "np.maximum(0, expected_availability_pct - availability_pct)",
        ("availability_pct", "expected_availability_pct"),
        "availability_shortfall",
        "availability",
        "availability below the customer's expectation",
        0.1,
        "per 0.1 point below expectation",
    ),
    Driver(
        "np.log1p(downtime_minutes_lag1)",
        ("downtime_minutes_lag1",),
        "downtime_lag1",
        "availability",
        "last month's downtime minutes",
        _LN2,
        "per doubling",
    ),
    Driver("C(segment)", ("segment",), "segment", "segment", "segment", 1.0, "vs. the base level"),
)
_BY_TERM = {d.term: d for d in DRIVERS}


def driver(term: str) -> Driver | None:
    """The default driver of a model term (None for a term that is not a default driver)."""
    return _BY_TERM.get(term)


def driver_label(term: str) -> str:
    """What a manager reads for a model term: the driver's label, else the term itself."""
    found = _BY_TERM.get(term)
    return found.label if found else term


@dataclass(frozen=True)
class Lever:
    """A service level the team can commit to.

    Attributes
    ----------
    name : panel column.
    low, high : physical range (``high=None``: unbounded; searched up to 10x the observed max).
    better : ``"higher"`` or ``"lower"``: which direction improves the service.
    unit : unit label for tables and plots.
    scale : grid spacing used by the solver (``"log"``, ``"downtime"``: log1p of the implied
        downtime, ``"linear"``).
    label : what a manager reads.
    """

    name: str
    low: float
    high: float | None
    better: str
    unit: str
    scale: str
    label: str

    @property
    def direction_text(self) -> str:
        """``"at least"`` for a lever where higher is better, else ``"at most"``."""
        return "at least" if self.better == "higher" else "at most"


LEVERS: dict[str, Lever] = {
    "availability_pct": Lever(
        "availability_pct", 0.0, 100.0, "higher", "%", "downtime", "availability"
    ),
    "downtime_minutes": Lever(
        "downtime_minutes", 0.0, MINUTES_PER_MONTH, "lower", "minutes/month", "log1p", "downtime"
    ),
    "latency_p95_ms": Lever("latency_p95_ms", 1.0, None, "lower", "ms", "log", "p95 latency"),
    "resolution_hours_median": Lever(
        "resolution_hours_median", 0.0, None, "lower", "hours", "log1p", "median resolution time"
    ),
    "error_rate": Lever(
        "error_rate", 0.0, 1.0, "lower", "share of requests", "linear", "error rate"
    ),
}

OUTCOMES = ("csat_mean", "csat_top2_rate", "complaint_rate_per_1k")
OUTCOME_UNITS = {
    "csat_mean": "CSAT points (1-5)",
    "csat_top2_rate": "share of satisfied responses (0-1)",
    "complaint_rate_per_1k": "complaints per 1,000 active users per month",
}
# for satisfaction outcomes the target is a floor ("at least"); for complaints a ceiling
OUTCOME_DIRECTION = {"csat_mean": 1, "csat_top2_rate": 1, "complaint_rate_per_1k": -1}

# Service metrics and outcomes of the panel: column -> (label, unit, log scale in charts).
METRICS = {
    "availability_pct": ("Availability", "%", False),
    "downtime_minutes": ("Downtime", "minutes / month", True),
    "latency_p95_ms": ("p95 latency", "ms", True),
    "error_rate": ("Error rate", "share of requests", False),
    "apdex": ("Apdex", "score 0-1", False),
    "resolution_hours_median": ("Median ticket resolution", "hours", True),
    "sla_breach_rate": ("Tickets resolved late", "share of tickets", False),
    "change_failure_rate": ("Change failure rate", "share of changes", False),
}
OUTCOME_METRICS = {
    "csat_mean": ("CSAT, mean score", "score 1-5", False),
    "csat_top2_rate": ("Satisfied share (CSAT 4-5)", "share of responses", False),
    "complaint_rate_per_1k": ("Complaints per 1,000 users", "per 1,000 users", False),
}
