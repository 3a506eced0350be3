"""NetworkDiagram: a box per layer in walk order, frames around blocks without overlaps, red errors, clicks and
highlights by number, SVG and PNG exports."""

import copy
import itertools
import xml.etree.ElementTree as ElementTree

import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPalette

from tests.helpers import BLOCKS_DIGITS
from workbench.core.architecture import Architecture, Layer, validate
from workbench.core.errors import WorkbenchError
from workbench.core.presets import load_preset
from workbench.ui.panels.network_list import TONES
from workbench.ui.views.network_diagram import PLACEHOLDER, NetworkDiagram


def blocks_digits() -> Architecture:
    return Architecture.from_dict(copy.deepcopy(BLOCKS_DIGITS))


NETWORKS = {"blocks-digits": blocks_digits, "resnet-20": lambda: load_preset("resnet-20")}


@pytest.fixture
def view(qtbot):
    widget = NetworkDiagram()
    qtbot.addWidget(widget)
    widget.resize(500, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def shown(view: NetworkDiagram, architecture: Architecture) -> Architecture:
    view.show_network(architecture, validate(architecture))
    return architecture


def inside(outer: QRectF, inner: QRectF) -> bool:
    return outer.contains(inner)


def encloses(block: str, number: str) -> bool:
    """Whether the layer ``number`` is inside block ``block`` (at any depth)."""
    return number.startswith(f"{block}.")


def pixel(view: NetworkDiagram, scene_point: QPointF) -> QColor:
    """The colour on screen at a point of the scene."""
    image = view.viewport().grab().toImage()
    point = view.mapFromScene(scene_point)
    return image.pixelColor(point.x(), point.y())


def close(colour: QColor, expected: QColor, tolerance: int = 6) -> bool:
    return all(
        abs(a - b) <= tolerance
        for a, b in zip(
            (colour.red(), colour.green(), colour.blue()), (expected.red(), expected.green(), expected.blue())
        )
    )


@pytest.mark.parametrize("name", NETWORKS)
def test_every_layer_and_block_has_a_box_in_walk_order(view, name):
    architecture = shown(view, NETWORKS[name]())
    walked = [number for number, _, _ in architecture.walk()]
    assert view.numbers() == walked
    assert all(view.box_rect(number) is not None for number in walked)
    assert view.box_rect("99") is None


@pytest.mark.parametrize("name", NETWORKS)
def test_boxes_do_not_overlap_and_blocks_frame_their_layers(view, name):
    shown(view, NETWORKS[name]())
    rects = {number: view.box_rect(number) for number in view.numbers()}
    for first, second in itertools.combinations(rects, 2):
        if encloses(first, second):
            assert inside(rects[first], rects[second]), f"{second} sticks out of block {first}"
        elif encloses(second, first):
            assert inside(rects[second], rects[first]), f"{first} sticks out of block {second}"
        else:
            assert not rects[first].intersects(rects[second]), f"{first} and {second} overlap"
    assert all(inside(view.sceneRect(), rect) for rect in rects.values())


def test_the_branches_of_a_parallel_block_stand_side_by_side(view):
    shown(view, blocks_digits())
    first, second = view.box_rect("4.b1.1"), view.box_rect("4.b2.1")
    assert abs(first.top() - second.top()) < 3
    assert first.right() < second.left()
    below = view.box_rect("4.b2.2")
    assert below.top() > second.bottom() and below.left() > first.right()


def test_boxes_show_their_layer_and_output_shape_as_validated(view):
    shown(view, blocks_digits())
    assert view.box_text("3.1") == "3.1 Conv2d(8, 3×3)\n→ 8×4×4"
    assert view.box_text("3") == "3 Residual (projection)\n→ 8×4×4"
    assert view.box_text("4") == "4 Parallel (concat)\n→ 8×4×4"
    assert view.box_text("5") == "5 Flatten\n→ 128"


def test_a_block_with_an_error_is_red_and_the_shapes_after_it_unknown(view):
    architecture = shown(view, blocks_digits())
    rect = view.box_rect("3")
    in_frame = QPointF(rect.left() + 5, rect.center().y())  # between the frame's border and the skip path
    error = TONES["error"].background
    assert not close(pixel(view, in_frame), error)

    broken = copy.deepcopy(architecture)
    broken.layers[2].params["shortcut"] = "identity"  # 4×8×8 -> 8×4×4 cannot be added without a projection
    report = validate(broken)
    assert report.rows[2].number == "3" and report.rows[2].error
    view.show_network(broken, report)
    assert close(pixel(view, in_frame), error)
    assert view.box_text("3") == "3 Residual (identity)\n→ ?"
    assert view.box_text("5").endswith("→ ?")
    inner = view.box_rect("3.1")  # the layers inside fit: they keep their colour
    assert not close(pixel(view, QPointF(inner.left() + 5, inner.center().y())), error)


def test_a_click_on_a_box_or_a_block_title_emits_its_number(view, qtbot):
    shown(view, blocks_digits())
    for number in ("1", "4.b2.1", "6.3"):
        rect = view.box_rect(number)
        view.ensureVisible(rect)
        with qtbot.waitSignal(view.layerClicked, timeout=1000) as clicked:
            qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(rect.center()))
        assert clicked.args == [number]
    frame = view.box_rect("3")
    view.ensureVisible(frame)
    title = QPointF(frame.left() + 20, frame.top() + 10)
    with qtbot.waitSignal(view.layerClicked, timeout=1000) as clicked:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(title))
    assert clicked.args == ["3"]


def test_a_click_between_boxes_emits_nothing(view, qtbot):
    shown(view, blocks_digits())
    view.verticalScrollBar().setValue(0)
    first = view.box_rect("1")
    beside = QPointF(first.right() + 40, first.center().y())
    with qtbot.assertNotEmitted(view.layerClicked):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(beside))


def test_selecting_the_last_layer_highlights_it_and_scrolls_it_into_view(view, qtbot):
    view.resize(400, 300)
    qtbot.waitUntil(lambda: view.viewport().height() < 300)
    shown(view, load_preset("resnet-20"))
    last = view.numbers()[-1]
    rect = view.box_rect(last)
    viewport = view.viewport().rect()
    assert not viewport.intersects(view.mapFromScene(rect).boundingRect())

    view.select_layer(last)
    assert viewport.contains(view.mapFromScene(rect).boundingRect())
    border = QPointF(rect.left() + 1, rect.center().y())  # inside the 3-pixel border
    accent = view.palette().color(QPalette.ColorRole.Highlight)
    assert close(pixel(view, border), accent)

    view.select_layer("")
    assert not close(pixel(view, border), accent)


def test_a_redraw_keeps_the_highlight_of_a_number_still_there(view):
    architecture = shown(view, blocks_digits())
    view.select_layer("6.2")
    view.show_network(architecture, validate(architecture))
    rect = view.box_rect("6.2")
    accent = view.palette().color(QPalette.ColorRole.Highlight)
    assert close(pixel(view, QPointF(rect.left() + 1, rect.center().y())), accent)


def test_an_svg_export_is_xml_titled_with_the_network_and_holds_the_labels(view, tmp_path):
    shown(view, blocks_digits())
    view.select_layer("3.1")
    path = tmp_path / "diagram.svg"
    view.export(path)
    root = ElementTree.parse(path).getroot()
    texts = " ".join(text.strip() for text in root.itertext())
    assert "3.1 Conv2d(8, 3×3)" in texts
    assert "4.b2.2 ReLU" in texts and "concat" in texts
    assert root.find("{http://www.w3.org/2000/svg}title").text == "blocks-digits"


def test_a_png_export_is_twice_the_scene_on_its_background(view, tmp_path):
    shown(view, load_preset("resnet-20"))
    path = tmp_path / "diagram.png"
    view.export(path)
    image = QImage(str(path))
    assert not image.isNull()
    scene = view.sceneRect()
    assert abs(image.width() - 2 * scene.width()) <= 2 and abs(image.height() - 2 * scene.height()) <= 2
    base = view.palette().color(QPalette.ColorRole.Base)
    assert close(image.pixelColor(2, 2), base)


@pytest.mark.parametrize("name", ["missing/diagram.png", "missing/diagram.svg", "diagram.pdf", "diagram"])
def test_an_export_that_cannot_be_written_says_where_and_why(view, tmp_path, name):
    shown(view, blocks_digits())
    path = tmp_path / name
    with pytest.raises(WorkbenchError) as raised:
        view.export(path)
    message = str(raised.value)
    assert message.startswith(f"Could not write the diagram to {path}: ")
    if name.startswith("missing"):
        assert f"the folder {path.parent} does not exist" in message
    else:
        assert ".svg or .png" in message
    assert not path.exists()


def test_a_redraw_shows_only_the_new_network(view):
    shown(view, blocks_digits())
    simple = shown(view, load_preset("seed-simplenet"))
    assert view.numbers() == [number for number, _, _ in simple.walk()]
    assert view.box_rect("4.b1.1") is None and view.box_text("6.1") == ""
    numbered = {item.data(0) for item in view.scene().items() if item.data(0)}
    assert numbered == set(view.numbers())


def test_an_empty_network_shows_its_input_and_a_hint_and_exports(view, tmp_path):
    empty = Architecture("empty", (1, 28, 28), 10, [])
    shown(view, empty)
    assert view.numbers() == []
    assert view.placeholder() == PLACEHOLDER
    path = tmp_path / "empty.png"
    view.export(path)
    assert not QImage(str(path)).isNull()

    shown(view, blocks_digits())
    assert view.placeholder() == ""


def test_empty_blocks_and_branches_are_drawn_where_layers_can_go(view):
    architecture = blocks_digits()
    architecture.layers[2].layers = []
    architecture.layers[3].branches[1] = []
    architecture.layers.append(Layer("Parallel", {"merge": "sum"}, branches=[[], [Layer("ReLU")]]))
    shown(view, architecture)
    assert view.numbers() == [number for number, _, _ in architecture.walk()]
    frame, branch = view.box_rect("3"), view.box_rect("8.b2.1")
    assert frame.height() > 60 and inside(view.box_rect("8"), branch)
