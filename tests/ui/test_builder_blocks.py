"""Residual and Parallel blocks in the builder: dropped from the palette, filled and emptied by dragging, edited in
the form, deleted, collapsed, and every step undone and redone."""

import copy

import pytest
from PySide6.QtCore import QModelIndex, QPoint, Qt
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton

from tests.helpers import BLOCKS_DIGITS
from tests.ui.test_layer_builder import drop, drop_layer, show
from workbench.core.architecture import Architecture, Layer
from workbench.ui.panels.layer_builder import LayerBuilder
from workbench.ui.panels.network_list import COLUMNS_ROLE, ROW_MIME, STATE_ROLE, NetworkView
from workbench.ui.panels.param_form import ParamForm


@pytest.fixture
def builder(qtbot):
    widget = LayerBuilder()
    qtbot.addWidget(widget)
    show(qtbot, widget)
    widget.set_architecture(Architecture.from_dict(copy.deepcopy(BLOCKS_DIGITS)))
    widget.undo_stack.clear()
    return widget


@pytest.fixture
def small(qtbot):
    """A flat network to drop blocks into: Flatten, Linear(10)."""
    widget = LayerBuilder()
    qtbot.addWidget(widget)
    show(qtbot, widget)
    widget.set_input((1, 8, 8), 10)
    widget.set_architecture(
        Architecture("small", (1, 8, 8), 10, [Layer("Flatten"), Layer("Linear", {"out_features": 10})])
    )
    widget.undo_stack.clear()
    return widget


def view_of(builder: LayerBuilder) -> NetworkView:
    return builder.findChild(NetworkView)


def point(builder: LayerBuilder, number: str, where: str) -> QPoint:
    """A point on row ``number``: its top edge (drop before it), centre (drop onto it) or bottom edge (after it)."""
    view = view_of(builder)
    index = view.model().index_of(number)
    assert index.isValid(), number
    view.scrollTo(index)  # as a user scrolls the list to the row
    rect = view.visualRect(index)
    assert rect.isValid() and view.viewport().rect().contains(rect.center()), (number, "not on screen")
    y = {"top": rect.top() + 1, "centre": rect.center().y(), "bottom": rect.bottom() - 1}[where]
    return QPoint(rect.center().x(), y)


def rows(builder: LayerBuilder) -> list[tuple[str, str]]:
    """Every row shown (those of expanded blocks), as (number, label)."""
    view = view_of(builder)
    model = view.model()
    found = []

    def visit(parent):
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            number, label, _, _ = index.data(COLUMNS_ROLE)
            found.append((number or model.number_of(index), label))
            if view.isExpanded(index):
                visit(index)

    visit(QModelIndex())
    return found


def state(builder: LayerBuilder, number: str) -> str | None:
    return view_of(builder).model().index_of(number).data(STATE_ROLE)


def test_a_residual_block_dropped_from_the_palette_is_red_until_a_layer_is_dropped_into_it(small):
    assert drop_layer(view_of(small), "Residual", point(small, "2", "top"))
    assert [layer.type for layer in small.architecture().layers] == ["Flatten", "Residual", "Linear"]
    assert state(small, "2") == "error"
    assert "block 2 Residual has no layers" in small.report().errors[0]
    assert drop_layer(view_of(small), "ReLU", point(small, "2", "centre"))  # onto the block: inside it
    block = small.architecture().layers[1]
    assert [layer.type for layer in block.layers] == ["ReLU"]
    assert small.is_valid(), small.report().errors
    assert ("2.1", "ReLU") in rows(small), "the block opens to show the layer inside it"
    assert small.selected_layer() == "2.1"
    small.undo_stack.undo()
    assert small.architecture().layers[1].layers == [] and state(small, "2") == "error"
    small.undo_stack.undo()
    assert [layer.type for layer in small.architecture().layers] == ["Flatten", "Linear"]
    small.undo_stack.redo()
    small.undo_stack.redo()
    assert small.is_valid()


def test_a_parallel_block_comes_with_two_branches_and_a_drop_between_them_makes_a_third(small):
    assert drop_layer(view_of(small), "Parallel", point(small, "2", "top"))
    assert [number for number, _ in rows(small)][:4] == ["1", "2", "2.b1", "2.b2"]
    assert "branch 1 has no layers" in small.report().errors[0]
    assert drop_layer(view_of(small), "Identity", point(small, "2.b1", "centre"))
    assert drop_layer(view_of(small), "Linear", point(small, "2.b2", "centre"))
    block = small.architecture().layers[1]
    assert [[layer.type for layer in branch] for branch in block.branches] == [["Identity"], ["Linear"]]
    assert small.is_valid(), small.report().errors  # concat of 64 and 64 features
    assert drop_layer(view_of(small), "ReLU", point(small, "2.b2", "top"))  # between branch 1 and branch 2
    block = small.architecture().layers[1]
    assert [[layer.type for layer in branch] for branch in block.branches] == [["Identity"], ["ReLU"], ["Linear"]]
    assert small.selected_layer() == "2.b2.1"
    small.undo_stack.undo()
    assert len(small.architecture().layers[1].branches) == 2


def test_dragging_a_layer_into_out_of_and_within_a_block_with_undo(builder):
    view = view_of(builder)
    before = builder.architecture()
    assert drop(view, ROW_MIME, "2", point(builder, "3.1", "top"), Qt.DropAction.MoveAction)  # the ReLU into block 3
    after_in = builder.architecture()
    assert [layer.type for layer in after_in.layers[1].layers] == ["ReLU", "Conv2d", "ReLU", "Conv2d"]
    assert builder.selected_layer() == "2.1", "block 3 is block 2 once the ReLU before it left"
    builder.undo_stack.undo()
    assert builder.architecture() == before
    builder.undo_stack.redo()
    assert builder.architecture() == after_in
    builder.undo_stack.undo()
    # out of block 6: its ReLU dropped before the last Linear
    assert drop(view, ROW_MIME, "6.2", point(builder, "7", "top"), Qt.DropAction.MoveAction)
    out = builder.architecture()
    assert [layer.type for layer in out.layers[5].layers] == ["Linear", "Linear"] and out.layers[6].type == "ReLU"
    builder.undo_stack.undo()
    # within block 3: its last Conv2d first
    assert drop(view, ROW_MIME, "3.3", point(builder, "3.1", "top"), Qt.DropAction.MoveAction)
    assert [layer.params.get("stride", 1) for layer in builder.architecture().layers[2].layers] == [1, 2, 1]
    builder.undo_stack.undo()
    assert builder.architecture() == before
    # a block never into itself
    assert not drop(view, ROW_MIME, "3", point(builder, "3.2", "top"), Qt.DropAction.MoveAction)
    assert builder.architecture() == before


def test_moving_a_block_moves_everything_in_it(builder):
    view = view_of(builder)
    assert drop(view, ROW_MIME, "6", point(builder, "5", "top"), Qt.DropAction.MoveAction)
    moved = builder.architecture()
    assert moved.layers[4].type == "Residual" and [layer.type for layer in moved.layers[4].layers] == [
        "Linear",
        "ReLU",
        "Linear",
    ]
    assert moved.layers[5].type == "Flatten"
    assert builder.selected_layer() == "5"


def test_a_collapsed_block_stays_collapsed_across_edits_undo_and_redo(builder):
    view = view_of(builder)
    model = view.model()
    view.collapse(model.index_of("3"))
    hidden = [number for number, _ in rows(builder)]
    assert not any(number.startswith("3.") for number in hidden) and "4.b1" in hidden
    assert drop_layer(view, "ReLU", point(builder, "7", "top"))  # an edit elsewhere
    assert not view.isExpanded(model.index_of("3")) and view.isExpanded(model.index_of("4"))
    builder.undo_stack.undo()
    assert not view.isExpanded(model.index_of("3"))
    builder.undo_stack.redo()
    assert not view.isExpanded(model.index_of("3"))
    view.expand(model.index_of("3"))
    assert any(number == "3.1" for number, _ in rows(builder))


def test_a_collapsed_block_whose_own_shortcut_is_edited_stays_collapsed(builder, qtbot):
    view = view_of(builder)
    model = view.model()
    view.collapse(model.index_of("3"))
    assert builder.select_layer("3")
    builder.findChild(ParamForm).findChild(QComboBox, "shortcut").setCurrentText("identity")
    assert builder.architecture().layers[2].params["shortcut"] == "identity"
    assert not view.isExpanded(model.index_of("3")), "the edit changed the block, not whether it is folded"
    assert view.isExpanded(model.index_of("4"))
    builder.undo_stack.undo()
    assert not view.isExpanded(model.index_of("3"))


def test_selecting_a_block_edits_its_shortcut_and_a_block_that_does_not_fit_is_red(builder, qtbot):
    assert builder.select_layer("3")
    form = builder.findChild(ParamForm)
    shortcut = form.findChild(QComboBox, "shortcut")
    assert shortcut.currentText() == "projection"
    qtbot.waitUntil(shortcut.isVisible, timeout=2000)  # a layout shows new editors on the next event loop turn
    assert not form.findChild(QPushButton, "addBranch").isVisible()
    shortcut.setCurrentText("identity")
    assert builder.architecture().layers[2].resolved_params()["shortcut"] == "identity"
    assert state(builder, "3") == "error"
    message = builder.report().errors[0]
    assert message.startswith("block 3 Residual") and "projection" in message
    problem = builder.findChild(QLabel, "networkProblem")
    assert problem.isVisible() and problem.text() == message
    builder.undo_stack.undo()
    assert builder.is_valid() and state(builder, "3") is None
    assert builder.findChild(ParamForm).findChild(QComboBox, "shortcut").currentText() == "projection"


def test_a_parallel_blocks_merge_and_add_a_branch_from_the_form(builder, qtbot):
    assert builder.select_layer("4")
    form = builder.findChild(ParamForm)
    merge = form.findChild(QComboBox, "merge")
    assert merge.currentText() == "concat"
    merge.setCurrentText("sum")
    assert builder.architecture().layers[3].params["merge"] == "sum"
    model = view_of(builder).model()
    assert state(builder, "4") is None and model.index_of("4").data(COLUMNS_ROLE)[2] == "8×4×4 → 4×4×4"
    assert state(builder, "6") == "error", "half the channels: block 6 no longer gets the 128 features it adds"
    add = form.findChild(QPushButton, "addBranch")
    qtbot.waitUntil(add.isVisible, timeout=2000)
    add.click()
    assert len(builder.architecture().layers[3].branches) == 3
    assert builder.selected_layer() == "4.b3"
    assert state(builder, "4") == "error" and "branch 3 has no layers" in builder.report().errors[0]
    builder.undo_stack.undo()
    builder.undo_stack.undo()
    assert builder.architecture().layers[3].params.get("merge", "concat") == "concat"
    assert len(builder.architecture().layers[3].branches) == 2


@pytest.mark.parametrize(
    ("number", "check"),
    [
        ("3.2", lambda a: [layer.type for layer in a.layers[2].layers] == ["Conv2d", "Conv2d"]),
        ("4.b2", lambda a: len(a.layers[3].branches) == 1),
        ("3", lambda a: [layer.type for layer in a.layers][:3] == ["Conv2d", "ReLU", "Parallel"]),
    ],
    ids=["layer inside a block", "branch", "block with its contents"],
)
def test_the_delete_key_removes_the_selection_and_undo_brings_it_back(builder, qtbot, number, check):
    before = builder.architecture()
    assert builder.select_layer(number)
    view = view_of(builder)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert check(builder.architecture()), builder.architecture().to_dict()
    builder.undo_stack.undo()
    assert builder.architecture() == before
    assert builder.selected_layer() == number


def test_every_row_of_a_block_network_shows_its_number_shape_and_parameters(builder):
    shown = rows(builder)
    numbers = [number for number, _ in shown]
    assert numbers == [
        "1", "2", "3", "3.1", "3.2", "3.3", "4", "4.b1", "4.b1.1", "4.b2", "4.b2.1", "4.b2.2", "5", "6", "6.1",
        "6.2", "6.3", "7",
    ]  # fmt: skip
    model = view_of(builder).model()
    number, label, shapes, parameters = model.index_of("3").data(COLUMNS_ROLE)
    assert label.startswith("Residual") and "projection" in label
    assert shapes == "4×8×8 → 8×4×4"
    assert model.index_of("3.1").data(COLUMNS_ROLE)[2] == "4×8×8 → 8×4×4"
    assert model.index_of("4.b2").data(COLUMNS_ROLE)[1:3] == ("Branch 2", "2 layers")
