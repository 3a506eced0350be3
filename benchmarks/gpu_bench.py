"""``make bench`` on a CUDA machine: what bfloat16 autocast and channels-last buy, and cnn-strong's time to 93 %.

1. Throughput: ``cnn-small`` and ``cnn-strong`` trained by the engine on the same preloaded Fashion-MNIST
   subset, with mixed precision off and on, in the contiguous and the channels-last memory format (median
   samples/s over the epochs after the first, which pays for warm-up and cuDNN's algorithm search).
2. Time to 93 % test accuracy: ``cnn-strong`` on full Fashion-MNIST (55,000 train / 5,000 validation) with
   AdamW, one-cycle, weight decay 5e-4, up to 15 epochs and the engine's defaults for the GPU (bfloat16 where
   supported, channels-last), at batch 256 (lr 3e-3) and 512 (lr 3e-3 x sqrt 2: fewer, larger steps, which a
   small network on a large GPU takes in about the same time as small ones). The test split is evaluated at each
   epoch's end; the clock runs from the first batch (data on the GPU, network built) to the end of the first
   evaluation that reaches 93 %, every evaluation included.

On a machine without CUDA it prints "no CUDA device: GPU benchmark skipped" and exits 0. ``--device cpu`` with
small sizes runs the same code on the CPU, as a quick check of the script itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from workbench.core.data import datasets
from workbench.core.errors import ConfigError
from workbench.core.presets import load_preset
from workbench.core.training.config import TrainConfig
from workbench.core.training.devices import choose_precision
from workbench.core.training.engine import Callback, SplitData, Trainer, evaluate, make_loss, prepare_data

SKIPPED = "no CUDA device: GPU benchmark skipped"
TARGET_ACCURACY = 0.93
PRESETS = ("cnn-small", "cnn-strong")
VARIANTS = (("off", False), ("off", True), ("on", False), ("on", True))


def throughput_config(train_size: int, epochs: int, device: str, mixed_precision: str) -> TrainConfig:
    return TrainConfig(
        dataset="fashion-mnist",
        train_size=train_size,
        val_size=1000,
        epochs=epochs,
        batch_size=512,
        optimizer="sgd",
        lr=1e-2,
        momentum=0.9,
        device=device,
        mixed_precision=mixed_precision,
        seed=0,
    )


def recipe_config(
    train_size: int, val_size: int, epochs: int, device: str, compile_model: bool, batch_size: int = 256
) -> TrainConfig:
    """The recipe that reaches 93 % on an H200 within 15 epochs at batch 256; the learning rate grows with the
    square root of the batch size."""
    return TrainConfig(
        dataset="fashion-mnist",
        train_size=train_size,
        val_size=val_size,
        epochs=epochs,
        batch_size=batch_size,
        optimizer="adamw",
        lr=round(3e-3 * (batch_size / 256) ** 0.5, 6),
        weight_decay=5e-4,
        schedule="one-cycle",
        device=device,
        seed=0,
        compile=compile_model,
    )


def samples_per_second(preset: str, config: TrainConfig, data: SplitData, channels_last: bool) -> float:
    """The engine's steady rate: the median over the epochs after the first."""
    result = Trainer(load_preset(preset), config, data, progress=False, channels_last=channels_last).run()
    return statistics.median(metrics.samples_per_second for metrics in result.history[1:])


def throughput_table(args: argparse.Namespace) -> None:
    data = prepare_data(throughput_config(args.train_size, args.epochs, args.device, "off"), progress=False)
    data = dataclasses.replace(data, test_x=data.test_x[:0], test_y=data.test_y[:0])  # no test pass at each end
    print(
        f"Throughput: {args.train_size:,} Fashion-MNIST images, batch 512, SGD, median of epochs 2–{args.epochs} "
        f"(samples/s; ratios against float32 contiguous)"
    )
    variants = VARIANTS if _has_bfloat16(args.device) else VARIANTS[:2]
    print(f"{'network':<12}" + "".join(f"{_variant(precision, layout):>22}" for precision, layout in variants))
    for preset in PRESETS:
        rates = [
            samples_per_second(
                preset, throughput_config(args.train_size, args.epochs, args.device, precision), data, layout
            )
            for precision, layout in variants
        ]
        cells = [f"{rate:>12,.0f} ({rate / rates[0]:.2f}x)" for rate in rates]
        print(f"{preset:<12}" + "".join(f"{cell:>22}" for cell in cells), flush=True)


def _has_bfloat16(device: str) -> bool:
    """Whether mixed precision can be asked for on ``device`` (an older GPU has no native bfloat16)."""
    try:
        return choose_precision("on", torch.device(device)).dtype is not None
    except ConfigError:
        return False


def _variant(precision: str, channels_last: bool) -> str:
    return ("bf16" if precision == "on" else "fp32") + (" channels-last" if channels_last else " contiguous")


class AccuracyClock(Callback):
    """Evaluates the test split at each epoch's end and notes when it first reaches the target accuracy."""

    def __init__(self, target: float):
        self.target = target
        self.started = 0.0
        self.reached: tuple[int, float, float] | None = None
        self.accuracies: list[float] = []

    def on_train_start(self, trainer: Trainer, state) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, trainer: Trainer, state, metrics) -> None:
        data = trainer.data
        loss_fn = make_loss(trainer.config.loss, len(data.info.class_names))
        _, accuracy = evaluate(trainer.model, data.test_x, data.test_y, loss_fn, precision=trainer.precision)
        self.accuracies.append(accuracy)
        if self.reached is None and accuracy >= self.target:
            self.reached = (state.epoch, time.perf_counter() - self.started, accuracy)
            trainer.stop()


def time_to_target(args: argparse.Namespace, batch_size: int, data: SplitData | None) -> SplitData:
    """Train the recipe until the test split reaches the target; print when it did. The data, for the next call."""
    config = recipe_config(
        args.recipe_train_size, args.recipe_val_size, args.recipe_epochs, args.device, args.compile, batch_size
    )
    clock = AccuracyClock(TARGET_ACCURACY)
    trainer = Trainer(load_preset("cnn-strong"), config, data, callbacks=[clock], progress=False)
    options = ", ".join(
        [
            str(trainer.precision or "float32").removeprefix("torch."),
            "channels-last" if trainer.channels_last else "contiguous",
        ]
        + (["torch.compile"] if args.compile else [])
    )
    print(
        f"\nTime to {TARGET_ACCURACY:.0%} test accuracy: cnn-strong, {config.train_size:,} train / "
        f"{config.val_size:,} validation, AdamW lr {config.lr:g} one-cycle, weight decay 5e-4, batch "
        f"{batch_size}, up to {config.epochs} epochs ({options})",
        flush=True,
    )
    result = trainer.run()
    for notice in trainer.notices:
        print(f"note: {notice}")
    accuracies = "  ".join(f"{accuracy:.2%}" for accuracy in clock.accuracies)
    rate = statistics.median(metrics.samples_per_second for metrics in result.history)
    if clock.reached is None:
        print(
            f"not reached in {config.epochs} epochs ({rate:,.0f} samples/s); test accuracy after each epoch: "
            f"{accuracies}"
        )
    else:
        epoch, seconds, accuracy = clock.reached
        print(
            f"reached {accuracy:.2%} after epoch {epoch} in {seconds:.1f} s ({rate:,.0f} samples/s; test "
            f"accuracy by epoch: {accuracies})"
        )
    return trainer.data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N; cpu to check the script itself")
    parser.add_argument("--train-size", type=int, default=50_000, help="images for the throughput table")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per throughput measurement (at least 2)")
    parser.add_argument("--recipe-train-size", type=int, default=55_000)
    parser.add_argument("--recipe-val-size", type=int, default=5_000)
    parser.add_argument("--recipe-epochs", type=int, default=15)
    parser.add_argument("--recipe-batch-sizes", default="256,512", help="comma-separated (default 256,512)")
    parser.add_argument("--compile", action="store_true", help="time to 93 %% with torch.compile too")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(SKIPPED)
        return
    if datasets.locate("fashion-mnist") is None:
        raise SystemExit("the GPU benchmark needs Fashion-MNIST: sudo apt install dataset-fashion-mnist")
    name = torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else "CPU"
    print(f"torch {torch.__version__}, {name}")
    throughput_table(args)
    data = None
    for batch_size in (int(size) for size in args.recipe_batch_sizes.split(",")):
        data = time_to_target(args, batch_size, data)


if __name__ == "__main__":
    main()
