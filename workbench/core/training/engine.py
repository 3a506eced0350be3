"""The training engine: trains an architecture on preloaded tensors and reports through callbacks.

A :class:`Trainer` owns one run. It loads nothing per sample: the dataset sits in tensors on the
training device and each batch is an index into them. Listeners subclass :class:`Callback`
(batch end, epoch end, train end); :meth:`Trainer.pause`, :meth:`Trainer.resume` and
:meth:`Trainer.stop` may be called from any thread and act at the next batch boundary.

On a CUDA GPU the forward passes run under bfloat16 autocast where the GPU supports it and convolutional
networks train in the channels-last memory format; ``config.compile`` adds ``torch.compile``. With a
:class:`~workbench.core.training.distributed.Cluster`, the run is one rank of a multi-process run (see distributed.py).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional

from workbench.core.architecture import Architecture, build
from workbench.core.data import datasets
from workbench.core.errors import ConfigError, TrainingError, WorkbenchError
from workbench.core.training.config import TrainConfig
from workbench.core.training.devices import autocast_dtype, resolve_device
from workbench.core.training.loss_watch import LossWatch

if TYPE_CHECKING:
    from workbench.core.training.distributed import Cluster

EVAL_BATCH = 4096


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


def _image_options(config: TrainConfig, info: datasets.DatasetInfo) -> dict[str, int]:
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
    fitted.input_shape = tuple(info.input_shape)
    return fitted


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

    def to_dict(self) -> dict:
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
    """How a run ended. ``status`` is finished, stopped, early-stopped or diverged."""

    status: str
    message: str
    history: list[EpochMetrics]
    test_loss: float
    test_accuracy: float
    duration_seconds: float
    model: nn.Module

    @property
    def best_val_accuracy(self) -> float:
        accuracies = [m.val_accuracy for m in self.history if not math.isnan(m.val_accuracy)]
        return max(accuracies, default=math.nan)


@dataclass
class Checkpoint:
    """Everything needed to continue a run exactly where one of its epochs ended.

    Plain tensors and numbers only, so it can be stored without pickling code (see runs.py).
    ``scheduler`` holds the state of an epoch-wise schedule; per-batch schedules (cosine,
    one-cycle) are laid out afresh over the epochs a continuation adds.
    """

    epoch: int
    weights: dict[str, torch.Tensor]
    optimizer: dict
    scheduler: dict | None
    shuffle_rng: torch.Tensor
    torch_rng: torch.Tensor
    history: list[EpochMetrics]
    best_val_loss: float
    epochs_without_gain: int
    samples_seen: int


class Callback:
    """Base class of everything that listens to a run; override the events you need.

    Callbacks run on the training thread, between batches: keep them quick.
    """

    def on_train_start(self, trainer: Trainer, state: TrainState) -> None:
        """Before the first batch; the model is built and on its device."""

    def on_batch_end(self, trainer: Trainer, state: TrainState) -> None:
        """After each optimiser step; ``state.batch_loss`` holds that batch's loss."""

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: EpochMetrics) -> None:
        """After each full epoch and its validation."""

    def on_train_end(self, trainer: Trainer, state: TrainState, result: TrainResult) -> None:
        """Once, however the run ended (finished, stopped, early-stopped, diverged)."""

    def on_train_failed(self, trainer: Trainer, state: TrainState, message: str) -> None:
        """Once, instead of ``on_train_end``, when the run breaks off with an exception (e.g. the GPU ran out of
        memory); ``message`` says why, for the user. The exception goes on to the caller of :meth:`Trainer.run`."""

    def on_notice(self, trainer: Trainer, message: str) -> None:
        """Something the user should know that does not stop the run (e.g. torch.compile failed: training
        goes on without it). The same messages collect in :attr:`Trainer.notices`."""


class Trainer:
    """One training run of ``architecture`` under ``config``.

    ``data`` may be given to share loaded tensors between runs; otherwise the configured dataset
    is loaded. The model is built, seeded and moved to the device at construction, so a bad
    architecture or device is reported before anything starts. With ``resume``, the run goes on
    from that checkpoint's epoch up to ``config.epochs``.

    ``cluster`` makes this trainer one rank of a multi-process run, on the cluster's device.
    ``channels_last`` (None: automatic, i.e. for convolutional networks on CUDA) trains in that memory format.
    ``precision`` is the autocast dtype of the forward passes (None: float32), ``notices`` what the user
    should know about the run that did not stop it.
    """

    def __init__(
        self,
        architecture: Architecture,
        config: TrainConfig,
        data: SplitData | None = None,
        callbacks: list[Callback] | tuple[Callback, ...] = (),
        progress: bool = True,
        resume: Checkpoint | None = None,
        cluster: Cluster | None = None,
        channels_last: bool | None = None,
    ):
        config.check()
        self.cluster = cluster
        if cluster is not None:
            cluster.check_batch(config.batch_size)
        self.device = cluster.device if cluster is not None else resolve_device(config.device)
        self.precision = autocast_dtype(config.mixed_precision, self.device)
        if data is None:

            def load() -> SplitData:
                return prepare_data(config, progress=progress)

            data = cluster.local_first(load) if cluster is not None else load()
        self.config = dataclasses.replace(
            config, train_size=len(data.train_y), val_size=len(data.val_y), **_image_options(config, data.info)
        )
        self.architecture = fit_to_dataset(architecture, data.info)
        self.data = data.to(self.device)
        torch.manual_seed(config.seed)
        self.model = build(self.architecture).to(self.device)
        self.channels_last = wants_channels_last(self.model, self.device) if channels_last is None else channels_last
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.resume_from = resume
        if resume is not None:
            self.model.load_state_dict(resume.weights)
        self.callbacks = list(callbacks)
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler = None
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self.best_val_loss, self.epochs_without_gain = math.inf, 0
        self._running = threading.Event()
        self._running.set()
        self._stop_requested = threading.Event()
        self._stop_agreed = False
        self.notices: list[str] = []
        self._eager_model: nn.Module | None = None
        self._train_model: nn.Module | None = None
        self._compiled_sizes: set[int] = set()

    @property
    def is_main(self) -> bool:
        """Whether this trainer reports the run: the only one, or rank 0 of a multi-process run."""
        return self.cluster is None or self.cluster.is_main

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context the run's forward passes go in: bfloat16 autocast under mixed precision, else none."""
        return autocast_context(self.device, self.precision)

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        """Hold the run at the next batch boundary until :meth:`resume` or :meth:`stop`."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        """End the run after the current batch; the run still evaluates and reports its end."""
        self._stop_requested.set()
        self._running.set()

    def run(self) -> TrainResult:
        """Train for the configured epochs (or until stopped) and evaluate on the test split.

        An exception that breaks the run off reaches the callbacks' ``on_train_failed`` first; the GPU running
        out of memory, or losing the other processes of a multi-process run, then raises a
        :class:`TrainingError` with a message for the user.
        """
        state = TrainState(
            epochs=self.config.epochs, batches_per_epoch=math.ceil(len(self.data.train_y) / self.config.batch_size)
        )
        try:
            return self._run(state)
        except Exception as error:
            message, replacement = self._failure(error)
            for callback in self.callbacks:
                callback.on_train_failed(self, state, message)
            if replacement is None:
                raise
            raise replacement from error

    def _failure(self, error: Exception) -> tuple[str, WorkbenchError | None]:
        """What to tell the user about ``error``, and the error to raise instead of it (None: itself).

        Losing the other processes of a multi-process run is a :class:`TrainingError` already (see
        ``Cluster.exchanging``)."""
        if isinstance(error, torch.cuda.OutOfMemoryError):
            message = (
                f"The GPU ran out of memory: try a smaller batch size (this run's is "
                f"{self.config.batch_size}) or a smaller network."
            )
            return message, TrainingError(message)
        if isinstance(error, WorkbenchError):
            return str(error), None
        return f"The run failed unexpectedly: {type(error).__name__}: {_first_line(error)}", None

    def _run(self, state: TrainState) -> TrainResult:
        config, data, model = self.config, self.data, self.model
        started = time.perf_counter()
        first_epoch = self._restore(state) if self.resume_from is not None else 1
        if self.cluster is not None and self.cluster.rank > 0:
            # a stream of its own for dropout, drawn from rank 0's (which the checkpoints hold, unchanged)
            torch.manual_seed(int(torch.randint(2**62, ())) + self.cluster.rank)
        if self.optimizer is None:
            self.optimizer = make_optimizer(model, config)
        optimizer = self.optimizer
        self.scheduler, per_batch = make_scheduler(
            optimizer, config, state.batches_per_epoch, config.epochs - first_epoch + 1
        )
        if self.resume_from is not None and self.resume_from.scheduler is not None and not per_batch:
            self.scheduler.load_state_dict(self.resume_from.scheduler)
        scheduler = self.scheduler
        loss_fn = make_loss(config.loss, len(data.info.class_names))
        self._prepare_training_model()
        last_good = _snapshot(model)
        status, message = "finished", f"Trained {config.epochs} epochs."
        for callback in self.callbacks:
            callback.on_train_start(self, state)

        for epoch in range(first_epoch, config.epochs + 1):
            state.epoch, state.batch = epoch, 0
            epoch_started = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            epoch_run = self._train_epoch(state, optimizer, scheduler if per_batch else None, loss_fn, self.shuffle)
            if epoch_run.diverged:
                model.load_state_dict(last_good)
                batch, loss = epoch_run.diverged
                status, message = "diverged", _divergence_message(loss, epoch, batch, config.lr)
                break
            if epoch_run.interrupted:
                status, message = "stopped", f"Stopped by the user during epoch {epoch}."
                break
            if scheduler is not None and not per_batch:
                scheduler.step()
            val_loss, val_accuracy, state.val_probabilities = self._score(data.val_x, data.val_y, loss_fn)
            elapsed = time.perf_counter() - epoch_started - epoch_run.paused_seconds
            train_loss = float(epoch_run.loss_sum) / epoch_run.seen
            metrics = EpochMetrics(
                epoch, train_loss, val_loss, val_accuracy, lr, elapsed, epoch_run.seen / epoch_run.seconds
            )
            state.history.append(metrics)
            last_good = _snapshot(model)
            if val_loss < self.best_val_loss:
                self.best_val_loss, self.epochs_without_gain = val_loss, 0
            else:
                self.epochs_without_gain += 1
            for callback in self.callbacks:
                callback.on_epoch_end(self, state, metrics)
            if config.early_stopping and self.epochs_without_gain >= config.early_stopping and epoch < config.epochs:
                status = "early-stopped"
                message = (
                    f"Stopped early after epoch {epoch}: the validation loss has not improved for "
                    f"{config.early_stopping} epochs."
                )
                break

        test_loss, test_accuracy, _ = self._score(data.test_x, data.test_y, loss_fn)
        result = TrainResult(
            status, message, list(state.history), test_loss, test_accuracy, time.perf_counter() - started, model
        )
        for callback in self.callbacks:
            callback.on_train_end(self, state, result)
        return result

    def _score(self, inputs: torch.Tensor, targets: torch.Tensor, loss_fn) -> tuple[float, float, torch.Tensor]:
        """:func:`score` of the model; in a multi-process run, all ranks evaluate rank 0's model and report
        rank 0's figures, so that they take the same decisions on them."""
        if self.cluster is None:
            return score(self.model, inputs, targets, loss_fn, precision=self.precision)
        self.cluster.sync_buffers(self.model)
        loss, accuracy, probabilities = score(self.model, inputs, targets, loss_fn, precision=self.precision)
        loss, accuracy = self.cluster.from_main(loss, accuracy)
        return loss, accuracy, probabilities

    def _prepare_training_model(self) -> None:
        """Set up the module the training batches go through: the model, under DDP in a multi-process run,
        compiled if the config asks (a failure to compile is a notice, and the run goes on eager)."""
        if self._train_model is not None:
            return
        self._eager_model = self.cluster.wrap(self.model) if self.cluster is not None else self.model
        self._train_model = self._eager_model
        if self.config.compile:
            try:
                self._train_model = torch.compile(self._eager_model)
            except Exception as error:  # torch.compile refuses some platforms and Python versions outright
                self._notice(_compile_failed(error))

    def _notice(self, message: str) -> None:
        self.notices.append(message)
        for callback in self.callbacks:
            callback.on_notice(self, message)

    def checkpoint(self, state: TrainState) -> Checkpoint:
        """The run as it stands at the end of ``state.epoch`` (call from ``on_epoch_end``)."""
        epoch_wise = self.scheduler is not None and self.config.schedule == "step"
        return Checkpoint(
            epoch=state.epoch,
            weights=_snapshot(self.model, "cpu"),
            optimizer=copy.deepcopy(self.optimizer.state_dict()),  # detached from the live optimizer
            scheduler=self.scheduler.state_dict() if epoch_wise else None,
            shuffle_rng=self.shuffle.get_state(),
            torch_rng=torch.get_rng_state(),
            history=list(state.history),
            best_val_loss=self.best_val_loss,
            epochs_without_gain=self.epochs_without_gain,
            samples_seen=state.samples_seen,
        )

    def _restore(self, state: TrainState) -> int:
        """Take up the checkpoint's optimizer, random streams and history; the first epoch to train."""
        resume = self.resume_from
        self.optimizer = make_optimizer(self.model, self.config)
        load_optimizer_state(self.optimizer, resume.optimizer)
        self.shuffle.set_state(resume.shuffle_rng)
        torch.set_rng_state(resume.torch_rng)
        state.history = list(resume.history)
        state.samples_seen = resume.samples_seen
        self.best_val_loss, self.epochs_without_gain = resume.best_val_loss, resume.epochs_without_gain
        return resume.epoch + 1

    def _train_epoch(
        self, state: TrainState, optimizer, batch_scheduler, loss_fn, shuffle: torch.Generator
    ) -> _EpochRun:
        """One pass over the shuffled training subset, batch by batch, honouring pause and stop."""
        data, batch_size = self.data, self.config.batch_size
        epoch_run = _EpochRun(loss_sum=torch.zeros((), device=self.device))  # summed where the losses are
        started = time.perf_counter()
        order = torch.randperm(len(data.train_y), generator=shuffle).to(self.device)
        watch = LossWatch(self.device)
        self.model.train()
        for batch in range(state.batches_per_epoch):
            if not self._running.is_set():
                wait_started = time.perf_counter()
                self._running.wait()
                epoch_run.paused_seconds += time.perf_counter() - wait_started
            if self._stopping():
                epoch_run.interrupted = True
                break
            index = order[batch * batch_size : (batch + 1) * batch_size]
            if self._train_model is not self._eager_model and len(index) not in self._compiled_sizes:
                loss = self._compiling_step(index, optimizer, loss_fn)
            else:
                loss = self._step(index, optimizer, loss_fn)
            epoch_run.diverged = watch.add(batch + 1, loss)
            if epoch_run.diverged:
                break
            if batch_scheduler is not None:
                batch_scheduler.step()
            epoch_run.loss_sum = epoch_run.loss_sum + loss * len(index)
            epoch_run.seen += len(index)
            state.batch, state.batch_loss_value = batch + 1, loss
            state.samples_seen += len(index)
            for callback in self.callbacks:
                callback.on_batch_end(self, state)
        epoch_run.diverged = epoch_run.diverged or watch.settle()
        epoch_run.seconds = time.perf_counter() - started - epoch_run.paused_seconds
        return epoch_run

    def _stopping(self) -> bool:
        """Whether to stop before the next batch; several processes stop together, at the batch after the one
        in which any of them was asked to."""
        return self._stop_agreed if self.cluster is not None else self._stop_requested.is_set()

    def _step(self, index: torch.Tensor, optimizer: torch.optim.Optimizer, loss_fn) -> torch.Tensor | float:
        """One optimiser step on the training batch ``index``; the batch's loss over the whole (global) batch, as a
        detached tensor not read back from the device yet, or (multi-process) a float.

        A non-finite loss still takes its step: the run notices it (see :class:`LossWatch`) and puts back the
        weights of the last good epoch.
        """
        loss, value = self._batch_loss(index, loss_fn)
        optimizer.zero_grad(set_to_none=True)
        with self.cluster.exchanging() if self.cluster is not None else contextlib.nullcontext():
            loss.backward()  # DDP exchanges the gradients here
        optimizer.step()
        return value

    def _batch_loss(self, index: torch.Tensor, loss_fn) -> tuple[torch.Tensor, torch.Tensor | float]:
        """The loss to back-propagate for the batch ``index``, and its value over the whole (global) batch."""
        images, labels = self.data.train_x, self.data.train_y
        if self.cluster is None:
            with self.autocast():
                loss = loss_fn(self._train_model(self._as_input(images[index])), labels[index])
            return loss, loss.detach()
        part, weight = self.cluster.shard(index)
        with self.autocast():
            outputs = self._train_model(self._as_input(images[part]))
            # a rank left without samples (a last batch smaller than the processes) still joins the gradient exchange
            loss = loss_fn(outputs, labels[part]) * weight if len(part) else outputs.sum() * 0.0
        value, self._stop_agreed = self.cluster.agree(loss, self._stop_requested.is_set())
        return loss, value

    def _compiling_step(self, index: torch.Tensor, optimizer: torch.optim.Optimizer, loss_fn) -> torch.Tensor | float:
        """A step in which torch.compile compiles (the first batch, the first of a new size). If compiling
        fails, the weights and random streams are put back and the run goes on eager, with a notice."""
        weights, random_state = _snapshot(self.model), _random_state(self.device)
        try:
            value = self._step(index, optimizer, loss_fn)
        except (torch.cuda.OutOfMemoryError, WorkbenchError):  # not the compiler's doing
            raise
        except Exception as error:  # compilers fail in many ways (no C compiler, an unsupported operation, ...)
            self.model.load_state_dict(weights)
            _set_random_state(self.device, random_state)
            optimizer.zero_grad(set_to_none=True)
            self._train_model = self._eager_model
            self._notice(_compile_failed(error))
            return self._step(index, optimizer, loss_fn)
        self._compiled_sizes.add(len(index))
        return value

    def _as_input(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last and images.dim() == 4:
            return images.contiguous(memory_format=torch.channels_last)
        return images


@dataclass
class _EpochRun:
    """What one pass over the training data did; ``diverged`` holds ``(batch, loss)`` of the first non-finite
    loss, if any."""

    loss_sum: torch.Tensor
    seen: int = 0
    seconds: float = 0.0
    paused_seconds: float = 0.0
    interrupted: bool = False
    diverged: tuple[int, float] | None = None


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer over the model's parameters.

    On a CUDA GPU, SGD, Adam and AdamW use PyTorch's fused implementations: one kernel updates every parameter,
    where the default launches several per step, which is most of an optimiser step for a small network.
    """
    params, lr, decay = list(model.parameters()), config.lr, config.weight_decay
    fused = {"fused": True} if _fusable(params) else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=decay, **fused
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay, **fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay, **fused)
    return torch.optim.RMSprop(params, lr=lr, momentum=config.momentum, weight_decay=decay)


def _fusable(params: list[torch.Tensor]) -> bool:
    return bool(params) and all(param.is_cuda and param.is_floating_point() for param in params)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load a saved optimizer state, keeping this optimizer's own implementation (fused or not): a run saved on
    a GPU may go on on the CPU, and the other way round."""
    implementation = [
        {key: group[key] for key in ("fused", "foreach") if key in group} for group in optimizer.param_groups
    ]
    optimizer.load_state_dict(state)
    for group, kept in zip(optimizer.param_groups, implementation):
        group.update(kept)


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, batches_per_epoch: int, epochs: int | None = None
):
    """``(scheduler or None, steps_per_batch)``: cosine and one-cycle move every batch over ``epochs``
    (default: the whole run), step every epoch."""
    total = (config.epochs if epochs is None else epochs) * batches_per_epoch
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma), False
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total), True
    if config.schedule == "one-cycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total), True
    return None, False


def make_loss(name: str, num_classes: int):
    """Cross-entropy on the scores, or the class's MSE between the outputs and one-hot labels."""
    if name == "mse":

        def mse_on_one_hot(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return functional.mse_loss(outputs, functional.one_hot(targets, num_classes).to(outputs.dtype))

        return mse_on_one_hot
    return functional.cross_entropy


def wants_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Whether ``model`` trains in the channels-last memory format on ``device`` by default: convolutional
    networks on CUDA, where cuDNN's convolutions are fastest in it (and more so under bfloat16)."""
    return device.type == "cuda" and any(isinstance(module, nn.Conv2d) for module in model.modules())


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``'s type; no context at all for None (float32)."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def evaluate(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn, precision: torch.dtype | None = None
) -> tuple[float, float]:
    """``(mean loss, accuracy)`` over a whole split in eval mode; NaNs for an empty split."""
    loss, accuracy, _ = score(model, inputs, targets, loss_fn, precision)
    return loss, accuracy


@torch.no_grad()
def score(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn, precision: torch.dtype | None = None
) -> tuple[float, float, torch.Tensor]:
    """``(mean loss, accuracy, class probabilities)`` over a whole split in eval mode.

    The probabilities ``(N, classes)`` are the softmax of the outputs, on the inputs' device. An empty
    split gives NaNs and an empty tensor. ``precision``: the autocast dtype of the forward passes (None:
    float32).
    """
    if len(targets) == 0:
        return math.nan, math.nan, torch.empty(0, 0, device=inputs.device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=inputs.device)
    probabilities = []
    for start in range(0, len(targets), EVAL_BATCH):
        batch_targets = targets[start : start + EVAL_BATCH]
        with autocast_context(inputs.device, precision):
            outputs = model(inputs[start : start + EVAL_BATCH])
            loss_sum += loss_fn(outputs, batch_targets) * len(batch_targets)
        probabilities.append(torch.softmax(outputs.float(), dim=1))
    model.train(was_training)
    probabilities = torch.cat(probabilities)
    correct = (probabilities.argmax(dim=1) == targets).sum()
    return loss_sum.item() / len(targets), correct.item() / len(targets), probabilities


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``(N, classes)`` for a batch of inputs, computed in eval mode."""
    was_training = model.training
    model.eval()
    probabilities = torch.cat(
        [
            torch.softmax(model(inputs[start : start + EVAL_BATCH]).float(), dim=1)
            for start in range(0, len(inputs), EVAL_BATCH)
        ]
    )
    model.train(was_training)
    return probabilities


def _snapshot(model: nn.Module, device: str | None = None) -> dict[str, torch.Tensor]:
    """A copy of the model's weights and buffers, contiguous (safetensors refuses channels-last tensors)."""
    return {
        name: tensor.detach().to(device, copy=True, memory_format=torch.contiguous_format)
        for name, tensor in model.state_dict().items()
    }


def _random_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_random_state(device: torch.device, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _compile_failed(error: Exception) -> str:
    return (
        f"torch.compile failed ({type(error).__name__}: {_first_line(error)}); the run goes on without it, "
        f"as plain (eager) PyTorch."
    )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _divergence_message(loss: float, epoch: int, batch: int, lr: float) -> str:
    kind = "NaN" if math.isnan(loss) else "infinite"
    return (
        f"The loss became {kind} at epoch {epoch}, batch {batch}: the learning rate {lr:g} is probably too "
        f"high; try {lr / 10:g}. The weights from the last good epoch were kept."
    )
