"""Twenty ``kill -9`` at random moments (starting up, loading, training, writing a checkpoint), each followed by
``--resume``: the run folder stays whole and the run ends with every epoch counted once."""

import random
import signal
import time

from tests.helpers import wait_until
from workbench.core.runs.folders import load_checkpoint, read_metrics, read_run
from workbench.core.runs.lock import writer_of
from workbench.core.runs.summaries import list_runs

KILLS = 20
TRAIN = ("--preset", "mlp", "--dataset", "digits", "--train-size", "400", "--val-size", "60", "--batch-size", "32")


def test_twenty_random_kills_never_lose_the_run(sandbox, tmp_path):
    run = sandbox.runs / "killed"
    rng = random.Random(2026)
    command = ("train", *TRAIN, "--epochs", "100000", "--out", run, "--quiet")
    saved_epochs = []
    for kill in range(KILLS):
        process = sandbox.start(*command, stderr_path=tmp_path / f"stderr-{kill}")
        if kill == 0:  # the first run must get as far as a checkpoint, or there is nothing to resume
            wait_until(lambda: (run / "checkpoint" / "latest.json").exists(), 120, "the first checkpoint")
        time.sleep(rng.uniform(0.2, 4.0))  # a process takes about 2-3 s to start training
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        process.stdout.close()
        assert process.returncode == -signal.SIGKILL, (tmp_path / f"stderr-{kill}").read_text()

        assert writer_of(run) is None, "the kernel released the lock"
        (summary,) = list_runs(sandbox.runs)
        assert not summary.damaged, summary.problem
        assert summary.status == "interrupted", summary
        _, _, checkpoint = load_checkpoint(run)
        assert [epoch.epoch for epoch in checkpoint.history] == list(range(1, checkpoint.epoch + 1))
        recorded = [epoch.epoch for epoch in read_metrics(run)]
        assert recorded == list(range(1, len(recorded) + 1)) and len(recorded) >= checkpoint.epoch - 1
        saved_epochs.append(checkpoint.epoch)
        # --epochs counts the epochs added to those done, and the total is held to 100,000
        command = ("train", "--resume", run, "--epochs", "50000", "--quiet")

    assert saved_epochs == sorted(saved_epochs), "no kill took a saved epoch back"
    final = sandbox.run("train", "--resume", run, "--epochs", "1", "--quiet")
    assert final.returncode == 0, final
    document = read_run(run)
    assert document["status"] == "finished"
    assert [epoch.epoch for epoch in read_metrics(run)] == list(range(1, saved_epochs[-1] + 2))
