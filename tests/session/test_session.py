"""The session without Qt: loading, editing, training, evaluating, exporting, refusing, all through its events."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workbench.core.architecture import Architecture
from workbench.core.errors import WorkbenchError
from workbench.core.presets import load_preset
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import predict
from workbench.session.actions import ACTIONS, can_evaluate, can_export, can_start, can_stop
from workbench.session.phase import Phase, PhaseError
from workbench.session.session import Session
from workbench.session.shown import NetworkKind
from workbench.session.tasks import InlineRunner, Task


class HeldRunner:
    """Keeps each task until the test lets it run: the session stays in the task's phase meanwhile."""

    def __init__(self) -> None:
        self.held: list[Task] = []

    def start(self, task: Task) -> None:
        self.held.append(task)

    def finish(self) -> None:
        InlineRunner().start(self.held.pop(0))

    def shutdown(self) -> None:
        pass


class Events:
    """Every event a session emits, in order, by name."""

    NAMES = (
        "phase_changed",
        "dataset_changed",
        "network_changed",
        "gallery_changed",
        "evaluation_changed",
        "results_cleared",
        "run_started",
        "epoch_ended",
        "run_finished",
        "run_done",
        "problem",
        "notice",
        "history_shown",
        "exported",
    )

    def __init__(self, session: Session):
        self.seen: list[tuple[str, tuple]] = []
        for name in self.NAMES:
            getattr(session, name).connect(lambda *args, name=name: self.seen.append((name, args)))

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]

    def of(self, name: str) -> list[tuple]:
        return [args for seen, args in self.seen if seen == name]


def digits_session(tmp_path: Path, runner=None, epochs: int = 2) -> Session:
    session = Session(runner or InlineRunner(), runs_out=tmp_path / "run")
    session.load_dataset("digits")
    session.load_preset("seed-relu-mlp")
    session.edit_config(
        TrainConfig(dataset="digits", train_size=1000, val_size=200, batch_size=64, optimizer="adam", epochs=epochs)
    )
    return session


def test_the_session_and_its_package_never_import_qt():
    code = (
        "import sys, workbench.session.session, workbench.session.actions, workbench.session.training; "
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('PySide6', 'pyqtgraph')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_loading_digits_fits_the_network_and_shows_the_untrained_guesses(tmp_path):
    session = Session(InlineRunner())
    events = Events(session)
    session.load_dataset("digits")
    assert session.phase is Phase.IDLE and session.dataset is not None
    assert session.architecture.input_shape == (1, 8, 8) and session.report.ok
    assert events.names().count("dataset_changed") == 1
    network = session.network
    assert network is not None and network.kind is NetworkKind.UNTRAINED and network.model is not None
    gallery = session.gallery
    assert gallery is not None and len(gallery.labels) == session.config.sizes_for(len(session.dataset.train_y))[1]
    expected = predict(network.model, gallery.images).numpy()
    assert gallery.probabilities is not None and (gallery.probabilities == expected).all()


def test_a_run_goes_through_its_phases_and_ends_trained_and_exportable(tmp_path):
    session = digits_session(tmp_path)
    events = Events(session)
    lines: list[str] = []
    session.progress_text.connect(lambda text, detail, finished: lines.append(text))
    assert not can_export(session) and can_start(session)
    with pytest.raises(WorkbenchError, match="Nothing to export: train a network"):
        session.export_source()
    session.start_training()
    phases = [args[0] for args in events.of("phase_changed")]
    assert phases == [Phase.TRAINING, Phase.IDLE]
    names = events.names()
    assert names.index("run_started") < names.index("epoch_ended") < names.index("run_finished")
    assert names[-1] == "run_done" and events.of("run_done") == [("finished",)]
    assert len(events.of("epoch_ended")) == 2
    assert "Evaluating on 360 test images…" in lines  # said before the scoring of the test split, not silence
    last = max(index for index, line in enumerate(lines) if line.startswith("Evaluating on"))
    assert lines[last + 1].startswith("Finished — test accuracy")
    network = session.network
    assert network is not None and network.kind is NetworkKind.TRAINED and network.run_folder == tmp_path / "run"
    assert session.export_source() == tmp_path / "run" and can_export(session) and can_evaluate(session)
    assert session.evaluation is not None and session.evaluation.split == "test"


def test_illegal_requests_raise_sentences_while_work_is_under_way(tmp_path):
    runner = HeldRunner()
    session = digits_session(tmp_path, runner)
    session.start_training()
    assert session.phase is Phase.TRAINING and can_stop(session) and not can_start(session)
    with pytest.raises(PhaseError, match="Cannot start training while a run is training"):
        session.start_training()
    with pytest.raises(PhaseError, match="Cannot change the network or the settings while a run is training"):
        session.load_preset("mlp")
    with pytest.raises(PhaseError, match="Cannot export while a run is training"):
        session.export(tmp_path / "run", "onnx", tmp_path / "model.onnx")
    runner.finish()
    assert session.phase is Phase.IDLE

    session.export(tmp_path / "run", "python", tmp_path / "model.py")
    assert session.phase is Phase.EXPORTING and not can_start(session)
    with pytest.raises(PhaseError, match="^Cannot start training while an export is being written: wait until"):
        session.start_training()
    with pytest.raises(PhaseError, match="Cannot evaluate while an export is being written"):
        session.evaluate_current()
    runner.finish()
    assert session.phase is Phase.IDLE and (tmp_path / "model.py").is_file()


def test_a_failed_export_is_a_problem_and_the_session_is_idle_again(tmp_path):
    session = digits_session(tmp_path)
    session.start_training()
    events = Events(session)
    session.export(tmp_path / "run", "onnx", tmp_path / "missing" / "deeper" / "model.onnx")
    assert session.phase is Phase.IDLE
    ((title, message),) = events.of("problem")
    assert title == "The export failed" and "does not exist" in message
    assert events.of("exported") == []


def test_the_export_choice_is_remembered_for_the_next_export(tmp_path):
    session = digits_session(tmp_path)
    session.start_training()
    (tmp_path / "exports").mkdir()
    session.export(tmp_path / "run", "python", tmp_path / "exports" / "model.py")
    assert (session.export_format, session.export_folder) == ("python", tmp_path / "exports")


def test_editing_the_network_after_a_run_clears_its_results(tmp_path):
    session = digits_session(tmp_path)
    session.start_training()
    events = Events(session)
    edited = session.architecture.copy()
    edited.layers[1].params["out_features"] = 64
    session.edit_architecture(edited)
    assert events.names().count("results_cleared") == 1
    assert session.evaluation is None and session.network is not None
    assert session.network.kind is NetworkKind.UNTRAINED and session.network.run_folder is None
    assert session.gallery is not None and session.gallery.header == "Untrained network's guesses"


def test_the_warnings_follow_the_loss_chosen():
    architecture = load_preset("seed-sigmoidnet")
    session = Session(InlineRunner())
    session.set_architecture(architecture)
    assert any("cross-entropy" in warning for warning in session.report.warnings)
    session.edit_config(TrainConfig(loss="mse"))
    assert session.report.warnings == ()
    session.edit_config(TrainConfig(loss="cross-entropy"))
    assert session.report.warnings


def test_loading_a_run_brings_back_its_network_settings_curves_and_weights(tmp_path):
    session = digits_session(tmp_path)
    session.start_training()
    trained = session.network
    other = Session(InlineRunner())
    events = Events(other)
    other.load_run(tmp_path / "run")
    ((name, history),) = events.of("history_shown")
    assert [metrics.epoch for metrics in history] == [1, 2]
    assert other.config.optimizer == "adam" and other.dataset is not None and other.dataset.info.name == "digits"
    assert other.network is not None and other.network.kind is NetworkKind.FROM_RUN
    assert trained is not None and trained.model is not None and other.network.model is not None
    for key, tensor in trained.model.state_dict().items():
        assert torch.equal(tensor, other.network.model.state_dict()[key])


def test_new_sizes_or_seed_keep_a_trained_network_on_show(tmp_path):
    session = digits_session(tmp_path)
    session.start_training()
    trained = session.network
    session.edit_config(TrainConfig(dataset="digits", train_size=900, val_size=300, seed=5))
    session.redraw_validation_subset()  # what the window's debounce timer calls after such an edit
    assert session.network is trained and session.gallery is not None and len(session.gallery.labels) == 300
    assert trained is not None and trained.model is not None
    expected = predict(trained.model, session.gallery.images).numpy()
    assert session.gallery.probabilities is not None and (session.gallery.probabilities == expected).all()


def test_a_missing_dataset_falls_back_to_digits_with_a_notice(tmp_path):
    session = Session(InlineRunner())
    events = Events(session)
    session.load_dataset(f"folder:{tmp_path / 'nowhere'}")
    assert session.dataset is not None and session.dataset.info.name == "digits"
    ((notice,),) = events.of("notice")
    assert "is not available, so the workbench uses the Digits dataset" in notice


def test_a_bad_architecture_file_is_refused_with_its_reason(tmp_path):
    session = Session(InlineRunner())
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "workbench-architecture", "layers": [')
    with pytest.raises(WorkbenchError, match="not valid JSON"):
        session.open_architecture(broken)
    assert session.file_path is None and session.architecture.name == "seed-simplenet"
    good = tmp_path / "mine.json"
    Architecture.from_dict(load_preset("mlp").to_dict()).save(good)
    session.open_architecture(good)
    assert session.file_path == good and session.recent_files == [good.absolute()]


def test_every_action_names_a_rule_that_answers_on_a_fresh_session():
    session = Session(InlineRunner())
    for spec in ACTIONS:
        assert spec.enabled(session) in (True, False), spec.id
    assert len({spec.id for spec in ACTIONS}) == len(ACTIONS)


def test_a_network_with_blocks_loads_from_the_presets_menu_trains_and_continues(tmp_path):
    from workbench.session.actions import preset_actions

    offered = [spec.argument for spec in preset_actions()]
    assert {"resnet-20", "res-mlp-12", "plain-20", "deep-mlp-12"} <= set(offered), "every preset is in the menu"
    session = digits_session(tmp_path, epochs=1)
    session.load_preset("res-mlp-12")
    assert session.architecture.has_blocks() and session.report.ok, session.report.errors
    assert session.architecture.input_shape == (1, 8, 8), "fitted to the digits like any preset"
    epochs: list[int] = []
    session.epoch_ended.connect(lambda packet: epochs.append(packet.metrics.epoch))
    session.start_training()
    network = session.network
    assert network is not None and network.kind is NetworkKind.TRAINED
    saved = (network.run_folder / "architecture.json").read_text()
    assert '"version": 2' in saved and '"Residual"' in saved
    first = session.last_end
    assert first is not None and first.status == "finished" and epochs == [1]
    session.continue_run(network.run_folder, 1)
    assert session.last_end is not None and session.last_end.status == "finished" and epochs == [1, 2]
    assert session.architecture.has_blocks(), "the continued run keeps its blocks"
