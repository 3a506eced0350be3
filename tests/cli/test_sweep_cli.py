"""``workbench sweep``: a grid trained into one folder, refused before any run when its spec is bad, and finished
with ``--resume`` after ``kill -9`` with every run exactly once."""

from __future__ import annotations

import csv
import json
import signal

import safetensors.torch
import torch

from tests.helpers import wait_until
from workbench.core.runs.folders import read_metrics, read_run

TRAIN = ("--preset", "mlp", "--dataset", "digits", "--train-size", "400", "--val-size", "60", "--batch-size", "16")


def test_bad_specs_exit_2_naming_the_key_before_any_run(in_process, sandbox):
    out = sandbox.root / "sweep"
    cases = {
        ("--vary", "optimiser=sgd,adam"): "Unknown key 'optimiser' (did you mean 'optimizer'?)",
        ("--vary", "lr=0.1,x"): "lr: 'x' is not a number",
        ("--vary", "layers.20.out_features=8"): "layers.20.out_features=8: the network 'mlp' has layers 1 to",
        ("--vary", "momentum="): "momentum: give its values",
        (): "Vary at least one key",
    }
    for extra, message in cases.items():
        result = in_process("sweep", *TRAIN, *extra, "--out", out)
        assert result.returncode == 2, result
        assert message in result.stderr, result.stderr
        assert not out.exists()
    missing_out = in_process("sweep", *TRAIN, "--vary", "lr=0.1")
    assert missing_out.returncode == 2 and "--out DIR" in missing_out.stderr


def test_a_sweep_killed_in_its_second_run_resumes_with_every_run_once_and_the_same_weights(sandbox, tmp_path):
    out = sandbox.root / "sweep"
    sweep = ("sweep", *TRAIN, "--epochs", "12", "--vary", "seed=0,1,2", "--out", out, "--quiet")
    process = sandbox.start(*sweep, stderr_path=tmp_path / "stderr")
    latest = out / "runs" / "run-002" / "checkpoint" / "latest.json"

    def second_run_half_way() -> bool:
        assert process.poll() is None, (tmp_path / "stderr").read_text()
        return latest.exists() and 3 <= json.loads(latest.read_text())["epoch"] < 12

    wait_until(second_run_half_way, 180, "a checkpoint in the middle of run-002")
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    process.stdout.close()
    assert read_run(out / "runs" / "run-002")["status"] == "running", "killed: never marked as ended"
    assert not (out / "runs" / "run-003").exists()

    resumed = sandbox.run("sweep", "--resume", out, "--quiet")
    assert resumed.returncode == 0, resumed
    assert "3 runs, 2 to train" in resumed.stdout
    with open(out / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(row["run"], row["seed"], row["status"]) for row in rows] == [
        ("run-001", "0", "finished"),
        ("run-002", "1", "finished"),
        ("run-003", "2", "finished"),
    ]
    for row in rows:
        epochs = [epoch.epoch for epoch in read_metrics(out / "runs" / row["run"])]
        assert epochs == list(range(1, 13)), (row["run"], epochs)
    assert len(read_run(out / "runs" / "run-002")["continuations"]) == 1

    straight = sandbox.run("train", *TRAIN, "--epochs", "12", "--seed", "1", "--out", sandbox.root / "straight")
    assert straight.returncode == 0, straight
    interrupted = safetensors.torch.load_file(out / "runs" / "run-002" / "model.safetensors")
    uninterrupted = safetensors.torch.load_file(sandbox.root / "straight" / "model.safetensors")
    assert interrupted.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():
        assert torch.equal(interrupted[name], tensor), f"{name} differs from the uninterrupted run's"


def test_resume_takes_no_new_settings(in_process, sandbox):
    result = in_process("sweep", "--resume", sandbox.root / "sweep", "--vary", "lr=0.1")
    assert result.returncode == 2 and "--resume finishes a sweep with the settings it was started with" in result.stderr
    result = in_process("sweep", "--resume", sandbox.root / "nothing-here")
    assert result.returncode == 2 and "holds no sweep" in result.stderr


def test_ctrl_c_stops_the_run_training_and_says_how_to_finish_the_sweep(sandbox, tmp_path):
    out = sandbox.root / "sweep"
    process = sandbox.start(
        "sweep",
        *TRAIN,
        "--epochs",
        "200",
        "--vary",
        "lr=0.01,0.02",
        "--out",
        out,
        "--quiet",
        stderr_path=tmp_path / "e",
    )
    latest = out / "runs" / "run-001" / "checkpoint" / "latest.json"
    wait_until(lambda: latest.exists(), 120, "run-001's first checkpoint")
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 130
    process.stdout.close()
    assert f"finish the sweep with: workbench sweep --resume {out}" in (tmp_path / "e").read_text()
    with open(out / "results.csv", newline="") as file:
        assert [row["status"] for row in csv.DictReader(file)] == ["stopped", "pending"]


def test_a_ready_made_comparison_runs_headless_with_its_own_network_and_values(in_process, sandbox):
    out = sandbox.root / "ready"
    small = ("--dataset", "digits", "--train-size", "200", "--val-size", "60", "--epochs", "1")
    result = in_process("sweep", "--ready-made", "sgd-momentum-adam", *small, "--out", out, "--quiet")
    assert result.returncode == 0, result
    with open(out / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["optimizer/momentum/lr"] for row in rows] == ["sgd/0/0.01", "sgd/0.9/0.01", "adam/0.9/0.001"]
    names = [read_run(out / "runs" / row["run"])["name"] for row in rows]
    assert names == ["seed-relu-mlp · SGD", "seed-relu-mlp · SGD + momentum", "seed-relu-mlp · Adam"]
    unknown = in_process("sweep", "--ready-made", "sigmoid", "--out", sandbox.root / "other")
    assert unknown.returncode == 2 and "choose one of sigmoid-vs-relu, mse-vs-cross-entropy" in unknown.stderr
    with_vary = in_process("sweep", "--ready-made", "overfitting", "--vary", "lr=0.1", "--out", sandbox.root / "x")
    assert with_vary.returncode == 2 and "give it no --vary" in with_vary.stderr
