"""Training settings: one dataclass, checked once where the user typed them."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
from dataclasses import dataclass
from typing import Any

from workbench.core.data.datasets import canonical_name, is_folder
from workbench.core.errors import ConfigError
from workbench.core.training.augment import check_augment

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
LOSSES = ("cross-entropy", "mse")
LOSS_DESCRIPTIONS = {
    "cross-entropy": "cross-entropy on the network's scores (softmax and negative log-likelihood)",
    "mse": "the class's first loss: squared error between the outputs (no softmax) and the one-hot labels, "
    "summed over the outputs, averaged over the batch",
}
"""What each loss computes, in a phrase for the user (see ``engine.make_loss``)."""
SCHEDULES = ("none", "step", "cosine", "one-cycle")
MIXED_PRECISION = ("auto", "on", "off")
DEFAULT_TRAIN_SIZE = 10_000
DEFAULT_VAL_SIZE = 1_000
IMAGE_SIZES = (4, 256)
CHANNELS = (1, 3)


@dataclass
class TrainConfig:
    """Everything a run needs besides the architecture. Defaults follow the class's recipe.

    ``loss="mse"`` is the class's first loss: the squared error between the network's outputs and the
    one-hot labels, summed over the outputs and averaged over the batch. ``early_stopping`` is a patience
    in epochs (0 = off).
    ``step_size`` and ``gamma`` shape the ``step`` schedule: the learning rate is multiplied by
    ``gamma`` every ``step_size`` epochs. ``train_size`` and ``val_size`` left at None take the
    class's 10,000 / 1,000, or less where the dataset is smaller (see :meth:`sizes_for`).

    ``dataset`` is a registered name or ``folder:PATH`` (the user's images, one sub-folder per class);
    a folder's path is made absolute and resolved at once, so the run can be continued from anywhere.
    ``image_size`` (the side of the square images, default 28) and ``channels`` (1 or 3, default: 3 if
    any image is in colour) apply to folders only.

    ``mixed_precision`` runs the forward passes (training and evaluation) under bfloat16 autocast: ``auto``
    turns it on for CUDA GPUs that support bfloat16 and leaves it off elsewhere, ``on`` asks for it (refused
    where the device cannot), ``off`` never. ``compile`` trains through ``torch.compile``; where compiling
    fails the run goes on without it and says so. Neither changes what a CPU run computes unless asked for.
    """

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    train_size: int | None = None
    val_size: int | None = None
    epochs: int = 10
    batch_size: int = 512
    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    loss: str = "cross-entropy"
    schedule: str = "none"
    step_size: int = 5
    gamma: float = 0.1
    early_stopping: int = 0
    seed: int = 0
    device: str = "auto"
    image_size: int | None = None
    channels: int | None = None
    mixed_precision: str = "auto"
    compile: bool = False
    augment: str = "none"

    def __post_init__(self) -> None:
        self.dataset = canonical_name(self.dataset)

    def check(self) -> None:
        """Raise :class:`ConfigError` for the first setting that is out of range."""
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("loss", self.loss, LOSSES)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        if not isinstance(self.compile, bool):
            raise ConfigError(f"compile must be true or false, not {self.compile!r}.")
        if self.train_size is not None:
            _whole("train_size", self.train_size, 1)
        if self.val_size is not None:
            _whole("val_size", self.val_size, 0)
        _whole("epochs", self.epochs, 1, 100_000)
        _whole("batch_size", self.batch_size, 1, 1_000_000)
        _whole("step_size", self.step_size, 1)
        _whole("early_stopping", self.early_stopping, 0)
        _whole("seed", self.seed, 0, 2**63 - 1)
        _number("lr", self.lr, 0.0, 100.0, open_low=True)
        _number("momentum", self.momentum, 0.0, 1.0, open_high=True)
        _number("weight_decay", self.weight_decay, 0.0, 10.0)
        _number("gamma", self.gamma, 0.0, 1.0, open_low=True)
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ConfigError("Nesterov momentum needs the sgd optimizer with a momentum above 0.")
        if self.early_stopping and self.val_size == 0:
            raise ConfigError("Early stopping watches the validation loss: set a validation size above 0.")
        if not isinstance(self.augment, str):
            raise ConfigError(f"augment must be text such as 'crop,flip' or 'none', not {self.augment!r}.")
        check_augment(self.augment, self.dataset)
        self._check_image_options()

    def _check_image_options(self) -> None:
        if self.image_size is None and self.channels is None:
            return
        if not is_folder(self.dataset):
            raise ConfigError(
                f"image_size and channels apply to image folders (dataset folder:PATH) only; "
                f"the images of '{self.dataset}' keep their own size and channels."
            )
        if self.image_size is not None:
            _whole("image_size", self.image_size, *IMAGE_SIZES)
        fits = isinstance(self.channels, int) and not isinstance(self.channels, bool) and self.channels in CHANNELS
        if self.channels is not None and not fits:
            raise ConfigError(f"channels must be 1 (grayscale) or 3 (colour), not {self.channels!r}.")

    def sizes_for(self, available: int) -> tuple[int, int]:
        """``(train, validation)`` sizes to draw from a training split of ``available`` images.

        Sizes the user set are kept (the split refuses them if they are too large); unset ones
        default to the class's 10,000 / 1,000, shrunk for small datasets to a tenth for
        validation and the rest for training. An unset training size is never below 0: where the
        validation size set leaves no image to train on it is 0, which the split refuses saying so.
        """
        val = self.val_size if self.val_size is not None else min(DEFAULT_VAL_SIZE, available // 10)
        train = self.train_size if self.train_size is not None else max(0, min(DEFAULT_TRAIN_SIZE, available - val))
        return train, val

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Settings from a dict (e.g. a run.json); unknown keys are an error, missing ones take defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"Unknown training setting '{key}'{hint}.")
        config = cls(**values)
        config.check()
        return config


def read_settings(path: str | os.PathLike) -> dict[str, Any]:
    """The training settings saved in a JSON file, as a dict for :meth:`TrainConfig.from_dict`: a TrainConfig
    as ``to_dict`` writes it, or a run's run.json (its ``config``), in UTF-8 with or without a byte order mark.
    :class:`ConfigError` saying what is wrong."""
    try:
        with open(path, encoding="utf-8-sig") as file:
            document = json.load(file)
    except FileNotFoundError:
        raise ConfigError(f"There is no settings file {path}.") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise ConfigError(f"The settings file {path} cannot be read ({reason}).") from None
    if isinstance(document, dict) and document.get("format") == "workbench-run":
        document = document.get("config")
    if not isinstance(document, dict):
        raise ConfigError(f"The settings file {path} should hold a JSON object of training settings.")
    return document


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"Unknown {name} '{value}'.{hint} Choose one of: {', '.join(choices)}.")


def _whole(name: str, value: Any, low: int, high: int | None = None) -> None:
    fits = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if not fits or (high is not None and value > high):
        upper = f" and at most {high:,}" if high is not None else ""
        raise ConfigError(f"{name} must be a whole number of at least {low}{upper}, not {value!r}.")


def _number(name: str, value: Any, low: float, high: float, open_low: bool = False, open_high: bool = False) -> None:
    fits = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if fits:
        fits = (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
    if not fits:
        lower = "above" if open_low else "at least"
        upper = "below" if open_high else "at most"
        raise ConfigError(f"{name} must be a number {lower} {low:g} and {upper} {high:g}, not {value!r}.")
