"""Augmentation of training batches on the training device: random crop with padding, horizontal flip, a small
rotation with scaling and shift, random erasing — each image of a batch with its own random draw.

torchvision's ``transforms.v2`` accepts a batch ``(N, C, H, W)`` but draws one set of random parameters for the
whole batch (every image gets the same crop, the same flip), which is not augmentation in the usual sense; here
the draws are per image and vectorised with PyTorch's own ``affine_grid``/``grid_sample`` and index arithmetic,
so a batch costs a few tensor operations whatever its size.

The draws come from a generator seeded by the run's seed, the epoch and the batch, so a run is reproducible and a
continued run augments its remaining batches exactly as an uninterrupted one would, without storing a state.
Pixels brought in from outside the image (padding, rotation) are black, in the normalised space of the images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional

from workbench.core.errors import ConfigError

AUGMENTATIONS = ("crop", "flip", "rotate", "erase")
NONE = "none"
CROP_PADDING = 4
"""Pixels of padding for the random crop of a 28×28 image (scaled with the image's size), as in the classic
CIFAR recipe: the object moves by up to a seventh of its size."""
ROTATION_DEGREES = 10.0
SCALE_RANGE = (0.9, 1.1)
SHIFT_FRACTION = 0.1
ERASE_PROBABILITY = 0.5
ERASE_AREA = (0.02, 0.2)
FLIP_CHANGES_CLASS = frozenset({"digits", "mnist", "kmnist"})
"""Datasets whose classes a mirror image changes (a mirrored 2 is no digit; mirrored characters are others)."""


def parse_augment(text: str) -> tuple[str, ...]:
    """``"crop,flip"`` (or ``crop+flip``, as a sweep's value) as ``("crop", "flip")``; ``"none"`` as ``()``;
    :class:`ConfigError` naming an unknown one."""
    names = [name.strip() for name in text.replace("+", ",").split(",") if name.strip()]
    if names in ([], [NONE]):
        return ()
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(
            f"Unknown augmentation '{unknown[0]}': use {', '.join(AUGMENTATIONS)} (several separated by commas) or "
            f"{NONE}."
        )
    return tuple(name for name in AUGMENTATIONS if name in names)


def check_augment(text: str, dataset: str) -> None:
    """Refuse an unknown augmentation, or a flip on a dataset whose classes a mirror image changes."""
    if "flip" in parse_augment(text) and dataset in FLIP_CHANGES_CLASS:
        raise ConfigError(
            f"augment: a horizontal flip changes what a {dataset} image shows (a mirrored 2, 3 or 7 is no digit), "
            f"so it is refused there; use crop, rotate or erase."
        )


class Augmenter:
    """Augments batches of one run: ``augmenter(images, epoch, batch)``; ``black`` is a black pixel per channel in
    the images' normalised space."""

    def __init__(self, names: Sequence[str], seed: int, black: Sequence[float]):
        self.names = tuple(names)
        self.seed = seed
        self.black = tuple(black)

    def __call__(self, images: torch.Tensor, epoch: int, batch: int) -> torch.Tensor:
        if not self.names or images.dim() != 4:
            return images
        generator = torch.Generator(device=images.device)
        generator.manual_seed((self.seed * 1_000_003 + epoch) * 1_000_033 + batch)
        black = torch.tensor(self.black, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        out = images
        if "rotate" in self.names:  # the crop's shift and the flip join the rotation: one resampling in all
            out = _affine(out, black, generator, "crop" in self.names, "flip" in self.names)
        else:
            if "crop" in self.names:
                out = _crop(out, black, generator)
            if "flip" in self.names:
                flipped = torch.rand(len(out), generator=generator, device=out.device) < 0.5
                out = torch.where(flipped.view(-1, 1, 1, 1), out.flip(-1), out)
        if "erase" in self.names:
            out = _erase(out, generator)
        return out


def _uniform(count: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator, device=device)


def _crop(images: torch.Tensor, black: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image padded with black on every side and cut back to its size at a random offset."""
    count, channels, height, width = images.shape
    pad = _padding(height, width)
    padded = black.expand(count, channels, height + 2 * pad, width + 2 * pad).clone()
    padded[:, :, pad : pad + height, pad : pad + width] = images
    rows = torch.randint(0, 2 * pad + 1, (count, 1), generator=generator, device=images.device)
    cols = torch.randint(0, 2 * pad + 1, (count, 1), generator=generator, device=images.device)
    rows = rows + torch.arange(height, device=images.device)
    cols = cols + torch.arange(width, device=images.device)
    picked = padded[torch.arange(count, device=images.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return picked.permute(0, 3, 1, 2).contiguous()  # advanced indexing put the channels last


def _affine(
    images: torch.Tensor, black: torch.Tensor, generator: torch.Generator, crop: bool, flip: bool
) -> torch.Tensor:
    """Each image turned by up to ±10°, scaled by 0.9–1.1 and shifted by up to a tenth, bilinearly; with ``crop``
    also shifted by whole pixels as the random crop would (up to its padding), with ``flip`` mirrored half the time,
    all in one resampling."""
    count, _, height, width = images.shape
    device = images.device
    angle = _uniform(count, -ROTATION_DEGREES, ROTATION_DEGREES, generator, device) * math.pi / 180
    scale = _uniform(count, *SCALE_RANGE, generator, device)
    shift = _uniform(2 * count, -SHIFT_FRACTION * 2, SHIFT_FRACTION * 2, generator, device).view(count, 2)
    if crop:
        pad = _padding(height, width)
        pixels = torch.randint(-pad, pad + 1, (count, 2), generator=generator, device=device).to(shift.dtype)
        shift = shift + 2 * pixels / torch.tensor([width, height], dtype=shift.dtype, device=device)
    mirror = torch.ones(count, device=device)
    if flip:
        mirror = torch.where(torch.rand(count, generator=generator, device=device) < 0.5, -mirror, mirror)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # The sampling grid of the affine map [[cos·m, -sin, sx], [sin·m, cos, sy]], as affine_grid would make it
    # (pixel centres, align_corners=False), from elementwise products: affine_grid's batched matrix product takes
    # several times longer on a CPU for a batch of small images.
    xs = ((torch.arange(width, device=device, dtype=images.dtype) * 2 + 1) / width - 1).view(1, 1, -1)
    ys = ((torch.arange(height, device=device, dtype=images.dtype) * 2 + 1) / height - 1).view(1, -1, 1)
    column = [value.to(images.dtype).view(-1, 1, 1) for value in (cos * mirror, sin, shift[:, 0], sin * mirror, cos)]
    grid_x = column[0] * xs - column[1] * ys + column[2]
    grid_y = column[3] * xs + column[4] * ys + shift[:, 1].to(images.dtype).view(-1, 1, 1)
    grid = torch.stack([grid_x, grid_y], dim=3)
    # grid_sample brings in zeros from outside: shifted so that they are black
    return functional.grid_sample(images - black, grid, align_corners=False) + black


def _padding(height: int, width: int) -> int:
    return max(1, round(CROP_PADDING * max(height, width) / 28))


def _erase(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Half of the images get a random rectangle (2–20% of the area, aspect 0.3–3.3) set to 0, as torchvision's
    RandomErasing does on normalised images."""
    count, _, height, width = images.shape
    device = images.device
    area = _uniform(count, *ERASE_AREA, generator, device) * height * width
    aspect = torch.exp(_uniform(count, math.log(0.3), math.log(1 / 0.3), generator, device))
    box_h = torch.sqrt(area * aspect).clamp(1, height).floor()
    box_w = torch.sqrt(area / aspect).clamp(1, width).floor()
    top = (torch.rand(count, generator=generator, device=device) * (height - box_h + 1)).floor()
    left = (torch.rand(count, generator=generator, device=device) * (width - box_w + 1)).floor()
    chosen = torch.rand(count, generator=generator, device=device) < ERASE_PROBABILITY
    rows = torch.arange(height, device=device).view(1, -1, 1)
    cols = torch.arange(width, device=device).view(1, 1, -1)
    inside = (
        (rows >= top.view(-1, 1, 1))
        & (rows < (top + box_h).view(-1, 1, 1))
        & (cols >= left.view(-1, 1, 1))
        & (cols < (left + box_w).view(-1, 1, 1))
        & chosen.view(-1, 1, 1)
    )
    return images.masked_fill(inside[:, None], 0.0)
