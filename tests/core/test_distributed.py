"""Multi-process helpers without torchrun: sharding, device choice, the hand-off to a cluster, and the
distributed training path run in this process as a one-rank gloo group (it must equal the plain run exactly).

The real multi-process runs (torchrun, two CPU processes) are in tests/cli/test_torchrun.py.
"""

import json
import shlex

import pytest
import torch
import torch.distributed as dist

from tests.helpers import digits_config
from workbench.core.architecture import Architecture
from workbench.core.errors import ConfigError, RunError
from workbench.core.presets import load_preset
from workbench.core.training.config import TrainConfig, read_settings
from workbench.core.training.distributed import Cluster, cluster_commands, join, rank_device, write_handoff
from workbench.core.training.engine import Callback, Trainer

CPU = torch.device("cpu")


# Sharding a global batch


@pytest.mark.parametrize("batch, world", [(64, 2), (10, 3), (7, 4), (5, 5)])
def test_the_ranks_shares_make_up_the_global_batch_and_weigh_it_evenly(batch, world):
    index = torch.randperm(100)[:batch]
    parts = [Cluster(rank, world, rank, CPU).shard(index) for rank in range(world)]
    assert torch.equal(torch.cat([part for part, _ in parts]), index)
    assert max(len(part) for part, _ in parts) - min(len(part) for part, _ in parts) <= 1
    # DDP averages the ranks' gradients: the weighted means average to the mean over the whole batch
    assert sum(weight * len(index) / world for _, weight in parts) == pytest.approx(len(index))
    if batch % world == 0:
        assert all(weight == 1.0 for _, weight in parts)


def test_a_batch_smaller_than_the_processes_is_refused():
    Cluster(0, 4, 0, CPU).check_batch(4)
    with pytest.raises(ConfigError, match="batch of 3 cannot be shared among 4 processes.*at least 4"):
        Cluster(0, 4, 0, CPU).check_batch(3)


# Joining: nothing without torchrun


def test_without_torchrun_there_is_no_cluster(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert join("auto") is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert join("auto") is None
    assert not dist.is_initialized()


def test_a_world_without_a_rendezvous_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ConfigError, match="MASTER_ADDR is not set.*torchrun"):
        join("cpu")
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ConfigError, match="RANK should be a whole number"):
        join("cpu")


def test_each_rank_takes_the_cpu_or_its_own_gpu():
    assert rank_device("cpu", 3) == CPU
    if not torch.cuda.is_available():
        assert rank_device("auto", 1) == CPU
        with pytest.raises(ConfigError, match=r"no device 'cuda'.*cpu \(CPU\)"):
            rank_device("cuda", 0)
    with pytest.raises(ConfigError, match="no device 'tpu'"):
        rank_device("tpu", 0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_each_rank_takes_the_gpu_of_its_local_rank():
    count = torch.cuda.device_count()
    assert rank_device("auto", count - 1) == torch.device("cuda", count - 1)
    assert rank_device("cuda:0", count - 1) == torch.device("cuda", count - 1)
    with pytest.raises(ConfigError, match=f"at most {count} processes per machine"):
        rank_device("cuda", count)


# The distributed path in one process


@pytest.fixture
def one_rank_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield Cluster(0, 1, 0, CPU)
    dist.destroy_process_group()


@pytest.mark.parametrize("preset", ["seed-relu-mlp", "cnn-strong"])
def test_the_distributed_path_with_one_process_trains_exactly_like_the_plain_run(one_rank_group, preset):
    config = digits_config(train_size=1000 if preset == "seed-relu-mlp" else 300)
    plain = Trainer(load_preset(preset), config, progress=False).run()
    ranked = Trainer(load_preset(preset), config, progress=False, cluster=one_rank_group).run()
    assert [m.train_loss for m in ranked.history] == [m.train_loss for m in plain.history]
    assert [m.val_accuracy for m in ranked.history] == [m.val_accuracy for m in plain.history]
    for name, tensor in plain.model.state_dict().items():
        assert torch.equal(ranked.model.state_dict()[name], tensor), name


def test_a_stop_reaches_every_rank_one_batch_later(one_rank_group):
    class StopAtThree(Callback):
        batches = 0

        def on_batch_end(self, trainer, state):
            StopAtThree.batches += 1
            if state.batch == 3:
                trainer.stop()

    trainer = Trainer(
        load_preset("seed-relu-mlp"), digits_config(), callbacks=[StopAtThree()], progress=False, cluster=one_rank_group
    )
    result = trainer.run()
    assert result.status == "stopped" and StopAtThree.batches == 4


# Hand-off to a cluster


def test_the_handoff_files_hold_the_architecture_and_settings_with_the_device_left_to_the_cluster(tmp_path):
    config = digits_config(device="cpu", schedule="one-cycle", mixed_precision="off")
    architecture = load_preset("cnn-small")
    folder = write_handoff(tmp_path / "handoff", architecture, config)
    assert sorted(path.name for path in folder.iterdir()) == ["architecture.json", "config.json"]
    assert Architecture.load(folder / "architecture.json") == architecture
    saved = TrainConfig.from_dict(read_settings(folder / "config.json"))
    assert saved.device == "auto"
    assert saved.to_dict() == {**config.to_dict(), "device": "auto"}


def test_cluster_commands_train_the_handed_off_run_on_one_or_several_machines(tmp_path):
    folder = write_handoff(tmp_path / "my run", load_preset("mlp"), digits_config())
    commands = cluster_commands(folder, nproc_per_node=4, nnodes=3, rdzv_endpoint="node1:29400")
    base = folder.resolve()
    train = [
        "-m",
        "workbench",
        "train",
        "--arch",
        str(base / "architecture.json"),
        "--config",
        str(base / "config.json"),
        "--out",
        str(base / "run"),
    ]
    assert shlex.split(commands["single_node"]) == ["torchrun", "--standalone", "--nproc-per-node=4", *train]
    assert shlex.split(commands["multi_node"]) == [
        "torchrun",
        "--nnodes=3",
        "--nproc-per-node=4",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=node1:29400",
        "--rdzv-id=my-run",
        *train,
    ]
    assert "'" in commands["single_node"]  # the space in the folder's name is quoted
    assert set(cluster_commands(folder, 2)) == {"single_node", "multi_node"}


def test_cluster_commands_need_the_handoff_files(tmp_path):
    with pytest.raises(RunError, match="has no architecture.json: write the hand-off files first"):
        cluster_commands(tmp_path, 2)
    write_handoff(tmp_path, load_preset("mlp"), digits_config())
    with pytest.raises(ConfigError, match="at least 1"):
        cluster_commands(tmp_path, 0)


def test_settings_files_are_read_or_refused_with_a_message(tmp_path):
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"format": "workbench-run", "config": {"epochs": 4}}))
    assert read_settings(run) == {"epochs": 4}
    bad = tmp_path / "bad.json"
    bad.write_text('{"epochs": ')
    with pytest.raises(ConfigError, match="cannot be read"):
        read_settings(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        read_settings(bad)
    with pytest.raises(ConfigError, match="There is no settings file"):
        read_settings(tmp_path / "missing.json")
