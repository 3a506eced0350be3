"""The runs folder as a setting of the session: where new runs go, refused when it cannot be written, without Qt."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import digits_config
from workbench.core.errors import WorkbenchError
from workbench.core.runs.folders import RUN_FILE
from workbench.core.training.distributed import HANDOFF_CONFIG
from workbench.session.phase import Phase
from workbench.session.session import Session
from workbench.session.tasks import InlineRunner

ADVICE = "Choose another folder for your runs with File → Runs Folder…."


def unwritable(tmp_path: Path) -> Path:
    """A folder that can never be made, even by root: its parent is a plain file."""
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path / "afile" / "runs"


def digits_session(runs_out: Path | None = None) -> Session:
    session = Session(InlineRunner(), runs_out=runs_out)
    session.load_dataset("digits")
    session.load_preset("seed-relu-mlp")
    session.edit_config(digits_config(train_size=300, val_size=50, epochs=1))
    return session


def run_folders(root: Path) -> list[Path]:
    return sorted(path.parent for path in root.glob(f"*/{RUN_FILE}"))


def test_the_runs_folder_is_the_default_one_until_another_is_chosen_and_new_runs_go_there(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "from-env"))
    session = digits_session()
    assert session.runs_folder == tmp_path / "from-env"
    seen: list[Path] = []
    session.runs_folder_changed.connect(seen.append)
    chosen = tmp_path / "chosen"
    chosen.mkdir()

    session.set_runs_folder(chosen)
    assert session.runs_folder == chosen and seen == [chosen]

    session.start_training()
    assert session.last_end is not None and session.last_end.status == "finished"
    assert run_folders(chosen) == [session.last_end.folder]
    assert not (tmp_path / "from-env").exists()


def test_a_folder_that_cannot_be_written_is_refused_and_the_runs_folder_stays(tmp_path):
    session = Session(InlineRunner())
    before = session.runs_folder
    seen: list[Path] = []
    session.runs_folder_changed.connect(seen.append)

    with pytest.raises(WorkbenchError) as refused:
        session.set_runs_folder(unwritable(tmp_path))
    message = str(refused.value)
    assert message.startswith(f"Cannot write the run folder {tmp_path / 'afile' / 'runs'}: ")
    assert f"Choose a folder you can write to; new runs still go into {before}." in message
    assert "--out" not in message and "WORKBENCH_RUNS_DIR" not in message
    assert session.runs_folder == before and seen == []


def test_start_with_a_runs_folder_that_cannot_be_written_says_how_to_choose_another_and_starts_nothing(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(unwritable(tmp_path)))
    session = digits_session()
    phases: list[Phase] = []
    session.phase_changed.connect(phases.append)

    with pytest.raises(WorkbenchError) as refused:
        session.start_training()
    message = str(refused.value)
    assert message.startswith(f"Cannot write the run folder {tmp_path / 'afile' / 'runs'}: ")
    assert message.endswith(ADVICE)
    assert "--out" not in message and "WORKBENCH_RUNS_DIR" not in message
    assert phases == [] and session.phase is Phase.IDLE
    assert session.run is None and session.last_end is None


def test_a_run_given_its_own_folder_does_not_need_the_runs_folder(tmp_path, monkeypatch):
    """``workbench gui --out FOLDER``: that one run's folder, used as it is."""
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(unwritable(tmp_path)))
    session = digits_session(runs_out=tmp_path / "run")
    session.start_training()
    assert session.last_end is not None and session.last_end.folder == tmp_path / "run"
    assert (tmp_path / "run" / RUN_FILE).is_file()


def test_the_cluster_hand_off_is_written_into_the_runs_folder(tmp_path):
    session = digits_session()
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    session.set_runs_folder(chosen)
    folder = session.prepare_handoff()
    assert folder.parent == chosen and (folder / HANDOFF_CONFIG).is_file()

    session.set_runs_folder(unwritable(tmp_path), check=False)  # remembered from a start when it could be written
    with pytest.raises(WorkbenchError, match="File → Runs Folder…"):
        session.prepare_handoff()
