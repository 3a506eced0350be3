"""The task runner: every kind of background work fails into a message box made in the GUI thread.

Each test runs the window in interactive mode with ``QMessageBox.warning`` replaced by a recorder of the thread
it is called in: before the runner, a failed export built its box on the worker thread and the window vanished.
"""

from __future__ import annotations

import threading

import pytest
from PySide6.QtWidgets import QMessageBox

from workbench.core.errors import DatasetError
from workbench.session.phase import Phase
from workbench.ui.main_window import MainWindow
from workbench.ui.tasks import running_threads


@pytest.fixture
def boxes(monkeypatch):
    """The warnings shown, each with the name of the thread that made it."""
    shown: list[tuple[str, str, str]] = []

    def record(parent, title, text, *args, **kwargs):
        shown.append((threading.current_thread().name, title, text))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", record)
    monkeypatch.setattr(QMessageBox, "information", lambda *args, **kwargs: QMessageBox.StandardButton.Ok)
    return shown


@pytest.fixture
def interactive(qtbot, tmp_path, boxes):
    win = MainWindow(interactive=True, runs_out=tmp_path / "run")
    qtbot.addWidget(win)
    win.load_dataset("digits")
    win.load_preset("seed-relu-mlp")
    win.panel.train_size.setValue(600)
    win.panel.val_size.setValue(100)
    win.panel.epochs.setValue(1)
    win.show()
    yield win
    win.close()


def wait_idle(qtbot, window, timeout=60_000):
    qtbot.waitUntil(lambda: window.session.phase is Phase.IDLE and not running_threads(), timeout=timeout)


def only_box(boxes):
    assert len(boxes) == 1, boxes
    thread, title, text = boxes[0]
    assert thread == threading.main_thread().name, f"the box was made on {thread}"
    return title, text


def test_a_failed_download_is_reported_in_the_gui_thread(qtbot, interactive, boxes, monkeypatch):
    from workbench.core.data import datasets

    monkeypatch.setattr(datasets, "locate", lambda name, data_dir=None: None)

    def refuse(name, *args, **kwargs):
        raise DatasetError(f"Could not find the {name} dataset. Downloading it failed: no network.")

    monkeypatch.setattr(datasets, "load", refuse)
    interactive.load_dataset("mnist")
    assert interactive.session.phase is Phase.LOADING_DATA
    wait_idle(qtbot, interactive)
    title, text = only_box(boxes)
    assert title == "MNIST is not available" and "no network" in text
    assert interactive.session.dataset.info.name == "digits", "the loaded dataset stays"
    assert interactive.panel.dataset.currentData() == "digits"


def test_a_run_that_throws_is_reported_in_the_gui_thread(qtbot, interactive, boxes, monkeypatch):
    from workbench.session import runs

    def broken(request, state):
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(runs, "train", broken)
    with qtbot.waitSignal(interactive.runFinished, timeout=30_000) as finished:
        interactive.start_training()
    assert finished.args == ["failed"]
    title, text = only_box(boxes)
    assert title == "The run failed" and "The run failed unexpectedly: RuntimeError: the engine broke" in text
    assert interactive.panel.start_button.isEnabled() and interactive.panel.settings_box.isEnabled()


def test_a_continued_run_that_fails_is_reported_in_the_gui_thread(qtbot, interactive, boxes, tmp_path, monkeypatch):
    from workbench.session import runs

    with qtbot.waitSignal(interactive.runFinished, timeout=60_000):
        interactive.start_training()

    def broken(request, state):
        assert request.resume == tmp_path / "run" and request.extra_epochs == 2
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs, "train", broken)
    with qtbot.waitSignal(interactive.runFinished, timeout=30_000) as finished:
        interactive.continue_run(tmp_path / "run", 2)
    assert finished.args == ["failed"]
    title, text = only_box(boxes)
    assert title == "The run failed" and "No space left on device" in text
    wait_idle(qtbot, interactive)


def test_an_evaluation_that_fails_is_reported_in_the_gui_thread(qtbot, interactive, boxes, monkeypatch):
    from workbench.session import runs

    def broken(*args, **kwargs):
        raise MemoryError("no room for the test split")

    monkeypatch.setattr(runs, "evaluate_model", broken)
    interactive.evaluate_current()
    assert interactive.session.phase is Phase.EVALUATING and not interactive.action_set["train.start"].isEnabled()
    wait_idle(qtbot, interactive)
    title, text = only_box(boxes)
    assert title == "The evaluation failed" and "MemoryError: no room for the test split" in text
    assert interactive.action_set["train.evaluate"].isEnabled()


def test_an_export_into_a_missing_folder_is_reported_and_the_window_stays(qtbot, interactive, boxes, tmp_path):
    with qtbot.waitSignal(interactive.runFinished, timeout=60_000):
        interactive.start_training()
    for fmt, name in (("onnx", "model.onnx"), ("python", "model.py")):
        boxes.clear()
        interactive.export_to(tmp_path / "run", fmt, tmp_path / "no" / "such" / "folder" / name)
        assert interactive.session.phase is Phase.EXPORTING and interactive.busy.isVisibleTo(interactive)
        wait_idle(qtbot, interactive)
        title, text = only_box(boxes)
        assert title == "The export failed" and "does not exist" in text
        assert interactive.isVisible() and not interactive.busy.isVisibleTo(interactive)
        assert interactive.action_set["file.export"].isEnabled()


def test_closing_joins_every_task_in_one_shutdown(qtbot, interactive, tmp_path):
    interactive.panel.epochs.setValue(500)
    with qtbot.waitSignal(interactive.batchProgress, timeout=20_000):
        interactive.start_training()
    interactive.confirm_stop_on_close = lambda: True
    interactive.close()
    assert not running_threads() and interactive.session.phase is Phase.IDLE
