"""``workbench search``: refused before any trial when its spec is bad or another study's, shared by two processes
started together with every trial created and trained once, and stopped by Ctrl+C saying how to go on."""

from __future__ import annotations

import csv
import fcntl
import os
import signal
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from tests.helpers import wait_until
from workbench.core.experiments import search as searching
from workbench.core.experiments.search import STUDY_NAME, Search, SearchSpec, default_storage, parse_space
from workbench.core.presets import load_preset
from workbench.core.runs.folders import read_metrics, read_run
from workbench.core.training.config import TrainConfig

TRAIN = (
    *("--preset", "mlp", "--dataset", "digits", "--train-size", "400", "--val-size", "60", "--batch-size", "16"),
    *("--mixed-precision", "off"),  # bfloat16 on a CPU is slower for so small a network
)


def test_the_help_names_the_files_a_search_writes(in_process):
    result = in_process("search", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for name in (searching.SEARCH_FILE, searching.STUDY_FILE, searching.RESULTS_FILE, "runs/trial-001"):
        assert name in text, name
    assert "--space KEY=LOW:HIGH[:log]|KEY=V1,V2,..." in text and "--trials N" in text and "--storage URL" in text


def test_bad_specs_exit_2_naming_the_key_before_any_trial(in_process, sandbox):
    out = sandbox.root / "search"
    cases = {
        ("--space", "optimiser=sgd,adam"): "Unknown key 'optimiser' (did you mean 'optimizer'?)",
        ("--space", "lr=0.1:x"): "lr: 'x' is not a number",
        ("--space", "batch-size=8:64.5"): "batch-size: '64.5' is not a whole number",
        ("--space", "layers.20.out_features=8:64"): "layers.20.out_features=8: the network 'mlp' has layers 1 to 7",
        ("--space", "momentum="): "momentum: give its values",
        ("--space", "optimizer=adam"): "optimizer: give at least two values to choose from",
        ("--space", "lr=0.1:0.01"): "lr: the range's low end must be below its high end",
        ("--space", "weight-decay=0:0.1:log"): "weight-decay: a log range needs a low end above 0",
        ("--space", "lr=1e-3:1e-1", "--trials", "0"): "--trials must be a whole number of at least 1",
        ("--space", "lr=1e-3:1e-1", "--val-size", "0"): "maximises the validation accuracy: give a validation size",
        ("--trials", "3"): "Search at least one key",
        ("--space", "lr=1e-3:1e-1"): "Give the number of trials in the study with --trials N",
    }
    for extra, message in cases.items():
        trials = () if "--trials" in extra or extra == ("--space", "lr=1e-3:1e-1") else ("--trials", "3")
        result = in_process("search", *TRAIN, *extra, *trials, "--out", out)
        assert result.returncode == 2, result
        assert message in result.stderr, result.stderr
        assert not out.exists(), extra
    missing_out = in_process("search", *TRAIN, "--space", "lr=1e-3:1e-1", "--trials", "3")
    assert missing_out.returncode == 2 and "--out DIR" in missing_out.stderr


def test_a_study_that_searches_something_else_is_refused_before_any_trial(in_process, sandbox):
    out = sandbox.root / "search"
    config = TrainConfig(dataset="digits", train_size=400, val_size=60, batch_size=16, mixed_precision="off")
    Search.open(out, SearchSpec(load_preset("mlp"), config, (parse_space("lr=1e-3:1e-1:log"),), 2))
    result = in_process("search", *TRAIN, "--space", "lr=1e-3:1e-2:log", "--trials", "2", "--out", out)
    assert result.returncode == 2, result
    assert "searches lr=0.001:0.1:log, not lr=0.001:0.01:log: give the same --space" in result.stderr
    result = in_process("search", *TRAIN, "--space", "lr=1e-3:1e-1:log", "--seed", "5", "--trials", "2", "--out", out)
    assert result.returncode == 2 and "other settings: seed 0 (here 5)" in result.stderr, result
    assert not (out / "runs").exists()


def _waiting_for_lock(lock: Path) -> int:
    """How many processes are blocked on the ``flock`` of ``lock`` (Linux's /proc/locks marks them ``->``)."""
    inode = os.stat(lock).st_ino
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if "->" in line and line.split()[-3].endswith(f":{inode}"))


def test_two_processes_started_together_share_one_study_with_every_trial_created_and_trained_once(sandbox, tmp_path):
    out = sandbox.root / "search"
    database = tmp_path / "shared" / "study.db"
    database.parent.mkdir()
    search = (
        *("search", *TRAIN, "--epochs", "2", "--space", "lr=1e-3:3e-2:log", "--space", "optimizer=sgd,adam"),
        *("--trials", "4", "--storage", f"sqlite:///{database}", "--out", out, "--quiet", "--threads", "1"),
    )
    # both processes held at the study's lock until both are there: they then race to create the study
    lock = database.with_name("study.db.lock")
    with open(lock, "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        processes = [sandbox.start(*search, stderr_path=tmp_path / f"stderr-{index}") for index in (0, 1)]
        wait_until(lambda: _waiting_for_lock(lock) == 2, 120, "both processes at the study's lock")
    outputs = []
    for index, process in enumerate(processes):
        stdout, _ = process.communicate(timeout=300)
        stderr = (tmp_path / f"stderr-{index}").read_text()
        assert process.returncode == 0, (stdout, stderr)
        assert "database is locked" not in stderr and "Traceback" not in stderr, stderr
        assert "best trial: trial-00" in stdout, stdout
        outputs.append(stdout)
    assert any("4 trials (4 finished)" in stdout for stdout in outputs), "the last to end saw every trial ended"

    trials = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{database}").trials
    assert [trial.number for trial in trials] == [0, 1, 2, 3], "exactly the 4 trials asked for"
    assert [trial.state for trial in trials] == [TrialState.COMPLETE] * 4
    workers = {trial.user_attrs["worker"]["pid"] for trial in trials}
    assert workers == {process.pid for process in processes}, "both processes trained trials"
    assert sorted(path.name for path in (out / "runs").iterdir()) == [f"trial-00{n}" for n in (1, 2, 3, 4)]
    for trial in trials:
        run = out / "runs" / f"trial-{trial.number + 1:03d}"
        document = read_run(run)
        assert document["status"] == "finished" and not document.get("continuations")
        assert [epoch.epoch for epoch in read_metrics(run)] == [1, 2], "trained once"
        params = trial.params
        assert document["name"] == f"mlp · lr {params['lr']:g}, optimizer {params['optimizer']}"
        assert sum(f"[{run.name}]" in stdout for stdout in outputs) == 1, f"{run.name} started by one process"
    with open(out / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(row["run"], row["status"]) for row in rows] == [(f"trial-00{n}", "finished") for n in (1, 2, 3, 4)]
    assert [float(row["lr"]) for row in rows] == [trial.params["lr"] for trial in trials]
    assert all(0 < float(row["best_val_accuracy"]) <= 100 for row in rows)


def test_ctrl_c_stops_the_trial_training_and_says_how_to_continue(sandbox, tmp_path):
    out = sandbox.root / "search"
    process = sandbox.start(
        *("search", *TRAIN, "--epochs", "200", "--space", "lr=1e-3,1e-2", "--trials", "2", "--out", out, "--quiet"),
        stderr_path=tmp_path / "e",
    )
    latest = out / "runs" / "trial-001" / "checkpoint" / "latest.json"
    wait_until(lambda: latest.exists(), 120, "trial-001's first checkpoint")
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    status = process.wait(60)
    stdout = process.stdout.read()
    process.stdout.close()
    stderr = (tmp_path / "e").read_text()
    assert status == 130, (status, stdout, stderr)
    assert time.monotonic() - started < 30, "the run stops after its batch, not after its 200 epochs"
    assert "continue the search by running the same command again" in stderr, stderr
    assert "2 trials (2 waiting); none has finished yet." in stdout, stdout
    with open(out / "results.csv", newline="") as file:
        assert [(row["run"], row["status"]) for row in csv.DictReader(file)] == [
            ("trial-001", "waiting"),
            ("trial-002", "waiting"),
        ]
    assert read_run(out / "runs" / "trial-001")["status"] == "stopped"
    first = optuna.load_study(study_name=STUDY_NAME, storage=default_storage(out)).trials[0]
    assert first.state == TrialState.WAITING and first.params["lr"] in (1e-3, 1e-2), "it waits with its values"
