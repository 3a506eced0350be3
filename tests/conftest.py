"""Shared fixtures: keep every test away from the user's real folders; find the real dataset."""

import os
from pathlib import Path

import pytest

from workbench.core.data import datasets

FASHION_MNIST = datasets.SYSTEM_ROOT / "fashion-mnist"


@pytest.fixture(autouse=True)
def _private_runs_folder(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
    monkeypatch.delenv("WORKBENCH_DATA_DIR", raising=False)


@pytest.fixture
def fashion_mnist() -> Path:
    """The real Fashion-MNIST of Debian's dataset-fashion-mnist; CI must have it, elsewhere the test skips."""
    if not all((FASHION_MNIST / f"{name}.gz").is_file() for name in datasets.IDX_FILES):
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the real Fashion-MNIST in {FASHION_MNIST}: apt-get install dataset-fashion-mnist")
        pytest.skip(f"real Fashion-MNIST is not installed in {FASHION_MNIST}")
    return FASHION_MNIST
