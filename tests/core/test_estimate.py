"""The estimate before Start: measured from timed batches, close to the real run's time, harmless to the run."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from tests import helpers
from workbench.core.data import datasets
from workbench.core.errors import ConfigError
from workbench.core.presets import load_preset
from workbench.core.training.engine import Trainer, prepare_data
from workbench.core.training.estimate import EstimateStopped, estimate_run, rounded_duration


def digits_info():
    return datasets.get_info("digits")


@pytest.mark.parametrize(
    "seconds, words",
    [
        (0.4, "under 1 s"),
        (8.4, "about 8 s"),
        (42, "about 40 s"),
        (58, "about 1 min"),
        (100, "about 1 min 40 s"),
        (3599, "about 1 h"),
        (7800, "about 2 h 10 min"),
    ],
)
def test_durations_read_as_estimates(seconds, words):
    assert rounded_duration(seconds) == words


def test_the_estimate_is_near_the_time_the_run_then_takes():
    config = helpers.digits_config(train_size=1200, val_size=200, epochs=8, batch_size=32, optimizer="adamw")
    architecture, data = load_preset("cnn-small"), prepare_data(config, progress=False)
    estimates, actual = [], []
    for _ in range(3):  # the best of three, against a machine that is shared
        estimates.append(estimate_run(architecture, config, data.info).seconds)
        started = time.perf_counter()
        Trainer(architecture, config, data, progress=False).run()  # the data loaded before, as in the app
        actual.append(time.perf_counter() - started)
    ratio = min(estimates) / min(actual)
    assert 0.25 <= ratio <= 4, (estimates, actual)


def test_the_estimate_grows_with_the_epochs_and_words_them():
    config = helpers.digits_config(epochs=3)
    short = estimate_run(load_preset("seed-relu-mlp"), config, digits_info())
    longer = estimate_run(load_preset("seed-relu-mlp"), config, digits_info(), epochs=30)
    assert longer.epochs == 30 and longer.seconds > short.seconds
    assert short.words().endswith(" on this CPU, 3 epochs") and short.seconds_per_batch > 0


def test_an_estimate_leaves_the_run_exactly_as_without_it():
    config = helpers.digits_config(epochs=1)
    torch.manual_seed(123)
    without = Trainer(load_preset("mlp"), config, progress=False).run()
    torch.manual_seed(123)
    estimate_run(load_preset("mlp"), config, digits_info())
    after = Trainer(load_preset("mlp"), config, progress=False).run()
    assert [m.train_loss for m in after.history] == [m.train_loss for m in without.history]
    assert all(
        torch.equal(a, b) for a, b in zip(after.model.state_dict().values(), without.model.state_dict().values())
    )


def test_an_estimate_asked_to_stop_stops():
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(EstimateStopped):
        estimate_run(load_preset("cnn-small"), helpers.digits_config(), digits_info(), stop=stop)
    assert len(calls) == 3


def test_settings_the_run_would_refuse_are_refused_alike():
    with pytest.raises(ConfigError, match="batch_size"):
        estimate_run(load_preset("mlp"), helpers.digits_config(batch_size=0), digits_info())
    with pytest.raises(ConfigError, match="classifies 10 classes"):
        estimate_run(
            load_preset("mlp"), helpers.digits_config(), dataclasses.replace(digits_info(), class_names=("a", "b"))
        )
