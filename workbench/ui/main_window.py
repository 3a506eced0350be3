"""The workbench window: layer builder (left), training settings (right), plots, gallery and data."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QScrollArea, QSplitter,
                               QTabWidget, QVBoxLayout, QWidget)

from ..core import datasets
from ..core.architecture import Architecture, Layer, build
from ..core.config import TrainConfig
from ..core.engine import EpochMetrics, fit_to_dataset, predict
from ..core.errors import WorkbenchError
from ..core.presets import load_preset, preset_names
from .activation_explorer import ActivationExplorer
from .data_browser import DataBrowser
from .evaluation import EvaluationView
from .gallery import Gallery
from .images import to_display
from .layer_builder import LayerBuilder
from .plots import LivePlots
from .training_panel import TrainingPanel
from .worker import BatchPacket, FunctionWorker, RunEnd, RunStart, ThreadHandle, TrainingWorker

DEFAULT_PRESET = "seed-simplenet"
DEFAULT_DATASET = "fashion-mnist"
FALLBACK_DATASET = "digits"


class MainWindow(QMainWindow):
    """The whole app. ``runFinished`` fires after every run, however it ended (scripted mode waits on it).

    ``interactive`` False (scripted mode, tests) reports problems in the status bar and on stderr
    instead of in dialogs, and closing during a run stops it without asking.
    """

    runFinished = Signal(str)     # the run's status, or "failed"
    datasetReady = Signal(str)

    def __init__(self, interactive: bool = True, runs_out: Path | None = None):
        super().__init__()
        # Training runs on a worker thread; a shorter GIL switch interval keeps painting from
        # stalling it (and it from stalling the event loop) for the default 5 ms at a time.
        sys.setswitchinterval(0.0005)
        self.interactive = interactive
        self.runs_out = runs_out
        self.dataset: datasets.LoadedDataset | None = None
        self.val_images: tuple[torch.Tensor, torch.Tensor] | None = None
        self.gallery_start = 0
        self.preview_model: torch.nn.Module | None = None
        self.session: ThreadHandle | None = None
        self.loader: ThreadHandle | None = None
        self.pending_start = False
        self.gallery_header = ""
        self.run_architecture: Architecture | None = None
        self.last_end: RunEnd | None = None
        self.last_status = ""
        self.file_path: Path | None = None
        self.setWindowTitle("workbench")
        self.resize(1600, 1000)

        self.builder = LayerBuilder()
        self.panel = TrainingPanel()
        self.plots = LivePlots()
        self.gallery = Gallery(rows=3, columns=5)
        self.data_browser = DataBrowser()
        self.evaluation_view = EvaluationView()
        self.activation_explorer = ActivationExplorer()
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background: #fff4ce; color: #5c4400; padding: 6px; border: 1px solid #e0c060;")
        self.notice.hide()
        self._assemble()
        self._make_menus()

        self.builder.architectureChanged.connect(self._architecture_changed)
        self.builder.undo_stack.cleanChanged.connect(self._update_title)
        self.panel.startRequested.connect(self.start_training)
        self.panel.pauseToggled.connect(self._pause_toggled)
        self.panel.stopRequested.connect(self.stop_training)
        self.panel.datasetChanged.connect(self.load_dataset)
        # Short epochs would redraw the gallery many times a second: at most once a second, then the latest.
        self.gallery_stale = False
        self.gallery_timer = QTimer(self, singleShot=True, interval=1000)
        self.gallery_timer.timeout.connect(self._gallery_timer_expired)
        self.subset_timer = QTimer(self, singleShot=True, interval=300)
        self.subset_timer.timeout.connect(self._draw_validation_subset)
        for spin in (self.panel.seed, self.panel.train_size, self.panel.val_size):
            spin.valueChanged.connect(self.subset_timer.start)
        self.gallery.nextBatchRequested.connect(self._next_gallery_batch)
        self.evaluation_view.cellSelected.connect(self.show_confusion_cell)

        self.builder.set_architecture(load_preset(DEFAULT_PRESET))
        self.builder.undo_stack.clear()
        self.builder.undo_stack.setClean()
        self.load_dataset(DEFAULT_DATASET)

    # ---- layout -------------------------------------------------------------------------------

    def _assemble(self) -> None:
        left = QDockWidget("Network", self)
        left.setObjectName("network-dock")
        left.setWidget(self.builder)
        left.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
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
        # The matrix and the scores table side by side need this much; narrower windows scroll instead of clipping.
        self.evaluation_view.setMinimumWidth(1180)
        self.tabs.addTab(evaluation_scroll, "Evaluation")
        self.tabs.addTab(self.data_browser, "Data")
        self.tabs.addTab(self.activation_explorer, "Activations")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.notice)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.statusBar().showMessage("Ready")

    def _make_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        new = self._action(file_menu, "&New network", self.new_network, QKeySequence.StandardKey.New)
        open_ = self._action(file_menu, "&Open architecture…", self.open_architecture, QKeySequence.StandardKey.Open)
        self._action(file_menu, "&Save architecture", self.save_architecture, QKeySequence.StandardKey.Save)
        self._action(file_menu, "Save architecture &as…", self.save_architecture_as, QKeySequence.StandardKey.SaveAs)
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
        self.editing_actions = (new, open_, self.presets_menu.menuAction())

        train_menu = self.menuBar().addMenu("&Train")
        self.start_action = self._action(train_menu, "&Start", self.start_training, QKeySequence("Ctrl+R"))
        self.stop_action = self._action(train_menu, "S&top", self.stop_training, QKeySequence("Ctrl+."))

        view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks:
            view_menu.addAction(dock.toggleViewAction())

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
        self.builder.set_architecture(Architecture("untitled", self.builder.architecture().input_shape, classes,
                                                   [Layer("Flatten"), Layer("Linear", {"out_features": classes})]))
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
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def _update_title(self) -> None:
        name = self.file_path.name if self.file_path else self.builder.architecture().name
        modified = "" if self.builder.undo_stack.isClean() else " *"
        self.setWindowTitle(f"{name}{modified} — workbench")

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
            self._dataset_loaded(self._load_now(name))
            return
        self.panel.show_status(f"Downloading {datasets.get_info(name).title}…")
        self.statusBar().showMessage(f"Looking for {datasets.get_info(name).title} online…")
        worker = FunctionWorker(lambda: datasets.load(name, progress=False))
        self.loader = ThreadHandle(worker, self)
        worker.succeeded.connect(self._dataset_loaded)
        worker.failed.connect(lambda message: self._dataset_failed(name, message))
        worker.done.connect(self._loader_done)
        self.panel.settings_box.setEnabled(False)
        self.loader.start()

    def _load_now(self, name: str) -> datasets.LoadedDataset:
        self.statusBar().showMessage(f"Loading {datasets.get_info(name).title}…")
        return datasets.load(name, download=False)

    def _loader_done(self) -> None:
        self.loader.join()
        self.loader = None
        self.panel.settings_box.setEnabled(self.session is None)

    def _dataset_failed(self, name: str, message: str) -> None:
        title = datasets.get_info(name).title
        if self.dataset is None:
            fallback = datasets.get_info(FALLBACK_DATASET)
            self._dataset_loaded(self._load_now(FALLBACK_DATASET))
            self.show_notice(f"{title} is not available, so the workbench uses the {fallback.title} dataset "
                             f"bundled with scikit-learn. {message}")
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
        self.builder.set_input(tuple(info.input_shape), len(info.class_names))
        self.data_browser.set_data(to_display(dataset.train_x, info.mean, info.std), dataset.train_y.tolist(),
                                   info.class_names, f"{info.title} — training split")
        self._draw_validation_subset()
        self.statusBar().showMessage(f"{info.title}: {len(dataset.train_y):,} training and "
                                     f"{len(dataset.test_y):,} test images", 8000)
        self.panel.reset_progress()
        self.datasetReady.emit(info.name)
        if self.pending_start:
            self.pending_start = False
            self.start_training()

    def show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.show()

    # ---- gallery ----------------------------------------------------------------------------

    def _draw_validation_subset(self) -> None:
        """The validation images a run with the current settings would see, for the gallery."""
        if self.dataset is None or self.session is not None:
            return
        self.val_images = _validation_subset(self.dataset, self.panel.config())
        self.gallery_start = 0
        self._refresh_preview()

    def _refresh_preview(self) -> None:
        """Before a run: the untrained network the run would start from (same seed), and its guesses."""
        if self.session is not None or self.dataset is None:
            return
        self.preview_model = None
        architecture = self.builder.architecture()
        if self.builder.is_valid():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.panel.seed.value())
                self.preview_model = build(fit_to_dataset(architecture, self.dataset.info)).eval()
        self._update_gallery("Untrained network's guesses" if self.preview_model is not None
                             else "Validation images (the network does not fit yet)")

    def _gallery_timer_expired(self) -> None:
        if self.gallery_stale:
            self.gallery_stale = False
            self._update_gallery(None)

    def show_confusion_cell(self, true_class: int, predicted_class: int) -> None:
        """Show in the gallery the test images of one confusion-matrix cell, e.g. Shirts taken for T-shirts."""
        evaluation = self.last_end.evaluation if self.last_end is not None else None
        if evaluation is None or self.dataset is None or self.session is not None:
            return
        indices = torch.as_tensor(evaluation.items(true_class, predicted_class), dtype=torch.long)
        names = self.dataset.info.class_names
        self.val_images = (self.dataset.test_x[indices], self.dataset.test_y[indices])
        self.gallery_start = 0
        self._update_gallery(f"Test images, true {names[true_class]}, predicted {names[predicted_class]}: "
                             f"{len(indices):,}")
        self.tabs.setCurrentIndex(0)

    def _next_gallery_batch(self) -> None:
        if self.val_images is None:
            return
        self.gallery_start += self.gallery.capacity
        if self.gallery_start >= len(self.val_images[1]):
            self.gallery_start = 0
        self._update_gallery(None)

    def _update_gallery(self, header: str | None) -> None:
        if self.val_images is None or self.dataset is None or not len(self.val_images[1]):
            if header is not None:
                self.gallery.show_items(np.zeros((0, 1, 1, 1), np.uint8), [], None, [])
                self.gallery.set_header(header)
            return
        info = self.dataset.info
        val_x, val_y = self.val_images
        window = slice(self.gallery_start, self.gallery_start + self.gallery.capacity)
        images, labels = val_x[window], val_y[window]
        predicted = confidences = None
        if self.preview_model is not None:
            probabilities = predict(self.preview_model, images)
            confidences, predicted = probabilities.max(dim=1)
            predicted, confidences = predicted.tolist(), confidences.tolist()
        self.gallery.show_items(to_display(images, info.mean, info.std), labels.tolist(), predicted,
                                info.class_names, confidences)
        if header is not None:
            self.gallery_header = header
        score = ""
        if predicted is not None:
            right = sum(guess == truth for guess, truth in zip(predicted, labels.tolist()))
            score = f" — {right}/{len(predicted)} right"
        self.gallery.set_header(self.gallery_header + score)

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
        self.subset_timer.stop()  # the run draws its own validation subset
        worker = TrainingWorker(self.builder.architecture(), config, out=self.runs_out)
        self.session = ThreadHandle(worker, self)
        worker.started.connect(self._run_started)
        worker.batchProgress.connect(self._batch_progress)
        worker.epochEnded.connect(self._epoch_ended)
        worker.finished.connect(self._run_finished)
        worker.failed.connect(self._run_failed)
        worker.done.connect(self._run_done)
        self.plots.clear()
        self.evaluation_view.clear()
        self.panel.set_running(True)
        self.panel.show_status("Preparing the run…")
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
        self.preview_model = _meta_model(start.architecture)
        config = start.config
        self.plots.expect(config.epochs * math.ceil(config.train_size / config.batch_size), config.epochs)
        self.val_images = _validation_subset(self.dataset, start.config)
        self.gallery_start = 0
        self.last_status = f"Training {start.architecture.name} on {start.device} — run folder {start.folder}"
        self.statusBar().showMessage(self.last_status)

    def _batch_progress(self, packet: BatchPacket) -> None:
        self.plots.add_batch_losses(packet.steps, packet.losses)
        if not self.panel.pause_button.isChecked():
            self.panel.show_progress(packet.epoch, packet.epochs, packet.batch, packet.batches_per_epoch,
                                     packet.samples_per_second, packet.seconds_left)

    def _epoch_ended(self, metrics: EpochMetrics, weights: dict) -> None:
        self.plots.add_epoch(metrics)
        self.preview_model.load_state_dict(weights, assign=True)
        accuracy = "" if math.isnan(metrics.val_accuracy) else f" — validation accuracy {metrics.val_accuracy:.1%}"
        self.gallery_header = f"After epoch {metrics.epoch}{accuracy}"
        if not self.gallery_timer.isActive():
            self._update_gallery(None)
            self.gallery_timer.start()
        else:
            self.gallery_stale = True

    def _run_finished(self, end: RunEnd) -> None:
        self.plots.flush()
        self.gallery_timer.stop()
        self.gallery_stale = False
        if self.preview_model is None:  # the run ended before it started (stopped while loading)
            self.preview_model = _meta_model(self.run_architecture)
        self.preview_model.load_state_dict(end.weights, assign=True)
        self._update_gallery(f"Trained network ({end.status})")
        headline = {"finished": "Finished", "stopped": "Stopped", "early-stopped": "Stopped early",
                    "diverged": "Diverged"}.get(end.status, end.status)
        self.panel.show_status(f"{headline} — test accuracy {end.test_accuracy:.1%}", end.message, finished=True)
        self.statusBar().showMessage(f"{headline}: test accuracy {end.test_accuracy:.1%}. Run saved in {end.folder}")
        self.last_end = end
        if end.evaluation is not None:
            self.evaluation_view.show_evaluation(end.evaluation, f"{self.run_architecture.name} — test")
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
        self.runFinished.emit(self.last_end.status if self.last_end is not None else "failed")

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
        answer = QMessageBox.question(self, "Training is running",
                                      "A run is training. Stop it and close the workbench? "
                                      "The run is saved as stopped.")
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.session is not None:
            if not self.confirm_stop_on_close():
                event.ignore()
                return
            self.session.worker.stop()
            self.session.join()
            self.session = None
        if self.loader is not None:
            self.loader.join()
            self.loader = None
        event.accept()


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

