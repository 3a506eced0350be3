"""What a user sees follow the session: results cleared by an edit, a loaded run's curves, the export dialog's
memory, the warnings of the loss chosen, and menus enabled by the actions' rules only."""

from __future__ import annotations

from workbench.session.phase import Phase
from workbench.ui.dialogs.export_dialog import ExportDialog


def train(qtbot, window):
    with qtbot.waitSignal(window.runFinished, timeout=60_000) as finished:
        window.start_training()
    assert finished.args == ["finished"]


def test_changing_the_network_after_a_run_clears_its_curves_scores_and_status(qtbot, window):
    train(qtbot, window)
    window.plots.flush()
    assert window.plots.point_counts()["val_accuracy"] == 2
    assert window.evaluation_view.evaluation is not None
    assert window.panel.progress.format().startswith("Finished")
    window.load_preset("mlp")
    window.plots.flush()
    assert set(window.plots.point_counts().values()) == {0}
    assert window.evaluation_view.evaluation is None
    assert window.panel.progress.format() == "Not started"
    assert window.gallery._header.text() == "Untrained network's guesses"


def test_runs_load_into_builder_shows_the_runs_curves(qtbot, window, tmp_path):
    train(qtbot, window)
    window.load_preset("mlp")
    window.plots.flush()
    assert window.plots.point_counts()["val_loss"] == 0
    assert window.load_run(tmp_path / "run")
    window.plots.flush()
    counts = window.plots.point_counts()
    assert counts["val_loss"] == counts["train_loss"] == counts["val_accuracy"] == 2
    assert window.builder.architecture().name == "seed-relu-mlp"


def test_the_export_dialog_opens_on_the_last_format_and_folder(qtbot, window, tmp_path):
    train(qtbot, window)
    exports = tmp_path / "exports"
    exports.mkdir()
    window.export_to(tmp_path / "run", "python", exports / "model.py")
    qtbot.waitUntil(lambda: window.session.phase is Phase.IDLE, timeout=60_000)
    from workbench.core.runs.trained import load_trained

    dialog = ExportDialog(
        load_trained(tmp_path / "run"), window, window.session.export_format, window.session.export_folder
    )
    fmt, target = dialog.choice()
    assert fmt == "python" and target.parent == exports


def test_the_layer_warnings_follow_the_loss_chosen(qtbot, window):
    window.load_preset("seed-sigmoidnet")
    window.panel.loss.setCurrentIndex(window.panel.loss.findData("cross-entropy"))
    assert window.builder.report().warnings
    window.panel.loss.setCurrentIndex(window.panel.loss.findData("mse"))
    assert window.builder.report().warnings == ()
    assert window.session.report.warnings == ()


def test_menus_follow_the_phase(qtbot, window):
    actions = window.action_set
    assert not actions["file.export"].isEnabled() and actions["train.start"].isEnabled()
    window.panel.epochs.setValue(500)
    with qtbot.waitSignal(window.batchProgress, timeout=20_000):
        window.start_training()
    assert actions["train.stop"].isEnabled() and not actions["train.start"].isEnabled()
    assert not actions["file.open"].isEnabled() and not actions["presets.mlp"].isEnabled()
    with qtbot.waitSignal(window.runFinished, timeout=5_000):
        window.stop_training()
    assert actions["file.export"].isEnabled() and actions["train.start"].isEnabled()
    assert not actions["train.stop"].isEnabled() and actions["presets.mlp"].isEnabled()
