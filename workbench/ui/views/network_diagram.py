"""The network as a picture: boxes and arrows from the input down, blocks drawn as frames around their layers.

:class:`NetworkDiagram` draws an :class:`~workbench.core.architecture.Architecture` with its validation report
on a ``QGraphicsScene``: an input box, one box per layer ("3.1 Conv2d(8, 3×3)" over "→ 8×4×4"), arrows
between them. A Residual block is a frame around its layers with the skip path running down its left side into
a "+" at its bottom; a Parallel block is a frame with its branches side by side between a fork and a merge
node. Layers with an error are red, those with a warning amber, as in the network list.

The layout is in :mod:`workbench.ui.views.network_drawing`; this module is the view: clicks, the highlight,
the placeholder and the export.
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QEvent, QIODevice, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QFont,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPalette,
)
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QGraphicsScene,
    QGraphicsTextItem,
    QGraphicsView,
    QWidget,
)

from workbench.core.architecture import Architecture, ValidationReport
from workbench.core.errors import WorkbenchError
from workbench.core.files import atomic_write_bytes
from workbench.ui.views.network_drawing import SCENE_MARGIN, Box, NetworkDrawing, number_at

PLACEHOLDER = "Drag layers into the network: its diagram appears here."
EXPORT_SUFFIXES = (".svg", ".png")
PNG_SCALE = 2
"""A PNG is drawn at twice the size of the diagram on screen, so it stays sharp in documents and slides."""
SVG_DPI = 96
"""The resolution written into an SVG: a CSS pixel is 1/96 inch, so the picture opens at its size on screen."""


class NetworkDiagram(QGraphicsView):
    """A drawn picture of a network, for the builder's "Diagram" tab: boxes for layers, frames for blocks.

    :meth:`show_network` redraws it; clicking a layer's box (or a block's frame) selects it and emits
    :attr:`layerClicked` with its number; :meth:`select_layer` highlights a box from outside; :meth:`export`
    writes the picture as SVG or PNG. The colours follow the widget's palette, the text its font.
    """

    layerClicked = Signal(str)
    """The number of the layer or block the user clicked (``"3"``, ``"5.2"``, ``"6.b2.1"``)."""
    deleteRequested = Signal(str)
    """Delete (or Backspace) was pressed with the layer or block of this number highlighted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        self._architecture: Architecture | None = None
        self._report: ValidationReport | None = None
        self._boxes: dict[str, Box] = {}
        self._order: list[str] = []
        self._selected = ""
        self._diagram_rect = QRectF()
        self._placeholder: QGraphicsTextItem | None = None

    def show_network(self, architecture: Architecture, report: ValidationReport) -> None:
        """Redraw the whole picture for ``architecture`` and its validation ``report``, keeping the scroll
        position and the highlighted box (if its number is still there)."""
        self._architecture, self._report = architecture, report
        scroll = (self.horizontalScrollBar().value(), self.verticalScrollBar().value())
        scene = self.scene()
        self._boxes, self._order = {}, []
        self._placeholder = None
        scene.clear()
        palette = self.palette()
        scene.setBackgroundBrush(palette.color(QPalette.ColorRole.Base))
        drawing = NetworkDrawing(architecture, report, palette, self._pixel_font())
        diagram = drawing.network()
        scene.addItem(diagram)
        self._boxes, self._order = drawing.boxes, drawing.order
        margin = SCENE_MARGIN
        self._diagram_rect = diagram.mapRectToScene(diagram.childrenBoundingRect()).adjusted(
            -margin, -margin, margin, margin
        )
        scene_rect = QRectF(self._diagram_rect)
        if not architecture.layers:
            scene_rect = scene_rect.united(self._add_placeholder())
        scene.setSceneRect(scene_rect)
        self.horizontalScrollBar().setValue(scroll[0])
        self.verticalScrollBar().setValue(scroll[1])
        self._highlight(self._selected if self._selected in self._boxes else "")

    def numbers(self) -> list[str]:
        """The numbers of the layers and blocks drawn, in the order of :meth:`Architecture.walk`."""
        return list(self._order)

    def box_rect(self, number: str) -> QRectF | None:
        """The scene rectangle of the box (a block's frame) of the layer numbered ``number``; None if not drawn."""
        box = self._boxes.get(number)
        return None if box is None else box.mapRectToScene(box.rect())

    def box_text(self, number: str) -> str:
        """The text in the box of ``number`` ("3.1 Conv2d(8, 3×3)", a newline, "→ 8×4×4"); a block's title and,
        on the second line, its output shape (drawn by its "+" or merge node). "" if not drawn."""
        box = self._boxes.get(number)
        return "" if box is None else box.text()

    def placeholder(self) -> str:
        """The hint shown under the input while the network has no layers; "" when it has some."""
        return "" if self._placeholder is None else self._placeholder.toPlainText()

    def select_layer(self, number: str) -> None:
        """Highlight the box of ``number`` (a thick border in the palette's accent colour) and scroll it into
        view; "" (or a number not drawn) clears the highlight."""
        self._highlight(number if number in self._boxes else "")
        rect = self.box_rect(self._selected) if self._selected else None
        if rect is not None:
            # A block taller than the view: show its top, where its title is.
            room = self.mapToScene(self.viewport().rect()).boundingRect().height() - 2 * SCENE_MARGIN
            if rect.height() > room > 0:
                rect.setHeight(room)
            self.ensureVisible(rect, SCENE_MARGIN, SCENE_MARGIN)

    def export(self, path: Path) -> None:
        """Write the picture to ``path``: ``.svg`` (titled with the network's name) or ``.png`` (twice the size
        on screen), on the palette's Base colour, without the highlight. Raises :class:`WorkbenchError` for
        another suffix or when the file cannot be written."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in EXPORT_SUFFIXES:
            kind = f"'{path.suffix}'" if path.suffix else "a name without a suffix"
            raise WorkbenchError(
                f"Could not write the diagram to {path}: {kind} is not a picture format it can be saved as; "
                f"end the name with .svg or .png."
            )
        if not path.parent.is_dir():
            raise WorkbenchError(f"Could not write the diagram to {path}: the folder {path.parent} does not exist.")
        selected = self._selected
        self._highlight("")
        placeholder_visible = self._placeholder is not None and self._placeholder.isVisible()
        if self._placeholder is not None:
            self._placeholder.setVisible(False)
        try:
            data = self._svg() if suffix == ".svg" else self._png()
        finally:
            if self._placeholder is not None:
                self._placeholder.setVisible(placeholder_visible)
            self._highlight(selected)
        if not data:
            raise WorkbenchError(f"Could not write the diagram to {path}: the picture could not be drawn.")
        try:
            atomic_write_bytes(path, data)
        except OSError as error:
            reason = (error.strerror or str(error)).lower()
            raise WorkbenchError(f"Could not write the diagram to {path}: {reason}.") from None
        if not path.is_file() or path.stat().st_size == 0:
            raise WorkbenchError(f"Could not write the diagram to {path}: the file is empty after writing.")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """A left click on a box selects it and emits :attr:`layerClicked`."""
        super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            number = number_at(self.itemAt(event.position().toPoint()))
            if number:
                self.select_layer(number)
                self.layerClicked.emit(number)
        # The picture is the click's end, wherever it lands: nothing around the view is to handle it.
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Delete or Backspace asks for the highlighted layer to be removed (the builder does it, with undo)."""
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self._selected:
            self.deleteRequested.emit(self._selected)
            event.accept()
            return
        super().keyPressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """The end of a click (see :meth:`mousePressEvent`)."""
        super().mouseReleaseEvent(event)
        event.accept()

    def changeEvent(self, event: QEvent) -> None:
        """Redraw in the new colours or font when the theme or the font changes."""
        super().changeEvent(event)
        changes = (QEvent.Type.PaletteChange, QEvent.Type.FontChange)
        if event.type() in changes and self._architecture is not None and self._report is not None:
            self.show_network(self._architecture, self._report)

    def _pixel_font(self) -> QFont:
        """The widget's font sized in pixels, so the picture has the same layout on screen, in an SVG and in a
        PNG (whose resolutions differ)."""
        font = QFont(self.font())
        if font.pixelSize() <= 0:
            font.setPixelSize(max(1, round(font.pointSizeF() * self.logicalDpiY() / 72)))
        return font

    def _add_placeholder(self) -> QRectF:
        hint = QGraphicsTextItem(PLACEHOLDER)
        hint.setFont(self.font())
        hint.setDefaultTextColor(self.palette().color(QPalette.ColorRole.PlaceholderText))
        hint.setTextWidth(max(self._diagram_rect.width(), 240))
        option = hint.document().defaultTextOption()
        option.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        hint.document().setDefaultTextOption(option)
        hint.setPos(self._diagram_rect.center().x() - hint.textWidth() / 2, self._diagram_rect.bottom())
        self.scene().addItem(hint)
        self._placeholder = hint
        return hint.sceneBoundingRect().adjusted(0, 0, 0, SCENE_MARGIN)

    def _highlight(self, number: str) -> None:
        previous = self._boxes.get(self._selected)
        if previous is not None:
            previous.set_highlight(None)
        self._selected = number
        box = self._boxes.get(number)
        if box is not None:
            box.set_highlight(self.palette().color(QPalette.ColorRole.Highlight))

    def _svg(self) -> bytes:
        rect = self._diagram_rect
        size = QSize(math.ceil(rect.width()), math.ceil(rect.height()))
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        generator = QSvgGenerator()
        generator.setOutputDevice(buffer)
        generator.setSize(size)
        generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
        generator.setResolution(SVG_DPI)
        generator.setTitle(self._architecture.name if self._architecture is not None else "network")
        generator.setDescription("The network's layers, drawn by the workbench.")
        painter = QPainter()
        if not painter.begin(generator):
            return b""
        self._render(painter, QRectF(0, 0, size.width(), size.height()))
        painter.end()
        buffer.close()
        return bytes(buffer.data().data())

    def _png(self) -> bytes:
        rect = self._diagram_rect
        image = QImage(
            math.ceil(rect.width() * PNG_SCALE),
            math.ceil(rect.height() * PNG_SCALE),
            QImage.Format.Format_ARGB32_Premultiplied,
        )
        image.fill(self.palette().color(QPalette.ColorRole.Base))
        painter = QPainter()
        if not painter.begin(image):
            return b""
        self._render(painter, QRectF(0, 0, image.width(), image.height()))
        painter.end()
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        saved = image.save(buffer, "PNG")  # type: ignore[call-overload]  # the stubs say bytes; PySide6 takes a str
        buffer.close()
        return bytes(data.data()) if saved else b""

    def _render(self, painter: QPainter, target: QRectF) -> None:
        painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.scene().render(painter, target, self._diagram_rect, Qt.AspectRatioMode.IgnoreAspectRatio)
