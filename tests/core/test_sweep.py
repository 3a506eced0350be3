"""Experiments in the core: what a spec varies, how it is refused, and a sweep that trains its grid into a folder."""

from __future__ import annotations

import csv
import re

import pytest

from workbench.core.errors import ConfigError
from workbench.core.experiments.spec import SweepSpec, Variation, parse_vary
from workbench.core.experiments.sweep import EXPERIMENT_FILE, RESULTS_FILE, Sweep
from workbench.core.presets import load_preset
from workbench.core.runs.folders import read_metrics, read_run
from workbench.core.training.config import TrainConfig

DIGITS = TrainConfig(dataset="digits", train_size=400, val_size=60, epochs=2, batch_size=32, optimizer="adam")


def test_values_are_typed_and_the_grid_varies_the_first_key_slowest():
    assert parse_vary("lr=1e-3, 0.01") == Variation("lr", (0.001, 0.01))
    assert parse_vary("batch-size=32,64").values == (32, 64)
    assert parse_vary("layers.2.out_features=64,128").values == (64, 128)
    spec = SweepSpec(
        load_preset("seed-relu-mlp"), DIGITS, (parse_vary("optimizer=sgd,adam"), parse_vary("lr=0.1,0.01")), 2
    )
    points = spec.points()
    assert len(points) == 8
    assert points[:3] == [
        {"optimizer": "sgd", "lr": 0.1, "repeat": 1},
        {"optimizer": "sgd", "lr": 0.1, "repeat": 2},
        {"optimizer": "sgd", "lr": 0.01, "repeat": 1},
    ]
    _, config = spec.settings(points[1])
    assert (config.optimizer, config.lr, config.seed) == ("sgd", 0.1, DIGITS.seed + 1)


def test_activation_and_layer_parameters_change_the_network_not_the_preset():
    preset = load_preset("seed-sigmoidnet-6")
    spec = SweepSpec(preset, DIGITS, (parse_vary("activation=ReLU"), parse_vary("layers.2.out_features=64")))
    architecture, _ = spec.settings(spec.points()[0])
    types = [layer.type for layer in architecture.layers]
    assert "Sigmoid" not in types and types.count("ReLU") == [layer.type for layer in preset.layers].count("Sigmoid")
    assert architecture.layers[1].params["out_features"] == 64
    assert preset.layers[1].params["out_features"] == 120, "the preset itself is left as it was"


def test_linked_keys_vary_together_and_named_values_label_the_runs():
    linked = parse_vary("optimizer/lr=sgd/0.01,adam/1e-3")
    assert linked == Variation("optimizer/lr", (("sgd", 0.01), ("adam", 0.001)))
    spec = SweepSpec(load_preset("seed-relu-mlp"), DIGITS, (linked,))
    assert spec.points() == [{"optimizer/lr": ("sgd", 0.01)}, {"optimizer/lr": ("adam", 0.001)}], "two runs, not four"
    _, config = spec.settings(spec.points()[1])
    assert (config.optimizer, config.lr) == ("adam", 0.001)
    assert spec.describe(spec.points()[0]) == "optimizer sgd, lr 0.01"
    named = Variation("optimizer/momentum", (("sgd", 0.0), ("sgd", 0.9)), ("plain SGD", "momentum"))
    spec = SweepSpec(load_preset("seed-relu-mlp"), DIGITS, (named,), repeat=2)
    assert [spec.describe(point) for point in spec.points()][1:3] == ["plain SGD · repeat 2", "momentum · repeat 1"]
    assert SweepSpec.from_dict(spec.to_dict()) == spec, "linked values and names survive experiment.json"
    for text, message in (
        ("optimizer/lr=sgd,adam/0.1", "'sgd' has 1 parts for the 2 linked keys"),
        ("optimizer/lr=sgd/x", "lr: 'x' is not a number"),
        ("lr/lr=0.1/0.2", "link different keys"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_vary(text)


def test_dropout_sets_every_dropout_layer_and_is_refused_without_one():
    spec = SweepSpec(load_preset("mlp"), DIGITS, (parse_vary("dropout=0,0.5"), parse_vary("early-stopping=0,3")))
    spec.check()
    architecture, config = spec.settings({"dropout": 0.5, "early-stopping": 3})
    assert [layer.params["p"] for layer in architecture.layers if layer.type == "Dropout"] == [0.5]
    assert config.early_stopping == 3
    with pytest.raises(ConfigError, match="has no Dropout layer"):
        SweepSpec(load_preset("seed-relu-mlp"), DIGITS, (parse_vary("dropout=0,0.5"),)).check()
    with pytest.raises(ConfigError, match="p must be at least 0 and below 1"):
        SweepSpec(load_preset("mlp"), DIGITS, (parse_vary("dropout=1.5"),)).check()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("optimiser=sgd", "Unknown key 'optimiser' (did you mean 'optimizer'?)"),
        ("lr=", "lr: give its values"),
        ("lr=0.1,,0.2", "lr: give its values"),
        ("lr=fast", "lr: 'fast' is not a number"),
        ("epochs=2.5", "epochs: '2.5' is not a whole number"),
        ("optimizer=sgd,sgd", "optimizer: a value is listed twice"),
        ("activation=Relu", "activation: 'Relu' is not one of the activation layers"),
        ("no-equals", "is not KEY=V1,V2"),
    ],
)
def test_bad_values_are_refused_naming_the_key(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_vary(text)


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        ("layers.9.out_features=64", "layers.9.out_features=64: the network 'seed-relu-mlp' has layers 1 to 4, not 9"),
        ("layers.2.width=64", "layer 2 is a Linear, whose parameters are out_features, bias"),
        ("lr=0,0.1", "lr=0.0: lr must be a number above 0"),
        ("layers.2.out_features=0", "layers.2.out_features=0: the network does not fit"),
    ],
)
def test_a_spec_whose_runs_cannot_all_start_is_refused_before_any_folder_is_written(tmp_path, vary, message):
    spec = SweepSpec(load_preset("seed-relu-mlp"), DIGITS, (parse_vary(vary),))
    with pytest.raises(ConfigError, match=message):
        Sweep.create(tmp_path / "sweep", spec)
    assert not (tmp_path / "sweep").exists()


def test_a_three_run_sweep_on_digits_fills_its_results_and_names_its_runs(tmp_path):
    spec = SweepSpec(load_preset("seed-relu-mlp"), DIGITS, (parse_vary("optimizer=sgd,adam,rmsprop"),))
    sweep = Sweep.create(tmp_path / "sweep", spec)
    assert sweep.run() is True
    with open(tmp_path / "sweep" / RESULTS_FILE, newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["optimizer"] for row in rows] == ["sgd", "adam", "rmsprop"]
    assert [row["status"] for row in rows] == ["finished"] * 3
    for row in rows:
        run = tmp_path / "sweep" / "runs" / row["run"]
        history = read_metrics(run)
        assert [epoch.epoch for epoch in history] == [1, 2]
        assert float(row["final_val_accuracy"]) == pytest.approx(history[-1].val_accuracy * 100, abs=0.006)
        assert float(row["best_val_accuracy"]) == pytest.approx(max(e.val_accuracy for e in history) * 100, abs=0.006)
        assert float(row["test_accuracy"]) == pytest.approx(read_run(run)["metrics"]["test_accuracy"] * 100, abs=0.006)
        assert float(row["train_seconds"]) > 0
        assert read_run(run)["name"] == f"seed-relu-mlp · optimizer {row['optimizer']}"
    reopened = Sweep.open(tmp_path / "sweep")
    assert reopened.pending() == [] and (tmp_path / "sweep" / EXPERIMENT_FILE).exists()
    assert reopened.run() is True, "a finished sweep has nothing left to run"
    assert [epoch.epoch for epoch in read_metrics(tmp_path / "sweep" / "runs" / "run-001")] == [1, 2]


def test_a_folder_that_is_not_empty_or_holds_no_sweep_is_refused(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    spec = SweepSpec(load_preset("seed-relu-mlp"), DIGITS, (parse_vary("lr=0.1"),))
    with pytest.raises(ConfigError, match="is not empty"):
        Sweep.create(tmp_path / "full", spec)
    with pytest.raises(ConfigError, match="holds no sweep"):
        Sweep.open(tmp_path / "full")
