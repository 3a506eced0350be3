"""Train → Search…: the ranges and choices to search, the number of trials, and where the study is kept."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.errors import ConfigError
from workbench.core.experiments.search import parse_space

EXAMPLE = "lr=0.0001:0.1:log\noptimizer=sgd,adam"
HELP = (
    "One key a line: <b>KEY=LOW:HIGH</b> for a range (<b>:log</b> to search it on a log scale, as for learning "
    "rates) or <b>KEY=V1,V2,…</b> for a choice. Keys are those of an experiment: lr, momentum, batch-size, "
    "weight-decay, optimizer, loss, epochs, activation, dropout, layers.N.out_features, …<br>Optuna's TPE sampler "
    "picks each trial's values from the trials before it; its median pruner stops a trial whose validation accuracy "
    "falls below the median of the earlier ones at the same epoch."
)


class SearchDialog(QDialog):
    """See the module's docstring; :meth:`choices` are what the user asked for once accepted."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Search the settings")
        self.space = QPlainTextEdit(EXAMPLE)
        self.space.setObjectName("searchSpace")
        self.space.textChanged.connect(self._check)
        self.trials = QSpinBox()
        self.trials.setObjectName("searchTrials")
        self.trials.setRange(1, 10_000)
        self.trials.setValue(12)
        self.storage = QLineEdit()
        self.storage.setObjectName("searchStorage")
        self.storage.setPlaceholderText("empty: study.db in the search's folder")
        self.storage.setToolTip(
            "An Optuna database URL (sqlite:///path/study.db, postgresql://…): processes on several machines given "
            "the same URL share the study's trials"
        )
        self.problem = QLabel()
        self.problem.setObjectName("searchProblem")
        self.problem.setStyleSheet("color: #a01010;")
        self.problem.setWordWrap(True)
        explanation = QLabel(HELP)
        explanation.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Search:", self.space)
        form.addRow("Trials:", self.trials)
        form.addRow("Study storage:", self.storage)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Search")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(explanation)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.resize(560, 420)
        self._check()

    def lines(self) -> list[str]:
        """The space's lines that are not empty."""
        return [line.strip() for line in self.space.toPlainText().splitlines() if line.strip()]

    def choices(self) -> tuple[list[str], int, str | None]:
        """The space's lines, the number of trials, and the storage URL (None: the default)."""
        return self.lines(), self.trials.value(), self.storage.text().strip() or None

    def _check(self) -> None:
        problem = "" if self.lines() else "Give at least one key to search."
        for line in self.lines():
            try:
                parse_space(line)
            except ConfigError as error:
                problem = str(error)
                break
        self.problem.setText(problem)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not problem)
