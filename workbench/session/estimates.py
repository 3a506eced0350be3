"""The estimate of the next run's time, kept up to date in the background while the user edits.

Each request measures anew (see :func:`workbench.core.training.estimate.estimate_run`) on a worker thread and
cancels the measurement before it, whose result would describe settings no longer shown; only the latest
request's outcome is told (:attr:`Estimates.changed`). The window debounces its requests, so a user typing a
number does not start a measurement per key.
"""

from __future__ import annotations

from psygnal import Signal

from workbench.core.architecture import Architecture
from workbench.core.data.catalog import DatasetInfo
from workbench.core.training.config import TrainConfig
from workbench.core.training.estimate import EstimateStopped, RunEstimate, estimate_run
from workbench.session.tasks import NewestOnly, Runner, TaskState

MEASURING = "Estimating the run's time…"


class Estimates:
    """The next run's estimated time, as the line the training panel shows."""

    changed = Signal(str)  # the line to show: an estimate, MEASURING, or "" for none
    """The estimate line changed (emitted in the session's thread)."""

    def __init__(self, runner: Runner):
        self.runner = runner
        self.line = ""
        self.latest: RunEstimate | None = None
        self.work = NewestOnly(runner, "Estimating the run's time")

    def request(self, architecture: Architecture, config: TrainConfig, info: DatasetInfo) -> None:
        """Measure the run these would start; what is being measured now is dropped."""
        self.cancel(clear=False)

        def work(state: TaskState) -> RunEstimate | None:
            try:
                return estimate_run(architecture, config, info, stop=lambda: state.cancelled)
            except EstimateStopped:
                return None

        self._tell(MEASURING)
        self.work.start(work, self._measured, self._failed)  # not a phase of the session: editing goes on

    def cancel(self, clear: bool = True) -> None:
        """Stop measuring (a run starts, the settings cannot train); with ``clear``, show no estimate."""
        self.work.cancel()
        if clear:
            self.latest = None
            self._tell("")

    def _measured(self, estimate: RunEstimate | None) -> None:
        self.latest = estimate
        self._tell("" if estimate is None else f"Estimated: {estimate.words()}")

    def _failed(self, message: str) -> None:
        """Settings or a network that cannot train: Start says why when pressed; the estimate only steps aside."""
        self.latest = None
        self._tell(f"No estimate: {message}")

    def _tell(self, line: str) -> None:
        if line != self.line:
            self.line = line
            self.changed.emit(line)
