"""Searches in the core: what a space is and how a bad one is refused, a study trained into a folder with its
results, pruning that stops runs, and a search continued to its total with no trial trained twice."""

from __future__ import annotations

import csv
import os
import re
import socket
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from workbench.core.errors import ConfigError
from workbench.core.experiments.search import (
    RESULTS_FILE,
    SEARCH_FILE,
    STUDY_NAME,
    WORKER_ATTR,
    Choice,
    Range,
    Search,
    SearchSpec,
    default_storage,
    parse_space,
)
from workbench.core.presets import load_preset
from workbench.core.runs.folders import read_metrics, read_run
from workbench.core.training.callbacks import Callback
from workbench.core.training.config import TrainConfig

DIGITS = TrainConfig(
    dataset="digits",
    train_size=400,
    val_size=60,
    epochs=2,
    batch_size=32,
    optimizer="adam",
    device="cpu",
    mixed_precision="off",  # bfloat16 on a CPU is slower for so small a network
)


def spec(*space: str, trials: int = 3, config: TrainConfig = DIGITS) -> SearchSpec:
    return SearchSpec(load_preset("mlp"), config, tuple(parse_space(text) for text in space), trials)


def study_trials(folder) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=STUDY_NAME, storage=default_storage(folder)).trials


def rows(folder) -> list[dict[str, str]]:
    with open(folder / RESULTS_FILE, newline="") as file:
        return list(csv.DictReader(file))


def test_ranges_take_the_keys_type_and_choices_are_parsed_as_a_sweep_does():
    assert parse_space("lr=1e-4:1e-1:log") == Range("lr", 1e-4, 0.1, True)
    assert parse_space("momentum=0.5:0.9") == Range("momentum", 0.5, 0.9)
    assert parse_space("batch-size=16:128") == Range("batch-size", 16, 128)
    assert parse_space("batch-size=16:128").integer and not parse_space("lr=1:2").integer
    assert parse_space("lr=1:2") == Range("lr", 1.0, 2.0), "a number key's range is of floats"
    assert parse_space("layers.2.out_features=16:64") == Range("layers.2.out_features", 16, 64)
    assert parse_space("layers.4.p=0:0.5") == Range("layers.4.p", 0.0, 0.5)
    assert not parse_space("layers.4.p=0:0.5").integer
    assert parse_space("optimizer=sgd, adam") == Choice("optimizer", ("sgd", "adam"))
    assert parse_space("lr=1e-3,1e-2") == Choice("lr", (0.001, 0.01))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("optimiser=sgd,adam", "Unknown key 'optimiser' (did you mean 'optimizer'?)"),
        ("learning-rate=1:2", "Unknown key 'learning-rate'"),
        ("lr=x:1", "lr: 'x' is not a number"),
        ("epochs=1.5:3", "epochs: '1.5' is not a whole number"),
        ("optimizer=sgd:adam", "optimizer: a range LOW:HIGH is for numbers"),
        ("activation=ReLU:Tanh", "activation: a range LOW:HIGH is for numbers"),
        ("layers.2.bias=false:true", "layers.2.bias: 'false' is not a number"),
        ("lr=0.1:0.01", "lr: the range's low end must be below its high end"),
        ("batch-size=32:32", "batch-size: the range's low end must be below its high end"),
        ("lr=0:1:log", "lr: a log range needs a low end above 0"),
        ("lr=1:2:lin", "lr: write a range as LOW:HIGH or LOW:HIGH:log"),
        ("lr=1:", "lr: give both ends of the range"),
        ("lr=0.1", "lr: give at least two values to choose from"),
        ("lr=", "lr: give its values"),
        ("optimizer=sgd,sgd", "optimizer: a value is listed twice"),
        ("no-equals", "is not KEY=LOW:HIGH[:log] or KEY=V1,V2,..."),
    ],
)
def test_a_bad_space_is_refused_naming_its_key(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_space(text)


@pytest.mark.parametrize(
    ("space", "trials", "message"),
    [
        (("layers.9.out_features=16:64",), 3, "layers.9.out_features=16: the network 'mlp' has layers 1 to 7, not 9"),
        (("layers.2.width=16:64",), 3, "layers.2.width=16: layer 2 is a Linear"),
        (("lr=0:0.1",), 3, "lr=0.0: lr must be a number above 0"),
        (("momentum=0.5:1",), 3, "momentum=1.0: momentum must be"),
        (("lr=1e-3:1e-1", "lr=1e-3,1e-2"), 3, "lr is searched twice"),
        ((), 3, "Search at least one key"),
        (("lr=1e-3:1e-1",), 0, "--trials must be a whole number of at least 1"),
    ],
)
def test_a_spec_whose_trials_cannot_all_start_is_refused_before_any_folder_is_written(tmp_path, space, trials, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Search.open(tmp_path / "search", spec(*space, trials=trials) if space else spec(trials=trials))
    assert not (tmp_path / "search").exists()


def test_a_search_fills_its_results_and_continues_to_its_total_without_training_a_trial_twice(tmp_path):
    folder = tmp_path / "search"
    searched = spec("lr=1e-3:3e-2:log", "optimizer=sgd,adam", trials=3)
    search = Search.open(folder, searched)
    assert [row["status"] for row in rows(folder)] == ["waiting"] * 3, "the study holds its 3 trials at once"
    ended: list[str] = []

    def two_ended() -> bool:
        return len(ended) == 2

    assert search.run(ended=lambda trial: ended.append(trial.name), should_stop=two_ended) is False
    assert ended == ["trial-001", "trial-002"]
    assert [row["status"] for row in rows(folder)] == ["finished", "finished", "waiting"]
    first_runs = {name: (folder / "runs" / name / "metrics.jsonl").read_text() for name in ended}

    again = Search.open(folder, searched)  # the same spec on the same folder: the same study
    assert again.run(ended=lambda trial: ended.append(trial.name)) is True
    assert ended == ["trial-001", "trial-002", "trial-003"]
    table = rows(folder)
    assert [row["run"] for row in table] == ["trial-001", "trial-002", "trial-003"]
    assert [row["status"] for row in table] == ["finished"] * 3
    trials = study_trials(folder)
    assert [(trial.number, trial.state) for trial in trials] == [(n, TrialState.COMPLETE) for n in range(3)]
    for row, trial in zip(table, trials):
        run = folder / "runs" / row["run"]
        history = read_metrics(run)
        assert [epoch.epoch for epoch in history] == [1, 2], "each trial trained once, from its first epoch"
        assert "continuations" not in read_run(run) or not read_run(run)["continuations"]
        assert float(row["lr"]) == trial.params["lr"] and 1e-3 <= trial.params["lr"] <= 3e-2
        assert row["optimizer"] == trial.params["optimizer"] in ("sgd", "adam")
        best = max(epoch.val_accuracy for epoch in history)
        assert trial.value == pytest.approx(best)
        assert float(row["best_val_accuracy"]) == pytest.approx(best * 100, abs=0.006)
        assert float(row["final_val_accuracy"]) == pytest.approx(history[-1].val_accuracy * 100, abs=0.006)
        assert float(row["test_accuracy"]) == pytest.approx(read_run(run)["metrics"]["test_accuracy"] * 100, abs=0.006)
        assert 0 < float(row["test_accuracy"]) <= 100 and float(row["train_seconds"]) > 0
        assert read_run(run)["name"] == f"mlp · lr {trial.params['lr']:g}, optimizer {trial.params['optimizer']}"
    for name, text in first_runs.items():
        assert (folder / "runs" / name / "metrics.jsonl").read_text() == text, f"{name} was not trained again"
    best_trial = again.best()
    assert best_trial is not None and best_trial.value == max(trial.value for trial in trials)
    assert max(trial.value for trial in trials) > 0.5, "digits is easy: some trial learns it"

    assert Search.open(folder, searched).run() is True, "a search that holds its total has nothing left to run"
    assert len(study_trials(folder)) == 3
    bigger = Search.open(folder, spec("lr=1e-3:3e-2:log", "optimizer=sgd,adam", trials=4))
    assert [trial.status for trial in bigger.trials()] == ["finished"] * 3 + ["waiting"], "asking for more tops up"
    assert (folder / SEARCH_FILE).exists()


def test_pruning_stops_a_trial_behind_the_median_and_its_run_is_saved_as_stopped(tmp_path):
    folder = tmp_path / "search"
    search = Search.open(
        folder,
        spec("lr=1e-9,0.01", trials=4),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0),
    )
    assert search.run() is True
    trials = study_trials(folder)
    assert len(trials) == 4
    pruned = [trial for trial in trials if trial.state == TrialState.PRUNED]
    assert pruned, [(trial.params, trial.state) for trial in trials]
    first_complete = min(trial.number for trial in trials if trial.state == TrialState.COMPLETE)
    for trial in trials:
        if trial.params["lr"] == 1e-9 and trial.number > first_complete:
            assert trial.state == TrialState.PRUNED, "a learning rate of 1e-9 stays at chance: below the median"
    for trial in pruned:
        run = folder / "runs" / f"trial-{trial.number + 1:03d}"
        document = read_run(run)
        assert document["status"] == "stopped" and "Pruned by the search after epoch 1" in document["message"]
        assert [epoch.epoch for epoch in read_metrics(run)] == [1], "stopped after the epoch it was pruned at"
        assert list(trial.intermediate_values) == [1]
        assert document["metrics"]["test_accuracy"] is None, "a stopped run is not tested"
    table = {row["run"]: row for row in rows(folder)}
    for trial in pruned:
        row = table[f"trial-{trial.number + 1:03d}"]
        assert row["status"] == "pruned" and row["test_accuracy"] == "" and float(row["best_val_accuracy"]) < 50


class _StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, trainer, state, metrics) -> None:
        trainer.stop()


def test_a_stopped_trial_waits_with_its_values_and_goes_on_from_its_checkpoint(tmp_path):
    folder = tmp_path / "search"
    searched = spec("lr=1e-3:1e-2:log", trials=1, config=TrainConfig(**{**DIGITS.to_dict(), "epochs": 3}))
    search = Search.open(folder, searched)
    stopped = {"done": False}

    def launched(trial, launch) -> None:
        if not stopped["done"]:
            launch.trainer.callbacks.append(_StopAfterFirstEpoch())
            stopped["done"] = True

    assert search.run(launched=launched) is False
    [trial] = study_trials(folder)
    assert trial.state == TrialState.WAITING and set(trial.params) == {"lr"}
    run = folder / "runs" / "trial-001"
    assert read_run(run)["status"] == "stopped"
    assert [row["status"] for row in rows(folder)] == ["waiting"]

    assert Search.open(folder, searched).run() is True
    [after] = study_trials(folder)
    assert after.state == TrialState.COMPLETE and after.params == trial.params, "its values were kept"
    assert [epoch.epoch for epoch in read_metrics(run)] == [1, 2, 3], "every epoch once"
    assert len(read_run(run)["continuations"]) == 1
    assert sorted(after.intermediate_values) == [1, 2, 3]


def test_a_folder_that_holds_something_else_is_refused(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not empty and holds no search"):
        Search.open(tmp_path / "full", spec("lr=1e-3:1e-1"))
    Search.open(tmp_path / "search", spec("lr=1e-3:1e-1"))
    with pytest.raises(ConfigError, match=re.escape("give --storage sqlite:///")):
        Search.open(tmp_path / "search", spec("lr=1e-3:1e-1"), storage=f"sqlite:///{tmp_path / 'other.db'}")
    with pytest.raises(ConfigError, match=re.escape("trains its runs with other settings: batch_size 32 (here 64)")):
        Search.open(
            tmp_path / "search", spec("lr=1e-3:1e-1", config=TrainConfig(**{**DIGITS.to_dict(), "batch_size": 64}))
        )


def test_a_trial_left_running_by_a_process_that_is_gone_waits_again(tmp_path):
    folder = tmp_path / "search"
    searched = spec("lr=1e-3:1e-1", trials=2)
    Search.open(folder, searched)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    storage = optuna.storages.RDBStorage(default_storage(folder))
    study_id = storage.get_study_id_from_name(STUDY_NAME)
    first = storage.get_trial_id_from_study_id_trial_number(study_id, 0)
    storage.set_trial_state_values(first, TrialState.RUNNING)  # as a process killed while training it left it
    storage.set_trial_user_attr(first, WORKER_ATTR, {"host": socket.gethostname(), "pid": int(gone.stdout)})
    second = storage.get_trial_id_from_study_id_trial_number(study_id, 1)
    storage.set_trial_state_values(second, TrialState.RUNNING)  # a live process's: left to it
    storage.set_trial_user_attr(second, WORKER_ATTR, {"host": socket.gethostname(), "pid": os.getppid()})
    reopened = Search.open(folder, searched)
    assert [trial.status for trial in reopened.trials()] == ["waiting", "running"]


def test_a_study_its_creator_left_without_its_spec_is_taken_over(tmp_path):
    folder = tmp_path / "search"
    folder.mkdir()
    half_made = optuna.create_study(storage=default_storage(folder), study_name=STUDY_NAME, direction="maximize")
    half_made.enqueue_trial({})
    search = Search.open(folder, spec("lr=1e-3:1e-1", trials=3))
    assert [trial.status for trial in search.trials()] == ["waiting"] * 3
    with pytest.raises(ConfigError, match="give the same --space"):
        Search.open(folder, spec("lr=1e-3:1e-2", trials=3))
