"""``workbench train --dataset folder:PATH``: the user's own images from the command line, in the CLI tests' sandbox."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from tests.helpers import CLASSES, TEST_LINE, assert_refused, draw_tree
from workbench import cli
from workbench.core.architecture import MAX_CLASSES
from workbench.core.data import image_folders


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch):
    monkeypatch.setattr(image_folders, "_decoded", {})
    monkeypatch.setattr(image_folders, "_loaded", {})


def test_train_on_a_folder_records_its_classes_and_continues_from_anywhere(sandbox, in_process, monkeypatch):
    tree = draw_tree(sandbox.root / "shapes")
    out = sandbox.root / "run"
    result = sandbox.run(
        "train",
        "--dataset",
        "folder:shapes",
        "--image-size",
        "16",
        "--epochs",
        "2",
        "--optimizer",
        "adam",
        "--lr",
        "3e-3",
        "--batch-size",
        "16",
        "--out",
        out,
        "--quiet",
    )
    assert result.returncode == 0, result
    assert result.lines[0].startswith(
        "seed-simplenet on Image folder shapes (3 classes, 90 images) (71 train / 7 validation / 12 test)"
    ), result
    assert TEST_LINE.fullmatch(result.lines[-2]), result
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished"
    assert run["data"]["class_names"] == list(CLASSES) and run["data"]["input_shape"] == [3, 16, 16]
    assert run["config"]["dataset"] == f"folder:{tree.resolve()}"  # relative on the command line, absolute here
    assert (run["config"]["image_size"], run["config"]["channels"]) == (16, 3)
    assert run["architecture"]["num_classes"] == 3  # the preset's output follows the folder's classes

    monkeypatch.chdir(sandbox.home)  # somewhere "shapes" means nothing
    resumed = in_process("train", "--resume", out, "--epochs", "1", "--quiet")
    assert resumed.returncode == 0, resumed
    assert json.loads((out / "run.json").read_text())["metrics"]["epochs_completed"] == 3


def test_a_bad_folder_exits_2_with_the_reason(sandbox, in_process):
    (sandbox.root / "empty").mkdir()
    assert_refused(
        in_process("train", "--dataset", "folder:empty", "--epochs", "1"),
        ["has no class sub-folders", "must hold one sub-folder per class"],
    )
    tree = draw_tree(sandbox.root / "tree", per_class=4)
    (tree / "square" / "broken.png").write_text("not an image")
    assert_refused(
        in_process("train", "--dataset", "folder:tree", "--epochs", "1", "--quiet"),
        [f"The image {tree.resolve() / 'square' / 'broken.png'} cannot be read"],
    )
    assert sandbox.run_folders() == []


def test_image_options_are_refused_for_registered_datasets(in_process):
    assert_refused(
        in_process("train", "--dataset", "digits", "--image-size", "16", "--epochs", "1"),
        ["image_size and channels apply to image folders (dataset folder:PATH) only"],
    )
    refused = in_process("train", "--dataset", "folder:x", "--channels", "2")
    assert refused.returncode == 2 and "argument --channels: invalid choice: 2" in refused.stderr


def test_gui_takes_the_same_image_options():
    args = cli._parser().parse_args(["gui", "--dataset", "folder:pictures", "--image-size", "16", "--channels", "1"])
    assert (args.dataset, args.image_size, args.channels) == ("folder:pictures", 16, 1)


def test_a_folder_of_more_classes_than_a_network_takes_is_refused_before_training(sandbox, in_process):
    root = sandbox.root / "many"
    tiny = io.BytesIO()
    Image.new("L", (4, 4), 255).save(tiny, "PNG")
    for index in range(MAX_CLASSES + 1):
        (root / f"class{index:04d}").mkdir(parents=True)
        for image in ("a.png", "b.png"):
            (root / f"class{index:04d}" / image).write_bytes(tiny.getvalue())
    assert_refused(
        in_process("train", "--dataset", "folder:many", "--epochs", "1", "--quiet"),
        [f"{root.resolve()} holds 1,001 class sub-folders", "networks of at most 1,000 classes"],
    )
    assert sandbox.run_folders() == []


def test_links_leading_outside_the_folder_are_a_note_when_training(sandbox, in_process):
    elsewhere = draw_tree(sandbox.root / "elsewhere", classes=("circle",), per_class=2)
    tree = draw_tree(sandbox.root / "tree", per_class=4)
    (tree / "circle" / "stray.png").symlink_to(elsewhere / "circle" / "001.png")
    result = in_process("train", "--dataset", "folder:tree", "--image-size", "16", "--epochs", "1", "--quiet")
    assert result.returncode == 0, result
    assert result.stdout.startswith("seed-simplenet on Image folder tree (3 classes, 12 images)"), result
    assert result.stderr.splitlines()[0] == (
        f"note: Skipped 1 link in {tree.resolve()}, circle/stray.png, that leads outside it: only images inside "
        f"the dataset folder are read; copy the images there to train on them."
    ), result
