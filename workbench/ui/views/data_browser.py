"""Browsing a dataset a page at a time, each image over its class name, optionally one class only."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import Signal
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

from workbench.ui.images import ImageCell, scale_for, to_pixmap

IMAGE_SIZE = 56
NO_AUGMENTATION = "Tick an augmentation in the Training dock to see what it does to the training images."

Augment = Callable[[np.ndarray, int], np.ndarray | None]
"""The page's image indices and a draw number -> those images augmented as uint8 ``(N, H, W, C)``, or None."""


class DataBrowser(QWidget):
    """A ``rows`` × ``columns`` page of images with their class names, Previous/Next buttons and a class filter.

    Pixmaps are made for the current page only, so browsing 60,000 images costs one page at a time. A double-click
    (or "Inspect" in an image's context menu) emits ``inspectRequested`` with the image's index in the data.
    """

    inspectRequested = Signal(int)

    def __init__(self, rows: int = 6, columns: int = 10, parent: QWidget | None = None):
        super().__init__(parent)
        self._images = np.zeros((0, 1, 1, 1), dtype=np.uint8)
        self._labels = np.zeros(0, dtype=np.int64)
        self._class_names: list[str] = []
        self._shown = np.zeros(0, dtype=np.int64)
        self._page = 1
        self._class_filter: int | None = None

        self._title = QLabel()
        self._title.setObjectName("title")
        self._title.setStyleSheet("QLabel { font-weight: bold; }")
        self._filter = QComboBox()
        self._filter.setObjectName("classFilter")
        self._filter.setToolTip("Show one class only")
        self._filter.currentIndexChanged.connect(self._filter_chosen)
        self._previous = QPushButton("◀ Previous")
        self._previous.setObjectName("previousPage")
        self._next = QPushButton("Next ▶")
        self._next.setObjectName("nextPage")
        self._previous.clicked.connect(self.previous_page)
        self._next.clicked.connect(self.next_page)
        self._page_label = QLabel()
        self._page_label.setObjectName("pageLabel")
        self._augment: Augment | None = None
        self._draw = 0
        self.augmented = QCheckBox("Augmented")
        self.augmented.setObjectName("showAugmented")
        self.augmented.toggled.connect(self._show_page)
        self.new_draw = QPushButton("New draw")
        self.new_draw.setObjectName("newDraw")
        self.new_draw.setToolTip("Draw the random crops, flips, rotations and erasures again")
        self.new_draw.clicked.connect(self._draw_again)
        self._cells = [ImageCell(caption_lines=1, inspectable=True) for _ in range(rows * columns)]
        for position, cell in enumerate(self._cells):
            cell.inspectRequested.connect(lambda position=position: self._inspect_cell(position))

        top = QHBoxLayout()
        top.addWidget(self._title, 1)
        top.addWidget(self.augmented)
        top.addWidget(self.new_draw)
        top.addWidget(QLabel("Class:"))
        top.addWidget(self._filter)
        grid = QGridLayout()
        grid.setSpacing(4)
        for index, cell in enumerate(self._cells):
            grid.addWidget(cell, *divmod(index, columns))
            cell.hide()
        bottom = QHBoxLayout()
        bottom.addWidget(self._previous)
        bottom.addStretch(1)
        bottom.addWidget(self._page_label)
        bottom.addStretch(1)
        bottom.addWidget(self._next)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(grid)
        layout.addStretch(1)
        layout.addLayout(bottom)
        self.set_augmentation(None, "")

    def set_data(
        self, images_hwc_uint8: np.ndarray, labels: Sequence[int], class_names: Sequence[str], title: str
    ) -> None:
        """Browse uint8 images ``(N, H, W, C)`` labelled ``labels``, from page 1 with no class filter."""
        if len(images_hwc_uint8) != len(labels):
            raise ValueError(f"{len(images_hwc_uint8)} images but {len(labels)} labels.")
        self._images = images_hwc_uint8
        self._labels = np.asarray(labels, dtype=np.int64)
        self._class_names = list(class_names)
        self._title.setText(title)
        self._filter.blockSignals(True)
        self._filter.clear()
        self._filter.addItems(["All classes", *self._class_names])
        self._filter.blockSignals(False)
        self._class_filter = None
        self._shown = np.arange(len(self._labels))
        self._page = 1
        self._show_page()

    def set_augmentation(self, augment: Augment | None, description: str) -> None:
        """How "Augmented" changes the page (None: the settings augment nothing, and the box is disabled), and
        what the augmentation is in words ("crop, rotate")."""
        self._augment = augment
        self.augmented.setEnabled(augment is not None)
        self.augmented.setToolTip(
            f"Show the page as training sees it, with {description}: each image its own random draw"
            if augment is not None
            else NO_AUGMENTATION
        )
        self.new_draw.setEnabled(augment is not None and self.augmented.isChecked())
        self._show_page()

    def _draw_again(self) -> None:
        self._draw += 1
        self._show_page()

    def shows_augmented(self) -> bool:
        """Whether the page shows augmented images."""
        return self._augment is not None and self.augmented.isChecked()

    def page(self) -> int:
        """The page shown, counting from 1."""
        return self._page

    def page_count(self) -> int:
        """How many pages the (filtered) images fill; 1 when there are none."""
        return max(1, math.ceil(len(self._shown) / len(self._cells)))

    def next_page(self) -> None:
        """Show the next page; nothing happens on the last."""
        self._go_to(self._page + 1)

    def previous_page(self) -> None:
        """Show the previous page; nothing happens on the first."""
        self._go_to(self._page - 1)

    def set_class_filter(self, class_index: int | None) -> None:
        """Show only images of class ``class_index`` (None: all), from page 1."""
        self._class_filter = class_index
        self._shown = (
            np.arange(len(self._labels)) if class_index is None else np.flatnonzero(self._labels == class_index)
        )
        self._filter.blockSignals(True)
        self._filter.setCurrentIndex(0 if class_index is None else class_index + 1)
        self._filter.blockSignals(False)
        self._page = 1
        self._show_page()

    def shown_labels(self) -> list[str]:
        """The class names under the images of the current page, in grid order."""
        return [cell.caption for cell in self._cells if not cell.isHidden()]

    def _inspect_cell(self, position: int) -> None:
        first = (self._page - 1) * len(self._cells)
        indices = self._shown[first : first + len(self._cells)]
        if position < len(indices):
            self.inspectRequested.emit(int(indices[position]))

    def _filter_chosen(self, combo_index: int) -> None:
        self.set_class_filter(None if combo_index <= 0 else combo_index - 1)

    def _go_to(self, page: int) -> None:
        page = min(max(page, 1), self.page_count())
        if page != self._page:
            self._page = page
            self._show_page()

    def _show_page(self) -> None:
        first = (self._page - 1) * len(self._cells)
        indices = self._shown[first : first + len(self._cells)]
        scale = scale_for(*self._images.shape[1:3], IMAGE_SIZE)
        pictures = self._images[indices]
        augmented = self.shows_augmented() and len(indices) > 0
        self.new_draw.setEnabled(augmented)
        if augmented:
            assert self._augment is not None
            drawn = self._augment(indices, self._draw)
            if drawn is not None:
                pictures = drawn
        for cell_index, cell in enumerate(self._cells):
            if cell_index >= len(indices):
                cell.hide()
                continue
            image_index = indices[cell_index]
            name = self._class_names[self._labels[image_index]]
            cell.show_image(to_pixmap(pictures[cell_index], scale), name, tooltip=f"Image {image_index + 1:,}: {name}")
            cell.show()
        self._previous.setEnabled(self._page > 1)
        self._next.setEnabled(self._page < self.page_count())
        self._page_label.setText(self._page_text(first, len(indices)))

    def _page_text(self, first: int, count: int) -> str:
        kind = "" if self._class_filter is None else f" {self._class_names[self._class_filter]}"
        if not count:
            return f"No{kind} images"
        return (
            f"Page {self._page:,} of {self.page_count():,} "
            f"(images {first + 1:,}–{first + count:,} of {len(self._shown):,}{kind})"
        )
