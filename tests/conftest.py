"""Shared fixtures: keep every test away from the user's real folders; find the real dataset."""

import os
from pathlib import Path

import pytest
import torch

from workbench.core.data import datasets
from workbench.core.training import devices

FASHION_MNIST = datasets.SYSTEM_ROOT / "fashion-mnist"


@pytest.fixture(autouse=True)
def _private_runs_folder(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
    monkeypatch.delenv("WORKBENCH_DATA_DIR", raising=False)


@pytest.fixture(autouse=True)
def _threads_put_back():
    """``workbench train --threads N`` run in-process sets the whole process's thread count: put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fashion_mnist() -> Path:
    """The real Fashion-MNIST of Debian's dataset-fashion-mnist; CI must have it, elsewhere the test skips."""
    if not all((FASHION_MNIST / f"{name}.gz").is_file() for name in datasets.IDX_FILES):
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the real Fashion-MNIST in {FASHION_MNIST}: apt-get install dataset-fashion-mnist")
        pytest.skip(f"real Fashion-MNIST is not installed in {FASHION_MNIST}")
    return FASHION_MNIST


@pytest.fixture
def native_cpu(monkeypatch):
    """A CPU that computes bfloat16 natively (AVX-512 BF16), whatever this one does."""
    monkeypatch.setattr(devices, "cpu_bfloat16_instructions", lambda: "AVX-512 BF16")


@pytest.fixture
def emulating_cpu(monkeypatch):
    """A CPU without AVX-512 BF16 or AMX, on which bfloat16 is only emulated."""
    monkeypatch.setattr(devices, "cpu_bfloat16_instructions", lambda: None)
