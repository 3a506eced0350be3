"""The engine's sentences for what goes wrong in a run: a failed compile, a diverging loss."""

from __future__ import annotations

import math


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
