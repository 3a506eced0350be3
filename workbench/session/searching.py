"""A search in the app: Optuna's study of :mod:`workbench.core.experiments.search` over the network and settings
being edited, its trials trained one after another on a worker thread.

The spec is checked at once (a bad range is refused before anything is written); the study is opened and trained
on the worker, which reports each trial's epochs (for the curves) and, after each trial, the study as it stands:
the results table, the optimisation history and the parameters' importance (Optuna's fANOVA, once two trials have
finished). Stop ends the trial training now; it waits in the study and goes on from its checkpoint when the same
search is started again. Pause holds the trial at its next batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from psygnal import Signal

from workbench.core.architecture import Architecture, ValidationReport
from workbench.core.errors import WorkbenchError
from workbench.core.experiments.search import Search, SearchSpec, SearchTrial, parse_space
from workbench.core.runs.launch import LaunchedRun
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Callback, EpochMetrics, Trainer, TrainState
from workbench.session.experiments import Curve, new_experiment_folder
from workbench.session.phase import Phase, check_transition
from workbench.session.tasks import Task, TaskState


class SearchHost(Protocol):
    """What the search uses of the :class:`~workbench.session.session.Session` it serves."""

    phase: Phase
    runs_folder: Path
    architecture: Architecture
    config: TrainConfig
    report: ValidationReport
    training: Task | None
    closed: bool
    status: Any  # psygnal signals
    problem: Any

    def run_task(self, task: Task) -> None: ...


@dataclass
class SearchShown:
    """What the Experiments tab draws of a search: its trials' results, each finished trial's score in order (the
    optimisation history), the parameters' importance, each trial's curve, and where it is."""

    folder: Path
    keys: list[str]
    rows: list[dict[str, Any]]
    history: list[tuple[int, float | None, str]]  # trial number (from 1), best validation accuracy or None, status
    importances: dict[str, float]
    curves: dict[str, Curve] = field(default_factory=dict)
    state: str = ""
    running: bool = True

    @property
    def best(self) -> tuple[int, float] | None:
        """The best finished trial's number and score."""
        scored = [(value, -number) for number, value, status in self.history if value is not None]
        if not scored:
            return None
        value, negative = max(scored)
        return -negative, value


@dataclass
class _Epoch:
    name: str
    epoch: int
    accuracy: float


class Searcher:
    """See the module's docstring. ``changed`` carries a :class:`SearchShown` after each trial and when the search
    ends; ``curve_grew`` a trial's name and :class:`Curve` at each of its epochs' ends."""

    changed = Signal(object)  # SearchShown
    curve_grew = Signal(str, object)  # trial name, Curve

    def __init__(self, session: SearchHost):
        self.session = session
        self.folder: Path | None = None
        self.shown: SearchShown | None = None
        self.curves: dict[str, Curve] = {}
        self.task: Task | None = None

    def start(self, space: list[str], trials: int, storage: str | None = None, folder: Path | None = None) -> None:
        """Search ``space`` (``KEY=LOW:HIGH[:log]`` or ``KEY=V1,V2,...`` each) over ``trials`` trials of the
        network and settings being edited, into ``folder`` (default a new one under the runs folder's
        ``experiments/``), the study in ``storage`` (a database URL; default SQLite in the folder). A folder of an
        earlier search with the same spec continues it."""
        check_transition(self.session.phase, Phase.TRAINING)
        if not self.session.report.ok:
            raise WorkbenchError("The network does not fit: " + "\n".join(self.session.report.errors))
        dimensions = tuple(parse_space(text) for text in space if text.strip())
        spec = SearchSpec(self.session.architecture.copy(), self.session.config, dimensions, trials)
        spec.check()
        folder = folder or self._new_folder(dimensions)
        self.folder, self.curves = folder, {}
        self.shown = SearchShown(folder, [dimension.key for dimension in dimensions], [], [], {}, state="Opening…")
        self.changed.emit(self.shown)

        def work(state: TaskState) -> SearchShown:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)  # the tab shows each trial; no console lines
            search = Search.open(folder, spec, storage)
            state.report(self._snapshot(search, "Starting…"))

            def launched(trial: SearchTrial, launch: LaunchedRun) -> None:
                state.on("cancel", launch.trainer.stop)
                state.on("pause", launch.trainer.pause)
                state.on("resume", launch.trainer.resume)
                launch.trainer.callbacks.append(_EpochReports(state, trial.name))
                state.report(self._snapshot(search, f"Trial {trial.number + 1} of {trials}: {trial.label}"))

            def ended(trial: SearchTrial) -> None:
                state.report(self._snapshot(search, f"Trial {trial.number + 1} {trial.status}"))

            finished = search.run(launched, ended, should_stop=lambda: state.cancelled)
            best = search.best()
            words = f"; best {best.name}, {best.value:.2%}: {best.label}" if best and best.value is not None else ""
            ending = "Search done" if finished else "Stopped (start the same search again to go on)"
            return self._snapshot(search, f"{ending}{words}", running=False)

        task = Task(
            "search",
            Phase.TRAINING,
            work,
            on_success=self._reported,
            on_failure=self._failed,
            on_progress=self._reported,
            on_done=self._done,
        )
        self.task = task
        self.session.training = task  # Pause and Stop reach it as they reach a run
        keys = ", ".join(dimension.key for dimension in dimensions)
        self.session.status.emit(f"Searching {keys} over {trials} trials in {folder}…", 0)
        self.session.run_task(task)

    def stop(self) -> None:
        """End the trial training now (it waits in the study, to go on from its checkpoint) and the search."""
        if self.task is not None:
            self.task.state.cancel()

    @staticmethod
    def _snapshot(search: Search, state: str, running: bool = True) -> SearchShown:
        """The study as it stands (on the worker: the storage is read there only)."""
        trials = search.trials()
        history = [(trial.number + 1, trial.value, trial.status) for trial in trials if trial.status != "waiting"]
        return SearchShown(
            search.folder, search.keys(), search.results(), history, _importances(search), state=state, running=running
        )

    def _reported(self, report: SearchShown | _Epoch) -> None:
        if isinstance(report, _Epoch):
            curve = self.curves.setdefault(report.name, Curve(report.name))
            if report.epoch not in curve.epochs:
                curve.epochs.append(report.epoch)
                curve.accuracies.append(report.accuracy)
                self.curve_grew.emit(report.name, curve)
            return
        for row in report.rows:
            self.curves.setdefault(row["run"], Curve(row["run"])).label = _label(row, report.keys)
        report.curves = {row["run"]: self.curves[row["run"]] for row in report.rows}
        self.shown = report
        self.changed.emit(report)
        if not report.running:
            self.session.status.emit(f"{report.state}. Folder: {report.folder}", 0)

    def _failed(self, message: str) -> None:
        if self.shown is not None:
            self.shown.state, self.shown.running = f"Failed: {message.splitlines()[0]}", False
            self.changed.emit(self.shown)
        if not self.session.closed:
            self.session.problem.emit("The search failed", message)

    def _done(self) -> None:
        if self.session.training is self.task:
            self.session.training = None
        self.task = None

    def _new_folder(self, dimensions: tuple[Any, ...]) -> Path:
        keys = "-".join(dimension.key for dimension in dimensions)
        return new_experiment_folder(self.session.runs_folder, f"search-{keys}")


class _EpochReports(Callback):
    """A trial's epochs, reported for its curve."""

    def __init__(self, state: TaskState, name: str):
        self.state, self.name = state, name

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: EpochMetrics) -> None:
        self.state.report(_Epoch(self.name, metrics.epoch, metrics.val_accuracy))


def _label(row: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{key} {_shown(row[key])}" for key in keys if row.get(key, "") != "")


def _shown(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _importances(search: Search) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA) once two trials have finished with different values; else {}."""
    finished = [trial for trial in search.trials() if trial.status == "finished"]
    if len(finished) < 2:
        return {}
    if len(search.keys()) == 1:
        return {search.keys()[0]: 1.0}
    import optuna

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's notes on its evaluators; the numbers are what is shown
            found = optuna.importance.get_param_importances(search.study)
    except (RuntimeError, ValueError):
        return {}
    return {str(key): float(value) for key, value in found.items()}
