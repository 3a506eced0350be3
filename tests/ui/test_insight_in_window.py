"""The window's insight into a run: validation matrix per epoch, gradients, weights, runs, continue, evaluate."""

import json
import math

import pytest
import safetensors.torch
from sklearn.metrics import confusion_matrix

from workbench.core.architecture import build
from workbench.core.training.engine import predict
from workbench.ui.main_window import MainWindow


def train(qtbot, window):
    with qtbot.waitSignal(window.runFinished, timeout=60_000) as finished:
        window.start_training()
    return finished.args[0]


def test_the_validation_matrix_follows_every_epoch_and_equals_scikit_learns(qtbot, window):
    packets, shown = [], []
    show_epoch = window.session.present_epoch

    def seen(packet):
        show_epoch(packet)
        packets.append(packet)
        shown.append(window.evaluation_view.evaluation)

    window.session.present_epoch = seen
    window.binding.epoch_views_timer.setInterval(0)  # every epoch, however quick
    window.panel.epochs.setValue(3)
    train(qtbot, window)
    labels = window.session.gallery_images()[1].numpy()
    assert [packet.metrics.epoch for packet in packets] == [1, 2, 3]
    for packet in packets:
        expected = confusion_matrix(labels, packet.val_probabilities.argmax(axis=1), labels=range(10))
        assert packet.val_evaluation.confusion.tolist() == expected.tolist()
        assert packet.val_evaluation.accuracy == pytest.approx(packet.metrics.val_accuracy)
    assert [evaluation is packet.val_evaluation for evaluation, packet in zip(shown, packets)] == [True] * 3
    assert window.session.evaluation.split == "test", "the test matrix replaces it when the run ends"


def test_gradient_norms_have_one_point_per_logged_batch_for_every_layer(qtbot, window):
    assert train(qtbot, window) == "finished"
    window.gradient_plots.flush()
    counts = window.gradient_plots.point_counts()
    batches = 2 * math.ceil(1000 / 64)
    assert set(counts) >= {"2 Linear", "4 Linear", "3 ReLU"}
    assert counts["2 Linear"] == counts["4 Linear"] == batches
    x, y = window.gradient_plots.series("2 Linear")
    assert list(x) == list(range(1, batches + 1)) and (y > 0).all()


def test_the_weights_view_shows_the_first_layers_units_after_training(qtbot, window, tmp_path):
    assert train(qtbot, window) == "finished"
    titles = window.weights_view.panel_titles()
    assert len(titles) == 1 and "Linear" in titles[0]
    assert window.weights_view.tile_count(0) == 120


def test_a_finished_run_is_listed_loaded_back_evaluated_and_continued(qtbot, window):
    window.session.runs_out = None  # into the runs folder the history lists ($WORKBENCH_RUNS_DIR)
    assert train(qtbot, window) == "finished"
    folder = window.session.run.folder
    document = json.loads((folder / "run.json").read_text())
    assert any(row[0] == document["name"] for row in window.run_history.row_texts())

    window.load_preset("cnn-small")
    window.panel.epochs.setValue(9)
    assert window.load_run(folder)
    assert (window.panel.train_size.value(), window.panel.val_size.value()) == (1000, 200)
    assert [layer.type for layer in window.builder.architecture().layers] == ["Flatten", "Linear", "ReLU", "Linear"]
    assert window.panel.epochs.value() == 2
    model = build(window.builder.architecture().copy())
    images, labels = window.session.gallery_images()
    model.load_state_dict(safetensors.torch.load_file(folder / "model.safetensors"))
    shown = window.gallery.visible_indices()
    names = window.session.dataset.info.class_names
    guesses = predict(model, images[shown]).argmax(dim=1).tolist()
    assert window.gallery.captions() == [
        f"true: {names[t]}\npredicted: {names[p]}" for t, p in zip(labels[shown].tolist(), guesses)
    ]

    window.evaluate_run(folder)
    qtbot.waitUntil(lambda: not window.session.phase.busy, timeout=30_000)
    assert window.evaluation_view.evaluation.accuracy == pytest.approx(document["metrics"]["test_accuracy"])

    with qtbot.waitSignal(window.runFinished, timeout=60_000) as finished:
        window.continue_run(folder, 2)
    assert finished.args == ["finished"]
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 4
    assert json.loads((folder / "run.json").read_text())["metrics"]["epochs_completed"] == 4
    window.plots.flush()
    assert window.plots.point_counts()["val_accuracy"] == 4, "the earlier epochs are plotted too"


def test_a_damaged_run_is_refused_with_a_message_and_nothing_starts(qtbot, window, tmp_path):
    broken = tmp_path / "runs-broken"
    broken.mkdir()
    (broken / "run.json").write_text('{"format": "workbench-run", "status": "stop')
    window.continue_run(broken, 2)
    assert not window.is_training()
    assert (
        "cannot be continued" in window.statusBar().currentMessage() or "damaged" in window.statusBar().currentMessage()
    )


def test_evaluating_the_current_network_on_demand(qtbot, window):
    window.evaluate_current()
    qtbot.waitUntil(lambda: not window.session.phase.busy, timeout=30_000)
    untrained = window.evaluation_view.evaluation
    assert untrained.count == len(window.session.dataset.test_y)
    expected = predict(window.session.network.model, window.session.dataset.test_x).argmax(dim=1)
    assert untrained.accuracy == pytest.approx((expected == window.session.dataset.test_y).float().mean().item())


def test_the_app_starts_with_damaged_runs_in_its_history_and_lists_them(qtbot, tmp_path, monkeypatch):
    runs = tmp_path / "history"
    (runs / "truncated").mkdir(parents=True)
    (runs / "truncated" / "run.json").write_text('{"format": "workbench-run", "stat')
    (runs / "edited").mkdir()
    (runs / "edited" / "run.json").write_text('{"format": "workbench-run", "status": "finished"}')
    (runs / "a file.txt").write_text("not a run")
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(runs))
    win = MainWindow(interactive=False)
    qtbot.addWidget(win)
    win.show_runs()
    rows = {row[0]: row for row in win.run_history.row_texts()}
    assert set(rows) == {"truncated", "edited"}
    assert all(row[1] == "damaged" for row in rows.values())
    win.run_history.select_folders([runs / "edited"])
    assert not win.run_history.button("continueRun").isEnabled()
    win.close()
