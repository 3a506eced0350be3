"""The application's state: dataset, the network and settings being edited, what is on show, and the phase.

A :class:`Session` never touches Qt. Widgets call its methods (a user's edit, a menu action) and subscribe to
its psygnal signals to redraw; background work goes through the :class:`~workbench.session.tasks.Runner`
it was given, whose handlers come back in the session's thread. A request the phase does not allow raises
:class:`~workbench.session.phase.PhaseError`; other refusals raise the core's own
:class:`~workbench.core.errors.WorkbenchError`, each with a sentence for the user.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from psygnal import Signal

from workbench.core.architecture import Architecture, Layer, ValidationReport, build, format_shape, validate
from workbench.core.data import datasets
from workbench.core.errors import RunError, WorkbenchError
from workbench.core.inspect.attribution import black_pixel
from workbench.core.presets import load_preset, with_classes
from workbench.core.runs import folders as run_folders
from workbench.core.runs.predict import background_hint, load_images
from workbench.core.training.augment import FLIP_CHANGES_CLASS, Augmenter, parse_augment
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import fit_to_dataset, predict
from workbench.core.training.threads import use_threads
from workbench.session.alarm_watch import AlarmWatch
from workbench.session.estimates import Estimates
from workbench.session.experiments import ExperimentQueue
from workbench.session.inspector import Inspector, Subject
from workbench.session.looked_at import LookedAt
from workbench.session.phase import Phase, check_editable, check_transition
from workbench.session.runs import RunsMixin
from workbench.session.searching import Searcher
from workbench.session.shown import GallerySet, NetworkKind, ShownEvaluation, ShownNetwork, validation_subset
from workbench.session.tasks import Runner, Task, TaskState

DEFAULT_PRESET = "seed-simplenet"
DEFAULT_DATASET = "fashion-mnist"
FALLBACK_DATASET = "digits"
UNLABELLED = -1
MAX_RECENT_FILES = 8
BACKGROUND_SAMPLE = 256
"""How many training images tell whether the dataset's backgrounds are light or dark."""
RUNS_FOLDER_ADVICE = "Choose another folder for your runs with File → Runs Folder…."
"""What a run that cannot start because of its runs folder tells the user to do (the menu's words)."""


class Session(RunsMixin):
    """Everything the window shows and edits, without the window. See the module's docstring.

    ``runs_folder`` is the folder new runs go into, a new sub-folder each, and that the Runs tab lists (None: the
    default, ``$WORKBENCH_RUNS_DIR`` or the user's data folder); :meth:`set_runs_folder` changes it. ``runs_out``,
    when given (``workbench gui --out``), is the folder of the next run itself, used as it is.
    """

    phase_changed = Signal(object)  # Phase
    dataset_changed = Signal(object)  # LoadedDataset
    architecture_changed = Signal(object)  # Architecture set by the session (a preset, a file, a run)
    config_changed = Signal(object)  # TrainConfig set by the session (a run's settings)
    file_changed = Signal()  # the architecture file (or its saved state) changed: the title
    recent_files_changed = Signal(list)
    network_changed = Signal(object)  # ShownNetwork
    gallery_changed = Signal(object, bool)  # GallerySet, whether its images are new (not only its guesses)
    evaluation_changed = Signal(object)  # ShownEvaluation | None
    results_cleared = Signal()  # the shown results (curves, scores) no longer match the network being edited
    status = Signal(str, int)  # a message for the status bar and how long to show it (ms, 0 = until replaced)
    progress_text = Signal(str, str, bool)  # the training panel's progress line, detail, whether finished
    notice = Signal(str)  # a lasting note above the tabs (e.g. the fallback dataset)
    problem = Signal(str, str)  # title, message: something the user must know went wrong
    exported = Signal(object)  # ExportResult
    runs_folder_changed = Signal(object)  # Path: the folder new runs go into and the Runs tab lists

    def __init__(self, runner: Runner, runs_out: Path | None = None, runs_folder: Path | None = None):
        self.runner = runner
        self.runs_out = runs_out
        self.runs_folder: Path = runs_folder if runs_folder is not None else run_folders.default_runs_dir()
        self.phase = Phase.IDLE
        self.dataset: datasets.LoadedDataset | None = None
        self.architecture: Architecture = load_preset(DEFAULT_PRESET)
        self.report: ValidationReport = validate(self.architecture)
        self.config = TrainConfig()
        self.network: ShownNetwork | None = None
        self.gallery: GallerySet | None = None
        self._images_shown: torch.Tensor | None = None  # the images the gallery view holds now
        self.evaluation: ShownEvaluation | None = None
        self.file_path: Path | None = None
        self.recent_files: list[Path] = []
        self.loading: str | None = None  # the dataset being loaded in the background
        self._then: Callable[[], None] | None = None  # what to do once the dataset has loaded
        self.threads = use_threads()  # every physical core, said in the device's description
        self.estimates = Estimates(runner)
        self.inspector = Inspector(runner)
        self.looked_at = LookedAt(runner)
        self.alarm_watch = AlarmWatch()
        self.closed = False  # shut down: the window is closing, nothing new starts
        self._init_runs()
        self.experiments = ExperimentQueue(self)
        self.searcher = Searcher(self)

    # ---- phase ------------------------------------------------------------------------------

    def enter(self, phase: Phase) -> None:
        """Change the phase (a :class:`PhaseError` if not allowed) and say so."""
        check_transition(self.phase, phase)
        self.phase = phase
        self.phase_changed.emit(phase)

    def run_task(self, task: Task) -> None:
        """Enter the task's phase and hand it to the runner; back to idle when it is done."""
        self.enter(task.phase)
        on_done = task.on_done

        def finished() -> None:
            if self.phase is not Phase.IDLE:
                self.enter(Phase.IDLE)
            on_done()

        task.on_done = finished
        self.runner.start(task)

    def check_editable(self) -> None:
        """A :class:`PhaseError` while a run trains on its snapshot: the network and settings stay as they are."""
        check_editable(self.phase)

    def shutdown(self) -> None:
        """Stop every background task and wait for it (closing the window); no estimate starts after it."""
        self.closed = True
        self.estimates.cancel()
        self.inspector.cancel()
        self.looked_at.cancel()
        self.runner.shutdown()

    # ---- where runs go -------------------------------------------------------------------------

    def set_runs_folder(self, folder: Path, check: bool = True) -> None:
        """Make ``folder`` the one new runs go into and the Runs tab lists, and say so.

        With ``check`` (a folder the user has just chosen), a folder that cannot be written (made if it is
        missing) is refused with a :class:`RunError` and the runs folder stays as it was. A remembered folder is
        set without ``check``: Start says what is wrong with it, if anything, when a run would be written there.
        """
        folder = Path(folder).expanduser().absolute()
        if check:
            try:
                run_folders.check_runs_folder(folder)
            except run_folders.RunFolderError as error:
                raise RunError(
                    error.advise(f"Choose a folder you can write to; new runs still go into {self.runs_folder}.")
                ) from None
        self.runs_folder = folder
        self.runs_folder_changed.emit(folder)
        self.status.emit(f"New runs go into {folder}", 8000)

    def check_runs_folder(self) -> None:
        """A :class:`RunError` saying how to choose another runs folder unless new runs can be written into it."""
        try:
            run_folders.check_runs_folder(self.runs_folder)
        except run_folders.RunFolderError as error:
            raise RunError(error.advise(RUNS_FOLDER_ADVICE)) from None

    # ---- the dataset --------------------------------------------------------------------------

    def load_options(self, name: str) -> dict[str, Any]:
        """The keyword arguments of ``datasets.load`` for ``name`` under the current settings."""
        if not datasets.is_folder(name):
            return {}
        config = self.config
        same = datasets.canonical_name(name) == datasets.canonical_name(config.dataset)
        image_size, channels = (config.image_size, config.channels) if same else (None, None)
        return {"image_size": image_size, "channels": channels, "seed": config.seed}

    def load_dataset(self, name: str, then: Callable[[], None] | None = None) -> None:
        """Switch to dataset ``name``: at once if its files are here, else download it in the background.

        ``then`` is called once it has loaded (not if loading fails).
        """
        if self.phase is Phase.LOADING_DATA:
            return
        check_transition(self.phase, Phase.LOADING_DATA)
        try:
            found = datasets.locate(name) is not None
            if found:
                loaded = self._load_now(name)
        except WorkbenchError as error:
            self._dataset_failed(name, str(error))
            return
        if found:
            self._dataset_loaded(loaded)
            if then is not None:
                then()
            return
        title = datasets.get_info(name).title
        self.progress_text.emit(f"Downloading {title}…", " ", False)
        self.status.emit(f"Looking for {title} online…", 0)
        options = self.load_options(name)
        self.loading, self._then = name, then
        self.run_task(
            Task(
                "load data",
                Phase.LOADING_DATA,
                lambda state: datasets.load(name, progress=False, **options),
                on_success=self._dataset_loaded_later,
                on_failure=lambda message: self._dataset_failed(name, message),
                on_done=self._loading_done,
            )
        )

    def _load_now(self, name: str) -> datasets.LoadedDataset:
        self.status.emit(f"Loading {datasets.get_info(name).title}…", 0)
        return datasets.load(name, download=False, **self.load_options(name))

    def _loading_done(self) -> None:
        self.loading = None

    def _dataset_loaded_later(self, dataset: datasets.LoadedDataset) -> None:
        then, self._then = self._then, None
        self.loading = None
        if self.phase is Phase.LOADING_DATA:
            self.enter(Phase.IDLE)
        self._dataset_loaded(dataset)
        if then is not None:
            then()

    def _dataset_failed(self, name: str, message: str) -> None:
        self._then = None
        try:
            title = datasets.get_info(name).title
        except WorkbenchError:  # e.g. an image folder that has been moved
            title = name
        if self.dataset is None:
            if self.phase is Phase.LOADING_DATA:
                self.enter(Phase.IDLE)
            fallback = datasets.get_info(FALLBACK_DATASET)
            self._dataset_loaded(self._load_now(FALLBACK_DATASET))
            self.notice.emit(
                f"{title} is not available, so the workbench uses the {fallback.title} dataset "
                f"bundled with scikit-learn. {message}"
            )
        else:
            self.config_changed.emit(self.config)  # the form goes back to the dataset still loaded
            self.problem.emit(f"{title} is not available", message)
        self.progress_text.emit("Not started", " ", False)

    def _dataset_loaded(self, dataset: datasets.LoadedDataset) -> None:
        self.dataset = dataset
        self.gallery = None  # the old dataset's images must not meet the network adapted to the new one
        info = dataset.info
        if datasets.canonical_name(self.config.dataset) != info.name:
            self.config = TrainConfig.from_dict({**self.config.to_dict(), "dataset": info.name})
        train, val = self.config.sizes_for(len(dataset.train_y))
        self.config = TrainConfig.from_dict({**self.config.to_dict(), "train_size": train, "val_size": val})
        architecture = self.architecture  # before the views adapt their copy to the new input
        self.dataset_changed.emit(dataset)
        if architecture.num_classes != len(info.class_names):
            # The output layer follows the classes, as the input follows the image size.
            architecture = with_classes(architecture, len(info.class_names))
        self._show_architecture(architecture)
        self.status.emit(
            f"{info.title}: {len(dataset.train_y):,} training and {len(dataset.test_y):,} test images", 8000
        )
        self.progress_text.emit("Not started", " ", False)
        self.redraw_validation_subset(keep_network=False)

    # ---- editing the network and the settings -------------------------------------------------

    def _show_architecture(self, architecture: Architecture) -> None:
        """Make ``architecture`` (fitted to the dataset's images) the one edited, and tell the builder."""
        if self.dataset is not None:
            architecture = architecture.copy()
            architecture.input_shape = self.dataset.info.input_shape
        self.architecture = architecture
        self.report = validate(architecture, loss=self.config.loss)
        self.architecture_changed.emit(architecture)

    def set_architecture(self, architecture: Architecture, file_path: Path | None = None) -> None:
        """Show a new network to edit (a preset, a file, a run's); ``file_path`` is the file it came from."""
        self.check_editable()
        self._show_architecture(architecture)
        self.file_path = file_path
        self.file_changed.emit()
        self._clear_results()
        self.refresh_preview()

    def edit_architecture(self, architecture: Architecture) -> None:
        """The builder changed the network (a drop, a parameter, undo): the previous results no longer apply."""
        if architecture == self.architecture and self.network is not None:
            return
        self.architecture = architecture
        self.report = validate(architecture, loss=self.config.loss)
        self.file_changed.emit()
        self._clear_results()
        self.refresh_preview()

    def request_estimate(self) -> None:
        """Measure how long a run of the network and settings shown would take (in the background; the line comes
        through ``estimates.changed``). Nothing is measured while a run trains or a dataset loads, nor for a
        network that does not fit or settings out of range (Start says why)."""
        dataset = self.dataset
        if self.closed:
            return
        if (
            self.phase is not Phase.IDLE
            or dataset is None
            or datasets.canonical_name(self.config.dataset) != dataset.info.name
            or not self.report.ok
        ):
            self.estimates.cancel()
            return
        try:
            self.config.check()
        except WorkbenchError:
            self.estimates.cancel()
            return
        self.estimates.request(self.architecture, self.config, dataset.info)

    def _clear_results(self) -> None:
        self.evaluation = None
        self.results_cleared.emit()

    def edit_config(self, config: TrainConfig) -> None:
        """The settings form changed; a different loss changes the network's warnings."""
        loss_changed = config.loss != self.config.loss
        self.config = config
        if loss_changed:
            self.report = validate(self.architecture, loss=config.loss)

    def set_config(self, config: TrainConfig) -> None:
        """Put ``config`` in the form (a run's settings); its dataset is loaded if it is another."""
        self.config = config
        self.report = validate(self.architecture, loss=config.loss)
        self.config_changed.emit(config)

    def load_preset(self, name: str) -> None:
        """Presets menu: the preset's network; the training settings stay."""
        self.set_architecture(load_preset(name))

    def new_network(self) -> None:
        """File → New: Flatten and one Linear layer, for the current dataset."""
        classes, shape = self.architecture.num_classes, self.architecture.input_shape
        layers = [Layer("Flatten"), Layer("Linear", {"out_features": classes})]
        self.set_architecture(Architecture("untitled", shape, classes, layers))

    def open_architecture(self, path: Path) -> None:
        """Open an architecture file; a :class:`WorkbenchError` saying what is wrong with it."""
        self.check_editable()
        if not path.is_file() and path in self.recent_files:
            self.recent_files = [other for other in self.recent_files if other != path]
            self.recent_files_changed.emit(self.recent_files)
            raise WorkbenchError(f"{path} is not there any more.")
        self.set_architecture(Architecture.load(path), file_path=path)
        self.add_recent_file(path)

    def save_architecture(self, path: Path) -> None:
        """Save the network being edited as ``path``; a :class:`WorkbenchError` if the file cannot be written."""
        try:
            self.architecture.save(path)
        except OSError as error:
            raise WorkbenchError(f"{path}: {error.strerror or error}") from error
        self.file_path = path
        self.file_changed.emit()
        self.add_recent_file(path)
        self.status.emit(f"Saved {path}", 5000)

    def add_recent_file(self, path: Path) -> None:
        """Put ``path`` first in File → Open recent."""
        self.recent_files = remember_file(self.recent_files, path)
        self.recent_files_changed.emit(self.recent_files)

    def clear_recent_files(self) -> None:
        """Empty File → Open recent."""
        self.recent_files = []
        self.recent_files_changed.emit(self.recent_files)

    # ---- what is on show -----------------------------------------------------------------------

    def show_network(self, network: ShownNetwork | None) -> None:
        """Replace the network on show and tell the views."""
        self.network = network
        self.network_changed.emit(network)
        self._inspect_with(network)

    def _inspect_with(self, network: ShownNetwork | None) -> None:
        """Hand the network on show, fitted to the dataset's images, to the inspector."""
        if network is None or network.model is None or self.dataset is None:
            self.inspector.set_network(None, self.architecture, (), "")
            return
        info = self.dataset.info
        try:
            fitted = fit_to_dataset(network.architecture, info)
        except WorkbenchError:
            self.inspector.set_network(None, network.architecture, (), "")
            return
        self.inspector.set_network(network.model, fitted, tuple(info.class_names), network.label)

    def inspect(self, image: torch.Tensor, label: int, source: str) -> None:
        """Look inside the network on show at ``image`` (normalised as the dataset's images; ``label`` its class
        or :data:`UNLABELLED`): the Inspect tab's subject from now on. A :class:`WorkbenchError` when there is no
        dataset to say how its pixels were normalised, or the network on show cannot read it."""
        if self.dataset is None:
            raise WorkbenchError("Load a dataset first: the inspection draws its images with its normalisation.")
        info = self.dataset.info
        subject = Subject(image.detach().cpu().float(), int(label), source, tuple(info.mean), tuple(info.std))
        if self.network is None or self.network.model is None:
            raise WorkbenchError(
                "There is no network with weights to inspect yet: make one that fits the data, or wait for the "
                "first epoch of the run."
            )
        if not self.inspector.fits(subject):
            raise WorkbenchError(
                f"The network on show reads {format_shape(self.inspector_shape())} images, and this one is "
                f"{format_shape(tuple(image.shape))}."
            )
        self.inspector.inspect(subject)

    def inspector_shape(self) -> tuple[int, ...]:
        """The input shape of the network the inspector uses (the dataset's images)."""
        return tuple(self.dataset.info.input_shape) if self.dataset is not None else ()

    def refresh_preview(self) -> None:
        """Before a run: the untrained network the run would start from (same seed), and its guesses."""
        if self.phase.running or self.dataset is None:
            return
        model = None
        if self.report.ok:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                fitted = fit_to_dataset(self.architecture, self.dataset.info)
                model = build(fitted).eval()
        self.show_network(ShownNetwork(NetworkKind.UNTRAINED, self.architecture, model, "untrained network"))
        header = (
            "Untrained network's guesses" if model is not None else "Validation images (the network does not fit yet)"
        )
        self.show_gallery_guesses(header)

    def redraw_validation_subset(self, keep_network: bool = True) -> None:
        """The validation images a run with the current settings would see, for the gallery.

        A trained network on show stays (with ``keep_network``), guessing the new images; an untrained one is
        made again, since its weights follow the seed.
        """
        if self.dataset is None or self.phase.running:
            return
        images, labels = validation_subset(self.dataset, self.config)
        self.gallery = GallerySet(images, labels, self.dataset.info, None)
        network = self.network
        if keep_network and network is not None and network.kind is not NetworkKind.UNTRAINED:
            self.show_gallery_guesses(f"{network.label}: its guesses")
        else:
            self.refresh_preview()

    def show_gallery_guesses(self, header: str, predicted: bool = True) -> None:
        """Predict the gallery's images with the network on show (unless not ``predicted``), with ``header``."""
        gallery = self.gallery
        if gallery is None:
            return
        model = self.network.model if self.network is not None else None
        probabilities = None
        if predicted and model is not None and len(gallery.labels):
            probabilities = predict(model, gallery.images).numpy()
        self.emit_gallery(GallerySet(gallery.images, gallery.labels, gallery.info, probabilities, header))

    def emit_gallery(self, gallery: GallerySet) -> None:
        """Put ``gallery`` on show; the views redraw its images only if they are not those shown already."""
        new_images = gallery.images is not self._images_shown
        self.gallery, self._images_shown = gallery, gallery.images
        self.gallery_changed.emit(gallery, new_images)

    def gallery_images(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The gallery's images and labels, or None."""
        return None if self.gallery is None else (self.gallery.images, self.gallery.labels)

    def inspect_gallery_item(self, index: int) -> None:
        """Inspect the gallery's image ``index`` (into its whole set, not the page)."""
        if self.gallery is None or not 0 <= index < len(self.gallery.labels):
            raise WorkbenchError("That image is no longer in the gallery.")
        header = self.gallery.header.split(" — ")[0] or "Gallery"
        self.inspect(self.gallery.images[index], int(self.gallery.labels[index]), f"{header}: image {index + 1:,}")

    def look_at_gallery(self, key: int, indices: list[int]) -> None:
        """Measure what the network on show looked at for the gallery's items ``indices`` (the images of the
        gallery's set ``key``), for its guess of each (the true class while it has none), by the method chosen on
        the Inspect tab; :attr:`looked_at` tells when the maps are ready."""
        gallery, network = self.gallery, self.inspector.network
        if network is None or self.dataset is None:
            raise WorkbenchError("There is no network with weights to ask what it looked at yet.")
        if gallery is None or not indices or max(indices) >= len(gallery.labels) or min(indices) < 0:
            raise WorkbenchError("Those images are no longer in the gallery.")
        chosen = torch.as_tensor(indices, dtype=torch.long)
        if gallery.probabilities is not None:
            targets = gallery.probabilities[chosen.numpy()].argmax(axis=1).tolist()
        else:
            targets = gallery.labels[chosen].clamp(min=0).tolist()
        info = gallery.info
        model, architecture = network
        self.looked_at.request(
            key,
            indices,
            model,
            architecture,
            gallery.images[chosen],
            targets,
            self.inspector.method,
            black_pixel(info.mean, info.std),
        )

    def inspect_training_image(self, index: int) -> None:
        """Inspect the dataset's training image ``index`` (the data browser's numbering from 0)."""
        if self.dataset is None or not 0 <= index < len(self.dataset.train_y):
            raise WorkbenchError("That image is not in the dataset shown.")
        title = self.dataset.info.title
        self.inspect(
            self.dataset.train_x[index], int(self.dataset.train_y[index]), f"{title}: training image {index + 1:,}"
        )

    def augmented_training_images(self, indices: list[int], draw: int = 0) -> torch.Tensor | None:
        """The dataset's training images at ``indices`` as the settings' augmentation changes them (normalised,
        like the network's input); ``draw`` picks another random draw. None when the settings augment nothing."""
        names = parse_augment(self.config.augment)
        if self.dataset is None or not names:
            return None
        info = self.dataset.info
        if "flip" in names and info.name in FLIP_CHANGES_CLASS:
            names = tuple(name for name in names if name != "flip")
        augmenter = Augmenter(names, self.config.seed, black_pixel(info.mean, info.std))
        chosen = torch.as_tensor(indices, dtype=torch.long)
        return augmenter(self.dataset.train_x[chosen].float(), draw, 0)

    def show_images(self, paths: list[Path], invert: bool = False) -> None:
        """Images dropped onto the gallery or chosen with File → Predict images…: what the network on show makes
        of them (``invert``: dark on light made light on dark first)."""
        if self.phase.running:
            raise WorkbenchError("A run is training: drop your images again when the run has ended.")
        if self.network is None or self.network.model is None or self.dataset is None:
            raise WorkbenchError("There is no network to ask: make the network fit the data first.")
        info = self.dataset.info
        batch = load_images(paths, tuple(info.input_shape), info.mean, info.std, invert)
        labels = torch.full((len(paths),), UNLABELLED, dtype=torch.long)
        self.gallery = GallerySet(batch, labels, info, None)
        count = f"{len(paths)} image{'s' if len(paths) != 1 else ''}"
        self.show_gallery_guesses(f"Your {count}: {self.network.label or 'the network'}'s guesses")
        hint = self._background_hint(batch, invert)
        if hint:
            self.status.emit(f"{hint} (File → Predict images… has the option.)", 30000)

    def background_hint(self, paths: list[Path], invert: bool) -> str:
        """A sentence when the images at ``paths`` (``invert``-ed or not) have backgrounds unlike the dataset's
        training images, saying how to set Invert; "" when they agree or there is no dataset. An image that
        cannot be read raises :class:`~workbench.core.runs.predict.ImageError`."""
        if self.dataset is None or not paths:
            return ""
        info = self.dataset.info
        return self._background_hint(load_images(paths, tuple(info.input_shape), info.mean, info.std, invert), invert)

    def _background_hint(self, images: torch.Tensor, inverted: bool) -> str:
        if self.dataset is None:
            return ""
        info = self.dataset.info
        sample = self.dataset.train_x[:BACKGROUND_SAMPLE]
        return background_hint(images, sample, info.mean, info.std, info.title, inverted)

    def show_confusion_cell(self, true_class: int, predicted_class: int) -> bool:
        """Show in the gallery the test images of one confusion-matrix cell; False if the matrix has none here."""
        shown = self.evaluation
        if shown is None or self.dataset is None or self.phase.running or shown.split != "test":
            return False
        evaluation = shown.evaluation()
        if evaluation is None or shown.model is None or shown.dataset_name != self.dataset.info.name:
            return False
        indices = torch.as_tensor(evaluation.items(true_class, predicted_class), dtype=torch.long)
        names = self.dataset.info.class_names
        network = self.network
        if network is None or network.model is not shown.model:
            label = network.label if network is not None else "evaluated network"
            arch = network.architecture if network is not None else self.architecture
            self.network = ShownNetwork(
                NetworkKind.TRAINED, arch, shown.model, label, network.run_folder if network else None
            )
            self._inspect_with(self.network)
        self.gallery = GallerySet(self.dataset.test_x[indices], self.dataset.test_y[indices], self.dataset.info, None)
        self.show_gallery_guesses(f"Test images, true {names[true_class]}, predicted {names[predicted_class]}")
        return True

    def show_evaluation(self, shown: ShownEvaluation | None) -> None:
        """Put an evaluation on show (None clears it)."""
        self.evaluation = shown
        self.evaluation_changed.emit(shown)


def remember_file(paths: list[Path], path: Path) -> list[Path]:
    """``paths`` with ``path`` (made absolute) moved or added to the front, at most :data:`MAX_RECENT_FILES` long."""
    path = Path(path).absolute()
    return [path, *(other for other in paths if other != path)][:MAX_RECENT_FILES]


__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_PRESET",
    "FALLBACK_DATASET",
    "RUNS_FOLDER_ADVICE",
    "Session",
    "TaskState",
    "remember_file",
]
