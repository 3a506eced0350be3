"""Blocks: layers that hold layers of their own, as ``nn.Module`` classes and as catalog-like entries.

A ``Residual`` block adds its input, passed through its shortcut, to what its layers make of it:
``shortcut(x) + layers(x)``. The shortcut is ``identity`` (the input itself; the layers must keep its shape)
or ``projection`` (a 1×1 convolution with the stride that maps the input's height and width to the output's
for images, a Linear for flat inputs). A ``Parallel`` block gives its input to every branch and merges their
outputs: ``concat`` joins them along the channels (features, for flat inputs), ``sum`` adds them.

Both modules use plain torch operations only, so a network with blocks pickles, exports to ONNX and to
``torch.export`` like any ``nn.Sequential``. Their submodules are named ``layers.K`` (a Residual's),
``shortcut`` (its projection, absent for the identity) and ``branches.B.K`` (a Parallel's): the state-dict keys
of a block at position 4 read ``4.layers.0.weight``, ``4.shortcut.weight``, ``4.branches.1.0.weight``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from workbench.core.layers import Param

RESIDUAL = "Residual"
PARALLEL = "Parallel"
BLOCK_TYPES = (RESIDUAL, PARALLEL)
SHORTCUTS = ("identity", "projection")
MERGES = ("concat", "sum")
MAX_DEPTH = 16
"""The deepest blocks may nest: a block inside a block ... 16 blocks deep."""

BLOCK_PARAMS: dict[str, Param] = {
    RESIDUAL: Param(
        "shortcut",
        str,
        "identity",
        "How the input reaches the sum: unchanged (identity), or through a 1×1 convolution (a Linear for flat "
        "inputs) when the layers change its shape (projection).",
        choices=SHORTCUTS,
    ),
    PARALLEL: Param(
        "merge",
        str,
        "concat",
        "How the branches' outputs are joined: side by side along the channels (concat), or added (sum).",
        choices=MERGES,
    ),
}
"""Each block type's one parameter."""

BLOCK_HELP: dict[str, str] = {
    RESIDUAL: (
        "Adds the block's input to the output of its layers (a skip connection): the gradient has a road back "
        "to the first layers that no activation can close, so deep networks keep learning."
    ),
    PARALLEL: (
        "Sends the input through several branches side by side and joins their outputs, as Inception does "
        "with filters of different sizes."
    ),
}


class Residual(nn.Module):
    """``shortcut(x) + layers(x)``; the shortcut is the identity unless a projection module is given."""

    def __init__(self, layers: Sequence[nn.Module], shortcut: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skipped = x if self.shortcut is None else self.shortcut(x)
        return skipped + self.layers(x)


class Parallel(nn.Module):
    """Every branch applied to the input; the outputs concatenated along dimension 1 or summed."""

    def __init__(self, branches: Sequence[Sequence[nn.Module]], merge: str = "concat") -> None:
        super().__init__()
        if merge not in MERGES:
            raise ValueError(f"merge must be one of {', '.join(MERGES)}, not {merge!r}")
        self.branches = nn.ModuleList(nn.Sequential(*branch) for branch in branches)
        self.merge = merge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [branch(x) for branch in self.branches]
        if self.merge == "concat":
            return torch.cat(outputs, dim=1)
        total = outputs[0]
        for output in outputs[1:]:
            total = total + output
        return total

    def extra_repr(self) -> str:
        return f"merge={self.merge!r}"


def projection(input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> nn.Module:
    """The projection shortcut from ``input_shape`` to ``output_shape`` (see :func:`projection_stride`)."""
    if len(input_shape) == 1:
        return nn.Linear(input_shape[0], output_shape[0])
    stride = projection_stride(input_shape, output_shape)
    assert stride is not None, "validation checks that a projection fits"
    return nn.Conv2d(input_shape[0], output_shape[0], kernel_size=1, stride=stride)


def projection_parameters(input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> int:
    """The weights and biases of :func:`projection` (a 1×1 convolution or a Linear, both with a bias)."""
    return input_shape[0] * output_shape[0] + output_shape[0]


def projection_stride(input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> int | None:
    """The stride of the 1×1 convolution that turns the image ``input_shape`` into ``output_shape``'s height and
    width, or None when none does (the output is larger, or the two sides would need different strides)."""
    (_, height, width), (_, out_height, out_width) = input_shape, output_shape
    if out_height > height or out_width > width:
        return None
    stride = -(-height // out_height)
    fits = (height - 1) // stride + 1 == out_height and (width - 1) // stride + 1 == out_width
    return stride if fits else None
