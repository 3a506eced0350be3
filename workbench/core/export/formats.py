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

An export never replaces a file the workbench did not write (:func:`foreign_files`), unless asked to with
``force``: each format carries a mark by which a later export recognises it as the workbench's own (the
Python file's first line :data:`~workbench.core.export.python_source.MARK_LINE`, its weights' safetensors
metadata ``{"workbench-export": "python"}``, the ONNX model's ``metadata_props`` entry ``workbench-export:
onnx``, the pt2 archive's extra file ``workbench-export``, a bundle's ``meta.json`` and nothing but its three
files). Every file is made in memory first and written from Python (:func:`~workbench.core.files.write_new_file`),
so a full disk is an :class:`ExportError` saying how much room there is and how much the export needs, never a
crash inside an exporter, and nothing is left behind. A network whose weights hold NaN or infinite values is
refused (:func:`~workbench.core.runs.trained.check_finite`), and outputs that are not finite are never called
identical.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import io
import json
import math
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
from workbench.core.export.marks import EXPORT_MARK, is_bundle, is_own_export
from workbench.core.export.python_source import class_name as class_name  # importers take it from here too
from workbench.core.export.python_source import layer_attribute_names, layer_key, module_name, python_source
from workbench.core.files import write_new_file
from workbench.core.runs.folders import ARCHITECTURE_FILE, EVALUATION_FILE, METRICS_FILE, RUN_FILE, WEIGHTS_FILE
from workbench.core.runs.trained import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    META_FILE,
    TrainedModel,
    check_finite,
    load_trained,
)

FORMATS = ("onnx", "pt2", "safetensors", "python")
TOLERANCE = 1e-4
CHECK_COUNT = 64
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

Progress = Callable[[str], None]
_Files = list[tuple[Path, bytes]]  # what a format's writer makes in memory: each file's path and contents

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


class ForeignFileError(ExportError):
    """An export would replace files the workbench did not write (``paths``); nothing was written."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        named = " and ".join(str(path) for path in paths)
        one = len(paths) == 1
        super().__init__(
            f"{named} {'exists' if one else 'exist'} and {'was' if one else 'were'} not written by the "
            f"workbench; use --force to replace {'it' if one else 'them'}, or export under another name. "
            f"Nothing was written."
        )


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
    force: bool = False,
) -> ExportResult:
    """Export ``trained`` in ``format`` (one of :data:`FORMATS`) to ``out``, and check the export.

    ``out`` is the file (the folder of a bundle) to write, or an existing folder to write the default name
    into (:func:`default_export_name`). ``progress`` receives short stage messages ("Tracing the network…").
    The export is reloaded and its outputs compared with the PyTorch model's on ``check_inputs`` (a batch of
    normalised images), by default the first 64 test images of the network's dataset, or seeded random inputs
    when they cannot be loaded. :class:`ExportError` saying why for an unknown format, a target that cannot be
    written, a full disk, a network the exporter refuses, weights or outputs that are not finite, or outputs
    that differ by more than :data:`TOLERANCE`; nothing is then left at the target, and what was there before
    is intact. An existing target the workbench did not write (:func:`foreign_files`) is refused with
    :class:`ForeignFileError` unless ``force`` is True; an earlier export is replaced.
    """
    if format not in FORMATS:
        raise ExportError(f"Unknown export format '{format}'; the formats are {', '.join(FORMATS)}.")
    report = progress or (lambda stage: None)
    target = export_target(trained, format, Path(out))
    _check_target(trained, format, target)
    if not force:
        _refuse_foreign(format, target)
    check_finite(trained.model, trained.name)
    batch = _check_batch(trained, check_inputs, report)
    staging = _staging_folder(trained, target)
    try:
        staged = staging / target.name
        _write(format, trained, staged, target, report)
        report(_CHECKING[format])
        difference = _difference(
            format, _read(format, staged, batch.inputs), _reference(trained, batch.inputs), batch.description
        )
        if not difference <= TOLERANCE:
            raise ExportError(
                f"The {_TITLES[format]} export is not faithful: its outputs differ from the PyTorch "
                f"model's by up to {difference:.1e} on {batch.description}, more than the "
                f"{TOLERANCE:g} allowed. Nothing was written."
            )
        if not force:
            _refuse_foreign(format, target)  # again: a file may have appeared there while the export was made
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


def foreign_files(trained: TrainedModel, format: str, out: str | os.PathLike) -> list[Path]:
    """The existing files (or the folder, for a bundle) that exporting ``trained`` as ``format`` to ``out``
    would replace although the workbench did not write them; empty when the export replaces nothing, or only
    earlier exports. :func:`export_model` refuses to replace them unless it is given ``force``."""
    if format not in FORMATS:
        raise ExportError(f"Unknown export format '{format}'; the formats are {', '.join(FORMATS)}.")
    return _foreign(format, export_target(trained, format, Path(out)))


def export_target(trained: TrainedModel, format: str, out: Path) -> Path:
    """Where :func:`export_model` writes for ``out``: ``out`` itself, or the default name inside the existing
    folder ``out`` (an existing bundle is itself the target of a new bundle)."""
    if format == "safetensors" and is_bundle(out):
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
    paths = _replaced(format, target)
    if format != "safetensors":
        for path in paths:
            if path.is_dir():
                raise ExportError(f"Cannot write {path}: it is a folder.")
    protected = {(trained.folder / name).resolve() for name in _RUN_FILES}
    for path in paths:
        if path.resolve() in protected and path.exists():
            raise ExportError(f"Writing {path} would overwrite the run's own file; export somewhere else.")
    run = trained.folder.resolve()
    if target.is_dir() and run.is_relative_to(target.resolve()) and not (run == target.resolve() and is_bundle(run)):
        raise ExportError(
            f"Writing {target} would replace the folder of the run being exported; export somewhere else."
        )


_RUN_FILES = (RUN_FILE, METRICS_FILE, ARCHITECTURE_FILE, WEIGHTS_FILE, EVALUATION_FILE, META_FILE)


def _replaced(format: str, target: Path) -> list[Path]:
    """What an export to ``target`` writes: the Python file and its weights, or the one file or folder."""
    return [target, _weights_beside(target)] if format == "python" else [target]


def _foreign(format: str, target: Path) -> list[Path]:
    return [path for path in _replaced(format, target) if _exists(path) and not is_own_export(path)]


def _refuse_foreign(format: str, target: Path) -> None:
    foreign = _foreign(format, target)
    if foreign:
        raise ForeignFileError(foreign)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()  # a dangling link is replaced as well


def _weights_beside(module: Path) -> Path:
    """The weights file of a Python export: ``x.py`` -> ``x.safetensors``."""
    return module.with_suffix(".safetensors")


def _staging_folder(trained: TrainedModel, target: Path) -> Path:
    """A private temporary folder beside ``target``, so that the final rename stays on one file system."""
    try:
        return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".export"))
    except OSError as error:
        if _is_disk_full(error):
            weights = sum(tensor.numel() * tensor.element_size() for tensor in trained.model.state_dict().values())
            raise _disk_full(target, weights) from None
        raise ExportError(
            f"Cannot write {target}: {error.strerror or error}. Choose a folder you can write to."
        ) from None


def _is_disk_full(error: OSError) -> bool:
    return error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _disk_full(target: Path, needed: int) -> ExportError:
    """The disk (or the user's quota) has no room for an export of ``needed`` bytes at ``target``."""
    folder = target.parent.absolute()
    try:
        free = f"{_size(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = "no room"
    return ExportError(
        f"Cannot write {target}: the disk is full ({free} in {folder}); the export needs about {_size(needed)}. "
        f"Free some space or export to another disk. Nothing was written."
    )


def _size(count: int) -> str:
    """``count`` bytes for a reader: "12 kB", "3.4 MB", "1.2 GB" (kilobytes rounded up, so never "0 kB" for
    something)."""
    if count >= 10**9:
        return f"{count / 10**9:.1f} GB"
    if count >= 10**6:
        return f"{count / 10**6:.1f} MB"
    return f"{math.ceil(count / 10**3)} kB"


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


def _difference(format: str, actual: torch.Tensor, expected: torch.Tensor, inputs: str) -> float:
    """The largest absolute difference between the export's outputs and the model's on ``inputs`` (their
    description). Outputs that are not finite on either side cannot be compared: :class:`ExportError`, never a
    difference of 0."""
    if actual.shape != expected.shape:
        raise ExportError(
            f"The {_TITLES[format]} export gives outputs of shape {tuple(actual.shape)} instead of "
            f"{tuple(expected.shape)}. Nothing was written."
        )
    if not bool(torch.isfinite(expected).all()):
        raise ExportError(
            f"The network's own outputs on {inputs} hold NaN or infinite values, so its {_TITLES[format]} "
            f"export cannot be checked: its weights are too large (the run diverged). Train it again with a "
            f"lower learning rate. Nothing was written."
        )
    if not bool(torch.isfinite(actual).all()):
        raise ExportError(
            f"The {_TITLES[format]} export gives NaN or infinite outputs on {inputs}, where the PyTorch "
            f"model's are finite. Nothing was written."
        )
    differences = (actual.to(expected.dtype) - expected).abs()
    return float(differences.max()) if differences.numel() else 0.0


def _show_difference(difference: float) -> str:
    return "0 (identical)" if difference == 0 else f"{difference:.1e}"


# Writing and reading back each format


def _write(format: str, trained: TrainedModel, staged: Path, target: Path, report: Progress) -> None:
    """Make the export's files in memory, then write them at ``staged`` (in the staging folder), if the disk
    has room for them; a full disk is an :class:`ExportError` (its partial files are removed with the staging
    folder)."""
    files = _WRITERS[format](trained, staged, report)
    needed = sum(len(data) for _, data in files)
    try:
        if shutil.disk_usage(staged.parent).free < needed:
            raise _disk_full(target, needed)
    except OSError:
        pass  # the room cannot be measured here: writing will tell
    try:
        for path, data in files:
            path.parent.mkdir(exist_ok=True)
            write_new_file(path, data)
    except OSError as error:
        if _is_disk_full(error):
            raise _disk_full(target, needed) from None
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


def _write_onnx(trained: TrainedModel, path: Path, report: Progress) -> _Files:
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
    program.model.metadata_props[EXPORT_MARK] = "onnx"
    try:
        with _quiet():
            data = program.model_proto.SerializeToString()
    except ValueError as error:  # protobuf refuses messages over 2 GB
        raise ExportError(f"This network cannot be exported to ONNX as one file: {error}") from None
    return [(path, data)]


def _read_onnx(path: Path, inputs: torch.Tensor) -> torch.Tensor:
    # onnxruntime's telemetry otherwise writes a device id and an event store under ~/.cache/Microsoft, on import;
    # a user who wants it can set the variable to 0.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime  # loaded only when an ONNX file is checked

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings concern graph optimisations
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: inputs.numpy()})[0])


def _write_pt2(trained: TrainedModel, path: Path, report: Progress) -> _Files:
    report("Tracing the network…")
    try:
        with _quiet():
            program = torch.export.export(trained.model, (_example(trained),), dynamic_shapes=_dynamic_batch())
    except Exception as error:  # as for ONNX: any failure of the tracer means the network cannot be exported
        raise _refused("pt2", error) from None
    report("Writing the program…")
    # Into memory: torch's own file writer aborts the interpreter on a full disk (a C++ c10::Error).
    buffer = io.BytesIO()
    mark = json.dumps({"format": "pt2", "workbench": __version__})
    with _quiet():
        torch.export.save(program, buffer, extra_files={EXPORT_MARK: mark})
    return [(path, buffer.getvalue())]


def _read_pt2(path: Path, inputs: torch.Tensor) -> torch.Tensor:
    # torch.export.load unpickles; it only ever reads here the file just written into our private staging folder.
    with _quiet(), torch.no_grad():
        return torch.export.load(path).module()(inputs)


def _write_bundle(trained: TrainedModel, folder: Path, report: Progress) -> _Files:
    report("Writing the bundle…")
    return [
        (folder / WEIGHTS_FILE, safetensors.torch.save(_weights(trained.model), metadata={"format": BUNDLE_FORMAT})),
        (folder / ARCHITECTURE_FILE, trained.architecture.to_json().encode("utf-8")),
        (folder / META_FILE, (json.dumps(_bundle_meta(trained), indent=2) + "\n").encode("utf-8")),
    ]


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


def _write_python(trained: TrainedModel, path: Path, report: Progress) -> _Files:
    report("Writing the Python module…")
    names = layer_attribute_names(trained.architecture)
    source = python_source(trained, _weights_beside(path).name)
    weights = {layer_key(key, names): tensor for key, tensor in _weights(trained.model).items()}
    return [
        (path, source.encode("utf-8")),
        (_weights_beside(path), safetensors.torch.save(weights, metadata={EXPORT_MARK: "python"})),
    ]


def _read_python(path: Path, inputs: torch.Tensor) -> torch.Tensor:
    """Import the generated module from its file (not through sys.modules) and run its ``load()``."""
    spec = importlib.util.spec_from_file_location(f"_workbench_export_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise ExportError(f"{path} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.no_grad():
        return module.load()(inputs)


_WRITERS: dict[str, Callable[[TrainedModel, Path, Progress], _Files]] = {
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
