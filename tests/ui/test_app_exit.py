"""The app exits well: in its own process, it exports a trained run three times through the window and exits with
status 0; closing the window while a run trains takes less than a second, even during the test evaluation."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import Sandbox
from workbench.ui.tasks import running_threads

TRAIN = "train --preset seed-relu-mlp --dataset digits --train-size 300 --val-size 50 --epochs 1 --quiet"

EXPORT_FROM_THE_WINDOW = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path

    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from workbench.session.phase import Phase
    from workbench.ui.main_window import MainWindow

    app = QApplication([])
    window = MainWindow(interactive=False)
    window.show()
    run, out = Path(sys.argv[1]), Path(sys.argv[2])
    assert window.open_trained(run), "the run did not open"
    for format, name in (("onnx", "m.onnx"), ("pt2", "m.pt2"), ("python", "m.py")):
        window.export_to(window.session.export_source(), format, out / name)
        while window.session.phase is not Phase.IDLE:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        assert (out / name).is_file(), window.statusBar().currentMessage()
        print(window.session.last_export.message, flush=True)
    QTimer.singleShot(0, window.close)
    QTimer.singleShot(0, app.quit)
    app.exec()
    """
)


@pytest.fixture(scope="module")
def sandbox_with_a_run(tmp_path_factory) -> tuple[Sandbox, Path]:
    sandbox = Sandbox.make(tmp_path_factory.mktemp("app-exit"))
    return sandbox, sandbox.trained_run(TRAIN)


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_the_app_exits_with_status_0_after_exporting_three_times(sandbox_with_a_run, tmp_path, attempt):
    sandbox, run = sandbox_with_a_run
    done = sandbox.run_python(EXPORT_FROM_THE_WINDOW, run, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Wrote ") == 3 and done.stdout.count("checked ") == 3, done.stdout


# Closing the window while a run trains: within a second, however long the test split takes to score


@pytest.fixture
def slow_test_split(monkeypatch):
    """The test split scored ten images at a time, a quarter of a second each: 36 chunks, 9 s for the digits'
    360 images (as long as the Fashion-MNIST evaluation that froze the window after "Yes")."""
    from workbench.core.training import evaluation
    from workbench.session import training

    monkeypatch.setattr(evaluation, "EVAL_BATCH", 10)
    real = training._Reporter.on_test_progress

    def slowly(self, trainer, state, done, total):
        real(self, trainer, state, done, total)
        time.sleep(0.25)

    monkeypatch.setattr(training._Reporter, "on_test_progress", slowly)


def seconds_to_close(window) -> float:
    started = time.perf_counter()
    window.close()
    return time.perf_counter() - started


def test_closing_mid_run_stops_it_without_testing_it_within_a_second(qtbot, window, tmp_path, slow_test_split):
    window.panel.epochs.setValue(500)
    with qtbot.waitSignal(window.epochEnded, timeout=30_000):  # an epoch to keep: the run folder stays
        window.start_training()
    assert seconds_to_close(window) < 1.0
    assert not running_threads() and not window.isVisible()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "stopped" and run["metrics"]["test_accuracy"] is None, run
    assert not (tmp_path / "run" / "evaluation.json").exists()


def test_closing_during_the_test_evaluation_ends_it_within_a_second(qtbot, window, tmp_path, slow_test_split):
    lines: list[str] = []
    window.session.progress_text.connect(lambda line, detail, done: lines.append(f"{line} {detail}"))
    window.panel.epochs.setValue(1)
    window.start_training()
    qtbot.waitUntil(lambda: any("scored" in line for line in lines), timeout=30_000)
    assert lines[-1].startswith("Evaluating on 360 test images…"), lines
    assert seconds_to_close(window) < 1.0
    assert not running_threads() and not window.isVisible()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "stopped" and run["metrics"]["epochs_completed"] == 1, run
    assert run["message"].startswith("Stopped by the user during the test evaluation after epoch 1")
    assert (tmp_path / "run" / "model.safetensors").is_file()
