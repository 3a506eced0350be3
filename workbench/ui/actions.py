"""QActions and menus made from the session's action list, enabled by its rules and nothing else."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from workbench.session.actions import ActionSpec
from workbench.session.session import Session


def key_sequence(text: str) -> QKeySequence:
    """``std:Name`` is the platform's standard key (``QKeySequence.StandardKey.Name``); anything else as written."""
    if text.startswith("std:"):
        return QKeySequence(getattr(QKeySequence.StandardKey, text[4:]))
    return QKeySequence(text)


class ActionSet:
    """The window's actions, by id; :meth:`update` applies every enablement rule to the session as it is now."""

    def __init__(self, window: QMainWindow, session: Session):
        self.window = window
        self.session = session
        self.actions: dict[str, QAction] = {}
        self.specs: dict[str, ActionSpec] = {}
        self.menus: dict[str, QMenu] = {}
        for signal in (
            session.phase_changed,
            session.network_changed,
            session.file_changed,
            session.architecture_changed,
        ):
            signal.connect(self.update)

    def menu(self, title: str) -> QMenu:
        """The menu bar's menu called ``title``, made the first time it is asked for."""
        if title not in self.menus:
            self.menus[title] = self.window.menuBar().addMenu(title)
        return self.menus[title]

    def add(self, specs: Iterable[ActionSpec], resolve: Callable[[str], Callable[..., object]]) -> None:
        """Make a QAction for each spec, in its menu; ``resolve`` turns a command name into what it calls."""
        for spec in specs:
            menu = self.menu(spec.menu)
            if spec.separator_before:
                menu.addSeparator()
            action = QAction(spec.title, self.window)
            action.setObjectName(spec.id)
            if spec.shortcut:
                action.setShortcuts([key_sequence(key) for key in spec.shortcut])
            if spec.tooltip:
                action.setToolTip(spec.tooltip)
                menu.setToolTipsVisible(True)
            command = resolve(spec.command)
            argument = spec.argument
            if argument is None:
                action.triggered.connect(lambda checked=False, run=command: run())
            else:
                action.triggered.connect(lambda checked=False, run=command, value=argument: run(value))
            menu.addAction(action)
            self.actions[spec.id] = action
            self.specs[spec.id] = spec
        self.update()

    def __getitem__(self, action_id: str) -> QAction:
        return self.actions[action_id]

    def update(self, *_: object) -> None:
        """Enable each action exactly when its rule holds."""
        for action_id, action in self.actions.items():
            action.setEnabled(self.specs[action_id].enabled(self.session))
