"""Whether a view is in sight: the views put off drawing while the window shows another tab in front of them."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget


def out_of_sight(widget: QWidget) -> bool:
    """Whether ``widget`` lies hidden inside a window that is shown (another tab in front of it, a closed dock).

    Such a view can keep what it is given and draw it when it is next shown (its ``showEvent``): while a run trains,
    drawing what nobody sees takes the processor from the run. A widget whose window is not shown at all (a view
    on its own, in a test or a script) draws as it is told.
    """
    return not widget.isVisible() and widget.window().isVisible()
