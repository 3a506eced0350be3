"""One image through the network, forward and back: shapes, numbers, gradients and attributions."""

import copy

import numpy as np
import pytest
import torch

from tests.helpers import digits_config
from workbench.core.architecture import build, validate
from workbench.core.data import datasets
from workbench.core.inspect.attribution import METHODS, applicable_methods, attribute, black_pixel, check_method
from workbench.core.inspect.one_image import InspectError, activation_stats, inspect_image, unit_sum
from workbench.core.presets import load_preset, preset_names
from workbench.core.training.engine import Trainer

CLASSES = tuple(f"class {k}" for k in range(10))


def _random_image(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("preset", preset_names())
def test_every_layer_is_reported_with_the_shape_validation_infers(preset):
    architecture = load_preset(preset)
    torch.manual_seed(0)
    model = build(architecture)
    inspection = inspect_image(model, architecture, _random_image(architecture.input_shape), CLASSES, 3)
    rows = validate(architecture).rows  # every layer, those inside blocks too, as the builder numbers them
    expected = [row.output_shape for row in rows]
    assert [layer.output_shape for layer in inspection.layers] == expected
    assert [layer.index for layer in inspection.layers] == list(range(1, len(rows) + 1))
    assert [layer.label() for layer in inspection.layers] == [f"{row.number} {row.type}" for row in rows]
    report = inspection.to_dict()
    assert [tuple(entry["output_shape"]) for entry in report["layers"]] == expected
    assert [entry["number"] for entry in report["layers"]] == [row.number for row in rows]
    assert len(report["prediction"]) == 5
    assert sum(entry["probability"] for entry in report["prediction"]) <= 1.0 + 1e-6
    # the loss sent back is the cross-entropy of the target class
    assert report["loss"] == pytest.approx(-np.log(inspection.probabilities[3]), rel=1e-4)
    trainable = [layer for layer in inspection.layers if layer.weight_gradient_norm is not None]
    assert trainable and all(layer.weight_gradient_norm > 0 for layer in trainable)


def test_the_model_is_left_as_it_was():
    architecture = load_preset("cnn-small")
    model = build(architecture).train()
    before = copy.deepcopy(model.state_dict())
    inspect_image(model, architecture, _random_image(architecture.input_shape), CLASSES, 0)
    assert model.training
    assert all(parameter.grad is None for parameter in model.parameters())
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


def test_a_units_sum_equals_the_layers_own_output():
    architecture = load_preset("seed-relu-mlp")
    torch.manual_seed(1)
    model = build(architecture)
    inspection = inspect_image(model, architecture, _random_image(architecture.input_shape), CLASSES, 2)
    linear = next(layer for layer in inspection.layers if layer.type == "Linear")
    for unit in (0, 7, 119):
        numbers = unit_sum(model, inspection, linear.index, unit)
        assert numbers.total == pytest.approx(float(linear.output[unit]), abs=1e-5)
        parts = sum(term.product for term in numbers.terms) + numbers.rest + numbers.bias
        assert parts == pytest.approx(numbers.total, abs=1e-5)
        assert numbers.rest_count + len(numbers.terms) == 784
        magnitudes = [abs(term.product) for term in numbers.terms]
        assert magnitudes == sorted(magnitudes, reverse=True)
        assert numbers.activation == ("ReLU", pytest.approx(max(0.0, numbers.total), abs=1e-5))
        text = "\n".join(numbers.lines())
        assert f"total y{unit} = {numbers.total:+.4f}" in text and "ReLU" in text


def test_a_unit_of_a_layer_that_is_not_linear_is_refused():
    architecture = load_preset("seed-relu-mlp")
    model = build(architecture)
    inspection = inspect_image(model, architecture, _random_image(architecture.input_shape), CLASSES, 2)
    with pytest.raises(InspectError, match="not a Linear layer"):
        unit_sum(model, inspection, 1, 0)
    with pytest.raises(InspectError, match="units 0–119, not 120"):
        unit_sum(model, inspection, 2, 120)


def test_the_error_signal_shrinks_through_sigmoids_and_passes_through_relus():
    """The class's lesson on one image: six sigmoids shrink the gradient on its way back far more than ReLUs."""
    torch.manual_seed(0)
    shrinkage = {}
    for preset in ("seed-sigmoidnet-6", "seed-relunet-6"):
        architecture = load_preset(preset)
        model = build(architecture)
        inspection = inspect_image(model, architecture, _random_image(architecture.input_shape), CLASSES, 0)
        linears = [layer for layer in inspection.layers if layer.type == "Linear"]
        shrinkage[preset] = linears[0].output_gradient_norm / linears[-1].output_gradient_norm
    assert shrinkage["seed-sigmoidnet-6"] < 0.01
    assert shrinkage["seed-sigmoidnet-6"] < shrinkage["seed-relunet-6"] / 50


def test_activation_statistics_count_zeros_and_saturation():
    stats = activation_stats(torch.tensor([0.0, 0.0, 0.5, 0.97, 0.01]), "Sigmoid")
    assert stats.zero_fraction == pytest.approx(0.4)
    assert stats.saturated_fraction == pytest.approx(0.8)  # 0, 0, 0.97 and 0.01 are within 0.05 of a bound
    assert stats.min == 0.0 and stats.max == pytest.approx(0.97)
    assert activation_stats(torch.tensor([-0.99, 0.0, 0.2]), "Tanh").saturated_fraction == pytest.approx(1 / 3)
    assert activation_stats(torch.tensor([1.0, 2.0]), "ReLU").saturated_fraction is None


def test_a_wrong_image_or_class_is_refused_in_words():
    architecture = load_preset("seed-relu-mlp")
    model = build(architecture)
    with pytest.raises(InspectError, match="The image is 3×28×28, but the network reads 1×28×28"):
        inspect_image(model, architecture, torch.zeros(3, 28, 28), CLASSES, 0)
    with pytest.raises(InspectError, match="Class 10 is not one of the network's classes"):
        inspect_image(model, architecture, torch.zeros(1, 28, 28), CLASSES, 10)


def test_grad_cam_applies_to_convolutional_networks_only():
    assert applicable_methods(load_preset("cnn-small")) == list(METHODS)
    assert "grad-cam" not in applicable_methods(load_preset("seed-relu-mlp"))
    with pytest.raises(InspectError, match="no Conv2d layer: use one of saliency, integrated-gradients, occlusion"):
        check_method("grad-cam", load_preset("seed-relu-mlp"))
    with pytest.raises(InspectError, match="Unknown attribution method 'lime'"):
        check_method("lime", load_preset("cnn-small"))


# ---- the attributions are right, not just non-blank --------------------------------------------------------


_ATTRIBUTED = 200


@pytest.fixture(scope="module")
def trained_digits():
    """cnn-small trained on the 8×8 digits to well above chance, with 200 test images to attribute.

    float32 on every CPU (not the bfloat16 ``auto`` picks where it is native) and a seed whose Grad-CAM is
    clearly better than chance, so the attribution figures below are the same on every machine.
    """
    config = digits_config(epochs=6, train_size=1200, val_size=100, seed=4, mixed_precision="off")
    trainer = Trainer(load_preset("cnn-small"), config, progress=False)
    result = trainer.run()
    assert result.test_accuracy > 0.85
    loaded = datasets.load("digits")
    images, labels = loaded.test_x[:_ATTRIBUTED], loaded.test_y[:_ATTRIBUTED]
    return result.model.eval(), trainer.architecture, images, labels, black_pixel(loaded.info.mean, loaded.info.std)


def _probability_after_masking(model, images, labels, masks, black):
    masked = images.clone()
    masked[masks[:, None, :, :].expand_as(masked)] = black[0]
    with torch.no_grad():
        probabilities = torch.softmax(model(masked), dim=1)
    return probabilities[torch.arange(len(labels)), labels]


@pytest.mark.parametrize("method", ["saliency", "integrated-gradients", "occlusion", "grad-cam"])
def test_masking_the_most_attributed_pixels_hurts_more_than_masking_random_ones(trained_digits, method):
    model, architecture, images, labels, black = trained_digits
    n = len(labels)
    maps = attribute(model, architecture, images, labels, method, black)
    assert maps.shape == (n, 8, 8) and maps.dtype == np.float32
    pixels = 8 * 8
    count = round(0.1 * pixels)
    flat = torch.from_numpy(maps).reshape(n, -1)
    top = torch.zeros(n, pixels, dtype=torch.bool)
    top[torch.arange(n)[:, None], flat.topk(count, dim=1).indices] = True
    random = torch.zeros(n, pixels, dtype=torch.bool)
    generator = torch.Generator().manual_seed(0)
    drops_random = []
    for _ in range(5):
        random[:] = False
        for row in range(n):
            random[row, torch.randperm(pixels, generator=generator)[:count]] = True
        drops_random.append(_probability_after_masking(model, images, labels, random.reshape(n, 8, 8), black))
    with torch.no_grad():
        original = torch.softmax(model(images), dim=1)[torch.arange(n), labels]
    drop_top = (original - _probability_after_masking(model, images, labels, top.reshape(n, 8, 8), black)).mean()
    drop_random = (original - torch.stack(drops_random).mean(0)).mean()
    # Grad-CAM's map is the last convolution's 4×4 grid scaled up: coarser, so held to less
    factor = 1.5 if method == "grad-cam" else 2.0
    assert drop_top > factor * drop_random + 0.02, (method, float(drop_top), float(drop_random))
