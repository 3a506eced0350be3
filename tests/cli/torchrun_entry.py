"""``torchrun ... tests/cli/torchrun_entry.py train ...``: ``workbench train`` with test-only callbacks on every rank.

The script stands in for ``-m workbench``: it hands its arguments to :func:`workbench.cli.main` with two callback
factories (the command line's extension point), which the environment variables below switch on.

- ``WORKBENCH_TEST_EXIT_RANK=R:E``: rank R dies like a crashed process (``os._exit(1)``, no clean-up) after the
  first batch of epoch E.
- ``WORKBENCH_TEST_RANK_WEIGHTS_DIR=DIR``: each rank writes its final weights to ``DIR/rank-R.safetensors``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import safetensors.torch

from workbench import cli
from workbench.core.training.engine import Callback, Trainer, TrainResult, TrainState

EXIT_VARIABLE = "WORKBENCH_TEST_EXIT_RANK"
WEIGHTS_VARIABLE = "WORKBENCH_TEST_RANK_WEIGHTS_DIR"


def rank_of(trainer: Trainer) -> int:
    return trainer.cluster.rank if trainer.cluster is not None else 0


class ExitAtEpoch(Callback):
    """Makes this rank die like a crashed process (no clean-up) after the first batch of ``epoch``."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_batch_end(self, trainer: Trainer, state: TrainState) -> None:
        if state.epoch == self.epoch:
            os._exit(1)


class WriteWeights(Callback):
    """Writes this rank's final weights into ``folder`` as ``rank-R.safetensors``."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_train_end(self, trainer: Trainer, state: TrainState, result: TrainResult) -> None:
        weights = {name: tensor.detach().cpu().contiguous() for name, tensor in result.model.state_dict().items()}
        self.folder.mkdir(parents=True, exist_ok=True)
        safetensors.torch.save_file(weights, str(self.folder / f"rank-{rank_of(trainer)}.safetensors"))


def exit_hook(trainer: Trainer) -> Callback:
    """:class:`ExitAtEpoch` on the rank ``WORKBENCH_TEST_EXIT_RANK`` names; a callback that does nothing elsewhere."""
    wanted = os.environ.get(EXIT_VARIABLE)
    if wanted:
        rank, epoch = (int(part) for part in wanted.split(":"))
        if rank == rank_of(trainer):
            return ExitAtEpoch(epoch)
    return Callback()


def weights_hook(trainer: Trainer) -> Callback:
    """:class:`WriteWeights` where ``WORKBENCH_TEST_RANK_WEIGHTS_DIR`` names a folder; else a callback doing nothing."""
    folder = os.environ.get(WEIGHTS_VARIABLE)
    return WriteWeights(Path(folder)) if folder else Callback()


if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:], callbacks=[exit_hook, weights_hook]))
