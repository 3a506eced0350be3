"""What the known datasets are, how datasets are named, and the in-memory form every reader produces.

Shared by the registry (:mod:`workbench.core.data.datasets`) and the image folders
(:mod:`workbench.core.data.image_folders`), so that neither needs the other's internals.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.core.errors import DatasetError


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: its classes, image shape, normalisation, split sizes and where it comes from.

    ``notes`` are sentences for the user about what was left out while reading it (e.g. an image folder's links
    leading outside it), to show beside the dataset; empty for most datasets.
    """

    name: str
    title: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_count: int
    test_count: int
    source: str
    torchvision_class: str | None = None
    pixel_max: int = 255
    apt_package: str | None = None
    notes: tuple[str, ...] = ()


def image_shape(sizes: Iterable[Any]) -> tuple[int, int, int]:
    """``(channels, height, width)`` from three sizes; ``ValueError`` if there are not three."""
    channels, height, width = (int(size) for size in sizes)
    return channels, height, width


_NUMERALS = tuple(str(digit) for digit in range(10))

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "fashion-mnist",
            "Fashion-MNIST",
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
            (1, 28, 28),
            (0.5,),
            (0.5,),
            60_000,
            10_000,
            "idx",
            "FashionMNIST",
            apt_package="dataset-fashion-mnist",
        ),
        DatasetInfo("mnist", "MNIST", _NUMERALS, (1, 28, 28), (0.1307,), (0.3081,), 60_000, 10_000, "idx", "MNIST"),
        DatasetInfo(
            "kmnist",
            "Kuzushiji-MNIST",
            ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
            (1, 28, 28),
            (0.1918,),
            (0.3483,),
            60_000,
            10_000,
            "idx",
            "KMNIST",
        ),
        DatasetInfo(
            "cifar10",
            "CIFAR-10",
            ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
            (3, 32, 32),
            (0.4914, 0.4822, 0.4465),
            (0.2470, 0.2435, 0.2616),
            50_000,
            10_000,
            "cifar",
            "CIFAR10",
        ),
        # Mean and std of the training split's pixels scaled to [0, 1], computed once with numpy.
        DatasetInfo(
            "digits", "Digits", _NUMERALS, (1, 8, 8), (0.3054,), (0.3761,), 1_437, 360, "embedded", pixel_max=16
        ),
    )
}

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
    "batches.meta",
)
DATA_DIR_VARIABLE = "WORKBENCH_DATA_DIR"
FOLDER_PREFIX = "folder:"
SYSTEM_ROOT = Path("/usr/share/datasets")


def dims(shape: tuple[int, ...]) -> str:
    """A shape written as people write it: ``1×28×28``."""
    return "×".join(map(str, shape))


def dataset_names() -> list[str]:
    """The registry keys, in the order the registry lists them."""
    return list(DATASETS)


def is_folder(name: str) -> bool:
    """Whether ``name`` names an image folder (``folder:PATH``) rather than a registered dataset."""
    return isinstance(name, str) and name.startswith(FOLDER_PREFIX)


def folder_name(path: str | os.PathLike) -> str:
    """The dataset name of the image folder at ``path``: ``folder:`` and the folder's absolute, resolved path."""
    return FOLDER_PREFIX + str(Path(path).expanduser().resolve())


def canonical_name(name: str) -> str:
    """``name`` with a folder's path made absolute and resolved (from the current folder); other names as given."""
    if is_folder(name) and name[len(FOLDER_PREFIX) :].strip():
        return folder_name(name[len(FOLDER_PREFIX) :])
    return name


def folder_path(name: str) -> Path:
    """The folder a ``folder:PATH`` dataset name points at; a :class:`DatasetError` if it names none."""
    path = name[len(FOLDER_PREFIX) :].strip() if is_folder(name) else ""
    if not path:
        raise DatasetError(
            f"'{name}' names no folder: write folder:PATH, where PATH holds one sub-folder per "
            f"class, e.g. folder:~/pictures/flowers."
        )
    return Path(canonical_name(name)[len(FOLDER_PREFIX) :])


@dataclass(frozen=True)
class Location:
    """Where a dataset's files were found: the folder holding them (None when embedded) and which root it was."""

    path: Path | None
    origin: str


@dataclass
class LoadedDataset:
    """A dataset in memory: normalised float32 images ``(N, C, H, W)`` and int64 labels, on the CPU."""

    info: DatasetInfo
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    location: Location


def one_line(error: Exception) -> str:
    """The last non-empty line of the error's message: torchvision puts the underlying cause there."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def normalise(info: DatasetInfo, images: np.ndarray) -> torch.Tensor:
    """Pixels as float32 ``(pixel / pixel_max - mean) / std``, per channel."""
    pixels = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    mean = torch.tensor(info.mean).view(1, -1, 1, 1)
    std = torch.tensor(info.std).view(1, -1, 1, 1)
    return pixels.div_(info.pixel_max).sub_(mean).div_(std)


def as_labels(labels: np.ndarray) -> torch.Tensor:
    """Labels as an int64 tensor."""
    return torch.from_numpy(labels.astype(np.int64))
