"""One writer per run folder: an OS-level lock that the kernel releases when its process ends.

A run being trained holds an exclusive ``flock`` on ``writer.lock`` in its folder; the file also names the process
and when it took the lock, for the message a second writer gets. Because the kernel drops a ``flock`` when the
process holding it dies, ``kill -9`` never leaves a stale lock: the file stays, the lock does not.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from workbench.core.errors import RunError

LOCK_FILE = "writer.lock"
_SETTLE_SECONDS = 0.5  # how long a writer waits for a lock someone only glances at (see :func:`writer_of`)


@dataclass(frozen=True)
class Writer:
    """The process training a run: its id and when it started writing (local time); None where the lock file does
    not say."""

    pid: int | None
    since: datetime | None

    def describe(self) -> str:
        """``process 4242 since 14:05`` (the date too when it is not today)."""
        if self.pid is None:
            return "another process"
        if self.since is None:
            return f"process {self.pid}"
        pattern = "%H:%M" if self.since.date() == datetime.now().date() else "%Y-%m-%d %H:%M"
        return f"process {self.pid} since {self.since.strftime(pattern)}"


class RunLock:
    """The exclusive right to write the run folder ``folder``, held from :meth:`acquire` to :meth:`release` (or the
    end of the process)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._stream: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._stream is not None

    def acquire(self) -> RunLock:
        """Take the lock; :class:`RunError` naming the process that holds it. Returns itself."""
        if self._stream is not None:
            return self
        path = self.folder / LOCK_FILE
        try:
            stream = open(path, "a+", encoding="utf-8")  # held open as long as the lock
        except OSError as error:
            raise RunError(f"Cannot lock the run folder {self.folder}: {error.strerror or error}.") from None
        deadline = time.monotonic() + _SETTLE_SECONDS
        while True:
            try:
                fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_writer(stream)
                    stream.close()
                    raise RunError(being_trained(self.folder, holder)) from None
                time.sleep(0.02)
        stream.seek(0)
        stream.truncate()
        stream.write(json.dumps({"pid": os.getpid(), "since": datetime.now().astimezone().isoformat()}) + "\n")
        stream.flush()
        self._stream = stream
        return self

    def release(self) -> None:
        """Give the lock up (the file stays, naming the last writer, which is harmless)."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()  # closing the file drops the flock


def being_trained(folder: Path, writer: Writer | None, then: str = "continue it") -> str:
    """The message a second writer of a run folder gets (``then``: what the user may do once the run ended)."""
    who = (writer or Writer(None, None)).describe()
    return (
        f"This run is being trained by {who}: {folder} can have one writer at a time. Wait for that run to end "
        f"(or stop it), then {then}."
    )


def writer_of(folder: Path) -> Writer | None:
    """The process writing the run in ``folder`` now, or None when no process holds its lock.

    Looks with a shared lock, taken and dropped at once, so that a writer starting meanwhile is held up by at most
    a moment (it retries for :data:`_SETTLE_SECONDS`).
    """
    path = Path(folder) / LOCK_FILE
    try:
        stream = open(path, encoding="utf-8")
    except OSError:
        return None
    with stream:
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_writer(stream) or Writer(None, None)
        except OSError:
            return None
        fcntl.flock(stream.fileno(), fcntl.LOCK_UN)
    return None


def check_not_being_trained(folder: Path) -> None:
    """:class:`RunError` when a process is writing the run in ``folder`` now."""
    writer = writer_of(folder)
    if writer is not None:
        raise RunError(being_trained(folder, writer))


def _read_writer(stream: IO[str]) -> Writer | None:
    """The process and time the lock file names, if it names them."""
    try:
        stream.seek(0)
        document = json.loads(stream.read() or "null")
        pid = int(document["pid"])
        since = datetime.fromisoformat(document["since"]) if document.get("since") else None
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return Writer(pid, since.astimezone() if since is not None else None)
