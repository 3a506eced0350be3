"""The fast path's options: mixed precision, channels-last, torch.compile and its fallback, out of memory.

On the CPU: Automatic picks bfloat16 where the CPU computes it natively and float32 where it would be emulated
(both cases are played on any CPU by standing in for the feature detection), asking for bfloat16 where it is
emulated trains as asked and says it is slower, convolutional networks train channels-last like the contiguous
layout, bfloat16 and float32 runs end within a few points of each other and the NaN guard still works under
autocast, a failing torch.compile falls back to eager exactly, and an out-of-memory error ends the run marked
failed. The CUDA tests run on a GPU machine.
"""

import json
from functools import partial

import pytest
import torch

from tests import helpers
from workbench.core.errors import ConfigError, TrainingError
from workbench.core.presets import load_preset
from workbench.core.runs.folders import load_checkpoint, new_run_dir
from workbench.core.runs.recorder import RunRecorder
from workbench.core.training import devices
from workbench.core.training.config import TrainConfig
from workbench.core.training.devices import choose_precision
from workbench.core.training.engine import Callback, Trainer, wants_channels_last

CPU = torch.device("cpu")


digits_config = partial(helpers.digits_config, train_size=600)


def train(preset="seed-relu-mlp", callbacks=(), channels_last=None, **overrides):
    trainer = Trainer(
        load_preset(preset),
        digits_config(**overrides),
        callbacks=list(callbacks),
        progress=False,
        channels_last=channels_last,
    )
    return trainer, trainer.run()


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))


# Settings


@pytest.mark.parametrize(
    "values, message",
    [
        ({"mixed_precision": "maybe"}, "Unknown mixed_precision 'maybe'"),
        ({"compile": "yes"}, "compile must be true or false"),
    ],
)
def test_bad_fast_path_settings_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(values)


def test_settings_saved_before_the_fast_path_still_load():
    old = digits_config().to_dict()
    del old["mixed_precision"], old["compile"]
    config = TrainConfig.from_dict(old)
    assert config.mixed_precision == "auto" and config.compile is False


def test_automatic_is_bfloat16_on_a_cpu_that_computes_it_natively_and_says_why(native_cpu):
    automatic = choose_precision("auto", CPU)
    assert automatic.dtype == torch.bfloat16 and not automatic.slower
    assert automatic.words() == "bfloat16: this CPU computes it natively, with AVX-512 BF16"
    assert choose_precision("on", CPU).dtype == torch.bfloat16
    off = choose_precision("off", CPU)
    assert off.dtype is None and off.words() == "float32: mixed precision is off"


def test_automatic_is_float32_where_bfloat16_would_be_emulated_and_on_is_marked_slower(emulating_cpu):
    automatic = choose_precision("auto", CPU)
    assert automatic.dtype is None
    assert automatic.words() == "float32: this CPU has no AVX-512 BF16 or AMX, so bfloat16 would be slower"
    asked = choose_precision("on", CPU)
    assert asked.dtype == torch.bfloat16 and asked.slower and "slower than float32" in asked.reason


def test_the_feature_detection_is_pytorchs():
    found = devices.cpu_bfloat16_instructions()
    native = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    assert (found is not None) == native


def test_mixed_precision_elsewhere_is_float32_or_refused():
    assert choose_precision("auto", torch.device("mps")).dtype is None
    with pytest.raises(ConfigError, match="CUDA GPUs and the CPU, not on 'mps'"):
        choose_precision("on", torch.device("mps"))


# The CPU fast path


def test_on_a_native_cpu_the_defaults_train_convolutions_in_bfloat16_and_channels_last(native_cpu):
    trainer, auto = train("cnn-small", seed=5)
    assert trainer.precision == torch.bfloat16 and trainer.channels_last and trainer.notices == []
    assert trainer.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert all(parameter.dtype == torch.float32 for parameter in auto.model.parameters())
    assert all(isinstance(m.train_loss, float) and m.train_loss == m.train_loss for m in auto.history)
    _, again = train("cnn-small", seed=5)
    assert same_weights(auto, again)  # bfloat16 on the CPU repeats exactly too


def test_where_bfloat16_is_emulated_automatic_trains_exactly_as_float32(emulating_cpu):
    trainer, auto = train("cnn-small", seed=5)
    assert trainer.precision is None and trainer.notices == []
    _, off = train("cnn-small", seed=5, mixed_precision="off")
    assert same_weights(auto, off)
    assert [m.val_loss for m in auto.history] == [m.val_loss for m in off.history]


def test_bfloat16_asked_for_where_it_is_emulated_trains_and_says_it_is_slower(emulating_cpu):
    notes = Notes()
    trainer, result = train(callbacks=[notes], mixed_precision="on", epochs=1)
    assert trainer.precision == torch.bfloat16 and result.status == "finished"
    assert notes.messages == trainer.notices and len(notes.messages) == 1
    assert "only emulates it: this run will be slower than in float32" in notes.messages[0]


def test_bfloat16_and_float32_runs_of_cnn_small_end_within_a_few_points(native_cpu):
    settings = {"train_size": 1000, "epochs": 6, "optimizer": "adamw", "lr": 3e-3, "seed": 2}
    _, fast = train("cnn-small", **settings)
    _, exact = train("cnn-small", mixed_precision="off", **settings)
    assert exact.test_accuracy >= 0.85  # a run that learns, or the comparison says nothing
    assert abs(fast.test_accuracy - exact.test_accuracy) <= 0.04
    assert abs(fast.history[-1].val_loss - exact.history[-1].val_loss) <= 0.1


def test_the_nan_guard_works_under_bfloat16_autocast(native_cpu):
    kept = {}

    class Keep(Callback):
        def on_epoch_end(self, trainer, state, metrics):
            kept.update({name: tensor.clone() for name, tensor in trainer.model.state_dict().items()})

    settings = {"optimizer": "sgd", "lr": 50.0, "momentum": 0.9, "epochs": 5, "loss": "mse"}
    trainer, result = train(callbacks=[Keep()], mixed_precision="on", **settings)
    assert trainer.precision == torch.bfloat16
    assert result.status == "diverged" and "learning rate 50 is probably too high" in result.message
    assert all(torch.isfinite(tensor).all() for tensor in result.model.state_dict().values())
    for name, tensor in result.model.state_dict().items():
        assert name not in kept or torch.equal(tensor, kept[name])  # the last good epoch's weights


# Mixed precision on the CPU, when asked for


def test_bfloat16_autocast_on_the_cpu_trains_and_evaluates(tmp_path):
    config = digits_config(mixed_precision="on", epochs=3)
    trainer = Trainer(load_preset("seed-relu-mlp"), config, progress=False)
    folder = new_run_dir(tmp_path / "run", trainer.architecture, config)
    trainer.callbacks.append(RunRecorder(folder))
    result = trainer.run()
    assert trainer.precision == torch.bfloat16
    assert result.status == "finished" and result.history[-1].val_accuracy >= 0.85
    assert next(result.model.parameters()).dtype == torch.float32  # autocast leaves the weights in float32
    run = json.loads((folder / "run.json").read_text())
    assert run["execution"] == {
        "precision": "bfloat16",
        "precision_reason": trainer.precision_choice.reason,
        "channels_last": False,
        "threads": torch.get_num_threads(),
        "compile": False,
        "processes": 1,
    }
    evaluation = json.loads((folder / "evaluation.json").read_text())
    assert evaluation["accuracy"] == pytest.approx(result.test_accuracy)


# Channels-last (automatic for convolutional networks, on CUDA and the CPU)


def test_channels_last_is_chosen_for_convolutional_networks_on_cuda_and_the_cpu():
    from workbench.core.architecture import build

    cnn, mlp = build(load_preset("cnn-small")), build(load_preset("mlp"))
    assert wants_channels_last(cnn, torch.device("cuda", 0)) and wants_channels_last(cnn, CPU)
    assert not wants_channels_last(mlp, torch.device("cuda", 0)) and not wants_channels_last(mlp, CPU)
    assert not wants_channels_last(cnn, torch.device("mps"))


def test_channels_last_trains_like_the_contiguous_layout_and_checkpoints(tmp_path):
    config = digits_config(train_size=300)
    trainer = Trainer(load_preset("cnn-strong"), config, progress=False, channels_last=True)
    assert trainer.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    folder = new_run_dir(tmp_path / "run", trainer.architecture, config)
    trainer.callbacks.append(RunRecorder(folder))
    result = trainer.run()
    _, contiguous = train("cnn-strong", train_size=300)
    for a, b in zip(result.history, contiguous.history):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4)
        assert a.val_accuracy == pytest.approx(b.val_accuracy, abs=0.011)
    _, _, checkpoint = load_checkpoint(folder)  # safetensors takes only contiguous tensors
    assert all(tensor.is_contiguous() for tensor in checkpoint.weights.values())


# torch.compile: a failure falls back to eager, exactly where it was


class BrokenCompile:
    """Stands in for torch.compile: the compiled module fails when it first meets a batch of ``fail_size``
    items (None: any), as compilers do at the first forward of a new shape."""

    def __init__(self, fail_size=None):
        self.fail_size = fail_size
        self.failures = 0

    def __call__(self, module, **options):
        def compiled(inputs):
            if self.fail_size in (None, len(inputs)):
                self.failures += 1
                raise RuntimeError("backend compiler failed: no working C++ compiler\ndetails...")
            return module(inputs)

        return compiled


class Notes(Callback):
    def __init__(self):
        self.messages = []

    def on_notice(self, trainer, message):
        self.messages.append(message)


@pytest.mark.parametrize("fail_size", [None, 600 - 9 * 64], ids=["first batch", "last, smaller batch"])
def test_a_failing_compile_falls_back_to_eager_with_a_notice_and_the_same_result(monkeypatch, fail_size):
    broken = BrokenCompile(fail_size)
    monkeypatch.setattr(torch, "compile", broken)
    notes = Notes()
    trainer, compiled = train("mlp", callbacks=[notes], compile=True, seed=3)
    assert broken.failures == 1
    assert trainer.notices == notes.messages and len(notes.messages) == 1
    assert notes.messages[0].startswith(
        "torch.compile failed (RuntimeError: backend compiler failed: no working "
        "C++ compiler); the run goes on without it"
    )
    _, eager = train("mlp", seed=3)  # mlp has dropout: the random stream is put back too
    assert compiled.status == "finished" and same_weights(compiled, eager)
    assert [m.train_loss for m in compiled.history] == [m.train_loss for m in eager.history]


def test_compile_refused_outright_is_a_notice_too(monkeypatch):
    def refuse(module, **options):
        raise RuntimeError("torch.compile is not supported on this Python")

    monkeypatch.setattr(torch, "compile", refuse)
    trainer, result = train(compile=True)
    assert result.status == "finished"
    assert trainer.notices == [
        "torch.compile failed (RuntimeError: torch.compile is not supported on this Python); "
        "the run goes on without it, as plain (eager) PyTorch."
    ]


def test_a_compile_that_works_leaves_no_notice(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda module, **options: module)
    trainer, result = train(compile=True)
    assert result.status == "finished" and trainer.notices == []


# Out of memory: the run ends, marked failed, with advice


class RunOutOfMemory(Callback):
    def on_batch_end(self, trainer, state):
        if state.epoch == 2 and state.batch == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_running_out_of_memory_marks_the_run_failed_and_suggests_a_smaller_batch(tmp_path):
    config = digits_config(batch_size=32)
    failures = []

    class Failed(Callback):
        def on_train_failed(self, trainer, state, message):
            failures.append(message)

    trainer = Trainer(load_preset("seed-relu-mlp"), config, progress=False, callbacks=[RunOutOfMemory(), Failed()])
    folder = new_run_dir(tmp_path / "run", trainer.architecture, config)
    trainer.callbacks.insert(0, RunRecorder(folder))
    with pytest.raises(TrainingError, match=r"ran out of memory: try a smaller batch size \(this run's is 32\)"):
        trainer.run()
    assert len(failures) == 1
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "failed" and "smaller batch size" in run["message"]
    assert "metrics" not in run and not (folder / "model.safetensors").exists()
    assert json.loads((folder / "checkpoint" / "latest.json").read_text())["epoch"] == 1


# On a CUDA GPU


def cuda_test(function):
    return pytest.mark.cuda(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(function))


@cuda_test
def test_on_cuda_convolutional_networks_train_in_bfloat16_and_channels_last():
    trainer, result = train("cnn-strong", device="cuda", epochs=4, train_size=1000)
    assert trainer.precision == (torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else None)
    assert trainer.channels_last and trainer.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert result.status == "finished" and result.history[-1].val_accuracy >= 0.9
    mlp_trainer, _ = train("mlp", device="cuda", epochs=1)
    assert not mlp_trainer.channels_last


@cuda_test
def test_on_cuda_mixed_precision_off_trains_in_float32():
    trainer, result = train("cnn-small", device="cuda", mixed_precision="off", channels_last=False, epochs=3)
    assert trainer.precision is None and not trainer.channels_last
    assert result.status == "finished" and result.history[-1].val_accuracy >= 0.75


@cuda_test
def test_on_cuda_a_real_out_of_memory_error_marks_the_run_failed(tmp_path):
    class Hog(Callback):
        def on_batch_end(self, trainer, state):
            if state.batch == 2:
                torch.empty(2**50, device=trainer.device)  # a petabyte

    config = digits_config(device="cuda")
    trainer = Trainer(load_preset("cnn-small"), config, progress=False, callbacks=[Hog()])
    folder = new_run_dir(tmp_path / "run", trainer.architecture, config)
    trainer.callbacks.insert(0, RunRecorder(folder))
    with pytest.raises(TrainingError, match="ran out of memory: try a smaller batch size"):
        trainer.run()
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"


@cuda_test
def test_on_cuda_torch_compile_trains_without_falling_back():
    trainer, result = train("cnn-small", device="cuda", compile=True, epochs=3)
    assert trainer.notices == [], trainer.notices
    assert result.status == "finished" and result.history[-1].val_accuracy >= 0.7


def test_the_gpu_benchmark_says_it_is_skipped_without_cuda(monkeypatch, capsys):
    from benchmarks import gpu_bench

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("sys.argv", ["gpu_bench"])
    gpu_bench.main()
    assert capsys.readouterr().out == "no CUDA device: GPU benchmark skipped\n"


def test_the_gpu_benchmark_runs_through_on_the_cpu_with_small_sizes(fashion_mnist, monkeypatch, capsys):
    """The script a lent GPU machine runs once: every table and both recipes must come out."""
    from benchmarks import gpu_bench

    monkeypatch.setattr(
        "sys.argv",
        [
            "gpu_bench",
            "--device",
            "cpu",
            "--train-size",
            "256",
            "--epochs",
            "2",
            "--recipe-train-size",
            "512",
            "--recipe-val-size",
            "100",
            "--recipe-epochs",
            "1",
            "--recipe-batch-sizes",
            "512",
        ],
    )
    gpu_bench.main()
    out = capsys.readouterr().out
    assert out.startswith(f"torch {torch.__version__}, CPU\n")
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("cnn-small ", "cnn-strong "))}
    assert set(rows) == {"cnn-small", "cnn-strong"}
    assert all(row.count("x)") == 4 and "(1.00x)" in row for row in rows.values())  # 4 variants, against the first
    assert "AdamW lr 0.004243 one-cycle, weight decay 5e-4, batch 512, up to 1 epochs" in out
    assert out.count("not reached in 1 epochs") == 1


@pytest.mark.parametrize("optimizer, fused", [("adam", True), ("adamw", True), ("sgd", None), ("rmsprop", None)])
def test_adam_and_adamw_take_the_fused_implementation_on_the_cpu(optimizer, fused):
    from workbench.core.architecture import build
    from workbench.core.training.recipe import make_optimizer

    made = make_optimizer(build(load_preset("cnn-small")), digits_config(optimizer=optimizer))
    assert made.param_groups[0].get("fused") == fused
