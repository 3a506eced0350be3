"""``make bench`` (depth part): resnet-20's accuracy and time on full Fashion-MNIST, beside plain-20, and how fast
the builder validates a deep nested network.

1. Validation: ``resnet-20`` (69 layers and blocks, nested) validated as the builder does after every edit; the
   median of 21 runs, target at most 20 ms.
2. ``resnet-20`` on full Fashion-MNIST (59,000 train / 1,000 validation / 10,000 test) with the CPU bench's recipe
   (AdamW lr 3e-3, one-cycle, batch 256, seed 0) and, for a network this deep, weight decay 5e-4 and random crops,
   for ``--epochs`` epochs (20), with the engine's defaults (the CPU fast path). Reported: the training time and
   the test accuracy, target at least 93.5%. (On a 2-core Xeon: 6 epochs without crops gave 93.00%, 10 with crops
   and flips 92.88%, 15 with crops 93.48%, 20 with crops 93.85%.)
3. With ``--plain``: ``plain-20``, the same depth and widths without the skip connections, on the same recipe and
   data, for the lesson of depth.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from benchmarks.cpu_bench import cpu_name, recipe_config, training_seconds
from workbench.core.architecture import validate
from workbench.core.data import datasets
from workbench.core.presets import load_preset
from workbench.core.training.engine import SplitData, Trainer, TrainResult
from workbench.core.training.threads import use_threads

TARGET_VALIDATION_SECONDS = 0.020
TARGET_ACCURACY = 0.935


def validation_seconds(preset: str, rounds: int = 21) -> float:
    """The median time of validating ``preset``, as the builder does after every edit."""
    architecture = load_preset(preset)
    validate(architecture)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        validate(architecture)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train(
    preset: str, epochs: int, augment: str, weight_decay: float, data: SplitData | None
) -> tuple[TrainResult, Trainer]:
    config = dataclasses.replace(recipe_config("auto"), epochs=epochs, augment=augment, weight_decay=weight_decay)
    trainer = Trainer(load_preset(preset), config, data, progress=False)
    return trainer.run(), trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--augment", default="crop", help="the training images' augmentation (crop)")
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--plain", action="store_true", help="also train plain-20 on the same recipe")
    args = parser.parse_args()
    if datasets.locate("fashion-mnist") is None:
        raise SystemExit("the depth benchmark needs Fashion-MNIST: sudo apt install dataset-fashion-mnist")
    layers = sum(1 for _ in load_preset("resnet-20").walk())
    seconds = validation_seconds("resnet-20")
    print(
        f"\nValidating resnet-20 ({layers} layers and blocks, nested): {seconds * 1000:.2f} ms median "
        f"({'meets' if seconds <= TARGET_VALIDATION_SECONDS else 'misses'} ≤{TARGET_VALIDATION_SECONDS * 1000:.0f} ms)"
    )
    print(
        f"resnet-20 on full Fashion-MNIST (59,000 / 1,000 / 10,000), AdamW lr 3e-3 weight decay {args.weight_decay:g}, "
        f"one-cycle, {args.epochs} epochs, batch 256, augment {args.augment}, seed 0, {cpu_name()}, "
        f"{use_threads().words()}",
        flush=True,
    )
    result, trainer = train("resnet-20", args.epochs, args.augment, args.weight_decay, None)
    print(
        f"  resnet-20 ({trainer.precision_choice.name}): test accuracy {result.test_accuracy:.2%} in "
        f"{training_seconds(result):.0f} s of training "
        f"({'reaches' if result.test_accuracy >= TARGET_ACCURACY else 'misses'} ≥{TARGET_ACCURACY:.1%})",
        flush=True,
    )
    if args.plain:
        plain, _ = train("plain-20", args.epochs, args.augment, args.weight_decay, trainer.data)
        print(
            f"  plain-20: test accuracy {plain.test_accuracy:.2%} in {training_seconds(plain):.0f} s; resnet-20 is "
            f"{(result.test_accuracy - plain.test_accuracy) * 100:+.2f} points"
        )


if __name__ == "__main__":
    main()
