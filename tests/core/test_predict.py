"""Predicting the user's own image files with a trained run: reading, converting, and the guesses."""

import copy
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.core.errors import RunError, WorkbenchError
from workbench.core.presets import load_preset
from workbench.core.runs.folders import new_run_dir
from workbench.core.runs.predict import (
    Guess,
    ImageError,
    background_hint,
    light_backgrounds,
    load_image,
    load_images,
    predict_images,
)
from workbench.core.runs.recorder import RunRecorder
from workbench.core.runs.trained import load_trained
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer, predict

DIGITS_SHAPE = (1, 8, 8)
COUNT = 24


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A real run on digits, its in-memory model, and its first test images written as 8×8 grey PNGs."""
    root = tmp_path_factory.mktemp("predict")
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
        seed=5,
    )
    trainer = Trainer(arch, cfg, callbacks=[RunRecorder(new_run_dir(folder, arch, cfg))], progress=False)
    result = trainer.run()
    info = trainer.data.info
    originals = trainer.data.test_x[:COUNT].cpu()
    pixels = to_uint8(originals, info.mean, info.std)
    paths = []
    for index, image in enumerate(pixels):
        paths.append(root / f"digit-{index}.png")
        Image.fromarray(image[0]).save(paths[-1])
    return folder, result.model, info, originals, pixels, paths


def to_uint8(normalised: torch.Tensor, mean, std) -> np.ndarray:
    """Normalised images ``(N, C, H, W)`` back to 0–255 pixels, as a user's image file would hold them."""
    means = torch.tensor(mean).view(1, -1, 1, 1)
    stds = torch.tensor(std).view(1, -1, 1, 1)
    return torch.round((normalised * stds + means).clamp(0, 1) * 255).to(torch.uint8).numpy()


def normalise(pixels: np.ndarray, mean, std) -> torch.Tensor:
    """What the network should see for uint8 images ``(N, C, H, W)``, computed by hand."""
    means = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    stds = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (torch.from_numpy(pixels).float() / 255 - means) / stds


def test_predicting_png_files_gives_the_classes_of_the_model_in_memory(finished_run):
    folder, model, info, originals, pixels, paths = finished_run
    guesses = predict_images(load_trained(folder), paths, top_k=10)
    assert [guess.path for guess in guesses] == paths
    expected = predict(model, normalise(pixels, info.mean, info.std))
    for guess, row in zip(guesses, expected):
        names = [name for name, _ in guess.top]
        assert sorted(names) == sorted(info.class_names)
        assert names[0] == info.class_names[int(row.argmax())]
        probabilities = torch.tensor([p for _, p in sorted(guess.top, key=lambda t: info.class_names.index(t[0]))])
        assert torch.allclose(probabilities, row, atol=1e-5, rtol=0)
    # Rounding to whole pixel values changes nothing the network cares about.
    on_originals = predict(model, originals)
    clear = clear_guesses(on_originals)
    assert len(clear) >= COUNT // 2
    assert expected.argmax(1)[clear].tolist() == on_originals.argmax(1)[clear].tolist()


def clear_guesses(probabilities: torch.Tensor, margin: float = 0.05) -> list[int]:
    """Rows whose best class beats the second by ``margin``: tiny input changes cannot flip their guess."""
    best_two = probabilities.topk(2).values
    return torch.nonzero(best_two[:, 0] - best_two[:, 1] > margin).flatten().tolist()


def test_the_top_classes_come_most_probable_first_and_are_capped_at_the_classes(finished_run):
    folder, _, info, _, _, paths = finished_run
    trained = load_trained(folder)
    three = predict_images(trained, paths[:4])
    assert all(isinstance(guess, Guess) and len(guess.top) == 3 for guess in three)
    for guess in three:
        probabilities = [p for _, p in guess.top]
        assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6
    assert [len(guess.top) for guess in predict_images(trained, paths[:2], top_k=50)] == [10, 10]
    assert predict_images(trained, []) == []
    with pytest.raises(ValueError, match="at least 1"):
        predict_images(trained, paths[:1], top_k=0)


def test_an_enlarged_colour_jpeg_is_shrunk_to_the_networks_grey_input(finished_run, tmp_path):
    folder, model, info, _, pixels, _ = finished_run
    count = 12
    paths = []
    for index in range(count):
        grey = np.kron(pixels[index, 0], np.ones((12, 12), dtype=np.uint8))  # 96×96, each pixel a 12×12 block
        paths.append(tmp_path / f"big-{index}.JPG")
        Image.fromarray(np.stack([grey] * 3, axis=-1)).save(paths[-1], quality=95)
    batch = load_images(paths, DIGITS_SHAPE, info.mean, info.std)
    assert batch.shape == (count, *DIGITS_SHAPE) and batch.dtype == torch.float32
    exact = normalise(pixels[:count], info.mean, info.std)
    assert (batch - exact).abs().mean() < 0.15  # Lanczos rings a little at the edges of the enlarged pixels
    guesses = predict_images(load_trained(folder), paths, top_k=10)
    for guess in guesses:
        probabilities = [p for _, p in guess.top]
        assert all(0 <= p <= 1 for p in probabilities) and sum(probabilities) == pytest.approx(1, abs=1e-5)
    expected = predict(model, exact)
    clear = clear_guesses(expected)
    assert [guesses[i].top[0][0] for i in clear] == [info.class_names[int(expected[i].argmax())] for i in clear]


def test_invert_turns_dark_on_light_into_light_on_dark(finished_run, tmp_path):
    _, _, info, _, pixels, paths = finished_run
    negative = tmp_path / "negative.png"
    Image.fromarray(255 - pixels[0, 0]).save(negative)
    assert torch.equal(
        load_image(negative, DIGITS_SHAPE, info.mean, info.std, invert=True),
        load_image(paths[0], DIGITS_SHAPE, info.mean, info.std),
    )


def test_colour_networks_get_each_channel_normalised_with_its_own_statistics(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (5, 3), (255, 0, 51)).save(path)
    image = load_image(path, (3, 3, 5), (0.5, 0.25, 0.2), (0.5, 0.25, 0.1))
    assert image.shape == (3, 3, 5)
    assert image[:, 1, 2].tolist() == pytest.approx([1.0, -1.0, 0.0])
    grey = load_image(path, (1, 2, 2), (0.0,), (1.0,))  # Pillow's luma: 0.299 R + 0.587 G + 0.114 B
    assert grey.flatten().tolist() == pytest.approx([(0.299 * 255 + 0.114 * 51) / 255] * 4, abs=1 / 255)
    enlarged = load_image(path, (3, 9, 10), (0.5, 0.25, 0.2), (0.5, 0.25, 0.1))
    assert enlarged.shape == (3, 9, 10) and enlarged[:, 8, 9].tolist() == pytest.approx([1.0, -1.0, 0.0])


def test_transparent_pixels_count_as_white_and_16_bit_grey_keeps_its_contrast(tmp_path):
    clear = tmp_path / "clear.png"
    Image.new("LA", (8, 8), (0, 0)).save(clear)
    assert load_image(clear, DIGITS_SHAPE, (0.0,), (1.0,)).flatten().tolist() == [1.0] * 64
    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((8, 8), 128 * 257, dtype=np.uint16)).save(deep)
    assert load_image(deep, DIGITS_SHAPE, (0.0,), (1.0,)).flatten().tolist() == pytest.approx([128 / 255] * 64)


def test_a_photo_is_turned_upright_as_its_exif_orientation_says(tmp_path):
    path = tmp_path / "sideways.png"
    picture = np.zeros((8, 16), dtype=np.uint8)
    picture[:, :8] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise: the stored left half becomes the top
    Image.fromarray(picture).save(path, exif=exif)
    upright = load_image(path, (1, 16, 8), (0.0,), (1.0,))[0]
    assert upright[:8].min() == 1.0 and upright[8:].max() == 0.0


def test_files_that_are_not_images_are_refused_by_name(finished_run, tmp_path):
    _, _, info, _, _, paths = finished_run
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(paths[0].read_bytes()[:-30])  # the header, not all the pixels
    cases = {
        text: "is not a readable PNG or JPEG image",
        tmp_path / "missing.jpg": "does not exist",
        tmp_path: "is a folder, not an image",
        truncated: "is not a readable PNG or JPEG image (",
    }
    for path, says in cases.items():
        with pytest.raises(ImageError) as refused:
            load_images([paths[0], path], DIGITS_SHAPE, info.mean, info.std)
        assert str(refused.value).startswith(f"{path} {says}")
        assert isinstance(refused.value, WorkbenchError)
    with pytest.raises(ImageError, match=r"^2 of 3 images cannot be used: ") as refused:
        load_images([text, paths[0], tmp_path / "missing.jpg"], DIGITS_SHAPE, info.mean, info.std)
    assert str(text) in str(refused.value) and "missing.jpg does not exist." in str(refused.value)


def test_nothing_is_predicted_when_one_image_is_bad(finished_run, tmp_path):
    folder, _, _, _, _, paths = finished_run
    text = tmp_path / "photo.jpeg"
    text.write_text("text")
    with pytest.raises(ImageError, match="photo.jpeg is not a readable"):
        predict_images(load_trained(folder), [*paths[:3], text])


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"whatever")
    with pytest.raises(RunError, match=str(tmp_path)):
        load_trained(tmp_path)


def test_inputs_no_image_can_become_are_refused(finished_run):
    _, _, _, _, _, paths = finished_run
    with pytest.raises(RunError, match=r"1 \(grayscale\) or 3 \(colour\)"):
        load_image(paths[0], (2, 8, 8), (0.5, 0.5), (0.5, 0.5))
    with pytest.raises(RunError, match="2 means and 2 standard deviations for 3 channels"):
        load_images(paths[:1], (3, 8, 8), (0.5, 0.5), (0.5, 0.5))
    assert load_images([], (3, 4, 5), (0.5,), (0.5,)).shape == (0, 3, 4, 5)


def test_a_network_whose_weights_hold_nan_predicts_nothing(finished_run):
    folder, _, _, _, _, paths = finished_run
    trained = load_trained(folder)
    model = copy.deepcopy(trained.model)
    with torch.no_grad():
        model[0].weight[0, 0, 1, 1] = float("nan")  # every guess would be NaN: "nan%"
    with pytest.raises(RunError) as refused:
        predict_images(dataclasses.replace(trained, model=model), paths[:2])
    assert str(refused.value) == (
        f"The weights of {trained.name} hold NaN or infinite values (in layer 1 Conv2d): the run diverged, so "
        f"its predictions would be meaningless. Train it again with a lower learning rate."
    )


def test_light_backgrounds_are_told_apart_from_the_training_images_dark_ones(finished_run, tmp_path):
    _, _, info, originals, pixels, paths = finished_run
    inverted = []
    for index, image in enumerate(pixels[:3]):
        inverted.append(tmp_path / f"paper-{index}.png")
        Image.fromarray(255 - image[0]).save(inverted[-1])  # a dark digit on white paper
    ours = load_images(inverted + paths[:1], DIGITS_SHAPE, info.mean, info.std)
    assert light_backgrounds(ours, info.mean, info.std).tolist() == [True, True, True, False]
    assert not light_backgrounds(originals, info.mean, info.std).any()

    hint = background_hint(ours, originals, info.mean, info.std, "Digits", inverted=False)
    assert hint.startswith("3 of your 4 images have a light background, while Digits's training images have a dark")
    assert "tick Invert (dark on light)" in hint
    as_fed = load_images(inverted, DIGITS_SHAPE, info.mean, info.std, invert=True)
    assert background_hint(as_fed, originals, info.mean, info.std, "Digits", inverted=True) == ""
    one = load_images(paths[:1], DIGITS_SHAPE, info.mean, info.std, invert=True)
    untick = background_hint(one, originals, info.mean, info.std, "Digits", inverted=True)
    assert untick.startswith("Your image has a light background after inverting") and "untick Invert" in untick
