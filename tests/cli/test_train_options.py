"""``workbench train``'s execution options and settings file, run in this process (``cli.main``) on the CPU:
--mixed-precision (on a CPU that computes bfloat16 natively and one that emulates it), --threads, the estimate
line, --compile (made to fail, to see the fallback), running out of memory, --config."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from workbench import cli
from workbench.core.data import datasets
from workbench.core.presets import load_preset
from workbench.core.training.engine import Callback, Trainer
from workbench.core.training.threads import physical_cores, usable_cpus

SMALL = [
    "--dataset",
    "digits",
    "--train-size",
    "300",
    "--val-size",
    "60",
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--device",
    "cpu",
    "--quiet",
]


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"-> exit {self.status}\n--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"


@pytest.fixture
def workbench(tmp_path, monkeypatch, capsys):
    """``workbench ARGS`` in this process, in a sandbox (HOME and the runs folder in tmp)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / "data"))
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "runs"))
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "_cache", {})

    def run(*args) -> Result:
        capsys.readouterr()
        try:
            status = cli.main([os.fspath(arg) for arg in args])
        except SystemExit as exit_:  # argparse
            status = exit_.code
        out, err = capsys.readouterr()
        return Result(status, out, err)

    return run


def read_run(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def test_on_a_native_cpu_the_first_lines_say_bfloat16_why_the_threads_and_the_estimate(workbench, tmp_path, native_cpu):
    result = workbench("train", *SMALL, "--preset", "cnn-small", "--out", tmp_path / "run")
    assert result.status == 0, result
    first, second = result.stdout.splitlines()[:2]
    threads = physical_cores()
    assert (
        f", device cpu, bfloat16 (this CPU computes it natively, with AVX-512 BF16), channels-last, "
        f"{threads} thread{'s' if threads > 1 else ''} (all physical cores). Run folder:" in first
    )
    assert re.fullmatch(r"Estimated time: (under 1 s|about \d+ s) on this CPU, 2 epochs\.", second), second
    run = read_run(tmp_path / "run")
    assert run["config"]["mixed_precision"] == "auto"
    assert run["execution"] == {
        "precision": "bfloat16",
        "precision_reason": "this CPU computes it natively, with AVX-512 BF16",
        "channels_last": True,
        "threads": threads,
        "compile": False,
        "processes": 1,
    }


def test_where_bfloat16_is_emulated_the_default_is_float32_and_says_why(workbench, tmp_path, emulating_cpu):
    result = workbench("train", *SMALL, "--out", tmp_path / "run")
    assert result.status == 0, result
    assert (
        ", device cpu, float32 (this CPU has no AVX-512 BF16 or AMX, so bfloat16 would be slower), "
        in (result.stdout.splitlines()[0])
    )
    assert read_run(tmp_path / "run")["execution"]["precision"] == "float32"


def test_mixed_precision_on_where_it_is_emulated_trains_and_says_it_is_slower(workbench, tmp_path, emulating_cpu):
    result = workbench("train", *SMALL, "--mixed-precision", "on", "--out", tmp_path / "run")
    assert result.status == 0, result
    assert (
        "bfloat16 (as asked, but this CPU has no AVX-512 BF16 or AMX and only emulates it: slower than float32)"
        in (result.stdout.splitlines()[0])
    )
    assert "note: Mixed precision is on as asked, but this CPU has no native bfloat16" in result.stderr
    run = read_run(tmp_path / "run")
    assert run["status"] == "finished" and run["execution"]["precision"] == "bfloat16"


def test_threads_typed_are_the_threads_the_run_computes_with(workbench, tmp_path):
    seen = []

    class Threads(Callback):
        def on_batch_end(self, trainer, state):
            seen.append(torch.get_num_threads())

    result = cli.main(
        ["train", *SMALL, "--threads", "1", "--out", str(tmp_path / "run")], callbacks=[lambda trainer: Threads()]
    )
    assert result == 0
    assert seen and set(seen) == {1}
    assert read_run(tmp_path / "run")["execution"]["threads"] == 1


@pytest.mark.parametrize("count", ["0", "-1", str(os.cpu_count() + 1), "two"])
def test_an_impossible_thread_count_exits_2_with_the_range(workbench, tmp_path, count):
    result = workbench("train", *SMALL, "--threads", count, "--out", tmp_path / "run")
    assert result.status == 2, result
    if count == "two":
        assert "argument --threads: 'two' is not a whole number" in result.stderr
    else:
        assert f"argument --threads: must be between 1 and {usable_cpus()}" in result.stderr
        assert f"not {count}." in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_failing_compile_is_a_note_and_the_run_goes_on(workbench, tmp_path, monkeypatch):
    def broken(module, **options):
        def compiled(inputs):
            raise RuntimeError("inductor: no C++ compiler found")

        return compiled

    monkeypatch.setattr(torch, "compile", broken)
    result = workbench("train", *SMALL, "--compile", "--out", tmp_path / "run")
    assert result.status == 0, result
    assert (
        "note: torch.compile failed (RuntimeError: inductor: no C++ compiler found); the run goes on without "
        "it" in result.stderr
    )
    assert "torch.compile" in result.stdout.splitlines()[0]
    run = read_run(tmp_path / "run")
    assert run["status"] == "finished" and run["config"]["compile"] is True


def test_running_out_of_gpu_memory_exits_2_with_advice_and_the_run_marked_failed(workbench, tmp_path, monkeypatch):
    real_step = Trainer._step
    steps = []

    def step(self, *args):
        steps.append(1)
        if len(steps) == 7:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self, *args)

    monkeypatch.setattr(Trainer, "_step", step)
    result = workbench("train", *SMALL, "--out", tmp_path / "run")
    assert result.status == 2, result
    assert result.stderr.splitlines()[-1] == (
        "workbench: The GPU ran out of memory: try a smaller batch size (this run's is 64) or a smaller network."
    )
    assert "Traceback" not in result.stderr
    run = read_run(tmp_path / "run")
    assert run["status"] == "failed" and "smaller batch size" in run["message"]


def test_a_settings_file_gives_the_settings_and_typed_options_override_it(workbench, tmp_path):
    settings = tmp_path / "config.json"
    settings.write_text(
        json.dumps(
            {
                "dataset": "digits",
                "train_size": 300,
                "val_size": 60,
                "epochs": 3,
                "optimizer": "adam",
                "lr": 0.01,
                "device": "cpu",
                "compile": True,
            }
        )
    )
    # --lr 0.001 is the default value, typed: it still overrides the file's 0.01
    result = workbench(
        "train",
        "--config",
        settings,
        "--epochs",
        "1",
        "--lr",
        "0.001",
        "--no-compile",
        "--quiet",
        "--out",
        tmp_path / "run",
    )
    assert result.status == 0, result
    config = read_run(tmp_path / "run")["config"]
    assert (config["dataset"], config["optimizer"], config["train_size"]) == ("digits", "adam", 300)
    assert (config["epochs"], config["lr"], config["compile"]) == (1, 0.001, False)


def test_a_run_folders_settings_can_be_trained_again(workbench, tmp_path):
    assert workbench("train", *SMALL, "--optimizer", "rmsprop", "--out", tmp_path / "first").status == 0
    result = workbench(
        "train", "--config", tmp_path / "first" / "run.json", "--seed", "9", "--quiet", "--out", tmp_path / "second"
    )
    assert result.status == 0, result
    first, second = read_run(tmp_path / "first")["config"], read_run(tmp_path / "second")["config"]
    assert second == {**first, "seed": 9}


@pytest.mark.parametrize(
    "setup, says",
    [
        (
            lambda folder: ["--config", _write(folder / "c.json", '{"epoch": 3}')],
            "Unknown training setting 'epoch' (did you mean 'epochs'?)",
        ),
        (lambda folder: ["--config", _write(folder / "c.json", '{"lr": ')], "c.json cannot be read"),
        (lambda folder: ["--config", folder / "none.json"], "There is no settings file"),
        (
            lambda folder: ["--config", _write(folder / "c.json", '{"mixed_precision": "fp8"}')],
            "Unknown mixed_precision 'fp8'",
        ),
        (
            lambda folder: ["--resume", folder, "--config", _write(folder / "c.json", "{}")],
            "--config sets up a new run; --resume continues a run with its own settings",
        ),
    ],
)
def test_bad_settings_files_are_refused_with_a_message(workbench, tmp_path, setup, says):
    result = workbench("train", *setup(tmp_path))
    assert result.status == 2, result
    assert result.stderr.startswith("workbench: ") and says in result.stderr, result
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_settings_and_architecture_files_starting_with_a_byte_order_mark_are_read(workbench, tmp_path):
    settings = tmp_path / "config.json"
    settings.write_text(json.dumps({"dataset": "digits", "train_size": 300, "val_size": 60, "epochs": 1}), "utf-8-sig")
    network = tmp_path / "net.json"
    network.write_text(load_preset("seed-relu-mlp").to_json(), "utf-8-sig")
    result = workbench("train", "--config", settings, "--arch", network, "--quiet", "--out", tmp_path / "run")
    assert result.status == 0, result
    run = read_run(tmp_path / "run")
    assert (run["config"]["dataset"], run["config"]["train_size"], run["config"]["epochs"]) == ("digits", 300, 1)
    assert run["architecture"]["name"] == "seed-relu-mlp"


@pytest.mark.parametrize(
    "sizes, says",
    [
        (
            ["--val-size", "1797"],
            "You asked for 1,797 validation images but Digits has 1,437 in its training split, which leaves none "
            "to train on: ask for at most 1,436 validation images.",
        ),
        (
            ["--train-size", "1437", "--val-size", "1797"],
            "You asked for 1,437 training + 1,797 validation images but Digits has 1,437 in its training split: "
            "the two add up to 3,234; ask for at most 1,437 together.",
        ),
    ],
)
def test_sizes_larger_than_the_training_split_say_what_they_add_up_to(workbench, tmp_path, sizes, says):
    result = workbench("train", "--dataset", "digits", *sizes, "--device", "cpu", "--quiet")
    assert result.status == 2, result
    assert result.stderr == f"workbench: {says}\n", result
    assert not (tmp_path / "runs").exists()
