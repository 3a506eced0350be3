"""Run folders a user can trust: one writer at a time, never among other files, nothing read from outside the
folder, every damaged case flagged, nothing left of a run stopped before its first epoch."""

import json
import os
import re
import shutil
import signal
import time

import pytest

from tests.helpers import digits_config, lock_held_elsewhere
from workbench.core.errors import RunError
from workbench.core.presets import load_preset
from workbench.core.runs.folders import delete_run, load_checkpoint, new_run_dir, read_run
from workbench.core.runs.launch import continue_run, new_run, read_continuation
from workbench.core.runs.lock import RunLock, writer_of
from workbench.core.runs.recorder import RunRecorder
from workbench.core.runs.summaries import list_runs
from workbench.core.training.callbacks import Callback


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished two-epoch run on digits, copied afresh by :func:`run_copy` for each test."""
    folder = tmp_path_factory.mktemp("safety") / "run"
    launched = new_run(load_preset("mlp"), digits_config(train_size=300, val_size=60, seed=3), folder, progress=False)
    launched.trainer.run()
    return folder


@pytest.fixture
def run_copy(trained, tmp_path):
    copy = tmp_path / "runs" / "run"
    shutil.copytree(trained, copy)
    return copy


@pytest.fixture
def holder(run_copy):
    """Another process holding the run folder's lock, as a second ``workbench train`` would."""
    with lock_held_elsewhere(run_copy) as process:
        yield process


def test_a_run_being_trained_by_another_process_is_refused_with_its_process(run_copy, holder):
    with pytest.raises(RunError) as refused:
        read_continuation(run_copy, 1)
    assert re.search(rf"being trained by process {holder.pid} since \d\d:\d\d", str(refused.value))
    with pytest.raises(RunError, match=f"process {holder.pid}"):
        RunRecorder(run_copy)  # the app's continue and every writer go through the recorder's lock
    (summary,) = list_runs(run_copy.parent)
    assert (summary.status, summary.writer) == ("training", holder.pid)
    assert summary.status_text == f"training (process {holder.pid})"


def test_a_killed_writer_leaves_no_stale_lock(run_copy, holder):
    assert writer_of(run_copy) is not None
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    assert writer_of(run_copy) is None
    result = continue_run(run_copy, 1, progress=False).trainer.run()
    assert result.status == "finished" and len(result.history) == 3


def test_the_lock_is_released_when_a_run_ends_so_the_same_process_can_continue_it(run_copy):
    for _ in range(2):
        continue_run(run_copy, 1, progress=False).trainer.run()
    assert writer_of(run_copy) is None
    assert read_run(run_copy)["metrics"]["epochs_completed"] == 4


def test_two_recorders_in_one_process_exclude_each_other(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    first = RunLock(folder).acquire()
    started = time.monotonic()
    with pytest.raises(RunError, match=f"process {os.getpid()}"):
        RunLock(folder).acquire()
    assert time.monotonic() - started < 2
    first.release()
    RunLock(folder).acquire().release()


@pytest.mark.parametrize("out", ["", "   "])
def test_an_empty_run_folder_name_is_refused(out, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="empty"):
        new_run_dir(out, load_preset("mlp"), digits_config())
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_a_folder_holding_other_files_is_refused_and_left_as_it_was(tmp_path):
    folder = tmp_path / "my-project"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(RunError, match=r"not empty \(it holds thesis.tex\)"):
        new_run(load_preset("mlp"), digits_config(), folder, progress=False)
    assert sorted(path.name for path in folder.iterdir()) == ["thesis.tex"]


def test_an_empty_folder_and_a_new_one_are_taken(tmp_path):
    (tmp_path / "empty").mkdir()
    for name in ("empty", "new/deeper"):
        assert new_run_dir(tmp_path / name, load_preset("mlp"), digits_config()).is_dir()


@pytest.mark.parametrize("pointer", ["/etc/passwd", "../../outside.safetensors", "sub/../../x"])
def test_a_checkpoint_pointer_leaving_the_folder_is_refused_everywhere(run_copy, pointer):
    outside = run_copy.parent / "outside.safetensors"
    latest_path = run_copy / "checkpoint" / "latest.json"
    shutil.copy(next((run_copy / "checkpoint").glob("*.safetensors")), outside)
    latest = json.loads(latest_path.read_text())
    latest["weights"] = pointer
    latest_path.write_text(json.dumps(latest))
    with pytest.raises(RunError, match="is not a file name in checkpoint"):
        load_checkpoint(run_copy)
    (summary,) = list_runs(run_copy.parent)
    assert summary.damaged and "not a file name" in summary.problem


@pytest.mark.parametrize("name", ["run.json", "metrics.jsonl", "model.safetensors", "checkpoint/latest.json"])
def test_a_file_linked_out_of_the_folder_makes_the_run_damaged(run_copy, tmp_path, name):
    outside = tmp_path / "elsewhere"
    outside.write_bytes((run_copy / name).read_bytes())
    (run_copy / name).unlink()
    (run_copy / name).symlink_to(outside)
    (summary,) = list_runs(run_copy.parent)
    assert summary.damaged, summary
    assert "leads out of the run folder" in summary.problem
    if name in ("run.json", "checkpoint/latest.json"):
        with pytest.raises(RunError, match="leads out of the run folder"):
            read_continuation(run_copy, 1)


def _garbage_state(run_copy):
    next((run_copy / "checkpoint").glob("*.state.pt")).write_bytes(b"not a checkpoint at all")


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda run: (run / "model.safetensors").unlink(), "final weights (model.safetensors) are missing"),
        (lambda run: (run / "architecture.json").unlink(), "architecture.json is missing"),
        (lambda run: (run / "metrics.jsonl").write_text("{garbage\n"), "metrics.jsonl cannot be read"),
        (_garbage_state, "state.pt cannot be read"),
    ],
    ids=["no weights", "no architecture", "garbage metrics", "unreadable state"],
)
def test_every_damaged_case_is_flagged_not_listed_as_finished(run_copy, damage, problem):
    damage(run_copy)
    (summary,) = list_runs(run_copy.parent)
    assert summary.status == "damaged"
    assert problem in summary.problem


def test_a_killed_run_reads_as_interrupted_and_says_where_it_can_continue(run_copy):
    document = read_run(run_copy)
    document["status"] = "running"
    del document["metrics"]
    (run_copy / "run.json").write_text(json.dumps(document))
    (run_copy / "model.safetensors").unlink()
    (summary,) = list_runs(run_copy.parent)
    assert summary.status == "interrupted"
    assert summary.problem == "its process ended without finishing (killed?); it can continue after epoch 2."


class _StopAtFirstBatch(Callback):
    def on_batch_end(self, trainer, state):
        trainer.stop()


def test_a_run_stopped_before_its_first_epoch_leaves_no_folder(tmp_path):
    folder = tmp_path / "runs" / "quick"
    launched = new_run(load_preset("mlp"), digits_config(), folder, progress=False)
    launched.trainer.callbacks.append(_StopAtFirstBatch())
    result = launched.trainer.run()
    assert result.status == "stopped" and not result.history
    assert launched.recorder is not None and launched.recorder.removed
    assert not folder.exists()
    assert list_runs(tmp_path / "runs") == []


def test_a_continuation_stopped_at_once_keeps_its_run(run_copy):
    launched = continue_run(run_copy, 3, progress=False)
    launched.trainer.callbacks.append(_StopAtFirstBatch())
    launched.trainer.run()
    assert run_copy.is_dir()
    _, _, checkpoint = load_checkpoint(run_copy)
    assert checkpoint.epoch == 2


def test_a_stopped_run_without_a_checkpoint_says_so_in_a_sentence(run_copy):
    shutil.rmtree(run_copy / "checkpoint")
    document = read_run(run_copy)
    document["status"] = "stopped"
    (run_copy / "run.json").write_text(json.dumps(document))
    (summary,) = list_runs(run_copy.parent)
    assert summary.problem == "stopped before its first epoch: nothing to continue."


def test_weights_holding_a_link_loop_or_a_directory_never_break_the_listing(run_copy):
    (run_copy / "model.safetensors").unlink()
    (run_copy / "model.safetensors").symlink_to(run_copy / "model.safetensors")
    (summary,) = list_runs(run_copy.parent)
    assert summary.damaged


def test_a_continuation_may_change_the_learning_rate_and_records_it(run_copy):
    launched = continue_run(run_copy, 2, {"lr": 1e-4, "batch_size": 32}, progress=False)
    result = launched.trainer.run()
    assert [round(epoch.lr, 10) for epoch in result.history[2:]] == [1e-4, 1e-4]
    document = read_run(run_copy)
    assert document["config"]["lr"] == 1e-4 and document["config"]["batch_size"] == 32
    (entry,) = document["continuations"]
    assert entry["after_epoch"] == 2
    assert entry["changed"]["lr"] == {"from": 3e-3, "to": 1e-4}
    assert entry["changed"]["epochs"] == {"from": 2, "to": 4}
    lines = [json.loads(line) for line in (run_copy / "metrics.jsonl").read_text().splitlines()]
    assert [line.get("changed", {}).get("lr") for line in lines] == [None, None, {"from": 3e-3, "to": 1e-4}, None]


@pytest.mark.parametrize(
    ("changes", "named"),
    [({"dataset": "fashion-mnist"}, "--dataset"), ({"seed": 9, "train_size": 100}, "--seed, --train-size")],
)
def test_a_continuation_refuses_to_change_what_the_run_is(run_copy, changes, named):
    with pytest.raises(Exception, match=f"^{named} cannot change when a run is continued"):
        read_continuation(run_copy, 1, changes)


def test_settings_given_with_their_saved_values_are_no_change(run_copy):
    continuation = read_continuation(run_copy, 1, {"seed": 3, "dataset": "digits", "lr": 3e-3})
    assert set(continuation.changed) == {"epochs"}


def test_a_run_being_trained_cannot_be_deleted(run_copy, holder):
    with pytest.raises(RunError, match=f"process {holder.pid} .*then delete it"):
        delete_run(run_copy)
    assert (run_copy / "run.json").exists()
