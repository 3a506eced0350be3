"""A trained network read back from its run folder or from a workbench bundle, ready to predict and to be evaluated
again."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch
from torch import nn

from workbench.core.architecture import Architecture, build
from workbench.core.data import datasets
from workbench.core.data.catalog import image_shape
from workbench.core.errors import RunError, WorkbenchError
from workbench.core.runs.folders import (
    ARCHITECTURE_FILE,
    CHECKPOINT_DIR,
    LATEST_FILE,
    RUN_FILE,
    WEIGHTS_FILE,
    checkpoint_file,
    read_run,
    run_file,
)
from workbench.core.runs.metrics import Evaluation, evaluate_model
from workbench.core.training.config import TrainConfig

BUNDLE_FORMAT = "workbench-bundle"
BUNDLE_VERSION = 1
META_FILE = "meta.json"


@dataclass(frozen=True)
class DataDescription:
    """What the network was trained on: its class names, and how its inputs were shaped and normalised."""

    name: str
    title: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_dict(cls, document: dict) -> DataDescription:
        return cls(
            str(document["name"]),
            str(document["title"]),
            tuple(str(name) for name in document["class_names"]),
            image_shape(document["input_shape"]),
            tuple(float(value) for value in document["mean"]),
            tuple(float(value) for value in document["std"]),
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "class_names": list(self.class_names),
            "input_shape": list(self.input_shape),
            "mean": list(self.mean),
            "std": list(self.std),
        }


def _data_of(document: dict, config: TrainConfig, architecture: Architecture) -> DataDescription:
    """The run's own record of its data; runs written before it was recorded fall back to the registry."""
    if isinstance(document.get("data"), dict):
        try:
            return DataDescription.from_dict(document["data"])
        except (KeyError, TypeError, ValueError):
            raise RunError('The run\'s data description ("data" in run.json) is damaged.') from None
    info = datasets.get_info(config.dataset)
    return DataDescription(
        info.name,
        info.title,
        tuple(info.class_names),
        architecture.input_shape,
        tuple(info.mean),
        tuple(info.std),
    )


@dataclass
class TrainedModel:
    """A run's network with its weights, in eval mode on the CPU.

    ``source`` says where the weights came from: the run's final ``model.safetensors``, the
    last checkpoint of a run that never finished (stopped by a crash or ``kill -9``), or an
    exported bundle. A bundle keeps no training settings: its ``config`` is the default one on
    its dataset. ``test_accuracy`` is the one the run measured, None if it never finished.
    """

    folder: Path
    name: str
    architecture: Architecture
    config: TrainConfig
    model: nn.Module
    source: str
    data: DataDescription
    test_accuracy: float | None = None

    @property
    def weights(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().clone() for name, tensor in self.model.state_dict().items()}


def load_trained(folder: str | os.PathLike) -> TrainedModel:
    """The network of the run, or of the workbench bundle (see :mod:`workbench.core.export.formats`), in ``folder``.

    :class:`RunError` saying why it cannot be used. Weights are read through safetensors only;
    nothing is unpickled. Weights that hold NaN or infinite values are refused too (:func:`check_finite`): the
    predictions of a network that diverged would be meaningless.
    """
    folder = Path(folder)
    if not folder.exists():
        raise RunError(f"{folder} does not exist.")
    if folder.is_file():
        raise RunError(
            f"{folder} is a file, not a run folder nor a workbench bundle: give the folder of a run "
            f"or of an exported bundle."
        )
    if not (folder / RUN_FILE).exists() and (folder / META_FILE).exists():
        return _load_bundle(folder)
    if not (folder / RUN_FILE).exists():
        raise RunError(
            f"{folder} is not a run folder nor a workbench bundle: it has neither {RUN_FILE} nor {META_FILE}."
        )
    return _load_run(folder)


def _load_run(folder: Path) -> TrainedModel:
    document = read_run(folder)
    try:
        architecture = Architecture.from_dict(document["architecture"])
        config = TrainConfig.from_dict(document["config"])
    except WorkbenchError as error:
        raise RunError(f"{folder} is damaged: {error}") from None
    path, source = _weights_path(folder)
    model = _model_with_weights(architecture, path)
    data = _data_of(document, config, architecture)
    _check_classes(folder, data, architecture)
    metrics = document.get("metrics")
    accuracy = _fraction(metrics.get("test_accuracy")) if isinstance(metrics, dict) else None
    name = str(document.get("name", folder.name))
    check_finite(model, f"{name} ({path})")
    return TrainedModel(folder, name, architecture, config, model, source, data, accuracy)


def _load_bundle(folder: Path) -> TrainedModel:
    meta = _read_meta(folder)
    try:
        architecture = Architecture.load(folder / ARCHITECTURE_FILE)
    except WorkbenchError as error:
        raise RunError(f"The bundle {folder} is damaged: {error}") from None
    try:
        data = DataDescription.from_dict(meta["data"])
    except (KeyError, TypeError, ValueError):
        raise RunError(
            f"The bundle {folder} is damaged: the data description in its {META_FILE} is incomplete."
        ) from None
    if tuple(data.input_shape) != tuple(architecture.input_shape):
        raise RunError(
            f"The bundle {folder} is damaged: its {META_FILE} describes {data.input_shape} inputs but "
            f"its network takes {architecture.input_shape}."
        )
    model = _model_with_weights(architecture, folder / WEIGHTS_FILE)
    _check_classes(folder, data, architecture)
    named = meta.get("name")
    name = named if isinstance(named, str) and named.strip() else folder.name
    check_finite(model, f"{name} ({folder / WEIGHTS_FILE})")
    return TrainedModel(
        folder,
        name,
        architecture,
        TrainConfig(dataset=data.name),
        model,
        "bundle weights",
        data,
        _fraction(meta.get("test_accuracy")),
    )


def _read_meta(folder: Path) -> dict:
    """The bundle's meta.json; :class:`RunError` if it cannot be read or is not a workbench bundle's."""
    path = folder / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise RunError(f"{path} cannot be read ({reason}).") from None
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        raise RunError(
            f"{folder} is not a run folder nor a workbench bundle: its {META_FILE} is not a workbench "
            f'bundle\'s (its format should be "{BUNDLE_FORMAT}").'
        )
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RunError(f"{path} is damaged: its version {version!r} is not a whole number.")
    if version > BUNDLE_VERSION:
        raise RunError(
            f"The bundle {folder} was written by a newer workbench (version {version}); this one reads "
            f"version {BUNDLE_VERSION}. Please update the workbench."
        )
    return meta


def _model_with_weights(architecture: Architecture, path: Path) -> nn.Module:
    """The built network with the weights of the safetensors file ``path``, in eval mode."""
    try:
        weights = safetensors.torch.load_file(path)
    except Exception as error:  # truncated or foreign files fail inside safetensors in several ways
        raise RunError(f"{path} cannot be read ({str(error).splitlines()[0] if str(error) else 'damaged'}).") from None
    model = build(architecture)
    try:
        model.load_state_dict(weights)
    except RuntimeError:
        raise RunError(f"The weights in {path} do not belong to the architecture '{architecture.name}'.") from None
    return model.eval()


def check_finite(model: nn.Module, name: str) -> None:
    """:class:`RunError` if a parameter or buffer of ``model`` holds NaN or infinite values.

    ``name`` says whose weights these are in the message, e.g. "mlp (runs/mlp/model.safetensors)": "The weights
    of mlp (…) hold NaN or infinite values (in layer 2 Linear): the run diverged, …".
    """
    layers = nonfinite_layers(model)
    if layers:
        raise RunError(
            f"The weights of {name} hold NaN or infinite values (in {_listed(layers)}): the run diverged, "
            f"so its predictions would be meaningless. Train it again with a lower learning rate."
        )


def nonfinite_layers(model: nn.Module) -> list[str]:
    """The layers of ``model`` with a NaN or an infinite value in a parameter or buffer, in order, e.g.
    ``["layer 2 Linear"]`` (numbered from 1 as in the app's network list). Weights on the meta device, which
    hold no values, count as finite."""
    layers: list[str] = []
    for key, tensor in model.state_dict().items():
        if tensor.is_meta or not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        if bool(torch.isfinite(tensor).all()):
            continue
        path = key.rpartition(".")[0]
        kind = type(model.get_submodule(path)).__name__
        layer = f"layer {int(path) + 1} {kind}" if path.isdigit() else f"{path or key} ({kind})"
        if layer not in layers:
            layers.append(layer)
    return layers


def _listed(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _check_classes(folder: Path, data: DataDescription, architecture: Architecture) -> None:
    if len(data.class_names) != architecture.num_classes:
        raise RunError(
            f"{folder} is damaged: {len(data.class_names)} class names for {architecture.num_classes} outputs."
        )


def _fraction(value: object) -> float | None:
    """An accuracy from a JSON document, or None when it is missing or not a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _weights_path(folder: Path) -> tuple[Path, str]:
    """The run's final weights, else its checkpoint's; never a file outside the folder (see :func:`run_file`)."""
    final = folder / WEIGHTS_FILE
    if final.is_file() or final.is_symlink():
        return run_file(folder, WEIGHTS_FILE), "final weights"
    try:
        latest = json.loads(run_file(folder, CHECKPOINT_DIR, LATEST_FILE).read_text(encoding="utf-8"))
        path = run_file(folder, CHECKPOINT_DIR, checkpoint_file(latest["weights"]))
        return path, f"checkpoint of epoch {int(latest['epoch'])}"
    except ValueError as error:
        raise RunError(f"{folder} is damaged: {error}.") from None
    except (OSError, KeyError, TypeError):
        raise RunError(f"{folder} has no trained weights: neither {WEIGHTS_FILE} nor a readable checkpoint.") from None


def evaluate_trained(trained: TrainedModel, data_dir: str | None = None, download: bool = True) -> Evaluation:
    """Score ``trained`` on the test split of the dataset it was trained on (``download``: fetch the dataset if it
    is not here); :class:`RunError` for weights that hold NaN or infinite values (:func:`check_finite`), whose
    scores would mean nothing."""
    check_finite(trained.model, trained.name)
    config = trained.config
    dataset = datasets.load(
        config.dataset,
        data_dir or config.data_dir,
        download=download,
        progress=False,
        image_size=config.image_size,
        channels=config.channels,
        seed=config.seed,
    )
    if tuple(dataset.info.input_shape) != tuple(trained.architecture.input_shape):
        raise RunError(
            f"{trained.name} takes {trained.architecture.input_shape} inputs but {dataset.info.title} "
            f"has {dataset.info.input_shape}."
        )
    return evaluate_model(trained.model, dataset.test_x, dataset.test_y, dataset.info.class_names)
