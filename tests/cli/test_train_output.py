"""What ``workbench train`` says: its help (each default once), one epoch in the singular, the test split's
evaluation announced, and the callbacks a script can hand to ``cli.main``; in this process."""

from __future__ import annotations

import json
import re

import pytest
import torch

from workbench import cli
from workbench.core.training.engine import Callback, Trainer

ONE_EPOCH = ["--dataset", "digits", "--train-size", "300", "--val-size", "50", "--epochs", "1", "--device", "cpu"]


def option_entries(help_text: str) -> dict[str, str]:
    """Each option of a help text with its description, wrapped lines joined: ``{"--epochs EPOCHS": "..."}``."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in help_text.splitlines():
        if re.match(r"  -", line):
            current, _, rest = line.strip().partition("  ")
            entries[current] = [rest]
        elif current is not None and line.startswith("    "):
            entries[current].append(line.strip())
        else:
            current = None
    return {option: " ".join(" ".join(parts).split()) for option, parts in entries.items()}


@pytest.mark.parametrize("command", ["train", "predict", "export", "runs", "datasets", "gui"])
def test_every_option_shows_its_default_once_or_not_at_all(in_process, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "100")
    result = in_process(command, "--help")
    assert result.returncode == 0, result
    entries = option_entries(result.stdout)
    assert "-h, --help" in entries and len(entries) > 1, result
    assert "(default: None)" not in " ".join(entries.values()), result
    repeated = {option: text for option, text in entries.items() if text.lower().count("default") > 1}
    assert repeated == {}, result


def test_train_help_shows_the_defaults_of_the_settings(in_process, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    entries = option_entries(in_process("train", "--help").stdout)
    assert entries["--epochs EPOCHS"].endswith("(default: 10)")
    assert entries["--early-stopping PATIENCE"].endswith("(default: 0)")
    assert entries["--image-size N"].endswith("(default 28)")
    assert "default" not in entries["--config FILE"] and "default" not in entries["--quiet"]
    assert "summed over the outputs, averaged over the batch" in entries["--loss {cross-entropy,mse}"]


def test_one_epoch_is_said_in_the_singular_and_the_test_evaluation_is_announced(in_process, sandbox):
    result = in_process("train", "--preset", "seed-linear", *ONE_EPOCH, "--out", sandbox.root / "run")
    assert result.returncode == 0, result
    assert ", batch 512, 1 epoch, device cpu" in result.lines[0], result
    assert "epochs" not in result.lines[0], result
    # on stderr with the progress bar, after the epoch's bar
    assert "Evaluating on 360 test images…" in result.stderr, result
    assert result.stderr.index("Evaluating on 360 test images…") > result.stderr.index("epoch 1/1"), result


def test_quiet_says_nothing_about_the_evaluation(in_process, sandbox):
    result = in_process("train", "--preset", "seed-linear", *ONE_EPOCH, "--quiet", "--out", sandbox.root / "run")
    assert result.returncode == 0 and result.stderr == "", result


def test_a_script_hands_train_its_own_callbacks(in_process, sandbox, monkeypatch):
    events: list[tuple[str, object]] = []

    class Listen(Callback):
        def on_test_start(self, trainer, state, count):
            events.append(("test", count))

        def on_train_end(self, trainer, state, result):
            events.append(("end", result.status))

    def listen(trainer: Trainer) -> Callback:
        events.append(("made", type(trainer).__name__))
        return Listen()

    real_main = cli.main
    monkeypatch.setattr(cli, "main", lambda argv: real_main(argv, callbacks=[listen]))
    result = in_process("train", "--preset", "seed-linear", *ONE_EPOCH, "--quiet", "--out", sandbox.root / "run")
    assert result.returncode == 0, result
    assert events == [("made", "Trainer"), ("test", 360), ("end", "finished")]


def test_a_last_batch_too_small_for_batch_norm_is_merged_with_a_notice(in_process, sandbox):
    out = sandbox.root / "run"
    args = ("--preset", "cnn-strong", "--dataset", "digits", "--batch-size", "431", "--epochs", "1", "--quiet")
    result = in_process("train", *args, "--device", "cpu", "--out", out)
    assert result.returncode == 0, result
    # 1,294 training images = 3 × 431 + 1: the one left over joins the third batch
    assert result.stderr.splitlines() == [
        "note: The last batch of each epoch would hold 1 image (1,294 training images in batches of 431), and batch "
        "normalisation cannot train on a single image: that image joins the batch before it, which has 432 images."
    ], result
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_a_layer_that_cannot_take_its_input_ends_the_command_with_its_name(in_process, sandbox, monkeypatch):
    def break_the_first_linear_layer(trainer: Trainer) -> Callback:
        trainer.model[1] = torch.nn.Linear(784, 120)  # made for 28×28 images, not the digits' 8×8
        return Callback()

    real_main = cli.main
    monkeypatch.setattr(cli, "main", lambda argv: real_main(argv, callbacks=[break_the_first_linear_layer]))
    result = in_process("train", "--preset", "seed-relu-mlp", *ONE_EPOCH, "--quiet", "--out", sandbox.root / "run")
    assert result.returncode == 2, result
    assert result.stderr == (
        "workbench: Layer 2 (Linear): it expects 784 inputs per image but got 64 (a batch of shape 300×64); the "
        "layers before it do not produce what it takes.\n"
    ), result
