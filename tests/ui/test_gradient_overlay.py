"""The Runs tab's Overlay on the Gradients tab: the same layer of each selected run, per epoch, from the runs'
gradients.jsonl, its legend beside the plot; a run of an earlier version is named in the note."""

import statistics

import numpy as np
import pytest

from tests import helpers
from workbench.core.runs.folders import GRADIENTS_FILE, read_gradients, rename_run
from workbench.ui.views.gradient_plots import GradientPlots
from workbench.ui.views.plots import OVERLAY_PALETTE


def train(qtbot, window, preset, folder, name):
    window.load_preset(preset)
    window.session.runs_out = folder
    with qtbot.waitSignal(window.runFinished, timeout=60_000) as finished:
        window.start_training()
    assert finished.args == ["finished"]
    rename_run(folder, name)
    return folder


def test_overlay_draws_each_selected_runs_recorded_norms_layer_by_layer(qtbot, window, tmp_path):
    runs = tmp_path / "runs"
    relu = train(qtbot, window, "seed-relunet-6", runs / "relu", "relu")
    sigmoid = train(qtbot, window, "seed-sigmoidnet-6", runs / "sigmoid", "sigmoid")
    old = helpers.train_tiny(runs / "old", "seed-relu-mlp")
    (old / GRADIENTS_FILE).unlink()  # as a run of an earlier version left it
    rename_run(old, "trained long ago")
    folders = {"relu": relu, "sigmoid": sigmoid}

    # The app's Gradients tab and the run folder share one monitor: the file holds the median of the tab's points
    window.gradient_plots.flush()
    steps, norms = window.gradient_plots.series("2 Linear")
    recorded = read_gradients(sigmoid)
    assert [(epoch.epoch, epoch.samples) for epoch in recorded] == [(1, 16), (2, 16)]
    for epoch in recorded:
        in_epoch = norms[(steps > epoch.step - 16) & (steps <= epoch.step)]
        assert epoch.grad_norms["2 Linear"] == pytest.approx(statistics.median(in_epoch), rel=1e-5)

    history = window.run_history
    history.set_root(runs)
    history.select_folders([relu, sigmoid, old])
    history.button("overlayRuns").click()
    plots: GradientPlots = window.gradient_plots
    names = plots.overlay_names()
    assert sorted(names) == ["relu", "sigmoid"]
    assert plots.overlay_note_text() == "trained long ago has no recorded gradients: trained before this version."
    # each run in its colour of the Training tab's overlay (where the run without gradients has one too)
    colours = {name: window.plots.overlay_colour(index) for index, name in enumerate(window.plots.overlay_names())}
    assert [plots.overlay_colour(index) for index in range(2)] == [colours[name] for name in names]
    assert len(set(colours.values())) == 3 and set(colours.values()) <= set(OVERLAY_PALETTE)
    labels = [f"{2 * n} Linear" for n in range(1, 7)]
    assert plots.overlay_layers() == [
        f"{position} trainable layer: {label}"
        for position, label in zip(["1st", "2nd", "3rd", "4th", "5th", "6th"], labels)
    ]

    for position in (0, 5):
        plots.choose_overlay_layer(position)
        for index, name in enumerate(names):
            epochs, values = plots.overlay_series(index)
            recorded = read_gradients(folders[name])
            np.testing.assert_array_equal(epochs, [1, 2])
            np.testing.assert_allclose(values, [epoch.grad_norms[labels[position]] for epoch in recorded])
    assert plots.overlay_legend_labels("layer") == names
    for index, name in enumerate(names):
        layers, values = plots.overlay_profile(index)
        last = read_gradients(folders[name])[-1]
        np.testing.assert_array_equal(layers, range(1, 7))
        np.testing.assert_allclose(values, [last.grad_norms[label] for label in labels])
    profiles = {name: plots.overlay_profile(index)[1] for index, name in enumerate(names)}
    assert profiles["sigmoid"][0] / profiles["sigmoid"][-1] < profiles["relu"][0] / profiles["relu"][-1] / 100

    window.show_tab("gradients")
    qtbot.waitExposed(plots)
    qtbot.waitUntil(lambda: plots.overlay_layer_plot.height() > 100)
    for widget in (plots.overlay_layer_plot, plots.overlay_profile_plot):
        item = widget.getPlotItem()
        assert item.getAxis("left").logMode
        data_area = item.getViewBox().sceneBoundingRect().adjusted(1, 1, -1, -1)
        legend = item.legend.sceneBoundingRect()
        assert legend.width() > 0 and not legend.intersects(data_area), (legend, data_area)
        assert widget.sceneRect().contains(legend), "the legend is inside the plot widget, not cut off"

    plots.clear_overlay_button.click()
    assert plots.overlay_names() == [] and plots.overlay_legend_labels("layer") == []
    assert plots.overlay_legend_labels("profile") == [] and not plots.overlay_box.isVisible()
    assert plots.point_counts()["2 Linear"] == 32, "the live run's curves stay"


def test_overlaying_only_runs_without_gradients_names_them_and_draws_nothing(qtbot):
    plots = GradientPlots()
    qtbot.addWidget(plots)
    plots.show_overlays([("first", []), ("second", [])], ["third: its gradients.jsonl is damaged at line 2."])
    assert plots.overlay_names() == [] and plots.overlay_layers() == []
    assert plots.overlay_note_text().splitlines() == [
        "third: its gradients.jsonl is damaged at line 2.",
        "first has no recorded gradients: trained before this version.",
        "second has no recorded gradients: trained before this version.",
    ]
    plots.clear_overlays()
    assert plots.overlay_note_text() == ""


def test_a_damaged_gradients_file_is_named_in_the_note(qtbot, window, tmp_path):
    runs = tmp_path / "runs"
    folder = helpers.train_tiny(runs / "tiny", "seed-relu-mlp")
    rename_run(folder, "tiny")
    (folder / GRADIENTS_FILE).write_text("{not json\n")
    window.run_history.set_root(runs)
    window.run_history.select_folders([folder])
    window.run_history.button("overlayRuns").click()
    assert window.gradient_plots.overlay_names() == []
    assert "tiny:" in window.gradient_plots.overlay_note_text()
    assert "damaged at line 1" in window.gradient_plots.overlay_note_text()
    assert window.plots.overlay_names() == ["tiny"], "its epoch curves are overlaid all the same"
