"""The training engine: trains an architecture on preloaded tensors and reports through callbacks.

A :class:`Trainer` owns one run. It loads nothing per sample: the dataset sits in tensors on the
training device and each batch is an index into them. Listeners subclass
:class:`~workbench.core.training.callbacks.Callback` (train start, batch end, epoch end, test start and progress,
train end); best-epoch tracking and early stopping are callbacks too (see callbacks.py). :meth:`Trainer.pause`,
:meth:`Trainer.resume` and :meth:`Trainer.stop` may be called from any thread and act at the next batch boundary
(a stop also between two chunks of an evaluation); a stopped run is not evaluated on the test split.

A network with batch normalisation never trains on a last batch too small for it (one image): that batch joins the
one before it, with a notice. A forward pass that PyTorch refuses (shapes that do not fit, a batch normalisation
given a single value per channel) is pushed again through the layers one by one, and the run fails with a
:class:`TrainingError` naming the layer.

The forward passes run under bfloat16 autocast where the device computes it natively (a CUDA GPU from Ampere on,
a CPU with AVX-512 BF16 or AMX; see devices.py) and convolutional networks train in the channels-last memory format,
on CUDA and the CPU alike; weights, losses and metrics stay float32, and the test split is scored in float32 and
the contiguous format, as the saved weights compute once loaded or exported. ``config.compile`` adds
``torch.compile``. With a
:class:`~workbench.core.training.distributed.Cluster`, the run is one rank of a multi-process run (see distributed.py).

The run's data classes (:class:`TrainState`, :class:`EpochMetrics`, :class:`TrainResult`, :class:`Checkpoint`) live
in state.py, the callbacks in callbacks.py, the run's tensors (:class:`SplitData`) in split_data.py, the batching of an
epoch in batches.py and the naming of a failing layer in layer_failures.py; what others use is importable from here
too.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from workbench.core.architecture import Architecture, build
from workbench.core.errors import TrainingError, WorkbenchError, describe_failure
from workbench.core.training.augment import Augmenter, parse_augment
from workbench.core.training.batches import epoch_batches, has_batch_norm
from workbench.core.training.callbacks import BestEpoch, Callback, EarlyStopping
from workbench.core.training.config import TrainConfig
from workbench.core.training.devices import Precision, choose_precision, resolve_device
from workbench.core.training.evaluation import EVAL_BATCH, ScoringStopped, autocast_context, evaluate, predict, score
from workbench.core.training.layer_failures import locate_failure
from workbench.core.training.loss_watch import LossWatch
from workbench.core.training.messages import (
    compile_failed,
    divergence_message,
    emulated_bfloat16,
    last_batch_merged,
    stopped_during_test,
)
from workbench.core.training.recipe import (
    LossFunction,
    Scheduler,
    load_optimizer_state,
    make_loss,
    make_optimizer,
    make_scheduler,
)
from workbench.core.training.split_data import SplitData, fit_to_dataset, image_options, prepare_data
from workbench.core.training.state import Checkpoint, EpochMetrics, TrainResult, TrainState, plural

if TYPE_CHECKING:
    from workbench.core.training.distributed import Cluster

# What importers take from here, with the names defined in callbacks, evaluation, recipe and state.
__all__ = [
    "EVAL_BATCH",
    "BestEpoch",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "EpochMetrics",
    "LossFunction",
    "SplitData",
    "TrainResult",
    "TrainState",
    "Trainer",
    "autocast_context",
    "evaluate",
    "fit_to_dataset",
    "has_batch_norm",
    "load_optimizer_state",
    "make_loss",
    "make_optimizer",
    "make_scheduler",
    "predict",
    "prepare_data",
    "score",
    "wants_channels_last",
]


class Trainer:
    """One training run of ``architecture`` under ``config``.

    ``data`` may be given to share loaded tensors between runs; otherwise the configured dataset
    is loaded. The model is built, seeded and moved to the device at construction, so a bad
    architecture or device is reported before anything starts. With ``resume``, the run goes on
    from that checkpoint's epoch up to ``config.epochs``.

    ``callbacks`` are the caller's listeners (the list may be replaced or added to before :meth:`run`);
    ``own_callbacks`` are the run's own, called before them at every event: :attr:`best`, the
    :class:`~workbench.core.training.callbacks.BestEpoch` whose figures the checkpoints keep, then
    :class:`~workbench.core.training.callbacks.EarlyStopping` where ``config.early_stopping`` asks for it.

    ``cluster`` makes this trainer one rank of a multi-process run, on the cluster's device.
    ``channels_last`` (None: automatic, i.e. for convolutional networks) trains in that memory format.
    ``precision`` is the autocast dtype of the forward passes (None: float32) and :attr:`precision_choice` says
    why; ``notices`` is what the user should know about the run that did not stop it.
    """

    def __init__(
        self,
        architecture: Architecture,
        config: TrainConfig,
        data: SplitData | None = None,
        callbacks: Sequence[Callback] = (),
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
        self.precision_choice: Precision = choose_precision(config.mixed_precision, self.device)
        self.precision = self.precision_choice.dtype
        if data is None:
            data = self._load(config, progress)
        self.config = dataclasses.replace(
            config, train_size=len(data.train_y), val_size=len(data.val_y), **image_options(config, data.info)
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
        self.best = BestEpoch()
        self.own_callbacks: list[Callback] = [self.best]
        if config.early_stopping:
            self.own_callbacks.append(EarlyStopping(config.early_stopping, self.best))
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Scheduler | None = None
        self.shuffle = torch.Generator().manual_seed(config.seed)
        black = [-mean / std for mean, std in zip(data.info.mean, data.info.std)]
        self.augmenter = Augmenter(parse_augment(config.augment), config.seed, black)
        self._augment_at = (0, 0)  # the epoch and batch being trained: the augmentation's draws follow them
        self._running = threading.Event()
        self._running.set()
        self._holding = threading.Event()  # set while the loop waits at a batch boundary
        self._stop_requested = threading.Event()
        self._stop_agreed = False
        self._termination: tuple[str, str] | None = None
        self._merged_images = 0  # a last batch too small for batch normalisation, trained with the one before
        self.notices: list[str] = []
        self._eager_model: nn.Module | None = None
        self._train_model: Callable[..., torch.Tensor] | None = None
        self._compiled_sizes: set[int] = set()

    def _load(self, config: TrainConfig, progress: bool) -> SplitData:
        """The configured dataset; in a multi-process run, loaded by each machine's first process first."""

        def load() -> SplitData:
            return prepare_data(config, progress=progress)

        return self.cluster.local_first(load) if self.cluster is not None else load()

    @property
    def is_main(self) -> bool:
        """Whether this trainer reports the run: the only one, or rank 0 of a multi-process run."""
        return self.cluster is None or self.cluster.is_main

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context the run's forward passes go in: bfloat16 autocast under mixed precision, else none."""
        return autocast_context(self.device, self.precision)

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def holding(self) -> bool:
        """Whether a paused run has reached its batch boundary and is waiting there."""
        return self._holding.is_set()

    def pause(self) -> None:
        """Hold the run at the next batch boundary until :meth:`resume` or :meth:`stop`."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        """End the run after the current batch, or between two chunks of an evaluation (the validation of an epoch
        that is then not counted, or the test split's); the run reports its end, without a test evaluation
        (status ``stopped``, test figures NaN)."""
        self._stop_requested.set()
        self._running.set()

    def terminate(self, status: str, message: str) -> None:
        """End the run after the current epoch, once its ``on_epoch_end`` callbacks are done, with this status and
        message; the run still evaluates on the test split and reports its end. Meant for callbacks (early
        stopping), on the training thread; :meth:`stop` is the user's, from any thread."""
        self._termination = (status, message)

    def run(self) -> TrainResult:
        """Train for the configured epochs (or until stopped) and evaluate on the test split.

        An exception that breaks the run off reaches the callbacks' ``on_train_failed`` first; the GPU running
        out of memory, or losing the other processes of a multi-process run, then raises a
        :class:`TrainingError` with a message for the user.
        """
        batches, self._merged_images = self._epoch_batches()
        state = TrainState(epochs=self.config.epochs, batches_per_epoch=batches)
        try:
            return self._run(state)
        except Exception as error:
            message = describe_failure(error, batch_size=self.config.batch_size, brief=True)
            for callback in self._listeners():
                callback.on_train_failed(self, state, message)
            if isinstance(error, torch.cuda.OutOfMemoryError):
                raise TrainingError(message) from error
            raise  # a WorkbenchError (losing the other processes is one, see Cluster.exchanging) or unexpected

    def _listeners(self) -> list[Callback]:
        return [*self.own_callbacks, *self.callbacks]

    def _epoch_batches(self) -> tuple[int, int]:
        """The batches of each epoch, and the images of a last batch too small for batch normalisation, which join
        the batch before it (see :func:`~workbench.core.training.batches.epoch_batches`)."""
        processes = self.cluster.world_size if self.cluster is not None else 1
        return epoch_batches(len(self.data.train_y), self.config.batch_size, processes, self.model)

    def _run(self, state: TrainState) -> TrainResult:
        started = time.perf_counter()
        plan = self._prepare(state)
        if self._merged_images:
            processes = self.cluster.world_size if self.cluster is not None else 1
            self._notice(
                last_batch_merged(self._merged_images, len(self.data.train_y), self.config.batch_size, processes)
            )
        if self.precision_choice.slower:
            self._notice(emulated_bfloat16())
        last_good = _snapshot(self.model)
        for callback in self._listeners():
            callback.on_train_start(self, state)
        status, message = self._train_epochs(state, plan, last_good)
        test_loss = test_accuracy = math.nan
        probabilities = None
        if status != "stopped":  # a stopped run is not tested: the user asked for it to end now
            try:
                test_loss, test_accuracy, probabilities = self._test(state, plan.loss_fn)
            except ScoringStopped:
                status, message = "stopped", stopped_during_test(state.epoch, message if status != "finished" else "")
        result = TrainResult(
            status,
            message,
            list(state.history),
            test_loss,
            test_accuracy,
            time.perf_counter() - started,
            self.model,
            probabilities,
        )
        for callback in self._listeners():
            callback.on_train_end(self, state, result)
        return result

    def _prepare(self, state: TrainState) -> _Plan:
        """Everything before the first batch: the checkpoint taken up, the optimizer, schedule, loss and the
        module the batches go through."""
        config, resume = self.config, self.resume_from
        first_epoch = self._restore(state, resume) if resume is not None else 1
        if self.cluster is not None and self.cluster.rank > 0:
            # a stream of its own for dropout, drawn from rank 0's (which the checkpoints hold, unchanged)
            torch.manual_seed(int(torch.randint(2**62, ())) + self.cluster.rank)
        if self.optimizer is None:
            self.optimizer = make_optimizer(self.model, config)
        self.scheduler, per_batch = make_scheduler(
            self.optimizer, config, state.batches_per_epoch, config.epochs - first_epoch + 1
        )
        if resume is not None and resume.scheduler is not None and self.scheduler is not None and not per_batch:
            self.scheduler.load_state_dict(resume.scheduler)
        loss_fn = make_loss(config.loss, len(self.data.info.class_names))
        self._prepare_training_model()
        return _Plan(first_epoch, self.optimizer, self.scheduler, per_batch, loss_fn)

    def _train_epochs(self, state: TrainState, plan: _Plan, last_good: dict[str, torch.Tensor]) -> tuple[str, str]:
        """Train epoch after epoch, each validated and reported; how the training ended: ``(status, message)``."""
        for epoch in range(plan.first_epoch, self.config.epochs + 1):
            state.epoch, state.batch = epoch, 0
            epoch_started = time.perf_counter()
            lr = plan.optimizer.param_groups[0]["lr"]
            batch_scheduler = plan.scheduler if plan.per_batch else None
            epoch_run = self._train_epoch(state, plan.optimizer, batch_scheduler, plan.loss_fn, self.shuffle)
            if epoch_run.diverged:
                self.model.load_state_dict(last_good)
                batch, loss = epoch_run.diverged
                return "diverged", divergence_message(loss, epoch, batch, self.config.lr)
            if epoch_run.interrupted:
                return "stopped", f"Stopped by the user during epoch {epoch}."
            if plan.scheduler is not None and not plan.per_batch:
                plan.scheduler.step()
            try:
                metrics = self._validate(state, epoch_run, lr, epoch_started, plan.loss_fn)
            except ScoringStopped:  # an epoch counts with its validation: this one is not recorded
                return "stopped", f"Stopped by the user during epoch {epoch}."
            last_good = _snapshot(self.model)
            for callback in self._listeners():
                callback.on_epoch_end(self, state, metrics)
            if self._termination is not None:
                return self._termination
        return "finished", f"Trained {plural(self.config.epochs, 'epoch')}."

    def _validate(
        self, state: TrainState, epoch_run: _EpochRun, lr: float, epoch_started: float, loss_fn: LossFunction
    ) -> EpochMetrics:
        """Score the epoch's model on the validation subset; the epoch's metrics, added to the history."""
        val_loss, val_accuracy, state.val_probabilities = self._score(self.data.val_x, self.data.val_y, loss_fn)
        elapsed = time.perf_counter() - epoch_started - epoch_run.paused_seconds
        train_loss = float(epoch_run.loss_sum) / epoch_run.seen
        metrics = EpochMetrics(
            state.epoch, train_loss, val_loss, val_accuracy, lr, elapsed, epoch_run.seen / epoch_run.seconds
        )
        state.history.append(metrics)
        return metrics

    def _test(self, state: TrainState, loss_fn: LossFunction) -> tuple[float, float, torch.Tensor]:
        """``(loss, accuracy, class probabilities)`` on the test split, told to the callbacks before and after each
        batch; :class:`ScoringStopped` when the run is stopped before the last batch."""
        for callback in self._listeners():
            callback.on_test_start(self, state, len(self.data.test_y))

        def progress(done: int, total: int) -> None:
            for callback in self._listeners():
                callback.on_test_progress(self, state, done, total)

        return self._score(self.data.test_x, self.data.test_y, loss_fn, progress, as_saved=True)

    def _score(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        loss_fn: LossFunction,
        progress: Callable[[int, int], None] | None = None,
        as_saved: bool = False,
    ) -> tuple[float, float, torch.Tensor]:
        """:func:`score` of the model, which a stop ends between two chunks (:class:`ScoringStopped`); in a
        multi-process run, all ranks evaluate rank 0's model, stop at the same chunk and report rank 0's figures,
        so that they take the same decisions on them.

        ``as_saved`` (the test split) scores the model as its saved weights compute once loaded again or exported:
        in float32 and the contiguous memory format, so that the test figures are the exported network's and an
        evaluation on demand repeats them; the validation after each epoch computes as the training does."""
        if self.cluster is not None:
            self.cluster.sync_buffers(self.model)
        model, precision = self.model, self.precision
        if as_saved:
            precision = None
            if self.channels_last:
                model = copy.deepcopy(self.model).to(memory_format=torch.contiguous_format)
        try:
            loss, accuracy, probabilities = score(
                model, inputs, targets, loss_fn, precision, progress=progress, stop=self._stop_scoring
            )
        except (RuntimeError, ValueError) as error:
            located = self._locate(error, inputs[:EVAL_BATCH], training=False)
            if located is None:
                raise
            raise located from error
        if self.cluster is not None:
            loss, accuracy = self.cluster.from_main(loss, accuracy)
        return loss, accuracy, probabilities

    def _stop_scoring(self) -> bool:
        """Whether to end an evaluation before its next chunk; in a multi-process run, every rank asks the others
        at each chunk, so that all of them stop at the same one."""
        if self.cluster is None:
            return self._stop_requested.is_set()
        _, stop = self.cluster.agree(torch.zeros((), device=self.device), self._stop_requested.is_set())
        return stop

    def _forward(self, model: Callable[..., torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """``model(inputs)`` for a training batch; a failure PyTorch reports as a RuntimeError or ValueError becomes
        a :class:`TrainingError` naming the layer that failed (see :meth:`_locate`)."""
        try:
            return model(inputs)
        except (RuntimeError, ValueError) as error:
            located = self._locate(error, inputs, training=True)
            if located is None:
                raise
            raise located from error

    def _locate(self, error: BaseException, inputs: torch.Tensor, training: bool) -> TrainingError | None:
        """The :class:`TrainingError` naming the layer that fails on ``inputs``, or None (see
        :func:`~workbench.core.training.layer_failures.locate_failure`)."""
        return locate_failure(self.model, error, inputs, training, self.autocast())

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
                self._notice(compile_failed(error))

    def _notice(self, message: str) -> None:
        self.notices.append(message)
        for callback in self._listeners():
            callback.on_notice(self, message)

    def checkpoint(self, state: TrainState) -> Checkpoint:
        """The run as it stands at the end of ``state.epoch`` (call from ``on_epoch_end``)."""
        if self.optimizer is None:
            raise RuntimeError("A checkpoint is taken during a run, from on_epoch_end.")
        epoch_wise = self.scheduler is not None and self.config.schedule == "step"
        return Checkpoint(
            epoch=state.epoch,
            weights=_snapshot(self.model, "cpu"),
            optimizer=copy.deepcopy(self.optimizer.state_dict()),  # detached from the live optimizer
            scheduler=self.scheduler.state_dict() if self.scheduler is not None and epoch_wise else None,
            shuffle_rng=self.shuffle.get_state(),
            torch_rng=torch.get_rng_state(),
            history=list(state.history),
            best_val_loss=self.best.best_val_loss,
            epochs_without_gain=self.best.epochs_without_gain,
            samples_seen=state.samples_seen,
        )

    def _restore(self, state: TrainState, resume: Checkpoint) -> int:
        """Take up the checkpoint's optimizer, random streams, history and best epoch; the first epoch to train."""
        self.optimizer = make_optimizer(self.model, self.config)
        load_optimizer_state(self.optimizer, resume.optimizer)
        self.shuffle.set_state(resume.shuffle_rng)
        torch.set_rng_state(resume.torch_rng)
        state.history = list(resume.history)
        state.samples_seen = resume.samples_seen
        self.best.restore(resume)
        return resume.epoch + 1

    def _train_epoch(
        self,
        state: TrainState,
        optimizer: torch.optim.Optimizer,
        batch_scheduler: Scheduler | None,
        loss_fn: LossFunction,
        shuffle: torch.Generator,
    ) -> _EpochRun:
        """One pass over the shuffled training subset, batch by batch, honouring pause and stop."""
        data, batch_size, count = self.data, self.config.batch_size, len(self.data.train_y)
        epoch_run = _EpochRun(loss_sum=torch.zeros((), device=self.device))  # summed where the losses are
        started = time.perf_counter()
        order = torch.randperm(len(data.train_y), generator=shuffle).to(self.device)
        watch = LossWatch(self.device)
        self.model.train()
        for batch in range(state.batches_per_epoch):
            if not self._running.is_set():
                wait_started = time.perf_counter()
                self._holding.set()
                self._running.wait()
                self._holding.clear()
                epoch_run.paused_seconds += time.perf_counter() - wait_started
            if self._stopping():
                epoch_run.interrupted = True
                break
            start = batch * batch_size
            last = batch == state.batches_per_epoch - 1  # holds what is left (see _epoch_batches)
            index = order[start : count if last else start + batch_size]
            self._augment_at = (state.epoch, batch)
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
            for callback in self._listeners():
                callback.on_batch_end(self, state)
        epoch_run.diverged = epoch_run.diverged or watch.settle()
        epoch_run.seconds = time.perf_counter() - started - epoch_run.paused_seconds
        return epoch_run

    def _stopping(self) -> bool:
        """Whether to stop before the next batch; several processes stop together, at the batch after the one
        in which any of them was asked to."""
        return self._stop_agreed if self.cluster is not None else self._stop_requested.is_set()

    def _step(
        self, index: torch.Tensor, optimizer: torch.optim.Optimizer, loss_fn: LossFunction
    ) -> torch.Tensor | float:
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

    def _batch_loss(self, index: torch.Tensor, loss_fn: LossFunction) -> tuple[torch.Tensor, torch.Tensor | float]:
        """The loss to back-propagate for the batch ``index``, and its value over the whole (global) batch."""
        images, labels, model = self.data.train_x, self.data.train_y, self._train_model
        assert model is not None, "set up by _prepare_training_model"
        if self.cluster is None:
            with self.autocast():
                loss = loss_fn(self._forward(model, self._as_input(self._augmented(images[index]))), labels[index])
            return loss, loss.detach()
        part, weight = self.cluster.shard(index)
        with self.autocast():
            outputs = self._forward(model, self._as_input(self._augmented(images[part])))
            # a rank left without samples (a last batch smaller than the processes) still joins the gradient exchange
            loss = loss_fn(outputs, labels[part]) * weight if len(part) else outputs.sum() * 0.0
        value, self._stop_agreed = self.cluster.agree(loss, self._stop_requested.is_set())
        return loss, value

    def _compiling_step(
        self, index: torch.Tensor, optimizer: torch.optim.Optimizer, loss_fn: LossFunction
    ) -> torch.Tensor | float:
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
            self._notice(compile_failed(error))
            return self._step(index, optimizer, loss_fn)
        self._compiled_sizes.add(len(index))
        return value

    def _augmented(self, images: torch.Tensor) -> torch.Tensor:
        """The training batch as the run's augmentation changes it (unchanged without one)."""
        return self.augmenter(images, *self._augment_at)

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


@dataclass
class _Plan:
    """What :meth:`Trainer._prepare` set up for the epochs: ``per_batch`` schedules step every batch."""

    first_epoch: int
    optimizer: torch.optim.Optimizer
    scheduler: Scheduler | None
    per_batch: bool
    loss_fn: LossFunction


def wants_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Whether ``model`` trains in the channels-last memory format on ``device`` by default: convolutional
    networks on CUDA and the CPU, whose convolutions (cuDNN's, oneDNN's) are fastest in it, and more so under
    bfloat16 (on this project's 2-core AVX-512 CPU: cnn-strong 1.3x in float32, 1.5x in bfloat16)."""
    return device.type in ("cuda", "cpu") and any(isinstance(module, nn.Conv2d) for module in model.modules())


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
