"""Gradient flow: per-layer gradient norms and dead activation units, sampled while a run trains.

A :class:`GradientMonitor` is a :class:`~workbench.core.training.callbacks.Callback`. Every ``every``-th batch of
the run (a *logging step*) it records, for each trainable layer, the L2 norm of the gradients of all its parameters
together, and, for each activation layer, the fraction of its units that output exactly 0 for every item of
that batch (a *dead* unit: a ReLU that never fires passes no gradient back). Layers inside blocks are layers like
the others, each with its own entry labelled with its number (``"5.2 Conv2d"``), and a Residual block's projection
shortcut has its own (``"5 shortcut Conv2d"``); the entries follow the architecture's walk, from the input to the
output (see :mod:`workbench.core.numbering`).

What it costs: on a logging step, one norm per parameter tensor and two small reductions per activation layer
on the training device, then one read-back (``.tolist()``) for all of them together; the per-layer sums are
done on those few Python floats. The activation layers get forward hooks only for the forward pass of a
logging step, so the batches in between run exactly as without the monitor. On a CPU, where each tiny torch
operation costs tens of microseconds, the number of operations matters more than their size. A monitor that is
not ``live`` reads its logging steps back only at the epoch's end, when the validation has made the CPU wait for
the device anyway: its logging steps never make the CPU wait for a GPU. Every epoch has at least one logging step.

The GUI thread reads the samples with :meth:`GradientMonitor.take_new` while the training thread appends them.
:class:`~workbench.core.runs.recorder.RunRecorder` owns a monitor and keeps each epoch's median norms in the run
folder (see :class:`GradientEpoch`).
"""

from __future__ import annotations

import math
import statistics
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from workbench.core.layers import CATALOG
from workbench.core.numbering import numbered_modules, weighted_parts
from workbench.core.training.engine import Callback, EpochMetrics, Trainer, TrainResult, TrainState

DEFAULT_MAX_POINTS = 500
NON_NEGATIVE_ACTIVATIONS = frozenset({"ReLU", "Sigmoid", "Softmax"})
"""Activation layers whose outputs are never below 0."""
SATURATION_MARGIN = 0.05
"""An output of a bounded activation this close to a bound is *saturated*: its slope is nearly 0."""
BOUNDED_ACTIVATIONS: dict[str, tuple[float, float]] = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0)}
"""The activation layers whose outputs saturate, with their bounds."""


@dataclass(frozen=True)
class GradientEpoch:
    """What a run folder keeps of one epoch's gradients (a line of its gradients.jsonl).

    ``grad_norms`` maps each trainable layer's label to the median of its gradient norm over the epoch's logging
    steps (``samples`` of them): the median, not the mean, because one batch's norm can be many times the others'
    (the first batches of a run, a batch of hard images), and the median is the norm of a typical batch.
    ``step`` is the run's batch count at the epoch's end (``epoch * batches_per_epoch``).
    """

    epoch: int
    step: int
    samples: int
    grad_norms: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "step": self.step, "samples": self.samples, "grad_norms": dict(self.grad_norms)}


def epoch_gradients(epoch: int, step: int, samples: Sequence[GradientSample]) -> GradientEpoch | None:
    """The :class:`GradientEpoch` of ``samples`` (an epoch's logging steps): each layer's median norm over the
    samples that have a finite norm for it; None when there is no sample."""
    if not samples:
        return None
    labels = dict.fromkeys(label for sample in samples for label in sample.grad_norms)
    norms = {}
    for label in labels:
        values = [
            sample.grad_norms[label] for sample in samples if math.isfinite(sample.grad_norms.get(label, math.nan))
        ]
        norms[label] = statistics.median(values) if values else math.nan
    return GradientEpoch(epoch, step, len(samples), norms)


@dataclass(frozen=True)
class GradientSample:
    """What one logging step measured.

    ``step`` counts batches over the whole run from 1: ``(epoch - 1) * batches_per_epoch + batch``.
    ``grad_norms`` maps each trainable layer's label (e.g. ``"2 Linear"``, ``"5.2 Conv2d"`` inside a block,
    ``"5 shortcut Conv2d"`` for a projection shortcut) to the L2 norm of all its parameters' gradients taken
    together (weight and bias); a parameter without a gradient counts as 0.
    ``dead_fractions`` maps each activation layer's label (e.g. ``"3 ReLU"``, ``"5.3 ReLU"``) to the fraction of its units
    that output exactly 0 for every item of the batch; see :func:`dead_unit_fraction` for what a unit is.
    ``saturated_fractions`` maps each Sigmoid and Tanh layer's label to the fraction of its outputs over the
    whole batch that lie within :data:`SATURATION_MARGIN` of a bound.
    """

    step: int
    grad_norms: dict[str, float]
    dead_fractions: dict[str, float]
    saturated_fractions: dict[str, float] = field(default_factory=dict)


def dead_unit_fraction(output: torch.Tensor, non_negative: bool = False) -> float:
    """The fraction of units of a batch ``output`` that are exactly 0 for every item of the batch.

    A unit is one value of an item's output: one feature of an ``(N, F)`` output, and one element of the
    channels × height × width block of an ``(N, C, H, W)`` output (so a channel that is dead at some positions
    only counts for those positions). The first dimension is the batch. ``non_negative`` promises that no
    output is below 0 (ReLU, Sigmoid), which saves taking absolute values. 0 for an empty output.
    """
    units = _units(output)
    return 1.0 - _live_units(output, non_negative).item() / units if units else 0.0


def _units(output: torch.Tensor) -> int:
    """Units per item of a batch ``output``; 0 when there is no item or no unit."""
    return math.prod(output.shape[1:]) if output.dim() >= 1 and output.shape[0] else 0


def _live_units(output: torch.Tensor, non_negative: bool) -> torch.Tensor:
    """How many units are non-zero for some item, as a 0-d integer tensor on the output's device (not read back).

    A sum of values that are never negative is 0 exactly when every one of them is, and a product with a
    vector of ones is the fastest sum over the batch (one BLAS call: on a CPU several times faster than
    ``(x == 0).all(dim=0)`` or ``amax``). Values so tiny that the hardware flushes them to 0 count as 0.
    """
    detached = output.detach()
    if detached.dim() == 4 and detached.is_contiguous(memory_format=torch.channels_last):
        # The same units in memory order: flattened without copying (the copy cost 5-25 ms a layer on a CPU).
        detached = detached.permute(0, 2, 3, 1)
    flat = detached.reshape(output.shape[0], -1)
    if not non_negative:
        flat = flat.abs()
    return torch.count_nonzero(flat.new_ones(flat.shape[0]) @ flat)


def _saturated_count(output: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """How many of ``output``'s values lie within :data:`SATURATION_MARGIN` of ``bounds``, as a 0-d tensor (not
    read back): the distance from the middle of the range is at least half the range less the margin."""
    low, high = bounds
    middle, reach = (low + high) / 2, (high - low) / 2 - SATURATION_MARGIN
    return torch.count_nonzero((output.detach() - middle).abs() >= reach)


def logging_every(total_batches: int, max_points: int = DEFAULT_MAX_POINTS) -> int:
    """The smallest logging interval that keeps a run of ``total_batches`` batches at ``max_points`` samples
    or fewer."""
    return max(1, math.ceil(total_batches / max(1, max_points)))


def _automatic_every(total_batches: int, batches_per_epoch: int, max_points: int, per_epoch: int | None) -> int:
    """The interval a monitor chooses: ``per_epoch`` logging steps an epoch, else ``max_points`` over the run;
    never more than an epoch's batches, so that every epoch has a logging step (any ``batches_per_epoch``
    consecutive steps hold one)."""
    if per_epoch is not None:
        every = math.ceil(batches_per_epoch / per_epoch)
    else:
        every = logging_every(total_batches, max_points)
    return max(1, min(every, batches_per_epoch))


class GradientMonitor(Callback):
    """Records a :class:`GradientSample` every ``every`` batches of a run (the first batch always).

    With ``every=None`` the interval is chosen at the start of each run: about ``per_epoch`` samples an epoch if
    given, else by :func:`logging_every`, so that a run records at most about ``max_points`` samples; and never
    longer than an epoch, so that every epoch has one (a run of more epochs than ``max_points`` records one an
    epoch). ``layers`` (the labels of the trainable parts, input first), ``activations`` (the labels of the layers
    of the catalog's "Activation" group, inside blocks too) and ``total_steps`` (batches in the whole run, the x range of a plot) describe the current run from its start on.
    A resumed run (one that starts with history) continues the step numbering where its checkpoint ended.

    ``dead_units=False`` measures the gradient norms only (no hooks, no dead or saturated fractions). ``live=False``
    keeps a logging step's numbers on the device until the epoch ends and reads them all back then, at once: the
    samples of an epoch appear at its end (``on_epoch_end``), and a GPU is never waited for in between.
    """

    def __init__(
        self,
        every: int | None = None,
        max_points: int = DEFAULT_MAX_POINTS,
        *,
        per_epoch: int | None = None,
        dead_units: bool = True,
        live: bool = True,
    ):
        if every is not None and every < 1:
            raise ValueError(f"every must be 1 or more, not {every}.")
        if per_epoch is not None and per_epoch < 1:
            raise ValueError(f"per_epoch must be 1 or more, not {per_epoch}.")
        self._requested_every = every
        self.max_points = max_points
        self.per_epoch = per_epoch
        self.dead_units = dead_units
        self.live = live
        self.every = every or 1
        self.layers: list[str] = []
        self.activations: list[str] = []
        self.total_steps = 0
        self._lock = threading.Lock()
        self._samples: list[GradientSample] = []
        self._taken = 0
        self._layer_params: list[tuple[str, list[nn.Parameter]]] = []
        self._activation_modules: list[tuple[str, nn.Module, str]] = []
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []
        self._captured: dict[str, tuple[torch.Tensor, int]] = {}
        self._saturated: dict[str, tuple[torch.Tensor, int]] = {}
        self._pending: list[_Measured] = []  # logging steps not read back yet (not live)

    # -- reading, from any thread --------------------------------------------------------------------------------

    def take_new(self) -> list[GradientSample]:
        """The samples recorded since the previous call (all of them on the first call)."""
        with self._lock:
            new = self._samples[self._taken :]
            self._taken = len(self._samples)
        return new

    def samples(self, start: int = 0) -> list[GradientSample]:
        """Every sample of the current run so far, from the ``start``-th on."""
        with self._lock:
            return self._samples[start:]

    # -- callbacks, on the training thread ----------------------------------------------------------------------

    def on_train_start(self, trainer: Trainer, state: TrainState) -> None:
        """Find the trainable and activation layers, choose the interval and arm for the first step."""
        self._remove_hooks()
        with self._lock:
            self._samples, self._taken = [], 0
        self._pending = []
        self.total_steps = state.epochs * state.batches_per_epoch
        self.every = self._requested_every or _automatic_every(
            self.total_steps, state.batches_per_epoch, self.max_points, self.per_epoch
        )
        self._find_layers(trainer)
        first_step = len(state.history) * state.batches_per_epoch + 1
        if self._is_logging_step(first_step):
            self._arm()

    def on_batch_end(self, trainer: Trainer, state: TrainState) -> None:
        """On a logging step, record the sample; arm the hooks when the next batch is a logging step."""
        step = (state.epoch - 1) * state.batches_per_epoch + state.batch
        if self._is_logging_step(step):
            self._remove_hooks()
            self._record(step)
        if self._is_logging_step(step + 1):
            self._arm()

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: EpochMetrics) -> None:
        """Read back the epoch's logging steps (not live)."""
        self._read_back()

    def on_train_end(self, trainer: Trainer, state: TrainState, result: TrainResult) -> None:
        """Remove any hooks still on the model; read back what an epoch that did not end measured."""
        self._remove_hooks()
        self._read_back()

    def on_train_failed(self, trainer: Trainer, state: TrainState, message: str) -> None:
        """Remove any hooks still on the model."""
        self._remove_hooks()
        self._pending = []

    # -- internals ------------------------------------------------------------------------------------------------

    def _is_logging_step(self, step: int) -> bool:
        return (step - 1) % self.every == 0

    def _find_layers(self, trainer: Trainer) -> None:
        """The trainable parts and the activation layers, nested ones too, in the order of the architecture's walk
        (see :mod:`workbench.core.numbering` for their labels)."""
        self._layer_params = weighted_parts(trainer.architecture, trainer.model)
        self._activation_modules = []
        if self.dead_units:
            self._activation_modules = [
                (entry.label, entry.module, entry.layer.type)
                for entry in numbered_modules(trainer.architecture, trainer.model)
                if not entry.layer.is_block and CATALOG[entry.layer.type].group == "Activation"
            ]
        self.layers = [label for label, _ in self._layer_params]
        self.activations = [label for label, _, _ in self._activation_modules]

    def _arm(self) -> None:
        """Hook the activation layers for the next forward pass in training mode (evaluation passes are ignored)."""
        self._captured, self._saturated = {}, {}
        for label, module, layer_type in self._activation_modules:
            self._hooks.append(module.register_forward_hook(self._make_hook(label, layer_type)))

    def _make_hook(self, label: str, layer_type: str) -> Callable[[nn.Module, Any, Any], None]:
        non_negative = layer_type in NON_NEGATIVE_ACTIVATIONS
        bounds = BOUNDED_ACTIVATIONS.get(layer_type)

        def capture(module: nn.Module, inputs: Any, output: Any) -> None:
            if module.training and isinstance(output, torch.Tensor) and _units(output):
                self._captured[label] = (_live_units(output, non_negative), _units(output))
                if bounds is not None:
                    self._saturated[label] = (_saturated_count(output, bounds), output.numel())

        return capture

    def _remove_hooks(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    def _record(self, step: int) -> None:
        """Reduce the gradients and the captured activations to numbers, read back at once (live) or at the epoch's
        end.

        Read back: the norm of each parameter's gradient and each activation layer's count of live units (as
        float32, exact up to 2**24 units); a layer's norm is the root of the sum of its parameters' squares.
        """
        owners, tensors = [], []
        for index, (_, params) in enumerate(self._layer_params):
            for param in params:
                if param.grad is not None:
                    owners.append(index)
                    tensors.append(torch.linalg.vector_norm(param.grad.detach(), dtype=torch.float32))
        dead = [(label, self._captured[label][1]) for label in self.activations if label in self._captured]
        tensors += [self._captured[label][0] for label, _ in dead]
        saturated = [(label, self._saturated[label][1]) for label in self.activations if label in self._saturated]
        tensors += [self._saturated[label][0] for label, _ in saturated]
        self._captured, self._saturated = {}, {}
        measured = _Measured(step, owners, dead, saturated, torch.stack(tensors) if tensors else None)
        if self.live:
            self._keep([measured], measured.values.tolist() if measured.values is not None else [])
        else:
            self._pending.append(measured)

    def _read_back(self) -> None:
        """Turn the logging steps kept on the device into samples, with one read-back for all of them."""
        pending, self._pending = self._pending, []
        stacked = [measured.values for measured in pending if measured.values is not None]
        self._keep(pending, torch.cat(stacked).tolist() if stacked else [])

    def _keep(self, measured: Sequence[_Measured], values: list[float]) -> None:
        """Add the samples of ``measured`` logging steps, whose numbers are ``values`` one after another."""
        samples, offset = [], 0
        for step in measured:
            count = len(step.owners) + len(step.dead) + len(step.saturated)
            samples.append(step.sample(self.layers, values[offset : offset + count]))
            offset += count
        with self._lock:
            self._samples += samples


@dataclass(frozen=True)
class _Measured:
    """A logging step's numbers, maybe still on the device: ``values`` holds each gradient's norm (of the layer
    ``owners`` names), then the live units of the ``dead`` layers, then the saturated outputs of the ``saturated``
    ones, each of those with its count of units."""

    step: int
    owners: list[int]
    dead: list[tuple[str, int]]
    saturated: list[tuple[str, int]]
    values: torch.Tensor | None

    def sample(self, layers: Sequence[str], values: Sequence[float]) -> GradientSample:
        """The sample, from ``values`` read back; the per-layer sums are done on those few Python floats."""
        squares = [0.0] * len(layers)
        for index, norm in zip(self.owners, values):
            squares[index] += norm * norm
        live = values[len(self.owners) : len(self.owners) + len(self.dead)]
        near = values[len(self.owners) + len(self.dead) :]
        dead = {label: 1.0 - count / units for (label, units), count in zip(self.dead, live)}
        saturated = {label: count / units for (label, units), count in zip(self.saturated, near)}
        return GradientSample(self.step, dict(zip(layers, map(math.sqrt, squares))), dead, saturated)


def vanishing_ratio(samples: Sequence[GradientSample], layers: Sequence[str]) -> float:
    """The median over ``samples`` of (first layer's gradient norm / last layer's): how much gradient is left
    by the time it reaches the first of ``layers``. Far below 1 means vanishing gradients; NaN when no sample
    has both norms with a positive last one."""
    if len(layers) < 2:
        return math.nan
    first, last = layers[0], layers[-1]
    ratios = [
        sample.grad_norms[first] / sample.grad_norms[last]
        for sample in samples
        if sample.grad_norms.get(last, 0.0) > 0 and first in sample.grad_norms
    ]
    return statistics.median(ratios) if ratios else math.nan
