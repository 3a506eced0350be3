"""A trained network's guesses for the user's own image files (PNG, JPEG and whatever else Pillow reads).

Each image is made into what the network was trained on: grayscale ("L") or colour ("RGB") as its input
channels say, resized to its input height and width, scaled to [0, 1] and normalised with the mean and std
the model was trained with. The whole picture is resized, without cropping, so a picture that is not square
is squeezed; crop it around the object first for the best guesses.

Resizing is done as for image-folder datasets (:func:`workbench.core.data.image_folders.image_pixels`), so that a
network trained on the user's own folder sees its new images exactly as it saw its training images: Pillow's
Lanczos filter, which shrinks without aliasing and keeps edges sharp, with ``reducing_gap=3``, which first
shrinks a large photo by a whole factor (box averaging, fast) and which Pillow documents as
indistinguishable from a full Lanczos pass.

Fashion-MNIST and MNIST are light objects on a black background: photos of clothes or digits on white need
``invert=True``. Transparent pixels count as white (paper), before any inversion.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

# The same preparation as a folder dataset's training images, so a network sees new images as it saw those.
from workbench.core.data.image_folders import REDUCING_GAP, RESAMPLE, flatten_image
from workbench.core.errors import RunError, WorkbenchError
from workbench.core.runs.trained import TrainedModel, check_finite
from workbench.core.training.engine import predict

_MODES = {1: "L", 3: "RGB"}
LIGHT_BACKGROUND = 0.5
"""A background (an image's outermost ring of pixels) brighter than this, on a 0–1 scale, is light."""


class ImageError(WorkbenchError):
    """An image file is missing or cannot be read as an image."""


@dataclass
class Guess:
    """The network's most probable classes for one image: ``(class name, probability)``, most probable first."""

    path: Path
    top: list[tuple[str, float]]


def predict_images(
    trained: TrainedModel, paths: Sequence[str | os.PathLike], top_k: int = 3, invert: bool = False
) -> list[Guess]:
    """The ``top_k`` most probable classes (at most all of them) for each image, in one forward pass.

    All or nothing: if any image cannot be read, :class:`ImageError` names every such file and nothing
    is predicted. Ties between probabilities go to the lower class index. A network whose weights hold NaN or
    infinite values is refused with :class:`RunError` (:func:`~workbench.core.runs.trained.check_finite`):
    its probabilities would be NaN.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, not {top_k}.")
    check_finite(trained.model, trained.name)
    files = [Path(path) for path in paths]
    if not files:
        return []
    batch = load_images(files, trained.architecture.input_shape, trained.data.mean, trained.data.std, invert)
    with torch.inference_mode():
        probabilities = predict(trained.model, batch)
    order = torch.sort(probabilities, dim=1, descending=True, stable=True).indices[:, :top_k]
    names = trained.data.class_names
    return [
        Guess(path, [(names[k], float(row[k])) for k in best.tolist()])
        for path, row, best in zip(files, probabilities, order)
    ]


def load_images(
    paths: Sequence[str | os.PathLike],
    input_shape: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    invert: bool = False,
) -> torch.Tensor:
    """The images as one normalised float32 batch ``(N, C, H, W)`` for a network taking ``input_shape``.

    Every file is tried before anything is raised, so that one :class:`ImageError` names all the bad ones.
    """
    _check_model_input(input_shape, mean, std)
    images, problems = [], []
    for path in paths:
        try:
            images.append(load_image(path, input_shape, mean, std, invert))
        except ImageError as error:
            problems.append(str(error))
    if problems:
        if len(problems) == 1:
            raise ImageError(problems[0])
        raise ImageError(f"{len(problems)} of {len(paths)} images cannot be used: {' '.join(problems)}")
    channels, height, width = input_shape
    return torch.stack(images) if images else torch.zeros((0, channels, height, width))


def load_image(
    path: str | os.PathLike,
    input_shape: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    invert: bool = False,
) -> torch.Tensor:
    """One image file as the normalised float32 tensor ``(C, H, W)`` a network taking ``input_shape`` expects.

    ``invert`` turns dark on light into light on dark (after transparent pixels became white).
    :class:`ImageError` if the file is missing or is not an image Pillow can read.
    """
    _check_model_input(input_shape, mean, std)
    channels, height, width = input_shape
    image = _read(Path(path))
    image = flatten_image(image).convert(_MODES[channels])
    if invert:
        image = ImageOps.invert(image)
    if image.size != (width, height):
        image = image.resize((width, height), RESAMPLE, reducing_gap=REDUCING_GAP)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).reshape(height, width, channels)
    pixels = pixels.permute(2, 0, 1)
    means = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    stds = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return ((pixels - means) / stds).contiguous()


def light_backgrounds(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """For each normalised image of ``images`` ``(N, C, H, W)``, whether its background is light: the mean
    brightness of its outermost ring of pixels (where a photo's background shows) above :data:`LIGHT_BACKGROUND`."""
    means = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    stds = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    pixels = (images.float() * stds + means).clamp(0.0, 1.0)
    ring = torch.cat(
        [pixels[:, :, 0, :], pixels[:, :, -1, :], pixels[:, :, 1:-1, 0], pixels[:, :, 1:-1, -1]], dim=2
    ).flatten(1)
    return (ring.mean(dim=1) > LIGHT_BACKGROUND).numpy()


def background_hint(
    images: torch.Tensor,
    training_images: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    dataset_title: str,
    inverted: bool,
) -> str:
    """A sentence when the user's ``images`` (normalised, ``inverted`` or not) have backgrounds unlike those of
    most ``training_images`` (light where they are dark, or the reverse), saying how to set Invert; "" when
    they agree."""
    if not len(images) or not len(training_images):
        return ""
    trained_light = bool(light_backgrounds(training_images, mean, std).mean() > 0.5)
    unlike = int(np.count_nonzero(light_backgrounds(images, mean, std) != trained_light))
    if not unlike:
        return ""
    theirs, ours = ("light", "dark") if trained_light else ("dark", "light")
    count = f"{unlike} of your {len(images)} images" if len(images) > 1 else "Your image"
    verb = "has" if unlike == 1 and len(images) > 1 or len(images) == 1 else "have"
    advice = "untick Invert (dark on light)" if inverted else "tick Invert (dark on light)"
    return (
        f"{count} {verb} a {ours} background{' after inverting' if inverted else ''}, while {dataset_title}'s "
        f"training images have a {theirs} one: {advice} so the network sees them as it was trained."
    )


def _check_model_input(input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float]) -> None:
    """Refuse a network whose input cannot be made from an image, or whose statistics do not fit it."""
    if len(input_shape) != 3 or input_shape[0] not in _MODES:
        raise RunError(
            f"The network takes inputs of shape {tuple(input_shape)}; images can only be made into "
            f"1 (grayscale) or 3 (colour) channels of height × width."
        )
    if {len(mean), len(std)} - {1, input_shape[0]}:
        raise RunError(
            f"The model's normalisation has {len(mean)} means and {len(std)} standard deviations "
            f"for {input_shape[0]} channels."
        )


def _read(path: Path) -> Image.Image:
    """The decoded image in ``path``, upright as its EXIF orientation says; :class:`ImageError` if it is not one."""
    if not path.exists():
        raise ImageError(f"{path} does not exist.")
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image.")
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except UnidentifiedImageError:
        raise ImageError(f"{path} is not a readable PNG or JPEG image.") from None
    except Exception as error:  # damaged files fail inside Pillow's decoders in many ways (OSError, ValueError, ...)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageError(f"{path} is not a readable PNG or JPEG image ({reason}).") from None
