"""Ctrl+C in the terminal and SIGTERM (a logout, ``kill``) close the window as its close button does.

Python runs a signal handler only when the interpreter gets control, and Qt's event loop keeps it in C++ while
the window waits for input: without help the window ignores both signals until the mouse moves. A short timer
gives Python control a few times a second. On a signal the window closes without asking: a run that trains is
stopped after its current batch and saved, as closing it by hand does once the user agrees; the application
then exits with the signal's status (130, 143).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from workbench.ui.main_window import MainWindow

WAKE_MS = 200
"""How often Python gets control to run a signal's handler: the longest a signal waits."""
SIGNALLED = 128


class CloseOnSignals(QObject):
    """Installs the handlers for ``window`` (in the GUI thread) and closes it when a signal came."""

    def __init__(self, app: QApplication, window: MainWindow):
        super().__init__(window)
        self.app, self.window = app, window
        self.received: int | None = None
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._note)
        self.timer = QTimer(self, interval=WAKE_MS)
        self.timer.timeout.connect(self._close_if_signalled)
        self.timer.start()

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:  # a second signal: the user insists
            sys.stderr.write("Stopped again: leaving at once.\n")
            sys.stderr.flush()
            raise SystemExit(SIGNALLED + signum)
        self.received = signum

    def _close_if_signalled(self) -> None:
        if self.received is None:
            return
        self.timer.stop()
        name = "Ctrl+C" if self.received == signal.SIGINT else signal.Signals(self.received).name
        training = self.window.session.phase.running
        self.window.interactive = False  # the signal is the answer: no question on closing
        self.window.close()
        kept = "; the run training was stopped after its batch and saved" if training else ""
        sys.stderr.write(f"Stopped by {name}: the window was closed{kept}.\n")
        sys.stderr.flush()
        self.app.exit(SIGNALLED + self.received)
