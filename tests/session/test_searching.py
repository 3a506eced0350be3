"""A search from the session, without Qt: Optuna's trials of the network and settings being edited, their
results, the optimisation history and the importances, and bad ranges refused before anything is written."""

from __future__ import annotations

import pytest

from tests.helpers import digits_config
from workbench.core.errors import ConfigError
from workbench.core.experiments.search import RESULTS_FILE
from workbench.session.phase import Phase
from workbench.session.searching import SearchShown
from workbench.session.session import Session
from workbench.session.tasks import InlineRunner


def digits_session(tmp_path) -> Session:
    session = Session(InlineRunner(), runs_folder=tmp_path / "runs")
    session.load_dataset("digits")
    session.load_preset("seed-relu-mlp")
    config = digits_config(train_size=200, val_size=60, epochs=2, batch_size=32, mixed_precision="off")
    session.edit_config(config)
    return session


def test_a_search_trains_its_trials_and_shows_history_importances_and_curves(tmp_path):
    session = digits_session(tmp_path)
    shown: list[SearchShown] = []
    session.searcher.changed.connect(shown.append)
    session.searcher.start(["lr=0.0003:0.03:log", "optimizer=sgd,adam"], trials=4)
    last = shown[-1]
    assert session.phase is Phase.IDLE and session.training is None and not last.running
    assert last.state.startswith("Search done; best trial-")
    assert [row["run"] for row in last.rows] == ["trial-001", "trial-002", "trial-003", "trial-004"]
    assert {row["status"] for row in last.rows} <= {"finished", "pruned"}
    assert [number for number, _, _ in last.history] == [1, 2, 3, 4]
    finished = [row for row in last.rows if row["status"] == "finished"]
    best_row = max(finished, key=lambda row: float(row["best_val_accuracy"]))
    assert last.best is not None and f"trial-{last.best[0]:03d}" == best_row["run"]
    assert set(last.importances) == {"lr", "optimizer"} and sum(last.importances.values()) == pytest.approx(1.0)
    assert all(0.0003 <= row["lr"] <= 0.03 for row in last.rows)
    for row in finished:
        curve = last.curves[row["run"]]
        assert curve.epochs == [1, 2] and curve.label.startswith("lr ")
        assert max(curve.accuracies) * 100 == pytest.approx(float(row["best_val_accuracy"]), abs=0.01)
    assert (last.folder / RESULTS_FILE).read_text().count("\n") == 5
    assert last.folder.parent == tmp_path / "runs" / "experiments"


def test_bad_ranges_are_refused_before_anything_is_written(tmp_path):
    session = digits_session(tmp_path)
    for space, message in (
        (["lr=0.1:0.01"], "lr"),
        (["lr=0:1:log"], "lr"),
        (["layers.9.out_features=8:64"], "layers.9.out_features"),
        (["speed=1:2"], "Unknown key 'speed'"),
    ):
        with pytest.raises(ConfigError, match=message):
            session.searcher.start(space, trials=3)
    assert not (tmp_path / "runs").exists()
