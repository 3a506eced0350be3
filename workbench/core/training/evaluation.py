"""Scoring a model on a whole split (loss, accuracy, class probabilities) and predicting, batch by batch.

Scoring goes in chunks of :data:`EVAL_BATCH` items and can be stopped between two of them (:class:`ScoringStopped`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from workbench.core.training.recipe import LossFunction

EVAL_BATCH = 4096
"""Items per forward pass when scoring or predicting (fewer for convolutional networks on the CPU, see
:func:`eval_batch`)."""
CPU_CONV_EVAL_BATCH = 512
"""Items per forward pass of a convolutional network on the CPU: measured on a 2-core CPU, 1.2–2× the throughput of
4,096 (the activations stay in cache), and a stop waits for at most a fraction of a second (``cnn-strong``: about
0.4 s instead of 4)."""


def eval_batch(model: nn.Module, device: torch.device) -> int:
    """Items per forward pass when scoring ``model`` on ``device``."""
    if device.type == "cpu" and any(isinstance(module, nn.Conv2d) for module in model.modules()):
        return min(EVAL_BATCH, CPU_CONV_EVAL_BATCH)
    return EVAL_BATCH


class ScoringStopped(Exception):
    """:func:`score` was asked to stop (its ``stop`` said so) before it had evaluated every item."""


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """Autocast to ``dtype`` on ``device``'s type; no context at all for None (float32)."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def evaluate(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: LossFunction,
    precision: torch.dtype | None = None,
) -> tuple[float, float]:
    """``(mean loss, accuracy)`` over a whole split in eval mode; NaNs for an empty split."""
    loss, accuracy, _ = score(model, inputs, targets, loss_fn, precision)
    return loss, accuracy


@torch.no_grad()
def score(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: LossFunction,
    precision: torch.dtype | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> tuple[float, float, torch.Tensor]:
    """``(mean loss, accuracy, class probabilities)`` over a whole split in eval mode.

    The probabilities ``(N, classes)`` are the softmax of the outputs, on the inputs' device. An empty
    split gives NaNs and an empty tensor. ``precision``: the autocast dtype of the forward passes (None:
    float32). ``progress(done, total)`` is called after each batch of :func:`eval_batch` items (it does not
    wait for the device). ``stop()`` is asked before each batch; once it says True, scoring ends there with
    :class:`ScoringStopped` (the model back in the mode it was in).
    """
    total = len(targets)
    if total == 0:
        return math.nan, math.nan, torch.empty(0, 0, device=inputs.device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=inputs.device)
    batches = []
    try:
        size = eval_batch(model, inputs.device)
        for start in range(0, total, size):
            if stop is not None and stop():
                raise ScoringStopped(f"Stopped after scoring {start:,} of {total:,} items.")
            batch_targets = targets[start : start + size]
            with autocast_context(inputs.device, precision):
                outputs = model(inputs[start : start + size])
                loss_sum += loss_fn(outputs, batch_targets) * len(batch_targets)
            batches.append(torch.softmax(outputs.float(), dim=1))
            if progress is not None:
                progress(min(start + size, total), total)
    finally:
        model.train(was_training)
    probabilities = torch.cat(batches)
    correct = (probabilities.argmax(dim=1) == targets).sum()
    return loss_sum.item() / total, correct.item() / total, probabilities


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``(N, classes)`` for a batch of inputs, computed in eval mode."""
    was_training = model.training
    model.eval()
    size = eval_batch(model, inputs.device)
    probabilities = torch.cat(
        [torch.softmax(model(inputs[start : start + size]).float(), dim=1) for start in range(0, len(inputs), size)]
    )
    model.train(was_training)
    return probabilities
