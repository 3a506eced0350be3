"""Tests of workbench.core.data.datasets on tiny files written here; one test reads the real Fashion-MNIST if installed."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import IDX_TEST, IDX_TRAIN, idx_bytes, idx_set, write_file, write_idx_set
from workbench.core.data import datasets
from workbench.core.data.datasets import Location
from workbench.core.errors import DatasetError

REAL_SYSTEM_ROOT = datasets.SYSTEM_ROOT


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Point the user and system roots at empty tmp folders, forget cached loads, and let nothing reach the network."""
    monkeypatch.setattr(datasets, "user_root", lambda: tmp_path / "user")
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.delenv(datasets.DATA_DIR_VARIABLE, raising=False)
    monkeypatch.setattr(datasets, "_cache", {})
    real_urlopen = urllib.request.urlopen

    def file_urls_only(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        if not url.startswith("file:"):
            raise urllib.error.URLError("tests run offline")
        response = real_urlopen(request, *args, **kwargs)
        response.length = int(response.headers["Content-length"])  # as HTTP responses have; torchvision reads it
        return response

    monkeypatch.setattr(urllib.request, "urlopen", file_urls_only)


# read_idx


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_reads_raw_and_gzipped_files(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    assert np.array_equal(datasets.read_idx(write_file(tmp_path / "images", idx_bytes(images), gz)), images)
    result = datasets.read_idx(write_file(tmp_path / "labels", idx_bytes(labels), gz))
    assert result.dtype == np.uint8 and result.shape == (3,) and result.tolist() == [7, 0, 9]


def test_read_idx_tells_gzip_by_content_not_name(tmp_path):
    labels = np.array([1, 2], dtype=np.uint8)
    assert datasets.read_idx(write_file(tmp_path / "gzipped-without-suffix", idx_bytes(labels), gz=True)).tolist() == [
        1,
        2,
    ]
    assert datasets.read_idx(write_file(tmp_path / "raw-with-suffix.gz", idx_bytes(labels))).tolist() == [1, 2]


@pytest.mark.parametrize(
    "content, message",
    [
        pytest.param(b"", "is empty", id="empty"),
        pytest.param(b"PK\x03\x04 not idx at all", "not an IDX file.*50 4b 03 04", id="bad-magic"),
        pytest.param(bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + b"\0\0\0\0", "float values.*0x0D", id="floats"),
        pytest.param(
            bytes([0, 0, 8, 3]) + struct.pack(">I", 10),
            "cut short: its header announces 3 dimensions",
            id="short-header",
        ),
        pytest.param(
            idx_bytes(np.zeros((10, 28, 28), np.uint8))[:1_250],
            "expected 7,840 bytes of pixels, found 1,234",
            id="truncated",
        ),
        pytest.param(idx_bytes(np.zeros(5, np.uint8)) + b"\0", "expected 5 bytes of labels, found 6", id="too-long"),
        pytest.param(b"\x1f\x8b" + b"garbage" * 10, "damaged gzip file", id="garbage-gzip"),
        pytest.param(gzip.compress(idx_bytes(np.zeros(100, np.uint8)))[:-12], "damaged gzip file", id="truncated-gzip"),
    ],
)
def test_read_idx_names_the_file_and_the_damage(tmp_path, content, message):
    path = write_file(tmp_path / "damaged-file", content)
    with pytest.raises(DatasetError, match=message) as caught:
        datasets.read_idx(path)
    assert str(path) in str(caught.value)


def test_read_idx_reports_crc_errors(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(np.zeros(100, np.uint8))))
    packed[-8] ^= 0xFF
    with pytest.raises(DatasetError, match="damaged gzip file.*CRC"):
        datasets.read_idx(write_file(tmp_path / "labels.gz", bytes(packed)))


# the registry


def test_registry_lists_the_five_datasets_with_ten_classes_each():
    assert datasets.dataset_names() == ["fashion-mnist", "mnist", "kmnist", "cifar10", "digits"]
    assert all(len(datasets.get_info(name).class_names) == 10 for name in datasets.dataset_names())
    assert datasets.get_info("fashion-mnist").class_names[0] == "T-shirt/top"
    assert datasets.get_info("cifar10").input_shape == (3, 32, 32)


@pytest.mark.parametrize("typo, closest", [("mnst", "mnist"), ("Fashion-MNIST", "fashion-mnist"), ("cifar", "cifar10")])
def test_unknown_name_suggests_the_closest_and_lists_all(typo, closest):
    with pytest.raises(DatasetError, match=f"Did you mean '{closest}'.*fashion-mnist, mnist, kmnist, cifar10, digits"):
        datasets.get_info(typo)


# locating


@pytest.mark.parametrize("layout", ["fashion-mnist", "FashionMNIST/raw", "."])
@pytest.mark.parametrize("gz", [False, True])
def test_load_from_data_dir_layouts(tmp_path, layout, gz):
    arrays = write_idx_set(tmp_path / "data" / layout, gz=gz)
    loaded = datasets.load("fashion-mnist", data_dir=tmp_path / "data", download=False)
    assert loaded.location == Location(tmp_path / "data" / layout, "data-dir")
    assert loaded.train_x.shape == (IDX_TRAIN, 1, 28, 28) and loaded.test_x.shape == (IDX_TEST, 1, 28, 28)
    assert loaded.train_x.dtype == torch.float32 and loaded.train_y.dtype == torch.int64
    assert loaded.train_x.is_contiguous() and loaded.train_x.device.type == "cpu"
    assert loaded.train_x[0, 0, 0, 0].item() == pytest.approx(1.0)
    assert loaded.train_x[0, 0, 0, 1].item() == pytest.approx(-1.0)
    expected = (arrays["t10k-images-idx3-ubyte"] / 255 - 0.5) / 0.5
    assert torch.allclose(loaded.test_x[:, 0], torch.from_numpy(expected).float(), atol=1e-6)
    assert loaded.train_y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert loaded.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_load_normalises_with_the_datasets_own_mean_and_std(tmp_path):
    write_idx_set(tmp_path / "mnist")
    loaded = datasets.load("mnist", data_dir=tmp_path, download=False)
    assert loaded.train_x[0, 0, 0, 0].item() == pytest.approx((1 - 0.1307) / 0.3081, rel=1e-5)
    assert loaded.train_x[0, 0, 0, 1].item() == pytest.approx(-0.1307 / 0.3081, rel=1e-5)


def test_locate_prefers_data_dir_then_user_then_system(tmp_path):
    data_dir, user, system = tmp_path / "data", tmp_path / "user", tmp_path / "system"
    for root in (data_dir, user, system):
        write_idx_set(root / "fashion-mnist")
    assert datasets.locate("fashion-mnist", data_dir) == Location(data_dir / "fashion-mnist", "data-dir")
    assert datasets.locate("fashion-mnist") == Location(user / "fashion-mnist", "user")
    (user / "fashion-mnist" / "t10k-labels-idx1-ubyte").unlink()
    assert datasets.locate("fashion-mnist") == Location(system / "fashion-mnist", "system")
    (system / "fashion-mnist" / "train-images-idx3-ubyte").unlink()
    assert datasets.locate("fashion-mnist") is None
    assert [origin for origin, _ in datasets.search_roots(data_dir)] == ["data-dir", "user", "system"]


def test_files_directly_in_a_root_count_only_in_the_data_dir(tmp_path):
    write_idx_set(tmp_path / "user")
    assert datasets.locate("mnist") is None
    assert datasets.locate("mnist", tmp_path / "user") == Location(tmp_path / "user", "data-dir")


def test_workbench_data_dir_variable_is_honoured_and_data_dir_beats_it(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "from-env" / "kmnist")
    write_idx_set(tmp_path / "from-flag" / "kmnist")
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "from-env"))
    assert datasets.locate("kmnist") == Location(tmp_path / "from-env" / "kmnist", "data-dir")
    assert datasets.locate("kmnist", tmp_path / "from-flag").path == tmp_path / "from-flag" / "kmnist"


def test_a_missing_data_dir_is_an_error(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="nowhere.*given by --data-dir"):
        datasets.locate("mnist", tmp_path / "nowhere")
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="given by WORKBENCH_DATA_DIR"):
        datasets.load("mnist")


def test_uncompressed_file_is_preferred_to_gzipped(tmp_path):
    write_idx_set(tmp_path / "mnist", gz=True)
    write_idx_set(tmp_path / "mnist", seed=1)
    loaded = datasets.load("mnist", tmp_path, download=False)
    assert loaded.test_y.tolist() == idx_set(seed=1)["t10k-labels-idx1-ubyte"].tolist()


# damaged datasets


@pytest.mark.parametrize(
    "file_name, array, message",
    [
        (
            "t10k-labels-idx1-ubyte",
            np.zeros(IDX_TEST - 1, np.uint8),
            "holds 4 labels but .*t10k-images-idx3-ubyte holds 5",
        ),
        ("train-labels-idx1-ubyte", np.full(IDX_TRAIN, 10, np.uint8), "holds the label 10, but .* 10 classes"),
        ("train-images-idx3-ubyte", np.zeros((IDX_TRAIN, 32, 32), np.uint8), "images of 1×32×32 but .* are 1×28×28"),
        ("train-images-idx3-ubyte", np.zeros((IDX_TRAIN, 784), np.uint8), "should hold images"),
    ],
)
def test_inconsistent_files_raise_naming_the_file(tmp_path, file_name, array, message):
    write_idx_set(tmp_path / "fashion-mnist")
    path = write_file(tmp_path / "fashion-mnist" / file_name, idx_bytes(array))
    with pytest.raises(DatasetError, match=message) as caught:
        datasets.load("fashion-mnist", tmp_path, download=False)
    assert str(path) in str(caught.value)


def test_a_damaged_gzip_file_in_a_dataset_is_named(tmp_path):
    write_idx_set(tmp_path / "mnist", gz=True)
    path = write_file(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", b"\x1f\x8b\x08\x00broken")
    with pytest.raises(DatasetError, match="damaged gzip") as caught:
        datasets.load("mnist", tmp_path, download=False)
    assert str(path) in str(caught.value)


# not found and downloading


def test_nothing_found_and_download_failing_names_every_way_to_get_the_data(tmp_path):
    with pytest.raises(DatasetError) as caught:
        datasets.load("fashion-mnist", progress=False)
    message = str(caught.value)
    for expected in (
        "--data-dir",
        "WORKBENCH_DATA_DIR",
        "train-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "sudo apt install dataset-fashion-mnist",
        str(tmp_path / "user"),
        "Downloading it failed: <urlopen error tests run offline>",
    ):
        assert expected in message


def test_other_datasets_point_at_their_system_folder_instead_of_apt(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_download", lambda *args: pytest.fail("download=False must not download"))
    with pytest.raises(DatasetError, match="Downloading was turned off") as caught:
        datasets.load("mnist", download=False)
    message = str(caught.value)
    assert "apt" not in message and str(tmp_path / "system" / "mnist") in message
    with pytest.raises(DatasetError, match=str(tmp_path / "system" / "cifar-10-batches-py")):
        datasets.load("cifar10", download=False)


def test_download_goes_through_torchvision_into_the_user_folder(tmp_path, monkeypatch, capsys):
    from torchvision.datasets import FashionMNIST

    arrays = idx_set(seed=3)
    mirror = tmp_path / "mirror"
    resources = []
    for name, array in arrays.items():
        packed = write_file(mirror / f"{name}.gz", idx_bytes(array), gz=True).read_bytes()
        resources.append((f"{name}.gz", hashlib.md5(packed).hexdigest()))
    monkeypatch.setattr(FashionMNIST, "mirrors", [mirror.as_uri() + "/"])
    monkeypatch.setattr(FashionMNIST, "resources", resources)

    loaded = datasets.load("fashion-mnist", progress=False)
    assert loaded.location == Location(tmp_path / "user" / "FashionMNIST" / "raw", "user")
    assert loaded.train_y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert loaded.test_x.shape == (IDX_TEST, 1, 28, 28)
    assert capsys.readouterr().err == ""


def test_second_load_is_cached_and_returns_the_same_tensors(tmp_path):
    write_idx_set(tmp_path / "mnist")
    first = datasets.load("mnist", tmp_path, download=False)
    (tmp_path / "mnist" / "train-images-idx3-ubyte").write_bytes(b"damaged after loading")
    second = datasets.load("mnist", tmp_path, download=False)
    assert second.train_x is first.train_x and second.test_y is first.test_y


# CIFAR-10


def write_cifar(folder: Path, per_batch: int = 2) -> None:
    rng = np.random.default_rng(0)
    for index, name in enumerate(datasets.CIFAR_FILES[:-1]):
        data = rng.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8)
        if index == 0:
            data[0] = np.repeat(np.array([255, 0, 51], np.uint8), 32 * 32)
        write_file(folder / name, pickle.dumps({"data": data, "labels": [index, 9]}))
    write_file(folder / "batches.meta", pickle.dumps({"label_names": list(datasets.get_info("cifar10").class_names)}))


@pytest.fixture
def cifar_without_checksums(monkeypatch):
    from torchvision.datasets import cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))


def test_cifar10_is_read_channels_first(tmp_path, cifar_without_checksums):
    write_cifar(tmp_path / "system" / "cifar-10-batches-py")
    loaded = datasets.load("cifar10", download=False)
    assert loaded.location.origin == "system"
    assert loaded.train_x.shape == (10, 3, 32, 32) and loaded.test_x.shape == (2, 3, 32, 32)
    assert loaded.train_x.is_contiguous()
    red, green, blue = loaded.train_x[0, :, 5, 7].tolist()
    assert red == pytest.approx((1 - 0.4914) / 0.2470, rel=1e-5)
    assert green == pytest.approx(-0.4822 / 0.2435, rel=1e-5)
    assert blue == pytest.approx((0.2 - 0.4465) / 0.2616, rel=1e-5)
    assert loaded.train_y.tolist() == [0, 9, 1, 9, 2, 9, 3, 9, 4, 9]


def test_damaged_cifar10_names_the_folder(tmp_path, cifar_without_checksums):
    folder = tmp_path / "user" / "cifar-10-batches-py"
    write_cifar(folder)
    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="CIFAR-10 files in .*cifar-10-batches-py are damaged"):
        datasets.load("cifar10", download=False)


# digits


def test_digits_load_offline_with_a_stable_split():
    loaded = datasets.load("digits", download=False)
    assert loaded.location == Location(None, "embedded")
    assert loaded.train_x.shape == (1437, 1, 8, 8) and loaded.test_x.shape == (360, 1, 8, 8)
    assert loaded.train_x.dtype == torch.float32 and loaded.train_y.dtype == torch.int64
    assert abs(loaded.train_x.mean().item()) < 0.01 and abs(loaded.train_x.std().item() - 1) < 0.01
    assert torch.bincount(loaded.test_y, minlength=10).min().item() >= 35
    datasets._cache.clear()
    assert torch.equal(datasets.load("digits").test_y, loaded.test_y)


# split


@pytest.fixture
def tiny(tmp_path):
    write_idx_set(tmp_path / "mnist")
    return datasets.load("mnist", tmp_path, download=False)


def test_split_draws_disjoint_subsets_of_the_asked_sizes(tiny):
    train_x, train_y, val_x, val_y = datasets.split(tiny, 7, 4, seed=1)
    assert train_x.shape == (7, 1, 28, 28) and train_y.shape == (7,)
    assert val_x.shape == (4, 1, 28, 28) and val_y.shape == (4,)
    rows = {tuple(image.flatten().tolist()) for image in torch.cat([train_x, val_x])}
    assert len(rows) == 11


def test_split_is_deterministic_per_seed(tiny):
    first, again, other = (datasets.split(tiny, 6, 3, seed) for seed in (5, 5, 6))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


def test_split_allows_no_validation_and_the_whole_training_split(tiny):
    train_x, _, val_x, val_y = datasets.split(tiny, IDX_TRAIN, 0, seed=0)
    assert train_x.shape[0] == IDX_TRAIN and val_x.shape == (0, 1, 28, 28) and val_y.shape == (0,)


@pytest.mark.parametrize(
    "train_size, val_size, message",
    [
        (
            IDX_TRAIN,
            1,
            f"asked for {IDX_TRAIN} training \\+ 1 validation images but MNIST has {IDX_TRAIN} in its training split",
        ),
        (0, 1, "at least 1"),
        (5, -1, "0 or more"),
    ],
)
def test_split_rejects_impossible_sizes(tiny, train_size, val_size, message):
    with pytest.raises(DatasetError, match=message):
        datasets.split(tiny, train_size, val_size, seed=0)


# describe


def test_describe_says_where_the_files_are_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_download", lambda *args: pytest.fail("describe must not download"))
    write_idx_set(tmp_path / "system" / "fashion-mnist", gz=True)
    line = datasets.describe("fashion-mnist")
    assert line.startswith("fashion-mnist  Fashion-MNIST")
    assert "10 classes  1×28×28" in line and line.endswith(f"found: {tmp_path / 'system' / 'fashion-mnist'} (system)")
    assert datasets.describe("mnist").endswith(f"not found: downloadable into {tmp_path / 'user'}")
    assert datasets.describe("digits").endswith("embedded (scikit-learn)")


# the real dataset


def test_real_fashion_mnist_from_the_system_folder(monkeypatch):
    if not (REAL_SYSTEM_ROOT / "fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST is not installed in /usr/share/datasets/fashion-mnist")
    monkeypatch.setattr(datasets, "SYSTEM_ROOT", REAL_SYSTEM_ROOT)
    started = time.perf_counter()
    loaded = datasets.load("fashion-mnist", download=False)
    elapsed = time.perf_counter() - started
    assert loaded.location == Location(REAL_SYSTEM_ROOT / "fashion-mnist", "system")
    assert loaded.train_x.shape == (60_000, 1, 28, 28) and loaded.test_x.shape == (10_000, 1, 28, 28)
    assert loaded.train_x.mean().item() == pytest.approx((0.286 - 0.5) / 0.5, abs=0.01)
    assert torch.bincount(loaded.train_y).tolist() == [6000] * 10
    assert elapsed < 10
