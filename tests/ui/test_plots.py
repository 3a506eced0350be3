"""LivePlots: the curves hold exactly the points reported, and stay fast with a long run behind them."""

import math
import statistics
import time

import numpy as np
import pytest

from workbench.core.engine import EpochMetrics
from workbench.ui.plots import SERIES_NAMES, SMOOTHING, LivePlots


def _epoch(epoch: int, val_loss: float = 0.6, val_accuracy: float = 0.8) -> EpochMetrics:
    return EpochMetrics(epoch, train_loss=1.0 / epoch, val_loss=val_loss, val_accuracy=val_accuracy, lr=1e-3,
                        epoch_seconds=1.0, samples_per_second=1e5)


@pytest.fixture
def plots(qtbot):
    widget = LivePlots()
    qtbot.addWidget(widget)
    return widget


def test_a_new_widget_holds_no_points(plots):
    assert plots.point_counts() == dict.fromkeys(SERIES_NAMES, 0)


def test_batch_losses_reach_the_curves_at_flush(plots):
    plots.add_batch_losses([1, 2, 3], [2.0, 1.0, 4.0])
    plots.add_batch_losses([4, 5], [3.0, 0.5])
    assert plots.point_counts()["batch_loss"] == 0
    plots.flush()

    x, y = plots.series("batch_loss")
    assert x.dtype == np.float64 and y.dtype == np.float64
    np.testing.assert_array_equal(x, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(y, [2.0, 1.0, 4.0, 3.0, 0.5])
    smooth_x, smooth_y = plots.series("batch_loss_smooth")
    np.testing.assert_array_equal(smooth_x, x)
    expected = [2.0]
    for loss in y[1:]:
        expected.append(expected[-1] + SMOOTHING * (loss - expected[-1]))
    np.testing.assert_allclose(smooth_y, expected)
    assert smooth_y[0] == 2.0


def test_the_refresh_timer_pushes_points_without_flush(plots, qtbot):
    plots.add_batch_losses([1, 2], [1.0, 0.9])
    qtbot.waitUntil(lambda: plots.point_counts()["batch_loss"] == 2, timeout=2000)


def test_buffers_grow_past_their_first_capacity(plots):
    losses = np.linspace(3, 0.1, 5000)
    for start in range(0, 5000, 700):
        plots.add_batch_losses(np.arange(start, min(start + 700, 5000)) + 1, losses[start:start + 700])
    plots.flush()
    x, y = plots.series("batch_loss")
    np.testing.assert_array_equal(x, np.arange(1, 5001))
    np.testing.assert_array_equal(y, losses)


def test_each_epoch_adds_one_point_per_series(plots):
    for epoch in (1, 2, 3):
        plots.add_epoch(_epoch(epoch, val_accuracy=0.5 + epoch / 10))
    plots.flush()
    counts = plots.point_counts()
    assert (counts["train_loss"], counts["val_loss"], counts["val_accuracy"]) == (3, 3, 3)
    x, accuracy = plots.series("val_accuracy")
    np.testing.assert_array_equal(x, [1, 2, 3])
    np.testing.assert_allclose(accuracy, [60, 70, 80])
    np.testing.assert_allclose(plots.series("train_loss")[1], [1, 1 / 2, 1 / 3])


def test_nan_validation_figures_are_skipped(plots):
    plots.add_epoch(_epoch(1, val_loss=math.nan, val_accuracy=math.nan))
    plots.add_epoch(_epoch(2, val_loss=math.nan, val_accuracy=math.nan))
    plots.flush()
    counts = plots.point_counts()
    assert (counts["train_loss"], counts["val_loss"], counts["val_accuracy"]) == (2, 0, 0)
    assert plots.accuracy_plot.getPlotItem().titleLabel.text == "No validation set"
    plots.clear()
    assert plots.accuracy_plot.getPlotItem().titleLabel.text == "Validation accuracy per epoch"


def test_non_finite_batch_losses_are_skipped(plots):
    plots.add_batch_losses([1, 2, 3], [1.0, math.inf, 0.8])
    plots.flush()
    np.testing.assert_array_equal(plots.series("batch_loss")[0], [1, 3])
    assert np.isfinite(plots.series("batch_loss_smooth")[1]).all()


def test_mismatched_steps_and_losses_are_refused(plots):
    with pytest.raises(ValueError, match="2 batch numbers but 3 losses"):
        plots.add_batch_losses([1, 2], [1.0, 0.9, 0.8])


def test_clear_empties_every_curve_and_restarts_the_smoothing(plots):
    plots.add_batch_losses([1, 2], [2.0, 1.0])
    plots.add_epoch(_epoch(1))
    plots.flush()
    plots.clear()
    assert plots.point_counts() == dict.fromkeys(SERIES_NAMES, 0)

    plots.add_batch_losses([1], [0.7])
    plots.flush()
    assert plots.series("batch_loss_smooth")[1].tolist() == [0.7]


def test_adding_to_a_long_run_stays_fast(plots, qapp):
    plots.resize(700, 500)
    plots.show()
    rng = np.random.default_rng(0)
    chunk = 1000
    for start in range(0, 100_000, chunk):
        steps = np.arange(start, start + chunk) + 1
        plots.add_batch_losses(steps, 2 * np.exp(-steps / 20_000) + rng.normal(0, 0.05, chunk))
    plots.flush()
    qapp.processEvents()
    assert plots.point_counts()["batch_loss"] == 100_000

    timings = []
    step = 100_000
    for _ in range(7):
        steps = np.arange(step, step + 50) + 1
        started = time.perf_counter()
        plots.add_batch_losses(steps, rng.uniform(0.2, 0.4, 50))
        plots.flush()
        qapp.processEvents()
        timings.append(time.perf_counter() - started)
        step += 50
    assert plots.point_counts()["batch_loss"] == 100_350
    assert statistics.median(timings) < 0.035, f"median {statistics.median(timings) * 1000:.1f} ms"
