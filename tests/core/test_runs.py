"""Checkpoints and continuing runs: exact continuation, damaged runs, refusing pickles, the history."""

import json
import os

import pytest
import torch

from workbench.core.config import TrainConfig
from workbench.core.engine import Trainer
from workbench.core.errors import RunError
from workbench.core.presets import load_preset
from workbench.core.runs import RunRecorder, list_runs, load_checkpoint, new_run_dir

TIMING = ("epoch_seconds", "samples_per_second")


def config(epochs, **overrides):
    values = dict(dataset="digits", train_size=800, val_size=200, epochs=epochs, batch_size=64, optimizer="adam",
                  lr=2e-3, device="cpu", seed=5)
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
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("preset, overrides", [("mlp", {}), ("cnn-small", {"optimizer": "sgd", "schedule": "step",
                                                                            "step_size": 2, "gamma": 0.5})])
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

    expected = {"truncated": "is damaged", "edited": "has no 'architecture'", "no-checkpoint": "checkpoint is missing",
                "other-architecture": "does not belong to its architecture"}
    for name, message in expected.items():
        with pytest.raises(RunError, match=message):
            load_checkpoint(tmp_path / name)
    load_checkpoint(tmp_path / "good")
    summaries = {summary.folder.name: summary for summary in list_runs(tmp_path)}
    assert summaries["good"].status == "finished" and summaries["good"].problem is None
    assert summaries["truncated"].status == "damaged" and "is damaged" in summaries["truncated"].problem
    assert summaries["edited"].status == "damaged"


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
