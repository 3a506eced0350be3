"""``make bench``: what a sweep's queue costs — the class's three optimizers on seed-relu-mlp (10 epochs of its
10,000 / 1,000 Fashion-MNIST split) as one ``Sweep`` against the same three runs started one after another, in
one process, alternating round by round. The queue's cost per run is the difference over three (target ≤ 1 s):
the spec's checks, experiment.json and results.csv rewritten after every run. The same again for the app's queue
(the Experiments tab's, through the session's own training, without a window) against three runs started there
one after another as Start would."""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from workbench.core.data import datasets
from workbench.core.experiments.spec import SweepSpec, parse_vary
from workbench.core.experiments.sweep import Sweep
from workbench.core.presets import load_preset
from workbench.core.runs.launch import new_run
from workbench.core.training.config import TrainConfig
from workbench.session.session import Session
from workbench.session.tasks import InlineRunner

OPTIMIZERS = ("sgd", "rmsprop", "adam")
TARGET_GAP_S = 1.0


def one_by_one(config: TrainConfig, folder: Path) -> float:
    started = time.perf_counter()
    for optimizer in OPTIMIZERS:
        launch = new_run(
            load_preset("seed-relu-mlp"), dataclasses.replace(config, optimizer=optimizer), folder / optimizer
        )
        launch.trainer.run()
    return time.perf_counter() - started


def as_sweep(config: TrainConfig, folder: Path) -> float:
    started = time.perf_counter()
    spec = SweepSpec(load_preset("seed-relu-mlp"), config, (parse_vary(f"optimizer={','.join(OPTIMIZERS)}"),))
    Sweep.create(folder, spec).run()
    return time.perf_counter() - started


def app_session(config: TrainConfig, root: Path) -> Session:
    session = Session(InlineRunner(), runs_folder=root)
    session.load_dataset("fashion-mnist")
    session.load_preset("seed-relu-mlp")
    session.edit_config(config)
    return session


def app_one_by_one(session: Session, config: TrainConfig) -> float:
    started = time.perf_counter()
    for optimizer in OPTIMIZERS:
        session.edit_config(dataclasses.replace(config, optimizer=optimizer))
        session.start_training()
    session.edit_config(config)
    return time.perf_counter() - started


def app_queue(session: Session) -> float:
    started = time.perf_counter()
    session.experiments.start_custom([f"optimizer={','.join(OPTIMIZERS)}"])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if datasets.locate("fashion-mnist") is None:
        raise SystemExit("the sweep benchmark needs Fashion-MNIST: sudo apt install dataset-fashion-mnist")
    config = TrainConfig(dataset="fashion-mnist", epochs=10, lr=0.01, device="cpu")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        one_by_one(config, root / "warm-up")  # the dataset's first load and the first validation's imports
        session = app_session(config, root / "app")
        app_one_by_one(session, config)  # the session's first run: its validation subset, the gallery's guesses
        plain, swept, app_plain, app_queued = [], [], [], []
        for round_number in range(args.rounds):
            plain.append(one_by_one(config, root / f"plain-{round_number}"))
            swept.append(as_sweep(config, root / f"sweep-{round_number}"))
            app_plain.append(app_one_by_one(session, config))
            app_queued.append(app_queue(session))
    for what, alone, queued in (("a sweep", plain, swept), ("the app's queue", app_plain, app_queued)):
        gap = (statistics.median(queued) - statistics.median(alone)) / len(OPTIMIZERS)
        print(
            f"\n{len(OPTIMIZERS)} optimizers × seed-relu-mlp, 10 epochs of 10,000 images, median of {args.rounds} "
            f"rounds: one by one {statistics.median(alone):.2f} s, as {what} {statistics.median(queued):.2f} s; the "
            f"queue adds {gap:+.2f} s a run ({'meets' if gap <= TARGET_GAP_S else 'misses'} ≤{TARGET_GAP_S:g} s)"
        )


if __name__ == "__main__":
    main()
