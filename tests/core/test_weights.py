"""weight_tiles: which layers become pictures, their shapes, titles and scaling."""

import numpy as np
import pytest
import torch

from workbench.core.architecture import Architecture, Layer, build
from workbench.core.inspect.weights import WeightTiles, normalise_tiles, weight_tiles
from workbench.core.presets import load_preset


def tiles_of(architecture, **kwargs):
    torch.manual_seed(0)
    return weight_tiles(architecture, build(architecture).state_dict(), **kwargs)


def test_an_mlp_shows_one_28x28_image_per_unit_of_its_first_linear():
    [panel] = tiles_of(load_preset("mlp"))
    assert panel.title == "Layer 2 Linear: 256 units, each a 28×28 image of its input weights"
    assert panel.tiles.shape == (256, 28, 28) and panel.tiles.dtype == np.float32
    assert not panel.colour


def test_the_tiles_are_the_unit_weights_laid_out_as_the_image():
    architecture = load_preset("seed-relu-mlp")
    weights = build(architecture).state_dict()
    [panel] = weight_tiles(architecture, weights)
    unit = weights["1.weight"][7].numpy()
    np.testing.assert_allclose(panel.tiles[7], (unit / np.abs(unit).max()).reshape(28, 28), rtol=1e-6)


def test_a_cnn_shows_its_first_filters_and_skips_the_linear_reading_features():
    [panel] = tiles_of(load_preset("cnn-small"))
    assert panel.title == "Layer 1 Conv2d: 16 filters of 1×3×3"
    assert panel.tiles.shape == (16, 3, 3)


def test_three_channel_inputs_give_colour_tiles():
    conv = Architecture(
        "colour-cnn",
        (3, 32, 32),
        10,
        [
            Layer("Conv2d", {"out_channels": 8, "kernel_size": 5}),
            Layer("ReLU"),
            Layer("Flatten"),
            Layer("Linear", {"out_features": 10}),
        ],
    )
    [filters] = tiles_of(conv)
    assert filters.tiles.shape == (8, 5, 5, 3) and filters.colour
    assert filters.title.startswith("Layer 1 Conv2d: 8 filters of 3×5×5 in colour")

    mlp = Architecture(
        "colour-mlp",
        (3, 32, 32),
        10,
        [
            Layer("Flatten"),
            Layer("Dropout"),
            Layer("Linear", {"out_features": 12}),
            Layer("ReLU"),
            Layer("Linear", {"out_features": 10}),
        ],
    )
    architecture_weights = build(mlp).state_dict()
    [units] = weight_tiles(mlp, architecture_weights)
    assert units.tiles.shape == (12, 32, 32, 3)
    assert units.title == "Layer 3 Linear: 12 units, each a 32×32 image of its input weights in colour"
    raw = architecture_weights["2.weight"][0].reshape(3, 32, 32).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(units.tiles[0], raw / np.abs(raw).max(), rtol=1e-6)


def test_other_channel_counts_show_the_mean_over_channels():
    architecture = Architecture(
        "two-channels",
        (2, 8, 8),
        10,
        [
            Layer("Conv2d", {"out_channels": 4, "kernel_size": 3}),
            Layer("Flatten"),
            Layer("Linear", {"out_features": 10}),
        ],
    )
    [panel] = tiles_of(architecture)
    assert panel.tiles.shape == (4, 3, 3)
    assert "mean over its 2 input channels" in panel.title


def test_tiles_are_capped_and_the_title_says_so():
    architecture = Architecture(
        "wide",
        (1, 8, 8),
        10,
        [Layer("Flatten"), Layer("Linear", {"out_features": 1000}), Layer("Linear", {"out_features": 10})],
    )
    [panel] = tiles_of(architecture)
    assert panel.tiles.shape == (256, 8, 8)
    assert panel.title.startswith("Layer 2 Linear: first 256 of 1,000 units")
    assert tiles_of(architecture, max_tiles=5)[0].tiles.shape == (5, 8, 8)


def test_each_tile_is_scaled_by_its_own_largest_magnitude():
    tiles = np.array([[[2.0, -4.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]], [[0.5, 0.25], [0.0, -0.1]]])
    scaled = normalise_tiles(tiles)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled[0], [[0.5, -1.0], [0.0, 0.25]])
    np.testing.assert_array_equal(scaled[1], 0.0)
    np.testing.assert_allclose(scaled[2], [[1.0, 0.5], [0.0, -0.2]])
    for panel in tiles_of(load_preset("cnn-small")) + tiles_of(load_preset("mlp")):
        peaks = np.abs(panel.tiles.reshape(len(panel.tiles), -1)).max(axis=1)
        np.testing.assert_allclose(peaks, 1.0, rtol=1e-6)


def test_nothing_to_draw_gives_an_empty_list():
    architecture = Architecture(
        "pooled", (1, 8, 8), 10, [Layer("MaxPool2d"), Layer("Flatten"), Layer("Linear", {"out_features": 10})]
    )
    assert tiles_of(architecture) == []
    fitted_elsewhere = load_preset("seed-linear")  # 28×28 architecture, weights of the 8×8 digits fit
    small = Architecture("small", (1, 8, 8), 10, fitted_elsewhere.layers)
    assert weight_tiles(fitted_elsewhere, build(small).state_dict()) == []


def test_weights_in_double_precision_are_read_as_float32():
    architecture = load_preset("seed-linear")
    weights = {key: value.double() for key, value in build(architecture).state_dict().items()}
    [panel] = weight_tiles(architecture, weights)
    assert isinstance(panel, WeightTiles) and panel.tiles.dtype == np.float32 and panel.tiles.shape == (10, 28, 28)


def test_weights_of_another_network_are_refused_in_words():
    with pytest.raises(KeyError, match="1.weight"):
        weight_tiles(load_preset("mlp"), {})
