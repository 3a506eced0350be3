"""The Runs table's rows: a summary of every run folder, damaged ones included, with what can be done with each.

:func:`list_runs` never raises for what a folder holds: a run it cannot read is listed as damaged, with why.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from workbench.core.architecture import Architecture, build
from workbench.core.errors import RunError, WorkbenchError
from workbench.core.runs.folders import (
    ARCHITECTURE_FILE,
    CHECKPOINT_DIR,
    LATEST_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    checkpoint_file,
    default_runs_dir,
    error_reason,
    is_run_folder,
    read_metrics,
    read_run,
    run_file,
)
from workbench.core.runs.lock import writer_of

NO_CHECKPOINT = "no checkpoint: it cannot be continued"


@dataclass(frozen=True)
class RunSummary:
    """One row of the run history.

    ``status`` is the run's own (finished, stopped, early-stopped, diverged, failed), ``training`` while a process
    writes it (``writer``: that process's id), ``interrupted`` when its run.json says running but no process
    holds it (killed, or the machine stopped), or ``damaged``: a file it must have is missing or unreadable
    (run.json, architecture.json, metrics.jsonl, the final weights of an ended run, the checkpoint), weights
    belong to another architecture, or a file leads out of the folder.
    ``problem`` says why a run is damaged or cannot be continued. The fields after it: ``planned_epochs``
    the epochs its settings asked for, ``config`` the saved settings, ``message`` how it ended,
    ``checkpoint_epoch`` the epoch its checkpoint holds (None: it cannot be continued), ``has_weights``
    whether its final weights (model.safetensors) are there to evaluate.
    """

    folder: Path
    name: str
    status: str
    architecture: str
    dataset: str
    optimizer: str
    lr: float | None
    epochs: int
    best_val_accuracy: float | None
    test_accuracy: float | None
    duration_seconds: float | None
    started: str
    problem: str | None = None
    planned_epochs: int | None = None
    config: dict[str, Any] | None = None
    message: str = ""
    checkpoint_epoch: int | None = None
    has_weights: bool = False
    writer: int | None = None
    experiment: str = ""
    """The experiment or search folder the run belongs to (``experiments/NAME/runs/``), or empty."""

    @property
    def status_text(self) -> str:
        """The status as the ``runs`` command shows it: ``training (process 4242)`` for a live run."""
        if self.status == "training" and self.writer is not None:
            return f"training (process {self.writer})"
        return self.status

    @property
    def damaged(self) -> bool:
        """Whether the run's files cannot be trusted: only deleting it is offered."""
        return self.status == "damaged"


EXPERIMENTS_DIR = "experiments"
"""Where the app puts experiments and searches inside the runs folder, each with its runs in ``runs/``."""


def list_runs(root: str | os.PathLike | None = None, experiments: bool = False) -> list[RunSummary]:
    """Every run folder under ``root`` (default :func:`default_runs_dir`), newest first; damaged ones too.

    With ``experiments``, also the runs of every experiment and search in ``root/experiments/NAME/runs/``, each
    with its experiment's folder name in :attr:`RunSummary.experiment`. Folders that are not run folders
    (:func:`is_run_folder`) and files are left out. Whatever the folders hold, this does not raise: a run that
    cannot be read is listed as damaged, with the reason.
    """
    root = Path(root) if root is not None else default_runs_dir()
    summaries = _runs_in(root)
    if experiments:
        try:
            groups = sorted(path for path in (root / EXPERIMENTS_DIR).iterdir() if path.is_dir())
        except OSError:
            groups = []
        for group in groups:
            summaries += [dataclasses.replace(summary, experiment=group.name) for summary in _runs_in(group / "runs")]
    return sorted(summaries, key=lambda summary: summary.started, reverse=True)


def _runs_in(folder: Path) -> list[RunSummary]:
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    return [_summarise_safely(entry) for entry in entries if is_run_folder(entry)]


def _summarise_safely(folder: Path) -> RunSummary:
    try:
        return _summarise(folder)
    except Exception as error:  # a hand-edited folder can fail in ways no check foresees; the list must still show
        return _damaged(folder, f"{folder} cannot be read ({error_reason(error)}).")


def _damaged(folder: Path, problem: str) -> RunSummary:
    return RunSummary(folder, folder.name, "damaged", "?", "?", "?", None, 0, None, None, None, "", problem)


def _summarise(folder: Path) -> RunSummary:
    try:
        document = read_run(folder)
        architecture = Architecture.from_dict(document["architecture"])
        expected = _state_shapes(architecture)
    except WorkbenchError as error:
        return _damaged(folder, str(error))
    writer = writer_of(folder)
    status = _text(document["status"])
    config, metrics = _mapping(document.get("config")), _mapping(document.get("metrics"))
    epochs, best_val_accuracy, test_accuracy, duration, metrics_problem = _figures(folder, metrics)
    checkpoint_epoch, checkpoint_problem = _checkpoint_state(folder, expected, architecture.name)
    ended = writer is None and isinstance(document.get("metrics"), dict)  # its end was recorded, with the weights
    has_weights, weights_problem = _weights_state(folder, expected, architecture.name, ended)
    damage = (
        _missing_architecture(folder)
        or metrics_problem
        or weights_problem
        or (checkpoint_problem if checkpoint_problem != NO_CHECKPOINT else None)
    )
    if writer is None and status == "running":
        status = "interrupted"
    elif writer is not None:
        status = "training"
    name = document.get("name")
    return RunSummary(
        folder,
        name.strip() if isinstance(name, str) and name.strip() else folder.name,
        "damaged" if damage else status,
        architecture.summary(),
        _text(document.get("dataset")),
        _text(config.get("optimizer")),
        _number(config.get("lr")),
        epochs,
        best_val_accuracy,
        test_accuracy,
        duration,
        _text(document.get("started"), ""),
        damage or _continuation_problem(status, checkpoint_epoch, checkpoint_problem),
        _count(config.get("epochs")),
        config,
        _text(document.get("message"), ""),
        checkpoint_epoch,
        has_weights,
        writer.pid if writer is not None else None,
    )


def _continuation_problem(status: str, checkpoint_epoch: int | None, problem: str | None) -> str | None:
    """Why the run cannot be continued, or what happened to it, in a sentence (None when nothing is wrong)."""
    if status == "training":
        return None
    if status == "interrupted":
        if checkpoint_epoch is None:
            return "its process ended before its first epoch did (killed?): nothing to continue."
        return f"its process ended without finishing (killed?); it can continue after epoch {checkpoint_epoch}."
    if problem == NO_CHECKPOINT and status == "stopped":
        return "stopped before its first epoch: nothing to continue."
    return problem


def _missing_architecture(folder: Path) -> str | None:
    if (folder / ARCHITECTURE_FILE).is_file():
        return None
    return f"its {ARCHITECTURE_FILE} is missing."


def _figures(folder: Path, metrics: dict[str, Any]) -> tuple[int, float | None, float | None, float | None, str | None]:
    """Epochs completed, best validation accuracy, test accuracy and duration: from run.json once the run
    ended, else (still training, or killed) from metrics.jsonl; and what is wrong with metrics.jsonl, if anything."""
    try:
        history = read_metrics(folder)
        problem = None
    except RunError as error:
        history, problem = [], f"its {METRICS_FILE} cannot be read: {error}"
    if metrics:
        return (
            _count(metrics.get("epochs_completed")) or 0,
            _number(metrics.get("best_val_accuracy")),
            _number(metrics.get("test_accuracy")),
            _number(metrics.get("duration_seconds")),
            problem,
        )
    accuracies = [epoch.val_accuracy for epoch in history if math.isfinite(epoch.val_accuracy)]
    seconds = [epoch.epoch_seconds for epoch in history if math.isfinite(epoch.epoch_seconds)]
    return len(history), max(accuracies, default=None), None, sum(seconds) if seconds else None, problem


def _state_shapes(architecture: Architecture) -> dict[str, tuple[int, ...]]:
    """The names and shapes of the model's weights and buffers; :class:`ArchitectureError` if it does not build."""
    return dict(_state_shapes_of(architecture.to_json()))


@functools.lru_cache(maxsize=256)
def _state_shapes_of(document: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Built on the meta device (no memory); cached by the architecture's JSON, since checking it is most of what
    listing a run costs and many runs share an architecture."""
    with torch.device("meta"):
        model = build(Architecture.from_json(document))
    return tuple((name, tuple(tensor.shape)) for name, tensor in model.state_dict().items())


def _file_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The names and shapes of the tensors in a safetensors file, read from its header alone."""
    with safe_open(path, framework="pt") as handle:
        return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}


def _weights_state(
    folder: Path, expected: dict[str, tuple[int, ...]], name: str, ended: bool
) -> tuple[bool, str | None]:
    """Whether model.safetensors is there, and why it is damaged (None when it is not): a run whose end was
    recorded (``ended``: run.json holds its final figures) must have it."""
    path = folder / WEIGHTS_FILE
    if not path.is_file() and not path.is_symlink():
        return False, f"its final weights ({WEIGHTS_FILE}) are missing." if ended else None
    try:
        shapes = _file_shapes(run_file(folder, WEIGHTS_FILE))
    except Exception as error:  # safetensors raises its own error type for a damaged header
        return False, f"its weights ({WEIGHTS_FILE}) are damaged ({error_reason(error)})."
    if shapes != expected:
        return False, f"its weights ({WEIGHTS_FILE}) do not belong to its architecture '{name}'."
    return True, None


def _checkpoint_state(folder: Path, expected: dict[str, tuple[int, ...]], name: str) -> tuple[int | None, str | None]:
    """The epoch the checkpoint holds, or None and why the run cannot be continued: :data:`NO_CHECKPOINT`
    when there is none, any other reason when the checkpoint is damaged."""
    directory = folder / CHECKPOINT_DIR
    if not (directory / LATEST_FILE).is_file():
        return None, NO_CHECKPOINT
    try:
        run_file(folder, CHECKPOINT_DIR, LATEST_FILE)
        epoch, files = _read_latest(directory)
        if _missing(directory, files):
            # a run training now may have replaced its checkpoint meanwhile: read latest.json once more
            epoch, files = _read_latest(directory)
        missing = _missing(directory, files)
        if missing:
            return None, f"its checkpoint is incomplete ({missing[0]} is missing)."
        shapes = _file_shapes(run_file(folder, CHECKPOINT_DIR, files[0]))
        _check_state_file(run_file(folder, CHECKPOINT_DIR, files[1]))
    except Exception as error:  # a hand-edited or truncated checkpoint can fail in many ways
        return None, f"its checkpoint is damaged ({error_reason(error)})."
    if shapes != expected:
        return None, f"its checkpoint does not belong to its architecture '{name}'."
    return epoch, None


def _missing(directory: Path, files: tuple[str, ...]) -> list[str]:
    return [file for file in files if not (directory / file).is_file()]


def _read_latest(directory: Path) -> tuple[int, tuple[str, str]]:
    """The epoch and the file names (weights, state) latest.json names; ValueError if they make no sense."""
    latest = json.loads((directory / LATEST_FILE).read_text(encoding="utf-8"))
    if not isinstance(latest, dict):
        raise ValueError(f"{LATEST_FILE} is not a JSON object")
    epoch = latest.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"its epoch {epoch!r} is not a count")
    return epoch, (checkpoint_file(latest.get("weights")), checkpoint_file(latest.get("state")))


def _check_state_file(path: Path) -> None:
    """ValueError unless the checkpoint's state file is whole: a zip archive (torch.save's format) whose index
    reads. Its contents are only unpickled, safely, when the run is continued."""
    try:
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path.name} cannot be read: {error_reason(error)}") from None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any, default: str = "?") -> str:
    return value if isinstance(value, str) else default


def _number(value: Any) -> float | None:
    """A finite number from a JSON document, else None (missing, null, or hand-edited into something else)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number >= 0 and number == int(number) else None
