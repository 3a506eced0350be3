"""The learning-rate range test's result: the smoothed loss against the learning rate on a log axis, the suggested
rate marked with the rule that chose it, and a button that puts it into the training settings."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QVBoxLayout, QWidget

from workbench.core.experiments.lr_find import LearningRateTest
from workbench.ui.plotting import TRAIN_COLOUR, VAL_COLOUR, make_plot


class LearningRateDialog(QDialog):
    """See the module's docstring. ``rateChosen`` carries the suggestion when "Use …" is pressed."""

    rateChosen = Signal(float)

    def __init__(self, test: LearningRateTest, network: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.test = test
        self.setWindowTitle(f"Learning rate for {network}")
        self.plot = make_plot("Loss against the learning rate", "loss (smoothed)", "learning rate (log scale)")
        self.plot.setObjectName("rangeTestPlot")
        item = self.plot.getPlotItem()
        item.setLogMode(x=True, y=False)
        rates, losses = np.asarray(test.learning_rates), np.asarray(test.losses)
        finite = np.isfinite(losses)
        self.curve = item.plot(rates[finite], losses[finite], pen=pg.mkPen(TRAIN_COLOUR, width=2))
        suggested = math.log10(test.suggested)
        item.addItem(
            pg.InfiniteLine(
                pos=suggested, angle=90, pen=pg.mkPen(VAL_COLOUR, width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine)
            )
        )
        at = int(np.argmin(np.abs(rates - test.suggested)))
        self.marker = item.plot(
            [rates[at]], [losses[at]], pen=None, symbol="o", symbolBrush=VAL_COLOUR, symbolPen=VAL_COLOUR
        )
        # The loss runs away at the end: keep the axis on the part a user reads.
        top = float(np.nanpercentile(losses[finite], 95)) if finite.any() else 1.0
        item.setYRange(float(np.nanmin(losses[finite])) * 0.9 if finite.any() else 0.0, top * 1.1, padding=0)
        ended = "the loss ran away before the end of the range" if test.diverged else "the whole range"
        self.summary = QLabel(
            f"Suggested learning rate: <b>{test.suggested:.3g}</b>, {test.rule}.<br>"
            f"{len(test.learning_rates)} batches from {test.learning_rates[0]:.0e} to "
            f"{test.learning_rates[-1]:.2g} ({ended}). The network's weights were put back afterwards."
        )
        self.summary.setObjectName("rangeTestSummary")
        self.summary.setWordWrap(True)
        buttons = QDialogButtonBox()
        self.use_button = QPushButton(f"Use {test.suggested:.3g}")
        self.use_button.setObjectName("useSuggestedRate")
        self.use_button.setDefault(True)
        buttons.addButton(self.use_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.accepted.connect(self._use)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.summary)
        layout.addWidget(buttons)
        self.resize(640, 480)

    def _use(self) -> None:
        self.rateChosen.emit(self.test.suggested)
        self.accept()
