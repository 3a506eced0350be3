"""Image folders as datasets (``folder:PATH``), on small image trees drawn here with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import CLASSES, SIDE, draw_tree
from workbench.core.data import datasets, image_folders
from workbench.core.errors import ConfigError, DatasetError
from workbench.core.presets import load_preset, with_classes
from workbench.core.runs.folders import new_run_dir, read_run
from workbench.core.runs.recorder import RunRecorder
from workbench.core.runs.trained import evaluate_trained, load_trained
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer, prepare_data


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch):
    """Every test decodes its own folders."""
    monkeypatch.setattr(image_folders, "_decoded", {})
    monkeypatch.setattr(image_folders, "_loaded", {})


@pytest.fixture
def tree(tmp_path) -> Path:
    return draw_tree(tmp_path / "shapes")


def name_of(path: Path) -> str:
    return datasets.folder_name(path)


# Reading a folder


def test_classes_are_the_sorted_sub_folders_and_every_image_is_used(tree):
    dataset = datasets.load(name_of(tree))
    info = dataset.info
    assert info.name == f"folder:{tree.resolve()}" and info.source == "folder"
    assert info.class_names == CLASSES
    assert info.title == "Image folder shapes (3 classes, 90 images)"
    assert len(dataset.train_y) + len(dataset.test_y) == 90
    assert (info.train_count, info.test_count) == (len(dataset.train_y), len(dataset.test_y))
    assert torch.bincount(dataset.train_y).tolist() == [26, 26, 26]
    assert torch.bincount(dataset.test_y).tolist() == [4, 4, 4]  # 15% of each class
    assert dataset.location == datasets.Location(tree.resolve(), "folder")


@pytest.mark.parametrize(("channels", "expected"), [(None, 3), (1, 1), (3, 3)])
def test_images_take_the_chosen_size_and_channels(tree, channels, expected):
    dataset = datasets.load(name_of(tree), image_size=16, channels=channels)
    assert dataset.info.input_shape == (expected, 16, 16)
    assert dataset.train_x.shape[1:] == (expected, 16, 16) and dataset.train_x.dtype == torch.float32
    assert dataset.test_x.shape == (12, expected, 16, 16)


def test_automatic_channels_are_grey_when_no_image_is_in_colour(tmp_path):
    root = draw_tree(tmp_path / "grey", colour=None)
    dataset = datasets.load(name_of(root))
    assert dataset.info.input_shape == (1, 28, 28)
    assert datasets.get_info(name_of(root)).input_shape == (1, 28, 28)


def test_colour_images_keep_their_colour_and_grey_ones_their_grey(tree):
    dataset = datasets.load(name_of(tree), image_size=SIDE, channels=3)
    mean, std = (torch.tensor(values).view(1, 3, 1, 1) for values in (dataset.info.mean, dataset.info.std))
    pixels = dataset.train_x * std + mean
    stripes = pixels[dataset.train_y == CLASSES.index("stripes")]
    squares = pixels[dataset.train_y == CLASSES.index("square")]
    assert stripes[:, 0].mean() > 2 * stripes[:, 1].mean()  # red
    assert torch.allclose(squares[:, 0], squares[:, 1], atol=1e-3)  # grey: equal channels


def test_the_test_split_follows_the_seed(tree):
    name = name_of(tree)
    first = datasets.load(name, seed=1)
    image_folders.forget()  # decoded again from the files: the draw must not depend on the cache
    again = datasets.load(name, seed=1)
    other = datasets.load(name, seed=2)
    assert torch.equal(first.test_x, again.test_x) and torch.equal(first.test_y, again.test_y)
    assert not torch.equal(first.test_x, other.test_x)
    assert torch.bincount(other.test_y).tolist() == [4, 4, 4]


def test_the_same_settings_are_loaded_once(tree):
    name = name_of(tree)
    assert datasets.load(name, image_size=12) is datasets.load(f"folder:{tree}/../shapes", image_size=12)
    assert datasets.load(name, image_size=12) is not datasets.load(name, image_size=12, seed=5)


def test_normalisation_is_measured_on_the_training_portion(tree):
    dataset = datasets.load(name_of(tree), image_size=16, channels=3)
    assert len(dataset.info.mean) == len(dataset.info.std) == 3
    assert all(0 < value < 1 for value in (*dataset.info.mean, *dataset.info.std))
    per_channel = dataset.train_x.transpose(0, 1).reshape(3, -1)
    assert torch.allclose(per_channel.mean(dim=1), torch.zeros(3), atol=2e-3)
    assert torch.allclose(per_channel.std(dim=1), torch.ones(3), atol=2e-3)


def test_pixel_stats_of_constant_images_do_not_divide_by_zero():
    mean, std = image_folders.pixel_stats(np.full((4, 1, 3, 3), 51, dtype=np.uint8))
    assert mean == (0.2,) and std == (round(1 / 255, 4),)


def test_transparent_pixels_become_white_and_hidden_files_are_skipped(tmp_path):
    root = draw_tree(tmp_path / "tree", per_class=2, colour=None)
    Image.new("LA", (4, 4), (0, 0)).save(root / "circle" / "clear.png")
    (root / "circle" / "._clear.png").write_bytes(b"macOS metadata, not an image")
    (root / ".thumbnails").mkdir()
    dataset = datasets.load(name_of(root), image_size=4, channels=1, seed=0)
    assert dataset.info.class_names == CLASSES
    assert len(dataset.train_y) + len(dataset.test_y) == 7
    info = dataset.info
    restored = torch.cat([dataset.train_x, dataset.test_x]) * info.std[0] + info.mean[0]
    assert (restored.flatten(1) > 0.999).all(dim=1).any()  # the transparent image, all white


def test_get_info_and_locate_read_the_layout_only(tree):
    name = name_of(tree)
    info = datasets.get_info(name, image_size=16)
    assert info.class_names == CLASSES and info.input_shape == (3, 16, 16)
    assert (info.train_count, info.test_count) == (78, 12)
    assert info.mean == () and not image_folders._decoded  # nothing decoded
    assert datasets.locate(name) == datasets.Location(tree.resolve(), "folder")
    assert "Image folder shapes" in datasets.describe(name)


def test_relative_paths_are_made_absolute(tree, monkeypatch):
    monkeypatch.chdir(tree.parent)
    assert datasets.canonical_name("folder:shapes") == f"folder:{tree.resolve()}"
    assert TrainConfig(dataset="folder:./shapes").dataset == f"folder:{tree.resolve()}"
    assert TrainConfig(dataset="digits").dataset == "digits"


# Symbolic links: followed only inside the folder, every image counted once


def counts(root: Path) -> tuple[list[int], tuple[str, ...]]:
    """Images per class, and the notes, as the folder's layout has them."""
    layout = image_folders.scan(name_of(root))
    return np.bincount(layout.labels, minlength=len(layout.classes)).tolist(), layout.notes


def test_a_link_to_the_folder_above_a_class_changes_no_count(tmp_path):
    root = draw_tree(tmp_path / "tree", per_class=4)
    (root / "circle" / "up").symlink_to("..", target_is_directory=True)
    (root / "square" / "top").symlink_to(root, target_is_directory=True)
    (root / "stripes" / "self").symlink_to(".", target_is_directory=True)
    assert counts(root) == ([4, 4, 4], ())
    dataset = datasets.load(name_of(root), image_size=8)
    assert len(dataset.train_y) + len(dataset.test_y) == 12


def test_a_circle_of_links_is_skipped_with_a_note_not_a_traceback(tmp_path):
    root = draw_tree(tmp_path / "tree", per_class=4)
    (root / "circle" / "a.png").symlink_to("b.png")
    (root / "circle" / "b.png").symlink_to("a.png")
    (root / "square" / "deeper").mkdir()
    (root / "square" / "deeper" / "back").symlink_to("../../square", target_is_directory=True)
    found, notes = counts(root)
    assert found == [4, 4, 4]
    assert notes == (
        f"Skipped 2 links in {root} (the first: circle/a.png) that lead nowhere (to a missing file, or in a "
        f"circle of links).",
    )
    dataset = datasets.load(name_of(root), image_size=8)
    assert len(dataset.train_y) + len(dataset.test_y) == 12 and dataset.info.notes == notes


def test_links_leading_outside_the_folder_are_not_read(tmp_path):
    elsewhere = draw_tree(tmp_path / "elsewhere", classes=("circle", "moon"), per_class=3)
    root = draw_tree(tmp_path / "tree", per_class=4)
    (root / "circle" / "stray.png").symlink_to(elsewhere / "circle" / "001.png")
    (root / "moon").symlink_to(elsewhere / "moon", target_is_directory=True)  # a class folder that lies elsewhere
    found, notes = counts(root)
    assert found == [4, 4, 4] and image_folders.scan(name_of(root)).classes == CLASSES
    assert notes == (
        f"Skipped 2 links in {root} (the first: moon) that lead outside it: only images inside the dataset "
        f"folder are read; copy the images there to train on them.",
    )
    assert datasets.get_info(name_of(root)).notes == notes


def test_an_image_linked_from_another_class_counts_once_under_its_own(tmp_path):
    root = draw_tree(tmp_path / "tree", per_class=4)
    (root / "circle" / "borrowed.png").symlink_to(root / "square" / "001.png")
    (root / "circle" / "squares").symlink_to("../square", target_is_directory=True)
    (root / "stripes" / "same.jpg").hardlink_to(root / "stripes" / "000.jpg")
    layout = image_folders.scan(name_of(root))
    assert np.bincount(layout.labels).tolist() == [4, 4, 4] and layout.notes == ()
    square = CLASSES.index("square")
    assert layout.labels[layout.files.index(str(root / "square" / "001.png"))] == square
    assert not any("borrowed" in path or "squares" in path or "same.jpg" in path for path in layout.files)


def test_without_links_the_files_and_their_order_are_torchvisions(tmp_path):
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension, make_dataset

    root = draw_tree(tmp_path / "tree", per_class=6)
    for kind, nested in (("circle", "a b"), ("circle", "a"), ("square", "z/deep")):
        draw_tree(root / kind / nested, classes=("x",), per_class=2)
    layout = image_folders.scan(name_of(root))
    expected = make_dataset(
        str(root),
        {name: index for index, name in enumerate(CLASSES)},
        is_valid_file=lambda path: has_file_allowed_extension(path, IMG_EXTENSIONS),
    )
    assert list(zip(layout.files, layout.labels.tolist())) == expected


# What is refused, and why


def refusal(name: str, **options) -> str:
    with pytest.raises(DatasetError) as caught:
        datasets.load(name, **options)
    return str(caught.value)


def test_a_missing_or_empty_folder_says_what_layout_is_expected(tmp_path):
    message = refusal(name_of(tmp_path / "nowhere"))
    assert "does not exist" in message and "one sub-folder per class" in message
    (tmp_path / "empty").mkdir()
    message = refusal(name_of(tmp_path / "empty"))
    assert "has no class sub-folders" in message and f"{tmp_path / 'empty' / 'cat'}/*.png" in message
    assert "names no folder" in refusal("folder:")


def test_images_lying_directly_in_the_folder_are_pointed_out(tmp_path):
    Image.new("L", (4, 4)).save(tmp_path / "loose.png")
    assert "its images lie directly in it" in refusal(name_of(tmp_path))


def test_class_folders_without_images_are_named(tmp_path):
    for kind in ("cat", "dog"):
        (tmp_path / "empty" / kind).mkdir(parents=True)
    assert "holds no images" in refusal(name_of(tmp_path / "empty"))
    root = draw_tree(tmp_path / "tree", per_class=3)
    (root / "unicorn").mkdir()
    (root / "unicorn" / "notes.txt").write_text("no pictures yet")
    message = refusal(name_of(root))
    assert "'unicorn'" in message and "hold no images" in message


def test_a_single_class_is_refused(tmp_path):
    root = draw_tree(tmp_path / "one", classes=("circle",), per_class=5)
    assert "needs at least two classes" in refusal(name_of(root))


def test_a_class_of_one_image_is_refused(tmp_path):
    root = draw_tree(tmp_path / "tree", per_class=3)
    draw_tree(root, classes=("dot",), per_class=1)
    message = refusal(name_of(root))
    assert "'dot'" in message and "at least 2" in message


def test_unreadable_images_are_named(tree):
    bad = tree / "circle" / "notes.png"
    bad.write_text("not a picture")
    message = refusal(name_of(tree))
    assert str(bad) in message and "cannot be read" in message
    truncated = tree / "square" / "cut.png"
    truncated.write_bytes((tree / "square" / "001.png").read_bytes()[:60])
    message = refusal(name_of(tree))
    assert message.startswith("2 of the 92 images in") and "circle/notes.png" in message
    assert "square/cut.png" in message


def test_registered_datasets_take_no_image_options():
    with pytest.raises(DatasetError, match="image folders"):
        datasets.load("digits", image_size=16)
    with pytest.raises(ConfigError, match="image folders"):
        TrainConfig(dataset="digits", channels=1).check()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"image_size": 3}, "image_size must be a whole number of at least 4 and at most 256"),
        ({"image_size": 257}, "at most 256"),
        ({"channels": 2}, "channels must be 1 (grayscale) or 3 (colour)"),
        ({"channels": True}, "channels must be"),
    ],
)
def test_image_options_out_of_range_are_refused(options, expected):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(dataset="folder:/anywhere", **options).check()
    assert expected in str(caught.value)


def test_unknown_names_still_get_a_suggestion():
    with pytest.raises(DatasetError, match="Did you mean 'digits'.*folder:PATH"):
        datasets.get_info("digts")


def test_configs_written_before_image_folders_still_load():
    old = {
        key: value
        for key, value in TrainConfig(dataset="digits").to_dict().items()
        if key not in ("image_size", "channels")
    }
    config = TrainConfig.from_dict(old)
    assert (config.image_size, config.channels) == (None, None)


# Training on a folder


def test_a_network_learns_the_generated_shapes(tree, tmp_path):
    config = TrainConfig(
        dataset=f"folder:{tree}",
        image_size=16,
        epochs=3,
        batch_size=16,
        optimizer="adam",
        lr=3e-3,
        device="cpu",
        seed=3,
    )
    architecture = with_classes(load_preset("seed-relu-mlp"), len(CLASSES))
    folder = new_run_dir(tmp_path / "run", architecture, config)
    trainer = Trainer(architecture, config, callbacks=[RunRecorder(folder)], progress=False)
    result = trainer.run()
    assert result.status == "finished"
    assert result.test_accuracy >= 0.8  # chance is 1/3
    assert trainer.architecture.input_shape == (3, 16, 16)
    assert (trainer.config.image_size, trainer.config.channels) == (16, 3)  # defaults recorded as loaded
    run = read_run(folder)
    assert run["data"]["class_names"] == list(CLASSES) and run["config"]["dataset"] == f"folder:{tree.resolve()}"
    evaluation = evaluate_trained(load_trained(folder))  # the same test split again, from the run's seed
    assert evaluation.accuracy == pytest.approx(result.test_accuracy)


def test_prepare_data_draws_train_and_validation_from_the_training_portion(tree):
    data = prepare_data(TrainConfig(dataset=name_of(tree), image_size=8, seed=4), progress=False)
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (71, 7, 12)
    assert data.info.input_shape == (3, 8, 8)


def test_with_classes_resizes_a_presets_output_layer():
    preset = load_preset("seed-sigmoidnet")
    fitted = with_classes(preset, 4)
    assert fitted.num_classes == 4 and fitted.layers[-2].params["out_features"] == 4
    assert preset.num_classes == 10 and with_classes(preset, 10) is preset
