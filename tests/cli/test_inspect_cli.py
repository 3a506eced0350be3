"""``workbench inspect MODEL IMAGE --out DIR``: the report and pictures of one image, from a real run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import digits_config
from workbench.core.architecture import validate
from workbench.core.presets import load_preset
from workbench.core.runs.folders import new_run_dir
from workbench.core.runs.recorder import RunRecorder
from workbench.core.training.engine import Trainer


def _run(root, preset):
    folder = root / preset
    arch = load_preset(preset)
    config = digits_config(train_size=400, val_size=50, epochs=2, seed=4)
    trainer = Trainer(arch, config, callbacks=[RunRecorder(new_run_dir(folder, arch, config))], progress=False)
    trainer.run()
    return folder, trainer


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A convolutional and a fully connected run on the digits, and one test digit as an 8×8 grey PNG."""
    root = tmp_path_factory.mktemp("inspect-cli")
    cnn, trainer = _run(root, "cnn-small")
    mlp, _ = _run(root, "seed-relu-mlp")
    info = trainer.data.info
    pixels = (trainer.data.test_x[0, 0].cpu().numpy() * info.std[0] + info.mean[0]).clip(0, 1)
    image = root / "digit.png"
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(image)
    return {"cnn": cnn, "mlp": mlp, "image": image, "architecture": trainer.architecture}


@pytest.mark.parametrize("method", ["saliency", "integrated-gradients", "grad-cam", "occlusion"])
def test_inspect_writes_the_report_and_the_pictures(runs, in_process, tmp_path, method):
    out = tmp_path / "inspection"
    result = in_process("inspect", runs["cnn"], runs["image"], "--out", out, "--method", method)
    assert result.returncode == 0, result
    assert f"Wrote report.json, saliency.npy, saliency.png, layers.png ({method}) to {out}" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == method
    assert len(report["prediction"]) == 5
    probabilities = [entry["probability"] for entry in report["prediction"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert report["loss"] > 0
    expected = [list(row.output_shape) for row in validate(runs["architecture"]).layers]
    assert [entry["output_shape"] for entry in report["layers"]] == expected
    assert [entry["index"] for entry in report["layers"]] == list(range(1, len(expected) + 1))
    first = report["layers"][0]
    assert first["type"] == "Conv2d" and first["gradient"]["weight_norm"] > 0
    assert set(first["activation"]) == {"mean", "std", "min", "max", "zero_fraction", "saturated_fraction"}
    saliency = np.load(out / "saliency.npy")
    assert saliency.shape == (8, 8) and saliency.dtype == np.float32 and np.abs(saliency).sum() > 0
    with Image.open(out / "saliency.png") as overlay, Image.open(out / "layers.png") as sheet:
        assert overlay.size[0] >= 224 and overlay.mode == "RGB"
        assert sheet.size[1] > sheet.size[0]  # one row per layer


def test_inspect_sends_back_the_class_asked_for(runs, in_process, tmp_path):
    result = in_process("inspect", runs["mlp"], runs["image"], "--out", tmp_path, "--target", "7")
    assert result.returncode == 0, result
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["target"] == "7"
    assert "loss for 7:" in result.stdout


@pytest.mark.parametrize(
    "case, says",
    [
        (
            "grad-cam on an MLP",
            "Grad-CAM weighs a convolution's feature maps, and this network has no Conv2d layer: "
            "use one of saliency, integrated-gradients, occlusion.",
        ),
        ("unknown class", "'pullover' is not one of the network's classes: 0 0, 1 1,"),
        ("missing image", "does not exist."),
        ("missing model", "no-such-run"),
    ],
)
def test_inspect_refuses_bad_input_with_exit_2_and_writes_nothing(runs, in_process, tmp_path, case, says):
    out = tmp_path / "out"
    args = {
        "grad-cam on an MLP": (runs["mlp"], runs["image"], "--method", "grad-cam"),
        "unknown class": (runs["mlp"], runs["image"], "--target", "pullover"),
        "missing image": (runs["mlp"], tmp_path / "nothing.png"),
        "missing model": (tmp_path / "no-such-run", runs["image"]),
    }[case]
    result = in_process("inspect", *args, "--out", out)
    assert result.returncode == 2, result
    assert says in result.stderr, result
    assert not out.exists()


def test_inspect_refuses_an_unknown_method_with_the_choices(runs, in_process, tmp_path):
    result = in_process("inspect", runs["mlp"], runs["image"], "--out", tmp_path, "--method", "lime")
    assert result.returncode == 2, result
    assert "invalid choice: 'lime'" in result.stderr and "integrated-gradients" in result.stderr
