"""Turning dataset tensors into pictures: un-normalised uint8 arrays, crisp pixmaps, and a captioned image cell."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QContextMenuEvent, QImage, QMouseEvent, QPixmap
from PySide6.QtWidgets import QLabel, QMenu, QVBoxLayout, QWidget

RIGHT_COLOUR = "#1b7f3b"
WRONG_COLOUR = "#c62828"
NEUTRAL_COLOUR = "#424242"
FRAME_WIDTH = 3


def to_display(images: torch.Tensor | np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalised images ``(N, C, H, W)`` back as contiguous uint8 ``(N, H, W, C)``: ``x * std + mean`` per channel,
    clipped to [0, 1] and scaled to 0–255."""
    if isinstance(images, torch.Tensor):
        images = images.detach().to("cpu", torch.float32).numpy()
    channel_mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    channel_std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    # One float copy, then in place: a whole training split is hundreds of megabytes as float32.
    pixels = np.asarray(images, dtype=np.float32) * channel_std
    pixels += channel_mean
    np.clip(pixels, 0.0, 1.0, out=pixels)
    pixels *= 255.0
    np.rint(pixels, out=pixels)
    return np.ascontiguousarray(pixels.astype(np.uint8).transpose(0, 2, 3, 1))


def to_pixmap(image_hwc_uint8: np.ndarray, scale: int) -> QPixmap:
    """One uint8 image ``(H, W, C)``, C being 1 (grey) or 3 (RGB), enlarged ``scale`` times with nearest-neighbour
    sampling so every pixel stays a sharp square."""
    height, width, channels = image_hwc_uint8.shape
    formats = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888}
    if channels not in formats:
        raise ValueError(f"Images need 1 or 3 channels to be shown, this one has {channels}.")
    buffer = np.ascontiguousarray(image_hwc_uint8, dtype=np.uint8)
    # copy(): the QImage would otherwise point into the numpy buffer, which may be freed before it is drawn.
    image = QImage(buffer.data, width, height, width * channels, formats[channels]).copy()
    scale = max(1, int(scale))
    if scale > 1:
        image = image.scaled(
            width * scale,
            height * scale,
            Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
    return QPixmap.fromImage(image)


def scale_for(height: int, width: int, target: int) -> int:
    """The whole-number enlargement that brings an image's longer side closest to ``target`` pixels (at least 1)."""
    return max(1, round(target / max(height, width, 1)))


class ImageCell(QWidget):
    """An image in a coloured frame above a caption; the frame and caption colour say whether a guess was right.

    ``state`` is ``"right"``, ``"wrong"`` or ``"unknown"`` (neutral). A wrong guess's frame is also dashed, so
    the difference does not rest on red and green alone.

    An ``inspectable`` cell emits ``inspectRequested`` on a double-click and from its context menu's "Inspect".
    """

    _COLOURS = {"right": RIGHT_COLOUR, "wrong": WRONG_COLOUR, "unknown": NEUTRAL_COLOUR}
    inspectRequested = Signal()

    def __init__(self, caption_lines: int, parent: QWidget | None = None, inspectable: bool = False):
        super().__init__(parent)
        self.inspectable = inspectable
        self._image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self._caption = QLabel(alignment=Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self._caption.setMinimumHeight(self._caption.fontMetrics().lineSpacing() * caption_lines + 2)
        self._state = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self._image, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self._caption)
        self._set_state("unknown")

    @property
    def caption(self) -> str:
        """The caption text shown."""
        return self._caption.text()

    @property
    def state(self) -> str:
        """``"right"``, ``"wrong"`` or ``"unknown"``."""
        return self._state

    def pixmap(self) -> QPixmap:
        """The image shown (without its frame)."""
        return self._image.pixmap()

    def reserve_caption_width(self, captions: Sequence[str]) -> None:
        """Make the cell wide enough for the widest of ``captions``, so a grid's columns line up."""
        metrics = self._caption.fontMetrics()
        self._caption.setMinimumWidth(max((metrics.horizontalAdvance(text) for text in captions), default=0) + 4)

    def show_image(self, pixmap: QPixmap, caption: str, state: str = "unknown", tooltip: str = "") -> None:
        """Show ``pixmap`` framed in the colour of ``state`` above ``caption``."""
        self._image.setPixmap(pixmap)
        self._image.setFixedSize(pixmap.width() + 2 * FRAME_WIDTH, pixmap.height() + 2 * FRAME_WIDTH)
        self._caption.setText(caption)
        self._set_state(state)
        self.setToolTip(tooltip)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self.inspectable and event.button() == Qt.MouseButton.LeftButton:
            self.inspectRequested.emit()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        if not self.inspectable:
            super().contextMenuEvent(event)
            return
        menu = QMenu(self)
        menu.addAction("Inspect: look inside the network at this image", self.inspectRequested.emit)
        menu.exec(event.globalPos())

    def _set_state(self, state: str) -> None:
        if state == self._state:
            return
        colour = self._COLOURS[state]
        self._state = state
        line = "dashed" if state == "wrong" else "solid"
        self._image.setStyleSheet(f"QLabel {{ border: {FRAME_WIDTH}px {line} {colour}; background: black; }}")
        self._caption.setStyleSheet(f"QLabel {{ color: {colour}; }}")
