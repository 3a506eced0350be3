"""The ``python`` export's module: a readable ``nn.Module`` whose text is generated from the architecture.

The module needs only torch and safetensors. Its layers are attributes named after their type and a running number
(:func:`layer_attribute_names`: ``conv1``, ``relu2``, ``fc1``), each built with the arguments that differ from
torch's defaults; its ``load()`` reads the export's weights (keys named after the layers) or a run's (keys numbered
by position). A block of the network becomes a ``Residual`` or ``Parallel`` module, whose classes the module
defines (only when the network has blocks), with the layers inside as a list: the weights' keys inside a block read
``residual1.layers.0.weight``, ``parallel1.branches.1.0.weight``, as the workbench's own. Every text from the run (its name, the dataset's title, the class names) is quoted or escaped, so
no name can inject code.
"""

from __future__ import annotations

import builtins
import inspect
import json
import keyword
import re
import textwrap
from datetime import UTC, datetime

from torch import nn

from workbench import __version__
from workbench.core.architecture import Architecture, Layer, LayerReport, format_shape, validate
from workbench.core.blocks import PARALLEL, RESIDUAL, projection_stride
from workbench.core.errors import ExportError
from workbench.core.layers import CATALOG
from workbench.core.runs.trained import DataDescription, TrainedModel

# Attribute names of the generated module's layers, by type; other types take their name in lower case.
_SHORT_NAMES = {
    "Linear": "fc",
    "Conv2d": "conv",
    "MaxPool2d": "maxpool",
    "AvgPool2d": "avgpool",
    "AdaptiveAvgPool2d": "adaptive_pool",
    "BatchNorm1d": "bn",
    "BatchNorm2d": "bn",
    "LeakyReLU": "leaky_relu",
}
# Constructor arguments written without their name when they lead the signature: nn.Conv2d(1, 16, …).
_POSITIONAL = ("in_features", "out_features", "in_channels", "out_channels", "num_features")
_MODULE_NAMES = ("CLASS_NAMES", "INPUT_SHAPE", "MEAN", "STD", "WEIGHTS", "LAYER_NAMES")
_LINE_LENGTH = 100
# The classes of the blocks, written into the module of a network that uses them; as workbench/core/blocks.py's.
_BLOCK_CLASSES = {
    RESIDUAL: '''
class Residual(nn.Module):
    """A residual block: shortcut(x) + layers(x). The shortcut is x itself, or a projection
    (a 1×1 convolution or a Linear) where the layers change the shape."""

    def __init__(self, layers: list[nn.Module], shortcut: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skipped = x if self.shortcut is None else self.shortcut(x)
        return skipped + self.layers(x)
''',
    PARALLEL: '''
class Parallel(nn.Module):
    """Branches side by side on the same input; their outputs concatenated along the channels
    (or the features), or summed."""

    def __init__(self, branches: list[list[nn.Module]], merge: str = "concat") -> None:
        super().__init__()
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
''',
}
# The module's first line: how an export recognises a file it may replace (see formats.py's foreign_files).
MARK_LINE = "# workbench-export: python (the workbench wrote this file; exporting here again replaces it)"


def layer_attribute_names(architecture: Architecture) -> list[str]:
    """The generated module's name for each layer: its type and a running number (``conv1``, ``relu2``, ``fc1``)."""
    counts: dict[str, int] = {}
    names = []
    for layer in architecture.layers:
        stem = _SHORT_NAMES.get(layer.type, layer.type.lower())
        counts[stem] = counts.get(stem, 0) + 1
        names.append(f"{stem}{'_' if any(character.isdigit() for character in stem) else ''}{counts[stem]}")
    return names


def class_name(architecture: Architecture) -> str:
    """The architecture's name in CamelCase as a Python class name: ``cnn-small`` -> ``CnnSmall``."""
    parts = re.split(r"[^A-Za-z0-9]+", architecture.name)
    name = "".join(part[:1].upper() + part[1:] for part in parts)
    if not name or name[0].isdigit():
        name = "Net" + name
    reserved = (*_MODULE_NAMES, *_BLOCK_CLASSES) if architecture.has_blocks() else _MODULE_NAMES
    if keyword.iskeyword(name) or hasattr(builtins, name) or name in reserved:
        name += "Net"
    return name


def python_source(trained: TrainedModel, weights_name: str) -> str:
    """The text of the standalone module of a Python export, whose ``load()`` reads ``weights_name`` beside it."""
    architecture = trained.architecture
    cls = class_name(architecture)
    names = layer_attribute_names(architecture)
    report = validate(architecture)
    report.raise_if_invalid()
    rows = {row.number: row for row in report.rows}
    constructors = [_module_lines(str(index + 1), layer, rows) for index, layer in enumerate(architecture.layers)]
    lines = [
        *_header_lines(trained, cls, weights_name),
        "",
        "import torch",
        "from safetensors.torch import load_file",
        "from torch import nn",
        "",
        *_constant_lines(trained.data, names),
        "",
        "",
        *_block_class_lines(architecture),
        f"class {cls}(nn.Module):",
        f'    """The network {_docstring_text(architecture.name)}: {report.total_parameters:,} parameters.',
        "",
        *(f"    {line}" for line in textwrap.wrap(architecture.summary(), _LINE_LENGTH - 4)),
        '    """',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *(line for name, lines in zip(names, constructors) for line in _assigned(f"self.{name}", lines, "        ")),
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        *(f"        x = self.{name}(x)" for name in names),
        "        return x",
        "",
        "",
        *_load_lines(cls),
    ]
    return "\n".join(lines) + "\n"


def _header_lines(trained: TrainedModel, cls: str, weights_name: str) -> list[str]:
    """The module's opening comment: the workbench's mark (:data:`MARK_LINE`), what the network is, how it was
    trained, its inputs and its use."""
    data = trained.data
    accuracy = f"{trained.test_accuracy:.2%}" if trained.test_accuracy is not None else "not measured"
    header = (
        f"{cls}: the network of the workbench run {_quoted(trained.name)}, exported {_now()} by workbench "
        f"{__version__}. Trained on {_plain(data.title)} ({format_shape(data.input_shape)} inputs, "
        f"{len(data.class_names)} classes); test accuracy {accuracy}. Needs only torch and safetensors; "
        f"the trained weights are in {_quoted(weights_name)} beside this file."
    )
    return [
        MARK_LINE,
        *(f"# {line}" for line in textwrap.wrap(header, _LINE_LENGTH - 2, break_on_hyphens=False)),
        "#",
        "# Inputs: images with pixels scaled to [0, 1], then normalised per channel: (x - MEAN) / STD.",
        "#",
        "# Usage:",
        "#     model = load()          # the trained network, in eval mode",
        "#     logits = model(images)  # images: a float tensor (N, *INPUT_SHAPE), normalised",
        "#     names = [CLASS_NAMES[i] for i in logits.argmax(1)]",
    ]


def _constant_lines(data: DataDescription, names: list[str]) -> list[str]:
    """The module's constants: the classes, the input shape and normalisation, the weights file, the layers."""
    return [
        _assignment("CLASS_NAMES", data.class_names),
        _assignment("INPUT_SHAPE", tuple(data.input_shape)),
        _assignment("MEAN", tuple(data.mean)),
        _assignment("STD", tuple(data.std)),
        'WEIGHTS = __file__.removesuffix(".py") + ".safetensors"',
        _assignment("LAYER_NAMES", tuple(names)),
    ]


def _load_lines(cls: str) -> list[str]:
    """The module's ``load()``, which takes the export's layer-named keys and a run's numbered ones."""
    return [
        f"def load(path: str = WEIGHTS) -> {cls}:",
        f'    """A {cls} with the trained weights of the safetensors file ``path``, in eval mode.',
        "",
        '    Reads this export\'s weights (keys named after the layers, e.g. "conv1.weight") as well as a',
        "    workbench run's or bundle's model.safetensors (keys numbered by position, e.g. \"0.weight\").",
        '    """',
        f"    model = {cls}()",
        "    model.load_state_dict({_named(key): tensor for key, tensor in load_file(path).items()})",
        "    return model.eval()",
        "",
        "",
        "def _named(key: str) -> str:",
        '    """Sequential keys ("3.weight") -> the layers\' names ("conv2.weight"); other keys are kept."""',
        '    index, dot, rest = key.partition(".")',
        '    return f"{LAYER_NAMES[int(index)]}.{rest}" if dot and index.isdigit() else key',
    ]


def _assigned(target: str, lines: list[str], indent: str) -> list[str]:
    """``target = <the expression of lines>``, its continuation lines indented under ``indent``."""
    return [f"{indent}{target} = {lines[0]}", *(f"{indent}{line}" for line in lines[1:])]


def _module_lines(number: str, layer: Layer, rows: dict[str, LayerReport]) -> list[str]:
    """The expression that makes the layer numbered ``number``: one line for a layer, several for a block (its
    layers listed one per line, indented)."""
    row = rows[number]
    assert row.input_shape is not None and row.output_shape is not None, "a valid report has every shape"
    if layer.type == RESIDUAL:
        lines = ["Residual(", "    ["]
        for index, child in enumerate(layer.layers):
            lines += _listed(_module_lines(f"{number}.{index + 1}", child, rows), "        ")
        lines.append("    ],")
        if layer.resolved_params()["shortcut"] == "projection":
            lines.append(f"    shortcut={_projection(row.input_shape, row.output_shape)},")
        return [*lines, ")"]
    if layer.type == PARALLEL:
        lines = ["Parallel(", "    ["]
        for branch, layers in enumerate(layer.branches, start=1):
            lines.append("        [")
            for index, child in enumerate(layers):
                lines += _listed(_module_lines(f"{number}.b{branch}.{index + 1}", child, rows), "            ")
            lines.append("        ],")
        return [*lines, "    ],", f"    merge={layer.resolved_params()['merge']!r},", ")"]
    return [_constructor(number, layer, row.input_shape)]


def _listed(lines: list[str], indent: str) -> list[str]:
    """An expression's lines as an item of a list: indented, with a comma after its last line."""
    return [*(f"{indent}{line}" for line in lines[:-1]), f"{indent}{lines[-1]},"]


def _projection(input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> str:
    """The constructor of the workbench's projection shortcut (:func:`workbench.core.blocks.projection`)."""
    if len(input_shape) == 1:
        return f"nn.Linear({input_shape[0]}, {output_shape[0]})"
    stride = projection_stride(input_shape, output_shape)
    strided = f", stride={stride}" if stride != 1 else ""
    return f"nn.Conv2d({input_shape[0]}, {output_shape[0]}, kernel_size=1{strided})"


def _block_class_lines(architecture: Architecture) -> list[str]:
    """The classes of the blocks the network uses, each followed by two blank lines; none without blocks."""
    used = {layer.type for _, _, layer in architecture.walk()}
    lines: list[str] = []
    for name in _BLOCK_CLASSES:
        if name in used:
            lines += [*_BLOCK_CLASSES[name].strip("\n").splitlines(), "", ""]
    return lines


def _constructor(number: str, layer: Layer, input_shape: tuple[int, ...]) -> str:
    """``nn.Conv2d(1, 16, kernel_size=3, padding=1)``: the layer's torch class with the arguments that differ
    from torch's defaults (the build's own arguments: parameters, fixed ones, the inferred input size)."""
    layer_type = CATALOG[layer.type]
    torch_class = layer_type.torch_class
    if getattr(nn, torch_class.__name__, None) is not torch_class:
        raise ExportError(
            f"This network cannot be exported to Python: layer {number} {layer.type} is not a torch.nn class."
        )
    arguments = {**layer.resolved_params(), **layer_type.fixed}
    if layer_type.inferred:
        arguments[layer_type.inferred] = input_shape[0]
    signature = list(inspect.signature(torch_class).parameters.values())
    order = [parameter.name for parameter in signature]
    positional: list[str] = []
    named: list[str] = []
    for name in sorted(arguments, key=lambda name: order.index(name) if name in order else len(order)):
        value = arguments[name]
        default = signature[order.index(name)].default if name in order else inspect.Parameter.empty
        if default is not inspect.Parameter.empty and _same(value, default):
            continue
        if name in _POSITIONAL and not named and order.index(name) == len(positional):
            positional.append(repr(value))
        else:
            named.append(f"{name}={value!r}")
    return f"nn.{torch_class.__name__}({', '.join(positional + named)})"


def _same(value: object, default: object) -> bool:
    """Equal and of the same kind: True is not the default 1, nor 1 the default True."""
    return isinstance(value, bool) == isinstance(default, bool) and value == default


def layer_key(key: str, names: list[str]) -> str:
    """``"3.weight"`` -> ``"conv2.weight"``: a run's weight key under the layer names ``names`` (from
    :func:`layer_attribute_names`), the same mapping as the generated module's ``_named``."""
    index, _, rest = key.partition(".")
    return f"{names[int(index)]}.{rest}"


def module_name(name: str) -> str:
    """``name`` as a Python module name: letters, digits and underscores, not starting with a digit."""
    module = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")[:100]
    if not module or module[0].isdigit() or keyword.iskeyword(module):
        module = f"model_{module}".rstrip("_")
    return module


def _assignment(name: str, values: tuple[object, ...]) -> str:
    """``NAME = (a, b, c)`` on one line, or one value per line when that is too long."""
    items = [repr(value) for value in values]
    one_line = f"{name} = ({', '.join(items)}{',' if len(items) == 1 else ''})"
    if len(one_line) <= _LINE_LENGTH:
        return one_line
    return f"{name} = (\n" + "".join(f"    {item},\n" for item in items) + ")"


def _quoted(text: str) -> str:
    """``text`` in double quotes for a comment, with line breaks and other control characters escaped."""
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted if quoted.isprintable() else json.dumps(text)


def _plain(text: str) -> str:
    """``text`` on one line, as in :func:`_quoted` but without the quotes."""
    return _quoted(text)[1:-1]


def _docstring_text(text: str) -> str:
    """``text`` safe inside a one-line triple-quoted docstring."""
    return _plain(text).replace('"', "'")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
