"""The evaluation view: matrix cells and score rows say what the Evaluation holds; clicks name the right cell."""

import re

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QPushButton, QTableWidget

from workbench.core.runs.metrics import evaluation_from_predictions
from workbench.ui.views.evaluation import EvaluationView

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _evaluation(class_names=CLASSES, items=2000, seed=3):
    """Random predictions right about two times in three, with large counts so thousands separators show."""
    rng = np.random.default_rng(seed)
    classes = len(class_names)
    labels = rng.integers(0, classes, items)
    guesses = np.where(rng.random(items) < 0.65, labels, rng.integers(0, classes, items))
    probabilities = rng.dirichlet(np.ones(classes), items) * 0.3
    probabilities[np.arange(items), guesses] += 0.7
    return evaluation_from_predictions(labels, probabilities, class_names)


@pytest.fixture(scope="module")
def evaluation():
    return _evaluation(items=30_000)


@pytest.fixture
def view(qtbot, evaluation):
    widget = EvaluationView()
    qtbot.addWidget(widget)
    widget.show_evaluation(evaluation, "Test")
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_the_header_gives_accuracy_and_size(view, evaluation):
    assert view.findChild(QLabel, "header").text() == f"Test accuracy {evaluation.accuracy:.1%} (30,000 images)"


def test_every_cell_shows_its_count(view, evaluation):
    for true_class in range(len(CLASSES)):
        for predicted_class in range(len(CLASSES)):
            count = evaluation.confusion[true_class, predicted_class]
            assert view.cell_text(true_class, predicted_class) == f"{count:,}"
    assert "," in view.cell_text(0, 0)


def test_the_diagonal_is_green_and_mistakes_red(view):
    matrix = view.findChild(QTableWidget, "confusionMatrix")
    right = matrix.item(4, 4).background().color()
    wrong = matrix.item(4, 5).background().color()
    assert right.green() > right.red() and wrong.red() > wrong.green()


def test_the_table_rows_are_the_scores(view, evaluation):
    expected = [
        [scores.name, f"{scores.precision:.3f}", f"{scores.recall:.3f}", f"{scores.f1:.3f}", f"{scores.support:,}"]
        for scores in (*evaluation.classes, evaluation.macro, evaluation.weighted)
    ]
    assert view.table_rows() == expected
    assert view.table_rows()[-1][0] == "weighted avg" and view.table_rows()[-1][-1] == "30,000"


@pytest.mark.parametrize("cell", [(6, 0), (0, 6), (9, 9)])
def test_clicking_a_cell_names_its_true_and_predicted_class(qtbot, view, cell):
    matrix = view.findChild(QTableWidget, "confusionMatrix")
    centre = matrix.visualItemRect(matrix.item(*cell)).center()
    with qtbot.waitSignal(view.cellSelected, timeout=1000) as blocker:
        qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert blocker.args == list(cell)


def test_select_cell_acts_like_a_click(qtbot, view):
    with qtbot.waitSignal(view.cellSelected, timeout=1000) as blocker:
        view.select_cell(3, 4)
    assert blocker.args == [3, 4]
    matrix = view.findChild(QTableWidget, "confusionMatrix")
    assert (matrix.currentRow(), matrix.currentColumn()) == (3, 4)


def test_copy_puts_the_text_report_on_the_clipboard(qtbot, view, evaluation):
    QApplication.clipboard().clear()
    qtbot.mouseClick(view.findChild(QPushButton, "copy"), Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == evaluation.as_text()


def test_clear_empties_the_view_and_another_evaluation_refills_it(view):
    view.clear()
    assert view.evaluation is None and view.table_rows() == []
    assert not view.findChild(QPushButton, "copy").isEnabled()
    small = _evaluation(("cat", "dog", "bird"), items=60)
    view.show_evaluation(small, "Validation")
    assert view.evaluation is small
    assert len(view.table_rows()) == 5
    assert view.findChild(QTableWidget, "confusionMatrix").columnCount() == 3
    assert view.cell_text(2, 1) == str(small.confusion[2, 1])


def test_long_class_names_fit_without_scrolling(view):
    matrix = view.findChild(QTableWidget, "confusionMatrix")
    header = matrix.horizontalHeader()
    assert header.length() <= matrix.viewport().width()
    for column in range(len(CLASSES)):
        assert header.sectionSize(column) >= header.sectionSizeHint(column)


def test_showing_evaluations_again_does_not_widen_the_matrix(view, evaluation):
    matrix = view.findChild(QTableWidget, "confusionMatrix")
    first = matrix.minimumSize()
    for _ in range(3):  # one validation matrix per epoch, then the test matrix
        view.show_evaluation(evaluation, "Validation")
    assert matrix.minimumSize() == first


def _in_scroll_area(qtbot, evaluation, width):
    """The view as the Evaluation tab holds it, in a scroll area ``width`` pixels wide."""
    from PySide6.QtWidgets import QScrollArea

    scroll = QScrollArea()
    qtbot.addWidget(scroll)
    view = EvaluationView()
    scroll.setWidget(view)
    scroll.setWidgetResizable(True)
    view.show_evaluation(evaluation, "Test")
    scroll.resize(width, 1000)
    scroll.show()
    qtbot.waitExposed(scroll)
    # Settled: the view has the viewport's width and its layout has nothing left to redo.
    qtbot.waitUntil(lambda: view.width() == scroll.viewport().width() and not view.layout().activate())
    return scroll, view


def test_a_narrow_tab_puts_the_scores_below_the_matrix_with_nothing_cut_off(qtbot, evaluation):
    scroll, view = _in_scroll_area(qtbot, evaluation, 840)  # a 1,600-pixel window with both docks open
    matrix, scores = view.findChild(QTableWidget, "confusionMatrix"), view.findChild(QTableWidget, "scores")
    assert not view.side_by_side
    assert scroll.horizontalScrollBar().maximum() == 0
    assert matrix.geometry().right() <= scroll.viewport().width() and scores.geometry().right() <= view.width()
    assert scores.geometry().top() > matrix.geometry().bottom()
    assert scores.verticalScrollBar().maximum() == 0  # every class's row shows


def test_a_wide_tab_puts_the_scores_beside_the_matrix(qtbot, evaluation):
    scroll, view = _in_scroll_area(qtbot, evaluation, 1500)
    matrix, scores = view.findChild(QTableWidget, "confusionMatrix"), view.findChild(QTableWidget, "scores")
    assert view.side_by_side
    assert scores.geometry().left() > matrix.geometry().right()
    assert scroll.horizontalScrollBar().maximum() == 0
    scroll.resize(840, 1000)
    qtbot.waitUntil(lambda: not view.side_by_side, timeout=2000)


def test_an_evaluation_shown_after_the_tab_opened_is_arranged_for_its_size(qtbot, evaluation):
    from PySide6.QtWidgets import QScrollArea

    scroll = QScrollArea()
    qtbot.addWidget(scroll)
    view = EvaluationView()
    scroll.setWidget(view)
    scroll.setWidgetResizable(True)
    scroll.resize(840, 1000)
    scroll.show()
    qtbot.waitExposed(scroll)  # empty: small enough to sit side by side
    view.show_evaluation(evaluation, "Validation")
    qtbot.waitUntil(lambda: not view.side_by_side, timeout=2000)
    qtbot.waitUntil(lambda: scroll.horizontalScrollBar().maximum() == 0, timeout=2000)


def test_a_hidden_view_scores_and_fills_only_the_last_evaluation_when_shown(qtbot, evaluation):
    """A run hands the view a matrix at every epoch; behind another tab it computes and fills only the last."""
    view = EvaluationView()
    qtbot.addWidget(view)
    computed = []

    def later(epoch):
        def compute():
            computed.append(epoch)
            return evaluation

        return compute

    for epoch in (1, 2, 3):
        view.show_evaluation(later(epoch), f"Validation after epoch {epoch}:")
    matrix = view.findChild(QTableWidget, "confusionMatrix")
    assert computed == [] and matrix.rowCount() == 0
    assert view.findChild(QLabel, "mostConfused").text() == ""
    view.show()
    qtbot.waitExposed(view)
    assert computed == [3] and matrix.rowCount() == len(CLASSES)
    assert view.findChild(QLabel, "mostConfused").isVisible()
    assert view.findChild(QLabel, "header").text().startswith("Validation after epoch 3: accuracy")
    assert view.evaluation is evaluation and computed == [3]


def _from_cells(cells, class_names=CLASSES):
    """An evaluation whose confusion matrix holds ``cells[(t, p)]`` items of class ``t`` predicted as ``p``."""
    labels = [t for (t, _), count in cells.items() for _ in range(count)]
    predictions = [p for (_, p), count in cells.items() for _ in range(count)]
    return evaluation_from_predictions(labels, np.eye(len(class_names))[predictions], class_names)


SHIRTS = {(6, 6): 700, (6, 0): 142, (6, 4): 158, (0, 0): 900, (0, 6): 100, (2, 4): 1, (3, 3): 10}


def _links_in(label):
    """The (href, text) of every link in a rich-text label, in order."""
    return re.findall(r'<a href="([^"]*)">([^<]*)</a>', label.text())


def _shown(qtbot, evaluation):
    """A view showing ``evaluation``, its layout settled."""
    view = EvaluationView()
    qtbot.addWidget(view)
    view.show_evaluation(evaluation, "Test")
    view.resize(1600, 1200)  # room for everything: the window's default size squeezes the layout
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: not view.layout().activate())
    return view


def test_the_most_confused_pairs_are_listed_under_the_matrix(qtbot):
    view = _shown(qtbot, _from_cells(SHIRTS))
    assert view.confused_links() == [
        ("Shirt taken for Coat: 158 times (15.8% of Shirt)", 6, 4),
        ("Shirt taken for T-shirt/top: 142 times (14.2% of Shirt)", 6, 0),
        ("T-shirt/top taken for Shirt: 100 times (10.0% of T-shirt/top)", 0, 6),
        ("Pullover taken for Coat: 1 time (100.0% of Pullover)", 2, 4),
    ]
    label = view.findChild(QLabel, "mostConfused")
    assert label.isVisible() and label.wordWrap()
    assert label.text().startswith("<b>Most confused</b>")
    assert _links_in(label) == [(f"cell:{t}:{p}", sentence) for sentence, t, p in view.confused_links()]
    matrix = view.findChild(QTableWidget, "confusionMatrix")
    assert label.geometry().top() > matrix.geometry().bottom()
    assert label.geometry().height() >= label.heightForWidth(label.width())  # every line shows


def test_at_most_five_pairs_are_listed(view, evaluation):
    expected = [(pair.sentence(CLASSES), pair.true_class, pair.predicted_class) for pair in evaluation.most_confused()]
    assert view.confused_links() == expected and len(expected) == 5
    assert len(_links_in(view.findChild(QLabel, "mostConfused"))) == 5


def test_activating_a_pairs_link_selects_its_cell(qtbot):
    view = _shown(qtbot, _from_cells(SHIRTS))
    label = view.findChild(QLabel, "mostConfused")
    href = next(href for href, text in _links_in(label) if text.startswith("Shirt taken for T-shirt/top"))
    with qtbot.waitSignal(view.cellSelected, timeout=1000) as blocker:
        label.linkActivated.emit(href)
    assert blocker.args == [6, 0]


def test_a_perfect_evaluation_says_there_were_no_mistakes(qtbot):
    view = _shown(qtbot, _from_cells({(0, 0): 3, (5, 5): 2}))
    label = view.findChild(QLabel, "mostConfused")
    assert view.confused_links() == [] and _links_in(label) == []
    assert label.isVisible() and "No mistakes: every image was predicted right." in label.text()


def test_a_cleared_view_lists_no_pairs(view):
    label = view.findChild(QLabel, "mostConfused")
    assert label.isVisible()
    view.clear()
    assert not label.isVisible() and view.confused_links() == []


def test_the_list_of_pairs_wraps_rather_than_widen_the_view(qtbot):
    # The sentences are wider than this two-class matrix and its scores table.
    cells = {(0, 0): 10, (0, 1): 3, (1, 0): 1000, (1, 1): 1000}
    view = _shown(qtbot, _from_cells(cells, ("Shirt", "Sneaker with laces")))
    label = view.findChild(QLabel, "mostConfused")
    with_list = view.minimumSizeHint().width()
    label.hide()
    qtbot.waitUntil(lambda: not view.layout().activate())
    assert view.minimumSizeHint().width() == with_list
