"""Batch losses read back without stalling the GPU: the loss watch, late NaN detection, fused optimizers.

On the CPU every loss is looked at at once; on a GPU one batch late, and the training steps must then not make
the CPU wait for the GPU at all (checked with PyTorch's sync debug mode on a GPU machine). The CPU tests also
walk the GPU's one-batch-late path (``deferred``), so that its effect on a run is checked without a GPU.
"""

import copy
import functools
import math

import pytest
import torch

from tests import helpers
from workbench.core.presets import load_preset
from workbench.core.training import engine
from workbench.core.training.engine import Callback, Trainer, load_optimizer_state, make_optimizer
from workbench.core.training.loss_watch import LossWatch, read_losses

CUDA_AVAILABLE = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA_AVAILABLE, reason="needs a CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, needs_cuda])]
WATCHES = [("cpu", None), ("cpu", True), pytest.param("cuda", None, marks=[pytest.mark.cuda, needs_cuda])]


@pytest.fixture
def deferred_on_cpu(monkeypatch):
    """Runs on the CPU look at their losses one batch late, as on a GPU."""
    monkeypatch.setattr(engine, "LossWatch", functools.partial(LossWatch, deferred=True))


digits_config = functools.partial(helpers.digits_config, train_size=640)


@pytest.mark.parametrize("device, deferred", WATCHES)
def test_the_watch_reports_the_first_non_finite_loss_with_its_batch(device, deferred):
    watch = LossWatch(torch.device(device), deferred)
    found = [
        watch.add(batch, torch.tensor(loss, device=device))
        for batch, loss in enumerate([0.7, 0.6, math.inf, math.nan], start=1)
    ]
    if device == "cpu" and not deferred:
        assert found[:3] == [None, None, (3, math.inf)]
    else:  # one batch late: batch 3 is looked at when batch 4 comes
        assert found[:3] == [None, None, None] and found[3] == (3, math.inf)
    assert watch.settle() is None  # nothing left over once a bad loss has been reported


@pytest.mark.parametrize("device, deferred", WATCHES)
def test_settling_looks_at_the_losses_still_waiting(device, deferred):
    watch = LossWatch(torch.device(device), deferred)
    assert watch.add(1, torch.tensor(0.5, device=device)) is None
    last = watch.add(2, torch.tensor(math.nan, device=device))
    settled = watch.settle()
    assert (last or settled)[0] == 2 and math.isnan((last or settled)[1])
    assert (last is None) == (device == "cuda" or bool(deferred))


def test_losses_already_read_back_are_looked_at_at_once():
    watch = LossWatch(torch.device("cpu"))
    assert watch.add(1, 0.25) is None
    assert watch.add(2, -math.inf) == (2, -math.inf)


def test_read_losses_gives_floats_for_tensors_and_floats():
    assert read_losses([]) == []
    assert read_losses([0.5, 2.0]) == [0.5, 2.0]
    assert read_losses([torch.tensor(0.25), torch.tensor(1.5, dtype=torch.bfloat16), 3.0]) == [0.25, 1.5, 3.0]


class PoisonWeights(Callback):
    """Fills the first layer's weights with NaN after batch ``after``: the next batch's loss is NaN."""

    def __init__(self, after: int):
        self.after = after

    def on_batch_end(self, trainer, state):
        if state.epoch == 2 and state.batch == self.after:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(math.nan)


@pytest.mark.parametrize("after", [4, 9])  # 10 batches an epoch: the last one's loss is looked at when it ends
@pytest.mark.parametrize("device", DEVICES + ["cpu-deferred"])
def test_a_run_names_the_batch_whose_loss_went_bad_and_keeps_the_last_good_epoch(request, device, after):
    if device == "cpu-deferred":
        request.getfixturevalue("deferred_on_cpu")
        device = "cpu"

    class Keep(Callback):
        weights = None

        def on_epoch_end(self, trainer, state, metrics):
            Keep.weights = {name: tensor.clone() for name, tensor in trainer.model.state_dict().items()}

    trainer = Trainer(
        load_preset("seed-relu-mlp"),
        digits_config(device=device, epochs=3),
        progress=False,
        callbacks=[Keep(), PoisonWeights(after=after)],
    )
    result = trainer.run()
    assert result.status == "diverged"
    assert f"The loss became NaN at epoch 2, batch {after + 1}:" in result.message
    assert len(result.history) == 1
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(tensor, Keep.weights[name]), name


@pytest.mark.parametrize("preset", ["seed-relu-mlp", "cnn-small"])
def test_looking_at_the_losses_a_batch_late_trains_exactly_the_same(monkeypatch, preset):
    config = digits_config(train_size=400, epochs=2, optimizer="adamw", schedule="one-cycle")
    at_once = Trainer(load_preset(preset), config, progress=False).run()
    monkeypatch.setattr(engine, "LossWatch", functools.partial(LossWatch, deferred=True))
    late = Trainer(load_preset(preset), config, progress=False).run()
    assert [m.train_loss for m in late.history] == [m.train_loss for m in at_once.history]
    assert late.test_accuracy == at_once.test_accuracy
    for name, tensor in at_once.model.state_dict().items():
        assert torch.equal(late.model.state_dict()[name], tensor), name


def test_the_epoch_loss_is_the_mean_of_the_batch_losses_the_callbacks_saw():
    class Collect(Callback):
        def __init__(self):
            self.losses = []

        def on_batch_end(self, trainer, state):
            self.losses.append(state.batch_loss)

    collect = Collect()
    config = digits_config(train_size=600, epochs=1)  # 9 batches of 64 and one of 24
    result = Trainer(load_preset("seed-relu-mlp"), config, progress=False, callbacks=[collect]).run()
    sizes = [64] * 9 + [24]
    expected = sum(loss * size for loss, size in zip(collect.losses, sizes)) / 600
    assert result.history[0].train_loss == pytest.approx(expected, rel=1e-6)


def test_a_saved_optimizer_state_loads_into_another_implementation_and_steps_alike():
    """A GPU run (fused optimizer) continued on the CPU (default implementation), and the other way round."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    fused = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
    for _ in range(3):
        fused.zero_grad()
        model(torch.randn(8, 4)).square().mean().backward()
        fused.step()
    twin = torch.nn.Linear(4, 3)
    twin.load_state_dict(model.state_dict())
    plain = torch.optim.AdamW(twin.parameters(), lr=1e-2, weight_decay=0.01, fused=False)  # the for-each kind
    load_optimizer_state(plain, copy.deepcopy(fused.state_dict()))  # as a checkpoint holds it
    assert not plain.param_groups[0]["fused"]
    batch = torch.randn(8, 4)
    for net, optimizer in ((model, fused), (twin, plain)):
        optimizer.zero_grad()
        net(batch).square().mean().backward()
        optimizer.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("optimizer, fused", [("sgd", True), ("adam", True), ("adamw", True), ("rmsprop", None)])
@pytest.mark.cuda
@needs_cuda
def test_on_cuda_the_optimizers_that_can_be_fused_are(optimizer, fused):
    model = torch.nn.Linear(4, 3).cuda()
    made = make_optimizer(model, digits_config(optimizer=optimizer, device="cuda"))
    assert made.param_groups[0].get("fused") == fused


def test_on_the_cpu_sgd_keeps_the_default_implementation():
    made = make_optimizer(torch.nn.Linear(4, 3), digits_config(optimizer="sgd"))
    assert not made.param_groups[0]["fused"]  # fused SGD gains nothing on the CPU (Adam's: test_fast_path.py)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("preset", ["seed-relu-mlp", "cnn-strong"])
def test_on_cuda_training_steps_never_make_the_cpu_wait_for_the_gpu(preset):
    """Between the first and the last batch of an epoch, any synchronising call raises (sync debug mode)."""

    class Strict(Callback):
        def on_batch_end(self, trainer, state):
            if state.batch == 1:
                torch.cuda.set_sync_debug_mode("error")
            if state.batch == state.batches_per_epoch - 1:
                torch.cuda.set_sync_debug_mode("default")

    try:
        result = Trainer(
            load_preset(preset),
            digits_config(device="cuda", optimizer="adamw", schedule="one-cycle"),
            progress=False,
            callbacks=[Strict()],
        ).run()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert result.status == "finished" and result.history[-1].val_accuracy > 0.5
