"""The callbacks API of the engine, and the callbacks every run has: best-epoch tracking and early stopping.

A :class:`Callback` listens to a run (see :class:`~workbench.core.training.engine.Trainer`); the engine calls
its events on the training thread. :class:`BestEpoch` and :class:`EarlyStopping` are callbacks like any other,
modelled on Ignite's handlers: early stopping has a patience, watches the best epoch, and asks the trainer to
end the run (``terminate``) rather than ending it itself.

This module does not import the engine (the engine imports it): a callback's ``trainer`` parameter is a type
parameter, the engine's ``Trainer`` wherever a subclass does not say otherwise.
"""

from __future__ import annotations

import math
from typing import Any, Generic, Protocol, TypeVar

from workbench.core.training.state import Checkpoint, EpochMetrics, TrainResult, TrainState, plural

TrainerT = TypeVar("TrainerT", contravariant=True)
"""The trainer a callback is given: ``Callback[Trainer]``, or a protocol of what the callback uses of it."""


class Callback(Generic[TrainerT]):
    """Base class of everything that listens to a run; override the events you need.

    Callbacks run on the training thread, between batches: keep them quick.
    """

    def on_train_start(self, trainer: TrainerT, state: TrainState) -> None:
        """Before the first batch; the model is built and on its device."""

    def on_batch_end(self, trainer: TrainerT, state: TrainState) -> None:
        """After each optimiser step; ``state.batch_loss`` holds that batch's loss."""

    def on_epoch_end(self, trainer: TrainerT, state: TrainState, metrics: EpochMetrics) -> None:
        """After each full epoch and its validation."""

    def on_test_start(self, trainer: TrainerT, state: TrainState, count: int) -> None:
        """Once, after the last epoch, before the model is evaluated on the ``count`` images of the test split
        (which may take a while: tell the user). Not for a run that was stopped: it is not tested (and a stop
        during the test evaluation ends it, the run then ``stopped`` too)."""

    def on_test_progress(self, trainer: TrainerT, state: TrainState, done: int, total: int) -> None:
        """After each evaluation batch of the test split: ``done`` of its ``total`` images are evaluated."""

    def on_train_end(self, trainer: TrainerT, state: TrainState, result: TrainResult) -> None:
        """Once, however the run ended (finished, stopped, early-stopped, diverged); ``result.test_probabilities``
        holds the test split's class probabilities unless the run was stopped."""

    def on_train_failed(self, trainer: TrainerT, state: TrainState, message: str) -> None:
        """Once, instead of ``on_train_end``, when the run breaks off with an exception (e.g. the GPU ran out of
        memory); ``message`` says why, for the user. The exception goes on to the caller of ``Trainer.run``."""

    def on_notice(self, trainer: TrainerT, message: str) -> None:
        """Something the user should know that does not stop the run (e.g. torch.compile failed: training
        goes on without it). The same messages collect in ``Trainer.notices``."""


class Terminable(Protocol):
    """What :class:`EarlyStopping` uses of the trainer."""

    def terminate(self, status: str, message: str) -> None:
        """End the run once the current epoch's callbacks are done, with this status and message."""


class BestEpoch(Callback[Any]):
    """Tracks the epoch with the lowest validation loss and how many epochs have passed without a lower one.

    Every run has one (``Trainer.best``): its figures go into the run's checkpoints, so that a continued run
    goes on counting where it stopped. A NaN validation loss (an empty validation set) is never a gain.
    """

    def __init__(self) -> None:
        self.best_val_loss = math.inf
        self.best_epoch: int | None = None
        self.epochs_without_gain = 0

    def restore(self, checkpoint: Checkpoint) -> None:
        """Take up the figures of the run a checkpoint continues."""
        self.best_val_loss, self.epochs_without_gain = checkpoint.best_val_loss, checkpoint.epochs_without_gain
        self.best_epoch = next((m.epoch for m in checkpoint.history if m.val_loss == self.best_val_loss), None)

    def on_epoch_end(self, trainer: Any, state: TrainState, metrics: EpochMetrics) -> None:
        if metrics.val_loss < self.best_val_loss:
            self.best_val_loss, self.best_epoch, self.epochs_without_gain = metrics.val_loss, metrics.epoch, 0
        else:
            self.epochs_without_gain += 1


class EarlyStopping(Callback[Terminable]):
    """Ends the run (status ``early-stopped``) once ``patience`` epochs in a row have not lowered the validation
    loss, as ``best`` counts them; never after the last epoch, which ends the run anyway.

    It must come after ``best`` among the callbacks, so that it sees the epoch just counted.
    """

    def __init__(self, patience: int, best: BestEpoch):
        if patience < 1:
            raise ValueError(f"patience must be at least 1, not {patience}")
        self.patience = patience
        self.best = best

    def on_epoch_end(self, trainer: Terminable, state: TrainState, metrics: EpochMetrics) -> None:
        if self.best.epochs_without_gain >= self.patience and state.epoch < state.epochs:
            trainer.terminate(
                "early-stopped",
                f"Stopped early after epoch {state.epoch}: the validation loss has not improved for "
                f"{plural(self.patience, 'epoch')}.",
            )
