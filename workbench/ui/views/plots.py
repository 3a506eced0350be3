"""Live training plots: loss per batch (raw and smoothed), loss per epoch, validation accuracy per epoch.

Data goes into growable float64 buffers; a timer pushes whatever changed to the curves at most twice a
second, so a worker sending many small packets costs one redraw per tick, however long the run; while another tab
is in front, nothing is drawn until the plots are shown again. The axes move as little as possible (losses from 0
to a top that only grows, the run's length known in advance) and are kept as pictures between two moves: redrawing
axes and grid would be most of what a refresh costs, and the GUI thread shares the CPU with training.

Earlier runs can be overlaid on the epoch plots (:meth:`LivePlots.show_overlays`) to compare them with each
other and with the run training now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QGridLayout, QWidget

from workbench.core.training.engine import EpochMetrics
from workbench.ui.plotting import (
    RAW_COLOUR,
    REFRESH_MS,
    TRAIN_COLOUR,
    VAL_COLOUR,
    Series,
    legend_name,
    make_plot,
    set_title,
)
from workbench.ui.views.sight import out_of_sight

SMOOTHING = 0.05
ACCURACY_TITLE = "Validation accuracy per epoch"
LOSS_TITLE = "Loss per epoch"
OVERLAID_LOSS_TITLE = "Loss (dashed: validation)"
SERIES_NAMES = ("batch_loss", "batch_loss_smooth", "train_loss", "val_loss", "val_accuracy")
# Overlaid runs: a qualitative palette (ColorBrewer Dark2 without its orange, plus cyan and grey) that keeps
# clear of the live run's blue and orange; a ninth run takes the first colour again.
OVERLAY_PALETTE = ("#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#e6ab02", "#17becf", "#666666")
OVERLAY_SERIES = ("val_accuracy", "val_loss", "train_loss")


class LivePlots(QWidget):
    """The three live plots of a run: loss per batch on top, loss and accuracy per epoch side by side below.

    ``add_batch_losses`` and ``add_epoch`` only store the points; they reach the curves on the next refresh
    tick (every :data:`~workbench.ui.plotting.REFRESH_MS` ms), at :meth:`flush`, or when the plots are next shown if they are out of sight (see
    :func:`~workbench.ui.views.sight.out_of_sight`). Non-finite values are skipped, so a run without a validation set
    simply has no validation points.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.batch_plot = make_plot("Training loss per batch", "loss", "batch")
        self.epoch_loss_plot = make_plot(LOSS_TITLE, "loss", "epoch", whole_x=True)
        self.accuracy_plot = make_plot(ACCURACY_TITLE, "accuracy (%)", "epoch", whole_x=True)

        batch_item = self.batch_plot.getPlotItem()
        batch_item.setClipToView(True)
        batch_item.setDownsampling(auto=True, mode="peak")
        # Peak downsampling at one min/max pair per pixel column draws exactly what five per pixel would, at a
        # fifth of the cost; the raw pen is opaque because translucent strokes over a dense path are slow. The
        # smoothed line averages instead: peaks would turn it into a saw wave, slow to antialias.
        self._series = {
            "batch_loss": Series(
                self.batch_plot.plot(pen=pg.mkPen(RAW_COLOUR, width=1), autoDownsampleFactor=1.0, name="each batch")
            ),
            "batch_loss_smooth": Series(
                self.batch_plot.plot(
                    pen=pg.mkPen(TRAIN_COLOUR, width=2),
                    autoDownsampleFactor=1.0,
                    name=f"smoothed (EMA, α = {SMOOTHING:g})",
                )
            ),
            "train_loss": Series(self._epoch_curve(self.epoch_loss_plot, TRAIN_COLOUR, "o", "training")),
            "val_loss": Series(self._epoch_curve(self.epoch_loss_plot, VAL_COLOUR, "s", "validation")),
            "val_accuracy": Series(self._epoch_curve(self.accuracy_plot, VAL_COLOUR, "s", "validation")),
        }
        self._series["batch_loss_smooth"].curve.setDownsampling(method="mean")
        for series in self._series.values():
            series.curve.setSkipFiniteCheck(True)
        self.accuracy_plot.setYRange(0, 100)
        self._smoothed: float | None = None
        self._loss_axes = ((self.batch_plot, ("batch_loss",)), (self.epoch_loss_plot, ("train_loss", "val_loss")))
        self._loss_tops = {id(widget): 0.0 for widget, _ in self._loss_axes}
        self._overlays: list[tuple[str, str, dict[str, pg.PlotDataItem]]] = []
        self._expected_epochs: int | None = None

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.flush)

        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.batch_plot, 0, 0, 1, 2)
        layout.addWidget(self.epoch_loss_plot, 1, 0)
        layout.addWidget(self.accuracy_plot, 1, 1)
        layout.setRowStretch(0, 3)
        layout.setRowStretch(1, 2)

    @staticmethod
    def _epoch_curve(widget: pg.PlotWidget, colour: str, symbol: str, name: str) -> pg.PlotDataItem:
        curve = widget.plot(
            pen=pg.mkPen(colour, width=2),
            symbol=symbol,
            symbolSize=7,
            symbolPen=colour,
            symbolBrush=colour,
            antialias=True,
            name=name,
        )
        # The legend draws the symbol from the scatter item, which takes the curve's colours only with data.
        curve.scatter.setPen(colour)
        curve.scatter.setBrush(colour)
        return curve

    def clear(self) -> None:
        """Forget every point of the live run, for a new run, and let the axes fit the new data again.

        Overlaid runs stay: a user overlays earlier runs and then starts a new one to compare it with them
        as it trains; :meth:`clear_overlays` removes them.
        """
        self._timer.stop()
        for series in self._series.values():
            series.reset()
        self._smoothed = None
        for widget, _ in self._loss_axes:
            widget.enableAutoRange()
            self._loss_tops[id(widget)] = 0.0
        self.accuracy_plot.enableAutoRange(x=True)
        self.accuracy_plot.setYRange(0, 100)
        set_title(self.accuracy_plot, ACCURACY_TITLE)
        self._expected_epochs = None
        self._fit_loss_top()

    def expect(self, batches: int, epochs: int) -> None:
        """Fix the x axes to a run of ``epochs`` epochs, ``batches`` batches in all.

        Axes that do not move are not redrawn at every refresh, which keeps the GUI thread light
        while a run trains.
        """
        self.batch_plot.setXRange(0, max(batches, 1), padding=0.01)
        self._expected_epochs = epochs
        self._fit_epoch_range()

    def add_batch_losses(self, steps: Sequence[int], losses: Sequence[float]) -> None:
        """Append losses of batches numbered ``steps`` over the whole run; the smoothed curve follows them."""
        x = np.asarray(steps, dtype=np.float64)
        y = np.asarray(losses, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"{len(x)} batch numbers but {len(y)} losses.")
        finite = np.isfinite(y)
        x, y = x[finite], y[finite]
        if not len(y):
            return
        smoothed = np.empty_like(y)
        value = y[0] if self._smoothed is None else self._smoothed
        for index, loss in enumerate(y.tolist()):
            value += SMOOTHING * (loss - value)
            smoothed[index] = value
        self._smoothed = value
        self._series["batch_loss"].append(x, y)
        self._series["batch_loss_smooth"].append(x, smoothed)
        self._schedule()

    def add_epoch(self, metrics: EpochMetrics) -> None:
        """Append one epoch's training and validation loss and validation accuracy (as percent)."""
        for name, value in (
            ("train_loss", metrics.train_loss),
            ("val_loss", metrics.val_loss),
            ("val_accuracy", metrics.val_accuracy * 100.0),
        ):
            if math.isfinite(value):
                self._series[name].append(np.array([metrics.epoch], dtype=np.float64), np.array([value]))
        if not math.isfinite(metrics.val_accuracy) and not self._series["val_accuracy"].count:
            set_title(self.accuracy_plot, "No validation set")
        self._schedule()

    def flush(self) -> None:
        """Push every series that changed to its curve now."""
        self._timer.stop()
        for series in self._series.values():
            series.push()
        for widget, names in self._loss_axes:
            top = max(max(self._series[name].top() for name in names), self._overlay_top(widget))
            if top > self._loss_tops[id(widget)]:
                self._loss_tops[id(widget)] = top * 1.1
                widget.setYRange(0, top * 1.1, padding=0)

    def point_counts(self) -> dict[str, int]:
        """How many points each curve holds, read from the curves."""
        return {name: len(self.series(name)[0]) for name in SERIES_NAMES}

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The ``(x, y)`` the curve called ``name`` (one of :data:`SERIES_NAMES`) holds, before any downsampling."""
        x, y = self._series[name].curve.getOriginalDataset()
        if x is None:
            return np.empty(0), np.empty(0)
        return x, y

    def _schedule(self) -> None:
        if not self._timer.isActive() and not out_of_sight(self):
            self._timer.start()

    def showEvent(self, event: QShowEvent) -> None:
        """Draw what came while the plots were out of sight."""
        super().showEvent(event)
        self.flush()

    def show_overlays(self, runs: Sequence[tuple[str, Sequence[EpochMetrics]]]) -> None:
        """Draw earlier runs on the epoch plots, replacing the overlays shown before.

        Each ``(name, history)`` gets its own colour from :data:`OVERLAY_PALETTE`: validation accuracy (%) on
        the accuracy plot ("name (val)" in its legend), training loss (solid) and validation loss (dashed) on the
        loss plot ("name" once in its legend, the title saying which line is which). Non-finite figures are skipped, like the live run's. The epoch axes
        widen to the longest run shown, the loss axis rises to its highest loss.
        """
        self._remove_overlay_curves()
        for index, (name, history) in enumerate(runs):
            colour = OVERLAY_PALETTE[index % len(OVERLAY_PALETTE)]
            self._overlays.append((name, colour, self._overlay_curves(name, colour, history)))
        self._fit_epoch_range()
        self._fit_loss_top()
        set_title(self.epoch_loss_plot, OVERLAID_LOSS_TITLE if self._overlays else LOSS_TITLE)

    def clear_overlays(self) -> None:
        """Remove every overlaid run, from the plots and their legends."""
        self._remove_overlay_curves()
        self._fit_epoch_range()
        self._fit_loss_top()
        set_title(self.epoch_loss_plot, LOSS_TITLE)

    def overlay_names(self) -> list[str]:
        """The names of the overlaid runs, in the order given to :meth:`show_overlays`."""
        return [name for name, _, _ in self._overlays]

    def overlay_colour(self, index: int) -> str:
        """The colour (``#rrggbb``) of the ``index``-th overlaid run."""
        return self._overlays[index][1]

    def overlay_series(self, index: int, series: str) -> tuple[np.ndarray, np.ndarray]:
        """The ``(x, y)`` the ``index``-th overlaid run's curve ``series`` (one of :data:`OVERLAY_SERIES`)
        holds; empty when that run has no finite figure for it."""
        curve = self._overlays[index][2].get(series)
        if curve is None:
            return np.empty(0), np.empty(0)
        x, y = curve.getOriginalDataset()
        return (np.empty(0), np.empty(0)) if x is None else (x, y)

    def _overlay_curves(self, name: str, colour: str, history: Sequence[EpochMetrics]) -> dict[str, pg.PlotDataItem]:
        epochs = np.array([metrics.epoch for metrics in history], dtype=np.float64)
        figures = {
            "val_accuracy": [metrics.val_accuracy * 100.0 for metrics in history],
            "val_loss": [metrics.val_loss for metrics in history],
            "train_loss": [metrics.train_loss for metrics in history],
        }
        layout = {
            "val_accuracy": (Qt.PenStyle.SolidLine, legend_name(f"{name} (val)")),
            # one entry a run on the loss plot, the title saying which line is which: six would not fit beside it
            "val_loss": (Qt.PenStyle.DashLine, None),
            "train_loss": (Qt.PenStyle.SolidLine, legend_name(name)),
        }
        curves = {}
        for series, (style, legend) in layout.items():
            values = np.array(figures[series], dtype=np.float64)
            finite = np.isfinite(values)
            if finite.any():
                curves[series] = self._overlay_curve(
                    self._overlay_widget(series), epochs[finite], values[finite], colour, style, legend
                )
        return curves

    @staticmethod
    def _overlay_curve(
        widget: pg.PlotWidget, x: np.ndarray, y: np.ndarray, colour: str, style: Qt.PenStyle, legend: str | None
    ) -> pg.PlotDataItem:
        """A thin curve with small dots at the epochs, drawn behind the live run's curves."""
        curve = widget.plot(
            x,
            y,
            pen=pg.mkPen(colour, width=1.5, style=style),
            symbol="o",
            symbolSize=4,
            symbolPen=colour,
            symbolBrush=colour,
            antialias=True,
            name=legend,
        )
        curve.setZValue(-1)
        return curve

    def _overlay_widget(self, series: str) -> pg.PlotWidget:
        return self.accuracy_plot if series == "val_accuracy" else self.epoch_loss_plot

    def _remove_overlay_curves(self) -> None:
        """Take the overlaid curves off their plots; removing a curve from a plot removes its legend entry too."""
        for _, _, curves in self._overlays:
            for series, curve in curves.items():
                self._overlay_widget(series).getPlotItem().removeItem(curve)
        self._overlays = []

    def _overlay_top(self, widget: pg.PlotWidget) -> float:
        """The highest value the overlaid runs draw on the loss plot ``widget`` (0 when none)."""
        tops = [
            float(curve.getOriginalDataset()[1].max())
            for _, _, curves in self._overlays
            for series, curve in curves.items()
            if self._overlay_widget(series) is widget
        ]
        return max(tops, default=0.0) if widget is not self.accuracy_plot else 0.0

    def _fit_epoch_range(self) -> None:
        """With the run's length known (:meth:`expect`), fix the epoch axes to it or to the longest overlaid run;
        otherwise they follow the data."""
        if self._expected_epochs is None:
            return
        longest = max(
            (
                float(curve.getOriginalDataset()[0].max())
                for _, _, curves in self._overlays
                for curve in curves.values()
            ),
            default=0.0,
        )
        for widget in (self.epoch_loss_plot, self.accuracy_plot):
            widget.setXRange(1, max(self._expected_epochs, longest, 2), padding=0.05)

    def _fit_loss_top(self) -> None:
        """Set the epoch loss axis from 0 to above the highest loss drawn, live or overlaid."""
        widget = self.epoch_loss_plot
        top = max(self._series["train_loss"].top(), self._series["val_loss"].top(), self._overlay_top(widget))
        self._loss_tops[id(widget)] = top * 1.1
        if top > 0:
            widget.setYRange(0, top * 1.1, padding=0)
        else:
            widget.enableAutoRange(y=True)
