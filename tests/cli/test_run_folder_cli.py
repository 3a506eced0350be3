"""The run folder from the command line: one writer at a time, never among the user's files, what a continuation
may change, and a full disk that stops a run without losing it."""

import errno
import json
import os
import signal

import numpy as np
import pytest
from PIL import Image

from tests.helpers import assert_refused, wait_until
from workbench.core.runs.folders import load_checkpoint, read_metrics, read_run
from workbench.core.runs.summaries import list_runs

TINY = ("--preset", "mlp", "--dataset", "digits", "--train-size", "300", "--val-size", "60", "--quiet")


def test_a_second_writer_is_refused_while_a_run_trains_and_welcome_once_it_is_killed(sandbox, tmp_path):
    run = sandbox.runs / "live"
    process = sandbox.start(
        "train", *TINY, "--epochs", "100000", "--batch-size", "16", "--out", run, stderr_path=tmp_path / "err"
    )
    try:
        wait_until(lambda: (run / "checkpoint" / "latest.json").exists(), 120, "the first checkpoint")
        assert_refused(
            sandbox.run("train", "--resume", run, "--epochs", "1"),
            [f"This run is being trained by process {process.pid} since "],
        )
        listing = sandbox.run("runs")
        assert f"training (process {process.pid})" in listing.stdout, listing
        assert_refused(sandbox.run("train", *TINY, "--out", run), ["already holds a run"])
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        process.stdout.close()
    assert "interrupted" in sandbox.run("runs").stdout
    resumed = sandbox.run("train", "--resume", run, "--epochs", "1")
    assert resumed.returncode == 0, resumed
    assert read_run(run)["status"] == "finished"


@pytest.mark.parametrize("out", ["", " "])
def test_an_empty_out_is_refused_and_nothing_lands_in_the_current_folder(in_process, sandbox, out):
    (sandbox.root / "mine.txt").write_text("my file")
    result = in_process("train", *TINY, "--epochs", "1", "--out", out)
    assert result.returncode == 2 and "the run folder's name is empty" in result.stderr, result
    assert sorted(path.name for path in sandbox.root.iterdir()) == ["home", "mine.txt"]


def test_a_folder_of_the_users_files_is_refused_as_the_run_folder(in_process, sandbox):
    (sandbox.root / "mine.txt").write_text("my file")
    assert_refused(
        in_process("train", *TINY, "--epochs", "1", "--out", "."), ["is not empty (it holds home, mine.txt)"]
    )
    assert sorted(path.name for path in sandbox.root.iterdir()) == ["home", "mine.txt"]


@pytest.fixture
def two_epochs(in_process, sandbox):
    run = sandbox.runs / "two"
    assert in_process("train", *TINY, "--epochs", "2", "--lr", "0.003", "--out", run).returncode == 0
    return run


def test_a_continuation_takes_a_lower_learning_rate_and_says_so(in_process, two_epochs):
    result = in_process("train", "--resume", two_epochs, "--epochs", "1", "--lr", "0.0001", "--schedule", "step")
    assert result.returncode == 0, result
    assert "Changed for the rest of the run: lr 0.003 → 0.0001, schedule none → step." in result.stdout
    assert read_metrics(two_epochs)[-1].lr == pytest.approx(1e-4)
    assert read_run(two_epochs)["continuations"][0]["changed"]["lr"] == {"from": 0.003, "to": 0.0001}


def test_a_continuation_refuses_what_would_make_it_another_run(in_process, two_epochs):
    assert_refused(
        in_process("train", "--resume", two_epochs, "--dataset", "fashion-mnist", "--seed", "4"),
        [
            "--dataset, --seed cannot change when a run is continued",
            "A continued run can change --epochs, --lr, --schedule",
        ],
    )
    assert_refused(in_process("train", "--resume", two_epochs, "--out", "x"), ["--out names the folder of a new run"])
    assert len(read_metrics(two_epochs)) == 2


def _failing_replace(folder, failing_call, real_replace):
    """``os.replace`` that fails with ENOSPC on the ``failing_call``-th replacement of a file inside ``folder``."""
    calls = 0

    def replace(source, target, *args, **kwargs):
        nonlocal calls
        if os.fspath(target).startswith(os.fspath(folder)):
            calls += 1
            if calls == failing_call:
                raise OSError(errno.ENOSPC, "No space left on device", os.fspath(target))
        return real_replace(source, target, *args, **kwargs)

    return replace


def test_every_write_of_a_run_failing_in_turn_leaves_it_resumable(in_process, sandbox, monkeypatch):
    real_replace = os.replace
    writes = []

    def counting(source, target, *args, **kwargs):
        writes.append(os.fspath(target))
        return real_replace(source, target, *args, **kwargs)

    reference = sandbox.runs / "reference"
    monkeypatch.setattr(os, "replace", counting)
    assert in_process("train", *TINY, "--epochs", "2", "--out", reference).returncode == 0
    count = sum(target.startswith(os.fspath(reference)) for target in writes)
    assert count >= 12  # the start's three files, four per epoch, the end's three

    for failing in range(1, count + 1):
        run = sandbox.runs / f"fails-at-{failing}"
        monkeypatch.setattr(os, "replace", _failing_replace(run, failing, real_replace))
        result = in_process("train", *TINY, "--epochs", "2", "--out", run)
        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr, result
        assert "The disk is full (" in result.stderr and f"MB free in {run})" in result.stderr, result
        monkeypatch.setattr(os, "replace", real_replace)
        if not run.exists():
            assert "it can start again once there is room" in result.stderr, result
            assert in_process("train", *TINY, "--epochs", "1", "--out", run).returncode == 0
            continue
        assert not list((run / "checkpoint").glob(".*.tmp")), "no temporary files left"
        _, _, checkpoint = load_checkpoint(run)
        assert f"the run stopped after epoch {checkpoint.epoch} (the last one saved)" in result.stderr
        assert read_run(run)["status"] == "stopped"
        assert [path.name.split(".")[0] for path in (run / "checkpoint").glob("epoch-*")] == [
            f"epoch-{checkpoint.epoch:04d}"
        ] * 2, "only the saved epoch's files"
        (summary,) = [summary for summary in list_runs(sandbox.runs) if summary.folder == run]
        assert not summary.damaged and summary.checkpoint_epoch == checkpoint.epoch
        resumed = in_process("train", "--resume", run, "--epochs", "1")
        assert resumed.returncode == 0, resumed
        assert [epoch.epoch for epoch in read_metrics(run)] == list(range(1, checkpoint.epoch + 2))
        assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_predict_and_export_never_read_weights_from_outside_the_run(in_process, sandbox, two_epochs, tmp_path):
    image = tmp_path / "digit.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(image)
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes((two_epochs / "model.safetensors").read_bytes())
    (two_epochs / "model.safetensors").unlink()
    (two_epochs / "model.safetensors").symlink_to(outside)
    says = ["its model.safetensors leads out of the run folder"]
    assert_refused(in_process("predict", two_epochs, image), says)
    assert_refused(in_process("export", two_epochs, "--format", "onnx", "--out", tmp_path / "m.onnx"), says)

    (two_epochs / "model.safetensors").unlink()
    latest = two_epochs / "checkpoint" / "latest.json"
    latest.write_text(json.dumps({**json.loads(latest.read_text()), "weights": str(outside)}))
    assert_refused(in_process("predict", two_epochs, image), ["is not a file name in checkpoint/"])
    assert not (tmp_path / "m.onnx").exists()
