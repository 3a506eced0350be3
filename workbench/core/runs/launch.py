"""Starting a run and continuing one: the one recipe the command line and the app share.

A new run builds its :class:`~workbench.core.training.engine.Trainer` first (so that a bad setting or architecture
is refused before any folder exists), then makes the run folder and attaches its
:class:`~workbench.core.runs.folders.RunRecorder`. A continuation reads the run folder's checkpoint and trains
the same run, with its own settings, for more epochs, recording into the same folder (:func:`continue_run`;
:func:`read_continuation` first where the saved settings are needed before the trainer is built, e.g. to join a
multi-process run on the run's device). A continuation may change how the run goes on (:data:`CONTINUABLE`: the
learning rate to rescue a diverged run, the schedule, the batch size, ...), never what the run is (its data,
sizes, seed, optimizer, loss): each change is recorded in the folder.

A run folder has one writer at a time: the recorder takes the folder's lock (see lock.py) before anything is
written, so a second process continuing a run that is training is refused with the process that holds it.

In a multi-process run (``cluster``), only rank 0 writes the run folder: the other ranks get no folder and no
recorder.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.architecture import Architecture
from workbench.core.errors import ConfigError
from workbench.core.runs.folders import load_checkpoint, new_run_dir, read_run
from workbench.core.runs.lock import check_not_being_trained
from workbench.core.runs.naming import run_name
from workbench.core.runs.recorder import RunRecorder, check_room, continuation_record
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Checkpoint, Trainer

if TYPE_CHECKING:
    from workbench.core.training.distributed import Cluster


@dataclass(frozen=True)
class LaunchedRun:
    """A run ready for ``trainer.run()``.

    ``folder`` is the run folder and ``recorder`` the :class:`RunRecorder` writing it, already first among
    ``trainer.callbacks`` (add yours after it); both are None only on the ranks other than 0 of a multi-process
    run. ``continued_after`` is the epoch a continuation goes on from (None for a new run).
    """

    trainer: Trainer
    folder: Path | None
    recorder: RunRecorder | None
    continued_after: int | None = None


def new_run(
    architecture: Architecture,
    config: TrainConfig,
    out: str | os.PathLike[str] | None = None,
    *,
    progress: bool = True,
    cluster: Cluster | None = None,
    root: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> LaunchedRun:
    """A new run of ``architecture`` under ``config``, recording into ``out`` (None: a new folder in ``root``, by
    default the runs folder; see :func:`~workbench.core.runs.folders.new_run_dir`).

    ``name`` is the name the run is shown by (None: what it is, :func:`~workbench.core.runs.naming.run_name`, for a
    folder named after the date; the folder's name for a folder the user chose with ``out``). ``progress`` shows
    the dataset's download or loading progress on the console. Raises the
    :class:`~workbench.core.errors.WorkbenchError` of a bad setting, architecture, dataset or folder.
    """
    trainer = Trainer(architecture, config, progress=progress, cluster=cluster)
    if not trainer.is_main:
        return LaunchedRun(trainer, None, None)
    folder = new_run_dir(out, trainer.architecture, trainer.config, root)
    if name is None and out is None:
        name = run_name(trainer.architecture, trainer.config)
    try:
        return _recorded(trainer, folder, name=name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing was written in it but the lock file
        raise


CONTINUABLE = (
    "epochs",
    "lr",
    "schedule",
    "step_size",
    "gamma",
    "batch_size",
    "early_stopping",
    "device",
    "mixed_precision",
    "compile",
    "data_dir",
)
"""The settings a continuation may change: how the run goes on. The others decide what the run is."""


def continue_run(
    folder: str | os.PathLike[str],
    extra_epochs: int,
    changes: Mapping[str, Any] | None = None,
    *,
    progress: bool = True,
    cluster: Cluster | None = None,
) -> LaunchedRun:
    """The run in ``folder``, continued from its checkpoint for ``extra_epochs`` more epochs with its own settings
    (but ``changes``), recording into the same folder: :func:`read_continuation`, then :meth:`Continuation.start`.

    Raises :class:`~workbench.core.errors.RunError` where the folder cannot be continued.
    """
    return read_continuation(folder, extra_epochs, changes).start(progress=progress, cluster=cluster)


@dataclass(frozen=True)
class Continuation:
    """A run read back from its folder, to be continued: its architecture, its settings with ``epochs`` raised to
    the checkpoint's epoch plus the epochs to add, and the checkpoint. Its settings say which device to join a
    multi-process run on before :meth:`start`."""

    folder: Path
    architecture: Architecture
    config: TrainConfig
    checkpoint: Checkpoint
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def start(self, *, progress: bool = True, cluster: Cluster | None = None) -> LaunchedRun:
        """The continued run, ready to train, recording into its folder (on rank 0 of a ``cluster``)."""
        trainer = Trainer(self.architecture, self.config, progress=progress, resume=self.checkpoint, cluster=cluster)
        if not trainer.is_main:
            return LaunchedRun(trainer, None, None, self.checkpoint.epoch)
        record = continuation_record(self.checkpoint.epoch, self.changed)
        return _recorded(trainer, self.folder, self.checkpoint.epoch, record)


def read_continuation(
    folder: str | os.PathLike[str], extra_epochs: int, changes: Mapping[str, Any] | None = None
) -> Continuation:
    """The run in ``folder`` with what it needs to train ``extra_epochs`` more epochs, with the settings in
    ``changes`` changed (only :data:`CONTINUABLE` ones; a setting given with its saved value is no change).

    :class:`RunError` where it cannot be continued (see :func:`~workbench.core.runs.folders.load_checkpoint`) or a
    process is training it now; :class:`ConfigError` naming the settings that cannot change, or a bad value.
    """
    folder = Path(folder)
    check_not_being_trained(folder)
    architecture, saved, checkpoint = load_checkpoint(folder)
    if "mixed_precision" not in (changes or {}):
        saved = _with_recorded_precision(folder, saved)
    changed = _changes(saved, dict(changes or {}))
    config = dataclasses.replace(
        saved, **{name: new for name, (_, new) in changed.items()}, epochs=checkpoint.epoch + extra_epochs
    )
    config.check()
    if "lr" in changed:
        checkpoint = _with_learning_rate(checkpoint, config.lr)
    changed["epochs"] = (saved.epochs, config.epochs)
    return Continuation(folder, architecture, config, checkpoint, changed)


def _changes(saved: TrainConfig, requested: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The requested settings that differ from the saved ones, as ``(old, new)``; :class:`ConfigError` naming
    those that may not change."""
    requested.pop("epochs", None)  # a continuation's epochs are the epochs to add
    unknown = [name for name in requested if not hasattr(saved, name)]
    if unknown:
        raise ValueError(f"not settings: {', '.join(unknown)}")
    wanted = TrainConfig.from_dict({**saved.to_dict(), **requested}) if requested else saved
    differing = {
        name: (getattr(saved, name), getattr(wanted, name))
        for name in requested
        if getattr(wanted, name) != getattr(saved, name)
    }
    fixed = [name for name in differing if name not in CONTINUABLE]
    if fixed:
        options = ", ".join(_option(name) for name in fixed)
        allowed = ", ".join(_option(name) for name in CONTINUABLE)
        raise ConfigError(
            f"{options} cannot change when a run is continued: they decide what the run is, and the run keeps its "
            f"own. Start a new run for other values. A continued run can change {allowed}."
        )
    return differing


def _with_recorded_precision(folder: Path, saved: TrainConfig) -> TrainConfig:
    """A run started with ``mixed_precision`` auto goes on in the precision it was started in, which auto might
    choose otherwise on another machine: ``on`` for bfloat16, ``off`` for float32."""
    execution = read_run(folder).get("execution")
    recorded = execution.get("precision") if isinstance(execution, dict) else None
    if saved.mixed_precision != "auto" or recorded not in ("bfloat16", "float32"):
        return saved
    return dataclasses.replace(saved, mixed_precision="on" if recorded == "bfloat16" else "off")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _with_learning_rate(checkpoint: Checkpoint, lr: float) -> Checkpoint:
    """The checkpoint with its optimizer set to go on at ``lr`` (the saved optimizer state holds the old one)."""
    optimizer = copy.deepcopy(checkpoint.optimizer)
    for group in optimizer.get("param_groups", []):
        group["lr"] = lr
        if "initial_lr" in group:
            group["initial_lr"] = lr
    return dataclasses.replace(checkpoint, optimizer=optimizer)


def _recorded(
    trainer: Trainer,
    folder: Path,
    continued_after: int | None = None,
    continuation: dict[str, Any] | None = None,
    name: str | None = None,
) -> LaunchedRun:
    recorder = RunRecorder(folder, continuation, name)
    try:
        check_room(folder, trainer.model)
    except BaseException:
        recorder.lock.release()
        raise
    trainer.callbacks.insert(0, recorder)
    return LaunchedRun(trainer, folder, recorder, continued_after)
