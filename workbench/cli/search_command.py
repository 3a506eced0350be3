"""``workbench search``: an Optuna study over training settings, its trials trained one after another into one
folder, pruned when they fall behind, with the results as a CSV table; the same command again continues it, and
several processes (on one machine or many, with ``--storage``) can share one study."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

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
from workbench.core.experiments.spec import ACTIVATION
from workbench.core.experiments.spec import SETTINGS as VARIED_SETTINGS
from workbench.core.experiments.sweep import RESULTS_FILE
from workbench.core.runs.launch import LaunchedRun
from workbench.core.training.config import TrainConfig, read_settings
from workbench.core.training.threads import use_threads

if TYPE_CHECKING:  # the module itself is imported when a search runs: Optuna and SQLAlchemy take a while to load
    from workbench.core.experiments.search import Search, SearchTrial

SEARCH_FILE, STUDY_FILE = "search.json", "study.db"  # as workbench.core.experiments.search names them

KEYS_HELP = ", ".join([*VARIED_SETTINGS, ACTIVATION, "layers.N.PARAM"])


def add_search_command(commands: argparse._SubParsersAction) -> None:
    """The ``search`` sub-command and its options (the train options, plus ``--space``, ``--trials`` and
    ``--storage``)."""
    search = commands.add_parser(
        "search",
        help="search training settings with Optuna: each trial a run, pruned when it falls behind",
        description="Search the --space keys' values for the best validation accuracy with Optuna: its TPE "
        "sampler (seeded by --seed) picks each trial's values from the trials before it, and its median pruner "
        "stops a trial whose validation accuracy after an epoch is below the median of the earlier trials' at that "
        "epoch (its run is saved as stopped, the trial as pruned). Trials train one after another into DIR: "
        f"runs/trial-001 ... (ordinary run folders), results.csv (one row per trial: its values, status, best "
        f"and final validation accuracy, test accuracy in percent, training seconds), {SEARCH_FILE} (the spec) "
        f"and, without --storage, the study itself ({STUDY_FILE}). Every key's ends are checked before the first "
        "trial. The study holds --trials trials in all: the same command again continues it (ended trials are "
        "kept, one stopped by Ctrl+C goes on from its checkpoint), and processes started with the same --storage "
        "share its trials, none trained twice. Exit status 0: no trial left for this process; 2: a bad spec, or "
        "a study that searches something else; 130/143: stopped by a signal.",
        formatter_class=DefaultsHelpFormatter,
    )
    add_network_arguments(search)
    search.add_argument(
        "--space",
        action="append",
        metavar="KEY=LOW:HIGH[:log]|KEY=V1,V2,...",
        help="a key and its range (whole numbers for whole-number keys, :log for a log scale) or its choices "
        f"(two or more); repeat --space for more keys. Keys: {KEYS_HELP} (layer N counts from 1)",
    )
    search.add_argument(
        "--trials", type=int, metavar="N", help="trials in the study, all processes together (required)"
    )
    search.add_argument(
        "--storage",
        metavar="URL",
        help=f"the study's database, e.g. sqlite:///shared/study.db or postgresql://host/db, for processes or "
        f"machines that share the study (default: sqlite in DIR/{STUDY_FILE})",
    )
    add_data_arguments(search)
    add_optimisation_arguments(search)
    add_execution_arguments(
        search, out_help="the search's folder: new, empty, or the one of the search to continue (required)"
    )
    search.set_defaults(
        command="search", handler=run_search, **{name: Default(search.get_default(name)) for name in SETTINGS}
    )


def run_search(args: argparse.Namespace) -> int:
    """``search``: check the spec, open or join the study, then train its waiting trials in turn, printing each
    trial's lines and, at the end, the best trial."""
    import optuna

    from workbench.core.experiments.search import shown_url

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the lines below say what Optuna's would
    with Interrupts() as interrupts:
        try:
            typed = typed_settings(args)
            threads = use_threads(args.threads)
            search = _opened(args, typed)
        except Interrupted as interrupted:
            print(f"Stopped by {signal_name(interrupted.signum)} before the search began.", file=sys.stderr)
            return SIGNALLED + interrupted.signum
        counts = search.counts()
        total = sum(counts.values())
        ended = sum(counts.get(status, 0) for status in ("finished", "pruned", "failed"))
        print(
            f"Search in {search.folder}: study in {shown_url(search.url)}, {total} trials, {ended} ended, "
            f"{counts.get('waiting', 0)} to run.",
            flush=True,
        )

        def launched(trial: SearchTrial, launch: LaunchedRun) -> None:
            interrupts.watch(launch)
            if interrupts.received is not None:  # a signal while the trial was being prepared
                launch.trainer.stop()
            print(f"\n[{trial.name}] {trial.label}", flush=True)
            report_run(launch, args.quiet, threads)

        try:
            done = search.run(
                launched=launched,
                ended=lambda trial: print(trial_line(trial), flush=True),
                should_stop=lambda: interrupts.received is not None,
            )
        except Interrupted as interrupted:  # a signal while the next trial was being claimed
            interrupts.received = interrupted.signum
            done = False
        return queue_ended(
            done,
            interrupts.received,
            _summary(search),
            search.folder / RESULTS_FILE,
            "A trial's run did not end",
            "continue the search by running the same command again (the same --out and --storage): the stopped "
            "trial goes on from its checkpoint.",
        )


def trial_line(trial: SearchTrial) -> str:
    """The line printed when a trial ends, e.g. ``trial-003 finished: best validation accuracy 91.20% (lr 0.003)``."""
    if trial.status == "finished" and trial.value is not None:
        return f"{trial.name} finished: best validation accuracy {trial.value:.2%} ({trial.label})"
    if trial.status == "pruned":
        return f"{trial.name} {trial.message or 'pruned'} ({trial.label})"
    return f"{trial.name} {trial.status}: {trial.message} ({trial.label})"


def _summary(search: Search) -> str:
    """The trials' statuses, then the best trial's line."""
    counts = search.counts()
    shown = ", ".join(f"{count} {status}" for status, count in counts.items())
    best = search.best()
    if best is None or best.value is None:
        return f"{sum(counts.values())} trials ({shown}); none has finished yet."
    return (
        f"{sum(counts.values())} trials ({shown}).\n"
        f"best trial: {best.name}, best validation accuracy {best.value:.2%}: {best.label}"
    )


def _opened(args: argparse.Namespace, typed: dict) -> Search:
    from workbench.core.experiments.search import Search, SearchSpec, parse_space

    space = tuple(parse_space(text) for text in args.space or ())
    if not space:
        raise ConfigError("Search at least one key: e.g. --space lr=1e-4:1e-1:log or --space optimizer=sgd,adam.")
    if args.trials is None:
        raise ConfigError("Give the number of trials in the study with --trials N.")
    if args.out is None:
        raise ConfigError("Name the search's folder with --out DIR.")
    config = TrainConfig.from_dict({**(read_settings(args.config) if args.config else {}), **typed})
    architecture = Architecture.load(args.arch) if args.arch else chosen_preset(args.preset, config.dataset)
    return Search.open(args.out, SearchSpec(architecture, config, space, args.trials), storage=args.storage)
