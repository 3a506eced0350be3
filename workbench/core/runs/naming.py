"""A new run's default name: what it is, not when it started ("seed-simplenet + ReLU · SGD m0.9 lr 0.001").

The network's part is its name, with the layer types added to or taken from the bundled preset of that name when
it was edited ("+ ReLU", "− Sigmoid", or "edited" when only parameters changed); the recipe's part is the optimizer
with its momentum where it has one and the learning rate, then only the settings that differ from the defaults
(MSE, weight decay, a schedule, augmentation).
"""

from __future__ import annotations

from collections import Counter

from workbench.core.architecture import Architecture
from workbench.core.errors import ArchitectureError
from workbench.core.presets import load_preset, preset_names
from workbench.core.training.config import TrainConfig

OPTIMIZER_TITLES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}
WITH_MOMENTUM = ("sgd", "rmsprop")


def run_name(architecture: Architecture, config: TrainConfig) -> str:
    """The name a new run is shown by unless the user gives one."""
    return f"{network_words(architecture)} · {recipe_words(config)}"


def network_words(architecture: Architecture) -> str:
    """The network's name, and how it differs from the preset of that name, if it is one."""
    if architecture.name not in preset_names():
        return architecture.name
    try:
        preset = load_preset(architecture.name)
    except ArchitectureError:
        return architecture.name
    ours, theirs = Counter(layer.type for layer in architecture.layers), Counter(layer.type for layer in preset.layers)
    added, removed = ours - theirs, theirs - ours
    changes = [f"+ {name}" for name in sorted(added)] + [f"− {name}" for name in sorted(removed)]
    if not changes and [layer.to_dict() for layer in architecture.layers] != [
        layer.to_dict() for layer in preset.layers
    ]:
        changes = ["edited"]
    return " ".join([architecture.name, *changes])


def recipe_words(config: TrainConfig) -> str:
    """The optimizer, its momentum (where it has one) and learning rate, then the settings off their defaults."""
    optimizer = OPTIMIZER_TITLES.get(config.optimizer, config.optimizer)
    if config.optimizer in WITH_MOMENTUM and config.momentum:
        optimizer += f" m{config.momentum:g}"
    parts = [f"{optimizer} lr {config.lr:g}"]
    if config.loss == "mse":
        parts.append("MSE")
    if config.weight_decay:
        parts.append(f"wd {config.weight_decay:g}")
    if config.schedule != "none":
        parts.append(config.schedule)
    if config.augment != "none":
        parts.append(f"augment {config.augment.replace(',', '+')}")
    return " · ".join(parts)
