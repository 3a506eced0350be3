"""GradientMonitor on real runs of the digits dataset: logging steps, exact norms, dead units, hooks, resume."""

import copy
import math
from functools import partial

import pytest
import torch
from torch.nn import functional

from tests import helpers
from workbench.core.architecture import Architecture, Layer, build
from workbench.core.presets import load_preset
from workbench.core.training.engine import Callback, Trainer
from workbench.core.training.gradients import (
    GradientMonitor,
    GradientSample,
    dead_unit_fraction,
    logging_every,
    vanishing_ratio,
)

# This module trains on 640 images, validates on 100, at a lower learning rate than the shared config.
digits_config = partial(helpers.digits_config, train_size=640, val_size=100, lr=1e-3)


def run(architecture, monitor, callbacks=(), resume=None, **overrides):
    trainer = Trainer(
        architecture, digits_config(**overrides), callbacks=[*callbacks, monitor], progress=False, resume=resume
    )
    return trainer, trainer.run()


def deep_net(activation: str) -> Architecture:
    """seed-sigmoidnet made six Linear layers deep, with ``activation`` between the layers."""
    layers = [Layer("Flatten")]
    for _ in range(5):
        layers += [Layer("Linear", {"out_features": 120}), Layer(activation)]
    layers += [Layer("Linear", {"out_features": 10}), Layer("Sigmoid")]
    return Architecture(f"{activation}-6", (1, 8, 8), 10, layers)


def hook_count(model) -> int:
    return sum(len(module._forward_hooks) for module in model.modules())


@pytest.mark.parametrize("every", [1, 3, 7])
def test_the_gradient_norm_series_has_one_point_per_logging_step_per_layer(every):
    monitor = GradientMonitor(every=every)
    trainer, result = run(load_preset("mlp"), monitor, epochs=3)
    total = 3 * 10  # 640 images in batches of 64
    assert result.status == "finished"
    assert monitor.layers == ["2 Linear", "5 Linear", "7 Linear"]
    assert monitor.activations == ["3 ReLU", "6 ReLU"]
    assert monitor.total_steps == total
    samples = monitor.samples()
    assert len(samples) == math.ceil(total / every)
    assert [s.step for s in samples] == list(range(1, total + 1, every))
    for label in monitor.layers:
        series = [s.grad_norms[label] for s in samples]
        assert len(series) == len(samples) and all(math.isfinite(v) and v > 0 for v in series)
    for label in monitor.activations:
        assert all(0.0 <= s.dead_fractions[label] <= 1.0 for s in samples)


def test_the_default_interval_keeps_a_run_within_max_points():
    monitor = GradientMonitor(max_points=7)
    run(load_preset("seed-relu-mlp"), monitor, epochs=3)
    assert monitor.every == logging_every(30, 7) == 5
    assert [s.step for s in monitor.samples()] == [1, 6, 11, 16, 21, 26]
    assert logging_every(10) == 1 and logging_every(1001, 500) == 3


def test_the_norms_equal_a_manual_forward_and_backward_pass():
    config = digits_config(train_size=128, batch_size=128, epochs=1, seed=3, mixed_precision="off")  # as below
    monitor = GradientMonitor(every=1)
    trainer = Trainer(load_preset("seed-relu-mlp"), config, callbacks=[monitor], progress=False)
    initial = copy.deepcopy(trainer.model.state_dict())
    trainer.run()
    [sample] = monitor.samples()

    model = build(trainer.architecture)
    model.load_state_dict(initial)
    order = torch.randperm(128, generator=torch.Generator().manual_seed(3))
    functional.cross_entropy(model(trainer.data.train_x[order]), trainer.data.train_y[order]).backward()
    for label, module in (("2 Linear", model[1]), ("4 Linear", model[3])):
        expected = torch.cat([module.weight.grad.flatten(), module.bias.grad.flatten()]).norm().item()
        assert sample.grad_norms[label] == pytest.approx(expected, rel=1e-5)
    assert sample.step == 1


@pytest.mark.parametrize("activation", [Layer("ReLU"), Layer("LeakyReLU", {"negative_slope": 0.0})])
def test_dead_units_are_those_that_output_zero_for_the_whole_batch(activation):
    architecture = Architecture(
        "dead",
        (1, 8, 8),
        10,
        [Layer("Flatten"), Layer("Linear", {"out_features": 4}), activation, Layer("Linear", {"out_features": 10})],
    )
    monitor = GradientMonitor(every=2)
    trainer = Trainer(architecture, digits_config(epochs=2), callbacks=[monitor], progress=False)
    with torch.no_grad():
        first = trainer.model[1]
        first.weight.zero_()
        first.bias.copy_(torch.tensor([-5.0, -5.0, 5.0, 5.0]))  # units 1 and 2 never fire, 3 and 4 always do
    trainer.run()
    samples = monitor.samples()
    assert len(samples) == 10
    assert all(s.dead_fractions == {f"3 {activation.type}": 0.5} for s in samples)


def test_dead_unit_fraction_counts_features_and_channel_positions():
    flat = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert dead_unit_fraction(flat) == pytest.approx(2 / 3)
    image = torch.zeros(5, 2, 3, 3)
    image[0, 0, 1, 1] = 0.5  # one live position in channel 1; channel 2 entirely dead
    assert dead_unit_fraction(image) == pytest.approx(17 / 18)
    assert dead_unit_fraction(torch.rand(4, 6) + 0.1) == 0.0
    signed = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, 2.0]])  # a unit that is 0 or below is not dead
    assert dead_unit_fraction(signed) == pytest.approx(1 / 3)
    assert dead_unit_fraction(image, non_negative=True) == pytest.approx(17 / 18)
    assert dead_unit_fraction(torch.zeros(0, 3)) == 0.0


def test_hooks_sit_on_the_model_only_for_logging_steps_and_are_removed_after_the_run():
    class HookWatcher(Callback):
        """Runs before the monitor, so it sees the hooks of the batch that just ran."""

        def __init__(self):
            self.hooked_steps = []

        def on_batch_end(self, trainer, state):
            if hook_count(trainer.model):
                self.hooked_steps.append((state.epoch - 1) * state.batches_per_epoch + state.batch)

    watcher, monitor = HookWatcher(), GradientMonitor(every=4)
    trainer, _ = run(load_preset("mlp"), monitor, callbacks=[watcher], epochs=2)
    assert watcher.hooked_steps == [1, 5, 9, 13, 17]
    assert hook_count(trainer.model) == 0


def test_hooks_are_removed_when_the_run_is_stopped():
    class StopAtThree(Callback):
        def on_batch_end(self, trainer, state):
            if state.batch == 3:
                trainer.stop()

    monitor = GradientMonitor(every=1)
    trainer, result = run(load_preset("mlp"), monitor, callbacks=[StopAtThree()])
    assert result.status == "stopped"
    assert [s.step for s in monitor.samples()] == [1, 2, 3]
    assert hook_count(trainer.model) == 0


def test_a_resumed_run_continues_the_step_numbering_with_the_same_samples():
    class KeepCheckpoint(Callback):
        def on_epoch_end(self, trainer, state, metrics):
            if state.epoch == 1:
                # A deep copy: the optimizer's state dict shares the tensors that epoch 2 goes on updating.
                self.checkpoint = copy.deepcopy(trainer.checkpoint(state))

    whole = GradientMonitor(every=3)
    keeper = KeepCheckpoint()
    run(load_preset("seed-relu-mlp"), whole, callbacks=[keeper], epochs=2)
    resumed = GradientMonitor(every=3)
    run(load_preset("seed-relu-mlp"), resumed, resume=keeper.checkpoint, epochs=2)

    second_epoch = [s for s in whole.samples() if s.step > 10]
    assert [s.step for s in resumed.samples()] == [13, 16, 19] == [s.step for s in second_epoch]
    for ours, theirs in zip(resumed.samples(), second_epoch):
        assert ours.grad_norms == pytest.approx(theirs.grad_norms, rel=1e-6)
        assert ours.dead_fractions == pytest.approx(theirs.dead_fractions)


def test_take_new_hands_out_each_sample_once():
    monitor = GradientMonitor(every=5)
    assert monitor.take_new() == []
    run(load_preset("seed-relu-mlp"), monitor, epochs=1)
    taken = monitor.take_new()
    assert [s.step for s in taken] == [1, 6] and monitor.take_new() == []
    assert monitor.samples() == taken
    run(load_preset("seed-relu-mlp"), monitor, epochs=1)
    assert [s.step for s in monitor.take_new()] == [1, 6]


def test_parameters_without_gradients_count_as_zero():
    class DropGradients(Callback):
        """Runs before the monitor: layer 3 ends each batch without gradients, layer 2 without its bias's."""

        def on_batch_end(self, trainer, state):
            trainer.model[2].weight.grad = trainer.model[2].bias.grad = trainer.model[1].bias.grad = None

    architecture = Architecture(
        "partial",
        (1, 8, 8),
        10,
        [Layer("Flatten"), Layer("Linear", {"out_features": 16}), Layer("Linear", {"out_features": 10})],
    )
    monitor = GradientMonitor(every=1)
    trainer = Trainer(architecture, digits_config(epochs=1), callbacks=[DropGradients(), monitor], progress=False)
    trainer.run()
    last = monitor.samples()[-1]
    assert last.grad_norms["3 Linear"] == 0.0
    assert last.grad_norms["2 Linear"] == pytest.approx(trainer.model[1].weight.grad.norm().item(), rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_six_sigmoid_layers_starve_the_first_layer_where_relu_does_not(seed):
    ratios = {}
    for activation in ("Sigmoid", "ReLU"):
        monitor = GradientMonitor()
        run(deep_net(activation), monitor, train_size=1000, val_size=0, epochs=3, seed=seed)
        assert len(monitor.samples()) == 48
        ratios[activation] = vanishing_ratio(monitor.samples(), monitor.layers)
    assert ratios["Sigmoid"] < 1 / 100  # measured ≈ 2e-4
    assert ratios["ReLU"] > 1 / 10  # measured 0.33–0.41


def test_vanishing_ratio_is_the_median_of_first_over_last():
    samples = [
        GradientSample(step, {"a": a, "b": 0.5, "c": c}, {})
        for step, (a, c) in enumerate([(1.0, 2.0), (1.0, 10.0), (3.0, 1.0), (1.0, 0.0)], start=1)
    ]
    assert vanishing_ratio(samples, ["a", "b", "c"]) == pytest.approx(0.5)
    assert math.isnan(vanishing_ratio(samples, ["a"]))
    assert math.isnan(vanishing_ratio([], ["a", "c"]))
