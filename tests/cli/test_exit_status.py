"""A process that exports a trained run in the traced formats, one after another, ends with exit status 0.

The app exports in its own process, with ``export_model`` on a trained run, many times in one session. A C
extension that releases a reference it does not own shows only when the interpreter finalises ("Fatal Python
error: none_dealloc", status 134, after everything had worked), so the exports run in a child process here
and its exit status is the test, three times over.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.helpers import Sandbox

FORMATS = ("onnx", "pt2", "python")
TRAIN = "train --preset cnn-small --dataset digits --train-size 300 --val-size 50 --epochs 1 --seed 2 --quiet"

EXPORT_EVERY_FORMAT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from workbench.core.export.formats import export_model
    from workbench.core.runs.trained import load_trained

    trained = load_trained(Path(sys.argv[1]))
    for format in sys.argv[3:]:
        folder = Path(sys.argv[2]) / format
        folder.mkdir()
        print(export_model(trained, format, folder).message, flush=True)
    """
)


@pytest.fixture(scope="module")
def sandbox_with_a_run(tmp_path_factory) -> tuple[Sandbox, Path]:
    """A sandbox and a digits run in it, trained by the console script (one epoch on 300 images)."""
    sandbox = Sandbox.make(tmp_path_factory.mktemp("exit-status"))
    return sandbox, sandbox.trained_run(TRAIN)


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_a_process_exporting_onnx_pt2_and_python_exits_with_status_0(sandbox_with_a_run, tmp_path, attempt):
    sandbox, run = sandbox_with_a_run
    done = sandbox.run_python(EXPORT_EVERY_FORMAT, run, tmp_path, *FORMATS)
    report = f"exit status {done.returncode}\n--- stdout ---\n{done.stdout}--- stderr ---\n{done.stderr}"
    assert done.returncode == 0, report
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["Wrote"] * len(FORMATS), report
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(FORMATS)
