"""Reading a trained network back from its run folder, and evaluating it again on demand."""

import copy
import dataclasses
import json
import math
import re
import shutil

import pytest
import safetensors.torch
import torch
from safetensors import safe_open

from workbench.core.errors import RunError
from workbench.core.export.formats import export_model
from workbench.core.presets import load_preset
from workbench.core.runs.folders import new_run_dir
from workbench.core.runs.recorder import RunRecorder
from workbench.core.runs.trained import evaluate_trained, load_trained, nonfinite_layers
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer, predict


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "run"
    arch = load_preset("cnn-small")
    cfg = TrainConfig(
        dataset="digits",
        train_size=600,
        val_size=100,
        epochs=2,
        batch_size=64,
        optimizer="adam",
        lr=3e-3,
        device="cpu",
        seed=3,
    )
    trainer = Trainer(arch, cfg, callbacks=[RunRecorder(new_run_dir(folder, arch, cfg))], progress=False)
    result = trainer.run()
    return folder, result, trainer.data


def test_the_trained_network_predicts_as_it_did_at_the_end_of_its_run(finished_run):
    folder, result, data = finished_run
    trained = load_trained(folder)
    assert trained.source == "final weights"
    assert trained.architecture.input_shape == (1, 8, 8)
    # the run scored its test split as the saved weights compute (float32, contiguous): the same numbers
    assert torch.equal(predict(trained.model, data.test_x), result.test_probabilities)
    # the run's own model trained channels-last: the same sums in another order
    torch.testing.assert_close(predict(trained.model, data.test_x), predict(result.model, data.test_x))


def test_evaluating_on_demand_repeats_the_runs_test_figures(finished_run):
    folder, result, _ = finished_run
    evaluation = evaluate_trained(load_trained(folder))
    saved = json.loads((folder / "evaluation.json").read_text())
    assert evaluation.accuracy == pytest.approx(result.test_accuracy)
    assert evaluation.confusion.tolist() == saved["confusion"]


def test_a_run_without_final_weights_falls_back_to_its_checkpoint(finished_run, tmp_path):
    folder, _, _ = finished_run
    killed = tmp_path / "killed"
    killed.mkdir()
    for name in ("run.json", "architecture.json"):
        (killed / name).write_bytes((folder / name).read_bytes())
    (killed / "checkpoint").mkdir()
    for path in (folder / "checkpoint").iterdir():
        (killed / "checkpoint" / path.name).write_bytes(path.read_bytes())
    trained = load_trained(killed)
    assert trained.source == "checkpoint of epoch 2"
    (killed / "checkpoint" / "latest.json").unlink()
    with pytest.raises(RunError, match="has no trained weights"):
        load_trained(killed)


def test_weights_of_another_network_or_a_broken_file_are_refused(finished_run, tmp_path):
    folder, _, _ = finished_run
    other = tmp_path / "other"
    other.mkdir()
    document = json.loads((folder / "run.json").read_text())
    document["architecture"] = load_preset("seed-linear").to_dict()
    document["architecture"]["input_shape"] = [1, 8, 8]
    (other / "run.json").write_text(json.dumps(document))
    (other / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(RunError, match="do not belong to the architecture 'seed-linear'"):
        load_trained(other)
    (other / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RunError, match="cannot be read"):
        load_trained(other)
    with pytest.raises(RunError, match="not a run folder"):
        load_trained(tmp_path)


def test_the_run_records_what_its_network_needs_of_the_data(finished_run):
    folder, _, data = finished_run
    document = json.loads((folder / "run.json").read_text())
    assert document["data"]["class_names"] == list(data.info.class_names)
    trained = load_trained(folder)
    assert trained.data.input_shape == (1, 8, 8)
    assert trained.data.mean == tuple(data.info.mean) and trained.data.std == tuple(data.info.std)
    del document["data"]  # a run written before the data was recorded: the registry fills it in
    (folder / "run.json").write_text(json.dumps(document))
    assert load_trained(folder).data.class_names == tuple(data.info.class_names)


# Weights that diverged


def poisoned(folder, destination, **values):
    """A copy of the run (or bundle) ``folder`` at ``destination`` whose model.safetensors holds ``values``
    (e.g. ``{"7.weight": nan}``) in the first element of the weights named; its other files are unchanged."""
    copy = shutil.copytree(folder, destination)
    path = copy / "model.safetensors"
    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata()
    weights = safetensors.torch.load_file(path)
    for key, value in values.items():
        weights[key.replace("_", ".")].view(-1)[0] = value
    safetensors.torch.save_file(weights, path, metadata=metadata)
    return copy


DIVERGED = (
    "hold NaN or infinite values (in {layers}): the run diverged, so its predictions would be meaningless. "
    "Train it again with a lower learning rate."
)


def test_a_run_whose_weights_hold_nan_or_inf_is_refused_saying_it_diverged(finished_run, tmp_path):
    folder, _, _ = finished_run
    name = json.loads((folder / "run.json").read_text())["name"]
    nan_run = poisoned(folder, tmp_path / "nan", **{"7_weight": math.nan})
    with pytest.raises(RunError) as refused:
        load_trained(nan_run)
    weights = nan_run / "model.safetensors"
    assert str(refused.value) == f"The weights of {name} ({weights}) " + DIVERGED.format(layers="layer 8 Linear")
    both = poisoned(folder, tmp_path / "both", **{"0_bias": math.inf, "9_weight": -math.inf})
    with pytest.raises(RunError, match=re.escape(DIVERGED.format(layers="layer 1 Conv2d and layer 10 Linear"))):
        load_trained(both)


def test_a_bundle_whose_weights_hold_nan_is_refused(finished_run, tmp_path):
    folder, _, _ = finished_run
    bundle = export_model(load_trained(folder), "safetensors", tmp_path / "b").path
    broken = poisoned(bundle, tmp_path / "broken", **{"3_bias": math.nan})
    with pytest.raises(RunError, match=re.escape(DIVERGED.format(layers="layer 4 Conv2d"))):
        load_trained(broken)


def test_evaluating_a_network_with_nan_weights_is_refused_instead_of_scoring_it(finished_run):
    folder, _, _ = finished_run
    trained = load_trained(folder)
    model = copy.deepcopy(trained.model)
    with torch.no_grad():
        model[9].bias[3] = math.nan
    with pytest.raises(
        RunError, match=re.escape(f"The weights of {trained.name} " + DIVERGED.format(layers="layer 10 Linear"))
    ):
        evaluate_trained(dataclasses.replace(trained, model=model))


def test_a_buffer_counts_as_weights_and_meta_tensors_hold_no_values():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    assert nonfinite_layers(model) == []
    model[1].running_var[0] = math.inf
    assert nonfinite_layers(model) == ["layer 2 BatchNorm2d"]
    with torch.device("meta"):
        assert nonfinite_layers(torch.nn.Sequential(torch.nn.Linear(2, 2))) == []
