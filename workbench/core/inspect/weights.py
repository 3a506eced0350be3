"""Weights as pictures: the first convolution's filters and the first pixel-reading Linear layer's units.

The first is the first in the builder's order, inside blocks too, and titled with its number (``"Layer 5.2 ..."``).

A unit of a Linear layer that reads the flattened image has one weight per pixel, so its weights form an image
of what the unit looks for. A convolution filter is a small image too. :func:`weight_tiles` cuts those weights
into tiles, each scaled by its own largest magnitude to [-1, 1] (0 stays 0), ready to be drawn with a diverging
colour map (grey tiles) or as colours (tiles of 3-channel inputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from workbench.core.architecture import Architecture, Layer, format_shape, module_path
from workbench.core.layers import CATALOG
from workbench.core.numbering import earlier_numbers

MAX_TILES = 256
_PIXEL_PRESERVING_GROUPS = ("Activation", "Normalisation", "Regularisation")
_PIXEL_PRESERVING_TYPES = ("Flatten", "Identity")


@dataclass(frozen=True)
class WeightTiles:
    """One layer's weights as tiles.

    ``tiles`` is float32, ``(count, H, W)`` for grey tiles or ``(count, H, W, 3)`` for colour tiles (red, green,
    blue input channels), each tile divided by its own largest absolute weight so it spans at most [-1, 1].
    """

    title: str
    tiles: np.ndarray

    @property
    def colour(self) -> bool:
        """Whether the tiles hold three colour channels."""
        return self.tiles.ndim == 4


def weight_tiles(
    architecture: Architecture, weights: dict[str, torch.Tensor], max_tiles: int = MAX_TILES
) -> list[WeightTiles]:
    """The drawable weights of a network: its first Conv2d's filters and its first Linear's units when that
    Linear reads the image's pixels directly (only Flatten or element-wise layers before it).

    Layers inside blocks count, in the builder's order and numbering: a network whose first convolution is the
    first layer of a block's branch shows that one's filters, titled with its number (``"Layer 1.b1.1 Conv2d"``).
    ``weights`` is a state dict of ``build(architecture)`` (keys like ``"1.weight"``, ``"4.layers.0.weight"``), on
    any device. At most ``max_tiles`` tiles per layer are returned (the title says so). An empty list when neither
    applies. The Linear layer is also left out when its inputs do not number the architecture's input pixels
    (weights of the same network fitted to another image size).
    """
    layers = {number: layer for number, _, layer in architecture.walk()}
    panels = []
    conv = _first_number(layers, "Conv2d")
    if conv is not None:
        panels.append(_conv_tiles(conv, _weight(weights, conv), max_tiles))
    linear = _first_number(layers, "Linear")
    if linear is not None and _reads_pixels(layers, linear):
        weight = _weight(weights, linear)
        if weight.shape[1] == int(np.prod(architecture.input_shape)):
            panels.append(_linear_tiles(linear, weight, architecture.input_shape, max_tiles))
    return panels


def normalise_tiles(tiles: np.ndarray) -> np.ndarray:
    """Each tile (first axis) divided by its own largest absolute value, as float32; all-zero tiles stay 0."""
    tiles = np.asarray(tiles, dtype=np.float32)
    peak = np.abs(tiles.reshape(len(tiles), -1)).max(axis=1, initial=0.0)
    peak[peak == 0] = 1.0
    return tiles / peak.reshape(-1, *([1] * (tiles.ndim - 1)))


def _first_number(layers: dict[str, Layer], layer_type: str) -> str | None:
    """The number of the first layer of ``layer_type`` among ``layers`` (in the walk's order), or None."""
    return next((number for number, layer in layers.items() if layer.type == layer_type), None)


def _reads_pixels(layers: dict[str, Layer], number: str) -> bool:
    """Whether every layer before the layer ``number`` keeps each value where its pixel was (so the input is the
    image): layers, not blocks, that are element-wise, a Flatten or an Identity."""
    return all(_keeps_pixels(layers[earlier]) for earlier in earlier_numbers(number))


def _keeps_pixels(layer: Layer) -> bool:
    return not layer.is_block and (
        layer.type in _PIXEL_PRESERVING_TYPES or CATALOG[layer.type].group in _PIXEL_PRESERVING_GROUPS
    )


def _weight(weights: dict[str, torch.Tensor], number: str) -> torch.Tensor:
    key = f"{module_path(number)}.weight"
    if key not in weights:
        raise KeyError(f"The weights hold no '{key}': they do not belong to this architecture.")
    return weights[key].detach()


def _conv_tiles(number: str, weight: torch.Tensor, max_tiles: int) -> WeightTiles:
    """Filters ``(out, in, kh, kw)``: grey for 1 input channel, colour for 3, else the mean over the channels."""
    count, channels, height, width = weight.shape
    shown = _as_numpy(weight[:max_tiles])
    title = f"Layer {number} Conv2d: {_how_many(count, max_tiles, 'filter')} of {channels}×{height}×{width}"
    if channels == 3:
        tiles, title = shown.transpose(0, 2, 3, 1), title + " in colour (red, green, blue input channels)"
    elif channels == 1:
        tiles = shown[:, 0]
    else:
        tiles, title = shown.mean(axis=1), title + f", each the mean over its {channels} input channels"
    return WeightTiles(title, normalise_tiles(tiles))


def _linear_tiles(number: str, weight: torch.Tensor, input_shape: tuple[int, int, int], max_tiles: int) -> WeightTiles:
    """Units ``(out, C*H*W)`` as images of the input: grey for 1 channel, colour for 3, else the channel mean."""
    channels, height, width = input_shape
    count = weight.shape[0]
    shown = _as_numpy(weight[:max_tiles]).reshape(-1, channels, height, width)
    title = (
        f"Layer {number} Linear: {_how_many(count, max_tiles, 'unit')}, each a "
        f"{format_shape((height, width))} image of its input weights"
    )
    if channels == 3:
        tiles, title = shown.transpose(0, 2, 3, 1), title + " in colour"
    elif channels == 1:
        tiles = shown[:, 0]
    else:
        tiles, title = shown.mean(axis=1), title + f" (the mean over the {channels} input channels)"
    return WeightTiles(title, normalise_tiles(tiles))


def _how_many(count: int, max_tiles: int, noun: str) -> str:
    if count > max_tiles:
        return f"first {max_tiles:,} of {count:,} {noun}s"
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _as_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.to("cpu", torch.float32).numpy()
