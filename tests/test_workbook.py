"""The Workbook façade: each step of the chain computed once, the same as calling the steps."""

from __future__ import annotations

import pandas as pd
import pytest

import satmodel
from satmodel import Workbook
from satmodel.errors import InputError


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("wb") / "demo"
    satmodel.generate_demo(out, customers=40, months=4, seed=3, progress=False)
    return out


def test_steps_match_the_functions_they_wrap(demo_folder):
    book = Workbook(demo_folder)
    source = satmodel.open_source(demo_folder)
    satmodel.quarantine(source)
    panel = satmodel.build_panel(source)
    pd.testing.assert_frame_equal(book.panel_, panel)
    pd.testing.assert_frame_equal(book.responses_, satmodel.build_responses(source, panel))
    assert book.validation_.n_rejected == source.report.n_rejected == book.n_rejected
    assert book.window_ == source.report.window


def test_each_step_runs_once(demo_folder, monkeypatch):
    import satmodel.features as features

    calls = []
    real = features.build_panel

    def counting(source, *args, **kwargs):
        calls.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(features, "build_panel", counting)
    book = Workbook(demo_folder)
    first = book.panel_
    assert book.panel_ is first
    book.responses_  # noqa: B018 - responses are built on the cached panel
    assert len(calls) == 1
    assert book.config_ is book.source_.config


def test_models_and_fit_use_the_right_table(demo_folder):
    book = Workbook(demo_folder)
    assert set(book.models_) == {"csat", "top2", "complaints"}
    csat = book.fit("csat ~ np.log(latency_p95_ms)", "ordinal", cluster="customer_id")
    assert csat.n_obs_ == len(book.responses_)
    panel_fit = book.fit("complaints ~ np.log(latency_p95_ms)", "poisson", exposure="active_users")
    assert panel_fit.n_obs_ == (book.panel_["active_users"] > 0).sum()


def test_fit_of_a_response_outcome_without_surveys_names_the_table(tmp_path, demo_folder):
    folder = tmp_path / "nosurveys"
    folder.mkdir()
    for path in demo_folder.glob("*.parquet"):
        if path.stem != "surveys":
            (folder / path.name).symlink_to(path)
    with pytest.raises(InputError, match="surveys"):
        Workbook(folder).fit("csat ~ error_rate", "ordinal")
