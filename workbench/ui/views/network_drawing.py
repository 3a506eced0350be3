"""How a network is laid out as a picture on a ``QGraphicsScene``, for the view in :mod:`.network_diagram`.

The layout is recursive: every piece (a layer's box, a block, a sequence of layers) is drawn at its own origin
under one invisible group item, and reports its width, height and the x of the flow line through it
(:class:`Part`); a sequence stacks its pieces on a common flow line, a block frames the sequences inside it.
So blocks nest to any depth without overlapping. :class:`NetworkDrawing` draws one network and keeps its boxes
by number; :func:`number_at` tells which layer an item belongs to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPolygonItem,
    QGraphicsSimpleTextItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from workbench.core.architecture import Architecture, Layer, LayerReport, ValidationReport, format_shape
from workbench.core.blocks import PARALLEL, RESIDUAL
from workbench.ui.panels.network_list import TONES, layer_label

PLACEHOLDER_BOX = "empty"
"""The text of the dashed box standing for an empty block or branch, where layers can be dropped."""

_PAD_X = 12
_PAD_Y = 6
_GAP = 22  # the vertical space between two pieces, where an arrow runs
_MARGIN = 10  # inside a block's frame, around what it holds
_BRANCH_GAP = 18
_TITLE_TOP = 6
_PLUS_RADIUS = 8
_FORK_RADIUS = 2.5
_HEAD_LENGTH = 7.0
_HEAD_HALF_WIDTH = 4.0
SCENE_MARGIN = 16
_BOX_RADIUS = 4.0
_FRAME_RADIUS = 8.0


@dataclass(frozen=True)
class _Look:
    """The colours of a box or frame."""

    fill: QColor
    border: QColor
    text: QColor
    dashed: bool = False


def _mix(base: QColor, other: QColor, amount: float) -> QColor:
    """``base`` moved ``amount`` (0 to 1) of the way to ``other``."""
    return QColor.fromRgbF(
        base.redF() + (other.redF() - base.redF()) * amount,
        base.greenF() + (other.greenF() - base.greenF()) * amount,
        base.blueF() + (other.blueF() - base.blueF()) * amount,
    )


def _odd(size: float) -> int:
    """``size`` rounded up to an odd whole number: the middle of a piece that wide is half-way across a pixel,
    where a 1-pixel line drawn down it is sharp."""
    whole = math.ceil(size)
    return whole if whole % 2 else whole + 1


def _pixel_middle(y: float) -> float:
    """The middle of the pixel row at or below ``y``: a 1-pixel horizontal line there is sharp."""
    return math.ceil(y) + 0.5


def _with_alpha(colour: QColor, alpha: int) -> QColor:
    shaded = QColor(colour)
    shaded.setAlpha(alpha)
    return shaded


class _Group(QGraphicsItem):
    """An invisible item holding a piece's items, so that the piece moves as one."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)

    def boundingRect(self) -> QRectF:
        return QRectF()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        pass


class Box(QGraphicsItem):
    """A rounded rectangle with text: a layer's box (its lines centred, the second one muted), or a block's frame
    (``title``: one bold line at its top left)."""

    def __init__(
        self, rect: QRectF, lines: list[str], look: _Look, font: QFont, radius: float, title: bool = False
    ) -> None:
        super().__init__()
        self._rect = rect
        self._lines = lines
        self._look = look
        self._font = font
        self._radius = radius
        self._title = title
        self._highlight: QColor | None = None
        self._spacing = QFontMetricsF(font).lineSpacing()

    def rect(self) -> QRectF:
        """The rectangle in the item's coordinates."""
        return QRectF(self._rect)

    def text(self) -> str:
        """Its lines of text, one per line."""
        return "\n".join(self._lines)

    def set_highlight(self, colour: QColor | None) -> None:
        """Draw the border thick in ``colour``; None: the normal border."""
        self._highlight = colour
        self.update()

    def pen(self) -> QPen:
        """The border's pen."""
        if self._highlight is not None:
            return QPen(self._highlight, 3.0)
        pen = QPen(self._look.border, 1.0)
        if self._look.dashed:
            pen.setStyle(Qt.PenStyle.DashLine)
        return pen

    def boundingRect(self) -> QRectF:
        return QRectF(self._rect)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        pen = self.pen()
        # The border is drawn inside the rectangle: 1-pixel lines stay crisp and the item stays in its bounds.
        inset = pen.widthF() / 2
        painter.setPen(pen)
        painter.setBrush(QBrush(self._look.fill) if self._look.fill.alpha() else Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(self._rect.adjusted(inset, inset, -inset, -inset), self._radius, self._radius)
        painter.setFont(self._font)
        if self._title:
            painter.setPen(self._look.text)
            area = self._rect.adjusted(_MARGIN, _TITLE_TOP, -_MARGIN, 0)
            painter.drawText(area, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, self._lines[0])
            return
        spacing = self._spacing
        top = self._rect.center().y() - spacing * len(self._lines) / 2
        muted = _mix(self._look.text, self._look.fill, 0.3) if self._look.fill.alpha() else self._look.text
        for index, line in enumerate(self._lines):
            painter.setPen(self._look.text if index == 0 else muted)
            area = QRectF(self._rect.left(), top + index * spacing, self._rect.width(), spacing)
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, line)


@dataclass
class Part:
    """A piece of the diagram drawn at its own origin under ``item``: its size, and ``axis``, the x of the flow
    line that enters it at the top and leaves it at the bottom."""

    item: QGraphicsItem
    width: float
    height: float
    axis: float


class NetworkDrawing:
    """Draws one network: the pieces, and the boxes by number."""

    def __init__(self, architecture: Architecture, report: ValidationReport, palette: QPalette, font: QFont) -> None:
        self._architecture = architecture
        self._rows = {row.number: row for row in report.rows}
        self._font = font
        self._bold = QFont(font)
        self._bold.setBold(True)
        self._italic = QFont(font)
        self._italic.setItalic(True)
        self._metrics = QFontMetricsF(font)
        self._line = self._metrics.lineSpacing()
        self._base = palette.color(QPalette.ColorRole.Base)
        self._text = palette.color(QPalette.ColorRole.Text)
        accent = palette.color(QPalette.ColorRole.Highlight)
        self._line_pen = QPen(self._text, 1.0)
        self._layer_look = _Look(_mix(self._base, accent, 0.14), self._text, self._text)
        self._end_look = _Look(self._base, self._text, self._text)
        self._empty_look = _Look(QColor(0, 0, 0, 0), _with_alpha(self._text, 150), _with_alpha(self._text, 170), True)
        # Frames are translucent, so a block inside a block shows a shade darker.
        self._frame_looks = {
            RESIDUAL: _Look(_with_alpha(self._text, 14), _with_alpha(self._text, 150), self._text),
            PARALLEL: _Look(_with_alpha(accent, 24), _with_alpha(self._text, 150), self._text),
        }
        self._box_width = self._widest_box()
        self.boxes: dict[str, Box] = {}
        self.order: list[str] = []

    def network(self) -> QGraphicsItem:
        """The whole diagram: the input, every layer and, when there are layers, the output."""
        architecture = self._architecture
        parts = [self._end_box(f"Input {format_shape(architecture.input_shape)}")]
        parts += [self._layer(layer, str(index + 1)) for index, layer in enumerate(architecture.layers)]
        if architecture.layers:
            parts.append(self._end_box(f"Output: {architecture.num_classes} classes"))
        return self._stack(parts).item

    def _widest_box(self) -> float:
        """One width for every box, that of the longest text: the column of boxes reads as a column."""
        texts = [PLACEHOLDER_BOX, f"Output: {self._architecture.num_classes} classes"]
        texts.append(f"Input {format_shape(self._architecture.input_shape)}")
        for number, _, layer in self._architecture.walk():
            if not layer.is_block:
                texts += self._box_lines(number, layer)
        return _odd(max(self._metrics.horizontalAdvance(text) for text in texts) + 2 * _PAD_X)

    def _box_lines(self, number: str, layer: Layer) -> list[str]:
        return [f"{number} {layer_label(layer)}", self._shape_text(number)]

    def _shape_text(self, number: str) -> str:
        row = self._rows.get(number)
        return f"→ {format_shape(row.output_shape)}" if row is not None and row.output_shape is not None else "→ ?"

    def _look(self, row: LayerReport | None, normal: _Look) -> _Look:
        """The error or warning tone of the row, else ``normal``."""
        state = None if row is None else "error" if row.error else "warning" if row.warning else None
        if state is None:
            return normal
        tone = TONES[state]
        return _Look(tone.background, tone.mark, tone.text)

    def _layer(self, layer: Layer, number: str) -> Part:
        self.order.append(number)
        if layer.type == RESIDUAL:
            return self._residual(layer, number)
        if layer.type == PARALLEL:
            return self._parallel(layer, number)
        row = self._rows.get(number)
        box = self._box(self._box_lines(number, layer), self._look(row, self._layer_look))
        self._register(box, number, row)
        return Part(box, box.rect().width(), box.rect().height(), box.rect().width() / 2)

    def _box(self, lines: list[str], look: _Look, pill: bool = False) -> Box:
        """A box of the common width, its ``lines`` centred; ``pill``: with round ends (the input and output)."""
        height = math.ceil(len(lines) * self._line + 2 * _PAD_Y)
        radius = height / 2 if pill else _BOX_RADIUS
        return Box(QRectF(0, 0, self._box_width, height), lines, look, self._font, radius)

    def _end_box(self, text: str) -> Part:
        box = self._box([text], self._end_look, pill=True)
        return Part(box, box.rect().width(), box.rect().height(), box.rect().width() / 2)

    def _register(self, shape: Box, number: str, row: LayerReport | None) -> None:
        shape.setData(0, number)
        shape.setCursor(Qt.CursorShape.PointingHandCursor)
        if row is not None and (row.error or row.warning):
            shape.setToolTip(row.error or row.warning or "")
        self.boxes[number] = shape

    def _sequence(self, layers: list[Layer], prefix: str) -> Part:
        """The layers one under the other; an empty list is a dashed "empty" box, where layers can go."""
        if not layers:
            box = self._box([PLACEHOLDER_BOX], self._empty_look)
            return Part(box, box.rect().width(), box.rect().height(), box.rect().width() / 2)
        return self._stack([self._layer(layer, f"{prefix}{index + 1}") for index, layer in enumerate(layers)])

    def _stack(self, parts: list[Part]) -> Part:
        """``parts`` one under the other on one flow line, an arrow from each to the next."""
        group = _Group()
        axis = max(part.axis for part in parts)
        right = max(part.width - part.axis for part in parts)
        y = 0.0
        for index, part in enumerate(parts):
            if index:
                self._connect(group, [QPointF(axis, y - _GAP), QPointF(axis, y)], head=True)
            part.item.setParentItem(group)
            part.item.setPos(round(axis - part.axis), y)
            y += part.height + _GAP
        return Part(group, axis + right, y - _GAP, axis)

    def _residual(self, layer: Layer, number: str) -> Part:
        """A frame around the block's layers; the skip path leaves the input, runs down the left side and joins
        the layers' output in a "+" at the bottom."""
        group = _Group()
        group.setData(0, number)
        inner = self._sequence(layer.layers, f"{number}.")
        projection = layer.resolved_params()["shortcut"] == "projection"
        label = "1×1 conv" if projection else "identity"
        label_length = QFontMetricsF(self._italic).horizontalAdvance(label)
        label_height = QFontMetricsF(self._italic).height()

        skip_x = _MARGIN + 0.5
        content_left = math.ceil(skip_x + 4 + label_height + 8)
        fork_y = _pixel_middle(_TITLE_TOP + self._line + 10)
        inner_top = math.ceil(fork_y + _GAP)
        axis = content_left + inner.axis
        # The skip's label runs along it, between the fork and the "+": leave it the room.
        plus_y = _pixel_middle(max(inner_top + inner.height + _GAP + _PLUS_RADIUS, fork_y + label_length + 24))
        bottom = math.ceil(plus_y + _PLUS_RADIUS + _MARGIN)
        title = f"{number} {layer_label(layer)}"
        shape = self._shape_text(number)
        width = max(
            content_left + inner.width + _MARGIN,
            axis + _PLUS_RADIUS + 6 + self._metrics.horizontalAdvance(shape) + _MARGIN,
            QFontMetricsF(self._bold).horizontalAdvance(title) + 2 * _MARGIN,
        )
        self._frame(layer, number, title, shape, width, bottom, group)
        inner.item.setParentItem(group)
        inner.item.setPos(content_left, inner_top)

        self._fork(group, QPointF(axis, fork_y))
        self._connect(group, [QPointF(axis, fork_y), QPointF(axis, inner_top)], head=True)
        inner_bottom = inner_top + inner.height
        self._connect(group, [QPointF(axis, inner_bottom), QPointF(axis, plus_y - _PLUS_RADIUS)], head=True)
        skip = [QPointF(axis, fork_y), QPointF(skip_x, fork_y), QPointF(skip_x, plus_y)]
        self._connect(group, [*skip, QPointF(axis - _PLUS_RADIUS, plus_y)], head=True)
        self._plus(group, QPointF(axis, plus_y))
        self._connect(group, [QPointF(axis, plus_y + _PLUS_RADIUS), QPointF(axis, bottom)], head=False)
        self._label(group, shape, QPointF(axis + _PLUS_RADIUS + 6, plus_y - self._metrics.height() / 2))
        along = self._label(group, label, QPointF(0, 0), italic=True)
        along.setRotation(-90)
        along.setPos(skip_x + 4, (fork_y + plus_y) / 2 + label_length / 2)
        return Part(group, math.ceil(width), math.ceil(bottom), axis)

    def _parallel(self, layer: Layer, number: str) -> Part:
        """A frame with the branches side by side, from one fork to one merge node ("concat" or "sum")."""
        group = _Group()
        group.setData(0, number)
        branches = [
            self._sequence(branch, f"{number}.b{index + 1}.") for index, branch in enumerate(layer.branches or [[]])
        ]
        fork_y = _pixel_middle(_TITLE_TOP + self._line + 10)
        branch_top = math.ceil(fork_y + _GAP)
        x = float(_MARGIN)
        axes = []
        for branch in branches:
            branch.item.setParentItem(group)
            branch.item.setPos(x, branch_top)
            axes.append(x + branch.axis)
            x += branch.width + _BRANCH_GAP
        axis = math.floor((axes[0] + axes[-1]) / 2) + 0.5
        join_y = _pixel_middle(branch_top + max(branch.height for branch in branches) + _GAP / 2)
        merge = layer.resolved_params()["merge"]
        merge_width = _odd(self._metrics.horizontalAdvance(merge) + 2 * _PAD_X)
        merge_height = math.ceil(self._line) + 2 * 3
        merge_top = math.ceil(join_y + _GAP * 0.75)
        bottom = merge_top + merge_height + _MARGIN
        title = f"{number} {layer_label(layer)}"
        shape = self._shape_text(number)
        width = max(
            x - _BRANCH_GAP + _MARGIN,
            axis + merge_width / 2 + 6 + self._metrics.horizontalAdvance(shape) + _MARGIN,
            QFontMetricsF(self._bold).horizontalAdvance(title) + 2 * _MARGIN,
        )
        self._frame(layer, number, title, shape, width, bottom, group)

        self._fork(group, QPointF(axis, fork_y))
        if len(axes) > 1:
            self._connect(group, [QPointF(axes[0], fork_y), QPointF(axes[-1], fork_y)], head=False)
            self._connect(group, [QPointF(axes[0], join_y), QPointF(axes[-1], join_y)], head=False)
        for branch, branch_axis in zip(branches, axes):
            self._connect(group, [QPointF(branch_axis, fork_y), QPointF(branch_axis, branch_top)], head=True)
            end = branch_top + branch.height
            self._connect(group, [QPointF(branch_axis, end), QPointF(branch_axis, join_y)], head=False)
        self._connect(group, [QPointF(axis, join_y), QPointF(axis, merge_top)], head=True)
        node = Box(QRectF(0, 0, merge_width, merge_height), [merge], self._end_look, self._font, merge_height / 2)
        node.setParentItem(group)
        node.setPos(axis - merge_width / 2, merge_top)
        self._connect(group, [QPointF(axis, merge_top + merge_height), QPointF(axis, bottom)], head=False)
        middle = merge_top + merge_height / 2 - self._metrics.height() / 2
        self._label(group, shape, QPointF(axis + merge_width / 2 + 6, middle))
        return Part(group, math.ceil(width), math.ceil(bottom), axis)

    def _frame(
        self,
        layer: Layer,
        number: str,
        title: str,
        shape: str,
        width: float,
        height: float,
        group: QGraphicsItem,
    ) -> Box:
        """The block's frame, under everything else in its ``group``; its text is the title and the output shape
        (only the title is drawn in it: the shape goes by the "+" or merge node)."""
        row = self._rows.get(number)
        look = self._look(row, self._frame_looks[layer.type])
        rect = QRectF(0, 0, math.ceil(width), math.ceil(height))
        frame = Box(rect, [title, shape], look, self._bold, _FRAME_RADIUS, title=True)
        frame.setParentItem(group)
        frame.setZValue(-1)
        self._register(frame, number, row)
        return frame

    def _connect(self, parent: QGraphicsItem, points: list[QPointF], head: bool) -> None:
        """A line through ``points``, with an arrow head at the last one if ``head``."""
        end = points[-1]
        if head:
            before = points[-2]
            dx, dy = end.x() - before.x(), end.y() - before.y()
            length = math.hypot(dx, dy) or 1.0
            ux, uy = dx / length, dy / length
            base = QPointF(end.x() - ux * _HEAD_LENGTH, end.y() - uy * _HEAD_LENGTH)
            normal = QPointF(-uy * _HEAD_HALF_WIDTH, ux * _HEAD_HALF_WIDTH)
            arrow = QGraphicsPolygonItem(QPolygonF([end, base + normal, base - normal]), parent)
            arrow.setPen(Qt.PenStyle.NoPen)
            arrow.setBrush(self._text)
            points = [*points[:-1], base]
        path = QPainterPath(points[0])
        for point in points[1:]:
            path.lineTo(point)
        line = QGraphicsPathItem(path, parent)
        line.setPen(self._line_pen)

    def _fork(self, parent: QGraphicsItem, centre: QPointF) -> None:
        dot = QGraphicsEllipseItem(
            QRectF(centre.x() - _FORK_RADIUS, centre.y() - _FORK_RADIUS, 2 * _FORK_RADIUS, 2 * _FORK_RADIUS), parent
        )
        dot.setPen(Qt.PenStyle.NoPen)
        dot.setBrush(self._text)

    def _plus(self, parent: QGraphicsItem, centre: QPointF) -> None:
        r = _PLUS_RADIUS
        circle = QGraphicsEllipseItem(QRectF(centre.x() - r, centre.y() - r, 2 * r, 2 * r), parent)
        circle.setPen(self._line_pen)
        circle.setBrush(self._base)
        cross = QPainterPath(QPointF(centre.x() - r * 0.55, centre.y()))
        cross.lineTo(centre.x() + r * 0.55, centre.y())
        cross.moveTo(centre.x(), centre.y() - r * 0.55)
        cross.lineTo(centre.x(), centre.y() + r * 0.55)
        QGraphicsPathItem(cross, parent).setPen(self._line_pen)

    def _label(self, parent: QGraphicsItem, text: str, where: QPointF, italic: bool = False) -> QGraphicsSimpleTextItem:
        label = QGraphicsSimpleTextItem(text, parent)
        label.setFont(self._italic if italic else self._font)
        label.setBrush(self._text)
        label.setPos(where)
        return label


def number_at(item: QGraphicsItem | None) -> str:
    """The number of the layer or block ``item`` belongs to; "" for the input, output and arrows between."""
    while item is not None:
        number = item.data(0)
        if isinstance(number, str) and number:
            return number
        item = item.parentItem()
    return ""
