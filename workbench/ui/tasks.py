"""The one background-task runner: each :class:`~workbench.session.tasks.Task` on its own QThread.

Every handler of a task (progress, success, failure, done) runs in the GUI thread, by construction: the
worker's signals are connected with an explicit queued connection to slots of the runner, a QObject that
lives in the GUI thread, and only those slots call the task's handlers. (PySide6 runs a lambda connected
without a receiver in the emitting thread; a message box made there can take the whole window down.)
"""

from __future__ import annotations

import weakref
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from workbench.core.errors import describe_failure
from workbench.session.tasks import Task

_threads: weakref.WeakSet[QThread] = weakref.WeakSet()
JOIN_TIMEOUT_MS = 60_000


def running_threads() -> list[QThread]:
    """Task threads that are still running (tests check none leak); a thread deleted with its window is not."""
    return [thread for thread in list(_threads) if shiboken6.isValid(thread) and thread.isRunning()]


class _Worker(QObject):
    """Runs one task's function on the thread it is moved to; its signals carry the outcome."""

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, task: Task):
        super().__init__()
        self.task = task
        self.undelivered = 0  # reports emitted and not yet handed to the task (read in the GUI thread)
        task.state.report = self._report

    def _report(self, payload: Any) -> None:
        self.undelivered += 1
        self.progressed.emit(payload)  # thread-safe: queued to the runner

    @Slot()
    def run(self) -> None:
        try:
            result = self.task.work(self.task.state)
        except Exception as error:  # the app must survive anything a task throws, and say what it was
            self.failed.emit(describe_failure(error))
        else:
            self.succeeded.emit(result)
        finally:
            self.done.emit()


class _Running:
    """A task with its worker and thread, until the task's ``on_done`` has run."""

    def __init__(self, task: Task, worker: _Worker, thread: QThread):
        self.task, self.worker, self.thread = task, worker, thread


class TaskRunner(QObject):
    """Starts tasks on QThreads, delivers their outcomes in the GUI thread, joins them on :meth:`shutdown`."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._running: dict[_Worker, _Running] = {}

    def start(self, task: Task) -> None:
        """Run ``task`` on a new thread; its handlers are called in this (the GUI) thread."""
        worker = _Worker(task)
        thread = QThread(self)
        worker.moveToThread(thread)
        queued = Qt.ConnectionType.QueuedConnection
        worker.progressed.connect(self._progressed, queued)
        worker.succeeded.connect(self._succeeded, queued)
        worker.failed.connect(self._failed, queued)
        worker.done.connect(self._done, queued)
        # Direct: the thread must quit even while the GUI thread waits in shutdown().
        worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.started.connect(worker.run)
        self._running[worker] = _Running(task, worker, thread)
        _threads.add(thread)
        thread.start()

    def idle_queue(self) -> bool:
        """Whether every report the tasks have made so far has been delivered."""
        return all(running.worker.undelivered == 0 for running in self._running.values())

    def shutdown(self) -> None:
        """Cancel every task, wait for each thread, and deliver what they had left to say."""
        for running in list(self._running.values()):
            running.task.state.cancel()
        for running in list(self._running.values()):
            running.thread.wait(JOIN_TIMEOUT_MS)
        # The outcomes queued while waiting are delivered now, so every task's on_done runs once.
        QCoreApplication.sendPostedEvents(self)

    def _entry(self) -> _Running | None:
        sender = self.sender()
        return self._running.get(sender) if isinstance(sender, _Worker) else None

    @Slot(object)
    def _progressed(self, payload: Any) -> None:
        entry = self._entry()
        if entry is not None:
            entry.worker.undelivered -= 1
            entry.task.on_progress(payload)

    @Slot(object)
    def _succeeded(self, result: Any) -> None:
        entry = self._entry()
        if entry is not None:
            entry.task.on_success(result)

    @Slot(str)
    def _failed(self, message: str) -> None:
        entry = self._entry()
        if entry is not None:
            entry.task.on_failure(message)

    @Slot()
    def _done(self) -> None:
        sender = self.sender()
        entry = self._running.pop(sender, None) if isinstance(sender, _Worker) else None
        if entry is None:
            return
        entry.thread.wait()
        entry.thread.deleteLater()
        entry.worker.deleteLater()
        entry.task.on_done()
