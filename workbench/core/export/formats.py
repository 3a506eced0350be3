"""Exporting a trained network: ONNX, a ``torch.export`` program, a safetensors bundle, or a standalone Python file.

Every export is written into a temporary folder next to its target, checked there against the PyTorch model on
a batch of inputs (the first 64 test images of the network's dataset, else seeded random ones), and only then
renamed onto the target: a failure at any step leaves nothing at the target, and an earlier file there intact.

The formats:

- ``onnx``: ``torch.onnx.export(dynamo=True)`` with a dynamic batch size, input ``input`` and output ``logits``;
  checked with onnxruntime.
- ``pt2``: a ``torch.export`` program saved with ``torch.export.save``; checked with ``torch.export.load``.
- ``safetensors``: a bundle folder holding ``model.safetensors``, ``architecture.json`` and ``meta.json`` (class
  names, input shape, normalisation, dataset, test accuracy); :func:`~workbench.core.runs.trained.load_trained` reads it.
- ``python``: ``NAME.py``, a readable ``nn.Module`` that needs only torch and safetensors, with its weights beside
  it in ``NAME.safetensors``, stored under the module's layer names (``conv1.weight``). Its ``load()`` also takes
  a run's or a bundle's ``model.safetensors`` (keys numbered by position, ``0.weight``).
"""

from __future__ import annotations

import builtins
import importlib.util
import inspect
import json
import keyword
import os
import re
import shutil
import tempfile
import textwrap
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import safetensors.torch
import torch
from torch import nn

from workbench import __version__
from workbench.core.architecture import Architecture, Layer, format_shape, validate
from workbench.core.data import datasets
from workbench.core.errors import ExportError, WorkbenchError
from workbench.core.layers import CATALOG
from workbench.core.runs.folders import ARCHITECTURE_FILE, EVALUATION_FILE, METRICS_FILE, RUN_FILE, WEIGHTS_FILE
from workbench.core.runs.trained import BUNDLE_FORMAT, BUNDLE_VERSION, META_FILE, TrainedModel, load_trained

FORMATS = ("onnx", "pt2", "safetensors", "python")
TOLERANCE = 1e-4
CHECK_COUNT = 64
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

Progress = Callable[[str], None]

_TITLES = {"onnx": "ONNX", "pt2": "pt2 (torch.export)", "safetensors": "safetensors bundle", "python": "Python"}
_CHECKING = {
    "onnx": "Checking with onnxruntime…",
    "pt2": "Checking with torch.export.load…",
    "safetensors": "Checking the reloaded bundle…",
    "python": "Checking the imported module…",
}
_CHECKED_WITH = {
    "onnx": "checked with onnxruntime",
    "pt2": "checked with torch.export.load",
    "safetensors": "checked by reloading the bundle",
    "python": "checked by importing the module",
}


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and how faithful it is.

    ``max_abs_diff`` is the largest absolute difference between the reloaded export's outputs and the PyTorch
    model's on ``checked_on`` inputs; ``message`` says it all in one line, e.g. "Wrote a.onnx (checked with
    onnxruntime on 64 test images of Digits: max |difference| 2.4e-07)".
    """

    format: str
    path: Path
    max_abs_diff: float | None
    checked_on: int
    message: str


@dataclass(frozen=True)
class _CheckBatch:
    inputs: torch.Tensor
    description: str


def export_model(
    trained: TrainedModel,
    format: str,
    out: str | os.PathLike,
    progress: Progress | None = None,
    check_inputs: torch.Tensor | None = None,
) -> ExportResult:
    """Export ``trained`` in ``format`` (one of :data:`FORMATS`) to ``out``, and check the export.

    ``out`` is the file (the folder of a bundle) to write, or an existing folder to write the default name
    into (:func:`default_export_name`). ``progress`` receives short stage messages ("Tracing the network…").
    The export is reloaded and its outputs compared with the PyTorch model's on ``check_inputs`` (a batch of
    normalised images), by default the first 64 test images of the network's dataset, or seeded random inputs
    when they cannot be loaded. :class:`ExportError` saying why for an unknown format, a target that cannot be
    written, a network the exporter refuses, or outputs that differ by more than :data:`TOLERANCE`; nothing is
    then left at the target.
    """
    if format not in FORMATS:
        raise ExportError(f"Unknown export format '{format}'; the formats are {', '.join(FORMATS)}.")
    report = progress or (lambda stage: None)
    target = export_target(trained, format, Path(out))
    _check_target(trained, format, target)
    batch = _check_batch(trained, check_inputs, report)
    staging = _staging_folder(target)
    try:
        staged = staging / target.name
        _write(format, trained, staged, report)
        report(_CHECKING[format])
        difference = _difference(format, _read(format, staged, batch.inputs), _reference(trained, batch.inputs))
        if not difference <= TOLERANCE:
            raise ExportError(
                f"The {_TITLES[format]} export is not faithful: its outputs differ from the PyTorch "
                f"model's by up to {difference:.1e} on {batch.description}, more than the "
                f"{TOLERANCE:g} allowed. Nothing was written."
            )
        _publish(staging, staged, target, format)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    written = f"{target} and {_weights_beside(target)}" if format == "python" else str(target)
    message = (
        f"Wrote {written} ({_CHECKED_WITH[format]} on {batch.description}: max |difference| "
        f"{_show_difference(difference)})"
    )
    return ExportResult(format, target, difference, len(batch.inputs), message)


def default_export_name(trained: TrainedModel, format: str) -> str:
    """The name an export takes in a folder: ``NAME.onnx``, ``NAME.pt2``, ``NAME-bundle``, ``NAME.py``.

    ``NAME`` is the run's name made safe for file names; for ``python`` also a valid module name, so that
    ``import NAME`` works.
    """
    if format == "python":
        return f"{_module_name(trained.name)}.py"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", trained.name).strip("._")[:120] or "model"
    return stem + {"onnx": ".onnx", "pt2": ".pt2", "safetensors": "-bundle"}[format]


def export_target(trained: TrainedModel, format: str, out: Path) -> Path:
    """Where :func:`export_model` writes for ``out``: ``out`` itself, or the default name inside the existing
    folder ``out`` (an existing bundle is itself the target of a new bundle)."""
    if format == "safetensors" and _is_bundle(out):
        return out
    if out.is_dir():
        return out / default_export_name(trained, format)
    return out


# Where to write


def _check_target(trained: TrainedModel, format: str, target: Path) -> None:
    """:class:`ExportError` if ``target`` cannot take the export, or writing it would destroy something."""
    parent = target.parent
    if not parent.exists():
        raise ExportError(f"Cannot write {target}: the folder {parent} does not exist.")
    if not parent.is_dir():
        raise ExportError(f"Cannot write {target}: {parent} is a file, not a folder.")
    if format == "python" and target.suffix != ".py":
        raise ExportError(f"Cannot write {target}: a Python export is a .py file; give a name ending in .py.")
    paths = [target, _weights_beside(target)] if format == "python" else [target]
    if format == "safetensors":
        if target.exists() and not _is_bundle(target):
            raise ExportError(
                f"{target} already exists and is not a workbench bundle: choose another place to "
                f"write the bundle, or remove it."
            )
    else:
        for path in paths:
            if path.is_dir():
                raise ExportError(f"Cannot write {path}: it is a folder.")
    protected = {(trained.folder / name).resolve() for name in _RUN_FILES}
    for path in paths:
        if path.resolve() in protected and path.exists():
            raise ExportError(f"Writing {path} would overwrite the run's own file; export somewhere else.")


_RUN_FILES = (RUN_FILE, METRICS_FILE, ARCHITECTURE_FILE, WEIGHTS_FILE, EVALUATION_FILE, META_FILE)


def _is_bundle(path: Path) -> bool:
    try:
        return json.loads((path / META_FILE).read_text(encoding="utf-8")).get("format") == BUNDLE_FORMAT
    except (OSError, ValueError, AttributeError, RecursionError):
        return False


def _weights_beside(module: Path) -> Path:
    """The weights file of a Python export: ``x.py`` -> ``x.safetensors``."""
    return module.with_suffix(".safetensors")


def _staging_folder(target: Path) -> Path:
    """A private temporary folder beside ``target``, so that the final rename stays on one file system."""
    try:
        return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".export"))
    except OSError as error:
        raise ExportError(
            f"Cannot write {target}: {error.strerror or error}. Choose a folder you can write to."
        ) from None


def _publish(staging: Path, staged: Path, target: Path, format: str) -> None:
    """Move the checked export from the staging folder onto ``target``, replacing an earlier export there."""
    try:
        if format == "python":
            os.replace(_weights_beside(staged), _weights_beside(target))
            os.replace(staged, target)
        elif format == "safetensors" and target.exists():
            _replace_folder(staging, staged, target)
        else:
            os.replace(staged, target)
    except OSError as error:
        raise ExportError(f"Cannot write {target}: {error.strerror or error}.") from None


def _replace_folder(staging: Path, staged: Path, target: Path) -> None:
    """A folder cannot be renamed onto a full one: move the old bundle into the staging folder first."""
    old = staging / "previous"
    os.replace(target, old)
    try:
        os.replace(staged, target)
    except OSError:
        os.replace(old, target)
        raise


# What to check with


def _check_batch(trained: TrainedModel, check_inputs: torch.Tensor | None, report: Progress) -> _CheckBatch:
    shape = tuple(trained.architecture.input_shape)
    if check_inputs is not None:
        inputs = torch.as_tensor(check_inputs).detach().to("cpu", torch.float32)
        if inputs.ndim != 4 or tuple(inputs.shape[1:]) != shape or len(inputs) == 0:
            raise ExportError(
                f"The check inputs must be a batch of {format_shape(shape)} images, not a tensor of "
                f"shape {tuple(inputs.shape)}."
            )
        return _CheckBatch(inputs, f"{len(inputs)} given inputs")
    report("Loading test images for the check…")
    title = trained.data.title
    try:
        # Never download here: an export must not fetch a dataset behind the user's back.
        dataset = datasets.load(trained.data.name, trained.config.data_dir, download=False, progress=False)
        images = dataset.test_x[:CHECK_COUNT]
        if len(images) and tuple(images.shape[1:]) == shape:
            return _CheckBatch(images, f"{len(images)} test images of {dataset.info.title}")
    except WorkbenchError:
        pass
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn((CHECK_COUNT, *shape), generator=generator)
    return _CheckBatch(inputs, f"{CHECK_COUNT} random inputs, the {title} test images being unavailable")


def _reference(trained: TrainedModel, inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return trained.model(inputs)


def _difference(format: str, actual: torch.Tensor, expected: torch.Tensor) -> float:
    """The largest absolute difference; NaN where only one side is NaN."""
    if actual.shape != expected.shape:
        raise ExportError(
            f"The {_TITLES[format]} export gives outputs of shape {tuple(actual.shape)} instead of "
            f"{tuple(expected.shape)}. Nothing was written."
        )
    both_nan = actual.isnan() & expected.isnan()
    differences = (actual.to(expected.dtype) - expected).abs().masked_fill(both_nan, 0.0)
    return float(differences.max()) if differences.numel() else 0.0


def _show_difference(difference: float) -> str:
    return "0 (identical)" if difference == 0 else f"{difference:.1e}"


# Writing and reading back each format


def _write(format: str, trained: TrainedModel, path: Path, report: Progress) -> None:
    try:
        _WRITERS[format](trained, path, report)
    except OSError as error:
        raise ExportError(f"Cannot write the {_TITLES[format]} export: {error.strerror or error}.") from None


def _read(format: str, path: Path, inputs: torch.Tensor) -> torch.Tensor:
    try:
        return _READERS[format](path, inputs)
    except Exception as error:  # an export its own runtime cannot load or run is as good as none
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise ExportError(
            f"The {_TITLES[format]} export could not be checked: "
            f"{lines[0] if lines else type(error).__name__}. Nothing was written."
        ) from None


def _example(trained: TrainedModel) -> torch.Tensor:
    """What the exporters trace with: two images, since a batch of one would fix the batch size at 1."""
    return torch.zeros((2, *trained.architecture.input_shape))


def _dynamic_batch() -> tuple[dict[int, torch.export.Dim], ...]:
    return ({0: torch.export.Dim("batch")},)


def _refused(format: str, error: BaseException) -> ExportError:
    """The exporter's own reason, first line only: the rest is a stack of internal frames."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[0] if lines else type(error).__name__
    return ExportError(f"This network cannot be exported to {_TITLES[format]}: {reason}")


class _quiet(warnings.catch_warnings):
    """The exporters' warnings concern their own internals, not anything the user can act on."""

    def __enter__(self):
        super().__enter__()
        warnings.simplefilter("ignore")


def _write_onnx(trained: TrainedModel, path: Path, report: Progress) -> None:
    report("Tracing the network…")
    try:
        with _quiet():
            program = torch.onnx.export(
                trained.model,
                (_example(trained),),
                None,
                dynamo=True,
                verbose=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=_dynamic_batch(),
            )
    except Exception as error:  # the exporter fails in many ways, all meaning "this network cannot be exported"
        raise _refused("onnx", error) from None
    report("Writing the ONNX file…")
    with _quiet():
        program.save(path, external_data=False)


def _read_onnx(path: Path, inputs: torch.Tensor) -> torch.Tensor:
    # onnxruntime's telemetry otherwise writes a device id and an event store under ~/.cache/Microsoft, on import;
    # a user who wants it can set the variable to 0.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime  # loaded only when an ONNX file is checked

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings concern graph optimisations
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: inputs.numpy()})[0])


def _write_pt2(trained: TrainedModel, path: Path, report: Progress) -> None:
    report("Tracing the network…")
    try:
        with _quiet():
            program = torch.export.export(trained.model, (_example(trained),), dynamic_shapes=_dynamic_batch())
    except Exception as error:  # as for ONNX: any failure of the tracer means the network cannot be exported
        raise _refused("pt2", error) from None
    report("Writing the program…")
    torch.export.save(program, path)


def _read_pt2(path: Path, inputs: torch.Tensor) -> torch.Tensor:
    # torch.export.load unpickles; it only ever reads here the file just written into our private staging folder.
    with _quiet(), torch.no_grad():
        return torch.export.load(path).module()(inputs)


def _write_bundle(trained: TrainedModel, folder: Path, report: Progress) -> None:
    report("Writing the bundle…")
    folder.mkdir()
    (folder / WEIGHTS_FILE).write_bytes(
        safetensors.torch.save(_weights(trained.model), metadata={"format": BUNDLE_FORMAT})
    )
    (folder / ARCHITECTURE_FILE).write_text(trained.architecture.to_json(), encoding="utf-8")
    (folder / META_FILE).write_text(json.dumps(_bundle_meta(trained), indent=2) + "\n", encoding="utf-8")


def _bundle_meta(trained: TrainedModel) -> dict:
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "name": trained.name,
        "data": trained.data.to_dict(),
        "test_accuracy": trained.test_accuracy,
        "dataset": trained.data.name,
        "exported": _now(),
        "workbench": __version__,
    }


def _read_bundle(folder: Path, inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return load_trained(folder).model(inputs)


def _write_python(trained: TrainedModel, path: Path, report: Progress) -> None:
    report("Writing the Python module…")
    names = layer_attribute_names(trained.architecture)
    path.write_text(python_source(trained, _weights_beside(path).name), encoding="utf-8")
    weights = {_named_key(key, names): tensor for key, tensor in _weights(trained.model).items()}
    _weights_beside(path).write_bytes(safetensors.torch.save(weights))


def _read_python(path: Path, inputs: torch.Tensor) -> torch.Tensor:
    """Import the generated module from its file (not through sys.modules) and run its ``load()``."""
    spec = importlib.util.spec_from_file_location(f"_workbench_export_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.no_grad():
        return module.load()(inputs)


_WRITERS: dict[str, Callable[[TrainedModel, Path, Progress], None]] = {
    "onnx": _write_onnx,
    "pt2": _write_pt2,
    "safetensors": _write_bundle,
    "python": _write_python,
}
_READERS: dict[str, Callable[[Path, torch.Tensor], torch.Tensor]] = {
    "onnx": _read_onnx,
    "pt2": _read_pt2,
    "safetensors": _read_bundle,
    "python": _read_python,
}


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# The Python module

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
    if keyword.iskeyword(name) or hasattr(builtins, name) or name in _MODULE_NAMES:
        name += "Net"
    return name


def python_source(trained: TrainedModel, weights_name: str) -> str:
    """The text of the standalone module of a Python export, whose ``load()`` reads ``weights_name`` beside it."""
    architecture, data = trained.architecture, trained.data
    cls = class_name(architecture)
    names = layer_attribute_names(architecture)
    report = validate(architecture)
    constructors = [
        _constructor(index, layer, row.input_shape)
        for index, (layer, row) in enumerate(zip(architecture.layers, report.layers))
    ]
    accuracy = f"{trained.test_accuracy:.2%}" if trained.test_accuracy is not None else "not measured"
    header = (
        f"{cls}: the network of the workbench run {_quoted(trained.name)}, exported {_now()} by workbench "
        f"{__version__}. Trained on {_plain(data.title)} ({format_shape(data.input_shape)} inputs, "
        f"{len(data.class_names)} classes); test accuracy {accuracy}. Needs only torch and safetensors; "
        f"the trained weights are in {_quoted(weights_name)} beside this file."
    )
    lines = [
        *(f"# {line}" for line in textwrap.wrap(header, _LINE_LENGTH - 2, break_on_hyphens=False)),
        "#",
        "# Inputs: images with pixels scaled to [0, 1], then normalised per channel: (x - MEAN) / STD.",
        "#",
        "# Usage:",
        "#     model = load()          # the trained network, in eval mode",
        "#     logits = model(images)  # images: a float tensor (N, *INPUT_SHAPE), normalised",
        "#     names = [CLASS_NAMES[i] for i in logits.argmax(1)]",
        "",
        "import torch",
        "from safetensors.torch import load_file",
        "from torch import nn",
        "",
        _assignment("CLASS_NAMES", data.class_names),
        _assignment("INPUT_SHAPE", tuple(data.input_shape)),
        _assignment("MEAN", tuple(data.mean)),
        _assignment("STD", tuple(data.std)),
        'WEIGHTS = __file__.removesuffix(".py") + ".safetensors"',
        _assignment("LAYER_NAMES", tuple(names)),
        "",
        "",
        f"class {cls}(nn.Module):",
        f'    """The network {_docstring_text(architecture.name)}: {report.total_parameters:,} parameters.',
        "",
        *(f"    {line}" for line in textwrap.wrap(architecture.summary(), _LINE_LENGTH - 4)),
        '    """',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *(f"        self.{name} = {constructor}" for name, constructor in zip(names, constructors)),
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        *(f"        x = self.{name}(x)" for name in names),
        "        return x",
        "",
        "",
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
    return "\n".join(lines) + "\n"


def _constructor(index: int, layer: Layer, input_shape: tuple[int, ...]) -> str:
    """``nn.Conv2d(1, 16, kernel_size=3, padding=1)``: the layer's torch class with the arguments that differ
    from torch's defaults (the build's own arguments: parameters, fixed ones, the inferred input size)."""
    layer_type = CATALOG[layer.type]
    torch_class = layer_type.torch_class
    if getattr(nn, torch_class.__name__, None) is not torch_class:
        raise ExportError(
            f"This network cannot be exported to Python: layer {index + 1} {layer.type} is not a torch.nn class."
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


def _named_key(key: str, names: list[str]) -> str:
    """``"3.weight"`` -> ``"conv2.weight"``: the same mapping as the generated module's ``_named``."""
    index, _, rest = key.partition(".")
    return f"{names[int(index)]}.{rest}"


def _module_name(name: str) -> str:
    """``name`` as a Python module name: letters, digits and underscores, not starting with a digit."""
    module = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")[:100]
    if not module or module[0].isdigit() or keyword.iskeyword(module):
        module = f"model_{module}".rstrip("_")
    return module


def _assignment(name: str, values: tuple) -> str:
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
