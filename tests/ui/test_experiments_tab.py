"""The Experiments tab in the window: a comparison on digits queued and trained run after run, its table, chart and
curves filled; bad values refused in the form; Stop and Continue with the real buttons."""

from __future__ import annotations

from PySide6.QtCore import Qt

from workbench.core.experiments.ready_made import READY_MADE


def done(window) -> bool:
    shown = window.session.experiments.shown()
    return shown is not None and not shown.running and window.session.phase.value == "idle"


def test_a_two_run_comparison_on_digits_fills_the_table_the_chart_and_the_curves(qtbot, window):
    view = window.experiments_view
    window.show_tab("experiments")
    view.choose(0, "lr", "0.0001,0.01")
    assert view.count.text() == "2 runs"
    started = []
    window.session.run_started.connect(lambda start: started.append(start.folder.name))
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    assert not view.start_button.isEnabled() and view.stop_button.isEnabled()
    qtbot.waitUntil(lambda: done(window), timeout=60_000)

    assert started == ["run-001", "run-002"]
    assert view.table_headers() == ["run", "lr", "status", "best val", "final val", "test", "seconds"]
    rows = view.table_texts()
    assert [row[:3] for row in rows] == [["run-001", "0.0001", "finished"], ["run-002", "0.01", "finished"]]
    best = [float(row[3]) for row in rows]
    assert best[1] > best[0] + 10
    assert view.table.item(1, 3).font().bold() and not view.table.item(0, 3).font().bold(), "the best run is bold"
    [(xs, ys)] = view.chart_points()
    assert xs == [-4.0, -2.0], "learning rates sit on a log axis"
    assert ys == best
    assert view.chart.getPlotItem().getAxis("bottom").labelText == "lr (log scale)"
    assert view.curve_names() == ["lr 0.0001", "lr 0.01"]
    assert view.visible_curves() == {"lr 0.0001": 2, "lr 0.01": 2}
    view.curve_list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert view.visible_curves() == {"lr 0.01": 2}, "a run's box hides its curve"
    assert "All 2 runs ended" in view.state.text()
    assert view.start_button.isEnabled() and not view.continue_button.isEnabled()
    window.show_runs()  # the Runs tab lists the experiment's runs, named by what differs, grouped by experiment
    listed = {row[0]: row[-1] for row in window.run_history.row_texts()}
    experiment = window.session.experiments.sweep.folder.name
    assert listed == {"seed-relu-mlp · lr 0.0001": experiment, "seed-relu-mlp · lr 0.01": experiment}


def test_the_form_refuses_bad_values_before_anything_starts(qtbot, window):
    view = window.experiments_view
    view.choose(0, "lr", "0.1,fast")
    assert "lr: 'fast' is not a number" in view.count.text()
    assert not view.start_button.isEnabled()
    view.choose(0, "optimizer", "sgd,adam")
    view.choose(1, "layers.2.out_features", "32,64")
    view.repeats.setValue(2)
    assert view.count.text() == "8 runs"
    view.choose(1, "optimizer", "adam")
    assert "optimizer is chosen twice" in view.count.text()


def test_stop_keeps_the_experiment_and_continue_trains_the_rest(qtbot, window):
    view = window.experiments_view
    window.panel.train_size.setValue(300)
    window.panel.epochs.setValue(12)
    view.choose(0, "seed", "0,1")
    session = window.session
    with qtbot.waitSignal(session.experiments.curve_grew, timeout=60_000):
        qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: done(window), timeout=60_000)
    rows = view.table_texts()
    assert [row[2] for row in rows] == ["stopped", "pending"]
    assert view.continue_button.isEnabled()
    assert "Continue trains the rest" in view.state.text()

    started = []
    session.run_started.connect(lambda start: started.append((start.folder.name, len(start.history))))
    qtbot.mouseClick(view.continue_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: done(window), timeout=120_000)
    assert started[0][0] == "run-001" and started[0][1] >= 1, "the stopped run goes on from its checkpoint"
    assert [name for name, _ in started] == ["run-001", "run-002"]
    assert [row[2] for row in view.table_texts()] == ["finished", "finished"]
    assert all(count == 12 for count in view.visible_curves().values())


def test_a_ready_made_experiment_describes_itself_and_fixes_its_values(qtbot, window):
    view = window.experiments_view
    index = view.ready_made.findData("sgd-momentum-adam")
    view.ready_made.setCurrentIndex(index)
    experiment = next(item for item in READY_MADE if item.name == "sgd-momentum-adam")
    assert experiment.lesson in view.description.text()
    assert "Adam (optimizer adam, momentum 0.9, lr 0.001)" in view.description.text()
    assert not view.values[0].isEnabled()
    assert view.count.text() == "3 runs"


def test_a_search_from_the_train_menu_fills_the_table_the_history_and_the_importances(qtbot, window):
    window.panel.train_size.setValue(300)
    window.panel.mixed_precision.setCurrentIndex(window.panel.mixed_precision.findData("off"))
    dialog = window.search_settings()
    dialog.space.setPlainText("lr=0.0001:0.1:log\noptimizer=sgd,adam")
    dialog.trials.setValue(4)
    assert dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()
    dialog.space.setPlainText("lr=0.1:0.001")
    assert "lr" in dialog.problem.text() and not dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()
    dialog.space.setPlainText("lr=0.0001:0.1:log\noptimizer=sgd,adam")
    view = window.experiments_view
    searcher = window.session.searcher
    dialog.accept()
    assert window.tabs.currentWidget() is view
    qtbot.waitUntil(lambda: searcher.shown is not None and not searcher.shown.running, timeout=120_000)
    qtbot.waitUntil(lambda: window.session.phase.value == "idle", timeout=10_000)
    assert view.table_headers()[:4] == ["run", "lr", "optimizer", "status"]
    rows = view.table_texts()
    assert [row[0] for row in rows] == ["trial-001", "trial-002", "trial-003", "trial-004"]
    scored = [(index + 1, float(row[4])) for index, row in enumerate(rows) if row[3] == "finished"]
    lines = view.chart_points()
    assert lines[0] == ([float(n) for n, _ in scored], [v for _, v in scored]), "each finished trial's score"
    running_best = [max(v for _, v in scored[: i + 1]) for i in range(len(scored))]
    assert lines[1][1] == running_best, "and the best so far"
    bars = view.importance_bars()
    assert set(bars) == {"lr", "optimizer"} and abs(sum(bars.values()) - 1) < 1e-6
    assert "Search done" in view.state.text()
    assert len(view.curve_names()) == 4 and all(name.startswith("lr ") for name in view.curve_names())
