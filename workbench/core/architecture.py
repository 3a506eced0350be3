"""Architectures: the versioned JSON document of a network, its validation and its build.

An :class:`Architecture` is a plain list of layers from the catalog plus the input shape and the
number of classes. :func:`validate` walks the layers with the input shape and reports, per
layer, the output shape and parameter count, or a message in plain words saying what does not
fit. :func:`build` turns a valid architecture into an ``nn.Sequential``.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.core.errors import ArchitectureError
from workbench.core.files import atomic_write_text
from workbench.core.layers import CATALOG, InputKind, LayerType, Param

FORMAT = "workbench-architecture"
VERSION = 1
MAX_LAYERS = 200
MAX_PARAMETERS = 50_000_000
MAX_CHANNELS = 4
MAX_SIDE = 512
MIN_CLASSES = 2
MAX_CLASSES = 1000
"""The fewest and most classes a network classifies; image folders with more class sub-folders are refused."""
_TOP_LEVEL_KEYS = ("format", "version", "name", "description", "input_shape", "num_classes", "layers")


@dataclass
class Layer:
    """One layer of a network: a catalog type and the parameters set on it."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)

    def resolved_params(self) -> dict[str, Any]:
        """The catalog defaults overlaid with this layer's own parameters."""
        layer_type = CATALOG[self.type]
        return {**layer_type.defaults(), **self.params}

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.params}


@dataclass
class Architecture:
    """A network as the user designs it; see DESIGN.md for the JSON document."""

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    layers: list[Layer]
    description: str = ""

    @classmethod
    def from_dict(cls, document: Any) -> Architecture:
        """Read a parsed JSON document, checking its structure and every layer's parameters."""
        if not isinstance(document, dict):
            raise ArchitectureError(
                f"An architecture must be a JSON object with 'format', 'version', 'input_shape', "
                f"'num_classes' and 'layers', not {_json_kind(document)}."
            )
        _check_header(document)
        input_shape = _check_input_shape(document.get("input_shape"))
        num_classes = _check_num_classes(document.get("num_classes"))
        name = document.get("name", "untitled")
        description = document.get("description", "")
        for key, value in (("name", name), ("description", description)):
            if not isinstance(value, str):
                raise ArchitectureError(f"'{key}' must be a string, not {_json_kind(value)}.")
        raw_layers = document.get("layers")
        if not isinstance(raw_layers, list):
            raise ArchitectureError(f"'layers' must be a list of layers, not {_json_kind(raw_layers)}.")
        if len(raw_layers) > MAX_LAYERS:
            raise ArchitectureError(f"The network has {len(raw_layers)} layers; the workbench allows {MAX_LAYERS}.")
        layers = [_parse_layer(index, raw) for index, raw in enumerate(raw_layers)]
        for index, layer in enumerate(layers):
            problem = parameter_problem(index, layer)
            if problem:
                raise ArchitectureError(problem)
        return cls(name=name, input_shape=input_shape, num_classes=num_classes, layers=layers, description=description)

    @classmethod
    def from_json(cls, text: str, source: str = "The architecture") -> Architecture:
        """Parse JSON text; ``source`` names it in error messages (e.g. the file name)."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise ArchitectureError(
                f"{source} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}). "
                f"Is the file complete?"
            ) from None
        except (ValueError, RecursionError):
            raise ArchitectureError(
                f"{source} is not an architecture: it holds numbers or nesting far too large to read."
            ) from None
        return cls.from_dict(document)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Architecture:
        """Read an architecture file: UTF-8 JSON, with or without a byte order mark (some Windows editors write one)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ArchitectureError(f"No architecture file at {path}.") from None
        except UnicodeDecodeError:
            raise ArchitectureError(f"{path.name} is not a text file; an architecture is JSON.") from None
        except OSError as error:
            raise ArchitectureError(f"Cannot read {path}: {error.strerror}.") from None
        return cls.from_json(text, source=path.name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of DESIGN.md."""
        document: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": self.name}
        if self.description:
            document["description"] = self.description
        document.update(
            input_shape=list(self.input_shape),
            num_classes=self.num_classes,
            layers=[layer.to_dict() for layer in self.layers],
        )
        return document

    def to_json(self) -> str:
        """The document as JSON text, one key and one layer per line, so a file reads like the network."""
        lines = [
            f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
            for key, value in self.to_dict().items()
            if key != "layers"
        ]
        layers = ",\n".join(f"    {json.dumps(layer.to_dict(), ensure_ascii=False)}" for layer in self.layers)
        lines.append(f'  "layers": [\n{layers}\n  ]' if layers else '  "layers": []')
        return "{\n" + ",\n".join(lines) + "\n}\n"

    def save(self, path: str | os.PathLike) -> None:
        """Write the architecture file atomically."""
        atomic_write_text(Path(path), self.to_json())

    def copy(self) -> Architecture:
        """An independent copy (the engine trains on a snapshot)."""
        return copy.deepcopy(self)

    def summary(self) -> str:
        """A one-line description, e.g. ``Flatten → Linear(120) → Linear(10)``."""
        parts = []
        for layer in self.layers:
            size = layer.params.get("out_features", layer.params.get("out_channels"))
            parts.append(f"{layer.type}({size})" if size is not None else layer.type)
        return " → ".join(parts) if parts else "(no layers)"


@dataclass(frozen=True)
class LayerReport:
    """What validation found for one layer; ``index`` counts from 0, messages count from 1."""

    index: int
    type: str
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    parameters: int
    error: str | None = None
    warning: str | None = None


@dataclass(frozen=True)
class ValidationReport:
    """The result of :func:`validate`: per-layer rows, totals, errors and warnings."""

    layers: tuple[LayerReport, ...]
    output_shape: tuple[int, ...] | None
    total_parameters: int
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_invalid(self) -> None:
        """Raise :class:`ArchitectureError` with every error message, if there are any."""
        if self.errors:
            raise ArchitectureError("\n".join(self.errors))

    def input_shapes(self) -> list[tuple[int, ...]]:
        """Every layer's input shape; :class:`ArchitectureError` (see :meth:`raise_if_invalid`) if invalid."""
        self.raise_if_invalid()
        shapes = [row.input_shape for row in self.layers]
        # A valid network has no layer after a misfit, so every shape is known.
        assert all(shape is not None for shape in shapes), "a valid report has every layer's input shape"
        return [shape for shape in shapes if shape is not None]


def format_shape(shape: tuple[int, ...]) -> str:
    """``(32, 14, 14)`` -> ``32×14×14``; a flat shape is just its length."""
    return "×".join(str(size) for size in shape)


def parameter_problem(index: int, layer: Layer) -> str | None:
    """What is wrong with a layer's type or parameters, in words; None when they are fine."""
    where = f"layer {index + 1} {layer.type}"
    layer_type = CATALOG.get(layer.type)
    if layer_type is None:
        return f"layer {index + 1}: unknown layer type '{layer.type}'{_suggest(layer.type, CATALOG)}."
    for name, value in layer.params.items():
        spec = layer_type.param(name)
        if spec is None:
            problem = _unknown_param_problem(layer_type, name, value)
            if problem:
                return f"{where}: {problem}"
            continue
        if not _value_fits(spec, value):
            return f"{where}: {name} must be {spec.describe_range()}, not {_show(value)}."
    return None


def validate(architecture: Architecture, loss: str = "cross-entropy") -> ValidationReport:
    """Walk the layers with the input shape: output shape and parameters per layer, or errors.

    Never raises for a bad network; every problem becomes a message in the report. The walk
    stops at the first layer that does not fit, since the shapes after it are unknown. The warnings
    follow the ``loss`` the network will be trained with (a Softmax or a final Sigmoid hurts
    cross-entropy, not the class's MSE).
    """
    rows: list[LayerReport] = []
    errors: list[str] = []
    warnings: list[str] = []
    shape: tuple[int, ...] | None = tuple(architecture.input_shape)
    total = 0
    for index, layer in enumerate(architecture.layers):
        if shape is None:
            rows.append(LayerReport(index, layer.type, None, None, 0))
            continue
        error = parameter_problem(index, layer) or _fit_problem(index, layer, shape)
        output, parameters = (None, 0)
        if error is None:
            output, parameters, error = _trace(index, layer, shape)
        warning = _warning(index, layer, len(architecture.layers)) if loss == "cross-entropy" else None
        rows.append(LayerReport(index, layer.type, shape, output, parameters, error, warning))
        if error:
            errors.append(error)
        if warning:
            warnings.append(warning)
        total += parameters
        shape = output
    if shape is not None:
        ending = _ending_problem(architecture, shape)
        if ending:
            errors.append(ending)
            if rows:
                rows[-1] = _with_error(rows[-1], ending)
    if total > MAX_PARAMETERS:
        errors.append(
            f"The network has {total:,} parameters; the workbench trains at most {MAX_PARAMETERS:,}. "
            f"Use fewer units or channels, or pool before the first Linear."
        )
    return ValidationReport(tuple(rows), shape, total, tuple(errors), tuple(warnings))


def build(architecture: Architecture) -> nn.Sequential:
    """An ``nn.Sequential`` of the architecture's layers, initialised by torch's defaults.

    Raises :class:`ArchitectureError` if the architecture does not validate. The model's output
    for a batch of ``input_shape`` images has the shape ``(batch, num_classes)``.
    """
    shapes = validate(architecture).input_shapes()
    return nn.Sequential(
        *(_make_module(CATALOG[layer.type], layer, shape) for layer, shape in zip(architecture.layers, shapes))
    )


def _make_module(layer_type: LayerType, layer: Layer, shape: tuple[int, ...]) -> nn.Module:
    kwargs = {**layer.resolved_params(), **layer_type.fixed}
    if layer_type.inferred:
        kwargs[layer_type.inferred] = shape[0]
    return layer_type.torch_class(**kwargs)


def _trace(index: int, layer: Layer, shape: tuple[int, ...]) -> tuple[tuple[int, ...] | None, int, str | None]:
    """Build the layer on the meta device (no memory, no compute) and push a batch through it."""
    layer_type = CATALOG[layer.type]
    try:
        with torch.device("meta"):
            module = _make_module(layer_type, layer, shape)
            # A batch of 2: BatchNorm refuses a single sample in training mode.
            output = tuple(module(torch.empty((2, *shape))).shape[1:])
    except (RuntimeError, ValueError) as error:
        reason = str(error).splitlines()[0]
        return None, 0, f"layer {index + 1} {layer.type} cannot take an input of {format_shape(shape)}: {reason}"
    parameters = sum(p.numel() for p in module.parameters())
    if 0 in output:
        return (
            None,
            0,
            (
                f"layer {index + 1} {layer.type} turns {format_shape(shape)} into {format_shape(output)}, "
                f"which is empty: make it smaller or remove it."
            ),
        )
    return output, parameters, None


def _fit_problem(index: int, layer: Layer, shape: tuple[int, ...]) -> str | None:
    """The common mistakes, explained before torch would complain in its own words."""
    layer_type = CATALOG[layer.type]
    where = f"layer {index + 1} {layer.type}"
    if layer_type.accepts is InputKind.FLAT and len(shape) != 1:
        return f"{where} expects a flat input but gets {format_shape(shape)}: add a Flatten before it."
    if layer_type.accepts is InputKind.IMAGE and len(shape) != 3:
        return (
            f"{where} expects an image (channels×height×width) but gets a flat vector of {shape[0]} values: "
            f"move it before the Flatten."
        )
    if layer.type in ("Conv2d", "MaxPool2d", "AvgPool2d"):
        return _window_problem(where, layer.resolved_params(), shape)
    return None


def _window_problem(where: str, params: dict[str, Any], shape: tuple[int, ...]) -> str | None:
    kernel, padding = params["kernel_size"], params["padding"]
    if "out_channels" not in params and padding * 2 > kernel:
        return f"{where}: padding {padding} is more than half the kernel size {kernel}; use padding ≤ {kernel // 2}."
    height, width = shape[1] + 2 * padding, shape[2] + 2 * padding
    if kernel > min(height, width):
        return (
            f"{where}: its {kernel}×{kernel} window does not fit the {shape[1]}×{shape[2]} input "
            f"(with padding {padding}): use a smaller kernel, more padding, or less pooling before it."
        )
    return None


def _ending_problem(architecture: Architecture, shape: tuple[int, ...]) -> str | None:
    classes = architecture.num_classes
    if not architecture.layers:
        return f"The network has no layers: add a Flatten and a Linear with out_features {classes}."
    if len(shape) != 1:
        return (
            f"The network ends with {format_shape(shape)} values per image but must end with {classes}, "
            f"one per class: add a Flatten and a Linear with out_features {classes}."
        )
    if shape[0] != classes:
        return (
            f"The network ends with {shape[0]} values per image but must end with {classes}, one per class: "
            f"make the last Linear's out_features {classes}."
        )
    return None


def _warning(index: int, layer: Layer, count: int) -> str | None:
    where = f"layer {index + 1} {layer.type}"
    if layer.type == "Softmax":
        return (
            f"{where}: cross-entropy already applies a softmax; a Softmax layer before it squashes the "
            f"gradients and slows learning. Keep it only for the MSE loss."
        )
    if layer.type == "Sigmoid" and index == count - 1:
        return (
            f"{where} is the last layer: it squeezes every score into (0, 1), so cross-entropy can hardly "
            f"tell the classes apart and learning crawls (the class's SigmoidNet shows this)."
        )
    return None


def _with_error(row: LayerReport, error: str) -> LayerReport:
    return LayerReport(
        row.index, row.type, row.input_shape, row.output_shape, row.parameters, row.error or error, row.warning
    )


def _value_fits(spec: Param, value: Any) -> bool:
    if value is None:
        return spec.optional
    if spec.kind is bool:
        return isinstance(value, bool)
    if spec.kind is str:
        return isinstance(value, str) and value in spec.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if spec.kind is int and not isinstance(value, int):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return spec.in_range(value)


def _unknown_param_problem(layer_type: LayerType, name: str, value: Any) -> str | None:
    if name == layer_type.inferred:
        return f"{name} is inferred from the layer before; remove it from the file."
    if name in layer_type.fixed:
        fixed = layer_type.fixed[name]
        return None if value == fixed else f"{name} is always {fixed} in the workbench."
    known = [p.name for p in layer_type.params]
    if not known:
        return f"this layer has no parameters, but '{name}' is set."
    return f"no parameter '{name}'{_suggest(name, known)}; its parameters are {', '.join(known)}."


def _parse_layer(index: int, raw: Any) -> Layer:
    if not isinstance(raw, dict):
        raise ArchitectureError(
            f'layer {index + 1} must be an object like {{"type": "Linear", ...}}, not {_json_kind(raw)}.'
        )
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise ArchitectureError(f"layer {index + 1} needs a 'type' naming the layer, e.g. \"Linear\".")
    return Layer(kind, {key: value for key, value in raw.items() if key != "type"})


def _check_header(document: dict) -> None:
    unknown = [key for key in document if key not in _TOP_LEVEL_KEYS]
    if unknown:
        raise ArchitectureError(
            f"Unknown key '{unknown[0]}'{_suggest(unknown[0], _TOP_LEVEL_KEYS)} in the "
            f"architecture; its keys are {', '.join(_TOP_LEVEL_KEYS)}."
        )
    if document.get("format") != FORMAT:
        raise ArchitectureError(
            f"This is not a workbench architecture: its 'format' should be \"{FORMAT}\", "
            f"not {_show(document.get('format'))}."
        )
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArchitectureError(
            f"'version' must be a whole number (this workbench writes {VERSION}), not {_show(version)}."
        )
    if version > VERSION:
        raise ArchitectureError(
            f"This architecture was written by a newer workbench (version {version}); "
            f"this one reads version {VERSION}. Please update the workbench."
        )


def _check_input_shape(value: Any) -> tuple[int, int, int]:
    valid = (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and 1 <= value[0] <= MAX_CHANNELS
        and all(1 <= v <= MAX_SIDE for v in value[1:])
    )
    if not valid:
        raise ArchitectureError(
            f"'input_shape' must be [channels, height, width] with 1 to {MAX_CHANNELS} channels and sides of 1 "
            f"to {MAX_SIDE} pixels, e.g. [1, 28, 28], not {_show(value)}."
        )
    return (value[0], value[1], value[2])


def _check_num_classes(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_CLASSES <= value <= MAX_CLASSES:
        raise ArchitectureError(
            f"'num_classes' must be a whole number from {MIN_CLASSES} to {MAX_CLASSES}, not {_show(value)}."
        )
    return value


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _show(value: Any) -> str:
    return json.dumps(value, default=repr)[:60]


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)
