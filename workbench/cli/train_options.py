"""The options of a training run on the command line, shared by ``train`` and ``sweep``: the data, the recipe,
where and how it runs; and how the options typed are told apart from their defaults (so that ``--config`` and
``--resume`` know what the user asked for)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from workbench.core.architecture import Architecture
from workbench.core.data import datasets
from workbench.core.errors import ConfigError
from workbench.core.presets import load_preset, preset_names, with_classes
from workbench.core.training.augment import AUGMENTATIONS
from workbench.core.training.config import (
    CHANNELS,
    DEFAULT_TRAIN_SIZE,
    DEFAULT_VAL_SIZE,
    LOSS_DESCRIPTIONS,
    LOSSES,
    MIXED_PRECISION,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
)
from workbench.core.training.devices import available_devices
from workbench.core.training.threads import check_threads, physical_cores, usable_cpus


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Ends an option's help with its default, once: not where the help names its default already, nor where it
    has none (None, or a flag that is off unless given)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default.value if isinstance(action.default, Default) else action.default
        if "default" in text or not action.option_strings or default is None or default is False:
            return action.help
        if default == argparse.SUPPRESS:
            return action.help
        return f"{text} (default: %(default)s)".lstrip()


def add_data_arguments(train: argparse.ArgumentParser) -> None:
    """``train``'s options that choose the images: the dataset, its folder and shape, the subsets."""
    train.add_argument(
        "--dataset",
        default=TrainConfig().dataset,
        help=", ".join(datasets.dataset_names()) + ", or folder:PATH for your own images",
    )
    train.add_argument(
        "--data-dir",
        help="folder holding the dataset files (else $WORKBENCH_DATA_DIR, the "
        "user data folder, the system folder, a download)",
    )
    add_image_arguments(train)
    train.add_argument(
        "--train-size",
        type=int,
        help=f"training images drawn from the training split "
        f"(default {DEFAULT_TRAIN_SIZE:,}, or what a small dataset has)",
    )
    train.add_argument(
        "--val-size",
        type=int,
        help=f"validation images drawn from the training split "
        f"(default {DEFAULT_VAL_SIZE:,}, or a tenth of a small dataset)",
    )


def add_optimisation_arguments(train: argparse.ArgumentParser) -> None:
    """``train``'s options of the training recipe: epochs, batch, optimiser, loss, schedule, early stopping."""
    defaults = TrainConfig()
    train.add_argument(
        "--epochs", type=int, default=defaults.epochs, help="epochs to train; with --resume, epochs to add"
    )
    train.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="images per optimiser step, over all processes"
    )
    train.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer, help="the optimiser")
    train.add_argument("--lr", type=float, default=defaults.lr, help="learning rate")
    train.add_argument("--momentum", type=float, default=defaults.momentum, help="for sgd and rmsprop")
    train.add_argument("--nesterov", action="store_true", help="Nesterov momentum (sgd)")
    train.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="L2 penalty on the weights")
    train.add_argument(
        "--loss",
        choices=LOSSES,
        default=defaults.loss,
        help="cross-entropy on the scores, or mse = " + LOSS_DESCRIPTIONS["mse"],
    )
    train.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule, help="learning-rate schedule")
    train.add_argument("--step-size", type=int, default=defaults.step_size, help="epochs between steps (step)")
    train.add_argument("--gamma", type=float, default=defaults.gamma, help="factor at each step (step)")
    train.add_argument(
        "--early-stopping",
        type=int,
        default=defaults.early_stopping,
        metavar="PATIENCE",
        help="stop after this many epochs without a better validation loss (0 = off)",
    )
    train.add_argument("--seed", type=int, default=defaults.seed, help="seed of the weights, subsets and shuffling")
    train.add_argument(
        "--augment",
        default=defaults.augment,
        metavar="LIST",
        help=f"augment the training batches: none, or some of {','.join(AUGMENTATIONS)} separated by commas "
        "(each image its own random draw, reproducible with --seed; flips are refused for digits and MNIST)",
    )


def add_execution_arguments(
    train: argparse.ArgumentParser,
    out_help: str = "run folder to write, new or empty (default: a new folder in the user data folder, or "
    "$WORKBENCH_RUNS_DIR)",
) -> None:
    """``train``'s options of where and how the run trains, and what it writes and prints."""
    defaults = TrainConfig()
    train.add_argument(
        "--device",
        default=defaults.device,
        help="auto, cpu, cuda, cuda:N or mps; here: " + ", ".join(device_id for device_id, _ in available_devices()),
    )
    train.add_argument(
        "--out",
        type=new_folder,
        help=out_help,
    )
    train.add_argument(
        "--mixed-precision",
        choices=MIXED_PRECISION,
        default=defaults.mixed_precision,
        help="bfloat16 autocast: auto = on where the device computes bfloat16 natively (CUDA GPUs from Ampere on, "
        "CPUs with AVX-512 BF16 or AMX), off elsewhere",
    )
    train.add_argument(
        "--threads",
        type=thread_count,
        metavar="N",
        help=f"CPU threads to compute with (1 to {usable_cpus()} here; default: every physical core, "
        f"{physical_cores()} here)",
    )
    train.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=defaults.compile,
        help="train through torch.compile (slow to start; falls back to plain PyTorch if it fails)",
    )
    train.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="training settings from a JSON file (a TrainConfig, or a run's run.json); the options "
        "typed here override them",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def thread_count(text: str) -> int:
    try:
        return check_threads(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--threads ")) from None


def new_folder(text: str) -> Path:
    """``--out`` of a new run: a folder name, not an empty string (which would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the run folder's name is empty: name a new (or empty) folder")
    return Path(text).expanduser()


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that shape a folder:PATH dataset's images."""
    parser.add_argument(
        "--image-size", type=int, metavar="N", help="folder:PATH only: resize every image to N×N pixels (default 28)"
    )
    parser.add_argument(
        "--channels",
        type=int,
        choices=CHANNELS,
        help="folder:PATH only: 1 = grayscale, 3 = colour (default: 3 if any image is in colour)",
    )


SETTINGS = tuple(field.name for field in dataclasses.fields(TrainConfig))


class Default:
    """A ``train`` option's default value, told apart from the same value typed on the command line."""

    def __init__(self, value: Any):
        self.value = value

    def __str__(self) -> str:
        return str(self.value)


def typed_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The training settings typed on the command line; the others in ``args`` become their plain defaults."""
    typed = {}
    for name in SETTINGS:
        value = getattr(args, name)
        if isinstance(value, Default):
            setattr(args, name, value.value)
        else:
            typed[name] = value
    return typed


def chosen_preset(name: str | None, dataset: str) -> Architecture:
    """The chosen preset (seed-simplenet if none); for an image folder, with as many outputs as the folder has
    classes."""
    preset = load_preset(name or "seed-simplenet")
    if not datasets.is_folder(dataset):
        return preset
    return with_classes(preset, len(datasets.get_info(dataset).class_names))


def add_network_arguments(parser: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """``--preset NAME | --arch FILE``, the network a command trains; the group, for a command to add its own
    alternatives (``--resume``, ``--ready-made``)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help=f"a bundled network: {', '.join(preset_names())} (default seed-simplenet)")
    source.add_argument("--arch", type=Path, metavar="FILE", help="an architecture JSON file")
    return source
