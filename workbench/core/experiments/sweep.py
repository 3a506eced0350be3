"""A sweep: every combination of an experiment's values trained one after another, in one folder.

The folder holds ``experiment.json`` (the spec and each run's name, point and status), ``results.csv`` (one row
per run) and ``runs/run-001`` ... (ordinary run folders: the Runs tab lists them, ``workbench train --resume``
continues them). Both files are rewritten atomically after every run, so a sweep killed at any moment can be
resumed (:meth:`Sweep.open` then :meth:`Sweep.run`): runs that ended are kept, an interrupted or stopped one
continues from its checkpoint (a run killed before its first checkpoint starts again), the rest run; nothing runs
twice.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.architecture import Architecture
from workbench.core.errors import ConfigError, RunError
from workbench.core.experiments.spec import SweepSpec, value_text
from workbench.core.files import atomic_write_text
from workbench.core.runs.folders import (
    MAX_NAME_LENGTH,
    RUN_FILE,
    checkpoint_epoch,
    read_metrics,
    read_run,
)
from workbench.core.runs.launch import LaunchedRun, continue_run, new_run
from workbench.core.runs.summaries import list_runs
from workbench.core.training.config import TrainConfig

EXPERIMENT_FILE = "experiment.json"
RESULTS_FILE = "results.csv"
RUNS_DIR = "runs"
FORMAT = "workbench-experiment"
ENDED = ("finished", "early-stopped", "diverged")
"""A run with one of these statuses ended by itself: a resumed sweep keeps it."""
PENDING = "pending"
RESULT_COLUMNS = ("best_val_accuracy", "final_val_accuracy", "test_accuracy", "train_seconds")


@dataclass
class PlannedRun:
    """One run of a sweep: its folder's name under ``runs/``, the values it takes, what differs about it in words
    (e.g. "optimizer adam, lr 0.001": :meth:`SweepSpec.describe`), and its status (``pending`` until it starts, then
    its run folder's)."""

    name: str
    point: dict[str, Any]
    label: str
    status: str = PENDING


@dataclass(frozen=True)
class NextStep:
    """How a sweep's run trains next: into ``folder`` as a new run of ``architecture`` under ``config`` called
    ``name``, or, when ``extra_epochs`` is set, continued there for that many more epochs."""

    folder: Path
    architecture: Architecture | None = None
    config: TrainConfig | None = None
    name: str | None = None
    extra_epochs: int | None = None


class Sweep:
    """An experiment's folder and its runs; see the module's docstring."""

    def __init__(self, folder: Path, spec: SweepSpec, runs: list[PlannedRun]):
        self.folder = folder
        self.spec = spec
        self.runs = runs

    @classmethod
    def create(cls, folder: str | os.PathLike, spec: SweepSpec) -> Sweep:
        """A new sweep of ``spec`` in ``folder`` (new or empty), its spec checked before anything is written."""
        spec.check()
        path = Path(folder)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ConfigError(
                f"{path} is not empty: give a new folder for the sweep, or finish the one in it with --resume."
            )
        path.mkdir(parents=True, exist_ok=True)
        runs = [
            PlannedRun(f"run-{number:03d}", point, spec.describe(point))
            for number, point in enumerate(spec.points(), start=1)
        ]
        sweep = cls(path, spec, runs)
        sweep.save()
        return sweep

    @classmethod
    def open(cls, folder: str | os.PathLike) -> Sweep:
        """The sweep in ``folder``, each run's status read from its run folder; :class:`ConfigError` if the folder
        holds no sweep or a damaged one."""
        path = Path(folder)
        try:
            document = json.loads((path / EXPERIMENT_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path} holds no sweep: it has no {EXPERIMENT_FILE}.") from None
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ConfigError(f"{path / EXPERIMENT_FILE} is damaged ({error}).") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ConfigError(f"{path / EXPERIMENT_FILE} is not a workbench experiment.")
        spec = SweepSpec.from_dict(document.get("spec", {}))
        try:
            runs = [
                PlannedRun(str(run["name"]), dict(run["point"]), spec.describe(dict(run["point"])), str(run["status"]))
                for run in document["runs"]
            ]
        except (KeyError, TypeError) as error:
            raise ConfigError(f"{path / EXPERIMENT_FILE} is damaged: a run has no {error}.") from None
        sweep = cls(path, spec, runs)
        for run in runs:
            run.status = sweep._folder_status(run)
        return sweep

    def run_folder(self, run: PlannedRun) -> Path:
        """Where ``run`` is recorded."""
        return self.folder / RUNS_DIR / run.name

    def pending(self) -> list[PlannedRun]:
        """The runs still to train (or to finish), in order."""
        return [run for run in self.runs if run.status not in ENDED]

    def run(
        self,
        progress: bool = False,
        launched: Callable[[PlannedRun, LaunchedRun], None] = lambda run, launch: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Train every run still to train, in order; True when all have ended, False when ``should_stop`` said
        so (checked between runs, and by ``launched``'s caller during one: stop its trainer)."""
        for planned in self.pending():
            if should_stop():
                return False
            launch = self._launch(planned)
            self.mark(planned, "running")
            launched(planned, launch)
            try:
                result = launch.trainer.run()
            except BaseException:
                self.mark(planned, "failed")
                raise
            self.mark(planned, result.status)
            if result.status not in ENDED:
                return False
        return True

    def _launch(self, planned: PlannedRun) -> LaunchedRun:
        step = self.next_step(planned)
        if step.extra_epochs is not None:
            return continue_run(step.folder, step.extra_epochs, progress=False)
        assert step.architecture is not None and step.config is not None
        return new_run(step.architecture, step.config, step.folder, progress=False, name=step.name)

    def next_step(self, planned: PlannedRun) -> NextStep:
        """How ``planned`` trains now: continued from its checkpoint, or started afresh in its folder (anything a
        run killed before its first checkpoint, or a failed one, left there is removed)."""
        folder = self.run_folder(planned)
        architecture, config = self.spec.settings(planned.point)
        if (folder / RUN_FILE).exists():
            saved = checkpoint_epoch(folder)
            if saved is not None and planned.status != "failed":
                return NextStep(folder, extra_epochs=max(config.epochs - saved, 0))
            shutil.rmtree(folder)  # killed before its first checkpoint, or failed: it starts again
        elif folder.exists():
            shutil.rmtree(folder)  # a folder made for a run that never wrote anything
        folder.parent.mkdir(parents=True, exist_ok=True)
        # named by what differs, so that the Runs tab tells the sweep's runs apart
        name = f"{architecture.name} · {planned.label}"[:MAX_NAME_LENGTH]
        return NextStep(folder, architecture, config, name)

    def mark(self, planned: PlannedRun, status: str) -> None:
        """Record that ``planned`` is ``running``, or ended with ``status`` (``failed`` when it raised)."""
        planned.status = status
        self.save()

    def _folder_status(self, run: PlannedRun) -> str:
        folder = self.run_folder(run)
        if not (folder / RUN_FILE).exists():
            return PENDING
        try:
            return str(read_run(folder)["status"])
        except RunError:
            return "damaged"

    # ---- results ---------------------------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """The varied keys, in the spec's order, then ``repeat`` when there are repeats."""
        keys = [variation.key for variation in self.spec.variations]
        return [*keys, "repeat"] if self.spec.repeat > 1 else keys

    def results(self) -> list[dict[str, Any]]:
        """One row per run: ``run``, each varied key's value, ``status`` and the figures of :data:`RESULT_COLUMNS`
        (accuracies in percent; empty where the run has not got that far)."""
        summaries = {summary.folder.name: summary for summary in list_runs(self.folder / RUNS_DIR)}
        rows = []
        for planned in self.runs:
            row: dict[str, Any] = {
                "run": planned.name,
                **{key: _cell(planned.point.get(key, "")) for key in self.keys()},
            }
            row["status"] = planned.status
            summary = summaries.get(planned.name)
            final = None
            if summary is not None and not summary.damaged:
                history = read_metrics(self.run_folder(planned))
                final = history[-1].val_accuracy if history else None
            row["best_val_accuracy"] = _percent(summary.best_val_accuracy if summary else None)
            row["final_val_accuracy"] = _percent(final)
            row["test_accuracy"] = _percent(summary.test_accuracy if summary else None)
            seconds = summary.duration_seconds if summary else None
            row["train_seconds"] = "" if seconds is None else f"{seconds:.3f}"
            rows.append(row)
        return rows

    def results_csv(self) -> str:
        """:meth:`results` as CSV text, with a header line."""
        return results_table(self.keys(), self.results())

    def save(self) -> None:
        """Write experiment.json and results.csv as they stand (atomically)."""
        document = {
            "format": FORMAT,
            "version": 1,
            "spec": self.spec.to_dict(),
            "runs": [
                {"name": run.name, "label": run.label, "point": run.point, "status": run.status} for run in self.runs
            ],
        }
        atomic_write_text(self.folder / EXPERIMENT_FILE, json.dumps(document, indent=2) + "\n")
        atomic_write_text(self.folder / RESULTS_FILE, self.results_csv())


def results_table(keys: list[str], rows: list[dict[str, Any]]) -> str:
    """results.csv's text: a header line (``run``, each varied key, ``status``, :data:`RESULT_COLUMNS`), then
    ``rows`` (a sweep's or a search's)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, ["run", *keys, "status", *RESULT_COLUMNS], lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def summarise(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """:meth:`Sweep.results` rows combined over repeats: one row per combination of ``keys``' values, in order,
    with ``runs`` (how many), ``ended`` (how many ended) and, for each of :data:`RESULT_COLUMNS`, ``(mean,
    spread)`` over the runs that have it (the spread is the sample standard deviation, 0 for one run) or None."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(str(row[key]) for key in keys), []).append(row)
    combined = []
    for members in groups.values():
        summary: dict[str, Any] = {key: members[0][key] for key in keys}
        summary["runs"] = len(members)
        summary["ended"] = sum(1 for row in members if row["status"] in ENDED)
        for column in RESULT_COLUMNS:
            values = [float(row[column]) for row in members if row[column] != ""]
            summary[column] = None if not values else (statistics.fmean(values), _spread(values))
        combined.append(summary)
    return combined


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _cell(value: Any) -> Any:
    return value_text(value) if isinstance(value, list | tuple) else value


def _percent(value: float | None) -> str:
    return "" if value is None or value != value else f"{value * 100:.2f}"
