"""``workbench runs --tensorboard DIR [RUN ...]``: every run (or those named) written into DIR, one folder each, read
back with TensorBoard's reader; damaged runs skipped with exit status 1, bad arguments refused with 2 before anything
is written, and nothing in DIR replaced that an earlier export did not write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from workbench.core.runs.folders import read_metrics

TRAIN = ("--preset", "mlp", "--dataset", "digits", "--train-size", "400", "--val-size", "60", "--batch-size", "16")


def read_events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def train(in_process, folder: Path, epochs: int) -> Path:
    result = in_process("train", *TRAIN, "--epochs", str(epochs), "--seed", str(epochs), "--out", folder, "--quiet")
    assert result.returncode == 0, result
    return folder


def test_every_run_is_written_once_damaged_ones_skipped_and_nothing_else_in_the_folder_touched(in_process, sandbox):
    first = train(in_process, sandbox.runs / "first", 2)
    second = train(in_process, sandbox.runs / "second run", 3)
    broken = sandbox.runs / "broken"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    logs = sandbox.root / "logs"
    (logs / "theirs").mkdir(parents=True)
    (logs / "theirs" / "events.out.tfevents.1.their.own").write_bytes(b"theirs")
    listing = in_process("runs")

    exported = in_process("runs", "--tensorboard", logs)
    assert exported.returncode == 1, exported
    assert exported.stderr.count("\n") == 1 and "workbench: skipped broken: " in exported.stderr
    assert "run.json is damaged" in exported.stderr
    assert exported.lines[-1] == f"tensorboard --logdir {logs}"
    written = sorted(exported.lines[:-1])
    assert len(written) == 2 and written[0].endswith(f"-> {logs / 'first'}"), exported
    assert written[1].startswith("second run (finished): 3 epochs, hyperparameters, confusion matrix (recorded)")
    assert in_process("runs").stdout == listing.stdout, "the listing is as it was"
    assert sorted(path.name for path in logs.iterdir()) == ["first", "second_run", "theirs"]
    assert (logs / "theirs" / "events.out.tfevents.1.their.own").read_bytes() == b"theirs"
    for run, name in ((first, "first"), (second, "second_run")):
        events = read_events(logs / name)
        points = events.Scalars("epoch/val_accuracy")
        history = read_metrics(run)
        assert [point.step for point in points] == [epoch.epoch for epoch in history]
        assert [point.value for point in points] == pytest.approx([epoch.val_accuracy for epoch in history], rel=1e-6)
        [image] = events.Images("test/confusion_matrix")
        assert image.width > 100 and image.height > 100

    shutil.rmtree(broken)
    again = in_process("runs", "--tensorboard", logs)
    assert again.returncode == 0 and again.stderr == "", again
    assert len(read_events(logs / "second_run").Scalars("epoch/train_loss")) == 3, "written once, not twice"


def test_named_runs_only_and_a_folder_it_did_not_write_is_refused(in_process, sandbox):
    first = train(in_process, sandbox.runs / "first", 1)
    elsewhere = train(in_process, sandbox.root / "elsewhere" / "other", 2)
    logs = sandbox.root / "logs"

    named = in_process("runs", "--tensorboard", logs, "first", elsewhere)
    assert named.returncode == 0, named
    assert sorted(path.name for path in logs.iterdir()) == ["first", "other"]
    assert len(read_events(logs / "other").Scalars("epoch/lr")) == 2

    shutil.rmtree(logs / "first")
    (logs / "first").mkdir()
    (logs / "first" / "notes.txt").write_text("mine")
    refused = in_process("runs", "--tensorboard", logs, first, elsewhere)
    assert refused.returncode == 1, refused
    assert "skipped first: " in refused.stderr and "did not write" in refused.stderr and "left alone" in refused.stderr
    assert [path.name for path in (logs / "first").iterdir()] == ["notes.txt"]
    assert refused.lines[-1] == f"tensorboard --logdir {logs}" and "other" in refused.lines[0]


def test_bad_arguments_exit_2_before_anything_is_written(in_process, sandbox):
    train(in_process, sandbox.runs / "first", 1)
    logs = sandbox.root / "logs"
    a_file = sandbox.root / "a-file"
    a_file.write_text("")
    cases = {
        ("--tensorboard", logs, "first", "missing"): "There is no run 'missing'",
        ("--tensorboard", a_file): "a-file is a file: --tensorboard needs a folder",
        ("--tensorboard", sandbox.runs): "its logs would go over the run itself",
        ("--tensorboard", sandbox.runs / "first" / "logs"): "is inside the run folder",
        ("first",): "goes with --tensorboard DIR",
        ("--tensorboard", logs, sandbox.root): "is not a run folder",
    }
    for extra, message in cases.items():
        result = in_process("runs", *extra)
        assert result.returncode == 2, result
        assert message in result.stderr and result.stdout == "", result
    assert not logs.exists() and not (sandbox.runs / "first" / "logs").exists()
