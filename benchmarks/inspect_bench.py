"""``make bench``: what looking inside costs — one image through cnn-strong forward and back, the attributions,
the gallery's overlay of 15 images, and the alarms' share of a run's time.

- inspect: :func:`~workbench.core.inspect.one_image.inspect_image` on one Fashion-MNIST test image (target
  ≤ 100 ms), with and without the layer sheet's numbers;
- attributions: each method on that image (integrated gradients with 50 steps: target ≤ 1 s);
- the gallery's overlay: gradient saliency for a page of 15 images in one call (target ≤ 1 s);
- alarms: a seed-relu-mlp run with the gradient monitor, timed with and without judging the alarms at every epoch's
  end as the app does (target ≤ 2%).

Medians over rounds, on the CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from workbench.core.architecture import build
from workbench.core.data import datasets
from workbench.core.inspect.alarms import run_alarms
from workbench.core.inspect.attribution import METHODS, attribute, black_pixel
from workbench.core.inspect.one_image import inspect_image
from workbench.core.inspect.pictures import image_pixels, map_grid, overlay
from workbench.core.presets import load_preset
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Callback, Trainer, prepare_data
from workbench.core.training.gradients import GradientMonitor

TARGET_INSPECT_S = 0.1
TARGET_INTEGRATED_S = 1.0
TARGET_GALLERY_S = 1.0
TARGET_ALARMS = 0.02


def median_seconds(work: Callable[[], object], rounds: int) -> float:
    work()  # warm-up
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def verdict(seconds: float, target: float) -> str:
    return f"{'meets' if seconds <= target else 'misses'} ≤{target * 1000:.0f} ms"


class _JudgeEveryEpoch(Callback):
    """What the app's alarm watch does at each epoch's end: judge every sample and epoch so far."""

    def __init__(self, monitor: GradientMonitor):
        self.monitor, self.history = monitor, []

    def on_epoch_end(self, trainer, state, metrics):
        self.history.append(metrics)
        run_alarms(self.monitor.samples(), self.monitor.layers, self.history)


def alarms_share(rounds: int) -> tuple[float, float, float]:
    """Median seconds of the run without and with the alarms, and the median of the rounds' ratios; each round
    runs both, in alternating order, after a warm-up run."""
    config = TrainConfig(dataset="fashion-mnist", train_size=10_000, val_size=1_000, epochs=10, device="cpu", seed=0)
    data = prepare_data(config, progress=False)

    def run(judge: bool) -> float:
        monitor = GradientMonitor()
        callbacks = [monitor, _JudgeEveryEpoch(monitor)] if judge else [monitor]
        started = time.perf_counter()
        Trainer(load_preset("seed-relu-mlp"), config, data, callbacks=callbacks, progress=False).run()
        return time.perf_counter() - started

    run(False)
    plain, judged, ratios = [], [], []
    for round_index in range(rounds):
        if round_index % 2:
            with_alarms, without = run(True), run(False)
        else:
            without, with_alarms = run(False), run(True)
        plain.append(without)
        judged.append(with_alarms)
        ratios.append(with_alarms / without)
    return statistics.median(plain), statistics.median(judged), statistics.median(ratios)


def whole_inspection(model, architecture, image, class_names, label, black) -> None:
    """What the Inspect tab computes for one image besides drawing it with Qt: every layer forward and back,
    the attribution, and the pictures' arrays (feature-map grids, the overlay)."""
    inspection = inspect_image(model, architecture, image, class_names, label)
    attribution = attribute(model, architecture, image[None], [label], "saliency", black)[0]
    for layer in inspection.layers:
        for values in (layer.output, layer.output_gradient):
            if values.ndim == 3:
                map_grid(values)
    overlay(image_pixels(inspection.image, [0.0], [1.0]), attribution)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if datasets.locate("fashion-mnist") is None:
        raise SystemExit("the inspection benchmark needs Fashion-MNIST: sudo apt install dataset-fashion-mnist")
    loaded = datasets.load("fashion-mnist")
    info = loaded.info
    architecture = load_preset("cnn-strong")
    torch.manual_seed(0)
    model = build(architecture).eval()
    image, label = loaded.test_x[0], int(loaded.test_y[0])
    black = black_pixel(info.mean, info.std)
    print(f"\nLooking inside cnn-strong on the CPU ({torch.get_num_threads()} threads), median of {args.rounds} rounds")
    seconds = median_seconds(lambda: inspect_image(model, architecture, image, info.class_names, label), args.rounds)
    print(
        f"  one image forward and back, every layer: {seconds * 1000:7.1f} ms  ({verdict(seconds, TARGET_INSPECT_S)})"
    )
    seconds = median_seconds(
        lambda: whole_inspection(model, architecture, image, info.class_names, label, black), args.rounds
    )
    print(
        f"  ... with saliency and the pictures:      {seconds * 1000:7.1f} ms  ({verdict(seconds, TARGET_INSPECT_S)})"
    )
    for method in METHODS:
        seconds = median_seconds(
            lambda method=method: attribute(model, architecture, image[None], [label], method, black), args.rounds
        )
        note = f"  ({verdict(seconds, TARGET_INTEGRATED_S)}, 50 steps)" if method == "integrated-gradients" else ""
        print(f"  {method:<22} one image:           {seconds * 1000:7.1f} ms{note}")
    page, labels = loaded.test_x[:15], loaded.test_y[:15]
    seconds = median_seconds(lambda: attribute(model, architecture, page, labels, "saliency", black), args.rounds)
    print(f"  gallery overlay, 15 images (saliency):  {seconds * 1000:7.1f} ms  ({verdict(seconds, TARGET_GALLERY_S)})")
    for method in ("integrated-gradients", "occlusion"):
        seconds = median_seconds(
            lambda method=method: attribute(model, architecture, page, labels, method, black), args.rounds
        )
        print(f"  gallery overlay, 15 images ({method}): {seconds * 1000:7.1f} ms")
    plain, judged, ratio = alarms_share(max(5, args.rounds))
    share = ratio - 1
    print(
        f"  alarms judged every epoch: seed-relu-mlp, 10 epochs of 10,000 images: {plain:.2f} s without, "
        f"{judged:.2f} s with (median of paired rounds {share:+.1%}; "
        f"{'meets' if share <= TARGET_ALARMS else 'misses'} ≤{TARGET_ALARMS:.0%})"
    )


if __name__ == "__main__":
    main()
