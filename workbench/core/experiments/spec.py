"""What an experiment varies: keys with their values, the grid of every combination, and each run's settings.

A key is a training setting under its command-line name (``optimizer``, ``lr``, ``momentum``, ``batch-size``,
``weight-decay``, ``loss``, ``schedule``, ``train-size``, ``epochs``, ``seed``, ``augment`` with its names joined by
``+``: ``augment=none,crop+flip``), ``activation`` (every activation
layer of the network replaced by that type) or ``layers.N.PARAM`` (parameter PARAM of layer N, counting from 1 as
the builder does, e.g. ``layers.2.out_features``). Every value is parsed and checked, and every run's network
validated, before any run starts: a bad spec is refused with a sentence naming the key
(:class:`~workbench.core.errors.ConfigError`).
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.architecture import Architecture, Layer, validate
from workbench.core.errors import ConfigError
from workbench.core.layers import CATALOG, layers_in_group
from workbench.core.training.augment import AUGMENTATIONS, NONE, parse_augment
from workbench.core.training.config import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig

ACTIVATION = "activation"
LAYER_PREFIX = "layers."


def _integer(text: str) -> int:
    return int(text.replace("_", "").replace(",", ""))


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _augmentation(text: str) -> str:
    try:
        names = parse_augment(text)
    except ConfigError:
        raise ValueError(text) from None
    return ",".join(names) or NONE


def _word(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text

    return parse


SETTINGS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "optimizer": ("optimizer", _word(OPTIMIZERS), f"one of {', '.join(OPTIMIZERS)}"),
    "lr": ("lr", _number, "a number"),
    "momentum": ("momentum", _number, "a number"),
    "batch-size": ("batch_size", _integer, "a whole number"),
    "weight-decay": ("weight_decay", _number, "a number"),
    "loss": ("loss", _word(LOSSES), f"one of {', '.join(LOSSES)}"),
    "schedule": ("schedule", _word(SCHEDULES), f"one of {', '.join(SCHEDULES)}"),
    "train-size": ("train_size", _integer, "a whole number"),
    "epochs": ("epochs", _integer, "a whole number"),
    "seed": ("seed", _integer, "a whole number"),
    "augment": ("augment", _augmentation, f"none or some of {'+'.join(AUGMENTATIONS)} joined by +"),
}
"""The training settings a sweep can vary: key -> (TrainConfig field, parser, what a value must be)."""


def activation_names() -> list[str]:
    """The catalog's activation layers, the values ``activation`` takes."""
    return [layer.name for layer in layers_in_group("Activation")]


@dataclass(frozen=True)
class Variation:
    """One key and the values it takes, in the order given."""

    key: str
    values: tuple[Any, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "values": list(self.values)}


def parse_vary(text: str) -> Variation:
    """``KEY=V1,V2,...`` as a :class:`Variation` with typed values; :class:`ConfigError` naming the key for an
    unknown key, an empty list, a repeated value or a value of the wrong type."""
    key, found, listed = text.partition("=")
    key = key.strip()
    if not found or not key:
        raise ConfigError(f"'{text}' is not KEY=V1,V2,...: e.g. optimizer=sgd,adam or lr=1e-3,1e-2.")
    texts = [value.strip() for value in listed.split(",")]
    if not any(texts) or not all(texts):
        raise ConfigError(f"{key}: give its values separated by commas, none of them empty (got '{listed}').")
    parse, expected = value_parser(key)
    values = []
    for value_text in texts:
        try:
            values.append(parse(value_text))
        except ValueError:
            raise ConfigError(f"{key}: '{value_text}' is not {expected}.") from None
    if len(set(map(str, values))) != len(values):
        raise ConfigError(f"{key}: a value is listed twice in '{listed}'.")
    return Variation(key, tuple(values))


def value_parser(key: str) -> tuple[Callable[[str], Any], str]:
    """How to read a value of ``key`` from text, and what a value must be in words."""
    if key in SETTINGS:
        _, parse, expected = SETTINGS[key]
        return parse, expected
    if key == ACTIVATION:
        names = activation_names()
        return _word(names), f"one of the activation layers {', '.join(names)}"
    if key.startswith(LAYER_PREFIX):
        return _layer_value, "a number, true, false, null or a word"
    known = [*SETTINGS, ACTIVATION, "layers.N.PARAM"]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(f"Unknown key '{key}'{hint}: vary one of {', '.join(known)}.")


def _layer_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


@dataclass(frozen=True)
class SweepSpec:
    """An experiment: a network and its settings, the variations, and how many runs of each combination (with
    seeds ``seed``, ``seed + 1``, ... )."""

    architecture: Architecture
    config: TrainConfig
    variations: tuple[Variation, ...]
    repeat: int = 1

    def points(self) -> list[dict[str, Any]]:
        """Every combination of the variations' values (the first key slowest), each as ``{key: value}``, with
        the repeat number under ``"repeat"`` when there are repeats."""
        keys = [variation.key for variation in self.variations]
        combinations = itertools.product(*(variation.values for variation in self.variations))
        points = []
        for values in combinations:
            for repeat in range(self.repeat):
                point = dict(zip(keys, values))
                if self.repeat > 1:
                    point["repeat"] = repeat + 1
                points.append(point)
        return points

    def check(self) -> None:
        """Refuse, before any run, a spec whose runs cannot all start: bad repeats, keys varied twice, settings out
        of range, a layer that does not exist or a network that does not fit."""
        if not self.variations:
            raise ConfigError("Vary at least one key: e.g. --vary optimizer=sgd,adam.")
        if not isinstance(self.repeat, int) or self.repeat < 1:
            raise ConfigError(f"--repeat must be a whole number of at least 1, not {self.repeat!r}.")
        keys = [variation.key for variation in self.variations]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ConfigError(f"{twice[0]} is varied twice: give all its values in one --vary.")
        for variation in self.variations:
            for value in variation.values:
                _checked_single(self, variation.key, value)
        for point in self.points():
            self.settings(point)

    def settings(self, point: dict[str, Any]) -> tuple[Architecture, TrainConfig]:
        """The network and settings of the run at ``point``; :class:`ConfigError` naming the key that breaks them."""
        architecture, config = self.architecture, self.config
        changes: dict[str, Any] = {}
        for key, value in point.items():
            if key == "repeat":
                continue
            if key in SETTINGS:
                changes[SETTINGS[key][0]] = value
            elif key == ACTIVATION:
                architecture = with_activation(architecture, value)
            else:
                architecture = with_layer_param(architecture, key, value)
        changes["seed"] = changes.get("seed", config.seed) + int(point.get("repeat", 1)) - 1
        config = dataclasses.replace(config, **changes)
        try:
            config.check()
        except ConfigError as error:
            raise ConfigError(f"{describe_point(point)}: {error}") from None
        report = validate(architecture)
        if not report.ok:
            raise ConfigError(f"{describe_point(point)}: the network does not fit: {report.errors[0]}")
        return architecture, config

    def to_dict(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture.to_dict(),
            "config": self.config.to_dict(),
            "variations": [variation.to_dict() for variation in self.variations],
            "repeat": self.repeat,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> SweepSpec:
        """A spec as :meth:`to_dict` wrote it (an experiment.json's ``spec``)."""
        try:
            variations = tuple(Variation(str(item["key"]), tuple(item["values"])) for item in document["variations"])
            return cls(
                Architecture.from_dict(document["architecture"]),
                TrainConfig.from_dict(document["config"]),
                variations,
                int(document.get("repeat", 1)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"The experiment's spec is damaged: {error}.") from None


def _checked_single(spec: SweepSpec, key: str, value: Any) -> None:
    """Each value on its own (the others at the spec's own): the message then names that key's bad value."""
    try:
        spec.settings({key: value})
    except ConfigError as error:
        message = str(error).split(": ", 1)[-1]
        raise ConfigError(f"{key}={value}: {message}") from None


def with_activation(architecture: Architecture, name: str) -> Architecture:
    """``architecture`` with every activation layer replaced by a ``name`` layer with its default parameters."""
    activations = set(activation_names())
    if not any(layer.type in activations for layer in architecture.layers):
        raise ConfigError(f"activation: the network '{architecture.name}' has no activation layer to replace.")
    layers = [Layer(name) if layer.type in activations else layer for layer in architecture.layers]
    return dataclasses.replace(architecture, layers=layers)


def with_layer_param(architecture: Architecture, key: str, value: Any) -> Architecture:
    """``architecture`` with ``layers.N.PARAM`` set to ``value``; :class:`ConfigError` naming the key if layer N
    does not exist or has no parameter PARAM."""
    parts = key.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise ConfigError(f"{key}: write a layer's parameter as layers.N.PARAM, e.g. layers.2.out_features.")
    number, name = int(parts[1]), parts[2]
    if not 1 <= number <= len(architecture.layers):
        raise ConfigError(
            f"{key}: the network '{architecture.name}' has layers 1 to {len(architecture.layers)}, not {number}."
        )
    layer = architecture.layers[number - 1]
    param = CATALOG[layer.type].param(name)
    if param is None:
        names = ", ".join(p.name for p in CATALOG[layer.type].params) or "none"
        raise ConfigError(f"{key}: layer {number} is a {layer.type}, whose parameters are {names}.")
    layers = list(architecture.layers)
    layers[number - 1] = Layer(layer.type, {**layer.params, name: value})
    return dataclasses.replace(architecture, layers=layers)


def describe_point(point: dict[str, Any]) -> str:
    """A run's label by what differs, e.g. "optimizer adam, lr 0.001" (and "· repeat 2")."""
    parts = [f"{key} {_shown(value)}" for key, value in point.items() if key != "repeat"]
    text = ", ".join(parts)
    if "repeat" in point:
        text += f" · repeat {point['repeat']}"
    return text


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
