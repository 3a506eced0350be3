"""Checkpoints and continuing runs: exact continuation, damaged runs, refusing pickles, the history."""

import json
import math
import os
import shutil

import pytest
import torch

from workbench.core.errors import RunError
from workbench.core.presets import load_preset
from workbench.core.runs.folders import (
    delete_run,
    is_run_folder,
    load_checkpoint,
    new_run_dir,
    read_metrics,
    read_run,
    rename_run,
)
from workbench.core.runs.recorder import RunRecorder
from workbench.core.runs.summaries import NO_CHECKPOINT, list_runs
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer

TIMING = ("epoch_seconds", "samples_per_second")


def config(epochs, **overrides):
    values = dict(
        dataset="digits",
        train_size=800,
        val_size=200,
        epochs=epochs,
        batch_size=64,
        optimizer="adam",
        lr=2e-3,
        device="cpu",
        seed=5,
    )
    values.update(overrides)
    return TrainConfig(**values)


def train(folder, epochs, preset="mlp", **overrides):
    arch, cfg = load_preset(preset), config(epochs, **overrides)
    trainer = Trainer(arch, cfg, callbacks=[RunRecorder(new_run_dir(folder, arch, cfg))], progress=False)
    return trainer.run()


def resume(folder, more):
    arch, saved, checkpoint = load_checkpoint(folder)
    cfg = TrainConfig.from_dict({**saved.to_dict(), "epochs": checkpoint.epoch + more})
    return Trainer(arch, cfg, callbacks=[RunRecorder(folder)], progress=False, resume=checkpoint).run()


def metrics_lines(folder):
    return [
        {k: v for k, v in json.loads(line).items() if k not in TIMING}
        for line in (folder / "metrics.jsonl").read_text().splitlines()
    ]


@pytest.mark.parametrize(
    "preset, overrides",
    [("mlp", {}), ("cnn-small", {"optimizer": "sgd", "schedule": "step", "step_size": 2, "gamma": 0.5})],
)
def test_three_epochs_and_two_more_equal_five_straight(tmp_path, preset, overrides):
    straight = train(tmp_path / "straight", 5, preset, **overrides)
    train(tmp_path / "split", 3, preset, **overrides)
    continued = resume(tmp_path / "split", 2)
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, continued.model.state_dict()[name]), name
    assert metrics_lines(tmp_path / "split") == metrics_lines(tmp_path / "straight")
    assert json.loads((tmp_path / "split" / "run.json").read_text())["metrics"]["epochs_completed"] == 5


def test_a_checkpoint_is_written_at_every_epoch_and_only_the_latest_kept(tmp_path):
    train(tmp_path / "run", 3)
    files = sorted(path.name for path in (tmp_path / "run" / "checkpoint").iterdir())
    assert files == ["epoch-0003.safetensors", "epoch-0003.state.pt", "latest.json"]


def test_damaged_runs_are_listed_with_the_reason_and_refused(tmp_path):
    for name in ("good", "truncated", "edited", "no-checkpoint", "other-architecture"):
        train(tmp_path / name, 1)
    (tmp_path / "truncated" / "run.json").write_text((tmp_path / "good" / "run.json").read_text()[:100])
    edited = json.loads((tmp_path / "edited" / "run.json").read_text())
    del edited["architecture"]
    (tmp_path / "edited" / "run.json").write_text(json.dumps(edited))
    for path in (tmp_path / "no-checkpoint" / "checkpoint").iterdir():
        path.unlink()
    other = tmp_path / "elsewhere"
    train(other, 1, "seed-linear")
    latest = json.loads((other / "checkpoint" / "latest.json").read_text())
    target = tmp_path / "other-architecture" / "checkpoint"
    for path in target.iterdir():
        path.unlink()
    for path in (other / "checkpoint").iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    assert latest["epoch"] == 1

    expected = {
        "truncated": "is damaged",
        "edited": "has no 'architecture'",
        "no-checkpoint": "checkpoint is missing",
        "other-architecture": "does not belong to its architecture",
    }
    for name, message in expected.items():
        with pytest.raises(RunError, match=message):
            load_checkpoint(tmp_path / name)
    load_checkpoint(tmp_path / "good")
    summaries = {summary.folder.name: summary for summary in list_runs(tmp_path)}
    assert summaries["good"].status == "finished" and summaries["good"].problem is None
    assert summaries["good"].checkpoint_epoch == 1 and summaries["good"].has_weights
    assert summaries["truncated"].status == "damaged" and "is damaged" in summaries["truncated"].problem
    assert summaries["edited"].status == "damaged"
    assert summaries["no-checkpoint"].status == "finished" and summaries["no-checkpoint"].problem == NO_CHECKPOINT
    assert summaries["no-checkpoint"].checkpoint_epoch is None and summaries["no-checkpoint"].has_weights
    other_summary = summaries["other-architecture"]
    assert other_summary.status == "damaged" and other_summary.checkpoint_epoch is None
    assert "checkpoint does not belong to its architecture 'mlp'" in other_summary.problem


class _Exploit:
    def __reduce__(self):
        return os.system, ("touch /tmp/workbench-pwned",)


def test_a_crafted_pickle_in_a_checkpoint_is_refused_and_never_runs(tmp_path):
    train(tmp_path / "run", 1)
    marker = "/tmp/workbench-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    state = tmp_path / "run" / "checkpoint" / "epoch-0001.state.pt"
    torch.save({"optimizer": _Exploit()}, state)
    with pytest.raises(RunError, match="refuses to load"):
        load_checkpoint(tmp_path / "run")
    assert not os.path.exists(marker)


# Reading the epochs back, renaming and deleting runs: one real run, copied for each test that changes it.


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A finished two-epoch run and what the trainer reported for it."""
    folder = tmp_path_factory.mktemp("recorded") / "run"
    return folder, train(folder, 2)


@pytest.fixture
def run_copy(recorded, tmp_path):
    folder = tmp_path / "runs" / "run"
    shutil.copytree(recorded[0], folder)
    return folder


def test_read_metrics_returns_the_epochs_the_trainer_reported(recorded):
    folder, result = recorded
    assert read_metrics(folder) == result.history
    assert [epoch.epoch for epoch in read_metrics(folder)] == [1, 2]


def test_read_metrics_reads_null_as_nan_and_names_a_damaged_line(run_copy):
    path = run_copy / "metrics.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first.update(val_loss=None, val_accuracy=None)
    path.write_text(json.dumps(first) + "\n" + lines[1] + "\n\n")
    history = read_metrics(run_copy)
    assert len(history) == 2 and math.isnan(history[0].val_loss) and math.isnan(history[0].val_accuracy)
    assert history[1].val_accuracy == json.loads(lines[1])["val_accuracy"]

    for damage in (lines[1][:30], json.dumps({**first, "train_loss": "low"}), "[1, 2]", json.dumps({"epoch": 2})):
        path.write_text(lines[0] + "\n" + damage + "\n")
        with pytest.raises(RunError, match="is damaged at line 2"):
            read_metrics(run_copy)
    path.unlink()
    with pytest.raises(RunError, match="has no metrics.jsonl"):
        read_metrics(run_copy)


def test_rename_changes_the_name_shown_and_keeps_the_folder(run_copy):
    before = read_run(run_copy)
    rename_run(run_copy, "  Adam, lr 0.002  ")
    after = read_run(run_copy)
    assert after == {**before, "name": "Adam, lr 0.002"}
    assert run_copy.is_dir() and [summary.name for summary in list_runs(run_copy.parent)] == ["Adam, lr 0.002"]
    assert [path.name for path in run_copy.iterdir() if path.name.endswith(".tmp")] == []


def test_continuing_a_renamed_run_keeps_its_name(run_copy):
    rename_run(run_copy, "baseline")
    resume(run_copy, 1)
    document = read_run(run_copy)
    assert document["name"] == "baseline" and document["metrics"]["epochs_completed"] == 3


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "needs a name"),
        ("   ", "needs a name"),
        ("x" * 121, "at most 120 characters; this one has 121"),
        ("two\nlines", "one line"),
    ],
)
def test_rename_refuses_a_name_that_cannot_name_a_run(run_copy, name, message):
    original = (run_copy / "run.json").read_text()
    with pytest.raises(RunError, match=message):
        rename_run(run_copy, name)
    assert (run_copy / "run.json").read_text() == original


def test_rename_accepts_a_name_of_120_characters(run_copy):
    rename_run(run_copy, "é" * 120)
    assert read_run(run_copy)["name"] == "é" * 120


def test_rename_refuses_a_damaged_run(run_copy):
    (run_copy / "run.json").write_text('{"format": "workbench-run", "sta')
    with pytest.raises(RunError, match="is damaged"):
        rename_run(run_copy, "new")
    assert (run_copy / "run.json").read_text() == '{"format": "workbench-run", "sta'


def test_delete_removes_a_run_folder_even_a_damaged_one(run_copy, tmp_path):
    root = run_copy.parent
    delete_run(run_copy, root=root)
    assert not run_copy.exists() and root.is_dir()

    damaged = root / "damaged"
    damaged.mkdir()
    (damaged / "run.json").write_bytes(b"\x00\xff garbage")
    only_checkpoint = root / "only-checkpoint"
    (only_checkpoint / "checkpoint").mkdir(parents=True)
    (only_checkpoint / "checkpoint" / "latest.json").write_text("{}")
    for folder in (damaged, only_checkpoint):
        assert is_run_folder(folder)
        delete_run(folder)
        assert not folder.exists()
    assert list(root.iterdir()) == []


def test_delete_refuses_anything_but_a_run_folder(run_copy, tmp_path):
    root = run_copy.parent
    plain = root / "holiday-photos"
    plain.mkdir()
    (plain / "beach.jpg").write_bytes(b"jpeg")
    a_file = root / "notes.txt"
    a_file.write_text("keep me")
    link = root / "link"
    link.symlink_to(run_copy, target_is_directory=True)
    cases = {
        plain: "is not a run folder",
        a_file: "is not a folder",
        link: "is a link",
        root / "missing": "is not a folder",
    }
    for target, message in cases.items():
        with pytest.raises(RunError, match=message):
            delete_run(target, root=root)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(run_copy, elsewhere)
    (root / "run.json").write_text("{}")
    for target in (elsewhere, root, root / ".." / "elsewhere"):
        with pytest.raises(RunError, match="is not inside the runs folder"):
            delete_run(target, root=root)
    assert (plain / "beach.jpg").exists() and a_file.exists() and (run_copy / "run.json").exists()
    assert (elsewhere / "run.json").exists() and link.is_symlink()


def test_listing_survives_any_folder_content(run_copy):
    root = run_copy.parent
    (root / "empty").mkdir()
    (root / "a-file").write_text("not a run")
    garbage = root / "garbage"
    garbage.mkdir()
    (garbage / "run.json").write_bytes(bytes(range(256)))
    odd = root / "odd-types"
    shutil.copytree(run_copy, odd)
    document = read_run(odd)
    document.update(config=["adam"], started=20240101, metrics="fast", name=7, dataset=None)
    (odd / "run.json").write_text(json.dumps(document))
    nested = root / "nested"
    nested.mkdir()
    (nested / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    escaping = '{"epoch": 1, "weights": "../../x", "state": "y"}'
    for name, corrupt in (("bad-latest", "[1]"), ("escaping-latest", escaping)):
        shutil.copytree(run_copy, root / name)
        (root / name / "checkpoint" / "latest.json").write_text(corrupt)
    truncated_weights = root / "truncated-weights"
    shutil.copytree(run_copy, truncated_weights)
    (truncated_weights / "model.safetensors").write_bytes(b"\x10")

    summaries = {summary.folder.name: summary for summary in list_runs(root)}
    assert set(summaries) == {
        "run",
        "garbage",
        "odd-types",
        "nested",
        "bad-latest",
        "escaping-latest",
        "truncated-weights",
    }
    assert summaries["run"].status == "finished" and summaries["run"].problem is None
    for name in ("garbage", "nested", "bad-latest", "escaping-latest", "truncated-weights"):
        assert summaries[name].status == "damaged" and summaries[name].problem, name
    assert "checkpoint is damaged" in summaries["escaping-latest"].problem
    assert "model.safetensors) are damaged" in summaries["truncated-weights"].problem
    odd_summary = summaries["odd-types"]
    assert (odd_summary.name, odd_summary.optimizer, odd_summary.lr) == ("odd-types", "?", None)
    assert odd_summary.started == ""
    assert (odd_summary.dataset, odd_summary.epochs, odd_summary.test_accuracy) == ("?", 2, None)


def test_a_killed_run_is_summarised_from_its_metrics(run_copy):
    document = read_run(run_copy)
    del document["metrics"], document["finished"]
    document["status"] = "running"
    (run_copy / "run.json").write_text(json.dumps(document))
    (run_copy / "model.safetensors").unlink()
    history = read_metrics(run_copy)
    (summary,) = list_runs(run_copy.parent)
    assert (summary.status, summary.epochs, summary.checkpoint_epoch, summary.has_weights) == (
        "interrupted",
        2,
        2,
        False,
    )
    assert summary.best_val_accuracy == max(epoch.val_accuracy for epoch in history)
    assert summary.duration_seconds == pytest.approx(sum(epoch.epoch_seconds for epoch in history))
    assert summary.test_accuracy is None and summary.planned_epochs == 2 and summary.config["optimizer"] == "adam"


def test_the_launch_functions_start_and_continue_a_run_as_the_recipe_does(tmp_path):
    from workbench.core.runs.launch import continue_run, new_run

    straight = train(tmp_path / "straight", 5)
    launched = new_run(load_preset("mlp"), config(3), tmp_path / "split", progress=False)
    assert launched.folder == tmp_path / "split" and launched.continued_after is None
    assert launched.trainer.callbacks == [launched.recorder]
    launched.trainer.run()
    continued = continue_run(tmp_path / "split", 2, progress=False)
    assert continued.folder == tmp_path / "split" and continued.continued_after == 3
    assert continued.trainer.config.epochs == 5 and continued.trainer.callbacks == [continued.recorder]
    result = continued.trainer.run()
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, result.model.state_dict()[name]), name
    assert metrics_lines(tmp_path / "split") == metrics_lines(tmp_path / "straight")


def test_a_new_run_refused_for_its_settings_leaves_no_folder(tmp_path):
    from workbench.core.errors import ConfigError
    from workbench.core.runs.launch import new_run

    with pytest.raises(ConfigError, match="lr must be a number above 0"):
        new_run(load_preset("mlp"), config(1, lr=-1.0), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_continued_run_goes_on_counting_the_epochs_without_gain(tmp_path):
    from workbench.core.runs.launch import continue_run

    # the learning rate is too small to change the weights: no epoch after the first lowers the validation loss
    train(tmp_path / "run", 2, optimizer="sgd", lr=1e-30, momentum=0.0, early_stopping=2)
    result = continue_run(tmp_path / "run", 3, progress=False).trainer.run()
    assert result.status == "early-stopped" and len(result.history) == 3, result.message
    assert read_run(tmp_path / "run")["status"] == "early-stopped"
