"""Augmentation of training batches: each image its own draw, reproducible for a seed, shapes kept, black brought
in from outside, flips refused where they change the class, and a run that trains with it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from workbench.core.errors import ConfigError
from workbench.core.presets import load_preset
from workbench.core.training.augment import Augmenter, parse_augment
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer

BLACK = (-1.0,)


def _batch(count: int = 16, size: int = 28) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(count, 1, size, size) * 2 - 1


def test_the_names_are_parsed_in_one_order_and_unknown_ones_refused():
    assert parse_augment("none") == () and parse_augment("") == ()
    assert parse_augment("flip, crop") == ("crop", "flip") and parse_augment("erase+rotate") == ("rotate", "erase")
    with pytest.raises(ConfigError, match="Unknown augmentation 'blur'"):
        parse_augment("crop,blur")


def test_the_draws_follow_the_seed_epoch_and_batch_and_differ_between_images():
    images = _batch()
    augment = Augmenter(("crop", "flip", "rotate", "erase"), seed=7, black=BLACK)
    first = augment(images, 1, 0)
    assert first.shape == images.shape and first.dtype == images.dtype
    assert torch.equal(first, augment(images, 1, 0)), "the same seed, epoch and batch draw the same"
    assert not torch.equal(first, augment(images, 1, 1)) and not torch.equal(first, augment(images, 2, 0))
    assert not torch.equal(first, Augmenter(augment.names, seed=8, black=BLACK)(images, 1, 0))
    same = images[:1].repeat(8, 1, 1, 1)
    crops = Augmenter(("crop",), seed=7, black=BLACK)(same, 1, 0)
    assert len({tuple(crop.flatten().tolist()) for crop in crops}) > 1, "each image its own crop"


def test_crop_brings_in_black_flip_mirrors_and_erase_zeroes_a_rectangle():
    images = torch.full((64, 1, 28, 28), 0.5)
    cropped = Augmenter(("crop",), 0, BLACK)(images, 1, 0)
    assert set(cropped.unique().tolist()) <= {0.5, -1.0} and (cropped == -1.0).any()
    assert ((cropped == 0.5).flatten(1).sum(1) >= 24 * 24).all(), "a crop moves the image by at most 4 pixels"

    ramp = torch.arange(28.0).view(1, 1, 1, 28).expand(64, 1, 28, 28)
    flipped = Augmenter(("flip",), 0, BLACK)(ramp, 1, 0)
    mirrored = (flipped == ramp.flip(-1)).flatten(1).all(1)
    kept = (flipped == ramp).flatten(1).all(1)
    assert (mirrored | kept).all() and 10 < int(mirrored.sum()) < 54

    erased = Augmenter(("erase",), 0, BLACK)(images, 1, 0)
    zeroed = (erased == 0).flatten(1).sum(1)
    assert 10 < int((zeroed > 0).sum()) < 54, "about half the images get a rectangle"
    assert (zeroed <= 0.2 * 28 * 28 + 28).all()

    rotated = Augmenter(("rotate",), 0, BLACK)(images, 1, 0)
    assert rotated.shape == images.shape and rotated.min() >= -1.0 - 1e-5 and rotated.max() <= 0.5 + 1e-5


def test_flips_are_refused_where_they_change_the_class_and_a_run_records_its_augmentation():
    with pytest.raises(ConfigError, match="a horizontal flip changes what a digits image shows"):
        TrainConfig(dataset="digits", augment="crop,flip").check()
    config = TrainConfig(
        dataset="digits",
        train_size=400,
        val_size=60,
        epochs=4,
        batch_size=32,
        optimizer="adam",
        lr=3e-3,
        augment="crop,erase",
    )
    augmented = Trainer(load_preset("seed-relu-mlp"), config, progress=False).run()
    again = Trainer(load_preset("seed-relu-mlp"), config, progress=False).run()
    plain = Trainer(load_preset("seed-relu-mlp"), dataclasses.replace(config, augment="none"), progress=False).run()
    losses = [epoch.train_loss for epoch in augmented.history]
    assert losses == [epoch.train_loss for epoch in again.history], "reproducible with the run's seed"
    assert losses != [epoch.train_loss for epoch in plain.history]
    assert augmented.history[-1].val_accuracy > 0.6, "it still learns"
