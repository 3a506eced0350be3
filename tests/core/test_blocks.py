"""Blocks in the architecture (version 2): Residual and Parallel, their validation, build, presets and exports."""

import copy
import json
import pickle
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import digits_config
from workbench.core.architecture import Architecture, Layer, build, module_path, validate
from workbench.core.blocks import Parallel, Residual
from workbench.core.errors import ArchitectureError
from workbench.core.export.formats import TOLERANCE, export_model
from workbench.core.export.python_source import class_name
from workbench.core.presets import load_preset, preset_names
from workbench.core.runs.folders import new_run_dir
from workbench.core.runs.recorder import RunRecorder
from workbench.core.runs.trained import load_trained
from workbench.core.training.engine import Trainer
from workbench.resources import resource_dir


def document(layers, version=2, **overrides):
    doc = {
        "format": "workbench-architecture",
        "version": version,
        "name": "t",
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "layers": layers,
    }
    doc.update(overrides)
    return doc


def conv(channels, kernel=3, padding=1, stride=1):
    layer = {"type": "Conv2d", "out_channels": channels, "kernel_size": kernel, "padding": padding}
    if stride != 1:
        layer["stride"] = stride
    return layer


RELU = {"type": "ReLU"}
HEAD = [{"type": "AdaptiveAvgPool2d", "output_size": 1}, {"type": "Flatten"}, {"type": "Linear", "out_features": 10}]

# The issue's example, as written there.
EXAMPLE = document(
    [
        conv(16),
        RELU,
        {"type": "Residual", "layers": [conv(16), {"type": "BatchNorm2d"}, RELU, conv(16)]},
        RELU,
        {"type": "Residual", "shortcut": "projection", "layers": [conv(32, stride=2), RELU, conv(32)]},
        {"type": "Parallel", "merge": "concat", "branches": [[conv(8, kernel=1, padding=0)], [conv(8)]]},
        *HEAD,
    ],
    name="res-demo",
)


def conv_parameters(in_channels, out_channels, kernel):
    return in_channels * out_channels * kernel * kernel + out_channels


def test_the_issues_example_validates_with_every_shape_and_parameter_count():
    report = validate(Architecture.from_dict(EXAMPLE))
    assert report.ok, report.errors
    residual = 2 * conv_parameters(16, 16, 3) + 2 * 16
    projected = conv_parameters(16, 32, 3) + conv_parameters(32, 32, 3) + conv_parameters(16, 32, 1)
    parallel = conv_parameters(32, 8, 1) + conv_parameters(32, 8, 3)
    expected = [
        ("1", 0, (1, 28, 28), (16, 28, 28), conv_parameters(1, 16, 3)),
        ("2", 0, (16, 28, 28), (16, 28, 28), 0),
        ("3", 0, (16, 28, 28), (16, 28, 28), residual),
        ("3.1", 1, (16, 28, 28), (16, 28, 28), conv_parameters(16, 16, 3)),
        ("3.2", 1, (16, 28, 28), (16, 28, 28), 32),
        ("3.3", 1, (16, 28, 28), (16, 28, 28), 0),
        ("3.4", 1, (16, 28, 28), (16, 28, 28), conv_parameters(16, 16, 3)),
        ("4", 0, (16, 28, 28), (16, 28, 28), 0),
        ("5", 0, (16, 28, 28), (32, 14, 14), projected),
        ("5.1", 1, (16, 28, 28), (32, 14, 14), conv_parameters(16, 32, 3)),
        ("5.2", 1, (32, 14, 14), (32, 14, 14), 0),
        ("5.3", 1, (32, 14, 14), (32, 14, 14), conv_parameters(32, 32, 3)),
        ("6", 0, (32, 14, 14), (16, 14, 14), parallel),
        ("6.b1.1", 1, (32, 14, 14), (8, 14, 14), conv_parameters(32, 8, 1)),
        ("6.b2.1", 1, (32, 14, 14), (8, 14, 14), conv_parameters(32, 8, 3)),
        ("7", 0, (16, 14, 14), (16, 1, 1), 0),
        ("8", 0, (16, 1, 1), (16,), 0),
        ("9", 0, (16,), (10,), 16 * 10 + 10),
    ]
    assert [(r.number, r.depth, r.input_shape, r.output_shape, r.parameters) for r in report.rows] == expected
    assert [row.number for row in report.layers] == [str(n) for n in range(1, 10)]
    assert report.total_parameters == sum(row[4] for row in expected if row[1] == 0)
    assert report.row("5.2").type == "ReLU" and report.row("7.1") is None


EXAMPLE_NETWORK = Architecture.from_dict(EXAMPLE)


def test_the_readmes_example_file_is_the_issues_example():
    path = Path(__file__).parents[2] / "docs" / "examples" / "res-demo.json"
    rows = [(row.number, row.type, row.output_shape, row.parameters) for row in validate(Architecture.load(path)).rows]
    assert rows == [(row.number, row.type, row.output_shape, row.parameters) for row in validate(EXAMPLE_NETWORK).rows]


def test_the_example_builds_to_the_inferred_shape_with_named_modules():
    architecture = Architecture.from_dict(EXAMPLE)
    report = validate(architecture)
    torch.manual_seed(0)
    model = build(architecture)
    assert isinstance(model, torch.nn.Sequential)
    assert isinstance(model[2], Residual) and isinstance(model[4], Residual) and isinstance(model[5], Parallel)
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert sum(p.numel() for p in model.parameters()) == report.total_parameters
    names = dict(model.named_modules())
    for number, name in (("3.4", "2.layers.3"), ("5.1", "4.layers.0"), ("6.b2.1", "5.branches.1.0")):
        assert module_path(number) == name
        assert type(names[name]).__name__ == report.row(number).type
    assert isinstance(names["4.shortcut"], torch.nn.Conv2d) and names["4.shortcut"].stride == (2, 2)
    assert names["2"].shortcut is None
    again = pickle.loads(pickle.dumps(model))
    images = torch.randn(2, 1, 28, 28)
    model.eval(), again.eval()
    assert torch.equal(again(images), model(images))


def test_identity_adds_the_input_and_projection_maps_it():
    residual = Residual([torch.nn.Linear(4, 4)])
    x = torch.randn(2, 4)
    assert torch.allclose(residual(x), x + residual.layers(x))
    projected = Residual([torch.nn.Linear(4, 6)], torch.nn.Linear(4, 6))
    assert torch.allclose(projected(x), projected.shortcut(x) + projected.layers(x))
    flat = [{"type": "Flatten"}, {"type": "Linear", "out_features": 32}]
    blocks = {
        shortcut: Architecture.from_dict(
            document(
                [
                    *flat,
                    {"type": "Residual", "shortcut": shortcut, "layers": [{"type": "Linear", "out_features": 32}]},
                    {"type": "Linear", "out_features": 10},
                ]
            )
        )
        for shortcut in ("identity", "projection")
    }
    rows = {shortcut: validate(arch).row("3") for shortcut, arch in blocks.items()}
    assert rows["identity"].parameters == 32 * 32 + 32
    assert rows["projection"].parameters == 2 * (32 * 32 + 32)
    assert isinstance(build(blocks["projection"])[2].shortcut, torch.nn.Linear)


def test_sum_adds_the_branches():
    arch = Architecture.from_dict(
        document(
            [
                {"type": "Flatten"},
                {
                    "type": "Parallel",
                    "merge": "sum",
                    "branches": [[{"type": "Linear", "out_features": 10}], [{"type": "Identity"}, {"type": "Linear"}]],
                },
            ]
        )
    )
    report = validate(arch)
    assert report.ok and report.row("2").output_shape == (10,) and report.total_parameters == 2 * 7850
    model = build(arch)
    x = torch.randn(2, 1, 28, 28)
    flat = x.flatten(1)
    parallel = model[1]
    assert torch.allclose(model(x), parallel.branches[0](flat) + parallel.branches[1](flat))


def residual(layers, **params):
    return {"type": "Residual", **params, "layers": layers}


@pytest.mark.parametrize(
    "layers, message",
    [
        (
            [conv(16), residual([conv(32, stride=2)])],
            "block 2 Residual: its layers turn 16×28×28 into 32×14×14, so the input cannot be added: set its "
            "shortcut to projection.",
        ),
        (
            [conv(16), residual([conv(16, padding=0)], shortcut="projection")],
            "block 2 Residual: its layers turn 16×28×28 into 16×26×26, so the input cannot be added even by a "
            "projection",
        ),
        ([conv(16), residual([{"type": "Flatten"}])], "block 2 Residual: its layers turn 16×28×28 into 12544,"),
        (
            [conv(16), {"type": "Parallel", "merge": "concat", "branches": [[conv(8)], [conv(8, stride=2)]]}],
            "block 2 Parallel: its branches end with 8×28×28 (branch 1), 8×14×14 (branch 2), so they cannot be "
            "concatenated along the channels",
        ),
        (
            [conv(16), {"type": "Parallel", "merge": "sum", "branches": [[conv(8)], [conv(4)]]}],
            "block 2 Parallel: its branches end with 8×28×28 (branch 1), 4×28×28 (branch 2), so they cannot be added",
        ),
        (
            [{"type": "Parallel", "branches": [[{"type": "Flatten"}], [conv(4)]]}],
            "block 1 Parallel: its branches end with 784 (branch 1), 4×28×28 (branch 2), so they cannot be "
            "concatenated: every branch must end with an image",
        ),
        (
            [residual([conv(1), residual([{"type": "Linear", "out_features": 3}])])],
            "layer 1.2.1 Linear expects a flat input but gets 1×28×28: add a Flatten before it.",
        ),
        (
            [{"type": "Parallel", "branches": [[RELU], [RELU, {"type": "Softmax"}]]}, {"type": "Flatten"}],
            "layer 1.b2.2 Softmax: cross-entropy already applies a softmax",
        ),
    ],
)
def test_blocks_that_do_not_fit_are_named_by_their_number(layers, message):
    report = validate(Architecture.from_dict(document(layers)))
    assert any(text.startswith(message) for text in report.errors + report.warnings), (report.errors, report.warnings)
    row = report.row(message.split(" ")[1])
    assert (row.error or row.warning).startswith(message)


def nested(depth):
    return RELU if depth == 0 else residual([nested(depth - 1)])


@pytest.mark.parametrize(
    "doc, message",
    [
        (document([residual([])]), "block 1 Residual has no layers"),
        (document([RELU, {"type": "Parallel", "branches": [[RELU]]}]), "block 2 Parallel has 1 branch; it needs"),
        (document([{"type": "Parallel", "branches": [[RELU], []]}]), "block 1 Parallel: branch 2 has no layers"),
        (document([residual([RELU], shortcut="skip")]), "block 1 Residual: shortcut must be one of 'identity', "),
        (document([{"type": "Parallel", "merge": "max", "branches": [[RELU], [RELU]]}]), "block 1 Parallel: merge"),
        (document([residual([RELU], merge="sum")]), "block 1 Residual: no parameter 'merge'"),
        (document([residual([RELU]) | {"layers": "ReLU"}]), "block 1 Residual needs 'layers': a list"),
        (document([{"type": "Parallel", "branches": [RELU, [RELU]]}]), "block 1 Parallel: branch 1 must be a list"),
        (document([residual([RELU, residual([{"type": "Relu"}])])]), "layer 1.2.1: unknown layer type 'Relu'"),
        (document([residual([RELU, {"type": "Linear", "in_features": 3}])]), "layer 1.2 Linear: in_features is"),
        (document([residual([RELU])], version=1), "block 1 Residual: blocks need version 2 of the architecture"),
        (document([RELU, residual([residual([RELU])])], version=1), "block 2 Residual: blocks need version 2"),
        (document([nested(17)]), "block 1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1 Residual is nested deeper than 16"),
        (document([], version=3), "newer workbench"),
        (document([residual([RELU] * 201)]), "202 layers, counting those inside blocks"),
    ],
)
def test_malformed_blocks_raise_the_spec_error_naming_the_block(doc, message):
    with pytest.raises(ArchitectureError) as raised:
        Architecture.from_dict(doc)
    assert message in str(raised.value)


def test_bad_blocks_made_in_the_builder_are_red_rows():
    arch = Architecture(
        "t", (1, 28, 28), 10, [Layer("Flatten"), Layer("Residual"), Layer("Parallel", branches=[[Layer("ReLU")]])]
    )
    report = validate(arch)
    assert report.layers[1].error.startswith("block 2 Residual has no layers")
    assert report.layers[2].error is None and report.layers[2].input_shape is None
    assert not report.ok
    deep = Architecture.from_dict(document([nested(16)]))
    deep.layers[0].layers[0] = residual_layer = Layer("Residual", layers=[deep.layers[0].layers[0]])
    assert residual_layer.layers and any("nested 17 blocks deep" in error for error in validate(deep).errors)


def test_sixteen_deep_loads_and_builds():
    arch = Architecture.from_dict(document([nested(16), {"type": "Flatten"}, {"type": "Linear"}]))
    assert max(depth for _, depth, _ in arch.walk()) == 16
    assert build(arch)(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_round_trip_and_flat_networks_still_save_as_version_1(tmp_path):
    arch = Architecture.from_dict(EXAMPLE)
    assert arch.to_dict()["version"] == 2 and arch.to_dict()["layers"] == EXAMPLE["layers"]
    arch.save(tmp_path / "blocks.json")
    again = Architecture.load(tmp_path / "blocks.json")
    assert again == arch and again.to_json() == arch.to_json()
    assert json.loads((tmp_path / "blocks.json").read_text())["layers"][4]["shortcut"] == "projection"
    assert "Residual(3 layers) → Parallel(2 branches)" in arch.summary()
    for name in ("seed-linear", "mlp", "cnn-small", "cnn-strong", "seed-sigmoidnet-6"):
        flat = load_preset(name)
        assert not flat.has_blocks() and flat.to_dict()["version"] == 1
        flat.save(tmp_path / f"{name}.json")
        assert (tmp_path / f"{name}.json").read_text() == (resource_dir("presets") / f"{name}.json").read_text()


def test_the_depth_presets_validate_and_build():
    names = preset_names()
    assert names[-4:] == ["deep-mlp-12", "res-mlp-12", "plain-20", "resnet-20"]
    for name in ("deep-mlp-12", "res-mlp-12", "plain-20", "resnet-20"):
        arch = load_preset(name)
        report = validate(arch)
        model = build(arch)
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
        assert sum(p.numel() for p in model.parameters()) == report.total_parameters
    linears = {name: [row.type for row in validate(load_preset(name)).rows] for name in ("deep-mlp-12", "res-mlp-12")}
    assert linears["deep-mlp-12"].count("Linear") == linears["res-mlp-12"].count("Linear") == 12
    plain, resnet = (validate(load_preset(name)) for name in ("plain-20", "resnet-20"))
    convs = [row for row in plain.rows if row.type == "Conv2d"]
    assert len(convs) == 19 and [row.type for row in resnet.rows].count("Conv2d") == 19
    assert [row.type for row in resnet.rows if row.type != "Residual"] == [row.type for row in plain.rows]
    # the only difference in parameters: the two projection shortcuts, 1×1 convolutions 16→32 and 32→64
    assert resnet.total_parameters - plain.total_parameters == (16 * 32 + 32) + (32 * 64 + 64)


def test_a_network_of_sixty_nested_layers_validates_within_20_ms():
    block = residual([conv(16), {"type": "BatchNorm2d"}, RELU, conv(16), {"type": "BatchNorm2d"}])
    layers = [conv(16)]
    for _ in range(9):
        layers += [copy.deepcopy(block), RELU]
    layers.insert(5, {"type": "Parallel", "branches": [[conv(8, kernel=1, padding=0), RELU], [conv(8), RELU, conv(8)]]})
    layers.insert(6, conv(16))
    arch = Architecture.from_dict(document(layers + HEAD))
    assert sum(1 for _ in arch.walk()) >= 60
    validate(arch)
    times = []
    for _ in range(7):
        start = time.perf_counter()
        report = validate(arch)
        times.append(time.perf_counter() - start)
    assert report.ok, report.errors
    assert statistics.median(times) <= 0.020


# Random nested documents


@st.composite
def leaf(draw, image, depth):
    if image:
        choice = draw(st.integers(0, 5 if depth == 0 else 4))
        if choice == 0:
            return conv(draw(st.integers(1, 6)), draw(st.sampled_from([1, 3])), draw(st.integers(0, 1)))
        if choice == 1:
            return {"type": "MaxPool2d", "kernel_size": 2}
        if choice == 2:
            return {"type": "BatchNorm2d"}
        if choice == 5:
            return {"type": "Flatten"}
    elif draw(st.booleans()):
        return {"type": "Linear", "out_features": draw(st.integers(1, 12))}
    return {"type": draw(st.sampled_from(["ReLU", "Sigmoid", "Identity", "Dropout"]))}


@st.composite
def sequence(draw, depth, image):
    """Mostly plausible layers (blocks hold at least one layer, Parallels two branches, mostly), up to 3 blocks
    deep; ``image``: whether the input is an image."""
    layers = []
    fewest = 1 if depth > 0 and draw(st.integers(0, 9)) else 0
    for _ in range(draw(st.integers(fewest, 3))):
        if depth < 3 and draw(st.integers(0, 2)) == 0:
            if draw(st.booleans()):
                shortcut = draw(st.sampled_from(["identity", "projection"]))
                layers.append(residual(draw(sequence(depth + 1, image)), shortcut=shortcut))
            else:
                fewest_branches = 2 if draw(st.integers(0, 9)) else 1
                branches = draw(st.lists(sequence(depth + 1, image), min_size=fewest_branches, max_size=3))
                merge = draw(st.sampled_from(["concat", "sum"]))
                layers.append({"type": "Parallel", "merge": merge, "branches": branches})
        else:
            layer = draw(leaf(image, depth))
            image = image and layer["type"] != "Flatten"
            layers.append(layer)
    return layers


@st.composite
def nested_documents(draw):
    layers = draw(sequence(0, True))
    if draw(st.integers(0, 3)):
        layers += [{"type": "Flatten"}, *draw(sequence(0, False)), {"type": "Linear", "out_features": 3}]
    side = draw(st.integers(2, 8))
    return document(layers, num_classes=3, input_shape=[draw(st.integers(1, 2)), side, side])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested_documents())
def test_any_nested_document_builds_to_its_inferred_shape_or_raises_the_spec_error(doc):
    try:
        arch = Architecture.from_dict(doc)
        report = validate(arch)
        model = build(arch)
    except ArchitectureError:
        return
    output = model(torch.randn(2, *arch.input_shape))
    assert output.shape == (2, *report.output_shape) == (2, 3)
    assert sum(p.numel() for p in model.parameters()) == report.total_parameters
    modules = dict(model.named_modules())
    for row in report.rows:
        assert type(modules[module_path(row.number)]).__name__ == row.type


# Training and exporting a network with blocks

DIGITS_BLOCKS = document(
    [
        conv(4),
        RELU,
        residual([conv(4), {"type": "BatchNorm2d"}, RELU, conv(4)]),
        residual([conv(8, stride=2), RELU], shortcut="projection"),
        {"type": "Parallel", "branches": [[conv(4, kernel=1, padding=0)], [conv(4), RELU]]},
        {"type": "Flatten"},
        residual([{"type": "Linear", "out_features": 16}], shortcut="projection"),
        {"type": "Parallel", "merge": "sum", "branches": [[{"type": "Linear"}], [RELU, {"type": "Linear"}]]},
    ],
    name="blocks-digits",
    input_shape=[1, 8, 8],
)


@pytest.fixture(scope="module")
def blocks_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blocks-run") / "run"
    arch = Architecture.from_dict(DIGITS_BLOCKS)
    cfg = digits_config(train_size=300, val_size=50, epochs=1, seed=2)
    Trainer(arch, cfg, callbacks=[RunRecorder(new_run_dir(folder, arch, cfg))], progress=False).run()
    return folder


def test_a_run_with_blocks_trains_and_loads_back(blocks_run):
    trained = load_trained(blocks_run)
    assert trained.architecture == Architecture.from_dict(DIGITS_BLOCKS)
    assert json.loads((blocks_run / "architecture.json").read_text())["version"] == 2


@pytest.mark.parametrize("format", ["onnx", "pt2", "safetensors"])
def test_exports_of_a_network_with_blocks_check_out(blocks_run, tmp_path, format):
    result = export_model(load_trained(blocks_run), format, tmp_path)
    assert result.path.exists() and result.max_abs_diff <= TOLERANCE


FRESH = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import safetensors.torch, torch
    module = __import__(sys.argv[2])
    images = safetensors.torch.load_file(sys.argv[3])["images"]
    with torch.no_grad():
        own = module.load()(images)
        from_run = module.load(sys.argv[4])(images)
    print(sorted(name for name in sys.modules if name.startswith("workbench")))
    safetensors.torch.save_file({"own": own, "from_run": from_run}, sys.argv[5])
""")


def test_the_python_export_writes_block_classes_and_gives_identical_outputs_in_a_fresh_interpreter(
    blocks_run, tmp_path
):
    trained = load_trained(blocks_run)
    module = tmp_path / "exported" / "blocks_digits.py"
    module.parent.mkdir()
    result = export_model(trained, "python", module)
    assert result.max_abs_diff == 0
    source = module.read_text()
    assert "class Residual(nn.Module):" in source and "class Parallel(nn.Module):" in source
    assert "            shortcut=nn.Conv2d(4, 8, kernel_size=1, stride=2),\n" in source
    assert "        self.parallel2 = Parallel(\n" in source and "            merge='sum',\n" in source
    assert all(len(line) <= 100 for line in source.splitlines())
    images = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    safetensors.torch.save_file({"images": images}, tmp_path / "images.safetensors")
    arguments = [str(module.parent), module.stem, str(tmp_path / "images.safetensors")]
    arguments += [str(blocks_run / "model.safetensors"), str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-c", FRESH, *arguments], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    produced = safetensors.torch.load_file(tmp_path / "out")
    with torch.no_grad():
        expected = trained.model(images)
    assert torch.equal(produced["own"], expected) and torch.equal(produced["from_run"], expected)


def test_block_class_names_are_reserved_only_in_networks_with_blocks():
    assert class_name(Architecture("residual", (1, 8, 8), 10, [])) == "Residual"
    assert class_name(Architecture.from_dict(document([residual([RELU])], name="residual"))) == "ResidualNet"


def test_the_gradient_monitor_and_the_weights_view_take_a_network_with_blocks():
    from workbench.core.inspect.weights import weight_tiles
    from workbench.core.training.config import TrainConfig
    from workbench.core.training.engine import Trainer
    from workbench.core.training.gradients import GradientMonitor

    network = Architecture.from_dict(
        {
            "format": "workbench-architecture",
            "version": 2,
            "name": "small-res",
            "input_shape": [1, 8, 8],
            "num_classes": 10,
            "layers": [
                {"type": "Flatten"},
                {"type": "Linear", "out_features": 32},
                {"type": "ReLU"},
                {"type": "Residual", "layers": [{"type": "Linear", "out_features": 32}, {"type": "ReLU"}]},
                {"type": "Linear", "out_features": 10},
            ],
        }
    )
    monitor = GradientMonitor()  # the app's: dead units too
    config = TrainConfig(dataset="digits", train_size=200, val_size=40, epochs=1, batch_size=32, device="cpu")
    result = Trainer(network, config, callbacks=[monitor], progress=False).run()
    assert result.status == "finished"
    assert monitor.layers == ["2 Linear", "4.1 Linear", "5 Linear"]  # the layer inside the block by its number
    assert monitor.activations == ["3 ReLU", "4.2 ReLU"]
    [tiles] = weight_tiles(network, result.model.state_dict())
    assert tiles.tiles.shape[1:] == (8, 8), "the first Linear reads the pixels: its units drawn as images"
