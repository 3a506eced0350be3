"""The activation explorer: pick an activation, see it and its derivative, tune its parameter, read why it matters."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.inspect.activation_functions import ACTIVATIONS, NOTES, curve, measure
from workbench.core.layers import CATALOG, Param
from workbench.ui.panels.param_form import FloatSpinBox
from workbench.ui.plotting import TEXT_COLOUR, TRAIN_COLOUR, VAL_COLOUR, make_plot

OVERLAY = "Sigmoid"
OVERLAY_COLOUR = (120, 120, 120, 150)
AXIS_COLOUR = (150, 150, 150)
JUMP = 0.1
EDITOR_WIDTH = 90


class ActivationExplorer(QWidget):
    """A list of the element-wise activations; the chosen one is plotted with its derivative (from autograd)
    over -5..5, with an editor per parameter and a note for students under the plot.

    Every parameter editor's object name is its parameter's name.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._list = QListWidget()
        self._list.addItems(ACTIVATIONS)
        self._list.setFixedWidth(self._list.sizeHintForColumn(0) + 32)
        self._plot = make_plot("", "f(x), f′(x)", "x")
        self._plot.setMinimumSize(480, 320)
        self._plot.setXRange(-5, 5, padding=0.02)
        self._plot.setMouseEnabled(x=False, y=False)
        for angle in (0, 90):
            self._plot.addItem(pg.InfiniteLine(0, angle, pen=pg.mkPen(AXIS_COLOUR, width=1)), ignoreBounds=True)
        self._function = self._plot.plot(pen=pg.mkPen(TRAIN_COLOUR, width=2.5), antialias=True, name="f(x)")
        self._derivative = self._plot.plot(
            pen=pg.mkPen(VAL_COLOUR, width=2.5, style=Qt.PenStyle.DashLine), antialias=True, name="f′(x), its slope"
        )
        x, _, sigmoid_slope = curve(OVERLAY)
        self._overlay = pg.PlotDataItem(
            x,
            sigmoid_slope,
            antialias=True,
            name="sigmoid′(x), for comparison",
            pen=pg.mkPen(OVERLAY_COLOUR, width=2, style=Qt.PenStyle.DotLine),
        )
        self._compare = QCheckBox("Compare with Sigmoid’s derivative")
        self._editors: dict[str, dict[str, QComboBox | FloatSpinBox]] = {}
        self._pages = QStackedWidget()
        for name in ACTIVATIONS:
            self._pages.addWidget(self._editor_page(name))
        self._note = QLabel()
        self._note.setWordWrap(True)
        self._note.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self._note.setStyleSheet(f"color: {TEXT_COLOUR};")
        self._lay_out()
        self._list.currentRowChanged.connect(self._show_row)
        self._compare.toggled.connect(self._sync_overlay)
        self._list.setCurrentRow(0)

    def select(self, name: str) -> None:
        """Show the activation called ``name``, one of :data:`~workbench.core.inspect.activation_functions.ACTIVATIONS`."""
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
        self._list.setCurrentRow(ACTIVATIONS.index(name))

    def current(self) -> str:
        """The name of the activation shown."""
        return ACTIVATIONS[self._list.currentRow()]

    def params(self) -> dict[str, Any]:
        """The shown activation's parameters as its editors hold them."""
        return {key: _value(editor) for key, editor in self._editors[self.current()].items()}

    def plotted(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The ``(x, y)`` of the ``function`` and ``derivative`` curves, read back from the curves, and of
        ``sigmoid_derivative`` while the comparison is shown."""
        items = {"function": self._function, "derivative": self._derivative}
        if self._overlay.scene() is not None:
            items["sigmoid_derivative"] = self._overlay
        return {key: item.getOriginalDataset() for key, item in items.items()}

    def note_text(self) -> str:
        """The text under the plot: the note on the shown activation and its measured largest slope."""
        return self._note.text()

    def _lay_out(self) -> None:
        side = QVBoxLayout()
        side.addWidget(self._plot, 1)
        controls = QHBoxLayout()
        controls.addWidget(self._pages)
        controls.addStretch(1)
        controls.addWidget(self._compare)
        side.addLayout(controls)
        side.addWidget(self._note)
        layout = QHBoxLayout(self)
        layout.addWidget(self._list)
        layout.addLayout(side, 1)

    def _editor_page(self, name: str) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        editors = {param.name: self._editor(param) for param in CATALOG[name].params}
        for key, editor in editors.items():
            form.addRow(key, editor)
        if not editors:
            form.addRow(QLabel("No parameters."))
        self._editors[name] = editors
        return page

    def _editor(self, param: Param) -> QComboBox | FloatSpinBox:
        editor: QComboBox | FloatSpinBox
        if param.choices:
            editor = QComboBox()
            editor.addItems(param.choices)
            editor.setCurrentText(param.default)
            editor.currentTextChanged.connect(self._redraw)
        else:
            editor = FloatSpinBox(param)
            editor.setValue(param.default)
            editor.valueChanged.connect(self._redraw)
        editor.setMinimumWidth(EDITOR_WIDTH)
        editor.setObjectName(param.name)
        editor.setToolTip(param.help)
        return editor

    def _show_row(self, row: int) -> None:
        self._pages.setCurrentIndex(row)
        self._compare.setEnabled(self.current() != OVERLAY)
        self._sync_overlay()
        self._redraw()

    def _sync_overlay(self) -> None:
        shown = self._compare.isChecked() and self.current() != OVERLAY
        if shown and self._overlay.scene() is None:
            self._plot.addItem(self._overlay)
        elif not shown and self._overlay.scene() is not None:
            self._plot.removeItem(self._overlay)

    def _redraw(self) -> None:
        name, params = self.current(), self.params()
        x, y, slope = curve(name, params)
        self._function.setData(x, y)
        self._derivative.setData(x, slope, connect=_unbroken(slope))
        self._plot.getPlotItem().setTitle(f"{name} and its derivative", color=TEXT_COLOUR, size="11pt")
        self._note.setText(f"{NOTES[name]}\n\n{_largest_slope(measure(x, y, slope))}")


def _largest_slope(numbers: dict[str, float]) -> str:
    start, end = numbers["max_derivative_from"], numbers["max_derivative_to"]
    where = f"at x = {start:.2f}" if start == end else f"for every x from {start:.2f} to {end:.2f}"
    return f"Largest slope on this plot: {numbers['max_derivative']:.3f} {where}."


def _unbroken(slope: np.ndarray) -> np.ndarray:
    """Which points to join to the next: none across a jump, so ReLU's step does not look like a steep ramp."""
    return np.append(np.abs(np.diff(slope)) < JUMP, True).astype(np.int32)


def _value(editor: QComboBox | FloatSpinBox) -> Any:
    return editor.currentText() if isinstance(editor, QComboBox) else editor.value()
