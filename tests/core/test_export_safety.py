"""Exports that lose nothing: a file the workbench did not write is never replaced without ``force``, each
format's own exports are recognised by their mark, and a full disk is a clear error that leaves nothing behind
and what was there before intact."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import onnx
import pytest
import safetensors.torch
import torch
from onnx import TensorProto, helper
from safetensors import safe_open

from tests.helpers import Sandbox, train_tiny
from workbench.core.errors import ExportError
from workbench.core.export import formats as export
from workbench.core.export.formats import FORMATS, ForeignFileError, export_model, foreign_files
from workbench.core.export.python_source import MARK_LINE
from workbench.core.runs.trained import TrainedModel, load_trained

NAMES = {"onnx": "m.onnx", "pt2": "m.pt2", "safetensors": "m-bundle", "python": "m.py"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("safety-run") / "mlp", "mlp")


@pytest.fixture(scope="module")
def trained(run) -> TrainedModel:
    return load_trained(run)


@pytest.fixture(scope="module")
def own_exports(tmp_path_factory, trained) -> dict[str, Path]:
    """One export of each format, in a folder of its own."""
    folder = tmp_path_factory.mktemp("own-exports")
    return {format: export_model(trained, format, folder / NAMES[format]).path for format in FORMATS}


def listing(folder: Path) -> list[str]:
    """Everything under ``folder``, hidden staging folders and files included."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def users_files(format: str, folder: Path) -> Path:
    """What a user had at the target of ``format`` in ``folder`` before exporting: the target. For a bundle,
    a folder of notes under the bundle's default name, the target of an export into ``folder``."""
    target = folder / NAMES[format]
    if format == "safetensors":
        target = folder / "mlp-bundle"
        target.mkdir()
        (target / "notes.txt").write_text("my notes")
    else:
        target.write_bytes(b"my own work\n")
        if format == "python":
            target.with_suffix(".safetensors").write_bytes(b"my own weights")
    return target


# Recognising the workbench's own exports


def test_each_format_carries_the_mark_a_later_export_recognises(trained, own_exports):
    model = onnx.load(own_exports["onnx"])
    assert {entry.key: entry.value for entry in model.metadata_props} == {"workbench-export": "onnx"}
    assert model.producer_name == "pytorch"  # the exporter's own record is kept
    with zipfile.ZipFile(own_exports["pt2"]) as archive:
        [mark] = [name for name in archive.namelist() if name.endswith("/extra/workbench-export")]
        assert json.loads(archive.read(mark))["format"] == "pt2"
    module = own_exports["python"]
    assert module.read_text().splitlines()[0] == MARK_LINE
    with safe_open(module.with_suffix(".safetensors"), framework="pt") as handle:
        assert handle.metadata() == {"workbench-export": "python"}
    assert json.loads((own_exports["safetensors"] / "meta.json").read_text())["format"] == "workbench-bundle"
    for format, path in own_exports.items():
        assert foreign_files(trained, format, path) == [], format
    # An export of one format may replace the workbench's own export of another.
    assert foreign_files(trained, "onnx", own_exports["pt2"]) == []
    assert foreign_files(trained, "safetensors", own_exports["onnx"]) == []


def test_files_that_only_look_like_exports_are_not_the_workbenchs(trained, own_exports, tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["logits"])],
        "someone else's",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1])],
    )
    for name, props in (("plain.onnx", {}), ("pt2-mark.onnx", {"workbench-export": "pt2"})):
        model = helper.make_model(graph, producer_name="workbench")
        helper.set_model_props(model, {"origin": "workbench-export", **props})
        onnx.save(model, tmp_path / name)
    program = torch.export.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),))
    torch.export.save(program, tmp_path / "plain.pt2", extra_files={"notes": '{"format": "pt2"}'})
    lines = own_exports["python"].read_text().splitlines(keepends=True)
    (tmp_path / "unmarked.py").write_text("".join(lines[1:]))  # the mark must be the first line
    (tmp_path / "late-mark.py").write_text("".join([lines[1], lines[0], *lines[2:]]))
    (tmp_path / "bundle-weights.py").write_text("".join(lines))  # the module is ours, its weights a bundle's
    shutil.copy(own_exports["safetensors"] / "model.safetensors", tmp_path / "bundle-weights.safetensors")
    safetensors.torch.save_file({"w": torch.zeros(2)}, tmp_path / "bare.safetensors")
    bundle = shutil.copytree(own_exports["safetensors"], tmp_path / "bundle-with-notes")
    (bundle / "notes.txt").write_text("mine")
    (tmp_path / "link.pt2").symlink_to(own_exports["pt2"])
    (tmp_path / "noise.onnx").write_bytes(os.urandom(1 << 20))
    (tmp_path / "empty.onnx").write_bytes(b"")

    def foreign(format: str, name: str) -> list[str]:
        return [path.name for path in foreign_files(trained, format, tmp_path / name)]

    for name in ("plain.onnx", "pt2-mark.onnx", "noise.onnx", "empty.onnx"):
        assert foreign("onnx", name) == [name]
    assert foreign("pt2", "plain.pt2") == ["plain.pt2"] and foreign("pt2", "link.pt2") == ["link.pt2"]
    assert foreign("python", "unmarked.py") == ["unmarked.py"]
    assert foreign("python", "late-mark.py") == ["late-mark.py"]
    assert foreign("python", "bundle-weights.py") == ["bundle-weights.safetensors"]
    assert foreign("python", "bare.py") == ["bare.safetensors"]
    assert foreign("safetensors", "bundle-with-notes") == ["bundle-with-notes"]


def test_a_users_file_stops_the_export_before_anything_is_made(trained, tmp_path):
    target = users_files("python", tmp_path)
    stages: list[str] = []
    with pytest.raises(ForeignFileError) as refused:
        export_model(trained, "python", target, progress=stages.append)
    assert str(refused.value) == (
        f"{target} and {target.with_suffix('.safetensors')} exist and were not written by the workbench; use "
        f"--force to replace them, or export under another name. Nothing was written."
    )
    assert refused.value.paths == [target, target.with_suffix(".safetensors")]
    assert stages == [] and contents(tmp_path) == {"m.py": b"my own work\n", "m.safetensors": b"my own weights"}


def test_a_file_that_appears_while_exporting_is_not_replaced(trained, tmp_path, monkeypatch):
    target = tmp_path / "m.pt2"
    write = export._WRITERS["pt2"]

    def meanwhile(trained, path, report):
        target.write_bytes(b"saved by another program meanwhile")
        return write(trained, path, report)

    monkeypatch.setitem(export._WRITERS, "pt2", meanwhile)
    with pytest.raises(ForeignFileError, match="m.pt2 exists and was not written by the workbench"):
        export_model(trained, "pt2", target)
    assert contents(tmp_path) == {"m.pt2": b"saved by another program meanwhile"}


def test_the_folder_of_the_run_itself_is_never_replaced(run, tmp_path):
    copy = shutil.copytree(run, tmp_path / "mlp-bundle")
    before = contents(copy)
    with pytest.raises(ExportError, match="would replace the folder of the run being exported"):
        export_model(load_trained(copy), "safetensors", tmp_path, force=True)
    assert contents(copy) == before


# A full disk

DISK_FULL = re.compile(
    r"Cannot write (?P<target>.+): the disk is full \((?P<free>\d+(\.\d)? [kMG]B) free in (?P<folder>.+)\); "
    r"the export needs about (?P<needed>\d+) kB\. Free some space or export to another disk\. Nothing was written\."
)


def assert_disk_full(error: object, target: Path) -> re.Match:
    match = DISK_FULL.fullmatch(str(error))
    assert match, str(error)
    assert match["target"] == str(target) and match["folder"] == str(target.parent)
    assert 150 <= int(match["needed"]) <= 300, "the mlp's exports hold about 200 kB of weights"
    return match


@pytest.fixture
def filling_disk(monkeypatch) -> Callable[[Path], list[int]]:
    """``os.write`` into a file under the folder given fills the disk: the first write stores half of its
    bytes, every later one fails with ENOSPC. Returns the sizes asked to be written there."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to tell which file a write goes to")
    real = os.write

    def under(folder: Path) -> list[int]:
        asked: list[int] = []

        def write(fd: int, data) -> int:
            try:
                path = Path(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                return real(fd, data)
            if not path.is_relative_to(folder):
                return real(fd, data)
            asked.append(len(data))
            if len(asked) > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd, memoryview(data)[: len(data) // 2])

        monkeypatch.setattr(os, "write", write)
        return asked

    return under


@pytest.mark.parametrize("format", FORMATS)
def test_a_disk_that_fills_up_while_writing_is_an_error_and_leaves_the_old_file(
    trained, tmp_path, filling_disk, format
):
    target = users_files(format, tmp_path)
    before, names = contents(tmp_path), listing(tmp_path)
    asked = filling_disk(tmp_path)
    with pytest.raises(ExportError) as full:
        export_model(trained, format, tmp_path if format == "safetensors" else target, force=True)
    assert_disk_full(full.value, target)
    assert len(asked) >= 2, "the export was written through os.write"
    assert contents(tmp_path) == before and listing(tmp_path) == names


@pytest.mark.parametrize("code", [errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)])
def test_a_full_disk_or_quota_when_the_staging_folder_is_made_is_the_same_error(trained, tmp_path, monkeypatch, code):
    def full(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(export.tempfile, "mkdtemp", full)
    with pytest.raises(ExportError) as refused:
        export_model(trained, "safetensors", tmp_path / "b")
    assert_disk_full(refused.value, tmp_path / "b")
    assert listing(tmp_path) == []


def test_an_export_bigger_than_the_room_left_is_refused_before_writing(trained, tmp_path, monkeypatch, filling_disk):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(export.shutil, "disk_usage", lambda path: usage._replace(free=1000))
    asked = filling_disk(tmp_path)
    with pytest.raises(ExportError) as refused:
        export_model(trained, "pt2", tmp_path / "m.pt2")
    assert assert_disk_full(refused.value, tmp_path / "m.pt2")["free"] == "1 kB"
    assert asked == [] and listing(tmp_path) == []


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[Path]:
    """A real 1 MiB tmpfs holding a user's file and a filler that leaves 64 kB free (less than any export of
    the mlp); skipped where a tmpfs cannot be mounted (not Linux, not root, no CAP_SYS_ADMIN)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root on Linux")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here: {mounted.stderr.strip()}")
    try:
        (folder / "mine.txt").write_text("my own work")
        (folder / "filler").write_bytes(b"\0" * (shutil.disk_usage(folder).free - 64 * 1024))
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_pt2_on_a_real_full_disk_exits_2_instead_of_aborting(tiny_disk, run, tmp_path):
    sandbox = Sandbox.make(tmp_path / "sandbox")
    target = tiny_disk / "m.pt2"
    result = sandbox.run("export", run, "--format", "pt2", "--out", target)
    assert result.returncode == 2, result  # it was 134: a c10::Error from torch's file writer aborted Python
    assert result.stderr.startswith("workbench: ") and "Traceback" not in result.stderr, result
    assert_disk_full(result.stderr.removeprefix("workbench: ").strip(), target)
    assert listing(tiny_disk) == ["filler", "mine.txt"]


@pytest.mark.parametrize("format", FORMATS)
def test_every_format_on_a_real_full_disk_is_an_error_and_leaves_nothing(tiny_disk, trained, monkeypatch, format):
    """The room is not measured (as where statvfs does not know a quota): the kernel's ENOSPC is the error."""
    usage = shutil.disk_usage(tiny_disk)
    monkeypatch.setattr(export.shutil, "disk_usage", lambda path: usage._replace(free=10**12))
    target = tiny_disk / "mine.txt"
    if format == "python":
        target = tiny_disk / "m.py"
        target.write_text("my own module")
    before = contents(tiny_disk)
    with pytest.raises(ExportError) as full:
        export_model(trained, format, target, force=True)
    assert DISK_FULL.fullmatch(str(full.value)), str(full.value)
    assert contents(tiny_disk) == before and listing(tiny_disk) == sorted(before)
