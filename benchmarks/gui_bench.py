"""``make bench``, the window's part: a run started from the window against the same run headless.

Both train the same network on the same 10,000-image Fashion-MNIST subset with the same settings on the CPU,
alternating round by round so that the machine's noise hits them alike: headless is the engine's ``Trainer`` on
the main thread; the window is ``MainWindow`` (offscreen, the Training tab in front) starting the run as Start
does. Reported for each network, each figure against its target where it has one:

- samples/s headless and from the window: the median over every steady epoch (all but each run's first) of all
  rounds, as the engine measures an epoch's batches;
- their ratio, against the network's target (``TARGETS``);
- the time the window adds to an epoch: ``10,000 / window rate - 10,000 / headless rate``, in ms (at most
  ``TARGET_ADDED_MS``);
- the GUI event loop's lateness while the window trains: a QTimer asks to run every 10 ms, and each tick records
  how late it came; p50 and p99 over all rounds (p99 at most ``TARGET_P99_MS``);
- the share of the machine's CPU time that other processes (and, in a virtual machine, its host) took meanwhile:
  beyond a few percent, the rates of one run vary by tens of percent and the comparison says little.
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

TRAIN_SIZE = 10_000
TARGETS = {"seed-simplenet": 0.85, "cnn-small": 0.97}
"""The ratio window / headless each network should reach."""
TARGET_ADDED_MS = 10.0
TARGET_P99_MS = 30.0
TICK_MS = 10
_STEAL = 7  # the field of /proc/stat's cpu line counting time the host took from this virtual machine
EPOCHS = {"seed-simplenet": 20, "cnn-small": 6}
"""Epochs per run: a few seconds (seed-simplenet) to ten (cnn-small) on a 2-core CPU."""


def steady(rates: list[float]) -> list[float]:
    """The rates of a run's epochs after the first, which pays for warm-up."""
    return rates[1:]


def headless_rates(preset: str, config: TrainConfig) -> list[float]:
    result = Trainer(load_preset(preset), config, prepare_data(config, progress=False), progress=False).run()
    return steady([metrics.samples_per_second for metrics in result.history])


def window_rates(preset: str, config: TrainConfig, out: Path) -> tuple[list[float], list[float]]:
    """Train from the window; the steady epochs' samples/s and every timer tick's lateness in ms."""
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
    return steady([json.loads(line)["samples_per_second"] for line in lines]), lateness


def cpu_times() -> tuple[int, int, int] | None:
    """``(all, busy, this process's)`` CPU time in clock ticks so far, or None where /proc is missing."""
    try:
        fields = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    everything = sum(fields[: _STEAL + 1])
    return everything, everything - fields[3] - fields[4], int(own[11]) + int(own[12])


def others_share(before: tuple[int, int, int] | None, after: tuple[int, int, int] | None) -> float:
    """The share of all CPU time between two :func:`cpu_times` that other processes (and the host) took."""
    if before is None or after is None or after[0] <= before[0]:
        return float("nan")
    return ((after[1] - before[1]) - (after[2] - before[2])) / (after[0] - before[0])


def verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--presets", nargs="+", default=list(EPOCHS))
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])  # noqa: F841 (kept alive for the windows)
    print(
        f"\nWindow vs headless on Fashion-MNIST ({TRAIN_SIZE:,} training images, CPU), {args.rounds} rounds each: "
        f"median samples/s over the steady epochs; lateness of a {TICK_MS} ms QTimer while the window trains"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for preset in args.presets:
            epochs = EPOCHS.get(preset, 6)
            config = TrainConfig(
                dataset="fashion-mnist",
                train_size=TRAIN_SIZE,
                val_size=1_000,
                epochs=epochs,
                device="cpu",
                seed=0,
            )
            headless: list[float] = []
            window: list[float] = []
            lateness: list[float] = []
            before = cpu_times()
            for round_number in range(args.rounds):
                headless += headless_rates(preset, config)
                rates, late = window_rates(preset, config, Path(scratch) / f"{preset}-{round_number}")
                window += rates
                lateness += late
            others = others_share(before, cpu_times())
            alone, shown = statistics.median(headless), statistics.median(window)
            ratio, target = shown / alone, TARGETS.get(preset, TARGETS["cnn-small"])
            added_ms = (TRAIN_SIZE / shown - TRAIN_SIZE / alone) * 1000
            p50, p99 = np.percentile(lateness, [50, 99])
            print(
                f"  {preset:<15} ({epochs} epochs)  headless {alone:>9,.0f}/s  window {shown:>9,.0f}/s  "
                f"ratio {ratio:.2f}x ({verdict(ratio >= target)} >= {target}x)  "
                f"window adds {added_ms:+.1f} ms/epoch ({verdict(added_ms <= TARGET_ADDED_MS)} <= "
                f"{TARGET_ADDED_MS:g} ms)  lateness p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                f"({verdict(p99 <= TARGET_P99_MS)} <= {TARGET_P99_MS:g} ms)  "
                f"other processes took {others:.0%} of the CPUs"
            )


if __name__ == "__main__":
    main()
