"""Names read from files reach the terminal without their control characters; the files keep them."""

from __future__ import annotations

import json
from pathlib import Path

from workbench import cli
from workbench.core.presets import load_preset
from workbench.core.runs.predict import Guess

SMALL = ["--dataset", "digits", "--train-size", "100", "--val-size", "20", "--epochs", "1", "--batch-size", "50"]
HOSTILE = "\x1b[31mred\u202e\x00"
UNSAFE = ("\x1b", "\x00", "\u202e")


def shows_none_of_them(text: str) -> bool:
    return not any(character in text for character in UNSAFE)


def test_runs_lists_a_run_named_with_control_characters_without_them(sandbox, in_process):
    assert in_process("train", *SMALL, "--quiet").returncode == 0
    [run] = sandbox.run_folders()
    document = json.loads((run / "run.json").read_text())
    document["name"] = HOSTILE
    document["dataset"] = f"digits{HOSTILE}"
    (run / "run.json").write_text(json.dumps(document))

    listed = in_process("runs")
    assert listed.returncode == 0, listed
    assert shows_none_of_them(listed.stdout), listed
    [row] = [line for line in listed.stdout.splitlines() if "red" in line]
    assert row.startswith("?[31mred?? ") and "digits?[31mred??" in row, row
    assert json.loads((run / "run.json").read_text())["name"] == HOSTILE  # the file still holds them


def test_the_first_line_of_a_run_shows_the_networks_name_without_them(sandbox, in_process):
    network = load_preset("seed-relu-mlp")
    network.name = f"net{HOSTILE}"
    path = sandbox.root / "net.json"
    network.save(path)
    result = in_process("train", *SMALL, "--arch", path, "--quiet")
    assert result.returncode == 0, result
    assert result.stdout.startswith("net?[31mred?? on Digits (100 train"), result
    assert shows_none_of_them(result.stdout + result.stderr), result
    assert json.loads(path.read_text())["name"] == f"net{HOSTILE}"


def test_predictions_show_paths_and_class_names_without_them():
    lines = cli.guess_lines(
        [
            Guess(Path(f"a{HOSTILE}.png"), [(f"Shirt{HOSTILE}", 0.6), ("Coat", 0.4)]),
            Guess(Path("b.png"), [("Coat", 1.0)]),
        ]
    )
    # The classes start in one column, counted on what is printed.
    assert lines == ["a?[31mred??.png: Shirt?[31mred?? 60.0%, Coat 40.0%", "b.png:           Coat 100.0%"]
