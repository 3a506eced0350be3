"""The picture widgets: image conversion, the prediction gallery and the data browser."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QComboBox, QLabel, QPushButton

from tests.ui.drag import drag_event
from workbench.ui.images import ImageCell, scale_for, to_display, to_pixmap
from workbench.ui.views.data_browser import DataBrowser
from workbench.ui.views.gallery import Gallery

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


def _one_hot(guesses, classes: int = len(CLASSES), confidence: float = 0.9) -> np.ndarray:
    """Probabilities putting ``confidence`` on each guess and the rest evenly on the other classes."""
    probabilities = np.full((len(guesses), classes), (1 - confidence) / (classes - 1))
    probabilities[np.arange(len(guesses)), guesses] = confidence
    return probabilities


def _random_set(count: int = 30, classes: int = 4, seed: int = 0):
    """Images, labels and softmax probabilities where about half the guesses are wrong."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count)
    logits = rng.normal(size=(count, classes))
    logits[np.arange(count), labels] += 1.0
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return _images(count), labels, CLASSES[:classes], probabilities


def _every_page(gallery) -> list[int]:
    """The visible indices of all pages from the current one on, in order."""
    shown = gallery.visible_indices()
    while gallery.page() < gallery.page_count():
        gallery.next_page()
        shown += gallery.visible_indices()
    return shown


def _text(gallery, name: str) -> str:
    return gallery.findChild(QLabel, name).text()


def test_captions_and_colours_follow_the_predictions(gallery):
    gallery.set_items(_images(3), [4, 0, 9], CLASSES, _one_hot([6, 0, 9]))
    assert gallery.capacity == 8
    assert gallery.captions() == [
        "true: Coat\npredicted: Shirt",
        "true: T-shirt/top\npredicted: T-shirt/top",
        "true: Ankle boot\npredicted: Ankle boot",
    ]
    assert gallery.caption_colours() == ["wrong", "right", "right"]
    assert gallery.visible_indices() == [0, 1, 2]


def test_cells_beyond_the_items_are_hidden_and_come_back(gallery):
    gallery.set_items(_images(8), list(range(8)), CLASSES, _one_hot(range(8)))
    assert len(gallery.captions()) == 8
    gallery.set_items(_images(2), [1, 2], CLASSES, _one_hot([1, 2]))
    assert len(gallery.captions()) == 2
    gallery.set_items(_images(5), [1] * 5, CLASSES, _one_hot([2] * 5))
    assert gallery.caption_colours() == ["wrong"] * 5


def test_more_items_than_cells_start_with_the_first_ones(gallery):
    gallery.set_items(_images(10), list(range(10)), CLASSES, _one_hot(range(10)))
    assert gallery.visible_indices() == list(range(8)) and gallery.filtered_count() == 10
    assert gallery.captions()[-1] == "true: Sneaker\npredicted: Sneaker"


def test_cells_are_reused_and_a_new_prediction_keeps_the_pixmaps(gallery):
    images, labels, names, probabilities = _random_set()
    gallery.set_items(images, labels, names, probabilities)
    cells = gallery.findChildren(ImageCell)
    keys = [cell.findChildren(QLabel)[0].pixmap().cacheKey() for cell in cells]
    gallery.set_probabilities(probabilities[:, ::-1].copy())
    assert gallery.findChildren(ImageCell) == cells
    assert [cell.findChildren(QLabel)[0].pixmap().cacheKey() for cell in cells] == keys


def test_misclassified_only_shows_exactly_the_wrong_guesses_in_dataset_order(gallery):
    images, labels, names, probabilities = _random_set()
    wrong = np.flatnonzero(probabilities.argmax(axis=1) != labels).tolist()
    assert 8 < len(wrong) < 30
    gallery.set_items(images, labels, names, probabilities)
    gallery.set_filter("misclassified")
    assert gallery.current_filter() == ("misclassified", None)
    assert gallery.filtered_count() == len(wrong)
    assert set(gallery.caption_colours()) == {"wrong"}
    assert _every_page(gallery) == wrong


def test_a_class_filter_shows_exactly_the_images_of_that_true_class(gallery):
    images, labels, names, probabilities = _random_set()
    gallery.set_items(images, labels, names, probabilities)
    gallery.set_filter("class", 2)
    assert _every_page(gallery) == np.flatnonzero(labels == 2).tolist()
    assert all(caption.startswith("true: Pullover\n") for caption in gallery.captions())
    with pytest.raises(ValueError, match="class index"):
        gallery.set_filter("class", 4)
    with pytest.raises(ValueError, match="Unknown filter"):
        gallery.set_filter("wrong ones")


def test_least_confident_first_sorts_by_the_guess_probability_keeping_ties_in_order(gallery):
    confidences = [0.5, 0.9, 0.5, 0.3, 0.9, 0.5, 0.7, 0.3, 0.95, 0.5, 0.6]
    guesses = [index % 10 for index in range(len(confidences))]
    probabilities = np.concatenate([_one_hot([guess], confidence=c) for guess, c in zip(guesses, confidences)])
    gallery.set_items(_images(len(confidences)), guesses, CLASSES, probabilities)
    gallery.set_order("least-confident")
    assert gallery.current_order() == "least-confident"
    assert _every_page(gallery) == sorted(range(len(confidences)), key=lambda i: (confidences[i], i))
    gallery.set_order("most-confident")
    assert _every_page(gallery) == sorted(range(len(confidences)), key=lambda i: (-confidences[i], i))
    gallery.set_order("dataset")
    assert _every_page(gallery) == list(range(len(confidences)))
    with pytest.raises(ValueError, match="Unknown order"):
        gallery.set_order("hardest")


def test_ordering_works_on_the_filtered_items(gallery):
    images, labels, names, probabilities = _random_set(seed=3)
    gallery.set_items(images, labels, names, probabilities)
    gallery.set_filter("misclassified")
    gallery.set_order("least-confident")
    wrong = np.flatnonzero(probabilities.argmax(axis=1) != labels)
    expected = wrong[np.argsort(probabilities.max(axis=1)[wrong], kind="stable")].tolist()
    assert _every_page(gallery) == expected


def test_sorting_ten_thousand_items_finds_the_least_confident(qtbot):
    gallery = Gallery()
    qtbot.addWidget(gallery)
    images, labels, names, probabilities = _random_set(count=10_000, classes=10, seed=7)
    gallery.set_items(images, labels, names, probabilities)
    gallery.set_order("least-confident")
    assert gallery.visible_indices() == np.argsort(probabilities.max(axis=1), kind="stable")[:15].tolist()


def test_pages_cover_every_filtered_item_once_and_stop_at_the_ends(gallery):
    images, labels, names, probabilities = _random_set(count=20)
    gallery.set_items(images, labels, names, probabilities)
    previous, following = (gallery.findChild(QPushButton, name) for name in ("previousPage", "nextPage"))
    assert (gallery.page(), gallery.page_count()) == (1, 3)
    assert not previous.isEnabled() and following.isEnabled()
    gallery.previous_page()
    assert gallery.page() == 1
    assert _every_page(gallery) == list(range(20))
    assert _text(gallery, "pageLabel") == "Showing 17–20 of 20 (page 3 of 3)"
    assert previous.isEnabled() and not following.isEnabled()
    gallery.next_page()
    assert gallery.page() == 3 and gallery.visible_indices() == [16, 17, 18, 19]
    gallery.previous_page()
    assert gallery.visible_indices() == list(range(8, 16))


def test_changing_the_filter_or_order_starts_again_at_page_one(gallery):
    images, labels, names, probabilities = _random_set()
    gallery.set_items(images, labels, names, probabilities)
    gallery.next_page()
    gallery.set_order("least-confident")
    assert gallery.page() == 1
    gallery.next_page()
    gallery.set_filter("all")
    assert gallery.page() == 1


def test_tooltips_list_the_top_three_classes_most_probable_first(gallery):
    probabilities = np.array(
        [
            [0.612, 0.0, 0.05, 0.0, 0.0, 0.018, 0.301, 0.0, 0.019, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        ]
    )
    gallery.set_items(_images(2, size=32, channels=3), [6, 9], CLASSES, probabilities)
    assert gallery.tooltips()[0] == "True: Shirt\nTop 3:\n  T-shirt/top 61.2%\n  Shirt 30.1%\n  Pullover 5.0%"
    # Ties among the zeros go to the lower class.
    assert gallery.tooltips()[1] == "True: Ankle boot\nTop 3:\n  Ankle boot 100.0%\n  T-shirt/top 0.0%\n  Trouser 0.0%"
    assert gallery.findChildren(ImageCell)[0].toolTip() == gallery.tooltips()[0]


def test_with_two_classes_the_tooltip_lists_two(gallery):
    gallery.set_items(_images(1), [1], ("cat", "dog"), np.array([[0.25, 0.75]]))
    assert gallery.tooltips() == ["True: dog\nTop 2:\n  dog 75.0%\n  cat 25.0%"]


def test_new_probabilities_apply_the_filter_again_on_the_same_page(gallery):
    labels = np.arange(20) % 4
    guesses = labels.copy()
    guesses[[1, 5, 9, 10, 13, 14, 17, 18, 19]] = 0
    gallery.set_items(_images(20), labels, CLASSES[:4], _one_hot(guesses, classes=4))
    gallery.set_filter("misclassified")
    assert gallery.filtered_count() == 9
    gallery.next_page()
    assert gallery.visible_indices() == [19]
    guesses[[2, 3]] = 0
    gallery.set_probabilities(_one_hot(guesses, classes=4))
    assert gallery.page() == 2 and gallery.visible_indices() == [17, 18, 19]
    gallery.set_probabilities(_one_hot(labels, classes=4))
    assert gallery.page() == 1 and gallery.visible_indices() == []
    gallery.set_filter("all")
    gallery.set_probabilities(_one_hot(guesses, classes=4))
    assert gallery.caption_colours()[:4] == ["right", "wrong", "wrong", "wrong"]
    with pytest.raises(ValueError, match="Probabilities must be"):
        gallery.set_probabilities(np.zeros((20, 5)))


def test_no_misclassified_images_says_so(gallery):
    gallery.set_items(_images(4), [0, 1, 2, 3], CLASSES, _one_hot([0, 1, 2, 3]))
    message = gallery.findChild(QLabel, "emptyMessage")
    assert message.isHidden()
    gallery.set_filter("misclassified")
    assert gallery.visible_indices() == [] and gallery.captions() == []
    assert not message.isHidden()
    assert message.text() == "No misclassified images — every image is predicted right"
    assert _text(gallery, "pageLabel") == "Nothing to show"
    gallery.set_filter("class", 7)
    assert message.text() == "No images of class Sneaker here"


def test_without_predictions_captions_are_neutral_and_misclassified_offers_nothing(gallery):
    gallery.set_items(_images(3, size=8), [3, 5, 3], CLASSES)
    assert gallery.captions() == ["true: Dress", "true: Sandal", "true: Dress"]
    assert gallery.caption_colours() == ["unknown"] * 3
    assert gallery.tooltips()[0] == "True: Dress\nNot predicted yet"
    show = gallery.findChild(QComboBox, "showFilter")
    order = gallery.findChild(QComboBox, "sortOrder")
    assert not show.model().item(1).isEnabled()
    assert not order.model().item(1).isEnabled() and not order.model().item(2).isEnabled()
    assert _text(gallery, "summary") == "All images: 3 · not predicted yet"
    gallery.set_filter("misclassified")
    assert gallery.visible_indices() == [] and gallery.filtered_count() == 0
    assert _text(gallery, "emptyMessage").startswith("No predictions yet")
    gallery.set_probabilities(_one_hot([3, 4, 4]))
    assert gallery.visible_indices() == [1, 2] and show.model().item(1).isEnabled()


def test_without_predictions_a_confidence_order_keeps_dataset_order(gallery):
    gallery.set_items(_images(3), [0, 1, 2], CLASSES, _one_hot([0, 1, 2]))
    gallery.set_order("most-confident")
    gallery.set_probabilities(None)
    assert gallery.visible_indices() == [0, 1, 2]
    assert _text(gallery, "summary") == "All images: 3 · not predicted yet, so in dataset order"


def test_new_items_keep_the_choices_that_still_make_sense(gallery):
    images, labels, names, probabilities = _random_set(classes=4)
    gallery.set_items(images, labels, names, probabilities)
    gallery.set_filter("class", 3)
    gallery.set_order("least-confident")
    gallery.next_page()
    gallery.set_items(images, labels, names, probabilities)
    assert gallery.current_filter() == ("class", 3) and gallery.current_order() == "least-confident"
    assert gallery.page() == 1
    gallery.set_items(_images(3), [0, 1, 2], ("a", "b", "c"), _one_hot([0, 1, 1], classes=3))
    assert gallery.current_filter() == ("all", None) and gallery.current_order() == "least-confident"
    show = gallery.findChild(QComboBox, "showFilter")
    assert [show.itemText(i) for i in range(show.count())] == [
        "All images",
        "Misclassified only",
        "Class: a",
        "Class: b",
        "Class: c",
    ]
    assert show.currentIndex() == 0
    assert gallery.visible_indices() == [0, 1, 2]


def test_the_controls_drive_the_view(gallery, qtbot):
    images, labels, names, probabilities = _random_set()
    gallery.set_items(images, labels, names, probabilities)
    show = gallery.findChild(QComboBox, "showFilter")
    assert [show.itemText(i) for i in range(show.count())] == [
        "All images",
        "Misclassified only",
        "Class: T-shirt/top",
        "Class: Trouser",
        "Class: Pullover",
        "Class: Dress",
    ]
    show.setCurrentIndex(1)
    assert gallery.visible_indices() == np.flatnonzero(probabilities.argmax(axis=1) != labels)[:8].tolist()
    show.setCurrentIndex(3)
    assert gallery.current_filter() == ("class", 1)
    assert gallery.visible_indices() == np.flatnonzero(labels == 1)[:8].tolist()
    show.setCurrentIndex(0)
    order = gallery.findChild(QComboBox, "sortOrder")
    assert [order.itemText(i) for i in range(order.count())] == [
        "Dataset order",
        "Least confident first",
        "Most confident first",
        "Most wrong first (highest loss)",
    ]
    order.setCurrentIndex(3)  # fastai's top losses: -log p(true class), highest first
    losses = -np.log(probabilities[np.arange(len(labels)), labels])
    assert gallery.visible_indices() == np.argsort(-losses, kind="stable")[:8].tolist()
    order.setCurrentIndex(1)
    assert gallery.visible_indices() == np.argsort(probabilities.max(axis=1), kind="stable")[:8].tolist()
    qtbot.mouseClick(gallery.findChild(QPushButton, "nextPage"), Qt.MouseButton.LeftButton)
    assert gallery.visible_indices() == np.argsort(probabilities.max(axis=1), kind="stable")[8:16].tolist()
    qtbot.mouseClick(gallery.findChild(QPushButton, "previousPage"), Qt.MouseButton.LeftButton)
    assert gallery.page() == 1
    gallery.set_filter("class", 2)
    gallery.set_order("most-confident")
    assert (show.currentIndex(), order.currentIndex()) == (4, 2)


def test_the_summary_counts_the_filter_and_scores_it(gallery):
    labels = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    guesses = [0, 1, 2, 3, 1, 1, 2, 0, 0, 0]
    gallery.set_items(_images(10), labels, CLASSES[:4], _one_hot(guesses, classes=4))
    assert _text(gallery, "summary") == "All images: 10 · 7/10 right (70.0%)"
    assert _text(gallery, "pageLabel") == "Showing 1–8 of 10 (page 1 of 2)"
    gallery.set_filter("misclassified")
    assert _text(gallery, "summary") == "Misclassified: 3 of 10 (30.0%)"
    gallery.set_filter("class", 0)
    assert _text(gallery, "summary") == "Class T-shirt/top: 3 of 10 · 2/3 right (66.7%)"
    gallery.set_items(np.zeros((1_200, 2, 2, 1), np.uint8), [0] * 1_200, CLASSES[:4])
    assert _text(gallery, "summary") == "Class T-shirt/top: 1,200 of 1,200 · not predicted yet"


def test_an_empty_set_says_so(gallery):
    gallery.set_items(np.zeros((0, 1, 1, 1), np.uint8), [], [])
    assert gallery.captions() == [] and gallery.filtered_count() == 0
    assert _text(gallery, "emptyMessage") == "No images to show"


def test_mismatched_inputs_are_refused(gallery):
    with pytest.raises(ValueError, match="differ in number"):
        gallery.set_items(_images(3), [1, 2], CLASSES)
    with pytest.raises(ValueError, match="Labels must lie in"):
        gallery.set_items(_images(2), [1, 4], ("a", "b", "c", "d"))
    with pytest.raises(ValueError, match="Probabilities must be"):
        gallery.set_items(_images(2), [1, 2], CLASSES, np.zeros((2, 9)))
    assert gallery.filtered_count() == 0


def test_the_header_shows_the_callers_text(gallery):
    gallery.set_header("After epoch 3 — validation accuracy 87%")
    assert _text(gallery, "header") == "After epoch 3 — validation accuracy 87%"


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


def _drag(urls: list[QUrl], text: str | None = None) -> QMimeData:
    mime = QMimeData()
    mime.setUrls(urls)
    if text is not None:
        mime.setText(text)
    return mime


def _drag_and_drop(widget, mime: QMimeData) -> tuple[bool, bool]:
    """Send a real drag-enter then drop of ``mime`` to ``widget``; whether each event was accepted."""
    position = QPointF(10, 10)
    enter = drag_event(QDragEnterEvent, position, Qt.DropAction.CopyAction, mime)
    QApplication.sendEvent(widget, enter)
    drop = QDropEvent(
        position, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, drop)
    return enter.isAccepted(), drop.isAccepted()


def test_dropping_files_announces_exactly_the_images_in_order(gallery, tmp_path):
    assert gallery.acceptDrops()
    names = ["shirt.png", "notes.txt", "BOOT.JPG", "scan.jpeg", "archive.png.zip", "x.Bmp", "anim.gif", "photo.webp"]
    urls = [QUrl.fromLocalFile(str(tmp_path / name)) for name in names]
    urls.insert(1, QUrl("https://example.com/remote.png"))  # not a local file
    received = []
    gallery.imagesDropped.connect(received.append)
    assert _drag_and_drop(gallery, _drag(urls)) == (True, True)
    assert received == [
        [tmp_path / name for name in ("shirt.png", "BOOT.JPG", "scan.jpeg", "x.Bmp", "anim.gif", "photo.webp")]
    ]
    assert all(isinstance(path, Path) for path in received[0])


def test_a_drag_without_image_files_is_refused(gallery, qtbot, tmp_path):
    for mime in (
        _drag([QUrl.fromLocalFile(str(tmp_path / "notes.txt")), QUrl.fromLocalFile(str(tmp_path))]),
        _drag([QUrl("https://example.com/remote.png")]),
        _drag([], text="/tmp/shirt.png"),
    ):
        with qtbot.assertNotEmitted(gallery.imagesDropped):
            assert _drag_and_drop(gallery, mime) == (False, False)


def test_a_drop_on_an_image_cell_reaches_the_gallery(gallery, tmp_path):
    gallery.set_items(_images(2), [0, 1], CLASSES)
    cell = gallery.findChildren(ImageCell)[0]
    assert not cell.acceptDrops()
    received = []
    gallery.imagesDropped.connect(received.append)
    assert _drag_and_drop(cell, _drag([QUrl.fromLocalFile(str(tmp_path / "a.png"))])) == (True, True)
    assert received == [[tmp_path / "a.png"]]


def test_unlabelled_images_show_the_guess_alone_and_are_never_counted_wrong(qtbot):
    gallery = Gallery(rows=1, columns=3)
    qtbot.addWidget(gallery)
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    gallery.set_items(_images(3), [-1, -1, 0], ("cat", "dog", "bird"), probabilities)
    assert gallery.captions() == ["guess: cat\n70% sure", "guess: bird\n60% sure", "true: cat\npredicted: dog"]
    assert gallery.caption_colours() == ["unknown", "unknown", "wrong"]
    assert gallery.tooltips()[1] == "Not labelled\nTop 3:\n  bird 60.0%\n  dog 30.0%\n  cat 10.0%"
    gallery.set_filter("misclassified")
    assert gallery.visible_indices() == [2]
    gallery.set_items(_images(2), [-1, -1], ("cat", "dog", "bird"), probabilities[:2])
    gallery.set_filter("all")
    assert gallery.findChild(QLabel, "summary").text().endswith("not labelled: the network's guesses")
    with pytest.raises(ValueError, match="not labelled"):
        gallery.set_items(_images(1), [-2], ("cat", "dog", "bird"))
