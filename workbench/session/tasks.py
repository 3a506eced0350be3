"""Background work described without Qt: a :class:`Task` is a plain function of a :class:`TaskState`.

The function runs on a worker thread; it reports progress and partial results through
:meth:`TaskState.report` and looks at :attr:`TaskState.cancelled` (or registers a cancel callback). Its
handlers (``on_progress``, ``on_success``, ``on_failure``, ``on_done``) are called by the runner **in the
thread that owns the session** (the GUI thread in the app), never in the worker's. The Qt runner is
:class:`workbench.ui.tasks.TaskRunner`; :class:`InlineRunner` runs a task at once in the caller's thread,
for tests and scripts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from workbench.core.errors import describe_failure
from workbench.session.phase import Phase


class TaskState:
    """What a running task and the application share: progress reports, cancellation, pause (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._listeners: dict[str, list[Callable[[], None]]] = {"cancel": [], "pause": [], "resume": []}
        self.report: Callable[[Any], None] = lambda payload: None
        self.holding: Callable[[], bool] = lambda: False  # a paused task at rest (set by tasks that can pause)

    @property
    def cancelled(self) -> bool:
        """Whether the application asked the task to end early."""
        return self._cancelled

    def on(self, what: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` (in the asking thread) on ``cancel``, ``pause`` or ``resume``; at once for a cancel
        that came before."""
        with self._lock:
            self._listeners[what].append(callback)
            already = what == "cancel" and self._cancelled
        if already:
            callback()

    def cancel(self) -> None:
        """Ask the task to end as soon as it can."""
        with self._lock:
            self._cancelled = True
            listeners = list(self._listeners["cancel"])
        for callback in listeners:
            callback()

    def pause(self) -> None:
        """Ask a task that can pause (training) to pause."""
        self._notify("pause")

    def resume(self) -> None:
        """Let a paused task go on."""
        self._notify("resume")

    def _notify(self, what: str) -> None:
        with self._lock:
            listeners = list(self._listeners[what])
        for callback in listeners:
            callback()


def _ignore(*_: Any) -> None:
    return None


@dataclass
class Task:
    """One piece of background work and what to do with its outcome.

    ``work`` runs on a worker thread and returns the result. ``on_failure`` gets the user's sentence
    (:func:`workbench.core.errors.describe_failure`). ``on_done`` is called last, however it ended.
    """

    name: str
    phase: Phase
    work: Callable[[TaskState], Any]
    on_success: Callable[[Any], None] = _ignore
    on_failure: Callable[[str], None] = _ignore
    on_progress: Callable[[Any], None] = _ignore
    on_done: Callable[[], None] = _ignore
    state: TaskState = field(default_factory=TaskState)


class Runner(Protocol):
    """Runs tasks in the background and delivers their outcomes in the session's thread."""

    def start(self, task: Task) -> None:
        """Start ``task``; its handlers are called later, in the session's thread."""

    def shutdown(self) -> None:
        """Cancel every running task and wait for them to end."""


class InlineRunner:
    """A runner without threads: each task runs to its end inside :meth:`start`, handlers included.

    Failures reach ``on_failure`` exactly as with the Qt runner, so the session behaves the same.
    """

    def start(self, task: Task) -> None:
        """Run ``task`` now, in this thread."""
        task.state.report = task.on_progress
        try:
            result = task.work(task.state)
        except BaseException as error:  # the same net as the Qt runner's worker: every failure becomes a message
            if isinstance(error, KeyboardInterrupt | SystemExit):
                raise
            task.on_failure(describe_failure(error))
        else:
            task.on_success(result)
        finally:
            task.on_done()

    def shutdown(self) -> None:
        """Nothing runs after :meth:`start` returns."""


class NewestOnly:
    """Background work where only the newest request matters (an estimate, an inspection, a page's maps): starting
    one cancels the one before, and only the newest one's outcome reaches its handlers.

    The work runs on the runner directly, under no phase of the session: editing goes on meanwhile.
    """

    def __init__(self, runner: Runner, name: str):
        self.runner = runner
        self.name = name
        self._task: Task | None = None

    @property
    def busy(self) -> bool:
        """Whether a request is being worked on."""
        return self._task is not None

    def start(
        self,
        work: Callable[[TaskState], Any],
        on_success: Callable[[Any], None],
        on_failure: Callable[[str], None],
    ) -> None:
        """Cancel what is under way and start ``work``; its handlers are called only if no newer work started."""
        self.cancel()
        task = Task(self.name, Phase.IDLE, work)
        task.on_success = lambda result: self._delivered(task, on_success, result)
        task.on_failure = lambda message: self._delivered(task, on_failure, message)
        self._task = task
        self.runner.start(task)

    def cancel(self) -> None:
        """Drop the work under way, if any: its outcome is never delivered."""
        if self._task is not None:
            self._task.state.cancel()
            self._task = None

    def _delivered(self, task: Task, handler: Callable[[Any], None], outcome: Any) -> None:
        if task is not self._task:
            return
        self._task = None
        handler(outcome)
