"""The class's comparisons, ready to run: each a network, its settings and what varies, with the lesson it shows.

The Experiments tab offers them by title; ``workbench sweep --ready-made NAME`` runs the same spec headless. All
train on the class's split of Fashion-MNIST (10,000 training and 1,000 validation images) unless the experiment
is about the training set's size.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from workbench.core.architecture import Architecture, Layer
from workbench.core.errors import ConfigError
from workbench.core.experiments.spec import SweepSpec, Variation
from workbench.core.presets import load_preset, with_classes
from workbench.core.training.config import TrainConfig

CLASS_SPLIT = {"train_size": 10_000, "val_size": 1_000}


@dataclass(frozen=True)
class ReadyMade:
    """A comparison of the class: ``preset`` (with a Dropout layer added after every activation when
    ``dropout_layers``) trained under ``settings`` for each value of ``variation``."""

    name: str
    title: str
    lesson: str
    preset: str
    settings: dict[str, Any]
    variation: Variation
    dropout_layers: bool = False
    repeat: int = 1

    def architecture(self, num_classes: int = 10) -> Architecture:
        """The network the runs start from."""
        architecture = with_classes(load_preset(self.preset), num_classes)
        if not self.dropout_layers:
            return architecture
        layers: list[Layer] = []
        for number, layer in enumerate(architecture.layers):
            layers.append(layer)
            if layer.type == "ReLU" and number < len(architecture.layers) - 1:
                layers.append(Layer("Dropout", {"p": 0.0}))
        return dataclasses.replace(architecture, name=f"{architecture.name} + Dropout", layers=layers)

    def spec(self, dataset: str = "fashion-mnist", num_classes: int = 10) -> SweepSpec:
        """The sweep this experiment is, on ``dataset`` (its class count ``num_classes``)."""
        config = TrainConfig.from_dict({"dataset": dataset, **CLASS_SPLIT, **self.settings})
        return SweepSpec(self.architecture(num_classes), config, (self.variation,), self.repeat)

    def describe(self) -> str:
        """The network, the settings that matter and what varies, in one line for the tab."""
        settings = ", ".join(f"{key.replace('_', ' ')} {_shown(value)}" for key, value in self.settings.items())
        variation = self.variation
        if variation.names:
            unnamed = Variation(variation.key, variation.values)
            values = "; ".join(
                f"{name} ({unnamed.name_of(value)})" for value, name in zip(variation.values, variation.names)
            )
        else:
            values = ", ".join(variation.name_of(value) for value in variation.values)
        return f"{self.architecture().name}, {settings}: {values}."


READY_MADE: tuple[ReadyMade, ...] = (
    ReadyMade(
        "sigmoid-vs-relu",
        "Sigmoid vs ReLU, six layers deep",
        "Six Sigmoid layers pass back too little gradient for the first layers to learn; ReLU passes it back whole.",
        "seed-sigmoidnet-6",
        {"optimizer": "sgd", "lr": 0.1, "epochs": 10},
        Variation("activation", ("Sigmoid", "Tanh", "ReLU")),
    ),
    ReadyMade(
        "mse-vs-cross-entropy",
        "MSE vs cross-entropy",
        "The class's first loss (squared error on one-hot labels) against cross-entropy on the same network.",
        "seed-simplenet",
        {"optimizer": "sgd", "lr": 0.01, "epochs": 10},
        Variation("loss", ("mse", "cross-entropy")),
    ),
    ReadyMade(
        "sgd-momentum-adam",
        "SGD vs momentum vs Adam",
        "Plain SGD crawls; momentum remembers the direction it was going; Adam also scales each weight's step.",
        "seed-relu-mlp",
        {"epochs": 10},
        Variation(
            "optimizer/momentum/lr",
            (("sgd", 0.0, 0.01), ("sgd", 0.9, 0.01), ("adam", 0.9, 0.001)),
            ("SGD", "SGD + momentum", "Adam"),
        ),
    ),
    ReadyMade(
        "overfitting",
        "Overfitting: 500 images, and its remedies",
        "On 500 images the network learns them by heart: its validation accuracy stops rising, then falls; each "
        "remedy holds it up in its own way.",
        "seed-relu-mlp",
        {"train_size": 500, "epochs": 60, "optimizer": "adam", "lr": 0.003, "batch_size": 50},
        Variation(
            "dropout/weight-decay/augment/early-stopping",
            (
                (0.0, 0.0, "none", 0),
                (0.5, 0.0, "none", 0),
                (0.0, 0.003, "none", 0),
                (0.0, 0.0, "erase", 0),
                (0.0, 0.0, "none", 5),
            ),
            ("nothing", "Dropout 0.5", "weight decay", "erasing", "early stopping"),
        ),
        dropout_layers=True,
    ),
)
"""The ready-made experiments, in the order the tab lists them."""


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def ready_made(name: str) -> ReadyMade:
    """The ready-made experiment called ``name``; :class:`ConfigError` listing the names otherwise."""
    for experiment in READY_MADE:
        if experiment.name == name:
            return experiment
    names = ", ".join(experiment.name for experiment in READY_MADE)
    raise ConfigError(f"There is no ready-made experiment '{name}': choose one of {names}.")
