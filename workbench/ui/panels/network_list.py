"""The network list: the architecture as a Qt tree model with undoable edits, and its view.

:class:`NetworkModel` owns the :class:`Architecture` being built and its validation report. A block is a row
whose children are its layers (a Parallel block's children are its branches, theirs the branches' layers).
Every edit, whether a method call or a drop, is pushed onto a ``QUndoStack`` as a command holding the network
before and after (:mod:`workbench.core.network_edits` makes the new one); the commands show a network,
revalidate it and emit ``changed``. :class:`NetworkView` shows the rows indented under their blocks and turns
drags, drops and the Delete key into those edits; it keeps the blocks a user collapsed collapsed.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
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
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeView,
    QWidget,
)

from workbench.core import network_edits
from workbench.core.architecture import Architecture, Layer, LayerReport, ValidationReport, format_shape, validate
from workbench.core.blocks import BLOCK_TYPES, PARALLEL, RESIDUAL
from workbench.core.layers import CATALOG
from workbench.core.network_edits import EditError, Slot, new_layer

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
    """The layer type with its main sizes, e.g. ``Linear(120)``, ``Conv2d(16, 3×3)``, ``ReLU``; a block with how
    it joins, e.g. ``Residual (identity)``, ``Parallel (concat)``."""
    if layer.is_block:
        return f"{layer.type} ({next(iter(layer.resolved_params().values()))})"
    if layer.type not in CATALOG:
        return layer.type
    values = layer.resolved_params()
    sizes = [
        f"{values[name]}×{values[name]}" if name == "kernel_size" else f"{values[name]}"
        for name in _SIZE_PARAMS
        if name in values
    ]
    return f"{layer.type}({', '.join(sizes)})" if sizes else layer.type


def _shape_text(row: LayerReport | None) -> str:
    if row is None or row.input_shape is None:
        return "?"
    output = format_shape(row.output_shape) if row.output_shape is not None else "?"
    return f"{format_shape(row.input_shape)} → {output}"


def _parameters_text(row: LayerReport | None) -> str:
    return f"{row.parameters:,}" if row is not None and row.output_shape is not None else "?"


@dataclass
class _Node:
    """One row of the tree: a layer (a block is one too) or a Parallel block's branch.

    ``number`` is the layer's number, or ``"6.b2"`` for branch 2 of block 6; ``container`` is the list the layer
    is in, or for a branch the list it is (``"6.b2."``).
    """

    number: str
    container: str
    layer: Layer | None
    report: LayerReport | None
    parent: int
    row: int
    children: list[int] = field(default_factory=list)

    @property
    def is_branch(self) -> bool:
        return self.layer is None

    @property
    def holds_layers(self) -> bool:
        """Whether layers may be dropped on it: a block or a branch."""
        return self.layer is None or self.layer.is_block


class NetworkModel(QAbstractItemModel):
    """The network being built as a tree: one row per layer, a block's layers (a Parallel's branches, and their
    layers) as its children. The single source of truth of the builder.

    Layers are addressed by their numbers (``"3"``, ``"5.2"``, ``"6.b2.1"``), places between them by
    :class:`~workbench.core.network_edits.Slot`; the methods also take a top-level row (an ``int``, from 0).
    Every edit (``insert_layer``, ``remove_layer``, ``move_layer``, ``move_to``, ``set_param``, ``add_branch``,
    ``load`` and drops) is one command on ``undo_stack`` holding the network before and after; each names the row
    to select afterwards (:meth:`focus`). While locked, the user's edits and drops are refused. Once
    :meth:`set_input` has given the dataset's input shape and class count, every network shown here uses them,
    whatever a loaded file said.
    """

    changed = Signal()

    def __init__(self, undo_stack: QUndoStack, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._undo_stack = undo_stack
        self._architecture = Architecture("untitled", (1, 28, 28), 10, [])
        self._input: tuple[tuple[int, int, int], int] | None = None
        self._loss = "cross-entropy"
        self._report = validate(self._architecture, self._loss)
        self._locked = False
        self._focus = ""
        self._nodes: list[_Node] = []
        self._top: list[int] = []
        self._numbered: dict[str, int] = {}
        self._widest_count = "0"
        self._build_nodes()

    def architecture(self) -> Architecture:
        """A deep copy of the network."""
        return self._architecture.copy()

    def report(self) -> ValidationReport:
        """The validation of the network, recomputed after every change."""
        return self._report

    def layer(self, where: int | str) -> Layer:
        """A copy of the layer at top-level row ``where`` or numbered ``where``."""
        return copy.deepcopy(network_edits.layer_at(self._architecture, _number(where)))

    def widest_count(self) -> str:
        """The widest parameter count any row shows ("33,024"), for the rows to give their counts one width."""
        return self._widest_count

    def focus(self) -> str:
        """The number of the row the last edit, undo or redo touched (``""``: none), for the view to select."""
        return self._focus

    def set_locked(self, locked: bool) -> None:
        """Refuse (True) or accept (False) the user's edits and drops."""
        self._locked = locked

    def insert_layer(self, where: int | Slot, type_name: str) -> bool:
        """Insert a layer or block of ``type_name``, with its defaults, at ``where`` (a top-level row or a slot);
        False if refused."""
        if self._locked or not (type_name in CATALOG or type_name in BLOCK_TYPES):
            return False
        slot = where if isinstance(where, Slot) else Slot("", where)
        title = f"Add {type_name}"
        return self._try(
            title, lambda: network_edits.insert(self._architecture, slot, new_layer(type_name)), slot.number
        )

    def insert_branch(self, block: str, branch: int, type_name: str) -> bool:
        """A new branch holding a new ``type_name`` layer before branch ``branch`` (from 0) of Parallel ``block``."""
        if self._locked or not (type_name in CATALOG or type_name in BLOCK_TYPES):
            return False
        return self._try(
            f"Add a branch to block {block}",
            lambda: network_edits.insert_branch(self._architecture, block, branch, [new_layer(type_name)]),
            f"{block}.b{branch + 1}.1",
        )

    def add_branch(self, block: str) -> bool:
        """An empty branch after the last of Parallel ``block``; False if refused."""
        if self._locked:
            return False
        found = self._block(block)
        count = len(found.branches) if found is not None else 0
        return self._try(
            f"Add a branch to block {block}",
            lambda: network_edits.insert_branch(self._architecture, block, count, []),
            f"{block}.b{count + 1}",
        )

    def remove_layer(self, where: int | str) -> bool:
        """Remove the layer (a block with all it holds) at top-level row ``where`` or numbered ``where``, or the
        branch ``where`` names (``"6.b2"``); False if refused."""
        if self._locked:
            return False
        number = _number(where)
        node = self._node(number)
        if node is None:
            return False
        if node.is_branch:
            block, _, branch = number.rpartition(".b")
            return self._try(
                f"Remove branch {branch} of block {block}",
                lambda: network_edits.remove_branch(self._architecture, block, int(branch) - 1),
                block,
                number,
            )
        layer = network_edits.layer_at(self._architecture, number)

        def removed() -> Architecture:
            return network_edits.remove(self._architecture, number)[0]

        return self._try(f"Remove {layer.type}", removed, lambda after: _nearest(after, Slot.of(number)), number)

    def move_layer(self, source: int, destination: int) -> bool:
        """Move the top-level layer at row ``source`` so that it ends up at row ``destination``; False if refused."""
        count = len(self._architecture.layers)
        if source == destination or not (0 <= source < count and 0 <= destination < count):
            return False
        return self.move_to(str(source + 1), Slot("", destination + 1 if destination > source else destination))

    def move_to(self, number: str, destination: Slot) -> bool:
        """Move layer ``number`` to ``destination`` (a slot counted before it is taken out), into or out of blocks;
        False if refused (a block into itself, a place that is not there) or if it would not move."""
        node = self._node(number)
        if self._locked or node is None or node.is_branch:
            return False
        source = Slot.of(number)
        if destination.container == source.container and destination.index in (source.index, source.index + 1):
            return False
        return self._push_move(number, lambda: network_edits.move(self._architecture, number, destination))

    def move_into_new_branch(self, number: str, block: str, branch: int) -> bool:
        """Move layer ``number`` alone into a new branch before branch ``branch`` of Parallel ``block``."""
        node = self._node(number)
        if self._locked or node is None or node.is_branch:
            return False
        return self._push_move(
            number, lambda: network_edits.move_into_new_branch(self._architecture, number, block, branch)
        )

    def _push_move(self, number: str, move: Callable[[], tuple[Architecture, str]]) -> bool:
        """Push ``move``'s network (the moved layer selected after it, ``number`` when undone); False if it
        addressed nothing that is there or would put a block into itself."""
        layer_type = network_edits.layer_at(self._architecture, number).type
        try:
            after, moved_to = move()
        except EditError:
            return False
        return self._push(f"Move {layer_type}", after, moved_to, number)

    def set_param(self, where: int | str, name: str, value: Any) -> bool:
        """Set one parameter of the layer at top-level row ``where`` or numbered ``where``; False if refused or
        unchanged. Consecutive edits of one field (spin box steps) are one undo step."""
        number = _number(where)
        node = self._node(number)
        if self._locked or node is None or node.layer is None:
            return False
        if node.layer.resolved_params().get(name, _UNSET) == value:
            return False
        after = network_edits.set_param(self._architecture, number, name, value)
        self._undo_stack.push(
            _Edit(self, f"Set {name} of {node.layer.type}", self._architecture, after, number, (number, name))
        )
        return True

    def load(self, architecture: Architecture) -> None:
        """Replace the whole network, as one undoable step (also while locked: the caller decides)."""
        self._undo_stack.push(_Edit(self, f"Load {architecture.name}", self._architecture, architecture.copy(), ""))

    def set_input(self, input_shape: tuple[int, int, int], num_classes: int) -> None:
        """Validate against a new dataset's input shape and class count; not an undoable edit."""
        channels, height, width = input_shape
        self._input = ((channels, height, width), num_classes)
        self._show(self._architecture, self._focus)

    def set_loss(self, loss: str) -> None:
        """The loss the network will be trained with: its warnings follow it (not an undoable edit)."""
        if loss != self._loss:
            self._loss = loss
            self._show(self._architecture, self._focus)

    def index_of(self, number: str) -> QModelIndex:
        """The index of the row numbered ``number`` (a layer's, or a branch's ``"6.b2"``); invalid if none."""
        node_id = self._numbered.get(number)
        if node_id is None:
            return QModelIndex()
        return self.createIndex(self._nodes[node_id].row, 0, node_id)

    def number_of(self, index: QModelIndex | QPersistentModelIndex) -> str:
        """The number of the row at ``index`` (``""`` for an invalid index)."""
        return self._nodes[index.internalId()].number if index.isValid() else ""

    def slot_after(self, index: QModelIndex | QPersistentModelIndex) -> Slot:
        """Where a layer added "after the selection" goes: after a layer, at the end of a branch, at the network's
        end when nothing is selected."""
        if not index.isValid():
            return Slot("", len(self._architecture.layers))
        node = self._nodes[index.internalId()]
        if node.is_branch:
            return Slot(node.container, len(node.children))
        return Slot(node.container, Slot.of(node.number).index + 1)

    def block_indexes(self) -> list[QModelIndex]:
        """The indexes of every row that holds others (blocks and branches), parents before children."""
        return [self.createIndex(node.row, 0, node_id) for node_id, node in enumerate(self._nodes) if node.children]

    def layer_of(self, index: QModelIndex | QPersistentModelIndex) -> Layer | None:
        """The layer object shown at ``index`` (None for a branch): the builder's views use it to tell a block
        across edits. Do not change it."""
        return self._nodes[index.internalId()].layer if index.isValid() else None

    def index(
        self, row: int, column: int = 0, parent: QModelIndex | QPersistentModelIndex = QModelIndex()
    ) -> QModelIndex:
        children = self._children(parent)
        if column != 0 or not 0 <= row < len(children):
            return QModelIndex()
        return self.createIndex(row, 0, children[row])

    def parent(self, index: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        parent_id = self._nodes[index.internalId()].parent
        if parent_id < 0:
            return QModelIndex()
        return self.createIndex(self._nodes[parent_id].row, 0, parent_id)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.column() > 0 else len(self._children(parent))

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 1

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        node = self._nodes[index.internalId()]
        row = node.report
        state = None if row is None else "error" if row.error else "warning" if row.warning else None
        if role == STATE_ROLE:
            return state
        if role == COLUMNS_ROLE:
            return self._columns(node)
        if role == Qt.ItemDataRole.DisplayRole:
            number, label, shapes, parameters = self._columns(node)
            return f"{number}  {label}  {shapes}  {parameters} params".strip()
        if role == Qt.ItemDataRole.ToolTipRole:
            return (row.error or row.warning if row else None) or self._description(node)
        if role == Qt.ItemDataRole.BackgroundRole and state:
            return TONES[state].background
        if role == Qt.ItemDataRole.ForegroundRole and state:
            return TONES[state].text
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.ItemIsDropEnabled
        node = self._nodes[index.internalId()]
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if not node.is_branch:
            flags |= Qt.ItemFlag.ItemIsDragEnabled
        if node.holds_layers:
            flags |= Qt.ItemFlag.ItemIsDropEnabled
        return flags

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction | Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME, ROW_MIME]

    def mimeData(self, indexes) -> QMimeData:
        data = QMimeData()
        data.setData(ROW_MIME, self.number_of(indexes[0]).encode("ascii"))
        return data

    def canDropMimeData(
        self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        return not self._locked and (data.hasFormat(LAYER_MIME) or data.hasFormat(ROW_MIME))

    def dropMimeData(
        self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        """Insert a dropped palette layer, or move a dragged row, before ``row`` of ``parent`` (-1: at its end).

        Dropped on a block or between its rows, it goes inside the block; on a branch, into the branch; between
        a Parallel block's branches, it becomes a new branch of its own.
        """
        node = self._nodes[parent.internalId()] if parent.isValid() else None
        target_row = row if row >= 0 else len(self._children(parent))
        new_branch = node is not None and node.layer is not None and node.layer.type == PARALLEL
        if data.hasFormat(LAYER_MIME):
            type_name = bytes(data.data(LAYER_MIME).data()).decode("utf-8")
            if new_branch and node is not None:
                return self.insert_branch(node.number, target_row, type_name)
            return self.insert_layer(Slot(self._container_of(node), target_row), type_name)
        if data.hasFormat(ROW_MIME):
            source = bytes(data.data(ROW_MIME).data()).decode("ascii")
            if new_branch and node is not None:
                return self.move_into_new_branch(source, node.number, target_row)
            return self.move_to(source, Slot(self._container_of(node), target_row))
        return False

    def _container_of(self, node: _Node | None) -> str:
        if node is None:
            return ""
        return node.container if node.is_branch else f"{node.number}."

    def _children(self, parent: QModelIndex | QPersistentModelIndex) -> list[int]:
        return self._nodes[parent.internalId()].children if parent.isValid() else self._top

    def _node(self, number: str) -> _Node | None:
        node_id = self._numbered.get(number)
        return None if node_id is None else self._nodes[node_id]

    def _block(self, number: str) -> Layer | None:
        node = self._node(number)
        return node.layer if node is not None and node.layer is not None and node.layer.type == PARALLEL else None

    def _columns(self, node: _Node) -> tuple[str, str, str, str]:
        if node.is_branch:
            branch = node.number.rpartition(".b")[2]
            count = len(node.children)
            return "", f"Branch {branch}", f"{count} layer{'' if count == 1 else 's'}", ""
        assert node.layer is not None, "a layer row has its layer"
        return node.number, layer_label(node.layer), _shape_text(node.report), _parameters_text(node.report)

    def _description(self, node: _Node) -> str:
        if node.is_branch:
            return "A branch of the Parallel block: drag layers into it; Delete removes it."
        if node.report is None or node.report.input_shape is None:
            return "Shapes unknown: fix the layer in red above first."
        assert node.layer is not None, "a layer row has its layer"
        return (
            f"{node.number} {layer_label(node.layer)}: {_shape_text(node.report)}, "
            f"{node.report.parameters:,} parameters"
        )

    def _try(
        self,
        title: str,
        edit: Callable[[], Architecture],
        focus: str | Callable[[Architecture], str],
        focus_before: str = "",
    ) -> bool:
        """Push ``edit``'s network as one step; False (nothing pushed) if it addressed nothing that is there.
        ``focus`` is the row to select after it, ``focus_before`` the one to select when it is undone."""
        try:
            after = edit()
        except EditError:
            return False
        return self._push(title, after, focus(after) if callable(focus) else focus, focus_before)

    def _push(self, title: str, after: Architecture, focus: str, focus_before: str = "") -> bool:
        self._undo_stack.push(_Edit(self, title, self._architecture, after, focus, focus_before=focus_before))
        return True

    def _show(self, architecture: Architecture, focus: str) -> None:
        """Show ``architecture`` (with the dataset's input), revalidated, and ask for ``focus`` to be selected."""
        if self._input is not None:
            input_shape, num_classes = self._input
            architecture = dataclasses.replace(architecture, input_shape=input_shape, num_classes=num_classes)
        self.beginResetModel()
        self._architecture = architecture
        self._report = validate(architecture, self._loss)
        self._focus = focus
        self._build_nodes()
        self.endResetModel()
        self.changed.emit()

    def _build_nodes(self) -> None:
        # asked for by every row's paint: measured once a network
        self._widest_count = max((_parameters_text(row) for row in self._report.rows), key=len, default="0")
        rows = {row.number: row for row in self._report.rows}
        self._nodes, self._numbered = [], {}
        self._top = self._add_nodes(self._architecture.layers, "", -1, rows)

    def _add_nodes(self, layers: list[Layer], container: str, parent: int, rows: dict[str, LayerReport]) -> list[int]:
        ids = []
        for position, layer in enumerate(layers):
            number = f"{container}{position + 1}"
            node_id = self._new_node(_Node(number, container, layer, rows.get(number), parent, position))
            ids.append(node_id)
            if layer.type == PARALLEL:
                branches = []
                for branch, branch_layers in enumerate(layer.branches):
                    name = f"{number}.b{branch + 1}"
                    branch_id = self._new_node(_Node(name, f"{name}.", None, None, node_id, branch))
                    self._nodes[branch_id].children = self._add_nodes(branch_layers, f"{name}.", branch_id, rows)
                    branches.append(branch_id)
                self._nodes[node_id].children = branches
            elif layer.type == RESIDUAL:
                self._nodes[node_id].children = self._add_nodes(layer.layers, f"{number}.", node_id, rows)
        return ids

    def _new_node(self, node: _Node) -> int:
        self._nodes.append(node)
        self._numbered[node.number] = len(self._nodes) - 1
        return len(self._nodes) - 1


def _number(where: int | str) -> str:
    return str(where + 1) if isinstance(where, int) else where


def _nearest(architecture: Architecture, slot: Slot) -> str:
    """The row to select once the layer at ``slot`` is gone: the one now there, else the one before, else the
    block or branch around it."""
    layers = network_edits.sequence_at(architecture, slot.container)
    if slot.index < len(layers):
        return slot.number
    if layers:
        return Slot(slot.container, len(layers) - 1).number
    return slot.container.removesuffix(".")


class _Edit(QUndoCommand):
    """One edit: the network before and after, and the row to select after each way.

    Consecutive edits with the same ``merge_key`` (one parameter of one layer) merge into one step.
    """

    def __init__(
        self,
        model: NetworkModel,
        title: str,
        before: Architecture,
        after: Architecture,
        focus: str,
        merge_key: tuple[str, str] | None = None,
        focus_before: str = "",
    ):
        super().__init__(title)
        self._model = model
        self._before, self._after = before, after
        self._focus_before, self._focus_after = focus_before or focus, focus
        self._merge_key = merge_key

    def id(self) -> int:
        return 1 if self._merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, _Edit) or other._merge_key != self._merge_key:
            return False
        self._after = other._after
        self.setObsolete(self._after == self._before)
        return True

    def redo(self) -> None:
        self._model._show(self._after, self._focus_after)

    def undo(self) -> None:
        self._model._show(self._before, self._focus_before)


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
        """Number and label from the row's own (indented) left edge; the output shape right-aligned against the
        parameter counts, whose column is as wide as the network's largest count, so that outputs and counts line
        up whatever the depth of the row. (The input shape is the row above's output; the tooltip has both.)"""
        number, label, shapes, parameters = columns
        metrics = item.fontMetrics
        gap = metrics.horizontalAdvance("  ")
        rect = item.rect.adjusted(6, 0, -6, 0)
        widget = item.widget
        full = widget.viewport().rect() if isinstance(widget, QAbstractItemView) else item.rect
        model = widget.model() if isinstance(widget, QAbstractItemView) else None
        widest = model.widest_count() if isinstance(model, NetworkModel) else "0,000,000"
        # Measured widths get a pixel or two of slack: elidedText rounds differently and would cut "4,640".
        number_width = max(metrics.horizontalAdvance("00"), metrics.horizontalAdvance(number)) + 2 if number else 0
        parameters_width = metrics.horizontalAdvance(widest) + 2
        right = full.right() - 6
        shapes_right = right - parameters_width - gap
        label_left = rect.left() + (number_width + gap if number else 0)
        if "→" in shapes:
            shapes = "→" + shapes.split("→", 1)[1]
        shapes_width = metrics.horizontalAdvance(shapes) + 2
        cells = (
            (number, rect.left(), number_width, Qt.AlignmentFlag.AlignLeft),
            (label, label_left, shapes_right - shapes_width - gap - label_left, Qt.AlignmentFlag.AlignLeft),
            (shapes, shapes_right - shapes_width, shapes_width, Qt.AlignmentFlag.AlignRight),
            (parameters, right - parameters_width, parameters_width, Qt.AlignmentFlag.AlignRight),
        )
        for text, left, width, alignment in cells:
            if not text or width <= 0:
                continue
            cell = QRect(left, rect.top(), width, rect.height())
            painter.drawText(
                cell,
                alignment | Qt.AlignmentFlag.AlignVCenter,
                metrics.elidedText(text, Qt.TextElideMode.ElideRight, width),
            )


class NetworkView(QTreeView):
    """The layers as rows, a block's layers indented under it: drop palette layers between rows or onto a block,
    drag rows to reorder or into and out of blocks, Delete removes the selected row. A block a user collapsed
    stays collapsed across edits, undo and redo (it is recognised by identity: edits share untouched layers)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setItemDelegate(LayerRowDelegate(self))
        self.setHeaderHidden(True)
        self.setIndentation(14)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setDropIndicatorShown(True)
        self.setDragDropOverwriteMode(False)
        self.setUniformRowHeights(True)
        self.setExpandsOnDoubleClick(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._collapsed: list[tuple[Layer, int]] = []
        self._collapsed_numbers: set[str] = set()
        self.collapsed.connect(partial(self._remember, True))
        self.expanded.connect(partial(self._remember, False))

    def setModel(self, model: QAbstractItemModel | None) -> None:
        super().setModel(model)
        if isinstance(model, NetworkModel):
            model.modelAboutToBeReset.connect(self._note_collapsed_numbers)
            model.modelReset.connect(self.restore_expansion)
        self.restore_expansion()

    def restore_expansion(self) -> None:
        """Expand every block and branch but those the user collapsed: recognised by identity (edits elsewhere
        share them), or, for the block an edit itself changed (its shortcut or merge), by its number."""
        model = self.model()
        if not isinstance(model, NetworkModel):
            return
        edited = model.focus()
        for index in model.block_indexes():
            key = self._key(index)
            collapsed = self._is_collapsed(key)
            if not collapsed and edited and model.number_of(index) == edited and edited in self._collapsed_numbers:
                collapsed = True
                if key is not None:
                    self._collapsed.append(key)
            self.setExpanded(index, not collapsed)
        self._collapsed_numbers = set()

    def _note_collapsed_numbers(self) -> None:
        model = self.model()
        if isinstance(model, NetworkModel):
            self._collapsed_numbers = {
                model.number_of(index) for index in model.block_indexes() if not self.isExpanded(index)
            }

    def keyPressEvent(self, event: QKeyEvent) -> None:
        current = self.currentIndex()
        model = self.model()
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and current.isValid():
            if isinstance(model, NetworkModel):
                model.remove_layer(model.number_of(current))
            return
        super().keyPressEvent(event)

    def startDrag(self, supportedActions: Qt.DropAction) -> None:
        # The drop moves the row; Qt's own startDrag would afterwards also remove the "moved-out" source row.
        selected = self.selectedIndexes()
        if selected and selected[0].flags() & Qt.ItemFlag.ItemIsDragEnabled:
            drag = QDrag(self)
            drag.setMimeData(self.model().mimeData(selected))
            drag.exec(Qt.DropAction.MoveAction)

    def dropEvent(self, event: QDropEvent) -> None:
        # QTreeView's own handler may move rows itself; the model's dropMimeData already handles both drops,
        # through the undo stack.
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

    def _key(self, index: QModelIndex) -> tuple[Layer, int] | None:
        """What names a block's row across edits: its layer (and -1), or a branch's block and branch (from 0)."""
        model = self.model()
        assert isinstance(model, NetworkModel), "the view shows a network"
        layer = model.layer_of(index)
        if layer is not None:
            return layer, -1
        block = model.layer_of(index.parent())
        return (block, index.row()) if block is not None else None

    def _is_collapsed(self, key: tuple[Layer, int] | None) -> bool:
        return key is not None and any(key[0] is layer and key[1] == part for layer, part in self._collapsed)

    def _remember(self, collapsed: bool, index: QModelIndex) -> None:
        key = self._key(index)
        if key is None:
            return
        self._collapsed = [(layer, part) for layer, part in self._collapsed if not (layer is key[0] and part == key[1])]
        if collapsed:
            self._collapsed.append(key)
