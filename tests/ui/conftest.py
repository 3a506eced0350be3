"""Qt tests run offscreen; a test that leaves a worker thread running fails."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from workbench.ui.worker import running_threads  # noqa: E402


@pytest.fixture(autouse=True)
def _no_leaked_threads(qapp):
    yield
    qapp.processEvents()
    assert not running_threads(), f"worker threads still running after the test: {running_threads()}"
