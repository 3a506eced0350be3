"""File → Export…: choose a format and where to write the trained network."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.export.formats import default_export_name
from workbench.core.runs.trained import TrainedModel

FORMAT_CHOICES = {
    "onnx": (
        "ONNX (.onnx)",
        "For onnxruntime, OpenCV, TensorRT and most inference tools; checked with onnxruntime after writing.",
        ".onnx",
    ),
    "pt2": (
        "PyTorch program (.pt2)",
        "A torch.export program: reload it with torch.export.load, no Python class needed.",
        ".pt2",
    ),
    "safetensors": (
        "Bundle folder (safetensors)",
        "model.safetensors with architecture.json and meta.json (classes, "
        "input shape, normalisation): what workbench predict reads.",
        "",
    ),
    "python": (
        "Standalone PyTorch code (.py)",
        "A readable nn.Module class and a load() helper, with the weights beside it; needs only torch and safetensors.",
        ".py",
    ),
}


class ExportDialog(QDialog):
    """Asks for a format and a target path; :meth:`choice` gives them once accepted.

    It opens on ``fmt`` and offers to write into ``folder`` (the last export's), else beside the run folder.
    Choosing an existing file asks nothing here: the window asks before replacing a file the workbench did
    not write (:meth:`~workbench.ui.main_window.MainWindow.export_to`).
    """

    def __init__(
        self, trained: TrainedModel, parent: QWidget | None = None, fmt: str = "onnx", folder: Path | None = None
    ):
        super().__init__(parent)
        self.setWindowTitle(f"Export {trained.name}")
        self.trained = trained
        self.folder = folder if folder is not None else trained.folder.parent
        self.format = QComboBox()
        self.format.setObjectName("exportFormat")
        for key, (title, _, _) in FORMAT_CHOICES.items():
            self.format.addItem(title, key)
        self.about = QLabel(wordWrap=True)
        self.path = QLineEdit()
        self.path.setObjectName("exportPath")
        self.path.setMinimumWidth(420)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("", self.about)
        form.addRow("Write to", row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.format.setCurrentIndex(max(self.format.findData(fmt), 0))
        self.format.currentIndexChanged.connect(self._format_changed)
        self._format_changed()

    def choice(self) -> tuple[str, Path]:
        """The chosen format and target path."""
        return self.format.currentData(), Path(self.path.text().strip()).expanduser()

    def _format_changed(self) -> None:
        fmt = self.format.currentData()
        self.about.setText(FORMAT_CHOICES[fmt][1])
        self.path.setText(str(self.folder / default_export_name(self.trained, fmt)))

    def _browse(self) -> None:
        fmt = self.format.currentData()
        if fmt == "safetensors":
            chosen = QFileDialog.getExistingDirectory(self, "Folder to write the bundle into", str(self.folder))
            if chosen:
                self.path.setText(str(Path(chosen) / default_export_name(self.trained, fmt)))
            return
        suffix = FORMAT_CHOICES[fmt][2]
        # The window asks before replacing a file, and only one the workbench did not write: the file dialog's
        # own question would come on top of it, and for earlier exports too.
        chosen, _ = QFileDialog.getSaveFileName(
            self, "Export to", self.path.text(), f"*{suffix}", options=QFileDialog.Option.DontConfirmOverwrite
        )
        if chosen:
            self.path.setText(chosen)
