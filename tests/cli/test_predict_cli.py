"""``workbench predict MODEL IMAGE...``: the console script on image files the test writes from a real run."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image

from tests.helpers import Result
from workbench.core.presets import load_preset
from workbench.core.runs.folders import new_run_dir
from workbench.core.runs.recorder import RunRecorder
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer, predict

LINE = re.compile(r"(?P<path>\S+): +(?P<guesses>\S.*)")
GUESS = re.compile(r"(?P<name>\S+) (?P<percent>\d{1,3}\.\d)%")


@pytest.fixture(scope="module")
def run_and_images(tmp_path_factory):
    """A real digits run, a few of its test images as PNG files, and what the model in memory makes of them."""
    root = tmp_path_factory.mktemp("predict-cli")
    folder = root / "run"
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
        seed=11,
    )
    trainer = Trainer(arch, cfg, callbacks=[RunRecorder(new_run_dir(folder, arch, cfg))], progress=False)
    model = trainer.run().model
    info = trainer.data.info
    means, stds = torch.tensor(info.mean).view(1, -1, 1, 1), torch.tensor(info.std).view(1, -1, 1, 1)
    pixels = torch.round((trainer.data.test_x[:6].cpu() * stds + means).clamp(0, 1) * 255).to(torch.uint8)
    images = root / "images"
    images.mkdir()
    paths = [images / f"digit-{index}.png" for index in range(len(pixels))]
    for path, image in zip(paths, pixels.numpy()):
        Image.fromarray(image[0]).save(path)
    expected = predict(model, (pixels.float() / 255 - means) / stds).argmax(dim=1)
    return folder, paths, [info.class_names[int(k)] for k in expected]


def _parsed(result: Result) -> list[tuple[str, list[tuple[str, float]]]]:
    rows = []
    for line in result.lines:
        match = LINE.fullmatch(line)
        assert match, result
        guesses = [GUESS.fullmatch(part) for part in match["guesses"].split(", ")]
        assert all(guesses), result
        rows.append((match["path"], [(g["name"], float(g["percent"])) for g in guesses]))
    return rows


def test_predict_prints_the_classes_the_model_in_memory_gives(run_and_images, sandbox):
    folder, paths, expected = run_and_images
    result = sandbox.run("predict", folder, *paths)
    assert result.returncode == 0, result
    assert result.stderr == "", result
    rows = _parsed(result)
    assert [path for path, _ in rows] == [str(path) for path in paths], result
    assert [guesses[0][0] for _, guesses in rows] == expected, result
    for _, guesses in rows:
        percents = [percent for _, percent in guesses]
        assert len(guesses) == 3 and percents == sorted(percents, reverse=True) and sum(percents) <= 100.2
    assert len({LINE.fullmatch(line).start("guesses") for line in result.lines}) == 1, result  # one column
    assert sandbox.user_files() == []


def test_predict_with_an_unreadable_image_prints_nothing_and_names_it(run_and_images, sandbox):
    folder, paths, _ = run_and_images
    fake = sandbox.root / "holiday.png"
    fake.write_text("these are words, not pixels")
    result = sandbox.run("predict", folder, paths[0], fake)
    assert result.returncode == 2, result
    assert result.stdout == "", result
    assert result.stderr == f"workbench: {fake} is not a readable PNG or JPEG image.\n", result


def test_predict_columns_line_up_for_names_of_different_lengths(run_and_images, in_process, tmp_path):
    folder, paths, expected = run_and_images
    longer = tmp_path / "a-much-longer-file-name.png"
    longer.write_bytes(paths[1].read_bytes())
    result = in_process("predict", folder, paths[0], longer, "--top", "1")
    assert result.returncode == 0, result
    short, long_ = result.lines
    assert short.startswith(f"{paths[0]}:" + " " * (len(str(longer)) - len(str(paths[0])) + 1) + expected[0])
    assert long_.startswith(f"{longer}: {expected[1]} ")
    assert all(len(guesses) == 1 for _, guesses in _parsed(result))


def test_predict_top_is_capped_at_the_number_of_classes(run_and_images, in_process):
    folder, paths, _ = run_and_images
    result = in_process("predict", folder, paths[0], "--top", "50")
    assert result.returncode == 0, result
    ((_, guesses),) = _parsed(result)
    assert sorted(name for name, _ in guesses) == [str(digit) for digit in range(10)]
    assert sum(percent for _, percent in guesses) == pytest.approx(100, abs=0.6)


def test_predict_invert_changes_what_the_network_sees(run_and_images, in_process, tmp_path):
    folder, paths, expected = run_and_images
    negative = tmp_path / "negative.png"
    Image.fromarray(255 - np.asarray(Image.open(paths[2]))).save(negative)
    result = in_process("predict", folder, negative, "--invert")
    assert result.returncode == 0, result
    assert _parsed(result)[0][1][0][0] == expected[2]


@pytest.mark.parametrize("case", ["missing-image", "folder-as-image", "not-a-run", "top-zero"])
def test_predict_refuses_bad_input_with_exit_2(run_and_images, in_process, tmp_path, case):
    folder, paths, _ = run_and_images
    args, says = {
        "missing-image": ((folder, paths[0], tmp_path / "gone.jpg"), f"{tmp_path / 'gone.jpg'} does not exist."),
        "folder-as-image": ((folder, tmp_path), f"{tmp_path} is a folder, not an image."),
        "not-a-run": ((tmp_path, paths[0]), str(tmp_path)),
        "top-zero": ((folder, paths[0], "--top", "0"), "argument --top: must be at least 1, not 0"),
    }[case]
    result = in_process("predict", *args)
    assert result.returncode == 2, result
    assert result.stdout == "", result
    assert says in result.stderr and "Traceback" not in result.stderr, result


def test_predict_refuses_a_run_whose_weights_hold_nan(run_and_images, sandbox):
    folder, paths, _ = run_and_images
    run = shutil.copytree(folder, sandbox.root / "diverged")
    weights = safetensors.torch.load_file(run / "model.safetensors")
    weights["7.bias"][2] = float("nan")
    safetensors.torch.save_file(weights, run / "model.safetensors")
    name = json.loads((run / "run.json").read_text())["name"]
    result = sandbox.run("predict", run, *paths[:2])
    assert result.returncode == 2, result
    assert result.stdout == "" and "nan%" not in result.stdout, result
    assert result.stderr == (
        f"workbench: The weights of {name} ({run / 'model.safetensors'}) hold NaN or infinite values (in layer 8 "
        f"Linear): the run diverged, so its predictions would be meaningless. Train it again with a lower "
        f"learning rate.\n"
    ), result
