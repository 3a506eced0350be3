"""Continuing a run from the app: refused at once, with the process named, while another process trains it; and
the app counting an epoch's batches as the engine does."""

from __future__ import annotations

import pytest

from tests.helpers import lock_held_elsewhere
from workbench.core.errors import RunError
from workbench.core.presets import load_preset
from workbench.core.training.config import TrainConfig
from workbench.session.phase import Phase
from workbench.session.session import Session
from workbench.session.tasks import InlineRunner


def test_continuing_a_run_another_process_trains_is_refused_before_anything_starts(tmp_path):
    session = Session(InlineRunner(), runs_out=tmp_path / "run")
    session.load_dataset("digits")
    session.load_preset("mlp")
    session.edit_config(TrainConfig(dataset="digits", train_size=300, val_size=60, epochs=1, optimizer="adam"))
    session.start_training()
    with lock_held_elsewhere(tmp_path / "run") as process:
        phases: list[Phase] = []
        session.phase_changed.connect(phases.append)
        with pytest.raises(RunError, match=f"This run is being trained by process {process.pid} since"):
            session.continue_run(tmp_path / "run", 1)
        assert phases == [] and session.phase is Phase.IDLE
    session.continue_run(tmp_path / "run", 1)
    assert session.last_end is not None and session.last_end.status == "finished"
    assert load_preset("mlp").name in session.architecture.name


def test_the_app_counts_the_batches_as_the_engine_does_and_shows_its_notice(tmp_path):
    session = Session(InlineRunner(), runs_out=tmp_path / "run")
    session.load_dataset("digits")
    session.load_preset("cnn-strong")
    session.edit_config(TrainConfig(dataset="digits", batch_size=431, epochs=1, optimizer="sgd"))
    counted: list[int] = []
    notices: list[str] = []
    session.run_started.connect(lambda start: counted.append(session.batches_per_epoch()))
    session.notice.connect(notices.append)
    session.start_training()
    assert counted == [3], "1,294 images in batches of 431: the last image joins the third batch"
    assert any("batch normalisation cannot train on a single image" in notice for notice in notices)
    assert session.last_end is not None and session.last_end.status == "finished"
