"""The class's own experiments on the real Fashion-MNIST (Debian's dataset-fashion-mnist)."""

import json

from workbench.core.presets import load_preset
from workbench.core.runs.folders import new_run_dir
from workbench.core.runs.recorder import RunRecorder
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer

TIMING = ("epoch_seconds", "samples_per_second")


def seed_split_config(**overrides):
    values = dict(
        dataset="fashion-mnist",
        train_size=10_000,
        val_size=1_000,
        epochs=10,
        batch_size=512,
        optimizer="adam",
        lr=1e-3,
        device="cpu",
        seed=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


def train_into(folder, preset, config):
    arch = load_preset(preset)
    trainer = Trainer(arch, config, callbacks=[RunRecorder(new_run_dir(folder, arch, config))], progress=False)
    return trainer.run()


def test_relu_mlp_with_adam_reaches_80_percent_on_the_seed_split(fashion_mnist, tmp_path):
    result = train_into(tmp_path / "run", "seed-relu-mlp", seed_split_config())
    assert result.status == "finished"
    assert max(m.val_accuracy for m in result.history) >= 0.80
    assert result.test_accuracy >= 0.78
    assert json.loads((tmp_path / "run" / "run.json").read_text())["metrics"]["test_accuracy"] >= 0.78


def test_the_same_seed_writes_the_same_metrics_twice(fashion_mnist, tmp_path):
    config = seed_split_config(epochs=3, optimizer="sgd", seed=11)
    lines = []
    for name in ("first", "second"):
        train_into(tmp_path / name, "seed-simplenet", config)
        rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        lines.append([{key: value for key, value in row.items() if key not in TIMING} for row in rows])
    assert len(lines[0]) == 3
    assert lines[0] == lines[1]
