"""What the window remembers from one start to the next: its geometry and dock layout, the network, the
dataset and training settings, the architecture files opened or saved lately, and the runs folder chosen with
File → Runs Folder… (unless ``$WORKBENCH_RUNS_DIR`` is set: the environment wins).

The values live in an INI file through QSettings: ``~/.config/workbench/workbench.ini`` on Linux (the user
configuration folder elsewhere), or ``workbench.ini`` in ``$WORKBENCH_CONFIG_DIR`` when that is set (the tests
use it). Everything read back is checked: a value that is missing, of the wrong type or damaged gives None
(or an empty list), never an exception, so the window falls back to its defaults.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from workbench.core.architecture import Architecture
from workbench.core.errors import WorkbenchError
from workbench.core.training.config import TrainConfig
from workbench.session.session import MAX_RECENT_FILES as MAX_RECENT

CONFIG_DIR_ENV = "WORKBENCH_CONFIG_DIR"
RUNS_DIR_ENV = "WORKBENCH_RUNS_DIR"
"""Read by :func:`workbench.core.runs.folders.default_runs_dir`: when it is set, it decides the runs folder."""
ORGANISATION = "workbench"
APPLICATION = "workbench"
SETTINGS_FILE = "workbench.ini"
LAYOUT_VERSION = 1
"""Passed to saveState/restoreState: bump it when the docks change so that old layouts are ignored."""

GEOMETRY_KEY = "window/geometry"
STATE_KEY = "window/state"
ARCHITECTURE_KEY = "work/architecture"
CONFIG_KEY = "work/config"
RECENT_KEY = "files/recent"
EXPORT_KEY = "files/export"
RUNS_FOLDER_KEY = "files/runs"


def open_settings() -> QSettings:
    """The app's settings: in ``$WORKBENCH_CONFIG_DIR`` if set, else in the user's configuration folder."""
    folder = os.environ.get(CONFIG_DIR_ENV)
    if folder:
        return QSettings(str(Path(folder) / SETTINGS_FILE), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


class SessionStore:
    """Typed, checked access to the remembered values. Structured values are stored as JSON text, which
    reads back the same from any QSettings format (an INI file turns a one-element list into a string)."""

    def __init__(self, settings: QSettings | None = None):
        self.settings = settings if settings is not None else open_settings()

    def geometry(self) -> QByteArray | None:
        """The window geometry saved by :meth:`save_window`, or None."""
        return self._bytes(GEOMETRY_KEY)

    def window_state(self) -> QByteArray | None:
        """The dock layout saved by :meth:`save_window`, or None."""
        return self._bytes(STATE_KEY)

    def architecture(self) -> Architecture | None:
        """The network shown when the window last closed, or None."""
        document = self._json(ARCHITECTURE_KEY)
        try:
            return Architecture.from_dict(document) if document is not None else None
        except (WorkbenchError, TypeError, ValueError):
            return None

    def config(self) -> TrainConfig | None:
        """The dataset and training settings shown when the window last closed, or None."""
        values = self._json(CONFIG_KEY)
        if not isinstance(values, dict):
            return None
        try:
            return TrainConfig.from_dict(values)
        except (WorkbenchError, TypeError, ValueError):
            return None

    def recent_files(self) -> list[Path]:
        """The architecture files opened or saved lately, newest first (at most :data:`MAX_RECENT`)."""
        paths = self._json(RECENT_KEY)
        if not isinstance(paths, list):
            return []
        return [Path(path) for path in paths if isinstance(path, str) and path][:MAX_RECENT]

    def export_choice(self) -> tuple[str, Path | None] | None:
        """The format and folder of the last export, or None."""
        choice = self._json(EXPORT_KEY)
        if not isinstance(choice, dict) or not isinstance(choice.get("format"), str):
            return None
        folder = choice.get("folder")
        return choice["format"], Path(folder) if isinstance(folder, str) and folder else None

    def runs_folder(self) -> Path | None:
        """The runs folder chosen last, or None: none was, or ``$WORKBENCH_RUNS_DIR`` is set and wins."""
        if os.environ.get(RUNS_DIR_ENV):
            return None
        folder = self._json(RUNS_FOLDER_KEY)
        return Path(folder) if isinstance(folder, str) and folder else None

    def save_runs_folder(self, folder: Path) -> None:
        """Remember the runs folder chosen, except while ``$WORKBENCH_RUNS_DIR`` decides it (a choice made then is
        for that session only, and the one remembered before stays)."""
        if not os.environ.get(RUNS_DIR_ENV):
            self.settings.setValue(RUNS_FOLDER_KEY, json.dumps(str(folder)))

    def save_export_choice(self, fmt: str, folder: Path | None) -> None:
        """Remember the format and folder the export dialog offers next."""
        self.settings.setValue(EXPORT_KEY, json.dumps({"format": fmt, "folder": str(folder) if folder else ""}))

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        """Remember the window's geometry (``saveGeometry``) and dock layout (``saveState``)."""
        self.settings.setValue(GEOMETRY_KEY, geometry)
        self.settings.setValue(STATE_KEY, state)

    def save_work(self, architecture: Architecture, config: TrainConfig) -> None:
        """Remember the network and the settings."""
        self.settings.setValue(ARCHITECTURE_KEY, json.dumps(architecture.to_dict()))
        self.settings.setValue(CONFIG_KEY, json.dumps(config.to_dict()))

    def save_recent(self, paths: list[Path]) -> None:
        """Remember the recent architecture files, newest first."""
        self.settings.setValue(RECENT_KEY, json.dumps([str(path) for path in paths[:MAX_RECENT]]))

    def sync(self) -> None:
        """Write what was set to disk now."""
        self.settings.sync()

    def _bytes(self, key: str) -> QByteArray | None:
        value = self.settings.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def _json(self, key: str):
        text = self.settings.value(key)
        if not isinstance(text, str):
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None
