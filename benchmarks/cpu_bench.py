"""``make bench`` (CPU part): what the CPU fast path buys, and cnn-strong's time and accuracy on Fashion-MNIST.

1. Throughput: ``cnn-small`` and ``cnn-strong`` trained by the engine on the same preloaded 10,000 Fashion-MNIST
   images, batch 256, AdamW, in float32 with the contiguous memory format (``--mixed-precision off``, the default
   before the fast path) and with the engine's defaults (bfloat16 autocast where the CPU computes it natively,
   channels-last for convolutions), interleaved round by round so that the machine's noise hits both alike.
   Reported: median samples/s of the epochs after the first, and the ratio against the targets (2x, 2.5x).
2. Accuracy and time: ``cnn-strong`` on full Fashion-MNIST (59,000 train / 1,000 validation / 10,000 test), AdamW
   lr 3e-3, one-cycle, 6 epochs, batch 256, seed 0, with the defaults and (unless ``--no-float32``) in float32.
   Reported: the training time (every epoch with its validation, before the test) and the test accuracy; targets:
   under 2 minutes with the defaults, and within 0.3 points of the float32 run's accuracy.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

import torch

from workbench.core.data import datasets
from workbench.core.presets import load_preset
from workbench.core.training.config import TrainConfig
from workbench.core.training.devices import choose_precision, cpu_bfloat16_instructions
from workbench.core.training.engine import SplitData, Trainer, TrainResult, prepare_data
from workbench.core.training.threads import use_threads

TARGETS = {"cnn-small": 2.0, "cnn-strong": 2.5}
TARGET_SECONDS = 120.0
TARGET_ACCURACY = 0.935
TARGET_POINTS = 0.3


def cpu_name() -> str:
    """The CPU's model name as the kernel reports it (for the printout only; the fast path asks PyTorch)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def throughput_config(mixed_precision: str) -> TrainConfig:
    return TrainConfig(
        dataset="fashion-mnist",
        train_size=10_000,
        val_size=1_000,
        epochs=3,
        batch_size=256,
        optimizer="adamw",
        lr=1e-3,
        device="cpu",
        mixed_precision=mixed_precision,
        seed=0,
    )


def rate(preset: str, config: TrainConfig, data: SplitData, channels_last: bool | None) -> float:
    result = Trainer(load_preset(preset), config, data, progress=False, channels_last=channels_last).run()
    return statistics.median(metrics.samples_per_second for metrics in result.history[1:])


def throughput(rounds: int) -> None:
    data = prepare_data(throughput_config("off"), progress=False)
    data = dataclasses.replace(data, test_x=data.test_x[:0], test_y=data.test_y[:0])  # no test pass at each end
    print(
        f"CPU fast path: 10,000 Fashion-MNIST images, batch 256, AdamW, median of epochs 2–3 over {rounds} rounds "
        f"(samples/s)"
    )
    for preset, target in TARGETS.items():
        exact, fast = [], []
        for _ in range(rounds):
            exact.append(rate(preset, throughput_config("off"), data, channels_last=False))
            fast.append(rate(preset, throughput_config("auto"), data, channels_last=None))
        ratio = statistics.median(fast) / statistics.median(exact)
        print(
            f"  {preset:<11} float32 contiguous {statistics.median(exact):>8,.0f}/s   fast path "
            f"{statistics.median(fast):>8,.0f}/s   {ratio:.2f}x ({'meets' if ratio >= target else 'misses'} "
            f"≥{target:g}x)",
            flush=True,
        )


def recipe_config(mixed_precision: str) -> TrainConfig:
    return TrainConfig(
        dataset="fashion-mnist",
        train_size=59_000,
        val_size=1_000,
        epochs=6,
        batch_size=256,
        optimizer="adamw",
        lr=3e-3,
        schedule="one-cycle",
        device="cpu",
        mixed_precision=mixed_precision,
        seed=0,
    )


def recipe_run(mixed_precision: str, data: SplitData | None) -> tuple[TrainResult, Trainer]:
    trainer = Trainer(load_preset("cnn-strong"), recipe_config(mixed_precision), data, progress=False)
    return trainer.run(), trainer


def training_seconds(result: TrainResult) -> float:
    """Every epoch with its validation; the test at the end is not training."""
    return sum(metrics.epoch_seconds for metrics in result.history)


def accuracy(with_float32: bool) -> None:
    print(
        "\ncnn-strong on full Fashion-MNIST (59,000 / 1,000 / 10,000), AdamW lr 3e-3, one-cycle, 6 epochs, "
        "batch 256, seed 0",
        flush=True,
    )
    fast, trainer = recipe_run("auto", None)
    seconds = training_seconds(fast)
    layout = "channels-last" if trainer.channels_last else "contiguous"
    print(
        f"  defaults ({trainer.precision_choice.name}, {layout}): test accuracy {fast.test_accuracy:.2%} in "
        f"{seconds:.0f} s of training ({'meets' if seconds < TARGET_SECONDS else 'misses'} <{TARGET_SECONDS:.0f} s, "
        f"{'reaches' if fast.test_accuracy >= TARGET_ACCURACY else 'misses'} ≥{TARGET_ACCURACY:.1%})",
        flush=True,
    )
    if not with_float32:
        return
    exact, _ = recipe_run("off", trainer.data)
    points = (fast.test_accuracy - exact.test_accuracy) * 100
    print(
        f"  float32 contiguous: test accuracy {exact.test_accuracy:.2%} in {training_seconds(exact):.0f} s; the "
        f"defaults are {training_seconds(exact) / seconds:.2f}x as fast and {points:+.2f} points "
        f"({'within' if points >= -TARGET_POINTS else 'beyond'} {TARGET_POINTS} points below)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-accuracy", action="store_true", help="the throughput table only (about a minute)")
    parser.add_argument("--no-float32", action="store_true", help="no float32 run of the recipe (saves ~5 min)")
    args = parser.parse_args()
    if datasets.locate("fashion-mnist") is None:
        raise SystemExit("the CPU benchmark needs Fashion-MNIST: sudo apt install dataset-fashion-mnist")
    threads = use_threads()
    native = cpu_bfloat16_instructions()
    print(
        f"\ntorch {torch.__version__}, {cpu_name()}, {threads.words()}; native bfloat16: {native or 'none'} "
        f"(Automatic: {choose_precision('auto', torch.device('cpu')).words()})"
    )
    throughput(args.rounds)
    if not args.no_accuracy:
        accuracy(not args.no_float32)


if __name__ == "__main__":
    main()
