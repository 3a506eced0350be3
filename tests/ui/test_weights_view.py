"""WeightsView: one titled grid per drawable layer, tiles coloured by the sign of the weights, cheap redraws."""

import numpy as np
import pytest
import torch
from PySide6.QtGui import QColor

from workbench.core.architecture import Architecture, Layer, build
from workbench.core.inspect.weights import WeightTiles
from workbench.core.presets import load_preset
from workbench.ui.views.weights_view import (
    BACKGROUND_COLOUR,
    FRAME,
    FRAME_COLOUR,
    NOTHING_TO_SHOW,
    WeightsView,
    compose_mosaic,
    diverging_colours,
    pack_rgb,
    tile_colours,
    unpack_rgb,
)


@pytest.fixture
def view(qtbot):
    widget = WeightsView()
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def weights_of(architecture, seed=0):
    torch.manual_seed(seed)
    return build(architecture).state_dict()


def centre(image) -> QColor:
    return image.pixelColor(image.width() // 2, image.height() // 2)


def test_an_mlp_shows_one_panel_of_256_unit_images(view):
    mlp = load_preset("mlp")
    view.show_weights(mlp, weights_of(mlp), caption="After epoch 3")
    assert view.panel_titles() == ["Layer 2 Linear: 256 units, each a 28×28 image of its input weights"]
    assert view.tile_count(0) == 256
    tile = view.tile_image(0, 255)
    assert tile.width() == tile.height() == 56  # 28×28 enlarged twice
    assert view.caption.text() == "After epoch 3"


def test_a_small_cnn_shows_its_16_filters(view):
    cnn = load_preset("cnn-small")
    view.show_weights(cnn, weights_of(cnn))
    assert view.panel_titles() == ["Layer 1 Conv2d: 16 filters of 1×3×3"]
    assert view.tile_count(0) == 16
    assert view.tile_image(0, 15).width() == 48  # 3×3 enlarged 16 times


def test_positive_weights_are_red_and_negative_ones_blue(view):
    architecture = load_preset("seed-linear")
    weights = weights_of(architecture)
    weights["1.weight"][0] = 0.5  # unit 1 likes every pixel
    weights["1.weight"][1] = -0.5  # unit 2 dislikes every pixel
    weights["1.weight"][2] = 0.0  # unit 3 ignores them
    weights["1.weight"][3, :392] = 1.0  # unit 4: top half positive, bottom half negative
    weights["1.weight"][3, 392:] = -0.25
    view.show_weights(architecture, weights)
    red, blue, white = centre(view.tile_image(0, 0)), centre(view.tile_image(0, 1)), centre(view.tile_image(0, 2))
    assert red.red() == 255 and red.green() < 10 and red.blue() < 10
    assert blue.blue() == 255 and blue.red() < 10 and blue.green() < 10
    assert (white.red(), white.green(), white.blue()) == (255, 255, 255)
    half = view.tile_image(0, 3)
    top, bottom = half.pixelColor(28, 4), half.pixelColor(28, 52)
    assert (top.red(), top.green(), top.blue()) == (255, 0, 0)
    assert bottom.blue() == 255 and bottom.red() == bottom.green() == 191  # a quarter of the peak: pale blue


def test_colour_tiles_map_minus_one_to_black_and_one_to_full_colour():
    tiles = np.zeros((2, 2, 2, 3), dtype=np.float32)
    tiles[0, 0, 0] = (1.0, -1.0, 0.0)
    tiles[1] = -1.0
    pixels = tile_colours(WeightTiles("colour", tiles))
    assert pixels.dtype == np.uint32 and pixels.shape == (2, 2, 2)
    rgb = unpack_rgb(pixels)
    assert rgb[0, 0, 0].tolist() == [255, 0, 128]
    assert rgb[1].max() == 0
    assert unpack_rgb(diverging_colours(np.array([0.0, 1.0, -1.0, np.nan, 5.0]))).tolist() == [
        [255, 255, 255],
        [255, 0, 0],
        [0, 0, 255],
        [255, 255, 255],
        [255, 0, 0],
    ]
    assert pack_rgb(np.array([1, 2, 3], dtype=np.uint8)) == 0xFF010203


def test_the_mosaic_places_every_tile_in_its_cell():
    tiles = np.arange(5, dtype=np.uint32).reshape(5, 1, 1).repeat(2, axis=1).repeat(2, axis=2)  # five 2×2 tiles
    tiles[:, 0, 1] = 99  # one odd pixel in each
    mosaic, layout = compose_mosaic(tiles, columns=3, gap=1)
    scale = layout.tile_width // 2
    framed = layout.tile_width + 2 * FRAME
    assert mosaic.shape == (2 * framed + 1, 3 * framed + 2)
    assert (mosaic[0, :framed] == pack_rgb(FRAME_COLOUR)).all()
    assert (mosaic[-1, -framed:] == pack_rgb(BACKGROUND_COLOUR)).all()
    for index in range(5):
        rect = layout.rect(index)
        cell = mosaic[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1]
        expected = np.full((2, 2), index)
        expected[0, 1] = 99
        np.testing.assert_array_equal(cell, expected.repeat(scale, axis=0).repeat(scale, axis=1))


def test_redrawing_reuses_the_panels_and_updates_the_pixels(view):
    architecture = load_preset("seed-linear")
    weights = weights_of(architecture)
    view.show_weights(architecture, weights)
    panel = view._panels[0]
    weights["1.weight"][0] = -1.0
    view.show_weights(architecture, weights, caption="After epoch 2")
    assert view._panels == [panel]
    assert centre(view.tile_image(0, 0)).blue() == 255 and centre(view.tile_image(0, 0)).red() == 0


def test_a_network_with_conv_and_pixel_linear_panels_and_then_nothing(view):
    both = Architecture(
        "both",
        (3, 8, 8),
        10,
        [
            Layer("Conv2d", {"out_channels": 4, "kernel_size": 3}),
            Layer("Flatten"),
            Layer("Linear", {"out_features": 10}),
        ],
    )
    view.show_weights(both, weights_of(both))
    [title] = view.panel_titles()  # the Linear reads the convolution's features, not pixels
    assert title.startswith("Layer 1 Conv2d: 4 filters of 3×3×3 in colour")
    flat = load_preset("seed-simplenet")
    view.show_weights(flat, weights_of(flat))
    assert view.panel_titles() == ["Layer 2 Linear: 120 units, each a 28×28 image of its input weights"]
    pooled = Architecture(
        "pooled", (1, 8, 8), 10, [Layer("AvgPool2d"), Layer("Flatten"), Layer("Linear", {"out_features": 10})]
    )
    view.show_weights(pooled, weights_of(pooled))
    assert view.panel_titles() == [] and view.caption.text() == NOTHING_TO_SHOW


def test_clear_shows_the_message_and_the_view_explains_the_colours(view):
    mlp = load_preset("mlp")
    view.show_weights(mlp, weights_of(mlp))
    view.clear("Start a run to see its weights.")
    assert view.panel_titles() == [] and view.caption.text() == "Start a run to see its weights."
    assert "red" in view.explanation.text() and "blue" in view.explanation.text()
    assert view.scroll_area.widgetResizable()


def test_a_hidden_view_draws_the_latest_weights_when_shown(qtbot, view):
    """A run hands the view weights at every epoch; behind another tab it draws only the last, once shown."""
    hidden = WeightsView()
    qtbot.addWidget(hidden)
    architecture = load_preset("seed-linear")
    for epoch in range(1, 4):
        hidden.show_weights(architecture, weights_of(architecture, seed=epoch), caption=f"After epoch {epoch}")
    assert hidden.caption.text().startswith("No weights yet")  # nothing drawn while hidden
    hidden.show()
    qtbot.waitExposed(hidden)
    assert hidden.caption.text() == "After epoch 3"
    view.show_weights(architecture, weights_of(architecture, seed=3))  # the same weights, drawn at once
    assert hidden.tile_count(0) == view.tile_count(0) == 10
    assert all(hidden.tile_image(0, tile) == view.tile_image(0, tile) for tile in range(10))
