"""What the window shows, as plain values: the network and where it came from, the gallery's images, the
evaluation on show. The session replaces them whole and emits them; views draw them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch

from workbench.core.architecture import Architecture, build
from workbench.core.data.datasets import DatasetInfo, LoadedDataset, split_indices
from workbench.core.errors import WorkbenchError
from workbench.core.runs.metrics import Evaluation
from workbench.core.training.config import TrainConfig


class NetworkKind(StrEnum):
    """What the network on show is."""

    UNTRAINED = "untrained"
    TRAINING = "training"
    TRAINED = "trained"
    FROM_RUN = "loaded from a run"
    FROM_BUNDLE = "loaded from a bundle"


@dataclass(frozen=True)
class ShownNetwork:
    """The network the gallery and the weights view show, with its weights (None while it does not fit).

    ``run_folder`` is the run whose trained network this is (what File → Export writes), if any.
    """

    kind: NetworkKind
    architecture: Architecture
    model: torch.nn.Module | None
    label: str
    run_folder: Path | None = None

    @property
    def weights(self) -> dict[str, torch.Tensor] | None:
        """The model's weights (not copied), or None."""
        return None if self.model is None else dict(self.model.state_dict())

    @property
    def exportable(self) -> bool:
        """Whether File → Export has something to write: a trained network saved in a run folder."""
        return self.run_folder is not None and self.kind is not NetworkKind.TRAINING


@dataclass(frozen=True)
class GallerySet:
    """Images for the gallery with their labels, the shown network's class probabilities, and a header."""

    images: torch.Tensor
    labels: torch.Tensor
    info: DatasetInfo
    probabilities: np.ndarray | None
    header: str = ""


@dataclass(frozen=True)
class ShownEvaluation:
    """An evaluation on show: its scores (or a function computing them when first looked at), a title, which
    split it scored ("test" or "validation"), and the network and dataset behind it (for a cell's images)."""

    scores: Evaluation | Callable[[], Evaluation | None]
    title: str
    split: str
    model: torch.nn.Module | None = None
    dataset_name: str = ""
    bring_to_front: bool = False  # asked for by the user (Evaluate), not a run's own

    def evaluation(self) -> Evaluation | None:
        """The scores, computed now if they were deferred."""
        return self.scores() if callable(self.scores) else self.scores


def validation_subset(dataset: LoadedDataset, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation images of a run under ``config``; the test images while the sizes do not fit."""
    try:
        _, val = split_indices(dataset, *config.sizes_for(len(dataset.train_y)), config.seed)
    except WorkbenchError:
        return dataset.test_x, dataset.test_y
    return (dataset.train_x[val], dataset.train_y[val]) if len(val) else (dataset.test_x, dataset.test_y)


def meta_model(architecture: Architecture) -> torch.nn.Module:
    """A model without weights, to receive a run's with ``load_state_dict(assign=True)``.

    Built on the meta device, so it draws no random numbers: the training thread's random stream
    must not be disturbed.
    """
    with torch.device("meta"):
        return build(architecture).eval()
