"""The ``workbench`` command: the desktop app (``gui``, the default), ``train``, ``runs``, ``datasets``, ``presets``.

Every error a user can cause ends with a one-paragraph message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import signal
import sys
from pathlib import Path

from tqdm import tqdm

from . import __version__
from .core import datasets
from .core.architecture import Architecture
from .core.config import DEFAULT_TRAIN_SIZE, DEFAULT_VAL_SIZE, LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig
from .core.devices import available_devices
from .core.engine import Callback, EpochMetrics, Trainer, TrainResult, TrainState
from .core.errors import WorkbenchError
from .core.presets import describe_preset, load_preset, preset_names
from .core.runs import RunRecorder, default_runs_dir, list_runs, load_checkpoint, new_run_dir

USAGE_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui"])
    try:
        return args.handler(args)
    except WorkbenchError as error:
        print(f"workbench: {error}", file=sys.stderr)
        return USAGE_ERROR


def _parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="workbench", description="Build, train and export small image classifiers.")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    parser.set_defaults(command=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    gui = commands.add_parser("gui", help="open the desktop app (the default command)",
                              description="Open the workbench window. The options script it for demonstrations "
                                          "and tests: gui --preset P --dataset D --epochs N --start "
                                          "--screenshot FILE --quit-when-done")
    _add_gui_arguments(gui)
    gui.set_defaults(command="gui", handler=_gui)

    listing = commands.add_parser("datasets", help="list the datasets and where each one is found")
    listing.add_argument("--data-dir", help="also look in this folder first")
    listing.set_defaults(command="datasets", handler=_datasets)

    runs = commands.add_parser("runs", help="list the runs: settings, accuracy, and whether they can be continued")
    runs.add_argument("--runs-dir", type=Path, help="where the runs are (default: the user data folder, or "
                                                     "$WORKBENCH_RUNS_DIR)")
    runs.set_defaults(command="runs", handler=_runs)

    presets = commands.add_parser("presets", help="list the bundled networks with their parameter counts")
    presets.set_defaults(command="presets", handler=_presets)

    train = commands.add_parser(
        "train", help="train a network headless and write a run folder",
        description="Train a network headless. Shows a progress bar, one line per epoch, then the test "
                    "accuracy and the run folder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    source = train.add_mutually_exclusive_group()
    source.add_argument("--preset", help=f"a bundled network: {', '.join(preset_names())} "
                                         f"(default seed-simplenet)")
    source.add_argument("--arch", type=Path, metavar="FILE", help="an architecture JSON file")
    source.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue this run folder for --epochs more epochs, with its own settings")
    train.add_argument("--dataset", default=defaults.dataset,
                       help=", ".join(datasets.dataset_names()) + ", or folder:PATH for your own images")
    train.add_argument("--data-dir", help="folder holding the dataset files (else $WORKBENCH_DATA_DIR, the "
                                          "user data folder, the system folder, a download)")
    _add_image_arguments(train)
    train.add_argument("--train-size", type=int, help=f"training images drawn from the training split "
                                                     f"(default {DEFAULT_TRAIN_SIZE:,}, or what a small dataset has)")
    train.add_argument("--val-size", type=int, help=f"validation images drawn from the training split "
                                                   f"(default {DEFAULT_VAL_SIZE:,}, or a tenth of a small dataset)")
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer)
    train.add_argument("--lr", type=float, default=defaults.lr, help="learning rate")
    train.add_argument("--momentum", type=float, default=defaults.momentum, help="for sgd and rmsprop")
    train.add_argument("--nesterov", action="store_true", help="Nesterov momentum (sgd)")
    train.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    train.add_argument("--loss", choices=LOSSES, default=defaults.loss,
                       help="mse = mean squared error against one-hot labels, as early in the class")
    train.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule, help="learning-rate schedule")
    train.add_argument("--step-size", type=int, default=defaults.step_size, help="epochs between steps (step)")
    train.add_argument("--gamma", type=float, default=defaults.gamma, help="factor at each step (step)")
    train.add_argument("--early-stopping", type=int, default=defaults.early_stopping, metavar="PATIENCE",
                       help="stop after this many epochs without a better validation loss (0 = off)")
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--device", default=defaults.device,
                       help="auto, cpu, cuda, cuda:N or mps; here: "
                            + ", ".join(device_id for device_id, _ in available_devices()))
    train.add_argument("--out", type=Path, help="run folder to write (default: a new folder in the user data "
                                                "folder, or $WORKBENCH_RUNS_DIR)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(command="train", handler=_train)
    return parser


def _add_gui_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help="open this bundled network (default seed-simplenet)")
    source.add_argument("--arch", type=Path, metavar="FILE", help="open this architecture file")
    parser.add_argument("--dataset", help="dataset to select (default fashion-mnist, else digits), or folder:PATH")
    _add_image_arguments(parser)
    for option in ("--epochs", "--train-size", "--val-size", "--batch-size", "--seed"):
        parser.add_argument(option, type=int)
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--device", help="auto, cpu, cuda:N or mps")
    parser.add_argument("--out", type=Path, help="run folder for a --start run")
    parser.add_argument("--start", action="store_true", help="start training at once")
    parser.add_argument("--tab", metavar="NAME",
                        help="show this tab: training, evaluation, gradients, weights, runs, data or activations "
                             "(with --screenshot: the tab to take)")
    parser.add_argument("--screenshot", type=Path, metavar="PNG",
                        help="save a picture of the whole window (after the run, with --start)")
    parser.add_argument("--quit-when-done", action="store_true",
                        help="exit after the run (or the screenshot); problems go to stderr, not dialogs")


def _add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that shape a folder:PATH dataset's images."""
    parser.add_argument("--image-size", type=int, metavar="N",
                        help="folder:PATH only: resize every image to N×N pixels (default 28)")
    parser.add_argument("--channels", type=int, choices=CHANNELS,
                        help="folder:PATH only: 1 = grayscale, 3 = colour (default: 3 if any image is in colour)")


def _gui(args: argparse.Namespace) -> int:
    from .ui.app import run_app  # Qt is loaded only when the window is wanted
    return run_app(args)


def _datasets(args: argparse.Namespace) -> int:
    for name in datasets.dataset_names():
        print(datasets.describe(name, args.data_dir))
    return 0


def _presets(args: argparse.Namespace) -> int:
    for name in preset_names():
        print(describe_preset(name))
    return 0


def _runs(args: argparse.Namespace) -> int:
    summaries = list_runs(args.runs_dir)
    if not summaries:
        print(f"No runs in {args.runs_dir or default_runs_dir()}.")
        return 0
    print(f"{'run':<44} {'status':<13} {'dataset':<14} {'optimizer':<9} {'lr':>8} {'epochs':>6} "
          f"{'best val':>8} {'test':>7}  network")
    for run in summaries:
        lr = f"{run.lr:g}" if run.lr is not None else "?"
        print(f"{run.name[:44]:<44} {run.status:<13} {run.dataset:<14} {run.optimizer:<9} {lr:>8} {run.epochs:>6} "
              f"{_percent(run.best_val_accuracy):>8} {_percent(run.test_accuracy):>7}  {run.architecture}")
        if run.problem:
            print(f"    ! {run.problem}")
    return 0


def _train(args: argparse.Namespace) -> int:
    if args.resume:
        return _continue(args)
    architecture = Architecture.load(args.arch) if args.arch else load_preset(args.preset or "seed-simplenet")
    config = TrainConfig(
        dataset=args.dataset, data_dir=args.data_dir, train_size=args.train_size, val_size=args.val_size,
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        momentum=args.momentum, nesterov=args.nesterov, weight_decay=args.weight_decay, loss=args.loss,
        schedule=args.schedule, step_size=args.step_size, gamma=args.gamma, early_stopping=args.early_stopping,
        seed=args.seed, device=args.device)
    reporter = ConsoleReporter(quiet=args.quiet)
    trainer = Trainer(architecture, config, callbacks=[reporter], progress=not args.quiet)
    folder = new_run_dir(args.out, architecture, config)
    trainer.callbacks.insert(0, RunRecorder(folder))
    return _run_trainer(trainer, reporter, folder)


def _continue(args: argparse.Namespace) -> int:
    architecture, saved, checkpoint = load_checkpoint(args.resume)
    config = dataclasses.replace(saved, epochs=checkpoint.epoch + args.epochs)
    reporter = ConsoleReporter(quiet=args.quiet)
    trainer = Trainer(architecture, config, callbacks=[RunRecorder(args.resume), reporter], progress=not args.quiet,
                      resume=checkpoint)
    print(f"Continuing {args.resume} after epoch {checkpoint.epoch}, for {args.epochs} more.")
    return _run_trainer(trainer, reporter, args.resume)


def _run_trainer(trainer: Trainer, reporter: ConsoleReporter, folder: Path) -> int:
    reporter.announce(trainer, folder)
    previous = signal.signal(signal.SIGINT, lambda *_: trainer.stop())
    try:
        result = trainer.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    reporter.conclude(result, folder)
    return 0 if result.status != "diverged" else 1


class ConsoleReporter(Callback):
    """A progress bar over the batches of each epoch and one line per finished epoch."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.bar: tqdm | None = None

    def announce(self, trainer: Trainer, folder: Path) -> None:
        info, config = trainer.data.info, trainer.config
        print(f"{trainer.architecture.name} on {info.title} ({len(trainer.data.train_y):,} train / "
              f"{len(trainer.data.val_y):,} validation / {len(trainer.data.test_y):,} test), "
              f"{config.optimizer} lr {config.lr:g}, batch {config.batch_size}, {config.epochs} epochs, "
              f"device {trainer.device}. Run folder: {folder}", flush=True)

    def on_batch_end(self, trainer: Trainer, state: TrainState) -> None:
        if self.quiet:
            return
        if self.bar is None:
            self.bar = tqdm(total=state.batches_per_epoch, desc=f"epoch {state.epoch}/{state.epochs}",
                            unit="batch", leave=False, file=sys.stderr, dynamic_ncols=True)
        self.bar.update(state.batch - self.bar.n)
        self.bar.set_postfix_str(f"loss {state.batch_loss:.4f}", refresh=False)

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: EpochMetrics) -> None:
        self._close_bar()
        print(f"epoch {metrics.epoch:>3}/{state.epochs}  train loss {metrics.train_loss:.4f}  "
              f"val loss {metrics.val_loss:.4f}  val acc {_percent(metrics.val_accuracy)}  "
              f"{metrics.samples_per_second:,.0f} samples/s", flush=True)

    def on_train_end(self, trainer: Trainer, state: TrainState, result: TrainResult) -> None:
        self._close_bar()

    def conclude(self, result: TrainResult, folder: Path) -> None:
        stream = sys.stderr if result.status == "diverged" else sys.stdout
        if result.status != "finished":
            print(result.message, file=stream)
        print(f"test accuracy {_percent(result.test_accuracy)}  (test loss {result.test_loss:.4f})")
        print(f"run folder: {folder}")

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _percent(value: float | None) -> str:
    return "  n/a " if value is None or math.isnan(value) else f"{value:6.2%}"


if __name__ == "__main__":
    sys.exit(main())
