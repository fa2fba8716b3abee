"""satmodel: from service telemetry to customer satisfaction, and back to the service level a
satisfaction target needs.

The public API is imported lazily, so ``import satmodel`` stays cheap and has no side effects.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "InputError": "satmodel.errors",
    "SatmodelError": "satmodel.errors",
    "ModelWarning": "satmodel.errors",
    "Config": "satmodel.config",
    "load_config": "satmodel.config",
    "Source": "satmodel.sources",
    "open_source": "satmodel.sources",
    "read_table_file": "satmodel.sources",
    "validate": "satmodel.validation",
    "quarantine": "satmodel.validation",
    "ValidationReport": "satmodel.validation",
    "generate_demo": "satmodel.demo",
    "build_panel": "satmodel.features",
    "build_responses": "satmodel.features",
    "fit": "satmodel.models",
    "FitResult": "satmodel.models",
    "fit_default_models": "satmodel.models",
    "solve_target": "satmodel.insights",
    "target_frontier": "satmodel.insights",
    "driver_importance": "satmodel.insights",
    "marginal_effects": "satmodel.insights",
    "what_if": "satmodel.insights",
    "response_curve": "satmodel.insights",
    "gap_analysis": "satmodel.insights",
    "cheapest_plan": "satmodel.insights",
    "calibrate_apdex": "satmodel.insights",
    "nowcast": "satmodel.insights",
    "Workbook": "satmodel.workbook",
}
# `satmodel.targets(...)` is the inverse solver under the name the CLI command uses.
_ALIASES = {"targets": ("satmodel.insights", "solve_target")}

__all__ = sorted([*_PUBLIC, *_ALIASES])


def __getattr__(name: str):
    module, attribute = _ALIASES.get(name, (_PUBLIC.get(name), name))
    if module is None:
        raise AttributeError(f"module 'satmodel' has no attribute {name!r}")
    return getattr(importlib.import_module(module), attribute)


def __dir__():
    return __all__
