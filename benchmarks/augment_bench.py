"""``make bench``: what augmentation costs — cnn-small on 10,000 Fashion-MNIST images on the CPU, trained with no
augmentation and with all four (crop, flip, rotate, erase), alternating round by round; the median samples/s of
the steady epochs and their ratio (target: augmentation costs at most 15% of the throughput)."""

from __future__ import annotations

import argparse
import dataclasses
import statistics

from workbench.core.data import datasets
from workbench.core.presets import load_preset
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer, prepare_data

TARGET_COST = 0.15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if datasets.locate("fashion-mnist") is None:
        raise SystemExit("the augmentation benchmark needs Fashion-MNIST: sudo apt install dataset-fashion-mnist")
    config = TrainConfig(dataset="fashion-mnist", epochs=3, optimizer="adam", device="cpu", seed=0)
    data = prepare_data(config, progress=False)
    rates: dict[str, list[float]] = {"none": [], "crop,flip,rotate,erase": []}
    for _ in range(args.rounds):
        for augment, measured in rates.items():
            result = Trainer(
                load_preset("cnn-small"), dataclasses.replace(config, augment=augment), data, progress=False
            ).run()
            measured += [epoch.samples_per_second for epoch in result.history[1:]]
    plain, augmented = (statistics.median(values) for values in rates.values())
    cost = 1 - augmented / plain
    print(
        f"\nAugmentation, cnn-small on 10,000 Fashion-MNIST images (CPU), median of {args.rounds} rounds: "
        f"{plain:,.0f} samples/s without, {augmented:,.0f} with crop, flip, rotate and erase "
        f"(costs {cost:.1%}; {'meets' if cost <= TARGET_COST else 'misses'} ≤{TARGET_COST:.0%})"
    )


if __name__ == "__main__":
    main()
