"""The bundled architectures (``resources/presets/*.json``)."""

from __future__ import annotations

import difflib

from workbench.core.architecture import Architecture, validate
from workbench.core.errors import ArchitectureError
from workbench.resources import resource_dir

_ORDER = {
    "seed-linear": 0,
    "seed-simplenet": 1,
    "seed-sigmoidnet": 2,
    "seed-relu-mlp": 3,
    "mlp": 4,
    "seed-sigmoidnet-6": 5,
    "seed-relunet-6": 6,
    "cnn-small": 7,
    "cnn-strong": 8,
    "deep-mlp-12": 9,
    "res-mlp-12": 10,
    "plain-20": 11,
    "resnet-20": 12,
}


def preset_names() -> list[str]:
    """Names of the bundled presets, simplest first: the class's networks, then the stronger ones."""
    names = (path.stem for path in resource_dir("presets").glob("*.json"))
    return sorted(names, key=lambda name: (_ORDER.get(name, len(_ORDER)), name))


def load_preset(name: str) -> Architecture:
    """The preset called ``name``; :class:`ArchitectureError` naming the known ones otherwise."""
    names = preset_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ArchitectureError(f"Unknown preset '{name}'.{hint} The presets are: {', '.join(names)}.")
    return Architecture.load(resource_dir("presets") / f"{name}.json")


def with_classes(architecture: Architecture, num_classes: int) -> Architecture:
    """A copy of the preset ``architecture`` classifying ``num_classes`` classes (e.g. an image folder's).

    Presets are templates: like their input shape, their output follows the dataset. The last Linear
    layer, every preset's output layer, gets ``num_classes`` outputs.
    """
    if architecture.num_classes == num_classes:
        return architecture
    fitted = architecture.copy()
    fitted.num_classes = num_classes
    output = next((layer for layer in reversed(fitted.layers) if layer.type == "Linear"), None)
    if output is not None:
        output.params["out_features"] = num_classes
    return fitted


def describe_preset(name: str) -> str:
    """One line for ``workbench presets``: name, parameter count, layers and description."""
    architecture = load_preset(name)
    report = validate(architecture)
    return f"{name:<18} {report.total_parameters:>10,} params  {architecture.summary()}"
