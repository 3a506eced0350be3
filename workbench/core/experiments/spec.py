"""What an experiment varies: keys with their values, the grid of every combination, and each run's settings.

A key is a training setting under its command-line name (``optimizer``, ``lr``, ``momentum``, ``batch-size``,
``weight-decay``, ``loss``, ``schedule``, ``train-size``, ``epochs``, ``seed``, ``augment`` with its names joined by
``+``: ``augment=none,crop+flip``, ``early-stopping``), ``activation`` (every activation layer of the network
replaced by that type), ``dropout`` (the ``p`` of every Dropout layer) or ``layers.N.PARAM`` (parameter PARAM of
layer N, numbered as the builder does, e.g. ``layers.2.out_features``; inside blocks ``layers.5.2.out_channels``, the
second layer inside block 5, and ``layers.6.b2.1.kernel_size``, the first of branch 2 of Parallel block 6; a
block's own ``layers.5.shortcut`` or ``layers.6.merge``). ``activation`` and ``dropout`` reach inside blocks too.

Keys joined by ``/`` vary together, their values joined the same way: ``optimizer/lr=sgd/0.01,adam/0.001`` is two
runs, not four. Every value is parsed and checked, and every run's network validated, before any run starts: a bad
spec is refused with a sentence naming the key (:class:`~workbench.core.errors.ConfigError`).
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
from workbench.core.blocks import BLOCK_PARAMS, PARALLEL, RESIDUAL
from workbench.core.errors import ConfigError
from workbench.core.layers import CATALOG, layers_in_group
from workbench.core.numbering import NUMBER_PATTERN
from workbench.core.training.augment import AUGMENTATIONS, NONE, parse_augment
from workbench.core.training.config import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig

ACTIVATION = "activation"
DROPOUT = "dropout"
DROPOUT_LAYERS = ("Dropout", "Dropout2d")
LAYER_PREFIX = "layers."
LINK = "/"


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
    "early-stopping": ("early_stopping", _integer, "a whole number of epochs (0: off)"),
    "augment": ("augment", _augmentation, f"none or some of {'+'.join(AUGMENTATIONS)} joined by +"),
}
"""The training settings a sweep can vary: key -> (TrainConfig field, parser, what a value must be)."""


def activation_names() -> list[str]:
    """The catalog's activation layers, the values ``activation`` takes."""
    return [layer.name for layer in layers_in_group("Activation")]


@dataclass(frozen=True)
class Variation:
    """One key and the values it takes, in the order given; linked keys (``a/b``) take tuples of values.

    ``names`` (as many as values, or empty) label the runs instead of the values: a ready-made experiment's
    "Dropout 0.5" for ``dropout/weight-decay=0.5/0``."""

    key: str
    values: tuple[Any, ...]
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.names and len(self.names) != len(self.values):
            raise ConfigError(f"{self.key}: {len(self.names)} names for {len(self.values)} values.")

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys this variation sets: one, or the linked ones."""
        return tuple(self.key.split(LINK))

    def name_of(self, value: Any) -> str:
        """How a run with ``value`` is labelled: its name, else the value in words ("optimizer adam, lr 0.001")."""
        for known, name in zip(self.values, self.names):
            if _same(known, value):
                return name
        return ", ".join(f"{key} {_shown(part)}" for key, part in zip(self.keys, _parts(self, value)))

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"key": self.key, "values": [_jsonable(value) for value in self.values]}
        if self.names:
            document["names"] = list(self.names)
        return document


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _same(a: Any, b: Any) -> bool:
    return _jsonable(a) == _jsonable(b)


def _parts(variation: Variation, value: Any) -> tuple[Any, ...]:
    """A value of ``variation`` as one part per key (a linked value read back from JSON is a list)."""
    if len(variation.keys) == 1:
        return (value,)
    return tuple(value)


def value_text(value: Any) -> str:
    """A value as the command line writes it (linked values joined by ``/``)."""
    if isinstance(value, list | tuple):
        return LINK.join(_shown(part) for part in value)
    return _shown(value)


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
    keys = [part.strip() for part in key.split(LINK)]
    if len(keys) > 1 and (not all(keys) or len(set(keys)) != len(keys)):
        raise ConfigError(f"{key}: link different keys with /, e.g. optimizer/lr=sgd/0.01,adam/0.001.")
    parsers = [value_parser(part) for part in keys]
    values: list[Any] = []
    for text_value in texts:
        parts = text_value.split(LINK) if len(keys) > 1 else [text_value]
        if len(parts) != len(keys):
            raise ConfigError(f"{key}: '{text_value}' has {len(parts)} parts for the {len(keys)} linked keys.")
        typed = []
        for part_key, (parse, expected), part in zip(keys, parsers, parts):
            try:
                typed.append(parse(part.strip()))
            except ValueError:
                raise ConfigError(f"{part_key}: '{part.strip()}' is not {expected}.") from None
        values.append(tuple(typed) if len(keys) > 1 else typed[0])
    if len(set(map(str, values))) != len(values):
        raise ConfigError(f"{key}: a value is listed twice in '{listed}'.")
    return Variation(LINK.join(keys), tuple(values))


def value_parser(key: str) -> tuple[Callable[[str], Any], str]:
    """How to read a value of ``key`` from text, and what a value must be in words."""
    if key in SETTINGS:
        _, parse, expected = SETTINGS[key]
        return parse, expected
    if key == ACTIVATION:
        names = activation_names()
        return _word(names), f"one of the activation layers {', '.join(names)}"
    if key == DROPOUT:
        return _number, "a number from 0 to 1"
    if key.startswith(LAYER_PREFIX):
        return _layer_value, "a number, true, false, null or a word"
    known = [*SETTINGS, ACTIVATION, DROPOUT, "layers.N.PARAM"]
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
        keys = [key for variation in self.variations for key in variation.keys]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ConfigError(f"{twice[0]} is varied twice: give all its values in one --vary.")
        for variation in self.variations:
            for value in variation.values:
                _checked_single(self, variation.key, value)
        for point in self.points():
            self.settings(point)

    def describe(self, point: dict[str, Any]) -> str:
        """A run's label by what differs, its values' names where they have them ("Dropout 0.5 · repeat 2")."""
        parts = [variation.name_of(point[variation.key]) for variation in self.variations if variation.key in point]
        text = ", ".join(parts)
        if "repeat" in point:
            text += f" · repeat {point['repeat']}"
        return text

    def settings(self, point: dict[str, Any]) -> tuple[Architecture, TrainConfig]:
        """The network and settings of the run at ``point``; :class:`ConfigError` naming the key that breaks them."""
        architecture, config = self.architecture, self.config
        changes: dict[str, Any] = {}
        for linked, linked_value in point.items():
            if linked == "repeat":
                continue
            keys = linked.split(LINK)
            for key, value in zip(keys, linked_value if len(keys) > 1 else (linked_value,)):
                if key in SETTINGS:
                    changes[SETTINGS[key][0]] = value
                elif key == ACTIVATION:
                    architecture = with_activation(architecture, value)
                elif key == DROPOUT:
                    architecture = with_dropout(architecture, value)
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
            variations = tuple(
                Variation(
                    str(item["key"]),
                    tuple(tuple(value) if isinstance(value, list) else value for value in item["values"]),
                    tuple(str(name) for name in item.get("names", ())),
                )
                for item in document["variations"]
            )
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
        shown = value_text(value) if isinstance(value, tuple) else value
        raise ConfigError(f"{key}={shown}: {message}") from None


def with_activation(architecture: Architecture, name: str) -> Architecture:
    """``architecture`` with every activation layer, inside blocks too, replaced by a ``name`` layer with its default
    parameters."""
    activations = set(activation_names())
    if not any(layer.type in activations for _, _, layer in architecture.walk()):
        raise ConfigError(f"activation: the network '{architecture.name}' has no activation layer to replace.")
    layers = _mapped(architecture.layers, lambda layer: Layer(name) if layer.type in activations else layer)
    return dataclasses.replace(architecture, layers=layers)


def with_dropout(architecture: Architecture, p: float) -> Architecture:
    """``architecture`` with the ``p`` of every Dropout layer, inside blocks too, set (0: the layer passes its input
    through)."""
    if not 0 <= p < 1:
        raise ConfigError(f"dropout: p must be at least 0 and below 1, not {p:g}.")
    if not any(layer.type in DROPOUT_LAYERS for _, _, layer in architecture.walk()):
        raise ConfigError(
            f"dropout: the network '{architecture.name}' has no Dropout layer: add one (p 0 keeps it a no-op)."
        )
    layers = _mapped(
        architecture.layers,
        lambda layer: Layer(layer.type, {**layer.params, "p": p}) if layer.type in DROPOUT_LAYERS else layer,
    )
    return dataclasses.replace(architecture, layers=layers)


def _mapped(layers: list[Layer], change: Callable[[Layer], Layer]) -> list[Layer]:
    """``layers`` with ``change`` applied to every layer that is not a block, inside blocks too; the blocks are new
    ones holding the changed layers (the originals are left as they were)."""
    return [
        Layer(
            layer.type,
            dict(layer.params),
            layers=_mapped(layer.layers, change),
            branches=[_mapped(branch, change) for branch in layer.branches],
        )
        if layer.is_block
        else change(layer)
        for layer in layers
    ]


def with_layer_param(architecture: Architecture, key: str, value: Any) -> Architecture:
    """``architecture`` with ``layers.N.PARAM`` set to ``value``; :class:`ConfigError` naming the key if layer N
    does not exist or has no parameter PARAM.

    N is a layer's number in the builder: ``layers.2.out_features``, ``layers.5.2.out_channels`` (the second layer
    inside block 5), ``layers.6.b2.1.kernel_size`` (the first layer of branch 2 of block 6); a block's own parameter
    is ``layers.5.shortcut`` or ``layers.6.merge``."""
    number, name = _layer_key(key)
    changed = architecture.copy()
    container, index = _locate(changed, key, number)
    layer = container[index]
    if layer.is_block:
        spec = BLOCK_PARAMS[layer.type]
        if name != spec.name:
            inside = f"{number}.1" if layer.type == RESIDUAL else f"{number}.b1.1"
            raise ConfigError(
                f"{key}: block {number} is a {layer.type} block, whose parameter is {spec.name}; vary a layer "
                f"inside it by its number, e.g. layers.{inside}.PARAM."
            )
    elif CATALOG[layer.type].param(name) is None:
        names = ", ".join(p.name for p in CATALOG[layer.type].params) or "none"
        raise ConfigError(f"{key}: layer {number} is a {layer.type}, whose parameters are {names}.")
    container[index] = Layer(layer.type, {**layer.params, name: value}, layer.layers, layer.branches)
    return changed


def _layer_key(key: str) -> tuple[str, str]:
    """``layers.5.2.out_channels`` -> ``("5.2", "out_channels")``; :class:`ConfigError` for a key of another form."""
    number, _, name = key.removeprefix(LAYER_PREFIX).rpartition(".")
    if not key.startswith(LAYER_PREFIX) or not name or not NUMBER_PATTERN.fullmatch(number):
        raise ConfigError(
            f"{key}: write a layer's parameter as layers.N.PARAM, e.g. layers.2.out_features, or "
            f"layers.5.2.out_channels for the second layer inside block 5."
        )
    return number, name


def _locate(architecture: Architecture, key: str, number: str) -> tuple[list[Layer], int]:
    """The list of layers holding the layer numbered ``number`` and its index there; :class:`ConfigError` naming
    ``key`` and the layers there are when there is no such layer."""
    parts = number.split(".")
    container, holder = architecture.layers, f"the network '{architecture.name}'"
    place, prefix = 0, ""
    while True:
        position = int(parts[place])
        if not 1 <= position <= len(container):
            raise ConfigError(
                f"{key}: {holder} has layers {prefix}1 to {prefix}{len(container)}, not {prefix}{position}."
            )
        place += 1
        if place == len(parts):
            return container, position - 1
        block, block_number = container[position - 1], f"{prefix}{position}"
        container, holder, prefix, place = _inside(key, block, block_number, parts, place)


def _inside(key: str, block: Layer, number: str, parts: list[str], place: int) -> tuple[list[Layer], str, str, int]:
    """The list of layers that ``parts[place:]`` of a number goes into inside ``block`` (numbered ``number``): the
    list, its description, the prefix of its layers' numbers and the place of the next part."""
    if block.type == RESIDUAL and not parts[place].startswith("b"):
        return block.layers, f"block {number} Residual", f"{number}.", place
    if block.type == PARALLEL and parts[place].startswith("b"):
        branch = int(parts[place][1:])
        if not 1 <= branch <= len(block.branches):
            raise ConfigError(
                f"{key}: block {number} Parallel has branches b1 to b{len(block.branches)}, not b{branch}."
            )
        return (
            block.branches[branch - 1],
            f"branch {branch} of block {number} Parallel",
            f"{number}.b{branch}.",
            place + 1,
        )
    if block.type == RESIDUAL:
        raise ConfigError(f"{key}: block {number} Residual has layers, not branches: its first is {number}.1.")
    if block.type == PARALLEL:
        raise ConfigError(
            f"{key}: block {number} Parallel has branches: the first layer of its first branch is {number}.b1.1."
        )
    raise ConfigError(
        f"{key}: layer {number} is a {block.type}, which holds no layers; only Residual and Parallel blocks do."
    )


def describe_point(point: dict[str, Any]) -> str:
    """A run's label by what differs, e.g. "optimizer adam, lr 0.001" (and "· repeat 2")."""
    parts = [
        Variation(key, (value,)).name_of(value) if LINK in key else f"{key} {_shown(value)}"
        for key, value in point.items()
        if key != "repeat"
    ]
    text = ", ".join(parts)
    if "repeat" in point:
        text += f" · repeat {point['repeat']}"
    return text


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


EXAMPLES = {
    "optimizer": "sgd,adam",
    "lr": "0.001,0.01,0.1",
    "momentum": "0,0.9",
    "batch-size": "64,256",
    "weight-decay": "0,0.0005",
    "loss": "mse,cross-entropy",
    "schedule": "none,cosine",
    "train-size": "1000,10000",
    "epochs": "5,10",
    "seed": "0,1,2",
    "early-stopping": "0,3",
    "augment": "none,crop+flip",
    ACTIVATION: "Sigmoid,ReLU",
    DROPOUT: "0,0.5",
}
"""Values to show as an example beside each key."""
WIDTHS = ("out_features", "out_channels")
TITLES = {"lr": "learning rate", "train-size": "training images", "early-stopping": "early stopping (patience)"}


@dataclass(frozen=True)
class VaryChoice:
    """A key a user can vary for a network: the key, its description, and example values."""

    key: str
    title: str
    example: str


def vary_choices(architecture: Architecture) -> list[VaryChoice]:
    """Every key that can vary for ``architecture``: the training settings, every activation and every Dropout's
    p where it has them, the width of each layer but the one that gives the classes ("layer 2 Linear:
    out_features"), layers inside blocks too ("layer 5.2 Conv2d: out_channels"), and each block's shortcut or
    merge ("block 5 Residual: shortcut").

    A width or a block's parameter is offered with the example values among half, the same and twice its width
    (both values of a block's) with which the network still fits, and only if two of them do: the layers of an
    identity block must give back its input's shape, so their last width cannot change."""
    choices = [VaryChoice(key, TITLES.get(key, key.replace("-", " ")), EXAMPLES[key]) for key in SETTINGS]
    walked = list(architecture.walk())
    activations = set(activation_names())
    if any(layer.type in activations for _, _, layer in walked):
        choices.append(VaryChoice(ACTIVATION, "every activation", EXAMPLES[ACTIVATION]))
    if any(layer.type in DROPOUT_LAYERS for _, _, layer in walked):
        choices.append(VaryChoice(DROPOUT, "every Dropout's p", EXAMPLES[DROPOUT]))
    for key, title, values in _layer_candidates(walked):
        fitting = [value for value in values if _fits(architecture, key, value)]
        if len(fitting) >= 2:
            choices.append(VaryChoice(key, title, ",".join(str(value) for value in fitting)))
    return choices


def _layer_candidates(walked: list[tuple[str, int, Layer]]) -> list[tuple[str, str, list[Any]]]:
    """The layers' keys :func:`vary_choices` may offer, in the walk's order, each with its title and the values to
    try; the last width is left out when it is an out_features (it gives the classes)."""
    widths = [
        (number, layer, param)
        for number, _, layer in walked
        if not layer.is_block
        for param in CATALOG[layer.type].params
        if param.name in WIDTHS
    ]
    if widths and widths[-1][2].name == "out_features":
        widths = widths[:-1]
    kept = {(number, param.name) for number, _, param in widths}
    candidates: list[tuple[str, str, list[Any]]] = []
    for number, _, layer in walked:
        if layer.is_block:
            spec = BLOCK_PARAMS[layer.type]
            title = f"block {number} {layer.type}: {spec.name}"
            candidates.append((f"{LAYER_PREFIX}{number}.{spec.name}", title, list(spec.choices)))
            continue
        for param in CATALOG[layer.type].params:
            value = layer.params.get(param.name, param.default)
            if (number, param.name) not in kept or not isinstance(value, int) or isinstance(value, bool) or value < 1:
                continue
            title = f"layer {number} {layer.type}: {param.name}"
            candidates.append(
                (f"{LAYER_PREFIX}{number}.{param.name}", title, sorted({max(value // 2, 1), value, value * 2}))
            )
    return candidates


def _fits(architecture: Architecture, key: str, value: Any) -> bool:
    """Whether the network with ``key`` set to ``value`` validates."""
    return validate(with_layer_param(architecture, key, value)).ok
