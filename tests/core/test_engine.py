"""The training engine on the embedded digits dataset: learning, repeatability, control, failures."""

import json
import math
import subprocess
import sys
import threading
from functools import partial

import pytest
import safetensors.torch
import torch

from tests import helpers
from workbench.core.architecture import build
from workbench.core.errors import ConfigError, RunError, TrainingError
from workbench.core.presets import load_preset
from workbench.core.runs.folders import new_run_dir
from workbench.core.runs.recorder import RunRecorder
from workbench.core.training.config import TrainConfig
from workbench.core.training.devices import available_devices, resolve_device
from workbench.core.training.engine import Callback, Trainer, prepare_data
from workbench.core.training.evaluation import CPU_CONV_EVAL_BATCH, EVAL_BATCH, ScoringStopped, score

TIMING = ("epoch_seconds", "samples_per_second")


digits_config = partial(helpers.digits_config, epochs=3)


def train(preset="seed-relu-mlp", callbacks=(), **overrides):
    config = digits_config(**overrides)
    trainer = Trainer(load_preset(preset), config, callbacks=list(callbacks), progress=False)
    return trainer, trainer.run()


def without_timing(history):
    return [{k: v for k, v in m.to_dict().items() if k not in TIMING} for m in history]


def test_a_relu_mlp_learns_digits():
    _, result = train(epochs=5)
    assert result.status == "finished"
    assert len(result.history) == 5
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.history[-1].val_accuracy >= 0.9
    assert result.test_accuracy >= 0.88


def test_presets_made_for_28x28_adapt_to_8x8_digits():
    trainer, result = train("cnn-small", epochs=1)
    assert trainer.architecture.input_shape == (1, 8, 8)
    assert result.status == "finished" and 0 <= result.test_accuracy <= 1


def test_the_same_seed_repeats_exactly_on_the_cpu():
    first_trainer, first = train(epochs=2, seed=7)
    second_trainer, second = train(epochs=2, seed=7)
    assert without_timing(first.history) == without_timing(second.history)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    _, other = train(epochs=2, seed=8)
    assert without_timing(other.history) != without_timing(first.history)


def test_subsets_are_drawn_with_the_seed():
    config = digits_config(seed=3)
    a, b = prepare_data(config, progress=False), prepare_data(config, progress=False)
    assert torch.equal(a.train_y, b.train_y) and len(a.train_y) == 1000 and len(a.val_y) == 200
    c = prepare_data(digits_config(seed=4), progress=False)
    assert not torch.equal(a.train_x, c.train_x)


class StopAt(Callback):
    def __init__(self, batch):
        self.batch, self.batches_seen = batch, 0

    def on_batch_end(self, trainer, state):
        self.batches_seen += 1
        if state.batch == self.batch:
            trainer.stop()


class Events(Callback):
    """Records the events of the test evaluation and the end."""

    def __init__(self):
        self.events = []

    def on_test_start(self, trainer, state, count):
        self.events.append(("test", count))

    def on_test_progress(self, trainer, state, done, total):
        self.events.append(("tested", done))

    def on_train_end(self, trainer, state, result):
        self.events.append(("end", result.status))


def test_stop_takes_effect_at_the_next_batch_and_reports_the_end_without_testing():
    stopper, events = StopAt(3), Events()
    _, result = train(callbacks=[stopper, events], epochs=2)
    assert stopper.batches_seen == 3
    assert result.status == "stopped" and result.history == []
    assert math.isnan(result.test_accuracy) and math.isnan(result.test_loss) and result.test_probabilities is None
    assert events.events == [("end", "stopped")], "a stopped run is not evaluated on the test split"


def test_a_stop_during_the_test_evaluation_ends_it_at_the_next_chunk(monkeypatch):
    from workbench.core.training import evaluation

    monkeypatch.setattr(evaluation, "EVAL_BATCH", 100)

    class StopWhileTesting(Events):
        def on_test_progress(self, trainer, state, done, total):
            super().on_test_progress(trainer, state, done, total)
            trainer.stop()

    events = StopWhileTesting()
    _, result = train(callbacks=[events], epochs=1)
    # the digits' test split: 360 images, in chunks of 100
    assert events.events == [("test", 360), ("tested", 100), ("end", "stopped")]
    assert result.status == "stopped" and len(result.history) == 1 and math.isnan(result.test_accuracy)
    assert result.message == (
        "Stopped by the user during the test evaluation after epoch 1: the test accuracy was not measured."
    )


def test_a_stop_during_validation_ends_the_epoch_uncounted(monkeypatch):
    from workbench.core.training import evaluation

    monkeypatch.setattr(evaluation, "EVAL_BATCH", 50)
    real_score = evaluation.score
    scored = []

    def score_then_stop(model, inputs, *args, progress=None, stop=None, **kwargs):
        def stop_after_first_chunk():
            scored.append(len(inputs))
            return len(scored) > 1

        return real_score(model, inputs, *args, progress=progress, stop=stop_after_first_chunk, **kwargs)

    from workbench.core.training import engine

    monkeypatch.setattr(engine, "score", score_then_stop)
    events = Events()
    _, result = train(callbacks=[events], epochs=2)
    assert scored == [200, 200], "asked before each chunk, the second one stopped"
    assert (
        result.status == "stopped" and result.history == [] and result.message == "Stopped by the user during epoch 1."
    )
    assert events.events == [("end", "stopped")]


def test_the_run_folder_evaluates_the_test_split_once_and_a_stopped_run_not_at_all(tmp_path):
    passes = []

    def count_test_passes(module, inputs):
        if len(inputs[0]) == 360:  # the whole test split in one chunk
            passes.append(module.training)

    config = digits_config(epochs=1)
    arch = load_preset("seed-relu-mlp")
    trainer = Trainer(
        arch, config, callbacks=[RunRecorder(new_run_dir(tmp_path / "run", arch, config))], progress=False
    )
    trainer.model.register_forward_pre_hook(count_test_passes)
    result = trainer.run()
    assert passes == [False], "the run folder's evaluation is the engine's own test pass"
    evaluation = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert evaluation["accuracy"] == pytest.approx(result.test_accuracy)
    assert evaluation["predictions"] == result.test_probabilities.argmax(dim=1).tolist()

    continued = Trainer(arch, digits_config(epochs=3), progress=False, callbacks=[StopAt(2)])
    continued.callbacks.insert(0, RunRecorder(tmp_path / "run"))
    continued.model.register_forward_pre_hook(count_test_passes)
    passes.clear()
    assert continued.run().status == "stopped" and passes == []
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "stopped" and run["metrics"]["test_accuracy"] is None
    assert not (tmp_path / "run" / "evaluation.json").exists(), "an evaluation of earlier weights is not kept"


def test_pause_holds_the_run_until_resumed_from_another_thread():
    paused_at = threading.Event()
    counts = []

    class PauseAtTwo(Callback):
        def on_batch_end(self, trainer, state):
            counts.append(state.batch)
            if state.epoch == 1 and state.batch == 2:
                trainer.pause()
                paused_at.set()

    trainer = Trainer(load_preset("seed-relu-mlp"), digits_config(epochs=1), callbacks=[PauseAtTwo()], progress=False)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("result", trainer.run()))
    worker.start()
    assert paused_at.wait(30)
    worker.join(0.3)
    assert worker.is_alive() and trainer.paused and counts == [1, 2]
    trainer.resume()
    worker.join(60)
    assert not worker.is_alive()
    assert outcome["result"].status == "finished" and counts[-1] == math.ceil(1000 / 64)


def test_a_diverging_loss_stops_with_advice_and_keeps_the_last_good_weights():
    class Keep(Callback):
        weights = None

        def on_epoch_end(self, trainer, state, metrics):
            Keep.weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    trainer, result = train(callbacks=[Keep()], optimizer="sgd", lr=50.0, momentum=0.9, epochs=5, loss="mse")
    assert result.status == "diverged"
    assert "learning rate 50 is probably too high; try 5" in result.message
    for tensor in result.model.state_dict().values():
        assert torch.isfinite(tensor).all()
    if Keep.weights is not None:
        for name, tensor in result.model.state_dict().items():
            assert torch.equal(tensor, Keep.weights[name])


@pytest.mark.parametrize(
    "schedule, check",
    [
        ("step", lambda lrs: lrs == pytest.approx([0.01, 0.005, 0.0025])),
        ("cosine", lambda lrs: lrs[0] == 0.01 and lrs[0] > lrs[1] > lrs[2] > 0),
        ("one-cycle", lambda lrs: max(lrs) > lrs[-1]),
        ("none", lambda lrs: lrs == [0.01] * 3),
    ],
)
def test_learning_rate_schedules(schedule, check):
    _, result = train(optimizer="sgd", lr=0.01, schedule=schedule, step_size=1, gamma=0.5)
    assert check([m.lr for m in result.history])


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_every_optimizer_trains(optimizer):
    _, result = train(optimizer=optimizer, lr=1e-3, nesterov=optimizer == "sgd", weight_decay=1e-4, epochs=2)
    assert result.status == "finished" and result.history[-1].train_loss < result.history[0].train_loss


def test_early_stopping_ends_a_run_that_no_longer_improves():
    _, result = train(optimizer="sgd", lr=1e-30, momentum=0.0, epochs=6, early_stopping=2)
    assert result.status == "early-stopped" and len(result.history) == 3


def test_a_run_folder_holds_everything_of_the_run(tmp_path):
    config = digits_config(epochs=2)
    arch = load_preset("cnn-small")
    folder = new_run_dir(tmp_path / "run", arch, config)
    trainer = Trainer(arch, config, callbacks=[RunRecorder(folder)], progress=False)
    result = trainer.run()
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "finished" and run["dataset"] == "digits" and run["seed"] == 0
    assert run["config"]["optimizer"] == "adam" and run["architecture"]["name"] == "cnn-small"
    assert run["metrics"]["test_accuracy"] == pytest.approx(result.test_accuracy)
    assert {"torch", "torchvision", "python", "workbench"} <= set(run["versions"])
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert set(lines[0]) == {
        "epoch",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "lr",
        "epoch_seconds",
        "samples_per_second",
    }
    model = build(trainer.architecture)
    model.load_state_dict(safetensors.torch.load_file(folder / "model.safetensors"))
    model.eval()
    result.model.eval()
    batch = trainer.data.test_x[:16]
    saved = model.state_dict()
    assert all(torch.equal(saved[name], tensor) for name, tensor in result.model.state_dict().items())
    # the trained model computes channels-last, the reloaded one contiguous: the same sums in another order
    torch.testing.assert_close(model(batch), result.model(batch), rtol=1e-5, atol=1e-5)
    assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*"))
    with pytest.raises(RunError, match="already holds a run"):
        new_run_dir(folder, arch, config)


def test_an_unwritable_run_folder_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RunError, match="Cannot write the run folder"):
        new_run_dir(blocker / "run", load_preset("seed-linear"), digits_config())


def test_missing_devices_are_named_with_the_ones_there_are():
    assert available_devices()[0] == ("cpu", "CPU")
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no device 'cuda'.*cpu \\(CPU\\)"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="no device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"optimizer": "adma"}, "Did you mean 'adam'"),
        ({"lr": 0}, "lr must be a number above 0"),
        ({"lr": float("nan")}, "lr must be"),
        ({"epochs": 0}, "epochs must be a whole number of at least 1"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"momentum": 1.0}, "momentum"),
        ({"nesterov": True, "optimizer": "adam"}, "Nesterov"),
        ({"early_stopping": 2, "val_size": 0}, "Early stopping"),
    ],
)
def test_bad_settings_raise_a_config_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        digits_config(**overrides).check()


def test_config_round_trips_through_a_dict():
    config = digits_config(schedule="cosine")
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        TrainConfig.from_dict({"epoch": 3})


def test_the_core_never_imports_qt():
    code = (
        "import importlib, pkgutil, sys, workbench.core; "
        "[importlib.import_module(m.name) for m in pkgutil.iter_modules(workbench.core.__path__, 'workbench.core.')]; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'pyqtgraph')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_learns_like_on_the_cpu():
    assert resolve_device("auto").type == "cuda"
    trainer, result = train(epochs=5, device="auto")
    assert trainer.data.train_x.is_cuda and next(trainer.model.parameters()).is_cuda
    assert result.status == "finished" and result.history[-1].val_accuracy >= 0.9


def test_each_validation_pass_keeps_the_probabilities_behind_its_accuracy():
    seen = []

    class Keep(Callback):
        def on_epoch_end(self, trainer, state, metrics):
            seen.append((state.val_probabilities.clone(), trainer.data.val_y.clone(), metrics.val_accuracy))

    train(epochs=2, callbacks=[Keep()])
    assert len(seen) == 2
    for probabilities, labels, accuracy in seen:
        assert probabilities.shape == (200, 10)
        assert torch.allclose(probabilities.sum(dim=1), torch.ones(200), atol=1e-5)
        assert (probabilities.argmax(dim=1) == labels).float().mean().item() == pytest.approx(accuracy)
    assert not torch.equal(seen[0][0], seen[1][0])


def test_mse_is_the_class_squared_error_summed_over_the_outputs_and_averaged_over_the_batch():
    from workbench.core.training.engine import make_loss

    generator = torch.Generator().manual_seed(0)
    outputs = torch.randn(32, 10, generator=generator, requires_grad=True)
    labels = torch.randint(0, 10, (32,), generator=generator)
    onehot = torch.nn.functional.one_hot(labels, 10).float()
    ours = make_loss("mse", 10)(outputs, labels)
    (ours_gradient,) = torch.autograd.grad(ours, outputs)
    # the notebook's expression, on the outputs as they are (no softmax)
    theirs = torch.sum((outputs - onehot) ** 2, 1).mean()
    (their_gradient,) = torch.autograd.grad(theirs, outputs)
    assert torch.allclose(ours, theirs) and torch.allclose(ours_gradient, their_gradient)
    # ten outputs: ten times PyTorch's mse_loss, which averages over every output
    assert ours.item() == pytest.approx(10 * torch.nn.functional.mse_loss(outputs, onehot).item(), rel=1e-6)


def test_the_end_message_counts_epochs_in_the_singular_and_the_plural():
    _, one = train(epochs=1)
    _, two = train(epochs=2)
    assert one.message == "Trained 1 epoch." and two.message == "Trained 2 epochs."
    _, stopped = train(optimizer="sgd", lr=1e-30, momentum=0.0, epochs=4, early_stopping=1)
    assert stopped.status == "early-stopped"
    assert stopped.message.endswith("the validation loss has not improved for 1 epoch.")


def test_the_test_split_is_announced_then_reported_batch_by_batch(monkeypatch):
    from workbench.core.training import evaluation

    monkeypatch.setattr(evaluation, "EVAL_BATCH", 100)
    events = []

    class Listen(Callback):
        def on_epoch_end(self, trainer, state, metrics):
            events.append(("epoch", metrics.epoch))

        def on_test_start(self, trainer, state, count):
            events.append(("test", count))

        def on_test_progress(self, trainer, state, done, total):
            events.append(("tested", done, total))

        def on_train_end(self, trainer, state, result):
            events.append(("end", result.status))

    train(epochs=1, callbacks=[Listen()])
    # the digits' test split: 360 images
    assert events == [
        ("epoch", 1),
        ("test", 360),
        ("tested", 100, 360),
        ("tested", 200, 360),
        ("tested", 300, 360),
        ("tested", 360, 360),
        ("end", "finished"),
    ]


def test_best_epoch_and_early_stopping_are_the_runs_own_callbacks():
    from workbench.core.training.callbacks import BestEpoch, EarlyStopping

    plain = Trainer(load_preset("seed-relu-mlp"), digits_config(epochs=1), progress=False)
    assert [type(callback) for callback in plain.own_callbacks] == [BestEpoch]
    checkpoints = []

    class Keep(Callback):
        def on_epoch_end(self, trainer, state, metrics):
            checkpoints.append(trainer.checkpoint(state))

    config = digits_config(optimizer="sgd", lr=1e-30, momentum=0.0, epochs=6, early_stopping=2)
    trainer = Trainer(load_preset("seed-relu-mlp"), config, progress=False)
    assert [type(callback) for callback in trainer.own_callbacks] == [BestEpoch, EarlyStopping]
    trainer.callbacks = [Keep()]  # replacing the caller's callbacks keeps the run's own
    result = trainer.run()
    assert result.status == "early-stopped" and len(result.history) == 3
    # the checkpoints carry the best epoch's figures, as counted before the caller's callbacks ran
    losses = [m.val_loss for m in result.history]
    assert trainer.best.best_val_loss == min(losses) and trainer.best.best_epoch == losses.index(min(losses)) + 1
    assert [c.epochs_without_gain for c in checkpoints][-1] == 2
    assert checkpoints[-1].best_val_loss == trainer.best.best_val_loss


def test_a_layer_that_cannot_take_its_input_is_named_instead_of_pytorchs_text(tmp_path):
    config = digits_config(epochs=1)
    arch = load_preset("seed-relu-mlp")
    folder = new_run_dir(tmp_path / "run", arch, config)
    trainer = Trainer(arch, config, callbacks=[RunRecorder(folder)], progress=False)
    trainer.model[1] = torch.nn.Linear(784, 120)  # made for 28×28 images; the digits give 8×8 = 64 values
    with pytest.raises(TrainingError) as raised:
        trainer.run()
    assert str(raised.value) == (
        "Layer 2 (Linear): it expects 784 inputs per image but got 64 (a batch of shape 64×64); the layers before it "
        "do not produce what it takes."
    )
    assert isinstance(raised.value.__cause__, RuntimeError) and "mat1" in str(raised.value.__cause__)
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "failed" and run["message"] == str(raised.value)


def test_a_layer_that_fails_in_its_own_way_is_named_with_its_reason():
    class Broken(torch.nn.Module):
        def forward(self, values):
            raise RuntimeError("this layer is broken\nsecond line")

    trainer = Trainer(load_preset("seed-relu-mlp"), digits_config(epochs=1), progress=False)
    trainer.model[2] = Broken()
    with pytest.raises(
        TrainingError, match=r"^Layer 3 \(Broken\) failed on a batch of shape 64×120: this layer is broken$"
    ):
        trainer.run()


def test_a_convolutional_network_is_scored_on_the_cpu_in_small_chunks_so_a_stop_waits_little():
    images, labels = torch.randn(5000, 1, 28, 28), torch.randint(0, 10, (5000,))
    loss_fn = torch.nn.CrossEntropyLoss()
    for preset, chunk in (("cnn-small", CPU_CONV_EVAL_BATCH), ("seed-simplenet", EVAL_BATCH)):
        done: list[int] = []
        score(
            build(load_preset(preset)),
            images,
            labels,
            loss_fn,
            progress=lambda count, total, done=done: done.append(count),
        )
        assert done == [*range(chunk, 5000, chunk), 5000], preset
    asked: list[int] = []
    with pytest.raises(ScoringStopped):
        score(build(load_preset("cnn-small")), images, labels, loss_fn, stop=lambda: asked.append(1) or len(asked) > 1)
    assert len(asked) == 2, "asked before each chunk: a stop waits for one chunk of 512 images at most"
