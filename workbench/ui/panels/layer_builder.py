"""The layer builder, the main window's left dock: palette, network list, totals and parameter form."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QMimeData, QObject, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QScrollArea,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.architecture import Architecture, ValidationReport
from workbench.core.blocks import BLOCK_HELP, BLOCK_TYPES
from workbench.core.layers import GROUPS, layers_in_group
from workbench.ui.panels.network_list import LAYER_MIME, NetworkModel, NetworkView, tone_style
from workbench.ui.panels.param_form import ParamForm

_LAYER_ROLE = Qt.ItemDataRole.UserRole
BLOCKS_GROUP = "Blocks"
"""The palette's group of blocks, after the catalog's groups."""


class LayerPalette(QTreeWidget):
    """The catalog's layers under their groups, and the blocks ("Residual block", "Parallel block") under
    "Blocks", each with its help as tooltip.

    Drag a layer onto the network (mime type ``application/x-workbench-layer``, the type name
    in UTF-8), or double-click it to emit ``layerChosen(type_name)``.
    """

    layerChosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        for group in GROUPS:
            header = self._header(group)
            for layer_type in layers_in_group(group):
                self._entry(header, layer_type.name, layer_type.name, layer_type.help)
        blocks = self._header(BLOCKS_GROUP)
        for block in BLOCK_TYPES:
            self._entry(blocks, f"{block} block", block, f"{BLOCK_HELP[block]} Drag layers into it once it is in.")
        self.expandAll()
        self.itemDoubleClicked.connect(self._choose)

    def _header(self, group: str) -> QTreeWidgetItem:
        header = QTreeWidgetItem(self, [group])
        header.setFlags(Qt.ItemFlag.ItemIsEnabled)
        font = header.font(0)
        font.setBold(True)
        header.setFont(0, font)
        return header

    @staticmethod
    def _entry(header: QTreeWidgetItem, title: str, type_name: str, help_text: str) -> None:
        item = QTreeWidgetItem(header, [title])
        item.setData(0, _LAYER_ROLE, type_name)
        item.setToolTip(0, help_text)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME]

    def mimeData(self, items) -> QMimeData:
        data = QMimeData()
        data.setData(LAYER_MIME, items[0].data(0, _LAYER_ROLE).encode("utf-8"))
        return data

    def startDrag(self, supportedActions: Qt.DropAction) -> None:
        # Only copy: a move would make Qt remove the entry from the palette after the drop.
        super().startDrag(Qt.DropAction.CopyAction)

    def _choose(self, item: QTreeWidgetItem) -> None:
        name = item.data(0, _LAYER_ROLE)
        if name:
            self.layerChosen.emit(name)


class LayerBuilder(QWidget):
    """Build a network: drag layers from the palette into the list, reorder, delete, edit parameters.

    The builder holds the network (see :meth:`architecture`) and its validation (:meth:`report`);
    ``architectureChanged`` fires after every edit, undo, redo, :meth:`set_architecture` and
    :meth:`set_input`. Every edit goes through the public ``undo_stack``.

    Undo and redo: the main window makes its Edit menu's actions with
    ``undo_stack.createUndoAction``/``createRedoAction`` and gives them the Undo/Redo shortcuts.
    The builder registers no shortcut of its own (two actions with Ctrl+Z in one window would be
    ambiguous, whatever their shortcut context); it handles Ctrl+Z, Ctrl+Shift+Z and the
    platform's Undo/Redo keys itself while the focus is inside it, so they also work on their own.
    While locked, those keys do nothing and every action made from the stack is disabled.

    It starts with an empty network; to make a first :meth:`set_architecture` not undoable, call
    ``undo_stack.clear()`` after it.
    """

    architectureChanged = Signal()
    layerSelected = Signal(str)
    """The number of the layer now selected (``"3"``, ``"5.2"``), or ``""`` when none is."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._locked = False
        self.undo_stack = QUndoStack(self)
        self._model = NetworkModel(self.undo_stack, self)
        self._palette = LayerPalette()
        self._list = NetworkView()
        self._list.setModel(self._model)
        self._total = QLabel()
        self._problem = QLabel()
        self._problem.setObjectName("networkProblem")
        self._problem.setWordWrap(True)
        self._problem.setTextFormat(Qt.TextFormat.PlainText)
        self._form = ParamForm()
        self._form_area = QScrollArea()
        self._form_area.setWidgetResizable(True)
        self._form_area.setWidget(self._form)
        self._lay_out()
        self._palette.layerChosen.connect(self._add_after_selection)
        self._list.selectionModel().currentChanged.connect(self._on_current_changed)
        self._model.changed.connect(self._on_changed)
        self._form.paramEdited.connect(self._edit_param)
        self._form.branchAddRequested.connect(lambda: self._model.add_branch(self.selected_layer()))
        self._show_state()

    def architecture(self) -> Architecture:
        """A deep copy of the current network."""
        return self._model.architecture()

    def report(self) -> ValidationReport:
        """The validation of the current network (recomputed after each change)."""
        return self._model.report()

    def is_valid(self) -> bool:
        """Whether the network validates, so it can be trained."""
        return self._model.report().ok

    def set_architecture(self, architecture: Architecture) -> None:
        """Show ``architecture`` (a preset, an opened file) as one undoable step, "Load <name>".

        Once :meth:`set_input` has been called, the dataset's input shape and class count replace
        the file's. Ignored while locked: the network on show stays the one being trained.
        """
        if not self._locked:
            self._model.load(architecture)

    def selected_layer(self) -> str:
        """The number of the selected row (``"3"``, ``"5.2"``; a branch's ``"6.b2"``), or ``""`` when none is
        selected."""
        return self._model.number_of(self._list.currentIndex())

    def select_layer(self, number: str) -> bool:
        """Select the row numbered ``number`` in the list (and show it in the form), opening the blocks around
        it; False if there is none."""
        index = self._model.index_of(number)
        if not index.isValid():
            return False
        self._list.setCurrentIndex(index)
        self._list.scrollTo(index)
        return True

    def remove_layer(self, number: str) -> bool:
        """Remove the layer, branch or block numbered ``number`` (with everything in it), as one undoable step;
        False if there is none or the builder is locked."""
        return self._model.remove_layer(number)

    def set_input(self, input_shape: tuple[int, int, int], num_classes: int) -> None:
        """The dataset changed: validate against its input shape and class count (not undoable)."""
        self._model.set_input(input_shape, num_classes)

    def history_actions(self, parent: QObject) -> list[QAction]:
        """Undo and Redo for the Edit menu, made from the undo stack, with the platform's shortcuts."""
        undo = self.undo_stack.createUndoAction(parent, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(parent, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence.StandardKey.Redo])
        return [undo, redo]

    def set_loss(self, loss: str) -> None:
        """The loss chosen in the training settings: the warnings shown follow it."""
        self._model.set_loss(loss)

    def set_locked(self, locked: bool) -> None:
        """While training: grey out palette, list and form, refuse drops and edits, disable undo and redo."""
        self._locked = locked
        self._model.set_locked(locked)
        for widget in (self._palette, self._list, self._form_area):
            widget.setEnabled(not locked)
        # Every action made by createUndoAction/createRedoAction, the main window's included, follows
        # these signals; nothing is pushed while locked, so the stack does not re-enable them meanwhile.
        self.undo_stack.canUndoChanged.emit(self.undo_stack.canUndo() and not locked)
        self.undo_stack.canRedoChanged.emit(self.undo_stack.canRedo() and not locked)

    def event(self, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and self._history_step(event) is not None
        ):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        step = self._history_step(event)
        if step is None:
            super().keyPressEvent(event)
        else:
            step()

    def _history_step(self, event: QKeyEvent) -> Callable[[], None] | None:
        """The stack's undo or redo when ``event`` is its key and the builder is not locked, else None."""
        if self._locked:
            return None
        if event.matches(QKeySequence.StandardKey.Undo):
            return self.undo_stack.undo
        if event.matches(QKeySequence.StandardKey.Redo) or QKeySequence(event.keyCombination()) == QKeySequence(
            "Ctrl+Shift+Z"
        ):
            return self.undo_stack.redo
        return None

    def _lay_out(self) -> None:
        network = QWidget()
        network_layout = QVBoxLayout(network)
        network_layout.setContentsMargins(0, 0, 0, 0)
        network_layout.addWidget(_caption("Network"))
        network_layout.addWidget(self._list, 1)
        network_layout.addWidget(self._total)
        network_layout.addWidget(self._problem)
        palette = QWidget()
        palette_layout = QVBoxLayout(palette)
        palette_layout.setContentsMargins(0, 0, 0, 0)
        palette_layout.addWidget(_caption("Layers: drag one onto the network"))
        palette_layout.addWidget(self._palette)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        for pane, stretch in ((palette, 2), (network, 3), (self._form_area, 2)):
            splitter.addWidget(pane)
            splitter.setStretchFactor(splitter.count() - 1, stretch)
        splitter.setSizes([220, 330, 260])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    def _add_after_selection(self, type_name: str) -> None:
        self._model.insert_layer(self._model.slot_after(self._list.currentIndex()), type_name)

    def _edit_param(self, name: str, value: object) -> None:
        number = self.selected_layer()
        if number:
            self._model.set_param(number, name, value)

    def _show_current(self) -> None:
        number = self.selected_layer()
        if not number:
            self._form.show_layer(None)
        elif number.rpartition(".")[2].startswith("b"):
            self._form.show_branch(number)
        else:
            self._form.show_layer(self._model.layer(number), number)

    def _on_current_changed(self) -> None:
        self._show_current()
        self.layerSelected.emit(self.selected_layer())

    def _on_changed(self) -> None:
        # Every edit shows a new network (the model resets): select the row it touched, or none.
        focus = self._model.focus()
        with QSignalBlocker(self._list.selectionModel()):
            index = self._model.index_of(focus)
            self._list.setCurrentIndex(index)
        if index.isValid():
            self._list.scrollTo(index)
        self._list.viewport().update()
        self._show_state()
        self.layerSelected.emit(self.selected_layer())
        self.architectureChanged.emit()

    def _show_state(self) -> None:
        self._show_current()
        report = self._model.report()
        self._total.setText(f"Total: {report.total_parameters:,} parameters")
        tone, message = (
            ("error", report.errors[0])
            if report.errors
            else ("warning", report.warnings[0])
            if report.warnings
            else (None, "")
        )
        self._problem.setText(message)
        self._problem.setVisible(bool(message))
        if tone:
            self._problem.setStyleSheet(tone_style(tone))


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label
