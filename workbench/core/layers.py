"""The layer catalog: every layer type a network may use, with its editable parameters.

A layer type is named after its ``torch.nn`` class and its parameters after that class's
constructor arguments. Input sizes (``in_features``, ``in_channels``, ``num_features``) are not
parameters: the architecture infers them from the layer before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from torch import nn

GROUPS = ("Core", "Convolution", "Pooling", "Normalisation", "Activation", "Regularisation")


class InputKind(Enum):
    """What shape of input a layer accepts (per sample, without the batch dimension)."""

    ANY = "any"
    FLAT = "flat"
    IMAGE = "image"


@dataclass(frozen=True)
class Param:
    """One editable constructor argument of a layer type.

    ``kind`` is ``int``, ``float``, ``bool`` or ``str``. Numbers are checked against
    ``minimum``/``maximum`` (inclusive), strings against ``choices``. An ``optional`` parameter
    may also be ``None`` (JSON ``null``), which means what ``help`` says.
    """

    name: str
    kind: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False

    def describe_range(self) -> str:
        """The allowed values in words, e.g. ``an integer from 1 to 4096``."""
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        noun = "an integer" if self.kind is int else "a number"
        if self.minimum is not None and self.maximum is not None:
            text = f"{noun} from {self.minimum:g} to {self.maximum:g}"
        elif self.minimum is not None:
            text = f"{noun} of at least {self.minimum:g}"
        elif self.maximum is not None:
            text = f"{noun} of at most {self.maximum:g}"
        else:
            text = noun
        return text + " (or null)" if self.optional else text

    def in_range(self, value: float) -> bool:
        """Whether the number ``value`` lies within ``minimum``/``maximum``; a missing bound does not limit."""
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        return low <= value <= high


@dataclass(frozen=True)
class LayerType:
    """A kind of layer the builder offers: its torch class, group, help and parameters."""

    name: str
    group: str
    help: str
    torch_class: type[nn.Module]
    accepts: InputKind = InputKind.ANY
    inferred: str | None = None
    params: tuple[Param, ...] = field(default_factory=tuple)
    fixed: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> Param | None:
        """The parameter called ``name``, or None."""
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default value."""
        return {p.name: p.default for p in self.params}


def _bias(what: str) -> Param:
    return Param("bias", bool, True, f"Learn an offset added to every {what}.")


def _pool_params() -> tuple[Param, ...]:
    return (
        Param("kernel_size", int, 2, "Size of the square window pooled into one value.", 1, 8),
        Param("stride", int, None, "Step between windows; null means the kernel size.", 1, 8, optional=True),
        Param("padding", int, 0, "Implicit border added on each side; at most half the kernel.", 0, 4),
    )


_CATALOG: tuple[LayerType, ...] = (
    LayerType("Flatten", "Core", "Turns each image into one long vector, as fully connected layers need.", nn.Flatten),
    LayerType(
        "Linear",
        "Core",
        "Fully connected layer: y = Wx + b, every input connected to every output.",
        nn.Linear,
        InputKind.FLAT,
        "in_features",
        (
            Param("out_features", int, 10, "Number of output units.", 1, 4096),
            _bias("output unit"),
        ),
    ),
    LayerType("Identity", "Core", "Passes its input through unchanged (a placeholder).", nn.Identity),
    LayerType(
        "Conv2d",
        "Convolution",
        "Slides learned filters over the image; each filter makes one output channel.",
        nn.Conv2d,
        InputKind.IMAGE,
        "in_channels",
        (
            Param("out_channels", int, 16, "Number of filters (output channels).", 1, 512),
            Param("kernel_size", int, 3, "Size of each square filter.", 1, 11),
            Param("stride", int, 1, "Step of the filter in pixels.", 1, 5),
            Param("padding", int, 0, "Zero border added on each side (1 keeps the size for a 3×3 filter).", 0, 5),
            _bias("output channel"),
        ),
    ),
    LayerType(
        "MaxPool2d",
        "Pooling",
        "Keeps the largest value of each window: halves the size with kernel 2.",
        nn.MaxPool2d,
        InputKind.IMAGE,
        None,
        _pool_params(),
    ),
    LayerType(
        "AvgPool2d",
        "Pooling",
        "Averages each window: a smoother way to shrink the image.",
        nn.AvgPool2d,
        InputKind.IMAGE,
        None,
        _pool_params(),
    ),
    LayerType(
        "AdaptiveAvgPool2d",
        "Pooling",
        "Averages each channel down to a fixed size, whatever the input size (1 = global average).",
        nn.AdaptiveAvgPool2d,
        InputKind.IMAGE,
        None,
        (Param("output_size", int, 1, "Height and width of the output.", 1, 32),),
    ),
    LayerType(
        "BatchNorm1d",
        "Normalisation",
        "Normalises each feature over the batch, then rescales it: steadier, faster training.",
        nn.BatchNorm1d,
        InputKind.FLAT,
        "num_features",
        (
            Param("momentum", float, 0.1, "Weight of each batch in the running statistics.", 0.0, 1.0),
            Param("eps", float, 1e-5, "Small number added to the variance for stability.", 1e-8, 1e-1),
            Param("affine", bool, True, "Learn a scale and an offset per feature."),
        ),
    ),
    LayerType(
        "BatchNorm2d",
        "Normalisation",
        "Normalises each channel over the batch and the image, then rescales it.",
        nn.BatchNorm2d,
        InputKind.IMAGE,
        "num_features",
        (
            Param("momentum", float, 0.1, "Weight of each batch in the running statistics.", 0.0, 1.0),
            Param("eps", float, 1e-5, "Small number added to the variance for stability.", 1e-8, 1e-1),
            Param("affine", bool, True, "Learn a scale and an offset per channel."),
        ),
    ),
    LayerType(
        "Dropout",
        "Regularisation",
        "During training, zeroes a random fraction of values: fights overfitting.",
        nn.Dropout,
        InputKind.ANY,
        None,
        (Param("p", float, 0.5, "Fraction of values zeroed during training.", 0.0, 0.95),),
    ),
    LayerType(
        "Dropout2d",
        "Regularisation",
        "During training, zeroes whole random channels of an image.",
        nn.Dropout2d,
        InputKind.IMAGE,
        None,
        (Param("p", float, 0.5, "Fraction of channels zeroed during training.", 0.0, 0.95),),
    ),
    LayerType("ReLU", "Activation", "max(0, x): fast, gradients do not vanish, but units can die.", nn.ReLU),
    LayerType(
        "LeakyReLU",
        "Activation",
        "Like ReLU but lets a small slope through below zero: no dead units.",
        nn.LeakyReLU,
        InputKind.ANY,
        None,
        (Param("negative_slope", float, 0.01, "Slope for negative inputs.", 0.0, 1.0),),
    ),
    LayerType(
        "ELU",
        "Activation",
        "Smooth ReLU that goes to -alpha for very negative inputs.",
        nn.ELU,
        InputKind.ANY,
        None,
        (Param("alpha", float, 1.0, "Value approached for very negative inputs (as -alpha).", 0.01, 10.0),),
    ),
    LayerType(
        "GELU",
        "Activation",
        "x times the Gaussian CDF of x: the smooth ReLU of transformers.",
        nn.GELU,
        InputKind.ANY,
        None,
        (
            Param(
                "approximate", str, "none", "Exact ('none') or the faster tanh approximation.", choices=("none", "tanh")
            ),
        ),
    ),
    LayerType("SiLU", "Activation", "x times sigmoid(x) (also called swish): smooth and non-monotonic.", nn.SiLU),
    LayerType(
        "Sigmoid",
        "Activation",
        "1 / (1 + e^-x), squashes to (0, 1); its slope is at most 0.25, so deep stacks of it vanish.",
        nn.Sigmoid,
    ),
    LayerType("Tanh", "Activation", "Squashes to (-1, 1), centred on zero; saturates for large inputs.", nn.Tanh),
    LayerType(
        "Softmax",
        "Activation",
        "Turns scores into probabilities over the features (or channels). Cross-entropy already does this.",
        nn.Softmax,
        fixed={"dim": 1},
    ),
)

CATALOG: dict[str, LayerType] = {layer.name: layer for layer in _CATALOG}


def layer_type(name: str) -> LayerType | None:
    """The catalog entry for ``name`` (case-sensitive, as in torch.nn), or None."""
    return CATALOG.get(name)


def layers_in_group(group: str) -> list[LayerType]:
    """The catalog's layer types of one group, in catalog order."""
    return [layer for layer in _CATALOG if layer.group == group]
