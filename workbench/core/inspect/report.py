"""``workbench inspect``: one image file through a trained network, written as a report and pictures.

:func:`inspect_file` writes into the output folder:

- ``report.json``: the prediction (top-5 classes and probabilities), the loss for the target class, and one entry
  per layer in the builder's order, the layers inside blocks too (``index`` from 1, ``number`` as the builder
  numbers layers, ``"5.2"`` inside block 5, ``depth`` the blocks around it, ``type``, ``output_shape``,
  ``activation`` statistics, ``gradient`` norms; a block's entry is its output, the sum or merge); see
  :meth:`Inspection.to_dict`;
- ``saliency.npy``: the chosen attribution as an H×W float32 array, the network's input size;
- ``saliency.png``: that attribution over the image, scaled up so it can be seen;
- ``layers.png``: the forward and backward pass of every layer on one sheet.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.core.files import atomic_write_bytes, atomic_write_text
from workbench.core.inspect.attribution import attribute, black_pixel, check_method
from workbench.core.inspect.one_image import InspectError, Inspection, inspect_image
from workbench.core.inspect.pictures import image_pixels, layer_sheet, overlay
from workbench.core.runs.predict import load_image
from workbench.core.runs.trained import TrainedModel, check_finite
from workbench.core.training.evaluation import predict

REPORT_FILE = "report.json"
SALIENCY_ARRAY = "saliency.npy"
SALIENCY_PICTURE = "saliency.png"
LAYERS_PICTURE = "layers.png"
PICTURE_SIDE = 224
"""The overlay is scaled up by a whole factor to at least this many pixels a side."""


@dataclass(frozen=True)
class InspectedFile:
    """What :func:`inspect_file` computed and where it wrote it."""

    inspection: Inspection
    attribution: np.ndarray
    method: str
    folder: Path


def resolve_target(text: str | None, class_names: tuple[str, ...]) -> int | None:
    """The class ``text`` names, by its name (any case) or its index; None for no ``text``. :class:`InspectError`
    listing the classes otherwise."""
    if text is None:
        return None
    by_name = {name.casefold(): index for index, name in enumerate(class_names)}
    if text.casefold() in by_name:
        return by_name[text.casefold()]
    if text.strip().isdigit() and int(text) < len(class_names):
        return int(text)
    listed = ", ".join(f"{index} {name}" for index, name in enumerate(class_names))
    raise InspectError(f"'{text}' is not one of the network's classes: {listed}.")


def inspect_file(
    trained: TrainedModel,
    image_path: str | os.PathLike,
    out: Path,
    method: str = "saliency",
    target: str | None = None,
    invert: bool = False,
) -> InspectedFile:
    """Inspect the image at ``image_path`` with ``trained`` for the class ``target`` (a name or an index; default:
    the predicted class) and write the files of the module's docstring into ``out`` (made if missing).

    Everything is checked before anything is written: a bad method, class or image raises
    :class:`InspectError` or :class:`~workbench.core.runs.predict.ImageError` and leaves ``out`` as it was.
    """
    architecture, data = trained.architecture, trained.data
    check_method(method, architecture)
    check_finite(trained.model, trained.name)
    chosen = resolve_target(target, data.class_names)
    image = load_image(image_path, architecture.input_shape, data.mean, data.std, invert)
    if chosen is None:
        chosen = int(predict(trained.model, image[None])[0].argmax())
    inspection = inspect_image(trained.model, architecture, image, data.class_names, chosen)
    black = black_pixel(data.mean, data.std)
    attribution = attribute(trained.model, architecture, image[None], [chosen], method, black)[0]
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "image": str(Path(image_path)),
        "model": trained.name,
        "method": method,
        "inverted": invert,
        **inspection.to_dict(),
    }
    atomic_write_text(out / REPORT_FILE, json.dumps(report, indent=2) + "\n")
    buffer = io.BytesIO()
    np.save(buffer, attribution.astype(np.float32))
    atomic_write_bytes(out / SALIENCY_ARRAY, buffer.getvalue())
    pixels = image_pixels(inspection.image, data.mean, data.std)
    atomic_write_bytes(out / SALIENCY_PICTURE, _png(_scaled(overlay(pixels, attribution))))
    layer_sheet(inspection, out / LAYERS_PICTURE, pixels, f"{trained.name}: {Path(image_path).name}")
    return InspectedFile(inspection, attribution, method, out)


def _scaled(rgb: np.ndarray) -> np.ndarray:
    factor = max(1, -(-PICTURE_SIDE // max(rgb.shape[:2])))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def summary_lines(result: InspectedFile) -> list[str]:
    """What ``workbench inspect`` prints: the top classes, the loss and the files written."""
    inspection = result.inspection
    lines = [f"{name}: {probability:.1%}" for _, name, probability in inspection.top()]
    lines.append(f"loss for {inspection.class_names[inspection.target]}: {inspection.loss:.4g}")
    names = (REPORT_FILE, SALIENCY_ARRAY, SALIENCY_PICTURE, LAYERS_PICTURE)
    lines.append(f"Wrote {', '.join(names)} ({result.method}) to {result.folder}")
    return lines
