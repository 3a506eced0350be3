"""What the window remembers between starts, the Help menu, shortcuts, and the colours under a dark system palette.

Every test here keeps its settings in a temporary folder through $WORKBENCH_CONFIG_DIR.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import PySide6
import pytest
import torch
from PySide6.QtCore import QSettings, Qt, qVersion
from PySide6.QtGui import QColor, QImage, QKeySequence, QPalette
from PySide6.QtWidgets import QApplication

from workbench import __version__
from workbench.core.presets import load_preset
from workbench.core.training.config import TrainConfig
from workbench.ui.app import names_work
from workbench.ui.images import NEUTRAL_COLOUR, RIGHT_COLOUR, WRONG_COLOUR
from workbench.ui.main_window import DEFAULT_SIZE, MainWindow
from workbench.ui.settings import CONFIG_DIR_ENV, MAX_RECENT, SETTINGS_FILE

LEFT = Qt.DockWidgetArea.LeftDockWidgetArea
RIGHT = Qt.DockWidgetArea.RightDockWidgetArea


@pytest.fixture
def config_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv(CONFIG_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def start(qtbot, tmp_path, config_dir):
    """Open a window the way the app does when started by hand (remembering), shown."""
    opened = []

    def open_window(**options) -> MainWindow:
        options.setdefault("remember", True)
        win = MainWindow(interactive=False, runs_out=tmp_path / "run", **options)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: win.session.dataset is not None and not win.session.phase.busy, timeout=20_000)
        opened.append(win)
        return win

    yield open_window
    for win in opened:
        win.close()


def menu_action(win: MainWindow, menu: str, text: str):
    """The action called ``text`` in the menu called ``menu`` (both as written, with their ``&``)."""
    [found] = [
        action
        for top in win.menuBar().actions()
        if top.text() == menu
        for action in top.menu().actions()
        if action.text() == text
    ]
    return found


def write_settings(folder: Path, values: dict) -> None:
    settings = QSettings(str(folder / SETTINGS_FILE), QSettings.Format.IniFormat)
    for key, value in values.items():
        settings.setValue(key, value)
    settings.sync()


def test_a_restarted_window_has_the_layout_network_settings_and_recent_files_of_the_last(start, tmp_path):
    first = start()
    first.load_dataset("digits")
    first.load_preset("seed-relu-mlp")
    panel = first.panel
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("adam"))
    panel.lr.setValue(0.005)
    panel.epochs.setValue(7)
    panel.seed.setValue(3)
    panel.train_size.setValue(900)
    panel.val_size.setValue(150)
    saved, opened = tmp_path / "saved.json", tmp_path / "opened.json"
    assert first.save_architecture_file(saved)
    load_preset("mlp").save(opened)
    assert first.open_architecture_file(opened)
    network, training = first.docks
    first.addDockWidget(RIGHT, network)
    training.hide()
    architecture, config = first.builder.architecture().to_dict(), first.panel.config()
    first.close()

    second = start()
    assert second.builder.architecture().to_dict() == architecture
    assert second.panel.config() == config
    assert second.session.dataset.info.name == "digits"
    assert second.dockWidgetArea(second.docks[0]) == RIGHT
    assert second.docks[1].isHidden()
    assert second.session.recent_files == [opened, saved]
    titles = [action.text() for action in second.recent_menu.actions() if not action.isSeparator()]
    assert titles == ["&1 opened.json", "&2 saved.json", "&Clear the list"]


def test_a_restarted_window_offers_the_last_export_format_and_folder(start, tmp_path):
    first = start()
    first.session.export_format, first.session.export_folder = "pt2", tmp_path / "exports"
    first.close()
    second = start()
    assert (second.session.export_format, second.session.export_folder) == ("pt2", tmp_path / "exports")


GEOMETRY_PROBE = """
import json, sys
from PySide6.QtWidgets import QApplication
from workbench.ui.main_window import MainWindow
app = QApplication([])
win = MainWindow(interactive=False, remember=True)
win.show()
app.processEvents()
print(json.dumps([win.x(), win.y(), win.width(), win.height()]))
if len(sys.argv) > 1:
    win.setGeometry(*map(int, sys.argv[1:]))
win.close()
"""


def test_a_restarted_window_has_the_geometry_of_the_last(tmp_path, config_dir):
    """Qt fits a restored geometry into the screen (and gives up on a screen of a very different width), and the
    offscreen screen of the other tests (800×800) is smaller than the window: both starts run in processes of their
    own, on a 2560×1600 offscreen screen."""
    screens = tmp_path / "screens.json"
    screens.write_text(
        json.dumps(
            {
                "screens": [
                    {
                        "name": "big",
                        "x": 0,
                        "y": 0,
                        "width": 2560,
                        "height": 1600,
                        "logicalDpi": 96,
                        "logicalBaseDpi": 96,
                        "dpr": 1,
                    }
                ]
            }
        )
    )
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={screens}")

    def start_and_close(*geometry: int) -> list[int]:
        completed = subprocess.run(
            [sys.executable, "-c", GEOMETRY_PROBE, *map(str, geometry)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=tmp_path,
        )
        assert completed.returncode == 0, completed.stderr
        return json.loads(completed.stdout.splitlines()[-1])

    assert start_and_close(100, 80, 1500, 950)[2:] == list(DEFAULT_SIZE)
    x, y, width, height = start_and_close()
    assert (width, height) == (1500, 950)
    assert abs(x - 100) <= 4 and abs(y - 80) <= 4  # give or take the offscreen platform's window frame


def test_reset_layout_puts_the_docks_back_and_the_window_at_its_first_size(start):
    win = start()
    network, training = win.docks
    win.addDockWidget(RIGHT, network)
    training.setFloating(True)
    training.hide()
    win.resize(1000, 700)
    menu_action(win, "&View", "Reset &layout").trigger()
    assert win.dockWidgetArea(network) == LEFT and win.dockWidgetArea(training) == RIGHT
    assert not network.isHidden() and not training.isHidden() and not training.isFloating()
    assert (win.width(), win.height()) == DEFAULT_SIZE


def test_a_reset_layout_is_what_the_next_start_shows(start):
    first = start()
    first.docks[0].hide()
    first.reset_layout()
    first.close()
    second = start()
    assert not second.docks[0].isHidden() and second.dockWidgetArea(second.docks[0]) == LEFT


@pytest.mark.parametrize(
    "values",
    [
        {
            "window/geometry": "not bytes",
            "window/state": "@ByteArray(garbage)",
            "work/architecture": "{not json",
            "work/config": '{"epochs": "many"}',
            "files/recent": "not a list",
        },
        {
            "work/architecture": '{"format": "something else"}',
            "work/config": "[1, 2]",
            "files/recent": '[1, null, "", {"a": 2}]',
        },
        {
            "work/architecture": json.dumps(
                {
                    "format": "workbench-architecture",
                    "version": 1,
                    "input_shape": [1, 8, 8],
                    "num_classes": 10,
                    "layers": [{"type": "NoSuchLayer"}],
                }
            ),
            "work/config": json.dumps({"dataset": "digits", "unknown_setting": 1}),
            "files/recent": '"one.json"',
        },
    ],
)
def test_damaged_settings_start_the_window_with_its_defaults(start, config_dir, values):
    config_dir.mkdir()
    write_settings(config_dir, values)
    win = start()
    assert win.builder.architecture().name == "seed-simplenet"
    assert win.panel.epochs.value() == TrainConfig().epochs and win.panel.optimizer.currentData() == "sgd"
    assert win.session.recent_files == []
    assert win.docks[0].isVisible() and win.dockWidgetArea(win.docks[0]) == LEFT
    win.close()  # and it saves good values over the damaged ones
    assert start().builder.architecture().name == "seed-simplenet"


def test_a_bytes_state_that_is_not_a_layout_is_ignored(start, config_dir):
    config_dir.mkdir()
    write_settings(config_dir, {"window/geometry": b"\x01\x02garbage", "window/state": b"\x00\xffgarbage" * 10})
    win = start()
    assert win.docks[0].isVisible() and win.docks[1].isVisible()


def test_without_remember_nothing_is_read_or_written(start, config_dir, tmp_path):
    first = start()
    first.load_preset("cnn-small")
    assert first.save_architecture_file(tmp_path / "a.json")
    first.close()
    assert (config_dir / SETTINGS_FILE).is_file()
    before = (config_dir / SETTINGS_FILE).read_bytes()
    plain = start(remember=False)
    assert plain.builder.architecture().name == "seed-simplenet" and plain.session.recent_files == []
    plain.load_preset("mlp")
    assert plain.save_architecture_file(tmp_path / "b.json")
    plain.close()
    assert (config_dir / SETTINGS_FILE).read_bytes() == before


def test_a_command_line_that_names_the_work_keeps_the_layout_but_not_the_last_work(start):
    first = start()
    first.load_preset("cnn-small")
    first.panel.epochs.setValue(9)
    first.addDockWidget(RIGHT, first.docks[0])
    first.close()
    second = start(restore_work=False)
    assert second.builder.architecture().name == "seed-simplenet" and second.panel.epochs.value() != 9
    assert second.dockWidgetArea(second.docks[0]) == RIGHT


def test_names_work_tells_a_plain_start_from_a_scripted_one():
    plain = argparse.Namespace(
        preset=None,
        arch=None,
        dataset=None,
        image_size=None,
        channels=None,
        epochs=None,
        train_size=None,
        val_size=None,
        batch_size=None,
        seed=None,
        lr=None,
        optimizer=None,
        device=None,
        start=False,
        tab="runs",
        screenshot=None,
        quit_when_done=False,
    )
    assert not names_work(plain)
    assert names_work(argparse.Namespace(**{**vars(plain), "preset": "mlp"}))
    assert names_work(argparse.Namespace(**{**vars(plain), "seed": 0}))
    assert names_work(argparse.Namespace(**{**vars(plain), "start": True}))


def test_the_scripted_mode_neither_reads_nor_writes_the_settings(tmp_path, config_dir):
    config_dir.mkdir()
    write_settings(config_dir, {"window/geometry": b"garbage", "work/architecture": load_preset("mlp").to_json()})
    before = (config_dir / SETTINGS_FILE).read_bytes()
    png = tmp_path / "window.png"
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        WORKBENCH_RUNS_DIR=str(tmp_path / "runs"),
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
    )
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("workbench")),
            "gui",
            "--tab",
            "training",
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
    assert QImage(str(png)).width() == DEFAULT_SIZE[0]
    assert (config_dir / SETTINGS_FILE).read_bytes() == before
    assert list(config_dir.iterdir()) == [config_dir / SETTINGS_FILE]
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home" / ".config").exists()


# ---- recent files ---------------------------------------------------------------------------------------------


def test_recent_files_list_the_newest_first_without_duplicates_up_to_the_limit(start, tmp_path):
    win = start()
    paths = [tmp_path / f"net{index}.json" for index in range(MAX_RECENT + 2)]
    for path in paths:
        assert win.save_architecture_file(path)
    assert win.save_architecture_file(paths[3])
    assert (
        win.session.recent_files
        == [paths[3]] + [path for path in reversed(paths) if path != paths[3]][: MAX_RECENT - 1]
    )
    first = win.recent_menu.actions()[0]
    assert first.text() == "&1 net3.json" and first.toolTip() == str(paths[3])
    win.load_preset("mlp")
    first.trigger()
    assert win.session.file_path == paths[3] and win.builder.architecture().name == "seed-simplenet"


def test_a_recent_file_that_has_gone_is_taken_off_the_list(start, tmp_path):
    win = start()
    kept, gone = tmp_path / "kept.json", tmp_path / "gone.json"
    assert win.save_architecture_file(kept) and win.save_architecture_file(gone)
    gone.unlink()
    assert not win.open_recent_file(gone)
    assert win.session.recent_files == [kept]
    assert "gone.json is not there any more" in win.statusBar().currentMessage()
    win.clear_recent_files()
    actions = win.recent_menu.actions()
    assert [action.text() for action in actions] == ["&Clear the list"] and not actions[0].isEnabled()


def test_recent_files_are_kept_at_once_not_only_on_closing(start, tmp_path, config_dir):
    win = start()
    assert win.save_architecture_file(tmp_path / "a.json")
    stored = QSettings(str(config_dir / SETTINGS_FILE), QSettings.Format.IniFormat).value("files/recent")
    assert json.loads(stored) == [str(tmp_path / "a.json")]


# ---- help, about, shortcuts -----------------------------------------------------------------------------------


def test_about_lists_the_versions_and_the_training_devices(window):
    box = window.show_about()
    text = box.text()
    for version in (__version__, torch.__version__, qVersion(), PySide6.__version__, platform.python_version()):
        assert version in text
    assert "CPU" in text and "Training devices" in text
    for index in range(torch.cuda.device_count()):
        assert torch.cuda.get_device_name(index) in text
    assert f"PyTorch: {torch.__version__}" in box.detailedText()


def test_user_guide_opens_the_readme_that_is_there(window):
    asked = []
    window.open_url = lambda url: asked.append(url) or True
    menu_action(window, "&Help", "&User guide").trigger()
    [url] = asked
    path = Path(url.toLocalFile())
    assert url.isLocalFile() and path.is_file() and path.name == "README.md"
    assert "## The desktop app" in path.read_text(encoding="utf-8")


def test_user_guide_that_cannot_be_opened_says_where_it_is(window):
    window.open_url = lambda url: False
    url = window.show_user_guide()
    assert url.toLocalFile() in window.statusBar().currentMessage()


@pytest.mark.parametrize(
    "menu, text, keys",
    [
        ("&Train", "&Start", "Ctrl+R"),
        ("&Train", "S&top", "Ctrl+."),
        ("&File", "&Save architecture", "Ctrl+S"),
        ("&File", "&Open architecture…", "Ctrl+O"),
        ("&Help", "&User guide", "F1"),
    ],
)
def test_keyboard_shortcuts(window, menu, text, keys):
    assert menu_action(window, menu, text).shortcut().toString() == QKeySequence(keys).toString()


# ---- colours ----------------------------------------------------------------------------------------------------


def contrast(foreground: QColor, background: QColor) -> float:
    """WCAG's contrast ratio (1 to 21)."""

    def luminance(colour: QColor) -> float:
        channels = [value / 255 for value in (colour.red(), colour.green(), colour.blue())]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def dark_system(qapp):
    """The palette a dark desktop gives the app, for the length of one test."""
    before = QApplication.palette()
    qapp.setPalette(QPalette(QColor("#3c3c3c"), QColor("#2d2d2d")))
    yield
    qapp.setPalette(before)


def test_under_a_dark_palette_the_pages_stay_light_and_the_captions_readable(dark_system, window):
    assert window.palette().color(QPalette.ColorRole.Window).lightness() < 128  # the chrome follows the system
    gallery_page = window.tabs.widget(0)
    background = gallery_page.palette().color(QPalette.ColorRole.Window)
    assert gallery_page.autoFillBackground() and background.lightness() > 200
    assert window.gallery.palette().color(QPalette.ColorRole.Window) == background  # inherited down to the gallery
    for colour in (RIGHT_COLOUR, WRONG_COLOUR, NEUTRAL_COLOUR):
        assert contrast(QColor(colour), background) >= 4.5, colour
    for index in range(window.tabs.count()):
        assert window.tabs.widget(index).palette().color(QPalette.ColorRole.WindowText).lightness() < 60


def test_the_notice_keeps_its_own_readable_colours_under_a_dark_palette(dark_system, window):
    window.show_notice("Fashion-MNIST is not available")
    image = window.notice.grab().toImage()
    corner = QColor(image.pixel(2, 2))
    assert corner.lightness() > 200  # the light yellow box, whatever the system palette
    assert contrast(QColor("#5c4400"), QColor("#fff4ce")) >= 7


def test_the_pages_follow_a_change_of_system_palette_while_running(window, qapp):
    page = window.tabs.widget(0)
    assert not page.autoFillBackground()
    before = QApplication.palette()
    qapp.setPalette(QPalette(QColor("#3c3c3c"), QColor("#2d2d2d")))
    try:
        qapp.processEvents()
        assert page.autoFillBackground() and page.palette().color(QPalette.ColorRole.Window).lightness() > 200
    finally:
        qapp.setPalette(before)
    qapp.processEvents()
    assert not page.autoFillBackground()
    assert page.palette().color(QPalette.ColorRole.Window) == before.color(QPalette.ColorRole.Window)


def _text_contrast(label) -> float:
    """Contrast between a message label's background (right edge) and its darkest pixel (the text)."""
    image = label.grab().toImage()
    background = QColor(image.pixel(image.width() - 2, image.height() // 2))
    darkest = min(
        (QColor(image.pixel(x, y)) for x in range(8, image.width() - 1) for y in range(image.height())),
        key=lambda colour: colour.lightness(),
    )
    return contrast(darkest, background)


def test_under_a_dark_palette_the_red_problem_lines_stay_readable(dark_system, window, qtbot):
    architecture = window.builder.architecture()
    del architecture.layers[0]  # no Flatten: the network no longer fits
    window.builder.set_architecture(architecture)
    hint = window.panel.start_hint
    assert hint.isVisibleTo(window.panel) and "Flatten" in hint.text()
    assert _text_contrast(hint) >= 4.5
    window.builder.undo_stack.undo()

    dialog = window.run_on_cluster()
    assert dialog.problem.isHidden()  # nothing wrong, nothing shown
    (dialog.folder / "config.json").unlink()  # the hand-off folder lost a file behind the dialog's back
    dialog.machines.setValue(3)
    assert not dialog.problem.isHidden() and dialog.problem.text()
    assert _text_contrast(dialog.problem) >= 4.5
    dialog.deleteLater()
