"""Continuing runs from the command line, even after the process was killed with SIGKILL."""

import json
import os
import subprocess

from tests.helpers import WORKBENCH, wait_until


def environment(tmp_path):
    return dict(
        os.environ,
        WORKBENCH_RUNS_DIR=str(tmp_path / "runs"),
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "home" / "data"),
    )


def test_a_run_killed_with_sigkill_continues_to_completion(tmp_path):
    out = tmp_path / "runs" / "killed"
    env = environment(tmp_path)
    process = subprocess.Popen(
        [
            str(WORKBENCH),
            "train",
            "--preset",
            "mlp",
            "--dataset",
            "digits",
            "--epochs",
            "1000",
            "--batch-size",
            "16",
            "--out",
            str(out),
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    latest = out / "checkpoint" / "latest.json"

    def two_epochs_saved() -> bool:
        assert process.poll() is None, "the run ended before it could be killed"
        return latest.exists() and json.loads(latest.read_text())["epoch"] >= 2

    wait_until(two_epochs_saved, 120, "a checkpoint after epoch 2")
    process.kill()
    process.wait(30)
    assert json.loads((out / "run.json").read_text())["status"] == "running", "killed: never marked as ended"
    epoch = json.loads(latest.read_text())["epoch"]

    completed = subprocess.run(
        [str(WORKBENCH), "train", "--resume", str(out), "--epochs", "2", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert f"Continuing {out} after epoch {epoch}" in completed.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["metrics"]["epochs_completed"] == epoch + 2
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, epoch + 3))

    listing = subprocess.run([str(WORKBENCH), "runs"], capture_output=True, text=True, env=env, timeout=120)
    assert listing.returncode == 0
    assert "killed" in listing.stdout and "finished" in listing.stdout


def test_continuing_a_damaged_run_is_refused_with_a_message(tmp_path):
    folder = tmp_path / "runs" / "broken"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text('{"format": "workbench-run", "status": "fin')
    env = environment(tmp_path)
    completed = subprocess.run(
        [str(WORKBENCH), "train", "--resume", str(folder), "--epochs", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "run.json is damaged" in completed.stderr and "Traceback" not in completed.stderr
    listing = subprocess.run([str(WORKBENCH), "runs"], capture_output=True, text=True, env=env, timeout=120)
    assert listing.returncode == 0 and "damaged" in listing.stdout
