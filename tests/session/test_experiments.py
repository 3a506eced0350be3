"""The experiment queue without Qt: runs trained one after another through the session's own training, their
results and curves, Stop and Continue, and an experiment opened again from its folder."""

from __future__ import annotations

import csv

import pytest

from tests.helpers import digits_config
from workbench.core.errors import ConfigError, WorkbenchError
from workbench.core.experiments.sweep import RESULTS_FILE, Sweep
from workbench.core.runs.summaries import list_runs
from workbench.session.experiments import ExperimentShown
from workbench.session.phase import Phase
from workbench.session.session import Session
from workbench.session.tasks import InlineRunner


def digits_session(tmp_path) -> Session:
    session = Session(InlineRunner(), runs_folder=tmp_path / "runs")
    session.load_dataset("digits")
    session.load_preset("seed-relu-mlp")
    session.edit_config(digits_config(train_size=300, val_size=60, epochs=3, batch_size=32, optimizer="adam"))
    return session


def test_a_two_run_comparison_trains_both_runs_and_fills_its_results_and_curves(tmp_path):
    session = digits_session(tmp_path)
    shown: list[ExperimentShown] = []
    grown: list[tuple[str, int]] = []
    session.experiments.changed.connect(shown.append)
    session.experiments.curve_grew.connect(lambda name, curve: grown.append((name, len(curve.epochs))))
    started: list[str] = []
    session.run_started.connect(lambda start: started.append(start.folder.name))

    session.experiments.start_custom(["lr=0.0001,0.01"])

    last = shown[-1]
    assert started == ["run-001", "run-002"], "each queued run trains through the session's own training"
    assert session.phase is Phase.IDLE and not last.running and not last.can_continue
    assert last.state == "All 2 runs ended"
    assert [(row["run"], row["lr"], row["status"]) for row in last.rows] == [
        ("run-001", 0.0001, "finished"),
        ("run-002", 0.01, "finished"),
    ]
    slow, quick = (float(row["best_val_accuracy"]) for row in last.rows)
    assert quick > slow + 10, "a hundred times the learning rate learns far more in three epochs"
    assert [curve.label for curve in last.curves.values()] == ["lr 0.0001", "lr 0.01"]
    assert all(curve.epochs == [1, 2, 3] for curve in last.curves.values())
    assert grown == [("run-001", 1), ("run-001", 2), ("run-001", 3), ("run-002", 1), ("run-002", 2), ("run-002", 3)]
    assert [entry["runs"] for entry in last.summary] == [1, 1]
    with open(last.folder / RESULTS_FILE, newline="") as file:
        assert [row["status"] for row in csv.DictReader(file)] == ["finished", "finished"]
    assert last.folder.parent == tmp_path / "runs" / "experiments"
    # the runs stay in the experiment's folder; the Runs tab lists them with the experiment's name
    assert list_runs(session.runs_folder) == []
    grouped = list_runs(session.runs_folder, experiments=True)
    assert sorted((summary.folder.name, summary.experiment) for summary in grouped) == [
        ("run-001", last.folder.name),
        ("run-002", last.folder.name),
    ]
    assert {summary.name for summary in grouped} == {"seed-relu-mlp · lr 0.0001", "seed-relu-mlp · lr 0.01"}


def test_repeats_are_combined_into_a_mean_and_a_spread(tmp_path):
    session = digits_session(tmp_path)
    session.edit_config(digits_config(train_size=200, val_size=60, epochs=1, batch_size=32, optimizer="adam"))
    session.experiments.start_custom(["optimizer=sgd,adam"], repeat=2)
    shown = session.experiments.shown()
    assert shown is not None and len(shown.rows) == 4
    assert [(entry["optimizer"], entry["runs"], entry["ended"]) for entry in shown.summary] == [
        ("sgd", 2, 2),
        ("adam", 2, 2),
    ]
    for entry in shown.summary:
        mean, spread = entry["best_val_accuracy"]
        runs = [float(row["best_val_accuracy"]) for row in shown.rows if row["optimizer"] == entry["optimizer"]]
        assert mean == pytest.approx(sum(runs) / 2)
        assert spread == pytest.approx(abs(runs[0] - runs[1]) / 2**0.5)


def test_a_stopped_experiment_keeps_its_runs_and_continues_from_the_folder(tmp_path):
    session = digits_session(tmp_path)
    queue = session.experiments
    # Stop the queue as its second run starts: with the inline runner, the run is cancelled at its first batch.
    session.run_started.connect(lambda start: queue.stop() if start.folder.name == "run-002" else None)
    queue.start_custom(["seed=0,1,2"])
    shown = queue.shown()
    assert shown is not None
    assert [row["status"] for row in shown.rows] == ["finished", "pending", "pending"]
    assert shown.can_continue and not shown.running
    assert "1 of 3 runs ended" in shown.state

    reopened = digits_session(tmp_path)  # the window closed and opened again
    reopened.experiments.open(shown.folder)
    again = reopened.experiments.shown()
    assert again is not None and again.can_continue
    assert again.curves["run-001"].epochs == [1, 2, 3], "the ended run's curve is read from its folder"
    started: list[str] = []
    reopened.run_started.connect(lambda start: started.append(start.folder.name))
    reopened.experiments.go_on()
    assert started == ["run-002", "run-003"], "the ended run is not trained again"
    assert [run.status for run in Sweep.open(shown.folder).runs] == ["finished"] * 3
    with pytest.raises(WorkbenchError, match="Every run of this experiment has ended"):
        reopened.experiments.go_on()


def test_bad_values_and_a_busy_session_are_refused_before_anything_is_written(tmp_path):
    session = digits_session(tmp_path)
    with pytest.raises(ConfigError, match="lr: 'fast' is not a number"):
        session.experiments.start_custom(["lr=0.1,fast"])
    with pytest.raises(ConfigError, match="layers.9.out_features"):
        session.experiments.start_custom(["layers.9.out_features=8,16"])
    with pytest.raises(ConfigError, match="Vary at least one key"):
        session.experiments.start_custom([])
    assert not (tmp_path / "runs" / "experiments").exists()
    assert session.experiments.shown() is None


def test_the_ready_made_experiments_are_sound_specs():
    from workbench.core.experiments.ready_made import READY_MADE

    for experiment in READY_MADE:
        spec = experiment.spec()
        spec.check()
        labels = [spec.describe(point) for point in spec.points()]
        assert len(set(labels)) == len(labels) >= 2, experiment.name
