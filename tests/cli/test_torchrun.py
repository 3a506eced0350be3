"""``torchrun -m workbench train`` with two CPU processes (gloo), as a user starts it: the run they train
together, a process that dies, a device that is not there.

Where a test needs to look inside the ranks, torchrun starts torchrun_entry.py instead of ``-m workbench``: it runs
the same command line with test-only callbacks, with which each rank writes its final weights (so the test can
check that both ended with the same network) or rank R dies during epoch E. Every command runs in a sandbox
(HOME and the runs folder in tmp).
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import safetensors.torch
import torch

from tests import helpers
from tests.cli.torchrun_entry import EXIT_VARIABLE, WEIGHTS_VARIABLE
from workbench.core.architecture import Architecture
from workbench.core.presets import load_preset
from workbench.core.training.distributed import cluster_commands, write_handoff
from workbench.core.training.engine import Trainer

TORCHRUN = Path(sys.executable).with_name("torchrun")
ENTRY = Path(__file__).with_name("torchrun_entry.py")
TIMEOUT = 240
_LEAKY = (
    "WORKBENCH_RUNS_DIR",
    "WORKBENCH_DATA_DIR",
    "XDG_DATA_HOME",
    "PYTHONWARNINGS",
    EXIT_VARIABLE,
    WEIGHTS_VARIABLE,
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
)


def sandbox_env(root: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _LEAKY}
    env.update(
        HOME=str(root / "home"),
        XDG_DATA_HOME=str(root / "home" / "data"),
        WORKBENCH_RUNS_DIR=str(root / "runs"),
        PYTHONIOENCODING="utf-8",
        **extra,
    )
    return env


def torchrun(root: Path, args: list[str], **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TORCHRUN), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=sandbox_env(root, **extra_env),
        cwd=root,
        timeout=TIMEOUT,
    )


def with_test_hooks(args: list[str]) -> list[str]:
    """torchrun's arguments with the test entry script in place of ``-m workbench``."""
    at = args.index("-m")
    assert args[at + 1] == "workbench", args
    return [*args[:at], str(ENTRY), *args[at + 2 :]]


digits_config = partial(helpers.digits_config, epochs=3, seed=4)


def _blocks_network() -> Architecture:
    return Architecture.from_dict(copy.deepcopy(helpers.BLOCKS_DIGITS))


@pytest.mark.parametrize(
    "network", [lambda: load_preset("seed-relu-mlp"), _blocks_network], ids=["seed-relu-mlp", "residual-and-parallel"]
)
def test_two_processes_train_the_handed_off_run_like_one_process(tmp_path, network):
    config = digits_config(mixed_precision="off")  # float32, so that only the order of the sums differs (below)
    folder = write_handoff(tmp_path / "handoff", network(), config)
    command = shlex.split(cluster_commands(folder, nproc_per_node=2)["single_node"])
    assert command[0] == "torchrun"
    weights_dir = tmp_path / "weights"
    # the hand-off leaves the device to the cluster; --device cpu keeps this test on gloo where there are GPUs
    args = with_test_hooks([*command[1:], "--device", "cpu", "--quiet"])
    done = torchrun(tmp_path, args, **{WEIGHTS_VARIABLE: str(weights_dir)})
    assert done.returncode == 0, done.stdout + done.stderr

    lines = done.stdout.splitlines()
    assert sum("Run folder:" in line for line in lines) == 1, done.stdout  # rank 0 alone prints
    assert "2 processes (global batch)" in lines[0] and "shared by 2 processes" in lines[0]
    assert not any(line.startswith("Estimated time") for line in lines)  # measured in one process only
    assert sum(line.startswith("epoch ") for line in lines) == 3
    run_folder = folder / "run"
    assert sorted(path.name for path in folder.iterdir()) == ["architecture.json", "config.json", "run"]
    assert not (tmp_path / "runs").exists()  # no second run folder anywhere
    run = json.loads((run_folder / "run.json").read_text())
    assert run["status"] == "finished" and run["execution"]["processes"] == 2
    assert run["config"]["epochs"] == 3 and run["config"]["batch_size"] == 64

    rank0 = safetensors.torch.load_file(weights_dir / "rank-0.safetensors")
    rank1 = safetensors.torch.load_file(weights_dir / "rank-1.safetensors")
    saved = safetensors.torch.load_file(run_folder / "model.safetensors")
    assert rank0.keys() == rank1.keys() == saved.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]) and torch.equal(rank0[name], saved[name]), name

    # One process, same seed and global batch: each step sees the same 64 samples, so the two runs differ
    # only by the order of floating-point sums.
    single = Trainer(network(), config, progress=False).run()
    metrics = [json.loads(line) for line in (run_folder / "metrics.jsonl").read_text().splitlines()]
    for together, alone in zip(metrics, single.history):
        assert together["val_accuracy"] == pytest.approx(alone.val_accuracy, abs=0.011)
        assert together["train_loss"] == pytest.approx(alone.train_loss, rel=1e-3)
    for name, tensor in single.model.state_dict().items():
        assert torch.allclose(rank0[name], tensor, atol=1e-4), name  # 2.4e-7 measured


def test_a_process_that_dies_fails_the_run_and_never_marks_it_finished(tmp_path):
    out = tmp_path / "run"
    done = torchrun(
        tmp_path,
        [
            "--standalone",
            "--nproc-per-node=2",
            str(ENTRY),
            "train",
            "--preset",
            "seed-relu-mlp",
            "--dataset",
            "digits",
            "--train-size",
            "600",
            "--val-size",
            "100",
            "--epochs",
            "4",
            "--batch-size",
            "32",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--quiet",
        ],
        **{EXIT_VARIABLE: "1:2"},
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert "local_rank: 1" in done.stderr  # torchrun's report names the process that failed
    assert "[rank0]: Traceback" not in done.stderr
    run = json.loads((out / "run.json").read_text())
    # rank 0 notices the lost peer and marks the run failed, unless torchrun stops it first: running
    assert run["status"] in ("failed", "running"), run["status"]
    if run["status"] == "failed":
        assert "lost contact with the other processes" in run["message"]
    assert "metrics" not in run and not (out / "model.safetensors").exists()
    assert json.loads((out / "checkpoint" / "latest.json").read_text())["epoch"] == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here")
def test_a_missing_gpu_is_named_with_the_devices_there_are(tmp_path):
    done = torchrun(
        tmp_path,
        [
            "--standalone",
            "--nproc-per-node=2",
            "-m",
            "workbench",
            "train",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--device",
            "cuda",
            "--quiet",
        ],
    )
    assert done.returncode != 0
    message = "workbench: There is no device 'cuda' on this machine. Devices here: cpu (CPU)"
    # each process says it before anything starts; torchrun may end the second before it can
    assert done.stderr.count(message) >= 1, done.stderr
    assert "]: Traceback" not in done.stderr  # no process failed with a traceback ("[rank0]: Traceback ...")
    assert not (tmp_path / "runs").exists()
