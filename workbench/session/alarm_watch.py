"""The alarms of the run on show, kept as its gradient samples and epochs arrive.

While a run trains, :class:`AlarmWatch` collects the gradient monitor's samples from the batch packets and the
epochs' metrics, and judges them (:func:`~workbench.core.inspect.alarms.run_alarms`) at every epoch's end and
when the run ends: the alarms change at most once an epoch, nothing is computed per batch. A finished run
opened from its folder has its epochs but no gradient samples: its alarms are the epochs' (overfitting,
divergence, a stalled loss).
"""

from __future__ import annotations

from collections.abc import Sequence

from psygnal import Signal

from workbench.core.inspect.alarms import Alarm, run_alarms
from workbench.core.training.gradients import GradientSample
from workbench.core.training.state import EpochMetrics


class AlarmWatch:
    """See the module's docstring. ``changed`` carries the current list of :class:`Alarm` (empty: all is well)."""

    changed = Signal(list)

    def __init__(self) -> None:
        self.alarms: list[Alarm] = []
        self._samples: list[GradientSample] = []
        self._layers: list[str] = []
        self._history: list[EpochMetrics] = []
        self._classes = 10

    def start(self, layers: Sequence[str], history: Sequence[EpochMetrics], classes: int) -> None:
        """A run starts (or goes on after ``history``): forget the last one's samples."""
        self._samples, self._layers, self._history, self._classes = [], list(layers), list(history), classes
        self._judge("")

    def add_samples(self, samples: Sequence[GradientSample]) -> None:
        """Gradient samples of the run training now."""
        self._samples.extend(samples)

    def epoch_ended(self, metrics: EpochMetrics) -> None:
        """An epoch of the run ended: judge the run so far."""
        self._history.append(metrics)
        self._judge("")

    def run_ended(self, status: str) -> None:
        """The run ended with ``status`` (finished, stopped, early-stopped, diverged)."""
        self._judge(status)

    def show_finished(self, history: Sequence[EpochMetrics], status: str, classes: int) -> None:
        """A finished run opened from its folder: its epochs are all there is to judge."""
        self._samples, self._layers, self._history, self._classes = [], [], list(history), classes
        self._judge(status)

    def clear(self) -> None:
        """No run on show."""
        self._samples, self._layers, self._history = [], [], []
        self._judge("")

    def _judge(self, status: str) -> None:
        alarms = run_alarms(self._samples, self._layers, self._history, status, self._classes)
        if alarms != self.alarms:
            self.alarms = alarms
            self.changed.emit(list(alarms))
