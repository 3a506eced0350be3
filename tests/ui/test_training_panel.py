"""The settings form: it produces the TrainConfig the user sees, and locks while a run trains."""

import pytest

from workbench.core.training.config import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig
from workbench.ui.panels.training_panel import CHOOSE_FOLDER, TrainingPanel, format_duration


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
    config = TrainConfig(
        dataset="digits",
        train_size=1200,
        val_size=100,
        epochs=7,
        batch_size=64,
        optimizer="sgd",
        lr=0.05,
        momentum=0.5,
        nesterov=True,
        weight_decay=1e-4,
        loss="mse",
        schedule="cosine",
        early_stopping=3,
        seed=42,
        device="cpu",
        augment="crop,erase",
    )
    panel.set_config(config)
    assert panel.config() == config
    assert [name for name, box in panel.augment.items() if box.isChecked()] == ["crop", "erase"]


def test_flips_are_not_offered_where_a_mirror_image_changes_the_class(panel):
    panel.set_augment("crop,flip")
    panel.dataset.setCurrentIndex(panel.dataset.findData("fashion-mnist"))
    assert panel.config().augment == "crop,flip"
    panel.dataset.setCurrentIndex(panel.dataset.findData("digits"))
    assert not panel.augment["flip"].isEnabled() and "mirrored digit" in panel.augment["flip"].toolTip()
    assert panel.config().augment == "crop", "a ticked flip is dropped where it would change the class"
    panel.config().check()
    panel.set_augment("none")
    assert panel.config().augment == "none"


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


# "Image folder…": the user's own images


class FolderAnswers:
    """Stands in for the panel's dialogs: answers the folder and image-option questions, records problems."""

    def __init__(self, panel, folder, options=(16, 1)):
        self.folder, self.options, self.problems, self.asked = folder, options, [], []
        panel.choose_folder = lambda parent: str(self.folder) if self.folder else ""
        panel.choose_image_options = self.choose_options
        panel.report_problem = lambda parent, message: self.problems.append(message)

    def choose_options(self, parent, info, image_size, channels):
        self.asked.append((info.class_names, image_size, channels))
        return self.options


@pytest.fixture
def shapes(tmp_path):
    from tests.helpers import draw_tree

    return draw_tree(tmp_path / "shapes", per_class=3)


def emitted(panel):
    names = []
    panel.datasetChanged.connect(names.append)
    return names


def choose_image_folder(panel):
    panel.dataset.setCurrentIndex(panel.dataset.findData(CHOOSE_FOLDER))


def test_image_folder_entry_adds_and_selects_the_chosen_folder(panel, shapes):
    answers = FolderAnswers(panel, shapes, options=(16, 1))
    names = emitted(panel)
    assert panel.dataset.itemData(panel.dataset.count() - 1) == CHOOSE_FOLDER
    assert panel.dataset.itemText(panel.dataset.count() - 1) == "Image folder…"
    choose_image_folder(panel)
    name = f"folder:{shapes.resolve()}"
    assert names == [name]
    assert answers.asked == [(("circle", "square", "stripes"), None, None)]
    assert panel.dataset.currentData() == name and panel.dataset.currentText() == "Folder: shapes"
    assert panel.dataset.itemData(panel.dataset.count() - 1) == CHOOSE_FOLDER  # still the last entry
    config = panel.config()
    assert (config.dataset, config.image_size, config.channels) == (name, 16, 1)
    config.check()
    assert panel.load_options(name) == {"image_size": 16, "channels": 1, "seed": 0}
    assert panel.load_options("digits") == {}


def test_choosing_the_same_folder_again_updates_its_options(panel, shapes):
    answers = FolderAnswers(panel, shapes, options=(16, 1))
    choose_image_folder(panel)
    answers.options = (32, None)
    names = emitted(panel)
    choose_image_folder(panel)
    assert answers.asked[-1] == (("circle", "square", "stripes"), 16, 1)  # the dialog starts from the last answer
    assert names == [f"folder:{shapes.resolve()}"]
    assert (panel.config().image_size, panel.config().channels) == (32, None)
    entries = [panel.dataset.itemData(i) for i in range(panel.dataset.count())]
    assert entries.count(names[0]) == 1


@pytest.mark.parametrize("cancel_at", ["folder", "options"])
def test_cancelling_goes_back_to_the_dataset_shown_before(panel, shapes, cancel_at):
    panel.dataset.setCurrentIndex(panel.dataset.findData("digits"))
    FolderAnswers(panel, None if cancel_at == "folder" else shapes, options=None)
    count, names = panel.dataset.count(), emitted(panel)
    choose_image_folder(panel)
    assert panel.dataset.currentData() == "digits" and names == [] and panel.dataset.count() == count


def test_cancelling_goes_back_even_to_a_dataset_selected_with_signals_blocked(panel):
    FolderAnswers(panel, None)
    panel.dataset.blockSignals(True)  # as the main window does when a dataset fails to load
    panel.dataset.setCurrentIndex(panel.dataset.findData("digits"))
    panel.dataset.blockSignals(False)
    choose_image_folder(panel)
    assert panel.dataset.currentData() == "digits"


def test_a_folder_that_cannot_be_used_is_explained_and_not_added(panel, tmp_path):
    (tmp_path / "one" / "cat").mkdir(parents=True)
    answers = FolderAnswers(panel, tmp_path / "one")
    count, names = panel.dataset.count(), emitted(panel)
    choose_image_folder(panel)
    assert len(answers.problems) == 1 and "must hold one sub-folder per class" in answers.problems[0]
    assert answers.asked == [] and names == [] and panel.dataset.count() == count
    assert panel.dataset.currentData() == "fashion-mnist"


def test_a_folder_config_comes_back_with_its_entry_and_options(panel, shapes):
    names = emitted(panel)
    config = TrainConfig(dataset=f"folder:{shapes}", image_size=20, channels=3, train_size=60, val_size=5, seed=9)
    panel.set_config(config)
    assert panel.config() == config and panel.dataset.currentText() == "Folder: shapes"
    assert names == [config.dataset]  # once, though the dataset, its options and the seed all changed
    panel.set_config(config)
    assert names == [config.dataset]


def test_the_seed_reshapes_a_folder_but_not_a_registered_dataset(panel, shapes):
    names = emitted(panel)
    panel.seed.setValue(5)
    assert names == []
    panel.set_config(TrainConfig(dataset=f"folder:{shapes}"))
    panel.seed.setValue(6)
    assert names == [f"folder:{shapes.resolve()}"] * 2
    assert panel.load_options(names[0])["seed"] == 6


def test_the_image_options_dialog_starts_from_the_given_answers(qtbot, shapes):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QComboBox, QSpinBox

    from workbench.core.data import datasets
    from workbench.ui.panels.training_panel import ask_image_options

    info = datasets.get_info(f"folder:{shapes}")
    seen = {}

    def answer():
        dialog = QApplication.activeModalWidget()
        size, kind = dialog.findChild(QSpinBox), dialog.findChild(QComboBox)
        seen.update(size=size.value(), kind=kind.currentText())
        size.setValue(12)
        kind.setCurrentIndex(kind.findData("3"))
        dialog.accept()

    QTimer.singleShot(0, answer)
    assert ask_image_options(None, info, None, None) == (12, 3)
    assert seen == {"size": 28, "kind": "Automatic (colour)"}
    QTimer.singleShot(0, lambda: QApplication.activeModalWidget().reject())
    assert ask_image_options(None, info, 20, 1) is None


def test_mixed_precision_and_compile_round_trip_through_the_form(qtbot):
    from workbench.core.training.config import TrainConfig
    from workbench.ui.panels.training_panel import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    assert panel.config().mixed_precision == "auto" and panel.config().compile is False
    panel.set_config(TrainConfig(dataset="digits", mixed_precision="off", compile=True))
    assert panel.config().mixed_precision == "off" and panel.config().compile is True
