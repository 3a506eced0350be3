"""Alarms in plain words: what is going wrong in a run, which layer, and where in the app to look.

Every alarm is computed from what a run already collects: the gradient monitor's samples (per-layer gradient
norms, dead and saturated fractions of the activation layers, taken on its logging steps) and the epoch metrics
(training and validation loss, validation accuracy). Nothing here runs a forward pass.

The thresholds are in :data:`THRESHOLDS`, one place, each with the reason for its value.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from workbench.core.training.gradients import GradientSample, vanishing_ratio
from workbench.core.training.state import EpochMetrics


class AlarmKind(StrEnum):
    """What an alarm is about."""

    DEAD_UNITS = "dead units"
    SATURATION = "saturation"
    VANISHING = "vanishing gradients"
    EXPLODING = "exploding gradients"
    OVERFITTING = "overfitting"
    DIVERGED = "divergence"
    STALLED = "learning rate too low"


@dataclass(frozen=True)
class Threshold:
    """A limit and why it is where it is."""

    value: float
    reason: str


@dataclass(frozen=True)
class Thresholds:
    """Where each alarm fires."""

    dead_fraction: Threshold = Threshold(
        0.5,
        "a unit that gives 0 for every image passes no gradient back and stops learning; with half of a layer "
        "dead, the layer has lost half its width",
    )
    saturated_fraction: Threshold = Threshold(
        0.8,
        "a sigmoid within 0.05 of 0 or 1 has a slope below 0.048, a fifth of its best; when most outputs sit "
        "there, almost no error signal gets through the layer",
    )
    recent_samples: Threshold = Threshold(
        10, "the dead and saturated shares are judged on the last logged batches, so one odd batch raises nothing"
    )
    vanishing_ratio: Threshold = Threshold(
        1e-3,
        "the first layer learns a thousandth as fast as the last: with plain SGD its weights hardly move in a "
        "whole run (six sigmoids multiply the signal by at most 0.25⁶ ≈ 2·10⁻⁴)",
    )
    exploding_ratio: Threshold = Threshold(
        1e3, "the first layer's gradient a thousand times the last one's: a step that suits one overshoots the other"
    )
    rising_epochs: Threshold = Threshold(
        3,
        "one or two epochs of rising validation loss are often noise; three since its best while training loss falls is a trend",
    )
    rise: Threshold = Threshold(
        0.05, "validation loss wanders by a percent or two from epoch to epoch; 5% above its best is more than that"
    )
    diverging_factor: Threshold = Threshold(
        3.0,
        "a network that guesses every class alike has a loss of ln(classes) (2.3 for ten); a loss three times that "
        "means the steps threw the weights far from anything learnt",
    )
    stalled_epochs: Threshold = Threshold(
        3, "the loss of a network that learns falls clearly within its first few epochs"
    )
    stalled_change: Threshold = Threshold(
        0.02, "a training loss that moved less than 2% in those epochs is not being moved by the optimiser"
    )


THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Alarm:
    """One thing going wrong: its kind, the layer it is about (its label, ``"4 ReLU"``; None for the whole run), the
    message for the user, and the tab that shows it."""

    kind: AlarmKind
    layer: str | None
    message: str
    tab: str


def gradient_alarms(
    samples: Sequence[GradientSample], layers: Sequence[str], thresholds: Thresholds = THRESHOLDS
) -> list[Alarm]:
    """Dead units, saturation and vanishing or exploding gradients, from the gradient monitor's ``samples``;
    ``layers`` are its trainable layers in order (``GradientMonitor.layers``)."""
    if not samples:
        return []
    alarms: list[Alarm] = []
    recent = list(samples[-int(thresholds.recent_samples.value) :])
    span = recent[-1].step - recent[0].step + 1
    for label in recent[-1].dead_fractions:
        share = min(sample.dead_fractions.get(label, 0.0) for sample in recent)
        if share >= thresholds.dead_fraction.value:
            alarms.append(
                Alarm(
                    AlarmKind.DEAD_UNITS,
                    label,
                    f"layer {label}: {share:.0%} of its units gave 0 for every image of the batch, in each of the "
                    f"last {_batches(len(recent))} logged (over the last {_batches(span)}): they pass no gradient "
                    "back and have stopped learning. Try a smaller learning rate, LeakyReLU, or BatchNorm before it.",
                    "Gradients",
                )
            )
    for label in recent[-1].saturated_fractions:
        share = statistics.median(sample.saturated_fractions.get(label, 0.0) for sample in recent)
        if share >= thresholds.saturated_fraction.value:
            alarms.append(
                Alarm(
                    AlarmKind.SATURATION,
                    label,
                    f"layer {label}: {share:.0%} of outputs are within 0.05 of its bounds, so its gradient is nearly "
                    "0 (see Activations: the slope there is almost flat). Try ReLU, or normalise its input.",
                    "Activations",
                )
            )
    ratio = vanishing_ratio(recent, layers)
    if len(layers) >= 2 and not math.isnan(ratio) and ratio > 0:  # 0: dead units, not a vanishing signal
        first = layers[0]
        if ratio <= thresholds.vanishing_ratio.value:
            alarms.append(
                Alarm(
                    AlarmKind.VANISHING,
                    first,
                    f"the first layer's gradient is {_power(ratio)} of the last one's: the error signal vanishes on "
                    "its way back (see Activations: sigmoid's slope is at most 0.25). Try ReLU, fewer layers, or "
                    "an adaptive optimiser such as Adam.",
                    "Gradients",
                )
            )
        elif ratio >= thresholds.exploding_ratio.value:
            alarms.append(
                Alarm(
                    AlarmKind.EXPLODING,
                    first,
                    f"the first layer's gradient is {_power(ratio)} times the last one's: the error signal grows on "
                    "its way back. Try a smaller learning rate or BatchNorm.",
                    "Gradients",
                )
            )
    return alarms


def epoch_alarms(
    history: Sequence[EpochMetrics], status: str = "", thresholds: Thresholds = THRESHOLDS, classes: int = 10
) -> list[Alarm]:
    """Overfitting, divergence and a stalled loss, from the epochs so far (and the run's ``status``, if it ended)."""
    alarms: list[Alarm] = []
    losses = [metrics.train_loss for metrics in history]
    chance = math.log(max(classes, 2))
    if status == "diverged" or any(not math.isfinite(loss) for loss in losses):
        alarms.append(
            Alarm(
                AlarmKind.DIVERGED,
                None,
                "the training loss became infinite or NaN: the steps were too large. The weights of the last good "
                "epoch were kept; lower the learning rate (by 10×) and start again.",
                "Training",
            )
        )
        return alarms
    worst = max(losses, default=0.0)
    if worst > thresholds.diverging_factor.value * chance:
        alarms.append(
            Alarm(
                AlarmKind.DIVERGED,
                None,
                f"the training loss rose to {worst:.3g}, {worst / chance:.0f} times that of guessing every class "
                f"alike (ln {classes} = {chance:.2f}): the steps are too large and the loss is diverging. Lower the "
                "learning rate (by 10×) and start again.",
                "Training",
            )
        )
    overfitting = _overfitting(history, thresholds)
    if overfitting is not None:
        alarms.append(overfitting)
    stalled = int(thresholds.stalled_epochs.value)
    if len(losses) >= stalled and losses[0] > 0:
        change = abs(losses[stalled - 1] - losses[0]) / losses[0]
        accuracy = history[stalled - 1].val_accuracy
        if change < thresholds.stalled_change.value and (math.isnan(accuracy) or accuracy < 1.5 / classes):
            alarms.append(
                Alarm(
                    AlarmKind.STALLED,
                    None,
                    f"the training loss moved {change:.1%} in {stalled} epochs and validation accuracy is "
                    f"{_share(accuracy)}, near chance: the learning rate is too low to move the loss (or the "
                    "gradient vanishes; see Gradients). Try 10× the learning rate, or Adam.",
                    "Training",
                )
            )
    return alarms


def _overfitting(history: Sequence[EpochMetrics], thresholds: Thresholds) -> Alarm | None:
    """Validation loss at least ``rise`` above its best, reached ``rising_epochs`` or more epochs ago, while
    training loss fell since then."""
    val = [metrics.val_loss for metrics in history]
    if not val or any(math.isnan(loss) for loss in val):
        return None
    best = min(range(len(val)), key=val.__getitem__)
    since = len(val) - 1 - best
    if since < thresholds.rising_epochs.value or val[-1] < val[best] * (1 + thresholds.rise.value):
        return None
    if history[-1].train_loss >= history[best].train_loss:
        return None
    return Alarm(
        AlarmKind.OVERFITTING,
        None,
        f"validation loss has risen for {since} epochs (from {val[best]:.3g} after epoch {history[best].epoch} to "
        f"{val[-1]:.3g}) while training loss fell: the network is memorising the training images — try Dropout, "
        "weight decay, more training images or early stopping.",
        "Training",
    )


def _power(ratio: float) -> str:
    """``0.00012`` -> ``"10⁻⁴"``, ``3000`` -> ``"10³"``: the ratio's order of magnitude."""
    exponent = round(math.log10(ratio)) if ratio > 0 else -99
    superscripts = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
    return "10" + str(exponent).translate(superscripts)


def _batches(count: int) -> str:
    return "batch" if count == 1 else f"{count} batches"


def _share(value: float) -> str:
    return "unknown" if math.isnan(value) else f"{value:.0%}"


def run_alarms(
    samples: Sequence[GradientSample],
    layers: Sequence[str],
    history: Sequence[EpochMetrics],
    status: str = "",
    classes: int = 10,
    thresholds: Thresholds = THRESHOLDS,
) -> list[Alarm]:
    """Every alarm of a run so far: the whole run's first (divergence, overfitting, a stalled loss), then the
    layers' (dead units, saturation, vanishing or exploding gradients)."""
    return epoch_alarms(history, status, thresholds, classes) + gradient_alarms(samples, layers, thresholds)
