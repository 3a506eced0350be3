"""What Ctrl+C (SIGINT) and SIGTERM do to ``workbench train``: before the run trains, end the command; during it,
stop the run after the current batch or evaluation chunk and say in one line what was kept; a second signal, exit
at once with the run folder left consistent."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import threading
from typing import Any

from workbench.core.files import atomic_write_text
from workbench.core.runs.folders import CHECKPOINT_DIR, LATEST_FILE, RUN_FILE, read_run
from workbench.core.runs.launch import LaunchedRun
from workbench.core.training.engine import TrainResult

SIGNALLED = 128
"""Plus the signal's number, the exit status of a run stopped by one: 130 for Ctrl+C (SIGINT), 143 for SIGTERM."""


def signal_name(signum: int) -> str:
    return "Ctrl+C" if signum == signal.SIGINT else signal.Signals(signum).name


def stopped_line(name: str, result: TrainResult, launched: LaunchedRun) -> str:
    """The one line a run stopped by a signal ends with: what it kept and how to go on."""
    done, planned = len(result.history), launched.trainer.config.epochs
    if launched.recorder is not None and launched.recorder.removed:
        return f"Stopped by {name} during epoch 1, before any epoch was complete: nothing was kept."
    folder = shlex.quote(str(launched.folder))
    if done == 0:
        return f"Stopped by {name} during epoch 1, before any epoch was complete; run folder: {folder}"
    if done >= planned:
        return (
            f"Stopped by {name} during the test evaluation after the last epoch ({done}): the test accuracy was not "
            f"measured; run folder: {folder}"
        )
    return f"Stopped by {name} after epoch {done}; continue with: workbench train --resume {folder} --epochs {planned - done}"


class Interrupted(BaseException):
    """Ctrl+C or SIGTERM before the run's trainer existed: the command ends at once. A BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` on its way takes it for a failure."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class Interrupts:
    """What Ctrl+C (SIGINT) and SIGTERM do during ``train``, for the length of a ``with`` block.

    Before the run trains (:meth:`watch`), the first signal ends the command (:class:`Interrupted`). During the
    run it stops the run after the current batch or evaluation chunk, as the app's Stop does; :attr:`received`
    says which signal it was. A second signal exits at once (``os._exit``): the run folder's run.json is marked
    ``stopped`` first (a new run's folder without a checkpoint is removed, as the run's recorder does). Outside the
    main thread, where Python cannot install signal handlers, nothing changes.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self.launched: LaunchedRun | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def watch(self, launched: LaunchedRun) -> None:
        """From now on a signal stops ``launched``'s trainer."""
        self.launched = launched

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None:
            self._exit_now(signum)
        self.received = signum
        if self.launched is None:
            raise Interrupted(signum)
        self.launched.trainer.stop()

    def _exit_now(self, signum: int) -> None:
        """The second signal: leave the run folder consistent, say so in one line, and exit without waiting."""
        name, ending = signal_name(signum), "."
        try:
            if self.launched is not None and self.launched.folder is not None:
                ending = abandon(self.launched, name)
        except Exception:  # exiting matters more than the folder: its files are whole, each written atomically
            pass
        try:
            os.write(2, f"Stopped at once by a second {name}{ending}\n".encode())  # print could be mid-write
        finally:
            os._exit(SIGNALLED + signum)


def abandon(launched: LaunchedRun, name: str) -> str:
    """Leave the folder of a run that is exiting at once as the recorder would have: run.json ``stopped`` (a new
    run with no checkpoint yet removed), no temporary file of a write cut short. How the line goes on."""
    folder, recorder = launched.folder, launched.recorder
    assert folder is not None and recorder is not None
    if recorder.removed or not folder.is_dir():
        return ": nothing was kept."
    for partial in (*folder.glob(".*.tmp"), *(folder / CHECKPOINT_DIR).glob(".*.tmp")):
        partial.unlink(missing_ok=True)
    try:
        epoch = int(json.loads((folder / CHECKPOINT_DIR / LATEST_FILE).read_text(encoding="utf-8"))["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        epoch = None
    if epoch is None and recorder.new_run:
        shutil.rmtree(folder, ignore_errors=True)
        return ", before any epoch was complete: nothing was kept."
    document = read_run(folder)
    if document.get("status") == "running":
        document["status"] = "stopped"
        document["message"] = f"Stopped at once by a second {name}."
        atomic_write_text(folder / RUN_FILE, json.dumps(document, indent=2) + "\n")
    kept = f"its checkpoint of epoch {epoch}" if epoch is not None else "its earlier state"
    return f"; the run folder {shlex.quote(str(folder))} is saved as stopped, with {kept}."
