"""File → Predict images…: the user's own image files, inverted or not, for the network on show to guess.

Fashion-MNIST and MNIST are light objects on black; a photo of a shirt or a digit on white paper must be inverted
before the network can recognise it. The dialog says so by itself when the chosen images' backgrounds are unlike
the training images' (the hint follows the Invert box), so nobody has to know the datasets' convention.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.errors import WorkbenchError
from workbench.ui.panels.network_list import tone_style
from workbench.ui.views.gallery import DROPPABLE_SUFFIXES

FILTER = f"Images ({' '.join('*' + suffix for suffix in DROPPABLE_SUFFIXES)})"


class PredictImagesDialog(QDialog):
    """Choose image files and whether to invert them; :meth:`choice` gives ``(paths, invert)`` once accepted.

    ``hint(paths, invert)`` says (or "" when nothing is amiss) how the images' backgrounds compare with the
    training images'; it raises :class:`WorkbenchError` for a file that cannot be read, which the dialog shows.
    """

    def __init__(
        self, hint: Callable[[list[Path], bool], str], folder: Path, dataset_title: str, parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.setWindowTitle("Predict images")
        self._hint = hint
        self._folder = folder
        self._paths: list[Path] = []
        intro = QLabel(
            f"Choose image files (PNG, JPEG, …): the network on show guesses what each is, and each can then be "
            f"inspected like the {dataset_title} images. They are made grey or colour and resized as the "
            f"network's input needs.",
            wordWrap=True,
        )
        self.files = QListWidget()
        self.files.setObjectName("files")
        self.files.setMinimumHeight(120)
        choose = QPushButton("Choose images…")
        choose.setObjectName("chooseImages")
        choose.clicked.connect(self.choose_files)
        self.invert = QCheckBox("Invert (dark on light)")
        self.invert.setObjectName("invert")
        self.invert.setToolTip(
            f"Make dark objects on a light background light on dark, as the {dataset_title} images are"
        )
        self.invert.toggled.connect(self._update_hint)
        self.hint = QLabel(wordWrap=True)
        self.hint.setObjectName("hint")
        self.hint.setStyleSheet(tone_style("warning"))
        self.hint.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.predict = self.buttons.addButton("Predict", QDialogButtonBox.ButtonRole.AcceptRole)
        self.predict.setObjectName("predict")
        self.predict.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(choose)
        row.addWidget(self.invert)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.files)
        layout.addLayout(row)
        layout.addWidget(self.hint)
        layout.addWidget(self.buttons)
        self.resize(520, 360)

    def choose_files(self) -> None:
        """Ask for the image files (a file dialog)."""
        names, _ = QFileDialog.getOpenFileNames(self, "Choose images to predict", str(self._folder), FILTER)
        if names:
            self.set_paths([Path(name) for name in names])

    def set_paths(self, paths: list[Path]) -> None:
        """Use ``paths`` (as chosen in the file dialog)."""
        self._paths = list(paths)
        self.files.clear()
        self.files.addItems([str(path) for path in self._paths])
        self._update_hint()

    def choice(self) -> tuple[list[Path], bool]:
        """The files chosen and whether to invert them."""
        return list(self._paths), self.invert.isChecked()

    def _update_hint(self) -> None:
        try:
            text = self._hint(self._paths, self.invert.isChecked())
            readable = True
        except WorkbenchError as error:
            text, readable = str(error), False
        self.hint.setStyleSheet(tone_style("warning" if readable else "error"))
        self.hint.setText(text)
        self.hint.setVisible(bool(text))
        self.predict.setEnabled(bool(self._paths) and readable)
