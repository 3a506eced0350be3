"""``workbench gui`` with a command line the window cannot follow: started by hand, the window opens anyway and says
why in a dialog; with ``--quit-when-done`` the problem goes to stderr and the status is 2, as documented."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from workbench import cli
from workbench.core.data import datasets
from workbench.ui import app
from workbench.ui.main_window import MainWindow
from workbench.ui.settings import CONFIG_DIR_ENV
from workbench.ui.tasks import running_threads

BROKEN = "{'layers': [Flatten, Linear]}"


@pytest.fixture
def opened(monkeypatch, tmp_path) -> list[MainWindow]:
    """The windows ``run_app`` makes. Settings are kept in ``tmp_path``; no dataset is found but the bundled
    digits (loaded as the fallback), so the window never waits on a download."""

    def no_network(*args, **kwargs):
        raise OSError("no network here")

    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setattr(datasets, "user_root", lambda: tmp_path / "user")
    monkeypatch.setattr(datasets, "_download", no_network)
    windows: list[MainWindow] = []

    class Recorded(MainWindow):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            windows.append(self)

    monkeypatch.setattr(app, "MainWindow", Recorded)
    return windows


@pytest.fixture
def warnings(monkeypatch) -> list[tuple[str, str, bool]]:
    """The warning dialogs shown: title, text and whether the window was on the screen behind it. The first
    one closes the window, once it has its dataset, as the user would."""
    shown: list[tuple[str, str, bool]] = []

    def record(parent, title, text, *args, **kwargs):
        shown.append((title, text, parent.isVisible()))
        close_when_settled(parent)
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", record)
    return shown


def close_when_settled(window: MainWindow) -> None:
    if window.session.dataset is None or window.session.phase.busy or running_threads():
        QTimer.singleShot(50, lambda: close_when_settled(window))
        return
    window.close()  # the last window: the app quits, and run_app returns


def gui(*arguments: str):
    return cli._parser().parse_args(["gui", *arguments])


def run_app_at_most_a_minute(args) -> int:
    """``run_app(args)``; should its window never close, its event loop is ended after a minute (and the test fails)."""
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(lambda: QApplication.instance().exit(1))
    guard.start(60_000)
    try:
        return app.run_app(args)
    finally:
        guard.stop()


def test_a_bad_architecture_file_opens_the_window_with_the_reason_in_a_dialog(
    qtbot, qapp, tmp_path, opened, warnings, capsys
):
    bad = tmp_path / "bad.json"
    bad.write_text(BROKEN)
    status = run_app_at_most_a_minute(gui("--arch", str(bad), "--epochs", "3", "--start"))
    [window] = opened
    qtbot.addWidget(window)
    assert status == 0
    [(title, text, window_shown)] = warnings
    assert window_shown, "the dialog came before the window"
    assert title == f"Cannot open the architecture file {bad}"
    assert text.startswith("bad.json is not valid JSON (line 1, column 2") and text.endswith("Is the file complete?")
    assert capsys.readouterr().err == ""
    assert window.panel.epochs.value() == 3  # what could be followed was
    assert list(Path(os.environ["WORKBENCH_RUNS_DIR"]).iterdir()) == []  # no --start with a part not followed


def test_with_quit_when_done_the_problem_goes_to_stderr_and_the_status_is_2(
    qtbot, qapp, tmp_path, opened, warnings, capsys
):
    bad = tmp_path / "bad.json"
    bad.write_text(BROKEN)
    status = app.run_app(gui("--arch", str(bad), "--quit-when-done"))
    [window] = opened
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.session.dataset is not None and not running_threads(), timeout=20_000)
    assert status == 2
    assert warnings == []
    assert not window.isVisible()
    err = capsys.readouterr().err
    assert err.startswith(f"workbench: Cannot open the architecture file {bad}: bad.json is not valid JSON"), err
