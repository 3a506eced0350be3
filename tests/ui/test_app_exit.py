"""The app, in its own process, exports a trained run three times through the window and exits with status 0."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.helpers import Sandbox

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
