"""The numbered layers of a built network: each layer's number, its module, and the names plots and reports give it.

Every place that names a layer (the gradient monitor and its plots, the alarms, the weights view, the inspect
report, sweep keys) uses the builder's numbering of :mod:`workbench.core.architecture`: ``"5"`` for a top-level
layer, ``"5.2"`` for the second layer inside block 5, ``"6.b2.1"`` for the first layer of branch 2 of Parallel
block 6. A layer's *label* is its number and type, ``"5.2 Conv2d"``, the same for a top-level layer as before
blocks (``"2 Linear"``).

A Residual block's projection shortcut is a module with weights but no number of its own: its label is the
block's number, ``shortcut`` and its module's type, ``"5 shortcut Conv2d"`` (a Linear for flat inputs). Among
the weighted parts of a network (:func:`weighted_parts`) it comes at its block's place, before the block's layers:
it reads the block's input, as the block's first layer does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from workbench.core.architecture import Architecture, Layer, module_path
from workbench.core.blocks import RESIDUAL, Residual

SHORTCUT = "shortcut"
NUMBER_PATTERN = re.compile(r"[1-9][0-9]*(\.(b[1-9][0-9]*\.)?[1-9][0-9]*)*")
"""A layer's number as text: ``5``, ``5.2``, ``6.b2.1``, ``5.2.b1.3``."""


def layer_label(number: str, layer_type: str) -> str:
    """The label of the layer numbered ``number`` in plots, samples and reports: ``"5.2 Conv2d"``."""
    return f"{number} {layer_type}"


def shortcut_label(number: str, module: nn.Module) -> str:
    """The label of block ``number``'s projection shortcut ``module``: ``"5 shortcut Conv2d"``."""
    return f"{number} {SHORTCUT} {type(module).__name__}"


@dataclass(frozen=True)
class NumberedModule:
    """One layer or block of an architecture and its module in the built network."""

    number: str
    depth: int
    layer: Layer
    module: nn.Module

    @property
    def label(self) -> str:
        """``"5.2 Conv2d"``, or ``"5 Residual"`` for a block."""
        return layer_label(self.number, self.layer.type)

    def shortcut(self) -> nn.Module | None:
        """A Residual block's projection module; None for the identity, other blocks and layers."""
        if self.layer.type == RESIDUAL and isinstance(self.module, Residual):
            return self.module.shortcut
        return None

    def own_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters that belong to this entry and none inside it: a layer's all, a block's its
        projection shortcut's (none for the identity or a Parallel block)."""
        if self.layer.is_block:
            shortcut = self.shortcut()
            owned = list(shortcut.parameters()) if shortcut is not None else []
        else:
            owned = list(self.module.parameters())
        return [parameter for parameter in owned if parameter.requires_grad]


def numbered_modules(architecture: Architecture, model: nn.Module) -> list[NumberedModule]:
    """Every layer and block of ``architecture`` with its module in ``model`` (``build(architecture)`` or a network
    of the same structure), in the order of :meth:`Architecture.walk`: a block, then the layers inside it."""
    return [
        NumberedModule(number, depth, layer, model.get_submodule(module_path(number)))
        for number, depth, layer in architecture.walk()
    ]


def weighted_parts(architecture: Architecture, model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """Every part of the network with trainable weights, as ``(label, parameters)``, from the input to the output in
    the order of :meth:`Architecture.walk`: each layer with weights (``"5.2 Conv2d"``), and each projection
    shortcut (``"5 shortcut Conv2d"``) at its block's place. Every trainable parameter of ``model`` is in exactly
    one part."""
    parts = []
    for entry in numbered_modules(architecture, model):
        parameters = entry.own_parameters()
        if not parameters:
            continue
        shortcut = entry.shortcut()
        label = shortcut_label(entry.number, shortcut) if shortcut is not None else entry.label
        parts.append((label, parameters))
    return parts


def following_number(number: str) -> str:
    """The number of the layer right after ``number`` in the same list of layers: ``"5.2"`` -> ``"5.3"``."""
    head, _, last = number.rpartition(".")
    return f"{head}.{int(last) + 1}" if head else str(int(last) + 1)


def enclosing_numbers(number: str) -> list[str]:
    """The numbers of the blocks around the layer numbered ``number``, outermost first, then ``number`` itself:
    ``"5.2.b1.3"`` -> ``["5", "5.2", "5.2.b1.3"]``."""
    numbers, parts = [], []
    for part in number.split("."):
        parts.append(part)
        if not part.startswith("b"):
            numbers.append(".".join(parts))
    return numbers


def earlier_numbers(number: str) -> list[str]:
    """The numbers of the layers the input passes through before it reaches the layer numbered ``number``: the
    layers before it in its own list, and those before each block around it in theirs, from the input on
    (``"5.2"`` -> ``["1", "2", "3", "4", "5.1"]``). The blocks around it are not among them: the layer reads its
    block's input as the block does."""
    earlier = []
    for enclosing in enclosing_numbers(number):
        head, _, last = enclosing.rpartition(".")
        earlier += [f"{head}.{index}" if head else str(index) for index in range(1, int(last))]
    return earlier
