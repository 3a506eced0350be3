"""``workbench export`` as a user runs it: the console script in the CLI tests' sandbox, one success per format,
and refusals (exit 2, one line on stderr, nothing left at the target). The runs are trained in-process once."""

import json
import shutil
from pathlib import Path

import pytest
import safetensors.torch

from tests.helpers import Result, Sandbox, train_tiny
from workbench.core.export import formats as export

STAGES = {
    "onnx": ["Tracing the network…", "Writing the ONNX file…", "Checking with onnxruntime…"],
    "pt2": ["Tracing the network…", "Writing the program…", "Checking with torch.export.load…"],
    "safetensors": ["Writing the bundle…", "Checking the reloaded bundle…"],
    "python": ["Writing the Python module…", "Checking the imported module…"],
}
CHECKED = {
    "onnx": "checked with onnxruntime",
    "pt2": "checked with torch.export.load",
    "safetensors": "checked by reloading the bundle",
    "python": "checked by importing the module",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-export-runs")
    return {preset: train_tiny(root / preset, preset) for preset in ("cnn-small", "mlp")}


def assert_refused(result: Result, *says: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result
    assert result.stderr.startswith("workbench: ") and len(result.stderr.splitlines()) == 1, result
    for fragment in says:
        assert fragment in result.stderr, result


def listing(folder: Path) -> list[str]:
    """Everything under ``folder``, hidden staging folders included."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize(
    "format, preset, out, written",
    [
        ("onnx", "cnn-small", "exports", ["exports/cnn-small.onnx"]),
        ("pt2", "mlp", "exports/net.pt2", ["exports/net.pt2"]),
        (
            "safetensors",
            "cnn-small",
            "exports/bundle",
            [
                "exports/bundle",
                "exports/bundle/architecture.json",
                "exports/bundle/meta.json",
                "exports/bundle/model.safetensors",
            ],
        ),
        ("python", "mlp", "exports", ["exports/mlp.py", "exports/mlp.safetensors"]),
    ],
)
def test_export_writes_each_format_and_reports_its_check(sandbox: Sandbox, runs, format, preset, out, written):
    (sandbox.root / "exports").mkdir()
    result = sandbox.run("export", runs[preset], "--format", format, "--out", out)
    assert result.returncode == 0, result
    assert result.lines[:-1] == ["Loading test images for the check…", *STAGES[format]], result
    path = written[0]
    also = f" and {written[1]}" if format == "python" else ""
    assert result.lines[-1].startswith(
        f"Wrote {path}{also} ({CHECKED[format]} on 64 test images of Digits: max |difference| "
    ), result
    assert result.stderr == "", result
    assert listing(sandbox.root / "exports") == [name.removeprefix("exports/") for name in written]
    assert sandbox.user_files() == []


def test_without_out_the_export_goes_into_the_current_folder(in_process, sandbox, runs):
    result = in_process("export", runs["mlp"], "--format", "safetensors")
    assert result.returncode == 0, result
    assert result.lines[-1].startswith("Wrote mlp-bundle (checked by reloading the bundle on 64 test images")
    assert json.loads((sandbox.root / "mlp-bundle" / "meta.json").read_text())["name"] == "mlp"


def test_an_out_ending_in_a_slash_is_a_folder_made_for_the_export(in_process, sandbox, runs):
    result = in_process("export", runs["mlp"], "--format", "pt2", "--out", "new/exports/")
    assert result.returncode == 0, result
    assert listing(sandbox.root / "new" / "exports") == ["mlp.pt2"]


def test_an_out_under_a_file_is_refused_and_nothing_is_written(sandbox: Sandbox, runs):
    (sandbox.root / "plain-file").write_text("not a folder")
    result = sandbox.run("export", runs["mlp"], "--format", "onnx", "--out", "plain-file/m.onnx")
    assert_refused(result, "Cannot write plain-file/m.onnx: plain-file is a file, not a folder.")
    assert result.stdout == ""
    assert listing(sandbox.root) == ["home", "plain-file"]


def test_a_folder_that_is_not_a_run_is_refused(sandbox: Sandbox):
    (sandbox.root / "photos").mkdir()
    (sandbox.root / "photos" / "cat.png").write_bytes(b"\x89PNG")
    result = sandbox.run("export", "photos", "--format", "pt2", "--out", "photos")
    assert_refused(result, "photos is not a run folder nor a workbench bundle: it has neither run.json nor meta.json.")
    assert listing(sandbox.root / "photos") == ["cat.png"]


def test_a_model_file_that_is_not_ours_is_refused(in_process, sandbox, runs):
    foreign = sandbox.root / "downloaded"
    foreign.mkdir()
    (foreign / "meta.json").write_text('{"format": "someone-else", "version": 3}')
    (foreign / "model.safetensors").write_bytes(b"\x00" * 64)
    assert_refused(
        in_process("export", foreign, "--format", "onnx", "--out", sandbox.root),
        "its meta.json is not a workbench bundle's",
    )
    assert_refused(
        in_process("export", runs["mlp"] / "model.safetensors", "--format", "onnx"),
        "model.safetensors is a file, not a run folder nor a workbench bundle",
    )
    assert listing(sandbox.root) == ["downloaded", "downloaded/meta.json", "downloaded/model.safetensors", "home"]


def test_a_failed_check_exits_2_and_leaves_nothing_at_the_target(in_process, sandbox, runs, monkeypatch):
    read = export._READERS["python"]
    monkeypatch.setitem(export._READERS, "python", lambda path, inputs: read(path, inputs) * 2)
    result = in_process("export", runs["cnn-small"], "--format", "python", "--out", "net.py")
    assert_refused(result, "The Python export is not faithful", "Nothing was written.")
    assert result.lines[-1] == "Checking the imported module…"
    assert listing(sandbox.root) == ["home"]


def test_a_network_the_exporter_refuses_exits_2_with_its_reason(in_process, sandbox, runs, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("Unsupported operator aten::mystery in opset 18\n  internal frames")

    monkeypatch.setattr("torch.onnx.export", refuse)
    assert_refused(
        in_process("export", runs["mlp"], "--format", "onnx", "--out", "m.onnx"),
        "This network cannot be exported to ONNX: Unsupported operator aten::mystery in opset 18",
    )
    assert listing(sandbox.root) == ["home"]


def test_the_format_is_required_and_checked(in_process):
    assert in_process("export", "somewhere").returncode == 2
    refused = in_process("export", "somewhere", "--format", "tflite")
    assert refused.returncode == 2 and "invalid choice: 'tflite'" in refused.stderr
    help_text = in_process("export", "--help")
    assert help_text.returncode == 0
    for word in ("RUN_DIR", "--format", "onnx", "pt2", "safetensors", "python", "--out"):
        assert word in help_text.stdout
    assert "export" in in_process("--help").stdout


# Nothing of the user's is ever replaced without --force

USERS = {
    # format: (--out, the user's files there: path -> bytes, the paths the refusal names)
    "onnx": ("mycode.onnx", {"mycode.onnx": b"my own model\n"}, ["mycode.onnx"]),
    "pt2": ("mycode.pt2", {"mycode.pt2": b"PK\x03\x04 my own archive"}, ["mycode.pt2"]),
    "python": (
        "mycode.py",
        {"mycode.py": b"print('my own code')\n", "mycode.safetensors": b"my own weights"},
        ["mycode.py", "mycode.safetensors"],
    ),
    "python-weights": ("mycode.py", {"mycode.safetensors": b"my own weights"}, ["mycode.safetensors"]),
    "safetensors": ("exports", {"exports/mlp-bundle/notes.txt": b"my notes"}, ["exports/mlp-bundle"]),
    "safetensors-file": ("mycode-bundle", {"mycode-bundle": b"a file of mine"}, ["mycode-bundle"]),
}


def users_files(root: Path, case: str) -> dict[str, bytes]:
    _, files, _ = USERS[case]
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def unchanged(root: Path, files: dict[str, bytes]) -> bool:
    """The user's files are there byte for byte, and nothing else was left beside them."""
    others = {"home", *(str(folder) for name in files for folder in Path(name).parents if folder != Path("."))}
    return all((root / name).read_bytes() == data for name, data in files.items()) and set(listing(root)) == (
        set(files) | others
    )


@pytest.mark.parametrize("case", USERS)
def test_a_file_the_workbench_did_not_write_is_refused_and_kept_byte_for_byte(in_process, sandbox, runs, case):
    out, _, named = USERS[case]
    files = users_files(sandbox.root, case)
    result = in_process("export", runs["mlp"], "--format", case.partition("-")[0], "--out", out)
    if len(named) == 1:
        says = f"{named[0]} exists and was not written by the workbench; use --force to replace it"
    else:
        says = f"{' and '.join(named)} exist and were not written by the workbench; use --force to replace them"
    assert_refused(result, says, "Nothing was written.")
    assert result.stdout == "", "refused before anything was traced or loaded"
    assert unchanged(sandbox.root, files), listing(sandbox.root)


@pytest.mark.parametrize("case", ["onnx", "pt2", "python", "safetensors"])
def test_force_replaces_it_and_an_earlier_export_of_any_run_is_replaced_without(in_process, sandbox, runs, case):
    out, _, named = USERS[case]
    users_files(sandbox.root, case)
    forced = in_process("export", runs["mlp"], "--format", case, "--out", out, "--force")
    assert forced.returncode == 0, forced
    assert forced.lines[-1].startswith(f"Wrote {named[0]}"), forced
    if case == "safetensors":
        assert listing(sandbox.root / named[0]) == ["architecture.json", "meta.json", "model.safetensors"]
    else:
        assert all(b"my own" not in (sandbox.root / name).read_bytes() for name in named)
    # The export is now the workbench's own: exporting another run over it needs no --force.
    again = in_process("export", runs["cnn-small"], "--format", case, "--out", named[0])
    assert again.returncode == 0, again
    assert again.lines[-1].startswith(f"Wrote {named[0]}"), again
    if case == "safetensors":
        assert json.loads((sandbox.root / named[0] / "meta.json").read_text())["name"] == "cnn-small"
    assert not [name for name in listing(sandbox.root) if name.startswith(".") or "/." in name], "no staging left"


# A run that diverged


def test_a_run_whose_weights_hold_nan_is_not_exported(in_process, sandbox, runs):
    run = shutil.copytree(runs["mlp"], sandbox.root / "diverged")
    weights = safetensors.torch.load_file(run / "model.safetensors")
    weights["4.weight"][0, 0] = float("nan")
    safetensors.torch.save_file(weights, run / "model.safetensors")
    (sandbox.root / "exports").mkdir()
    for format in ("onnx", "python"):
        result = in_process("export", run, "--format", format, "--out", "exports")
        assert_refused(
            result,
            f"The weights of mlp ({run / 'model.safetensors'}) hold NaN or infinite values (in layer 5 Linear): "
            f"the run diverged, so its predictions would be meaningless. Train it again with a lower learning rate.",
        )
        assert result.stdout == ""
    assert listing(sandbox.root / "exports") == []
