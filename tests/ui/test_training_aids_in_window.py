"""Aids to choosing settings in the window: the learning-rate range test behind "Find…", and the Data tab's
augmented samples of the settings' augmentation."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from workbench.core.experiments.lr_find import LearningRateTest


def cell_pixels(browser) -> list[np.ndarray]:
    """The pixels of the Data tab's page, image by image."""
    pictures = []
    for cell in browser._cells:
        if cell.isHidden():
            continue
        image = cell.pixmap().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
        pictures.append(np.array(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine()))
    return pictures


def test_find_runs_the_range_test_in_the_background_and_use_puts_the_rate_in_the_settings(qtbot, window):
    panel = window.panel
    found: list[LearningRateTest] = []
    window.session.learning_rate_found.connect(found.append)
    qtbot.mouseClick(panel.find_lr, Qt.MouseButton.LeftButton)
    assert window.session.phase.value == "finding a learning rate"
    assert not panel.start_button.isEnabled() or not panel.settings_box.isEnabled(), "nothing else starts meanwhile"
    qtbot.waitUntil(lambda: bool(found), timeout=60_000)
    assert window.session.phase.value == "idle"
    test = found[0]
    assert 1e-5 < test.suggested < 1.0
    dialog = window.learning_rate_dialog
    assert f"{test.suggested:.3g}" in dialog.summary.text() and "steepest fall" in dialog.summary.text()
    x, y = dialog.curve.getData()
    assert len(x) == len(test.learning_rates) and np.allclose(10 ** np.asarray(x), test.learning_rates)
    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert window.session.config.lr == round(test.suggested, 6), "the suggestion is the setting now"


def test_closing_the_window_during_the_range_test_stops_it(qtbot, window):
    window.panel.train_size.setValue(1000)
    qtbot.mouseClick(window.panel.find_lr, Qt.MouseButton.LeftButton)
    window.close()  # the fixture's check for leaked threads fails the test if the test is still running


def test_the_data_tab_shows_the_training_images_as_the_augmentation_draws_them(qtbot, window):
    browser = window.data_browser
    window.show_tab("data")
    assert not browser.augmented.isEnabled() and "Tick an augmentation" in browser.augmented.toolTip()
    plain = cell_pixels(browser)
    window.panel.set_augment("crop,rotate,erase")
    assert window.session.config.augment == "crop,rotate,erase"
    assert browser.augmented.isEnabled()
    browser.augmented.setChecked(True)
    first = cell_pixels(browser)
    changed = sum(not np.array_equal(a, b) for a, b in zip(plain, first))
    assert changed >= 0.9 * len(plain), "nearly every image moves, turns or loses a patch"
    browser.next_page()
    browser.previous_page()
    assert all(np.array_equal(a, b) for a, b in zip(first, cell_pixels(browser))), "a draw is the same each time"
    qtbot.mouseClick(browser.new_draw, Qt.MouseButton.LeftButton)
    assert sum(not np.array_equal(a, b) for a, b in zip(first, cell_pixels(browser))) >= 0.9 * len(plain)
    browser.augmented.setChecked(False)
    assert all(np.array_equal(a, b) for a, b in zip(plain, cell_pixels(browser)))
    window.panel.set_augment("none")
    assert not browser.augmented.isEnabled()
