"""Ctrl+C and SIGTERM on ``workbench train``, in real processes, at every moment of a run: while the dataset loads,
mid-run, during the test evaluation, and twice. Each ends within a couple of seconds of the signal, with one line on
stderr and no traceback, exit status 130 (Ctrl+C) or 143 (SIGTERM), and a run folder saved as stopped that can be
continued where an epoch had ended.

The moments that are too short on the digits to hit (the loading, the test evaluation) are stretched by test hooks:
:data:`ENTRY` is ``workbench`` with callbacks handed to ``cli.main``, as a script of a user's would.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import EPOCH_LINE, Sandbox
from workbench.core.runs.launch import read_continuation

SECONDS_TO_EXIT = 2.5
"""How soon after the signal the process must have ended. The stop itself takes a batch or an evaluation chunk;
most of this is Python taking torch and scikit-learn down at exit, a second or more on a busy machine."""

LONG_RUN = ("--dataset", "digits", "--epochs", "1000", "--train-size", "1400", "--val-size", "37", "--quiet")
SHORT_RUN = ("--dataset", "digits", "--train-size", "300", "--val-size", "50", "--quiet")

ENTRY = textwrap.dedent(
    """
    import os, sys, time

    from workbench import cli
    from workbench.core.training import engine, evaluation
    from workbench.core.training.engine import Callback

    hook = os.environ["WORKBENCH_TEST_HOOK"]


    class SlowTest(Callback):
        def on_test_progress(self, trainer, state, done, total):
            print(f"tested {done}", flush=True)
            time.sleep(0.1)


    class BusyInEpochTwo(Callback):
        def on_batch_end(self, trainer, state):
            if state.epoch == 2:
                print("busy", flush=True)
                time.sleep(60)


    factories = []
    if hook == "slow-load":  # the dataset takes a minute to load
        real_prepare = engine.prepare_data

        def slow_prepare(config, progress=True):
            print("loading", flush=True)
            time.sleep(60)
            return real_prepare(config, progress)

        engine.prepare_data = slow_prepare
    elif hook == "slow-test":  # the test split is scored ten images at a time, a tenth of a second each
        evaluation.EVAL_BATCH = 10
        factories.append(lambda trainer: SlowTest())
    elif hook == "busy":  # the run does not reach its next batch for a minute
        factories.append(lambda trainer: BusyInEpochTwo())
    sys.exit(cli.main(sys.argv[1:], callbacks=factories))
    """
)


class Training:
    """``workbench train ARGS`` in its own process (or the :data:`ENTRY` script with ``hook``): stdout read line by
    line, stderr into a file."""

    def __init__(self, sandbox: Sandbox, *args: str | os.PathLike, hook: str | None = None):
        self.stderr_path = sandbox.root / "stderr.txt"
        command = ["-c", ENTRY] if hook else ["-m", "workbench"]
        env = sandbox.env(**({"WORKBENCH_TEST_HOOK": hook} if hook else {}))
        with open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, *command, "train", *map(os.fspath, args)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
                env=env,
                cwd=sandbox.root,
                bufsize=1,
            )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, pattern: str, timeout: float = 120) -> str:
        """The first line of stdout matching ``pattern`` (a regular expression, in full)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"ended before {pattern!r}: {self.seen} {self.stderr_path.read_text()}"
            self.seen.append(line)
            if re.fullmatch(pattern, line):
                return line

    def interrupt(self, signum: int = signal.SIGINT) -> float:
        """Send ``signum``; when it was sent."""
        self.process.send_signal(signum)
        return time.monotonic()

    def end(self, sent: float) -> tuple[int, float, str]:
        """Wait for the process: its exit status, the seconds since ``sent``, and its stderr."""
        try:
            returncode = self.process.wait(timeout=90)
            seconds = time.monotonic() - sent
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=10)
        while (line := self.lines.get(timeout=1)) is not None:
            self.seen.append(line)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return returncode, seconds, self.stderr_path.read_text()


def only_run_folder(sandbox: Sandbox) -> Path:
    [folder] = sandbox.run_folders()
    return folder


def assert_no_partial_files(folder: Path) -> None:
    partial = [path.name for path in folder.rglob(".*.tmp")]
    assert partial == [], partial


@pytest.mark.parametrize(
    "signum, name, status",
    [(signal.SIGINT, "Ctrl\\+C", 130), (signal.SIGTERM, "SIGTERM", 143)],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_mid_run_stops_it_at_once_saved_and_resumable(sandbox, signum, name, status):
    training = Training(sandbox, *LONG_RUN)
    training.wait_for(EPOCH_LINE.pattern)
    returncode, seconds, stderr = training.end(training.interrupt(signum))

    assert returncode == status, (returncode, stderr, training.seen)
    assert seconds < SECONDS_TO_EXIT, f"{seconds:.1f} s after the signal"
    [line] = stderr.splitlines()
    folder = only_run_folder(sandbox)
    stopped = re.fullmatch(
        rf"Stopped by {name} after epoch (\d+); continue with: workbench train --resume (\S+) --epochs (\d+)", line
    )
    assert stopped, stderr
    epochs = int(stopped[1])
    assert Path(stopped[2]) == folder and int(stopped[3]) == 1000 - epochs
    assert "Traceback" not in "\n".join(training.seen)
    assert len([line for line in training.seen if EPOCH_LINE.fullmatch(line)]) == epochs >= 1
    assert not any(line.startswith("test accuracy") for line in training.seen), "a stopped run is not tested"

    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "stopped" and run["metrics"]["epochs_completed"] == epochs, run
    assert run["metrics"]["test_accuracy"] is None and not (folder / "evaluation.json").exists()
    assert (folder / "model.safetensors").stat().st_size > 0
    assert read_continuation(folder, 1).checkpoint.epoch == epochs
    assert_no_partial_files(folder)


def test_ctrl_c_while_the_dataset_loads_ends_with_one_line_and_no_run_folder(sandbox):
    training = Training(sandbox, *SHORT_RUN, hook="slow-load")
    training.wait_for("loading")
    returncode, seconds, stderr = training.end(training.interrupt())

    assert returncode == 130, (returncode, stderr)
    assert seconds < SECONDS_TO_EXIT, f"{seconds:.1f} s after the signal"
    assert stderr == "Stopped by Ctrl+C before training began; no run folder was made.\n"
    assert sandbox.run_folders() == []


@pytest.mark.parametrize("signum, name, status", [(signal.SIGINT, "Ctrl+C", 130), (signal.SIGTERM, "SIGTERM", 143)])
def test_a_signal_while_the_program_starts_ends_with_one_line(sandbox, signum, name, status):
    training = Training(sandbox, *SHORT_RUN)
    time.sleep(0.5)  # Python is importing PyTorch: seconds before the command line runs
    returncode, seconds, stderr = training.end(training.interrupt(signum))

    assert returncode == status, (returncode, stderr)
    assert seconds < SECONDS_TO_EXIT, f"{seconds:.1f} s after the signal"
    assert stderr == f"Stopped by {name} while starting; nothing was written.\n"
    assert sandbox.run_folders() == []


def test_ctrl_c_during_the_test_evaluation_ends_it_at_the_next_chunk(sandbox):
    training = Training(sandbox, *SHORT_RUN, "--epochs", "1", hook="slow-test")
    training.wait_for("tested 10")
    returncode, seconds, stderr = training.end(training.interrupt())

    assert returncode == 130, (returncode, stderr, training.seen)
    assert seconds < SECONDS_TO_EXIT, f"{seconds:.1f} s after the signal"
    folder = only_run_folder(sandbox)
    assert stderr == (
        f"Stopped by Ctrl+C during the test evaluation after the last epoch (1): the test accuracy was not measured; "
        f"run folder: {folder}\n"
    )
    tested = [line for line in training.seen if line.startswith("tested")]
    assert len(tested) <= 3, "the evaluation ends at the next chunk, not after all 36"
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "stopped" and run["metrics"]["epochs_completed"] == 1, run
    assert run["metrics"]["test_accuracy"] is None and not (folder / "evaluation.json").exists()
    assert (folder / "model.safetensors").is_file() and read_continuation(folder, 1).checkpoint.epoch == 1


def test_a_second_ctrl_c_exits_at_once_with_the_folder_saved_as_stopped(sandbox):
    training = Training(sandbox, *SHORT_RUN, "--epochs", "3", hook="busy")
    training.wait_for("busy")
    training.interrupt()
    time.sleep(0.5)
    assert training.process.poll() is None, "the first Ctrl+C waits for the current batch"
    returncode, seconds, stderr = training.end(training.interrupt())

    assert returncode == 130, (returncode, stderr)
    assert seconds < 1.0, f"{seconds:.1f} s after the second Ctrl+C"
    folder = only_run_folder(sandbox)
    assert stderr == (
        f"Stopped at once by a second Ctrl+C; the run folder {folder} is saved as stopped, with its checkpoint of "
        f"epoch 1.\n"
    )
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "stopped" and run["message"] == "Stopped at once by a second Ctrl+C.", run
    assert read_continuation(folder, 1).checkpoint.epoch == 1
    assert_no_partial_files(folder)
