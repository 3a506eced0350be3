"""``workbench export`` as a user runs it: the console script in the CLI tests' sandbox, one success per format,
and refusals (exit 2, one line on stderr, nothing left at the target). The runs are trained in-process once."""

import json
from pathlib import Path

import pytest

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
