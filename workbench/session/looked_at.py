"""What the network looked at, for every image on the gallery's page: attribution maps made in the background.

The gallery's toggle "Show what it looked at" lays the attribution of each shown image's guess over it, by the
method chosen on the Inspect tab. A :class:`LookedAt` measures the maps of one page at a time on a worker thread;
a newer request drops the one before it, and each result carries the key it was asked with (the gallery's items
at the time), so maps of images no longer shown are never laid over others.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from psygnal import Signal

from workbench.core.architecture import Architecture
from workbench.core.inspect.attribution import attribute
from workbench.session.tasks import NewestOnly, Runner, TaskState


@dataclass(frozen=True)
class PageMaps:
    """The attribution maps of some gallery items: ``maps[i]`` (H×W) belongs to item ``indices[i]``, measured
    for the gallery's items of ``key`` by ``method``."""

    key: int
    indices: tuple[int, ...]
    maps: np.ndarray
    method: str


class LookedAt:
    """See the module's docstring. ``changed`` carries each :class:`PageMaps`; ``failed`` a sentence."""

    changed = Signal(object)
    failed = Signal(str)

    def __init__(self, runner: Runner):
        self.work = NewestOnly(runner, "Finding what the network looked at")

    def request(
        self,
        key: int,
        indices: Sequence[int],
        model: torch.nn.Module,
        architecture: Architecture,
        images: torch.Tensor,
        targets: Sequence[int],
        method: str,
        black: Sequence[float],
    ) -> None:
        """Measure, by ``method``, how each of ``images`` (normalised ``(N, C, H, W)``, the gallery's items
        ``indices``) counted for its class in ``targets``; ``black`` is a black pixel in the network's input."""
        frozen = copy.deepcopy(model)  # taken here, in the session's thread: a run replaces weights at epoch ends
        chosen = images.detach().clone()
        asked = tuple(int(index) for index in indices)
        classes = [int(target) for target in targets]

        def work(state: TaskState) -> PageMaps | None:
            maps = attribute(frozen, architecture, chosen, classes, method, black)
            return None if state.cancelled else PageMaps(key, asked, maps, method)

        self.work.start(work, self._measured, self.failed.emit)

    @property
    def busy(self) -> bool:
        """Whether a page's maps are being measured."""
        return self.work.busy

    def cancel(self) -> None:
        """Drop the measurement under way, if any."""
        self.work.cancel()

    def _measured(self, result: PageMaps | None) -> None:
        if result is not None:
            self.changed.emit(result)
