"""Widgets bound to the session: its events redraw the views, the panels' edits write back to it.

Nothing here keeps application state: what to show comes from the session's events, and the only
timers are the views' own throttles (a short run's epochs would redraw the gallery many times a second).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import cast

from PySide6.QtCore import QObject, QTimer

from workbench.core.architecture import Architecture
from workbench.core.data.datasets import LoadedDataset
from workbench.core.runs.metrics import Evaluation
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import EpochMetrics
from workbench.session.phase import Phase
from workbench.session.shown import GallerySet, ShownEvaluation, ShownNetwork
from workbench.session.training import BatchPacket, EpochPacket, RunStart
from workbench.ui.images import to_display
from workbench.ui.layout import WindowLayout

EPOCH_VIEWS_MS = 1000
SUBSET_DEBOUNCE_MS = 300


class ViewBinding(QObject):
    """Connects one window's widgets and one session, both ways."""

    def __init__(self, window: WindowLayout):
        super().__init__(window)
        self.window = window
        self.session = session = window.session
        self.pending_epoch: EpochPacket | None = None
        self.epoch_views_timer = QTimer(self, singleShot=True, interval=EPOCH_VIEWS_MS)
        self.epoch_views_timer.timeout.connect(self._epoch_views_due)
        self.subset_timer = QTimer(self, singleShot=True, interval=SUBSET_DEBOUNCE_MS)
        self.subset_timer.timeout.connect(session.redraw_validation_subset)
        self._writing_back = False

        builder, panel = window.builder, window.panel
        builder.architectureChanged.connect(self._architecture_edited)
        panel.configEdited.connect(self._config_edited)
        panel.datasetChanged.connect(self._dataset_chosen)
        for spin in (panel.seed, panel.train_size, panel.val_size):
            spin.valueChanged.connect(self.subset_timer.start)

        session.phase_changed.connect(self._phase_changed)
        session.dataset_changed.connect(self._dataset_changed)
        session.architecture_changed.connect(self._architecture_set)
        session.config_changed.connect(self._config_set)
        session.network_changed.connect(self._network_changed)
        session.gallery_changed.connect(self._gallery_changed)
        session.evaluation_changed.connect(self._evaluation_changed)
        session.results_cleared.connect(self._results_cleared)
        session.run_started.connect(self._run_started)
        session.batch_progress.connect(self._batch_progress)
        session.epoch_ended.connect(self._epoch_ended)
        session.run_finished.connect(self._run_finished)
        session.history_shown.connect(self._history_shown)
        session.progress_text.connect(panel.show_status)
        session.runs_folder_changed.connect(self._runs_folder_changed)

    # ---- widgets -> session ----------------------------------------------------------------------

    def _architecture_edited(self) -> None:
        if self._writing_back:
            return
        report = self.window.builder.report()
        self.window.panel.set_start_allowed(report.ok, report.errors[0] if report.errors else "")
        self.session.edit_architecture(self.window.builder.architecture())

    def _dataset_chosen(self, name: str) -> None:
        self._config_edited()  # a folder's image size and channels, chosen in a dialog, come with it
        self.window.attempt("Cannot load the dataset", self.session.load_dataset, name)

    def _config_edited(self) -> None:
        config = self.window.panel.config()
        self.session.edit_config(config)
        self.window.builder.set_loss(config.loss)

    # ---- session -> widgets ----------------------------------------------------------------------

    def _phase_changed(self, phase: Phase) -> None:
        window = self.window
        running = phase.running
        window.builder.set_locked(running)
        window.panel.set_running(running, phase is Phase.PAUSED)
        window.panel.settings_box.setEnabled(phase is Phase.IDLE)
        window.busy.setVisible(phase in (Phase.EVALUATING, Phase.EXPORTING))
        if running:
            self.subset_timer.stop()  # the run draws its own validation subset

    def _dataset_changed(self, dataset: LoadedDataset) -> None:
        info, window = dataset.info, self.window
        window.panel.set_config(self.session.config)
        window.panel.fit_sizes(len(dataset.train_y))
        window.builder.set_input(info.input_shape, len(info.class_names))
        window.data_browser.set_data(
            to_display(dataset.train_x, info.mean, info.std),
            dataset.train_y.tolist(),
            info.class_names,
            f"{info.title} — training split",
        )
        if info.name != "digits":
            window.notice.hide()

    def _architecture_set(self, architecture: Architecture) -> None:
        builder = self.window.builder
        self._writing_back = True
        try:
            builder.set_architecture(architecture)
        finally:
            self._writing_back = False
        report = builder.report()
        self.window.panel.set_start_allowed(report.ok, report.errors[0] if report.errors else "")
        self.session.architecture = builder.architecture()  # with the dataset's input, as the builder shows it
        self.session.report = report

    def _config_set(self, config: TrainConfig) -> None:
        self.window.panel.set_config(config)
        self.window.builder.set_loss(config.loss)

    def _network_changed(self, network: ShownNetwork | None) -> None:
        weights_view = self.window.weights_view
        if network is None or network.model is None:
            weights_view.clear("The network does not fit yet.")
            return
        if any(parameter.is_meta for parameter in network.model.parameters()):
            return  # a run's network before its first epoch: no weights to draw yet
        caption = (
            "Untrained: the random weights a run starts from" if network.kind.value == "untrained" else network.label
        )
        weights_view.show_weights(network.architecture, network.model.state_dict(), caption)

    def _gallery_changed(self, shown: GallerySet, new_images: bool) -> None:
        gallery = self.window.gallery
        if new_images:
            info = shown.info
            gallery.set_items(
                to_display(shown.images, info.mean, info.std),
                shown.labels.tolist(),
                info.class_names,
                shown.probabilities,
            )
        else:
            gallery.set_probabilities(shown.probabilities)
        gallery.set_header(shown.header)

    def _evaluation_changed(self, shown: ShownEvaluation | None) -> None:
        view = self.window.evaluation_view
        if shown is None:
            view.clear()
            return
        view.show_evaluation(cast("Evaluation | Callable[[], Evaluation]", shown.scores), shown.title)
        if shown.bring_to_front:
            self.window.tabs.setCurrentIndex(1)

    def _results_cleared(self) -> None:
        window = self.window
        window.plots.clear()
        window.gradient_plots.clear()
        window.evaluation_view.clear()
        window.panel.reset_progress()

    def _run_started(self, start: RunStart) -> None:
        window = self.window
        window.plots.clear()
        window.gradient_plots.clear()
        window.evaluation_view.clear()
        window.run_history.set_busy_folder(start.folder)
        batches = self.session.batches_per_epoch()
        window.plots.expect(start.config.epochs * batches, start.config.epochs)
        for metrics in start.history:  # a continued run shows its earlier epochs too
            window.plots.add_epoch(metrics)
        window.gradient_plots.start(start.gradient_layers, start.activation_layers, start.config.epochs * batches)

    def _batch_progress(self, packet: BatchPacket) -> None:
        window = self.window
        window.plots.add_batch_losses(packet.steps, packet.losses)
        if packet.gradients:
            window.gradient_plots.add_samples(packet.gradients)
        if self.session.phase is Phase.TRAINING:
            window.panel.show_progress(
                packet.epoch,
                packet.epochs,
                packet.batch,
                packet.batches_per_epoch,
                packet.samples_per_second,
                packet.seconds_left,
            )

    def _epoch_ended(self, packet: EpochPacket) -> None:
        self.window.plots.add_epoch(packet.metrics)
        if not self.epoch_views_timer.isActive():
            self.session.present_epoch(packet)
            self.epoch_views_timer.start()
        else:
            self.pending_epoch = packet

    def _epoch_views_due(self) -> None:
        if self.pending_epoch is not None:
            packet, self.pending_epoch = self.pending_epoch, None
            self.session.present_epoch(packet)

    def _run_finished(self, *_: object) -> None:
        window = self.window
        window.plots.flush()
        window.gradient_plots.flush()
        self.epoch_views_timer.stop()
        self.pending_epoch = None

    def _runs_folder_changed(self, folder: Path) -> None:
        self.window.run_history.set_root(folder)

    def _history_shown(self, name: str, history: list[EpochMetrics]) -> None:
        plots = self.window.plots
        plots.clear()
        if history:
            plots.expect(1, max(metrics.epoch for metrics in history))
            for metrics in history:
                plots.add_epoch(metrics)
            plots.flush()
