"""A training run as a task: the engine's callbacks turned into throttled reports the session records.

Everything here is plain Python: the reports (:class:`RunStart`, :class:`BatchPacket`, :class:`EpochPacket`)
travel from the training thread through :meth:`TaskState.report` to the session's thread, where the
runner delivers them. Pause and stop go straight to the engine's own thread-safe handles, so they act at
the next batch boundary.

While a run trains, the thread that owns the session should compute as little as it can, and hold no OpenMP
workers: see :func:`release_idle_workers`.
"""

from __future__ import annotations

import ctypes
import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from workbench.core.architecture import Architecture
from workbench.core.runs.launch import continue_run, new_run
from workbench.core.runs.metrics import Evaluation, evaluation_from_predictions
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Callback, EpochMetrics, Trainer, TrainResult, TrainState
from workbench.core.training.gradients import GradientMonitor, GradientSample
from workbench.core.training.loss_watch import read_losses
from workbench.session.tasks import TaskState

REPORTS_PER_SECOND = 4.0
"""Batch packets a second at most: each costs the window's thread a progress bar and the curves' points."""


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
    """A run has loaded its data, built its model and is about to train.

    ``history`` holds the epochs of an earlier session when a run is continued; ``first_step`` is the
    global batch number the first new batch will have; ``batches_per_epoch`` the engine's count (a last batch
    too small for batch normalisation joins the one before it).
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
    batches_per_epoch: int


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
class TestProgress:
    """The test split is being scored at the end of a run: ``done`` of ``total`` images."""

    done: int
    total: int


@dataclass
class RunNotice:
    """Something the user should know about the run that does not stop it (the engine's ``on_notice``: e.g. a last
    batch too small for batch normalisation joins the one before it, or torch.compile failed)."""

    message: str


@dataclass
class RunEnd:
    """How a run ended, with its final weights on the CPU; a stopped run has no test accuracy (NaN) and no
    evaluation. ``saved`` is False for a new run stopped before its first epoch ended: its folder was removed."""

    status: str
    message: str
    test_accuracy: float
    folder: Path
    weights: dict[str, torch.Tensor] = field(repr=False)
    evaluation: Evaluation | None = field(default=None, repr=False)
    saved: bool = True


@dataclass(frozen=True)
class RunRequest:
    """What to train: a new run of ``architecture`` under ``config`` (into ``out``, else into a new folder in
    ``runs_root``, by default the runs folder; shown by ``name``, else its folder's), or ``resume`` a run folder for
    ``extra_epochs`` more epochs. Both are snapshots: later edits in the window do not reach the run."""

    architecture: Architecture | None = None
    config: TrainConfig | None = None
    out: Path | None = None
    resume: Path | None = None
    extra_epochs: int = 0
    runs_root: Path | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.resume is None and (self.architecture is None or self.config is None):
            raise ValueError("A new run needs an architecture and a config.")
        if self.architecture is not None:
            object.__setattr__(self, "architecture", self.architecture.copy())
        if self.config is not None:
            object.__setattr__(self, "config", TrainConfig.from_dict(self.config.to_dict()))


def train(request: RunRequest, state: TaskState, rate_hz: float = REPORTS_PER_SECOND) -> RunEnd:
    """Load, build and train as ``request`` says, reporting through ``state``; the run's end.

    Pause, resume and cancel of ``state`` act on the run at the next batch boundary; a cancel also between two
    chunks of an evaluation, and a cancelled run is not tested (so that closing the window is quick).
    """
    if request.resume is None:
        assert request.architecture is not None and request.config is not None
        launched = new_run(
            request.architecture,
            request.config,
            request.out,
            progress=False,
            root=request.runs_root,
            name=request.name,
        )
    else:
        launched = continue_run(request.resume, request.extra_epochs, progress=False)
    trainer, folder, recorder = launched.trainer, launched.folder, launched.recorder
    assert folder is not None and recorder is not None  # None only on the other ranks of a torchrun
    # One monitor for the Gradients tab and the run folder's gradients.jsonl: the recorder drives it.
    monitor = recorder.gradients = GradientMonitor()
    trainer.callbacks += [_Reporter(state, 1.0 / rate_hz, folder, monitor)]
    state.on("cancel", trainer.stop)
    state.on("pause", trainer.pause)
    state.on("resume", trainer.resume)
    state.holding = lambda: trainer.holding
    result = trainer.run()
    return RunEnd(
        result.status,
        result.message,
        result.test_accuracy,
        folder,
        cpu_weights(result.model),
        recorder.evaluation,
        saved=not recorder.removed,
    )


class _Reporter(Callback):
    """Engine callbacks (on the training thread) -> reports, at most ``1 / interval`` batch packets a second.

    An epoch's end does not send the batches since the last packet: a quick network's epochs end many times a
    second, and the next packet carries them.
    """

    def __init__(self, state: TaskState, interval: float, folder: Path, monitor: GradientMonitor):
        self.state = state
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
        self.state.report(
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
                state.batches_per_epoch,
            )
        )

    def on_batch_end(self, trainer: Trainer, state: TrainState) -> None:
        self.steps.append((state.epoch - 1) * state.batches_per_epoch + state.batch)
        self.losses.append(state.batch_loss_value)  # read back together in _emit, not one batch at a time
        now = time.perf_counter()
        if now - self.last_emit >= self.interval:
            self._emit(state, now)

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: EpochMetrics) -> None:
        probabilities = labels = None
        if state.val_probabilities is not None and len(state.val_probabilities):
            probabilities = state.val_probabilities.to("cpu", torch.float32).numpy()
            labels = trainer.data.val_y.cpu().numpy()
        self.state.report(
            EpochPacket(
                metrics, cpu_weights(trainer.model), probabilities, labels, tuple(trainer.data.info.class_names)
            )
        )

    def on_notice(self, trainer: Trainer, message: str) -> None:
        self.state.report(RunNotice(message))

    def on_test_start(self, trainer: Trainer, state: TrainState, count: int) -> None:
        self.state.report(TestProgress(0, count))

    def on_test_progress(self, trainer: Trainer, state: TrainState, done: int, total: int) -> None:
        self.state.report(TestProgress(done, total))

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
        self.state.report(
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


OMP_PAUSE_SOFT = 1
"""``omp_pause_soft`` of OpenMP 5's ``omp_pause_resource_t``."""


def release_idle_workers() -> None:
    """Let the OpenMP worker threads go that this thread's own PyTorch work started, if it started any.

    Call it from the session's thread while a run trains on another. GNU OpenMP (PyTorch's on Linux) keeps a team
    of workers for every thread that has computed in parallel, and once the teams' threads outnumber the CPUs,
    every worker sleeps between two parallel regions instead of spinning: each of the training thread's many small
    operations then waits for its workers to wake (on 2 cores seed-simplenet trained 1.5x slower beside the
    window's idle team). A team comes back by itself when this thread next computes in parallel. Nothing happens
    under other OpenMP runtimes, which share one pool among all threads.
    """
    pause = _gnu_openmp_pause()
    if pause is not None:
        pause(OMP_PAUSE_SOFT)


@functools.cache
def _gnu_openmp_pause() -> Callable[[int], int] | None:
    """libgomp's ``omp_pause_resource_all`` (which frees only the calling thread's team), if this process has it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        process = ctypes.CDLL(None)
    except OSError:
        return None
    # LLVM's and Intel's runtimes (which define __kmpc_fork_call) pause every thread's workers at once.
    if not hasattr(process, "GOMP_parallel") or hasattr(process, "__kmpc_fork_call"):
        return None
    pause = getattr(process, "omp_pause_resource_all", None)
    if pause is None:
        return None
    pause.argtypes, pause.restype = [ctypes.c_int], ctypes.c_int
    return pause


def cpu_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's weights on the CPU, safe to hand to another thread."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}
