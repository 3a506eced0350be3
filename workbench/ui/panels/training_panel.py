"""The right dock: training settings, Start / Pause / Stop, and the progress of the run."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.data import datasets
from workbench.core.data.image_folders import DEFAULT_IMAGE_SIZE
from workbench.core.errors import WorkbenchError
from workbench.core.training.augment import AUGMENTATIONS, FLIP_CHANGES_CLASS, NONE, parse_augment
from workbench.core.training.config import IMAGE_SIZES, LOSS_DESCRIPTIONS, TrainConfig
from workbench.core.training.devices import available_devices, choose_precision, resolve_device
from workbench.core.training.threads import choose_threads
from workbench.ui.panels.network_list import tone_style

CHOOSE_FOLDER = "choose-folder"
"""The data of the dataset combo's last entry, "Image folder…", which asks for a folder of the user's images."""

_OPTIMIZER_TITLES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}
_LOSS_TITLES = {"cross-entropy": "Cross-entropy", "mse": "MSE on one-hot (the class's first loss)"}
AUGMENT_HELP = {
    "crop": "A random crop of each training image after padding it with black: the object moves a few pixels.",
    "flip": "A horizontal mirror image half the time.",
    "rotate": "A small rotation (up to 10°) with a little scaling and shift.",
    "erase": "Half the images lose a random rectangle (2–20% of the image): the network cannot rely on one part.",
}
"""What each augmentation does to the training images (the validation and test images are left as they are)."""
_SCHEDULE_TITLES = {"none": "Constant", "step": "Step decay", "cosine": "Cosine", "one-cycle": "One-cycle"}


def _combo(items: dict[str, str], tooltip: str) -> QComboBox:
    combo = QComboBox()
    for key, title in items.items():
        combo.addItem(title, key)
    combo.setToolTip(tooltip)
    return combo


def _spin(low: int, high: int, value: int, tooltip: str, special: str | None = None) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setGroupSeparatorShown(True)
    spin.setToolTip(tooltip)
    if special:
        spin.setSpecialValueText(special)
    return spin


def _number(low: float, high: float, value: float, decimals: int, tooltip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(decimals)
    spin.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
    spin.setValue(value)
    spin.setToolTip(tooltip)
    return spin


def _select(combo: QComboBox, key: str) -> None:
    index = combo.findData(key)
    if index >= 0:
        combo.setCurrentIndex(index)


def ask_folder(parent: QWidget) -> str:
    """The folder the user picks in a file dialog; "" if cancelled."""
    return QFileDialog.getExistingDirectory(parent, "Choose a folder holding one sub-folder of images per class")


def ask_image_options(
    parent: QWidget, info: datasets.DatasetInfo, image_size: int | None, channels: int | None
) -> tuple[int, int | None] | None:
    """The image size and channels (None: automatic) the user chooses for the folder ``info`` describes; None if
    cancelled."""
    dialog = QDialog(parent)
    dialog.setWindowTitle("Image folder")
    size = _spin(
        *IMAGE_SIZES,
        image_size or DEFAULT_IMAGE_SIZE,
        "Every image is resized, whole, to a square of this many pixels a side.",
    )
    guessed = "colour" if info.input_shape[0] == 3 else "grayscale"
    kind = _combo(
        {"auto": f"Automatic ({guessed})", "1": "Grayscale (1 channel)", "3": "Colour (3 channels)"},
        "Automatic: colour if any image is stored in colour.",
    )
    _select(kind, str(channels) if channels else "auto")
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    form = QFormLayout(dialog)
    form.addRow(QLabel(f"{info.title}: {', '.join(info.class_names)}"))
    form.addRow("Image size", size)
    form.addRow("Channels", kind)
    form.addRow(buttons)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return size.value(), None if kind.currentData() == "auto" else int(kind.currentData())


def warn(parent: QWidget, message: str) -> None:
    """Tell the user why the folder they chose cannot be used."""
    QMessageBox.warning(parent, "This folder cannot be used", message)


class _DatasetCombo(QComboBox):
    """The dataset combo. It remembers the last dataset selected, even by a caller that blocked its signals, so
    that cancelling "Image folder…" goes back to it."""

    settled = 0

    def setCurrentIndex(self, index: int) -> None:
        super().setCurrentIndex(index)
        if self.itemData(index) != CHOOSE_FOLDER:
            self.settled = index


PRECISION_HELP = (
    "Mixed precision computes the layers in bfloat16 where the device does so natively and keeps the weights, "
    "losses and checkpoints in float32: about twice as fast on recent GPUs and on CPUs with AVX-512 BF16 or AMX, "
    "to within a few tenths of a point of accuracy."
)


def format_duration(seconds: float) -> str:
    """``75`` -> ``1:15``; ``3725`` -> ``1:02:05``; unknown -> ``…``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "…"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class TrainingPanel(QWidget):
    """Settings form (a :class:`TrainConfig`), run controls and a progress bar.

    The panel only reports what the user asks for (``startRequested``, ``pauseToggled``,
    ``stopRequested``, ``datasetChanged``); the main window decides and calls :meth:`set_running`.

    ``datasetChanged(name)`` says the dataset to show changed: another one was chosen, or, for an image
    folder, its image size, channels or the seed (which draws a folder's test split); load it with
    ``datasets.load(name, **panel.load_options(name))``. The last entry of the dataset combo, "Image
    folder…", asks for a folder (:attr:`choose_folder`), checks its layout (telling what is wrong with
    :attr:`report_problem`) and asks for the image size and channels (:attr:`choose_image_options`); the
    three are attributes so that tests can answer in place of the dialogs.
    """

    startRequested = Signal()
    pauseToggled = Signal(bool)
    stopRequested = Signal()
    datasetChanged = Signal(str)
    configEdited = Signal()  # any setting changed by the user (not by set_config)
    findLearningRateRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._can_start = True
        self.choose_folder = ask_folder
        self.choose_image_options = ask_image_options
        self.report_problem = warn
        self._folder_options: dict[str, tuple[int | None, int | None]] = {}
        self._quiet = False
        self._make_data_fields()
        self._make_optimizer_fields()
        self._make_run_fields()
        self._make_controls()
        self._lay_out()
        self._connect()
        self.set_running(False)

    def _make_data_fields(self) -> None:
        self.dataset = _DatasetCombo()
        for name in datasets.dataset_names():
            self.dataset.addItem(datasets.get_info(name).title, name)
        self.dataset.addItem("Image folder…", CHOOSE_FOLDER)
        self.dataset.setToolTip('The images to learn from; "Image folder…" for your own, one sub-folder per class.')
        self.train_size = _spin(
            1,
            60_000,
            10_000,
            "Training images drawn at random from the training split (the class uses 10,000 to stay fast).",
        )
        self.val_size = _spin(
            0,
            60_000,
            1_000,
            "Validation images, drawn apart from the training ones: the accuracy you watch while training.",
        )

    def _make_optimizer_fields(self) -> None:
        defaults = TrainConfig()
        self.optimizer = _combo(
            _OPTIMIZER_TITLES,
            "How the weights follow the gradients. Adam usually learns "
            "fastest; SGD with momentum is the class's recipe.",
        )
        self.lr = _number(
            1e-6,
            10.0,
            defaults.lr,
            6,
            "Learning rate: the size of each step. Too high and the loss explodes; too low and nothing happens.",
        )
        self.find_lr = QPushButton("Find…")
        self.find_lr.setObjectName("findLearningRate")
        self.find_lr.setToolTip(
            "The learning-rate range test: about 100 batches with a rate growing from 1e-7 to 10, the loss drawn "
            "against it, and the rate where it falls fastest suggested."
        )
        self.lr_row = QWidget()
        lr_layout = QHBoxLayout(self.lr_row)
        lr_layout.setContentsMargins(0, 0, 0, 0)
        lr_layout.addWidget(self.lr, 1)
        lr_layout.addWidget(self.find_lr)
        self.momentum = _number(
            0.0, 0.999, defaults.momentum, 3, "Momentum (SGD, RMSprop): how much of the previous step carries on."
        )
        self.nesterov = QCheckBox("Nesterov momentum")
        self.nesterov.setToolTip("Look ahead before stepping (SGD with momentum only).")
        self.weight_decay = _number(
            0.0, 1.0, defaults.weight_decay, 6, "Weight decay (L2): pulls weights towards zero against overfitting."
        )

    def _make_run_fields(self) -> None:
        defaults = TrainConfig()
        self.batch_size = _spin(1, 65_536, defaults.batch_size, "Images per optimisation step.")
        self.epochs = _spin(1, 10_000, defaults.epochs, "Passes over the training images.")
        self.loss = _combo(_LOSS_TITLES, "What the network is trained to minimise.")
        for index, key in enumerate(_LOSS_TITLES):
            self.loss.setItemData(index, LOSS_DESCRIPTIONS[key].capitalize() + ".", Qt.ItemDataRole.ToolTipRole)
        self.schedule = _combo(_SCHEDULE_TITLES, "How the learning rate changes during the run.")
        self.early_stopping = _spin(
            0, 1_000, 0, "Stop when the validation loss has not improved for this many epochs.", special="off"
        )
        self.seed = _spin(
            0,
            2_147_483_647,
            defaults.seed,
            "The same seed draws the same images and starting weights: a CPU run repeats exactly.",
        )
        self.device = QComboBox()
        self.device.setToolTip("Where to train: the CPU, or a GPU of this machine.")
        for device_id, description in available_devices():
            if device_id == "cpu":
                description = f"CPU — {choose_threads().words()}"
            else:
                description = f"{device_id} — {description}"
            self.device.addItem(description, device_id)
        self.device.insertItem(0, "Automatic (first GPU, else CPU)", "auto")
        self.device.setCurrentIndex(0)
        self.augment = {name: QCheckBox(name) for name in AUGMENTATIONS}
        for name, box in self.augment.items():
            box.setObjectName(f"augment-{name}")
            box.setToolTip(AUGMENT_HELP[name])
        self.augment_row = QWidget()
        row = QHBoxLayout(self.augment_row)
        row.setContentsMargins(0, 0, 0, 0)
        for box in self.augment.values():
            row.addWidget(box)
        row.addStretch(1)
        self.mixed_precision = _combo(
            {"auto": "Automatic", "on": "On (bfloat16)", "off": "Off (float32)"},
            PRECISION_HELP,
        )
        self._describe_precision()
        self.compile = QCheckBox("Compile the network (torch.compile)")
        self.compile.setToolTip(
            "Faster GPU training after a slow first batch; if compiling fails the run says so and goes on without it."
        )

    def _make_form(self) -> QFormLayout:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for label, field in (
            ("Dataset", self.dataset),
            ("Training images", self.train_size),
            ("Validation images", self.val_size),
            ("Optimizer", self.optimizer),
            ("Learning rate", self.lr_row),
            ("Momentum", self.momentum),
            ("", self.nesterov),
            ("Weight decay", self.weight_decay),
            ("Batch size", self.batch_size),
            ("Epochs", self.epochs),
            ("Loss", self.loss),
            ("LR schedule", self.schedule),
            ("Early stopping", self.early_stopping),
            ("Augmentation", self.augment_row),
            ("Seed", self.seed),
            ("Device", self.device),
            ("Mixed precision", self.mixed_precision),
            ("", self.compile),
        ):
            form.addRow(label, field)
        return form

    def _make_controls(self) -> None:
        self.settings_box = QGroupBox("Training settings")
        self.settings_box.setLayout(self._make_form())
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Train the network (Ctrl+R).")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End the run after the current batch; it is still saved.")
        self.start_hint = QLabel()
        self.start_hint.setWordWrap(True)
        self.start_hint.setStyleSheet(tone_style("error"))
        self.start_hint.hide()
        self.estimate_line = QLabel()
        self.estimate_line.setWordWrap(True)
        self.estimate_line.setToolTip(
            "Measured on this machine from a few batches of the network with these settings: training, the "
            "validation after each epoch and the test at the end."
        )
        self.estimate_line.hide()

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        self.progress.setTextVisible(True)
        self.progress_detail = QLabel(" ")
        self.progress_detail.setAlignment(Qt.AlignmentFlag.AlignCenter)

    def _lay_out(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.settings_box)
        layout.addLayout(buttons)
        layout.addWidget(self.start_hint)
        layout.addWidget(self.estimate_line)
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_detail)
        layout.addStretch(1)

    def _connect(self) -> None:
        self.start_button.clicked.connect(self.startRequested)
        self.pause_button.toggled.connect(self._pause_toggled)
        self.stop_button.clicked.connect(self.stopRequested)
        self.find_lr.clicked.connect(self.findLearningRateRequested)
        self.dataset.currentIndexChanged.connect(self._dataset_selected)
        self.seed.valueChanged.connect(self._seed_changed)
        self.device.currentIndexChanged.connect(self._describe_precision)
        self.mixed_precision.currentIndexChanged.connect(self._describe_precision)
        self.optimizer.currentIndexChanged.connect(self._update_optimizer_fields)
        self.momentum.valueChanged.connect(self._update_optimizer_fields)
        self._update_optimizer_fields()
        for spin in (
            self.train_size,
            self.val_size,
            self.lr,
            self.momentum,
            self.weight_decay,
            self.batch_size,
            self.epochs,
            self.early_stopping,
            self.seed,
        ):
            spin.valueChanged.connect(self._edited)
        for combo in (self.dataset, self.optimizer, self.loss, self.schedule, self.device, self.mixed_precision):
            combo.currentIndexChanged.connect(self._edited)
        for box in (self.nesterov, self.compile, *self.augment.values()):
            box.toggled.connect(self._edited)
        self.dataset.currentIndexChanged.connect(self._update_flip)
        self._update_flip()

    def _edited(self, *_: object) -> None:
        if not self._quiet:
            self.configEdited.emit()

    def config(self) -> TrainConfig:
        """The settings as a :class:`TrainConfig` (not yet checked)."""
        optimizer = self.optimizer.currentData()
        image_size, channels = self._folder_options.get(self.dataset.currentData(), (None, None))
        return TrainConfig(
            dataset=self.dataset.currentData(),
            image_size=image_size,
            channels=channels,
            train_size=self.train_size.value(),
            val_size=self.val_size.value(),
            epochs=self.epochs.value(),
            batch_size=self.batch_size.value(),
            optimizer=optimizer,
            lr=self.lr.value(),
            momentum=self.momentum.value(),
            nesterov=self.nesterov.isChecked() and self.nesterov.isEnabled(),
            weight_decay=self.weight_decay.value(),
            loss=self.loss.currentData(),
            schedule=self.schedule.currentData(),
            early_stopping=self.early_stopping.value(),
            seed=self.seed.value(),
            device=self.device.currentData(),
            mixed_precision=self.mixed_precision.currentData(),
            compile=self.compile.isChecked(),
            augment=self.augment_text(),
        )

    def set_learning_rate(self, rate: float) -> None:
        """Put ``rate`` into the learning-rate field, as if typed (the settings are edited)."""
        self.lr.setValue(rate)

    def set_augment(self, text: str) -> None:
        """Tick the augmentations of ``text`` (``crop,flip``; ``none``), as a user would; a
        :class:`~workbench.core.errors.ConfigError` for an unknown one."""
        chosen = parse_augment(text)
        for name, box in self.augment.items():
            box.setChecked(name in chosen)

    def augment_text(self) -> str:
        """The augmentations ticked (and allowed for the dataset), as ``--augment`` takes them."""
        names = [name for name, box in self.augment.items() if box.isChecked() and box.isEnabled()]
        return ",".join(names) or NONE

    def _update_flip(self, *_: object) -> None:
        """A mirror image changes the class of digits and characters: no flip for those datasets."""
        flip = self.augment["flip"]
        refused = self.dataset.currentData() in FLIP_CHANGES_CLASS
        flip.setEnabled(not refused)
        flip.setToolTip(
            "Not for this dataset: a mirrored digit or character is another one (or none)."
            if refused
            else AUGMENT_HELP["flip"]
        )

    def set_config(self, config: TrainConfig) -> None:
        """Show ``config`` in the form (sizes left unset keep the form's values); an image folder gets its entry.

        ``configEdited`` is emitted once at the end, then ``datasetChanged`` if the dataset to show changed.
        """
        before = self._dataset_state()
        self._quiet = True
        try:
            self._show_config(config)
        finally:
            self._quiet = False
        self.configEdited.emit()
        if self._dataset_state() != before:
            self.datasetChanged.emit(self.dataset.currentData())

    def _show_config(self, config: TrainConfig) -> None:
        if datasets.is_folder(config.dataset):
            self.add_folder(config.dataset, config.image_size, config.channels)
        _select(self.dataset, config.dataset)
        if config.train_size is not None:
            self.train_size.setValue(config.train_size)
        if config.val_size is not None:
            self.val_size.setValue(config.val_size)
        _select(self.optimizer, config.optimizer)
        _select(self.loss, config.loss)
        _select(self.schedule, config.schedule)
        _select(self.device, config.device)
        _select(self.mixed_precision, config.mixed_precision)
        self.compile.setChecked(config.compile)
        chosen = parse_augment(config.augment)
        for name, box in self.augment.items():
            box.setChecked(name in chosen)
        self.lr.setValue(config.lr)
        self.momentum.setValue(config.momentum)
        self.nesterov.setChecked(config.nesterov)
        self.weight_decay.setValue(config.weight_decay)
        self.batch_size.setValue(config.batch_size)
        self.epochs.setValue(config.epochs)
        self.early_stopping.setValue(config.early_stopping)
        self.seed.setValue(config.seed)

    def add_folder(self, name: str, image_size: int | None = None, channels: int | None = None) -> int:
        """Give the image folder ``name`` ("folder:PATH") an entry "Folder: <its name>" above "Image folder…", or
        update its image size and channels if it has one; returns the entry's index. Selects nothing."""
        name = datasets.canonical_name(name)
        self._folder_options[name] = (image_size, channels)
        index = self.dataset.findData(name)
        if index < 0:
            path = Path(name[len(datasets.FOLDER_PREFIX) :])
            index = self.dataset.count() - 1
            self.dataset.insertItem(index, f"Folder: {path.name}", name)
            self.dataset.setItemData(index, str(path), Qt.ItemDataRole.ToolTipRole)
        return index

    def load_options(self, name: str) -> dict:
        """The keyword arguments of ``datasets.load`` for ``name`` as this form would train on it: an image
        folder's image size, channels and seed; nothing for a registered dataset."""
        if not datasets.is_folder(name):
            return {}
        image_size, channels = self._folder_options.get(datasets.canonical_name(name), (None, None))
        return {"image_size": image_size, "channels": channels, "seed": self.seed.value()}

    def _dataset_state(self) -> tuple:
        name = self.dataset.currentData()
        return name, tuple(sorted(self.load_options(name).items()))

    def _dataset_selected(self, index: int) -> None:
        if self._quiet:
            return
        if self.dataset.itemData(index) == CHOOSE_FOLDER:
            self._choose_folder()
            return
        self.dataset.settled = index
        self.datasetChanged.emit(self.dataset.itemData(index))

    def _seed_changed(self) -> None:
        if not self._quiet and datasets.is_folder(self.dataset.currentData()):
            self.datasetChanged.emit(self.dataset.currentData())

    def _choose_folder(self) -> None:
        """Ask for a folder and its image options; select it, or go back to the dataset shown before."""
        chosen = self._ask_for_folder()
        self.dataset.blockSignals(True)
        self.dataset.setCurrentIndex(self.dataset.settled if chosen is None else self.add_folder(*chosen))
        self.dataset.blockSignals(False)
        if chosen is not None:
            self.datasetChanged.emit(chosen[0])

    def _ask_for_folder(self) -> tuple[str, int, int | None] | None:
        path = self.choose_folder(self)
        if not path:
            return None
        name = datasets.folder_name(path)
        try:
            info = datasets.get_info(name)
        except WorkbenchError as error:
            self.report_problem(self, str(error))
            return None
        options = self.choose_image_options(self, info, *self._folder_options.get(name, (None, None)))
        return None if options is None else (name, *options)

    def fit_sizes(self, available: int) -> None:
        """Limit the subset sizes to a training split of ``available`` images, shrinking the defaults."""
        train, val = TrainConfig().sizes_for(available)
        for spin, value in ((self.train_size, train), (self.val_size, val)):
            spin.setMaximum(available)
            if spin.value() > value:
                spin.setValue(value)

    def set_running(self, running: bool, paused: bool = False) -> None:
        """Lock the settings while a run trains; Pause and Stop only then."""
        self.settings_box.setEnabled(not running)
        self.start_button.setEnabled(not running and self._can_start)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(paused)
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.blockSignals(False)

    def set_start_allowed(self, allowed: bool, reason: str = "") -> None:
        """Enable Start only for a network that fits; ``reason`` says why not, under the buttons."""
        self._can_start = allowed
        self.start_hint.setText(reason)
        self.start_hint.setVisible(not allowed and bool(reason))
        if not self.stop_button.isEnabled():
            self.start_button.setEnabled(allowed)

    def show_progress(
        self, epoch: int, epochs: int, batch: int, batches: int, samples_per_second: float, seconds_left: float
    ) -> None:
        done = ((epoch - 1) * batches + batch) / max(epochs * batches, 1)
        self.progress.setValue(round(done * self.progress.maximum()))
        self.progress.setFormat(f"Epoch {epoch}/{epochs} · batch {batch}/{batches}")
        self.progress_detail.setText(f"{samples_per_second:,.0f} samples/s · {format_duration(seconds_left)} left")

    def show_estimate(self, line: str) -> None:
        """How long the run the settings describe should take ("Estimated: about 1 min on this CPU, 6 epochs")."""
        self.estimate_line.setText(line)
        self.estimate_line.setVisible(bool(line))

    def _describe_precision(self) -> None:
        """Name what Automatic and On mean on the device chosen, and why ("bfloat16: this CPU computes it ...")."""
        try:
            device = resolve_device(self.device.currentData())
            automatic = choose_precision("auto", device)
        except WorkbenchError:
            return
        self.mixed_precision.setItemText(0, f"Automatic — {automatic.name} ({automatic.brief})")
        self.mixed_precision.setItemData(0, f"Automatic: {automatic.words()}.", Qt.ItemDataRole.ToolTipRole)
        try:
            asked = choose_precision("on", device)
        except WorkbenchError as error:
            self.mixed_precision.setItemText(1, "On (bfloat16) — not on this device")
            self.mixed_precision.setItemData(1, str(error), Qt.ItemDataRole.ToolTipRole)
        else:
            self.mixed_precision.setItemText(1, f"On — bfloat16 ({asked.brief})")
            self.mixed_precision.setItemData(1, f"On: {asked.words()}.", Qt.ItemDataRole.ToolTipRole)
        chosen = self.mixed_precision.currentIndex()
        self.mixed_precision.setToolTip(
            f"{self.mixed_precision.itemData(chosen, Qt.ItemDataRole.ToolTipRole) or ''} {PRECISION_HELP}".strip()
        )

    def show_status(self, text: str, detail: str = " ", finished: bool = False) -> None:
        """A message in the progress bar (e.g. loading, finished) and one under it."""
        if finished:
            self.progress.setValue(self.progress.maximum())
        self.progress.setFormat(text)
        self.progress_detail.setText(detail)

    def reset_progress(self) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        self.progress_detail.setText(" ")

    def _pause_toggled(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pauseToggled.emit(paused)

    def _update_optimizer_fields(self) -> None:
        optimizer = self.optimizer.currentData()
        self.momentum.setEnabled(optimizer in ("sgd", "rmsprop"))
        self.nesterov.setEnabled(optimizer == "sgd" and self.momentum.value() > 0)
