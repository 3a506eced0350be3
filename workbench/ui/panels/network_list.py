"""The network list: the architecture as a Qt list model with undoable edits, and its view.

:class:`NetworkModel` owns the :class:`Architecture` being built and its validation report.
Every edit, whether a method call or a drop, is pushed onto a ``QUndoStack`` as a command;
the commands change the architecture, revalidate it and emit ``changed``.
:class:`NetworkView` shows one row per layer and turns drags, drops and the Delete key into
those edits.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractListModel, QMimeData, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDrag,
    QDropEvent,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QUndoCommand,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)

from workbench.core.architecture import Architecture, Layer, LayerReport, ValidationReport, format_shape, validate
from workbench.core.layers import CATALOG

LAYER_MIME = "application/x-workbench-layer"
ROW_MIME = "application/x-workbench-row"

STATE_ROLE = Qt.ItemDataRole.UserRole + 1
"""Data role of a row's state: ``"error"``, ``"warning"`` or None."""
COLUMNS_ROLE = Qt.ItemDataRole.UserRole + 2
"""Data role of a row's four column texts: number, layer, shapes, parameters."""

_SIZE_PARAMS = ("out_features", "out_channels", "kernel_size", "output_size", "p")
_UNSET = object()


@dataclass(frozen=True)
class Tone:
    """Colours that mark a problem; text and background are chosen together so any theme reads them."""

    background: QColor
    text: QColor
    mark: QColor


TONES = {
    "error": Tone(QColor("#fde0dd"), QColor("#8e1b14"), QColor("#d93025")),
    "warning": Tone(QColor("#fff1cc"), QColor("#6b4700"), QColor("#e8a200")),
}


def tone_style(tone: str) -> str:
    """The style sheet of a message in ``tone`` ("error", "warning"): its own background and text colours, so it
    reads the same under a light or a dark system palette."""
    colours = TONES[tone]
    return (
        f"background: {colours.background.name()}; color: {colours.text.name()}; "
        f"border-left: 4px solid {colours.mark.name()}; padding: 4px 6px;"
    )


def layer_label(layer: Layer) -> str:
    """The layer type with its main sizes, e.g. ``Linear(120)``, ``Conv2d(16, 3×3)``, ``ReLU``."""
    if layer.type not in CATALOG:
        return layer.type
    values = layer.resolved_params()
    sizes = [
        f"{values[name]}×{values[name]}" if name == "kernel_size" else f"{values[name]}"
        for name in _SIZE_PARAMS
        if name in values
    ]
    return f"{layer.type}({', '.join(sizes)})" if sizes else layer.type


def _shape_text(row: LayerReport) -> str:
    if row.input_shape is None:
        return "?"
    output = format_shape(row.output_shape) if row.output_shape is not None else "?"
    return f"{format_shape(row.input_shape)} → {output}"


def _parameters_text(row: LayerReport) -> str:
    return f"{row.parameters:,}" if row.output_shape is not None else "?"


class NetworkModel(QAbstractListModel):
    """The network being built, one row per layer: the single source of truth of the builder.

    Edits (``insert_layer``, ``remove_layer``, ``move_layer``, ``set_param``, ``load`` and
    drops) go through ``undo_stack``; while locked, the user's edits and drops are refused.
    Once :meth:`set_input` has given the dataset's input shape and class count, every network
    shown here uses them, whatever a loaded file said.
    """

    changed = Signal()

    def __init__(self, undo_stack: QUndoStack, parent=None):
        super().__init__(parent)
        self._undo_stack = undo_stack
        self._architecture = Architecture("untitled", (1, 28, 28), 10, [])
        self._input: tuple[tuple[int, int, int], int] | None = None
        self._loss = "cross-entropy"
        self._report = validate(self._architecture, self._loss)
        self._locked = False

    def architecture(self) -> Architecture:
        """A deep copy of the network."""
        return self._architecture.copy()

    def report(self) -> ValidationReport:
        """The validation of the network, recomputed after every change."""
        return self._report

    def layer(self, row: int) -> Layer:
        """A copy of the layer at ``row``."""
        return copy.deepcopy(self._architecture.layers[row])

    def set_locked(self, locked: bool) -> None:
        """Refuse (True) or accept (False) the user's edits and drops."""
        self._locked = locked

    def insert_layer(self, row: int, type_name: str) -> bool:
        """Insert a layer of a catalog type, with its defaults, before ``row``; False if refused."""
        if self._locked or type_name not in CATALOG or not 0 <= row <= self.rowCount():
            return False
        self._undo_stack.push(_InsertLayer(self, row, Layer(type_name)))
        return True

    def remove_layer(self, row: int) -> bool:
        """Remove the layer at ``row``; False if refused."""
        if self._locked or not 0 <= row < self.rowCount():
            return False
        self._undo_stack.push(_RemoveLayer(self, row))
        return True

    def move_layer(self, source: int, destination: int) -> bool:
        """Move the layer at ``source`` so that it ends up at row ``destination``; False if refused."""
        count = self.rowCount()
        if self._locked or source == destination or not (0 <= source < count and 0 <= destination < count):
            return False
        self._undo_stack.push(_MoveLayer(self, source, destination))
        return True

    def set_param(self, row: int, name: str, value: Any) -> bool:
        """Set one parameter of the layer at ``row``; False if refused or unchanged."""
        if self._locked or not 0 <= row < self.rowCount():
            return False
        if self._architecture.layers[row].resolved_params().get(name, _UNSET) == value:
            return False
        self._undo_stack.push(_SetParam(self, row, name, value))
        return True

    def load(self, architecture: Architecture) -> None:
        """Replace the whole network, as one undoable step (also while locked: the caller decides)."""
        self._undo_stack.push(_LoadArchitecture(self, architecture))

    def set_input(self, input_shape: tuple[int, int, int], num_classes: int) -> None:
        """Validate against a new dataset's input shape and class count; not an undoable edit."""
        channels, height, width = input_shape
        self._input = ((channels, height, width), num_classes)
        self._use_dataset_input()
        self._revalidate()

    def set_loss(self, loss: str) -> None:
        """The loss the network will be trained with: its warnings follow it (not an undoable edit)."""
        if loss != self._loss:
            self._loss = loss
            self._revalidate()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._architecture.layers)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._report.layers[index.row()]
        state = "error" if row.error else "warning" if row.warning else None
        if role == STATE_ROLE:
            return state
        if role == COLUMNS_ROLE:
            return self._columns(index.row(), row)
        if role == Qt.ItemDataRole.DisplayRole:
            number, label, shapes, parameters = self._columns(index.row(), row)
            return f"{number}  {label}  {shapes}  {parameters} params"
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.error or row.warning or self._description(index.row(), row)
        if role == Qt.ItemDataRole.BackgroundRole and state:
            return TONES[state].background
        if role == Qt.ItemDataRole.ForegroundRole and state:
            return TONES[state].text
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.ItemIsDropEnabled
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction | Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME, ROW_MIME]

    def mimeData(self, indexes) -> QMimeData:
        data = QMimeData()
        data.setData(ROW_MIME, str(indexes[0].row()).encode())
        return data

    def canDropMimeData(
        self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        return not self._locked and (data.hasFormat(LAYER_MIME) or data.hasFormat(ROW_MIME))

    def dropMimeData(
        self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        """Insert a dropped palette layer, or move a dragged row, before ``row`` (-1: at the end)."""
        target = row if row >= 0 else self.rowCount()
        if data.hasFormat(LAYER_MIME):
            return self.insert_layer(target, bytes(data.data(LAYER_MIME).data()).decode("utf-8"))
        if data.hasFormat(ROW_MIME):
            source = int(bytes(data.data(ROW_MIME).data()).decode("ascii"))
            return self.move_layer(source, target if target <= source else target - 1)
        return False

    def _columns(self, index: int, row: LayerReport) -> tuple[str, str, str, str]:
        return str(index + 1), layer_label(self._architecture.layers[index]), _shape_text(row), _parameters_text(row)

    def _description(self, index: int, row: LayerReport) -> str:
        if row.input_shape is None:
            return "Shapes unknown: fix the layer in red above first."
        return f"{layer_label(self._architecture.layers[index])}: {_shape_text(row)}, {row.parameters:,} parameters"

    def _insert(self, row: int, layer: Layer) -> None:
        self.beginInsertRows(QModelIndex(), row, row)
        self._architecture.layers.insert(row, copy.deepcopy(layer))
        self.endInsertRows()
        self._revalidate()

    def _remove(self, row: int) -> Layer:
        self.beginRemoveRows(QModelIndex(), row, row)
        layer = self._architecture.layers.pop(row)
        self.endRemoveRows()
        self._revalidate()
        return layer

    def _move(self, source: int, destination: int) -> None:
        # Qt counts the destination before the source row is taken out.
        self.beginMoveRows(
            QModelIndex(), source, source, QModelIndex(), destination + 1 if destination > source else destination
        )
        layers = self._architecture.layers
        layers.insert(destination, layers.pop(source))
        self.endMoveRows()
        self._revalidate()

    def _set_param(self, row: int, name: str, value: Any) -> None:
        params = self._architecture.layers[row].params
        if value is _UNSET:
            params.pop(name, None)
        else:
            params[name] = value
        self._revalidate()

    def _replace(self, architecture: Architecture) -> None:
        self.beginResetModel()
        self._architecture = architecture.copy()
        self._use_dataset_input()
        self.endResetModel()
        self._revalidate()

    def _use_dataset_input(self) -> None:
        if self._input is not None:
            self._architecture.input_shape, self._architecture.num_classes = self._input

    def _revalidate(self) -> None:
        self._report = validate(self._architecture, self._loss)
        if self.rowCount():
            self.dataChanged.emit(self.index(0), self.index(self.rowCount() - 1))
        self.changed.emit()


class _InsertLayer(QUndoCommand):
    def __init__(self, model: NetworkModel, row: int, layer: Layer):
        super().__init__(f"Add {layer.type}")
        self._model, self._row, self._layer = model, row, layer

    def redo(self) -> None:
        self._model._insert(self._row, self._layer)

    def undo(self) -> None:
        self._model._remove(self._row)


class _RemoveLayer(QUndoCommand):
    def __init__(self, model: NetworkModel, row: int):
        super().__init__(f"Remove {model.layer(row).type}")
        self._model, self._row = model, row
        self._layer: Layer | None = None

    def redo(self) -> None:
        self._layer = self._model._remove(self._row)

    def undo(self) -> None:
        assert self._layer is not None, "a command is undone only after it was done"
        self._model._insert(self._row, self._layer)


class _MoveLayer(QUndoCommand):
    def __init__(self, model: NetworkModel, source: int, destination: int):
        super().__init__(f"Move {model.layer(source).type}")
        self._model, self._source, self._destination = model, source, destination

    def redo(self) -> None:
        self._model._move(self._source, self._destination)

    def undo(self) -> None:
        self._model._move(self._destination, self._source)


class _SetParam(QUndoCommand):
    """Consecutive edits of the same field (spin box steps) merge into one undo step."""

    def __init__(self, model: NetworkModel, row: int, name: str, value: Any):
        layer = model.layer(row)
        super().__init__(f"Set {name} of {layer.type}")
        self._model, self._row, self._name = model, row, name
        self._old = layer.params.get(name, _UNSET)
        self._new = value

    def id(self) -> int:
        return 1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, _SetParam) or (other._row, other._name) != (self._row, self._name):
            return False
        self._new = other._new
        self.setObsolete(self._new == self._old)
        return True

    def redo(self) -> None:
        self._model._set_param(self._row, self._name, self._new)

    def undo(self) -> None:
        self._model._set_param(self._row, self._name, self._old)


class _LoadArchitecture(QUndoCommand):
    def __init__(self, model: NetworkModel, architecture: Architecture):
        super().__init__(f"Load {architecture.name}")
        self._model = model
        self._old, self._new = model.architecture(), architecture.copy()

    def redo(self) -> None:
        self._model._replace(self._new)

    def undo(self) -> None:
        self._model._replace(self._old)


class LayerRowDelegate(QStyledItemDelegate):
    """Paints a layer row as aligned columns (number, layer, shapes, parameters) with a bar marking problems."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(160, option.fontMetrics.height() + 10)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        item = QStyleOptionViewItem(option)
        self.initStyleOption(item, index)
        item.text = ""
        style = item.widget.style() if item.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, item, painter, item.widget)
        tone = TONES.get(index.data(STATE_ROLE))
        painter.save()
        if tone:
            painter.fillRect(QRect(item.rect.left(), item.rect.top() + 1, 4, item.rect.height() - 2), tone.mark)
        painter.setPen(self._text_colour(item, tone))
        self._draw_columns(painter, item, index.data(COLUMNS_ROLE))
        painter.restore()

    @staticmethod
    def _text_colour(item: QStyleOptionViewItem, tone: Tone | None) -> QColor:
        group = (
            QPalette.ColorGroup.Normal if item.state & QStyle.StateFlag.State_Enabled else QPalette.ColorGroup.Disabled
        )
        if item.state & QStyle.StateFlag.State_Selected:
            return item.palette.color(group, QPalette.ColorRole.HighlightedText)
        if tone and group == QPalette.ColorGroup.Normal:
            return tone.text
        return item.palette.color(group, QPalette.ColorRole.Text)

    @staticmethod
    def _draw_columns(painter: QPainter, item: QStyleOptionViewItem, columns: tuple[str, str, str, str]) -> None:
        number, label, shapes, parameters = columns
        metrics = item.fontMetrics
        gap = metrics.horizontalAdvance("  ")
        rect = item.rect.adjusted(8, 0, -6, 0)
        # Measured widths get a pixel or two of slack: elidedText rounds differently and would cut "4,640".
        number_width = metrics.horizontalAdvance("00") + 2
        label_width = int((rect.width() - number_width - gap) * 0.4)
        parameters_width = metrics.horizontalAdvance(parameters) + 2
        shapes_width = rect.width() - number_width - label_width - parameters_width - 3 * gap
        if metrics.horizontalAdvance(shapes) > shapes_width and "→" in shapes:
            shapes = "→" + shapes.split("→", 1)[1]
        x = rect.left()
        cells = (
            (number, number_width, Qt.AlignmentFlag.AlignRight),
            (label, label_width, Qt.AlignmentFlag.AlignLeft),
            (shapes, shapes_width, Qt.AlignmentFlag.AlignLeft),
            (parameters, parameters_width, Qt.AlignmentFlag.AlignRight),
        )
        for text, width, alignment in cells:
            cell = QRect(x, rect.top(), width, rect.height())
            painter.drawText(
                cell,
                alignment | Qt.AlignmentFlag.AlignVCenter,
                metrics.elidedText(text, Qt.TextElideMode.ElideRight, width),
            )
            x += width + gap


class NetworkView(QListView):
    """The layers as rows: drop palette layers between rows, drag rows to reorder, Delete removes one."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setItemDelegate(LayerRowDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setDropIndicatorShown(True)
        self.setDragDropOverwriteMode(False)
        self.setUniformItemSizes(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        selected = self.selectedIndexes()
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and selected:
            row = selected[0].row()
            model = self.model()
            if isinstance(model, NetworkModel) and model.remove_layer(row):
                self.setCurrentIndex(model.index(min(row, model.rowCount() - 1)))
            return
        super().keyPressEvent(event)

    def startDrag(self, supportedActions: Qt.DropAction) -> None:
        # The drop moves the row; Qt's own startDrag would afterwards also remove the "moved-out" source row.
        selected = self.selectedIndexes()
        if selected:
            drag = QDrag(self)
            drag.setMimeData(self.model().mimeData(selected))
            drag.exec(Qt.DropAction.MoveAction)

    def dropEvent(self, event: QDropEvent) -> None:
        # QListView's own handler moves rows of a drag from this view with moveRows; the model's
        # dropMimeData already handles both drops, through the undo stack.
        QAbstractItemView.dropEvent(self, event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                self.viewport().rect().adjusted(12, 0, -12, 0),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                "Drag layers here from the palette above.",
            )
