"""How many CPU threads PyTorch computes with: every physical core by default, or the user's count.

The count is PyTorch's intra-op thread pool, a setting of the whole process (``torch.set_num_threads``). Hardware
threads that share a core (SMT, Hyper-Threading) compete for the same arithmetic units, so the default is one
thread per physical core the process may run on; several processes on one machine (``torchrun``) share them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil
import torch

from workbench.core.errors import ConfigError


@dataclass(frozen=True)
class Threads:
    """The threads a run computes with on the CPU, and why, e.g. "2 threads (all physical cores)"."""

    count: int
    reason: str

    def words(self) -> str:
        return f"{self.count} thread{'s' if self.count != 1 else ''} ({self.reason})"


def usable_cpus() -> int:
    """The CPUs (hardware threads) this process may run on: its affinity mask where the system has one."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def physical_cores() -> int:
    """The physical cores among the CPUs this process may run on (psutil counts cores; SMT siblings share one)."""
    logical = psutil.cpu_count(logical=True) or 1
    cores = psutil.cpu_count(logical=False) or logical
    per_core = max(1, logical // cores)
    return max(1, min(cores, usable_cpus() // per_core))


def check_threads(count: int) -> int:
    """``count`` if this machine can run that many threads; otherwise a :class:`ConfigError` giving the range."""
    most = usable_cpus()
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= most:
        raise ConfigError(
            f"--threads must be between 1 and {most} (the CPU threads this machine gives the workbench), not {count}."
        )
    return count


def choose_threads(requested: int | None = None, processes_here: int = 1) -> Threads:
    """The threads for ``requested`` (None: the default): every physical core, shared among ``processes_here``
    processes on this machine."""
    if requested is not None:
        return Threads(check_threads(requested), "as asked")
    cores = physical_cores()
    if processes_here > 1:
        return Threads(max(1, cores // processes_here), f"{cores} physical cores shared by {processes_here} processes")
    return Threads(cores, "all physical cores" if cores > 1 else "the one physical core")


def use_threads(requested: int | None = None, processes_here: int = 1) -> Threads:
    """Set PyTorch's CPU threads to :func:`choose_threads`'s count and return the choice."""
    threads = choose_threads(requested, processes_here)
    torch.set_num_threads(threads.count)
    return threads
