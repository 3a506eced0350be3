"""The run history: every run folder in one sortable table, to compare, reuse, continue, rename or delete runs.

Rows come from :func:`workbench.core.runs.summaries.list_runs`, which never raises on what a folder holds: a run whose
files cannot be trusted is listed as damaged, with the reason on the row and in the details line below the
table. Numbers sort as numbers and dates by time; a figure a run lacks sorts last in either direction.

The widget does not train or evaluate anything itself: it emits the folder (and, to continue, the number of
extra epochs) and the main window acts on it. Renaming and deleting it does itself, through the core.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.core.errors import RunError
from workbench.core.runs.folders import (
    MAX_NAME_LENGTH,
    default_runs_dir,
    delete_run,
    read_metrics,
    rename_run,
)
from workbench.core.runs.summaries import NO_CHECKPOINT, RunSummary, list_runs
from workbench.ui.panels.network_list import TONES

# The network's summary is long: last, where it takes whatever width is left.
COLUMNS = (
    "Name",
    "Status",
    "Dataset",
    "Optimizer",
    "LR",
    "Momentum",
    "Loss",
    "Batch",
    "Train images",
    "Weight decay",
    "Augment",
    "Epochs",
    "Best val acc",
    "Test acc",
    "Duration",
    "Date",
    "Network",
    "Experiment",
)
NUMERIC_COLUMNS = frozenset(
    {"LR", "Momentum", "Batch", "Train images", "Weight decay", "Epochs", "Best val acc", "Test acc", "Duration"}
)
SETTING_COLUMNS = (
    "Dataset",
    "Optimizer",
    "LR",
    "Momentum",
    "Loss",
    "Batch",
    "Train images",
    "Weight decay",
    "Augment",
    "Epochs",
)
"""The columns of what a run was asked to do: those that differ between the selected runs are drawn bold."""
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
FOLDER_ROLE = Qt.ItemDataRole.UserRole + 2
MISSING = "—"
DEFAULT_EXTRA_EPOCHS = 5
MAX_EXTRA_EPOCHS = 1000
NAMES_IN_CONFIRMATION = 10
MAX_COLUMN_WIDTH = 360


class _SortProxy(QSortFilterProxyModel):
    """Sorts by :data:`SORT_ROLE`; rows without a value there sort last, ascending or descending."""

    def lessThan(self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex) -> bool:
        first, second = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if first is None or second is None:
            # The proxy reverses this answer for a descending sort, so a missing value must then count as least.
            descending = self.sortOrder() == Qt.SortOrder.DescendingOrder
            return first is not second and (first is not None) != descending
        return first < second


def _percent(value: float | None) -> tuple[str, float | None]:
    return (MISSING, None) if value is None else (f"{value * 100:.1f} %", value)


def _duration(seconds: float | None) -> tuple[str, float | None]:
    if seconds is None:
        return MISSING, None
    if seconds < 60:
        return (f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"), seconds
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s", seconds
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min", seconds


def _date(started: str) -> tuple[str, float | None]:
    """A run's start (ISO 8601, UTC in run.json) in local time, and its timestamp to sort by."""
    try:
        moment = datetime.fromisoformat(started)
        return moment.astimezone().strftime("%Y-%m-%d %H:%M"), moment.timestamp()
    except (TypeError, ValueError, OverflowError, OSError):  # hand-edited: not a date, or one out of range
        return (started or MISSING), None


def _epochs(summary: RunSummary) -> tuple[str, int | None]:
    if summary.damaged and not summary.epochs:
        return MISSING, None
    planned = summary.planned_epochs
    text = f"{summary.epochs} / {planned}" if planned is not None and planned != summary.epochs else f"{summary.epochs}"
    return text, summary.epochs


def _setting(summary: RunSummary, key: str) -> tuple[str, Any]:
    """A number from the run's saved settings, shown as it was typed (``—`` where it has none)."""
    value = (summary.config or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING, None
    return (f"{value:,}" if isinstance(value, int) else f"{value:g}"), value


def _cells(summary: RunSummary) -> list[tuple[str, Any]]:
    """Each column's text and the value it sorts by, in the order of :data:`COLUMNS`."""
    lr = (MISSING, None) if summary.lr is None else (f"{summary.lr:g}", summary.lr)
    texts = (summary.name, summary.status, summary.dataset, summary.optimizer)
    momentum = _setting(summary, "momentum") if summary.optimizer in MOMENTUM_OPTIMIZERS else (MISSING, None)
    loss = str((summary.config or {}).get("loss", MISSING))
    augment = str((summary.config or {}).get("augment", "none"))
    return [(text, text.casefold()) for text in texts] + [
        lr,
        momentum,
        (loss, loss),
        _setting(summary, "batch_size"),
        _setting(summary, "train_size"),
        _setting(summary, "weight_decay"),
        (augment, augment),
        _epochs(summary),
        _percent(summary.best_val_accuracy),
        _percent(summary.test_accuracy),
        _duration(summary.duration_seconds),
        _date(summary.started),
        (summary.architecture, summary.architecture.casefold()),
        (summary.experiment or MISSING, summary.experiment.casefold()),
    ]


def _row_items(summary: RunSummary) -> list[QStandardItem]:
    """The items of one table row; damaged runs and runs with a problem are coloured, the reason as tooltip."""
    tone = TONES["error"] if summary.damaged else TONES["warning"] if summary.problem else None
    tooltip = f"{summary.folder}\n{summary.problem}" if summary.problem else str(summary.folder)
    items = []
    for column, (text, key) in zip(COLUMNS, _cells(summary)):
        item = QStandardItem(text)
        item.setEditable(False)
        item.setData(key, SORT_ROLE)
        item.setData(summary.folder, FOLDER_ROLE)
        item.setToolTip(tooltip)
        if column in NUMERIC_COLUMNS:
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if tone is not None:
            item.setBackground(tone.background)
            item.setForeground(tone.text)
        items.append(item)
    return items


class RunHistory(QWidget):
    """Every run under a runs folder, in a table sorted by date (newest first) until a header is clicked; the
    folder is named above the buttons (:meth:`set_root` lists another).

    Select rows to act on them: overlay their curves, load one into the builder, continue, evaluate, rename
    or delete. ``interactive`` False (tests, scripted mode) skips every dialog: continuing takes
    :data:`DEFAULT_EXTRA_EPOCHS` unless :meth:`continue_selected` is given a number, renaming needs
    :meth:`rename_selected` with the name, deleting does not ask, and problems go to the details line
    instead of a message box.
    """

    overlayRequested = Signal(list)
    """``[(name, [EpochMetrics, …], folder), …]``: the selected runs' histories, to draw over the live plots, and
    their folders (a Path each), where their other records are."""
    loadRequested = Signal(object)
    """The folder (a Path) of the run whose architecture and settings go back into the builder."""
    continueRequested = Signal(object, int)
    """The folder (a Path) of the run to continue, and how many epochs to add."""
    evaluateRequested = Signal(object)
    """The folder (a Path) of the run whose final weights to evaluate."""
    runsChanged = Signal()
    """A run was renamed or deleted."""

    def __init__(self, root: str | os.PathLike | None = None, interactive: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self.interactive = interactive
        self.last_error: str | None = None
        self._root = Path(root) if root is not None else default_runs_dir()
        self._summaries: dict[Path, RunSummary] = {}
        self._busy: set[Path] = set()
        self._model = QStandardItemModel(0, len(COLUMNS), self)
        self._model.setHorizontalHeaderLabels(list(COLUMNS))
        self._proxy = _SortProxy(self)
        self._proxy.setSourceModel(self._model)
        self.table = self._make_table()
        self.details = QLabel()
        self.details.setObjectName("runDetails")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label = QLabel()
        self.folder_label.setObjectName("runsFolder")
        self.folder_label.setTextFormat(Qt.TextFormat.PlainText)
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._buttons = self._make_buttons()
        # Two rows, so that the tab (and so the window) stays narrow enough for a 1500-pixel-wide window whatever
        # the system font: the folder and its buttons, then what is done with the selected runs.
        self._folder_row = self._button_row(["refreshRuns"], leading=self.folder_label)
        self._row = self._button_row([name for name in self._buttons if name != "refreshRuns"])

        layout = QVBoxLayout(self)
        layout.addLayout(self._folder_row)
        layout.addLayout(self._row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(self.load_selected)
        self.refresh()

    # Building the widget

    def _make_table(self) -> QTableView:
        table = QTableView()
        table.setObjectName("runTable")
        table.setModel(self._proxy)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        table.verticalHeader().hide()
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        table.setSortingEnabled(True)
        table.sortByColumn(COLUMNS.index("Date"), Qt.SortOrder.DescendingOrder)
        return table

    def _make_buttons(self) -> dict[str, QPushButton]:
        actions = (
            ("refreshRuns", "Refresh", self.refresh, "Read the runs folder again"),
            (
                "overlayRuns",
                "Overlay curves",
                self.overlay_selected,
                "Draw the selected runs' curves on the training plots",
            ),
            (
                "loadRun",
                "Load into builder",
                self.load_selected,
                "Put this run's network and settings back into the builder (double-click does the same)",
            ),
            ("continueRun", "Continue…", self.continue_selected, "Train this run for more epochs"),
            ("evaluateRun", "Evaluate", self.evaluate_selected, "Evaluate this run's final weights"),
            ("renameRun", "Rename…", self.rename_selected, "Give this run another name (its folder keeps its own)"),
            ("deleteRun", "Delete…", self.delete_selected, "Delete the selected runs' folders"),
        )
        buttons = {}
        for name, text, slot, tip in actions:
            button = QPushButton(text)
            button.setObjectName(name)
            button.setProperty("defaultToolTip", tip)
            button.setToolTip(tip)
            button.clicked.connect(lambda _checked=False, slot=slot: slot())
            buttons[name] = button
        return buttons

    def _button_row(self, names: list[str], leading: QWidget | None = None) -> QHBoxLayout:
        row = QHBoxLayout()
        if leading is not None:
            row.addWidget(leading, 1)
        for name in names:
            row.addWidget(self._buttons[name])
        if leading is None:
            row.addStretch(1)
        return row

    def add_action_button(self, name: str, text: str, action: QAction, after: str = "refreshRuns") -> QPushButton:
        """A button called ``name`` showing ``text`` beside the button ``after``, that triggers ``action`` and is
        enabled with it (the window's File → Runs Folder… becomes a button next to Refresh)."""
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(action.toolTip())
        button.setEnabled(action.isEnabled())
        button.clicked.connect(lambda _checked=False: action.trigger())
        action.enabledChanged.connect(button.setEnabled)
        row = self._folder_row if self._folder_row.indexOf(self._buttons[after]) >= 0 else self._row
        row.insertWidget(row.indexOf(self._buttons[after]) + 1, button)
        self._buttons[name] = button
        return button

    # Reading the runs

    @property
    def root(self) -> Path:
        """The folder whose runs are listed."""
        return self._root

    def set_root(self, root: str | os.PathLike) -> None:
        """List the runs of another folder."""
        self._root = Path(root)
        self.refresh()

    def refresh(self) -> None:
        """Read the runs folder again, keeping the selected runs selected where they still exist."""
        self.folder_label.setText(f"Runs folder: {self._root}")
        selected = self.selected_folders()
        self._summaries = {summary.folder: summary for summary in list_runs(self._root, experiments=True)}
        self._model.setRowCount(0)
        for summary in self._summaries.values():
            self._model.appendRow(_row_items(summary))
        self._fit_columns()
        self.select_folders(selected)
        self._selection_changed()

    def _fit_columns(self) -> None:
        """Columns as wide as their contents, but no wider than :data:`MAX_COLUMN_WIDTH` (long networks elide)."""
        self.table.resizeColumnsToContents()
        for column in range(len(COLUMNS)):
            if self.table.columnWidth(column) > MAX_COLUMN_WIDTH:
                self.table.setColumnWidth(column, MAX_COLUMN_WIDTH)

    def set_busy_folder(self, folder: str | os.PathLike | None) -> None:
        """Mark the run training now (None: none), which cannot be continued or deleted meanwhile."""
        self._busy = {Path(folder)} if folder is not None else set()
        self._selection_changed()

    def summaries(self) -> list[RunSummary]:
        """The runs listed, in the table's current order."""
        return [self._summaries[folder] for folder in self._folders_in_order()]

    # Selection and table contents, for the main window and tests

    def selected_folders(self) -> list[Path]:
        """The folders of the selected runs, in the table's order."""
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return [folder for row, folder in enumerate(self._folders_in_order()) if row in rows]

    def select_folders(self, folders: list[Path]) -> None:
        """Select the runs in ``folders`` (those still listed), and nothing else."""
        wanted = {Path(folder) for folder in folders}
        selection = QItemSelection()
        for row, folder in enumerate(self._folders_in_order()):
            if folder in wanted:
                selection.select(self._proxy.index(row, 0), self._proxy.index(row, len(COLUMNS) - 1))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().select(selection, flags)

    def row_texts(self) -> list[list[str]]:
        """Every row's texts, as shown, in the table's current order."""
        return [
            [self._proxy.index(row, column).data() for column in range(len(COLUMNS))]
            for row in range(self._proxy.rowCount())
        ]

    def sort_by(self, column_name: str, descending: bool = False) -> None:
        """Sort the table as a click on the header ``column_name`` (one of :data:`COLUMNS`) would."""
        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        self.table.sortByColumn(COLUMNS.index(column_name), order)

    def button(self, object_name: str) -> QPushButton:
        """The button with this object name (refreshRuns, overlayRuns, loadRun, continueRun, …)."""
        return self._buttons[object_name]

    def _folders_in_order(self) -> list[Path]:
        return [self._proxy.index(row, 0).data(FOLDER_ROLE) for row in range(self._proxy.rowCount())]

    def _selected(self) -> list[RunSummary]:
        # While refresh() rebuilds the rows, the selection may still name runs that have gone.
        return [self._summaries[folder] for folder in self.selected_folders() if folder in self._summaries]

    # What the selection allows

    def _selection_changed(self, *_: Any) -> None:
        runs = self._selected()
        reasons = {
            "overlayRuns": self._why_not_overlay(runs),
            "loadRun": self._why_not_single(runs, "load"),
            "continueRun": self._why_not_continue(runs),
            "evaluateRun": self._why_not_evaluate(runs),
            "renameRun": self._why_not_single(runs, "rename"),
            "deleteRun": self._why_not_delete(runs),
        }
        for name, reason in reasons.items():
            button = self._buttons[name]
            button.setEnabled(reason is None)
            button.setToolTip(reason or button.property("defaultToolTip"))
        self.details.setText(self._describe(runs))
        self._mark_differences()

    @staticmethod
    def _why_not_overlay(runs: list[RunSummary]) -> str | None:
        if not any(not run.damaged for run in runs):
            return "Select one or more runs that are not damaged to overlay their curves."
        return None

    @staticmethod
    def _why_not_single(runs: list[RunSummary], verb: str) -> str | None:
        if len(runs) != 1:
            return f"Select one run to {verb} it."
        if runs[0].damaged:
            return f"This run is damaged: {runs[0].problem}"
        return None

    def _why_not_continue(self, runs: list[RunSummary]) -> str | None:
        reason = self._why_not_single(runs, "continue")
        if reason:
            return reason
        if runs[0].folder in self._busy:
            return "This run is training now."
        if runs[0].checkpoint_epoch is None:
            return f"This run cannot be continued: {runs[0].problem or NO_CHECKPOINT}"
        return None

    def _why_not_evaluate(self, runs: list[RunSummary]) -> str | None:
        reason = self._why_not_single(runs, "evaluate")
        if reason is None and not runs[0].has_weights:
            return "This run has no final weights (model.safetensors) to evaluate: it never ended."
        return reason

    def _why_not_delete(self, runs: list[RunSummary]) -> str | None:
        if not runs:
            return "Select the runs to delete."
        if any(run.folder in self._busy for run in runs):
            return "A selected run is training now."
        return None

    def differing_columns(self) -> list[str]:
        """The setting columns (:data:`SETTING_COLUMNS`) whose values differ between the selected runs."""
        runs = self._selected()
        if len(runs) < 2:
            return []
        cells = [dict(zip(COLUMNS, (text for text, _ in _cells(run)))) for run in runs]
        return [column for column in SETTING_COLUMNS if len({row[column] for row in cells}) > 1]

    def _mark_differences(self) -> None:
        """Draw bold the selected runs' cells of the settings they differ in; every other cell plain."""
        differing = set(self.differing_columns())
        selected = set(self.selected_folders())
        for row in range(self._model.rowCount()):
            for column, name in enumerate(COLUMNS):
                item = self._model.item(row, column)
                if name not in SETTING_COLUMNS or item is None:
                    continue
                marked = name in differing and item.data(FOLDER_ROLE) in selected
                if item.font().bold() != marked:
                    font = QFont(item.font())
                    font.setBold(marked)
                    item.setFont(font)

    def _describe(self, runs: list[RunSummary]) -> str:
        """The details line: the selected run's folder, status and problem, or what the table holds."""
        if len(runs) > 1:
            differing = self.differing_columns()
            if not differing:
                return f"{len(runs)} runs selected, with the same settings in every column."
            return f"{len(runs)} runs selected; they differ in {', '.join(differing).lower()} (in bold)."
        if not runs:
            count = len(self._summaries)
            return (
                f"{count} run{'s' if count != 1 else ''} in {self._root}."
                if count
                else f"No runs in {self._root} yet: the runs you train appear here."
            )
        run = runs[0]
        lines = [f"Folder: {run.folder}", f"Status: {run.status}" + (f" — {run.message}" if run.message else "")]
        if run.problem:
            lines.append(f"Problem: {run.problem}")
        return "\n".join(lines)

    # Actions

    def overlay_selected(self) -> None:
        """Emit :attr:`overlayRequested` with the names, histories and folders of the selected runs that are not
        damaged."""
        runs, problems = [], []
        for summary in self._selected():
            if summary.damaged:
                continue
            try:
                runs.append((summary.name, read_metrics(summary.folder), summary.folder))
            except RunError as error:
                problems.append(str(error))
        if problems:
            self._report("Cannot overlay every run", "\n".join(problems))
        if runs:
            self.overlayRequested.emit(runs)

    def load_selected(self, *_: Any) -> None:
        """Emit :attr:`loadRequested` with the selected run's folder, if exactly one usable run is selected."""
        runs = self._selected()
        if self._why_not_single(runs, "load") is None:
            self.loadRequested.emit(runs[0].folder)

    def continue_selected(self, epochs: int | None = None) -> None:
        """Emit :attr:`continueRequested` for the selected run, with ``epochs`` more epochs (asked for when
        interactive and not given, else :data:`DEFAULT_EXTRA_EPOCHS`)."""
        runs = self._selected()
        reason = self._why_not_continue(runs)
        if reason:
            self._report("Cannot continue", reason)
            return
        if epochs is None:
            epochs = self._ask_epochs(runs[0]) if self.interactive else DEFAULT_EXTRA_EPOCHS
            if epochs is None:
                return
        if not 1 <= epochs <= MAX_EXTRA_EPOCHS:
            self._report("Cannot continue", f"Continue for 1 to {MAX_EXTRA_EPOCHS} epochs, not {epochs}.")
            return
        self.continueRequested.emit(runs[0].folder, epochs)

    def evaluate_selected(self) -> None:
        """Emit :attr:`evaluateRequested` with the selected run's folder, if it has final weights."""
        runs = self._selected()
        reason = self._why_not_evaluate(runs)
        if reason:
            self._report("Cannot evaluate", reason)
            return
        self.evaluateRequested.emit(runs[0].folder)

    def rename_selected(self, name: str | None = None) -> None:
        """Rename the selected run to ``name`` (asked for when interactive and not given; without a name
        and not interactive, nothing happens)."""
        runs = self._selected()
        reason = self._why_not_single(runs, "rename")
        if reason:
            self._report("Cannot rename", reason)
            return
        if name is None:
            name = self._ask_name(runs[0]) if self.interactive else None
            if name is None:
                return
        try:
            rename_run(runs[0].folder, name)
        except RunError as error:
            self._report("Cannot rename the run", str(error))
            return
        self.refresh()
        self.runsChanged.emit()

    def delete_selected(self) -> None:
        """Delete the selected runs' folders, after asking when interactive."""
        runs = self._selected()
        reason = self._why_not_delete(runs)
        if reason:
            self._report("Cannot delete", reason)
            return
        if self.interactive and not self._confirm_delete(runs):
            return
        problems = []
        for run in runs:
            try:
                delete_run(run.folder, root=self._root)
            except RunError as error:
                problems.append(str(error))
        self.refresh()
        if len(problems) < len(runs):
            self.runsChanged.emit()
        if problems:
            self._report("Cannot delete every run", "\n".join(problems))

    # Dialogs, skipped when not interactive

    def _ask_epochs(self, run: RunSummary) -> int | None:
        epochs, accepted = QInputDialog.getInt(
            self,
            "Continue run",
            f"Train “{run.name}” for how many more epochs?\n"
            f"It continues from its checkpoint after epoch {run.checkpoint_epoch}.",
            DEFAULT_EXTRA_EPOCHS,
            1,
            MAX_EXTRA_EPOCHS,
        )
        return epochs if accepted else None

    def _ask_name(self, run: RunSummary) -> str | None:
        name, accepted = QInputDialog.getText(
            self,
            "Rename run",
            f"New name (at most {MAX_NAME_LENGTH} characters; the folder keeps its name):",
            QLineEdit.EchoMode.Normal,
            run.name,
        )
        return name if accepted else None

    def _confirm_delete(self, runs: list[RunSummary]) -> bool:
        names = "\n".join(f"• {run.name}" for run in runs[:NAMES_IN_CONFIRMATION])
        if len(runs) > NAMES_IN_CONFIRMATION:
            names += f"\n… and {len(runs) - NAMES_IN_CONFIRMATION} more"
        question = (
            f"Delete {'this run' if len(runs) == 1 else f'these {len(runs)} runs'} and every file in "
            f"{'its folder' if len(runs) == 1 else 'their folders'}? This cannot be undone.\n\n{names}"
        )
        answer = QMessageBox.question(
            self,
            "Delete runs",
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _report(self, title: str, message: str) -> None:
        """A message box when interactive, else the details line; :attr:`last_error` keeps the message."""
        self.last_error = message
        if self.interactive:
            QMessageBox.warning(self, title, message)
        else:
            self.details.setText(f"{title}: {message}")
