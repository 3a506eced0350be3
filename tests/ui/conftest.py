"""Qt tests run offscreen; a test that leaves a worker thread running fails."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtWidgets import QMessageBox

from workbench.ui.tasks import running_threads


@pytest.fixture(autouse=True)
def _no_leaked_threads(qapp):
    yield
    qapp.processEvents()
    assert not running_threads(), f"worker threads still running after the test: {running_threads()}"


@pytest.fixture
def window(qtbot, tmp_path):
    """The window on digits with seed-relu-mlp, Adam and 2 epochs of 1,000 / 200 images: runs take seconds.

    Runs go to ``tmp_path / "run"``. (test_main_window.py has its own, starting from the default network.)
    """
    from workbench.ui.main_window import MainWindow

    win = MainWindow(interactive=False, runs_out=tmp_path / "run")
    qtbot.addWidget(win)
    win.load_dataset("digits")
    win.load_preset("seed-relu-mlp")
    win.panel.train_size.setValue(1000)
    win.panel.val_size.setValue(200)
    win.panel.batch_size.setValue(64)
    win.panel.optimizer.setCurrentIndex(win.panel.optimizer.findData("adam"))
    win.panel.epochs.setValue(2)
    win.show()
    yield win
    win.close()


@pytest.fixture
def boxes(monkeypatch) -> list[tuple[str, str]]:
    """The title and text of every warning the window shows (none is drawn); information boxes are dismissed."""
    shown: list[tuple[str, str]] = []

    def record(parent, title, text, *args, **kwargs):
        shown.append((title, text))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", record)
    monkeypatch.setattr(QMessageBox, "information", lambda *args, **kwargs: QMessageBox.StandardButton.Ok)
    return shown
