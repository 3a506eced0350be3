"""How an epoch is cut into batches: a last batch too small for batch normalisation joins the one before it."""

from __future__ import annotations

import math

from torch import nn


def has_batch_norm(model: nn.Module) -> bool:
    """Whether ``model`` has a batch normalisation layer (which cannot train on a batch of one image)."""
    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules())


def epoch_batches(count: int, batch_size: int, processes: int, model: nn.Module) -> tuple[int, int]:
    """The batches of an epoch of ``count`` images, and how many images a last batch too small for the model's
    batch normalisation holds (0: none), which then join the batch before it.

    Batch normalisation cannot train on a single image: a last batch of one, or in a multi-process run one that
    leaves some process a single image, is merged rather than dropped, so every epoch sees every image.
    """
    batches, left = math.ceil(count / batch_size), count % batch_size
    if batches > 1 and 0 < left < 2 * processes and has_batch_norm(model):
        return batches - 1, left
    return batches, 0
