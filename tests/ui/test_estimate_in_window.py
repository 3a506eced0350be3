"""The window says how long the run will take before Start, follows the user's edits (debounced, in the
background), and names what Automatic mixed precision means on the device chosen."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer

from workbench.core.training import devices
from workbench.session.estimates import MEASURING
from workbench.ui.binding import ESTIMATE_DEBOUNCE_MS

ESTIMATE = re.compile(r"Estimated: (under 1 s|about [\d a-z]+) on this CPU, (\d+) epochs?")


def estimated_epochs(window) -> int | None:
    match = ESTIMATE.fullmatch(window.panel.estimate_line.text())
    return int(match.group(2)) if match and window.panel.estimate_line.isVisible() else None


def test_the_estimate_appears_before_start_and_follows_the_epochs(window, qtbot):
    qtbot.waitUntil(lambda: estimated_epochs(window) == 2, timeout=15_000)
    lines: list[str] = []
    window.session.estimates.changed.connect(lines.append)
    for epochs in (3, 4, 5, 6, 9):  # typed one after another, faster than the debounce
        window.panel.epochs.setValue(epochs)
        qtbot.wait(ESTIMATE_DEBOUNCE_MS // 6)
    qtbot.waitUntil(lambda: estimated_epochs(window) == 9, timeout=15_000)
    assert lines.count(MEASURING) == 1, lines  # one measurement for the five edits


def test_the_window_stays_responsive_while_the_estimate_is_measured(window, qtbot):
    window.load_preset("cnn-strong")
    window.panel.train_size.setValue(1294)
    qtbot.waitUntil(lambda: window.session.estimates.line == MEASURING, timeout=5_000)
    clock, gaps = QElapsedTimer(), []
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: (gaps.append(clock.restart()), None))
    clock.start()
    timer.start()
    qtbot.waitUntil(lambda: estimated_epochs(window) == 2, timeout=30_000)
    timer.stop()
    assert gaps and max(gaps) < 500, gaps  # the event loop ran all along (a frozen window would show one long gap)


def test_starting_a_run_hides_the_estimate_and_it_returns_after(window, qtbot):
    qtbot.waitUntil(lambda: estimated_epochs(window) == 2, timeout=15_000)
    with qtbot.waitSignal(window.runFinished, timeout=60_000):
        window.start_training()
        assert not window.panel.estimate_line.isVisible()
    qtbot.waitUntil(lambda: estimated_epochs(window) == 2, timeout=15_000)


@pytest.fixture
def window_on(qtbot, tmp_path, monkeypatch, request):
    """The window made on a CPU that computes bfloat16 natively (param "native") or only emulates it."""
    from workbench.ui.main_window import MainWindow

    native = "AVX-512 BF16" if request.param == "native" else None
    monkeypatch.setattr(devices, "cpu_bfloat16_instructions", lambda: native)
    win = MainWindow(interactive=False, runs_out=tmp_path / "run")
    qtbot.addWidget(win)
    win.panel.device.setCurrentIndex(win.panel.device.findData("cpu"))
    return win


@pytest.mark.parametrize("window_on", ["native"], indirect=True)
def test_automatic_mixed_precision_says_bfloat16_and_why_on_a_native_cpu(window_on):
    combo = window_on.panel.mixed_precision
    assert combo.itemText(0) == "Automatic — bfloat16 (native here)"
    assert combo.itemData(0, Qt.ItemDataRole.ToolTipRole) == (
        "Automatic: bfloat16: this CPU computes it natively, with AVX-512 BF16."
    )
    assert combo.itemText(1) == "On — bfloat16 (native here)"
    assert "CPU — " in window_on.panel.device.currentText() and "thread" in window_on.panel.device.currentText()


@pytest.mark.parametrize("window_on", ["emulated"], indirect=True)
def test_automatic_mixed_precision_says_float32_where_bfloat16_is_emulated(window_on):
    combo = window_on.panel.mixed_precision
    assert combo.itemText(0) == "Automatic — float32 (no native bfloat16 here)"
    assert combo.itemText(1) == "On — bfloat16 (emulated here: slower)"
    combo.setCurrentIndex(1)
    assert "slower than float32" in combo.toolTip()
