"""The Experiments tab: what to vary (or a ready-made comparison of the class), the queue's buttons, the results
table, a chart of accuracy against the varied value, and every run's validation curve with a check box to show it.

The view holds no experiment of its own: it asks for one with its signals and draws the
:class:`~workbench.session.experiments.ExperimentShown` the session sends back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.architecture import Architecture
from workbench.core.errors import ConfigError
from workbench.core.experiments.ready_made import READY_MADE
from workbench.core.experiments.spec import VaryChoice, parse_vary, vary_choices
from workbench.session.experiments import Curve, ExperimentShown
from workbench.session.searching import SearchShown
from workbench.ui.plotting import REFRESH_MS, TEXT_COLOUR, VAL_COLOUR, make_plot, set_title
from workbench.ui.views.plots import OVERLAY_PALETTE
from workbench.ui.views.sight import out_of_sight

CUSTOM = ""
NOTHING_ELSE = ""
LOG_KEYS = ("lr", "weight-decay")
"""Keys whose values are compared on a log axis when they span a factor of ten or more."""
FIGURES = (
    ("best_val_accuracy", "best val"),
    ("final_val_accuracy", "final val"),
    ("test_accuracy", "test"),
    ("train_seconds", "seconds"),
)
ERROR_STYLE = "color: #a01010;"
HINT_STYLE = "color: #606060;"
GIVE_VALUES = "Give the values to try, separated by commas."


class ExperimentsView(QWidget):
    """See the module's docstring. ``startRequested`` carries ``(ready-made name or "", [KEY=V1,V2,...], repeats)``."""

    startRequested = Signal(str, list, int)
    stopRequested = Signal()
    continueRequested = Signal()
    openRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._shown: ExperimentShown | None = None
        self._searching = False
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._grown: dict[str, Curve] = {}
        self._busy = False
        self._choices: list[VaryChoice] = []
        self._redraw = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._redraw.timeout.connect(self._draw_grown)
        layout = QVBoxLayout(self)
        layout.addLayout(self._make_form())
        layout.addLayout(self._make_buttons())
        layout.addWidget(self._make_results(), 1)
        self._ready_made_chosen()

    # ---- the form ------------------------------------------------------------------------------------

    def _make_form(self) -> QGridLayout:
        form = QGridLayout()
        self.ready_made = _named(QComboBox(), "readyMade")
        self.ready_made.addItem("Your own: vary the network and settings you are editing", CUSTOM)
        for experiment in READY_MADE:
            self.ready_made.addItem(f"Ready-made: {experiment.title}", experiment.name)
            self.ready_made.setItemData(self.ready_made.count() - 1, experiment.lesson, Qt.ItemDataRole.ToolTipRole)
        self.ready_made.currentIndexChanged.connect(self._ready_made_chosen)
        self.description = _named(QLabel(), "experimentDescription", word_wrap=True)
        self.keys = [_named(QComboBox(), "varyKey1"), _named(QComboBox(), "varyKey2")]
        self.values = [_named(QLineEdit(), "varyValues1"), _named(QLineEdit(), "varyValues2")]
        for key_box, values in zip(self.keys, self.values):
            key_box.currentIndexChanged.connect(self._key_chosen)
            values.textChanged.connect(self._check_form)
        self.repeats = _named(QSpinBox(), "repeats", minimum=1, maximum=20)
        self.repeats.setToolTip("Runs of each combination, with seeds seed, seed + 1, …: their mean and spread")
        self.repeats.valueChanged.connect(self._check_form)
        self.count = _named(QLabel(), "runCount")
        form.addWidget(QLabel("Experiment:"), 0, 0)
        form.addWidget(self.ready_made, 0, 1, 1, 4)
        form.addWidget(self.description, 1, 1, 1, 4)
        form.addWidget(QLabel("Vary:"), 2, 0)
        form.addWidget(self.keys[0], 2, 1)
        form.addWidget(self.values[0], 2, 2)
        form.addWidget(QLabel("and:"), 3, 0)
        form.addWidget(self.keys[1], 3, 1)
        form.addWidget(self.values[1], 3, 2)
        form.addWidget(QLabel("Repeats:"), 2, 3)
        form.addWidget(self.repeats, 2, 4)
        form.addWidget(self.count, 3, 3, 1, 2)
        form.setColumnStretch(2, 1)
        return form

    def _make_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.start_button = _named(QPushButton("Start experiment"), "startExperiment")
        self.start_button.clicked.connect(self._start_clicked)
        self.stop_button = _named(QPushButton("Stop"), "stopExperiment")
        self.stop_button.setToolTip("Stop the run training now (it is saved, to be continued) and the queue")
        self.stop_button.clicked.connect(self.stopRequested)
        self.continue_button = _named(QPushButton("Continue"), "continueExperiment")
        self.continue_button.setToolTip("Train the runs still to train, the stopped one from its checkpoint")
        self.continue_button.clicked.connect(self.continueRequested)
        self.open_button = _named(QPushButton("Open…"), "openExperiment")
        self.open_button.setToolTip("Show an experiment's folder: its results, curves, and what is left to train")
        self.open_button.clicked.connect(self.openRequested)
        self.state = _named(QLabel("No experiment yet"), "experimentState", word_wrap=True)
        for button in (self.start_button, self.stop_button, self.continue_button, self.open_button):
            row.addWidget(button)
        row.addWidget(self.state, 1)
        self.stop_button.setEnabled(False)
        self.continue_button.setEnabled(False)
        return row

    def _make_results(self) -> QSplitter:
        self.table = _named(QTableWidget(), "experimentResults")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.chart = make_plot("Accuracy against the varied value", "best validation accuracy (%)", "")
        self.chart.setObjectName("experimentChart")
        self.curves_plot = make_plot("Each run's validation accuracy", "accuracy (%)", "epoch", whole_x=True)
        self.curves_plot.setObjectName("experimentCurves")
        self.curve_list = _named(QListWidget(), "experimentRunList")
        self.curve_list.setToolTip("Tick a run to show its curve")
        self.curve_list.itemChanged.connect(self._curve_ticked)
        self.curve_list.setMaximumWidth(180)
        self.curve_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.curve_list.setWordWrap(True)
        curves = QWidget()
        curves_layout = QHBoxLayout(curves)
        curves_layout.setContentsMargins(0, 0, 0, 0)
        curves_layout.setSpacing(2)
        curves_layout.addWidget(self.curves_plot, 1)
        curves_layout.addWidget(self.curve_list)
        self.importance_plot = make_plot("Importance (fANOVA)", "importance", "")
        self.importance_plot.setObjectName("parameterImportance")
        self.importance_plot.hide()  # a search's; a comparison shows its values on the chart
        self.charts = charts = QSplitter(Qt.Orientation.Vertical)
        charts.addWidget(self.chart)
        charts.addWidget(self.importance_plot)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(charts)
        plots.addWidget(curves)
        plots.setSizes([430, 570])
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(plots)
        splitter.setSizes([250, 570])
        return splitter

    # ---- what to vary -------------------------------------------------------------------------------

    def set_architecture(self, architecture: Architecture) -> None:
        """Offer the keys that can vary for the network being edited (its layers' widths among them)."""
        choices = vary_choices(architecture)
        if [choice.key for choice in choices] == [choice.key for choice in self._choices]:
            return
        self._choices = choices
        for index, key_box in enumerate(self.keys):
            kept = key_box.currentData()
            key_box.blockSignals(True)
            key_box.clear()
            if index == 1:
                key_box.addItem("nothing else", NOTHING_ELSE)
            for choice in choices:
                key_box.addItem(choice.title, choice.key)
            found = key_box.findData(kept)
            key_box.setCurrentIndex(found if found >= 0 else 0)
            key_box.blockSignals(False)
        self._key_chosen()

    def choose(self, index: int, key: str, values: str) -> None:
        """Vary ``key`` over ``values`` in the form's row ``index`` (0 or 1), as a user would."""
        self.ready_made.setCurrentIndex(0)
        found = self.keys[index].findData(key)
        if found < 0:
            raise KeyError(key)
        self.keys[index].setCurrentIndex(found)
        self.values[index].setText(values)

    def vary_texts(self) -> list[str]:
        """The form's variations as ``KEY=V1,V2,...`` (the rows with a key and values)."""
        texts = []
        for key_box, values in zip(self.keys, self.values):
            key = key_box.currentData()
            if key and values.text().strip():
                texts.append(f"{key}={values.text().strip()}")
        return texts

    def _key_chosen(self, *_: Any) -> None:
        examples = {choice.key: choice.example for choice in self._choices}
        for key_box, values in zip(self.keys, self.values):
            key = key_box.currentData()
            values.setEnabled(bool(key) and self._custom())
            values.setPlaceholderText(f"e.g. {examples[key]}" if key in examples else "")
        self._check_form()

    def _custom(self) -> bool:
        return self.ready_made.currentData() == CUSTOM

    def _ready_made_chosen(self, *_: Any) -> None:
        name = self.ready_made.currentData()
        experiment = next((experiment for experiment in READY_MADE if experiment.name == name), None)
        custom = experiment is None
        for widget in (*self.keys, *self.values):
            widget.setEnabled(custom)
        if experiment is None:
            self.description.setText(
                "Runs the network and settings in the Network and Training docks once for every value (every "
                "combination, with two keys). Values are separated by commas."
            )
        else:
            self.description.setText(f"{experiment.lesson} {experiment.describe()}")
        self._key_chosen()

    def _check_form(self, *_: Any) -> None:
        """Count the runs the form asks for, or say what is wrong with it."""
        runs, problem = self._planned_runs()
        if problem:
            self.count.setText(problem)
            self.count.setStyleSheet(HINT_STYLE if problem == GIVE_VALUES else ERROR_STYLE)
        else:
            self.count.setText(f"{runs} runs" if runs != 1 else "1 run")
            self.count.setStyleSheet("")
        self.start_button.setEnabled(not self._busy and not problem)

    def _planned_runs(self) -> tuple[int, str]:
        repeats = self.repeats.value()
        if not self._custom():
            experiment = next(
                experiment for experiment in READY_MADE if experiment.name == self.ready_made.currentData()
            )
            return len(experiment.variation.values) * repeats, ""
        texts = self.vary_texts()
        if not texts:
            return 0, GIVE_VALUES
        runs = repeats
        keys = []
        for text in texts:
            try:
                variation = parse_vary(text)
            except ConfigError as error:
                return 0, str(error)
            keys.append(variation.key)
            runs *= len(variation.values)
        if len(keys) == 2 and keys[0] == keys[1]:
            return 0, f"{keys[0]} is chosen twice: give all its values in the first row."
        return runs, ""

    def _start_clicked(self) -> None:
        name = self.ready_made.currentData()
        self.startRequested.emit(name, [] if name else self.vary_texts(), self.repeats.value())

    def set_busy(self, busy: bool) -> None:
        """Whether something runs in the session (nothing new may start)."""
        self._busy = busy
        running = (self._shown is not None and self._shown.running) or (self._searching and busy)
        self.stop_button.setEnabled(running)
        self.continue_button.setEnabled(not busy and self._shown is not None and self._shown.can_continue)
        self.open_button.setEnabled(not running)
        self._check_form()

    # ---- results ---------------------------------------------------------------------------------------

    def show_experiment(self, shown: ExperimentShown) -> None:
        """Draw the experiment's table, chart and curves, and where its queue is."""
        self._shown = shown
        self._grown = {}
        self.state.setText(f"{shown.state}. Folder: {shown.folder}")
        self.set_busy(self._busy)
        self._searching = False
        self.importance_plot.hide()
        set_title(self.chart, "Accuracy against the varied value")
        self._fill_table(shown)
        self._draw_chart(shown)
        self._draw_curves(shown.curves)

    def show_search(self, shown: SearchShown) -> None:
        """Draw a search: its trials' table, the optimisation history (each trial's best validation accuracy and
        the best so far), the parameters' importance, and each trial's curve."""
        self._shown = None
        self._searching = shown.running
        self._grown = {}
        best = shown.best
        words = f" — best so far: trial {best[0]}, {best[1]:.2%}" if best else ""
        self.state.setText(f"Search: {shown.state}{words}. Folder: {shown.folder}")
        self.set_busy(self._busy)
        headers = ["run", *shown.keys, "status", *(title for _, title in FIGURES)]
        lines = [
            [row["run"], *(_cell(row[key]) for key in shown.keys), row["status"], *(row[f] for f, _ in FIGURES)]
            for row in shown.rows
        ]
        self._fill_lines(headers, lines)
        self._draw_history(shown)
        self._draw_importances(shown.importances)
        self._draw_curves(shown.curves)

    def _draw_history(self, shown: SearchShown) -> None:
        plot = self.chart.getPlotItem()
        plot.clear()
        plot.legend.clear()
        set_title(self.chart, "Optimisation history")
        plot.getAxis("bottom").setTicks(None)
        plot.setLabel("bottom", "trial", color=TEXT_COLOUR)
        scored = [(number, value * 100) for number, value, _ in shown.history if value is not None]
        reached = {row["run"]: row["best_val_accuracy"] for row in shown.rows}
        pruned = [
            (number, float(reached[f"trial-{number:03d}"]))
            for number, _, status in shown.history
            if status == "pruned" and reached.get(f"trial-{number:03d}", "") != ""
        ]
        if scored:
            xs, ys = zip(*scored)
            plot.plot(xs, ys, pen=None, symbol="o", symbolBrush=OVERLAY_PALETTE[0], name="trial")
            plot.plot(xs, list(np.maximum.accumulate(ys)), pen=pg.mkPen(VAL_COLOUR, width=2), name="best so far")
        if pruned:  # where each stood when the pruner stopped it
            xs, ys = zip(*pruned)
            plot.plot(xs, ys, pen=None, symbol="x", symbolBrush="#888888", name="pruned")
        plot.enableAutoRange()

    def _draw_importances(self, importances: dict[str, float]) -> None:
        plot = self.importance_plot.getPlotItem()
        plot.clear()
        if not self.importance_plot.isVisible():
            self.importance_plot.setVisible(True)
            self.charts.setSizes([3, 2])
        names = list(importances)
        if not names:
            set_title(self.importance_plot, "Importance: after two finished trials")
            return
        set_title(self.importance_plot, "Importance (Optuna's fANOVA)")
        plot.addItem(
            pg.BarGraphItem(
                x=np.arange(len(names)), height=[importances[n] for n in names], width=0.6, brush=OVERLAY_PALETTE[1]
            )
        )
        plot.getAxis("bottom").setTicks([[(index, name) for index, name in enumerate(names)]])
        plot.setYRange(0, 1, padding=0.02)
        plot.setXRange(-0.8, len(names) - 0.2, padding=0)

    def importance_bars(self) -> dict[str, float]:
        """The importance plot's bars by parameter (for tests)."""
        bars = [item for item in self.importance_plot.getPlotItem().items if isinstance(item, pg.BarGraphItem)]
        if not bars:
            return {}
        ticks = self.importance_plot.getPlotItem().getAxis("bottom")._tickLevels[0]
        heights = bars[0].opts["height"]
        return {name: float(heights[int(position)]) for position, name in ticks}

    def grow_curve(self, name: str, curve: Curve) -> None:
        """A queued run's newest epoch: drawn on the next refresh (or when the tab is shown)."""
        self._grown[name] = curve
        if not out_of_sight(self) and not self._redraw.isActive():
            self._redraw.start()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._grown:
            self._draw_grown()

    def _fill_table(self, shown: ExperimentShown) -> None:
        keys = [key for key in shown.keys if key != "repeat"]
        combined = shown.repeat > 1
        if combined:
            headers = [*keys, "runs", *(title for _, title in FIGURES)]
            lines = [self._summary_cells(entry, keys, shown) for entry in shown.summary]
        else:
            headers = ["run", *keys, "status", *(title for _, title in FIGURES)]
            lines = [
                [
                    row["run"],
                    *(shown.shown_value(key, row[key]) for key in keys),
                    row["status"],
                    *(row[field] for field, _ in FIGURES),
                ]
                for row in shown.rows
            ]
        self._fill_lines(headers, lines)

    def _fill_lines(self, headers: list[str], lines: list[list[Any]]) -> None:
        self.table.clear()
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(lines))
        best_column = headers.index("best val")
        best = _best_row(lines, best_column)
        for row, line in enumerate(lines):
            for column, text in enumerate(line):
                item = QTableWidgetItem(str(text))
                if column >= best_column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if row == best:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, column, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    @staticmethod
    def _summary_cells(entry: dict[str, Any], keys: list[str], shown: ExperimentShown) -> list[str]:
        cells = [shown.shown_value(key, entry[key]) for key in keys]
        cells.append(f"{entry['ended']} of {entry['runs']}")
        for field, _ in FIGURES:
            figure = entry[field]
            if figure is None:
                cells.append("")
            elif field == "train_seconds":
                cells.append(f"{figure[0]:.1f} ± {figure[1]:.1f}")
            else:
                cells.append(f"{figure[0]:.2f} ± {figure[1]:.2f}")
        return cells

    def table_texts(self) -> list[list[str]]:
        """The results table's cells, row by row (for tests and scripts)."""
        return [
            [self.table.item(row, column).text() for column in range(self.table.columnCount())]
            for row in range(self.table.rowCount())
        ]

    def table_headers(self) -> list[str]:
        """The results table's column titles."""
        return [self.table.horizontalHeaderItem(column).text() for column in range(self.table.columnCount())]

    def _draw_chart(self, shown: ExperimentShown) -> None:
        """Best validation accuracy (mean ± spread over repeats) against the first key's values, one line for
        each value of the second key."""
        plot = self.chart.getPlotItem()
        plot.clear()
        plot.legend.clear()
        keys = [key for key in shown.keys if key != "repeat"]
        first = keys[0]
        values = list(dict.fromkeys(str(entry[first]) for entry in shown.summary))
        numeric = _numbers(values)
        log = numeric is not None and first in LOG_KEYS and min(numeric) > 0 and max(numeric) >= 10 * min(numeric)
        positions = (np.log10(numeric) if log else np.array(numeric)) if numeric is not None else np.arange(len(values))
        axis = plot.getAxis("bottom")
        if numeric is None or log:
            ticks = [(float(position), shown.shown_value(first, value)) for position, value in zip(positions, values)]
            axis.setTicks([ticks])
        else:
            axis.setTicks(None)
        plot.setLabel("bottom", f"{first} (log scale)" if log else first, color=TEXT_COLOUR)
        groups: dict[str, list[dict[str, Any]]] = {}
        for entry in shown.summary:
            groups.setdefault(str(entry[keys[1]]) if len(keys) > 1 else "", []).append(entry)
        for index, (group, entries) in enumerate(groups.items()):
            colour = OVERLAY_PALETTE[index % len(OVERLAY_PALETTE)]
            xs, ys, spreads = [], [], []
            for entry in entries:
                figure = entry["best_val_accuracy"]
                if figure is None:
                    continue
                xs.append(float(positions[values.index(str(entry[first]))]))
                ys.append(figure[0])
                spreads.append(figure[1])
            if not xs:
                continue
            name = f"{keys[1]} {group}" if len(keys) > 1 else "best validation accuracy"
            plot.plot(
                xs, ys, pen=pg.mkPen(colour, width=2), symbol="o", symbolBrush=colour, symbolPen=colour, name=name
            )
            if shown.repeat > 1:
                spread = np.array(spreads)
                plot.addItem(
                    pg.ErrorBarItem(x=np.array(xs), y=np.array(ys), top=spread, bottom=spread, beam=0.1, pen=colour)
                )
        plot.enableAutoRange(axis="y")
        margin = 0.5 if numeric is None else 0.1 * max(float(np.ptp(positions)), 1e-9)
        plot.setXRange(float(positions.min()) - margin, float(positions.max()) + margin, padding=0)

    def chart_points(self) -> list[tuple[list[float], list[float]]]:
        """Each of the chart's lines as (x, y) lists (for tests)."""
        points = []
        for item in self.chart.getPlotItem().listDataItems():
            x, y = item.getData()
            if x is not None:
                points.append((list(map(float, x)), list(map(float, y))))
        return points

    def _draw_curves(self, curves: dict[str, Curve]) -> None:
        plot = self.curves_plot.getPlotItem()
        hidden = {
            self.curve_list.item(row).data(Qt.ItemDataRole.UserRole)
            for row in range(self.curve_list.count())
            if self.curve_list.item(row).checkState() is Qt.CheckState.Unchecked
        }
        plot.clear()
        self._curves = {}
        self.curve_list.blockSignals(True)
        self.curve_list.clear()
        for index, (name, curve) in enumerate(curves.items()):
            colour = OVERLAY_PALETTE[index % len(OVERLAY_PALETTE)]
            item = plot.plot(pen=pg.mkPen(colour, width=2))
            self._set_curve(item, curve)
            self._curves[name] = item
            entry = QListWidgetItem(_swatch(colour), f"{curve.label}")
            entry.setData(Qt.ItemDataRole.UserRole, name)
            entry.setToolTip(f"{name}: {curve.label}")
            entry.setFlags(entry.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            entry.setCheckState(Qt.CheckState.Unchecked if name in hidden else Qt.CheckState.Checked)
            item.setVisible(name not in hidden)
            self.curve_list.addItem(entry)
        self.curve_list.blockSignals(False)

    @staticmethod
    def _set_curve(item: pg.PlotDataItem, curve: Curve) -> None:
        pairs = [(epoch, value * 100) for epoch, value in zip(curve.epochs, curve.accuracies) if math.isfinite(value)]
        if pairs:
            xs, ys = zip(*pairs)
            item.setData(list(xs), list(ys))
        else:
            item.clear()

    def _draw_grown(self) -> None:
        grown, self._grown = self._grown, {}
        for name, curve in grown.items():
            item = self._curves.get(name)
            if item is not None:
                self._set_curve(item, curve)

    def _curve_ticked(self, entry: QListWidgetItem) -> None:
        item = self._curves.get(entry.data(Qt.ItemDataRole.UserRole))
        if item is not None:
            item.setVisible(entry.checkState() is Qt.CheckState.Checked)

    def curve_names(self) -> list[str]:
        """The runs in the curve list, labelled by what differs, in order."""
        return [self.curve_list.item(row).text() for row in range(self.curve_list.count())]

    def visible_curves(self) -> dict[str, int]:
        """Each shown curve's label and how many epochs it holds (hidden ones left out)."""
        counts = {}
        for row in range(self.curve_list.count()):
            entry = self.curve_list.item(row)
            item = self._curves[entry.data(Qt.ItemDataRole.UserRole)]
            if item.isVisible():
                x, _ = item.getData()
                counts[entry.text()] = 0 if x is None else len(x)
        return counts


def _named(widget: Any, name: str, word_wrap: bool = False, minimum: int = 0, maximum: int = 0) -> Any:
    """``widget`` with its object name (how tests and scripts find it) and the few properties given."""
    widget.setObjectName(name)
    if word_wrap:
        widget.setWordWrap(True)
    if maximum:
        widget.setRange(minimum, maximum)
    return widget


def _best_row(lines: list[list[Any]], column: int) -> int | None:
    best, best_value = None, -math.inf
    for row, line in enumerate(lines):
        text = str(line[column]).split(" ")[0]
        try:
            value = float(text)
        except ValueError:
            continue
        if value > best_value:
            best, best_value = row, value
    return best


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _numbers(values: list[str]) -> list[float] | None:
    try:
        return [float(value) for value in values]
    except ValueError:
        return None


def _swatch(colour: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)
