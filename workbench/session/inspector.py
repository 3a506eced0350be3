"""The image being inspected, and its inspection kept up to date in the background.

An :class:`Inspector` holds what the Inspect tab shows: one image (from the gallery, the data browser, a
confusion-matrix cell or a file), the class whose loss is sent back (its true class unless the user picks
another; the predicted class for an image nobody labelled), the attribution method, and the latest
:class:`Inspected` result. Each change measures anew on a worker thread and drops the measurement before it.

While a run trains the network changes at every epoch's end: the inspection follows it while the tab is visible
and, when hidden, only notes that it is out of date and measures again when shown (no work for a tab nobody sees).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from psygnal import Signal

from workbench.core.architecture import Architecture
from workbench.core.inspect.attribution import applicable_methods, attribute, black_pixel
from workbench.core.inspect.one_image import Inspection, inspect_image
from workbench.session.tasks import NewestOnly, Runner, TaskState

UNLABELLED = -1


@dataclass(frozen=True)
class Subject:
    """An image to inspect: the normalised ``(C, H, W)`` tensor the network reads, its true class
    (:data:`UNLABELLED` if unknown), where it came from in words, and how to undo its normalisation."""

    image: torch.Tensor
    label: int
    source: str
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class Inspected:
    """One measured inspection: the pass through every layer, the attribution map (H×W) and its method, and the
    network it was computed with (a copy, for the numbers of one unit)."""

    subject: Subject
    inspection: Inspection
    attribution: np.ndarray
    method: str
    model: torch.nn.Module
    architecture: Architecture
    network_label: str
    target_asked: int | None = None  # what the user chose: None for the true (or predicted) class
    methods: tuple[str, ...] = ("saliency",)  # the methods that apply to this network


class Inspector:
    """See the module's docstring. ``changed`` carries the latest :class:`Inspected` (or None: nothing to show);
    ``failed`` a sentence when an inspection could not be made."""

    changed = Signal(object)
    failed = Signal(str)

    def __init__(self, runner: Runner):
        self.runner = runner
        self.subject: Subject | None = None
        self.target: int | None = None  # None: the true class (or the predicted one when unlabelled)
        self.method = "saliency"
        self.latest: Inspected | None = None
        self.visible = False
        self.stale = False
        self._network: tuple[torch.nn.Module, Architecture, tuple[str, ...], str] | None = None
        self.work = NewestOnly(runner, "Inspecting an image")

    def set_network(
        self, model: torch.nn.Module | None, architecture: Architecture, class_names: tuple[str, ...], label: str
    ) -> None:
        """The network on show changed (a new epoch, a run loaded, a network edited): inspect with it from now on.
        A run's network before its first epoch has no weights yet: the last inspection stays on show until the
        first epoch's. No network (it does not fit), or one the image does not fit, shows nothing."""
        if model is not None and any(parameter.is_meta for parameter in model.parameters()):
            self._network = None
            self.cancel()
            return
        self._network = None if model is None else (model, architecture, class_names, label)
        if self._network is None or (self.subject is not None and self._subject_shape() != architecture.input_shape):
            self._clear()
            return
        if self.method not in applicable_methods(architecture):
            self.method = "saliency"
        self._refresh()

    def inspect(self, subject: Subject) -> None:
        """Inspect ``subject`` for its true class."""
        self.subject = subject
        self.target = None
        self._refresh(force=True)

    def set_target(self, target: int | None) -> None:
        """Send back the loss of ``target`` (None: the true class)."""
        if target != self.target:
            self.target = target
            self._refresh(force=True)

    def set_method(self, method: str) -> None:
        """Show what the network looked at by ``method`` (one of :data:`~workbench.core.inspect.attribution.METHODS`)."""
        if method != self.method:
            self.method = method
            self._refresh(force=True)

    def set_visible(self, visible: bool) -> None:
        """The Inspect tab was shown or hidden; shown with an out-of-date inspection, it is measured again."""
        self.visible = visible
        if visible and self.stale:
            self._refresh(force=True)

    @property
    def network(self) -> tuple[torch.nn.Module, Architecture] | None:
        """The network inspected with and its architecture fitted to the dataset's images; None when there is
        none with weights."""
        return None if self._network is None else self._network[:2]

    def methods(self) -> list[str]:
        """The attribution methods that apply to the network on show."""
        return applicable_methods(self._network[1]) if self._network is not None else ["saliency"]

    @property
    def busy(self) -> bool:
        """Whether an inspection is under way."""
        return self.work.busy

    def cancel(self) -> None:
        """Stop measuring (the window closes)."""
        self.work.cancel()

    # ---- internals -----------------------------------------------------------------------------------------

    def _subject_shape(self) -> tuple[int, ...] | None:
        return None if self.subject is None else tuple(self.subject.image.shape)

    def fits(self, subject: Subject) -> bool:
        """Whether the network on show reads images of ``subject``'s shape."""
        return self._network is not None and tuple(subject.image.shape) == tuple(self._network[1].input_shape)

    def _clear(self) -> None:
        self.cancel()
        self.latest = None
        self.stale = False
        self.changed.emit(None)

    def _refresh(self, force: bool = False) -> None:
        if self.subject is None or self._network is None or not self.fits(self.subject):
            return
        if not self.visible and not force:
            self.stale = True
            return
        self.stale = False
        self.cancel()
        model, architecture, class_names, label = self._network
        frozen = copy.deepcopy(model)  # the GUI thread's own copy: the session replaces weights at each epoch
        subject, method, target = self.subject, self.method, self.target

        def work(state: TaskState) -> Inspected | None:
            chosen = target
            if chosen is None:
                chosen = subject.label if subject.label >= 0 else _predicted(frozen, subject.image)
            inspection = inspect_image(frozen, architecture, subject.image, class_names, chosen)
            if state.cancelled:
                return None
            black = black_pixel(subject.mean, subject.std)
            attribution = attribute(frozen, architecture, subject.image[None], [chosen], method, black)[0]
            methods = tuple(applicable_methods(architecture))
            return Inspected(subject, inspection, attribution, method, frozen, architecture, label, target, methods)

        self.work.start(work, self._measured, self.failed.emit)

    def _measured(self, result: Inspected | None) -> None:
        if result is not None:
            self.latest = result
            self.changed.emit(result)


def _predicted(model: torch.nn.Module, image: torch.Tensor) -> int:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        scores = model(image[None].float())
    model.train(was_training)
    return int(scores.argmax())
