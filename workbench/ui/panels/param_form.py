"""The parameter form: the selected layer's parameters as editors built from the catalog."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.architecture import Layer
from workbench.core.blocks import BLOCK_HELP, BLOCK_PARAMS, PARALLEL
from workbench.core.layers import CATALOG, Param

_NONE_TEXT = {"stride": "same as kernel"}


class FloatSpinBox(QDoubleSpinBox):
    """A double spin box that writes numbers the short way (0.5, 1e-05), so tiny values like eps stay readable."""

    def __init__(self, param: Param, parent: QWidget | None = None):
        super().__init__(parent)
        minimum, maximum = _bounds(param)
        smallest = minimum if minimum > 0 else 1e-3
        self.setDecimals(max(3, math.ceil(-math.log10(smallest)) + 1))
        self.setRange(minimum, maximum)
        self.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)

    def textFromValue(self, value: float) -> str:
        return self.locale().toString(value, "g", 6)

    def valueFromText(self, text: str) -> float:
        return self.locale().toDouble(text)[0]

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        value, ok = self.locale().toDouble(text)
        fits = ok and self.minimum() <= value <= self.maximum()
        return (QValidator.State.Acceptable if fits else QValidator.State.Intermediate), text, pos


class ParamForm(QWidget):
    """Editors for the parameters of one layer, built from the catalog (a block's ``shortcut`` or ``merge``).

    :meth:`show_layer` fills them without emitting anything; each committed edit emits
    ``paramEdited(name, value)``. Every editor's object name is its parameter's name. For a Parallel block the
    form also offers "Add a branch" (``branchAddRequested``).
    """

    paramEdited = Signal(str, object)
    branchAddRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._title = QLabel()
        font = self._title.font()
        font.setBold(True)
        self._title.setFont(font)
        self._help = QLabel()
        self._help.setWordWrap(True)
        self._fields = QFormLayout()
        self._fields.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._note = QLabel()
        self._add_branch = QPushButton("Add a branch")
        self._add_branch.setObjectName("addBranch")
        self._add_branch.setToolTip("Add an empty branch after the last one, then drag layers into it.")
        self._add_branch.clicked.connect(self.branchAddRequested)
        layout = QVBoxLayout(self)
        layout.addWidget(self._title)
        layout.addWidget(self._help)
        layout.addLayout(self._fields)
        layout.addWidget(self._add_branch)
        layout.addWidget(self._note)
        layout.addStretch(1)
        self._setters: dict[str, Callable[[Any], None]] = {}
        self._shown: tuple[str, str] | None = None
        self._rebuild(None, "")

    def show_layer(self, layer: Layer | None, number: str | int = "") -> None:
        """Show ``layer`` (numbered ``number`` in the network: ``"3"``, ``"5.2"``; an ``int`` is a top-level row
        counting from 0), or a hint when None."""
        number = str(number + 1) if isinstance(number, int) else number
        shown = None if layer is None else (number, layer.type)
        if shown != self._shown:
            self._rebuild(layer, number)
            self._shown = shown
        if layer is not None and (layer.type in CATALOG or layer.is_block):
            values = layer.resolved_params()
            for name, set_value in self._setters.items():
                set_value(values[name])

    def show_branch(self, number: str) -> None:
        """Show what a Parallel block's branch (``"6.b2"``) is; it has no parameters."""
        block, _, branch = number.rpartition(".b")
        self._rebuild(None, "")
        self._shown = (number, "branch")
        self._title.setText(f"Branch {branch} of block {block}")
        self._help.setText(
            "Every branch gets the block's input; the block joins their outputs. Drag layers into it; Delete "
            "removes the branch and its layers."
        )

    def _rebuild(self, layer: Layer | None, number: str) -> None:
        while self._fields.rowCount():
            self._fields.removeRow(0)
        self._setters.clear()
        layer_type = CATALOG.get(layer.type) if layer is not None else None
        params: tuple[Param, ...] = layer_type.params if layer_type else ()
        if layer is None:
            self._title.setText("Parameters")
            self._help.setText("Select a layer in the network to edit its parameters.")
        elif layer.is_block:
            self._title.setText(f"Block {number}: {layer.type}")
            self._help.setText(BLOCK_HELP[layer.type])
            params = (BLOCK_PARAMS[layer.type],)
        else:
            self._title.setText(f"Layer {number}: {layer.type}")
            self._help.setText(layer_type.help if layer_type else "Not a layer type of the catalog.")
        self._add_branch.setVisible(layer is not None and layer.type == PARALLEL)
        for param in params:
            editor, set_value = self._editor(param)
            editor.setObjectName(param.name)
            editor.setToolTip(param.help)
            label = QLabel(param.name)
            label.setToolTip(param.help)
            self._fields.addRow(label, editor)
            self._setters[param.name] = partial(_set_quietly, editor, set_value)
        self._note.setText("No parameters." if layer is not None and not params else "")
        self._note.setVisible(layer is not None and not params)

    def _editor(self, param: Param) -> tuple[QWidget, Callable[[Any], None]]:
        emit = partial(self.paramEdited.emit, param.name)
        if param.kind is bool:
            box = QCheckBox()
            box.toggled.connect(emit)
            return box, box.setChecked
        if param.kind is str:
            combo = QComboBox()
            combo.addItems(list(param.choices))
            combo.currentTextChanged.connect(emit)
            return combo, combo.setCurrentText
        if param.kind is float:
            float_spin = FloatSpinBox(param)
            float_spin.setKeyboardTracking(False)
            float_spin.valueChanged.connect(emit)
            return float_spin, float_spin.setValue
        minimum, maximum = _bounds(param)
        spin = QSpinBox()
        spin.setKeyboardTracking(False)
        spin.setRange(int(minimum), int(maximum))
        if not param.optional:
            spin.valueChanged.connect(emit)
            return spin, spin.setValue
        spin.setMinimum(int(minimum) - 1)
        spin.setSpecialValueText(_NONE_TEXT.get(param.name, "automatic"))
        spin.valueChanged.connect(lambda value: emit(None if value == spin.minimum() else value))
        return spin, lambda value: spin.setValue(spin.minimum() if value is None else value)


def _bounds(param: Param) -> tuple[float, float]:
    """``(minimum, maximum)`` of the number ``param``: an editor needs both, and every number of the catalog has them."""
    if param.minimum is None or param.maximum is None:
        raise ValueError(f"Parameter {param.name!r} needs a minimum and a maximum to be edited.")
    return param.minimum, param.maximum


def _set_quietly(editor: QWidget, set_value: Callable[[Any], None], value: Any) -> None:
    with QSignalBlocker(editor):
        set_value(value)
