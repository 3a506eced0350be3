"""``workbench sweep``: the grid of every combination of the values given, trained one run after another into one
folder, with its results as a CSV table; ``--resume DIR`` finishes an interrupted sweep."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.cli.console import queue_ended, report_run
from workbench.cli.interrupts import SIGNALLED, Interrupted, Interrupts, signal_name
from workbench.cli.train_options import (
    SETTINGS,
    Default,
    DefaultsHelpFormatter,
    add_data_arguments,
    add_execution_arguments,
    add_network_arguments,
    add_optimisation_arguments,
    chosen_preset,
    typed_settings,
)
from workbench.core.architecture import Architecture
from workbench.core.errors import ConfigError
from workbench.core.experiments.ready_made import READY_MADE, ready_made
from workbench.core.experiments.spec import ACTIVATION, DROPOUT, SweepSpec, parse_vary
from workbench.core.experiments.spec import SETTINGS as VARIED_SETTINGS
from workbench.core.experiments.sweep import RESULTS_FILE, PlannedRun, Sweep
from workbench.core.runs.launch import LaunchedRun
from workbench.core.training.config import TrainConfig, read_settings
from workbench.core.training.threads import use_threads

KEYS_HELP = ", ".join([*VARIED_SETTINGS, ACTIVATION, DROPOUT, "layers.N.PARAM"])


def add_sweep_command(commands: argparse._SubParsersAction) -> None:
    """The ``sweep`` sub-command and its options (the train options, plus ``--vary`` and ``--repeat``)."""
    sweep = commands.add_parser(
        "sweep",
        help="train every combination of the values given, one run after another, and tabulate the results",
        description="Train every combination of the --vary values (the first key varies slowest), each --repeat "
        "times with seeds seed, seed+1, ..., one run after another, into DIR: experiment.json (the spec and each "
        "run's status), results.csv (one row per run: the varied values, best and final validation accuracy, test "
        "accuracy in percent, training seconds) and runs/run-001 ... (ordinary run folders). Every run's settings "
        "are checked before the first starts. Ctrl+C stops the run training after its batch; --resume DIR "
        "finishes the sweep: ended runs are kept, the interrupted one continues from its checkpoint, the rest "
        "run. Exit status 0: every run ended; 2: a bad spec; 130/143: stopped by a signal.",
        formatter_class=DefaultsHelpFormatter,
    )
    source = add_network_arguments(sweep)
    source.add_argument(
        "--resume", type=Path, metavar="DIR", help="finish the sweep in DIR, with the settings it was started with"
    )
    source.add_argument(
        "--ready-made",
        metavar="NAME",
        help="one of the class's comparisons, with its own network, settings and values: "
        + ", ".join(experiment.name for experiment in READY_MADE),
    )
    sweep.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help=f"a key and its values; repeat --vary for a grid; keys joined by / vary together "
        f"(optimizer/lr=sgd/0.01,adam/0.001). Keys: {KEYS_HELP} (layer N counts from 1)",
    )
    sweep.add_argument("--repeat", type=int, default=1, metavar="N", help="runs of each combination, seeds apart")
    add_data_arguments(sweep)
    add_optimisation_arguments(sweep)
    add_execution_arguments(sweep, out_help="the sweep's folder, new or empty (required unless --resume)")
    sweep.set_defaults(
        command="sweep", handler=run_sweep, **{name: Default(sweep.get_default(name)) for name in SETTINGS}
    )


def run_sweep(args: argparse.Namespace) -> int:
    """``sweep``: check the spec, then train its runs in turn, printing each run's lines and the table at the end."""
    with Interrupts() as interrupts:
        try:
            typed = typed_settings(args)
            threads = use_threads(args.threads)
            sweep = _resumed(args, typed) if args.resume else _created(args, typed)
        except Interrupted as interrupted:
            print(f"Stopped by {signal_name(interrupted.signum)} before the sweep began.", file=sys.stderr)
            return SIGNALLED + interrupted.signum
        pending = sweep.pending()
        total = len(sweep.runs)
        print(f"Sweep in {sweep.folder}: {total} runs, {len(pending)} to train.", flush=True)

        def launched(planned: PlannedRun, launch: LaunchedRun) -> None:
            interrupts.watch(launch)
            number = sweep.runs.index(planned) + 1
            print(f"\n[{number}/{total}] {planned.name}: {planned.label}", flush=True)
            report_run(launch, args.quiet, threads)

        try:
            ended = sweep.run(launched=launched, should_stop=lambda: interrupts.received is not None)
        except Interrupted as interrupted:  # a signal while the next run was being prepared
            interrupts.received = interrupted.signum
            ended = False
        return queue_ended(
            ended,
            interrupts.received,
            _table(sweep),
            sweep.folder / RESULTS_FILE,
            "A run did not end",
            f"finish the sweep with: workbench sweep --resume {sweep.folder}",
        )


def _created(args: argparse.Namespace, typed: dict) -> Sweep:
    if args.out is None:
        raise ConfigError("Name the sweep's folder with --out DIR (or finish one with --resume DIR).")
    if args.ready_made:
        if args.vary or args.arch:
            raise ConfigError("--ready-made brings its own network and values: give it no --vary.")
        experiment = ready_made(args.ready_made)
        base = experiment.spec()
        config = TrainConfig.from_dict({**base.config.to_dict(), **typed})
        return Sweep.create(args.out, SweepSpec(base.architecture, config, base.variations, args.repeat))
    config = TrainConfig.from_dict({**(read_settings(args.config) if args.config else {}), **typed})
    architecture = Architecture.load(args.arch) if args.arch else chosen_preset(args.preset, config.dataset)
    variations = tuple(parse_vary(text) for text in args.vary)
    return Sweep.create(args.out, SweepSpec(architecture, config, variations, args.repeat))


def _resumed(args: argparse.Namespace, typed: dict) -> Sweep:
    if args.vary or typed or args.out is not None or args.config or args.repeat != 1:
        raise ConfigError(
            "--resume finishes a sweep with the settings it was started with: give it no --vary, --repeat, --out, "
            "--config or training option."
        )
    return Sweep.open(args.resume)


def _table(sweep: Sweep) -> str:
    """The results as an aligned table for the console."""
    rows = sweep.results()
    columns = ["run", *sweep.keys(), "status", "best val", "final val", "test", "seconds"]
    fields = ["run", *sweep.keys(), "status", "best_val_accuracy", "final_val_accuracy", "test_accuracy"]
    fields.append("train_seconds")
    cells = [columns] + [[str(row[field]) for field in fields] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in cells)
