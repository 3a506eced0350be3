"""What the workbench's plots share: colours, a white plot with dark labels, growable curve buffers.

Used by the training plots, the gradient plots and the activation explorer.
"""

from __future__ import annotations

import html
import math
import textwrap

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsItem, QSizePolicy

REFRESH_MS = 500
"""The live plots draw their new points at most this often: a refresh costs the window's thread milliseconds that
the training thread beside it would use."""
TRAIN_COLOUR = "#1f5fa8"
RAW_COLOUR = "#b9cbe3"
VAL_COLOUR = "#e07000"
TEXT_COLOUR = "#202020"
GRID_ALPHA = 0.15
LEGEND_LINE = 16
"""The longest line of a run's name in an overlay legend: longer names wrap, so the legend keeps beside the plot."""


class Series:
    """One curve's points in preallocated float64 buffers that double when full."""

    def __init__(self, curve: pg.PlotDataItem, capacity: int = 1024):
        self.curve = curve
        self.count = 0
        self.dirty = False
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)

    def append(self, x: np.ndarray, y: np.ndarray) -> None:
        """Add points after those held."""
        end = self.count + len(x)
        if end > len(self._x):
            capacity = max(end, 2 * len(self._x))
            self._x = np.resize(self._x, capacity)
            self._y = np.resize(self._y, capacity)
        self._x[self.count : end] = x
        self._y[self.count : end] = y
        self.count = end
        self.dirty = True

    def top(self) -> float:
        """The largest value held (0 when empty)."""
        return float(self._y[: self.count].max()) if self.count else 0.0

    def reset(self) -> None:
        """Forget every point and clear the curve."""
        self.count = 0
        self.dirty = False
        self.curve.clear()

    def push(self) -> None:
        """Hand the points to the curve; the curve keeps views, which later appends (past ``count``) never touch."""
        if self.dirty:
            self.curve.setData(self._x[: self.count], self._y[: self.count])
            self.dirty = False


class WholeNumberAxis(pg.AxisItem):
    """An axis for epochs: ticks only at whole numbers."""

    def tickValues(self, minVal, maxVal, size):
        levels = [(spacing, values) for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        if levels:
            return levels
        low, high = sorted((minVal, maxVal))
        return [(1.0, list(range(math.ceil(low), math.floor(high) + 1)))]


class SparseLogAxis(pg.AxisItem):
    """A log axis that labels 1, 2 and 5 of each decade only: pyqtgraph labels every minor tick of a range under
    two decades, and "0.9 0.8 0.7 0.6" then run into each other."""

    def logTickStrings(self, values, scale, spacing):
        strings = super().logTickStrings(values, scale, spacing)
        return [text if _leading_digit(value) in (1, 2, 5) else "" for value, text in zip(values, strings, strict=True)]


def _leading_digit(log_value: float) -> int:
    return round(10 ** (log_value - math.floor(log_value + 1e-9)))


def set_title(widget: pg.PlotWidget, title: str) -> None:
    """Set a plot's title in the plots' dark text colour."""
    widget.getPlotItem().setTitle(title, color=TEXT_COLOUR, size="11pt")


def make_plot(
    title: str,
    y_label: str,
    x_label: str,
    whole_x: bool = False,
    log_y: bool = False,
) -> pg.PlotWidget:
    """A white plot with dark labels and its legend to the right of the data (``whole_x``: ticks at whole
    numbers on the x axis; ``log_y``: a log y axis labelled at 1, 2 and 5 of each decade)."""
    axis_items: dict[str, pg.AxisItem] = {}
    if whole_x:
        axis_items["bottom"] = WholeNumberAxis("bottom")
    if log_y:
        axis_items["left"] = SparseLogAxis("left")
    widget = pg.PlotWidget(axisItems=axis_items or None)
    if log_y:
        widget.getPlotItem().setLogMode(y=True)
    widget.setBackground("w")
    plot = widget.getPlotItem()
    set_title(widget, title)
    for side, label in (("left", y_label), ("bottom", x_label)):
        axis = plot.getAxis(side)
        # An axis draws its grid across the whole plot: kept as a picture, a new point does not redraw it.
        axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        axis.setPen(TEXT_COLOUR)
        axis.setTextPen(TEXT_COLOUR)
        axis.enableAutoSIPrefix(False)
        plot.setLabel(side, label, color=TEXT_COLOUR)
    plot.showGrid(x=True, y=True, alpha=GRID_ALPHA)
    # The legend sits right of the plot area, never over a curve: the plot's own grid layout has the view box
    # in row 2, column 1 and the right axis in column 2, so column 3 is outside the data.
    legend = pg.LegendItem(
        offset=None,
        labelTextColor=TEXT_COLOUR,
        labelTextSize="8pt",
        brush=(255, 255, 255, 0),
        pen=None,
    )
    legend.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
    plot.layout.addItem(legend, 2, 3)
    plot.layout.setAlignment(legend, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    plot.legend = legend  # curves given a name join it, as with addLegend
    plot.setMenuEnabled(False)
    return widget


def legend_name(name: str) -> str:
    """A run's name for an overlay legend: HTML-escaped, on lines of at most :data:`LEGEND_LINE` characters, broken
    after hyphens and spaces where it can be."""
    lines = textwrap.wrap(name, LEGEND_LINE, drop_whitespace=False) or [name]
    return "<br>".join(html.escape(line) for line in lines)
