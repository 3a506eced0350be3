"""``workbench inspect MODEL IMAGE --out DIR``: one image through a trained network, forward and back."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.core.inspect.attribution import METHODS
from workbench.core.inspect.report import inspect_file, summary_lines
from workbench.core.runs.trained import load_trained


def add_inspect_command(commands: argparse._SubParsersAction) -> None:
    """The ``inspect`` verb and its options."""
    inspect = commands.add_parser(
        "inspect",
        help="look inside a trained network at one image: every layer forward and back, and what it looked at",
        description="Send one image through a trained network and write, into DIR: report.json (the top-5 "
        "classes, the loss, and for every layer its output shape, activation statistics and gradient norms), "
        "saliency.npy and saliency.png (what the network looked at, by the chosen method) and layers.png "
        "(every layer's output and the gradient reaching it, on one sheet).",
    )
    inspect.add_argument("model", type=Path, metavar="MODEL", help="a run folder or a safetensors bundle folder")
    inspect.add_argument("image", type=Path, metavar="IMAGE", help="an image file (PNG, JPEG, ...)")
    inspect.add_argument("--out", type=Path, required=True, metavar="DIR", help="the folder to write into")
    inspect.add_argument(
        "--method",
        choices=METHODS,
        default="saliency",
        help="how to show what the network looked at (grad-cam needs a convolution)",
    )
    inspect.add_argument(
        "--target",
        metavar="CLASS",
        help="the class whose loss is sent back, by name or index (default: the predicted class)",
    )
    inspect.add_argument(
        "--invert",
        action="store_true",
        help="invert the image first: dark on light becomes light on dark, as in Fashion-MNIST and MNIST",
    )
    inspect.set_defaults(command="inspect", handler=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    """Inspect the image and print the top classes and what was written."""
    result = inspect_file(load_trained(args.model), args.image, args.out, args.method, args.target, args.invert)
    for line in summary_lines(result):
        print(line)
    return 0
