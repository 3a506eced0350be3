"""What ``workbench train`` prints: the first line, the estimated time, a progress bar over each epoch's batches, one line per epoch,
the test accuracy; and ``workbench predict``'s lines."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from workbench.cli.interrupts import SIGNALLED, signal_name
from workbench.core.runs.launch import LaunchedRun
from workbench.core.runs.predict import Guess
from workbench.core.text import printable
from workbench.core.training.engine import Callback, EpochMetrics, Trainer, TrainResult, TrainState, plural
from workbench.core.training.estimate import EstimateStopped, estimate_run
from workbench.core.training.threads import Threads

LOSS_SHOWN_EVERY = 0.25  # seconds between updates of the loss shown next to the progress bar


def guess_lines(guesses: list[Guess]) -> list[str]:
    """One line per image, the classes starting in one column: ``shirt.png: Shirt 61.2%, T-shirt/top 30.1%``.

    The paths and class names (read from the run's files) are :func:`printable`: no control character reaches
    the terminal."""
    paths = [printable(str(guess.path)) for guess in guesses]
    width = max((len(path) for path in paths), default=0) + 1
    return [
        f"{path + ':':<{width}} " + ", ".join(f"{printable(name)} {probability:.1%}" for name, probability in guess.top)
        for path, guess in zip(paths, guesses)
    ]


class ConsoleReporter(Callback):
    """A progress bar over the batches of each epoch and one line per finished epoch (stdout); on stderr with the
    bar, a line before the test split is evaluated. ``quiet``: neither the bar nor that line."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.bar: tqdm | None = None
        self.loss_shown_at = -math.inf

    def announce(self, trainer: Trainer, folder: Path, threads: Threads | None = None) -> None:
        """The run's first line (stdout): network, dataset, sizes, settings, how it computes (precision and why,
        memory format, CPU threads) and run folder; the network's and the dataset's names are :func:`printable`.
        Then the dataset's notes (what reading it skipped) on stderr."""
        info, config = trainer.data.info, trainer.config
        print(
            f"{printable(trainer.architecture.name)} on {printable(info.title)} ({len(trainer.data.train_y):,} "
            f"train / {len(trainer.data.val_y):,} validation / {len(trainer.data.test_y):,} test), "
            f"{config.optimizer} lr {config.lr:g}, batch {config.batch_size}, {plural(config.epochs, 'epoch')}, "
            f"device {trainer.device}{execution_words(trainer, threads)}. Run folder: {printable(str(folder))}",
            flush=True,
        )
        for note in info.notes:
            print(f"note: {printable(note)}", file=sys.stderr, flush=True)

    def estimate(self, trainer: Trainer, epochs_done: int, stop: Callable[[], bool]) -> None:
        """The second line: how long the run should take, from a few batches timed now (nothing if stopped)."""
        try:
            estimate = estimate_run(
                trainer.architecture,
                trainer.config,
                trainer.data.info,
                epochs=trainer.config.epochs - epochs_done,
                stop=stop,
            )
        except EstimateStopped:
            return
        compiling = " (not counting compilation)" if trainer.config.compile else ""
        print(f"Estimated time: {estimate.words()}{compiling}.", flush=True)

    def on_notice(self, trainer: Trainer, message: str) -> None:
        self._close_bar()
        print(f"note: {message}", file=sys.stderr, flush=True)

    def on_train_failed(self, trainer: Trainer, state: TrainState, message: str) -> None:
        self._close_bar()

    def on_batch_end(self, trainer: Trainer, state: TrainState) -> None:
        if self.quiet:
            return
        if self.bar is None:
            self.bar = tqdm(
                total=state.batches_per_epoch,
                desc=f"epoch {state.epoch}/{state.epochs}",
                unit="batch",
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self.bar.update(state.batch - self.bar.n)
        now = time.monotonic()
        if now - self.loss_shown_at >= LOSS_SHOWN_EVERY:  # reading the loss makes the CPU wait for the GPU
            self.bar.set_postfix_str(f"loss {state.batch_loss:.4f}", refresh=False)
            self.loss_shown_at = now

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: EpochMetrics) -> None:
        self._close_bar()
        print(
            f"epoch {metrics.epoch:>3}/{state.epochs}  train loss {metrics.train_loss:.4f}  "
            f"val loss {metrics.val_loss:.4f}  val acc {percent(metrics.val_accuracy)}  "
            f"{metrics.samples_per_second:,.0f} samples/s",
            flush=True,
        )

    def on_test_start(self, trainer: Trainer, state: TrainState, count: int) -> None:
        self._close_bar()
        if count and not self.quiet:
            print(f"Evaluating on {plural(count, 'test image')}…", file=sys.stderr, flush=True)

    def on_train_end(self, trainer: Trainer, state: TrainState, result: TrainResult) -> None:
        self._close_bar()

    def conclude(self, result: TrainResult, folder: Path) -> None:
        stream = sys.stderr if result.status == "diverged" else sys.stdout
        if result.status != "finished":
            print(result.message, file=stream)
        if math.isnan(result.test_accuracy):  # a stopped run is not tested
            print(f"test accuracy {percent(result.test_accuracy)}  (the test split was not evaluated)")
        else:
            print(f"test accuracy {percent(result.test_accuracy)}  (test loss {result.test_loss:.4f})")
        print(f"run folder: {folder}")

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def execution_words(trainer: Trainer, threads: Threads | None = None) -> str:
    """How the run computes, for the first line: the precision and why, then what it adds to plain PyTorch in one
    process, and on the CPU the threads."""
    precision = trainer.precision_choice
    words = [f"{precision.name} ({precision.reason})"]
    if trainer.channels_last:
        words.append("channels-last")
    if trainer.config.compile:
        words.append("torch.compile")
    if trainer.cluster is not None:
        words.append(f"{trainer.cluster.world_size} processes (global batch)")
    if threads is not None and trainer.device.type == "cpu":
        words.append(threads.words())
    return "".join(f", {word}" for word in words)


def percent(value: float | None) -> str:
    return "  n/a " if value is None or math.isnan(value) else f"{value:6.2%}"


def report_run(launch: LaunchedRun, quiet: bool, threads: Threads) -> None:
    """Print a queued run's lines as ``train`` does (its first lines, a progress bar, one line per epoch)."""
    if launch.folder is not None:
        reporter = ConsoleReporter(quiet=quiet)
        launch.trainer.callbacks.append(reporter)
        reporter.announce(launch.trainer, launch.folder, threads)


def queue_ended(ended: bool, signum: int | None, table: str, results: Path, not_ended: str, go_on: str) -> int:
    """A sweep's or a search's last lines and exit status: the table and results.csv, then, unless every run
    ended, why (the signal, else ``not_ended``) and ``go_on`` on stderr; 0, 128 + the signal, or 1."""
    print()
    print(table)
    print(f"Results: {results}")
    if ended:
        return 0
    how = f"Stopped by {signal_name(signum)}" if signum is not None else not_ended
    print(f"{how}; {go_on}", file=sys.stderr)
    return SIGNALLED + signum if signum is not None else 1
