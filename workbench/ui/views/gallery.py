"""A paged grid of images with their true and predicted labels, green when the network was right and red when
wrong; it filters (all / misclassified / one class) and sorts (by confidence) every item of a set itself.
Image files dropped on it are announced by its ``imagesDropped`` signal, for the window to predict them. While it is
out of sight (another tab in front), the page is drawn when it is next shown.

"Show what it looked at" lays an attribution map over every image shown (see :meth:`Gallery.set_looked_at`): the
gallery asks for the maps of the page it shows with ``lookedAtWanted`` and forgets them when its items or their
guesses change (a new network, a new epoch)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPixmap, QShowEvent, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.inspect.attribution import METHOD_TITLES
from workbench.core.inspect.pictures import overlay
from workbench.ui.images import ImageCell, scale_for, to_pixmap
from workbench.ui.views.sight import out_of_sight

IMAGE_SIZE = 84
TOP_CLASSES = 3
DROPPABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

FILTERS = ("all", "misclassified", "class")
ORDERS = ("dataset", "least-confident", "most-confident", "most-wrong")
_ORDER_LABELS = ("Dataset order", "Least confident first", "Most confident first", "Most wrong first (highest loss)")
_FIXED_FILTER_LABELS = ("All images", "Misclassified only")
_NEEDS_PREDICTIONS = "Needs the network's predictions"
LOOKED_AT = "Show what it looked at"


UNLABELLED = -1
"""The label of an image whose class is not known."""


class Gallery(QWidget):
    """``rows`` × ``columns`` captioned images of a set, with a header, a summary line and controls.

    :meth:`set_items` hands over every item of a set; the gallery filters, sorts and pages them itself, and
    :meth:`set_probabilities` re-captions the same items with new predictions. The cells are created once;
    pixmaps are made only for the items on the page shown. Previous/Next stop at the ends (no wrap-around).

    Dropping files on it emits :attr:`imagesDropped` with the paths of those that are images (by suffix, see
    :data:`DROPPABLE_SUFFIXES`); a drag carrying no image file is refused.
    """

    imagesDropped = Signal(list)
    """The local image files (``list[Path]``) just dropped on the gallery, in the order of the drag."""
    inspectRequested = Signal(int)
    """Double-click or "Inspect" on an image: its index into the items given to :meth:`set_items`."""
    lookedAtWanted = Signal(int, list)
    """"Show what it looked at" is on and the page shows images without their maps: the key of the items
    (:meth:`items_key`) and those images' indices, for :meth:`set_looked_at`."""

    def __init__(self, rows: int = 3, columns: int = 5, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self._images = np.zeros((0, 1, 1, 1), dtype=np.uint8)
        self._labels = np.zeros(0, dtype=np.int64)
        self._class_names: list[str] = []
        self._probabilities: np.ndarray | None = None
        self._predicted: np.ndarray | None = None
        self._confidence: np.ndarray | None = None
        self._losses: np.ndarray | None = None
        self._filter_kind = "all"
        self._filter_class: int | None = None
        self._order = "dataset"
        self._shown = np.zeros(0, dtype=np.int64)
        self._page = 1
        self._scale = 1
        self._pixmaps: dict[int, QPixmap] = {}
        self._page_due = False  # the page shown is out of date: drawn when the gallery comes into sight
        self._items_key = 0  # changes with the items or their guesses: maps measured before are dropped
        self._looked_at: dict[int, np.ndarray] = {}  # item index -> its attribution map (H×W)
        self._looked_at_method = ""

        self._header = QLabel()
        self._header.setObjectName("header")
        self._header.setStyleSheet("QLabel { font-weight: bold; }")
        self._summary = QLabel(wordWrap=True)  # wraps rather than widen the gallery past its scroll area
        self._summary.setObjectName("summary")
        self._show_filter = QComboBox()
        self._show_filter.setObjectName("showFilter")
        self._show_filter.setToolTip("Which images to show")
        self._show_filter.addItems(_FIXED_FILTER_LABELS)
        self._show_filter.currentIndexChanged.connect(self._filter_chosen)
        self._sort_order = QComboBox()
        self._sort_order.setObjectName("sortOrder")
        self._sort_order.setToolTip(
            "Confidence is the probability the network gives its guess: the least confident images are the hardest ones"
        )
        self._sort_order.addItems(_ORDER_LABELS)
        self._sort_order.currentIndexChanged.connect(lambda index: self.set_order(ORDERS[index]))
        self._previous = QPushButton("◀ Previous")
        self._previous.setObjectName("previousPage")
        self._next = QPushButton("Next ▶")
        self._next.setObjectName("nextPage")
        self._previous.clicked.connect(self.previous_page)
        self._next.clicked.connect(self.next_page)
        self._looked_at_box = QCheckBox(LOOKED_AT)
        self._looked_at_box.setObjectName("showLookedAt")
        self._looked_at_box.setToolTip(
            "Lay over each image the pixels that counted most for the network's guess (yellow: most), by the "
            "method chosen on the Inspect tab"
        )
        self._looked_at_box.toggled.connect(self._looked_at_toggled)
        self._page_label = QLabel()
        self._page_label.setObjectName("pageLabel")
        self._empty = QLabel(wordWrap=True)
        self._empty.setObjectName("emptyMessage")
        self._cells = [ImageCell(caption_lines=2, inspectable=True) for _ in range(rows * columns)]
        for position, cell in enumerate(self._cells):
            cell.inspectRequested.connect(lambda position=position: self._inspect_cell(position))
        self._build_layout(columns)
        self._update_prediction_entries()
        self._apply(keep_page=False)

    def _build_layout(self, columns: int) -> None:
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Show:"))
        controls.addWidget(self._show_filter)
        controls.addWidget(QLabel("Order:"))
        controls.addWidget(self._sort_order)
        controls.addWidget(self._looked_at_box)
        controls.addStretch(1)
        pages = QHBoxLayout()  # under the choices, so a narrow gallery never hides the page it is on
        pages.addWidget(self._summary, 1)
        pages.addWidget(self._previous)
        pages.addWidget(self._page_label)
        pages.addWidget(self._next)
        grid = QGridLayout()
        grid.setSpacing(6)
        for index, cell in enumerate(self._cells):
            grid.addWidget(cell, *divmod(index, columns))
            cell.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self._header)
        layout.addLayout(controls)
        layout.addLayout(pages)
        layout.addWidget(self._empty)
        layout.addLayout(grid)
        layout.addStretch(1)

    # ---- data ---------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """How many images the grid shows at once (rows × columns)."""
        return len(self._cells)

    def set_items(
        self,
        images_hwc_uint8: np.ndarray,
        labels: Sequence[int],
        class_names: Sequence[str],
        probabilities: np.ndarray | None = None,
    ) -> None:
        """Show all items of a set: uint8 images ``(N, H, W, C)`` (C 1 or 3), their true ``labels`` and,
        if there are predictions, their class ``probabilities`` ``(N, K)``; from the first page.

        A label of :data:`UNLABELLED` marks an image whose class nobody knows (e.g. one dropped on the
        gallery): its caption gives the guess alone, in a neutral colour, and it is never counted right or wrong.

        The filter and order chosen are kept unless a class filter points past the new classes, in which case
        the filter goes back to all images. Without predictions captions give the true class only.
        """
        images = np.asarray(images_hwc_uint8)
        label_array = np.asarray(labels, dtype=np.int64).reshape(-1)
        if images.ndim != 4 or len(images) != len(label_array):
            raise ValueError(f"Images (N, H, W, C) and labels differ in number: {images.shape} and {len(label_array)}.")
        if len(label_array) and (label_array.min() < UNLABELLED or label_array.max() >= len(class_names)):
            raise ValueError(
                f"Labels must lie in 0–{len(class_names) - 1} for {len(class_names)} classes "
                f"(or be {UNLABELLED}: not labelled)."
            )
        probabilities = _checked_probabilities(probabilities, (len(label_array), len(class_names)))
        self._images, self._labels = images, label_array
        self._set_class_names(class_names)
        self._set_predictions(probabilities)
        height, width = images.shape[1:3]
        self._scale = scale_for(height, width, IMAGE_SIZE)
        self._pixmaps.clear()
        self._forget_looked_at()
        if (
            self._filter_kind == "class"
            and self._filter_class is not None
            and self._filter_class >= len(self._class_names)
        ):
            self._filter_kind, self._filter_class = "all", None
        self._sync_controls()
        self._apply(keep_page=False)

    def set_probabilities(self, probabilities: np.ndarray | None) -> None:
        """New predictions ``(N, K)`` (or None) for the items given to :meth:`set_items`: captions, colours and
        tooltips follow them and the filter and order are applied again, staying on the same page if it still
        exists (else the last page)."""
        self._set_predictions(_checked_probabilities(probabilities, (len(self._labels), len(self._class_names))))
        self._forget_looked_at()
        self._apply(keep_page=True)

    def showEvent(self, event: QShowEvent) -> None:
        """Draw the page if it changed while the gallery was out of sight."""
        super().showEvent(event)
        if self._page_due:
            self._draw_page()

    def set_header(self, text: str) -> None:
        """Set the bold line above the summary, e.g. "After epoch 3 — validation accuracy 87%"."""
        self._header.setText(text)

    # ---- what it looked at ------------------------------------------------------------------------

    def items_key(self) -> int:
        """A number that changes whenever the items or their guesses do: maps asked for under another key are
        refused by :meth:`set_looked_at`."""
        return self._items_key

    def looked_at_shown(self) -> bool:
        """Whether "Show what it looked at" is on."""
        return self._looked_at_box.isChecked()

    def show_looked_at(self, shown: bool) -> None:
        """Turn "Show what it looked at" on or off (as its check box does)."""
        self._looked_at_box.setChecked(shown)

    def set_looked_at(self, key: int, indices: Sequence[int], maps: np.ndarray, method: str) -> bool:
        """Lay ``maps`` (``(len(indices), H, W)``, measured by ``method``) over the items ``indices`` measured
        under ``key``; False (and nothing changes) if the items have changed since."""
        if key != self._items_key:
            return False
        for index, values in zip(indices, maps):
            self._looked_at[int(index)] = np.asarray(values, dtype=np.float32)
        self._looked_at_method = method
        if self.looked_at_shown():
            self._show_page()
        return True

    def forget_looked_at(self) -> None:
        """Drop the maps laid over the images (e.g. another method was chosen); the page asks for new ones."""
        self._forget_looked_at()
        self._show_page()

    def looked_at_missing(self) -> list[int]:
        """The images on the page without a map, while "Show what it looked at" is on (else none)."""
        if not self.looked_at_shown():
            return []
        return [index for index in self.visible_indices() if index not in self._looked_at]

    def looked_at_indices(self) -> list[int]:
        """The images on the page drawn with their map laid over them, in grid order."""
        if not self.looked_at_shown():
            return []
        return [index for index in self.visible_indices() if index in self._looked_at]

    def _forget_looked_at(self) -> None:
        self._items_key += 1
        self._looked_at.clear()

    def _looked_at_toggled(self, shown: bool) -> None:
        self._pixmaps.clear()
        self._show_page()

    # ---- dropped files ------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept a drag that carries at least one local image file."""
        if dropped_images(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        """Emit :attr:`imagesDropped` with the image files dropped; other files are left out."""
        paths = dropped_images(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.imagesDropped.emit(paths)

    # ---- filter, order, pages -----------------------------------------------------------------

    def set_filter(self, kind: str, class_index: int | None = None) -> None:
        """Show ``"all"`` items, the ``"misclassified"`` ones, or those of true ``"class"`` ``class_index``;
        from the first page. Misclassified shows nothing (and says why) while there are no predictions."""
        if kind not in FILTERS:
            raise ValueError(f"Unknown filter {kind!r}; choose one of {', '.join(FILTERS)}.")
        if kind == "class" and (class_index is None or not 0 <= class_index < len(self._class_names)):
            raise ValueError(f"Class filter needs a class index in 0–{len(self._class_names) - 1}, got {class_index}.")
        self._filter_kind = kind
        self._filter_class = class_index if kind == "class" else None
        self._sync_controls()
        self._apply(keep_page=False)

    def set_order(self, order: str) -> None:
        """Order the filtered items by ``"dataset"`` position, ``"least-confident"`` or ``"most-confident"``
        first (confidence: the probability of the predicted class), or ``"most-wrong"`` first (the highest loss
        for the true class); ties keep dataset order; from the first page. Without predictions the items stay in
        dataset order."""
        if order not in ORDERS:
            raise ValueError(f"Unknown order {order!r}; choose one of {', '.join(ORDERS)}.")
        self._order = order
        self._sync_controls()
        self._apply(keep_page=False)

    def current_filter(self) -> tuple[str, int | None]:
        """``(kind, class_index)`` of the filter in use; class_index is None unless kind is ``"class"``."""
        return self._filter_kind, self._filter_class

    def current_order(self) -> str:
        """The order in use: one of :data:`ORDERS`."""
        return self._order

    def next_page(self) -> None:
        """Show the next page; nothing happens on the last."""
        self._go_to(self._page + 1)

    def previous_page(self) -> None:
        """Show the previous page; nothing happens on the first."""
        self._go_to(self._page - 1)

    def page(self) -> int:
        """The page shown, counting from 1."""
        return self._page

    def page_count(self) -> int:
        """How many pages the filtered items fill; 1 when there are none."""
        return max(1, math.ceil(len(self._shown) / self.capacity))

    # ---- what is shown ------------------------------------------------------------------------

    def visible_indices(self) -> list[int]:
        """Indices (into the items given to :meth:`set_items`) of the images shown, in grid order."""
        return [int(index) for index in self._page_indices()]

    def filtered_count(self) -> int:
        """How many items pass the filter, on all pages."""
        return len(self._shown)

    def captions(self) -> list[str]:
        """The captions of the images shown, in grid order."""
        return [cell.caption for cell in self._shown_cells()]

    def caption_colours(self) -> list[str]:
        """``"right"``, ``"wrong"`` or ``"unknown"`` for each image shown, in grid order."""
        return [cell.state for cell in self._shown_cells()]

    def tooltips(self) -> list[str]:
        """The hover texts of the images shown (true class, then the top classes), in grid order."""
        return [cell.toolTip() for cell in self._shown_cells()]

    # ---- internals ----------------------------------------------------------------------------

    def _set_class_names(self, class_names: Sequence[str]) -> None:
        names = [str(name) for name in class_names]
        if names == self._class_names:
            return
        self._class_names = names
        for cell in self._cells:
            cell.reserve_caption_width([f"predicted: {name}" for name in names])
        self._show_filter.blockSignals(True)
        while self._show_filter.count() > len(_FIXED_FILTER_LABELS):
            self._show_filter.removeItem(self._show_filter.count() - 1)
        self._show_filter.addItems([f"Class: {name}" for name in names])
        self._show_filter.blockSignals(False)

    def _set_predictions(self, probabilities: np.ndarray | None) -> None:
        """Store checked ``(N, K)`` probabilities (or None) with each item's guess and its confidence."""
        if probabilities is None or not probabilities.shape[1]:
            self._probabilities = self._predicted = self._confidence = self._losses = None
        else:
            self._probabilities = probabilities
            self._predicted = probabilities.argmax(axis=1)
            self._confidence = probabilities.max(axis=1)
            self._losses = item_losses(probabilities, self._labels)
        self._update_prediction_entries()

    def _inspect_cell(self, position: int) -> None:
        indices = self._page_indices()
        if position < len(indices):
            self.inspectRequested.emit(int(indices[position]))

    def _update_prediction_entries(self) -> None:
        """Grey out the choices that need predictions while there are none."""
        predicted = self._predicted is not None
        tooltip = "" if predicted else _NEEDS_PREDICTIONS
        entries = [(self._show_filter, 1), (self._sort_order, 1), (self._sort_order, 2), (self._sort_order, 3)]
        for combo, index in entries:
            model = combo.model()
            assert isinstance(model, QStandardItemModel), "a combo box keeps its items in a QStandardItemModel"
            item = model.item(index)
            item.setEnabled(predicted)
            item.setToolTip(tooltip)

    def _sync_controls(self) -> None:
        """Make the combo boxes show the filter and order in use, without re-entering the setters."""
        filter_index = {"all": 0, "misclassified": 1}.get(self._filter_kind)
        if filter_index is None:
            assert self._filter_class is not None, "a class filter always has a class"
            filter_index = len(_FIXED_FILTER_LABELS) + self._filter_class
        for combo, index in ((self._show_filter, filter_index), (self._sort_order, ORDERS.index(self._order))):
            combo.blockSignals(True)
            combo.setCurrentIndex(index)
            combo.blockSignals(False)

    def _filter_chosen(self, combo_index: int) -> None:
        if combo_index < len(_FIXED_FILTER_LABELS):
            self.set_filter(FILTERS[max(combo_index, 0)])
        else:
            self.set_filter("class", combo_index - len(_FIXED_FILTER_LABELS))

    def _apply(self, keep_page: bool) -> None:
        """Filter and sort again, then show the page (the same number if ``keep_page`` and it still exists)."""
        self._shown = order_indices(
            filter_indices(self._labels, self._predicted, self._filter_kind, self._filter_class),
            self._confidence,
            self._order,
            self._losses,
        )
        self._page = min(self._page, self.page_count()) if keep_page else 1
        self._show_page()

    def _go_to(self, page: int) -> None:
        page = min(max(page, 1), self.page_count())
        if page != self._page:
            self._page = page
            self._show_page()

    def _page_indices(self) -> np.ndarray:
        first = (self._page - 1) * self.capacity
        return self._shown[first : first + self.capacity]

    def _show_page(self) -> None:
        if out_of_sight(self):  # a run's new guesses every epoch, on another tab: drawn once, when shown
            self._page_due = True
        else:
            self._draw_page()

    def _draw_page(self) -> None:
        self._page_due = False
        indices = self._page_indices()
        # Pixmaps of items still on the page are reused: a refresh with new predictions only re-captions.
        self._pixmaps = {int(index): self._pixmap(int(index)) for index in indices}
        shown_maps = self.looked_at_shown()
        pixmaps = {
            int(index): self._overlaid(int(index)) if shown_maps and int(index) in self._looked_at else pixmap
            for index, pixmap in self._pixmaps.items()
        }
        for cell_index, cell in enumerate(self._cells):
            if cell_index >= len(indices):
                cell.hide()
                continue
            index = int(indices[cell_index])
            cell.show_image(pixmaps[index], *self._describe(index))
            cell.show()
        self._previous.setEnabled(self._page > 1)
        self._next.setEnabled(self._page < self.page_count())
        self._page_label.setText(self._page_text(len(indices)))
        self._summary.setText(self._summary_text())
        self._empty.setText(self._empty_text())
        self._empty.setVisible(not len(indices))
        method = METHOD_TITLES.get(self._looked_at_method, self._looked_at_method)
        self._looked_at_box.setText(f"{LOOKED_AT} ({method})" if self.looked_at_shown() and method else LOOKED_AT)
        missing = self.looked_at_missing()
        if missing:
            self.lookedAtWanted.emit(self._items_key, missing)

    def _pixmap(self, index: int) -> QPixmap:
        pixmap = self._pixmaps.get(index)
        return to_pixmap(self._images[index], self._scale) if pixmap is None else pixmap

    def _overlaid(self, index: int) -> QPixmap:
        """Item ``index`` in grey with its attribution map laid over it."""
        image = self._images[index].astype(np.float32) / 255.0
        pixels = image[:, :, 0] if image.shape[2] == 1 else image
        return to_pixmap(overlay(pixels, self._looked_at[index]), self._scale)

    def _describe(self, index: int) -> tuple[str, str, str]:
        """``(caption, state, tooltip)`` of item ``index``."""
        truth = int(self._labels[index])
        if truth == UNLABELLED:
            return self._describe_unlabelled(index)
        true_name = self._class_names[truth]
        probabilities, predicted = self._probabilities, self._predicted
        if probabilities is None or predicted is None:
            return f"true: {true_name}", "unknown", f"True: {true_name}\nNot predicted yet"
        guess = int(predicted[index])
        top = top_classes(probabilities[index], TOP_CLASSES)
        lines = [f"  {self._class_names[k]} {probability:.1%}" for k, probability in top]
        tooltip = "\n".join([f"True: {true_name}", f"Top {len(top)}:", *lines])
        caption = f"true: {true_name}\npredicted: {self._class_names[guess]}"
        return caption, "right" if guess == truth else "wrong", tooltip

    def _describe_unlabelled(self, index: int) -> tuple[str, str, str]:
        if self._probabilities is None:
            return "not labelled", "unknown", "Not labelled\nNot predicted yet"
        top = top_classes(self._probabilities[index], TOP_CLASSES)
        guess, probability = top[0]
        lines = [f"  {self._class_names[k]} {share:.1%}" for k, share in top]
        return (
            f"guess: {self._class_names[guess]}\n{probability:.0%} sure",
            "unknown",
            "\n".join(["Not labelled", f"Top {len(top)}:", *lines]),
        )

    def _filter_name(self) -> str:
        if self._filter_kind == "class" and self._filter_class is not None:
            return f"Class {self._class_names[self._filter_class]}"
        return {"all": "All images", "misclassified": "Misclassified"}[self._filter_kind]

    def _summary_text(self) -> str:
        """E.g. "Misclassified: 123 of 1,000 (12.3%)" or "Class Shirt: 100 of 1,000 · 61/100 right (61.0%)"."""
        total, count = len(self._labels), len(self._shown)
        text = f"{self._filter_name()}: {count:,}"
        if self._filter_kind != "all":
            text += f" of {total:,}"
        if self._predicted is None:
            text += " · not predicted yet"
            return text + (", so in dataset order" if self._order != "dataset" else "")
        if self._filter_kind == "misclassified":
            return text + (f" ({count / total:.1%})" if total else "")
        labels = self._labels[self._shown]
        labelled = int(np.count_nonzero(labels != UNLABELLED))
        if count and not labelled:
            return text + " · not labelled: the network's guesses"
        right = int(np.count_nonzero(self._predicted[self._shown] == labels))
        return text + (f" · {right:,}/{labelled:,} right ({right / labelled:.1%})" if labelled else "")

    def _page_text(self, shown: int) -> str:
        if not shown:
            return "Nothing to show"
        first = (self._page - 1) * self.capacity
        return (
            f"Showing {first + 1:,}–{first + shown:,} of {len(self._shown):,} "
            f"(page {self._page:,} of {self.page_count():,})"
        )

    def _empty_text(self) -> str:
        if not len(self._labels):
            return "No images to show"
        if self._filter_kind == "misclassified":
            if self._predicted is None:
                return "No predictions yet — misclassified images appear once the network has made its guesses"
            return "No misclassified images — every image is predicted right"
        if self._filter_kind == "class" and self._filter_class is not None:
            return f"No images of class {self._class_names[self._filter_class]} here"
        return ""

    def _shown_cells(self) -> list[ImageCell]:
        if self._page_due:
            self._draw_page()
        return [cell for cell in self._cells if not cell.isHidden()]


def dropped_images(mime: QMimeData) -> list[Path]:
    """The local files in ``mime`` whose suffix (any case) is one of :data:`DROPPABLE_SUFFIXES`, in order."""
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [path for path in paths if path.suffix.lower() in DROPPABLE_SUFFIXES]


def _checked_probabilities(probabilities: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """``probabilities`` as a float array of ``shape`` (items, classes), or None; a wrong shape is refused."""
    if probabilities is None:
        return None
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != shape:
        raise ValueError(f"Probabilities must be (items, classes) = {shape}, not {probabilities.shape}.")
    return probabilities


def filter_indices(labels: np.ndarray, predicted: np.ndarray | None, kind: str, class_index: int | None) -> np.ndarray:
    """Indices of the items passing filter ``kind``, ascending; misclassified needs ``predicted`` (else none)."""
    if kind == "class":
        return np.flatnonzero(labels == class_index)
    if kind == "misclassified":
        if predicted is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero((predicted != labels) & (labels != UNLABELLED))
    return np.arange(len(labels))


def item_losses(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each item's cross-entropy loss ``-log p(true class)``; NaN for an item nobody labelled."""
    labelled = labels != UNLABELLED
    losses = np.full(len(labels), np.nan)
    chosen = probabilities[np.flatnonzero(labelled), labels[labelled]]
    losses[labelled] = -np.log(np.clip(chosen, 1e-12, None))
    return losses


def order_indices(
    indices: np.ndarray, confidence: np.ndarray | None, order: str, losses: np.ndarray | None = None
) -> np.ndarray:
    """``indices`` by ascending or descending ``confidence``, or by descending ``losses`` for ``"most-wrong"``
    (fastai's top losses; unlabelled items last); stable: ties keep their order. Unchanged for ``"dataset"``
    order or without predictions."""
    if order == "dataset" or confidence is None:
        return indices
    if order == "most-wrong":
        if losses is None:
            return indices
        keys = np.nan_to_num(losses[indices], nan=-np.inf)
        return indices[np.argsort(-keys, kind="stable")]
    keys = confidence[indices]
    return indices[np.argsort(keys if order == "least-confident" else -keys, kind="stable")]


def top_classes(probabilities: np.ndarray, count: int) -> list[tuple[int, float]]:
    """The ``count`` most probable ``(class, probability)`` pairs, most probable first (ties: lower class first)."""
    best = np.argsort(-probabilities, kind="stable")[:count]
    return [(int(k), float(probabilities[k])) for k in best]
