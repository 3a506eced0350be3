"""Which layer a failed forward pass failed in, and the sentence that names it.

PyTorch reports a shape that does not fit as a bare ``RuntimeError`` ("mat1 and mat2 shapes cannot be multiplied")
with no word of the layer. The engine pushes the same inputs again through the network's layers one by one to find
the first that fails, and reports that one (see :func:`locate_failure`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from workbench.core.errors import TrainingError
from workbench.core.training.messages import layer_failure


def locate_failure(
    model: nn.Module,
    error: BaseException,
    inputs: torch.Tensor,
    training: bool,
    autocast: contextlib.AbstractContextManager[Any],
) -> TrainingError | None:
    """The :class:`TrainingError` naming the layer of ``model`` that fails on ``inputs`` (in training or eval mode,
    as the failed pass was, under ``autocast``); None where no single layer fails that way (the failure was not the
    network's: the compiler's, another process's, memory)."""
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return None
    was_training = model.training
    model.train(training)
    try:
        with torch.no_grad(), autocast:
            failing = _failing_layer(model, inputs)
    except Exception:  # locating is a courtesy: the original error is reported instead
        return None
    finally:
        model.train(was_training)
    if failing is None:
        return None
    number, layer, shape, layer_error = failing
    return TrainingError(layer_failure(number, layer, tuple(shape), layer_error))


def _failing_layer(
    model: nn.Module, inputs: torch.Tensor
) -> tuple[int, nn.Module, torch.Size, RuntimeError | ValueError] | None:
    """Push ``inputs`` through the layers of ``model`` (an ``nn.Sequential``) one by one: the first that fails, as
    ``(number from 1, layer, shape of its input, error)``; None if none fails or ``model`` is not a sequence."""
    if not isinstance(model, nn.Sequential):
        return None
    values = inputs
    for number, layer in enumerate(model, start=1):
        try:
            values = layer(values)
        except (RuntimeError, ValueError) as error:
            if isinstance(error, torch.cuda.OutOfMemoryError):
                return None
            return number, layer, values.shape, error
    return None
