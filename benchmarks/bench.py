"""``make bench``: training throughput of the engine against a bare loop and the class's loop.

All three train the same network (same initial weights, SGD lr 0.001 momentum 0.9, batch 512)
on the same 10,000-image Fashion-MNIST subset, in one process, interleaved round by round so
that the machine's noise hits them alike. Reported: median samples/s over the rounds and the
ratios engine/bare and engine/seed.

- engine: ``workbench.core.training.engine.Trainer`` over tensors preloaded once, with its defaults (on a CPU
  that computes bfloat16 natively: bfloat16 autocast, and channels-last for convolutions);
- bare: the shortest correct PyTorch loop over the same preloaded tensors, in the same precision and memory
  format as the engine, so that engine/bare measures the engine's own overhead;
- seed: the class notebook's loop, a DataLoader over torchvision's FashionMNIST with
  ToTensor + Normalize, batch 512, 2 workers, in float32 as the notebook trains.

The CPU fast path itself (float32 against the defaults) is measured by ``benchmarks.cpu_bench``.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch.nn import functional
from torch.utils.data import DataLoader, Subset

from workbench.core.architecture import build
from workbench.core.data import datasets
from workbench.core.presets import load_preset
from workbench.core.training.config import TrainConfig
from workbench.core.training.devices import resolve_device
from workbench.core.training.engine import Trainer, prepare_data

TARGET_VS_BARE = 0.95
TARGET_VS_SEED = 15.0


def seed_config(train_size: int, device: str) -> TrainConfig:
    return TrainConfig(
        dataset="fashion-mnist",
        train_size=train_size,
        val_size=1000,
        epochs=4,
        batch_size=512,
        optimizer="sgd",
        lr=1e-3,
        momentum=0.9,
        device=device,
        seed=0,
    )


def steady(rates: list[float]) -> float:
    """The median rate over the epochs after the first, which pays for warm-up."""
    return statistics.median(rates[1:])


@dataclass(frozen=True)
class Execution:
    """How the engine computed: the autocast dtype (None: float32) and whether in channels-last."""

    precision: torch.dtype | None
    channels_last: bool

    def words(self) -> str:
        precision = str(self.precision or torch.float32).removeprefix("torch.")
        return f"{precision}{', channels-last' if self.channels_last else ''}"


def engine_samples_per_second(preset: str, config: TrainConfig, data) -> tuple[float, Execution]:
    """Samples/s of the engine, as its own per-epoch metrics report them, and how it computed."""
    trainer = Trainer(load_preset(preset), config, data, progress=False)
    result = trainer.run()
    execution = Execution(trainer.precision, trainer.channels_last)
    return steady([metrics.samples_per_second for metrics in result.history]), execution


def fresh_model_and_optimizer(preset: str, config: TrainConfig):
    torch.manual_seed(config.seed)
    model = build(load_preset(preset)).to(resolve_device(config.device))
    return model, torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)


def bare_samples_per_second(preset: str, config: TrainConfig, data, execution: Execution) -> float:
    """The same epochs written as plainly as PyTorch allows, computing as the engine did."""
    model, optimizer = fresh_model_and_optimizer(preset, config)
    device = resolve_device(config.device)
    inputs, targets = data.train_x.to(device), data.train_y.to(device)
    if execution.channels_last:
        model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    autocast = functools.partial(
        torch.autocast, device.type, dtype=execution.precision, enabled=execution.precision is not None
    )
    generator = torch.Generator().manual_seed(config.seed)
    rates = []
    for _ in range(config.epochs):
        started = time.perf_counter()
        order = torch.randperm(len(targets), generator=generator).to(device)
        for start in range(0, len(targets), config.batch_size):
            index = order[start : start + config.batch_size]
            with autocast():
                loss = functional.cross_entropy(model(inputs[index]), targets[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _synchronize(device)
        rates.append(len(targets) / (time.perf_counter() - started))
    return steady(rates)


def torchvision_root(system_folder: Path, scratch: Path) -> Path:
    """torchvision reads FashionMNIST/raw/*-ubyte (uncompressed): unpack Debian's .gz files there."""
    raw = scratch / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for packed in system_folder.glob("*-ubyte.gz"):
        with gzip.open(packed) as source, open(raw / packed.name[:-3], "wb") as target:
            shutil.copyfileobj(source, target)
    return scratch


def seed_samples_per_second(preset: str, config: TrainConfig, root: Path, indices: list[int]) -> float:
    """One epoch of the notebook's loop, DataLoader start-up included as the student lives it."""
    transform = torchvision.transforms.Compose(
        [torchvision.transforms.ToTensor(), torchvision.transforms.Normalize((0.5,), (0.5,))]
    )
    train_set = torchvision.datasets.FashionMNIST(str(root), train=True, download=False, transform=transform)
    loader = DataLoader(Subset(train_set, indices), batch_size=config.batch_size, shuffle=True, num_workers=2)
    model, optimizer = fresh_model_and_optimizer(preset, config)
    criterion = torch.nn.CrossEntropyLoss()
    device = resolve_device(config.device)
    started = time.perf_counter()
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
    _synchronize(device)
    return len(indices) / (time.perf_counter() - started)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--presets", nargs="+", default=["seed-simplenet", "cnn-small"])
    parser.add_argument("--device", default="cpu", help="cpu (the targets' device), cuda, ...")
    args = parser.parse_args()

    location = datasets.locate("fashion-mnist")
    if location is None:
        raise SystemExit("make bench needs Fashion-MNIST: sudo apt install dataset-fashion-mnist")
    config = seed_config(args.train_size, args.device)
    data = prepare_data(config, progress=False)
    generator = torch.Generator().manual_seed(config.seed)
    indices = torch.randperm(datasets.get_info("fashion-mnist").train_count, generator=generator)
    indices = indices[: args.train_size].tolist()
    print(
        f"torch {torch.__version__}, device {resolve_device(args.device)}, {torch.get_num_threads()} CPU threads, "
        f"{args.train_size:,} Fashion-MNIST "
        f"images, batch {config.batch_size}, median of {args.rounds} rounds (samples/s)"
    )
    print(f"{'network':<16}{'engine':>10}{'bare':>10}{'seed':>10}{'engine/bare':>13}{'engine/seed':>13}")
    with tempfile.TemporaryDirectory() as scratch:
        root = torchvision_root(location.path, Path(scratch))
        for preset in args.presets:
            rates: dict[str, list[float]] = {"engine": [], "bare": [], "seed": []}
            for _ in range(args.rounds):
                engine_rate, execution = engine_samples_per_second(preset, config, data)
                rates["engine"].append(engine_rate)
                rates["bare"].append(bare_samples_per_second(preset, config, data, execution))
                rates["seed"].append(seed_samples_per_second(preset, config, root, indices))
            engine, bare, seed = (statistics.median(rates[name]) for name in ("engine", "bare", "seed"))
            verdict = "meets" if engine / bare >= TARGET_VS_BARE and engine / seed >= TARGET_VS_SEED else "misses"
            print(
                f"{preset:<16}{engine:>10,.0f}{bare:>10,.0f}{seed:>10,.0f}{engine / bare:>12.2f}x"
                f"{engine / seed:>12.1f}x  {verdict} targets ≥{TARGET_VS_BARE}x bare, ≥{TARGET_VS_SEED:g}x seed "
                f"(engine and bare in {execution.words()})"
            )


if __name__ == "__main__":
    main()
