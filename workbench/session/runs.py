"""The session's runs: train, continue, pause and stop; evaluate; export; load a trained network back.

:class:`RunsMixin` is half of :class:`~workbench.session.session.Session`: it relies on the state and the
methods the other half defines (declared below for the type checker), and adds the run's events.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from psygnal import Signal

from workbench.core.architecture import Architecture, ValidationReport
from workbench.core.data import datasets
from workbench.core.errors import WorkbenchError
from workbench.core.experiments.lr_find import LearningRateTest, find_learning_rate
from workbench.core.export.formats import ExportResult, export_model, foreign_files
from workbench.core.runs.folders import RUN_FILE, load_checkpoint, new_run_dir, read_metrics, read_run
from workbench.core.runs.lock import check_not_being_trained
from workbench.core.runs.metrics import Evaluation, evaluate_model
from workbench.core.runs.trained import TrainedModel, check_finite, evaluate_trained, load_trained
from workbench.core.training.config import TrainConfig
from workbench.core.training.devices import choose_precision
from workbench.core.training.distributed import write_handoff
from workbench.core.training.engine import EpochMetrics
from workbench.session.alarm_watch import AlarmWatch
from workbench.session.estimates import Estimates
from workbench.session.phase import Phase, PhaseError, check_editable, check_transition
from workbench.session.shown import (
    GallerySet,
    NetworkKind,
    ShownEvaluation,
    ShownNetwork,
    meta_model,
    validation_subset,
)
from workbench.session.tasks import Runner, Task, TaskState
from workbench.session.training import (
    BatchPacket,
    EpochPacket,
    RunEnd,
    RunNotice,
    RunRequest,
    RunStart,
    TestProgress,
    train,
)

HEADLINES = {"finished": "Finished", "stopped": "Stopped", "early-stopped": "Stopped early", "diverged": "Diverged"}


class RunsMixin:
    """Training, evaluation, export and trained networks, for :class:`~workbench.session.session.Session`."""

    run_started = Signal(object)  # RunStart
    batch_progress = Signal(object)  # BatchPacket
    epoch_ended = Signal(object)  # EpochPacket: the curves; the views follow present_epoch
    run_finished = Signal(object)  # RunEnd
    run_done = Signal(str)  # the run's status, or "failed": always last
    history_shown = Signal(str, list)  # a run's name and its epochs (Runs → Load shows its curves)
    learning_rate_found = Signal(object)  # LearningRateTest

    if TYPE_CHECKING:  # the other half's state and methods
        phase: Phase
        runner: Runner
        runs_out: Path | None
        runs_folder: Path
        dataset: datasets.LoadedDataset | None
        architecture: Architecture
        report: ValidationReport
        config: TrainConfig
        network: ShownNetwork | None
        gallery: GallerySet | None
        evaluation: ShownEvaluation | None
        problem: Signal
        notice: Signal
        status: Signal
        progress_text: Signal
        exported: Signal
        estimates: Estimates
        alarm_watch: AlarmWatch
        _then: Callable[[], None] | None
        closed: bool

        def enter(self, phase: Phase) -> None: ...
        def run_task(self, task: Task) -> None: ...
        def check_runs_folder(self) -> None: ...
        def load_dataset(self, name: str, then: Callable[[], None] | None = None) -> None: ...
        def set_architecture(self, architecture: Architecture, file_path: Path | None = None) -> None: ...
        def set_config(self, config: TrainConfig) -> None: ...
        def show_network(self, network: ShownNetwork | None) -> None: ...
        def show_gallery_guesses(self, header: str, predicted: bool = True) -> None: ...
        def emit_gallery(self, gallery: GallerySet) -> None: ...
        def show_evaluation(self, shown: ShownEvaluation | None) -> None: ...

    def _init_runs(self) -> None:
        self.training: Task | None = None
        self.run: RunStart | None = None  # the run training now, or the last one
        self.last_end: RunEnd | None = None
        self.last_export: ExportResult | None = None
        self.export_format = "onnx"
        self.export_folder: Path | None = None

    # ---- training ------------------------------------------------------------------------------

    def start_training(self) -> None:
        """Train a snapshot of the network and settings in the background (once the dataset has loaded).

        The run gets a new folder in the runs folder, or is written into ``runs_out`` when that is set; a runs
        folder that cannot be written is refused at once with a :class:`WorkbenchError` saying how to choose
        another, and nothing starts."""
        if self.phase is Phase.LOADING_DATA:
            self._after_loading(self.start_training)
            return
        check_transition(self.phase, Phase.TRAINING)
        if not self.report.ok:
            raise WorkbenchError("The network does not fit: " + "\n".join(self.report.errors))
        self.config.check()
        if self.runs_out is None:
            self.check_runs_folder()  # at once, in a dialog: nothing starts
        if self.dataset is None or datasets.canonical_name(self.config.dataset) != self.dataset.info.name:
            self.load_dataset(self.config.dataset, then=self.start_training)
            return
        request = RunRequest(self.architecture, self.config, out=self.runs_out, runs_root=self.runs_folder)
        self._launch(request, "Preparing the run…")

    def train_request(self, request: RunRequest, status: str) -> None:
        """Train ``request`` as Start would (once its dataset has loaded): an experiment's queued run."""
        check_transition(self.phase, Phase.TRAINING)
        if request.resume is not None:
            check_not_being_trained(request.resume)
            dataset = TrainConfig.from_dict(read_run(request.resume)["config"]).dataset
        else:
            assert request.config is not None
            request.config.check()
            dataset = request.config.dataset
        if self.dataset is None or datasets.canonical_name(dataset) != self.dataset.info.name:
            self.load_dataset(dataset, then=lambda: self._launch(request, status))
            return
        self._launch(request, status)

    def continue_run(self, folder: Path, epochs: int) -> None:
        """Train the run in ``folder`` for ``epochs`` more epochs from its last checkpoint, into the same folder."""
        check_transition(self.phase, Phase.TRAINING)
        check_not_being_trained(folder)  # at once, in a dialog, rather than from the background run
        _, config, checkpoint = load_checkpoint(folder)
        self.load_run(folder, show_weights=False)
        request = RunRequest(resume=folder, extra_epochs=epochs)
        status = f"Continuing after epoch {checkpoint.epoch}…"
        if self.dataset is None or self.phase is Phase.LOADING_DATA or self.dataset.info.name != config.dataset:
            self._after_loading(lambda: self._launch(request, status))
            return
        self._launch(request, status)

    def _after_loading(self, then: Callable[[], None]) -> None:
        self._then = then  # the data half calls it once the dataset is in

    def _launch(self, request: RunRequest, status: str) -> None:
        task = Task(
            "train",
            Phase.TRAINING,
            lambda state: train(request, state),
            on_success=self._run_finished,
            on_failure=self._run_failed,
            on_progress=self._run_reported,
            on_done=self._run_done,
        )
        self.estimates.cancel()  # the run needs the processor the measurement would take
        self.training = task
        self.last_end = None
        self.show_evaluation(None)
        self.progress_text.emit(status, " ", False)
        self.run_task(task)

    def pause(self) -> None:
        """Pause the run at its next batch."""
        check_transition(self.phase, Phase.PAUSED)
        assert self.training is not None
        self.training.state.pause()
        self.enter(Phase.PAUSED)
        self.status.emit("Paused — press Resume to go on", 0)

    def resume(self) -> None:
        """Let a paused run go on."""
        if self.phase is not Phase.PAUSED:
            raise PhaseError("Cannot resume: no run is paused.")
        assert self.training is not None
        self.training.state.resume()
        self.enter(Phase.TRAINING)
        if self.run is not None:
            self.status.emit(self._training_line(self.run), 0)

    def stop(self) -> None:
        """End the run after its current batch (it is saved as stopped)."""
        if not self.phase.running or self.training is None:
            return
        self.training.state.cancel()
        self.progress_text.emit("Stopping after this batch…", " ", False)

    def _run_reported(self, report: Any) -> None:
        if isinstance(report, BatchPacket):
            self.alarm_watch.add_samples(report.gradients)
            self.batch_progress.emit(report)
        elif isinstance(report, EpochPacket):
            if self.network is not None and self.network.model is not None:
                self.network.model.load_state_dict(report.weights, assign=True)
            self.alarm_watch.epoch_ended(report.metrics)
            self.epoch_ended.emit(report)
        elif isinstance(report, RunStart):
            self._run_started(report)
        elif isinstance(report, TestProgress):
            detail = f"{report.done:,} of {report.total:,} scored" if report.done else " "
            self.progress_text.emit(f"Evaluating on {report.total:,} test images…", detail, False)
        elif isinstance(report, RunNotice):
            self.notice.emit(report.message)

    def _run_started(self, start: RunStart) -> None:
        self.run = start
        self.alarm_watch.start(start.gradient_layers, start.history, len(start.class_names))
        self.show_network(
            ShownNetwork(
                NetworkKind.TRAINING,
                start.architecture,
                meta_model(start.architecture),
                start.architecture.name,
                start.folder,
            )
        )
        self.run_started.emit(start)
        if self.dataset is not None and self.dataset.info.name == start.config.dataset:
            images, labels = validation_subset(self.dataset, start.config)
            self.gallery = GallerySet(images, labels, self.dataset.info, None)
            self.show_gallery_guesses("Validation images — the guesses appear after the first epoch", predicted=False)
        self.status.emit(self._training_line(start), 0)

    @staticmethod
    def _training_line(start: RunStart) -> str:
        precision = choose_precision(start.config.mixed_precision, torch.device(start.device))
        return (
            f"Training {start.architecture.name} on {start.device} in {precision.name} ({precision.reason}) — "
            f"run folder {start.folder}"
        )

    def batches_per_epoch(self) -> int:
        """The batches in one epoch of the run training now (as its engine counts them), or of the settings."""
        if self.run is not None:
            return self.run.batches_per_epoch
        return math.ceil((self.config.train_size or 1) / self.config.batch_size)

    def present_epoch(self, packet: EpochPacket) -> None:
        """Show one finished epoch: the gallery's guesses, the validation confusion matrix and the weights."""
        if self.run is None or self.network is None:
            return
        metrics = packet.metrics
        accuracy = "" if math.isnan(metrics.val_accuracy) else f" — validation accuracy {metrics.val_accuracy:.1%}"
        gallery = self.gallery
        if packet.val_probabilities is not None and gallery is not None:
            if len(packet.val_probabilities) == len(gallery.labels):
                header = f"After epoch {metrics.epoch}{accuracy}"
                self.emit_gallery(
                    GallerySet(gallery.images, gallery.labels, gallery.info, packet.val_probabilities, header)
                )
        if packet.val_probabilities is not None:
            self.show_evaluation(
                ShownEvaluation(  # scored only if the Evaluation tab is looked at
                    lambda: packet.val_evaluation,
                    f"{self.run.architecture.name} — validation set after epoch {metrics.epoch}:",
                    "validation",
                )
            )
        self.show_network(
            ShownNetwork(
                NetworkKind.TRAINING,
                self.run.architecture,
                self.network.model,
                f"After epoch {metrics.epoch}",
                self.run.folder,
            )
        )

    def _run_finished(self, end: RunEnd) -> None:
        self.last_end = end
        self.alarm_watch.run_ended(end.status)
        start = self.run
        architecture = start.architecture if start is not None else self.architecture
        model = self.network.model if self.network is not None and self.network.model is not None else None
        if model is None or self.network is None or self.network.kind is not NetworkKind.TRAINING:
            model = meta_model(architecture)  # the run ended before it started (stopped while loading)
        model.load_state_dict(end.weights, assign=True)
        label = f"{architecture.name} ({end.status})"
        folder = end.folder if end.saved else None  # nothing to export or reopen from a folder that was removed
        self.show_network(ShownNetwork(NetworkKind.TRAINED, architecture, model, label, folder))
        if (
            self.gallery is not None
            and self.dataset is not None
            and tuple(self.dataset.info.input_shape) == tuple(architecture.input_shape)
        ):
            self.show_gallery_guesses(f"Trained network ({end.status})")
        headline = HEADLINES.get(end.status, end.status)
        tested = "not tested" if math.isnan(end.test_accuracy) else f"test accuracy {end.test_accuracy:.1%}"
        self.progress_text.emit(f"{headline} — {tested}", end.message, True)
        saved = f"Run saved in {end.folder}" if end.saved else "Nothing was saved: no epoch had ended"
        self.status.emit(f"{headline}: {tested}. {saved}", 0)
        if end.evaluation is not None:
            dataset = start.config.dataset if start is not None else ""
            self.show_evaluation(
                ShownEvaluation(end.evaluation, f"{architecture.name} — test set:", "test", model, dataset)
            )
        self.run_finished.emit(end)
        if end.status == "diverged":
            self.problem.emit("Training diverged", end.message)

    def _run_failed(self, message: str) -> None:
        self.last_end = None
        self.progress_text.emit("The run failed", message.splitlines()[0], False)
        self.problem.emit("The run failed", message)

    def _run_done(self) -> None:
        self.training = None
        self.run_done.emit(self.last_end.status if self.last_end is not None else "failed")

    def find_learning_rate(self) -> None:
        """Run the learning-rate range test on the network and settings being edited, in the background; the
        curve and the suggestion arrive as ``learning_rate_found``. Stopped (nothing shown) when the window
        closes."""
        check_transition(self.phase, Phase.FINDING_LR)
        if not self.report.ok:
            raise WorkbenchError("The network does not fit: " + "\n".join(self.report.errors))
        self.config.check()
        architecture, config = self.architecture.copy(), TrainConfig.from_dict(self.config.to_dict())

        def work(state: TaskState) -> LearningRateTest:
            return find_learning_rate(architecture, config, should_stop=lambda: state.cancelled)

        def failed(message: str) -> None:
            if not self.closed:
                self.problem.emit("The learning-rate range test failed", message)

        def found(test: LearningRateTest) -> None:
            self.status.emit(f"Suggested learning rate: {test.suggested:.3g} ({len(test.losses)} batches)", 15000)
            self.learning_rate_found.emit(test)

        self.estimates.cancel()  # the test needs the processor the measurement would take
        self.status.emit(f"Finding a learning rate for {architecture.name}: up to 100 batches…", 0)
        self.run_task(Task("find learning rate", Phase.FINDING_LR, work, on_success=found, on_failure=failed))

    # ---- trained networks: load back, open, evaluate, export ------------------------------------

    def load_run(self, folder: Path, show_weights: bool = True) -> None:
        """Put a run's network, settings and dataset back (and its trained network on show, when it has one)."""
        check_editable(self.phase)
        document = read_run(folder)
        architecture = Architecture.from_dict(document["architecture"])
        config = TrainConfig.from_dict(document["config"])
        self.set_config(config)
        self.set_architecture(architecture)
        history = _metrics_or_none(folder)
        self.history_shown.emit(str(document.get("name") or folder.name), history)
        self.alarm_watch.show_finished(history, str(document.get("status") or ""), architecture.num_classes)
        then = (lambda: self._show_trained_from(folder)) if show_weights else None
        if self.dataset is None or self.dataset.info.name != datasets.canonical_name(config.dataset):
            self.load_dataset(config.dataset, then=then)
        elif then is not None:
            then()

    def _show_trained_from(self, folder: Path) -> None:
        try:
            trained = load_trained(folder)
        except WorkbenchError as error:
            self.status.emit(f"Loaded the network and settings of {folder.name}; {error}", 10000)
            return
        self.show_trained(trained)

    def show_trained(self, trained: TrainedModel) -> None:
        """Put a trained network read from a run folder or a bundle on show, if it takes the dataset's images."""
        if (
            self.dataset is None
            or self.dataset.info.name != trained.config.dataset
            or tuple(self.dataset.info.input_shape) != tuple(trained.architecture.input_shape)
        ):
            return
        label = f"{trained.name} ({trained.source})"
        kind = NetworkKind.FROM_RUN if (trained.folder / RUN_FILE).is_file() else NetworkKind.FROM_BUNDLE
        self.show_network(ShownNetwork(kind, trained.architecture, trained.model, label, trained.folder))
        self.show_gallery_guesses(f"{label}: its guesses")
        self.status.emit(f"Loaded {trained.name}: network, settings and {trained.source}", 10000)

    def open_trained(self, path: Path) -> None:
        """Show a trained network from a run folder or a safetensors bundle: network, settings, guesses, weights."""
        check_editable(self.phase)
        if (path / RUN_FILE).is_file():
            self.load_run(path)
            return
        trained = load_trained(path)
        self.set_architecture(trained.architecture)
        if trained.data.name in datasets.DATASETS and (
            self.dataset is None or self.dataset.info.name != trained.data.name
        ):
            self.load_dataset(trained.data.name, then=lambda: self.show_trained(trained))
            return
        self.show_trained(trained)

    def evaluate_current(self) -> None:
        """Score the network on show (trained or not) on the test set, in the background.

        Weights that hold NaN or infinite values fail the evaluation with a message saying the run diverged
        (:func:`~workbench.core.runs.trained.check_finite`) instead of showing a meaningless accuracy."""
        network, dataset = self.network, self.dataset
        if network is None or network.model is None or dataset is None or self.phase.running:
            raise WorkbenchError("Nothing to evaluate: make the network fit the data first.")
        model, label = network.model, network.label or "untrained network"

        def work(state: TaskState) -> tuple[Evaluation, torch.nn.Module, str, str]:
            check_finite(model, label)
            scores = evaluate_model(model, dataset.test_x, dataset.test_y, dataset.info.class_names)
            return scores, model, dataset.info.name, label

        self._evaluate(work, len(dataset.test_y))

    def evaluate_run(self, folder: Path) -> None:
        """Score a run's trained network on its dataset's test set, in the background (a run whose weights hold
        NaN or infinite values fails, saying it diverged: :func:`~workbench.core.runs.trained.load_trained`)."""

        def work(state: TaskState) -> tuple[Evaluation, torch.nn.Module, str, str]:
            trained = load_trained(folder)
            return (
                evaluate_trained(trained),
                trained.model,
                trained.config.dataset,
                f"{trained.name} ({trained.source})",
            )

        self._evaluate(work, None)

    def _evaluate(self, work: Callable[[TaskState], Any], count: int | None) -> None:
        check_transition(self.phase, Phase.EVALUATING)
        images = f"{count:,} test images" if count else "the test set"
        self.status.emit(f"Evaluating on {images}…", 0)
        self.run_task(
            Task(
                "evaluate",
                Phase.EVALUATING,
                work,
                on_success=self._evaluated,
                on_failure=lambda message: self.problem.emit("The evaluation failed", message),
            )
        )

    def _evaluated(self, outcome: tuple[Evaluation, torch.nn.Module, str, str]) -> None:
        evaluation, model, dataset_name, label = outcome
        self.show_evaluation(
            ShownEvaluation(evaluation, f"{label} — test set:", "test", model, dataset_name, bring_to_front=True)
        )
        self.status.emit(f"{label}: test accuracy {evaluation.accuracy:.1%}", 10000)

    def export_source(self) -> Path:
        """The run folder File → Export writes from; a :class:`WorkbenchError` when nothing trained is on show."""
        if self.network is None or not self.network.exportable or self.network.run_folder is None:
            raise WorkbenchError("Nothing to export: train a network, or open a run or a trained model, first.")
        return self.network.run_folder

    def export_conflicts(self, folder: Path, fmt: str, target: Path) -> list[Path]:
        """The existing files (or bundle folder) that exporting ``folder``'s network as ``fmt`` into ``target``
        would replace although the workbench did not write them: ask the user before exporting with ``force``.

        Empty when the export replaces nothing, or only earlier exports. A :class:`WorkbenchError` when the
        export cannot start (another task running, a run that cannot be read or that diverged)."""
        check_transition(self.phase, Phase.EXPORTING)
        return foreign_files(load_trained(folder), fmt, target)

    def export(self, folder: Path, fmt: str, target: Path, force: bool = False) -> None:
        """Export the trained network of ``folder`` as ``fmt`` into ``target`` in the background.

        Files at the target that the workbench did not write (:meth:`export_conflicts`) are replaced only with
        ``force``; without it the export fails and leaves them as they are."""
        check_transition(self.phase, Phase.EXPORTING)
        self.export_format, self.export_folder = fmt, target.parent if target.suffix else target

        def work(state: TaskState) -> ExportResult:
            return export_model(load_trained(folder), fmt, target, progress=state.report, force=force)

        self.status.emit(f"Exporting {folder.name} as {fmt}…", 0)
        self.run_task(
            Task(
                "export",
                Phase.EXPORTING,
                work,
                on_success=self._exported,
                on_failure=lambda message: self.problem.emit("The export failed", message),
                on_progress=lambda message: self.status.emit(f"Exporting: {message}", 0),
            )
        )

    def _exported(self, result: ExportResult) -> None:
        self.last_export = result
        self.status.emit(f"Wrote {result.path}. {result.message}", 15000)
        self.exported.emit(result)

    def prepare_handoff(self) -> Path:
        """Save the network and settings as a hand-off folder (a new folder in the runs folder) for torchrun on a
        cluster; the folder."""
        if not self.report.ok:
            raise WorkbenchError("The network does not fit: " + "\n".join(self.report.errors))
        self.config.check()
        self.check_runs_folder()
        folder = new_run_dir(None, self.architecture, self.config, self.runs_folder)
        write_handoff(folder, self.architecture, self.config)
        return folder


def _metrics_or_none(folder: Path) -> list[EpochMetrics]:
    try:
        return read_metrics(folder)
    except WorkbenchError:
        return []
