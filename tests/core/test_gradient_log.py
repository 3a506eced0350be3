"""gradients.jsonl: each epoch's median gradient norm per layer, written by the run's recorder, kept whole when a run
is continued (after a kill too), read back as nothing for runs of earlier versions; sigmoid's vanish, ReLU's not."""

import json
import math
import os
import statistics
import subprocess

import pytest

from tests import helpers
from workbench.core.errors import RunError
from workbench.core.presets import load_preset
from workbench.core.runs.folders import (
    GRADIENTS_FILE,
    load_checkpoint,
    new_run_dir,
    read_batch_losses,
    read_gradients,
    read_metrics,
)
from workbench.core.runs.launch import continue_run
from workbench.core.runs.recorder import RunRecorder
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Callback, Trainer
from workbench.core.training.gradients import GradientMonitor, GradientSample, epoch_gradients

MLP_LAYERS = ["2 Linear", "5 Linear", "7 Linear"]


def config(epochs, **overrides):
    """640 images in batches of 64: 10 batches an epoch."""
    return helpers.digits_config(train_size=640, val_size=100, epochs=epochs, seed=4, **overrides)


def train(folder, epochs, preset="mlp", callbacks=(), **overrides):
    architecture, settings = load_preset(preset), config(epochs, **overrides)
    recorder = RunRecorder(new_run_dir(folder, architecture, settings))
    trainer = Trainer(architecture, settings, callbacks=[recorder, *callbacks], progress=False)
    return recorder, trainer.run()


def resume(folder, more):
    architecture, saved, checkpoint = load_checkpoint(folder)
    settings = TrainConfig.from_dict({**saved.to_dict(), "epochs": checkpoint.epoch + more})
    recorder = RunRecorder(folder)
    Trainer(architecture, settings, callbacks=[recorder], progress=False, resume=checkpoint).run()
    return recorder


def environment(tmp_path):
    return dict(
        os.environ,
        WORKBENCH_RUNS_DIR=str(tmp_path / "runs"),
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "home" / "data"),
    )


def lines(folder):
    return [json.loads(line) for line in (folder / GRADIENTS_FILE).read_text().splitlines()]


def test_a_run_writes_one_line_per_epoch_with_each_layers_median_norm(tmp_path):
    watcher = GradientMonitor(every=1)  # every batch, read back at once: what the recorder's own monitor samples
    recorder, result = train(tmp_path / "run", 3, callbacks=[watcher])
    assert result.status == "finished"
    assert recorder.gradients.every == 3, "4 logging steps in 10 batches"
    recorded = lines(tmp_path / "run")
    assert [(line["epoch"], line["step"], line["samples"]) for line in recorded] == [(1, 10, 4), (2, 20, 3), (3, 30, 3)]
    every_batch = {sample.step: sample.grad_norms for sample in watcher.samples()}
    for line in recorded:
        assert list(line["grad_norms"]) == MLP_LAYERS
        steps = [step for step in range(line["step"] - 9, line["step"] + 1) if (step - 1) % 3 == 0]
        for label, norm in line["grad_norms"].items():
            assert math.isfinite(norm) and norm > 0
            # the median of the sampled batches' norms, as a monitor reading every batch at once measured them
            assert norm == pytest.approx(statistics.median(every_batch[step][label] for step in steps), rel=1e-5)
    epochs = read_gradients(tmp_path / "run")
    assert [epoch.epoch for epoch in epochs] == [1, 2, 3]
    assert [epoch.grad_norms for epoch in epochs] == [line["grad_norms"] for line in recorded]


def test_the_recorders_norms_are_read_back_only_at_each_epochs_end(tmp_path):
    """Its logging steps stay on the device until the validation has waited for it anyway: no GPU wait per batch."""

    class Count(Callback):
        def __init__(self):
            self.seen = []

        def on_batch_end(self, trainer, state):
            self.seen.append((state.epoch, len(recorder.gradients.samples())))

    architecture, settings = load_preset("mlp"), config(3)
    recorder, count = RunRecorder(new_run_dir(tmp_path / "run", architecture, settings)), Count()
    Trainer(architecture, settings, callbacks=[recorder, count], progress=False).run()
    assert count.seen == [(1, 0)] * 10 + [(2, 4)] * 10 + [(3, 7)] * 10
    assert [sample.step for sample in recorder.gradients.samples()] == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]
    assert recorder.gradients.activations == [] and all(not s.dead_fractions for s in recorder.gradients.samples())


def test_a_continued_run_keeps_its_earlier_epochs_and_appends_the_new_ones(tmp_path):
    train(tmp_path / "split", 2)
    before = (tmp_path / "split" / GRADIENTS_FILE).read_text().splitlines()
    resume(tmp_path / "split", 2)
    after = (tmp_path / "split" / GRADIENTS_FILE).read_text().splitlines()
    assert after[:2] == before and len(after) == 4
    assert [line["epoch"] for line in lines(tmp_path / "split")] == [1, 2, 3, 4]

    train(tmp_path / "straight", 4)  # a continued run trains exactly as one run would: the same norms
    for continued, straight in zip(lines(tmp_path / "split"), lines(tmp_path / "straight")):
        assert continued["grad_norms"] == pytest.approx(straight["grad_norms"], rel=1e-5)
    # and the same batch losses (batches.jsonl), each epoch once, at the same global steps
    split, straight = read_batch_losses(tmp_path / "split"), read_batch_losses(tmp_path / "straight")
    assert [(epoch.epoch, epoch.first_step) for epoch in split] == [
        (epoch.epoch, epoch.first_step) for epoch in straight
    ]
    assert [epoch.epoch for epoch in split] == [1, 2, 3, 4] and split[1].first_step == len(split[0].losses) + 1
    for continued, one_run in zip(split, straight):
        assert continued.losses == pytest.approx(one_run.losses, rel=1e-4)


def test_epochs_past_the_checkpoint_are_dropped_when_the_run_continues(tmp_path):
    folder = tmp_path / "run"
    train(folder, 2)
    # A line for an epoch the checkpoint does not hold (as a process killed before its checkpoint could leave it)
    stray = {"epoch": 3, "step": 30, "samples": 1, "grad_norms": dict.fromkeys(MLP_LAYERS, 123.0)}
    with (folder / GRADIENTS_FILE).open("a") as stream:
        stream.write(json.dumps(stray) + "\n")
    assert [epoch.epoch for epoch in read_gradients(folder)] == [1, 2, 3]
    resume(folder, 2)
    recorded = lines(folder)
    assert [line["epoch"] for line in recorded] == [1, 2, 3, 4]
    assert all(norm < 100 for norm in recorded[2]["grad_norms"].values()), "epoch 3 is the one trained again"


def test_a_run_killed_with_sigkill_and_continued_records_each_epoch_once(tmp_path):
    out = tmp_path / "runs" / "killed"
    env = environment(tmp_path)
    command = [str(helpers.WORKBENCH), "train", "--preset", "mlp", "--dataset", "digits", "--epochs", "1000"]
    process = subprocess.Popen(
        [*command, "--batch-size", "16", "--out", str(out), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    latest = out / "checkpoint" / "latest.json"

    def two_epochs_saved() -> bool:
        assert process.poll() is None, "the run ended before it could be killed"
        return latest.exists() and json.loads(latest.read_text())["epoch"] >= 2

    helpers.wait_until(two_epochs_saved, 120, "a checkpoint after epoch 2")
    process.kill()
    process.wait(30)
    epoch = json.loads(latest.read_text())["epoch"]
    completed = subprocess.run(
        [str(helpers.WORKBENCH), "train", "--resume", str(out), "--epochs", "2", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    recorded = [line.epoch for line in read_gradients(out)]
    assert recorded == sorted(set(recorded)), "no epoch twice"
    trained = [metrics.epoch for metrics in read_metrics(out)]
    assert trained == list(range(1, epoch + 3))
    # Every epoch but, at most, the one whose checkpoint the kill let through before its gradients line
    assert set(recorded) <= set(trained) and len(set(trained) - set(recorded)) <= 1
    assert {epoch + 1, epoch + 2} <= set(recorded)


def test_a_run_of_an_earlier_version_reads_as_no_gradients_and_records_from_its_continuation_on(tmp_path):
    folder = tmp_path / "old"
    train(folder, 2)
    (folder / GRADIENTS_FILE).unlink()
    assert read_gradients(folder) == []
    continue_run(folder, 1, progress=False).trainer.run()
    assert [epoch.epoch for epoch in read_gradients(folder)] == [3]


def test_a_damaged_or_escaping_gradients_file_is_refused_with_its_line(tmp_path):
    folder = tmp_path / "run"
    train(folder, 1)
    text = (folder / GRADIENTS_FILE).read_text()
    (folder / GRADIENTS_FILE).write_text(text + '{"epoch": 2, "step": 20, "samples": 1, "grad_norms": {"a": "x"}}\n')
    with pytest.raises(RunError, match="damaged at line 2"):
        read_gradients(folder)
    (folder / GRADIENTS_FILE).unlink()
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text(text)
    os.symlink(outside, folder / GRADIENTS_FILE)
    with pytest.raises(RunError, match="leads out of the run folder"):
        read_gradients(folder)


def test_null_norms_read_as_nan(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / GRADIENTS_FILE).write_text('{"epoch": 1, "step": 5, "samples": 2, "grad_norms": {"2 Linear": null}}\n')
    [epoch] = read_gradients(folder)
    assert (epoch.epoch, epoch.step, epoch.samples) == (1, 5, 2) and math.isnan(epoch.grad_norms["2 Linear"])


@pytest.mark.parametrize("seed", [0, 1])
def test_after_one_epoch_six_sigmoid_layers_record_a_starved_first_layer_where_relu_does_not(tmp_path, seed):
    ratios = {}
    for preset in ("seed-sigmoidnet-6", "seed-relunet-6"):
        folder = tmp_path / preset
        architecture, settings = load_preset(preset), helpers.digits_config(epochs=1, seed=seed)
        Trainer(
            architecture, settings, callbacks=[RunRecorder(new_run_dir(folder, architecture, settings))], progress=False
        ).run()
        [epoch] = read_gradients(folder)
        norms = list(epoch.grad_norms.values())
        assert list(epoch.grad_norms) == [f"{2 * n} Linear" for n in range(1, 7)]
        ratios[preset] = norms[0] / norms[-1]
    assert ratios["seed-sigmoidnet-6"] < 1e-2  # measured 1.6e-4 (seed 0)
    assert ratios["seed-relunet-6"] > 0.1  # measured 0.47 (seed 0)
    assert ratios["seed-relunet-6"] > 100 * ratios["seed-sigmoidnet-6"]


def test_every_epoch_has_a_logging_step_even_when_the_run_has_more_epochs_than_points(tmp_path):
    monitor = GradientMonitor(max_points=2)  # 30 batches in 2 samples would skip an epoch
    Trainer(load_preset("mlp"), config(3), callbacks=[monitor], progress=False).run()
    assert monitor.every == 10 and [sample.step for sample in monitor.samples()] == [1, 11, 21]


def test_an_epochs_norm_is_the_median_of_its_finite_samples():
    samples = [
        GradientSample(step, {"2 Linear": norm, "4 Linear": 1.0}, {})
        for step, norm in enumerate([0.5, 9.0, math.nan, 0.1], start=1)
    ]
    epoch = epoch_gradients(1, 4, samples)
    assert (epoch.epoch, epoch.step, epoch.samples) == (1, 4, 4)
    assert epoch.grad_norms == {"2 Linear": 0.5, "4 Linear": 1.0}
    assert epoch_gradients(2, 8, []) is None
