"""Run folders: every run leaves run.json, metrics.jsonl, gradients.jsonl, architecture.json and model.safetensors
(written by :class:`~workbench.core.runs.recorder.RunRecorder`), a checkpoint, and its writer's lock file.

Here: making a new run's folder, writing and reading checkpoints, reading run.json and metrics.jsonl, renaming and
deleting runs. Every file is written atomically (see :mod:`workbench.core.files`), so a run killed at any moment
leaves either the previous version of a file or the new one; every file read goes through :func:`run_file`, so
nothing is read from outside the folder.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import pickle
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import platformdirs
import safetensors.torch
import torch

from workbench.core.architecture import Architecture, build
from workbench.core.errors import RunError, WorkbenchError
from workbench.core.files import atomic_write_bytes, atomic_write_text
from workbench.core.runs.lock import being_trained, writer_of
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Checkpoint, EpochMetrics
from workbench.core.training.gradients import GradientEpoch

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
ARCHITECTURE_FILE = "architecture.json"
WEIGHTS_FILE = "model.safetensors"
CHECKPOINT_DIR = "checkpoint"
LATEST_FILE = "latest.json"
EVALUATION_FILE = "evaluation.json"
GRADIENTS_FILE = "gradients.jsonl"
BATCHES_FILE = "batches.jsonl"
T = TypeVar("T")
"""One line per epoch: each trainable layer's median gradient norm over the epoch's logging steps (see
:class:`~workbench.core.training.gradients.GradientEpoch`); runs of earlier versions have none."""


def default_runs_dir() -> Path:
    """``$WORKBENCH_RUNS_DIR``, else the user's data folder (e.g. ~/.local/share/workbench/runs)."""
    configured = os.environ.get("WORKBENCH_RUNS_DIR")
    return Path(configured) if configured else Path(platformdirs.user_data_dir("workbench")) / "runs"


def new_run_dir(
    out: str | os.PathLike | None,
    architecture: Architecture,
    config: TrainConfig,
    root: str | os.PathLike | None = None,
) -> Path:
    """Create the folder of a new run and check it is writable.

    ``out`` is used as given: it must be a new folder or an empty one (a run is never written among other files,
    and never over another run). Without it the folder is named after the date, architecture and dataset inside
    ``root`` (default :func:`default_runs_dir`). :class:`RunFolderError` where the folder cannot be used.
    """
    if out is not None:
        if not os.fspath(out).strip():
            raise RunError("The run folder's name is empty: name a new folder (or an empty one) for the run.")
        folder = Path(out)
        _check_unused(folder)
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path(root or default_runs_dir()) / _safe_name(f"{stamp}-{architecture.name}-{config.dataset}")
        folder, suffix = base, 1
        while folder.exists():
            suffix += 1
            folder = base.with_name(f"{base.name}-{suffix}")
    check_runs_folder(folder)
    return folder


class RunFolderError(RunError):
    """A new run's folder cannot be created or written. The message's advice suits the command line; the app
    words its own with :meth:`advise`."""

    def __init__(self, folder: Path, reason: str):
        self.folder, self.reason = folder, reason
        super().__init__(self.advise("Choose a folder you can write to with --out."))

    def advise(self, advice: str) -> str:
        """The message with ``advice`` on where to choose another folder."""
        return f"Cannot write the run folder {self.folder}: {self.reason}. {advice}"


def check_runs_folder(root: str | os.PathLike) -> None:
    """:class:`RunFolderError` unless files can be written into ``root`` (made if it is missing): the runs folder,
    or a new run's own folder."""
    folder = Path(root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except (OSError, ValueError) as error:
        raise RunFolderError(folder, getattr(error, "strerror", None) or str(error)) from None


def _check_unused(folder: Path) -> None:
    """:class:`RunError` unless ``folder`` is missing or an empty folder."""
    if (folder / RUN_FILE).exists() or (folder / CHECKPOINT_DIR).exists():
        raise RunError(f"{folder} already holds a run; choose another --out or delete that folder.")
    if folder.is_dir():
        try:
            entries = sorted(entry.name for entry in folder.iterdir())
        except OSError as error:
            raise RunFolderError(folder, error.strerror or str(error)) from None
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise RunError(
                f"{folder} is not empty (it holds {shown}): a new run needs a new or empty folder, so that its "
                f"files are never mixed with others. Choose another --out."
            )
    elif folder.exists():
        raise RunError(f"{folder} is a file, not a folder: choose a new folder for the run with --out.")


def _safe_name(name: str) -> str:
    """A folder name any file system takes: letters, digits, dot, dash and underscore."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]


def finite(values: dict[str, Any]) -> dict[str, Any]:
    """NaN is not JSON: unknown figures (e.g. no validation set) are written as null."""
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value for key, value in values.items()
    }


def checkpoint_epoch(folder: Path) -> int | None:
    """The epoch the folder's latest.json points to, if it can be read."""
    try:
        epoch = json.loads((folder / CHECKPOINT_DIR / LATEST_FILE).read_text(encoding="utf-8"))["epoch"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return epoch if isinstance(epoch, int) else None


def write_checkpoint(folder: Path, checkpoint: Checkpoint) -> None:
    """Store ``checkpoint`` in ``folder/checkpoint/``: weights as safetensors, the rest as plain data.

    The epoch's files are written first and ``latest.json`` last, each atomically, so a run killed
    at any moment still has a complete previous checkpoint; older epochs' files are then removed.
    """
    directory = folder / CHECKPOINT_DIR
    directory.mkdir(exist_ok=True)
    stem = f"epoch-{checkpoint.epoch:04d}"
    try:
        _write_checkpoint_files(directory, stem, checkpoint)
    except BaseException:
        # latest.json still names the previous epoch's files, which are whole: drop this epoch's, unless
        # latest.json did get to name them
        if checkpoint_epoch(folder) != checkpoint.epoch:
            for written in directory.glob(f"{stem}.*"):
                written.unlink(missing_ok=True)
        raise
    for old in directory.glob("epoch-*"):
        if not old.name.startswith(stem):
            old.unlink(missing_ok=True)


def _write_checkpoint_files(directory: Path, stem: str, checkpoint: Checkpoint) -> None:
    atomic_write_bytes(directory / f"{stem}.safetensors", safetensors.torch.save(checkpoint.weights))
    state = {
        "optimizer": checkpoint.optimizer,
        "scheduler": checkpoint.scheduler,
        "shuffle_rng": checkpoint.shuffle_rng,
        "torch_rng": checkpoint.torch_rng,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(directory / f"{stem}.state.pt", buffer.getvalue())
    latest = {
        "format": "workbench-checkpoint",
        "version": 1,
        "epoch": checkpoint.epoch,
        "weights": f"{stem}.safetensors",
        "state": f"{stem}.state.pt",
        "history": [finite(epoch.to_dict()) for epoch in checkpoint.history],
        "best_val_loss": checkpoint.best_val_loss if math.isfinite(checkpoint.best_val_loss) else None,
        "epochs_without_gain": checkpoint.epochs_without_gain,
        "samples_seen": checkpoint.samples_seen,
    }
    atomic_write_text(directory / LATEST_FILE, json.dumps(latest, indent=1) + "\n")


def run_file(folder: str | os.PathLike, *parts: str) -> Path:
    """The path of a file in a run folder, resolved (links followed); :class:`RunError` when it leads out of the
    folder: a link, or a name read from a file in the folder (``latest.json``'s), holding an absolute path or
    ``..``. Every file read from a run folder goes through here, so a crafted folder cannot make the workbench
    read (or train from) a file elsewhere."""
    root = Path(folder).resolve()
    path = root.joinpath(*parts).resolve()
    if root not in path.parents:
        shown = "/".join(parts)
        raise RunError(f"{folder} is damaged: its {shown} leads out of the run folder, which the workbench refuses.")
    return path


def read_run(folder: str | os.PathLike) -> dict[str, Any]:
    """The parsed run.json of a run folder; :class:`RunError` saying what is wrong with it."""
    path = run_file(folder, RUN_FILE)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{folder} is not a run folder: it has no {RUN_FILE}.") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise RunError(f"{path} is damaged ({error_reason(error)}).") from None
    if not isinstance(document, dict) or document.get("format") != "workbench-run":
        raise RunError(f"{path} is not a workbench run file.")
    for key in ("architecture", "config", "status"):
        if key not in document:
            raise RunError(f"{path} is damaged: it has no '{key}'.")
    return document


def load_checkpoint(folder: str | os.PathLike) -> tuple[Architecture, TrainConfig, Checkpoint]:
    """Everything needed to continue the run in ``folder``; :class:`RunError` naming what is missing or wrong.

    Nothing is unpickled: weights come through safetensors, the rest through
    ``torch.load(weights_only=True)``, which refuses any object that is not plain data.
    """
    folder = Path(folder)
    document = read_run(folder)
    try:
        architecture = Architecture.from_dict(document["architecture"])
        config = TrainConfig.from_dict(document["config"])
    except WorkbenchError as error:
        raise RunError(f"{folder / RUN_FILE} is damaged: {error}") from None
    try:
        latest = json.loads(run_file(folder, CHECKPOINT_DIR, LATEST_FILE).read_text(encoding="utf-8"))
        if not isinstance(latest, dict):
            raise ValueError(f"{LATEST_FILE} is not a JSON object")
        weights = safetensors.torch.load_file(run_file(folder, CHECKPOINT_DIR, checkpoint_file(latest["weights"])))
        state = torch.load(run_file(folder, CHECKPOINT_DIR, checkpoint_file(latest["state"])), weights_only=True)
        history = [_epoch_from_values(epoch) for epoch in latest["history"]]
        best = latest["best_val_loss"]
        checkpoint = Checkpoint(
            epoch=int(latest["epoch"]),
            weights=weights,
            optimizer=state["optimizer"],
            scheduler=state["scheduler"],
            shuffle_rng=state["shuffle_rng"],
            torch_rng=state["torch_rng"],
            history=history,
            best_val_loss=math.inf if best is None else float(best),
            epochs_without_gain=int(latest["epochs_without_gain"]),
            samples_seen=int(latest["samples_seen"]),
        )
    except FileNotFoundError as error:
        raise RunError(
            f"{folder} cannot be continued: its checkpoint is missing ({Path(error.filename).name})."
        ) from None
    except RunError:
        raise
    except pickle.UnpicklingError:
        raise RunError(
            f"{folder} cannot be continued: its checkpoint holds objects other than plain data, "
            f"which the workbench refuses to load."
        ) from None
    except Exception as error:  # a hand-edited or truncated checkpoint can fail in many ways
        raise RunError(f"{folder} cannot be continued: its checkpoint is damaged ({error_reason(error)}).") from None
    try:
        build(architecture).load_state_dict(checkpoint.weights)
    except RuntimeError:
        raise RunError(
            f"{folder} cannot be continued: its checkpoint does not belong to its architecture '{architecture.name}'."
        ) from None
    return architecture, config, checkpoint


def checkpoint_file(value: Any) -> str:
    """``value`` if it is a plain file name in the checkpoint folder (as ``latest.json`` names its files);
    ValueError otherwise: a path, absolute or with ``..``, is never followed."""
    if not isinstance(value, str) or value in ("", ".", "..") or Path(value).name != value or "\\" in value:
        raise ValueError(f"{value!r} is not a file name in {CHECKPOINT_DIR}/")
    return value


MAX_NAME_LENGTH = 120
_METRIC_FIELDS = tuple(field.name for field in dataclasses.fields(EpochMetrics))


def read_metrics(folder: str | os.PathLike) -> list[EpochMetrics]:
    """The epochs a run recorded in its metrics.jsonl, in order; null figures (not measured) read as NaN.

    :class:`RunError` when the file is missing or unreadable, or names the first damaged line.
    """
    path = run_file(folder, METRICS_FILE)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunError(f"{folder} has no {METRICS_FILE}: it recorded no epochs.") from None
    except (OSError, ValueError) as error:
        raise RunError(f"{path} cannot be read ({error_reason(error)}).") from None
    history = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            history.append(_epoch_metrics(line))
        except (ValueError, RecursionError) as error:
            raise RunError(f"{path} is damaged at line {number} ({error_reason(error)}).") from None
    return history


@dataclasses.dataclass(frozen=True)
class BatchLosses:
    """One epoch's line of batches.jsonl: the training loss of each of its batches, the first at global step
    ``first_step`` (counting from 1); a null loss reads as NaN."""

    epoch: int
    first_step: int
    losses: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "first_step": self.first_step, "losses": self.losses}


def read_batch_losses(folder: str | os.PathLike) -> list[BatchLosses]:
    """The epochs' per-batch training losses a run recorded in its batches.jsonl, in order; an empty list for a run
    without the file (trained before the workbench recorded them). :class:`RunError` when the file cannot be read,
    or names the first damaged line."""
    return _epoch_lines(folder, BATCHES_FILE, _batch_losses)


def _batch_losses(values: Any) -> BatchLosses:
    """One line of batches.jsonl, parsed; ValueError saying what is wrong with it."""
    if not isinstance(values, dict):
        raise ValueError("not a JSON object")
    losses = values.get("losses")
    if not isinstance(losses, list):
        raise ValueError(f"'losses' is {losses!r}, not a list")
    try:
        epoch, first_step = int(values["epoch"]), int(values["first_step"])
        return BatchLosses(epoch, first_step, [math.nan if loss is None else float(loss) for loss in losses])
    except (KeyError, TypeError) as error:
        raise ValueError(f"no number for {error}") from None


def read_gradients(folder: str | os.PathLike) -> list[GradientEpoch]:
    """The epochs' gradient norms a run recorded in its gradients.jsonl, in order; a null norm reads as NaN. An
    empty list for a run without the file (trained before the workbench recorded gradients).

    :class:`RunError` when the file cannot be read, or names the first damaged line.
    """
    return _epoch_lines(folder, GRADIENTS_FILE, _gradient_epoch)


def _epoch_lines(folder: str | os.PathLike, name: str, parse: Callable[[Any], T]) -> list[T]:
    """The lines of the run's JSON-lines file ``name``, each parsed by ``parse`` (ValueError for a damaged one);
    [] when the file is not there, :class:`RunError` when it cannot be read or names its first damaged line."""
    path = run_file(folder, name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as error:
        raise RunError(f"{path} cannot be read ({error_reason(error)}).") from None
    parsed = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            parsed.append(parse(json.loads(line)))
        except (ValueError, RecursionError) as error:
            raise RunError(f"{path} is damaged at line {number} ({error_reason(error)}).") from None
    return parsed


def _gradient_epoch(values: Any) -> GradientEpoch:
    """One line of gradients.jsonl, parsed; ValueError saying what is wrong with it. Keys a later version adds are
    ignored."""
    if not isinstance(values, dict):
        raise ValueError("not a JSON object")
    counts = {}
    for name in ("epoch", "step", "samples"):
        value = values.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"'{name}' is {value!r}, not a count")
        counts[name] = value
    norms = values.get("grad_norms")
    if not isinstance(norms, dict):
        raise ValueError(f"'grad_norms' is {norms!r}, not an object of layers")
    grad_norms = {}
    for label, norm in norms.items():
        if norm is None:
            grad_norms[label] = math.nan
        elif isinstance(norm, (int, float)) and not isinstance(norm, bool):
            grad_norms[label] = float(norm)
        else:
            raise ValueError(f"the norm of '{label}' is {norm!r}, not a number")
    return GradientEpoch(counts["epoch"], counts["step"], counts["samples"], grad_norms)


def _epoch_metrics(line: str) -> EpochMetrics:
    """One line of metrics.jsonl; ValueError saying what is wrong with it. Keys a later version adds are ignored."""
    return _epoch_from_values(json.loads(line))


def _epoch_from_values(values: Any) -> EpochMetrics:
    """One epoch's figures read from JSON (unknown ones are null, see :func:`_finite`); ValueError if they are wrong."""
    if not isinstance(values, dict):
        raise ValueError("not a JSON object")
    missing = [name for name in _METRIC_FIELDS if name not in values]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    figures: dict[str, Any] = {}
    for name in _METRIC_FIELDS:
        value = values[name]
        if name == "epoch":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"the epoch {value!r} is not a count")
            figures[name] = value
        elif value is None:
            figures[name] = math.nan
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            figures[name] = float(value)
        else:
            raise ValueError(f"'{name}' is {value!r}, not a number")
    return EpochMetrics(**figures)


def rename_run(folder: str | os.PathLike, new_name: str) -> None:
    """Give the run in ``folder`` a new display name, written into its run.json atomically.

    Only the name shown (the app's run table, ``workbench runs``) changes; the folder keeps its own name,
    because the app may be training in it or showing it, and paths to it (``train --resume``, notes, scripts)
    must keep working. Continuing the run keeps the new name. :class:`RunError` for an empty name, one longer
    than 120 characters or with line breaks, or a run whose run.json cannot be read.
    """
    name = _checked_name(new_name)
    folder = Path(folder)
    document = read_run(folder)
    document["name"] = name
    try:
        atomic_write_text(folder / RUN_FILE, json.dumps(document, indent=2) + "\n")
    except OSError as error:
        raise RunError(f"Cannot rename the run in {folder}: {error.strerror or error}.") from None


def _checked_name(name: Any) -> str:
    """``name`` without surrounding spaces, if it can name a run; :class:`RunError` otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise RunError("A run needs a name: type at least one letter or digit.")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise RunError(f"A run's name may have at most {MAX_NAME_LENGTH} characters; this one has {len(name)}.")
    if any(unicodedata.category(character) == "Cc" for character in name):
        raise RunError("A run's name must be one line of text, without tabs or line breaks.")
    return name


def is_run_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a run's: a folder holding run.json (even a damaged one) or a checkpoint/ folder."""
    folder = Path(folder)
    try:
        return folder.is_dir() and ((folder / RUN_FILE).is_file() or (folder / CHECKPOINT_DIR).is_dir())
    except OSError:
        return False


def delete_run(folder: str | os.PathLike, root: str | os.PathLike | None = None) -> None:
    """Remove the run folder ``folder`` with everything in it.

    Only what :func:`is_run_folder` accepts is removed, never another folder, a file, a link or a run being trained; with ``root``,
    only a folder inside ``root`` (never ``root`` itself). :class:`RunError` says why a folder was refused or
    could not be removed completely.
    """
    folder = Path(folder)
    if folder.is_symlink():
        raise RunError(f"{folder} is a link, not a run folder; the workbench deletes only run folders.")
    if not folder.is_dir():
        raise RunError(f"{folder} is not a folder; the workbench deletes only run folders.")
    if root is not None and not _strictly_inside(folder, Path(root)):
        raise RunError(f"{folder} is not inside the runs folder {root}; it was left alone.")
    if not is_run_folder(folder):
        raise RunError(
            f"{folder} is not a run folder (it has no {RUN_FILE} and no {CHECKPOINT_DIR}/); "
            f"the workbench deletes only run folders."
        )
    writer = writer_of(folder)
    if writer is not None:
        raise RunError(being_trained(folder, writer, then="delete it"))
    try:
        shutil.rmtree(folder)
    except OSError as error:
        raise RunError(
            f"{folder} could not be removed completely: {error.strerror or error} ({error.filename})."
        ) from None


def _strictly_inside(folder: Path, root: Path) -> bool:
    return root.resolve() in folder.resolve().parents


def error_reason(error: BaseException) -> str:
    """What went wrong reading a file, in a few words for a message."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__
