"""Drag events for Qt tests, made the way the installed PySide6 takes them."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent


def drag_event(
    kind: type[QDragEnterEvent] | type[QDragMoveEvent], position: QPointF, action: Qt.DropAction, data: QMimeData
) -> QDragMoveEvent:
    """A drag-enter or drag-move event at ``position``, with the left button and no modifier.

    PySide6 6.12 takes the position as a QPointF (its QPoint form is deprecated there); 6.11 only as a QPoint.
    """
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    try:
        return kind(position, action, data, buttons, modifiers)  # type: ignore[arg-type]
    except TypeError:
        return kind(position.toPoint(), action, data, buttons, modifiers)
