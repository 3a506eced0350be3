"""Widgets bound to the session: its events redraw the views, the panels' edits write back to it.

Nothing here keeps application state: what to show comes from the session's events, and the only
timers are the views' own throttles (a short run's epochs would redraw the gallery many times a second).

While a run trains, the session holds every epoch as it ends, and the views showing it (gallery, evaluation,
weights) draw at most once per :data:`EPOCH_VIEWS_MS` the newest of them, and nothing while they are out of sight:
the window's thread shares the processor with the run.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QWidget

from workbench.core.architecture import Architecture
from workbench.core.data.datasets import LoadedDataset
from workbench.core.errors import WorkbenchError
from workbench.core.inspect.alarms import Alarm
from workbench.core.inspect.one_image import unit_sum
from workbench.core.runs.metrics import Evaluation
from workbench.core.training.augment import parse_augment
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import EpochMetrics
from workbench.session.looked_at import PageMaps
from workbench.session.phase import Phase
from workbench.session.shown import GallerySet, ShownEvaluation, ShownNetwork
from workbench.session.training import BatchPacket, EpochPacket, RunStart, release_idle_workers
from workbench.ui.images import to_display
from workbench.ui.layout import WindowLayout
from workbench.ui.views.inspect_view import weights_image
from workbench.ui.views.sight import out_of_sight

EPOCH_VIEWS_MS = 1000
SUBSET_DEBOUNCE_MS = 300
ESTIMATE_DEBOUNCE_MS = 600
"""Quiet time after the last edit before the run's time is measured again (a measurement takes about a second)."""


class ViewBinding(QObject):
    """Connects one window's widgets and one session, both ways."""

    def __init__(self, window: WindowLayout):
        super().__init__(window)
        self.window = window
        self.session = session = window.session
        self._due: dict[QWidget, Callable[[], None]] = {}  # views in sight with a newer epoch to draw
        self.epoch_views_timer = QTimer(self, singleShot=True, interval=EPOCH_VIEWS_MS)
        self.epoch_views_timer.timeout.connect(self._draw_due)
        self.subset_timer = QTimer(self, singleShot=True, interval=SUBSET_DEBOUNCE_MS)
        self.subset_timer.timeout.connect(session.redraw_validation_subset)
        self.estimate_timer = QTimer(self, singleShot=True, interval=ESTIMATE_DEBOUNCE_MS)
        self.estimate_timer.timeout.connect(session.request_estimate)
        self._writing_back = False

        builder, panel = window.builder, window.panel
        builder.architectureChanged.connect(self._architecture_edited)
        # The diagram is a picture of the builder's network: redrawn on every edit, its selection the builder's.
        diagram = window.network_diagram
        builder.architectureChanged.connect(lambda: diagram.show_network(builder.architecture(), builder.report()))
        builder.layerSelected.connect(diagram.select_layer)
        diagram.layerClicked.connect(builder.select_layer)
        diagram.deleteRequested.connect(builder.remove_layer)
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
        session.estimates.changed.connect(panel.show_estimate)
        builder.architectureChanged.connect(self._estimate_soon)
        panel.configEdited.connect(self._estimate_soon)
        for changed in (session.dataset_changed, session.architecture_changed, session.config_changed):
            changed.connect(self._estimate_soon)
        session.phase_changed.connect(self._estimate_when_idle)

        inspector, inspect_view = session.inspector, window.inspect_view
        inspector.changed.connect(inspect_view.show_inspected)
        inspector.failed.connect(self._inspection_failed)
        inspect_view.targetChosen.connect(self._target_chosen)
        inspect_view.methodChosen.connect(self._method_chosen)
        inspect_view.unitClicked.connect(self._unit_clicked)
        window.tabs.currentChanged.connect(self._tab_changed)
        window.gallery.inspectRequested.connect(self._inspect_gallery_item)
        window.gallery.lookedAtWanted.connect(self._looked_at_wanted)
        session.looked_at.changed.connect(self._looked_at_measured)
        session.looked_at.failed.connect(self._looked_at_failed)
        window.data_browser.inspectRequested.connect(self._inspect_training_image)
        session.alarm_watch.changed.connect(self._alarms_changed)
        for changed in (session.dataset_changed, session.config_changed):
            changed.connect(self._augmentation_changed)
        panel.configEdited.connect(self._augmentation_changed)
        experiments = window.experiments_view
        session.experiments.changed.connect(experiments.show_experiment)
        session.experiments.curve_grew.connect(experiments.grow_curve)
        session.phase_changed.connect(lambda phase: experiments.set_busy(phase.busy))
        experiments.set_architecture(session.architecture)

    # ---- widgets -> session ----------------------------------------------------------------------

    def _architecture_edited(self) -> None:
        if self._writing_back:
            return
        report = self.window.builder.report()
        self.window.panel.set_start_allowed(report.ok, report.errors[0] if report.errors else "")
        self.session.edit_architecture(self.window.builder.architecture())
        self.window.experiments_view.set_architecture(self.session.architecture)

    def _dataset_chosen(self, name: str) -> None:
        self._config_edited()  # a folder's image size and channels, chosen in a dialog, come with it
        self.window.attempt("Cannot load the dataset", self.session.load_dataset, name)

    def _config_edited(self) -> None:
        config = self.window.panel.config()
        self.session.edit_config(config)
        self.window.builder.set_loss(config.loss)

    def _inspect(self, request: Callable[[int], None], index: int) -> None:
        """An image asked to be inspected: the Inspect tab comes to the front and measures it."""
        if self.window.attempt("Cannot inspect this image", request, index):
            self.window.inspect_view.show_waiting("Inspecting…")
            self.window.tabs.setCurrentWidget(self.window.inspect_view)

    def _inspect_gallery_item(self, index: int) -> None:
        self._inspect(self.session.inspect_gallery_item, index)

    def _inspect_training_image(self, index: int) -> None:
        self._inspect(self.session.inspect_training_image, index)

    def _inspection_failed(self, message: str) -> None:
        self.window.inspect_view.show_waiting(f"Cannot inspect this image: {message}")

    def _target_chosen(self, target: int) -> None:
        self.window.inspect_view.show_waiting("Inspecting…")
        self.session.inspector.set_target(None if target == -1 else target)

    def _method_chosen(self, method: str) -> None:
        self.window.inspect_view.show_waiting("Inspecting…")
        self.session.inspector.set_method(method)
        self.window.gallery.forget_looked_at()

    def _looked_at_wanted(self, key: int, indices: list[int]) -> None:
        try:
            self.session.look_at_gallery(key, indices)
        except WorkbenchError as error:
            self._looked_at_failed(str(error))

    def _looked_at_measured(self, maps: PageMaps) -> None:
        self.window.gallery.set_looked_at(maps.key, maps.indices, maps.maps, maps.method)

    def _looked_at_failed(self, message: str) -> None:
        self.window.gallery.show_looked_at(False)
        self.window.statusBar().showMessage(f"Cannot show what the network looked at: {message}", 10000)

    def _unit_clicked(self, layer: int, unit: int) -> None:
        shown = self.session.inspector.latest
        if shown is None:
            return
        numbers = unit_sum(shown.model, shown.inspection, layer, unit)
        self.window.inspect_view.show_unit(numbers, weights_image(shown, layer, unit))

    def _tab_changed(self, index: int) -> None:
        self.session.inspector.set_visible(self.window.tabs.widget(index) is self.window.inspect_view)

    def _alarms_changed(self, alarms: list[Alarm]) -> None:
        label = self.window.alarms
        if not alarms:
            label.hide()
            return
        lines = [
            f"⚠ <b>{html.escape(alarm.kind.value.capitalize())}</b>: {html.escape(alarm.message)} "
            f"<a href='tab:{alarm.tab}'>Show {alarm.tab}</a>"
            for alarm in alarms
        ]
        label.setText("<br>".join(lines))
        label.show()

    # ---- session -> widgets ----------------------------------------------------------------------

    def _phase_changed(self, phase: Phase) -> None:
        window = self.window
        running = phase.running
        window.builder.set_locked(running)
        window.panel.set_running(running, phase is Phase.PAUSED)
        window.panel.settings_box.setEnabled(phase is Phase.IDLE)
        window.busy.setVisible(phase in (Phase.EVALUATING, Phase.EXPORTING, Phase.FINDING_LR))
        if running:
            self.subset_timer.stop()  # the run draws its own validation subset
        else:
            self._draw_due()  # a run's end, at once

    def _estimate_soon(self, *_: object) -> None:
        """Measure the run's time again once the edits pause (see ``ESTIMATE_DEBOUNCE_MS``)."""
        self.estimate_timer.start()

    def _estimate_when_idle(self, phase: Phase) -> None:
        if phase is Phase.IDLE:
            self._estimate_soon()

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

    def _augmentation_changed(self, *_: object) -> None:
        """The Data tab's "Augmented" follows the settings' augmentation."""
        session, browser = self.session, self.window.data_browser
        names = parse_augment(session.config.augment)
        if session.dataset is None or not names:
            browser.set_augmentation(None, "")
            return
        info = session.dataset.info

        def augment(indices: np.ndarray, draw: int) -> np.ndarray | None:
            images = session.augmented_training_images(indices.tolist(), draw)
            return None if images is None else to_display(images, info.mean, info.std)

        browser.set_augmentation(augment, ", ".join(names))

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
        self.window.experiments_view.set_architecture(self.session.architecture)

    def _config_set(self, config: TrainConfig) -> None:
        self.window.panel.set_config(config)
        self.window.builder.set_loss(config.loss)

    def _network_changed(self, network: ShownNetwork | None) -> None:
        if network is not None and network.model is not None:
            if any(parameter.is_meta for parameter in network.model.parameters()):
                return  # a run's network before its first epoch: no weights to draw yet
        self._in_turn(self.window.weights_view, lambda: self._draw_weights(network))

    def _draw_weights(self, network: ShownNetwork | None) -> None:
        weights_view = self.window.weights_view
        if network is None or network.model is None:
            weights_view.clear("The network does not fit yet.")
            return
        caption = (
            "Untrained: the random weights a run starts from" if network.kind.value == "untrained" else network.label
        )
        weights_view.show_weights(network.architecture, network.model.state_dict(), caption)

    def _gallery_changed(self, shown: GallerySet, new_images: bool) -> None:
        gallery = self.window.gallery
        waiting = self._due.get(gallery)
        new_images = new_images or isinstance(waiting, functools.partial) and waiting.keywords["new_images"]
        self._in_turn(gallery, functools.partial(self._draw_gallery, shown, new_images=new_images))

    def _draw_gallery(self, shown: GallerySet, new_images: bool) -> None:
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
            self._in_turn(view, view.clear)
            return
        scores = cast("Evaluation | Callable[[], Evaluation]", shown.scores)
        self._in_turn(view, lambda: view.show_evaluation(scores, shown.title))
        if shown.bring_to_front:
            self.window.tabs.setCurrentIndex(1)

    def _in_turn(self, view: QWidget, draw: Callable[[], None]) -> None:
        """Hand ``view`` what the session shows now, by calling ``draw``: at once, except while a run trains and
        the view is in sight, when the view draws at most once per :data:`EPOCH_VIEWS_MS` (a quick run's epochs end
        milliseconds apart), the newest state at the end of the interval. A view out of sight is handed it at
        once and draws it when it is shown."""
        self._due.pop(view, None)
        if not self.session.phase.running or out_of_sight(view):
            draw()
            return
        self._due[view] = draw
        if not self.epoch_views_timer.isActive():
            self._draw_due()

    def _draw_due(self) -> None:
        """Draw what the views in turn wait for; the next may wait for the interval."""
        due, self._due = self._due, {}
        for draw in due.values():
            draw()
        if due:
            self.epoch_views_timer.start()

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
        release_idle_workers()  # whatever this thread computed since, e.g. the run's validation subset
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
        self.session.present_epoch(packet)  # the views draw it in turn (see _in_turn)
        release_idle_workers()

    def _run_finished(self, *_: object) -> None:
        for plots in (self.window.plots, self.window.gradient_plots):
            if not out_of_sight(plots):  # else they draw it all when shown
                plots.flush()

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
