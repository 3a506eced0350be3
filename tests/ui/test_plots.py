"""LivePlots: the curves hold exactly the points reported, and stay fast with a long run behind them."""

import math
import statistics
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from workbench.core.training.engine import EpochMetrics
from workbench.ui.views.plots import RAW_COLOUR, SERIES_NAMES, SMOOTHING, TRAIN_COLOUR, VAL_COLOUR, LivePlots


def _epoch(epoch: int, val_loss: float = 0.6, val_accuracy: float = 0.8) -> EpochMetrics:
    return EpochMetrics(
        epoch,
        train_loss=1.0 / epoch,
        val_loss=val_loss,
        val_accuracy=val_accuracy,
        lr=1e-3,
        epoch_seconds=1.0,
        samples_per_second=1e5,
    )


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
        plots.add_batch_losses(np.arange(start, min(start + 700, 5000)) + 1, losses[start : start + 700])
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


# Overlaid runs: earlier runs' epoch curves drawn with the live run's, each in its own colour.


def _history(epochs: int, scale: float = 1.0) -> list[EpochMetrics]:
    return [
        EpochMetrics(
            epoch,
            train_loss=scale / epoch,
            val_loss=scale * 1.5 / epoch,
            val_accuracy=0.5 + epoch / 100,
            lr=1e-3,
            epoch_seconds=1.0,
            samples_per_second=1e5,
        )
        for epoch in range(1, epochs + 1)
    ]


def _legend_labels(widget) -> list[str]:
    return [label.text for _, label in widget.getPlotItem().legend.items]


def test_overlays_hold_each_runs_points_under_its_name(plots):
    runs = [("adam", _history(3)), ("sgd", _history(5, scale=2.0))]
    plots.show_overlays(runs)
    assert plots.overlay_names() == ["adam", "sgd"]
    for index, (_, history) in enumerate(runs):
        x, accuracy = plots.overlay_series(index, "val_accuracy")
        np.testing.assert_array_equal(x, [epoch.epoch for epoch in history])
        np.testing.assert_allclose(accuracy, [epoch.val_accuracy * 100 for epoch in history])
        np.testing.assert_allclose(plots.overlay_series(index, "val_loss")[1], [epoch.val_loss for epoch in history])
        np.testing.assert_allclose(
            plots.overlay_series(index, "train_loss")[1], [epoch.train_loss for epoch in history]
        )
    assert _legend_labels(plots.accuracy_plot) == ["validation", "adam (val)", "sgd (val)"]
    assert _legend_labels(plots.epoch_loss_plot) == ["training", "validation", "adam", "sgd"], "one entry a run"
    assert "dashed: validation" in plots.epoch_loss_plot.getPlotItem().titleLabel.text
    assert plots.point_counts() == dict.fromkeys(SERIES_NAMES, 0), "overlays are not the live run's curves"


def test_overlay_colours_differ_from_each_other_and_from_the_live_run(plots):
    plots.show_overlays([(f"run {index}", _history(2)) for index in range(8)])
    colours = [plots.overlay_colour(index) for index in range(8)]
    assert len(set(colours)) == 8
    assert not set(colours) & {TRAIN_COLOUR, VAL_COLOUR, RAW_COLOUR}
    pen = plots.epoch_loss_plot.getPlotItem().legend.items[2][0].item.opts["pen"]
    assert pen.color().name() == colours[0] and pen.style() == Qt.PenStyle.SolidLine, "the run's training loss"
    dashed = plots._overlays[0][2]["val_loss"].opts["pen"]
    assert dashed.color().name() == colours[0] and dashed.style() == Qt.PenStyle.DashLine, "its validation loss"


def test_new_overlays_replace_the_old_and_clear_overlays_removes_them(plots):
    plots.show_overlays([("first", _history(2)), ("second", _history(2))])
    plots.show_overlays([("third", _history(4))])
    assert plots.overlay_names() == ["third"]
    assert _legend_labels(plots.accuracy_plot) == ["validation", "third (val)"]
    plots.clear_overlays()
    assert plots.overlay_names() == []
    assert _legend_labels(plots.accuracy_plot) == ["validation"]
    assert _legend_labels(plots.epoch_loss_plot) == ["training", "validation"]
    assert len(plots.accuracy_plot.getPlotItem().listDataItems()) == 1


def test_a_new_live_run_keeps_the_overlays(plots):
    plots.show_overlays([("earlier", _history(3))])
    plots.add_epoch(_epoch(1))
    plots.flush()
    plots.clear()
    assert plots.overlay_names() == ["earlier"]
    assert len(plots.overlay_series(0, "val_accuracy")[0]) == 3
    assert plots.point_counts()["val_accuracy"] == 0


def test_the_axes_fit_overlays_longer_and_higher_than_the_live_run(plots):
    plots.expect(batches=100, epochs=5)
    plots.show_overlays([("long", _history(30, scale=4.0))])
    for widget in (plots.epoch_loss_plot, plots.accuracy_plot):
        low, high = widget.getViewBox().viewRange()[0]
        assert low <= 1 and high >= 30
    assert plots.epoch_loss_plot.getViewBox().viewRange()[1][1] >= 6.0
    plots.add_epoch(_epoch(1))
    plots.flush()
    assert plots.epoch_loss_plot.getViewBox().viewRange()[1][1] >= 6.0, "the live run must not cut the overlay"
    plots.clear_overlays()
    assert plots.epoch_loss_plot.getViewBox().viewRange()[0][1] < 10


def test_an_overlaid_run_without_validation_draws_only_its_training_loss(plots):
    history = [EpochMetrics(epoch, 1.0 / epoch, math.nan, math.nan, 1e-3, 1.0, 1e5) for epoch in (1, 2)]
    plots.show_overlays([("no validation", history)])
    assert len(plots.overlay_series(0, "val_accuracy")[0]) == 0
    assert len(plots.overlay_series(0, "train_loss")[0]) == 2
    assert _legend_labels(plots.accuracy_plot) == ["validation"], "no accuracy curve, no entry"
    assert _legend_labels(plots.epoch_loss_plot)[-1] == "no validation"


def test_long_run_names_wrap_in_the_legend_so_that_it_keeps_beside_the_plot(plots, qtbot):
    qtbot.addWidget(plots)
    plots.resize(900, 500)
    plots.show()
    name = "seed-relu-mlp · SGD m0.9 lr 0.001"
    plots.show_overlays([(name, _history(3))])
    [label] = _legend_labels(plots.accuracy_plot)[-1:]
    assert label.replace("<br>", "") == f"{name} (val)" and label.count("<br>") >= 2
    qtbot.wait(50)
    widget = plots.accuracy_plot
    legend = widget.getPlotItem().legend
    shown = legend.mapRectToScene(legend.boundingRect())
    assert widget.sceneRect().contains(shown), "the legend is drawn whole inside its plot's widget"


def test_legends_sit_beside_the_curves_never_over_them(qtbot, plots):
    plots.show_overlays([("adam, lr 1e-3", _history(4)), ("sgd, lr 1e-1", _history(4, scale=2.0))])
    plots.resize(900, 600)
    plots.show()
    qtbot.waitExposed(plots)
    for widget in (plots.batch_plot, plots.epoch_loss_plot, plots.accuracy_plot):
        item = widget.getPlotItem()
        data_area = item.getViewBox().sceneBoundingRect().adjusted(1, 1, -1, -1)  # less its frame line
        legend = item.legend.sceneBoundingRect()
        assert legend.width() > 0 and not legend.intersects(data_area), (legend, data_area)
        assert widget.sceneRect().contains(legend), "the legend is inside the plot widget, not cut off"
