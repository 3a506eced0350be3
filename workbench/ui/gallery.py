"""A grid of images with their true and predicted labels, green when the network was right and red when wrong."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .images import ImageCell, scale_for, to_pixmap

IMAGE_SIZE = 84


class Gallery(QWidget):
    """``rows`` × ``columns`` captioned images, a header line and a "Next batch" button.

    The cells are created once and refilled by :meth:`show_items`; cells beyond the items given are hidden.
    """

    nextBatchRequested = Signal()

    def __init__(self, rows: int = 4, columns: int = 8, parent: QWidget | None = None):
        super().__init__(parent)
        self._header = QLabel(objectName="header")
        self._header.setStyleSheet("QLabel { font-weight: bold; }")
        self._next = QPushButton("Next batch", objectName="nextBatch")
        self._next.setToolTip("Show another batch of validation images")
        self._next.clicked.connect(self.nextBatchRequested)
        self._cells = [ImageCell(caption_lines=2) for _ in range(rows * columns)]
        self._class_names: list[str] = []

        top = QHBoxLayout()
        top.addWidget(self._header, 1)
        top.addWidget(self._next)
        grid = QGridLayout()
        grid.setSpacing(6)
        for index, cell in enumerate(self._cells):
            grid.addWidget(cell, *divmod(index, columns))
            cell.hide()
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(grid)
        layout.addStretch(1)

    @property
    def capacity(self) -> int:
        """How many images the grid shows at once (rows × columns)."""
        return len(self._cells)

    def set_header(self, text: str) -> None:
        """Set the line above the grid, e.g. "Validation images — 27/32 right"."""
        self._header.setText(text)

    def show_items(self, images_hwc_uint8: np.ndarray, true_labels: Sequence[int],
                   predicted_labels: Sequence[int] | None, class_names: Sequence[str],
                   confidences: Sequence[float] | None = None) -> None:
        """Show uint8 images ``(N, H, W, C)`` with their labels; at most :attr:`capacity` of them, in order.

        ``predicted_labels`` None means nothing is predicted yet: captions give the true class only, in a
        neutral colour. ``confidences`` are the predicted classes' probabilities, shown in the tooltips.
        """
        true_labels = [int(label) for label in true_labels]
        if predicted_labels is not None:
            predicted_labels = [int(label) for label in predicted_labels]
        lengths = {len(images_hwc_uint8), len(true_labels)}
        lengths |= {len(predicted_labels)} if predicted_labels is not None else set()
        lengths |= {len(confidences)} if confidences is not None else set()
        if len(lengths) > 1:
            raise ValueError(f"Images, labels, predictions and confidences differ in number: {sorted(lengths)}.")
        count = min(len(images_hwc_uint8), self.capacity)
        scale = scale_for(*images_hwc_uint8.shape[1:3], IMAGE_SIZE) if count else 1
        if list(class_names) != self._class_names:
            self._class_names = list(class_names)
            widest = [f"predicted: {name}" for name in self._class_names]
            for cell in self._cells:
                cell.reserve_caption_width(widest)
        for index, cell in enumerate(self._cells):
            if index >= count:
                cell.hide()
                continue
            guess = None if predicted_labels is None else predicted_labels[index]
            confidence = None if confidences is None else confidences[index]
            cell.show_image(to_pixmap(images_hwc_uint8[index], scale),
                            *_describe(class_names, true_labels[index], guess, confidence))
            cell.show()

    def captions(self) -> list[str]:
        """The captions of the images shown, in grid order."""
        return [cell.caption for cell in self._shown_cells()]

    def caption_colours(self) -> list[str]:
        """``"right"``, ``"wrong"`` or ``"unknown"`` for each image shown, in grid order."""
        return [cell.state for cell in self._shown_cells()]

    def _shown_cells(self) -> list[ImageCell]:
        return [cell for cell in self._cells if not cell.isHidden()]


def _describe(class_names: Sequence[str], truth: int, guess: int | None,
              confidence: float | None) -> tuple[str, str, str]:
    """``(caption, state, tooltip)`` of one cell."""
    true_name = class_names[truth]
    if guess is None:
        return f"true: {true_name}", "unknown", f"True: {true_name}\nNot predicted yet"
    guess_name = class_names[guess]
    tooltip = f"True: {true_name}\nPredicted: {guess_name}"
    if confidence is not None:
        tooltip += f" ({confidence:.0%} probability)"
    return f"true: {true_name}\npredicted: {guess_name}", "right" if guess == truth else "wrong", tooltip
