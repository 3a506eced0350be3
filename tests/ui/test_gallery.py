"""The picture widgets: image conversion, the prediction gallery and the data browser."""

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton

from workbench.ui.data_browser import DataBrowser
from workbench.ui.gallery import Gallery
from workbench.ui.images import ImageCell, scale_for, to_display, to_pixmap

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _images(count: int, size: int = 28, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(count)
    return rng.integers(0, 256, (count, size, size, channels), dtype=np.uint8)


def test_to_display_undoes_the_normalisation():
    normalised = torch.tensor([-1.0, -0.2, 0.0, 1.0, 3.0]).view(1, 1, 1, 5)
    shown = to_display(normalised, (0.5,), (0.5,))
    assert shown.shape == (1, 1, 5, 1) and shown.dtype == np.uint8
    assert shown[0, 0, :, 0].tolist() == [0, 102, 128, 255, 255]
    assert normalised.flatten().tolist() == pytest.approx([-1.0, -0.2, 0.0, 1.0, 3.0])


def test_to_display_uses_each_channels_mean_and_std():
    normalised = np.zeros((2, 3, 4, 5), dtype=np.float32)
    shown = to_display(normalised, (0.2, 0.4, 0.6), (0.1, 0.1, 0.1))
    assert shown.shape == (2, 4, 5, 3) and shown.flags.c_contiguous
    assert shown[1, 3, 4].tolist() == [51, 102, 153]


@pytest.mark.parametrize("channels", [1, 3])
def test_to_pixmap_enlarges_without_blurring(qapp, channels):
    image = np.zeros((28, 28, channels), dtype=np.uint8)
    image[0, 0] = 255
    image[0, 1] = 40
    pixmap = to_pixmap(image, 3)
    assert (pixmap.width(), pixmap.height()) == (84, 84)
    picture = pixmap.toImage()
    top_left = {picture.pixel(x, y) for x in range(3) for y in range(3)}
    neighbour = {picture.pixel(x, y) for x in range(3, 6) for y in range(3)}
    assert len(top_left) == 1 and len(neighbour) == 1 and top_left != neighbour


def test_to_pixmap_refuses_two_channels(qapp):
    with pytest.raises(ValueError, match="1 or 3 channels"):
        to_pixmap(np.zeros((4, 4, 2), dtype=np.uint8), 2)


def test_small_images_are_enlarged_more():
    assert scale_for(28, 28, 84) == 3
    assert scale_for(8, 8, 84) == 10
    assert scale_for(32, 32, 84) == 3


@pytest.fixture
def gallery(qtbot):
    widget = Gallery(rows=2, columns=4)
    qtbot.addWidget(widget)
    return widget


def test_captions_and_colours_follow_the_predictions(gallery):
    gallery.show_items(_images(3), [4, 0, 9], [6, 0, 9], CLASSES, [0.6, 0.9, 0.99])
    assert gallery.capacity == 8
    assert gallery.captions() == ["true: Coat\npredicted: Shirt", "true: T-shirt/top\npredicted: T-shirt/top",
                                  "true: Ankle boot\npredicted: Ankle boot"]
    assert gallery.caption_colours() == ["wrong", "right", "right"]


def test_cells_beyond_the_items_are_hidden_and_come_back(gallery):
    gallery.show_items(_images(8), list(range(8)), list(range(8)), CLASSES)
    assert len(gallery.captions()) == 8
    gallery.show_items(_images(2), [1, 2], [1, 2], CLASSES)
    assert len(gallery.captions()) == 2
    gallery.show_items(_images(5), [1] * 5, [2] * 5, CLASSES)
    assert gallery.caption_colours() == ["wrong"] * 5


def test_more_items_than_cells_shows_the_first_ones(gallery):
    gallery.show_items(_images(10), list(range(10)), list(range(10)), CLASSES)
    assert len(gallery.captions()) == 8
    assert gallery.captions()[-1] == "true: Sneaker\npredicted: Sneaker"


def test_without_predictions_only_the_truth_is_shown(gallery):
    gallery.show_items(_images(2, size=8), [3, 5], None, CLASSES)
    assert gallery.captions() == ["true: Dress", "true: Sandal"]
    assert gallery.caption_colours() == ["unknown", "unknown"]


def test_tooltips_give_the_probability(gallery):
    gallery.show_items(_images(1, size=32, channels=3), [4], [6], CLASSES, [0.62])
    cell = gallery.findChildren(ImageCell)[0]
    assert cell.toolTip() == "True: Coat\nPredicted: Shirt (62% probability)"


def test_mismatched_lengths_are_refused(gallery):
    with pytest.raises(ValueError, match="differ in number"):
        gallery.show_items(_images(3), [1, 2, 3], [1, 2], CLASSES)


def test_the_header_shows_the_callers_text(gallery):
    gallery.set_header("Validation images — 27/32 right")
    assert gallery.findChild(QLabel, "header").text() == "Validation images — 27/32 right"


def test_next_batch_button_emits_the_signal(gallery, qtbot):
    with qtbot.waitSignal(gallery.nextBatchRequested, timeout=1000):
        qtbot.mouseClick(gallery.findChild(QPushButton, "nextBatch"), Qt.MouseButton.LeftButton)


def _child(browser, kind, name):
    return browser.findChild(kind, name)


@pytest.fixture
def browser(qtbot):
    widget = DataBrowser(rows=2, columns=5)
    qtbot.addWidget(widget)
    labels = np.arange(23) % 10
    widget.set_data(_images(23), labels, CLASSES, "Fashion-MNIST training images")
    return widget


def test_pages_cover_the_images_and_stop_at_the_ends(browser):
    assert (browser.page(), browser.page_count()) == (1, 3)
    assert browser.shown_labels() == list(CLASSES)
    assert not _child(browser, QPushButton, "previousPage").isEnabled()
    browser.previous_page()
    assert browser.page() == 1
    browser.next_page()
    browser.next_page()
    assert browser.page() == 3
    assert browser.shown_labels() == ["T-shirt/top", "Trouser", "Pullover"]
    assert _child(browser, QLabel, "pageLabel").text() == "Page 3 of 3 (images 21–23 of 23)"
    assert not _child(browser, QPushButton, "nextPage").isEnabled()
    browser.next_page()
    assert browser.page() == 3
    browser.previous_page()
    assert browser.page() == 2


def test_the_class_filter_shows_one_class_from_page_one(browser):
    browser.next_page()
    browser.set_class_filter(2)
    assert (browser.page(), browser.page_count()) == (1, 1)
    assert browser.shown_labels() == ["Pullover"] * 3
    assert _child(browser, QComboBox, "classFilter").currentText() == "Pullover"
    assert _child(browser, QLabel, "pageLabel").text() == "Page 1 of 1 (images 1–3 of 3 Pullover)"
    _child(browser, QComboBox, "classFilter").setCurrentIndex(0)
    assert browser.page_count() == 3 and len(browser.shown_labels()) == 10


def test_new_data_starts_again_at_page_one(browser):
    browser.next_page()
    browser.set_class_filter(1)
    browser.set_data(_images(4), [0, 1, 0, 1], ("zero", "one"), "Tiny")
    assert (browser.page(), browser.page_count()) == (1, 1)
    assert browser.shown_labels() == ["zero", "one", "zero", "one"]
    assert _child(browser, QComboBox, "classFilter").currentText() == "All classes"


def test_a_class_without_images_says_so(browser):
    browser.set_data(_images(2), [0, 0], ("Coat", "Bag"), "Tiny")
    browser.set_class_filter(1)
    assert browser.shown_labels() == [] and browser.page_count() == 1
    assert _child(browser, QLabel, "pageLabel").text() == "No Bag images"
