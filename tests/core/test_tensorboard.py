"""Runs written as TensorBoard event files and read back with TensorBoard's own reader: every epoch's figures,
the hyperparameters, the test confusion matrix (recorded, or computed from the weights), written once however
often the run is exported, and nothing written over that is not an earlier export."""

from __future__ import annotations

import io
import itertools
import json
import math
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from workbench.core.errors import RunError
from workbench.core.presets import load_preset
from workbench.core.runs.folders import new_run_dir, read_batch_losses, read_metrics, read_run
from workbench.core.runs.metrics import Evaluation
from workbench.core.runs.recorder import RunRecorder
from workbench.core.runs.tensorboard import (
    BATCH_TAG,
    CONFUSION_TAG,
    EPOCH_FIELDS,
    EVALUATION_TAG,
    HPARAM_METRICS,
    MARKER_FILE,
    confusion_image,
    log_name,
    write_tensorboard,
)
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer

EPOCHS = 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real 3-epoch run of the MLP on the 8×8 digits, with its evaluation.json. Full precision, so that the
    confusion matrix computed again from its weights is the one it recorded."""
    architecture = load_preset("mlp")
    config = TrainConfig(
        dataset="digits",
        train_size=300,
        val_size=60,
        epochs=EPOCHS,
        batch_size=32,
        optimizer="adam",
        lr=3e-3,
        device="cpu",
        seed=3,
        mixed_precision="off",
    )
    folder = new_run_dir(tmp_path_factory.mktemp("runs") / "digits run", architecture, config)
    Trainer(architecture, config, callbacks=[RunRecorder(folder)], progress=False).run()
    return folder


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of the trained run that a test may change."""
    return Path(shutil.copytree(trained, tmp_path / "runs" / trained.name))


def read_events(folder: Path) -> EventAccumulator:
    """Everything in the event files of ``folder``, nothing sampled away."""
    events = EventAccumulator(
        str(folder),
        size_guidance={"scalars": 0, "images": 0, "tensors": 0, "histograms": 0, "audio": 0, "compressedHistograms": 0},
    )
    events.Reload()
    return events


def decoded(image_event) -> np.ndarray:
    with Image.open(io.BytesIO(image_event.encoded_image_string)) as image:
        return np.asarray(image.convert("RGB"))


def recorded_evaluation(run: Path) -> Evaluation:
    return Evaluation.from_dict(json.loads((run / "evaluation.json").read_text()))


def test_every_epoch_the_hyperparameters_and_the_recorded_confusion_matrix_read_back(run, tmp_path):
    logs = tmp_path / "logs"
    written = write_tensorboard(run, logs)

    assert written.folder == logs / "digits_run" and written.epochs == EPOCHS and written.confusion == "recorded"
    assert (written.folder / MARKER_FILE).is_file()
    events = read_events(written.folder)
    history = read_metrics(run)
    assert len(history) == EPOCHS
    for field in EPOCH_FIELDS:
        points = events.Scalars(f"epoch/{field}")
        assert [point.step for point in points] == [epoch.epoch for epoch in history] == [1, 2, 3], field
        expected = [getattr(epoch, field) for epoch in history]
        assert [point.value for point in points] == pytest.approx(expected, rel=1e-6), field
    started = datetime.fromisoformat(read_run(run)["started"]).timestamp()
    ended = [point.wall_time for point in events.Scalars("epoch/train_loss")]
    expected_ends = list(itertools.accumulate((epoch.epoch_seconds for epoch in history), initial=started))[1:]
    assert ended == pytest.approx(expected_ends), "each epoch at the time it ended"
    recorded = read_batch_losses(run)
    assert [epoch.epoch for epoch in recorded] == [1, 2, 3]
    per_epoch = len(recorded[0].losses)
    batches = events.Scalars(BATCH_TAG)
    assert [point.step for point in batches] == list(range(1, EPOCHS * per_epoch + 1)), "every batch at its step"
    assert [point.value for point in batches] == pytest.approx(
        [loss for epoch in recorded for loss in epoch.losses], rel=1e-5
    )
    for epoch, metrics in zip(recorded, history):  # the batches' losses are those the epoch's loss averages
        assert sum(epoch.losses) / per_epoch == pytest.approx(metrics.train_loss, rel=0.05)
    assert batches[per_epoch - 1].wall_time == pytest.approx(expected_ends[0]), "an epoch's last batch as it ends"

    document = read_run(run)
    start = hparams_metadata.parse_session_start_info_plugin_data(
        events.SummaryMetadata(hparams_metadata.SESSION_START_INFO_TAG).plugin_data.content
    )
    hparams = {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}
    config = document["config"]
    assert hparams["network"] == "mlp" and hparams["optimizer"] == "adam" and hparams["dataset"] == "digits"
    assert hparams["precision"] == "float32" and hparams["mixed_precision"] == "off"
    for name in ("lr", "batch_size", "train_size", "val_size", "epochs", "seed", "momentum", "weight_decay"):
        assert hparams[name] == pytest.approx(config[name]), name
    assert {hparams[name] for name in ("loss", "schedule", "augment")} == {"cross-entropy", "none"}
    figures = {tag: events.Scalars(tag) for tag in HPARAM_METRICS}
    assert [point.value for point in figures["hparam/test_accuracy"]] == pytest.approx(
        [document["metrics"]["test_accuracy"]]
    )
    assert [point.value for point in figures["hparam/best_val_accuracy"]] == pytest.approx(
        [max(epoch.val_accuracy for epoch in history)]
    )
    assert [point.step for point in figures["hparam/test_loss"]] == [EPOCHS]

    evaluation = recorded_evaluation(run)
    [image] = events.Images(CONFUSION_TAG)
    expected_image = confusion_image(evaluation.confusion, evaluation.class_names)
    assert (image.height, image.width) == expected_image.shape[:2] and expected_image.shape[2] == 3
    assert np.array_equal(decoded(image), expected_image), "the picture is of this run's confusion matrix"
    [text] = events.Tensors(f"{EVALUATION_TAG}/text_summary")
    report = text.tensor_proto.string_val[0].decode()
    assert "Recorded at the end of the run." in report
    for name, row in zip(evaluation.class_names, evaluation.confusion):
        assert f"| {name} | " + " | ".join(str(int(value)) for value in row) + " |" in report
    [architecture] = events.Tensors("architecture/text_summary")
    assert '"name": "mlp"' in architecture.tensor_proto.string_val[0].decode()


def test_exporting_again_replaces_the_earlier_export_instead_of_adding_to_it(run, tmp_path):
    logs = tmp_path / "logs"
    first = write_tensorboard(run, logs)
    files = sorted(path.name for path in first.folder.iterdir())
    again = write_tensorboard(run, logs)

    assert again.folder == first.folder and len(list(first.folder.iterdir())) == len(files)
    events = read_events(again.folder)
    assert [point.step for point in events.Scalars("epoch/val_loss")] == [1, 2, 3]
    assert len(events.Images(CONFUSION_TAG)) == 1
    assert len(events.Scalars("hparam/test_accuracy")) == 1


def test_a_run_that_recorded_no_evaluation_gets_the_matrix_computed_from_its_weights(run, tmp_path):
    recorded = recorded_evaluation(run)
    (run / "evaluation.json").unlink()

    computed = write_tensorboard(run, tmp_path / "logs")
    assert computed.confusion == "computed"
    events = read_events(computed.folder)
    [image] = events.Images(CONFUSION_TAG)
    assert np.array_equal(decoded(image), confusion_image(recorded.confusion, recorded.class_names))
    [text] = events.Tensors(f"{EVALUATION_TAG}/text_summary")
    assert "Computed at export" in text.tensor_proto.string_val[0].decode()

    skipped = write_tensorboard(run, tmp_path / "logs", compute_confusion=False)
    assert skipped.confusion == "" and "no test evaluation" in skipped.note
    assert CONFUSION_TAG not in read_events(skipped.folder).Tags()["images"]


def test_figures_the_run_did_not_measure_are_left_out(run, tmp_path):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    unmeasured = [json.loads(line) for line in lines]
    unmeasured[1]["val_loss"] = unmeasured[1]["val_accuracy"] = None
    (run / "metrics.jsonl").write_text("".join(json.dumps(epoch) + "\n" for epoch in unmeasured))

    events = read_events(write_tensorboard(run, tmp_path / "logs").folder)
    assert [point.step for point in events.Scalars("epoch/val_accuracy")] == [1, 3]
    assert [point.step for point in events.Scalars("epoch/train_loss")] == [1, 2, 3]
    assert all(math.isfinite(point.value) for point in events.Scalars("epoch/val_loss"))


def test_a_damaged_run_is_refused_and_its_earlier_export_kept(run, tmp_path):
    logs = tmp_path / "logs"
    earlier = write_tensorboard(run, logs)
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": \n')

    with pytest.raises(RunError, match="metrics.jsonl is damaged at line 1"):
        write_tensorboard(run, logs)
    assert [point.step for point in read_events(earlier.folder).Scalars("epoch/train_loss")] == [1, 2, 3]

    (run / "run.json").write_text("{")
    with pytest.raises(RunError, match="run.json is damaged"):
        write_tensorboard(run, logs)


def test_a_folder_or_file_of_the_same_name_not_written_here_is_left_alone(run, tmp_path):
    logs = tmp_path / "logs"
    theirs = logs / log_name(run)
    theirs.mkdir(parents=True)
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="runs --tensorboard did not write .*; it was left alone"):
        write_tensorboard(run, logs)
    assert [path.name for path in theirs.iterdir()] == ["notes.txt"]

    shutil.rmtree(theirs)
    theirs.write_text("a file")
    with pytest.raises(RunError, match="is a file that"):
        write_tensorboard(run, logs)
    assert theirs.read_text() == "a file"


def test_log_names_are_safe_folder_names(tmp_path):
    assert log_name(tmp_path / "20260101-120000-mlp-digits") == "20260101-120000-mlp-digits"
    assert log_name(tmp_path / "my run: ünï/") == "my_run_n_"
    assert log_name(tmp_path / ".hidden") == "_hidden"
    assert log_name(tmp_path / "a" / "..") == log_name(tmp_path)
