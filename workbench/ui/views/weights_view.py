"""The weights as pictures: the first convolution's filters and the first pixel-reading Linear layer's units.

Each panel is one :class:`~workbench.core.inspect.weights.WeightTiles` drawn as a grid: all its tiles are composed into
one numpy mosaic and shown as one pixmap, so redrawing at every epoch's end costs a few array operations and
one image per panel. Panels are reused while their number stays the same. The view scrolls by itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from workbench.core.architecture import Architecture
from workbench.core.inspect.weights import WeightTiles, weight_tiles
from workbench.ui.images import scale_for

TILE_TARGET = 48
"""Tiles are enlarged by a whole number so their longer side comes closest to this many pixels."""
GAP = 4
FRAME = 1
COLUMNS = 12  # 12 enlarged 28×28 tiles fit the tab of a 1600-pixel window without scrolling sideways
FRAME_COLOUR = (96, 96, 96)
BACKGROUND_COLOUR = (239, 239, 239)
EXPLANATION = (
    "Each image is what one unit (or filter) looks for: red pixels push its output up, blue ones push it down, "
    "white ones do not matter. Each image is scaled to its own largest weight. Colour images show the red, "
    "green and blue input channels (grey = 0)."
)
NOTHING_TO_SHOW = (
    "This network has no Conv2d, and no Linear layer reading the image's pixels directly, "
    "so there are no weights to draw as pictures."
)


def pack_rgb(rgb: npt.ArrayLike) -> np.ndarray:
    """uint8 RGB ``(..., 3)`` as uint32 pixels ``0xffRRGGBB`` ``(...)``, QImage's RGB32: one number per pixel
    makes composing a mosaic several times faster than moving three bytes."""
    rgb = np.asarray(rgb, dtype=np.uint32)
    return np.uint32(0xFF000000) | rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]


def unpack_rgb(pixels: np.ndarray) -> np.ndarray:
    """uint32 pixels ``0xffRRGGBB`` back as uint8 RGB ``(..., 3)``."""
    pixels = np.asarray(pixels, dtype=np.uint32)
    return np.stack([pixels >> 16, pixels >> 8, pixels], axis=-1).astype(np.uint8)


def _diverging_table() -> np.ndarray:
    """511 packed colours for the values -1, -1 + 1/255, ..., 1: blue fading to white, then white to red."""
    values = np.linspace(-1.0, 1.0, 511)
    fade_positive = 1.0 - np.clip(values, 0.0, 1.0)
    fade_negative = 1.0 + np.clip(values, -1.0, 0.0)
    rgb = np.stack([fade_negative, fade_positive * fade_negative, fade_positive], axis=-1)
    return pack_rgb(np.rint(rgb * 255.0).astype(np.uint8))


_DIVERGING = _diverging_table()


def _levels(values: np.ndarray, steps: float) -> np.ndarray:
    """Values in [-1, 1] (clipped; NaN as 0) as whole numbers from 0 to ``2 * steps``."""
    levels = np.nan_to_num(np.asarray(values, dtype=np.float32)) * np.float32(steps)
    levels += np.float32(steps)
    np.clip(levels, 0.0, 2.0 * steps, out=levels)
    return np.rint(levels, out=levels).astype(np.intp)


def diverging_colours(values: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] as packed pixels (see :func:`pack_rgb`): -1 blue, 0 white, +1 red, in 255 steps
    either side (a table look-up)."""
    return _DIVERGING[_levels(values, 255.0)]


def tile_colours(panel: WeightTiles) -> np.ndarray:
    """The tiles of a panel as packed pixels ``(count, H, W)``: the diverging colours for grey tiles, and
    [-1, 1] → [0, 255] per channel for colour tiles."""
    if panel.colour:
        return pack_rgb(_levels(panel.tiles, 127.5))
    return diverging_colours(panel.tiles)


@dataclass(frozen=True)
class MosaicLayout:
    """Where the tiles of a mosaic lie: ``columns`` per row, each ``tile_height``×``tile_width`` pixels
    (already enlarged) inside a one-pixel frame, ``gap`` pixels between frames."""

    count: int
    columns: int
    tile_height: int
    tile_width: int
    gap: int

    @property
    def cell_height(self) -> int:
        return self.tile_height + 2 * FRAME + self.gap

    @property
    def cell_width(self) -> int:
        return self.tile_width + 2 * FRAME + self.gap

    def rect(self, index: int) -> QRect:
        """The pixel rectangle of tile ``index`` in the mosaic (inside its frame)."""
        row, column = divmod(index, self.columns)
        return QRect(
            column * self.cell_width + FRAME, row * self.cell_height + FRAME, self.tile_width, self.tile_height
        )


def compose_mosaic(tiles: np.ndarray, columns: int = COLUMNS, gap: int = GAP) -> tuple[np.ndarray, MosaicLayout]:
    """One image ``(H, W)`` of packed pixels holding all ``tiles`` ``(count, h, w)`` (packed pixels too), each
    enlarged by a whole number with nearest-neighbour sampling and framed, in rows of ``columns`` with ``gap``
    pixels between them."""
    count, height, width = tiles.shape
    scale = scale_for(height, width, TILE_TARGET)
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    layout = MosaicLayout(count, columns, height * scale, width * scale, gap)
    # The mosaic as (row, y in cell, column, x in cell): the final image is this array's plain reshape.
    cells = np.empty((rows, layout.cell_height, columns, layout.cell_width), dtype=np.uint32)
    cells[...] = pack_rgb(BACKGROUND_COLOUR)
    cells[:, : layout.tile_height + 2 * FRAME, :, : layout.tile_width + 2 * FRAME] = pack_rgb(FRAME_COLOUR)
    padded = np.zeros((rows * columns, height, width), dtype=np.uint32)
    padded[:count] = tiles
    # Each tile pixel becomes a scale×scale block, written through a view that splits y and x into
    # (pixel, repeat): one broadcast copy, no enlarged copy of the tiles.
    inside = cells[:, FRAME : FRAME + layout.tile_height, :, FRAME : FRAME + layout.tile_width]
    blocks = inside.reshape(rows, height, scale, columns, width, scale, copy=False)
    blocks[...] = padded.reshape(rows, columns, height, width).transpose(0, 2, 1, 3)[:, :, None, :, :, None]
    cells[-1, :, count - (rows - 1) * columns :] = pack_rgb(BACKGROUND_COLOUR)  # the empty end of the last row
    mosaic = cells.reshape(rows * layout.cell_height, columns * layout.cell_width)
    return mosaic[: mosaic.shape[0] - gap, : mosaic.shape[1] - gap], layout


def mosaic_pixmap(mosaic: np.ndarray) -> QPixmap:
    """A pixmap of an image of packed pixels ``(H, W)``."""
    buffer = np.ascontiguousarray(mosaic, dtype=np.uint32)
    height, width = buffer.shape
    # copy(): the QImage would otherwise point into the numpy buffer, which may be freed before it is drawn.
    image = QImage(buffer.data, width, height, width * 4, QImage.Format.Format_RGB32).copy()
    return QPixmap.fromImage(image)


class _Panel(QWidget):
    """A title above one mosaic image."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setStyleSheet("QLabel { font-weight: bold; }")
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.layout_info: MosaicLayout | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 8)
        layout.addWidget(self.title)
        layout.addWidget(self.image)

    def show_tiles(self, panel: WeightTiles) -> None:
        self.title.setText(panel.title)
        mosaic, self.layout_info = compose_mosaic(tile_colours(panel))
        self.image.setPixmap(mosaic_pixmap(mosaic))


class WeightsView(QWidget):
    """The drawable weights of a network (see :func:`~workbench.core.inspect.weights.weight_tiles`), one titled grid
    per layer, in a scroll area, under a line explaining the colours and a caption (e.g. which epoch).

    While the view is hidden (another tab in front), weights given to it are drawn when it is next shown: a run
    hands it new weights at every epoch, and drawing them takes the window's thread for milliseconds.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.explanation = QLabel(EXPLANATION)
        self.explanation.setWordWrap(True)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self._panels: list[_Panel] = []
        self._pending: tuple[Architecture, dict[str, torch.Tensor], str] | None = None
        self._content = QWidget()
        self._content_layout = QVBoxLayout(self._content)
        self._content_layout.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setWidget(self._content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.explanation)
        layout.addWidget(self.caption)
        layout.addWidget(self.scroll_area, 1)
        self.clear("No weights yet: they appear at the end of each epoch.")

    def show_weights(self, architecture: Architecture, weights: dict[str, torch.Tensor], caption: str = "") -> None:
        """Draw the weights of ``architecture`` from its state dict ``weights``, under ``caption`` (now if the view
        is showing, else when it is next shown)."""
        self._pending = (architecture, weights, caption)
        if self.isVisible():
            self._draw_pending()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._draw_pending()

    def _draw_pending(self) -> None:
        if self._pending is None:
            return
        (architecture, weights, caption), self._pending = self._pending, None
        panels = weight_tiles(architecture, weights)
        if not panels:
            self.clear(NOTHING_TO_SHOW)
            return
        self._set_panel_count(len(panels))
        for widget, panel in zip(self._panels, panels):
            widget.show_tiles(panel)
        self.caption.setText(caption)
        self.caption.setVisible(bool(caption))

    def clear(self, message: str = "") -> None:
        """Remove the pictures and show ``message`` instead."""
        self._pending = None
        self._set_panel_count(0)
        self.caption.setText(message)
        self.caption.setVisible(bool(message))

    def panel_titles(self) -> list[str]:
        """The titles of the panels shown, first layer first."""
        self._draw_pending()
        return [panel.title.text() for panel in self._panels]

    def tile_count(self, panel_index: int) -> int:
        """How many tiles panel ``panel_index`` draws."""
        self._draw_pending()
        layout_info = self._panels[panel_index].layout_info
        assert layout_info is not None, "every panel shown has drawn its tiles"
        return layout_info.count

    def tile_image(self, panel_index: int, tile_index: int) -> QImage:
        """The pixels drawn for one tile (enlarged), as a QImage."""
        self._draw_pending()
        panel = self._panels[panel_index]
        assert panel.layout_info is not None, "every panel shown has drawn its tiles"
        return panel.image.pixmap().copy(panel.layout_info.rect(tile_index)).toImage()

    def _set_panel_count(self, count: int) -> None:
        while len(self._panels) > count:
            panel = self._panels.pop()
            self._content_layout.removeWidget(panel)
            panel.deleteLater()
        while len(self._panels) < count:
            panel = _Panel(self._content)
            self._content_layout.addWidget(panel)
            self._panels.append(panel)
