"""Exporting trained networks: each format round-trips, every catalog layer exports, failures leave nothing behind."""

import ast
import copy
import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import safetensors.torch
import torch
from safetensors import safe_open

from tests.helpers import train_tiny
from workbench import __version__
from workbench.core.architecture import Architecture, build
from workbench.core.data import datasets
from workbench.core.errors import DatasetError, ExportError, RunError
from workbench.core.export import formats as export
from workbench.core.export.formats import FORMATS, TOLERANCE, class_name, default_export_name, export_model
from workbench.core.export.python_source import MARK_LINE
from workbench.core.layers import CATALOG
from workbench.core.runs.trained import DataDescription, TrainedModel, load_trained
from workbench.core.training.config import TrainConfig

PRESETS = ("cnn-small", "mlp")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export-runs")
    return {preset: train_tiny(root / preset, preset) for preset in PRESETS}


@pytest.fixture(scope="module")
def test_images() -> torch.Tensor:
    return datasets.load("digits", progress=False).test_x[:64]


def outputs(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(inputs)


def entries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# Each format round-trips on cnn-small and mlp


@pytest.mark.parametrize("preset", PRESETS)
def test_onnx_runs_in_onnxruntime_like_the_model_for_any_batch_size(runs, preset, tmp_path, test_images):
    trained = load_trained(runs[preset])
    stages = []
    result = export_model(trained, "onnx", tmp_path, progress=stages.append)
    assert result.path == tmp_path / f"{preset}.onnx" and entries(tmp_path) == [f"{preset}.onnx"]
    assert result.checked_on == 64 and result.max_abs_diff <= TOLERANCE
    assert "Tracing the network…" in stages and "Checking with onnxruntime…" in stages
    assert result.message.startswith(
        f"Wrote {result.path} (checked with onnxruntime on 64 test images of Digits: max |difference| "
    )
    import onnxruntime  # after the export, which turns off onnxruntime's telemetry before it is loaded

    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    (given,), (returned,) = session.get_inputs(), session.get_outputs()
    assert (given.name, returned.name) == ("input", "logits")
    assert isinstance(given.shape[0], str) and given.shape[1:] == [1, 8, 8]
    for batch in (test_images[:1], test_images[:5], test_images):
        logits = torch.from_numpy(session.run(None, {"input": batch.numpy()})[0])
        assert torch.allclose(logits, outputs(trained.model, batch), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("preset", PRESETS)
def test_pt2_reloads_with_torch_export_and_gives_equal_outputs(runs, preset, tmp_path, test_images):
    trained = load_trained(runs[preset])
    result = export_model(trained, "pt2", tmp_path / "net.pt2")
    assert result.max_abs_diff == 0 and entries(tmp_path) == ["net.pt2"]
    reloaded = torch.export.load(tmp_path / "net.pt2").module()
    for batch in (test_images[:3], test_images):
        assert torch.equal(outputs(reloaded, batch), outputs(trained.model, batch))


@pytest.mark.parametrize("preset", PRESETS)
def test_the_bundle_reloads_equal_and_describes_its_data(runs, preset, tmp_path, test_images):
    trained = load_trained(runs[preset])
    result = export_model(trained, "safetensors", tmp_path)
    bundle = tmp_path / f"{preset}-bundle"
    assert result.path == bundle and result.max_abs_diff == 0
    assert entries(tmp_path) == [bundle.name]
    assert entries(bundle) == ["architecture.json", "meta.json", "model.safetensors"]
    meta = json.loads((bundle / "meta.json").read_text())
    run = json.loads((runs[preset] / "run.json").read_text())
    assert meta["format"] == "workbench-bundle" and meta["version"] == 1 and meta["workbench"] == __version__
    assert meta["name"] == preset and meta["dataset"] == "digits" and meta["data"] == run["data"]
    assert meta["test_accuracy"] == run["metrics"]["test_accuracy"] and meta["exported"][:2] == "20"
    assert Architecture.load(bundle / "architecture.json").to_json() == trained.architecture.to_json()
    with safe_open(bundle / "model.safetensors", framework="pt") as handle:
        assert handle.metadata() == {"format": "workbench-bundle"}
    reloaded = load_trained(bundle)
    assert (reloaded.name, reloaded.source, reloaded.config.dataset) == (preset, "bundle weights", "digits")
    assert reloaded.data == trained.data and reloaded.test_accuracy == trained.test_accuracy
    assert torch.equal(outputs(reloaded.model, test_images), outputs(trained.model, test_images))


FRESH_INTERPRETER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import safetensors.torch, torch
    module = __import__(sys.argv[2])
    images = safetensors.torch.load_file(sys.argv[3])["images"]
    with torch.no_grad():
        own = module.load()(images)
        from_run = module.load(sys.argv[4])(images)
    print(type(module.load()).__name__, module.CLASS_NAMES, module.INPUT_SHAPE, module.MEAN, module.STD)
    print(sorted(name for name in sys.modules if name.startswith("workbench")))
    safetensors.torch.save_file({"own": own, "from_run": from_run}, sys.argv[5])
""")


@pytest.mark.parametrize("preset, cls", [("cnn-small", "CnnSmall"), ("mlp", "Mlp")])
def test_the_python_module_reproduces_the_run_exactly_in_a_fresh_interpreter(runs, preset, cls, tmp_path, test_images):
    trained = load_trained(runs[preset])
    module_path = tmp_path / "exported" / f"{preset.replace('-', '_')}.py"
    module_path.parent.mkdir()
    result = export_model(trained, "python", module_path)
    assert result.max_abs_diff == 0
    assert entries(module_path.parent) == sorted([module_path.name, module_path.with_suffix(".safetensors").name])
    assert result.message.startswith(f"Wrote {module_path} and {module_path.with_suffix('.safetensors')} ")
    safetensors.torch.save_file({"images": test_images.contiguous()}, tmp_path / "images.safetensors")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_INTERPRETER,
            str(module_path.parent),
            module_path.stem,
            str(tmp_path / "images.safetensors"),
            str(runs[preset] / "model.safetensors"),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    described, workbench_modules = done.stdout.splitlines()
    assert described == (f"{cls} ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9') (1, 8, 8) (0.3054,) (0.3761,)")
    assert workbench_modules == "[]"
    produced = safetensors.torch.load_file(tmp_path / "out")
    expected = outputs(trained.model, test_images)
    assert torch.equal(produced["own"], expected) and torch.equal(produced["from_run"], expected)


def test_the_python_module_is_readable_and_imports_only_torch_and_safetensors(runs, tmp_path):
    export_model(load_trained(runs["cnn-small"]), "python", tmp_path / "net.py")
    source = (tmp_path / "net.py").read_text()
    tree = ast.parse(source)
    imports = [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports == ["import torch", "from safetensors.torch import load_file", "from torch import nn"]
    assert source.startswith(f'{MARK_LINE}\n# CnnSmall: the network of the workbench run "cnn-small", exported ')
    assert f"by workbench {__version__}" in source.replace("\n# ", " ")
    for line in (
        "self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)",
        "self.relu1 = nn.ReLU()",
        "self.maxpool1 = nn.MaxPool2d(kernel_size=2)",
        "self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)",
        "self.flatten1 = nn.Flatten()",
        "self.fc1 = nn.Linear(128, 128)",
        "self.fc2 = nn.Linear(128, 10)",
        "x = self.conv1(x)",
        "x = self.fc2(x)",
        "def load(path: str = WEIGHTS) -> CnnSmall:",
    ):
        assert f"        {line}\n" in source or f"{line}\n" in source, line
    assert all(len(line) <= 100 for line in source.splitlines())
    with safe_open(tmp_path / "net.safetensors", framework="pt") as handle:
        assert sorted(handle.keys())[:2] == ["conv1.bias", "conv1.weight"]


# Every layer of the catalog

ALL_LAYERS = [
    {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "stride": 1, "padding": 1, "bias": False},
    {"type": "BatchNorm2d", "momentum": 0.2, "eps": 0.001},
    {"type": "LeakyReLU", "negative_slope": 0.1},
    {"type": "MaxPool2d", "kernel_size": 3, "stride": 1, "padding": 1},
    {"type": "AvgPool2d", "kernel_size": 2},
    {"type": "Dropout2d", "p": 0.3},
    {"type": "ELU", "alpha": 0.5},
    {"type": "AdaptiveAvgPool2d", "output_size": 3},
    {"type": "Softmax"},
    {"type": "Identity"},
    {"type": "Flatten"},
    {"type": "Linear", "out_features": 12},
    {"type": "BatchNorm1d", "affine": False},
    {"type": "GELU", "approximate": "tanh"},
    {"type": "Dropout", "p": 0.1},
    {"type": "SiLU"},
    {"type": "Linear", "out_features": 12, "bias": False},
    {"type": "Tanh"},
    {"type": "Sigmoid"},
    {"type": "ReLU"},
    {"type": "Linear", "out_features": 10},
]


@pytest.fixture(scope="module")
def every_layer(tmp_path_factory) -> TrainedModel:
    """A network using each of the catalog's layer types, with random weights and running statistics."""
    torch.manual_seed(0)
    architecture = Architecture.from_dict(
        {
            "format": "workbench-architecture",
            "version": 1,
            "name": "all layers: 2nd try",
            "input_shape": [1, 8, 8],
            "num_classes": 10,
            "layers": ALL_LAYERS,
        }
    )
    model = build(architecture).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    info = datasets.get_info("digits")
    data = DataDescription(info.name, info.title, info.class_names, info.input_shape, info.mean, info.std)
    return TrainedModel(
        tmp_path_factory.mktemp("every-layer"),
        "every layer",
        architecture,
        TrainConfig(dataset="digits"),
        model,
        "test",
        data,
    )


def test_the_network_uses_every_layer_type_of_the_catalog():
    assert {layer["type"] for layer in ALL_LAYERS} == set(CATALOG)


@pytest.mark.parametrize("format", FORMATS)
def test_every_layer_type_exports_in_every_format(every_layer, format, tmp_path, test_images):
    result = export_model(every_layer, format, tmp_path, check_inputs=test_images)
    assert result.checked_on == 64 and result.max_abs_diff <= TOLERANCE
    assert "on 64 given inputs" in result.message
    if format != "onnx":
        assert result.max_abs_diff == 0


def test_the_python_module_writes_each_layer_with_the_arguments_that_differ_from_torch(every_layer, tmp_path):
    export_model(every_layer, "python", tmp_path / "every_layer.py")
    source = (tmp_path / "every_layer.py").read_text()
    for line in (
        "self.conv1 = nn.Conv2d(1, 4, kernel_size=3, padding=1, bias=False)",
        "self.bn1 = nn.BatchNorm2d(4, eps=0.001, momentum=0.2)",
        "self.leaky_relu1 = nn.LeakyReLU(negative_slope=0.1)",
        "self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)",
        "self.avgpool1 = nn.AvgPool2d(kernel_size=2)",
        "self.dropout2d_1 = nn.Dropout2d(p=0.3)",
        "self.elu1 = nn.ELU(alpha=0.5)",
        "self.adaptive_pool1 = nn.AdaptiveAvgPool2d(output_size=3)",
        "self.softmax1 = nn.Softmax(dim=1)",
        "self.identity1 = nn.Identity()",
        "self.fc1 = nn.Linear(36, 12)",
        "self.bn2 = nn.BatchNorm1d(12, affine=False)",
        "self.gelu1 = nn.GELU(approximate='tanh')",
        "self.dropout1 = nn.Dropout(p=0.1)",
        "self.silu1 = nn.SiLU()",
        "self.fc2 = nn.Linear(12, 12, bias=False)",
        "self.fc3 = nn.Linear(12, 10)",
    ):
        assert f"        {line}\n" in source, line
    assert "class AllLayers2ndTry(nn.Module):" in source


def test_class_names_are_valid_python_whatever_the_architecture_is_called(every_layer):
    def named(name):
        return class_name(dataclasses.replace(every_layer.architecture, name=name))

    assert named("cnn-small") == "CnnSmall" and named("seed-relu-mlp") == "SeedReluMlp"
    assert named("3 layers") == "Net3Layers" and named("") == "Net" and named("é") == "Net"
    assert named("none") == "NoneNet" and named("exception") == "ExceptionNet" and named("mean") == "Mean"
    assert named("MEAN") == "MEANNet"


def test_names_quotes_and_line_breaks_cannot_break_out_of_the_generated_code(every_layer, tmp_path):
    hostile = dataclasses.replace(
        every_layer,
        name='evil"\nimport os  # \u2028',
        architecture=dataclasses.replace(every_layer.architecture, name='x"""\nimport os'),
        data=dataclasses.replace(every_layer.data, title="T\rimport os", class_names=("'\n",) * 10),
    )
    export_model(hostile, "python", tmp_path / "hostile.py", check_inputs=torch.zeros(2, 1, 8, 8))
    tree = ast.parse((tmp_path / "hostile.py").read_text())
    assert [node.__class__.__name__ for node in tree.body].count("Import") == 1  # import torch, nothing else


# Where exports go


def test_default_names_are_safe_file_names_and_importable_module_names(every_layer):
    named = dataclasses.replace(every_layer, name="2024 run: cnn/digits")
    assert [default_export_name(named, format) for format in FORMATS] == [
        "2024_run_cnn_digits.onnx",
        "2024_run_cnn_digits.pt2",
        "2024_run_cnn_digits-bundle",
        "model_2024_run_cnn_digits.py",
    ]


def test_exporting_again_replaces_the_earlier_export(runs, tmp_path):
    trained = load_trained(runs["mlp"])
    for _ in range(2):
        export_model(trained, "safetensors", tmp_path / "b")
        export_model(trained, "pt2", tmp_path / "m.pt2")
    assert entries(tmp_path) == ["b", "m.pt2"]
    assert load_trained(tmp_path / "b").name == "mlp"


def test_the_check_falls_back_to_random_inputs_without_the_dataset(runs, tmp_path, monkeypatch):
    def unavailable(*args, **kwargs):
        raise DatasetError("no dataset here")

    monkeypatch.setattr(datasets, "load", unavailable)
    result = export_model(load_trained(runs["mlp"]), "safetensors", tmp_path)
    assert result.checked_on == 64
    assert "on 64 random inputs, the Digits test images being unavailable" in result.message


def test_check_inputs_of_the_wrong_shape_are_refused(runs, tmp_path):
    with pytest.raises(ExportError, match=r"batch of 1×8×8 images, not a tensor of shape \(3, 28, 28\)"):
        export_model(load_trained(runs["mlp"]), "pt2", tmp_path, check_inputs=torch.zeros(3, 28, 28))
    assert entries(tmp_path) == []


# Failures: a clear message, and nothing at the target


def test_an_unknown_format_is_refused(runs, tmp_path):
    with pytest.raises(
        ExportError, match="Unknown export format 'tflite'; the formats are onnx, pt2, safetensors, python."
    ):
        export_model(load_trained(runs["mlp"]), "tflite", tmp_path)


@pytest.mark.parametrize("format", FORMATS)
def test_an_output_under_a_file_or_in_a_missing_folder_is_refused(runs, tmp_path, format):
    trained = load_trained(runs["mlp"])
    (tmp_path / "plain-file").write_text("not a folder")
    with pytest.raises(ExportError, match="plain-file is a file, not a folder"):
        export_model(trained, format, tmp_path / "plain-file" / "x.py")
    with pytest.raises(ExportError, match="the folder .*nowhere does not exist"):
        export_model(trained, format, tmp_path / "nowhere" / "x.py")
    assert entries(tmp_path) == ["plain-file"]


def test_a_folder_that_cannot_be_written_is_refused(runs, tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(export.tempfile, "mkdtemp", denied)
    with pytest.raises(
        ExportError,
        match=r"Cannot write .*m\.onnx: Permission denied\. Choose a folder you can "
        r"write to\.",
    ):
        export_model(load_trained(runs["mlp"]), "onnx", tmp_path / "m.onnx")


def test_a_python_export_must_be_a_py_file(runs, tmp_path):
    with pytest.raises(ExportError, match="a Python export is a .py file"):
        export_model(load_trained(runs["mlp"]), "python", tmp_path / "model.txt")
    assert entries(tmp_path) == []


def test_an_existing_folder_that_is_not_a_bundle_is_not_replaced(runs, tmp_path):
    (tmp_path / "mlp-bundle").mkdir()
    (tmp_path / "mlp-bundle" / "precious.txt").write_text("keep me")
    with pytest.raises(ExportError, match="mlp-bundle exists and was not written by the workbench; use --force"):
        export_model(load_trained(runs["mlp"]), "safetensors", tmp_path)
    assert entries(tmp_path) == ["mlp-bundle"] and entries(tmp_path / "mlp-bundle") == ["precious.txt"]


def test_the_runs_own_files_are_never_overwritten(runs):
    folder = runs["mlp"]
    before = (folder / "model.safetensors").read_bytes()
    with pytest.raises(ExportError, match="would overwrite the run's own file"):
        export_model(load_trained(folder), "python", folder / "model.py")
    assert (folder / "model.safetensors").read_bytes() == before and not (folder / "model.py").exists()


@pytest.mark.parametrize("format, exporter", [("onnx", "torch.onnx.export"), ("pt2", "torch.export.export")])
def test_a_network_the_exporter_refuses_is_reported_with_its_reason(runs, tmp_path, monkeypatch, format, exporter):
    # Every catalog layer exports (see above), so the exporter's refusal is simulated.
    def refuse(*args, **kwargs):
        raise RuntimeError("Unsupported operator aten::mystery in opset 18\n  File internal.py, line 12")

    monkeypatch.setattr(exporter, refuse)
    title = {"onnx": "ONNX", "pt2": "pt2 (torch.export)"}[format]
    with pytest.raises(ExportError) as refused:
        export_model(load_trained(runs["mlp"]), format, tmp_path)
    assert str(refused.value) == (
        f"This network cannot be exported to {title}: Unsupported operator aten::mystery in opset 18"
    )
    assert entries(tmp_path) == []


@pytest.mark.parametrize("format", FORMATS)
def test_an_export_that_fails_its_check_leaves_the_earlier_file_alone(runs, tmp_path, monkeypatch, format):
    trained = load_trained(runs["mlp"])
    target = tmp_path / ("m.py" if format == "python" else "m")
    target.write_text("an earlier export") if format != "safetensors" else None
    read = export._READERS[format]
    monkeypatch.setitem(export._READERS, format, lambda path, inputs: read(path, inputs) + 1e-3)
    with pytest.raises(
        ExportError,
        match=r"export is not faithful: its outputs differ from the PyTorch model's by "
        r"up to 1\.0e-03 on 64 test images of Digits, more than the 0\.0001 "
        r"allowed\. Nothing was written\.",
    ):
        export_model(trained, format, target, force=True)  # even told to replace it
    if format == "safetensors":
        assert entries(tmp_path) == []
    else:
        assert entries(tmp_path) == ["m.py" if format == "python" else "m"]
        assert target.read_text() == "an earlier export"


def test_an_export_its_runtime_cannot_run_is_refused(runs, tmp_path, monkeypatch):
    def broken(path, inputs):
        raise RuntimeError("[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation\ndetails")

    monkeypatch.setitem(export._READERS, "onnx", broken)
    with pytest.raises(
        ExportError,
        match="The ONNX export could not be checked: \\[ONNXRuntimeError\\] : 9 : "
        "NOT_IMPLEMENTED : Could not find an implementation. Nothing was written.",
    ):
        export_model(load_trained(runs["mlp"]), "onnx", tmp_path)
    assert entries(tmp_path) == []


# Reading bundles back


@pytest.fixture
def bundle(runs, tmp_path) -> Path:
    return export_model(load_trained(runs["cnn-small"]), "safetensors", tmp_path / "bundle").path


def test_a_bundle_with_weights_of_another_network_is_refused(bundle, runs):
    (bundle / "model.safetensors").write_bytes((runs["mlp"] / "model.safetensors").read_bytes())
    with pytest.raises(RunError, match="do not belong to the architecture 'cnn-small'"):
        load_trained(bundle)
    (bundle / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(RunError, match="model.safetensors cannot be read"):
        load_trained(bundle)


def test_a_meta_json_that_is_not_ours_or_is_newer_is_refused(bundle):
    meta = json.loads((bundle / "meta.json").read_text())
    (bundle / "meta.json").write_text(json.dumps({**meta, "format": "huggingface"}))
    with pytest.raises(
        RunError, match="is not a run folder nor a workbench bundle: its meta.json is not a workbench bundle's"
    ):
        load_trained(bundle)
    (bundle / "meta.json").write_text(json.dumps({**meta, "version": 7}))
    with pytest.raises(RunError, match="written by a newer workbench \\(version 7\\)"):
        load_trained(bundle)
    (bundle / "meta.json").write_text(json.dumps({**meta, "data": {"name": "digits"}}))
    with pytest.raises(RunError, match="the data description in its meta.json is incomplete"):
        load_trained(bundle)
    (bundle / "meta.json").write_text('{"format": "workbench-bund')
    with pytest.raises(RunError, match="meta.json cannot be read"):
        load_trained(bundle)


def test_only_run_folders_and_bundles_are_read(tmp_path, bundle):
    with pytest.raises(
        RunError, match="is not a run folder nor a workbench bundle: it has neither run.json nor meta.json"
    ):
        load_trained(tmp_path / "bundle" / "..")
    with pytest.raises(RunError, match="model.safetensors is a file, not a run folder nor a workbench bundle"):
        load_trained(bundle / "model.safetensors")
    with pytest.raises(RunError, match="nowhere does not exist"):
        load_trained(tmp_path / "nowhere")


# Weights and outputs that are not finite


def with_weights(trained: TrainedModel, change) -> TrainedModel:
    """``trained`` with a copy of its model whose state ``change`` edits in place."""
    model = copy.deepcopy(trained.model)
    with torch.no_grad():
        change(model)
    return dataclasses.replace(trained, model=model)


@pytest.mark.parametrize("format", FORMATS)
def test_a_network_whose_weights_hold_nan_is_not_exported(runs, tmp_path, format):
    trained = with_weights(load_trained(runs["mlp"]), lambda model: model[4].weight.view(-1)[7].fill_(float("nan")))
    with pytest.raises(RunError) as refused:
        export_model(trained, format, tmp_path)
    assert str(refused.value) == (
        "The weights of mlp hold NaN or infinite values (in layer 5 Linear): the run diverged, so its "
        "predictions would be meaningless. Train it again with a lower learning rate."
    )
    assert entries(tmp_path) == []


@pytest.mark.parametrize("format", ["pt2", "python"])
def test_outputs_that_are_not_finite_are_never_called_identical(runs, tmp_path, format, test_images):
    # Finite weights so large that the outputs overflow to inf, and inf - inf to NaN, on every image.
    trained = with_weights(load_trained(runs["mlp"]), lambda model: [p.mul_(1e30) for p in model.parameters()])
    assert not torch.isfinite(outputs(trained.model, test_images)).all()
    with pytest.raises(ExportError) as refused:
        export_model(trained, format, tmp_path / "m.py", check_inputs=test_images)
    assert str(refused.value) == (
        f"The network's own outputs on 64 given inputs hold NaN or infinite values, so its "
        f"{'pt2 (torch.export)' if format == 'pt2' else 'Python'} export cannot be checked: its weights are too "
        f"large (the run diverged). Train it again with a lower learning rate. Nothing was written."
    )
    assert "identical" not in str(refused.value) and entries(tmp_path) == []


def test_an_export_whose_outputs_turn_nan_fails_its_check(runs, tmp_path, monkeypatch):
    read = export._READERS["onnx"]
    monkeypatch.setitem(export._READERS, "onnx", lambda path, inputs: read(path, inputs) * float("nan"))
    with pytest.raises(ExportError, match="The ONNX export gives NaN or infinite outputs on 64 test images of Digits"):
        export_model(load_trained(runs["mlp"]), "onnx", tmp_path)
    assert entries(tmp_path) == []
