"""The workbook: one source, validated once, its panel, responses and models built once.

:class:`Workbook` is the one way through the chain open -> quarantine -> panel -> responses ->
models. The command line, the notebooks, the report, the case studies and the tests use it, so
each step runs once per run and the configuration is read once (by :func:`open_source`) and
passed on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from satmodel.config import Config
from satmodel.errors import InputError

__all__ = ["RESPONSE_OUTCOMES", "Workbook"]

# Outcomes measured per survey response (fitted on the responses, not on the panel).
RESPONSE_OUTCOMES = ("csat", "nps", "top2")


class Workbook:
    """A data source and everything computed from it, each on first use.

    Parameters
    ----------
    source : a DuckDB file, a folder of canonical tables, a ``postgresql://`` URL or a
        ``satmodel.toml``; None for the configured default (``data/satmodel.duckdb``).
    config : the configuration; read from ``source`` when it is a ``.toml`` file.
    persist_rejected : also write the quarantined rows into the source (``rejected``), as
        the command line does.
    allowed_roots : when given, every path the source or its config names must lie under one
        of these folders (``--confine-paths``).

    Attributes
    ----------
    source_ : the open :class:`~satmodel.sources.Source` (quarantined).
    validation_ : the :class:`~satmodel.validation.ValidationReport`.
    window_ : first and last month of the data, or None without dated rows.
    panel_ : the service panel (one row per customer-month).
    responses_ : survey responses with their customer-month's panel columns, or None.
    models_ : the default models (``csat``, ``top2``, ``complaints``) that the data allows,
        identified as ``[models] identification`` says (default: within customers) and with
        ``[thresholds] satisfied_cutoff`` as the top-2 cutoff.

    Examples
    --------
    >>> book = Workbook("data/satmodel.duckdb")  # doctest: +SKIP
    >>> book.panel_.shape  # doctest: +SKIP
    (12000, 48)
    >>> book.models_["csat"].summary()  # doctest: +SKIP
    """

    def __init__(
        self,
        source: str | os.PathLike | None = None,
        config: Config | None = None,
        *,
        persist_rejected: bool = False,
        allowed_roots: Sequence[Path] | None = None,
    ):
        self.source = source
        self.config = config
        self.persist_rejected = persist_rejected
        self.allowed_roots = allowed_roots

    def __repr__(self) -> str:
        done = [
            name for name in ("source_", "panel_", "responses_", "models_") if name in vars(self)
        ]
        return f"Workbook({self.source!r}, computed={done})"

    @cached_property
    def source_(self):
        from satmodel.sources import open_source
        from satmodel.validation import quarantine

        kwargs = {} if self.allowed_roots is None else {"allowed_roots": self.allowed_roots}
        source = open_source(self.source or None, self.config, **kwargs)
        quarantine(source, persist=self.persist_rejected)
        return source

    @property
    def validation_(self):
        """What validation found (quarantine runs when the source is opened)."""
        return self.source_.report

    @property
    def config_(self) -> Config:
        """The configuration in force (the source's, read once)."""
        return self.source_.config

    @property
    def n_rejected(self) -> int:
        """Rows set aside by validation."""
        return self.validation_.n_rejected

    @cached_property
    def window_(self) -> tuple[str, str] | None:
        from satmodel.calendar import data_window

        return self.validation_.window or data_window(self.source_)

    @cached_property
    def panel_(self) -> pd.DataFrame:
        from satmodel.features import build_panel

        return build_panel(self.source_)

    @cached_property
    def responses_(self) -> pd.DataFrame | None:
        if not self.source_.has("surveys"):
            return None
        from satmodel.features import build_responses

        return build_responses(self.source_, self.panel_)

    @cached_property
    def models_(self) -> dict[str, Any]:
        from satmodel.models import fit_default_models

        config = self.config_
        return fit_default_models(
            self.responses_,
            self.panel_,
            identification=config.models.identification,
            satisfied_cutoff=config.thresholds.satisfied_cutoff,
        )

    def table_for(self, formula: str) -> pd.DataFrame:
        """The table a formula is fitted on: the responses for a per-response outcome (csat,
        nps, top2), else the panel."""
        outcome = formula.split("~", 1)[0].strip()
        if outcome in RESPONSE_OUTCOMES:
            if self.responses_ is None:
                raise InputError(f"surveys: table not found in {self.source_.location}")
            return self.responses_
        return self.panel_

    def fit(self, formula: str, family: str, **kwargs):
        """Fit one model on the panel or the responses (see :func:`satmodel.models.fit`)."""
        from satmodel.models import fit

        return fit(self.table_for(formula), formula, family, **kwargs)
