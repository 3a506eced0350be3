"""File → Runs Folder…: where the desktop app's runs go, chosen in the window, shown on the Runs tab, remembered.

The windows here are interactive, with ``QMessageBox.warning`` and ``QFileDialog.getExistingDirectory`` replaced by
recorders; settings live in a temporary folder through $WORKBENCH_CONFIG_DIR.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from workbench.core.runs.folders import RUN_FILE
from workbench.session.phase import Phase
from workbench.ui.main_window import MainWindow
from workbench.ui.settings import CONFIG_DIR_ENV, SessionStore

MENU_TITLE = "Runs &Folder…"


class FolderDialog:
    """Stands in for ``QFileDialog.getExistingDirectory``: answers ``answer`` and keeps the folder it started in."""

    def __init__(self) -> None:
        self.answer = ""
        self.started_in: list[str] = []

    def __call__(self, parent, caption: str = "", directory: str = "", *args, **kwargs) -> str:
        self.started_in.append(directory)
        return self.answer


@pytest.fixture
def folder_dialog(monkeypatch) -> FolderDialog:
    dialog = FolderDialog()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(dialog))
    return dialog


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Path:
    """Settings in ``tmp_path/config``; the default runs folder (no $WORKBENCH_RUNS_DIR) under ``tmp_path/data``."""
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("WORKBENCH_RUNS_DIR", raising=False)
    return tmp_path


@pytest.fixture
def start(qtbot, boxes, folder_dialog):
    """Open an interactive window (``remember`` False unless asked), on digits with settings that train in seconds."""
    opened: list[MainWindow] = []

    def open_window(remember: bool = False) -> MainWindow:
        win = MainWindow(interactive=True, remember=remember)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: win.session.dataset is not None and not win.session.phase.busy, timeout=30_000)
        win.load_dataset("digits")
        win.load_preset("seed-relu-mlp")
        win.panel.train_size.setValue(300)
        win.panel.val_size.setValue(50)
        win.panel.batch_size.setValue(64)
        win.panel.epochs.setValue(1)
        opened.append(win)
        return win

    yield open_window
    for win in opened:
        win.close()


def unwritable(tmp_path: Path) -> Path:
    """A runs folder that can never be made, even by root: its parent is a plain file."""
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path / "afile" / "runs"


def file_menu_action(win: MainWindow, text: str):
    [found] = [
        action
        for top in win.menuBar().actions()
        if top.text() == "&File"
        for action in top.menu().actions()
        if action.text() == text
    ]
    return found


def test_start_with_a_runs_folder_that_cannot_be_written_says_to_choose_another_in_the_window(
    start, boxes, tmp_path, monkeypatch
):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(unwritable(tmp_path)))
    win = start()
    assert win.run_history.folder_label.text() == f"Runs folder: {tmp_path / 'afile' / 'runs'}"

    win.panel.start_button.click()

    [(title, text)] = boxes
    assert title == "Cannot start training"
    assert text.startswith(f"Cannot write the run folder {tmp_path / 'afile' / 'runs'}: ")
    assert text.endswith("Choose another folder for your runs with File → Runs Folder….")
    assert "--out" not in text and "WORKBENCH_RUNS_DIR" not in text
    assert win.session.phase is Phase.IDLE and win.session.run is None
    assert win.panel.start_button.isEnabled() and win.panel.settings_box.isEnabled()


def test_a_folder_chosen_on_the_runs_tab_is_listed_there_and_the_next_run_lands_in_it(
    start, boxes, folder_dialog, qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(unwritable(tmp_path)))
    win = start()
    win.show_runs()
    history = win.run_history
    button, refresh = history.button("chooseRunsFolder"), history.button("refreshRuns")
    assert button.text() == "Runs Folder…" and button.isVisible()
    # beside Refresh, on the folder's row, above the row of what is done with the selected runs
    assert refresh.geometry().right() < button.geometry().left()
    assert button.geometry().bottom() < history.button("overlayRuns").geometry().top()
    chosen = tmp_path / "my runs"
    chosen.mkdir()
    folder_dialog.answer = str(chosen)

    button.click()

    assert folder_dialog.started_in == [str(tmp_path / "afile" / "runs")]
    assert boxes == []
    assert history.root == chosen and history.folder_label.text() == f"Runs folder: {chosen}"
    assert win.statusBar().currentMessage() == f"New runs go into {chosen}"
    with qtbot.waitSignal(win.runFinished, timeout=60_000) as finished:
        win.panel.start_button.click()
    assert finished.args == ["finished"] and boxes == []
    [run] = [path.parent for path in chosen.glob(f"*/{RUN_FILE}")]
    assert [summary.folder for summary in history.summaries()] == [run]
    assert win.statusBar().currentMessage().endswith(f"Run saved in {run}")


def test_a_folder_that_cannot_be_written_is_refused_in_a_dialog_and_the_runs_folder_stays(
    start, boxes, folder_dialog, tmp_path
):
    win = start()
    before = win.session.runs_folder
    folder_dialog.answer = str(unwritable(tmp_path))

    file_menu_action(win, MENU_TITLE).trigger()

    [(title, text)] = boxes
    assert title == "Cannot use this runs folder"
    assert text.startswith(f"Cannot write the run folder {tmp_path / 'afile' / 'runs'}: ")
    assert text.endswith(f"Choose a folder you can write to; new runs still go into {before}.")
    assert "--out" not in text
    assert win.session.runs_folder == before and win.run_history.root == before


def test_the_runs_folder_chosen_is_remembered_after_a_restart(start, sandbox, folder_dialog):
    first = start(remember=True)
    assert first.session.runs_folder == sandbox / "data" / "workbench" / "runs"
    chosen = sandbox / "chosen"
    chosen.mkdir()
    folder_dialog.answer = str(chosen)
    file_menu_action(first, MENU_TITLE).trigger()
    assert SessionStore().runs_folder() == chosen, "kept at once, not only on closing"
    first.close()

    second = start(remember=True)
    assert second.session.runs_folder == chosen
    assert second.run_history.root == chosen and second.run_history.folder_label.text() == f"Runs folder: {chosen}"
    second.close()

    third = start(remember=False)
    assert third.session.runs_folder == sandbox / "data" / "workbench" / "runs"


def test_workbench_runs_dir_wins_over_the_folder_remembered(start, sandbox, folder_dialog, monkeypatch):
    first = start(remember=True)
    remembered = sandbox / "remembered"
    remembered.mkdir()
    folder_dialog.answer = str(remembered)
    file_menu_action(first, MENU_TITLE).trigger()
    first.close()

    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(sandbox / "from-env"))
    second = start(remember=True)
    assert second.session.runs_folder == sandbox / "from-env" and second.run_history.root == sandbox / "from-env"
    for_now = sandbox / "for now"
    for_now.mkdir()
    folder_dialog.answer = str(for_now)
    file_menu_action(second, MENU_TITLE).trigger()
    assert second.session.runs_folder == for_now  # for this session only
    second.close()

    monkeypatch.delenv("WORKBENCH_RUNS_DIR")
    third = start(remember=True)
    assert third.session.runs_folder == remembered
