"""Shared fixtures: keep every test away from the user's real folders; find the real dataset."""

import os
import sys
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


_exit_status = {"code": None}


def pytest_sessionfinish(session, exitstatus):
    _exit_status["code"] = int(exitstatus)


def pytest_unconfigure(config):
    """Leave with pytest's own exit status once everything is reported.

    After all tests had passed, one full run crashed the interpreter while it was finalising
    ("Fatal Python error: none_dealloc", status 134): C extensions loaded in-process (PySide6,
    onnxruntime, torch.distributed) tear down in an order that one of them does not survive. The
    results are final by now, so skipping that teardown loses nothing and keeps the status honest.
    """
    if _exit_status["code"] is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status["code"])
