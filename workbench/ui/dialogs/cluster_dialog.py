"""Train → Run on a cluster…: the torchrun commands that train this network and these settings headless."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.errors import WorkbenchError
from workbench.core.training.distributed import cluster_commands
from workbench.ui.panels.network_list import tone_style


class ClusterDialog(QDialog):
    """Shows, copyable, the commands for one machine and for several, for the hand-off written in ``folder``."""

    def __init__(self, folder: Path, gpus: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Run on a cluster")
        self.folder = folder
        intro = QLabel(
            f"The network and its settings are saved in <b>{folder}</b>. Run one of these commands "
            f"where the workbench is installed; the run is written into <b>{folder / 'run'}</b> and "
            f"appears in the Runs tab when that folder is visible here. Every machine must see the "
            f"folder at the same path (a shared file system).",
            wordWrap=True,
        )
        self.processes = QSpinBox(minimum=1, maximum=64, value=max(gpus, 2))
        self.processes.setObjectName("processesPerMachine")
        self.processes.setToolTip("One process per GPU; on CPUs, a few processes per machine")
        self.machines = QSpinBox(minimum=2, maximum=1024, value=2)
        self.machines.setObjectName("machines")
        self.endpoint = QLineEdit("HOST:29500")
        self.endpoint.setObjectName("rendezvous")
        self.endpoint.setToolTip("HOST:PORT of the first machine; the port must be open between the machines")
        form = QFormLayout()
        form.addRow("Processes per machine", self.processes)
        form.addRow("Machines (several)", self.machines)
        form.addRow("First machine", self.endpoint)
        self.single = _command_box()
        self.multi = _command_box()
        self.problem = QLabel(wordWrap=True)
        self.problem.setObjectName("problem")
        self.problem.setStyleSheet(tone_style("error"))
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(_titled("On one machine", self.single))
        layout.addWidget(_titled("On several machines (type it on each)", self.multi))
        layout.addWidget(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        for signal in (self.processes.valueChanged, self.machines.valueChanged, self.endpoint.textChanged):
            signal.connect(self._update)
        self.resize(760, 460)
        self._update()

    def commands(self) -> tuple[str, str]:
        """The commands shown: one machine, several machines."""
        return self.single.toPlainText(), self.multi.toPlainText()

    def _update(self) -> None:
        try:
            commands = cluster_commands(
                self.folder, self.processes.value(), self.machines.value(), self.endpoint.text().strip() or "HOST:29500"
            )
        except WorkbenchError as error:
            self.problem.setText(str(error))
            self.problem.show()
            return
        self.problem.clear()
        self.problem.hide()
        self.single.setPlainText(commands["single_node"])
        self.multi.setPlainText(commands["multi_node"])


def _command_box() -> QPlainTextEdit:
    box = QPlainTextEdit(readOnly=True)
    box.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    box.setFixedHeight(64)
    return box


def _titled(title: str, box: QPlainTextEdit) -> QGroupBox:
    group = QGroupBox(title)
    copy = QPushButton("Copy")
    copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(box.toPlainText()))
    row = QHBoxLayout(group)
    row.addWidget(box, 1)
    row.addWidget(copy)
    return group
