"""Recording a run as it trains: :class:`RunRecorder` writes the run folder (see folders.py for its files) at the
run's start, every epoch's end and its end, holding the folder's lock meanwhile; and what run.json records of
the run, its machine and its continuations.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import platform
import shutil
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy
import safetensors.torch
import torch

from workbench import __version__
from workbench.core.data.datasets import DatasetInfo
from workbench.core.errors import RunError
from workbench.core.files import atomic_write_bytes, atomic_write_text
from workbench.core.runs.folders import (
    ARCHITECTURE_FILE,
    BATCHES_FILE,
    EVALUATION_FILE,
    GRADIENTS_FILE,
    METRICS_FILE,
    RUN_FILE,
    WEIGHTS_FILE,
    BatchLosses,
    checkpoint_epoch,
    finite,
    read_batch_losses,
    read_gradients,
    read_run,
    write_checkpoint,
)
from workbench.core.runs.lock import RunLock
from workbench.core.runs.metrics import Evaluation, evaluation_from_predictions
from workbench.core.training.engine import Callback, EpochMetrics, Trainer, TrainResult, TrainState
from workbench.core.training.gradients import GradientEpoch, GradientMonitor, epoch_gradients
from workbench.core.training.loss_watch import read_losses

Epochal = TypeVar("Epochal", BatchLosses, GradientEpoch)
"""A line of a per-epoch file (batches.jsonl, gradients.jsonl)."""

RECORDED_SAMPLES_PER_EPOCH = 4
"""The logging steps an epoch of a run's own gradient monitor (the median of which gradients.jsonl keeps)."""


def library_versions() -> dict[str, str]:
    """The versions that decide whether a run can be repeated."""
    return {
        "workbench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": metadata.version("torchvision"),
        "numpy": numpy.__version__,
        "platform": f"{sys.platform}-{platform.machine()}",
    }


class RunRecorder(Callback):
    """Writes a run's folder as it trains: the start, every epoch (metrics, gradient norms and a checkpoint), and
    the end (weights, and the test split's evaluation: per-class scores and confusion matrix).

    The recorder drives :attr:`gradients`, a :class:`~workbench.core.training.gradients.GradientMonitor` (it calls
    the monitor's events itself: do not add it to the trainer's callbacks), and keeps each epoch's median norm of
    every trainable layer in gradients.jsonl, one line an epoch (:class:`GradientEpoch`). Its own monitor measures
    the norms only, :data:`RECORDED_SAMPLES_PER_EPOCH` batches an epoch, read back at the epoch's end: it never makes
    the CPU wait for a GPU. Set :attr:`gradients` to another monitor before the run starts to share it (the app's
    live Gradients tab samples more often, with dead units): the file then summarises that one's samples.

    ``run.json`` records the trainer's own copy of the settings, with the subset sizes it drew, and how it
    trained (``execution``: precision, memory format, processes). Its status is ``running`` until the run
    ends; a run broken off by an exception (e.g. the GPU ran out of memory) is marked ``failed`` with the
    reason, and one whose process was killed stays ``running`` (:func:`~workbench.core.runs.lock.writer_of` tells
    it from a live one).

    The recorder holds the folder's :class:`~workbench.core.runs.lock.RunLock` from its creation to the run's end:
    :class:`RunError` if another process is writing the folder. A file that cannot be written (a full disk) stops
    the run with a :class:`RunError` saying so; the previous checkpoint stays whole, so the run can be continued,
    and the run is marked ``stopped``. ``continuation`` describes what a continued run changed (see
    :func:`continuation_record`); it is kept in run.json's ``continuations`` and on the first epoch it trains in
    metrics.jsonl. A new run that ends before its first epoch does, or cannot write its first checkpoint, leaves
    nothing: its folder is removed (``removed``).
    """

    def __init__(self, folder: Path, continuation: dict[str, Any] | None = None, name: str | None = None):
        self.folder = folder
        self.name = name  # the name a new run is shown by (None: its folder's)
        self.lock = RunLock(folder).acquire()
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        self.evaluation: Evaluation | None = None
        self.continuations = _previous_continuations(folder)
        if continuation is not None:
            self.continuations.append(continuation)
        self._write_failure: str | None = None
        self.new_run = not (folder / RUN_FILE).exists()
        self.removed = False
        self.gradients = GradientMonitor(per_epoch=RECORDED_SAMPLES_PER_EPOCH, dead_units=False, live=False)
        self.gradient_epochs: list[GradientEpoch] = []  # what gradients.jsonl holds
        self._summarised = 0  # the monitor's samples already in gradient_epochs
        self.batch_epochs: list[BatchLosses] = []  # what batches.jsonl holds
        self._batch_losses: list[torch.Tensor | float] = []  # this epoch's, read back at its end

    def on_train_start(self, trainer: Trainer, state: TrainState) -> None:
        self.gradients.on_train_start(trainer, state)
        self._summarised = 0
        with self._writing(state):
            atomic_write_text(self.folder / ARCHITECTURE_FILE, trainer.architecture.to_json())
            if not state.history:
                atomic_write_text(self.folder / METRICS_FILE, "")
            self._take_up_gradients(len(state.history))
            self._take_up_batches(len(state.history))
            self._write_run(trainer, "running", None)

    def on_batch_end(self, trainer: Trainer, state: TrainState) -> None:
        self.gradients.on_batch_end(trainer, state)
        self._batch_losses.append(state.batch_loss_value)  # no read-back per batch: all at the epoch's end

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: EpochMetrics) -> None:
        summary = self._epoch_gradients(trainer, state, metrics)
        self._epoch_batches(state)
        with self._writing(state):
            write_checkpoint(self.folder, trainer.checkpoint(state))
            changed = {entry["after_epoch"] + 1: _settings_changed(entry) for entry in self.continuations}
            lines = (
                json.dumps({**finite(epoch.to_dict()), **_changed(changed.get(epoch.epoch))}) + "\n"
                for epoch in state.history
            )
            atomic_write_text(self.folder / METRICS_FILE, "".join(lines))
            if summary is not None:
                self.gradient_epochs.append(summary)
            atomic_write_text(self.folder / GRADIENTS_FILE, _gradient_lines(self.gradient_epochs))
            atomic_write_text(self.folder / BATCHES_FILE, _batch_lines(self.batch_epochs))

    def _epoch_batches(self, state: TrainState) -> None:
        """This epoch's batch losses, read back from the device at once, as batches.jsonl's next line."""
        losses, self._batch_losses = read_losses(self._batch_losses), []
        first = (state.epoch - 1) * state.batches_per_epoch + 1
        self.batch_epochs.append(BatchLosses(state.epoch, first, losses[-state.batches_per_epoch :]))

    def _take_up_batches(self, epochs: int) -> None:
        """As :meth:`_take_up_gradients`, for batches.jsonl."""
        self._batch_losses = []
        self.batch_epochs = self._kept_lines(BATCHES_FILE, read_batch_losses, _batch_lines, epochs)

    def _epoch_gradients(self, trainer: Trainer, state: TrainState, metrics: EpochMetrics) -> GradientEpoch | None:
        """The epoch's line of gradients.jsonl, from the monitor's samples of its batches."""
        self.gradients.on_epoch_end(trainer, state, metrics)  # a monitor that is not live reads its samples back
        new = self.gradients.samples(self._summarised)
        self._summarised += len(new)
        end = state.epoch * state.batches_per_epoch
        in_epoch = [sample for sample in new if end - state.batches_per_epoch < sample.step <= end]
        return epoch_gradients(state.epoch, end, in_epoch)

    def _take_up_gradients(self, epochs: int) -> None:
        """Keep the lines of gradients.jsonl of the first ``epochs`` epochs (those of the checkpoint a run continues),
        and write the file again without any that a killed process wrote after its checkpoint, or that cannot be
        read. A new run writes the file at its first epoch's end (nothing of a run that never was)."""
        self.gradient_epochs = self._kept_lines(GRADIENTS_FILE, read_gradients, _gradient_lines, epochs)

    def _kept_lines(
        self,
        name: str,
        read: Callable[[Path], list[Epochal]],
        lines: Callable[[list[Epochal]], str],
        epochs: int,
    ) -> list[Epochal]:
        """The lines of the per-epoch file ``name`` for epochs 1 to ``epochs``; the file is written again when it
        held others (or could not be read)."""
        if not epochs:
            return []
        try:
            recorded = read(self.folder)
        except RunError:
            recorded = []
            damaged = True  # written again, without what cannot be read
        else:
            damaged = False
        kept = [line for line in recorded if 1 <= line.epoch <= epochs]
        if damaged or len(kept) != len(recorded):
            atomic_write_text(self.folder / name, lines(kept))
        return kept

    @contextlib.contextmanager
    def _writing(self, state: TrainState) -> Iterator[None]:
        """Turns a failed write into a :class:`RunError` that names the disk and what was saved."""
        try:
            yield
        except OSError as error:
            self._write_failure = write_failure(self.folder, error, checkpoint_epoch(self.folder))
            raise RunError(self._write_failure) from None

    def on_train_end(self, trainer: Trainer, state: TrainState, result: TrainResult) -> None:
        self.gradients.on_train_end(trainer, state, result)
        try:
            if not result.history and self.new_run:
                self.removed = True  # stopped before its first epoch: nothing to keep, nothing to continue
                shutil.rmtree(self.folder, ignore_errors=True)
                return
            with self._writing(state):
                self._write_end(trainer, result)
        finally:
            self.lock.release()

    def _write_end(self, trainer: Trainer, result: TrainResult) -> None:
        """The run's final files: its weights, the test split's evaluation, and run.json with how it ended."""
        weights = {name: tensor.detach().cpu().contiguous() for name, tensor in result.model.state_dict().items()}
        atomic_write_bytes(self.folder / WEIGHTS_FILE, safetensors.torch.save(weights))
        data, probabilities = trainer.data, result.test_probabilities
        if probabilities is None or not len(probabilities):  # not tested (stopped): no evaluation of these weights
            self.evaluation = None
            (self.folder / EVALUATION_FILE).unlink(missing_ok=True)
        else:  # the engine's own pass over the test split, not a second one
            self.evaluation = evaluation_from_predictions(data.test_y, probabilities, data.info.class_names)
            atomic_write_text(self.folder / EVALUATION_FILE, json.dumps(self.evaluation.to_dict()) + "\n")
        self._write_run(trainer, result.status, result)

    def on_train_failed(self, trainer: Trainer, state: TrainState, message: str) -> None:
        self.gradients.on_train_failed(trainer, state, message)
        try:
            if self._write_failure and self.new_run and checkpoint_epoch(self.folder) is None:
                self.removed = True  # a new run that could not save anything: leave the folder free to start again
                shutil.rmtree(self.folder, ignore_errors=True)
            else:
                self._write_run(trainer, "stopped" if self._write_failure else "failed", None, message)
        except OSError:
            pass  # the disk that stopped the run may not take run.json either; it then reads as interrupted
        finally:
            self.lock.release()

    def _write_run(self, trainer: Trainer, status: str, result: TrainResult | None, message: str = "") -> None:
        document: dict[str, Any] = {
            "format": "workbench-run",
            "version": 1,
            "name": self._display_name(),
            "status": status,
            "started": self.started,
            "config": trainer.config.to_dict(),
            "architecture": trainer.architecture.to_dict(),
            "dataset": trainer.data.info.name,
            "seed": trainer.config.seed,
            "device": str(trainer.device),
            "versions": library_versions(),
            "data": data_description(trainer.data.info),
            "execution": _execution(trainer),
        }
        if self.continuations:
            document["continuations"] = self.continuations
        if message:
            document["message"] = message
        if result is not None:
            document["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
            document["message"] = result.message
            document["metrics"] = finite(
                {
                    "epochs_completed": len(result.history),
                    "test_accuracy": result.test_accuracy,
                    "test_loss": result.test_loss,
                    "best_val_accuracy": result.best_val_accuracy,
                    "final_val_accuracy": result.history[-1].val_accuracy if result.history else math.nan,
                    "final_train_loss": result.history[-1].train_loss if result.history else math.nan,
                    "duration_seconds": result.duration_seconds,
                }
            )
        atomic_write_text(self.folder / RUN_FILE, json.dumps(document, indent=2) + "\n")

    def _display_name(self) -> str:
        """The name :func:`rename_run` gave the run (kept when it is continued), else the one it was started with,
        else the folder's."""
        fallback = self.name or self.folder.name
        try:
            name = read_run(self.folder).get("name")
        except RunError:
            return fallback
        return name if isinstance(name, str) and name.strip() else fallback


def continuation_record(after_epoch: int, changed: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """What run.json keeps of one continuation: when, after which epoch, and the settings it changed (old, new)."""
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "after_epoch": after_epoch,
        "changed": {name: {"from": old, "to": new} for name, (old, new) in changed.items()},
    }


def _previous_continuations(folder: Path) -> list[dict[str, Any]]:
    """The continuations an existing run.json records (none for a new run, or where it cannot be read)."""
    try:
        entries = read_run(folder).get("continuations")
    except RunError:
        return []
    if not isinstance(entries, list):
        return []
    return [
        entry
        for entry in entries
        if isinstance(entry, dict)
        and isinstance(entry.get("after_epoch"), int)
        and isinstance(entry.get("changed"), dict)
    ]


def _settings_changed(entry: dict[str, Any]) -> dict[str, Any]:
    """What a continuation changed beyond the epochs (every continuation adds epochs)."""
    return {name: change for name, change in entry["changed"].items() if name != "epochs"}


def _changed(changes: dict[str, Any] | None) -> dict[str, Any]:
    return {"changed": changes} if changes else {}


def _gradient_lines(epochs: list[GradientEpoch]) -> str:
    """gradients.jsonl's text: one JSON line an epoch, each norm to 6 significant digits (a norm that is not finite
    as null)."""
    return "".join(
        json.dumps({**epoch.to_dict(), "grad_norms": finite(_rounded(epoch.grad_norms))}) + "\n" for epoch in epochs
    )


def _batch_lines(epochs: list[BatchLosses]) -> str:
    """batches.jsonl's text: one JSON line an epoch, each loss to 5 significant digits (one not finite as null)."""
    return "".join(
        json.dumps(
            {
                **epoch.to_dict(),
                "losses": [float(f"{loss:.5g}") if math.isfinite(loss) else None for loss in epoch.losses],
            }
        )
        + "\n"
        for epoch in epochs
    )


def _rounded(norms: dict[str, float]) -> dict[str, float]:
    return {label: float(f"{norm:.6g}") for label, norm in norms.items()}


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def write_failure(folder: Path, error: OSError, saved_epoch: int | None) -> str:
    """The message of a run stopped because a file of its folder could not be written."""
    if saved_epoch:
        after = f"the run stopped after epoch {saved_epoch} (the last one saved) and can continue"
    else:
        after = "the run stopped before it saved its first epoch; it can start again"
    if error.errno in DISK_FULL:
        return f"The disk is full ({free_megabytes(folder)} MB free in {folder}): {after} once there is room."
    where = Path(error.filename).name if error.filename else folder
    return f"Cannot write {where} in {folder} ({error.strerror or error}): {after} once that is fixed."


def free_megabytes(folder: Path) -> str:
    """The room left on ``folder``'s disk, in MB, for a message."""
    try:
        return f"{shutil.disk_usage(folder).free / 1e6:,.0f}"
    except OSError:
        return "?"


def check_room(folder: Path, model: torch.nn.Module) -> None:
    """:class:`RunError` when ``folder``'s disk has clearly too little room for the run's files: a checkpoint (the
    weights and up to two optimizer slots per weight) and the final weights, with a megabyte to spare."""
    weight_bytes = sum(tensor.numel() * tensor.element_size() for tensor in model.state_dict().values())
    needed = 4 * weight_bytes + 1_000_000
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed:
        raise RunError(
            f"The disk is full ({free / 1e6:,.1f} MB free in {folder}; this run needs about {needed / 1e6:,.1f} MB "
            f"for its checkpoints): make room, or choose a folder on another disk."
        )


def _execution(trainer: Trainer) -> dict[str, Any]:
    """How the run trains, beyond its settings: the forward passes' precision and why, the memory format, the CPU
    threads (of each process) and the processes. A continued run keeps the precision recorded here."""
    return {
        "precision": trainer.precision_choice.name,
        "precision_reason": trainer.precision_choice.reason,
        "channels_last": trainer.channels_last,
        "threads": torch.get_num_threads(),
        "compile": trainer.config.compile,
        "processes": trainer.cluster.world_size if trainer.cluster is not None else 1,
    }


def data_description(info: DatasetInfo) -> dict[str, Any]:
    """What a trained network needs to know of its data to be used again: classes, input and normalisation."""
    return {
        "name": info.name,
        "title": info.title,
        "class_names": list(info.class_names),
        "input_shape": list(info.input_shape),
        "mean": list(info.mean),
        "std": list(info.std),
    }
