"""The whole window: starting, training on a worker thread, stopping, closing, the gallery."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch
from PySide6.QtGui import QImage

from workbench.core.architecture import build
from workbench.core.training.engine import predict
from workbench.session.phase import Phase
from workbench.ui.main_window import MainWindow
from workbench.ui.tasks import running_threads


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(interactive=False, runs_out=tmp_path / "run")
    qtbot.addWidget(win)
    win.load_dataset("digits")
    win.panel.train_size.setValue(1000)
    win.panel.val_size.setValue(200)
    win.panel.batch_size.setValue(64)
    win.panel.optimizer.setCurrentIndex(win.panel.optimizer.findData("adam"))
    win.show()
    yield win
    win.close()


def test_the_window_opens_with_the_seed_network_and_fashion_mnist_or_a_notice(qtbot, tmp_path):
    win = MainWindow(interactive=False, runs_out=tmp_path / "run")
    qtbot.addWidget(win)
    assert win.builder.architecture().name == "seed-simplenet"
    assert win.session.dataset is not None
    if win.session.dataset.info.name == "digits":
        assert win.notice.isVisibleTo(win) and "Fashion-MNIST" in win.notice.text()
    else:
        assert win.session.dataset.info.name == "fashion-mnist" and not win.notice.isVisibleTo(win)
    assert win.panel.start_button.isEnabled()
    win.close()


def test_start_is_disabled_while_the_network_does_not_fit(window):
    architecture = window.builder.architecture()
    del architecture.layers[0]  # no Flatten: Linear gets an image
    window.builder.set_architecture(architecture)
    assert not window.panel.start_button.isEnabled()
    assert "add a Flatten" in window.panel.start_hint.text()
    window.builder.undo_stack.undo()
    assert window.panel.start_button.isEnabled()


def test_a_short_run_on_digits_finishes_and_the_plots_hold_what_was_reported(qtbot, window, tmp_path):
    window.panel.epochs.setValue(3)
    reported = {"batches": 0, "epochs": 0}
    window.batchProgress.connect(
        lambda packet: reported.__setitem__("batches", reported["batches"] + len(packet.steps))
    )
    window.epochEnded.connect(lambda *_: reported.__setitem__("epochs", reported["epochs"] + 1))
    window.start_training()
    assert not window.panel.settings_box.isEnabled(), "settings are locked while training"
    with qtbot.waitSignal(window.runFinished, timeout=60_000) as finished:
        pass
    assert finished.args == ["finished"]
    window.plots.flush()
    counts = window.plots.point_counts()
    assert reported["epochs"] == 3 and reported["batches"] == 3 * 16
    assert counts["batch_loss"] == reported["batches"] == counts["batch_loss_smooth"]
    assert counts["train_loss"] == counts["val_loss"] == counts["val_accuracy"] == 3
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    _, accuracy = window.plots.series("val_accuracy")
    assert list(accuracy) == pytest.approx([100 * json.loads(line)["val_accuracy"] for line in lines])
    assert window.panel.settings_box.isEnabled() and window.panel.start_button.isEnabled()
    assert not running_threads()


def test_gallery_captions_match_the_trained_models_predictions(qtbot, window, tmp_path):
    window.panel.epochs.setValue(2)
    with qtbot.waitSignal(window.runFinished, timeout=60_000):
        window.start_training()
    run = tmp_path / "run"
    model = build(window.session.run.architecture)
    model.load_state_dict(safetensors.torch.load_file(run / "model.safetensors"))
    images, labels = window.session.gallery_images()
    shown = window.gallery.visible_indices()
    assert shown == list(range(window.gallery.capacity))
    predicted = predict(model, images[shown]).argmax(dim=1).tolist()
    names = window.session.dataset.info.class_names
    expected = [f"true: {names[t]}\npredicted: {names[p]}" for t, p in zip(labels[shown].tolist(), predicted)]
    assert window.gallery.captions() == expected
    assert window.gallery.caption_colours() == [
        "right" if t == p else "wrong" for t, p in zip(labels[shown].tolist(), predicted)
    ]
    window.gallery.set_filter("misclassified")
    wrong = (predict(model, images).argmax(dim=1) != labels).nonzero().flatten().tolist()
    assert window.gallery.filtered_count() == len(wrong)
    assert window.gallery.visible_indices() == wrong[: window.gallery.capacity]


def test_before_start_the_gallery_shows_the_untrained_networks_guesses(window):
    images, labels = window.session.gallery_images()
    torch.manual_seed(window.panel.seed.value())
    untrained = build(window.builder.architecture())
    names = window.session.dataset.info.class_names
    capacity = window.gallery.capacity
    guesses = predict(untrained, images[:capacity]).argmax(dim=1).tolist()
    assert window.gallery.captions() == [
        f"true: {names[t]}\npredicted: {names[p]}" for t, p in zip(labels[:capacity].tolist(), guesses)
    ]
    window.gallery.next_page()
    assert window.gallery.visible_indices()[0] == capacity
    assert window.gallery.captions()[0].startswith(f"true: {names[labels[capacity]]}")


def test_stop_ends_the_run_within_a_second(qtbot, window, tmp_path):
    window.panel.epochs.setValue(500)
    window.start_training()
    with qtbot.waitSignal(window.epochEnded, timeout=20_000):  # a run stopped before its first epoch leaves nothing
        pass
    started = time.perf_counter()
    with qtbot.waitSignal(window.runFinished, timeout=5_000) as finished:
        window.panel.stop_button.click()
    assert time.perf_counter() - started < 1.0
    assert finished.args == ["stopped"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "stopped"


def test_pause_holds_the_run_and_resume_continues(qtbot, window):
    window.panel.epochs.setValue(500)
    with qtbot.waitSignal(window.batchProgress, timeout=20_000):
        window.start_training()
    seen = []
    window.batchProgress.connect(seen.append)
    window.panel.pause_button.click()
    assert window.panel.pause_button.text() == "Resume" and window.session.phase is Phase.PAUSED
    task = window.session.training
    qtbot.waitUntil(lambda: task is not None and task.state.holding(), timeout=5_000)
    qtbot.waitUntil(lambda: window.runner.idle_queue(), timeout=5_000)  # what was reported before has arrived
    seen.clear()
    with qtbot.assertNotEmitted(window.batchProgress, wait=700):
        pass
    assert seen == [], "no batches while paused"
    with qtbot.waitSignal(window.batchProgress, timeout=5_000):
        window.panel.pause_button.click()
    with qtbot.waitSignal(window.runFinished, timeout=5_000):
        window.stop_training()


def test_batch_signals_are_throttled(qtbot, window):
    window.panel.batch_size.setValue(8)
    window.panel.epochs.setValue(500)
    packets = []
    window.batchProgress.connect(lambda packet: packets.append(time.perf_counter()))
    window.start_training()
    qtbot.waitUntil(lambda: len(packets) >= 12, timeout=20_000)
    with qtbot.waitSignal(window.runFinished, timeout=5_000):
        window.stop_training()
    span = packets[-1] - packets[0]
    assert len(packets) >= 5
    assert (len(packets) - 1) / span <= 25, "at most ~20 batch packets a second"


def test_closing_during_training_stops_the_run_and_joins_the_thread(qtbot, window, tmp_path):
    win = window
    win.panel.epochs.setValue(500)
    win.start_training()
    with qtbot.waitSignal(win.epochEnded, timeout=20_000):  # a run stopped before its first epoch leaves nothing
        pass
    assert running_threads()
    win.close()
    assert not running_threads()
    assert not win.isVisible()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "stopped"


def test_scripted_mode_trains_and_saves_a_screenshot(tmp_path):
    png = tmp_path / "window.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", WORKBENCH_RUNS_DIR=str(tmp_path / "runs"))
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("workbench")),
            "gui",
            "--preset",
            "seed-relu-mlp",
            "--dataset",
            "digits",
            "--epochs",
            "3",
            "--optimizer",
            "adam",
            "--start",
            "--screenshot",
            str(png),
            "--quit-when-done",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr
    image = QImage(str(png))
    assert image.width() >= 1000 and image.height() >= 600
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) >= 20, "a real window, not a blank picture"
    [run] = (tmp_path / "runs").iterdir()
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_without_fashion_mnist_the_window_falls_back_to_digits_with_a_notice(qtbot, tmp_path, monkeypatch):
    from workbench.core.data import datasets

    def no_network(*args, **kwargs):
        raise OSError("no network here")

    monkeypatch.setattr(datasets, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setattr(datasets, "user_root", lambda: tmp_path / "user")
    monkeypatch.setattr(datasets, "_download", no_network)
    win = MainWindow(interactive=False, runs_out=tmp_path / "run")
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.session.dataset is not None and not win.session.phase.busy, timeout=20_000)
    assert win.session.dataset.info.name == "digits"
    assert win.notice.isVisibleTo(win)
    assert "Fashion-MNIST is not available" in win.notice.text() and "apt install" in win.notice.text()
    assert win.panel.dataset.currentData() == "digits" and win.panel.start_button.isEnabled()
    win.close()


def test_save_and_open_an_architecture_and_refuse_a_broken_file(window, tmp_path):
    window.load_preset("cnn-small")
    path = tmp_path / "net.json"
    assert window.save_architecture_file(path)
    assert window.windowTitle().startswith("net.json — ")
    window.load_preset("seed-linear")
    assert window.open_architecture_file(path)
    assert [layer.type for layer in window.builder.architecture().layers][0] == "Conv2d"
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "workbench-architecture", "layers": [')
    assert not window.open_architecture_file(broken)
    assert "not valid JSON" in window.statusBar().currentMessage()
    assert window.builder.architecture().layers[0].type == "Conv2d"


def test_the_network_is_locked_while_training(qtbot, window):
    window.panel.epochs.setValue(500)
    window.start_training()
    with qtbot.waitSignal(window.batchProgress, timeout=20_000):
        pass
    before = window.builder.architecture()
    window.load_preset("cnn-small")
    assert window.builder.architecture() == before
    assert not window.action_set["train.start"].isEnabled() and not window.action_set["file.new"].isEnabled()
    with qtbot.waitSignal(window.runFinished, timeout=5_000):
        window.stop_training()
    assert window.action_set["train.start"].isEnabled()


def test_closing_during_training_can_be_cancelled(qtbot, window, monkeypatch):
    window.panel.epochs.setValue(500)
    window.start_training()
    with qtbot.waitSignal(window.batchProgress, timeout=20_000):
        pass
    monkeypatch.setattr(window, "confirm_stop_on_close", lambda: False)
    window.close()
    assert window.isVisible() and window.is_training()
    with qtbot.waitSignal(window.runFinished, timeout=5_000):
        window.stop_training()


def test_the_evaluation_tab_shows_the_test_confusion_matrix_and_a_cell_filters_the_gallery(qtbot, window, tmp_path):
    from sklearn.metrics import confusion_matrix

    window.panel.epochs.setValue(2)
    with qtbot.waitSignal(window.runFinished, timeout=60_000):
        window.start_training()
    saved = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    model = build(window.session.run.architecture)
    model.load_state_dict(safetensors.torch.load_file(tmp_path / "run" / "model.safetensors"))
    test_x, test_y = window.session.dataset.test_x, window.session.dataset.test_y
    predicted = predict(model, test_x).argmax(dim=1)
    expected = confusion_matrix(test_y.numpy(), predicted.numpy(), labels=range(10))
    assert [
        [int(window.evaluation_view.cell_text(t, p).replace(",", "")) for p in range(10)] for t in range(10)
    ] == expected.tolist()
    assert saved["accuracy"] == pytest.approx((predicted == test_y).float().mean().item())

    off_diagonal = [(t, p) for t in range(10) for p in range(10) if t != p and expected[t, p] > 0]
    true_class, predicted_class = off_diagonal[0] if off_diagonal else (0, 0)
    window.evaluation_view.select_cell(true_class, predicted_class)
    names = window.session.dataset.info.class_names
    count = int(expected[true_class, predicted_class])
    assert len(window.session.gallery_images()[1]) == count
    shown = window.gallery.captions()
    assert len(shown) == min(count, window.gallery.capacity)
    assert all(caption == f"true: {names[true_class]}\npredicted: {names[predicted_class]}" for caption in shown)
