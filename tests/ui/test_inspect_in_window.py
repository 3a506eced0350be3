"""The Inspect tab in the real window: opened from the gallery and the data browser, following a run while in
sight and idle while hidden, one unit's numbers on a click, and the alarms above the tabs."""

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QCheckBox, QLabel, QPushButton

from tests.helpers import train_in_window
from workbench.core.architecture import validate
from workbench.core.inspect.attribution import attribute, black_pixel
from workbench.ui.images import ImageCell
from workbench.ui.views.inspect_view import UnitBars


def _cells(widget):
    return [cell for cell in widget.findChildren(ImageCell) if not cell.isHidden()]


def _inspected(qtbot, window, timeout=20_000):
    qtbot.waitUntil(
        lambda: window.session.inspector.latest is not None and not window.session.inspector.busy, timeout=timeout
    )
    return window.session.inspector.latest


def test_a_double_click_in_the_gallery_inspects_that_image(qtbot, window):
    window.show_tab("training")
    gallery = window.gallery
    qtbot.waitUntil(lambda: len(_cells(gallery)) > 3 and not window.binding.subset_timer.isActive())
    qtbot.wait(50)  # the new validation subset of the fixture's sizes is drawn
    position = 3
    index = gallery.visible_indices()[position]
    qtbot.mouseDClick(_cells(gallery)[position], Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.inspect_view
    shown = _inspected(qtbot, window)
    session = window.session
    np.testing.assert_array_equal(shown.inspection.image, session.gallery.images[index].numpy())
    assert shown.subject.label == int(session.gallery.labels[index])
    assert shown.inspection.target == shown.subject.label  # the true class is sent back
    view = window.inspect_view
    assert len(view.layer_widgets) == len(window.session.architecture.layers)
    fitted = [row.output_shape for row in validate(shown.architecture).layers]
    assert [layer.output_shape for layer in shown.inspection.layers] == fitted
    assert f"image {index + 1:,}" in view.source.text()
    assert view.loss.text().startswith("Loss for ")
    assert not view.image.pixmap().isNull()
    assert view.status.isHidden()

    # a map with nothing above 0 (Grad-CAM does that for some images) is said, not drawn as a blank
    view.show_inspected(dataclasses.replace(shown, attribution=np.zeros_like(shown.attribution)))
    assert view.status.isVisibleTo(view)
    assert view.status.text().startswith("Gradient saliency found nothing that counted for")


def test_clicking_a_unit_shows_its_sum_in_numbers(qtbot, window):
    window.show_tab("data")
    qtbot.waitUntil(lambda: len(_cells(window.data_browser)) > 0)
    qtbot.mouseDClick(_cells(window.data_browser)[0], Qt.MouseButton.LeftButton)
    shown = _inspected(qtbot, window)
    assert shown.subject.source.endswith("training image 1")
    bars = window.inspect_view.findChildren(UnitBars)
    assert bars, "a Linear layer's units are drawn as bars"
    first = bars[0]
    unit = first.units // 2
    x = int((unit + 0.5) * first.pixmap().width() / first.units)
    qtbot.mouseClick(first, Qt.MouseButton.LeftButton, pos=QPoint(x, 10))
    text = window.inspect_view.unit.text()
    output = shown.inspection.layers[first.layer - 1].output.ravel()[unit]
    assert f"total y{unit} = {output:+.4f}" in text
    assert "then ReLU" in text
    assert not window.inspect_view.unit_weights.pixmap().isNull()  # the first Linear reads the pixels


def test_the_inspection_follows_a_run_while_in_sight_and_waits_while_hidden(qtbot, window, tmp_path):
    window.show_tab("training")
    qtbot.waitUntil(lambda: len(_cells(window.gallery)) > 0)
    qtbot.mouseDClick(_cells(window.gallery)[0], Qt.MouseButton.LeftButton)
    _inspected(qtbot, window)
    measured = []
    window.session.inspector.changed.connect(lambda inspected: measured.append(inspected.network_label))
    window.panel.epochs.setValue(3)
    assert train_in_window(qtbot, window) == "finished"
    qtbot.waitUntil(lambda: not window.session.inspector.busy)
    assert any(label.startswith("After epoch") for label in measured), measured
    assert window.session.inspector.latest.network_label.startswith("seed-relu-mlp (")

    window.show_tab("runs")
    measured.clear()
    window.session.runs_out = tmp_path / "second run"
    assert train_in_window(qtbot, window) == "finished"
    qtbot.wait(200)
    assert measured == [] and window.session.inspector.stale  # nobody looked, nothing was computed
    window.show_tab("inspect")
    _inspected(qtbot, window)
    qtbot.waitUntil(lambda: len(measured) == 1)
    assert not window.session.inspector.stale


def test_a_six_deep_sigmoid_network_raises_the_vanishing_alarm_with_a_link(qtbot, window):
    window.load_preset("seed-sigmoidnet-6")
    window.panel.optimizer.setCurrentIndex(window.panel.optimizer.findData("sgd"))
    assert train_in_window(qtbot, window) == "finished"
    alarms = window.alarms
    assert alarms.isVisible()
    assert "the error signal vanishes on its way back" in alarms.text()
    assert "href='tab:Gradients'" in alarms.text()
    alarms.linkActivated.emit("tab:Gradients")
    assert window.tabs.currentWidget() is window.gradient_plots


def test_an_image_the_network_cannot_read_is_refused_in_words(qtbot, window, boxes):
    window.load_preset("seed-relu-mlp")
    import torch

    with pytest.raises(Exception) as refused:
        window.session.inspect(torch.zeros(3, 5, 5), 0, "odd image")
    assert "reads 1×8×8 images, and this one is 3×5×5" in str(refused.value)
    assert isinstance(window.inspect_view.status, QLabel)


def _pixels(cell):
    image = cell.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return (
        data.reshape(image.height(), image.bytesPerLine())[:, : image.width() * 3]
        .reshape(image.height(), image.width(), 3)
        .copy()
    )  # the image's buffer goes with it


def test_show_what_it_looked_at_lays_each_guess_s_map_over_the_page(qtbot, window):
    window.show_tab("training")
    gallery = window.gallery
    qtbot.waitUntil(lambda: len(_cells(gallery)) == gallery.capacity and not window.binding.subset_timer.isActive())
    qtbot.wait(50)
    plain = _pixels(_cells(gallery)[0])
    assert (plain[:, :, 0] == plain[:, :, 1]).all(), "a digit is drawn in grey"
    box = gallery.findChild(QCheckBox, "showLookedAt")
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    assert gallery.looked_at_shown()
    qtbot.waitUntil(lambda: gallery.looked_at_indices() == gallery.visible_indices(), timeout=20_000)
    overlaid = _pixels(_cells(gallery)[0])
    assert (overlaid[:, :, 0].astype(int) - overlaid[:, :, 2]).max() > 60, "the map is laid over in red to yellow"
    assert box.text() == "Show what it looked at (Gradient saliency)"

    # the map is the saliency of the guess, for the network on show
    session = window.session
    first = gallery.visible_indices()[0]
    model, architecture = session.inspector.network
    guess = int(session.gallery.probabilities[first].argmax())
    info = session.dataset.info
    expected = attribute(
        model,
        architecture,
        session.gallery.images[first : first + 1],
        [guess],
        "saliency",
        black_pixel(info.mean, info.std),
    )[0]
    np.testing.assert_allclose(gallery._looked_at[first], expected, rtol=1e-4, atol=1e-6)

    # the next page asks for its own maps
    qtbot.mouseClick(gallery.findChild(QPushButton, "nextPage"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gallery.looked_at_indices() == gallery.visible_indices(), timeout=20_000)
    assert first not in gallery.visible_indices()

    # another method chosen on the Inspect tab redraws the page's maps with it
    qtbot.mouseDClick(_cells(gallery)[0], Qt.MouseButton.LeftButton)
    _inspected(qtbot, window)
    view = window.inspect_view
    view.method.setCurrentIndex(view.method.findData("occlusion"))
    view.method.activated.emit(view.method.currentIndex())
    window.show_tab("training")
    qtbot.waitUntil(lambda: box.text() == "Show what it looked at (Occlusion)", timeout=20_000)
    assert gallery.looked_at_indices() == gallery.visible_indices()

    # unticked, the images are plain again
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    cell_pixels = _pixels(_cells(gallery)[0])
    assert (cell_pixels[:, :, 0] == cell_pixels[:, :, 1]).all()
    assert box.text() == "Show what it looked at"


def test_show_what_it_looked_at_without_a_network_says_why_and_unticks(qtbot, window):
    window.show_tab("training")
    gallery = window.gallery
    qtbot.waitUntil(lambda: len(_cells(gallery)) > 0 and not window.binding.subset_timer.isActive())
    window.session.inspector.set_network(None, window.session.architecture, (), "")
    gallery.show_looked_at(True)
    assert not gallery.looked_at_shown()
    assert "Cannot show what the network looked at: There is no network" in window.statusBar().currentMessage()
