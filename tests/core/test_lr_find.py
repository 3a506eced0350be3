"""The learning-rate range test on digits: a rate that trains, the weights left as they were, bad ranges refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from workbench.core.errors import ConfigError
from workbench.core.experiments.lr_find import find_learning_rate, range_test
from workbench.core.presets import load_preset
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer

DIGITS = TrainConfig(dataset="digits", train_size=1000, val_size=200, batch_size=64, optimizer="adam", epochs=5)


def test_the_suggested_rate_trains_well_and_the_weights_are_put_back(tmp_path):
    trainer = Trainer(load_preset("seed-relu-mlp"), DIGITS, progress=False)
    before = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    test = range_test(trainer, plot=tmp_path / "lr.png")
    after = trainer.model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert 1e-4 <= test.suggested <= 1e-1, test.suggested
    assert test.learning_rates == sorted(test.learning_rates) and len(test.losses) == len(test.learning_rates)
    assert (tmp_path / "lr.png").stat().st_size > 10_000

    trained = Trainer(load_preset("seed-relu-mlp"), dataclasses.replace(DIGITS, lr=test.suggested), progress=False)
    assert trained.run().history[-1].val_accuracy >= 0.85, "a rate the test suggests trains well"
    too_small = Trainer(
        load_preset("seed-relu-mlp"), dataclasses.replace(DIGITS, lr=test.suggested / 1000), progress=False
    )
    assert too_small.run().history[-1].val_accuracy < 0.6, "a thousand times less barely moves in 5 epochs"


def test_a_range_that_does_not_rise_or_is_too_short_is_refused():
    with pytest.raises(ConfigError, match="The range must rise"):
        find_learning_rate(load_preset("seed-relu-mlp"), DIGITS, start_lr=1.0, end_lr=0.1)
    with pytest.raises(ConfigError, match="at least 17 steps"):
        find_learning_rate(load_preset("seed-relu-mlp"), DIGITS, steps=10)
