"""RunHistory: the table of real run folders, its sorting, damaged runs, and what its buttons do."""

import json
import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox

from workbench.core.presets import load_preset
from workbench.core.runs.folders import new_run_dir, read_metrics, read_run
from workbench.core.runs.recorder import RunRecorder
from workbench.core.runs.summaries import NO_CHECKPOINT, list_runs
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer
from workbench.ui.panels.network_list import TONES
from workbench.ui.views.run_history import COLUMNS, DEFAULT_EXTRA_EPOCHS, RunHistory

# Three real runs that differ in network, optimizer, learning rate and length. The start dates are set by hand
# (as a run from another day would have them), so the order by date is known.
RUNS = {
    "adam": ("mlp", dict(optimizer="adam", lr=2e-3, epochs=2), "2024-03-01T09:00:00+00:00"),
    "sgd": ("mlp", dict(optimizer="sgd", lr=1e-5, epochs=1), "2024-01-15T09:00:00+00:00"),
    "linear": ("seed-linear", dict(optimizer="adam", lr=1e-2, epochs=1), "2024-02-10T09:00:00+00:00"),
}
BUTTONS = ("overlayRuns", "loadRun", "continueRun", "evaluateRun", "renameRun", "deleteRun")


def _train(folder, preset, settings):
    architecture = load_preset(preset)
    config = TrainConfig(
        dataset="digits", train_size=600, val_size=150, batch_size=64, device="cpu", seed=3, **settings
    )
    recorder = RunRecorder(new_run_dir(folder, architecture, config))
    return Trainer(architecture, config, callbacks=[recorder], progress=False).run()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The three runs, trained once for the module; each test works on a copy."""
    root = tmp_path_factory.mktemp("recorded")
    results = {}
    for name, (preset, settings, started) in RUNS.items():
        results[name] = _train(root / name, preset, settings)
        _edit_run(root / name, started=started)
    return root, results


@pytest.fixture
def root(recorded, tmp_path):
    """A runs folder with copies of the three runs and one whose run.json was cut short."""
    folder = tmp_path / "runs"
    shutil.copytree(recorded[0], folder)
    damaged = folder / "damaged"
    shutil.copytree(folder / "adam", damaged)
    (damaged / "run.json").write_text((damaged / "run.json").read_text()[:150])
    return folder


@pytest.fixture
def history(root, qtbot):
    widget = RunHistory(root, interactive=False)
    qtbot.addWidget(widget)
    return widget


def _edit_run(folder, **changes):
    document = read_run(folder)
    document.update(changes)
    (folder / "run.json").write_text(json.dumps(document, indent=2))


def _column(widget, name):
    index = COLUMNS.index(name)
    return [row[index] for row in widget.row_texts()]


def _enabled(widget):
    return {name for name in BUTTONS if widget.button(name).isEnabled()}


def test_the_table_lists_every_run_newest_first_with_its_settings_and_results(history, recorded):
    results = recorded[1]
    assert _column(history, "Name") == ["adam", "linear", "sgd", "damaged"]
    adam = dict(zip(COLUMNS, history.row_texts()[0]))
    assert (adam["Status"], adam["Dataset"], adam["Optimizer"], adam["LR"], adam["Epochs"]) == (
        "finished",
        "digits",
        "adam",
        "0.002",
        "2",
    )
    assert adam["Network"] == load_preset("mlp").summary()
    assert adam["Test acc"] == f"{results['adam'].test_accuracy * 100:.1f} %"
    assert adam["Best val acc"] == f"{results['adam'].best_val_accuracy * 100:.1f} %"
    assert adam["Date"].startswith("2024-03-0") and adam["Duration"].endswith(" s")
    damaged = dict(zip(COLUMNS, history.row_texts()[3]))
    assert (damaged["Status"], damaged["Epochs"], damaged["Test acc"], damaged["Date"]) == ("damaged", "—", "—", "—")


def test_numeric_columns_sort_as_numbers_with_missing_values_last(history):
    summaries = {summary.name: summary for summary in list_runs(history.root)}
    by_test = sorted(("adam", "sgd", "linear"), key=lambda name: summaries[name].test_accuracy)
    history.sort_by("Test acc", descending=False)
    assert _column(history, "Name") == [*by_test, "damaged"]
    history.sort_by("Test acc", descending=True)
    assert _column(history, "Name") == [*reversed(by_test), "damaged"]
    # As text "1e-05" would sort after "0.01"; as numbers it is the smallest.
    history.sort_by("LR", descending=False)
    assert _column(history, "LR") == ["1e-05", "0.002", "0.01", "—"]
    history.sort_by("Epochs", descending=True)
    assert _column(history, "Name")[0] == "adam"


def test_dates_sort_by_time_not_by_text(history, root):
    # Ten o'clock at UTC+5 is five o'clock UTC: earlier than six o'clock UTC, though its text sorts after it.
    _edit_run(root / "adam", started="2024-03-01T10:00:00+05:00")
    _edit_run(root / "linear", started="2024-03-01T06:00:00+00:00")
    history.refresh()
    assert _column(history, "Name") == ["linear", "adam", "sgd", "damaged"]
    history.sort_by("Date", descending=False)
    assert _column(history, "Name") == ["sgd", "adam", "linear", "damaged"]


def test_a_damaged_run_shows_why_and_only_delete_is_offered(history, root):
    history.select_folders([root / "damaged"])
    row = history.row_texts()[_column(history, "Name").index("damaged")]
    assert row[COLUMNS.index("Status")] == "damaged"
    model = history.table.model()
    damaged_row = _column(history, "Name").index("damaged")
    tooltip = model.index(damaged_row, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert "run.json is damaged" in tooltip
    assert model.index(damaged_row, 5).data(Qt.ItemDataRole.BackgroundRole).color() == TONES["error"].background
    assert "Problem:" in history.details.text() and "run.json is damaged" in history.details.text()
    assert _enabled(history) == {"deleteRun"}
    assert "damaged" in history.button("continueRun").toolTip()


def test_the_buttons_follow_the_selection(history, root):
    assert _enabled(history) == set()
    history.select_folders([root / "adam"])
    assert _enabled(history) == set(BUTTONS)
    history.select_folders([root / "adam", root / "sgd"])
    assert _enabled(history) == {"overlayRuns", "deleteRun"}
    assert history.selected_folders() == [root / "adam", root / "sgd"]
    history.select_folders([root / "adam", root / "damaged"])
    assert _enabled(history) == {"overlayRuns", "deleteRun"}


def test_a_finished_run_without_checkpoint_can_be_evaluated_but_not_continued(history, root):
    shutil.rmtree(root / "sgd" / "checkpoint")
    history.refresh()
    history.select_folders([root / "sgd"])
    assert _enabled(history) == set(BUTTONS) - {"continueRun"}
    assert NO_CHECKPOINT in history.button("continueRun").toolTip()
    assert _column(history, "Status")[_column(history, "Name").index("sgd")] == "finished"


def test_a_run_training_now_cannot_be_continued_or_deleted(history, root):
    history.select_folders([root / "adam"])
    history.set_busy_folder(root / "adam")
    assert _enabled(history) == set(BUTTONS) - {"continueRun", "deleteRun"}
    history.set_busy_folder(None)
    assert _enabled(history) == set(BUTTONS)


def test_overlay_sends_the_selected_runs_histories(history, root, qtbot, recorded):
    history.select_folders([root / "sgd", root / "adam", root / "damaged"])
    with qtbot.waitSignal(history.overlayRequested, timeout=1000) as signal:
        history.button("overlayRuns").click()
    runs = signal.args[0]
    assert [name for name, _, _ in runs] == ["adam", "sgd"]
    assert runs[0][1] == recorded[1]["adam"].history and runs[1][1] == read_metrics(root / "sgd")
    assert [folder for _, _, folder in runs] == [root / "adam", root / "sgd"]


def test_load_continue_and_evaluate_send_the_folder(history, root, qtbot):
    history.select_folders([root / "linear"])
    with qtbot.waitSignal(history.loadRequested, timeout=1000) as loaded:
        history.button("loadRun").click()
    assert loaded.args == [root / "linear"]
    with qtbot.waitSignal(history.continueRequested, timeout=1000) as continued:
        history.button("continueRun").click()
    assert continued.args == [root / "linear", DEFAULT_EXTRA_EPOCHS]
    with qtbot.waitSignal(history.continueRequested, timeout=1000) as continued:
        history.continue_selected(12)
    assert continued.args == [root / "linear", 12]
    with qtbot.waitSignal(history.evaluateRequested, timeout=1000) as evaluated:
        history.button("evaluateRun").click()
    assert evaluated.args == [root / "linear"]

    with qtbot.assertNotEmitted(history.continueRequested):
        history.continue_selected(0)
    assert "1 to 1000 epochs" in history.details.text()


def test_double_click_loads_the_run(history, root, qtbot):
    history.show()
    row = _column(history, "Name").index("sgd")
    rect = history.table.visualRect(history.table.model().index(row, 0))
    with qtbot.waitSignal(history.loadRequested, timeout=1000) as loaded:
        qtbot.mouseClick(history.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(history.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert loaded.args == [root / "sgd"]


def test_rename_shows_the_new_name_and_stores_it(history, root, qtbot):
    history.select_folders([root / "sgd"])
    with qtbot.waitSignal(history.runsChanged, timeout=1000):
        history.rename_selected("SGD, tiny learning rate")
    assert "SGD, tiny learning rate" in _column(history, "Name")
    assert read_run(root / "sgd")["name"] == "SGD, tiny learning rate" and (root / "sgd").is_dir()
    assert history.selected_folders() == [root / "sgd"]

    with qtbot.assertNotEmitted(history.runsChanged):
        history.rename_selected("   ")
    assert "needs a name" in history.details.text() and "needs a name" in history.last_error
    assert read_run(root / "sgd")["name"] == "SGD, tiny learning rate"


def test_delete_removes_the_folders_and_their_rows(history, root, qtbot):
    history.select_folders([root / "sgd", root / "damaged"])
    with qtbot.waitSignal(history.runsChanged, timeout=1000):
        history.button("deleteRun").click()
    assert not (root / "sgd").exists() and not (root / "damaged").exists()
    assert _column(history, "Name") == ["adam", "linear"]
    assert history.selected_folders() == []


def test_delete_refuses_a_folder_that_is_no_longer_a_run(history, root, qtbot):
    history.select_folders([root / "linear"])
    (root / "linear" / "run.json").unlink()
    shutil.rmtree(root / "linear" / "checkpoint")
    with qtbot.assertNotEmitted(history.runsChanged):
        history.delete_selected()
    assert (root / "linear" / "metrics.jsonl").exists()
    assert "is not a run folder" in history.last_error and "is not a run folder" in history.details.text()


def test_refresh_keeps_the_selection_and_shows_new_runs(history, root):
    history.select_folders([root / "sgd"])
    shutil.copytree(root / "adam", root / "adam-copy")
    _edit_run(root / "adam-copy", name="adam again", started="2024-04-01T09:00:00+00:00")
    history.button("refreshRuns").click()
    assert _column(history, "Name")[0] == "adam again"
    assert history.selected_folders() == [root / "sgd"]


def test_the_table_survives_whatever_the_runs_folder_holds(root, tmp_path, qtbot):
    (root / "empty").mkdir()
    (root / "a-file.txt").write_text("not a run")
    (root / "garbage").mkdir()
    (root / "garbage" / "run.json").write_bytes(bytes(range(256)) * 3)
    (root / "list").mkdir()
    (root / "list" / "run.json").write_text("[1, 2, 3]")
    _edit_run(root / "sgd", started="0001-01-01T00:00:00+14:00")
    _edit_run(root / "linear", started="yesterday")
    widget = RunHistory(root, interactive=False)
    qtbot.addWidget(widget)
    names = _column(widget, "Name")
    assert sorted(names) == ["adam", "damaged", "garbage", "linear", "list", "sgd"]
    for name in ("garbage", "list"):
        assert _column(widget, "Status")[names.index(name)] == "damaged"
    assert _column(widget, "Date")[names.index("linear")] == "yesterday"
    widget.set_root(tmp_path / "no-such-folder")
    assert widget.row_texts() == [] and "No runs in" in widget.details.text()
    (tmp_path / "plain-file").write_text("x")
    widget.set_root(tmp_path / "plain-file")
    assert widget.row_texts() == []


def test_the_default_folder_is_the_users_runs_folder(qtbot, monkeypatch, root):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(root))
    widget = RunHistory(interactive=False)
    qtbot.addWidget(widget)
    assert widget.root == root and len(widget.row_texts()) == 4


def test_interactive_continue_asks_for_the_epochs_and_delete_asks_first(root, qtbot, monkeypatch):
    widget = RunHistory(root)
    qtbot.addWidget(widget)
    widget.select_folders([root / "adam"])
    monkeypatch.setattr(QInputDialog, "getInt", staticmethod(lambda *args: (7, True)))
    with qtbot.waitSignal(widget.continueRequested, timeout=1000) as continued:
        widget.button("continueRun").click()
    assert continued.args == [root / "adam", 7]

    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *args: ("renamed", True)))
    widget.button("renameRun").click()
    assert read_run(root / "adam")["name"] == "renamed"

    answers = []
    monkeypatch.setattr(
        QMessageBox, "question", staticmethod(lambda *args: answers.append(args[2]) or QMessageBox.StandardButton.No)
    )
    widget.button("deleteRun").click()
    assert (root / "adam").is_dir() and "renamed" in answers[0]
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *args: QMessageBox.StandardButton.Yes))
    widget.button("deleteRun").click()
    assert not (root / "adam").exists()


def test_the_settings_that_matter_have_columns_and_those_the_selected_runs_differ_in_are_bold(history):
    rows = {row[0]: dict(zip(COLUMNS, row)) for row in history.row_texts()}
    adam, sgd = rows["adam"], rows["sgd"]
    assert (adam["Loss"], adam["Batch"], adam["Train images"], adam["Weight decay"]) == (
        "cross-entropy",
        "64",
        "600",
        "0",
    )
    assert adam["Momentum"] == "—" and sgd["Momentum"] == "0.9", "momentum only where the optimizer uses it"
    assert adam["Augment"] == "none"

    history.select_folders([history.root / "adam", history.root / "sgd"])
    assert history.differing_columns() == ["Optimizer", "LR", "Momentum", "Epochs"]
    assert "they differ in optimizer, lr, momentum, epochs (in bold)" in history.details.text()
    model = history.table.model()
    bold = {
        (model.index(row, 0).data(), COLUMNS[column])
        for row in range(model.rowCount())
        for column in range(len(COLUMNS))
        if model.index(row, column).data(Qt.ItemDataRole.FontRole) is not None
        and model.index(row, column).data(Qt.ItemDataRole.FontRole).bold()
    }
    expected = {(name, column) for name in ("adam", "sgd") for column in ("Optimizer", "LR", "Momentum", "Epochs")}
    assert bold == expected

    history.select_folders([history.root / "adam"])
    assert history.differing_columns() == []
    assert not any(
        model.index(row, column).data(Qt.ItemDataRole.FontRole) is not None
        and model.index(row, column).data(Qt.ItemDataRole.FontRole).bold()
        for row in range(model.rowCount())
        for column in range(len(COLUMNS))
    )
