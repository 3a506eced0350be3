"""Run folders: every run leaves run.json, metrics.jsonl, architecture.json and model.safetensors.

Every file is written atomically (see :mod:`workbench.core.files`), so a run killed at any moment
leaves either the previous version of a file or the new one.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import platform
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy
import platformdirs
import safetensors.torch
import torch

from .. import __version__
from .architecture import Architecture, build
from .config import TrainConfig
from .engine import Callback, Checkpoint, EpochMetrics, Trainer, TrainResult, TrainState
from .errors import RunError, WorkbenchError
from .files import atomic_write_bytes, atomic_write_text
from .metrics import Evaluation, evaluate_model

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
ARCHITECTURE_FILE = "architecture.json"
WEIGHTS_FILE = "model.safetensors"
CHECKPOINT_DIR = "checkpoint"
LATEST_FILE = "latest.json"
EVALUATION_FILE = "evaluation.json"


def default_runs_dir() -> Path:
    """``$WORKBENCH_RUNS_DIR``, else the user's data folder (e.g. ~/.local/share/workbench/runs)."""
    configured = os.environ.get("WORKBENCH_RUNS_DIR")
    return Path(configured) if configured else Path(platformdirs.user_data_dir("workbench")) / "runs"


def new_run_dir(out: str | os.PathLike | None, architecture: Architecture, config: TrainConfig) -> Path:
    """Create the folder of a new run and check it is writable.

    ``out`` is used as given (it must not hold a run already); without it the folder is named
    after the date, architecture and dataset inside :func:`default_runs_dir`.
    """
    if out is not None:
        folder = Path(out)
        if (folder / RUN_FILE).exists():
            raise RunError(f"{folder} already holds a run; choose another --out or delete that folder.")
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = default_runs_dir() / _safe_name(f"{stamp}-{architecture.name}-{config.dataset}")
        folder, suffix = base, 1
        while folder.exists():
            suffix += 1
            folder = base.with_name(f"{base.name}-{suffix}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise RunError(f"Cannot write the run folder {folder}: {reason}. "
                       f"Choose a folder you can write to with --out.") from None
    return folder


def _safe_name(name: str) -> str:
    """A folder name any file system takes: letters, digits, dot, dash and underscore."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]


def library_versions() -> dict[str, str]:
    """The versions that decide whether a run can be repeated."""
    return {"workbench": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": metadata.version("torchvision"), "numpy": numpy.__version__,
            "platform": f"{sys.platform}-{platform.machine()}"}


class RunRecorder(Callback):
    """Writes a run's folder as it trains: the start, every epoch (metrics and a checkpoint), and the
    end (weights, and the test split's evaluation: per-class scores and confusion matrix).

    ``run.json`` records the trainer's own copy of the settings, with the subset sizes it drew.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.evaluation: Evaluation | None = None

    def on_train_start(self, trainer: Trainer, state: TrainState) -> None:
        atomic_write_text(self.folder / ARCHITECTURE_FILE, trainer.architecture.to_json())
        if not state.history:
            atomic_write_text(self.folder / METRICS_FILE, "")
        self._write_run(trainer, "running", None)

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: EpochMetrics) -> None:
        lines = (json.dumps(_finite(epoch.to_dict())) + "\n" for epoch in state.history)
        atomic_write_text(self.folder / METRICS_FILE, "".join(lines))
        write_checkpoint(self.folder, trainer.checkpoint(state))

    def on_train_end(self, trainer: Trainer, state: TrainState, result: TrainResult) -> None:
        weights = {name: tensor.detach().cpu().contiguous() for name, tensor in result.model.state_dict().items()}
        atomic_write_bytes(self.folder / WEIGHTS_FILE, safetensors.torch.save(weights))
        data = trainer.data
        self.evaluation = evaluate_model(result.model, data.test_x, data.test_y, data.info.class_names)
        atomic_write_text(self.folder / EVALUATION_FILE, json.dumps(self.evaluation.to_dict()) + "\n")
        self._write_run(trainer, result.status, result)

    def _write_run(self, trainer: Trainer, status: str, result: TrainResult | None) -> None:
        document: dict[str, Any] = {
            "format": "workbench-run", "version": 1, "name": self.folder.name, "status": status,
            "started": self.started, "config": trainer.config.to_dict(),
            "architecture": trainer.architecture.to_dict(), "dataset": trainer.data.info.name,
            "seed": trainer.config.seed, "device": str(trainer.device), "versions": library_versions(),
        }
        if result is not None:
            document["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            document["message"] = result.message
            document["metrics"] = _finite({
                "epochs_completed": len(result.history), "test_accuracy": result.test_accuracy,
                "test_loss": result.test_loss, "best_val_accuracy": result.best_val_accuracy,
                "final_val_accuracy": result.history[-1].val_accuracy if result.history else math.nan,
                "final_train_loss": result.history[-1].train_loss if result.history else math.nan,
                "duration_seconds": result.duration_seconds,
            })
        atomic_write_text(self.folder / RUN_FILE, json.dumps(document, indent=2) + "\n")


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """NaN is not JSON: unknown figures (e.g. no validation set) are written as null."""
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in values.items()}


def write_checkpoint(folder: Path, checkpoint: Checkpoint) -> None:
    """Store ``checkpoint`` in ``folder/checkpoint/``: weights as safetensors, the rest as plain data.

    The epoch's files are written first and ``latest.json`` last, each atomically, so a run killed
    at any moment still has a complete previous checkpoint; older epochs' files are then removed.
    """
    directory = folder / CHECKPOINT_DIR
    directory.mkdir(exist_ok=True)
    stem = f"epoch-{checkpoint.epoch:04d}"
    atomic_write_bytes(directory / f"{stem}.safetensors", safetensors.torch.save(checkpoint.weights))
    state = {"optimizer": checkpoint.optimizer, "scheduler": checkpoint.scheduler,
             "shuffle_rng": checkpoint.shuffle_rng, "torch_rng": checkpoint.torch_rng}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(directory / f"{stem}.state.pt", buffer.getvalue())
    latest = {"format": "workbench-checkpoint", "version": 1, "epoch": checkpoint.epoch,
              "weights": f"{stem}.safetensors", "state": f"{stem}.state.pt",
              "history": [_finite(epoch.to_dict()) for epoch in checkpoint.history],
              "best_val_loss": checkpoint.best_val_loss if math.isfinite(checkpoint.best_val_loss) else None,
              "epochs_without_gain": checkpoint.epochs_without_gain, "samples_seen": checkpoint.samples_seen}
    atomic_write_text(directory / LATEST_FILE, json.dumps(latest, indent=1) + "\n")
    for old in directory.glob("epoch-*"):
        if not old.name.startswith(stem):
            old.unlink(missing_ok=True)


def read_run(folder: str | os.PathLike) -> dict[str, Any]:
    """The parsed run.json of a run folder; :class:`RunError` saying what is wrong with it."""
    path = Path(folder) / RUN_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{folder} is not a run folder: it has no {RUN_FILE}.") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise RunError(f"{path} is damaged ({_reason(error)}).") from None
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
    directory = folder / CHECKPOINT_DIR
    try:
        latest = json.loads((directory / LATEST_FILE).read_text(encoding="utf-8"))
        weights = safetensors.torch.load_file(directory / latest["weights"])
        state = torch.load(directory / latest["state"], weights_only=True)
        history = [EpochMetrics(**{key: math.nan if value is None else value for key, value in epoch.items()})
                   for epoch in latest["history"]]
        best = latest["best_val_loss"]
        checkpoint = Checkpoint(
            epoch=int(latest["epoch"]), weights=weights, optimizer=state["optimizer"], scheduler=state["scheduler"],
            shuffle_rng=state["shuffle_rng"], torch_rng=state["torch_rng"], history=history,
            best_val_loss=math.inf if best is None else float(best),
            epochs_without_gain=int(latest["epochs_without_gain"]), samples_seen=int(latest["samples_seen"]))
    except FileNotFoundError as error:
        raise RunError(f"{folder} cannot be continued: its checkpoint is missing ({Path(error.filename).name}).") \
            from None
    except pickle.UnpicklingError:
        raise RunError(f"{folder} cannot be continued: its checkpoint holds objects other than plain data, "
                       f"which the workbench refuses to load.") from None
    except Exception as error:  # a hand-edited or truncated checkpoint can fail in many ways
        raise RunError(f"{folder} cannot be continued: its checkpoint is damaged ({_reason(error)}).") from None
    try:
        build(architecture).load_state_dict(checkpoint.weights)
    except RuntimeError:
        raise RunError(f"{folder} cannot be continued: its checkpoint does not belong to its architecture "
                       f"'{architecture.name}'.") from None
    return architecture, config, checkpoint


@dataclass(frozen=True)
class RunSummary:
    """One row of the run history; ``problem`` says why a damaged run cannot be used."""

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


def list_runs(root: str | os.PathLike | None = None) -> list[RunSummary]:
    """Every run folder under ``root`` (default :func:`default_runs_dir`), newest first; damaged ones too."""
    root = Path(root) if root is not None else default_runs_dir()
    if not root.is_dir():
        return []
    summaries = [_summarise(folder) for folder in root.iterdir() if folder.is_dir()]
    return sorted(summaries, key=lambda summary: summary.started, reverse=True)


def _summarise(folder: Path) -> RunSummary:
    try:
        document = read_run(folder)
        architecture = Architecture.from_dict(document["architecture"])
    except WorkbenchError as error:
        return RunSummary(folder, folder.name, "damaged", "?", "?", "?", None, 0, None, None, None, "", str(error))
    config, metrics = document.get("config", {}), document.get("metrics") or {}
    problem = None
    if document["status"] != "finished" and not (folder / CHECKPOINT_DIR / LATEST_FILE).is_file():
        problem = "no checkpoint: it cannot be continued"
    return RunSummary(folder, document.get("name", folder.name), document["status"], architecture.summary(),
                      document.get("dataset", "?"), config.get("optimizer", "?"), config.get("lr"),
                      int(metrics.get("epochs_completed", 0)), metrics.get("best_val_accuracy"),
                      metrics.get("test_accuracy"), metrics.get("duration_seconds"), document.get("started", ""),
                      problem)


def _reason(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
