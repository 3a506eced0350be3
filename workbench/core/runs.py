"""Run folders: every run leaves run.json, metrics.jsonl, architecture.json and model.safetensors.

Every file is written atomically (see :mod:`workbench.core.files`), so a run killed at any moment
leaves either the previous version of a file or the new one.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy
import platformdirs
import safetensors.torch
import torch

from .. import __version__
from .architecture import Architecture
from .config import TrainConfig
from .engine import Callback, EpochMetrics, Trainer, TrainResult, TrainState
from .errors import RunError
from .files import atomic_write_bytes, atomic_write_text

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
ARCHITECTURE_FILE = "architecture.json"
WEIGHTS_FILE = "model.safetensors"


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
    """Writes a run's folder as it trains: the start, every epoch, and the end.

    ``run.json`` records the trainer's own copy of the settings, with the subset sizes it drew.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.lines: list[str] = []

    def on_train_start(self, trainer: Trainer, state: TrainState) -> None:
        atomic_write_text(self.folder / ARCHITECTURE_FILE, trainer.architecture.to_json())
        atomic_write_text(self.folder / METRICS_FILE, "")
        self._write_run(trainer, "running", None)

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: EpochMetrics) -> None:
        self.lines.append(json.dumps(_finite(metrics.to_dict())) + "\n")
        atomic_write_text(self.folder / METRICS_FILE, "".join(self.lines))

    def on_train_end(self, trainer: Trainer, state: TrainState, result: TrainResult) -> None:
        weights = {name: tensor.detach().cpu().contiguous() for name, tensor in result.model.state_dict().items()}
        atomic_write_bytes(self.folder / WEIGHTS_FILE, safetensors.torch.save(weights))
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
