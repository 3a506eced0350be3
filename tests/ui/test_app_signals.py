"""Ctrl+C and SIGTERM close the app in its own process: an idle window at once (Qt's loop no longer swallows the
signal), a window that trains once its run is stopped and saved; the exit status is the signal's."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.helpers import Sandbox


def wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl+C", "SIGTERM"])
def test_a_signal_closes_the_idle_window_within_a_second(tmp_path, signum):
    sandbox = Sandbox.make(tmp_path / "sandbox")
    shown = tmp_path / "shown.png"  # written once the window is up and its event loop waits for input
    app = sandbox.start("gui", "--dataset", "digits", "--screenshot", shown, stderr_path=tmp_path / "stderr")
    try:
        wait_for(shown, 90)
        time.sleep(0.5)
        app.send_signal(signum)
        sent = time.monotonic()
        status = app.wait(timeout=20)
        took = time.monotonic() - sent
    finally:
        app.kill()
        app.wait()
        app.stdout.close()
    name = "Ctrl+C" if signum == signal.SIGINT else "SIGTERM"
    assert status == 128 + signum, (tmp_path / "stderr").read_text()
    assert f"Stopped by {name}: the window was closed." in (tmp_path / "stderr").read_text()
    assert took < 5, took


def test_sigterm_while_a_run_trains_stops_and_saves_the_run(tmp_path):
    sandbox = Sandbox.make(tmp_path / "sandbox")
    out = tmp_path / "run"
    app = sandbox.start(
        "gui",
        "--preset",
        "cnn-small",
        "--dataset",
        "digits",
        "--epochs",
        "500",
        "--out",
        out,
        "--start",
        stderr_path=tmp_path / "stderr",
    )
    try:
        wait_for(out / "checkpoint" / "latest.json", 120)  # an epoch is done: the run trains
        app.send_signal(signal.SIGTERM)
        status = app.wait(timeout=60)
    finally:
        app.kill()
        app.wait()
        app.stdout.close()
    stderr = (tmp_path / "stderr").read_text()
    assert status == 128 + signal.SIGTERM, stderr
    assert "Stopped by SIGTERM: the window was closed; the run training was stopped after its batch and saved." in (
        stderr
    )
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "stopped" and run["metrics"]["epochs_completed"] >= 1
    assert (out / "model.safetensors").is_file()
