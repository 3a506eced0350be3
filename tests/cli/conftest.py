"""Fixtures of the command-line tests: a sandbox standing in for the user's machine, and ``workbench`` run in-process."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import LEAKY, Result, Sandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox.make(tmp_path / "sandbox")


@pytest.fixture
def in_process(sandbox, monkeypatch, capsys) -> Callable[..., Result]:
    """Run ``workbench ARGS`` in this process with the sandbox's environment; an escaping exception fails the test.

    The console script is ``sys.exit(main())``, so ``cli.main``'s return value is the exit status and an
    exception escaping it is a traceback; in-process a case costs milliseconds instead of seconds.
    """
    from workbench import cli
    from workbench.core.data import datasets

    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    for key in LEAKY:
        if key not in ("WORKBENCH_RUNS_DIR", "XDG_DATA_HOME"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(sandbox.root)
    monkeypatch.setattr(datasets, "_cache", {})

    def run(*args: str | os.PathLike) -> Result:
        argv = tuple(os.fspath(arg) for arg in args)
        capsys.readouterr()
        try:
            status = cli.main(list(argv))
        except SystemExit as exit_:  # argparse
            status = exit_.code
        out, err = capsys.readouterr()
        return Result(argv, status, out, err)

    return run
