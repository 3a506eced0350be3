"""A run's data: the training and validation subsets drawn with its seed and the test split, as tensors on one
device; and the architecture fitted to the dataset's images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from workbench.core.architecture import Architecture
from workbench.core.data import datasets
from workbench.core.errors import ConfigError
from workbench.core.training.config import TrainConfig


@dataclass
class SplitData:
    """The tensors of one run: train/validation subsets and the test split, on one device."""

    info: datasets.DatasetInfo
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def to(self, device: torch.device) -> SplitData:
        move = {
            name: getattr(self, name).to(device)
            for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")
        }
        return SplitData(self.info, **move)


def prepare_data(config: TrainConfig, progress: bool = True) -> SplitData:
    """Load the configured dataset (once per process) and draw the run's subsets with its seed.

    An image folder's test split is drawn with the seed too, so the same run always tests on the same images.
    """
    dataset = datasets.load(
        config.dataset,
        config.data_dir,
        progress=progress,
        image_size=config.image_size,
        channels=config.channels,
        seed=config.seed,
    )
    train_size, val_size = config.sizes_for(len(dataset.train_y))
    train_x, train_y, val_x, val_y = datasets.split(dataset, train_size, val_size, config.seed)
    return SplitData(dataset.info, train_x, train_y, val_x, val_y, dataset.test_x, dataset.test_y)


def image_options(config: TrainConfig, info: datasets.DatasetInfo) -> dict[str, Any]:
    """An image folder's size and channels as loaded, so the run records them even where they were left to
    their defaults (a continuation then reads the folder the same way)."""
    if not datasets.is_folder(config.dataset):
        return {}
    channels, size, _ = info.input_shape
    return {"image_size": size, "channels": channels}


def fit_to_dataset(architecture: Architecture, info: datasets.DatasetInfo) -> Architecture:
    """A copy of the architecture that takes the dataset's images.

    The input shape follows the dataset (a preset made for 28×28 also trains on 8×8 digits if its
    layers allow); the number of classes must already agree, since the last layer depends on it.
    """
    if architecture.num_classes != len(info.class_names):
        raise ConfigError(
            f"The architecture '{architecture.name}' classifies {architecture.num_classes} classes but "
            f"{info.title} has {len(info.class_names)}: set num_classes and the last layer's size to "
            f"{len(info.class_names)}."
        )
    fitted = architecture.copy()
    channels, height, width = info.input_shape
    fitted.input_shape = (channels, height, width)
    return fitted
