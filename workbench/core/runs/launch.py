"""Starting a run and continuing one: the one recipe the command line and the app share.

A new run builds its :class:`~workbench.core.training.engine.Trainer` first (so that a bad setting or architecture
is refused before any folder exists), then makes the run folder and attaches its
:class:`~workbench.core.runs.folders.RunRecorder`. A continuation reads the run folder's checkpoint and trains
the same run, with its own settings, for more epochs, recording into the same folder (:func:`continue_run`;
:func:`read_continuation` first where the saved settings are needed before the trainer is built, e.g. to join a
multi-process run on the run's device).

In a multi-process run (``cluster``), only rank 0 writes the run folder: the other ranks get no folder and no
recorder.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.architecture import Architecture
from workbench.core.runs.folders import RunRecorder, load_checkpoint, new_run_dir
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
) -> LaunchedRun:
    """A new run of ``architecture`` under ``config``, recording into ``out`` (None: a new folder in the runs
    folder, see :func:`~workbench.core.runs.folders.new_run_dir`).

    ``progress`` shows the dataset's download or loading progress on the console. Raises the
    :class:`~workbench.core.errors.WorkbenchError` of a bad setting, architecture, dataset or folder.
    """
    trainer = Trainer(architecture, config, progress=progress, cluster=cluster)
    if not trainer.is_main:
        return LaunchedRun(trainer, None, None)
    return _recorded(trainer, new_run_dir(out, trainer.architecture, trainer.config))


def continue_run(
    folder: str | os.PathLike[str],
    extra_epochs: int,
    *,
    progress: bool = True,
    cluster: Cluster | None = None,
) -> LaunchedRun:
    """The run in ``folder``, continued from its checkpoint for ``extra_epochs`` more epochs with its own settings,
    recording into the same folder: :func:`read_continuation`, then :meth:`Continuation.start`.

    Raises :class:`~workbench.core.errors.RunError` where the folder cannot be continued.
    """
    return read_continuation(folder, extra_epochs).start(progress=progress, cluster=cluster)


@dataclass(frozen=True)
class Continuation:
    """A run read back from its folder, to be continued: its architecture, its settings with ``epochs`` raised to
    the checkpoint's epoch plus the epochs to add, and the checkpoint. Its settings say which device to join a
    multi-process run on before :meth:`start`."""

    folder: Path
    architecture: Architecture
    config: TrainConfig
    checkpoint: Checkpoint

    def start(self, *, progress: bool = True, cluster: Cluster | None = None) -> LaunchedRun:
        """The continued run, ready to train, recording into its folder (on rank 0 of a ``cluster``)."""
        trainer = Trainer(self.architecture, self.config, progress=progress, resume=self.checkpoint, cluster=cluster)
        if not trainer.is_main:
            return LaunchedRun(trainer, None, None, self.checkpoint.epoch)
        return _recorded(trainer, self.folder, self.checkpoint.epoch)


def read_continuation(folder: str | os.PathLike[str], extra_epochs: int) -> Continuation:
    """The run in ``folder`` with what it needs to train ``extra_epochs`` more epochs; :class:`RunError` where it
    cannot be continued (see :func:`~workbench.core.runs.folders.load_checkpoint`)."""
    folder = Path(folder)
    architecture, saved, checkpoint = load_checkpoint(folder)
    config = dataclasses.replace(saved, epochs=checkpoint.epoch + extra_epochs)
    return Continuation(folder, architecture, config, checkpoint)


def _recorded(trainer: Trainer, folder: Path, continued_after: int | None = None) -> LaunchedRun:
    recorder = RunRecorder(folder)
    trainer.callbacks.insert(0, recorder)
    return LaunchedRun(trainer, folder, recorder, continued_after)
