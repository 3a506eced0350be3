"""The engine's sentences for what goes wrong in a run: a failed compile, a diverging loss, a layer that fails, a
last batch too small for batch normalisation, a stop during the test evaluation."""

from __future__ import annotations

import math

from torch import nn

from workbench.core.training.state import plural


def compile_failed(error: Exception) -> str:
    """The notice when torch.compile fails: the run goes on without it."""
    return (
        f"torch.compile failed ({type(error).__name__}: {first_line(error)}); the run goes on without it, "
        f"as plain (eager) PyTorch."
    )


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def divergence_message(loss: float, epoch: int, batch: int, lr: float) -> str:
    """Why a run stopped when its loss became NaN or infinite, and what to try."""
    kind = "NaN" if math.isnan(loss) else "infinite"
    return (
        f"The loss became {kind} at epoch {epoch}, batch {batch}: the learning rate {lr:g} is probably too "
        f"high; try {lr / 10:g}. The weights from the last good epoch were kept."
    )


def stopped_during_test(epoch: int, ending: str = "") -> str:
    """The end message of a run stopped while its test split was being evaluated, after ``epoch``; ``ending`` is
    how its training had ended otherwise (early stopping, divergence), or empty for all its epochs trained."""
    stopped = f"Stopped by the user during the test evaluation after epoch {epoch}: the test accuracy was not measured."
    return f"{ending} {stopped}" if ending else stopped


def emulated_bfloat16() -> str:
    """The notice of a run that asked for bfloat16 on a CPU that only emulates it."""
    return (
        "Mixed precision is on as asked, but this CPU has no native bfloat16 (AVX-512 BF16 or AMX) and only "
        "emulates it: this run will be slower than in float32. --mixed-precision auto (Automatic in the app) "
        "chooses float32 here."
    )


def last_batch_merged(images: int, train_size: int, batch_size: int, processes: int = 1) -> str:
    """The notice when a last batch of ``images`` images is too small for batch normalisation and joins the batch
    before it."""
    held = f"would hold {plural(images, 'image')} ({train_size:,} training images in batches of {batch_size:,})"
    if processes > 1:
        held += f", leaving one of the {processes} processes a single image"
    return (
        f"The last batch of each epoch {held}, and batch normalisation cannot train on a single image: "
        f"{'that image joins' if images == 1 else 'those images join'} the batch before it, which has "
        f"{batch_size + images:,} images."
    )


def layer_failure(number: int, layer: nn.Module, shape: tuple[int, ...], error: BaseException) -> str:
    """What went wrong when layer ``number`` (from 1), ``layer``, failed on a batch of ``shape``, for the user."""
    where = f"Layer {number} ({type(layer).__name__})"
    batch = "×".join(str(size) for size in shape)
    if isinstance(layer, nn.Linear) and shape and shape[-1] != layer.in_features:
        per_image = "per image" if len(shape) == 2 else "per row of its input"
        return (
            f"{where}: it expects {layer.in_features:,} inputs {per_image} but got {shape[-1]:,} (a batch of shape "
            f"{batch}); the layers before it do not produce what it takes."
        )
    if isinstance(layer, nn.modules.conv._ConvNd) and len(shape) >= 2 and shape[1] != layer.in_channels:
        return (
            f"{where}: it expects {layer.in_channels:,} input channels but got {shape[1]:,} (a batch of shape "
            f"{batch}); the layers before it do not produce what it takes."
        )
    if isinstance(layer, nn.modules.batchnorm._BatchNorm) and "more than 1 value per channel" in str(error):
        return (
            f"{where}: batch normalisation cannot train on a batch of shape {batch}, which gives it a single value "
            f"per channel; train with batches of at least 2 images."
        )
    return f"{where} failed on a batch of shape {batch}: {first_line(error)}"
