"""The bridge between the engine and the GUI: runs work on a QThread, re-emits it as Qt signals.

Only the GUI thread touches widgets. The training worker turns the engine's callbacks (called on
the worker thread) into signals, throttled so the GUI receives at most ``rate_hz`` batch packets a
second however fast the batches are. Pause and stop go straight to the engine's own thread-safe
handles, so they act at the next batch boundary even while the worker's event loop is busy.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from workbench.core.architecture import Architecture
from workbench.core.errors import WorkbenchError
from workbench.core.runs.folders import RunRecorder, load_checkpoint, new_run_dir
from workbench.core.runs.metrics import Evaluation, evaluation_from_predictions
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Callback, EpochMetrics, Trainer, TrainResult, TrainState
from workbench.core.training.gradients import GradientMonitor, GradientSample
from workbench.core.training.loss_watch import read_losses

_threads: weakref.WeakSet[QThread] = weakref.WeakSet()


def running_threads() -> list[QThread]:
    """Threads started by this module that are still running (tests check none leak)."""
    return [thread for thread in list(_threads) if thread.isRunning()]


@dataclass
class BatchPacket:
    """The batches since the last packet: global steps and losses, gradient samples, and where the run is."""

    steps: list[int]
    losses: list[float]
    epoch: int
    epochs: int
    batch: int
    batches_per_epoch: int
    samples_per_second: float
    seconds_left: float
    gradients: list[GradientSample] = field(default_factory=list)


@dataclass
class RunStart:
    """What the GUI shows when a run has loaded its data, built its model and is about to train.

    ``history`` holds the epochs of an earlier session when a run is continued; ``first_step`` is the
    global batch number the first new batch will have.
    """

    folder: Path
    architecture: Architecture
    config: TrainConfig
    device: str
    class_names: tuple[str, ...]
    history: list[EpochMetrics]
    first_step: int
    gradient_layers: list[str]
    activation_layers: list[str]


@dataclass
class EpochPacket:
    """One finished epoch: its metrics, the weights after it, and the validation set's predictions."""

    metrics: EpochMetrics
    weights: dict[str, torch.Tensor] = field(repr=False)
    val_probabilities: np.ndarray | None = field(default=None, repr=False)
    val_labels: np.ndarray | None = field(default=None, repr=False)
    class_names: tuple[str, ...] = ()

    @functools.cached_property
    def val_evaluation(self) -> Evaluation | None:
        """The scores of :attr:`val_probabilities`, computed when first asked for (scikit-learn takes milliseconds
        that a quick run's epochs cannot spare, and the window asks only for the epochs it shows)."""
        if self.val_probabilities is None or self.val_labels is None:
            return None
        return evaluation_from_predictions(self.val_labels, self.val_probabilities, self.class_names)


@dataclass
class RunEnd:
    """How a run ended, with its final weights on the CPU."""

    status: str
    message: str
    test_accuracy: float
    folder: Path
    weights: dict[str, torch.Tensor] = field(repr=False)
    evaluation: Evaluation | None = field(default=None, repr=False)


class TrainingWorker(QObject):
    """Trains one snapshot of an architecture and config on the thread it is moved to.

    With ``resume`` (a run folder) it continues that run from its last checkpoint for
    ``extra_epochs`` more epochs instead, writing into the same folder.
    """

    started = Signal(object)  # RunStart
    batchProgress = Signal(object)  # BatchPacket
    epochEnded = Signal(object)  # EpochPacket
    finished = Signal(object)  # RunEnd
    failed = Signal(str)  # a message for the user
    done = Signal()  # always last: the thread may quit

    def __init__(
        self,
        architecture: Architecture | None,
        config: TrainConfig | None,
        out: Path | None = None,
        rate_hz: float = 10.0,
        resume: Path | None = None,
        extra_epochs: int = 0,
    ):
        super().__init__()
        if resume is None and (architecture is None or config is None):
            raise ValueError("A new run needs an architecture and a config.")
        self.architecture = architecture.copy() if architecture is not None else None
        self.config = TrainConfig.from_dict(config.to_dict()) if config is not None else None
        self.out = out
        self.resume_folder = resume
        self.extra_epochs = extra_epochs
        self.interval = 1.0 / rate_hz
        self._trainer: Trainer | None = None
        self._stop_before_start = False
        self._pause_before_start = False

    def pause(self) -> None:
        self._pause_before_start = True
        if self._trainer is not None:
            self._trainer.pause()

    def resume(self) -> None:
        self._pause_before_start = False
        if self._trainer is not None:
            self._trainer.resume()

    def stop(self) -> None:
        """Ask the run to end after its current batch (or not to start, if it is still loading)."""
        self._stop_before_start = True
        if self._trainer is not None:
            self._trainer.stop()

    @Slot()
    def run(self) -> None:
        """Load, build, train; every outcome ends with ``finished`` or ``failed``, then ``done``."""
        try:
            trainer, folder = self._make_trainer()
            recorder = RunRecorder(folder)
            monitor = GradientMonitor()
            trainer.callbacks = [recorder, monitor, _SignalRelay(self, self.interval, folder, monitor)]
            self._trainer = trainer
            if self._stop_before_start:
                trainer.stop()
            if self._pause_before_start:
                trainer.pause()
            result = trainer.run()
            self.finished.emit(
                RunEnd(
                    result.status,
                    result.message,
                    result.test_accuracy,
                    folder,
                    _cpu_weights(result.model),
                    recorder.evaluation,
                )
            )
        except WorkbenchError as error:
            self.failed.emit(str(error))
        except torch.cuda.OutOfMemoryError:
            self.failed.emit("The GPU ran out of memory: try a smaller batch size or a smaller network.")
        except Exception as error:  # the app must survive anything a run throws, and say what it was
            self.failed.emit(f"The run failed unexpectedly: {error}\n\n{traceback.format_exc(limit=4)}")
        finally:
            self.done.emit()

    def _make_trainer(self) -> tuple[Trainer, Path]:
        if self.resume_folder is None:
            trainer = Trainer(self.architecture, self.config, progress=False)
            return trainer, new_run_dir(self.out, trainer.architecture, trainer.config)
        architecture, saved, checkpoint = load_checkpoint(self.resume_folder)
        config = dataclasses.replace(saved, epochs=checkpoint.epoch + self.extra_epochs)
        return Trainer(architecture, config, progress=False, resume=checkpoint), self.resume_folder


class _SignalRelay(Callback):
    """Engine callbacks (on the worker thread) -> throttled Qt signals."""

    def __init__(self, worker: TrainingWorker, interval: float, folder: Path, monitor: GradientMonitor):
        self.worker = worker
        self.interval = interval
        self.folder = folder
        self.monitor = monitor
        self.steps: list[int] = []
        self.losses: list[torch.Tensor | float] = []
        self.last_emit = time.perf_counter()
        self.last_samples = 0
        self.samples_at_start = 0
        self.batches_at_start = 0
        self.rate = 0.0

    def on_train_start(self, trainer: Trainer, state: TrainState) -> None:
        self.last_samples = self.samples_at_start = state.samples_seen
        self.batches_at_start = len(state.history) * state.batches_per_epoch
        info = trainer.data.info
        self.worker.started.emit(
            RunStart(
                self.folder,
                trainer.architecture,
                trainer.config,
                str(trainer.device),
                tuple(info.class_names),
                list(state.history),
                len(state.history) * state.batches_per_epoch + 1,
                list(self.monitor.layers),
                list(self.monitor.activations),
            )
        )

    def on_batch_end(self, trainer: Trainer, state: TrainState) -> None:
        self.steps.append((state.epoch - 1) * state.batches_per_epoch + state.batch)
        self.losses.append(state.batch_loss_value)  # read back together in _emit, not one batch at a time
        now = time.perf_counter()
        if now - self.last_emit >= self.interval:
            self._emit(state, now)

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: EpochMetrics) -> None:
        self._emit(state, time.perf_counter())
        probabilities = labels = None
        if state.val_probabilities is not None and len(state.val_probabilities):
            probabilities = state.val_probabilities.to("cpu", torch.float32).numpy()
            labels = trainer.data.val_y.cpu().numpy()
        self.worker.epochEnded.emit(
            EpochPacket(
                metrics, _cpu_weights(trainer.model), probabilities, labels, tuple(trainer.data.info.class_names)
            )
        )

    def on_train_end(self, trainer: Trainer, state: TrainState, result: TrainResult) -> None:
        if self.steps:
            self._emit(state, time.perf_counter())

    def _emit(self, state: TrainState, now: float) -> None:
        elapsed = now - self.last_emit
        if elapsed > 0 and state.samples_seen > self.last_samples:
            self.rate = (state.samples_seen - self.last_samples) / elapsed
        total_batches = state.epochs * state.batches_per_epoch
        done_batches = (state.epoch - 1) * state.batches_per_epoch + state.batch
        per_batch = (state.samples_seen - self.samples_at_start) / max(done_batches - self.batches_at_start, 1)
        seconds_left = (total_batches - done_batches) * per_batch / self.rate if self.rate else float("nan")
        self.worker.batchProgress.emit(
            BatchPacket(
                self.steps,
                read_losses(self.losses),
                state.epoch,
                state.epochs,
                state.batch,
                state.batches_per_epoch,
                self.rate,
                seconds_left,
                self.monitor.take_new(),
            )
        )
        self.steps, self.losses = [], []
        self.last_emit, self.last_samples = now, state.samples_seen


def _cpu_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


class FunctionWorker(QObject):
    """Runs one function on a thread: ``succeeded(result)`` or ``failed(message)``, then ``done``.

    The function may report how far it is through :meth:`report`, which emits ``progress`` (thread-safe).
    """

    succeeded = Signal(object)
    failed = Signal(str)
    progress = Signal(str)
    done = Signal()

    def report(self, message: str) -> None:
        self.progress.emit(message)

    def __init__(self, function: Callable[[], Any]):
        super().__init__()
        self.function = function

    @Slot()
    def run(self) -> None:
        try:
            self.succeeded.emit(self.function())
        except WorkbenchError as error:
            self.failed.emit(str(error))
        except Exception as error:  # report, never crash the app from a background thread
            self.failed.emit(f"{type(error).__name__}: {error}")
        finally:
            self.done.emit()


class ThreadHandle:
    """A worker QObject running on its own QThread, quit and joined when the worker is done."""

    def __init__(self, worker: QObject, parent: QObject | None = None):
        self.worker = worker
        self.thread = QThread(parent)
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)
        # Direct: the thread must quit even while the GUI thread is blocked in join().
        worker.done.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        _threads.add(self.thread)

    def start(self) -> None:
        self.thread.start()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def join(self, timeout_ms: int = 30_000) -> bool:
        """Wait for the worker to finish and the thread to end; True if it did within the timeout."""
        self.thread.quit()
        return self.thread.wait(timeout_ms)
