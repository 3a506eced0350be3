"""A new run's default name says what it is: the network (and how it differs from its preset) and the recipe."""

from __future__ import annotations

import dataclasses

from tests.helpers import digits_config
from workbench.core.architecture import Layer
from workbench.core.presets import load_preset
from workbench.core.runs.folders import read_run
from workbench.core.runs.launch import new_run
from workbench.core.runs.naming import run_name
from workbench.core.runs.summaries import list_runs
from workbench.core.training.config import TrainConfig


def test_the_name_says_the_network_its_edits_and_the_settings_that_matter():
    simplenet = load_preset("seed-simplenet")
    assert run_name(simplenet, TrainConfig()) == "seed-simplenet · SGD m0.9 lr 0.001"
    with_relu = dataclasses.replace(simplenet, layers=[*simplenet.layers[:2], Layer("ReLU"), simplenet.layers[2]])
    config = TrainConfig(optimizer="adam", lr=3e-4, loss="mse", weight_decay=1e-4, augment="crop,erase")
    assert (
        run_name(with_relu, config) == "seed-simplenet + ReLU · Adam lr 0.0003 · MSE · wd 0.0001 · augment crop+erase"
    )
    sigmoid = load_preset("seed-sigmoidnet")
    as_relu = dataclasses.replace(
        sigmoid, layers=[Layer("ReLU") if layer.type == "Sigmoid" else layer for layer in sigmoid.layers]
    )
    assert run_name(as_relu, TrainConfig(momentum=0.0)).startswith("seed-sigmoidnet + ReLU − Sigmoid · SGD lr")
    wider = dataclasses.replace(
        simplenet, layers=[simplenet.layers[0], Layer("Linear", {"out_features": 64}), simplenet.layers[2]]
    )
    assert (
        run_name(wider, TrainConfig(optimizer="rmsprop", momentum=0.5))
        == "seed-simplenet edited · RMSprop m0.5 lr 0.001"
    )
    own = dataclasses.replace(simplenet, name="my-net")
    assert run_name(own, TrainConfig(schedule="cosine")) == "my-net · SGD m0.9 lr 0.001 · cosine"


def test_a_run_in_a_dated_folder_is_named_by_what_it_is_and_one_in_a_chosen_folder_by_the_folder(tmp_path):
    config = digits_config(train_size=100, val_size=20, epochs=1, optimizer="sgd", momentum=0.9, lr=0.01)
    launched = new_run(load_preset("seed-relu-mlp"), config, progress=False, root=tmp_path)
    launched.trainer.run()
    assert read_run(launched.folder)["name"] == "seed-relu-mlp · SGD m0.9 lr 0.01"
    assert [summary.name for summary in list_runs(tmp_path)] == ["seed-relu-mlp · SGD m0.9 lr 0.01"]
    chosen = new_run(load_preset("seed-relu-mlp"), config, tmp_path / "mine", progress=False)
    chosen.trainer.run()
    assert read_run(tmp_path / "mine")["name"] == "mine"
