"""The layer builder: drops from the palette, row moves, deletes, parameter edits, undo/redo, locking."""

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QCheckBox, QDoubleSpinBox, QLabel, QMainWindow, QSpinBox, QWidget

from tests.ui.drag import drag_event
from workbench.core.architecture import Architecture, Layer
from workbench.core.layers import CATALOG, GROUPS, layers_in_group
from workbench.core.presets import load_preset
from workbench.ui.panels.layer_builder import LayerBuilder, LayerPalette
from workbench.ui.panels.network_list import COLUMNS_ROLE, LAYER_MIME, ROW_MIME, STATE_ROLE, TONES, NetworkView
from workbench.ui.panels.param_form import ParamForm


def show(qtbot, window: QWidget) -> None:
    """Show and activate ``window``; offscreen, activation arrives after the window is exposed."""
    window.resize(360, 820)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2000)


@pytest.fixture
def builder(qtbot):
    widget = LayerBuilder()
    qtbot.addWidget(widget)
    show(qtbot, widget)
    widget.set_architecture(load_preset("seed-simplenet"))
    widget.undo_stack.clear()
    return widget


def view_of(builder: LayerBuilder) -> NetworkView:
    return builder.findChild(NetworkView)


def form_of(builder: LayerBuilder) -> ParamForm:
    return builder.findChild(ParamForm)


def types(builder: LayerBuilder) -> list[str]:
    return [layer.type for layer in builder.architecture().layers]


def columns(builder: LayerBuilder, row: int) -> tuple[str, str, str, str]:
    view = view_of(builder)
    return view.model().index(row).data(COLUMNS_ROLE)


def top_of(view: NetworkView, row: int) -> QPoint:
    rect = view.visualRect(view.model().index(row))
    return QPoint(rect.center().x(), rect.top() + 1)


def bottom_of(view: NetworkView, row: int) -> QPoint:
    rect = view.visualRect(view.model().index(row))
    return QPoint(rect.center().x(), rect.bottom() - 1)


def below_rows(view: NetworkView) -> QPoint:
    rect = view.visualRect(view.model().index(view.model().rowCount() - 1))
    point = QPoint(rect.center().x(), rect.bottom() + rect.height())
    assert view.viewport().rect().contains(point)
    return point


def drop(view: NetworkView, mime_type: str, payload: str, position: QPoint, action: Qt.DropAction) -> bool:
    """Drag enter, move and drop at ``position`` on the list's viewport, as a real drag would; True if accepted."""
    data = QMimeData()
    data.setData(mime_type, payload.encode("utf-8"))
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    viewport, point = view.viewport(), QPointF(position)
    QApplication.sendEvent(viewport, drag_event(QDragEnterEvent, point, action, data))
    QApplication.sendEvent(viewport, drag_event(QDragMoveEvent, point, action, data))
    event = QDropEvent(point, action, data, buttons, modifiers)
    QApplication.sendEvent(viewport, event)
    return event.isAccepted()


def drop_layer(view: NetworkView, type_name: str, position: QPoint) -> bool:
    return drop(view, LAYER_MIME, type_name, position, Qt.DropAction.CopyAction)


def select(builder: LayerBuilder, row: int) -> NetworkView:
    view = view_of(builder)
    view.setCurrentIndex(view.model().index(row))
    return view


def test_palette_lists_every_catalog_layer_under_its_group_with_help(builder):
    palette = builder.findChild(LayerPalette)
    assert [palette.topLevelItem(i).text(0) for i in range(palette.topLevelItemCount())] == [*GROUPS, "Blocks"]
    listed = []
    for i, group in enumerate(GROUPS):
        header = palette.topLevelItem(i)
        assert header.isExpanded()
        children = [header.child(j) for j in range(header.childCount())]
        assert [child.text(0) for child in children] == [layer.name for layer in layers_in_group(group)]
        assert [child.toolTip(0) for child in children] == [layer.help for layer in layers_in_group(group)]
        listed += [child.text(0) for child in children]
    assert sorted(listed) == sorted(CATALOG)
    linear = palette.findItems("Linear", Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive)[0]
    data = palette.mimeData([linear])
    assert bytes(data.data(LAYER_MIME)).decode("utf-8") == "Linear"
    blocks = palette.topLevelItem(len(GROUPS))
    entries = [blocks.child(j) for j in range(blocks.childCount())]
    assert [entry.text(0) for entry in entries] == ["Residual block", "Parallel block"]
    assert "skip connection" in entries[0].toolTip(0) and "branches" in entries[1].toolTip(0)
    assert bytes(palette.mimeData([entries[1]]).data(LAYER_MIME)).decode("utf-8") == "Parallel"


def test_dropping_a_palette_layer_between_rows_inserts_it_there_and_undo_redo(builder, qtbot):
    view = view_of(builder)
    before = builder.architecture()
    with qtbot.waitSignal(builder.architectureChanged, timeout=1000):
        assert drop_layer(view, "ReLU", top_of(view, 2))
    assert types(builder) == ["Flatten", "Linear", "ReLU", "Linear"]
    assert view.currentIndex().row() == 2
    after = builder.architecture()
    builder.undo_stack.undo()
    assert builder.architecture() == before
    builder.undo_stack.redo()
    assert builder.architecture() == after
    assert drop_layer(view, "Dropout", bottom_of(view, 0))
    assert types(builder) == ["Flatten", "Dropout", "Linear", "ReLU", "Linear"]


def test_dropping_below_the_last_row_appends(builder):
    view = view_of(builder)
    before = builder.architecture()
    assert drop_layer(view, "Softmax", below_rows(view))
    assert types(builder) == ["Flatten", "Linear", "Linear", "Softmax"]
    assert builder.is_valid()
    warning = builder.report().warnings[0]
    last = view_of(builder).model().index(3)
    assert last.data(STATE_ROLE) == "warning"
    assert last.data(Qt.ItemDataRole.BackgroundRole) == TONES["warning"].background
    assert last.data(Qt.ItemDataRole.ToolTipRole) == warning
    assert any(label.text() == warning and label.isVisible() for label in builder.findChildren(QLabel))
    builder.undo_stack.undo()
    assert builder.architecture() == before
    builder.undo_stack.redo()
    assert types(builder)[-1] == "Softmax"


def test_dropping_on_an_empty_network_adds_the_first_layer(qtbot):
    empty = LayerBuilder()
    qtbot.addWidget(empty)
    show(qtbot, empty)
    view = view_of(empty)
    assert drop_layer(view, "Flatten", view.viewport().rect().center())
    assert types(empty) == ["Flatten"]
    assert not drop_layer(view, "NoSuchLayer", view.viewport().rect().center())
    assert types(empty) == ["Flatten"]


def test_dragging_a_row_within_the_list_reorders_and_undo_redo(builder):
    view = view_of(builder)
    before = builder.architecture()
    assert drop(view, ROW_MIME, "3", top_of(view, 0), Qt.DropAction.MoveAction)
    assert [layer.params.get("out_features") for layer in builder.architecture().layers] == [10, None, 120]
    moved_up = builder.architecture()
    builder.undo_stack.undo()
    assert builder.architecture() == before
    builder.undo_stack.redo()
    assert builder.architecture() == moved_up
    builder.undo_stack.undo()
    assert drop(view, ROW_MIME, "1", top_of(view, 2), Qt.DropAction.MoveAction)
    assert [layer.params.get("out_features") for layer in builder.architecture().layers] == [120, None, 10]
    builder.undo_stack.undo()
    assert drop(view, ROW_MIME, "1", below_rows(view), Qt.DropAction.MoveAction)
    assert types(builder) == ["Linear", "Linear", "Flatten"]
    builder.undo_stack.undo()
    assert builder.architecture() == before
    assert not drop(view, ROW_MIME, "2", top_of(view, 1), Qt.DropAction.MoveAction)
    assert builder.undo_stack.index() == 0


def test_delete_key_removes_the_selected_layer_and_undo_redo(builder, qtbot):
    view = select(builder, 1)
    before = builder.architecture()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert [layer.params.get("out_features") for layer in builder.architecture().layers] == [None, 10]
    assert view.currentIndex().row() == 1
    qtbot.keyClick(view, Qt.Key.Key_Backspace)
    assert types(builder) == ["Flatten"]
    builder.undo_stack.undo()
    builder.undo_stack.undo()
    assert builder.architecture() == before
    builder.undo_stack.redo()
    assert len(builder.architecture().layers) == 2


def test_editing_a_parameter_updates_the_row_and_the_total_and_undo_refreshes_the_form(builder, qtbot):
    select(builder, 1)
    spin = form_of(builder).findChild(QSpinBox, "out_features")
    assert spin.value() == 120
    assert columns(builder, 1) == ("2", "Linear(120)", "784 → 120", "94,200")
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), "64")
    assert builder.architecture().layers[1].params["out_features"] == 120
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
    assert builder.architecture().layers[1].params["out_features"] == 64
    assert columns(builder, 1) == ("2", "Linear(64)", "784 → 64", "50,240")
    assert columns(builder, 2)[3] == f"{64 * 10 + 10:,}"
    total = 784 * 64 + 64 + 64 * 10 + 10
    assert builder.report().total_parameters == total
    assert any(label.text() == f"Total: {total:,} parameters" for label in builder.findChildren(QLabel))
    assert builder.undo_stack.count() == 1
    builder.undo_stack.undo()
    assert spin.value() == 120
    assert builder.undo_stack.count() == 1
    assert builder.report().total_parameters == 784 * 120 + 120 + 120 * 10 + 10


def test_consecutive_edits_of_one_field_are_one_undo_step(builder):
    select(builder, 1)
    spin = form_of(builder).findChild(QSpinBox, "out_features")
    spin.stepUp()
    spin.stepUp()
    spin.stepUp()
    assert builder.architecture().layers[1].params["out_features"] == 123
    assert builder.undo_stack.count() == 1
    builder.undo_stack.undo()
    assert builder.architecture().layers[1].params["out_features"] == 120
    before = builder.architecture()
    spin.stepUp()
    spin.stepDown()
    assert builder.undo_stack.count() == 0
    assert builder.architecture() == before


def test_float_optional_and_bool_editors(builder):
    select(builder, 0)
    view = view_of(builder)
    assert drop_layer(view, "BatchNorm1d", top_of(view, 2))
    form = form_of(builder)
    eps = form.findChild(QDoubleSpinBox, "eps")
    assert eps.text() == "1e-05"
    eps.setValue(1e-3)
    assert builder.architecture().layers[2].params["eps"] == pytest.approx(1e-3)
    form.findChild(QCheckBox, "affine").setChecked(False)
    assert builder.architecture().layers[2].params["affine"] is False
    builder.set_architecture(load_preset("cnn-small"))
    select(builder, 2)
    stride = form.findChild(QSpinBox, "stride")
    assert stride.text() == "same as kernel"
    stride.setValue(1)
    assert builder.architecture().layers[2].params["stride"] == 1
    stride.setValue(stride.minimum())
    assert builder.architecture().layers[2].params["stride"] is None


def test_the_form_asks_for_a_selection_then_says_when_a_layer_has_no_parameters(builder):
    assert any(label.text().startswith("Select a layer") for label in form_of(builder).findChildren(QLabel))
    view = view_of(builder)
    drop_layer(view, "ReLU", top_of(view, 2))
    assert any(
        label.text() == "No parameters." and label.isVisible() for label in form_of(builder).findChildren(QLabel)
    )


def test_deleting_the_flatten_marks_the_next_row_red_and_undo_fixes_it(builder, qtbot):
    view = select(builder, 0)
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert not builder.is_valid()
    index = view.model().index(0)
    error = builder.report().layers[0].error
    assert "add a Flatten before it" in error
    assert index.data(STATE_ROLE) == "error"
    assert index.data(Qt.ItemDataRole.BackgroundRole) == TONES["error"].background
    assert index.data(Qt.ItemDataRole.ToolTipRole) == error
    assert columns(builder, 1)[2] == "?"
    assert any(
        label.text() == builder.report().errors[0] and label.isVisible() for label in builder.findChildren(QLabel)
    )
    builder.undo_stack.undo()
    assert builder.is_valid()
    assert view.model().index(1).data(STATE_ROLE) is None
    assert view.model().index(1).data(Qt.ItemDataRole.BackgroundRole) is None


def test_a_conv2d_after_the_flatten_is_red_with_the_core_message(builder):
    view = view_of(builder)
    drop_layer(view, "Conv2d", top_of(view, 1))
    index = view.model().index(1)
    assert index.data(STATE_ROLE) == "error"
    assert index.data(Qt.ItemDataRole.ToolTipRole) == builder.report().errors[0]
    assert "move it before the Flatten" in builder.report().errors[0]
    assert not builder.is_valid()
    builder.undo_stack.undo()
    assert builder.is_valid()


def test_set_architecture_is_one_undo_step(builder, qtbot):
    before = builder.architecture()
    with qtbot.waitSignal(builder.architectureChanged, timeout=1000):
        builder.set_architecture(load_preset("cnn-small"))
    assert builder.architecture() == load_preset("cnn-small")
    assert builder.undo_stack.undoText() == "Load cnn-small"
    builder.undo_stack.undo()
    assert builder.architecture() == before


def test_architecture_is_a_copy(builder):
    copy = builder.architecture()
    copy.layers.clear()
    assert len(builder.architecture().layers) == 3


def test_set_input_revalidates_against_the_dataset_without_an_undo_step(builder, qtbot):
    with qtbot.waitSignal(builder.architectureChanged, timeout=1000):
        builder.set_input((1, 8, 8), 10)
    assert builder.undo_stack.count() == 0
    assert builder.architecture().input_shape == (1, 8, 8)
    assert columns(builder, 1) == ("2", "Linear(120)", "64 → 120", f"{64 * 120 + 120:,}")
    builder.set_input((3, 32, 32), 5)
    assert not builder.is_valid()
    assert "must end with 5" in builder.report().errors[0]
    builder.set_architecture(load_preset("mlp"))
    assert builder.architecture().input_shape == (3, 32, 32)


def test_locked_refuses_drops_deletes_edits_loads_and_undo(builder, qtbot):
    undo = builder.undo_stack.createUndoAction(builder)
    redo = builder.undo_stack.createRedoAction(builder)
    builder.set_architecture(load_preset("seed-relu-mlp"))
    builder.set_architecture(load_preset("mlp"))
    builder.undo_stack.undo()
    view = select(builder, 1)
    before = builder.architecture()
    assert undo.isEnabled() and redo.isEnabled()
    builder.set_locked(True)
    assert not drop_layer(view, "ReLU", top_of(view, 1))
    assert not drop(view, ROW_MIME, "1", below_rows(view), Qt.DropAction.MoveAction)
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not view.model().set_param(1, "out_features", 5)
    builder.set_architecture(load_preset("cnn-small"))
    assert builder.architecture() == before
    assert not undo.isEnabled() and not redo.isEnabled()
    assert not view.isEnabled() and not form_of(builder).isEnabledTo(builder)
    assert not builder.findChild(LayerPalette).isEnabled()
    builder.set_locked(False)
    assert undo.isEnabled() and redo.isEnabled()
    assert drop_layer(view, "ReLU", top_of(view, 1))


def test_architecture_changed_fires_on_every_edit(builder, qtbot):
    view = view_of(builder)
    edits = [
        lambda: drop_layer(view, "ReLU", top_of(view, 2)),
        lambda: drop(view, ROW_MIME, "3", top_of(view, 1), Qt.DropAction.MoveAction),
        lambda: qtbot.keyClick(select(builder, 1), Qt.Key.Key_Delete),
        lambda: form_of(builder).findChild(QSpinBox, "out_features").setValue(50),
        builder.undo_stack.undo,
        builder.undo_stack.redo,
    ]
    for edit in edits:
        with qtbot.waitSignal(builder.architectureChanged, timeout=1000):
            edit()


def test_undo_and_redo_shortcuts(builder, qtbot):
    view = select(builder, 1)
    before = builder.architecture()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert builder.architecture() == before
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(builder.architecture().layers) == 2


def test_a_main_window_with_its_own_undo_shortcut_undoes_once_without_ambiguity(qtbot):
    """An ambiguous Ctrl+Z would undo nothing; a doubled one would undo twice."""
    window = QMainWindow()
    qtbot.addWidget(window)
    builder = LayerBuilder()
    window.setCentralWidget(builder)
    undo = builder.undo_stack.createUndoAction(window, "&Undo")
    undo.setShortcut(QKeySequence.StandardKey.Undo)
    window.menuBar().addMenu("&Edit").addAction(undo)
    show(qtbot, window)
    builder.set_architecture(load_preset("seed-simplenet"))
    view = select(builder, 1)
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert undo.text() == "&Undo Remove Linear"
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(builder.architecture().layers) == 2
    window.menuBar().setFocus()
    qtbot.keyClick(window.menuBar(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(builder.architecture().layers) == 3


def test_double_clicking_a_palette_layer_inserts_it_after_the_selected_row(builder, qtbot):
    select(builder, 1)
    palette = builder.findChild(LayerPalette)
    item = palette.findItems("ReLU", Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive)[0]
    palette.scrollToItem(item)
    centre = palette.visualItemRect(item).center()
    qtbot.mouseClick(palette.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert types(builder) == ["Flatten", "Linear", "Linear"]
    # QTest sends only the second click's double-click event; a real double-click starts with a click.
    qtbot.mouseDClick(palette.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert types(builder) == ["Flatten", "Linear", "ReLU", "Linear"]


def test_screenshot_with_a_red_row(qtbot):
    widget = LayerBuilder()
    qtbot.addWidget(widget)
    show(qtbot, widget)
    widget.set_architecture(load_preset("seed-relu-mlp"))
    view = view_of(widget)
    drop_layer(view, "Conv2d", top_of(view, 3))
    select(widget, 1)
    assert view.model().index(3).data(STATE_ROLE) == "error"
    QApplication.processEvents()
    shot = widget.grab()
    assert not shot.isNull()
    shot.save("/tmp/layer_builder.png")


def test_an_architecture_with_an_unknown_layer_type_shows_without_crashing(builder):
    builder.set_architecture(Architecture("odd", (1, 28, 28), 10, [Layer("Flatten"), Layer("Lineer")]))
    select(builder, 1)
    assert not builder.is_valid()
    assert columns(builder, 1)[1] == "Lineer"


def test_select_layer_by_number_and_the_selection_signal(builder, qtbot):
    with qtbot.waitSignal(builder.layerSelected) as signal:
        assert builder.select_layer("2")
    assert signal.args == ["2"]
    assert builder.selected_layer() == "2"
    assert form_of(builder).findChild(QSpinBox, "out_features").value() == 120
    assert not builder.select_layer("9")
    assert not builder.select_layer("x")
    assert builder.selected_layer() == "2"
