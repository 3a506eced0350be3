"""One image through the network, forward and back: what every layer computed and the error signal it got.

:func:`inspect_image` runs one forward pass of a float32 copy of the model in eval mode (the network as it
predicts), recording every layer's input and output for the image, then one backward pass of the loss for a
target class (the true class, or any the user picks): the loss is ``-log p(target)``, cross-entropy on the
network's scores. It records the gradient of that loss with respect to each layer's output and the norm of the
gradient of each layer's weights, with :func:`torch.autograd.grad`, so nothing is written into the model.

Every layer is reported, the layers inside blocks too, in the builder's numbering and order (``"5"``, then
``"5.1"``, ``"5.2"``...: see :mod:`workbench.core.numbering`); a block's own row has the block's input and its
output, the sum or merge of what is inside it, and its weights are those of its projection shortcut, if it has one.

A layer's gradient shrinking from the last layer to the first is the vanishing-gradient lesson seen on one
image: a sigmoid multiplies the signal by its slope, at most 0.25, while a ReLU passes it through where the
unit fired and blocks it where the unit gave 0.

:func:`unit_sum` writes out one unit of a Linear layer as the class checks it with numpy: y = wᵀx + b with the
actual numbers.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from workbench.core.architecture import Architecture, module_path
from workbench.core.errors import WorkbenchError
from workbench.core.numbering import NumberedModule, following_number, layer_label, numbered_modules
from workbench.core.training.gradients import BOUNDED_ACTIVATIONS, SATURATION_MARGIN

TOP_CLASSES = 5


class InspectError(WorkbenchError):
    """An image or a class the network cannot be inspected with."""


@dataclass(frozen=True)
class ActivationStats:
    """A layer's output values for one image, summarised.

    ``zero_fraction``: the share of outputs exactly 0 (for a ReLU, the units that are dead for this image).
    ``saturated_fraction``: for Sigmoid and Tanh, the share of outputs within :data:`SATURATION_MARGIN` of a
    bound; None for layers that have no bounds.
    """

    mean: float
    std: float
    min: float
    max: float
    zero_fraction: float
    saturated_fraction: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "zero_fraction": self.zero_fraction,
            "saturated_fraction": self.saturated_fraction,
        }


@dataclass(frozen=True)
class LayerPass:
    """What one layer did with the image, forward and back.

    ``index`` is the row's place among the inspection's layers, from 1; ``number`` is the layer's number in the
    builder (``"5.2"``), ``depth`` the number of blocks around it. In a network without blocks the two agree
    (``index`` 3 is ``number`` "3"). ``input`` and ``output`` are this image's values (no batch dimension),
    ``output_gradient`` the gradient of the loss with respect to ``output`` (same shape). ``weight_gradient_norm`` is
    the L2 norm of the gradients of all the layer's own parameters together (a block's: its projection shortcut's),
    None for a layer without parameters.
    """

    index: int
    type: str
    input: np.ndarray
    output: np.ndarray
    output_gradient: np.ndarray
    activation: ActivationStats
    weight_gradient_norm: float | None
    number: str = ""
    depth: int = 0

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.output.shape)

    @property
    def output_gradient_norm(self) -> float:
        """The L2 norm of the error signal reaching this layer's output."""
        return float(np.linalg.norm(self.output_gradient.ravel()))

    def label(self) -> str:
        """``"3 ReLU"``, ``"5.2 Conv2d"``: the layer as the builder's list and the gradient plots name it."""
        return layer_label(self.number or str(self.index), self.type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "number": self.number or str(self.index),
            "depth": self.depth,
            "type": self.type,
            "output_shape": list(self.output_shape),
            "activation": self.activation.to_dict(),
            "gradient": {"output_norm": self.output_gradient_norm, "weight_norm": self.weight_gradient_norm},
        }


@dataclass(frozen=True)
class Inspection:
    """One image's pass through the network: the prediction, the loss for ``target`` and every layer's pass."""

    image: np.ndarray
    class_names: tuple[str, ...]
    probabilities: np.ndarray
    target: int
    loss: float
    layers: tuple[LayerPass, ...]

    @property
    def predicted(self) -> int:
        """The most probable class (ties go to the lower index)."""
        return int(np.argmax(self.probabilities))

    def top(self, count: int = TOP_CLASSES) -> list[tuple[int, str, float]]:
        """The ``count`` most probable classes, most probable first: ``(index, name, probability)``."""
        order = np.argsort(-self.probabilities, kind="stable")[:count]
        return [(int(k), self.class_names[k], float(self.probabilities[k])) for k in order]

    def to_dict(self) -> dict[str, Any]:
        """The ``report.json`` of ``workbench inspect``, without the attribution's method."""
        return {
            "prediction": [{"class": name, "probability": probability} for _, name, probability in self.top()],
            "target": self.class_names[self.target],
            "loss": self.loss,
            "layers": [layer.to_dict() for layer in self.layers],
        }


@dataclass(frozen=True)
class Term:
    """One input's share of a unit's sum: ``weight * value = product``; ``position`` indexes the layer's input."""

    position: int
    weight: float
    value: float
    product: float


@dataclass(frozen=True)
class UnitSum:
    """One unit of a Linear layer, in numbers: ``total = sum(terms) + bias``, then the activation after it.

    ``terms`` are the largest products by magnitude, largest first; ``rest`` is the sum of all the others, so
    ``sum(t.product for t in terms) + rest + bias == total`` up to rounding. ``activation`` names the activation
    layer that follows and the value it gives the unit, or is None when none follows directly. ``layer`` is the
    layer's row in the inspection (from 1), ``number`` its number in the builder (``"5.2"``).
    """

    layer: int
    unit: int
    terms: tuple[Term, ...]
    rest: float
    rest_count: int
    bias: float
    total: float
    activation: tuple[str, float] | None
    number: str = ""

    def lines(self) -> list[str]:
        """The sum written out, one line per part, as a student checks it."""
        number = self.number or str(self.layer)
        lines = [f"y{self.unit} = w{self.unit}ᵀx + b, layer {number} Linear", "  input × weight = term"]
        for term in self.terms:
            lines.append(f"  x{term.position} {term.value:+.4f} × {term.weight:+.4f} = {term.product:+.4f}")
        if self.rest_count:
            lines.append(f"  {self.rest_count} other terms: {self.rest:+.4f}")
        lines.append(f"  bias b: {self.bias:+.4f}")
        lines.append(f"  total y{self.unit} = {self.total:+.4f}")
        if self.activation is not None:
            name, value = self.activation
            lines.append(f"  then {name}(y{self.unit}) = {value:+.4f}")
        return lines


def inspect_image(
    model: nn.Module, architecture: Architecture, image: torch.Tensor, class_names: Sequence[str], target: int
) -> Inspection:
    """One forward and one backward pass of ``image`` (a normalised ``(C, H, W)`` tensor, as the network's
    inputs are) through a float32 copy of ``model`` in eval mode. See the module's docstring.

    ``target`` is the class whose loss is sent back. :class:`InspectError` if the image's shape is not the
    network's input shape or ``target`` is not one of its classes. The model itself is left as it was.
    """
    _check(architecture, image, len(class_names), target)
    copied = _float_copy(model)
    entries = numbered_modules(architecture, copied)
    passes: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def recorder(number: str) -> Callable[[nn.Module, tuple[Any, ...], torch.Tensor], None]:
        def record(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
            passes[number] = (args[0], output)

        return record

    handles = [entry.module.register_forward_hook(recorder(entry.number)) for entry in entries]
    try:
        with torch.enable_grad():
            batch = image.detach().to("cpu", torch.float32)[None].requires_grad_(True)
            scores = copied(batch)
            loss = functional.cross_entropy(scores, torch.tensor([target]))
            outputs = [passes[entry.number][1] for entry in entries]
            params = [entry.own_parameters() for entry in entries]
            flat_params = [p for group in params for p in group]
            gradients = torch.autograd.grad(loss, [*outputs, *flat_params], allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    output_gradients, param_gradients = gradients[: len(outputs)], list(gradients[len(outputs) :])
    layers = []
    for position, (entry, module_params) in enumerate(zip(entries, params)):
        mine, param_gradients = param_gradients[: len(module_params)], param_gradients[len(module_params) :]
        layers.append(
            _layer_pass(position + 1, entry, passes[entry.number], output_gradients[position], mine, module_params)
        )
    probabilities = torch.softmax(scores.detach()[0].float(), dim=0).numpy()
    return Inspection(
        image=image.detach().cpu().numpy(),
        class_names=tuple(class_names),
        probabilities=probabilities,
        target=target,
        loss=float(loss.detach()),
        layers=tuple(layers),
    )


def _layer_pass(
    index: int,
    entry: NumberedModule,
    recorded: tuple[torch.Tensor, torch.Tensor],
    gradient: torch.Tensor | None,
    parameter_gradients: Sequence[torch.Tensor | None],
    parameters: Sequence[nn.Parameter],
) -> LayerPass:
    """The row of one layer (or block) from what its hook ``recorded`` (input, output) and the gradients."""
    layer_input, layer_output = recorded
    output = layer_output.detach()[0]
    return LayerPass(
        index=index,
        type=entry.layer.type,
        input=layer_input.detach()[0].numpy().copy(),
        output=output.numpy().copy(),
        output_gradient=(torch.zeros_like(output) if gradient is None else gradient.detach()[0]).numpy(),
        activation=activation_stats(output, entry.layer.type),
        weight_gradient_norm=_norm(parameter_gradients) if parameters else None,
        number=entry.number,
        depth=entry.depth,
    )


def activation_stats(output: torch.Tensor, layer_type: str) -> ActivationStats:
    """The summary of one image's ``output`` of a layer of ``layer_type``; see :class:`ActivationStats`."""
    values = output.detach().float().reshape(-1)
    if not len(values):
        return ActivationStats(0.0, 0.0, 0.0, 0.0, 0.0, None)
    saturated = None
    if layer_type in BOUNDED_ACTIVATIONS:
        low, high = BOUNDED_ACTIVATIONS[layer_type]
        near = (values <= low + SATURATION_MARGIN) | (values >= high - SATURATION_MARGIN)
        saturated = float(near.float().mean())
    return ActivationStats(
        mean=float(values.mean()),
        std=float(values.std(unbiased=False)),
        min=float(values.min()),
        max=float(values.max()),
        zero_fraction=float((values == 0).float().mean()),
        saturated_fraction=saturated,
    )


def unit_sum(model: nn.Module, inspection: Inspection, layer_index: int, unit: int, terms: int = 8) -> UnitSum:
    """Unit ``unit`` (from 0) of the Linear layer in row ``layer_index`` (from 1; its :attr:`LayerPass.index`, the
    layer's number in a network without blocks) of the inspected image, computed from the layer's weights and the
    input the inspection recorded. :class:`InspectError` if that layer is not a Linear layer or has no such unit."""
    layers = inspection.layers
    if not 1 <= layer_index <= len(layers) or layers[layer_index - 1].type != "Linear":
        raise InspectError(f"Layer {layer_index} is not a Linear layer: only a Linear layer's units are sums.")
    layer = layers[layer_index - 1]
    number = layer.number or str(layer.index)
    linear = model.get_submodule(module_path(number))
    assert isinstance(linear, nn.Linear), "the architecture's Linear layer is an nn.Linear"
    if not 0 <= unit < linear.out_features:
        raise InspectError(f"Layer {number} Linear has units 0–{linear.out_features - 1}, not {unit}.")
    weights = linear.weight.detach()[unit].to("cpu", torch.float64).numpy()
    bias = float(linear.bias.detach()[unit]) if linear.bias is not None else 0.0
    values = layer.input.astype(np.float64).ravel()
    products = weights * values
    order = np.argsort(-np.abs(products), kind="stable")
    shown = order[:terms]
    rest = order[terms:]
    following = _following(inspection, number)
    activation = None
    if following is not None and following.type in _ELEMENTWISE_ACTIVATIONS:
        activation = (following.type, float(following.output.ravel()[unit]))
    return UnitSum(
        layer=layer_index,
        unit=unit,
        terms=tuple(Term(int(k), float(weights[k]), float(values[k]), float(products[k])) for k in shown),
        rest=float(products[rest].sum()),
        rest_count=len(rest),
        bias=bias,
        total=float(products.sum() + bias),
        activation=activation,
        number=number,
    )


def _following(inspection: Inspection, number: str) -> LayerPass | None:
    """The layer that takes the output of the layer numbered ``number`` as it is: the next one in the same list of
    layers (none after a block's last layer, whose output goes into the block's sum or merge)."""
    wanted = following_number(number)
    return next((layer for layer in inspection.layers if (layer.number or str(layer.index)) == wanted), None)


_ELEMENTWISE_ACTIVATIONS = frozenset({"ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh"})
"""Activations that act on each unit alone (Softmax mixes them), so a unit's value after them is its own."""


def _check(architecture: Architecture, image: torch.Tensor, classes: int, target: int) -> None:
    expected = tuple(architecture.input_shape)
    if tuple(image.shape) != expected:
        shape = "×".join(map(str, image.shape)) or "a single number"
        raise InspectError(
            f"The image is {shape}, but the network reads {'×'.join(map(str, expected))} images "
            "(channels × height × width)."
        )
    if not 0 <= target < classes:
        raise InspectError(f"Class {target} is not one of the network's classes (0–{classes - 1}).")


def _float_copy(model: nn.Module) -> nn.Module:
    """A float32, contiguous, CPU copy of ``model`` in eval mode: the training run's model is never touched."""
    copied = copy.deepcopy(model).to("cpu", torch.float32)
    return copied.to(memory_format=torch.contiguous_format).eval()


def _norm(gradients: Sequence[torch.Tensor | None]) -> float:
    squares = sum(float(g.detach().double().pow(2).sum()) for g in gradients if g is not None)
    return math.sqrt(squares)
