"""The Diagram tab in the window: redrawn on every edit of the builder, its boxes and the list's rows selecting
each other, and File → Export diagram… writing SVG or PNG or saying why it could not.

The window is interactive, with ``QMessageBox.warning`` (the ``boxes`` fixture) and ``QFileDialog.getSaveFileName``
replaced by recorders.
"""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from tests.ui.test_builder_blocks import point
from tests.ui.test_layer_builder import drop_layer
from tests.ui.test_runs_folder import file_menu_action
from workbench.ui.main_window import MainWindow
from workbench.ui.panels.network_list import NetworkView

MENU_TITLE = "Export &diagram…"


class SaveDialog:
    """Stands in for ``QFileDialog.getSaveFileName``: answers ``answer`` with ``chosen_filter``."""

    def __init__(self) -> None:
        self.answer = ""
        self.chosen_filter = "SVG picture (*.svg)"
        self.asked: list[tuple[str, str]] = []

    def __call__(self, parent, caption: str = "", directory: str = "", filters: str = "", *args, **kwargs):
        self.asked.append((caption, directory))
        return self.answer, self.chosen_filter


@pytest.fixture
def save_dialog(monkeypatch) -> SaveDialog:
    dialog = SaveDialog()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(dialog))
    return dialog


@pytest.fixture
def win(qtbot, boxes, tmp_path):
    window = MainWindow(interactive=True, runs_out=tmp_path / "run")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.session.dataset is not None and not window.session.phase.busy, timeout=30_000)
    window.load_dataset("digits")
    window.load_preset("res-mlp-12")
    assert window.show_tab("diagram")
    yield window
    window.close()


def walked(window: MainWindow) -> list[str]:
    return [number for number, _, _ in window.session.architecture.walk()]


def test_the_diagram_shows_the_network_and_follows_every_edit_and_undo(win):
    diagram = win.network_diagram
    assert diagram.numbers() == walked(win)
    assert "→ 128" in diagram.box_text("4.1")
    builder = win.builder
    assert drop_layer(builder.findChild(NetworkView), "Dropout", point(builder, "4.2", "top"))
    assert diagram.numbers() == walked(win) and "4.2" in diagram.box_text("4.2")
    assert "Dropout" in diagram.box_text("4.2")
    builder.undo_stack.undo()
    assert "ReLU" in diagram.box_text("4.2") and diagram.numbers() == walked(win)
    win.load_preset("seed-simplenet")
    assert diagram.numbers() == walked(win) and not any("." in number for number in diagram.numbers())


def test_clicking_a_box_selects_its_layer_in_the_list_and_the_list_selection_shows_in_the_diagram(win, qtbot):
    diagram = win.network_diagram
    rect = diagram.box_rect("5.3")
    diagram.ensureVisible(rect)
    qtbot.mouseClick(diagram.viewport(), Qt.MouseButton.LeftButton, pos=diagram.mapFromScene(rect.center()))
    assert win.builder.selected_layer() == "5.3"
    assert win.builder.findChild(NetworkView).currentIndex().isValid()
    assert win.builder.select_layer("9")
    last = diagram.mapFromScene(diagram.box_rect("9")).boundingRect()
    assert diagram.viewport().rect().intersects(last), "the diagram scrolls to the layer selected in the list"


def test_delete_in_the_diagram_removes_the_clicked_layer_with_undo(win, qtbot):
    diagram = win.network_diagram
    before = win.session.architecture.to_dict()
    rect = diagram.box_rect("5")  # a whole Residual block, clicked on its frame's title
    diagram.ensureVisible(rect)
    title = diagram.mapFromScene(rect.topLeft()) + QPoint(30, 8)
    qtbot.mouseClick(diagram.viewport(), Qt.MouseButton.LeftButton, pos=title)
    assert win.builder.selected_layer() == "5"
    qtbot.keyClick(diagram, Qt.Key.Key_Delete)
    layers = win.session.architecture.layers
    assert len(layers) == len(before["layers"]) - 1 and diagram.numbers() == walked(win)
    win.builder.undo_stack.undo()
    assert win.session.architecture.to_dict() == before and diagram.numbers() == walked(win)


def test_file_export_diagram_writes_an_svg_or_a_png(win, save_dialog, tmp_path):
    save_dialog.answer = str(tmp_path / "network")
    file_menu_action(win, MENU_TITLE).trigger()
    svg = tmp_path / "network.svg"
    assert svg.is_file(), "no suffix given: the chosen filter's is added"
    text = ElementTree.parse(svg).getroot()
    assert "4.1 Linear(128)" in ElementTree.tostring(text, encoding="unicode")
    assert win.statusBar().currentMessage() == f"Diagram saved to {svg}"
    save_dialog.answer, save_dialog.chosen_filter = str(tmp_path / "network.png"), "PNG image (*.png)"
    file_menu_action(win, MENU_TITLE).trigger()
    image = QImage(str(tmp_path / "network.png"))
    assert not image.isNull() and image.height() > image.width() > 200
    assert save_dialog.asked[0][1].endswith("res-mlp-12.svg"), "the network's name is suggested"


def test_an_export_that_cannot_be_written_says_why_and_leaves_nothing(win, save_dialog, boxes, tmp_path):
    missing = tmp_path / "no such folder" / "network.svg"
    save_dialog.answer = str(missing)
    file_menu_action(win, MENU_TITLE).trigger()
    [(title, text)] = boxes
    assert title == "Cannot export the diagram"
    assert str(missing) in text and "does not exist" in text
    assert not missing.parent.exists()
    boxes.clear()
    save_dialog.answer = str(tmp_path / "network.pdf")
    file_menu_action(win, MENU_TITLE).trigger()
    [(title, text)] = boxes
    assert ".svg" in text and ".png" in text and not (tmp_path / "network.pdf").exists()
