"""GradientPlots: one curve per layer holding exactly the samples added, on a log axis that survives zeros."""

import math

import numpy as np
import pytest
from PySide6.QtGui import QColor

from workbench.core.presets import load_preset
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer
from workbench.core.training.gradients import GradientMonitor, GradientSample
from workbench.ui.views.gradient_plots import DEAD_TITLE, NO_ACTIVATIONS_TITLE, NORM_FLOOR, GradientPlots, layer_colours

LAYERS = ["2 Linear", "4 Linear", "6 Linear"]
ACTIVATIONS = ["3 ReLU", "5 ReLU"]


def sample(step, norms=(0.1, 0.2, 0.3), dead=(0.25, 0.5)):
    return GradientSample(step, dict(zip(LAYERS, norms)), dict(zip(ACTIVATIONS, dead)))


@pytest.fixture
def plots(qtbot):
    widget = GradientPlots()
    qtbot.addWidget(widget)
    widget.start(LAYERS, ACTIVATIONS, total_steps=100)
    return widget


def test_point_counts_match_the_samples_added(plots):
    plots.add_samples([sample(1), sample(3)])
    plots.add_samples([sample(5, norms=(1e-6, 2e-3, 4.0), dead=(0.0, 1.0))])
    assert plots.point_counts() == dict.fromkeys(LAYERS + ACTIVATIONS, 0)  # not drawn before the refresh
    plots.flush()
    assert plots.point_counts() == dict.fromkeys(LAYERS + ACTIVATIONS, 3)
    x, y = plots.series("2 Linear")
    np.testing.assert_array_equal(x, [1, 3, 5])
    np.testing.assert_allclose(y, [0.1, 0.1, 1e-6])
    np.testing.assert_allclose(plots.series("5 ReLU")[1], [50.0, 50.0, 100.0])


def test_the_refresh_timer_draws_without_flush(plots, qtbot):
    plots.add_samples([sample(1)])
    qtbot.waitUntil(lambda: plots.point_counts()["2 Linear"] == 1, timeout=2000)


def test_the_norm_axis_is_logarithmic_and_the_dead_axis_is_percent(plots):
    assert plots.norm_plot.getPlotItem().ctrl.logYCheck.isChecked()
    assert plots.norm_plot.getPlotItem().getAxis("left").logMode
    assert plots.dead_plot.getPlotItem().getAxis("left").labelText == "dead units (%)"
    assert plots.dead_plot.getPlotItem().viewRange()[1] == pytest.approx([-2, 102])
    assert plots.norm_plot.getPlotItem().viewRange()[0] == pytest.approx([-1, 101])


def test_the_legends_name_the_layers_in_depth_colours(plots):
    assert plots.legend_labels("norm") == LAYERS
    assert plots.legend_labels("dead") == ACTIVATIONS
    colours = [plots._series[label].curve.opts["pen"].color().name() for label in LAYERS]
    assert colours == layer_colours(3)
    darkness = [QColor(colour).lightness() for colour in colours]
    assert darkness == sorted(darkness)  # earlier layers darker


def test_zero_negative_and_non_finite_norms_do_not_break_the_log_plot(plots, qtbot):
    plots.add_samples(
        [sample(1, norms=(0.0, -1.0, math.nan)), sample(2, norms=(math.inf, 1e-3, 2.0), dead=(math.nan, 0.5))]
    )
    plots.flush()
    plots.norm_plot.grab()  # draws with the log transform
    np.testing.assert_array_equal(plots.series("2 Linear")[1], [NORM_FLOOR])
    np.testing.assert_array_equal(plots.series("4 Linear")[1], [NORM_FLOOR, 1e-3])
    np.testing.assert_array_equal(plots.series("6 Linear")[0], [2.0])
    assert plots.point_counts()["3 ReLU"] == 1


def test_a_network_without_activations_says_so(qtbot):
    widget = GradientPlots()
    qtbot.addWidget(widget)
    widget.start(["2 Linear"], [], total_steps=10)
    assert widget.dead_plot.getPlotItem().titleLabel.text == NO_ACTIVATIONS_TITLE
    widget.start(LAYERS, ACTIVATIONS, total_steps=10)
    assert widget.dead_plot.getPlotItem().titleLabel.text == DEAD_TITLE


def test_start_and_clear_forget_the_previous_run(plots):
    plots.add_samples([sample(1)])
    plots.flush()
    plots.start(["1 Conv2d", "4 Linear"], [], total_steps=20)
    assert plots.point_counts() == {"1 Conv2d": 0, "4 Linear": 0}
    assert plots.legend_labels("norm") == ["1 Conv2d", "4 Linear"] and plots.legend_labels("dead") == []
    plots.clear()
    assert plots.point_counts() == {}
    plots.add_samples([sample(2)])  # before start: nothing to draw on, nothing raised
    assert plots.point_counts() == {}


def test_the_explanation_tells_what_to_look_for(plots):
    text = plots.explanation.text()
    assert plots.explanation.wordWrap()
    assert "vanishing" in text and "dead" in text and "Sigmoid" in text


def test_samples_of_a_real_run_fill_one_point_per_logging_step(qtbot):
    monitor = GradientMonitor(every=4)
    config = TrainConfig(
        dataset="digits", train_size=640, val_size=0, epochs=2, batch_size=64, optimizer="adam", device="cpu"
    )
    trainer = Trainer(load_preset("mlp"), config, callbacks=[monitor], progress=False)
    trainer.run()
    widget = GradientPlots()
    qtbot.addWidget(widget)
    widget.start(monitor.layers, monitor.activations, monitor.total_steps)
    widget.add_samples(monitor.take_new())
    widget.flush()
    assert widget.point_counts() == dict.fromkeys(monitor.layers + monitor.activations, 5)
    np.testing.assert_array_equal(widget.series("2 Linear")[0], [1, 5, 9, 13, 17])


def test_the_norm_axis_labels_one_two_and_five_of_each_decade_only(qtbot):
    plots = GradientPlots()
    qtbot.addWidget(plots)
    axis = plots.norm_plot.getPlotItem().getAxis("left")
    values = [0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 3.0]
    labels = axis.logTickStrings(list(np.log10(values)), 1.0, 0.1)
    shown = [label for label in labels if label]
    assert shown == ["0.05", "0.1", "0.2", "0.5", "1", "2"], labels


def test_a_deep_networks_legend_names_layers_at_even_steps_and_leaves_the_plot_most_of_the_width(qtbot):
    layers = [f"{index} Conv2d" for index in range(1, 41)]  # about as many trainable layers as resnet-20's
    widget = GradientPlots()
    qtbot.addWidget(widget)
    widget.resize(900, 800)
    widget.show()
    widget.start(layers, ["3 ReLU"], total_steps=10)
    widget.add_samples([GradientSample(1, dict.fromkeys(layers, 0.1), {"3 ReLU": 0.0})])
    widget.flush()
    named = widget.legend_labels("norm")
    assert named[0] == layers[0] and named[-1] == layers[-1] and len(named) <= 24
    assert widget.point_counts()[layers[1]] == 1, "every layer is drawn, named or not"
    qtbot.wait(50)
    legend = widget.norm_plot.getPlotItem().legend
    view = widget.norm_plot.getPlotItem().getViewBox()
    assert view.sceneBoundingRect().width() > 1.2 * legend.sceneBoundingRect().width()
