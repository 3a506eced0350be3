"""``workbench lr-find``: one line with the suggested rate, the plot on request, bad ranges refused."""

from __future__ import annotations

import re


def test_lr_find_prints_the_suggested_rate_and_draws_the_curve(in_process, sandbox):
    plot = sandbox.root / "lr.png"
    result = in_process(
        "lr-find",
        "--preset",
        "seed-relu-mlp",
        "--dataset",
        "digits",
        "--optimizer",
        "adam",
        "--batch-size",
        "64",
        "--out",
        plot,
    )
    assert result.returncode == 0, result
    match = re.search(r"^suggested learning rate: ([0-9.e+-]+)$", result.stdout, re.MULTILINE)
    assert match and 1e-4 <= float(match.group(1)) <= 1e-1, result.stdout
    assert plot.stat().st_size > 10_000
    assert sandbox.run_folders() == [], "the range test writes no run folder"


def test_a_range_that_does_not_rise_exits_2(in_process):
    result = in_process("lr-find", "--preset", "seed-relu-mlp", "--dataset", "digits", "--start", "1", "--end", "0.1")
    assert result.returncode == 2 and "The range must rise" in result.stderr
