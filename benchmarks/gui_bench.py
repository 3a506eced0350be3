"""``make bench`` (second part): a run started from the window against the same run headless.

Both train the same network on the same Fashion-MNIST subset with the same settings, alternating
round by round. Reported: median samples/s (the engine's steady epochs) and their ratio, and the
GUI event loop's lateness while the window trains — a QTimer asks to run every 10 ms, and each
tick records how late it came (p50 and p99).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from workbench.core.presets import load_preset
from workbench.core.runs.folders import METRICS_FILE
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer, prepare_data
from workbench.ui.main_window import MainWindow

TARGET_RATIO = 0.85
TARGET_P99_MS = 50.0
TICK_MS = 10


def steady_rate(rates: list[float]) -> float:
    return statistics.median(rates[1:])


def headless_rate(preset: str, config: TrainConfig) -> float:
    result = Trainer(load_preset(preset), config, prepare_data(config, progress=False), progress=False).run()
    return steady_rate([m.samples_per_second for m in result.history])


def gui_rate(preset: str, config: TrainConfig, out: Path) -> tuple[float, list[float]]:
    """Train from the window; returns samples/s and every timer tick's lateness in ms."""
    window = MainWindow(interactive=False, runs_out=out)
    window.load_preset(preset)
    window.load_dataset(config.dataset)
    window.panel.set_config(config)
    window.show()
    QTest.qWaitForWindowExposed(window)
    QTest.qWait(200)  # the first full paint of the window is start-up, not training
    lateness: list[float] = []
    clock = QElapsedTimer()
    timer = QTimer()
    timer.setInterval(TICK_MS)

    def tick() -> None:
        lateness.append(max(clock.nsecsElapsed() / 1e6 - TICK_MS, 0.0))
        clock.restart()

    timer.timeout.connect(tick)
    loop = QEventLoop()
    window.runFinished.connect(loop.quit)
    clock.start()
    timer.start()
    window.start_training()
    loop.exec()
    timer.stop()
    window.close()
    lines = (out / METRICS_FILE).read_text().splitlines()
    return steady_rate([json.loads(line)["samples_per_second"] for line in lines]), lateness


# Epochs per network so that each run trains for a few seconds on a 2-core CPU.
EPOCHS = {"seed-simplenet": 15, "cnn-small": 3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=list(EPOCHS))
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])  # noqa: F841 (kept alive for the windows)
    print(
        f"\nGUI vs headless on Fashion-MNIST (10,000 training images), median of {args.rounds} rounds; "
        f"event-loop lateness of a {TICK_MS} ms QTimer while the window trains"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for preset in args.presets:
            config = TrainConfig(
                dataset="fashion-mnist",
                train_size=10_000,
                val_size=1_000,
                epochs=EPOCHS.get(preset, 3),
                device="cpu",
                seed=0,
            )
            headless, gui, lateness = [], [], []
            for round_number in range(args.rounds):
                headless.append(headless_rate(preset, config))
                rate, late = gui_rate(preset, config, Path(scratch) / f"{preset}-{round_number}")
                gui.append(rate)
                lateness.extend(late)
            ratio = statistics.median(gui) / statistics.median(headless)
            p50, p99 = np.percentile(lateness, [50, 99])
            print(
                f"  {preset:<15} headless {statistics.median(headless):>9,.0f}/s  window "
                f"{statistics.median(gui):>9,.0f}/s  ratio {ratio:.2f}x "
                f"({'meets' if ratio >= TARGET_RATIO else 'misses'} ≥{TARGET_RATIO}x)  "
                f"lateness p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                f"({'meets' if p99 <= TARGET_P99_MS else 'misses'} p99 ≤{TARGET_P99_MS:g} ms)"
            )


if __name__ == "__main__":
    main()
