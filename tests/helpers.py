"""What the test modules share, as plain functions and classes: tiny datasets written to disk, digits training
configs and runs, the command-line sandbox, and waiting for a condition. Fixtures live in the conftest.py files;
no test module imports another."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from workbench.core.presets import load_preset
from workbench.core.runs.folders import new_run_dir
from workbench.core.runs.recorder import RunRecorder
from workbench.core.training.config import TrainConfig
from workbench.core.training.engine import Trainer

T = TypeVar("T")

# Waiting


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """``condition()``'s first true value, asked every ``interval`` seconds; fails saying ``what`` was awaited
    when ``timeout`` seconds pass first. A condition may raise AssertionError to fail at once (e.g. a process
    that ended)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(interval)
    return value


# Another process holding a run folder's lock, as a second ``workbench train`` would

_HOLD_LOCK = """
import sys, time
from pathlib import Path
from workbench.core.runs.lock import RunLock
lock = RunLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(600)
"""


@contextlib.contextmanager
def lock_held_elsewhere(folder: Path) -> Iterator[subprocess.Popen]:
    """A process holding ``folder``'s writer lock while the block runs (killed afterwards, if still alive)."""
    process = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        yield process
    finally:
        process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


# Training on the embedded 8×8 digits


def digits_config(**overrides: Any) -> TrainConfig:
    """A CPU config on the embedded digits that trains in a second or two; ``overrides`` replace any field."""
    values: dict[str, Any] = dict(
        dataset="digits",
        train_size=1000,
        val_size=200,
        epochs=2,
        batch_size=64,
        optimizer="adam",
        lr=3e-3,
        device="cpu",
    )
    values.update(overrides)
    return TrainConfig(**values)


def train_tiny(folder: Path, preset: str) -> Path:
    """A real run of ``preset`` on the 8×8 digits in ``folder``: 1 epoch on 300 images, a second or two."""
    arch = load_preset(preset)
    cfg = digits_config(train_size=300, val_size=50, epochs=1, seed=2)
    Trainer(arch, cfg, callbacks=[RunRecorder(new_run_dir(folder, arch, cfg))], progress=False).run()
    return folder


# A small network with blocks, on the 8×8 digits


def _conv(channels: int, kernel: int = 3, padding: int = 1, stride: int = 1) -> dict[str, Any]:
    return {"type": "Conv2d", "out_channels": channels, "kernel_size": kernel, "padding": padding, "stride": stride}


BLOCKS_DIGITS: dict[str, Any] = {
    "format": "workbench-architecture",
    "version": 2,
    "name": "blocks-digits",
    "input_shape": [1, 8, 8],
    "num_classes": 10,
    "layers": [
        _conv(4),  # 1
        {"type": "ReLU"},  # 2
        {  # 3: 4×8×8 -> 8×4×4, so a projection (a 1×1 convolution of stride 2) adds the input
            "type": "Residual",
            "shortcut": "projection",
            "layers": [_conv(8, stride=2), {"type": "ReLU"}, _conv(8)],
        },
        {  # 4: 4 + 4 channels, concatenated
            "type": "Parallel",
            "merge": "concat",
            "branches": [[_conv(4, kernel=1, padding=0)], [_conv(4), {"type": "ReLU"}]],
        },
        {"type": "Flatten"},  # 5: 128 values
        {  # 6: back to the 128 it reads, added to its input
            "type": "Residual",
            "layers": [
                {"type": "Linear", "out_features": 16},
                {"type": "ReLU"},
                {"type": "Linear", "out_features": 128},
            ],
        },
        {"type": "Linear", "out_features": 10},  # 7
    ],
}
"""A network with every kind of block (a Residual with a projection, a Parallel, an identity Residual) for the
digits: trains in about a second."""
BLOCKS_DIGITS_WEIGHTED = [
    "1 Conv2d",
    "3 shortcut Conv2d",
    "3.1 Conv2d",
    "3.3 Conv2d",
    "4.b1.1 Conv2d",
    "4.b2.1 Conv2d",
    "6.1 Linear",
    "6.3 Linear",
    "7 Linear",
]
"""Its parts with weights, as the gradient monitor names them, from the input on."""
BLOCKS_DIGITS_ACTIVATIONS = ["2 ReLU", "3.2 ReLU", "4.b2.2 ReLU", "6.2 ReLU"]


# IDX datasets (the MNIST file format)

IDX_TRAIN, IDX_TEST = 12, 5


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: 00 00 08 <ndim>, each dimension as a big-endian uint32, then the bytes."""
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def idx_set(
    seed: int = 0, size: int = 28, classes: int = 10, train: int = IDX_TRAIN, test: int = IDX_TEST
) -> dict[str, np.ndarray]:
    """The four arrays of a tiny IDX dataset; training image 0 is black with one white pixel at (0, 0)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, size, size), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, classes, train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, size, size), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, classes, test, dtype=np.uint8),
    }
    arrays["train-images-idx3-ubyte"][0] = 0
    arrays["train-images-idx3-ubyte"][0, 0, 0] = 255
    return arrays


def write_file(path: Path, content: bytes, gz: bool = False) -> Path:
    """``content`` at ``path`` (gzipped if ``gz``), its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def write_idx_set(folder: Path, gz: bool = False, **kwargs: Any) -> dict[str, np.ndarray]:
    """:func:`idx_set` (``kwargs``) under the standard file names in ``folder``, gzipped with ``.gz`` if ``gz``."""
    arrays = idx_set(**kwargs)
    for name, array in arrays.items():
        write_file(folder / (f"{name}.gz" if gz else name), idx_bytes(array), gz)
    return arrays


# Image folders (folder:PATH datasets)

SIDE = 20
CLASSES = ("circle", "square", "stripes")


def shape(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A white shape on black, shifted a little and noisy: easy to tell apart, never twice the same."""
    pixels = np.zeros((SIDE, SIDE), dtype=np.float64)
    dy, dx = rng.integers(-2, 3, size=2)
    rows, cols = np.mgrid[:SIDE, :SIDE]
    if kind == "circle":
        pixels[(rows - 10 - dy) ** 2 + (cols - 10 - dx) ** 2 < 25] = 255
    elif kind == "square":
        pixels[5 + dy : 15 + dy, 5 + dx : 15 + dx] = 255
    else:
        pixels[(rows + dy) % 5 < 2] = 255
    return np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)


def draw_tree(
    root: Path, classes: Iterable[str] = CLASSES, per_class: int = 30, colour: str | None = "stripes", seed: int = 0
) -> Path:
    """``root/<class>/<i>.png|jpg``: every other image a JPEG; the ``colour`` class stored in (red) colour."""
    rng = np.random.default_rng(seed)
    for kind in classes:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            grey = shape(kind, rng)
            image = Image.fromarray(grey)
            if kind == colour:
                image = Image.fromarray(np.stack([grey, grey // 4, grey // 4], axis=-1))
            image.save(root / kind / f"{index:03d}.{'png' if index % 2 else 'jpg'}", quality=95)
    return root


# The command line in a sandbox

WORKBENCH = Path(sys.executable).with_name("workbench")
TIMEOUT = 180

# Variables through which the user's own setup could leak into a test.
LEAKY = (
    "WORKBENCH_RUNS_DIR",
    "WORKBENCH_DATA_DIR",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "PYTHONWARNINGS",
    "PYTHONSTARTUP",
)

EPOCH_LINE = re.compile(
    r"epoch +(\d+)/(\d+)  train loss (\d+\.\d{4})  val loss (\d+\.\d{4})  "
    r"val acc +(\d+\.\d\d%)  ([\d,]+) samples/s"
)
TEST_LINE = re.compile(r"test accuracy +(\d+\.\d\d%)  \(test loss (\d+\.\d{4})\)")


@dataclass(frozen=True)
class Result:
    """How one command ended; printed in full when an assertion about it fails."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"workbench {' '.join(self.args)}\n-> exit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


@dataclass(frozen=True)
class Sandbox:
    """A folder standing in for the user's machine: an empty HOME, a runs folder that does not exist yet."""

    root: Path

    @classmethod
    def make(cls, root: Path) -> Sandbox:
        (root / "home").mkdir(parents=True, exist_ok=True)
        return cls(root)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def data_home(self) -> Path:
        """$XDG_DATA_HOME: the user data folder (downloads, default runs) would be under it."""
        return self.home / ".local" / "share"

    @property
    def runs(self) -> Path:
        """$WORKBENCH_RUNS_DIR."""
        return self.root / "runs"

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in LEAKY}
        env.update(
            HOME=str(self.home),
            XDG_DATA_HOME=str(self.data_home),
            WORKBENCH_RUNS_DIR=str(self.runs),
            PYTHONIOENCODING="utf-8",
        )
        env.update(extra)
        return env

    def run(self, *args: str | os.PathLike, timeout: float = TIMEOUT, **extra_env: str) -> Result:
        argv = tuple(os.fspath(arg) for arg in args)
        done = subprocess.run(
            [str(WORKBENCH), *argv],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=self.env(**extra_env),
            cwd=self.root,
            timeout=timeout,
        )
        return Result(argv, done.returncode, done.stdout, done.stderr)

    def start(self, *args: str | os.PathLike, stderr_path: Path) -> subprocess.Popen:
        """Start a command with stdout on a pipe, read line by line, and stderr into a file."""
        argv = [str(WORKBENCH), *(os.fspath(arg) for arg in args)]
        with open(stderr_path, "w") as stderr:
            return subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=self.env(),
                cwd=self.root,
                bufsize=1,
            )

    def user_files(self) -> list[Path]:
        """Everything written under HOME; nothing should be."""
        return sorted(path for path in self.home.rglob("*"))

    def run_folders(self) -> list[Path]:
        return sorted(self.runs.iterdir()) if self.runs.exists() else []

    def trained_run(self, train_command: str) -> Path:
        """Train with ``workbench <train_command>`` here; the run folder it made (the only one)."""
        result = self.run(*train_command.split())
        assert result.returncode == 0, result
        [run] = self.run_folders()
        return run

    def run_python(self, code: str, *args: str | os.PathLike) -> Result:
        """Run ``python -c code args`` in this sandbox's environment, as a user's own process would."""
        argv = tuple(os.fspath(arg) for arg in args)
        done = subprocess.run(
            [sys.executable, "-c", code, *argv],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=self.env(),
            cwd=self.root,
            timeout=TIMEOUT,
        )
        return Result(argv, done.returncode, done.stdout, done.stderr)


def assert_refused(result: Result, says: Iterable[str]) -> None:
    """Exit status 2, nothing on stdout, one plain line on stderr holding every fragment of ``says``."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result
    assert result.stderr.startswith("workbench: "), result
    assert len(result.stderr.splitlines()) == 1, result
    for fragment in says:
        assert fragment in result.stderr, result
    assert result.stdout == "", result


def train_in_window(qtbot, window, timeout_ms: int = 120_000) -> str:
    """Start a run in ``window`` and wait for it to end; its status."""
    with qtbot.waitSignal(window.runFinished, timeout=timeout_ms) as finished:
        window.start_training()
    return finished.args[0]
