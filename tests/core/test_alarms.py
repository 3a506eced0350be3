"""Alarms in plain words: each fires on a run built to cause it and stays silent on a healthy run."""

import math

import pytest
import torch

from tests.helpers import digits_config
from workbench.core.inspect.alarms import THRESHOLDS, AlarmKind, epoch_alarms, gradient_alarms, run_alarms
from workbench.core.presets import load_preset
from workbench.core.training.engine import Callback, Trainer
from workbench.core.training.gradients import GradientMonitor, GradientSample
from workbench.core.training.state import EpochMetrics


class _Tamper(Callback):
    """Changes the first Linear layer's weights or bias before the first batch: a run built to go wrong."""

    def __init__(self, bias: float | None = None, weight_scale: float | None = None):
        self.bias, self.weight_scale = bias, weight_scale

    def on_train_start(self, trainer, state):
        linear = next(module for module in trainer.model if isinstance(module, torch.nn.Linear))
        with torch.no_grad():
            if self.bias is not None:
                linear.bias.fill_(self.bias)
            if self.weight_scale is not None:
                linear.weight.mul_(self.weight_scale)


def _alarms(preset, tamper=None, **settings):
    monitor = GradientMonitor()
    callbacks = [monitor] + ([tamper] if tamper else [])
    trainer = Trainer(load_preset(preset), digits_config(**settings), callbacks=callbacks, progress=False)
    result = trainer.run()
    found = {}
    for alarm in run_alarms(monitor.samples(), monitor.layers, result.history, result.status):
        found.setdefault(alarm.kind, alarm)  # the first of each kind: the layer nearest the input
    return found


def test_a_healthy_relu_network_raises_no_alarm():
    assert _alarms("seed-relu-mlp", epochs=4, seed=1) == {}


def test_six_sigmoids_make_the_gradient_vanish():
    alarms = _alarms("seed-sigmoidnet-6", epochs=2, optimizer="sgd", lr=0.1, momentum=0.0, seed=1)
    vanishing = alarms[AlarmKind.VANISHING]
    assert vanishing.layer == "2 Linear" and vanishing.tab == "Gradients"
    assert "the error signal vanishes on its way back" in vanishing.message
    assert "the first layer's gradient is 10⁻" in vanishing.message


def test_relu_units_killed_by_a_large_negative_bias_are_dead():
    alarms = _alarms("seed-relu-mlp", _Tamper(bias=-50.0), epochs=2, optimizer="sgd", lr=0.01, seed=1)
    dead = alarms[AlarmKind.DEAD_UNITS]
    assert dead.layer == "3 ReLU"
    assert dead.message.startswith("layer 3 ReLU: 100% of its units gave 0 for every image of the batch")


def test_sigmoids_fed_huge_inputs_saturate():
    alarms = _alarms("seed-sigmoidnet", _Tamper(weight_scale=40.0), epochs=1, optimizer="sgd", lr=0.01, seed=1)
    saturated = alarms[AlarmKind.SATURATION]
    assert saturated.layer == "3 Sigmoid" and saturated.tab == "Activations"
    assert "of outputs are within 0.05 of its bounds, so its gradient is nearly 0" in saturated.message


def test_two_hundred_images_for_sixty_epochs_overfit(fashion_mnist):
    """On the real Fashion-MNIST (the 8×8 digits are too easy to overfit in 60 epochs)."""
    alarms = _alarms(
        "seed-relu-mlp", dataset="fashion-mnist", epochs=60, train_size=200, val_size=1000, batch_size=50, seed=1
    )
    overfitting = alarms[AlarmKind.OVERFITTING]
    assert overfitting.message.startswith("validation loss has risen for ")
    assert "while training loss fell: the network is memorising the training images" in overfitting.message
    assert overfitting.tab == "Training"


def test_a_learning_rate_of_ten_diverges():
    alarms = _alarms("seed-relu-mlp", epochs=3, optimizer="sgd", lr=10.0, momentum=0.9, seed=1)
    diverged = alarms[AlarmKind.DIVERGED]
    assert "times that of guessing every class alike (ln 10 = 2.30)" in diverged.message
    assert "Lower the learning rate" in diverged.message
    assert AlarmKind.VANISHING not in alarms  # a gradient stopped by dead units is not a vanishing one


def test_a_tiny_learning_rate_does_not_move_the_loss():
    alarms = _alarms("seed-relu-mlp", epochs=3, optimizer="sgd", lr=1e-7, momentum=0.0, seed=1)
    assert "the learning rate is too low to move the loss" in alarms[AlarmKind.STALLED].message


def _epoch(number, train_loss, val_loss, val_accuracy=0.5):
    return EpochMetrics(number, train_loss, val_loss, val_accuracy, 1e-3, 1.0, 1000.0)


def test_overfitting_needs_three_rising_epochs_while_training_loss_falls():
    rising_two = [_epoch(1, 1.0, 0.9), _epoch(2, 0.8, 0.8), _epoch(3, 0.7, 0.85), _epoch(4, 0.6, 0.9)]
    assert epoch_alarms(rising_two) == []
    rising_three = [*rising_two, _epoch(5, 0.5, 0.95)]
    [alarm] = epoch_alarms(rising_three)
    assert alarm.kind is AlarmKind.OVERFITTING
    assert alarm.message.startswith("validation loss has risen for 3 epochs (from 0.8 after epoch 2 to 0.95)")
    both_rising = [_epoch(k, 0.5 + 0.1 * k, 0.5 + 0.1 * k) for k in range(1, 6)]
    assert epoch_alarms(both_rising) == []
    assert [alarm.kind for alarm in epoch_alarms([_epoch(1, math.nan, math.nan)])] == [AlarmKind.DIVERGED]


def test_dead_units_must_be_dead_in_every_recent_batch():
    recent = int(THRESHOLDS.recent_samples.value)
    samples = [GradientSample(step, {"2 Linear": 1.0}, {"3 ReLU": 0.9}) for step in range(1, recent + 1)]
    assert [alarm.kind for alarm in gradient_alarms(samples, ["2 Linear"])] == [AlarmKind.DEAD_UNITS]
    samples[-3] = GradientSample(recent - 2, {"2 Linear": 1.0}, {"3 ReLU": 0.2})
    assert gradient_alarms(samples, ["2 Linear"]) == []


@pytest.mark.parametrize("name", [name for name in THRESHOLDS.__dataclass_fields__])
def test_every_threshold_says_why(name):
    threshold = getattr(THRESHOLDS, name)
    assert threshold.value > 0 and len(threshold.reason) > 40
