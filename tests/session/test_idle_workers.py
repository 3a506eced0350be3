"""The session's thread lets its OpenMP workers go while a run trains, and computes as before afterwards."""

import os
import sys
import threading

import pytest
import torch

from workbench.session.training import _gnu_openmp_pause, release_idle_workers

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or _gnu_openmp_pause() is None or torch.get_num_threads() < 2,
    reason="GNU OpenMP's teams, on Linux, with more than one thread",
)
BIG = 4_000_000  # elements: well past PyTorch's grain size, so the addition runs on every thread


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def parallel_sum() -> float:
    return float(torch.ones(BIG).add_(1).sum())


def test_the_workers_of_this_threads_team_go_and_come_back_when_it_computes_again():
    parallel_sum()
    with_team = os_threads()
    release_idle_workers()
    assert os_threads() == with_team - (torch.get_num_threads() - 1)
    release_idle_workers()  # nothing left to let go
    assert os_threads() == with_team - (torch.get_num_threads() - 1)
    assert parallel_sum() == 2.0 * BIG
    assert os_threads() == with_team


def test_another_threads_team_is_left_alone():
    release_idle_workers()  # this thread holds no team now
    ready, done = threading.Event(), threading.Event()
    results = []

    def work() -> None:
        results.append(parallel_sum())
        ready.set()
        done.wait(30)
        results.append(parallel_sum())

    worker = threading.Thread(target=work)
    worker.start()
    assert ready.wait(30)
    with_workers_team = os_threads()
    release_idle_workers()
    assert os_threads() == with_workers_team
    done.set()
    worker.join(30)
    assert results == [2.0 * BIG, 2.0 * BIG]
