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
  a run's or a bundle's ``model.safetensors`` (keys numbered by position, ``0.weight``). The module's text is
  generated in python_source.py.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import safetensors.torch
import torch
from torch import nn

from workbench import __version__
from workbench.core.architecture import format_shape
from workbench.core.data import datasets
from workbench.core.errors import ExportError, WorkbenchError
from workbench.core.export.python_source import class_name as class_name  # importers take it from here too
from workbench.core.export.python_source import layer_attribute_names, layer_key, module_name, python_source
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
        return f"{module_name(trained.name)}.py"
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


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters' warnings concern their own internals, not anything the user can act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


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
    if program is None:  # only the legacy TorchScript exporter (dynamo=False) writes without returning a program
        raise ExportError("This network cannot be exported to ONNX: the exporter returned no program.")
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
    weights = {layer_key(key, names): tensor for key, tensor in _weights(trained.model).items()}
    _weights_beside(path).write_bytes(safetensors.torch.save(weights))


def _read_python(path: Path, inputs: torch.Tensor) -> torch.Tensor:
    """Import the generated module from its file (not through sys.modules) and run its ``load()``."""
    spec = importlib.util.spec_from_file_location(f"_workbench_export_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise ExportError(f"{path} cannot be imported as a Python module.")
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
