"""The ``workbench`` console script (and ``python -m workbench``): quiet about Ctrl+C from its first instant.

Importing the command line takes seconds (PyTorch, scikit-learn); a Ctrl+C or SIGTERM meanwhile would print a
``KeyboardInterrupt`` traceback, or leave the default of dying without a word. Here the signals are taken before
anything heavy is imported: nothing has been written yet, so the process says so in one line and exits with the
signal's status (130 for Ctrl+C, 143 for SIGTERM). ``train`` installs its own handlers once it runs (they stop the
run after the current batch and save it); every other command keeps these.

A run stopped by a signal has saved everything (each file written atomically and synced) when the command returns,
so the process then exits at once: the interpreter's teardown of PyTorch and the loaded data takes seconds, and the
user asked for the program to end.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def main() -> int:
    """Run the command line with the signals handled from the start; returns the exit status."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stopped)
    from workbench.cli import main as command_line
    from workbench.cli.interrupts import SIGNALLED

    status = command_line()
    if status > SIGNALLED:  # stopped by a signal, everything saved: leave now, not after seconds of teardown
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _stopped(signum: int, frame: FrameType | None) -> None:
    name = "Ctrl+C" if signum == signal.SIGINT else signal.Signals(signum).name
    sys.stderr.write(f"Stopped by {name} while starting; nothing was written.\n")
    sys.stderr.flush()
    os._exit(128 + signum)  # nothing to save: nothing of a run exists before ``train`` takes the signals over
