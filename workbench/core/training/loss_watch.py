"""Reading batch losses back from the device without making the CPU wait for the GPU at every batch.

Reading a CUDA tensor's value (``.item()``) waits until the GPU has finished everything queued before it, so a
loop that reads every batch's loss at once leaves the GPU idle while Python queues the next batch, which for
networks as small as this app's can take longer than the GPU's own work. :class:`LossWatch` instead has each
loss copied to page-locked host memory as the GPU gets to it, and looks at it one batch later, when that copy has
long finished: the CPU stays a batch ahead of the GPU. On the CPU, and for values already read back (a
multi-process run reads the global loss to agree on it), it looks at once.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

import torch


class LossWatch:
    """Watches the losses of one epoch's batches for NaN and infinity.

    ``deferred`` (default: on CUDA devices) looks at each loss one batch late. Elsewhere than on CUDA it keeps
    a copy of the loss instead of a page-locked one, which lets the CPU tests walk the GPU's path.
    """

    def __init__(self, device: torch.device, deferred: bool | None = None):
        self._deferred = device.type == "cuda" if deferred is None else deferred
        self._pending: collections.deque[tuple[int, torch.Tensor, torch.cuda.Event | None]] = collections.deque()
        if self._deferred and device.type == "cuda":
            # two slots: one for the batch just queued, one for the batch before it, which is looked at next
            self._buffers = [torch.empty((), dtype=torch.float32, pin_memory=True) for _ in range(2)]
            self._events = [torch.cuda.Event() for _ in range(2)]
            self._slot = 0

    def add(self, batch: int, loss: torch.Tensor | float) -> tuple[int, float] | None:
        """Watch the loss of ``batch``; the first non-finite loss found so far, as ``(batch, value)``, or None.

        On a GPU the answer is about the batch before this one: this one's loss is still being computed.
        """
        if not self._deferred or not isinstance(loss, torch.Tensor):
            return _non_finite(batch, float(loss))
        if loss.is_cuda:
            buffer, event = self._buffers[self._slot], self._events[self._slot]
            self._slot ^= 1
            buffer.copy_(loss.detach().float(), non_blocking=True)
            event.record(torch.cuda.current_stream(loss.device))  # the run's GPU, which need not be the current one
        else:
            buffer, event = loss.detach().float().clone(), None
        self._pending.append((batch, buffer, event))
        return self._look(leave=1)

    def settle(self) -> tuple[int, float] | None:
        """Look at every loss still waiting (at the end of an epoch); the first non-finite one, or None."""
        return self._look(leave=0)

    def _look(self, leave: int) -> tuple[int, float] | None:
        while len(self._pending) > leave:
            batch, buffer, event = self._pending.popleft()
            if event is not None:
                event.synchronize()
            found = _non_finite(batch, buffer.item())
            if found is not None:
                self._pending.clear()
                return found
        return None


def read_losses(values: Sequence[torch.Tensor | float]) -> list[float]:
    """``values`` (0-d tensors, possibly still on a GPU, or floats) as floats, read back from the device at once."""
    tensors = [value for value in values if isinstance(value, torch.Tensor)]
    if not tensors:
        return [float(value) for value in values]
    device = tensors[0].device
    stacked = torch.stack(
        [
            value.detach().float() if isinstance(value, torch.Tensor) else torch.tensor(float(value), device=device)
            for value in values
        ]
    )
    return stacked.tolist()


def _non_finite(batch: int, value: float) -> tuple[int, float] | None:
    return None if math.isfinite(value) else (batch, value)
