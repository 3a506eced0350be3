"""Architectures: the versioned JSON document of a network, its validation and its build.

An :class:`Architecture` is a list of layers from the catalog plus the input shape and the number of
classes. :func:`validate` walks the layers with the input shape and reports, per layer, the output
shape and parameter count, or a message in plain words saying what does not fit. :func:`build` turns
a valid architecture into an ``nn.Sequential``.

Version 2 of the document adds blocks (:mod:`workbench.core.blocks`): a layer may be
``{"type": "Residual", "shortcut": "identity"|"projection", "layers": [...]}`` or
``{"type": "Parallel", "merge": "concat"|"sum", "branches": [[...], [...]]}``, nested up to
:data:`~workbench.core.blocks.MAX_DEPTH` blocks deep. A :class:`Layer` that is a block holds its layers in
``layers`` (a Residual's) or ``branches`` (a Parallel's). Version-1 documents load unchanged; a document is
saved as version 1 while its network has no block, so flat networks' files never change.

Every layer has a number, used by every message and by the report's rows: the top-level layers count from
1 (``"5"``); the layers inside block 5 are ``"5.1"``, ``"5.2"``...; inside a Parallel block 6, layer 1 of
branch 2 is ``"6.b2.1"``; deeper blocks continue the same way (``"5.2.b1.3"``). Messages name a layer
``layer 5.2 Conv2d`` and a block ``block 5 Residual``. :func:`module_path` gives a number's module in the
built network (``"5.2"`` is ``"4.layers.1"``, ``"6.b2.1"`` is ``"5.branches.1.0"``).
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.core.blocks import (
    BLOCK_PARAMS,
    BLOCK_TYPES,
    MAX_DEPTH,
    PARALLEL,
    RESIDUAL,
    Parallel,
    Residual,
    projection,
    projection_parameters,
    projection_stride,
)
from workbench.core.errors import ArchitectureError
from workbench.core.files import atomic_write_text
from workbench.core.layers import CATALOG, InputKind, LayerType, Param

FORMAT = "workbench-architecture"
VERSION = 2
"""The newest version of the document this workbench reads and writes (version 2 when the network has blocks)."""
FLAT_VERSION = 1
"""The version of a document without blocks: every such network is saved as version 1, as before blocks."""
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
    """One layer of a network: a catalog type and the parameters set on it, or a block and the layers in it.

    A ``Residual`` block holds its layers in ``layers``, a ``Parallel`` block its branches (each a list of
    layers) in ``branches``; other layers leave both empty. A block's ``params`` hold its ``shortcut`` or
    ``merge``.
    """

    type: str
    params: dict[str, Any] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)
    branches: list[list[Layer]] = field(default_factory=list)

    @property
    def is_block(self) -> bool:
        """Whether this is a block (``Residual`` or ``Parallel``) rather than a catalog layer."""
        return self.type in BLOCK_TYPES

    def sequences(self) -> list[list[Layer]]:
        """The lists of layers inside: a Residual's ``layers``, a Parallel's ``branches``; none for a layer."""
        if self.type == RESIDUAL:
            return [self.layers]
        if self.type == PARALLEL:
            return self.branches
        return []

    def resolved_params(self) -> dict[str, Any]:
        """The catalog defaults overlaid with this layer's own parameters."""
        if self.is_block:
            param = BLOCK_PARAMS[self.type]
            return {param.name: param.default, **self.params}
        layer_type = CATALOG[self.type]
        return {**layer_type.defaults(), **self.params}

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"type": self.type, **self.params}
        if self.type == RESIDUAL:
            document["layers"] = [layer.to_dict() for layer in self.layers]
        elif self.type == PARALLEL:
            document["branches"] = [[layer.to_dict() for layer in branch] for branch in self.branches]
        return document


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
        version = document["version"]
        layers = [_parse_layer(str(index + 1), raw, 0, version) for index, raw in enumerate(raw_layers)]
        architecture = cls(
            name=name, input_shape=input_shape, num_classes=num_classes, layers=layers, description=description
        )
        count = 0
        for number, depth, layer in architecture.walk():
            problem = _parameter_problem(number, layer) or _structure_problem(number, layer, depth)
            if problem:
                raise ArchitectureError(problem)
            count += 1
        if count > MAX_LAYERS:
            raise ArchitectureError(
                f"The network has {count} layers, counting those inside blocks; the workbench allows {MAX_LAYERS}."
            )
        return architecture

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
        version = VERSION if self.has_blocks() else FLAT_VERSION
        document: dict[str, Any] = {"format": FORMAT, "version": version, "name": self.name}
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
        layers = ",\n".join(_layer_json(layer, "    ") for layer in self.layers)
        lines.append(f'  "layers": [\n{layers}\n  ]' if layers else '  "layers": []')
        return "{\n" + ",\n".join(lines) + "\n}\n"

    def save(self, path: str | os.PathLike) -> None:
        """Write the architecture file atomically."""
        atomic_write_text(Path(path), self.to_json())

    def copy(self) -> Architecture:
        """An independent copy (the engine trains on a snapshot)."""
        return copy.deepcopy(self)

    def summary(self) -> str:
        """A one-line description, e.g. ``Flatten → Linear(120) → Linear(10)``; a block shows as
        ``Residual(4 layers)`` or ``Parallel(2 branches)``."""
        parts = []
        for layer in self.layers:
            size = layer.params.get("out_features", layer.params.get("out_channels"))
            if layer.type == RESIDUAL:
                parts.append(f"Residual({_count(len(layer.layers), 'layer')})")
            elif layer.type == PARALLEL:
                parts.append(f"Parallel({_count(len(layer.branches), 'branch')})")
            else:
                parts.append(f"{layer.type}({size})" if size is not None else layer.type)
        return " → ".join(parts) if parts else "(no layers)"

    def walk(self) -> Iterator[tuple[str, int, Layer]]:
        """Every layer, blocks and the layers inside them, in order: its number (see the module's docstring), its
        depth (0 for the top-level layers, 1 inside a block...) and the layer."""
        return _walk_layers(self.layers, "", 0)

    def has_blocks(self) -> bool:
        """Whether any layer is a block (the document is then version 2)."""
        return any(layer.is_block for layer in self.layers)


def _walk_layers(layers: list[Layer], prefix: str, depth: int) -> Iterator[tuple[str, int, Layer]]:
    for index, layer in enumerate(layers):
        number = f"{prefix}{index + 1}"
        yield number, depth, layer
        for sequence_prefix, sequence in _sequence_prefixes(number, layer):
            yield from _walk_layers(sequence, sequence_prefix, depth + 1)


def _sequence_prefixes(number: str, layer: Layer) -> list[tuple[str, list[Layer]]]:
    """The number prefix of each list of layers inside ``layer``: ``5.`` for a Residual's, ``6.b1.``... for a
    Parallel's branches."""
    if layer.type == PARALLEL:
        return [(f"{number}.b{branch + 1}.", layers) for branch, layers in enumerate(layer.branches)]
    return [(f"{number}.", layers) for layers in layer.sequences()]


def module_path(number: str) -> str:
    """The name in the built ``nn.Sequential`` of the layer numbered ``number``: ``"5"`` -> ``"4"``, ``"5.2"`` ->
    ``"4.layers.1"``, ``"6.b2.1"`` -> ``"5.branches.1.0"``."""
    parts = number.split(".")
    path = [str(int(parts[0]) - 1)]
    for part in parts[1:]:
        if part.startswith("b"):
            path += ["branches", str(int(part[1:]) - 1)]
        elif path[-2:-1] == ["branches"]:
            path.append(str(int(part) - 1))
        else:
            path += ["layers", str(int(part) - 1)]
    return ".".join(path)


def _layer_json(layer: Layer, indent: str) -> str:
    """A layer as JSON text; a block over several lines, one inner layer per line, indented by depth."""
    if not layer.is_block:
        return f"{indent}{json.dumps(layer.to_dict(), ensure_ascii=False)}"
    head = indent + json.dumps({"type": layer.type, **layer.params}, ensure_ascii=False)[:-1]
    inner = indent + "  "
    if layer.type == RESIDUAL:
        body = ",\n".join(_layer_json(child, inner) for child in layer.layers)
        return f'{head}, "layers": [\n{body}\n{indent}]}}' if body else f'{head}, "layers": []}}'
    branches = []
    for branch in layer.branches:
        body = ",\n".join(_layer_json(child, inner + "  ") for child in branch)
        branches.append(f"{inner}[\n{body}\n{inner}]" if body else f"{inner}[]")
    listed = ",\n".join(branches)
    return f'{head}, "branches": [\n{listed}\n{indent}]}}' if branches else f'{head}, "branches": []}}'


def _count(count: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("ch") else "s")
    return f"{count} {noun if count == 1 else plural}"


@dataclass(frozen=True)
class LayerReport:
    """What validation found for one layer or block.

    ``index`` counts from 0 within the layer's own list (the network's, a block's, a branch's); ``number`` is the
    layer's number in messages (``"5"``, ``"5.2"``, ``"6.b2.1"``: see the module's docstring) and ``depth`` the
    number of blocks around it (0 for a top-level layer). A block's row has the block's input and output shapes,
    and its ``parameters`` count every parameter inside it, its projection shortcut's included.
    """

    index: int
    type: str
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    parameters: int
    error: str | None = None
    warning: str | None = None
    number: str = ""
    depth: int = 0


@dataclass(frozen=True)
class ValidationReport:
    """The result of :func:`validate`: per-layer rows, totals, errors and warnings.

    ``layers`` has one row per top-level layer (a block is one row); ``rows`` has every row, blocks and the
    layers inside them, in the order of :meth:`Architecture.walk`. For a network without blocks the two are
    the same.
    """

    layers: tuple[LayerReport, ...]
    output_shape: tuple[int, ...] | None
    total_parameters: int
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    rows: tuple[LayerReport, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_invalid(self) -> None:
        """Raise :class:`ArchitectureError` with every error message, if there are any."""
        if self.errors:
            raise ArchitectureError("\n".join(self.errors))

    def input_shapes(self) -> list[tuple[int, ...]]:
        """Every top-level layer's input shape; :class:`ArchitectureError` (see :meth:`raise_if_invalid`) if
        invalid."""
        self.raise_if_invalid()
        shapes = [row.input_shape for row in self.layers]
        # A valid network has no layer after a misfit, so every shape is known.
        assert all(shape is not None for shape in shapes), "a valid report has every layer's input shape"
        return [shape for shape in shapes if shape is not None]

    def row(self, number: str) -> LayerReport | None:
        """The row of the layer numbered ``number`` (``"5.2"``), or None."""
        return next((row for row in self.rows if row.number == number), None)


def format_shape(shape: tuple[int, ...]) -> str:
    """``(32, 14, 14)`` -> ``32×14×14``; a flat shape is just its length."""
    return "×".join(str(size) for size in shape)


def parameter_problem(index: int, layer: Layer) -> str | None:
    """What is wrong with a top-level layer's type or parameters, in words; None when they are fine."""
    return _parameter_problem(str(index + 1), layer)


def _parameter_problem(number: str, layer: Layer) -> str | None:
    if layer.is_block:
        return _block_parameter_problem(number, layer)
    where = f"layer {number} {layer.type}"
    layer_type = CATALOG.get(layer.type)
    if layer_type is None:
        return f"layer {number}: unknown layer type '{layer.type}'{_suggest(layer.type, [*CATALOG, *BLOCK_TYPES])}."
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


def _block_parameter_problem(number: str, layer: Layer) -> str | None:
    where = f"block {number} {layer.type}"
    spec = BLOCK_PARAMS[layer.type]
    for name, value in layer.params.items():
        if name != spec.name:
            inside = "layers" if layer.type == RESIDUAL else "branches"
            return (
                f"{where}: no parameter '{name}'{_suggest(name, [spec.name, inside])}; its parameter is "
                f"{spec.name}, and its layers go in '{inside}'."
            )
        if not _value_fits(spec, value):
            return f"{where}: {name} must be {spec.describe_range()}, not {_show(value)}."
    return None


def _structure_problem(number: str, layer: Layer, depth: int) -> str | None:
    """What is wrong with what a layer holds: a block's depth, its layers or branches; a layer holding layers.
    ``depth`` is the number of blocks around the layer."""
    if not layer.is_block:
        if layer.layers or layer.branches:
            return f"layer {number} {layer.type} holds layers of its own; only Residual and Parallel blocks may."
        return None
    where = f"block {number} {layer.type}"
    if depth + 1 > MAX_DEPTH:
        return f"{where} is nested {depth + 1} blocks deep; the workbench allows blocks {MAX_DEPTH} deep."
    if layer.type == RESIDUAL:
        if layer.branches:
            return f"{where} has branches; only a Parallel block has branches, a Residual block has layers."
        if not layer.layers:
            return f"{where} has no layers: add at least one layer inside it, or remove the block."
        return None
    if layer.layers:
        return f"{where} has layers outside its branches; put them in a branch."
    if len(layer.branches) < 2:
        return (
            f"{where} has {_count(len(layer.branches), 'branch')}; it needs at least two (with one, use its "
            f"layers without the block)."
        )
    for branch, layers in enumerate(layer.branches, start=1):
        if not layers:
            return (
                f"{where}: branch {branch} has no layers: add one (an Identity passes the input through) or "
                f"remove the branch."
            )
    return None


@dataclass
class _Walk:
    """What :func:`validate` collects on its way through the layers."""

    loss: str
    rows: list[LayerReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def validate(architecture: Architecture, loss: str = "cross-entropy") -> ValidationReport:
    """Walk the layers with the input shape: output shape and parameters per layer, or errors.

    Never raises for a bad network; every problem becomes a message in the report. The walk
    stops at the first layer that does not fit, since the shapes after it are unknown. The warnings
    follow the ``loss`` the network will be trained with (a Softmax or a final Sigmoid hurts
    cross-entropy, not the class's MSE). Blocks are walked inside (see :class:`ValidationReport`).
    """
    walk = _Walk(loss)
    shape, total = _walk_sequence(walk, architecture.layers, tuple(architecture.input_shape), "", 0)
    rows, errors = walk.rows, walk.errors
    if shape is not None:
        ending = _ending_problem(architecture, shape)
        if ending:
            errors.append(ending)
            last = max((position for position, row in enumerate(rows) if row.depth == 0), default=None)
            if last is not None:
                rows[last] = _with_error(rows[last], ending)
    if total > MAX_PARAMETERS:
        errors.append(
            f"The network has {total:,} parameters; the workbench trains at most {MAX_PARAMETERS:,}. "
            f"Use fewer units or channels, or pool before the first Linear."
        )
    top = tuple(row for row in rows if row.depth == 0)
    return ValidationReport(top, shape, total, tuple(errors), tuple(walk.warnings), tuple(rows))


def _walk_sequence(
    walk: _Walk, layers: list[Layer], shape: tuple[int, ...] | None, prefix: str, depth: int
) -> tuple[tuple[int, ...] | None, int]:
    """Validate ``layers`` one after another from ``shape``: their output shape (None once one does not fit) and
    their parameters."""
    total = 0
    for index, layer in enumerate(layers):
        last = depth == 0 and index == len(layers) - 1
        shape, parameters = _walk_layer(walk, index, f"{prefix}{index + 1}", depth, layer, shape, last)
        total += parameters
    return shape, total


def _walk_layer(
    walk: _Walk, index: int, number: str, depth: int, layer: Layer, shape: tuple[int, ...] | None, last: bool
) -> tuple[tuple[int, ...] | None, int]:
    if shape is None:
        walk.rows.append(LayerReport(index, layer.type, None, None, 0, number=number, depth=depth))
        for prefix, layers in _sequence_prefixes(number, layer):
            _walk_sequence(walk, layers, None, prefix, depth + 1)
        return None, 0
    if layer.is_block:
        return _walk_block(walk, index, number, depth, layer, shape)
    error = (
        _parameter_problem(number, layer)
        or _structure_problem(number, layer, depth)
        or _fit_problem(number, layer, shape)
    )
    output, parameters = (None, 0)
    if error is None:
        output, parameters, error = _trace(number, layer, shape)
    warning = _warning(number, layer, last) if walk.loss == "cross-entropy" else None
    walk.rows.append(LayerReport(index, layer.type, shape, output, parameters, error, warning, number, depth))
    if error:
        walk.errors.append(error)
    if warning:
        walk.warnings.append(warning)
    return output, parameters


def _walk_block(
    walk: _Walk, index: int, number: str, depth: int, layer: Layer, shape: tuple[int, ...]
) -> tuple[tuple[int, ...] | None, int]:
    position = len(walk.rows)
    walk.rows.append(LayerReport(index, layer.type, shape, None, 0, number=number, depth=depth))
    error = _parameter_problem(number, layer) or _structure_problem(number, layer, depth)
    output: tuple[int, ...] | None = None
    parameters = 0
    if error is not None:
        for prefix, layers in _sequence_prefixes(number, layer):
            _walk_sequence(walk, layers, None, prefix, depth + 1)
    elif layer.type == RESIDUAL:
        output, parameters, error = _walk_residual(walk, number, depth, layer, shape)
    else:
        output, parameters, error = _walk_parallel(walk, number, depth, layer, shape)
    walk.rows[position] = LayerReport(index, layer.type, shape, output, parameters, error, None, number, depth)
    if error:
        walk.errors.append(error)
    return output, parameters


def _walk_residual(
    walk: _Walk, number: str, depth: int, layer: Layer, shape: tuple[int, ...]
) -> tuple[tuple[int, ...] | None, int, str | None]:
    inner, parameters = _walk_sequence(walk, layer.layers, shape, f"{number}.", depth + 1)
    if inner is None:
        return None, parameters, None
    where = f"block {number} Residual: its layers turn {format_shape(shape)} into {format_shape(inner)}"
    if len(inner) != len(shape):
        return None, parameters, f"{where}, so no shortcut can add the input: move the Flatten out of the block."
    fits = len(shape) == 1 or projection_stride(shape, inner) is not None
    if layer.resolved_params()["shortcut"] == "identity":
        if inner == shape:
            return inner, parameters, None
        if fits:
            return None, parameters, f"{where}, so the input cannot be added: set its shortcut to projection."
    elif fits:
        return inner, parameters + projection_parameters(shape, inner), None
    return (
        None,
        parameters,
        (
            f"{where}, so the input cannot be added even by a projection, which shrinks the height and width "
            f"by one stride: keep them (padding) or halve both (stride 2)."
        ),
    )


def _walk_parallel(
    walk: _Walk, number: str, depth: int, layer: Layer, shape: tuple[int, ...]
) -> tuple[tuple[int, ...] | None, int, str | None]:
    outputs: list[tuple[int, ...] | None] = []
    parameters = 0
    for prefix, layers in _sequence_prefixes(number, layer):
        output, branch_parameters = _walk_sequence(walk, layers, shape, prefix, depth + 1)
        outputs.append(output)
        parameters += branch_parameters
    shapes = [output for output in outputs if output is not None]
    if len(shapes) < len(outputs):
        return None, parameters, None
    listed = ", ".join(f"{format_shape(output)} (branch {branch})" for branch, output in enumerate(shapes, start=1))
    where = f"block {number} Parallel: its branches end with {listed}"
    if layer.resolved_params()["merge"] == "sum":
        if len(set(shapes)) > 1:
            return None, parameters, f"{where}, so they cannot be added: sum needs the same shape from every branch."
        return shapes[0], parameters, None
    if len({len(output) for output in shapes}) > 1:
        return (
            None,
            parameters,
            f"{where}, so they cannot be concatenated: every branch must end with an image, or every one with a "
            f"flat vector.",
        )
    if len({output[1:] for output in shapes}) > 1:
        return (
            None,
            parameters,
            f"{where}, so they cannot be concatenated along the channels: every branch must end with the same "
            f"height and width.",
        )
    return (sum(output[0] for output in shapes), *shapes[0][1:]), parameters, None


def build(architecture: Architecture) -> nn.Sequential:
    """An ``nn.Sequential`` of the architecture's layers, initialised by torch's defaults.

    Raises :class:`ArchitectureError` if the architecture does not validate. The model's output
    for a batch of ``input_shape`` images has the shape ``(batch, num_classes)``. A block becomes a
    :class:`~workbench.core.blocks.Residual` or :class:`~workbench.core.blocks.Parallel` module
    (see :func:`module_path` for the names of the layers inside).
    """
    report = validate(architecture)
    report.raise_if_invalid()
    rows = {row.number: row for row in report.rows}
    return nn.Sequential(*_make_sequence(architecture.layers, "", rows))


def _make_sequence(layers: list[Layer], prefix: str, rows: dict[str, LayerReport]) -> list[nn.Module]:
    return [_make_layer(layer, f"{prefix}{index + 1}", rows) for index, layer in enumerate(layers)]


def _make_layer(layer: Layer, number: str, rows: dict[str, LayerReport]) -> nn.Module:
    row = rows[number]
    # A valid network has every layer's shapes.
    assert row.input_shape is not None and row.output_shape is not None, "a valid report has every shape"
    if layer.type == RESIDUAL:
        body = _make_sequence(layer.layers, f"{number}.", rows)
        shortcut = projection(row.input_shape, row.output_shape)
        return Residual(body, shortcut if layer.resolved_params()["shortcut"] == "projection" else None)
    if layer.type == PARALLEL:
        branches = [_make_sequence(layers, prefix, rows) for prefix, layers in _sequence_prefixes(number, layer)]
        return Parallel(branches, layer.resolved_params()["merge"])
    return _make_module(CATALOG[layer.type], layer, row.input_shape)


def _make_module(layer_type: LayerType, layer: Layer, shape: tuple[int, ...]) -> nn.Module:
    kwargs = {**layer.resolved_params(), **layer_type.fixed}
    if layer_type.inferred:
        kwargs[layer_type.inferred] = shape[0]
    return layer_type.torch_class(**kwargs)


_Traced = tuple[tuple[int, ...] | None, int, str | None]
_TRACED: dict[tuple[Any, ...], _Traced] = {}
_TRACED_LIMIT = 4096
# Layers that keep their input's shape and have no parameters, whatever their settings: no need to trace them.
_SHAPE_KEEPING_GROUPS = ("Activation", "Regularisation")


def _trace(number: str, layer: Layer, shape: tuple[int, ...]) -> _Traced:
    """The layer's output shape and parameters, or why it cannot take ``shape``: from :func:`_trace_once`, whose
    answers for layers that fit are kept (the builder validates on every edit, and deep networks repeat the same
    layers)."""
    layer_type = CATALOG[layer.type]
    if layer_type.group in _SHAPE_KEEPING_GROUPS and not layer_type.inferred:
        return shape, 0, None
    key = (layer.type, tuple(sorted(layer.params.items())), shape)
    try:
        traced = _TRACED.get(key)
    except TypeError:  # a parameter's value that cannot be a key (validation has refused it already)
        return _trace_once(number, layer, shape)
    if traced is None:
        traced = _trace_once(number, layer, shape)
        if traced[2] is None:
            if len(_TRACED) >= _TRACED_LIMIT:
                _TRACED.clear()
            _TRACED[key] = traced
    return traced


def _trace_once(number: str, layer: Layer, shape: tuple[int, ...]) -> _Traced:
    """Build the layer on the meta device (no memory, no compute) and push a batch through it."""
    layer_type = CATALOG[layer.type]
    try:
        with torch.device("meta"):
            module = _make_module(layer_type, layer, shape)
            # A batch of 2: BatchNorm refuses a single sample in training mode.
            output = tuple(module(torch.empty((2, *shape))).shape[1:])
    except (RuntimeError, ValueError) as error:
        reason = str(error).splitlines()[0]
        return None, 0, f"layer {number} {layer.type} cannot take an input of {format_shape(shape)}: {reason}"
    parameters = sum(p.numel() for p in module.parameters())
    if 0 in output:
        return (
            None,
            0,
            (
                f"layer {number} {layer.type} turns {format_shape(shape)} into {format_shape(output)}, "
                f"which is empty: make it smaller or remove it."
            ),
        )
    return output, parameters, None


def _fit_problem(number: str, layer: Layer, shape: tuple[int, ...]) -> str | None:
    """The common mistakes, explained before torch would complain in its own words."""
    layer_type = CATALOG[layer.type]
    where = f"layer {number} {layer.type}"
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


def _warning(number: str, layer: Layer, last: bool) -> str | None:
    """The warning for cross-entropy of a layer; ``last``: whether it is the network's last (top-level) layer."""
    where = f"layer {number} {layer.type}"
    if layer.type == "Softmax":
        return (
            f"{where}: cross-entropy already applies a softmax; a Softmax layer before it squashes the "
            f"gradients and slows learning. Keep it only for the MSE loss."
        )
    if layer.type == "Sigmoid" and last:
        return (
            f"{where} is the last layer: it squeezes every score into (0, 1), so cross-entropy can hardly "
            f"tell the classes apart and learning crawls (the class's SigmoidNet shows this)."
        )
    return None


def _with_error(row: LayerReport, error: str) -> LayerReport:
    return replace(row, error=row.error or error)


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


def _parse_layer(number: str, raw: Any, depth: int, version: int) -> Layer:
    """The layer numbered ``number`` from its JSON object; ``depth`` blocks around it, in a document of ``version``."""
    if not isinstance(raw, dict):
        raise ArchitectureError(
            f'layer {number} must be an object like {{"type": "Linear", ...}}, not {_json_kind(raw)}.'
        )
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise ArchitectureError(f"layer {number} needs a 'type' naming the layer, e.g. \"Linear\".")
    if kind not in BLOCK_TYPES:
        return Layer(kind, {key: value for key, value in raw.items() if key != "type"})
    where = f"block {number} {kind}"
    if version < VERSION:
        raise ArchitectureError(
            f"{where}: blocks need version {VERSION} of the architecture format, but the file says version "
            f'{version}: set its "version" to {VERSION}.'
        )
    if depth + 1 > MAX_DEPTH:
        raise ArchitectureError(f"{where} is nested deeper than {MAX_DEPTH} blocks, the most the workbench allows.")
    inside = "layers" if kind == RESIDUAL else "branches"
    params = {key: value for key, value in raw.items() if key not in ("type", inside)}
    content = raw.get(inside)
    if kind == RESIDUAL:
        if not isinstance(content, list):
            raise ArchitectureError(
                f"{where} needs 'layers': a list of the layers inside it, not {_json_kind(content)}."
            )
        layers = [_parse_layer(f"{number}.{index + 1}", item, depth + 1, version) for index, item in enumerate(content)]
        return Layer(kind, params, layers=layers)
    if not isinstance(content, list):
        raise ArchitectureError(
            f"{where} needs 'branches': a list of branches, each a list of layers, not {_json_kind(content)}."
        )
    branches = []
    for branch, items in enumerate(content, start=1):
        if not isinstance(items, list):
            raise ArchitectureError(f"{where}: branch {branch} must be a list of layers, not {_json_kind(items)}.")
        prefix = f"{number}.b{branch}."
        branches.append(
            [_parse_layer(f"{prefix}{index + 1}", item, depth + 1, version) for index, item in enumerate(items)]
        )
    return Layer(kind, params, branches=branches)


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
