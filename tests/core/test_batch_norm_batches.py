"""A network with batch normalisation never trains on a last batch of one image: that image joins the batch before
it, with a notice; a batch of one that cannot be merged fails with a message naming the layer."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers import digits_config
from workbench.core.errors import TrainingError
from workbench.core.presets import load_preset
from workbench.core.runs.folders import new_run_dir
from workbench.core.runs.recorder import RunRecorder
from workbench.core.training.engine import Callback, Trainer

# The digits' training split is 1,437 images; a tenth goes to validation, leaving 1,294 = 3 × 431 + 1.
ODD_BATCH = 431


def training_batches(trainer: Trainer) -> list[int]:
    """The sizes of the batches the model trains on from now on (its forward passes in training mode)."""
    sizes: list[int] = []
    trainer.model.register_forward_pre_hook(
        lambda module, inputs: sizes.append(len(inputs[0])) if module.training else None
    )
    return sizes


class Notices(Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def on_notice(self, trainer, message):
        self.seen.append(("notice", message))

    def on_train_start(self, trainer, state):
        self.seen.append(("start", str(state.batches_per_epoch)))


def test_the_last_image_joins_the_batch_before_it_with_a_notice(tmp_path):
    config = digits_config(train_size=None, val_size=None, batch_size=ODD_BATCH, epochs=2, optimizer="sgd")
    arch = load_preset("cnn-strong")
    notices = Notices()
    folder = new_run_dir(tmp_path / "run", arch, config)
    trainer = Trainer(arch, config, callbacks=[RunRecorder(folder), notices], progress=False)
    assert len(trainer.data.train_y) == 3 * ODD_BATCH + 1
    sizes = training_batches(trainer)
    result = trainer.run()
    assert result.status == "finished" and len(result.history) == 2
    assert sizes == [431, 431, 432] * 2, "every image in every epoch, never a batch of one"
    message = (
        "The last batch of each epoch would hold 1 image (1,294 training images in batches of 431), and batch "
        "normalisation cannot train on a single image: that image joins the batch before it, which has 432 images."
    )
    assert notices.seen == [("notice", message), ("start", "3")], "said once, before the run starts"
    assert trainer.notices == [message]
    assert json.loads((folder / "run.json").read_text())["status"] == "finished"
    assert (folder / "checkpoint" / "latest.json").is_file()


def test_a_per_batch_schedule_counts_the_merged_batches():
    # one-cycle is laid out over the run's exact number of steps: one step too many raises in PyTorch
    config = digits_config(train_size=None, val_size=None, batch_size=ODD_BATCH, epochs=2, schedule="one-cycle")
    trainer = Trainer(load_preset("cnn-strong"), config, progress=False)
    sizes = training_batches(trainer)
    assert trainer.run().status == "finished" and len(sizes) == 6


def test_a_network_without_batch_norm_keeps_its_last_batch_of_one():
    config = digits_config(train_size=None, val_size=None, batch_size=ODD_BATCH, epochs=1)
    trainer = Trainer(load_preset("seed-relu-mlp"), config, progress=False)
    sizes = training_batches(trainer)
    assert trainer.run().status == "finished"
    assert sizes == [431, 431, 431, 1] and trainer.notices == []


def test_a_last_batch_of_two_stays_as_it_is():
    config = digits_config(train_size=2 * 64 + 2, val_size=50, batch_size=64, epochs=1)
    trainer = Trainer(load_preset("cnn-strong"), config, progress=False)
    sizes = training_batches(trainer)
    assert trainer.run().status == "finished"
    assert sizes == [64, 64, 2] and trainer.notices == []


def test_batches_of_one_image_fail_naming_the_batch_norm_layer(tmp_path):
    config = digits_config(train_size=3, val_size=2, batch_size=1, epochs=1)
    arch = load_preset("cnn-strong")
    folder = new_run_dir(tmp_path / "run", arch, config)
    trainer = Trainer(arch, config, callbacks=[RunRecorder(folder)], progress=False)
    with pytest.raises(TrainingError) as raised:
        trainer.run()
    # layer 19 is the BatchNorm1d after the Linear layer: the first to see a single value per channel
    assert str(raised.value) == (
        "Layer 19 (BatchNorm1d): batch normalisation cannot train on a batch of shape 1×256, which gives it a single "
        "value per channel; train with batches of at least 2 images."
    )
    assert isinstance(trainer.model[18], torch.nn.BatchNorm1d)
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "failed" and run["message"] == str(raised.value)
