"""``workbench lr-find``: the learning-rate range test for a network and its settings, and the rate it suggests."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.train_options import (
    SETTINGS,
    Default,
    DefaultsHelpFormatter,
    add_data_arguments,
    add_network_arguments,
    add_optimisation_arguments,
    chosen_preset,
    typed_settings,
)
from workbench.core.architecture import Architecture
from workbench.core.experiments.lr_find import END_LR, START_LR, STEPS, find_learning_rate
from workbench.core.training.config import TrainConfig, read_settings
from workbench.core.training.threads import use_threads


def add_lr_find_command(commands: argparse._SubParsersAction) -> None:
    """The ``lr-find`` sub-command: the train options, the range, and where to draw the curve."""
    finder = commands.add_parser(
        "lr-find",
        help="suggest a learning rate with the range test (torch-lr-finder)",
        description="Train for about a hundred batches while the learning rate grows exponentially from --start to "
        "--end (stopping when the loss runs away), then print the rate where the smoothed loss fell fastest: "
        "'suggested learning rate: X'. The optimizer, loss, batch size and data are the train options'; the "
        "network's weights are put back afterwards and no run folder is written.",
        formatter_class=DefaultsHelpFormatter,
    )
    add_network_arguments(finder)
    add_data_arguments(finder)
    add_optimisation_arguments(finder)
    finder.add_argument("--device", default=TrainConfig().device, help="auto, cpu, cuda, cuda:N or mps")
    finder.add_argument("--start", type=float, default=START_LR, help="the first learning rate tried")
    finder.add_argument("--end", type=float, default=END_LR, help="the last learning rate tried")
    finder.add_argument("--steps", type=int, default=STEPS, help="batches over the range")
    finder.add_argument("--out", type=Path, metavar="PLOT.png", help="draw the loss against the learning rate here")
    finder.add_argument("--config", type=Path, metavar="FILE", help="training settings from a JSON file")
    finder.set_defaults(
        command="lr-find", handler=run_lr_find, **{name: Default(finder.get_default(name)) for name in SETTINGS}
    )


def run_lr_find(args: argparse.Namespace) -> int:
    """``lr-find``: the range test, one line of result (and the plot with ``--out``)."""
    typed = typed_settings(args)
    use_threads()
    config = TrainConfig.from_dict({**(read_settings(args.config) if args.config else {}), **typed})
    architecture = Architecture.load(args.arch) if args.arch else chosen_preset(args.preset, config.dataset)
    test = find_learning_rate(architecture, config, args.start, args.end, args.steps, args.out)
    ending = "the loss ran away before the end of the range" if test.diverged else "the whole range tried"
    print(
        f"Range test of {architecture.name} with {config.optimizer}: {len(test.learning_rates)} batches from "
        f"{test.learning_rates[0]:.2g} to {test.learning_rates[-1]:.2g} ({ending}); rule: {test.rule}."
    )
    if args.out is not None:
        print(f"Plot: {args.out}")
    print(f"suggested learning rate: {test.suggested:.3g}")
    return 0
