"""Training on several processes or machines, and handing a run over to a cluster.

``torchrun --nproc-per-node=N -m workbench train ...`` starts N processes (ranks) that train one run together
with DistributedDataParallel: every rank preloads the whole dataset, all of them shuffle it with the run's seed
(the same permutation everywhere), and rank ``r`` takes its share of each global batch of ``batch_size``
samples, so each optimiser step sees exactly the samples of the single-process run. DDP averages the gradients;
each rank's loss is weighted by its share of the batch, so the average is the mean over the global batch even
where a batch does not split evenly. Every rank evaluates the whole validation and test sets; rank 0's figures
are the run's, and only rank 0 writes the run folder and prints.

:func:`join` reads torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); without it (or with one
process) there is no :class:`Cluster` and a run is the plain single-process one. :func:`cluster_commands` and
:func:`write_handoff` prepare a run for a cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from workbench.core.architecture import Architecture
from workbench.core.errors import ConfigError, RunError, TrainingError
from workbench.core.files import atomic_write_text
from workbench.core.training.config import TrainConfig
from workbench.core.training.devices import available_devices, resolve_device

HANDOFF_ARCHITECTURE = "architecture.json"
HANDOFF_CONFIG = "config.json"
HANDOFF_RUN = "run"
"""The run folder the hand-off commands write, inside the hand-off folder."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-process run: its rank among ``world_size``, its rank on this machine,
    and the device it trains on. The process group is set up (see :func:`join`)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes the run folder and prints."""
        return self.rank == 0

    def check_batch(self, batch_size: int) -> None:
        """A :class:`ConfigError` unless every rank gets at least one sample of a full batch."""
        if batch_size < self.world_size:
            raise ConfigError(
                f"The batch of {batch_size} cannot be shared among {self.world_size} processes: "
                f"use a batch size of at least {self.world_size} (the batch size is the total over "
                f"all processes)."
            )

    def shard(self, index: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This rank's part of a global batch and the weight of its mean loss.

        The parts differ by at most one sample; the weight ``world_size × part / batch`` makes the gradients
        DDP averages the mean over the whole batch (it is 1 when the batch splits evenly).
        """
        part = torch.tensor_split(index, self.world_size)[self.rank]
        return part, len(part) * self.world_size / len(index)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model under DistributedDataParallel (which starts every rank from rank 0's weights)."""
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def agree(self, weighted_loss: torch.Tensor, stop: bool) -> tuple[float, bool]:
        """The loss over the whole batch and whether any rank was asked to stop, the same on every rank.

        ``weighted_loss`` is this rank's mean loss times its :meth:`shard` weight.
        """
        packed = torch.stack(
            [weighted_loss.detach().float() / self.world_size, torch.tensor(float(stop), device=weighted_loss.device)]
        )
        with self.exchanging():
            dist.all_reduce(packed)
        loss, stops = packed.tolist()
        return loss, stops > 0

    def from_main(self, *values: float) -> tuple[float, ...]:
        """Rank 0's ``values`` on every rank, so that decisions taken on them (early stopping) agree."""
        packed = torch.tensor(values, dtype=torch.float64, device=self.device)
        with self.exchanging():
            dist.broadcast(packed, 0)
        return tuple(packed.tolist())

    def sync_buffers(self, model: nn.Module) -> None:
        """Give every rank rank 0's buffers (batch-norm statistics, which each rank gathers on its own shard)."""
        with self.exchanging():
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)

    def local_first(self, load: Callable[[], _T]) -> _T:
        """``load()`` on each machine's first rank before the others, so a dataset is downloaded once."""
        if self.local_rank != 0:
            with self.exchanging():
                dist.barrier()
        result = load()
        if self.local_rank == 0:
            with self.exchanging():
                dist.barrier()
        return result

    @contextlib.contextmanager
    def exchanging(self) -> Iterator[None]:
        """Around anything that talks to the other ranks (DDP's backward pass too): losing them, which gloo and
        NCCL report as a RuntimeError, becomes a :class:`TrainingError` saying so."""
        try:
            yield
        except RuntimeError as error:
            lines = str(error).strip().splitlines()
            raise TrainingError(
                f"Process {self.rank} lost contact with the other processes of the run "
                f"({lines[0] if lines else type(error).__name__}): one of them has probably "
                f"failed; torchrun's report names it."
            ) from error


def join(device_choice: str) -> Cluster | None:
    """This process's :class:`Cluster` when torchrun started several, with the process group set up;
    None for a single process.

    Backend nccl on CUDA, gloo on the CPU. Under torchrun each rank trains on ``cuda:LOCAL_RANK`` whichever
    GPU ``device_choice`` names (``auto`` and ``cuda`` included); a GPU that is not there is a
    :class:`ConfigError` listing the devices there are.
    """
    world_size = _environment_int("WORLD_SIZE", default=1)
    if world_size <= 1:
        return None
    rank, local_rank = _environment_int("RANK"), _environment_int("LOCAL_RANK")
    if not dist.is_available():
        raise ConfigError("This PyTorch is built without torch.distributed: train with one process.")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise ConfigError(
                f"WORLD_SIZE is {world_size} but {name} is not set: start several processes with "
                f"torchrun (torchrun --nproc-per-node=N -m workbench train ...)."
            )
    device = rank_device(device_choice, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return Cluster(rank, world_size, local_rank, device)


def leave(finished: bool = False) -> None:
    """Take down the process group :func:`join` set up, if there is one. ``finished``: every rank got to its end,
    so they wait for each other first and the process group goes down together; gloo's worker threads of a rank
    that left early could otherwise abort that process (SIGABRT) while the others still talk to it."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if finished:
        with contextlib.suppress(RuntimeError):  # a rank that is gone: nothing to wait for
            dist.barrier()
    dist.destroy_process_group()


@contextlib.contextmanager
def joined(device_choice: str) -> Iterator[Cluster | None]:
    """:func:`join` for the length of a ``with`` block, then :func:`leave`."""
    cluster = join(device_choice)
    finished = False
    try:
        yield cluster
        finished = True
    finally:
        if cluster is not None:
            leave(finished)


def rank_device(choice: str, local_rank: int) -> torch.device:
    """The device of the rank with ``local_rank`` on this machine for the user's ``choice``."""
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    device = resolve_device(choice)  # a device that is not here: the message listing those that are
    if device.type != "cuda":
        raise ConfigError(f"Training on several processes needs CUDA GPUs or the CPU, not '{choice}'.")
    count = torch.cuda.device_count()
    if local_rank >= count:
        listing = ", ".join(f"{device_id} ({description})" for device_id, description in available_devices())
        raise ConfigError(
            f"Process {local_rank} on this machine needs cuda:{local_rank}, but the devices here "
            f"are: {listing}. Start at most {count} processes per machine (--nproc-per-node)."
        )
    return torch.device("cuda", local_rank)


def processes_on_this_machine() -> int:
    """How many processes of the run share this machine: torchrun's ``LOCAL_WORLD_SIZE``, else 1."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _environment_int(name: str, default: int | None = None) -> int:
    text = os.environ.get(name)
    if text is None and default is not None:
        return default
    try:
        return int(text or "")
    except ValueError:
        raise ConfigError(
            f"The environment variable {name} should be a whole number set by torchrun, not {text!r}."
        ) from None


# Hand-off to a cluster


def write_handoff(folder: str | os.PathLike, architecture: Architecture, config: TrainConfig) -> Path:
    """Write ``architecture.json`` and ``config.json`` into ``folder`` (created if needed) for
    :func:`cluster_commands`; the folder.

    The settings are saved as they are, except the device, which becomes ``auto``: a device chosen on this
    machine means nothing on another (each process takes its own GPU, or the CPU where there is none).
    """
    folder = Path(folder)
    config.check()
    settings = TrainConfig.from_dict({**config.to_dict(), "device": "auto"})
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / HANDOFF_ARCHITECTURE, architecture.to_json())
        atomic_write_text(folder / HANDOFF_CONFIG, json.dumps(settings.to_dict(), indent=2) + "\n")
    except OSError as error:
        raise RunError(f"Cannot write the hand-off files into {folder}: {error.strerror or error}.") from None
    return folder


def cluster_commands(
    run_folder: Path, nproc_per_node: int, nnodes: int = 1, rdzv_endpoint: str = "HOST:29500"
) -> dict[str, str]:
    """The commands that train the architecture and settings saved in ``run_folder`` (by :func:`write_handoff`)
    headless with torchrun, writing the run into ``run_folder/run``.

    ``single_node``: one machine with ``nproc_per_node`` processes (one per GPU). ``multi_node``: the command
    to type on each of ``nnodes`` machines, which meet at ``rdzv_endpoint`` (``HOST:PORT`` of the first one;
    the port must be open between them). Paths are absolute and quoted for a POSIX shell; every machine must
    see the folder at the same path (a shared file system). :class:`RunError` if a hand-off file is missing.
    """
    if not (isinstance(nproc_per_node, int) and nproc_per_node >= 1 and isinstance(nnodes, int) and nnodes >= 1):
        raise ConfigError(
            f"Processes per machine and machines must be at least 1, not {nproc_per_node!r} and {nnodes!r}."
        )
    folder = Path(run_folder).resolve()
    for name in (HANDOFF_ARCHITECTURE, HANDOFF_CONFIG):
        if not (folder / name).is_file():
            raise RunError(f"{folder} has no {name}: write the hand-off files first (write_handoff).")
    train = (
        f"-m workbench train --arch {shlex.quote(str(folder / HANDOFF_ARCHITECTURE))} "
        f"--config {shlex.quote(str(folder / HANDOFF_CONFIG))} --out {shlex.quote(str(folder / HANDOFF_RUN))}"
    )
    job = "".join(character if character.isalnum() else "-" for character in folder.name) or "workbench"
    return {
        "single_node": f"torchrun --standalone --nproc-per-node={nproc_per_node} {train}",
        "multi_node": (
            f"torchrun --nnodes={nnodes} --nproc-per-node={nproc_per_node} --rdzv-backend=c10d "
            f"--rdzv-endpoint={shlex.quote(rdzv_endpoint)} --rdzv-id={job} {train}"
        ),
    }
