"""How long a run will take, measured before it starts: a handful of timed batches on the chosen device.

The estimate builds the network as the run would (same device, precision, memory format, optimizer and loss),
trains a few batches of random images of the dataset's shape (the time of a step does not depend on what the
pixels are) and times them, then a few evaluation chunks; it scales those times to the run's epochs, its
validation after each epoch and its test split at the end. Nothing of the run is touched: the random streams are
put back afterwards, so a run seeded the same way trains the same after an estimate as without one.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from workbench.core.architecture import Architecture, build
from workbench.core.data.catalog import DatasetInfo
from workbench.core.training.batches import epoch_batches
from workbench.core.training.config import TrainConfig
from workbench.core.training.devices import choose_precision, resolve_device
from workbench.core.training.engine import wants_channels_last
from workbench.core.training.evaluation import autocast_context, eval_batch
from workbench.core.training.recipe import make_loss, make_optimizer
from workbench.core.training.split_data import fit_to_dataset
from workbench.core.training.state import plural

WARM_UP_BATCHES = 2
"""Steps taken before timing: the first ones pay for allocations and the kernels' set-up."""
TIMED_BATCHES = (3, 12)
"""At least and at most this many steps are timed, taking more while they add up to under :data:`TIMED_SECONDS`."""
TIMED_SECONDS = 0.3


class EstimateStopped(Exception):
    """The estimate was asked to stop (its ``stop`` said so) before it was done."""


@dataclass(frozen=True)
class RunEstimate:
    """How long a run of ``epochs`` epochs should take on ``device_words`` ("this CPU"), in seconds: training,
    validating after each epoch and the test split at the end."""

    seconds: float
    epochs: int
    device_words: str
    seconds_per_batch: float

    def words(self) -> str:
        """E.g. "about 1 min 40 s on this CPU, 6 epochs", "under 1 s on NVIDIA H200, 2 epochs"."""
        return f"{rounded_duration(self.seconds)} on {self.device_words}, {plural(self.epochs, 'epoch')}"


def rounded_duration(seconds: float) -> str:
    """A duration as an estimate says it: "under 1 s", "about 8 s", "about 45 s", "about 1 min 40 s",
    "about 2 h 10 min"."""
    if seconds < 1:
        return "under 1 s"
    if seconds < 10:
        return f"about {round(seconds)} s"
    if seconds < 57.5:
        return f"about {round(seconds / 5) * 5} s"
    if seconds < 3570:
        minutes, rest = divmod(round(seconds / 10) * 10, 60)
        return f"about {minutes} min {rest} s" if rest else f"about {minutes} min"
    hours, minutes = divmod(round(seconds / 600) * 10, 60)
    return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"


def device_words(device: torch.device) -> str:
    """How the user knows ``device``: "this CPU", the GPU's name, "the Apple GPU"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "the Apple GPU"
    return "this CPU"


def estimate_run(
    architecture: Architecture,
    config: TrainConfig,
    info: DatasetInfo,
    *,
    epochs: int | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> RunEstimate:
    """The time a run of ``architecture`` under ``config`` on a dataset described by ``info`` takes, measured.

    ``epochs`` (default: the configuration's) is how many epochs are left to train. ``stop`` is asked between the
    timed steps; when it says so, :class:`EstimateStopped` is raised. Settings the run would refuse raise what the
    run would (:class:`~workbench.core.errors.ConfigError`); a network PyTorch cannot run raises PyTorch's error.
    """
    config.check()
    device = resolve_device(config.device)
    epochs = config.epochs if epochs is None else epochs
    fitted = fit_to_dataset(architecture, info)
    train_size, val_size = config.sizes_for(info.train_count)
    forks = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forks):
        torch.manual_seed(config.seed)
        model = build(fitted).to(device)
        timing = _Timing(model, config, info, device)
        per_batch = timing.train_step_seconds(min(config.batch_size, max(train_size, 1)), stop)
        per_item = timing.eval_item_seconds(stop)
    batches, _ = epoch_batches(train_size, config.batch_size, 1, model)
    training = per_batch * batches  # a last, smaller batch costs about as much as a full one on a small network
    scoring = per_item * (val_size * epochs + info.test_count)
    return RunEstimate(training * epochs + scoring, epochs, device_words(device), per_batch)


class _Timing:
    """The run's model, optimizer and loss on random images, stepped and timed."""

    def __init__(self, model: nn.Module, config: TrainConfig, info: DatasetInfo, device: torch.device):
        self.model, self.device, self.info = model, device, info
        self.precision = choose_precision(config.mixed_precision, device).dtype
        self.channels_last = wants_channels_last(model, device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(model, config)
        self.loss_fn = make_loss(config.loss, len(info.class_names))

    def _images(self, count: int) -> torch.Tensor:
        images = torch.randn(count, *self.info.input_shape, device=self.device)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def train_step_seconds(self, batch: int, stop: Callable[[], bool]) -> float:
        """The median time of one optimiser step on a batch of ``batch`` images."""
        images = self._images(batch)
        labels = torch.randint(len(self.info.class_names), (batch,), device=self.device)
        self.model.train()
        times: list[float] = []
        started = time.perf_counter()
        steps = 0
        while steps < WARM_UP_BATCHES + TIMED_BATCHES[0] or (
            steps < WARM_UP_BATCHES + TIMED_BATCHES[1] and time.perf_counter() - started < TIMED_SECONDS
        ):
            if stop():
                raise EstimateStopped
            step_started = time.perf_counter()
            with autocast_context(self.device, self.precision):
                loss = self.loss_fn(self.model(images), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            _synchronize(self.device)
            steps += 1
            if steps == WARM_UP_BATCHES:
                started = time.perf_counter()
            elif steps > WARM_UP_BATCHES:
                times.append(time.perf_counter() - step_started)
        return statistics.median(times)

    def eval_item_seconds(self, stop: Callable[[], bool]) -> float:
        """The time to score one image, from the median of a few chunks of the size the run scores in."""
        chunk = eval_batch(self.model, self.device)
        images = self._images(chunk)
        self.model.eval()
        times: list[float] = []
        with torch.no_grad(), autocast_context(self.device, self.precision):
            for _ in range(3):
                if stop():
                    raise EstimateStopped
                started = time.perf_counter()
                self.model(images)
                _synchronize(self.device)
                times.append(time.perf_counter() - started)
        return min(times) / chunk


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
