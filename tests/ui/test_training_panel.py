"""The settings form: it produces the TrainConfig the user sees, and locks while a run trains."""

import pytest

from workbench.core.config import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig
from workbench.ui.training_panel import TrainingPanel, format_duration


@pytest.fixture
def panel(qtbot):
    widget = TrainingPanel()
    qtbot.addWidget(widget)
    return widget


def test_defaults_are_the_class_recipe(panel):
    config = panel.config()
    assert (config.train_size, config.val_size, config.batch_size) == (10_000, 1_000, 512)
    assert (config.optimizer, config.lr, config.momentum, config.loss) == ("sgd", 0.001, 0.9, "cross-entropy")
    assert config.dataset == "fashion-mnist" and config.device == "auto"
    config.check()


def test_every_choice_of_the_core_is_offered(panel):
    for combo, choices in ((panel.optimizer, OPTIMIZERS), (panel.loss, LOSSES), (panel.schedule, SCHEDULES)):
        assert [combo.itemData(i) for i in range(combo.count())] == list(choices)
    assert [panel.device.itemData(i) for i in range(panel.device.count())][:2] == ["auto", "cpu"]


def test_a_config_shown_in_the_form_comes_back_unchanged(panel):
    config = TrainConfig(dataset="digits", train_size=1200, val_size=100, epochs=7, batch_size=64, optimizer="sgd",
                         lr=0.05, momentum=0.5, nesterov=True, weight_decay=1e-4, loss="mse", schedule="cosine",
                         early_stopping=3, seed=42, device="cpu")
    panel.set_config(config)
    assert panel.config() == config


def test_small_datasets_shrink_the_default_sizes(panel):
    panel.fit_sizes(1437)
    assert (panel.train_size.value(), panel.val_size.value()) == (1437 - 143, 143)
    assert panel.train_size.maximum() == 1437


def test_settings_lock_while_running_and_start_needs_a_valid_network(panel):
    panel.set_running(True)
    assert not panel.settings_box.isEnabled() and not panel.start_button.isEnabled()
    assert panel.stop_button.isEnabled() and panel.pause_button.isEnabled()
    panel.set_running(False)
    panel.set_start_allowed(False, "layer 2 Linear expects a flat input")
    assert not panel.start_button.isEnabled() and panel.start_hint.isVisibleTo(panel)
    panel.set_start_allowed(True)
    assert panel.start_button.isEnabled() and not panel.start_hint.isVisibleTo(panel)


def test_momentum_only_for_optimizers_that_use_it(panel):
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("adam"))
    assert not panel.momentum.isEnabled() and not panel.nesterov.isEnabled()
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("sgd"))
    assert panel.momentum.isEnabled() and panel.nesterov.isEnabled()


def test_progress_shows_epoch_batch_rate_and_time_left(panel):
    panel.show_progress(2, 10, 5, 20, 12345.6, 75)
    assert panel.progress.text().startswith("Epoch 2/10 · batch 5/20")
    assert panel.progress_detail.text() == "12,346 samples/s · 1:15 left"
    assert panel.progress.value() == round((20 + 5) / 200 * 1000)
    assert format_duration(3725) == "1:02:05" and format_duration(float("nan")) == "…"
