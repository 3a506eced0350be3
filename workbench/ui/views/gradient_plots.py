"""Gradient flow, live: each trainable layer's gradient norm (log scale) and each activation layer's dead units.

Fed with :class:`~workbench.core.training.gradients.GradientSample` lists (from ``GradientMonitor.take_new``). Like
:class:`~workbench.ui.views.plots.LivePlots`, :meth:`GradientPlots.add_samples` only stores the points; a timer pushes
them to the curves at most twice a second, or :meth:`GradientPlots.flush` does it at once; while the Gradients
tab is not in front, the curves themselves wait until it is. Depth reads as
colour: the first layer's curve is dark purple, the last one's green, along the viridis ramp.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from workbench.core.training.gradients import GradientSample
from workbench.ui.plotting import REFRESH_MS, Series, make_plot, set_title
from workbench.ui.views.sight import out_of_sight

NORM_TITLE = "Gradient norm per layer"
DEAD_TITLE = "Dead units per activation layer"
NO_ACTIVATIONS_TITLE = "Dead units: this network has no activation layers"
NORM_FLOOR = 1e-12
"""Norms of 0 or below are drawn at this floor of the log axis (a layer that got no gradient at all)."""
COLOUR_MAP = "viridis"
COLOUR_RANGE = (0.0, 0.85)
"""The part of the colour map used: its last yellows are too pale on white."""
LEGEND_ROWS = 6
EXPLANATION = (
    "Each line is one layer's gradient norm: how hard training pushes its weights at that batch. If the first "
    "layers' norms sit orders of magnitude below the last layer's, their weights hardly move: vanishing "
    "gradients. Sigmoid saturates, so deep stacks of it starve the first layers; ReLU keeps gradients alive, "
    "but its units can die (dead = output 0 for the whole batch, so no gradient flows through them)."
)


def layer_colours(count: int) -> list[str]:
    """``count`` colours along the ramp, first layer first, as ``#rrggbb``."""
    colour_map = pg.colormap.get(COLOUR_MAP)
    low, high = COLOUR_RANGE
    positions = [low] if count == 1 else np.linspace(low, high, count).tolist()
    return [colour_map.map(position, mode="qcolor").name() for position in positions[:count]]


def _norm_points(steps: np.ndarray, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Finite norms only (NaN and infinity are skipped), with 0 and below raised to :data:`NORM_FLOOR`."""
    y = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(y)
    return steps[keep], np.maximum(y[keep], NORM_FLOOR)


def _percent_points(steps: np.ndarray, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Fractions as finite percentages; samples without a value (NaN) are skipped."""
    y = np.asarray(values, dtype=np.float64) * 100.0
    keep = np.isfinite(y)
    return steps[keep], y[keep]


class GradientPlots(QWidget):
    """Two live plots over the run's batches: gradient norm per trainable layer (log scale, top) and the
    percentage of dead units per activation layer (bottom), under a line telling a learner what to look for.

    Call :meth:`start` with the monitor's labels when a run starts, then :meth:`add_samples` as samples come.
    Samples naming layers the plots were not started with are ignored. Out of sight (see
    :func:`~workbench.ui.views.sight.out_of_sight`), a run's curves are made, and its samples drawn, when the plots
    are shown or :meth:`flush` is called.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.explanation = QLabel(EXPLANATION)
        self.explanation.setWordWrap(True)
        self.norm_plot = make_plot(NORM_TITLE, "gradient norm (log scale)", "batch")
        self.norm_plot.getPlotItem().setLogMode(y=True)
        self.dead_plot = make_plot(DEAD_TITLE, "dead units (%)", "batch")
        self._series: dict[str, Series] = {}
        self._norm_labels: list[str] = []
        self._dead_labels: list[str] = []
        self._run: tuple[list[str], list[str], int] | None = None  # started out of sight: no curves yet
        self._waiting: list[GradientSample] = []  # its samples so far

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.flush)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.explanation)
        layout.addWidget(self.norm_plot, 3)
        layout.addWidget(self.dead_plot, 2)
        self.clear()

    def start(self, layers: Sequence[str], activations: Sequence[str], total_steps: int) -> None:
        """Forget the previous run and make one curve per trainable layer and per activation layer, the
        x axes fixed to a run of ``total_steps`` batches."""
        self.clear()
        self._run = (list(layers), list(activations), total_steps)
        if not out_of_sight(self):
            self._make_curves()

    def _make_curves(self) -> None:
        """Make the curves of the run started out of sight, with its samples so far."""
        if self._run is None:
            return
        (layers, activations, total_steps), self._run = self._run, None
        self._norm_labels, self._dead_labels = layers, activations
        self._add_curves(self.norm_plot, self._norm_labels)
        self._add_curves(self.dead_plot, self._dead_labels)
        if not self._dead_labels:
            set_title(self.dead_plot, NO_ACTIVATIONS_TITLE)
        for widget in (self.norm_plot, self.dead_plot):
            widget.setXRange(0, max(total_steps, 1), padding=0.01)
        waiting, self._waiting = self._waiting, []
        self.add_samples(waiting)

    def add_samples(self, samples: Iterable[GradientSample]) -> None:
        """Store the samples' points; they reach the curves at the next refresh tick or :meth:`flush`, or when the
        plots are next shown if they are out of sight."""
        samples = list(samples)
        if self._run is not None:
            self._waiting += samples
            return
        if not samples or not self._series:
            return
        steps = np.array([sample.step for sample in samples], dtype=np.float64)
        for label in self._norm_labels:
            self._append(label, *_norm_points(steps, [s.grad_norms.get(label, math.nan) for s in samples]))
        for label in self._dead_labels:
            self._append(label, *_percent_points(steps, [s.dead_fractions.get(label, math.nan) for s in samples]))
        if not self._timer.isActive() and not out_of_sight(self):
            self._timer.start()

    def flush(self) -> None:
        """Push every curve that changed now."""
        self._timer.stop()
        self._make_curves()
        for series in self._series.values():
            series.push()

    def showEvent(self, event: QShowEvent) -> None:
        """Draw what came while the plots were out of sight."""
        super().showEvent(event)
        self.flush()

    def clear(self) -> None:
        """Remove every curve and point (a run's layers decide the curves: see :meth:`start`)."""
        self._timer.stop()
        for widget in (self.norm_plot, self.dead_plot):
            widget.getPlotItem().clear()
            widget.enableAutoRange()
        self.dead_plot.setYRange(0, 100, padding=0.02)
        set_title(self.dead_plot, DEAD_TITLE)
        self._series, self._norm_labels, self._dead_labels = {}, [], []
        self._run, self._waiting = None, []

    def labels(self) -> list[str]:
        """The labels of the curves: trainable layers, then activation layers."""
        self._make_curves()
        return self._norm_labels + self._dead_labels

    def series(self, label: str) -> tuple[np.ndarray, np.ndarray]:
        """The ``(x, y)`` the curve of ``label`` holds: batch numbers and norms (or dead units in percent)."""
        self._make_curves()
        x, y = self._series[label].curve.getOriginalDataset()
        if x is None:
            return np.empty(0), np.empty(0)
        return x, y

    def point_counts(self) -> dict[str, int]:
        """How many points each curve holds, by label."""
        return {label: len(self.series(label)[0]) for label in self.labels()}

    def legend_labels(self, which: str = "norm") -> list[str]:
        """The names in the legend of the ``"norm"`` or the ``"dead"`` plot."""
        self._make_curves()
        widget = self.norm_plot if which == "norm" else self.dead_plot
        return [label.text for _, label in widget.getPlotItem().legend.items]

    def _add_curves(self, widget: pg.PlotWidget, labels: Sequence[str]) -> None:
        widget.getPlotItem().legend.setColumnCount(max(1, math.ceil(len(labels) / LEGEND_ROWS)))
        for label, colour in zip(labels, layer_colours(len(labels))):
            curve = widget.plot(pen=pg.mkPen(colour, width=2), name=label)
            curve.setSkipFiniteCheck(True)
            self._series[label] = Series(curve, capacity=256)

    def _append(self, label: str, x: np.ndarray, y: np.ndarray) -> None:
        if len(x):
            self._series[label].append(x, y)
