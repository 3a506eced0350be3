"""The workbench window: layer builder (left), training settings (right), plots, gallery and data."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from PySide6.QtCore import QEvent, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QColor, QDesktopServices, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.architecture import Architecture, Layer, build
from workbench.core.data import datasets
from workbench.core.errors import WorkbenchError
from workbench.core.export.formats import export_model
from workbench.core.presets import load_preset, preset_names, with_classes
from workbench.core.runs.folders import RUN_FILE, default_runs_dir, load_checkpoint, new_run_dir, read_run
from workbench.core.runs.metrics import Evaluation, evaluate_model
from workbench.core.runs.predict import load_images
from workbench.core.runs.trained import TrainedModel, evaluate_trained, load_trained
from workbench.core.training.config import TrainConfig
from workbench.core.training.distributed import write_handoff
from workbench.core.training.engine import fit_to_dataset, predict
from workbench.ui.dialogs.cluster_dialog import ClusterDialog
from workbench.ui.dialogs.export_dialog import ExportDialog
from workbench.ui.help import about_html, about_text, user_guide_path
from workbench.ui.images import to_display
from workbench.ui.panels.layer_builder import LayerBuilder
from workbench.ui.panels.training_panel import TrainingPanel
from workbench.ui.settings import LAYOUT_VERSION, SessionStore, remember_file
from workbench.ui.views.activation_explorer import ActivationExplorer
from workbench.ui.views.data_browser import DataBrowser
from workbench.ui.views.evaluation import EvaluationView
from workbench.ui.views.gallery import UNLABELLED, Gallery
from workbench.ui.views.gradient_plots import GradientPlots
from workbench.ui.views.plots import LivePlots
from workbench.ui.views.run_history import RunHistory
from workbench.ui.views.weights_view import WeightsView
from workbench.ui.worker import BatchPacket, EpochPacket, FunctionWorker, RunEnd, RunStart, ThreadHandle, TrainingWorker

DEFAULT_PRESET = "seed-simplenet"
DEFAULT_DATASET = "fashion-mnist"
FALLBACK_DATASET = "digits"
DEFAULT_SIZE = (1600, 1000)


class MainWindow(QMainWindow):
    """The whole app. ``runFinished`` fires after every run, however it ended (scripted mode waits on it).

    ``interactive`` False (scripted mode, tests) reports problems in the status bar and on stderr
    instead of in dialogs, and closing during a run stops it without asking.

    ``remember`` True (the app started by hand) restores what the last window closed with — geometry, dock
    layout, recent files and, unless ``restore_work`` is False, the network, dataset and settings — and saves
    them again on closing (see :mod:`workbench.ui.settings`). Without it the window starts from the defaults
    and writes nothing.

    ``open_url`` opens the user guide (``QDesktopServices.openUrl``; tests replace it).
    """

    runFinished = Signal(str)  # the run's status, or "failed"
    datasetReady = Signal(str)

    def __init__(
        self, interactive: bool = True, runs_out: Path | None = None, remember: bool = False, restore_work: bool = True
    ):
        super().__init__()
        # Training runs on a worker thread; a shorter GIL switch interval keeps painting from
        # stalling it (and it from stalling the event loop) for the default 5 ms at a time.
        sys.setswitchinterval(0.0005)
        self.interactive = interactive
        self.runs_out = runs_out
        self.dataset: datasets.LoadedDataset | None = None
        self.val_images: tuple[torch.Tensor, torch.Tensor] | None = None
        self.preview_model: torch.nn.Module | None = None
        self.session: ThreadHandle | None = None
        self.loader: ThreadHandle | None = None
        self.pending_start = False
        self.pending_resume: tuple[Path, int] | None = None
        self.run_architecture: Architecture | None = None
        self.run_folder: Path | None = None
        self.run_config: TrainConfig | None = None
        self.evaluation_split = ""
        self.evaluated: tuple[torch.nn.Module, str] | None = None  # the network behind the matrix shown, its dataset
        self.preview_label = ""
        self.evaluator: ThreadHandle | None = None
        self.exporter: ThreadHandle | None = None
        self.current_run: Path | None = None  # the run folder whose trained network the window shows
        self.last_export = None
        self.last_end: RunEnd | None = None
        self.last_status = ""
        self.file_path: Path | None = None
        self.recent_files: list[Path] = []
        self.store = SessionStore() if remember else None
        self.open_url = QDesktopServices.openUrl
        self.setWindowTitle("workbench")
        self.resize(*DEFAULT_SIZE)

        self.builder = LayerBuilder()
        self.panel = TrainingPanel()
        self.plots = LivePlots()
        self.gallery = Gallery(rows=3, columns=5)
        self.data_browser = DataBrowser()
        self.evaluation_view = EvaluationView()
        self.activation_explorer = ActivationExplorer()
        self.gradient_plots = GradientPlots()
        self.weights_view = WeightsView()
        self.run_history = RunHistory(interactive=interactive)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background: #fff4ce; color: #5c4400; padding: 6px; border: 1px solid #e0c060;")
        self.notice.hide()
        self._assemble()
        self.default_layout = self.saveState(LAYOUT_VERSION)
        self._make_menus()
        self._follow_colour_scheme()

        self.builder.architectureChanged.connect(self._architecture_changed)
        self.builder.undo_stack.cleanChanged.connect(self._update_title)
        self.panel.startRequested.connect(self.start_training)
        self.panel.pauseToggled.connect(self._pause_toggled)
        self.panel.stopRequested.connect(self.stop_training)
        self.panel.datasetChanged.connect(self.load_dataset)
        # Short epochs would redraw the gallery many times a second: at most once a second, then the latest.
        self.pending_epoch: EpochPacket | None = None
        self.epoch_views_timer = QTimer(self, singleShot=True, interval=1000)
        self.epoch_views_timer.timeout.connect(self._epoch_views_timer_expired)
        self.subset_timer = QTimer(self, singleShot=True, interval=300)
        self.subset_timer.timeout.connect(self._draw_validation_subset)
        for spin in (self.panel.seed, self.panel.train_size, self.panel.val_size):
            spin.valueChanged.connect(self.subset_timer.start)
        self.evaluation_view.cellSelected.connect(self.show_confusion_cell)
        self.gallery.imagesDropped.connect(self.show_dropped_images)
        self.run_history.overlayRequested.connect(self._overlay_runs)
        self.run_history.loadRequested.connect(self.load_run)
        self.run_history.continueRequested.connect(self.continue_run)
        self.run_history.evaluateRequested.connect(self.evaluate_run)

        self.builder.set_architecture(load_preset(DEFAULT_PRESET))
        self.builder.undo_stack.clear()
        self.builder.undo_stack.setClean()
        if self.store is not None:
            self._restore_session(restore_work)
        if self.dataset is None and self.loader is None:
            self.load_dataset(self.panel.dataset.currentData() if self.store is not None else DEFAULT_DATASET)

    # ---- layout -------------------------------------------------------------------------------

    def _assemble(self) -> None:
        left = QDockWidget("Network", self)
        left.setObjectName("network-dock")
        left.setWidget(self.builder)
        left.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, left)
        right = QDockWidget("Training", self)
        right.setObjectName("training-dock")
        scroll = QScrollArea()
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumWidth(self.panel.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        right.setWidget(scroll)
        right.setFeatures(left.features())
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, right)
        self.resizeDocks([left, right], [320, 340], Qt.Orientation.Horizontal)
        self.docks = (left, right)

        gallery_scroll = QScrollArea()
        gallery_scroll.setWidget(self.gallery)
        gallery_scroll.setWidgetResizable(True)
        gallery_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        training = QSplitter(Qt.Orientation.Vertical)
        training.addWidget(self.plots)
        training.addWidget(gallery_scroll)
        training.setSizes([460, 520])
        self.tabs = QTabWidget()
        self.tabs.addTab(training, "Training")
        evaluation_scroll = QScrollArea()
        evaluation_scroll.setWidget(self.evaluation_view)
        evaluation_scroll.setWidgetResizable(True)
        evaluation_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.tabs.addTab(evaluation_scroll, "Evaluation")
        self.tabs.addTab(self.gradient_plots, "Gradients")
        self.tabs.addTab(self.weights_view, "Weights")
        self.tabs.addTab(self.run_history, "Runs")
        self.tabs.addTab(self.data_browser, "Data")
        self.tabs.addTab(self.activation_explorer, "Activations")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.notice)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.statusBar().showMessage("Ready")
        self.busy = QProgressBar(maximumWidth=160, textVisible=False)  # shown while an export or evaluation runs
        self.busy.setRange(0, 0)
        self.statusBar().addPermanentWidget(self.busy)
        self.busy.hide()

    def tab_names(self) -> list[str]:
        """The tabs' names in lower case, as ``workbench gui --tab`` takes them."""
        return [self.tabs.tabText(index).replace("&", "").lower() for index in range(self.tabs.count())]

    def show_tab(self, name: str) -> bool:
        """Bring the tab called ``name`` (any case) to the front; False if there is none."""
        names = self.tab_names()
        if name.lower() not in names:
            return False
        self.tabs.setCurrentIndex(names.index(name.lower()))
        return True

    def _make_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        new = self._action(file_menu, "&New network", self.new_network, QKeySequence.StandardKey.New)
        open_ = self._action(file_menu, "&Open architecture…", self.open_architecture, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._fill_recent_menu()
        self._action(file_menu, "&Save architecture", self.save_architecture, QKeySequence.StandardKey.Save)
        self._action(file_menu, "Save architecture &as…", self.save_architecture_as, QKeySequence.StandardKey.SaveAs)
        file_menu.addSeparator()
        open_trained = self._action(file_menu, "Open &trained model…", self.open_trained_model)
        self.export_action = self._action(file_menu, "&Export trained model…", self.export_current)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        edit_menu = self.menuBar().addMenu("&Edit")
        undo = self.builder.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.builder.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence.StandardKey.Redo])
        edit_menu.addActions([undo, redo])
        self.edit_actions = (undo, redo)

        self.presets_menu = self.menuBar().addMenu("&Presets")
        for name in preset_names():
            action = self._action(self.presets_menu, name, lambda checked=False, n=name: self.load_preset(n))
            action.setToolTip(load_preset(name).description)
        self.presets_menu.setToolTipsVisible(True)
        self.editing_actions = (new, open_, self.recent_menu.menuAction(), open_trained, self.presets_menu.menuAction())

        train_menu = self.menuBar().addMenu("&Train")
        self.start_action = self._action(train_menu, "&Start", self.start_training, QKeySequence("Ctrl+R"))
        self.stop_action = self._action(train_menu, "S&top", self.stop_training, QKeySequence("Ctrl+."))
        train_menu.addSeparator()
        self.evaluate_action = self._action(
            train_menu, "&Evaluate on the test set", self.evaluate_current, QKeySequence("Ctrl+E")
        )
        self._action(train_menu, "&Continue a run…", self.show_runs)
        self._action(train_menu, "Run on a c&luster…", self.run_on_cluster)

        view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks:
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        self._action(view_menu, "&Run history", self.show_runs)
        self._action(view_menu, "&Clear overlaid runs", self.plots.clear_overlays)
        view_menu.addSeparator()
        self._action(view_menu, "Reset &layout", self.reset_layout)

        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&User guide", self.show_user_guide, QKeySequence.StandardKey.HelpContents)
        self._action(help_menu, "&About workbench", self.show_about)

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # ---- architecture files -----------------------------------------------------------------

    def load_preset(self, name: str) -> None:
        if self.session is not None:
            return
        self.builder.set_architecture(load_preset(name))
        self.file_path = None
        self._update_title()

    def new_network(self) -> None:
        if self.session is not None:
            return
        classes = self.builder.architecture().num_classes
        self.builder.set_architecture(
            Architecture(
                "untitled",
                self.builder.architecture().input_shape,
                classes,
                [Layer("Flatten"), Layer("Linear", {"out_features": classes})],
            )
        )
        self.file_path = None
        self._update_title()

    def open_architecture(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open architecture", str(Path.cwd()), "Architecture (*.json)")
        if path:
            self.open_architecture_file(Path(path))

    def open_architecture_file(self, path: Path) -> bool:
        if self.session is not None:
            return False
        try:
            architecture = Architecture.load(path)
        except WorkbenchError as error:
            self.report_problem("Cannot open the architecture", str(error))
            return False
        self.builder.set_architecture(architecture)
        self.file_path = path
        self.builder.undo_stack.setClean()
        self._update_title()
        self.add_recent_file(path)
        return True

    def save_architecture(self) -> None:
        if self.file_path is None:
            self.save_architecture_as()
        else:
            self.save_architecture_file(self.file_path)

    def save_architecture_as(self) -> None:
        suggested = str(Path.cwd() / f"{self.builder.architecture().name}.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save architecture", suggested, "Architecture (*.json)")
        if path:
            self.save_architecture_file(Path(path))

    def save_architecture_file(self, path: Path) -> bool:
        try:
            self.builder.architecture().save(path)
        except OSError as error:
            self.report_problem("Cannot save the architecture", f"{path}: {error.strerror or error}")
            return False
        self.file_path = path
        self.builder.undo_stack.setClean()
        self._update_title()
        self.add_recent_file(path)
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def _update_title(self) -> None:
        name = self.file_path.name if self.file_path else self.builder.architecture().name
        modified = "" if self.builder.undo_stack.isClean() else " *"
        self.setWindowTitle(f"{name}{modified} — workbench")

    # ---- recent files -----------------------------------------------------------------------

    def add_recent_file(self, path: Path) -> None:
        """Put ``path`` first in File → Open recent (and in the remembered settings)."""
        self.recent_files = remember_file(self.recent_files, path)
        self._recent_files_changed()

    def clear_recent_files(self) -> None:
        """Empty File → Open recent."""
        self.recent_files = []
        self._recent_files_changed()

    def open_recent_file(self, path: Path) -> bool:
        """Open an architecture file from the recent list; one that has gone is taken off the list."""
        if self.session is not None:
            return False
        if not path.is_file():
            self.recent_files = [other for other in self.recent_files if other != path]
            self._recent_files_changed()
            self.report_problem("Cannot open the architecture", f"{path} is not there any more.")
            return False
        return self.open_architecture_file(path)

    def _recent_files_changed(self) -> None:
        self._fill_recent_menu()
        if self.store is not None:
            self.store.save_recent(self.recent_files)
            self.store.sync()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()  # deletes the actions it owns: those added below
        for number, path in enumerate(self.recent_files, start=1):
            action = self.recent_menu.addAction(f"&{number} {path.name}")
            action.triggered.connect(lambda checked=False, p=path: self.open_recent_file(p))
            action.setToolTip(str(path))
        if self.recent_files:
            self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("&Clear the list")
        clear.triggered.connect(self.clear_recent_files)
        clear.setEnabled(bool(self.recent_files))
        self.recent_menu.setToolTipsVisible(True)

    # ---- remembering: layout, work, settings --------------------------------------------------

    def _restore_session(self, restore_work: bool) -> None:
        """Put back what the last window closed with; anything missing or damaged keeps its default."""
        geometry, layout = self.store.geometry(), self.store.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if layout is not None:
            self.restoreState(layout, LAYOUT_VERSION)
        self.recent_files = self.store.recent_files()
        self._fill_recent_menu()
        if restore_work:
            self._restore_work()

    def _restore_work(self) -> None:
        architecture = self.store.architecture()
        if architecture is not None:
            self.builder.set_architecture(architecture)
            self.builder.undo_stack.clear()
            self.builder.undo_stack.setClean()
        self._update_title()
        config = self.store.config()
        if config is None:
            return
        self.panel.set_config(config)  # loads the dataset when it differs from the form's
        if self.dataset is None and self.loader is None:
            self.load_dataset(config.dataset)
        if self.dataset is not None and self.dataset.info.name == config.dataset:
            self.panel.set_config(config)  # again: loading a dataset shrinks the sizes to its defaults

    def save_session(self) -> None:
        """Remember the geometry, dock layout, network, settings and recent files (when ``remember``)."""
        if self.store is None:
            return
        self.store.save_window(self.saveGeometry(), self.saveState(LAYOUT_VERSION))
        self.store.save_work(self.builder.architecture(), self.panel.config())
        self.store.save_recent(self.recent_files)
        self.store.sync()

    def reset_layout(self) -> None:
        """View → Reset layout: both docks back in place and shown, and the window at its first size."""
        if self.isMaximized() or self.isFullScreen():
            self.showNormal()
        self.restoreState(self.default_layout, LAYOUT_VERSION)
        for dock in self.docks:
            dock.setFloating(False)
            dock.show()
        self.resize(*DEFAULT_SIZE)
        self.statusBar().showMessage("Layout reset", 5000)

    # ---- help -------------------------------------------------------------------------------

    def show_user_guide(self) -> QUrl | None:
        """Help → User guide: open the README with the system's viewer; returns the URL asked for."""
        path = user_guide_path()
        if path is None:
            self.report_problem("No user guide", "This installation carries no README.md.")
            return None
        url = QUrl.fromLocalFile(str(path))
        if not self.open_url(url):
            self.report_problem("Cannot open the user guide", f"Nothing here opens {path}: open it yourself.")
        return url

    def show_about(self) -> QMessageBox:
        """Help → About: the versions of the app, PyTorch, Qt, PySide6 and Python, and the training devices."""
        box = QMessageBox(self)
        box.setWindowTitle("About workbench")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(about_html())
        box.setDetailedText(about_text())
        icon = self.windowIcon()
        if not icon.isNull():
            box.setIconPixmap(icon.pixmap(64, 64))
        if self.interactive:
            box.exec()
        return box

    # ---- colours ----------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        palette_changed = event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange)
        if palette_changed and hasattr(self, "tabs"):  # not while __init__ is still building the window
            self._follow_colour_scheme()
        super().changeEvent(event)

    def _follow_colour_scheme(self) -> None:
        """Menus, docks, forms and dialogs follow the system's light or dark palette. The tabs' pages stay light
        paper in both, like the plots: their colours (green and red captions, matrix shades, weight images) are
        made for a white page."""
        dark = QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128
        paper = paper_palette() if dark else QPalette()
        for index in range(self.tabs.count()):
            page = self.tabs.widget(index)
            page.setPalette(paper)
            page.setAutoFillBackground(dark)

    # ---- datasets ---------------------------------------------------------------------------

    def load_dataset(self, name: str) -> None:
        """Switch to dataset ``name``: at once if its files are here, else download it in the background."""
        if self.loader is not None:
            return
        self.panel.dataset.blockSignals(True)
        index = self.panel.dataset.findData(name)
        self.panel.dataset.setCurrentIndex(index)
        self.panel.dataset.blockSignals(False)
        try:
            found = datasets.locate(name) is not None
        except WorkbenchError as error:
            self._dataset_failed(name, str(error))
            return
        if found:
            try:
                loaded = self._load_now(name)
            except WorkbenchError as error:
                self._dataset_failed(name, str(error))
                return
            self._dataset_loaded(loaded)
            return
        self.panel.show_status(f"Downloading {datasets.get_info(name).title}…")
        self.statusBar().showMessage(f"Looking for {datasets.get_info(name).title} online…")
        options = self.panel.load_options(name)
        worker = FunctionWorker(lambda: datasets.load(name, progress=False, **options))
        self.loader = ThreadHandle(worker, self)
        worker.succeeded.connect(self._dataset_loaded)
        worker.failed.connect(lambda message: self._dataset_failed(name, message))
        worker.done.connect(self._loader_done)
        self.panel.settings_box.setEnabled(False)
        self.loader.start()

    def _load_now(self, name: str) -> datasets.LoadedDataset:
        self.statusBar().showMessage(f"Loading {datasets.get_info(name).title}…")
        return datasets.load(name, download=False, **self.panel.load_options(name))

    def _loader_done(self) -> None:
        self.loader.join()
        self.loader = None
        self.panel.settings_box.setEnabled(self.session is None)

    def _dataset_failed(self, name: str, message: str) -> None:
        try:
            title = datasets.get_info(name).title
        except WorkbenchError:  # e.g. an image folder that has been moved
            title = name
        if self.dataset is None:
            fallback = datasets.get_info(FALLBACK_DATASET)
            self._dataset_loaded(self._load_now(FALLBACK_DATASET))
            self.show_notice(
                f"{title} is not available, so the workbench uses the {fallback.title} dataset "
                f"bundled with scikit-learn. {message}"
            )
        else:
            self.panel.dataset.blockSignals(True)
            self.panel.dataset.setCurrentIndex(self.panel.dataset.findData(self.dataset.info.name))
            self.panel.dataset.blockSignals(False)
            self.report_problem(f"{title} is not available", message)
        self.panel.reset_progress()

    def _dataset_loaded(self, dataset: datasets.LoadedDataset) -> None:
        self.dataset = dataset
        info = dataset.info
        self.panel.dataset.blockSignals(True)
        self.panel.dataset.setCurrentIndex(self.panel.dataset.findData(info.name))
        self.panel.dataset.blockSignals(False)
        self.panel.fit_sizes(len(dataset.train_y))
        if info.name != FALLBACK_DATASET:
            self.notice.hide()
        self.val_images = None  # the old dataset's images must not meet the network adapted to the new one
        current = self.builder.architecture()
        if current.num_classes != len(info.class_names):
            # The output layer follows the classes, as the input follows the image size.
            self.builder.set_architecture(with_classes(current, len(info.class_names)))
        self.builder.set_input(tuple(info.input_shape), len(info.class_names))
        self.data_browser.set_data(
            to_display(dataset.train_x, info.mean, info.std),
            dataset.train_y.tolist(),
            info.class_names,
            f"{info.title} — training split",
        )
        self._draw_validation_subset()
        self.statusBar().showMessage(
            f"{info.title}: {len(dataset.train_y):,} training and {len(dataset.test_y):,} test images", 8000
        )
        self.panel.reset_progress()
        self.datasetReady.emit(info.name)
        if self.pending_start:
            self.pending_start = False
            self.start_training()
        elif self.pending_resume is not None:
            folder, epochs = self.pending_resume
            self.pending_resume = None
            self.continue_run(folder, epochs)

    def show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.show()

    # ---- gallery ----------------------------------------------------------------------------

    def _draw_validation_subset(self) -> None:
        """The validation images a run with the current settings would see, for the gallery."""
        if self.dataset is None or self.session is not None:
            return
        self.val_images = _validation_subset(self.dataset, self.panel.config())
        self._refresh_preview(new_images=True)

    def _refresh_preview(self, new_images: bool = False) -> None:
        """Before a run: the untrained network the run would start from (same seed), and its guesses."""
        if self.session is not None or self.dataset is None:
            return
        self.preview_model = None
        self.preview_label = "untrained network"
        architecture = self.builder.architecture()
        if self.builder.is_valid():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.panel.seed.value())
                fitted = fit_to_dataset(architecture, self.dataset.info)
                self.preview_model = build(fitted).eval()
            self.weights_view.show_weights(
                fitted, self.preview_model.state_dict(), "Untrained: the random weights a run starts from"
            )
        else:
            self.weights_view.clear("The network does not fit yet.")
        header = (
            "Untrained network's guesses"
            if self.preview_model is not None
            else "Validation images (the network does not fit yet)"
        )
        self._show_gallery_set(new_images, header)

    def _show_gallery_set(self, new_images: bool, header: str, predicted: bool = True) -> None:
        """Predict the gallery's images with the preview network (unless not ``predicted``); hand them over
        if they are new."""
        if self.val_images is None or self.dataset is None:
            return
        images, labels = self.val_images
        probabilities = None
        if predicted and self.preview_model is not None and len(labels):
            probabilities = predict(self.preview_model, images).numpy()
        if new_images:
            info = self.dataset.info
            self.gallery.set_items(
                to_display(images, info.mean, info.std), labels.tolist(), info.class_names, probabilities
            )
        else:
            self.gallery.set_probabilities(probabilities)
        self.gallery.set_header(header)

    def show_dropped_images(self, paths: list[Path]) -> None:
        """Images dropped onto the gallery: what the network shown makes of them."""
        if self.session is not None:
            self.report_problem("A run is training", "Drop your images again when the run has ended.")
            return
        if self.preview_model is None or self.dataset is None:
            self.report_problem("No network to ask", "Make the network fit the data first.")
            return
        info = self.dataset.info
        try:
            batch = load_images(paths, tuple(info.input_shape), info.mean, info.std)
        except WorkbenchError as error:
            self.report_problem("Cannot use these images", str(error))
            return
        self.val_images = (batch, torch.full((len(paths),), UNLABELLED, dtype=torch.long))
        self._show_gallery_set(
            True,
            f"Your {len(paths)} image{'s' if len(paths) != 1 else ''}: {self.preview_label or 'the network'}'s guesses",
        )
        self.tabs.setCurrentIndex(0)

    def _epoch_views_timer_expired(self) -> None:
        if self.pending_epoch is not None:
            packet, self.pending_epoch = self.pending_epoch, None
            self._show_epoch(packet)

    def show_confusion_cell(self, true_class: int, predicted_class: int) -> None:
        """Show in the gallery the test images of one confusion-matrix cell, e.g. Shirts taken for T-shirts."""
        evaluation = self.evaluation_view.evaluation
        if (
            evaluation is None
            or self.dataset is None
            or self.session is not None
            or self.evaluated is None
            or self.evaluation_split != "test"
            or self.evaluated[1] != self.dataset.info.name
        ):
            return
        indices = torch.as_tensor(evaluation.items(true_class, predicted_class), dtype=torch.long)
        names = self.dataset.info.class_names
        self.val_images = (self.dataset.test_x[indices], self.dataset.test_y[indices])
        self.preview_model = self.evaluated[0]
        self._show_gallery_set(True, f"Test images, true {names[true_class]}, predicted {names[predicted_class]}")
        self.tabs.setCurrentIndex(0)

    # ---- training ---------------------------------------------------------------------------

    def is_training(self) -> bool:
        return self.session is not None

    def start_training(self) -> None:
        """Train a snapshot of the current network and settings on a worker thread."""
        if self.session is not None:
            return
        if self.dataset is None or self.loader is not None:
            self.pending_start = True
            return
        if not self.builder.is_valid():
            self.report_problem("The network does not fit", "\n".join(self.builder.report().errors))
            return
        config = self.panel.config()
        try:
            config.check()
        except WorkbenchError as error:
            self.report_problem("Check the training settings", str(error))
            return
        self._launch(TrainingWorker(self.builder.architecture(), config, out=self.runs_out), "Preparing the run…")

    def continue_run(self, folder: Path, epochs: int) -> None:
        """Train the run in ``folder`` for ``epochs`` more epochs from its last checkpoint, into the same folder."""
        if self.session is not None:
            return
        try:
            _, config, checkpoint = load_checkpoint(folder)
        except WorkbenchError as error:
            self.report_problem("This run cannot be continued", str(error))
            return
        if not self.load_run(folder, show_weights=False):
            return
        if self.dataset is None or self.loader is not None or self.dataset.info.name != config.dataset:
            self.pending_resume = (folder, epochs)  # starts once the run's dataset is loaded
            return
        self._launch(
            TrainingWorker(None, None, resume=folder, extra_epochs=epochs),
            f"Continuing after epoch {checkpoint.epoch}…",
        )

    def _launch(self, worker: TrainingWorker, status: str) -> None:
        self.subset_timer.stop()  # the run draws its own validation subset
        self.session = ThreadHandle(worker, self)
        worker.started.connect(self._run_started)
        worker.batchProgress.connect(self._batch_progress)
        worker.epochEnded.connect(self._epoch_ended)
        worker.finished.connect(self._run_finished)
        worker.failed.connect(self._run_failed)
        worker.done.connect(self._run_done)
        self.plots.clear()
        self.gradient_plots.clear()
        self.evaluation_view.clear()
        self.evaluated = None
        self.panel.set_running(True)
        self.panel.show_status(status)
        self._lock_editing(True)
        self.session.start()

    def _lock_editing(self, locked: bool) -> None:
        """While a run trains on its snapshot, the network and its files stay as they are."""
        self.builder.set_locked(locked)
        self.start_action.setEnabled(not locked)
        for action in self.editing_actions:
            action.setEnabled(not locked)

    def stop_training(self) -> None:
        if self.session is not None:
            self.session.worker.stop()
            self.panel.show_status("Stopping after this batch…")

    def _pause_toggled(self, paused: bool) -> None:
        if self.session is None:
            return
        if paused:
            self.session.worker.pause()
            self.statusBar().showMessage("Paused — press Resume to go on")
        else:
            self.session.worker.resume()
            self.statusBar().showMessage(self.last_status)
        self.panel.set_running(True, paused)

    def _run_started(self, start: RunStart) -> None:
        self.run_architecture = start.architecture
        self.run_folder = start.folder
        self.run_config = start.config
        self.run_history.set_busy_folder(start.folder)
        self.preview_model = _meta_model(start.architecture)
        config = start.config
        batches_per_epoch = math.ceil(config.train_size / config.batch_size)
        self.plots.expect(config.epochs * batches_per_epoch, config.epochs)
        for metrics in start.history:  # a continued run shows its earlier epochs too
            self.plots.add_epoch(metrics)
        self.gradient_plots.start(start.gradient_layers, start.activation_layers, config.epochs * batches_per_epoch)
        if self.dataset is not None and self.dataset.info.name == config.dataset:
            self.val_images = _validation_subset(self.dataset, config)
            self._show_gallery_set(
                True, "Validation images — the guesses appear after the first epoch", predicted=False
            )
        self.last_status = f"Training {start.architecture.name} on {start.device} — run folder {start.folder}"
        self.statusBar().showMessage(self.last_status)

    def _batch_progress(self, packet: BatchPacket) -> None:
        self.plots.add_batch_losses(packet.steps, packet.losses)
        if packet.gradients:
            self.gradient_plots.add_samples(packet.gradients)
        if not self.panel.pause_button.isChecked():
            self.panel.show_progress(
                packet.epoch,
                packet.epochs,
                packet.batch,
                packet.batches_per_epoch,
                packet.samples_per_second,
                packet.seconds_left,
            )

    def _epoch_ended(self, packet: EpochPacket) -> None:
        self.plots.add_epoch(packet.metrics)
        self.preview_model.load_state_dict(packet.weights, assign=True)
        # Short epochs would redraw the gallery, matrix and weights many times a second: at most once a second.
        if not self.epoch_views_timer.isActive():
            self._show_epoch(packet)
            self.epoch_views_timer.start()
        else:
            self.pending_epoch = packet

    def _show_epoch(self, packet: EpochPacket) -> None:
        """The gallery's guesses, the validation confusion matrix and the weights after one epoch."""
        metrics = packet.metrics
        accuracy = "" if math.isnan(metrics.val_accuracy) else f" — validation accuracy {metrics.val_accuracy:.1%}"
        if (
            packet.val_probabilities is not None
            and self.val_images is not None
            and len(packet.val_probabilities) == len(self.val_images[1])
        ):
            self.gallery.set_probabilities(packet.val_probabilities)
            self.gallery.set_header(f"After epoch {metrics.epoch}{accuracy}")
        if packet.val_probabilities is not None:
            self.evaluation_split = "validation"
            self.evaluation_view.show_evaluation(  # scored only if the Evaluation tab is looked at
                lambda: packet.val_evaluation,
                f"{self.run_architecture.name} — validation set after epoch {metrics.epoch}:",
            )
        self.weights_view.show_weights(self.run_architecture, packet.weights, f"After epoch {metrics.epoch}")

    def _run_finished(self, end: RunEnd) -> None:
        self.plots.flush()
        self.gradient_plots.flush()
        self.epoch_views_timer.stop()
        self.pending_epoch = None
        if self.preview_model is None:  # the run ended before it started (stopped while loading)
            self.preview_model = _meta_model(self.run_architecture)
        self.preview_model.load_state_dict(end.weights, assign=True)
        if (
            self.val_images is not None
            and self.dataset is not None
            and tuple(self.dataset.info.input_shape) == tuple(self.run_architecture.input_shape)
        ):
            self._show_gallery_set(False, f"Trained network ({end.status})")
        self.weights_view.show_weights(self.run_architecture, end.weights, f"Trained network ({end.status})")
        headline = {
            "finished": "Finished",
            "stopped": "Stopped",
            "early-stopped": "Stopped early",
            "diverged": "Diverged",
        }.get(end.status, end.status)
        self.panel.show_status(f"{headline} — test accuracy {end.test_accuracy:.1%}", end.message, finished=True)
        self.statusBar().showMessage(f"{headline}: test accuracy {end.test_accuracy:.1%}. Run saved in {end.folder}")
        self.last_end = end
        self.current_run = end.folder
        self.preview_label = f"{self.run_architecture.name} ({end.status})"
        if end.evaluation is not None:
            self.evaluated = (self.preview_model, self.run_config.dataset if self.run_config else "")
            self.evaluation_split = "test"
            self.evaluation_view.show_evaluation(end.evaluation, f"{self.run_architecture.name} — test set:")
        if end.status == "diverged":
            self.report_problem("Training diverged", end.message)

    def _run_failed(self, message: str) -> None:
        self.last_end = None
        self.panel.show_status("The run failed", message.splitlines()[0])
        self.report_problem("The run failed", message)

    def _run_done(self) -> None:
        if self.session is None:  # closeEvent already stopped and joined it
            return
        session, self.session = self.session, None
        session.join()
        self.panel.set_running(False)
        self._lock_editing(False)
        self.run_history.set_busy_folder(None)
        self.run_history.refresh()
        self.runFinished.emit(self.last_end.status if self.last_end is not None else "failed")

    # ---- runs: history, load back, evaluate on demand -----------------------------------------

    def show_runs(self) -> None:
        self.run_history.refresh()
        self.tabs.setCurrentWidget(self.run_history)

    def _overlay_runs(self, runs: list) -> None:
        self.plots.show_overlays(runs)
        self.tabs.setCurrentIndex(0)

    def load_run(self, folder: Path, show_weights: bool = True) -> bool:
        """Put a run's architecture, settings and dataset back in the window (and its trained network in the
        gallery and weights view, when it has one)."""
        if self.session is not None:
            return False
        try:
            document = read_run(folder)
            architecture = Architecture.from_dict(document["architecture"])
            config = TrainConfig.from_dict(document["config"])
        except WorkbenchError as error:
            self.report_problem("Cannot load this run", str(error))
            return False
        self.builder.set_architecture(architecture)
        self.panel.set_config(config)  # for an image folder this adds its entry, which loads it
        if self.dataset is None or self.dataset.info.name != config.dataset:
            self.load_dataset(config.dataset)
            if self.dataset is not None and self.dataset.info.name == config.dataset:
                self.panel.set_config(config)  # loading a dataset resets the sizes to its defaults
        self.file_path = None
        self._update_title()
        if show_weights:
            try:
                trained = load_trained(folder)
            except WorkbenchError as error:
                self.statusBar().showMessage(f"Loaded the network and settings of {folder.name}; {error}", 10000)
                return True
            self._show_trained(trained)
        return True

    def _show_trained(self, trained: TrainedModel) -> None:
        """Let the gallery and the weights view show a trained network read from a run folder."""
        if (
            self.dataset is None
            or self.dataset.info.name != trained.config.dataset
            or tuple(self.dataset.info.input_shape) != tuple(trained.architecture.input_shape)
        ):
            return
        self.preview_model = trained.model
        self.current_run = trained.folder
        self.preview_label = f"{trained.name} ({trained.source})"
        self.weights_view.show_weights(trained.architecture, trained.weights, self.preview_label)
        self._show_gallery_set(False, f"{self.preview_label}: its guesses")
        self.statusBar().showMessage(f"Loaded {trained.name}: network, settings and {trained.source}", 10000)

    def evaluate_current(self) -> None:
        """Score the network the gallery shows (trained or not) on the test set, in the background."""
        if self.preview_model is None or self.dataset is None or self.session is not None:
            self.report_problem("Nothing to evaluate", "Make the network fit the data first.")
            return
        model, dataset, label = self.preview_model, self.dataset, self.preview_label or "untrained network"
        self._evaluate(
            lambda: (
                evaluate_model(model, dataset.test_x, dataset.test_y, dataset.info.class_names),
                model,
                dataset.info.name,
                label,
            )
        )

    def evaluate_run(self, folder: Path) -> None:
        """Score a run's trained network on its dataset's test set, in the background."""

        def work():
            trained = load_trained(folder)
            return (
                evaluate_trained(trained),
                trained.model,
                trained.config.dataset,
                f"{trained.name} ({trained.source})",
            )

        self._evaluate(work)

    def _evaluate(self, work) -> None:
        if self.evaluator is not None:
            return
        worker = FunctionWorker(work)
        self.evaluator = ThreadHandle(worker, self)
        worker.succeeded.connect(self._evaluation_done)
        worker.failed.connect(lambda message: self.report_problem("The evaluation failed", message))
        worker.done.connect(self._evaluator_done)
        self.evaluate_action.setEnabled(False)
        self.busy.show()
        self.statusBar().showMessage("Evaluating on the test set…")
        self.evaluator.start()

    def _evaluation_done(self, outcome: tuple[Evaluation, torch.nn.Module, str, str]) -> None:
        evaluation, model, dataset_name, label = outcome
        self.evaluated = (model, dataset_name)
        self.evaluation_split = "test"
        self.evaluation_view.show_evaluation(evaluation, f"{label} — test set:")
        self.statusBar().showMessage(f"{label}: test accuracy {evaluation.accuracy:.1%}", 10000)
        self.tabs.setCurrentIndex(1)

    def _evaluator_done(self) -> None:
        self.evaluator.join()
        self.evaluator = None
        self.evaluate_action.setEnabled(True)
        self.busy.setVisible(self.exporter is not None)

    def run_on_cluster(self) -> ClusterDialog | None:
        """Save the network and settings as a hand-off folder and show the torchrun commands that train them."""
        if not self.builder.is_valid():
            self.report_problem("The network does not fit", "\n".join(self.builder.report().errors))
            return None
        config, architecture = self.panel.config(), self.builder.architecture()
        try:
            config.check()
            folder = new_run_dir(None, architecture, config)
            write_handoff(folder, architecture, config)
        except WorkbenchError as error:
            self.report_problem("Cannot prepare the hand-off", str(error))
            return None
        dialog = ClusterDialog(folder, torch.cuda.device_count(), self)
        if self.interactive:
            dialog.exec()
        return dialog

    # ---- trained models: open, export ---------------------------------------------------------

    def open_trained_model(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Open a run folder or an exported bundle", str(default_runs_dir())
        )
        if path:
            self.open_trained(Path(path))

    def open_trained(self, path: Path) -> bool:
        """Show a trained network from a run folder or a safetensors bundle: network, settings, guesses, weights."""
        if self.session is not None:
            return False
        if (path / RUN_FILE).is_file():
            return self.load_run(path)
        try:
            trained = load_trained(path)
        except WorkbenchError as error:
            self.report_problem("Cannot open this model", str(error))
            return False
        self.builder.set_architecture(trained.architecture)
        self.file_path = None
        self._update_title()
        if trained.data.name in datasets.DATASETS and (
            self.dataset is None or self.dataset.info.name != trained.data.name
        ):
            self.load_dataset(trained.data.name)
        self._show_trained(trained)
        return True

    def export_current(self) -> None:
        """File → Export: the network of the run the window shows, in a format the user picks."""
        if self.current_run is None:
            self.report_problem("Nothing to export", "Train a network, or open a run or a trained model, first.")
            return
        try:
            trained = load_trained(self.current_run)
        except WorkbenchError as error:
            self.report_problem("Cannot export this run", str(error))
            return
        dialog = ExportDialog(trained, self)
        if dialog.exec():
            self.export_to(self.current_run, *dialog.choice())

    def export_to(self, folder: Path, fmt: str, target: Path) -> None:
        """Export the trained network of ``folder`` in the background, then name the file written."""
        if self.exporter is not None:
            return
        worker = FunctionWorker(lambda: export_model(load_trained(folder), fmt, target, progress=worker.report))
        self.exporter = ThreadHandle(worker, self)
        worker.progress.connect(lambda message: self.statusBar().showMessage(f"Exporting: {message}"))
        worker.succeeded.connect(self._export_done)
        worker.failed.connect(lambda message: self.report_problem("The export failed", message))
        worker.done.connect(self._exporter_done)
        self.export_action.setEnabled(False)
        self.busy.show()
        self.statusBar().showMessage(f"Exporting {folder.name} as {fmt}…")
        self.exporter.start()

    def _export_done(self, result) -> None:
        self.last_export = result
        self.statusBar().showMessage(f"Wrote {result.path}. {result.message}", 15000)
        if self.interactive:
            QMessageBox.information(self, "Export finished", f"Wrote {result.path}\n\n{result.message}")

    def _exporter_done(self) -> None:
        self.exporter.join()
        self.exporter = None
        self.export_action.setEnabled(True)
        self.busy.setVisible(self.evaluator is not None)

    # ---- feedback ---------------------------------------------------------------------------

    def _architecture_changed(self) -> None:
        report = self.builder.report()
        reason = report.errors[0] if report.errors else ""
        self.panel.set_start_allowed(report.ok, reason)
        self._update_title()
        self._refresh_preview()

    def report_problem(self, title: str, message: str) -> None:
        """Tell the user: a dialog when interactive, else the status bar and stderr."""
        self.statusBar().showMessage(f"{title}: {message.splitlines()[0]}")
        if self.interactive:
            QMessageBox.warning(self, title, message)
        else:
            print(f"workbench: {title}: {message}", file=sys.stderr)

    def confirm_stop_on_close(self) -> bool:
        if not self.interactive:
            return True
        answer = QMessageBox.question(
            self,
            "Training is running",
            "A run is training. Stop it and close the workbench? The run is saved as stopped.",
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.session is not None:
            if not self.confirm_stop_on_close():
                event.ignore()
                return
            self.session.worker.stop()
            self.session.join()
            self.session = None
        for handle in (self.loader, self.evaluator, self.exporter):
            if handle is not None:
                handle.join()
        self.loader = self.evaluator = self.exporter = None
        self.save_session()
        event.accept()


def paper_palette() -> QPalette:
    """A light palette, whatever the system's: black on white pages and light grey buttons, blue selection."""
    palette = QPalette(QColor("#efefef"), QColor("#ffffff"))
    palette.setColor(QPalette.ColorRole.AlternateBase, QColor("#f7f7f7"))
    palette.setColor(QPalette.ColorRole.Highlight, QColor("#308cc6"))
    palette.setColor(QPalette.ColorRole.PlaceholderText, QColor("#808080"))
    palette.setColor(QPalette.ColorRole.Link, QColor("#1f5fa8"))
    return palette


def _validation_subset(dataset: datasets.LoadedDataset, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation images of a run under ``config``; the test images while the sizes do not fit."""
    try:
        _, val = datasets.split_indices(dataset, *config.sizes_for(len(dataset.train_y)), config.seed)
    except WorkbenchError:
        return dataset.test_x, dataset.test_y
    return (dataset.train_x[val], dataset.train_y[val]) if len(val) else (dataset.test_x, dataset.test_y)


def _meta_model(architecture: Architecture) -> torch.nn.Module:
    """A model without weights, to receive a run's with ``load_state_dict(assign=True)``.

    Built on the meta device, so it draws no random numbers: the training thread's random stream
    must not be disturbed.
    """
    with torch.device("meta"):
        return build(architecture).eval()
