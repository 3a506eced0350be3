"""The session's estimate of the next run: measured for what is shown, dropped when stale, quiet while training."""

from __future__ import annotations

import re

import torch

from tests.session.test_session import HeldRunner, digits_session
from workbench.core.presets import load_preset
from workbench.core.runs.launch import read_continuation
from workbench.core.training import devices
from workbench.core.training.config import TrainConfig
from workbench.session.estimates import MEASURING
from workbench.session.phase import Phase
from workbench.session.session import Session
from workbench.session.tasks import InlineRunner

ESTIMATE = re.compile(r"Estimated: (under 1 s|about [\d a-z]+) on this CPU, (\d+) epochs?")


def lines_of(session: Session) -> list[str]:
    lines: list[str] = []
    session.estimates.changed.connect(lines.append)
    return lines


def test_the_estimate_is_measured_for_the_network_and_settings_shown(tmp_path):
    session = digits_session(tmp_path, epochs=7)
    lines = lines_of(session)
    session.request_estimate()
    assert lines[0] == MEASURING
    match = ESTIMATE.fullmatch(lines[-1])
    assert match and match.group(2) == "7", lines
    assert session.estimates.latest is not None and session.estimates.latest.epochs == 7


def test_a_new_request_drops_the_measurement_before_it(tmp_path):
    runner = HeldRunner()
    session = digits_session(tmp_path)
    session.runner = session.estimates.work.runner = runner
    session.request_estimate()
    first = runner.held[0]
    session.edit_config(TrainConfig(dataset="digits", train_size=500, val_size=100, epochs=3))
    session.request_estimate()
    assert first.state.cancelled and len(runner.held) == 2
    runner.finish()  # the stale one, cancelled: it tells nothing
    assert session.estimates.line == MEASURING
    runner.finish()
    assert ESTIMATE.fullmatch(session.estimates.line).group(2) == "3"


def test_no_estimate_for_a_network_that_does_not_fit_or_settings_out_of_range(tmp_path):
    session = digits_session(tmp_path)
    session.request_estimate()
    assert session.estimates.line.startswith("Estimated:")
    session.edit_config(TrainConfig(dataset="digits", lr=-1.0))
    session.request_estimate()
    assert session.estimates.line == "" and session.estimates.latest is None
    session.edit_config(TrainConfig(dataset="digits", train_size=500, val_size=100, epochs=2))
    session.edit_architecture(load_preset("seed-relu-mlp").copy())
    broken = session.architecture.copy()
    broken.layers[1].params["in_features"] = 5  # does not follow Flatten's 64 outputs
    session.edit_architecture(broken)
    session.request_estimate()
    assert not session.report.ok and session.estimates.line == ""


def test_starting_a_run_stops_the_measurement_and_none_is_made_while_it_trains(tmp_path):
    runner = HeldRunner()
    session = digits_session(tmp_path)
    session.runner = session.estimates.work.runner = runner
    session.request_estimate()
    measuring = runner.held[0]
    session.start_training()
    assert measuring.state.cancelled and session.phase is Phase.TRAINING and session.estimates.line == ""
    session.request_estimate()
    assert len(runner.held) == 2 and session.estimates.line == ""  # the run only


def test_a_continued_run_keeps_the_precision_it_was_started_in(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "cpu_bfloat16_instructions", lambda: "AVX-512 BF16")
    session = Session(InlineRunner(), runs_out=tmp_path / "run")
    session.load_dataset("digits")
    session.load_preset("seed-relu-mlp")
    session.edit_config(TrainConfig(dataset="digits", train_size=300, val_size=60, epochs=1))
    session.start_training()
    assert session.last_end is not None and session.last_end.status == "finished"
    monkeypatch.setattr(devices, "cpu_bfloat16_instructions", lambda: None)  # the same run on another machine
    continuation = read_continuation(tmp_path / "run", 1)
    assert continuation.config.mixed_precision == "on"
    assert devices.choose_precision(continuation.config.mixed_precision, torch.device("cpu")).dtype == torch.bfloat16
    asked = read_continuation(tmp_path / "run", 1, {"mixed_precision": "auto"})
    assert asked.config.mixed_precision == "auto"  # typed again, auto chooses anew


def test_no_measurement_starts_once_the_session_has_shut_down(tmp_path):
    runner = HeldRunner()
    session = digits_session(tmp_path)
    session.runner = session.estimates.work.runner = runner
    session.request_estimate()
    session.shutdown()  # the window closes; its debounce timer may still fire afterwards
    assert runner.held[0].state.cancelled
    session.request_estimate()
    assert len(runner.held) == 1 and session.estimates.line == ""
