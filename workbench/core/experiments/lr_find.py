"""The learning-rate range test (Smith's, fastai's ``lr_find``) with torch-lr-finder, on the engine's own model,
optimizer, loss and preloaded training tensors.

The learning rate grows exponentially from ``start_lr`` to ``end_lr`` over ``steps`` batches while the loss is
recorded (smoothed exponentially); the test stops early when the loss passes five times its best (it diverged).
The suggestion is torch-lr-finder's: the rate where the smoothed loss falls fastest (its steepest descent, the
first 10 and last 5 points left out). The model and the optimizer are put back as they were afterwards.

torch-lr-finder reads batches from a DataLoader-like iterable: :class:`PreloadedBatches` hands it slices of the
tensors the engine already holds (shuffled with the run's seed), so nothing is decoded per image.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workbench.core.architecture import Architecture
from workbench.core.errors import ConfigError
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer
from workbench.core.training.recipe import make_loss, make_optimizer

START_LR = 1e-7
END_LR = 10.0
STEPS = 100
SKIP_START = 10
SKIP_END = 5
RULE = "the steepest fall of the smoothed loss (torch-lr-finder's suggestion; first 10 and last 5 points skipped)"


class RangeTestStopped(ConfigError):
    """The range test was asked to stop before its end (the window closing, or the user)."""


class PreloadedBatches:
    """Batches ``(images, labels)`` of preloaded tensors, reshuffled at each pass with a seeded generator;
    :class:`RangeTestStopped` at the next batch once ``should_stop`` says so."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        seed: int,
        should_stop: Callable[[], bool] = lambda: False,
    ):
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.should_stop = should_stop

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.labels), generator=self.generator).to(self.labels.device)
        for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
            if self.should_stop():
                raise RangeTestStopped("The learning-rate range test was stopped.")
            index = order[start : start + self.batch_size]
            yield self.images[index], self.labels[index]

    def __len__(self) -> int:
        return len(self.labels) // self.batch_size


@dataclass(frozen=True)
class LearningRateTest:
    """The range test's curve (learning rates and smoothed losses, as recorded) and the rate it suggests."""

    learning_rates: list[float]
    losses: list[float]
    suggested: float
    rule: str = RULE

    @property
    def diverged(self) -> bool:
        """Whether the test stopped early, the loss having run away."""
        return len(self.learning_rates) < STEPS


def find_learning_rate(
    architecture: Architecture,
    config: TrainConfig,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    steps: int = STEPS,
    plot: Path | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> LearningRateTest:
    """Run the range test for ``architecture`` trained under ``config`` (its optimizer, momentum, weight decay,
    loss, batch size, data and seed; the learning rate is what is tested), in float32. ``plot``: write the loss
    against the learning rate (log axis) there as a PNG, the suggestion marked. :class:`ConfigError` for a range
    that is not increasing or too few steps to suggest from; :class:`RangeTestStopped` when ``should_stop`` said
    so (checked before every batch)."""
    return range_test(Trainer(architecture, config, progress=False), start_lr, end_lr, steps, plot, should_stop)


def range_test(
    trainer: Trainer,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    steps: int = STEPS,
    plot: Path | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> LearningRateTest:
    """:func:`find_learning_rate` on a trainer's model, data and settings; its weights are left as they were."""
    from torch_lr_finder import LRFinder, TrainDataLoaderIter

    config = trainer.config
    if not 0 < start_lr < end_lr:
        raise ConfigError(f"The range must rise: start {start_lr:g} and end {end_lr:g} (both above 0).")
    if steps < SKIP_START + SKIP_END + 2:
        raise ConfigError(f"The range test needs at least {SKIP_START + SKIP_END + 2} steps to suggest a rate.")
    model = trainer.model
    optimizer = make_optimizer(model, trainer.config)
    criterion = make_loss(trainer.config.loss, trainer.architecture.num_classes)
    data = trainer.data
    batch_size = min(config.batch_size, len(data.train_y))
    batches = PreloadedBatches(data.train_x, data.train_y, batch_size, config.seed, should_stop)
    finder = LRFinder(model, optimizer, criterion, device=trainer.device)
    with torch.random.fork_rng(devices=[]), contextlib.redirect_stdout(io.StringIO()):
        torch.manual_seed(config.seed)
        finder.range_test(TrainDataLoaderIter(batches), start_lr=start_lr, end_lr=end_lr, num_iter=steps)
    history = {key: [float(value) for value in values] for key, values in finder.history.items()}
    finder.reset()  # the model's weights and the optimizer's state as they were
    suggested = _suggestion(history["lr"], history["loss"], finder, plot)
    return LearningRateTest(history["lr"], history["loss"], suggested)


def _suggestion(rates: list[float], losses: list[float], finder: object, plot: Path | None) -> float:
    if len(rates) < SKIP_START + SKIP_END + 2:
        raise ConfigError(
            f"The loss ran away after {len(rates)} steps, too few to suggest a rate: start the range lower."
        )
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.add_subplot()
    with contextlib.redirect_stdout(io.StringIO()):
        _, suggested = finder.plot(  # type: ignore[attr-defined]
            skip_start=SKIP_START, skip_end=SKIP_END, ax=axes, suggest_lr=True
        )
    if suggested is None or not math.isfinite(suggested):
        window = np.array(losses[SKIP_START:-SKIP_END])
        suggested = rates[SKIP_START + int(np.gradient(window).argmin())]
    if plot is not None:
        axes.set_title(f"Learning-rate range test: suggested {suggested:.2g}")
        axes.set_ylabel("loss (smoothed)")
        figure.tight_layout()
        figure.savefig(plot)
    return float(suggested)
