"""Exporting from the window never replaces a file the workbench did not write without asking "Replace …?"
(No, the default, exports nothing); a run whose weights hold NaN still opens to show its history, but is
neither evaluated nor exported.

The window runs in interactive mode with ``QMessageBox.question`` answered by the test and the other boxes
recorded."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import safetensors.torch
import torch
from PySide6.QtWidgets import QMessageBox

from tests.helpers import train_tiny
from workbench.core.export.formats import foreign_files
from workbench.core.runs.trained import load_trained
from workbench.session.phase import Phase
from workbench.ui.main_window import MainWindow
from workbench.ui.tasks import running_threads

DIVERGED = (
    "hold NaN or infinite values (in layer {layer} Linear): the run diverged, so its predictions would be "
    "meaningless. Train it again with a lower learning rate."
)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A real run of seed-relu-mlp (Flatten, Linear, ReLU, Linear) on the digits."""
    return train_tiny(tmp_path_factory.mktemp("window-export") / "run", "seed-relu-mlp")


@pytest.fixture
def window(qtbot, tmp_path, boxes):
    win = MainWindow(interactive=True, runs_out=tmp_path / "runs")
    qtbot.addWidget(win)
    win.load_dataset("digits")
    win.show()
    yield win
    win.close()


def answering(monkeypatch, answer: QMessageBox.StandardButton) -> list[tuple[str, str, object]]:
    """Answer every "Replace …?" with ``answer``; the questions asked: (title, text, default button)."""
    asked: list[tuple[str, str, object]] = []

    def question(parent, title, text, buttons, default):
        asked.append((title, text, default))
        return answer

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return asked


def wait_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.session.phase is Phase.IDLE and not running_threads(), timeout=120_000)


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) and its bytes."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


# Replacing files


def test_answering_no_exports_nothing_and_keeps_the_users_files(qtbot, window, run, tmp_path, monkeypatch):
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "mine.py").write_text("print('my own code')\n")
    (exports / "mine.safetensors").write_bytes(b"my own weights")
    before = files(exports)
    asked = answering(monkeypatch, QMessageBox.StandardButton.No)
    assert not window.export_to(run, "python", exports / "mine.py")
    [(title, text, default)] = asked
    assert title == "Replace mine.py and mine.safetensors?"
    assert text.startswith(f"{exports / 'mine.py'} and {exports / 'mine.safetensors'} exist and were not written")
    assert default == QMessageBox.StandardButton.No
    wait_idle(qtbot, window)
    assert files(exports) == before and sorted(path.name for path in exports.iterdir()) == sorted(before)
    assert window.session.last_export is None
    assert window.statusBar().currentMessage().startswith("Nothing exported:")


def test_answering_yes_replaces_the_file_and_an_own_export_is_replaced_without_asking(
    qtbot, window, run, tmp_path, monkeypatch, boxes
):
    target = tmp_path / "mine.pt2"
    target.write_bytes(b"my own archive")
    asked = answering(monkeypatch, QMessageBox.StandardButton.Yes)
    assert window.export_to(run, "pt2", target)
    assert [title for title, _, _ in asked] == ["Replace mine.pt2?"]
    wait_idle(qtbot, window)
    assert boxes == [] and window.session.last_export.path == target
    assert target.read_bytes() != b"my own archive" and foreign_files(load_trained(run), "pt2", target) == []
    reloaded = torch.export.load(target).module()
    images = torch.zeros(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(reloaded(images), load_trained(run).model(images))

    window.session.last_export = None
    assert window.export_to(run, "pt2", target)
    wait_idle(qtbot, window)
    assert len(asked) == 1, "the workbench's own export is replaced without a question"
    assert boxes == [] and window.session.last_export.path == target


def test_without_dialogs_a_users_file_is_never_replaced(qtbot, run, tmp_path):
    scripted = MainWindow(interactive=False, runs_out=tmp_path / "runs")
    qtbot.addWidget(scripted)
    scripted.load_dataset("digits")
    target = tmp_path / "mine.onnx"
    target.write_bytes(b"my own model")
    scripted.export_to(run, "onnx", target)
    wait_idle(qtbot, scripted)
    assert target.read_bytes() == b"my own model" and scripted.session.last_export is None
    assert "mine.onnx exists and was not written by the workbench" in scripted.statusBar().currentMessage()
    scripted.close()


# A run that diverged


def poisoned(run: Path, destination: Path) -> Path:
    """A copy of ``run`` whose last layer's weights hold a NaN."""
    copy = shutil.copytree(run, destination)
    weights = safetensors.torch.load_file(copy / "model.safetensors")
    weights["3.weight"][0, 0] = math.nan
    safetensors.torch.save_file(weights, copy / "model.safetensors")
    return copy


def test_a_run_that_diverged_opens_with_its_history_but_is_not_evaluated_nor_exported(
    qtbot, window, run, tmp_path, boxes, monkeypatch
):
    diverged = poisoned(run, tmp_path / "diverged")
    histories: list[tuple[str, list]] = []
    window.session.history_shown.connect(lambda name, epochs: histories.append((name, epochs)))
    assert window.load_run(diverged)
    assert [len(epochs) for _, epochs in histories] == [1], "its curves are shown"
    assert DIVERGED.format(layer=4) in window.statusBar().currentMessage()
    assert boxes == []

    window.evaluate_run(diverged)
    wait_idle(qtbot, window)
    [(title, text)] = boxes
    assert title == "The evaluation failed" and DIVERGED.format(layer=4) in text
    assert "test accuracy" not in window.statusBar().currentMessage()

    boxes.clear()
    asked = answering(monkeypatch, QMessageBox.StandardButton.Yes)
    assert not window.export_to(diverged, "python", tmp_path / "diverged.py")
    [(title, text)] = boxes
    assert title == "Cannot export" and DIVERGED.format(layer=4) in text
    assert asked == [] and not (tmp_path / "diverged.py").exists()


def test_the_network_on_show_is_not_evaluated_once_its_weights_hold_nan(qtbot, window, run, boxes):
    assert window.open_trained(run)
    network = window.session.network
    assert network is not None and network.run_folder == run
    with torch.no_grad():
        network.model[1].bias[0] = math.inf
    window.evaluate_current()
    wait_idle(qtbot, window)
    [(title, text)] = boxes
    assert title == "The evaluation failed"
    assert text == f"The weights of {network.label} " + DIVERGED.format(layer=2)
    assert "test accuracy" not in window.statusBar().currentMessage()
