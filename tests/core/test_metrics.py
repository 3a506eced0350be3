"""Evaluation figures against scikit-learn, per-item look-ups, the most confused pairs, the JSON round trip and
evaluate_model."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix
from torch import nn

from workbench.core.errors import RunError
from workbench.core.runs.metrics import Evaluation, evaluate_model, evaluation_from_predictions

NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Ankle boot")
NEVER_PREDICTED = 2
NEVER_PRESENT = 4


@pytest.fixture(scope="module")
def scored():
    """``(labels, probabilities, predictions, evaluation)``: 300 random items, one class never predicted, one absent."""
    rng = np.random.default_rng(20240611)
    labels = rng.integers(0, NEVER_PRESENT, 300)
    probabilities = rng.dirichlet(np.ones(len(NAMES)), len(labels))
    probabilities[:, NEVER_PREDICTED] = 0.0
    predictions = probabilities.argmax(axis=1)
    assert NEVER_PREDICTED in labels and NEVER_PREDICTED not in predictions
    assert NEVER_PRESENT not in labels and NEVER_PRESENT in predictions
    return labels, probabilities, predictions, evaluation_from_predictions(labels, probabilities, NAMES)


def _report(labels, predictions, **options):
    return classification_report(
        labels, predictions, labels=range(len(NAMES)), target_names=NAMES, zero_division=0, **options
    )


def test_the_confusion_matrix_is_scikit_learns(scored):
    labels, _, predictions, evaluation = scored
    expected = confusion_matrix(labels, predictions, labels=range(len(NAMES)))
    assert evaluation.confusion.dtype == np.int64
    np.testing.assert_array_equal(evaluation.confusion, expected)
    assert not evaluation.confusion[:, NEVER_PREDICTED].any() and not evaluation.confusion[NEVER_PRESENT].any()


def test_scores_and_accuracy_are_scikit_learns(scored):
    labels, _, predictions, evaluation = scored
    report = _report(labels, predictions, output_dict=True)
    for scores in (*evaluation.classes, evaluation.macro, evaluation.weighted):
        expected = report[scores.name]
        assert (scores.precision, scores.recall, scores.f1) == pytest.approx(
            (expected["precision"], expected["recall"], expected["f1-score"])
        )
        assert scores.support == expected["support"]
    assert [scores.name for scores in evaluation.classes] == list(NAMES)
    assert (evaluation.macro.name, evaluation.weighted.name) == ("macro avg", "weighted avg")
    assert evaluation.accuracy == pytest.approx(accuracy_score(labels, predictions))
    assert evaluation.classes[NEVER_PREDICTED].precision == 0 and evaluation.classes[NEVER_PRESENT].support == 0


def test_the_text_is_classification_reports_with_three_digits(scored):
    labels, _, predictions, evaluation = scored
    assert evaluation.as_text() == _report(labels, predictions, digits=3)


def test_each_item_keeps_its_label_prediction_and_confidence(scored):
    labels, probabilities, predictions, evaluation = scored
    np.testing.assert_array_equal(evaluation.labels, labels)
    np.testing.assert_array_equal(evaluation.predictions, predictions)
    np.testing.assert_allclose(evaluation.confidences, probabilities.max(axis=1))
    assert evaluation.count == len(labels)
    with pytest.raises(ValueError):
        evaluation.labels[0] = 1


def test_items_are_the_indices_of_a_cell_row_or_column(scored):
    labels, _, predictions, evaluation = scored
    for true_class in range(len(NAMES)):
        for predicted_class in range(len(NAMES)):
            expected = np.flatnonzero((labels == true_class) & (predictions == predicted_class))
            np.testing.assert_array_equal(evaluation.items(true_class, predicted_class), expected)
            assert len(expected) == evaluation.confusion[true_class, predicted_class]
        np.testing.assert_array_equal(evaluation.items(true_class), np.flatnonzero(labels == true_class))
        np.testing.assert_array_equal(
            evaluation.items(predicted_class=true_class), np.flatnonzero(predictions == true_class)
        )
    np.testing.assert_array_equal(evaluation.items(), np.arange(len(labels)))


def _plain_json(value) -> bool:
    if isinstance(value, dict):
        return all(type(key) is str and _plain_json(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_plain_json(item) for item in value)
    return type(value) in (str, int, float, bool)


def test_the_json_round_trip_restores_everything(scored):
    evaluation = scored[3]
    document = evaluation.to_dict()
    assert _plain_json(document)
    restored = Evaluation.from_dict(json.loads(json.dumps(document)))
    for name in ("accuracy", "classes", "macro", "weighted", "class_names"):
        assert getattr(restored, name) == getattr(evaluation, name)
    for name in ("confusion", "labels", "predictions", "confidences"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(evaluation, name))
        assert getattr(restored, name).dtype == getattr(evaluation, name).dtype
    assert restored.as_text() == evaluation.as_text()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format": "workbench-architecture"}, "not a workbench evaluation"),
        ({"version": 99}, "version 99"),
        ({"confusion": None}, "damaged"),
    ],
)
def test_a_document_that_is_not_an_evaluation_is_refused(scored, change, message):
    with pytest.raises(RunError, match=message):
        Evaluation.from_dict({**scored[3].to_dict(), **change})


@pytest.mark.parametrize(
    "labels, probabilities, message",
    [
        ([0, 1], np.full((2, 3), 1 / 3), "shape \\(items, 5\\)"),
        ([0, 1, 2], np.full((2, 5), 0.2), "3 labels but 2 rows"),
        ([0, 5], np.full((2, 5), 0.2), "label 5 names no class"),
        ([], np.empty((0, 5)), "no items"),
    ],
)
def test_inconsistent_inputs_are_refused(labels, probabilities, message):
    with pytest.raises(ValueError, match=message):
        evaluation_from_predictions(labels, probabilities, NAMES)


def test_evaluate_model_scores_a_torch_models_predictions():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, len(NAMES)))
    inputs = torch.randn(64, 6)
    labels = torch.randint(0, len(NAMES), (64,))
    with torch.no_grad():
        probabilities = torch.softmax(model(inputs), dim=1)
    evaluation = evaluate_model(model, inputs, labels, NAMES)
    np.testing.assert_array_equal(evaluation.predictions, probabilities.argmax(dim=1).numpy())
    np.testing.assert_allclose(evaluation.confidences, probabilities.max(dim=1).values.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(evaluation.labels, labels.numpy())
    assert evaluation.accuracy == pytest.approx((probabilities.argmax(dim=1) == labels).float().mean().item())
    assert model.training


def _from_cells(cells, names=NAMES):
    """An Evaluation whose confusion matrix holds ``cells[(t, p)]`` items of class ``t`` predicted as ``p``."""
    labels = [t for (t, _), count in cells.items() for _ in range(count)]
    predictions = [p for (_, p), count in cells.items() for _ in range(count)]
    probabilities = np.eye(len(names))[predictions]  # one-hot: the predicted class is sure
    return evaluation_from_predictions(labels, probabilities, names)


def test_most_confused_lists_the_mistakes_largest_first():
    evaluation = _from_cells({(0, 0): 50, (0, 1): 3, (1, 1): 40, (1, 3): 9, (3, 0): 5, (3, 3): 20, (2, 4): 1})
    pairs = evaluation.most_confused()
    assert [(pair.true_class, pair.predicted_class, pair.count) for pair in pairs] == [
        (1, 3, 9),
        (3, 0, 5),
        (0, 1, 3),
        (2, 4, 1),
    ]
    assert pairs[0].share == pytest.approx(9 / 49) and pairs[-1].share == 1.0


def test_most_confused_breaks_ties_by_true_then_predicted_class():
    evaluation = _from_cells({(3, 1): 4, (1, 3): 4, (1, 0): 4, (0, 4): 4, (2, 2): 10, (2, 0): 7})
    assert [(pair.true_class, pair.predicted_class) for pair in evaluation.most_confused()] == [
        (2, 0),
        (0, 4),
        (1, 0),
        (1, 3),
        (3, 1),
    ]


def test_most_confused_gives_at_most_count_pairs(scored):
    evaluation = scored[3]
    mistakes = evaluation.confusion.copy()
    np.fill_diagonal(mistakes, 0)
    assert len(evaluation.most_confused()) == 5 < np.count_nonzero(mistakes)
    assert [pair.count for pair in evaluation.most_confused(3)] == sorted(mistakes.ravel(), reverse=True)[:3]
    assert evaluation.most_confused(0) == []
    assert len(evaluation.most_confused(100)) == np.count_nonzero(mistakes)
    with pytest.raises(ValueError, match="0 or more"):
        evaluation.most_confused(-1)


def test_a_perfect_classifier_confuses_nothing():
    assert _from_cells({(0, 0): 5, (1, 1): 3, (4, 4): 1}).most_confused() == []


def test_the_sentence_names_both_classes_the_count_and_the_share():
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt")
    evaluation = _from_cells({(6, 6): 700, (6, 0): 142, (6, 4): 158, (0, 0): 999, (0, 6): 1}, names)
    pairs = {(pair.true_class, pair.predicted_class): pair for pair in evaluation.most_confused()}
    assert pairs[6, 0].sentence(names) == "Shirt taken for T-shirt/top: 142 times (14.2% of Shirt)"
    assert pairs[6, 0].share == pytest.approx(0.142)
    assert pairs[0, 6].sentence(names) == "T-shirt/top taken for Shirt: 1 time (0.1% of T-shirt/top)"


def test_large_counts_have_thousands_separators():
    sentence = _from_cells({(1, 2): 1234, (1, 1): 1}).most_confused()[0].sentence(NAMES)
    assert sentence == "Trouser taken for Pullover: 1,234 times (99.9% of Trouser)"
