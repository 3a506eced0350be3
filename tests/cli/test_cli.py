"""The ``workbench`` command line as a user runs it: mostly the installed console script, in a subprocess.

Every command runs in a sandbox: HOME and XDG_DATA_HOME point at an empty tmp folder (so the user data
folder is empty and the real one is never touched), WORKBENCH_RUNS_DIR at a tmp folder, and
WORKBENCH_DATA_DIR is unset. Training uses the embedded ``digits`` dataset, which trains in a second.

Starting the console script costs about 5 s of CPU (torch and torchvision imports), so the many inputs
that must be refused are tried in-process through ``cli.main`` (see ``in_process`` in conftest.py), and a
few of them, one of each kind, through the console script in the background while the other tests run
(see ``console_refusals``). The sandbox and the files the tests write are in tests/helpers.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import EPOCH_LINE, TEST_LINE, Result, Sandbox, assert_refused, write_idx_set

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


# Files the tests write
RUN_FILES = [
    "architecture.json",
    "batches.jsonl",
    "checkpoint",
    "evaluation.json",
    "gradients.jsonl",
    "metrics.jsonl",
    "model.safetensors",
    "run.json",
    "writer.lock",
]


def architecture(layers: list[dict], name: str = "test-net") -> dict:
    """An architecture document for the 8×8 digits."""
    return {
        "format": "workbench-architecture",
        "version": 1,
        "name": name,
        "input_shape": [1, 8, 8],
        "num_classes": 10,
        "layers": layers,
    }


def write_json(path: Path, document) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


TINY_CNN = architecture(
    [
        {"type": "Conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 10},
    ],
    name="tiny-cnn",
)

MLP = [
    {"type": "Flatten"},
    {"type": "Linear", "out_features": 32},
    {"type": "ReLU"},
    {"type": "Linear", "out_features": 10},
]


# 1. presets


def test_presets_lists_one_line_per_bundled_network(sandbox):
    result = sandbox.run("presets")
    assert result.returncode == 0, result
    bundled = sorted(path.stem for path in (Path(__file__).parents[2] / "resources" / "presets").glob("*.json"))
    names = [line.split()[0] for line in result.lines]
    assert sorted(names) == bundled, result
    assert len(result.lines) == len(bundled)
    simplenet = next(line for line in result.lines if line.split()[0] == "seed-simplenet")
    assert re.fullmatch(r"seed-simplenet +95,410 params  Flatten → Linear\(120\) → Linear\(10\)", simplenet), simplenet
    assert all(re.search(r" [\d,]+ params  \S", line) for line in result.lines), result
    assert result.stderr == ""


# 2. datasets


def test_datasets_lists_every_dataset_and_finds_fashion_mnist_in_the_data_dir(sandbox):
    data_dir = sandbox.root / "data"
    write_idx_set(data_dir / "fashion-mnist", gz=True)
    result = sandbox.run("datasets", "--data-dir", data_dir)
    assert result.returncode == 0, result
    rows = {line.split()[0]: line for line in result.lines}
    assert list(rows) == ["fashion-mnist", "mnist", "kmnist", "cifar10", "digits"], result
    assert len(result.lines) == 5
    assert rows["fashion-mnist"].endswith(f"found: {data_dir / 'fashion-mnist'} (data-dir)"), result
    assert "1×28×28" in rows["fashion-mnist"] and "10 classes" in rows["fashion-mnist"]
    assert rows["digits"].endswith("embedded (scikit-learn)"), result
    assert "1×8×8" in rows["digits"]
    # The other IDX datasets are not taken for the Fashion-MNIST files next to them.
    assert str(data_dir) not in rows["mnist"] and str(data_dir) not in rows["kmnist"], result
    assert sandbox.user_files() == [], "listing must not download or write anything"


def test_datasets_without_a_data_dir_offers_the_user_folder_for_downloads(sandbox, in_process):
    result = in_process("datasets")
    assert result.returncode == 0, result
    rows = {line.split()[0]: line for line in result.lines}
    assert list(rows) == ["fashion-mnist", "mnist", "kmnist", "cifar10", "digits"], result
    user_folder = sandbox.data_home / "workbench" / "datasets"
    for name in ("mnist", "kmnist", "cifar10"):
        if not (Path("/usr/share/datasets") / name).exists():  # not installed system-wide on a test machine
            assert rows[name].endswith(f"not found: downloadable into {user_folder}"), result
    if (SYSTEM_FASHION / "train-images-idx3-ubyte.gz").is_file():
        assert rows["fashion-mnist"].endswith(f"found: {SYSTEM_FASHION} (system)"), result
    assert sandbox.user_files() == []


# 3. train: a preset on digits


def test_train_preset_prints_epochs_and_writes_the_run_folder(sandbox):
    out = sandbox.root / "my-run"
    result = sandbox.run(
        "train",
        "--preset",
        "seed-relu-mlp",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--train-size",
        "1000",
        "--val-size",
        "200",
        "--out",
        out,
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
    )
    assert result.returncode == 0, result
    lines = result.lines
    assert len(lines) == 6, result
    assert re.fullmatch(
        r"seed-relu-mlp on Digits \(1,000 train / 200 validation / 360 test\), adam lr 0\.001, "
        r"batch 512, 2 epochs, device \S+, (bfloat16|float32) \([^)]+\), \d+ threads? \([^)]+\)\. Run folder: "
        + re.escape(str(out)),
        lines[0],
    ), result
    assert re.fullmatch(r"Estimated time: (under 1 s|about \d+ s) on this CPU, 2 epochs\.", lines[1]), result
    epochs = [EPOCH_LINE.fullmatch(line) for line in lines[2:4]]
    assert all(epochs), result
    assert [(m[1], m[2]) for m in epochs] == [("1", "2"), ("2", "2")]
    test_line = TEST_LINE.fullmatch(lines[4])
    assert test_line, result
    assert lines[5] == f"run folder: {out}"

    assert sorted(path.name for path in out.iterdir()) == RUN_FILES
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    for m, printed in zip(metrics, epochs):  # the file holds what the screen showed
        assert f"{m['train_loss']:.4f}" == printed[3] and f"{m['val_loss']:.4f}" == printed[4]
        assert f"{m['val_accuracy']:.2%}" == printed[5]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["dataset"] == "digits" and run["name"] == "my-run"
    assert run["config"]["optimizer"] == "adam" and run["config"]["lr"] == 0.001 and run["config"]["epochs"] == 2
    assert run["config"]["train_size"] == 1000 and run["config"]["val_size"] == 200
    assert run["metrics"]["epochs_completed"] == 2
    assert f"{run['metrics']['test_accuracy']:.2%}" == test_line[1]
    assert json.loads((out / "architecture.json").read_text())["layers"] == run["architecture"]["layers"]

    from safetensors.numpy import load_file

    weights = load_file(out / "model.safetensors")
    assert {name: tuple(tensor.shape) for name, tensor in weights.items()} == {
        "1.weight": (120, 64),
        "1.bias": (120,),
        "3.weight": (10, 120),
        "3.bias": (10,),
    }

    # Not --quiet: tqdm's bar over the batches of each epoch goes to stderr, never to stdout.
    assert "epoch 1/2" in result.stderr and "epoch 2/2" in result.stderr and "batch" in result.stderr, result
    assert "Traceback" not in result.stderr
    assert sandbox.run_folders() == [] and sandbox.user_files() == [], "--out was given: nothing else is written"


# 4. train: an architecture file


def test_train_arch_file_records_that_architecture(sandbox):
    arch = write_json(sandbox.root / "tiny-cnn.json", TINY_CNN)
    out = sandbox.root / "cnn-run"
    result = sandbox.run(
        "train",
        "--arch",
        arch,
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--train-size",
        "300",
        "--val-size",
        "50",
        "--out",
        out,
        "--quiet",
    )
    assert result.returncode == 0, result
    assert result.lines[0].startswith("tiny-cnn on Digits (300 train / 50 validation / 360 test)"), result
    assert result.lines[-1] == f"run folder: {out}"
    assert sorted(path.name for path in out.iterdir()) == RUN_FILES
    recorded = json.loads((out / "architecture.json").read_text())
    assert recorded["layers"] == TINY_CNN["layers"]
    assert recorded == TINY_CNN
    assert json.loads((out / "run.json").read_text())["architecture"] == TINY_CNN
    assert result.stderr == "", "--quiet: no progress bar"


# 5. train: the default run folder


def test_train_without_out_creates_a_run_folder_in_the_runs_dir(sandbox):
    result = sandbox.run(
        "train",
        "--preset",
        "seed-linear",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--train-size",
        "200",
        "--val-size",
        "50",
        "--quiet",
    )
    assert result.returncode == 0, result
    [folder] = sandbox.run_folders()
    assert re.fullmatch(r"\d{8}-\d{6}-seed-linear-digits", folder.name), folder.name
    assert result.lines[-1] == f"run folder: {folder}"
    assert result.lines[0].endswith(f"Run folder: {folder}")
    assert sorted(path.name for path in folder.iterdir()) == RUN_FILES
    assert json.loads((folder / "run.json").read_text())["status"] == "finished"
    assert sandbox.user_files() == [], "WORKBENCH_RUNS_DIR is set: the user data folder stays untouched"


# 7. Ctrl+C


def test_help_lists_every_command(sandbox):
    result = sandbox.run("--help")
    assert result.returncode == 0, result
    for command in ("gui", "train", "datasets", "presets"):
        assert command in result.stdout
    train_help = sandbox.run("train", "--help")
    for option in ("--preset", "--arch", "--dataset", "--epochs", "--out", "--quiet"):
        assert option in train_help.stdout


# 6. bad input: exit 2, one line "workbench: ..." on stderr, no traceback, nothing on stdout.
#
# Each case gets its own sandbox; ``setup`` writes what the case needs there and returns the arguments
# and the fragments the message must contain.

Setup = Callable[[Path], tuple[list, list[str]]]


def _train(*args) -> list:
    return [
        "train",
        "--dataset",
        "digits",
        "--train-size",
        "100",
        "--val-size",
        "20",
        "--epochs",
        "1",
        "--quiet",
        *args,
    ]


def _arch_case(layers: list[dict], *says: str, name: str = "test-net") -> Setup:
    def setup(folder: Path):
        path = write_json(folder / "net.json", architecture(layers, name=name))
        return _train("--arch", path), list(says)

    return setup


def _text_arch_case(text: str, *says: str) -> Setup:
    def setup(folder: Path):
        path = folder / "net.json"
        path.write_text(text, encoding="utf-8")
        return _train("--arch", path), list(says)

    return setup


def _missing_arch(folder: Path):
    path = folder / "no-such-net.json"
    return _train("--arch", path), [f"No architecture file at {path}."]


def _out_under_a_file(folder: Path):
    (folder / "plain-file").write_text("not a folder")
    out = folder / "plain-file" / "run"
    return _train("--out", out), [f"Cannot write the run folder {out}", "Choose a folder you can write to with --out."]


def _out_is_a_run(folder: Path):
    write_json(folder / "old-run" / "run.json", {"status": "finished", "precious": True})
    return _train("--out", folder / "old-run"), [f"{folder / 'old-run'} already holds a run"]


def _corrupt_idx(folder: Path):
    data_dir = folder / "data"
    write_idx_set(data_dir, gz=False)
    images = data_dir / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    return (
        [
            "train",
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            data_dir,
            "--train-size",
            "5",
            "--val-size",
            "2",
            "--epochs",
            "1",
            "--quiet",
        ],
        [str(images), "is damaged: expected 9,408 bytes of pixels, found 984."],
    )


TRUNCATED = json.dumps(architecture(MLP), indent=2)[:150]

BAD_INPUT: dict[str, Setup] = {
    "unknown-preset": lambda _: (
        _train("--preset", "seed-simplnet"),
        ["Unknown preset 'seed-simplnet'.", "Did you mean 'seed-simplenet'?"],
    ),
    "unknown-dataset": lambda _: (
        ["train", "--dataset", "fashion-minst"],
        ["There is no dataset called 'fashion-minst'.", "Did you mean 'fashion-mnist'?"],
    ),
    "unknown-layer": _arch_case(
        [{"type": "Flatten"}, {"type": "Linaer", "out_features": 10}],
        "layer 2: unknown layer type 'Linaer'",
        "did you mean 'Linear'",
    ),
    "wrong-type": _arch_case(
        [{"type": "Flatten"}, {"type": "Linear", "out_features": "ten"}],
        'layer 2 Linear: out_features must be an integer from 1 to 4096, not "ten".',
    ),
    "out-of-range": _arch_case(
        [{"type": "Conv2d", "kernel_size": 12}, {"type": "Flatten"}, {"type": "Linear", "out_features": 10}],
        "layer 1 Conv2d: kernel_size must be an integer from 1 to 11, not 12.",
    ),
    "does-not-fit": _arch_case(
        [{"type": "Conv2d", "out_channels": 4}, {"type": "Linear", "out_features": 10}],
        "layer 2 Linear",
        "4×6×6",
        "add a Flatten",
    ),
    "malformed-json": _text_arch_case("{'layers': [Flatten, Linear]}", "net.json is not valid JSON (line 1, column 2"),
    "truncated-json": _text_arch_case(TRUNCATED, "net.json is not valid JSON", "Is the file complete?"),
    "missing-arch": _missing_arch,
    "train-size-digits": lambda _: (
        ["train", "--dataset", "digits", "--train-size", "5000", "--quiet"],
        ["5,000 training", "Digits has 1,437 in its training split"],
    ),
    "train-size-fashion": lambda _: (
        ["train", "--dataset", "fashion-mnist", "--train-size", "70000", "--quiet"],
        ["70,000 training", "Fashion-MNIST has 60,000 in its training split"],
    ),
    "out-under-a-file": _out_under_a_file,
    "out-is-a-run": _out_is_a_run,
    "device-cuda": lambda _: (
        _train("--device", "cuda"),
        ["There is no device 'cuda' on this machine.", "Devices here: cpu (CPU)"],
    ),
    "lr-zero": lambda _: (_train("--lr", "0"), ["lr must be a number above 0"]),
    "epochs-zero": lambda _: (_train("--epochs", "0"), ["epochs must be a whole number of at least 1"]),
    "corrupt-idx": _corrupt_idx,
    "datasets-missing-data-dir": lambda folder: (
        ["datasets", "--data-dir", folder / "nowhere"],
        [f"The data folder {folder / 'nowhere'} (given by --data-dir) does not exist"],
    ),
    "huge-integer-param": _arch_case(
        [{"type": "Flatten"}, {"type": "Linear", "out_features": 10**400}],
        "layer 2 Linear: out_features must be an integer from 1 to 4096",
    ),
    "huge-json-number": _text_arch_case('{"layers": [' + "9" * 5000 + "]}", "numbers or nesting far too large"),
    "deep-json-nesting": _text_arch_case("[" * 100_000, "numbers or nesting far too large"),
}

REALDATA = [
    pytest.mark.realdata,
    pytest.mark.skipif(
        not (SYSTEM_FASHION / "train-images-idx3-ubyte.gz").is_file(), reason="needs Debian's dataset-fashion-mnist"
    ),
]
MARKS = {"train-size-fashion": REALDATA}
BAD_PARAMS = [pytest.param(case, marks=MARKS.get(case, []), id=case) for case in BAD_INPUT]

# Refusals of train without --out, after which the runs folder must still be empty.
NO_LEFTOVER_PARAMS = [
    pytest.param(case, id=case, marks=MARKS.get(case, []))
    for case in BAD_INPUT
    if case not in ("out-under-a-file", "out-is-a-run", "datasets-missing-data-dir")
]


# Every case runs in-process through cli.main() (the console script is ``sys.exit(main())``, so its return
# value is the exit status and an exception escaping it is a traceback), which costs milliseconds. A few
# cases covering each kind of failure also run through the real console script, in the background.

SUBPROCESS_CASES = ("unknown-preset", "does-not-fit", "corrupt-idx", "out-is-a-run")


def _skip_unless_possible(case: str) -> None:
    if case == "device-cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA GPU is here")


@pytest.mark.parametrize("case", BAD_PARAMS)
def test_bad_input_exits_2_with_one_plain_line(sandbox, in_process, case):
    _skip_unless_possible(case)
    args, says = BAD_INPUT[case](sandbox.root)
    assert_refused(in_process(*args), says)
    assert sandbox.user_files() == [], "nothing is written to the user data folder"


@pytest.mark.parametrize("case", NO_LEFTOVER_PARAMS)
def test_refused_train_leaves_no_run_folder(sandbox, in_process, case):
    _skip_unless_possible(case)
    args, _ = BAD_INPUT[case](sandbox.root)
    assert in_process(*args).returncode == 2
    assert sandbox.run_folders() == []


@pytest.fixture(scope="module", autouse=True)
def console_refusals(request, tmp_path_factory) -> Iterator[dict[str, Future]]:
    """Start the console-script runs of SUBPROCESS_CASES in the background, so they overlap the other tests."""
    wanted = {
        item.callspec.params["case"]
        for item in request.session.items
        if item.module is request.module and item.originalname == "test_console_script_refuses_bad_input"
    }
    if not wanted:
        yield {}
        return
    root = tmp_path_factory.mktemp("console")

    def attempt(case: str) -> tuple[Sandbox, list[str], Result]:
        box = Sandbox.make(root / case)
        args, says = BAD_INPUT[case](box.root)
        return box, says, box.run(*args)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="console")
    futures = {case: pool.submit(attempt, case) for case in SUBPROCESS_CASES if case in wanted}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_console_script_refuses_bad_input(console_refusals, case):
    box, says, result = console_refusals[case].result(timeout=600)
    assert_refused(result, says)
    assert box.user_files() == []
    if case == "out-is-a-run":  # the run already there is left as it was
        folder = box.root / "old-run"
        assert sorted(path.name for path in folder.iterdir()) == ["run.json"]
        assert json.loads((folder / "run.json").read_text()) == {"status": "finished", "precious": True}


def test_argparse_errors_exit_2_with_usage(sandbox):
    result = sandbox.run("train", "--epochs", "abc")
    assert result.returncode == 2, result
    assert result.stderr.startswith("usage: workbench train"), result
    assert result.stderr.splitlines()[-1] == "workbench train: error: argument --epochs: invalid int value: 'abc'"
    assert "Traceback" not in result.stderr and result.stdout == ""


# 6, last case: Fashion-MNIST is nowhere and cannot be downloaded. The system folder cannot be hidden from a
# subprocess, so this one runs in-process with the system folder and the download replaced.


def test_dataset_nowhere_explains_every_way_to_get_it(sandbox, in_process, monkeypatch):
    from workbench.core.data import datasets

    monkeypatch.setattr(datasets, "SYSTEM_ROOT", sandbox.root / "no-system-datasets")
    attempts = []

    def offline(info, root, progress):
        attempts.append((info.name, root))
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(datasets, "_download", offline)
    empty = sandbox.root / "empty-data-dir"
    empty.mkdir()

    result = in_process("train", "--dataset", "fashion-mnist", "--data-dir", empty, "--epochs", "1", "--quiet")

    assert result.returncode == 2, result
    assert result.stdout == ""
    user_folder = sandbox.data_home / "workbench" / "datasets"
    assert attempts == [("fashion-mnist", user_folder)], "it tried to download into the user folder"
    err = result.stderr
    assert err.startswith(
        "workbench: Could not find the Fashion-MNIST dataset. Downloading it failed: "
        "<urlopen error [Errno -3] Temporary failure in name resolution>\n"
    ), result
    assert "--data-dir FOLDER" in err and "WORKBENCH_DATA_DIR=FOLDER" in err, result
    assert "train-images-idx3-ubyte" in err
    assert "sudo apt install dataset-fashion-mnist" in err
    assert f"downloaded into {user_folder}" in err
    assert "Traceback" not in err


def test_odd_characters_in_a_network_name_make_a_safe_folder_name(sandbox, in_process):
    path = write_json(sandbox.root / "net.json", architecture(MLP, name="my/net\u0000 v2"))
    result = in_process("train", "--arch", path, "--dataset", "digits", "--epochs", "1", "--quiet")
    assert result.returncode == 0, result
    [folder] = sandbox.run_folders()
    assert re.fullmatch(r"\d{8}-\d{6}-my_net_v2-digits", folder.name), folder.name


def test_digits_trains_with_the_default_sizes_shrunk_to_fit(sandbox, in_process):
    out = sandbox.root / "run"
    result = in_process(
        "train",
        "--preset",
        "seed-relu-mlp",
        "--dataset",
        "digits",
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
        "--epochs",
        "1",
        "--out",
        out,
        "--quiet",
    )
    assert result.returncode == 0, result
    config = json.loads((out / "run.json").read_text())["config"]
    assert (config["train_size"], config["val_size"]) == (1437 - 143, 143)
