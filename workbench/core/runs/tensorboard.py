"""Runs as TensorBoard event files (``workbench runs --tensorboard DIR``), so that they open in TensorBoard, or any
tool that reads its logs (Aim), beside the user's other work.

:func:`write_tensorboard` writes one run into its own folder of the log folder, named by :func:`log_name`:

- every epoch of metrics.jsonl as scalars ``epoch/train_loss``, ``epoch/val_loss``, ``epoch/val_accuracy``,
  ``epoch/lr``, ``epoch/epoch_seconds`` and ``epoch/samples_per_second`` (the step is the epoch; figures the run
  did not measure, null in the file, are left out). Their wall times are when the epochs ended: the run's start
  (or its continuation's) plus the epochs' durations;
- every batch's training loss of batches.jsonl as ``batch/train_loss`` (the step is the batch's global number; a
  run recorded before the workbench kept them has none);
- the settings that shape a run as hyperparameters (:data:`HPARAMS`, the network's name and the precision it
  trained in), with the metrics ``hparam/best_val_accuracy``, ``hparam/test_accuracy`` and ``hparam/test_loss``
  (NaN where the run has none);
- the test split's confusion matrix as an image (``test/confusion_matrix``) and the per-class scores and counts as
  text (``test/evaluation``): those recorded at the end of the run (evaluation.json), else computed from its saved
  weights on its dataset's test split, if that dataset is on this machine (nothing is downloaded);
- the run (name, status, dataset, device, versions) and its architecture as text.

The folder is marked as written here (:data:`MARKER_FILE`), and only a marked folder is ever replaced: exporting
again gives the run's figures once, never twice, and nothing else in the log folder is touched.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.architecture import Architecture
from workbench.core.errors import RunError, WorkbenchError
from workbench.core.runs.folders import (
    EVALUATION_FILE,
    BatchLosses,
    error_reason,
    read_batch_losses,
    read_metrics,
    read_run,
    run_file,
)
from workbench.core.runs.lock import writer_of
from workbench.core.runs.metrics import Evaluation
from workbench.core.runs.trained import evaluate_trained, load_trained
from workbench.core.training.config import TrainConfig
from workbench.core.training.state import EpochMetrics

MARKER_FILE = ".workbench-tensorboard"
"""In every folder :func:`write_tensorboard` writes; a folder without it is never deleted nor written into."""

MARKER_FORMAT = "workbench-tensorboard"

BATCH_TAG = "batch/train_loss"
"""Each batch's training loss, at its global step (from batches.jsonl)."""
EPOCH_FIELDS = ("train_loss", "val_loss", "val_accuracy", "lr", "epoch_seconds", "samples_per_second")
"""The figures of metrics.jsonl written as per-epoch scalars, each under the tag ``epoch/<field>``."""

HPARAMS = (
    "dataset",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "batch_size",
    "loss",
    "schedule",
    "train_size",
    "val_size",
    "epochs",
    "seed",
    "augment",
    "mixed_precision",
)
"""The settings (:class:`TrainConfig` fields) written as hyperparameters, besides ``network`` and ``precision``."""

HPARAM_METRICS = ("hparam/best_val_accuracy", "hparam/test_accuracy", "hparam/test_loss")

CONFUSION_TAG = "test/confusion_matrix"
EVALUATION_TAG = "test/evaluation"

_ANNOTATED_CLASSES = 20  # up to this many classes, every cell of the confusion-matrix image shows its count


@dataclass(frozen=True)
class TensorBoardRun:
    """What :func:`write_tensorboard` wrote for one run.

    ``folder`` is the run's folder in the log folder; ``epochs`` how many epochs it holds. ``confusion`` says where
    the confusion matrix came from: ``recorded`` (at the end of the run), ``computed`` (from the saved weights, at
    export) or ``""`` when there is none; ``note`` then says why.
    """

    folder: Path
    name: str
    status: str
    epochs: int
    confusion: str
    note: str = ""

    def describe(self) -> str:
        """One line for the command line, e.g. ``r1 (finished): 2 epochs, hyperparameters, confusion matrix
        (recorded) -> tb/r1``."""
        if self.confusion:
            shown = f"confusion matrix ({self.confusion})"
        else:
            shown = f"no confusion matrix: {self.note}"
        epochs = "1 epoch" if self.epochs == 1 else f"{self.epochs} epochs"
        return f"{self.name} ({self.status}): {epochs}, hyperparameters, {shown} -> {self.folder}"


def log_name(run_folder: Path) -> str:
    """The name of a run's folder in the log folder: its run folder's name, kept to letters, digits, dot, dash and
    underscore (every other run of characters becomes one underscore, as does a leading dot), at most 120
    characters. Two run folders can share it: the caller decides what to do then."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(run_folder).resolve().name)[:120]
    if name.startswith("."):
        name = "_" + name[1:]
    return name or "_"


def is_ours(folder: Path) -> bool:
    """Whether ``folder`` is a folder :func:`write_tensorboard` wrote (it holds :data:`MARKER_FILE`), not a link."""
    return folder.is_dir() and not folder.is_symlink() and (folder / MARKER_FILE).is_file()


def write_tensorboard(run_folder: Path, log_dir: Path, *, compute_confusion: bool = True) -> TensorBoardRun:
    """Write the run in ``run_folder`` as TensorBoard event files into ``log_dir / log_name(run_folder)``.

    What is written is listed in this module's documentation. An earlier export of the run there is replaced; a
    file or folder of that name that was not written here is left alone: :class:`RunError` saying so. A run whose
    run.json or metrics.jsonl cannot be read is not written: :class:`RunError` saying why (an earlier export of it
    is then kept). Without ``compute_confusion``, a run that recorded no evaluation of its test split gets no
    confusion matrix rather than one computed from its weights (which loads its dataset).
    """
    run_folder = Path(run_folder)
    document = read_run(run_folder)
    try:
        architecture = Architecture.from_dict(document["architecture"])
        config = TrainConfig.from_dict(document["config"])
    except WorkbenchError as error:
        raise RunError(f"{run_folder} is damaged: {error}") from None
    history = read_metrics(run_folder)
    try:
        batches = read_batch_losses(run_folder)
    except RunError:
        batches = []  # a damaged batches.jsonl costs the per-batch curve, not the export
    target = Path(log_dir) / log_name(run_folder)
    _refuse_foreign(target)
    evaluation, confusion, note = _evaluation(run_folder, compute_confusion)
    status = _status(run_folder, document)
    _clear(target)
    try:
        _mark(target, run_folder)
        _write_events(target, document, architecture, config, history, evaluation, confusion, status, batches)
    except OSError as error:
        raise RunError(f"Cannot write {target}: {error.strerror or error}.") from None
    name = document.get("name")
    shown = name.strip() if isinstance(name, str) and name.strip() else run_folder.name
    return TensorBoardRun(target, shown, status, len(history), confusion, note)


def _status(run_folder: Path, document: dict[str, Any]) -> str:
    """The run's status as ``workbench runs`` shows it: ``training`` while a process writes it, ``interrupted`` when
    it says running but no process does."""
    status = document["status"] if isinstance(document["status"], str) else "?"
    if writer_of(run_folder) is not None:
        return "training"
    return "interrupted" if status == "running" else status


def _evaluation(run_folder: Path, compute: bool) -> tuple[Evaluation | None, str, str]:
    """The test split's evaluation: recorded, else computed (if ``compute``); with where it came from, or why
    there is none."""
    path = run_file(run_folder, EVALUATION_FILE)
    recorded_problem = ""
    if path.is_file():
        try:
            recorded = Evaluation.from_dict(json.loads(path.read_text(encoding="utf-8")))
            classes = len(recorded.class_names)
            if recorded.confusion.shape != (classes, classes):
                raise ValueError(f"its confusion matrix is not {classes}x{classes}")
            return recorded, "recorded", ""
        except (OSError, ValueError, RecursionError, RunError) as error:
            recorded_problem = f"its {EVALUATION_FILE} cannot be read ({error_reason(error)})"
    if not compute:
        return None, "", recorded_problem or "the run recorded no test evaluation (not computed: --no-confusion)"
    try:
        evaluation = _evaluate_saved(run_folder)
    except WorkbenchError as error:
        reason = f"it cannot be computed: {' '.join(str(error).split())}"
        return None, "", f"{recorded_problem}; {reason}" if recorded_problem else reason
    return evaluation, "computed", ""


def _evaluate_saved(run_folder: Path) -> Evaluation:
    """The run's saved weights scored on its dataset's test split, as the app's "evaluate" does, but never
    downloading the dataset: exporting logs must not fetch hundreds of megabytes. :class:`WorkbenchError` saying
    why it cannot be done."""
    return evaluate_trained(load_trained(run_folder), download=False)  # refuses NaN or infinite weights


def _refuse_foreign(target: Path) -> None:
    """:class:`RunError` if something other than an earlier export is at ``target``."""
    if (target.exists() or target.is_symlink()) and not is_ours(target):
        kind = "a link" if target.is_symlink() else "a folder" if target.is_dir() else "a file"
        raise RunError(
            f"{target} is {kind} that workbench runs --tensorboard did not write (it has no {MARKER_FILE}); it was "
            f"left alone. Move it, or export into another folder."
        )


def _clear(target: Path) -> None:
    """Remove an earlier export at ``target``; :class:`RunError` if something else is there."""
    if not target.exists() and not target.is_symlink():
        return
    _refuse_foreign(target)
    try:
        shutil.rmtree(target)
    except OSError as error:
        raise RunError(
            f"The earlier export {target} could not be removed: {error.strerror or error} ({error.filename})."
        ) from None


def _mark(target: Path, run_folder: Path) -> None:
    target.mkdir(parents=True)
    marker = {"format": MARKER_FORMAT, "version": 1, "run": str(run_folder.resolve())}
    (target / MARKER_FILE).write_text(json.dumps(marker) + "\n", encoding="utf-8")


def _write_events(
    target: Path,
    document: dict[str, Any],
    architecture: Architecture,
    config: TrainConfig,
    history: list[EpochMetrics],
    evaluation: Evaluation | None,
    confusion: str,
    status: str,
    batches: Sequence[BatchLosses] = (),
) -> None:
    from torch.utils.tensorboard import SummaryWriter

    ended = _epoch_walltimes(document, history)
    last_step = history[-1].epoch if history else 0
    last_time = ended[-1] if ended else _timestamp(document.get("finished")) or _timestamp(document.get("started"))
    with SummaryWriter(log_dir=str(target)) as writer:
        for epoch, walltime in zip(history, ended):
            for field in EPOCH_FIELDS:
                value = getattr(epoch, field)
                if math.isfinite(value):
                    writer.add_scalar(f"epoch/{field}", value, global_step=epoch.epoch, walltime=walltime)
        ends = {epoch.epoch: walltime for epoch, walltime in zip(history, ended)}
        for recorded in batches:
            end = ends.get(recorded.epoch, last_time)
            start = ends.get(recorded.epoch - 1, end)
            count = max(len(recorded.losses), 1)
            for index, loss in enumerate(recorded.losses):
                if math.isfinite(loss):
                    moment = None if end is None or start is None else start + (end - start) * (index + 1) / count
                    writer.add_scalar(BATCH_TAG, loss, global_step=recorded.first_step + index, walltime=moment)
        writer.add_text("run", _run_text(document, config, status, len(history)), last_step, last_time)
        writer.add_text("architecture", _code(architecture.to_json()), last_step, last_time)
        if evaluation is not None:
            image = confusion_image(evaluation.confusion, evaluation.class_names)
            writer.add_image(CONFUSION_TAG, image, last_step, last_time, dataformats="HWC")
            writer.add_text(EVALUATION_TAG, _evaluation_text(evaluation, confusion), last_step, last_time)
        writer.add_hparams(
            hyperparameters(document, architecture, config),
            _hparam_metrics(document, history),
            run_name=".",  # into the run's own folder, not a time-stamped one inside it
            global_step=last_step,
        )


def hyperparameters(document: dict[str, Any], architecture: Architecture, config: TrainConfig) -> dict[str, Any]:
    """What a run's hyperparameters are written as: the :data:`HPARAMS` settings, ``network`` (the architecture's
    name) and ``precision`` (the one it trained in, from run.json's execution, else the setting). A setting left
    unset (None) is left out, as TensorBoard's hyperparameters cannot hold it."""
    values: dict[str, Any] = {"network": architecture.name}
    settings = config.to_dict()
    values.update({name: settings[name] for name in HPARAMS if settings.get(name) is not None})
    execution = document.get("execution")
    precision = execution.get("precision") if isinstance(execution, dict) else None
    values["precision"] = precision if isinstance(precision, str) else config.mixed_precision
    return values


def _hparam_metrics(document: dict[str, Any], history: list[EpochMetrics]) -> dict[str, float]:
    """The run's best validation accuracy and test figures, NaN where it has none. The test figures are the
    run's own (run.json): one stopped before its test has none, even if a confusion matrix is computed from its
    weights at export."""
    recorded = document.get("metrics")
    metrics = recorded if isinstance(recorded, dict) else {}
    accuracies = [epoch.val_accuracy for epoch in history if math.isfinite(epoch.val_accuracy)]
    best = _number(metrics.get("best_val_accuracy"))
    figures = {
        "hparam/best_val_accuracy": best if best is not None else max(accuracies, default=math.nan),
        "hparam/test_accuracy": _number(metrics.get("test_accuracy")),
        "hparam/test_loss": _number(metrics.get("test_loss")),
    }
    return {tag: math.nan if value is None else value for tag, value in figures.items()}


def confusion_image(confusion: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """The confusion matrix drawn as an RGB picture ``(height, width, 3)`` of uint8: true classes down, predicted
    ones across, each cell shaded by its share of its true class (its row) and, up to 20 classes, showing its count.
    The same matrix always gives the same picture."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = np.asarray(confusion, dtype=np.int64)
    count = len(class_names)
    if matrix.shape != (count, count):
        raise ValueError(f"A confusion matrix of {count} classes is {count}x{count}, not {matrix.shape}.")
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=np.float64), where=totals > 0)
    side = min(16.0, max(4.0, 2.5 + 0.45 * count))
    figure = Figure(figsize=(side, side), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    names = [str(name) for name in class_names]
    axes.set_xticks(range(count), names, rotation=90 if max(map(len, names), default=0) > 2 else 0)
    axes.set_yticks(range(count), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    total = int(matrix.sum())
    accuracy = np.trace(matrix) / total if total else math.nan
    axes.set_title(f"Test split: {total:,} images, accuracy {accuracy:.1%}")
    if count <= _ANNOTATED_CLASSES:
        for (row, column), value in np.ndenumerate(matrix):
            colour = "white" if shares[row, column] > 0.5 else "black"
            axes.text(column, row, str(value), ha="center", va="center", color=colour, fontsize=8)
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _epoch_walltimes(document: dict[str, Any], history: list[EpochMetrics]) -> list[float | None]:
    """When each epoch ended, in seconds since 1970: the run's start, or that of the continuation that trained it,
    plus the durations of its epochs since. None throughout when run.json has no readable start."""
    start = _timestamp(document.get("started"))
    if start is None:
        return [None] * len(history)
    restarts: dict[int, float] = {}
    continuations = document.get("continuations")
    for entry in continuations if isinstance(continuations, list) else []:
        at = _timestamp(entry.get("at")) if isinstance(entry, dict) else None
        after = entry.get("after_epoch") if isinstance(entry, dict) else None
        if at is not None and isinstance(after, int):
            restarts[after + 1] = at
    ended: list[float | None] = []
    clock = start
    for epoch in history:
        clock = restarts.get(epoch.epoch, clock)
        if math.isfinite(epoch.epoch_seconds) and epoch.epoch_seconds >= 0:
            clock += epoch.epoch_seconds
        ended.append(clock)
    return ended


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _code(text: str) -> str:
    """``text`` as a Markdown code block (TensorBoard shows text as Markdown)."""
    return "\n".join("    " + line for line in text.rstrip("\n").splitlines())


def _run_text(document: dict[str, Any], config: TrainConfig, status: str, epochs: int) -> str:
    rows = [
        ("name", document.get("name")),
        ("status", status),
        ("message", document.get("message")),
        ("epochs", f"{epochs} of {config.epochs} planned"),
        ("dataset", document.get("dataset")),
        ("device", document.get("device")),
        ("started", document.get("started")),
        ("finished", document.get("finished")),
    ]
    versions = document.get("versions")
    if isinstance(versions, dict):
        rows += [(f"{name} version", value) for name, value in versions.items()]
    cells = [f"| {name} | {_cell(value)} |" for name, value in rows if value not in (None, "")]
    settings = json.dumps(config.to_dict(), indent=1)
    return "\n".join(["| | |", "|---|---|", *cells, "", "Settings:", "", _code(settings)])


def _cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def _evaluation_text(evaluation: Evaluation, confusion: str) -> str:
    source = (
        "Recorded at the end of the run."
        if confusion == "recorded"
        else "Computed at export from the run's saved weights on its dataset's test split."
    )
    header = "| true \\ predicted | " + " | ".join(_cell(name) for name in evaluation.class_names) + " |"
    rule = "|---" * (len(evaluation.class_names) + 1) + "|"
    rows = [
        f"| {_cell(name)} | " + " | ".join(str(int(value)) for value in row) + " |"
        for name, row in zip(evaluation.class_names, evaluation.confusion)
    ]
    return "\n".join([source, "", _code(evaluation.as_text()), "", "Confusion matrix:", "", header, rule, *rows])
