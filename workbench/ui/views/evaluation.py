"""How a trained network does per class: a clickable confusion matrix and a precision / recall / F1 table.

The matrix is a table of coloured cells rather than a plot: class names stay whole in the headers, every
count is written in its cell, and clicking a cell is an ordinary table click. Cells are green on the
diagonal (predicted right) and red elsewhere (mistakes), as in the gallery; the colour's strength is the
share of the true class's images the cell holds (its row), so classes of different sizes compare fairly.
The strength grows with the square root of the share, so mistakes of a few percent show next to a
diagonal of 90%. Under the matrix, the most confused pairs of classes are written out, each a link to its
cell.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QBoxLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QPushButton,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.runs.metrics import ClassScores, Evaluation
from workbench.ui.images import RIGHT_COLOUR, WRONG_COLOUR

TEXT_COLOUR = "#202020"
ZERO_COLOUR = "#a0a0a0"
AVERAGE_BACKGROUND = "#f2f2f2"
RIGHT_MAP = pg.ColorMap([0.0, 0.5, 1.0], ["#ffffff", "#a1d99b", RIGHT_COLOUR])
WRONG_MAP = pg.ColorMap([0.0, 0.5, 1.0], ["#ffffff", "#fcae91", WRONG_COLOUR])
LIGHT_TEXT_BELOW = 150
SCORE_HEADERS = ("class", "precision", "recall", "F1", "support")
EMPTY_HEADER = "No evaluation yet"
CELL_PADDING = 6
WRAP_FROM = 8
RIGHT_ALIGNED = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
LEFT_ALIGNED = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
MOST_CONFUSED = 5
CELL_LINK = "cell"
NO_MISTAKES = "No mistakes: every image was predicted right."


def _strength(share: float) -> float:
    """Where a share of a row's images (0 to 1) falls on the colour scale."""
    return math.sqrt(share)


def _text_colour(background: QColor, count: int) -> QColor:
    luma = 0.299 * background.red() + 0.587 * background.green() + 0.114 * background.blue()
    if luma < LIGHT_TEXT_BELOW:
        return QColor("white")
    return QColor(TEXT_COLOUR if count else ZERO_COLOUR)


class _VerticalLabel(QWidget):
    """A label written bottom to top, for the matrix's row axis."""

    def __init__(self, text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self._text = text
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        return QSize(metrics.height() + 4, metrics.horizontalAdvance(self._text) + 8)

    minimumSizeHint = sizeHint

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setPen(QColor(TEXT_COLOUR))
        painter.translate(0, self.height())
        painter.rotate(-90)
        painter.drawText(QRectF(0, 0, self.height(), self.width()), Qt.AlignmentFlag.AlignCenter, self._text)


class _ColourScale(QWidget):
    """The matrix's two colour bars, right (green) above wrong (red), over shared ticks in percent."""

    TICKS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
    BARS = (("predicted right", RIGHT_MAP), ("predicted wrong", WRONG_MAP))
    BAR_HEIGHT = 10

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        line = self.fontMetrics().height()
        return QSize(360, len(self.BARS) * (max(line, self.BAR_HEIGHT) + 2) + line + 4)

    minimumSizeHint = sizeHint

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setPen(QColor(TEXT_COLOUR))
        metrics = self.fontMetrics()
        line = max(metrics.height(), self.BAR_HEIGHT) + 2
        half_tick = metrics.horizontalAdvance("100%") / 2 + 1
        left = max(metrics.horizontalAdvance(name) for name, _ in self.BARS) + 6 + half_tick
        width = self.width() - left - half_tick
        for row, (name, colour_map) in enumerate(self.BARS):
            painter.drawText(QRectF(0, row * line, left - half_tick - 6, line), RIGHT_ALIGNED, name)
            bar = QRectF(left, row * line + (line - self.BAR_HEIGHT) / 2, width, self.BAR_HEIGHT)
            painter.fillRect(bar, QBrush(colour_map.getGradient(bar.topLeft(), bar.topRight())))
            painter.drawRect(bar)
        top = len(self.BARS) * line
        for tick in self.TICKS:
            x = left + _strength(tick) * width
            painter.drawLine(QPointF(x, top - 2), QPointF(x, top + 2))
            painter.drawText(
                QRectF(x - half_tick, top + 2, 2 * half_tick, metrics.height()),
                Qt.AlignmentFlag.AlignCenter,
                f"{tick:.0%}",
            )


class _SelectionDelegate(QStyledItemDelegate):
    """Draws a selected cell in its own colour, framed in dark grey, instead of the style's highlight."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        plain = QStyleOptionViewItem(option)
        plain.state &= ~(QStyle.StateFlag.State_Selected | QStyle.StateFlag.State_HasFocus)
        super().paint(painter, plain, index)
        if option.state & QStyle.StateFlag.State_Selected:
            painter.save()
            painter.setPen(QPen(QColor(TEXT_COLOUR), 3))
            painter.drawRect(QRectF(option.rect).adjusted(2.5, 2.5, -2.5, -2.5))
            painter.restore()


def _wrapped(name: str) -> str:
    """A class name for a column header, broken onto two lines at a space or after a slash when it is long."""
    if len(name) < WRAP_FROM:
        return name
    for separator in (" ", "/"):
        head, found, tail = name.partition(separator)
        if found and head and tail:
            return f"{head}{found.strip()}\n{tail}"
    return name


def _read_only(text: str, alignment: Qt.AlignmentFlag) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    item.setTextAlignment(alignment)
    return item


def _matrix_cell(
    names: tuple[str, ...], true_class: int, predicted_class: int, count: int, total: int
) -> QTableWidgetItem:
    """One confusion-matrix cell: its count, coloured by its share of the row, with a sentence as tooltip."""
    share = count / total if total else 0.0
    right = true_class == predicted_class
    item = _read_only(f"{count:,}", Qt.AlignmentFlag.AlignCenter)
    background = (RIGHT_MAP if right else WRONG_MAP).mapToQColor([_strength(share)])[0]
    item.setBackground(background)
    item.setForeground(_text_colour(background, count))
    truth, guess = names[true_class], names[predicted_class]
    if right:
        font = QFont(item.font())
        font.setBold(True)
        item.setFont(font)
        item.setToolTip(f"{count:,} of the {total:,} {truth} images were predicted right ({share:.1%}).")
    else:
        item.setToolTip(f"{count:,} of the {total:,} {truth} images were predicted as {guess} ({share:.1%}).")
    return item


def _score_items(scores: ClassScores) -> list[QTableWidgetItem]:
    figures = [f"{value:.3f}" for value in (scores.precision, scores.recall, scores.f1)]
    return [
        _read_only(scores.name, LEFT_ALIGNED),
        *(_read_only(text, RIGHT_ALIGNED) for text in figures),
        _read_only(f"{scores.support:,}", RIGHT_ALIGNED),
    ]


class EvaluationView(QWidget):
    """A network's results on a split: confusion matrix on the left, per-class scores on the right, or below it
    when the view is too narrow for both side by side (it then asks only for the wider of the two).

    Clicking a matrix cell, one of the most confused pairs listed under it, or :meth:`select_cell` emits
    :attr:`cellSelected` with the cell's true and predicted class, so a gallery can show the images it counts.
    """

    cellSelected = Signal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._evaluation: Evaluation | Callable[[], Evaluation] | None = None
        self._pending_title: str | None = None
        self._header = QLabel(EMPTY_HEADER)
        self._header.setObjectName("header")
        self._header.setStyleSheet("QLabel { font-weight: bold; font-size: 12pt; }")
        self._copy = QPushButton("Copy")
        self._copy.setObjectName("copy")
        self._copy.setToolTip("Copy the scores as plain text, laid out like scikit-learn's classification_report")
        self._copy.clicked.connect(self._copy_text)
        self._matrix = _make_matrix()
        self._matrix.cellClicked.connect(self.cellSelected)
        self._scores = _make_scores()
        self._confused = _make_confused()
        self._confused.linkActivated.connect(self._open_link)
        self._links: list[tuple[str, int, int]] = []

        top = QHBoxLayout()
        top.addWidget(self._header, 1)
        top.addWidget(self._copy)
        self._matrix_layout = self._matrix_panel()
        self._body = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self._body.addLayout(self._matrix_layout, 3)
        self._body.addWidget(self._scores, 2)
        layout = self._outer_layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(self._body, 1)
        # the layout must not pin the view to its side-by-side width: minimumSizeHint says what it needs
        layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self.clear()

    @property
    def side_by_side(self) -> bool:
        """Whether the scores are beside the matrix (else below it)."""
        return self._body.direction() == QBoxLayout.Direction.LeftToRight

    def minimumSizeHint(self) -> QSize:
        """Wide enough for the wider of the matrix and the scores; as tall as the current arrangement needs."""
        margins = self._outer_layout.contentsMargins()
        width = max(self._matrix_layout.minimumSize().width(), self._scores.minimumWidth())
        return QSize(width + margins.left() + margins.right(), self._outer_layout.minimumSize().height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange(event.size().width())

    def _arrange(self, width: int) -> None:
        """Scores beside the matrix if ``width`` has room for both, else below it."""
        self._matrix_layout.invalidate()  # its cached minimum may predate the matrix's new size
        margins = self._outer_layout.contentsMargins()
        needed = (
            self._matrix_layout.minimumSize().width()
            + self._body.spacing()
            + self._scores.minimumWidth()
            + margins.left()
            + margins.right()
        )
        direction = QBoxLayout.Direction.LeftToRight if width >= needed else QBoxLayout.Direction.TopToBottom
        if direction != self._body.direction():
            self._body.setDirection(direction)
            self._body.setStretch(1, 2 if direction == QBoxLayout.Direction.LeftToRight else 0)
            self.updateGeometry()  # a scroll area around the view learns the new height

    def _matrix_panel(self) -> QGridLayout:
        legend = QLabel(
            "Colour strength: the share of the true class's images in the cell (each row adds up to 100%).",
            wordWrap=True,
        )
        panel = QGridLayout()
        panel.setSpacing(4)
        panel.addWidget(QLabel("Confusion matrix: click a cell to see its images"), 0, 0, 1, 2)
        panel.addWidget(QLabel("predicted class", alignment=Qt.AlignmentFlag.AlignCenter), 1, 1)
        panel.addWidget(_VerticalLabel("true class"), 2, 0)
        panel.addWidget(self._matrix, 2, 1)
        panel.addWidget(_ColourScale(), 3, 1)
        panel.addWidget(legend, 4, 1)
        panel.addWidget(self._confused, 5, 1)
        panel.setRowStretch(2, 1)
        return panel

    @property
    def evaluation(self) -> Evaluation | None:
        """The evaluation shown, None when cleared."""
        if callable(self._evaluation):
            self._evaluation = self._evaluation()
        return self._evaluation

    def show_evaluation(self, evaluation: Evaluation | Callable[[], Evaluation], title: str) -> None:
        """Show ``evaluation``; ``title`` names the split, e.g. "Test" gives "Test accuracy 84.3% (10,000 images)".

        While the view is hidden (another tab in front) the tables are filled when it is next shown: a run hands
        it a matrix at every epoch, and filling the tables takes the window's thread for tens of milliseconds.
        ``evaluation`` may be a function that computes it, called only when the view is shown or
        :attr:`evaluation` is read.
        """
        self._evaluation, self._pending_title = evaluation, title
        if self.isVisible():
            self._fill_pending()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._fill_pending()

    def _fill_pending(self) -> None:
        if self._pending_title is None:
            return
        evaluation, title, self._pending_title = self.evaluation, self._pending_title, None
        assert evaluation is not None, "an evaluation is pending only once it was given"
        self._header.setText(f"{title} accuracy {evaluation.accuracy:.1%} ({evaluation.count:,} images)")
        self._copy.setEnabled(True)
        self._fill_matrix(evaluation)
        self._fill_confused(evaluation)
        self._fill_scores(evaluation)
        self._arrange(self.width())  # the new figures may need more room than the last ones

    def clear(self) -> None:
        """Show nothing, as before the first evaluation."""
        self._evaluation = self._pending_title = None
        self._header.setText(EMPTY_HEADER)
        self._copy.setEnabled(False)
        self._matrix.setRowCount(0)
        self._matrix.setColumnCount(0)
        self._scores.setRowCount(0)
        self._links = []
        self._confused.clear()
        self._confused.hide()

    def cell_text(self, true_class: int, predicted_class: int) -> str:
        """The text of the matrix cell in row ``true_class`` and column ``predicted_class``."""
        self._fill_pending()
        return _item_text(self._matrix.item(true_class, predicted_class))

    def table_rows(self) -> list[list[str]]:
        """The scores table as text, row by row: one row per class, then the macro and weighted averages."""
        self._fill_pending()
        return [
            [_item_text(self._scores.item(row, column)) for column in range(self._scores.columnCount())]
            for row in range(self._scores.rowCount())
        ]

    def confused_links(self) -> list[tuple[str, int, int]]:
        """The most confused pairs listed under the matrix, most frequent first, as (sentence, true class,
        predicted class); empty when there were no mistakes or there is no evaluation."""
        self._fill_pending()
        return list(self._links)

    def select_cell(self, true_class: int, predicted_class: int) -> None:
        """Select a matrix cell as a click would, emitting :attr:`cellSelected`."""
        self._fill_pending()
        self._matrix.setCurrentCell(true_class, predicted_class)
        self.cellSelected.emit(true_class, predicted_class)

    def _fill_matrix(self, evaluation: Evaluation) -> None:
        names = evaluation.class_names
        self._matrix.clearSelection()
        self._matrix.setRowCount(len(names))
        self._matrix.setColumnCount(len(names))
        self._matrix.setHorizontalHeaderLabels([_wrapped(name) for name in names])
        self._matrix.setVerticalHeaderLabels(list(names))
        for true_class, row in enumerate(evaluation.confusion.tolist()):
            total = sum(row)
            for predicted_class, count in enumerate(row):
                self._matrix.setItem(
                    true_class, predicted_class, _matrix_cell(names, true_class, predicted_class, count, total)
                )
        self._fit_matrix()

    def _fill_confused(self, evaluation: Evaluation) -> None:
        pairs = evaluation.most_confused(MOST_CONFUSED)
        self._links = [(pair.sentence(evaluation.class_names), pair.true_class, pair.predicted_class) for pair in pairs]
        lines = [_confused_link(*link) for link in self._links] or [NO_MISTAKES]
        self._confused.setText("<br>".join(["<b>Most confused</b>", *lines]))
        self._confused.show()

    def _open_link(self, href: str) -> None:
        """Emit :attr:`cellSelected` for a ``cell:T:P`` link of the most confused pairs."""
        kind, _, cell = href.partition(":")
        true_class, _, predicted_class = cell.partition(":")
        if kind == CELL_LINK and true_class.isdigit() and predicted_class.isdigit():
            self.cellSelected.emit(int(true_class), int(predicted_class))

    def _fit_matrix(self) -> None:
        """Give every cell room for its header, its count and a margin: the matrix never scrolls."""
        matrix, columns, rows = self._matrix, self._matrix.horizontalHeader(), self._matrix.verticalHeader()
        count = matrix.columnCount()
        for header in (columns, rows):
            header.setMinimumSectionSize(-1)  # the style's default: else the hints below include the last fit's size
        width = max(max(columns.sectionSizeHint(c), matrix.sizeHintForColumn(c)) for c in range(count)) + CELL_PADDING
        height = max(max(rows.sectionSizeHint(r), matrix.sizeHintForRow(r)) for r in range(count)) + CELL_PADDING
        columns.setMinimumSectionSize(width)
        rows.setMinimumSectionSize(height)
        frame = 2 * matrix.frameWidth()
        matrix.setMinimumSize(
            rows.sizeHint().width() + count * width + frame, columns.sizeHint().height() + count * height + frame
        )

    def _fill_scores(self, evaluation: Evaluation) -> None:
        rows = [*evaluation.classes, evaluation.macro, evaluation.weighted]
        self._scores.setRowCount(len(rows))
        for row, scores in enumerate(rows):
            for column, item in enumerate(_score_items(scores)):
                if row >= len(evaluation.classes):
                    item.setBackground(QColor(AVERAGE_BACKGROUND))
                self._scores.setItem(row, column, item)
        self._fit_scores()

    def _fit_scores(self) -> None:
        """Make the scores table wide enough for every column, the numbers' columns equally wide, and tall enough
        for every row."""
        scores, header = self._scores, self._scores.horizontalHeader()
        hints = [max(header.sectionSizeHint(c), scores.sizeHintForColumn(c)) for c in range(scores.columnCount())]
        header.setMinimumSectionSize(max(hints[1:]))
        numbers = (len(hints) - 1) * max(hints[1:])
        scroll_bar = scores.verticalScrollBar().sizeHint().width()
        scores.setMinimumWidth(hints[0] + numbers + 2 * scores.frameWidth() + scroll_bar)
        rows = scores.verticalHeader().length()
        scores.setMinimumHeight(header.sizeHint().height() + rows + 2 * scores.frameWidth())

    def _copy_text(self) -> None:
        evaluation = self.evaluation
        if evaluation is not None:  # the button is disabled while there is none
            QApplication.clipboard().setText(evaluation.as_text())


def _item_text(item: QTableWidgetItem | None) -> str:
    """The text of a table cell that was filled in."""
    if item is None:
        raise IndexError("That table cell is empty: there is no such row or column in the evaluation shown.")
    return item.text()


def _make_matrix() -> QTableWidget:
    matrix = QTableWidget()
    matrix.setObjectName("confusionMatrix")
    matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    matrix.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    matrix.setItemDelegate(_SelectionDelegate(matrix))
    matrix.setStyleSheet("QTableWidget { background: white; gridline-color: #d0d0d0; }")
    matrix.setCornerButtonEnabled(False)
    matrix.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    matrix.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    matrix.viewport().setCursor(Qt.CursorShape.PointingHandCursor)
    for header in (matrix.horizontalHeader(), matrix.verticalHeader()):
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionsClickable(False)
        header.setHighlightSections(False)
    matrix.verticalHeader().setDefaultAlignment(RIGHT_ALIGNED)
    return matrix


def _confused_link(sentence: str, true_class: int, predicted_class: int) -> str:
    """One line of the most confused pairs: the sentence, linking to the pair's matrix cell."""
    return f'<a href="{CELL_LINK}:{true_class}:{predicted_class}">{html.escape(sentence)}</a>'


def _make_confused() -> QLabel:
    label = QLabel()
    label.setObjectName("mostConfused")
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)  # long class names wrap rather than widen the view past the matrix
    label.setTextInteractionFlags(
        Qt.TextInteractionFlag.LinksAccessibleByMouse | Qt.TextInteractionFlag.LinksAccessibleByKeyboard
    )
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


def _make_scores() -> QTableWidget:
    scores = QTableWidget(0, len(SCORE_HEADERS))
    scores.setObjectName("scores")
    for column, name in enumerate(SCORE_HEADERS):
        scores.setHorizontalHeaderItem(column, _read_only(name, LEFT_ALIGNED if column == 0 else RIGHT_ALIGNED))
    scores.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    scores.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    scores.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    scores.verticalHeader().hide()
    scores.verticalHeader().setDefaultSectionSize(scores.fontMetrics().height() + CELL_PADDING)
    scores.setStyleSheet("QTableWidget { background: white; gridline-color: #e0e0e0; }")
    scores.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    scores.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
    return scores
