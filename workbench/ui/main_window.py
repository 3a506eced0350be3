"""The workbench window: the assembly of docks, tabs and menus around one :class:`Session`.

The window keeps no application state: what is loaded, edited, shown and running is the session's; the
widgets are bound to it by :class:`~workbench.ui.binding.ViewBinding`, the menus made from its action
list by :class:`~workbench.ui.actions.ActionSet`, and background work runs through one
:class:`~workbench.ui.tasks.TaskRunner`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox

from workbench.core.errors import WorkbenchError
from workbench.core.experiments.lr_find import LearningRateTest
from workbench.core.runs.trained import load_trained
from workbench.session.actions import ACTIONS, preset_actions
from workbench.session.experiments import EXPERIMENTS_FOLDER
from workbench.session.session import DEFAULT_DATASET, DEFAULT_PRESET, Session
from workbench.ui.actions import ActionSet
from workbench.ui.binding import ViewBinding
from workbench.ui.dialogs.cluster_dialog import ClusterDialog
from workbench.ui.dialogs.export_dialog import ExportDialog
from workbench.ui.dialogs.lr_find_dialog import LearningRateDialog
from workbench.ui.dialogs.predict_dialog import PredictImagesDialog
from workbench.ui.dialogs.search_dialog import SearchDialog
from workbench.ui.help import about_html, about_text, user_guide_path
from workbench.ui.layout import DEFAULT_SIZE, WindowLayout
from workbench.ui.settings import LAYOUT_VERSION, SessionStore
from workbench.ui.tasks import TaskRunner

__all__ = ["DEFAULT_DATASET", "DEFAULT_PRESET", "MainWindow"]


class MainWindow(WindowLayout):
    """The whole app. ``runFinished`` fires after every run, however it ended (scripted mode waits on it).

    ``interactive`` False (scripted mode, tests) reports problems in the status bar and on stderr
    instead of in dialogs, and closing during a run stops it without asking.

    ``remember`` True (the app started by hand) restores what the last window closed with — geometry, dock
    layout, recent files and, unless ``restore_work`` is False, the network, dataset and settings — and saves
    them again on closing (see :mod:`workbench.ui.settings`), and the runs folder chosen with File → Runs
    Folder… (kept at once, unless ``$WORKBENCH_RUNS_DIR`` decides it). Without it the window starts from the
    defaults and writes nothing.

    ``open_url`` opens the user guide (``QDesktopServices.openUrl``; tests replace it).
    """

    runFinished = Signal(str)  # the run's status, or "failed"
    datasetReady = Signal(str)
    batchProgress = Signal(object)  # the session's reports, as Qt signals for scripts and tests
    epochEnded = Signal(object)

    def __init__(
        self, interactive: bool = True, runs_out: Path | None = None, remember: bool = False, restore_work: bool = True
    ):
        super().__init__()
        # Training runs on a worker thread; a shorter GIL switch interval keeps painting from
        # stalling it (and it from stalling the event loop) for the default 5 ms at a time.
        sys.setswitchinterval(0.0005)
        self.interactive = interactive
        self.store = SessionStore() if remember else None
        self.open_url = QDesktopServices.openUrl
        self.runner = TaskRunner(self)
        self.session = Session(self.runner, runs_out)
        self.assemble()
        self.default_layout = self.saveState(LAYOUT_VERSION)
        self.action_set = ActionSet(self, self.session)
        self._make_menus()
        self.binding = ViewBinding(self)
        self._connect()
        self.session.set_architecture(self.session.architecture)
        self.builder.undo_stack.clear()
        self.builder.undo_stack.setClean()
        if self.store is not None:
            self.restore(restore_work)
        if self.session.dataset is None and self.session.loading is None:
            self.load_dataset(self.session.config.dataset if self.store is not None else DEFAULT_DATASET)

    def _connect(self) -> None:
        session = self.session
        session.status.connect(self.show_status)
        session.problem.connect(self.report_problem)
        session.notice.connect(self.show_notice)
        session.file_changed.connect(self._update_title)
        session.recent_files_changed.connect(self._recent_files_changed)
        session.dataset_changed.connect(lambda dataset: self.datasetReady.emit(dataset.info.name))
        session.run_done.connect(self._run_done)
        session.batch_progress.connect(self.batchProgress.emit)
        session.epoch_ended.connect(self.epochEnded.emit)
        session.exported.connect(self._exported)
        self.builder.undo_stack.cleanChanged.connect(self._update_title)
        self.panel.startRequested.connect(self.start_training)
        self.panel.pauseToggled.connect(self._pause_toggled)
        self.panel.stopRequested.connect(self.stop_training)
        self.evaluation_view.cellSelected.connect(self.show_confusion_cell)
        self.gallery.imagesDropped.connect(self.show_dropped_images)
        self.run_history.overlayRequested.connect(self._overlay_runs)
        self.run_history.loadRequested.connect(self.load_run)
        self.run_history.continueRequested.connect(self.continue_run)
        self.run_history.evaluateRequested.connect(self.evaluate_run)
        self.panel.findLearningRateRequested.connect(self.find_learning_rate)
        session.learning_rate_found.connect(self._show_learning_rate)
        experiments = self.experiments_view
        experiments.startRequested.connect(self.start_experiment)
        experiments.stopRequested.connect(self.stop_experiment)
        session.searcher.changed.connect(experiments.show_search)
        session.searcher.curve_grew.connect(experiments.grow_curve)
        experiments.continueRequested.connect(self.continue_experiment)
        experiments.openRequested.connect(self.open_experiment)
        self.run_history.add_action_button("chooseRunsFolder", "Runs Folder…", self.action_set["file.runs_folder"])
        session.runs_folder_changed.connect(self._runs_folder_changed)

    def _make_menus(self) -> None:
        commands: Callable[[str], Callable[..., object]] = lambda name: getattr(self, name)  # noqa: E731
        at = {spec.id: index for index, spec in enumerate(ACTIONS)}  # where each menu's part of ACTIONS begins
        self.action_set.add(ACTIONS[: at["file.save"]], commands)
        self.recent_menu = self.action_set.menu("&File").addMenu("Open &recent")
        self.action_set.add(ACTIONS[at["file.save"] : at["train.start"]], commands)
        edit_menu = self.action_set.menu("&Edit")
        edit_menu.addActions(self.builder.history_actions(self))
        self.action_set.add(preset_actions(), commands)
        self.action_set.add(ACTIONS[at["train.start"] : at["view.runs"]], commands)
        view_menu = self.action_set.menu("&View")
        for dock in self.docks:
            view_menu.addAction(dock.toggleViewAction())
        self.action_set.add(ACTIONS[at["view.runs"] :], commands)
        self._fill_recent_menu()
        self.session.phase_changed.connect(lambda phase: self.recent_menu.setEnabled(not phase.running))

    # ---- calling the session ---------------------------------------------------------------------

    def load_dataset(self, name: str) -> None:
        """Switch to dataset ``name``: at once if its files are here, else download it in the background."""
        self.attempt("Cannot load the dataset", self.session.load_dataset, name)

    def load_preset(self, name: str) -> None:
        self.attempt("Cannot load the preset", self.session.load_preset, name)

    def new_network(self) -> None:
        self.attempt("Cannot start a new network", self.session.new_network)

    def start_training(self) -> None:
        """Train a snapshot of the current network and settings in the background."""
        self.attempt("Cannot start training", self.session.start_training)

    def stop_training(self) -> None:
        self.session.stop()

    def _pause_toggled(self, paused: bool) -> None:
        self.attempt("Cannot pause", self.session.pause if paused else self.session.resume)

    def continue_run(self, folder: Path, epochs: int) -> None:
        """Train the run in ``folder`` for ``epochs`` more epochs from its last checkpoint, into the same folder."""
        self.attempt("This run cannot be continued", self.session.continue_run, folder, epochs)

    def find_learning_rate(self) -> bool:
        """The training dock's "Find…": the range test on the network and settings being edited."""
        return self.attempt("Cannot find a learning rate", self.session.find_learning_rate)

    def _show_learning_rate(self, test: LearningRateTest) -> None:
        dialog = LearningRateDialog(test, self.session.architecture.name, self)
        dialog.rateChosen.connect(self.panel.set_learning_rate)
        self.learning_rate_dialog = dialog
        if self.interactive:
            dialog.show()

    def start_experiment(self, ready_made: str, vary: list[str], repeats: int) -> bool:
        """Start a ready-made experiment, or vary the network and settings being edited (``KEY=V1,V2,...``)."""
        queue = self.session.experiments
        if ready_made:
            return self.attempt("Cannot start the experiment", queue.start_ready_made, ready_made, repeats)
        return self.attempt("Cannot start the experiment", queue.start_custom, vary, repeats)

    def stop_experiment(self) -> None:
        """The Experiments tab's Stop: the search or the experiment running, after its batch."""
        if self.session.searcher.task is not None:
            self.session.searcher.stop()
        else:
            self.session.experiments.stop()

    def search_settings(self) -> SearchDialog:
        """Train → Search the settings…: ask for the ranges, then search them on the Experiments tab."""
        dialog = SearchDialog(self)
        dialog.accepted.connect(lambda: self.start_search(*dialog.choices()))
        self.search_dialog = dialog
        if self.interactive:
            dialog.open()
        return dialog

    def start_search(self, space: list[str], trials: int, storage: str | None = None) -> bool:
        """Search ``space`` over ``trials`` trials of the network and settings being edited."""
        if self.attempt("Cannot start the search", self.session.searcher.start, space, trials, storage):
            self.show_tab("experiments")
            return True
        return False

    def continue_experiment(self) -> bool:
        """Train what is left of the experiment on show."""
        return self.attempt("Cannot continue the experiment", self.session.experiments.go_on)

    def open_experiment(self, folder: Path | None = None) -> bool:
        """Show an experiment's folder (chosen in a dialog when not given) on the Experiments tab."""
        if folder is None:
            start = self.session.runs_folder / EXPERIMENTS_FOLDER
            path = QFileDialog.getExistingDirectory(self, "Open an experiment's folder", str(start))
            if not path:
                return False
            folder = Path(path)
        return self.attempt("Cannot open the experiment", self.session.experiments.open, folder)

    def is_training(self) -> bool:
        return self.session.phase.running

    def _run_done(self, status: str) -> None:
        self.run_history.set_busy_folder(None)
        self.run_history.refresh()
        self.runFinished.emit(status)

    def load_run(self, folder: Path, show_weights: bool = True) -> bool:
        """Put a run's network, settings and dataset back in the window (and its trained network on show)."""
        return self.attempt("Cannot load this run", self.session.load_run, folder, show_weights)

    def open_trained(self, path: Path) -> bool:
        """Show a trained network from a run folder or a safetensors bundle: network, settings, guesses, weights."""
        return self.attempt("Cannot open this model", self.session.open_trained, path)

    def evaluate_current(self) -> None:
        """Score the network on show (trained or not) on the test set, in the background."""
        self.attempt("Nothing to evaluate", self.session.evaluate_current)

    def evaluate_run(self, folder: Path) -> None:
        self.attempt("Cannot evaluate this run", self.session.evaluate_run, folder)

    def show_dropped_images(self, paths: list[Path]) -> None:
        """Images dropped onto the gallery: what the network on show makes of them."""
        if self.attempt("Cannot use these images", self.session.show_images, paths):
            self.tabs.setCurrentIndex(0)

    def predict_images(self) -> PredictImagesDialog:
        """File → Predict images…: choose image files and whether to invert them, then see the network's guesses
        in the gallery (window-modal; the guesses come when the user presses Predict)."""
        title = self.session.dataset.info.title if self.session.dataset is not None else "training"
        dialog = PredictImagesDialog(self.session.background_hint, Path.home(), title, self)
        dialog.accepted.connect(lambda: self.show_chosen_images(*dialog.choice()))
        dialog.open()
        return dialog

    def show_chosen_images(self, paths: list[Path], invert: bool) -> None:
        """The network's guesses for the image files ``paths`` (``invert``: dark on light made light on dark)."""
        if self.attempt("Cannot use these images", self.session.show_images, paths, invert):
            self.tabs.setCurrentIndex(0)

    def show_confusion_cell(self, true_class: int, predicted_class: int) -> None:
        """Show in the gallery the test images of one confusion-matrix cell, e.g. Shirts taken for T-shirts."""
        if self.session.show_confusion_cell(true_class, predicted_class):
            self.tabs.setCurrentIndex(0)

    def export_current(self) -> None:
        """File → Export: the network of the run the window shows, in a format the user picks."""
        try:
            folder = self.session.export_source()
            trained = load_trained(folder)
        except WorkbenchError as error:
            self.report_problem("Nothing to export", str(error))
            return
        dialog = ExportDialog(trained, self, self.session.export_format, self.session.export_folder)
        if dialog.exec():
            self.export_to(folder, *dialog.choice())

    def export_to(self, folder: Path, fmt: str, target: Path) -> bool:
        """Export the trained network of ``folder`` in the background, then name the file written; True if the
        export started.

        Files at the target that the workbench did not write are replaced only after the user answers Yes to
        "Replace …?" (No is the default, and exports nothing). Without dialogs (not ``interactive``) they are
        never replaced: the export fails, saying so."""
        force = False
        if self.interactive:
            try:
                foreign = self.session.export_conflicts(folder, fmt, target)
            except WorkbenchError as error:
                self.report_problem("Cannot export", str(error))
                return False
            if foreign:
                if not self.confirm_replace(foreign):
                    self.show_status(f"Nothing exported: {' and '.join(map(str, foreign))} left as it was.", 10000)
                    return False
                force = True
        return self.attempt("Cannot export", self.session.export, folder, fmt, target, force)

    def confirm_replace(self, paths: list[Path]) -> bool:
        """Ask whether to replace ``paths``, files the workbench did not write; True for Yes (No is the default)."""
        one = len(paths) == 1
        named = " and ".join(str(path) for path in paths)
        answer = QMessageBox.question(
            self,
            f"Replace {' and '.join(path.name for path in paths)}?",
            f"{named} {'exists' if one else 'exist'} and {'was' if one else 'were'} not written by the workbench. "
            f"Replace {'it' if one else 'them'} with this export? What {'it holds' if one else 'they hold'} now "
            f"will be lost.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _exported(self, result: Any) -> None:
        if self.interactive:
            QMessageBox.information(self, "Export finished", result.message)

    def run_on_cluster(self) -> ClusterDialog | None:
        """Save the network and settings as a hand-off folder and show the torchrun commands that train them."""
        try:
            folder = self.session.prepare_handoff()
        except WorkbenchError as error:
            self.report_problem("Cannot prepare the hand-off", str(error))
            return None
        import torch

        dialog = ClusterDialog(folder, torch.cuda.device_count(), self)
        if self.interactive:
            dialog.exec()
        return dialog

    # ---- files -----------------------------------------------------------------------------------

    def open_architecture(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open architecture", str(Path.cwd()), "Architecture (*.json)")
        if path:
            self.open_architecture_file(Path(path))

    def open_architecture_file(self, path: Path) -> bool:
        if not self.attempt("Cannot open the architecture", self.session.open_architecture, path):
            return False
        self.builder.undo_stack.setClean()
        self._update_title()
        return True

    open_recent_file = open_architecture_file

    def save_architecture(self) -> None:
        if self.session.file_path is None:
            self.save_architecture_as()
        else:
            self.save_architecture_file(self.session.file_path)

    def save_architecture_as(self) -> None:
        suggested = str(Path.cwd() / f"{self.session.architecture.name}.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save architecture", suggested, "Architecture (*.json)")
        if path:
            self.save_architecture_file(Path(path))

    def save_architecture_file(self, path: Path) -> bool:
        if not self.attempt("Cannot save the architecture", self.session.save_architecture, path):
            return False
        self.builder.undo_stack.setClean()
        self._update_title()
        return True

    def export_diagram(self) -> None:
        """File → Export diagram…: the Diagram tab's picture of the network, as SVG or PNG."""
        suggested = str(Path.cwd() / f"{self.session.architecture.name}.svg")
        filters = "SVG picture (*.svg);;PNG image (*.png)"
        path, chosen = QFileDialog.getSaveFileName(self, "Export the network diagram", suggested, filters)
        if path:
            self.export_diagram_file(Path(path), ".png" if "png" in chosen.lower() else ".svg")

    def export_diagram_file(self, path: Path, default_suffix: str = ".svg") -> bool:
        """Write the diagram to ``path`` (``default_suffix`` added when it has none); a failure is shown, saying
        why, and nothing is left half-written."""
        if not path.suffix:
            path = path.with_suffix(default_suffix)
        if not self.attempt("Cannot export the diagram", self.network_diagram.export, path):
            return False
        self.statusBar().showMessage(f"Diagram saved to {path}", 10000)
        return True

    def open_trained_model(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Open a run folder or an exported bundle", str(self.session.runs_folder)
        )
        if path:
            self.open_trained(Path(path))

    def choose_runs_folder(self) -> None:
        """File → Runs Folder…: choose the folder new runs go into and the Runs tab lists; one that cannot be
        written is refused, saying why, and the runs folder stays as it was."""
        path = QFileDialog.getExistingDirectory(self, "Choose the folder for your runs", str(self.session.runs_folder))
        if path:
            self.attempt("Cannot use this runs folder", self.session.set_runs_folder, Path(path))

    def _runs_folder_changed(self, folder: Path) -> None:
        if self.store is not None:
            self.store.save_runs_folder(folder)
            self.store.sync()

    def add_recent_file(self, path: Path) -> None:
        self.session.add_recent_file(path)

    def clear_recent_files(self) -> None:
        self.session.clear_recent_files()

    def _recent_files_changed(self, paths: list[Path]) -> None:
        self._fill_recent_menu()
        if self.store is not None:
            self.store.save_recent(paths)
            self.store.sync()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()  # deletes the actions it owns: those added below
        paths = self.session.recent_files
        for number, path in enumerate(paths, start=1):
            action = self.recent_menu.addAction(f"&{number} {path.name}")
            action.triggered.connect(lambda checked=False, p=path: self.open_recent_file(p))
            action.setToolTip(str(path))
        if paths:
            self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("&Clear the list")
        clear.triggered.connect(self.clear_recent_files)
        clear.setEnabled(bool(paths))
        self.recent_menu.setToolTipsVisible(True)

    def _update_title(self, *_: object) -> None:
        path = self.session.file_path
        name = path.name if path else self.session.architecture.name
        modified = "" if self.builder.undo_stack.isClean() else " *"
        self.setWindowTitle(f"{name}{modified} — workbench")

    # ---- remembering -----------------------------------------------------------------------------

    def restore(self, restore_work: bool) -> None:
        """Put back what the last window closed with; anything missing or damaged keeps its default."""
        assert self.store is not None
        geometry, layout = self.store.geometry(), self.store.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if layout is not None:
            self.restoreState(layout, LAYOUT_VERSION)
        self.session.recent_files = self.store.recent_files()
        self._fill_recent_menu()
        export = self.store.export_choice()
        if export is not None:
            self.session.export_format, self.session.export_folder = export
        runs_folder = self.store.runs_folder()  # None while $WORKBENCH_RUNS_DIR decides
        if runs_folder is not None:
            self.session.set_runs_folder(runs_folder, check=False)  # Start says what is wrong with it, if anything
        if not restore_work:
            return
        architecture = self.store.architecture()
        if architecture is not None:
            self.session.set_architecture(architecture)
            self.builder.undo_stack.clear()
            self.builder.undo_stack.setClean()
        config = self.store.config()
        if config is not None:
            self.session.set_config(config)
            self.load_dataset(config.dataset)
            if self.session.dataset is not None and self.session.dataset.info.name == config.dataset:
                self.session.set_config(config)  # again: loading a dataset shrinks the sizes to its defaults
        self._update_title()

    def save_session(self) -> None:
        """Remember the geometry, dock layout, network, settings and recent files (when ``remember``)."""
        if self.store is None:
            return
        self.store.save_window(self.saveGeometry(), self.saveState(LAYOUT_VERSION))
        self.store.save_work(self.session.architecture, self.panel.config())
        self.store.save_recent(self.session.recent_files)
        self.store.save_export_choice(self.session.export_format, self.session.export_folder)
        self.store.sync()

    # ---- help ------------------------------------------------------------------------------------

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
        box.setTextFormat(box.textFormat().RichText)
        box.setText(about_html())
        box.setDetailedText(about_text())
        icon = self.windowIcon()
        if not icon.isNull():
            box.setIconPixmap(icon.pixmap(64, 64))
        if self.interactive:
            box.exec()
        return box

    # ---- feedback and closing --------------------------------------------------------------------

    def show_status(self, text: str, timeout_ms: int = 0) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def confirm_stop_on_close(self) -> bool:
        if not self.interactive:
            return True
        answer = QMessageBox.question(
            self,
            "Training is running",
            "A run is training. Stop it and close the workbench? The run is saved as stopped, without a test "
            "evaluation (a run stopped before its first epoch has ended leaves nothing).",
        )
        return answer == QMessageBox.StandardButton.Yes

    def changeEvent(self, event: QEvent) -> None:
        palette_changed = event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange)
        if palette_changed and hasattr(self, "tabs"):  # not while __init__ is still building the window
            self.follow_colour_scheme()
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.session.phase.running and not self.confirm_stop_on_close():
            event.ignore()
            return
        self.session.shutdown()
        self.save_session()
        event.accept()

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
