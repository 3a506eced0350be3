"""What a run reports and keeps: its state as it trains, each epoch's metrics, how it ended, and the checkpoint
it can be continued from. Plain data, shared by the engine and its callbacks."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class EpochMetrics:
    """One line of metrics.jsonl.

    ``lr`` is the learning rate at the start of the epoch; ``epoch_seconds`` includes validation,
    ``samples_per_second`` counts training alone. Validation figures are NaN when the
    validation set is empty.
    """

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float
    epoch_seconds: float
    samples_per_second: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainState:
    """Where a run is; the same object is passed to every callback and updated in place."""

    epochs: int
    batches_per_epoch: int
    epoch: int = 0
    batch: int = 0
    batch_loss_value: torch.Tensor | float = math.nan
    """The latest batch's loss as the engine holds it: a 0-d tensor on the run's device, not read back yet, or a
    float. Callbacks that collect every batch's loss keep these and read them together (``read_losses``)."""
    samples_seen: int = 0
    history: list[EpochMetrics] = field(default_factory=list)
    val_probabilities: torch.Tensor | None = None
    """Class probabilities ``(validation items, classes)`` of the latest validation pass, on the run's device."""

    @property
    def batch_loss(self) -> float:
        """The latest batch's loss. On a GPU, reading it waits until the GPU has computed it: a callback that reads
        it at every batch makes the CPU wait for the GPU at every batch."""
        return float(self.batch_loss_value)


@dataclass
class TrainResult:
    """How a run ended. ``status`` is finished, stopped, early-stopped or diverged.

    A stopped run is not evaluated on the test split (a stop during that evaluation ends it too): its test
    figures are NaN and ``test_probabilities`` is None. Otherwise ``test_probabilities`` holds the class
    probabilities ``(test items, classes)`` behind ``test_accuracy``, on the run's device.
    """

    status: str
    message: str
    history: list[EpochMetrics]
    test_loss: float
    test_accuracy: float
    duration_seconds: float
    model: nn.Module
    test_probabilities: torch.Tensor | None = None

    @property
    def best_val_accuracy(self) -> float:
        accuracies = [m.val_accuracy for m in self.history if not math.isnan(m.val_accuracy)]
        return max(accuracies, default=math.nan)


@dataclass
class Checkpoint:
    """Everything needed to continue a run exactly where one of its epochs ended.

    Plain tensors and numbers only, so it can be stored without pickling code (see workbench.core.runs.folders).
    ``scheduler`` holds the state of an epoch-wise schedule; per-batch schedules (cosine,
    one-cycle) are laid out afresh over the epochs a continuation adds.
    """

    epoch: int
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    shuffle_rng: torch.Tensor
    torch_rng: torch.Tensor
    history: list[EpochMetrics]
    best_val_loss: float
    epochs_without_gain: int
    samples_seen: int


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, with an s unless there is one: "1 epoch", "2 epochs", "1,000 images"."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"
