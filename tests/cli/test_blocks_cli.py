"""The command line with a network of blocks (a Residual with a projection, a Parallel, an identity Residual) on the
8×8 digits: train from an architecture file and continue the run, predict image files, inspect one image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image

from tests.core.test_blocks import document
from tests.helpers import BLOCKS_DIGITS, BLOCKS_DIGITS_WEIGHTED, digits_config
from workbench.core.architecture import Architecture, validate
from workbench.core.runs.folders import new_run_dir, read_gradients, read_metrics, read_run
from workbench.core.runs.recorder import RunRecorder
from workbench.core.training.engine import Trainer, predict

SIZES = ("--dataset", "digits", "--train-size", "300", "--val-size", "60", "--seed", "3", "--quiet")
TIMING = ("epoch_seconds", "samples_per_second")


@pytest.fixture
def blocks_file(sandbox):
    path = sandbox.root / "blocks.json"
    path.write_text(json.dumps(BLOCKS_DIGITS))
    return path


def _epochs(folder):
    return [{k: v for k, v in vars(m).items() if k not in TIMING} for m in read_metrics(folder)]


def test_a_run_with_blocks_trained_and_continued_equals_one_trained_straight(in_process, sandbox, blocks_file):
    straight, split = sandbox.runs / "straight", sandbox.runs / "split"
    assert in_process("train", "--arch", blocks_file, *SIZES, "--epochs", "2", "--out", straight).returncode == 0
    first = in_process("train", "--arch", blocks_file, *SIZES, "--epochs", "1", "--out", split)
    assert first.returncode == 0, first
    continued = in_process("train", "--resume", split, "--epochs", "1")
    assert continued.returncode == 0, continued
    assert f"Continuing {split} after epoch 1" in continued.stdout

    run = read_run(split)
    assert run["status"] == "finished" and run["metrics"]["epochs_completed"] == 2
    assert json.loads((split / "architecture.json").read_text()) == BLOCKS_DIGITS
    ours = safetensors.torch.load_file(split / "model.safetensors")
    theirs = safetensors.torch.load_file(straight / "model.safetensors")
    assert "2.shortcut.weight" in ours and "3.branches.1.0.weight" in ours and "5.layers.2.weight" in ours
    assert ours.keys() == theirs.keys()
    for name, tensor in theirs.items():
        assert torch.equal(ours[name], tensor), name
    assert _epochs(split) == _epochs(straight)
    gradients = read_gradients(split)
    assert [epoch.epoch for epoch in gradients] == [1, 2]
    assert all(list(epoch.grad_norms) == BLOCKS_DIGITS_WEIGHTED for epoch in gradients)


@pytest.fixture(scope="module")
def blocks_run(tmp_path_factory):
    """The blocks network trained two epochs, four of its test digits as PNG files, and the classes the model in
    memory gives them."""
    root = tmp_path_factory.mktemp("blocks-cli")
    folder = root / "run"
    architecture = Architecture.from_dict(BLOCKS_DIGITS)
    config = digits_config(train_size=600, val_size=60, epochs=2, seed=5)
    trainer = Trainer(
        architecture, config, callbacks=[RunRecorder(new_run_dir(folder, architecture, config))], progress=False
    )
    model = trainer.run().model
    info = trainer.data.info
    mean, std = info.mean[0], info.std[0]
    pixels = torch.round((trainer.data.test_x[:4].cpu() * std + mean).clamp(0, 1) * 255).to(torch.uint8)
    paths = []
    for index, image in enumerate(pixels.numpy()):
        paths.append(root / f"digit-{index}.png")
        Image.fromarray(image[0]).save(paths[-1])
    expected = predict(model, (pixels.float() / 255 - mean) / std).argmax(dim=1)
    return folder, paths, [info.class_names[int(k)] for k in expected]


def test_predict_gives_the_classes_of_the_model_in_memory(blocks_run, in_process):
    folder, paths, expected = blocks_run
    result = in_process("predict", folder, *paths, "--top", "1")
    assert result.returncode == 0, result
    assert [line.split(": ", 1)[0] for line in result.lines] == [str(path) for path in paths]
    assert [line.split(": ", 1)[1].split()[0] for line in result.lines] == expected


def test_inspect_reports_every_nested_layer_by_its_number(blocks_run, in_process, tmp_path):
    folder, paths, _ = blocks_run
    out = tmp_path / "inspection"
    result = in_process("inspect", folder, paths[0], "--out", out, "--method", "grad-cam")
    assert result.returncode == 0, result
    report = json.loads((out / "report.json").read_text())
    rows = validate(Architecture.from_dict(BLOCKS_DIGITS)).rows
    layers = report["layers"]
    assert [(entry["number"], entry["type"]) for entry in layers] == [(row.number, row.type) for row in rows]
    assert [tuple(entry["output_shape"]) for entry in layers] == [row.output_shape for row in rows]
    assert [entry["depth"] for entry in layers] == [row.depth for row in rows]
    by_number = {entry["number"]: entry for entry in layers}
    assert by_number["3"]["gradient"]["weight_norm"] > 0  # the projection shortcut's weights
    assert by_number["4"]["gradient"]["weight_norm"] is None
    assert by_number["6.1"]["gradient"]["weight_norm"] > 0
    assert np.load(out / "saliency.npy").shape == (8, 8)
    with Image.open(out / "layers.png") as sheet:
        assert sheet.size[1] > sheet.size[0]  # one row per layer, the nested ones too


def _conv_stride_2() -> dict:
    return {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "stride": 2}


def _nested(depth: int) -> dict:
    return {"type": "ReLU"} if depth == 0 else {"type": "Residual", "layers": [_nested(depth - 1)]}


@pytest.mark.parametrize(
    ("layers", "version", "says"),
    [
        ([{"type": "Residual", "layers": []}], 2, "block 1 Residual has no layers"),
        (
            [{"type": "ReLU"}, {"type": "Parallel", "branches": [[{"type": "ReLU"}]]}],
            2,
            "block 2 Parallel has 1 branch",
        ),
        ([{"type": "Residual", "shortcut": "skip", "layers": [{"type": "ReLU"}]}], 2, "block 1 Residual: shortcut"),
        ([{"type": "Parallel", "merge": "max", "branches": [[], []]}], 2, "block 1 Parallel: merge"),
        ([{"type": "Residual", "layers": [{"type": "ReLU"}]}], 1, "block 1 Residual: blocks need version 2"),
        ([_nested(17)], 2, "Residual is nested deeper than 16"),
        (
            [{"type": "Conv2d", "out_channels": 4}, {"type": "Residual", "layers": [_conv_stride_2()]}],
            2,
            "block 2 Residual: its layers turn 4×6×6 into 8×3×3, so the input cannot be added: set its shortcut to "
            "projection",
        ),
    ],
    ids=["empty block", "one branch", "unknown shortcut", "unknown merge", "block in version 1", "17 deep", "shape"],
)
def test_a_bad_block_file_exits_2_naming_the_block_and_trains_nothing(in_process, sandbox, layers, version, says):
    head = [{"type": "Flatten"}, {"type": "Linear", "out_features": 10}]
    bad = document([*layers, *head], version=version, name="bad-blocks", input_shape=[1, 8, 8])
    path = sandbox.root / "bad.json"
    path.write_text(json.dumps(bad))
    result = in_process("train", "--arch", path, "--epochs", "1", "--out", sandbox.runs / "bad", *SIZES)
    assert result.returncode == 2, result
    assert says in result.stderr, result.stderr
    assert not (sandbox.runs / "bad").exists()
