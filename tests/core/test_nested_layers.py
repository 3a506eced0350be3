"""Layers inside blocks, named by their numbers everywhere a layer is named: the gradient monitor and the run folder's
gradients.jsonl, the alarms, the weights as pictures, one image forward and back, and the sweep keys."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.helpers import BLOCKS_DIGITS, BLOCKS_DIGITS_ACTIVATIONS, BLOCKS_DIGITS_WEIGHTED, digits_config
from workbench.core.architecture import Architecture, Layer, build, validate
from workbench.core.errors import ConfigError
from workbench.core.experiments.spec import SweepSpec, parse_vary, vary_choices, with_activation, with_layer_param
from workbench.core.inspect.alarms import AlarmKind, run_alarms
from workbench.core.inspect.one_image import inspect_image, unit_sum
from workbench.core.inspect.weights import weight_tiles
from workbench.core.numbering import earlier_numbers, enclosing_numbers, weighted_parts
from workbench.core.presets import load_preset
from workbench.core.runs.folders import new_run_dir, read_gradients
from workbench.core.runs.recorder import RunRecorder
from workbench.core.training.engine import Trainer
from workbench.core.training.gradients import GradientMonitor

CLASSES = tuple(str(digit) for digit in range(10))


def blocks() -> Architecture:
    return Architecture.from_dict(BLOCKS_DIGITS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The blocks network trained one epoch on the digits with the app's monitor (every batch) and a run folder."""
    folder = tmp_path_factory.mktemp("nested") / "run"
    architecture = blocks()
    config = digits_config(train_size=320, val_size=64, epochs=1, seed=3)
    monitor = GradientMonitor(every=1)
    recorder = RunRecorder(new_run_dir(folder, architecture, config))
    trainer = Trainer(architecture, config, callbacks=[monitor, recorder], progress=False)
    result = trainer.run()
    assert result.status == "finished"
    return trainer, monitor, recorder, folder


# The gradient monitor and gradients.jsonl


def test_every_layer_with_weights_has_its_own_entry_named_by_its_number_from_the_input_on(trained):
    _, monitor, _, _ = trained
    assert monitor.layers == BLOCKS_DIGITS_WEIGHTED
    assert monitor.activations == BLOCKS_DIGITS_ACTIVATIONS
    last = monitor.samples()[-1]
    assert list(last.grad_norms) == BLOCKS_DIGITS_WEIGHTED
    assert list(last.dead_fractions) == BLOCKS_DIGITS_ACTIVATIONS
    assert all(0.0 <= share <= 1.0 for share in last.dead_fractions.values())


def test_a_nested_layers_norm_is_its_own_parameters_and_the_shortcut_has_its_own(trained):
    trainer, monitor, _, _ = trained
    last = monitor.samples()[-1]
    model = trainer.model

    def norm(module):
        return math.sqrt(sum(float(p.grad.norm()) ** 2 for p in module.parameters()))

    assert last.grad_norms["3.3 Conv2d"] == pytest.approx(norm(model[2].layers[2]), rel=1e-5)
    assert last.grad_norms["3 shortcut Conv2d"] == pytest.approx(norm(model[2].shortcut), rel=1e-5)
    assert last.grad_norms["4.b2.1 Conv2d"] == pytest.approx(norm(model[3].branches[1][0]), rel=1e-5)
    assert all(value > 0 for value in last.grad_norms.values())


def test_every_trainable_parameter_is_in_exactly_one_entry():
    architecture = blocks()
    model = build(architecture)
    owned = [id(parameter) for _, parameters in weighted_parts(architecture, model) for parameter in parameters]
    assert sorted(owned) == sorted(id(parameter) for parameter in model.parameters())


def test_the_run_folder_records_the_nested_names_in_order_and_reads_them_back(trained):
    _, _, recorder, folder = trained
    [epoch] = read_gradients(folder)
    assert list(epoch.grad_norms) == BLOCKS_DIGITS_WEIGHTED
    assert recorder.gradients.layers == BLOCKS_DIGITS_WEIGHTED
    assert all(math.isfinite(value) and value > 0 for value in epoch.grad_norms.values())


def test_top_level_names_are_unchanged_in_a_network_without_blocks():
    architecture = load_preset("mlp")
    parts = [label for label, _ in weighted_parts(architecture, build(architecture))]
    assert parts == ["2 Linear", "5 Linear", "7 Linear"]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_vanishing_alarm_fires_for_the_plain_stack_and_not_for_its_residual_twin(seed):
    """The same twelve Linear layers with SGD: the first/last ratio of the plain stack is about 5·10⁻⁴ (the alarm's
    limit is 10⁻³), while the residual one's first layer gets about 0.6 of the last one's gradient."""
    found = {}
    for preset in ("deep-mlp-12", "res-mlp-12"):
        monitor = GradientMonitor()
        config = digits_config(optimizer="sgd", lr=1e-3, epochs=2, train_size=640, val_size=64, seed=seed)
        result = Trainer(load_preset(preset), config, callbacks=[monitor], progress=False).run()
        alarms = run_alarms(monitor.samples(), monitor.layers, result.history, result.status)
        found[preset] = {alarm.kind: alarm for alarm in alarms}
        assert monitor.layers[0] == "2 Linear" and len(monitor.layers) == 12
    assert monitor.layers[1:3] == ["4.1 Linear", "4.3 Linear"] and monitor.layers[-1] == "9 Linear"
    assert found["deep-mlp-12"][AlarmKind.VANISHING].layer == "2 Linear"
    assert AlarmKind.VANISHING not in found["res-mlp-12"]


# The weights as pictures


def test_the_first_convolution_inside_a_branch_is_drawn_under_its_number():
    architecture = Architecture(
        "branches-first",
        (1, 8, 8),
        10,
        [
            Layer(
                "Parallel",
                {"merge": "concat"},
                branches=[
                    [Layer("Conv2d", {"out_channels": 3, "kernel_size": 3, "padding": 1})],
                    [Layer("Identity")],
                ],
            ),
            Layer("Flatten"),
            Layer("Linear", {"out_features": 10}),
        ],
    )
    [filters] = weight_tiles(architecture, build(architecture).state_dict())
    assert filters.title == "Layer 1.b1.1 Conv2d: 3 filters of 1×3×3"
    assert filters.tiles.shape == (3, 3, 3)


def test_a_linear_inside_a_block_that_reads_the_pixels_is_drawn_as_images_and_one_after_a_block_is_not():
    reads = Architecture(
        "residual-mlp",
        (1, 8, 8),
        10,
        [
            Layer("Flatten"),
            Layer("Residual", layers=[Layer("Linear", {"out_features": 64}), Layer("ReLU")]),
            Layer("Linear", {"out_features": 10}),
        ],
    )
    model = build(reads)
    [units] = weight_tiles(reads, model.state_dict())
    assert units.title == "Layer 2.1 Linear: 64 units, each a 8×8 image of its input weights"
    unit = model[1].layers[0].weight.detach()[5].numpy()
    np.testing.assert_allclose(units.tiles[5], (unit / np.abs(unit).max()).reshape(8, 8), rtol=1e-6)
    after = Architecture(
        "after-a-block",
        (1, 8, 8),
        10,
        [Layer("Flatten"), Layer("Residual", layers=[Layer("ReLU")]), Layer("Linear", {"out_features": 10})],
    )
    assert weight_tiles(after, build(after).state_dict()) == []


def test_the_numbers_before_a_nested_layer_are_its_way_from_the_input():
    assert enclosing_numbers("5.2.b1.3") == ["5", "5.2", "5.2.b1.3"]
    assert earlier_numbers("5.2") == ["1", "2", "3", "4", "5.1"]
    assert earlier_numbers("6.b2.1") == ["1", "2", "3", "4", "5"]
    assert earlier_numbers("1") == []


# One image forward and back


@pytest.fixture(scope="module")
def inspection(trained):
    trainer, _, _, _ = trained
    image = trainer.data.test_x[0].cpu()
    model = trainer.model.cpu().eval()
    return model, inspect_image(model, trainer.architecture, image, CLASSES, 4)


def test_every_layer_and_block_has_a_row_in_the_builders_numbering(inspection):
    _, inspected = inspection
    rows = validate(blocks()).rows
    assert [layer.label() for layer in inspected.layers] == [f"{row.number} {row.type}" for row in rows]
    assert [layer.output_shape for layer in inspected.layers] == [row.output_shape for row in rows]
    assert [layer.depth for layer in inspected.layers] == [row.depth for row in rows]
    report = inspected.to_dict()["layers"]
    assert [entry["number"] for entry in report][:4] == ["1", "2", "3", "3.1"]
    assert [entry["index"] for entry in report] == list(range(1, len(rows) + 1))


def test_a_blocks_row_is_its_sum_or_merge(inspection):
    model, inspected = inspection
    rows = {layer.number: layer for layer in inspected.layers}
    with torch.no_grad():
        projected = model[2].shortcut(torch.from_numpy(rows["3"].input)[None])[0].numpy()
    np.testing.assert_allclose(rows["3"].output, projected + rows["3.3"].output, rtol=1e-5, atol=1e-6)
    merged = np.concatenate([rows["4.b1.1"].output, rows["4.b2.2"].output])
    np.testing.assert_allclose(rows["4"].output, merged, rtol=1e-6)
    np.testing.assert_allclose(rows["6"].output, rows["6"].input + rows["6.3"].output, rtol=1e-5, atol=1e-6)
    # the sum passes the error signal unchanged to the block's last layer
    np.testing.assert_allclose(rows["6.3"].output_gradient, rows["6"].output_gradient, rtol=1e-6)


def test_a_blocks_own_weights_are_its_projections(inspection):
    _, inspected = inspection
    rows = {layer.number: layer for layer in inspected.layers}
    assert rows["3"].weight_gradient_norm > 0  # the 1×1 convolution of the projection
    assert rows["4"].weight_gradient_norm is None and rows["6"].weight_gradient_norm is None
    assert rows["6.1"].weight_gradient_norm > 0 and rows["6.2"].weight_gradient_norm is None


def test_a_nested_linear_units_sum_is_its_output(inspection):
    model, inspected = inspection
    rows = {layer.number: layer for layer in inspected.layers}
    inner = rows["6.1"]
    numbers = unit_sum(model, inspected, inner.index, 3)
    assert numbers.total == pytest.approx(float(inner.output[3]), abs=1e-5)
    assert numbers.activation == ("ReLU", pytest.approx(max(0.0, numbers.total), abs=1e-5))
    assert numbers.lines()[0] == "y3 = w3ᵀx + b, layer 6.1 Linear"
    last_inside = unit_sum(model, inspected, rows["6.3"].index, 0)
    assert last_inside.activation is None  # its output goes into the block's sum, not through a ReLU
    assert last_inside.total == pytest.approx(float(rows["6.3"].output[0]), abs=1e-5)


# Sweep keys


def test_a_nested_layers_parameter_and_a_blocks_own_are_sweep_keys():
    architecture = blocks()
    wider = with_layer_param(architecture, "layers.3.1.out_channels", 16)
    assert wider.layers[2].layers[0].params["out_channels"] == 16
    assert architecture.layers[2].layers[0].params["out_channels"] == 8  # the original is left as it was
    assert validate(wider).row("3.1").output_shape == (16, 4, 4)
    projected = with_layer_param(architecture, "layers.6.shortcut", "projection")
    assert projected.layers[5].params == {"shortcut": "projection"} and len(projected.layers[5].layers) == 3
    branch = with_layer_param(architecture, "layers.4.b2.1.kernel_size", 5)
    assert branch.layers[3].branches[1][0].params["kernel_size"] == 5


def test_a_sweep_over_nested_keys_checks_every_run_before_any():
    spec = SweepSpec(
        blocks(),
        digits_config(),
        (
            parse_vary("layers.4.b2.1.kernel_size/layers.4.b2.1.padding=3/1,5/2"),
            parse_vary("layers.6.shortcut=identity,projection"),
        ),
    )
    spec.check()
    architecture, _ = spec.settings(
        {"layers.4.b2.1.kernel_size/layers.4.b2.1.padding": (5, 2), "layers.6.shortcut": "projection"}
    )
    assert architecture.layers[3].branches[1][0].params["kernel_size"] == 5
    assert architecture.layers[5].params["shortcut"] == "projection"
    bad = SweepSpec(blocks(), digits_config(), (parse_vary("layers.4.b2.1.kernel_size=3,5"),))
    with pytest.raises(
        ConfigError, match=r"^layers\.4\.b2\.1\.kernel_size=5: the network does not fit: block 4 Parallel"
    ):
        bad.check()


@pytest.mark.parametrize(
    "key, says",
    [
        ("layers.3.9.out_channels", "layers.3.9.out_channels: block 3 Residual has layers 3.1 to 3.3, not 3.9."),
        ("layers.4.b3.1.out_channels", "block 4 Parallel has branches b1 to b2, not b3."),
        ("layers.4.b2.5.out_channels", "branch 2 of block 4 Parallel has layers 4.b2.1 to 4.b2.2, not 4.b2.5."),
        ("layers.4.1.out_channels", "block 4 Parallel has branches: the first layer of its first branch is 4.b1.1."),
        ("layers.3.b1.1.out_channels", "block 3 Residual has layers, not branches: its first is 3.1."),
        ("layers.2.1.out_channels", "layer 2 is a ReLU, which holds no layers; only Residual and Parallel blocks do."),
        ("layers.3.merge", "block 3 is a Residual block, whose parameter is shortcut; vary a layer inside it"),
        ("layers.3.2.width", "layer 3.2 is a ReLU, whose parameters are none."),
        ("layers.9.out_features", "the network 'blocks-digits' has layers 1 to 7, not 9."),
        ("layers.3.x2.out_channels", "write a layer's parameter as layers.N.PARAM"),
    ],
)
def test_a_number_that_names_no_layer_is_refused_naming_it(key, says):
    with pytest.raises(ConfigError) as refused:
        with_layer_param(blocks(), key, 4)
    assert says in str(refused.value)
    assert str(refused.value).startswith(f"{key}: ")


def test_vary_choices_offers_nested_widths_and_block_parameters_that_fit():
    choices = {choice.key: choice for choice in vary_choices(blocks())}
    assert choices["layers.3.1.out_channels"].title == "layer 3.1 Conv2d: out_channels"
    assert choices["layers.3.1.out_channels"].example == "4,8,16"
    assert choices["layers.6.shortcut"].title == "block 6 Residual: shortcut"
    assert choices["layers.6.shortcut"].example == "identity,projection"
    assert choices["layers.6.1.out_features"].example == "8,16,32"
    # the widths the blocks fix: an identity block's last layer, a branch whose width changes what block 6 adds
    for fixed in (
        "layers.6.3.out_features",
        "layers.4.b1.1.out_channels",
        "layers.3.shortcut",
        "layers.7.out_features",
    ):
        assert fixed not in choices, fixed
    for choice in choices.values():
        if choice.key.startswith("layers."):
            SweepSpec(blocks(), digits_config(), (parse_vary(f"{choice.key}={choice.example}"),)).check()


def test_activation_reaches_inside_blocks():
    changed = with_activation(blocks(), "Tanh")
    types = [layer.type for _, _, layer in changed.walk()]
    assert "ReLU" not in types and types.count("Tanh") == 4
    assert [layer.type for _, _, layer in blocks().walk()].count("ReLU") == 4
