"""``workbench runs --tensorboard DIR [RUN ...]``: the runs (those named, or every run in --runs-dir) written as
TensorBoard event files, one folder per run in DIR (see :mod:`workbench.core.runs.tensorboard`).

Exit status 0: every run was written; 1: some could not be (damaged, or DIR holds a folder of that name that is not
an earlier export), each named on stderr, the others written; 2: a bad argument (a run that is not there, DIR a
file), before anything is written.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from pathlib import Path

from workbench.cli.interrupts import SIGNALLED
from workbench.core.errors import ConfigError, RunError
from workbench.core.runs.folders import default_runs_dir, is_run_folder
from workbench.core.runs.summaries import list_runs
from workbench.core.runs.tensorboard import log_name, write_tensorboard
from workbench.core.text import printable


def add_tensorboard_arguments(runs: argparse.ArgumentParser) -> None:
    """The ``runs`` command's options for writing runs as TensorBoard logs."""
    runs.add_argument(
        "selected",
        nargs="*",
        metavar="RUN",
        help="with --tensorboard: the runs to write, as folder names in --runs-dir or paths (default: every run)",
    )
    runs.add_argument(
        "--tensorboard",
        type=Path,
        metavar="DIR",
        help="write the runs as TensorBoard event files into DIR, one folder per run named after its run folder "
        "(per-epoch figures, hyperparameters, the test confusion matrix); an earlier export of a run is replaced, "
        "nothing else in DIR is touched",
    )
    runs.add_argument(
        "--no-confusion",
        action="store_true",
        help="with --tensorboard: give a run that recorded no test evaluation (stopped, or older) no confusion "
        "matrix, instead of computing one from its weights (which loads its dataset and evaluates the test split)",
    )


def wants_tensorboard(args: argparse.Namespace) -> bool:
    """Whether ``runs`` was given any of the options of :func:`add_tensorboard_arguments`."""
    return args.tensorboard is not None or bool(args.selected) or args.no_confusion


def write_tensorboard_logs(args: argparse.Namespace) -> int:
    """``runs --tensorboard DIR [RUN ...]``: one line per run written, a warning on stderr per run skipped, then
    how to open DIR. :class:`ConfigError` (exit status 2) for a bad argument, before anything is written."""
    if args.tensorboard is None:
        raise ConfigError("Naming runs, or --no-confusion, goes with --tensorboard DIR: say where to write them.")
    root = Path(args.runs_dir) if args.runs_dir is not None else default_runs_dir()
    log_dir: Path = args.tensorboard.expanduser()
    folders = [_find(text, root) for text in args.selected] if args.selected else _every_run(root)
    folders = list({folder.resolve(): folder for folder in folders}.values())  # a run named twice is written once
    if not folders:
        print(f"No runs in {root}: nothing written.")
        return 0
    _check_log_dir(log_dir, folders)
    written = skipped = 0
    try:
        for folder in folders:
            try:
                run = write_tensorboard(folder, log_dir, compute_confusion=not args.no_confusion)
            except RunError as error:
                skipped += 1
                print(f"workbench: skipped {printable(folder.name)}: {_one_line(error)}", file=sys.stderr, flush=True)
                continue
            written += 1
            print(printable(run.describe()), flush=True)
    except KeyboardInterrupt:
        print(
            f"Stopped by Ctrl+C: {written} of {len(folders)} runs written; run the command again to write them all.",
            file=sys.stderr,
        )
        return SIGNALLED + signal.SIGINT
    if written:
        print(f"tensorboard --logdir {shlex.quote(os.fspath(log_dir))}")
    return 1 if skipped else 0


def _every_run(root: Path) -> list[Path]:
    """Every run folder in ``root``, newest first (damaged ones too: they are named as skipped)."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"The runs folder {root} is a file, not a folder: give --runs-dir the folder of your runs.")
    return [summary.folder for summary in list_runs(root)]


def _find(text: str, root: Path) -> Path:
    """The run folder ``text`` names: a path, or a bare name looked up in ``root`` and then in the current folder;
    :class:`ConfigError` when there is none."""
    path = Path(text).expanduser()
    bare = not path.is_absolute() and len(path.parts) == 1 and text not in (".", "..")
    candidates = [root / text, path] if bare else [path]
    for candidate in candidates:
        if is_run_folder(candidate):
            return candidate
    for candidate in candidates:
        if candidate.exists():
            raise ConfigError(f"{candidate} is not a run folder: it has no run.json and no checkpoint/.")
    where = f"in {root} nor in the current folder" if bare else "there"
    raise ConfigError(f"There is no run {text!r} {where}; `workbench runs` lists the runs in {root}.")


def _check_log_dir(log_dir: Path, folders: list[Path]) -> None:
    """:class:`ConfigError` unless ``log_dir`` is a folder (made if it is missing) that can take every run: not a run
    folder nor inside one, and no two runs sharing a folder name in it."""
    if log_dir.exists() and not log_dir.is_dir():
        raise ConfigError(f"{log_dir} is a file: --tensorboard needs a folder (made if it is missing).")
    resolved = log_dir.resolve()
    targets: dict[str, Path] = {}
    for folder in folders:
        run = folder.resolve()
        if resolved == run or run in resolved.parents:
            raise ConfigError(f"{log_dir} is inside the run folder {folder}: choose a folder outside your runs.")
        name = log_name(folder)
        if (resolved / name).resolve() == run:
            raise ConfigError(
                f"{log_dir} is the folder the run {folder.name} is in: its logs would go over the run itself. "
                f"Choose another folder for --tensorboard."
            )
        if name in targets:
            raise ConfigError(
                f"{targets[name]} and {folder} would both be written to {log_dir / name}: export them one at a time "
                f"into different folders."
            )
        targets[name] = folder
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"Cannot create the folder {log_dir}: {error.strerror or error}.") from None


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
