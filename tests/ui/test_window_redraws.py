"""What the window draws while a run trains: views in sight at most once per interval, the newest epoch; views
out of sight nothing until they are shown; and every view ends showing the run's last epoch."""

import numpy as np
from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget, QWidget

from tests.helpers import train_in_window
from workbench.core.training.engine import EpochMetrics
from workbench.core.training.gradients import GradientSample
from workbench.ui.images import ImageCell
from workbench.ui.plotting import REFRESH_MS
from workbench.ui.views.gradient_plots import GradientPlots
from workbench.ui.views.plots import LivePlots


def header(view: QWidget) -> str:
    """The bold line a view shows, read from the label (reading it draws nothing)."""
    return view.findChild(QLabel, "header").text()


def cell_captions(window) -> list[str]:
    """The captions the gallery's cells show now, read from the cells (reading them draws nothing)."""
    return [cell.caption for cell in window.gallery.findChildren(ImageCell) if not cell.isHidden()]


def expected_captions(window) -> list[str]:
    """The captions of the gallery's page for the guesses the session holds."""
    shown, names = window.session.gallery, window.session.dataset.info.class_names
    guesses = shown.probabilities.argmax(axis=1)
    return [
        f"true: {names[int(shown.labels[index])]}\npredicted: {names[int(guesses[index])]}"
        for index in window.gallery.visible_indices()
    ]


def test_epochs_ending_within_one_interval_are_drawn_once_and_the_run_ends_on_its_last_epoch(qtbot, window):
    window.show_tab("evaluation")
    window.binding.epoch_views_timer.setInterval(60_000)  # every epoch after the first ends within the interval
    view = window.evaluation_view
    packets, drawn, held = [], [], []

    def ended(packet):
        packets.append(packet)
        drawn.append(header(view))
        held.append(window.session.evaluation.title)
        if packet.metrics.epoch == 3:
            window.stop_training()

    window.epochEnded.connect(ended)
    window.panel.epochs.setValue(20)
    assert train_in_window(qtbot, window) == "stopped"

    last = packets[-1].metrics
    assert len(packets) >= 3 and last.epoch == len(packets)
    assert drawn[0].startswith("seed-relu-mlp — validation set after epoch 1: accuracy")
    assert drawn == [drawn[0]] * len(packets), "the epochs after the first waited for the interval"
    assert held == [f"seed-relu-mlp — validation set after epoch {n}:" for n in range(1, len(packets) + 1)]
    # A stopped run is not tested: the view ends on the validation scores of the last epoch, drawn at the run's end.
    assert header(view) == (
        f"seed-relu-mlp — validation set after epoch {last.epoch}: accuracy {last.val_accuracy:.1%} (200 images)"
    )
    confusion = packets[-1].val_evaluation.confusion
    assert [[view.cell_text(t, p) for p in range(10)] for t in range(10)] == [
        [f"{count:,}" for count in row] for row in confusion.tolist()
    ]
    window.show_tab("training")  # the plots, out of sight during the run, draw every epoch when shown
    assert window.plots.point_counts()["val_accuracy"] == last.epoch
    np.testing.assert_allclose(window.plots.series("val_accuracy")[1][-1], last.val_accuracy * 100)


def test_views_out_of_sight_draw_nothing_during_a_run_and_the_newest_epoch_when_shown(qtbot, window):
    window.show_tab("runs")  # the Training, Gradients and Weights tabs behind it
    drawn_before_the_run = cell_captions(window)  # the untrained network's guesses
    steps, samples, epochs, seen = [], [], [], {}
    window.epochEnded.connect(lambda packet: epochs.append(packet.metrics.epoch))

    def reported(packet):
        steps.extend(packet.steps)
        samples.extend(packet.gradients)
        if seen or len(epochs) < 2:
            return
        seen["captions before"] = cell_captions(window)
        seen["points before"] = window.plots.point_counts()
        seen["gradients before"] = window.gradient_plots.point_counts()
        window.show_tab("training")
        seen["captions"], seen["expected"] = cell_captions(window), expected_captions(window)
        seen["header"], seen["held header"] = header(window.gallery), window.session.gallery.header
        seen["points"], seen["steps"], seen["epochs"] = window.plots.point_counts(), len(steps), len(epochs)
        window.show_tab("gradients")
        seen["gradients"], seen["samples"] = window.gradient_plots.point_counts(), len(samples)
        window.show_tab("weights")
        seen["weights caption"] = window.weights_view.caption.text()

    window.batchProgress.connect(reported)  # the first packet after the second epoch: the points so far to draw
    window.panel.epochs.setValue(4)
    assert train_in_window(qtbot, window) == "finished"
    assert seen, "a batch packet came after the second epoch"

    assert seen["captions before"] == drawn_before_the_run, "nothing drawn out of sight"
    assert set(seen["points before"].values()) == {0}
    assert set(seen["gradients before"].values()) == {0}
    assert seen["captions"] == seen["expected"] and all("predicted" in caption for caption in seen["captions"])
    latest = seen["epochs"]
    assert seen["header"] == seen["held header"] and seen["header"].startswith(f"After epoch {latest}")
    assert seen["points"]["val_accuracy"] == latest and seen["points"]["batch_loss"] == seen["steps"] > 0
    assert set(seen["gradients"].values()) == {seen["samples"]} and seen["samples"] > 0
    assert seen["weights caption"] == f"After epoch {latest}"


def _tabbed(qtbot, view: QWidget) -> tuple[QMainWindow, QTabWidget]:
    """A shown window with ``view`` on its second tab, the first tab in front."""
    window = QMainWindow()
    qtbot.addWidget(window)
    tabs = QTabWidget()
    tabs.addTab(QWidget(), "front")
    tabs.addTab(view, "behind")
    window.setCentralWidget(tabs)
    window.show()
    qtbot.waitExposed(window)
    return window, tabs


def test_the_live_plots_wait_out_of_sight_and_draw_every_point_when_shown(qtbot):
    plots = LivePlots()
    _window, tabs = _tabbed(qtbot, plots)
    plots.expect(100, 5)
    plots.add_batch_losses(list(range(1, 41)), np.linspace(2.0, 1.0, 40).tolist())
    for epoch in (1, 2):
        plots.add_epoch(EpochMetrics(epoch, 1.5, 1.4, 0.5, 1e-3, 1.0, 1e5))
    qtbot.wait(3 * REFRESH_MS)
    assert set(plots.point_counts().values()) == {0}
    tabs.setCurrentIndex(1)
    counts = plots.point_counts()
    assert counts["batch_loss"] == counts["batch_loss_smooth"] == 40
    assert counts["train_loss"] == counts["val_loss"] == counts["val_accuracy"] == 2
    np.testing.assert_array_equal(plots.series("val_accuracy")[1], [50.0, 50.0])


def test_the_gradient_plots_wait_out_of_sight_and_draw_every_sample_when_shown(qtbot):
    plots = GradientPlots()
    _window, tabs = _tabbed(qtbot, plots)
    plots.start(["2 Linear"], ["3 ReLU"], total_steps=10)
    plots.add_samples([GradientSample(step, {"2 Linear": 0.1 * step}, {"3 ReLU": 0.5}) for step in range(1, 6)])
    qtbot.wait(3 * REFRESH_MS)
    assert plots.point_counts() == {"2 Linear": 0, "3 ReLU": 0}
    tabs.setCurrentIndex(1)
    assert plots.point_counts() == {"2 Linear": 5, "3 ReLU": 5}
    np.testing.assert_allclose(plots.series("2 Linear")[1], [0.1, 0.2, 0.3, 0.4, 0.5])
