"""How a trained classifier does on a split: accuracy, per-class scores and the confusion matrix.

The figures come from scikit-learn, the library the class evaluates with, so they match what a student
computes by hand with ``accuracy_score`` and ``classification_report``. An :class:`Evaluation` also keeps
every item's true class, predicted class and confidence, so a view can list the images of one
confusion-matrix cell, and names its most confused pairs of classes (:meth:`Evaluation.most_confused`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from torch import nn

from workbench.core.errors import RunError
from workbench.core.training.engine import predict

FORMAT = "workbench-evaluation"
VERSION = 1
SCORE_DIGITS = 3


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall and F1 of one class (or their macro / weighted average) and its number of true items."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict:
        """The scores as plain JSON values."""
        return {
            "name": self.name,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ClassScores:
        """The inverse of :meth:`to_dict`."""
        return cls(
            str(data["name"]), float(data["precision"]), float(data["recall"]), float(data["f1"]), int(data["support"])
        )


@dataclass(frozen=True)
class ConfusedPair:
    """One off-diagonal confusion-matrix cell: ``count`` items of ``true_class`` predicted as ``predicted_class``.

    ``share`` is the cell's share of the true class's items (``count`` over its row's total), 0 when the
    class has none.
    """

    true_class: int
    predicted_class: int
    count: int
    share: float

    def sentence(self, class_names: Sequence[str]) -> str:
        """The pair in words, e.g. "Shirt taken for T-shirt/top: 142 times (14.2% of Shirt)"."""
        truth, guess = class_names[self.true_class], class_names[self.predicted_class]
        times = "time" if self.count == 1 else "times"
        return f"{truth} taken for {guess}: {self.count:,} {times} ({self.share:.1%} of {truth})"


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A classifier's results on one split.

    ``confusion[t, p]`` counts the items of true class ``t`` predicted as ``p`` (rows are true classes,
    columns predicted ones). ``labels``, ``predictions`` and ``confidences`` (the predicted class's
    probability) hold one value per item, in the split's order; all arrays are read-only.
    """

    accuracy: float
    classes: tuple[ClassScores, ...]
    macro: ClassScores
    weighted: ClassScores
    confusion: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    confidences: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        for array in (self.confusion, self.labels, self.predictions, self.confidences):
            array.setflags(write=False)

    @property
    def count(self) -> int:
        """How many items were evaluated."""
        return len(self.labels)

    def items(self, true_class: int | None = None, predicted_class: int | None = None) -> np.ndarray:
        """Indices of the items of ``true_class`` predicted as ``predicted_class``, in increasing order.

        Leaving one out takes every class for it: ``items(t)`` is row ``t`` of the confusion matrix,
        ``items(predicted_class=p)`` column ``p``, ``items()`` every item.
        """
        chosen = np.ones(self.count, dtype=bool)
        if true_class is not None:
            chosen &= self.labels == true_class
        if predicted_class is not None:
            chosen &= self.predictions == predicted_class
        return np.flatnonzero(chosen)

    def most_confused(self, count: int = 5) -> list[ConfusedPair]:
        """The ``count`` mistakes made most often: off-diagonal cells holding at least one item, largest first.

        Cells of equal count come in the matrix's reading order (lower true class, then lower predicted class
        first). A perfect classifier has none. A ``ValueError`` if ``count`` is negative.
        """
        if count < 0:
            raise ValueError(f"Cannot list {count} confused pairs: the number must be 0 or more.")
        totals = self.confusion.sum(axis=1).tolist()
        matrix = self.confusion.tolist()
        # np.argwhere lists the cells in reading order and the sort is stable, so ties keep that order
        cells = [(matrix[t][p], t, p) for t, p in np.argwhere(self.confusion > 0).tolist() if t != p]
        cells.sort(key=lambda cell: -cell[0])
        return [
            ConfusedPair(t, p, cell_count, cell_count / totals[t] if totals[t] else 0.0)
            for cell_count, t, p in cells[:count]
        ]

    def as_text(self) -> str:
        """A plain-text report laid out like scikit-learn's ``classification_report``, for pasting elsewhere."""
        width = max(len(name) for name in (*self.class_names, self.weighted.name))
        lines = [_text_line("", ("precision", "recall", "f1-score", "support"), width), ""]
        lines += [_score_line(scores, width) for scores in self.classes]
        lines += ["", _text_line("accuracy", ("", "", f"{self.accuracy:.{SCORE_DIGITS}f}", str(self.count)), width)]
        lines += [_score_line(scores, width) for scores in (self.macro, self.weighted)]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        """A JSON-ready document (plain lists, ints, floats and strings), as saved in ``evaluation.json``.

        The per-item arrays are always included so that a reopened run can still list the images of
        each confusion-matrix cell; for a 10,000-image test split the document is about 270 kB.
        """
        return {
            "format": FORMAT,
            "version": VERSION,
            "class_names": list(self.class_names),
            "accuracy": self.accuracy,
            "classes": [scores.to_dict() for scores in self.classes],
            "macro": self.macro.to_dict(),
            "weighted": self.weighted.to_dict(),
            "confusion": self.confusion.tolist(),
            "labels": self.labels.tolist(),
            "predictions": self.predictions.tolist(),
            "confidences": self.confidences.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Evaluation:
        """The inverse of :meth:`to_dict`; a :class:`RunError` if ``data`` is not such a document."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise RunError(f'This is not a workbench evaluation: its "format" should be "{FORMAT}".')
        if data.get("version") != VERSION:
            raise RunError(
                f"This evaluation has version {data.get('version')!r}; this workbench reads "
                f"version {VERSION}. Evaluate the model again to rewrite it."
            )
        try:
            return cls(
                accuracy=float(data["accuracy"]),
                classes=tuple(ClassScores.from_dict(scores) for scores in data["classes"]),
                macro=ClassScores.from_dict(data["macro"]),
                weighted=ClassScores.from_dict(data["weighted"]),
                confusion=np.array(data["confusion"], dtype=np.int64),
                labels=np.array(data["labels"], dtype=np.int64),
                predictions=np.array(data["predictions"], dtype=np.int64),
                confidences=np.array(data["confidences"], dtype=np.float64),
                class_names=tuple(str(name) for name in data["class_names"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise RunError(
                f"This evaluation is damaged ({type(error).__name__}: {error}). Evaluate the model again to rewrite it."
            ) from error


def _text_line(name: str, cells: Sequence[str], width: int) -> str:
    return f"{name:>{width}} " + "".join(f" {cell:>9}" for cell in cells)


def _score_line(scores: ClassScores, width: int) -> str:
    figures = [f"{value:.{SCORE_DIGITS}f}" for value in (scores.precision, scores.recall, scores.f1)]
    return _text_line(scores.name, (*figures, str(scores.support)), width)


def evaluation_from_predictions(
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    probabilities: np.ndarray | torch.Tensor,
    class_names: Sequence[str],
) -> Evaluation:
    """Score predicted class probabilities ``(N, classes)`` against the true ``labels`` ``(N,)``.

    The predicted class is the most probable one. A class that is never predicted, or never present,
    scores 0 where its figure would divide by zero, as ``classification_report(zero_division=0)`` does.
    A ``ValueError`` if the shapes disagree, a label names no class, or there are no items.
    """
    labels = _as_numpy(labels).astype(np.int64).reshape(-1)
    probabilities = _as_numpy(probabilities).astype(np.float64)
    class_names = tuple(str(name) for name in class_names)
    _check_inputs(labels, probabilities, class_names)
    predictions = probabilities.argmax(axis=1)
    confidences = probabilities[np.arange(len(labels)), predictions]
    classes = list(range(len(class_names)))
    per_class = precision_recall_fscore_support(labels, predictions, labels=classes, zero_division=0)
    return Evaluation(
        accuracy=float(accuracy_score(labels, predictions)),
        classes=tuple(ClassScores(name, *_plain(*figures)) for name, *figures in zip(class_names, *per_class)),
        macro=_average(labels, predictions, classes, "macro"),
        weighted=_average(labels, predictions, classes, "weighted"),
        confusion=confusion_matrix(labels, predictions, labels=classes).astype(np.int64),
        labels=labels,
        predictions=predictions.astype(np.int64),
        confidences=confidences,
        class_names=class_names,
    )


def _as_numpy(values: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _check_inputs(labels: np.ndarray, probabilities: np.ndarray, class_names: tuple[str, ...]) -> None:
    if probabilities.ndim != 2 or probabilities.shape[1] != len(class_names):
        raise ValueError(
            f"Expected probabilities of shape (items, {len(class_names)}), one column per class, "
            f"got {probabilities.shape}."
        )
    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} labels but {len(probabilities)} rows of probabilities.")
    if not len(labels):
        raise ValueError("There are no items to evaluate.")
    bad = labels[(labels < 0) | (labels >= len(class_names))]
    if bad.size:
        raise ValueError(f"The label {bad[0]} names no class: there are {len(class_names)} classes.")


def _plain(precision: float, recall: float, f1: float, support: int) -> tuple[float, float, float, int]:
    return float(precision), float(recall), float(f1), int(support)


def _average(labels: np.ndarray, predictions: np.ndarray, classes: list[int], how: str) -> ClassScores:
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, labels=classes, average=how, zero_division=0
    )
    return ClassScores(f"{how} avg", *_plain(precision, recall, f1, len(labels)))


def evaluate_model(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor | Sequence[int], class_names: Sequence[str]
) -> Evaluation:
    """Predict ``inputs`` with ``model`` (in eval mode, on the inputs' device) and score the predictions."""
    return evaluation_from_predictions(labels, predict(model, inputs), class_names)
