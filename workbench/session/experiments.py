"""The Experiments tab's state: one experiment (a sweep in its folder), its runs trained one after another.

Each queued run trains through the session's own training (:meth:`Session.train_request`), so the plots, the
gallery, Pause and Stop follow it as they follow a run started with Start. When a run ends by itself the next one
starts; Stop ends the run training now (saved as stopped) and the queue with it. The experiment's folder keeps
everything (:mod:`workbench.core.experiments.sweep`): closing the window mid-run and opening the folder again later
continues where it was, the stopped run from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from psygnal import Signal

from workbench.core.architecture import Architecture, ValidationReport
from workbench.core.errors import WorkbenchError
from workbench.core.experiments.ready_made import ready_made
from workbench.core.experiments.spec import SweepSpec, parse_vary, value_text
from workbench.core.experiments.sweep import ENDED, PENDING, PlannedRun, Sweep, summarise
from workbench.core.runs.folders import read_metrics
from workbench.core.runs.summaries import EXPERIMENTS_DIR
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import EpochMetrics
from workbench.session.phase import Phase, check_transition
from workbench.session.tasks import Task
from workbench.session.training import EpochPacket, RunEnd, RunRequest


class QueueHost(Protocol):
    """What the queue uses of the :class:`~workbench.session.session.Session` it serves."""

    phase: Phase
    runs_folder: Path
    architecture: Architecture
    config: TrainConfig
    report: ValidationReport
    training: Task | None
    last_end: RunEnd | None
    closed: bool
    status: Any  # psygnal signals
    problem: Any
    run_done: Any
    epoch_ended: Any
    phase_changed: Any

    def stop(self) -> None: ...
    def train_request(self, request: RunRequest, status: str) -> None: ...


EXPERIMENTS_FOLDER = EXPERIMENTS_DIR
"""The sub-folder of the runs folder that new experiments go into (the Runs tab lists only run folders)."""


@dataclass
class Curve:
    """One run's validation accuracy per epoch, labelled by what differs about it."""

    label: str
    epochs: list[int] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)


@dataclass
class ExperimentShown:
    """What the Experiments tab draws: the experiment's results, each run's curve, and where the queue is."""

    folder: Path
    keys: list[str]
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    curves: dict[str, Curve]
    state: str
    running: bool
    can_continue: bool
    repeat: int
    value_names: dict[str, dict[str, str]] = field(default_factory=dict)
    """For a key whose values have names (a ready-made's), each value as the table writes it -> its name."""

    def shown_value(self, key: str, value: Any) -> str:
        """A value of ``key`` as the tab shows it: its name if it has one."""
        text = str(value)
        return self.value_names.get(key, {}).get(text, text)

    @property
    def done(self) -> int:
        """How many runs have ended."""
        return sum(1 for row in self.rows if row["status"] in ENDED)


class ExperimentQueue:
    """See the module's docstring. ``changed`` carries an :class:`ExperimentShown` when a run starts or ends or the
    queue stops; ``curve_grew`` a run's name and :class:`Curve` at each of its epochs' ends (cheap: no file read)."""

    changed = Signal(object)  # ExperimentShown
    curve_grew = Signal(str, object)  # run name, Curve

    def __init__(self, session: QueueHost):
        self.session = session
        self.sweep: Sweep | None = None
        self.current: PlannedRun | None = None
        self.going = False  # whether the next run starts when this one ends
        self.curves: dict[str, Curve] = {}
        self.last_problem = ""
        session.run_done.connect(self._run_done)
        session.epoch_ended.connect(self._epoch_ended)
        session.phase_changed.connect(self._phase_changed)

    # ---- what a user does ------------------------------------------------------------------------

    def start(self, spec: SweepSpec, folder: Path | None = None, title: str = "experiment") -> None:
        """Make a new experiment of ``spec`` (in ``folder``, else a new one under the runs folder's
        ``experiments/``) and train its runs in turn. Refused, before anything is written, while something else
        runs or when the spec is bad."""
        check_transition(self.session.phase, Phase.TRAINING)
        spec.check()
        self.sweep = Sweep.create(folder or self.new_folder(title), spec)
        self.curves = {}
        self.last_problem = ""
        self.going = True
        self._next()

    def start_custom(self, vary: list[str], repeat: int = 1) -> None:
        """Vary the network and settings being edited: each of ``vary`` is ``KEY=V1,V2,...`` as ``workbench
        sweep --vary`` takes it; ``repeat`` runs of each combination, seeds apart."""
        if not self.session.report.ok:
            raise WorkbenchError("The network does not fit: " + "\n".join(self.session.report.errors))
        variations = tuple(parse_vary(text) for text in vary if text.strip())
        spec = SweepSpec(self.session.architecture, self.session.config, variations, repeat)
        self.start(spec, title=" and ".join(variation.key for variation in variations) or "experiment")

    def start_ready_made(self, name: str, repeat: int = 1) -> None:
        """Run one of the class's comparisons (:data:`~workbench.core.experiments.ready_made.READY_MADE`)."""
        experiment = ready_made(name)
        self.start(dataclasses.replace(experiment.spec(), repeat=repeat), title=experiment.name)

    def open(self, folder: Path) -> None:
        """Show the experiment in ``folder`` (results and curves) without training anything."""
        if self.going:
            raise WorkbenchError("Stop the experiment that is running before opening another.")
        self.sweep = Sweep.open(folder)
        self.curves = {run.name: self._curve_from_folder(run) for run in self.sweep.runs}
        self.current = None
        self.last_problem = ""
        self._emit()

    def go_on(self) -> None:
        """Train the experiment's runs still to train: an interrupted one from its checkpoint, then the rest."""
        if self.sweep is None:
            raise WorkbenchError("Nothing to continue: start an experiment, or open one.")
        check_transition(self.session.phase, Phase.TRAINING)
        if not self.sweep.pending():
            raise WorkbenchError("Every run of this experiment has ended: nothing to continue.")
        self.last_problem = ""
        self.going = True
        self._next()

    def stop(self) -> None:
        """End the run training now (saved as stopped, to be continued) and start no other."""
        self.going = False
        if self.current is not None:
            self.session.stop()
        self._emit()

    def new_folder(self, title: str) -> Path:
        """A new, unused folder for an experiment called ``title`` under the runs folder."""
        return new_experiment_folder(self.session.runs_folder, title)

    def shown(self) -> ExperimentShown | None:
        """What the tab shows now (None before any experiment)."""
        sweep = self.sweep
        if sweep is None:
            return None
        rows = sweep.results()
        return ExperimentShown(
            sweep.folder,
            sweep.keys(),
            rows,
            summarise(rows, [variation.key for variation in sweep.spec.variations]),
            {run.name: self.curves.get(run.name, Curve(run.label)) for run in sweep.runs},
            self._state_text(),
            self.going,
            not self.going and bool(sweep.pending()),
            sweep.spec.repeat,
            {
                variation.key: {value_text(value): name for value, name in zip(variation.values, variation.names)}
                for variation in sweep.spec.variations
                if variation.names
            },
        )

    # ---- the queue ---------------------------------------------------------------------------------

    def _next(self) -> None:
        sweep = self.sweep
        assert sweep is not None
        pending = sweep.pending()
        if not pending:
            self.going = False
            self.current = None
            self.session.status.emit(f"Experiment done: {len(sweep.runs)} runs in {sweep.folder}", 0)
            self._emit()
            return
        planned = pending[0]
        try:
            step = sweep.next_step(planned)
            if step.extra_epochs is not None:
                request = RunRequest(resume=step.folder, extra_epochs=step.extra_epochs)
            else:
                request = RunRequest(step.architecture, step.config, out=step.folder, name=step.name)
            self.current = planned
            if step.extra_epochs is None or planned.name not in self.curves:
                self.curves[planned.name] = self._curve_from_folder(planned)
            sweep.mark(planned, "running")
            number = sweep.runs.index(planned) + 1
            self.session.train_request(request, f"Experiment run {number} of {len(sweep.runs)}: {planned.label}…")
        except WorkbenchError as error:
            self._refused(planned, str(error))
            return
        self._emit()

    def _refused(self, planned: PlannedRun, message: str) -> None:
        assert self.sweep is not None
        self.sweep.mark(planned, PENDING)
        self.going = False
        self.current = None
        self.last_problem = message
        self.session.problem.emit("The experiment stopped", message)
        self._emit()

    def _run_done(self, status: str) -> None:
        planned, sweep = self.current, self.sweep
        if planned is None or sweep is None:
            return
        self.current = None
        saved = self.session.last_end is None or self.session.last_end.saved
        sweep.mark(planned, status if saved else PENDING)
        self.curves[planned.name] = self._curve_from_folder(planned)
        if status not in ENDED:
            self.going = False
        if self.going and not self.session.closed:
            self._next()
        else:
            self._emit()

    def _epoch_ended(self, packet: EpochPacket) -> None:
        if self.current is None:
            return
        curve = self.curves.setdefault(self.current.name, Curve(self.current.label))
        metrics = packet.metrics
        if metrics.epoch in curve.epochs:
            return
        curve.epochs.append(metrics.epoch)
        curve.accuracies.append(metrics.val_accuracy)
        self.curve_grew.emit(self.current.name, curve)

    def _phase_changed(self, phase: Phase) -> None:
        # A queued run that never started (its dataset failed to load) leaves the queue waiting for nothing.
        if phase is Phase.IDLE and self.current is not None and self.session.training is None:
            self._refused(self.current, "Its dataset could not be loaded.")

    def _curve_from_folder(self, planned: PlannedRun) -> Curve:
        assert self.sweep is not None
        try:
            history: list[EpochMetrics] = read_metrics(self.sweep.run_folder(planned))
        except WorkbenchError:
            history = []
        curve = Curve(planned.label)
        for metrics in history:
            if not math.isnan(metrics.val_accuracy):
                curve.epochs.append(metrics.epoch)
                curve.accuracies.append(metrics.val_accuracy)
        return curve

    def _state_text(self) -> str:
        sweep = self.sweep
        assert sweep is not None
        total = len(sweep.runs)
        ended = sum(1 for run in sweep.runs if run.status in ENDED)
        if self.current is not None:
            number = sweep.runs.index(self.current) + 1
            return f"Run {number} of {total}: {self.current.label} — {ended} of {total} ended"
        if not sweep.pending():
            return f"All {total} runs ended"
        if self.last_problem:
            return f"Stopped: {self.last_problem} — {ended} of {total} ended; Continue goes on"
        return f"{ended} of {total} runs ended — Continue trains the rest"

    def _emit(self) -> None:
        shown = self.shown()
        if shown is not None:
            self.changed.emit(shown)


def new_experiment_folder(runs_folder: Path, title: str) -> Path:
    """A new, unused folder ``experiments/<date>-<title>`` under ``runs_folder`` for an experiment or a search."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "experiment"
    root = runs_folder / EXPERIMENTS_FOLDER
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = root / f"{stamp}-{slug}"
    number = 2
    while folder.exists():
        folder = root / f"{stamp}-{slug}-{number}"
        number += 1
    return folder
