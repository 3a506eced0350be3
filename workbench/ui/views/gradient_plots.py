"""Gradient flow, live: each trainable layer's gradient norm (log scale) and each activation layer's dead units.

Fed with :class:`~workbench.core.training.gradients.GradientSample` lists (from ``GradientMonitor.take_new``). Like
:class:`~workbench.ui.views.plots.LivePlots`, :meth:`GradientPlots.add_samples` only stores the points; a timer pushes
them to the curves at most twice a second, or :meth:`GradientPlots.flush` does it at once; while the Gradients
tab is not in front, the curves themselves wait until it is. Depth reads as
colour: the first layer's curve is dark purple, the last one's green, along the viridis ramp.

Earlier runs' recorded gradients (each run folder's gradients.jsonl, read as
:class:`~workbench.core.training.gradients.GradientEpoch` lists) are overlaid above the live plots by
:meth:`GradientPlots.show_overlays`: one layer's norm per epoch for every run, the layer chosen in a combo (the same
trainable layer of each run, counted from the input), and every layer's norm at each run's last epoch, input to
output: the vanishing-gradient picture, in which a deep sigmoid network's norms fall layer by layer towards the input
and a ReLU network's stay level. Each run has its colour from :data:`~workbench.ui.views.plots.OVERLAY_PALETTE`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from workbench.core.training.gradients import GradientEpoch, GradientSample
from workbench.ui.plotting import REFRESH_MS, Series, legend_name, make_plot, set_title
from workbench.ui.views.plots import OVERLAY_PALETTE
from workbench.ui.views.sight import out_of_sight

NORM_TITLE = "Gradient norm per layer"
DEAD_TITLE = "Dead units per activation layer"
NO_ACTIVATIONS_TITLE = "Dead units: this network has no activation layers"
NORM_FLOOR = 1e-12
"""Norms of 0 or below are drawn at this floor of the log axis (a layer that got no gradient at all)."""
COLOUR_MAP = "viridis"
COLOUR_RANGE = (0.0, 0.85)
"""The part of the colour map used: its last yellows are too pale on white."""
LEGEND_ROWS = 12
LEGEND_COLUMNS = 2
"""At most this many columns of at most :data:`LEGEND_ROWS` names beside a plot, so that it keeps most of the width;
a deeper network's legend names layers at even steps from the input to the output (the colours run the same way)."""
EXPLANATION = (
    "Each line is one layer's gradient norm: how hard training pushes its weights at that batch. If the first "
    "layers' norms sit orders of magnitude below the last layer's, their weights hardly move: vanishing "
    "gradients. Sigmoid saturates, so deep stacks of it starve the first layers; ReLU keeps gradients alive, "
    "but its units can die (dead = output 0 for the whole batch, so no gradient flows through them)."
)
OVERLAY_LAYER_TITLE = "{layer}, per epoch"
OVERLAY_PROFILE_TITLE = "Every layer, each run's last epoch"
PROFILE_AXIS = "trainable layer, from the input"
NORM_AXIS = "gradient norm (log)"
NO_GRADIENTS = "{name} has no recorded gradients: trained before this version."


def ordinal(number: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ... ``11th``, ``21st``."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


@dataclass
class _OverlaidRun:
    """A run on the overlay plots: its name, colour, recorded epochs and trainable layers (input first), and its
    curves."""

    name: str
    colour: str
    epochs: list[GradientEpoch]
    layers: list[str]
    layer_curve: pg.PlotDataItem | None = None
    profile_curve: pg.PlotDataItem | None = None


def legend_selection(count: int) -> set[int]:
    """The positions of the layers named in a legend of ``count`` curves: all of them when they fit, else evenly
    spaced ones from the first to the last."""
    room = LEGEND_ROWS * LEGEND_COLUMNS
    if count <= room:
        return set(range(count))
    return {round(step * (count - 1) / (room - 1)) for step in range(room)}


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
        self.norm_plot = make_plot(NORM_TITLE, "gradient norm (log scale)", "batch", log_y=True)
        self.dead_plot = make_plot(DEAD_TITLE, "dead units (%)", "batch")
        self._make_overlay_box()
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
        layout.addWidget(self.overlay_box, 3)
        layout.addWidget(self.norm_plot, 3)
        layout.addWidget(self.dead_plot, 2)
        self.clear()
        self.clear_overlays()

    def _make_overlay_box(self) -> None:
        """The overlaid runs' row, shown only while there are some: the layer combo, the note on runs without
        recorded gradients, and the two plots side by side."""
        self.overlay_box = QWidget()
        self.layer_combo = QComboBox()
        self.layer_combo.setObjectName("overlayLayer")
        self.layer_combo.setToolTip("The layer whose gradient norm the left plot shows for every overlaid run")
        self.layer_combo.currentIndexChanged.connect(self._draw_layer)
        self.clear_overlay_button = QPushButton("Clear overlay")
        self.clear_overlay_button.setObjectName("clearGradientOverlay")
        self.clear_overlay_button.clicked.connect(self.clear_overlays)
        self.overlay_note = QLabel()
        self.overlay_note.setObjectName("overlayNote")
        self.overlay_note.setWordWrap(True)
        self.overlay_layer_plot = make_plot(
            OVERLAY_LAYER_TITLE.format(layer="One layer"), NORM_AXIS, "epoch", True, log_y=True
        )
        self.overlay_profile_plot = make_plot(OVERLAY_PROFILE_TITLE, NORM_AXIS, PROFILE_AXIS, True, log_y=True)
        chooser = QHBoxLayout()
        chooser.addWidget(QLabel("Overlaid runs, layer:"))
        chooser.addWidget(self.layer_combo)
        chooser.addStretch(1)
        chooser.addWidget(self.clear_overlay_button)
        plots = QHBoxLayout()
        plots.addWidget(self.overlay_layer_plot, 1)
        plots.addWidget(self.overlay_profile_plot, 1)
        box = QVBoxLayout(self.overlay_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addLayout(chooser)
        box.addWidget(self.overlay_note)
        box.addLayout(plots, 1)
        self._overlays: list[_OverlaidRun] = []

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
        named = legend_selection(len(labels))
        widget.getPlotItem().legend.setColumnCount(max(1, math.ceil(len(named) / LEGEND_ROWS)))
        for index, (label, colour) in enumerate(zip(labels, layer_colours(len(labels)))):
            curve = widget.plot(pen=pg.mkPen(colour, width=2), name=label if index in named else None)
            curve.setSkipFiniteCheck(True)
            self._series[label] = Series(curve, capacity=256)

    def _append(self, label: str, x: np.ndarray, y: np.ndarray) -> None:
        if len(x):
            self._series[label].append(x, y)

    # -- earlier runs, overlaid ---------------------------------------------------------------------------------------

    def show_overlays(self, runs: Sequence[tuple[str, Sequence[GradientEpoch]]], problems: Sequence[str] = ()) -> None:
        """Overlay earlier runs' recorded gradients, replacing the overlays shown before.

        Each ``(name, epochs)`` gets its colour from :data:`OVERLAY_PALETTE`, in the order given: on the left, the
        chosen layer's norm at every recorded epoch; on the right, every trainable layer's norm at the run's last
        recorded epoch, input to output. The same layer of two runs is the same trainable layer counted from the
        input (``"2 Linear"``, the first, in both a sigmoid and a ReLU stack). A run without recorded epochs is
        named in the note above the plots, with ``problems`` (runs whose gradients could not be read).
        """
        self._remove_overlays()
        notes = list(problems)
        for index, (name, epochs) in enumerate(runs):
            colour = OVERLAY_PALETTE[index % len(OVERLAY_PALETTE)]
            layers = list(dict.fromkeys(label for epoch in epochs for label in epoch.grad_norms))
            if not epochs or not layers:
                notes.append(NO_GRADIENTS.format(name=name))
                continue
            self._overlays.append(_OverlaidRun(name, colour, list(epochs), layers))
        self.overlay_note.setText("\n".join(notes))
        self.overlay_note.setVisible(bool(notes))
        self._fill_layer_combo()
        for run in self._overlays:
            run.profile_curve = self._overlay_curve(self.overlay_profile_plot, run, self._profile_points(run))
        last = {run.epochs[-1].epoch for run in self._overlays}
        title = f"Every layer at epoch {last.pop()}" if len(last) == 1 else OVERLAY_PROFILE_TITLE
        set_title(self.overlay_profile_plot, title)
        self._draw_layer()
        self.overlay_box.setVisible(bool(self._overlays) or bool(notes))

    def clear_overlays(self) -> None:
        """Remove every overlaid run, and hide their row."""
        self._remove_overlays()
        self.overlay_note.clear()
        self.overlay_note.hide()
        self._fill_layer_combo()
        self.overlay_box.hide()

    def overlay_names(self) -> list[str]:
        """The names of the runs drawn on the overlay plots (those with recorded gradients), in order."""
        return [run.name for run in self._overlays]

    def overlay_colour(self, index: int) -> str:
        """The colour (``#rrggbb``) of the ``index``-th drawn run."""
        return self._overlays[index].colour

    def overlay_note_text(self) -> str:
        """The note above the overlay plots: the runs that have no recorded gradients (empty if none)."""
        return self.overlay_note.text()

    def overlay_layers(self) -> list[str]:
        """The layer combo's entries: ``"1st trainable layer: 2 Linear"``, ..."""
        return [self.layer_combo.itemText(index) for index in range(self.layer_combo.count())]

    def choose_overlay_layer(self, position: int) -> None:
        """Show the ``position``-th trainable layer (0: the first, next to the input) on the left plot."""
        self.layer_combo.setCurrentIndex(position)

    def overlay_series(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``(epochs, norms)`` the ``index``-th drawn run's curve holds for the chosen layer (empty where the
        run has no such layer)."""
        return _data(self._overlays[index].layer_curve)

    def overlay_profile(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``(layer positions from 1, norms)`` of the ``index``-th drawn run's last recorded epoch."""
        return _data(self._overlays[index].profile_curve)

    def overlay_legend_labels(self, which: str = "layer") -> list[str]:
        """The run names in the legend of the ``"layer"`` or the ``"profile"`` overlay plot, as given."""
        widget = self.overlay_layer_plot if which == "layer" else self.overlay_profile_plot
        return [html.unescape(label.text.replace("<br>", "")) for _, label in widget.getPlotItem().legend.items]

    def _fill_layer_combo(self) -> None:
        """One entry for each trainable layer position any drawn run has, naming each run's layer there; the first
        layer chosen (where gradients vanish first)."""
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        for position in range(max((len(run.layers) for run in self._overlays), default=0)):
            labels = dict.fromkeys(run.layers[position] for run in self._overlays if position < len(run.layers))
            self.layer_combo.addItem(f"{ordinal(position + 1)} trainable layer: {' / '.join(labels)}")
        self.layer_combo.setCurrentIndex(0 if self.layer_combo.count() else -1)
        self.layer_combo.setEnabled(self.layer_combo.count() > 1)
        self.layer_combo.blockSignals(False)

    def _draw_layer(self, *_: object) -> None:
        """Draw the chosen layer's norm per epoch for every run that has that layer."""
        position = self.layer_combo.currentIndex()
        chosen = [run.layers[position] for run in self._overlays if 0 <= position < len(run.layers)]
        layer = " / ".join(dict.fromkeys(chosen)) if chosen else "One layer"
        set_title(self.overlay_layer_plot, OVERLAY_LAYER_TITLE.format(layer=layer))
        for run in self._overlays:
            if run.layer_curve is not None:
                self.overlay_layer_plot.getPlotItem().removeItem(run.layer_curve)
                run.layer_curve = None
            if 0 <= position < len(run.layers):
                label = run.layers[position]
                epochs = np.array([epoch.epoch for epoch in run.epochs], dtype=np.float64)
                points = _norm_points(epochs, [epoch.grad_norms.get(label, math.nan) for epoch in run.epochs])
                run.layer_curve = self._overlay_curve(self.overlay_layer_plot, run, points)
        self.overlay_layer_plot.enableAutoRange()

    @staticmethod
    def _profile_points(run: _OverlaidRun) -> tuple[np.ndarray, np.ndarray]:
        last = run.epochs[-1]
        positions = np.arange(1, len(run.layers) + 1, dtype=np.float64)
        return _norm_points(positions, [last.grad_norms.get(label, math.nan) for label in run.layers])

    @staticmethod
    def _overlay_curve(
        widget: pg.PlotWidget, run: _OverlaidRun, points: tuple[np.ndarray, np.ndarray]
    ) -> pg.PlotDataItem:
        """A run's curve with dots at its points, named after the run in the legend."""
        return widget.plot(
            *points,
            pen=pg.mkPen(run.colour, width=2),
            symbol="o",
            symbolSize=6,
            symbolPen=run.colour,
            symbolBrush=run.colour,
            antialias=True,
            name=legend_name(run.name),
        )

    def _remove_overlays(self) -> None:
        """Take the overlaid curves off their plots; removing a curve removes its legend entry too."""
        for run in self._overlays:
            for widget, curve in (
                (self.overlay_layer_plot, run.layer_curve),
                (self.overlay_profile_plot, run.profile_curve),
            ):
                if curve is not None:
                    widget.getPlotItem().removeItem(curve)
        self._overlays = []
        for widget in (self.overlay_layer_plot, self.overlay_profile_plot):
            widget.enableAutoRange()


def _data(curve: pg.PlotDataItem | None) -> tuple[np.ndarray, np.ndarray]:
    """The ``(x, y)`` a curve holds (y as given, not its logarithm); empty for no curve."""
    if curve is None:
        return np.empty(0), np.empty(0)
    x, y = curve.getOriginalDataset()
    if x is None:
        return np.empty(0), np.empty(0)
    return x, y
