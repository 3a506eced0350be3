"""The ``workbench`` command: the desktop app (``gui``, the default), ``train``, ``runs``, ``datasets``, ``presets``,
``predict``, ``inspect``, ``export``.

Every error a user can cause ends with a one-paragraph message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench import __version__
from workbench.cli.console import ConsoleReporter, guess_lines, percent
from workbench.cli.inspect_command import add_inspect_command
from workbench.cli.interrupts import SIGNALLED, Interrupted, Interrupts, signal_name, stopped_line
from workbench.cli.lr_find_command import add_lr_find_command
from workbench.cli.runs_command import add_tensorboard_arguments, wants_tensorboard, write_tensorboard_logs
from workbench.cli.search_command import add_search_command
from workbench.cli.sweep_command import add_sweep_command
from workbench.cli.train_options import (
    SETTINGS,
    Default,
    DefaultsHelpFormatter,
    add_data_arguments,
    add_execution_arguments,
    add_image_arguments,
    add_network_arguments,
    add_optimisation_arguments,
    chosen_preset,
    new_folder,
    typed_settings,
)
from workbench.core.architecture import Architecture
from workbench.core.data import datasets
from workbench.core.errors import ConfigError, WorkbenchError, describe_failure
from workbench.core.export.formats import FORMATS, export_model
from workbench.core.presets import describe_preset, preset_names
from workbench.core.runs.folders import default_runs_dir
from workbench.core.runs.launch import LaunchedRun, new_run, read_continuation
from workbench.core.runs.predict import predict_images
from workbench.core.runs.summaries import list_runs
from workbench.core.runs.trained import load_trained
from workbench.core.text import printable
from workbench.core.training.config import OPTIMIZERS, TrainConfig, read_settings
from workbench.core.training.distributed import joined, processes_on_this_machine
from workbench.core.training.engine import Callback, Trainer
from workbench.core.training.threads import use_threads

USAGE_ERROR = 2

CallbackFactory = Callable[[Trainer], Callback]
"""Makes a callback for a ``train`` run from its trainer (see :func:`main`)."""


def main(argv: list[str] | None = None, *, callbacks: Sequence[CallbackFactory] = ()) -> int:
    """Entry point of the ``workbench`` console script; returns the exit status.

    ``callbacks`` extend ``train``: each is called with the run's trainer, once per run and on every process of
    a multi-process run, and the callback it returns listens to the run after the run folder's and the
    console's. A script can install its own listeners this way and then hand over to the command line.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui"])
    args.callback_factories = tuple(callbacks)
    try:
        return int(args.handler(args))
    except WorkbenchError as error:
        print(f"workbench: {describe_failure(error)}", file=sys.stderr)
        return USAGE_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Build, train and export small image classifiers.")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    parser.set_defaults(command=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    gui = commands.add_parser(
        "gui",
        help="open the desktop app (the default command)",
        description="Open the workbench window. The options script it for demonstrations "
        "and tests: gui --preset P --dataset D --epochs N --start "
        "--screenshot FILE --quit-when-done",
    )
    _add_gui_arguments(gui)
    gui.set_defaults(command="gui", handler=_gui)

    listing = commands.add_parser("datasets", help="list the datasets and where each one is found")
    listing.add_argument("--data-dir", help="also look in this folder first")
    listing.set_defaults(command="datasets", handler=_datasets)

    runs = commands.add_parser("runs", help="list the runs: settings, accuracy, and whether they can be continued")
    runs.add_argument(
        "--runs-dir", type=Path, help="where the runs are (default: the user data folder, or $WORKBENCH_RUNS_DIR)"
    )
    add_tensorboard_arguments(runs)
    runs.set_defaults(command="runs", handler=_runs)

    presets = commands.add_parser("presets", help="list the bundled networks with their parameter counts")
    presets.set_defaults(command="presets", handler=_presets)

    _add_train_command(commands)
    _add_predict_command(commands)
    add_inspect_command(commands)
    add_sweep_command(commands)
    add_search_command(commands)
    add_lr_find_command(commands)
    _add_export_command(commands)
    return parser


def _add_train_command(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train a network headless and write a run folder",
        description="Train a network headless. Shows a progress bar, one line per epoch, then the test "
        "accuracy and the run folder. Ctrl+C (SIGINT) or SIGTERM stops the run after its current batch without "
        "testing it, saves it as stopped and says how to continue it; the exit status is then 130 (Ctrl+C) or "
        "143 (SIGTERM). A second one exits at once. Exit status 0: the run ended; 1: it diverged; 2: a "
        "setting, file or dataset was refused.",
        formatter_class=DefaultsHelpFormatter,
    )
    source = add_network_arguments(train)
    source.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue this run folder for --epochs more epochs, with its own settings; --lr, --schedule, "
        "--step-size, --gamma, --batch-size, --early-stopping, --device, --mixed-precision, --compile and "
        "--data-dir may change, the rest may not",
    )
    add_data_arguments(train)
    add_optimisation_arguments(train)
    add_execution_arguments(train)
    # Defaults are marked so that --config can tell the options typed from those left alone.
    train.set_defaults(command="train", handler=_train, **{name: Default(train.get_default(name)) for name in SETTINGS})


def _add_predict_command(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict",
        help="guess the classes of your own image files with a trained network",
        description="Print the most probable classes of each image (PNG, JPEG, ...), one line per image. Each "
        "image is made into the network's input: grayscale or colour, resized (area averaging), "
        "normalised as in training. If any image cannot be read, nothing is printed and every "
        "unreadable file is named.",
    )
    predict.add_argument("model", type=Path, metavar="MODEL", help="a run folder or a safetensors bundle folder")
    predict.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files")
    predict.add_argument(
        "--top", type=_at_least_one, default=3, metavar="N", help="how many classes to show per image (default 3)"
    )
    predict.add_argument(
        "--invert",
        action="store_true",
        help="invert the images first: dark objects on a light background become light on dark, "
        "as in Fashion-MNIST and MNIST",
    )
    predict.set_defaults(command="predict", handler=_predict)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _add_export_command(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export",
        help="export a trained network: ONNX, torch.export, a safetensors bundle or a Python file",
        description="Export the trained network of a run folder (or a bundle), then check the export against "
        "the PyTorch model on 64 test images (random inputs if the dataset is not here). onnx: an "
        "ONNX file (input 'input', output 'logits', any batch size); pt2: a torch.export program; "
        "safetensors: a bundle folder with model.safetensors, architecture.json and meta.json; "
        "python: a standalone .py file with its weights beside it in a .safetensors file of the "
        "same name.",
    )
    export.add_argument("run", type=Path, metavar="RUN_DIR", help="a run folder or a safetensors bundle folder")
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument(
        "--out",
        type=_export_target,
        default=Path("."),
        metavar="PATH",
        help="the file (the folder of a bundle) to write, or an existing folder to write "
        "RUN_NAME.onnx, RUN_NAME.pt2, RUN_NAME-bundle or RUN_NAME.py into (default: the "
        "current folder)",
    )
    export.add_argument(
        "--force",
        action="store_true",
        help="replace what is at the target even if the workbench did not write it (an earlier export is "
        "replaced without it)",
    )
    export.set_defaults(command="export", handler=_export)


def _export_target(text: str) -> Path:
    """``--out``: a path ending in a slash names a folder to write into, made if it is missing."""
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)) and not path.exists():
        try:
            path.mkdir(parents=True)
        except OSError as error:
            raise argparse.ArgumentTypeError(f"cannot create the folder {path}: {error.strerror or error}") from None
    return path


def _export(args: argparse.Namespace) -> int:
    trained = load_trained(args.run)
    result = export_model(
        trained, args.format, args.out, progress=lambda stage: print(stage, flush=True), force=args.force
    )
    print(result.message)
    return 0


def _add_gui_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help="open this bundled network (default seed-simplenet)")
    source.add_argument("--arch", type=Path, metavar="FILE", help="open this architecture file")
    parser.add_argument("--dataset", help="dataset to select (default fashion-mnist, else digits), or folder:PATH")
    add_image_arguments(parser)
    for option in ("--epochs", "--train-size", "--val-size", "--batch-size", "--seed"):
        parser.add_argument(option, type=int)
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--augment", metavar="LIST", help="augment the training images: crop, flip, rotate, erase")
    parser.add_argument("--device", help="auto, cpu, cuda:N or mps")
    parser.add_argument("--out", type=new_folder, help="run folder for a --start run (new or empty)")
    parser.add_argument("--start", action="store_true", help="start training at once")
    parser.add_argument(
        "--tab",
        metavar="NAME",
        help="show this tab: training, evaluation, gradients, inspect, weights, runs, experiments, data or "
        "activations "
        "(with --screenshot: the tab to take)",
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="save a picture of the whole window (after the run, with --start)",
    )
    parser.add_argument(
        "--quit-when-done",
        action="store_true",
        help="exit after the run (or the screenshot); problems go to stderr, not dialogs",
    )


def _gui(args: argparse.Namespace) -> int:
    from workbench.ui.app import run_app

    return run_app(args)


def _datasets(args: argparse.Namespace) -> int:
    for name in datasets.dataset_names():
        print(datasets.describe(name, args.data_dir))
    return 0


def _presets(args: argparse.Namespace) -> int:
    for name in preset_names():
        print(describe_preset(name))
    return 0


def _predict(args: argparse.Namespace) -> int:
    guesses = predict_images(load_trained(args.model), args.images, top_k=args.top, invert=args.invert)
    for line in guess_lines(guesses):
        print(line)
    return 0


def _runs(args: argparse.Namespace) -> int:
    if wants_tensorboard(args):
        return write_tensorboard_logs(args)
    summaries = list_runs(args.runs_dir)
    if not summaries:
        print(f"No runs in {args.runs_dir or default_runs_dir()}.")
        return 0
    print(
        f"{'run':<44} {'status':<13} {'dataset':<14} {'optimizer':<9} {'lr':>8} {'epochs':>6} "
        f"{'best val':>8} {'test':>7}  network"
    )
    for found in summaries:
        # Names read from run.json are printed without their control characters (the file keeps them).
        run = dataclasses.replace(
            found,
            name=printable(found.name),
            status=printable(found.status),
            architecture=printable(found.architecture),
            dataset=printable(found.dataset),
            optimizer=printable(found.optimizer),
            problem=None if found.problem is None else printable(found.problem),
        )
        lr = f"{run.lr:g}" if run.lr is not None else "?"
        print(
            f"{run.name[:44]:<44} {run.status_text:<13} {run.dataset:<14} {run.optimizer:<9} {lr:>8} {run.epochs:>6} "
            f"{percent(run.best_val_accuracy):>8} {percent(run.test_accuracy):>7}  {run.architecture}"
        )
        if run.problem:
            print(f"    ! {run.problem}")
    return 0


def _train(args: argparse.Namespace) -> int:
    """``train``: a new run (on every process torchrun started, if it did), or ``--resume``.

    Ctrl+C or SIGTERM before the run trains (while the dataset loads) ends the command with one line and the
    signal's exit status, leaving no run folder (see :class:`Interrupts`)."""
    with Interrupts() as interrupts:
        args.interrupts = interrupts
        try:
            typed = typed_settings(args)
            args.threads_used = use_threads(args.threads, processes_on_this_machine())
            if args.resume:
                return _continue(args, typed)
            config = TrainConfig.from_dict({**(read_settings(args.config) if args.config else {}), **typed})
            architecture = Architecture.load(args.arch) if args.arch else chosen_preset(args.preset, config.dataset)
            with joined(config.device) as cluster:
                progress = not args.quiet and (cluster is None or cluster.is_main)
                launched = new_run(architecture, config, args.out, progress=progress, cluster=cluster)
                return _run_launched(launched, args)
        except Interrupted as interrupted:
            kept = f"{args.resume} is as it was" if args.resume else "no run folder was made"
            print(f"Stopped by {signal_name(interrupted.signum)} before training began; {kept}.", file=sys.stderr)
            return SIGNALLED + interrupted.signum


def _continue(args: argparse.Namespace, typed: dict[str, Any]) -> int:
    """``train --resume``: the run goes on with its own settings but those typed that may change (the learning
    rate, schedule, batch size, ...; see ``CONTINUABLE``); typing one that may not is refused."""
    if args.config:
        raise ConfigError("--config sets up a new run; --resume continues a run with its own settings.")
    if args.out is not None:
        raise ConfigError("--resume writes into the run's own folder; --out names the folder of a new run.")
    continuation = read_continuation(args.resume, args.epochs, typed)
    changes = [f"{name} {old} → {new}" for name, (old, new) in continuation.changed.items() if name != "epochs"]
    if changes:
        print(f"Changed for the rest of the run: {', '.join(changes)}.", flush=True)
    with joined(continuation.config.device) as cluster:
        progress = not args.quiet and (cluster is None or cluster.is_main)
        launched = continuation.start(progress=progress, cluster=cluster)
        if launched.trainer.is_main:
            print(f"Continuing {args.resume} after epoch {launched.continued_after}, for {args.epochs} more.")
        return _run_launched(launched, args)


def _run_launched(launched: LaunchedRun, args: argparse.Namespace) -> int:
    """Train; the run folder and the console are the main process's (the only one, or torchrun's rank 0).

    A run that Ctrl+C or SIGTERM stopped ends with one line on stderr (what was kept, how to continue) and exit
    status 130 or 143; otherwise the exit status is 0, or 1 for a run that diverged."""
    interrupts: Interrupts = args.interrupts
    interrupts.watch(launched)
    trainer, folder = launched.trainer, launched.folder
    reporter = None
    if folder is not None:
        reporter = ConsoleReporter(quiet=args.quiet)
        trainer.callbacks.append(reporter)
        reporter.announce(trainer, folder, args.threads_used)
        if trainer.cluster is None:
            reporter.estimate(trainer, launched.continued_after or 0, stop=lambda: interrupts.received is not None)
    trainer.callbacks += [make(trainer) for make in args.callback_factories]
    result = trainer.run()
    signum = interrupts.received
    if signum is not None and result.status == "stopped":
        if folder is not None:
            print(stopped_line(signal_name(signum), result, launched), file=sys.stderr, flush=True)
        return SIGNALLED + signum
    if reporter is not None and folder is not None:
        reporter.conclude(result, folder)
    return 0 if result.status != "diverged" else 1
